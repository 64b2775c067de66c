/*  broker/repl.c - master/slave replication (docs/protocol.md section 16).

    Pipe messages, broker thread -> master actor:
        BATCH epoch seq hash payload    a commit to publish (dropped when
                                        the pipe is full: slaves repair)
        RECORDED ids ver                failover: the slaves (broker ids,
                                        comma-separated) the nameservers
                                        may have recorded, counting every
                                        in-sync set up to version ver
    master actor -> broker thread:
        OK ha-endpoint pub-endpoint | ERROR reason  (once, at start)
        HWM hwm insync                  high-water mark or set changed
        INFO map                        stats (msgpack), every 200 ms
    broker thread -> slave actor:
        APPLIED seq | FAILED seq        after applying (seq: last applied)
    slave actor -> broker thread:
        OK | ERROR reason               (once, at start)
        APPLY epoch seq hash payload    next batch, in order
        MASTER endpoint                 the master's client endpoint
        INFO map
        TRUNCATED count end         EPOCH_END: count batches above the
                                    master's end of our epoch (a tail)
                                    are discarded (full copy follows)

    Numbers in binary frames are 8 bytes big-endian. The wire (DEALER to
    ROUTER, and PUB) is in protocol.md section 16.
*/
#include <zrocket.h>
#include "broker/repl.h"
#include "transport/transport.h"

static void s_failover_identity (zsock_t *dealer, int64_t id);
#define RING_SIZE (1 << 16)         //  recent commits (seq, time, size)
#define HEARTBEAT_MS 100
#define INFO_MS 200
#define HELLO_MS 1000
#define FETCH_TIMEOUT_MS 3000
#define FETCH_COUNT 1000
#define FETCH_BYTES (4 * 1024 * 1024)
#define FETCH_COUNT_MAX 10000
#define FETCH_BYTES_MAX (64 * 1024 * 1024)
#define SLAVE_FORGET_MS 60000
#define COPY_CHUNK (1024 * 1024)        //  full copy: bytes per chunk
#define COPY_IDLE_MS 30000              //  checkpoint removed when idle
#define COPY_TIMEOUT_MS 5000            //  slave: chunk asked again

#include <dirent.h>
#include <sys/stat.h>

//  Removes a flat directory (a RocksDB checkpoint) and its files.
static void
s_rmdir_flat (const char *path)
{
    DIR *dir = opendir (path);
    if (dir) {
        struct dirent *e;
        while ((e = readdir (dir))) {
            if (streq (e->d_name, ".") || streq (e->d_name, ".."))
                continue;
            char *f = zsys_sprintf ("%s/%s", path, e->d_name);
            unlink (f);
            zstr_free (&f);
        }
        closedir (dir);
    }
    rmdir (path);
}

//  --------------------------------------------------------------------
//  Frames

static void
s_put_u64 (unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p [i] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}

static int
s_frame_u64 (zframe_t *frame, uint64_t *v)
{
    if (!frame || zframe_size (frame) != 8)
        return -1;
    const unsigned char *p = zframe_data (frame);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++)
        n = (n << 8) | p [i];
    *v = n;
    return 0;
}

static void
s_add_u64 (zmsg_t *msg, uint64_t v)
{
    unsigned char buf [8];
    s_put_u64 (buf, v);
    zmsg_addmem (msg, buf, 8);
}

//  Pops epoch, seq, hash, payload. Returns 0 or -1 (malformed).
static int
s_pop_batch (zmsg_t *msg, uint64_t *epoch, uint64_t *seq,
             zframe_t **hash, zframe_t **payload)
{
    zframe_t *e = zmsg_pop (msg);
    zframe_t *s = zmsg_pop (msg);
    *hash = zmsg_pop (msg);
    *payload = zmsg_pop (msg);
    int rc = s_frame_u64 (e, epoch) || s_frame_u64 (s, seq) || !*hash
          || zframe_size (*hash) != ZR_STORE_HASH_LEN || !*payload ? -1 : 0;
    zframe_destroy (&e);
    zframe_destroy (&s);
    if (rc) {
        zframe_destroy (hash);
        zframe_destroy (payload);
    }
    return rc;
}

//  Sends msg without blocking; returns 0 or -1 (dropped).
static int
s_send_nowait (zmsg_t **msg_p, void *handle)
{
    zmsg_t *msg = *msg_p;
    size_t left = zmsg_size (msg);
    zframe_t *frame = zmsg_first (msg);
    int rc = 0;
    bool first = true;
    while (frame) {
        left--;
        if (zmq_send (handle, zframe_data (frame), zframe_size (frame),
                      (left ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) == -1) {
            rc = -1;
            if (first)
                break;      //  nothing sent: the whole message is dropped
        }
        first = false;
        frame = zmsg_next (msg);
    }
    zmsg_destroy (msg_p);
    return rc;
}

static void
s_hex (const unsigned char *data, size_t size, char *out)
{
    static const char hex [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [i * 2] = hex [data [i] >> 4];
        out [i * 2 + 1] = hex [data [i] & 15];
    }
    out [size * 2] = 0;
}

//  --------------------------------------------------------------------
//  Master actor

typedef struct {
    char key [512];             //  routing id, hex
    zframe_t *identity;
    uint64_t acked;
    int64_t heard;              //  last message, zclock_mono
    int64_t acked_at;
    bool in_sync;
    bool welcomed;
    int64_t bid;                //  broker id ("zrb:ID:..."), or -1
    bool ack_refused;           //  an ACK beyond our history was logged
} slave_t;

//  Failover: a slave broker that still counts for the high-water mark
//  (in sync, or possibly in the nameservers' recorded set).
#define HELD_MAX 128
typedef struct {
    int64_t bid;
    uint64_t acked;             //  highest acked by any of its connections
    uint64_t last_ver;          //  newest in-sync set version holding it
    bool recorded;              //  in the last RECORDED set
    bool counted;               //  held back the HWM at the last update
} held_t;

typedef struct {
    uint64_t seq;
    int64_t time;
    size_t size;
} ring_t;

typedef struct {
    zr_store_t *store;          //  read-only use ("any thread" calls)
    zr_repl_opts_t opts;
    char *ha_bind;
    char *client_ep;
    char *cf_map;
    uint64_t seq;
} master_args_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *pub;
    zsock_t *router;
    zr_store_t *store;
    zr_repl_opts_t opts;
    char *ha_ep;
    char *pub_ep;
    char *client_ep;
    char *cf_map;
    uint64_t epoch;
    uint64_t seq;
    uint64_t hwm;
    int insync;
    ring_t *ring;
    zhashx_t *slaves;
    int64_t published_at;
    int64_t info_at;
    int64_t trim_at;
    uint64_t published;
    uint64_t fetches;
    uint64_t fetched;
    uint64_t trimmed_replies;
    uint64_t refused;
    //  Full copy: one checkpoint at a time, shared by the slaves
    char *cp_dir;
    uint64_t cp_id;
    zlist_t *cp_files;          //  file names, sorted
    int64_t cp_used_at;
    unsigned char *cp_buf;      //  COPY_CHUNK bytes
    uint64_t copies;            //  checkpoints made
    uint64_t copy_chunks;
    int drop_every;             //  test hook: skip every Nth publish
    uint64_t dropped;
    //  Failover (opts.broker_id >= 0): a set shrinks only once recorded
    bool recording;
    uint64_t isr_ver;           //  bumped when the in-sync ids change
    int64_t isr_ids [HELD_MAX];
    size_t isr_count;
    uint64_t recorded_ver;      //  version the last RECORDED counts to
    held_t held [HELD_MAX];
    size_t held_count;
    uint64_t epoch_ends;        //  EPOCH_END requests answered
} master_t;

static void
s_slave_free (void **item)
{
    slave_t *slave = (slave_t *) *item;
    if (slave) {
        zframe_destroy (&slave->identity);
        free (slave);
        *item = NULL;
    }
}

//  Time batch seq was committed, or -1 when no longer known.
static int64_t
s_ring_time (master_t *self, uint64_t seq)
{
    ring_t *r = &self->ring [seq & (RING_SIZE - 1)];
    return r->seq == seq ? r->time : -1;
}

static void
s_slave_lag (master_t *self, slave_t *slave, int64_t now, uint64_t *seqs,
             uint64_t *bytes, int64_t *ms)
{
    *seqs = slave->acked >= self->seq ? 0 : self->seq - slave->acked;
    *bytes = 0;
    *ms = 0;
    if (*seqs == 0)
        return;
    int64_t t = s_ring_time (self, slave->acked + 1);
    *ms = t < 0 ? INT64_MAX / 2 : now - t;
    uint64_t n = *seqs < RING_SIZE ? *seqs : RING_SIZE;
    for (uint64_t s = self->seq - n + 1; s <= self->seq; s++) {
        ring_t *r = &self->ring [s & (RING_SIZE - 1)];
        if (r->seq == s)
            *bytes += r->size;
    }
}

static held_t *
s_held (master_t *self, int64_t bid, bool create)
{
    for (size_t i = 0; i < self->held_count; i++)
        if (self->held [i].bid == bid)
            return &self->held [i];
    if (!create)
        return NULL;
    if (self->held_count == HELD_MAX) {
        zsys_warning ("repl: more than %d slave brokers to track; broker %"
                      PRId64 " is not held", HELD_MAX, bid);
        return NULL;
    }
    held_t *h = &self->held [self->held_count++];
    memset (h, 0, sizeof *h);
    h->bid = bid;
    h->acked = self->hwm;       //  never seen: hold the HWM where it is
    return h;
}

static int
s_bid_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Failover: a slave broker that left the in-sync set still holds the
//  high-water mark (its last acked) and counts for min-insync while the
//  nameservers may have it recorded, i.e. until a RECORDED set that
//  accounts for every in-sync set it was in (ver) lacks it. A candidate
//  must be in the set the nameservers recorded, so a slave lacking an
//  acknowledged write can never win an election (protocol section 16).
static void
s_isr_hold (master_t *self, uint64_t *hwm, int *insync)
{
    int64_t ids [HELD_MAX];
    size_t n = 0;
    slave_t *slave = (slave_t *) zhashx_first (self->slaves);
    while (slave) {
        if (slave->in_sync && slave->bid >= 0 && n < HELD_MAX)
            ids [n++] = slave->bid;
        slave = (slave_t *) zhashx_next (self->slaves);
    }
    qsort (ids, n, sizeof (int64_t), s_bid_cmp);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || ids [u - 1] != ids [i])
            ids [u++] = ids [i];
    n = u;
    if (n != self->isr_count
    ||  memcmp (ids, self->isr_ids, n * sizeof (int64_t))) {
        self->isr_ver++;
        memcpy (self->isr_ids, ids, n * sizeof (int64_t));
        self->isr_count = n;
    }
    for (size_t i = 0; i < n; i++) {
        held_t *h = s_held (self, ids [i], true);
        if (h)
            h->last_ver = self->isr_ver;
    }
    slave = (slave_t *) zhashx_first (self->slaves);
    while (slave) {
        held_t *h = slave->bid >= 0 ? s_held (self, slave->bid, false)
                                    : NULL;
        if (h && slave->welcomed && slave->acked > h->acked)
            h->acked = slave->acked;
        slave = (slave_t *) zhashx_next (self->slaves);
    }
    size_t keep = 0;
    for (size_t i = 0; i < self->held_count; i++) {
        held_t *h = &self->held [i];
        bool in = bsearch (&h->bid, ids, n, sizeof (int64_t), s_bid_cmp)
                  != NULL;
        bool counted = !in && (h->recorded
                               || h->last_ver > self->recorded_ver);
        if (counted) {
            (*insync)++;
            if (h->acked < *hwm)
                *hwm = h->acked;
            if (!h->counted)
                zsys_info ("repl: broker %" PRId64 " left the in-sync set; "
                           "the smaller set is pending nameserver "
                           "confirmation: acknowledgements still wait for "
                           "it (acked %" PRIu64 ")", h->bid, h->acked);
        }
        else
        if (h->counted)
            zsys_info ("repl: a majority of nameservers recorded the "
                       "in-sync set without broker %" PRId64 ": the smaller "
                       "set takes effect", h->bid);
        h->counted = counted;
        if (in || counted)
            self->held [keep++] = *h;
    }
    self->held_count = keep;
}

//  RECORDED ids ver: see the top of the file.
static void
s_master_recorded (master_t *self, zmsg_t *msg)
{
    char *list = zmsg_popstr (msg);
    char *ver = zmsg_popstr (msg);
    uint64_t v = ver ? strtoull (ver, NULL, 10) : 0;
    if (list && ver && self->recording && v >= self->recorded_ver) {
        self->recorded_ver = v;
        for (size_t i = 0; i < self->held_count; i++)
            self->held [i].recorded = false;
        char *save = NULL;
        for (char *t = strtok_r (list, ",", &save); t;
             t = strtok_r (NULL, ",", &save)) {
            held_t *h = s_held (self, strtoll (t, NULL, 10), true);
            if (h)
                h->recorded = true;
        }
    }
    zstr_free (&list);
    zstr_free (&ver);
}

//  Recomputes the in-sync set and the high-water mark; tells the broker
//  when either moved.
static void
s_isr_update (master_t *self)
{
    int64_t now = zclock_mono ();
    uint64_t hwm = self->seq;
    int insync = 1;
    slave_t *slave = (slave_t *) zhashx_first (self->slaves);
    while (slave) {
        int64_t lag_ms = 0;
        if (slave->acked < self->seq) {
            int64_t t = s_ring_time (self, slave->acked + 1);
            lag_ms = t < 0 ? INT64_MAX / 2 : now - t;
        }
        //  Only a slave that said HELLO (and was welcomed) can be in the
        //  set: any other peer of the ROUTER (a stray client on a reused
        //  port, a garbage sender) must not hold the high-water mark.
        bool dead = !slave->welcomed
                 || now - slave->heard > self->opts.isr_max_lag_ms;
        if (slave->in_sync && (dead || lag_ms > self->opts.isr_max_lag_ms)) {
            slave->in_sync = false;
            zsys_info ("repl: slave %.16s left the in-sync set (acked %"
                       PRIu64 " of %" PRIu64 ")", slave->key, slave->acked,
                       self->seq);
        }
        else
        if (!slave->in_sync && !dead && slave->acked >= self->seq) {
            slave->in_sync = true;
            zsys_info ("repl: slave %.16s joined the in-sync set at %"
                       PRIu64, slave->key, slave->acked);
        }
        if (slave->in_sync) {
            insync++;
            if (slave->acked < hwm)
                hwm = slave->acked;
        }
        slave = (slave_t *) zhashx_next (self->slaves);
    }
    if (self->recording)
        s_isr_hold (self, &hwm, &insync);
    if (hwm != self->hwm || insync != self->insync) {
        self->hwm = hwm;
        self->insync = insync;
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, "HWM");
        s_add_u64 (msg, hwm);
        zmsg_addstrf (msg, "%d", insync);
        zmsg_send (&msg, self->pipe);
    }
}

static void
s_master_info (master_t *self)
{
    int64_t now = zclock_mono ();
    zr_enc_t *e = zr_enc_new ();
    zr_enc_map (e, 17);
    zr_enc_kstr (e, "pub_endpoint", self->pub_ep);
    zr_enc_kint (e, "isr_ver", (int64_t) self->isr_ver);
    size_t held = 0;
    for (size_t i = 0; i < self->held_count; i++)
        held += self->held [i].counted;
    zr_enc_str (e, "isr_held");
    zr_enc_array (e, held);
    for (size_t i = 0; i < self->held_count; i++)
        if (self->held [i].counted)
            zr_enc_int (e, self->held [i].bid);
    held = 0;
    for (size_t i = 0; i < self->held_count; i++)
        held += self->held [i].recorded;
    zr_enc_str (e, "isr_recorded_held");
    zr_enc_array (e, held);
    for (size_t i = 0; i < self->held_count; i++)
        if (self->held [i].recorded)
            zr_enc_int (e, self->held [i].bid);
    zr_enc_kint (e, "epoch_ends", (int64_t) self->epoch_ends);
    zr_enc_kint (e, "test_dropped", (int64_t) self->dropped);
    zr_enc_kint (e, "full_copies", (int64_t) self->copies);
    zr_enc_kint (e, "full_copy_chunks", (int64_t) self->copy_chunks);
    zr_enc_kint (e, "hwm", (int64_t) self->hwm);
    zr_enc_kint (e, "insync", self->insync);
    zr_enc_kint (e, "min_insync", self->opts.min_insync);
    zr_enc_kint (e, "log_first",
                 (int64_t) zr_store_repl_first (self->store));
    zr_enc_kint (e, "published", (int64_t) self->published);
    zr_enc_kint (e, "fetches", (int64_t) self->fetches);
    zr_enc_kint (e, "fetched", (int64_t) self->fetched);
    zr_enc_kint (e, "trimmed_replies", (int64_t) self->trimmed_replies);
    zr_enc_str (e, "slaves");
    zr_enc_array (e, zhashx_size (self->slaves));
    slave_t *slave = (slave_t *) zhashx_first (self->slaves);
    while (slave) {
        uint64_t seqs, bytes;
        int64_t ms;
        s_slave_lag (self, slave, now, &seqs, &bytes, &ms);
        zr_enc_map (e, 8);
        zr_enc_kstr (e, "id", slave->key);
        zr_enc_kint (e, "acked", (int64_t) slave->acked);
        zr_enc_kint (e, "lag_seq", (int64_t) seqs);
        zr_enc_kint (e, "lag_bytes", (int64_t) bytes);
        zr_enc_kint (e, "lag_ms", ms);
        zr_enc_kbool (e, "in_sync", slave->in_sync);
        zr_enc_kint (e, "heard_ms_ago", now - slave->heard);
        zr_enc_kint (e, "broker_id", slave->bid);
        slave = (slave_t *) zhashx_next (self->slaves);
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "INFO");
    zmsg_addmem (msg, zr_enc_data (e), zr_enc_size (e));
    s_send_nowait (&msg, zsock_resolve (self->pipe));
    zr_enc_destroy (&e);
}

static void
s_master_batch (master_t *self, zmsg_t *msg)
{
    uint64_t epoch, seq;
    zframe_t *hash, *payload;
    if (s_pop_batch (msg, &epoch, &seq, &hash, &payload))
        return;
    self->epoch = epoch;
    if (seq > self->seq)
        self->seq = seq;
    ring_t *r = &self->ring [seq & (RING_SIZE - 1)];
    r->seq = seq;
    r->time = zclock_mono ();
    r->size = zframe_size (payload);
    zmsg_t *out = zmsg_new ();
    zmsg_addstr (out, "B");
    s_add_u64 (out, epoch);
    s_add_u64 (out, seq);
    zmsg_append (out, &hash);
    zmsg_append (out, &payload);
    //  PUB never blocks: over the HWM it drops, and slaves refetch.
    //  ZR_TEST_REPL_DROP_EVERY=N (tests only) loses every Nth batch.
    if (self->drop_every > 0 && seq % (uint64_t) self->drop_every == 0) {
        zmsg_destroy (&out);
        self->dropped++;
    }
    else
        zmsg_send (&out, self->pub);
    self->published++;
    self->published_at = r->time;
    s_isr_update (self);
}

typedef struct {
    master_t *self;
    zframe_t *identity;
    uint64_t last;
    bool stopped;
} fetch_t;

static void
s_fetch_one (uint64_t epoch, uint64_t seq, const unsigned char *hash,
             const void *payload, size_t size, void *arg)
{
    fetch_t *f = (fetch_t *) arg;
    if (f->stopped || !payload)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &(zframe_t *) { zframe_dup (f->identity) });
    zmsg_addstr (msg, "BATCH");
    s_add_u64 (msg, epoch);
    s_add_u64 (msg, seq);
    zmsg_addmem (msg, hash, ZR_STORE_HASH_LEN);
    zmsg_addmem (msg, payload, size);
    if (s_send_nowait (&msg, zsock_resolve (f->self->router)))
        f->stopped = true;
    else {
        f->last = seq;
        f->self->fetched++;
    }
}

static slave_t *
s_slave_get (master_t *self, zframe_t *identity)
{
    char key [512];
    size_t n = zframe_size (identity);
    if (n == 0 || n > 255)
        return NULL;
    s_hex (zframe_data (identity), n, key);
    slave_t *slave = (slave_t *) zhashx_lookup (self->slaves, key);
    if (!slave) {
        slave = (slave_t *) zmalloc (sizeof (slave_t));
        strcpy (slave->key, key);
        slave->identity = zframe_dup (identity);
        slave->bid = -1;
        char name [256];
        memcpy (name, zframe_data (identity), n);
        name [n] = 0;
        long long bid;
        if (n > 4 && memcmp (name, "zrb:", 4) == 0
        &&  sscanf (name + 4, "%lld", &bid) == 1 && bid >= 0)
            slave->bid = bid;
        zhashx_insert (self->slaves, key, slave);
    }
    slave->heard = zclock_mono ();
    return slave;
}

//  A slave that says HELLO on a new connection ("zrb:ID:RANDOM", a new
//  RANDOM) replaces its older connections: a stale entry would stay in the
//  in-sync set, counted twice, and hold the high-water mark back until it
//  timed out.
static void
s_slave_forget_twins (master_t *self, slave_t *slave, zframe_t *identity)
{
    const char *id = (const char *) zframe_data (identity);
    size_t n = zframe_size (identity);
    if (n < 6 || memcmp (id, "zrb:", 4) != 0)
        return;
    const char *colon = memchr (id + 4, ':', n - 4);
    if (!colon)
        return;
    size_t prefix = (size_t) (colon - id) + 1;     //  "zrb:ID:"
    zlistx_t *gone = zlistx_new ();
    slave_t *other = (slave_t *) zhashx_first (self->slaves);
    while (other) {
        if (other != slave && other->identity
        &&  zframe_size (other->identity) >= prefix
        &&  memcmp (zframe_data (other->identity), id, prefix) == 0)
            zlistx_add_end (gone, other->key);
        other = (slave_t *) zhashx_next (self->slaves);
    }
    const char *key = (const char *) zlistx_first (gone);
    while (key) {
        zsys_info ("repl: slave %.16s reconnected, dropping its old "
                   "connection", key);
        zhashx_delete (self->slaves, key);
        key = (const char *) zlistx_next (gone);
    }
    zlistx_destroy (&gone);
}

static void
s_cp_remove (master_t *self)
{
    if (self->cp_dir) {
        s_rmdir_flat (self->cp_dir);
        zstr_free (&self->cp_dir);
    }
    zlist_destroy (&self->cp_files);
}

static int
s_name_cmp (void *a, void *b)
{
    return strcmp ((const char *) a, (const char *) b);
}

//  Makes a checkpoint and lists its files. Returns 0 or -1.
static int
s_cp_make (master_t *self)
{
    s_cp_remove (self);
    self->cp_id = self->cp_id ? self->cp_id + 1
                              : ((uint64_t) zclock_time () << 8) | 1;
    self->cp_dir = zsys_sprintf ("%s.repl-copy-%" PRIu64,
                                 zr_store_path (self->store), self->cp_id);
    s_rmdir_flat (self->cp_dir);
    char *err = NULL;
    if (zr_store_checkpoint (self->store, self->cp_dir, &err)) {
        zsys_error ("repl: full copy: %s", err);
        zstr_free (&err);
        zstr_free (&self->cp_dir);
        return -1;
    }
    self->cp_files = zlist_new ();
    zlist_autofree (self->cp_files);
    DIR *dir = opendir (self->cp_dir);
    if (dir) {
        struct dirent *e;
        while ((e = readdir (dir)))
            if (e->d_name [0] != '.')
                zlist_append (self->cp_files, e->d_name);
        closedir (dir);
    }
    zlist_sort (self->cp_files, s_name_cmp);
    self->copies++;
    zsys_info ("repl: full copy: checkpoint %s, %zu files, seq %" PRIu64,
               self->cp_dir, zlist_size (self->cp_files), self->seq);
    return 0;
}

//  FULL_COPY id file offset: one chunk of the checkpoint's files.
static void
s_master_copy (master_t *self, zframe_t *identity, zmsg_t *msg)
{
    uint64_t id, file, offset;
    zframe_t *a = zmsg_pop (msg), *b = zmsg_pop (msg), *c = zmsg_pop (msg);
    int rc = s_frame_u64 (a, &id) || s_frame_u64 (b, &file)
          || s_frame_u64 (c, &offset) ? -1 : 0;
    zframe_destroy (&a);
    zframe_destroy (&b);
    zframe_destroy (&c);
    if (rc)
        return;
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, &(zframe_t *) { zframe_dup (identity) });
    if (id == 0 && !self->cp_dir)
        s_cp_make (self);
    if (id == 0 && self->cp_dir)
        id = self->cp_id;
    const char *name = NULL;
    if (self->cp_dir && id == self->cp_id
    &&  file < zlist_size (self->cp_files)) {
        name = (const char *) zlist_first (self->cp_files);
        for (uint64_t i = 0; i < file; i++)
            name = (const char *) zlist_next (self->cp_files);
    }
    FILE *f = NULL;
    if (name) {
        char *path = zsys_sprintf ("%s/%s", self->cp_dir, name);
        f = fopen (path, "rb");
        zstr_free (&path);
    }
    struct stat st;
    if (!f || fstat (fileno (f), &st) || (uint64_t) st.st_size < offset
    ||  fseeko (f, (off_t) offset, SEEK_SET)) {
        zmsg_addstr (reply, "COPY_GONE");
        zmsg_addstr (reply, self->cp_dir ? "no such checkpoint file"
                                         : "cannot make a checkpoint");
    }
    else {
        size_t n = fread (self->cp_buf, 1, COPY_CHUNK, f);
        zmsg_addstr (reply, "COPY");
        s_add_u64 (reply, id);
        s_add_u64 (reply, zlist_size (self->cp_files));
        s_add_u64 (reply, file);
        zmsg_addstr (reply, name);
        s_add_u64 (reply, offset);
        s_add_u64 (reply, (uint64_t) st.st_size);
        zmsg_addmem (reply, self->cp_buf, n);
        self->copy_chunks++;
        self->cp_used_at = zclock_mono ();
    }
    if (f)
        fclose (f);
    s_send_nowait (&reply, zsock_resolve (self->router));
}

//  EPOCH_END epoch: the last sequence of that epoch in our history (the
//  first sequence of the next recorded epoch, minus 1; our last when it
//  is still running here) and its hash (empty when the log no longer
//  holds it). A returning slave that wrote batches as master of an older
//  epoch learns where that epoch ended (protocol.md section 16).
static void
s_master_epoch_end (master_t *self, zframe_t *identity, zmsg_t *msg)
{
    uint64_t epoch, end = 0;
    zframe_t *e = zmsg_pop (msg);
    int rc = s_frame_u64 (e, &epoch);
    zframe_destroy (&e);
    if (rc)
        return;
    rc = zr_store_epoch_end (self->store, epoch, &end);
    if (rc < 0)
        return;                     //  read error (logged): asked again
    if (rc == 1) {
        end = zr_store_repl_last (self->store);
        if (end < self->seq)
            end = self->seq;
    }
    unsigned char hash [ZR_STORE_HASH_LEN];
    bool have = zr_store_repl_hash (self->store, end, hash) == 0;
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, &(zframe_t *) { zframe_dup (identity) });
    zmsg_addstr (reply, "EPOCH_END");
    s_add_u64 (reply, epoch);
    s_add_u64 (reply, end);
    zmsg_addmem (reply, hash, have ? ZR_STORE_HASH_LEN : 0);
    s_send_nowait (&reply, zsock_resolve (self->router));
    self->epoch_ends++;
}

//  An ACK above the sequence we know: plausible when we missed BATCH
//  messages (then our store holds it); not from a slave that acks a
//  history we never wrote (a returning master's tail, or the slave of
//  another master reconnecting to a reused port), which would make us
//  announce, and wait for, batches that do not exist.
static bool
s_ack_plausible (master_t *self, slave_t *slave, uint64_t seq)
{
    uint64_t last = zr_store_repl_last (self->store);
    if (seq <= last)
        return true;
    if (!slave->ack_refused)
        zsys_warning ("repl: slave %.16s acks %" PRIu64 ", beyond our last "
                      "batch %" PRIu64 ": ignored", slave->key, seq, last);
    slave->ack_refused = true;
    return false;
}

static void
s_master_router (master_t *self)
{
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg);
    char *cmd = zmsg_popstr (msg);
    slave_t *slave = identity ? s_slave_get (self, identity) : NULL;
    if (!slave || !cmd)
        ;
    else
    if (streq (cmd, "HELLO")) {
        s_slave_forget_twins (self, slave, identity);
        char *map = zmsg_popstr (msg);
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, &(zframe_t *) { zframe_dup (identity) });
        if (!map || strneq (map, self->cf_map)) {
            self->refused++;
            zmsg_addstr (reply, "REFUSED");
            zmsg_addstrf (reply, "column families differ: master has %s, "
                          "slave has %s", self->cf_map, map ? map : "?");
        }
        else {
            slave->welcomed = true;
            zmsg_addstr (reply, "WELCOME");
            zmsg_addstr (reply, self->pub_ep);
            zmsg_addstr (reply, self->client_ep);
            s_add_u64 (reply, self->epoch);
            s_add_u64 (reply, self->seq);
        }
        s_send_nowait (&reply, zsock_resolve (self->router));
        zstr_free (&map);
    }
    else
    if (streq (cmd, "FETCH")) {
        uint64_t after, count, bytes;
        zframe_t *a = zmsg_pop (msg), *c = zmsg_pop (msg),
                 *b = zmsg_pop (msg);
        if (!s_frame_u64 (a, &after) && !s_frame_u64 (c, &count)
        &&  !s_frame_u64 (b, &bytes)) {
            self->fetches++;
            if (count > FETCH_COUNT_MAX)
                count = FETCH_COUNT_MAX;
            if (bytes > FETCH_BYTES_MAX)
                bytes = FETCH_BYTES_MAX;
            uint64_t seq = zr_store_repl_last (self->store);
            if (seq > self->seq)
                self->seq = seq;
            uint64_t first = zr_store_repl_first (self->store);
            zmsg_t *reply = zmsg_new ();
            zmsg_append (reply, &(zframe_t *) { zframe_dup (identity) });
            if (after < self->seq && (first == 0 || first > after + 1)) {
                self->trimmed_replies++;
                zmsg_addstr (reply, "TRIMMED");
                s_add_u64 (reply, first);
            }
            else {
                fetch_t f = { self, identity, after, false };
                zr_store_repl_read (self->store, after, (int) count,
                                    (size_t) bytes, s_fetch_one, &f);
                zmsg_addstr (reply, "FETCHED");
                s_add_u64 (reply, f.last);
                s_add_u64 (reply, self->seq > f.last ? self->seq : f.last);
            }
            s_send_nowait (&reply, zsock_resolve (self->router));
        }
        zframe_destroy (&a);
        zframe_destroy (&c);
        zframe_destroy (&b);
    }
    else
    if (streq (cmd, "ACK")) {
        uint64_t seq;
        zframe_t *s = zmsg_pop (msg);
        if (!s_frame_u64 (s, &seq) && seq >= slave->acked
        &&  (seq <= self->seq || s_ack_plausible (self, slave, seq))) {
            slave->acked = seq;
            slave->acked_at = zclock_mono ();
            if (seq > self->seq)
                self->seq = seq;        //  we missed BATCH messages
            s_isr_update (self);
        }
        zframe_destroy (&s);
    }
    else
    if (streq (cmd, "FULL_COPY"))
        s_master_copy (self, identity, msg);
    else
    if (streq (cmd, "EPOCH_END"))
        s_master_epoch_end (self, identity, msg);
    zstr_free (&cmd);
    zframe_destroy (&identity);
    zmsg_destroy (&msg);
}

//  Admin promote: TAKEOVER id epoch seq from the broker; sends TAKEOVER
//  epoch seq to every welcomed slave whose identity names broker id.
static void
s_master_takeover (master_t *self, zmsg_t *msg)
{
    char *id = zmsg_popstr (msg);
    zframe_t *e = zmsg_pop (msg), *q = zmsg_pop (msg);
    uint64_t epoch, seq;
    if (id && !s_frame_u64 (e, &epoch) && !s_frame_u64 (q, &seq)) {
        slave_t *slave = (slave_t *) zhashx_first (self->slaves);
        while (slave) {
            if (slave->welcomed
            &&  slave->bid == atoll (id)) {
                zmsg_t *out = zmsg_new ();
                zmsg_append (out, &(zframe_t *) {
                    zframe_dup (slave->identity) });
                zmsg_addstr (out, "TAKEOVER");
                s_add_u64 (out, epoch);
                s_add_u64 (out, seq);
                s_send_nowait (&out, zsock_resolve (self->router));
            }
            slave = (slave_t *) zhashx_next (self->slaves);
        }
    }
    zstr_free (&id);
    zframe_destroy (&e);
    zframe_destroy (&q);
}

static void
s_master_tick (master_t *self)
{
    int64_t now = zclock_mono ();
    if (now - self->published_at >= HEARTBEAT_MS) {
        zmsg_t *hb = zmsg_new ();
        zmsg_addstr (hb, "H");
        s_add_u64 (hb, self->epoch);
        s_add_u64 (hb, self->seq);
        zmsg_send (&hb, self->pub);
        self->published_at = now;
    }
    //  Forget slaves long gone
    slave_t *slave = (slave_t *) zhashx_first (self->slaves);
    while (slave) {
        if (now - slave->heard > SLAVE_FORGET_MS) {
            zhashx_delete (self->slaves, slave->key);
            slave = (slave_t *) zhashx_first (self->slaves);
            continue;
        }
        slave = (slave_t *) zhashx_next (self->slaves);
    }
    s_isr_update (self);
    if (now - self->trim_at >= 1000 || self->opts.log_keep < 1000) {
        self->trim_at = now;
        uint64_t first = zr_store_repl_first (self->store);
        if (first && self->seq > (uint64_t) self->opts.log_keep
        &&  first < self->seq - (uint64_t) self->opts.log_keep + 1)
            zr_store_repl_trim (self->store,
                                self->seq - (uint64_t) self->opts.log_keep
                                + 1);
    }
    if (self->cp_dir && now - self->cp_used_at > COPY_IDLE_MS)
        s_cp_remove (self);
    if (now - self->info_at >= INFO_MS) {
        self->info_at = now;
        s_master_info (self);
    }
}

//  Binds sock to ep (or, when port is not 0, to host:port). Returns the
//  advertised endpoint or NULL with *err set.
static char *
s_bind (zsock_t *sock, const char *ep, char **err)
{
    char *bound = zr_transport_bind (sock, ep, err);
    if (!bound)
        return NULL;
    char *adv = zr_transport_advertise (bound);
    zstr_free (&bound);
    return adv;
}

//  The PUB endpoint: the ROUTER's port + 1, or another ephemeral port.
static char *
s_pub_bind_ep (const char *ha_bind, const char *ha_ep)
{
    const char *colon = strrchr (ha_bind, ':');
    if (!colon || strncmp (ha_bind, "tcp://", 6))
        return zsys_sprintf ("%s-stream", ha_bind);     //  ipc, inproc
    if (streq (colon + 1, "*"))
        return zsys_sprintf ("%.*s:*", (int) (colon - ha_bind), ha_bind);
    const char *port = strrchr (ha_ep, ':');
    return zsys_sprintf ("%.*s:%d", (int) (colon - ha_bind), ha_bind,
                         port ? atoi (port + 1) + 1 : 0);
}

static void
s_master_actor (zsock_t *pipe, void *args)
{
    master_args_t *a = (master_args_t *) args;
    master_t *self = (master_t *) zmalloc (sizeof (master_t));
    self->pipe = pipe;
    self->store = a->store;
    self->opts = a->opts;
    self->client_ep = strdup (a->client_ep ? a->client_ep : "");
    self->cf_map = strdup (a->cf_map);
    self->epoch = zr_store_epoch (a->store);
    self->seq = a->seq;
    self->hwm = self->seq;
    self->insync = 1;
    self->recording = self->opts.broker_id >= 0;
    self->ring = (ring_t *) zmalloc (sizeof (ring_t) * RING_SIZE);
    self->cp_buf = (unsigned char *) zmalloc (COPY_CHUNK);
    const char *drop = getenv ("ZR_TEST_REPL_DROP_EVERY");
    self->drop_every = drop ? atoi (drop) : 0;
    self->slaves = zhashx_new ();
    zhashx_set_destructor (self->slaves, s_slave_free);
    self->pub = zsock_new (ZMQ_PUB);
    zsock_set_sndhwm (self->pub, self->opts.sndhwm);
    zsock_set_linger (self->pub, 0);
    self->router = zsock_new (ZMQ_ROUTER);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_linger (self->router, 0);
    char *ha_bind = strdup (a->ha_bind);
    zsock_signal (pipe, 0);

    char *err = NULL;
    self->ha_ep = s_bind (self->router, ha_bind, &err);
    if (self->ha_ep) {
        char *pub_bind = s_pub_bind_ep (ha_bind, self->ha_ep);
        self->pub_ep = s_bind (self->pub, pub_bind, &err);
        zstr_free (&pub_bind);
    }
    zstr_free (&ha_bind);
    bool ok = self->ha_ep && self->pub_ep;
    if (ok)
        zstr_sendx (pipe, "OK", self->ha_ep, self->pub_ep, NULL);
    else
        zstr_sendx (pipe, "ERROR", err ? err : "cannot bind", NULL);
    zstr_free (&err);

    zpoller_t *poller = zpoller_new (pipe, self->router, NULL);
    while (ok) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, HEARTBEAT_MS);
        if (zpoller_terminated (poller))
            break;
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            if (!msg)
                break;
            char *verb = zmsg_popstr (msg);
            bool term = verb && streq (verb, "$TERM");
            if (verb && streq (verb, "BATCH"))
                s_master_batch (self, msg);
            else
            if (verb && streq (verb, "INFO_NOW"))
                s_master_info (self);
            else
            if (verb && streq (verb, "TAKEOVER"))
                s_master_takeover (self, msg);
            else
            if (verb && streq (verb, "RECORDED"))
                s_master_recorded (self, msg);
            zstr_free (&verb);
            zmsg_destroy (&msg);
            if (term)
                break;
        }
        else
        if (which == self->router) {
            for (int i = 0; i < 1000 && (zsock_events (self->router)
                                         & ZMQ_POLLIN); i++)
                s_master_router (self);
        }
        s_master_tick (self);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self->pub);
    zsock_destroy (&self->router);
    zhashx_destroy (&self->slaves);
    s_cp_remove (self);
    free (self->cp_buf);
    free (self->ring);
    free (self->ha_ep);
    free (self->pub_ep);
    free (self->client_ep);
    free (self->cf_map);
    free (self);
}

//  --------------------------------------------------------------------
//  Slave actor

typedef struct {
    zr_repl_opts_t opts;
    char *master;
    char *cf_map;
    char *copy_dir;             //  staging directory for a full copy
    uint64_t seq;
    zr_store_t *store;          //  read only ("any thread" calls)
    uint64_t last_epoch;        //  epoch of our last batch
} slave_args_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *dealer;
    zsock_t *sub;
    zr_repl_opts_t opts;
    char *master;
    char *pub_ep;
    char *cf_map;
    bool welcomed;
    char *refused;
    uint64_t applied;           //  confirmed by the broker
    uint64_t forwarded;         //  handed to the broker
    uint64_t master_seq;
    bool fetching;
    int64_t fetch_at;
    int64_t hello_at;
    int64_t ack_at;
    int64_t info_at;
    int64_t heard_at;
    uint64_t gaps;
    uint64_t dups;
    uint64_t streamed;
    uint64_t fetched;
    uint64_t fetches;
    uint64_t apply_errors;
    //  Full copy (after TRIMMED, or forced)
    char *copy_dir;
    bool copy_wanted;
    bool copying;               //  asking for chunks
    bool installing;            //  the broker thread ingests copy_dir
    uint64_t copy_id;
    uint64_t copy_file;
    uint64_t copy_offset;
    int64_t copy_at;
    uint64_t copies;
    uint64_t copy_bytes;
    //  EPOCH_END: asked after WELCOME when our last batch is of an older
    //  epoch than the master's; fetching waits for the answer
    zr_store_t *store;          //  read only: our hash at the epoch's end
    uint64_t last_epoch;        //  epoch of the last batch we forwarded
    uint64_t master_epoch;      //  from WELCOME
    uint64_t checked_epoch;     //  master epoch we checked against
    bool epoch_checking;
    int64_t epoch_check_at;
    uint64_t truncated;         //  batches above an epoch end, discarded
} follower_t;

static void
s_fetch (follower_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "FETCH");
    s_add_u64 (msg, self->forwarded);
    s_add_u64 (msg, FETCH_COUNT);
    s_add_u64 (msg, FETCH_BYTES);
    if (s_send_nowait (&msg, zsock_resolve (self->dealer)) == 0) {
        self->fetching = true;
        self->fetch_at = zclock_mono ();
        self->fetches++;
    }
}

static void
s_copy_ask (follower_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "FULL_COPY");
    s_add_u64 (msg, self->copy_id);
    s_add_u64 (msg, self->copy_file);
    s_add_u64 (msg, self->copy_offset);
    s_send_nowait (&msg, zsock_resolve (self->dealer));
    self->copy_at = zclock_mono ();
}

//  Starts (or restarts) a full copy into an empty staging directory.
static void
s_copy_start (follower_t *self)
{
    s_rmdir_flat (self->copy_dir);
    if (zsys_dir_create ("%s", self->copy_dir)) {
        zsys_error ("repl: full copy: cannot create %s", self->copy_dir);
        return;
    }
    zsys_info ("repl: full copy from %s into %s (we have %" PRIu64 ")",
               self->master, self->copy_dir, self->applied);
    self->copy_wanted = false;
    self->copying = true;
    self->fetching = false;
    self->copy_id = self->copy_file = self->copy_offset = 0;
    s_copy_ask (self);
}

//  COPY id count file name offset size data: writes the chunk, asks for
//  the next, or hands the directory to the broker thread when complete.
static void
s_copy_chunk (follower_t *self, zmsg_t *msg)
{
    uint64_t id, count, file, offset, size;
    zframe_t *f1 = zmsg_pop (msg), *f2 = zmsg_pop (msg),
             *f3 = zmsg_pop (msg);
    char *name = zmsg_popstr (msg);
    zframe_t *f4 = zmsg_pop (msg), *f5 = zmsg_pop (msg),
             *data = zmsg_pop (msg);
    bool ok = !s_frame_u64 (f1, &id) && !s_frame_u64 (f2, &count)
           && !s_frame_u64 (f3, &file) && !s_frame_u64 (f4, &offset)
           && !s_frame_u64 (f5, &size) && name && data
           && *name && *name != '.' && !strchr (name, '/')
           && strlen (name) < 256 && file < count
           && offset + zframe_size (data) <= size;
    if (ok && self->copying && (self->copy_id == 0 || id == self->copy_id)
    &&  file == self->copy_file && offset == self->copy_offset) {
        char *path = zsys_sprintf ("%s/%s", self->copy_dir, name);
        FILE *f = fopen (path, offset ? "r+b" : "wb");
        bool written = f && fseeko (f, (off_t) offset, SEEK_SET) == 0
                    && fwrite (zframe_data (data), 1, zframe_size (data), f)
                       == zframe_size (data);
        if (f && fclose (f))
            written = false;
        zstr_free (&path);
        if (!written) {
            zsys_error ("repl: full copy: cannot write %s/%s",
                        self->copy_dir, name);
            self->copying = false;
            self->copy_wanted = true;       //  try again later
        }
        else {
            self->copy_id = id;
            self->copy_bytes += zframe_size (data);
            self->copy_offset = offset + zframe_size (data);
            if (self->copy_offset >= size) {
                self->copy_file++;
                self->copy_offset = 0;
            }
            if (self->copy_file < count)
                s_copy_ask (self);
            else {
                self->copying = false;
                self->installing = true;
                self->copies++;
                zstr_sendx (self->pipe, "INSTALL", self->copy_dir, NULL);
            }
        }
    }
    else
    if (!ok)
        zsys_warning ("repl: full copy: malformed chunk from %s",
                      self->master);
    zframe_destroy (&f1);
    zframe_destroy (&f2);
    zframe_destroy (&f3);
    zframe_destroy (&f4);
    zframe_destroy (&f5);
    zframe_destroy (&data);
    zstr_free (&name);
}

static void
s_ack (follower_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "ACK");
    s_add_u64 (msg, self->applied);
    s_send_nowait (&msg, zsock_resolve (self->dealer));
    self->ack_at = zclock_mono ();
}

//  A batch from the stream or a fetch: forwards it when it is the next.
static void
s_offer (follower_t *self, zmsg_t *msg, bool streamed)
{
    uint64_t epoch, seq;
    zframe_t *hash, *payload;
    if (s_pop_batch (msg, &epoch, &seq, &hash, &payload))
        return;
    if (seq > self->master_seq)
        self->master_seq = seq;
    if (self->copying || self->installing || self->epoch_checking)
        ;                       //  the copy (or the check) decides
    else
    if (seq <= self->forwarded)
        self->dups++;
    else
    if (seq == self->forwarded + 1) {
        zmsg_t *out = zmsg_new ();
        zmsg_addstr (out, "APPLY");
        s_add_u64 (out, epoch);
        s_add_u64 (out, seq);
        zmsg_append (out, &hash);
        zmsg_append (out, &payload);
        zmsg_send (&out, self->pipe);
        self->forwarded = seq;
        self->last_epoch = epoch;
        if (streamed)
            self->streamed++;
        else
            self->fetched++;
    }
    else
    if (streamed) {
        self->gaps++;
        if (!self->fetching && self->welcomed)
            s_fetch (self);
    }
    zframe_destroy (&hash);
    zframe_destroy (&payload);
}

//  Asks the master where our last epoch ended in its history; fetching
//  waits for the answer (s_epoch_answer).
static void
s_epoch_ask (follower_t *self)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "EPOCH_END");
    s_add_u64 (msg, self->last_epoch);
    s_send_nowait (&msg, zsock_resolve (self->dealer));
    self->epoch_checking = true;
    self->epoch_check_at = zclock_mono ();
    self->fetching = false;
    zsys_info ("repl: our last batch %" PRIu64 " is of epoch %" PRIu64
               ", the master is at epoch %" PRIu64 ": asking where epoch %"
               PRIu64 " ended (EPOCH_END)", self->forwarded,
               self->last_epoch, self->master_epoch, self->last_epoch);
}

//  EPOCH_END epoch end hash: batches we hold above end were never in the
//  master's history (a tail we wrote as master of an older epoch). The
//  store cannot undo them, so they are discarded by a full copy; without
//  a tail, and with our hash at end equal to the master's, we catch up.
static void
s_epoch_answer (follower_t *self, zmsg_t *msg)
{
    uint64_t epoch, end;
    zframe_t *e = zmsg_pop (msg), *n = zmsg_pop (msg), *h = zmsg_pop (msg);
    bool ok = !s_frame_u64 (e, &epoch) && !s_frame_u64 (n, &end) && h
           && (zframe_size (h) == 0 || zframe_size (h) == ZR_STORE_HASH_LEN);
    if (ok && self->epoch_checking && epoch == self->last_epoch) {
        self->epoch_checking = false;
        self->checked_epoch = self->master_epoch;
        uint64_t mine = self->forwarded;
        unsigned char ours [ZR_STORE_HASH_LEN];
        bool known = zframe_size (h) == ZR_STORE_HASH_LEN;
        bool same = known && end <= self->applied
                 && zr_store_repl_hash (self->store, end, ours) == 0
                 && memcmp (ours, zframe_data (h), ZR_STORE_HASH_LEN) == 0;
        if (mine < end || (mine == end && same)) {
            zsys_info ("repl: epoch %" PRIu64 " ended at %" PRIu64 " on "
                       "the master; we have %" PRIu64 ": no tail, catching "
                       "up", epoch, end, mine);
            s_fetch (self);
        }
        else {
            uint64_t tail = mine > end ? mine - end : 0;
            self->truncated += tail;
            if (same)
                zsys_warning ("repl: epoch %" PRIu64 " ended at %" PRIu64
                              " on the master; we hold %" PRIu64 " batches "
                              "above it (a tail never replicated): "
                              "discarding them by a full copy", epoch, end,
                              tail);
            else
                zsys_warning ("repl: epoch %" PRIu64 " ended at %" PRIu64
                              " on the master; our history differs %s it "
                              "(%" PRIu64 " batches above it): full copy",
                              epoch, end, known ? "at" : "or is unknown at",
                              tail);
            char count [24], at [24];
            snprintf (count, sizeof count, "%" PRIu64, tail);
            snprintf (at, sizeof at, "%" PRIu64, end);
            zstr_sendx (self->pipe, "TRUNCATED", count, at, NULL);
            s_copy_start (self);
        }
    }
    else
    if (!ok)
        zsys_warning ("repl: malformed EPOCH_END from %s", self->master);
    zframe_destroy (&e);
    zframe_destroy (&n);
    zframe_destroy (&h);
}

static void
s_follower_dealer (follower_t *self)
{
    zmsg_t *msg = zmsg_recv (self->dealer);
    if (!msg)
        return;
    self->heard_at = zclock_mono ();
    char *cmd = zmsg_popstr (msg);
    if (!cmd)
        ;
    else
    if (streq (cmd, "WELCOME")) {
        char *pub = zmsg_popstr (msg);
        char *client = zmsg_popstr (msg);
        uint64_t epoch, seq;
        zframe_t *e = zmsg_pop (msg), *s = zmsg_pop (msg);
        if (pub && client && !s_frame_u64 (e, &epoch)
        &&  !s_frame_u64 (s, &seq)) {
            if (!self->pub_ep || strneq (self->pub_ep, pub)) {
                if (self->pub_ep)
                    zsock_disconnect (self->sub, "%s", self->pub_ep);
                zstr_free (&self->pub_ep);
                self->pub_ep = strdup (pub);
                //  Subscribe first, then fetch (the Clone pattern)
                if (zsock_connect (self->sub, "%s", pub))
                    zsys_warning ("repl: cannot connect to stream %s",
                                  pub);
            }
            self->welcomed = true;
            zstr_free (&self->refused);
            if (seq > self->master_seq)
                self->master_seq = seq;
            self->master_epoch = epoch;
            zstr_sendx (self->pipe, "MASTER", client, NULL);
            if (self->forwarded > 0 && self->last_epoch < epoch
            &&  self->checked_epoch != epoch && !self->copying
            &&  !self->installing)
                s_epoch_ask (self);
            else
            if (!self->epoch_checking)
                s_fetch (self);
        }
        zframe_destroy (&e);
        zframe_destroy (&s);
        zstr_free (&pub);
        zstr_free (&client);
    }
    else
    if (streq (cmd, "REFUSED")) {
        char *reason = zmsg_popstr (msg);
        if (!self->refused)
            zsys_error ("repl: master %s refused us: %s", self->master,
                        reason ? reason : "?");
        zstr_free (&self->refused);
        self->refused = reason ? reason : strdup ("?");
    }
    else
    if (streq (cmd, "BATCH"))
        s_offer (self, msg, false);
    else
    if (streq (cmd, "FETCHED")) {
        uint64_t last, mseq;
        zframe_t *l = zmsg_pop (msg), *m = zmsg_pop (msg);
        if (!s_frame_u64 (l, &last) && !s_frame_u64 (m, &mseq)) {
            self->fetching = false;
            if (mseq > self->master_seq)
                self->master_seq = mseq;
            if (self->master_seq > self->forwarded && !self->epoch_checking)
                s_fetch (self);
        }
        zframe_destroy (&l);
        zframe_destroy (&m);
    }
    else
    if (streq (cmd, "TRIMMED")) {
        self->fetching = false;
        if (!self->copying && !self->installing) {
            zsys_info ("repl: the master's log no longer holds batch %"
                       PRIu64 ": full copy", self->forwarded + 1);
            s_copy_start (self);
        }
    }
    else
    if (streq (cmd, "TAKEOVER")) {
        //  Admin promote: the master resigned for us; the broker thread
        //  campaigns (frames: epoch seq, passed on as they came).
        zmsg_t *out = zmsg_new ();
        zmsg_addstr (out, "TAKEOVER");
        zframe_t *f;
        for (int i = 0; i < 2 && (f = zmsg_pop (msg)); i++)
            zmsg_append (out, &f);
        s_send_nowait (&out, zsock_resolve (self->pipe));
    }
    else
    if (streq (cmd, "EPOCH_END"))
        s_epoch_answer (self, msg);
    else
    if (streq (cmd, "COPY"))
        s_copy_chunk (self, msg);
    else
    if (streq (cmd, "COPY_GONE")) {
        char *reason = zmsg_popstr (msg);
        zsys_warning ("repl: full copy: %s; starting again",
                      reason ? reason : "?");
        zstr_free (&reason);
        if (self->copying) {
            self->copying = false;
            self->copy_wanted = true;
            self->copy_at = zclock_mono ();
        }
    }
    zstr_free (&cmd);
    zmsg_destroy (&msg);
}

static void
s_follower_sub (follower_t *self)
{
    zmsg_t *msg = zmsg_recv (self->sub);
    if (!msg)
        return;
    self->heard_at = zclock_mono ();
    char *kind = zmsg_popstr (msg);
    if (kind && streq (kind, "B"))
        s_offer (self, msg, true);
    else
    if (kind && streq (kind, "H")) {
        uint64_t epoch, seq;
        zframe_t *e = zmsg_pop (msg), *s = zmsg_pop (msg);
        if (!s_frame_u64 (e, &epoch) && !s_frame_u64 (s, &seq)) {
            if (seq > self->master_seq)
                self->master_seq = seq;
            if (seq > self->forwarded && !self->fetching && self->welcomed
            &&  !self->copying && !self->installing
            &&  !self->epoch_checking)
                s_fetch (self);
        }
        zframe_destroy (&e);
        zframe_destroy (&s);
    }
    zstr_free (&kind);
    zmsg_destroy (&msg);
}

static void
s_follower_info (follower_t *self)
{
    zr_enc_t *e = zr_enc_new ();
    zr_enc_map (e, 19);
    zr_enc_kstr (e, "master", self->master);
    zr_enc_kint (e, "truncated_batches", (int64_t) self->truncated);
    zr_enc_kint (e, "last_epoch", (int64_t) self->last_epoch);
    zr_enc_kint (e, "full_copies", (int64_t) self->copies);
    zr_enc_kint (e, "full_copy_bytes", (int64_t) self->copy_bytes);
    zr_enc_kstr (e, "stream", self->pub_ep ? self->pub_ep : "");
    zr_enc_kbool (e, "connected", self->welcomed);
    zr_enc_kstr (e, "refused", self->refused ? self->refused : "");
    zr_enc_kbool (e, "full_copy_running", self->copying || self->installing
                                          || self->copy_wanted);
    zr_enc_kint (e, "applied", (int64_t) self->applied);
    zr_enc_kint (e, "master_seq", (int64_t) self->master_seq);
    zr_enc_kint (e, "lag_seq", (int64_t) (self->master_seq > self->applied
                 ? self->master_seq - self->applied : 0));
    zr_enc_kint (e, "gaps", (int64_t) self->gaps);
    zr_enc_kint (e, "duplicates", (int64_t) self->dups);
    zr_enc_kint (e, "streamed", (int64_t) self->streamed);
    zr_enc_kint (e, "fetched", (int64_t) self->fetched);
    zr_enc_kint (e, "fetches", (int64_t) self->fetches);
    zr_enc_kint (e, "apply_errors", (int64_t) self->apply_errors);
    zr_enc_kint (e, "heard_ms_ago", self->heard_at
                 ? zclock_mono () - self->heard_at : -1);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "INFO");
    zmsg_addmem (msg, zr_enc_data (e), zr_enc_size (e));
    s_send_nowait (&msg, zsock_resolve (self->pipe));
    zr_enc_destroy (&e);
}

static void
s_follower_tick (follower_t *self)
{
    int64_t now = zclock_mono ();
    if (!self->welcomed || self->refused) {
        int64_t every = self->refused ? 5 * HELLO_MS : HELLO_MS;
        if (now - self->hello_at >= every) {
            self->welcomed = false;
            zmsg_t *msg = zmsg_new ();
            zmsg_addstr (msg, "HELLO");
            zmsg_addstr (msg, self->cf_map);
            s_add_u64 (msg, self->applied);
            s_send_nowait (&msg, zsock_resolve (self->dealer));
            self->hello_at = now;
        }
    }
    else
    if (self->copying || self->installing || self->copy_wanted) {
        if (self->copy_wanted && now - self->copy_at >= HELLO_MS)
            s_copy_start (self);
        else
        if (self->copying && now - self->copy_at > COPY_TIMEOUT_MS)
            s_copy_ask (self);      //  lost: ask again
        if (now - self->heard_at > COPY_TIMEOUT_MS && !self->installing) {
            self->welcomed = false;
            self->hello_at = 0;
        }
    }
    else {
        if (self->epoch_checking
        &&  now - self->epoch_check_at > FETCH_TIMEOUT_MS) {
            //  A master that does not answer EPOCH_END: catch up, and
            //  let the hash chain check on apply find a diverged tail.
            zsys_warning ("repl: master %s did not answer EPOCH_END; "
                          "catching up", self->master);
            self->epoch_checking = false;
            self->checked_epoch = self->master_epoch;
        }
        if (self->fetching && now - self->fetch_at > FETCH_TIMEOUT_MS)
            self->fetching = false;
        if (!self->fetching && !self->epoch_checking
        &&  self->master_seq > self->forwarded)
            s_fetch (self);
        if (now - self->ack_at >= HEARTBEAT_MS && !self->epoch_checking)
            s_ack (self);           //  (our history is not confirmed yet)
        //  A master silent for long: say hello again (it may be back
        //  with a new stream endpoint).
        if (now - self->heard_at > FETCH_TIMEOUT_MS) {
            self->welcomed = false;
            self->hello_at = 0;
        }
    }
    if (now - self->info_at >= INFO_MS) {
        self->info_at = now;
        s_follower_info (self);
    }
}

static void
s_slave_actor (zsock_t *pipe, void *args)
{
    slave_args_t *a = (slave_args_t *) args;
    follower_t *self = (follower_t *) zmalloc (sizeof (follower_t));
    self->pipe = pipe;
    self->opts = a->opts;
    self->master = strdup (a->master);
    self->cf_map = strdup (a->cf_map);
    self->copy_dir = strdup (a->copy_dir);
    self->applied = self->forwarded = self->master_seq = a->seq;
    self->store = a->store;
    self->last_epoch = a->last_epoch;
    self->dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (self->dealer, 0);
    if (self->opts.broker_id >= 0)
        s_failover_identity (self->dealer, self->opts.broker_id);
    else {
        //  No broker id: name the connection after this slave's data
        //  (its copy directory), so the master can tell a reconnection
        //  of the same slave from another slave (s_slave_forget_twins).
        uint32_t h = 2166136261u;
        for (const char *c = self->copy_dir; *c; c++)
            h = (h ^ (uint8_t) *c) * 16777619u;
        char name [64];
        snprintf (name, sizeof name, "zrb:d%08x:%08x", h,
                  (unsigned) randof (0x7fffffff));
        zsock_set_identity (self->dealer, name);
    }
    zsock_set_sndhwm (self->dealer, 10000);
    zsock_set_rcvhwm (self->dealer, 100000);
    self->sub = zsock_new (ZMQ_SUB);
    zsock_set_linger (self->sub, 0);
    zsock_set_rcvhwm (self->sub, self->opts.rcvhwm);
    zsock_set_subscribe (self->sub, "");
    zsock_signal (pipe, 0);
    char *err = NULL;
    bool ok = zr_transport_connect (self->dealer, self->master, &err) == 0;
    if (ok)
        zstr_send (pipe, "OK");
    else
        zstr_sendx (pipe, "ERROR", err ? err : "cannot connect", NULL);
    zstr_free (&err);

    zpoller_t *poller = zpoller_new (pipe, self->dealer, self->sub, NULL);
    while (ok) {
        zsock_t *which = (zsock_t *) zpoller_wait (poller, HEARTBEAT_MS);
        if (zpoller_terminated (poller))
            break;
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            if (!msg)
                break;
            char *verb = zmsg_popstr (msg);
            bool term = verb && streq (verb, "$TERM");
            if (verb && streq (verb, "FULL_COPY"))
                self->copy_wanted = true;
            uint64_t seq = 0;
            zframe_t *s = zmsg_pop (msg);
            if (verb && !s_frame_u64 (s, &seq)) {
                if (streq (verb, "APPLIED")) {
                    self->applied = seq;
                    s_ack (self);
                }
                else
                if (streq (verb, "INSTALLED")) {
                    zsys_info ("repl: full copy installed at %" PRIu64,
                               seq);
                    self->installing = false;
                    self->applied = self->forwarded = seq;
                    self->last_epoch = zr_store_epoch_of (self->store, seq);
                    self->checked_epoch = self->master_epoch;
                    if (self->master_seq < seq)
                        self->master_seq = seq;
                    self->fetching = false;
                    s_ack (self);
                    s_fetch (self);
                }
                else
                if (streq (verb, "INSTALL_FAILED")) {
                    self->installing = false;
                    self->copy_wanted = true;
                    self->copy_at = zclock_mono ();
                    self->applied = self->forwarded = seq;
                }
                else
                if (streq (verb, "FAILED")) {
                    //  Start again after what the store has.
                    self->apply_errors++;
                    self->applied = seq;
                    self->forwarded = seq;
                    self->fetching = false;
                }
            }
            zframe_destroy (&s);
            zstr_free (&verb);
            zmsg_destroy (&msg);
            if (term)
                break;
        }
        else
        if (which == self->dealer) {
            for (int i = 0; i < 2000 && (zsock_events (self->dealer)
                                         & ZMQ_POLLIN); i++)
                s_follower_dealer (self);
        }
        else
        if (which == self->sub) {
            for (int i = 0; i < 2000 && (zsock_events (self->sub)
                                         & ZMQ_POLLIN); i++)
                s_follower_sub (self);
        }
        s_follower_tick (self);
    }
    zpoller_destroy (&poller);
    zsock_destroy (&self->dealer);
    zsock_destroy (&self->sub);
    free (self->master);
    free (self->pub_ep);
    free (self->cf_map);
    free (self->refused);
    if (!self->installing)
        s_rmdir_flat (self->copy_dir);
    free (self->copy_dir);
    free (self);
}

//  --------------------------------------------------------------------
//  The broker's side

struct _zr_repl_t {
    zr_store_t *store;
    zactor_t *actor;
    zr_repl_mode_t mode;
    bool slave;
    bool flush_sync;
    uint64_t hwm;
    int insync;
    int min_insync;
    int ack_timeout;
    char *endpoint;
    char *pub_endpoint;
    char *master_client;
    zchunk_t *info;
    uint64_t dropped;           //  batches the pipe did not take
    uint64_t applied;
    uint64_t apply_errors;
    uint64_t full_copies;
    char *apply_error;
    uint64_t takeover;          //  slave: epoch a master resigned for us
    char *recorded;             //  last RECORDED handed to the actor
    uint64_t recorded_ver;
    char *following;            //  slave: the master's HA endpoint, or ""
    uint64_t truncated;         //  batches of a tail discarded (EPOCH_END)
    uint64_t infos;             //  INFO messages received
};

static void
s_on_commit (uint64_t epoch, uint64_t seq, const unsigned char *hash,
             const void *payload, size_t size, void *arg)
{
    zr_repl_t *self = (zr_repl_t *) arg;
    if (!payload)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "BATCH");
    s_add_u64 (msg, epoch);
    s_add_u64 (msg, seq);
    zmsg_addmem (msg, hash, ZR_STORE_HASH_LEN);
    zmsg_addmem (msg, payload, size);
    if (s_send_nowait (&msg, zsock_resolve (zactor_sock (self->actor))))
        self->dropped++;
}

zr_repl_t *
zr_repl_new (zr_store_t *store, const zr_repl_opts_t *opts, char **err)
{
    assert (store && opts && err);
    *err = NULL;
    const char *role = zr_store_role (store);
    if (!role)
        role = opts->role ? opts->role : "master";
    if (strneq (role, "master") && strneq (role, "slave")) {
        *err = zsys_sprintf ("setting role: '%s' must be master or slave",
                             role);
        return NULL;
    }
    const char *mode = opts->mode ? opts->mode : "async";
    zr_repl_mode_t m = streq (mode, "sync") ? ZR_REPL_SYNC
                     : streq (mode, "async") ? ZR_REPL_ASYNC
                     : streq (mode, "none") ? ZR_REPL_NONE : -1;
    if ((int) m == -1) {
        *err = zsys_sprintf ("setting replication: '%s' must be sync, async "
                             "or none", mode);
        return NULL;
    }
    bool slave = streq (role, "slave");
    zr_repl_t *self = (zr_repl_t *) zmalloc (sizeof (zr_repl_t));
    self->following = strdup (slave && opts->master ? opts->master : "");
    self->store = store;
    self->mode = m;
    self->slave = slave;
    self->flush_sync = opts->flush_sync;
    self->min_insync = opts->min_insync;
    self->ack_timeout = opts->slave_ack_timeout_ms;
    self->hwm = zr_store_seq (store);
    self->insync = 1;
    self->endpoint = strdup ("");
    self->pub_endpoint = strdup ("");
    self->master_client = strdup ("");
    self->info = zchunk_new (NULL, 0);
    char *cf_map = zr_store_cf_map (store);
    if (slave && !*self->following)
        //  No master known yet: the broker asks the nameservers
        //  (zr_repl_following) and makes a new zr_repl_t to follow it.
        zr_store_set_repl_log (store, true);
    else
    if (slave) {
        zr_store_set_repl_log (store, true);
        char *copy_dir = zsys_sprintf ("%s.repl-fullcopy",
                                       zr_store_path (store));
        slave_args_t a = { *opts, (char *) opts->master, cf_map, copy_dir,
                           zr_store_seq (store), store,
                           zr_store_epoch_of (store, zr_store_seq (store)) };
        self->actor = zactor_new (s_slave_actor, &a);
        zstr_free (&copy_dir);
        char *status = NULL, *reason = NULL;
        zstr_recvx (self->actor, &status, &reason, NULL);
        if (!status || strneq (status, "OK"))
            *err = zsys_sprintf ("setting master: %s",
                                 reason ? reason : "?");
        zstr_free (&status);
        zstr_free (&reason);
    }
    else
    if (m == ZR_REPL_NONE)
        zr_store_set_repl_log (store, false);
    else {
        zr_store_set_repl_log (store, true);
        master_args_t a = { store, *opts, (char *) opts->ha_bind,
                            (char *) opts->client_endpoint, cf_map,
                            zr_store_seq (store) };
        self->actor = zactor_new (s_master_actor, &a);
        char *status = NULL, *ep = NULL, *pub = NULL;
        zstr_recvx (self->actor, &status, &ep, &pub, NULL);
        if (status && streq (status, "OK") && ep && pub) {
            free (self->endpoint);
            free (self->pub_endpoint);
            self->endpoint = ep;
            self->pub_endpoint = pub;
            ep = pub = NULL;
            zr_store_set_commit_fn (store, s_on_commit, self);
        }
        else
            *err = zsys_sprintf ("setting ha-port: %s", ep ? ep : "?");
        zstr_free (&status);
        zstr_free (&ep);
        zstr_free (&pub);
    }
    free (cf_map);
    if (*err) {
        zr_repl_destroy (&self);
        return NULL;
    }
    zsys_info ("repl: %s, replication %s%s%s", slave ? "slave" : "master",
               mode, slave ? ", following " : "",
               !slave ? "" : *self->following ? self->following
                                              : "(no master known yet)");
    return self;
}

void
zr_repl_destroy (zr_repl_t **self_p)
{
    assert (self_p);
    zr_repl_t *self = *self_p;
    if (!self)
        return;
    if (!self->slave)
        zr_store_set_commit_fn (self->store, NULL, NULL);
    zactor_destroy (&self->actor);
    zchunk_destroy (&self->info);
    free (self->endpoint);
    free (self->pub_endpoint);
    free (self->master_client);
    free (self->apply_error);
    free (self->recorded);
    free (self->following);
    free (self);
    *self_p = NULL;
}

zsock_t *
zr_repl_sock (zr_repl_t *self)
{
    return self && self->actor ? zactor_sock (self->actor) : NULL;
}

int
zr_repl_event (zr_repl_t *self)
{
    assert (self);
    int flags = 0;
    bool applied = false, failed = false;
    zsock_t *sock = zr_repl_sock (self);
    for (int i = 0; sock && i < 1000 && (zsock_events (sock) & ZMQ_POLLIN);
         i++) {
        zmsg_t *msg = zmsg_recv (sock);
        if (!msg)
            break;
        char *verb = zmsg_popstr (msg);
        if (!verb)
            ;
        else
        if (streq (verb, "APPLY") && !failed) {
            uint64_t epoch, seq;
            zframe_t *hash, *payload;
            if (s_pop_batch (msg, &epoch, &seq, &hash, &payload) == 0) {
                char *err = NULL;
                int rc = zr_store_apply (self->store, epoch, seq,
                                         zframe_data (hash),
                                         zframe_data (payload),
                                         zframe_size (payload),
                                         self->flush_sync, &err);
                if (rc == 0) {
                    self->applied++;
                    applied = true;
                }
                else
                if (rc < 0) {
                    self->apply_errors++;
                    if (!self->apply_error || strneq (self->apply_error,
                                                      err))
                        zsys_error ("repl: cannot apply: %s", err);
                    free (self->apply_error);
                    self->apply_error = err;
                    err = NULL;
                    failed = true;
                }
                zstr_free (&err);
                zframe_destroy (&hash);
                zframe_destroy (&payload);
            }
        }
        else
        if (streq (verb, "HWM")) {
            uint64_t hwm;
            zframe_t *h = zmsg_pop (msg);
            char *insync = zmsg_popstr (msg);
            if (!s_frame_u64 (h, &hwm) && insync) {
                self->hwm = hwm;
                self->insync = atoi (insync);
                flags |= ZR_REPL_HWM;
            }
            zframe_destroy (&h);
            zstr_free (&insync);
        }
        else
        if (streq (verb, "INFO")) {
            zframe_t *f = zmsg_pop (msg);
            if (f) {
                zchunk_destroy (&self->info);
                self->info = zchunk_new (zframe_data (f), zframe_size (f));
                self->infos++;
            }
            zframe_destroy (&f);
        }
        else
        if (streq (verb, "INSTALL")) {
            char *dir = zmsg_popstr (msg);
            char *err = NULL;
            int rc = dir ? zr_store_ingest (self->store, dir, &err) : -1;
            if (rc == 0) {
                self->full_copies++;
                zsys_info ("repl: full copy ingested, seq %" PRIu64,
                           zr_store_seq (self->store));
            }
            else
                zsys_error ("repl: %s", err ? err : "no directory");
            if (dir)
                s_rmdir_flat (dir);
            zstr_free (&dir);
            zstr_free (&err);
            zmsg_t *out = zmsg_new ();
            zmsg_addstr (out, rc == 0 ? "INSTALLED" : "INSTALL_FAILED");
            s_add_u64 (out, zr_store_seq (self->store));
            zmsg_send (&out, sock);
            applied = false;
            failed = false;
            flags |= ZR_REPL_APPLIED;
        }
        else
        if (streq (verb, "TAKEOVER")) {
            uint64_t epoch;
            zframe_t *e = zmsg_pop (msg);
            if (!s_frame_u64 (e, &epoch) && epoch > 0)
                self->takeover = epoch;
            zframe_destroy (&e);
        }
        else
        if (streq (verb, "TRUNCATED")) {
            char *count = zmsg_popstr (msg);
            if (count)
                self->truncated += strtoull (count, NULL, 10);
            zstr_free (&count);
        }
        else
        if (streq (verb, "MASTER")) {
            char *ep = zmsg_popstr (msg);
            if (ep) {
                free (self->master_client);
                self->master_client = ep;
            }
        }
        zstr_free (&verb);
        zmsg_destroy (&msg);
    }
    if (applied || failed) {
        zmsg_t *msg = zmsg_new ();
        zmsg_addstr (msg, failed ? "FAILED" : "APPLIED");
        s_add_u64 (msg, zr_store_seq (self->store));
        s_send_nowait (&msg, zsock_resolve (sock));
    }
    if (applied)
        flags |= ZR_REPL_APPLIED;
    return flags;
}

int
zr_repl_full_copy (zr_repl_t *self)
{
    if (!self || !self->slave || !self->actor)
        return -1;
    return zstr_send (self->actor, "FULL_COPY");
}

bool
zr_repl_is_slave (zr_repl_t *self)
{
    return self && self->slave;
}

zr_repl_mode_t
zr_repl_mode (zr_repl_t *self)
{
    return self ? self->mode : ZR_REPL_NONE;
}

uint64_t
zr_repl_hwm (zr_repl_t *self)
{
    return self->mode == ZR_REPL_SYNC && !self->slave
         ? self->hwm : zr_store_seq (self->store);
}

int
zr_repl_insync (zr_repl_t *self)
{
    return self->insync;
}

int
zr_repl_min_insync (zr_repl_t *self)
{
    return self->min_insync;
}

int
zr_repl_ack_timeout (zr_repl_t *self)
{
    return self->ack_timeout;
}

const char *
zr_repl_endpoint (zr_repl_t *self)
{
    return self ? self->endpoint : "";
}

const char *
zr_repl_master (zr_repl_t *self)
{
    return self ? self->master_client : "";
}

const char *
zr_repl_following (zr_repl_t *self)
{
    return self && self->slave ? self->following : "";
}

void
zr_repl_stats (zr_repl_t *self, zr_enc_t *enc)
{
    zr_enc_str (enc, "repl");
    if (!self) {
        zr_enc_map (enc, 1);
        zr_enc_kstr (enc, "mode", "none");
        return;
    }
    char hex [ZR_STORE_HASH_LEN * 2 + 1];
    s_hex (zr_store_hash (self->store), ZR_STORE_HASH_LEN, hex);
    static const char *modes [] = { "none", "async", "sync" };
    zr_enc_map (enc, 15);
    zr_enc_kstr (enc, "role", self->slave ? "slave" : "master");
    //  Failover: the slaves a majority of nameservers may have recorded
    //  (as last handed to the master actor; [] without failover)
    zr_enc_str (enc, "isr_recorded");
    size_t count = 0;
    const char *p = self->recorded && !self->slave ? self->recorded : "";
    for (const char *q = p; *q; q++)
        count += q == p || q [-1] == ',';
    zr_enc_array (enc, count);
    while (*p) {
        zr_enc_int (enc, strtoll (p, NULL, 10));
        p = strchr (p, ',');
        p = p ? p + 1 : "";
    }
    zr_enc_kstr (enc, "following", self->following);
    zr_enc_kint (enc, "truncated_batches", (int64_t) self->truncated);
    zr_enc_kint (enc, "full_copies", (int64_t) self->full_copies);
    zr_enc_kstr (enc, "mode", modes [self->mode]);
    zr_enc_kint (enc, "epoch", (int64_t) zr_store_epoch (self->store));
    zr_enc_kint (enc, "seq", (int64_t) zr_store_seq (self->store));
    zr_enc_kstr (enc, "hash", hex);
    zr_enc_kstr (enc, "ha_endpoint", self->endpoint);
    zr_enc_kstr (enc, "stream_endpoint", self->pub_endpoint);
    zr_enc_kint (enc, "stream_dropped", (int64_t) self->dropped);
    zr_enc_kint (enc, "applied", (int64_t) self->applied);
    zr_enc_kint (enc, "apply_errors", (int64_t) self->apply_errors);
    zr_enc_str (enc, "actor");
    if (zchunk_size (self->info))
        zr_enc_raw (enc, zchunk_data (self->info), zchunk_size (self->info));
    else
        zr_enc_map (enc, 0);
}

//  --------------------------------------------------------------------
//  Failover (see repl.h, end)

static void
s_failover_identity (zsock_t *dealer, int64_t id)
{
    if (id < 0)
        return;
    char name [64];
    snprintf (name, sizeof name, "zrb:%" PRId64 ":%08x", id,
              (unsigned) randof (0x7fffffff));
    zsock_set_identity (dealer, name);
}

//  Decodes the actor's last INFO map, or NULL.
static zr_hdr_t *
s_failover_info (zr_repl_t *self)
{
    if (!self || !zchunk_size (self->info))
        return NULL;
    return zr_hdr_decode (zchunk_data (self->info), zchunk_size (self->info),
                          NULL);
}

//  A slave's broker id as the master's INFO gives it (-1: none).
static int64_t
s_slave_broker_id (const zr_obj_t *slave)
{
    int64_t id = -1;
    if (zr_field_int (slave, "broker_id", &id) != ZR_FIELD_OK)
        return -1;
    return id;
}

int
zr_repl_slave_acked (zr_repl_t *self, int64_t broker_id, uint64_t *acked,
                     bool *in_sync, int64_t *heard)
{
    int rc = -1;
    zr_hdr_t *hdr = s_failover_info (self);
    const zr_obj_t *slaves = hdr ? zr_obj_get (zr_hdr_root (hdr), "slaves")
                                 : NULL;
    size_t count = slaves && zr_obj_is_array (slaves)
                 ? zr_obj_size (slaves) : 0;
    *acked = 0;
    *in_sync = false;
    if (heard)
        *heard = INT64_MAX;
    for (size_t i = 0; i < count; i++) {
        const zr_obj_t *s = zr_obj_at (slaves, i);
        if (!s || s_slave_broker_id (s) != broker_id)
            continue;
        int64_t a = 0;
        bool in = false;
        const zr_obj_t *o = zr_obj_get (s, "in_sync");
        if (o)
            zr_obj_bool (o, &in);
        zr_field_int (s, "acked", &a);
        int64_t ago = INT64_MAX;
        if (heard && zr_field_int (s, "heard_ms_ago", &ago) == ZR_FIELD_OK
        &&  ago < *heard)
            *heard = ago;
        //  Twins (an old connection) may linger: the best one counts.
        if (a > 0 && (uint64_t) a > *acked)
            *acked = (uint64_t) a;
        if (in)
            *in_sync = true;
        rc = 0;
    }
    zr_hdr_destroy (&hdr);
    return rc;
}

void
zr_repl_info_now (zr_repl_t *self)
{
    if (self && !self->slave && self->actor)
        zstr_send (self->actor, "INFO_NOW");
}

uint64_t
zr_repl_info_count (zr_repl_t *self)
{
    return self ? self->infos : 0;
}

void
zr_repl_takeover (zr_repl_t *self, int64_t broker_id, uint64_t epoch,
                  uint64_t seq)
{
    if (!self || self->slave || !self->actor)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "TAKEOVER");
    zmsg_addstrf (msg, "%" PRId64, broker_id);
    s_add_u64 (msg, epoch);
    s_add_u64 (msg, seq);
    zmsg_send (&msg, self->actor);
}

uint64_t
zr_repl_take_takeover (zr_repl_t *self)
{
    if (!self || !self->slave)
        return 0;
    uint64_t epoch = self->takeover;
    self->takeover = 0;
    return epoch;
}

char *
zr_repl_isr_ids (zr_repl_t *self)
{
    char *out = strdup ("");
    zr_hdr_t *hdr = s_failover_info (self);
    const zr_obj_t *slaves = hdr ? zr_obj_get (zr_hdr_root (hdr), "slaves")
                                 : NULL;
    size_t count = slaves && zr_obj_is_array (slaves)
                 ? zr_obj_size (slaves) : 0;
    for (size_t i = 0; i < count; i++) {
        const zr_obj_t *s = zr_obj_at (slaves, i);
        const zr_obj_t *in = s ? zr_obj_get (s, "in_sync") : NULL;
        bool in_sync = false;
        if (!in || zr_obj_bool (in, &in_sync) != ZR_FIELD_OK || !in_sync)
            continue;
        int64_t id = s_slave_broker_id (s);
        if (id < 0)
            continue;
        char *more = zsys_sprintf ("%s%s%" PRId64, out, *out ? "," : "", id);
        free (out);
        out = more;
    }
    zr_hdr_destroy (&hdr);
    return out;
}

int64_t
zr_repl_silence_ms (zr_repl_t *self)
{
    int64_t ms = -1;
    zr_hdr_t *hdr = s_failover_info (self);
    if (hdr && zr_field_int (zr_hdr_root (hdr), "heard_ms_ago", &ms)
               != ZR_FIELD_OK)
        ms = -1;
    zr_hdr_destroy (&hdr);
    return ms;
}

int
zr_repl_promote_store (zr_store_t *store, uint64_t epoch, char **err)
{
    if (zr_store_set_role (store, epoch, "master", err))
        return -1;
    char mark [96];
    snprintf (mark, sizeof mark, "zr.epoch/%020" PRIu64 "/%020" PRIu64,
              epoch, zr_store_seq (store) + 1);
    if (zr_store_batch_mark_put (store, mark)) {
        *err = strdup ("cannot record the epoch history");
        return -1;
    }
    return zr_store_commit (store, true, err);
}

int
zr_repl_demote_store (zr_store_t *store, uint64_t epoch, char **err)
{
    if (epoch < zr_store_epoch (store))
        epoch = zr_store_epoch (store);
    return zr_store_set_role (store, epoch, "slave", err);
}

bool
zr_repl_take_diverged (zr_repl_t *self)
{
    if (!self || !self->slave || !self->apply_error
    ||  !strstr (self->apply_error, "hash chain mismatch"))
        return false;
    free (self->apply_error);
    self->apply_error = NULL;
    return true;
}

uint64_t
zr_repl_isr_version (zr_repl_t *self)
{
    int64_t ver = 0;
    zr_hdr_t *hdr = s_failover_info (self);
    if (!hdr || zr_field_int (zr_hdr_root (hdr), "isr_ver", &ver)
                != ZR_FIELD_OK || ver < 0)
        ver = 0;
    zr_hdr_destroy (&hdr);
    return (uint64_t) ver;
}

void
zr_repl_recorded (zr_repl_t *self, const char *ids, uint64_t ver)
{
    if (!self || self->slave || !self->actor || !ids)
        return;
    //  A version this actor never issued (told to an earlier actor) is
    //  no proof of anything: wait for a set told from this one.
    if (ver > zr_repl_isr_version (self))
        return;
    if (self->recorded && streq (self->recorded, ids)
    &&  ver == self->recorded_ver)
        return;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "RECORDED");
    zmsg_addstr (msg, ids);
    zmsg_addstrf (msg, "%" PRIu64, ver);
    if (s_send_nowait (&msg, zsock_resolve (zactor_sock (self->actor))))
        return;     //  the pipe is full: again on the next turn
    free (self->recorded);
    self->recorded = strdup (ids);
    self->recorded_ver = ver;
}
