/*  actors/cli.c - `zrocket` command dispatch, option parsing and the
    helpers that the client commands share (see cli.h).
*/
#include "actors/cli.h"
#include "client/client.h"

static void
s_main_usage (FILE *stream)
{
    fprintf (stream,
        "usage: zrocket COMMAND [OPTIONS]\n"
        "\n"
        "zrocket %d.%d.%d, a brokered messaging fabric on ZeroMQ.\n"
        "\n"
        "Commands:\n"
        "  dev          run a nameserver and a broker for a laptop\n"
        "  broker       run a broker in the foreground\n"
        "  nameserver   run a nameserver in the foreground\n"
        "  cluster      list the brokers a nameserver knows\n"
        "  route        print which broker groups serve a topic\n"
        "  topic        create, list or delete topics\n"
        "  send         send messages (BODY, or one per line of stdin)\n"
        "  consume      print message bodies of a topic\n"
        "  stats        print broker statistics\n"
        "  msg          look a message up by store id\n"
        "  ping         check that a broker answers\n"
        "  group        consumer group status and offset reset\n"
        "  dlq          list or resend a group's dead-letter messages\n"
        "  bench        measure send and consume rates\n"
        "  admin        promote: hand a group's master role to a slave\n"
        "\n"
        "`zrocket COMMAND --help` describes a command. Exit status: 0 ok,\n"
        "1 failure, 2 usage error (and see each command's help).\n",
        ZROCKET_VERSION_MAJOR, ZROCKET_VERSION_MINOR, ZROCKET_VERSION_PATCH);
}

int
zr_cli_main (int argc, char **argv)
{
    if (argc < 2) {
        s_main_usage (stderr);
        return 2;
    }
    const char *cmd = argv [1];
    if (streq (cmd, "--help") || streq (cmd, "-h") || streq (cmd, "help")) {
        s_main_usage (stdout);
        return 0;
    }
    if (streq (cmd, "--version")) {
        printf ("zrocket %d.%d.%d\n", ZROCKET_VERSION_MAJOR,
                ZROCKET_VERSION_MINOR, ZROCKET_VERSION_PATCH);
        return 0;
    }
    static const struct {
        const char *name;
        int (*fn) (int, char **);
    } commands [] = {
        { "broker", zr_cli_broker },
        { "dev", zr_cli_dev },
        { "topic", zr_cli_topic },
        { "send", zr_cli_send },
        { "consume", zr_cli_consume },
        { "stats", zr_cli_stats },
        { "msg", zr_cli_msg },
        { "ping", zr_cli_ping },
        { "nameserver", zr_cli_nameserver },
        { "cluster", zr_cli_cluster },
        { "route", zr_cli_route },
        { "group", zr_cli_group },
        { "dlq", zr_cli_dlq },
        { "bench", zr_cli_bench },
        { "digest", zr_cli_digest },
        { "admin", zr_cli_admin },
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands [0]; i++)
        if (streq (cmd, commands [i].name))
            return commands [i].fn (argc - 1, argv + 1);
    fprintf (stderr, "zrocket: unknown command '%s' (see zrocket --help)\n",
             cmd);
    return 2;
}

//  --------------------------------------------------------------------
//  Options

static int
s_opt_index (const zr_cli_opt_t *opts, const char *name, size_t len)
{
    for (int i = 0; opts [i].name; i++)
        if (strlen (opts [i].name) == len
        &&  strncmp (opts [i].name, name, len) == 0)
            return i;
    return -1;
}

int
zr_cli_parse (const char *cmd, const zr_cli_opt_t *opts, int max_pos,
              int argc, char **argv, zr_cli_args_t *args)
{
    memset (args, 0, sizeof *args);
    args->opts = opts;
    bool only_pos = false;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv [i];
        if (!only_pos && streq (arg, "--")) {
            only_pos = true;
            continue;
        }
        if (!only_pos && (streq (arg, "--help") || streq (arg, "-h"))) {
            args->help = true;
            continue;
        }
        if (!only_pos && strncmp (arg, "--", 2) == 0) {
            const char *name = arg + 2;
            const char *eq = strchr (name, '=');
            size_t len = eq ? (size_t) (eq - name) : strlen (name);
            int index = s_opt_index (opts, name, len);
            if (index < 0 || index >= 32) {
                fprintf (stderr,
                         "zrocket %s: unknown flag '--%.*s' (see zrocket "
                         "%s --help)\n", cmd, (int) len, name, cmd);
                return -1;
            }
            const char *value = "";
            if (opts [index].meta) {
                if (eq)
                    value = eq + 1;
                else
                if (i + 1 < argc)
                    value = argv [++i];
                else {
                    fprintf (stderr, "zrocket %s: --%s needs a value\n",
                             cmd, opts [index].name);
                    return -1;
                }
            }
            else
            if (eq) {
                fprintf (stderr, "zrocket %s: --%s takes no value\n", cmd,
                         opts [index].name);
                return -1;
            }
            args->value [index] = value;
            if (!args->repeated [index])
                args->repeated [index] = zlist_new ();
            zlist_append (args->repeated [index], (void *) value);
            continue;
        }
        if (args->npos >= max_pos || args->npos >= ZR_CLI_MAX_POS) {
            fprintf (stderr, "zrocket %s: unexpected argument '%s' (see "
                     "zrocket %s --help)\n", cmd, arg, cmd);
            return -1;
        }
        args->pos [args->npos++] = arg;
    }
    return 0;
}

void
zr_cli_args_free (zr_cli_args_t *args)
{
    for (int i = 0; i < 32; i++)
        zlist_destroy (&args->repeated [i]);
}

const char *
zr_cli_get (zr_cli_args_t *args, const char *name)
{
    int index = s_opt_index (args->opts, name, strlen (name));
    return index >= 0 && index < 32 ? args->value [index] : NULL;
}

int
zr_cli_get_int (zr_cli_args_t *args, const char *name, int64_t dflt,
                int64_t min, int64_t max, int64_t *value)
{
    const char *text = zr_cli_get (args, name);
    if (!text) {
        *value = dflt;
        return 0;
    }
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (!*text || *end || errno) {
        fprintf (stderr, "zrocket: --%s: '%s' is not a number\n", name,
                 text);
        return -1;
    }
    if (v < min || v > max) {
        fprintf (stderr, "zrocket: --%s: %lld is out of range (%lld..%lld)\n",
                 name, v, (long long) min, (long long) max);
        return -1;
    }
    *value = v;
    return 0;
}

void
zr_cli_usage (FILE *stream, const char *synopsis, const char *text,
              const zr_cli_opt_t *opts)
{
    fprintf (stream, "usage: %s\n\n%s\n", synopsis, text);
    if (opts && opts [0].name) {
        fprintf (stream, "\nOptions:\n");
        for (int i = 0; opts [i].name; i++) {
            char left [64];
            snprintf (left, sizeof left, "--%s%s%s", opts [i].name,
                      opts [i].meta ? " " : "",
                      opts [i].meta ? opts [i].meta : "");
            fprintf (stream, "  %-22s %s\n", left, opts [i].help);
        }
    }
    fprintf (stream, "  %-22s %s\n", "--help", "print this help");
}

int
zr_cli_client_opts (zr_cli_args_t *args, const char **endpoint,
                    int *timeout_ms)
{
    const char *ep = zr_cli_get (args, "broker");
    if (!ep)
        ep = getenv ("ZR_BROKER");
    if (!ep || !*ep)
        ep = ZR_DEFAULT_ENDPOINT;
    if (!strstr (ep, "://")) {
        fprintf (stderr, "zrocket: --broker: '%s' is not an endpoint "
                 "(like tcp://127.0.0.1:10911)\n", ep);
        return -1;
    }
    *endpoint = ep;
    int64_t t;
    if (zr_cli_get_int (args, "timeout-ms", 3000, 1, 3600000, &t))
        return -1;
    *timeout_ms = (int) t;
    return 0;
}

int
zr_cli_ping_broker (const char *endpoint, int timeout_ms, char **group)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client) {
        fprintf (stderr, "zrocket: cannot connect to '%s'\n", endpoint);
        return -1;
    }
    zr_client_begin (client, "PING", 0);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, timeout_ms);
    int rc = 0;
    if (!reply) {
        fprintf (stderr, "zrocket: no broker answering at %s within %d ms\n",
                 endpoint, timeout_ms);
        rc = -1;
    }
    else
    if (group)
        *group = zr_field_strdup (zr_reply_header (reply), "broker");
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    return rc;
}

//  --------------------------------------------------------------------
//  Finding brokers and nameservers

//  Checks a comma-separated endpoint list. Returns 0 or -1 (printed).
static int
s_check_list (const char *what, const char *list)
{
    if (!*list) {
        fprintf (stderr, "zrocket: %s: empty endpoint list\n", what);
        return -1;
    }
    char *copy = strdup (list);
    int rc = 0;
    char *save = NULL;
    int items = 0;
    for (char *ep = strtok_r (copy, ",", &save); ep && rc == 0;
         ep = strtok_r (NULL, ",", &save)) {
        items++;
        if (!strstr (ep, "://")) {
            fprintf (stderr, "zrocket: %s: '%s' is not an endpoint (like "
                     "tcp://127.0.0.1:9876)\n", what, ep);
            rc = -1;
        }
    }
    if (rc == 0 && items == 0) {
        fprintf (stderr, "zrocket: %s: empty endpoint list\n", what);
        rc = -1;
    }
    free (copy);
    return rc;
}

//  True when a broker answers PING at endpoint within timeout_ms.
static bool
s_broker_answers (const char *endpoint, int timeout_ms)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        return false;
    zr_client_begin (client, "PING", 0);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, timeout_ms);
    bool ok = reply != NULL;
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    return ok;
}

int
zr_cli_fabric_find (zr_cli_args_t *args, zr_cli_fabric_t *fabric)
{
    memset (fabric, 0, sizeof *fabric);
    int64_t t;
    if (zr_cli_get_int (args, "timeout-ms", 3000, 1, 3600000, &t))
        return 2;
    fabric->timeout_ms = (int) t;

    //  1. Flags, 2. environment
    const char *broker = zr_cli_get (args, "broker");
    const char *ns = zr_cli_get (args, "nameserver");
    const char *broker_what = "--broker", *ns_what = "--nameserver";
    if (!broker && !ns) {
        broker = getenv ("ZR_BROKER");
        ns = getenv ("ZR_NAMESERVER");
        if (broker && !*broker)
            broker = NULL;
        if (ns && !*ns)
            ns = NULL;
        broker_what = "ZR_BROKER";
        ns_what = "ZR_NAMESERVER";
    }
    if (broker && (!strstr (broker, "://") || strchr (broker, ','))) {
        fprintf (stderr, "zrocket: %s: '%s' is not an endpoint (like "
                 "tcp://127.0.0.1:10911)\n", broker_what, broker);
        return 2;
    }
    if (ns && s_check_list (ns_what, ns))
        return 2;
    if (broker || ns) {
        fabric->broker = broker ? strdup (broker) : NULL;
        fabric->nameservers = ns ? strdup (ns) : NULL;
        return 0;
    }
    //  3. A nameserver on 127.0.0.1:9876, 4. beacons
    const char *iface = zr_cli_get (args, "interface");
    if (!iface)
        iface = getenv ("ZR_INTERFACE");
    if (iface && *iface)
        zsys_set_interface (iface);
    const char *cluster = zr_cli_get (args, "cluster");
    if (!cluster)
        cluster = getenv ("ZR_CLUSTER");
    if (cluster && !*cluster)
        cluster = NULL;
    char *found = zr_discover_nameservers (cluster, 2000);
    if (found && *found) {
        fabric->nameservers = found;
        return 0;
    }
    zstr_free (&found);
    //  5. A broker on 127.0.0.1:10911
    int ping_ms = fabric->timeout_ms < 1000 ? fabric->timeout_ms : 1000;
    if (s_broker_answers (ZR_DEFAULT_ENDPOINT, ping_ms)) {
        fabric->broker = strdup (ZR_DEFAULT_ENDPOINT);
        return 0;
    }
    fprintf (stderr, "zrocket: no nameserver or broker found (tried "
             "--broker, --nameserver, ZR_BROKER, ZR_NAMESERVER, a "
             "nameserver on tcp://127.0.0.1:9876, beacons of cluster %s%s%s "
             "for 2 s, a broker on %s)\n",
             cluster ? cluster : "DefaultCluster",
             iface && *iface ? " on " : "", iface && *iface ? iface : "",
             ZR_DEFAULT_ENDPOINT);
    return 1;
}

void
zr_cli_fabric_free (zr_cli_fabric_t *fabric)
{
    zstr_free (&fabric->broker);
    zstr_free (&fabric->nameservers);
}

zr_reply_t *
zr_cli_ns_call (const char *nameservers, const char *cmd, const char *topic,
                int timeout_ms, char **which)
{
    char *copy = strdup (nameservers);
    char *save = NULL;
    zr_reply_t *reply = NULL;
    for (char *ep = strtok_r (copy, ",", &save); ep && !reply;
         ep = strtok_r (NULL, ",", &save)) {
        zr_client_t *client = zr_client_new (ep);
        if (!client)
            continue;
        zr_enc_t *enc = zr_client_begin (client, cmd, topic ? 1 : 0);
        if (topic)
            zr_enc_kstr (enc, "topic", topic);
        reply = zr_client_call (client, NULL, 0, timeout_ms);
        if (reply && which)
            *which = strdup (ep);
        zr_client_destroy (&client);
    }
    free (copy);
    if (!reply)
        fprintf (stderr, "zrocket: no nameserver answered at %s within "
                 "%d ms\n", nameservers, timeout_ms);
    return reply;
}
