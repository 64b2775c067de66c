/*  tests/unit/test_store.c - the RocksDB store: appends and reads, queue
    bounds, offsets, topics, group commit sequence and log, broker group,
    open failures (locked, damaged, newer format, not a directory) and
    recovery after a crash without close.

    This test includes rocksdb/c.h for one thing only: writing a newer
    format number into a data directory, which the store API cannot do.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"

#include <msgpack.h>
#include <rocksdb/c.h>
#include <poll.h>
#include <sys/wait.h>

#include "store/store.h"

typedef struct {
    char *dir;
    zr_store_t *store;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("store");
    char *err = NULL;
    f->store = zr_store_open (f->dir, NULL, &err);
    if (!f->store)
        fail_msg ("open: %s", err ? err : "?");
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_destroy (&f->store);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    free (f);
    return 0;
}

static zr_store_t *
s_open (const char *dir, const char *group)
{
    zr_store_opts_t opts = { .group = group, .write_buffer_size = 0 };
    char *err = NULL;
    zr_store_t *store = zr_store_open (dir, &opts, &err);
    if (!store)
        fail_msg ("open %s: %s", dir, err ? err : "?");
    return store;
}

//  Opens dir expecting failure; returns the error (caller frees).
static char *
s_open_fails (const char *dir, const char *group)
{
    zr_store_opts_t opts = { .group = group, .write_buffer_size = 0 };
    char *err = NULL;
    zr_store_t *store = zr_store_open (dir, &opts, &err);
    if (store) {
        zr_store_destroy (&store);
        fail_msg ("open %s succeeded, expected an error", dir);
    }
    assert_non_null (err);
    return err;
}

static void
s_commit (zr_store_t *store, bool sync)
{
    char *err = NULL;
    if (zr_store_commit (store, sync, &err) != 0)
        fail_msg ("commit: %s", err ? err : "?");
    assert_null (err);
}

//  Appends count records "topic/queue/offset" padded to 10 bytes
static void
s_append (zr_store_t *store, const char *topic, int queue, int64_t first,
          int count)
{
    for (int i = 0; i < count; i++) {
        char rec [11];
        snprintf (rec, sizeof rec, "r%d-%-7" PRId64, queue, first + i);
        zr_store_batch_append (store, topic, queue, first + i, rec, 10);
    }
}

//  Collects what zr_store_read visits
typedef struct {
    int count;
    int64_t offsets [64];
    size_t bytes;
    bool bad_record;
    int queue;
} reads_t;

static void
s_on_record (int64_t offset, const void *record, size_t size, void *arg)
{
    reads_t *r = (reads_t *) arg;
    char want [11];
    snprintf (want, sizeof want, "r%d-%-7" PRId64, r->queue, offset);
    if (size != 10 || memcmp (record, want, 10) != 0)
        r->bad_record = true;
    if (r->count < 64)
        r->offsets [r->count] = offset;
    r->count++;
    r->bytes += size;
}

static int
s_read (zr_store_t *store, const char *topic, int queue, int64_t offset,
        int max_count, size_t max_bytes, reads_t *r)
{
    memset (r, 0, sizeof *r);
    r->queue = queue;
    int rc = zr_store_read (store, topic, queue, offset, max_count,
                            max_bytes, s_on_record, r);
    assert_false (r->bad_record);
    if (rc >= 0)
        assert_int_equal (rc, r->count);
    return rc;
}

static void
s_assert_bounds (zr_store_t *store, const char *topic, int queue,
                 int64_t min, int64_t max)
{
    int64_t lo = -1, hi = -1;
    assert_int_equal (zr_store_queue_bounds (store, topic, queue, &lo, &hi),
                      0);
    assert_int_equal (lo, min);
    assert_int_equal (hi, max);
}


//  --------------------------------------------------------------------------
//  Crash recovery. Runs first: it forks, and the parent must not have
//  RocksDB threads yet (a fork copies none of them and maybe their locks).

static void
s_count_log (uint64_t seq, const void *entry, size_t size, void *arg)
{
    int *entries = (int *) arg;
    if (seq == (uint64_t) *entries + 1 && size > 0)
        (*entries)++;
}

#define CRASH_BATCHES 40
#define CRASH_PER_BATCH 7

static void
test_store_crash_recovery (void **state)
{
    char *dir = zrt_tempdir ("store-crash");
    int up [2], down [2];               //  child -> parent, parent -> child
    assert_int_equal (pipe (up), 0);
    assert_int_equal (pipe (down), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        close (up [0]);
        close (down [1]);
        char *err = NULL;
        zr_store_t *store = zr_store_open (dir, NULL, &err);
        if (!store)
            _exit (2);
        for (int b = 0; b < CRASH_BATCHES; b++) {
            s_append (store, "crash", b % 2, (b / 2) * CRASH_PER_BATCH,
                      CRASH_PER_BATCH);
            if (zr_store_commit (store, false, &err) != 0)
                _exit (3);
        }
        //  Tell the parent we hold the store, wait for it to try opening
        //  the same directory, then stop without closing: like a crash
        char c = 'r';
        if (write (up [1], &c, 1) != 1 || read (down [0], &c, 1) != 1)
            _exit (4);
        _exit (0);
    }
    close (up [1]);
    close (down [0]);
    //  The child's commits are done; the directory is locked by it
    struct pollfd pfd = { .fd = up [0], .events = POLLIN };
    assert_int_equal (poll (&pfd, 1, 30000), 1);
    char c = 0;
    assert_int_equal (read (up [0], &c, 1), 1);
    char *err = s_open_fails (dir, NULL);
    assert_non_null (strstr (err, dir));
    assert_non_null (strstr (err, "in use by another broker"));
    zstr_free (&err);
    assert_int_equal (write (down [1], &c, 1), 1);
    close (up [0]);
    close (down [1]);

    int status = 0;
    assert_int_equal (waitpid (pid, &status, 0), pid);
    assert_true (WIFEXITED (status));
    assert_int_equal (WEXITSTATUS (status), 0);

    zr_store_t *store = s_open (dir, NULL);
    assert_int_equal (zr_store_seq (store), CRASH_BATCHES);
    int64_t per_queue = (CRASH_BATCHES / 2) * CRASH_PER_BATCH;
    s_assert_bounds (store, "crash", 0, 0, per_queue);
    s_assert_bounds (store, "crash", 1, 0, per_queue);
    for (int q = 0; q < 2; q++) {
        int64_t offset = 0;
        while (offset < per_queue) {
            reads_t r;
            int rc = s_read (store, "crash", q, offset, 64, 1 << 20, &r);
            assert_true (rc > 0);
            for (int i = 0; i < rc; i++)
                assert_int_equal (r.offsets [i], offset + i);
            offset += rc;
        }
        assert_int_equal (offset, per_queue);
    }
    //  The log survived too, one entry per batch
    int entries = 0;
    assert_int_equal (zr_store_log_read (store, 0, 1000, s_count_log,
                                         &entries), CRASH_BATCHES);
    assert_int_equal (entries, CRASH_BATCHES);
    zr_store_destroy (&store);
    zrt_rmrf (dir);
    zstr_free (&dir);
}


//  --------------------------------------------------------------------------

static void
test_store_new (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (zr_store_seq (f->store), 0);
    assert_int_equal (zr_store_epoch (f->store), 1);
    assert_string_equal (zr_store_path (f->store), f->dir);
    assert_int_equal (zr_store_batch_ops (f->store), 0);
    //  Empty commit: nothing, no sequence
    s_commit (f->store, true);
    assert_int_equal (zr_store_seq (f->store), 0);
    assert_true (zr_store_disk_free (f->store) > 0);
    assert_true (zr_store_disk_used (f->store) >= 0);
}

static void
test_store_append_read (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    zr_store_batch_topic_put (st, "orders", 4);
    s_append (st, "orders", 0, 0, 10);
    s_append (st, "orders", 1, 0, 5);
    s_append (st, "orders", 3, 100, 5);
    assert_int_equal (zr_store_batch_ops (st), 21);
    assert_int_equal (zr_store_batch_bytes (st), 200);
    s_commit (st, true);
    assert_int_equal (zr_store_batch_ops (st), 0);
    assert_int_equal (zr_store_batch_bytes (st), 0);

    reads_t r;
    //  max_count
    assert_int_equal (s_read (st, "orders", 0, 3, 4, 1 << 20, &r), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal (r.offsets [i], 3 + i);
    //  max_bytes: 25 bytes hold two 10-byte records
    assert_int_equal (s_read (st, "orders", 0, 0, 100, 25, &r), 2);
    assert_int_equal (r.offsets [1], 1);
    //  at least one record even when it alone is larger
    assert_int_equal (s_read (st, "orders", 0, 7, 100, 1, &r), 1);
    assert_int_equal (r.offsets [0], 7);
    //  the end of a queue stops the read, other queues are not visited
    assert_int_equal (s_read (st, "orders", 0, 8, 100, 1 << 20, &r), 2);
    assert_int_equal (s_read (st, "orders", 0, 10, 100, 1 << 20, &r), 0);
    assert_int_equal (s_read (st, "orders", 1, 0, 100, 1 << 20, &r), 5);
    assert_int_equal (s_read (st, "orders", 2, 0, 100, 1 << 20, &r), 0);
    //  reading below the first offset starts at the first
    assert_int_equal (s_read (st, "orders", 3, 0, 100, 1 << 20, &r), 5);
    assert_int_equal (r.offsets [0], 100);
    //  unknown topic
    assert_int_equal (s_read (st, "nope", 0, 0, 100, 1 << 20, &r), 0);

    s_assert_bounds (st, "orders", 0, 0, 10);
    s_assert_bounds (st, "orders", 1, 0, 5);
    s_assert_bounds (st, "orders", 2, 0, 0);
    s_assert_bounds (st, "orders", 3, 100, 105);
    s_assert_bounds (st, "nope", 0, 0, 0);

    //  Point lookup
    void *rec = NULL;
    size_t size = 0;
    assert_int_equal (zr_store_get (st, "orders", 1, 4, &rec, &size), 0);
    assert_int_equal (size, 10);
    assert_memory_equal (rec, "r1-4      ", 10);
    free (rec);
    assert_int_equal (zr_store_get (st, "orders", 1, 5, &rec, &size), 1);
    assert_null (rec);

    //  A queue whose topic is a prefix of another's is not mixed up
    s_append (st, "order", 0, 0, 3);
    s_commit (st, false);
    s_assert_bounds (st, "order", 0, 0, 3);
    s_assert_bounds (st, "orders", 0, 0, 10);
}

static void
test_store_bad_input (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    char longname [200];
    memset (longname, 'x', sizeof longname - 1);
    longname [sizeof longname - 1] = 0;
    zr_store_batch_append (st, longname, 0, 0, "abc", 3);
    zr_store_batch_append (st, "", 0, 0, "abc", 3);
    zr_store_batch_append (st, "ok", -1, 0, "abc", 3);
    zr_store_batch_append (st, "ok", 0, -5, "abc", 3);
    zr_store_batch_offset (st, "g", longname, 0, 1);
    zr_store_batch_topic_put (st, longname, 4);
    zr_store_batch_topic_delete (st, longname);
    assert_int_equal (zr_store_batch_ops (st), 0);
    s_commit (st, false);
    assert_int_equal (zr_store_seq (st), 0);
    reads_t r;
    assert_int_equal (s_read (st, longname, 0, 0, 10, 100, &r), -1);
    int64_t lo, hi;
    assert_int_equal (zr_store_queue_bounds (st, longname, 0, &lo, &hi), -1);
    //  A 127-byte name is the longest allowed
    longname [127] = 0;
    s_append (st, longname, 2, 0, 2);
    s_commit (st, false);
    s_assert_bounds (st, longname, 2, 0, 2);
}

static void
test_store_offsets (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    int64_t off = -1;
    assert_int_equal (zr_store_offset_get (st, "g1", "t", 0, &off), 1);
    zr_store_batch_offset (st, "g1", "t", 0, 42);
    zr_store_batch_offset (st, "g1", "t", 1, 7);
    zr_store_batch_offset (st, "g2", "t", 0, 3);
    s_commit (st, true);
    assert_int_equal (zr_store_offset_get (st, "g1", "t", 0, &off), 0);
    assert_int_equal (off, 42);
    assert_int_equal (zr_store_offset_get (st, "g1", "t", 1, &off), 0);
    assert_int_equal (off, 7);
    assert_int_equal (zr_store_offset_get (st, "g2", "t", 0, &off), 0);
    assert_int_equal (off, 3);
    assert_int_equal (zr_store_offset_get (st, "g2", "t", 1, &off), 1);
    zr_store_batch_offset (st, "g1", "t", 0, 50);
    s_commit (st, false);
    assert_int_equal (zr_store_offset_get (st, "g1", "t", 0, &off), 0);
    assert_int_equal (off, 50);
    //  Aborted batch leaves nothing
    zr_store_batch_offset (st, "g1", "t", 0, 99);
    zr_store_abort (st);
    assert_int_equal (zr_store_batch_ops (st), 0);
    s_commit (st, false);
    assert_int_equal (zr_store_seq (st), 2);
    assert_int_equal (zr_store_offset_get (st, "g1", "t", 0, &off), 0);
    assert_int_equal (off, 50);
}

typedef struct {
    int count;
    char names [8][32];
    int queues [8];
} topics_t;

static void
s_on_topic (const char *topic, int queues, void *arg)
{
    topics_t *t = (topics_t *) arg;
    if (t->count < 8) {
        snprintf (t->names [t->count], 32, "%s", topic);
        t->queues [t->count] = queues;
    }
    t->count++;
}

static void
test_store_topics (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    zr_store_batch_topic_put (st, "bb", 8);
    zr_store_batch_topic_put (st, "ab", 4);
    zr_store_batch_topic_put (st, "a", 2);
    s_append (st, "ab", 0, 0, 5);
    s_append (st, "ab", 3, 0, 5);
    s_append (st, "bb", 0, 0, 5);
    s_append (st, "a", 0, 0, 5);
    zr_store_batch_offset (st, "g", "ab", 0, 2);
    zr_store_batch_offset (st, "h", "ab", 3, 4);
    zr_store_batch_offset (st, "g", "bb", 0, 1);
    s_commit (st, false);

    topics_t t = { 0 };
    zr_store_topic_foreach (st, s_on_topic, &t);
    assert_int_equal (t.count, 3);
    assert_string_equal (t.names [0], "a");
    assert_string_equal (t.names [1], "ab");
    assert_string_equal (t.names [2], "bb");
    assert_int_equal (t.queues [0], 2);
    assert_int_equal (t.queues [1], 4);
    assert_int_equal (t.queues [2], 8);

    //  Update and delete; an offset committed in the same batch as the
    //  delete goes too
    zr_store_batch_topic_put (st, "bb", 16);
    zr_store_batch_offset (st, "k", "ab", 1, 9);
    zr_store_batch_topic_delete (st, "ab");
    s_commit (st, false);

    memset (&t, 0, sizeof t);
    zr_store_topic_foreach (st, s_on_topic, &t);
    assert_int_equal (t.count, 2);
    assert_string_equal (t.names [0], "a");
    assert_string_equal (t.names [1], "bb");
    assert_int_equal (t.queues [1], 16);

    s_assert_bounds (st, "ab", 0, 0, 0);
    s_assert_bounds (st, "ab", 3, 0, 0);
    s_assert_bounds (st, "bb", 0, 0, 5);
    s_assert_bounds (st, "a", 0, 0, 5);
    int64_t off = -1;
    assert_int_equal (zr_store_offset_get (st, "g", "ab", 0, &off), 1);
    assert_int_equal (zr_store_offset_get (st, "h", "ab", 3, &off), 1);
    assert_int_equal (zr_store_offset_get (st, "k", "ab", 1, &off), 1);
    assert_int_equal (zr_store_offset_get (st, "g", "bb", 0, &off), 0);
    assert_int_equal (off, 1);

    //  Re-created, the topic starts empty
    zr_store_batch_topic_put (st, "ab", 4);
    s_append (st, "ab", 0, 0, 1);
    s_commit (st, false);
    s_assert_bounds (st, "ab", 0, 0, 1);

    //  Topics survive a reopen
    zr_store_destroy (&f->store);
    f->store = s_open (f->dir, NULL);
    memset (&t, 0, sizeof t);
    zr_store_topic_foreach (f->store, s_on_topic, &t);
    assert_int_equal (t.count, 3);
    assert_string_equal (t.names [1], "ab");
}

static void
test_store_seq_persists (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    for (int i = 1; i <= 3; i++) {
        s_append (f->store, "s", 0, i - 1, 1);
        s_commit (f->store, i == 2);
        assert_int_equal (zr_store_seq (f->store), i);
    }
    const char *group = zr_store_group (f->store);
    char *saved = strdup (group);
    zr_store_destroy (&f->store);
    f->store = s_open (f->dir, NULL);
    assert_int_equal (zr_store_seq (f->store), 3);
    assert_int_equal (zr_store_epoch (f->store), 1);
    assert_string_equal (zr_store_group (f->store), saved);
    free (saved);
    s_assert_bounds (f->store, "s", 0, 0, 3);
    s_append (f->store, "s", 0, 3, 1);
    s_commit (f->store, false);
    assert_int_equal (zr_store_seq (f->store), 4);
}

//  Log entries, decoded
typedef struct {
    int count;
    uint64_t seqs [16];
    msgpack_sbuffer *copies [16];
} log_t;

static void
s_on_log (uint64_t seq, const void *entry, size_t size, void *arg)
{
    log_t *l = (log_t *) arg;
    if (l->count < 16) {
        l->seqs [l->count] = seq;
        l->copies [l->count] = msgpack_sbuffer_new ();
        msgpack_sbuffer_write (l->copies [l->count], (const char *) entry,
                               size);
    }
    l->count++;
}

static void
s_log_free (log_t *l)
{
    for (int i = 0; i < l->count && i < 16; i++)
        msgpack_sbuffer_free (l->copies [i]);
    memset (l, 0, sizeof *l);
}

static bool
s_str_is (msgpack_object o, const char *s)
{
    return o.type == MSGPACK_OBJECT_STR && o.via.str.size == strlen (s)
        && memcmp (o.via.str.ptr, s, o.via.str.size) == 0;
}

static int64_t
s_int (msgpack_object o)
{
    if (o.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t) o.via.u64;
    if (o.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o.via.i64;
    fail_msg ("not an integer (type %d)", o.type);
    return 0;
}

static void
test_store_log (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    //  Batch 1: interleaved appends to two queues merge into one op each,
    //  a gap starts a new op
    zr_store_batch_topic_put (st, "lg", 2);
    for (int i = 0; i < 4; i++) {
        s_append (st, "lg", 0, i, 1);
        s_append (st, "lg", 1, 10 + i, 1);
    }
    s_append (st, "lg", 0, 20, 2);
    s_commit (st, false);
    //  Batch 2: an offset and a delete
    zr_store_batch_offset (st, "grp", "lg", 1, 12);
    zr_store_batch_topic_delete (st, "lg");
    s_commit (st, true);

    log_t l = { 0 };
    assert_int_equal (zr_store_log_read (st, 0, 100, s_on_log, &l), 2);
    assert_int_equal (l.seqs [0], 1);
    assert_int_equal (l.seqs [1], 2);

    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    assert_int_equal (msgpack_unpack_next (&u, l.copies [0]->data,
                                           l.copies [0]->size, NULL),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_object e = u.data;
    assert_int_equal (e.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (e.via.array.size, 3);
    assert_int_equal (s_int (e.via.array.ptr [0]), 1);     //  epoch
    assert_int_equal (s_int (e.via.array.ptr [1]), 1);     //  seq
    msgpack_object ops = e.via.array.ptr [2];
    assert_int_equal (ops.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal (ops.via.array.size, 4);
    msgpack_object *op = ops.via.array.ptr [0].via.array.ptr;
    assert_true (s_str_is (op [0], "T"));
    assert_true (s_str_is (op [1], "lg"));
    assert_int_equal (s_int (op [2]), 2);
    op = ops.via.array.ptr [1].via.array.ptr;
    assert_int_equal (ops.via.array.ptr [1].via.array.size, 5);
    assert_true (s_str_is (op [0], "A"));
    assert_true (s_str_is (op [1], "lg"));
    assert_int_equal (s_int (op [2]), 0);
    assert_int_equal (s_int (op [3]), 0);
    assert_int_equal (s_int (op [4]), 4);
    op = ops.via.array.ptr [2].via.array.ptr;
    assert_true (s_str_is (op [0], "A"));
    assert_int_equal (s_int (op [2]), 1);
    assert_int_equal (s_int (op [3]), 10);
    assert_int_equal (s_int (op [4]), 4);
    op = ops.via.array.ptr [3].via.array.ptr;
    assert_true (s_str_is (op [0], "A"));
    assert_int_equal (s_int (op [2]), 0);
    assert_int_equal (s_int (op [3]), 20);
    assert_int_equal (s_int (op [4]), 2);

    assert_int_equal (msgpack_unpack_next (&u, l.copies [1]->data,
                                           l.copies [1]->size, NULL),
                      MSGPACK_UNPACK_SUCCESS);
    e = u.data;
    assert_int_equal (s_int (e.via.array.ptr [1]), 2);
    ops = e.via.array.ptr [2];
    assert_int_equal (ops.via.array.size, 2);
    op = ops.via.array.ptr [0].via.array.ptr;
    assert_true (s_str_is (op [0], "O"));
    assert_true (s_str_is (op [1], "grp"));
    assert_true (s_str_is (op [2], "lg"));
    assert_int_equal (s_int (op [3]), 1);
    assert_int_equal (s_int (op [4]), 12);
    op = ops.via.array.ptr [1].via.array.ptr;
    assert_int_equal (ops.via.array.ptr [1].via.array.size, 2);
    assert_true (s_str_is (op [0], "D"));
    assert_true (s_str_is (op [1], "lg"));
    msgpack_unpacked_destroy (&u);
    s_log_free (&l);

    //  after and max
    assert_int_equal (zr_store_log_read (st, 1, 100, s_on_log, &l), 1);
    assert_int_equal (l.seqs [0], 2);
    s_log_free (&l);
    assert_int_equal (zr_store_log_read (st, 0, 1, s_on_log, &l), 1);
    assert_int_equal (l.seqs [0], 1);
    s_log_free (&l);
    assert_int_equal (zr_store_log_read (st, 2, 100, s_on_log, &l), 0);
    s_log_free (&l);
}

static void
test_store_group (void **state)
{
    char *dir = zrt_tempdir ("store-group");
    zr_store_t *st = s_open (dir, NULL);
    const char *group = zr_store_group (st);
    assert_int_equal (strlen (group), 15);
    assert_memory_equal (group, "broker-", 7);
    for (int i = 7; i < 15; i++)
        assert_non_null (strchr ("0123456789abcdef", group [i]));
    char *saved = strdup (group);
    zr_store_destroy (&st);

    st = s_open (dir, NULL);
    assert_string_equal (zr_store_group (st), saved);
    zr_store_destroy (&st);
    st = s_open (dir, saved);
    assert_string_equal (zr_store_group (st), saved);
    zr_store_destroy (&st);

    char *err = s_open_fails (dir, "other");
    assert_non_null (strstr (err, dir));
    assert_non_null (strstr (err, saved));
    assert_non_null (strstr (err, "other"));
    zstr_free (&err);
    free (saved);
    zrt_rmrf (dir);

    //  A name given on first open is recorded
    st = s_open (dir, "east-1");
    assert_string_equal (zr_store_group (st), "east-1");
    zr_store_destroy (&st);
    st = s_open (dir, NULL);
    assert_string_equal (zr_store_group (st), "east-1");
    zr_store_destroy (&st);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

static void
test_store_locked (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char *err = s_open_fails (f->dir, NULL);
    assert_non_null (strstr (err, f->dir));
    assert_non_null (strstr (err, "in use by another broker"));
    zstr_free (&err);
    //  The first store still works
    s_append (f->store, "x", 0, 0, 1);
    s_commit (f->store, false);
    assert_int_equal (zr_store_seq (f->store), 1);
}

static void
test_store_damaged (void **state)
{
    char *dir = zrt_tempdir ("store-damaged");
    zr_store_t *st = s_open (dir, NULL);
    s_append (st, "x", 0, 0, 3);
    s_commit (st, true);
    zr_store_destroy (&st);

    char *current = zsys_sprintf ("%s/CURRENT", dir);
    FILE *file = fopen (current, "w");
    assert_non_null (file);
    fputs ("\x01garbage", file);
    fclose (file);
    char *err = s_open_fails (dir, NULL);
    assert_non_null (strstr (err, dir));
    assert_non_null (strstr (err, "is damaged"));
    assert_non_null (strstr (err, "move it aside"));
    zstr_free (&err);
    zstr_free (&current);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

static void
test_store_newer_format (void **state)
{
    char *dir = zrt_tempdir ("store-format");
    zr_store_t *st = s_open (dir, NULL);
    zr_store_destroy (&st);

    //  Raw RocksDB: set format to ZR_STORE_FORMAT + 1. Open every column
    //  family the store made, whatever the current list is.
    rocksdb_options_t *opts = rocksdb_options_create ();
    char *rerr = NULL;
    size_t count = 0;
    char **names = rocksdb_list_column_families (opts, dir, &count, &rerr);
    if (rerr)
        fail_msg ("list column families: %s", rerr);
    assert_true (count >= 5);
    const rocksdb_options_t **cfopts = (const rocksdb_options_t **)
        calloc (count, sizeof (rocksdb_options_t *));
    rocksdb_column_family_handle_t **cfs =
        (rocksdb_column_family_handle_t **)
            calloc (count, sizeof (rocksdb_column_family_handle_t *));
    for (size_t i = 0; i < count; i++)
        cfopts [i] = opts;
    rocksdb_t *db = rocksdb_open_column_families (
        opts, dir, (int) count, (const char *const *) names, cfopts, cfs,
        &rerr);
    if (rerr)
        fail_msg ("raw open: %s", rerr);
    size_t dflt = count;
    for (size_t i = 0; i < count; i++)
        if (streq (names [i], "default"))
            dflt = i;
    assert_true (dflt < count);
    unsigned char val [8] = { 0, 0, 0, 0, 0, 0, 0, ZR_STORE_FORMAT + 1 };
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create ();
    rocksdb_put_cf (db, wo, cfs [dflt], "format", 6, (const char *) val, 8,
                    &rerr);
    assert_null (rerr);
    rocksdb_writeoptions_destroy (wo);
    for (size_t i = 0; i < count; i++)
        rocksdb_column_family_handle_destroy (cfs [i]);
    rocksdb_list_column_families_destroy (names, count);
    free (cfs);
    free (cfopts);
    rocksdb_close (db);
    rocksdb_options_destroy (opts);

    char *err = s_open_fails (dir, NULL);
    char *found = zsys_sprintf ("format %d", ZR_STORE_FORMAT + 1);
    assert_non_null (strstr (err, dir));
    assert_non_null (strstr (err, found));
    assert_non_null (strstr (err, "upgrade zrocket"));
    zstr_free (&found);
    zstr_free (&err);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

static void
test_store_bad_paths (void **state)
{
    char *dir = zrt_tempdir ("store-paths");
    char *file = zsys_sprintf ("%s/plain", dir);
    FILE *fp = fopen (file, "w");
    assert_non_null (fp);
    fclose (fp);
    char *err = s_open_fails (file, NULL);
    assert_non_null (strstr (err, file));
    assert_non_null (strstr (err, "not a directory"));
    zstr_free (&err);

    char *under = zsys_sprintf ("%s/plain/sub/data", dir);
    err = s_open_fails (under, NULL);
    assert_non_null (strstr (err, under));
    assert_non_null (strstr (err, "cannot create data directory"));
    assert_non_null (strstr (err, "choose another --data"));
    zstr_free (&err);

    //  Missing parents are created
    char *deep = zsys_sprintf ("%s/a/b/c", dir);
    zr_store_t *st = s_open (deep, NULL);
    assert_non_null (st);
    zr_store_destroy (&st);

    zstr_free (&deep);
    zstr_free (&under);
    zstr_free (&file);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

//  --------------------------------------------------------------------
//  Timers and marks

typedef struct {
    int count;
    int64_t due [16];
    char value [16][16];
    unsigned char key [16][ZR_STORE_TIMER_KEY];
} timers_t;

static void
s_collect_timer (const void *key, size_t key_size, int64_t due,
                 const void *value, size_t size, void *arg)
{
    timers_t *t = (timers_t *) arg;
    assert_int_equal (key_size, ZR_STORE_TIMER_KEY);
    assert_true (t->count < 16);
    assert_true (size < 16);
    t->due [t->count] = due;
    memcpy (t->value [t->count], value, size);
    t->value [t->count][size] = 0;
    memcpy (t->key [t->count], key, key_size);
    t->count++;
}

//  Counts log ops of a type letter in entries.
typedef struct {
    int puts, deletes, marks;
} logops_t;

static void
s_count_ops (uint64_t seq, const void *entry, size_t size, void *arg)
{
    logops_t *ops = (logops_t *) arg;
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    assert_int_equal (msgpack_unpack_next (&u, entry, size, NULL),
                      MSGPACK_UNPACK_SUCCESS);
    msgpack_object list = u.data.via.array.ptr [2];
    for (uint32_t i = 0; i < list.via.array.size; i++) {
        msgpack_object op = list.via.array.ptr [i];
        msgpack_object type = op.via.array.ptr [0];
        assert_int_equal (type.via.str.size, 1);
        char c = type.via.str.ptr [0];
        if (c == 'X' || c == 'x') {
            assert_int_equal (op.via.array.size, 2);
            assert_int_equal (op.via.array.ptr [1].type, MSGPACK_OBJECT_BIN);
            assert_int_equal (op.via.array.ptr [1].via.bin.size,
                              ZR_STORE_TIMER_KEY);
        }
        ops->puts += c == 'X';
        ops->deletes += c == 'x';
        ops->marks += c == 'M';
    }
    msgpack_unpacked_destroy (&u);
}

static void
s_count_topic (const char *topic, int queues, void *arg)
{
    (*(int *) arg)++;
}

static void
test_store_timers (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    assert_int_equal (zr_store_timer_next (st), -1);
    unsigned char k1 [ZR_STORE_TIMER_KEY];
    //  Put out of due order; two at the same due keep put order
    assert_int_equal (zr_store_batch_timer_put (st, 3000, "c", 1, NULL), 0);
    assert_int_equal (zr_store_batch_timer_put (st, 1000, "a", 1, k1), 0);
    assert_int_equal (zr_store_batch_timer_put (st, 2000, "b1", 2, NULL), 0);
    assert_int_equal (zr_store_batch_timer_put (st, 2000, "b2", 2, NULL), 0);
    assert_int_equal (zr_store_batch_timer_put (st, -1, "z", 1, NULL), -1);
    //  Not visible before the commit
    assert_int_equal (zr_store_timer_next (st), -1);
    uint64_t seq = zr_store_seq (st);
    s_commit (st, false);
    assert_true (zr_store_seq (st) == seq + 1);
    assert_int_equal (zr_store_timer_next (st), 1000);

    timers_t t;
    memset (&t, 0, sizeof t);
    assert_int_equal (zr_store_timer_read (st, 2000, 10, s_collect_timer,
                                           &t), 3);
    assert_int_equal (t.due [0], 1000);
    assert_string_equal (t.value [0], "a");
    assert_memory_equal (t.key [0], k1, ZR_STORE_TIMER_KEY);
    assert_string_equal (t.value [1], "b1");
    assert_string_equal (t.value [2], "b2");
    //  max bounds the count
    memset (&t, 0, sizeof t);
    assert_int_equal (zr_store_timer_read (st, 5000, 2, s_collect_timer,
                                           &t), 2);
    //  Delete the first two in one batch, with a message (atomic)
    zr_store_batch_topic_put (st, "t", 1);
    zr_store_batch_append (st, "t", 0, 0, "m", 1);
    assert_int_equal (zr_store_batch_timer_delete (st, t.key [0],
                                                   ZR_STORE_TIMER_KEY), 0);
    assert_int_equal (zr_store_batch_timer_delete (st, t.key [1],
                                                   ZR_STORE_TIMER_KEY), 0);
    assert_int_equal (zr_store_batch_timer_delete (st, t.key [1], 3), -1);
    s_commit (st, false);
    assert_int_equal (zr_store_timer_next (st), 2000);
    //  An aborted batch deletes nothing
    assert_int_equal (zr_store_batch_timer_delete (st, t.key [2],
                                                   ZR_STORE_TIMER_KEY), 0);
    zr_store_abort (st);
    memset (&t, 0, sizeof t);
    assert_int_equal (zr_store_timer_read (st, INT64_MAX, 10,
                                           s_collect_timer, &t), 2);
    assert_string_equal (t.value [0], "b2");
    assert_string_equal (t.value [1], "c");

    //  Marks
    assert_int_equal (zr_store_mark_exists (st, "dlq/g/1"), 0);
    assert_int_equal (zr_store_batch_mark_put (st, "dlq/g/1"), 0);
    assert_int_equal (zr_store_batch_mark_put (st, ""), -1);
    assert_int_equal (zr_store_batch_mark_put (st, NULL), -1);
    assert_int_equal (zr_store_mark_exists (st, "dlq/g/1"), 0);
    s_commit (st, false);
    assert_int_equal (zr_store_mark_exists (st, "dlq/g/1"), 1);
    assert_int_equal (zr_store_mark_exists (st, "dlq/g/2"), 0);
    //  Marks are not topics
    int topics = 0;
    zr_store_topic_foreach (st, s_count_topic, &topics);
    assert_int_equal (topics, 1);

    //  The log carries every timer and mark op
    logops_t ops = { 0, 0, 0 };
    assert_true (zr_store_log_read (st, 0, 100, s_count_ops, &ops) > 0);
    assert_int_equal (ops.puts, 4);
    assert_int_equal (ops.deletes, 2);
    assert_int_equal (ops.marks, 1);

    //  Timers and marks survive a reopen; new keys do not collide
    zr_store_destroy (&f->store);
    f->store = st = s_open (f->dir, NULL);
    assert_int_equal (zr_store_timer_next (st), 2000);
    assert_int_equal (zr_store_mark_exists (st, "dlq/g/1"), 1);
    assert_int_equal (zr_store_batch_timer_put (st, 2000, "b3", 2, NULL), 0);
    s_commit (st, false);
    memset (&t, 0, sizeof t);
    assert_int_equal (zr_store_timer_read (st, 2000, 10, s_collect_timer,
                                           &t), 2);
    assert_string_equal (t.value [0], "b2");
    assert_string_equal (t.value [1], "b3");
}

//  A data directory made before the timer column family opens, and gets
//  one.
static void
test_store_old_dir (void **state)
{
    char *dir = zrt_tempdir ("store-old");
    rocksdb_options_t *o = rocksdb_options_create ();
    rocksdb_options_set_create_if_missing (o, 1);
    rocksdb_options_set_create_missing_column_families (o, 1);
    const char *names [4] = { "default", "msg", "offsets", "log" };
    const rocksdb_options_t *cfo [4] = { o, o, o, o };
    rocksdb_column_family_handle_t *cf [4];
    char *rerr = NULL;
    rocksdb_t *db = rocksdb_open_column_families (o, dir, 4, names, cfo, cf,
                                                  &rerr);
    if (!db)
        fail_msg ("rocksdb open: %s", rerr ? rerr : "?");
    for (int i = 0; i < 4; i++)
        rocksdb_column_family_handle_destroy (cf [i]);
    rocksdb_close (db);
    rocksdb_options_destroy (o);

    zr_store_t *st = s_open (dir, NULL);
    assert_int_equal (zr_store_timer_next (st), -1);
    assert_int_equal (zr_store_batch_timer_put (st, 5, "v", 1, NULL), 0);
    s_commit (st, false);
    assert_int_equal (zr_store_timer_next (st), 5);
    zr_store_destroy (&st);
    st = s_open (dir, NULL);
    assert_int_equal (zr_store_timer_next (st), 5);
    zr_store_destroy (&st);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

//  The epoch history (marks "zr.epoch/E/FIRST", as zr_repl_promote_store
//  writes them): where an epoch ended, and which epoch a batch is of.
static void
test_store_epoch_history (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_store_t *st = f->store;
    char *err = NULL;
    uint64_t end = 77;
    assert_int_equal (zr_store_epoch_end (st, 1, &end), 1);
    assert_int_equal (end, 77);
    assert_int_equal (zr_store_epoch_of (st, 0), 1);
    //  Epoch 1: batches 1..3; epoch 2 from 4 (its mark), epoch 5 from 7.
    for (int i = 0; i < 3; i++) {
        zr_store_batch_append (st, "t", 0, i, "x", 1);
        assert_int_equal (zr_store_commit (st, false, &err), 0);
    }
    char mark [96];
    snprintf (mark, sizeof mark, "zr.epoch/%020d/%020d", 2, 4);
    assert_int_equal (zr_store_batch_mark_put (st, mark), 0);
    assert_int_equal (zr_store_commit (st, false, &err), 0);
    for (int i = 3; i < 5; i++) {
        zr_store_batch_append (st, "t", 0, i, "x", 1);
        assert_int_equal (zr_store_commit (st, false, &err), 0);
    }
    snprintf (mark, sizeof mark, "zr.epoch/%020d/%020d", 5, 7);
    assert_int_equal (zr_store_batch_mark_put (st, mark), 0);
    assert_int_equal (zr_store_commit (st, false, &err), 0);
    //  Another mark that is not an epoch's is ignored.
    assert_int_equal (zr_store_batch_mark_put (st, "zr.epochs"), 0);
    assert_int_equal (zr_store_commit (st, false, &err), 0);
    assert_int_equal (zr_store_seq (st), 8);
    assert_int_equal (zr_store_epoch_end (st, 1, &end), 0);
    assert_int_equal (end, 3);
    assert_int_equal (zr_store_epoch_end (st, 2, &end), 0);
    assert_int_equal (end, 6);
    assert_int_equal (zr_store_epoch_end (st, 3, &end), 0);   //  never ran
    assert_int_equal (end, 6);
    end = 0;
    assert_int_equal (zr_store_epoch_end (st, 5, &end), 1);
    assert_int_equal (end, 0);
    assert_int_equal (zr_store_epoch_of (st, 3), 1);
    assert_int_equal (zr_store_epoch_of (st, 4), 2);
    assert_int_equal (zr_store_epoch_of (st, 6), 2);
    assert_int_equal (zr_store_epoch_of (st, 7), 5);
    assert_int_equal (zr_store_epoch_of (st, 8), 5);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_store_crash_recovery),
        cmocka_unit_test_setup_teardown (test_store_new, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_store_append_read, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_store_bad_input, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_store_offsets, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_store_topics, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_store_seq_persists, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_store_log, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_store_group),
        cmocka_unit_test_setup_teardown (test_store_locked, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_store_damaged),
        cmocka_unit_test (test_store_newer_format),
        cmocka_unit_test (test_store_bad_paths),
        cmocka_unit_test_setup_teardown (test_store_timers, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_store_old_dir),
        cmocka_unit_test_setup_teardown (test_store_epoch_history, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
