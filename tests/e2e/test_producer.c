/*  tests/e2e/test_producer.c - the producer against a real broker actor:
    sync sends (ids, queue, offsets, sharding, explicit queue), async
    pipelined sends read back with PULL, oneway sends, a missing topic,
    and timeouts against an endpoint where no broker runs. Brokers run on
    inproc:// for some tests and tcp://127.0.0.1:* for others.
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
s_setup_with (void **state, bool inproc, const char *extra)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("producer");
    char *bind = inproc ? zsys_sprintf ("inproc://test-producer-%d-%d",
                                        (int) getpid (), ++s_seq)
                        : strdup ("tcp://127.0.0.1:*");
    f->broker = zrt_broker_start (f->dir, bind, extra, &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->endpoint);
    *state = f;
    return 0;
}

static int
s_setup_inproc (void **state)
{
    return s_setup_with (state, true, "auto-create=true");
}

static int
s_setup_tcp (void **state)
{
    return s_setup_with (state, false, "auto-create=true");
}

static int
s_setup_noauto (void **state)
{
    return s_setup_with (state, false, "auto-create=false");
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

//  Creates topic with queues via TOPIC_CREATE.
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
    int64_t n = 0;
    assert_int_equal (zr_field_int (zr_reply_header (reply), "queues", &n),
                      ZR_FIELD_OK);
    assert_int_equal (n, queues);
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
}

static bool
s_is_hex_id (const char *id)
{
    if (strlen (id) != ZR_MSG_ID_LEN)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

static void
test_message_names (void **state)
{
    (void) state;
    assert_null (zr_message_new ("", "x", 1));
    assert_null (zr_message_new ("bad topic", "x", 1));
    assert_null (zr_message_new ("bad/topic", "x", 1));
    assert_null (zr_message_new (NULL, "x", 1));
    char name [ZR_NAME_MAX + 2];
    memset (name, 'a', ZR_NAME_MAX + 1);
    name [ZR_NAME_MAX + 1] = 0;
    assert_null (zr_message_new (name, "x", 1));
    name [ZR_NAME_MAX] = 0;
    zr_message_t *msg = zr_message_new (name, "x", 1);
    assert_non_null (msg);
    zr_message_destroy (&msg);

    msg = zr_message_new ("Az09_-%|", "hello", 5);
    assert_non_null (msg);
    assert_int_equal (zr_message_size (msg), 5);
    assert_memory_equal (zr_message_body (msg), "hello", 5);
    assert_string_equal (zr_message_tags (msg), "");
    assert_string_equal (zr_message_id (msg), "");
    assert_int_equal (zr_message_queue (msg), -1);
    assert_int_equal (zr_message_offset (msg), -1);
    assert_null (zr_message_prop (msg, "a"));
    zr_message_set_prop (msg, "a", "1");
    zr_message_set_prop (msg, "a", "2");
    assert_string_equal (zr_message_prop (msg, "a"), "2");
    zr_message_set_tags (msg, "t1");
    assert_string_equal (zr_message_tags (msg), "t1");
    zr_message_destroy (&msg);
    assert_null (msg);
}

static void
test_sync_send (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    zr_message_t *msg = zr_message_new ("orders", "hello", 5);
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (producer, msg, &r), 0);
    assert_int_equal (r.status, ZR_SEND_OK);
    assert_true (s_is_hex_id (r.msg_id));
    assert_string_equal (r.msg_id, zr_message_id (msg));
    assert_true (r.queue >= 0 && r.queue < ZR_DEFAULT_QUEUES);
    assert_true (r.offset >= 0);
    assert_non_null (strstr (r.store_id, ":orders:"));
    assert_true (zr_message_born (msg) > 0);

    //  A new message gets a new id; the next in the same queue the next
    //  offset.
    zr_message_t *next = zr_message_new ("orders", "world", 5);
    zr_message_set_queue (next, r.queue);
    zr_send_result_t r2;
    assert_int_equal (zr_producer_send (producer, next, &r2), 0);
    assert_int_equal (r2.status, ZR_SEND_OK);
    assert_int_equal (r2.queue, r.queue);
    assert_int_equal (r2.offset, r.offset + 1);
    assert_true (s_is_hex_id (r2.msg_id));
    assert_string_not_equal (r2.msg_id, r.msg_id);
    //  Result may be NULL.
    assert_int_equal (zr_producer_send (producer, next, NULL), 0);
    zr_message_destroy (&msg);
    zr_message_destroy (&next);
    zr_producer_destroy (&producer);
}

static void
test_offsets_increase (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "seq", 4);
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    int64_t last = -1;
    for (int i = 0; i < 50; i++) {
        char body [32];
        snprintf (body, sizeof (body), "msg-%d", i);
        zr_message_t *msg = zr_message_new ("seq", body, strlen (body));
        zr_message_set_queue (msg, 2);
        zr_send_result_t r;
        assert_int_equal (zr_producer_send (producer, msg, &r), 0);
        assert_int_equal (r.queue, 2);
        assert_int_equal (r.offset, last + 1);
        last = r.offset;
        zr_message_destroy (&msg);
    }
    zr_producer_destroy (&producer);
}

//  FNV-1a 32-bit, as docs/protocol.md prescribes for sharding keys.
static uint32_t
s_fnv1a (const char *key)
{
    uint32_t hash = 2166136261u;
    for (const char *c = key; *c; c++) {
        hash ^= (uint8_t) *c;
        hash *= 16777619u;
    }
    return hash;
}

static void
test_sharding_key (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "shard", 8);
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    const char *keys [] = { "order-42", "order-43", "customer-7" };
    for (size_t k = 0; k < 3; k++) {
        int queue = -1;
        for (int i = 0; i < 10; i++) {
            zr_message_t *msg = zr_message_new ("shard", "x", 1);
            zr_message_set_sharding_key (msg, keys [k]);
            zr_send_result_t r;
            assert_int_equal (zr_producer_send (producer, msg, &r), 0);
            if (queue == -1)
                queue = r.queue;
            assert_int_equal (r.queue, queue);
            zr_message_destroy (&msg);
        }
        assert_int_equal (queue, (int) (s_fnv1a (keys [k]) % 8));
    }
    zr_producer_destroy (&producer);
}

static void
test_explicit_queue (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f->endpoint, "explicit", 6);
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    for (int q = 0; q < 6; q++) {
        zr_message_t *msg = zr_message_new ("explicit", "x", 1);
        zr_message_set_queue (msg, q);
        zr_message_set_sharding_key (msg, "ignored-when-queue-given");
        zr_send_result_t r;
        assert_int_equal (zr_producer_send (producer, msg, &r), 0);
        assert_int_equal (r.queue, q);
        assert_int_equal (r.offset, 0);
        zr_message_destroy (&msg);
    }
    zr_message_t *msg = zr_message_new ("explicit", "x", 1);
    zr_message_set_queue (msg, 6);
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (producer, msg, &r), -1);
    assert_int_equal (r.status, ZR_QUEUE_NOT_FOUND);
    assert_int_equal (r.queue, -1);
    assert_int_equal (r.offset, -1);
    assert_true (strlen (r.reason) > 0);
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
}

//  Async: results collected by the callback.
typedef struct {
    size_t calls;
    size_t ok;
    size_t timeouts;
    int64_t max_offset;
    byte *seen;                 //  one flag per offset
    size_t seen_size;
    size_t duplicates;
} async_state_t;

static void
s_on_sent (const zr_send_result_t *r, void *arg)
{
    async_state_t *s = (async_state_t *) arg;
    assert_ptr_equal (r->user, arg);
    s->calls++;
    if (r->status == ZR_TIMEOUT)
        s->timeouts++;
    if (r->status != ZR_SEND_OK)
        return;
    s->ok++;
    if (r->offset >= 0 && (size_t) r->offset < s->seen_size) {
        if (s->seen [r->offset])
            s->duplicates++;
        s->seen [r->offset] = 1;
    }
    else
        s->duplicates++;        //  out of the expected range
    if (r->offset > s->max_offset)
        s->max_offset = r->offset;
}

static void
test_async_send (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    const size_t count = 20000;
    s_create_topic (f->endpoint, "async", 1);
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    zr_producer_set_timeout (producer, 10000);

    async_state_t s = { 0 };
    s.max_offset = -1;
    s.seen_size = count + 1;
    s.seen = (byte *) zmalloc (s.seen_size);
    char body [1024];
    memset (body, 'b', sizeof (body));
    zr_message_t *msg = zr_message_new ("async", body, sizeof (body));
    int64_t start = zclock_mono ();
    for (size_t i = 0; i < count; i++) {
        zr_message_set_id (msg, NULL);      //  a fresh id per send
        assert_int_equal (zr_producer_send_async (producer, msg, s_on_sent, &s),
                          0);
        //  A sync send in the middle must not swallow async replies.
        if (i == count / 2) {
            zr_message_set_id (msg, NULL);
            zr_send_result_t r;
            assert_int_equal (zr_producer_send (producer, msg, &r), 0);
            assert_int_equal (r.status, ZR_SEND_OK);
            s.seen [r.offset] = 1;
        }
    }
    assert_int_equal (zr_producer_flush (producer, 20000), 0);
    int64_t took = zclock_mono () - start;
    print_message ("async: %zu sends of 1 KiB in %d ms\n", count, (int) took);
    assert_int_equal (s.calls, count);
    assert_int_equal (s.ok, count);
    assert_int_equal (s.duplicates, 0);
    assert_int_equal (s.max_offset, (int64_t) count);
    assert_int_equal (zr_producer_poll (producer, 0), 0);

    //  Read them all back.
    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    assert_non_null (consumer);
    int64_t offset = 0;
    size_t pulled = 0;
    while (pulled < count + 1) {
        zr_pull_t *pull = zr_consumer_pull (consumer, "async", 0, offset,
                                            1024, 0);
        assert_non_null (pull);
        assert_int_equal (zr_pull_status (pull), ZR_OK);
        assert_true (zr_pull_count (pull) > 0);
        for (size_t i = 0; i < zr_pull_count (pull); i++) {
            zr_message_t *m = zr_pull_message (pull, i);
            assert_int_equal (zr_message_offset (m), offset + (int64_t) i);
            assert_int_equal (zr_message_size (m), sizeof (body));
        }
        pulled += zr_pull_count (pull);
        offset = zr_pull_next (pull);
        zr_pull_destroy (&pull);
    }
    assert_int_equal (pulled, count + 1);
    zr_pull_t *pull = zr_consumer_pull (consumer, "async", 0, offset, 10, 0);
    assert_int_equal (zr_pull_status (pull), ZR_NO_NEW_MSG);
    zr_pull_destroy (&pull);

    zr_consumer_destroy (&consumer);
    zr_message_destroy (&msg);
    free (s.seen);
    zr_producer_destroy (&producer);
}

static void
test_oneway_send (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    const int count = 500;
    s_create_topic (f->endpoint, "oneway", 1);
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    for (int i = 0; i < count; i++) {
        char body [32];
        snprintf (body, sizeof (body), "oneway-%d", i);
        zr_message_t *msg = zr_message_new ("oneway", body, strlen (body));
        assert_int_equal (zr_producer_send_oneway (producer, msg), 0);
        zr_message_destroy (&msg);
    }
    //  No replies come back for oneway sends.
    assert_int_equal (zr_producer_poll (producer, 0), 0);

    zr_consumer_t *consumer = zr_consumer_new (f->endpoint);
    assert_non_null (consumer);
    int64_t offset = 0;
    int got = 0;
    int64_t deadline = zclock_mono () + 20000;
    while (got < count && zclock_mono () < deadline) {
        zr_pull_t *pull = zr_consumer_pull (consumer, "oneway", 0, offset,
                                            256, 1000);
        assert_non_null (pull);
        zr_status_t status = zr_pull_status (pull);
        assert_true (status == ZR_OK || status == ZR_NO_NEW_MSG);
        for (size_t i = 0; i < zr_pull_count (pull); i++) {
            zr_message_t *m = zr_pull_message (pull, i);
            char body [32];
            snprintf (body, sizeof (body), "oneway-%d", got);
            //  One producer, one queue: the order is kept.
            assert_int_equal (zr_message_size (m), strlen (body));
            assert_memory_equal (zr_message_body (m), body, strlen (body));
            got++;
        }
        offset = zr_pull_next (pull);
        zr_pull_destroy (&pull);
    }
    assert_int_equal (got, count);
    zr_consumer_destroy (&consumer);
    zr_producer_destroy (&producer);
}

static void
test_missing_topic (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = zr_producer_new (f->endpoint);
    assert_non_null (producer);
    zr_message_t *msg = zr_message_new ("no-such-topic", "x", 1);
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (producer, msg, &r), -1);
    assert_int_equal (r.status, ZR_TOPIC_NOT_FOUND);
    assert_non_null (strstr (r.reason, "no-such-topic"));
    assert_int_equal (r.queue, -1);
    assert_int_equal (r.offset, -1);
    assert_false (zr_status_stored (r.status));

    //  Async gets the same status through its callback.
    async_state_t s = { 0 };
    s.seen_size = 1;
    s.seen = (byte *) zmalloc (1);
    assert_int_equal (zr_producer_send_async (producer, msg, s_on_sent, &s), 0);
    assert_int_equal (zr_producer_flush (producer, 5000), 0);
    assert_int_equal (s.calls, 1);
    assert_int_equal (s.ok, 0);
    assert_int_equal (s.timeouts, 0);
    free (s.seen);

    //  Once created, the same producer sends fine.
    s_create_topic (f->endpoint, "no-such-topic", 2);
    assert_int_equal (zr_producer_send (producer, msg, &r), 0);
    assert_int_equal (r.status, ZR_SEND_OK);
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
}

//  Sends to endpoint, where no broker answers: sync and async time out.
static void
s_check_timeout (const char *endpoint)
{
    zr_producer_t *producer = zr_producer_new (endpoint);
    assert_non_null (producer);
    zr_producer_set_timeout (producer, 100);
    zr_producer_set_retries (producer, 1);
    zr_message_t *msg = zr_message_new ("lost", "x", 1);
    zr_send_result_t r;
    int64_t start = zclock_mono ();
    assert_int_equal (zr_producer_send (producer, msg, &r), -1);
    int64_t took = zclock_mono () - start;
    assert_int_equal (r.status, ZR_TIMEOUT);
    assert_true (s_is_hex_id (r.msg_id));
    assert_string_equal (r.msg_id, zr_message_id (msg));
    assert_true (took >= 200);          //  two attempts of 100 ms
    assert_true (took < 5000);

    async_state_t s = { 0 };
    s.seen_size = 1;
    s.seen = (byte *) zmalloc (1);
    zr_message_set_id (msg, NULL);
    assert_int_equal (zr_producer_send_async (producer, msg, s_on_sent, &s), 0);
    assert_int_equal (zr_producer_poll (producer, 0), 1);
    assert_int_equal (zr_producer_flush (producer, 5000), -1);
    assert_int_equal (s.calls, 1);
    assert_int_equal (s.timeouts, 1);
    assert_int_equal (zr_producer_poll (producer, 0), 0);
    //  The timeout was reported once.
    assert_int_equal (zr_producer_flush (producer, 100), 0);
    free (s.seen);
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
}

static void
test_timeout_no_broker (void **state)
{
    (void) state;
    //  inproc: connect before bind is allowed, nobody ever binds.
    char *endpoint = zsys_sprintf ("inproc://nobody-%d", (int) getpid ());
    s_check_timeout (endpoint);
    zstr_free (&endpoint);

    //  tcp: a ROUTER that never answers (a port closed again could be
    //  taken by a broker of a test running in parallel).
    zsock_t *silent = zsock_new (ZMQ_ROUTER);
    assert_non_null (silent);
    int port = zsock_bind (silent, "tcp://127.0.0.1:*");
    assert_true (port > 0);
    endpoint = zsys_sprintf ("tcp://127.0.0.1:%d", port);
    s_check_timeout (endpoint);
    zstr_free (&endpoint);
    zsock_destroy (&silent);

    assert_null (zr_producer_new ("nonsense://x"));
    assert_null (zr_producer_new (""));
}

//  --------------------------------------------------------------------
//  A scripted fake broker (a ROUTER in an actor) for what a real broker
//  does not do on demand: answer BUSY, stay silent, reorder replies.
//  args: "endpoint script"; script letters, one per request: B = reply
//  BUSY, S = stay silent, O = reply SEND_OK at once, R = hold the
//  request, F = hold it too, then answer every held request, newest
//  first, with SEND_OK. After the script every request gets SEND_OK. On "IDS" the actor replies with the ids it saw,
//  one string frame each, in arrival order.

static void
s_fake_reply (zsock_t *router, zframe_t *peer, int64_t rid, const char *id,
              const char *status, int64_t offset)
{
    zr_enc_t *enc = zr_enc_new ();
    bool ok = streq (status, "SEND_OK");
    zr_enc_map (enc, ok ? 9 : 5);
    zr_enc_kint (enc, "v", 1);
    zr_enc_kstr (enc, "type", "reply");
    zr_enc_kint (enc, "rid", rid);
    zr_enc_kstr (enc, "status", status);
    if (ok) {
        zr_enc_kstr (enc, "id", id);
        zr_enc_kstr (enc, "store_id", "fake:fake:0:0");
        zr_enc_kint (enc, "queue", 0);
        zr_enc_kint (enc, "offset", offset);
        zr_enc_kstr (enc, "flush", "sync");
    }
    else
        zr_enc_kstr (enc, "reason", "scripted");
    zframe_t *copy = zframe_dup (peer);
    zframe_send (&copy, router, ZFRAME_MORE);
    zframe_t *frame = zr_enc_frame (enc);
    zframe_send (&frame, router, 0);
    zr_enc_destroy (&enc);
}

typedef struct {
    zframe_t *peer;
    int64_t rid;
    char id [ZR_MSG_ID_LEN + 1];
} held_t;

static void
s_fake_actor (zsock_t *pipe, void *args)
{
    char *spec = strdup ((const char *) args);
    //  No cmocka assertions in this thread: a failure shows in the test
    //  thread as a missing or wrong reply.
    char *script = strchr (spec, ' ');
    if (script)
        *script++ = 0;
    else
        script = "";
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    if (zsock_bind (router, "%s", spec) == -1)
        zsys_error ("fake: cannot bind %s", spec);
    zsock_signal (pipe, 0);
    zlistx_t *ids = zlistx_new ();
    zlistx_set_destructor (ids, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_duplicator (ids, (zlistx_duplicator_fn *) strdup);
    held_t held [64];
    size_t nheld = 0;
    size_t step = 0;
    int64_t offset = 0;
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *cmd = zstr_recv (pipe);
            bool term = !cmd || streq (cmd, "$TERM");
            if (cmd && streq (cmd, "IDS")) {
                zmsg_t *reply = zmsg_new ();
                for (char *id = (char *) zlistx_first (ids); id;
                     id = (char *) zlistx_next (ids))
                    zmsg_addstr (reply, id);
                zmsg_send (&reply, pipe);
            }
            zstr_free (&cmd);
            if (term)
                break;
            continue;
        }
        if (which != router)
            break;
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        zframe_t *peer = zmsg_pop (msg);
        zframe_t *head = zmsg_pop (msg);
        const char *err = NULL;
        zr_hdr_t *hdr = head ? zr_hdr_decode (zframe_data (head),
                                              zframe_size (head), &err)
                             : NULL;
        int64_t rid = -1;
        char id [ZR_MSG_ID_LEN + 1] = "";
        if (hdr) {
            zr_field_int (zr_hdr_root (hdr), "rid", &rid);
            zr_field_strbuf (zr_hdr_root (hdr), "id", id, sizeof (id));
        }
        zlistx_add_end (ids, id);
        char action = script [step] ? script [step++] : 'O';
        if (action == 'B')
            s_fake_reply (router, peer, rid, id, "BUSY", 0);
        else
        if (action == 'O')
            s_fake_reply (router, peer, rid, id, "SEND_OK", offset++);
        else
        if ((action == 'R' || action == 'F') && nheld < 64) {
            held [nheld].peer = zframe_dup (peer);
            held [nheld].rid = rid;
            strcpy (held [nheld].id, id);
            nheld++;
            while (action == 'F' && nheld) {
                nheld--;
                s_fake_reply (router, held [nheld].peer, held [nheld].rid,
                              held [nheld].id, "SEND_OK", offset++);
                zframe_destroy (&held [nheld].peer);
            }
        }
        zr_hdr_destroy (&hdr);
        zframe_destroy (&peer);
        zframe_destroy (&head);
        zmsg_destroy (&msg);
    }
    while (nheld)
        zframe_destroy (&held [--nheld].peer);
    zpoller_destroy (&poller);
    zlistx_destroy (&ids);
    zsock_destroy (&router);
    free (spec);
}

//  Returns the ids the fake saw (caller destroys).
static zmsg_t *
s_fake_ids (zactor_t *fake)
{
    zstr_send (fake, "IDS");
    zsock_set_rcvtimeo (fake, 5000);
    zmsg_t *ids = zmsg_recv (fake);
    assert_non_null (ids);
    return ids;
}

static void
test_retry_keeps_id (void **state)
{
    (void) state;
    char *endpoint = zsys_sprintf ("inproc://fake-retry-%d", (int) getpid ());
    char *args = zsys_sprintf ("%s BSO", endpoint);
    zactor_t *fake = zactor_new (s_fake_actor, args);
    assert_non_null (fake);
    zr_producer_t *producer = zr_producer_new (endpoint);
    zr_producer_set_timeout (producer, 200);
    zr_producer_set_retries (producer, 2);
    zr_message_t *msg = zr_message_new ("t", "x", 1);
    zr_send_result_t r;
    //  BUSY, then no reply (timeout), then SEND_OK: three attempts.
    assert_int_equal (zr_producer_send (producer, msg, &r), 0);
    assert_int_equal (r.status, ZR_SEND_OK);
    assert_true (r.flush_sync);
    assert_int_equal (r.queue, 0);
    zmsg_t *ids = s_fake_ids (fake);
    assert_int_equal (zmsg_size (ids), 3);
    for (zframe_t *id = zmsg_first (ids); id; id = zmsg_next (ids))
        assert_true (zframe_streq (id, zr_message_id (msg)));
    zmsg_destroy (&ids);

    //  retries = 0: BUSY is final (a second fake, with a fresh script).
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
    zactor_destroy (&fake);
    zstr_free (&args);

    args = zsys_sprintf ("%s-2 B", endpoint);
    zstr_free (&endpoint);
    endpoint = strdup (args);
    *strchr (endpoint, ' ') = 0;
    fake = zactor_new (s_fake_actor, args);
    producer = zr_producer_new (endpoint);
    zr_producer_set_retries (producer, 0);
    msg = zr_message_new ("t", "x", 1);
    assert_int_equal (zr_producer_send (producer, msg, &r), -1);
    assert_int_equal (r.status, ZR_BUSY);
    assert_string_equal (r.reason, "scripted");
    assert_int_equal (r.offset, -1);
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
    zactor_destroy (&fake);
    zstr_free (&args);
    zstr_free (&endpoint);
}

typedef struct {
    char ids [40][ZR_MSG_ID_LEN + 1];
    int calls [40];
    int bad;
} reorder_t;

static reorder_t s_reorder;

static void
s_on_reordered (const zr_send_result_t *r, void *arg)
{
    int i = (int) (intptr_t) arg;
    assert_ptr_equal (r->user, arg);
    if (r->status != ZR_SEND_OK || strcmp (r->msg_id, s_reorder.ids [i]))
        s_reorder.bad++;
    s_reorder.calls [i]++;
}

static void
test_async_reordered (void **state)
{
    (void) state;
    //  Requests 0..4 async and 5 sync are answered newest first (so the
    //  sync reply comes before the async ones); 6..10 async newest first
    //  (their replies come while the sync send 11 waits); 12..29 async
    //  newest first.
    char *endpoint = zsys_sprintf ("inproc://fake-reorder-%d", (int) getpid ());
    char *args = zsys_sprintf ("%s RRRRRF" "RRRRFO" "RRRRRRRRRRRRRRRRRF",
                               endpoint);
    zactor_t *fake = zactor_new (s_fake_actor, args);
    assert_non_null (fake);
    zr_producer_t *producer = zr_producer_new (endpoint);
    zr_producer_set_timeout (producer, 5000);
    memset (&s_reorder, 0, sizeof (s_reorder));
    for (int i = 0; i < 30; i++) {
        zr_message_t *msg = zr_message_new ("t", "x", 1);
        if (i == 5 || i == 11) {
            zr_send_result_t r;
            assert_int_equal (zr_producer_send (producer, msg, &r), 0);
            assert_int_equal (r.status, ZR_SEND_OK);
            assert_string_equal (r.msg_id, zr_message_id (msg));
        }
        else {
            assert_int_equal (zr_producer_send_async (
                                  producer, msg, s_on_reordered,
                                  (void *) (intptr_t) i), 0);
            strcpy (s_reorder.ids [i], zr_message_id (msg));
        }
        zr_message_destroy (&msg);
    }
    assert_int_equal (zr_producer_flush (producer, 5000), 0);
    for (int i = 0; i < 30; i++)
        assert_int_equal (s_reorder.calls [i], i == 5 || i == 11 ? 0 : 1);
    assert_int_equal (s_reorder.bad, 0);
    zr_producer_destroy (&producer);
    zactor_destroy (&fake);
    zstr_free (&args);
    zstr_free (&endpoint);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_message_names),
        cmocka_unit_test_setup_teardown (test_sync_send, s_setup_inproc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sync_send, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_offsets_increase,
                                         s_setup_inproc, s_teardown),
        cmocka_unit_test_setup_teardown (test_sharding_key, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_explicit_queue,
                                         s_setup_inproc, s_teardown),
        cmocka_unit_test_setup_teardown (test_async_send, s_setup_inproc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_async_send, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_oneway_send, s_setup_tcp,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_missing_topic, s_setup_noauto,
                                         s_teardown),
        cmocka_unit_test (test_timeout_no_broker),
        cmocka_unit_test (test_retry_keeps_id),
        cmocka_unit_test (test_async_reordered),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
