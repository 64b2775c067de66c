/*  tests/e2e/test_isr_recorded.c - a sync master acknowledges without a
    slave that left its in-sync set only once a majority of nameservers
    recorded the smaller set (docs/protocol.md section 16, "Acknowledgements";
    docs/ha.md).

    - test_failover_actor: the failover actor's RECORDED set over a fake
      nameserver: it grows at once, and shrinks only when the nameserver's
      OK echoes the smaller set (not when it echoes the old one);
    - test_fake_nameserver: a master (failover, sync) and one slave; the
      slave stops while the fake nameserver keeps granting leases but
      echoes the old set: sends are FLUSH_SLAVE_TIMEOUT, the slave is held;
      once it echoes what it is told, a send is SEND_OK;
    - test_real_nameserver: the same with a real nameserver: after the
      slave stops, sends resume once the nameserver recorded the smaller
      set; with the nameserver stopped, a stopped slave's writes are not
      acknowledged (NOT_MASTER or FLUSH_SLAVE_TIMEOUT) and the slave stays
      held until a restarted nameserver records the smaller set;
    - test_under_load: with writes going on all the time (async mode),
      the smaller set still takes effect.

    Timing bounds are at least 3x the settings.
    ctest: RUN_SERIAL
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"
#include "broker/failover.h"

#define WAIT_MS 20000
#define HB 50               //  ha-heartbeat-ms
#define LAG 500             //  isr-max-lag-ms
#define ACK 1000            //  slave-ack-timeout-ms
#define LEASE 1000          //  nameserver lease-ms
#define DEAD 1500           //  nameserver master-dead-ms
#define FAKE_LEASE 3000     //  the fake nameserver's lease-ms

//  --------------------------------------------------------------------
//  A fake nameserver: answers HA_HEARTBEAT with OK, a lease and an `isr`
//  echo. MODE echo: echoes (and records) what it is told; MODE stale:
//  keeps echoing what it recorded before; MODE silent: no answer.
//  LAST -> the slave ids of the last heartbeat ("a,b"), and a count.

static void
s_fake_ns (zsock_t *pipe, void *args)
{
    (void) args;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (router, 0);
    int port = zsock_bind (router, "tcp://127.0.0.1:*");
    zsock_signal (pipe, 0);
    zstr_sendf (pipe, "tcp://127.0.0.1:%d", port);
    char mode [16] = "echo";
    char last [512] = "?";
    int64_t recorded [65];
    size_t recorded_count = 0;
    int heartbeats = 0;
    zr_enc_t *enc = zr_enc_new ();
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *cmd = NULL, *arg = NULL;
            zstr_recvx (pipe, &cmd, &arg, NULL);
            bool term = !cmd || streq (cmd, "$TERM");
            if (cmd && streq (cmd, "MODE") && arg) {
                snprintf (mode, sizeof mode, "%s", arg);
                zstr_send (pipe, "OK");
            }
            else
            if (cmd && streq (cmd, "LAST"))
                zstr_sendx (pipe, last, heartbeats ? "1" : "0", NULL);
            zstr_free (&cmd);
            zstr_free (&arg);
            if (term)
                break;
            continue;
        }
        if (which != router)
            break;
        zmsg_t *msg = zmsg_recv (router);
        if (!msg)
            break;
        zframe_t *id = zmsg_pop (msg);
        zframe_t *head = zmsg_last (msg);
        zr_hdr_t *hdr = head ? zr_hdr_decode (zframe_data (head),
                                              zframe_size (head), NULL)
                             : NULL;
        const zr_obj_t *h = hdr ? zr_hdr_root (hdr) : NULL;
        char cmd [32] = "";
        int64_t rid = 0, broker = -1, epoch = 0;
        if (h) {
            zr_field_strbuf (h, "cmd", cmd, sizeof cmd);
            zr_field_int (h, "rid", &rid);
            zr_field_int (h, "broker_id", &broker);
            zr_field_int (h, "epoch", &epoch);
        }
        if (streq (cmd, "HA_HEARTBEAT")) {
            heartbeats++;
            const zr_obj_t *list = zr_obj_get (h, "isr");
            size_t n = list && zr_obj_is_array (list) ? zr_obj_size (list)
                                                      : 0;
            if (n > 64)
                n = 64;
            last [0] = 0;
            int64_t told [64];
            for (size_t i = 0; i < n; i++) {
                told [i] = -1;
                zr_obj_int (zr_obj_at (list, i), &told [i]);
                size_t len = strlen (last);
                snprintf (last + len, sizeof last - len, "%s%" PRId64,
                          i ? "," : "", told [i]);
            }
            if (streq (mode, "echo")) {
                recorded [0] = broker;
                memcpy (recorded + 1, told, n * sizeof (int64_t));
                recorded_count = n + 1;
            }
            if (strneq (mode, "silent")) {
                zr_enc_reset (enc);
                zr_enc_map (enc, 7);
                zr_enc_kint (enc, "v", ZR_PROTOCOL_VERSION);
                zr_enc_kstr (enc, "type", "reply");
                zr_enc_kint (enc, "rid", rid);
                zr_enc_kstr (enc, "status", "OK");
                zr_enc_kint (enc, "lease_ms", FAKE_LEASE);
                zr_enc_kint (enc, "epoch", epoch);
                zr_enc_str (enc, "isr");
                zr_enc_array (enc, recorded_count);
                for (size_t i = 0; i < recorded_count; i++)
                    zr_enc_int (enc, recorded [i]);
                zmsg_t *reply = zmsg_new ();
                zmsg_append (reply, &(zframe_t *) { zframe_dup (id) });
                zmsg_addmem (reply, zr_enc_data (enc), zr_enc_size (enc));
                zmsg_send (&reply, router);
            }
        }
        zr_hdr_destroy (&hdr);
        zframe_destroy (&id);
        zmsg_destroy (&msg);
    }
    zpoller_destroy (&poller);
    zr_enc_destroy (&enc);
    zsock_destroy (&router);
}

static void
s_fake_mode (zactor_t *fake, const char *mode)
{
    zstr_sendx (fake, "MODE", mode, NULL);
    char *ok = zstr_recv (fake);
    assert_non_null (ok);
    zstr_free (&ok);
}

//  The slave ids the fake was last told (caller frees).
static char *
s_fake_last (zactor_t *fake)
{
    zstr_send (fake, "LAST");
    char *last = NULL, *any = NULL;
    zstr_recvx (fake, &last, &any, NULL);
    assert_non_null (last);
    zstr_free (&any);
    return last;
}

//  Waits (bounded) until the fake was last told the set want.
static void
s_fake_wait (zactor_t *fake, const char *want, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    zpoller_t *idle = zpoller_new (NULL);
    char *last = s_fake_last (fake);
    while (strneq (last, want) && zclock_mono () < deadline) {
        zstr_free (&last);
        zpoller_wait (idle, 10);
        last = s_fake_last (fake);
    }
    zpoller_destroy (&idle);
    if (strneq (last, want))
        fail_msg ("the nameserver was told [%s], not [%s], in %d ms", last,
                  want, ms);
    zstr_free (&last);
}

//  --------------------------------------------------------------------
//  Brokers


static bool
s_stats_has (zactor_t *broker, const char *text)
{
    char *json = zrt_stats (broker);
    bool has = strstr (json, text) != NULL;
    zstr_free (&json);
    return has;
}

//  Waits (bounded) until the broker's STATS holds text.
static void
s_wait_stats (zactor_t *broker, const char *text, int ms)
{
    int64_t deadline = zclock_mono () + ms;
    zpoller_t *idle = zpoller_new (NULL);
    while (!s_stats_has (broker, text) && zclock_mono () < deadline)
        zpoller_wait (idle, 10);
    zpoller_destroy (&idle);
    if (!s_stats_has (broker, text)) {
        char *json = zrt_stats (broker);
        fail_msg ("STATS has no %s within %d ms: %s", text, ms, json);
    }
}

static void
s_ha_endpoint (zactor_t *broker, char *ha, size_t size)
{
    char *json = zrt_stats (broker);
    const char *p = strstr (json, "\"ha_endpoint\":\"");
    assert_non_null (p);
    p += strlen ("\"ha_endpoint\":\"");
    const char *end = strchr (p, '"');
    assert_non_null (end);
    snprintf (ha, size, "%.*s", (int) (end - p), p);
    zstr_free (&json);
}

static zactor_t *
s_master_mode (const char *dir, const char *ns, char **ep, char *ha,
               size_t size, const char *mode)
{
    char extra [1024];
    snprintf (extra, sizeof extra, "role=master;group=g1;replication=%s;"
              "auto-create=true;min-insync=1;failover=true;broker-id=0;"
              "nameserver=%s;ha-heartbeat-ms=%d;master-dead-ms=%d;"
              "isr-max-lag-ms=%d;slave-ack-timeout-ms=%d", mode, ns, HB,
              DEAD, LAG, ACK);
    zactor_t *master = zrt_broker_start (dir, "tcp://127.0.0.1:*", extra,
                                         ep);
    s_ha_endpoint (master, ha, size);
    return master;
}

static zactor_t *
s_master (const char *dir, const char *ns, char **ep, char *ha,
          size_t size)
{
    return s_master_mode (dir, ns, ep, ha, size, "sync");
}

static zactor_t *
s_slave (const char *dir, const char *ns, const char *ha)
{
    char extra [1024];
    //  master-dead-ms is long: this slave never campaigns here.
    snprintf (extra, sizeof extra, "role=slave;group=g1;master=%s;"
              "replication=sync;failover=true;broker-id=1;nameserver=%s;"
              "ha-heartbeat-ms=%d;master-dead-ms=600000", ha, ns, HB);
    return zrt_broker_start (dir, "tcp://127.0.0.1:*", extra, NULL);
}

//  One send; returns its status.
static zr_status_t
s_send (zr_producer_t *p, const char *body)
{
    zr_message_t *msg = zr_message_new ("IsrTopic", body, strlen (body));
    zr_send_result_t result;
    memset (&result, 0, sizeof result);
    zr_producer_send (p, msg, &result);
    zr_message_destroy (&msg);
    return result.status;
}

//  Sends until one is SEND_OK (bounded); returns ms taken.
static int64_t
s_send_until_ok (zr_producer_t *p, int ms)
{
    int64_t start = zclock_mono ();
    zpoller_t *idle = zpoller_new (NULL);
    zr_status_t status = s_send (p, "first");
    while (status != ZR_SEND_OK && zclock_mono () - start < ms) {
        zpoller_wait (idle, 20);
        status = s_send (p, "again");
    }
    zpoller_destroy (&idle);
    if (status != ZR_SEND_OK)
        fail_msg ("no SEND_OK within %d ms: %s", ms, zr_status_str (status));
    return zclock_mono () - start;
}

//  --------------------------------------------------------------------

static void
test_failover_actor (void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_fake_ns, NULL);
    char *ns = zstr_recv (fake);
    char *err = NULL;
    zr_failover_t *fo = zr_failover_new (ns, "DefaultCluster", "g1", 1, HB,
                                         &err);
    assert_non_null (fo);
    //  Not master: nothing to report.
    assert_null (zr_failover_recorded (fo));
    zr_failover_state (fo, true, 1, 0, "2,3");
    int64_t start = zclock_mono ();
    zpoller_t *idle = zpoller_new (NULL);
    const char *rec = zr_failover_recorded (fo);
    while ((!rec || strneq (rec, "2,3")) && zclock_mono () - start < WAIT_MS) {
        zpoller_wait (idle, 5);
        rec = zr_failover_recorded (fo);
    }
    assert_non_null (rec);
    assert_string_equal (rec, "2,3");
    //  The set shrinks; the nameserver echoes the old one: it stays.
    s_fake_mode (fake, "stale");
    zr_failover_state (fo, true, 1, 5, "3");
    s_fake_wait (fake, "3", WAIT_MS);
    //  Several heartbeats answered with the old set (3x at least).
    zpoller_wait (idle, 6 * HB);
    rec = zr_failover_recorded (fo);
    assert_non_null (rec);
    assert_string_equal (rec, "2,3");
    //  Echoed: the smaller set takes effect within a few heartbeats.
    s_fake_mode (fake, "echo");
    start = zclock_mono ();
    rec = zr_failover_recorded (fo);
    while ((!rec || strneq (rec, "3")) && zclock_mono () - start < 20 * HB) {
        zpoller_wait (idle, 5);
        rec = zr_failover_recorded (fo);
    }
    assert_non_null (rec);
    assert_string_equal (rec, "3");
    //  Growing counts at once, before any echo.
    s_fake_mode (fake, "silent");
    zr_failover_state (fo, true, 1, 6, "3,4");
    start = zclock_mono ();
    rec = zr_failover_recorded (fo);
    while ((!rec || strneq (rec, "3,4")) && zclock_mono () - start < WAIT_MS) {
        zpoller_wait (idle, 5);
        rec = zr_failover_recorded (fo);
    }
    assert_non_null (rec);
    assert_string_equal (rec, "3,4");
    //  The new set was never confirmed: shrinking back keeps 4.
    zr_failover_state (fo, true, 1, 7, "3");
    s_fake_wait (fake, "3", WAIT_MS);
    zpoller_wait (idle, 4 * HB);
    rec = zr_failover_recorded (fo);
    assert_non_null (rec);
    assert_string_equal (rec, "3,4");
    zpoller_destroy (&idle);
    zr_failover_destroy (&fo);
    zactor_destroy (&fake);
    zstr_free (&ns);
}

static void
test_fake_nameserver (void **state)
{
    (void) state;
    zactor_t *fake = zactor_new (s_fake_ns, NULL);
    char *ns = zstr_recv (fake);
    char *dir_m = zrt_tempdir ("isr-fake-m");
    char *dir_s = zrt_tempdir ("isr-fake-s");
    char *ep_m = NULL;
    char ha [256];
    zactor_t *master = s_master (dir_m, ns, &ep_m, ha, sizeof ha);
    zr_producer_t *p = zr_producer_new (ep_m);
    zr_producer_set_timeout (p, 5000);
    zr_producer_set_retries (p, 0);
    s_send_until_ok (p, WAIT_MS);
    zactor_t *slave = s_slave (dir_s, ns, ha);
    s_wait_stats (master, "\"insync\":2", WAIT_MS);
    s_fake_wait (fake, "1", WAIT_MS);
    s_wait_stats (master, "\"isr_recorded\":[1]", WAIT_MS);
    assert_int_equal (s_send (p, "replicated"), ZR_SEND_OK);
    //  The nameserver keeps its old set; the slave stops.
    s_fake_mode (fake, "stale");
    zactor_destroy (&slave);
    s_fake_wait (fake, "", 3 * LAG + WAIT_MS);
    //  The master dropped it from its in-sync set and said so, but the
    //  set is not recorded: the slave still holds acknowledgements.
    int64_t t0 = zclock_mono ();
    assert_int_equal (s_send (p, "held"), ZR_FLUSH_SLAVE_TIMEOUT);
    assert_true (zclock_mono () - t0 >= ACK - 100);
    assert_true (s_stats_has (master, "\"isr_held\":[1]"));
    assert_true (s_stats_has (master, "\"isr_recorded\":[1]"));
    assert_int_equal (s_send (p, "still held"), ZR_FLUSH_SLAVE_TIMEOUT);
    //  The nameserver records the smaller set: acknowledgements resume.
    s_fake_mode (fake, "echo");
    t0 = zclock_mono ();
    assert_int_equal (s_send (p, "recorded"), ZR_SEND_OK);
    int64_t took = zclock_mono () - t0;
    printf ("SEND_OK %" PRId64 " ms after the nameserver echoed the "
            "smaller set (heartbeat %d ms)\n", took, HB);
    assert_true (took < ACK);
    s_wait_stats (master, "\"isr_held\":[]", 3 * 200);
    assert_true (s_stats_has (master, "\"isr_recorded\":[]"));
    assert_int_equal (s_send (p, "after"), ZR_SEND_OK);

    zr_producer_destroy (&p);
    zactor_destroy (&master);
    zactor_destroy (&fake);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&ep_m);
    zstr_free (&ns);
}

//  Binds sock to bind, retrying while the port is still being released
//  (bounded).
static void
s_bind_retry (zsock_t *sock, const char *bind)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    zpoller_t *idle = zpoller_new (NULL);
    while (zsock_bind (sock, "%s", bind) < 0) {
        if (zclock_mono () > deadline)
            fail_msg ("cannot bind %s again", bind);
        zpoller_wait (idle, 10);
    }
    zpoller_destroy (&idle);
}

//  s_nameserver on a port just released (bounded retries).
static zactor_t *
s_nameserver_retry (const char *dir, const char *bind)
{
    int64_t deadline = zclock_mono () + WAIT_MS;
    zpoller_t *idle = zpoller_new (NULL);
    zactor_t *ns = NULL;
    while (!ns) {
        zconfig_t *cfg = zconfig_new ("root", NULL);
        zconfig_put (cfg, "nameserver/bind", bind);
        zconfig_put (cfg, "nameserver/beacon", "false");
        zconfig_put (cfg, "nameserver/data", dir);
        char text [24];
        snprintf (text, sizeof text, "%d", LEASE);
        zconfig_put (cfg, "nameserver/lease-ms", text);
        snprintf (text, sizeof text, "%d", DEAD);
        zconfig_put (cfg, "nameserver/master-dead-ms", text);
        char *err = NULL;
        ns = zr_nameserver_new (cfg, &err);
        zconfig_destroy (&cfg);
        if (!ns && zclock_mono () > deadline)
            fail_msg ("nameserver on %s: %s", bind, err ? err : "?");
        zstr_free (&err);
        if (!ns)
            zpoller_wait (idle, 10);
    }
    zpoller_destroy (&idle);
    return ns;
}

static void
test_real_nameserver (void **state)
{
    (void) state;
    char *dir_n = zrt_tempdir ("isr-real-n");
    char *dir_m = zrt_tempdir ("isr-real-m");
    char *dir_s = zrt_tempdir ("isr-real-s");
    zactor_t *nsa = s_nameserver_retry (dir_n, "tcp://127.0.0.1:*");
    char *ns = zr_nameserver_endpoint (nsa);
    assert_non_null (ns);
    char *ep_m = NULL;
    char ha [256];
    zactor_t *master = s_master (dir_m, ns, &ep_m, ha, sizeof ha);
    zr_producer_t *p = zr_producer_new (ep_m);
    zr_producer_set_timeout (p, 5000);
    zr_producer_set_retries (p, 0);
    //  The nameserver grants leases after its quiet time (DEAD).
    s_send_until_ok (p, 3 * DEAD + WAIT_MS);
    zactor_t *slave = s_slave (dir_s, ns, ha);
    s_wait_stats (master, "\"insync\":2", WAIT_MS);
    s_wait_stats (master, "\"isr_recorded\":[1]", WAIT_MS);
    assert_int_equal (s_send (p, "replicated"), ZR_SEND_OK);

    //  1. The slave stops: acknowledgements resume once the nameserver
    //  recorded the smaller set (its OK echoed it: isr_recorded []).
    zactor_destroy (&slave);
    int64_t t0 = zclock_mono ();
    zr_status_t status = s_send (p, "during");
    assert_true (status == ZR_SEND_OK || status == ZR_FLUSH_SLAVE_TIMEOUT);
    s_wait_stats (master, "\"isr_recorded\":[]", 3 * LAG + WAIT_MS);
    int64_t shrunk = zclock_mono () - t0;
    assert_int_equal (s_send (p, "after"), ZR_SEND_OK);
    printf ("in-sync set recorded without the slave %" PRId64 " ms after "
            "it stopped (isr-max-lag-ms %d)\n", shrunk, LAG);
    s_wait_stats (master, "\"isr_held\":[]", 3 * 200);

    //  2. The slave is back; then the nameserver stops, then the slave:
    //  the set cannot be recorded smaller, so nothing is acknowledged.
    slave = s_slave (dir_s, ns, ha);
    s_wait_stats (master, "\"insync\":2", WAIT_MS);
    s_wait_stats (master, "\"isr_recorded\":[1]", WAIT_MS);
    char port [16];
    snprintf (port, sizeof port, "%s", strrchr (ns, ':') + 1);
    zactor_destroy (&nsa);
    //  Its port stays taken (nothing else may answer there): a ROUTER
    //  that never answers.
    char bind [64];
    snprintf (bind, sizeof bind, "tcp://127.0.0.1:%s", port);
    zsock_t *mute = zsock_new (ZMQ_ROUTER);
    zsock_set_linger (mute, 0);
    s_bind_retry (mute, bind);
    zactor_destroy (&slave);
    status = s_send (p, "unrecorded");
    assert_true (status == ZR_NOT_MASTER
                 || status == ZR_FLUSH_SLAVE_TIMEOUT);
    //  The slave left the in-sync set, and is held (bounded: 3x lag).
    s_wait_stats (master, "\"isr_held\":[1]", 3 * LAG + WAIT_MS);
    status = s_send (p, "unrecorded 2");
    assert_true (status == ZR_NOT_MASTER
                 || status == ZR_FLUSH_SLAVE_TIMEOUT);
    assert_true (s_stats_has (master, "\"isr_recorded\":[1]"));
    //  A nameserver on the same port records the smaller set (after its
    //  quiet time): acknowledgements resume.
    zsock_destroy (&mute);
    nsa = s_nameserver_retry (dir_n, bind);
    t0 = zclock_mono ();
    s_wait_stats (master, "\"isr_held\":[]", 3 * DEAD + WAIT_MS);
    int64_t took = zclock_mono () - t0;
    assert_true (took >= DEAD - 2 * HB);    //  no lease, no echo before
    s_send_until_ok (p, 3 * DEAD);
    assert_true (s_stats_has (master, "\"isr_recorded\":[]"));
    printf ("restarted nameserver: the smaller set took effect after %"
            PRId64 " ms (its quiet time %d ms)\n", took, DEAD);

    zr_producer_destroy (&p);
    zactor_destroy (&master);
    zactor_destroy (&nsa);
    zstr_free (&ns);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zrt_rmrf (dir_n);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&dir_n);
    zstr_free (&ep_m);
}

//  Under steady writes (async mode: the sequence told to the failover
//  actor moves with every send), the smaller set still takes effect.
static void
test_under_load (void **state)
{
    (void) state;
    char *dir_n = zrt_tempdir ("isr-load-n");
    char *dir_m = zrt_tempdir ("isr-load-m");
    char *dir_s = zrt_tempdir ("isr-load-s");
    zactor_t *nsa = s_nameserver_retry (dir_n, "tcp://127.0.0.1:*");
    char *ns = zr_nameserver_endpoint (nsa);
    assert_non_null (ns);
    char *ep_m = NULL;
    char ha [256];
    zactor_t *master = s_master_mode (dir_m, ns, &ep_m, ha, sizeof ha,
                                      "async");
    zr_producer_t *p = zr_producer_new (ep_m);
    zr_producer_set_timeout (p, 5000);
    zr_producer_set_retries (p, 0);
    s_send_until_ok (p, 3 * DEAD + WAIT_MS);
    zactor_t *slave = s_slave (dir_s, ns, ha);
    s_wait_stats (master, "\"isr_recorded\":[1]", WAIT_MS);
    zactor_destroy (&slave);
    s_wait_stats (master, "\"isr_held\":[1]", 3 * LAG + WAIT_MS);
    int64_t t0 = zclock_mono ();
    int sent = 0;
    while (!s_stats_has (master, "\"isr_held\":[]")) {
        for (int i = 0; i < 20; i++, sent++)
            assert_int_equal (s_send (p, "load"), ZR_SEND_OK);
        if (zclock_mono () - t0 > WAIT_MS)
            fail_msg ("slave still held after %d ms of writes", WAIT_MS);
    }
    assert_true (s_stats_has (master, "\"isr_recorded\":[]"));
    printf ("under load (%d sends): the smaller set took effect after %"
            PRId64 " ms\n", sent, zclock_mono () - t0);
    zr_producer_destroy (&p);
    zactor_destroy (&master);
    zactor_destroy (&nsa);
    zstr_free (&ns);
    zrt_rmrf (dir_m);
    zrt_rmrf (dir_s);
    zrt_rmrf (dir_n);
    zstr_free (&dir_m);
    zstr_free (&dir_s);
    zstr_free (&dir_n);
    zstr_free (&ep_m);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_failover_actor),
        cmocka_unit_test (test_fake_nameserver),
        cmocka_unit_test (test_real_nameserver),
        cmocka_unit_test (test_under_load),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
