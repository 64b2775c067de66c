/*  tests/e2e/test_replication.c - master/slave replication (protocol
    section 16): a slave follows and its digest (DIGEST) equals the
    master's; a slave refuses writes with NOT_MASTER; catch-up after
    10,000 messages; stream gaps detected and repaired; sync mode
    (SEND_OK after the slave applied, FLUSH_SLAVE_TIMEOUT, then
    SLAVE_NOT_AVAILABLE below min-insync); full copy past the trimmed log.

    Waits are bounded loops over STATS / DIGEST whose interval is a
    poller timeout (the broker pushes no replication events to clients).

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

//  Waits (bounded) until STATS key is at most max; returns it.
static int64_t
s_wait_stat_below (zactor_t *broker, const char *key, int64_t max, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    zpoller_t *idle = zpoller_new (NULL);
    int64_t v = zrt_stat_int (broker, key);
    while (v > max && zclock_mono () < deadline) {
        zpoller_wait (idle, 20);
        v = zrt_stat_int (broker, key);
    }
    zpoller_destroy (&idle);
    return v;
}

//  DIGEST over the wire: fills seq and hash (hex) for seq (-1: the last).
//  Returns the reply status.
static zr_status_t
s_digest (const char *endpoint, int64_t want, int64_t *seq, char *hash,
          size_t size)
{
    zr_client_t *c = zr_client_new (endpoint);
    assert_non_null (c);
    zr_enc_t *e = zr_client_begin (c, "DIGEST", want >= 0 ? 1 : 0);
    if (want >= 0)
        zr_enc_kint (e, "seq", want);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 5000);
    assert_non_null (r);
    zr_status_t status = zr_reply_status (r);
    hash [0] = 0;
    *seq = -1;
    if (status == ZR_OK) {
        assert_int_equal (zr_field_int (zr_reply_header (r), "seq", seq),
                          ZR_FIELD_OK);
        assert_int_equal (zr_field_strbuf (zr_reply_header (r), "hash",
                                           hash, size), ZR_FIELD_OK);
        assert_int_equal (strlen (hash), 40);
    }
    zr_reply_destroy (&r);
    zr_client_destroy (&c);
    return status;
}

//  Waits until the slave's DIGEST equals the master's (same seq, same
//  hash); returns true when it does.
static bool
s_converge (const char *ep_m, const char *ep_s, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    zpoller_t *idle = zpoller_new (NULL);
    bool same = false;
    while (!same && zclock_mono () < deadline) {
        int64_t sm, ss;
        char hm [64], hs [64];
        assert_int_equal (s_digest (ep_m, -1, &sm, hm, sizeof hm), ZR_OK);
        if (s_digest (ep_s, sm, &ss, hs, sizeof hs) == ZR_OK)
            same = ss == sm && streq (hm, hs);
        if (!same)
            zpoller_wait (idle, 20);
    }
    zpoller_destroy (&idle);
    return same;
}

static zactor_t *
s_slave (const char *dir, const char *ha, const char *more, char **ep)
{
    char extra [512];
    snprintf (extra, sizeof extra, "role=slave;master=%s%s%s", ha,
              more ? ";" : "", more ? more : "");
    return zrt_broker_start (dir, "tcp://127.0.0.1:*", extra, ep);
}

static void
s_send_many (zr_producer_t *p, const char *topic, int count, int from)
{
    for (int i = 0; i < count; i++) {
        char body [64];
        snprintf (body, sizeof body, "message %d", from + i);
        zr_message_t *msg = zr_message_new (topic, body, strlen (body));
        zr_send_result_t result;
        if (zr_producer_send (p, msg, &result))
            fail_msg ("send %d: %s", from + i, result.reason);
        zr_message_destroy (&msg);
    }
}

//  Counts the messages of every queue of topic readable at endpoint.
static int64_t
s_readable (const char *endpoint, const char *topic)
{
    zr_consumer_t *c = zr_consumer_new (endpoint);
    assert_non_null (c);
    int queues = zr_consumer_queues (c, topic);
    assert_true (queues > 0);
    int64_t total = 0;
    for (int q = 0; q < queues; q++) {
        int64_t offset = 0;
        while (true) {
            zr_pull_t *r = zr_consumer_pull (c, topic, q, offset, 256, 0);
            assert_non_null (r);
            size_t n = zr_pull_status (r) == ZR_OK ? zr_pull_count (r) : 0;
            total += (int64_t) n;
            offset = zr_pull_next (r);
            zr_pull_destroy (&r);
            if (n == 0)
                break;
        }
    }
    zr_consumer_destroy (&c);
    return total;
}

static void
test_follow_and_catch_up (void **state)
{
    char *dir_m = zrt_tempdir ("repl-master");
    char *dir_s = zrt_tempdir ("repl-slave");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    zactor_t *master = zrt_master_start (
        dir_m, "replication=async;auto-create=true",
        &ep_m, ha, sizeof ha);
    zactor_t *slave = s_slave (dir_s, ha, NULL, &ep_s);

    zr_producer_t *p = zr_producer_new (ep_m);
    assert_non_null (p);
    s_send_many (p, "ReplTopic", 500, 0);
    assert_true (s_converge (ep_m, ep_s, WAIT_MS));

    //  The slave refuses writes and names its master
    zr_producer_t *ps = zr_producer_new (ep_s);
    zr_producer_set_retries (ps, 0);
    zr_message_t *msg = zr_message_new ("ReplTopic", "x", 1);
    zr_send_result_t result;
    assert_int_not_equal (zr_producer_send (ps, msg, &result), 0);
    assert_int_equal (result.status, ZR_NOT_MASTER);
    zr_message_destroy (&msg);
    zr_producer_destroy (&ps);

    //  Slave stopped, 10,000 more written, slave back: it catches up
    int64_t seq_before, seq_at;
    char h_before [64], h_at [64];
    assert_int_equal (s_digest (ep_m, -1, &seq_before, h_before,
                                sizeof h_before), ZR_OK);
    zactor_destroy (&slave);
    s_send_many (p, "ReplTopic", 10000, 500);
    zstr_free (&ep_s);
    slave = s_slave (dir_s, ha, NULL, &ep_s);
    assert_true (s_converge (ep_m, ep_s, 60000));
    //  An older point of the history is the same on both
    assert_int_equal (s_digest (ep_s, seq_before, &seq_at, h_at,
                                sizeof h_at), ZR_OK);
    assert_string_equal (h_at, h_before);
    assert_int_equal (s_readable (ep_s, "ReplTopic"), 10500);
    //  STATS show the slave's lag on the master
    char *json = zrt_stats (master);
    assert_non_null (strstr (json, "\"lag_seq\":"));
    assert_non_null (strstr (json, "\"lag_bytes\":"));
    assert_non_null (strstr (json, "\"lag_ms\":"));
    zstr_free (&json);

    zr_producer_destroy (&p);
    zactor_destroy (&slave);
    zactor_destroy (&master);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ep_s);
}

//  The master's stream loses every 7th batch (test hook): the slave
//  counts the gaps, refetches, and ends with the same history.
static void
test_gaps_repaired (void **state)
{
    char *dir_m = zrt_tempdir ("repl-gap-m");
    char *dir_s = zrt_tempdir ("repl-gap-s");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    setenv ("ZR_TEST_REPL_DROP_EVERY", "7", 1);
    zactor_t *master = zrt_master_start (
        dir_m, "replication=async;auto-create=true",
        &ep_m, ha, sizeof ha);
    unsetenv ("ZR_TEST_REPL_DROP_EVERY");
    zactor_t *slave = s_slave (dir_s, ha, NULL, &ep_s);
    zr_producer_t *p = zr_producer_new (ep_m);
    //  First converge, so what follows travels on the stream
    s_send_many (p, "GapTopic", 10, 0);
    assert_true (s_converge (ep_m, ep_s, WAIT_MS));
    int64_t gaps0 = zrt_stat_int (slave, "gaps");
    s_send_many (p, "GapTopic", 700, 10);
    assert_true (s_converge (ep_m, ep_s, WAIT_MS));
    //  (the actors' counters reach STATS every 200 ms)
    assert_true (zrt_wait_stat (master, "test_dropped", 50, WAIT_MS) >= 50);
    assert_true (zrt_wait_stat (slave, "gaps", gaps0 + 50, WAIT_MS)
                 >= gaps0 + 50);
    assert_int_equal (zrt_stat_int (slave, "apply_errors"), 0);
    assert_int_equal (s_readable (ep_s, "GapTopic"), 710);
    zr_producer_destroy (&p);
    zactor_destroy (&slave);
    zactor_destroy (&master);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ep_s);
}

//  Sync mode: SEND_OK only once the slave applied; a stopped slave gives
//  FLUSH_SLAVE_TIMEOUT, then (out of the set, min-insync 2)
//  SLAVE_NOT_AVAILABLE.
static void
test_sync_mode (void **state)
{
    char *dir_m = zrt_tempdir ("repl-sync-m");
    char *dir_s = zrt_tempdir ("repl-sync-s");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    zactor_t *master = zrt_master_start (
        dir_m, "replication=sync;auto-create=true;"
        "min-insync=2;isr-max-lag-ms=1500;"
        "slave-ack-timeout-ms=1000", &ep_m, ha,
        sizeof ha);
    zactor_t *slave = s_slave (dir_s, ha, NULL, &ep_s);
    assert_int_equal (zrt_wait_stat (master, "insync", 2, WAIT_MS), 2);

    zr_producer_t *p = zr_producer_new (ep_m);
    zr_producer_set_timeout (p, 5000);
    zr_producer_set_retries (p, 0);
    for (int i = 0; i < 50; i++) {
        zr_message_t *msg = zr_message_new ("SyncTopic", "sync", 4);
        zr_send_result_t result;
        assert_int_equal (zr_producer_send (p, msg, &result), 0);
        zr_message_destroy (&msg);
        assert_int_equal (result.status, ZR_SEND_OK);
        //  The slave has it already: its sequence is the master's
        int64_t sm, ss;
        char hm [64], hs [64];
        assert_int_equal (s_digest (ep_m, -1, &sm, hm, sizeof hm), ZR_OK);
        assert_int_equal (s_digest (ep_s, -1, &ss, hs, sizeof hs), ZR_OK);
        assert_true (ss >= sm);
    }
    //  The slave stops: still in the set, so the ack times out
    zactor_destroy (&slave);
    zr_message_t *msg = zr_message_new ("SyncTopic", "late", 4);
    zr_send_result_t result;
    int64_t t0 = zclock_mono ();
    assert_int_equal (zr_producer_send (p, msg, &result), 0);
    assert_int_equal (result.status, ZR_FLUSH_SLAVE_TIMEOUT);
    assert_true (zclock_mono () - t0 >= 900);
    //  Once it left the set, below min-insync 2
    assert_int_equal (s_wait_stat_below (master, "insync", 1, WAIT_MS), 1);
    assert_int_equal (zr_producer_send (p, msg, &result), 0);
    assert_int_equal (result.status, ZR_SLAVE_NOT_AVAILABLE);
    zr_message_destroy (&msg);

    zr_producer_destroy (&p);
    zactor_destroy (&master);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ep_s);
}

//  The master keeps 50 batches of log: a fresh slave gets a full copy,
//  then follows the stream; a forced full copy works too.
static void
test_full_copy (void **state)
{
    char *dir_m = zrt_tempdir ("repl-copy-m");
    char *dir_s = zrt_tempdir ("repl-copy-s");
    char *ep_m = NULL, *ep_s = NULL;
    char ha [256];
    zactor_t *master = zrt_master_start (
        dir_m, "replication=async;auto-create=true;"
        "repl-log-keep=50", &ep_m, ha, sizeof ha);
    zr_producer_t *p = zr_producer_new (ep_m);
    s_send_many (p, "CopyTopic", 1000, 0);
    //  The log is trimmed (to the last 50 or so)
    assert_true (zrt_wait_stat (master, "log_first", 900, WAIT_MS) >= 900);

    zactor_t *slave = s_slave (dir_s, ha, NULL, &ep_s);
    assert_true (s_converge (ep_m, ep_s, 60000));
    assert_true (zrt_stat_int (slave, "full_copies") >= 1);
    assert_int_equal (s_readable (ep_s, "CopyTopic"), 1000);
    //  Then it follows the stream
    s_send_many (p, "CopyTopic", 100, 1000);
    assert_true (s_converge (ep_m, ep_s, WAIT_MS));
    assert_int_equal (s_readable (ep_s, "CopyTopic"), 1100);
    //  It survives a restart with the copied store
    zactor_destroy (&slave);
    zstr_free (&ep_s);
    slave = s_slave (dir_s, ha, NULL, &ep_s);
    s_send_many (p, "CopyTopic", 10, 1100);
    assert_true (s_converge (ep_m, ep_s, WAIT_MS));
    assert_int_equal (s_readable (ep_s, "CopyTopic"), 1110);

    zr_producer_destroy (&p);
    zactor_destroy (&slave);
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
        cmocka_unit_test (test_follow_and_catch_up),
        cmocka_unit_test (test_gaps_repaired),
        cmocka_unit_test (test_sync_mode),
        cmocka_unit_test (test_full_copy),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
