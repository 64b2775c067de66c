/*  tests/e2e/test_filter_pull.c - filtering on the broker (protocol section
    14) against a real broker actor: tag and SQL filters return exactly
    the matching messages in order, `next` moves past the others and a
    commit of it skips them for good, only matching bodies cross the
    wire, malformed expressions get BAD_ARGUMENT with the position, long
    polls wake only for a matching message, and a large queue filtered
    by a property yields exactly the matches.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define ZR_FILTER_EXPR_MAX_TEST 4097    //  one past the broker's bound

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
} fixture_t;

static int s_seq = 0;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("filter");
    char *bind = zsys_sprintf ("inproc://test-filter-%d-%d", (int) getpid (),
                               ++s_seq);
    f->broker = zrt_broker_start (f->dir, bind, "auto-create=true",
                                  &f->endpoint);
    zstr_free (&bind);
    assert_non_null (f->endpoint);
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
    free (f);
    return 0;
}

//  Message i: tag A (i % 3 == 0), B (i % 3 == 1) or none; n = i except
//  for i % 3 == 2, which has color=red and no n. Body "m-<i>".
static void
s_send_one (zr_producer_t *producer, const char *topic, int i)
{
    char body [32], n [16];
    snprintf (body, sizeof body, "m-%d", i);
    zr_message_t *msg = zr_message_new (topic, body, strlen (body));
    zr_message_set_queue (msg, 0);
    if (i % 3 == 0)
        zr_message_set_tags (msg, "A");
    if (i % 3 == 1)
        zr_message_set_tags (msg, "B");
    if (i % 3 == 2)
        zr_message_set_prop (msg, "color", "red");
    else {
        snprintf (n, sizeof n, "%d", i);
        zr_message_set_prop (msg, "n", n);
    }
    zr_send_result_t r;
    assert_int_equal (zr_producer_send (producer, msg, &r), 0);
    assert_int_equal (r.offset, i);
    zr_message_destroy (&msg);
}

static void
s_fill (const char *endpoint, const char *topic, int count)
{
    zr_producer_t *producer = zr_producer_new (endpoint);
    assert_non_null (producer);
    for (int i = 0; i < count; i++)
        s_send_one (producer, topic, i);
    zr_producer_destroy (&producer);
}

//  Pulls with a filter from offset and checks the offsets returned
//  against want (terminated by -1) and next.
static void
s_expect (zr_consumer_t *c, const char *type, const char *expr,
          int64_t offset, int max_count, const int *want, int64_t next)
{
    assert_int_equal (zr_consumer_set_filter (c, type, expr), 0);
    zr_pull_t *pull = zr_consumer_pull (c, "fil", 0, offset, max_count, 0);
    assert_non_null (pull);
    if (zr_pull_status (pull) != ZR_OK && zr_pull_status (pull)
        != ZR_NO_NEW_MSG)
        fail_msg ("%s '%s': %s", type, expr, zr_pull_reason (pull));
    size_t i = 0;
    for (; want [i] >= 0; i++) {
        zr_message_t *msg = zr_pull_message (pull, i);
        if (!msg)
            fail_msg ("%s '%s': %zu messages, want more", type, expr, i);
        assert_int_equal (zr_message_offset (msg), want [i]);
        char body [32];
        snprintf (body, sizeof body, "m-%d", want [i]);
        assert_int_equal (zr_message_size (msg), strlen (body));
        assert_memory_equal (zr_message_body (msg), body, strlen (body));
    }
    assert_int_equal (zr_pull_count (pull), i);
    assert_int_equal (zr_pull_next (pull), next);
    zr_pull_destroy (&pull);
}

static void
test_filters (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->endpoint, "fil", 30);
    zr_consumer_t *c = zr_consumer_new (f->endpoint);
    assert_non_null (c);

    const int tag_a [] = { 0, 3, 6, 9, 12, 15, 18, 21, 24, 27, -1 };
    s_expect (c, "tag", "A", 0, 100, tag_a, 30);
    s_expect (c, "tag", "*", 28, 100, (const int []) { 28, 29, -1 }, 30);
    s_expect (c, "tag", " A || B ", 24, 100,
              (const int []) { 24, 25, 27, 28, -1 }, 30);
    //  max_count stops at the last match taken: next is just past it
    s_expect (c, "tag", "A", 1, 2, (const int []) { 3, 6, -1 }, 7);
    s_expect (c, "sql", "n > 10 AND n < 20", 0, 100,
              (const int []) { 12, 13, 15, 16, 18, 19, -1 }, 30);
    //  a message without n matches neither n > 5 nor NOT (n > 5)
    s_expect (c, "sql", "NOT (n > 5)", 0, 100,
              (const int []) { 0, 1, 3, 4, -1 }, 30);
    s_expect (c, "sql", "n IS NULL AND color = 'red'", 20, 100,
              (const int []) { 20, 23, 26, 29, -1 }, 30);
    s_expect (c, "sql", "TAGS = 'B' AND n BETWEEN 20 AND 25", 0, 100,
              (const int []) { 22, 25, -1 }, 30);
    s_expect (c, "sql", "n IN (4, 7, 8, 100)", 0, 100,
              (const int []) { 4, 7, -1 }, 30);
    //  nothing matches: OK, no messages, next past everything scanned
    s_expect (c, "sql", "n > 1000", 0, 100, (const int []) { -1 }, 30);
    //  at the end: NO_NEW_MSG with next where it was
    s_expect (c, "tag", "A", 30, 100, (const int []) { -1 }, 30);

    //  committing next skips the filtered-out messages for good
    assert_int_equal (zr_consumer_set_filter (c, "tag", "B"), 0);
    zr_pull_t *pull = zr_consumer_pull (c, "fil", 0, 0, 3, 0);
    assert_int_equal (zr_pull_count (pull), 3);
    int64_t next = zr_pull_next (pull);
    assert_int_equal (next, 8);
    zr_pull_destroy (&pull);
    assert_int_equal (zr_consumer_commit (c, "g1", "fil", 0, next), 0);
    int64_t committed;
    assert_int_equal (zr_consumer_committed (c, "g1", "fil", 0, &committed),
                      0);
    assert_int_equal (committed, 8);
    assert_int_equal (zr_consumer_set_filter (c, NULL, NULL), 0);
    pull = zr_consumer_pull (c, "fil", 0, committed, 100, 0);
    assert_int_equal (zr_pull_count (pull), 22);
    assert_int_equal (zr_message_offset (zr_pull_message (pull, 0)), 8);
    zr_pull_destroy (&pull);
    assert_int_equal (zr_consumer_set_filter (c, "regex", "x"), -1);
    zr_consumer_destroy (&c);
}

//  The raw reply: one body per message, each a matching one; the
//  filtered-out bodies are not in the reply at all.
static void
test_wire (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->endpoint, "fil", 12);
    zr_client_t *client = zr_client_new (f->endpoint);
    zr_enc_t *enc = zr_client_begin (client, "PULL", 6);
    zr_enc_kstr (enc, "topic", "fil");
    zr_enc_kint (enc, "queue", 0);
    zr_enc_kint (enc, "offset", 0);
    zr_enc_kint (enc, "max_count", 100);
    zr_enc_kstr (enc, "filter_type", "sql");
    zr_enc_kstr (enc, "filter", "TAGS = 'A'");
    zr_reply_t *r = zr_client_call (client, NULL, 0, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    const zr_obj_t *msgs = zr_obj_get (zr_reply_header (r), "msgs");
    assert_int_equal (zr_obj_size (msgs), 4);
    assert_int_equal (zr_reply_bodies (r), 4);
    size_t total = 0;
    for (size_t i = 0; i < 4; i++) {
        zframe_t *body = zr_reply_body (r, i);
        char want [16];
        snprintf (want, sizeof want, "m-%zu", i * 3);
        assert_true (zframe_streq (body, want));
        total += zframe_size (body);
        const char *tags;
        size_t len;
        assert_int_equal (zr_field_str (zr_obj_at (msgs, i), "tags", &tags,
                                        &len), ZR_FIELD_OK);
        assert_int_equal (len, 1);
        assert_int_equal (tags [0], 'A');
    }
    assert_int_equal (total, strlen ("m-0m-3m-6m-9"));
    zr_reply_destroy (&r);
    zr_client_destroy (&client);
}

//  Sends a PULL with filter fields and returns the reply.
static zr_reply_t *
s_raw_pull (zr_client_t *client, const char *type, const char *expr,
            bool expr_is_int)
{
    zr_enc_t *enc = zr_client_begin (client, "PULL", type ? 5 : 4);
    zr_enc_kstr (enc, "topic", "fil");
    zr_enc_kint (enc, "queue", 0);
    zr_enc_kint (enc, "offset", 0);
    if (type)
        zr_enc_kstr (enc, "filter_type", type);
    if (expr_is_int)
        zr_enc_kint (enc, "filter", 5);
    else
        zr_enc_kstr (enc, "filter", expr);
    return zr_client_call (client, NULL, 0, 5000);
}

static void
test_bad_expressions (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->endpoint, "fil", 3);
    zr_client_t *client = zr_client_new (f->endpoint);
    zr_reply_t *r = s_raw_pull (client, "sql", "n > 5 AND (m < 3", false);
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_reply_reason (r), "position 17: expected ')'"));
    int64_t position;
    assert_int_equal (zr_field_int (zr_reply_header (r), "position",
                                    &position), ZR_FIELD_OK);
    assert_int_equal (position, 17);
    zr_reply_destroy (&r);

    r = s_raw_pull (client, "tag", "A ||", false);
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_reply_reason (r), "position 5:"));
    zr_reply_destroy (&r);
    //  no filter_type means tag
    r = s_raw_pull (client, NULL, "A | B", false);
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    zr_reply_destroy (&r);
    r = s_raw_pull (client, "regex", "A", false);
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_reply_reason (r), "tag or sql"));
    zr_reply_destroy (&r);
    r = s_raw_pull (client, "sql", NULL, true);
    assert_int_equal (zr_reply_status (r), ZR_MALFORMED);
    zr_reply_destroy (&r);
    //  too long
    char *big = (char *) malloc (ZR_FILTER_EXPR_MAX_TEST + 1);
    memset (big, ' ', ZR_FILTER_EXPR_MAX_TEST);
    memcpy (big, "n = 1", 5);
    big [ZR_FILTER_EXPR_MAX_TEST] = 0;
    r = s_raw_pull (client, "sql", big, false);
    assert_int_equal (zr_reply_status (r), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_reply_reason (r), "longer than"));
    zr_reply_destroy (&r);
    free (big);
    //  the consumer API sees the same
    zr_consumer_t *c = zr_consumer_new (f->endpoint);
    zr_consumer_set_filter (c, "sql", "n >");
    zr_pull_t *pull = zr_consumer_pull (c, "fil", 0, 0, 10, 0);
    assert_int_equal (zr_pull_status (pull), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (zr_pull_reason (pull), "position 4:"));
    zr_pull_destroy (&pull);
    zr_consumer_destroy (&c);
    //  and the broker still serves
    r = s_raw_pull (client, "sql", "n = 0", false);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    assert_int_equal (zr_reply_bodies (r), 1);
    zr_reply_destroy (&r);
    zr_client_destroy (&client);
}

static void
s_send_pull (zr_client_t *client, int64_t offset, int wait, const char *tag)
{
    zr_enc_t *enc = zr_client_begin (client, "PULL", 7);
    zr_enc_kstr (enc, "topic", "fil");
    zr_enc_kint (enc, "queue", 0);
    zr_enc_kint (enc, "offset", offset);
    zr_enc_kint (enc, "max_count", 10);
    zr_enc_kint (enc, "wait", wait);
    zr_enc_kstr (enc, "filter_type", "tag");
    zr_enc_kstr (enc, "filter", tag);
    assert_int_equal (zr_client_send (client, NULL, NULL, 0), 0);
}

static void
s_ping (zr_client_t *client)
{
    zr_client_begin (client, "PING", 0);
    assert_int_equal (zr_client_send (client, NULL, NULL, 0), 0);
    zr_reply_t *r = zr_client_recv (client, 5000);
    assert_non_null (r);
    //  the parked pull was not answered before this
    assert_non_null (zr_obj_get (zr_reply_header (r), "broker"));
    zr_reply_destroy (&r);
}

//  A parked filtered pull is not answered by a message that does not
//  match; it goes on waiting past it and is answered by a matching one.
//  At its deadline it answers OK with no messages and next past the
//  ones it skipped.
static void
test_long_poll (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_fill (f->endpoint, "fil", 3);
    zr_client_t *client = zr_client_new (f->endpoint);
    zr_producer_t *producer = zr_producer_new (f->endpoint);

    //  message 3 has tag A, 4 tag B, 5 none
    s_send_pull (client, 3, 30000, "B");
    s_ping (client);                    //  the pull is parked now
    s_send_one (producer, "fil", 3);
    s_ping (client);                    //  ... and still is
    s_send_one (producer, "fil", 4);
    zr_reply_t *r = zr_client_recv (client, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    assert_int_equal (zr_reply_bodies (r), 1);
    assert_true (zframe_streq (zr_reply_body (r, 0), "m-4"));
    int64_t next;
    assert_int_equal (zr_field_int (zr_reply_header (r), "next", &next), 0);
    assert_int_equal (next, 5);
    zr_reply_destroy (&r);

    //  deadline after skipping: OK, no messages, next past the skipped
    int64_t start = zclock_mono ();
    s_send_pull (client, 5, 300, "B");
    s_ping (client);
    s_send_one (producer, "fil", 5);
    r = zr_client_recv (client, 5000);
    assert_non_null (r);
    assert_true (zclock_mono () - start >= 290);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    assert_int_equal (zr_reply_bodies (r), 0);
    assert_int_equal (zr_field_int (zr_reply_header (r), "next", &next), 0);
    assert_int_equal (next, 6);
    zr_reply_destroy (&r);
    //  and at the end with nothing skipped: NO_NEW_MSG at the offset
    s_send_pull (client, 6, 50, "B");
    r = zr_client_recv (client, 5000);
    assert_int_equal (zr_reply_status (r), ZR_NO_NEW_MSG);
    assert_int_equal (zr_field_int (zr_reply_header (r), "next", &next), 0);
    assert_int_equal (next, 6);
    zr_reply_destroy (&r);
    zr_client_destroy (&client);
    zr_producer_destroy (&producer);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_filters, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_wire, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_expressions, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_long_poll, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
