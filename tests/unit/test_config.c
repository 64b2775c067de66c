/*  tests/unit/test_config.c - zr_config_build: precedence flag > env >
    file > default, type checks with one clear message, config file
    errors.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "actors/config.h"

static const zr_setting_t s_table [] = {
    { "data", ZR_SETTING_STR, "./d", NULL, "data" },
    { "flush", ZR_SETTING_ENUM, "async", "async|sync", "flush" },
    { "auto-create", ZR_SETTING_BOOL, "false", NULL, "auto" },
    { "max-msg-size", ZR_SETTING_INT, "4M", NULL, "size" },
    { "group", ZR_SETTING_STR, NULL, NULL, "no default" },
    { NULL, 0, NULL, NULL, NULL }
};

typedef struct {
    char *dir;
    char *file;
} fixture_t;

static void
s_clear_env (void)
{
    unsetenv ("ZR_DATA");
    unsetenv ("ZR_FLUSH");
    unsetenv ("ZR_AUTO_CREATE");
    unsetenv ("ZR_MAX_MSG_SIZE");
    unsetenv ("ZR_GROUP");
    unsetenv ("ZR_CONFIG");
}

static int
setup (void **state)
{
    s_clear_env ();
    fixture_t *f = (fixture_t *) calloc (1, sizeof *f);
    f->dir = zrt_tempdir ("config");
    f->file = zsys_sprintf ("%s/zrocket.cfg", f->dir);
    *state = f;
    return 0;
}

static int
teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_clear_env ();
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    zstr_free (&f->file);
    free (f);
    return 0;
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
}

static zconfig_t *
s_build (int argc, char **argv, char *err)
{
    zconfig_t *cfg = NULL;
    int rc = zr_config_build (s_table, "broker", argc, argv, &cfg, err, 256);
    if (rc)
        assert_null (cfg);
    else
        assert_non_null (cfg);
    return cfg;
}

static void
test_defaults (void **state)
{
    char err [256] = "";
    zconfig_t *cfg = s_build (0, NULL, err);
    assert_non_null (cfg);
    assert_string_equal (zconfig_get (cfg, "broker/data", "?"), "./d");
    assert_string_equal (zconfig_get (cfg, "broker/flush", "?"), "async");
    assert_string_equal (zconfig_get (cfg, "broker/max-msg-size", "?"),
                         "4M");
    //  No default, nothing given: absent
    assert_null (zconfig_locate (cfg, "broker/group"));
    zconfig_destroy (&cfg);
}

static void
test_precedence (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_write (f->file, "broker\n"
                      "    data = file-data\n"
                      "    flush = sync\n"
                      "    max-msg-size = 1K\n"
                      "    group = file-group\n");
    setenv ("ZR_FLUSH", "async", 1);
    setenv ("ZR_MAX_MSG_SIZE", "2K", 1);
    setenv ("ZR_GROUP", "env-group", 1);
    char *argv [] = { "--config", f->file, "--max-msg-size", "3K",
                      "--group=flag-group" };
    char err [256] = "";
    zconfig_t *cfg = s_build (5, argv, err);
    assert_non_null (cfg);
    //  file only
    assert_string_equal (zconfig_get (cfg, "broker/data", "?"),
                         "file-data");
    //  env beats file
    assert_string_equal (zconfig_get (cfg, "broker/flush", "?"), "async");
    //  flag beats env and file
    assert_string_equal (zconfig_get (cfg, "broker/max-msg-size", "?"),
                         "3K");
    assert_string_equal (zconfig_get (cfg, "broker/group", "?"),
                         "flag-group");
    //  default where nobody says anything
    assert_string_equal (zconfig_get (cfg, "broker/auto-create", "?"),
                         "false");
    zconfig_destroy (&cfg);

    //  ZR_CONFIG names the file when --config is absent
    setenv ("ZR_CONFIG", f->file, 1);
    unsetenv ("ZR_FLUSH");
    cfg = s_build (0, NULL, err);
    assert_non_null (cfg);
    assert_string_equal (zconfig_get (cfg, "broker/flush", "?"), "sync");
    zconfig_destroy (&cfg);
}

static void
test_bool_flag_forms (void **state)
{
    char err [256] = "";
    char *argv1 [] = { "--auto-create" };
    zconfig_t *cfg = s_build (1, argv1, err);
    assert_non_null (cfg);
    assert_string_equal (zconfig_get (cfg, "broker/auto-create", "?"),
                         "true");
    zconfig_destroy (&cfg);
    char *argv2 [] = { "--auto-create", "no", "--flush", "sync" };
    cfg = s_build (4, argv2, err);
    assert_non_null (cfg);
    assert_string_equal (zconfig_get (cfg, "broker/auto-create", "?"), "no");
    assert_string_equal (zconfig_get (cfg, "broker/flush", "?"), "sync");
    zconfig_destroy (&cfg);
}

static void
test_bad_values (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char err [256];
    char *bad_int [] = { "--max-msg-size", "abc" };
    assert_null (s_build (2, bad_int, err));
    assert_non_null (strstr (err, "--max-msg-size"));
    assert_non_null (strstr (err, "'abc' is not a number"));

    char *bad_bool [] = { "--auto-create=maybe" };
    assert_null (s_build (1, bad_bool, err));
    assert_non_null (strstr (err, "--auto-create"));
    assert_non_null (strstr (err, "maybe"));

    char *bad_enum [] = { "--flush", "sometimes" };
    assert_null (s_build (2, bad_enum, err));
    assert_non_null (strstr (err, "async|sync"));

    char *unknown [] = { "--nope", "1" };
    assert_null (s_build (2, unknown, err));
    assert_non_null (strstr (err, "--nope"));

    char *missing_value [] = { "--data" };
    assert_null (s_build (1, missing_value, err));
    assert_non_null (strstr (err, "--data"));

    //  Bad values from the environment and the file name their origin
    setenv ("ZR_MAX_MSG_SIZE", "-5", 1);
    assert_null (s_build (0, NULL, err));
    assert_non_null (strstr (err, "ZR_MAX_MSG_SIZE"));
    unsetenv ("ZR_MAX_MSG_SIZE");

    s_write (f->file, "broker\n    flush = never\n");
    char *argv [] = { "--config", f->file };
    assert_null (s_build (2, argv, err));
    assert_non_null (strstr (err, f->file));
    assert_non_null (strstr (err, "broker/flush"));

    s_write (f->file, "broker\n    fluhs = sync\n");
    assert_null (s_build (2, argv, err));
    assert_non_null (strstr (err, "fluhs"));
}

static void
test_config_file_errors (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    char err [256];
    char *missing = zsys_sprintf ("%s/absent.cfg", f->dir);
    char *argv [] = { "--config", missing };
    assert_null (s_build (2, argv, err));
    assert_non_null (strstr (err, missing));
    zstr_free (&missing);

    //  Not ZPL: an unterminated quote
    s_write (f->file, "broker\n    data = \"oops\n");
    char *argv2 [] = { "--config", f->file };
    assert_null (s_build (2, argv2, err));
    assert_non_null (strstr (err, f->file));
}

static void
test_env_name (void **state)
{
    char buf [64];
    zr_config_env_name ("max-msg-size", buf, sizeof buf);
    assert_string_equal (buf, "ZR_MAX_MSG_SIZE");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown (test_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown (test_bool_flag_forms, setup,
                                         teardown),
        cmocka_unit_test_setup_teardown (test_bad_values, setup, teardown),
        cmocka_unit_test_setup_teardown (test_config_file_errors, setup,
                                         teardown),
        cmocka_unit_test (test_env_name),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
