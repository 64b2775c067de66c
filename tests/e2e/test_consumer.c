/*  tests/e2e/test_consumer.c - the pull consumer against a real broker
    actor: pull with max_count and next offsets, NO_NEW_MSG at the end,
    message fields round trip, long poll answered by a send from another
    producer, commit / committed, OFFSET_OUT_OF_RANGE, queue offsets and
    queue counts. Brokers run on inproc:// and tcp://127.0.0.1:*.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
} fixture_t;

static int s_seq = 0;

static int
s_setup_with (void **state, bool inproc)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("consumer");
    char *bind = inproc ? zsys_sprintf ("inproc://test-consumer-%d-%d",
                                        (int) getpid (), ++s_seq)
                        : strdup ("tcp://127.0.0.1:*");
    f->broker = zrt_broker_start (f->dir, bind, "auto-create=false",
                                  &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->endpoint);
    *state = f;
    return 0;
}

static int
s_setup_inproc (void **state)
{
    return s_setup_with (state, true);
}

static int
s_setup_tcp (void **state)
{
    return s_setup_with (state, false);
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zactor_destroy (&f->broker);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    zstr_free (&f->endpoint);
    free (f);
    return 0;
}

static void
s_create_topic (const char *endpoint, const char *topic, int queues)
{
    zr_client_t *client = zr_client_new (endpoint);
    assert_non_null (client);
    zr_enc_t *enc = zr_client_begin (client, "TOPIC_CREATE", 2);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queues", queues);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, 5000);
    assert_non_null (reply);
    assert_string_equal (zr_reply_status_str (reply), "OK");
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
}

//  Sends count messages "<prefix>-<i>" to (topic, queue), synchronously.
static void
s_send (const char *endpoint, const char *topic, int queue, const char *prefix,
        int count)
{
    zr_producer_t *producer = zr_producer_new (endpoint);
    assert_non_null (producer);
    for (int i = 0; i < count; i++) {
        char body [64];
        snprintf (body, sizeof (body), "%s-%d", prefix, i);
        zr_message_t *msg = zr_message_new (topic, body, strlen (body));
        zr_message_set_queue (msg, queue);
        zr_send_result_t r;
        assert_int_equal (zr_producer_send (producer, msg, &r), 0);
        assert_int_equal (r.queue, queue);
        zr_message_destroy (&msg);
    }
    zr_producer_destroy (&producer);
}

static void
s_check_body (zr_message_t *msg, const char *prefix, int i)
{
    char body [64];
    snprintf (body, sizeof (body), "%s-%d", prefix, i);
    assert_int_equal (zr_message_size (msg), strlen (body));
    assert_memory_equal (zr_message_body (msg), body, strlen (body));
}

static void
test_pull (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "pulls", 4);
    s_send (f->endpoint, "pulls", 1, "m", 10);
    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    assert_non_null (consumer);

    zr_pull_t *pull = zr_consumer_pull (consumer, "pulls", 1, 0, 4, 0);
    assert_non_null (pull);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 4);
    assert_int_equal (zr_pull_next (pull), 4);
    assert_int_equal (zr_pull_min (pull), 0);
    assert_int_equal (zr_pull_max (pull), 10);
    for (int i = 0; i < 4; i++) {
        zr_message_t *msg = zr_pull_message (pull, (size_t) i);
        assert_int_equal (zr_message_offset (msg), i);
        assert_int_equal (zr_message_queue (msg), 1);
        assert_string_equal (zr_message_topic (msg), "pulls");
        assert_int_equal (strlen (zr_message_id (msg)), ZR_MSG_ID_LEN);
        assert_non_null (strstr (zr_message_store_id (msg), ":pulls:1:"));
        assert_true (zr_message_stored (msg) > 0);
        assert_true (zr_message_born (msg) > 0);
        s_check_body (msg, "m", i);
    }
    assert_null (zr_pull_message (pull, 4));
    zr_pull_destroy (&pull);
    assert_null (pull);

    pull = zr_consumer_pull (consumer, "pulls", 1, 4, 100, 0);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 6);
    assert_int_equal (zr_pull_next (pull), 10);
    s_check_body (zr_pull_message (pull, 5), "m", 9);
    zr_pull_destroy (&pull);

    pull = zr_consumer_pull (consumer, "pulls", 1, 10, 100, 0);
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    assert_int_equal (zr_pull_count (pull), 0);
    assert_int_equal (zr_pull_next (pull), 10);
    assert_int_equal (zr_pull_max (pull), 10);
    zr_pull_destroy (&pull);

    //  Other queues are empty.
    pull = zr_consumer_pull (consumer, "pulls", 0, 0, 100, 0);
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    assert_int_equal (zr_pull_next (pull), 0);
    zr_pull_destroy (&pull);

    //  Errors
    pull = zr_consumer_pull (consumer, "pulls", 4, 0, 100, 0);
    assert_int_equal (zr_pull_status (pull), ZR_QUEUE_NOT_FOUND);
    zr_pull_destroy (&pull);
    pull = zr_consumer_pull (consumer, "nothere", 0, 0, 100, 0);
    assert_int_equal (zr_pull_status (pull), ZR_TOPIC_NOT_FOUND);
    assert_non_null (strstr (zr_pull_reason (pull), "nothere"));
    zr_pull_destroy (&pull);
    pull = zr_consumer_pull (consumer, "pulls", 1, 0, 0, 0);
    assert_int_equal (zr_pull_status (pull), ZR_BAD_ARGUMENT);
    zr_pull_destroy (&pull);
    zr_consumer_destroy (&consumer);
}

static void
test_message_fields (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "fields", 1);
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    zr_message_t *msg = zr_message_new ("fields", "", 0);
    zr_message_set_tags (msg, "TagA");
    zr_message_set_keys (msg, "k1 k2");
    zr_message_set_prop (msg, "color", "blue");
    zr_message_set_prop (msg, "size", "XL");
    zr_message_set_id (msg, "0123456789abcdef0123456789abcdef");
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (producer, msg, &r), 0);
    assert_string_equal (r.msg_id, "0123456789abcdef0123456789abcdef");
    zr_message_t *plain = zr_message_new ("fields", "p", 1);
    assert_int_equal (zr_producer_send (producer, plain, NULL), 0);

    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    zr_pull_t *pull = zr_consumer_pull (consumer, "fields", 0, 0, 10, 0);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 2);
    zr_message_t *got = zr_pull_message (pull, 0);
    assert_int_equal (zr_message_size (got), 0);
    assert_string_equal (zr_message_tags (got), "TagA");
    assert_string_equal (zr_message_keys (got), "k1 k2");
    assert_string_equal (zr_message_prop (got, "color"), "blue");
    assert_string_equal (zr_message_prop (got, "size"), "XL");
    assert_null (zr_message_prop (got, "weight"));
    assert_string_equal (zr_message_id (got), zr_message_id (msg));
    assert_string_equal (zr_message_store_id (got), r.store_id);
    assert_int_equal (zr_message_born (got), zr_message_born (msg));
    got = zr_pull_message (pull, 1);
    assert_string_equal (zr_message_tags (got), "");
    assert_string_equal (zr_message_keys (got), "");
    assert_null (zr_message_prop (got, "color"));
    assert_string_equal (zr_message_id (got), zr_message_id (plain));
    zr_pull_destroy (&pull);
    zr_message_destroy (&plain);
    zr_message_destroy (&msg);
    zr_consumer_destroy (&consumer);
    zr_producer_destroy (&producer);
}

//  Sends one message to (topic "poll", queue 0) when told "SEND" on its
//  pipe, replies "SENT". args: the endpoint.
static void
s_sender_actor (zsock_t *pipe, void *args)
{
    zr_producer_t *producer = zr_producer_new ((const char *) args);
    zsock_signal (pipe, 0);
    while (true) {
        char *cmd = zstr_recv (pipe);
        if (!cmd)
            break;
        bool term = streq (cmd, "$TERM");
        if (streq (cmd, "SEND") && producer) {
            zr_message_t *msg = zr_message_new ("poll", "wake up", 7);
            zr_message_set_queue (msg, 0);
            int rc = zr_producer_send (producer, msg, NULL);
            zr_message_destroy (&msg);
            zstr_send (pipe, rc == 0 ? "SENT" : "FAILED");
        }
        zstr_free (&cmd);
        if (term)
            break;
    }
    zr_producer_destroy (&producer);
}

static void
test_long_poll (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "poll", 2);
    zactor_t *sender = zactor_new (s_sender_actor, f->endpoint);
    assert_non_null (sender);

    //  1. Wire level: a PULL with wait, then a PING on the same
    //  connection. Once the PING is answered the broker has parked the
    //  PULL (it reads one connection in order), so the send that follows
    //  surely comes while the PULL waits.
    zr_client_t *client = zr_client_new (f->endpoint);
    assert_non_null (client);
    zr_enc_t *enc = zr_client_begin (client, "PULL", 5);
    zr_enc_kstr (enc, "topic", "poll");
    zr_enc_kint (enc, "queue", 0);
    zr_enc_kint (enc, "offset", 0);
    zr_enc_kint (enc, "max_count", 10);
    zr_enc_kint (enc, "wait", 5000);
    uint64_t pull_rid = zr_client_rid (client);
    int64_t start = zclock_mono ();
    assert_int_equal (zr_client_send (client, NULL, NULL, 0), 0);
    zr_client_begin (client, "PING", 0);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, 5000);
    assert_non_null (reply);
    assert_int_equal (zr_reply_status (reply), ZR_OK);
    zr_reply_destroy (&reply);
    //  The PULL reply did not come before the PING's (it would have been
    //  dropped by zr_client_call and the wait below would time out).
    zstr_send (sender, "SEND");
    char *sent = zstr_recv (sender);
    assert_non_null (sent);
    assert_string_equal (sent, "SENT");
    zstr_free (&sent);
    reply = zr_client_recv (client, 10000);
    int64_t took = zclock_mono () - start;
    assert_non_null (reply);
    assert_int_equal (zr_reply_rid (reply), pull_rid);
    assert_int_equal (zr_reply_status (reply), ZR_OK);
    assert_int_equal (zr_reply_bodies (reply), 1);
    zframe_t *body = zr_reply_body (reply, 0);
    assert_int_equal (zframe_size (body), 7);
    assert_memory_equal (zframe_data (body), "wake up", 7);
    assert_true (took < 5000);          //  sanity bound only
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);

    //  2. Consumer API: the sender sends while (or just before) the
    //  consumer waits on queue 0 at offset 1; either way the pull returns
    //  the message, well before its wait is over.
    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    assert_non_null (consumer);
    zstr_send (sender, "SEND");
    start = zclock_mono ();
    zr_pull_t *pull = zr_consumer_pull (consumer, "poll", 0, 1, 10, 5000);
    took = zclock_mono () - start;
    assert_non_null (pull);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 1);
    assert_int_equal (zr_pull_next (pull), 2);
    assert_memory_equal (zr_message_body (zr_pull_message (pull, 0)),
                         "wake up", 7);
    assert_true (took < 5000);
    zr_pull_destroy (&pull);
    sent = zstr_recv (sender);
    assert_non_null (sent);
    assert_string_equal (sent, "SENT");
    zstr_free (&sent);

    //  3. Nothing comes: the pull waits (about) its wait, then NO_NEW_MSG.
    start = zclock_mono ();
    pull = zr_consumer_pull (consumer, "poll", 1, 0, 10, 300);
    took = zclock_mono () - start;
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    assert_true (took >= 250);
    assert_true (took < 3000);
    zr_pull_destroy (&pull);

    zr_consumer_destroy (&consumer);
    zactor_destroy (&sender);
}

static void
test_commit (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "commits", 2);
    s_send (f->endpoint, "commits", 1, "c", 10);
    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    assert_non_null (consumer);
    int64_t offset = 99;
    assert_int_equal (zr_consumer_committed (consumer, "g1", "commits", 1,
                                             &offset), 0);
    assert_int_equal (offset, -1);
    assert_int_equal (zr_consumer_commit (consumer, "g1", "commits", 1, 5), 0);
    assert_int_equal (zr_consumer_committed (consumer, "g1", "commits", 1,
                                             &offset), 0);
    assert_int_equal (offset, 5);
    assert_int_equal (zr_consumer_commit (consumer, "g1", "commits", 1, 10), 0);
    assert_int_equal (zr_consumer_committed (consumer, "g1", "commits", 1,
                                             &offset), 0);
    assert_int_equal (offset, 10);
    //  Other groups and queues are apart.
    assert_int_equal (zr_consumer_committed (consumer, "g2", "commits", 1,
                                             &offset), 0);
    assert_int_equal (offset, -1);
    assert_int_equal (zr_consumer_committed (consumer, "g1", "commits", 0,
                                             &offset), 0);
    assert_int_equal (offset, -1);
    //  Past the end of the queue, unknown topic, bad group name.
    assert_int_equal (zr_consumer_commit (consumer, "g1", "commits", 1, 11), -1);
    assert_int_equal (zr_consumer_commit (consumer, "g1", "nothere", 0, 0), -1);
    assert_int_equal (zr_consumer_commit (consumer, "bad group", "commits", 0,
                                          0), -1);
    assert_int_equal (zr_consumer_committed (consumer, "g1", "commits", 1,
                                             &offset), 0);
    assert_int_equal (offset, 10);
    zr_consumer_destroy (&consumer);
}

static void
test_out_of_range (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "range", 1);
    s_send (f->endpoint, "range", 0, "r", 3);
    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    zr_pull_t *pull = zr_consumer_pull (consumer, "range", 0, 1000, 10, 0);
    assert_non_null (pull);
    assert_int_equal (zr_pull_status (pull), ZR_OFFSET_OUT_OF_RANGE);
    assert_int_equal (zr_pull_min (pull), 0);
    assert_int_equal (zr_pull_max (pull), 3);
    assert_int_equal (zr_pull_count (pull), 0);
    assert_true (strlen (zr_pull_reason (pull)) > 0);
    zr_pull_destroy (&pull);
    //  max itself is in range: nothing there yet.
    pull = zr_consumer_pull (consumer, "range", 0, 3, 10, 0);
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    zr_pull_destroy (&pull);
    zr_consumer_destroy (&consumer);
}

static void
test_queue_offsets (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "bounds", 3);
    s_send (f->endpoint, "bounds", 2, "b", 7);
    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    assert_int_equal (zr_consumer_queues (consumer, "bounds"), 3);
    assert_int_equal (zr_consumer_queues (consumer, "nothere"), -1);
    int64_t min = -5, max = -5;
    assert_int_equal (zr_consumer_queue_offsets (consumer, "bounds", 2, &min,
                                                 &max), 0);
    assert_int_equal (min, 0);
    assert_int_equal (max, 7);
    assert_int_equal (zr_consumer_queue_offsets (consumer, "bounds", 0, &min,
                                                 &max), 0);
    assert_int_equal (min, 0);
    assert_int_equal (max, 0);
    assert_int_equal (zr_consumer_queue_offsets (consumer, "bounds", 3, &min,
                                                 &max), -1);
    assert_int_equal (zr_consumer_queue_offsets (consumer, "nothere", 0, &min,
                                                 &max), -1);
    zr_consumer_destroy (&consumer);
}

static void
test_no_broker (void **state)
{
    (void) state;
    char *endpoint = zsys_sprintf ("inproc://no-consumer-broker-%d",
                                   (int) getpid ());
    zr_consumer_t *consumer = zr_consumer_new (endpoint);
    assert_non_null (consumer);
    zr_consumer_set_timeout (consumer, 100);
    zr_pull_t *pull = zr_consumer_pull (consumer, "t", 0, 0, 10, 100);
    assert_non_null (pull);
    assert_int_equal (zr_pull_status (pull), ZR_TIMEOUT);
    zr_pull_destroy (&pull);
    assert_int_equal (zr_consumer_queues (consumer, "t"), -1);
    int64_t offset;
    assert_int_equal (zr_consumer_committed (consumer, "g", "t", 0, &offset),
                      -1);
    zr_consumer_destroy (&consumer);
    zstr_free (&endpoint);
    assert_null (zr_consumer_new ("nonsense://x"));
}

//  --------------------------------------------------------------------
//  A broker that answers badly (an actor with a ROUTER on args): to
//  request n it first sends garbage, a reply without status and a frame
//  of type "request", then the real answer: n = 1, a PULL reply with two
//  message maps but one body; n = 2, two bodies where the first map
//  lacks its topic and the second is fine; n >= 3, OK with no fields.
//  No cmocka assertions in this thread.

static void
s_bad_send (zsock_t *router, zframe_t *peer, zr_enc_t *enc, int bodies)
{
    zframe_t *copy = zframe_dup (peer);
    zframe_send (&copy, router, ZFRAME_MORE);
    zframe_t *frame = zr_enc_frame (enc);
    zframe_send (&frame, router, bodies ? ZFRAME_MORE : 0);
    for (int i = 0; i < bodies; i++) {
        zframe_t *body = zframe_new ("body", 4);
        zframe_send (&body, router, i + 1 < bodies ? ZFRAME_MORE : 0);
    }
}

static void
s_bad_msg_map (zr_enc_t *enc, bool with_topic, int64_t offset)
{
    zr_enc_map (enc, with_topic ? 3 : 2);
    if (with_topic)
        zr_enc_kstr (enc, "topic", "bad");
    zr_enc_kint (enc, "queue", 0);
    zr_enc_kint (enc, "offset", offset);
}

static void
s_bad_broker (zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (zsock_bind (router, "%s", (const char *) args) == -1)
        zsys_error ("bad broker: cannot bind %s", (const char *) args);
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zr_enc_t *enc = zr_enc_new ();
    int n = 0;
    while (zpoller_wait (poller, -1) == router) {
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        zframe_t *peer = zmsg_pop (msg);
        zframe_t *head = zmsg_first (msg);
        const char *err = NULL;
        zr_hdr_t *hdr = head ? zr_hdr_decode (zframe_data (head),
                                              zframe_size (head), &err)
                             : NULL;
        int64_t rid = 0;
        if (hdr)
            zr_field_int (zr_hdr_root (hdr), "rid", &rid);
        n++;
        //  Garbage, then a multipart garbage message.
        zframe_t *copy = zframe_dup (peer);
        zframe_send (&copy, router, ZFRAME_MORE);
        zsock_send (router, "b", "\xc1", 1);
        copy = zframe_dup (peer);
        zframe_send (&copy, router, ZFRAME_MORE);
        zsock_send (router, "ss", "\x93", "tail");
        //  A reply without status, a request.
        zr_enc_reset (enc);
        zr_enc_map (enc, 3);
        zr_enc_kint (enc, "v", 1);
        zr_enc_kstr (enc, "type", "reply");
        zr_enc_kint (enc, "rid", rid);
        s_bad_send (router, peer, enc, 1);
        zr_enc_reset (enc);
        zr_enc_map (enc, 4);
        zr_enc_kint (enc, "v", 1);
        zr_enc_kstr (enc, "type", "request");
        zr_enc_kint (enc, "rid", rid);
        zr_enc_kstr (enc, "status", "OK");
        s_bad_send (router, peer, enc, 0);
        //  The answer.
        zr_enc_reset (enc);
        zr_enc_map (enc, n <= 2 ? 8 : 4);
        zr_enc_kint (enc, "v", 1);
        zr_enc_kstr (enc, "type", "reply");
        zr_enc_kint (enc, "rid", rid);
        zr_enc_kstr (enc, "status", "OK");
        if (n <= 2) {
            zr_enc_kint (enc, "next", 2);
            zr_enc_kint (enc, "min", 0);
            zr_enc_kint (enc, "max", 2);
            zr_enc_str (enc, "msgs");
            zr_enc_array (enc, 2);
            s_bad_msg_map (enc, n == 1, 0);
            s_bad_msg_map (enc, true, 1);
        }
        s_bad_send (router, peer, enc, n == 1 ? 1 : n == 2 ? 2 : 0);
        zr_hdr_destroy (&hdr);
        zframe_destroy (&peer);
        zmsg_destroy (&msg);
    }
    zr_enc_destroy (&enc);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
}

static void
test_bad_replies (void **state)
{
    (void) state;
    char *endpoint = zsys_sprintf ("inproc://bad-broker-%d", (int) getpid ());
    zactor_t *bad = zactor_new (s_bad_broker, endpoint);
    assert_non_null (bad);
    zr_consumer_t *consumer = zr_consumer_new (endpoint);
    assert_non_null (consumer);
    //  1: message and body counts differ: refused as a whole.
    zr_pull_t *pull = zr_consumer_pull (consumer, "bad", 0, 0, 10, 0);
    assert_non_null (pull);
    assert_int_equal (zr_pull_status (pull), ZR_MALFORMED);
    assert_int_equal (zr_pull_count (pull), 0);
    zr_pull_destroy (&pull);
    //  2: the message without a topic is skipped, the other kept.
    pull = zr_consumer_pull (consumer, "bad", 0, 0, 10, 0);
    assert_non_null (pull);
    assert_int_equal (zr_pull_status (pull), ZR_OK);
    assert_int_equal (zr_pull_count (pull), 1);
    assert_int_equal (zr_message_offset (zr_pull_message (pull, 0)), 1);
    assert_int_equal (zr_message_size (zr_pull_message (pull, 0)), 4);
    assert_int_equal (zr_pull_next (pull), 2);
    zr_pull_destroy (&pull);
    //  3: an OK without the expected fields.
    assert_int_equal (zr_consumer_queues (consumer, "bad"), -1);
    int64_t min, max;
    assert_int_equal (zr_consumer_queue_offsets (consumer, "bad", 0, &min,
                                                 &max), -1);
    int64_t offset;
    assert_int_equal (zr_consumer_committed (consumer, "g", "bad", 0,
                                             &offset), -1);
    assert_int_equal (zr_consumer_commit (consumer, "g", "bad", 0, 0), 0);
    zr_consumer_destroy (&consumer);
    zactor_destroy (&bad);
    zstr_free (&endpoint);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_pull, s_setup_inproc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_pull, s_setup_tcp, s_teardown),
        cmocka_unit_test_setup_teardown (test_message_fields, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_long_poll, s_setup_inproc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_long_poll, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_commit, s_setup_inproc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_out_of_range, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_queue_offsets, s_setup_inproc,
                                         s_teardown),
        cmocka_unit_test (test_no_broker),
        cmocka_unit_test (test_bad_replies),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
