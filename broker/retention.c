/*  broker/retention.c - per-topic retention and lookup indexes (see
    retention.h). No sockets here: the broker actor calls these from its
    write path, its retention timer and its FIND handler.

    Index key: topic length (1 byte) | topic | type (0 id, 1 key) |
    string | 0 | queue (4 bytes BE) | offset (8 bytes BE). Strings with
    a 0 byte or longer than ZR_RETENTION_STR_MAX are not indexed.
*/
#include "broker/retention.h"
#include "transport/codec.h"

#define TOPIC_MAX 255

typedef struct {
    int64_t bytes;          //  record bytes in [min, max)
    bool known;             //  bytes counted
} rqueue_t;

typedef struct {
    int64_t ms;             //  stored value, -1: default
    int64_t bytes;
    uint64_t deleted;       //  messages deleted since start
    rqueue_t *queue;
    int queues;
} rtopic_t;

struct _zr_retention_t {
    zr_store_t *store;
    int64_t default_ms;
    int64_t default_bytes;
    zhashx_t *topics;       //  name -> rtopic_t
};

static void
s_rtopic_free (void **item)
{
    rtopic_t *t = (rtopic_t *) *item;
    if (t) {
        free (t->queue);
        free (t);
        *item = NULL;
    }
}

zr_retention_t *
zr_retention_new (zr_store_t *store, int64_t default_ms,
                  int64_t default_bytes)
{
    assert (store);
    zr_retention_t *self = (zr_retention_t *) zmalloc (sizeof *self);
    assert (self);
    self->store = store;
    self->default_ms = default_ms;
    self->default_bytes = default_bytes;
    self->topics = zhashx_new ();
    assert (self->topics);
    zhashx_set_destructor (self->topics, s_rtopic_free);
    return self;
}

void
zr_retention_destroy (zr_retention_t **self_p)
{
    assert (self_p);
    zr_retention_t *self = *self_p;
    if (self) {
        zhashx_destroy (&self->topics);
        free (self);
        *self_p = NULL;
    }
}

//  The topic's state, loaded from the store the first time.
static rtopic_t *
s_topic (zr_retention_t *self, const char *topic)
{
    rtopic_t *t = (rtopic_t *) zhashx_lookup (self->topics, topic);
    if (!t) {
        t = (rtopic_t *) zmalloc (sizeof *t);
        assert (t);
        if (zr_store_topic_retention (self->store, topic, &t->ms,
                                      &t->bytes) != 0)
            t->ms = t->bytes = -1;
        zhashx_insert (self->topics, topic, t);
    }
    return t;
}

static rqueue_t *
s_queue (rtopic_t *t, int queue)
{
    if (queue < 0)
        return NULL;
    if (queue >= t->queues) {
        rqueue_t *q = (rqueue_t *) realloc (t->queue,
                                            sizeof (rqueue_t) * (queue + 1));
        assert (q);
        memset (q + t->queues, 0, sizeof (rqueue_t) * (queue + 1 - t->queues));
        t->queue = q;
        t->queues = queue + 1;
    }
    return &t->queue [queue];
}

void
zr_retention_get (zr_retention_t *self, const char *topic, int64_t *ms,
                  int64_t *bytes)
{
    assert (self);
    rtopic_t *t = s_topic (self, topic);
    *ms = t->ms >= 0 ? t->ms : self->default_ms;
    *bytes = t->bytes >= 0 ? t->bytes : self->default_bytes;
}

bool
zr_retention_set (zr_retention_t *self, const char *topic, int64_t ms,
                  int64_t bytes)
{
    assert (self);
    rtopic_t *t = s_topic (self, topic);
    int64_t new_ms = ms >= 0 ? ms : t->ms;
    int64_t new_bytes = bytes >= 0 ? bytes : t->bytes;
    if (new_ms == t->ms && new_bytes == t->bytes)
        return false;
    t->ms = new_ms;
    t->bytes = new_bytes;
    zr_store_batch_topic_retention (self->store, topic, new_ms, new_bytes);
    return true;
}

void
zr_retention_forget (zr_retention_t *self, const char *topic)
{
    assert (self);
    zhashx_delete (self->topics, topic);
}


//  --------------------------------------------------------------------------
//  Records

//  Decodes a record's meta map; returns NULL for a damaged record.
static zr_hdr_t *
s_meta (const void *record, size_t size)
{
    const uint8_t *r = (const uint8_t *) record;
    if (size < 4)
        return NULL;
    size_t meta = ((size_t) r [0] << 24) | ((size_t) r [1] << 16)
                | ((size_t) r [2] << 8) | r [3];
    if (meta > size - 4)
        return NULL;
    zr_hdr_t *hdr = zr_hdr_decode (r + 4, meta, NULL);
    if (hdr && !zr_obj_is_map (zr_hdr_root (hdr)))
        zr_hdr_destroy (&hdr);
    return hdr;
}

static int64_t
s_stored (const void *record, size_t size)
{
    zr_hdr_t *hdr = s_meta (record, size);
    int64_t stored = -1;
    if (!hdr || zr_field_int (zr_hdr_root (hdr), "stored", &stored))
        stored = -1;
    zr_hdr_destroy (&hdr);
    return stored;
}

//  Index key prefix: topic | type | str | 0. Returns its size, or 0 when
//  str cannot be indexed.
static size_t
s_index_prefix (unsigned char *key, const char *topic, int type,
                const char *str, size_t len)
{
    size_t tlen = strlen (topic);
    if (tlen == 0 || tlen > TOPIC_MAX || len == 0
    ||  len > ZR_RETENTION_STR_MAX || memchr (str, 0, len))
        return 0;
    key [0] = (unsigned char) tlen;
    memcpy (key + 1, topic, tlen);
    key [1 + tlen] = (unsigned char) type;
    memcpy (key + 2 + tlen, str, len);
    key [2 + tlen + len] = 0;
    return 3 + tlen + len;
}

#define INDEX_KEY_MAX (3 + TOPIC_MAX + ZR_RETENTION_STR_MAX + 12)

static void
s_index_put (zr_retention_t *self, const char *topic, int type,
             const char *str, size_t len, int queue, int64_t offset)
{
    unsigned char key [INDEX_KEY_MAX];
    size_t n = s_index_prefix (key, topic, type, str, len);
    if (!n)
        return;
    uint32_t q = (uint32_t) queue;
    uint64_t o = (uint64_t) offset;
    for (int i = 0; i < 4; i++)
        key [n + i] = (unsigned char) (q >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        key [n + 4 + i] = (unsigned char) (o >> (56 - 8 * i));
    zr_store_batch_index_put (self->store, key, n + 12);
}

void
zr_retention_on_append (zr_retention_t *self, const char *topic, int queue,
                        int64_t offset, const void *record, size_t size)
{
    assert (self);
    rtopic_t *t = s_topic (self, topic);
    rqueue_t *q = s_queue (t, queue);
    if (q && q->known)
        q->bytes += (int64_t) size;
    zr_hdr_t *hdr = s_meta (record, size);
    if (!hdr)
        return;
    const zr_obj_t *meta = zr_hdr_root (hdr);
    const char *s;
    size_t len;
    if (zr_field_str (meta, "id", &s, &len) == ZR_FIELD_OK)
        s_index_put (self, topic, ZR_RETENTION_BY_ID, s, len, queue, offset);
    if (zr_field_str (meta, "keys", &s, &len) == ZR_FIELD_OK) {
        size_t i = 0;
        while (i < len) {
            while (i < len && s [i] == ' ')
                i++;
            size_t start = i;
            while (i < len && s [i] != ' ')
                i++;
            if (i > start)
                s_index_put (self, topic, ZR_RETENTION_BY_KEY, s + start,
                             i - start, queue, offset);
        }
    }
    zr_hdr_destroy (&hdr);
}


//  --------------------------------------------------------------------------
//  Retention

typedef struct {
    int64_t bytes;
} sum_t;

static void
s_sum (int64_t offset, const void *record, size_t size, void *arg)
{
    (void) offset;
    (void) record;
    ((sum_t *) arg)->bytes += (int64_t) size;
}

//  Counts the record bytes of [min, max). Returns 0 or -1.
static int
s_count_bytes (zr_retention_t *self, const char *topic, int queue,
               int64_t min, int64_t max, int64_t *bytes, int *budget)
{
    sum_t sum = { 0 };
    int64_t at = min;
    while (at < max) {
        int n = zr_store_read (self->store, topic, queue, at, 10000,
                               SIZE_MAX, s_sum, &sum);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        at += n;
        *budget -= n;
    }
    *bytes = sum.bytes;
    return 0;
}

typedef struct {
    int64_t cutoff;         //  delete stored < cutoff (-1: no age limit)
    int64_t limit;          //  keep at most this many bytes (0: no limit)
    int64_t bytes;          //  bytes left in the queue
    int64_t keep;           //  first offset to keep
    int64_t deleted_bytes;
    bool stop;
    int read;
} scan_t;

static void
s_scan (int64_t offset, const void *record, size_t size, void *arg)
{
    scan_t *s = (scan_t *) arg;
    if (s->stop)
        return;
    s->read++;
    bool excess = s->limit > 0 && s->bytes > s->limit;
    bool expired = false;
    if (!excess && s->cutoff >= 0) {
        int64_t stored = s_stored (record, size);
        expired = stored >= 0 && stored < s->cutoff;
    }
    if (!excess && !expired) {
        s->stop = true;
        return;
    }
    s->keep = offset + 1;
    s->bytes -= (int64_t) size;
    s->deleted_bytes += (int64_t) size;
}

int64_t
zr_retention_queue (zr_retention_t *self, const char *topic, int queues,
                    int queue, int64_t min, int64_t max, int64_t now,
                    int *budget)
{
    assert (self);
    assert (budget);
    int64_t ms, bytes;
    zr_retention_get (self, topic, &ms, &bytes);
    if ((ms <= 0 && bytes <= 0) || max - min < 2 || *budget <= 0
    ||  queues < 1)
        return min;
    rtopic_t *t = s_topic (self, topic);
    rqueue_t *q = s_queue (t, queue);
    if (!q)
        return min;
    scan_t s = { -1, 0, 0, min, 0, false, 0 };
    if (bytes > 0) {
        if (!q->known) {
            if (s_count_bytes (self, topic, queue, min, max, &q->bytes,
                               budget))
                return min;
            q->known = true;
        }
        s.limit = bytes / queues > 0 ? bytes / queues : 1;
        s.bytes = q->bytes;
    }
    if (ms > 0)
        s.cutoff = now - ms;
    //  The newest message stays: offsets come back from the data.
    int64_t last = max - 1;
    while (!s.stop && s.keep < last && *budget > 0) {
        int64_t count = last - s.keep;
        if (count > 256)
            count = 256;
        if (count > *budget)
            count = *budget;
        s.read = 0;
        int n = zr_store_read (self->store, topic, queue, s.keep,
                               (int) count, SIZE_MAX, s_scan, &s);
        if (n <= 0)
            break;
        *budget -= n;
    }
    if (s.keep > last)
        s.keep = last;
    if (s.keep <= min)
        return min;
    zr_store_batch_delete_range (self->store, topic, queue, min, s.keep);
    if (q->known)
        q->bytes -= s.deleted_bytes;
    t->deleted += (uint64_t) (s.keep - min);
    return s.keep;
}

void
zr_retention_abort (zr_retention_t *self)
{
    assert (self);
    rtopic_t *t = (rtopic_t *) zhashx_first (self->topics);
    while (t) {
        for (int i = 0; i < t->queues; i++)
            t->queue [i].known = false;
        t = (rtopic_t *) zhashx_next (self->topics);
    }
}

uint64_t
zr_retention_deleted (zr_retention_t *self, const char *topic)
{
    assert (self);
    rtopic_t *t = (rtopic_t *) zhashx_lookup (self->topics, topic);
    return t ? t->deleted : 0;
}


//  --------------------------------------------------------------------------
//  Lookup

typedef struct {
    zr_retention_t *self;
    const char *topic;
    size_t prefix;
    int max;
    int found;
    bool error;
    zr_retention_found_fn *fn;
    void *arg;
} find_t;

static int
s_find_key (const void *key, size_t size, void *arg)
{
    find_t *f = (find_t *) arg;
    const unsigned char *k = (const unsigned char *) key;
    if (size != f->prefix + 12)
        return 0;               //  a longer string with this one's prefix
    k += f->prefix;
    uint32_t queue = ((uint32_t) k [0] << 24) | ((uint32_t) k [1] << 16)
                   | ((uint32_t) k [2] << 8) | k [3];
    uint64_t offset = 0;
    for (int i = 0; i < 8; i++)
        offset = (offset << 8) | k [4 + i];
    if (queue > INT32_MAX || offset > INT64_MAX)
        return 0;
    void *record = NULL;
    size_t rsize = 0;
    int rc = zr_store_get (f->self->store, f->topic, (int) queue,
                           (int64_t) offset, &record, &rsize);
    if (rc < 0) {
        f->error = true;
        return 1;
    }
    if (rc == 0) {              //  1: deleted by retention, skipped
        f->fn ((int) queue, (int64_t) offset, record, rsize, f->arg);
        f->found++;
        free (record);
    }
    return f->found >= f->max;
}

int
zr_retention_find (zr_retention_t *self, const char *topic, int type,
                   const char *str, size_t len, int max,
                   zr_retention_found_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    unsigned char prefix [INDEX_KEY_MAX];
    size_t n = s_index_prefix (prefix, topic, type, str, len);
    if (!n || max <= 0)
        return 0;
    find_t f = { self, topic, n, max, 0, false, fn, arg };
    int rc = zr_store_index_scan (self->store, prefix, n,
                                  ZR_RETENTION_SCAN_MAX, s_find_key, &f);
    if (rc < 0 || f.error)
        return -1;
    return f.found;
}
