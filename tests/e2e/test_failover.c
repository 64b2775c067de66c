/*  tests/e2e/test_failover.c - failover over the wire (docs/protocol.md
    section 16, "Leases", "Votes", "Fencing"): a nameserver with a data
    directory spoken to raw by a fake master and a fake candidate.

    - start-up refuses master-dead-ms < lease-ms + 500, and a bad vote
      file, with a clear message;
    - no lease and no vote in the first master-dead-ms after start;
    - HA_HEARTBEAT earns lease_ms; VOTE is refused while the master is
      alive and granted once it is dead (bounded: 3x the setting);
    - the old master's next heartbeat is answered NOT_MASTER with the new
      epoch and master;
    - after a nameserver restart on the same data directory, the vote
      stands: another candidate cannot win the same epoch.

    Timing waits are bounded (3x the setting):
    ctest: RUN_SERIAL
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"
#include "broker/failover.h"

#define RECV_TIMEOUT 5000
#define LEASE 200
#define DEAD 700
#define STEP 50             //  heartbeat interval of the fake master

typedef struct {
    char *dir;
    zactor_t *ns;
    char *endpoint;
    zsock_t *dealer;
    zr_enc_t *enc;
    int64_t rid;
    zr_hdr_t *hdr;          //  last reply
    const zr_obj_t *h;
    char status [32];
    char reason [512];
} fixture_t;

static zactor_t *
s_ns_new (const char *dir, int lease, int dead, char **err)
{
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "nameserver/bind", "tcp://127.0.0.1:*");
    zconfig_put (cfg, "nameserver/beacon", "false");
    zconfig_put (cfg, "nameserver/data", dir);
    char text [24];
    snprintf (text, sizeof text, "%d", lease);
    zconfig_put (cfg, "nameserver/lease-ms", text);
    snprintf (text, sizeof text, "%d", dead);
    zconfig_put (cfg, "nameserver/master-dead-ms", text);
    zactor_t *ns = zr_nameserver_new (cfg, err);
    zconfig_destroy (&cfg);
    return ns;
}

static void
s_start (fixture_t *f)
{
    char *err = NULL;
    f->ns = s_ns_new (f->dir, LEASE, DEAD, &err);
    if (!f->ns)
        fail_msg ("nameserver did not start: %s", err ? err : "?");
    f->endpoint = zr_nameserver_endpoint (f->ns);
    assert_non_null (f->endpoint);
    f->dealer = zsock_new_dealer (f->endpoint);
    assert_non_null (f->dealer);
    zsock_set_linger (f->dealer, 0);
}

static void
s_stop (fixture_t *f)
{
    zsock_destroy (&f->dealer);
    zactor_destroy (&f->ns);
    zstr_free (&f->endpoint);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("test_failover");
    f->enc = zr_enc_new ();
    s_start (f);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_stop (f);
    zr_hdr_destroy (&f->hdr);
    zr_enc_destroy (&f->enc);
    zrt_rmrf (f->dir);
    free (f->dir);
    free (f);
    return 0;
}

//  Sends f->enc and waits for the reply with rid; fills status, reason.
static void
s_call (fixture_t *f, int64_t rid)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, zr_enc_data (f->enc), zr_enc_size (f->enc));
    assert_int_equal (zmsg_send (&msg, f->dealer), 0);
    zmq_pollitem_t items [] = {
        { zsock_resolve (f->dealer), 0, ZMQ_POLLIN, 0 } };
    if (zmq_poll (items, 1, RECV_TIMEOUT) != 1)
        fail_msg ("no reply to rid %" PRId64, rid);
    msg = zmsg_recv (f->dealer);
    assert_non_null (msg);
    zframe_t *head = zmsg_first (msg);
    zr_hdr_destroy (&f->hdr);
    f->hdr = zr_hdr_decode (zframe_data (head), zframe_size (head), NULL);
    zmsg_destroy (&msg);
    assert_non_null (f->hdr);
    f->h = zr_hdr_root (f->hdr);
    int64_t got = -1;
    assert_int_equal (zr_field_int (f->h, "rid", &got), ZR_FIELD_OK);
    assert_int_equal (got, rid);
    assert_int_equal (zr_field_strbuf (f->h, "status", f->status,
                                       sizeof f->status), ZR_FIELD_OK);
    if (zr_field_strbuf (f->h, "reason", f->reason, sizeof f->reason)
        != ZR_FIELD_OK)
        f->reason [0] = 0;
}

static int64_t
s_int (fixture_t *f, const char *key)
{
    int64_t v = 0;
    if (zr_field_int (f->h, key, &v) != ZR_FIELD_OK)
        fail_msg ("reply (%s %s) has no int '%s'", f->status, f->reason,
                  key);
    return v;
}

static void
s_heartbeat (fixture_t *f, int64_t id, int64_t epoch, int64_t seq,
             int64_t slave)
{
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 9);
    zr_enc_kint (f->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kint (f->enc, "rid", ++f->rid);
    zr_enc_kstr (f->enc, "cmd", "HA_HEARTBEAT");
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g1");
    zr_enc_kint (f->enc, "broker_id", id);
    zr_enc_kint (f->enc, "epoch", epoch);
    zr_enc_kint (f->enc, "seq", seq);
    zr_enc_str (f->enc, "isr");
    zr_enc_array (f->enc, 1);
    zr_enc_int (f->enc, slave);
    s_call (f, f->rid);
}

//  Returns granted; *refusal gets the refusal text.
static bool
s_vote (fixture_t *f, int64_t epoch, int64_t cand, int64_t last_epoch,
        int64_t last_seq, char *refusal, size_t size)
{
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 9);
    zr_enc_kint (f->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kint (f->enc, "rid", ++f->rid);
    zr_enc_kstr (f->enc, "cmd", "VOTE");
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g1");
    zr_enc_kint (f->enc, "epoch", epoch);
    zr_enc_kint (f->enc, "candidate", cand);
    zr_enc_kint (f->enc, "last_epoch", last_epoch);
    zr_enc_kint (f->enc, "last_seq", last_seq);
    s_call (f, f->rid);
    if (strneq (f->status, "OK"))
        fail_msg ("VOTE: %s %s", f->status, f->reason);
    bool granted = false;
    assert_int_equal (zr_field_bool (f->h, "granted", &granted),
                      ZR_FIELD_OK);
    refusal [0] = 0;
    if (!granted)
        assert_int_equal (zr_field_strbuf (f->h, "refusal", refusal, size),
                          ZR_FIELD_OK);
    return granted;
}

//  Waits (a poll on nothing) for ms.
static void
s_pause (int ms)
{
    zmq_poll (NULL, 0, ms);
}

static void
test_start_refusals (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char *err = NULL;
    char *dir = zrt_tempdir ("test_failover_bad");
    zactor_t *ns = s_ns_new (dir, 2000, 2499, &err);
    assert_null (ns);
    assert_non_null (err);
    assert_non_null (strstr (err, "master-dead-ms"));
    zstr_free (&err);
    char *path = zsys_sprintf ("%s/votes", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs ("zrocket-votes 1\nthis is not a vote\n", file);
    fclose (file);
    ns = s_ns_new (dir, LEASE, DEAD, &err);
    assert_null (ns);
    assert_non_null (err);
    assert_non_null (strstr (err, "vote file"));
    assert_non_null (strstr (err, "line 2"));
    zstr_free (&err);
    zstr_free (&path);
    zrt_rmrf (dir);
    free (dir);
    //  Bad heartbeats get answers; the nameserver keeps serving.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kint (f->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kint (f->enc, "rid", ++f->rid);
    zr_enc_kstr (f->enc, "cmd", "HA_HEARTBEAT");
    zr_enc_kstr (f->enc, "group", "g1");
    s_call (f, f->rid);
    assert_string_equal (f->status, "MALFORMED");
    s_heartbeat (f, 0, 0, 0, 1);
    assert_string_equal (f->status, "BAD_ARGUMENT");
}

static void
test_lease_vote_fence (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char refusal [512];
    int64_t start = zclock_mono ();
    //  Young: heartbeats are recorded but earn no lease.
    s_heartbeat (f, 0, 1, 10, 1);
    assert_string_equal (f->status, "BUSY");
    assert_non_null (strstr (f->reason, "grants leases after"));
    //  Heartbeat every STEP ms until a lease comes (bounded).
    while (true) {
        s_heartbeat (f, 0, 1, 10, 1);
        if (streq (f->status, "OK"))
            break;
        assert_string_equal (f->status, "BUSY");
        if (zclock_mono () - start > 3 * DEAD)
            fail_msg ("no lease within %d ms of start", 3 * DEAD);
        s_pause (STEP);
    }
    assert_true (zclock_mono () - start >= DEAD);
    assert_int_equal (s_int (f, "lease_ms"), LEASE);
    assert_int_equal (s_int (f, "epoch"), 1);
    //  Alive: no vote.
    assert_false (s_vote (f, 2, 1, 1, 10, refusal, sizeof refusal));
    assert_non_null (strstr (refusal, "alive"));
    int64_t silent = zclock_mono ();
    //  The master falls silent: the candidate wins once it is dead.
    while (!s_vote (f, 2, 1, 1, 10, refusal, sizeof refusal)) {
        assert_non_null (strstr (refusal, "alive"));
        if (zclock_mono () - silent > 3 * DEAD)
            fail_msg ("no vote within %d ms of silence: %s", 3 * DEAD,
                      refusal);
        s_pause (STEP);
    }
    assert_true (zclock_mono () - silent >= DEAD - STEP);
    //  Another candidate, same epoch: refused.
    assert_false (s_vote (f, 2, 5, 1, 99, refusal, sizeof refusal));
    assert_non_null (strstr (refusal, "already voted"));
    //  The old master comes back: fenced, told the new epoch.
    s_heartbeat (f, 0, 1, 12, 1);
    assert_string_equal (f->status, "NOT_MASTER");
    assert_int_equal (s_int (f, "epoch"), 2);
    assert_int_equal (s_int (f, "master_id"), 1);
    //  The winner heartbeats at epoch 2: leased.
    s_heartbeat (f, 1, 2, 10, 0);
    assert_string_equal (f->status, "OK");
    //  The vote survives a restart on the same data directory.
    s_stop (f);
    s_start (f);
    int64_t restarted = zclock_mono ();
    while (true) {
        s_heartbeat (f, 1, 2, 10, 5);
        assert_true (streq (f->status, "OK") || streq (f->status, "BUSY"));
        bool granted = s_vote (f, 2, 5, 2, 10, refusal, sizeof refusal);
        assert_false (granted);
        if (!strstr (refusal, "votes after"))
            break;
        if (zclock_mono () - restarted > 3 * DEAD)
            fail_msg ("nameserver still starting after %d ms", 3 * DEAD);
        s_pause (STEP);
    }
    assert_non_null (strstr (refusal, "already voted for broker 1"));
    char *path = zsys_sprintf ("%s/votes", f->dir);
    assert_true (zsys_file_exists (path));
    zstr_free (&path);
}

//  The broker's side: the failover actor earns leases from a live
//  nameserver (once it is past its quiet time) and loses them within
//  3x lease_ms once the nameserver is gone.
static void
test_broker_leases (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char *err = NULL;
    char reason [256];
    zr_failover_t *fo = zr_failover_new ("tcp://127.0.0.1:1,,", "C", "g1",
                                         0, STEP, &err);
    zr_failover_destroy (&fo);
    zstr_free (&err);
    fo = zr_failover_new (f->endpoint, "DefaultCluster", "g1", 0, STEP,
                          &err);
    if (!fo)
        fail_msg ("failover: %s", err ? err : "?");
    assert_false (zr_failover_may_ack (fo, reason, sizeof reason));
    assert_non_null (strstr (reason, "leases"));
    zr_failover_state (fo, true, 1, 0, "1");
    int64_t start = zclock_mono ();
    while (!zr_failover_may_ack (fo, reason, sizeof reason)) {
        if (zclock_mono () - start > 3 * DEAD)
            fail_msg ("no lease within %d ms: %s", 3 * DEAD, reason);
        s_pause (10);
    }
    //  The nameserver goes away: the lease runs out, nothing renews it.
    s_stop (f);
    int64_t gone = zclock_mono ();
    while (zr_failover_may_ack (fo, reason, sizeof reason)) {
        if (zclock_mono () - gone > 3 * LEASE)
            fail_msg ("lease still held %d ms after the nameserver left",
                      3 * LEASE);
        s_pause (10);
    }
    assert_true (zclock_mono () - gone <= LEASE + STEP);
    assert_int_equal (zr_failover_fenced (fo), 0);
    zr_failover_destroy (&fo);
    assert_null (fo);
    s_start (f);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_start_refusals, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_lease_vote_fence, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_broker_leases, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
