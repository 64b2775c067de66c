/*  tests/e2e/test_batch.c - SEND_BATCH on a real broker (docs/protocol.md
    section 12): ids and consecutive offsets in one queue in the reply;
    the C API (zr_producer_send_batch); atomicity: a batch with one bad
    message (bad props, found only while appending) stores nothing, and
    neither does one over max-batch-bytes or over the count limit; the
    oversize error texts; malformed batches.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define TIMEOUT 5000

static int s_seq = 0;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    zr_client_t *client;
    zr_producer_t *producer;
    zr_consumer_t *consumer;
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("batchtest");
    char *bind = zsys_sprintf ("inproc://batch-test-%d-%d", (int) getpid (),
                               ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, "max-batch-bytes=1000",
                                  &f->endpoint);
    zstr_free (&bind);
    f->client = zr_client_new (f->endpoint);
    f->producer = zr_producer_new (f->endpoint);
    f->consumer = zr_consumer_new (f->endpoint);
    assert_non_null (f->client);
    assert_non_null (f->producer);
    assert_non_null (f->consumer);
    zr_enc_t *enc = zr_client_begin (f->client, "TOPIC_CREATE", 2);
    zr_enc_kstr (enc, "topic", "b");
    zr_enc_kint (enc, "queues", 4);
    zr_reply_t *reply = zr_client_call (f->client, NULL, 0, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_OK);
    zr_reply_destroy (&reply);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_consumer_destroy (&f->consumer);
    zr_producer_destroy (&f->producer);
    zr_client_destroy (&f->client);
    zactor_destroy (&f->broker);
    zstr_free (&f->endpoint);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    free (f);
    return 0;
}

//  Messages stored in topic b, all queues.
static int64_t
s_stored (fixture_t *f)
{
    int64_t total = 0;
    for (int q = 0; q < 4; q++) {
        int64_t min, max;
        assert_int_equal (zr_consumer_queue_offsets (f->consumer, "b", q,
                                                     &min, &max), 0);
        total += max;
    }
    return total;
}

//  Sends a raw SEND_BATCH of n messages (bodies of size bytes); message
//  bad (>= 0) gets props that are not strings. Returns the reply.
static zr_reply_t *
s_raw_batch (fixture_t *f, size_t n, size_t size, int bad, int queue)
{
    zr_enc_t *enc = zr_client_begin (f->client, "SEND_BATCH",
                                     queue >= 0 ? 3 : 2);
    zr_enc_kstr (enc, "topic", "b");
    if (queue >= 0)
        zr_enc_kint (enc, "queue", queue);
    zr_enc_str (enc, "msgs");
    zr_enc_array (enc, n);
    char *body = (char *) malloc (size + 1);
    memset (body, 'x', size);
    const void **data = (const void **) malloc (sizeof (void *) * n);
    size_t *sizes = (size_t *) malloc (sizeof (size_t) * n);
    for (size_t i = 0; i < n; i++) {
        zr_enc_map (enc, 2);
        zr_enc_kstr (enc, "tags", "T");
        zr_enc_str (enc, "props");
        zr_enc_map (enc, 1);
        if ((int) i == bad)
            zr_enc_kint (enc, "n", 5);
        else
            zr_enc_kstr (enc, "n", "5");
        data [i] = body;
        sizes [i] = size;
    }
    assert_int_equal (zr_client_send (f->client, data, sizes, n), 0);
    zr_reply_t *reply = zr_client_recv (f->client, TIMEOUT);
    assert_non_null (reply);
    free (data);
    free (sizes);
    free (body);
    return reply;
}

static void
test_reply_and_offsets (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  A plain send first, so the batch does not start at offset 0.
    zr_reply_t *reply = s_raw_batch (f, 1, 10, -1, 1);
    assert_int_equal (zr_reply_status (reply), ZR_SEND_OK);
    zr_reply_destroy (&reply);
    reply = s_raw_batch (f, 5, 10, -1, 1);
    assert_int_equal (zr_reply_status (reply), ZR_SEND_OK);
    const zr_obj_t *h = zr_reply_header (reply);
    int64_t queue = -1;
    assert_int_equal (zr_field_int (h, "queue", &queue), ZR_FIELD_OK);
    assert_true (queue == 1);
    const zr_obj_t *results = zr_obj_get (h, "results");
    assert_true (zr_obj_is_array (results));
    assert_int_equal (zr_obj_size (results), 5);
    for (size_t i = 0; i < 5; i++) {
        const zr_obj_t *m = zr_obj_at (results, i);
        int64_t offset = -1;
        char id [64], store_id [256], want [256];
        assert_int_equal (zr_field_int (m, "offset", &offset), ZR_FIELD_OK);
        assert_true (offset == 1 + (int64_t) i);
        assert_int_equal (zr_field_strbuf (m, "id", id, sizeof id),
                          ZR_FIELD_OK);
        assert_int_equal (strlen (id), ZR_MSG_ID_LEN);
        assert_int_equal (zr_field_strbuf (m, "store_id", store_id,
                                           sizeof store_id), ZR_FIELD_OK);
        snprintf (want, sizeof want, ":b:1:%zu", 1 + i);
        assert_non_null (strstr (store_id, want));
    }
    zr_reply_destroy (&reply);
    assert_true (s_stored (f) == 6);
    //  The messages are there, in order, with their tags and props.
    zr_pull_t *pull = zr_consumer_pull (f->consumer, "b", 1, 1, 10, 0);
    assert_non_null (pull);
    assert_int_equal (zr_pull_count (pull), 5);
    assert_string_equal (zr_message_tags (zr_pull_message (pull, 0)), "T");
    assert_string_equal (zr_message_prop (zr_pull_message (pull, 4), "n"),
                         "5");
    zr_pull_destroy (&pull);
}

static void
test_atomic (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  Message 3 of 6 has bad props: nothing stored, not even 0..2.
    zr_reply_t *reply = s_raw_batch (f, 6, 10, 3, 2);
    assert_int_equal (zr_reply_status (reply), ZR_MALFORMED);
    assert_non_null (strstr (zr_reply_reason (reply), "msgs[3]"));
    assert_non_null (strstr (zr_reply_reason (reply), "nothing stored"));
    zr_reply_destroy (&reply);
    assert_true (s_stored (f) == 0);
    //  Over max-batch-bytes (1000): 11 x 100 bytes.
    reply = s_raw_batch (f, 11, 100, -1, -1);
    assert_int_equal (zr_reply_status (reply), ZR_MSG_TOO_LARGE);
    assert_non_null (strstr (zr_reply_reason (reply),
                             "batch bodies are 1100 bytes in all, the limit "
                             "(max-batch-bytes) is 1000"));
    zr_reply_destroy (&reply);
    //  Over the count limit.
    reply = s_raw_batch (f, 1025, 0, -1, -1);
    assert_int_equal (zr_reply_status (reply), ZR_MSG_TOO_LARGE);
    assert_non_null (strstr (zr_reply_reason (reply),
                             "1025 messages, the limit is 1024"));
    zr_reply_destroy (&reply);
    assert_true (s_stored (f) == 0);
    //  The next good batch takes offsets from 0: nothing was reserved.
    reply = s_raw_batch (f, 10, 100, -1, 2);
    assert_int_equal (zr_reply_status (reply), ZR_SEND_OK);
    const zr_obj_t *m = zr_obj_at (zr_obj_get (zr_reply_header (reply),
                                               "results"), 0);
    int64_t offset = -1;
    zr_field_int (m, "offset", &offset);
    assert_true (offset == 0);
    zr_reply_destroy (&reply);
    assert_true (s_stored (f) == 10);
}

static void
test_malformed (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  msgs count differs from bodies
    zr_enc_t *enc = zr_client_begin (f->client, "SEND_BATCH", 2);
    zr_enc_kstr (enc, "topic", "b");
    zr_enc_str (enc, "msgs");
    zr_enc_array (enc, 2);
    zr_enc_map (enc, 0);
    zr_enc_map (enc, 0);
    zr_reply_t *reply = zr_client_call (f->client, "x", 1, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_MALFORMED);
    assert_non_null (strstr (zr_reply_reason (reply), "2 messages"));
    zr_reply_destroy (&reply);
    //  no msgs
    enc = zr_client_begin (f->client, "SEND_BATCH", 1);
    zr_enc_kstr (enc, "topic", "b");
    reply = zr_client_call (f->client, NULL, 0, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_MALFORMED);
    zr_reply_destroy (&reply);
    //  bad id in message 0
    enc = zr_client_begin (f->client, "SEND_BATCH", 2);
    zr_enc_kstr (enc, "topic", "b");
    zr_enc_str (enc, "msgs");
    zr_enc_array (enc, 1);
    zr_enc_map (enc, 1);
    zr_enc_kstr (enc, "id", "nothex");
    reply = zr_client_call (f->client, "x", 1, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_reply_reason (reply), "msgs[0]"));
    zr_reply_destroy (&reply);
    //  unknown topic
    enc = zr_client_begin (f->client, "SEND_BATCH", 2);
    zr_enc_kstr (enc, "topic", "nosuch");
    zr_enc_str (enc, "msgs");
    zr_enc_array (enc, 1);
    zr_enc_map (enc, 0);
    reply = zr_client_call (f->client, "x", 1, TIMEOUT);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_TOPIC_NOT_FOUND);
    zr_reply_destroy (&reply);
    assert_true (s_stored (f) == 0);
}

static void
test_c_api (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    enum { N = 8 };
    zr_message_t *msgs [N];
    for (int i = 0; i < N; i++) {
        char body [16];
        snprintf (body, sizeof body, "m%d", i);
        msgs [i] = zr_message_new ("b", body, strlen (body));
        zr_message_set_keys (msgs [i], "k");
    }
    zr_message_set_sharding_key (msgs [0], "s1");
    zr_send_result_t results [N];
    assert_int_equal (zr_producer_send_batch (f->producer, msgs, N,
                                              results), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal (results [i].status, ZR_SEND_OK);
        assert_string_equal (results [i].msg_id, zr_message_id (msgs [i]));
        assert_int_equal (results [i].queue, results [0].queue);
        assert_true (results [i].offset == results [0].offset + i);
        assert_true (strlen (results [i].store_id) > 0);
    }
    //  Same shard, same queue as a plain send.
    zr_message_t *one = zr_message_new ("b", "p", 1);
    zr_message_set_sharding_key (one, "s1");
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (f->producer, one, &r), 0);
    assert_int_equal (r.queue, results [0].queue);
    zr_message_destroy (&one);
    //  Mixed topics: refused locally.
    zr_message_t *other = zr_message_new ("c", "o", 1);
    zr_message_t *mixed [2] = { msgs [0], other };
    assert_int_equal (zr_producer_send_batch (f->producer, mixed, 2,
                                              results), -1);
    assert_int_equal (results [0].status, ZR_BAD_ARGUMENT);
    zr_message_destroy (&other);
    //  Over max-batch-bytes through the API: every result has the error.
    char big [200];
    memset (big, 'y', sizeof big);
    for (int i = 0; i < N; i++) {
        zr_message_destroy (&msgs [i]);
        msgs [i] = zr_message_new ("b", big, sizeof big);
    }
    assert_int_equal (zr_producer_send_batch (f->producer, msgs, N,
                                              results), -1);
    for (int i = 0; i < N; i++) {
        assert_int_equal (results [i].status, ZR_MSG_TOO_LARGE);
        assert_non_null (strstr (results [i].reason, "max-batch-bytes"));
        zr_message_destroy (&msgs [i]);
    }
    assert_true (s_stored (f) == N + 1);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_reply_and_offsets, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_atomic, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_malformed, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_c_api, s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
