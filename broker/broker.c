/*  broker/broker.c - the broker actor: a ROUTER that serves the commands
    of docs/protocol.md over the RocksDB store.

    Pipe commands (see include/zrocket.h):
        START       -> OK | ERROR reason
        ENDPOINTS   -> OK endpoint...
        DATA        -> OK path
        GROUP       -> OK name
        STATS       -> OK json
        $TERM       -> (exits)

    Group commit: one turn of the loop reads every request waiting on the
    ROUTER (up to batch-max sends), puts each valid SEND into the store's
    open batch with its offset reserved in memory, and commits the batch
    with one WAL write before answering the sends. Any other command first
    commits the open batch, so a client sees its own writes in order. A
    failed commit rolls the reserved offsets back and answers STORE_ERROR:
    nothing of that batch was stored.

    Long polling: a PULL at a queue's end with a wait is parked; the
    commit that stores a message in its queue answers it, or its deadline
    does.

    Record format in the store: meta length (4 bytes BE) | meta (msgpack
    map, the message map of protocol.md) | body. A PULL reply copies meta
    maps into its header as they are, and bodies into frames.
*/
#define _GNU_SOURCE             //  qsort_r
#include <zrocket.h>
#include "transport/codec.h"
#include "transport/transport.h"
#include "actors/actor.h"
#include "store/store.h"
#include "actors/settings.h"
#include "broker/nslink.h"
#include "broker/retry.h"
#include "broker/retention.h"
#include "broker/delay.h"
#include "broker/groups.h"
#include "broker/repl.h"
#include "broker/failover.h"
#include "broker/filter.h"
#include "broker/txn.h"

#define HEADER_MAX (64 * 1024)      //  a message's own meta map
//  A request's header frame: SEND_BATCH carries up to 1024 message maps.
#define FRAME_HEADER_MAX (4 * 1024 * 1024)
#define BATCH_BYTES_MAX (16 * 1024 * 1024)
#define ZR_BATCH_COUNT_MAX 1024     //  messages in one SEND_BATCH
#define PULL_COUNT_DEFAULT 32
#define PULL_COUNT_MAX 1024
#define PULL_BYTES_DEFAULT (4 * 1024 * 1024)
#define PULL_WAIT_MAX 60000
#define QUEUES_MAX 1024
#define IDENTITY_MAX 256
//  identity, delimiter, header and a SEND_BATCH's bodies
#define FRAMES_MAX (ZR_BATCH_COUNT_MAX + 4)
#define DISK_CHECK_MS 1000

typedef struct _waiter_t waiter_t;

typedef struct {
    int64_t min;            //  first stored offset
    int64_t max;            //  one past the last committed offset
    int64_t next;           //  next offset to reserve (>= max)
    size_t waiting;         //  parked pulls on this queue
    bool touched;           //  got messages in the open batch
    int64_t next_min;       //  retention: min once its batch commits
    //  Visible end (sync master: up to the replicated high-water mark;
    //  else max): consumers read below it. Commits not yet replicated
    //  are marked (seq, max): the oldest and the newest.
    int64_t vis;
    uint64_t vis_s1, vis_s2;
    int64_t vis_m1, vis_m2;
    bool vis_listed;        //  in broker's vis_dirty
} queue_t;

typedef struct {
    char *name;
    int queues;
    queue_t *queue;         //  array of queues
    uint32_t round_robin;
} topic_t;

//  A client, by routing id: counts its unanswered requests.
typedef struct {
    char key [IDENTITY_MAX * 2 + 1];
    int inflight;
} client_t;

//  Where a reply goes.
typedef struct {
    uint8_t identity [IDENTITY_MAX];
    size_t identity_size;
    bool delimiter;         //  REQ peer: reply needs an empty frame
    bool oneway;            //  oneway SEND: never answered
    uint64_t rid;
    client_t *client;       //  counted against max-inflight, or NULL
} route_t;

//  A send in the open batch, answered after the commit.
typedef struct {
    route_t route;
    bool oneway;
    char id [ZR_MSG_ID_LEN + 1];
    topic_t *topic;
    int queue;
    int64_t offset;
    size_t rec_off;         //  its record in the broker's batch buffer
    size_t rec_len;
} pending_t;

struct _waiter_t {
    route_t route;
    char *topic;
    int queue;
    int64_t offset;
    int max_count;
    size_t max_bytes;
    int64_t deadline;       //  zclock_mono ms
    int64_t asked;          //  offset the PULL asked for
    char *filter_type;      //  filter (section 14), or NULL
    char *filter;
};

//  Counters for STATS.
typedef struct {
    uint64_t requests;
    uint64_t sends_ok;
    uint64_t sends_rejected;
    uint64_t oneway_rejected;
    uint64_t bytes_in;
    uint64_t pulls;
    uint64_t msgs_out;
    uint64_t bytes_out;
    uint64_t commits;
    uint64_t commit_errors;
    uint64_t malformed;
    uint64_t busy;
    uint64_t unroutable;
    uint64_t reply_dropped;
    uint64_t long_polls;
} stats_t;

//  A TOPIC_CREATE answered once the nameservers have the new route.
typedef struct {
    route_t route;
    char topic [ZR_NAME_MAX + 1];
    int queues;
    bool created;
    uint64_t gen;           //  state generation that holds the topic
    uint64_t seq0;          //  store seq before its handler ran
} parked_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    zactor_t *nslink;       //  registration with nameservers, or NULL
    uint64_t state_gen;     //  generation of the state last handed over
    uint64_t acked_gen;     //  generation the link last reported on
    int acked_count;        //  nameservers that had it, of
    int acked_total;        //  nameservers known then
    char *ns_known;         //  nameservers the link has (comma-separated)
    int64_t beacons_heard;  //  beacon counts from the link's discovery
    int64_t beacons_bad;
    int64_t beacons_other;
    zlistx_t *parked;       //  parked_t
    zr_store_t *store;
    zr_retry_t *retry;      //  retry delays, next timer (broker/retry.c)
    zr_repl_t *repl;        //  replication (broker/repl.c), or NULL
    zlistx_t *sync_parked;  //  sync_t: SEND replies awaiting the slaves
    zlistx_t *ack_parked;   //  acked_t: other write replies awaiting them
    zlistx_t *vis_dirty;    //  vref_t: queues with unreplicated commits
    route_t *ack_route;     //  request being handled (when watching)
    uint64_t ack_seq0;      //  store seq before its handler ran
    zr_status_t reply_status;   //  of the reply in enc (s_reply_begin)
    size_t reply_tail;      //  enc bytes before its extra fields
    size_t reply_fields;    //  extra fields
    bool reply_begun;       //  enc holds a reply from s_reply_begin
    zr_failover_t *failover;    //  leases and votes (broker/failover.c)
    bool failover_on;           //  setting failover
    int64_t ha_heartbeat_ms;
    int64_t master_dead_ms;
    int64_t broker_id;          //  setting broker-id (resolved at start)
    char *repl_bind;            //  setting bind, for a new repl on promotion
    char *fo_isr;               //  last in-sync ids told to failover
    uint64_t fo_isr_ver;        //  their zr_repl_isr_version
    uint64_t fo_hwm;            //  last HWM told
    int64_t fo_since;           //  slave: when following began, mono ms
    int64_t fo_next;            //  slave: next campaign allowed, mono ms
    int64_t fo_told;            //  last STATE sent, mono ms
    bool fo_master;             //  role last told
    bool fo_acking;             //  master: may ack writes (last seen)
    int64_t fo_epoch;           //  epoch last told
    //  Graceful handover (admin promote, s_cmd_promote): pr_state 0 idle
    int pr_state;
    route_t pr_route;           //  the PROMOTE to answer
    int64_t pr_target;
    int64_t pr_epoch;           //  the epoch we resign
    uint64_t pr_seq;            //  our last seq, resigned at
    int64_t pr_paused_at;       //  writes refused since, mono ms
    int64_t pr_deadline;
    int64_t pr_timeout_ms;
    int64_t pr_next;            //  next TAKEOVER or WITHDRAW try
    uint64_t pr_infos;          //  PR_CHECK: INFO count of a fresh answer
    zlistx_t *pr_parked;        //  route_t: writes held during the pause
    bool topics_grew;           //  slave reload: a topic was added or grown
    int64_t pr_holding;         //  withdrawn: hold writes until leases
                                //  are back, or this mono ms
    char pr_error [300];        //  why the handover is being withdrawn
    //  master discovery (slave): the HA endpoint the nameservers named
    char *follow;               //  master to follow (wins over --master)
    bool follow_ns;             //  fenced: --master may be stale, ignore it
    int64_t follow_at;          //  next FIND_MASTER, mono ms
    int64_t follow_since;       //  when the current repl began following
    bool follow_none_told;      //  "no master registered" logged
    //  retention and lookup (broker/retention.c, protocol section 15)
    zr_retention_t *retention;
    int64_t default_retention_ms;
    int64_t default_retention_bytes;
    int retention_check_ms;
    int64_t retention_checked;  //  last retention turn, zclock_mono ms
    int64_t max_delay;      //  delayed messages (broker/delay.h), ms
    int64_t max_batch_bytes;    //  SEND_BATCH body bytes
    zconfig_t *cfg;         //  our copy of the settings
    bool terminated;
    bool started;

    //  settings
    char *data;
    char *group_opt;
    bool flush_sync;
    bool auto_create;
    int default_queues;
    int64_t max_msg_size;
    int max_inflight;
    int batch_max;
    int64_t min_free;
    char *nameservers;
    char *cluster;
    int heartbeat_ms;
    char *interface;
    int beacon_port;

    zlistx_t *endpoints;    //  bound endpoints (char *)
    zhashx_t *topics;       //  name -> topic_t
    zhashx_t *clients;      //  key -> client_t, while inflight > 0
    zlistx_t *waiters;      //  waiter_t, in arrival order

    pending_t *pending;     //  open batch's sends
    size_t pending_count;
    size_t pending_cap;
    uint8_t *recbuf;        //  their records, in arrival order
    size_t recbuf_size;
    size_t recbuf_cap;
    size_t *order;          //  pending indexes sorted by queue, offset
    size_t order_cap;

    zr_enc_t *enc;          //  reply encoder
    zr_enc_t *rec;          //  record encoder
    zchunk_t *scratch;      //  PULL meta maps
    zlistx_t *bodies;       //  PULL body frames

    bool disk_full;
    int64_t disk_free;
    int64_t disk_checked;
    uint64_t id_counter;
    uint8_t id_prefix [8];
    stats_t stats;

    //  consumer groups (broker/groups.h, docs/protocol.md section 11)
    zr_groups_t *groups;
    zr_filter_cache_t *filters; //  compiled PULL filters (section 14)
    int member_heartbeat_ms;
    int member_expiry_ms;
    int lease_ms;
    int64_t groups_checked;     //  last expiry pass, zclock_mono ms
    uint64_t notify_rid;        //  rid of broker-initiated requests
    struct {
        uint64_t notified;      //  MEMBERS_CHANGED sent
        uint64_t notify_dropped;
    } group_stats;
    zr_txn_t *txn;              //  transactions (broker/txn.h, section 13)
} broker_t;

//  Consumer groups: lease check for PULL and COMMIT_OFFSET.
static int s_lease_refused (broker_t *self, route_t *route,
                            const zr_obj_t *h, topic_t *topic, int queue);
//  Delayed messages: SEND's hook (protocol.md section 12).
static void s_delay_send (broker_t *self, route_t *route, const zr_obj_t *h,
                          topic_t *topic, int64_t queue, const char *id,
                          const char *tags, size_t tags_len,
                          const char *keys, size_t keys_len, int64_t born,
                          const void *body, size_t body_size, int64_t due);
//  Transactions: SEND's hook (protocol.md section 13); true when handled.
static bool s_txn_send (broker_t *self, route_t *route, const zr_obj_t *h,
                        topic_t *topic, int64_t queue, const char *id,
                        bool oneway, const void *body, size_t body_size);

//  --------------------------------------------------------------------
//  Names and ids

static bool
s_valid_name (const char *s, size_t len)
{
    if (len == 0 || len > ZR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s [i];
        if (!(isalnum ((unsigned char) c) || c == '_' || c == '-'
        ||    c == '%' || c == '|'))
            return false;
    }
    return true;
}

static bool
s_valid_id (const char *s, size_t len)
{
    if (len != ZR_MSG_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit ((unsigned char) s [i]))
            return false;
    return true;
}

static void
s_make_id (broker_t *self, char *out)
{
    uint64_t n = ++self->id_counter;
    uint64_t now = (uint64_t) zclock_time ();
    snprintf (out, ZR_MSG_ID_LEN + 1,
              "%02x%02x%02x%02x%08x%016" PRIx64,
              self->id_prefix [0], self->id_prefix [1],
              self->id_prefix [2], self->id_prefix [3],
              (uint32_t) (now / 1000), n);
}

static uint32_t
s_fnv1a (const char *s, size_t len)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t) s [i];
        h *= 16777619u;
    }
    return h;
}

//  --------------------------------------------------------------------
//  Topics in memory

static void
s_topic_destroy (topic_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->name);
        free ((*self_p)->queue);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_topic_free (void **item)
{
    s_topic_destroy ((topic_t **) item);
}

static topic_t *
s_topic_add (broker_t *self, const char *name, int queues)
{
    topic_t *topic = (topic_t *) zmalloc (sizeof (topic_t));
    topic->name = strdup (name);
    topic->queues = queues;
    topic->queue = (queue_t *) zmalloc (sizeof (queue_t) * queues);
    for (int q = 0; q < queues; q++) {
        int64_t min = 0, max = 0;
        if (self->store
        &&  zr_store_queue_bounds (self->store, name, q, &min, &max) == -1)
            zsys_warning ("broker: cannot read bounds of %s/%d", name, q);
        topic->queue [q].min = min;
        topic->queue [q].max = max;
        topic->queue [q].vis = max;
        topic->queue [q].next = max;
    }
    zhashx_update (self->topics, name, topic);
    return topic;
}

//  Grows a topic's queue array.
static void
s_topic_grow (topic_t *topic, int queues)
{
    topic->queue = (queue_t *) realloc (topic->queue,
                                        sizeof (queue_t) * queues);
    memset (topic->queue + topic->queues, 0,
            sizeof (queue_t) * (queues - topic->queues));
    topic->queues = queues;
}

static void
s_load_topic (const char *name, int queues, void *arg)
{
    broker_t *self = (broker_t *) arg;
    if (queues < 1 || queues > QUEUES_MAX) {
        zsys_warning ("broker: topic '%s' has %d queues in the store, "
                      "ignored", name, queues);
        return;
    }
    s_topic_add (self, name, queues);
}

//  --------------------------------------------------------------------
//  Clients and replies

static void
s_route_key (const route_t *route, char *key)
{
    static const char hex [] = "0123456789abcdef";
    for (size_t i = 0; i < route->identity_size; i++) {
        key [i * 2] = hex [route->identity [i] >> 4];
        key [i * 2 + 1] = hex [route->identity [i] & 15];
    }
    key [route->identity_size * 2] = 0;
}

//  Counts a request against its client; returns -1 when over the cap.
static int
s_client_take (broker_t *self, route_t *route)
{
    char key [IDENTITY_MAX * 2 + 1];
    s_route_key (route, key);
    client_t *client = (client_t *) zhashx_lookup (self->clients, key);
    if (!client) {
        client = (client_t *) zmalloc (sizeof (client_t));
        strcpy (client->key, key);
        zhashx_insert (self->clients, key, client);
    }
    if (client->inflight >= self->max_inflight)
        return -1;
    client->inflight++;
    route->client = client;
    return 0;
}

static void
s_client_release (broker_t *self, route_t *route)
{
    client_t *client = route->client;
    if (!client)
        return;
    route->client = NULL;
    if (--client->inflight <= 0)
        zhashx_delete (self->clients, client->key);
}

//  Sends the encoder's header plus body frames to route. Never blocks:
//  an unroutable peer (gone) or a full pipe is counted and logged.
static bool
    s_ack_hold (broker_t *self, route_t *route, zlistx_t *bodies);

static void
s_send_reply (broker_t *self, route_t *route, zlistx_t *bodies)
{
    if (route == self->ack_route && s_ack_hold (self, route, bodies))
        return;                 //  parked until the slaves have it
    self->reply_begun = false;
    if (route->oneway) {
        s_client_release (self, route);
        return;
    }
    void *handle = zsock_resolve (self->router);
    bool more_bodies = bodies && zlistx_size (bodies) > 0;
    int rc = zmq_send (handle, route->identity, route->identity_size,
                       ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc == -1) {
        if (zmq_errno () == EHOSTUNREACH)
            self->stats.unroutable++;
        else {
            self->stats.reply_dropped++;
            zsys_warning ("broker: reply to client dropped: %s",
                          zmq_strerror (zmq_errno ()));
        }
        s_client_release (self, route);
        return;
    }
    if (route->delimiter)
        zmq_send (handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (handle, zr_enc_data (self->enc), zr_enc_size (self->enc),
              (more_bodies ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
    if (more_bodies) {
        size_t left = zlistx_size (bodies);
        zframe_t *frame = (zframe_t *) zlistx_first (bodies);
        while (frame) {
            left--;
            zmq_send (handle, zframe_data (frame), zframe_size (frame),
                      (left ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT);
            frame = (zframe_t *) zlistx_next (bodies);
        }
    }
    s_client_release (self, route);
}

//  Starts a reply header with `fields` extra entries after v, type, rid,
//  status (and reason when given).
static void
s_reply_begin (broker_t *self, route_t *route, zr_status_t status,
               const char *reason, size_t fields)
{
    zr_enc_reset (self->enc);
    zr_enc_map (self->enc, 4 + (reason ? 1 : 0) + fields);
    zr_enc_kint (self->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kstr (self->enc, "type", "reply");
    zr_enc_kint (self->enc, "rid", (int64_t) route->rid);
    zr_enc_kstr (self->enc, "status", zr_status_str (status));
    if (reason)
        zr_enc_kstr (self->enc, "reason", reason);
    self->reply_status = status;
    self->reply_tail = zr_enc_size (self->enc);
    self->reply_fields = fields;
    self->reply_begun = true;
}

//  Error reply with a formatted reason.
static void
s_reply_error (broker_t *self, route_t *route, zr_status_t status,
               const char *format, ...)
{
    char reason [512];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    s_reply_begin (self, route, status, reason, 0);
    s_send_reply (self, route, NULL);
}

static void
s_reply_ok (broker_t *self, route_t *route)
{
    s_reply_begin (self, route, ZR_OK, NULL, 0);
    s_send_reply (self, route, NULL);
}

//  --------------------------------------------------------------------
//  Request parsing helpers: each returns 0, or replies an error and
//  returns -1.

static int
s_need_str (broker_t *self, route_t *route, const zr_obj_t *h,
            const char *key, char *buf, size_t size, bool required)
{
    int rc = zr_field_strbuf (h, key, buf, size);
    if (rc == ZR_FIELD_OK)
        return 0;
    if (rc == ZR_FIELD_MISSING && !required) {
        buf [0] = 0;
        return 0;
    }
    if (rc == ZR_FIELD_MISSING)
        s_reply_error (self, route, ZR_MALFORMED,
                       "missing field '%s'", key);
    else
        s_reply_error (self, route, ZR_MALFORMED,
                       "field '%s' must be a string of at most %zu bytes",
                       key, size - 1);
    return -1;
}

static int
s_need_int (broker_t *self, route_t *route, const zr_obj_t *h,
            const char *key, int64_t *value, bool required,
            int64_t dflt, int64_t lo, int64_t hi)
{
    int rc = zr_field_int (h, key, value);
    if (rc == ZR_FIELD_MISSING && !required) {
        *value = dflt;
        return 0;
    }
    if (rc == ZR_FIELD_MISSING) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "missing field '%s'", key);
        return -1;
    }
    if (rc != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field '%s' must be an integer", key);
        return -1;
    }
    if (*value < lo || *value > hi) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "field '%s' is %" PRId64 ", must be %" PRId64
                       "..%" PRId64, key, *value, lo, hi);
        return -1;
    }
    return 0;
}

//  Reads a topic or group name into buf (ZR_NAME_MAX + 1 bytes): a
//  missing or non-string field is MALFORMED, a string that is not a
//  valid name is BAD_ARGUMENT.
static int
s_need_name (broker_t *self, route_t *route, const zr_obj_t *h,
             const char *key, char *buf)
{
    const char *s;
    size_t len;
    int rc = zr_field_str (h, key, &s, &len);
    if (rc == ZR_FIELD_MISSING) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "missing field '%s'", key);
        return -1;
    }
    if (rc != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field '%s' must be a string", key);
        return -1;
    }
    if (!s_valid_name (s, len)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "'%.*s' is not a valid %s name (1-%d characters of "
                       "A-Z a-z 0-9 _ - %% |)", (int) (len > 64 ? 64 : len),
                       s, key, ZR_NAME_MAX);
        return -1;
    }
    memcpy (buf, s, len);
    buf [len] = 0;
    return 0;
}

//  Finds the topic and queue named in a request, or replies an error.
static topic_t *
s_need_queue (broker_t *self, route_t *route, const zr_obj_t *h,
              int64_t *queue)
{
    char name [ZR_NAME_MAX + 2];
    if (s_need_name (self, route, h, "topic", name))
        return NULL;
    if (s_need_int (self, route, h, "queue", queue, true, 0, 0, INT32_MAX))
        return NULL;
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' does not exist", name);
        return NULL;
    }
    if (*queue >= topic->queues) {
        s_reply_error (self, route, ZR_QUEUE_NOT_FOUND,
                       "topic '%s' has queues 0..%d, not %" PRId64, name,
                       topic->queues - 1, *queue);
        return NULL;
    }
    return topic;
}

//  --------------------------------------------------------------------
//  Group commit

static void s_wake_waiters (broker_t *self);

//  Orders pending sends by (topic, queue, offset).
static int
s_pending_cmp (const void *a, const void *b, void *arg)
{
    const pending_t *pending = (const pending_t *) arg;
    const pending_t *x = &pending [*(const size_t *) a];
    const pending_t *y = &pending [*(const size_t *) b];
    if (x->topic != y->topic)
        return strcmp (x->topic->name, y->topic->name);
    if (x->queue != y->queue)
        return x->queue < y->queue ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

//  Puts the pending records into the store's batch in key order: RocksDB's
//  memtable inserts ascending keys cheaply, while sends arrive spread over
//  the queues.
static void
s_batch_fill (broker_t *self)
{
    size_t n = self->pending_count;
    if (n == 0)
        return;
    if (self->order_cap < n) {
        self->order_cap = self->pending_cap;
        self->order = (size_t *) realloc (self->order,
                                          sizeof (size_t) * self->order_cap);
    }
    for (size_t i = 0; i < n; i++)
        self->order [i] = i;
    qsort_r (self->order, n, sizeof (size_t), s_pending_cmp, self->pending);
    for (size_t i = 0; i < n; i++) {
        pending_t *p = &self->pending [self->order [i]];
        zr_store_batch_append (self->store, p->topic->name, p->queue,
                               p->offset, self->recbuf + p->rec_off,
                               p->rec_len);
        if (self->retention)
            zr_retention_on_append (self->retention, p->topic->name,
                                    p->queue, p->offset,
                                    self->recbuf + p->rec_off, p->rec_len);
    }
    self->recbuf_size = 0;
}

static bool
    s_failover_may_ack (broker_t *self, zr_status_t *status,
                        const char **why, char *reason, size_t size);
static bool
    s_failover_refuse (broker_t *self, route_t *route);
static bool
    s_promote_refuse (broker_t *self, route_t *route, const char *cmd);
static bool
    s_promote_park (broker_t *self, route_t *route);
static void
    s_promote_release (broker_t *self, const char *reason);
static void
    s_cmd_promote (broker_t *self, route_t *route, const zr_obj_t *h);
static void
    s_promote_tick (broker_t *self);

//  Replication (broker/repl.c, protocol section 16): in sync mode a
//  committed send is answered once the in-sync set has its batch.
typedef struct {
    route_t route;
    char id [ZR_MSG_ID_LEN + 1];
    char store_id [ZR_STORE_ID_MAX + 1];
    char topic [ZR_NAME_MAX + 1];
    int queue;
    int64_t offset;
    uint64_t seq;
    int64_t deadline;
} sync_t;

//  --------------------------------------------------------------------
//  Sync master (protocol.md section 16): consumers read up to the
//  replicated high-water mark, and every acknowledged write waits for
//  the in-sync set. Nothing here runs when the mode is not sync (the
//  lease check of acknowledged writes runs with failover).

static void s_serve_waiters (broker_t *self, bool expire);

//  A queue with commits the in-sync set does not have yet.
typedef struct {
    topic_t *topic;
    int queue;
} vref_t;

//  A write's reply (not SEND's: sync_t) parked until the in-sync set
//  has the write: the encoded header as the handler made it.
typedef struct {
    route_t route;
    uint64_t seq;
    int64_t deadline;
    zr_status_t status;
    size_t tail;            //  header bytes before the extra fields
    size_t fields;          //  extra fields
    size_t size;
    uint8_t header [];
} acked_t;

//  True on a master in sync mode.
static bool
s_sync_master (broker_t *self)
{
    return self->repl && zr_repl_mode (self->repl) == ZR_REPL_SYNC
        && !zr_repl_is_slave (self->repl);
}

//  Sync master: the queue's commit of seq (new max) becomes visible
//  once the high-water mark reaches seq.
static void
s_vis_mark (broker_t *self, topic_t *topic, int queue, uint64_t seq)
{
    queue_t *q = &topic->queue [queue];
    if (q->vis_s1 == 0 || q->vis_s1 == seq) {
        q->vis_s1 = seq;
        q->vis_m1 = q->max;
    }
    else {
        q->vis_s2 = seq;
        q->vis_m2 = q->max;
    }
    if (!q->vis_listed) {
        vref_t *ref = (vref_t *) zmalloc (sizeof (vref_t));
        ref->topic = topic;
        ref->queue = queue;
        zlistx_add_end (self->vis_dirty, ref);
        q->vis_listed = true;
    }
}

//  Every queue visible to its max (not a sync master, or a new role).
static void
s_vis_reset (broker_t *self)
{
    topic_t *topic = (topic_t *) zhashx_first (self->topics);
    while (topic) {
        for (int q = 0; q < topic->queues; q++) {
            queue_t *qu = &topic->queue [q];
            qu->vis = qu->max;
            qu->vis_s1 = qu->vis_s2 = 0;
            qu->vis_listed = false;
        }
        topic = (topic_t *) zhashx_next (self->topics);
    }
    vref_t *ref = (vref_t *) zlistx_first (self->vis_dirty);
    while (ref) {
        free (ref);
        ref = (vref_t *) zlistx_next (self->vis_dirty);
    }
    zlistx_purge (self->vis_dirty);
}

//  A topic is going away: forget its marks.
static void
s_vis_forget (broker_t *self, topic_t *topic)
{
    vref_t *ref = (vref_t *) zlistx_first (self->vis_dirty);
    while (ref) {
        void *cursor = zlistx_cursor (self->vis_dirty);
        bool gone = ref->topic == topic;
        ref = (vref_t *) zlistx_next (self->vis_dirty);
        if (gone)
            free (zlistx_detach (self->vis_dirty, cursor));
    }
}

//  Moves visible ends up to the high-water mark and answers the parked
//  pulls that can now read. While the in-sync set is below min-insync
//  nothing becomes visible (those messages are on the master alone).
static void
s_vis_release (broker_t *self)
{
    if (!self->vis_dirty || zlistx_size (self->vis_dirty) == 0)
        return;
    if (!s_sync_master (self)) {
        s_vis_reset (self);
        if (zlistx_size (self->waiters))
            s_serve_waiters (self, false);
        return;
    }
    if (zr_repl_insync (self->repl) < zr_repl_min_insync (self->repl))
        return;
    uint64_t hwm = zr_repl_hwm (self->repl);
    bool moved = false;
    vref_t *ref = (vref_t *) zlistx_first (self->vis_dirty);
    while (ref) {
        void *cursor = zlistx_cursor (self->vis_dirty);
        queue_t *q = &ref->topic->queue [ref->queue];
        for (int i = 0; i < 2 && q->vis_s1 && q->vis_s1 <= hwm; i++) {
            if (q->vis_m1 > q->vis)
                q->vis = q->vis_m1 < q->max ? q->vis_m1 : q->max;
            q->vis_s1 = q->vis_s2;
            q->vis_m1 = q->vis_m2;
            q->vis_s2 = 0;
            moved = true;
        }
        ref = (vref_t *) zlistx_next (self->vis_dirty);
        if (q->vis_s1 == 0) {
            q->vis_listed = false;
            free (zlistx_detach (self->vis_dirty, cursor));
        }
    }
    if (moved && zlistx_size (self->waiters))
        s_serve_waiters (self, false);
}

//  Replaces the status (and reason) of the reply in the encoder, keeping
//  its other fields.
static void
s_reply_rewrite (broker_t *self, route_t *route, zr_status_t status,
                 const char *reason)
{
    size_t size = zr_enc_size (self->enc) - self->reply_tail;
    uint8_t *tail = (uint8_t *) malloc (size ? size : 1);
    memcpy (tail, zr_enc_data (self->enc) + self->reply_tail, size);
    s_reply_begin (self, route, status, reason, self->reply_fields);
    zr_enc_raw (self->enc, tail, size);
    free (tail);
}

#define S_NOT_REPLICATED "stored on the master, not replicated: the " \
                         "in-sync set is below min-insync"

//  The reply to the request being handled, in the encoder: when the
//  handler committed (an acknowledged write), applies the lease check
//  and, on a sync master, parks it until the in-sync set has the
//  commit. Returns true when parked (the caller sends nothing).
static bool
s_ack_hold (broker_t *self, route_t *route, zlistx_t *bodies)
{
    uint64_t seq = zr_store_seq (self->store);
    if (!self->reply_begun || route->oneway || seq <= self->ack_seq0
    ||  (bodies && zlistx_size (bodies))
    ||  (self->reply_status != ZR_OK && self->reply_status != ZR_SEND_OK))
        return false;
    zr_status_t status = self->reply_status;
    const char *reason = NULL;
    char why [256];
    if (!s_failover_may_ack (self, &status, &reason, why, sizeof why)) {
        s_reply_rewrite (self, route, status, reason);
        return false;
    }
    if (!s_sync_master (self))
        return false;
    if (zr_repl_insync (self->repl) < zr_repl_min_insync (self->repl)) {
        s_reply_rewrite (self, route, ZR_SLAVE_NOT_AVAILABLE,
                         S_NOT_REPLICATED);
        return false;
    }
    if (zr_repl_hwm (self->repl) >= seq)
        return false;
    size_t size = zr_enc_size (self->enc);
    acked_t *a = (acked_t *) zmalloc (sizeof (acked_t) + size);
    a->route = *route;
    a->seq = seq;
    a->deadline = zclock_mono () + zr_repl_ack_timeout (self->repl);
    a->status = self->reply_status;
    a->tail = self->reply_tail;
    a->fields = self->reply_fields;
    a->size = size;
    memcpy (a->header, zr_enc_data (self->enc), size);
    zlistx_add_end (self->ack_parked, a);
    self->reply_begun = false;
    return true;
}

//  Sends a parked write's reply with status (its own when replicated),
//  after the lease check.
static void
s_ack_send (broker_t *self, acked_t *a, zr_status_t status,
            const char *reason)
{
    char why [256];
    zr_enc_reset (self->enc);
    zr_enc_raw (self->enc, a->header, a->size);
    self->reply_tail = a->tail;
    self->reply_fields = a->fields;
    s_failover_may_ack (self, &status, &reason, why, sizeof why);
    if (status != a->status)
        s_reply_rewrite (self, &a->route, status, reason);
    s_send_reply (self, &a->route, NULL);
}

//  Answers parked write replies that the in-sync set has, or that can
//  no longer be (set below min-insync, ack timeout with expire, no
//  longer a sync master).
static void
s_ack_release (broker_t *self, bool expire)
{
    if (!self->ack_parked || zlistx_size (self->ack_parked) == 0)
        return;
    bool master = s_sync_master (self);
    uint64_t hwm = master ? zr_repl_hwm (self->repl) : 0;
    bool below = master && zr_repl_insync (self->repl)
                         < zr_repl_min_insync (self->repl);
    int64_t now = zclock_mono ();
    acked_t *a = (acked_t *) zlistx_first (self->ack_parked);
    while (a) {
        void *cursor = zlistx_cursor (self->ack_parked);
        bool done = true;
        if (master && hwm >= a->seq)
            s_ack_send (self, a, a->status, NULL);
        else
        if (!master)
            s_ack_send (self, a, ZR_FLUSH_SLAVE_TIMEOUT, "stored on the "
                        "master; its role changed before the slaves "
                        "acknowledged it");
        else
        if (below)
            s_ack_send (self, a, ZR_SLAVE_NOT_AVAILABLE, S_NOT_REPLICATED);
        else
        if (expire && now >= a->deadline)
            s_ack_send (self, a, ZR_FLUSH_SLAVE_TIMEOUT, "stored on the "
                        "master; a slave did not acknowledge it in time");
        else
            done = false;
        a = (acked_t *) zlistx_next (self->ack_parked);
        if (done)
            free (zlistx_detach (self->ack_parked, cursor));
    }
}

//  s_handle: remembers the request whose reply s_ack_hold checks (with
//  failover, or on a sync master); seq0 is the store's before it ran.
static void
s_ack_watch (broker_t *self, route_t *route)
{
    if (self->failover || s_sync_master (self)) {
        self->ack_route = route;
        self->ack_seq0 = zr_store_seq (self->store);
    }
}

static void
s_sync_reply (broker_t *self, sync_t *s, zr_status_t status,
              const char *reason)
{
    char why [256];
    //  Any stored status is an acknowledgement (protocol.md section 16):
    //  without a majority of leases the answer is NOT_MASTER.
    if (zr_status_stored (status))
        s_failover_may_ack (self, &status, &reason, why, sizeof why);
    s_reply_begin (self, &s->route, status, reason, 6);
    zr_enc_kstr (self->enc, "id", s->id);
    zr_enc_kstr (self->enc, "store_id", s->store_id);
    zr_enc_kstr (self->enc, "topic", s->topic);
    zr_enc_kint (self->enc, "queue", s->queue);
    zr_enc_kint (self->enc, "offset", s->offset);
    zr_enc_kstr (self->enc, "flush", self->flush_sync ? "sync" : "async");
    s_send_reply (self, &s->route, NULL);
    if (status == ZR_SEND_OK)
        self->stats.sends_ok++;
}

//  Answers parked sends that the in-sync set has, or that can no longer
//  be (set below min-insync, ack timeout; with expire).
static void
s_sync_release (broker_t *self, bool expire)
{
    s_vis_release (self);
    s_ack_release (self, expire);
    if (!self->sync_parked || !zlistx_size (self->sync_parked))
        return;
    int64_t now = zclock_mono ();
    uint64_t hwm = zr_repl_hwm (self->repl);
    bool below = zr_repl_insync (self->repl)
               < zr_repl_min_insync (self->repl);
    sync_t *s = (sync_t *) zlistx_first (self->sync_parked);
    while (s) {
        void *cursor = zlistx_cursor (self->sync_parked);
        bool done = true;
        if (hwm >= s->seq)
            s_sync_reply (self, s, ZR_SEND_OK, NULL);
        else
        if (below)
            s_sync_reply (self, s, ZR_SLAVE_NOT_AVAILABLE,
                          "stored on the master, not replicated: the "
                          "in-sync set is below min-insync");
        else
        if (expire && now >= s->deadline)
            s_sync_reply (self, s, ZR_FLUSH_SLAVE_TIMEOUT,
                          "stored on the master; a slave did not "
                          "acknowledge it in time");
        else
            done = false;
        s = (sync_t *) zlistx_next (self->sync_parked);
        if (done) {
            sync_t *gone = (sync_t *) zlistx_detach (self->sync_parked,
                                                     cursor);
            free (gone);
        }
    }
}

//  Sync mode: parks or refuses the reply of a committed send. Returns
//  true when it did (the caller sends nothing).
static bool
s_sync_park (broker_t *self, route_t *route, const char *id,
             const char *store_id, topic_t *topic, int queue,
             int64_t offset)
{
    if (!self->repl || zr_repl_mode (self->repl) != ZR_REPL_SYNC
    ||  zr_repl_is_slave (self->repl))
        return false;
    uint64_t seq = zr_store_seq (self->store);
    bool below = zr_repl_insync (self->repl)
               < zr_repl_min_insync (self->repl);
    if (!below && zr_repl_hwm (self->repl) >= seq)
        return false;
    sync_t *s = (sync_t *) zmalloc (sizeof (sync_t));
    s->route = *route;
    snprintf (s->id, sizeof s->id, "%s", id);
    snprintf (s->store_id, sizeof s->store_id, "%s", store_id);
    snprintf (s->topic, sizeof s->topic, "%s", topic->name);
    s->queue = queue;
    s->offset = offset;
    s->seq = seq;
    s->deadline = zclock_mono () + zr_repl_ack_timeout (self->repl);
    zlistx_add_end (self->sync_parked, s);
    if (below)
        s_sync_release (self, false);
    return true;
}

//  Time to the first parked send's ack deadline, ms (-1: none).
static int64_t
s_sync_timeout (broker_t *self)
{
    sync_t *s = self->sync_parked
              ? (sync_t *) zlistx_first (self->sync_parked) : NULL;
    acked_t *a = self->ack_parked
               ? (acked_t *) zlistx_first (self->ack_parked) : NULL;
    if (!s && !a)
        return -1;
    int64_t deadline = s ? s->deadline : a->deadline;
    if (a && a->deadline < deadline)
        deadline = a->deadline;
    int64_t left = deadline - zclock_mono ();
    return left < 0 ? 0 : left;
}

static void
s_batch_commit (broker_t *self)
{
    if (zr_store_batch_ops (self->store) == 0 && self->pending_count == 0)
        return;
    s_batch_fill (self);
    char *err = NULL;
    int rc = zr_store_commit (self->store, self->flush_sync, &err);
    if (rc == 0)
        self->stats.commits++;
    else {
        self->stats.commit_errors++;
        zsys_error ("broker: commit failed: %s", err ? err : "?");
    }
    //  Settle reserved offsets.
    bool held = rc == 0 && s_sync_master (self);
    uint64_t seq = held ? zr_store_seq (self->store) : 0;
    for (size_t i = 0; i < self->pending_count; i++) {
        pending_t *p = &self->pending [i];
        queue_t *q = &p->topic->queue [p->queue];
        if (rc == 0) {
            q->max = q->next;
            if (held)
                s_vis_mark (self, p->topic, p->queue, seq);
            else
                q->vis = q->max;
        }
        else
            q->next = q->max;
    }
    for (size_t i = 0; i < self->pending_count; i++) {
        pending_t *p = &self->pending [i];
        if (p->oneway) {
            if (rc != 0)
                self->stats.oneway_rejected++;
            continue;
        }
        if (rc == 0) {
            char store_id [ZR_STORE_ID_MAX + 1];
            snprintf (store_id, sizeof store_id, "%s:%s:%d:%" PRId64,
                      zr_store_group (self->store), p->topic->name,
                      p->queue, p->offset);
            if (s_sync_park (self, &p->route, p->id, store_id, p->topic,
                             p->queue, p->offset))
                continue;
            zr_status_t st = ZR_SEND_OK;
            const char *why = NULL;
            char reason [256];
            s_failover_may_ack (self, &st, &why, reason, sizeof reason);
            s_reply_begin (self, &p->route, st, why, 6);
            zr_enc_kstr (self->enc, "id", p->id);
            zr_enc_kstr (self->enc, "store_id", store_id);
            zr_enc_kstr (self->enc, "topic", p->topic->name);
            zr_enc_kint (self->enc, "queue", p->queue);
            zr_enc_kint (self->enc, "offset", p->offset);
            zr_enc_kstr (self->enc, "flush",
                         self->flush_sync ? "sync" : "async");
            s_send_reply (self, &p->route, NULL);
            if (st == ZR_SEND_OK)
                self->stats.sends_ok++;
        }
        else {
            s_reply_error (self, &p->route, ZR_STORE_ERROR,
                           "store write failed, message not stored: %s",
                           err ? err : "?");
            self->stats.sends_rejected++;
        }
    }
    zstr_free (&err);
    self->pending_count = 0;
    if (rc == 0)
        s_wake_waiters (self);
    //  Clear touched marks
    topic_t *topic = (topic_t *) zhashx_first (self->topics);
    while (topic) {
        for (int q = 0; q < topic->queues; q++)
            topic->queue [q].touched = false;
        topic = (topic_t *) zhashx_next (self->topics);
    }
}

//  Hands the nameserver link the broker's state (topics, endpoints) as
//  a new generation; the link registers it at once.
static void
s_state_changed (broker_t *self)
{
    if (!self->nslink)
        return;
    zr_enc_t *e = zr_enc_new ();
    zr_enc_map (e, 7);
    zr_enc_kstr (e, "ha", zr_repl_endpoint (self->repl));   //  "" on a slave
    zr_enc_kstr (e, "group", zr_store_group (self->store));
    zr_enc_kint (e, "broker_id", self->broker_id);
    zr_enc_kstr (e, "role", zr_repl_is_slave (self->repl) ? "slave"
                                                         : "master");
    zr_enc_kint (e, "epoch", (int64_t) zr_store_epoch (self->store));
    zr_enc_str (e, "endpoints");
    zr_enc_array (e, zlistx_size (self->endpoints));
    const char *ep = (const char *) zlistx_first (self->endpoints);
    while (ep) {
        zr_enc_str (e, ep);
        ep = (const char *) zlistx_next (self->endpoints);
    }
    zr_enc_str (e, "topics");
    zr_enc_array (e, zhashx_size (self->topics));
    topic_t *topic = (topic_t *) zhashx_first (self->topics);
    while (topic) {
        zr_enc_map (e, 2);
        zr_enc_kstr (e, "topic", topic->name);
        zr_enc_kint (e, "queues", topic->queues);
        topic = (topic_t *) zhashx_next (self->topics);
    }
    char gen [24];
    snprintf (gen, sizeof gen, "%" PRIu64, ++self->state_gen);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "STATE");
    zmsg_addstr (msg, gen);
    zmsg_addmem (msg, zr_enc_data (e), zr_enc_size (e));
    zmsg_send (&msg, self->nslink);
    zr_enc_destroy (&e);
}

//  Creates a topic and commits it at once. Returns the topic or NULL
//  with *reason set.
static topic_t *
s_topic_create (broker_t *self, const char *name, int queues,
                const char **reason)
{
    s_batch_commit (self);
    zr_store_batch_topic_put (self->store, name, queues);
    char *err = NULL;
    if (zr_store_commit (self->store, self->flush_sync, &err)) {
        zsys_error ("broker: cannot create topic %s: %s", name, err);
        zstr_free (&err);
        *reason = "store write failed";
        return NULL;
    }
    self->stats.commits++;
    topic_t *topic = s_topic_add (self, name, queues);
    s_state_changed (self);
    return topic;
}

//  --------------------------------------------------------------------
//  Commands

static void
s_cmd_ping (broker_t *self, route_t *route, const zr_obj_t *h)
{
    s_reply_begin (self, route, ZR_OK, NULL, 3);
    zr_enc_kstr (self->enc, "broker", zr_store_group (self->store));
    zr_enc_kstr (self->enc, "version", "0.1.0");
    zr_enc_kint (self->enc, "time", zclock_time ());
    s_send_reply (self, route, NULL);
}

//  Appends a message to the open batch: builds its record (meta map +
//  body), reserves its offset in topic/queue and adds it to the pending
//  sends, answered after the commit (never when route is NULL: the
//  broker's own appends, for retries and dead letters). props is a map
//  of strings (or NULL/nil); extra is a NULL-ended key, value list that
//  overrides or adds props. Returns ZR_OK, or ZR_MALFORMED (bad props)
//  or ZR_MSG_TOO_LARGE with reason filled: nothing was added then.
static zr_status_t
s_msg_append (broker_t *self, route_t *route, bool oneway, topic_t *topic,
              int queue, const char *id, const char *tags, size_t tags_len,
              const char *keys, size_t keys_len, const zr_obj_t *props,
              const char *const *extra, int64_t born, const void *body,
              size_t body_size, char *reason, size_t reason_size)
{
    queue_t *q = &topic->queue [queue];
    int64_t offset = q->next;
    char store_id [ZR_STORE_ID_MAX + 1];
    snprintf (store_id, sizeof store_id, "%s:%s:%d:%" PRId64,
              zr_store_group (self->store), topic->name, queue, offset);
    zr_enc_reset (self->rec);
    zr_enc_raw (self->rec, "\0\0\0\0", 4);
    zr_enc_map (self->rec, 10);
    zr_enc_kstr (self->rec, "id", id);
    zr_enc_kstr (self->rec, "store_id", store_id);
    zr_enc_kstr (self->rec, "topic", topic->name);
    zr_enc_kint (self->rec, "queue", queue);
    zr_enc_kint (self->rec, "offset", offset);
    zr_enc_str (self->rec, "tags");
    zr_enc_strn (self->rec, tags, tags_len);
    zr_enc_str (self->rec, "keys");
    zr_enc_strn (self->rec, keys, keys_len);
    zr_enc_str (self->rec, "props");
    if (zr_retry_encode_props (self->rec, props, extra)) {
        snprintf (reason, reason_size,
                  "field 'props' must be a map of strings");
        return ZR_MALFORMED;
    }
    zr_enc_kint (self->rec, "born", born);
    zr_enc_kint (self->rec, "stored", zclock_time ());
    size_t meta_size = zr_enc_size (self->rec) - 4;
    if (meta_size > HEADER_MAX) {
        snprintf (reason, reason_size,
                  "message properties are %zu bytes, the limit is %d",
                  meta_size, HEADER_MAX);
        return ZR_MSG_TOO_LARGE;
    }
    zr_enc_raw (self->rec, body, body_size);
    uint8_t *record = (uint8_t *) zr_enc_data (self->rec);
    record [0] = (uint8_t) (meta_size >> 24);
    record [1] = (uint8_t) (meta_size >> 16);
    record [2] = (uint8_t) (meta_size >> 8);
    record [3] = (uint8_t) meta_size;
    size_t rec_len = zr_enc_size (self->rec);
    if (self->recbuf_size + rec_len > self->recbuf_cap) {
        size_t cap = self->recbuf_cap ? self->recbuf_cap : 1 << 20;
        while (cap < self->recbuf_size + rec_len)
            cap *= 2;
        self->recbuf = (uint8_t *) realloc (self->recbuf, cap);
        self->recbuf_cap = cap;
    }
    size_t rec_off = self->recbuf_size;
    memcpy (self->recbuf + rec_off, record, rec_len);
    self->recbuf_size += rec_len;
    q->next++;
    q->touched = true;

    if (self->pending_count == self->pending_cap) {
        self->pending_cap = self->pending_cap ? self->pending_cap * 2 : 256;
        self->pending = (pending_t *) realloc (
            self->pending, sizeof (pending_t) * self->pending_cap);
    }
    pending_t *p = &self->pending [self->pending_count++];
    if (route)
        p->route = *route;
    else
        memset (&p->route, 0, sizeof p->route);
    p->oneway = route ? oneway : true;
    p->route.oneway = p->oneway;
    snprintf (p->id, sizeof p->id, "%s", id);
    p->topic = topic;
    p->queue = queue;
    p->offset = offset;
    p->rec_off = rec_off;
    p->rec_len = rec_len;
    return ZR_OK;
}

//  The topic a SEND or SEND_BATCH writes to (created when auto-create is
//  on), with queue checked against it; or NULL after an error reply.
static topic_t *
s_send_topic (broker_t *self, route_t *route, const char *name,
              int64_t queue)
{
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic && self->auto_create) {
        const char *reason = NULL;
        topic = s_topic_create (self, name, self->default_queues, &reason);
        if (!topic) {
            s_reply_error (self, route, ZR_STORE_ERROR,
                           "cannot create topic '%s': %s", name, reason);
            return NULL;
        }
    }
    if (!topic) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' does not exist (create it, or run the "
                       "broker with auto-create)", name);
        return NULL;
    }
    if (queue >= topic->queues) {
        s_reply_error (self, route, ZR_QUEUE_NOT_FOUND,
                       "topic '%s' has queues 0..%d, not %" PRId64, name,
                       topic->queues - 1, queue);
        return NULL;
    }
    return topic;
}

static void
s_cmd_send (broker_t *self, route_t *route, const zr_obj_t *h,
            zmq_msg_t *bodies, size_t body_count)
{
    bool oneway = false;
    if (zr_field_bool (h, "oneway", &oneway) == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'oneway' must be a boolean");
        return;
    }
    route->oneway = oneway;
    char name [ZR_NAME_MAX + 2];
    int64_t queue, born;
    char id [ZR_MSG_ID_LEN + 1] = "";
    const char *tags = "", *keys = "", *idstr = NULL;
    size_t idlen = 0;
    size_t tags_len = 0, keys_len = 0;

    if (s_need_name (self, route, h, "topic", name)
    ||  s_need_int (self, route, h, "queue", &queue, false, -1, -1,
                    INT32_MAX)
    ||  s_need_int (self, route, h, "born", &born, false, 0, 0, INT64_MAX))
        goto rejected;
    int id_rc = zr_field_str (h, "id", &idstr, &idlen);
    if (id_rc == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'id' must be a string");
        goto rejected;
    }
    if (id_rc == ZR_FIELD_OK) {
        if (!s_valid_id (idstr, idlen)) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT,
                           "message id must be %d hex digits",
                           ZR_MSG_ID_LEN);
            goto rejected;
        }
        memcpy (id, idstr, idlen);
        id [idlen] = 0;
    }
    if (zr_field_str (h, "tags", &tags, &tags_len) == ZR_FIELD_TYPE
    ||  zr_field_str (h, "keys", &keys, &keys_len) == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "fields 'tags' and 'keys' must be strings");
        goto rejected;
    }
    if (body_count != 1) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "SEND takes exactly one body frame, got %zu "
                       "frames", body_count);
        goto rejected;
    }
    size_t body_size = zmq_msg_size (&bodies [0]);
    if ((int64_t) body_size > self->max_msg_size) {
        s_reply_error (self, route, ZR_MSG_TOO_LARGE,
                       "body is %zu bytes, the limit is %" PRId64,
                       body_size, self->max_msg_size);
        goto rejected;
    }
    if (self->disk_full) {
        s_reply_error (self, route, ZR_DISK_FULL,
                       "only %" PRId64 " MiB free on the data disk, below "
                       "the %" PRId64 " MiB threshold; not stored",
                       self->disk_free / (1024 * 1024),
                       self->min_free / (1024 * 1024));
        goto rejected;
    }
    topic_t *topic = s_send_topic (self, route, name, queue);
    if (!topic)
        goto rejected;
    if (s_txn_send (self, route, h, topic, queue, id, oneway,
                    zmq_msg_data (&bodies [0]), body_size))
        return;     //  a transactional half message (section 13)
    if (zr_delay_requested (h)) {
        char why [256];
        int64_t due;
        zr_status_t st = zr_delay_due (h, zclock_time (), self->max_delay,
                                       &due, why, sizeof why);
        if (st != ZR_OK) {
            s_reply_error (self, route, st, "%s", why);
            goto rejected;
        }
        if (!*id)
            s_make_id (self, id);
        s_delay_send (self, route, h, topic, queue, id, tags, tags_len,
                      keys, keys_len, born, zmq_msg_data (&bodies [0]),
                      body_size, due);
        return;
    }
    if (queue < 0) {
        const char *shard;
        size_t shard_len;
        int rc = zr_field_str (h, "shard", &shard, &shard_len);
        if (rc == ZR_FIELD_TYPE) {
            s_reply_error (self, route, ZR_MALFORMED,
                           "field 'shard' must be a string");
            goto rejected;
        }
        if (rc == ZR_FIELD_OK)
            queue = s_fnv1a (shard, shard_len) % (uint32_t) topic->queues;
        else
            queue = topic->round_robin++ % (uint32_t) topic->queues;
    }
    if (!oneway && s_client_take (self, route)) {
        self->stats.busy++;
        s_reply_error (self, route, ZR_BUSY,
                       "client has %d requests in flight; not stored, "
                       "retry later", self->max_inflight);
        goto rejected;
    }
    if (!*id)
        s_make_id (self, id);

    char reason [256];
    zr_status_t status = s_msg_append (
        self, route, oneway, topic, (int) queue, id, tags, tags_len, keys,
        keys_len, zr_obj_get (h, "props"), NULL, born,
        zmq_msg_data (&bodies [0]), body_size, reason, sizeof reason);
    if (status != ZR_OK) {
        s_client_release (self, route);
        s_reply_error (self, route, status, "%s", reason);
        goto rejected;
    }
    self->stats.bytes_in += body_size;
    if (self->recbuf_size >= BATCH_BYTES_MAX)
        s_batch_commit (self);
    return;

rejected:
    if (oneway)
        self->stats.oneway_rejected++;
    else
        self->stats.sends_rejected++;
}

//  Collects records for a PULL reply.
typedef struct {
    broker_t *self;
    size_t count;
    size_t bytes;           //  body bytes collected
    size_t max_bytes;       //  body byte budget (the first always fits)
    int64_t last;
    bool damaged;
    bool full;
} collect_t;

static void
s_collect (int64_t offset, const void *record, size_t size, void *arg)
{
    collect_t *c = (collect_t *) arg;
    const uint8_t *r = (const uint8_t *) record;
    if (c->damaged || c->full)
        return;
    if (size < 4) {
        c->damaged = true;
        return;
    }
    size_t meta = ((size_t) r [0] << 24) | ((size_t) r [1] << 16)
                | ((size_t) r [2] << 8) | r [3];
    if (meta > size - 4) {
        c->damaged = true;
        return;
    }
    size_t body_size = size - 4 - meta;
    if (c->count > 0 && c->bytes + body_size > c->max_bytes) {
        c->full = true;
        return;
    }
    zchunk_extend (c->self->scratch, r + 4, meta);
    zlistx_add_end (c->self->bodies, zframe_new (r + 4 + meta, body_size));
    c->count++;
    c->bytes += body_size;
    c->last = offset;
}

//  Reads from a queue and replies OK with messages, or NO_NEW_MSG when
//  there are none. With a filter (section 14) it scans up to
//  FILTER_SCAN_MAX records past offset for max_count matches; a reply
//  without matches that moved past filtered-out records is OK with no
//  msgs and `next` after them (NO_NEW_MSG only when next == asked).
//  With hold, nothing matched and the scan reached the queue's end, it
//  sends nothing: returns 1 with *next_out set (the caller parks the
//  pull there). Otherwise returns 0 (replied).
#define FILTER_SCAN_MAX 10000

//  Filtered collection: records that do not match are skipped.
typedef struct {
    collect_t c;
    const zr_filter_t *filter;
    size_t max_count;           //  matches wanted
    int64_t scanned_next;       //  offset after the last record used
} fcollect_t;

static void
s_collect_filtered (int64_t offset, const void *record, size_t size,
                    void *arg)
{
    fcollect_t *f = (fcollect_t *) arg;
    const uint8_t *r = (const uint8_t *) record;
    if (f->c.damaged || f->c.full)
        return;
    if (f->c.count >= f->max_count) {
        f->c.full = true;
        return;
    }
    if (size >= 4) {
        size_t meta = ((size_t) r [0] << 24) | ((size_t) r [1] << 16)
                    | ((size_t) r [2] << 8) | r [3];
        if (meta <= size - 4
        &&  !zr_filter_match_meta (f->filter, r + 4, meta)) {
            f->scanned_next = offset + 1;
            return;
        }
    }
    s_collect (offset, record, size, &f->c);
    if (f->c.count > 0 && f->c.last == offset)
        f->scanned_next = offset + 1;
}

static int
s_pull_filtered (broker_t *self, route_t *route, topic_t *topic, int queue,
                 int64_t offset, int max_count, size_t max_bytes,
                 const zr_filter_t *filter, int64_t asked, bool hold,
                 int64_t *next_out)
{
    queue_t *q = &topic->queue [queue];
    zchunk_set (self->scratch, "", 0);
    zlistx_purge (self->bodies);
    fcollect_t f = { { self, 0, 0, max_bytes, -1, false, false },
                     filter, (size_t) max_count, offset };
    collect_t *cp = &f.c;
    int rc = 0;
    if (offset < q->vis && filter) {
        //  In chunks, so a pull whose first records match reads little.
        int64_t end = q->vis - offset > FILTER_SCAN_MAX
                    ? offset + FILTER_SCAN_MAX : q->vis;
        while (f.scanned_next < end && !cp->full && !cp->damaged) {
            int64_t at = f.scanned_next;
            int chunk = max_count * 2 < 64 ? 64 : max_count * 2;
            if (at + chunk > end)
                chunk = (int) (end - at);
            rc = zr_store_read (self->store, topic->name, queue, at, chunk,
                                SIZE_MAX, s_collect_filtered, &f);
            if (rc <= 0 || f.scanned_next == at)
                break;
        }
    }
    else
    if (offset < q->vis) {
        int count = max_count;
        if (offset + count > q->vis)
            count = (int) (q->vis - offset);
        //  max_bytes counts bodies; s_collect stops at it, so the store
        //  reads at most count records.
        rc = zr_store_read (self->store, topic->name, queue, offset, count,
                            SIZE_MAX, s_collect, cp);
    }
    if (rc < 0 || cp->damaged) {
        zlistx_purge (self->bodies);
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot read %s/%d at %" PRId64 "%s", topic->name,
                       queue, offset, cp->damaged ? ": damaged record" : "");
        return 0;
    }
    int64_t next = filter ? f.scanned_next
                 : cp->count ? cp->last + 1 : offset;
    if (cp->count == 0 && hold && next >= q->vis) {
        *next_out = next;
        return 1;
    }
    if (cp->count == 0 && next == asked) {
        s_reply_begin (self, route, ZR_NO_NEW_MSG, NULL, 3);
        zr_enc_kint (self->enc, "next", offset);
        zr_enc_kint (self->enc, "min", q->min);
        zr_enc_kint (self->enc, "max", q->vis);
        s_send_reply (self, route, NULL);
        return 0;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 4);
    zr_enc_kint (self->enc, "next", next);
    zr_enc_kint (self->enc, "min", q->min);
    zr_enc_kint (self->enc, "max", q->vis);
    zr_enc_str (self->enc, "msgs");
    zr_enc_array (self->enc, cp->count);
    zr_enc_raw (self->enc, zchunk_data (self->scratch),
                zchunk_size (self->scratch));
    self->stats.msgs_out += cp->count;
    self->stats.bytes_out += cp->bytes;
    s_send_reply (self, route, self->bodies);
    zlistx_purge (self->bodies);
    return 0;
}

static void
s_waiter_destroy (waiter_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->topic);
        free ((*self_p)->filter_type);
        free ((*self_p)->filter);
        free (*self_p);
        *self_p = NULL;
    }
}

//  A PULL's optional filter_type and filter (section 14): 0 with
//  *filter set (NULL: none, or tag `*`), or replies BAD_ARGUMENT /
//  MALFORMED and returns -1.
static int
s_need_filter (broker_t *self, route_t *route, const zr_obj_t *h,
               const zr_filter_t **filter, char *type, size_t type_size)
{
    *filter = NULL;
    const char *expr = NULL;
    size_t len = 0;
    if (s_need_str (self, route, h, "filter_type", type, type_size, false))
        return -1;
    int rc = zr_field_str (h, "filter", &expr, &len);
    if (rc == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'filter' must be a string");
        return -1;
    }
    if (rc == ZR_FIELD_MISSING) {
        if (*type) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT,
                           "filter_type without filter");
            return -1;
        }
        return 0;
    }
    char err [256];
    *filter = zr_filter_cache_get (self->filters, type, expr, len, err,
                                   sizeof err);
    if (!*filter) {
        int position = 0;
        sscanf (err, "position %d:", &position);
        s_reply_begin (self, route, ZR_BAD_ARGUMENT, err, 1);
        zr_enc_kint (self->enc, "position", position);
        s_send_reply (self, route, NULL);
        return -1;
    }
    if (zr_filter_all (*filter))
        *filter = NULL;
    return 0;
}

static void
s_cmd_pull (broker_t *self, route_t *route, const zr_obj_t *h)
{
    int64_t queue, offset, max_count, max_bytes, wait;
    const zr_filter_t *filter;
    char filter_type [8];
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic
    ||  s_need_int (self, route, h, "offset", &offset, true, 0, 0,
                    INT64_MAX)
    ||  s_need_int (self, route, h, "max_count", &max_count, false,
                    PULL_COUNT_DEFAULT, 1, PULL_COUNT_MAX)
    ||  s_need_int (self, route, h, "max_bytes", &max_bytes, false,
                    PULL_BYTES_DEFAULT, 1, INT32_MAX)
    ||  s_need_int (self, route, h, "wait", &wait, false, 0, 0,
                    PULL_WAIT_MAX)
    ||  s_need_filter (self, route, h, &filter, filter_type,
                       sizeof filter_type))
        return;
    if (s_lease_refused (self, route, h, topic, (int) queue))
        return;
    self->stats.pulls++;
    queue_t *q = &topic->queue [queue];
    //  Bounds use max (a stored offset is valid); reads stop at vis.
    if (offset < q->min || offset > q->max) {
        s_reply_begin (self, route, ZR_OFFSET_OUT_OF_RANGE,
                       "offset is outside the queue's min..max", 2);
        zr_enc_kint (self->enc, "min", q->min);
        zr_enc_kint (self->enc, "max", q->vis);
        s_send_reply (self, route, NULL);
        return;
    }
    int64_t asked = offset;
    if (filter && offset < q->vis && wait > 0
    &&  s_pull_filtered (self, route, topic, (int) queue, offset,
                         (int) max_count, (size_t) max_bytes, filter, asked,
                         true, &offset) == 0)
        return;                 //  replied; else nothing matched: park
    if (offset >= q->vis && wait > 0) {
        if (s_client_take (self, route)) {
            self->stats.busy++;
            s_reply_error (self, route, ZR_BUSY,
                           "client has %d requests in flight; retry later",
                           self->max_inflight);
            return;
        }
        waiter_t *w = (waiter_t *) zmalloc (sizeof (waiter_t));
        w->route = *route;
        w->topic = strdup (topic->name);
        w->queue = (int) queue;
        w->offset = offset;
        w->max_count = (int) max_count;
        w->max_bytes = (size_t) max_bytes;
        w->deadline = zclock_mono () + wait;
        w->asked = asked;
        if (filter) {
            const char *expr;
            size_t len;
            zr_field_str (h, "filter", &expr, &len);
            w->filter_type = strdup (*filter_type ? filter_type : "tag");
            w->filter = strndup (expr, len);
        }
        zlistx_add_end (self->waiters, w);
        q->waiting++;
        self->stats.long_polls++;
        return;
    }
    s_pull_filtered (self, route, topic, (int) queue, offset,
                     (int) max_count, (size_t) max_bytes, filter, asked,
                     false, NULL);
}

//  A parked pull's filter (NULL: none), compiled again if the cache let
//  it go (it compiled when the pull came).
static const zr_filter_t *
s_waiter_filter (broker_t *self, waiter_t *w)
{
    char err [256];
    const zr_filter_t *filter = w->filter
        ? zr_filter_cache_get (self->filters, w->filter_type, w->filter,
                               strlen (w->filter), err, sizeof err)
        : NULL;
    return filter && !zr_filter_all (filter) ? filter : NULL;
}

//  Answers parked pulls whose queue got messages, or whose time is up
//  (when expire is true).
static void
s_serve_waiters (broker_t *self, bool expire)
{
    int64_t now = zclock_mono ();
    waiter_t *w = (waiter_t *) zlistx_first (self->waiters);
    while (w) {
        void *cursor = zlistx_cursor (self->waiters);
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, w->topic);
        bool done = false;
        if (!topic || w->queue >= topic->queues) {
            s_reply_error (self, &w->route, ZR_TOPIC_NOT_FOUND,
                           "topic '%s' was deleted", w->topic);
            done = true;
        }
        else {
            queue_t *q = &topic->queue [w->queue];
            if (q->vis > w->offset || (expire && now >= w->deadline)) {
                //  A filtered pull woken by messages that do not match
                //  waits on past them (section 14).
                const zr_filter_t *filter = s_waiter_filter (self, w);
                if (s_pull_filtered (self, &w->route, topic, w->queue,
                                     w->offset, w->max_count, w->max_bytes,
                                     filter, w->asked,
                                     filter && now < w->deadline,
                                     &w->offset) == 0) {
                    q->waiting--;
                    done = true;
                }
            }
        }
        w = (waiter_t *) zlistx_next (self->waiters);
        if (done) {
            waiter_t *gone = (waiter_t *) zlistx_detach (self->waiters,
                                                         cursor);
            s_waiter_destroy (&gone);
        }
    }
}

static void
s_wake_waiters (broker_t *self)
{
    if (zlistx_size (self->waiters) == 0)
        return;
    bool any = false;
    waiter_t *w = (waiter_t *) zlistx_first (self->waiters);
    while (w && !any) {
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, w->topic);
        any = !topic || (w->queue < topic->queues
                         && topic->queue [w->queue].touched);
        w = (waiter_t *) zlistx_next (self->waiters);
    }
    if (any)
        s_serve_waiters (self, false);
}

//  Time to the next parked pull's deadline, ms (-1: none).
static int64_t
s_next_deadline (broker_t *self)
{
    int64_t next = -1;
    waiter_t *w = (waiter_t *) zlistx_first (self->waiters);
    while (w) {
        if (next == -1 || w->deadline < next)
            next = w->deadline;
        w = (waiter_t *) zlistx_next (self->waiters);
    }
    return next;
}

static void
s_cmd_get_offsets (broker_t *self, route_t *route, const zr_obj_t *h)
{
    int64_t queue;
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic)
        return;
    s_reply_begin (self, route, ZR_OK, NULL, 2);
    zr_enc_kint (self->enc, "min", topic->queue [queue].min);
    zr_enc_kint (self->enc, "max", topic->queue [queue].vis);
    s_send_reply (self, route, NULL);
}

static void
s_cmd_commit_offset (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2];
    int64_t queue, offset;
    if (s_need_name (self, route, h, "group", group))
        return;
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic
    ||  s_need_int (self, route, h, "offset", &offset, true, 0, 0,
                    INT64_MAX)
    ||  s_lease_refused (self, route, h, topic, (int) queue))
        return;
    queue_t *q = &topic->queue [queue];
    if (offset > q->max) {
        s_reply_begin (self, route, ZR_OFFSET_OUT_OF_RANGE,
                       "offset is beyond the queue's max", 2);
        zr_enc_kint (self->enc, "min", q->min);
        zr_enc_kint (self->enc, "max", q->max);
        s_send_reply (self, route, NULL);
        return;
    }
    zr_store_batch_offset (self->store, group, topic->name, (int) queue,
                           offset);
    char *err = NULL;
    if (zr_store_commit (self->store, self->flush_sync, &err)) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot store offset: %s", err ? err : "?");
        zstr_free (&err);
        return;
    }
    self->stats.commits++;
    s_reply_ok (self, route);
}

static void
s_cmd_query_offset (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2];
    int64_t queue, offset = -1;
    if (s_need_name (self, route, h, "group", group))
        return;
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic)
        return;
    int rc = zr_store_offset_get (self->store, group, topic->name,
                                  (int) queue, &offset);
    if (rc == -1) {
        s_reply_error (self, route, ZR_STORE_ERROR, "cannot read offset");
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_kint (self->enc, "offset", rc == 0 ? offset : -1);
    s_send_reply (self, route, NULL);
}

static void
s_cmd_topic_create (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char name [ZR_NAME_MAX + 2];
    int64_t queues, retention_ms, retention_bytes;
    if (s_need_name (self, route, h, "topic", name)
    ||  s_need_int (self, route, h, "queues", &queues, false,
                    self->default_queues, 1, QUEUES_MAX)
    ||  s_need_int (self, route, h, "retention_ms", &retention_ms, false,
                    -1, 0, INT64_MAX / 2)
    ||  s_need_int (self, route, h, "retention_bytes", &retention_bytes,
                    false, -1, 0, INT64_MAX / 2))
        return;
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    bool created = false;
    if (topic && queues < topic->queues) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "topic '%s' has %d queues; queues cannot be removed",
                       name, topic->queues);
        return;
    }
    if (topic && queues > topic->queues) {
        zr_store_batch_topic_put (self->store, name, (int) queues);
        char *err = NULL;
        if (zr_store_commit (self->store, self->flush_sync, &err)) {
            s_reply_error (self, route, ZR_STORE_ERROR, "%s", err);
            zstr_free (&err);
            return;
        }
        s_topic_grow (topic, (int) queues);
        s_state_changed (self);
    }
    if (!topic) {
        const char *reason = NULL;
        topic = s_topic_create (self, name, (int) queues, &reason);
        if (!topic) {
            s_reply_error (self, route, ZR_STORE_ERROR, "%s", reason);
            return;
        }
        created = true;
    }
    if (zr_retention_set (self->retention, name, retention_ms,
                          retention_bytes)) {
        char *err = NULL;
        if (zr_store_commit (self->store, self->flush_sync, &err)) {
            zr_retention_forget (self->retention, name);    //  re-read
            s_reply_error (self, route, ZR_STORE_ERROR, "%s", err);
            zstr_free (&err);
            return;
        }
        self->stats.commits++;
    }
    if (self->nslink && self->state_gen > self->acked_gen
    &&  s_client_take (self, route) == 0) {
        //  Answered when the nameservers have the route (or in 3 s).
        parked_t *p = (parked_t *) zmalloc (sizeof (parked_t));
        p->route = *route;
        strcpy (p->topic, name);
        p->queues = topic->queues;
        p->created = created;
        p->gen = self->state_gen;
        p->seq0 = self->ack_route ? self->ack_seq0 : UINT64_MAX;
        zlistx_add_end (self->parked, p);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 7);
    zr_enc_kstr (self->enc, "topic", name);
    zr_enc_kint (self->enc, "queues", topic->queues);
    zr_retention_get (self->retention, name, &retention_ms,
                      &retention_bytes);
    zr_enc_kint (self->enc, "retention_ms", retention_ms);
    zr_enc_kint (self->enc, "retention_bytes", retention_bytes);
    zr_enc_kbool (self->enc, "created", created);
    zr_enc_kint (self->enc, "registered", self->acked_count);
    zr_enc_kint (self->enc, "nameservers", self->acked_total);
    s_send_reply (self, route, NULL);
}

//  Answers parked TOPIC_CREATEs whose state generation is <= gen.
static void
s_answer_parked (broker_t *self, uint64_t gen, int acked, int total)
{
    parked_t *p = (parked_t *) zlistx_first (self->parked);
    while (p) {
        void *cursor = zlistx_cursor (self->parked);
        parked_t *next = (parked_t *) zlistx_next (self->parked);
        if (p->gen <= gen) {
            //  A write: s_ack_hold checks its reply (sync, leases).
            route_t *ack_route = self->ack_route;
            uint64_t ack_seq0 = self->ack_seq0;
            self->ack_route = &p->route;
            self->ack_seq0 = p->seq0;
            s_reply_begin (self, &p->route, ZR_OK, NULL, 5);
            zr_enc_kstr (self->enc, "topic", p->topic);
            zr_enc_kint (self->enc, "queues", p->queues);
            zr_enc_kbool (self->enc, "created", p->created);
            zr_enc_kint (self->enc, "registered", acked);
            zr_enc_kint (self->enc, "nameservers", total);
            s_send_reply (self, &p->route, NULL);
            self->ack_route = ack_route;
            self->ack_seq0 = ack_seq0;
            zlistx_detach (self->parked, cursor);
            free (p);
        }
        p = next;
    }
}

static void s_follow_found (broker_t *self, const char *ha, int64_t epoch,
                            int64_t id);

static void
s_nslink_event (broker_t *self)
{
    char *event = NULL, *gen = NULL, *acked = NULL, *total = NULL,
         *other = NULL;
    int frames = zstr_recvx (self->nslink, &event, &gen, &acked, &total,
                             &other, NULL);
    if (frames >= 5 && streq (event, "INFO")) {
        free (self->ns_known);
        self->ns_known = strdup (gen);
        self->beacons_heard = atoll (acked);
        self->beacons_bad = atoll (total);
        self->beacons_other = atoll (other);
    }
    else
    if (frames >= 4 && streq (event, "MASTER"))
        s_follow_found (self, gen, atoll (acked), atoll (total));
    else
    if (frames >= 4 && streq (event, "ACKED")) {
        uint64_t g = strtoull (gen, NULL, 10);
        if (g >= self->acked_gen) {
            self->acked_gen = g;
            self->acked_count = atoi (acked);
            self->acked_total = atoi (total);
        }
        s_answer_parked (self, g, atoi (acked), atoi (total));
    }
    zstr_free (&event);
    zstr_free (&gen);
    zstr_free (&acked);
    zstr_free (&total);
    zstr_free (&other);
}

static void
s_cmd_topic_delete (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char name [ZR_NAME_MAX + 2];
    if (s_need_name (self, route, h, "topic", name))
        return;
    if (!zhashx_lookup (self->topics, name)) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' does not exist", name);
        return;
    }
    zr_store_batch_topic_delete (self->store, name);
    char *err = NULL;
    if (zr_store_commit (self->store, self->flush_sync, &err)) {
        s_reply_error (self, route, ZR_STORE_ERROR, "%s", err);
        zstr_free (&err);
        return;
    }
    self->stats.commits++;
    if (self->vis_dirty)
        s_vis_forget (self, (topic_t *) zhashx_lookup (self->topics, name));
    zhashx_delete (self->topics, name);
    zr_retention_forget (self->retention, name);
    s_state_changed (self);
    s_serve_waiters (self, false);      //  answers pulls on the topic
    s_reply_ok (self, route);
}

//  Topic names in order.
static zlistx_t *
s_topic_names (broker_t *self)
{
    zlistx_t *names = zhashx_keys (self->topics);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (names);
    return names;
}

static void
s_cmd_topic_list (broker_t *self, route_t *route, const zr_obj_t *h)
{
    zlistx_t *names = s_topic_names (self);
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_str (self->enc, "topics");
    zr_enc_array (self->enc, zlistx_size (names));
    const char *name = (const char *) zlistx_first (names);
    while (name) {
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
        zr_enc_map (self->enc, 2);
        zr_enc_kstr (self->enc, "topic", name);
        zr_enc_kint (self->enc, "queues", topic->queues);
        name = (const char *) zlistx_next (names);
    }
    zlistx_destroy (&names);
    s_send_reply (self, route, NULL);
}

static void
s_cmd_topic_info (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char name [ZR_NAME_MAX + 2];
    if (s_need_name (self, route, h, "topic", name))
        return;
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' does not exist", name);
        return;
    }
    int64_t retention_ms, retention_bytes;
    zr_retention_get (self->retention, name, &retention_ms,
                      &retention_bytes);
    s_reply_begin (self, route, ZR_OK, NULL, 5);
    zr_enc_kstr (self->enc, "topic", name);
    zr_enc_kint (self->enc, "queues", topic->queues);
    zr_enc_kint (self->enc, "retention_ms", retention_ms);
    zr_enc_kint (self->enc, "retention_bytes", retention_bytes);
    zr_enc_str (self->enc, "offsets");
    zr_enc_array (self->enc, topic->queues);
    for (int q = 0; q < topic->queues; q++) {
        zr_enc_array (self->enc, 2);
        zr_enc_int (self->enc, topic->queue [q].min);
        zr_enc_int (self->enc, topic->queue [q].vis);
    }
    s_send_reply (self, route, NULL);
}

//  Writes the stats map into enc.
static void
s_encode_stats (broker_t *self, zr_enc_t *enc)
{
    stats_t *s = &self->stats;
    zr_enc_map (enc, 28 + 5 + 1        //  + 5 group counts, repl
                     + zr_txn_stats_count ());
    zr_enc_kint (enc, "requests", (int64_t) s->requests);
    zr_enc_kint (enc, "sends_ok", (int64_t) s->sends_ok);
    zr_enc_kint (enc, "sends_rejected", (int64_t) s->sends_rejected);
    zr_enc_kint (enc, "oneway_rejected", (int64_t) s->oneway_rejected);
    zr_enc_kint (enc, "bytes_in", (int64_t) s->bytes_in);
    zr_enc_kint (enc, "pulls", (int64_t) s->pulls);
    zr_enc_kint (enc, "long_polls", (int64_t) s->long_polls);
    zr_enc_kint (enc, "msgs_out", (int64_t) s->msgs_out);
    zr_enc_kint (enc, "bytes_out", (int64_t) s->bytes_out);
    zr_enc_kint (enc, "commits", (int64_t) s->commits);
    zr_enc_kint (enc, "commit_errors", (int64_t) s->commit_errors);
    zr_enc_kint (enc, "malformed", (int64_t) s->malformed);
    zr_enc_kint (enc, "busy", (int64_t) s->busy);
    zr_enc_kint (enc, "replies_unroutable", (int64_t) s->unroutable);
    zr_enc_kint (enc, "replies_dropped", (int64_t) s->reply_dropped);
    zr_enc_kint (enc, "waiting_pulls",
                 (int64_t) zlistx_size (self->waiters));
    zr_enc_kint (enc, "clients_inflight",
                 (int64_t) zhashx_size (self->clients));
    zr_enc_kint (enc, "seq", (int64_t) zr_store_seq (self->store));
    zr_enc_kint (enc, "epoch", (int64_t) zr_store_epoch (self->store));
    zr_enc_kint (enc, "disk_free", self->disk_free);
    zr_enc_kint (enc, "disk_used", zr_store_disk_used (self->store));
    zr_enc_kbool (enc, "disk_full", self->disk_full);
    zr_enc_kstr (enc, "flush", self->flush_sync ? "sync" : "async");
    zr_enc_kstr (enc, "nameservers", self->ns_known ? self->ns_known : "");
    zr_enc_kint (enc, "beacons_heard", self->beacons_heard);
    zr_enc_kint (enc, "beacons_bad", self->beacons_bad);
    zr_enc_kint (enc, "beacons_other_cluster", self->beacons_other);
    zr_enc_kint (enc, "groups", (int64_t) zr_groups_count (self->groups));
    zr_enc_kint (enc, "members",
                 (int64_t) zr_groups_member_count (self->groups));
    zr_enc_kint (enc, "leases",
                 (int64_t) zr_groups_lease_count (self->groups));
    zr_enc_kint (enc, "members_changed_sent",
                 (int64_t) self->group_stats.notified);
    zr_enc_kint (enc, "members_changed_dropped",
                 (int64_t) self->group_stats.notify_dropped);
    zr_txn_stats (self->txn, enc);      //  zr_txn_stats_count () entries
    zr_repl_stats (self->repl, enc);    //  one entry: "repl"
    zlistx_t *names = s_topic_names (self);
    zr_enc_str (enc, "topics");
    zr_enc_map (enc, zlistx_size (names));
    const char *name = (const char *) zlistx_first (names);
    while (name) {
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
        int64_t msgs = 0;
        for (int q = 0; q < topic->queues; q++)
            msgs += topic->queue [q].max - topic->queue [q].min;
        zr_enc_str (enc, name);
        zr_enc_map (enc, 4);
        zr_enc_kint (enc, "queues", topic->queues);
        zr_enc_kint (enc, "messages", msgs);
        zr_enc_kint (enc, "disk_bytes",
                     zr_store_topic_disk (self->store, name));
        zr_enc_kint (enc, "retention_deleted", (int64_t)
                     zr_retention_deleted (self->retention, name));
        name = (const char *) zlistx_next (names);
    }
    zlistx_destroy (&names);
}

static void
s_cmd_stats (broker_t *self, route_t *route, const zr_obj_t *h)
{
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_str (self->enc, "stats");
    s_encode_stats (self, self->enc);
    s_send_reply (self, route, NULL);
}

//  --------------------------------------------------------------------
//  Retention and lookup (broker/retention.c, protocol section 15)

//  One retention turn: moves the min offset of queues whose old messages
//  go, in one batch; reads at most ZR_RETENTION_BUDGET records, so a
//  turn that runs out comes back at once.
static void
s_retention_tick (broker_t *self)
{
    s_batch_commit (self);
    int budget = ZR_RETENTION_BUDGET;
    int64_t now = zclock_time ();
    size_t moved = 0;
    zlistx_t *names = s_topic_names (self);
    const char *name = (const char *) zlistx_first (names);
    while (name && budget > 0) {
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
        for (int q = 0; topic && q < topic->queues && budget > 0; q++) {
            queue_t *queue = &topic->queue [q];
            int64_t min = zr_retention_queue (
                self->retention, name, topic->queues, q, queue->min,
                queue->max, now, &budget);
            if (min > queue->min) {
                queue->next_min = min;
                moved++;
            }
        }
        name = (const char *) zlistx_next (names);
    }
    zlistx_destroy (&names);
    self->retention_checked = budget > 0 ? zclock_mono ()
                            : zclock_mono () - self->retention_check_ms;
    if (!moved)
        return;
    char *err = NULL;
    int rc = zr_store_commit (self->store, self->flush_sync, &err);
    if (rc) {
        zsys_error ("broker: retention commit failed: %s", err ? err : "?");
        zstr_free (&err);
        zr_retention_abort (self->retention);
        self->stats.commit_errors++;
    }
    else
        self->stats.commits++;
    topic_t *topic = (topic_t *) zhashx_first (self->topics);
    while (topic) {
        for (int q = 0; q < topic->queues; q++) {
            queue_t *queue = &topic->queue [q];
            if (rc == 0 && queue->next_min > queue->min)
                queue->min = queue->next_min;
            queue->next_min = 0;
        }
        topic = (topic_t *) zhashx_next (self->topics);
    }
}

static void
s_found (int queue, int64_t offset, const void *record, size_t size,
         void *arg)
{
    (void) queue;
    s_collect (offset, record, size, arg);
}

//  FIND on a sync master: only what is below the visible end.
typedef struct {
    collect_t c;            //  first: s_collect's arg
    topic_t *topic;
} vcollect_t;

static void
s_found_visible (int queue, int64_t offset, const void *record,
                 size_t size, void *arg)
{
    vcollect_t *v = (vcollect_t *) arg;
    if (queue < v->topic->queues && offset < v->topic->queue [queue].vis)
        s_collect (offset, record, size, &v->c);
}

static void
s_cmd_find (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char name [ZR_NAME_MAX + 2];
    int64_t max_count;
    if (s_need_name (self, route, h, "topic", name)
    ||  s_need_int (self, route, h, "max_count", &max_count, false,
                    PULL_COUNT_DEFAULT, 1, PULL_COUNT_MAX))
        return;
    const char *id = NULL, *key = NULL;
    size_t id_len = 0, key_len = 0;
    int id_rc = zr_field_str (h, "id", &id, &id_len);
    int key_rc = zr_field_str (h, "key", &key, &key_len);
    if (id_rc == ZR_FIELD_TYPE || key_rc == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "fields 'id' and 'key' must be strings");
        return;
    }
    if ((id_rc == ZR_FIELD_OK) == (key_rc == ZR_FIELD_OK)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "FIND takes one of 'id' or 'key'");
        return;
    }
    bool by_id = id_rc == ZR_FIELD_OK;
    const char *str = by_id ? id : key;
    size_t len = by_id ? id_len : key_len;
    if (len == 0 || len > ZR_RETENTION_STR_MAX || memchr (str, 0, len)
    ||  memchr (str, ' ', len)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "%s must be 1..%d bytes without spaces",
                       by_id ? "id" : "key", ZR_RETENTION_STR_MAX);
        return;
    }
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' does not exist", name);
        return;
    }
    zchunk_set (self->scratch, "", 0);
    zlistx_purge (self->bodies);
    vcollect_t v;
    memset (&v, 0, sizeof v);
    v.topic = topic;
    collect_t c;
    memset (&c, 0, sizeof c);
    c.self = self;
    c.max_bytes = PULL_BYTES_DEFAULT;
    c.last = -1;
    v.c = c;
    bool visible = self->vis_dirty && zlistx_size (self->vis_dirty) > 0;
    int rc = zr_retention_find (
        self->retention, name,
        by_id ? ZR_RETENTION_BY_ID : ZR_RETENTION_BY_KEY, str, len,
        (int) max_count, visible ? s_found_visible : s_found,
        visible ? (void *) &v : (void *) &c);
    if (visible)
        c = v.c;
    if (rc < 0 || c.damaged) {
        zlistx_purge (self->bodies);
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot read the index of %s", name);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_str (self->enc, "msgs");
    zr_enc_array (self->enc, c.count);
    zr_enc_raw (self->enc, zchunk_data (self->scratch),
                zchunk_size (self->scratch));
    s_send_reply (self, route, self->bodies);
    zlistx_purge (self->bodies);
}

static void
s_cmd_get_msg (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char id [ZR_STORE_ID_MAX + 2];
    if (s_need_str (self, route, h, "store_id", id, sizeof id, true))
        return;
    //  GROUP:TOPIC:QUEUE:OFFSET; names hold no ':'
    char *c1 = strchr (id, ':');
    char *c3 = strrchr (id, ':');
    char *c2 = NULL;
    if (c1 && c3 > c1) {
        *c3 = 0;
        c2 = strrchr (id, ':');
        if (c2 == c1)
            c2 = NULL;
    }
    char *end1 = NULL, *end2 = NULL;
    long long queue = -1, offset = -1;
    if (c2) {
        *c1 = *c2 = 0;
        errno = 0;
        queue = strtoll (c2 + 1, &end1, 10);
        offset = strtoll (c3 + 1, &end2, 10);
    }
    if (!c2 || errno || !end1 || *end1 || !end2 || *end2 || queue < 0
    ||  offset < 0 || queue > INT32_MAX || c2 + 1 == end1
    ||  c3 + 1 == end2) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "store id must be GROUP:TOPIC:QUEUE:OFFSET");
        return;
    }
    if (strneq (id, zr_store_group (self->store))) {
        s_reply_error (self, route, ZR_NOT_FOUND,
                       "store id is from broker group '%s'; this is '%s'",
                       id, zr_store_group (self->store));
        return;
    }
    //  Sync master: a message above the visible end is not there yet.
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, c1 + 1);
    if (topic && queue < topic->queues && offset >= topic->queue [queue].vis
    &&  offset < topic->queue [queue].max) {
        s_reply_error (self, route, ZR_NOT_FOUND, "message %s:%lld:%lld is "
                       "not replicated yet", c1 + 1, queue, offset);
        return;
    }
    void *record = NULL;
    size_t size = 0;
    int rc = s_valid_name (c1 + 1, strlen (c1 + 1))
           ? zr_store_get (self->store, c1 + 1, (int) queue, offset,
                           &record, &size)
           : 1;
    if (rc == 1) {
        s_reply_error (self, route, ZR_NOT_FOUND,
                       "no message %s:%lld:%lld", c1 + 1, queue, offset);
        return;
    }
    const uint8_t *r = (const uint8_t *) record;
    size_t meta = rc == 0 && size >= 4
                ? ((size_t) r [0] << 24) | ((size_t) r [1] << 16)
                  | ((size_t) r [2] << 8) | r [3]
                : SIZE_MAX;
    if (rc == -1 || meta > size - 4) {
        free (record);
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot read message (damaged record?)");
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_str (self->enc, "msg");
    zr_enc_raw (self->enc, r + 4, meta);
    zlistx_purge (self->bodies);
    zlistx_add_end (self->bodies, zframe_new (r + 4 + meta,
                                              size - 4 - meta));
    free (record);
    s_send_reply (self, route, self->bodies);
    zlistx_purge (self->bodies);
}

//  --------------------------------------------------------------------
//  Consumer groups (docs/protocol.md section 11; state in broker/groups)

//  Reads an optional lease token field (0 when absent).
static int
s_need_token (broker_t *self, route_t *route, const zr_obj_t *h,
              bool required, uint64_t *token)
{
    int64_t value;
    if (s_need_int (self, route, h, "token", &value, required, 0, 0,
                    INT64_MAX))
        return -1;
    *token = (uint64_t) value;
    return 0;
}

//  PULL and COMMIT_OFFSET: a request naming a group must carry the token
//  of the group's unexpired lease on the queue, if there is one. Returns
//  0 (go on), or replies an error and returns -1.
static int
s_lease_refused (broker_t *self, route_t *route, const zr_obj_t *h,
                 topic_t *topic, int queue)
{
    const zr_obj_t *field = zr_obj_get (h, "group");
    if (!field || zr_obj_is_nil (field))
        return 0;
    char group [ZR_NAME_MAX + 2];
    uint64_t token;
    if (s_need_name (self, route, h, "group", group)
    ||  s_need_token (self, route, h, false, &token))
        return -1;
    if (zr_groups_check (self->groups, group, topic->name, queue, token,
                         zclock_mono ()))
        return 0;
    int64_t left = 0;
    const char *owner = zr_groups_owner (self->groups, group, topic->name,
                                         queue, zclock_mono (), &left);
    s_reply_error (self, route, ZR_LEASE_INVALID,
                   "group '%s' holds a lease on %s/%d (owner %s) and this "
                   "request %s", group, topic->name, queue,
                   owner ? owner : "?", token ? "carries another token"
                                              : "carries no token");
    return -1;
}

//  Sends MEMBERS_CHANGED to one member, on the identity of its last
//  HEARTBEAT. Never blocks: a gone or lagging member misses it and learns
//  the news from its next HEARTBEAT reply.
static void
s_notify_member (const zr_groups_member_t *member, void *arg)
{
    broker_t *self = (broker_t *) arg;
    void *handle = zsock_resolve (self->router);
    if (zmq_send (handle, member->identity, member->identity_size,
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        self->group_stats.notify_dropped++;
        return;
    }
    if (member->delimiter)
        zmq_send (handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (handle, zr_enc_data (self->enc), zr_enc_size (self->enc),
              ZMQ_DONTWAIT);
    self->group_stats.notified++;
}

//  Tells every member of group that its membership (version) changed.
//  Uses the reply encoder: call it only after any reply has been sent.
static void
s_notify_members (const char *group, uint64_t version, void *arg)
{
    broker_t *self = (broker_t *) arg;
    zr_enc_reset (self->enc);
    zr_enc_map (self->enc, 6);
    zr_enc_kint (self->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kstr (self->enc, "type", "request");
    zr_enc_kstr (self->enc, "cmd", "MEMBERS_CHANGED");
    zr_enc_kint (self->enc, "rid", (int64_t) ++self->notify_rid);
    zr_enc_kstr (self->enc, "group", group);
    zr_enc_kint (self->enc, "version", (int64_t) version);
    zr_groups_members (self->groups, group, s_notify_member, self);
}

//  Timer: drops silent members (telling the rest) and expired leases.
static void
s_groups_tick (broker_t *self)
{
    int64_t now = zclock_mono ();
    zr_groups_expire (self->groups, now, self->member_expiry_ms,
                      s_notify_members, self);
    self->groups_checked = now;
}

//  Expiry passes run this often, so a member is dropped at most a tenth
//  of its expiry late.
static int64_t
s_groups_period (broker_t *self)
{
    int64_t period = self->member_expiry_ms / 10;
    return period < 5 ? 5 : period;
}

static void
s_encode_member_id (const zr_groups_member_t *member, void *arg)
{
    zr_enc_str ((zr_enc_t *) arg, member->client_id);
}

//  HEARTBEAT's optional subscriptions (sections 11 and 14): an array
//  of {topic, filter_type?, filter} maps naming topics of `topics`.
//  Returns NULL (none), per topic "tag:EXPR"/"sql:EXPR" or NULL
//  (caller frees), or S_FILTERS_BAD after replying BAD_ARGUMENT (with
//  `position` for a malformed expression) or MALFORMED.
#define S_FILTERS_BAD ((char **) -1)
static char **
s_heartbeat_filters (broker_t *self, route_t *route, const zr_obj_t *h,
                     const char **topics, size_t count)
{
    const zr_obj_t *list = zr_obj_get (h, "subscriptions");
    if (!list)
        return NULL;
    if (!zr_obj_is_array (list)) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'subscriptions' must be an array of maps");
        return S_FILTERS_BAD;
    }
    char **filters = (char **) zmalloc ((count ? count : 1)
                                        * sizeof (char *));
    for (size_t i = 0; i < zr_obj_size (list); i++) {
        const zr_obj_t *sub = zr_obj_at (list, i);
        const char *topic, *type = "tag", *expr;
        size_t topic_len, type_len = 3, expr_len;
        int trc = zr_field_str (sub, "filter_type", &type, &type_len);
        if (zr_field_str (sub, "topic", &topic, &topic_len) != ZR_FIELD_OK
        ||  zr_field_str (sub, "filter", &expr, &expr_len) != ZR_FIELD_OK
        ||  (trc != ZR_FIELD_OK && trc != ZR_FIELD_MISSING)) {
            s_reply_error (self, route, ZR_MALFORMED, "subscriptions[%zu] "
                           "must be a map of strings topic, filter_type, "
                           "filter", i);
            goto bad;
        }
        if (trc == ZR_FIELD_MISSING) {
            type = "tag";
            type_len = 3;
        }
        size_t t = 0;
        while (t < count && !(strlen (topics [t]) == topic_len
                              && memcmp (topics [t], topic, topic_len) == 0))
            t++;
        if (t == count) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT, "subscriptions[%zu]: "
                           "topic '%.*s' is not in topics", i,
                           (int) (topic_len > 64 ? 64 : topic_len), topic);
            goto bad;
        }
        char type_z [8];
        if (type_len >= sizeof type_z) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT, "subscriptions[%zu]: "
                           "filter_type must be tag or sql", i);
            goto bad;
        }
        memcpy (type_z, type, type_len);
        type_z [type_len] = 0;
        char err [256];
        if (!zr_filter_cache_get (self->filters, type_z, expr, expr_len, err,
                                  sizeof err)) {
            int position = 0;
            sscanf (err, "position %d:", &position);
            char *reason = zsys_sprintf ("subscriptions[%zu]: %s", i, err);
            s_reply_begin (self, route, ZR_BAD_ARGUMENT, reason, 1);
            zstr_free (&reason);
            zr_enc_kint (self->enc, "position", position);
            s_send_reply (self, route, NULL);
            goto bad;
        }
        free (filters [t]);
        filters [t] = zsys_sprintf ("%s:%.*s", *type_z ? type_z : "tag",
                                    (int) expr_len, expr);
    }
    return filters;
bad:
    for (size_t i = 0; i < count; i++)
        free (filters [i]);
    free (filters);
    return S_FILTERS_BAD;
}

static void
s_cmd_heartbeat (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2], client_id [ZR_NAME_MAX + 2];
    char mode [16];
    if (s_need_name (self, route, h, "group", group)
    ||  s_need_name (self, route, h, "client_id", client_id)
    ||  s_need_str (self, route, h, "mode", mode, sizeof mode, false))
        return;
    if (*mode && strneq (mode, "clustering") && strneq (mode, "broadcast")) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "mode '%s' must be clustering or broadcast", mode);
        return;
    }
    const zr_obj_t *list = zr_obj_get (h, "topics");
    if (!list || !zr_obj_is_array (list)) {
        s_reply_error (self, route, ZR_MALFORMED, list
                       ? "field 'topics' must be an array of topic names"
                       : "missing field 'topics'");
        return;
    }
    size_t count = zr_obj_size (list);
    if (count > ZR_GROUPS_TOPICS_MAX) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "%zu topics, at most %d per member", count,
                       ZR_GROUPS_TOPICS_MAX);
        return;
    }
    char **filters = NULL;
    char (*names) [ZR_NAME_MAX + 1] = (char (*) [ZR_NAME_MAX + 1])
        zmalloc ((count ? count : 1) * (ZR_NAME_MAX + 1));
    const char **topics = (const char **)
        zmalloc ((count ? count : 1) * sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        const char *s;
        size_t len;
        if (zr_obj_str (zr_obj_at (list, i), &s, &len) != ZR_FIELD_OK) {
            s_reply_error (self, route, ZR_MALFORMED,
                           "field 'topics' must be an array of topic names");
            goto done;
        }
        if (!s_valid_name (s, len)) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT,
                           "topics[%zu] '%.*s' is not a valid topic name", i,
                           (int) (len > 64 ? 64 : len), s);
            goto done;
        }
        memcpy (names [i], s, len);
        names [i][len] = 0;
        topics [i] = names [i];
    }
    filters = s_heartbeat_filters (self, route, h, topics, count);
    if (filters == S_FILTERS_BAD)
        goto done;
    int rc = zr_groups_heartbeat (self->groups, group, client_id, topics,
                                  count, streq (mode, "broadcast"),
                                  route->identity, route->identity_size,
                                  route->delimiter, zclock_mono ());
    if (rc != ZR_GROUPS_FULL)
        zr_groups_set_filters (self->groups, group, client_id,
                               (const char *const *) filters, count);
    if (rc == ZR_GROUPS_FULL) {
        s_reply_error (self, route, ZR_BUSY,
                       "group '%s' has %d members (or the broker %d): "
                       "not joined", group, ZR_GROUPS_MEMBERS_MAX,
                       ZR_GROUPS_MEMBERS_TOTAL);
        goto done;
    }
    uint64_t version = zr_groups_version (self->groups, group);
    s_reply_begin (self, route, ZR_OK, NULL, 4);
    zr_enc_str (self->enc, "members");
    zr_enc_array (self->enc, zr_groups_members (self->groups, group,
                                                NULL, NULL));
    zr_groups_members (self->groups, group, s_encode_member_id, self->enc);
    zr_enc_kint (self->enc, "version", (int64_t) version);
    zr_enc_kint (self->enc, "heartbeat_ms", self->member_heartbeat_ms);
    zr_enc_kint (self->enc, "member_expiry_ms", self->member_expiry_ms);
    s_send_reply (self, route, NULL);
    if (rc == 1)
        s_notify_members (group, version, self);
done:
    if (filters && filters != S_FILTERS_BAD) {
        for (size_t i = 0; i < count; i++)
            free (filters [i]);
        free (filters);
    }
    free (topics);
    free (names);
}

static void
s_cmd_leave (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2], client_id [ZR_NAME_MAX + 2];
    if (s_need_name (self, route, h, "group", group)
    ||  s_need_name (self, route, h, "client_id", client_id))
        return;
    int changed = zr_groups_leave (self->groups, group, client_id);
    s_reply_ok (self, route);
    if (changed == 1)
        s_notify_members (group, zr_groups_version (self->groups, group),
                          self);
}

static void
s_cmd_lock (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2], client_id [ZR_NAME_MAX + 2];
    int64_t queue, offset = -1;
    uint64_t token;
    if (s_need_name (self, route, h, "group", group))
        return;
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic
    ||  s_need_name (self, route, h, "client_id", client_id)
    ||  s_need_token (self, route, h, false, &token))
        return;
    int rc = zr_store_offset_get (self->store, group, topic->name,
                                  (int) queue, &offset);
    if (rc == -1) {
        s_reply_error (self, route, ZR_STORE_ERROR, "cannot read offset");
        return;
    }
    uint64_t granted = 0;
    const char *owner = NULL;
    int64_t left = 0;
    rc = zr_groups_lock (self->groups, group, topic->name, (int) queue,
                         client_id, token, zclock_mono (), self->lease_ms,
                         &granted, &owner, &left);
    if (rc == ZR_GROUPS_HELD) {
        s_reply_begin (self, route, ZR_LEASE_HELD,
                       "another member holds the queue's lease", 2);
        zr_enc_kstr (self->enc, "owner", owner);
        zr_enc_kint (self->enc, "expires_ms", left);
        s_send_reply (self, route, NULL);
        return;
    }
    if (rc != ZR_GROUPS_OK) {
        s_reply_error (self, route, ZR_BUSY,
                       "the broker holds %d leases, its limit; retry later",
                       ZR_GROUPS_LEASES_MAX);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 3);
    zr_enc_kint (self->enc, "token", (int64_t) granted);
    zr_enc_kint (self->enc, "lease_ms", self->lease_ms);
    zr_enc_kint (self->enc, "offset", offset);
    s_send_reply (self, route, NULL);
}

static void
s_cmd_unlock (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2], client_id [ZR_NAME_MAX + 2];
    int64_t queue, offset;
    uint64_t token;
    if (s_need_name (self, route, h, "group", group))
        return;
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic
    ||  s_need_name (self, route, h, "client_id", client_id)
    ||  s_need_token (self, route, h, true, &token)
    ||  s_need_int (self, route, h, "offset", &offset, false, -1, 0,
                    INT64_MAX))
        return;
    int64_t now = zclock_mono ();
    if (!zr_groups_check (self->groups, group, topic->name, (int) queue,
                          token, now)) {
        s_reply_error (self, route, ZR_LEASE_INVALID,
                       "token is not the current lease of %s/%d for group "
                       "'%s'; nothing committed", topic->name, (int) queue,
                       group);
        return;
    }
    queue_t *q = &topic->queue [queue];
    if (offset > q->max) {
        s_reply_begin (self, route, ZR_OFFSET_OUT_OF_RANGE,
                       "offset is beyond the queue's max", 2);
        zr_enc_kint (self->enc, "min", q->min);
        zr_enc_kint (self->enc, "max", q->max);
        s_send_reply (self, route, NULL);
        return;
    }
    if (offset >= 0) {
        zr_store_batch_offset (self->store, group, topic->name, (int) queue,
                               offset);
        char *err = NULL;
        if (zr_store_commit (self->store, self->flush_sync, &err)) {
            s_reply_error (self, route, ZR_STORE_ERROR,
                           "cannot store offset (lease kept): %s",
                           err ? err : "?");
            zstr_free (&err);
            return;
        }
        self->stats.commits++;
    }
    zr_groups_unlock (self->groups, group, topic->name, (int) queue, token,
                      now);
    s_reply_ok (self, route);
}

//  Reads the "stored" time of the record at (topic, queue, offset) from
//  its meta map: ms since the epoch, or -1.
static int64_t
s_record_stored (const void *record, size_t size)
{
    const uint8_t *r = (const uint8_t *) record;
    if (size < 4)
        return -1;
    size_t meta = ((size_t) r [0] << 24) | ((size_t) r [1] << 16)
                | ((size_t) r [2] << 8) | r [3];
    if (meta > size - 4)
        return -1;
    zr_hdr_t *hdr = zr_hdr_decode (r + 4, meta, NULL);
    int64_t stored = -1;
    if (!hdr || zr_field_int (zr_hdr_root (hdr), "stored", &stored))
        stored = -1;
    zr_hdr_destroy (&hdr);
    return stored;
}

static int64_t
s_stored_at (broker_t *self, const char *topic, int queue, int64_t offset)
{
    void *record = NULL;
    size_t size = 0;
    if (zr_store_get (self->store, topic, queue, offset, &record, &size))
        return -1;
    int64_t stored = s_record_stored (record, size);
    free (record);
    return stored;
}

typedef struct {
    broker_t *self;
    zhashx_t *topics;       //  set of topic names the members consume
    int64_t now;
} status_t;

static void
s_status_topics (const zr_groups_member_t *member, void *arg)
{
    status_t *st = (status_t *) arg;
    for (size_t i = 0; i < member->topic_count; i++)
        if (zhashx_lookup (st->self->topics, member->topics [i]))
            zhashx_update (st->topics, member->topics [i], (void *) 1);
}

static void
s_status_member (const zr_groups_member_t *member, void *arg)
{
    status_t *st = (status_t *) arg;
    zr_enc_t *enc = st->self->enc;
    size_t subs = 0;
    for (size_t i = 0; member->filters && i < member->topic_count; i++)
        subs += member->filters [i] != NULL;
    zr_enc_map (enc, subs ? 5 : 4);
    zr_enc_kstr (enc, "client_id", member->client_id);
    zr_enc_str (enc, "topics");
    zr_enc_array (enc, member->topic_count);
    for (size_t i = 0; i < member->topic_count; i++)
        zr_enc_str (enc, member->topics [i]);
    if (subs) {                 //  HEARTBEAT subscriptions (section 11)
        zr_enc_str (enc, "subscriptions");
        zr_enc_array (enc, subs);
        for (size_t i = 0; i < member->topic_count; i++) {
            const char *f = member->filters [i];
            if (!f)
                continue;
            zr_enc_map (enc, 3);
            zr_enc_kstr (enc, "topic", member->topics [i]);
            zr_enc_kstr (enc, "filter_type", f [0] == 's' ? "sql" : "tag");
            zr_enc_kstr (enc, "filter", f + 4);
        }
    }
    zr_enc_kstr (enc, "mode", member->broadcast ? "broadcast"
                                                : "clustering");
    zr_enc_kint (enc, "age_ms", st->now - member->last_seen);
}

static void
s_cmd_group_status (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2];
    if (s_need_name (self, route, h, "group", group))
        return;
    status_t st = { self, zhashx_new (), zclock_mono () };
    zr_groups_members (self->groups, group, s_status_topics, &st);
    char *retry = zsys_sprintf ("%%RETRY%%%s", group);
    if (strlen (retry) <= ZR_NAME_MAX && zhashx_lookup (self->topics, retry))
        zhashx_update (st.topics, retry, (void *) 1);
    zstr_free (&retry);
    zlistx_t *names = zhashx_keys (st.topics);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    zlistx_sort (names);
    size_t queues = 0;
    const char *name = (const char *) zlistx_first (names);
    while (name) {
        queues += ((topic_t *) zhashx_lookup (self->topics, name))->queues;
        name = (const char *) zlistx_next (names);
    }
    s_reply_begin (self, route, ZR_OK, NULL, 2);
    zr_enc_str (self->enc, "members");
    zr_enc_array (self->enc, zr_groups_members (self->groups, group, NULL,
                                                NULL));
    zr_groups_members (self->groups, group, s_status_member, &st);
    zr_enc_str (self->enc, "queues");
    zr_enc_array (self->enc, queues);
    int64_t wall = zclock_time ();
    name = (const char *) zlistx_first (names);
    while (name) {
        topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
        for (int q = 0; q < topic->queues; q++) {
            queue_t *queue = &topic->queue [q];
            int64_t committed = -1;
            if (zr_store_offset_get (self->store, group, name, q,
                                     &committed) != 0)
                committed = -1;
            int64_t pos = committed >= queue->min ? committed : queue->min;
            int64_t lag = queue->vis - (committed >= 0 ? committed
                                                       : queue->min);
            int64_t age = 0;
            if (pos < queue->vis) {
                int64_t stored = s_stored_at (self, name, q, pos);
                //  At least 1 when a message waits: 0 means none does.
                if (stored >= 0)
                    age = wall - stored > 1 ? wall - stored : 1;
            }
            const char *owner = zr_groups_owner (self->groups, group, name,
                                                 q, st.now, NULL);
            zr_enc_map (self->enc, 7);
            zr_enc_kstr (self->enc, "topic", name);
            zr_enc_kint (self->enc, "queue", q);
            zr_enc_str (self->enc, "owner");
            if (owner)
                zr_enc_str (self->enc, owner);
            else
                zr_enc_nil (self->enc);
            zr_enc_kint (self->enc, "committed", committed);
            zr_enc_kint (self->enc, "max", queue->vis);
            zr_enc_kint (self->enc, "lag", lag > 0 ? lag : 0);
            zr_enc_kint (self->enc, "oldest_age_ms", age);
        }
        name = (const char *) zlistx_next (names);
    }
    zlistx_destroy (&names);
    zhashx_destroy (&st.topics);
    s_send_reply (self, route, NULL);
}

//  Finds the first record stored at or after a time.
typedef struct {
    int64_t time;
    int64_t found;          //  its offset, or -1
    int64_t last;           //  last offset visited
} scan_t;

static void
s_scan_time (int64_t offset, const void *record, size_t size, void *arg)
{
    scan_t *scan = (scan_t *) arg;
    scan->last = offset;
    if (scan->found < 0 && s_record_stored (record, size) >= scan->time)
        scan->found = offset;
}

static void
s_cmd_reset_offset (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2], name [ZR_NAME_MAX + 2], to [16] = "";
    int64_t time = -1;
    if (s_need_name (self, route, h, "group", group)
    ||  s_need_name (self, route, h, "topic", name))
        return;
    const zr_obj_t *field = zr_obj_get (h, "to");
    if (!field) {
        s_reply_error (self, route, ZR_MALFORMED, "missing field 'to'");
        return;
    }
    if (zr_obj_int (field, &time) == ZR_FIELD_OK) {
        if (time < 0) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT,
                           "field 'to' must be first, last or a time in ms "
                           "since the epoch (>= 0)");
            return;
        }
    }
    else
    if (zr_field_strbuf (h, "to", to, sizeof to) != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'to' must be \"first\", \"last\" or an int");
        return;
    }
    else
    if (strneq (to, "first") && strneq (to, "last")) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "field 'to' is '%s', must be first, last or a time",
                       to);
        return;
    }
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' does not exist", name);
        return;
    }
    for (int q = 0; q < topic->queues; q++) {
        queue_t *queue = &topic->queue [q];
        int64_t offset = queue->vis;
        if (streq (to, "first"))
            offset = queue->min;
        else
        if (time >= 0) {
            //  Bounded by the queue's size: records are in offset order.
            scan_t scan = { time, -1, queue->min - 1 };
            while (scan.found < 0 && scan.last + 1 < queue->vis) {
                int64_t from = scan.last + 1;
                int rc = zr_store_read (self->store, name, q, from, 256,
                                        SIZE_MAX, s_scan_time, &scan);
                if (rc <= 0 || scan.last < from)
                    break;
            }
            if (scan.found >= 0)
                offset = scan.found;
        }
        zr_store_batch_offset (self->store, group, name, q, offset);
    }
    char *err = NULL;
    if (zr_store_commit (self->store, self->flush_sync, &err)) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot store offsets (none changed): %s",
                       err ? err : "?");
        zstr_free (&err);
        return;
    }
    self->stats.commits++;
    //  Members holding these queues must not commit over the reset.
    for (int q = 0; q < topic->queues; q++)
        zr_groups_revoke (self->groups, group, name, q);
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_kint (self->enc, "queues", topic->queues);
    s_send_reply (self, route, NULL);
    uint64_t version = zr_groups_touch (self->groups, group);
    if (version)
        s_notify_members (group, version, self);
}

//  --------------------------------------------------------------------
//  Retry and dead letters (protocol.md section 11). The logic that needs
//  no broker state is in broker/retry.c.

//  The retry or dead-letter topic name of a group ("%RETRY%" or "%DLQ%"
//  + group). Returns 0, or -1 when the name would be too long.
static int
s_group_topic (char *buf, const char *prefix, const char *group)
{
    size_t plen = strlen (prefix), glen = strlen (group);
    if (plen + glen > ZR_NAME_MAX)
        return -1;
    memcpy (buf, prefix, plen);
    memcpy (buf + plen, group, glen + 1);
    return 0;
}

//  Finds a retry or dead-letter topic, creating it with one queue (auto-
//  create setting or not). NULL on a store error.
static topic_t *
s_group_topic_get (broker_t *self, const char *name)
{
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic) {
        const char *reason = NULL;
        topic = s_topic_create (self, name, 1, &reason);
        if (!topic)
            zsys_error ("broker: cannot create %s: %s", name, reason);
    }
    return topic;
}

//  Appends a message given as a message map (a stored record's meta or a
//  timer value: id, tags, keys, born, props) plus extra props and body
//  to topic, with no reply. The id is kept (a missing or bad one gets a
//  new id).
static zr_status_t
s_append_from_map (broker_t *self, topic_t *topic, int queue,
                   const zr_obj_t *map, const char *const *extra,
                   const void *body, size_t body_size, char *reason,
                   size_t reason_size)
{
    char id [ZR_MSG_ID_LEN + 1];
    const char *s = "", *tags = "", *keys = "";
    size_t len = 0, tags_len = 0, keys_len = 0;
    if (zr_field_str (map, "id", &s, &len) == ZR_FIELD_OK
    &&  s_valid_id (s, len)) {
        memcpy (id, s, len);
        id [len] = 0;
    }
    else
        s_make_id (self, id);
    if (zr_field_str (map, "tags", &tags, &tags_len) != ZR_FIELD_OK) {
        tags = "";
        tags_len = 0;
    }
    if (zr_field_str (map, "keys", &keys, &keys_len) != ZR_FIELD_OK) {
        keys = "";
        keys_len = 0;
    }
    int64_t born = 0;
    if (zr_field_int (map, "born", &born) != ZR_FIELD_OK || born < 0)
        born = 0;
    if (queue < 0 || queue >= topic->queues)
        queue = (int) (topic->round_robin++ % (uint32_t) topic->queues);
    return s_msg_append (self, NULL, true, topic, queue, id, tags, tags_len,
                         keys, keys_len, zr_obj_get (map, "props"), extra,
                         born, body, body_size, reason, reason_size);
}

//  Drops the open batch and the offsets its appends reserved.
static void
s_retry_rollback (broker_t *self)
{
    for (size_t i = 0; i < self->pending_count; i++) {
        pending_t *p = &self->pending [i];
        p->topic->queue [p->queue].next = p->topic->queue [p->queue].max;
    }
    self->pending_count = 0;
    self->recbuf_size = 0;
    zr_store_abort (self->store);
}

//  Commits the open batch; returns 0 when it was stored (or empty).
static int
s_retry_commit (broker_t *self)
{
    uint64_t seq = zr_store_seq (self->store);
    bool work = zr_store_batch_ops (self->store) > 0
             || self->pending_count > 0;
    s_batch_commit (self);
    return !work || zr_store_seq (self->store) != seq ? 0 : -1;
}

static int
s_retry_configure (broker_t *self, char **err)
{
    zr_retry_destroy (&self->retry);
    self->retry = zr_retry_new (
        zr_setting_get (self->cfg, "broker", zr_broker_settings,
                        "retry-delays"),
        zr_setting_get (self->cfg, "broker", zr_broker_settings,
                        "max-reconsume"), err);
    return self->retry ? 0 : -1;
}

//  Reads group into buf, also checking that its retry and DLQ topic
//  names fit. Returns 0 or replies and returns -1.
static int
s_need_group (broker_t *self, route_t *route, const zr_obj_t *h,
              char *buf)
{
    if (s_need_name (self, route, h, "group", buf))
        return -1;
    char name [ZR_NAME_MAX + 1];
    if (s_group_topic (name, "%RETRY%", buf)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "group name '%.40s...' is too long: its retry topic "
                       "%%RETRY%%GROUP must fit in %d characters", buf,
                       ZR_NAME_MAX);
        return -1;
    }
    return 0;
}

static void
s_cmd_send_back (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2];
    int64_t queue, offset;
    if (s_need_group (self, route, h, group))
        return;
    topic_t *topic = s_need_queue (self, route, h, &queue);
    if (!topic
    ||  s_need_int (self, route, h, "offset", &offset, true, 0, 0,
                    INT64_MAX))
        return;
    const char *error = NULL;
    size_t error_len = 0;
    int rc = zr_field_str (h, "error", &error, &error_len);
    if (rc == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'error' must be a string");
        return;
    }
    if (rc != ZR_FIELD_OK)
        error = NULL;
    bool dlq = false;
    if (zr_field_bool (h, "dlq", &dlq) == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'dlq' must be a boolean");
        return;
    }
    if (self->disk_full) {
        s_reply_error (self, route, ZR_DISK_FULL,
                       "free disk space is below the threshold; not done");
        return;
    }
    void *record = NULL;
    size_t size = 0;
    rc = zr_store_get (self->store, topic->name, (int) queue, offset,
                       &record, &size);
    if (rc == 1) {
        s_reply_error (self, route, ZR_NOT_FOUND,
                       "no message at %s/%d offset %" PRId64, topic->name,
                       (int) queue, offset);
        return;
    }
    const void *meta = NULL, *body = NULL;
    size_t meta_size = 0, body_size = 0;
    zr_hdr_t *hdr = NULL;
    if (rc == 0
    &&  zr_retry_record_split (record, size, &meta, &meta_size, &body,
                               &body_size) == 0)
        hdr = zr_hdr_decode (meta, meta_size, NULL);
    if (!hdr || !zr_obj_is_map (zr_hdr_root (hdr))) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot read %s/%d offset %" PRId64 " (damaged "
                       "record?)", topic->name, (int) queue, offset);
        goto done;
    }
    const zr_obj_t *map = zr_hdr_root (hdr);
    zr_retry_history_t history;
    int64_t attempts = zr_retry_history (&history, map, error, error_len,
                                         -1);
    bool to_dlq = dlq || attempts > zr_retry_max_reconsume (self->retry);
    char name [ZR_NAME_MAX + 1];
    s_group_topic (name, to_dlq ? "%DLQ%" : "%RETRY%", group);
    //  The retry topic exists from the first SEND_BACK, so members can
    //  long-poll it before anything is due.
    topic_t *target = s_group_topic_get (self, name);
    if (!target) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot create topic '%s'", name);
        goto done;
    }
    char reason [256];
    zr_status_t status = ZR_OK;
    int64_t due = 0;
    if (to_dlq)
        status = s_append_from_map (self, target, -1, map, history.kv,
                                    body, body_size, reason, sizeof reason);
    else {
        zr_enc_t *enc = zr_enc_new ();
        if (zr_retry_timer_encode (enc, name, map, history.kv, body,
                                   body_size)) {
            status = ZR_STORE_ERROR;
            snprintf (reason, sizeof reason, "stored message has bad props");
        }
        else {
            due = zclock_time () + zr_retry_delay (self->retry, attempts);
            zr_store_batch_timer_put (self->store, due, zr_enc_data (enc),
                                      zr_enc_size (enc), NULL);
        }
        zr_enc_destroy (&enc);
    }
    if (status != ZR_OK) {
        s_retry_rollback (self);
        s_reply_error (self, route, status, "%s", reason);
        goto done;
    }
    if (s_retry_commit (self)) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "store write failed; not done, retry");
        goto done;
    }
    if (!to_dlq)
        zr_retry_timer_added (self->retry, due);
    s_reply_begin (self, route, ZR_OK, NULL, 2);
    zr_enc_kint (self->enc, "attempts", attempts);
    zr_enc_kbool (self->enc, "dlq", to_dlq);
    s_send_reply (self, route, NULL);
done:
    zr_hdr_destroy (&hdr);
    free (record);
}

//  --------------------------------------------------------------------
//  Batch send (protocol.md section 12, SEND_BATCH): all messages in one
//  queue, one WriteBatch, consecutive offsets; any bad message rejects
//  the whole batch.

//  Checks message i of a batch; returns 0 or replies and returns -1.
static int
s_batch_check (broker_t *self, route_t *route, const zr_obj_t *m, size_t i)
{
    const char *s;
    size_t len;
    int64_t born;
    if (!zr_obj_is_map (m)) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "msgs[%zu] must be a map; nothing stored", i);
        return -1;
    }
    int rc = zr_field_str (m, "id", &s, &len);
    if (rc == ZR_FIELD_TYPE || (rc == ZR_FIELD_OK && !s_valid_id (s, len))) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "msgs[%zu]: id must be %d hex digits; nothing "
                       "stored", i, ZR_MSG_ID_LEN);
        return -1;
    }
    if (zr_field_str (m, "tags", &s, &len) == ZR_FIELD_TYPE
    ||  zr_field_str (m, "keys", &s, &len) == ZR_FIELD_TYPE) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "msgs[%zu]: tags and keys must be strings; nothing "
                       "stored", i);
        return -1;
    }
    rc = zr_field_int (m, "born", &born);
    if (rc == ZR_FIELD_TYPE || (rc == ZR_FIELD_OK && born < 0)) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "msgs[%zu]: born must be an integer >= 0; nothing "
                       "stored", i);
        return -1;
    }
    if (zr_delay_requested (m)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "msgs[%zu]: messages in a batch cannot be delayed; "
                       "nothing stored", i);
        return -1;
    }
    return 0;
}

static void
s_cmd_send_batch (broker_t *self, route_t *route, const zr_obj_t *h,
                  zmq_msg_t *bodies, size_t body_count)
{
    char name [ZR_NAME_MAX + 2];
    int64_t queue;
    char (*ids) [ZR_MSG_ID_LEN + 1] = NULL;
    if (s_need_name (self, route, h, "topic", name)
    ||  s_need_int (self, route, h, "queue", &queue, false, -1, -1,
                    INT32_MAX))
        goto rejected;
    const zr_obj_t *msgs = zr_obj_get (h, "msgs");
    if (!msgs || !zr_obj_is_array (msgs)) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'msgs' must be an array of message maps");
        goto rejected;
    }
    size_t count = zr_obj_size (msgs);
    if (count == 0) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "field 'msgs' is empty: a batch needs a message");
        goto rejected;
    }
    if (count > ZR_BATCH_COUNT_MAX) {
        s_reply_error (self, route, ZR_MSG_TOO_LARGE,
                       "batch has %zu messages, the limit is %d; nothing "
                       "stored", count, ZR_BATCH_COUNT_MAX);
        goto rejected;
    }
    if (count != body_count) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "SEND_BATCH lists %zu messages but has %zu body "
                       "frames", count, body_count);
        goto rejected;
    }
    if (zr_delay_requested (h)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "a batch cannot be delayed; nothing stored");
        goto rejected;
    }
    size_t total = 0;
    for (size_t i = 0; i < count; i++) {
        size_t size = zmq_msg_size (&bodies [i]);
        if ((int64_t) size > self->max_msg_size) {
            s_reply_error (self, route, ZR_MSG_TOO_LARGE,
                           "msgs[%zu]: body is %zu bytes, the limit is %"
                           PRId64 "; nothing stored", i, size,
                           self->max_msg_size);
            goto rejected;
        }
        total += size;
    }
    if ((int64_t) total > self->max_batch_bytes) {
        s_reply_error (self, route, ZR_MSG_TOO_LARGE,
                       "batch bodies are %zu bytes in all, the limit "
                       "(max-batch-bytes) is %" PRId64 "; nothing stored",
                       total, self->max_batch_bytes);
        goto rejected;
    }
    for (size_t i = 0; i < count; i++)
        if (s_batch_check (self, route, zr_obj_at (msgs, i), i))
            goto rejected;
    if (self->disk_full) {
        s_reply_error (self, route, ZR_DISK_FULL,
                       "free disk space is below the threshold; not stored");
        goto rejected;
    }
    topic_t *topic = s_send_topic (self, route, name, queue);
    if (!topic)
        goto rejected;
    if (queue < 0) {
        const char *shard;
        size_t shard_len;
        int rc = zr_field_str (h, "shard", &shard, &shard_len);
        if (rc == ZR_FIELD_TYPE) {
            s_reply_error (self, route, ZR_MALFORMED,
                           "field 'shard' must be a string");
            goto rejected;
        }
        if (rc == ZR_FIELD_OK)
            queue = s_fnv1a (shard, shard_len) % (uint32_t) topic->queues;
        else
            queue = topic->round_robin++ % (uint32_t) topic->queues;
    }
    //  The open batch holds nothing else: a failure rolls back only ours.
    s_batch_commit (self);
    int64_t first = topic->queue [queue].next;
    ids = calloc (count, sizeof *ids);
    for (size_t i = 0; i < count; i++) {
        const zr_obj_t *m = zr_obj_at (msgs, i);
        const char *s = "", *tags = "", *keys = "";
        size_t len = 0, tags_len = 0, keys_len = 0;
        int64_t born = 0;
        if (zr_field_str (m, "id", &s, &len) == ZR_FIELD_OK) {
            memcpy (ids [i], s, len);
            ids [i][len] = 0;
        }
        else
            s_make_id (self, ids [i]);
        if (zr_field_str (m, "tags", &tags, &tags_len) != ZR_FIELD_OK)
            tags_len = 0;
        if (zr_field_str (m, "keys", &keys, &keys_len) != ZR_FIELD_OK)
            keys_len = 0;
        if (zr_field_int (m, "born", &born) != ZR_FIELD_OK)
            born = 0;
        char reason [256];
        zr_status_t status = s_msg_append (
            self, NULL, true, topic, (int) queue, ids [i], tags, tags_len,
            keys, keys_len, zr_obj_get (m, "props"), NULL, born,
            zmq_msg_data (&bodies [i]), zmq_msg_size (&bodies [i]), reason,
            sizeof reason);
        if (status != ZR_OK) {
            s_retry_rollback (self);
            s_reply_error (self, route, status, "msgs[%zu]: %s; nothing "
                           "stored", i, reason);
            goto rejected;
        }
    }
    if (s_retry_commit (self)) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "store write failed, batch not stored");
        goto rejected;
    }
    self->stats.sends_ok += count;
    self->stats.bytes_in += total;
    zr_status_t fo_st = ZR_SEND_OK;
    const char *fo_why = NULL;
    char fo_reason [256];
    s_failover_may_ack (self, &fo_st, &fo_why, fo_reason, sizeof fo_reason);
    s_reply_begin (self, route, fo_st, fo_why, 5);
    zr_enc_kstr (self->enc, "topic", topic->name);
    zr_enc_kint (self->enc, "queue", queue);
    zr_enc_kint (self->enc, "count", (int64_t) count);
    zr_enc_kstr (self->enc, "flush", self->flush_sync ? "sync" : "async");
    zr_enc_str (self->enc, "results");
    zr_enc_array (self->enc, count);
    for (size_t i = 0; i < count; i++) {
        char store_id [ZR_STORE_ID_MAX + 1];
        snprintf (store_id, sizeof store_id, "%s:%s:%d:%" PRId64,
                  zr_store_group (self->store), topic->name, (int) queue,
                  first + (int64_t) i);
        zr_enc_map (self->enc, 3);
        zr_enc_kstr (self->enc, "id", ids [i]);
        zr_enc_kstr (self->enc, "store_id", store_id);
        zr_enc_kint (self->enc, "offset", first + (int64_t) i);
    }
    s_send_reply (self, route, NULL);
    free (ids);
    return;
rejected:
    free (ids);
    self->stats.sends_rejected++;
}

//  --------------------------------------------------------------------
//  Delayed messages (protocol.md section 12, broker/delay.h)

//  Stores a delayed SEND as a timer (its own commit) and answers SEND_OK
//  with the due time. queue is the explicit queue or -1.
static void
s_delay_send (broker_t *self, route_t *route, const zr_obj_t *h,
              topic_t *topic, int64_t queue, const char *id,
              const char *tags, size_t tags_len, const char *keys,
              size_t keys_len, int64_t born, const void *body,
              size_t body_size, int64_t due)
{
    const char *shard = NULL;
    size_t shard_len = 0;
    if (queue >= 0
    ||  zr_field_str (h, "shard", &shard, &shard_len) != ZR_FIELD_OK)
        shard = NULL;
    s_batch_commit (self);
    zr_enc_t *enc = zr_enc_new ();
    if (zr_delay_timer_encode (enc, topic->name, id, tags, tags_len, keys,
                               keys_len, zr_obj_get (h, "props"), born,
                               queue, shard, shard_len, due, body,
                               body_size)) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'props' must be a map of strings");
        goto failed;
    }
    //  The stored record adds store_id, offset, stored and DELIVER_AT.
    if (zr_enc_size (enc) - body_size + 160 > HEADER_MAX) {
        s_reply_error (self, route, ZR_MSG_TOO_LARGE,
                       "message properties are %zu bytes, the limit is %d",
                       zr_enc_size (enc) - body_size + 160, HEADER_MAX);
        goto failed;
    }
    zr_store_batch_timer_put (self->store, due, zr_enc_data (enc),
                              zr_enc_size (enc), NULL);
    if (s_retry_commit (self)) {
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "store write failed, message not stored");
        goto failed;
    }
    zr_enc_destroy (&enc);
    zr_retry_timer_added (self->retry, due);
    self->stats.sends_ok++;
    self->stats.bytes_in += body_size;
    zr_status_t fo_st = ZR_SEND_OK;
    const char *fo_why = NULL;
    char fo_reason [256];
    s_failover_may_ack (self, &fo_st, &fo_why, fo_reason, sizeof fo_reason);
    s_reply_begin (self, route, fo_st, fo_why, 4);
    zr_enc_kstr (self->enc, "id", id);
    zr_enc_kstr (self->enc, "topic", topic->name);
    zr_enc_kint (self->enc, "deliver_at", due);
    zr_enc_kstr (self->enc, "flush", self->flush_sync ? "sync" : "async");
    s_send_reply (self, route, NULL);
    return;
failed:
    zr_enc_destroy (&enc);
    if (route->oneway)
        self->stats.oneway_rejected++;
    else
        self->stats.sends_rejected++;
}

//  Moves a due delayed message (a decoded timer value) into its topic:
//  the explicit queue, else the shard's, else round robin. A topic gone
//  meanwhile is created again with auto-create, else the message is
//  dropped (logged). Returns -1 on a store error (try again later).
static int
s_delay_deliver (broker_t *self, const char *name, const zr_obj_t *root,
                 const void *body, size_t body_size)
{
    int64_t queue, due;
    const char *shard;
    size_t shard_len;
    zr_delay_timer_target (root, &queue, &shard, &shard_len, &due);
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic && self->auto_create) {
        const char *reason = NULL;
        topic = s_topic_create (self, name, self->default_queues, &reason);
        if (!topic) {
            zsys_error ("broker: cannot create %s for a delayed message: "
                        "%s", name, reason);
            return -1;
        }
    }
    if (!topic) {
        zsys_error ("broker: dropping a delayed message to %s: the topic "
                    "no longer exists", name);
        return 0;
    }
    if (queue < 0 && shard)
        queue = s_fnv1a (shard, shard_len) % (uint32_t) topic->queues;
    char at [24];
    snprintf (at, sizeof at, "%" PRId64, due);
    const char *extra [] = { "DELIVER_AT", at, NULL };
    char reason [256];
    if (s_append_from_map (self, topic, (int) queue, root, extra, body,
                           body_size, reason, sizeof reason))
        zsys_error ("broker: dropping a delayed message to %s: %s", name,
                    reason);
    return 0;
}

//  Time to the next timer, ms (-1: none).
static int64_t
s_retry_timeout (broker_t *self)
{
    if (!self->started || !self->retry)
        return -1;
    int64_t due = zr_retry_next_due (self->retry, self->store);
    if (due == -1)
        return -1;
    int64_t left = due - zclock_time ();
    return left < 0 ? 0 : left;
}

//  A due timer, copied out of the store.
typedef struct {
    uint8_t key [ZR_STORE_TIMER_KEY];
    zchunk_t *value;
} due_t;

static void
s_due_collect (const void *key, size_t key_size, int64_t due,
               const void *value, size_t size, void *arg)
{
    zlistx_t *list = (zlistx_t *) arg;
    due_t *d = (due_t *) zmalloc (sizeof (due_t));
    memcpy (d->key, key, ZR_STORE_TIMER_KEY);
    d->value = zchunk_new (value, size);
    zlistx_add_end (list, d);
}

//  Moves due timers (up to ZR_RETRY_FIRE_MAX per turn) to their target
//  topics: each append and its timer's delete are in one batch, so a
//  crash neither loses nor repeats a retry.
static void
s_retry_fire (broker_t *self)
{
    if (!self->retry)
        return;
    int64_t now = zclock_time ();
    int64_t next = zr_retry_next_due (self->retry, self->store);
    if (next == -1 || next > now)
        return;
    zlistx_t *list = zlistx_new ();
    int count = zr_store_timer_read (self->store, now, ZR_RETRY_FIRE_MAX,
                                     s_due_collect, list);
    bool failed = count < 0;
    due_t *d = (due_t *) zlistx_first (list);
    while (d && !failed) {
        zr_hdr_t *hdr = NULL;
        char name [ZR_NAME_MAX + 1];
        const void *body = NULL;
        size_t body_size = 0;
        if (zr_retry_timer_decode (zchunk_data (d->value),
                                   zchunk_size (d->value), &hdr, name,
                                   &body, &body_size)
        ||  !s_valid_name (name, strlen (name)))
            zsys_error ("broker: dropping a damaged retry timer (%zu "
                        "bytes)", zchunk_size (d->value));
        else
        if (zr_delay_timer_is (zr_hdr_root (hdr))) {
            if (s_delay_deliver (self, name, zr_hdr_root (hdr), body,
                                 body_size)) {
                failed = true;
                zr_hdr_destroy (&hdr);
                break;
            }
        }
        else {
            topic_t *topic = s_group_topic_get (self, name);
            if (!topic) {
                failed = true;
                zr_hdr_destroy (&hdr);
                break;
            }
            char reason [256];
            if (s_append_from_map (self, topic, -1, zr_hdr_root (hdr), NULL,
                                   body, body_size, reason, sizeof reason))
                zsys_error ("broker: dropping a retry to %s: %s", name,
                            reason);
        }
        zr_store_batch_timer_delete (self->store, d->key,
                                     ZR_STORE_TIMER_KEY);
        zr_hdr_destroy (&hdr);
        d = (due_t *) zlistx_next (list);
    }
    if (!failed && s_retry_commit (self))
        failed = true;
    //  After a failure try again in a second; else re-read the next due.
    zr_retry_timers_changed (self->retry, failed ? now + 1000 : -1);
    d = (due_t *) zlistx_first (list);
    while (d) {
        zchunk_destroy (&d->value);
        free (d);
        d = (due_t *) zlistx_next (list);
    }
    zlistx_destroy (&list);
}

//  Walks the unresent dead letters of a group, oldest first.
typedef struct {
    broker_t *self;
    const char *group;
    int max;                //  most to visit
    int count;              //  visited (listed or resent)
    int64_t last;           //  last offset read
    bool damaged;
    bool resend;            //  DLQ_RESEND: append to retry, mark
    const zr_obj_t *ids;    //  resend only these ids (NULL: all)
    topic_t *retry;         //  resend target
    bool failed;            //  resend append failed
} dlq_walk_t;

static bool
s_id_listed (const zr_obj_t *ids, const char *id, size_t len)
{
    for (size_t i = 0; i < zr_obj_size (ids); i++) {
        const char *s;
        size_t slen;
        if (zr_obj_str (zr_obj_at (ids, i), &s, &slen) == ZR_FIELD_OK
        &&  slen == len && memcmp (s, id, len) == 0)
            return true;
    }
    return false;
}

static void
s_dlq_visit (int64_t offset, const void *record, size_t size, void *arg)
{
    dlq_walk_t *w = (dlq_walk_t *) arg;
    w->last = offset;
    if (w->damaged || w->failed || w->count >= w->max)
        return;
    const void *meta, *body;
    size_t meta_size, body_size;
    if (zr_retry_record_split (record, size, &meta, &meta_size, &body,
                               &body_size)) {
        w->damaged = true;
        return;
    }
    zr_hdr_t *hdr = zr_hdr_decode (meta, meta_size, NULL);
    const zr_obj_t *map = hdr ? zr_hdr_root (hdr) : NULL;
    const char *id = "";
    size_t id_len = 0;
    if (!map || zr_field_str (map, "id", &id, &id_len) != ZR_FIELD_OK) {
        zr_hdr_destroy (&hdr);
        w->damaged = true;
        return;
    }
    char mark [ZR_NAME_MAX + 128];
    zr_retry_mark_name (mark, sizeof mark, w->group, offset, id, id_len);
    int marked = zr_store_mark_exists (w->self->store, mark);
    if (marked < 0)
        w->damaged = true;
    else
    if (marked == 0 && !w->resend) {
        zchunk_extend (w->self->scratch, meta, meta_size);
        zlistx_add_end (w->self->bodies, zframe_new (body, body_size));
        w->count++;
    }
    else
    if (marked == 0 && (!w->ids || s_id_listed (w->ids, id, id_len))) {
        zr_retry_history_t history;
        zr_retry_history (&history, map, NULL, 0, 0);
        char reason [256];
        if (s_append_from_map (w->self, w->retry, -1, map, history.kv, body,
                               body_size, reason, sizeof reason)) {
            zsys_error ("broker: resend of dead letter %s: %s", mark,
                        reason);
            w->failed = true;
        }
        else {
            zr_store_batch_mark_put (w->self->store, mark);
            w->count++;
        }
    }
    zr_hdr_destroy (&hdr);
}

//  Walks the dead letters of topic dlq. Returns 0 or -1 (read error or
//  damaged record).
static int
s_dlq_walk (broker_t *self, topic_t *dlq, dlq_walk_t *w)
{
    for (int q = 0; q < dlq->queues && w->count < w->max; q++) {
        int64_t offset = dlq->queue [q].min;
        while (offset < dlq->queue [q].vis && w->count < w->max) {
            w->last = -1;
            int n = zr_store_read (self->store, dlq->name, q, offset, 256,
                                   SIZE_MAX, s_dlq_visit, w);
            if (n < 0 || w->damaged || w->failed)
                return -1;
            if (n == 0 || w->last < offset)
                break;
            offset = w->last + 1;
            if (w->resend && self->recbuf_size >= BATCH_BYTES_MAX
            &&  s_retry_commit (self))
                return -1;
        }
    }
    return 0;
}

static void
s_cmd_dlq_list (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2];
    int64_t max_count;
    if (s_need_group (self, route, h, group)
    ||  s_need_int (self, route, h, "max_count", &max_count, false, 100, 1,
                    PULL_COUNT_MAX))
        return;
    char name [ZR_NAME_MAX + 1];
    s_group_topic (name, "%DLQ%", group);
    zchunk_set (self->scratch, "", 0);
    zlistx_purge (self->bodies);
    dlq_walk_t w = { self, group, (int) max_count, 0, -1, false, false,
                     NULL, NULL, false };
    topic_t *dlq = (topic_t *) zhashx_lookup (self->topics, name);
    if (dlq && s_dlq_walk (self, dlq, &w)) {
        zlistx_purge (self->bodies);
        s_reply_error (self, route, ZR_STORE_ERROR,
                       "cannot read %s (damaged record?)", name);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_str (self->enc, "msgs");
    zr_enc_array (self->enc, (size_t) w.count);
    zr_enc_raw (self->enc, zchunk_data (self->scratch),
                zchunk_size (self->scratch));
    s_send_reply (self, route, self->bodies);
    zlistx_purge (self->bodies);
}

static void
s_cmd_dlq_resend (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 2];
    if (s_need_group (self, route, h, group))
        return;
    const zr_obj_t *ids = zr_obj_get (h, "ids");
    if (ids && zr_obj_is_nil (ids))
        ids = NULL;
    if (ids && !zr_obj_is_array (ids)) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'ids' must be an array of message ids");
        return;
    }
    for (size_t i = 0; ids && i < zr_obj_size (ids); i++) {
        const char *s;
        size_t len;
        if (zr_obj_str (zr_obj_at (ids, i), &s, &len) != ZR_FIELD_OK) {
            s_reply_error (self, route, ZR_MALFORMED,
                           "field 'ids' must be an array of message ids");
            return;
        }
        if (!s_valid_id (s, len)) {
            s_reply_error (self, route, ZR_BAD_ARGUMENT,
                           "'%.*s' is not a message id (%d hex digits)",
                           (int) (len > 40 ? 40 : len), s, ZR_MSG_ID_LEN);
            return;
        }
    }
    if (self->disk_full) {
        s_reply_error (self, route, ZR_DISK_FULL,
                       "free disk space is below the threshold; not done");
        return;
    }
    char name [ZR_NAME_MAX + 1];
    s_group_topic (name, "%DLQ%", group);
    topic_t *dlq = (topic_t *) zhashx_lookup (self->topics, name);
    dlq_walk_t w = { self, group, INT_MAX, 0, -1, false, true, ids, NULL,
                     false };
    if (dlq && (!ids || zr_obj_size (ids) > 0)) {
        char retry [ZR_NAME_MAX + 1];
        s_group_topic (retry, "%RETRY%", group);
        w.retry = s_group_topic_get (self, retry);
        if (!w.retry) {
            s_reply_error (self, route, ZR_STORE_ERROR,
                           "cannot create topic '%s'", retry);
            return;
        }
        if (s_dlq_walk (self, dlq, &w) || s_retry_commit (self)) {
            s_retry_rollback (self);
            s_reply_error (self, route, ZR_STORE_ERROR,
                           "cannot resend from %s (store error or damaged "
                           "record)", name);
            return;
        }
    }
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_kint (self->enc, "resent", w.count);
    s_send_reply (self, route, NULL);
}

//  --------------------------------------------------------------------
//  Transactions (protocol.md section 13). The logic is in broker/txn.c;
//  these are the hooks that need the broker's queues and replies.

//  SEND with txn: true: stores a half message in its own commit and
//  answers SEND_OK with its txn_id. Returns false (nothing done) for a
//  plain SEND.
static bool
s_txn_send (broker_t *self, route_t *route, const zr_obj_t *h,
            topic_t *topic, int64_t queue, const char *id_in, bool oneway,
            const void *body, size_t body_size)
{
    char reason [256];
    int wanted = zr_txn_wanted (h, reason, sizeof reason);
    if (wanted == 0 || !self->txn)
        return false;
    if (oneway) {
        self->stats.oneway_rejected++;
        zsys_warning ("broker: a oneway transactional SEND was dropped: it "
                      "needs its reply");
        return true;
    }
    zr_status_t status = ZR_MALFORMED;
    if (wanted < 0)
        goto rejected;
    if (zr_delay_requested (h)) {
        status = ZR_BAD_ARGUMENT;
        snprintf (reason, sizeof reason, "a transactional message cannot "
                  "be delayed");
        goto rejected;
    }
    if (queue < 0) {
        const char *shard;
        size_t shard_len;
        int rc = zr_field_str (h, "shard", &shard, &shard_len);
        if (rc == ZR_FIELD_TYPE) {
            snprintf (reason, sizeof reason,
                      "field 'shard' must be a string");
            goto rejected;
        }
        if (rc == ZR_FIELD_OK)
            queue = s_fnv1a (shard, shard_len) % (uint32_t) topic->queues;
        else
            queue = topic->round_robin++ % (uint32_t) topic->queues;
    }
    if (s_client_take (self, route)) {
        self->stats.busy++;
        status = ZR_BUSY;
        snprintf (reason, sizeof reason, "client has %d requests in "
                  "flight; not stored, retry later", self->max_inflight);
        goto rejected;
    }
    char id [ZR_MSG_ID_LEN + 1], txn_id [ZR_TXN_ID_LEN + 1];
    if (*id_in)
        snprintf (id, sizeof id, "%s", id_in);
    else
        s_make_id (self, id);
    status = zr_txn_half_put (self->txn, self->store, h, topic->name,
                              (int) queue, id, body, body_size, txn_id,
                              reason, sizeof reason);
    if (status != ZR_OK)
        goto rejected;
    if (s_retry_commit (self)) {
        zr_txn_forget (self->txn, txn_id);
        status = ZR_STORE_ERROR;
        snprintf (reason, sizeof reason, "store write failed; half message "
                  "not stored");
        goto rejected;
    }
    self->stats.sends_ok++;
    self->stats.bytes_in += body_size;
    zr_status_t fo_st = ZR_SEND_OK;
    const char *fo_why = NULL;
    char fo_reason [256];
    s_failover_may_ack (self, &fo_st, &fo_why, fo_reason, sizeof fo_reason);
    s_reply_begin (self, route, fo_st, fo_why, 5);
    zr_enc_kstr (self->enc, "id", id);
    zr_enc_kstr (self->enc, "txn_id", txn_id);
    zr_enc_kstr (self->enc, "topic", topic->name);
    zr_enc_kint (self->enc, "queue", queue);
    zr_enc_kstr (self->enc, "flush", self->flush_sync ? "sync" : "async");
    s_send_reply (self, route, NULL);
    return true;

rejected:
    self->stats.sends_rejected++;
    s_reply_error (self, route, status, "%s", reason);
    return true;
}

static void
s_cmd_end_txn (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char reason [256];
    zr_txn_end_t end;
    zr_txn_half_t half;
    memset (&half, 0, sizeof half);
    zr_status_t status = zr_txn_end_parse (h, &end, reason, sizeof reason);
    if (status == ZR_OK)
        status = zr_txn_half_read (self->txn, self->store, &end, &half,
                                   reason, sizeof reason);
    if (status != ZR_OK) {
        s_reply_error (self, route, status, "%s", reason);
        return;
    }
    topic_t *topic = NULL;
    int64_t offset = -1;
    char id [ZR_MSG_ID_LEN + 1] = "";
    if (end.commit) {
        if (self->disk_full) {
            s_reply_error (self, route, ZR_DISK_FULL, "free disk space is "
                           "below the threshold; transaction %s still "
                           "unresolved", end.txn_id);
            goto done;
        }
        topic = (topic_t *) zhashx_lookup (self->topics, half.topic);
        if (!topic || half.queue >= topic->queues) {
            s_reply_error (self, route, ZR_TOPIC_NOT_FOUND, "topic '%s' "
                           "(queue %d) of transaction %s does not exist; "
                           "the half message stays until rolled back",
                           half.topic, half.queue, end.txn_id);
            goto done;
        }
        const zr_obj_t *map = zr_hdr_root (half.hdr);
        const char *s = "", *tags = "", *keys = "";
        size_t len = 0, tags_len = 0, keys_len = 0;
        if (zr_field_str (map, "id", &s, &len) == ZR_FIELD_OK
        &&  s_valid_id (s, len)) {
            memcpy (id, s, len);
            id [len] = 0;
        }
        else
            s_make_id (self, id);
        if (zr_field_str (map, "tags", &tags, &tags_len) != ZR_FIELD_OK)
            tags_len = 0;
        if (zr_field_str (map, "keys", &keys, &keys_len) != ZR_FIELD_OK)
            keys_len = 0;
        int64_t born = 0;
        if (zr_field_int (map, "born", &born) != ZR_FIELD_OK || born < 0)
            born = 0;
        offset = topic->queue [half.queue].next;
        status = s_msg_append (self, NULL, true, topic, half.queue, id,
                               tags_len ? tags : "", tags_len,
                               keys_len ? keys : "", keys_len,
                               zr_obj_get (map, "props"), NULL, born,
                               half.body, half.body_size, reason,
                               sizeof reason);
        if (status != ZR_OK) {
            s_retry_rollback (self);
            s_reply_error (self, route, status, "%s", reason);
            goto done;
        }
    }
    zr_txn_batch_resolve (self->txn, self->store, end.txn_id);
    if (s_retry_commit (self)) {
        s_reply_error (self, route, ZR_STORE_ERROR, "store write failed; "
                       "transaction %s still unresolved, retry",
                       end.txn_id);
        goto done;
    }
    zr_txn_resolved (self->txn, end.txn_id, end.commit);
    if (end.commit) {
        char store_id [ZR_STORE_ID_MAX + 1];
        snprintf (store_id, sizeof store_id, "%s:%s:%d:%" PRId64,
                  zr_store_group (self->store), topic->name, half.queue,
                  offset);
        s_reply_begin (self, route, ZR_OK, NULL, 7);
        zr_enc_kstr (self->enc, "txn_id", end.txn_id);
        zr_enc_kstr (self->enc, "action", "commit");
        zr_enc_kstr (self->enc, "id", id);
        zr_enc_kstr (self->enc, "store_id", store_id);
        zr_enc_kstr (self->enc, "topic", topic->name);
        zr_enc_kint (self->enc, "queue", half.queue);
        zr_enc_kint (self->enc, "offset", offset);
    }
    else {
        s_reply_begin (self, route, ZR_OK, NULL, 2);
        zr_enc_kstr (self->enc, "txn_id", end.txn_id);
        zr_enc_kstr (self->enc, "action", "rollback");
    }
    s_send_reply (self, route, NULL);
done:
    zr_txn_half_free (&half);
}

static void
s_cmd_producer_heartbeat (broker_t *self, route_t *route, const zr_obj_t *h)
{
    char reason [256];
    zr_status_t status = zr_txn_heartbeat (self->txn, h, route->identity,
                                           route->identity_size,
                                           route->delimiter, reason,
                                           sizeof reason);
    if (status != ZR_OK) {
        s_reply_error (self, route, status, "%s", reason);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 3);
    zr_enc_kint (self->enc, "heartbeat_ms", zr_txn_heartbeat_ms (self->txn));
    zr_enc_kint (self->enc, "producer_expiry_ms",
                 zr_txn_expiry_ms (self->txn));
    zr_enc_kint (self->enc, "txn_check_ms", zr_txn_check_ms (self->txn));
    s_send_reply (self, route, NULL);
}

//  Reads the transaction settings and makes the state. Returns 0, or -1
//  with *err.
static int
s_txn_configure (broker_t *self, char **err)
{
    const char *names [] = { "txn-check-ms", "txn-max-checks",
                             "producer-expiry-ms" };
    int64_t lo [] = { 10, 1, 30 }, hi [] = { 86400000, 1000, 3600000 };
    int64_t value [3];
    for (int i = 0; i < 3; i++) {
        const char *text = zr_setting_get (self->cfg, "broker",
                                           zr_broker_settings, names [i]);
        if (zr_setting_parse_int (text, &value [i])
        ||  value [i] < lo [i] || value [i] > hi [i]) {
            *err = zsys_sprintf ("setting %s: '%s' is not a number in %"
                                 PRId64 "..%" PRId64, names [i],
                                 text ? text : "", lo [i], hi [i]);
            return -1;
        }
    }
    zr_txn_destroy (&self->txn);
    self->txn = zr_txn_new (value [0], value [1], value [2]);
    return 0;
}

//  --------------------------------------------------------------------
//  Reading requests

//  --------------------------------------------------------------------
//  Replication hooks (broker/repl.c, protocol section 16)

//  Commands a slave serves; every other one is a write: NOT_MASTER.
static bool
s_repl_write_cmd (const char *cmd)
{
    static const char *reads [] = {
        "PING", "PULL", "GET_OFFSETS", "QUERY_OFFSET", "TOPIC_LIST",
        "TOPIC_INFO", "STATS", "GET_MSG", "DIGEST", "GROUP_STATUS",
        "DLQ_LIST", NULL
    };
    for (int i = 0; reads [i]; i++)
        if (streq (cmd, reads [i]))
            return false;
    return true;
}

//  DIGEST {seq}: OK {seq, hash} with h(seq), the current one without
//  seq; NOT_FOUND when the replication log no longer holds seq.
static void
s_cmd_digest (broker_t *self, route_t *route, const zr_obj_t *h)
{
    int64_t seq;
    uint64_t last = zr_store_seq (self->store);
    if (s_need_int (self, route, h, "seq", &seq, false, (int64_t) last, 0,
                    INT64_MAX))
        return;
    unsigned char hash [ZR_STORE_HASH_LEN];
    int rc = 0;
    if ((uint64_t) seq == last)
        memcpy (hash, zr_store_hash (self->store), ZR_STORE_HASH_LEN);
    else
    if ((uint64_t) seq > last)
        rc = 1;
    else
        rc = zr_store_repl_hash (self->store, (uint64_t) seq, hash);
    if (rc) {
        s_reply_error (self, route, rc < 0 ? ZR_STORE_ERROR : ZR_NOT_FOUND,
                       "no hash for batch %" PRId64 " (last %" PRIu64 ")",
                       seq, last);
        return;
    }
    char hex [ZR_STORE_HASH_LEN * 2 + 1];
    for (int i = 0; i < ZR_STORE_HASH_LEN; i++)
        snprintf (hex + i * 2, 3, "%02x", hash [i]);
    s_reply_begin (self, route, ZR_OK, NULL, 2);
    zr_enc_kint (self->enc, "seq", seq);
    zr_enc_kstr (self->enc, "hash", hex);
    s_send_reply (self, route, NULL);
}

static void
s_repl_topic (const char *name, int queues, void *arg)
{
    broker_t *self = (broker_t *) arg;
    if (queues < 1 || queues > QUEUES_MAX)
        return;
    topic_t *topic = (topic_t *) zhashx_lookup (self->topics, name);
    if (!topic) {
        s_topic_add (self, name, queues);
        self->topics_grew = true;
        return;
    }
    if (queues > topic->queues) {
        s_topic_grow (topic, queues);
        self->topics_grew = true;
    }
    for (int q = 0; q < topic->queues; q++) {
        int64_t min = 0, max = 0;
        if (zr_store_queue_bounds (self->store, name, q, &min, &max))
            continue;
        queue_t *qu = &topic->queue [q];
        qu->touched = max > qu->max;
        qu->min = min;
        qu->max = max;
        qu->vis = max;
        qu->next = max;
    }
}

//  Slave: batches were applied; the topics and queue bounds in memory
//  follow the store, and parked pulls wake.
static void
s_repl_reload (broker_t *self)
{
    self->topics_grew = false;
    zr_store_topic_foreach (self->store, s_repl_topic, self);
    //  A topic new here (or grown) goes to the nameservers, so routes
    //  list this slave for it (clients read from slaves).
    if (self->topics_grew)
        s_state_changed (self);
    s_wake_waiters (self);
    topic_t *topic = (topic_t *) zhashx_first (self->topics);
    while (topic) {
        for (int q = 0; q < topic->queues; q++)
            topic->queue [q].touched = false;
        topic = (topic_t *) zhashx_next (self->topics);
    }
}

//  Handles one request: frames[0] is the identity.
static void
s_handle (broker_t *self, zmq_msg_t *frames, size_t count, bool truncated)
{
    self->stats.requests++;
    route_t route;
    memset (&route, 0, sizeof route);
    size_t idsize = zmq_msg_size (&frames [0]);
    if (idsize == 0 || idsize > IDENTITY_MAX)
        return;     //  cannot answer it
    memcpy (route.identity, zmq_msg_data (&frames [0]), idsize);
    route.identity_size = idsize;
    size_t first = 1;
    if (count > 2 && zmq_msg_size (&frames [1]) == 0) {
        route.delimiter = true;
        first = 2;
    }
    if (count <= first || truncated) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       truncated ? "too many frames in one request"
                                 : "request has no header frame");
        return;
    }
    zmq_msg_t *header = &frames [first];
    if (zmq_msg_size (header) > FRAME_HEADER_MAX) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "header frame is %zu bytes, the limit is %d",
                       zmq_msg_size (header), FRAME_HEADER_MAX);
        return;
    }
    const char *err = NULL;
    zr_hdr_t *hdr = zr_hdr_decode (zmq_msg_data (header),
                                   zmq_msg_size (header), &err);
    if (!hdr) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "header is not msgpack: %s", err);
        return;
    }
    const zr_obj_t *h = zr_hdr_root (hdr);
    int64_t rid = 0, version = 0;
    char cmd [32];
    if (!zr_obj_is_map (h)) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "header must be a msgpack map");
        goto done;
    }
    int rc = zr_field_int (h, "rid", &rid);
    if (rc != ZR_FIELD_OK || rid < 0) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "field 'rid' must be a non-negative integer");
        goto done;
    }
    route.rid = (uint64_t) rid;
    if (zr_field_int (h, "v", &version) != ZR_FIELD_OK) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "field 'v' (protocol version) must be an integer");
        goto done;
    }
    if (version != ZR_PROTOCOL_VERSION) {
        s_reply_error (self, &route, ZR_BAD_VERSION,
                       "protocol version %" PRId64 " is not spoken here; "
                       "this broker speaks 1", version);
        goto done;
    }
    const char *cmdstr;
    size_t cmdlen;
    if (zr_field_str (h, "cmd", &cmdstr, &cmdlen) != ZR_FIELD_OK) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "field 'cmd' must be a command name string");
        goto done;
    }
    if (cmdlen >= sizeof cmd || memchr (cmdstr, 0, cmdlen)) {
        s_reply_error (self, &route, ZR_UNKNOWN_COMMAND,
                       "unknown command '%.*s...'", 16, cmdstr);
        goto done;
    }
    memcpy (cmd, cmdstr, cmdlen);
    cmd [cmdlen] = 0;
    zmq_msg_t *bodies = &frames [first + 1];
    size_t body_count = count - first - 1;
    if (zr_repl_is_slave (self->repl) && s_repl_write_cmd (cmd)) {
        s_reply_begin (self, &route, ZR_NOT_MASTER,
                       "this broker is a slave; send writes to the master",
                       1);
        zr_enc_kstr (self->enc, "master", zr_repl_master (self->repl));
        s_send_reply (self, &route, NULL);
        goto done;
    }
    if ((self->pr_state || self->pr_holding) && s_repl_write_cmd (cmd)
    &&  strneq (cmd, "PROMOTE") && s_promote_park (self, &route))
        goto done;
    if (self->failover && s_repl_write_cmd (cmd) && s_failover_refuse (self,
                                                                   &route))
        goto done;
    if (self->pr_state && s_repl_write_cmd (cmd)
    &&  s_promote_refuse (self, &route, cmd))
        goto done;
    if (streq (cmd, "SEND")) {
        s_ack_watch (self, &route);
        s_cmd_send (self, &route, h, bodies, body_count);
        if ((int) self->pending_count >= self->batch_max)
            s_batch_commit (self);
        goto done;
    }
    if (streq (cmd, "SEND_BATCH")) {
        s_batch_commit (self);
        s_ack_watch (self, &route);
        s_cmd_send_batch (self, &route, h, bodies, body_count);
        goto done;
    }
    //  Every other command sees the sends before it.
    s_batch_commit (self);
    s_ack_watch (self, &route);
    if (body_count) {
        self->stats.malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "%s takes no body frames", cmd);
    }
    else
    if (streq (cmd, "DIGEST"))
        s_cmd_digest (self, &route, h);
    else
    if (streq (cmd, "PING"))
        s_cmd_ping (self, &route, h);
    else
    if (streq (cmd, "PULL"))
        s_cmd_pull (self, &route, h);
    else
    if (streq (cmd, "GET_OFFSETS"))
        s_cmd_get_offsets (self, &route, h);
    else
    if (streq (cmd, "COMMIT_OFFSET"))
        s_cmd_commit_offset (self, &route, h);
    else
    if (streq (cmd, "QUERY_OFFSET"))
        s_cmd_query_offset (self, &route, h);
    else
    if (streq (cmd, "TOPIC_CREATE"))
        s_cmd_topic_create (self, &route, h);
    else
    if (streq (cmd, "TOPIC_DELETE"))
        s_cmd_topic_delete (self, &route, h);
    else
    if (streq (cmd, "TOPIC_LIST"))
        s_cmd_topic_list (self, &route, h);
    else
    if (streq (cmd, "TOPIC_INFO"))
        s_cmd_topic_info (self, &route, h);
    else
    if (streq (cmd, "STATS"))
        s_cmd_stats (self, &route, h);
    else
    if (streq (cmd, "FIND"))
        s_cmd_find (self, &route, h);
    else
    if (streq (cmd, "GET_MSG"))
        s_cmd_get_msg (self, &route, h);
    else
    if (streq (cmd, "SEND_BACK"))
        s_cmd_send_back (self, &route, h);
    else
    if (streq (cmd, "DLQ_LIST"))
        s_cmd_dlq_list (self, &route, h);
    else
    if (streq (cmd, "DLQ_RESEND"))
        s_cmd_dlq_resend (self, &route, h);
    else
    if (streq (cmd, "HEARTBEAT"))
        s_cmd_heartbeat (self, &route, h);
    else
    if (streq (cmd, "LEAVE"))
        s_cmd_leave (self, &route, h);
    else
    if (streq (cmd, "LOCK"))
        s_cmd_lock (self, &route, h);
    else
    if (streq (cmd, "UNLOCK"))
        s_cmd_unlock (self, &route, h);
    else
    if (streq (cmd, "GROUP_STATUS"))
        s_cmd_group_status (self, &route, h);
    else
    if (streq (cmd, "RESET_OFFSET"))
        s_cmd_reset_offset (self, &route, h);
    else
    if (streq (cmd, "END_TXN"))
        s_cmd_end_txn (self, &route, h);
    else
    if (streq (cmd, "PRODUCER_HEARTBEAT"))
        s_cmd_producer_heartbeat (self, &route, h);
    else
    if (streq (cmd, "PROMOTE"))
        s_cmd_promote (self, &route, h);
    else
        s_reply_error (self, &route, ZR_UNKNOWN_COMMAND,
                       "unknown command '%s'", cmd);
done:
    self->ack_route = NULL;
    zr_hdr_destroy (&hdr);
}

//  Reads one request without blocking. Returns the frame count (0: none
//  waiting); *truncated is set when it had more than FRAMES_MAX frames
//  (the rest are read and dropped).
static size_t
s_recv (broker_t *self, zmq_msg_t *frames, bool *truncated)
{
    void *handle = zsock_resolve (self->router);
    size_t count = 0;
    *truncated = false;
    while (true) {
        zmq_msg_t *frame = &frames [count < FRAMES_MAX ? count
                                                       : FRAMES_MAX - 1];
        if (count >= FRAMES_MAX) {
            zmq_msg_close (frame);
            *truncated = true;
        }
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, handle, count ? 0 : ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (frame);
            return count < FRAMES_MAX ? count : FRAMES_MAX - 1;
        }
        if (count < FRAMES_MAX)
            count++;
        if (!zmq_msg_more (frame))
            break;
    }
    return count;
}

static void
s_close_frames (zmq_msg_t *frames, size_t count)
{
    for (size_t i = 0; i < count; i++)
        zmq_msg_close (&frames [i]);
}

//  Serves every request waiting on the ROUTER, up to batch-max sends per
//  commit, then commits.
static void
s_serve_router (broker_t *self)
{
    zmq_msg_t frames [FRAMES_MAX];
    for (int i = 0; i < self->batch_max * 4; i++) {
        bool truncated;
        size_t count = s_recv (self, frames, &truncated);
        if (count == 0)
            break;
        s_handle (self, frames, count, truncated);
        s_close_frames (frames, count);
    }
    s_batch_commit (self);
}

//  On the way out: requests still queued are refused.
static void
s_refuse_queued (broker_t *self)
{
    zmq_msg_t frames [FRAMES_MAX];
    for (int i = 0; i < 100000; i++) {
        bool truncated;
        size_t count = s_recv (self, frames, &truncated);
        if (count == 0)
            break;
        route_t route;
        memset (&route, 0, sizeof route);
        size_t idsize = zmq_msg_size (&frames [0]);
        zr_hdr_t *hdr = NULL;
        if (count >= 2 && idsize > 0 && idsize <= IDENTITY_MAX) {
            memcpy (route.identity, zmq_msg_data (&frames [0]), idsize);
            route.identity_size = idsize;
            size_t first = 1;
            if (count > 2 && zmq_msg_size (&frames [1]) == 0) {
                route.delimiter = true;
                first = 2;
            }
            hdr = zr_hdr_decode (zmq_msg_data (&frames [first]),
                                 zmq_msg_size (&frames [first]), NULL);
            int64_t rid = 0;
            bool oneway = false;
            if (hdr && zr_field_int (zr_hdr_root (hdr), "rid", &rid) == 0
            &&  rid >= 0)
                route.rid = (uint64_t) rid;
            if (hdr)
                zr_field_bool (zr_hdr_root (hdr), "oneway", &oneway);
            if (!oneway)
                s_reply_error (self, &route, ZR_SHUTTING_DOWN,
                               "broker is stopping; not done, retry");
        }
        zr_hdr_destroy (&hdr);
        s_close_frames (frames, count);
    }
}

//  --------------------------------------------------------------------
//  Setup

static void
s_check_disk (broker_t *self)
{
    self->disk_free = zr_store_disk_free (self->store);
    bool full = self->disk_free >= 0 && self->disk_free < self->min_free;
    if (full && !self->disk_full)
        zsys_warning ("broker: %" PRId64 " MiB free on %s, below the "
                      "%" PRId64 " MiB threshold: refusing writes",
                      self->disk_free / (1024 * 1024), self->data,
                      self->min_free / (1024 * 1024));
    else
    if (!full && self->disk_full)
        zsys_info ("broker: disk space is back above the threshold");
    self->disk_full = full;
    self->disk_checked = zclock_mono ();
}

//  Reads an int setting within lo..hi. Returns 0, or -1 with *err.
static int
s_setting_int (broker_t *self, const char *name, int64_t lo, int64_t hi,
               int64_t *value, char **err)
{
    const char *text = zr_setting_get (self->cfg, "broker",
                                       zr_broker_settings, name);
    if (zr_setting_parse_int (text, value) || *value < lo || *value > hi) {
        *err = zsys_sprintf ("setting %s: '%s' is not a number in %" PRId64
                             "..%" PRId64, name, text ? text : "", lo, hi);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------
//  Failover hooks (broker/failover.c, protocol section 16)

static int
s_failover_configure (broker_t *self, char **err)
{
    const char *on = zr_setting_get (self->cfg, "broker", zr_broker_settings,
                                     "failover");
    if (zr_setting_parse_bool (on, &self->failover_on)) {
        *err = zsys_sprintf ("setting failover: '%s' is not true or false",
                             on ? on : "");
        return -1;
    }
    if (s_setting_int (self, "ha-heartbeat-ms", 10, 3600000,
                       &self->ha_heartbeat_ms, err)
    ||  s_setting_int (self, "master-dead-ms", 10, 36000000,
                       &self->master_dead_ms, err))
        return -1;
    const char *id = zr_setting_get (self->cfg, "broker", zr_broker_settings,
                                     "broker-id");
    self->broker_id = -1;
    if (id && strneq (id, "auto")
    &&  s_setting_int (self, "broker-id", 0, 1000000, &self->broker_id,
                       err))
        return -1;
    if (self->failover_on && self->broker_id < 0) {
        *err = strdup ("setting broker-id: failover needs an explicit id, "
                       "unique in the group and kept across restarts");
        return -1;
    }
    if (self->failover_on && (streq (self->nameservers, "auto")
                          ||  streq (self->nameservers, "none"))) {
        *err = strdup ("setting failover: needs an explicit --nameserver "
                       "list (leases and votes need a known majority)");
        return -1;
    }
    return 0;
}

//  True when a write may be acknowledged now; else sets *status to
//  NOT_MASTER and *reason (reason buffer of size bytes).
static bool
s_failover_may_ack (broker_t *self, zr_status_t *status, const char **why,
                    char *reason, size_t size)
{
    if (!self->failover || zr_failover_may_ack (self->failover, reason,
                                                size))
        return true;
    *status = ZR_NOT_MASTER;
    *why = reason;
    return false;
}

static int
s_configure (broker_t *self, char **err)
{
    int64_t queues, max_msg, inflight, batch, free_mb;
    const char *flush = zr_setting_get (self->cfg, "broker",
                                        zr_broker_settings, "flush");
    const char *autoc = zr_setting_get (self->cfg, "broker",
                                        zr_broker_settings, "auto-create");
    const char *group = zr_setting_get (self->cfg, "broker",
                                        zr_broker_settings, "group");
    self->data = strdup (zr_setting_get (self->cfg, "broker",
                                         zr_broker_settings, "data"));
    self->group_opt = group && *group ? strdup (group) : NULL;
    if (!flush || (strneq (flush, "async") && strneq (flush, "sync"))) {
        *err = zsys_sprintf ("setting flush: '%s' must be async or sync",
                             flush ? flush : "");
        return -1;
    }
    self->flush_sync = streq (flush, "sync");
    if (zr_setting_parse_bool (autoc, &self->auto_create)) {
        *err = zsys_sprintf ("setting auto-create: '%s' is not true or "
                             "false", autoc ? autoc : "");
        return -1;
    }
    if (self->group_opt
    &&  !s_valid_name (self->group_opt, strlen (self->group_opt))) {
        *err = zsys_sprintf ("setting group: '%s' is not a valid name "
                             "(A-Z a-z 0-9 _ - %% |)", self->group_opt);
        return -1;
    }
    if (s_setting_int (self, "default-queues", 1, QUEUES_MAX, &queues, err)
    ||  s_setting_int (self, "max-msg-size", 1, 256LL * 1024 * 1024,
                       &max_msg, err)
    ||  s_setting_int (self, "max-inflight", 1, 1000000, &inflight, err)
    ||  s_setting_int (self, "batch-max", 1, 100000, &batch, err)
    ||  s_setting_int (self, "min-free-mb", 0, INT64_MAX / (1 << 20),
                       &free_mb, err))
        return -1;
    self->default_queues = (int) queues;
    self->max_msg_size = max_msg;
    self->max_inflight = (int) inflight;
    self->batch_max = (int) batch;
    self->min_free = free_mb * 1024 * 1024;
    int64_t heartbeat, beacon_port;
    if (s_setting_int (self, "heartbeat-ms", 10, 3600000, &heartbeat, err)
    ||  s_setting_int (self, "beacon-port", 1, 65535, &beacon_port, err))
        return -1;
    self->heartbeat_ms = (int) heartbeat;
    self->beacon_port = (int) beacon_port;
    if (s_retry_configure (self, err))
        return -1;
    if (s_txn_configure (self, err))
        return -1;
    const char *max_delay = zr_setting_get (self->cfg, "broker",
                                            zr_broker_settings, "max-delay");
    if (zr_delay_parse_duration (max_delay, &self->max_delay)) {
        *err = zsys_sprintf ("setting max-delay: '%s' is not a duration (a "
                             "number with ms, s, m, h or d)",
                             max_delay ? max_delay : "");
        return -1;
    }
    if (s_setting_int (self, "max-batch-bytes", 1, 1LL << 30,
                       &self->max_batch_bytes, err))
        return -1;
    int64_t member_hb, member_expiry, lease;
    if (s_setting_int (self, "member-heartbeat-ms", 10, 3600000, &member_hb,
                       err)
    ||  s_setting_int (self, "member-expiry-ms", 20, 36000000,
                       &member_expiry, err)
    ||  s_setting_int (self, "lease-ms", 10, 3600000, &lease, err))
        return -1;
    if (member_expiry <= member_hb) {
        *err = zsys_sprintf ("setting member-expiry-ms: %" PRId64 " must be "
                             "more than member-heartbeat-ms (%" PRId64 ")",
                             member_expiry, member_hb);
        return -1;
    }
    self->member_heartbeat_ms = (int) member_hb;
    self->member_expiry_ms = (int) member_expiry;
    self->lease_ms = (int) lease;
    int64_t check_ms;
    if (s_setting_int (self, "default-retention-ms", 0, INT64_MAX / 2,
                       &self->default_retention_ms, err)
    ||  s_setting_int (self, "default-retention-bytes", 0, INT64_MAX / 2,
                       &self->default_retention_bytes, err)
    ||  s_setting_int (self, "retention-check-ms", 10, 3600000, &check_ms,
                       err))
        return -1;
    self->retention_check_ms = (int) check_ms;
    const char *ns = zr_setting_get (self->cfg, "broker",
                                     zr_broker_settings, "nameserver");
    const char *cluster = zr_setting_get (self->cfg, "broker",
                                          zr_broker_settings, "cluster");
    const char *iface = zr_setting_get (self->cfg, "broker",
                                        zr_broker_settings, "interface");
    self->nameservers = strdup (ns && *ns ? ns : "none");
    self->cluster = strdup (cluster && *cluster ? cluster
                                                : "DefaultCluster");
    self->interface = strdup (iface ? iface : "");
    if (!s_valid_name (self->cluster, strlen (self->cluster))) {
        *err = zsys_sprintf ("setting cluster: '%s' is not a valid name",
                             self->cluster);
        return -1;
    }
    return s_failover_configure (self, err);
}

//  The HA (replication) endpoint: --ha-port on the bind host, or the
//  broker port + 1, or an ephemeral port when the broker's is one.
static char *
s_ha_bind (const char *bind, const char *bound, int64_t ha_port)
{
    char first [256];
    snprintf (first, sizeof first, "%s", bind);
    char *comma = strchr (first, ',');
    if (comma)
        *comma = 0;
    char *colon = strrchr (first, ':');
    if (strncmp (first, "tcp://", 6) || !colon)
        return zsys_sprintf ("%s-ha", first);
    *colon = 0;
    if (ha_port > 0)
        return zsys_sprintf ("%s:%" PRId64, first, ha_port);
    if (streq (colon + 1, "*"))
        return zsys_sprintf ("%s:*", first);
    const char *port = strrchr (bound, ':');
    return zsys_sprintf ("%s:%d", first, port ? atoi (port + 1) + 1 : 0);
}

//  The master HA endpoint a slave follows: the one the nameservers named
//  (self->follow), else --master unless fenced (it may be stale), else
//  NULL: the slave waits for the nameservers to name one (s_follow_tick).
//  Sets *err when a slave could never learn of a master.
static const char *
s_follow_master (broker_t *self, const char *role, char **err)
{
    const char *master = zr_setting_get (self->cfg, "broker",
                                         zr_broker_settings, "master");
    if (self->follow)
        return self->follow;
    if (self->follow_ns || (master && !*master))
        master = NULL;
    const char *stored = zr_store_role (self->store);
    bool slave = stored ? streq (stored, "slave")
                        : role && streq (role, "slave");
    if (slave && !master && streq (self->nameservers, "none"))
        *err = strdup ("setting master: a slave needs --master (its "
                       "master's HA endpoint) or --nameserver (to ask "
                       "which broker of its group is master)");
    return master;
}

static int
s_repl_start (broker_t *self, const char *bind, char **err)
{
    int64_t ha_port, min_insync, lag, ack, keep, sndhwm, rcvhwm;
    if (s_setting_int (self, "ha-port", 0, 65535, &ha_port, err)
    ||  s_setting_int (self, "min-insync", 1, 100, &min_insync, err)
    ||  s_setting_int (self, "isr-max-lag-ms", 1, 3600000, &lag, err)
    ||  s_setting_int (self, "slave-ack-timeout-ms", 1, 3600000, &ack, err)
    ||  s_setting_int (self, "repl-log-keep", 1, INT64_MAX / 2, &keep, err)
    ||  s_setting_int (self, "ha-sndhwm", 1, 10000000, &sndhwm, err)
    ||  s_setting_int (self, "ha-rcvhwm", 1, 10000000, &rcvhwm, err))
        return -1;
    char *ha_bind = s_ha_bind (bind ? bind : "",
                               (const char *) zlistx_first (self->endpoints),
                               ha_port);
    char *client = zr_transport_advertise (
        (const char *) zlistx_first (self->endpoints));
    //  Replication costs a standalone broker about 20 % of its async
    //  produce rate (docs/benchmarks.md): off unless asked for or the
    //  broker is part of a group (--group, --role).
    const char *role = zr_setting_get (self->cfg, "broker",
                                       zr_broker_settings, "role");
    const char *mode = zr_setting_get (self->cfg, "broker",
                                       zr_broker_settings, "replication");
    if (!mode || !*mode)
        mode = role || zr_setting_get (self->cfg, "broker",
                                       zr_broker_settings, "group")
             ? "async" : "none";
    char *follow_err = NULL;
    const char *master = s_follow_master (self, role, &follow_err);
    if (follow_err) {
        *err = follow_err;
        zstr_free (&ha_bind);
        zstr_free (&client);
        return -1;
    }
    zr_repl_opts_t opts = {
        role, mode,
        ha_bind,
        master,
        client ? client : "", (int) min_insync, (int) lag, (int) ack, keep,
        (int) sndhwm, (int) rcvhwm, self->flush_sync,
        self->failover_on ? self->broker_id : -1
    };
    self->repl = zr_repl_new (self->store, &opts, err);
    zstr_free (&ha_bind);
    zstr_free (&client);
    self->follow_since = zclock_mono ();
    return self->repl ? 0 : -1;
}

//  Replies NOT_MASTER and returns true when a write may not be taken now
//  (fenced, or no majority of leases).
static bool
s_failover_refuse (broker_t *self, route_t *route)
{
    char reason [256];
    if (zr_failover_may_ack (self->failover, reason, sizeof reason))
        return false;
    s_reply_begin (self, route, ZR_NOT_MASTER, reason, 1);
    zr_enc_kstr (self->enc, "master", "");
    s_send_reply (self, route, NULL);
    return true;
}

//  The master's in-sync set shrinks for the high-water mark only once a
//  majority of nameservers recorded the smaller set (protocol section 16).
static void
s_failover_recorded (broker_t *self)
{
    const char *recorded = self->fo_master && self->repl
                         ? zr_failover_recorded (self->failover) : NULL;
    if (recorded)
        zr_repl_recorded (self->repl, recorded, self->fo_isr_ver);
}

//  Tells the failover actor our role, epoch, HWM and in-sync set when
//  they changed (the HWM at most every 50 ms).
static void
s_failover_tell (broker_t *self, bool force)
{
    bool master = !zr_repl_is_slave (self->repl);
    int64_t epoch = (int64_t) zr_store_epoch (self->store);
    uint64_t hwm = self->repl ? zr_repl_hwm (self->repl)
                              : zr_store_seq (self->store);
    char *isr = master && self->repl ? zr_repl_isr_ids (self->repl)
                                     : strdup ("");
    uint64_t isr_ver = master && self->repl
                     ? zr_repl_isr_version (self->repl) : 0;
    int64_t now = zclock_mono ();
    bool term = master != self->fo_master || epoch != self->fo_epoch;
    bool moved = hwm != self->fo_hwm || isr_ver != self->fo_isr_ver
              || !self->fo_isr || strneq (isr, self->fo_isr);
    if (force || term || (moved && now - self->fo_told >= 50)) {
        if (master && (!self->fo_isr || strneq (isr, self->fo_isr)))
            zsys_info ("failover: in-sync set for the nameservers: [%s]",
                       isr);
        bool reregister = self->fo_epoch >= 0 && epoch != self->fo_epoch;
        zr_failover_state (self->failover, master, epoch,
                           (int64_t) (master ? hwm
                                             : zr_store_seq (self->store)),
                           isr);
        self->fo_master = master;
        self->fo_epoch = epoch;
        self->fo_hwm = hwm;
        self->fo_told = now;
        free (self->fo_isr);
        self->fo_isr = isr;
        self->fo_isr_ver = isr_ver;
        isr = NULL;
        if (reregister)
            s_state_changed (self);     //  the registration names the epoch
    }
    free (isr);
    s_failover_recorded (self);
}

//  Elected master of epoch: stop following, persist (epoch, master) and
//  the epoch history, start the master stream, re-register.
static void
s_failover_promote (broker_t *self, int64_t epoch)
{
    char *err = NULL;
    zr_repl_destroy (&self->repl);
    if (zr_repl_promote_store (self->store, (uint64_t) epoch, &err)
    ||  s_repl_start (self, self->repl_bind, &err)) {
        zsys_error ("failover: promotion to master of epoch %" PRId64
                    " failed: %s", epoch, err ? err : "?");
        zstr_free (&err);
        return;
    }
    s_repl_reload (self);
    s_vis_reset (self);
    zsys_info ("failover: promoted to master of epoch %" PRId64 " at seq %"
               PRIu64, epoch, zr_store_seq (self->store));
    s_state_changed (self);
    s_failover_tell (self, true);
}

//  A nameserver knows a higher epoch: stop taking writes (may_ack already
//  refuses) and follow the setting master when one is given.
static void
s_failover_demote (broker_t *self)
{
    s_sync_release (self, false);
    s_vis_reset (self);
    char *err = NULL;
    zr_repl_destroy (&self->repl);
    //  Our --master (if any) may be stale (ourselves, or a dead broker):
    //  follow the master the nameservers name (s_follow_tick).
    self->follow_ns = true;
    zstr_free (&self->follow);
    self->follow_at = 0;
    if (zr_repl_demote_store (self->store, (uint64_t) zr_failover_fenced (
                                  self->failover), &err)
    ||  s_repl_start (self, self->repl_bind, &err)) {
        zsys_error ("failover: cannot become a slave: %s", err ? err : "?");
        zstr_free (&err);
        self->fo_next = INT64_MAX;
        return;
    }
    zsys_info ("failover: fenced (epoch %" PRId64 ", master broker %" PRId64
               "): now a slave; asking the nameservers for the master's HA "
               "endpoint (EPOCH_END then tells whether we hold a tail to "
               "discard)", zr_failover_fenced (self->failover),
               zr_failover_fenced_by (self->failover));
    self->fo_since = zclock_mono ();
    self->fo_next = self->fo_since + self->master_dead_ms;
    s_state_changed (self);
    s_failover_tell (self, true);
}

//  One failover turn of the broker loop.
static void
s_failover_tick (broker_t *self)
{
    int64_t now = zclock_mono ();
    if (!zr_repl_is_slave (self->repl)) {
        char reason [256];
        bool acking = zr_failover_may_ack (self->failover, reason,
                                           sizeof reason);
        if (acking != self->fo_acking) {
            self->fo_acking = acking;
            if (acking)
                zsys_info ("failover: master of epoch %" PRIu64 " holds "
                           "leases from a majority of nameservers: "
                           "acknowledging writes",
                           zr_store_epoch (self->store));
            else
                zsys_warning ("failover: not acknowledging writes: %s",
                              reason);
        }
        if (zr_failover_fenced (self->failover) > 0
        &&  self->fo_next != INT64_MAX)
            s_failover_demote (self);
        else
            s_failover_tell (self, false);
        return;
    }
    s_failover_tell (self, false);
    if (zr_repl_take_diverged (self->repl)) {
        zsys_warning ("failover: our history differs from the master's "
                      "(a tail never acknowledged, from an older epoch): "
                      "taking a full copy");
        zr_repl_full_copy (self->repl);
    }
    int64_t epoch = 0;
    int outcome = zr_failover_outcome (self->failover, &epoch);
    if (outcome > 0) {
        s_failover_promote (self, epoch);
        return;
    }
    if (outcome < 0)
        self->fo_next = now + self->master_dead_ms / 2;
    if (zr_failover_campaigning (self->failover) || now < self->fo_next)
        return;
    int64_t silent = zr_repl_silence_ms (self->repl);
    if (silent < 0)
        silent = now - self->fo_since;
    if (silent <= self->master_dead_ms)
        return;
    int64_t last_epoch = (int64_t) zr_store_epoch (self->store);
    zsys_info ("failover: master silent for %" PRId64 " ms; asking for "
               "epoch %" PRId64 " (last epoch %" PRId64 ", seq %" PRIu64
               ")", silent, last_epoch + 1, last_epoch,
               zr_store_seq (self->store));
    zr_failover_campaign (self->failover, last_epoch + 1, last_epoch,
                          (int64_t) zr_store_seq (self->store));
    self->fo_next = now + self->master_dead_ms / 2;
}

//  --------------------------------------------------------------------
//  Graceful handover: PROMOTE {target, timeout_ms} (zrocket admin
//  promote; protocol section 16, "Graceful handover"). The master stops
//  taking writes (NOT_MASTER), waits until the target has acked its last
//  sequence, resigns its epoch at the nameservers in the target's
//  favour (HA_RESIGN), and sends the target TAKEOVER on the HA ROUTER;
//  the target campaigns at once and, elected, promotes; this broker is
//  then fenced by the higher epoch and demotes (s_failover_demote). The
//  PROMOTE is answered when it is fenced by the target, or with an
//  error after the resignation was withdrawn (writes resume in the
//  same epoch). Nothing here starts by itself.

#define PR_CATCHUP 1            //  writes paused, target catching up
#define PR_RESIGN 2             //  HA_RESIGN sent, waiting for a majority
#define PR_TAKEOVER 3           //  TAKEOVER sent, waiting to be fenced
#define PR_WITHDRAW 4           //  taking the resignation back
#define PR_RESIGN_AGAIN 5       //  not accepted yet: resign again soon
#define PR_CHECK 6              //  target's state asked afresh; writes go on

//  During a handover: refuses a write (NOT_MASTER, the master unknown
//  yet: a routed producer asks its nameserver again and resends) or a
//  second PROMOTE (BUSY). Returns true when it replied.
static bool
s_promote_refuse (broker_t *self, route_t *route, const char *cmd)
{
    if (streq (cmd, "PROMOTE")) {
        s_reply_error (self, route, ZR_BUSY, "a handover to broker %"
                       PRId64 " is running", self->pr_target);
        return true;
    }
    if (self->pr_state == PR_CHECK)
        return false;           //  not admitted yet: writes go on
    s_reply_begin (self, route, ZR_NOT_MASTER, "this master is handing "
                   "over to another broker of its group (admin promote); "
                   "writes are paused", 1);
    zr_enc_kstr (self->enc, "master", "");
    s_send_reply (self, route, NULL);
    return true;
}

#define PR_PARKED_MAX 10000     //  writes held during a pause, at most
#define PR_HOLD_MS 3000         //  after a withdrawal, until leases return

//  During a handover's pause: holds a write (not executed) until the
//  handover ends, then answers it NOT_MASTER (s_promote_release). By
//  then the nameservers name the new master (or this one again), so a
//  routed producer's one resend lands there; an immediate NOT_MASTER
//  made producers spend their retries within the pause. Returns true
//  when it held the write (false: refuse it as before).
static bool
s_promote_park (broker_t *self, route_t *route)
{
    if ((self->pr_state == PR_CHECK && !self->pr_holding) || route->oneway)
        return false;
    if (!self->pr_parked)
        self->pr_parked = zlistx_new ();
    if (zlistx_size (self->pr_parked) >= PR_PARKED_MAX)
        return false;
    route_t *copy = (route_t *) zmalloc (sizeof (route_t));
    *copy = *route;
    zlistx_add_end (self->pr_parked, copy);
    return true;
}

//  Answers every write held during the pause NOT_MASTER with reason.
static void
s_promote_release (broker_t *self, const char *reason)
{
    if (!self->pr_parked)
        return;
    route_t *route;
    while ((route = (route_t *) zlistx_detach (self->pr_parked, NULL))) {
        s_reply_begin (self, route, ZR_NOT_MASTER, reason, 1);
        zr_enc_kstr (self->enc, "master", "");
        s_send_reply (self, route, NULL);
        free (route);
    }
}

//  Ends a handover: answers the PROMOTE (status OK with the new epoch, or
//  an error) and resumes (writes are refused anyway once fenced).
static void
s_promote_end (broker_t *self, zr_status_t status, const char *reason)
{
    int64_t paused = zclock_mono () - self->pr_paused_at;
    if (status == ZR_OK) {
        int64_t epoch = zr_failover_fenced (self->failover);
        zsys_info ("failover: handover done: broker %" PRId64 " is master "
                   "of epoch %" PRId64 "; writes were paused %" PRId64
                   " ms", self->pr_target, epoch, paused);
        s_reply_begin (self, &self->pr_route, ZR_OK, NULL, 4);
        zr_enc_kint (self->enc, "epoch", epoch);
        zr_enc_kint (self->enc, "master_id", self->pr_target);
        zr_enc_kint (self->enc, "seq", (int64_t) self->pr_seq);
        zr_enc_kint (self->enc, "paused_ms", paused);
    }
    else {
        zsys_warning ("failover: handover to broker %" PRId64 " failed: "
                      "%s; writes resume in epoch %" PRId64,
                      self->pr_target, reason, self->pr_epoch);
        s_reply_begin (self, &self->pr_route, status, reason, 2);
        zr_enc_kint (self->enc, "epoch", self->pr_epoch);
        zr_enc_kint (self->enc, "paused_ms", paused);
    }
    s_send_reply (self, &self->pr_route, NULL);
    self->pr_state = 0;
    char why [256];
    if (status == ZR_OK)
        s_promote_release (self, "the master moved to another broker of "
                           "its group (admin promote): ask the "
                           "nameservers and send there");
    else
    if (zr_failover_may_ack (self->failover, why, sizeof why))
        s_promote_release (self, "a handover was withdrawn: this master "
                           "takes writes again; send again");
    else
        //  Its leases come back with the next heartbeat replies: hold
        //  writes until then rather than refuse them (s_promote_tick).
        self->pr_holding = zclock_mono () + PR_HOLD_MS;
}

//  Takes the resignation back (the reply waits for a majority).
static void
s_promote_withdraw (broker_t *self, const char *format, ...)
{
    if (format) {
        va_list args;
        va_start (args, format);
        vsnprintf (self->pr_error, sizeof self->pr_error, format, args);
        va_end (args);
    }
    zr_failover_resign (self->failover, true, self->pr_epoch,
                        (int64_t) self->pr_seq, self->pr_target);
    self->pr_state = PR_WITHDRAW;
    self->pr_next = zclock_mono () + 1000;
}

//  Whether the last INFO lets pr_target take over: a slave in the
//  in-sync set, or one out of it but heard from (catching up, e.g. after
//  a pause), which the handover waits for anyway; a silent one may not.
//  Else false, with the error for the PROMOTE in why (when given).
static bool
s_promote_admit (broker_t *self, char *why, size_t size)
{
    uint64_t acked;
    bool in_sync;
    int64_t heard, lag_ms = 1000;
    char *err = NULL;
    if (s_setting_int (self, "isr-max-lag-ms", 1, 3600000, &lag_ms, &err))
        zstr_free (&err);
    int known = zr_repl_slave_acked (self->repl, self->pr_target, &acked,
                                     &in_sync, &heard);
    if (known == 0 && (in_sync || heard <= lag_ms / 2))
        return true;
    if (why) {
        char *isr = zr_repl_isr_ids (self->repl);
        if (known < 0)
            snprintf (why, size, "broker %" PRId64 " is not a slave of "
                      "this master (group %s; in-sync slaves: [%s])",
                      self->pr_target, zr_store_group (self->store), isr);
        else
            snprintf (why, size, "broker %" PRId64 " is not in the in-sync "
                      "set (acked %" PRIu64 " of %" PRIu64 ", not heard "
                      "from for %" PRId64 " ms; in-sync slaves: [%s]); only "
                      "a live slave can take over", self->pr_target, acked,
                      zr_store_seq (self->store), heard, isr);
        free (isr);
    }
    return false;
}

//  Admitted: pauses writes and waits for the target to catch up.
static void
s_promote_begin (broker_t *self)
{
    int64_t now = zclock_mono ();
    self->pr_state = PR_CATCHUP;
    self->pr_paused_at = now;
    self->pr_deadline = now + self->pr_timeout_ms;
    zsys_info ("failover: handing over to broker %" PRId64 " (admin "
               "promote): writes paused at seq %" PRIu64, self->pr_target,
               zr_store_seq (self->store));
    zr_repl_info_now (self->repl);
}

static void
s_cmd_promote (broker_t *self, route_t *route, const zr_obj_t *h)
{
    int64_t target, timeout_ms;
    if (s_need_int (self, route, h, "target", &target, true, 0, 0, 1000000)
    ||  s_need_int (self, route, h, "timeout_ms", &timeout_ms, false,
                    10000, 100, 600000))
        return;
    if (!self->failover || !self->repl
    ||  zr_repl_mode (self->repl) == ZR_REPL_NONE) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT, "PROMOTE needs a "
                       "master with replication and --failover true");
        return;
    }
    if (target == self->broker_id) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT, "broker %" PRId64
                       " is this master already (epoch %" PRIu64 ")",
                       target, zr_store_epoch (self->store));
        return;
    }
    int64_t now = zclock_mono ();
    self->pr_route = *route;
    self->pr_target = target;
    self->pr_epoch = (int64_t) zr_store_epoch (self->store);
    self->pr_timeout_ms = timeout_ms;
    self->pr_error [0] = 0;
    if (s_promote_admit (self, NULL, 0))
        s_promote_begin (self);
    else {
        //  The last INFO may be up to 200 ms old (a slave that resumed
        //  after a pause looks silent in it): ask the actor afresh and
        //  decide on its answer (s_promote_tick), writes going on.
        self->pr_state = PR_CHECK;
        self->pr_infos = zr_repl_info_count (self->repl) + 2;
        self->pr_next = now + 1000;
        zr_repl_info_now (self->repl);
    }
}

//  One handover turn, before s_failover_tick (which demotes us once
//  fenced). On a slave: a TAKEOVER from our master starts a campaign.
static void
s_promote_tick (broker_t *self)
{
    int64_t now = zclock_mono ();
    if (self->pr_holding) {
        char why [256];
        bool acking = !zr_repl_is_slave (self->repl)
                   && zr_failover_may_ack (self->failover, why, sizeof why);
        if (acking || now >= self->pr_holding
        ||  zr_repl_is_slave (self->repl)) {
            self->pr_holding = 0;
            s_promote_release (self, acking
                               ? "a handover was withdrawn: this master "
                                 "takes writes again; send again"
                               : "a handover was withdrawn and this "
                                 "master holds no leases: ask the "
                                 "nameservers and send again");
        }
    }
    if (zr_repl_is_slave (self->repl)) {
        //  Only for the epoch we follow: a TAKEOVER that waited in a
        //  buffer past a later epoch is stale.
        uint64_t epoch = zr_repl_take_takeover (self->repl);
        if (epoch && epoch == zr_store_epoch (self->store)
        &&  !zr_failover_campaigning (self->failover)) {
            int64_t last = (int64_t) zr_store_epoch (self->store);
            zsys_info ("failover: our master resigned epoch %" PRIu64
                       " for us (admin promote): asking for epoch %"
                       PRId64 " at seq %" PRIu64, epoch, last + 1,
                       zr_store_seq (self->store));
            zr_failover_campaign (self->failover, last + 1, last,
                                  (int64_t) zr_store_seq (self->store));
            self->fo_next = now + self->master_dead_ms / 2;
        }
        return;
    }
    if (!self->pr_state)
        return;
    int64_t fenced = zr_failover_fenced (self->failover);
    if (fenced > self->pr_epoch) {
        int64_t by = zr_failover_fenced_by (self->failover);
        if (by == self->pr_target)
            s_promote_end (self, ZR_OK, NULL);
        else {
            char why [200];
            snprintf (why, sizeof why, "epoch %" PRId64 " went to broker %"
                      PRId64 ", not %" PRId64, fenced, by, self->pr_target);
            s_reply_begin (self, &self->pr_route, ZR_NOT_MASTER, why, 0);
            s_send_reply (self, &self->pr_route, NULL);
            self->pr_state = 0;
            s_promote_release (self, why);
        }
        return;
    }
    const char *why = NULL;
    int outcome;
    switch (self->pr_state) {
    case PR_CHECK:
        if (s_promote_admit (self, NULL, 0))
            s_promote_begin (self);
        else
        if (zr_repl_info_count (self->repl) >= self->pr_infos
        ||  now >= self->pr_next) {
            char reason [400];
            s_promote_admit (self, reason, sizeof reason);
            s_reply_error (self, &self->pr_route, ZR_BAD_ARGUMENT, "%s",
                           reason);
            self->pr_state = 0;
        }
        break;
    case PR_CATCHUP: {
        uint64_t seq = zr_store_seq (self->store), acked = 0;
        bool in_sync = false;
        zr_repl_slave_acked (self->repl, self->pr_target, &acked, &in_sync,
                             NULL);
        if (acked >= seq && in_sync) {
            self->pr_seq = seq;
            zsys_info ("failover: broker %" PRId64 " has seq %" PRIu64
                       "; resigning epoch %" PRId64 " for it",
                       self->pr_target, seq, self->pr_epoch);
            zr_failover_resign (self->failover, false, self->pr_epoch,
                                (int64_t) seq, self->pr_target);
            self->pr_state = PR_RESIGN;
        }
        else
        if (now >= self->pr_deadline) {
            char reason [200];
            snprintf (reason, sizeof reason, "handover timed out: broker %"
                      PRId64 " did not catch up within %" PRId64
                      " ms (acked %" PRIu64
                      " of %" PRIu64 ")", self->pr_target,
                      self->pr_timeout_ms, acked, seq);
            s_promote_end (self, ZR_BUSY, reason);
        }
        else
            zr_repl_info_now (self->repl);
        break;
    }
    case PR_RESIGN:
        outcome = zr_failover_resign_outcome (self->failover, &why);
        if (outcome > 0) {
            zr_repl_takeover (self->repl, self->pr_target,
                              (uint64_t) self->pr_epoch, self->pr_seq);
            self->pr_state = PR_TAKEOVER;
            self->pr_next = now + 500;
        }
        else
        if (outcome < 0 && now < self->pr_deadline) {
            //  E.g. the nameservers have not recorded the target in the
            //  in-sync set yet (it just caught up): writes are paused, so
            //  the next heartbeat records it; ask again.
            zsys_info ("failover: resignation not accepted yet (%s); "
                       "asking again", why);
            self->pr_state = PR_RESIGN_AGAIN;
            self->pr_next = now + 200;
        }
        else
        if (outcome < 0)
            s_promote_withdraw (self, "handover failed: the nameservers "
                                "did not accept the resignation: %s", why);
        break;
    case PR_RESIGN_AGAIN:
        if (now >= self->pr_deadline)
            s_promote_withdraw (self, "handover timed out: the nameservers "
                                "did not accept the resignation within %"
                                PRId64 " ms", self->pr_timeout_ms);
        else
        if (now >= self->pr_next) {
            zr_failover_resign (self->failover, false, self->pr_epoch,
                                (int64_t) self->pr_seq, self->pr_target);
            self->pr_state = PR_RESIGN;
        }
        break;
    case PR_TAKEOVER:
        if (now >= self->pr_deadline)
            s_promote_withdraw (self, "handover timed out: broker %"
                                PRId64 " did not become master within %"
                                PRId64 " ms",
                                self->pr_target, self->pr_timeout_ms);
        else
        if (now >= self->pr_next) {
            zr_repl_takeover (self->repl, self->pr_target,
                              (uint64_t) self->pr_epoch, self->pr_seq);
            self->pr_next = now + 500;
        }
        break;
    case PR_WITHDRAW:
        outcome = zr_failover_resign_outcome (self->failover, &why);
        if (outcome > 0)
            s_promote_end (self, ZR_BUSY, self->pr_error);
        else {
            //  Not taken back at a majority: a vote may be under way;
            //  stay paused until fenced, or withdrawn on a later try.
            if (outcome < 0)
                zsys_warning ("failover: cannot withdraw the handover "
                              "yet: %s", why);
            if (now >= self->pr_next)
                s_promote_withdraw (self, NULL);
        }
        break;
    }
}

//  Master discovery (protocol section 16): a slave with no master, or
//  whose master has been silent for FOLLOW_SILENT_MS, asks the
//  nameservers (through the link, never blocking) which broker of its
//  group is registered as master at the highest epoch, and follows its
//  HA endpoint.

#define FOLLOW_ASK_MS 1000          //  between FIND_MASTERs
#define FOLLOW_SILENT_MS 1000       //  master silence that asks again

static void
s_follow_tick (broker_t *self)
{
    if (!self->nslink || !self->repl || !zr_repl_is_slave (self->repl))
        return;
    int64_t now = zclock_mono ();
    if (now < self->follow_at)
        return;
    bool waiting = !*zr_repl_following (self->repl);
    int64_t silent = zr_repl_silence_ms (self->repl);
    if (silent < 0)
        silent = now - self->follow_since;
    if (!waiting && silent <= FOLLOW_SILENT_MS)
        return;
    char id [24];
    snprintf (id, sizeof id, "%" PRId64, self->broker_id);
    zstr_sendx (self->nslink, "FIND_MASTER", zr_store_group (self->store),
                id, NULL);
    self->follow_at = now + FOLLOW_ASK_MS;
}

//  The link's answer to FIND_MASTER: follows ha when it is another
//  master than the one we follow, of our epoch or a later one.
static void
s_follow_found (broker_t *self, const char *ha, int64_t epoch, int64_t id)
{
    if (!self->repl || !zr_repl_is_slave (self->repl))
        return;
    const char *now_following = zr_repl_following (self->repl);
    if (!*ha || epoch < (int64_t) zr_store_epoch (self->store)) {
        if (!*now_following && !self->follow_none_told)
            zsys_info ("repl: the nameservers name no master of group %s "
                       "at epoch %" PRIu64 " or later yet; serving reads, "
                       "asking again every %d ms",
                       zr_store_group (self->store),
                       zr_store_epoch (self->store), FOLLOW_ASK_MS);
        self->follow_none_told = true;
        return;
    }
    if (streq (ha, now_following))
        return;
    self->follow_none_told = false;
    zsys_info ("repl: the nameservers name broker %" PRId64 " master of "
               "group %s at epoch %" PRId64 ": following %s%s%s", id,
               zr_store_group (self->store), epoch, ha,
               *now_following ? " instead of " : "", now_following);
    char *follow = strdup (ha);
    zstr_free (&self->follow);
    self->follow = follow;
    char *err = NULL;
    zr_repl_destroy (&self->repl);
    if (s_repl_start (self, self->repl_bind, &err)) {
        zsys_error ("repl: cannot follow %s: %s", ha, err ? err : "?");
        zstr_free (&err);
        zstr_free (&self->follow);
        //  Wait without a master rather than run without replication.
        self->follow_ns = true;
        if (s_repl_start (self, self->repl_bind, &err)) {
            zsys_error ("repl: %s", err ? err : "?");
            zstr_free (&err);
        }
    }
    self->fo_since = zclock_mono ();
}

static int
s_start (broker_t *self, char **err)
{
    if (self->started) {
        *err = strdup ("broker is already started");
        return -1;
    }
    if (s_configure (self, err))
        return -1;
    zr_store_opts_t opts = { self->group_opt, 0 };
    self->store = zr_store_open (self->data, &opts, err);
    if (!self->store)
        return -1;
    zr_store_topic_foreach (self->store, s_load_topic, self);
    if (zr_txn_load (self->txn, self->store) < 0) {
        *err = strdup ("cannot read the transactions' half messages");
        return -1;
    }
    self->retention = zr_retention_new (self->store,
                                        self->default_retention_ms,
                                        self->default_retention_bytes);
    self->retention_checked = zclock_mono ();

    const char *bind = zr_setting_get (self->cfg, "broker",
                                       zr_broker_settings, "bind");
    char *list = strdup (bind ? bind : "");
    char *save = NULL;
    for (char *ep = strtok_r (list, ",", &save); ep;
         ep = strtok_r (NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (!*ep)
            continue;
        char *bound = zr_transport_bind (self->router, ep, err);
        if (!bound) {
            free (list);
            return -1;
        }
        zlistx_add_end (self->endpoints, bound);
        zstr_free (&bound);
    }
    free (list);
    if (zlistx_size (self->endpoints) == 0) {
        *err = strdup ("setting bind: no endpoint to listen on");
        return -1;
    }
    s_check_disk (self);
    if (self->broker_id < 0) {      //  auto: 0 for a master, 1 for a slave
        const char *role = zr_store_role (self->store);
        if (!role)
            role = zr_setting_get (self->cfg, "broker", zr_broker_settings,
                                   "role");
        self->broker_id = role && streq (role, "slave") ? 1 : 0;
    }
    self->repl_bind = strdup (bind ? bind : "");
    if (s_repl_start (self, bind, err))
        return -1;
    if (self->failover_on) {
        self->failover = zr_failover_new (self->nameservers, self->cluster,
                                          zr_store_group (self->store),
                                          self->broker_id,
                                          self->ha_heartbeat_ms, err);
        if (!self->failover)
            return -1;
        self->fo_since = zclock_mono ();
        self->fo_next = self->fo_since;
        self->fo_master = !zr_repl_is_slave (self->repl);
        self->fo_epoch = -1;
        s_failover_tell (self, true);
    }
    if (strneq (self->nameservers, "none")) {
        self->nslink = zactor_new (zr_nslink_actor, NULL);
        char hb [16], bp [16];
        snprintf (hb, sizeof hb, "%d", self->heartbeat_ms);
        snprintf (bp, sizeof bp, "%d", self->beacon_port);
        zstr_sendx (self->nslink, "CONFIGURE", self->nameservers,
                    self->cluster, hb, self->interface, bp, NULL);
        char *status = NULL, *reason = NULL;
        zstr_recvx (self->nslink, &status, &reason, NULL);
        bool ok = status && streq (status, "OK");
        if (!ok)
            *err = zsys_sprintf ("setting nameserver: %s",
                                 reason ? reason : "?");
        zstr_free (&status);
        zstr_free (&reason);
        if (!ok)
            return -1;
        s_state_changed (self);
    }
    self->started = true;
    zsys_info ("broker: group %s started, data in %s, %zu topics, seq %"
               PRIu64, zr_store_group (self->store), self->data,
               zhashx_size (self->topics), zr_store_seq (self->store));
    return 0;
}

static void
s_pipe_command (broker_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *verb = zmsg_popstr (msg);
    if (!verb)
        ;
    else
    if (streq (verb, "$TERM"))
        self->terminated = true;
    else
    if (streq (verb, "START")) {
        char *err = NULL;
        if (s_start (self, &err) == 0)
            zstr_send (self->pipe, "OK");
        else {
            zstr_sendx (self->pipe, "ERROR", err ? err : "?", NULL);
            zstr_free (&err);
        }
    }
    else
    if (streq (verb, "ENDPOINTS")) {
        zmsg_t *reply = zmsg_new ();
        zmsg_addstr (reply, "OK");
        const char *ep = (const char *) zlistx_first (self->endpoints);
        while (ep) {
            zmsg_addstr (reply, ep);
            ep = (const char *) zlistx_next (self->endpoints);
        }
        zmsg_send (&reply, self->pipe);
    }
    else
    if (streq (verb, "DATA"))
        zstr_sendx (self->pipe, "OK", self->data ? self->data : "", NULL);
    else
    if (streq (verb, "GROUP"))
        zstr_sendx (self->pipe, "OK",
                    self->store ? zr_store_group (self->store) : "", NULL);
    else
    if (streq (verb, "STATS")) {
        if (!self->store)
            zstr_sendx (self->pipe, "ERROR", "not started", NULL);
        else {
            zr_enc_t *enc = zr_enc_new ();
            s_encode_stats (self, enc);
            zr_hdr_t *hdr = zr_hdr_decode (zr_enc_data (enc),
                                           zr_enc_size (enc), NULL);
            char *json = zr_obj_to_json (hdr ? zr_hdr_root (hdr) : NULL);
            zstr_sendx (self->pipe, "OK", json, NULL);
            zstr_free (&json);
            zr_hdr_destroy (&hdr);
            zr_enc_destroy (&enc);
        }
    }
    else
        zsys_warning ("broker: unknown pipe command '%s'", verb);
    zstr_free (&verb);
    zmsg_destroy (&msg);
}

static void
s_endpoint_free (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_frame_free (void **item)
{
    zframe_destroy ((zframe_t **) item);
}

void
zr_broker_actor (zsock_t *pipe, void *args)
{
    broker_t *self = (broker_t *) zmalloc (sizeof (broker_t));
    self->pipe = pipe;
    //  Our own copy of the settings: the caller's tree stays theirs.
    char *text = args ? zconfig_str_save ((zconfig_t *) args) : NULL;
    self->cfg = text ? zconfig_str_load (text) : NULL;
    if (!self->cfg)
        self->cfg = zconfig_new ("root", NULL);
    zstr_free (&text);
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 1000);
    self->endpoints = zlistx_new ();
    zlistx_set_destructor (self->endpoints, s_endpoint_free);
    zlistx_set_duplicator (self->endpoints, (zlistx_duplicator_fn *) strdup);
    self->topics = zhashx_new ();
    zhashx_set_destructor (self->topics, s_topic_free);
    self->clients = zhashx_new ();
    zhashx_set_destructor (self->clients, (zhashx_destructor_fn *)
                           zstr_free);
    self->waiters = zlistx_new ();
    self->parked = zlistx_new ();
    self->sync_parked = zlistx_new ();
    self->ack_parked = zlistx_new ();
    self->vis_dirty = zlistx_new ();
    self->enc = zr_enc_new ();
    self->rec = zr_enc_new ();
    self->scratch = zchunk_new (NULL, 64 * 1024);
    self->bodies = zlistx_new ();
    zlistx_set_destructor (self->bodies, s_frame_free);
    self->groups = zr_groups_new ();
    self->filters = zr_filter_cache_new (0);
    for (int i = 0; i < 8; i++)
        self->id_prefix [i] = (uint8_t) randof (256);
    zsock_signal (pipe, 0);

    void *handle_pipe = zsock_resolve (pipe);
    void *handle_router = zsock_resolve (self->router);
    while (!self->terminated) {
        zmq_pollitem_t items [] = {
            { handle_pipe, 0, ZMQ_POLLIN, 0 },
            { handle_router, 0, ZMQ_POLLIN, 0 },
            { self->nslink ? zsock_resolve (zactor_sock (self->nslink))
                           : NULL, 0, ZMQ_POLLIN, 0 },
            { zr_repl_sock (self->repl)
              ? zsock_resolve (zr_repl_sock (self->repl)) : NULL, 0,
              ZMQ_POLLIN, 0 }
        };
        int nitems = !self->started ? 1 : self->nslink ? 3 : 2;
        int repl_item = -1;
        if (self->started && zr_repl_sock (self->repl)) {
            repl_item = nitems;
            items [nitems++] = items [3];
        }
        int64_t sync_left = s_sync_timeout (self);

        long timeout = DISK_CHECK_MS;
        int64_t deadline = s_next_deadline (self);
        if (deadline != -1) {
            int64_t left = deadline - zclock_mono ();
            if (left < timeout)
                timeout = left < 0 ? 0 : (long) left;
        }
        int64_t retry_left = s_retry_timeout (self);     //  next timer
        if (retry_left != -1 && retry_left < timeout)
            timeout = (long) retry_left;
        int64_t txn_left = self->started ? zr_txn_timeout (self->txn) : -1;
        if (txn_left != -1 && txn_left < timeout)
            timeout = (long) txn_left;      //  next transaction check
        if (self->started) {        //  retention turn
            int64_t left = self->retention_checked
                         + self->retention_check_ms - zclock_mono ();
            if (left < timeout)
                timeout = left < 0 ? 0 : (long) left;
        }
        if (self->started) {        //  group member expiry pass
            int64_t left = self->groups_checked + s_groups_period (self)
                         - zclock_mono ();
            if (left < timeout)
                timeout = left < 0 ? 0 : (long) left;
        }
        if (sync_left != -1 && sync_left < timeout)
            timeout = (long) sync_left;     //  a parked sync send's deadline
        if (self->failover && timeout > self->ha_heartbeat_ms / 2)
            timeout = (long) (self->ha_heartbeat_ms / 2);   //  failover turn
        int n = zmq_poll (items, nitems, timeout);
        if (n == -1)
            break;          //  interrupted
        if (items [0].revents & ZMQ_POLLIN)
            s_pipe_command (self);
        if (self->terminated)
            break;
        if (self->started) {
            if (items [1].revents & ZMQ_POLLIN)
                s_serve_router (self);
            if (self->nslink && (items [2].revents & ZMQ_POLLIN))
                s_nslink_event (self);
            if (repl_item >= 0 && (items [repl_item].revents & ZMQ_POLLIN)) {
                int flags = zr_repl_event (self->repl);
                if (flags & ZR_REPL_APPLIED)
                    s_repl_reload (self);
            }
            s_sync_release (self, true);
            if (zlistx_size (self->waiters))
                s_serve_waiters (self, true);
            //  A slave writes only what it applies from its master.
            if (!zr_repl_is_slave (self->repl)) {
                s_retry_fire (self);
                zr_txn_tick (self->txn, self->store, self->router,
                             self->flush_sync, &self->notify_rid);
            }
            if (zclock_mono () - self->disk_checked >= DISK_CHECK_MS)
                s_check_disk (self);
            if (zclock_mono () - self->retention_checked
                >= self->retention_check_ms
            &&  !zr_repl_is_slave (self->repl))
                s_retention_tick (self);
            if (zclock_mono () - self->groups_checked
                >= s_groups_period (self))
                s_groups_tick (self);
            if (self->failover) {
                s_promote_tick (self);
                s_failover_tick (self);
            }
            s_follow_tick (self);
        }
    }
    //  Answer what we have, refuse what is queued, close the store.
    if (self->started) {
        s_batch_commit (self);
        waiter_t *w = (waiter_t *) zlistx_first (self->waiters);
        while (w) {
            topic_t *topic = (topic_t *) zhashx_lookup (self->topics,
                                                        w->topic);
            if (topic && w->queue < topic->queues)
                s_pull_filtered (self, &w->route, topic, w->queue, w->offset,
                                 w->max_count, w->max_bytes,
                                 s_waiter_filter (self, w), w->asked, false,
                                 NULL);
            w = (waiter_t *) zlistx_next (self->waiters);
        }
        s_answer_parked (self, UINT64_MAX, 0, 0);
        s_refuse_queued (self);
    }
    zactor_destroy (&self->nslink);     //  unregisters
    if (self->sync_parked) {
        sync_t *s = (sync_t *) zlistx_first (self->sync_parked);
        while (s) {
            s_sync_reply (self, s, ZR_FLUSH_SLAVE_TIMEOUT,
                          "stored on the master; broker stopping before "
                          "the slaves acknowledged it");
            free (s);
            s = (sync_t *) zlistx_next (self->sync_parked);
        }
        zlistx_destroy (&self->sync_parked);
    }
    if (self->pr_parked) {
        s_promote_release (self, "the broker is shutting down");
        zlistx_destroy (&self->pr_parked);
    }
    if (self->ack_parked) {
        acked_t *a = (acked_t *) zlistx_first (self->ack_parked);
        while (a) {
            s_ack_send (self, a, ZR_FLUSH_SLAVE_TIMEOUT, "stored on the "
                        "master; broker stopping before the slaves "
                        "acknowledged it");
            free (a);
            a = (acked_t *) zlistx_next (self->ack_parked);
        }
        zlistx_destroy (&self->ack_parked);
    }
    if (self->vis_dirty) {
        s_vis_reset (self);
        zlistx_destroy (&self->vis_dirty);
    }
    zr_repl_destroy (&self->repl);      //  before the store closes
    zr_failover_destroy (&self->failover);
    zstr_free (&self->repl_bind);
    zstr_free (&self->follow);
    zstr_free (&self->fo_isr);
    waiter_t *w = (waiter_t *) zlistx_first (self->waiters);
    while (w) {
        s_waiter_destroy (&w);
        w = (waiter_t *) zlistx_next (self->waiters);
    }
    zlistx_destroy (&self->waiters);
    parked_t *p = (parked_t *) zlistx_first (self->parked);
    while (p) {
        free (p);
        p = (parked_t *) zlistx_next (self->parked);
    }
    zlistx_destroy (&self->parked);
    zsock_destroy (&self->router);
    zr_retention_destroy (&self->retention);
    zr_store_destroy (&self->store);
    zr_retry_destroy (&self->retry);
    zr_groups_destroy (&self->groups);
    zr_txn_destroy (&self->txn);
    zr_filter_cache_destroy (&self->filters);
    zhashx_destroy (&self->topics);
    zhashx_destroy (&self->clients);
    zlistx_destroy (&self->endpoints);
    zlistx_destroy (&self->bodies);
    zchunk_destroy (&self->scratch);
    zr_enc_destroy (&self->enc);
    zr_enc_destroy (&self->rec);
    zconfig_destroy (&self->cfg);
    free (self->pending);
    free (self->recbuf);
    free (self->order);
    free (self->data);
    free (self->group_opt);
    free (self->nameservers);
    free (self->ns_known);
    free (self->cluster);
    free (self->interface);
    free (self);
}

zactor_t *
zr_broker_new (zconfig_t *cfg, char **err)
{
    return zr_actor_start (zr_broker_actor, cfg, "broker", err);
}

char *
zr_broker_endpoint (zactor_t *broker)
{
    return zr_actor_endpoint (broker);
}
