/*  tests/testutil.h - helpers shared by the cmocka tests: a temp dir per
    test, and starting a broker actor on a chosen endpoint.
*/
#ifndef ZR_TESTUTIL_H_INCLUDED
#define ZR_TESTUTIL_H_INCLUDED

#include <zrocket.h>

//  Makes a fresh directory under $TMPDIR (or /tmp) named after prefix;
//  caller frees the path. Aborts the test on failure.
char *zrt_tempdir (const char *prefix);

//  Removes a directory tree (rm -rf). NULL-safe.
void zrt_rmrf (const char *path);

//  Starts a broker with data in dir, bound to endpoint (e.g.
//  "inproc://t1" or "tcp://127.0.0.1:*"), plus extra "key=value"
//  broker settings separated by ';' (may be NULL). Fails the test when
//  the broker does not start. *endpoint_out (may be NULL) receives the
//  bound endpoint (caller frees).
zactor_t *zrt_broker_start (const char *dir, const char *endpoint,
                            const char *extra, char **endpoint_out);

#endif
