/*  tests/e2e/test_lookup.c - FIND on a real broker (docs/protocol.md
    section 15), spoken to raw over a DEALER: by message id exactly that
    message, by key every message with that key (several keys per
    message), an unknown id or key is OK with no messages, bad requests
    are refused, and a message retention deleted is no longer found.

    Timing test (waits for the retention timer). ctest: RUN_SERIAL
*/
#define TEST_NAME "lookuptest"
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

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2"
#define ID_C "ccccccccccccccccccccccccccccccc3"
#define ID_X "0000000000000000000000000000dead"

//  FIND by id (by_id) or key; returns the reply (status checked by the
//  caller).
static reply_t *
s_find (fixture_t *f, const char *topic, bool by_id, const char *str)
{
    int64_t rid = s_begin (f, "FIND", 2);
    zr_enc_kstr (f->enc, "topic", topic);
    zr_enc_kstr (f->enc, by_id ? "id" : "key", str);
    return s_call (f, rid);
}

//  Asserts the reply found exactly these bodies, in order.
static void
s_found (reply_t *r, const char **bodies, size_t count)
{
    s_expect (r, "OK", NULL);
    const zr_obj_t *msgs = zr_obj_get (r->h, "msgs");
    assert_int_equal (zr_obj_size (msgs), count);
    assert_int_equal (zmsg_size (r->msg), count);
    zframe_t *frame = zmsg_first (r->msg);
    for (size_t i = 0; i < count; i++) {
        assert_non_null (frame);
        assert_int_equal (zframe_size (frame), strlen (bodies [i]));
        assert_memory_equal (zframe_data (frame), bodies [i],
                             strlen (bodies [i]));
        frame = zmsg_next (r->msg);
    }
}

static void
test_find (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "look", 1, -1, -1);
    s_create (f, "other", 1, -1, -1);
    s_send (f, "look", ID_A, "k1 k2", "a");
    s_send (f, "look", ID_B, "k2", "b");
    s_send (f, "look", ID_C, "  k3  k2k ", "c");
    s_send (f, "other", ID_X, "k1", "x");

    reply_t *r = s_find (f, "look", true, ID_B);
    const char *b [] = { "b" };
    s_found (r, b, 1);
    const zr_obj_t *m = zr_obj_at (zr_obj_get (r->h, "msgs"), 0);
    char id [64];
    assert_int_equal (zr_field_strbuf (m, "id", id, sizeof id),
                      ZR_FIELD_OK);
    assert_string_equal (id, ID_B);
    assert_int_equal (s_int (m, "offset"), 1);
    s_reply_destroy (&r);

    const char *k2 [] = { "a", "b" };
    r = s_find (f, "look", false, "k2");
    s_found (r, k2, 2);
    s_reply_destroy (&r);
    const char *k1 [] = { "a" };
    r = s_find (f, "look", false, "k1");        //  not "other"'s k1
    s_found (r, k1, 1);
    s_reply_destroy (&r);
    const char *c [] = { "c" };
    r = s_find (f, "look", false, "k2k");
    s_found (r, c, 1);
    s_reply_destroy (&r);
    r = s_find (f, "look", false, "k3");
    s_found (r, c, 1);
    s_reply_destroy (&r);

    //  Unknown id or key: OK, no messages.
    r = s_find (f, "look", true, ID_X);
    s_found (r, NULL, 0);
    s_reply_destroy (&r);
    r = s_find (f, "look", false, "k");
    s_found (r, NULL, 0);
    s_reply_destroy (&r);

    //  max_count
    int64_t rid = s_begin (f, "FIND", 3);
    zr_enc_kstr (f->enc, "topic", "look");
    zr_enc_kstr (f->enc, "key", "k2");
    zr_enc_kint (f->enc, "max_count", 1);
    r = s_call (f, rid);
    s_found (r, k1, 1);
    s_reply_destroy (&r);
}

static void
test_bad_requests (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "look", 1, -1, -1);
    s_expect_free (s_find (f, "nope", true, ID_A), "TOPIC_NOT_FOUND", NULL);
    s_expect_free (s_find (f, "look", false, "a b"), "BAD_ARGUMENT",
                   "spaces");
    s_expect_free (s_find (f, "look", false, ""), "BAD_ARGUMENT", NULL);
    int64_t rid = s_begin (f, "FIND", 1);
    zr_enc_kstr (f->enc, "topic", "look");
    s_expect_free (s_call (f, rid), "BAD_ARGUMENT", "one of");
    rid = s_begin (f, "FIND", 3);
    zr_enc_kstr (f->enc, "topic", "look");
    zr_enc_kstr (f->enc, "id", ID_A);
    zr_enc_kstr (f->enc, "key", "k");
    s_expect_free (s_call (f, rid), "BAD_ARGUMENT", "one of");
    rid = s_begin (f, "FIND", 2);
    zr_enc_kstr (f->enc, "topic", "look");
    zr_enc_kint (f->enc, "id", 5);
    s_expect_free (s_call (f, rid), "MALFORMED", NULL);
    rid = s_begin (f, "FIND", 3);
    zr_enc_kstr (f->enc, "topic", "look");
    zr_enc_kstr (f->enc, "key", "k");
    zr_enc_kint (f->enc, "max_count", 0);
    s_expect_free (s_call (f, rid), "BAD_ARGUMENT", "max_count");
    char *huge = (char *) malloc (2000);
    memset (huge, 'k', 1999);
    huge [1999] = 0;
    s_expect_free (s_find (f, "look", false, huge), "BAD_ARGUMENT", NULL);
    free (huge);
    //  Still serving
    rid = s_begin (f, "PING", 0);
    s_expect_free (s_call (f, rid), "OK", NULL);
}

static void
test_after_retention (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create (f, "pace", 1, -1, -1);
    s_create (f, "short", 1, 200, 0);
    s_send (f, "short", ID_A, "gone", "a");
    s_send (f, "short", ID_B, "gone stays", "b");
    s_wait_min (f, "short", 1);
    reply_t *r = s_find (f, "short", true, ID_A);
    s_found (r, NULL, 0);
    s_reply_destroy (&r);
    const char *b [] = { "b" };
    r = s_find (f, "short", false, "gone");
    s_found (r, b, 1);
    s_reply_destroy (&r);
    r = s_find (f, "short", true, ID_B);
    s_found (r, b, 1);
    s_reply_destroy (&r);

    //  A deleted and re-created topic has no old index entries.
    int64_t rid = s_begin (f, "TOPIC_DELETE", 1);
    zr_enc_kstr (f->enc, "topic", "short");
    s_expect_free (s_call (f, rid), "OK", NULL);
    s_create (f, "short", 1, 0, 0);
    s_send (f, "short", NULL, NULL, "new");
    s_send (f, "short", NULL, NULL, "new");
    r = s_find (f, "short", true, ID_B);
    s_found (r, NULL, 0);
    s_reply_destroy (&r);

    //  The index survives a restart.
    s_send (f, "short", ID_C, "kept", "c");
    s_stop (f);
    s_start (f, SETTINGS);
    const char *c [] = { "c" };
    r = s_find (f, "short", false, "kept");
    s_found (r, c, 1);
    s_reply_destroy (&r);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_find, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_requests, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_after_retention, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
