/*  tests/e2e/test_sync_visibility.c - sync semantics on the master
    (protocol section 16, Acknowledgements): with replication sync,
    consumers read only up to the replicated high-water mark, and every
    write the master acknowledges (SEND, COMMIT_OFFSET, TOPIC_CREATE, ...)
    waits for the in-sync set; when it times out it gets
    FLUSH_SLAVE_TIMEOUT. Async mode: reads see a commit at once.

    The HWM is held back by stopping the slave with a long isr-max-lag-ms
    (it stays in the in-sync set); starting it again releases it.

    ctest: RUN_SERIAL
*/
#include <zrocket.h>
#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"
#include "transport/codec.h"

#define WAIT_MS 30000
#define QUIET_MS 1000       //  how long "no reply" is watched for

static zactor_t *
s_slave (const char *dir, const char *ha, char **ep)
{
    char extra [512];
    snprintf (extra, sizeof extra, "role=slave;master=%s", ha);
    return zrt_broker_start (dir, "tcp://127.0.0.1:*", extra, ep);
}

//  Request senders (no wait): each returns the request's rid.
static uint64_t
s_send (zr_client_t *c, const char *topic, const char *body)
{
    zr_enc_t *e = zr_client_begin (c, "SEND", 3);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queue", 0);
    zr_enc_kstr (e, "keys", "vkey");
    const void *data [1] = { body };
    size_t size [1] = { strlen (body) };
    assert_int_equal (zr_client_send (c, data, size, 1), 0);
    return zr_client_rid (c);
}

static uint64_t
s_pull (zr_client_t *c, const char *topic, int64_t offset, int wait)
{
    zr_enc_t *e = zr_client_begin (c, "PULL", 4);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queue", 0);
    zr_enc_kint (e, "offset", offset);
    zr_enc_kint (e, "wait", wait);
    assert_int_equal (zr_client_send (c, NULL, NULL, 0), 0);
    return zr_client_rid (c);
}

static uint64_t
s_commit_offset (zr_client_t *c, const char *topic, int64_t offset)
{
    zr_enc_t *e = zr_client_begin (c, "COMMIT_OFFSET", 4);
    zr_enc_kstr (e, "group", "VisGroup");
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queue", 0);
    zr_enc_kint (e, "offset", offset);
    assert_int_equal (zr_client_send (c, NULL, NULL, 0), 0);
    return zr_client_rid (c);
}

static uint64_t
s_topic_create (zr_client_t *c, const char *topic)
{
    zr_enc_t *e = zr_client_begin (c, "TOPIC_CREATE", 2);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queues", 1);
    assert_int_equal (zr_client_send (c, NULL, NULL, 0), 0);
    return zr_client_rid (c);
}

static uint64_t
s_send_batch (zr_client_t *c, const char *topic)
{
    zr_enc_t *e = zr_client_begin (c, "SEND_BATCH", 3);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queue", 0);
    zr_enc_str (e, "msgs");
    zr_enc_array (e, 2);
    zr_enc_map (e, 0);
    zr_enc_map (e, 0);
    const void *data [2] = { "m2", "m3" };
    size_t size [2] = { 2, 2 };
    assert_int_equal (zr_client_send (c, data, size, 2), 0);
    return zr_client_rid (c);
}

static uint64_t
s_reset_offset (zr_client_t *c, const char *topic)
{
    zr_enc_t *e = zr_client_begin (c, "RESET_OFFSET", 3);
    zr_enc_kstr (e, "group", "VisGroup2");
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kstr (e, "to", "last");
    assert_int_equal (zr_client_send (c, NULL, NULL, 0), 0);
    return zr_client_rid (c);
}

//  The reply to rid within ms, or NULL.
static zr_reply_t *
s_reply (zr_client_t *c, uint64_t rid, int ms)
{
    zr_reply_t *r = zr_client_recv (c, ms);
    if (r)
        assert_int_equal (zr_reply_rid (r), rid);
    return r;
}

//  GET_OFFSETS max of queue 0.
static int64_t
s_max (zr_client_t *c, const char *topic)
{
    zr_enc_t *e = zr_client_begin (c, "GET_OFFSETS", 2);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queue", 0);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    int64_t max = -1;
    assert_int_equal (zr_field_int (zr_reply_header (r), "max", &max),
                      ZR_FIELD_OK);
    zr_reply_destroy (&r);
    return max;
}

//  Messages a PULL without wait returns at offset (NO_NEW_MSG: 0).
static int64_t
s_readable (zr_client_t *c, const char *topic, int64_t offset)
{
    uint64_t rid = s_pull (c, topic, offset, 0);
    zr_reply_t *r = s_reply (c, rid, 5000);
    assert_non_null (r);
    int64_t n = 0;
    if (zr_reply_status (r) == ZR_OK)
        n = (int64_t) zr_reply_bodies (r);
    else
        assert_int_equal (zr_reply_status (r), ZR_NO_NEW_MSG);
    zr_reply_destroy (&r);
    return n;
}

//  FIND by key "vkey": how many messages it returns.
static int64_t
s_found (zr_client_t *c, const char *topic)
{
    zr_enc_t *e = zr_client_begin (c, "FIND", 2);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kstr (e, "key", "vkey");
    zr_reply_t *r = zr_client_call (c, NULL, 0, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    int64_t n = (int64_t) zr_reply_bodies (r);
    zr_reply_destroy (&r);
    return n;
}

//  GET_MSG of store_id: its status.
static zr_status_t
s_get_msg (zr_client_t *c, const char *store_id)
{
    zr_enc_t *e = zr_client_begin (c, "GET_MSG", 1);
    zr_enc_kstr (e, "store_id", store_id);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 5000);
    assert_non_null (r);
    zr_status_t status = zr_reply_status (r);
    zr_reply_destroy (&r);
    return status;
}

static int64_t
s_offset_of (zr_reply_t *r)
{
    int64_t offset = -1;
    assert_int_equal (zr_field_int (zr_reply_header (r), "offset", &offset),
                      ZR_FIELD_OK);
    return offset;
}

//  (a) + (b): a stopped slave holds the HWM: a SEND, a COMMIT_OFFSET and
//  a TOPIC_CREATE are not answered, a PULL does not see the message and
//  GET_OFFSETS shows the old max; the slave back, all are answered and
//  the parked PULL gets the message.
static void
test_sync_held (void **state)
{
    char *dir_m = zrt_tempdir ("vis-held-m");
    char *dir_s = zrt_tempdir ("vis-held-s");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    zactor_t *master = zrt_master_start (dir_m, "replication=sync;"
                                         "isr-max-lag-ms=60000;"
                                         "slave-ack-timeout-ms=60000",
                                         &ep_m, ha, sizeof ha);
    zactor_t *slave = s_slave (dir_s, ha, &ep_s);
    assert_int_equal (zrt_wait_stat (master, "insync", 2, WAIT_MS), 2);

    zr_client_t *ctl = zr_client_new (ep_m);
    uint64_t rid = s_topic_create (ctl, "VisTopic");
    zr_reply_t *r = s_reply (ctl, rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    rid = s_send (ctl, "VisTopic", "m0");
    r = s_reply (ctl, rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_SEND_OK);
    char store_id [256];        //  GROUP:VisTopic:0:0 -> ...:1 below
    assert_int_equal (zr_field_strbuf (zr_reply_header (r), "store_id",
                                       store_id, sizeof store_id),
                      ZR_FIELD_OK);
    zr_reply_destroy (&r);
    assert_true (strlen (store_id) > 2);
    store_id [strlen (store_id) - 1] = '1';
    assert_int_equal (s_max (ctl, "VisTopic"), 1);
    assert_int_equal (s_readable (ctl, "VisTopic", 0), 1);

    //  The slave stops; it stays in the set (isr-max-lag-ms 60 s)
    zactor_destroy (&slave);
    zstr_free (&ep_s);
    zr_client_t *producer = zr_client_new (ep_m);
    zr_client_t *puller = zr_client_new (ep_m);
    zr_client_t *committer = zr_client_new (ep_m);
    zr_client_t *admin = zr_client_new (ep_m);
    zr_client_t *batcher = zr_client_new (ep_m);
    zr_client_t *resetter = zr_client_new (ep_m);
    uint64_t send_rid = s_send (producer, "VisTopic", "m1");
    uint64_t batch_rid = s_send_batch (batcher, "VisTopic");
    uint64_t reset_rid = s_reset_offset (resetter, "VisTopic");
    uint64_t pull_rid = s_pull (puller, "VisTopic", 1, 60000);
    uint64_t commit_rid = s_commit_offset (committer, "VisTopic", 1);
    uint64_t create_rid = s_topic_create (admin, "VisTopic2");
    assert_null (s_reply (producer, send_rid, QUIET_MS));
    assert_null (s_reply (puller, pull_rid, 10));
    assert_null (s_reply (committer, commit_rid, 10));
    assert_null (s_reply (admin, create_rid, 10));
    assert_null (s_reply (batcher, batch_rid, 10));
    assert_null (s_reply (resetter, reset_rid, 10));
    //  Stored on the master (max 4), visible only up to the HWM
    assert_int_equal (s_max (ctl, "VisTopic"), 1);
    assert_int_equal (s_readable (ctl, "VisTopic", 1), 0);
    assert_int_equal (s_found (ctl, "VisTopic"), 1);
    assert_int_equal (s_get_msg (ctl, store_id), ZR_NOT_FOUND);
    //  A PULL between the visible end and max is in range: it waits
    uint64_t pull2_rid = s_pull (ctl, "VisTopic", 1, 200);
    r = s_reply (ctl, pull2_rid, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_NO_NEW_MSG);
    zr_reply_destroy (&r);
    //  Reads are never parked
    zr_enc_t *e = zr_client_begin (ctl, "QUERY_OFFSET", 3);
    zr_enc_kstr (e, "group", "VisGroup");
    zr_enc_kstr (e, "topic", "VisTopic");
    zr_enc_kint (e, "queue", 0);
    r = zr_client_call (ctl, NULL, 0, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);

    //  The slave comes back and catches up: everything is answered
    int64_t t0 = zclock_mono ();
    slave = s_slave (dir_s, ha, &ep_s);
    r = s_reply (producer, send_rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_SEND_OK);
    assert_int_equal (s_offset_of (r), 1);
    zr_reply_destroy (&r);
    r = s_reply (puller, pull_rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    assert_true (zr_reply_bodies (r) >= 1);
    assert_int_equal (zframe_size (zr_reply_body (r, 0)), 2);
    assert_memory_equal (zframe_data (zr_reply_body (r, 0)), "m1", 2);
    zr_reply_destroy (&r);
    r = s_reply (committer, commit_rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    r = s_reply (admin, create_rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    r = s_reply (batcher, batch_rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_SEND_OK);
    int64_t count = 0;
    assert_int_equal (zr_field_int (zr_reply_header (r), "count", &count),
                      ZR_FIELD_OK);
    assert_int_equal (count, 2);
    zr_reply_destroy (&r);
    r = s_reply (resetter, reset_rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    //  RESET_OFFSET last took the visible end when it ran: 1
    zr_enc_t *q = zr_client_begin (ctl, "QUERY_OFFSET", 3);
    zr_enc_kstr (q, "group", "VisGroup2");
    zr_enc_kstr (q, "topic", "VisTopic");
    zr_enc_kint (q, "queue", 0);
    r = zr_client_call (ctl, NULL, 0, 5000);
    assert_non_null (r);
    int64_t reset_to = -2;
    assert_int_equal (zr_field_int (zr_reply_header (r), "offset",
                                    &reset_to), ZR_FIELD_OK);
    zr_reply_destroy (&r);
    assert_int_equal (reset_to, 1);
    printf ("sync held: released %" PRId64 " ms after the slave started\n",
            zclock_mono () - t0);
    assert_int_equal (s_max (ctl, "VisTopic"), 4);
    assert_int_equal (s_readable (ctl, "VisTopic", 1), 3);
    assert_int_equal (s_found (ctl, "VisTopic"), 2);
    assert_int_equal (s_get_msg (ctl, store_id), ZR_OK);
    //  The slave has the message (bounded status poll)
    zr_client_t *cs = zr_client_new (ep_s);
    zpoller_t *idle = zpoller_new (NULL);
    int64_t deadline = zclock_mono () + WAIT_MS;
    while (s_max (cs, "VisTopic") < 4 && zclock_mono () < deadline)
        zpoller_wait (idle, 20);
    zpoller_destroy (&idle);
    assert_int_equal (s_max (cs, "VisTopic"), 4);
    zr_client_destroy (&cs);

    zr_client_destroy (&producer);
    zr_client_destroy (&puller);
    zr_client_destroy (&committer);
    zr_client_destroy (&admin);
    zr_client_destroy (&batcher);
    zr_client_destroy (&resetter);
    zr_client_destroy (&ctl);
    zactor_destroy (&slave);
    zactor_destroy (&master);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ep_s);
}

//  (b) timeout: with slave-ack-timeout-ms 1000 and the slave stopped, a
//  COMMIT_OFFSET and a TOPIC_CREATE get FLUSH_SLAVE_TIMEOUT after the
//  timeout, with their fields; the message stays invisible.
static void
test_sync_timeout (void **state)
{
    char *dir_m = zrt_tempdir ("vis-to-m");
    char *dir_s = zrt_tempdir ("vis-to-s");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    zactor_t *master = zrt_master_start (dir_m, "replication=sync;"
                                         "isr-max-lag-ms=60000;"
                                         "slave-ack-timeout-ms=1000",
                                         &ep_m, ha, sizeof ha);
    zactor_t *slave = s_slave (dir_s, ha, &ep_s);
    assert_int_equal (zrt_wait_stat (master, "insync", 2, WAIT_MS), 2);
    zr_client_t *c = zr_client_new (ep_m);
    uint64_t rid = s_topic_create (c, "ToTopic");
    zr_reply_t *r = s_reply (c, rid, WAIT_MS);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    zactor_destroy (&slave);

    //  A SEND: FLUSH_SLAVE_TIMEOUT (stored), not readable
    int64_t t0 = zclock_mono ();
    rid = s_send (c, "ToTopic", "late");
    r = s_reply (c, rid, 3000 * 3);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_FLUSH_SLAVE_TIMEOUT);
    assert_true (zclock_mono () - t0 >= 900);
    zr_reply_destroy (&r);
    assert_int_equal (s_readable (c, "ToTopic", 0), 0);
    assert_int_equal (s_max (c, "ToTopic"), 0);

    //  A COMMIT_OFFSET (offset 1 is below max 1: in range)
    t0 = zclock_mono ();
    rid = s_commit_offset (c, "ToTopic", 1);
    r = s_reply (c, rid, 3000 * 3);
    assert_non_null (r);
    int64_t took = zclock_mono () - t0;
    assert_int_equal (zr_reply_status (r), ZR_FLUSH_SLAVE_TIMEOUT);
    assert_true (took >= 900);
    zr_reply_destroy (&r);

    //  A TOPIC_CREATE keeps its fields
    t0 = zclock_mono ();
    rid = s_topic_create (c, "ToTopic2");
    r = s_reply (c, rid, 3000 * 3);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_FLUSH_SLAVE_TIMEOUT);
    assert_true (zclock_mono () - t0 >= 900);
    char topic [64];
    assert_int_equal (zr_field_strbuf (zr_reply_header (r), "topic", topic,
                                       sizeof topic), ZR_FIELD_OK);
    assert_string_equal (topic, "ToTopic2");
    assert_true (strlen (zr_reply_reason (r)) > 0);
    zr_reply_destroy (&r);
    printf ("sync timeout: COMMIT_OFFSET answered FLUSH_SLAVE_TIMEOUT after "
            "%" PRId64 " ms (slave-ack-timeout-ms 1000)\n", took);

    zr_client_destroy (&c);
    zactor_destroy (&master);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ep_s);
}

//  (c) async: a stopped slave changes nothing: answers and reads at once.
static void
test_async_unchanged (void **state)
{
    char *dir_m = zrt_tempdir ("vis-async-m");
    char *dir_s = zrt_tempdir ("vis-async-s");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    zactor_t *master = zrt_master_start (dir_m, "replication=async;"
                                         "isr-max-lag-ms=60000;"
                                         "slave-ack-timeout-ms=60000",
                                         &ep_m, ha, sizeof ha);
    zactor_t *slave = s_slave (dir_s, ha, &ep_s);
    assert_int_equal (zrt_wait_stat (master, "insync", 2, WAIT_MS), 2);
    zactor_destroy (&slave);
    zr_client_t *c = zr_client_new (ep_m);
    zr_client_t *puller = zr_client_new (ep_m);
    uint64_t rid = s_topic_create (c, "AsyncTopic");
    zr_reply_t *r = s_reply (c, rid, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    uint64_t pull_rid = s_pull (puller, "AsyncTopic", 0, 60000);
    assert_null (s_reply (puller, pull_rid, 100));
    for (int i = 0; i < 10; i++) {
        rid = s_send (c, "AsyncTopic", "a");
        r = s_reply (c, rid, 5000);
        assert_non_null (r);
        assert_int_equal (zr_reply_status (r), ZR_SEND_OK);
        zr_reply_destroy (&r);
        assert_int_equal (s_max (c, "AsyncTopic"), i + 1);
    }
    r = s_reply (puller, pull_rid, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    assert_int_equal (s_readable (c, "AsyncTopic", 0), 10);
    rid = s_commit_offset (c, "AsyncTopic", 10);
    r = s_reply (c, rid, 5000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);

    zr_client_destroy (&puller);
    zr_client_destroy (&c);
    zactor_destroy (&master);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ep_s);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_sync_held),
        cmocka_unit_test (test_sync_timeout),
        cmocka_unit_test (test_async_unchanged),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
