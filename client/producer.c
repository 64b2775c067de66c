/*  client/producer.c - zr_producer_t: sync, async (pipelined) and oneway
    SEND (docs/protocol.md, SEND), either to one broker (zr_producer_new)
    or routed over every broker group that serves a topic, with routes
    from nameservers (zr_producer_new_routed, docs/protocol.md section 9).

    Message ids: 32 lowercase hex digits made of 8 random bytes (one draw
    per producer), 4 bytes of process start time (seconds, taken when the
    process makes its first producer) and a 4-byte per-producer counter
    (starting at a random value), all big-endian. The id is written into the
    message when it has none, so every retry of that send (and any later
    send of the same zr_message_t) carries the same id.

    Connections: one s_conn_t (a zr_client_t DEALER) per broker. A direct
    producer has exactly one. A routed producer makes one per master
    endpoint that a route names, when first used, and closes it once no
    route names it and nothing is in flight on it.

    Async sends: each request's rid goes into its connection's ring of
    in-flight entries in send order (a connection's rids only grow, so
    the ring is sorted by rid and a reply finds its entry by binary
    search; replies usually come in order and hit the head). The window
    counts the entries of every connection: when max_inflight are in
    flight, the sender reads replies before sending more. An entry whose
    reply has not come by its deadline gets its callback with ZR_TIMEOUT
    (routed: is first re-sent elsewhere, below); a reply that comes after
    that is dropped.

    A sync send reads every connection: replies to async sends that
    arrive while it waits go to their callbacks, and its own reply is the
    one from the connection it sent to with a rid it sent there (any
    attempt of this send on that connection).

    Routing (zr_producer_new_routed):
    - Routes come from client/router.c: per topic, the broker groups with
      their master endpoint and queue count, in group name order; the
      (group, queue) pairs are numbered in that order. Routes are
      refreshed every route-refresh interval (default 30 s), and at once
      when a broker answers TOPIC_NOT_FOUND or QUEUE_NOT_FOUND; the send
      is then retried once on the fresh route (this retry does not count
      against `retries`).
    - Queue choice: round-robin over every pair, skipping brokers that are
      avoided (below), with an explicit "queue" in the SEND; a sharding
      key picks pair FNV-1a-32 (key) mod pairs; an explicit queue N
      (zr_message_set_queue) means queue N of the first group with a
      master (in name order). Sharded and explicit-queue sends never move
      to another broker: their retries go to the same broker, and when
      those fail the application gets the error.
    - Failover: the send timeout is a budget for all attempts; each
      attempt waits timeout / (retries + 1) ms (the last one whatever is
      left). An attempt that times out or gets SHUTTING_DOWN marks its
      broker avoided and the send goes on to the next pair that is on
      another broker, with the same message id, up to `retries` times
      (BUSY: same broker after a backoff, as in the direct producer).
      NOT_MASTER (the broker lost or never had the master's lease, is a
      slave, or is handing over) is asked again on a fresh route after a
      backoff (20 ms times the try, at most 100 ms) while the budget
      lasts, up to 20 times, without counting against `retries` (a
      synchronous send; an async one handles it like a timeout). After a
      timeout, SHUTTING_DOWN or NOT_MASTER the route is refreshed at once
      (at most every 100 ms), so a promoted slave is found; the resend
      keeps the message id.
      When every broker is avoided they are still tried. An avoided
      broker is used again when a route refresh shows that it registered
      after it was avoided (its age_ms is less than the time since), or
      30 s after it was avoided. When no broker took the message, the
      reason lists the brokers tried. A broker that stored a message but
      whose reply came too late may leave a second copy (same id) on the
      broker of the retry: at-least-once, consumers dedupe by id.
    - Async sends keep a copy of the message for re-sends: an attempt
      that times out or gets SHUTTING_DOWN is re-sent (same id) to another
      broker while retries and budget remain; otherwise the callback gets
      the status.
    - Errors when there is no route (result->reason):
        ZR_TIMEOUT          "no nameserver reachable at LIST"
        ZR_TOPIC_NOT_FOUND  "topic 'T' is unknown to every nameserver"
        ZR_TIMEOUT          "no broker serving topic 'T'" (the route has
                            no group with a live master: transient)
      An async send that hits one of these calls its callback at once with
      that status and returns 0. A route lookup takes its time from the
      send's budget, at most one attempt's share (timeout / (retries +
      1)), split over the nameservers.

    Not thread-safe: one producer per thread. Callbacks run in the thread
    that calls send / send_async / poll / flush, and may send again (a
    sync send from a callback that runs inside another sync send works,
    but should the outer send's reply come meanwhile, it is dropped and
    the outer send retries after its timeout). A callback must not
    destroy the producer. Destroying a producer drops the sends still in
    flight without callbacks: flush first.
*/
#include "client/client.h"
#include "client/router.h"

#define ZR_PRODUCER_TIMEOUT 3000
#define ZR_PRODUCER_RETRIES 2
#define ZR_PRODUCER_WINDOW 256
#define ZR_PRODUCER_BUSY_BACKOFF 20     //  ms, times the attempt number
#define NOT_MASTER_TRIES 20             //  NOT_MASTERs asked again (sync)
#define ZR_PRODUCER_AVOID_MAX 30000     //  ms a failed broker is avoided
#define ZR_PRODUCER_DISCOVER 2000       //  ms to find nameservers

typedef struct {
    uint64_t rid;
    int64_t deadline;           //  zclock_mono ms, this attempt
    zr_send_fn *callback;
    void *arg;
    bool done;                  //  answered or expired, waiting to pop
    char msg_id [ZR_MSG_ID_LEN + 1];
    //  Routed sends only
    zr_message_t *msg;          //  copy for re-sends; NULL when direct
    int64_t end;                //  budget of all attempts (mono ms)
    int attempts;               //  failovers and BUSY retries so far
    bool rerouted;              //  retried after TOPIC/QUEUE_NOT_FOUND
} s_pending_t;

//  One broker connection and its async ring: entries ring[(head + i) %
//  cap] for i < count, in rid order; the head is never done (done heads
//  are popped).
typedef struct {
    zr_client_t *client;
    s_pending_t *ring;
    size_t cap;
    size_t head;
    size_t count;
    size_t live;                //  entries not done
    int64_t avoided_since;      //  mono ms; 0: not avoided
} s_conn_t;

struct _zr_producer_t {
    s_conn_t **conns;           //  direct: exactly one
    size_t nconns;
    size_t conns_cap;
    zr_router_t *router;        //  NULL: direct producer
    zmq_pollitem_t *items;      //  poll set over conns
    size_t items_cap;
    int timeout;                //  ms
    int retries;
    int max_inflight;
    uint32_t next_pair;         //  round-robin position
    int depth;                  //  public calls on the stack
    bool gc_due;                //  a route changed: close unused conns
    int64_t failover_refreshed; //  last route refresh forced by a
                                //  timeout or NOT_MASTER, mono ms

    size_t live;                //  entries not done, every conn
    int64_t next_deadline;      //  no live entry expires before this
    size_t timeouts;            //  async timeouts since the last flush
    uint64_t events;            //  callbacks called so far

    //  Sync send in progress: replies from sync_conn with rid >=
    //  sync_first_rid that are not async are its replies.
    bool sync_active;
    s_conn_t *sync_conn;
    uint64_t sync_first_rid;

    byte random [8];
    uint32_t counter;
};

static uint32_t s_process_start;
static pthread_once_t s_start_once = PTHREAD_ONCE_INIT;

static void
s_start_init (void)
{
    s_process_start = (uint32_t) (zclock_time () / 1000);
}

//  Fills buf with n random bytes: /dev/urandom, else randof.
static void
s_random (byte *buf, size_t n)
{
    FILE *f = fopen ("/dev/urandom", "rb");
    size_t got = 0;
    if (f) {
        got = fread (buf, 1, n, f);
        fclose (f);
    }
    for (; got < n; got++)
        buf [got] = (byte) randof (256);
}

static void
s_new_id (zr_producer_t *self, char *id)
{
    static const char hex [] = "0123456789abcdef";
    byte raw [16];
    memcpy (raw, self->random, 8);
    uint32_t start = s_process_start;
    uint32_t counter = self->counter++;
    for (int i = 0; i < 4; i++) {
        raw [8 + i] = (byte) (start >> (24 - 8 * i));
        raw [12 + i] = (byte) (counter >> (24 - 8 * i));
    }
    for (int i = 0; i < 16; i++) {
        id [2 * i] = hex [raw [i] >> 4];
        id [2 * i + 1] = hex [raw [i] & 15];
    }
    id [ZR_MSG_ID_LEN] = 0;
}

//  --------------------------------------------------------------------
//  Connections

static void
s_conn_destroy (s_conn_t **conn_p)
{
    s_conn_t *conn = *conn_p;
    if (!conn)
        return;
    for (size_t i = 0; i < conn->count; i++) {
        s_pending_t *entry = &conn->ring [(conn->head + i) % conn->cap];
        zr_message_destroy (&entry->msg);
    }
    zr_client_destroy (&conn->client);
    free (conn->ring);
    free (conn);
    *conn_p = NULL;
}

//  Adds a connection to endpoint. Returns it, or NULL when the endpoint
//  does not parse.
static s_conn_t *
s_conn_add (zr_producer_t *self, const char *endpoint)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        return NULL;
    if (self->nconns == self->conns_cap) {
        self->conns_cap = self->conns_cap ? self->conns_cap * 2 : 4;
        self->conns = (s_conn_t **) realloc (
            self->conns, self->conns_cap * sizeof (s_conn_t *));
        assert (self->conns);
    }
    s_conn_t *conn = (s_conn_t *) zmalloc (sizeof (s_conn_t));
    assert (conn);
    conn->client = client;
    self->conns [self->nconns++] = conn;
    return conn;
}

static s_conn_t *
s_conn_find (zr_producer_t *self, const char *endpoint)
{
    for (size_t i = 0; i < self->nconns; i++)
        if (streq (zr_client_endpoint (self->conns [i]->client), endpoint))
            return self->conns [i];
    return NULL;
}

static s_conn_t *
s_conn_get (zr_producer_t *self, const char *endpoint)
{
    s_conn_t *conn = s_conn_find (self, endpoint);
    return conn ? conn : s_conn_add (self, endpoint);
}

static bool
s_avoided (s_conn_t *conn, int64_t now)
{
    if (conn->avoided_since
        && now - conn->avoided_since >= ZR_PRODUCER_AVOID_MAX)
        conn->avoided_since = 0;
    return conn->avoided_since != 0;
}

static void
s_avoid (s_conn_t *conn)
{
    if (!conn->avoided_since)
        conn->avoided_since = zclock_mono ();
    if (!conn->avoided_since)
        conn->avoided_since = 1;
}

//  Closes routed connections that no route names and that have nothing
//  in flight. Only from the outermost public call (no caller up the
//  stack holds a conn then).
static void
s_conn_gc (zr_producer_t *self)
{
    if (!self->router || !self->gc_due || self->depth > 1)
        return;
    self->gc_due = false;
    size_t kept = 0;
    for (size_t i = 0; i < self->nconns; i++) {
        s_conn_t *conn = self->conns [i];
        if (conn->count == 0 && conn != self->sync_conn
            && !zr_router_names (self->router,
                                 zr_client_endpoint (conn->client)))
            s_conn_destroy (&conn);
        else
            self->conns [kept++] = conn;
    }
    self->nconns = kept;
}

//  --------------------------------------------------------------------
//  Construction

static zr_producer_t *
s_producer_new (void)
{
    pthread_once (&s_start_once, s_start_init);
    zr_producer_t *self = (zr_producer_t *) zmalloc (sizeof (zr_producer_t));
    assert (self);
    self->timeout = ZR_PRODUCER_TIMEOUT;
    self->retries = ZR_PRODUCER_RETRIES;
    self->max_inflight = ZR_PRODUCER_WINDOW;
    self->next_deadline = INT64_MAX;
    s_random (self->random, sizeof (self->random));
    byte c [4];
    s_random (c, sizeof (c));
    self->counter = (uint32_t) c [0] << 24 | (uint32_t) c [1] << 16
                    | (uint32_t) c [2] << 8 | c [3];
    self->next_pair = self->counter;
    return self;
}

zr_producer_t *
zr_producer_new (const char *endpoint)
{
    zr_producer_t *self = s_producer_new ();
    if (!s_conn_add (self, endpoint))
        zr_producer_destroy (&self);
    return self;
}

zr_producer_t *
zr_producer_new_routed (const char *nameservers)
{
    char *found = NULL;
    if (!nameservers || !*nameservers) {
        found = zr_discover_nameservers (NULL, ZR_PRODUCER_DISCOVER);
        if (!found)
            return NULL;
        nameservers = found;
    }
    zr_router_t *router = zr_router_new (nameservers);
    zstr_free (&found);
    if (!router)
        return NULL;
    zr_producer_t *self = s_producer_new ();
    self->router = router;
    return self;
}

void
zr_producer_set_route_refresh (zr_producer_t *self, int interval_ms)
{
    assert (self);
    if (self->router)
        zr_router_set_refresh (self->router, interval_ms);
}

//  Sends in flight get no callback: call zr_producer_flush first.
void
zr_producer_destroy (zr_producer_t **self_p)
{
    assert (self_p);
    zr_producer_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nconns; i++)
        s_conn_destroy (&self->conns [i]);
    free (self->conns);
    free (self->items);
    zr_router_destroy (&self->router);
    free (self);
    *self_p = NULL;
}

void
zr_producer_set_timeout (zr_producer_t *self, int timeout_ms)
{
    assert (self);
    self->timeout = timeout_ms > 0 ? timeout_ms : 1;
}

void
zr_producer_set_retries (zr_producer_t *self, int retries)
{
    assert (self);
    self->retries = retries > 0 ? retries : 0;
}

void
zr_producer_set_max_inflight (zr_producer_t *self, int max)
{
    assert (self);
    self->max_inflight = max > 0 ? max : 1;
}

//  Per-attempt wait of a routed send.
static int
s_attempt_timeout (zr_producer_t *self)
{
    int per = self->timeout / (self->retries + 1);
    return per > 0 ? per : 1;
}

//  --------------------------------------------------------------------
//  Encoding

//  Gives msg an id and a born time when it has none.
static void
s_prepare (zr_producer_t *self, zr_message_t *msg)
{
    if (!*zr_message_id (msg)) {
        char id [ZR_MSG_ID_LEN + 1];
        s_new_id (self, id);
        zr_message_set_id (msg, id);
    }
    if (zr_message_born (msg) == 0)
        zr_message_set_born (msg, zclock_time ());
}

//  Begins a SEND request for msg in conn's encoder and sends it. queue:
//  the queue field (-1: none); shard: whether to send the sharding key.
//  Returns 0, or -1 when the socket stayed full.
static int
s_send_request (s_conn_t *conn, zr_message_t *msg, int queue, bool shard_on,
                bool oneway)
{
    const char *shard = shard_on ? zr_message_sharding_key (msg) : "";
    const char *tags = zr_message_tags (msg);
    const char *keys = zr_message_keys (msg);
    zhashx_t *props = zr_message_props (msg);
    size_t nprops = props ? zhashx_size (props) : 0;

    size_t fields = 3;          //  topic, id, born
    fields += queue >= 0;
    fields += *shard != 0;
    fields += *tags != 0;
    fields += *keys != 0;
    fields += nprops > 0;
    fields += oneway;
    const char *delay_name;
    int64_t delay_value;
    zr_message_delay (msg, &delay_name, &delay_value);
    fields += delay_name != NULL;
    zr_enc_t *enc = zr_client_begin (conn->client, "SEND", fields);
    zr_enc_kstr (enc, "topic", zr_message_topic (msg));
    zr_enc_kstr (enc, "id", zr_message_id (msg));
    zr_enc_kint (enc, "born", zr_message_born (msg));
    if (queue >= 0)
        zr_enc_kint (enc, "queue", queue);
    if (*shard)
        zr_enc_kstr (enc, "shard", shard);
    if (*tags)
        zr_enc_kstr (enc, "tags", tags);
    if (*keys)
        zr_enc_kstr (enc, "keys", keys);
    if (nprops) {
        zr_enc_str (enc, "props");
        zr_enc_map (enc, nprops);
        for (const char *value = (const char *) zhashx_first (props); value;
             value = (const char *) zhashx_next (props)) {
            zr_enc_str (enc, (const char *) zhashx_cursor (props));
            zr_enc_str (enc, value);
        }
    }
    if (oneway)
        zr_enc_kbool (enc, "oneway", true);
    if (delay_name)
        zr_enc_kint (enc, delay_name, delay_value);

    const void *data [1] = { zr_message_body (msg) };
    size_t size [1] = { zr_message_size (msg) };
    return zr_client_send (conn->client, data, size, 1);
}

//  A copy of msg (for async re-sends).
static zr_message_t *
s_message_copy (zr_message_t *msg)
{
    zr_message_t *copy = zr_message_new (
        zr_message_topic (msg), zr_message_body (msg), zr_message_size (msg));
    assert (copy);
    zr_message_set_tags (copy, zr_message_tags (msg));
    zr_message_set_keys (copy, zr_message_keys (msg));
    zr_message_set_sharding_key (copy, zr_message_sharding_key (msg));
    zr_message_set_queue (copy, zr_message_queue (msg));
    zr_message_set_id (copy, zr_message_id (msg));
    zr_message_set_born (copy, zr_message_born (msg));
    const char *delay_name;
    int64_t delay_value;
    zr_message_delay (msg, &delay_name, &delay_value);
    if (delay_name && streq (delay_name, "delay_ms"))
        zr_message_set_delay (copy, delay_value);
    else
    if (delay_name && streq (delay_name, "deliver_at"))
        zr_message_set_deliver_at (copy, delay_value);
    else
    if (delay_name)
        zr_message_set_delay_level (copy, (int) delay_value);
    zhashx_t *props = zr_message_props (msg);
    if (props)
        for (const char *value = (const char *) zhashx_first (props); value;
             value = (const char *) zhashx_next (props))
            zr_message_set_prop (copy, (const char *) zhashx_cursor (props),
                                 value);
    return copy;
}

//  --------------------------------------------------------------------
//  Results

//  Copies src into dest (size bytes), cutting it to fit; cheaper than
//  snprintf on the per-reply path.
static void
s_copy (char *dest, size_t size, const char *src)
{
    size_t len = strlen (src);
    if (len >= size)
        len = size - 1;
    memcpy (dest, src, len);
    dest [len] = 0;
}

static void
s_result_init (zr_send_result_t *result, const char *msg_id)
{
    memset (result, 0, sizeof (*result));
    s_copy (result->msg_id, sizeof (result->msg_id), msg_id);
    result->queue = -1;
    result->offset = -1;
}

static void
s_result_timeout (s_conn_t *conn, int timeout, zr_send_result_t *result)
{
    result->status = ZR_TIMEOUT;
    snprintf (result->reason, sizeof (result->reason),
              "no reply from %s within %d ms",
              zr_client_endpoint (conn->client), timeout);
}

static void
s_result_from_reply (zr_send_result_t *result, zr_reply_t *reply)
{
    const zr_obj_t *hdr = zr_reply_header (reply);
    result->status = zr_reply_status (reply);
    if (result->status == ZR_UNKNOWN_STATUS)
        snprintf (result->reason, sizeof (result->reason), "%s: %s",
                  zr_reply_status_str (reply), zr_reply_reason (reply));
    else
        s_copy (result->reason, sizeof (result->reason),
                zr_reply_reason (reply));
    char id [ZR_MSG_ID_LEN + 1];
    if (zr_field_strbuf (hdr, "id", id, sizeof (id)) == ZR_FIELD_OK && *id)
        memcpy (result->msg_id, id, sizeof (id));
    if (!zr_status_stored (result->status))
        return;
    if (zr_field_strbuf (hdr, "store_id", result->store_id,
                         sizeof (result->store_id))
        != ZR_FIELD_OK)
        result->store_id [0] = 0;
    int64_t value;
    if (zr_field_int (hdr, "queue", &value) == ZR_FIELD_OK && value >= 0
        && value <= INT32_MAX)
        result->queue = (int) value;
    if (zr_field_int (hdr, "offset", &value) == ZR_FIELD_OK && value >= 0)
        result->offset = value;
    if (zr_field_int (hdr, "deliver_at", &value) == ZR_FIELD_OK && value >= 0)
        result->deliver_at = value;
    char flush [8];
    result->flush_sync
        = zr_field_strbuf (hdr, "flush", flush, sizeof (flush)) == ZR_FIELD_OK
          && streq (flush, "sync");
}

//  --------------------------------------------------------------------
//  Routes

//  FNV-1a 32-bit, as the broker hashes sharding keys.
static uint32_t
s_fnv1a (const char *key)
{
    uint32_t hash = 2166136261u;
    for (const byte *p = (const byte *) key; *p; p++) {
        hash ^= *p;
        hash *= 16777619u;
    }
    return hash;
}

//  Un-avoids brokers that a fresh route shows registered after they were
//  avoided.
static void
s_route_seen (zr_producer_t *self, zr_router_route_t *route)
{
    self->gc_due = true;
    int64_t fetched = zr_router_fetched_at (route);
    for (size_t g = 0; g < zr_router_groups (route); g++) {
        const char *master = zr_router_master (route, g);
        s_conn_t *conn = master ? s_conn_find (self, master) : NULL;
        if (conn && conn->avoided_since
            && zr_router_age (route, g) < fetched - conn->avoided_since)
            conn->avoided_since = 0;
    }
}

//  Route of msg's topic; a lookup takes at most one attempt's share of
//  the time left until end (so a dead nameserver leaves the send time to
//  use the route it has). NULL with result's status and reason filled.
static zr_router_route_t *
s_route (zr_producer_t *self, zr_message_t *msg, bool force, int64_t end,
         zr_send_result_t *result)
{
    int64_t left = end - zclock_mono ();
    if (left > s_attempt_timeout (self))
        left = s_attempt_timeout (self);
    bool refreshed = false;
    zr_router_route_t *route = zr_router_get (
        self->router, zr_message_topic (msg), force,
        left > 0 ? (int) left : 1, &refreshed, &result->status,
        result->reason, sizeof (result->reason));
    if (route && refreshed)
        s_route_seen (self, route);
    return route;
}

//  True when an attempt that ended with status (TIMEOUT, SHUTTING_DOWN,
//  NOT_MASTER: the master may have moved) should force a route refresh:
//  at most every 100 ms, so a burst of failures costs one lookup.
static bool
s_failover_refresh (zr_producer_t *self, zr_status_t status)
{
    if (status != ZR_TIMEOUT && status != ZR_SHUTTING_DOWN
    &&  status != ZR_NOT_MASTER)
        return false;
    int64_t now = zclock_mono ();
    if (now - self->failover_refreshed < 100)
        return false;
    self->failover_refreshed = now;
    return true;
}

//  Picks the broker and queue for msg on route. failed: the broker whose
//  attempt just failed (NULL on a first attempt). Sharded and explicit-
//  queue sends always get the same pair. Returns the connection, or
//  NULL (with result filled) when the route's endpoint does not parse.
static s_conn_t *
s_pick (zr_producer_t *self, zr_router_route_t *route, zr_message_t *msg,
        s_conn_t *failed, int *queue, zr_send_result_t *result)
{
    size_t pairs = zr_router_pairs (route);
    assert (pairs > 0);         //  zr_router_get returns no empty route
    const char *endpoint = NULL;
    const char *shard = zr_message_sharding_key (msg);
    if (*shard)
        endpoint = zr_router_pair (route, s_fnv1a (shard) % pairs, queue);
    else
    if (zr_message_queue (msg) >= 0) {
        //  Queue N of the first group with a master (the broker checks N).
        endpoint = zr_router_pair (route, 0, queue);
        *queue = zr_message_queue (msg);
    }
    else {
        //  Round-robin: first pass skips failed and avoided brokers,
        //  second pass only the failed one, else take the next pair.
        int64_t now = zclock_mono ();
        size_t start = self->next_pair;
        for (int pass = 0; pass < 3 && !endpoint; pass++) {
            for (size_t k = 0; k < pairs; k++) {
                size_t index = (start + k) % pairs;
                int q;
                const char *candidate = zr_router_pair (route, index, &q);
                s_conn_t *conn = candidate ? s_conn_find (self, candidate)
                                           : NULL;
                if (pass < 2 && conn && conn == failed)
                    continue;
                if (pass < 1 && conn && s_avoided (conn, now))
                    continue;
                endpoint = candidate;
                *queue = q;
                self->next_pair = (uint32_t) (index + 1);
                break;
            }
        }
    }
    s_conn_t *conn = endpoint ? s_conn_get (self, endpoint) : NULL;
    if (!conn) {
        result->status = ZR_BAD_ARGUMENT;
        snprintf (result->reason, sizeof (result->reason),
                  "route of topic '%s' names a bad endpoint '%s'",
                  zr_message_topic (msg), endpoint ? endpoint : "");
    }
    return conn;
}

//  --------------------------------------------------------------------
//  Async rings

static s_pending_t *
s_at (s_conn_t *conn, size_t i)
{
    return &conn->ring [(conn->head + i) % conn->cap];
}

//  Makes room for one more entry.
static void
s_ring_grow (s_conn_t *conn)
{
    if (conn->count < conn->cap)
        return;
    size_t cap = conn->cap ? conn->cap * 2 : 64;
    s_pending_t *ring = (s_pending_t *) malloc (cap * sizeof (s_pending_t));
    assert (ring);
    for (size_t i = 0; i < conn->count; i++)
        ring [i] = *s_at (conn, i);
    free (conn->ring);
    conn->ring = ring;
    conn->cap = cap;
    conn->head = 0;
}

static void
s_ring_pop_done (s_conn_t *conn)
{
    while (conn->count && s_at (conn, 0)->done) {
        conn->head = (conn->head + 1) % conn->cap;
        conn->count--;
    }
}

//  Index of the live entry with rid, or -1.
static ssize_t
s_ring_find (s_conn_t *conn, uint64_t rid)
{
    if (!conn->count)
        return -1;
    size_t lo = 0, hi = conn->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t at = s_at (conn, mid)->rid;
        if (at == rid)
            return s_at (conn, mid)->done ? -1 : (ssize_t) mid;
        if (at < rid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

//  Appends entry (rid of the request just sent on conn) to conn's ring.
static void
s_ring_push (zr_producer_t *self, s_conn_t *conn, s_pending_t *entry)
{
    s_ring_grow (conn);
    entry->rid = zr_client_rid (conn->client);
    entry->done = false;
    *s_at (conn, conn->count) = *entry;
    conn->count++;
    conn->live++;
    self->live++;
    if (entry->deadline < self->next_deadline)
        self->next_deadline = entry->deadline;
}

//  Calls entry's callback with result and frees its message copy.
static void
s_callback (zr_producer_t *self, s_pending_t *entry,
            zr_send_result_t *result)
{
    zr_message_destroy (&entry->msg);
    if (result->status == ZR_TIMEOUT)
        self->timeouts++;
    result->user = entry->arg;
    self->events++;
    if (entry->callback)
        entry->callback (result, entry->arg);
}

//  Re-sends a routed async entry after its attempt on failed ended with
//  result (TIMEOUT or SHUTTING_DOWN: failover; TOPIC/QUEUE_NOT_FOUND:
//  fresh route). Returns 0 when it went out again, -1 when it cannot
//  (no retries, budget or route left): result then holds the status.
static int
s_resend (zr_producer_t *self, s_pending_t *entry, s_conn_t *failed,
          zr_send_result_t *result)
{
    int64_t now = zclock_mono ();
    zr_status_t status = result->status;
    bool reroute = status == ZR_TOPIC_NOT_FOUND || status == ZR_QUEUE_NOT_FOUND;
    if (reroute) {
        if (entry->rerouted)
            return -1;
        entry->rerouted = true;
    }
    else {
        if (status != ZR_TIMEOUT && status != ZR_SHUTTING_DOWN
        &&  status != ZR_NOT_MASTER)
            return -1;
        s_avoid (failed);
        if (entry->attempts >= self->retries || now >= entry->end)
            return -1;
        entry->attempts++;
    }
    zr_send_result_t local;
    s_result_init (&local, entry->msg_id);
    zr_router_route_t *route
        = s_route (self, entry->msg,
                   reroute || s_failover_refresh (self, status), entry->end,
                   &local);
    if (!route)
        return -1;              //  keep the broker's answer
    int queue;
    s_conn_t *conn = s_pick (self, route, entry->msg, reroute ? NULL : failed,
                             &queue, &local);
    if (!conn)
        return -1;
    if (s_send_request (conn, entry->msg, queue, false, false) == -1)
        return -1;
    now = zclock_mono ();
    bool last = entry->attempts >= self->retries;
    entry->deadline = last ? entry->end : now + s_attempt_timeout (self);
    if (entry->deadline > entry->end)
        entry->deadline = entry->end;
    if (entry->deadline <= now)
        entry->deadline = now + 1;
    s_ring_push (self, conn, entry);
    return 0;
}

//  Marks entry i of conn done and calls its callback with the result
//  (reply may be NULL: timeout). A routed entry may be re-sent instead.
static void
s_complete (zr_producer_t *self, s_conn_t *conn, size_t i, zr_reply_t *reply,
            bool force)
{
    s_pending_t entry = *s_at (conn, i);
    s_at (conn, i)->done = true;
    s_at (conn, i)->msg = NULL;         //  now owned by entry
    conn->live--;
    self->live--;
    s_ring_pop_done (conn);
    //  From here the rings may change (the callback may send again).
    zr_send_result_t result;
    s_result_init (&result, entry.msg_id);
    if (reply)
        s_result_from_reply (&result, reply);
    else
        s_result_timeout (conn, self->router ? s_attempt_timeout (self)
                                             : self->timeout,
                          &result);
    if (entry.msg && !force && !zr_status_stored (result.status)
        && s_resend (self, &entry, conn, &result) == 0)
        return;
    s_callback (self, &entry, &result);
}

//  Gives every live entry whose deadline has passed (all live entries
//  when force) its timeout callback, or a re-send.
static void
s_expire (zr_producer_t *self, bool force)
{
    int64_t now = zclock_mono ();
    if (!force && now < self->next_deadline)
        return;
    while (true) {
        int64_t next = INT64_MAX;
        s_conn_t *found_conn = NULL;
        size_t found = 0;
        for (size_t c = 0; c < self->nconns && !found_conn; c++) {
            s_conn_t *conn = self->conns [c];
            for (size_t i = 0; i < conn->count; i++) {
                s_pending_t *entry = s_at (conn, i);
                if (entry->done)
                    continue;
                if (force || entry->deadline <= now) {
                    found_conn = conn;
                    found = i;
                    break;
                }
                if (entry->deadline < next)
                    next = entry->deadline;
            }
        }
        if (!found_conn) {
            self->next_deadline = next;
            return;
        }
        s_complete (self, found_conn, found, NULL, force);
    }
}

//  Hands a reply from conn to its async callback, or returns it when it
//  belongs to the sync send in progress. Other replies (late ones, to
//  requests that already timed out) are dropped.
static zr_reply_t *
s_dispatch (zr_producer_t *self, s_conn_t *conn, zr_reply_t *reply)
{
    uint64_t rid = zr_reply_rid (reply);
    ssize_t i = s_ring_find (conn, rid);
    if (i >= 0) {
        s_complete (self, conn, (size_t) i, reply, false);
        zr_reply_destroy (&reply);
        return NULL;
    }
    if (self->sync_active && conn == self->sync_conn
        && rid >= self->sync_first_rid)
        return reply;
    zr_reply_destroy (&reply);
    return NULL;
}

//  Milliseconds from now until the earliest async deadline, capped at
//  limit (-1: no cap).
static int
s_wait_bound (zr_producer_t *self, int limit)
{
    if (self->live == 0)
        return limit;
    int64_t left = self->next_deadline - zclock_mono ();
    if (left < 0)
        left = 0;
    if (limit >= 0 && left > limit)
        left = limit;
    return left > INT_MAX ? INT_MAX : (int) left;
}

//  Reads replies: waits up to timeout_ms for the first (bounded by the
//  next async deadline), then takes whatever else is queued, then expires
//  overdue entries. Returns a reply of the sync send in progress, if one
//  came (the rest stay queued).
static zr_reply_t *
s_process (zr_producer_t *self, int timeout_ms)
{
    zr_reply_t *mine = NULL;
    int wait = s_wait_bound (self, timeout_ms);
    if (self->nconns == 1 && !self->router) {
        s_conn_t *conn = self->conns [0];
        zr_reply_t *reply = zr_client_recv (conn->client, wait);
        while (reply) {
            mine = s_dispatch (self, conn, reply);
            if (mine)
                break;
            reply = zr_client_recv (conn->client, 0);
        }
        s_expire (self, false);
        return mine;
    }
    size_t n = self->nconns;
    if (n > self->items_cap) {
        self->items_cap = n * 2;
        self->items = (zmq_pollitem_t *) realloc (
            self->items, self->items_cap * sizeof (zmq_pollitem_t));
        assert (self->items);
    }
    for (size_t i = 0; i < n; i++) {
        self->items [i].socket
            = zsock_resolve (zr_client_sock (self->conns [i]->client));
        self->items [i].fd = 0;
        self->items [i].events = ZMQ_POLLIN;
        self->items [i].revents = 0;
    }
    if (n == 0) {
        s_expire (self, false);
        return NULL;
    }
    if (zmq_poll (self->items, (int) n, wait) > 0) {
        //  Callbacks may add connections (never remove them): walk the
        //  ones that were polled, by index.
        for (size_t i = 0; i < n && !mine; i++) {
            if (!(self->items [i].revents & ZMQ_POLLIN))
                continue;
            s_conn_t *conn = self->conns [i];
            zr_reply_t *reply = zr_client_recv (conn->client, 0);
            while (reply) {
                mine = s_dispatch (self, conn, reply);
                if (mine)
                    break;
                reply = zr_client_recv (conn->client, 0);
            }
        }
    }
    s_expire (self, false);
    return mine;
}

//  Waits for the reply of the sync send in progress, until deadline.
static zr_reply_t *
s_wait_reply (zr_producer_t *self, int64_t deadline)
{
    zr_reply_t *reply = NULL;
    while (!reply) {
        int64_t left = deadline - zclock_mono ();
        if (left <= 0)
            break;
        reply = s_process (self, (int) left);
    }
    return reply;
}

//  Backs off before a BUSY retry, still serving async replies.
static void
s_backoff (zr_producer_t *self, int attempt)
{
    int64_t until = zclock_mono ()
                    + (int64_t) ZR_PRODUCER_BUSY_BACKOFF * (attempt + 1);
    int64_t left;
    while ((left = until - zclock_mono ()) > 0) {
        zr_reply_t *late = s_process (self, (int) left);
        zr_reply_destroy (&late);       //  to a given-up attempt
    }
}

//  --------------------------------------------------------------------
//  Sends

static int
s_send_direct (zr_producer_t *self, zr_message_t *msg,
               zr_send_result_t *result)
{
    s_conn_t *conn = self->conns [0];
    self->sync_conn = conn;
    self->sync_first_rid = zr_client_rid (conn->client) + 1;
    for (int attempt = 0;; attempt++) {
        s_result_init (result, zr_message_id (msg));
        if (s_send_request (conn, msg, zr_message_queue (msg), true, false)
            == 0) {
            zr_reply_t *reply
                = s_wait_reply (self, zclock_mono () + self->timeout);
            if (reply)
                s_result_from_reply (result, reply);
            else
                s_result_timeout (conn, self->timeout, result);
            zr_reply_destroy (&reply);
        }
        else {
            result->status = ZR_TIMEOUT;
            snprintf (result->reason, sizeof (result->reason),
                      "cannot send to %s: %s",
                      zr_client_endpoint (conn->client), zmq_strerror (errno));
        }
        if ((result->status != ZR_TIMEOUT && result->status != ZR_BUSY)
            || attempt >= self->retries)
            break;
        if (result->status == ZR_BUSY)
            s_backoff (self, attempt);
    }
    return zr_status_stored (result->status) ? 0 : -1;
}

//  Appends "endpoint (STATUS)" to the list of brokers tried.
static void
s_tried_add (char *tried, size_t size, s_conn_t *conn, zr_status_t status)
{
    size_t len = strlen (tried);
    if (len + 1 >= size)
        return;
    snprintf (tried + len, size - len, "%s%s (%s)", len ? ", " : "",
              zr_client_endpoint (conn->client), zr_status_str (status));
}

static int
s_send_routed (zr_producer_t *self, zr_message_t *msg,
               zr_send_result_t *result)
{
    int64_t end = zclock_mono () + self->timeout;
    s_result_init (result, zr_message_id (msg));
    zr_router_route_t *route = s_route (self, msg, false, end, result);
    if (!route)
        return -1;
    int queue;
    s_conn_t *conn = s_pick (self, route, msg, NULL, &queue, result);
    if (!conn)
        return -1;
    char tried [160] = "";
    bool rerouted = false;
    int attempt = 0;
    int not_master = 0;         //  NOT_MASTER answers asked again
    while (true) {
        s_result_init (result, zr_message_id (msg));
        if (conn != self->sync_conn) {
            self->sync_conn = conn;
            self->sync_first_rid = zr_client_rid (conn->client) + 1;
        }
        int64_t now = zclock_mono ();
        int64_t deadline = attempt >= self->retries
                               ? end
                               : now + s_attempt_timeout (self);
        if (deadline > end)
            deadline = end;
        if (s_send_request (conn, msg, queue, false, false) == 0) {
            zr_reply_t *reply = s_wait_reply (self, deadline);
            if (reply)
                s_result_from_reply (result, reply);
            else
                s_result_timeout (conn, (int) (deadline - now), result);
            zr_reply_destroy (&reply);
        }
        else {
            result->status = ZR_TIMEOUT;
            snprintf (result->reason, sizeof (result->reason),
                      "cannot send to %s: %s",
                      zr_client_endpoint (conn->client), zmq_strerror (errno));
        }
        zr_status_t status = result->status;
        if (zr_status_stored (status))
            break;
        s_tried_add (tried, sizeof (tried), conn, status);
        if ((status == ZR_TOPIC_NOT_FOUND || status == ZR_QUEUE_NOT_FOUND)
            && !rerouted) {
            //  Stale route: once, with a fresh one.
            rerouted = true;
            zr_send_result_t local;
            s_result_init (&local, zr_message_id (msg));
            route = s_route (self, msg, true, end, &local);
            if (!route) {
                *result = local;
                break;
            }
            s_conn_t *next = s_pick (self, route, msg, NULL, &queue, &local);
            if (!next)
                break;
            conn = next;
            continue;
        }
        //  NOT_MASTER is no failure of the broker's but a master moving
        //  (a handover pauses writes for a moment, a failover names a new
        //  master): asked again within the budget, backing off, without
        //  counting against retries.
        bool moving = status == ZR_NOT_MASTER
                   && not_master < NOT_MASTER_TRIES
                   && zclock_mono () < end;
        if (moving) {
            not_master++;
            s_avoid (conn);
            s_backoff (self, not_master < 5 ? not_master : 5);
            zr_send_result_t local;
            s_result_init (&local, zr_message_id (msg));
            zr_router_route_t *fresh = s_route (self, msg,
                                                s_failover_refresh (self,
                                                                    status),
                                                end, &local);
            if (fresh) {
                s_conn_t *next = s_pick (self, fresh, msg, NULL, &queue,
                                         &local);
                if (next)
                    conn = next;
            }
            continue;
        }
        if ((status != ZR_TIMEOUT && status != ZR_BUSY
             && status != ZR_SHUTTING_DOWN && status != ZR_NOT_MASTER)
            || attempt >= self->retries || zclock_mono () >= end)
            break;
        attempt++;
        if (status == ZR_BUSY) {
            s_backoff (self, attempt - 1);
            continue;
        }
        s_avoid (conn);
        if (status == ZR_NOT_MASTER)
            s_backoff (self, 0);    //  the new master may still be starting
        zr_send_result_t local;
        s_result_init (&local, zr_message_id (msg));
        zr_router_route_t *fresh = s_route (self, msg,
                                            s_failover_refresh (self, status),
                                            end, &local);
        const char *shard = zr_message_sharding_key (msg);
        if (*shard || zr_message_queue (msg) >= 0) {
            //  never moved off its pair: the pair's (new) master
            if (fresh) {
                s_conn_t *next = s_pick (self, fresh, msg, NULL, &queue,
                                         &local);
                if (next)
                    conn = next;
            }
            continue;
        }
        if (fresh) {
            s_conn_t *next = s_pick (self, fresh, msg, conn, &queue, &local);
            if (next)
                conn = next;
        }
    }
    if (!zr_status_stored (result->status) && (attempt > 0 || rerouted)) {
        //  Name every broker tried, after the last one's own reason.
        char last [sizeof (result->reason)];
        s_copy (last, sizeof (last), result->reason);
        snprintf (result->reason, sizeof (result->reason),
                  "no broker took the message (tried %.120s): %.90s", tried,
                  last);
    }
    return zr_status_stored (result->status) ? 0 : -1;
}

int
zr_producer_send (zr_producer_t *self, zr_message_t *msg,
                  zr_send_result_t *result)
{
    assert (self);
    assert (msg);
    zr_send_result_t local;
    if (!result)
        result = &local;
    s_prepare (self, msg);
    self->depth++;
    s_conn_gc (self);

    //  A callback run while we wait may itself send synchronously: keep
    //  the outer send's state.
    bool outer_active = self->sync_active;
    s_conn_t *outer_conn = self->sync_conn;
    uint64_t outer_first = self->sync_first_rid;
    self->sync_active = true;
    self->sync_conn = NULL;
    int rc = self->router ? s_send_routed (self, msg, result)
                          : s_send_direct (self, msg, result);
    self->sync_active = outer_active;
    self->sync_conn = outer_conn;
    self->sync_first_rid = outer_first;
    self->depth--;
    return rc;
}

int
zr_producer_send_async (zr_producer_t *self, zr_message_t *msg,
                        zr_send_fn *callback, void *arg)
{
    assert (self);
    assert (msg);
    s_prepare (self, msg);
    self->depth++;
    s_conn_gc (self);
    int rc = 0;
    //  Window full: read replies (their callbacks run) until there is
    //  room; entries time out, so this ends.
    while (self->live >= (size_t) self->max_inflight) {
        zr_reply_t *late = s_process (self, self->timeout);
        zr_reply_destroy (&late);
    }
    s_pending_t entry;
    memset (&entry, 0, sizeof (entry));
    entry.callback = callback;
    entry.arg = arg;
    memcpy (entry.msg_id, zr_message_id (msg), ZR_MSG_ID_LEN + 1);
    int64_t now = zclock_mono ();
    s_conn_t *conn = NULL;
    if (self->router) {
        entry.end = now + self->timeout;
        zr_send_result_t result;
        s_result_init (&result, entry.msg_id);
        zr_router_route_t *route = s_route (self, msg, false, entry.end,
                                            &result);
        int queue = -1;
        if (route)
            conn = s_pick (self, route, msg, NULL, &queue, &result);
        if (!conn) {
            //  No route: the callback says why, now.
            s_callback (self, &entry, &result);
            self->depth--;
            return 0;
        }
        if (s_send_request (conn, msg, queue, false, false) == -1)
            rc = -1;
        else {
            entry.msg = s_message_copy (msg);
            entry.deadline = self->retries > 0
                                 ? now + s_attempt_timeout (self)
                                 : entry.end;
        }
    }
    else {
        conn = self->conns [0];
        if (s_send_request (conn, msg, zr_message_queue (msg), true, false)
            == -1)
            rc = -1;
        entry.deadline = now + self->timeout;
    }
    if (rc == 0) {
        s_ring_push (self, conn, &entry);
        //  Take replies that are already here, so they do not pile up.
        if (self->live >= (size_t) self->max_inflight / 2) {
            zr_reply_t *late = s_process (self, 0);
            zr_reply_destroy (&late);
        }
    }
    self->depth--;
    return rc;
}

int
zr_producer_send_oneway (zr_producer_t *self, zr_message_t *msg)
{
    assert (self);
    assert (msg);
    s_prepare (self, msg);
    if (!self->router)
        return s_send_request (self->conns [0], msg, zr_message_queue (msg),
                               true, true);
    self->depth++;
    s_conn_gc (self);
    zr_send_result_t result;
    s_result_init (&result, zr_message_id (msg));
    zr_router_route_t *route
        = s_route (self, msg, false, zclock_mono () + self->timeout, &result);
    int queue = -1;
    s_conn_t *conn
        = route ? s_pick (self, route, msg, NULL, &queue, &result) : NULL;
    int rc = conn ? s_send_request (conn, msg, queue, false, true) : -1;
    self->depth--;
    return rc;
}

int
zr_producer_poll (zr_producer_t *self, int timeout_ms)
{
    assert (self);
    self->depth++;
    s_conn_gc (self);
    int64_t end = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    uint64_t events = self->events;
    while (self->live > 0) {
        int64_t left = end - zclock_mono ();
        zr_reply_t *late = s_process (self, left > 0 ? (int) left : 0);
        zr_reply_destroy (&late);
        if (self->events != events || left <= 0)
            break;
    }
    self->depth--;
    return (int) self->live;
}

//  Returns -1 when some async send timed out since the last flush
//  (including ones forced to time out here when timeout_ms runs out;
//  timeout_ms < 0: wait for each send's own deadline).
int
zr_producer_flush (zr_producer_t *self, int timeout_ms)
{
    assert (self);
    self->depth++;
    s_conn_gc (self);
    int64_t end = timeout_ms >= 0 ? zclock_mono () + timeout_ms : INT64_MAX;
    while (self->live > 0) {
        int64_t left = end - zclock_mono ();
        if (left <= 0) {
            s_expire (self, true);
            break;
        }
        zr_reply_t *late
            = s_process (self, left > INT_MAX ? INT_MAX : (int) left);
        zr_reply_destroy (&late);
    }
    int rc = self->timeouts ? -1 : 0;
    self->timeouts = 0;
    self->depth--;
    return rc;
}

//  --------------------------------------------------------------------
//  Batch send (docs/protocol.md section 12, SEND_BATCH)

//  Sets every result to status and reason.
static void
s_batch_fail (zr_send_result_t *results, size_t count, zr_status_t status,
              const char *reason)
{
    for (size_t i = 0; results && i < count; i++) {
        results [i].status = status;
        s_copy (results [i].reason, sizeof (results [i].reason), reason);
    }
}

//  Encodes one SEND_BATCH message map.
static void
s_batch_msg (zr_enc_t *enc, zr_message_t *msg)
{
    const char *tags = zr_message_tags (msg);
    const char *keys = zr_message_keys (msg);
    zhashx_t *props = zr_message_props (msg);
    size_t nprops = props ? zhashx_size (props) : 0;
    zr_enc_map (enc, 2 + (*tags != 0) + (*keys != 0) + (nprops > 0));
    zr_enc_kstr (enc, "id", zr_message_id (msg));
    zr_enc_kint (enc, "born", zr_message_born (msg));
    if (*tags)
        zr_enc_kstr (enc, "tags", tags);
    if (*keys)
        zr_enc_kstr (enc, "keys", keys);
    if (nprops) {
        zr_enc_str (enc, "props");
        zr_enc_map (enc, nprops);
        for (const char *value = (const char *) zhashx_first (props); value;
             value = (const char *) zhashx_next (props)) {
            zr_enc_str (enc, (const char *) zhashx_cursor (props));
            zr_enc_str (enc, value);
        }
    }
}

//  Fills the results from a SEND_BATCH reply; returns 0 when stored.
static int
s_batch_results (zr_send_result_t *results, size_t count, zr_reply_t *reply)
{
    zr_send_result_t head;
    s_result_init (&head, "");
    s_result_from_reply (&head, reply);
    const zr_obj_t *hdr = zr_reply_header (reply);
    const zr_obj_t *list = zr_obj_get (hdr, "results");
    bool stored = zr_status_stored (head.status);
    if (stored && (!zr_obj_is_array (list) || zr_obj_size (list) != count)) {
        s_batch_fail (results, count, ZR_MALFORMED,
                      "SEND_BATCH reply without one result per message");
        return -1;
    }
    for (size_t i = 0; results && i < count; i++) {
        zr_send_result_t *r = &results [i];
        r->status = head.status;
        s_copy (r->reason, sizeof (r->reason), head.reason);
        r->flush_sync = head.flush_sync;
        if (!stored)
            continue;
        const zr_obj_t *m = zr_obj_at (list, i);
        int64_t value;
        r->queue = head.queue;
        if (zr_field_strbuf (m, "store_id", r->store_id,
                             sizeof (r->store_id)) != ZR_FIELD_OK)
            r->store_id [0] = 0;
        if (zr_field_int (m, "offset", &value) == ZR_FIELD_OK && value >= 0)
            r->offset = value;
        char id [ZR_MSG_ID_LEN + 1];
        if (zr_field_strbuf (m, "id", id, sizeof (id)) == ZR_FIELD_OK && *id)
            memcpy (r->msg_id, id, sizeof (id));
    }
    return stored ? 0 : -1;
}

int
zr_producer_send_batch (zr_producer_t *self, zr_message_t **msgs,
                        size_t count, zr_send_result_t *results)
{
    assert (self);
    for (size_t i = 0; i < count; i++) {
        assert (msgs [i]);
        s_prepare (self, msgs [i]);
        if (results)
            s_result_init (&results [i], zr_message_id (msgs [i]));
    }
    if (count == 0)
        return -1;
    for (size_t i = 1; i < count; i++)
        if (strneq (zr_message_topic (msgs [i]), zr_message_topic (msgs [0]))) {
            s_batch_fail (results, count, ZR_BAD_ARGUMENT,
                          "a batch goes to one topic: message 0 is for "
                          "another topic than a later one");
            return -1;
        }
    self->depth++;
    s_conn_gc (self);
    zr_send_result_t local;
    s_result_init (&local, "");
    int queue = zr_message_queue (msgs [0]);
    bool shard_on = true;
    s_conn_t *conn = NULL;
    if (self->router) {
        int64_t end = zclock_mono () + self->timeout;
        zr_router_route_t *route = s_route (self, msgs [0], false, end,
                                            &local);
        conn = route ? s_pick (self, route, msgs [0], NULL, &queue, &local)
                     : NULL;
        shard_on = false;
    }
    else
        conn = self->conns [0];
    if (!conn) {
        s_batch_fail (results, count, local.status, local.reason);
        self->depth--;
        return -1;
    }
    bool outer_active = self->sync_active;
    s_conn_t *outer_conn = self->sync_conn;
    uint64_t outer_first = self->sync_first_rid;
    self->sync_active = true;
    self->sync_conn = conn;
    self->sync_first_rid = zr_client_rid (conn->client) + 1;

    const char *shard = shard_on ? zr_message_sharding_key (msgs [0]) : "";
    zr_enc_t *enc = zr_client_begin (conn->client, "SEND_BATCH",
                                     2 + (queue >= 0) + (*shard != 0));
    zr_enc_kstr (enc, "topic", zr_message_topic (msgs [0]));
    if (queue >= 0)
        zr_enc_kint (enc, "queue", queue);
    if (*shard)
        zr_enc_kstr (enc, "shard", shard);
    zr_enc_str (enc, "msgs");
    zr_enc_array (enc, count);
    const void **data = (const void **) malloc (sizeof (void *) * count);
    size_t *size = (size_t *) malloc (sizeof (size_t) * count);
    for (size_t i = 0; i < count; i++) {
        s_batch_msg (enc, msgs [i]);
        data [i] = zr_message_body (msgs [i]);
        size [i] = zr_message_size (msgs [i]);
    }
    int rc = -1;
    if (zr_client_send (conn->client, data, size, count) == 0) {
        zr_reply_t *reply = s_wait_reply (self,
                                          zclock_mono () + self->timeout);
        if (reply)
            rc = s_batch_results (results, count, reply);
        else {
            s_result_timeout (conn, self->timeout, &local);
            s_batch_fail (results, count, local.status, local.reason);
        }
        zr_reply_destroy (&reply);
    }
    else {
        char reason [256];
        snprintf (reason, sizeof (reason), "cannot send to %s: %s",
                  zr_client_endpoint (conn->client), zmq_strerror (errno));
        s_batch_fail (results, count, ZR_TIMEOUT, reason);
    }
    free (data);
    free (size);
    self->sync_active = outer_active;
    self->sync_conn = outer_conn;
    self->sync_first_rid = outer_first;
    self->depth--;
    return rc;
}
