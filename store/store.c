/*  store/store.c - the broker's durable state in RocksDB.

    See store.h for the key layout. This file is the only one that talks
    to RocksDB: every string or value RocksDB allocates is freed here.

    Meta keys in the default column family:

      "format"      8 bytes BE, data directory format (ZR_STORE_FORMAT)
      "group"       broker group name (bytes, no terminator)
      "epoch"       8 bytes BE
      "seq"         8 bytes BE, sequence of the last committed batch
      "t/<topic>"   4 bytes BE, the topic's queue count
      "m/<name>"    a mark (empty value), see zr_store_batch_mark_put
      "r/<topic>"   16 bytes: retention ms, retention bytes (int64 BE,
                    -1: the broker's default); absent: defaults

    The open batch is one rocksdb_writebatch_t, reused. Beside it we keep
    the list of log operations that describe it; consecutive appends to a
    queue are merged into one "A" op (a hash finds the open run of each
    queue), so a log entry stays small whatever the batch size.
*/
#include <czmq.h>
#include <msgpack.h>
#include <rocksdb/c.h>

#include <dirent.h>
#include <errno.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store/store.h"

#define STORE_TOPIC_MAX  127             //  bytes in a topic name
#define STORE_GROUP_MAX  255             //  bytes in a consumer group name
#define STORE_MSGKEY_MAX (1 + STORE_TOPIC_MAX + 4 + 8)
#define STORE_WBUF_DEFAULT (64u * 1024 * 1024)

#define STORE_MARK_MAX   1024            //  bytes in a mark name

enum { CF_META, CF_MSG, CF_OFFSETS, CF_LOG, CF_TIMER, CF_HALF,
       CF_INDEX, CF_REPL, CF_COUNT };
static const char *s_cf_names [CF_COUNT] = {
    "default", "msg", "offsets", "log", "timer", "half",
    "index", "repl"
};

//  One log operation of the open batch
typedef struct {
    char type;                  //  'A', 'O', 'T', 'D', 'X', 'x', 'M',
                                //  'R', 'P', 'H', 'h'
    char *topic;
    char *group;                //  'O' only
    int queue;                  //  'A', 'O'
    int64_t a;                  //  A: first offset, O: offset, T: queues
    int64_t count;              //  A: number of records
    unsigned char key [ZR_STORE_TIMER_KEY];     //  X, x: timer key
} s_op_t;

struct _zr_store_t {
    char *path;
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf [CF_COUNT];
    rocksdb_writeoptions_t *wo_async;
    rocksdb_writeoptions_t *wo_sync;
    rocksdb_readoptions_t *ro;
    rocksdb_writebatch_t *batch;

    char *group;
    uint64_t epoch;
    uint64_t seq;

    //  Log ops of the open batch
    s_op_t *ops;
    size_t nops;
    size_t ops_max;
    zhashx_t *runs;             //  "queue/topic" -> index + 1 of its A op
    size_t batch_ops;           //  calls that added to the batch
    size_t batch_bytes;         //  record bytes in the batch
    uint64_t batch_timers;      //  timers put in the batch (key sequence)
    //  Replication (see store.h)
    unsigned char hash [ZR_STORE_HASH_LEN];     //  h(seq)
    unsigned char next_hash [ZR_STORE_HASH_LEN];
    char *role;                 //  persisted role or NULL
    bool repl_nolog;            //  payloads not kept
    zr_store_commit_fn *commit_fn;
    void *commit_arg;
    msgpack_sbuffer repl_buf;   //  the commit's repl entry
    size_t payload_off;         //  its payload inside repl_buf
    size_t payload_size;
};


//  --------------------------------------------------------------------------
//  Key encoding

static void
s_put_be64 (unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p [i] = (unsigned char) (v & 0xff);
        v >>= 8;
    }
}

static uint64_t
s_get_be64 (const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p [i];
    return v;
}

static void
s_put_be32 (unsigned char *p, uint32_t v)
{
    p [0] = (unsigned char) (v >> 24);
    p [1] = (unsigned char) (v >> 16);
    p [2] = (unsigned char) (v >> 8);
    p [3] = (unsigned char) v;
}

static uint32_t
s_get_be32 (const unsigned char *p)
{
    return ((uint32_t) p [0] << 24) | ((uint32_t) p [1] << 16)
         | ((uint32_t) p [2] << 8) | (uint32_t) p [3];
}

//  Checks a topic name; returns its length or -1.
static int
s_topic_ok (const char *topic)
{
    if (!topic)
        return -1;
    size_t len = strlen (topic);
    if (len == 0 || len > STORE_TOPIC_MAX)
        return -1;
    return (int) len;
}

//  Writes the topic prefix (length byte and name) into key; returns its
//  size. Topic must have passed s_topic_ok.
static size_t
s_topic_prefix (unsigned char *key, const char *topic, int len)
{
    key [0] = (unsigned char) len;
    memcpy (key + 1, topic, (size_t) len);
    return 1 + (size_t) len;
}

//  Message key for (topic, queue, offset); returns its size.
static size_t
s_msg_key (unsigned char *key, const char *topic, int len, int queue,
           int64_t offset)
{
    size_t n = s_topic_prefix (key, topic, len);
    s_put_be32 (key + n, (uint32_t) queue);
    s_put_be64 (key + n + 4, (uint64_t) offset);
    return n + 12;
}

//  Offsets key: group | 0 | topic | 0 | queue BE32. Caller frees.
static unsigned char *
s_offset_key (const char *group, const char *topic, int queue, size_t *size)
{
    size_t glen = strlen (group);
    size_t tlen = strlen (topic);
    *size = glen + 1 + tlen + 1 + 4;
    unsigned char *key = (unsigned char *) malloc (*size);
    assert (key);
    memcpy (key, group, glen);
    key [glen] = 0;
    memcpy (key + glen + 1, topic, tlen);
    key [glen + 1 + tlen] = 0;
    s_put_be32 (key + glen + 1 + tlen + 1, (uint32_t) queue);
    return key;
}


//  --------------------------------------------------------------------------
//  Meta helpers

//  Reads a meta value. Returns 0 with *value (caller frees) and *size,
//  1 when absent, -1 with *err set.
static int
s_meta_get (zr_store_t *self, const char *key, char **value, size_t *size,
            char **err)
{
    char *rerr = NULL;
    size_t len = 0;
    char *v = rocksdb_get_cf (self->db, self->ro, self->cf [CF_META], key,
                              strlen (key), &len, &rerr);
    if (rerr) {
        *err = zsys_sprintf ("%s", rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 1;
    *value = (char *) malloc (len + 1);
    assert (*value);
    memcpy (*value, v, len);
    (*value) [len] = 0;
    *size = len;
    rocksdb_free (v);
    return 0;
}

//  Reads an 8-byte BE meta number. Returns 0, 1 when absent, -1 with
//  *err set (read error or a value of the wrong size).
static int
s_meta_get_u64 (zr_store_t *self, const char *key, uint64_t *out,
                char **err)
{
    char *v = NULL;
    size_t size = 0;
    int rc = s_meta_get (self, key, &v, &size, err);
    if (rc != 0)
        return rc;
    if (size != 8) {
        *err = zsys_sprintf ("meta key '%s' has %zu bytes, expected 8",
                             key, size);
        free (v);
        return -1;
    }
    *out = s_get_be64 ((const unsigned char *) v);
    free (v);
    return 0;
}

static void
s_batch_put_u64 (rocksdb_writebatch_t *wb, rocksdb_column_family_handle_t *cf,
                 const char *key, uint64_t value)
{
    unsigned char buf [8];
    s_put_be64 (buf, value);
    rocksdb_writebatch_put_cf (wb, cf, key, strlen (key),
                               (const char *) buf, 8);
}


//  --------------------------------------------------------------------------
//  Open and close

//  Makes path and its parents (mkdir -p). Returns 0 or -1 with errno set.
static int
s_mkdir_p (const char *path)
{
    char *copy = strdup (path);
    assert (copy);
    size_t len = strlen (copy);
    while (len > 1 && copy [len - 1] == '/')
        copy [--len] = 0;
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir (copy, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            free (copy);
            errno = e;
            return -1;
        }
        *p = '/';
    }
    int rc = 0;
    if (mkdir (copy, 0755) != 0) {
        if (errno == EEXIST) {
            struct stat st;
            if (stat (copy, &st) != 0)
                rc = -1;
            else
            if (!S_ISDIR (st.st_mode)) {
                errno = ENOTDIR;
                rc = -1;
            }
        }
        else
            rc = -1;
    }
    int e = errno;
    free (copy);
    errno = e;
    return rc;
}

//  Turns a RocksDB open error into one line for the operator.
static char *
s_open_error (const char *path, const char *rerr)
{
    if (strstr (rerr, "Resource temporarily unavailable")
    ||  strstr (rerr, "While lock file")
    ||  strstr (rerr, "lock hold by current process"))
        return zsys_sprintf ("store: data directory %s is in use by another "
                             "broker (LOCK held): stop it or choose another "
                             "--data", path);
    if (strstr (rerr, "Permission denied")
    ||  strstr (rerr, "Read-only file system")
    ||  strstr (rerr, "No space left"))
        return zsys_sprintf ("store: cannot create data directory %s: %s; "
                             "check permissions or choose another --data",
                             path, rerr);
    if (strstr (rerr, "Corruption")
    ||  strstr (rerr, "No such file or directory"))
        return zsys_sprintf ("store: data directory %s is damaged: %s; "
                             "restore it from a replica or move it aside",
                             path, rerr);
    return zsys_sprintf ("store: cannot open data directory %s: %s; check "
                         "it or choose another --data", path, rerr);
}

static char *
s_group_generate (void)
{
    uint32_t r = 0;
    if (getrandom (&r, sizeof r, 0) != (ssize_t) sizeof r)
        r = (uint32_t) randof (0x7fffffff) ^ (uint32_t) getpid ()
          ^ (uint32_t) zclock_usecs ();
    return zsys_sprintf ("broker-%08x", r);
}

//  Reads or initialises the meta keys. Returns 0, or -1 with *err set to
//  the final message.
static int
s_meta_load (zr_store_t *self, const zr_store_opts_t *opts, char **err)
{
    char *rerr = NULL;
    uint64_t format = 0;
    int rc = s_meta_get_u64 (self, "format", &format, &rerr);
    if (rc < 0)
        goto damaged;
    bool fresh = rc == 1;
    if (!fresh && format > ZR_STORE_FORMAT) {
        *err = zsys_sprintf ("store: data directory %s has format %" PRIu64
                             ", this zrocket reads format %d at most: "
                             "upgrade zrocket", self->path, format,
                             ZR_STORE_FORMAT);
        return -1;
    }
    if (!fresh && format == 0) {
        rerr = zsys_sprintf ("format 0 is not valid");
        goto damaged;
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create ();
    bool dirty = false;
    if (fresh) {
        s_batch_put_u64 (wb, self->cf [CF_META], "format", ZR_STORE_FORMAT);
        dirty = true;
    }
    //  Group name
    char *group = NULL;
    size_t glen = 0;
    rc = s_meta_get (self, "group", &group, &glen, &rerr);
    if (rc < 0) {
        rocksdb_writebatch_destroy (wb);
        goto damaged;
    }
    if (rc == 0 && (glen == 0 || strlen (group) != glen)) {
        free (group);
        rocksdb_writebatch_destroy (wb);
        rerr = zsys_sprintf ("stored broker group name is not valid");
        goto damaged;
    }
    if (rc == 0 && opts && opts->group && strneq (opts->group, group)) {
        *err = zsys_sprintf ("store: data directory %s belongs to broker "
                             "group '%s', not '%s': use the right --data or "
                             "group name", self->path, group, opts->group);
        free (group);
        rocksdb_writebatch_destroy (wb);
        return -1;
    }
    if (rc == 1) {
        if (opts && opts->group && *opts->group)
            group = strdup (opts->group);
        else
            group = s_group_generate ();
        assert (group);
        rocksdb_writebatch_put_cf (wb, self->cf [CF_META], "group", 5,
                                   group, strlen (group));
        dirty = true;
    }
    self->group = group;

    //  Epoch and sequence
    rc = s_meta_get_u64 (self, "epoch", &self->epoch, &rerr);
    if (rc < 0) {
        rocksdb_writebatch_destroy (wb);
        goto damaged;
    }
    if (rc == 1) {
        self->epoch = 1;
        s_batch_put_u64 (wb, self->cf [CF_META], "epoch", 1);
        dirty = true;
    }
    rc = s_meta_get_u64 (self, "seq", &self->seq, &rerr);
    if (rc < 0) {
        rocksdb_writebatch_destroy (wb);
        goto damaged;
    }
    if (rc == 1)
        self->seq = 0;

    if (dirty) {
        char *werr = NULL;
        rocksdb_write (self->db, self->wo_sync, wb, &werr);
        if (werr) {
            *err = zsys_sprintf ("store: cannot write to data directory %s: "
                                 "%s; check permissions or choose another "
                                 "--data", self->path, werr);
            rocksdb_free (werr);
            rocksdb_writebatch_destroy (wb);
            return -1;
        }
    }
    rocksdb_writebatch_destroy (wb);
    return 0;

damaged:
    *err = zsys_sprintf ("store: data directory %s is damaged: %s; restore "
                         "it from a replica or move it aside", self->path,
                         rerr ? rerr : "bad metadata");
    zstr_free (&rerr);
    return -1;
}

static rocksdb_options_t *
s_cf_options (size_t write_buffer, bool bloom, int compression)
{
    rocksdb_options_t *o = rocksdb_options_create ();
    rocksdb_options_set_write_buffer_size (o, write_buffer);
    //  Room for memtables waiting on a flush: with the default of two,
    //  a burst of sends stops writes until the flush thread catches up.
    rocksdb_options_set_max_write_buffer_number (o, 6);
    rocksdb_options_set_compression (o, compression);
    rocksdb_options_set_level_compaction_dynamic_level_bytes (o, 1);
    rocksdb_block_based_table_options_t *bbt =
        rocksdb_block_based_options_create ();
    if (bloom)
        rocksdb_block_based_options_set_filter_policy (
            bbt, rocksdb_filterpolicy_create_bloom_full (10));
    rocksdb_block_based_options_set_block_size (bbt, 16 * 1024);
    rocksdb_options_set_block_based_table_factory (o, bbt);
    rocksdb_block_based_options_destroy (bbt);
    return o;
}

//  Replication (end of file)
static int s_repl_load (zr_store_t *self, char **err);
static void s_repl_capture (zr_store_t *self, uint64_t seq);
static void s_repl_committed (zr_store_t *self);

zr_store_t *
zr_store_open (const char *path, const zr_store_opts_t *opts, char **err)
{
    assert (err);
    *err = NULL;
    if (!path || !*path) {
        *err = zsys_sprintf ("store: no data directory given: set --data");
        return NULL;
    }
    struct stat st;
    if (stat (path, &st) == 0 && !S_ISDIR (st.st_mode)) {
        *err = zsys_sprintf ("store: data directory %s is not a directory; "
                             "choose another --data", path);
        return NULL;
    }
    if (s_mkdir_p (path) != 0) {
        *err = zsys_sprintf ("store: cannot create data directory %s: %s; "
                             "check permissions or choose another --data",
                             path, strerror (errno));
        return NULL;
    }
    zr_store_t *self = (zr_store_t *) zmalloc (sizeof (zr_store_t));
    assert (self);
    self->path = strdup (path);
    assert (self->path);

    size_t wbuf = opts && opts->write_buffer_size
                ? opts->write_buffer_size : STORE_WBUF_DEFAULT;
    size_t small = wbuf / 4 < 4u * 1024 * 1024 ? wbuf : wbuf / 4;

    rocksdb_options_t *dbo = rocksdb_options_create ();
    rocksdb_options_set_create_if_missing (dbo, 1);
    rocksdb_options_set_create_missing_column_families (dbo, 1);
    rocksdb_options_set_max_background_jobs (dbo, 2);
    rocksdb_options_set_max_open_files (dbo, 512);
    //  WAL files stay until every column family that wrote to them is
    //  flushed; this bounds them when one CF (offsets) is rarely written.
    rocksdb_options_set_max_total_wal_size (dbo, 4 * (uint64_t) wbuf);
    rocksdb_options_set_info_log_level (dbo, 2);       //  WARN
    rocksdb_options_set_keep_log_file_num (dbo, 3);

    rocksdb_options_t *cfo [CF_COUNT];
    cfo [CF_META] = s_cf_options (small, true, rocksdb_no_compression);
    //  Messages uncompressed: bodies are often compressed already, and LZ4
    //  on the one flush thread was what stalled writes under load.
    cfo [CF_MSG] = s_cf_options (wbuf, false, rocksdb_no_compression);
    //  Bodies of 512 bytes or more live in blob files: compaction then
    //  moves keys, not the messages themselves.
    rocksdb_options_set_enable_blob_files (cfo [CF_MSG], 1);
    rocksdb_options_set_min_blob_size (cfo [CF_MSG], 512);
    rocksdb_options_set_blob_file_size (cfo [CF_MSG], 256 << 20);
    rocksdb_options_set_enable_blob_gc (cfo [CF_MSG], 1);
    cfo [CF_OFFSETS] = s_cf_options (small, true, rocksdb_no_compression);
    cfo [CF_LOG] = s_cf_options (small, false, rocksdb_lz4_compression);
    //  Timers: created in existing data directories by
    //  create_missing_column_families.
    cfo [CF_TIMER] = s_cf_options (small, false, rocksdb_no_compression);
    cfo [CF_HALF] = s_cf_options (small, true, rocksdb_no_compression);
    //  Lookup indexes (broker/retention.c), also created when missing.
    cfo [CF_INDEX] = s_cf_options (small, false, rocksdb_no_compression);
    //  Replication log (payload + hash per commit), created when missing.
    cfo [CF_REPL] = s_cf_options (small, false, rocksdb_no_compression);

    char *rerr = NULL;
    self->db = rocksdb_open_column_families (
        dbo, path, CF_COUNT, s_cf_names,
        (const rocksdb_options_t *const *) cfo, self->cf, &rerr);
    rocksdb_options_destroy (dbo);
    for (int i = 0; i < CF_COUNT; i++)
        rocksdb_options_destroy (cfo [i]);
    if (rerr || !self->db) {
        *err = s_open_error (path, rerr ? rerr : "unknown error");
        if (rerr)
            rocksdb_free (rerr);
        self->db = NULL;
        zr_store_destroy (&self);
        return NULL;
    }
    self->wo_async = rocksdb_writeoptions_create ();
    self->wo_sync = rocksdb_writeoptions_create ();
    rocksdb_writeoptions_set_sync (self->wo_sync, 1);
    self->ro = rocksdb_readoptions_create ();
    self->batch = rocksdb_writebatch_create ();
    self->runs = zhashx_new ();
    assert (self->runs);

    if (s_meta_load (self, opts, err) != 0 || s_repl_load (self, err)) {
        zr_store_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_ops_clear (zr_store_t *self)
{
    for (size_t i = 0; i < self->nops; i++) {
        free (self->ops [i].topic);
        free (self->ops [i].group);
    }
    self->nops = 0;
    self->batch_ops = 0;
    self->batch_bytes = 0;
    self->batch_timers = 0;
    if (self->runs)
        zhashx_purge (self->runs);
    if (self->batch)
        rocksdb_writebatch_clear (self->batch);
}

void
zr_store_destroy (zr_store_t **self_p)
{
    assert (self_p);
    zr_store_t *self = *self_p;
    if (!self)
        return;
    s_ops_clear (self);
    free (self->ops);
    zhashx_destroy (&self->runs);
    if (self->batch)
        rocksdb_writebatch_destroy (self->batch);
    if (self->ro)
        rocksdb_readoptions_destroy (self->ro);
    if (self->wo_async)
        rocksdb_writeoptions_destroy (self->wo_async);
    if (self->wo_sync)
        rocksdb_writeoptions_destroy (self->wo_sync);
    if (self->db) {
        for (int i = 0; i < CF_COUNT; i++)
            if (self->cf [i])
                rocksdb_column_family_handle_destroy (self->cf [i]);
        rocksdb_close (self->db);
    }
    free (self->group);
    free (self->role);
    msgpack_sbuffer_destroy (&self->repl_buf);
    free (self->path);
    free (self);
    *self_p = NULL;
}

const char *
zr_store_group (zr_store_t *self)
{
    assert (self);
    return self->group;
}

uint64_t
zr_store_epoch (zr_store_t *self)
{
    assert (self);
    return self->epoch;
}

uint64_t
zr_store_seq (zr_store_t *self)
{
    assert (self);
    return self->seq;
}

const char *
zr_store_path (zr_store_t *self)
{
    assert (self);
    return self->path;
}


//  --------------------------------------------------------------------------
//  Topics

void
zr_store_topic_foreach (zr_store_t *self, zr_store_topic_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    const char upper [] = "t0";             //  '0' follows '/'
    rocksdb_readoptions_set_iterate_upper_bound (ro, upper, 2);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, ro, self->cf [CF_META]);
    char name [STORE_TOPIC_MAX + 1];
    for (rocksdb_iter_seek (it, "t/", 2); rocksdb_iter_valid (it);
         rocksdb_iter_next (it)) {
        size_t klen = 0, vlen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        const char *val = rocksdb_iter_value (it, &vlen);
        if (klen < 3 || klen - 2 > STORE_TOPIC_MAX || vlen != 4
        ||  memchr (key + 2, 0, klen - 2)) {
            zsys_warning ("store: %s: skipping a bad topic record",
                          self->path);
            continue;
        }
        memcpy (name, key + 2, klen - 2);
        name [klen - 2] = 0;
        uint32_t queues = s_get_be32 ((const unsigned char *) val);
        fn (name, queues > INT32_MAX ? INT32_MAX : (int) queues, arg);
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading topics: %s", self->path, rerr);
        rocksdb_free (rerr);
    }
    rocksdb_iter_destroy (it);
    rocksdb_readoptions_destroy (ro);
}

int
zr_store_queue_bounds (zr_store_t *self, const char *topic, int queue,
                       int64_t *min, int64_t *max)
{
    assert (self);
    assert (min && max);
    *min = *max = 0;
    int tlen = s_topic_ok (topic);
    if (tlen < 0 || queue < 0)
        return -1;
    unsigned char lower [STORE_MSGKEY_MAX];
    unsigned char upper [STORE_MSGKEY_MAX + 1];
    size_t n = s_msg_key (lower, topic, tlen, queue, 0);
    size_t pfx = n - 8;                     //  topic prefix and queue
    memcpy (upper, lower, pfx);
    memset (upper + pfx, 0xff, 9);          //  past every offset
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    rocksdb_readoptions_set_iterate_lower_bound (ro, (char *) lower, n);
    rocksdb_readoptions_set_iterate_upper_bound (ro, (char *) upper, pfx + 9);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, ro, self->cf [CF_MSG]);
    int rc = 0;
    rocksdb_iter_seek (it, (const char *) lower, n);
    if (rocksdb_iter_valid (it)) {
        size_t klen = 0;
        const unsigned char *key =
            (const unsigned char *) rocksdb_iter_key (it, &klen);
        if (klen == n && memcmp (key, lower, pfx) == 0) {
            *min = (int64_t) s_get_be64 (key + pfx);
            rocksdb_iter_seek_for_prev (it, (const char *) upper, pfx + 9);
            if (rocksdb_iter_valid (it)) {
                key = (const unsigned char *) rocksdb_iter_key (it, &klen);
                if (klen == n && memcmp (key, lower, pfx) == 0)
                    *max = (int64_t) s_get_be64 (key + pfx) + 1;
            }
            if (*max < *min)
                *max = *min;
        }
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading queue %s/%d: %s", self->path, topic,
                    queue, rerr);
        rocksdb_free (rerr);
        *min = *max = 0;
        rc = -1;
    }
    rocksdb_iter_destroy (it);
    rocksdb_readoptions_destroy (ro);
    return rc;
}


//  --------------------------------------------------------------------------
//  Batch

static s_op_t *
s_op_new (zr_store_t *self, char type, const char *topic)
{
    if (self->nops == self->ops_max) {
        size_t max = self->ops_max ? self->ops_max * 2 : 16;
        s_op_t *ops = (s_op_t *) realloc (self->ops, max * sizeof (s_op_t));
        assert (ops);
        self->ops = ops;
        self->ops_max = max;
    }
    s_op_t *op = &self->ops [self->nops++];
    memset (op, 0, sizeof *op);
    op->type = type;
    op->topic = strdup (topic);
    assert (op->topic);
    return op;
}

void
zr_store_batch_append (zr_store_t *self, const char *topic, int queue,
                       int64_t offset, const void *record, size_t size)
{
    assert (self);
    int tlen = s_topic_ok (topic);
    if (tlen < 0 || queue < 0 || offset < 0 || (!record && size)) {
        zsys_warning ("store: append to '%.40s' queue %d offset %" PRId64
                      " refused: bad topic, queue or offset",
                      topic ? topic : "", queue, offset);
        return;
    }
    unsigned char key [STORE_MSGKEY_MAX];
    size_t n = s_msg_key (key, topic, tlen, queue, offset);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_MSG],
                               (const char *) key, n,
                               record ? (const char *) record : "", size);
    self->batch_ops++;
    self->batch_bytes += size;

    //  Extend this queue's open run, or start one
    char run_key [STORE_TOPIC_MAX + 16];
    snprintf (run_key, sizeof run_key, "%d/%s", queue, topic);
    size_t index = (size_t) (uintptr_t) zhashx_lookup (self->runs, run_key);
    if (index) {
        s_op_t *op = &self->ops [index - 1];
        if (op->a + op->count == offset) {
            op->count++;
            return;
        }
    }
    s_op_t *op = s_op_new (self, 'A', topic);
    op->queue = queue;
    op->a = offset;
    op->count = 1;
    zhashx_update (self->runs, run_key, (void *) (uintptr_t) self->nops);
}

void
zr_store_batch_offset (zr_store_t *self, const char *group,
                       const char *topic, int queue, int64_t offset)
{
    assert (self);
    if (s_topic_ok (topic) < 0 || !group || !*group
    ||  strlen (group) > STORE_GROUP_MAX || queue < 0) {
        zsys_warning ("store: offset commit for group '%.40s' topic '%.40s' "
                      "refused: bad group, topic or queue",
                      group ? group : "", topic ? topic : "");
        return;
    }
    size_t klen = 0;
    unsigned char *key = s_offset_key (group, topic, queue, &klen);
    unsigned char val [8];
    s_put_be64 (val, (uint64_t) offset);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_OFFSETS],
                               (const char *) key, klen,
                               (const char *) val, 8);
    free (key);
    self->batch_ops++;
    s_op_t *op = s_op_new (self, 'O', topic);
    op->group = strdup (group);
    assert (op->group);
    op->queue = queue;
    op->a = offset;
}

void
zr_store_batch_topic_put (zr_store_t *self, const char *topic, int queues)
{
    assert (self);
    int tlen = s_topic_ok (topic);
    if (tlen < 0 || queues < 0) {
        zsys_warning ("store: topic '%.40s' with %d queues refused",
                      topic ? topic : "", queues);
        return;
    }
    char key [2 + STORE_TOPIC_MAX];
    memcpy (key, "t/", 2);
    memcpy (key + 2, topic, (size_t) tlen);
    unsigned char val [4];
    s_put_be32 (val, (uint32_t) queues);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_META], key,
                               2 + (size_t) tlen, (const char *) val, 4);
    self->batch_ops++;
    //  Appends after a topic change start new runs, so the log keeps
    //  the order of topic changes and appends.
    zhashx_purge (self->runs);
    s_op_t *op = s_op_new (self, 'T', topic);
    op->a = queues;
}

void
zr_store_batch_topic_delete (zr_store_t *self, const char *topic)
{
    assert (self);
    int tlen = s_topic_ok (topic);
    if (tlen < 0) {
        zsys_warning ("store: delete of topic '%.40s' refused: bad name",
                      topic ? topic : "");
        return;
    }
    //  Topic record
    char mkey [2 + STORE_TOPIC_MAX];
    memcpy (mkey, "t/", 2);
    memcpy (mkey + 2, topic, (size_t) tlen);
    rocksdb_writebatch_delete_cf (self->batch, self->cf [CF_META], mkey,
                                  2 + (size_t) tlen);
    mkey [0] = 'r';                         //  its retention record
    rocksdb_writebatch_delete_cf (self->batch, self->cf [CF_META], mkey,
                                  2 + (size_t) tlen);
    //  Lookup index entries: topic prefix, then type 0 or 1 (< 0xff)
    {
        unsigned char istart [1 + STORE_TOPIC_MAX + 1];
        size_t ipfx = s_topic_prefix (istart, topic, tlen);
        unsigned char iend [1 + STORE_TOPIC_MAX + 1];
        memcpy (iend, istart, ipfx);
        iend [ipfx] = 0xff;
        rocksdb_writebatch_delete_range_cf (self->batch, self->cf [CF_INDEX],
                                            (const char *) istart, ipfx,
                                            (const char *) iend, ipfx + 1);
    }
    //  Messages: every key with this topic prefix
    unsigned char start [STORE_MSGKEY_MAX + 1];
    unsigned char end [STORE_MSGKEY_MAX + 1];
    size_t pfx = s_topic_prefix (start, topic, tlen);
    memcpy (end, start, pfx);
    memset (end + pfx, 0xff, 13);           //  past every queue/offset
    rocksdb_writebatch_delete_range_cf (self->batch, self->cf [CF_MSG],
                                        (const char *) start, pfx,
                                        (const char *) end, pfx + 13);
    //  Offsets of every group: scan the stored ones...
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, self->ro, self->cf [CF_OFFSETS]);
    for (rocksdb_iter_seek_to_first (it); rocksdb_iter_valid (it);
         rocksdb_iter_next (it)) {
        size_t klen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        const char *sep = (const char *) memchr (key, 0, klen);
        if (!sep)
            continue;
        size_t rest = klen - (size_t) (sep + 1 - key);
        if (rest == (size_t) tlen + 1 + 4
        &&  memcmp (sep + 1, topic, (size_t) tlen) == 0
        &&  sep [1 + tlen] == 0)
            rocksdb_writebatch_delete_cf (self->batch, self->cf [CF_OFFSETS],
                                          key, klen);
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: scanning offsets of '%s': %s", self->path,
                    topic, rerr);
        rocksdb_free (rerr);
    }
    rocksdb_iter_destroy (it);
    //  ...and those earlier in this batch, which the scan cannot see
    for (size_t i = 0; i < self->nops; i++) {
        s_op_t *op = &self->ops [i];
        if (op->type == 'O' && streq (op->topic, topic)) {
            size_t klen = 0;
            unsigned char *key =
                s_offset_key (op->group, topic, op->queue, &klen);
            rocksdb_writebatch_delete_cf (self->batch, self->cf [CF_OFFSETS],
                                          (const char *) key, klen);
            free (key);
        }
    }
    self->batch_ops++;
    zhashx_purge (self->runs);
    s_op_new (self, 'D', topic);
}

int
zr_store_batch_timer_put (zr_store_t *self, int64_t due, const void *value,
                          size_t size, unsigned char *key_out)
{
    assert (self);
    if (due < 0 || (!value && size)) {
        zsys_warning ("store: timer due at %" PRId64 " refused", due);
        return -1;
    }
    //  Sequence part: the batch's commit sequence and its index in the
    //  batch, so keys never repeat (a failed batch stored nothing, and
    //  its sequence is used again by the next one).
    unsigned char key [ZR_STORE_TIMER_KEY];
    s_put_be64 (key, (uint64_t) due);
    s_put_be64 (key + 8, ((self->seq + 1) << 24) + self->batch_timers++);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_TIMER],
                               (const char *) key, sizeof key,
                               value ? (const char *) value : "", size);
    self->batch_ops++;
    self->batch_bytes += size;
    s_op_t *op = s_op_new (self, 'X', "");
    memcpy (op->key, key, sizeof key);
    if (key_out)
        memcpy (key_out, key, sizeof key);
    return 0;
}

int
zr_store_batch_timer_delete (zr_store_t *self, const void *key, size_t size)
{
    assert (self);
    if (!key || size != ZR_STORE_TIMER_KEY) {
        zsys_warning ("store: timer delete refused: key of %zu bytes",
                      size);
        return -1;
    }
    rocksdb_writebatch_delete_cf (self->batch, self->cf [CF_TIMER],
                                  (const char *) key, size);
    self->batch_ops++;
    s_op_t *op = s_op_new (self, 'x', "");
    memcpy (op->key, key, ZR_STORE_TIMER_KEY);
    return 0;
}

//  Meta key of a mark: "m/" + name. Returns its size, or 0 for a bad name.
static size_t
s_mark_key (char *key, const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > STORE_MARK_MAX)
        return 0;
    memcpy (key, "m/", 2);
    memcpy (key + 2, name, len);
    return 2 + len;
}

int
zr_store_batch_mark_put (zr_store_t *self, const char *name)
{
    assert (self);
    char key [2 + STORE_MARK_MAX];
    size_t klen = s_mark_key (key, name);
    if (!klen) {
        zsys_warning ("store: mark '%.40s' refused: bad name",
                      name ? name : "");
        return -1;
    }
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_META], key, klen,
                               "", 0);
    self->batch_ops++;
    s_op_new (self, 'M', name);
    return 0;
}

//  Half (transactional) entries: key checked, 1..STORE_HALF_KEY_MAX bytes.
#define STORE_HALF_KEY_MAX 255

static size_t
s_half_key_ok (const char *key)
{
    size_t len = key ? strlen (key) : 0;
    return len > 0 && len <= STORE_HALF_KEY_MAX ? len : 0;
}

int
zr_store_batch_half_put (zr_store_t *self, const char *key,
                         const void *value, size_t size)
{
    assert (self);
    size_t klen = s_half_key_ok (key);
    if (!klen || (!value && size)) {
        zsys_warning ("store: half entry '%.40s' refused: bad key",
                      key ? key : "");
        return -1;
    }
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_HALF], key, klen,
                               value ? (const char *) value : "", size);
    self->batch_ops++;
    self->batch_bytes += size;
    s_op_new (self, 'H', key);
    return 0;
}

int
zr_store_batch_half_delete (zr_store_t *self, const char *key)
{
    assert (self);
    size_t klen = s_half_key_ok (key);
    if (!klen) {
        zsys_warning ("store: half delete '%.40s' refused: bad key",
                      key ? key : "");
        return -1;
    }
    rocksdb_writebatch_delete_cf (self->batch, self->cf [CF_HALF], key,
                                  klen);
    self->batch_ops++;
    s_op_new (self, 'h', key);
    return 0;
}

size_t
zr_store_batch_ops (zr_store_t *self)
{
    assert (self);
    return self->batch_ops;
}

size_t
zr_store_batch_bytes (zr_store_t *self)
{
    assert (self);
    return self->batch_bytes;
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

int
zr_store_commit (zr_store_t *self, bool sync, char **err)
{
    assert (self);
    assert (err);
    *err = NULL;
    if (self->batch_ops == 0) {
        s_ops_clear (self);
        return 0;
    }
    uint64_t seq = self->seq + 1;

    //  Log entry: [epoch, seq, [op...]]
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_uint64 (&pk, self->epoch);
    msgpack_pack_uint64 (&pk, seq);
    msgpack_pack_array (&pk, self->nops);
    for (size_t i = 0; i < self->nops; i++) {
        s_op_t *op = &self->ops [i];
        char type [2] = { op->type, 0 };
        switch (op->type) {
            case 'A':
                msgpack_pack_array (&pk, 5);
                s_pack_str (&pk, type);
                s_pack_str (&pk, op->topic);
                msgpack_pack_int (&pk, op->queue);
                msgpack_pack_int64 (&pk, op->a);
                msgpack_pack_int64 (&pk, op->count);
                break;
            case 'O':
                msgpack_pack_array (&pk, 5);
                s_pack_str (&pk, type);
                s_pack_str (&pk, op->group);
                s_pack_str (&pk, op->topic);
                msgpack_pack_int (&pk, op->queue);
                msgpack_pack_int64 (&pk, op->a);
                break;
            case 'T':
                msgpack_pack_array (&pk, 3);
                s_pack_str (&pk, type);
                s_pack_str (&pk, op->topic);
                msgpack_pack_int64 (&pk, op->a);
                break;
            case 'R':           //  range delete [a, count) of a queue
                msgpack_pack_array (&pk, 5);
                s_pack_str (&pk, type);
                s_pack_str (&pk, op->topic);
                msgpack_pack_int (&pk, op->queue);
                msgpack_pack_int64 (&pk, op->a);
                msgpack_pack_int64 (&pk, op->count);
                break;
            case 'P':           //  retention policy: ms, bytes
                msgpack_pack_array (&pk, 4);
                s_pack_str (&pk, type);
                s_pack_str (&pk, op->topic);
                msgpack_pack_int64 (&pk, op->a);
                msgpack_pack_int64 (&pk, op->count);
                break;
            case 'X':
            case 'x':
                msgpack_pack_array (&pk, 2);
                s_pack_str (&pk, type);
                msgpack_pack_bin (&pk, ZR_STORE_TIMER_KEY);
                msgpack_pack_bin_body (&pk, op->key, ZR_STORE_TIMER_KEY);
                break;
            default:            //  'D' topic, 'M' mark, 'H'/'h' half key
                msgpack_pack_array (&pk, 2);
                s_pack_str (&pk, type);
                s_pack_str (&pk, op->topic);
                break;
        }
    }
    unsigned char lkey [8];
    s_put_be64 (lkey, seq);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_LOG],
                               (const char *) lkey, 8, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    s_repl_capture (self, seq);
    s_batch_put_u64 (self->batch, self->cf [CF_META], "seq", seq);

    char *rerr = NULL;
    rocksdb_write (self->db, sync ? self->wo_sync : self->wo_async,
                   self->batch, &rerr);
    s_ops_clear (self);
    if (rerr) {
        *err = zsys_sprintf ("store: %s: commit of batch %" PRIu64
                             " failed: %s", self->path, seq, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    self->seq = seq;
    s_repl_committed (self);
    return 0;
}

void
zr_store_abort (zr_store_t *self)
{
    assert (self);
    s_ops_clear (self);
}


//  --------------------------------------------------------------------------
//  Reads

int
zr_store_read (zr_store_t *self, const char *topic, int queue,
               int64_t offset, int max_count, size_t max_bytes,
               zr_store_record_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    int tlen = s_topic_ok (topic);
    if (tlen < 0 || queue < 0)
        return -1;
    if (offset < 0)
        offset = 0;
    if (max_count <= 0)
        return 0;
    unsigned char start [STORE_MSGKEY_MAX];
    unsigned char upper [STORE_MSGKEY_MAX + 1];
    size_t n = s_msg_key (start, topic, tlen, queue, offset);
    size_t pfx = n - 8;
    memcpy (upper, start, pfx);
    memset (upper + pfx, 0xff, 9);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    rocksdb_readoptions_set_iterate_upper_bound (ro, (char *) upper, pfx + 9);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, ro, self->cf [CF_MSG]);
    int count = 0;
    size_t bytes = 0;
    for (rocksdb_iter_seek (it, (const char *) start, n);
         rocksdb_iter_valid (it) && count < max_count;
         rocksdb_iter_next (it)) {
        size_t klen = 0, vlen = 0;
        const unsigned char *key =
            (const unsigned char *) rocksdb_iter_key (it, &klen);
        if (klen != n || memcmp (key, start, pfx) != 0)
            continue;
        const char *val = rocksdb_iter_value (it, &vlen);
        if (count > 0 && bytes + vlen > max_bytes)
            break;
        fn ((int64_t) s_get_be64 (key + pfx), val, vlen, arg);
        count++;
        bytes += vlen;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading %s/%d: %s", self->path, topic,
                    queue, rerr);
        rocksdb_free (rerr);
        count = -1;
    }
    rocksdb_iter_destroy (it);
    rocksdb_readoptions_destroy (ro);
    return count;
}

int
zr_store_get (zr_store_t *self, const char *topic, int queue,
              int64_t offset, void **record, size_t *size)
{
    assert (self);
    assert (record && size);
    *record = NULL;
    *size = 0;
    int tlen = s_topic_ok (topic);
    if (tlen < 0 || queue < 0 || offset < 0)
        return 1;
    unsigned char key [STORE_MSGKEY_MAX];
    size_t n = s_msg_key (key, topic, tlen, queue, offset);
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf (self->db, self->ro, self->cf [CF_MSG],
                              (const char *) key, n, &vlen, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading %s/%d@%" PRId64 ": %s", self->path,
                    topic, queue, offset, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 1;
    *record = malloc (vlen ? vlen : 1);
    assert (*record);
    memcpy (*record, v, vlen);
    *size = vlen;
    rocksdb_free (v);
    return 0;
}

int
zr_store_offset_get (zr_store_t *self, const char *group, const char *topic,
                     int queue, int64_t *offset)
{
    assert (self);
    assert (offset);
    if (s_topic_ok (topic) < 0 || !group || strlen (group) > STORE_GROUP_MAX
    ||  queue < 0)
        return 1;
    size_t klen = 0;
    unsigned char *key = s_offset_key (group, topic, queue, &klen);
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf (self->db, self->ro, self->cf [CF_OFFSETS],
                              (const char *) key, klen, &vlen, &rerr);
    free (key);
    if (rerr) {
        zsys_error ("store: %s: reading offset of %s on %s/%d: %s",
                    self->path, group, topic, queue, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 1;
    int rc = 1;
    if (vlen == 8) {
        *offset = (int64_t) s_get_be64 ((const unsigned char *) v);
        rc = 0;
    }
    else
        zsys_warning ("store: %s: offset of %s on %s/%d has %zu bytes",
                      self->path, group, topic, queue, vlen);
    rocksdb_free (v);
    return rc;
}

int
zr_store_timer_read (zr_store_t *self, int64_t until, int max,
                     zr_store_timer_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (max <= 0 || until < 0)
        return 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, self->ro, self->cf [CF_TIMER]);
    int count = 0;
    for (rocksdb_iter_seek_to_first (it);
         rocksdb_iter_valid (it) && count < max; rocksdb_iter_next (it)) {
        size_t klen = 0, vlen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        if (klen != ZR_STORE_TIMER_KEY) {
            zsys_warning ("store: %s: skipping a timer key of %zu bytes",
                          self->path, klen);
            continue;
        }
        uint64_t due = s_get_be64 ((const unsigned char *) key);
        if (due > (uint64_t) until)
            break;
        const char *val = rocksdb_iter_value (it, &vlen);
        fn (key, klen, (int64_t) due, val, vlen, arg);
        count++;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading timers: %s", self->path, rerr);
        rocksdb_free (rerr);
        count = -1;
    }
    rocksdb_iter_destroy (it);
    return count;
}

int64_t
zr_store_timer_next (zr_store_t *self)
{
    assert (self);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, self->ro, self->cf [CF_TIMER]);
    int64_t next = -1;
    for (rocksdb_iter_seek_to_first (it); rocksdb_iter_valid (it);
         rocksdb_iter_next (it)) {
        size_t klen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        if (klen != ZR_STORE_TIMER_KEY)
            continue;
        uint64_t due = s_get_be64 ((const unsigned char *) key);
        next = due > INT64_MAX ? INT64_MAX : (int64_t) due;
        break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading timers: %s", self->path, rerr);
        rocksdb_free (rerr);
        next = -1;
    }
    rocksdb_iter_destroy (it);
    return next;
}

int
zr_store_mark_exists (zr_store_t *self, const char *name)
{
    assert (self);
    char key [2 + STORE_MARK_MAX];
    size_t klen = s_mark_key (key, name);
    if (!klen)
        return 0;
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf (self->db, self->ro, self->cf [CF_META], key,
                              klen, &vlen, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading mark %s: %s", self->path, name,
                    rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 0;
    rocksdb_free (v);
    return 1;
}

int
zr_store_half_get (zr_store_t *self, const char *key, void **value,
                   size_t *size)
{
    assert (self);
    assert (value && size);
    *value = NULL;
    *size = 0;
    size_t klen = s_half_key_ok (key);
    if (!klen)
        return 1;
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf (self->db, self->ro, self->cf [CF_HALF], key,
                              klen, &vlen, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading half entry %s: %s", self->path, key,
                    rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 1;
    *value = malloc (vlen ? vlen : 1);
    assert (*value);
    memcpy (*value, v, vlen);
    *size = vlen;
    rocksdb_free (v);
    return 0;
}

int
zr_store_half_foreach (zr_store_t *self, zr_store_half_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, self->ro, self->cf [CF_HALF]);
    int count = 0;
    for (rocksdb_iter_seek_to_first (it); rocksdb_iter_valid (it);
         rocksdb_iter_next (it)) {
        size_t klen = 0, vlen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        if (klen == 0 || klen > STORE_HALF_KEY_MAX)
            continue;
        char name [STORE_HALF_KEY_MAX + 1];
        memcpy (name, key, klen);
        name [klen] = 0;
        const char *val = rocksdb_iter_value (it, &vlen);
        fn (name, val, vlen, arg);
        count++;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading half entries: %s", self->path,
                    rerr);
        rocksdb_free (rerr);
        count = -1;
    }
    rocksdb_iter_destroy (it);
    return count;
}

int
zr_store_log_read (zr_store_t *self, uint64_t after, int max,
                   zr_store_log_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (max <= 0 || after == UINT64_MAX)
        return 0;
    unsigned char start [8];
    s_put_be64 (start, after + 1);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, self->ro, self->cf [CF_LOG]);
    int count = 0;
    for (rocksdb_iter_seek (it, (const char *) start, 8);
         rocksdb_iter_valid (it) && count < max; rocksdb_iter_next (it)) {
        size_t klen = 0, vlen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        if (klen != 8)
            continue;
        const char *val = rocksdb_iter_value (it, &vlen);
        fn (s_get_be64 ((const unsigned char *) key), val, vlen, arg);
        count++;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading log: %s", self->path, rerr);
        rocksdb_free (rerr);
        count = -1;
    }
    rocksdb_iter_destroy (it);
    return count;
}


//  --------------------------------------------------------------------------
//  Retention and lookup (broker/retention.c)

static size_t
s_retention_key (char *key, const char *topic, int tlen)
{
    memcpy (key, "r/", 2);
    memcpy (key + 2, topic, (size_t) tlen);
    return 2 + (size_t) tlen;
}

void
zr_store_batch_topic_retention (zr_store_t *self, const char *topic,
                                int64_t ms, int64_t bytes)
{
    assert (self);
    int tlen = s_topic_ok (topic);
    if (tlen < 0) {
        zsys_warning ("store: retention of topic '%.40s' refused: bad name",
                      topic ? topic : "");
        return;
    }
    char key [2 + STORE_TOPIC_MAX];
    size_t klen = s_retention_key (key, topic, tlen);
    unsigned char val [16];
    s_put_be64 (val, (uint64_t) (ms < 0 ? -1 : ms));
    s_put_be64 (val + 8, (uint64_t) (bytes < 0 ? -1 : bytes));
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_META], key, klen,
                               (const char *) val, 16);
    self->batch_ops++;
    zhashx_purge (self->runs);
    s_op_t *op = s_op_new (self, 'P', topic);
    op->a = ms < 0 ? -1 : ms;
    op->count = bytes < 0 ? -1 : bytes;
}

int
zr_store_topic_retention (zr_store_t *self, const char *topic, int64_t *ms,
                          int64_t *bytes)
{
    assert (self);
    assert (ms && bytes);
    *ms = *bytes = -1;
    int tlen = s_topic_ok (topic);
    if (tlen < 0)
        return 1;
    char key [2 + STORE_TOPIC_MAX];
    size_t klen = s_retention_key (key, topic, tlen);
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf (self->db, self->ro, self->cf [CF_META], key,
                              klen, &vlen, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading retention of %s: %s", self->path,
                    topic, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 1;
    int rc = 1;
    if (vlen == 16) {
        *ms = (int64_t) s_get_be64 ((const unsigned char *) v);
        *bytes = (int64_t) s_get_be64 ((const unsigned char *) v + 8);
        rc = 0;
    }
    else
        zsys_warning ("store: %s: retention of %s has %zu bytes, ignored",
                      self->path, topic, vlen);
    rocksdb_free (v);
    return rc;
}

void
zr_store_batch_delete_range (zr_store_t *self, const char *topic, int queue,
                             int64_t from, int64_t to)
{
    assert (self);
    int tlen = s_topic_ok (topic);
    if (tlen < 0 || queue < 0 || from < 0 || to <= from) {
        zsys_warning ("store: range delete on '%.40s' queue %d [%" PRId64
                      ", %" PRId64 ") refused", topic ? topic : "", queue,
                      from, to);
        return;
    }
    unsigned char start [STORE_MSGKEY_MAX];
    unsigned char end [STORE_MSGKEY_MAX];
    size_t n = s_msg_key (start, topic, tlen, queue, from);
    s_msg_key (end, topic, tlen, queue, to);
    rocksdb_writebatch_delete_range_cf (self->batch, self->cf [CF_MSG],
                                        (const char *) start, n,
                                        (const char *) end, n);
    self->batch_ops++;
    zhashx_purge (self->runs);
    s_op_t *op = s_op_new (self, 'R', topic);
    op->queue = queue;
    op->a = from;
    op->count = to;
}

void
zr_store_batch_index_put (zr_store_t *self, const void *key, size_t size)
{
    assert (self);
    if (!key || size == 0 || size > ZR_STORE_INDEX_KEY_MAX)
        return;
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_INDEX],
                               (const char *) key, size, "", 0);
    self->batch_ops++;
}

int
zr_store_index_scan (zr_store_t *self, const void *prefix, size_t size,
                     int max, zr_store_index_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (!prefix || size == 0 || size > ZR_STORE_INDEX_KEY_MAX || max <= 0)
        return 0;
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, self->ro, self->cf [CF_INDEX]);
    int count = 0;
    for (rocksdb_iter_seek (it, (const char *) prefix, size);
         rocksdb_iter_valid (it) && count < max; rocksdb_iter_next (it)) {
        size_t klen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        if (klen < size || memcmp (key, prefix, size) != 0)
            break;
        count++;
        if (fn (key, klen, arg))
            break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading index: %s", self->path, rerr);
        rocksdb_free (rerr);
        count = -1;
    }
    rocksdb_iter_destroy (it);
    return count;
}

int64_t
zr_store_topic_disk (zr_store_t *self, const char *topic)
{
    assert (self);
    int tlen = s_topic_ok (topic);
    if (tlen < 0)
        return -1;
    unsigned char start [1 + STORE_TOPIC_MAX + 1];
    unsigned char end [1 + STORE_TOPIC_MAX + 1];
    size_t pfx = s_topic_prefix (start, topic, tlen);
    memcpy (end, start, pfx);
    end [pfx] = 0xff;                       //  past every queue < 2^31
    const char *starts [1] = { (const char *) start };
    const char *ends [1] = { (const char *) end };
    size_t start_len [1] = { pfx };
    size_t end_len [1] = { pfx + 1 };
    uint64_t sizes [1] = { 0 };
    char *rerr = NULL;
    rocksdb_approximate_sizes_cf (self->db, self->cf [CF_MSG], 1, starts,
                                  start_len, ends, end_len, sizes, &rerr);
    if (rerr) {
        rocksdb_free (rerr);
        return -1;
    }
    return sizes [0] > INT64_MAX ? INT64_MAX : (int64_t) sizes [0];
}


//  --------------------------------------------------------------------------
//  Disk

int64_t
zr_store_disk_free (zr_store_t *self)
{
    assert (self);
    struct statvfs vfs;
    if (statvfs (self->path, &vfs) != 0)
        return -1;
    return (int64_t) vfs.f_bavail * (int64_t) vfs.f_frsize;
}

int64_t
zr_store_disk_used (zr_store_t *self)
{
    assert (self);
    int64_t total = 0;
    for (int i = 0; i < CF_COUNT; i++) {
        char *v = rocksdb_property_value_cf (self->db, self->cf [i],
                                             "rocksdb.total-sst-files-size");
        if (v) {
            total += strtoll (v, NULL, 10);
            rocksdb_free (v);
        }
    }
    DIR *dir = opendir (self->path);
    if (!dir)
        return -1;
    struct dirent *ent;
    while ((ent = readdir (dir))) {
        size_t len = strlen (ent->d_name);
        if (len < 5 || strcmp (ent->d_name + len - 4, ".log") != 0)
            continue;
        char *file = zsys_sprintf ("%s/%s", self->path, ent->d_name);
        struct stat st;
        if (file && stat (file, &st) == 0 && S_ISREG (st.st_mode))
            total += (int64_t) st.st_size;
        zstr_free (&file);
    }
    closedir (dir);
    return total;
}


//  --------------------------------------------------------------------------
//  Replication: hash chain, repl column family, apply, checkpoint

static void
s_sha1 (const unsigned char *prev, const void *data, size_t size,
        unsigned char *out)
{
    zdigest_t *d = zdigest_new ();
    assert (d);
    zdigest_update (d, prev, ZR_STORE_HASH_LEN);
    if (size)
        zdigest_update (d, (const byte *) data, size);
    memcpy (out, zdigest_data (d), ZR_STORE_HASH_LEN);
    zdigest_destroy (&d);
}

static int
s_repl_load (zr_store_t *self, char **err)
{
    msgpack_sbuffer_init (&self->repl_buf);
    char *rerr = NULL;
    char *v = NULL;
    size_t size = 0;
    int rc = s_meta_get (self, "hash", &v, &size, &rerr);
    if (rc == 0 && size == ZR_STORE_HASH_LEN)
        memcpy (self->hash, v, ZR_STORE_HASH_LEN);
    free (v);
    v = NULL;
    if (rc == 0 && size != ZR_STORE_HASH_LEN) {
        *err = zsys_sprintf ("store: data directory %s is damaged: meta "
                             "hash has %zu bytes; restore it from a "
                             "replica or move it aside", self->path, size);
        return -1;
    }
    if (rc == 0 || rc == 1)
        rc = s_meta_get (self, "role", &v, &size, &rerr);
    if (rc < 0) {
        *err = zsys_sprintf ("store: data directory %s is damaged: %s; "
                             "restore it from a replica or move it aside",
                             self->path, rerr ? rerr : "?");
        zstr_free (&rerr);
        return -1;
    }
    self->role = rc == 0 ? v : NULL;
    return 0;
}

//  Before the store's own keys: takes the batch's payload, computes the
//  next hash and puts the repl entry and meta hash into the batch.
static void
s_repl_capture (zr_store_t *self, uint64_t seq)
{
    size_t size = 0;
    const char *data = rocksdb_writebatch_data (self->batch, &size);
    s_sha1 (self->hash, data, size, self->next_hash);
    msgpack_sbuffer_clear (&self->repl_buf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &self->repl_buf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 4);
    msgpack_pack_uint64 (&pk, self->epoch);
    msgpack_pack_uint64 (&pk, seq);
    msgpack_pack_bin (&pk, ZR_STORE_HASH_LEN);
    msgpack_pack_bin_body (&pk, self->next_hash, ZR_STORE_HASH_LEN);
    if (self->repl_nolog) {
        msgpack_pack_nil (&pk);
        self->payload_size = 0;
    }
    else {
        msgpack_pack_bin (&pk, size);
        self->payload_off = self->repl_buf.size;
        self->payload_size = size;
        msgpack_pack_bin_body (&pk, data, size);
    }
    unsigned char key [8];
    s_put_be64 (key, seq);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_REPL],
                               (const char *) key, 8, self->repl_buf.data,
                               self->repl_buf.size);
    rocksdb_writebatch_put_cf (self->batch, self->cf [CF_META], "hash", 4,
                               (const char *) self->next_hash,
                               ZR_STORE_HASH_LEN);
}

static void
s_repl_committed (zr_store_t *self)
{
    memcpy (self->hash, self->next_hash, ZR_STORE_HASH_LEN);
    if (self->commit_fn)
        self->commit_fn (self->epoch, self->seq, self->hash,
                         self->payload_size
                         ? self->repl_buf.data + self->payload_off : NULL,
                         self->payload_size, self->commit_arg);
}

void
zr_store_set_commit_fn (zr_store_t *self, zr_store_commit_fn *fn,
                        void *arg)
{
    assert (self);
    self->commit_fn = fn;
    self->commit_arg = arg;
}

void
zr_store_set_repl_log (zr_store_t *self, bool keep)
{
    assert (self);
    self->repl_nolog = !keep;
}

const unsigned char *
zr_store_hash (zr_store_t *self)
{
    assert (self);
    return self->hash;
}

const char *
zr_store_role (zr_store_t *self)
{
    assert (self);
    return self->role;
}

int
zr_store_set_role (zr_store_t *self, uint64_t epoch, const char *role,
                   char **err)
{
    assert (self);
    assert (err);
    *err = NULL;
    if (!role || !*role) {
        *err = zsys_sprintf ("store: empty role");
        return -1;
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create ();
    s_batch_put_u64 (wb, self->cf [CF_META], "epoch", epoch);
    rocksdb_writebatch_put_cf (wb, self->cf [CF_META], "role", 4, role,
                               strlen (role));
    char *rerr = NULL;
    rocksdb_write (self->db, self->wo_sync, wb, &rerr);
    rocksdb_writebatch_destroy (wb);
    if (rerr) {
        *err = zsys_sprintf ("store: %s: cannot record role: %s",
                             self->path, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    self->epoch = epoch;
    free (self->role);
    self->role = strdup (role);
    assert (self->role);
    return 0;
}

int
zr_store_apply (zr_store_t *self, uint64_t epoch, uint64_t seq,
                const unsigned char *hash, const void *payload,
                size_t size, bool sync, char **err)
{
    assert (self);
    assert (err);
    *err = NULL;
    if (seq <= self->seq)
        return 1;
    if (seq != self->seq + 1) {
        *err = zsys_sprintf ("gap: batch %" PRIu64 " after %" PRIu64, seq,
                             self->seq);
        return -1;
    }
    //  A WriteBatch starts with a 12-byte header (sequence, count)
    if (!hash || !payload || size < 12) {
        *err = zsys_sprintf ("batch %" PRIu64 " has no valid payload", seq);
        return -1;
    }
    if (self->batch_ops) {
        *err = zsys_sprintf ("batch %" PRIu64 ": the store has an open "
                             "batch (a slave does not write)", seq);
        return -1;
    }
    unsigned char h [ZR_STORE_HASH_LEN];
    s_sha1 (self->hash, payload, size, h);
    if (memcmp (h, hash, ZR_STORE_HASH_LEN) != 0) {
        *err = zsys_sprintf ("batch %" PRIu64 ": hash chain mismatch (the "
                             "master's history differs from ours)", seq);
        return -1;
    }
    rocksdb_writebatch_t *wb =
        rocksdb_writebatch_create_from ((const char *) payload, size);
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 4);
    msgpack_pack_uint64 (&pk, epoch);
    msgpack_pack_uint64 (&pk, seq);
    msgpack_pack_bin (&pk, ZR_STORE_HASH_LEN);
    msgpack_pack_bin_body (&pk, h, ZR_STORE_HASH_LEN);
    if (self->repl_nolog)
        msgpack_pack_nil (&pk);
    else {
        msgpack_pack_bin (&pk, size);
        msgpack_pack_bin_body (&pk, payload, size);
    }
    unsigned char key [8];
    s_put_be64 (key, seq);
    rocksdb_writebatch_put_cf (wb, self->cf [CF_REPL], (const char *) key,
                               8, sbuf.data, sbuf.size);
    msgpack_sbuffer_destroy (&sbuf);
    rocksdb_writebatch_put_cf (wb, self->cf [CF_META], "hash", 4,
                               (const char *) h, ZR_STORE_HASH_LEN);
    s_batch_put_u64 (wb, self->cf [CF_META], "seq", seq);
    if (epoch != self->epoch)
        s_batch_put_u64 (wb, self->cf [CF_META], "epoch", epoch);
    char *rerr = NULL;
    rocksdb_write (self->db, sync ? self->wo_sync : self->wo_async, wb,
                   &rerr);
    rocksdb_writebatch_destroy (wb);
    if (rerr) {
        *err = zsys_sprintf ("batch %" PRIu64 ": write failed: %s", seq,
                             rerr);
        rocksdb_free (rerr);
        return -1;
    }
    self->seq = seq;
    self->epoch = epoch;
    memcpy (self->hash, h, ZR_STORE_HASH_LEN);
    return 0;
}

//  Parses a repl entry. Returns 0, or -1 when it is not one.
static int
s_repl_parse (const char *val, size_t vlen, msgpack_unpacked *u,
              uint64_t *epoch, uint64_t *seq, const unsigned char **hash,
              const void **payload, size_t *size)
{
    if (msgpack_unpack_next (u, val, vlen, NULL) != MSGPACK_UNPACK_SUCCESS)
        return -1;
    msgpack_object o = u->data;
    if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size != 4)
        return -1;
    msgpack_object *a = o.via.array.ptr;
    if (a [0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  a [1].type != MSGPACK_OBJECT_POSITIVE_INTEGER
    ||  a [2].type != MSGPACK_OBJECT_BIN
    ||  a [2].via.bin.size != ZR_STORE_HASH_LEN)
        return -1;
    *epoch = a [0].via.u64;
    *seq = a [1].via.u64;
    *hash = (const unsigned char *) a [2].via.bin.ptr;
    if (a [3].type == MSGPACK_OBJECT_BIN) {
        *payload = a [3].via.bin.ptr;
        *size = a [3].via.bin.size;
    }
    else {
        *payload = NULL;
        *size = 0;
    }
    return 0;
}

int
zr_store_repl_read (zr_store_t *self, uint64_t after, int max_count,
                    size_t max_bytes, zr_store_repl_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    if (max_count <= 0 || after == UINT64_MAX)
        return 0;
    unsigned char start [8];
    s_put_be64 (start, after + 1);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, ro, self->cf [CF_REPL]);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    int count = 0;
    size_t bytes = 0;
    for (rocksdb_iter_seek (it, (const char *) start, 8);
         rocksdb_iter_valid (it) && count < max_count;
         rocksdb_iter_next (it)) {
        size_t klen = 0, vlen = 0;
        rocksdb_iter_key (it, &klen);
        if (klen != 8)
            continue;
        const char *val = rocksdb_iter_value (it, &vlen);
        uint64_t epoch, seq;
        const unsigned char *hash;
        const void *payload;
        size_t size;
        if (s_repl_parse (val, vlen, &u, &epoch, &seq, &hash, &payload,
                          &size)) {
            zsys_warning ("store: %s: skipping a bad repl entry",
                          self->path);
            continue;
        }
        if (count > 0 && bytes + size > max_bytes)
            break;
        fn (epoch, seq, hash, payload, size, arg);
        count++;
        bytes += size;
    }
    msgpack_unpacked_destroy (&u);
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    if (rerr) {
        zsys_error ("store: %s: reading repl log: %s", self->path, rerr);
        rocksdb_free (rerr);
        count = -1;
    }
    rocksdb_iter_destroy (it);
    rocksdb_readoptions_destroy (ro);
    return count;
}

int
zr_store_repl_hash (zr_store_t *self, uint64_t seq, unsigned char *hash)
{
    assert (self);
    assert (hash);
    if (seq == 0) {
        memset (hash, 0, ZR_STORE_HASH_LEN);
        return 0;
    }
    unsigned char key [8];
    s_put_be64 (key, seq);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get_cf (self->db, ro, self->cf [CF_REPL],
                              (const char *) key, 8, &vlen, &rerr);
    rocksdb_readoptions_destroy (ro);
    if (rerr) {
        zsys_error ("store: %s: reading repl entry %" PRIu64 ": %s",
                    self->path, seq, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    if (!v)
        return 1;
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    uint64_t epoch, s;
    const unsigned char *h;
    const void *payload;
    size_t size;
    int rc = s_repl_parse (v, vlen, &u, &epoch, &s, &h, &payload, &size);
    if (rc == 0)
        memcpy (hash, h, ZR_STORE_HASH_LEN);
    msgpack_unpacked_destroy (&u);
    rocksdb_free (v);
    return rc == 0 ? 0 : -1;
}

//  First (or last) sequence held in the repl column family, 0 when empty.
static uint64_t
s_repl_edge (zr_store_t *self, bool last)
{
    assert (self);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, ro, self->cf [CF_REPL]);
    uint64_t seq = 0;
    if (last)
        rocksdb_iter_seek_to_last (it);
    else
        rocksdb_iter_seek_to_first (it);
    for (; rocksdb_iter_valid (it);
         last ? rocksdb_iter_prev (it) : rocksdb_iter_next (it)) {
        size_t klen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        if (klen == 8) {
            seq = s_get_be64 ((const unsigned char *) key);
            break;
        }
    }
    rocksdb_iter_destroy (it);
    rocksdb_readoptions_destroy (ro);
    return seq;
}

uint64_t
zr_store_repl_first (zr_store_t *self)
{
    return s_repl_edge (self, false);
}

uint64_t
zr_store_repl_last (zr_store_t *self)
{
    return s_repl_edge (self, true);
}

int
zr_store_repl_trim (zr_store_t *self, uint64_t keep_from)
{
    assert (self);
    unsigned char lo [8], hi [8];
    s_put_be64 (lo, 0);
    s_put_be64 (hi, keep_from);
    char *rerr = NULL;
    rocksdb_delete_range_cf (self->db, self->wo_async, self->cf [CF_REPL],
                             (const char *) lo, 8, (const char *) hi, 8,
                             &rerr);
    if (rerr) {
        zsys_error ("store: %s: trimming repl log: %s", self->path, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    return 0;
}

char *
zr_store_cf_map (zr_store_t *self)
{
    assert (self);
    char *map = strdup ("");
    for (int i = 0; i < CF_COUNT; i++) {
        char *next = zsys_sprintf ("%s%s%s=%u", map, i ? "," : "",
                                   s_cf_names [i],
                                   rocksdb_column_family_handle_get_id (
                                       self->cf [i]));
        free (map);
        map = next;
    }
    return map;
}

int
zr_store_checkpoint (zr_store_t *self, const char *dir, char **err)
{
    assert (self);
    assert (err);
    *err = NULL;
    char *rerr = NULL;
    rocksdb_checkpoint_t *cp = rocksdb_checkpoint_object_create (self->db,
                                                                 &rerr);
    if (!rerr)
        rocksdb_checkpoint_create (cp, dir, 0, &rerr);
    if (cp)
        rocksdb_checkpoint_object_destroy (cp);
    if (rerr) {
        *err = zsys_sprintf ("store: %s: checkpoint in %s failed: %s",
                             self->path, dir, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    return 0;
}

//  Replaces every key of every column family with the checkpoint's
//  (broker/repl.c full copy), keeping our own "group" and "role" meta
//  keys. Runs in bounded batches; meta "seq" is set to 0 first and the
//  checkpoint's meta keys go last, so a crash half way leaves a store
//  at sequence 0 that asks for a full copy again.
int
zr_store_ingest (zr_store_t *self, const char *dir, char **err)
{
    assert (self);
    assert (err);
    *err = NULL;
    if (self->batch_ops) {
        *err = zsys_sprintf ("store: full copy: the store has an open "
                             "batch");
        return -1;
    }
    rocksdb_options_t *o = rocksdb_options_create ();
    const rocksdb_options_t *cfo [CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cfo [i] = o;
    rocksdb_column_family_handle_t *cf [CF_COUNT];
    char *rerr = NULL;
    rocksdb_t *src = rocksdb_open_for_read_only_column_families (
        o, dir, CF_COUNT, s_cf_names, cfo, cf, 0, &rerr);
    rocksdb_options_destroy (o);
    if (rerr || !src) {
        *err = zsys_sprintf ("store: full copy: cannot open %s: %s", dir,
                             rerr ? rerr : "?");
        rocksdb_free (rerr);
        return -1;
    }
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create ();
    s_batch_put_u64 (wb, self->cf [CF_META], "seq", 0);
    rocksdb_write (self->db, self->wo_sync, wb, &rerr);
    rocksdb_writebatch_clear (wb);
    //  Meta last: order CF_MSG .. CF_REPL, then CF_META
    for (int n = 1; n <= CF_COUNT && !rerr; n++) {
        int i = n % CF_COUNT;
        //  Delete ours
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf (self->db,
                                                             self->ro,
                                                             self->cf [i]);
        for (rocksdb_iter_seek_to_first (it); rocksdb_iter_valid (it)
             && !rerr; rocksdb_iter_next (it)) {
            size_t klen;
            const char *k = rocksdb_iter_key (it, &klen);
            if (i == CF_META && ((klen == 5 && !memcmp (k, "group", 5))
                             ||  (klen == 4 && !memcmp (k, "role", 4))))
                continue;
            rocksdb_writebatch_delete_cf (wb, self->cf [i], k, klen);
            if (rocksdb_writebatch_count (wb) >= 10000) {
                rocksdb_write (self->db, self->wo_async, wb, &rerr);
                rocksdb_writebatch_clear (wb);
            }
        }
        rocksdb_iter_destroy (it);
        //  Copy theirs
        size_t bytes = 0;
        rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
        it = rocksdb_create_iterator_cf (src, ro, cf [i]);
        for (rocksdb_iter_seek_to_first (it); rocksdb_iter_valid (it)
             && !rerr; rocksdb_iter_next (it)) {
            size_t klen, vlen;
            const char *k = rocksdb_iter_key (it, &klen);
            const char *v = rocksdb_iter_value (it, &vlen);
            if (i == CF_META && ((klen == 5 && !memcmp (k, "group", 5))
                             ||  (klen == 4 && !memcmp (k, "role", 4))))
                continue;
            rocksdb_writebatch_put_cf (wb, self->cf [i], k, klen, v, vlen);
            bytes += klen + vlen;
            if (bytes >= 4 * 1024 * 1024
            ||  rocksdb_writebatch_count (wb) >= 10000) {
                rocksdb_write (self->db, self->wo_async, wb, &rerr);
                rocksdb_writebatch_clear (wb);
                bytes = 0;
            }
        }
        rocksdb_iter_destroy (it);
        rocksdb_readoptions_destroy (ro);
        if (!rerr && rocksdb_writebatch_count (wb))
            rocksdb_write (self->db, i == CF_META ? self->wo_sync
                                                  : self->wo_async, wb,
                           &rerr);
        rocksdb_writebatch_clear (wb);
    }
    rocksdb_writebatch_destroy (wb);
    for (int i = 0; i < CF_COUNT; i++)
        rocksdb_column_family_handle_destroy (cf [i]);
    rocksdb_close (src);
    if (rerr) {
        *err = zsys_sprintf ("store: full copy into %s failed: %s",
                             self->path, rerr);
        rocksdb_free (rerr);
        return -1;
    }
    //  Reload what we keep in memory
    uint64_t v = 0;
    self->seq = s_meta_get_u64 (self, "seq", &v, &rerr) == 0 ? v : 0;
    zstr_free (&rerr);
    self->epoch = s_meta_get_u64 (self, "epoch", &v, &rerr) == 0 ? v : 1;
    zstr_free (&rerr);
    char *h = NULL;
    size_t size = 0;
    memset (self->hash, 0, ZR_STORE_HASH_LEN);
    if (s_meta_get (self, "hash", &h, &size, &rerr) == 0
    &&  size == ZR_STORE_HASH_LEN)
        memcpy (self->hash, h, ZR_STORE_HASH_LEN);
    free (h);
    zstr_free (&rerr);
    return 0;
}

//  --------------------------------------------------------------------------
//  Epoch history: marks "zr.epoch/EPOCH/FIRST_SEQ" (20 digits each, so
//  key order is epoch order), committed by zr_repl_promote_store as the
//  first batch of each epoch after the first.

#define EPOCH_MARK "m/zr.epoch/"

//  Calls fn (epoch, first, arg) for each recorded epoch in order until
//  fn returns non-zero. Returns 0, or -1 on a read error.
static int
s_epoch_foreach (zr_store_t *self,
                 int (*fn) (uint64_t, uint64_t, void *), void *arg)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create ();
    const char upper [] = "m/zr.epoch0";        //  '0' follows '/'
    rocksdb_readoptions_set_iterate_upper_bound (ro, upper,
                                                 sizeof upper - 1);
    rocksdb_iterator_t *it =
        rocksdb_create_iterator_cf (self->db, ro, self->cf [CF_META]);
    size_t plen = strlen (EPOCH_MARK);
    for (rocksdb_iter_seek (it, EPOCH_MARK, plen); rocksdb_iter_valid (it);
         rocksdb_iter_next (it)) {
        size_t klen = 0;
        const char *key = rocksdb_iter_key (it, &klen);
        char text [64];
        if (klen <= plen || klen - plen >= sizeof text)
            continue;
        memcpy (text, key + plen, klen - plen);
        text [klen - plen] = 0;
        unsigned long long e, first;
        char tail;
        if (sscanf (text, "%20llu/%20llu%c", &e, &first, &tail) != 2)
            continue;
        if (fn ((uint64_t) e, (uint64_t) first, arg))
            break;
    }
    char *rerr = NULL;
    rocksdb_iter_get_error (it, &rerr);
    int rc = 0;
    if (rerr) {
        zsys_error ("store: %s: reading the epoch history: %s", self->path,
                    rerr);
        rocksdb_free (rerr);
        rc = -1;
    }
    rocksdb_iter_destroy (it);
    rocksdb_readoptions_destroy (ro);
    return rc;
}

typedef struct {
    uint64_t epoch;
    uint64_t seq;
    uint64_t found;
    bool have;
} epoch_find_t;

static int
s_epoch_after (uint64_t epoch, uint64_t first, void *arg)
{
    epoch_find_t *f = (epoch_find_t *) arg;
    if (epoch > f->epoch) {
        f->found = first;
        f->have = true;
        return 1;
    }
    return 0;
}

int
zr_store_epoch_end (zr_store_t *self, uint64_t epoch, uint64_t *end)
{
    assert (self);
    assert (end);
    epoch_find_t f = { epoch, 0, 0, false };
    if (s_epoch_foreach (self, s_epoch_after, &f))
        return -1;
    if (!f.have)
        return 1;
    *end = f.found ? f.found - 1 : 0;
    return 0;
}

static int
s_epoch_at (uint64_t epoch, uint64_t first, void *arg)
{
    epoch_find_t *f = (epoch_find_t *) arg;
    if (first > f->seq)
        return 1;
    f->found = epoch;
    return 0;
}

uint64_t
zr_store_epoch_of (zr_store_t *self, uint64_t seq)
{
    assert (self);
    epoch_find_t f = { 0, seq, 1, false };
    s_epoch_foreach (self, s_epoch_at, &f);
    return f.found;
}
