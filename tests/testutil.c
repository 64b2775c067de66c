/*  tests/testutil.c - helpers shared by the cmocka tests. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"

char *
zrt_tempdir (const char *prefix)
{
    const char *base = getenv ("TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *path = zsys_sprintf ("%s/zr-%s-XXXXXX", base, prefix);
    assert_non_null (path);
    assert_non_null (mkdtemp (path));
    return path;
}

void
zrt_rmrf (const char *path)
{
    if (!path)
        return;
    char *cmd = zsys_sprintf ("rm -rf '%s'", path);
    int rc = system (cmd);
    (void) rc;
    zstr_free (&cmd);
}

zactor_t *
zrt_broker_start (const char *dir, const char *endpoint, const char *extra,
                  char **endpoint_out)
{
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "broker/data", dir);
    zconfig_put (cfg, "broker/bind", endpoint);
    //  Tests name their nameservers; none unless extra says so.
    zconfig_put (cfg, "broker/nameserver", "none");
    if (extra) {
        char *copy = strdup (extra);
        char *save = NULL;
        for (char *kv = strtok_r (copy, ";", &save); kv;
             kv = strtok_r (NULL, ";", &save)) {
            char *eq = strchr (kv, '=');
            assert_non_null (eq);
            *eq = 0;
            char *key = zsys_sprintf ("broker/%s", kv);
            zconfig_put (cfg, key, eq + 1);
            zstr_free (&key);
        }
        free (copy);
    }
    char *err = NULL;
    zactor_t *broker = zr_broker_new (cfg, &err);
    if (!broker)
        fail_msg ("broker did not start: %s", err ? err : "?");
    zconfig_destroy (&cfg);
    if (endpoint_out)
        *endpoint_out = zr_broker_endpoint (broker);
    return broker;
}
