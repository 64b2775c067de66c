/*  tests/unit/test_ha.c - the nameserver's leases and votes without
    sockets, on a clock the test controls (nameserver/ha.h, protocol.md
    section 16): lease grant, the start-up quiet time, death detection,
    the vote rules, fencing of an old master, and at most one vote per
    (group, epoch) across a restart of the vote store.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "nameserver/ha.h"
#include "broker/failover.h"

#define LEASE 500
#define DEAD 1000
#define T0 100000           //  start time

typedef struct {
    char *dir;
    zr_ha_t *ha;
    char reason [512];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("test_ha");
    char *err = NULL;
    f->ha = zr_ha_new (f->dir, LEASE, DEAD, T0, &err);
    assert_null (err);
    assert_non_null (f->ha);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_ha_destroy (&f->ha);
    assert_null (f->ha);
    zrt_rmrf (f->dir);
    free (f->dir);
    free (f);
    return 0;
}

//  Heartbeat from broker id at epoch with ISR {id, slave}.
static zr_ha_result_t
s_hb (fixture_t *f, int64_t id, int64_t epoch, int64_t seq, int64_t slave,
      int64_t now)
{
    int64_t isr [1] = { slave };
    int64_t e = 0, m = 0;
    return zr_ha_heartbeat (f->ha, "g1", id, epoch, seq, isr,
                            slave >= 0 ? 1 : 0, now, &e, &m, f->reason,
                            sizeof f->reason);
}

static int
s_vote (fixture_t *f, int64_t epoch, int64_t cand, int64_t last_epoch,
        int64_t last_seq, int64_t now)
{
    f->reason [0] = 0;
    return zr_ha_vote (f->ha, "g1", epoch, cand, last_epoch, last_seq, now,
                       f->reason, sizeof f->reason);
}

static void
test_settings (void **state)
{
    (void) state;
    char *err = NULL;
    zr_ha_t *ha = zr_ha_new (NULL, 2000, 2499, 0, &err);
    assert_null (ha);
    assert_non_null (err);
    assert_non_null (strstr (err, "master-dead-ms"));
    zstr_free (&err);
    ha = zr_ha_new (NULL, 2000, 2500, 0, &err);
    assert_non_null (ha);
    assert_int_equal (zr_ha_lease_ms (ha), 2000);
    assert_int_equal (zr_ha_dead_ms (ha), 2500);
    //  No data directory: never votes.
    char reason [256];
    assert_int_equal (zr_ha_vote (ha, "g", 2, 1, 1, 0, 100000, reason,
                                  sizeof reason), 0);
    assert_non_null (strstr (reason, "data directory"));
    zr_ha_destroy (&ha);
    zr_ha_destroy (&ha);
}

static void
test_lease_and_quiet_time (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  Young nameserver: records, grants nothing.
    assert_int_equal (s_hb (f, 0, 1, 10, 1, T0 + 10), ZR_HA_STARTING);
    assert_non_null (strstr (f->reason, "grants leases after"));
    assert_int_equal (s_hb (f, 0, 1, 10, 1, T0 + DEAD - 1), ZR_HA_STARTING);
    assert_int_equal (s_hb (f, 0, 1, 10, 1, T0 + DEAD), ZR_HA_GRANTED);
    //  Votes refused in the quiet time, whatever else holds.
    zr_ha_t *young = NULL;
    char *err = NULL;
    char *dir2 = zrt_tempdir ("test_ha_young");
    young = zr_ha_new (dir2, LEASE, DEAD, 0, &err);
    assert_non_null (young);
    assert_int_equal (zr_ha_vote (young, "g1", 2, 1, 1, 0, DEAD - 1,
                                  f->reason, sizeof f->reason), 0);
    assert_non_null (strstr (f->reason, "votes after"));
    zr_ha_destroy (&young);
    zrt_rmrf (dir2);
    free (dir2);
    //  Bad input
    assert_int_equal (s_hb (f, 0, 0, 10, 1, T0 + DEAD), ZR_HA_BAD);
    assert_int_equal (zr_ha_heartbeat (f->ha, "bad group", 0, 1, 0, NULL,
                                       0, T0 + DEAD, NULL, NULL, f->reason,
                                       sizeof f->reason), ZR_HA_BAD);
}

static void
test_death (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    int64_t epoch = -1;
    assert_true (zr_ha_master_dead (f->ha, "g1", now, &epoch));
    assert_int_equal (epoch, 0);
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    assert_false (zr_ha_master_dead (f->ha, "g1", now + DEAD - 1, &epoch));
    assert_int_equal (epoch, 1);
    assert_true (zr_ha_master_dead (f->ha, "g1", now + DEAD, NULL));
    assert_int_equal (zr_ha_master (f->ha, "g1", &epoch), 0);
    assert_int_equal (epoch, 1);
    assert_int_equal (zr_ha_master (f->ha, "other", NULL), -1);
}

static void
test_vote_rules (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    //  Never heard: no ISR to check against.
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now), 0);
    assert_non_null (strstr (f->reason, "in-sync"));
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    //  Master alive
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now + DEAD - 1), 0);
    assert_non_null (strstr (f->reason, "alive"));
    now += DEAD;
    //  Not in the ISR
    assert_int_equal (s_vote (f, 2, 7, 1, 10, now), 0);
    assert_non_null (strstr (f->reason, "not in the in-sync"));
    //  Behind what the group reached
    assert_int_equal (s_vote (f, 2, 1, 1, 9, now), 0);
    assert_non_null (strstr (f->reason, "behind"));
    assert_int_equal (s_vote (f, 2, 1, 0, 99, now), 0);
    //  Epoch not above the known one
    assert_int_equal (s_vote (f, 1, 1, 1, 10, now), 0);
    assert_non_null (strstr (f->reason, "not above"));
    //  Granted; asked again by the same candidate: granted again.
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now), 1);
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now), 1);
    //  Another candidate in the same epoch: refused (even if in the ISR
    //  and ahead).
    assert_int_equal (s_vote (f, 2, 0, 1, 11, now), 0);
    assert_non_null (strstr (f->reason, "already voted"));
    //  The winner is now the known master of epoch 2.
    int64_t epoch = 0;
    assert_int_equal (zr_ha_master (f->ha, "g1", &epoch), 1);
    assert_int_equal (epoch, 2);
}

static void
test_fencing (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    now += DEAD;
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now), 1);
    //  The old master comes back at epoch 1: fenced, told epoch 2 and
    //  its master.
    int64_t e = 0, m = 0;
    int64_t isr [1] = { 1 };
    assert_int_equal (zr_ha_heartbeat (f->ha, "g1", 0, 1, 12, isr, 1, now,
                                       &e, &m, f->reason, sizeof f->reason),
                      ZR_HA_FENCED);
    assert_int_equal (e, 2);
    assert_int_equal (m, 1);
    //  Someone else claiming epoch 2: fenced.
    assert_int_equal (s_hb (f, 0, 2, 12, -1, now), ZR_HA_FENCED);
    //  The winner's heartbeat at epoch 2: granted.
    assert_int_equal (s_hb (f, 1, 2, 10, 0, now), ZR_HA_GRANTED);
    assert_false (zr_ha_master_dead (f->ha, "g1", now + 1, NULL));
    //  A second master at the same epoch while the first lives: fenced.
    assert_int_equal (s_hb (f, 5, 2, 10, -1, now + 1), ZR_HA_FENCED);
}

static void
test_restart (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    now += DEAD;
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now), 1);
    zr_ha_destroy (&f->ha);
    //  Restart: the vote is back, the heartbeats are not.
    char *err = NULL;
    f->ha = zr_ha_new (f->dir, LEASE, DEAD, 0, &err);
    assert_non_null (f->ha);
    assert_null (err);
    int64_t epoch = 0;
    assert_int_equal (zr_ha_master (f->ha, "g1", &epoch), 1);
    assert_int_equal (epoch, 2);
    //  Another candidate for epoch 2 after the restart: refused.
    assert_int_equal (s_hb (f, 0, 1, 10, 3, DEAD), ZR_HA_FENCED);
    assert_int_equal (s_hb (f, 1, 2, 10, 3, DEAD), ZR_HA_GRANTED);
    assert_int_equal (s_vote (f, 2, 3, 2, 10, 3 * DEAD), 0);
    assert_non_null (strstr (f->reason, "already voted"));
    assert_int_equal (s_vote (f, 3, 3, 2, 10, 3 * DEAD), 1);
    zr_ha_destroy (&f->ha);
    f->ha = zr_ha_new (f->dir, LEASE, DEAD, 0, &err);
    assert_non_null (f->ha);
    assert_int_equal (zr_ha_master (f->ha, "g1", &epoch), 3);
    assert_int_equal (epoch, 3);
}

static void
s_write (const char *dir, const char *text)
{
    char *path = zsys_sprintf ("%s/votes", dir);
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    zstr_free (&path);
}

static void
test_bad_file (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char *err = NULL;
    const char *bad [] = {
        "garbage\n",
        "zrocket-votes 1\ng1 2 1 1\n",
        "zrocket-votes 1\ng1 2 1 1 10 extra\n",
        "zrocket-votes 1\nbad/name 2 1 1 10\n",
        "zrocket-votes 1\ng1 0 1 1 10\n",
        "zrocket-votes 1\ng1 2 1 1 10\ng1 2 4 1 10\n",
        "zrocket-votes 1\ng1 2 -1 1 10\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        s_write (f->dir, bad [i]);
        zr_ha_t *ha = zr_ha_new (f->dir, LEASE, DEAD, 0, &err);
        if (ha)
            fail_msg ("vote file %zu accepted", i);
        assert_non_null (err);
        assert_non_null (strstr (err, "vote file"));
        zstr_free (&err);
    }
    //  A torn last line is ignored; the complete ones count.
    s_write (f->dir, "zrocket-votes 1\ng1 2 1 1 10\ng1 3 4 1");
    zr_ha_t *ha = zr_ha_new (f->dir, LEASE, DEAD, 0, &err);
    assert_non_null (ha);
    int64_t epoch = 0;
    assert_int_equal (zr_ha_master (ha, "g1", &epoch), 1);
    assert_int_equal (epoch, 2);
    zr_ha_destroy (&ha);
    //  Unreadable: a directory where the file should be.
    char *path = zsys_sprintf ("%s/votes", f->dir);
    remove (path);
    assert_int_equal (zsys_dir_create ("%s", path), 0);
    ha = zr_ha_new (f->dir, LEASE, DEAD, 0, &err);
    assert_null (ha);
    assert_non_null (err);
    zstr_free (&err);
    zsys_dir_delete ("%s", path);
    zstr_free (&path);
}

//  The broker's side: the time until which a majority holds leases.
static void
test_majority (void **state)
{
    (void) state;
    int64_t one [1] = { 700 };
    assert_int_equal (zr_failover_majority (one, 1), 700);
    int64_t three [3] = { 500, 0, 900 };
    assert_int_equal (zr_failover_majority (three, 3), 500);
    int64_t three_b [3] = { 0, 0, 900 };
    assert_int_equal (zr_failover_majority (three_b, 3), 0);
    int64_t five [5] = { 10, 50, 40, 20, 30 };
    assert_int_equal (zr_failover_majority (five, 5), 30);
    //  Two nameservers: both are needed.
    int64_t two [2] = { 800, 300 };
    assert_int_equal (zr_failover_majority (two, 2), 300);
    assert_int_equal (zr_failover_majority (two, 0), 0);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_settings),
        cmocka_unit_test (test_majority),
        cmocka_unit_test_setup_teardown (test_lease_and_quiet_time,
                                         s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_death, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_vote_rules, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_fencing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_restart, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_bad_file, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
