/*  tests/unit/test_registry.c - the nameserver's registry without
    sockets: registration, refresh, expiry and unregistration on a clock
    the test controls, route assembly, cluster listing order, and refusal
    of bad input (docs/protocol.md section 9).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "nameserver/registry.h"

typedef struct {
    zr_registry_t *reg;
    zr_enc_t *enc;
    zr_hdr_t *hdr;          //  last decoded request or answer
    char reason [512];
} fixture_t;

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->reg = zr_registry_new ("DefaultCluster");
    assert_non_null (f->reg);
    f->enc = zr_enc_new ();
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_hdr_destroy (&f->hdr);
    zr_enc_destroy (&f->enc);
    zr_registry_destroy (&f->reg);
    assert_null (f->reg);
    free (f);
    return 0;
}

//  Decodes f->enc into f->hdr and returns its root.
static const zr_obj_t *
s_decode (fixture_t *f)
{
    zr_hdr_destroy (&f->hdr);
    const char *err = NULL;
    f->hdr = zr_hdr_decode (zr_enc_data (f->enc), zr_enc_size (f->enc),
                            &err);
    if (!f->hdr)
        fail_msg ("encoded value does not decode: %s", err);
    return zr_hdr_root (f->hdr);
}

//  Encodes a REGISTER map. endpoints: comma-separated; topics:
//  "name:queues,..." ("" for none). role NULL: not sent.
static const zr_obj_t *
s_request (fixture_t *f, const char *cluster, const char *group,
           int64_t broker_id, const char *role, int64_t epoch,
           const char *endpoints, const char *topics)
{
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 6 + (role ? 1 : 0));
    zr_enc_kstr (f->enc, "cluster", cluster);
    zr_enc_kstr (f->enc, "group", group);
    zr_enc_kint (f->enc, "broker_id", broker_id);
    if (role)
        zr_enc_kstr (f->enc, "role", role);
    zr_enc_kint (f->enc, "epoch", epoch);
    zlist_t *eps = zlist_new ();
    char *ecopy = strdup (endpoints);
    char *save = NULL;
    for (char *e = strtok_r (ecopy, ",", &save); e;
         e = strtok_r (NULL, ",", &save))
        zlist_append (eps, e);
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, zlist_size (eps));
    for (char *e = (char *) zlist_first (eps); e;
         e = (char *) zlist_next (eps))
        zr_enc_str (f->enc, e);
    zlist_destroy (&eps);
    free (ecopy);
    zlist_t *tops = zlist_new ();
    char *tcopy = strdup (topics);
    for (char *t = strtok_r (tcopy, ",", &save); t;
         t = strtok_r (NULL, ",", &save))
        zlist_append (tops, t);
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, zlist_size (tops));
    for (char *t = (char *) zlist_first (tops); t;
         t = (char *) zlist_next (tops)) {
        char *colon = strchr (t, ':');
        assert_non_null (colon);
        *colon = 0;
        zr_enc_map (f->enc, 2);
        zr_enc_kstr (f->enc, "topic", t);
        zr_enc_kint (f->enc, "queues", atoi (colon + 1));
    }
    zlist_destroy (&tops);
    free (tcopy);
    return s_decode (f);
}

static zr_status_t
s_register (fixture_t *f, const char *group, int64_t broker_id,
            int64_t epoch, const char *endpoints, const char *topics,
            int64_t now)
{
    const zr_obj_t *req = s_request (f, "DefaultCluster", group, broker_id,
                                     NULL, epoch, endpoints, topics);
    return zr_registry_register (f->reg, req, now, f->reason,
                                 sizeof f->reason);
}

static void
s_register_ok (fixture_t *f, const char *group, int64_t broker_id,
               int64_t epoch, const char *endpoints, const char *topics,
               int64_t now)
{
    zr_status_t status = s_register (f, group, broker_id, epoch, endpoints,
                                     topics, now);
    if (status != ZR_OK)
        fail_msg ("register %s/%" PRId64 ": %s: %s", group, broker_id,
                  zr_status_str (status), f->reason);
}

//  GET_ROUTE groups array for topic, decoded; NULL when no group.
static const zr_obj_t *
s_route (fixture_t *f, const char *topic, int64_t now, size_t *groups)
{
    zr_enc_reset (f->enc);
    *groups = zr_registry_route (f->reg, topic, now, f->enc);
    if (*groups == 0) {
        assert_int_equal (zr_enc_size (f->enc), 0);
        return NULL;
    }
    const zr_obj_t *array = s_decode (f);
    assert_true (zr_obj_is_array (array));
    assert_int_equal (zr_obj_size (array), *groups);
    return array;
}

static const zr_obj_t *
s_cluster (fixture_t *f, int64_t now)
{
    zr_enc_reset (f->enc);
    size_t count = zr_registry_cluster_encode (f->reg, now, f->enc);
    const zr_obj_t *array = s_decode (f);
    assert_true (zr_obj_is_array (array));
    assert_int_equal (zr_obj_size (array), count);
    return array;
}

static void
s_expect_str (const zr_obj_t *map, const char *key, const char *expected)
{
    char buf [300];
    if (zr_field_strbuf (map, key, buf, sizeof buf) != ZR_FIELD_OK)
        fail_msg ("no string '%s'", key);
    assert_string_equal (buf, expected);
}

static int64_t
s_int (const zr_obj_t *map, const char *key)
{
    int64_t v = 0;
    if (zr_field_int (map, key, &v) != ZR_FIELD_OK)
        fail_msg ("no int '%s'", key);
    return v;
}

//  --------------------------------------------------------------------

static void
test_new_refuses_bad_cluster (void **state)
{
    assert_null (zr_registry_new (""));
    assert_null (zr_registry_new ("bad cluster"));
    assert_null (zr_registry_new (NULL));
    zr_registry_t *reg = zr_registry_new ("ok_Cluster-1");
    assert_non_null (reg);
    assert_string_equal (zr_registry_cluster (reg), "ok_Cluster-1");
    zr_registry_destroy (&reg);
    zr_registry_destroy (&reg);     //  idempotent
}

static void
test_add_refresh_expire (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_register_ok (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4", 1000);
    s_register_ok (f, "g2", 0, 1, "tcp://10.0.0.2:10911", "orders:8", 1000);
    assert_int_equal (zr_registry_size (f->reg), 2);

    //  g1 refreshes at 1500; at 1999 nothing has expired (expiry 1000).
    s_register_ok (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4", 1500);
    assert_int_equal (zr_registry_size (f->reg), 2);
    assert_int_equal (zr_registry_expire (f->reg, 1999, 1000), 0);
    const zr_obj_t *brokers = s_cluster (f, 1999);
    assert_int_equal (zr_obj_size (brokers), 2);
    assert_int_equal (s_int (zr_obj_at (brokers, 0), "age_ms"), 499);
    assert_int_equal (s_int (zr_obj_at (brokers, 1), "age_ms"), 999);

    //  At 2000, g2 is silent for exactly the expiry time: dropped.
    assert_int_equal (zr_registry_expire (f->reg, 2000, 1000), 1);
    assert_int_equal (zr_registry_size (f->reg), 1);
    size_t groups;
    const zr_obj_t *route = s_route (f, "orders", 2000, &groups);
    assert_int_equal (groups, 1);
    s_expect_str (zr_obj_at (route, 0), "group", "g1");

    assert_int_equal (zr_registry_expire (f->reg, 2499, 1000), 0);
    assert_int_equal (zr_registry_expire (f->reg, 2500, 1000), 1);
    assert_int_equal (zr_registry_size (f->reg), 0);
    assert_null (s_route (f, "orders", 2500, &groups));
    assert_int_equal (groups, 0);
}

static void
test_unregister (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_register_ok (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4", 0);
    s_register_ok (f, "g1", 1, 1, "tcp://10.0.0.9:10911", "orders:4", 0);

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 3);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g1");
    zr_enc_kint (f->enc, "broker_id", 1);
    const zr_obj_t *req = s_decode (f);
    assert_int_equal (zr_registry_unregister (f->reg, req, f->reason,
                                              sizeof f->reason), ZR_OK);
    assert_int_equal (zr_registry_size (f->reg), 1);
    //  Again: not registered is still OK.
    assert_int_equal (zr_registry_unregister (f->reg, req, f->reason,
                                              sizeof f->reason), ZR_OK);
    assert_int_equal (zr_registry_size (f->reg), 1);

    //  broker_id missing means 0.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g1");
    req = s_decode (f);
    assert_int_equal (zr_registry_unregister (f->reg, req, f->reason,
                                              sizeof f->reason), ZR_OK);
    assert_int_equal (zr_registry_size (f->reg), 0);

    //  Another cluster's UNREGISTER is refused, naming both.
    s_register_ok (f, "g1", 0, 1, "tcp://10.0.0.1:10911", "orders:4", 0);
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "cluster", "Other");
    zr_enc_kstr (f->enc, "group", "g1");
    req = s_decode (f);
    assert_int_equal (zr_registry_unregister (f->reg, req, f->reason,
                                              sizeof f->reason),
                      ZR_BAD_ARGUMENT);
    assert_non_null (strstr (f->reason, "Other"));
    assert_non_null (strstr (f->reason, "DefaultCluster"));
    assert_int_equal (zr_registry_size (f->reg), 1);

    //  No group: MALFORMED.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 1);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    req = s_decode (f);
    assert_int_equal (zr_registry_unregister (f->reg, req, f->reason,
                                              sizeof f->reason),
                      ZR_MALFORMED);
    assert_non_null (strstr (f->reason, "group"));
}

static void
test_reregister_replaces_topics (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_register_ok (f, "g1", 0, 1, "tcp://10.0.0.1:10911",
                   "orders:4,audit:2", 0);
    size_t groups;
    assert_non_null (s_route (f, "audit", 0, &groups));
    assert_int_equal (groups, 1);

    //  audit is gone, orders has 8 queues now, epoch 2, new endpoint.
    s_register_ok (f, "g1", 0, 2, "tcp://10.0.0.7:10911", "orders:8", 10);
    assert_null (s_route (f, "audit", 10, &groups));
    const zr_obj_t *route = s_route (f, "orders", 10, &groups);
    assert_int_equal (groups, 1);
    const zr_obj_t *g = zr_obj_at (route, 0);
    assert_int_equal (s_int (g, "queues"), 8);
    assert_int_equal (s_int (g, "epoch"), 2);
    s_expect_str (g, "master", "tcp://10.0.0.7:10911");
    assert_int_equal (zr_registry_size (f->reg), 1);

    //  A re-registration with no topics leaves the broker, no routes.
    s_register_ok (f, "g1", 0, 2, "tcp://10.0.0.7:10911", "", 20);
    assert_int_equal (zr_registry_size (f->reg), 1);
    assert_null (s_route (f, "orders", 20, &groups));
}

static void
test_route_assembly (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  Group b: master + two slaves (ids 2 and 1), registered out of
    //  order; group a: master only; group c: only a slave, serving
    //  "orders"; "audit" served by group b only.
    s_register_ok (f, "b", 2, 3, "tcp://10.0.0.22:10911", "orders:4", 100);
    s_register_ok (f, "b", 0, 3, "tcp://10.0.0.20:10911,ipc:///tmp/b",
                   "orders:4,audit:2", 150);
    s_register_ok (f, "b", 1, 3, "tcp://10.0.0.21:10911", "orders:4", 120);
    s_register_ok (f, "a", 0, 1, "inproc://a", "orders:16", 200);
    s_register_ok (f, "c", 1, 5, "tcp://10.0.0.31:10911", "orders:2", 180);

    size_t groups;
    const zr_obj_t *route = s_route (f, "orders", 250, &groups);
    assert_int_equal (groups, 3);
    const zr_obj_t *a = zr_obj_at (route, 0);
    const zr_obj_t *b = zr_obj_at (route, 1);
    const zr_obj_t *c = zr_obj_at (route, 2);
    s_expect_str (a, "group", "a");
    s_expect_str (a, "master", "inproc://a");
    assert_int_equal (s_int (a, "queues"), 16);
    assert_int_equal (s_int (a, "epoch"), 1);
    assert_int_equal (s_int (a, "age_ms"), 50);
    assert_int_equal (zr_obj_size (zr_obj_get (a, "slaves")), 0);

    s_expect_str (b, "group", "b");
    s_expect_str (b, "master", "tcp://10.0.0.20:10911");
    assert_int_equal (s_int (b, "queues"), 4);
    assert_int_equal (s_int (b, "epoch"), 3);
    assert_int_equal (s_int (b, "age_ms"), 100);
    const zr_obj_t *slaves = zr_obj_get (b, "slaves");
    assert_true (zr_obj_is_array (slaves));
    assert_int_equal (zr_obj_size (slaves), 2);
    const char *s;
    size_t len;
    assert_int_equal (zr_obj_str (zr_obj_at (slaves, 0), &s, &len), 0);
    assert_true (len == 21 && memcmp (s, "tcp://10.0.0.21:10911", 21) == 0);
    assert_int_equal (zr_obj_str (zr_obj_at (slaves, 1), &s, &len), 0);
    assert_true (len == 21 && memcmp (s, "tcp://10.0.0.22:10911", 21) == 0);

    //  Group c has no master: master is nil, its slave stands in.
    s_expect_str (c, "group", "c");
    assert_true (zr_obj_is_nil (zr_obj_get (c, "master")));
    assert_int_equal (s_int (c, "queues"), 2);
    assert_int_equal (s_int (c, "epoch"), 5);
    assert_int_equal (s_int (c, "age_ms"), 70);
    assert_int_equal (zr_obj_size (zr_obj_get (c, "slaves")), 1);

    //  audit: group b only, no slaves (they do not serve it).
    route = s_route (f, "audit", 250, &groups);
    assert_int_equal (groups, 1);
    b = zr_obj_at (route, 0);
    s_expect_str (b, "group", "b");
    assert_int_equal (s_int (b, "queues"), 2);
    assert_int_equal (zr_obj_size (zr_obj_get (b, "slaves")), 0);

    //  Unknown topic: nothing.
    assert_null (s_route (f, "nothing", 250, &groups));
}

static void
test_cluster_order (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_register_ok (f, "zeta", 0, 1, "tcp://10.0.0.1:1", "t:1", 0);
    s_register_ok (f, "alpha", 10, 1, "tcp://10.0.0.2:1", "t:1", 0);
    s_register_ok (f, "alpha", 2, 1, "tcp://10.0.0.3:1", "t:1", 0);
    s_register_ok (f, "alpha", 0, 7, "tcp://10.0.0.4:1,tcp://10.0.1.4:1",
                   "t:1,u:3", 0);
    s_register_ok (f, "mid", 0, 1, "tcp://10.0.0.5:1", "", 0);

    const zr_obj_t *brokers = s_cluster (f, 42);
    assert_int_equal (zr_obj_size (brokers), 5);
    const char *groups [] = { "alpha", "alpha", "alpha", "mid", "zeta" };
    int64_t ids [] = { 0, 2, 10, 0, 0 };
    for (size_t i = 0; i < 5; i++) {
        const zr_obj_t *b = zr_obj_at (brokers, i);
        s_expect_str (b, "group", groups [i]);
        assert_int_equal (s_int (b, "broker_id"), ids [i]);
        s_expect_str (b, "role", ids [i] == 0 ? "master" : "slave");
        assert_int_equal (s_int (b, "age_ms"), 42);
    }
    const zr_obj_t *alpha = zr_obj_at (brokers, 0);
    assert_int_equal (s_int (alpha, "epoch"), 7);
    assert_int_equal (zr_obj_size (zr_obj_get (alpha, "endpoints")), 2);
    const zr_obj_t *topics = zr_obj_get (alpha, "topics");
    assert_int_equal (zr_obj_size (topics), 2);
    s_expect_str (zr_obj_at (topics, 1), "topic", "u");
    assert_int_equal (s_int (zr_obj_at (topics, 1), "queues"), 3);
    assert_int_equal (zr_obj_size (zr_obj_get (zr_obj_at (brokers, 3),
                                               "topics")), 0);
}

//  Registers a request that must be refused with status, the reason
//  mentioning part; the registry must be left as it was.
static void
s_refused (fixture_t *f, const zr_obj_t *req, zr_status_t status,
           const char *part)
{
    size_t before = zr_registry_size (f->reg);
    zr_status_t rc = zr_registry_register (f->reg, req, 0, f->reason,
                                           sizeof f->reason);
    if (rc != status)
        fail_msg ("status %s (%s), expected %s", zr_status_str (rc),
                  f->reason, zr_status_str (status));
    if (!strstr (f->reason, part))
        fail_msg ("reason '%s' does not mention '%s'", f->reason, part);
    assert_int_equal (zr_registry_size (f->reg), before);
}

static void
test_bad_input (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    const char *ep = "tcp://10.0.0.1:10911";
    //  A valid broker first: refusals must not disturb it.
    s_register_ok (f, "keep", 0, 1, ep, "orders:4", 0);

    s_refused (f, s_request (f, "Other", "g", 0, NULL, 1, ep, "t:1"),
               ZR_BAD_ARGUMENT, "'Other'");
    assert_non_null (strstr (f->reason, "DefaultCluster"));
    s_refused (f, s_request (f, "DefaultCluster", "bad name", 0, NULL, 1,
                             ep, "t:1"), ZR_BAD_ARGUMENT, "group");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1, ep,
                             "bad/topic:1"), ZR_BAD_ARGUMENT, "topic");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1, ep,
                             "t:0"), ZR_BAD_ARGUMENT, "queues");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1, ep,
                             "t:1025"), ZR_BAD_ARGUMENT, "queues");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1, ep,
                             "t:1,t:2"), ZR_BAD_ARGUMENT, "twice");
    s_refused (f, s_request (f, "DefaultCluster", "g", -1, NULL, 1, ep,
                             "t:1"), ZR_BAD_ARGUMENT, "broker_id");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, -5, ep,
                             "t:1"), ZR_BAD_ARGUMENT, "epoch");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, "slave", 1, ep,
                             "t:1"), ZR_BAD_ARGUMENT, "role");
    s_refused (f, s_request (f, "DefaultCluster", "g", 1, "master", 1, ep,
                             "t:1"), ZR_BAD_ARGUMENT, "role");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, "boss", 1, ep,
                             "t:1"), ZR_BAD_ARGUMENT, "role");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1,
                             "udp://10.0.0.1:1", "t:1"),
               ZR_BAD_ARGUMENT, "endpoints[0]");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1,
                             "tcp://10.0.0.1:1,tcp://", "t:1"),
               ZR_BAD_ARGUMENT, "endpoints[1]");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1,
                             "tcp://*:10911", "t:1"),
               ZR_BAD_ARGUMENT, "wildcard");
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1,
                             "tcp://0.0.0.0:10911", "t:1"),
               ZR_BAD_ARGUMENT, "wildcard");
    //  An endpoint of 256 bytes.
    char longep [300];
    memset (longep, 'x', sizeof longep);
    memcpy (longep, "tcp://", 6);
    longep [256] = 0;
    s_refused (f, s_request (f, "DefaultCluster", "g", 0, NULL, 1, longep,
                             "t:1"), ZR_BAD_ARGUMENT, "255");
    longep [255] = 0;       //  255 bytes is fine
    s_register_ok (f, "g255", 0, 1, longep, "t:1", 0);
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g255");
    assert_int_equal (zr_registry_unregister (f->reg, s_decode (f),
                                              f->reason, sizeof f->reason),
                      ZR_OK);

    //  Structure errors: MALFORMED.
    zr_enc_reset (f->enc);
    zr_enc_array (f->enc, 0);
    s_refused (f, s_decode (f), ZR_MALFORMED, "map");

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    s_refused (f, s_decode (f), ZR_MALFORMED, "endpoints");

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_kstr (f->enc, "endpoints", ep);         //  not an array
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 0);
    s_refused (f, s_decode (f), ZR_MALFORMED, "endpoints");

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 1);
    zr_enc_int (f->enc, 7);                        //  not a string
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 0);
    s_refused (f, s_decode (f), ZR_MALFORMED, "endpoints[0]");

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 0);                      //  empty
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 0);
    s_refused (f, s_decode (f), ZR_BAD_ARGUMENT, "empty");

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 1);
    zr_enc_str (f->enc, ep);
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 2);
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "topic", "ok");
    zr_enc_kint (f->enc, "queues", 1);
    zr_enc_str (f->enc, "no map");
    s_refused (f, s_decode (f), ZR_MALFORMED, "topics[1]");

    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kint (f->enc, "cluster", 5);            //  not a string
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 1);
    zr_enc_str (f->enc, ep);
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 0);
    s_refused (f, s_decode (f), ZR_MALFORMED, "cluster");

    //  Too many topics: 1025.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 4);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 1);
    zr_enc_str (f->enc, ep);
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, ZR_REGISTRY_TOPICS_MAX + 1);
    for (int i = 0; i <= ZR_REGISTRY_TOPICS_MAX; i++) {
        char name [16];
        snprintf (name, sizeof name, "t%d", i);
        zr_enc_map (f->enc, 2);
        zr_enc_kstr (f->enc, "topic", name);
        zr_enc_kint (f->enc, "queues", 1);
    }
    s_refused (f, s_decode (f), ZR_BAD_ARGUMENT, "1025 topics");

    //  Through all of it, the first broker is unchanged.
    size_t groups;
    const zr_obj_t *route = s_route (f, "orders", 5, &groups);
    assert_int_equal (groups, 1);
    s_expect_str (zr_obj_at (route, 0), "group", "keep");
    assert_int_equal (zr_registry_size (f->reg), 1);
}

static void
test_role_and_nil_defaults (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  Optional fields sent as nil mean "not given": broker_id 0,
    //  epoch 1.
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 7);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_str (f->enc, "broker_id");
    zr_enc_nil (f->enc);
    zr_enc_str (f->enc, "epoch");
    zr_enc_nil (f->enc);
    zr_enc_kint (f->enc, "heartbeat_ms", 10000);
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 1);
    zr_enc_str (f->enc, "ipc:///tmp/g");
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 0);
    assert_int_equal (zr_registry_register (f->reg, s_decode (f), 0,
                                            f->reason, sizeof f->reason),
                      ZR_OK);
    const zr_obj_t *b = zr_obj_at (s_cluster (f, 0), 0);
    assert_int_equal (s_int (b, "broker_id"), 0);
    assert_int_equal (s_int (b, "epoch"), 1);
    s_expect_str (b, "role", "master");
    //  Role given consistently is accepted.
    s_request (f, "DefaultCluster", "g", 3, "slave", 1, "ipc:///tmp/s",
               "t:1");
    assert_int_equal (zr_registry_register (f->reg, zr_hdr_root (f->hdr),
                                            0, f->reason,
                                            sizeof f->reason), ZR_OK);
    assert_int_equal (zr_registry_size (f->reg), 2);
}

#define T(name) cmocka_unit_test_setup_teardown (name, s_setup, s_teardown)

//  Registers g/id (topic t) at epoch with role and field ha: the string
//  ha when ha_str, else the int 7.
static zr_status_t
s_register_ha (fixture_t *f, int64_t id, const char *role, int64_t epoch,
               const char *ha, bool ha_str, int64_t now)
{
    zr_enc_reset (f->enc);
    zr_enc_map (f->enc, 8);
    zr_enc_kstr (f->enc, "cluster", "DefaultCluster");
    zr_enc_kstr (f->enc, "group", "g");
    zr_enc_kint (f->enc, "broker_id", id);
    zr_enc_kstr (f->enc, "role", role);
    zr_enc_kint (f->enc, "epoch", epoch);
    zr_enc_str (f->enc, "endpoints");
    zr_enc_array (f->enc, 1);
    zr_enc_str (f->enc, id ? "tcp://10.0.0.2:10911" : "tcp://10.0.0.1:10911");
    zr_enc_str (f->enc, "ha");
    if (ha_str)
        zr_enc_str (f->enc, ha);
    else
        zr_enc_int (f->enc, 7);
    zr_enc_str (f->enc, "topics");
    zr_enc_array (f->enc, 1);
    zr_enc_map (f->enc, 2);
    zr_enc_kstr (f->enc, "topic", "t");
    zr_enc_kint (f->enc, "queues", 2);
    return zr_registry_register (f->reg, s_decode (f), now, f->reason,
                                 sizeof f->reason);
}

//  The HA endpoint: stored, shown by GET_CLUSTER (ha) and GET_ROUTE
//  (master_ha of the master at the highest epoch); bad values refused.
static void
test_ha_endpoint (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_int_equal (s_register_ha (f, 0, "master", 1,
                                     "tcp://10.0.0.1:10912", true, 100),
                      ZR_OK);
    assert_int_equal (s_register_ha (f, 1, "slave", 1, "", true, 100),
                      ZR_OK);
    const zr_obj_t *brokers = s_cluster (f, 100);
    s_expect_str (zr_obj_at (brokers, 0), "ha", "tcp://10.0.0.1:10912");
    s_expect_str (zr_obj_at (brokers, 1), "ha", "");
    size_t groups;
    const zr_obj_t *route = s_route (f, "t", 100, &groups);
    assert_int_equal (groups, 1);
    s_expect_str (zr_obj_at (route, 0), "master_ha", "tcp://10.0.0.1:10912");
    //  Broker 1 becomes master of epoch 2: the route names its HA.
    assert_int_equal (s_register_ha (f, 1, "master", 2,
                                     "tcp://10.0.0.2:10912", true, 200),
                      ZR_OK);
    route = s_route (f, "t", 200, &groups);
    s_expect_str (zr_obj_at (route, 0), "master_ha", "tcp://10.0.0.2:10912");
    //  Refused, and the record kept: wildcard, bad scheme, not a string.
    assert_int_equal (s_register_ha (f, 1, "master", 2, "tcp://*:10912",
                                     true, 300), ZR_BAD_ARGUMENT);
    assert_non_null (strstr (f->reason, "'ha'"));
    assert_int_equal (s_register_ha (f, 1, "master", 2, "udp://x:1", true,
                                     300), ZR_BAD_ARGUMENT);
    assert_int_equal (s_register_ha (f, 1, "master", 2, NULL, false, 300),
                      ZR_MALFORMED);
    brokers = s_cluster (f, 300);
    s_expect_str (zr_obj_at (brokers, 1), "ha", "tcp://10.0.0.2:10912");
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test (test_new_refuses_bad_cluster),
        T (test_add_refresh_expire),
        T (test_unregister),
        T (test_reregister_replaces_topics),
        T (test_route_assembly),
        T (test_cluster_order),
        T (test_bad_input),
        T (test_role_and_nil_defaults),
        T (test_ha_endpoint),
    };
    return cmocka_run_group_tests_name ("registry", tests, NULL, NULL);
}
