/*  tests/unit/test_beacon.c - beacon codec (docs/protocol.md section 10)
    with every malformed case, the discovery actor's command checking and
    a listener that hears nothing, and zr_discover_nameservers' local
    PING step against a fake nameserver on 127.0.0.1:9876.

    Nothing here publishes a beacon: unit tests run in the machine's own
    network namespace (tests/e2e/test_lan.sh does the broadcasting, in
    namespaces of its own). Listening sends nothing.

    ctest: RUN_SERIAL (binds 127.0.0.1:9876, the default nameserver port)
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "actors/discovery.h"
#include "transport/codec.h"

//  A valid beacon: cluster "DefaultCluster", port 9876.
static int
s_valid (uint8_t *buf)
{
    zr_beacon_t b;
    memset (&b, 0, sizeof b);
    b.role = ZR_BEACON_ROLE_NAMESERVER;
    b.port = 9876;
    for (int i = 0; i < ZR_BEACON_NODE_ID; i++)
        b.node_id [i] = (uint8_t) (i * 17 + 1);
    strcpy (b.cluster, "DefaultCluster");
    return zr_beacon_encode (&b, buf);
}

static void
test_round_trip (void **state)
{
    zr_beacon_t b, d;
    uint8_t buf [ZR_BEACON_MAX];
    const char *reason = "unset";

    int size = s_valid (buf);
    assert_int_equal (size, 25 + 14);
    assert_memory_equal (buf, "ZRKT", 4);
    assert_int_equal (buf [4], 1);
    assert_int_equal (buf [5], 1);
    assert_int_equal (buf [6], 9876 >> 8);
    assert_int_equal (buf [7], 9876 & 0xff);
    assert_int_equal (buf [24], 14);
    assert_int_equal (zr_beacon_decode (buf, size, &d, &reason), 0);
    assert_null (reason);
    assert_int_equal (d.port, 9876);
    assert_int_equal (d.role, ZR_BEACON_ROLE_NAMESERVER);
    assert_string_equal (d.cluster, "DefaultCluster");
    for (int i = 0; i < ZR_BEACON_NODE_ID; i++)
        assert_int_equal (d.node_id [i], (uint8_t) (i * 17 + 1));

    //  Shortest and longest cluster names, extreme port
    memset (&b, 0, sizeof b);
    b.role = ZR_BEACON_ROLE_NAMESERVER;
    b.port = 65535;
    memset (b.node_id, 0xff, ZR_BEACON_NODE_ID);
    strcpy (b.cluster, "x");
    size = zr_beacon_encode (&b, buf);
    assert_int_equal (size, 26);
    assert_int_equal (zr_beacon_decode (buf, size, &d, &reason), 0);
    assert_string_equal (d.cluster, "x");
    assert_int_equal (d.port, 65535);

    memset (b.cluster, 'c', 127);
    b.cluster [127] = 0;
    size = zr_beacon_encode (&b, buf);
    assert_int_equal (size, 25 + 127);
    assert_true (size <= ZR_BEACON_MAX);
    assert_int_equal (zr_beacon_decode (buf, size, &d, &reason), 0);
    assert_int_equal (strlen (d.cluster), 127);
    assert_memory_equal (d.cluster, b.cluster, 128);
}

static void
test_encode_refuses (void **state)
{
    zr_beacon_t b;
    uint8_t buf [ZR_BEACON_MAX];
    memset (&b, 0, sizeof b);
    b.role = ZR_BEACON_ROLE_NAMESERVER;
    b.port = 1;
    //  Cluster length 0
    assert_int_equal (zr_beacon_encode (&b, buf), -1);
    //  Cluster length 128 (fills the array, no NUL)
    memset (b.cluster, 'a', sizeof b.cluster);
    assert_int_equal (zr_beacon_encode (&b, buf), -1);
}

//  Decodes and checks it fails with the expected reason.
static void
s_bad (const uint8_t *data, size_t size, const char *expected)
{
    zr_beacon_t d;
    const char *reason = NULL;
    assert_int_equal (zr_beacon_decode (data, size, &d, &reason), -1);
    assert_non_null (reason);
    assert_string_equal (reason, expected);
}

static void
test_decode_malformed (void **state)
{
    uint8_t good [ZR_BEACON_MAX];
    uint8_t buf [300];
    int size = s_valid (good);
    assert_true (size > 0);

    //  Short: empty, NULL, header only, one byte missing
    s_bad (NULL, 0, "too short");
    s_bad (good, 0, "too short");
    s_bad (good, 24, "too short");
    s_bad (good, 25, "too short");
    s_bad (good, (size_t) size - 1,
           "cluster name length does not match the payload size");

    //  Long: over 255 bytes, whatever they say
    memset (buf, 'z', sizeof buf);
    memcpy (buf, good, (size_t) size);
    s_bad (buf, 256, "too long");
    s_bad (buf, sizeof buf, "too long");
    //  Trailing bytes after a good beacon
    s_bad (buf, (size_t) size + 1,
           "cluster name length does not match the payload size");

    //  Wrong tag, version, role
    memcpy (buf, good, (size_t) size);
    buf [0] = 'X';
    s_bad (buf, (size_t) size, "wrong tag");
    memcpy (buf, good, (size_t) size);
    buf [3] = 't';
    s_bad (buf, (size_t) size, "wrong tag");
    memcpy (buf, good, (size_t) size);
    buf [4] = 2;
    s_bad (buf, (size_t) size, "wrong version");
    buf [4] = 0;
    s_bad (buf, (size_t) size, "wrong version");
    memcpy (buf, good, (size_t) size);
    buf [5] = 2;
    s_bad (buf, (size_t) size, "wrong role");
    buf [5] = 0;
    s_bad (buf, (size_t) size, "wrong role");

    //  Cluster length 0 (with a byte after it), 128 (with 128 bytes),
    //  255 (with 230 bytes: the largest payload)
    memcpy (buf, good, (size_t) size);
    buf [24] = 0;
    s_bad (buf, 26, "bad cluster name length");
    memset (buf + 25, 'c', 200);
    buf [24] = 128;
    s_bad (buf, 25 + 128, "bad cluster name length");
    buf [24] = 255;
    s_bad (buf, 255, "bad cluster name length");

    //  Length byte and payload size disagree both ways
    memcpy (buf, good, (size_t) size);
    buf [24] = 13;
    s_bad (buf, (size_t) size,
           "cluster name length does not match the payload size");
    buf [24] = 15;
    s_bad (buf, (size_t) size,
           "cluster name length does not match the payload size");

    //  NUL inside the cluster name; port 0
    memcpy (buf, good, (size_t) size);
    buf [30] = 0;
    s_bad (buf, (size_t) size, "cluster name holds a NUL byte");
    memcpy (buf, good, (size_t) size);
    buf [6] = 0;
    buf [7] = 0;
    s_bad (buf, (size_t) size, "port 0");

    //  Every single-bit flip of the fixed header either decodes to the
    //  same cluster or fails with a reason; nothing else happens.
    for (int byte = 0; byte < size; byte++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy (buf, good, (size_t) size);
            buf [byte] ^= (uint8_t) (1 << bit);
            zr_beacon_t d;
            const char *reason = NULL;
            int rc = zr_beacon_decode (buf, (size_t) size, &d, &reason);
            if (rc == 0)
                assert_null (reason);
            else {
                assert_int_equal (rc, -1);
                assert_non_null (reason);
            }
        }

    //  A NULL reason pointer is allowed
    zr_beacon_t d;
    assert_int_equal (zr_beacon_decode (good, 3, &d, NULL), -1);
}

//  Sends a command (NULL-terminated strings) and returns the reply's
//  first two frames; fails the test when no reply in 3 s.
static void
s_command (zactor_t *actor, char **status, char **detail, ...)
{
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, detail);
    const char *s = va_arg (args, const char *);
    while (s) {
        zmsg_addstr (msg, s);
        s = va_arg (args, const char *);
    }
    va_end (args);
    assert_int_equal (zmsg_send (&msg, actor), 0);
    zsock_set_rcvtimeo (actor, 3000);
    *status = NULL;
    *detail = NULL;
    assert_int_equal (zsock_recv (actor, "ss", status, detail), 0);
    assert_non_null (*status);
}

static void
s_expect_error (zactor_t *actor, const char *expected, ...)
{
    //  Only commands that fail validation before zbeacon starts
    char *status, *detail;
    zmsg_t *msg = zmsg_new ();
    va_list args;
    va_start (args, expected);
    const char *s = va_arg (args, const char *);
    while (s) {
        zmsg_addstr (msg, s);
        s = va_arg (args, const char *);
    }
    va_end (args);
    assert_int_equal (zmsg_send (&msg, actor), 0);
    zsock_set_rcvtimeo (actor, 3000);
    status = detail = NULL;
    assert_int_equal (zsock_recv (actor, "ss", &status, &detail), 0);
    assert_non_null (status);
    assert_string_equal (status, "ERROR");
    assert_non_null (detail);
    assert_string_equal (detail, expected);
    zstr_free (&status);
    zstr_free (&detail);
}

static void
test_actor_refuses (void **state)
{
    zactor_t *actor = zactor_new (zr_discovery_actor, NULL);
    assert_non_null (actor);
    char long_name [200];
    memset (long_name, 'n', 128);
    long_name [128] = 0;

    s_expect_error (actor, "unknown command", "SHOUT", NULL);
    s_expect_error (actor, "LISTEN: missing arguments", "LISTEN", "c", NULL);
    s_expect_error (actor, "LISTEN: bad UDP port",
                    "LISTEN", "c", "0", "", NULL);
    s_expect_error (actor, "LISTEN: bad UDP port",
                    "LISTEN", "c", "65536", "", NULL);
    s_expect_error (actor, "LISTEN: bad UDP port",
                    "LISTEN", "c", "12x", "", NULL);
    s_expect_error (actor, "LISTEN: cluster name must be 1 to 127 bytes",
                    "LISTEN", "", "9876", "", NULL);
    s_expect_error (actor, "LISTEN: cluster name must be 1 to 127 bytes",
                    "LISTEN", long_name, "9876", "", NULL);
    //  PUBLISH checks (all fail before anything is sent)
    s_expect_error (actor, "PUBLISH: missing arguments",
                    "PUBLISH", "c", "9876", NULL);
    s_expect_error (actor, "PUBLISH: bad TCP port",
                    "PUBLISH", "c", "0", "500", "9876", "", NULL);
    s_expect_error (actor, "PUBLISH: bad interval",
                    "PUBLISH", "c", "9876", "-5", "9876", "", NULL);
    s_expect_error (actor, "PUBLISH: bad UDP port",
                    "PUBLISH", "c", "9876", "500", "99999", "", NULL);
    s_expect_error (actor, "PUBLISH: cluster name must be 1 to 127 bytes",
                    "PUBLISH", long_name, "9876", "500", "9876", "", NULL);
    s_expect_error (actor, "PUBLISH: node id must be 32 hex digits",
                    "PUBLISH", "c", "9876", "500", "9876", "", "abc", NULL);
    s_expect_error (actor, "PUBLISH: node id must be 32 hex digits",
                    "PUBLISH", "c", "9876", "500", "9876", "",
                    "0123456789abcdef0123456789abcdeg", NULL);

    char *status, *detail;
    s_command (actor, &status, &detail, "STATS", NULL);
    assert_string_equal (status, "OK");
    assert_string_equal (detail, "0");
    zstr_free (&status);
    zstr_free (&detail);
    zactor_destroy (&actor);
}

//  A UDP port nobody else uses, from our pid.
static char *
s_udp_port (void)
{
    return zsys_sprintf ("%d", 40000 + (int) (getpid () % 20000));
}

static void
test_listen_hears_nothing (void **state)
{
    zactor_t *actor = zactor_new (zr_discovery_actor, NULL);
    assert_non_null (actor);
    char *port = s_udp_port ();
    char *status, *detail;
    s_command (actor, &status, &detail,
               "LISTEN", "zr-unit-test-cluster", port, "", NULL);
    if (streq (status, "ERROR")) {
        //  A machine with no broadcast interface (only lo) says so
        assert_string_equal (detail,
                             "no broadcast-capable network interface");
        print_message ("listening impossible here: %s\n", detail);
    }
    else {
        assert_string_equal (status, "OK");
        assert_true (strlen (detail) > 0);      //  our address
        //  Listening twice is refused
        s_expect_error (actor, "discovery: already started",
                        "LISTEN", "zr-unit-test-cluster", port, "", NULL);
        zpoller_t *poller = zpoller_new (actor, NULL);
        assert_null (zpoller_wait (poller, 300));
        assert_true (zpoller_expired (poller));
        zpoller_destroy (&poller);
        zstr_free (&status);
        zstr_free (&detail);
        s_command (actor, &status, &detail, "STATS", NULL);
        assert_string_equal (status, "OK");
        assert_string_equal (detail, "0");
    }
    zstr_free (&status);
    zstr_free (&detail);
    zstr_free (&port);
    zactor_destroy (&actor);
}

//  Fake nameserver on 127.0.0.1:9876. After the handshake it says "OK"
//  or "FAIL" (port taken). Pipe command MODE x (answered by a signal):
//  answer PING as a broker (x = "broker") or as a nameserver of cluster x.
static void
s_fake_actor (zsock_t *pipe, void *args)
{
    char *mode = strdup ("broker");
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_linger (router, 0);
    zsock_signal (pipe, 0);
    if (zsock_bind (router, "tcp://127.0.0.1:9876") == -1) {
        zstr_send (pipe, "FAIL");
        zsock_destroy (&router);
        //  Wait for $TERM
        char *cmd = zstr_recv (pipe);
        zstr_free (&cmd);
        zstr_free (&mode);
        return;
    }
    zstr_send (pipe, "OK");
    zpoller_t *poller = zpoller_new (pipe, router, NULL);
    zr_enc_t *enc = zr_enc_new ();
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == pipe) {
            char *cmd = NULL, *arg = NULL;
            zsock_recv (pipe, "ss", &cmd, &arg);
            bool term = !cmd || streq (cmd, "$TERM");
            if (!term && arg) {
                zstr_free (&mode);
                mode = arg;
                arg = NULL;
                zsock_signal (pipe, 0);
            }
            zstr_free (&cmd);
            zstr_free (&arg);
            if (term)
                break;
            continue;
        }
        if (which != router)
            break;                      //  interrupted
        zmsg_t *msg = zmsg_recv (router);
        zframe_t *id = zmsg_pop (msg);
        zframe_t *header = zmsg_pop (msg);
        const char *err;
        zr_hdr_t *hdr = header
            ? zr_hdr_decode (zframe_data (header), zframe_size (header), &err)
            : NULL;
        int64_t rid = 0;
        if (hdr)
            zr_field_int (zr_hdr_root (hdr), "rid", &rid);
        zr_enc_reset (enc);
        zr_enc_map (enc, 6);
        zr_enc_kint (enc, "v", 1);
        zr_enc_kstr (enc, "type", "reply");
        zr_enc_kint (enc, "rid", rid);
        zr_enc_kstr (enc, "status", "OK");
        if (streq (mode, "broker")) {
            zr_enc_kstr (enc, "broker", "g1");
            zr_enc_kstr (enc, "version", "0.1.0");
        }
        else {
            zr_enc_kstr (enc, "nameserver",
                         "0123456789abcdef0123456789abcdef");
            zr_enc_kstr (enc, "cluster", mode);
        }
        zmsg_t *reply = zmsg_new ();
        zmsg_append (reply, &id);
        zframe_t *frame = zr_enc_frame (enc);
        zmsg_append (reply, &frame);
        zmsg_send (&reply, router);
        zr_hdr_destroy (&hdr);
        zframe_destroy (&header);
        zmsg_destroy (&msg);
    }
    zr_enc_destroy (&enc);
    zpoller_destroy (&poller);
    zsock_destroy (&router);
    zstr_free (&mode);
}

static void
s_fake_mode (zactor_t *fake, const char *mode)
{
    zstr_sendx (fake, "MODE", mode, NULL);
    assert_int_equal (zsock_wait (fake), 0);
}

static void
test_discover_local (void **state)
{
    char *port = s_udp_port ();
    setenv ("ZR_BEACON_PORT", port, 1);
    zstr_free (&port);
    unsetenv ("ZR_INTERFACE");

    //  Nothing on 9876 of our cluster, no beacons: NULL within the bound
    int64_t start = zclock_mono ();
    char *found = zr_discover_nameservers ("zr-unit-cluster", 300);
    assert_null (found);
    assert_true (zclock_mono () - start < 3000);

    zactor_t *fake = zactor_new (s_fake_actor, NULL);
    assert_non_null (fake);
    zsock_set_rcvtimeo (fake, 3000);
    char *bound = zstr_recv (fake);
    assert_non_null (bound);
    if (streq (bound, "FAIL")) {
        zstr_free (&bound);
        zactor_destroy (&fake);
        print_message ("SKIPPED: 127.0.0.1:9876 is in use\n");
        unsetenv ("ZR_BEACON_PORT");
        skip ();
    }
    zstr_free (&bound);

    //  A broker on 9876 is not a nameserver
    found = zr_discover_nameservers ("zr-unit-cluster", 300);
    assert_null (found);

    //  A nameserver of our cluster: found at once
    s_fake_mode (fake, "zr-unit-cluster");
    start = zclock_mono ();
    found = zr_discover_nameservers ("zr-unit-cluster", 5000);
    assert_non_null (found);
    assert_string_equal (found, "tcp://127.0.0.1:9876");
    assert_true (zclock_mono () - start < 1000);
    zstr_free (&found);

    //  Another cluster's nameserver is not ours
    found = zr_discover_nameservers ("zr-other-cluster", 300);
    assert_null (found);

    //  NULL cluster means DefaultCluster
    s_fake_mode (fake, "DefaultCluster");
    found = zr_discover_nameservers (NULL, 300);
    assert_non_null (found);
    assert_string_equal (found, "tcp://127.0.0.1:9876");
    zstr_free (&found);

    zactor_destroy (&fake);
    unsetenv ("ZR_BEACON_PORT");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_round_trip),
        cmocka_unit_test (test_encode_refuses),
        cmocka_unit_test (test_decode_malformed),
        cmocka_unit_test (test_actor_refuses),
        cmocka_unit_test (test_listen_hears_nothing),
        cmocka_unit_test (test_discover_local),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
