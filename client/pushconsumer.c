/*  client/pushconsumer.c - zr_push_consumer_t: a member of a consumer
    group (docs/protocol.md section 11) that pulls its queues and calls the
    application's handler from a pool of threads.

    The application thread only holds settings and the actor. The actor
    thread does all socket work, over one DEALER (zr_client_t) per broker
    group master, with every request asynchronous (matched by rid):

      HEARTBEAT   every heartbeat_ms the broker advertises, and at once on
                  MEMBERS_CHANGED; a new member list means rebalance
      TOPIC_INFO  queue counts of each subscribed topic and of %RETRY%G
                  on each broker (TOPIC_NOT_FOUND: no queues yet; asked
                  again every second until it exists)
      LOCK        takes a newly allocated queue (retried while another
                  member holds it), renews at lease_ms / 3
      PULL        long polls (group + token) while the queue's buffer is
                  under its limit
      COMMIT_OFFSET  the lowest offset not yet finished, every second
      SEND_BACK   a message whose handler asked for a retry
      UNLOCK      a queue no longer allocated, once its handlers are done,
                  with its offset; LEAVE on stop

    Queue states: IDLE (not ours) -> WANT (allocated, LOCK pending or to
    be retried) -> HELD (pulling, dispatching) -> DRAIN (no longer
    allocated: buffered messages dropped, waiting for running handlers,
    lease still renewed) -> UNLOCKING -> IDLE. A lease that passes lease_ms
    after its last successful LOCK was sent (monotonic clock), or that the
    broker calls invalid, is lost: buffered messages are dropped, and the
    queue is taken again only once its handlers are done. HELD -> SLAVE
    (read from a slave, below) -> as a lost lease. Messages are
    handed to a handler only while now < lease sent + 9/10 lease_ms, and a
    handler thread skips a job whose lease deadline has passed.

    Failover (brokers found through nameservers): the routes are asked
    again every ZR_PUSH_ROUTE_MS, and every ZR_PUSH_ROUTE_GAP while a
    broker is suspect (a request timed out, or NOT_MASTER). A broker
    group whose route names another master (higher epoch, or ours
    silent), or a master a NOT_MASTER named that the route lists in the
    group, is moved there (s_broker_move): requests in flight forgotten,
    leases dropped, queues taken again with LOCK from the group's
    committed offsets on the new master. Handled but uncommitted
    messages come again (counted, logged per queue). A broker group that
    appears in a route is joined.

    Reading from a slave (docs/protocol.md section 11): while a broker
    group has no master we can reach (suspect for ZR_PUSH_SLAVE_AFTER,
    or a held lease would pass while it is suspect, and no new master
    named yet), the queues we held go to state SLAVE: no lease, no LOCK,
    no commit; plain PULLs (no group, no token) from a slave the routes
    listed for the group, at the queue's in-memory position, handed to
    the handler as usual. Only queues held when the master went away are
    read so; a queue we did not hold waits. As soon as a master answers
    again (ours, or a new one the route names) the SLAVE queues are
    dropped like a lost lease and taken again with LOCK from the group's
    committed offset there: what was handled from the slave comes again
    (at least once; nothing is committed from slave reads).

    Broadcast mode: no leases and no retry topic: every queue of every
    subscribed topic is pulled; offsets live in OFFSET_DIR/GROUP.offsets
    (written through a temp file and rename every second and on stop). A
    failed message is retried in place max_retries times, then skipped
    with a warning (a retry topic would be consumed by every member).

    Handler threads take jobs from a mutex-protected list (so an idle
    thread takes the next job) and send each finished job back to the
    actor over their own PUSH socket.

    Pipe commands (application -> actor):
      START  -> "OK" | "ERROR" reason
      OWNED  -> "OK" list
      STOP   -> "OK" (handlers done, offsets committed, leases released,
                group left; bounded by ZR_PUSH_STOP_MS)
      $TERM
*/
#include <pthread.h>
#include <unistd.h>
#include "client/client.h"
#include "client/allocate.h"

#define ZR_PUSH_TICK_MS 20
#define ZR_PUSH_PULL_WAIT 1000
#define ZR_PUSH_REQ_TIMEOUT 2000
#define ZR_PUSH_COMMIT_MS 1000
#define ZR_PUSH_STOP_MS 15000
#define ZR_PUSH_LEASE_DEFAULT 3000
#define ZR_PUSH_HEARTBEAT_DEFAULT 1000
#define ZR_PUSH_PULL_BATCH 32
#define ZR_PUSH_SENDBACK_TRIES 5
#define ZR_PUSH_ROUTE_MS 2000           //  periodic route refresh
#define ZR_PUSH_ROUTE_GAP 250           //  between forced refreshes
#define ZR_PUSH_ROUTE_TIMEOUT 500       //  one route lookup, all nameservers
#define ZR_PUSH_SLAVE_AFTER 500         //  suspect this long: read a slave

//  --------------------------------------------------------------------
//  Settings, shared by the front end and (copied into) the actor

typedef struct {
    char *fabric;
    char *group;
    char *client_id;
    bool broadcast;
    char *strategy;
    int threads;
    bool orderly;
    char *from;                 //  "first", "last" or ms as text
    int buffer;
    char *offset_dir;
    int max_retries;
    zlist_t *topics;            //  char *, owned
    zhashx_t *filters;          //  topic -> "tag:EXPR" / "sql:EXPR"
    zr_consume_fn *handler;
    void *arg;
} settings_t;

struct _zr_push_consumer_t {
    settings_t s;
    zactor_t *actor;
};

//  --------------------------------------------------------------------
//  Actor state

typedef enum { E_BUFFERED, E_INFLIGHT, E_SENDBACK, E_SENDBACK_RETRY, E_DONE }
    estate_t;

typedef struct {
    int64_t offset;
    zr_message_t *msg;
    estate_t state;
    int attempts;               //  in-place retries so far
    int sendback_fails;
    bool dlq;                   //  send back straight to the DLQ
} entry_t;

typedef enum { Q_IDLE, Q_WANT, Q_HELD, Q_DRAIN, Q_UNLOCKING, Q_SLAVE }
    qstate_t;

typedef struct _broker_t broker_t;

typedef struct {
    broker_t *broker;
    char *topic;
    int queue;
    char *key;                  //  "topic:queue@broker"
    bool retry_topic;
    qstate_t state;
    bool wanted;
    int64_t token;
    int64_t lease_sent;         //  mono ms: send time of last good LOCK
    int64_t lease_ms;
    int64_t renew_at;
    int64_t lock_retry_at;
    bool lock_pending;
    bool pull_pending;
    int64_t pull_retry_at;
    bool spull_pending;         //  SLAVE: a PULL to the slave in flight
    int64_t spull_retry_at;
    bool bounds_pending;
    int64_t next_pull;          //  -1: not known yet
    int64_t first_start;        //  where "last" first put this queue (-1:
                                //  not yet); a lease taken again with
                                //  nothing committed resumes there
    int64_t skip_before;        //  start by time: skip stored < this
    unsigned epoch;             //  changes whenever buffered data is void
    zlistx_t *entries;          //  entry_t *, offset order
    size_t busy;                //  INFLIGHT + SENDBACK*
    size_t buffered;            //  BUFFERED
    int64_t committed;          //  last offset the broker (or file) has
    bool commit_pending;
    int64_t handled_max;        //  highest offset a handler finished, -1
} pqueue_t;

typedef struct {
    char *name;
    int queues;                 //  -1 unknown, 0 not there
    bool info_pending;
    int64_t info_at;
} btopic_t;

struct _broker_t {
    char *name;                 //  broker group
    char *endpoint;             //  its master, as we last learned it
    int64_t epoch;              //  the route's epoch for it, 0: unknown
    char *move_to;              //  new master to move to at the next tick
    char *hint;                 //  master a NOT_MASTER named, unconfirmed
    int64_t silent_since;       //  mono ms of the first timeout since the
                                //  last reply; 0: answering
    zr_client_t *client;
    zhashx_t *pending;          //  rid text -> pending_t *
    zlistx_t *topics;           //  btopic_t *
    zlistx_t *queues;           //  pqueue_t *
    zlist_t *members;           //  char *, sorted
    int64_t version;
    int heartbeat_ms;
    int64_t heartbeat_at;
    bool heartbeat_pending;
    bool left;
    bool leave_pending;
    bool warned;
    zlist_t *slaves;            //  char *: the group's slaves, last route
    bool slave_mode;            //  no master: held queues read a slave
    size_t slave_next;          //  index in slaves of the next to try
    int64_t slave_retry_at;
    char *slave;                //  the slave we read from, or NULL
    zr_client_t *sclient;       //  its DEALER (plain PULLs only)
    zhashx_t *spending;         //  rid text -> pending_t *
    uint64_t slave_msgs;        //  messages read from it this time
    bool slave_warned;
};

typedef enum {
    P_HEARTBEAT, P_TOPIC_INFO, P_LOCK, P_UNLOCK, P_PULL, P_COMMIT,
    P_SENDBACK, P_BOUNDS, P_LEAVE
} pkind_t;

typedef struct {
    pkind_t kind;
    pqueue_t *q;
    btopic_t *t;
    entry_t *e;
    unsigned epoch;
    int64_t sent;
    int64_t deadline;
    int64_t value;              //  LOCK: token renewed; COMMIT: offset
} pending_t;

typedef struct {
    entry_t *e;
    pqueue_t *q;
    zr_message_t *msg;
    unsigned epoch;
    int64_t deadline;           //  mono ms; 0: none
    zr_consume_fn *handler;
    void *arg;
    int result;
    bool skipped;
} job_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    zlist_t *jobs;              //  job_t *
    bool stop;
    char endpoint [64];         //  actor's PULL for finished jobs
} pool_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *done;              //  PULL: finished jobs
    settings_t s;
    char *retry_topic;
    zlistx_t *brokers;          //  broker_t *
    pool_t pool;
    pthread_t *threads;
    int nthreads;
    size_t inflight;            //  jobs given to the pool
    bool started;
    bool stopping;
    bool leaving;
    int64_t stop_deadline;
    bool terminated;
    int64_t commit_at;
    zhashx_t *file_offsets;     //  broadcast: key -> int64_t *
    bool file_dirty;
    char *file_path;
    bool routed;                //  brokers found through nameservers
    int64_t route_at;           //  next periodic route refresh
    int64_t route_tried;        //  last refresh
    uint64_t moves;             //  broker groups moved to a new master
    uint64_t redelivered;       //  messages handled again after a move
    uint64_t slave_reads;       //  messages read from slaves
} self_t;

//  --------------------------------------------------------------------
//  Settings helpers

static void
s_settings_free (settings_t *s)
{
    zstr_free (&s->fabric);
    zstr_free (&s->group);
    zstr_free (&s->client_id);
    zstr_free (&s->strategy);
    zstr_free (&s->from);
    zstr_free (&s->offset_dir);
    zlist_destroy (&s->topics);
    zhashx_destroy (&s->filters);
}

static char *
s_dup (const char *s)
{
    return s ? strdup (s) : NULL;
}

static void
s_settings_copy (settings_t *to, const settings_t *from)
{
    *to = *from;
    to->fabric = s_dup (from->fabric);
    to->group = s_dup (from->group);
    to->client_id = s_dup (from->client_id);
    to->strategy = s_dup (from->strategy);
    to->from = s_dup (from->from);
    to->offset_dir = s_dup (from->offset_dir);
    to->topics = zlist_new ();
    zlist_autofree (to->topics);
    for (char *t = (char *) zlist_first (from->topics); t;
         t = (char *) zlist_next (from->topics))
        zlist_append (to->topics, t);
    to->filters = zhashx_dup (from->filters);
}

//  --------------------------------------------------------------------
//  Handler threads

static void *
s_worker (void *arg)
{
    pool_t *pool = (pool_t *) arg;
    zsock_t *push = zsock_new_push (pool->endpoint);
    if (!push) {
        zsys_error ("pushconsumer: worker cannot connect %s", pool->endpoint);
        return NULL;
    }
    while (true) {
        pthread_mutex_lock (&pool->lock);
        while (!pool->stop && zlist_size (pool->jobs) == 0)
            pthread_cond_wait (&pool->cond, &pool->lock);
        job_t *job = pool->stop ? NULL : (job_t *) zlist_pop (pool->jobs);
        pthread_mutex_unlock (&pool->lock);
        if (!job)
            break;
        if (job->deadline && zclock_mono () >= job->deadline)
            job->skipped = true;
        else
            job->result = (int) job->handler (job->msg, job->arg);
        zsock_send (push, "p", job);
    }
    zsock_destroy (&push);
    return NULL;
}

//  --------------------------------------------------------------------
//  Entries and queues

static void
s_entry_destroy (entry_t **e_p)
{
    entry_t *e = *e_p;
    if (!e)
        return;
    zr_message_destroy (&e->msg);
    free (e);
    *e_p = NULL;
}

static bool
s_busy_state (estate_t s)
{
    return s == E_INFLIGHT || s == E_SENDBACK || s == E_SENDBACK_RETRY;
}

static void
s_entry_set (self_t *self, pqueue_t *q, entry_t *e, estate_t state)
{
    if (s_busy_state (e->state))
        q->busy--;
    if (e->state == E_BUFFERED)
        q->buffered--;
    if (e->state == E_INFLIGHT)
        self->inflight--;
    e->state = state;
    if (s_busy_state (state))
        q->busy++;
    if (state == E_BUFFERED)
        q->buffered++;
    if (state == E_INFLIGHT)
        self->inflight++;
}

//  Frees finished entries at the head: the head is then the lowest
//  offset not finished.
static void
s_pop_done (pqueue_t *q)
{
    entry_t *e;
    while ((e = (entry_t *) zlistx_first (q->entries)) && e->state == E_DONE) {
        zlistx_detach_cur (q->entries);
        s_entry_destroy (&e);
    }
}

//  Removes one entry that is not busy (BUFFERED or DONE).
static void
s_entry_remove (self_t *self, pqueue_t *q, entry_t *e)
{
    void *handle = zlistx_find (q->entries, e);
    s_entry_set (self, q, e, E_DONE);
    if (handle)
        zlistx_detach (q->entries, handle);
    s_entry_destroy (&e);
}

//  Drops the messages not handed to a handler yet; the next pull starts
//  at the lowest of them.
static void
s_drop_buffered (self_t *self, pqueue_t *q)
{
    for (entry_t *e = (entry_t *) zlistx_first (q->entries); e;
         e = (entry_t *) zlistx_next (q->entries))
        if (e->state == E_BUFFERED) {
            if (q->next_pull < 0 || e->offset < q->next_pull)
                q->next_pull = e->offset;
            s_entry_set (self, q, e, E_DONE);
            //  detach_cur moves the cursor back: iterating goes on
            zlistx_detach_cur (q->entries);
            s_entry_destroy (&e);
        }
    s_pop_done (q);
    q->epoch++;
}

//  The offset to commit: lowest not finished, or -1 when unknown.
static int64_t
s_committable (pqueue_t *q)
{
    entry_t *e = (entry_t *) zlistx_first (q->entries);
    if (e)
        return e->offset;
    return q->next_pull;
}

static void
s_queue_destroy (pqueue_t **q_p)
{
    pqueue_t *q = *q_p;
    if (!q)
        return;
    entry_t *e = (entry_t *) zlistx_first (q->entries);
    while (e) {
        s_entry_destroy (&e);
        e = (entry_t *) zlistx_next (q->entries);
    }
    zlistx_destroy (&q->entries);
    free (q->topic);
    free (q->key);
    free (q);
    *q_p = NULL;
}

//  Closes the DEALER to a slave and forgets what was in flight there.
static void
s_slave_close (broker_t *b)
{
    zr_client_destroy (&b->sclient);
    zstr_free (&b->slave);
    if (b->spending) {
        for (void *p = zhashx_first (b->spending); p;
             p = zhashx_next (b->spending))
            free (p);
        zhashx_purge (b->spending);
    }
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
         q = (pqueue_t *) zlistx_next (b->queues))
        q->spull_pending = false;
}

static void
s_broker_destroy (broker_t **b_p)
{
    broker_t *b = *b_p;
    if (!b)
        return;
    zr_client_destroy (&b->client);
    s_slave_close (b);
    zhashx_destroy (&b->spending);
    zlist_destroy (&b->slaves);
    //  The table has no destructor: replies take their entry out first.
    for (void *p = zhashx_first (b->pending); p;
         p = zhashx_next (b->pending))
        free (p);
    zhashx_destroy (&b->pending);
    btopic_t *t = (btopic_t *) zlistx_first (b->topics);
    while (t) {
        free (t->name);
        free (t);
        t = (btopic_t *) zlistx_next (b->topics);
    }
    zlistx_destroy (&b->topics);
    pqueue_t *q = (pqueue_t *) zlistx_first (b->queues);
    while (q) {
        s_queue_destroy (&q);
        q = (pqueue_t *) zlistx_next (b->queues);
    }
    zlistx_destroy (&b->queues);
    zlist_destroy (&b->members);
    free (b->name);
    free (b->endpoint);
    free (b->move_to);
    free (b->hint);
    free (b);
    *b_p = NULL;
}

static broker_t *
s_broker_new (self_t *self, const char *name, const char *endpoint)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        return NULL;
    zr_client_set_sndtimeo (client, 0);
    broker_t *b = (broker_t *) zmalloc (sizeof (broker_t));
    assert (b);
    b->name = strdup (name);
    b->endpoint = strdup (endpoint);
    b->client = client;
    b->pending = zhashx_new ();
    b->topics = zlistx_new ();
    b->queues = zlistx_new ();
    b->members = zlist_new ();
    zlist_autofree (b->members);
    b->slaves = zlist_new ();
    zlist_autofree (b->slaves);
    b->spending = zhashx_new ();
    b->version = -1;
    b->heartbeat_ms = ZR_PUSH_HEARTBEAT_DEFAULT;
    for (char *t = (char *) zlist_first (self->s.topics); t;
         t = (char *) zlist_next (self->s.topics)) {
        btopic_t *bt = (btopic_t *) zmalloc (sizeof (btopic_t));
        bt->name = strdup (t);
        bt->queues = -1;
        zlistx_add_end (b->topics, bt);
    }
    if (!self->s.broadcast) {
        btopic_t *bt = (btopic_t *) zmalloc (sizeof (btopic_t));
        bt->name = strdup (self->retry_topic);
        bt->queues = -1;
        zlistx_add_end (b->topics, bt);
    }
    zlistx_add_end (self->brokers, b);
    return b;
}

//  --------------------------------------------------------------------
//  Requests

//  Sends the request begun on b's client and records what it was for.
//  Returns 0, or -1 when it could not be sent (the socket is full or the
//  peer is gone; the caller's timers try again).
static int
s_request (broker_t *b, pkind_t kind, pqueue_t *q, btopic_t *t,
           entry_t *e, int64_t value, int timeout_ms)
{
    if (zr_client_send (b->client, NULL, NULL, 0) == -1)
        return -1;
    pending_t *p = (pending_t *) zmalloc (sizeof (pending_t));
    assert (p);
    p->kind = kind;
    p->q = q;
    p->t = t;
    p->e = e;
    p->epoch = q ? q->epoch : 0;
    p->sent = zclock_mono ();
    p->deadline = p->sent + timeout_ms;
    p->value = value;
    char key [24];
    snprintf (key, sizeof (key), "%" PRIu64, zr_client_rid (b->client));
    zhashx_update (b->pending, key, p);
    return 0;
}

static void
s_send_heartbeat (self_t *self, broker_t *b)
{
    size_t nfilters = zhashx_size (self->s.filters);
    zr_enc_t *enc = zr_client_begin (b->client, "HEARTBEAT",
                                     nfilters ? 5 : 4);
    zr_enc_kstr (enc, "group", self->s.group);
    zr_enc_kstr (enc, "client_id", self->s.client_id);
    zr_enc_str (enc, "topics");
    zr_enc_array (enc, zlist_size (self->s.topics));
    for (char *t = (char *) zlist_first (self->s.topics); t;
         t = (char *) zlist_next (self->s.topics))
        zr_enc_str (enc, t);
    zr_enc_kstr (enc, "mode", self->s.broadcast ? "broadcast" : "clustering");
    if (nfilters) {             //  shown by GROUP_STATUS (section 11)
        zr_enc_str (enc, "subscriptions");
        zr_enc_array (enc, nfilters);
        for (const char *f = (const char *) zhashx_first (self->s.filters);
             f; f = (const char *) zhashx_next (self->s.filters)) {
            zr_enc_map (enc, 3);
            zr_enc_kstr (enc, "topic",
                         (const char *) zhashx_cursor (self->s.filters));
            zr_enc_kstr (enc, "filter_type", f [0] == 's' ? "sql" : "tag");
            zr_enc_kstr (enc, "filter", f + 4);
        }
    }
    if (s_request (b, P_HEARTBEAT, NULL, NULL, NULL, 0, ZR_PUSH_REQ_TIMEOUT)
        == 0)
        b->heartbeat_pending = true;
    else
        b->heartbeat_at = zclock_mono () + 100;
}

static void
s_send_lock (self_t *self, pqueue_t *q, bool renew)
{
    broker_t *b = q->broker;
    zr_enc_t *enc = zr_client_begin (b->client, "LOCK", renew ? 5 : 4);
    zr_enc_kstr (enc, "group", self->s.group);
    zr_enc_kstr (enc, "topic", q->topic);
    zr_enc_kint (enc, "queue", q->queue);
    zr_enc_kstr (enc, "client_id", self->s.client_id);
    if (renew)
        zr_enc_kint (enc, "token", q->token);
    int timeout = q->lease_ms > 0 ? (int) q->lease_ms / 3 : 1000;
    if (s_request (b, P_LOCK, q, NULL, NULL, renew ? q->token : -1, timeout)
        == 0)
        q->lock_pending = true;
}

static void
s_send_unlock (self_t *self, pqueue_t *q, int64_t token, int64_t offset)
{
    broker_t *b = q->broker;
    zr_enc_t *enc =
        zr_client_begin (b->client, "UNLOCK", offset >= 0 ? 6 : 5);
    zr_enc_kstr (enc, "group", self->s.group);
    zr_enc_kstr (enc, "topic", q->topic);
    zr_enc_kint (enc, "queue", q->queue);
    zr_enc_kstr (enc, "client_id", self->s.client_id);
    zr_enc_kint (enc, "token", token);
    if (offset >= 0)
        zr_enc_kint (enc, "offset", offset);
    s_request (b, P_UNLOCK, q, NULL, NULL, offset, ZR_PUSH_REQ_TIMEOUT);
}

static void
s_send_pull (self_t *self, pqueue_t *q)
{
    broker_t *b = q->broker;
    int room = self->s.buffer - (int) (q->buffered + q->busy);
    if (room > ZR_PUSH_PULL_BATCH)
        room = ZR_PUSH_PULL_BATCH;
    if (room < 1)
        return;
    bool lease = !self->s.broadcast;
    const char *filter = (const char *) zhashx_lookup (self->s.filters,
                                                       q->topic);
    zr_enc_t *enc = zr_client_begin (b->client, "PULL", (lease ? 7 : 5)
                                                        + (filter ? 2 : 0));
    if (filter) {                   //  "tag:EXPR" or "sql:EXPR"
        zr_enc_kstr (enc, "filter_type", filter [0] == 's' ? "sql" : "tag");
        zr_enc_kstr (enc, "filter", filter + 4);
    }
    zr_enc_kstr (enc, "topic", q->topic);
    zr_enc_kint (enc, "queue", q->queue);
    zr_enc_kint (enc, "offset", q->next_pull);
    zr_enc_kint (enc, "max_count", room);
    zr_enc_kint (enc, "wait", self->stopping ? 0 : ZR_PUSH_PULL_WAIT);
    if (lease) {
        zr_enc_kstr (enc, "group", self->s.group);
        zr_enc_kint (enc, "token", q->token);
    }
    if (s_request (b, P_PULL, q, NULL, NULL, q->next_pull,
                   ZR_PUSH_PULL_WAIT + ZR_PUSH_REQ_TIMEOUT)
        == 0)
        q->pull_pending = true;
    else
        q->pull_retry_at = zclock_mono () + 100;
}

static void
s_send_commit (self_t *self, pqueue_t *q, int64_t offset)
{
    broker_t *b = q->broker;
    zr_enc_t *enc = zr_client_begin (b->client, "COMMIT_OFFSET", 5);
    zr_enc_kstr (enc, "group", self->s.group);
    zr_enc_kstr (enc, "topic", q->topic);
    zr_enc_kint (enc, "queue", q->queue);
    zr_enc_kint (enc, "offset", offset);
    zr_enc_kint (enc, "token", q->token);
    if (s_request (b, P_COMMIT, q, NULL, NULL, offset, ZR_PUSH_REQ_TIMEOUT)
        == 0)
        q->commit_pending = true;
}

static void
s_send_sendback (self_t *self, pqueue_t *q, entry_t *e)
{
    broker_t *b = q->broker;
    zr_enc_t *enc = zr_client_begin (b->client, "SEND_BACK", e->dlq ? 6 : 5);
    zr_enc_kstr (enc, "group", self->s.group);
    zr_enc_kstr (enc, "topic", q->topic);
    zr_enc_kint (enc, "queue", q->queue);
    zr_enc_kint (enc, "offset", e->offset);
    zr_enc_kstr (enc, "error",
                 e->dlq ? "handler failed after in-place retries"
                        : "handler asked for a retry");
    if (e->dlq)
        zr_enc_kbool (enc, "dlq", true);
    if (s_request (b, P_SENDBACK, q, NULL, e, 0, ZR_PUSH_REQ_TIMEOUT) == 0)
        s_entry_set (self, q, e, E_SENDBACK);
    else
        s_entry_set (self, q, e, E_SENDBACK_RETRY);
}

//  --------------------------------------------------------------------
//  Broadcast offsets file: "broker<TAB>topic<TAB>queue<TAB>offset" lines

static void
s_file_load (self_t *self)
{
    FILE *f = fopen (self->file_path, "r");
    if (!f)
        return;
    char line [600];
    while (fgets (line, sizeof (line), f)) {
        char *last = strrchr (line, '\t');
        if (!last)
            continue;
        *last = 0;
        char *end = NULL;
        long long v = strtoll (last + 1, &end, 10);
        if (end == last + 1 || v < 0)
            continue;
        int64_t *value = (int64_t *) malloc (sizeof (int64_t));
        assert (value);
        *value = v;
        zhashx_update (self->file_offsets, line, value);
    }
    fclose (f);
}

static void
s_file_save (self_t *self)
{
    if (!self->file_dirty)
        return;
    char *tmp = zsys_sprintf ("%s.tmp", self->file_path);
    FILE *f = fopen (tmp, "w");
    if (!f) {
        zsys_warning ("pushconsumer: cannot write %s: %s", tmp,
                      strerror (errno));
        zstr_free (&tmp);
        return;
    }
    for (int64_t *v = (int64_t *) zhashx_first (self->file_offsets); v;
         v = (int64_t *) zhashx_next (self->file_offsets))
        fprintf (f, "%s\t%" PRId64 "\n",
                 (const char *) zhashx_cursor (self->file_offsets), *v);
    bool ok = fflush (f) == 0 && fsync (fileno (f)) == 0;
    ok = fclose (f) == 0 && ok;
    if (ok && rename (tmp, self->file_path) == 0)
        self->file_dirty = false;
    else
        zsys_warning ("pushconsumer: cannot write %s: %s", self->file_path,
                      strerror (errno));
    zstr_free (&tmp);
}

static char *
s_file_key (pqueue_t *q)
{
    return zsys_sprintf ("%s\t%s\t%d", q->broker->name, q->topic, q->queue);
}

static void
s_file_record (self_t *self, pqueue_t *q)
{
    int64_t c = s_committable (q);
    if (c < 0 || c == q->committed)
        return;
    char *key = s_file_key (q);
    int64_t *value = (int64_t *) malloc (sizeof (int64_t));
    assert (value);
    *value = c;
    zhashx_update (self->file_offsets, key, value);
    zstr_free (&key);
    q->committed = c;
    self->file_dirty = true;
}

//  --------------------------------------------------------------------
//  Ownership

static bool
s_from_time (self_t *self, int64_t *ms)
{
    const char *f = self->s.from;
    if (streq (f, "first") || streq (f, "last"))
        return false;
    *ms = strtoll (f, NULL, 10);
    return true;
}

//  Sets where a newly taken queue starts: its committed offset, else the
//  start setting (the retry topic always from its first message).
static void
s_start_position (self_t *self, pqueue_t *q, int64_t committed)
{
    q->skip_before = 0;
    q->committed = committed;
    int64_t ms;
    if (committed >= 0)
        q->next_pull = committed;
    else
    if (q->retry_topic || streq (self->s.from, "first"))
        q->next_pull = 0;       //  OFFSET_OUT_OF_RANGE moves it to min
    else
    if (s_from_time (self, &ms)) {
        q->next_pull = 0;
        q->skip_before = ms;
    }
    else
    if (q->first_start >= 0)
        q->next_pull = q->first_start;  //  lost and retaken, no commit yet
    else
        q->next_pull = -1;      //  "last": GET_OFFSETS asks for max
}

//  A lease that ran out or that the broker refused: nothing buffered may
//  be handled any more.
static void
s_lease_lost (self_t *self, pqueue_t *q, const char *why)
{
    if (q->state != Q_HELD && q->state != Q_DRAIN && q->state != Q_SLAVE)
        return;
    if (q->state == Q_SLAVE)
        zsys_info ("pushconsumer: %s: %s: no more reads from a slave: %s",
                   self->s.client_id, q->key, why);
    else
        zsys_info ("pushconsumer: %s: lost lease on %s: %s",
                   self->s.client_id, q->key, why);
    s_drop_buffered (self, q);
    q->token = 0;
    q->next_pull = -1;
    q->committed = -1;
    q->state = q->wanted ? Q_WANT : Q_IDLE;
    q->lock_retry_at = zclock_mono ();
}

static void
s_rebalance (self_t *self, broker_t *b)
{
    size_t n = zlistx_size (b->queues);
    if (self->s.broadcast) {
        for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
             q = (pqueue_t *) zlistx_next (b->queues))
            if (q->state == Q_IDLE && !self->stopping) {
                q->wanted = true;
                q->state = Q_HELD;
                char *key = s_file_key (q);
                int64_t *v = (int64_t *) zhashx_lookup (self->file_offsets,
                                                        key);
                zstr_free (&key);
                s_start_position (self, q, v ? *v : -1);
                q->epoch++;
            }
        return;
    }
    zr_alloc_queue_t *aq =
        (zr_alloc_queue_t *) zmalloc ((n ? n : 1) * sizeof (*aq));
    bool *owned = (bool *) zmalloc ((n ? n : 1) * sizeof (bool));
    const char **members = (const char **) zmalloc (
        (zlist_size (b->members) + 1) * sizeof (char *));
    size_t i = 0;
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
         q = (pqueue_t *) zlistx_next (b->queues), i++) {
        aq [i].broker = b->name;
        aq [i].topic = q->topic;
        aq [i].queue = q->queue;
    }
    size_t m = 0;
    for (char *id = (char *) zlist_first (b->members); id;
         id = (char *) zlist_next (b->members))
        members [m++] = id;
    if (zr_allocate (self->s.strategy, members, m, self->s.client_id, aq, n,
                     owned)
        < 0)
        memset (owned, 0, n * sizeof (bool));
    i = 0;
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
         q = (pqueue_t *) zlistx_next (b->queues), i++) {
        q->wanted = owned [i] && !self->stopping;
        if (q->wanted && q->state == Q_IDLE) {
            q->state = Q_WANT;
            q->lock_retry_at = 0;
        }
        else
        if (!q->wanted && q->state == Q_WANT)
            q->state = Q_IDLE;
        else
        if (!q->wanted && q->state == Q_HELD) {
            q->state = Q_DRAIN;
            s_drop_buffered (self, q);
        }
        else
        if (q->wanted && q->state == Q_DRAIN)
            q->state = Q_HELD;
        else
        if (!q->wanted && q->state == Q_SLAVE)
            s_lease_lost (self, q, "no longer allocated to us");
    }
    free (aq);
    free (owned);
    free (members);
}

static void
s_set_topic_queues (self_t *self, broker_t *b, btopic_t *t, int queues)
{
    if (queues <= t->queues || queues <= 0) {
        if (t->queues < 0)
            t->queues = queues < 0 ? 0 : queues;
        return;
    }
    int from = t->queues < 0 ? 0 : t->queues;
    t->queues = queues;
    for (int i = from; i < queues; i++) {
        pqueue_t *q = (pqueue_t *) zmalloc (sizeof (pqueue_t));
        assert (q);
        q->broker = b;
        q->topic = strdup (t->name);
        q->queue = i;
        q->key = zsys_sprintf ("%s:%d@%s", t->name, i, b->name);
        q->retry_topic = streq (t->name, self->retry_topic);
        q->next_pull = -1;
        q->first_start = -1;
        q->committed = -1;
        q->handled_max = -1;
        q->entries = zlistx_new ();
        zlistx_add_end (b->queues, q);
    }
    s_rebalance (self, b);
}

//  --------------------------------------------------------------------
//  Replies

static int64_t
s_int (zr_reply_t *r, const char *key, int64_t dflt)
{
    int64_t v;
    if (r && zr_field_int (zr_reply_header (r), key, &v) == ZR_FIELD_OK)
        return v;
    return dflt;
}

static void
s_on_heartbeat (self_t *self, broker_t *b, zr_reply_t *r)
{
    b->heartbeat_pending = false;
    int64_t now = zclock_mono ();
    if (!r) {
        b->heartbeat_at = now + 100;
        return;
    }
    if (zr_reply_status (r) != ZR_OK) {
        if (!b->warned)
            zsys_warning ("pushconsumer: %s: HEARTBEAT: %s %s", b->endpoint,
                          zr_reply_status_str (r), zr_reply_reason (r));
        b->warned = true;
        b->heartbeat_at = now + 1000;
        return;
    }
    b->warned = false;
    int64_t hb = s_int (r, "heartbeat_ms", ZR_PUSH_HEARTBEAT_DEFAULT);
    if (hb < 10 || hb > 600000)
        hb = ZR_PUSH_HEARTBEAT_DEFAULT;
    b->heartbeat_ms = (int) hb;
    b->heartbeat_at = now + hb;
    const zr_obj_t *arr = zr_obj_get (zr_reply_header (r), "members");
    zlist_t *members = zlist_new ();
    zlist_autofree (members);
    for (size_t i = 0; arr && i < zr_obj_size (arr); i++) {
        const char *s;
        size_t len;
        if (zr_obj_str (zr_obj_at (arr, i), &s, &len) == ZR_FIELD_OK
            && zr_name_valid (s, len)) {
            char *id = strndup (s, len);
            zlist_append (members, id);
            free (id);
        }
    }
    zlist_sort (members, NULL);
    bool same = zlist_size (members) == zlist_size (b->members);
    char *x = (char *) zlist_first (members);
    char *y = (char *) zlist_first (b->members);
    while (same && x && y) {
        same = streq (x, y);
        x = (char *) zlist_next (members);
        y = (char *) zlist_next (b->members);
    }
    if (same) {
        zlist_destroy (&members);
        return;
    }
    zlist_destroy (&b->members);
    b->members = members;
    b->version = s_int (r, "version", -1);
    s_rebalance (self, b);
}

static void
s_on_lock (self_t *self, broker_t *b, pending_t *p, zr_reply_t *r)
{
    pqueue_t *q = p->q;
    q->lock_pending = false;
    int64_t now = zclock_mono ();
    bool renew = p->value >= 0;
    zr_status_t st = r ? zr_reply_status (r) : ZR_TIMEOUT;
    if (renew) {
        if (q->token != p->value
            || (q->state != Q_HELD && q->state != Q_DRAIN))
            return;             //  answer to an old lease
        if (st == ZR_OK && s_int (r, "token", p->value) != p->value)
            //  A new lease: ours had gone (or another broker answers at
            //  this endpoint); what we buffered is void.
            s_lease_lost (self, q, "LOCK renewal gave another token");
        else
        if (st == ZR_OK) {
            q->lease_sent = p->sent;
            q->lease_ms = s_int (r, "lease_ms", q->lease_ms);
            q->renew_at = p->sent + q->lease_ms / 3;
        }
        else
        if (st == ZR_LEASE_HELD || st == ZR_LEASE_INVALID)
            s_lease_lost (self, q, zr_status_str (st));
        //  timeouts and other errors: renew_at has passed, tick resends
        return;
    }
    if (st == ZR_OK) {
        int64_t token = s_int (r, "token", 0);
        if (q->state != Q_WANT || !q->wanted || self->stopping) {
            s_send_unlock (self, q, token, -1);   //  not wanted any more
            return;
        }
        q->state = Q_HELD;
        q->token = token;
        q->lease_sent = p->sent;
        q->lease_ms = s_int (r, "lease_ms", ZR_PUSH_LEASE_DEFAULT);
        if (q->lease_ms < 30)
            q->lease_ms = ZR_PUSH_LEASE_DEFAULT;
        q->renew_at = p->sent + q->lease_ms / 3;
        q->epoch++;
        s_start_position (self, q, s_int (r, "offset", -1));
        q->pull_retry_at = 0;
        if (q->next_pull >= 0 && q->handled_max >= q->next_pull)
            zsys_info ("pushconsumer: %s: %s resumes at the group's "
                       "offset %" PRId64 " on %s: %" PRId64 " handled "
                       "before and not committed there come again",
                       self->s.client_id, q->key, q->next_pull,
                       b->endpoint, q->handled_max - q->next_pull + 1);
        zsys_debug ("pushconsumer: %s took %s (token %" PRId64 ")",
                    self->s.client_id, q->key, token);
    }
    else
    if (st == ZR_LEASE_HELD) {
        int64_t wait = s_int (r, "expires_ms", 100);
        q->lock_retry_at = now + (wait < 20 ? 20 : wait > 100 ? 100 : wait);
    }
    else {
        if (r)
            zsys_warning ("pushconsumer: LOCK %s: %s %s", q->key,
                          zr_reply_status_str (r), zr_reply_reason (r));
        q->lock_retry_at = now + (r ? 1000 : 100);
    }
}

//  A PULL's reply, from the master, or (slave true) from a slave while
//  the queue is in state SLAVE.
static void
s_on_pull (self_t *self, broker_t *b, pending_t *p, zr_reply_t *r,
           bool slave)
{
    pqueue_t *q = p->q;
    if (slave)
        q->spull_pending = false;
    else
        q->pull_pending = false;
    int64_t now = zclock_mono ();
    if (p->epoch != q->epoch || q->state != (slave ? Q_SLAVE : Q_HELD)
    ||  p->value != q->next_pull)
        return;                 //  stale: nothing from it may be used
    if (!r) {
        if (slave)
            q->spull_retry_at = now + 100;
        else
            q->pull_retry_at = now + 100;
        return;
    }
    zr_status_t st = zr_reply_status (r);
    if (st == ZR_OK) {
        const zr_obj_t *msgs = zr_obj_get (zr_reply_header (r), "msgs");
        size_t count = msgs ? zr_obj_size (msgs) : 0;
        for (size_t i = 0; i < count; i++) {
            zr_message_t *msg = zr_message_from_wire (zr_obj_at (msgs, i),
                                                      zr_reply_body (r, i));
            if (!msg) {
                zsys_warning ("pushconsumer: %s: PULL %s: bad message map",
                              b->endpoint, q->key);
                continue;
            }
            int64_t offset = zr_message_offset (msg);
            if (offset < q->next_pull) {
                zr_message_destroy (&msg);
                continue;
            }
            if (q->skip_before > 0) {
                if (zr_message_stored (msg) < q->skip_before) {
                    q->next_pull = offset + 1;
                    zr_message_destroy (&msg);
                    continue;
                }
                q->skip_before = 0;
            }
            if (offset <= q->handled_max)
                self->redelivered++;    //  handled before: at-least-once
            entry_t *e = (entry_t *) zmalloc (sizeof (entry_t));
            assert (e);
            e->offset = offset;
            e->msg = msg;
            e->state = E_DONE;
            zlistx_add_end (q->entries, e);
            s_entry_set (self, q, e, E_BUFFERED);
            q->next_pull = offset + 1;
            if (slave) {
                b->slave_msgs++;
                self->slave_reads++;
            }
        }
        int64_t next = s_int (r, "next", q->next_pull);
        if (next > q->next_pull)
            q->next_pull = next;
    }
    else
    if (st == ZR_NO_NEW_MSG)
        ;
    else
    if (st == ZR_OFFSET_OUT_OF_RANGE) {
        int64_t min = s_int (r, "min", 0), max = s_int (r, "max", 0);
        zsys_info ("pushconsumer: %s: offset %" PRId64 " is outside %"
                   PRId64 "..%" PRId64 " (retention?), continuing from %"
                   PRId64, q->key, q->next_pull, min, max,
                   q->next_pull < min ? min : max);
        q->next_pull = q->next_pull < min ? min : max;
    }
    else
    if (st == ZR_LEASE_INVALID && !slave)
        s_lease_lost (self, q, "PULL: LEASE_INVALID");
    else {
        zsys_warning ("pushconsumer: PULL %s%s%s: %s %s", q->key,
                      slave ? " from slave " : "", slave ? b->slave : "",
                      zr_reply_status_str (r), zr_reply_reason (r));
        if (slave)
            q->spull_retry_at = now + 1000;
        else
            q->pull_retry_at = now + 1000;
    }
}

//  NOT_MASTER: the broker is not (or no longer) its group's master. The
//  group is suspect: the nameservers are asked at once. A master that
//  the reply names is kept as a hint, followed when the route lists it
//  as a member of the group (s_route_refresh): the endpoint we talk to
//  may since belong to another broker, whose master is not ours.
static void
s_not_master (self_t *self, broker_t *b, zr_reply_t *r)
{
    char master [256];
    if (self->routed
    &&  zr_field_strbuf (zr_reply_header (r), "master", master,
                         sizeof master) == ZR_FIELD_OK
    &&  *master && strneq (master, b->endpoint)
    &&  (!b->hint || strneq (b->hint, master))) {
        free (b->hint);
        b->hint = strdup (master);
    }
    if (!b->silent_since)
        b->silent_since = zclock_mono ();
}

static void
s_on_reply (self_t *self, broker_t *b, pending_t *p, zr_reply_t *r)
{
    zr_status_t st = r ? zr_reply_status (r) : ZR_TIMEOUT;
    pqueue_t *q = p->q;
    //  A timeout makes the broker suspect: the route is asked again
    //  (s_route_check) until it answers or the group moves.
    //  While reading from a slave, only a group command answered shows a
    //  master back: one cut off from the nameservers still serves reads
    //  (TOPIC_INFO, PULL) but answers group commands NOT_MASTER.
    bool read = p->kind == P_TOPIC_INFO || p->kind == P_BOUNDS
             || p->kind == P_PULL;
    if (r && st != ZR_NOT_MASTER && !(b->slave_mode && read))
        b->silent_since = 0;
    else
    if (!r && !b->silent_since)
        b->silent_since = zclock_mono ();
    if (st == ZR_NOT_MASTER)
        s_not_master (self, b, r);
    switch (p->kind) {
        case P_HEARTBEAT:
            s_on_heartbeat (self, b, r);
            break;
        case P_TOPIC_INFO: {
            btopic_t *t = p->t;
            t->info_pending = false;
            int64_t now = zclock_mono ();
            if (st == ZR_OK) {
                int64_t n = s_int (r, "queues", 0);
                if (n < 0 || n > 1024)
                    n = 0;
                s_set_topic_queues (self, b, t, (int) n);
            }
            else
            if (st == ZR_TOPIC_NOT_FOUND)
                s_set_topic_queues (self, b, t, 0);
            t->info_at = now + (t->queues > 0 ? 5000 : 500);
            break;
        }
        case P_LOCK:
            s_on_lock (self, b, p, r);
            break;
        case P_UNLOCK:
            if (q->state == Q_UNLOCKING) {
                if (st != ZR_OK)
                    zsys_warning ("pushconsumer: UNLOCK %s: %s", q->key,
                                  zr_status_str (st));
                q->state = q->wanted && !self->stopping ? Q_WANT : Q_IDLE;
                q->token = 0;
                q->lock_retry_at = 0;
            }
            break;
        case P_PULL:
            s_on_pull (self, b, p, r, false);
            break;
        case P_COMMIT:
            q->commit_pending = false;
            if (st == ZR_OK && p->epoch == q->epoch)
                q->committed = p->value;
            else
            if (st == ZR_LEASE_INVALID && p->epoch == q->epoch)
                s_lease_lost (self, q, "COMMIT_OFFSET: LEASE_INVALID");
            else
            if (st != ZR_OK)
                zsys_warning ("pushconsumer: COMMIT_OFFSET %s: %s %s",
                              q->key, zr_status_str (st),
                              r ? zr_reply_reason (r) : "");
            break;
        case P_SENDBACK: {
            entry_t *e = p->e;
            if (st == ZR_OK)
                s_entry_set (self, q, e, E_DONE);
            else {
                zsys_warning ("pushconsumer: SEND_BACK %s offset %" PRId64
                              ": %s %s",
                              q->key, e->offset, zr_status_str (st),
                              r ? zr_reply_reason (r) : "");
                if (++e->sendback_fails >= ZR_PUSH_SENDBACK_TRIES)
                    s_entry_set (self, q, e, E_BUFFERED);  //  handle again
                else
                    s_entry_set (self, q, e, E_SENDBACK_RETRY);
            }
            s_pop_done (q);
            break;
        }
        case P_BOUNDS:
            q->bounds_pending = false;
            if (st == ZR_OK && p->epoch == q->epoch && q->next_pull < 0) {
                q->next_pull = s_int (r, "max", -1);
                if (q->first_start < 0)
                    q->first_start = q->next_pull;
                q->pull_retry_at = 0;
                //  Record the group's start at once: a member that takes
                //  the queue later (after a rebalance or a lost lease)
                //  starts here too, instead of at a later "last" that
                //  would skip what was sent in between.
                if (!self->s.broadcast && q->next_pull >= 0
                &&  !q->commit_pending)
                    s_send_commit (self, q, q->next_pull);
            }
            break;
        case P_LEAVE:
            b->leave_pending = false;
            b->left = true;
            break;
    }
}

static void
s_broker_recv (self_t *self, broker_t *b)
{
    while (true) {
        zr_reply_t *r = zr_client_recv_any (b->client, 0);
        if (!r)
            return;
        if (zr_reply_is_request (r)) {
            char cmd [32];
            if (zr_field_strbuf (zr_reply_header (r), "cmd", cmd,
                                 sizeof (cmd))
                    == ZR_FIELD_OK
                && streq (cmd, "MEMBERS_CHANGED"))
                b->heartbeat_at = 0;
            zr_reply_destroy (&r);
            continue;
        }
        char key [24];
        snprintf (key, sizeof (key), "%" PRIu64, zr_reply_rid (r));
        pending_t *p = (pending_t *) zhashx_lookup (b->pending, key);
        if (p) {
            zhashx_delete (b->pending, key);
            s_on_reply (self, b, p, r);
            free (p);
        }
        zr_reply_destroy (&r);
    }
}

//  Times out requests whose reply did not come.
static void
s_expire (self_t *self, broker_t *b, int64_t now)
{
    zlist_t *late = zlist_new ();
    zlist_autofree (late);
    for (pending_t *p = (pending_t *) zhashx_first (b->pending); p;
         p = (pending_t *) zhashx_next (b->pending))
        if (now >= p->deadline)
            zlist_append (late, (void *) zhashx_cursor (b->pending));
    for (char *key = (char *) zlist_first (late); key;
         key = (char *) zlist_next (late)) {
        pending_t *p = (pending_t *) zhashx_lookup (b->pending, key);
        if (!p)
            continue;
        zhashx_delete (b->pending, key);
        s_on_reply (self, b, p, NULL);
        free (p);
    }
    zlist_destroy (&late);
}

//  --------------------------------------------------------------------
//  Finished jobs

static void
s_on_job (self_t *self, job_t *job)
{
    pqueue_t *q = job->q;
    entry_t *e = job->e;
    if (job->skipped) {
        if ((q->state == Q_HELD || q->state == Q_SLAVE)
        &&  job->epoch == q->epoch)
            s_entry_set (self, q, e, E_BUFFERED);
        else
            s_entry_remove (self, q, e);
    }
    else {
        int result = job->result;
        if (e->offset > q->handled_max)
            q->handled_max = e->offset;
        if (result != ZR_CONSUME_SUCCESS && result != ZR_CONSUME_RETRY) {
            zsys_warning ("pushconsumer: handler returned %d for %s offset "
                          "%" PRId64 ": treated as RETRY",
                          result, q->key, e->offset);
            result = ZR_CONSUME_RETRY;
        }
        if (result == ZR_CONSUME_SUCCESS)
            s_entry_set (self, q, e, E_DONE);
        else
        if (self->s.broadcast || self->s.orderly) {
            if (++e->attempts <= self->s.max_retries)
                s_entry_set (self, q, e, E_BUFFERED);     //  in place
            else
            if (self->s.broadcast) {
                zsys_warning ("pushconsumer: %s offset %" PRId64 " failed "
                              "%d times: skipped (broadcast)",
                              q->key, e->offset, e->attempts);
                s_entry_set (self, q, e, E_DONE);
            }
            else {
                e->dlq = true;
                s_send_sendback (self, q, e);
            }
        }
        else
            s_send_sendback (self, q, e);
    }
    s_pop_done (q);
    free (job);
}

//  --------------------------------------------------------------------
//  Reading from a slave while a broker group has no master (docs/
//  protocol.md section 11, "Following a broker group's new master")

//  True while b's master does not answer (or answers NOT_MASTER) and no
//  new master is named: its held queues may be read from a slave.
static bool
s_masterless (self_t *self, broker_t *b)
{
    return self->routed && !self->s.broadcast && !self->stopping
        && b->silent_since && !b->move_to && !b->left;
}

//  The queues held when the master went away go to SLAVE, keeping their
//  positions and buffered messages; their leases are given up (nothing
//  can renew them, and none can be taken on a slave).
static void
s_slave_enter (self_t *self, broker_t *b)
{
    b->slave_mode = true;
    b->slave_msgs = 0;
    b->slave_retry_at = 0;
    b->slave_warned = false;
    size_t count = 0;
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
         q = (pqueue_t *) zlistx_next (b->queues))
        if (q->state == Q_HELD && q->wanted && q->next_pull >= 0) {
            q->state = Q_SLAVE;
            q->token = 0;
            q->spull_pending = false;
            q->spull_retry_at = 0;
            count++;
        }
    zsys_info ("pushconsumer: %s: broker group %s: master %s does not "
               "answer; %zu held queues go on from a slave until a master "
               "answers", self->s.client_id, b->name, b->endpoint, count);
}

//  A master answers again (or a new one is named, or we stop): no more
//  reads from the slave. The SLAVE queues are taken again with LOCK, from
//  the group's committed offset on the master.
static void
s_slave_leave (self_t *self, broker_t *b, const char *why)
{
    if (b->slave)
        zsys_info ("pushconsumer: %s: broker group %s: stopped reading "
                   "from slave %s (%s): %" PRIu64 " messages read there",
                   self->s.client_id, b->name, b->slave, why,
                   b->slave_msgs);
    s_slave_close (b);
    b->slave_mode = false;
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
         q = (pqueue_t *) zlistx_next (b->queues))
        if (q->state == Q_SLAVE)
            s_lease_lost (self, q, why);
}

//  Fills b->slaves from GET_CLUSTER (section 9): every live broker of
//  b's group registered as a slave. A slave replicates the whole store,
//  so it serves our topics even when its registration does not list
//  them (GET_ROUTE lists a slave only for the topics it registered).
//  Asks the nameservers one after the other, ZR_PUSH_ROUTE_TIMEOUT in
//  all; keeps the first answer.
static void
s_cluster_slaves (self_t *self, broker_t *b)
{
    char *copy = strdup (self->s.fabric);
    assert (copy);
    int64_t deadline = zclock_mono () + ZR_PUSH_ROUTE_TIMEOUT;
    char *save = NULL;
    bool answered = false;
    for (char *ep = strtok_r (copy, ",", &save); ep && !answered;
         ep = strtok_r (NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        int left = (int) (deadline - zclock_mono ());
        zr_client_t *client = *ep && left > 0 ? zr_client_new (ep) : NULL;
        if (!client)
            continue;
        zr_client_set_sndtimeo (client, left);
        zr_client_begin (client, "GET_CLUSTER", 0);
        zr_reply_t *r = zr_client_call (client, NULL, 0, left);
        if (r && zr_reply_status (r) == ZR_OK) {
            answered = true;
            const zr_obj_t *brokers = zr_obj_get (zr_reply_header (r),
                                                  "brokers");
            size_t count = zr_obj_is_array (brokers)
                         ? zr_obj_size (brokers) : 0;
            for (size_t i = 0; i < count && i < 1024; i++) {
                const zr_obj_t *m = zr_obj_at (brokers, i);
                char group [ZR_NAME_MAX + 1], role [16];
                const char *sep;
                size_t len;
                if (!zr_obj_is_map (m)
                ||  zr_field_strbuf (m, "group", group, sizeof group)
                        != ZR_FIELD_OK
                ||  zr_field_strbuf (m, "role", role, sizeof role)
                        != ZR_FIELD_OK
                ||  strneq (group, b->name) || strneq (role, "slave")
                ||  zr_obj_str (zr_obj_at (zr_obj_get (m, "endpoints"), 0),
                                &sep, &len) != ZR_FIELD_OK
                ||  len == 0 || len > 255 || memchr (sep, 0, len))
                    continue;
                char *slave = strndup (sep, len);
                assert (slave);
                zlist_append (b->slaves, slave);
                free (slave);
            }
        }
        zr_reply_destroy (&r);
        zr_client_destroy (&client);
    }
    free (copy);
}

//  Connects to the next slave the route listed for b (not its master);
//  with none listed, to one the nameservers' cluster view names.
static void
s_slave_connect (self_t *self, broker_t *b, int64_t now)
{
    if (zlist_size (b->slaves) == 0)
        s_cluster_slaves (self, b);
    size_t n = zlist_size (b->slaves);
    const char *ep = NULL;
    for (size_t tries = 0; tries < n && !ep; tries++) {
        size_t at = b->slave_next++ % n;
        const char *cand = (const char *) zlist_first (b->slaves);
        for (size_t i = 0; i < at && cand; i++)
            cand = (const char *) zlist_next (b->slaves);
        if (cand && strneq (cand, b->endpoint))
            ep = cand;
    }
    zr_client_t *client = ep ? zr_client_new (ep) : NULL;
    if (!client) {
        if (!b->slave_warned)
            zsys_info ("pushconsumer: %s: broker group %s has no master "
                       "and no slave to read from: waiting",
                       self->s.client_id, b->name);
        b->slave_warned = true;
        b->slave_retry_at = now + ZR_PUSH_ROUTE_GAP;
        return;
    }
    zr_client_set_sndtimeo (client, 0);
    b->sclient = client;
    b->slave = strdup (ep);
    b->slave_warned = false;
    zsys_info ("pushconsumer: %s: reading from slave %s while group %s has "
               "no master", self->s.client_id, ep, b->name);
}

//  A plain PULL (no group, no token: a slave keeps no leases, and group
//  commands go to a master only) at the queue's in-memory position.
static void
s_slave_pull (self_t *self, pqueue_t *q, int64_t now)
{
    broker_t *b = q->broker;
    int room = self->s.buffer - (int) (q->buffered + q->busy);
    if (room > ZR_PUSH_PULL_BATCH)
        room = ZR_PUSH_PULL_BATCH;
    if (room < 1)
        return;
    const char *filter = (const char *) zhashx_lookup (self->s.filters,
                                                       q->topic);
    zr_enc_t *enc = zr_client_begin (b->sclient, "PULL", 5 + (filter ? 2 : 0));
    if (filter) {
        zr_enc_kstr (enc, "filter_type", filter [0] == 's' ? "sql" : "tag");
        zr_enc_kstr (enc, "filter", filter + 4);
    }
    zr_enc_kstr (enc, "topic", q->topic);
    zr_enc_kint (enc, "queue", q->queue);
    zr_enc_kint (enc, "offset", q->next_pull);
    zr_enc_kint (enc, "max_count", room);
    zr_enc_kint (enc, "wait", ZR_PUSH_PULL_WAIT);
    if (zr_client_send (b->sclient, NULL, NULL, 0) == -1) {
        q->spull_retry_at = now + 100;
        return;
    }
    pending_t *p = (pending_t *) zmalloc (sizeof (pending_t));
    assert (p);
    p->kind = P_PULL;
    p->q = q;
    p->epoch = q->epoch;
    p->sent = now;
    p->deadline = now + ZR_PUSH_PULL_WAIT + ZR_PUSH_REQ_TIMEOUT;
    p->value = q->next_pull;
    char key [24];
    snprintf (key, sizeof (key), "%" PRIu64, zr_client_rid (b->sclient));
    zhashx_update (b->spending, key, p);
    q->spull_pending = true;
}

static void
s_slave_recv (self_t *self, broker_t *b)
{
    while (b->sclient) {
        zr_reply_t *r = zr_client_recv_any (b->sclient, 0);
        if (!r)
            return;
        char key [24];
        snprintf (key, sizeof (key), "%" PRIu64, zr_reply_rid (r));
        pending_t *p = zr_reply_is_request (r)
                     ? NULL : (pending_t *) zhashx_lookup (b->spending, key);
        if (p) {
            zhashx_delete (b->spending, key);
            s_on_pull (self, b, p, r, true);
            free (p);
        }
        zr_reply_destroy (&r);
    }
}

//  Enters, keeps or leaves slave mode for b, before its queues tick. A
//  slave that does not answer a PULL in time is left for the next one.
static void
s_slave_check (self_t *self, broker_t *b, int64_t now)
{
    if (!s_masterless (self, b)) {
        if (b->slave_mode)
            s_slave_leave (self, b, self->stopping ? "stopping"
                                                   : "a master answers");
        return;
    }
    if (!b->slave_mode) {
        bool enter = now - b->silent_since >= ZR_PUSH_SLAVE_AFTER;
        //  Also when a held lease would pass now: its position is kept.
        for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues);
             q && !enter; q = (pqueue_t *) zlistx_next (b->queues))
            enter = q->state == Q_HELD && now >= q->lease_sent + q->lease_ms;
        if (!enter)
            return;
        s_slave_enter (self, b);
    }
    bool late = false;
    for (pending_t *p = (pending_t *) zhashx_first (b->spending); p && !late;
         p = (pending_t *) zhashx_next (b->spending))
        late = now >= p->deadline;
    if (late) {
        zsys_warning ("pushconsumer: %s: slave %s does not answer; trying "
                      "the next one", self->s.client_id, b->slave);
        s_slave_close (b);
        b->slave_retry_at = now + ZR_PUSH_ROUTE_GAP;
    }
    bool reading = false;
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues);
         q && !reading; q = (pqueue_t *) zlistx_next (b->queues))
        reading = q->state == Q_SLAVE;
    if (reading && !b->sclient && now >= b->slave_retry_at)
        s_slave_connect (self, b, now);
}

//  --------------------------------------------------------------------
//  Timers

static bool
s_lease_ok (self_t *self, pqueue_t *q, int64_t now)
{
    if (q->state == Q_SLAVE)
        return true;            //  no lease: read from a slave
    if (self->s.broadcast)
        return q->state == Q_HELD;
    return q->state == Q_HELD && now < q->lease_sent + q->lease_ms * 9 / 10;
}

static void
s_dispatch (self_t *self, int64_t now)
{
    bool progress = true;
    while (progress && self->inflight < (size_t) self->s.threads
           && !self->stopping) {
        progress = false;
        for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
             b = (broker_t *) zlistx_next (self->brokers))
            for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
                 q = (pqueue_t *) zlistx_next (b->queues)) {
                if (self->inflight >= (size_t) self->s.threads)
                    return;
                if (q->buffered == 0 || !s_lease_ok (self, q, now))
                    continue;
                if (self->s.orderly && q->busy > 0)
                    continue;
                entry_t *e = (entry_t *) zlistx_first (q->entries);
                while (e && e->state != E_BUFFERED)
                    e = (entry_t *) zlistx_next (q->entries);
                if (!e)
                    continue;
                job_t *job = (job_t *) zmalloc (sizeof (job_t));
                assert (job);
                job->e = e;
                job->q = q;
                job->msg = e->msg;
                job->epoch = q->epoch;
                job->deadline = self->s.broadcast || q->state == Q_SLAVE
                              ? 0 : q->lease_sent + q->lease_ms;
                job->handler = self->s.handler;
                job->arg = self->s.arg;
                s_entry_set (self, q, e, E_INFLIGHT);
                pthread_mutex_lock (&self->pool.lock);
                zlist_append (self->pool.jobs, job);
                pthread_cond_signal (&self->pool.cond);
                pthread_mutex_unlock (&self->pool.lock);
                progress = true;
            }
    }
}

static void
s_tick_queue (self_t *self, pqueue_t *q, int64_t now, bool commit)
{
    bool lease = !self->s.broadcast;
    if (lease && (q->state == Q_HELD || q->state == Q_DRAIN)
        && now >= q->lease_sent + q->lease_ms)
        s_lease_lost (self, q, "lease time passed");

    //  Send-backs that failed to go out
    if (q->busy > 0)
        for (entry_t *e = (entry_t *) zlistx_first (q->entries); e;
             e = (entry_t *) zlistx_next (q->entries))
            if (e->state == E_SENDBACK_RETRY && commit)
                s_send_sendback (self, q, e);

    if (q->state == Q_SLAVE) {
        //  No lease to renew, nothing committed: commits go to a master.
        if (q->broker->sclient && !q->spull_pending && !self->stopping
        &&  now >= q->spull_retry_at
        &&  (int) (q->buffered + q->busy) < self->s.buffer)
            s_slave_pull (self, q, now);
        return;
    }
    if (q->state == Q_WANT) {
        if (!q->lock_pending && q->busy == 0
            && zlistx_size (q->entries) == 0 && now >= q->lock_retry_at)
            s_send_lock (self, q, false);
        return;
    }
    if (q->state != Q_HELD && q->state != Q_DRAIN)
        return;
    if (lease && !q->lock_pending && now >= q->renew_at)
        s_send_lock (self, q, true);
    if (q->state == Q_DRAIN) {
        if (q->busy == 0 && !q->lock_pending) {
            s_drop_buffered (self, q);
            q->state = Q_UNLOCKING;
            s_send_unlock (self, q, q->token, s_committable (q));
        }
        return;
    }
    //  HELD
    if (self->stopping)
        return;
    if (q->next_pull < 0) {
        if (!q->bounds_pending) {
            zr_enc_t *enc =
                zr_client_begin (q->broker->client, "GET_OFFSETS", 2);
            zr_enc_kstr (enc, "topic", q->topic);
            zr_enc_kint (enc, "queue", q->queue);
            if (s_request (q->broker, P_BOUNDS, q, NULL, NULL, 0,
                           ZR_PUSH_REQ_TIMEOUT)
                == 0)
                q->bounds_pending = true;
        }
        return;
    }
    if (!q->pull_pending && now >= q->pull_retry_at
        && (int) (q->buffered + q->busy) < self->s.buffer
        && s_lease_ok (self, q, now))
        s_send_pull (self, q);
    if (commit) {
        if (!lease)
            s_file_record (self, q);
        else {
            int64_t c = s_committable (q);
            if (c >= 0 && c != q->committed && !q->commit_pending)
                s_send_commit (self, q, c);
        }
    }
}

//  --------------------------------------------------------------------
//  Following a broker group's master (docs/protocol.md section 11)

static broker_t *
s_broker_find (self_t *self, const char *name)
{
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers))
        if (streq (b->name, name))
            return b;
    return NULL;
}

//  Keeps the slaves route group i lists for b (read while b has no
//  master). A route without the group leaves the last list as it was.
static void
s_broker_slaves (broker_t *b, zr_route_t *route, size_t i)
{
    zlist_purge (b->slaves);
    for (size_t j = 0; j < zr_route_slaves (route, i); j++)
        zlist_append (b->slaves, (void *) zr_route_slave (route, i, j));
}

//  Moves broker group b to its new master b->move_to: a new DEALER, every
//  request in flight forgotten, leases and buffered messages dropped (the
//  old master's leases mean nothing to the new one). Queues are taken
//  again there with LOCK, whose reply gives the group's committed offset
//  on the new master (replicated): nothing is skipped, and what was
//  handled but not committed yet is handled again (counted in
//  redelivered). Broadcast queues keep their positions (ours).
static void
s_broker_move (self_t *self, broker_t *b)
{
    char *to = b->move_to;
    b->move_to = NULL;
    zr_client_t *client = zr_client_new (to);
    if (!client) {
        zsys_warning ("pushconsumer: %s: broker group %s: master endpoint "
                      "'%s' is not valid", self->s.client_id, b->name, to);
        free (to);
        return;
    }
    zr_client_set_sndtimeo (client, 0);
    zsys_info ("pushconsumer: %s: broker group %s: master moved from %s to "
               "%s (epoch %" PRId64 "); taking its queues there",
               self->s.client_id, b->name, b->endpoint, to, b->epoch);
    zr_client_destroy (&b->client);
    b->client = client;
    free (b->endpoint);
    b->endpoint = to;
    b->silent_since = 0;
    zstr_free (&b->hint);
    self->moves++;
    for (pending_t *p = (pending_t *) zhashx_first (b->pending); p;
         p = (pending_t *) zhashx_next (b->pending)) {
        if (p->kind == P_SENDBACK && p->e && p->e->state == E_SENDBACK)
            s_entry_set (self, p->q, p->e, E_SENDBACK_RETRY);
        free (p);
    }
    zhashx_purge (b->pending);
    b->heartbeat_pending = false;
    b->heartbeat_at = 0;
    b->warned = false;
    if (b->leave_pending) {
        b->leave_pending = false;
        b->left = true;
    }
    for (btopic_t *t = (btopic_t *) zlistx_first (b->topics); t;
         t = (btopic_t *) zlistx_next (b->topics)) {
        t->info_pending = false;
        t->info_at = 0;
    }
    for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
         q = (pqueue_t *) zlistx_next (b->queues)) {
        q->lock_pending = false;
        q->pull_pending = false;
        q->bounds_pending = false;
        q->commit_pending = false;
        q->pull_retry_at = 0;
        q->lock_retry_at = 0;
        if (self->s.broadcast) {
            s_drop_buffered (self, q);
            continue;
        }
        if (q->state == Q_HELD || q->state == Q_DRAIN)
            s_lease_lost (self, q, "the broker group's master moved");
        else
        if (q->state == Q_UNLOCKING) {
            q->state = q->wanted && !self->stopping ? Q_WANT : Q_IDLE;
            q->token = 0;
        }
        q->epoch++;
    }
}

//  Asks the nameservers for every subscribed topic's route: a group
//  whose master changed moves (at a higher epoch, or when ours stopped
//  answering: a nameserver behind the others must not move us back); a
//  broker group that appeared is joined.
static void
s_route_refresh (self_t *self)
{
    for (char *t = (char *) zlist_first (self->s.topics); t;
         t = (char *) zlist_next (self->s.topics)) {
        char *err = NULL;
        zr_route_t *route = zr_route_lookup (self->s.fabric, t,
                                             ZR_PUSH_ROUTE_TIMEOUT, &err);
        if (!route) {
            zsys_debug ("pushconsumer: route of %s: %s", t,
                        err ? err : "no answer");
            zstr_free (&err);
            continue;
        }
        for (size_t i = 0; i < zr_route_groups (route); i++) {
            const char *name = zr_route_group (route, i);
            const char *master = zr_route_master (route, i);
            int64_t epoch = zr_route_epoch (route, i);
            broker_t *b = s_broker_find (self, name);
            if (b)
                s_broker_slaves (b, route, i);
            if (!master)
                continue;
            if (!b) {
                if (self->stopping)
                    continue;
                zsys_info ("pushconsumer: %s: broker group %s (master %s) "
                           "serves %s: joining", self->s.client_id, name,
                           master, t);
                b = s_broker_new (self, name, master);
                if (b) {
                    b->epoch = epoch;
                    s_broker_slaves (b, route, i);
                }
                continue;
            }
            const char *to = NULL;
            bool moved = strneq (master, b->endpoint);
            if (moved && epoch && epoch < b->epoch)
                to = NULL;      //  a nameserver behind the others
            else
            if (moved && epoch && epoch == b->epoch && !b->silent_since)
                to = NULL;      //  ours answers (one NOT_MASTER named?)
            else
            if (moved)
                to = master;
            if (!to && b->hint && strneq (b->hint, b->endpoint)) {
                //  A NOT_MASTER named it: follow when it is a member of
                //  this group (the route may not show it as master yet).
                bool member = streq (b->hint, master);
                for (size_t j = 0; !member && j < zr_route_slaves (route, i);
                     j++)
                    member = streq (b->hint, zr_route_slave (route, i, j));
                if (member)
                    to = b->hint;
            }
            if (to && (!b->move_to || strneq (b->move_to, to))) {
                free (b->move_to);
                b->move_to = strdup (to);
            }
            zstr_free (&b->hint);
            if (epoch > b->epoch)
                b->epoch = epoch;
        }
        zr_route_destroy (&route);
    }
}

//  Refreshes the routes every ZR_PUSH_ROUTE_MS, and every
//  ZR_PUSH_ROUTE_GAP while a broker is suspect (timed out, NOT_MASTER).
static void
s_route_check (self_t *self, int64_t now)
{
    bool suspect = false;
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers))
        suspect = suspect || (b->silent_since && !b->move_to);
    if (now >= self->route_at
    ||  (suspect && now - self->route_tried >= ZR_PUSH_ROUTE_GAP)) {
        s_route_refresh (self);
        self->route_tried = zclock_mono ();
        self->route_at = self->route_tried + ZR_PUSH_ROUTE_MS;
    }
}

static void
s_tick (self_t *self)
{
    int64_t now = zclock_mono ();
    if (self->routed) {
        s_route_check (self, now);
        now = zclock_mono ();
    }
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers))
        if (b->move_to)
            s_broker_move (self, b);
    bool commit = now >= self->commit_at;
    if (commit)
        self->commit_at = now + ZR_PUSH_COMMIT_MS;
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers)) {
        s_expire (self, b, now);
        s_slave_check (self, b, now);
        if (b->left)
            continue;
        if (!b->heartbeat_pending && now >= b->heartbeat_at)
            s_send_heartbeat (self, b);
        for (btopic_t *t = (btopic_t *) zlistx_first (b->topics); t;
             t = (btopic_t *) zlistx_next (b->topics))
            if (!t->info_pending && now >= t->info_at && !self->stopping) {
                zr_enc_t *enc = zr_client_begin (b->client, "TOPIC_INFO", 1);
                zr_enc_kstr (enc, "topic", t->name);
                if (s_request (b, P_TOPIC_INFO, NULL, t, NULL, 0,
                               ZR_PUSH_REQ_TIMEOUT)
                    == 0)
                    t->info_pending = true;
                else
                    t->info_at = now + 100;
            }
        for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
             q = (pqueue_t *) zlistx_next (b->queues))
            s_tick_queue (self, q, now, commit);
    }
    if (commit && self->s.broadcast)
        s_file_save (self);
    s_dispatch (self, now);
}

//  --------------------------------------------------------------------
//  Commands

static char *
s_start (self_t *self)
{
    const char *fabric = self->s.fabric;
    if (strncmp (fabric, "broker:", 7) == 0) {
        const char *ep = fabric + 7;
        zr_client_t *probe = zr_client_new (ep);
        if (!probe)
            return zsys_sprintf ("bad broker endpoint '%s'", ep);
        zr_client_begin (probe, "PING", 0);
        zr_reply_t *r = zr_client_call (probe, NULL, 0, 3000);
        char name [ZR_NAME_MAX + 1] = "";
        if (r && zr_reply_status (r) == ZR_OK)
            zr_field_strbuf (zr_reply_header (r), "broker", name,
                             sizeof (name));
        bool ok = r != NULL;
        zr_reply_destroy (&r);
        zr_client_destroy (&probe);
        if (!ok)
            return zsys_sprintf ("no broker answered at %s", ep);
        if (!*name)
            snprintf (name, sizeof (name), "broker");
        if (!s_broker_new (self, name, ep))
            return zsys_sprintf ("bad broker endpoint '%s'", ep);
    }
    else {
        for (char *t = (char *) zlist_first (self->s.topics); t;
             t = (char *) zlist_next (self->s.topics)) {
            char *err = NULL;
            zr_route_t *route = zr_route_lookup (fabric, t, 3000, &err);
            if (!route) {
                char *msg = zsys_sprintf ("topic %s: %s", t,
                                          err ? err : "no route");
                zstr_free (&err);
                return msg;
            }
            for (size_t i = 0; i < zr_route_groups (route); i++) {
                const char *name = zr_route_group (route, i);
                const char *master = zr_route_master (route, i);
                if (!master)
                    continue;
                if (!s_broker_find (self, name)) {
                    broker_t *b = s_broker_new (self, name, master);
                    if (b) {
                        b->epoch = zr_route_epoch (route, i);
                        s_broker_slaves (b, route, i);
                    }
                }
            }
            zr_route_destroy (&route);
        }
        if (zlistx_size (self->brokers) == 0)
            return strdup ("no broker with a master serves the topics");
        self->routed = true;
        self->route_at = zclock_mono () + ZR_PUSH_ROUTE_MS;
    }
    if (self->s.broadcast) {
        self->file_path = zsys_sprintf ("%s/%s.offsets", self->s.offset_dir,
                                        self->s.group);
        s_file_load (self);
    }
    //  Handler threads
    self->threads =
        (pthread_t *) zmalloc (self->s.threads * sizeof (pthread_t));
    for (int i = 0; i < self->s.threads; i++) {
        if (pthread_create (&self->threads [i], NULL, s_worker, &self->pool)
            != 0)
            return strdup ("cannot start handler threads");
        self->nthreads++;
    }
    self->started = true;
    return NULL;
}

static char *
s_owned (self_t *self)
{
    char *list = strdup ("");
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers))
        for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
             q = (pqueue_t *) zlistx_next (b->queues))
            //  Owned once its start position is known too: "last" is
            //  resolved by a GET_OFFSETS after the lease.
            if (q->state == Q_HELD && q->next_pull >= 0) {
                char *more = zsys_sprintf ("%s%s%s", list, *list ? "," : "",
                                           q->key);
                free (list);
                list = more;
            }
    return list;
}

//  Stop: every queue drains and is released; done when nothing is busy
//  or pending except heartbeats.
static bool
s_stop_done (self_t *self)
{
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers)) {
        for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
             q = (pqueue_t *) zlistx_next (b->queues)) {
            if (q->busy > 0 || q->lock_pending)
                return false;
            if (!self->s.broadcast && q->state != Q_IDLE)
                return false;
        }
    }
    return true;
}

static void
s_stop_step (self_t *self)
{
    int64_t now = zclock_mono ();
    bool timeout = now >= self->stop_deadline;
    if (!self->leaving) {
        if (!s_stop_done (self) && !timeout)
            return;
        if (timeout)
            zsys_warning ("pushconsumer: %s: stop timed out with work "
                          "unfinished", self->s.client_id);
        if (self->s.broadcast) {
            for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
                 b = (broker_t *) zlistx_next (self->brokers))
                for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
                     q = (pqueue_t *) zlistx_next (b->queues))
                    if (q->state == Q_HELD)
                        s_file_record (self, q);
            s_file_save (self);
        }
        for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
             b = (broker_t *) zlistx_next (self->brokers)) {
            zr_enc_t *enc = zr_client_begin (b->client, "LEAVE", 2);
            zr_enc_kstr (enc, "group", self->s.group);
            zr_enc_kstr (enc, "client_id", self->s.client_id);
            if (s_request (b, P_LEAVE, NULL, NULL, NULL, 0, 1000) == 0)
                b->leave_pending = true;
            else
                b->left = true;
        }
        self->leaving = true;
        if (self->stop_deadline < now + 1000)
            self->stop_deadline = now + 1000;
    }
    bool left = true;
    for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
         b = (broker_t *) zlistx_next (self->brokers))
        left = left && !b->leave_pending;
    //  The LEAVE gets its own second (stop_deadline was moved): a stop
    //  that timed out draining must still tell the brokers, or they list
    //  a gone member until it expires.
    if (left || now >= self->stop_deadline) {
        if (self->moves || self->redelivered || self->slave_reads)
            zsys_info ("pushconsumer: %s: %" PRIu64 " moves to a new "
                       "master; %" PRIu64 " messages read from slaves; %"
                       PRIu64 " messages handled again",
                       self->s.client_id, self->moves, self->slave_reads,
                       self->redelivered);
        zstr_send (self->pipe, "OK");
        self->stopping = false;
        self->leaving = false;
        self->started = false;
        //  Nothing more goes out; the front end destroys the actor next.
        for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
             b = (broker_t *) zlistx_next (self->brokers))
            b->left = true;
    }
}

static void
s_handle_pipe (self_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *verb = zmsg_popstr (msg);
    if (verb && streq (verb, "$TERM"))
        self->terminated = true;
    else
    if (verb && streq (verb, "START")) {
        char *err = self->started ? strdup ("already started")
                                  : s_start (self);
        if (err)
            zstr_sendx (self->pipe, "ERROR", err, NULL);
        else
            zstr_send (self->pipe, "OK");
        zstr_free (&err);
    }
    else
    if (verb && streq (verb, "OWNED")) {
        char *list = s_owned (self);
        zstr_sendx (self->pipe, "OK", list, NULL);
        free (list);
    }
    else
    if (verb && streq (verb, "STOP")) {
        if (!self->started)
            zstr_send (self->pipe, "OK");
        else {
            self->stopping = true;
            self->stop_deadline = zclock_mono () + ZR_PUSH_STOP_MS;
            for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
                 b = (broker_t *) zlistx_next (self->brokers)) {
                s_rebalance (self, b);
                for (pqueue_t *q = (pqueue_t *) zlistx_first (b->queues); q;
                     q = (pqueue_t *) zlistx_next (b->queues))
                    s_drop_buffered (self, q);
            }
        }
    }
    else
        zsys_warning ("pushconsumer: unknown command '%s'", verb ? verb : "");
    zstr_free (&verb);
    zmsg_destroy (&msg);
}

//  --------------------------------------------------------------------
//  Actor

static void
s_offset_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_push_actor (zsock_t *pipe, void *args)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    assert (self);
    self->pipe = pipe;
    s_settings_copy (&self->s, (settings_t *) args);
    self->retry_topic = zsys_sprintf ("%%RETRY%%%s", self->s.group);
    self->brokers = zlistx_new ();
    self->file_offsets = zhashx_new ();
    zhashx_set_destructor (self->file_offsets, s_offset_free);
    pthread_mutex_init (&self->pool.lock, NULL);
    pthread_cond_init (&self->pool.cond, NULL);
    self->pool.jobs = zlist_new ();
    snprintf (self->pool.endpoint, sizeof (self->pool.endpoint),
              "inproc://zr-push-%p-%04x", (void *) self,
              (unsigned) randof (0x10000));
    self->done = zsock_new_pull (self->pool.endpoint);
    assert (self->done);
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        size_t nb = zlistx_size (self->brokers);
        //  Each broker's master DEALER, then the slave DEALERs open.
        zmq_pollitem_t *items = (zmq_pollitem_t *) zmalloc (
            (2 + 2 * nb) * sizeof (zmq_pollitem_t));
        broker_t **bs = (broker_t **) zmalloc ((2 * nb + 1) * sizeof (void *));
        items [0].socket = zsock_resolve (self->pipe);
        items [0].events = ZMQ_POLLIN;
        items [1].socket = zsock_resolve (self->done);
        items [1].events = ZMQ_POLLIN;
        size_t i = 0;
        for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
             b = (broker_t *) zlistx_next (self->brokers), i++) {
            bs [i] = b;
            items [2 + i].socket = zsock_resolve (zr_client_sock (b->client));
            items [2 + i].events = ZMQ_POLLIN;
        }
        size_t ns = 0;
        for (broker_t *b = (broker_t *) zlistx_first (self->brokers); b;
             b = (broker_t *) zlistx_next (self->brokers))
            if (b->sclient) {
                bs [nb + ns] = b;
                items [2 + nb + ns].socket =
                    zsock_resolve (zr_client_sock (b->sclient));
                items [2 + nb + ns].events = ZMQ_POLLIN;
                ns++;
            }
        int rc = zmq_poll (items, (int) (2 + nb + ns), ZR_PUSH_TICK_MS);
        if (rc == -1) {
            free (items);
            free (bs);
            break;              //  interrupted: context terminating
        }
        if (items [1].revents & ZMQ_POLLIN)
            while (true) {
                void *job = NULL;
                zmq_pollitem_t one = { zsock_resolve (self->done), 0,
                                       ZMQ_POLLIN, 0 };
                if (zmq_poll (&one, 1, 0) <= 0
                    || zsock_recv (self->done, "p", &job) == -1 || !job)
                    break;
                s_on_job (self, (job_t *) job);
            }
        for (i = 0; i < nb; i++)
            if (items [2 + i].revents & ZMQ_POLLIN)
                s_broker_recv (self, bs [i]);
        for (i = 0; i < ns; i++)
            if (items [2 + nb + i].revents & ZMQ_POLLIN)
                s_slave_recv (self, bs [nb + i]);
        bool pipe_ready = (items [0].revents & ZMQ_POLLIN) != 0;
        free (items);
        free (bs);
        if (pipe_ready)
            s_handle_pipe (self);
        if (self->started && !self->terminated) {
            s_tick (self);
            if (self->stopping)
                s_stop_step (self);
        }
    }

    //  Handler threads first (they use the entries' messages)
    pthread_mutex_lock (&self->pool.lock);
    self->pool.stop = true;
    pthread_cond_broadcast (&self->pool.cond);
    pthread_mutex_unlock (&self->pool.lock);
    for (int i = 0; i < self->nthreads; i++)
        pthread_join (self->threads [i], NULL);
    free (self->threads);
    while (true) {
        void *job = NULL;
        zmq_pollitem_t one = { zsock_resolve (self->done), 0, ZMQ_POLLIN, 0 };
        if (zmq_poll (&one, 1, 0) <= 0
            || zsock_recv (self->done, "p", &job) == -1)
            break;
        free (job);
    }
    job_t *job;
    while ((job = (job_t *) zlist_pop (self->pool.jobs)))
        free (job);
    zlist_destroy (&self->pool.jobs);
    pthread_mutex_destroy (&self->pool.lock);
    pthread_cond_destroy (&self->pool.cond);
    zsock_destroy (&self->done);
    broker_t *b = (broker_t *) zlistx_first (self->brokers);
    while (b) {
        s_broker_destroy (&b);
        b = (broker_t *) zlistx_next (self->brokers);
    }
    zlistx_destroy (&self->brokers);
    zhashx_destroy (&self->file_offsets);
    zstr_free (&self->file_path);
    zstr_free (&self->retry_topic);
    s_settings_free (&self->s);
    free (self);
}

//  --------------------------------------------------------------------
//  Front end

zr_push_consumer_t *
zr_push_consumer_new (const char *fabric, const char *group)
{
    //  The group's retry and dead-letter topics must be valid names too.
    if (!group || !zr_name_valid (group, strlen (group))
        || strlen (group) > ZR_NAME_MAX - 7)
        return NULL;
    zr_push_consumer_t *self =
        (zr_push_consumer_t *) zmalloc (sizeof (zr_push_consumer_t));
    assert (self);
    self->s.fabric = s_dup (fabric);
    self->s.group = strdup (group);
    self->s.strategy = strdup ("averagely");
    self->s.from = strdup ("last");
    self->s.threads = 4;
    self->s.buffer = 256;
    self->s.max_retries = 3;
    self->s.topics = zlist_new ();
    zlist_autofree (self->s.topics);
    self->s.filters = zhashx_new ();
    zhashx_set_duplicator (self->s.filters,
                           (zhashx_duplicator_fn *) strdup);
    zhashx_set_destructor (self->s.filters,
                           (zhashx_destructor_fn *) zstr_free);
    char host [64] = "host";
    gethostname (host, sizeof (host) - 1);
    host [sizeof (host) - 1] = 0;
    for (char *c = host; *c; c++)
        if (!zr_name_valid (c, 1))
            *c = '_';
    self->s.client_id = zsys_sprintf ("%.40s-%d-%04x", host, (int) getpid (),
                                      (unsigned) randof (0x10000));
    return self;
}

void
zr_push_consumer_destroy (zr_push_consumer_t **self_p)
{
    assert (self_p);
    zr_push_consumer_t *self = *self_p;
    if (!self)
        return;
    zr_push_consumer_stop (self);
    s_settings_free (&self->s);
    free (self);
    *self_p = NULL;
}

static int
s_set_str (zr_push_consumer_t *self, char **field, const char *value)
{
    if (self->actor)
        return -1;
    free (*field);
    *field = strdup (value);
    return 0;
}

int
zr_push_consumer_set_mode (zr_push_consumer_t *self, const char *mode)
{
    assert (self);
    if (self->actor || !mode)
        return -1;
    if (streq (mode, "clustering"))
        self->s.broadcast = false;
    else
    if (streq (mode, "broadcast"))
        self->s.broadcast = true;
    else
        return -1;
    return 0;
}

int
zr_push_consumer_set_strategy (zr_push_consumer_t *self, const char *strategy)
{
    assert (self);
    if (!zr_allocate_strategy_valid (strategy))
        return -1;
    return s_set_str (self, &self->s.strategy, strategy);
}

int
zr_push_consumer_set_threads (zr_push_consumer_t *self, int threads)
{
    assert (self);
    if (self->actor || threads < 1 || threads > 1024)
        return -1;
    self->s.threads = threads;
    return 0;
}

int
zr_push_consumer_set_orderly (zr_push_consumer_t *self, bool orderly)
{
    assert (self);
    if (self->actor)
        return -1;
    self->s.orderly = orderly;
    return 0;
}

int
zr_push_consumer_set_from (zr_push_consumer_t *self, const char *from)
{
    assert (self);
    if (!from)
        return -1;
    if (!streq (from, "first") && !streq (from, "last")) {
        char *end = NULL;
        errno = 0;
        long long ms = strtoll (from, &end, 10);
        if (!*from || *end || errno || ms <= 0)
            return -1;
    }
    return s_set_str (self, &self->s.from, from);
}

int
zr_push_consumer_set_buffer (zr_push_consumer_t *self, int messages)
{
    assert (self);
    if (self->actor || messages < 1 || messages > 1000000)
        return -1;
    self->s.buffer = messages;
    return 0;
}

int
zr_push_consumer_set_offset_dir (zr_push_consumer_t *self, const char *dir)
{
    assert (self);
    if (!dir || !*dir)
        return -1;
    return s_set_str (self, &self->s.offset_dir, dir);
}

int
zr_push_consumer_set_max_retries (zr_push_consumer_t *self, int n)
{
    assert (self);
    if (self->actor || n < 0 || n > 1000)
        return -1;
    self->s.max_retries = n;
    return 0;
}

int
zr_push_consumer_set_client_id (zr_push_consumer_t *self, const char *id)
{
    assert (self);
    if (!id || !zr_name_valid (id, strlen (id)))
        return -1;
    return s_set_str (self, &self->s.client_id, id);
}

int
zr_push_consumer_subscribe (zr_push_consumer_t *self, const char *topic)
{
    assert (self);
    if (self->actor || !topic || !zr_name_valid (topic, strlen (topic)))
        return -1;
    for (char *t = (char *) zlist_first (self->s.topics); t;
         t = (char *) zlist_next (self->s.topics))
        if (streq (t, topic))
            return 0;
    zlist_append (self->s.topics, (void *) topic);
    return 0;
}

int
zr_push_consumer_subscribe_filtered (zr_push_consumer_t *self,
                                     const char *topic, const char *type,
                                     const char *expr)
{
    assert (self);
    if (type && strneq (type, "tag") && strneq (type, "sql"))
        return -1;
    if (zr_push_consumer_subscribe (self, topic))
        return -1;
    if (expr) {
        char *filter = zsys_sprintf ("%s:%s", type ? type : "tag", expr);
        zhashx_update (self->s.filters, topic, filter);
        zstr_free (&filter);
    }
    else
        zhashx_delete (self->s.filters, topic);
    return 0;
}

//  Waits for the actor's reply to a command, up to timeout_ms.
static zmsg_t *
s_actor_reply (zactor_t *actor, int timeout_ms)
{
    zpoller_t *poller = zpoller_new (actor, NULL);
    zmsg_t *reply = NULL;
    if (zpoller_wait (poller, timeout_ms))
        reply = zmsg_recv (actor);
    zpoller_destroy (&poller);
    return reply;
}

int
zr_push_consumer_start (zr_push_consumer_t *self, zr_consume_fn *handler,
                        void *arg, char **err)
{
    assert (self);
    const char *why = NULL;
    if (self->actor)
        why = "already started";
    else
    if (!handler)
        why = "no handler";
    else
    if (zlist_size (self->s.topics) == 0)
        why = "no topic subscribed";
    else
    if (self->s.broadcast && !self->s.offset_dir)
        why = "broadcast mode needs an offset directory";
    else
    if (self->s.broadcast && !zsys_file_exists (self->s.offset_dir))
        why = "offset directory does not exist";
    if (why) {
        if (err)
            *err = strdup (why);
        return -1;
    }
    if (!self->s.fabric) {
        self->s.fabric = zr_discover_nameservers (NULL, 1000);
        if (!self->s.fabric) {
            if (err)
                *err = strdup ("no nameserver found");
            return -1;
        }
    }
    self->s.handler = handler;
    self->s.arg = arg;
    self->actor = zactor_new (s_push_actor, &self->s);
    assert (self->actor);
    zstr_send (self->actor, "START");
    zmsg_t *reply = s_actor_reply (self->actor, 30000);
    char *status = reply ? zmsg_popstr (reply) : NULL;
    int rc = 0;
    if (!status || !streq (status, "OK")) {
        char *reason = reply ? zmsg_popstr (reply) : NULL;
        if (err)
            *err = reason ? reason : strdup ("consumer did not start");
        else
            zstr_free (&reason);
        zactor_destroy (&self->actor);
        rc = -1;
    }
    zstr_free (&status);
    zmsg_destroy (&reply);
    return rc;
}

void
zr_push_consumer_stop (zr_push_consumer_t *self)
{
    assert (self);
    if (!self->actor)
        return;
    zstr_send (self->actor, "STOP");
    zmsg_t *reply = s_actor_reply (self->actor, ZR_PUSH_STOP_MS + 5000);
    if (!reply)
        zsys_warning ("pushconsumer: %s: stop did not finish",
                      self->s.client_id);
    zmsg_destroy (&reply);
    zactor_destroy (&self->actor);
}

char *
zr_push_consumer_owned (zr_push_consumer_t *self)
{
    assert (self);
    if (!self->actor)
        return strdup ("");
    zstr_send (self->actor, "OWNED");
    zmsg_t *reply = s_actor_reply (self->actor, 5000);
    char *status = reply ? zmsg_popstr (reply) : NULL;
    char *list = reply ? zmsg_popstr (reply) : NULL;
    zstr_free (&status);
    zmsg_destroy (&reply);
    return list ? list : strdup ("");
}
