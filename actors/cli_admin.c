/*  actors/cli_admin.c - the admin client commands: `zrocket topic`,
    `stats`, `msg` and `ping`, each one request over client/client.h.
*/
#include "actors/cli.h"
#include "client/client.h"

static const zr_cli_opt_t s_client_opts [] = {
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

//  Sends the request begun on client and waits for its reply. Prints the
//  "no broker answering" line and returns NULL on timeout; prints
//  "zrocket WHAT: STATUS: reason" and returns NULL on a status other than
//  ok_status.
static zr_reply_t *
s_call (zr_client_t *client, const char *what, int timeout_ms)
{
    zr_reply_t *reply = zr_client_call (client, NULL, 0, timeout_ms);
    if (!reply) {
        fprintf (stderr, "zrocket: no broker answering at %s within %d ms\n",
                 zr_client_endpoint (client), timeout_ms);
        return NULL;
    }
    if (zr_reply_status (reply) != ZR_OK) {
        const char *reason = zr_reply_reason (reply);
        fprintf (stderr, "zrocket %s: %s%s%s\n", what,
                 zr_reply_status_str (reply), *reason ? ": " : "", reason);
        zr_reply_destroy (&reply);
    }
    return reply;
}

//  Parses the common options; returns a client or NULL with *rc set.
static zr_client_t *
s_connect (zr_cli_args_t *args, int *timeout_ms, int *rc)
{
    const char *endpoint;
    if (zr_cli_client_opts (args, &endpoint, timeout_ms)) {
        *rc = 2;
        return NULL;
    }
    zr_client_t *client = zr_client_new (endpoint);
    if (!client) {
        fprintf (stderr, "zrocket: cannot connect to '%s'\n", endpoint);
        *rc = 2;
    }
    return client;
}

//  --------------------------------------------------------------------
//  topic

static const zr_cli_opt_t s_topic_opts [] = {
    { "queues", "N", "create: number of queues (1..1024, default 8)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

static void
s_topic_usage (FILE *stream)
{
    zr_cli_usage (stream,
        "zrocket topic create NAME [--queues N]\n"
        "       zrocket topic list\n"
        "       zrocket topic delete NAME",
        "Creates a topic (or grows its queue count), lists topics (one\n"
        "line per topic: NAME<TAB>QUEUES), or deletes a topic with its\n"
        "messages and every group's offsets.", s_topic_opts);
}

int
zr_cli_topic (int argc, char **argv)
{
    zr_cli_args_t args;
    if (zr_cli_parse ("topic", s_topic_opts, 2, argc, argv, &args)) {
        zr_cli_args_free (&args);
        return 2;
    }
    int rc = 2;
    zr_client_t *client = NULL;
    zr_reply_t *reply = NULL;
    if (args.help) {
        s_topic_usage (stdout);
        rc = 0;
        goto done;
    }
    const char *sub = args.npos > 0 ? args.pos [0] : NULL;
    if (!sub) {
        fprintf (stderr, "zrocket topic: say create, list or delete "
                 "(see zrocket topic --help)\n");
        goto done;
    }
    bool needs_name = streq (sub, "create") || streq (sub, "delete");
    if (!needs_name && !streq (sub, "list")) {
        fprintf (stderr, "zrocket topic: unknown subcommand '%s' (see "
                 "zrocket topic --help)\n", sub);
        goto done;
    }
    if (needs_name && args.npos != 2) {
        fprintf (stderr, "zrocket topic %s: needs a topic NAME\n", sub);
        goto done;
    }
    if (!needs_name && args.npos != 1) {
        fprintf (stderr, "zrocket topic list: unexpected argument '%s'\n",
                 args.pos [1]);
        goto done;
    }
    int64_t queues;
    if (zr_cli_get_int (&args, "queues", ZR_DEFAULT_QUEUES, 1, 1024,
                        &queues))
        goto done;
    if (zr_cli_get (&args, "queues") && !streq (sub, "create")) {
        fprintf (stderr, "zrocket topic %s: --queues applies to create "
                 "only\n", sub);
        goto done;
    }
    int timeout_ms;
    client = s_connect (&args, &timeout_ms, &rc);
    if (!client)
        goto done;
    rc = 1;
    char what [32];
    snprintf (what, sizeof what, "topic %s", sub);
    if (streq (sub, "create")) {
        zr_enc_t *enc = zr_client_begin (client, "TOPIC_CREATE", 2);
        zr_enc_kstr (enc, "topic", args.pos [1]);
        zr_enc_kint (enc, "queues", queues);
        reply = s_call (client, what, timeout_ms);
        if (reply) {
            int64_t n = queues;
            bool created = true;
            zr_field_int (zr_reply_header (reply), "queues", &n);
            zr_field_bool (zr_reply_header (reply), "created", &created);
            printf ("%s\t%" PRId64 "\t%s\n", args.pos [1], n,
                    created ? "created" : "exists");
            rc = 0;
        }
    }
    else
    if (streq (sub, "delete")) {
        zr_enc_t *enc = zr_client_begin (client, "TOPIC_DELETE", 1);
        zr_enc_kstr (enc, "topic", args.pos [1]);
        reply = s_call (client, what, timeout_ms);
        if (reply) {
            printf ("%s\tdeleted\n", args.pos [1]);
            rc = 0;
        }
    }
    else {
        zr_client_begin (client, "TOPIC_LIST", 0);
        reply = s_call (client, what, timeout_ms);
        if (reply) {
            const zr_obj_t *topics = zr_obj_get (zr_reply_header (reply),
                                                 "topics");
            for (size_t i = 0; i < zr_obj_size (topics); i++) {
                const zr_obj_t *t = zr_obj_at (topics, i);
                char name [ZR_NAME_MAX + 1];
                int64_t n = 0;
                if (zr_field_strbuf (t, "topic", name, sizeof name)
                    != ZR_FIELD_OK)
                    continue;
                zr_field_int (t, "queues", &n);
                printf ("%s\t%" PRId64 "\n", name, n);
            }
            rc = 0;
        }
    }
done:
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    zr_cli_args_free (&args);
    return rc;
}

//  --------------------------------------------------------------------
//  stats

//  Prints a value as "key value" lines; maps flatten to key.sub.
static void
s_print_flat (const char *prefix, const zr_obj_t *value)
{
    if (zr_obj_is_map (value)) {
        for (size_t i = 0; i < zr_obj_size (value); i++) {
            const char *k;
            size_t len;
            if (zr_obj_str (zr_obj_key_at (value, i), &k, &len))
                continue;
            char *key = *prefix
                ? zsys_sprintf ("%s.%.*s", prefix, (int) len, k)
                : zsys_sprintf ("%.*s", (int) len, k);
            s_print_flat (key, zr_obj_val_at (value, i));
            zstr_free (&key);
        }
        return;
    }
    int64_t v;
    const char *s;
    size_t len;
    bool b;
    if (zr_obj_int (value, &v) == ZR_FIELD_OK)
        printf ("%s %" PRId64 "\n", prefix, v);
    else
    if (zr_obj_str (value, &s, &len) == ZR_FIELD_OK)
        printf ("%s %.*s\n", prefix, (int) len, s);
    else
    if (zr_obj_bool (value, &b) == ZR_FIELD_OK)
        printf ("%s %s\n", prefix, b ? "true" : "false");
    else {
        char *json = zr_obj_to_json (value);
        printf ("%s %s\n", prefix, json ? json : "?");
        zstr_free (&json);
    }
}

//  Runs one no-argument command; print_fn prints the reply.
static int
s_simple (const char *cmd, int argc, char **argv, const char *synopsis,
          const char *text, int max_pos, zr_cli_args_t *args,
          zr_client_t **client_p, int *timeout_ms)
{
    if (zr_cli_parse (cmd, s_client_opts, max_pos, argc, argv, args))
        return 2;
    if (args->help) {
        zr_cli_usage (stdout, synopsis, text, s_client_opts);
        return 0;
    }
    int rc = 0;
    *client_p = s_connect (args, timeout_ms, &rc);
    return *client_p ? -1 : rc;
}

int
zr_cli_stats (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_client_t *client = NULL;
    int timeout_ms;
    int rc = s_simple ("stats", argc, argv, "zrocket stats",
        "Prints the broker's counters and gauges, one \"key value\" per\n"
        "line; per-topic figures read topic.NAME.key.", 0, &args, &client,
        &timeout_ms);
    if (rc < 0) {
        zr_client_begin (client, "STATS", 0);
        zr_reply_t *reply = s_call (client, "stats", timeout_ms);
        rc = 1;
        if (reply) {
            const zr_obj_t *stats = zr_obj_get (zr_reply_header (reply),
                                                "stats");
            if (stats)
                s_print_flat ("", stats);
            rc = 0;
        }
        zr_reply_destroy (&reply);
    }
    zr_client_destroy (&client);
    zr_cli_args_free (&args);
    return rc;
}

int
zr_cli_msg (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_client_t *client = NULL;
    int timeout_ms;
    int rc = s_simple ("msg", argc, argv, "zrocket msg STORE_ID",
        "Looks a message up by its store id (GROUP:TOPIC:QUEUE:OFFSET) and\n"
        "prints its fields, one \"key value\" per line (properties as\n"
        "prop.NAME), then an empty line, then the body.", 1, &args,
        &client, &timeout_ms);
    if (rc < 0 && args.npos != 1) {
        fprintf (stderr, "zrocket msg: needs a STORE_ID\n");
        rc = 2;
    }
    if (rc < 0) {
        zr_enc_t *enc = zr_client_begin (client, "GET_MSG", 1);
        zr_enc_kstr (enc, "store_id", args.pos [0]);
        zr_reply_t *reply = s_call (client, "msg", timeout_ms);
        rc = 1;
        const zr_obj_t *map = reply
            ? zr_obj_get (zr_reply_header (reply), "msg") : NULL;
        zr_message_t *msg = map
            ? zr_message_from_wire (map, zr_reply_bodies (reply) > 0
                                    ? zr_reply_body (reply, 0) : NULL)
            : NULL;
        if (reply && !msg)
            fprintf (stderr, "zrocket msg: the broker's reply lacks the "
                     "message\n");
        if (msg) {
            printf ("store_id %s\nid %s\ntopic %s\nqueue %d\n"
                    "offset %" PRId64 "\ntags %s\nkeys %s\n"
                    "born %" PRId64 "\nstored %" PRId64 "\n",
                    zr_message_store_id (msg), zr_message_id (msg),
                    zr_message_topic (msg), zr_message_queue (msg),
                    zr_message_offset (msg), zr_message_tags (msg),
                    zr_message_keys (msg), zr_message_born (msg),
                    zr_message_stored (msg));
            zhashx_t *props = zr_message_props (msg);
            if (props) {
                zlistx_t *keys = zhashx_keys (props);
                zlistx_set_comparator (keys, (zlistx_comparator_fn *) strcmp);
                zlistx_sort (keys);
                for (const char *k = (const char *) zlistx_first (keys); k;
                     k = (const char *) zlistx_next (keys))
                    printf ("prop.%s %s\n", k,
                            (const char *) zhashx_lookup (props, k));
                zlistx_destroy (&keys);
            }
            printf ("\n");
            fwrite (zr_message_body (msg), 1, zr_message_size (msg), stdout);
            printf ("\n");
            zr_message_destroy (&msg);
            rc = 0;
        }
        zr_reply_destroy (&reply);
    }
    zr_client_destroy (&client);
    zr_cli_args_free (&args);
    return rc;
}

int
zr_cli_ping (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_client_t *client = NULL;
    int timeout_ms;
    int rc = s_simple ("ping", argc, argv, "zrocket ping",
        "Asks the broker for a PING reply and prints one line:\n"
        "  OK<TAB>GROUP<TAB>VERSION<TAB>ROUND_TRIP_MS", 0, &args, &client,
        &timeout_ms);
    if (rc < 0) {
        int64_t start = zclock_usecs ();
        zr_client_begin (client, "PING", 0);
        zr_reply_t *reply = s_call (client, "ping", timeout_ms);
        rc = 1;
        if (reply) {
            double rtt = (zclock_usecs () - start) / 1000.0;
            char *group = zr_field_strdup (zr_reply_header (reply), "broker");
            char *version = zr_field_strdup (zr_reply_header (reply),
                                             "version");
            printf ("OK\t%s\t%s\t%.3f\n", group ? group : "?",
                    version ? version : "?", rtt);
            zstr_free (&group);
            zstr_free (&version);
            rc = 0;
        }
        zr_reply_destroy (&reply);
    }
    zr_client_destroy (&client);
    zr_cli_args_free (&args);
    return rc;
}
