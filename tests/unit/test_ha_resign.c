/*  tests/unit/test_ha_resign.c - the nameserver's side of a graceful
    handover (admin promote; nameserver/ha.h zr_ha_resign, protocol.md
    section 16 "Graceful handover"), on a clock the test controls: who
    may resign, the early vote for the successor only, no lease for the
    resigned master, withdrawal before and after a vote, and a restart
    that forgets the resignation.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "nameserver/ha.h"

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
    f->dir = zrt_tempdir ("test_ha_resign");
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
    f->reason [0] = 0;
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

static int
s_resign (fixture_t *f, int64_t id, int64_t epoch, int64_t seq,
          int64_t successor, bool withdraw, int64_t now)
{
    f->reason [0] = 0;
    return zr_ha_resign (f->ha, "g1", id, epoch, seq, successor, withdraw,
                         now, f->reason, sizeof f->reason);
}

static void
test_who_may_resign (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    //  Never heard: nothing to resign.
    assert_int_equal (s_resign (f, 0, 1, 10, 1, false, now), 0);
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    //  Not the master, a wrong epoch, the master itself, a successor not
    //  in the in-sync set, bad arguments: refused.
    assert_int_equal (s_resign (f, 1, 1, 10, 0, false, now), 0);
    assert_non_null (strstr (f->reason, "not the master"));
    assert_int_equal (s_resign (f, 0, 2, 10, 1, false, now), 0);
    assert_int_equal (s_resign (f, 0, 1, 10, 0, false, now), 0);
    assert_int_equal (s_resign (f, 0, 1, 10, 7, false, now), 0);
    assert_non_null (strstr (f->reason, "not in the in-sync"));
    assert_int_equal (zr_ha_resign (f->ha, "bad group!", 0, 1, 10, 1,
                                    false, now, f->reason,
                                    sizeof f->reason), 0);
    assert_int_equal (s_resign (f, 0, 1, -1, 1, false, now), 0);
    //  While the master lives, no vote without a resignation.
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now), 0);
    assert_non_null (strstr (f->reason, "alive"));
}

static void
test_handover (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    assert_int_equal (s_resign (f, 0, 1, 12, 1, false, now), 1);
    //  The resigned master gets no lease any more (it is not fenced).
    assert_int_equal (s_hb (f, 0, 1, 12, 1, now + 1), ZR_HA_RESIGNED);
    assert_non_null (strstr (f->reason, "resigned"));
    //  Another broker may not use the resignation, nor skip an epoch.
    assert_int_equal (s_vote (f, 2, 0, 1, 12, now + 1), 0);
    assert_int_equal (s_vote (f, 3, 1, 1, 12, now + 1), 0);
    //  The successor behind the resigned seq: refused.
    assert_int_equal (s_vote (f, 2, 1, 1, 11, now + 1), 0);
    assert_non_null (strstr (f->reason, "behind"));
    //  The successor with the seq: granted at once, master alive or not.
    assert_int_equal (s_vote (f, 2, 1, 1, 12, now + 1), 1);
    int64_t epoch = 0;
    assert_int_equal (zr_ha_master (f->ha, "g1", &epoch), 1);
    assert_int_equal (epoch, 2);
    //  The old master is now fenced, and cannot withdraw.
    assert_int_equal (s_hb (f, 0, 1, 12, 1, now + 2), ZR_HA_FENCED);
    assert_int_equal (s_resign (f, 0, 1, 12, 1, true, now + 2), 0);
    assert_non_null (strstr (f->reason, "cannot be withdrawn"));
    //  The new master gets leases.
    assert_int_equal (s_hb (f, 1, 2, 12, 0, now + 2), ZR_HA_GRANTED);
}

static void
test_withdraw (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    assert_int_equal (s_resign (f, 0, 1, 10, 1, false, now), 1);
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now + 1), ZR_HA_RESIGNED);
    //  A resigned master still heartbeats: it is alive (no lease).
    now += DEAD;
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_RESIGNED);
    //  Withdrawn before any vote: the master is alive, so the successor
    //  must wait for the usual death, and leases are granted again.
    assert_int_equal (s_resign (f, 0, 1, 10, -1, true, now + 2), 1);
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now + 3), 0);
    assert_non_null (strstr (f->reason, "alive"));
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now + 3), ZR_HA_GRANTED);
    assert_int_equal (s_vote (f, 2, 1, 1, 10, now + 4), 0);
    assert_non_null (strstr (f->reason, "alive"));
    //  Withdrawing what was never resigned (a restarted nameserver):
    //  accepted.
    assert_int_equal (s_resign (f, 0, 1, 10, -1, true, now + 5), 1);
}

static void
test_restart_forgets (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t now = T0 + DEAD;
    assert_int_equal (s_hb (f, 0, 1, 10, 1, now), ZR_HA_GRANTED);
    assert_int_equal (s_resign (f, 0, 1, 10, 1, false, now), 1);
    zr_ha_destroy (&f->ha);
    char *err = NULL;
    f->ha = zr_ha_new (f->dir, LEASE, DEAD, 0, &err);
    assert_non_null (f->ha);
    //  Starting: no resignation taken.
    assert_int_equal (s_resign (f, 0, 1, 10, 1, false, 1), 0);
    assert_int_equal (s_hb (f, 0, 1, 10, 1, DEAD), ZR_HA_GRANTED);
    //  Forgotten: no early vote.
    assert_int_equal (s_vote (f, 2, 1, 1, 10, DEAD + 1), 0);
    assert_non_null (strstr (f->reason, "alive"));
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_who_may_resign, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_handover, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_withdraw, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_restart_forgets, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
