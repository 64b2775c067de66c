/*  tests/e2e/test_broker.c - the broker actor spoken to raw, as a client
    in another language would (docs/protocol.md): a DEALER (and once a
    REQ) socket, headers built with zr_enc_*, replies decoded with
    zr_hdr_decode.

    Covers PING, garbage and malformed requests (the broker answers each
    with the right status and reason, stores nothing and keeps serving),
    topics, SEND/PULL (queue choice, message maps, limits), GET_MSG, long
    polling, group commit under 16 pipelining clients, the in-flight cap,
    the disk threshold, consumer offsets, shutdown with a parked pull and
    restart on the same data directory.

    The whole suite runs twice: over inproc:// and over tcp://127.0.0.1:*.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"

#define RECV_TIMEOUT 5000

static bool s_tcp = false;      //  transport of the running group
static int s_seq = 0;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    zsock_t *dealer;
    zr_enc_t *enc;
    int64_t rid;
} fixture_t;

//  A decoded reply: header view plus the body frames left in msg.
typedef struct {
    zmsg_t *msg;
    zframe_t *head;
    zr_hdr_t *hdr;
    const zr_obj_t *h;
    int64_t rid;
    char status [32];
    char reason [512];
} reply_t;

//  --------------------------------------------------------------------
//  Sockets and broker

static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *sock = zsock_new_dealer (endpoint);
    assert_non_null (sock);
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, RECV_TIMEOUT);
    return sock;
}

static void
s_start (fixture_t *f, const char *extra)
{
    char *bind = s_tcp ? strdup ("tcp://127.0.0.1:*")
                       : zsys_sprintf ("inproc://broker-test-%d-%d",
                                       (int) getpid (), ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, extra, &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->broker);
    assert_non_null (f->endpoint);
    if (s_tcp)
        assert_non_null (strstr (f->endpoint, "tcp://127.0.0.1:"));
    f->dealer = s_dealer (f->endpoint);
}

static void
s_stop (fixture_t *f)
{
    zsock_destroy (&f->dealer);
    zactor_destroy (&f->broker);
    zstr_free (&f->endpoint);
}

//  Stops the broker and starts a new one on the same data directory.
static void
s_restart (fixture_t *f, const char *extra)
{
    s_stop (f);
    s_start (f, extra);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("brokertest");
    f->enc = zr_enc_new ();
    s_start (f, NULL);
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

//  --------------------------------------------------------------------
//  Requests and replies

//  Starts a request header with v, rid, cmd and `fields` more entries.
//  Returns the rid.
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

//  Sends data as frame 0 plus nbodies copies of body.
static void
s_send_bytes (zsock_t *sock, const void *data, size_t size, int nbodies,
              const void *body, size_t body_size)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, data, size);
    for (int i = 0; i < nbodies; i++)
        zmsg_addmem (msg, body, body_size);
    assert_int_equal (zmsg_send (&msg, sock), 0);
}

static void
s_send (fixture_t *f, zsock_t *sock, int nbodies, const void *body,
        size_t body_size)
{
    s_send_bytes (sock ? sock : f->dealer, zr_enc_data (f->enc),
                  zr_enc_size (f->enc), nbodies, body, body_size);
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

//  Waits up to timeout ms for one reply and checks its envelope (v, type,
//  rid, status; a reason on statuses that refuse). NULL on timeout.
static reply_t *
s_recv (zsock_t *sock, int timeout)
{
    zmq_pollitem_t items [] = { { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 } };
    int rc = zmq_poll (items, 1, timeout);
    if (rc <= 0 || !(items [0].revents & ZMQ_POLLIN))
        return NULL;
    zmsg_t *msg = zmsg_recv (sock);
    assert_non_null (msg);
    reply_t *r = (reply_t *) zmalloc (sizeof (reply_t));
    r->msg = msg;
    r->head = zmsg_pop (msg);
    assert_non_null (r->head);
    const char *err = NULL;
    r->hdr = zr_hdr_decode (zframe_data (r->head), zframe_size (r->head),
                            &err);
    if (!r->hdr)
        fail_msg ("reply header does not decode: %s", err);
    r->h = zr_hdr_root (r->hdr);
    assert_true (zr_obj_is_map (r->h));
    int64_t v = 0;
    assert_int_equal (zr_field_int (r->h, "v", &v), ZR_FIELD_OK);
    assert_true (v == 1);
    char type [16];
    assert_int_equal (zr_field_strbuf (r->h, "type", type, sizeof type),
                      ZR_FIELD_OK);
    assert_string_equal (type, "reply");
    assert_int_equal (zr_field_int (r->h, "rid", &r->rid), ZR_FIELD_OK);
    assert_int_equal (zr_field_strbuf (r->h, "status", r->status,
                                       sizeof r->status), ZR_FIELD_OK);
    zr_status_t status = zr_status_parse (r->status);
    if (status == ZR_UNKNOWN_STATUS)
        fail_msg ("unknown status '%s'", r->status);
    int rrc = zr_field_strbuf (r->h, "reason", r->reason, sizeof r->reason);
    if (rrc != ZR_FIELD_OK)
        r->reason [0] = 0;
    bool refusal = status != ZR_OK && status != ZR_NO_NEW_MSG
                && !zr_status_stored (status);
    if (refusal && strlen (r->reason) == 0)
        fail_msg ("status %s without a reason", r->status);
    return r;
}

//  Sends the encoded header (and bodies) and waits for the reply, which
//  must carry rid.
static reply_t *
s_call_n (fixture_t *f, zsock_t *sock, int64_t rid, int nbodies,
          const void *body, size_t body_size)
{
    sock = sock ? sock : f->dealer;
    s_send (f, sock, nbodies, body, body_size);
    reply_t *r = s_recv (sock, RECV_TIMEOUT);
    if (!r)
        fail_msg ("no reply to rid %" PRId64 " within %d ms", rid,
                  RECV_TIMEOUT);
    if (r->rid != rid)
        fail_msg ("reply rid %" PRId64 ", expected %" PRId64 " (%s: %s)",
                  r->rid, rid, r->status, r->reason);
    return r;
}

static reply_t *
s_call (fixture_t *f, int64_t rid)
{
    return s_call_n (f, NULL, rid, 0, NULL, 0);
}

//  Asserts a reply's status, and that its reason contains `part` (when
//  given).
static void
s_expect (reply_t *r, const char *status, const char *part)
{
    assert_non_null (r);
    if (strcmp (r->status, status) != 0)
        fail_msg ("status %s (%s), expected %s", r->status, r->reason,
                  status);
    if (part && !strstr (r->reason, part))
        fail_msg ("%s reason '%s' does not mention '%s'", status, r->reason,
                  part);
}

static void
s_expect_free (reply_t *r, const char *status, const char *part)
{
    s_expect (r, status, part);
    s_reply_destroy (&r);
}

static int64_t
s_int (reply_t *r, const char *key)
{
    int64_t v = 0;
    if (zr_field_int (r->h, key, &v) != ZR_FIELD_OK)
        fail_msg ("reply has no int '%s'", key);
    return v;
}

static void
s_ping_on (fixture_t *f, zsock_t *sock)
{
    int64_t rid = s_begin (f, "PING", 0);
    s_expect_free (s_call_n (f, sock, rid, 0, NULL, 0), "OK", NULL);
}

static void
s_ping (fixture_t *f)
{
    s_ping_on (f, NULL);
}

static reply_t *
s_create (fixture_t *f, const char *topic, int queues)
{
    int64_t rid = s_begin (f, "TOPIC_CREATE", 2);
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queues", queues);
    return s_call (f, rid);
}

static void
s_create_ok (fixture_t *f, const char *topic, int queues)
{
    reply_t *r = s_create (f, topic, queues);
    s_expect (r, "OK", NULL);
    assert_true (s_int (r, "queues") == queues);
    s_reply_destroy (&r);
}

//  SEND to topic, queue (-1: omitted), shard (NULL: omitted).
static reply_t *
s_produce (fixture_t *f, zsock_t *sock, const char *topic, int queue,
           const char *shard, const void *body, size_t size)
{
    int64_t rid = s_begin (f, "SEND", 1 + (queue >= 0) + (shard != NULL));
    zr_enc_kstr (f->enc, "topic", topic);
    if (queue >= 0)
        zr_enc_kint (f->enc, "queue", queue);
    if (shard)
        zr_enc_kstr (f->enc, "shard", shard);
    return s_call_n (f, sock, rid, 1, body, size);
}

//  Sends a string body to a queue; asserts SEND_OK; returns the offset.
static int64_t
s_produce_ok (fixture_t *f, const char *topic, int queue, const char *body)
{
    reply_t *r = s_produce (f, NULL, topic, queue, NULL, body,
                            strlen (body));
    s_expect (r, "SEND_OK", NULL);
    if (queue >= 0)
        assert_true (s_int (r, "queue") == queue);
    int64_t offset = s_int (r, "offset");
    s_reply_destroy (&r);
    return offset;
}

//  Sum of every queue's max (messages ever stored) from TOPIC_INFO.
static int64_t
s_total (fixture_t *f, const char *topic)
{
    int64_t rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", topic);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    const zr_obj_t *offsets = zr_obj_get (r->h, "offsets");
    assert_true (zr_obj_is_array (offsets));
    assert_true ((int64_t) zr_obj_size (offsets) == s_int (r, "queues"));
    int64_t total = 0;
    for (size_t i = 0; i < zr_obj_size (offsets); i++) {
        const zr_obj_t *pair = zr_obj_at (offsets, i);
        int64_t min = -1, max = -1;
        assert_int_equal (zr_obj_size (pair), 2);
        assert_int_equal (zr_obj_int (zr_obj_at (pair, 0), &min), 0);
        assert_int_equal (zr_obj_int (zr_obj_at (pair, 1), &max), 0);
        assert_true (min >= 0 && min <= max);
        total += max;
    }
    s_reply_destroy (&r);
    return total;
}

static void
s_bounds (fixture_t *f, const char *topic, int queue, int64_t *min,
          int64_t *max)
{
    int64_t rid = s_begin (f, "GET_OFFSETS", 2);
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queue", queue);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    *min = s_int (r, "min");
    *max = s_int (r, "max");
    s_reply_destroy (&r);
}

//  Sends a PULL (fields <= 0 are omitted, except offset); returns rid.
static int64_t
s_pull_send (fixture_t *f, zsock_t *sock, const char *topic, int queue,
             int64_t offset, int max_count, int max_bytes, int wait)
{
    int64_t rid = s_begin (f, "PULL", 3 + (max_count > 0)
                           + (max_bytes > 0) + (wait > 0));
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queue", queue);
    zr_enc_kint (f->enc, "offset", offset);
    if (max_count > 0)
        zr_enc_kint (f->enc, "max_count", max_count);
    if (max_bytes > 0)
        zr_enc_kint (f->enc, "max_bytes", max_bytes);
    if (wait > 0)
        zr_enc_kint (f->enc, "wait", wait);
    s_send (f, sock, 0, NULL, 0);
    return rid;
}

static reply_t *
s_pull (fixture_t *f, const char *topic, int queue, int64_t offset,
        int max_count, int max_bytes)
{
    int64_t rid = s_pull_send (f, NULL, topic, queue, offset, max_count,
                               max_bytes, 0);
    reply_t *r = s_recv (f->dealer, RECV_TIMEOUT);
    if (!r)
        fail_msg ("no reply to PULL");
    assert_true (r->rid == rid);
    return r;
}

//  Checks that a PULL reply's msgs[i] has every field with its type,
//  and that body frame i matches body.
static const zr_obj_t *
s_check_msg (reply_t *r, size_t i, const char *topic, int queue,
             int64_t offset, const char *body)
{
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_true (zr_obj_is_array (msgs));
    assert_true (i < zr_obj_size (msgs));
    assert_int_equal (zmsg_size (r->msg), zr_obj_size (msgs));
    const zr_obj_t *m = zr_obj_at (msgs, i);
    assert_true (zr_obj_is_map (m));
    char buf [ZR_STORE_ID_MAX + 1];
    assert_int_equal (zr_field_strbuf (m, "id", buf, sizeof buf), 0);
    assert_int_equal (strlen (buf), ZR_MSG_ID_LEN);
    assert_int_equal (zr_field_strbuf (m, "store_id", buf, sizeof buf), 0);
    char *tail = zsys_sprintf (":%s:%d:%" PRId64, topic, queue, offset);
    assert_true (strlen (buf) > strlen (tail));
    assert_string_equal (buf + strlen (buf) - strlen (tail), tail);
    zstr_free (&tail);
    assert_int_equal (zr_field_strbuf (m, "topic", buf, sizeof buf), 0);
    assert_string_equal (buf, topic);
    int64_t v = -1;
    assert_int_equal (zr_field_int (m, "queue", &v), 0);
    assert_true (v == queue);
    assert_int_equal (zr_field_int (m, "offset", &v), 0);
    assert_true (v == offset);
    const char *s;
    size_t len;
    assert_int_equal (zr_field_str (m, "tags", &s, &len), 0);
    assert_int_equal (zr_field_str (m, "keys", &s, &len), 0);
    assert_true (zr_obj_is_map (zr_obj_get (m, "props")));
    assert_int_equal (zr_field_int (m, "born", &v), 0);
    assert_int_equal (zr_field_int (m, "stored", &v), 0);
    assert_true (llabs (v - zclock_time ()) < 60000);
    zframe_t *frame = zmsg_first (r->msg);
    for (size_t j = 0; j < i; j++)
        frame = zmsg_next (r->msg);
    assert_non_null (frame);
    assert_int_equal (zframe_size (frame), strlen (body));
    assert_memory_equal (zframe_data (frame), body, strlen (body));
    return m;
}

static size_t
s_msg_count (reply_t *r)
{
    return zr_obj_size (zr_obj_get (r->h, "msgs"));
}

static int64_t
s_stat (fixture_t *f, const char *key)
{
    int64_t rid = s_begin (f, "STATS", 0);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    const zr_obj_t *stats = zr_obj_get (r->h, "stats");
    assert_true (zr_obj_is_map (stats));
    int64_t v = 0;
    if (zr_field_int (stats, key, &v) != ZR_FIELD_OK)
        fail_msg ("STATS has no int '%s'", key);
    s_reply_destroy (&r);
    return v;
}

static uint32_t
s_fnv1a (const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (uint8_t) *s;
        h *= 16777619u;
    }
    return h;
}

//  --------------------------------------------------------------------
//  Tests

static void
test_ping (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t rid = s_begin (f, "PING", 0);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    char buf [256];
    assert_int_equal (zr_field_strbuf (r->h, "broker", buf, sizeof buf), 0);
    assert_true (strlen (buf) > 0);
    assert_int_equal (zr_field_strbuf (r->h, "version", buf, sizeof buf), 0);
    assert_true (strlen (buf) > 0);
    assert_true (llabs (s_int (r, "time") - zclock_time ()) < 60000);
    assert_int_equal (zmsg_size (r->msg), 0);
    s_reply_destroy (&r);

    //  unknown fields are ignored
    rid = s_begin (f, "PING", 1);
    zr_enc_str (f->enc, "future");
    zr_enc_array (f->enc, 2);
    zr_enc_int (f->enc, 1);
    zr_enc_nil (f->enc);
    s_expect_free (s_call (f, rid), "OK", NULL);
}

//  Sends raw frame 0 bytes and expects an error reply with rid 0.
static void
s_garbage (fixture_t *f, const void *data, size_t size, const char *status,
           const char *part)
{
    s_send_bytes (f->dealer, data, size, 0, NULL, 0);
    reply_t *r = s_recv (f->dealer, RECV_TIMEOUT);
    if (!r)
        fail_msg ("no reply to %zu garbage bytes", size);
    assert_true (r->rid == 0);
    s_expect_free (r, status, part);
    s_ping (f);
}

static void
test_garbage (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "t", 4);
    reply_t *r;
    int64_t rid;

    s_garbage (f, "\xc1", 1, "MALFORMED", "msgpack");
    s_garbage (f, "", 0, "MALFORMED", NULL);
    s_garbage (f, "\xdd\xff\xff\xff\xff", 5, "MALFORMED", NULL);
    //  truncated msgpack: a valid PING less its last bytes
    rid = s_begin (f, "PING", 0);
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc) - 2,
               "MALFORMED", "truncated");
    //  trailing bytes
    zr_enc_raw (f->enc, "\x01", 1);
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc), "MALFORMED",
               "trailing");
    //  an array, not a map
    zr_enc_reset (f->enc);
    zr_enc_array (f->enc, 3);
    zr_enc_int (f->enc, 1);
    zr_enc_str (f->enc, "PING");
    zr_enc_int (f->enc, 5);
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc), "MALFORMED",
               "map");
    //  missing rid
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc), "MALFORMED",
               "rid");
    //  rid negative, rid a string, rid above INT64_MAX
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_kint (f->enc, "rid", -5);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc), "MALFORMED",
               "rid");
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_kstr (f->enc, "rid", "7");
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc), "MALFORMED",
               "rid");
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_str (f->enc, "rid");
    zr_enc_raw (f->enc, "\xcf\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_garbage (f, zr_enc_data (f->enc), zr_enc_size (f->enc), "MALFORMED",
               "rid");

    //  From here the rid is readable and echoed.
    //  missing v
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kint (f->enc, "rid", 77);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_expect_free (s_call (f, 77), "MALFORMED", "'v'");
    //  v = 2
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kint (f->enc, "v", 2);
    zr_enc_kint (f->enc, "rid", 78);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_expect_free (s_call (f, 78), "BAD_VERSION", "1");
    //  v a string
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kstr (f->enc, "v", "1");
    zr_enc_kint (f->enc, "rid", 79);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_expect_free (s_call (f, 79), "MALFORMED", "'v'");
    //  missing cmd
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_kint (f->enc, "rid", 80);
    s_expect_free (s_call (f, 80), "MALFORMED", "cmd");
    //  cmd an int
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_kint (f->enc, "rid", 81);
    zr_enc_kint (f->enc, "cmd", 3);
    s_expect_free (s_call (f, 81), "MALFORMED", "cmd");
    //  unknown command
    rid = s_begin (f, "FROBNICATE", 0);
    s_expect_free (s_call (f, rid), "UNKNOWN_COMMAND", "FROBNICATE");
    //  lower case is not a command
    rid = s_begin (f, "ping", 0);
    s_expect_free (s_call (f, rid), "UNKNOWN_COMMAND", "ping");
    //  a command that takes no body, with one
    rid = s_begin (f, "PING", 0);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED", "body");
    s_ping (f);

    //  SEND errors: each stores nothing.
    //  no body frame
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "t");
    s_expect_free (s_call_n (f, NULL, rid, 0, NULL, 0), "MALFORMED",
                   "body");
    assert_true (s_total (f, "t") == 0);
    //  two body frames
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "t");
    s_expect_free (s_call_n (f, NULL, rid, 2, "ab", 2), "MALFORMED",
                   "body");
    assert_true (s_total (f, "t") == 0);
    //  no topic, topic an int
    rid = s_begin (f, "SEND", 0);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "topic");
    rid = s_begin (f, "SEND", 1);
    zr_enc_kint (f->enc, "topic", 5);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "topic");
    //  bad topic names
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "a b");
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "BAD_ARGUMENT",
                   "a b");
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "");
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "BAD_ARGUMENT",
                   "topic");
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "t:1");
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "BAD_ARGUMENT",
                   "t:1");
    //  props not a map, props with an int value, props with an int key
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kstr (f->enc, "props", "color=red");
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "props");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_str (f->enc, "props");
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "a", "b");
    zr_enc_kint (f->enc, "n", 1);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "props");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_str (f->enc, "props");
    zr_enc_map (f->enc, 1);
    zr_enc_int (f->enc, 1);
    zr_enc_str (f->enc, "b");
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "props");
    assert_true (s_total (f, "t") == 0);
    //  ids that are not 32 hex digits
    const char *bad_ids [] = {
        "xyz", "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcde",        //  31
        "0123456789abcdef0123456789abcdef0",      //  33
    };
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids [0]; i++) {
        rid = s_begin (f, "SEND", 2);
        zr_enc_kstr (f->enc, "topic", "t");
        zr_enc_kstr (f->enc, "id", bad_ids [i]);
        s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "BAD_ARGUMENT",
                       "id");
    }
    //  id an int, tags an int, oneway a string, born negative
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "id", 12);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED", "id");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "tags", 12);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED", "tags");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kstr (f->enc, "oneway", "yes");
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "oneway");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "born", -1);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "BAD_ARGUMENT",
                   "born");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "shard", 9);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "MALFORMED",
                   "shard");
    assert_true (s_total (f, "t") == 0);
    //  unknown topic (auto-create is off)
    r = s_produce (f, NULL, "nope", -1, NULL, "x", 1);
    s_expect_free (r, "TOPIC_NOT_FOUND", "nope");
    //  queue out of range, queue below -1
    r = s_produce (f, NULL, "t", 4, NULL, "x", 1);
    s_expect_free (r, "QUEUE_NOT_FOUND", "t");
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "queue", -2);
    s_expect_free (s_call_n (f, NULL, rid, 1, "x", 1), "BAD_ARGUMENT",
                   "queue");
    assert_true (s_total (f, "t") == 0);

    //  header frame over 4 MiB
    size_t padsize = 4 * 1024 * 1024 + 1000;
    char *pad = (char *) malloc (padsize);
    memset (pad, 'p', padsize);
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_str (f->enc, "pad");
    zr_enc_strn (f->enc, pad, padsize);
    s_send (f, NULL, 1, "x", 1);
    free (pad);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    s_expect_free (r, "MALFORMED", "4194304");
    assert_true (s_total (f, "t") == 0);
    //  a request with 20 frames (header + 19 bodies)
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "t");
    s_send (f, NULL, 19, "x", 1);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    s_expect_free (r, "MALFORMED", "frame");
    assert_true (s_total (f, "t") == 0);
    //  and 1000 frames
    s_send (f, NULL, 999, "y", 1);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    s_expect_free (r, "MALFORMED", "frames");
    assert_true (s_total (f, "t") == 0);

    //  PULL errors
    rid = s_pull_send (f, NULL, "t", 0, 5, 0, 0, 0);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    assert_true (r->rid == rid);
    s_expect (r, "OFFSET_OUT_OF_RANGE", NULL);
    assert_true (s_int (r, "min") == 0);
    assert_true (s_int (r, "max") == 0);
    s_reply_destroy (&r);
    rid = s_pull_send (f, NULL, "t", 0, 0, 0, 0, 60001);
    s_expect_free (s_recv (f->dealer, RECV_TIMEOUT), "BAD_ARGUMENT", "wait");
    rid = s_pull_send (f, NULL, "t", 0, 0, 1025, 0, 0);
    s_expect_free (s_recv (f->dealer, RECV_TIMEOUT), "BAD_ARGUMENT",
                   "max_count");
    rid = s_begin (f, "PULL", 3);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "queue", 0);
    zr_enc_kint (f->enc, "offset", -1);
    s_expect_free (s_call (f, rid), "BAD_ARGUMENT", "offset");
    rid = s_begin (f, "PULL", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "queue", 0);
    s_expect_free (s_call (f, rid), "MALFORMED", "offset");
    rid = s_pull_send (f, NULL, "t", 9, 0, 0, 0, 0);
    s_expect_free (s_recv (f->dealer, RECV_TIMEOUT), "QUEUE_NOT_FOUND",
                   NULL);
    rid = s_pull_send (f, NULL, "nope", 0, 0, 0, 0, 0);
    s_expect_free (s_recv (f->dealer, RECV_TIMEOUT), "TOPIC_NOT_FOUND",
                   "nope");
    rid = s_begin (f, "GET_OFFSETS", 0);
    s_expect_free (s_call (f, rid), "MALFORMED", "topic");

    //  After all that, the broker still works and stored nothing.
    s_ping (f);
    assert_true (s_total (f, "t") == 0);
    assert_true (s_produce_ok (f, "t", 1, "good") == 0);
    assert_true (s_total (f, "t") == 1);
    assert_true (s_stat (f, "malformed") > 0);
}

//  An id that is given must be 32 hex digits (protocol.md, SEND): ""
//  is a bad id, not an absent one.
static void
test_send_empty_id_bad_argument (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "t", 2);
    int64_t rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kstr (f->enc, "id", "");
    reply_t *r = s_call_n (f, NULL, rid, 1, "x", 1);
    bool stored = streq (r->status, "SEND_OK");
    if (stored) {
        s_reply_destroy (&r);
        fail_msg ("SEND with id \"\" was stored (SEND_OK)");
    }
    s_expect_free (r, "BAD_ARGUMENT", "id");
    assert_true (s_total (f, "t") == 0);
}

//  Strings of the right type but a bad value are BAD_ARGUMENT (bad topic
//  name or id) or UNKNOWN_COMMAND (cmd), however long they are: the
//  length is part of the value, not of the type (protocol.md sections 4
//  and 5). Collects every mismatch, then fails once.
static void
test_long_strings_bad_argument (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "t", 2);
    char name [201];
    memset (name, 'n', 200);
    name [200] = 0;
    char failures [2048] = "";
    reply_t *r;
    int64_t rid;

    //  200-character topic on SEND, TOPIC_CREATE, PULL
    r = s_produce (f, NULL, name, -1, NULL, "x", 1);
    if (!streq (r->status, "BAD_ARGUMENT"))
        snprintf (failures + strlen (failures),
                  sizeof failures - strlen (failures),
                  "\n  SEND topic of 200 chars: %s (%s)", r->status,
                  r->reason);
    s_reply_destroy (&r);
    r = s_create (f, name, 2);
    if (!streq (r->status, "BAD_ARGUMENT"))
        snprintf (failures + strlen (failures),
                  sizeof failures - strlen (failures),
                  "\n  TOPIC_CREATE topic of 200 chars: %s (%s)", r->status,
                  r->reason);
    s_reply_destroy (&r);
    //  128 characters: one over the limit
    name [128] = 0;
    r = s_create (f, name, 2);
    if (!streq (r->status, "BAD_ARGUMENT"))
        snprintf (failures + strlen (failures),
                  sizeof failures - strlen (failures),
                  "\n  TOPIC_CREATE topic of 128 chars: %s (%s)", r->status,
                  r->reason);
    s_reply_destroy (&r);
    //  127 characters: the limit, accepted
    name [127] = 0;
    r = s_create (f, name, 1);
    s_expect_free (r, "OK", NULL);
    //  40-digit id
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kstr (f->enc, "id", "0123456789abcdef0123456789abcdef01234567");
    r = s_call_n (f, NULL, rid, 1, "x", 1);
    if (!streq (r->status, "BAD_ARGUMENT"))
        snprintf (failures + strlen (failures),
                  sizeof failures - strlen (failures),
                  "\n  SEND id of 40 hex digits: %s (%s)", r->status,
                  r->reason);
    s_reply_destroy (&r);
    //  a 40-character command name is unknown, not malformed
    rid = s_begin (f, "ABCDEFGHIJABCDEFGHIJABCDEFGHIJABCDEFGHIJ", 0);
    r = s_call (f, rid);
    if (!streq (r->status, "UNKNOWN_COMMAND"))
        snprintf (failures + strlen (failures),
                  sizeof failures - strlen (failures),
                  "\n  cmd of 40 chars: %s (%s)", r->status, r->reason);
    s_reply_destroy (&r);

    assert_true (s_total (f, "t") == 0);
    s_ping (f);
    if (*failures)
        fail_msg ("wrong statuses:%s", failures);
}

//  A oneway SEND gets no reply at all, not even an error (protocol.md,
//  SEND field `oneway`).
static void
test_oneway_error_silent (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "t", 1);
    //  a good oneway send: no reply, but stored
    int64_t rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kbool (f->enc, "oneway", true);
    s_send (f, NULL, 1, "x", 1);
    //  a bad one (unknown topic): no reply either
    rid = s_begin (f, "SEND", 2);
    zr_enc_kstr (f->enc, "topic", "nope");
    zr_enc_kbool (f->enc, "oneway", true);
    s_send (f, NULL, 1, "x", 1);
    //  the next reply is the PING's
    rid = s_begin (f, "PING", 0);
    s_send (f, NULL, 0, NULL, 0);
    reply_t *r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    if (r->rid != rid) {
        char what [600];
        snprintf (what, sizeof what, "rid %" PRId64 " %s (%s)", r->rid,
                  r->status, r->reason);
        s_reply_destroy (&r);
        fail_msg ("oneway SEND was answered: %s", what);
    }
    s_expect_free (r, "OK", NULL);
    assert_true (s_total (f, "t") == 1);
}

static void
test_req_socket (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "t", 1);
    zsock_t *req = zsock_new_req (f->endpoint);
    assert_non_null (req);
    zsock_set_linger (req, 0);
    int64_t rid = s_begin (f, "PING", 0);
    s_send (f, req, 0, NULL, 0);
    reply_t *r = s_recv (req, RECV_TIMEOUT);
    assert_non_null (r);
    assert_true (r->rid == rid);
    s_expect_free (r, "OK", NULL);
    //  SEND with a body through REQ, then read it back
    rid = s_begin (f, "SEND", 1);
    zr_enc_kstr (f->enc, "topic", "t");
    s_send (f, req, 1, "via-req", 7);
    r = s_recv (req, RECV_TIMEOUT);
    assert_non_null (r);
    assert_true (r->rid == rid);
    s_expect (r, "SEND_OK", NULL);
    assert_true (s_int (r, "offset") == 0);
    s_reply_destroy (&r);
    zsock_destroy (&req);
    r = s_pull (f, "t", 0, 0, 0, 0);
    s_expect (r, "OK", NULL);
    s_check_msg (r, 0, "t", 0, 0, "via-req");
    s_reply_destroy (&r);
}

static void
test_max_msg_size (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_restart (f, "max-msg-size=1024");
    s_create_ok (f, "t", 1);
    char body [1025];
    memset (body, 'b', sizeof body);
    reply_t *r = s_produce (f, NULL, "t", 0, NULL, body, 1025);
    s_expect_free (r, "MSG_TOO_LARGE", "1024");
    assert_true (s_total (f, "t") == 0);
    r = s_produce (f, NULL, "t", 0, NULL, body, 1024);
    s_expect_free (r, "SEND_OK", NULL);
    r = s_produce (f, NULL, "t", 0, NULL, "", 0);     //  empty body
    s_expect_free (r, "SEND_OK", NULL);
    assert_true (s_total (f, "t") == 2);
    r = s_pull (f, "t", 0, 0, 0, 0);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 2);
    assert_int_equal (zframe_size (zmsg_first (r->msg)), 1024);
    assert_int_equal (zframe_size (zmsg_next (r->msg)), 0);
    s_reply_destroy (&r);
}

static bool
s_created (reply_t *r)
{
    bool created = false;
    assert_int_equal (zr_field_bool (r->h, "created", &created), 0);
    return created;
}

static void
test_topics (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    reply_t *r = s_create (f, "alpha", 4);
    s_expect (r, "OK", NULL);
    assert_true (s_created (r));
    char buf [64];
    assert_int_equal (zr_field_strbuf (r->h, "topic", buf, sizeof buf), 0);
    assert_string_equal (buf, "alpha");
    s_reply_destroy (&r);
    r = s_create (f, "alpha", 4);
    s_expect (r, "OK", NULL);
    assert_false (s_created (r));
    s_reply_destroy (&r);
    //  grow
    r = s_create (f, "alpha", 6);
    s_expect (r, "OK", NULL);
    assert_false (s_created (r));
    assert_true (s_int (r, "queues") == 6);
    s_reply_destroy (&r);
    //  the new queues work
    assert_true (s_produce_ok (f, "alpha", 5, "q5") == 0);
    //  shrink, zero, too many
    s_expect_free (s_create (f, "alpha", 2), "BAD_ARGUMENT", "alpha");
    s_expect_free (s_create (f, "fresh", 0), "BAD_ARGUMENT", "queues");
    s_expect_free (s_create (f, "fresh", 1025), "BAD_ARGUMENT", "queues");
    //  default queue count
    int64_t rid = s_begin (f, "TOPIC_CREATE", 1);
    zr_enc_kstr (f->enc, "topic", "dflt");
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_true (s_int (r, "queues") == ZR_DEFAULT_QUEUES);
    s_reply_destroy (&r);

    s_create_ok (f, "zeta", 1);
    s_create_ok (f, "beta", 2);
    s_create_ok (f, "Mid_1-x%y|z", 3);
    //  TOPIC_LIST, sorted
    rid = s_begin (f, "TOPIC_LIST", 0);
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    const zr_obj_t *topics = zr_obj_get (r->h, "topics");
    assert_int_equal (zr_obj_size (topics), 5);
    char prev [ZR_NAME_MAX + 1] = "";
    bool saw_beta = false;
    for (size_t i = 0; i < zr_obj_size (topics); i++) {
        const zr_obj_t *t = zr_obj_at (topics, i);
        char name [ZR_NAME_MAX + 1];
        int64_t queues = 0;
        assert_int_equal (zr_field_strbuf (t, "topic", name, sizeof name),
                          0);
        assert_int_equal (zr_field_int (t, "queues", &queues), 0);
        if (streq (name, "beta")) {
            saw_beta = true;
            assert_true (queues == 2);
        }
        if (i > 0 && strcmp (prev, name) >= 0)
            fail_msg ("TOPIC_LIST not sorted: '%s' before '%s'", prev,
                      name);
        strcpy (prev, name);
    }
    assert_true (saw_beta);
    s_reply_destroy (&r);

    //  TOPIC_INFO offsets
    for (int i = 0; i < 3; i++)
        assert_true (s_produce_ok (f, "beta", 1, "b") == i);
    rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "beta");
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_true (s_int (r, "queues") == 2);
    const zr_obj_t *offsets = zr_obj_get (r->h, "offsets");
    assert_int_equal (zr_obj_size (offsets), 2);
    int64_t v;
    assert_int_equal (zr_obj_int (zr_obj_at (zr_obj_at (offsets, 0), 1),
                                  &v), 0);
    assert_true (v == 0);
    assert_int_equal (zr_obj_int (zr_obj_at (zr_obj_at (offsets, 1), 0),
                                  &v), 0);
    assert_true (v == 0);
    assert_int_equal (zr_obj_int (zr_obj_at (zr_obj_at (offsets, 1), 1),
                                  &v), 0);
    assert_true (v == 3);
    s_reply_destroy (&r);

    //  TOPIC_DELETE
    rid = s_begin (f, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->enc, "topic", "beta");
    s_expect_free (s_call (f, rid), "OK", NULL);
    rid = s_begin (f, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->enc, "topic", "beta");
    s_expect_free (s_call (f, rid), "TOPIC_NOT_FOUND", "beta");
    r = s_produce (f, NULL, "beta", 1, NULL, "b", 1);
    s_expect_free (r, "TOPIC_NOT_FOUND", "beta");
    rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "beta");
    s_expect_free (s_call (f, rid), "TOPIC_NOT_FOUND", "beta");
    rid = s_begin (f, "TOPIC_LIST", 0);
    r = s_call (f, rid);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "topics")), 4);
    s_reply_destroy (&r);
    //  a deleted topic's messages are gone when it comes back
    r = s_create (f, "beta", 2);
    s_expect (r, "OK", NULL);
    assert_true (s_created (r));
    s_reply_destroy (&r);
    assert_true (s_total (f, "beta") == 0);
    assert_true (s_produce_ok (f, "beta", 1, "again") == 0);
}

static void
test_auto_create (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_restart (f, "auto-create=true");
    reply_t *r = s_produce (f, NULL, "auto1", -1, NULL, "x", 1);
    s_expect_free (r, "SEND_OK", NULL);
    int64_t rid = s_begin (f, "TOPIC_INFO", 1);
    zr_enc_kstr (f->enc, "topic", "auto1");
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_true (s_int (r, "queues") == 8);
    s_reply_destroy (&r);
    assert_true (s_total (f, "auto1") == 1);
    //  a bad name is still refused, and creates nothing
    r = s_produce (f, NULL, "bad name", -1, NULL, "x", 1);
    s_expect_free (r, "BAD_ARGUMENT", NULL);
    rid = s_begin (f, "TOPIC_LIST", 0);
    r = s_call (f, rid);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "topics")), 1);
    s_reply_destroy (&r);
}

static void
test_send_pull (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "sp", 4);
    //  explicit queue, with every optional field on the first message
    int64_t rid = s_begin (f, "SEND", 7);
    zr_enc_kstr (f->enc, "topic", "sp");
    zr_enc_kint (f->enc, "queue", 2);
    zr_enc_kstr (f->enc, "tags", "tagA");
    zr_enc_kstr (f->enc, "keys", "k1 k2");
    zr_enc_kint (f->enc, "born", 1234);
    zr_enc_kstr (f->enc, "id", "0123456789abcdef0123456789ABCDEF");
    zr_enc_str (f->enc, "props");
    zr_enc_map (f->enc, 1);
    zr_enc_kstr (f->enc, "color", "red");
    reply_t *r = s_call_n (f, NULL, rid, 1, "m0", 2);
    s_expect (r, "SEND_OK", NULL);
    char id [64], store_id [ZR_STORE_ID_MAX + 1], flush [16];
    assert_int_equal (zr_field_strbuf (r->h, "id", id, sizeof id), 0);
    assert_string_equal (id, "0123456789abcdef0123456789ABCDEF");
    assert_int_equal (zr_field_strbuf (r->h, "store_id", store_id,
                                       sizeof store_id), 0);
    assert_int_equal (zr_field_strbuf (r->h, "flush", flush, sizeof flush),
                      0);
    assert_string_equal (flush, "async");
    assert_true (s_int (r, "queue") == 2);
    assert_true (s_int (r, "offset") == 0);
    s_reply_destroy (&r);
    //  store id is GROUP:TOPIC:QUEUE:OFFSET with this broker's group
    rid = s_begin (f, "PING", 0);
    r = s_call (f, rid);
    char group [256];
    assert_int_equal (zr_field_strbuf (r->h, "broker", group, sizeof group),
                      0);
    s_reply_destroy (&r);
    char *expect = zsys_sprintf ("%s:sp:2:0", group);
    assert_string_equal (store_id, expect);
    zstr_free (&expect);
    //  broker-assigned id: 32 hex digits
    r = s_produce (f, NULL, "sp", 2, NULL, "m1", 2);
    s_expect (r, "SEND_OK", NULL);
    assert_int_equal (zr_field_strbuf (r->h, "id", id, sizeof id), 0);
    assert_int_equal (strlen (id), 32);
    assert_int_equal (strspn (id, "0123456789abcdefABCDEF"), 32);
    assert_true (s_int (r, "offset") == 1);
    s_reply_destroy (&r);
    assert_true (s_produce_ok (f, "sp", 2, "m2") == 2);

    //  shard: same key, same queue, FNV-1a % queues
    s_create_ok (f, "sh", 4);
    int shard_queue = (int) (s_fnv1a ("user-42") % 4);
    for (int i = 0; i < 5; i++) {
        r = s_produce (f, NULL, "sh", -1, "user-42", "s", 1);
        s_expect (r, "SEND_OK", NULL);
        assert_true (s_int (r, "queue") == shard_queue);
        assert_true (s_int (r, "offset") == i);
        s_reply_destroy (&r);
    }
    //  round robin spreads over every queue
    s_create_ok (f, "rr", 4);
    int per_queue [4] = { 0, 0, 0, 0 };
    for (int i = 0; i < 8; i++) {
        r = s_produce (f, NULL, "rr", -1, NULL, "r", 1);
        s_expect (r, "SEND_OK", NULL);
        int64_t q = s_int (r, "queue");
        assert_true (q >= 0 && q < 4);
        per_queue [q]++;
        s_reply_destroy (&r);
    }
    for (int q = 0; q < 4; q++)
        assert_int_equal (per_queue [q], 2);

    //  PULL everything from sp/2
    r = s_pull (f, "sp", 2, 0, 0, 0);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 3);
    assert_true (s_int (r, "next") == 3);
    assert_true (s_int (r, "min") == 0);
    assert_true (s_int (r, "max") == 3);
    const zr_obj_t *m = s_check_msg (r, 0, "sp", 2, 0, "m0");
    char buf [64];
    assert_int_equal (zr_field_strbuf (m, "tags", buf, sizeof buf), 0);
    assert_string_equal (buf, "tagA");
    assert_int_equal (zr_field_strbuf (m, "keys", buf, sizeof buf), 0);
    assert_string_equal (buf, "k1 k2");
    assert_int_equal (zr_field_strbuf (m, "id", buf, sizeof buf), 0);
    assert_string_equal (buf, "0123456789abcdef0123456789ABCDEF");
    assert_int_equal (zr_field_strbuf (zr_obj_get (m, "props"), "color",
                                       buf, sizeof buf), 0);
    assert_string_equal (buf, "red");
    int64_t v;
    assert_int_equal (zr_field_int (m, "born", &v), 0);
    assert_true (v == 1234);
    m = s_check_msg (r, 1, "sp", 2, 1, "m1");
    assert_int_equal (zr_field_strbuf (m, "tags", buf, sizeof buf), 0);
    assert_string_equal (buf, "");
    assert_int_equal (zr_obj_size (zr_obj_get (m, "props")), 0);
    assert_int_equal (zr_field_int (m, "born", &v), 0);
    assert_true (v == 0);
    char store_id1 [ZR_STORE_ID_MAX + 1];
    assert_int_equal (zr_field_strbuf (m, "store_id", store_id1,
                                       sizeof store_id1), 0);
    s_check_msg (r, 2, "sp", 2, 2, "m2");
    s_reply_destroy (&r);

    //  max_count
    r = s_pull (f, "sp", 2, 0, 2, 0);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 2);
    assert_true (s_int (r, "next") == 2);
    s_reply_destroy (&r);
    //  max_bytes: at least one
    r = s_pull (f, "sp", 2, 1, 0, 1);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 1);
    s_check_msg (r, 0, "sp", 2, 1, "m1");
    assert_true (s_int (r, "next") == 2);
    s_reply_destroy (&r);
    //  from the middle
    r = s_pull (f, "sp", 2, 2, 0, 0);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 1);
    s_check_msg (r, 0, "sp", 2, 2, "m2");
    s_reply_destroy (&r);
    //  at the end
    r = s_pull (f, "sp", 2, 3, 0, 0);
    s_expect (r, "NO_NEW_MSG", NULL);
    assert_true (s_int (r, "next") == 3);
    assert_true (s_int (r, "min") == 0);
    assert_true (s_int (r, "max") == 3);
    assert_int_equal (zmsg_size (r->msg), 0);
    s_reply_destroy (&r);
    //  an empty queue
    r = s_pull (f, "sp", 0, 0, 0, 0);
    s_expect_free (r, "NO_NEW_MSG", NULL);

    //  GET_MSG by store id
    rid = s_begin (f, "GET_MSG", 1);
    zr_enc_kstr (f->enc, "store_id", store_id1);
    r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    m = zr_obj_get (r->h, "msg");
    assert_true (zr_obj_is_map (m));
    assert_int_equal (zr_field_int (m, "offset", &v), 0);
    assert_true (v == 1);
    assert_int_equal (zmsg_size (r->msg), 1);
    assert_int_equal (zframe_size (zmsg_first (r->msg)), 2);
    assert_memory_equal (zframe_data (zmsg_first (r->msg)), "m1", 2);
    s_reply_destroy (&r);
    //  bad ids
    const char *bad [] = { "garbage", "", "a:b", "g:sp:x:1", "g:sp:1:",
                           "g:sp:-1:0", "g:sp:1:-5", ":::" };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char *sid = streq (bad [i], "") ? strdup ("")
                  : zsys_sprintf ("%s", bad [i]);
        if (strncmp (sid, "g:", 2) == 0) {
            zstr_free (&sid);
            sid = zsys_sprintf ("%s%s", group, bad [i] + 1);
        }
        rid = s_begin (f, "GET_MSG", 1);
        zr_enc_kstr (f->enc, "store_id", sid);
        r = s_call (f, rid);
        if (!streq (r->status, "BAD_ARGUMENT"))
            fail_msg ("GET_MSG '%s': %s (%s)", sid, r->status, r->reason);
        s_reply_destroy (&r);
        zstr_free (&sid);
    }
    rid = s_begin (f, "GET_MSG", 1);
    zr_enc_kint (f->enc, "store_id", 5);
    s_expect_free (s_call (f, rid), "MALFORMED", "store_id");
    //  another group, a missing offset, a missing topic
    rid = s_begin (f, "GET_MSG", 1);
    zr_enc_kstr (f->enc, "store_id", "othergroup:sp:2:0");
    s_expect_free (s_call (f, rid), "NOT_FOUND", NULL);
    char *sid = zsys_sprintf ("%s:sp:2:99", group);
    rid = s_begin (f, "GET_MSG", 1);
    zr_enc_kstr (f->enc, "store_id", sid);
    s_expect_free (s_call (f, rid), "NOT_FOUND", NULL);
    zstr_free (&sid);
    sid = zsys_sprintf ("%s:nosuch:0:0", group);
    rid = s_begin (f, "GET_MSG", 1);
    zr_enc_kstr (f->enc, "store_id", sid);
    s_expect_free (s_call (f, rid), "NOT_FOUND", NULL);
    zstr_free (&sid);
}

//  max_bytes counts body bytes (protocol.md, PULL): two 1000-byte bodies
//  fit in max_bytes 2000.
static void
test_pull_max_bytes_counts_bodies (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "mb", 1);
    char body [1001];
    memset (body, 'q', 1000);
    body [1000] = 0;
    for (int i = 0; i < 3; i++)
        assert_true (s_produce_ok (f, "mb", 0, body) == i);
    //  (max_bytes, messages expected) for 1000-byte bodies
    int cases [][2] = { { 3000, 3 }, { 2999, 2 }, { 2000, 2 }, { 1999, 1 },
                        { 1, 1 } };
    char failures [1024] = "";
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        reply_t *r = s_pull (f, "mb", 0, 0, 0, cases [i][0]);
        s_expect (r, "OK", NULL);
        if ((int) s_msg_count (r) != cases [i][1])
            snprintf (failures + strlen (failures),
                      sizeof failures - strlen (failures),
                      "\n  max_bytes %d: %zu messages, expected %d",
                      cases [i][0], s_msg_count (r), cases [i][1]);
        s_reply_destroy (&r);
    }
    if (*failures)
        fail_msg ("PULL max_bytes over 1000-byte bodies:%s", failures);
}

static void
test_long_poll (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "lp", 2);
    zsock_t *other = s_dealer (f->endpoint);
    //  park a pull at the end of the queue
    int64_t prid = s_pull_send (f, NULL, "lp", 0, 0, 0, 0, 10000);
    //  a PING after it is answered first: the pull is parked
    s_ping (f);
    int64_t t0 = zclock_mono ();
    reply_t *r = s_produce (f, other, "lp", 0, NULL, "wake", 4);
    s_expect_free (r, "SEND_OK", NULL);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    if (!r)
        fail_msg ("parked pull was not answered after a send");
    assert_true (r->rid == prid);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 1);
    s_check_msg (r, 0, "lp", 0, 0, "wake");
    assert_true (s_int (r, "next") == 1);
    s_reply_destroy (&r);
    assert_true (zclock_mono () - t0 < 5000);
    assert_true (s_stat (f, "long_polls") >= 1);

    //  a send to another queue does not wake a pull on this one
    prid = s_pull_send (f, NULL, "lp", 0, 1, 0, 0, 10000);
    s_ping (f);
    s_expect_free (s_produce (f, other, "lp", 1, NULL, "q1", 2), "SEND_OK",
                   NULL);
    s_ping (f);                 //  answered; the pull is still parked
    s_expect_free (s_produce (f, other, "lp", 0, NULL, "q0", 2), "SEND_OK",
                   NULL);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    assert_true (r->rid == prid);
    s_expect (r, "OK", NULL);
    s_check_msg (r, 0, "lp", 0, 1, "q0");
    s_reply_destroy (&r);

    //  wait=200 on an idle queue: NO_NEW_MSG after about 200 ms
    t0 = zclock_mono ();
    prid = s_pull_send (f, NULL, "lp", 0, 2, 0, 0, 200);
    r = s_recv (f->dealer, 3000);
    int64_t elapsed = zclock_mono () - t0;
    if (!r)
        fail_msg ("pull with wait=200 not answered within 3 s");
    assert_true (r->rid == prid);
    s_expect (r, "NO_NEW_MSG", NULL);
    assert_true (s_int (r, "next") == 2);
    s_reply_destroy (&r);
    assert_true (elapsed >= 190);

    //  deleting the topic answers a pull parked on it
    prid = s_pull_send (f, NULL, "lp", 1, 1, 0, 0, 10000);
    s_ping (f);
    int64_t rid = s_begin (f, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->enc, "topic", "lp");
    s_expect_free (s_call_n (f, other, rid, 0, NULL, 0), "OK", NULL);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    if (!r)
        fail_msg ("pull parked on a deleted topic was not answered");
    assert_true (r->rid == prid);
    s_expect_free (r, "TOPIC_NOT_FOUND", "lp");
    zsock_destroy (&other);
}

#define GC_CLIENTS 16
#define GC_SENDS 500
#define GC_QUEUES 4

static void
test_group_commit (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "gc", GC_QUEUES);
    int64_t commits_before = s_stat (f, "commits");
    zsock_t *clients [GC_CLIENTS];
    for (int c = 0; c < GC_CLIENTS; c++) {
        clients [c] = s_dealer (f->endpoint);
        zsock_set_rcvhwm (clients [c], 10000);
        zsock_set_sndhwm (clients [c], 10000);
    }
    //  every client pipelines all its sends, then reads all replies
    for (int i = 0; i < GC_SENDS; i++)
        for (int c = 0; c < GC_CLIENTS; c++) {
            s_begin (f, "SEND", 1);
            zr_enc_kstr (f->enc, "topic", "gc");
            s_send (f, clients [c], 1, "payload", 7);
        }
    size_t total = GC_CLIENTS * GC_SENDS;
    bool *seen = (bool *) calloc (GC_QUEUES * total, sizeof (bool));
    int64_t count [GC_QUEUES] = { 0 };
    for (int c = 0; c < GC_CLIENTS; c++) {
        for (int i = 0; i < GC_SENDS; i++) {
            reply_t *r = s_recv (clients [c], 10000);
            if (!r)
                fail_msg ("client %d: reply %d missing", c, i);
            s_expect (r, "SEND_OK", NULL);
            int64_t q = s_int (r, "queue");
            int64_t o = s_int (r, "offset");
            assert_true (q >= 0 && q < GC_QUEUES);
            assert_true (o >= 0 && o < (int64_t) total);
            if (seen [q * total + o])
                fail_msg ("(queue %" PRId64 ", offset %" PRId64 ") twice",
                          q, o);
            seen [q * total + o] = true;
            count [q]++;
            s_reply_destroy (&r);
        }
        zsock_destroy (&clients [c]);
    }
    //  per queue, offsets are exactly 0..n-1
    int64_t sum = 0;
    for (int q = 0; q < GC_QUEUES; q++) {
        for (int64_t o = 0; o < count [q]; o++)
            if (!seen [q * total + o])
                fail_msg ("queue %d: offset %" PRId64 " missing of %" PRId64,
                          q, o, count [q]);
        int64_t min, max;
        s_bounds (f, "gc", q, &min, &max);
        assert_true (min == 0);
        assert_true (max == count [q]);
        sum += count [q];
    }
    free (seen);
    assert_true (sum == (int64_t) total);
    int64_t sends_ok = s_stat (f, "sends_ok");
    int64_t commits = s_stat (f, "commits") - commits_before;
    assert_true (sends_ok == (int64_t) total);
    if (commits >= sends_ok)
        fail_msg ("%" PRId64 " commits for %" PRId64 " sends: no batching",
                  commits, sends_ok);
    print_message ("group commit: %" PRId64 " sends in %" PRId64
                   " commits\n", sends_ok, commits);
}

static void
test_inflight_cap (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_restart (f, "max-inflight=4");
    s_create_ok (f, "if", 1);
    int64_t parked [4];
    for (int i = 0; i < 4; i++)
        parked [i] = s_pull_send (f, NULL, "if", 0, 0, 0, 0, 10000);
    int64_t rid = s_pull_send (f, NULL, "if", 0, 0, 0, 0, 10000);
    int64_t t0 = zclock_mono ();
    reply_t *r = s_recv (f->dealer, 2000);
    if (!r)
        fail_msg ("5th request was not refused at once");
    assert_true (r->rid == rid);
    s_expect_free (r, "BUSY", NULL);
    assert_true (zclock_mono () - t0 < 2000);
    //  another client is unaffected
    zsock_t *other = s_dealer (f->endpoint);
    s_ping_on (f, other);
    assert_true (s_stat (f, "busy") >= 1);
    //  a message wakes the four parked pulls
    s_expect_free (s_produce (f, other, "if", 0, NULL, "w", 1), "SEND_OK",
                   NULL);
    bool answered [4] = { false, false, false, false };
    for (int i = 0; i < 4; i++) {
        r = s_recv (f->dealer, RECV_TIMEOUT);
        if (!r)
            fail_msg ("parked pull %d not answered", i);
        s_expect (r, "OK", NULL);
        s_check_msg (r, 0, "if", 0, 0, "w");
        for (int j = 0; j < 4; j++)
            if (parked [j] == r->rid)
                answered [j] = true;
        s_reply_destroy (&r);
    }
    for (int j = 0; j < 4; j++)
        assert_true (answered [j]);
    //  and the client may park again
    rid = s_pull_send (f, NULL, "if", 0, 1, 0, 0, 10000);
    s_ping (f);
    s_expect_free (s_produce (f, other, "if", 0, NULL, "w2", 2), "SEND_OK",
                   NULL);
    r = s_recv (f->dealer, RECV_TIMEOUT);
    assert_non_null (r);
    assert_true (r->rid == rid);
    s_expect_free (r, "OK", NULL);
    zsock_destroy (&other);
}

static void
test_disk_full (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "df", 2);
    assert_true (s_produce_ok (f, "df", 0, "before") == 0);
    s_restart (f, "min-free-mb=100000000");
    reply_t *r = s_produce (f, NULL, "df", 0, NULL, "after", 5);
    s_expect_free (r, "DISK_FULL", "MiB");
    r = s_produce (f, NULL, "df", -1, NULL, "after", 5);
    s_expect_free (r, "DISK_FULL", NULL);
    assert_true (s_total (f, "df") == 1);
    //  reads still work
    r = s_pull (f, "df", 0, 0, 0, 0);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 1);
    s_check_msg (r, 0, "df", 0, 0, "before");
    s_reply_destroy (&r);
    r = s_pull (f, "df", 0, 1, 0, 0);
    s_expect_free (r, "NO_NEW_MSG", NULL);
    //  the threshold is a setting: back to normal, sends work again
    s_restart (f, NULL);
    assert_true (s_produce_ok (f, "df", 0, "later") == 1);
}

static reply_t *
s_offset_req (fixture_t *f, const char *cmd, const char *group,
              const char *topic, int queue, int64_t offset)
{
    int64_t rid = s_begin (f, cmd, offset >= 0 ? 4 : 3);
    zr_enc_kstr (f->enc, "group", group);
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kint (f->enc, "queue", queue);
    if (offset >= 0)
        zr_enc_kint (f->enc, "offset", offset);
    return s_call (f, rid);
}

static int64_t
s_committed (fixture_t *f, const char *group, const char *topic, int queue)
{
    reply_t *r = s_offset_req (f, "QUERY_OFFSET", group, topic, queue, -1);
    s_expect (r, "OK", NULL);
    int64_t v = s_int (r, "offset");
    s_reply_destroy (&r);
    return v;
}

static void
test_offsets (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "of", 2);
    for (int i = 0; i < 3; i++)
        s_produce_ok (f, "of", 0, "o");
    assert_true (s_committed (f, "g1", "of", 0) == -1);
    s_expect_free (s_offset_req (f, "COMMIT_OFFSET", "g1", "of", 0, 2),
                   "OK", NULL);
    assert_true (s_committed (f, "g1", "of", 0) == 2);
    s_expect_free (s_offset_req (f, "COMMIT_OFFSET", "g1", "of", 0, 3),
                   "OK", NULL);
    assert_true (s_committed (f, "g1", "of", 0) == 3);
    //  moving back is allowed
    s_expect_free (s_offset_req (f, "COMMIT_OFFSET", "g1", "of", 0, 0),
                   "OK", NULL);
    assert_true (s_committed (f, "g1", "of", 0) == 0);
    //  beyond max
    reply_t *r = s_offset_req (f, "COMMIT_OFFSET", "g1", "of", 0, 4);
    s_expect (r, "OFFSET_OUT_OF_RANGE", NULL);
    assert_true (s_int (r, "min") == 0);
    assert_true (s_int (r, "max") == 3);
    s_reply_destroy (&r);
    assert_true (s_committed (f, "g1", "of", 0) == 0);
    //  other group and other queue: nothing committed
    assert_true (s_committed (f, "g2", "of", 0) == -1);
    assert_true (s_committed (f, "g1", "of", 1) == -1);
    //  errors
    s_expect_free (s_offset_req (f, "COMMIT_OFFSET", "a b", "of", 0, 1),
                   "BAD_ARGUMENT", "a b");
    s_expect_free (s_offset_req (f, "COMMIT_OFFSET", "g1", "nope", 0, 0),
                   "TOPIC_NOT_FOUND", "nope");
    s_expect_free (s_offset_req (f, "QUERY_OFFSET", "g1", "of", 2, -1),
                   "QUEUE_NOT_FOUND", NULL);
    int64_t rid = s_begin (f, "COMMIT_OFFSET", 3);
    zr_enc_kstr (f->enc, "group", "g1");
    zr_enc_kstr (f->enc, "topic", "of");
    zr_enc_kint (f->enc, "queue", 0);
    s_expect_free (s_call (f, rid), "MALFORMED", "offset");
}

static void
test_shutdown_answers_parked_pull (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "sd", 1);
    int64_t rid = s_pull_send (f, NULL, "sd", 0, 0, 0, 0, 10000);
    s_ping (f);                 //  the pull is parked
    int64_t t0 = zclock_mono ();
    zactor_destroy (&f->broker);
    reply_t *r = s_recv (f->dealer, RECV_TIMEOUT);
    if (!r)
        fail_msg ("parked pull not answered at shutdown");
    assert_true (r->rid == rid);
    s_expect_free (r, "NO_NEW_MSG", NULL);
    assert_true (zclock_mono () - t0 < RECV_TIMEOUT);
}

static void
test_restart (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_ok (f, "rs", 2);
    const char *bodies [] = { "one", "two", "three" };
    for (int i = 0; i < 3; i++)
        assert_true (s_produce_ok (f, "rs", 0, bodies [i]) == i);
    assert_true (s_produce_ok (f, "rs", 1, "other") == 0);
    s_expect_free (s_offset_req (f, "COMMIT_OFFSET", "g", "rs", 0, 2),
                   "OK", NULL);
    int64_t rid = s_begin (f, "PING", 0);
    reply_t *r = s_call (f, rid);
    char group [256];
    assert_int_equal (zr_field_strbuf (r->h, "broker", group, sizeof group),
                      0);
    s_reply_destroy (&r);

    s_restart (f, NULL);

    rid = s_begin (f, "PING", 0);
    r = s_call (f, rid);
    char group2 [256];
    assert_int_equal (zr_field_strbuf (r->h, "broker", group2,
                                       sizeof group2), 0);
    assert_string_equal (group, group2);
    s_reply_destroy (&r);
    int64_t min, max;
    s_bounds (f, "rs", 0, &min, &max);
    assert_true (min == 0 && max == 3);
    s_bounds (f, "rs", 1, &min, &max);
    assert_true (min == 0 && max == 1);
    r = s_pull (f, "rs", 0, 0, 0, 0);
    s_expect (r, "OK", NULL);
    assert_int_equal (s_msg_count (r), 3);
    for (int i = 0; i < 3; i++)
        s_check_msg (r, (size_t) i, "rs", 0, i, bodies [i]);
    s_reply_destroy (&r);
    assert_true (s_committed (f, "g", "rs", 0) == 2);
    assert_true (s_produce_ok (f, "rs", 0, "four") == 3);
    assert_true (s_produce_ok (f, "rs", 1, "other2") == 1);
    rid = s_begin (f, "TOPIC_LIST", 0);
    r = s_call (f, rid);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "topics")), 1);
    s_reply_destroy (&r);
}

static int
s_group_inproc (void **state)
{
    s_tcp = false;
    return 0;
}

static int
s_group_tcp (void **state)
{
    s_tcp = true;
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

int
main (void)
{
    const struct CMUnitTest tests [] = {
        T (test_ping),
        T (test_garbage),
        T (test_send_empty_id_bad_argument),
        T (test_long_strings_bad_argument),
        T (test_oneway_error_silent),
        T (test_req_socket),
        T (test_max_msg_size),
        T (test_topics),
        T (test_auto_create),
        T (test_send_pull),
        T (test_pull_max_bytes_counts_bodies),
        T (test_long_poll),
        T (test_group_commit),
        T (test_inflight_cap),
        T (test_disk_full),
        T (test_offsets),
        T (test_shutdown_answers_parked_pull),
        T (test_restart),
    };
    int failed = cmocka_run_group_tests_name ("broker over inproc", tests,
                                              s_group_inproc, NULL);
    failed += cmocka_run_group_tests_name ("broker over tcp", tests,
                                           s_group_tcp, NULL);
    return failed;
}
