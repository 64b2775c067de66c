/*  actors/cli_consume.c - `zrocket consume`: prints message bodies of a
    topic, one per line, in queue order per queue.

    Every queue has one long-polling PULL in flight at a time (all on one
    DEALER, matched by rid), so a message stored on any queue is printed
    the moment the broker answers, and queue order holds because a queue's
    next PULL goes out only after its previous reply. With --group the
    position of each queue starts at the group's committed offset, and
    offsets are committed after every printed batch.

    Through a nameserver, the topic's route names the master of every
    broker group serving it: the command reads every queue of every one
    (one DEALER and one consumer per broker; a group's commits go to its
    own broker), and looks the route up again every second so that a
    broker that joins (or comes back) is read too. When the route names
    a new master for a broker group (a failover), reading goes on there
    from the same positions (a slave holds the same queues at the same
    offsets); a PULL that gets no answer asks the route again at once
    instead of ending the command.
*/
#ifndef _GNU_SOURCE
#define _GNU_SOURCE             //  strptime, timegm
#endif
#include <pthread.h>
#include <time.h>
#include "actors/cli.h"
#include "client/client.h"

#define S_PULL_WAIT 1000        //  ms a PULL waits on the broker
#define S_PULL_MAX 256          //  messages per PULL
#define S_ROUTE_REFRESH 1000    //  ms between route lookups

static const zr_cli_opt_t s_opts [] = {
    { "topic", "TOPIC", "topic to read (required)" },
    { "group", "GROUP", "join this consumer group: share the queues with "
                        "its other members, commit offsets" },
    { "from", "WHERE", "first | last (default) | TIME: where to start" },
    { "count", "N", "stop after N messages (exit 2 if fewer arrive)" },
    { "tags", "EXPR", "only messages whose tag matches: *, TagA, "
                      "TagA || TagB (filtered on the broker)" },
    { "sql", "EXPR", "only messages whose properties match this SQL92 "
                     "expression, e.g. \"n > 50 AND color = 'red'\"" },
    { "timeout", "SECONDS", "stop after this long without a message "
                            "(default 5)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

typedef struct {
    int64_t pos;                //  next offset to read
    int64_t committed;          //  last committed (group), or -1
    uint64_t rid;               //  rid of the PULL in flight, 0: none
    int64_t sent_at;            //  when it went out (mono ms)
} s_queue_t;

//  One broker we read from.
typedef struct {
    char *endpoint;
    char *group;                //  broker group (through a nameserver)
    bool warned;                //  said that the broker does not answer
    zr_client_t *client;        //  PULLs, TOPIC_INFO
    zr_consumer_t *consumer;    //  group offsets
    int nqueues;
    s_queue_t *queues;
} s_source_t;

typedef struct {
    const char *topic;
    const char *group;
    const char *from;
    const char *filter_type;    //  "tag" or "sql", or NULL: no filter
    const char *filter;
    bool bad_filter;            //  the broker refused it
    int timeout_ms;
    zlistx_t *sources;          //  s_source_t *
    zpoller_t *poller;          //  on every source's DEALER
} s_consume_t;

static void
s_source_destroy (s_source_t **self_p)
{
    s_source_t *self = *self_p;
    if (!self)
        return;
    zr_consumer_destroy (&self->consumer);
    zr_client_destroy (&self->client);
    free (self->queues);
    free (self->endpoint);
    free (self->group);
    free (self);
    *self_p = NULL;
}

int
zr_cli_parse_time (const char *text, int64_t *ms)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll (text, &end, 10);
    if (*text && !*end && !errno && v >= 0) {
        *ms = v;
        return 0;
    }
    struct tm tm;
    memset (&tm, 0, sizeof tm);
    const char *formats [] = { "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S",
                               "%Y-%m-%dT%H:%M", "%Y-%m-%d", NULL };
    for (int i = 0; formats [i]; i++) {
        memset (&tm, 0, sizeof tm);
        const char *rest = strptime (text, formats [i], &tm);
        if (!rest)
            continue;
        time_t t;
        if (streq (rest, "Z"))
            t = timegm (&tm);
        else
        if (*rest == 0) {
            tm.tm_isdst = -1;
            t = mktime (&tm);
        }
        else
            continue;
        if (t == (time_t) -1)
            return -1;
        *ms = (int64_t) t * 1000;
        return 0;
    }
    return -1;
}

//  Sends the PULL of queue q (with the filter, if any).
static int
s_pull (s_consume_t *self, zr_client_t *client, int q, s_queue_t *queue,
        int64_t max_count, int wait)
{
    zr_enc_t *enc = zr_client_begin (client, "PULL", self->filter ? 7 : 5);
    zr_enc_kstr (enc, "topic", self->topic);
    zr_enc_kint (enc, "queue", q);
    zr_enc_kint (enc, "offset", queue->pos);
    zr_enc_kint (enc, "max_count", max_count);
    zr_enc_kint (enc, "wait", wait);
    if (self->filter) {
        zr_enc_kstr (enc, "filter_type", self->filter_type);
        zr_enc_kstr (enc, "filter", self->filter);
    }
    queue->rid = zr_client_rid (client);
    queue->sent_at = zclock_mono ();
    return zr_client_send (client, NULL, NULL, 0);
}

//  Has the broker compile the filter: one PULL of queue 0 that reads
//  nothing when the expression is bad (the broker checks it first).
//  Returns 0 when the broker accepts it (or there is no filter), 2 after
//  printing the broker's position and reason in one line, 1 after
//  printing that no broker answered.
static int
s_check_filter (s_consume_t *self, zr_client_t *client, const char *endpoint)
{
    if (!self->filter)
        return 0;
    zr_enc_t *enc = zr_client_begin (client, "PULL", 7);
    zr_enc_kstr (enc, "topic", self->topic);
    zr_enc_kint (enc, "queue", 0);
    zr_enc_kint (enc, "offset", 0);
    zr_enc_kint (enc, "max_count", 1);
    zr_enc_kint (enc, "wait", 0);
    zr_enc_kstr (enc, "filter_type", self->filter_type);
    zr_enc_kstr (enc, "filter", self->filter);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, self->timeout_ms);
    if (!reply) {
        fprintf (stderr, "zrocket: no broker answering at %s within %d ms\n",
                 endpoint, self->timeout_ms);
        return 1;
    }
    int rc = 0;
    zr_status_t status = zr_reply_status (reply);
    if (status == ZR_BAD_ARGUMENT || status == ZR_MALFORMED) {
        const char *reason = zr_reply_reason (reply);
        fprintf (stderr, "zrocket consume: --%s: %s%s%s\n",
                 streq (self->filter_type, "sql") ? "sql" : "tags",
                 zr_reply_status_str (reply), *reason ? ": " : "", reason);
        rc = 2;
    }
    zr_reply_destroy (&reply);
    return rc;
}

//  Connects to a broker, reads the topic's queues and where to start in
//  each, and sends the first PULL of every queue. Returns the source, or
//  NULL after printing why.
static s_source_t *
s_source_open (s_consume_t *self, const char *endpoint, int *rc)
{
    *rc = 1;
    s_source_t *src = (s_source_t *) zmalloc (sizeof *src);
    src->endpoint = strdup (endpoint);
    src->client = zr_client_new (endpoint);
    src->consumer = zr_consumer_new (endpoint);
    zr_reply_t *reply = NULL;
    if (!src->client || !src->consumer) {
        fprintf (stderr, "zrocket: cannot connect to '%s'\n", endpoint);
        goto fail;
    }
    zr_consumer_set_timeout (src->consumer, self->timeout_ms);
    zr_enc_t *enc = zr_client_begin (src->client, "TOPIC_INFO", 1);
    zr_enc_kstr (enc, "topic", self->topic);
    reply = zr_client_call (src->client, NULL, 0, self->timeout_ms);
    if (!reply) {
        fprintf (stderr, "zrocket: no broker answering at %s within %d ms\n",
                 endpoint, self->timeout_ms);
        goto fail;
    }
    if (zr_reply_status (reply) != ZR_OK) {
        const char *reason = zr_reply_reason (reply);
        fprintf (stderr, "zrocket consume: %s%s%s\n",
                 zr_reply_status_str (reply), *reason ? ": " : "", reason);
        goto fail;
    }
    const zr_obj_t *offsets = zr_obj_get (zr_reply_header (reply),
                                          "offsets");
    int64_t nqueues = 0;
    zr_field_int (zr_reply_header (reply), "queues", &nqueues);
    if (nqueues <= 0 || nqueues > 65536
    ||  zr_obj_size (offsets) != (size_t) nqueues) {
        fprintf (stderr, "zrocket consume: broker's TOPIC_INFO reply has no "
                 "usable queues/offsets\n");
        goto fail;
    }
    src->nqueues = (int) nqueues;
    src->queues = (s_queue_t *) zmalloc (nqueues * sizeof *src->queues);
    for (int q = 0; q < nqueues; q++) {
        s_queue_t *queue = &src->queues [q];
        const zr_obj_t *pair = zr_obj_at (offsets, q);
        int64_t min = 0, max = 0;
        zr_obj_int (zr_obj_at (pair, 0), &min);
        zr_obj_int (zr_obj_at (pair, 1), &max);
        queue->pos = streq (self->from, "last") ? max : min;
        queue->committed = -1;
        if (self->group) {
            int64_t committed = -1;
            if (zr_consumer_committed (src->consumer, self->group,
                                       self->topic, q, &committed)) {
                fprintf (stderr, "zrocket consume: cannot read group '%s' "
                         "offset of %s queue %d\n", self->group,
                         self->topic, q);
                goto fail;
            }
            if (committed >= 0) {
                queue->pos = committed;
                queue->committed = committed;
            }
            else
            //  Record where the group starts, so that what is sent
            //  to this queue from now on reaches the group's next run
            //  even when this run reads nothing here
            if (zr_consumer_commit (src->consumer, self->group, self->topic,
                                    q, queue->pos) == 0)
                queue->committed = queue->pos;
        }
    }
    zr_reply_destroy (&reply);
    *rc = s_check_filter (self, src->client, endpoint);
    if (*rc)
        goto fail;
    *rc = 1;
    for (int q = 0; q < src->nqueues; q++)
        if (s_pull (self, src->client, q, &src->queues [q],
                    S_PULL_MAX, 0)) {
            fprintf (stderr, "zrocket: no broker answering at %s\n",
                     endpoint);
            goto fail;
        }
    *rc = 0;
    return src;
fail:
    zr_reply_destroy (&reply);
    s_source_destroy (&src);
    return NULL;
}

//  Adds a source and polls its socket.
static void
s_source_add (s_consume_t *self, s_source_t *src)
{
    zlistx_add_end (self->sources, src);
    if (!self->poller)
        self->poller = zpoller_new (zr_client_sock (src->client), NULL);
    else
        zpoller_add (self->poller, zr_client_sock (src->client));
}

static bool
s_has_source (s_consume_t *self, const char *endpoint)
{
    for (s_source_t *src = (s_source_t *) zlistx_first (self->sources); src;
         src = (s_source_t *) zlistx_next (self->sources))
        if (streq (src->endpoint, endpoint))
            return true;
    return false;
}

//  Moves a source to its broker group's new master: new sockets, and
//  every queue's PULL in flight sent again there from the same position.
static void
s_source_move (s_consume_t *self, s_source_t *src, const char *endpoint)
{
    zr_client_t *client = zr_client_new (endpoint);
    zr_consumer_t *consumer = zr_consumer_new (endpoint);
    if (!client || !consumer) {
        zr_client_destroy (&client);
        zr_consumer_destroy (&consumer);
        return;
    }
    fprintf (stderr, "zrocket consume: broker group %s: master moved from "
             "%s to %s; reading there\n", src->group, src->endpoint,
             endpoint);
    zr_consumer_set_timeout (consumer, self->timeout_ms);
    zpoller_remove (self->poller, zr_client_sock (src->client));
    zr_client_destroy (&src->client);
    zr_consumer_destroy (&src->consumer);
    src->client = client;
    src->consumer = consumer;
    zpoller_add (self->poller, zr_client_sock (src->client));
    free (src->endpoint);
    src->endpoint = strdup (endpoint);
    src->warned = false;
    for (int q = 0; q < src->nqueues; q++)
        if (src->queues [q].rid)
            s_pull (self, src->client, q, &src->queues [q], S_PULL_MAX,
                    S_PULL_WAIT);
}

//  Opens a source for every master of the route that we do not read
//  yet, and moves a source whose broker group has a new master. Returns
//  the number of groups with a master, or -1 when the route lookup
//  failed (*err set, caller frees).
static int
s_route_sources (s_consume_t *self, const char *nameservers, bool quiet,
                 char **err)
{
    zr_route_t *route = zr_route_lookup (nameservers, self->topic,
                                         self->timeout_ms, err);
    if (!route)
        return -1;
    int masters = 0;
    for (size_t i = 0; i < zr_route_groups (route); i++) {
        const char *master = zr_route_master (route, i);
        if (!master || !*master)
            continue;
        masters++;
        const char *name = zr_route_group (route, i);
        s_source_t *src;
        for (src = (s_source_t *) zlistx_first (self->sources); src;
             src = (s_source_t *) zlistx_next (self->sources))
            if (src->group && streq (src->group, name))
                break;
        if (src) {
            if (strneq (src->endpoint, master))
                s_source_move (self, src, master);
            continue;
        }
        if (s_has_source (self, master))
            continue;
        int orc;
        src = s_source_open (self, master, &orc);
        if (src) {
            src->group = strdup (name);
            s_source_add (self, src);
        }
        else
        if (orc == 2) {
            self->bad_filter = true;
            masters = -2;
            break;
        }
        else
        if (!quiet)
            masters = -2;
    }
    zr_route_destroy (&route);
    return masters;
}

//  s_check_filter on the fabric's broker, or through the nameservers on
//  the first master serving the topic (none yet: nothing to check, the
//  push consumer waits for the topic).
static int
s_check_filter_fabric (s_consume_t *self, zr_cli_fabric_t *fabric)
{
    if (!self->filter)
        return 0;
    char *endpoint = NULL;
    if (fabric->nameservers) {
        char *err = NULL;
        zr_route_t *route = zr_route_lookup (fabric->nameservers, self->topic,
                                             self->timeout_ms, &err);
        zstr_free (&err);
        for (size_t i = 0; route && i < zr_route_groups (route); i++) {
            const char *master = zr_route_master (route, i);
            if (master && *master) {
                endpoint = strdup (master);
                break;
            }
        }
        zr_route_destroy (&route);
        if (!endpoint)
            return 0;
    }
    else
        endpoint = strdup (fabric->broker);
    int rc = 1;
    zr_client_t *client = zr_client_new (endpoint);
    if (client)
        rc = s_check_filter (self, client, endpoint);
    else
        fprintf (stderr, "zrocket: cannot connect to '%s'\n", endpoint);
    zr_client_destroy (&client);
    free (endpoint);
    return rc;
}

//  --------------------------------------------------------------------
//  consume --group: a member of the consumer group, through the push
//  consumer (orderly, one handler thread, so each queue's bodies print
//  in queue order and the process prints one message at a time).

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;        //  on CLOCK_MONOTONIC
    bool has_count;
    int64_t count;
    int64_t printed;
    int64_t last_msg;           //  zclock_mono of the last message
    bool done;                  //  --count reached
    bool stopping;              //  main thread is stopping the consumer
} s_member_t;

//  The handler. After --count messages it prints nothing more: a message
//  that arrives then waits until the main thread stops the consumer and
//  goes back unconsumed (RETRY in orderly mode: the offset stays before
//  it, so the group's next member gets it).
static zr_consume_result_t
s_member_handler (zr_message_t *msg, void *arg)
{
    s_member_t *self = (s_member_t *) arg;
    pthread_mutex_lock (&self->lock);
    if (self->done) {
        while (!self->stopping)
            pthread_cond_wait (&self->cond, &self->lock);
        pthread_mutex_unlock (&self->lock);
        //  The main thread has sent STOP, after which the consumer hands
        //  out no more messages; give it a moment to handle it, so that
        //  this RETRY (an in-place retry in orderly mode) is not followed
        //  by more attempts of the same message
        zclock_sleep (100);
        return ZR_CONSUME_RETRY;
    }
    fwrite (zr_message_body (msg), 1, zr_message_size (msg), stdout);
    fputc ('\n', stdout);
    fflush (stdout);
    self->printed++;
    self->last_msg = zclock_mono ();
    if (self->has_count && self->printed >= self->count)
        self->done = true;
    pthread_cond_broadcast (&self->cond);
    pthread_mutex_unlock (&self->lock);
    return ZR_CONSUME_SUCCESS;
}

//  Runs consume --group. from: first, last or ms since the epoch as
//  text. Returns the exit status.
static int
s_consume_group (zr_cli_fabric_t *fabric, const char *topic,
                 const char *group, const char *filter_type,
                 const char *filter, const char *from, bool has_count,
                 int64_t count, int64_t idle_ms)
{
    s_member_t self;
    memset (&self, 0, sizeof self);
    self.has_count = has_count;
    self.count = count;
    pthread_mutex_init (&self.lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self.cond, &attr);
    pthread_condattr_destroy (&attr);

    char *where = fabric->nameservers ? strdup (fabric->nameservers)
                : zsys_sprintf ("broker:%s", fabric->broker);
    int rc = 1;
    char *err = NULL;
    zr_push_consumer_t *consumer = zr_push_consumer_new (where, group);
    if (!consumer) {
        fprintf (stderr, "zrocket consume: --group: '%s' is not a group "
                 "name\n", group);
        rc = 2;
        goto done;
    }
    if (zr_push_consumer_set_orderly (consumer, true)
    ||  zr_push_consumer_set_threads (consumer, 1)
    ||  zr_push_consumer_set_from (consumer, from)) {
        fprintf (stderr, "zrocket consume: the push consumer refused "
                 "--from '%s'\n", from);
        rc = 2;
        goto done;
    }
    //  Our handler never fails a message: a RETRY only hands one back at
    //  stop, so in-place retries must not run out into the DLQ meanwhile
    zr_push_consumer_set_max_retries (consumer, 1000);
    if (filter ? zr_push_consumer_subscribe_filtered (consumer, topic,
                                                      filter_type, filter)
               : zr_push_consumer_subscribe (consumer, topic)) {
        fprintf (stderr, "zrocket consume: --topic: '%s' is not a topic "
                 "name\n", topic);
        rc = 2;
        goto done;
    }
    self.last_msg = zclock_mono ();
    if (zr_push_consumer_start (consumer, s_member_handler, &self, &err)) {
        fprintf (stderr, "zrocket consume: %s\n",
                 err ? err : "cannot join the group");
        goto done;
    }
    pthread_mutex_lock (&self.lock);
    self.last_msg = zclock_mono ();
    while (!self.done && !zsys_interrupted) {
        int64_t left = self.last_msg + idle_ms - zclock_mono ();
        if (left <= 0)
            break;
        //  Wake at least every 200 ms to see a SIGINT
        if (left > 200)
            left = 200;
        struct timespec ts;
        clock_gettime (CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait (&self.cond, &self.lock, &ts);
    }
    //  From now on the handler prints nothing
    self.done = true;
    self.stopping = true;
    pthread_cond_broadcast (&self.cond);
    pthread_mutex_unlock (&self.lock);
    zr_push_consumer_stop (consumer);
    rc = has_count && self.printed < count ? 2 : 0;
done:
    zr_push_consumer_destroy (&consumer);
    zstr_free (&err);
    free (where);
    pthread_cond_destroy (&self.cond);
    pthread_mutex_destroy (&self.lock);
    return rc;
}

int
zr_cli_consume (int argc, char **argv)
{
    zr_cli_args_t args;
    if (zr_cli_parse ("consume", s_opts, 0, argc, argv, &args)) {
        zr_cli_args_free (&args);
        return 2;
    }
    int rc = 2;
    zr_reply_t *reply = NULL;
    zr_cli_fabric_t fabric = { 0 };
    s_consume_t self = { 0 };
    self.sources = zlistx_new ();
    zlistx_set_destructor (self.sources,
                           (zlistx_destructor_fn *) s_source_destroy);
    if (args.help) {
        zr_cli_usage (stdout,
            "zrocket consume --topic TOPIC [--group GROUP] "
            "[--from first|last|TIME]\n"
            "                       [--tags EXPR | --sql EXPR] [--count N] "
            "[--timeout SECONDS]",
            "Prints one message body per line, in queue order per queue.\n"
            "Without --group it reads every queue of the topic from --from\n"
            "and commits nothing. With --group it joins the consumer group\n"
            "GROUP: the group's running members share the topic's queues\n"
            "(each message is printed by one of them; queues move between\n"
            "members as they come and go), offsets are committed on the\n"
            "broker, and --from applies only to queues where the group has\n"
            "no committed offset. `zrocket group status GROUP` shows the\n"
            "members, who owns which queue and the lag.\n"
            "--from first: each queue's oldest message; last (default): only\n"
            "messages stored from now on; TIME (ms since the epoch, or local\n"
            "time like 2026-11-22T10:00:00, Z for UTC): messages stored at or\n"
            "after TIME (there is no time index yet: this scans each queue\n"
            "from its oldest message).\n"
            "--tags and --sql filter on the broker (docs/protocol.md section\n"
            "14): only matching messages are sent and printed; offsets move\n"
            "past the others. A malformed expression exits 2 with the\n"
            "broker's position and reason, before anything is printed.\n"
            "Through a nameserver it reads the queues of every broker group\n"
            "serving the topic (their masters), commits --group offsets on\n"
            "each, and picks up groups that join while it runs.\n"
            "Exit status: 0 after N messages, or at the idle timeout without\n"
            "--count; 2 when --count was given and fewer arrived, or on a\n"
            "malformed --tags/--sql; 1 on errors." ZR_CLI_FABRIC_HELP, s_opts);
        rc = 0;
        goto done;
    }
    self.topic = zr_cli_get (&args, "topic");
    self.group = zr_cli_get (&args, "group");
    self.from = zr_cli_get (&args, "from");
    const char *topic = self.topic;
    if (!topic || !*topic) {
        fprintf (stderr, "zrocket consume: --topic is required\n");
        goto done;
    }
    if (self.group && !*self.group) {
        fprintf (stderr, "zrocket consume: --group: empty name\n");
        goto done;
    }
    if (!self.from)
        self.from = "last";
    int64_t since = -1;         //  --from TIME, ms
    if (!streq (self.from, "first") && !streq (self.from, "last")
    &&  zr_cli_parse_time (self.from, &since)) {
        fprintf (stderr, "zrocket consume: --from: '%s' is not first, last, "
                 "ms since the epoch or a time like 2026-11-22T10:00:00\n",
                 self.from);
        goto done;
    }
    const char *tags = zr_cli_get (&args, "tags");
    const char *sql = zr_cli_get (&args, "sql");
    if (tags && sql) {
        fprintf (stderr, "zrocket consume: give --tags or --sql, not "
                 "both\n");
        goto done;
    }
    if (tags) {
        self.filter_type = "tag";
        self.filter = tags;
    }
    else
    if (sql) {
        self.filter_type = "sql";
        self.filter = sql;
    }
    int64_t count;
    if (zr_cli_get_int (&args, "count", 0, 1, INT64_MAX, &count))
        goto done;
    bool has_count = zr_cli_get (&args, "count") != NULL;
    double idle_s = 5;
    const char *timeout_text = zr_cli_get (&args, "timeout");
    if (timeout_text) {
        char *end = NULL;
        idle_s = strtod (timeout_text, &end);
        if (!*timeout_text || *end || !(idle_s >= 0) || idle_s > 1e6) {
            fprintf (stderr, "zrocket consume: --timeout: '%s' is not a "
                     "number of seconds\n", timeout_text);
            goto done;
        }
    }
    int64_t idle_ms = (int64_t) (idle_s * 1000);
    rc = zr_cli_fabric_find (&args, &fabric);
    if (rc)
        goto done;
    rc = 1;
    self.timeout_ms = fabric.timeout_ms;
    if (self.group) {
        //  The push consumer would only log a refused filter: have the
        //  broker check it first, before anything is printed
        rc = s_check_filter_fabric (&self, &fabric);
        if (rc)
            goto done;
        char *from = since >= 0 ? zsys_sprintf ("%" PRId64, since)
                                : strdup (self.from);
        rc = s_consume_group (&fabric, topic, self.group, self.filter_type,
                              self.filter, from, has_count, count, idle_ms);
        free (from);
        goto done;
    }
    const char *ns = fabric.nameservers;
    int64_t next_refresh = 0;
    if (ns) {
        char *err = NULL;
        int masters = s_route_sources (&self, ns, false, &err);
        if (masters == -1)
            fprintf (stderr, "zrocket consume: %s\n",
                     err ? err : "route lookup failed");
        else
        if (masters == 0)
            fprintf (stderr, "zrocket consume: no live master broker serves "
                     "topic '%s' (nameservers %s)\n", topic, ns);
        zstr_free (&err);
        if (self.bad_filter)
            rc = 2;
        if (masters <= 0)
            goto done;
        next_refresh = zclock_mono () + S_ROUTE_REFRESH;
    }
    else {
        s_source_t *src = s_source_open (&self, fabric.broker, &rc);
        if (!src)
            goto done;
        s_source_add (&self, src);
    }

    int64_t printed = 0;
    int64_t last_msg = zclock_mono ();
    int timeout_ms = self.timeout_ms;
    rc = -1;
    while (rc < 0 && !zsys_interrupted) {
        int64_t now = zclock_mono ();
        int64_t idle_left = last_msg + idle_ms - now;
        if (idle_left <= 0)
            break;
        if (ns && now >= next_refresh) {
            char *err = NULL;
            s_route_sources (&self, ns, true, &err);
            zstr_free (&err);
            now = zclock_mono ();
            next_refresh = now + S_ROUTE_REFRESH;
            continue;
        }
        int64_t wait = idle_left;
        if (ns && next_refresh - now < wait)
            wait = next_refresh - now;
        void *which = zpoller_wait (self.poller, (int) wait);
        s_source_t *src = NULL;
        if (which)
            for (src = (s_source_t *) zlistx_first (self.sources); src;
                 src = (s_source_t *) zlistx_next (self.sources))
                if (zr_client_sock (src->client) == which)
                    break;
        reply = src ? zr_client_recv (src->client, 0) : NULL;
        if (!reply) {
            if (zsys_interrupted)
                break;
            //  A PULL overdue by more than the request timeout: no broker.
            //  Through a nameserver, ask the route again (a failover may
            //  have moved the group) and send the PULL again.
            now = zclock_mono ();
            for (s_source_t *s = (s_source_t *) zlistx_first (self.sources);
                 s; s = (s_source_t *) zlistx_next (self.sources))
                for (int q = 0; q < s->nqueues && rc < 0; q++)
                    if (s->queues [q].rid
                    &&  now - s->queues [q].sent_at
                        > S_PULL_WAIT + timeout_ms) {
                        if (!ns || !s->group) {
                            fprintf (stderr, "zrocket: no broker answering "
                                     "at %s within %d ms\n", s->endpoint,
                                     timeout_ms);
                            rc = 1;
                            break;
                        }
                        if (!s->warned)
                            fprintf (stderr, "zrocket consume: no answer "
                                     "from %s within %d ms; asking the "
                                     "nameservers\n", s->endpoint,
                                     timeout_ms);
                        s->warned = true;
                        next_refresh = now;
                        s_pull (&self, s->client, q, &s->queues [q],
                                S_PULL_MAX, S_PULL_WAIT);
                    }
            continue;
        }
        int q;
        for (q = 0; q < src->nqueues; q++)
            if (src->queues [q].rid
            &&  src->queues [q].rid == zr_reply_rid (reply))
                break;
        if (q == src->nqueues) {
            zr_reply_destroy (&reply);
            continue;
        }
        src->queues [q].rid = 0;
        s_queue_t *queue = &src->queues [q];
        const zr_obj_t *hdr = zr_reply_header (reply);
        zr_status_t status = zr_reply_status (reply);
        bool progressed = false;
        if (status == ZR_OK) {
            const zr_obj_t *msgs = zr_obj_get (hdr, "msgs");
            size_t n = zr_obj_size (msgs);
            for (size_t i = 0; i < n; i++) {
                zframe_t *body = i < zr_reply_bodies (reply)
                    ? zr_reply_body (reply, i) : NULL;
                zr_message_t *msg = zr_message_from_wire (zr_obj_at (msgs, i),
                                                          body);
                if (!msg) {
                    fprintf (stderr, "zrocket consume: bad message in the "
                             "broker's reply (%s queue %d)\n", src->endpoint,
                             q);
                    rc = 1;
                    break;
                }
                if (since < 0 || zr_message_stored (msg) >= since) {
                    fwrite (zr_message_body (msg), 1, zr_message_size (msg),
                            stdout);
                    fputc ('\n', stdout);
                    printed++;
                    last_msg = zclock_mono ();
                }
                queue->pos = zr_message_offset (msg) + 1;
                progressed = true;
                last_msg = zclock_mono ();      //  scanning is not idle
                zr_message_destroy (&msg);
                if (has_count && printed >= count)
                    break;
            }
            if (rc < 0 && !(has_count && printed >= count)) {
                int64_t next;
                if (zr_field_int (hdr, "next", &next) == ZR_FIELD_OK
                &&  next > queue->pos)
                    queue->pos = next;
            }
            fflush (stdout);
        }
        else
        if (status == ZR_OFFSET_OUT_OF_RANGE) {
            int64_t min = 0, max = 0;
            zr_field_int (hdr, "min", &min);
            zr_field_int (hdr, "max", &max);
            queue->pos = queue->pos < min ? min : max;
        }
        else
        if (status != ZR_NO_NEW_MSG) {
            const char *reason = zr_reply_reason (reply);
            fprintf (stderr, "zrocket consume: %squeue %d: %s%s%s\n",
                     ns ? src->endpoint : "", q, zr_reply_status_str (reply),
                     *reason ? ": " : "", reason);
            rc = 1;
        }
        zr_reply_destroy (&reply);
        if (progressed && self.group && queue->pos != queue->committed) {
            if (zr_consumer_commit (src->consumer, self.group, topic, q,
                                    queue->pos)) {
                fprintf (stderr, "zrocket consume: commit of group '%s' "
                         "queue %d failed\n", self.group, q);
                rc = 1;
            }
            else
                queue->committed = queue->pos;
        }
        if (has_count && printed >= count)
            rc = 0;
        if (rc < 0) {
            int64_t left = last_msg + idle_ms - zclock_mono ();
            int pull_wait = left < S_PULL_WAIT ? (int) (left > 0 ? left : 0)
                                               : S_PULL_WAIT;
            int64_t max_count = S_PULL_MAX;
            if (has_count && count - printed < max_count)
                max_count = count - printed;
            if (s_pull (&self, src->client, q, queue, max_count,
                        pull_wait)) {
                fprintf (stderr, "zrocket: no broker answering at %s\n",
                         src->endpoint);
                rc = 1;
            }
        }
    }
    if (rc < 0)
        rc = has_count && printed < count ? 2 : 0;
done:
    fflush (stdout);
    zr_reply_destroy (&reply);
    zpoller_destroy (&self.poller);
    zlistx_destroy (&self.sources);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}
