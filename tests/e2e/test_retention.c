/*  tests/e2e/test_retention.c - per-topic retention on a real broker
    (docs/protocol.md section 15), spoken to raw over a DEALER: old
    messages go by age and by size, the min offset moves, a PULL below it
    is OFFSET_OUT_OF_RANGE with the min, new messages are fine, a pull
    consumer behind min continues from it, retention settings survive a
    restart and can be changed, bad retention fields are refused.

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
    zsock_t *dealer;
    zr_enc_t *enc;
    int64_t rid;
} fixture_t;

typedef struct {
    zmsg_t *msg;
    zframe_t *head;
    zr_hdr_t *hdr;
    const zr_obj_t *h;
    char status [32];
    char reason [512];
} reply_t;

static void
s_start (fixture_t *f, const char *extra)
{
    char *bind = zsys_sprintf ("inproc://%s-%d-%d", TEST_NAME,
                               (int) getpid (), ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, extra, &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->broker);
    f->dealer = zsock_new_dealer (f->endpoint);
    assert_non_null (f->dealer);
    zsock_set_linger (f->dealer, 0);
    zsock_set_sndtimeo (f->dealer, RECV_TIMEOUT);
}

static void
s_stop (fixture_t *f)
{
    zsock_destroy (&f->dealer);
    zactor_destroy (&f->broker);
    zstr_free (&f->endpoint);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir (TEST_NAME);
    f->enc = zr_enc_new ();
    s_start (f, SETTINGS);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_stop (f);
    zr_enc_destroy (&f->enc);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    free (f);
    return 0;
}

static int64_t
s_begin (fixture_t *f, const char *cmd, size_t fields)
{
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3 + fields);
    zr_enc_kint (f->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kint (f->enc, "rid", ++f->rid);
    zr_enc_kstr (f->enc, "cmd", cmd);
    return f->rid;
}

static void
s_reply_destroy (reply_t **self_p)
{
    if (*self_p) {
        zr_hdr_destroy (&(*self_p)->hdr);
        zframe_destroy (&(*self_p)->head);
        zmsg_destroy (&(*self_p)->msg);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Sends the header (plus one body when body is not NULL) and waits for
//  the reply with this rid.
static reply_t *
s_call_body (fixture_t *f, int64_t rid, const char *body)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, zr_enc_data (f->enc), zr_enc_size (f->enc));
    if (body)
        zmsg_addstr (msg, body);
    assert_int_equal (zmsg_send (&msg, f->dealer), 0);
    zmq_pollitem_t items [] = {
        { zsock_resolve (f->dealer), 0, ZMQ_POLLIN, 0 }
    };
    if (zmq_poll (items, 1, RECV_TIMEOUT + 1000) <= 0)
        fail_msg ("no reply to rid %" PRId64, rid);
    reply_t *r = (reply_t *) zmalloc (sizeof (reply_t));
    r->msg = zmsg_recv (f->dealer);
    assert_non_null (r->msg);
    r->head = zmsg_pop (r->msg);
    assert_non_null (r->head);
    r->hdr = zr_hdr_decode (zframe_data (r->head), zframe_size (r->head),
                            NULL);
    assert_non_null (r->hdr);
    r->h = zr_hdr_root (r->hdr);
    int64_t got = -1;
    assert_int_equal (zr_field_int (r->h, "rid", &got), ZR_FIELD_OK);
    assert_true (got == rid);
    assert_int_equal (zr_field_strbuf (r->h, "status", r->status,
                                       sizeof r->status), ZR_FIELD_OK);
    if (zr_field_strbuf (r->h, "reason", r->reason, sizeof r->reason))
        r->reason [0] = 0;
    return r;
}

static reply_t *
s_call (fixture_t *f, int64_t rid)
{
    return s_call_body (f, rid, NULL);
}

static void
s_expect (reply_t *r, const char *status, const char *part)
{
    if (strcmp (r->status, status) != 0)
        fail_msg ("status %s (%s), expected %s", r->status, r->reason,
                  status);
    if (part && !strstr (r->reason, part))
        fail_msg ("reason '%s' does not mention '%s'", r->reason, part);
}

static void
s_expect_free (reply_t *r, const char *status, const char *part)
{
    s_expect (r, status, part);
    s_reply_destroy (&r);
}

static int64_t
s_int (const zr_obj_t *map, const char *key)
{
    int64_t v = -1;
    if (zr_field_int (map, key, &v) != ZR_FIELD_OK)
        fail_msg ("no int '%s'", key);
    return v;
}

//  Creates (or changes) a topic; retention -1 leaves the field out.
static void
s_create (fixture_t *f, const char *topic, int queues, int64_t ms,
          int64_t bytes)
{
    int64_t rid = s_begin (f, "TOPIC_CREATE",
                           2 + (ms >= 0) + (bytes >= 0));
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queues", queues);
    if (ms >= 0)
        zr_enc_kint (f->enc, "retention_ms", ms);
    if (bytes >= 0)
        zr_enc_kint (f->enc, "retention_bytes", bytes);
    s_expect_free (s_call (f, rid), "OK", NULL);
}

//  Sends body to queue 0 of topic with id (NULL: broker's) and keys
//  (NULL: none); returns the offset.
static int64_t
s_send (fixture_t *f, const char *topic, const char *id, const char *keys,
        const char *body)
{
    int64_t rid = s_begin (f, "SEND", 2 + (id != NULL) + (keys != NULL));
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queue", 0);
    if (id)
        zr_enc_kstr (f->enc, "id", id);
    if (keys)
        zr_enc_kstr (f->enc, "keys", keys);
    reply_t *r = s_call_body (f, rid, body);
    s_expect (r, "SEND_OK", NULL);
    int64_t offset = s_int (r->h, "offset");
    s_reply_destroy (&r);
    return offset;
}

//  Min and max of queue 0 from TOPIC_INFO.
static void
s_bounds (fixture_t *f, const char *topic, int64_t *min, int64_t *max)
{
    int64_t rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", topic);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    const zr_obj_t *offsets = zr_obj_get (r->h, "offsets");
    assert_true (zr_obj_size (offsets) >= 1);
    const zr_obj_t *q0 = zr_obj_at (offsets, 0);
    assert_int_equal (zr_obj_int (zr_obj_at (q0, 0), min), ZR_FIELD_OK);
    assert_int_equal (zr_obj_int (zr_obj_at (q0, 1), max), ZR_FIELD_OK);
    s_reply_destroy (&r);
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
        int64_t rid = s_begin (f, "PULL", 5);
        zr_enc_kstr (f->enc, "topic", "pace");
        zr_enc_kint (f->enc, "queue", 0);
        zr_enc_kint (f->enc, "offset", 0);
        zr_enc_kint (f->enc, "max_count", 1);
        zr_enc_kint (f->enc, "wait", 50);
        reply_t *r = s_call (f, rid);
        s_reply_destroy (&r);
    }
}

//  Pulls queue 0 of topic at offset: returns the reply.
static reply_t *
s_pull (fixture_t *f, const char *topic, int64_t offset)
{
    int64_t rid = s_begin (f, "PULL", 4);
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queue", 0);
    zr_enc_kint (f->enc, "offset", offset);
    zr_enc_kint (f->enc, "max_count", 100);
    return s_call (f, rid);
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

    reply_t *r = s_pull (f, "age", 0);
    s_expect (r, "OFFSET_OUT_OF_RANGE", NULL);
    assert_int_equal (s_int (r->h, "min"), 4);
    s_reply_destroy (&r);
    r = s_pull (f, "age", 4);
    s_expect (r, "OK", NULL);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "msgs")), 1);
    s_reply_destroy (&r);
    //  New messages are fine, offsets go on.
    assert_int_equal (s_send (f, "age", NULL, NULL, "new"), 5);
    r = s_pull (f, "age", 5);
    s_expect (r, "OK", NULL);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "msgs")), 1);
    s_reply_destroy (&r);

    //  STATS counts the deleted ones and shows disk use per topic.
    int64_t rid = s_begin (f, "STATS", 0);
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    const zr_obj_t *age = zr_obj_get (
        zr_obj_get (zr_obj_get (r->h, "stats"), "topics"), "age");
    assert_non_null (age);
    assert_true (s_int (age, "retention_deleted") >= 4);
    assert_true (s_int (age, "disk_bytes") >= 0);
    s_reply_destroy (&r);
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
    int64_t rid = s_begin (f, "TOPIC_CREATE", 3);
    zr_enc_kstr (f->enc, "topic", "conf");
    zr_enc_kint (f->enc, "queues", 2);      //  absent: default-queues
    zr_enc_kint (f->enc, "retention_ms", 654321);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_int (r->h, "retention_ms"), 654321);
    assert_int_equal (s_int (r->h, "retention_bytes"), 789000);
    assert_int_equal (s_int (r->h, "queues"), 2);
    s_reply_destroy (&r);

    s_stop (f);
    s_start (f, "retention-check-ms=20;default-retention-ms=5000;"
                "default-retention-bytes=100000");
    rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "conf");
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_int (r->h, "retention_ms"), 654321);
    assert_int_equal (s_int (r->h, "retention_bytes"), 789000);
    assert_int_equal (s_int (r->h, "queues"), 2);
    s_reply_destroy (&r);
    //  A topic that set none follows the broker's defaults.
    rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "plain");
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_int (r->h, "retention_ms"), 5000);
    assert_int_equal (s_int (r->h, "retention_bytes"), 100000);
    s_reply_destroy (&r);
    //  Deleting and re-creating a topic forgets its retention.
    rid = s_begin (f, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->enc, "topic", "conf");
    s_expect_free (s_call (f, rid), "OK", NULL);
    s_create (f, "conf", 1, -1, -1);
    rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "conf");
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_int (r->h, "retention_ms"), 5000);
    s_reply_destroy (&r);
}

static void
test_bad_input (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t rid = s_begin (f, "TOPIC_CREATE", 2);
    zr_enc_kstr (f->enc, "topic", "bad");
    zr_enc_kint (f->enc, "retention_ms", -5);
    s_expect_free (s_call (f, rid), "BAD_ARGUMENT", "retention_ms");
    rid = s_begin (f, "TOPIC_CREATE", 2);
    zr_enc_kstr (f->enc, "topic", "bad");
    zr_enc_kstr (f->enc, "retention_bytes", "lots");
    s_expect_free (s_call (f, rid), "MALFORMED", "retention_bytes");
    rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "bad");
    s_expect_free (s_call (f, rid), "TOPIC_NOT_FOUND", NULL);

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
        cmocka_unit_test_setup_teardown (test_bad_input, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
