/*  tests/e2e/test_replication.c - master/slave replication (protocol
    section 16): a slave follows and its digest equals the master's; a
    slave refuses writes with NOT_MASTER.

    ctest: RUN_SERIAL
*/
#include <zrocket.h>
#include <stdarg.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"

//  A broker's STATS json (caller frees).
static char *
s_stats (zactor_t *broker)
{
    zstr_send (broker, "STATS");
    char *status = NULL, *json = NULL;
    zstr_recvx (broker, &status, &json, NULL);
    assert_non_null (status);
    assert_string_equal (status, "OK");
    zstr_free (&status);
    return json;
}

//  Copies the string value of "key" in json into buf ("" if absent).
static void
s_json_str (const char *json, const char *key, char *buf, size_t size)
{
    char pat [64];
    snprintf (pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr (json, pat);
    buf [0] = 0;
    if (!p)
        return;
    p += strlen (pat);
    const char *end = strchr (p, '"');
    if (!end)
        return;
    snprintf (buf, size, "%.*s", (int) (end - p), p);
}

//  Waits (up to ms) until the slave's hash equals the master's; returns
//  true when it does.
static bool
s_converge (zactor_t *master, zactor_t *slave, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    zpoller_t *idle = zpoller_new (NULL);
    bool same = false;
    while (!same && zclock_mono () < deadline) {
        char *a = s_stats (master), *b = s_stats (slave);
        char ha [64], hb [64];
        s_json_str (a, "hash", ha, sizeof ha);
        s_json_str (b, "hash", hb, sizeof hb);
        same = *ha && streq (ha, hb);
        zstr_free (&a);
        zstr_free (&b);
        if (!same)
            zpoller_wait (idle, 20);    //  stats are pulled, not pushed
    }
    zpoller_destroy (&idle);
    return same;
}

static void
test_follow_and_digest (void **state)
{
    char *dir_m = zrt_tempdir ("repl-master");
    char *dir_s = zrt_tempdir ("repl-slave");
    char *ep_m = NULL, *ep_s = NULL;
    zactor_t *master = zrt_broker_start (dir_m, "tcp://127.0.0.1:*",
                                         "replication=async;auto-create=true", &ep_m);
    char *json = s_stats (master);
    char ha [256];
    s_json_str (json, "ha_endpoint", ha, sizeof ha);
    zstr_free (&json);
    assert_true (strlen (ha) > 6);
    char extra [512];
    snprintf (extra, sizeof extra, "role=slave;master=%s", ha);
    zactor_t *slave = zrt_broker_start (dir_s, "tcp://127.0.0.1:*", extra,
                                        &ep_s);

    zr_producer_t *p = zr_producer_new (ep_m);
    assert_non_null (p);
    for (int i = 0; i < 500; i++) {
        char body [64];
        snprintf (body, sizeof body, "message %d", i);
        zr_message_t *msg = zr_message_new ("ReplTopic", body,
                                            strlen (body));
        zr_send_result_t result;
        if (zr_producer_send (p, msg, &result))
            fail_msg ("send: %s", result.reason);
    }
    assert_true (s_converge (master, slave, 10000));

    //  The slave refuses writes and names its master
    zr_producer_t *ps = zr_producer_new (ep_s);
    zr_producer_set_retries (ps, 0);
    zr_message_t *msg = zr_message_new ("ReplTopic", "x", 1);
    zr_send_result_t result;
    assert_int_not_equal (zr_producer_send (ps, msg, &result), 0);
    assert_int_equal (result.status, ZR_NOT_MASTER);
    zr_producer_destroy (&ps);

    //  Slave stopped, more written, slave back: it catches up
    zactor_destroy (&slave);
    for (int i = 0; i < 2000; i++) {
        zr_message_t *m = zr_message_new ("ReplTopic", "more", 4);
        assert_int_equal (zr_producer_send (p, m, &result), 0);
    }
    slave = zrt_broker_start (dir_s, "tcp://127.0.0.1:*", extra, NULL);
    assert_true (s_converge (master, slave, 20000));
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
        cmocka_unit_test (test_follow_and_digest),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
