/*  tests/e2e/test_push_faults.c - push consumers meeting faults, against a
    real broker actor with short member, lease and retry timers:
    - a handler that returns a value that is neither SUCCESS nor RETRY:
      the consumer keeps running, the message is handled again later
      (clustering: through the retry topic; orderly: in place), the
      other messages once each;
    - a queue whose lease a fake member ("intruder", a raw LOCK from a
      DEALER) holds when the push consumer starts: the consumer gets
      LEASE_HELD and leaves the queue alone while the lease runs, takes it
      once the intruder stops renewing, starts at the offset the intruder
      committed, and consumes everything after it; the intruder's token
      is stale afterwards (commit refused, LOCK answers LEASE_HELD);
    - invalid strategy names and topic names are refused;
    - two groups on one topic each get every message.

    ctest: RUN_SERIAL  (lease and heartbeat timings)
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include "testutil.h"
#include "client/client.h"

#define EXTRA "auto-create=true;member-heartbeat-ms=100;member-expiry-ms=600;" \
              "lease-ms=600;retry-delays=100ms 200ms;max-reconsume=3"
#define LEASE_MS 600

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    zhashx_t *counts;           //  body -> int * (handler calls)
    size_t distinct;            //  bodies handled with SUCCESS at least once
    size_t total;               //  handler calls
    size_t invalid;             //  calls answered with the invalid value
} rec_t;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    char *fabric;
} fixture_t;

static void
s_free_int (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_rec_init (rec_t *r)
{
    memset (r, 0, sizeof *r);
    pthread_mutex_init (&r->lock, NULL);
    pthread_cond_init (&r->cond, NULL);
    r->counts = zhashx_new ();
    zhashx_set_destructor (r->counts, s_free_int);
}

static void
s_rec_fini (rec_t *r)
{
    zhashx_destroy (&r->counts);
    pthread_mutex_destroy (&r->lock);
    pthread_cond_destroy (&r->cond);
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("pushfaults");
    f->broker = zrt_broker_start (f->dir, "tcp://127.0.0.1:*", EXTRA,
                                  &f->endpoint);
    f->fabric = zsys_sprintf ("broker:%s", f->endpoint);
    *state = f;
    return 0;
}

static int
s_teardown (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zactor_destroy (&f->broker);
    zrt_rmrf (f->dir);
    zstr_free (&f->dir);
    zstr_free (&f->endpoint);
    zstr_free (&f->fabric);
    free (f);
    return 0;
}

//  Handler calls so far for body (locked by the caller).
static int *
s_counter (rec_t *r, const char *body)
{
    int *n = (int *) zhashx_lookup (r->counts, body);
    if (!n) {
        n = (int *) zmalloc (sizeof (int));
        zhashx_insert (r->counts, body, n);
    }
    return n;
}

//  Bodies starting "weird" get an invalid result on their first call.
static zr_consume_result_t
s_handler (zr_message_t *msg, void *arg)
{
    rec_t *r = (rec_t *) arg;
    char body [128];
    size_t size = zr_message_size (msg);
    if (size >= sizeof (body))
        size = sizeof (body) - 1;
    memcpy (body, zr_message_body (msg), size);
    body [size] = 0;
    pthread_mutex_lock (&r->lock);
    int *n = s_counter (r, body);
    zr_consume_result_t result = ZR_CONSUME_SUCCESS;
    if (strncmp (body, "weird", 5) == 0 && *n == 0) {
        result = (zr_consume_result_t) 7;
        r->invalid++;
    }
    else {
        char ok [140];
        snprintf (ok, sizeof (ok), "ok:%s", body);
        if (++*s_counter (r, ok) == 1)
            r->distinct++;          //  first success of this body
    }
    ++*n;
    r->total++;
    pthread_cond_broadcast (&r->cond);
    pthread_mutex_unlock (&r->lock);
    return result;
}

//  Waits up to timeout_ms for `distinct` successful bodies.
static bool
s_wait_distinct (rec_t *r, size_t distinct, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    pthread_mutex_lock (&r->lock);
    while (r->distinct < distinct && zclock_mono () < deadline) {
        struct timespec ts;
        int64_t until = zclock_time () + 20;
        ts.tv_sec = until / 1000;
        ts.tv_nsec = (until % 1000) * 1000000;
        pthread_cond_timedwait (&r->cond, &r->lock, &ts);
    }
    bool ok = r->distinct >= distinct;
    pthread_mutex_unlock (&r->lock);
    return ok;
}

//  Calls of body so far.
static int
s_count (rec_t *r, const char *body)
{
    pthread_mutex_lock (&r->lock);
    int *n = (int *) zhashx_lookup (r->counts, body);
    int count = n ? *n : 0;
    pthread_mutex_unlock (&r->lock);
    return count;
}

static void
s_create_topic (fixture_t *f, const char *topic, int queues)
{
    zr_client_t *c = zr_client_new (f->endpoint);
    zr_enc_t *e = zr_client_begin (c, "TOPIC_CREATE", 2);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queues", queues);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 3000);
    assert_non_null (r);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    zr_reply_destroy (&r);
    zr_client_destroy (&c);
}

static void
s_send (zr_producer_t *p, const char *topic, int queue, const char *body)
{
    zr_message_t *m = zr_message_new (topic, body, strlen (body));
    if (queue >= 0)
        zr_message_set_queue (m, queue);
    zr_send_result_t res;
    assert_int_equal (zr_producer_send (p, m, &res), 0);
    if (queue >= 0)
        assert_int_equal (res.queue, queue);
    zr_message_destroy (&m);
}

static zr_push_consumer_t *
s_consumer (fixture_t *f, const char *group, const char *topic,
            const char *id)
{
    zr_push_consumer_t *c = zr_push_consumer_new (f->fabric, group);
    assert_non_null (c);
    assert_int_equal (zr_push_consumer_set_client_id (c, id), 0);
    assert_int_equal (zr_push_consumer_set_from (c, "first"), 0);
    assert_int_equal (zr_push_consumer_subscribe (c, topic), 0);
    return c;
}

static void
s_start (zr_push_consumer_t *c, rec_t *r)
{
    char *err = NULL;
    int rc = zr_push_consumer_start (c, s_handler, r, &err);
    if (rc != 0)
        fail_msg ("start: %s", err ? err : "?");
}

//  Queues of topic the consumer owns now.
static int
s_owned_count (zr_push_consumer_t *c, const char *topic, bool *has_q0)
{
    char prefix [160], q0 [160];
    snprintf (prefix, sizeof (prefix), "%s:", topic);
    snprintf (q0, sizeof (q0), "%s:0@", topic);
    char *list = zr_push_consumer_owned (c);
    assert_non_null (list);
    int count = 0;
    if (has_q0)
        *has_q0 = false;
    char *save = NULL;
    for (char *q = strtok_r (list, ",", &save); q;
         q = strtok_r (NULL, ",", &save))
        if (strncmp (q, prefix, strlen (prefix)) == 0) {
            count++;
            if (has_q0 && strncmp (q, q0, strlen (q0)) == 0)
                *has_q0 = true;
        }
    free (list);
    return count;
}

//  --------------------------------------------------------------------
//  A handler returning an invalid value

static void
s_invalid_result (fixture_t *f, const char *topic, const char *group,
                  bool orderly)
{
    rec_t r;
    s_rec_init (&r);
    zr_push_consumer_t *c = s_consumer (f, group, topic, "member-1");
    assert_int_equal (zr_push_consumer_set_orderly (c, orderly), 0);
    s_start (c, &r);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    for (int i = 0; i < 40; i++) {
        char body [32];
        snprintf (body, sizeof (body), "%s%d", i == 17 ? "weird" : "m", i);
        s_send (p, topic, -1, body);
    }
    //  Every one of the 40 succeeds in the end, weird17 on its 2nd call
    bool all = s_wait_distinct (&r, 40, 10000);
    int weird = s_count (&r, "weird17");
    //  The consumer is still running: a message sent now is handled
    s_send (p, topic, -1, "after");
    bool after = s_wait_distinct (&r, 41, 5000);
    zr_push_consumer_destroy (&c);
    printf ("invalid result (%s): %zu handler calls, weird17 %d times, "
            "%zu distinct successes\n", orderly ? "orderly" : "clustering",
            r.total, weird, r.distinct);
    assert_true (all);
    assert_true (after);
    assert_int_equal (weird, 2);
    assert_int_equal (r.invalid, 1);
    //  Each other message exactly once
    for (int i = 0; i < 40; i++) {
        char body [32];
        snprintf (body, sizeof (body), "m%d", i);
        if (i != 17)
            assert_int_equal (s_count (&r, body), 1);
    }
    assert_int_equal (s_count (&r, "after"), 1);
    assert_int_equal (r.total, 42);
    zr_producer_destroy (&p);
    s_rec_fini (&r);
}

static void
test_invalid_result (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "inval", 4);
    s_invalid_result (f, "inval", "ig", false);
    s_create_topic (f, "invalo", 4);
    s_invalid_result (f, "invalo", "igo", true);
}

//  --------------------------------------------------------------------
//  A queue whose lease another member holds

//  A request on the intruder's DEALER; returns the reply (not NULL).
static zr_reply_t *
s_intruder_lock (zr_client_t *c, int64_t token)
{
    zr_enc_t *e = zr_client_begin (c, "LOCK", token > 0 ? 5 : 4);
    zr_enc_kstr (e, "group", "sg");
    zr_enc_kstr (e, "topic", "stale");
    zr_enc_kint (e, "queue", 0);
    zr_enc_kstr (e, "client_id", "intruder");
    if (token > 0)
        zr_enc_kint (e, "token", token);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 3000);
    assert_non_null (r);
    return r;
}

static int64_t
s_reply_int (zr_reply_t *r, const char *key)
{
    const zr_obj_t *v = zr_obj_get (zr_reply_header (r), key);
    int64_t value = -999;
    assert_non_null (v);
    assert_int_equal (zr_obj_int (v, &value), 0);
    return value;
}

static zr_status_t
s_intruder_commit (zr_client_t *c, int64_t token, int64_t offset)
{
    zr_enc_t *e = zr_client_begin (c, "COMMIT_OFFSET", 5);
    zr_enc_kstr (e, "group", "sg");
    zr_enc_kstr (e, "topic", "stale");
    zr_enc_kint (e, "queue", 0);
    zr_enc_kint (e, "offset", offset);
    zr_enc_kint (e, "token", token);
    zr_reply_t *r = zr_client_call (c, NULL, 0, 3000);
    assert_non_null (r);
    zr_status_t st = zr_reply_status (r);
    zr_reply_destroy (&r);
    return st;
}

static void
test_stale_lease (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "stale", 8);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    //  q0-0 .. q0-9 in queue 0, o0 .. o69 anywhere
    for (int i = 0; i < 10; i++) {
        char body [32];
        snprintf (body, sizeof (body), "q0-%d", i);
        s_send (p, "stale", 0, body);
    }
    for (int i = 0; i < 70; i++) {
        char body [32];
        snprintf (body, sizeof (body), "o%d", i);
        s_send (p, "stale", -1, body);
    }
    //  The intruder takes queue 0, renews once (same token), commits 4
    zr_client_t *intruder = zr_client_new (f->endpoint);
    assert_non_null (intruder);
    zr_reply_t *r = s_intruder_lock (intruder, 0);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    int64_t token = s_reply_int (r, "token");
    assert_int_equal (s_reply_int (r, "lease_ms"), LEASE_MS);
    zr_reply_destroy (&r);
    int64_t sent = zclock_mono ();
    r = s_intruder_lock (intruder, token);
    assert_int_equal (zr_reply_status (r), ZR_OK);
    assert_int_equal (s_reply_int (r, "token"), token);
    zr_reply_destroy (&r);
    assert_int_equal (s_intruder_commit (intruder, token, 4), ZR_OK);
    //  From here the intruder is silent: its lease runs out at the
    //  broker no sooner than LEASE_MS after `sent`

    rec_t rec;
    s_rec_init (&rec);
    zr_push_consumer_t *c = s_consumer (f, "sg", "stale", "member-1");
    s_start (c, &rec);
    //  While the lease can still be the intruder's, the consumer must
    //  not own queue 0; once it has run out, it takes it
    int64_t deadline = sent + 3 * LEASE_MS + 3000;
    int owned = 0;
    bool has_q0 = false, seen_without_q0 = false;
    while (zclock_mono () < deadline) {
        owned = s_owned_count (c, "stale", &has_q0);
        int64_t now = zclock_mono ();
        if (has_q0 && now < sent + LEASE_MS)
            fail_msg ("the consumer owns queue 0 %d ms after the intruder's "
                      "renewal, before its %d ms lease ran out",
                      (int) (now - sent), LEASE_MS);
        if (owned == 7 && !has_q0)
            seen_without_q0 = true;
        if (owned == 8)
            break;
        s_wait_distinct (&rec, SIZE_MAX, 20);       //  pause 20 ms
    }
    int64_t took = zclock_mono () - sent;
    printf ("stale lease: the consumer owned %d queues, queue 0 %d ms "
            "after the intruder's last renewal (lease %d ms)%s\n", owned,
            (int) took, LEASE_MS,
            seen_without_q0 ? "; seen owning the other 7 first" : "");
    assert_int_equal (owned, 8);
    assert_true (took < 3 * LEASE_MS + 3000);
    //  Everything but q0-0 .. q0-3 (committed by the intruder)
    assert_true (s_wait_distinct (&rec, 76, 10000));
    for (int i = 0; i < 10; i++) {
        char body [32];
        snprintf (body, sizeof (body), "q0-%d", i);
        assert_int_equal (s_count (&rec, body), i < 4 ? 0 : 1);
    }
    for (int i = 0; i < 70; i++) {
        char body [32];
        snprintf (body, sizeof (body), "o%d", i);
        assert_int_equal (s_count (&rec, body), 1);
    }
    //  The intruder's token is stale now
    assert_int_equal (s_intruder_commit (intruder, token, 10),
                      ZR_LEASE_INVALID);
    r = s_intruder_lock (intruder, token);
    assert_int_equal (zr_reply_status (r), ZR_LEASE_HELD);
    const zr_obj_t *owner = zr_obj_get (zr_reply_header (r), "owner");
    assert_non_null (owner);
    const char *owner_str = NULL;
    size_t owner_len = 0;
    assert_int_equal (zr_obj_str (owner, &owner_str, &owner_len), 0);
    assert_int_equal (owner_len, strlen ("member-1"));
    assert_memory_equal (owner_str, "member-1", owner_len);
    zr_reply_destroy (&r);
    //  Later messages of queue 0 reach the consumer
    s_send (p, "stale", 0, "q0-late");
    assert_true (s_wait_distinct (&rec, 77, 5000));
    zr_push_consumer_destroy (&c);
    assert_int_equal (rec.total, 77);
    zr_client_destroy (&intruder);
    zr_producer_destroy (&p);
    s_rec_fini (&rec);
}

//  --------------------------------------------------------------------
//  Bad names

static void
test_bad_names (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    zr_push_consumer_t *c = zr_push_consumer_new (f->fabric, "g");
    assert_non_null (c);
    const char *bad_strategies [] = {
        "random", "", "Averagely", "averagely ", "hash,circle", "round-robin"
    };
    for (size_t i = 0; i < sizeof bad_strategies / sizeof *bad_strategies;
         i++)
        assert_int_equal (zr_push_consumer_set_strategy (c,
                                                         bad_strategies [i]),
                          -1);
    assert_int_equal (zr_push_consumer_set_strategy (c, NULL), -1);
    assert_int_equal (zr_push_consumer_set_strategy (c, "averagely"), 0);
    assert_int_equal (zr_push_consumer_set_strategy (c, "circle"), 0);
    assert_int_equal (zr_push_consumer_set_strategy (c, "hash"), 0);

    char longname [300];
    memset (longname, 'a', sizeof longname - 1);
    longname [sizeof longname - 1] = 0;
    const char *bad_topics [] = {
        "", "a b", "no/slash", "tab\there", "new\nline", longname
    };
    for (size_t i = 0; i < sizeof bad_topics / sizeof *bad_topics; i++)
        assert_int_equal (zr_push_consumer_subscribe (c, bad_topics [i]), -1);
    assert_int_equal (zr_push_consumer_subscribe (c, NULL), -1);
    //  Nothing was subscribed: start says so
    rec_t r;
    s_rec_init (&r);
    char *err = NULL;
    assert_int_equal (zr_push_consumer_start (c, s_handler, &r, &err), -1);
    assert_non_null (err);
    assert_non_null (strstr (err, "topic"));
    zstr_free (&err);
    zr_push_consumer_destroy (&c);
    s_rec_fini (&r);
}

//  --------------------------------------------------------------------
//  Two groups on one topic

static void
test_groups_independent (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "indep", 4);
    rec_t rg, rh;
    s_rec_init (&rg);
    s_rec_init (&rh);
    //  Same client id in both groups: membership is per group
    zr_push_consumer_t *g = s_consumer (f, "G", "indep", "member-1");
    zr_push_consumer_t *h = s_consumer (f, "H", "indep", "member-1");
    assert_int_equal (zr_push_consumer_set_strategy (g, "circle"), 0);
    assert_int_equal (zr_push_consumer_set_strategy (h, "hash"), 0);
    s_start (g, &rg);
    s_start (h, &rh);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    for (int i = 0; i < 100; i++) {
        char body [32];
        snprintf (body, sizeof (body), "i%d", i);
        s_send (p, "indep", -1, body);
    }
    bool g_all = s_wait_distinct (&rg, 100, 10000);
    bool h_all = s_wait_distinct (&rh, 100, 10000);
    //  Both own every queue at the same time
    assert_int_equal (s_owned_count (g, "indep", NULL), 4);
    assert_int_equal (s_owned_count (h, "indep", NULL), 4);
    zr_push_consumer_destroy (&g);
    zr_push_consumer_destroy (&h);
    printf ("groups: G handled %zu, H %zu (100 sent)\n", rg.total, rh.total);
    assert_true (g_all);
    assert_true (h_all);
    assert_int_equal (rg.total, 100);
    assert_int_equal (rh.total, 100);
    zr_producer_destroy (&p);
    s_rec_fini (&rg);
    s_rec_fini (&rh);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_bad_names, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_invalid_result, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_stale_lease, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_groups_independent, s_setup,
                                         s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
