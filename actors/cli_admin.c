/*  actors/cli_admin.c - the admin client commands: `zrocket topic`,
    `stats`, `msg`, `ping`, `cluster`, `route` and `admin promote`,
    requests over client/client.h to a broker, a nameserver, or (topic,
    msg, admin promote through a nameserver) the brokers a nameserver
    knows.
*/
#include "actors/cli.h"
#include "client/client.h"
#include "actors/cli_find.h"

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

//  Connects to endpoint; NULL after printing why.
static zr_client_t *
s_client (const char *endpoint)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        fprintf (stderr, "zrocket: cannot connect to '%s'\n", endpoint);
    return client;
}

//  A broker as GET_CLUSTER describes it.
typedef struct {
    char *group;
    char *role;
    char *endpoint;             //  first endpoint, or "-"
    int64_t broker_id;
    int64_t epoch;
    int64_t age_ms;
} s_broker_t;

static void
s_broker_destroy (s_broker_t **self_p)
{
    s_broker_t *self = *self_p;
    if (!self)
        return;
    free (self->group);
    free (self->role);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  Asks the nameservers for every live broker. Returns a list of
//  s_broker_t (caller destroys) or NULL after printing why.
static zlistx_t *
s_cluster_fetch (const char *nameservers, int timeout_ms)
{
    zr_reply_t *reply = zr_cli_ns_call (nameservers, "GET_CLUSTER", NULL,
                                        timeout_ms, NULL);
    if (!reply)
        return NULL;
    if (zr_reply_status (reply) != ZR_OK) {
        const char *reason = zr_reply_reason (reply);
        fprintf (stderr, "zrocket: nameserver GET_CLUSTER: %s%s%s\n",
                 zr_reply_status_str (reply), *reason ? ": " : "", reason);
        zr_reply_destroy (&reply);
        return NULL;
    }
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) s_broker_destroy);
    const zr_obj_t *brokers = zr_obj_get (zr_reply_header (reply),
                                          "brokers");
    for (size_t i = 0; i < zr_obj_size (brokers); i++) {
        const zr_obj_t *b = zr_obj_at (brokers, i);
        s_broker_t *broker = (s_broker_t *) zmalloc (sizeof *broker);
        broker->group = zr_field_strdup (b, "group");
        broker->role = zr_field_strdup (b, "role");
        const zr_obj_t *eps = zr_obj_get (b, "endpoints");
        const char *ep;
        size_t len;
        if (zr_obj_str (zr_obj_at (eps, 0), &ep, &len) == ZR_FIELD_OK)
            broker->endpoint = zsys_sprintf ("%.*s", (int) len, ep);
        if (!broker->group)
            broker->group = strdup ("?");
        if (!broker->endpoint)
            broker->endpoint = strdup ("-");
        broker->epoch = broker->age_ms = -1;
        zr_field_int (b, "broker_id", &broker->broker_id);
        zr_field_int (b, "epoch", &broker->epoch);
        zr_field_int (b, "age_ms", &broker->age_ms);
        if (!broker->role)
            broker->role = strdup (broker->broker_id == 0 ? "master"
                                                          : "slave");
        zlistx_add_end (list, broker);
    }
    zr_reply_destroy (&reply);
    return list;
}

//  Endpoints of the brokers to act on through a nameserver: --brokers
//  EP,EP, else every master the nameservers know. Returns a list of
//  strings (caller destroys), or NULL after printing why.
static zlistx_t *
s_master_endpoints (zr_cli_args_t *args, const char *nameservers,
                    int timeout_ms)
{
    zlistx_t *eps = zlistx_new ();
    zlistx_set_destructor (eps, (zlistx_destructor_fn *) zstr_free);
    const char *named = zr_cli_get (args, "brokers");
    if (named) {
        char *copy = strdup (named);
        char *save = NULL;
        for (char *ep = strtok_r (copy, ",", &save); ep;
             ep = strtok_r (NULL, ",", &save))
            zlistx_add_end (eps, strdup (ep));
        free (copy);
        return eps;
    }
    zlistx_t *brokers = s_cluster_fetch (nameservers, timeout_ms);
    if (!brokers) {
        zlistx_destroy (&eps);
        return NULL;
    }
    for (s_broker_t *b = (s_broker_t *) zlistx_first (brokers); b;
         b = (s_broker_t *) zlistx_next (brokers))
        if (streq (b->role, "master") && !streq (b->endpoint, "-"))
            zlistx_add_end (eps, strdup (b->endpoint));
    zlistx_destroy (&brokers);
    if (zlistx_size (eps) == 0) {
        fprintf (stderr, "zrocket: the nameserver at %s knows no master "
                 "broker (zrocket cluster lists the brokers)\n",
                 nameservers);
        zlistx_destroy (&eps);
    }
    return eps;
}

//  Checks a --brokers list. Returns 0 or -1 (printed).
static int
s_check_brokers (zr_cli_args_t *args)
{
    const char *named = zr_cli_get (args, "brokers");
    if (!named)
        return 0;
    char *copy = strdup (named);
    char *save = NULL;
    int rc = 0, n = 0;
    for (char *ep = strtok_r (copy, ",", &save); ep && rc == 0;
         ep = strtok_r (NULL, ",", &save), n++)
        if (!strstr (ep, "://")) {
            fprintf (stderr, "zrocket: --brokers: '%s' is not an endpoint "
                     "(like tcp://10.0.0.5:10911)\n", ep);
            rc = -1;
        }
    if (rc == 0 && n == 0) {
        fprintf (stderr, "zrocket: --brokers: empty list\n");
        rc = -1;
    }
    free (copy);
    return rc;
}

//  A client to the broker of fabric for a command that needs one. When
//  there is only a nameserver, prints why not and returns NULL.
static zr_client_t *
s_broker_client (const char *cmd, zr_cli_fabric_t *fabric)
{
    if (!fabric->broker) {
        fprintf (stderr, "zrocket %s: needs a broker (--broker or "
                 "ZR_BROKER); found only nameservers at %s (zrocket "
                 "cluster lists the brokers)\n", cmd, fabric->nameservers);
        return NULL;
    }
    return s_client (fabric->broker);
}

//  --------------------------------------------------------------------
//  topic

static const zr_cli_opt_t s_topic_opts [] = {
    { "queues", "N", "create: number of queues (1..1024, default 8)" },
    { "retention-ms", "MS", "create: keep messages this long (0: "
                            "forever; default: the broker's)" },
    { "retention-bytes", "N", "create: keep at most this many bytes "
                              "(0: unlimited; default: the broker's)" },
    { "brokers", "LIST", "through a nameserver: these brokers "
                         "(comma-separated endpoints), not every master" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

static void
s_topic_usage (FILE *stream)
{
    zr_cli_usage (stream,
        "zrocket topic create NAME [--queues N] [--retention-ms MS]\n"
        "                             [--retention-bytes N] "
        "[--brokers EP,EP]\n"
        "       zrocket topic list\n"
        "       zrocket topic delete NAME",
        "Creates a topic (or grows its queue count), lists topics (one\n"
        "line per topic: NAME<TAB>QUEUES), or deletes a topic with its\n"
        "messages and every group's offsets.\n"
        "Through a nameserver, create and delete act on every master\n"
        "broker it knows (or on --brokers) and print one line per broker:\n"
        "  NAME<TAB>QUEUES<TAB>created|exists<TAB>ENDPOINT\n"
        "  NAME<TAB>deleted<TAB>ENDPOINT\n"
        "create returns once every broker replied, which a broker does\n"
        "once its nameservers have the new route. create on an existing\n"
        "topic changes its retention (docs/protocol.md section 15).\n"
        "list merges the\n"
        "brokers' topics: NAME<TAB>QUEUES (sum)<TAB>BROKERS (count)."
        ZR_CLI_FABRIC_HELP, s_topic_opts);
}

//  Runs one topic request (sub: create, delete, list) on endpoint.
//  Returns the OK reply, or NULL after printing why (a TOPIC_NOT_FOUND
//  reply of delete is not printed when quiet_missing; *missing is set).
static int64_t s_retention_ms = -1;         //  --retention-ms, -1: none
static int64_t s_retention_bytes = -1;      //  --retention-bytes

static zr_reply_t *
s_topic_call (const char *endpoint, const char *sub, const char *name,
              int64_t queues, int timeout_ms, bool quiet_missing,
              bool *missing)
{
    zr_client_t *client = s_client (endpoint);
    if (!client)
        return NULL;
    if (streq (sub, "create")) {
        zr_enc_t *enc = zr_client_begin (client, "TOPIC_CREATE",
                                         2 + (s_retention_ms >= 0)
                                           + (s_retention_bytes >= 0));
        zr_enc_kstr (enc, "topic", name);
        zr_enc_kint (enc, "queues", queues);
        if (s_retention_ms >= 0)
            zr_enc_kint (enc, "retention_ms", s_retention_ms);
        if (s_retention_bytes >= 0)
            zr_enc_kint (enc, "retention_bytes", s_retention_bytes);
    }
    else
    if (streq (sub, "delete")) {
        zr_enc_t *enc = zr_client_begin (client, "TOPIC_DELETE", 1);
        zr_enc_kstr (enc, "topic", name);
    }
    else
        zr_client_begin (client, "TOPIC_LIST", 0);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, timeout_ms);
    if (!reply)
        fprintf (stderr, "zrocket: no broker answering at %s within %d ms\n",
                 endpoint, timeout_ms);
    else
    if (zr_reply_status (reply) != ZR_OK) {
        bool not_found = zr_reply_status (reply) == ZR_TOPIC_NOT_FOUND;
        if (missing)
            *missing = not_found;
        if (!(quiet_missing && not_found)) {
            const char *reason = zr_reply_reason (reply);
            fprintf (stderr, "zrocket topic %s: %s%s%s\n", sub,
                     zr_reply_status_str (reply), *reason ? ": " : "",
                     reason);
        }
        zr_reply_destroy (&reply);
    }
    zr_client_destroy (&client);
    return reply;
}

//  Adds the topics of a TOPIC_LIST reply to merged (name -> int64 pair
//  queues, brokers), or prints them when merged is NULL.
static void
s_topic_list_reply (zr_reply_t *reply, zhashx_t *merged)
{
    const zr_obj_t *topics = zr_obj_get (zr_reply_header (reply), "topics");
    for (size_t i = 0; i < zr_obj_size (topics); i++) {
        const zr_obj_t *t = zr_obj_at (topics, i);
        char name [ZR_NAME_MAX + 1];
        int64_t n = 0;
        if (zr_field_strbuf (t, "topic", name, sizeof name) != ZR_FIELD_OK)
            continue;
        zr_field_int (t, "queues", &n);
        if (!merged) {
            printf ("%s\t%" PRId64 "\n", name, n);
            continue;
        }
        int64_t *sum = (int64_t *) zhashx_lookup (merged, name);
        if (!sum) {
            sum = (int64_t *) zmalloc (2 * sizeof *sum);
            zhashx_insert (merged, name, sum);
        }
        sum [0] += n;
        sum [1]++;
    }
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
    zr_reply_t *reply = NULL;
    zr_cli_fabric_t fabric = { 0 };
    zlistx_t *targets = NULL;
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
    if (zr_cli_get_int (&args, "retention-ms", -1, 0, INT64_MAX,
                        &s_retention_ms)
    ||  zr_cli_get_int (&args, "retention-bytes", -1, 0, INT64_MAX,
                        &s_retention_bytes))
        goto done;
    if ((s_retention_ms >= 0 || s_retention_bytes >= 0)
    &&  !streq (sub, "create")) {
        fprintf (stderr, "zrocket topic %s: --retention-ms and "
                 "--retention-bytes apply to create only\n", sub);
        goto done;
    }
    if (s_check_brokers (&args))
        goto done;
    const char *name = needs_name ? args.pos [1] : NULL;
    bool named = zr_cli_get (&args, "brokers") != NULL;
    if (named) {
        //  --brokers names them all: no need to find anything
        int64_t t;
        if (zr_cli_get_int (&args, "timeout-ms", 3000, 1, 3600000, &t))
            goto done;
        fabric.timeout_ms = (int) t;
    }
    else {
        rc = zr_cli_fabric_find (&args, &fabric);
        if (rc)
            goto done;
    }
    rc = 1;
    int timeout_ms = fabric.timeout_ms;
    //  A broker answers a create once its nameservers have the route,
    //  which may take them a few seconds
    int call_ms = streq (sub, "create") ? timeout_ms + 3000 : timeout_ms;
    if (!named && !fabric.nameservers) {
        //  One broker
        const char *ep = fabric.broker;
        reply = s_topic_call (ep, sub, name, queues, call_ms, false, NULL);
        if (!reply)
            goto done;
        if (streq (sub, "create")) {
            int64_t n = queues;
            bool created = true;
            zr_field_int (zr_reply_header (reply), "queues", &n);
            zr_field_bool (zr_reply_header (reply), "created", &created);
            printf ("%s\t%" PRId64 "\t%s\n", name, n,
                    created ? "created" : "exists");
        }
        else
        if (streq (sub, "delete"))
            printf ("%s\tdeleted\n", name);
        else
            s_topic_list_reply (reply, NULL);
        rc = 0;
        goto done;
    }
    //  Through the nameservers: every master broker (or --brokers)
    targets = s_master_endpoints (&args, fabric.nameservers, timeout_ms);
    if (!targets)
        goto done;
    size_t ok = 0, failed = 0;
    zhashx_t *merged = zhashx_new ();
    zhashx_set_destructor (merged, (zhashx_destructor_fn *) zstr_free);
    for (const char *ep = (const char *) zlistx_first (targets); ep;
         ep = (const char *) zlistx_next (targets)) {
        bool missing = false;
        reply = s_topic_call (ep, sub, name, queues, call_ms,
                              streq (sub, "delete"), &missing);
        if (!reply) {
            if (!missing)
                failed++;
            continue;
        }
        ok++;
        if (streq (sub, "create")) {
            int64_t n = queues;
            bool created = true;
            zr_field_int (zr_reply_header (reply), "queues", &n);
            zr_field_bool (zr_reply_header (reply), "created", &created);
            printf ("%s\t%" PRId64 "\t%s\t%s\n", name, n,
                    created ? "created" : "exists", ep);
        }
        else
        if (streq (sub, "delete"))
            printf ("%s\tdeleted\t%s\n", name, ep);
        else
            s_topic_list_reply (reply, merged);
        zr_reply_destroy (&reply);
    }
    if (streq (sub, "list") && failed == 0) {
        zlistx_t *names = zhashx_keys (merged);
        zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
        zlistx_sort (names);
        for (const char *k = (const char *) zlistx_first (names); k;
             k = (const char *) zlistx_next (names)) {
            int64_t *sum = (int64_t *) zhashx_lookup (merged, k);
            printf ("%s\t%" PRId64 "\t%" PRId64 "\n", k, sum [0], sum [1]);
        }
        zlistx_destroy (&names);
    }
    zhashx_destroy (&merged);
    if (streq (sub, "delete") && ok == 0 && failed == 0)
        fprintf (stderr, "zrocket topic delete: TOPIC_NOT_FOUND: no broker "
                 "has topic '%s'\n", name);
    rc = failed == 0 && ok > 0 ? 0 : 1;
done:
    zlistx_destroy (&targets);
    zr_reply_destroy (&reply);
    zr_cli_fabric_free (&fabric);
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

//  Parses a command's options and finds the fabric. Returns -1 to go on
//  (fabric set), else the exit status (help printed: 0).
static int
s_simple (const char *cmd, int argc, char **argv, const char *synopsis,
          const char *text, int max_pos, zr_cli_args_t *args,
          zr_cli_fabric_t *fabric)
{
    memset (fabric, 0, sizeof *fabric);
    if (zr_cli_parse (cmd, s_client_opts, max_pos, argc, argv, args))
        return 2;
    if (args->help) {
        char *full = zsys_sprintf ("%s%s", text, ZR_CLI_FABRIC_HELP);
        zr_cli_usage (stdout, synopsis, full, s_client_opts);
        free (full);
        return 0;
    }
    int rc = zr_cli_fabric_find (args, fabric);
    return rc ? rc : -1;
}

int
zr_cli_stats (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    zr_client_t *client = NULL;
    int rc = s_simple ("stats", argc, argv, "zrocket stats",
        "Prints the broker's counters and gauges, one \"key value\" per\n"
        "line; per-topic figures read topic.NAME.key. Needs a broker.",
        0, &args, &fabric);
    if (rc < 0) {
        rc = 1;
        client = s_broker_client ("stats", &fabric);
    }
    if (client) {
        zr_client_begin (client, "STATS", 0);
        zr_reply_t *reply = s_call (client, "stats", fabric.timeout_ms);
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
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}

//  Endpoint of the master of the group a store id names, from the
//  nameservers (caller frees); NULL after printing why.
static char *
s_store_id_master (const char *store_id, const char *nameservers,
                   int timeout_ms)
{
    const char *colon = strchr (store_id, ':');
    if (!colon || colon == store_id) {
        fprintf (stderr, "zrocket msg: '%s' is not a store id "
                 "(GROUP:TOPIC:QUEUE:OFFSET)\n", store_id);
        return NULL;
    }
    char *group = zsys_sprintf ("%.*s", (int) (colon - store_id), store_id);
    zlistx_t *brokers = s_cluster_fetch (nameservers, timeout_ms);
    char *endpoint = NULL;
    for (s_broker_t *b = brokers ? (s_broker_t *) zlistx_first (brokers)
                                 : NULL;
         b && !endpoint; b = (s_broker_t *) zlistx_next (brokers))
        if (streq (b->group, group) && streq (b->role, "master")
        &&  !streq (b->endpoint, "-"))
            endpoint = strdup (b->endpoint);
    if (brokers && !endpoint)
        fprintf (stderr, "zrocket msg: the nameserver at %s knows no live "
                 "master of broker group '%s'\n", nameservers, group);
    zlistx_destroy (&brokers);
    free (group);
    return endpoint;
}

int
zr_cli_msg (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    zr_client_t *client = NULL;
    if (argc > 1 && streq (argv [1], "find"))
        return zr_cli_msg_find (argc - 1, argv + 1);
    int rc = s_simple ("msg", argc, argv, "zrocket msg STORE_ID",
        "Looks a message up by its store id (GROUP:TOPIC:QUEUE:OFFSET) and\n"
        "prints its fields, one \"key value\" per line (properties as\n"
        "prop.NAME), then an empty line, then the body. With only a\n"
        "nameserver, asks the master of the store id's broker group.\n"
        "zrocket msg find --topic T (--id ID | --key K): by id or key.", 1,
        &args, &fabric);
    if (rc < 0 && args.npos != 1) {
        fprintf (stderr, "zrocket msg: needs a STORE_ID\n");
        rc = 2;
    }
    if (rc < 0) {
        rc = 1;
        if (fabric.broker)
            client = s_client (fabric.broker);
        else {
            char *ep = s_store_id_master (args.pos [0], fabric.nameservers,
                                          fabric.timeout_ms);
            if (ep)
                client = s_client (ep);
            zstr_free (&ep);
        }
    }
    if (client) {
        zr_enc_t *enc = zr_client_begin (client, "GET_MSG", 1);
        zr_enc_kstr (enc, "store_id", args.pos [0]);
        zr_reply_t *reply = s_call (client, "msg", fabric.timeout_ms);
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
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}

int
zr_cli_ping (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    int rc = s_simple ("ping", argc, argv, "zrocket ping",
        "Asks the broker for a PING reply and prints one line:\n"
        "  OK<TAB>GROUP<TAB>VERSION<TAB>ROUND_TRIP_MS\n"
        "With only a nameserver, pings the first that answers:\n"
        "  OK<TAB>nameserver<TAB>VERSION<TAB>ROUND_TRIP_MS<TAB>CLUSTER"
        "<TAB>ENDPOINT", 0, &args, &fabric);
    if (rc < 0) {
        rc = 1;
        int64_t start = zclock_usecs ();
        zr_reply_t *reply = NULL;
        char *which = NULL;
        if (fabric.broker) {
            zr_client_t *client = s_client (fabric.broker);
            if (client) {
                zr_client_begin (client, "PING", 0);
                reply = s_call (client, "ping", fabric.timeout_ms);
            }
            zr_client_destroy (&client);
        }
        else
            reply = zr_cli_ns_call (fabric.nameservers, "PING", NULL,
                                    fabric.timeout_ms, &which);
        if (reply && zr_reply_status (reply) == ZR_OK) {
            double rtt = (zclock_usecs () - start) / 1000.0;
            const zr_obj_t *hdr = zr_reply_header (reply);
            char *version = zr_field_strdup (hdr, "version");
            if (which) {
                char *cluster = zr_field_strdup (hdr, "cluster");
                printf ("OK\tnameserver\t%s\t%.3f\t%s\t%s\n",
                        version ? version : "?", rtt,
                        cluster ? cluster : "?", which);
                zstr_free (&cluster);
            }
            else {
                char *group = zr_field_strdup (hdr, "broker");
                printf ("OK\t%s\t%s\t%.3f\n", group ? group : "?",
                        version ? version : "?", rtt);
                zstr_free (&group);
            }
            zstr_free (&version);
            rc = 0;
        }
        else
        if (reply) {
            const char *reason = zr_reply_reason (reply);
            fprintf (stderr, "zrocket ping: %s%s%s\n",
                     zr_reply_status_str (reply), *reason ? ": " : "",
                     reason);
        }
        zr_reply_destroy (&reply);
        zstr_free (&which);
    }
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}

//  --------------------------------------------------------------------
//  cluster, route: nameserver queries

//  The nameservers of fabric, or NULL after printing that cmd needs one.
static const char *
s_need_nameserver (const char *cmd, zr_cli_fabric_t *fabric)
{
    if (!fabric->nameservers)
        fprintf (stderr, "zrocket %s: needs a nameserver (--nameserver or "
                 "ZR_NAMESERVER); found only a broker at %s\n", cmd,
                 fabric->broker);
    return fabric->nameservers;
}

int
zr_cli_cluster (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    int rc = s_simple ("cluster", argc, argv, "zrocket cluster",
        "Prints one line per live broker the nameserver knows, in\n"
        "(group, broker id) order, with no header line:\n"
        "  GROUP<TAB>ROLE<TAB>ENDPOINT<TAB>EPOCH<TAB>AGE_MS\n"
        "ROLE is master or slave; ENDPOINT the broker's first client\n"
        "endpoint; AGE_MS the time since its last heartbeat. Nothing is\n"
        "printed (exit 0) when no broker is registered.", 0, &args,
        &fabric);
    const char *ns = rc < 0 ? s_need_nameserver ("cluster", &fabric) : NULL;
    if (rc < 0)
        rc = 1;
    zlistx_t *brokers = ns ? s_cluster_fetch (ns, fabric.timeout_ms) : NULL;
    if (brokers) {
        for (s_broker_t *b = (s_broker_t *) zlistx_first (brokers); b;
             b = (s_broker_t *) zlistx_next (brokers))
            printf ("%s\t%s\t%s\t%" PRId64 "\t%" PRId64 "\n", b->group,
                    b->role, b->endpoint, b->epoch, b->age_ms);
        rc = 0;
    }
    zlistx_destroy (&brokers);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}

int
zr_cli_route (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric;
    int rc = s_simple ("route", argc, argv, "zrocket route TOPIC",
        "Prints one line per broker group serving TOPIC, with no header:\n"
        "  GROUP<TAB>MASTER<TAB>QUEUES<TAB>AGE_MS\n"
        "MASTER is the master's endpoint, - when the group has no live\n"
        "master; AGE_MS the time since the master's last heartbeat.\n"
        "Exit status 1 when no live broker serves TOPIC.", 1, &args,
        &fabric);
    if (rc < 0 && args.npos != 1) {
        fprintf (stderr, "zrocket route: needs a TOPIC\n");
        rc = 2;
    }
    const char *ns = rc < 0 ? s_need_nameserver ("route", &fabric) : NULL;
    if (rc < 0)
        rc = 1;
    zr_reply_t *reply = ns ? zr_cli_ns_call (ns, "GET_ROUTE", args.pos [0],
                                             fabric.timeout_ms, NULL)
                           : NULL;
    if (reply && zr_reply_status (reply) != ZR_OK) {
        const char *reason = zr_reply_reason (reply);
        fprintf (stderr, "zrocket route: %s%s%s\n",
                 zr_reply_status_str (reply), *reason ? ": " : "", reason);
    }
    else
    if (reply) {
        const zr_obj_t *groups = zr_obj_get (zr_reply_header (reply),
                                             "groups");
        for (size_t i = 0; i < zr_obj_size (groups); i++) {
            const zr_obj_t *g = zr_obj_at (groups, i);
            char *group = zr_field_strdup (g, "group");
            char *master = zr_field_strdup (g, "master");
            int64_t queues = 0, age = -1;
            zr_field_int (g, "queues", &queues);
            zr_field_int (g, "age_ms", &age);
            printf ("%s\t%s\t%" PRId64 "\t%" PRId64 "\n",
                    group ? group : "?", master && *master ? master : "-",
                    queues, age);
            zstr_free (&group);
            zstr_free (&master);
        }
        rc = 0;
    }
    zr_reply_destroy (&reply);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}

//  --------------------------------------------------------------------
//  admin promote

static const zr_cli_opt_t s_admin_opts [] = {
    { "group", "NAME", "through a nameserver: the broker group of the "
                       "target (needed when ids repeat across groups)" },
    { "wait-ms", "MS", "how long the master may hold writes for the "
                       "handover before it gives up (default 10000)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

static void
s_admin_usage (FILE *stream)
{
    char *text = zsys_sprintf ("%s%s",
        "Graceful handover (docs/ha.md): asks the master of the target's\n"
        "broker group to make TARGET (a broker id, or a broker's client\n"
        "endpoint, resolved through the nameserver) master of the next\n"
        "epoch. The master stops taking writes (NOT_MASTER: routed\n"
        "producers resend), waits until the target has everything,\n"
        "resigns its epoch at the nameservers and tells the target to take\n"
        "over; it then follows the target as a slave (with --master).\n"
        "The master is --broker, or found through the nameserver. Needs\n"
        "brokers with --failover true. On success prints one line:\n"
        "  OK<TAB>TARGET_ID<TAB>EPOCH<TAB>PAUSED_MS\n"
        "(PAUSED_MS: how long the old master refused writes). On an error\n"
        "(target unknown or not in the in-sync set, a timeout) the master\n"
        "keeps or resumes taking writes in its epoch; exit status 1.",
        ZR_CLI_FABRIC_HELP);
    zr_cli_usage (stream, "zrocket admin promote BROKER_ID|ENDPOINT "
                  "[--group G] [--wait-ms MS]", text, s_admin_opts);
    free (text);
}

//  Through the nameservers: finds the target's id (when an endpoint was
//  given) and its group's master endpoint. 0 or -1 (printed).
static int
s_promote_find (const char *nameservers, const char *target,
                const char *group, int timeout_ms, int64_t *target_id,
                char **master)
{
    zlistx_t *brokers = s_cluster_fetch (nameservers, timeout_ms);
    if (!brokers)
        return -1;
    bool by_ep = strstr (target, "://") != NULL;
    const char *found_group = NULL;
    int matches = 0;
    for (s_broker_t *b = (s_broker_t *) zlistx_first (brokers); b;
         b = (s_broker_t *) zlistx_next (brokers)) {
        if (group && strneq (b->group, group))
            continue;
        if (by_ep ? streq (b->endpoint, target) : b->broker_id == *target_id) {
            if (!found_group || strneq (found_group, b->group))
                matches++;
            found_group = b->group;
            *target_id = b->broker_id;
        }
    }
    int rc = -1;
    if (matches == 0)
        fprintf (stderr, "zrocket admin promote: the nameserver at %s knows "
                 "no live broker %s%s%s (zrocket cluster lists them)\n",
                 nameservers, target, group ? " in group " : "",
                 group ? group : "");
    else
    if (matches > 1)
        fprintf (stderr, "zrocket admin promote: broker id %s is in "
                 "several groups; name one with --group\n", target);
    else {
        for (s_broker_t *b = (s_broker_t *) zlistx_first (brokers);
             b && !*master; b = (s_broker_t *) zlistx_next (brokers))
            if (streq (b->group, found_group) && streq (b->role, "master")
            &&  !streq (b->endpoint, "-"))
                *master = strdup (b->endpoint);
        if (*master)
            rc = 0;
        else
            fprintf (stderr, "zrocket admin promote: the nameserver at %s "
                     "knows no live master of group %s\n", nameservers,
                     found_group);
    }
    zlistx_destroy (&brokers);
    return rc;
}

//  Sends PROMOTE to master; follows one NOT_MASTER that names a master.
//  Returns the exit status.
static int
s_promote_call (const char *master, int64_t target, int64_t wait_ms,
                int timeout_ms)
{
    char *endpoint = strdup (master);
    int rc = 1;
    for (int hop = 0; hop < 2; hop++) {
        zr_client_t *client = s_client (endpoint);
        if (!client)
            break;
        zr_enc_t *enc = zr_client_begin (client, "PROMOTE", 2);
        zr_enc_kint (enc, "target", target);
        zr_enc_kint (enc, "timeout_ms", wait_ms);
        int call_ms = (int) wait_ms + timeout_ms;
        zr_reply_t *reply = zr_client_call (client, NULL, 0, call_ms);
        zr_client_destroy (&client);
        if (!reply) {
            fprintf (stderr, "zrocket: no broker answering at %s within %d "
                     "ms\n", endpoint, call_ms);
            break;
        }
        const zr_obj_t *h = zr_reply_header (reply);
        char *next = zr_field_strdup (h, "master");
        if (zr_reply_status (reply) == ZR_NOT_MASTER && next && *next
        &&  strneq (next, endpoint) && hop == 0) {
            free (endpoint);
            endpoint = next;
            zr_reply_destroy (&reply);
            continue;       //  we asked a slave: ask its master
        }
        zstr_free (&next);
        if (zr_reply_status (reply) == ZR_OK) {
            int64_t epoch = -1, paused = -1, id = target;
            zr_field_int (h, "epoch", &epoch);
            zr_field_int (h, "paused_ms", &paused);
            zr_field_int (h, "master_id", &id);
            printf ("OK\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\n", id,
                    epoch, paused);
            rc = 0;
        }
        else {
            const char *reason = zr_reply_reason (reply);
            fprintf (stderr, "zrocket admin promote: %s%s%s\n",
                     zr_reply_status_str (reply), *reason ? ": " : "",
                     reason);
        }
        zr_reply_destroy (&reply);
        break;
    }
    free (endpoint);
    return rc;
}

int
zr_cli_admin (int argc, char **argv)
{
    zr_cli_args_t args;
    zr_cli_fabric_t fabric = { 0 };
    int rc = 2;
    char *master = NULL;
    if (zr_cli_parse ("admin", s_admin_opts, 2, argc, argv, &args))
        goto done;
    if (args.help) {
        s_admin_usage (stdout);
        rc = 0;
        goto done;
    }
    if (args.npos < 1 || strneq (args.pos [0], "promote")) {
        fprintf (stderr, "zrocket admin: unknown or missing subcommand%s%s "
                 "(admin promote BROKER_ID|ENDPOINT; see --help)\n",
                 args.npos ? " " : "", args.npos ? args.pos [0] : "");
        goto done;
    }
    if (args.npos != 2) {
        fprintf (stderr, "zrocket admin promote: needs a BROKER_ID or a "
                 "broker ENDPOINT\n");
        goto done;
    }
    const char *target = args.pos [1];
    int64_t target_id = -1, wait_ms;
    if (!strstr (target, "://")) {
        char *end = NULL;
        long long v = strtoll (target, &end, 10);
        if (!*target || *end || v < 0 || v > 1000000) {
            fprintf (stderr, "zrocket admin promote: '%s' is neither a "
                     "broker id (0..1000000) nor an endpoint\n", target);
            goto done;
        }
        target_id = v;
    }
    if (zr_cli_get_int (&args, "wait-ms", 10000, 100, 600000, &wait_ms))
        goto done;
    rc = zr_cli_fabric_find (&args, &fabric);
    if (rc)
        goto done;
    rc = 1;
    if (fabric.broker && target_id < 0 && !fabric.nameservers) {
        fprintf (stderr, "zrocket admin promote: an ENDPOINT target needs a "
                 "nameserver to find its broker id; give the id\n");
        goto done;
    }
    if (fabric.broker && target_id >= 0)
        master = strdup (fabric.broker);
    else
    if (s_promote_find (fabric.nameservers, target, zr_cli_get (&args,
                        "group"), fabric.timeout_ms, &target_id, &master))
        goto done;
    if (fabric.broker) {
        free (master);
        master = strdup (fabric.broker);
    }
    rc = s_promote_call (master, target_id, wait_ms, fabric.timeout_ms);
done:
    free (master);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}
