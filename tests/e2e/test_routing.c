/*  tests/e2e/test_routing.c - the routed producer (zr_producer_new_routed)
    against a real nameserver actor and two real broker actors.

    The brokers run with nameserver=none and the test registers them with
    the nameserver itself (raw REGISTER, docs/protocol.md section 9), so
    the routes are exactly what each test wants and a stopped broker stays
    in the route (the harder case for the producer: it must find out by
    itself, by timeouts and SHUTTING_DOWN, and avoid the broker).

    Covered: spreading sync sends over both groups; a sharding key always
    lands on one (group, queue); a broker stopped mid-stream of sync sends
    and of async sends (every send still gets a stored status, and every
    stored message is found on the survivor or on the stopped broker
    restarted on its data); an unknown topic and no nameserver give the
    documented errors; a stale route (TOPIC_NOT_FOUND) is refreshed.

    ctest: RUN_SERIAL (broker failover waits on timeouts)
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "testutil.h"
#include "client/client.h"

#define TOPIC "routed"
#define QUEUES 4

typedef struct {
    char *dir [2];
    zactor_t *broker [2];
    char *endpoint [2];
    char *group [2];
    zactor_t *ns;
    char *ns_endpoint;
} fixture_t;

//  Asks a broker actor for its group name (caller frees).
static char *
s_broker_group (zactor_t *broker)
{
    zstr_send (broker, "GROUP");
    zsock_set_rcvtimeo (broker, 5000);
    char *ok = zstr_recv (broker);
    char *name = ok && zsock_rcvmore (broker) ? zstr_recv (broker) : NULL;
    assert_non_null (ok);
    assert_string_equal (ok, "OK");
    assert_non_null (name);
    zstr_free (&ok);
    return name;
}

static void
s_create_topic (const char *endpoint, const char *topic, int queues)
{
    zr_client_t *client = zr_client_new (endpoint);
    assert_non_null (client);
    zr_enc_t *enc = zr_client_begin (client, "TOPIC_CREATE", 2);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queues", queues);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, 5000);
    assert_non_null (reply);
    bool ok = zr_reply_status (reply) == ZR_OK;
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    assert_true (ok);
}

//  Registers (group, endpoint) with the nameserver as a master serving
//  topic with queues (raw REGISTER).
static void
s_register (const char *ns, const char *group, const char *endpoint,
            const char *topic, int queues)
{
    zr_client_t *client = zr_client_new (ns);
    assert_non_null (client);
    zr_enc_t *enc = zr_client_begin (client, "REGISTER", 7);
    zr_enc_kstr (enc, "cluster", "DefaultCluster");
    zr_enc_kstr (enc, "group", group);
    zr_enc_kint (enc, "broker_id", 0);
    zr_enc_kstr (enc, "role", "master");
    zr_enc_str (enc, "endpoints");
    zr_enc_array (enc, 1);
    zr_enc_str (enc, endpoint);
    zr_enc_kint (enc, "epoch", 1);
    zr_enc_str (enc, "topics");
    zr_enc_array (enc, 1);
    zr_enc_map (enc, 2);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queues", queues);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, 5000);
    assert_non_null (reply);
    bool ok = zr_reply_status (reply) == ZR_OK;
    if (!ok)
        print_error ("REGISTER: %s %s\n", zr_reply_status_str (reply),
                     zr_reply_reason (reply));
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    assert_true (ok);
}

//  Brokers on tcp://127.0.0.1:* (ipc false) or on ipc:// paths in their
//  data directories (ipc true). The failover tests use ipc: a stopped
//  broker's TCP port may be bound at once by another process's test (ports
//  are handed out from 49152 up), and the producer's DEALER would
//  reconnect to that stranger.
static int
s_setup_with (void **state, bool ipc)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "nameserver/bind", "tcp://127.0.0.1:*");
    //  Registrations are the test's own and are not renewed.
    zconfig_put (cfg, "nameserver/expiry-ms", "600000");
    char *err = NULL;
    f->ns = zr_nameserver_new (cfg, &err);
    zconfig_destroy (&cfg);
    if (!f->ns)
        fail_msg ("nameserver did not start: %s", err ? err : "?");
    f->ns_endpoint = zr_nameserver_endpoint (f->ns);
    assert_non_null (f->ns_endpoint);
    for (int i = 0; i < 2; i++) {
        f->dir [i] = zrt_tempdir ("routing");
        char extra [64];
        snprintf (extra, sizeof extra, "group=g%d", i + 1);
        char *bind = ipc ? zsys_sprintf ("ipc://%s/broker.sock", f->dir [i])
                         : strdup ("tcp://127.0.0.1:*");
        f->broker [i] = zrt_broker_start (f->dir [i], bind, extra,
                                          &f->endpoint [i]);
        zstr_free (&bind);
        assert_non_null (f->endpoint [i]);
        f->group [i] = s_broker_group (f->broker [i]);
        s_create_topic (f->endpoint [i], TOPIC, QUEUES);
        s_register (f->ns_endpoint, f->group [i], f->endpoint [i], TOPIC,
                    QUEUES);
    }
    *state = f;
    return 0;
}

static int
s_setup (void **state)
{
    return s_setup_with (state, false);
}

static int
s_setup_ipc (void **state)
{
    return s_setup_with (state, true);
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    for (int i = 0; i < 2; i++) {
        zactor_destroy (&f->broker [i]);
        zrt_rmrf (f->dir [i]);
        zstr_free (&f->dir [i]);
        zstr_free (&f->endpoint [i]);
        zstr_free (&f->group [i]);
    }
    zactor_destroy (&f->ns);
    zstr_free (&f->ns_endpoint);
    free (f);
    return 0;
}

//  Which broker (0 or 1) a store id names, by its group; -1 if neither.
static int
s_which (fixture_t *f, const char *store_id)
{
    for (int i = 0; i < 2; i++) {
        size_t len = strlen (f->group [i]);
        if (strncmp (store_id, f->group [i], len) == 0
            && store_id [len] == ':')
            return i;
    }
    return -1;
}

//  Adds the id of every message in every queue of TOPIC at endpoint to
//  ids (id -> "").
static void
s_collect (const char *endpoint, zhashx_t *ids)
{
    zr_consumer_t *consumer = zr_consumer_new (endpoint);
    assert_non_null (consumer);
    for (int q = 0; q < QUEUES; q++) {
        int64_t offset = 0;
        for (int round = 0; round < 1000; round++) {
            zr_pull_t *pull
                = zr_consumer_pull (consumer, TOPIC, q, offset, 512, 0);
            assert_non_null (pull);
            zr_status_t status = zr_pull_status (pull);
            if (status != ZR_OK) {
                zr_pull_destroy (&pull);
                assert_int_equal (status, ZR_NO_NEW_MSG);
                break;
            }
            for (size_t i = 0; i < zr_pull_count (pull); i++)
                zhashx_update (ids, zr_message_id (zr_pull_message (pull, i)),
                               (void *) "");
            offset = zr_pull_next (pull);
            zr_pull_destroy (&pull);
        }
    }
    zr_consumer_destroy (&consumer);
}

//  Checks that every id in sent is stored on the broker still running
//  (survivor) or on broker `stopped` restarted on its data.
static void
s_check_all_stored (fixture_t *f, int stopped, zhashx_t *sent)
{
    zhashx_t *found = zhashx_new ();
    s_collect (f->endpoint [1 - stopped], found);
    char *bind = zsys_sprintf ("ipc://%s/again.sock", f->dir [stopped]);
    zactor_t *again = zrt_broker_start (f->dir [stopped], bind, NULL, NULL);
    zstr_free (&bind);
    char *endpoint = zr_broker_endpoint (again);
    assert_non_null (endpoint);
    s_collect (endpoint, found);
    zactor_destroy (&again);
    zstr_free (&endpoint);
    size_t missing = 0;
    for (void *v = zhashx_first (sent); v; v = zhashx_next (sent))
        if (!zhashx_lookup (found, zhashx_cursor (sent)))
            missing++;
    zhashx_destroy (&found);
    assert_int_equal (missing, 0);
}

//  Starts a broker on dir that registers with ns as group (heartbeat 200
//  ms), bound to an ipc path in dir. NULL with *err (caller frees) when
//  it does not start (the caller cleans up before failing the test, so a
//  failed setup leaves no actor behind).
static zactor_t *
s_start_registered (const char *dir, const char *ns, const char *group,
                    char **err)
{
    zconfig_t *cfg = zconfig_new ("root", NULL);
    char *bind = zsys_sprintf ("ipc://%s/broker.sock", dir);
    zconfig_put (cfg, "broker/data", dir);
    zconfig_put (cfg, "broker/bind", bind);
    zconfig_put (cfg, "broker/nameserver", ns);
    zconfig_put (cfg, "broker/heartbeat-ms", "200");
    zconfig_put (cfg, "broker/group", group);
    zactor_t *broker = zr_broker_new (cfg, err);
    zconfig_destroy (&cfg);
    zstr_free (&bind);
    return broker;
}

//  Fixture where the brokers register themselves (heartbeat 200 ms,
//  nameserver expiry 1000 ms), on ipc paths.
static int
s_setup_registered (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    *state = f;
    zconfig_t *cfg = zconfig_new ("root", NULL);
    zconfig_put (cfg, "nameserver/bind", "tcp://127.0.0.1:*");
    zconfig_put (cfg, "nameserver/expiry-ms", "1000");
    char *err = NULL;
    f->ns = zr_nameserver_new (cfg, &err);
    zconfig_destroy (&cfg);
    if (!f->ns) {
        print_error ("nameserver did not start: %s\n", err ? err : "?");
        zstr_free (&err);
        return -1;
    }
    f->ns_endpoint = zr_nameserver_endpoint (f->ns);
    assert_non_null (f->ns_endpoint);
    for (int i = 0; i < 2; i++) {
        f->dir [i] = zrt_tempdir ("routing-reg");
        char group [8];
        snprintf (group, sizeof group, "reg%d", i + 1);
        f->broker [i]
            = s_start_registered (f->dir [i], f->ns_endpoint, group, &err);
        if (!f->broker [i]) {
            print_error ("broker did not start: %s\n", err ? err : "?");
            zstr_free (&err);
            s_teardown (state);
            return -1;
        }
        f->endpoint [i] = zr_broker_endpoint (f->broker [i]);
        assert_non_null (f->endpoint [i]);
        f->group [i] = s_broker_group (f->broker [i]);
        //  Answered once the nameserver has the route.
        s_create_topic (f->endpoint [i], TOPIC, QUEUES);
    }
    return 0;
}

static zr_producer_t *
s_producer (fixture_t *f)
{
    zr_producer_t *producer = zr_producer_new_routed (f->ns_endpoint);
    assert_non_null (producer);
    zr_producer_set_timeout (producer, 3000);
    zr_producer_set_retries (producer, 2);
    zr_producer_set_route_refresh (producer, 200);
    return producer;
}

//  --------------------------------------------------------------------

static void
test_spread_over_groups (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = s_producer (f);
    int count [2] = { 0, 0 };
    int queues [2][QUEUES];
    memset (queues, 0, sizeof queues);
    for (int i = 0; i < 1000; i++) {
        zr_message_t *msg = zr_message_new (TOPIC, "spread", 6);
        zr_send_result_t result;
        int rc = zr_producer_send (producer, msg, &result);
        zr_message_destroy (&msg);
        if (rc != 0)
            fail_msg ("send %d: %s %s", i, zr_status_str (result.status),
                      result.reason);
        int which = s_which (f, result.store_id);
        assert_true (which >= 0);
        assert_true (result.queue >= 0 && result.queue < QUEUES);
        count [which]++;
        queues [which][result.queue]++;
    }
    zr_producer_destroy (&producer);
    assert_true (count [0] > 300);
    assert_true (count [1] > 300);
    //  Every (group, queue) pair is used.
    for (int b = 0; b < 2; b++)
        for (int q = 0; q < QUEUES; q++)
            assert_true (queues [b][q] > 0);
}

static void
test_sharding_key_sticks (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = s_producer (f);
    const char *keys [] = { "order-1", "order-2", "order-3", "customer-42" };
    for (int k = 0; k < 4; k++) {
        int which = -1, queue = -1;
        for (int i = 0; i < 50; i++) {
            zr_message_t *msg = zr_message_new (TOPIC, "k", 1);
            zr_message_set_sharding_key (msg, keys [k]);
            zr_send_result_t result;
            int rc = zr_producer_send (producer, msg, &result);
            zr_message_destroy (&msg);
            assert_int_equal (rc, 0);
            int at = s_which (f, result.store_id);
            assert_true (at >= 0);
            if (i == 0) {
                which = at;
                queue = result.queue;
            }
            assert_int_equal (at, which);
            assert_int_equal (result.queue, queue);
        }
    }
    //  An explicit queue is queue N of the first group (name order).
    int first = strcmp (f->group [0], f->group [1]) < 0 ? 0 : 1;
    for (int i = 0; i < 10; i++) {
        zr_message_t *msg = zr_message_new (TOPIC, "q", 1);
        zr_message_set_queue (msg, 2);
        zr_send_result_t result;
        int rc = zr_producer_send (producer, msg, &result);
        zr_message_destroy (&msg);
        assert_int_equal (rc, 0);
        assert_int_equal (s_which (f, result.store_id), first);
        assert_int_equal (result.queue, 2);
    }
    zr_producer_destroy (&producer);
}

static void
test_sync_failover (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = s_producer (f);
    zhashx_t *sent = zhashx_new ();
    int on [2] = { 0, 0 };
    int after_stop [2] = { 0, 0 };
    //  A sharding key that lands on broker 0.
    char key [32] = "";
    for (int k = 0; k < 100 && !*key; k++) {
        char candidate [32];
        snprintf (candidate, sizeof candidate, "key-%d", k);
        zr_message_t *msg = zr_message_new (TOPIC, "probe", 5);
        zr_message_set_sharding_key (msg, candidate);
        zr_send_result_t result;
        assert_int_equal (zr_producer_send (producer, msg, &result), 0);
        zhashx_update (sent, result.msg_id, (void *) "");
        zr_message_destroy (&msg);
        if (s_which (f, result.store_id) == 0)
            strcpy (key, candidate);
    }
    assert_true (*key);
    for (int i = 0; i < 400; i++) {
        if (i == 200)
            zactor_destroy (&f->broker [0]);
        zr_message_t *msg = zr_message_new (TOPIC, "failover", 8);
        zr_send_result_t result;
        int rc = zr_producer_send (producer, msg, &result);
        if (rc != 0)
            fail_msg ("send %d: %s %s", i, zr_status_str (result.status),
                      result.reason);
        assert_string_equal (result.msg_id, zr_message_id (msg));
        zr_message_destroy (&msg);
        int which = s_which (f, result.store_id);
        assert_true (which >= 0);
        on [which]++;
        if (i >= 200)
            after_stop [which]++;
        zhashx_update (sent, result.msg_id, (void *) "");
    }
    //  The sharded send is never moved to the survivor: it fails, and
    //  the reason names the stopped broker.
    zr_producer_set_timeout (producer, 900);
    zr_message_t *msg = zr_message_new (TOPIC, "sharded", 7);
    zr_message_set_sharding_key (msg, key);
    zr_send_result_t result;
    assert_int_equal (zr_producer_send (producer, msg, &result), -1);
    zr_message_destroy (&msg);
    assert_true (result.status == ZR_TIMEOUT
                 || result.status == ZR_SHUTTING_DOWN);
    assert_non_null (strstr (result.reason, f->endpoint [0]));
    zr_producer_destroy (&producer);
    assert_true (on [0] > 0);
    assert_true (on [1] > 0);
    //  After the stop only the survivor stores (a send that the stopping
    //  broker still read may be answered by it).
    assert_true (after_stop [1] >= 199);
    assert_true (zhashx_size (sent) >= 400);
    s_check_all_stored (f, 0, sent);
    zhashx_destroy (&sent);
}

typedef struct {
    int callbacks;
    int stored;
    zhashx_t *ids;
    char last_error [300];
} s_async_t;

static void
s_on_result (const zr_send_result_t *result, void *arg)
{
    s_async_t *a = (s_async_t *) arg;
    a->callbacks++;
    if (zr_status_stored (result->status)) {
        a->stored++;
        zhashx_update (a->ids, result->msg_id, (void *) "");
    }
    else
        snprintf (a->last_error, sizeof a->last_error, "%s %s",
                  zr_status_str (result->status), result->reason);
}

static void
test_async_failover (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = s_producer (f);
    s_async_t a;
    memset (&a, 0, sizeof a);
    a.ids = zhashx_new ();
    for (int i = 0; i < 600; i++) {
        if (i == 300)
            zactor_destroy (&f->broker [1]);    //  sends still in flight
        zr_message_t *msg = zr_message_new (TOPIC, "async", 5);
        assert_int_equal (zr_producer_send_async (producer, msg,
                                                  s_on_result, &a),
                          0);
        zr_message_destroy (&msg);
    }
    int rc = zr_producer_flush (producer, 10000);
    zr_producer_destroy (&producer);
    if (a.stored != 600)
        print_error ("last error: %s\n", a.last_error);
    assert_int_equal (rc, 0);
    assert_int_equal (a.callbacks, 600);
    assert_int_equal (a.stored, 600);
    assert_int_equal (zhashx_size (a.ids), 600);
    s_check_all_stored (f, 1, a.ids);
    zhashx_destroy (&a.ids);
}

//  Sends n sync messages, counting where they land; fails on any error.
static void
s_send_some (fixture_t *f, zr_producer_t *producer, int n, int *on,
             zhashx_t *sent)
{
    for (int i = 0; i < n; i++) {
        zr_message_t *msg = zr_message_new (TOPIC, "reg", 3);
        zr_send_result_t result;
        int rc = zr_producer_send (producer, msg, &result);
        zr_message_destroy (&msg);
        if (rc != 0)
            fail_msg ("send %d: %s %s", i, zr_status_str (result.status),
                      result.reason);
        int which = s_which (f, result.store_id);
        assert_true (which >= 0);
        on [which]++;
        if (sent)
            zhashx_update (sent, result.msg_id, (void *) "");
    }
}

static void
test_registered_brokers (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = s_producer (f);
    zhashx_t *sent = zhashx_new ();
    int before [2] = { 0, 0 }, during [2] = { 0, 0 }, after [2] = { 0, 0 };
    s_send_some (f, producer, 200, before, sent);
    assert_true (before [0] > 60 && before [1] > 60);

    //  A clean stop unregisters: the producer follows the route.
    zactor_destroy (&f->broker [0]);
    s_send_some (f, producer, 200, during, sent);
    assert_true (during [1] >= 199);
    s_check_all_stored (f, 0, sent);

    //  Back on the same data and endpoint, registered again: the route
    //  shows it (fresh age), so the producer uses it again.
    char *err = NULL;
    f->broker [0] = s_start_registered (f->dir [0], f->ns_endpoint, "reg1",
                                        &err);
    if (!f->broker [0]) {
        zr_producer_destroy (&producer);
        zhashx_destroy (&sent);
        fail_msg ("broker did not restart: %s", err ? err : "?");
    }
    //  Bounded: up to 5 s of sends until one lands there again.
    int64_t end = zclock_mono () + 5000;
    while (after [0] == 0 && zclock_mono () < end)
        s_send_some (f, producer, 20, after, NULL);
    assert_true (after [0] > 0);
    zr_producer_destroy (&producer);
    zhashx_destroy (&sent);
}

static void
test_unknown_topic (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_producer_t *producer = s_producer (f);
    zr_message_t *msg = zr_message_new ("nosuchtopic", "x", 1);
    zr_send_result_t result;
    assert_int_equal (zr_producer_send (producer, msg, &result), -1);
    assert_int_equal (result.status, ZR_TOPIC_NOT_FOUND);
    assert_non_null (strstr (result.reason,
                             "topic 'nosuchtopic' is unknown to every "
                             "nameserver"));
    //  Async: the callback says the same.
    s_async_t a;
    memset (&a, 0, sizeof a);
    a.ids = zhashx_new ();
    assert_int_equal (zr_producer_send_async (producer, msg, s_on_result, &a),
                      0);
    assert_int_equal (zr_producer_flush (producer, 1000), 0);
    assert_int_equal (a.callbacks, 1);
    assert_int_equal (a.stored, 0);
    assert_non_null (strstr (a.last_error, "unknown to every nameserver"));
    zhashx_destroy (&a.ids);
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
}

static void
test_stale_route (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    //  The nameserver says group "ghost" at broker 0 serves "stale", but
    //  broker 0 has no such topic: TOPIC_NOT_FOUND, one refresh, one
    //  retry, then the error names the broker tried.
    s_register (f->ns_endpoint, "ghost", f->endpoint [0], "stale", 2);
    zr_producer_t *producer = s_producer (f);
    zr_message_t *msg = zr_message_new ("stale", "x", 1);
    zr_send_result_t result;
    assert_int_equal (zr_producer_send (producer, msg, &result), -1);
    assert_int_equal (result.status, ZR_TOPIC_NOT_FOUND);
    assert_non_null (strstr (result.reason, f->endpoint [0]));
    //  Once the topic is there, the same producer gets through.
    s_create_topic (f->endpoint [0], "stale", 2);
    assert_int_equal (zr_producer_send (producer, msg, &result), 0);
    assert_true (zr_status_stored (result.status));
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
}

static void
test_no_nameserver (void **state)
{
    //  Nothing listens there (an ipc path in a fresh directory: a TCP
    //  port could be taken by another process meanwhile).
    char *dir = zrt_tempdir ("routing-none");
    char *endpoint = zsys_sprintf ("ipc://%s/nobody.sock", dir);
    zr_producer_t *producer = zr_producer_new_routed (endpoint);
    assert_non_null (producer);
    zr_producer_set_timeout (producer, 500);
    zr_message_t *msg = zr_message_new (TOPIC, "x", 1);
    zr_send_result_t result;
    int64_t start = zclock_mono ();
    assert_int_equal (zr_producer_send (producer, msg, &result), -1);
    assert_true (zclock_mono () - start < 3000);
    assert_int_equal (result.status, ZR_TIMEOUT);
    assert_non_null (strstr (result.reason, "no nameserver reachable at"));
    assert_non_null (strstr (result.reason, endpoint));
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
    zstr_free (&endpoint);
    zrt_rmrf (dir);
    zstr_free (&dir);
}

int
main (void)
{
    zsys_init ();
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_spread_over_groups, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sharding_key_sticks, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_sync_failover, s_setup_ipc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_async_failover, s_setup_ipc,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_registered_brokers,
                                         s_setup_registered, s_teardown),
        cmocka_unit_test_setup_teardown (test_unknown_topic, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_stale_route, s_setup,
                                         s_teardown),
        cmocka_unit_test (test_no_nameserver),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
