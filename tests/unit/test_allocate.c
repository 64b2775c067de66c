/*  tests/unit/test_allocate.c - queue allocation strategies: every queue
    owned by exactly one member, results independent of input order,
    averagely laid out as RocketMQ does it, unknown strategy refused.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <czmq.h>
#include "client/allocate.h"

static const char *strategies [] = { "averagely", "circle", "hash" };

//  Member ids m00..m09 and queues over two topics on two brokers.
static char member_ids [10][8];
static zr_alloc_queue_t all_queues [32];

static void
s_setup_inputs (void)
{
    for (int i = 0; i < 10; i++)
        snprintf (member_ids [i], sizeof (member_ids [i]), "m%02d", i);
    for (int i = 0; i < 32; i++) {
        all_queues [i].broker = i % 2 ? "broker-b" : "broker-a";
        all_queues [i].topic = i % 3 ? "orders" : "%RETRY%g";
        all_queues [i].queue = i;
    }
}

//  Owner index per queue, computed by asking every member; fails when a
//  queue has no owner or two.
static void
s_owners (const char *strategy, const char *const *members, size_t m,
          const zr_alloc_queue_t *queues, size_t n, int *owner)
{
    bool owned [32];
    for (size_t i = 0; i < n; i++)
        owner [i] = -1;
    int total = 0;
    for (size_t k = 0; k < m; k++) {
        int rc = zr_allocate (strategy, members, m, members [k], queues, n,
                              owned);
        assert_true (rc >= 0);
        int count = 0;
        for (size_t i = 0; i < n; i++)
            if (owned [i]) {
                assert_int_equal (owner [i], -1);
                owner [i] = (int) k;
                count++;
            }
        assert_int_equal (rc, count);
        total += count;
    }
    assert_int_equal (total, (int) n);
}

static void
test_every_queue_once (void **state)
{
    s_setup_inputs ();
    const char *members [10];
    for (int i = 0; i < 10; i++)
        members [i] = member_ids [i];
    int owner [32];
    for (size_t s = 0; s < 3; s++)
        for (size_t m = 1; m <= 10; m++)
            for (size_t n = 1; n <= 32; n++)
                s_owners (strategies [s], members, m, all_queues, n, owner);
}

//  Same queues and members in another order: each member owns the same
//  queues (compared by identity, not by position).
static void
test_order_independent (void **state)
{
    s_setup_inputs ();
    const char *members [10];
    for (int i = 0; i < 10; i++) {
        members [i] = member_ids [i];
    }
    zr_alloc_queue_t shuffled [32];
    for (int i = 0; i < 32; i++)
        shuffled [i] = all_queues [(i * 7 + 3) % 32];   //  7 is prime to 32
    for (size_t s = 0; s < 3; s++)
        for (size_t m = 1; m <= 10; m++) {
            bool a [32], b [32];
            for (size_t k = 0; k < m; k++) {
                //  the same m members, rotated
                const char *rot [10];
                for (size_t j = 0; j < m; j++)
                    rot [j] = members [(j + k + 1) % m];
                int ra = zr_allocate (strategies [s], members, m,
                                      members [k], all_queues, 32, a);
                int rb = zr_allocate (strategies [s], rot, m, members [k],
                                      shuffled, 32, b);
                assert_int_equal (ra, rb);
                for (int i = 0; i < 32; i++)
                    assert_int_equal (a [(i * 7 + 3) % 32], b [i]);
            }
        }
}

//  RocketMQ AllocateMessageQueueAveragely, 8 queues over 3 consumers:
//  c0 gets 0-2, c1 gets 3-5, c2 gets 6-7; 2 queues over 3: c0 q0, c1 q1,
//  c2 nothing.
static void
test_averagely_layout (void **state)
{
    zr_alloc_queue_t q [8];
    for (int i = 0; i < 8; i++) {
        q [i].broker = "b";
        q [i].topic = "t";
        q [i].queue = i;
    }
    const char *members [] = { "c2", "c0", "c1" };
    int owner [8];
    s_owners ("averagely", members, 3, q, 8, owner);
    //  owner[] indexes the members array given: c2 = 0, c0 = 1, c1 = 2
    int expect [8] = { 1, 1, 1, 2, 2, 2, 0, 0 };
    for (int i = 0; i < 8; i++)
        assert_int_equal (owner [i], expect [i]);
    s_owners ("averagely", members, 3, q, 2, owner);
    assert_int_equal (owner [0], 1);
    assert_int_equal (owner [1], 2);

    //  circle: queue i to member i mod m
    s_owners ("circle", members, 3, q, 8, owner);
    int circle [8] = { 1, 2, 0, 1, 2, 0, 1, 2 };
    for (int i = 0; i < 8; i++)
        assert_int_equal (owner [i], circle [i]);
}

//  Consistent hash: adding an eleventh member moves only the queues it
//  takes; everyone else keeps theirs.
static void
test_hash_moves_little (void **state)
{
    s_setup_inputs ();
    const char *members [11];
    for (int i = 0; i < 10; i++)
        members [i] = member_ids [i];
    members [10] = "m10";
    int before [32], after [32];
    s_owners ("hash", members, 10, all_queues, 32, before);
    s_owners ("hash", members, 11, all_queues, 32, after);
    for (int i = 0; i < 32; i++)
        if (after [i] != 10)
            assert_int_equal (after [i], before [i]);
    //  And the ring spreads: with 2 members and 32 queues each gets some.
    s_owners ("hash", members, 2, all_queues, 32, before);
    int zero = 0;
    for (int i = 0; i < 32; i++)
        zero += before [i] == 0;
    assert_true (zero > 4 && zero < 28);
}

static void
test_bad_input (void **state)
{
    s_setup_inputs ();
    const char *members [] = { "a", "b" };
    bool owned [4];
    assert_int_equal (zr_allocate ("nope", members, 2, "a", all_queues, 4,
                                   owned), -1);
    assert_int_equal (zr_allocate (NULL, members, 2, "a", all_queues, 4,
                                   owned), -1);
    assert_false (zr_allocate_strategy_valid ("AVERAGELY"));
    assert_true (zr_allocate_strategy_valid ("hash"));
    //  Not a member: owns nothing.
    assert_int_equal (zr_allocate ("circle", members, 2, "zz", all_queues, 4,
                                   owned), 0);
    for (int i = 0; i < 4; i++)
        assert_false (owned [i]);
    //  Duplicate member ids count once.
    const char *dup [] = { "a", "a", "b" };
    int owner [32];
    s_owners ("averagely", dup + 1, 2, all_queues, 4, owner);
    assert_int_equal (zr_allocate ("averagely", dup, 3, "a", all_queues, 4,
                                   owned), 2);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_every_queue_once),
        cmocka_unit_test (test_order_independent),
        cmocka_unit_test (test_averagely_layout),
        cmocka_unit_test (test_hash_moves_little),
        cmocka_unit_test (test_bad_input),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
