/*  client/producer.c - zr_producer_t: sync, async (pipelined) and oneway
    SEND over one zr_client_t DEALER (docs/protocol.md, SEND).

    Message ids: 32 lowercase hex digits made of 8 random bytes (one draw
    per producer), 4 bytes of process start time (seconds, taken when the
    process makes its first producer) and a 4-byte per-producer counter
    (starting at a random value), all big-endian. The id is written into the
    message when it has none, so every retry of that send (and any later
    send of the same zr_message_t) carries the same id.

    Async sends: each request's rid goes into a ring of in-flight entries
    in send order (rids only grow, so the ring is sorted by rid and a
    reply finds its entry by binary search; replies usually come in order
    and hit the head). The ring's size is the window: when it holds
    max_inflight entries, the sender reads replies before sending more.
    An entry whose reply has not come by its deadline gets its callback
    with ZR_TIMEOUT; a reply that comes after that is dropped.

    A sync send reads the same socket: replies to async sends that arrive
    while it waits go to their callbacks, and its own reply is the one
    with a rid it sent (any attempt of this send).

    Not thread-safe: one producer per thread. Callbacks run in the thread
    that calls send / send_async / poll / flush, and may send again (a
    sync send from a callback that runs inside another sync send works,
    but should the outer send's reply come meanwhile, it is dropped and
    the outer send retries after its timeout). A callback must not
    destroy the producer. Destroying a producer drops the sends still in
    flight without callbacks: flush first.
*/
#include "client/client.h"

#define ZR_PRODUCER_TIMEOUT 3000
#define ZR_PRODUCER_RETRIES 2
#define ZR_PRODUCER_WINDOW 256
#define ZR_PRODUCER_BUSY_BACKOFF 20     //  ms, times the attempt number

typedef struct {
    uint64_t rid;
    int64_t deadline;           //  zclock_mono ms
    zr_send_fn *callback;
    void *arg;
    bool done;                  //  answered or expired, waiting to pop
    char msg_id [ZR_MSG_ID_LEN + 1];
} s_pending_t;

struct _zr_producer_t {
    zr_client_t *client;
    int timeout;                //  ms
    int retries;
    int max_inflight;

    //  Async ring: entries ring[(head + i) % cap] for i < count, in rid
    //  order; the head is never done (done heads are popped).
    s_pending_t *ring;
    size_t cap;
    size_t head;
    size_t count;
    size_t live;                //  entries not done
    int64_t next_deadline;      //  no live entry expires before this
    size_t timeouts;            //  async timeouts since the last flush
    uint64_t events;            //  callbacks called so far

    //  Sync send in progress: replies with rid >= sync_first_rid that are
    //  not async are its replies.
    bool sync_active;
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

zr_producer_t *
zr_producer_new (const char *endpoint)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        return NULL;
    pthread_once (&s_start_once, s_start_init);
    zr_producer_t *self = (zr_producer_t *) zmalloc (sizeof (zr_producer_t));
    assert (self);
    self->client = client;
    self->timeout = ZR_PRODUCER_TIMEOUT;
    self->retries = ZR_PRODUCER_RETRIES;
    self->max_inflight = ZR_PRODUCER_WINDOW;
    self->next_deadline = INT64_MAX;
    s_random (self->random, sizeof (self->random));
    byte c [4];
    s_random (c, sizeof (c));
    self->counter = (uint32_t) c [0] << 24 | (uint32_t) c [1] << 16
                    | (uint32_t) c [2] << 8 | c [3];
    return self;
}

//  Sends in flight get no callback: call zr_producer_flush first.
void
zr_producer_destroy (zr_producer_t **self_p)
{
    assert (self_p);
    zr_producer_t *self = *self_p;
    if (!self)
        return;
    zr_client_destroy (&self->client);
    free (self->ring);
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

//  Begins a SEND request for msg in the client's encoder and sends it.
//  Returns 0, or -1 when the socket stayed full.
static int
s_send_request (zr_producer_t *self, zr_message_t *msg, bool oneway)
{
    const char *shard = zr_message_sharding_key (msg);
    const char *tags = zr_message_tags (msg);
    const char *keys = zr_message_keys (msg);
    zhashx_t *props = zr_message_props (msg);
    int queue = zr_message_queue (msg);
    size_t nprops = props ? zhashx_size (props) : 0;

    size_t fields = 3;          //  topic, id, born
    fields += queue >= 0;
    fields += *shard != 0;
    fields += *tags != 0;
    fields += *keys != 0;
    fields += nprops > 0;
    fields += oneway;
    zr_enc_t *enc = zr_client_begin (self->client, "SEND", fields);
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

    const void *data [1] = { zr_message_body (msg) };
    size_t size [1] = { zr_message_size (msg) };
    return zr_client_send (self->client, data, size, 1);
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
s_result_timeout (zr_producer_t *self, zr_send_result_t *result)
{
    result->status = ZR_TIMEOUT;
    snprintf (result->reason, sizeof (result->reason),
              "no reply from %s within %d ms",
              zr_client_endpoint (self->client), self->timeout);
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
    char flush [8];
    result->flush_sync
        = zr_field_strbuf (hdr, "flush", flush, sizeof (flush)) == ZR_FIELD_OK
          && streq (flush, "sync");
}

//  --------------------------------------------------------------------
//  Async ring

static s_pending_t *
s_at (zr_producer_t *self, size_t i)
{
    return &self->ring [(self->head + i) % self->cap];
}

//  Makes room for one more entry.
static void
s_ring_grow (zr_producer_t *self)
{
    if (self->count < self->cap)
        return;
    size_t cap = self->cap ? self->cap * 2 : 64;
    s_pending_t *ring = (s_pending_t *) malloc (cap * sizeof (s_pending_t));
    assert (ring);
    for (size_t i = 0; i < self->count; i++)
        ring [i] = *s_at (self, i);
    free (self->ring);
    self->ring = ring;
    self->cap = cap;
    self->head = 0;
}

static void
s_ring_pop_done (zr_producer_t *self)
{
    while (self->count && s_at (self, 0)->done) {
        self->head = (self->head + 1) % self->cap;
        self->count--;
    }
}

//  Index of the live entry with rid, or -1.
static ssize_t
s_ring_find (zr_producer_t *self, uint64_t rid)
{
    if (!self->count)
        return -1;
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t at = s_at (self, mid)->rid;
        if (at == rid)
            return s_at (self, mid)->done ? -1 : (ssize_t) mid;
        if (at < rid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

//  Marks entry i done and calls its callback with result (reply may be
//  NULL: timeout).
static void
s_complete (zr_producer_t *self, size_t i, zr_reply_t *reply)
{
    s_pending_t entry = *s_at (self, i);
    s_at (self, i)->done = true;
    self->live--;
    s_ring_pop_done (self);
    //  From here the ring may change (the callback may send again).
    zr_send_result_t result;
    s_result_init (&result, entry.msg_id);
    if (reply)
        s_result_from_reply (&result, reply);
    else {
        s_result_timeout (self, &result);
        self->timeouts++;
    }
    result.user = entry.arg;
    self->events++;
    if (entry.callback)
        entry.callback (&result, entry.arg);
}

//  Gives every live entry whose deadline has passed (all live entries
//  when force) its timeout callback.
static void
s_expire (zr_producer_t *self, bool force)
{
    int64_t now = zclock_mono ();
    if (!force && now < self->next_deadline)
        return;
    while (true) {
        int64_t next = INT64_MAX;
        ssize_t found = -1;
        for (size_t i = 0; i < self->count; i++) {
            s_pending_t *entry = s_at (self, i);
            if (entry->done)
                continue;
            if (force || entry->deadline <= now) {
                found = (ssize_t) i;
                break;
            }
            if (entry->deadline < next)
                next = entry->deadline;
        }
        if (found < 0) {
            self->next_deadline = next;
            return;
        }
        s_complete (self, (size_t) found, NULL);
    }
}

//  Hands a reply to its async callback, or returns it when it belongs to
//  the sync send in progress. Other replies (late ones, to requests that
//  already timed out) are dropped.
static zr_reply_t *
s_route (zr_producer_t *self, zr_reply_t *reply)
{
    uint64_t rid = zr_reply_rid (reply);
    ssize_t i = s_ring_find (self, rid);
    if (i >= 0) {
        s_complete (self, (size_t) i, reply);
        zr_reply_destroy (&reply);
        return NULL;
    }
    if (self->sync_active && rid >= self->sync_first_rid)
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
    zr_reply_t *reply
        = zr_client_recv (self->client, s_wait_bound (self, timeout_ms));
    while (reply) {
        mine = s_route (self, reply);
        if (mine)
            break;
        reply = zr_client_recv (self->client, 0);
    }
    s_expire (self, false);
    return mine;
}

//  --------------------------------------------------------------------
//  Sends

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

    //  A callback run while we wait may itself send synchronously: keep
    //  the outer send's state.
    bool outer_active = self->sync_active;
    uint64_t outer_first = self->sync_first_rid;
    self->sync_active = true;
    self->sync_first_rid = zr_client_rid (self->client) + 1;

    for (int attempt = 0;; attempt++) {
        s_result_init (result, zr_message_id (msg));
        if (s_send_request (self, msg, false) == 0) {
            int64_t deadline = zclock_mono () + self->timeout;
            zr_reply_t *reply = NULL;
            while (!reply) {
                int64_t left = deadline - zclock_mono ();
                if (left <= 0)
                    break;
                reply = s_process (self, (int) left);
            }
            if (reply)
                s_result_from_reply (result, reply);
            else
                s_result_timeout (self, result);
            zr_reply_destroy (&reply);
        }
        else {
            result->status = ZR_TIMEOUT;
            snprintf (result->reason, sizeof (result->reason),
                      "cannot send to %s: %s",
                      zr_client_endpoint (self->client), zmq_strerror (errno));
        }
        if ((result->status != ZR_TIMEOUT && result->status != ZR_BUSY)
            || attempt >= self->retries)
            break;
        if (result->status == ZR_BUSY) {
            //  Back off while still serving async replies on the socket.
            int64_t until = zclock_mono ()
                            + (int64_t) ZR_PRODUCER_BUSY_BACKOFF * (attempt + 1);
            int64_t left;
            while ((left = until - zclock_mono ()) > 0) {
                zr_reply_t *late = s_process (self, (int) left);
                zr_reply_destroy (&late);       //  to a given-up attempt
            }
        }
    }
    self->sync_active = outer_active;
    self->sync_first_rid = outer_first;
    return zr_status_stored (result->status) ? 0 : -1;
}

int
zr_producer_send_async (zr_producer_t *self, zr_message_t *msg,
                        zr_send_fn *callback, void *arg)
{
    assert (self);
    assert (msg);
    s_prepare (self, msg);
    //  Window full: read replies (their callbacks run) until there is
    //  room; entries time out, so this ends.
    while (self->count >= (size_t) self->max_inflight) {
        zr_reply_t *late = s_process (self, self->timeout);
        zr_reply_destroy (&late);
    }
    if (s_send_request (self, msg, false) == -1)
        return -1;
    s_ring_grow (self);
    s_pending_t *entry = s_at (self, self->count);
    entry->rid = zr_client_rid (self->client);
    entry->deadline = zclock_mono () + self->timeout;
    entry->callback = callback;
    entry->arg = arg;
    entry->done = false;
    memcpy (entry->msg_id, zr_message_id (msg), ZR_MSG_ID_LEN + 1);
    self->count++;
    self->live++;
    if (entry->deadline < self->next_deadline)
        self->next_deadline = entry->deadline;
    //  Take replies that are already here, so they do not pile up.
    if (self->count >= (size_t) self->max_inflight / 2) {
        zr_reply_t *late = s_process (self, 0);
        zr_reply_destroy (&late);
    }
    return 0;
}

int
zr_producer_send_oneway (zr_producer_t *self, zr_message_t *msg)
{
    assert (self);
    assert (msg);
    s_prepare (self, msg);
    return s_send_request (self, msg, true);
}

int
zr_producer_poll (zr_producer_t *self, int timeout_ms)
{
    assert (self);
    int64_t end = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    uint64_t events = self->events;
    while (self->live > 0) {
        int64_t left = end - zclock_mono ();
        zr_reply_t *late = s_process (self, left > 0 ? (int) left : 0);
        zr_reply_destroy (&late);
        if (self->events != events || left <= 0)
            break;
    }
    return (int) self->live;
}

//  Returns -1 when some async send timed out since the last flush
//  (including ones forced to time out here when timeout_ms runs out;
//  timeout_ms < 0: wait for each send's own deadline).
int
zr_producer_flush (zr_producer_t *self, int timeout_ms)
{
    assert (self);
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
    return rc;
}
