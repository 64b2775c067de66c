/*  actors/cli_group.c - `zrocket group status|reset` and `zrocket dlq
    list|resend`: consumer-group administration (docs/protocol.md section
    11) over client/client.h.

    Through a nameserver these commands act on every master broker it
    knows (GET_CLUSTER), or, for `group reset`, on the masters of the
    broker groups serving the topic (GET_ROUTE); with only a broker, on
    that broker. Lines that come from one broker start with its broker
    group name, so the output of several brokers merges into one table.
*/
#include "actors/cli.h"
#include "client/client.h"

#define S_DLQ_MAX 1024          //  most DLQ_LIST messages per broker

//  A broker to ask: its broker group and endpoint.
typedef struct {
    char *group;
    char *endpoint;
} s_target_t;

static void
s_target_destroy (s_target_t **self_p)
{
    s_target_t *self = *self_p;
    if (!self)
        return;
    free (self->group);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static zlistx_t *
s_targets_new (void)
{
    zlistx_t *list = zlistx_new ();
    zlistx_set_destructor (list, (zlistx_destructor_fn *) s_target_destroy);
    return list;
}

static void
s_target_add (zlistx_t *list, const char *group, const char *endpoint)
{
    s_target_t *target = (s_target_t *) zmalloc (sizeof *target);
    target->group = strdup (group && *group ? group : "?");
    target->endpoint = strdup (endpoint);
    zlistx_add_end (list, target);
}

//  The brokers to act on: with nameservers, every live master they know
//  (topic NULL) or the masters serving topic; else the one broker.
//  Returns a non-empty list (caller destroys), or NULL after printing
//  why.
static zlistx_t *
s_targets (zr_cli_fabric_t *fabric, const char *cmd, const char *topic)
{
    zlistx_t *list = s_targets_new ();
    if (!fabric->nameservers) {
        char *group = NULL;
        if (zr_cli_ping_broker (fabric->broker, fabric->timeout_ms, &group)) {
            zlistx_destroy (&list);
            return NULL;
        }
        s_target_add (list, group, fabric->broker);
        zstr_free (&group);
        return list;
    }
    const char *ns = fabric->nameservers;
    if (topic) {
        char *err = NULL;
        zr_route_t *route = zr_route_lookup (ns, topic, fabric->timeout_ms,
                                             &err);
        if (!route) {
            fprintf (stderr, "zrocket %s: %s\n", cmd,
                     err ? err : "route lookup failed");
            zstr_free (&err);
            zlistx_destroy (&list);
            return NULL;
        }
        for (size_t i = 0; i < zr_route_groups (route); i++) {
            const char *master = zr_route_master (route, i);
            if (master && *master)
                s_target_add (list, zr_route_group (route, i), master);
        }
        zr_route_destroy (&route);
        if (zlistx_size (list) == 0) {
            fprintf (stderr, "zrocket %s: no live master broker serves "
                     "topic '%s' (nameservers %s)\n", cmd, topic, ns);
            zlistx_destroy (&list);
        }
        return list;
    }
    zr_reply_t *reply = zr_cli_ns_call (ns, "GET_CLUSTER", NULL,
                                        fabric->timeout_ms, NULL);
    if (!reply) {
        zlistx_destroy (&list);
        return NULL;
    }
    if (zr_reply_status (reply) != ZR_OK) {
        const char *reason = zr_reply_reason (reply);
        fprintf (stderr, "zrocket: nameserver GET_CLUSTER: %s%s%s\n",
                 zr_reply_status_str (reply), *reason ? ": " : "", reason);
        zr_reply_destroy (&reply);
        zlistx_destroy (&list);
        return NULL;
    }
    const zr_obj_t *brokers = zr_obj_get (zr_reply_header (reply),
                                          "brokers");
    for (size_t i = 0; i < zr_obj_size (brokers); i++) {
        const zr_obj_t *b = zr_obj_at (brokers, i);
        char *role = zr_field_strdup (b, "role");
        int64_t id = -1;
        zr_field_int (b, "broker_id", &id);
        bool master = role ? streq (role, "master") : id == 0;
        zstr_free (&role);
        const char *ep;
        size_t len;
        if (!master
        ||  zr_obj_str (zr_obj_at (zr_obj_get (b, "endpoints"), 0), &ep,
                        &len) != ZR_FIELD_OK || len == 0)
            continue;
        char *endpoint = zsys_sprintf ("%.*s", (int) len, ep);
        char *group = zr_field_strdup (b, "group");
        s_target_add (list, group, endpoint);
        zstr_free (&group);
        zstr_free (&endpoint);
    }
    zr_reply_destroy (&reply);
    if (zlistx_size (list) == 0) {
        fprintf (stderr, "zrocket: the nameserver at %s knows no master "
                 "broker (zrocket cluster lists the brokers)\n", ns);
        zlistx_destroy (&list);
    }
    return list;
}

//  Sends the request begun on client; returns the OK reply, or NULL
//  after printing why (no answer, or another status).
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
        fprintf (stderr, "zrocket %s: %s: %s%s%s\n", what,
                 zr_client_endpoint (client), zr_reply_status_str (reply),
                 *reason ? ": " : "", reason);
        zr_reply_destroy (&reply);
    }
    return reply;
}

//  Prints s with tabs, newlines and carriage returns as spaces (one
//  field of a tab-separated line).
static void
s_print_field (const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s [i];
        putchar (c == '\t' || c == '\n' || c == '\r' ? ' ' : c);
    }
}

//  Checks the GROUP positional argument. Returns 0 or -1 (printed).
static int
s_check_group (const char *cmd, zr_cli_args_t *args, int min_pos)
{
    if (args->npos < min_pos) {
        fprintf (stderr, "zrocket %s: needs a GROUP (see zrocket %s "
                 "--help)\n", cmd, cmd);
        return -1;
    }
    const char *group = args->pos [1];
    if (!zr_name_valid (group, strlen (group))) {
        fprintf (stderr, "zrocket %s: '%s' is not a group name (1..%d of "
                 "A-Z a-z 0-9 _ - %% |)\n", cmd, group, ZR_NAME_MAX);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------
//  group

static const zr_cli_opt_t s_group_opts [] = {
    { "topic", "TOPIC", "status: only this topic's queues (also when no "
                        "member consumes it now); reset: the topic" },
    { "to", "WHERE", "reset: first | last | TIME (ms since the epoch, or "
                     "2026-11-22T10:00:00, Z for UTC)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

static void
s_group_usage (FILE *stream)
{
    zr_cli_usage (stream,
        "zrocket group status GROUP [--topic TOPIC]\n"
        "       zrocket group reset GROUP --topic TOPIC --to first|last|TIME",
        "status prints a consumer group's members, then its queues, as two\n"
        "tab-separated tables, each after a header line:\n"
        "  BROKER<TAB>CLIENT_ID<TAB>TOPICS<TAB>MODE<TAB>AGE_MS\n"
        "  one line per member (TOPICS comma-separated; AGE_MS since it\n"
        "  joined), then an empty line, then\n"
        "  BROKER<TAB>TOPIC<TAB>QUEUE<TAB>OWNER<TAB>COMMITTED<TAB>MAX<TAB>"
        "LAG<TAB>OLDEST_AGE_MS\n"
        "  one line per queue of every topic the members consume (and the\n"
        "  group's %RETRY% topic): OWNER is the member holding the queue's\n"
        "  lease (- when none), COMMITTED the group's offset (-1 when\n"
        "  none), MAX the offset of the next message stored, LAG the\n"
        "  messages not consumed yet, OLDEST_AGE_MS the age of the oldest\n"
        "  of them (0 when none).\n"
        "BROKER is the broker group that answered: through a nameserver,\n"
        "every master it knows is asked and the answers are merged. An\n"
        "unknown group prints the two header lines only. The broker lists\n"
        "the topics of live members; --topic TOPIC shows only TOPIC's\n"
        "queues, also when no member consumes it now (read from the\n"
        "queues' bounds and the group's committed offsets).\n"
        "reset sets the group's offset of every queue of TOPIC, on every\n"
        "broker group serving it, to the first message, past the last, or\n"
        "to the first message stored at or after TIME; members are told.\n"
        "It prints one line per broker: BROKER<TAB>QUEUES_SET.\n"
        "Exit status: 0 when every broker answered OK, 1 otherwise."
        ZR_CLI_FABRIC_HELP, s_group_opts);
}

//  Prints the members or the queues of one GROUP_STATUS reply (only
//  those of topic when not NULL). Returns the number of lines printed.
static size_t
s_status_print (const char *broker, zr_reply_t *reply, bool members,
                const char *only)
{
    size_t lines = 0;
    const zr_obj_t *hdr = zr_reply_header (reply);
    if (members) {
        const zr_obj_t *list = zr_obj_get (hdr, "members");
        for (size_t i = 0; i < zr_obj_size (list); i++) {
            const zr_obj_t *m = zr_obj_at (list, i);
            char *id = zr_field_strdup (m, "client_id");
            char *mode = zr_field_strdup (m, "mode");
            int64_t age = -1;
            zr_field_int (m, "age_ms", &age);
            printf ("%s\t%s\t", broker, id ? id : "?");
            const zr_obj_t *topics = zr_obj_get (m, "topics");
            for (size_t t = 0; t < zr_obj_size (topics); t++) {
                const char *s;
                size_t len;
                if (zr_obj_str (zr_obj_at (topics, t), &s, &len))
                    continue;
                if (t > 0)
                    putchar (',');
                s_print_field (s, len);
            }
            printf ("\t%s\t%" PRId64 "\n", mode ? mode : "clustering", age);
            zstr_free (&id);
            zstr_free (&mode);
            lines++;
        }
        return lines;
    }
    const zr_obj_t *list = zr_obj_get (hdr, "queues");
    for (size_t i = 0; i < zr_obj_size (list); i++) {
        const zr_obj_t *q = zr_obj_at (list, i);
        char *topic = zr_field_strdup (q, "topic");
        if (only && (!topic || !streq (topic, only))) {
            zstr_free (&topic);
            continue;
        }
        char *owner = zr_field_strdup (q, "owner");
        int64_t queue = -1, committed = -1, max = 0, lag = 0, oldest = 0;
        zr_field_int (q, "queue", &queue);
        zr_field_int (q, "committed", &committed);
        zr_field_int (q, "max", &max);
        zr_field_int (q, "lag", &lag);
        zr_field_int (q, "oldest_age_ms", &oldest);
        printf ("%s\t%s\t%" PRId64 "\t%s\t%" PRId64 "\t%" PRId64 "\t%"
                PRId64 "\t%" PRId64 "\n", broker, topic ? topic : "?", queue,
                owner && *owner ? owner : "-", committed, max, lag, oldest);
        zstr_free (&topic);
        zstr_free (&owner);
        lines++;
    }
    return lines;
}

//  Prints the queue lines of topic for a group that no member of which
//  consumes it now (GROUP_STATUS lists only the topics of live members):
//  offsets from the broker's queue bounds and the group's committed
//  offsets. Returns 0, or -1 after printing why.
static int
s_status_offline (const char *broker, const char *endpoint,
                  const char *group, const char *topic, int timeout_ms)
{
    zr_consumer_t *consumer = zr_consumer_new (endpoint);
    if (!consumer) {
        fprintf (stderr, "zrocket: cannot connect to '%s'\n", endpoint);
        return -1;
    }
    zr_consumer_set_timeout (consumer, timeout_ms);
    int rc = 0;
    int queues = zr_consumer_queues (consumer, topic);
    if (queues < 0) {
        fprintf (stderr, "zrocket group status: %s: no topic '%s' (or no "
                 "answer within %d ms)\n", endpoint, topic, timeout_ms);
        rc = -1;
    }
    int64_t wall = zclock_time ();
    for (int q = 0; q < queues && rc == 0; q++) {
        int64_t min = 0, max = 0, committed = -1;
        if (zr_consumer_queue_offsets (consumer, topic, q, &min, &max)
        ||  zr_consumer_committed (consumer, group, topic, q, &committed)) {
            fprintf (stderr, "zrocket group status: %s: no answer about "
                     "%s queue %d within %d ms\n", endpoint, topic, q,
                     timeout_ms);
            rc = -1;
            break;
        }
        int64_t pos = committed >= min ? committed : min;
        int64_t lag = max - (committed >= 0 ? committed : min);
        int64_t age = 0;
        if (pos < max) {
            zr_pull_t *pull = zr_consumer_pull (consumer, topic, q, pos, 1,
                                                0);
            if (pull && zr_pull_status (pull) == ZR_OK
            &&  zr_pull_count (pull) > 0) {
                int64_t stored = zr_message_stored (zr_pull_message (pull,
                                                                     0));
                age = wall - stored > 1 ? wall - stored : 1;
            }
            zr_pull_destroy (&pull);
        }
        printf ("%s\t%s\t%d\t-\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%"
                PRId64 "\n", broker, topic, q, committed, max,
                lag > 0 ? lag : 0, age);
    }
    zr_consumer_destroy (&consumer);
    return rc;
}

static int
s_group_status (zr_cli_fabric_t *fabric, const char *group,
                const char *topic)
{
    zlistx_t *targets = s_targets (fabric, "group status", topic);
    if (!targets)
        return 1;
    int rc = 0;
    //  Every broker's reply first, so both tables are complete
    zlistx_t *replies = zlistx_new ();
    zlistx_set_destructor (replies, (zlistx_destructor_fn *)
                           zr_reply_destroy);
    zlistx_t *names = zlistx_new ();
    zlistx_t *endpoints = zlistx_new ();
    for (s_target_t *t = (s_target_t *) zlistx_first (targets); t;
         t = (s_target_t *) zlistx_next (targets)) {
        zr_client_t *client = zr_client_new (t->endpoint);
        zr_reply_t *reply = NULL;
        if (client) {
            zr_enc_t *enc = zr_client_begin (client, "GROUP_STATUS", 1);
            zr_enc_kstr (enc, "group", group);
            reply = s_call (client, "group status", fabric->timeout_ms);
        }
        else
            fprintf (stderr, "zrocket: cannot connect to '%s'\n",
                     t->endpoint);
        zr_client_destroy (&client);
        if (reply) {
            zlistx_add_end (replies, reply);
            zlistx_add_end (names, t->group);
            zlistx_add_end (endpoints, t->endpoint);
        }
        else
            rc = 1;
    }
    printf ("BROKER\tCLIENT_ID\tTOPICS\tMODE\tAGE_MS\n");
    const char *name = (const char *) zlistx_first (names);
    for (zr_reply_t *r = (zr_reply_t *) zlistx_first (replies); r;
         r = (zr_reply_t *) zlistx_next (replies)) {
        s_status_print (name, r, true, NULL);
        name = (const char *) zlistx_next (names);
    }
    printf ("\nBROKER\tTOPIC\tQUEUE\tOWNER\tCOMMITTED\tMAX\tLAG\t"
            "OLDEST_AGE_MS\n");
    name = (const char *) zlistx_first (names);
    const char *ep = (const char *) zlistx_first (endpoints);
    for (zr_reply_t *r = (zr_reply_t *) zlistx_first (replies); r;
         r = (zr_reply_t *) zlistx_next (replies)) {
        if (s_status_print (name, r, false, topic) == 0 && topic
        &&  s_status_offline (name, ep, group, topic, fabric->timeout_ms))
            rc = 1;
        name = (const char *) zlistx_next (names);
        ep = (const char *) zlistx_next (endpoints);
    }
    zlistx_destroy (&endpoints);
    zlistx_destroy (&names);
    zlistx_destroy (&replies);
    zlistx_destroy (&targets);
    return rc;
}

static int
s_group_reset (zr_cli_fabric_t *fabric, const char *group,
               const char *topic, const char *to, int64_t to_ms)
{
    zlistx_t *targets = s_targets (fabric, "group reset", topic);
    if (!targets)
        return 1;
    int rc = 0;
    for (s_target_t *t = (s_target_t *) zlistx_first (targets); t;
         t = (s_target_t *) zlistx_next (targets)) {
        zr_client_t *client = zr_client_new (t->endpoint);
        if (!client) {
            fprintf (stderr, "zrocket: cannot connect to '%s'\n",
                     t->endpoint);
            rc = 1;
            continue;
        }
        zr_enc_t *enc = zr_client_begin (client, "RESET_OFFSET", 3);
        zr_enc_kstr (enc, "group", group);
        zr_enc_kstr (enc, "topic", topic);
        if (to_ms >= 0)
            zr_enc_kint (enc, "to", to_ms);
        else
            zr_enc_kstr (enc, "to", to);
        zr_reply_t *reply = s_call (client, "group reset",
                                    fabric->timeout_ms);
        if (reply) {
            int64_t queues = 0;
            zr_field_int (zr_reply_header (reply), "queues", &queues);
            printf ("%s\t%" PRId64 "\n", t->group, queues);
        }
        else
            rc = 1;
        zr_reply_destroy (&reply);
        zr_client_destroy (&client);
    }
    zlistx_destroy (&targets);
    return rc;
}

int
zr_cli_group (int argc, char **argv)
{
    zr_cli_args_t args;
    if (zr_cli_parse ("group", s_group_opts, 2, argc, argv, &args)) {
        zr_cli_args_free (&args);
        return 2;
    }
    int rc = 2;
    zr_cli_fabric_t fabric = { 0 };
    if (args.help) {
        s_group_usage (stdout);
        rc = 0;
        goto done;
    }
    const char *sub = args.npos > 0 ? args.pos [0] : NULL;
    if (!sub || (!streq (sub, "status") && !streq (sub, "reset"))) {
        if (sub)
            fprintf (stderr, "zrocket group: unknown subcommand '%s' (see "
                     "zrocket group --help)\n", sub);
        else
            fprintf (stderr, "zrocket group: say status or reset (see "
                     "zrocket group --help)\n");
        goto done;
    }
    if (s_check_group ("group", &args, 2))
        goto done;
    const char *group = args.pos [1];
    const char *topic = zr_cli_get (&args, "topic");
    const char *to = zr_cli_get (&args, "to");
    int64_t to_ms = -1;
    if (streq (sub, "status") && to) {
        fprintf (stderr, "zrocket group status: --to applies to reset "
                 "only\n");
        goto done;
    }
    if (topic && !zr_name_valid (topic, strlen (topic))) {
        fprintf (stderr, "zrocket group %s: --topic: '%s' is not a topic "
                 "name\n", sub, topic);
        goto done;
    }
    if (streq (sub, "reset")) {
        if (!topic) {
            fprintf (stderr, "zrocket group reset: --topic is required\n");
            goto done;
        }
        if (!to) {
            fprintf (stderr, "zrocket group reset: --to is required "
                     "(first, last or a TIME)\n");
            goto done;
        }
        if (!streq (to, "first") && !streq (to, "last")
        &&  zr_cli_parse_time (to, &to_ms)) {
            fprintf (stderr, "zrocket group reset: --to: '%s' is not first, "
                     "last, ms since the epoch or a time like "
                     "2026-11-22T10:00:00\n", to);
            goto done;
        }
    }
    rc = zr_cli_fabric_find (&args, &fabric);
    if (rc)
        goto done;
    if (streq (sub, "status"))
        rc = s_group_status (&fabric, group, topic);
    else
        rc = s_group_reset (&fabric, group, topic, to, to_ms);
done:
    fflush (stdout);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}

//  --------------------------------------------------------------------
//  dlq

static const zr_cli_opt_t s_dlq_opts [] = {
    { "max", "N", "list: most messages per broker (1..1024, default 100)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

static void
s_dlq_usage (FILE *stream)
{
    zr_cli_usage (stream,
        "zrocket dlq list GROUP [--max N]\n"
        "       zrocket dlq resend GROUP [ID...]",
        "list prints the group's dead-letter messages not resent yet,\n"
        "oldest first, one tab-separated line each, with no header line:\n"
        "  ID<TAB>ORIGIN_TOPIC<TAB>ORIGIN_QUEUE<TAB>ORIGIN_OFFSET<TAB>"
        "RECONSUME_TIMES<TAB>LAST_ERROR<TAB>BODY\n"
        "ID is the producer-assigned message id; tabs and newlines in\n"
        "LAST_ERROR print as spaces; BODY is printed as is (like consume).\n"
        "Nothing is printed (exit 0) when there are none.\n"
        "resend puts the dead-letter messages with these ids (all when no\n"
        "ID is given) back into the group's retry topic, with their\n"
        "reconsume count reset, and prints how many were resent.\n"
        "Through a nameserver both act on every master broker it knows.\n"
        "Exit status: 0 when every broker answered OK, 1 otherwise."
        ZR_CLI_FABRIC_HELP, s_dlq_opts);
}

static void
s_prop_field (zr_message_t *msg, const char *name, const char *dflt)
{
    const char *value = zr_message_prop (msg, name);
    if (!value || !*value)
        value = dflt;
    s_print_field (value, strlen (value));
}

static int
s_dlq_list (zr_cli_fabric_t *fabric, const char *group, int64_t max)
{
    zlistx_t *targets = s_targets (fabric, "dlq list", NULL);
    if (!targets)
        return 1;
    int rc = 0;
    for (s_target_t *t = (s_target_t *) zlistx_first (targets); t;
         t = (s_target_t *) zlistx_next (targets)) {
        zr_client_t *client = zr_client_new (t->endpoint);
        if (!client) {
            fprintf (stderr, "zrocket: cannot connect to '%s'\n",
                     t->endpoint);
            rc = 1;
            continue;
        }
        zr_enc_t *enc = zr_client_begin (client, "DLQ_LIST", 2);
        zr_enc_kstr (enc, "group", group);
        zr_enc_kint (enc, "max_count", max);
        zr_reply_t *reply = s_call (client, "dlq list", fabric->timeout_ms);
        const zr_obj_t *msgs = reply
            ? zr_obj_get (zr_reply_header (reply), "msgs") : NULL;
        if (!reply)
            rc = 1;
        for (size_t i = 0; i < zr_obj_size (msgs); i++) {
            zframe_t *body = i < zr_reply_bodies (reply)
                ? zr_reply_body (reply, i) : NULL;
            zr_message_t *msg = zr_message_from_wire (zr_obj_at (msgs, i),
                                                      body);
            if (!msg) {
                fprintf (stderr, "zrocket dlq list: bad message in the "
                         "reply of %s\n", t->endpoint);
                rc = 1;
                continue;
            }
            const char *id = zr_message_id (msg);
            s_print_field (id, strlen (id));
            putchar ('\t');
            s_prop_field (msg, "ORIGIN_TOPIC", "-");
            putchar ('\t');
            s_prop_field (msg, "ORIGIN_QUEUE", "-");
            putchar ('\t');
            s_prop_field (msg, "ORIGIN_OFFSET", "-");
            putchar ('\t');
            s_prop_field (msg, "RECONSUME_TIMES", "0");
            putchar ('\t');
            s_prop_field (msg, "LAST_ERROR", "-");
            putchar ('\t');
            fwrite (zr_message_body (msg), 1, zr_message_size (msg), stdout);
            putchar ('\n');
            zr_message_destroy (&msg);
        }
        zr_reply_destroy (&reply);
        zr_client_destroy (&client);
    }
    zlistx_destroy (&targets);
    return rc;
}

static int
s_dlq_resend (zr_cli_fabric_t *fabric, const char *group,
              zr_cli_args_t *args)
{
    zlistx_t *targets = s_targets (fabric, "dlq resend", NULL);
    if (!targets)
        return 1;
    int rc = 0;
    int64_t total = 0;
    int nids = args->npos - 2;
    for (s_target_t *t = (s_target_t *) zlistx_first (targets); t;
         t = (s_target_t *) zlistx_next (targets)) {
        zr_client_t *client = zr_client_new (t->endpoint);
        if (!client) {
            fprintf (stderr, "zrocket: cannot connect to '%s'\n",
                     t->endpoint);
            rc = 1;
            continue;
        }
        zr_enc_t *enc = zr_client_begin (client, "DLQ_RESEND",
                                         nids > 0 ? 2 : 1);
        zr_enc_kstr (enc, "group", group);
        if (nids > 0) {
            zr_enc_str (enc, "ids");
            zr_enc_array (enc, (size_t) nids);
            for (int i = 0; i < nids; i++)
                zr_enc_str (enc, args->pos [2 + i]);
        }
        zr_reply_t *reply = s_call (client, "dlq resend",
                                    fabric->timeout_ms);
        if (reply) {
            int64_t resent = 0;
            zr_field_int (zr_reply_header (reply), "resent", &resent);
            total += resent;
        }
        else
            rc = 1;
        zr_reply_destroy (&reply);
        zr_client_destroy (&client);
    }
    printf ("%" PRId64 "\n", total);
    zlistx_destroy (&targets);
    return rc;
}

int
zr_cli_dlq (int argc, char **argv)
{
    zr_cli_args_t args;
    if (zr_cli_parse ("dlq", s_dlq_opts, ZR_CLI_MAX_POS, argc, argv,
                      &args)) {
        zr_cli_args_free (&args);
        return 2;
    }
    int rc = 2;
    zr_cli_fabric_t fabric = { 0 };
    if (args.help) {
        s_dlq_usage (stdout);
        rc = 0;
        goto done;
    }
    const char *sub = args.npos > 0 ? args.pos [0] : NULL;
    if (!sub || (!streq (sub, "list") && !streq (sub, "resend"))) {
        if (sub)
            fprintf (stderr, "zrocket dlq: unknown subcommand '%s' (see "
                     "zrocket dlq --help)\n", sub);
        else
            fprintf (stderr, "zrocket dlq: say list or resend (see "
                     "zrocket dlq --help)\n");
        goto done;
    }
    if (s_check_group ("dlq", &args, 2))
        goto done;
    const char *group = args.pos [1];
    if (streq (sub, "list") && args.npos > 2) {
        fprintf (stderr, "zrocket dlq list: unexpected argument '%s'\n",
                 args.pos [2]);
        goto done;
    }
    if (streq (sub, "resend") && zr_cli_get (&args, "max")) {
        fprintf (stderr, "zrocket dlq resend: --max applies to list "
                 "only\n");
        goto done;
    }
    for (int i = 2; i < args.npos; i++)
        if (strlen (args.pos [i]) != ZR_MSG_ID_LEN
        ||  strspn (args.pos [i], "0123456789abcdefABCDEF")
            != ZR_MSG_ID_LEN) {
            fprintf (stderr, "zrocket dlq resend: '%s' is not a message id "
                     "(%d hex digits)\n", args.pos [i], ZR_MSG_ID_LEN);
            goto done;
        }
    int64_t max;
    if (zr_cli_get_int (&args, "max", 100, 1, S_DLQ_MAX, &max))
        goto done;
    rc = zr_cli_fabric_find (&args, &fabric);
    if (rc)
        goto done;
    if (streq (sub, "list"))
        rc = s_dlq_list (&fabric, group, max);
    else
        rc = s_dlq_resend (&fabric, group, &args);
done:
    fflush (stdout);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}
