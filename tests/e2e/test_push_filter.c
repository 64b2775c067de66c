/*  tests/e2e/test_push_filter.c - a push consumer with a broker-side
    filter (protocol sections 11 and 14): a SQL-filtered member of a group
    gets exactly the matching messages, once each; the group's committed
    offsets move past the filtered-out ones, so every queue ends at lag 0
    (committed == max) while the member runs and after it stops; a tag
    filter works the same way; a malformed expression delivers nothing.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <pthread.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define S_QUEUES 4
#define S_COUNT 400

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    char *fabric;
    pthread_mutex_t lock;
    pthread_cond_t cond;        //  signalled per message received
    zhashx_t *got;              //  body -> count
    size_t received;
    size_t bad;                 //  messages that should not have come
    int mode;                   //  0: sql filter, 1: tag filter
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("pushfilter");
    f->broker = zrt_broker_start (f->dir, "tcp://127.0.0.1:*", NULL,
                                  &f->endpoint);
    assert_non_null (f->endpoint);
    f->fabric = zsys_sprintf ("broker:%s", f->endpoint);
    pthread_mutex_init (&f->lock, NULL);
    pthread_cond_init (&f->cond, NULL);
    f->got = zhashx_new ();
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zactor_destroy (&f->broker);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    zstr_free (&f->endpoint);
    zstr_free (&f->fabric);
    zhashx_destroy (&f->got);
    pthread_cond_destroy (&f->cond);
    pthread_mutex_destroy (&f->lock);
    free (f);
    return 0;
}

//  Message i: n = i except when i % 7 == 0 (no n); color red when
//  i % 5 == 0; tag A when i % 3 == 0, else B.
static bool
s_sql_match (int i)
{
    //  n > 300 OR (color = 'red' AND n < 50)
    if (i % 7 == 0)
        return false;           //  UNKNOWN both sides
    return i > 300 || (i % 5 == 0 && i < 50);
}

static bool
s_tag_match (int i)
{
    return i % 3 == 0;
}

static zr_consume_result_t
s_handler (zr_message_t *msg, void *arg)
{
    fixture_t *f = (fixture_t *) arg;
    char body [32];
    size_t size = zr_message_size (msg);
    if (size >= sizeof body)
        size = sizeof body - 1;
    memcpy (body, zr_message_body (msg), size);
    body [size] = 0;
    int i = atoi (body + 2);
    pthread_mutex_lock (&f->lock);
    bool want = f->mode == 0 ? s_sql_match (i) : s_tag_match (i);
    if (!want)
        f->bad++;
    zhashx_update (f->got, body, (void *) ((uintptr_t)
                   zhashx_lookup (f->got, body) + 1));
    f->received++;
    pthread_cond_broadcast (&f->cond);
    pthread_mutex_unlock (&f->lock);
    return ZR_CONSUME_SUCCESS;
}

static void
s_fill (fixture_t *f, const char *topic)
{
    zr_client_t *c = zr_client_new (f->endpoint);
    zr_enc_t *e = zr_client_begin (c, "TOPIC_CREATE", 2);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queues", S_QUEUES);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 3000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    zr_client_destroy (&c);

    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    for (int i = 0; i < S_COUNT; i++) {
        char body [32], n [16];
        snprintf (body, sizeof body, "m-%d", i);
        zr_message_t *msg = zr_message_new (topic, body, strlen (body));
        zr_message_set_queue (msg, i % S_QUEUES);
        zr_message_set_tags (msg, i % 3 == 0 ? "A" : "B");
        if (i % 7) {
            snprintf (n, sizeof n, "%d", i);
            zr_message_set_prop (msg, "n", n);
        }
        zr_message_set_prop (msg, "color", i % 5 == 0 ? "red" : "blue");
        zr_send_result_t result;
        assert_int_equal (zr_producer_send (producer, msg, &result), 0);
        zr_message_destroy (&msg);
    }
    zr_producer_destroy (&producer);
}

//  Waits up to timeout_ms for want messages; returns how many came.
static size_t
s_wait_received (fixture_t *f, size_t want, int timeout_ms)
{
    int64_t until = zclock_time () + timeout_ms;
    pthread_mutex_lock (&f->lock);
    while (f->received < want && zclock_time () < until) {
        struct timespec ts;
        int64_t next = zclock_time () + 100;
        ts.tv_sec = next / 1000;
        ts.tv_nsec = (next % 1000) * 1000000;
        pthread_cond_timedwait (&f->cond, &f->lock, &ts);
    }
    size_t n = f->received;
    pthread_mutex_unlock (&f->lock);
    return n;
}

static size_t
s_received (fixture_t *f)
{
    pthread_mutex_lock (&f->lock);
    size_t n = f->received;
    pthread_mutex_unlock (&f->lock);
    return n;
}

//  True when the group's committed offset of every queue is its max.
static bool
s_lag_zero (fixture_t *f, zr_consumer_t *c, const char *group,
            const char *topic)
{
    for (int q = 0; q < S_QUEUES; q++) {
        int64_t min, max, committed = -1;
        assert_int_equal (zr_consumer_queue_offsets (c, topic, q, &min,
                                                     &max), 0);
        assert_true (max > 0);
        assert_int_equal (zr_consumer_committed (c, group, topic, q,
                                                 &committed), 0);
        if (committed != max)
            return false;
    }
    (void) f;
    return true;
}

static void
s_run (fixture_t *f, const char *topic, const char *group, const char *type,
       const char *expr, size_t want)
{
    s_fill (f, topic);
    zr_push_consumer_t *pc = zr_push_consumer_new (f->fabric, group);
    assert_non_null (pc);
    assert_int_equal (zr_push_consumer_set_from (pc, "first"), 0);
    assert_int_equal (zr_push_consumer_subscribe_filtered (pc, topic, type,
                                                           expr), 0);
    char *err = NULL;
    if (zr_push_consumer_start (pc, s_handler, f, &err))
        fail_msg ("start: %s", err ? err : "?");
    assert_int_equal (s_wait_received (f, want, 20000), want);

    //  Committed offsets move past the filtered-out tail of every queue:
    //  checked after zr_push_consumer_stop (which commits), below.
    zr_consumer_t *c = zr_consumer_new (f->endpoint);
    assert_non_null (c);

    //  GROUP_STATUS shows the member's subscription (HEARTBEAT
    //  subscriptions)
    zr_client_t *client = zr_client_new (f->endpoint);
    zr_enc_t *e = zr_client_begin (client, "GROUP_STATUS", 1);
    zr_enc_kstr (e, "group", group);
    zr_reply_t *r = zr_client_call (client, NULL, 0, 3000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    const zr_obj_t *members = zr_obj_get (zr_reply_header (r), "members");
    assert_int_equal (zr_obj_size (members), 1);
    const zr_obj_t *subs = zr_obj_get (zr_obj_at (members, 0),
                                       "subscriptions");
    assert_int_equal (zr_obj_size (subs), 1);
    char buf [256];
    assert_int_equal (zr_field_strbuf (zr_obj_at (subs, 0), "topic", buf,
                                       sizeof buf), ZR_FIELD_OK);
    assert_string_equal (buf, topic);
    assert_int_equal (zr_field_strbuf (zr_obj_at (subs, 0), "filter_type",
                                       buf, sizeof buf), ZR_FIELD_OK);
    assert_string_equal (buf, type);
    assert_int_equal (zr_field_strbuf (zr_obj_at (subs, 0), "filter", buf,
                                       sizeof buf), ZR_FIELD_OK);
    assert_string_equal (buf, expr);
    zr_reply_destroy (&r);

    //  A HEARTBEAT with a malformed subscription is refused, with the
    //  position
    e = zr_client_begin (client, "HEARTBEAT", 4);
    zr_enc_kstr (e, "group", group);
    zr_enc_kstr (e, "client_id", "intruder");
    zr_enc_str (e, "topics");
    zr_enc_array (e, 1);
    zr_enc_str (e, topic);
    zr_enc_str (e, "subscriptions");
    zr_enc_array (e, 1);
    zr_enc_map (e, 3);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kstr (e, "filter_type", "sql");
    zr_enc_kstr (e, "filter", "a = ");
    r = zr_client_call (client, NULL, 0, 3000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    int64_t position = 0;
    assert_int_equal (zr_field_int (zr_reply_header (r), "position",
                                    &position), ZR_FIELD_OK);
    assert_int_equal (position, 5);
    zr_reply_destroy (&r);
    zr_client_destroy (&client);

    zr_push_consumer_stop (pc);
    assert_true (s_lag_zero (f, c, group, topic));
    zr_consumer_destroy (&c);
    zr_push_consumer_destroy (&pc);

    //  Exactly the matching ones, once each
    assert_int_equal (f->bad, 0);
    assert_int_equal (f->received, want);
    assert_int_equal (zhashx_size (f->got), want);
}

static void
test_sql_filter (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    size_t want = 0;
    for (int i = 0; i < S_COUNT; i++)
        want += s_sql_match (i);
    assert_true (want > 50 && want < S_COUNT / 2);
    f->mode = 0;
    s_run (f, "pfsql", "gsql", "sql", "n > 300 OR (color = 'red' AND n < 50)",
           want);
}

static void
test_tag_filter (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    size_t want = 0;
    for (int i = 0; i < S_COUNT; i++)
        want += s_tag_match (i);
    f->mode = 1;
    s_run (f, "pftag", "gtag", "tag", "A || C", want);
}

static void
test_bad_filter (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  A bad type is refused locally; a malformed expression is refused
    //  by the broker at HEARTBEAT (and at every PULL), so the member
    //  never joins and nothing is delivered
    zr_push_consumer_t *pc = zr_push_consumer_new (f->fabric, "gbad");
    assert_non_null (pc);
    assert_int_equal (zr_push_consumer_subscribe_filtered (pc, "pfbad",
                                                           "xpath", "a"), -1);
    s_fill (f, "pfbad");
    assert_int_equal (zr_push_consumer_set_from (pc, "first"), 0);
    assert_int_equal (zr_push_consumer_subscribe_filtered (pc, "pfbad",
                                                           "sql", "n > "), 0);
    char *err = NULL;
    if (zr_push_consumer_start (pc, s_handler, f, &err))
        fail_msg ("start: %s", err ? err : "?");
    //  Meanwhile an unfiltered pull sees the messages: they are there
    zr_consumer_t *c = zr_consumer_new (f->endpoint);
    zr_pull_t *pull = zr_consumer_pull (c, "pfbad", 0, 0, 8, 0);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 8);
    zr_pull_destroy (&pull);
    assert_int_equal (zr_consumer_set_filter (c, "sql", "n > "), 0);
    pull = zr_consumer_pull (c, "pfbad", 0, 0, 8, 0);
    assert_int_equal (zr_pull_status (pull), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_pull_reason (pull), "position 5"));
    zr_pull_destroy (&pull);
    zr_consumer_destroy (&c);
    zr_push_consumer_stop (pc);
    zr_push_consumer_destroy (&pc);
    assert_int_equal (s_received (f), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_sql_filter, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_tag_filter, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_filter, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
