/*  actors/cli_broker.c - `zrocket broker` and `zrocket dev`: build the
    broker settings (flags > ZR_* env > --config file > defaults), start
    the broker actor in the foreground, print where it listens, and stop
    it cleanly on SIGINT or SIGTERM.
*/
#include "actors/cli.h"
#include "actors/config.h"
#include <pthread.h>
#include <signal.h>

#define ZR_CLI_PIPE_TIMEOUT 10000   //  ms to wait for a pipe reply

//  Sends a pipe command and returns its reply (after "OK") or NULL.
static zmsg_t *
s_pipe_ask (zactor_t *broker, const char *command)
{
    if (zstr_send (broker, command))
        return NULL;
    zpoller_t *poller = zpoller_new (broker, NULL);
    zmsg_t *reply = NULL;
    if (zpoller_wait (poller, ZR_CLI_PIPE_TIMEOUT) == broker)
        reply = zmsg_recv (broker);
    zpoller_destroy (&poller);
    if (reply) {
        char *status = zmsg_popstr (reply);
        if (!status || !streq (status, "OK"))
            zmsg_destroy (&reply);
        zstr_free (&status);
    }
    return reply;
}

//  Endpoint as people and clients read it: a wildcard host reads 0.0.0.0.
static char *
s_display_endpoint (const char *endpoint)
{
    if (strncmp (endpoint, "tcp://*:", 8) == 0)
        return zsys_sprintf ("tcp://0.0.0.0:%s", endpoint + 8);
    return strdup (endpoint);
}

//  Rewrites --port P (and --port=P) into --bind tcp://*:P. Returns a new
//  argv (caller frees the array and the strings it made, listed in made),
//  or NULL after printing an error.
static char **
s_expand_port (int argc, char **argv, int *argc_out, zlist_t *made)
{
    char **out = (char **) zmalloc ((argc + 1) * sizeof (char *));
    int n = 0;
    for (int i = 0; i < argc; i++) {
        const char *port = NULL;
        if (streq (argv [i], "--port")) {
            if (i + 1 >= argc) {
                fprintf (stderr, "zrocket: --port needs a value\n");
                free (out);
                return NULL;
            }
            port = argv [++i];
        }
        else
        if (strncmp (argv [i], "--port=", 7) == 0)
            port = argv [i] + 7;
        if (!port) {
            out [n++] = argv [i];
            continue;
        }
        char *end = NULL;
        errno = 0;
        long p = strtol (port, &end, 10);
        if (!*port || *end || errno || p < 0 || p > 65535) {
            fprintf (stderr, "zrocket: --port: '%s' is not a port number "
                     "(0..65535)\n", port);
            free (out);
            return NULL;
        }
        char *bind = p == 0 ? strdup ("--bind=tcp://*:*")
                            : zsys_sprintf ("--bind=tcp://*:%ld", p);
        zlist_append (made, bind);      //  autofree: keeps a copy
        zstr_free (&bind);
        out [n++] = (char *) zlist_last (made);
    }
    *argc_out = n;
    return out;
}

static void
s_usage (FILE *stream, const char *cmd, const zr_setting_t *table)
{
    if (streq (cmd, "dev"))
        fprintf (stream,
            "usage: zrocket dev [--data DIR] [--port PORT] [SETTINGS...]\n\n"
            "Runs everything a laptop needs in one process (today: one\n"
            "broker, auto-creating topics on first send) in the foreground\n"
            "until SIGINT or SIGTERM. Never sends beacons.\n");
    else
        fprintf (stream,
            "usage: zrocket broker [--data DIR] [--port PORT] "
            "[--flush async|sync] [SETTINGS...]\n\n"
            "Runs a broker in the foreground until SIGINT or SIGTERM, "
            "which answer\nin-flight requests and close the store. "
            "Prints one line when it listens:\n"
            "  zrocket broker: group NAME listening on ENDPOINT..., data in "
            "DIR (flush MODE)\n");
    fprintf (stream,
        "\nEach setting is a flag --NAME VALUE, an environment variable "
        "ZR_NAME and a\nkey broker/NAME in a ZPL config file (--config FILE "
        "or ZR_CONFIG); flags win\nover the environment, which wins over "
        "the file, which wins over defaults.\n\nOptions:\n"
        "  --port PORT\n      shorthand for --bind tcp://*:PORT "
        "(0: any free port)\n"
        "  --config FILE\n      ZPL config file, for example:\n"
        "        broker\n            data = /var/lib/zrocket\n"
        "            flush = sync\n"
        "  --help\n      print this help\n\nSettings:\n");
    zr_config_print_help (table, "broker", stream);
}

static int
s_run (const char *cmd, int argc, char **argv, bool dev)
{
    //  The settings table, with dev's own defaults
    size_t count = 0;
    while (zr_broker_settings [count].name)
        count++;
    zr_setting_t *table = (zr_setting_t *) zmalloc ((count + 1)
                                                    * sizeof *table);
    memcpy (table, zr_broker_settings, (count + 1) * sizeof *table);
    if (dev)
        for (size_t i = 0; i < count; i++)
            if (streq (table [i].name, "auto-create"))
                table [i].dflt = "true";

    for (int i = 1; i < argc; i++)
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            s_usage (stdout, cmd, table);
            free (table);
            return 0;
        }
    zlist_t *made = zlist_new ();
    zlist_autofree (made);
    int rc = 2;
    int flag_argc = 0;
    zconfig_t *cfg = NULL;
    zactor_t *broker = NULL;
    char **flags = s_expand_port (argc - 1, argv + 1, &flag_argc, made);
    if (!flags)
        goto done;
    char err [512];
    if (zr_config_build (table, "broker", flag_argc, flags, &cfg,
                         err, sizeof err)) {
        fprintf (stderr, "zrocket %s: %s\n", cmd, err);
        goto done;
    }
    //  Foreground process: say little unless something goes wrong
    char *start_err = NULL;
    broker = zr_broker_new (cfg, &start_err);
    if (!broker) {
        fprintf (stderr, "zrocket %s: %s\n", cmd,
                 start_err ? start_err : "broker did not start");
        zstr_free (&start_err);
        rc = 1;
        goto done;
    }
    zmsg_t *group = s_pipe_ask (broker, "GROUP");
    zmsg_t *endpoints = s_pipe_ask (broker, "ENDPOINTS");
    zmsg_t *data = s_pipe_ask (broker, "DATA");
    char *group_name = group ? zmsg_popstr (group) : NULL;
    char *data_dir = data ? zmsg_popstr (data) : NULL;
    char *first = NULL;
    char *listening = strdup ("");
    char *ep = endpoints ? zmsg_popstr (endpoints) : NULL;
    while (ep) {
        char *shown = s_display_endpoint (ep);
        char *joined = zsys_sprintf ("%s%s%s", listening,
                                     *listening ? " " : "", shown);
        free (listening);
        listening = joined;
        if (!first)
            first = shown;
        else
            zstr_free (&shown);
        zstr_free (&ep);
        ep = zmsg_popstr (endpoints);
    }
    const char *flush = zconfig_get (cfg, "broker/flush", "async");
    printf ("zrocket %s: group %s listening on %s, data in %s (flush %s)\n",
            cmd, group_name ? group_name : "?", listening,
            data_dir ? data_dir : zconfig_get (cfg, "broker/data", "?"),
            flush);
    if (dev && first) {
        const char *port = strrchr (first, ':');
        char *client_ep = strncmp (first, "tcp://", 6) == 0 && port
            ? zsys_sprintf ("tcp://127.0.0.1%s", port) : strdup (first);
        printf ("try: echo hello | zrocket send --broker %s --topic demo\n"
                "     zrocket consume --broker %s --topic demo --from "
                "first\n", client_ep, client_ep);
        free (client_ep);
    }
    fflush (stdout);
    zmsg_destroy (&group);
    zmsg_destroy (&endpoints);
    zmsg_destroy (&data);
    zstr_free (&group_name);
    zstr_free (&data_dir);
    zstr_free (&first);
    zstr_free (&listening);

    //  Wait for SIGINT/SIGTERM (CZMQ's handler sets zsys_interrupted)
    //  or for the actor to go away.
    zpoller_t *poller = zpoller_new (broker, NULL);
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, 1000);
        if (which == broker) {
            zmsg_t *msg = zmsg_recv (broker);
            if (!msg)
                break;
            zmsg_destroy (&msg);
        }
    }
    zpoller_destroy (&poller);
    rc = 0;
done:
    if (broker) {
        //  A second SIGINT/SIGTERM (timeout(1) sends two) must not
        //  interrupt zactor_destroy's wait: main would return while the
        //  actor still closes the store, and RocksDB aborts at exit. So
        //  this thread stops taking them; the actor finishes its work.
        sigset_t block;
        sigemptyset (&block);
        sigaddset (&block, SIGINT);
        sigaddset (&block, SIGTERM);
        pthread_sigmask (SIG_BLOCK, &block, NULL);
    }
    zactor_destroy (&broker);
    zconfig_destroy (&cfg);
    free (flags);
    zlist_destroy (&made);
    free (table);
    return rc;
}

int
zr_cli_broker (int argc, char **argv)
{
    return s_run ("broker", argc, argv, false);
}

int
zr_cli_dev (int argc, char **argv)
{
    return s_run ("dev", argc, argv, true);
}
