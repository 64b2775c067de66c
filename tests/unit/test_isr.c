/*  tests/unit/test_isr.c - which slaves the nameservers may have recorded
    (protocol.md section 16, "Acknowledgements"), without sockets:

    - zr_failover_recorded_set: the union of every in-sync set told since
      the newest version a majority of nameservers confirmed (all of them
      while no majority confirmed any; merged history entries count in
      full);
    - zr_ha_isr: a nameserver records the set of the last heartbeat it
      accepted (the master first), not that of a fenced one.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "nameserver/ha.h"
#include "broker/failover.h"

//  Sets history [i] to version and ids (count of them).
static void
s_set (zr_failover_isr_t *h, int64_t version, size_t count, ...)
{
    va_list args;
    va_start (args, count);
    h->version = version;
    h->count = count;
    for (size_t i = 0; i < count; i++)
        h->ids [i] = va_arg (args, int64_t);
    va_end (args);
}

//  The recorded set as "a,b,c".
static char *
s_recorded (const zr_failover_isr_t *history, size_t count,
            const int64_t *confirmed, size_t ns_count, size_t max)
{
    int64_t out [ZR_FAILOVER_ISR_MAX];
    size_t n = zr_failover_recorded_set (history, count, confirmed,
                                         ns_count, out, max);
    assert_true (n <= max);
    char *text = strdup ("");
    for (size_t i = 0; i < n; i++) {
        char *more = zsys_sprintf ("%s%s%" PRId64, text, i ? "," : "",
                                   out [i]);
        free (text);
        text = more;
    }
    return text;
}

static void
s_expect (const zr_failover_isr_t *history, size_t count,
          const int64_t *confirmed, size_t ns_count, const char *want)
{
    char *got = s_recorded (history, count, confirmed, ns_count,
                            ZR_FAILOVER_ISR_MAX);
    assert_string_equal (got, want);
    free (got);
}

static void
test_recorded_set (void **state)
{
    (void) state;
    zr_failover_isr_t h [3];
    //  Told {2,3}, then {3} (2 lagged), then {} (3 lagged too).
    s_set (&h [0], 1, 2, (int64_t) 3, (int64_t) 2);
    s_set (&h [1], 2, 1, (int64_t) 3);
    s_set (&h [2], 3, 0);
    //  Nothing confirmed: any set told may be recorded.
    int64_t none [3] = { 0, 0, 0 };
    s_expect (h, 3, none, 3, "2,3");
    //  One of three confirmed the newest: not a majority.
    int64_t one [3] = { 3, 0, 0 };
    s_expect (h, 3, one, 3, "2,3");
    //  A majority confirmed version 2 or newer: {3} and {} remain.
    int64_t two [3] = { 3, 2, 0 };
    s_expect (h, 3, two, 3, "3");
    //  A majority confirmed the newest: only it counts.
    int64_t all [3] = { 1, 3, 3 };
    s_expect (h, 3, all, 3, "");
    //  One nameserver: its own confirmation is the majority.
    int64_t single [1] = { 2 };
    s_expect (h, 3, single, 1, "3");
    //  Two nameservers: both are needed.
    int64_t pair [2] = { 3, 1 };
    s_expect (h, 3, pair, 2, "2,3");
    //  A merged entry (versions 4..5 as 5) counts whole while version 4
    //  or 5 is the oldest a majority may hold.
    zr_failover_isr_t m [2];
    s_set (&m [0], 5, 2, (int64_t) 8, (int64_t) 7);
    s_set (&m [1], 6, 0);
    int64_t at4 [3] = { 4, 6, 4 };
    s_expect (m, 2, at4, 3, "7,8");
    int64_t at6 [3] = { 6, 6, 0 };
    s_expect (m, 2, at6, 3, "");
    //  Duplicates across sets appear once, ascending; max is respected.
    zr_failover_isr_t d [2];
    s_set (&d [0], 1, 2, (int64_t) 9, (int64_t) 2);
    s_set (&d [1], 2, 2, (int64_t) 2, (int64_t) 4);
    s_expect (d, 2, none, 3, "2,4,9");
    char *cut = s_recorded (d, 2, none, 3, 2);
    assert_int_equal (strlen (cut), 3);     //  two ids of one digit
    free (cut);
    //  No history, no nameservers: nothing.
    s_expect (d, 0, none, 3, "");
    s_expect (d, 2, none, 0, "2,4,9");
}

static void
test_ha_isr (void **state)
{
    (void) state;
    char *err = NULL;
    char reason [256];
    zr_ha_t *ha = zr_ha_new (NULL, 500, 1000, 0, &err);
    assert_non_null (ha);
    int64_t out [ZR_HA_ISR_MAX + 1];
    assert_int_equal (zr_ha_isr (ha, "g1", out, ZR_HA_ISR_MAX + 1), 0);
    int64_t e = 0, m = 0;
    int64_t isr [3] = { 2, 3, 1 };
    assert_int_equal (zr_ha_heartbeat (ha, "g1", 1, 1, 10, isr, 3, 2000, &e,
                                       &m, reason, sizeof reason),
                      ZR_HA_GRANTED);
    assert_int_equal (zr_ha_isr (ha, "g1", out, ZR_HA_ISR_MAX + 1), 3);
    assert_int_equal (out [0], 1);
    assert_int_equal (out [1], 2);
    assert_int_equal (out [2], 3);
    assert_int_equal (zr_ha_isr (ha, "g1", out, 1), 1);
    //  The set shrinks: recorded at once.
    assert_int_equal (zr_ha_heartbeat (ha, "g1", 1, 1, 11, isr, 1, 2100, &e,
                                       &m, reason, sizeof reason),
                      ZR_HA_GRANTED);
    assert_int_equal (zr_ha_isr (ha, "g1", out, ZR_HA_ISR_MAX + 1), 2);
    assert_int_equal (out [1], 2);
    //  A fenced heartbeat (an older epoch) records nothing.
    assert_int_equal (zr_ha_heartbeat (ha, "g1", 1, 2, 12, NULL, 0, 2200,
                                       &e, &m, reason, sizeof reason),
                      ZR_HA_GRANTED);
    assert_int_equal (zr_ha_heartbeat (ha, "g1", 1, 1, 13, isr, 3, 2300, &e,
                                       &m, reason, sizeof reason),
                      ZR_HA_FENCED);
    assert_int_equal (zr_ha_isr (ha, "g1", out, ZR_HA_ISR_MAX + 1), 1);
    assert_int_equal (out [0], 1);
    assert_int_equal (zr_ha_isr (ha, "other", out, ZR_HA_ISR_MAX + 1), 0);
    assert_int_equal (zr_ha_isr (ha, NULL, out, ZR_HA_ISR_MAX + 1), 0);
    zr_ha_destroy (&ha);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_recorded_set),
        cmocka_unit_test (test_ha_isr),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
