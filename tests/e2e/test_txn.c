/*  tests/e2e/test_txn.c - transactional messages on a real broker
    (docs/protocol.md section 13) through zr_tx_producer_t: commit makes
    the message visible exactly once, rollback never; a half message is
    invisible to PULL; check-back commits a transaction left UNKNOWN; a
    producer that goes silent is replaced by another member of its group;
    with no member the transaction is rolled back after txn-max-checks
    checks (stats count it); END_TXN with an unknown or resolved id is
    NOT_FOUND; bad END_TXN fields; a half message survives a restart.

    Timing test. ctest: RUN_SERIAL
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define SETTINGS "auto-create=true;default-queues=1;txn-check-ms=200;" \
                 "txn-max-checks=3;producer-expiry-ms=600"
#define WAIT_MS 5000

static int s_seq = 0;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    zr_consumer_t *consumer;
    char topic [64];
    char group [64];
    const char *settings;
} fixture_t;

static void
s_start (fixture_t *f)
{
    char *bind = zsys_sprintf ("inproc://txn-test-%d-%d", (int) getpid (),
                               ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, f->settings, &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->broker);
    f->consumer = zr_consumer_new (f->endpoint);
    assert_non_null (f->consumer);
}

static void
s_stop (fixture_t *f)
{
    zr_consumer_destroy (&f->consumer);
    zactor_destroy (&f->broker);
    zstr_free (&f->endpoint);
}

static int
s_setup_with (void **state, const char *settings)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("txntest");
    f->settings = settings;
    s_start (f);
    snprintf (f->topic, sizeof f->topic, "txn-topic-%d", ++s_seq);
    snprintf (f->group, sizeof f->group, "txn-group-%d", ++s_seq);
    *state = f;
    return 0;
}

static int
s_setup (void **state)
{
    return s_setup_with (state, SETTINGS);
}

//  Checks far away: a half message waits for its END_TXN.
static int
s_setup_slow (void **state)
{
    return s_setup_with (state, "auto-create=true;default-queues=1;"
                         "txn-check-ms=60000");
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

//  A broker stat from the STATS pipe command (JSON), -1 when absent.
static int64_t
s_stat (fixture_t *f, const char *name)
{
    zstr_send (f->broker, "STATS");
    char *status = NULL, *json = NULL;
    zstr_recvx (f->broker, &status, &json, NULL);
    int64_t value = -1;
    char *key = zsys_sprintf ("\"%s\":", name);
    char *at = json ? strstr (json, key) : NULL;
    if (at)
        value = strtoll (at + strlen (key), NULL, 10);
    zstr_free (&key);
    zstr_free (&status);
    zstr_free (&json);
    return value;
}

//  Pulls queue 0 from offset with a wait; returns the pull (caller
//  destroys).
static zr_pull_t *
s_pull (fixture_t *f, int64_t offset, int wait_ms)
{
    zr_pull_t *p = zr_consumer_pull (f->consumer, f->topic, 0, offset, 32,
                                     wait_ms);
    assert_non_null (p);
    return p;
}

typedef struct {
    zr_txn_state_t execute;
    zr_txn_state_t check;
    int executed;
    int checked;                //  atomic: the check runs in another thread
} listener_t;

static zr_txn_state_t
s_execute (zr_message_t *msg, void *arg)
{
    listener_t *l = (listener_t *) arg;
    assert_non_null (zr_message_prop (msg, "TXN_ID"));
    l->executed++;
    return l->execute;
}

static zr_txn_state_t
s_check (zr_message_t *msg, void *arg)
{
    listener_t *l = (listener_t *) arg;
    //  The check sees the message as sent (no cmocka asserts here: this
    //  is the producer's thread).
    if (zr_message_size (msg) == 5 && memcmp (zr_message_body (msg),
                                              "hello", 5) == 0
    &&  zr_message_prop (msg, "k")
    &&  streq (zr_message_prop (msg, "k"), "v"))
        __atomic_add_fetch (&l->checked, 1, __ATOMIC_SEQ_CST);
    else
        __atomic_add_fetch (&l->checked, 1000, __ATOMIC_SEQ_CST);
    return l->check;
}

static zr_tx_producer_t *
s_producer (fixture_t *f, listener_t *l)
{
    zr_tx_producer_t *p = zr_tx_producer_new (f->endpoint, f->group);
    assert_non_null (p);
    zr_tx_producer_set_listener (p, s_execute, s_check, l);
    return p;
}

static int
s_send (fixture_t *f, zr_tx_producer_t *p, zr_send_result_t *result,
        zr_txn_state_t *state)
{
    zr_message_t *msg = zr_message_new (f->topic, "hello", 5);
    zr_message_set_prop (msg, "k", "v");
    zr_message_set_tags (msg, "TagA");
    int rc = zr_tx_producer_send (p, msg, result, state);
    zr_message_destroy (&msg);
    return rc;
}

static void
test_commit_visible_once (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    listener_t l = { ZR_TXN_COMMIT, ZR_TXN_UNKNOWN, 0, 0 };
    zr_tx_producer_t *p = s_producer (f, &l);
    zr_send_result_t r;
    zr_txn_state_t st;
    assert_int_equal (s_send (f, p, &r, &st), 0);
    assert_int_equal (st, ZR_TXN_COMMIT);
    assert_int_equal (l.executed, 1);
    assert_int_equal (r.queue, 0);
    assert_int_equal (r.offset, 0);
    zr_pull_t *pull = s_pull (f, 0, 0);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 1);
    zr_message_t *m = zr_pull_message (pull, 0);
    assert_string_equal (zr_message_prop (m, "k"), "v");
    assert_string_equal (zr_message_tags (m), "TagA");
    assert_string_equal (zr_message_id (m), r.msg_id);
    assert_int_equal (zr_pull_max (pull), 1);
    zr_pull_destroy (&pull);
    assert_int_equal (s_stat (f, "txn_committed"), 1);
    assert_int_equal (s_stat (f, "txn_half_pending"), 0);
    zr_tx_producer_destroy (&p);
}

static void
test_rollback_never_visible (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    listener_t l = { ZR_TXN_ROLLBACK, ZR_TXN_COMMIT, 0, 0 };
    zr_tx_producer_t *p = s_producer (f, &l);
    zr_txn_state_t st;
    assert_int_equal (s_send (f, p, NULL, &st), 0);
    assert_int_equal (st, ZR_TXN_ROLLBACK);
    assert_int_equal (s_stat (f, "txn_rolled_back"), 1);
    //  Longer than a check period: nothing comes, no check is sent
    zr_pull_t *pull = s_pull (f, 0, 600);
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    assert_int_equal (zr_pull_max (pull), 0);
    zr_pull_destroy (&pull);
    assert_int_equal (__atomic_load_n (&l.checked, __ATOMIC_SEQ_CST), 0);
    zr_tx_producer_destroy (&p);
}

static void
test_check_back_commits (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    listener_t l = { ZR_TXN_UNKNOWN, ZR_TXN_COMMIT, 0, 0 };
    zr_tx_producer_t *p = s_producer (f, &l);
    zr_txn_state_t st;
    assert_int_equal (s_send (f, p, NULL, &st), 0);
    assert_int_equal (st, ZR_TXN_UNKNOWN);
    //  Invisible before the check
    zr_pull_t *pull = s_pull (f, 0, 0);
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    assert_int_equal (zr_pull_max (pull), 0);
    zr_pull_destroy (&pull);
    assert_int_equal (s_stat (f, "txn_half_pending"), 1);
    //  The check commits it: the long poll returns it
    int64_t start = zclock_mono ();
    pull = s_pull (f, 0, WAIT_MS);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 1);
    zr_pull_destroy (&pull);
    assert_true (zclock_mono () - start >= 150);
    assert_int_equal (__atomic_load_n (&l.checked, __ATOMIC_SEQ_CST), 1);
    assert_true (s_stat (f, "txn_checks_sent") >= 1);
    zr_tx_producer_destroy (&p);
}

static void
test_silent_producer_replaced (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    listener_t silent = { ZR_TXN_UNKNOWN, ZR_TXN_UNKNOWN, 0, 0 };
    zr_tx_producer_t *a = s_producer (f, &silent);
    assert_int_equal (s_send (f, a, NULL, NULL), 0);
    zr_tx_producer_destroy (&a);
    listener_t l = { ZR_TXN_COMMIT, ZR_TXN_COMMIT, 0, 0 };
    zr_tx_producer_t *b = s_producer (f, &l);
    zr_pull_t *pull = s_pull (f, 0, WAIT_MS);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 1);
    zr_pull_destroy (&pull);
    assert_int_equal (__atomic_load_n (&l.checked, __ATOMIC_SEQ_CST), 1);
    assert_int_equal (silent.checked, 0);
    zr_tx_producer_destroy (&b);
}

static void
test_no_answer_rolls_back (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    listener_t l = { ZR_TXN_UNKNOWN, ZR_TXN_UNKNOWN, 0, 0 };
    zr_tx_producer_t *p = s_producer (f, &l);
    assert_int_equal (s_send (f, p, NULL, NULL), 0);
    //  3 checks at 200 ms, then the rollback at ~800 ms
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_stat (f, "txn_rolled_back_timeout") < 1
    &&     zclock_mono () < deadline) {
        zr_pull_t *pull = s_pull (f, 0, 100);
        assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
        zr_pull_destroy (&pull);
    }
    assert_int_equal (s_stat (f, "txn_rolled_back_timeout"), 1);
    assert_int_equal (s_stat (f, "txn_half_pending"), 0);
    //  Three checks, each sent to the member and each seen by its check
    //  callback. (The producer heartbeats every expiry / 3 as the broker
    //  says in its first reply; it used to keep its 1 s default until
    //  its second heartbeat, so with producer-expiry-ms=600 the broker
    //  dropped the member before the third check under load.) The last
    //  callback runs in the producer's thread: wait for it.
    assert_int_equal (s_stat (f, "txn_checks_sent"), 3);
    assert_int_equal (s_stat (f, "txn_checks_no_member"), 0);
    deadline = zclock_mono () + WAIT_MS;
    while (__atomic_load_n (&l.checked, __ATOMIC_SEQ_CST) < 3
    &&     zclock_mono () < deadline) {
        zr_pull_t *pull = s_pull (f, 0, 50);
        assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
        zr_pull_destroy (&pull);
    }
    assert_int_equal (__atomic_load_n (&l.checked, __ATOMIC_SEQ_CST), 3);
    zr_pull_t *pull = s_pull (f, 0, 0);
    assert_int_equal (zr_pull_max (pull), 0);
    zr_pull_destroy (&pull);
    zr_tx_producer_destroy (&p);
}

//  Sends END_TXN raw; returns the reply (caller destroys).
static zr_reply_t *
s_end_txn (zr_client_t *c, const char *txn_id, const char *group,
           const char *action)
{
    zr_enc_t *e = zr_client_begin (c, "END_TXN", 3);
    zr_enc_kstr (e, "txn_id", txn_id);
    zr_enc_kstr (e, "producer_group", group);
    zr_enc_kstr (e, "action", action);
    zr_reply_t *r = zr_client_call (c, NULL, 0, WAIT_MS);
    assert_non_null (r);
    return r;
}

static void
test_bad_end_txn (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_client_t *c = zr_client_new (f->endpoint);
    zr_reply_t *r = s_end_txn (c, "0123456789abcdef0123456789abcdef",
                               f->group, "commit");
    assert_int_equal (zr_reply_status (r), ZR_NOT_FOUND);
    assert_non_null (strstr (zr_reply_reason (r), "unknown transaction"));
    zr_reply_destroy (&r);
    r = s_end_txn (c, "nonsense", f->group, "commit");
    assert_int_equal (zr_reply_status (r), ZR_NOT_FOUND);
    zr_reply_destroy (&r);
    //  A real one: wrong group, bad action, then resolved twice
    listener_t l = { ZR_TXN_UNKNOWN, ZR_TXN_UNKNOWN, 0, 0 };
    zr_tx_producer_t *p = s_producer (f, &l);
    zr_message_t *msg = zr_message_new (f->topic, "hello", 5);
    assert_int_equal (zr_tx_producer_send (p, msg, NULL, NULL), 0);
    char txn_id [64];
    snprintf (txn_id, sizeof txn_id, "%s", zr_message_prop (msg, "TXN_ID"));
    zr_message_destroy (&msg);
    r = s_end_txn (c, txn_id, "other-group", "commit");
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    zr_reply_destroy (&r);
    r = s_end_txn (c, txn_id, f->group, "maybe");
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    zr_reply_destroy (&r);
    zr_enc_t *e = zr_client_begin (c, "END_TXN", 1);
    zr_enc_kint (e, "txn_id", 42);
    r = zr_client_call (c, NULL, 0, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_MALFORMED);
    zr_reply_destroy (&r);
    r = s_end_txn (c, txn_id, f->group, "rollback");
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    r = s_end_txn (c, txn_id, f->group, "commit");
    assert_int_equal (zr_reply_status (r), ZR_NOT_FOUND);
    assert_non_null (strstr (zr_reply_reason (r), "already resolved"));
    zr_reply_destroy (&r);
    //  Bad heartbeat and a txn flag of the wrong type
    e = zr_client_begin (c, "PRODUCER_HEARTBEAT", 1);
    zr_enc_kstr (e, "producer_group", "bad name!");
    r = zr_client_call (c, NULL, 0, WAIT_MS);
    assert_non_null (r);
    assert_int_not_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    e = zr_client_begin (c, "SEND", 2);
    zr_enc_kstr (e, "topic", f->topic);
    zr_enc_kstr (e, "txn", "yes");
    r = zr_client_call (c, "x", 1, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_MALFORMED);
    zr_reply_destroy (&r);
    e = zr_client_begin (c, "SEND", 2);
    zr_enc_kstr (e, "topic", f->topic);
    zr_enc_kbool (e, "txn", true);
    r = zr_client_call (c, "x", 1, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_MALFORMED);   //  no group
    zr_reply_destroy (&r);
    //  Nothing became visible
    zr_pull_t *pull = s_pull (f, 0, 0);
    assert_int_equal (zr_pull_max (pull), 0);
    zr_pull_destroy (&pull);
    zr_tx_producer_destroy (&p);
    zr_client_destroy (&c);
}

static void
test_half_survives_restart (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_client_t *c = zr_client_new (f->endpoint);
    zr_enc_t *e = zr_client_begin (c, "SEND", 3);
    zr_enc_kstr (e, "topic", f->topic);
    zr_enc_kbool (e, "txn", true);
    zr_enc_kstr (e, "producer_group", f->group);
    zr_reply_t *r = zr_client_call (c, "kept", 4, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_SEND_OK);
    char txn_id [64] = "";
    assert_int_equal (zr_field_strbuf (zr_reply_header (r), "txn_id",
                                       txn_id, sizeof txn_id), 0);
    zr_reply_destroy (&r);
    zr_client_destroy (&c);
    s_stop (f);
    s_start (f);
    assert_int_equal (s_stat (f, "txn_half_pending"), 1);
    c = zr_client_new (f->endpoint);
    r = s_end_txn (c, txn_id, f->group, "commit");
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    zr_client_destroy (&c);
    zr_pull_t *pull = s_pull (f, 0, 0);
    assert_int_equal (zr_pull_count (pull), 1);
    assert_int_equal (zr_message_size (zr_pull_message (pull, 0)), 4);
    zr_pull_destroy (&pull);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_commit_visible_once,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_rollback_never_visible,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_check_back_commits,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_silent_producer_replaced,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_no_answer_rolls_back,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_end_txn,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_half_survives_restart,
                                         s_setup_slow, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
