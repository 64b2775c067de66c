/*  tests/e2e/test_retry.c - retry and dead letters on a real broker
    (docs/protocol.md section 11), spoken to raw over a DEALER: SEND_BACK
    schedules a redelivery to %RETRY%G after the configured delay (not
    before it, and within 3x plus a margin), the message keeps its id
    and gains its history props; after max-reconsume attempts, or with
    dlq=true, it goes to %DLQ%G; DLQ_LIST and DLQ_RESEND; timers survive
    a broker restart; bad requests are answered and the broker keeps
    serving; bad retry settings stop START.

    Timing test. ctest: RUN_SERIAL
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"

#define RECV_TIMEOUT 5000
#define SETTINGS "retry-delays=100ms 200ms;max-reconsume=3"
#define MSG_ID "0123456789abcdef0123456789abcdef"

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
    char *bind = zsys_sprintf ("inproc://retry-test-%d-%d", (int) getpid (),
                               ++s_seq);
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
    f->dir = zrt_tempdir ("retrytest");
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

//  Asserts that string field key of map equals value.
static void
s_str_is (const zr_obj_t *map, const char *key, const char *value)
{
    char buf [1100];
    if (zr_field_strbuf (map, key, buf, sizeof buf) != ZR_FIELD_OK)
        fail_msg ("no string '%s'", key);
    if (strcmp (buf, value) != 0)
        fail_msg ("'%s' is '%s', expected '%s'", key, buf, value);
}

static void
s_create (fixture_t *f, const char *topic)
{
    zrt_raw_begin (f->raw, "TOPIC_CREATE", 2);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queues", 1);
    zrt_expect_free (s_call (f), "OK", NULL);
}

//  Sends body with MSG_ID and a user prop; returns the offset.
static int64_t
s_produce (fixture_t *f, const char *topic, const char *body)
{
    zrt_raw_begin (f->raw, "SEND", 4);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kstr (f->raw->enc, "id", MSG_ID);
    zr_enc_str (f->raw->enc, "props");
    zr_enc_map (f->raw->enc, 1);
    zr_enc_kstr (f->raw->enc, "user", "kept");
    zrt_reply_t *r = zrt_raw_call (f->raw, body, RECV_TIMEOUT);
    zrt_expect (r, "SEND_OK", NULL);
    int64_t offset = zrt_int (r->h, "offset");
    zrt_reply_destroy (&r);
    return offset;
}

//  SEND_BACK; error and dlq optional (NULL, false: omitted). Returns the
//  reply.
static zrt_reply_t *
s_send_back (fixture_t *f, const char *group, const char *topic,
             int64_t offset, const char *error, bool dlq)
{
    zrt_raw_begin (f->raw, "SEND_BACK", 4 + (error != NULL) + dlq);
    zr_enc_kstr (f->raw->enc, "group", group);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kint (f->raw->enc, "offset", offset);
    if (error)
        zr_enc_kstr (f->raw->enc, "error", error);
    if (dlq)
        zr_enc_kbool (f->raw->enc, "dlq", true);
    return s_call (f);
}

static void
s_send_back_ok (fixture_t *f, const char *group, const char *topic,
                int64_t offset, const char *error, bool dlq,
                int64_t attempts, bool to_dlq)
{
    zrt_reply_t *r = s_send_back (f, group, topic, offset, error, dlq);
    zrt_expect (r, "OK", NULL);
    assert_true (zrt_int (r->h, "attempts") == attempts);
    bool went = !to_dlq;
    assert_int_equal (zr_field_bool (r->h, "dlq", &went), ZR_FIELD_OK);
    assert_true (went == to_dlq);
    zrt_reply_destroy (&r);
}

static zrt_reply_t *
s_pull (fixture_t *f, const char *topic, int64_t offset, int wait)
{
    zrt_raw_begin (f->raw, "PULL", 4);
    zr_enc_kstr (f->raw->enc, "topic", topic);
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kint (f->raw->enc, "offset", offset);
    zr_enc_kint (f->raw->enc, "wait", wait);
    return zrt_raw_call (f->raw, NULL, wait + RECV_TIMEOUT);
}

//  Checks one message map and its body: same id and body, the user prop
//  kept, the history props.
static void
s_check_msg (const zr_obj_t *m, zframe_t *body, const char *times,
             const char *error)
{
    s_str_is (m, "id", MSG_ID);
    assert_true (zframe_streq (body, "payload"));
    const zr_obj_t *props = zr_obj_get (m, "props");
    assert_true (zr_obj_is_map (props));
    s_str_is (props, "user", "kept");
    s_str_is (props, "ORIGIN_TOPIC", "orders");
    s_str_is (props, "ORIGIN_QUEUE", "0");
    s_str_is (props, "ORIGIN_OFFSET", "0");
    s_str_is (props, "RECONSUME_TIMES", times);
    if (error)
        s_str_is (props, "LAST_ERROR", error);
}

//  Waits for the one message at topic/offset: asserts it is not there at
//  once, then that it arrives no earlier than delay ms after `sent` and
//  within 3x delay plus a margin; checks it.
static void
s_expect_retry (fixture_t *f, const char *topic, int64_t offset,
                int64_t sent, int64_t delay, const char *times,
                const char *error)
{
    zrt_expect_free (s_pull (f, topic, offset, 0), "NO_NEW_MSG", NULL);
    zrt_reply_t *r = s_pull (f, topic, offset, 3000);
    int64_t elapsed = zclock_mono () - sent;
    zrt_expect (r, "OK", NULL);
    if (elapsed < delay - 5 || elapsed > 3 * delay + 500)
        fail_msg ("retry arrived after %" PRId64 " ms, delay %" PRId64,
                  elapsed, delay);
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), 1);
    assert_true (zrt_int (zr_obj_at (msgs, 0), "offset") == offset);
    s_check_msg (zr_obj_at (msgs, 0), zmsg_first (r->msg), times, error);
    zrt_reply_destroy (&r);
}

//  DLQ_LIST of group; returns the reply (asserted OK).
static zrt_reply_t *
s_dlq_list (fixture_t *f, const char *group)
{
    zrt_raw_begin (f->raw, "DLQ_LIST", 1);
    zr_enc_kstr (f->raw->enc, "group", group);
    zrt_reply_t *r = s_call (f);
    zrt_expect (r, "OK", NULL);
    return r;
}

static size_t
s_dlq_count (fixture_t *f, const char *group)
{
    zrt_reply_t *r = s_dlq_list (f, group);
    size_t n = zr_obj_size (zr_obj_get (r->h, "msgs"));
    assert_int_equal (zmsg_size (r->msg), n);
    zrt_reply_destroy (&r);
    return n;
}

//  DLQ_RESEND of group, ids (NULL: all); returns resent.
static int64_t
s_dlq_resend (fixture_t *f, const char *group, const char *id)
{
    zrt_raw_begin (f->raw, "DLQ_RESEND", 1 + (id != NULL));
    zr_enc_kstr (f->raw->enc, "group", group);
    if (id) {
        zr_enc_str (f->raw->enc, "ids");
        zr_enc_array (f->raw->enc, 1);
        zr_enc_str (f->raw->enc, id);
    }
    zrt_reply_t *r = s_call (f);
    zrt_expect (r, "OK", NULL);
    int64_t resent = zrt_int (r->h, "resent");
    zrt_reply_destroy (&r);
    return resent;
}

//  --------------------------------------------------------------------

static void
test_retry_then_dlq (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "orders");
    assert_true (s_produce (f, "orders", "payload") == 0);

    //  1st attempt: 100 ms
    int64_t sent = zclock_mono ();
    s_send_back_ok (f, "g1", "orders", 0, "e1", false, 1, false);
    s_expect_retry (f, "%RETRY%g1", 0, sent, 100, "1", "e1");
    //  2nd, from the retry topic: 200 ms
    sent = zclock_mono ();
    s_send_back_ok (f, "g1", "%RETRY%g1", 0, "e2", false, 2, false);
    s_expect_retry (f, "%RETRY%g1", 1, sent, 200, "2", "e2");
    //  3rd: the last delay repeats
    sent = zclock_mono ();
    s_send_back_ok (f, "g1", "%RETRY%g1", 1, NULL, false, 3, false);
    s_expect_retry (f, "%RETRY%g1", 2, sent, 200, "3", "e2");
    //  4th > max-reconsume 3: dead letter, at once
    s_send_back_ok (f, "g1", "%RETRY%g1", 2, "final", false, 4, true);
    zrt_reply_t *r = s_pull (f, "%DLQ%g1", 0, 0);
    zrt_expect (r, "OK", NULL);
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), 1);
    s_check_msg (zr_obj_at (msgs, 0), zmsg_first (r->msg), "4", "final");
    zrt_reply_destroy (&r);
    //  Nothing more goes to the retry topic
    zrt_expect_free (s_pull (f, "%RETRY%g1", 3, 400), "NO_NEW_MSG", NULL);

    //  DLQ_LIST shows it
    r = s_dlq_list (f, "g1");
    msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), 1);
    assert_int_equal (zmsg_size (r->msg), 1);
    s_check_msg (zr_obj_at (msgs, 0), zmsg_first (r->msg), "4", "final");
    zrt_reply_destroy (&r);
    assert_int_equal (s_dlq_count (f, "other"), 0);

    //  DLQ_RESEND by id: an unknown id resends nothing
    assert_true (s_dlq_resend (f, "g1", "ffffffffffffffffffffffffffffffff")
                 == 0);
    assert_int_equal (s_dlq_count (f, "g1"), 1);
    assert_true (s_dlq_resend (f, "g1", MSG_ID) == 1);
    assert_int_equal (s_dlq_count (f, "g1"), 0);
    r = s_pull (f, "%RETRY%g1", 3, 1000);
    zrt_expect (r, "OK", NULL);
    msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), 1);
    s_check_msg (zr_obj_at (msgs, 0), zmsg_first (r->msg), "0", "final");
    zrt_reply_destroy (&r);
    //  Resent once only
    assert_true (s_dlq_resend (f, "g1", NULL) == 0);

    //  The marks are in the store: still resent after a restart
    s_stop (f);
    s_start (f, SETTINGS);
    assert_int_equal (s_dlq_count (f, "g1"), 0);
}

static void
test_dlq_direct (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "orders");
    assert_true (s_produce (f, "orders", "payload") == 0);
    s_send_back_ok (f, "g2", "orders", 0, "poison", true, 1, true);
    zrt_reply_t *r = s_dlq_list (f, "g2");
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), 1);
    s_check_msg (zr_obj_at (msgs, 0), zmsg_first (r->msg), "1", "poison");
    zrt_reply_destroy (&r);
    //  A second dead letter with the same id is its own entry
    s_send_back_ok (f, "g2", "orders", 0, NULL, true, 1, true);
    assert_int_equal (s_dlq_count (f, "g2"), 2);
    //  Resend all
    assert_true (s_dlq_resend (f, "g2", NULL) == 2);
    assert_int_equal (s_dlq_count (f, "g2"), 0);
    r = s_pull (f, "%RETRY%g2", 0, 1000);
    zrt_expect (r, "OK", NULL);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "msgs")), 2);
    zrt_reply_destroy (&r);
}

static void
test_timer_survives_restart (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_stop (f);
    s_start (f, "retry-delays=700ms");
    s_create (f, "orders");
    assert_true (s_produce (f, "orders", "payload") == 0);
    int64_t sent = zclock_mono ();
    s_send_back_ok (f, "g3", "orders", 0, "e", false, 1, false);
    zrt_expect_free (s_pull (f, "%RETRY%g3", 0, 0), "NO_NEW_MSG", NULL);
    s_stop (f);
    //  Stopped with the timer pending (else this test proves nothing)
    assert_true (zclock_mono () - sent < 700);
    s_start (f, "retry-delays=700ms");
    zrt_reply_t *r = s_pull (f, "%RETRY%g3", 0, 3000);
    zrt_expect (r, "OK", NULL);
    assert_true (zclock_mono () - sent >= 695);
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), 1);
    s_check_msg (zr_obj_at (msgs, 0), zmsg_first (r->msg), "1", "e");
    zrt_reply_destroy (&r);
    //  Exactly once
    zrt_expect_free (s_pull (f, "%RETRY%g3", 1, 300), "NO_NEW_MSG", NULL);
}

static void
test_bad_requests (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "orders");
    assert_true (s_produce (f, "orders", "payload") == 0);
    //  Missing group, bad group, too long for %RETRY%
    zrt_raw_begin (f->raw, "SEND_BACK", 3);
    zr_enc_kstr (f->raw->enc, "topic", "orders");
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kint (f->raw->enc, "offset", 0);
    zrt_expect_free (s_call (f), "MALFORMED", "group");
    zrt_expect_free (s_send_back (f, "bad group", "orders", 0, NULL, false),
                   "BAD_ARGUMENT", "group");
    char longname [ZR_NAME_MAX + 1];
    memset (longname, 'g', ZR_NAME_MAX - 3);
    longname [ZR_NAME_MAX - 3] = 0;
    zrt_expect_free (s_send_back (f, longname, "orders", 0, NULL, false),
                   "BAD_ARGUMENT", "too long");
    //  Missing offset; unknown offset, topic
    zrt_raw_begin (f->raw, "SEND_BACK", 3);
    zr_enc_kstr (f->raw->enc, "group", "g");
    zr_enc_kstr (f->raw->enc, "topic", "orders");
    zr_enc_kint (f->raw->enc, "queue", 0);
    zrt_expect_free (s_call (f), "MALFORMED", "offset");
    zrt_expect_free (s_send_back (f, "g", "orders", 99, NULL, false),
                   "NOT_FOUND", NULL);
    zrt_expect_free (s_send_back (f, "g", "nope", 0, NULL, false),
                   "TOPIC_NOT_FOUND", NULL);
    //  Mistyped error and dlq
    zrt_raw_begin (f->raw, "SEND_BACK", 5);
    zr_enc_kstr (f->raw->enc, "group", "g");
    zr_enc_kstr (f->raw->enc, "topic", "orders");
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kint (f->raw->enc, "offset", 0);
    zr_enc_kint (f->raw->enc, "error", 5);
    zrt_expect_free (s_call (f), "MALFORMED", "error");
    zrt_raw_begin (f->raw, "SEND_BACK", 5);
    zr_enc_kstr (f->raw->enc, "group", "g");
    zr_enc_kstr (f->raw->enc, "topic", "orders");
    zr_enc_kint (f->raw->enc, "queue", 0);
    zr_enc_kint (f->raw->enc, "offset", 0);
    zr_enc_kstr (f->raw->enc, "dlq", "yes");
    zrt_expect_free (s_call (f), "MALFORMED", "dlq");
    //  DLQ commands
    zrt_raw_begin (f->raw, "DLQ_LIST", 0);
    zrt_expect_free (s_call (f), "MALFORMED", "group");
    zrt_raw_begin (f->raw, "DLQ_LIST", 2);
    zr_enc_kstr (f->raw->enc, "group", "g");
    zr_enc_kint (f->raw->enc, "max_count", 0);
    zrt_expect_free (s_call (f), "BAD_ARGUMENT", "max_count");
    zrt_raw_begin (f->raw, "DLQ_RESEND", 2);
    zr_enc_kstr (f->raw->enc, "group", "g");
    zr_enc_kstr (f->raw->enc, "ids", MSG_ID);
    zrt_expect_free (s_call (f), "MALFORMED", "ids");
    zrt_raw_begin (f->raw, "DLQ_RESEND", 2);
    zr_enc_kstr (f->raw->enc, "group", "g");
    zr_enc_str (f->raw->enc, "ids");
    zr_enc_array (f->raw->enc, 1);
    zr_enc_str (f->raw->enc, "xyz");
    zrt_expect_free (s_call (f), "BAD_ARGUMENT", "xyz");
    //  Nothing was scheduled or parked; the broker still serves
    assert_int_equal (s_dlq_count (f, "g"), 0);
    zrt_raw_begin (f->raw, "PING", 0);
    zrt_expect_free (s_call (f), "OK", NULL);
    s_send_back_ok (f, "g", "orders", 0, NULL, false, 1, false);
}

//  Bad retry settings: START fails with a message naming the setting.
static void
test_bad_settings (void **state)
{
    const char *cases [][3] = {
        { "retry-delays", "10s 5x", "retry-delays" },
        { "retry-delays", "  ", "retry-delays" },
        { "retry-delays", "-1s", "retry-delays" },
        { "max-reconsume", "-1", "max-reconsume" },
        { "max-reconsume", "many", "max-reconsume" },
    };
    char *dir = zrt_tempdir ("retrybad");
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        zconfig_t *cfg = zconfig_new ("root", NULL);
        zconfig_put (cfg, "broker/data", dir);
        char *bind = zsys_sprintf ("inproc://retry-bad-%d-%zu",
                                   (int) getpid (), i);
        zconfig_put (cfg, "broker/bind", bind);
        zconfig_put (cfg, "broker/nameserver", "none");
        char *key = zsys_sprintf ("broker/%s", cases [i][0]);
        zconfig_put (cfg, key, cases [i][1]);
        char *err = NULL;
        zactor_t *broker = zr_broker_new (cfg, &err);
        if (broker) {
            zactor_destroy (&broker);
            fail_msg ("%s=%s started", cases [i][0], cases [i][1]);
        }
        assert_non_null (err);
        assert_non_null (strstr (err, cases [i][2]));
        zstr_free (&err);
        zstr_free (&key);
        zstr_free (&bind);
        zconfig_destroy (&cfg);
    }
    zrt_rmrf (dir);
    zstr_free (&dir);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_retry_then_dlq, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_dlq_direct, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_timer_survives_restart,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_requests, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_bad_settings),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
