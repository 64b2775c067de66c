/*  tests/e2e/test_filter_100k.c - a property-filtered consumer over
    100,000 messages (issue 6): a broker actor on tcp, 100,000 async sends
    with properties n = i and color = red/green/blue, then a consumer with
    a SQL92 filter pulls every queue to its end and must receive exactly
    the matching messages: each once, in offset order within its queue,
    with its own body and properties. A raw PULL over one queue shows that
    only matching bodies cross the wire (body frames and bytes).

    About 1 s on a 2-core machine (async sends ~0.6 s, the filtered scan
    of all queues ~0.1 s), so it runs in parallel with the others.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define COUNT       100000
#define TOPIC       "filter-100k"
#define EXPR        "color = 'red' AND n >= 1000 OR n BETWEEN 10 AND 12"
#define WAIT_MS     10000

static const char *s_colors [] = { "red", "green", "blue" };

//  The filter, in C: what the broker must select.
static bool
s_match (int i)
{
    return (i % 3 == 0 && i >= 1000) || (i >= 10 && i <= 12);
}

//  Where the broker stored message i (filled by the async callbacks).
typedef struct {
    int queue;
    int64_t offset;
    zr_status_t status;
    bool replied;
} slot_t;

static void
s_on_sent (const zr_send_result_t *result, void *arg)
{
    slot_t *slot = (slot_t *) arg;
    slot->replied = true;
    slot->status = result->status;
    slot->queue = result->queue;
    slot->offset = result->offset;
}

//  Sends the COUNT messages async; fills slots [COUNT].
static void
s_produce (const char *endpoint, slot_t *slots)
{
    zr_producer_t *producer = zr_producer_new (endpoint);
    assert_non_null (producer);
    zr_producer_set_max_inflight (producer, 1024);
    zr_producer_set_timeout (producer, WAIT_MS);
    for (int i = 0; i < COUNT; i++) {
        char body [32], n [16];
        snprintf (body, sizeof body, "m-%d", i);
        snprintf (n, sizeof n, "%d", i);
        zr_message_t *msg = zr_message_new (TOPIC, body, strlen (body));
        assert_non_null (msg);
        zr_message_set_prop (msg, "n", n);
        zr_message_set_prop (msg, "color", s_colors [i % 3]);
        assert_int_equal (zr_producer_send_async (producer, msg, s_on_sent,
                                                  &slots [i]), 0);
        zr_message_destroy (&msg);
    }
    assert_int_equal (zr_producer_flush (producer, WAIT_MS), 0);
    zr_producer_destroy (&producer);
    for (int i = 0; i < COUNT; i++) {
        if (!slots [i].replied || slots [i].status != ZR_SEND_OK
        ||  slots [i].queue < 0 || slots [i].offset < 0)
            fail_msg ("send %d: replied %d status %s queue %d offset %lld",
                      i, slots [i].replied, zr_status_str (slots [i].status),
                      slots [i].queue, (long long) slots [i].offset);
    }
}

//  Per queue: message index by offset (-1: none), and the matches in
//  offset order.
typedef struct {
    int64_t max;
    int *by_offset;             //  [max]
    int *want;                  //  matching indexes, offset order
    size_t wanted;
} queue_t;

static int
s_queues_build (zr_consumer_t *consumer, const slot_t *slots,
                queue_t **queues_p)
{
    int queues = zr_consumer_queues (consumer, TOPIC);
    assert_true (queues > 0);
    queue_t *qs = (queue_t *) zmalloc (sizeof (queue_t) * (size_t) queues);
    int64_t total = 0;
    for (int q = 0; q < queues; q++) {
        int64_t min, max;
        assert_int_equal (zr_consumer_queue_offsets (consumer, TOPIC, q,
                                                     &min, &max), 0);
        assert_int_equal (min, 0);
        qs [q].max = max;
        total += max;
        qs [q].by_offset = (int *) malloc (sizeof (int) * (size_t) (max + 1));
        qs [q].want = (int *) malloc (sizeof (int) * (size_t) (max + 1));
        for (int64_t o = 0; o < max; o++)
            qs [q].by_offset [o] = -1;
    }
    assert_int_equal (total, COUNT);
    for (int i = 0; i < COUNT; i++) {
        assert_true (slots [i].queue < queues);
        assert_true (slots [i].offset < qs [slots [i].queue].max);
        int *at = &qs [slots [i].queue].by_offset [slots [i].offset];
        assert_int_equal (*at, -1);         //  one message per offset
        *at = i;
    }
    for (int q = 0; q < queues; q++)
        for (int64_t o = 0; o < qs [q].max; o++) {
            int i = qs [q].by_offset [o];
            assert_true (i >= 0);
            if (s_match (i))
                qs [q].want [qs [q].wanted++] = i;
        }
    *queues_p = qs;
    return queues;
}

static void
s_queues_destroy (queue_t **queues_p, int queues)
{
    queue_t *qs = *queues_p;
    for (int q = 0; q < queues; q++) {
        free (qs [q].by_offset);
        free (qs [q].want);
    }
    free (qs);
    *queues_p = NULL;
}

//  Pulls queue q to its end through the filter; checks every message
//  against the wanted list (each match once, in offset order, with its
//  own body and properties). Adds the body bytes to *bytes. Returns the
//  number received.
static size_t
s_consume_queue (zr_consumer_t *consumer, int q, const queue_t *queue,
                 size_t *bytes)
{
    int64_t offset = 0;
    size_t got = 0;
    while (offset < queue->max) {
        zr_pull_t *pull = zr_consumer_pull (consumer, TOPIC, q, offset, 1024,
                                            0);
        assert_non_null (pull);
        if (zr_pull_status (pull) != ZR_OK)
            fail_msg ("queue %d offset %lld: %s %s", q, (long long) offset,
                      zr_status_str (zr_pull_status (pull)),
                      zr_pull_reason (pull));
        for (size_t k = 0; k < zr_pull_count (pull); k++) {
            zr_message_t *msg = zr_pull_message (pull, k);
            int64_t at = zr_message_offset (msg);
            if (got >= queue->wanted)
                fail_msg ("queue %d: more than its %zu matches (offset "
                          "%lld)", q, queue->wanted, (long long) at);
            int i = queue->want [got++];
            if (at < 0 || at >= queue->max || queue->by_offset [at] != i)
                fail_msg ("queue %d: match %zu is at offset %lld, want "
                          "message %d", q, got - 1, (long long) at, i);
            char body [32], n [16];
            snprintf (body, sizeof body, "m-%d", i);
            snprintf (n, sizeof n, "%d", i);
            assert_int_equal (zr_message_size (msg), strlen (body));
            assert_memory_equal (zr_message_body (msg), body, strlen (body));
            assert_string_equal (zr_message_prop (msg, "n"), n);
            assert_string_equal (zr_message_prop (msg, "color"),
                                 s_colors [i % 3]);
            *bytes += zr_message_size (msg);
        }
        int64_t next = zr_pull_next (pull);
        assert_true (next > offset);        //  always moves forward
        assert_true (next <= queue->max);
        offset = next;
        zr_pull_destroy (&pull);
    }
    return got;
}

//  One raw PULL round over queue q: the reply carries exactly one body
//  frame per message listed, each a matching body; returns the body
//  bytes and adds the messages to *count.
static size_t
s_raw_queue (zr_client_t *client, int q, const queue_t *queue,
             size_t *count)
{
    int64_t offset = 0;
    size_t bytes = 0, got = 0;
    while (offset < queue->max) {
        zr_enc_t *enc = zr_client_begin (client, "PULL", 6);
        zr_enc_kstr (enc, "topic", TOPIC);
        zr_enc_kint (enc, "queue", q);
        zr_enc_kint (enc, "offset", offset);
        zr_enc_kint (enc, "max_count", 1024);
        zr_enc_kstr (enc, "filter_type", "sql");
        zr_enc_kstr (enc, "filter", EXPR);
        zr_reply_t *r = zr_client_call (client, NULL, 0, WAIT_MS);
        assert_non_null (r);
        assert_int_equal (zr_reply_status (r), ZR_OK);
        const zr_obj_t *msgs = zr_obj_get (zr_reply_header (r), "msgs");
        assert_non_null (msgs);
        assert_int_equal (zr_reply_bodies (r), zr_obj_size (msgs));
        for (size_t k = 0; k < zr_reply_bodies (r); k++) {
            zframe_t *body = zr_reply_body (r, k);
            assert_true (got < queue->wanted);
            char want [32];
            snprintf (want, sizeof want, "m-%d", queue->want [got++]);
            assert_true (zframe_streq (body, want));
            bytes += zframe_size (body);
        }
        int64_t next;
        assert_int_equal (zr_field_int (zr_reply_header (r), "next", &next),
                          ZR_FIELD_OK);
        assert_true (next > offset);
        offset = next;
        zr_reply_destroy (&r);
    }
    assert_int_equal (got, queue->wanted);
    *count += got;
    return bytes;
}

static void
test_filter_100k (void **state)
{
    (void) state;
    char *dir = zrt_tempdir ("filter100k");
    char *endpoint = NULL;
    zactor_t *broker = zrt_broker_start (dir, "tcp://127.0.0.1:*",
                                         "auto-create=true", &endpoint);
    assert_non_null (endpoint);

    int64_t start = zclock_mono ();
    slot_t *slots = (slot_t *) zmalloc (sizeof (slot_t) * COUNT);
    s_produce (endpoint, slots);
    int64_t produced = zclock_mono ();

    zr_consumer_t *consumer = zr_consumer_new (endpoint);
    assert_non_null (consumer);
    zr_consumer_set_timeout (consumer, WAIT_MS);
    queue_t *qs = NULL;
    int queues = s_queues_build (consumer, slots, &qs);
    assert_true (queues > 1);               //  the test spans queues

    //  What the filter must select, over every queue
    size_t wanted = 0, wanted_bytes = 0;
    for (int i = 0; i < COUNT; i++)
        if (s_match (i)) {
            char body [32];
            wanted++;
            wanted_bytes += (size_t) snprintf (body, sizeof body, "m-%d", i);
        }
    assert_int_equal (wanted, 33000 + 3);

    assert_int_equal (zr_consumer_set_filter (consumer, "sql", EXPR), 0);
    size_t got = 0, bytes = 0;
    for (int q = 0; q < queues; q++) {
        size_t n = s_consume_queue (consumer, q, &qs [q], &bytes);
        if (n != qs [q].wanted)
            fail_msg ("queue %d: %zu messages, want %zu", q, n,
                      qs [q].wanted);
        got += n;
    }
    assert_int_equal (got, wanted);
    assert_int_equal (bytes, wanted_bytes);
    int64_t consumed = zclock_mono ();

    //  On the wire: only matching bodies, for one queue
    zr_client_t *client = zr_client_new (endpoint);
    assert_non_null (client);
    size_t raw_count = 0;
    size_t raw_bytes = s_raw_queue (client, 0, &qs [0], &raw_count);
    size_t q0_bytes = 0;
    for (size_t k = 0; k < qs [0].wanted; k++) {
        char body [32];
        q0_bytes += (size_t) snprintf (body, sizeof body, "m-%d",
                                       qs [0].want [k]);
    }
    assert_int_equal (raw_count, qs [0].wanted);
    assert_int_equal (raw_bytes, q0_bytes);
    zr_client_destroy (&client);

    print_message ("produced %d in %lld ms, filtered %zu of them over %d "
                   "queues in %lld ms\n", COUNT,
                   (long long) (produced - start), got, queues,
                   (long long) (consumed - produced));
    s_queues_destroy (&qs, queues);
    free (slots);
    zr_consumer_destroy (&consumer);
    zactor_destroy (&broker);
    zstr_free (&endpoint);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_filter_100k),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
