/*  tests/e2e/test_delay.c - delayed and scheduled messages on a real
    broker (docs/protocol.md section 12): many delays (50..1500 ms) in
    one run under send load, each visible no earlier than its due time
    and within LATE_BOUND ms after (p50/p99 printed); deliver_at (future
    and past); delay levels; an explicit queue and a shard honoured at
    delivery; max-delay and bad fields refused with BAD_ARGUMENT or
    MALFORMED; timers survive a broker restart on the same directory.

    Timing test. ctest: RUN_SERIAL
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define TIMEOUT 5000
//  Documented bound (protocol.md section 12): visible at most this many
//  ms after the due time. The scheduler wakes at the due time, so this
//  is the store commit plus the long-poll answer, with a wide margin.
#define LATE_BOUND 250
#define SETTINGS "max-delay=1h"

static int s_seq = 0;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    zr_client_t *client;
    zr_producer_t *producer;
    zr_consumer_t *consumer;
} fixture_t;

static void
s_start (fixture_t *f)
{
    char *bind = zsys_sprintf ("inproc://delay-test-%d-%d", (int) getpid (),
                               ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, SETTINGS, &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->broker);
    f->client = zr_client_new (f->endpoint);
    f->producer = zr_producer_new (f->endpoint);
    f->consumer = zr_consumer_new (f->endpoint);
    assert_non_null (f->client);
    assert_non_null (f->producer);
    assert_non_null (f->consumer);
    zr_producer_set_timeout (f->producer, TIMEOUT);
}

static void
s_stop (fixture_t *f)
{
    zr_consumer_destroy (&f->consumer);
    zr_producer_destroy (&f->producer);
    zr_client_destroy (&f->client);
    zactor_destroy (&f->broker);
    zstr_free (&f->endpoint);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("delaytest");
    s_start (f);
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

static void
s_create (fixture_t *f, const char *topic, int queues)
{
    zr_enc_t *enc = zr_client_begin (f->client, "TOPIC_CREATE", 2);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queues", queues);
    zr_reply_t *reply = zr_client_call (f->client, NULL, 0, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_OK);
    zr_reply_destroy (&reply);
}

//  Sends a delayed message with the C API; returns its deliver_at.
static int64_t
s_send_delayed (fixture_t *f, const char *topic, const char *body,
                int64_t delay_ms, char *id)
{
    zr_message_t *msg = zr_message_new (topic, body, strlen (body));
    zr_message_set_delay (msg, delay_ms);
    zr_send_result_t r;
    int64_t before = zclock_time ();
    int rc = zr_producer_send (f->producer, msg, &r);
    int64_t after = zclock_time ();
    zr_message_destroy (&msg);
    if (rc)
        fail_msg ("delayed send: %s %s", zr_status_str (r.status), r.reason);
    assert_int_equal (r.status, ZR_SEND_OK);
    assert_int_equal (r.queue, -1);
    assert_true (r.offset == -1);
    assert_string_equal (r.store_id, "");
    assert_true (r.deliver_at >= before + delay_ms);
    assert_true (r.deliver_at <= after + delay_ms);
    if (id)
        strcpy (id, r.msg_id);
    return r.deliver_at;
}

//  Pulls one message from (topic, queue) at *offset, waiting up to
//  wait_ms; returns it (caller destroys) or NULL.
static zr_message_t *
s_pull_one (fixture_t *f, const char *topic, int queue, int64_t *offset,
            int wait_ms)
{
    zr_pull_t *pull = zr_consumer_pull (f->consumer, topic, queue, *offset,
                                        1, wait_ms);
    assert_non_null (pull);
    zr_message_t *msg = NULL;
    if (zr_pull_status (pull) == ZR_OK && zr_pull_count (pull) == 1) {
        zr_message_t *m = zr_pull_message (pull, 0);
        msg = zr_message_new (zr_message_topic (m), zr_message_body (m),
                              zr_message_size (m));
        zr_message_set_id (msg, zr_message_id (m));
        const char *at = zr_message_prop (m, "DELIVER_AT");
        if (at)
            zr_message_set_prop (msg, "DELIVER_AT", at);
        *offset = zr_pull_next (pull);
    }
    else
    if (zr_pull_status (pull) != ZR_OK && zr_pull_status (pull) != ZR_NO_NEW_MSG)
        fail_msg ("pull: %s %s", zr_status_str (zr_pull_status (pull)),
                  zr_pull_reason (pull));
    zr_pull_destroy (&pull);
    return msg;
}

static int
s_cmp64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

static void
s_load_cb (const zr_send_result_t *result, void *arg)
{
    (*(int *) arg)++;
}

//  Many delays 50..1500 ms in one run, under a stream of plain sends:
//  each message visible no earlier than due and within LATE_BOUND after.
static void
test_many_delays (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "dly", 1);
    s_create (f, "load", 4);
    enum { N = 300 };
    int64_t due [N];
    for (int i = 0; i < N; i++) {
        char body [16];
        snprintf (body, sizeof body, "%d", i);
        int64_t delay = 50 + (int64_t) ((i * 977) % 1451);
        due [i] = s_send_delayed (f, "dly", body, delay, NULL);
    }
    int64_t late [N];
    bool seen [N];
    memset (seen, 0, sizeof seen);
    int got = 0, load_done = 0, load_sent = 0;
    int64_t offset = 0;
    int64_t end = zclock_mono () + 10000;
    zr_message_t *load = zr_message_new ("load", "x", 1);
    while (got < N && zclock_mono () < end) {
        //  Load: a burst of async sends between pulls.
        for (int k = 0; k < 20; k++, load_sent++)
            zr_producer_send_async (f->producer, load, s_load_cb,
                                    &load_done);
        zr_producer_poll (f->producer, 0);
        zr_message_t *msg = s_pull_one (f, "dly", 0, &offset, 50);
        if (!msg)
            continue;
        int64_t now = zclock_time ();
        char body [16];
        snprintf (body, sizeof body, "%.*s", (int) zr_message_size (msg),
                  (const char *) zr_message_body (msg));
        int i = atoi (body);
        assert_true (i >= 0 && i < N);
        assert_false (seen [i]);
        seen [i] = true;
        const char *at = zr_message_prop (msg, "DELIVER_AT");
        assert_non_null (at);
        assert_true (atoll (at) == due [i]);
        if (now < due [i])
            fail_msg ("message %d visible %" PRId64 " ms before due", i,
                      due [i] - now);
        late [got++] = now - due [i];
        zr_message_destroy (&msg);
    }
    zr_message_destroy (&load);
    zr_producer_flush (f->producer, TIMEOUT);
    assert_int_equal (got, N);
    assert_int_equal (load_done, load_sent);
    qsort (late, N, sizeof late [0], s_cmp64);
    int64_t p50 = late [N / 2], p99 = late [N * 99 / 100],
            max = late [N - 1];
    printf ("delay lateness over %d messages (50..1500 ms) with %d plain "
            "sends as load: p50 %" PRId64 " ms, p99 %" PRId64 " ms, max %"
            PRId64 " ms\n", N, load_sent, p50, p99, max);
    if (max > LATE_BOUND)
        fail_msg ("a message was visible %" PRId64 " ms after due, bound "
                  "%d", max, LATE_BOUND);
}

//  deliver_at in the future and in the past; delay levels.
static void
test_deliver_at_and_levels (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "at", 1);
    int64_t now = zclock_time ();
    zr_message_t *msg = zr_message_new ("at", "future", 6);
    zr_message_set_deliver_at (msg, now + 400);
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    assert_true (r.deliver_at == now + 400);
    zr_message_destroy (&msg);
    msg = zr_message_new ("at", "past", 4);
    zr_message_set_deliver_at (msg, now - 60000);
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    assert_true (r.deliver_at >= now);
    zr_message_destroy (&msg);
    //  The past one comes first, at once; the future one at its time.
    int64_t offset = 0;
    msg = s_pull_one (f, "at", 0, &offset, 2000);
    assert_non_null (msg);
    assert_memory_equal (zr_message_body (msg), "past", 4);
    assert_true (zclock_time () < now + 400);
    zr_message_destroy (&msg);
    msg = s_pull_one (f, "at", 0, &offset, 2000);
    assert_non_null (msg);
    assert_memory_equal (zr_message_body (msg), "future", 6);
    assert_true (zclock_time () >= now + 400);
    zr_message_destroy (&msg);

    //  Level 1 = 1s; level 17 = 1h is within max-delay=1h; 18 = 2h is not.
    msg = zr_message_new ("at", "lvl", 3);
    zr_message_set_delay_level (msg, 1);
    now = zclock_time ();
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    assert_true (r.deliver_at >= now + 1000 && r.deliver_at <= now + 1100);
    zr_message_set_delay_level (msg, 17);
    now = zclock_time ();
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    assert_true (r.deliver_at >= now + 3600000);
    zr_message_set_delay_level (msg, 18);
    assert_int_equal (zr_producer_send (f->producer, msg, &r), -1);
    assert_int_equal (r.status, ZR_BAD_ARGUMENT);
    assert_non_null (strstr (r.reason, "max-delay (1h"));
    zr_message_set_delay_level (msg, 19);
    assert_int_equal (zr_producer_send (f->producer, msg, &r), -1);
    assert_int_equal (r.status, ZR_BAD_ARGUMENT);
    assert_non_null (strstr (r.reason, "delay_level must be 1..18"));
    zr_message_set_delay_level (msg, 0);
    assert_int_equal (zr_producer_send (f->producer, msg, &r), -1);
    assert_int_equal (r.status, ZR_BAD_ARGUMENT);
    zr_message_destroy (&msg);
    msg = s_pull_one (f, "at", 0, &offset, 2000);
    assert_non_null (msg);
    assert_true (zclock_time () >= now + 1000 - 100);
    assert_memory_equal (zr_message_body (msg), "lvl", 3);
    zr_message_destroy (&msg);
}

//  Sends a raw SEND with one extra int field (or two) and returns the
//  reply's status; reason copied into why.
static zr_status_t
s_raw_send (fixture_t *f, const char *k1, int64_t v1, const char *k2,
            int64_t v2, char *why)
{
    zr_enc_t *enc = zr_client_begin (f->client, "SEND", k2 ? 3 : 2);
    zr_enc_kstr (enc, "topic", "raw");
    zr_enc_kint (enc, k1, v1);
    if (k2)
        zr_enc_kint (enc, k2, v2);
    zr_reply_t *reply = zr_client_call (f->client, "b", 1, TIMEOUT);
    assert_non_null (reply);
    zr_status_t status = zr_reply_status (reply);
    snprintf (why, 512, "%s", zr_reply_reason (reply));
    zr_reply_destroy (&reply);
    return status;
}

static void
test_bad_input (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "raw", 1);
    char why [512];
    int64_t now = zclock_time ();
    assert_int_equal (s_raw_send (f, "delay_ms", -5, NULL, 0, why),
                      ZR_BAD_ARGUMENT);
    assert_non_null (strstr (why, "delay_ms must be >= 0"));
    assert_int_equal (s_raw_send (f, "delay_ms", 7200000, NULL, 0, why),
                      ZR_BAD_ARGUMENT);
    assert_non_null (strstr (why, "max-delay (1h, 3600000 ms)"));
    assert_int_equal (s_raw_send (f, "deliver_at", now + 7200000, NULL, 0,
                                  why), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (why, "max-delay"));
    assert_int_equal (s_raw_send (f, "deliver_at", -1, NULL, 0, why),
                      ZR_BAD_ARGUMENT);
    assert_int_equal (s_raw_send (f, "delay_ms", 10, "delay_level", 1, why),
                      ZR_BAD_ARGUMENT);
    assert_non_null (strstr (why, "at most one"));
    assert_int_equal (s_raw_send (f, "delay_ms", INT64_MAX, NULL, 0, why),
                      ZR_BAD_ARGUMENT);
    //  Wrong type.
    zr_enc_t *enc = zr_client_begin (f->client, "SEND", 2);
    zr_enc_kstr (enc, "topic", "raw");
    zr_enc_kstr (enc, "delay_ms", "30s");
    zr_reply_t *reply = zr_client_call (f->client, "b", 1, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_MALFORMED);
    assert_non_null (strstr (zr_reply_reason (reply), "delay_ms"));
    zr_reply_destroy (&reply);
    //  Bad props in a delayed send.
    enc = zr_client_begin (f->client, "SEND", 3);
    zr_enc_kstr (enc, "topic", "raw");
    zr_enc_kint (enc, "delay_ms", 10);
    zr_enc_str (enc, "props");
    zr_enc_map (enc, 1);
    zr_enc_kint (enc, "n", 1);
    reply = zr_client_call (f->client, "b", 1, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_MALFORMED);
    zr_reply_destroy (&reply);
    //  Nothing of that was stored, and the broker still serves.
    int64_t min = -1, max = -1;
    assert_int_equal (zr_consumer_queue_offsets (f->consumer, "raw", 0,
                                                 &min, &max), 0);
    assert_true (max == 0);
    int64_t offset = 0;
    zr_message_t *msg = s_pull_one (f, "raw", 0, &offset, 100);
    assert_null (msg);
}

//  Explicit queue and shard are honoured at delivery; timers survive a
//  restart of the broker on the same directory.
static void
test_restart (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "rs", 4);
    zr_message_t *msg = zr_message_new ("rs", "q2", 2);
    zr_message_set_queue (msg, 2);
    zr_message_set_delay (msg, 600);
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    char id [ZR_MSG_ID_LEN + 1];
    strcpy (id, r.msg_id);
    int64_t due = r.deliver_at;
    zr_message_destroy (&msg);
    msg = zr_message_new ("rs", "sh", 2);
    zr_message_set_sharding_key (msg, "order-7");
    zr_message_set_delay (msg, 300);
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    zr_message_destroy (&msg);
    //  The shard's queue, as a plain send with that key chooses it.
    msg = zr_message_new ("rs", "plain", 5);
    zr_message_set_sharding_key (msg, "order-7");
    assert_int_equal (zr_producer_send (f->producer, msg, &r), 0);
    int shard_queue = r.queue;
    zr_message_destroy (&msg);

    s_stop (f);
    s_start (f);
    int64_t offset = 0;
    msg = s_pull_one (f, "rs", 2, &offset, 3000);
    assert_non_null (msg);
    assert_true (zclock_time () >= due);
    assert_string_equal (zr_message_id (msg), id);
    assert_memory_equal (zr_message_body (msg), "q2", 2);
    zr_message_destroy (&msg);
    offset = 0;
    //  offset 0 is the plain send (stored at once), then the delayed one
    msg = s_pull_one (f, "rs", shard_queue, &offset, 3000);
    assert_non_null (msg);
    assert_memory_equal (zr_message_body (msg), "plain", 5);
    zr_message_destroy (&msg);
    msg = s_pull_one (f, "rs", shard_queue, &offset, 3000);
    assert_non_null (msg);
    assert_memory_equal (zr_message_body (msg), "sh", 2);
    zr_message_destroy (&msg);
    //  Each exactly once: nothing else in any queue.
    int64_t total = 0;
    for (int q = 0; q < 4; q++) {
        int64_t min, max;
        assert_int_equal (zr_consumer_queue_offsets (f->consumer, "rs", q,
                                                     &min, &max), 0);
        total += max;
    }
    assert_true (total == 3);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_many_delays, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_deliver_at_and_levels,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_input, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_restart, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
