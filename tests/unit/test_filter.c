/*  tests/unit/test_filter.c - broker/filter: tag and SQL92 expressions
    against a table of messages, three-valued logic, numeric and string
    comparisons, parse errors with positions, bounds, the meta map path
    and the compiled-filter cache.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"
#include "broker/filter.h"

//  A message: tag plus up to 4 properties.
typedef struct {
    const char *tag;
    const char *props [8];      //  name, value, name, value, ..., NULL
} tmsg_t;

static bool
s_prop (const char *name, const char **value, size_t *len, void *arg)
{
    const tmsg_t *m = (const tmsg_t *) arg;
    for (int i = 0; m->props [i]; i += 2)
        if (streq (m->props [i], name)) {
            *value = m->props [i + 1];
            *len = strlen (m->props [i + 1]);
            return true;
        }
    return false;
}

static int
s_eval (const char *type, const char *expr, const tmsg_t *m)
{
    char err [256];
    zr_filter_t *f = zr_filter_new (type, expr, strlen (expr), err,
                                    sizeof err);
    if (!f)
        fail_msg ("'%s' did not compile: %s", expr, err);
    int r = zr_filter_eval (f, m->tag, strlen (m->tag), s_prop, (void *) m);
    zr_filter_destroy (&f);
    return r;
}

#define TT ZR_FILTER_TRUE
#define FF ZR_FILTER_FALSE
#define UU ZR_FILTER_UNKNOWN

static const tmsg_t s_msgs [] = {
    /* 0 */ { "TagA", { "n", "51", "color", "red", NULL } },
    /* 1 */ { "TagB", { "n", "5", "color", "blue", NULL } },
    /* 2 */ { "", { "color", "red", NULL } },
    /* 3 */ { "TagC", { "n", "abc", "price", "9.5", NULL } },
    /* 4 */ { "TagA", { "n", "-3", "flag", "TRUE", NULL } },
};
#define MSGS 5

//  Expressions and which of s_msgs they match (1) or not (0).
static const struct {
    const char *type;
    const char *expr;
    const char *matches;        //  one char per message
} s_table [] = {
    { "tag", "*", "11111" },
    { "tag", "", "11111" },
    { "tag", "TagA", "10001" },
    { "tag", "  TagA ||TagB  ", "11001" },
    { "tag", "TagA || TagB || TagC", "11011" },
    { "tag", "tagA", "00000" },
    { "sql", "n > 50", "10000" },
    { "sql", "n >= 5", "11000" },
    { "sql", "n < 5", "00001" },
    { "sql", "n = 51", "10000" },
    { "sql", "n = 51.0", "10000" },
    { "sql", "n = '51'", "10000" },
    { "sql", "n <> 5", "10001" },
    { "sql", "n != 5", "10001" },
    { "sql", "NOT (n > 5)", "01001" },
    { "sql", "not n > 5", "01001" },
    { "sql", "n > -4", "11001" },
    { "sql", "n > -4 AND color = 'red'", "10000" },
    { "sql", "n > 50 OR color = 'red'", "10100" },
    { "sql", "color IN ('red', 'green')", "10100" },
    { "sql", "color NOT IN ('red', 'green')", "01000" },
    { "sql", "n IN (5, 51)", "11000" },
    { "sql", "n NOT IN (5, 51)", "00001" },
    { "sql", "n BETWEEN 5 AND 51", "11000" },
    { "sql", "n NOT BETWEEN 5 AND 51", "00001" },
    { "sql", "price BETWEEN 9 AND 10", "00010" },
    { "sql", "price > 9.25", "00010" },
    { "sql", "n IS NULL", "00100" },
    { "sql", "n IS NOT NULL", "11011" },
    { "sql", "TAGS = 'TagA'", "10001" },
    { "sql", "TAGS IN ('TagA', 'TagC')", "10011" },
    { "sql", "TAGS IS NULL", "00100" },
    { "sql", "TAGS = 'TagA' AND n < 0", "00001" },
    { "sql", "flag = TRUE", "00001" },
    { "sql", "flag <> FALSE", "00001" },
    { "sql", "TRUE", "11111" },
    { "sql", "FALSE OR n = 5", "01000" },
    { "sql", "color > 'blue'", "10100" },
    { "sql", "color = 'it''s'", "00000" },
    { "sql", "((n > 5) AND (color = 'red'))", "10000" },
    { "sql", "n > 5 OR n <= 5", "11001" },    //  missing and 'abc': UNKNOWN
    { "sql", "a = 1 OR n > 50 OR b = 2", "10000" },
    { "sql", "5 < n", "10000" },
    { "sql", "n = 1e0 OR n = 5.0e0", "01000" },
};

static void
test_table (void **state)
{
    for (size_t i = 0; i < sizeof s_table / sizeof s_table [0]; i++)
        for (int m = 0; m < MSGS; m++) {
            int r = s_eval (s_table [i].type, s_table [i].expr, &s_msgs [m]);
            bool want = s_table [i].matches [m] == '1';
            if ((r == TT) != want)
                fail_msg ("%s '%s' on message %d: got %d, want %s",
                          s_table [i].type, s_table [i].expr, m, r,
                          want ? "TRUE" : "not TRUE");
        }
}

//  A message without n: neither n > 5 nor NOT (n > 5) matches; both
//  are UNKNOWN, as are comparisons against a non-number.
static void
test_unknown (void **state)
{
    const tmsg_t *none = &s_msgs [2];
    assert_int_equal (s_eval ("sql", "n > 5", none), UU);
    assert_int_equal (s_eval ("sql", "NOT (n > 5)", none), UU);
    assert_int_equal (s_eval ("sql", "NOT NOT (n > 5)", none), UU);
    assert_int_equal (s_eval ("sql", "n IN (1, 2)", none), UU);
    assert_int_equal (s_eval ("sql", "n NOT IN (1, 2)", none), UU);
    assert_int_equal (s_eval ("sql", "n BETWEEN 1 AND 2", none), UU);
    assert_int_equal (s_eval ("sql", "n NOT BETWEEN 1 AND 2", none), UU);
    assert_int_equal (s_eval ("sql", "n IS NULL", none), TT);
    //  'abc' against a number: UNKNOWN; against a string: compares.
    const tmsg_t *abc = &s_msgs [3];
    assert_int_equal (s_eval ("sql", "n > 5", abc), UU);
    assert_int_equal (s_eval ("sql", "n = 'abc'", abc), TT);
    assert_int_equal (s_eval ("sql", "n IN ('x', 5)", abc), UU);
    assert_int_equal (s_eval ("sql", "n IN ('abc', 5)", abc), TT);
    //  '51' against '6' as strings: '5' < '6'; as numbers 51 > 6.
    const tmsg_t *n51 = &s_msgs [0];
    assert_int_equal (s_eval ("sql", "n < '6'", n51), TT);
    assert_int_equal (s_eval ("sql", "n > 6", n51), TT);
    //  big integers compare exactly
    const tmsg_t big = { "", { "n", "9007199254740993", NULL } };
    assert_int_equal (s_eval ("sql", "n > 9007199254740992", &big), TT);
}

//  SQL92 truth tables for AND, OR, NOT with T, F and U operands.
static void
test_truth_tables (void **state)
{
    //  a = 1 is TRUE, a = 2 is FALSE, x = 1 is UNKNOWN (x missing)
    const char *lit [3] = { "a = 1", "a = 2", "x = 1" };
    const int val [3] = { TT, FF, UU };
    const tmsg_t m = { "", { "a", "1", NULL } };
    for (int i = 0; i < 3; i++) {
        char expr [64];
        snprintf (expr, sizeof expr, "NOT (%s)", lit [i]);
        int want = val [i] == UU ? UU : val [i] == TT ? FF : TT;
        assert_int_equal (s_eval ("sql", expr, &m), want);
        for (int j = 0; j < 3; j++) {
            int a = val [i], b = val [j];
            int and_want = (a == FF || b == FF) ? FF
                         : (a == UU || b == UU) ? UU : TT;
            int or_want = (a == TT || b == TT) ? TT
                        : (a == UU || b == UU) ? UU : FF;
            snprintf (expr, sizeof expr, "%s AND %s", lit [i], lit [j]);
            assert_int_equal (s_eval ("sql", expr, &m), and_want);
            snprintf (expr, sizeof expr, "%s OR %s", lit [i], lit [j]);
            assert_int_equal (s_eval ("sql", expr, &m), or_want);
        }
    }
    //  precedence: AND binds tighter than OR, NOT tighter than AND
    assert_int_equal (s_eval ("sql", "a = 1 OR a = 2 AND x = 1", &m), TT);
    assert_int_equal (s_eval ("sql", "(a = 1 OR a = 2) AND x = 1", &m), UU);
    assert_int_equal (s_eval ("sql", "NOT a = 2 AND a = 1", &m), TT);
}

//  Rejected expressions: position (1-based) and a word of the reason.
static void
test_errors (void **state)
{
    static const struct {
        const char *type;
        const char *expr;
        const char *starts;     //  the error begins with this
        const char *has;        //  and contains this
    } bad [] = {
        { "sql", "", "position 1:", "empty" },
        { "sql", "   ", "position 1:", "empty" },
        { "sql", "(n > 5", "position 7:", "expected ')'" },
        { "sql", "n > 5)", "position 6:", "')'" },
        { "sql", "n >", "position 4:", "after the operator" },
        { "sql", "n 5", "position 3:", "expected a comparison" },
        { "sql", "n", "position 2:", "end of expression" },
        { "sql", "n > 5 AND", "position 10:", "expected a property" },
        { "sql", "n = 'abc", "position 5:", "not closed" },
        { "sql", "n IN ()", "position 7:", "literal in the IN list" },
        { "sql", "n IN (1, m)", "position 10:", "literal in the IN list" },
        { "sql", "n IN (1 2)", "position 9:", "',' or ')'" },
        { "sql", "n IN 1", "position 6:", "'(' after IN" },
        { "sql", "n BETWEEN 1 OR 2", "position 13:", "AND in BETWEEN" },
        { "sql", "n NOT LIKE 'a'", "position 7:", "IN or BETWEEN" },
        { "sql", "n IS 5", "position 6:", "NULL after IS" },
        { "sql", "n > 5abc", "position 5:", "not a number" },
        { "sql", "n > 1.2.3", "position 5:", "not a number" },
        { "sql", "n # 5", "position 3:", "unexpected character '#'" },
        { "sql", "n < TRUE", "position 3:", "TRUE and FALSE" },
        { "sql", "n > 5 n < 6", "position 7:", "expected AND, OR" },
        { "sql", "AND", "position 1:", "expected a property" },
        { "tag", "TagA ||", "position 8:", "after '||'" },
        { "tag", "|| TagA", "position 1:", "expected a tag" },
        { "tag", "TagA | TagB", "position 6:", "'||'" },
        { "tag", "TagA TagB", "position 6:", "'||'" },
        { "tag", "A |||| B", "position 5:", "expected a tag" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char err [256] = "";
        zr_filter_t *f = zr_filter_new (bad [i].type, bad [i].expr,
                                        strlen (bad [i].expr), err,
                                        sizeof err);
        if (f)
            fail_msg ("'%s' compiled", bad [i].expr);
        if (strncmp (err, bad [i].starts, strlen (bad [i].starts))
            || !strstr (err, bad [i].has))
            fail_msg ("'%s': error '%s', want '%s ... %s'", bad [i].expr,
                      err, bad [i].starts, bad [i].has);
    }
    char err [128];
    assert_null (zr_filter_new ("regex", "a", 1, err, sizeof err));
    assert_non_null (strstr (err, "tag or sql"));
    //  an embedded NUL is an error, not the end
    assert_null (zr_filter_new ("sql", "n = 1\0x", 7, err, sizeof err));
    assert_non_null (strstr (err, "position 6:"));
    assert_null (zr_filter_new ("tag", "A\0B", 3, err, sizeof err));
    //  a tiny error buffer is not overrun
    char small [8];
    assert_null (zr_filter_new ("sql", "(((", 3, small, sizeof small));
    assert_true (strlen (small) < sizeof small);
}

static void
test_bounds (void **state)
{
    char err [256];
    //  nesting: 64 parentheses compile, 65 do not
    char expr [512];
    for (int depth = 64; depth <= 65; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            expr [n++] = '(';
        n += (size_t) sprintf (expr + n, "n > 5");
        for (int i = 0; i < depth; i++)
            expr [n++] = ')';
        zr_filter_t *f = zr_filter_new ("sql", expr, n, err, sizeof err);
        if (depth == 64) {
            assert_non_null (f);
            zr_filter_destroy (&f);
        }
        else {
            assert_null (f);
            assert_non_null (strstr (err, "position 65:"));
            assert_non_null (strstr (err, "nested more than 64"));
        }
    }
    //  NOT nests as well
    size_t n = 0;
    for (int i = 0; i < 65; i++)
        n += (size_t) sprintf (expr + n, "NOT ");
    n += (size_t) sprintf (expr + n, "n > 5");
    assert_null (zr_filter_new ("sql", expr, n, err, sizeof err));
    assert_non_null (strstr (err, "nested"));
    //  length: 4096 bytes compile, 4097 do not; a long OR chain is fine
    char *big = (char *) malloc (ZR_FILTER_EXPR_MAX + 2);
    size_t len = 0;
    while (len + 12 <= ZR_FILTER_EXPR_MAX)
        len += (size_t) sprintf (big + len, "%sn = 1", len ? " OR " : "");
    while (len < ZR_FILTER_EXPR_MAX)
        big [len++] = ' ';
    zr_filter_t *f = zr_filter_new ("sql", big, len, err, sizeof err);
    assert_non_null (f);
    const tmsg_t m = { "", { "n", "1", NULL } };
    assert_int_equal (zr_filter_eval (f, "", 0, s_prop, (void *) &m), TT);
    zr_filter_destroy (&f);
    big [len++] = ' ';
    assert_null (zr_filter_new ("sql", big, len, err, sizeof err));
    assert_non_null (strstr (err, "position 4097: expression longer"));
    assert_null (zr_filter_new ("tag", big, len, err, sizeof err));
    free (big);
}

//  The broker's path: tags and props read from a stored meta map.
static void
test_meta (void **state)
{
    zr_enc_t *enc = zr_enc_new ();
    zr_enc_map (enc, 3);
    zr_enc_kstr (enc, "id", "x");
    zr_enc_kstr (enc, "tags", "TagA");
    zr_enc_str (enc, "props");
    zr_enc_map (enc, 2);
    zr_enc_kstr (enc, "n", "51");
    zr_enc_kstr (enc, "color", "red");
    char err [128];
    zr_filter_t *f = zr_filter_new ("sql", "n > 50 AND TAGS = 'TagA'", 24,
                                    err, sizeof err);
    assert_non_null (f);
    assert_true (zr_filter_match_meta (f, zr_enc_data (enc),
                                       zr_enc_size (enc)));
    zr_filter_destroy (&f);
    f = zr_filter_new ("sql", "NOT (m > 5)", 11, err, sizeof err);
    assert_false (zr_filter_match_meta (f, zr_enc_data (enc),
                                        zr_enc_size (enc)));
    //  garbage meta never matches, even for an always-true expression
    zr_filter_destroy (&f);
    f = zr_filter_new ("sql", "TRUE", 4, err, sizeof err);
    assert_false (zr_filter_match_meta (f, "\xc1", 1));
    zr_filter_destroy (&f);
    f = zr_filter_new ("tag", "TagB || TagA", 12, err, sizeof err);
    assert_true (zr_filter_match_meta (f, zr_enc_data (enc),
                                       zr_enc_size (enc)));
    assert_false (zr_filter_all (f));
    zr_filter_destroy (&f);
    f = zr_filter_new ("tag", "*", 1, err, sizeof err);
    assert_true (zr_filter_all (f));
    zr_filter_destroy (&f);
    zr_enc_destroy (&enc);
}

static void
test_cache (void **state)
{
    zr_filter_cache_t *c = zr_filter_cache_new (4);
    char err [128];
    const zr_filter_t *a = zr_filter_cache_get (c, "sql", "n > 1", 5, err,
                                                sizeof err);
    assert_non_null (a);
    assert_ptr_equal (zr_filter_cache_get (c, "sql", "n > 1", 5, err,
                                           sizeof err), a);
    assert_int_equal (zr_filter_cache_hits (c), 1);
    //  the same text as a tag expression is another filter
    const zr_filter_t *t = zr_filter_cache_get (c, "tag", "n>1", 3, err,
                                                sizeof err);
    assert_non_null (t);
    assert_ptr_not_equal (t, a);
    //  errors are reported every time and not cached
    assert_null (zr_filter_cache_get (c, "sql", "n >", 3, err, sizeof err));
    assert_non_null (strstr (err, "position 4:"));
    //  fill past the bound: still correct, never more than 4 kept
    for (int i = 0; i < 20; i++) {
        char expr [32];
        int n = snprintf (expr, sizeof expr, "n = %d", i);
        const zr_filter_t *f = zr_filter_cache_get (c, "sql", expr,
                                                    (size_t) n, err,
                                                    sizeof err);
        assert_non_null (f);
        const tmsg_t m = { "", { "n", "7", NULL } };
        assert_int_equal (zr_filter_eval (f, "", 0, s_prop, (void *) &m),
                          i == 7 ? TT : FF);
    }
    assert_int_equal (zr_filter_cache_compiled (c), 22);
    zr_filter_cache_destroy (&c);
    assert_null (c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_table),
        cmocka_unit_test (test_unknown),
        cmocka_unit_test (test_truth_tables),
        cmocka_unit_test (test_errors),
        cmocka_unit_test (test_bounds),
        cmocka_unit_test (test_meta),
        cmocka_unit_test (test_cache),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
