/*  actors/cli_broker.c - `zrocket broker`, `zrocket nameserver` and
    `zrocket dev`: build the settings (flags > ZR_* env > --config file >
    defaults), start the actors in the foreground, print where they
    listen, and stop them cleanly on SIGINT or SIGTERM.

    `zrocket nameserver` reads ZR_NS_NAME environment variables (ZR_NS_BIND,
    ZR_NS_CLUSTER...), so that a shell set up for a broker (ZR_BIND...)
    does not move a nameserver started from it.
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

//  Removes --ns-port P (and --ns-port=P) from argv in place; sets *value
//  (borrowed) or leaves it. Returns the new argc, or -1 after printing an
//  error.
static int
s_take_ns_port (int argc, char **argv, const char **value)
{
    int n = 0;
    for (int i = 0; i < argc; i++) {
        if (streq (argv [i], "--ns-port")) {
            if (i + 1 >= argc) {
                fprintf (stderr, "zrocket dev: --ns-port needs a value\n");
                return -1;
            }
            *value = argv [++i];
        }
        else
        if (strncmp (argv [i], "--ns-port=", 10) == 0)
            *value = argv [i] + 10;
        else
            argv [n++] = argv [i];
    }
    return n;
}

//  True when the flags hold --port 0.
static bool
s_port_zero (int argc, char **argv)
{
    bool zero = false;
    for (int i = 0; i < argc; i++) {
        if (streq (argv [i], "--port") && i + 1 < argc)
            zero = streq (argv [i + 1], "0");
        else
        if (strncmp (argv [i], "--port=", 7) == 0)
            zero = streq (argv [i] + 7, "0");
    }
    return zero;
}

//  Waits for SIGINT/SIGTERM (CZMQ's handler sets zsys_interrupted) or for
//  the actor to go away.
static void
s_wait (zactor_t *actor)
{
    zpoller_t *poller = zpoller_new (actor, NULL);
    while (!zsys_interrupted) {
        void *which = zpoller_wait (poller, 1000);
        if (which == actor) {
            zmsg_t *msg = zmsg_recv (actor);
            if (!msg)
                break;
            zmsg_destroy (&msg);
        }
    }
    zpoller_destroy (&poller);
}

//  Space-separated display endpoints from an ENDPOINTS reply (caller
//  frees); *first (may be NULL) gets the first (caller frees).
static char *
s_endpoint_list (zmsg_t *endpoints, char **first)
{
    char *listening = strdup ("");
    char *ep = endpoints ? zmsg_popstr (endpoints) : NULL;
    while (ep) {
        char *shown = s_display_endpoint (ep);
        char *joined = zsys_sprintf ("%s%s%s", listening,
                                     *listening ? " " : "", shown);
        free (listening);
        listening = joined;
        if (first && !*first)
            *first = shown;
        else
            zstr_free (&shown);
        zstr_free (&ep);
        ep = zmsg_popstr (endpoints);
    }
    return listening;
}

static void
s_usage (FILE *stream, const char *cmd, const zr_setting_t *table)
{
    if (streq (cmd, "dev"))
        fprintf (stream,
            "usage: zrocket dev [--data DIR] [--port PORT] [--ns-port PORT] "
            "[SETTINGS...]\n\n"
            "Runs everything a laptop needs in one process: one nameserver\n"
            "and one master broker registered with it (auto-creating topics\n"
            "on first send), in the foreground until SIGINT or SIGTERM.\n"
            "Never sends beacons. Prints two lines:\n"
            "  zrocket dev: group NAME listening on ENDPOINT..., data in DIR "
            "(flush MODE)\n"
            "  zrocket dev: nameserver listening on ENDPOINT (cluster NAME, "
            "beacon off)\n"
            "  --ns-port PORT\n      the nameserver's port (default 9876; "
            "0: any free port;\n      with --port 0 and no --ns-port, also "
            "any free port)\n");
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
        for (size_t i = 0; i < count; i++) {
            if (streq (table [i].name, "auto-create"))
                table [i].dflt = "true";
            //  dev binds no replication port (issue #3)
            if (streq (table [i].name, "replication"))
                table [i].dflt = "none";
        }

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
    zconfig_t *ns_cfg = NULL;
    zactor_t *broker = NULL;
    zactor_t *nameserver = NULL;
    char *ns_endpoint = NULL;
    char **flags = NULL;
    //  dev: --ns-port is ours, not a broker setting
    char **args = (char **) zmalloc ((argc + 1) * sizeof (char *));
    memcpy (args, argv + 1, (argc - 1) * sizeof (char *));
    int nargs = argc - 1;
    const char *ns_port = NULL;
    if (dev) {
        nargs = s_take_ns_port (nargs, args, &ns_port);
        if (nargs < 0)
            goto done;
        if (!ns_port)
            ns_port = s_port_zero (nargs, args) ? "0" : "9876";
        char *end = NULL;
        errno = 0;
        long p = strtol (ns_port, &end, 10);
        if (!*ns_port || *end || errno || p < 0 || p > 65535) {
            fprintf (stderr, "zrocket dev: --ns-port: '%s' is not a port "
                     "number (0..65535)\n", ns_port);
            goto done;
        }
    }
    flags = s_expand_port (nargs, args, &flag_argc, made);
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
    if (dev) {
        //  The nameserver first, so that the broker registers at once
        ns_cfg = zconfig_new ("root", NULL);
        char *bind = streq (ns_port, "0") ? strdup ("tcp://*:*")
                   : zsys_sprintf ("tcp://*:%s", ns_port);
        zconfig_put (ns_cfg, "nameserver/bind", bind);
        zstr_free (&bind);
        zconfig_put (ns_cfg, "nameserver/cluster",
                     zconfig_get (cfg, "broker/cluster", "DefaultCluster"));
        zconfig_put (ns_cfg, "nameserver/beacon", "false");
        nameserver = zr_nameserver_new (ns_cfg, &start_err);
        if (nameserver)
            ns_endpoint = zr_nameserver_endpoint (nameserver);
        if (!ns_endpoint) {
            fprintf (stderr, "zrocket dev: nameserver: %s\n",
                     start_err ? start_err : "did not start");
            zstr_free (&start_err);
            rc = 1;
            goto done;
        }
        zconfig_put (cfg, "broker/nameserver", ns_endpoint);
    }
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
    char *listening = s_endpoint_list (endpoints, &first);
    const char *flush = zconfig_get (cfg, "broker/flush", "async");
    printf ("zrocket %s: group %s listening on %s, data in %s (flush %s)\n",
            cmd, group_name ? group_name : "?", listening,
            data_dir ? data_dir : zconfig_get (cfg, "broker/data", "?"),
            flush);
    if (dev) {
        zmsg_t *ns_eps = s_pipe_ask (nameserver, "ENDPOINTS");
        char *ns_listening = s_endpoint_list (ns_eps, NULL);
        zmsg_destroy (&ns_eps);
        printf ("zrocket dev: nameserver listening on %s (cluster %s, "
                "beacon off)\n", *ns_listening ? ns_listening : ns_endpoint,
                zconfig_get (ns_cfg, "nameserver/cluster", "?"));
        zstr_free (&ns_listening);
        printf ("try: echo hello | zrocket send --nameserver %s "
                "--topic demo\n"
                "     zrocket consume --nameserver %s --topic demo --from "
                "first\n", ns_endpoint, ns_endpoint);
    }
    fflush (stdout);
    zmsg_destroy (&group);
    zmsg_destroy (&endpoints);
    zmsg_destroy (&data);
    zstr_free (&group_name);
    zstr_free (&data_dir);
    zstr_free (&first);
    zstr_free (&listening);

    s_wait (broker);
    rc = 0;
done:
    if (broker || nameserver) {
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
    //  The broker first: it unregisters from the nameserver
    zactor_destroy (&broker);
    zactor_destroy (&nameserver);
    zstr_free (&ns_endpoint);
    zconfig_destroy (&cfg);
    zconfig_destroy (&ns_cfg);
    free (flags);
    free (args);
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

//  --------------------------------------------------------------------
//  nameserver

static void
s_ns_usage (FILE *stream)
{
    fprintf (stream,
        "usage: zrocket nameserver [--port PORT] [--beacon] "
        "[--interface IFACE] [--cluster NAME]\n"
        "                          [SETTINGS...]\n\n"
        "Runs a nameserver in the foreground until SIGINT or SIGTERM: the\n"
        "registry that brokers register with and clients ask for routes.\n"
        "Prints one line when it listens:\n"
        "  zrocket nameserver: cluster NAME listening on ENDPOINT... "
        "(beacon on|off)\n"
        "\nEach setting is a flag --NAME VALUE, an environment variable "
        "ZR_NS_NAME\n(ZR_NS_BIND, ZR_NS_CLUSTER...: not ZR_NAME, which "
        "configure brokers) and a\nkey nameserver/NAME in a ZPL config file "
        "(--config FILE or ZR_CONFIG); flags\nwin over the environment, "
        "which wins over the file, which wins over defaults.\n"
        "--beacon alone means --beacon true; --beacon false also works.\n"
        "\nOptions:\n"
        "  --port PORT\n      shorthand for --bind tcp://*:PORT "
        "(0: any free port)\n"
        "  --config FILE\n      ZPL config file, for example:\n"
        "        nameserver\n            cluster = Shop\n"
        "            beacon = true\n"
        "  --help\n      print this help\n\nSettings:\n");
    zr_config_print_help_env (zr_nameserver_settings, "nameserver",
                              "ZR_NS_", stream);
}

int
zr_cli_nameserver (int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (streq (argv [i], "--help") || streq (argv [i], "-h")) {
            s_ns_usage (stdout);
            return 0;
        }
    zlist_t *made = zlist_new ();
    zlist_autofree (made);
    int rc = 2;
    int flag_argc = 0;
    zconfig_t *cfg = NULL;
    zactor_t *nameserver = NULL;
    char **flags = s_expand_port (argc - 1, argv + 1, &flag_argc, made);
    if (!flags)
        goto done;
    char err [512];
    if (zr_config_build_env (zr_nameserver_settings, "nameserver", "ZR_NS_",
                             flag_argc, flags, &cfg, err, sizeof err)) {
        fprintf (stderr, "zrocket nameserver: %s\n", err);
        goto done;
    }
    char *start_err = NULL;
    nameserver = zr_nameserver_new (cfg, &start_err);
    if (!nameserver) {
        fprintf (stderr, "zrocket nameserver: %s\n",
                 start_err ? start_err : "nameserver did not start");
        zstr_free (&start_err);
        rc = 1;
        goto done;
    }
    zmsg_t *endpoints = s_pipe_ask (nameserver, "ENDPOINTS");
    char *listening = s_endpoint_list (endpoints, NULL);
    zmsg_destroy (&endpoints);
    bool beacon = false;
    zr_setting_parse_bool (zconfig_get (cfg, "nameserver/beacon", "false"),
                           &beacon);
    printf ("zrocket nameserver: cluster %s listening on %s (beacon %s)\n",
            zconfig_get (cfg, "nameserver/cluster", "DefaultCluster"),
            *listening ? listening : "?", beacon ? "on" : "off");
    fflush (stdout);
    zstr_free (&listening);
    s_wait (nameserver);
    rc = 0;
done:
    zactor_destroy (&nameserver);
    zconfig_destroy (&cfg);
    free (flags);
    zlist_destroy (&made);
    return rc;
}
