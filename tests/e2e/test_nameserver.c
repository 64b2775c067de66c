/*  tests/e2e/test_nameserver.c - the nameserver actor spoken to raw
    (docs/protocol.md section 9): DEALER sockets send PING, REGISTER (as
    fake brokers), UNREGISTER, GET_ROUTE and GET_CLUSTER; garbage gets an
    answer and the nameserver keeps serving; another cluster's broker is
    refused; a broker that stops registering expires; zr_route_lookup
    against it, with the errors that name what is missing.

    The suite runs twice: over inproc:// and over tcp://127.0.0.1:*.
    Beacons stay off (they run only in network namespaces).

    The expiry test waits on the clock (bounded, 3x the expiry):
    ctest: RUN_SERIAL
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "transport/codec.h"

#define RECV_TIMEOUT 5000
#define EXPIRY_SHORT 300

static bool s_tcp = false;      //  transport of the running group
static int s_seq = 0;

typedef struct {
    zactor_t *ns;
    char *endpoint;
    zsock_t *dealer;
    zr_enc_t *enc;
    int64_t rid;
} fixture_t;

typedef struct {
    zmsg_t *msg;
    zframe_t *head;
    zr_hdr_t *hdr;
    const zr_obj_t *h;
    int64_t rid;
    char status [32];
    char reason [512];
} reply_t;

//  --------------------------------------------------------------------
//  Nameserver and sockets

static zsock_t *
s_dealer (const char *endpoint)
{
    zsock_t *sock = zsock_new_dealer (endpoint);
    assert_non_null (sock);
    zsock_set_linger (sock, 0);
    zsock_set_sndtimeo (sock, RECV_TIMEOUT);
    return sock;
}

static void
s_start (fixture_t *f, int expiry_ms)
{
    char *bind = s_tcp ? strdup ("tcp://127.0.0.1:*")
                       : zsys_sprintf ("inproc://ns-test-%d-%d",
                                       (int) getpid (), ++s_seq);
    char expiry [16];
    snprintf (expiry, sizeof expiry, "%d", expiry_ms);
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "nameserver/bind", bind);
    zconfig_put (cfg, "nameserver/expiry-ms", expiry);
    zconfig_put (cfg, "nameserver/beacon", "false");
    char *err = NULL;
    f->ns = zr_nameserver_new (cfg, &err);
    zconfig_destroy (&cfg);
    zstr_free (&bind);
    if (!f->ns)
        fail_msg ("nameserver did not start: %s", err ? err : "?");
    f->endpoint = zr_nameserver_endpoint (f->ns);
    assert_non_null (f->endpoint);
    if (s_tcp)
        assert_non_null (strstr (f->endpoint, "tcp://127.0.0.1:"));
    f->dealer = s_dealer (f->endpoint);
}

static void
s_stop (fixture_t *f)
{
    zsock_destroy (&f->dealer);
    zactor_destroy (&f->ns);
    zstr_free (&f->endpoint);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->enc = zr_enc_new ();
    s_start (f, 30000);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_stop (f);
    zr_enc_destroy (&f->enc);
    free (f);
    return 0;
}

//  --------------------------------------------------------------------
//  Requests and replies

static int64_t
s_begin (fixture_t *f, const char *cmd, size_t fields)
{
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3 + fields);
    zr_enc_kint (f->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kint (f->enc, "rid", ++f->rid);
    zr_enc_kstr (f->enc, "cmd", cmd);
    return f->rid;
}

static void
s_send_bytes (zsock_t *sock, const void *data, size_t size, int nbodies)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, data, size);
    for (int i = 0; i < nbodies; i++)
        zmsg_addmem (msg, "body", 4);
    assert_int_equal (zmsg_send (&msg, sock), 0);
}

static void
s_reply_destroy (reply_t **self_p)
{
    if (*self_p) {
        zr_hdr_destroy (&(*self_p)->hdr);
        zframe_destroy (&(*self_p)->head);
        zmsg_destroy (&(*self_p)->msg);
        free (*self_p);
        *self_p = NULL;
    }
}

//  Waits up to timeout ms for one reply and checks its envelope. NULL on
//  timeout.
static reply_t *
s_recv (zsock_t *sock, int timeout)
{
    zmq_pollitem_t items [] = { { zsock_resolve (sock), 0, ZMQ_POLLIN, 0 } };
    int rc = zmq_poll (items, 1, timeout);
    if (rc <= 0 || !(items [0].revents & ZMQ_POLLIN))
        return NULL;
    zmsg_t *msg = zmsg_recv (sock);
    assert_non_null (msg);
    reply_t *r = (reply_t *) zmalloc (sizeof (reply_t));
    r->msg = msg;
    if (zsock_type (sock) == ZMQ_DEALER && zmsg_size (msg) == 0)
        fail_msg ("empty reply");
    r->head = zmsg_pop (msg);
    assert_non_null (r->head);
    assert_int_equal (zmsg_size (msg), 0);      //  no bodies, ever
    const char *err = NULL;
    r->hdr = zr_hdr_decode (zframe_data (r->head), zframe_size (r->head),
                            &err);
    if (!r->hdr)
        fail_msg ("reply header does not decode: %s", err);
    r->h = zr_hdr_root (r->hdr);
    assert_true (zr_obj_is_map (r->h));
    int64_t v = 0;
    assert_int_equal (zr_field_int (r->h, "v", &v), ZR_FIELD_OK);
    assert_true (v == 1);
    char type [16];
    assert_int_equal (zr_field_strbuf (r->h, "type", type, sizeof type),
                      ZR_FIELD_OK);
    assert_string_equal (type, "reply");
    assert_int_equal (zr_field_int (r->h, "rid", &r->rid), ZR_FIELD_OK);
    assert_int_equal (zr_field_strbuf (r->h, "status", r->status,
                                       sizeof r->status), ZR_FIELD_OK);
    zr_status_t status = zr_status_parse (r->status);
    if (status == ZR_UNKNOWN_STATUS)
        fail_msg ("unknown status '%s'", r->status);
    if (zr_field_strbuf (r->h, "reason", r->reason, sizeof r->reason)
        != ZR_FIELD_OK)
        r->reason [0] = 0;
    if (status != ZR_OK && strlen (r->reason) == 0)
        fail_msg ("status %s without a reason", r->status);
    return r;
}

//  Sends the encoded header (plus nbodies body frames) and waits for the
//  reply, which must carry rid.
static reply_t *
s_call_n (fixture_t *f, int64_t rid, int nbodies)
{
    s_send_bytes (f->dealer, zr_enc_data (f->enc), zr_enc_size (f->enc),
                  nbodies);
    reply_t *r = s_recv (f->dealer, RECV_TIMEOUT);
    if (!r)
        fail_msg ("no reply to rid %" PRId64 " within %d ms", rid,
                  RECV_TIMEOUT);
    if (r->rid != rid)
        fail_msg ("reply rid %" PRId64 ", expected %" PRId64 " (%s: %s)",
                  r->rid, rid, r->status, r->reason);
    return r;
}

static reply_t *
s_call (fixture_t *f, int64_t rid)
{
    return s_call_n (f, rid, 0);
}

static void
s_expect (reply_t *r, const char *status, const char *part)
{
    assert_non_null (r);
    if (strcmp (r->status, status) != 0)
        fail_msg ("status %s (%s), expected %s", r->status, r->reason,
                  status);
    if (part && !strstr (r->reason, part))
        fail_msg ("%s reason '%s' does not mention '%s'", status, r->reason,
                  part);
}

static void
s_expect_free (reply_t *r, const char *status, const char *part)
{
    s_expect (r, status, part);
    s_reply_destroy (&r);
}

static int64_t
s_int (const zr_obj_t *map, const char *key)
{
    int64_t v = 0;
    if (zr_field_int (map, key, &v) != ZR_FIELD_OK)
        fail_msg ("no int '%s'", key);
    return v;
}

static void
s_expect_str (const zr_obj_t *map, const char *key, const char *expected)
{
    char buf [300];
    if (zr_field_strbuf (map, key, buf, sizeof buf) != ZR_FIELD_OK)
        fail_msg ("no string '%s'", key);
    assert_string_equal (buf, expected);
}

//  Encodes a REGISTER of a fake broker. endpoints comma-separated, topics
//  "name:queues,..." or "".
static int64_t
s_begin_register (fixture_t *f, const char *cluster, const char *group,
                  int64_t broker_id, int64_t epoch, const char *endpoints,
                  const char *topics)
{
    int64_t rid = s_begin (f, "REGISTER", 7);
    zr_enc_kstr (f->enc, "cluster", cluster);
    zr_enc_kstr (f->enc, "group", group);
    zr_enc_kint (f->enc, "broker_id", broker_id);
    zr_enc_kstr (f->enc, "role", broker_id ? "slave" : "master");
    zr_enc_kint (f->enc, "epoch", epoch);
    zlist_t *items = zlist_new ();
    char *copy = strdup (endpoints);
    char *save = NULL;
    for (char *e = strtok_r (copy, ",", &save); e;
         e = strtok_r (NULL, ",", &save))
        zlist_append (items, e);
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, zlist_size (items));
    for (char *e = (char *) zlist_first (items); e;
         e = (char *) zlist_next (items))
        zr_enc_str (f->enc, e);
    zlist_destroy (&items);
    free (copy);
    items = zlist_new ();
    copy = strdup (topics);
    for (char *t = strtok_r (copy, ",", &save); t;
         t = strtok_r (NULL, ",", &save))
        zlist_append (items, t);
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, zlist_size (items));
    for (char *t = (char *) zlist_first (items); t;
         t = (char *) zlist_next (items)) {
        char *colon = strchr (t, ':');
        assert_non_null (colon);
        *colon = 0;
        zr_enc_map (f->enc, 2);
        zr_enc_kstr (f->enc, "topic", t);
        zr_enc_kint (f->enc, "queues", atoi (colon + 1));
    }
    zlist_destroy (&items);
    free (copy);
    return rid;
}

static void
s_register (fixture_t *f, const char *group, int64_t broker_id,
            int64_t epoch, const char *endpoints, const char *topics)
{
    int64_t rid = s_begin_register (f, "DefaultCluster", group, broker_id,
                                    epoch, endpoints, topics);
    reply_t *r = s_call (f, rid);
    s_expect (r, "OK", NULL);
    assert_true (s_int (r->h, "expiry_ms") > 0);
    s_reply_destroy (&r);
}

static void
s_unregister (fixture_t *f, const char *group, int64_t broker_id)
{
    int64_t rid = s_begin (f, "UNREGISTER", 3);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", group);
    zr_enc_kint (f->enc, "broker_id", broker_id);
    s_expect_free (s_call (f, rid), "OK", NULL);
}

static reply_t *
s_get_route (fixture_t *f, const char *topic)
{
    int64_t rid = s_begin (f, "GET_ROUTE", 1);
    zr_enc_kstr (f->enc, "topic", topic);
    return s_call (f, rid);
}

//  GET_CLUSTER reply (OK checked); its brokers array in *brokers.
static reply_t *
s_get_cluster (fixture_t *f, const zr_obj_t **brokers)
{
    reply_t *r = s_call (f, s_begin (f, "GET_CLUSTER", 0));
    s_expect (r, "OK", NULL);
    s_expect_str (r->h, "cluster", "DefaultCluster");
    *brokers = zr_obj_get (r->h, "brokers");
    assert_true (zr_obj_is_array (*brokers));
    return r;
}

//  A tcp endpoint on 127.0.0.1 where nothing will ever answer: a plain
//  listening socket that never accepts, so the port stays ours (a port
//  bound and closed again is soon taken by another test's wildcard bind)
//  and a ZeroMQ peer connecting there never completes its handshake.
static char *
s_silent_endpoint (int *fd)
{
    *fd = socket (AF_INET, SOCK_STREAM, 0);
    assert_true (*fd >= 0);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    addr.sin_port = 0;
    assert_int_equal (bind (*fd, (struct sockaddr *) &addr, sizeof addr), 0);
    assert_int_equal (listen (*fd, 1), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (*fd, (struct sockaddr *) &addr, &len), 0);
    return zsys_sprintf ("tcp://127.0.0.1:%d", ntohs (addr.sin_port));
}

//  --------------------------------------------------------------------
//  Tests

static void
test_ping (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    reply_t *r = s_call (f, s_begin (f, "PING", 0));
    s_expect (r, "OK", NULL);
    char id [64];
    assert_int_equal (zr_field_strbuf (r->h, "nameserver", id, sizeof id),
                      ZR_FIELD_OK);
    assert_int_equal (strlen (id), 32);
    for (size_t i = 0; i < 32; i++)
        assert_true (isxdigit ((unsigned char) id [i]));
    s_expect_str (r->h, "cluster", "DefaultCluster");
    s_expect_str (r->h, "version", "0.1.0");
    int64_t t = s_int (r->h, "time");
    assert_true (llabs (t - zclock_time ()) < 60000);
    s_reply_destroy (&r);

    //  A REQ socket works too (the nameserver puts the delimiter back).
    zsock_t *req = zsock_new_req (f->endpoint);
    assert_non_null (req);
    zsock_set_linger (req, 0);
    int64_t rid = s_begin (f, "PING", 0);
    s_send_bytes (req, zr_enc_data (f->enc), zr_enc_size (f->enc), 0);
    r = s_recv (req, RECV_TIMEOUT);
    assert_non_null (r);
    assert_true (r->rid == rid);
    s_expect_free (r, "OK", NULL);
    zsock_destroy (&req);
}

static void
test_register_route_cluster (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_register (f, "g1", 0, 1, "tcp://10.0.0.1:10911",
                "orders:4,audit:2");
    s_register (f, "g2", 0, 3, "tcp://10.0.0.2:10911,ipc:///tmp/g2",
                "orders:8");
    s_register (f, "g2", 1, 3, "tcp://10.0.0.3:10911", "orders:8");

    reply_t *r = s_get_route (f, "orders");
    s_expect (r, "OK", NULL);
    s_expect_str (r->h, "topic", "orders");
    const zr_obj_t *groups = zr_obj_get (r->h, "groups");
    assert_true (zr_obj_is_array (groups));
    assert_int_equal (zr_obj_size (groups), 2);
    const zr_obj_t *g1 = zr_obj_at (groups, 0);
    const zr_obj_t *g2 = zr_obj_at (groups, 1);
    s_expect_str (g1, "group", "g1");
    s_expect_str (g1, "master", "tcp://10.0.0.1:10911");
    assert_int_equal (s_int (g1, "queues"), 4);
    assert_int_equal (s_int (g1, "epoch"), 1);
    assert_true (s_int (g1, "age_ms") >= 0);
    assert_int_equal (zr_obj_size (zr_obj_get (g1, "slaves")), 0);
    s_expect_str (g2, "group", "g2");
    s_expect_str (g2, "master", "tcp://10.0.0.2:10911");
    assert_int_equal (s_int (g2, "queues"), 8);
    assert_int_equal (s_int (g2, "epoch"), 3);
    const zr_obj_t *slaves = zr_obj_get (g2, "slaves");
    assert_int_equal (zr_obj_size (slaves), 1);
    const char *s;
    size_t len;
    assert_int_equal (zr_obj_str (zr_obj_at (slaves, 0), &s, &len), 0);
    assert_true (len == 20 && memcmp (s, "tcp://10.0.0.3:10911", 20) == 0);
    s_reply_destroy (&r);

    //  audit: g1 only. nothing: TOPIC_NOT_FOUND naming it.
    r = s_get_route (f, "audit");
    s_expect (r, "OK", NULL);
    assert_int_equal (zr_obj_size (zr_obj_get (r->h, "groups")), 1);
    s_reply_destroy (&r);
    s_expect_free (s_get_route (f, "nothing"), "TOPIC_NOT_FOUND",
                   "'nothing'");
    s_expect_free (s_get_route (f, "bad topic"), "BAD_ARGUMENT", "topic");

    const zr_obj_t *brokers;
    r = s_get_cluster (f, &brokers);
    assert_int_equal (zr_obj_size (brokers), 3);
    const char *names [] = { "g1", "g2", "g2" };
    int64_t ids [] = { 0, 0, 1 };
    for (size_t i = 0; i < 3; i++) {
        const zr_obj_t *b = zr_obj_at (brokers, i);
        s_expect_str (b, "group", names [i]);
        assert_int_equal (s_int (b, "broker_id"), ids [i]);
        s_expect_str (b, "role", ids [i] ? "slave" : "master");
        assert_true (s_int (b, "age_ms") >= 0);
    }
    const zr_obj_t *b2 = zr_obj_at (brokers, 1);
    assert_int_equal (zr_obj_size (zr_obj_get (b2, "endpoints")), 2);
    assert_int_equal (s_int (b2, "epoch"), 3);
    const zr_obj_t *topics = zr_obj_get (zr_obj_at (brokers, 0), "topics");
    assert_int_equal (zr_obj_size (topics), 2);
    s_expect_str (zr_obj_at (topics, 1), "topic", "audit");
    assert_int_equal (s_int (zr_obj_at (topics, 1), "queues"), 2);
    s_reply_destroy (&r);

    //  g1 re-registers without audit: audit leaves the routes at once.
    s_register (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4");
    s_expect_free (s_get_route (f, "audit"), "TOPIC_NOT_FOUND", "audit");

    //  g2's master unregisters: g2 stays with its slave and no master.
    s_unregister (f, "g2", 0);
    s_unregister (f, "g2", 0);              //  again: still OK
    r = s_get_route (f, "orders");
    s_expect (r, "OK", NULL);
    groups = zr_obj_get (r->h, "groups");
    assert_int_equal (zr_obj_size (groups), 2);
    g2 = zr_obj_at (groups, 1);
    s_expect_str (g2, "group", "g2");
    assert_true (zr_obj_is_nil (zr_obj_get (g2, "master")));
    assert_int_equal (zr_obj_size (zr_obj_get (g2, "slaves")), 1);
    s_reply_destroy (&r);
    r = s_get_cluster (f, &brokers);
    assert_int_equal (zr_obj_size (brokers), 2);
    s_reply_destroy (&r);
}

static void
test_other_cluster_refused (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    int64_t rid = s_begin_register (f, "OtherCluster", "g1", 0, 1,
                                    "tcp://10.0.0.1:10911", "orders:4");
    reply_t *r = s_call (f, rid);
    s_expect (r, "BAD_ARGUMENT", "OtherCluster");
    s_expect (r, "BAD_ARGUMENT", "DefaultCluster");
    s_reply_destroy (&r);
    const zr_obj_t *brokers;
    r = s_get_cluster (f, &brokers);
    assert_int_equal (zr_obj_size (brokers), 0);
    s_reply_destroy (&r);
    s_expect_free (s_get_route (f, "orders"), "TOPIC_NOT_FOUND", "orders");
}

static void
test_garbage (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  Not msgpack, empty frame, a msgpack array, truncated map.
    const char *junk [] = { "\xc1", "", "\x91\x01", "\x83\xa1v" };
    size_t sizes [] = { 1, 0, 2, 4 };
    for (size_t i = 0; i < 4; i++) {
        s_send_bytes (f->dealer, junk [i], sizes [i], 0);
        reply_t *r = s_recv (f->dealer, RECV_TIMEOUT);
        assert_non_null (r);
        assert_true (r->rid == 0);
        s_expect_free (r, "MALFORMED", NULL);
    }
    //  A map with no rid.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kint (f->enc, "v", 1);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_send_bytes (f->dealer, zr_enc_data (f->enc), zr_enc_size (f->enc), 0);
    s_expect_free (s_recv (f->dealer, RECV_TIMEOUT), "MALFORMED", "rid");
    //  Wrong version, unknown command, a broker command, body frames.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kint (f->enc, "v", 2);
    zr_enc_kint (f->enc, "rid", ++f->rid);
    zr_enc_kstr (f->enc, "cmd", "PING");
    s_expect_free (s_call (f, f->rid), "BAD_VERSION", "1");
    s_expect_free (s_call (f, s_begin (f, "FROB", 0)), "UNKNOWN_COMMAND",
                   "FROB");
    s_expect_free (s_call (f, s_begin (f, "SEND", 0)), "UNKNOWN_COMMAND",
                   "SEND");
    s_expect_free (s_call_n (f, s_begin (f, "PING", 0), 1), "MALFORMED",
                   "body");
    //  Too many frames.
    s_expect_free (s_call_n (f, s_begin (f, "PING", 0), 20), "MALFORMED",
                   "frames");
    //  REGISTER with fields missing or of the wrong type.
    int64_t rid = s_begin (f, "REGISTER", 1);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    s_expect_free (s_call (f, rid), "MALFORMED", "group");
    rid = s_begin (f, "REGISTER", 4);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g1");
    zr_enc_kint (f->enc, "endpoints", 5);
    zr_enc_kint (f->enc, "topics", 5);
    s_expect_free (s_call (f, rid), "MALFORMED", "endpoints");
    rid = s_begin_register (f, "DefaultCluster", "g1", 0, 1,
                            "udp://10.0.0.1:1", "orders:4");
    s_expect_free (s_call (f, rid), "BAD_ARGUMENT", "endpoints[0]");
    rid = s_begin (f, "GET_ROUTE", 0);
    s_expect_free (s_call (f, rid), "MALFORMED", "topic");
    rid = s_begin (f, "GET_ROUTE", 1);
    zr_enc_kint (f->enc, "topic", 3);
    s_expect_free (s_call (f, rid), "MALFORMED", "topic");
    //  An oversize header (over 64 KiB).
    size_t big = 70 * 1024;
    char *blob = (char *) zmalloc (big);
    memset (blob, 'x', big);
    s_send_bytes (f->dealer, blob, big, 0);
    free (blob);
    s_expect_free (s_recv (f->dealer, RECV_TIMEOUT), "MALFORMED", "65536");

    //  Still serving, registry untouched.
    s_expect_free (s_call (f, s_begin (f, "PING", 0)), "OK", NULL);
    const zr_obj_t *brokers;
    reply_t *r = s_get_cluster (f, &brokers);
    assert_int_equal (zr_obj_size (brokers), 0);
    s_reply_destroy (&r);
    s_register (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4");
    s_expect_free (s_get_route (f, "orders"), "OK", NULL);
}

//  True when GET_CLUSTER lists group.
static bool
s_listed (fixture_t *f, const char *group)
{
    const zr_obj_t *brokers;
    reply_t *r = s_get_cluster (f, &brokers);
    bool found = false;
    for (size_t i = 0; i < zr_obj_size (brokers); i++) {
        char name [ZR_NAME_MAX + 1];
        if (zr_field_strbuf (zr_obj_at (brokers, i), "group", name,
                             sizeof name) == ZR_FIELD_OK
        &&  streq (name, group))
            found = true;
    }
    s_reply_destroy (&r);
    return found;
}

static void
test_expiry (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_stop (f);
    s_start (f, EXPIRY_SHORT);
    int64_t sent = zclock_mono ();
    s_register (f, "quiet", 0, 1, "tcp://10.0.0.1:10911", "orders:4");
    //  Right after its registration it is there.
    assert_true (s_listed (f, "quiet"));
    s_expect_free (s_get_route (f, "orders"), "OK", NULL);

    //  It stops registering: gone within 3x the expiry, never before
    //  the expiry.
    int64_t deadline = sent + 3 * EXPIRY_SHORT;
    bool gone = false;
    zpoller_t *idle = zpoller_new (NULL);
    assert_non_null (idle);
    while (!gone && zclock_mono () < deadline) {
        gone = !s_listed (f, "quiet");
        if (gone)
            break;
        zpoller_wait (idle, 50);        //  polling interval only
    }
    zpoller_destroy (&idle);
    int64_t seen_gone = zclock_mono ();
    if (!gone)
        fail_msg ("broker still listed %d ms after its registration "
                  "(expiry %d ms)", 3 * EXPIRY_SHORT, EXPIRY_SHORT);
    if (seen_gone - sent < EXPIRY_SHORT)
        fail_msg ("broker dropped after %" PRId64 " ms, before the "
                  "expiry of %d ms", seen_gone - sent, EXPIRY_SHORT);
    s_expect_free (s_get_route (f, "orders"), "TOPIC_NOT_FOUND", "orders");

    //  It comes back with its next registration.
    s_register (f, "quiet", 0, 1, "tcp://10.0.0.1:10911", "orders:4");
    assert_true (s_listed (f, "quiet"));
}

static void
test_route_lookup (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_register (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4");
    s_register (f, "g2", 0, 1, "tcp://10.0.0.2:10911", "orders:2");
    s_register (f, "g3", 1, 1, "tcp://10.0.0.3:10911", "lonely:1");
    s_register (f, "g1", 1, 1, "tcp://10.0.0.11:10911", "orders:4");

    char *err = NULL;
    zr_route_t *route = zr_route_lookup (f->endpoint, "orders", 3000, &err);
    if (!route)
        fail_msg ("lookup failed: %s", err);
    assert_null (err);
    assert_int_equal (zr_route_groups (route), 2);
    assert_string_equal (zr_route_group (route, 0), "g1");
    assert_string_equal (zr_route_master (route, 0), "tcp://10.0.0.1:10911");
    assert_int_equal (zr_route_queues (route, 0), 4);
    assert_int_equal (zr_route_epoch (route, 0), 1);
    assert_int_equal (zr_route_slaves (route, 0), 1);
    assert_string_equal (zr_route_slave (route, 0, 0),
                         "tcp://10.0.0.11:10911");
    assert_null (zr_route_slave (route, 0, 1));
    assert_int_equal (zr_route_slaves (route, 1), 0);
    assert_string_equal (zr_route_group (route, 1), "g2");
    assert_int_equal (zr_route_queues (route, 1), 2);
    assert_null (zr_route_group (route, 2));
    zr_route_destroy (&route);
    assert_null (route);

    //  A dead nameserver first in the list: the live one still answers.
    int fd;
    char *dead = s_silent_endpoint (&fd);
    char *list = zsys_sprintf ("%s, %s", dead, f->endpoint);
    route = zr_route_lookup (list, "orders", 2000, &err);
    if (!route)
        fail_msg ("lookup through %s failed: %s", list, err);
    assert_int_equal (zr_route_groups (route), 2);
    zr_route_destroy (&route);

    //  Unknown topic.
    route = zr_route_lookup (f->endpoint, "nope", 3000, &err);
    assert_null (route);
    assert_non_null (err);
    char *expected = zsys_sprintf ("topic 'nope' is unknown to every "
                                   "nameserver (%s)", f->endpoint);
    assert_string_equal (err, expected);
    zstr_free (&expected);
    zstr_free (&err);

    //  A group with no master.
    route = zr_route_lookup (f->endpoint, "lonely", 3000, &err);
    assert_null (route);
    assert_string_equal (err, "no broker serving topic 'lonely' has a "
                              "master");
    zstr_free (&err);

    //  No nameserver answering (a port where nothing speaks ZeroMQ).
    int64_t start = zclock_mono ();
    route = zr_route_lookup (dead, "orders", 300, &err);
    int64_t took = zclock_mono () - start;
    assert_null (route);
    expected = zsys_sprintf ("no nameserver answered at %s within 300 ms",
                             dead);
    assert_string_equal (err, expected);
    assert_true (took >= 290 && took < 3000);
    zstr_free (&expected);
    zstr_free (&err);

    //  Bad input: invalid topic, empty list.
    route = zr_route_lookup (f->endpoint, "bad topic", 300, &err);
    assert_null (route);
    assert_non_null (strstr (err, "not a valid topic name"));
    zstr_free (&err);
    route = zr_route_lookup ("", "orders", 300, &err);
    assert_null (route);
    assert_non_null (strstr (err, "no nameserver"));
    zstr_free (&err);
    zstr_free (&list);
    zstr_free (&dead);
    close (fd);
}

//  --------------------------------------------------------------------

static int
s_group_inproc (void **state)
{
    s_tcp = false;
    return 0;
}

static int
s_group_tcp (void **state)
{
    s_tcp = true;
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        T (test_ping),
        T (test_register_route_cluster),
        T (test_other_cluster_refused),
        T (test_garbage),
        T (test_expiry),
        T (test_route_lookup),
    };
    int failed = cmocka_run_group_tests_name ("nameserver over inproc",
                                              tests, s_group_inproc, NULL);
    failed += cmocka_run_group_tests_name ("nameserver over tcp", tests,
                                           s_group_tcp, NULL);
    return failed;
}
