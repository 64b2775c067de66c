/*  tests/unit/test_groups.c - broker/groups: membership versions,
    expiry, leases (grant, renew, held, expiry, taken after expiry),
    unlock, check, leave releasing leases, bounds. Time is passed by
    hand, so nothing here waits.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "broker/groups.h"

static const char *s_topics [] = { "orders", "payments" };

static int
s_beat (zr_groups_t *g, const char *group, const char *client, int64_t now)
{
    return zr_groups_heartbeat (g, group, client, s_topics, 2, false,
                                client, strlen (client), false, now);
}

typedef struct {
    char ids [8][32];
    size_t count;
} seen_t;

static void
s_collect (const zr_groups_member_t *m, void *arg)
{
    seen_t *seen = (seen_t *) arg;
    if (seen->count < 8)
        snprintf (seen->ids [seen->count++], 32, "%s", m->client_id);
}

static void
s_changed (const char *group, uint64_t version, void *arg)
{
    seen_t *seen = (seen_t *) arg;
    if (seen->count < 8)
        snprintf (seen->ids [seen->count++], 32, "%s", group);
}

static void
test_membership_versions (void **state)
{
    zr_groups_t *g = zr_groups_new ();
    assert_int_equal (zr_groups_version (g, "g1"), 0);
    assert_int_equal (s_beat (g, "g1", "b", 0), 1);
    uint64_t v1 = zr_groups_version (g, "g1");
    assert_true (v1 > 0);
    //  A repeat heartbeat changes nothing.
    assert_int_equal (s_beat (g, "g1", "b", 10), 0);
    assert_true (zr_groups_version (g, "g1") == v1);
    assert_int_equal (s_beat (g, "g1", "a", 10), 1);
    uint64_t v2 = zr_groups_version (g, "g1");
    assert_true (v2 != v1);

    seen_t seen = { .count = 0 };
    assert_int_equal (zr_groups_members (g, "g1", s_collect, &seen), 2);
    assert_int_equal (seen.count, 2);
    assert_string_equal (seen.ids [0], "a");    //  client id order
    assert_string_equal (seen.ids [1], "b");

    //  New topics or mode move the version too.
    const char *one [] = { "orders" };
    assert_int_equal (zr_groups_heartbeat (g, "g1", "a", one, 1, false,
                                           "a", 1, false, 20), 1);
    uint64_t v3 = zr_groups_version (g, "g1");
    assert_true (v3 != v2);
    assert_int_equal (zr_groups_heartbeat (g, "g1", "a", one, 1, true,
                                           "a", 1, false, 20), 1);
    assert_true (zr_groups_version (g, "g1") != v3);

    //  Other groups are separate.
    assert_int_equal (s_beat (g, "g2", "a", 20), 1);
    assert_int_equal (zr_groups_count (g), 2);
    assert_int_equal (zr_groups_member_count (g), 3);
    assert_int_equal (zr_groups_foreach (g, NULL, NULL), 2);

    //  Leave: the version moves; leaving twice is no change.
    uint64_t before = zr_groups_version (g, "g1");
    assert_int_equal (zr_groups_leave (g, "g1", "b"), 1);
    assert_true (zr_groups_version (g, "g1") != before);
    assert_int_equal (zr_groups_leave (g, "g1", "b"), 0);
    assert_int_equal (zr_groups_leave (g, "nope", "b"), 0);
    seen.count = 0;
    assert_int_equal (zr_groups_members (g, "g1", s_collect, &seen), 1);
    assert_string_equal (seen.ids [0], "a");
    //  The last member leaving forgets the group.
    assert_int_equal (zr_groups_leave (g, "g2", "a"), 1);
    assert_int_equal (zr_groups_count (g), 1);
    zr_groups_destroy (&g);
    zr_groups_destroy (&g);
    assert_null (g);
}

static void
test_member_identity (void **state)
{
    zr_groups_t *g = zr_groups_new ();
    uint8_t id [300];
    memset (id, 7, sizeof id);
    assert_int_equal (zr_groups_heartbeat (g, "g", "a", s_topics, 2, false,
                                           id, 0, false, 0),
                      ZR_GROUPS_FULL);
    assert_int_equal (zr_groups_heartbeat (g, "g", "a", s_topics, 2, false,
                                           id, 257, false, 0),
                      ZR_GROUPS_FULL);
    assert_int_equal (zr_groups_count (g), 0);
    assert_int_equal (zr_groups_heartbeat (g, "g", "a", s_topics, 2, false,
                                           id, 256, true, 5), 1);
    //  A new connection: same member, new identity, no version change.
    uint64_t v = zr_groups_version (g, "g");
    assert_int_equal (zr_groups_heartbeat (g, "g", "a", s_topics, 2, false,
                                           "xy", 2, false, 6), 0);
    assert_true (zr_groups_version (g, "g") == v);
    zr_groups_destroy (&g);
}

static void
test_member_bound (void **state)
{
    zr_groups_t *g = zr_groups_new ();
    char id [32];
    for (int i = 0; i < ZR_GROUPS_MEMBERS_MAX; i++) {
        snprintf (id, sizeof id, "m%d", i);
        assert_int_equal (s_beat (g, "big", id, 0), 1);
    }
    assert_int_equal (s_beat (g, "big", "one-too-many", 0), ZR_GROUPS_FULL);
    //  Existing members still heartbeat.
    assert_int_equal (s_beat (g, "big", "m0", 1), 0);
    assert_int_equal (zr_groups_member_count (g), ZR_GROUPS_MEMBERS_MAX);
    zr_groups_destroy (&g);
}

static void
test_expiry (void **state)
{
    zr_groups_t *g = zr_groups_new ();
    s_beat (g, "g1", "a", 0);
    s_beat (g, "g1", "b", 0);
    s_beat (g, "g2", "c", 0);
    uint64_t token;
    assert_int_equal (zr_groups_lock (g, "g1", "orders", 0, "b", 0, 0,
                                      10000, &token, NULL, NULL),
                      ZR_GROUPS_OK);
    seen_t seen = { .count = 0 };
    //  Nobody is silent for 300 ms yet.
    assert_int_equal (zr_groups_expire (g, 299, 300, s_changed, &seen), 0);
    assert_int_equal (seen.count, 0);
    s_beat (g, "g1", "a", 200);
    uint64_t v = zr_groups_version (g, "g1");
    assert_int_equal (zr_groups_expire (g, 300, 300, s_changed, &seen), 2);
    assert_int_equal (seen.count, 2);          //  g1 and g2, once each
    assert_true (streq (seen.ids [0], "g1") || streq (seen.ids [1], "g1"));
    assert_true (zr_groups_version (g, "g1") != v);
    //  b's lease went with it; g2 is forgotten.
    assert_null (zr_groups_owner (g, "g1", "orders", 0, 300, NULL));
    assert_int_equal (zr_groups_lease_count (g), 0);
    assert_int_equal (zr_groups_version (g, "g2"), 0);
    assert_int_equal (zr_groups_count (g), 1);
    seen.count = 0;
    zr_groups_members (g, "g1", s_collect, &seen);
    assert_int_equal (seen.count, 1);
    assert_string_equal (seen.ids [0], "a");
    zr_groups_destroy (&g);
}

static void
test_leases (void **state)
{
    zr_groups_t *g = zr_groups_new ();
    uint64_t ta = 0, tb = 0, t = 0;
    const char *owner = NULL;
    int64_t left = 0;
    //  Grant
    assert_int_equal (zr_groups_lock (g, "g", "orders", 3, "a", 0, 1000,
                                      300, &ta, NULL, NULL), ZR_GROUPS_OK);
    assert_true (ta != 0);
    assert_string_equal (zr_groups_owner (g, "g", "orders", 3, 1100, &left),
                         "a");
    assert_int_equal (left, 200);
    //  Held for someone else
    assert_int_equal (zr_groups_lock (g, "g", "orders", 3, "b", 0, 1100,
                                      300, &tb, &owner, &left),
                      ZR_GROUPS_HELD);
    assert_string_equal (owner, "a");
    assert_int_equal (left, 200);
    //  Another queue is separate
    assert_int_equal (zr_groups_lock (g, "g", "orders", 4, "b", 0, 1100,
                                      300, &tb, NULL, NULL), ZR_GROUPS_OK);
    assert_true (tb != ta);
    //  Renew keeps the token and extends
    assert_int_equal (zr_groups_lock (g, "g", "orders", 3, "a", ta, 1200,
                                      300, &t, NULL, NULL), ZR_GROUPS_OK);
    assert_true (t == ta);
    assert_string_equal (zr_groups_owner (g, "g", "orders", 3, 1450, NULL),
                         "a");
    //  Check: the token passes, others and none fail
    assert_true (zr_groups_check (g, "g", "orders", 3, ta, 1450));
    assert_false (zr_groups_check (g, "g", "orders", 3, 0, 1450));
    assert_false (zr_groups_check (g, "g", "orders", 3, tb, 1450));
    //  Free queues and unknown groups pass any token
    assert_true (zr_groups_check (g, "g", "orders", 5, 0, 1450));
    assert_true (zr_groups_check (g, "other", "orders", 3, 0, 1450));
    //  Expired (1200 + 300): anyone passes, b takes it with a new token
    assert_true (zr_groups_check (g, "g", "orders", 3, 0, 1500));
    assert_null (zr_groups_owner (g, "g", "orders", 3, 1500, NULL));
    assert_int_equal (zr_groups_lock (g, "g", "orders", 3, "b", 0, 1500,
                                      300, &t, NULL, NULL), ZR_GROUPS_OK);
    assert_true (t != ta && t != tb);
    uint64_t tb3 = t;
    //  a's old token is refused now, and a cannot renew with it
    assert_false (zr_groups_check (g, "g", "orders", 3, ta, 1510));
    assert_int_equal (zr_groups_lock (g, "g", "orders", 3, "a", ta, 1510,
                                      300, &t, &owner, NULL),
                      ZR_GROUPS_HELD);
    assert_string_equal (owner, "b");
    //  The owner naming a stale token gets a new one
    assert_int_equal (zr_groups_lock (g, "g", "orders", 3, "b", 12345, 1520,
                                      300, &t, NULL, NULL), ZR_GROUPS_OK);
    assert_true (t != tb3);
    assert_false (zr_groups_check (g, "g", "orders", 3, tb3, 1520));
    tb3 = t;
    //  Unlock: wrong token refused, right one frees the queue
    assert_int_equal (zr_groups_unlock (g, "g", "orders", 3, ta, 1530),
                      ZR_GROUPS_INVALID);
    assert_string_equal (zr_groups_owner (g, "g", "orders", 3, 1530, NULL),
                         "b");
    assert_int_equal (zr_groups_lease_count (g), 2);
    assert_int_equal (zr_groups_unlock (g, "g", "orders", 3, tb3, 1530),
                      ZR_GROUPS_OK);
    assert_null (zr_groups_owner (g, "g", "orders", 3, 1530, NULL));
    assert_int_equal (zr_groups_lease_count (g), 1);
    //  Nothing left to release: fine
    assert_int_equal (zr_groups_unlock (g, "g", "orders", 3, tb3, 1530),
                      ZR_GROUPS_OK);
    //  Expire drops expired leases (queue 4: 1100 + 300)
    zr_groups_expire (g, 1400, 300, NULL, NULL);
    assert_int_equal (zr_groups_lease_count (g), 0);
    assert_int_equal (zr_groups_count (g), 0);
    zr_groups_destroy (&g);
}

static void
test_leave_releases (void **state)
{
    zr_groups_t *g = zr_groups_new ();
    s_beat (g, "g", "a", 0);
    s_beat (g, "g", "b", 0);
    uint64_t t;
    for (int q = 0; q < 4; q++)
        assert_int_equal (zr_groups_lock (g, "g", "orders", q,
                                          q % 2 ? "b" : "a", 0, 0, 1000,
                                          &t, NULL, NULL), ZR_GROUPS_OK);
    assert_int_equal (zr_groups_lease_count (g), 4);
    assert_int_equal (zr_groups_leave (g, "g", "a"), 1);
    assert_int_equal (zr_groups_lease_count (g), 2);
    assert_null (zr_groups_owner (g, "g", "orders", 0, 10, NULL));
    assert_string_equal (zr_groups_owner (g, "g", "orders", 1, 10, NULL),
                         "b");
    //  b takes a's queue at once
    assert_int_equal (zr_groups_lock (g, "g", "orders", 0, "b", 0, 10, 1000,
                                      &t, NULL, NULL), ZR_GROUPS_OK);
    zr_groups_destroy (&g);
}

static void
test_tokens_unique (void **state)
{
    zr_groups_t *g1 = zr_groups_new ();
    zr_groups_t *g2 = zr_groups_new ();
    uint64_t t1, t2, prev = 0;
    for (int i = 0; i < 100; i++) {
        assert_int_equal (zr_groups_lock (g1, "g", "t", i, "a", 0, 0, 10,
                                          &t1, NULL, NULL), ZR_GROUPS_OK);
        assert_true (t1 != prev && t1 > 0 && t1 < (uint64_t) INT64_MAX);
        prev = t1;
    }
    zr_groups_lock (g2, "g", "t", 0, "a", 0, 0, 10, &t2, NULL, NULL);
    //  Two tables start at different random points.
    assert_true (t2 != t1 && t2 + 99 != t1);
    zr_groups_destroy (&g1);
    zr_groups_destroy (&g2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_membership_versions),
        cmocka_unit_test (test_member_identity),
        cmocka_unit_test (test_member_bound),
        cmocka_unit_test (test_expiry),
        cmocka_unit_test (test_leases),
        cmocka_unit_test (test_leave_releases),
        cmocka_unit_test (test_tokens_unique),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
