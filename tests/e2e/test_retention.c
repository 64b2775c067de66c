/*  tests/e2e/test_retention.c - retention and lookup (FIND) on a real
    broker (docs/protocol.md section 15), spoken to raw over a DEALER: old
    messages go by age and by size, the min offset moves, a PULL below it
    is OFFSET_OUT_OF_RANGE with the min, new messages are fine, a pull
    consumer behind min continues from it, retention settings survive a
    restart and can be changed, bad retention fields are refused. And
    FIND (lookup): by message id exactly that message, by key every
    message with that key (several keys per message), an unknown id or
    key is OK with no messages, bad requests are refused, a message
    retention deleted is no longer found, the index survives a restart.

    Timing test (waits for the retention timer). ctest: RUN_SERIAL
*/
#define TEST_NAME "retaintest"
#define SETTINGS "retention-check-ms=20"
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"

#define RECV_TIMEOUT 5000
#define WAIT_MAX 10000          //  retention must act within this, ms

static int s_seq = 0;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    zrt_raw_t *raw;
} fixture_t;

static void
s_start (fixture_t *f, const char *extra)
{
    char *bind = zsys_sprintf ("inproc://%s-%d-%d", TEST_NAME,
                               (int) getpid (), ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, extra, &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->broker);
    f->raw = zrt_raw_new (f->endpoint);
}

//  Sends the request begun with zrt_raw_begin, waits for its reply.
static zrt_reply_t *
s_call (fixture_t *f)
{
    return zrt_raw_call (f->raw, NULL, RECV_TIMEOUT + 1000);
}

static void
s_stop (fixture_t *f)
{
    zrt_raw_destroy (&f->raw);
    zactor_destroy (&f->broker);
    zstr_free (&f->endpoint);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir (TEST_NAME);
    s_start (f, SETTINGS);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_stop (f);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    free (f);
    return 0;
}

//  Creates (or changes) a topic; retention -1 leaves the field out.
static void
s_create (fixture_t *f, const char *topic, int queues, int64_t ms,
          int64_t bytes)
{
    zrt_raw_begin (f->raw, "TOPIC_CREATE",
                           2 + (ms >= 0) + (bytes >= 0));
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queues", queues);
    if (ms >= 0)
        zr_enc_kint (f->raw->enc, "retention_ms", ms);
    if (bytes >= 0)
        zr_enc_kint (f->raw->enc, "retention_bytes", bytes);
    zrt_expect_free (s_call (f), "OK", NULL);
}

//  Sends body to queue 0 of topic with id (NULL: broker's) and keys
//  (NULL: none); returns the offset.
static int64_t
s_send (fixture_t *f, const char *topic, const char *id, const char *keys,
        const char *body)
{
    zrt_raw_begin (f->raw, "SEND", 2 + (id != NULL) + (keys != NULL));
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queue", 0);
    if (id)
        zr_enc_kstr (f->raw->enc, "id", id);
    if (keys)
        zr_enc_kstr (f->raw->enc, "keys", keys);
    zrt_reply_t *r = zrt_raw_call (f->raw, body, RECV_TIMEOUT + 1000);
    zrt_expect (r, "SEND_OK", NULL);
    int64_t offset = zrt_int (r->h, "offset");
    zrt_reply_destroy (&r);
    return offset;
}

//  Min and max of queue 0 from TOPIC_INFO.
static void
s_bounds (fixture_t *f, const char *topic, int64_t *min, int64_t *max)
{
    zrt_raw_begin (f->raw, "TOPIC_INFO", 1);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zrt_reply_t *r = s_call (f);
    zrt_expect (r, "OK", NULL);
    const zr_obj_t *offsets = zr_obj_get (r->h, "offsets");
    assert_true (zr_obj_size (offsets) >= 1);
    const zr_obj_t *q0 = zr_obj_at (offsets, 0);
    assert_int_equal (zr_obj_int (zr_obj_at (q0, 0), min), ZR_FIELD_OK);
    assert_int_equal (zr_obj_int (zr_obj_at (q0, 1), max), ZR_FIELD_OK);
    zrt_reply_destroy (&r);
}

//  Waits (a long-poll PULL on an empty topic paces it, no sleep) until
//  queue 0 of topic has min >= want; fails after WAIT_MAX ms.
static int64_t
s_wait_min (fixture_t *f, const char *topic, int64_t want)
{
    int64_t deadline = zclock_mono () + WAIT_MAX;
    while (true) {
        int64_t min, max;
        s_bounds (f, topic, &min, &max);
        if (min >= want)
            return min;
        if (zclock_mono () > deadline)
            fail_msg ("%s: min is %" PRId64 ", wanted %" PRId64, topic,
                      min, want);
        zrt_raw_begin (f->raw, "PULL", 5);
        zr_enc_kstr (f->raw->enc, "topic", "pace");
        zr_enc_kint (f->raw->enc, "queue", 0);
        zr_enc_kint (f->raw->enc, "offset", 0);
        zr_enc_kint (f->raw->enc, "max_count", 1);
        zr_enc_kint (f->raw->enc, "wait", 50);
        zrt_reply_t *r = s_call (f);
        zrt_reply_destroy (&r);
    }
}

//  Pulls queue 0 of topic at offset: returns the reply.
static zrt_reply_t *
s_pull (fixture_t *f, const char *topic, int64_t offset)
{
    zrt_raw_begin (f->raw, "PULL", 4);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kint (f->raw->enc, "offset", offset);
    zr_enc_kint (f->raw->enc, "max_count", 100);
    return s_call (f);
}

static void
test_age (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "pace", 1, -1, -1);
    s_create (f, "age", 1, 300, 0);
    s_create (f, "keep", 1, 3600000, 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal (s_send (f, "age", NULL, NULL, "old"), i);
        assert_int_equal (s_send (f, "keep", NULL, NULL, "old"), i);
    }
    //  All but the newest go (a queue keeps its last message).
    assert_int_equal (s_wait_min (f, "age", 4), 4);
    int64_t min, max;
    s_bounds (f, "age", &min, &max);
    assert_int_equal (max, 5);
    s_bounds (f, "keep", &min, &max);
    assert_int_equal (min, 0);
    assert_int_equal (max, 5);

    zrt_reply_t *r = s_pull (f, "age", 0);
    zrt_expect (r, "OFFSET_OUT_OF_RANGE", NULL);
    assert_int_equal (zrt_int (r->h, "min"), 4);
    zrt_reply_destroy (&r);
    r = s_pull (f, "age", 4);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "msgs")), 1);
    zrt_reply_destroy (&r);
    //  New messages are fine, offsets go on.
    assert_int_equal (s_send (f, "age", NULL, NULL, "new"), 5);
    r = s_pull (f, "age", 5);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "msgs")), 1);
    zrt_reply_destroy (&r);

    //  STATS counts the deleted ones and shows disk use per topic.
    zrt_raw_begin (f->raw, "STATS", 0);
    r = s_call (f);
    zrt_expect (r, "OK", NULL);
    const zr_obj_t *age = zr_obj_get (
        zr_obj_get (zr_obj_get (r->h, "stats"), "topics"), "age");
    assert_non_null (age);
    assert_true (zrt_int (age, "retention_deleted") >= 4);
    assert_true (zrt_int (age, "disk_bytes") >= 0);
    zrt_reply_destroy (&r);
}

static void
test_bytes (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "pace", 1, -1, -1);
    s_create (f, "size", 1, 0, 2000);
    char body [101];
    memset (body, 'x', 100);
    body [100] = 0;
    for (int i = 0; i < 50; i++)
        s_send (f, "size", NULL, NULL, body);
    int64_t min = s_wait_min (f, "size", 1), max;
    //  Records are body + meta (> 100 bytes): at most 20 fit in 2000,
    //  and the queue keeps some.
    s_bounds (f, "size", &min, &max);
    assert_int_equal (max, 50);
    assert_true (max - min <= 20);
    assert_true (max - min >= 2);
    //  Sending more keeps it within the limit.
    for (int i = 0; i < 30; i++)
        s_send (f, "size", NULL, NULL, body);
    s_wait_min (f, "size", 60);
    s_bounds (f, "size", &min, &max);
    assert_int_equal (max, 80);
    assert_true (max - min <= 20);
}

static void
test_consumer_continues (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "pace", 1, -1, -1);
    s_create (f, "behind", 1, 200, 0);
    for (int i = 0; i < 10; i++)
        s_send (f, "behind", NULL, NULL, "m");
    int64_t min = s_wait_min (f, "behind", 9);
    assert_int_equal (min, 9);
    s_send (f, "behind", NULL, NULL, "after");

    //  A pull consumer at offset 0 is told the min and goes on from it.
    zr_consumer_t *c = zr_consumer_new (f->endpoint);
    assert_non_null (c);
    zr_pull_t *p = zr_consumer_pull (c, "behind", 0, 0, 32, 0);
    assert_non_null (p);
    assert_int_equal (zr_pull_status (p), ZR_OFFSET_OUT_OF_RANGE);
    assert_int_equal (zr_pull_min (p), 9);
    zr_pull_destroy (&p);
    p = zr_consumer_pull (c, "behind", 0, 9, 32, 0);
    assert_non_null (p);
    assert_int_equal (zr_pull_status (p), ZR_OK);
    assert_int_equal (zr_pull_count (p), 2);
    zr_message_t *m = zr_pull_message (p, 1);
    assert_int_equal (zr_message_size (m), 5);
    assert_memory_equal (zr_message_body (m), "after", 5);
    zr_pull_destroy (&p);
    //  A committed group offset below min: the committed one is kept,
    //  the consumer moves on with the min it is told.
    int64_t min2, max2;
    assert_int_equal (zr_consumer_queue_offsets (c, "behind", 0, &min2,
                                                 &max2), 0);
    assert_int_equal (min2, 9);
    assert_int_equal (max2, 11);
    zr_consumer_destroy (&c);
}

static void
test_restart_and_change (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "conf", 2, 123456, 789000);
    s_create (f, "plain", 1, -1, -1);

    //  TOPIC_CREATE on an existing topic changes its retention.
    zrt_raw_begin (f->raw, "TOPIC_CREATE", 3);
    zr_enc_kstr (f->raw->enc, "topic", "conf");
    zr_enc_kint (f->raw->enc, "queues", 2);      //  absent: default-queues
    zr_enc_kint (f->raw->enc, "retention_ms", 654321);
    zrt_reply_t *r = s_call (f);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zrt_int (r->h, "retention_ms"), 654321);
    assert_int_equal (zrt_int (r->h, "retention_bytes"), 789000);
    assert_int_equal (zrt_int (r->h, "queues"), 2);
    zrt_reply_destroy (&r);

    s_stop (f);
    s_start (f, "retention-check-ms=20;default-retention-ms=5000;"
                "default-retention-bytes=100000");
    zrt_raw_begin (f->raw, "TOPIC_INFO", 1);
    zr_enc_kstr (f->raw->enc, "topic", "conf");
    r = s_call (f);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zrt_int (r->h, "retention_ms"), 654321);
    assert_int_equal (zrt_int (r->h, "retention_bytes"), 789000);
    assert_int_equal (zrt_int (r->h, "queues"), 2);
    zrt_reply_destroy (&r);
    //  A topic that set none follows the broker's defaults.
    zrt_raw_begin (f->raw, "TOPIC_INFO", 1);
    zr_enc_kstr (f->raw->enc, "topic", "plain");
    r = s_call (f);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zrt_int (r->h, "retention_ms"), 5000);
    assert_int_equal (zrt_int (r->h, "retention_bytes"), 100000);
    zrt_reply_destroy (&r);
    //  Deleting and re-creating a topic forgets its retention.
    zrt_raw_begin (f->raw, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->raw->enc, "topic", "conf");
    zrt_expect_free (s_call (f), "OK", NULL);
    s_create (f, "conf", 1, -1, -1);
    zrt_raw_begin (f->raw, "TOPIC_INFO", 1);
    zr_enc_kstr (f->raw->enc, "topic", "conf");
    r = s_call (f);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zrt_int (r->h, "retention_ms"), 5000);
    zrt_reply_destroy (&r);
}

static void
test_bad_input (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zrt_raw_begin (f->raw, "TOPIC_CREATE", 2);
    zr_enc_kstr (f->raw->enc, "topic", "bad");
    zr_enc_kint (f->raw->enc, "retention_ms", -5);
    zrt_expect_free (s_call (f), "BAD_ARGUMENT", "retention_ms");
    zrt_raw_begin (f->raw, "TOPIC_CREATE", 2);
    zr_enc_kstr (f->raw->enc, "topic", "bad");
    zr_enc_kstr (f->raw->enc, "retention_bytes", "lots");
    zrt_expect_free (s_call (f), "MALFORMED", "retention_bytes");
    zrt_raw_begin (f->raw, "TOPIC_INFO", 1);
    zr_enc_kstr (f->raw->enc, "topic", "bad");
    zrt_expect_free (s_call (f), "TOPIC_NOT_FOUND", NULL);

    //  Bad settings stop START.
    char *dir = zrt_tempdir ("retainbad");
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "broker/data", dir);
    zconfig_put (cfg, "broker/bind", "inproc://retainbad");
    zconfig_put (cfg, "broker/nameserver", "none");
    zconfig_put (cfg, "broker/retention-check-ms", "0");
    char *err = NULL;
    zactor_t *b = zr_broker_new (cfg, &err);
    if (b) {
        zactor_destroy (&b);
        fail_msg ("retention-check-ms=0 started");
    }
    assert_non_null (err);
    assert_non_null (strstr (err, "retention-check-ms"));
    zstr_free (&err);
    zconfig_put (cfg, "broker/retention-check-ms", "100");
    zconfig_put (cfg, "broker/default-retention-ms", "-1");
    b = zr_broker_new (cfg, &err);
    if (b) {
        zactor_destroy (&b);
        fail_msg ("default-retention-ms=-1 started");
    }
    assert_non_null (err);
    assert_non_null (strstr (err, "default-retention-ms"));
    zstr_free (&err);
    zconfig_destroy (&cfg);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
#define ID_C "ccccccccccccccccccccccccccccccc3"
#define ID_X "0000000000000000000000000000dead"

//  FIND by id (by_id) or key; returns the reply (status checked by the
//  caller).
static zrt_reply_t *
s_find (fixture_t *f, const char *topic, bool by_id, const char *str)
{
    zrt_raw_begin (f->raw, "FIND", 2);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kstr (f->raw->enc, by_id ? "id" : "key", str);
    return s_call (f);
}

//  Asserts the reply found exactly these bodies, in order.
static void
s_found (zrt_reply_t *r, const char **bodies, size_t count)
{
    zrt_expect (r, "OK", NULL);
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), count);
    assert_int_equal (zmsg_size (r->msg), count);
    zframe_t *frame = zmsg_first (r->msg);
    for (size_t i = 0; i < count; i++) {
        assert_non_null (frame);
        assert_int_equal (zframe_size (frame), strlen (bodies [i]));
        assert_memory_equal (zframe_data (frame), bodies [i],
                             strlen (bodies [i]));
        frame = zmsg_next (r->msg);
    }
}

static void
test_find (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "look", 1, -1, -1);
    s_create (f, "other", 1, -1, -1);
    s_send (f, "look", ID_A, "k1 k2", "a");
    s_send (f, "look", ID_B, "k2", "b");
    s_send (f, "look", ID_C, "  k3  k2k ", "c");
    s_send (f, "other", ID_X, "k1", "x");

    zrt_reply_t *r = s_find (f, "look", true, ID_B);
    const char *b [] = { "b" };
    s_found (r, b, 1);
    const zr_obj_t *m = zr_obj_at (zr_obj_get (r->h, "msgs"), 0);
    char id [64];
    assert_int_equal (zr_field_strbuf (m, "id", id, sizeof id),
                      ZR_FIELD_OK);
    assert_string_equal (id, ID_B);
    assert_int_equal (zrt_int (m, "offset"), 1);
    zrt_reply_destroy (&r);

    const char *k2 [] = { "a", "b" };
    r = s_find (f, "look", false, "k2");
    s_found (r, k2, 2);
    zrt_reply_destroy (&r);
    const char *k1 [] = { "a" };
    r = s_find (f, "look", false, "k1");        //  not "other"'s k1
    s_found (r, k1, 1);
    zrt_reply_destroy (&r);
    const char *c [] = { "c" };
    r = s_find (f, "look", false, "k2k");
    s_found (r, c, 1);
    zrt_reply_destroy (&r);
    r = s_find (f, "look", false, "k3");
    s_found (r, c, 1);
    zrt_reply_destroy (&r);

    //  Unknown id or key: OK, no messages.
    r = s_find (f, "look", true, ID_X);
    s_found (r, NULL, 0);
    zrt_reply_destroy (&r);
    r = s_find (f, "look", false, "k");
    s_found (r, NULL, 0);
    zrt_reply_destroy (&r);

    //  max_count
    zrt_raw_begin (f->raw, "FIND", 3);
    zr_enc_kstr (f->raw->enc, "topic", "look");
    zr_enc_kstr (f->raw->enc, "key", "k2");
    zr_enc_kint (f->raw->enc, "max_count", 1);
    r = s_call (f);
    s_found (r, k1, 1);
    zrt_reply_destroy (&r);
}

static void
test_find_bad_requests (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "look", 1, -1, -1);
    zrt_expect_free (s_find (f, "nope", true, ID_A), "TOPIC_NOT_FOUND", NULL);
    zrt_expect_free (s_find (f, "look", false, "a b"), "BAD_ARGUMENT",
                   "spaces");
    zrt_expect_free (s_find (f, "look", false, ""), "BAD_ARGUMENT", NULL);
    zrt_raw_begin (f->raw, "FIND", 1);
    zr_enc_kstr (f->raw->enc, "topic", "look");
    zrt_expect_free (s_call (f), "BAD_ARGUMENT", "one of");
    zrt_raw_begin (f->raw, "FIND", 3);
    zr_enc_kstr (f->raw->enc, "topic", "look");
    zr_enc_kstr (f->raw->enc, "id", ID_A);
    zr_enc_kstr (f->raw->enc, "key", "k");
    zrt_expect_free (s_call (f), "BAD_ARGUMENT", "one of");
    zrt_raw_begin (f->raw, "FIND", 2);
    zr_enc_kstr (f->raw->enc, "topic", "look");
    zr_enc_kint (f->raw->enc, "id", 5);
    zrt_expect_free (s_call (f), "MALFORMED", NULL);
    zrt_raw_begin (f->raw, "FIND", 3);
    zr_enc_kstr (f->raw->enc, "topic", "look");
    zr_enc_kstr (f->raw->enc, "key", "k");
    zr_enc_kint (f->raw->enc, "max_count", 0);
    zrt_expect_free (s_call (f), "BAD_ARGUMENT", "max_count");
    char *huge = (char *) malloc (2000);
    memset (huge, 'k', 1999);
    huge [1999] = 0;
    zrt_expect_free (s_find (f, "look", false, huge), "BAD_ARGUMENT", NULL);
    free (huge);
    //  Still serving
    zrt_raw_begin (f->raw, "PING", 0);
    zrt_expect_free (s_call (f), "OK", NULL);
}

static void
test_find_after_retention (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "pace", 1, -1, -1);
    s_create (f, "short", 1, 200, 0);
    s_send (f, "short", ID_A, "gone", "a");
    s_send (f, "short", ID_B, "gone stays", "b");
    s_wait_min (f, "short", 1);
    zrt_reply_t *r = s_find (f, "short", true, ID_A);
    s_found (r, NULL, 0);
    zrt_reply_destroy (&r);
    const char *b [] = { "b" };
    r = s_find (f, "short", false, "gone");
    s_found (r, b, 1);
    zrt_reply_destroy (&r);
    r = s_find (f, "short", true, ID_B);
    s_found (r, b, 1);
    zrt_reply_destroy (&r);

    //  A deleted and re-created topic has no old index entries.
    zrt_raw_begin (f->raw, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->raw->enc, "topic", "short");
    zrt_expect_free (s_call (f), "OK", NULL);
    s_create (f, "short", 1, 0, 0);
    s_send (f, "short", NULL, NULL, "new");
    s_send (f, "short", NULL, NULL, "new");
    r = s_find (f, "short", true, ID_B);
    s_found (r, NULL, 0);
    zrt_reply_destroy (&r);

    //  The index survives a restart.
    s_send (f, "short", ID_C, "kept", "c");
    s_stop (f);
    s_start (f, SETTINGS);
    const char *c [] = { "c" };
    r = s_find (f, "short", false, "kept");
    s_found (r, c, 1);
    zrt_reply_destroy (&r);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_age, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bytes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_consumer_continues, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_and_change, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_find, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_find_bad_requests, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_find_after_retention, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_input, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
