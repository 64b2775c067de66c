/*  tests/testutil.h - helpers shared by the cmocka tests: a temp dir per
    test, and starting a broker actor on a chosen endpoint.
*/
#ifndef ZR_TESTUTIL_H_INCLUDED
#define ZR_TESTUTIL_H_INCLUDED

#include <zrocket.h>
#include "transport/codec.h"

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

//  A raw client: a DEALER speaking the msgpack protocol by hand, for
//  tests that check the wire (docs/protocol.md) rather than the client
//  library. zrt_raw_begin starts a request header (v, rid, cmd and
//  fields more entries, which the caller encodes into raw->enc);
//  zrt_raw_call sends it (plus one body when body is not NULL) and
//  waits up to timeout ms for the reply with that rid, failing the test
//  when none comes.
typedef struct {
    zsock_t *dealer;
    zr_enc_t *enc;
    int64_t rid;
} zrt_raw_t;

typedef struct {
    zmsg_t *msg;            //  body frames (the header popped)
    zframe_t *head;
    zr_hdr_t *hdr;
    const zr_obj_t *h;      //  the header map
    char status [32];
    char reason [512];      //  "" when none
} zrt_reply_t;

zrt_raw_t *zrt_raw_new (const char *endpoint);
void zrt_raw_destroy (zrt_raw_t **self_p);
int64_t zrt_raw_begin (zrt_raw_t *self, const char *cmd, size_t fields);
zrt_reply_t *zrt_raw_call (zrt_raw_t *self, const char *body, int timeout);

//  Receives one reply on sock within timeout ms, or NULL.
zrt_reply_t *zrt_reply_recv (zsock_t *sock, int timeout);
void zrt_reply_destroy (zrt_reply_t **self_p);

//  Fails the test unless r has status (and reason contains part, when
//  part is not NULL). _free also destroys r.
void zrt_expect (zrt_reply_t *r, const char *status, const char *part);
void zrt_expect_free (zrt_reply_t *r, const char *status, const char *part);

//  An int field of map; fails the test when missing.
int64_t zrt_int (const zr_obj_t *map, const char *key);

//  Broker STATS through the actor pipe (the JSON the broker gives;
//  caller frees), an int field of it (the first "key": found, or -1),
//  a string field copied into buf ("" when absent), and a bounded status
//  poll (every 20 ms, up to ms) until key reaches at least min.
char *zrt_stats (zactor_t *broker);
int64_t zrt_stat_int (zactor_t *broker, const char *key);
void zrt_json_str (const char *json, const char *key, char *buf,
                   size_t size);
int64_t zrt_wait_stat (zactor_t *broker, const char *key, int64_t min,
                       int ms);

//  Starts a broker (zrt_broker_start on tcp://127.0.0.1:*) and reads its
//  replication HA endpoint into ha; fails the test when it has none.
zactor_t *zrt_master_start (const char *dir, const char *settings,
                            char **ep, char *ha, size_t ha_size);

#endif
