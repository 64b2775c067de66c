/*  tests/e2e/test_push_consumer.c - push consumers in a group against a
    real broker actor (short member, lease and retry timers): steady state
    exactly once with 1 to 5 members, members joining and leaving while
    messages flow (nothing lost, duplicates counted and bounded, no queue
    handled by two members at once), broadcast with local offsets across
    a restart, retry then success, dead letters, ordered consumption with
    concurrent producers and a poison message, offsets across a restart.

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

typedef struct {
    char queue [160];           //  topic:queue
    int member;
    int64_t start, end;         //  usecs
} rec_t;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    zhashx_t *counts;           //  body -> int *
    size_t distinct, total;
    rec_t *recs;
    size_t nrecs, cap;
    zhashx_t *last;             //  ordered: "p:k" -> int * last seq
    size_t order_errors;
    int fail_mode;              //  1: "fail2" fails twice, "always" always
    int sleep_ms;
} recorder_t;

typedef struct {
    recorder_t *r;
    int member;
} ctx_t;

typedef struct {
    char *dir;
    zactor_t *broker;
    char *endpoint;
    char *fabric;
    recorder_t r;
} fixture_t;

static void
s_free_int (void **item)
{
    free (*item);
    *item = NULL;
}

static int
s_setup (void **state)
{
    fixture_t *f = (fixture_t *) zmalloc (sizeof (fixture_t));
    f->dir = zrt_tempdir ("push");
    f->broker = zrt_broker_start (f->dir, "tcp://127.0.0.1:*", EXTRA,
                                  &f->endpoint);
    f->fabric = zsys_sprintf ("broker:%s", f->endpoint);
    pthread_mutex_init (&f->r.lock, NULL);
    pthread_cond_init (&f->r.cond, NULL);
    f->r.counts = zhashx_new ();
    zhashx_set_destructor (f->r.counts, s_free_int);
    f->r.last = zhashx_new ();
    zhashx_set_destructor (f->r.last, s_free_int);
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
    zhashx_destroy (&f->r.counts);
    zhashx_destroy (&f->r.last);
    free (f->r.recs);
    pthread_mutex_destroy (&f->r.lock);
    pthread_cond_destroy (&f->r.cond);
    free (f);
    return 0;
}

static int *
s_counter (zhashx_t *h, const char *key)
{
    int *n = (int *) zhashx_lookup (h, key);
    if (!n) {
        n = (int *) zmalloc (sizeof (int));
        zhashx_insert (h, key, n);
    }
    return n;
}

static zr_consume_result_t
s_handler (zr_message_t *msg, void *arg)
{
    ctx_t *ctx = (ctx_t *) arg;
    recorder_t *r = ctx->r;
    int64_t start = zclock_usecs ();
    if (r->sleep_ms)
        zclock_sleep (r->sleep_ms);     //  the application's work
    char body [128];
    size_t size = zr_message_size (msg);
    if (size >= sizeof (body))
        size = sizeof (body) - 1;
    memcpy (body, zr_message_body (msg), size);
    body [size] = 0;
    zr_consume_result_t result = ZR_CONSUME_SUCCESS;
    pthread_mutex_lock (&r->lock);
    int *n = s_counter (r->counts, body);
    if (r->fail_mode == 1 && strncmp (body, "fail2", 5) == 0 && *n < 2)
        result = ZR_CONSUME_RETRY;
    if (r->fail_mode == 1 && strncmp (body, "always", 6) == 0)
        result = ZR_CONSUME_RETRY;
    if (strncmp (body, "poison", 6) == 0)
        result = ZR_CONSUME_RETRY;
    int p, k, seq;
    if (result == ZR_CONSUME_SUCCESS
        && sscanf (body, "o%d:%d:%d", &p, &k, &seq) == 3) {
        char key [32];
        snprintf (key, sizeof (key), "%d:%d", p, k);
        int *last = (int *) zhashx_lookup (r->last, key);
        if (!last) {
            last = (int *) zmalloc (sizeof (int));
            *last = -1;
            zhashx_insert (r->last, key, last);
        }
        if (seq != *last + 1)
            r->order_errors++;
        *last = seq;
    }
    ++*n;
    if (result == ZR_CONSUME_SUCCESS) {
        char ok [140];
        snprintf (ok, sizeof (ok), "ok:%s", body);
        if (++*s_counter (r->counts, ok) == 1)
            r->distinct++;          //  first success of this body
    }
    r->total++;
    if (r->nrecs == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->recs = (rec_t *) realloc (r->recs, r->cap * sizeof (rec_t));
    }
    rec_t *rec = &r->recs [r->nrecs++];
    snprintf (rec->queue, sizeof (rec->queue), "%s:%d",
              zr_message_topic (msg), zr_message_queue (msg));
    rec->member = ctx->member;
    rec->start = start;
    rec->end = zclock_usecs ();
    pthread_cond_broadcast (&r->cond);
    pthread_mutex_unlock (&r->lock);
    return result;
}

//  Waits until the recorder has handled `distinct` different bodies, or
//  timeout_ms. Returns true when it got there.
static bool
s_wait_distinct (recorder_t *r, size_t distinct, int timeout_ms)
{
    int64_t deadline = zclock_time () + timeout_ms;
    pthread_mutex_lock (&r->lock);
    while (r->distinct < distinct && zclock_time () < deadline) {
        struct timespec ts;
        int64_t until = zclock_time () + 50;
        ts.tv_sec = until / 1000;
        ts.tv_nsec = (until % 1000) * 1000000;
        pthread_cond_timedwait (&r->cond, &r->lock, &ts);
    }
    bool ok = r->distinct >= distinct;
    pthread_mutex_unlock (&r->lock);
    return ok;
}

//  Waits for a count of handler calls on one body.
static int
s_wait_count (recorder_t *r, const char *body, int count, int timeout_ms)
{
    int64_t deadline = zclock_time () + timeout_ms;
    pthread_mutex_lock (&r->lock);
    int n = 0;
    while (true) {
        int *c = (int *) zhashx_lookup (r->counts, body);
        n = c ? *c : 0;
        if (n >= count || zclock_time () >= deadline)
            break;
        struct timespec ts;
        int64_t until = zclock_time () + 50;
        ts.tv_sec = until / 1000;
        ts.tv_nsec = (until % 1000) * 1000000;
        pthread_cond_timedwait (&r->cond, &r->lock, &ts);
    }
    pthread_mutex_unlock (&r->lock);
    return n;
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

static zr_push_consumer_t *
s_consumer (fixture_t *f, const char *group, const char *topic, int member,
            ctx_t *ctx)
{
    zr_push_consumer_t *c = zr_push_consumer_new (f->fabric, group);
    assert_non_null (c);
    char id [32];
    snprintf (id, sizeof (id), "member-%02d", member);
    assert_int_equal (zr_push_consumer_set_client_id (c, id), 0);
    assert_int_equal (zr_push_consumer_set_from (c, "first"), 0);
    assert_int_equal (zr_push_consumer_subscribe (c, topic), 0);
    ctx->r = &f->r;
    ctx->member = member;
    return c;
}

static void
s_start (zr_push_consumer_t *c, ctx_t *ctx)
{
    char *err = NULL;
    int rc = zr_push_consumer_start (c, s_handler, ctx, &err);
    if (rc != 0)
        fail_msg ("start: %s", err ? err : "?");
}

//  Counts queues of topic owned over the consumers; fails when two own
//  the same one. Returns how many are owned.
static int
s_owned (zr_push_consumer_t **cs, int n, const char *topic)
{
    zhashx_t *seen = zhashx_new ();
    int count = 0;
    char prefix [160];
    snprintf (prefix, sizeof (prefix), "%s:", topic);
    for (int i = 0; i < n; i++) {
        if (!cs [i])
            continue;
        char *list = zr_push_consumer_owned (cs [i]);
        char *save = NULL;
        for (char *q = strtok_r (list, ",", &save); q;
             q = strtok_r (NULL, ",", &save))
            if (strncmp (q, prefix, strlen (prefix)) == 0) {
                assert_null (zhashx_lookup (seen, q));
                zhashx_insert (seen, q, (void *) 1);
                count++;
            }
        free (list);
    }
    zhashx_destroy (&seen);
    return count;
}

static void
s_wait_owned (recorder_t *r, zr_push_consumer_t **cs, int n,
              const char *topic, int queues, int timeout_ms)
{
    int64_t deadline = zclock_mono () + timeout_ms;
    int owned = 0;
    while ((owned = s_owned (cs, n, topic)) != queues
           && zclock_mono () < deadline)
        s_wait_distinct (r, SIZE_MAX, 20);     //  pause 20 ms
    assert_int_equal (owned, queues);
}

static void
s_send (zr_producer_t *p, const char *topic, const char *body,
        const char *key)
{
    zr_message_t *m = zr_message_new (topic, body, strlen (body));
    if (key)
        zr_message_set_sharding_key (m, key);
    zr_send_result_t res;
    assert_int_equal (zr_producer_send (p, m, &res), 0);
    zr_message_destroy (&m);
}

//  No two members handled one queue at overlapping times.
static void
s_check_no_overlap (recorder_t *r)
{
    pthread_mutex_lock (&r->lock);
    size_t bad = 0;
    for (size_t i = 0; i < r->nrecs; i++)
        for (size_t j = i + 1; j < r->nrecs; j++) {
            rec_t *a = &r->recs [i], *b = &r->recs [j];
            if (a->member == b->member || strcmp (a->queue, b->queue) != 0)
                continue;
            if (a->start < b->end && b->start < a->end)
                bad++;
        }
    pthread_mutex_unlock (&r->lock);
    assert_int_equal (bad, 0);
}

//  1 to 5 members, all joined before sending: each message once.
static void
test_steady_exactly_once (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "steady", 8);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    size_t sent = 0;
    for (int n = 1; n <= 5; n++) {
        char group [32];
        snprintf (group, sizeof (group), "steady%d", n);
        zr_push_consumer_t *cs [5] = { NULL };
        ctx_t ctx [5];
        for (int i = 0; i < n; i++) {
            cs [i] = s_consumer (f, group, "steady", i, &ctx [i]);
            assert_int_equal (zr_push_consumer_set_from (cs [i], "last"), 0);
            s_start (cs [i], &ctx [i]);
        }
        s_wait_owned (&f->r, cs, n, "steady", 8, 5000);
        size_t before = f->r.total;
        for (int i = 0; i < 200; i++) {
            char body [32];
            snprintf (body, sizeof (body), "s%d-%d", n, i);
            s_send (p, "steady", body, NULL);
        }
        sent += 200;
        assert_true (s_wait_distinct (&f->r, sent, 10000));
        for (int i = 0; i < n; i++)
            zr_push_consumer_destroy (&cs [i]);
        pthread_mutex_lock (&f->r.lock);
        size_t handled = f->r.total - before;
        pthread_mutex_unlock (&f->r.lock);
        printf ("steady: %d members: 200 sent, %zu handled\n", n, handled);
        assert_int_equal (handled, 200);
    }
    s_check_no_overlap (&f->r);
    zr_producer_destroy (&p);
}

//  Members join and leave while the producer sends.
static void
test_churn (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "churn", 8);
    f->r.sleep_ms = 1;
    zr_producer_t *p = zr_producer_new (f->endpoint);
    zr_push_consumer_t *cs [6] = { NULL };
    ctx_t ctx [6];
    int sent = 0;
    //  joins: 0, 1, 2; leaves: 0; joins 3, 4; leaves 1, 2; join 5
    const char *plan [] = { "+0", "+1", "+2", "-0", "+3", "+4", "-1", "-2",
                            "+5", NULL };
    for (int step = 0; plan [step]; step++) {
        int m = plan [step][1] - '0';
        if (plan [step][0] == '+') {
            cs [m] = s_consumer (f, "churn", "churn", m, &ctx [m]);
            s_start (cs [m], &ctx [m]);
        }
        else
            zr_push_consumer_destroy (&cs [m]);
        for (int i = 0; i < 150; i++) {
            char body [32];
            snprintf (body, sizeof (body), "c%d", sent++);
            s_send (p, "churn", body, NULL);
        }
        //  Some progress before the next change, so changes hit
        //  messages in flight.
        assert_true (s_wait_distinct (&f->r, (size_t) sent - 100, 10000));
    }
    assert_true (s_wait_distinct (&f->r, (size_t) sent, 20000));
    for (int i = 0; i < 6; i++)
        zr_push_consumer_destroy (&cs [i]);
    pthread_mutex_lock (&f->r.lock);
    size_t dups = f->r.total - f->r.distinct;
    pthread_mutex_unlock (&f->r.lock);
    printf ("churn: %d sent, %zu handled, %zu duplicates (%.2f%%)\n", sent,
            f->r.total, dups, 100.0 * (double) dups / sent);
    assert_int_equal (f->r.distinct, (size_t) sent);
    assert_true (dups * 20 < (size_t) sent);
    s_check_no_overlap (&f->r);
    zr_producer_destroy (&p);
}

static void
test_broadcast (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "bcast", 4);
    char *d1 = zsys_sprintf ("%s/m1", f->dir), *d2 = zsys_sprintf ("%s/m2",
                                                                 f->dir);
    zsys_dir_create (d1);
    zsys_dir_create (d2);
    recorder_t r2 = { 0 };
    pthread_mutex_init (&r2.lock, NULL);
    pthread_cond_init (&r2.cond, NULL);
    r2.counts = zhashx_new ();
    zhashx_set_destructor (r2.counts, s_free_int);
    r2.last = zhashx_new ();

    ctx_t c1, c2;
    zr_push_consumer_t *m1 = s_consumer (f, "bc", "bcast", 1, &c1);
    zr_push_consumer_t *m2 = s_consumer (f, "bc", "bcast", 2, &c2);
    c2.r = &r2;
    char *err = NULL;
    assert_int_equal (zr_push_consumer_set_mode (m1, "broadcast"), 0);
    assert_int_equal (zr_push_consumer_set_mode (m2, "broadcast"), 0);
    assert_int_equal (zr_push_consumer_start (m1, s_handler, &c1, &err), -1);
    assert_non_null (strstr (err, "offset"));   //  no offset dir
    zstr_free (&err);
    zr_push_consumer_set_offset_dir (m1, d1);
    zr_push_consumer_set_offset_dir (m2, d2);
    s_start (m1, &c1);
    s_start (m2, &c2);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    for (int i = 0; i < 100; i++) {
        char body [32];
        snprintf (body, sizeof (body), "b%d", i);
        s_send (p, "bcast", body, NULL);
    }
    assert_true (s_wait_distinct (&f->r, 100, 10000));
    assert_true (s_wait_distinct (&r2, 100, 10000));
    zr_push_consumer_destroy (&m2);
    for (int i = 100; i < 150; i++) {
        char body [32];
        snprintf (body, sizeof (body), "b%d", i);
        s_send (p, "bcast", body, NULL);
    }
    m2 = s_consumer (f, "bc", "bcast", 2, &c2);
    c2.r = &r2;
    zr_push_consumer_set_mode (m2, "broadcast");
    zr_push_consumer_set_offset_dir (m2, d2);
    s_start (m2, &c2);
    assert_true (s_wait_distinct (&f->r, 150, 10000));
    assert_true (s_wait_distinct (&r2, 150, 10000));
    zr_push_consumer_destroy (&m1);
    zr_push_consumer_destroy (&m2);
    printf ("broadcast: m1 handled %zu, m2 %zu (150 sent)\n", f->r.total,
            r2.total);
    assert_int_equal (f->r.total, 150);
    assert_int_equal (r2.total, 150);    //  nothing again after restart
    zr_producer_destroy (&p);
    zhashx_destroy (&r2.counts);
    zhashx_destroy (&r2.last);
    free (r2.recs);
    pthread_mutex_destroy (&r2.lock);
    pthread_cond_destroy (&r2.cond);
    zstr_free (&d1);
    zstr_free (&d2);
}

//  Pulls every message body of a queue into one string.
static char *
s_queue_bodies (fixture_t *f, const char *topic)
{
    zr_consumer_t *c = zr_consumer_new (f->endpoint);
    zr_pull_t *pull = zr_consumer_pull (c, topic, 0, 0, 100, 0);
    char *all = strdup ("");
    if (pull && zr_pull_status (pull) == ZR_OK)
        for (size_t i = 0; i < zr_pull_count (pull); i++) {
            zr_message_t *m = zr_pull_message (pull, i);
            char *more = zsys_sprintf ("%s%.*s;", all,
                                       (int) zr_message_size (m),
                                       (const char *) zr_message_body (m));
            free (all);
            all = more;
        }
    zr_pull_destroy (&pull);
    zr_consumer_destroy (&c);
    return all;
}

static void
test_retry_and_dlq (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "retry", 2);
    f->r.fail_mode = 1;
    ctx_t c1;
    zr_push_consumer_t *m = s_consumer (f, "rg", "retry", 1, &c1);
    s_start (m, &c1);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    s_send (p, "retry", "fail2", NULL);
    s_send (p, "retry", "always", NULL);
    s_send (p, "retry", "fine", NULL);
    assert_int_equal (s_wait_count (&f->r, "fail2", 3, 10000), 3);
    assert_int_equal (s_wait_count (&f->r, "fine", 1, 5000), 1);
    //  always: first delivery + max-reconsume (3) redeliveries, then DLQ
    char *dlq = NULL;
    int64_t deadline = zclock_mono () + 10000;
    while (zclock_mono () < deadline) {
        zstr_free (&dlq);
        dlq = s_queue_bodies (f, "%DLQ%rg");
        if (strstr (dlq, "always"))
            break;
        s_wait_distinct (&f->r, SIZE_MAX, 50);
    }
    int always = s_wait_count (&f->r, "always", 0, 0);
    printf ("retry: fail2 handled 3 times, always %d times, DLQ '%s'\n",
            always, dlq);
    assert_non_null (strstr (dlq, "always"));
    assert_null (strstr (dlq, "fail2"));
    assert_true (always >= 3 && always <= 5);
    zstr_free (&dlq);
    zr_push_consumer_destroy (&m);
    //  fail2 and fine are not handled again
    assert_int_equal (s_wait_count (&f->r, "fail2", 4, 0), 3);
    zr_producer_destroy (&p);
}

typedef struct {
    char *endpoint;
    int producer;
    int keys, per_key;
    bool poison;
} prod_args_t;

static void *
s_producer_thread (void *arg)
{
    prod_args_t *a = (prod_args_t *) arg;
    zr_producer_t *p = zr_producer_new (a->endpoint);
    for (int seq = 0; seq < a->per_key; seq++)
        for (int k = 0; k < a->keys; k++) {
            char body [64], key [16];
            snprintf (key, sizeof (key), "key%d", k);
            if (a->poison && k == 0 && seq == a->per_key / 2) {
                zr_message_t *m = zr_message_new ("ordered", "poison", 6);
                zr_message_set_sharding_key (m, key);
                zr_producer_send (p, m, NULL);
                zr_message_destroy (&m);
            }
            snprintf (body, sizeof (body), "o%d:%d:%d", a->producer, k, seq);
            zr_message_t *m = zr_message_new ("ordered", body, strlen (body));
            zr_message_set_sharding_key (m, key);
            zr_producer_send (p, m, NULL);
            zr_message_destroy (&m);
        }
    zr_producer_destroy (&p);
    return NULL;
}

static void
test_ordered (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "ordered", 8);
    zr_push_consumer_t *cs [2];
    ctx_t ctx [2];
    for (int i = 0; i < 2; i++) {
        cs [i] = s_consumer (f, "og", "ordered", i, &ctx [i]);
        zr_push_consumer_set_orderly (cs [i], true);
        zr_push_consumer_set_max_retries (cs [i], 2);
        s_start (cs [i], &ctx [i]);
    }
    s_wait_owned (&f->r, cs, 2, "ordered", 8, 5000);
    pthread_t threads [3];
    prod_args_t args [3];
    for (int i = 0; i < 3; i++) {
        args [i].endpoint = f->endpoint;
        args [i].producer = i;
        args [i].keys = 20;
        args [i].per_key = 15;
        args [i].poison = i == 0;
        pthread_create (&threads [i], NULL, s_producer_thread, &args [i]);
    }
    for (int i = 0; i < 3; i++)
        pthread_join (threads [i], NULL);
    assert_true (s_wait_distinct (&f->r, 3 * 20 * 15, 15000));
    int poison = s_wait_count (&f->r, "poison", 3, 5000);
    char *dlq = NULL;
    int64_t deadline = zclock_mono () + 5000;
    while (zclock_mono () < deadline) {
        zstr_free (&dlq);
        dlq = s_queue_bodies (f, "%DLQ%og");
        if (strstr (dlq, "poison"))
            break;
        s_wait_distinct (&f->r, SIZE_MAX, 50);
    }
    for (int i = 0; i < 2; i++)
        zr_push_consumer_destroy (&cs [i]);
    printf ("ordered: %zu handled, %zu out of order, poison handled %d "
            "times, DLQ '%s'\n",
            f->r.total, f->r.order_errors, poison, dlq);
    assert_int_equal (f->r.order_errors, 0);
    assert_int_equal (poison, 3);       //  1 + 2 in-place retries
    assert_non_null (strstr (dlq, "poison"));
    zstr_free (&dlq);
}

static void
test_offsets_survive_restart (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    s_create_topic (f, "restart", 4);
    zr_producer_t *p = zr_producer_new (f->endpoint);
    for (int i = 0; i < 100; i++) {
        char body [32];
        snprintf (body, sizeof (body), "r%d", i);
        s_send (p, "restart", body, NULL);
    }
    ctx_t c1;
    zr_push_consumer_t *m = s_consumer (f, "rs", "restart", 1, &c1);
    s_start (m, &c1);
    assert_true (s_wait_distinct (&f->r, 100, 10000));
    zr_push_consumer_destroy (&m);
    for (int i = 100; i < 150; i++) {
        char body [32];
        snprintf (body, sizeof (body), "r%d", i);
        s_send (p, "restart", body, NULL);
    }
    m = s_consumer (f, "rs", "restart", 2, &c1);    //  another member id
    s_start (m, &c1);
    assert_true (s_wait_distinct (&f->r, 150, 10000));
    zr_push_consumer_destroy (&m);
    assert_int_equal (f->r.total, 150);
    zr_producer_destroy (&p);
}

static void
test_bad_input (void **state)
{
    fixture_t *f = (fixture_t *) *state;
    assert_null (zr_push_consumer_new (f->fabric, "bad group"));
    assert_null (zr_push_consumer_new (f->fabric, NULL));
    zr_push_consumer_t *c = zr_push_consumer_new (f->fabric, "g");
    assert_int_equal (zr_push_consumer_set_strategy (c, "random"), -1);
    assert_int_equal (zr_push_consumer_set_mode (c, "both"), -1);
    assert_int_equal (zr_push_consumer_set_from (c, "yesterday"), -1);
    assert_int_equal (zr_push_consumer_set_threads (c, 0), -1);
    assert_int_equal (zr_push_consumer_subscribe (c, "no/slash"), -1);
    char *err = NULL;
    ctx_t ctx = { &f->r, 0 };
    assert_int_equal (zr_push_consumer_start (c, s_handler, &ctx, &err), -1);
    assert_non_null (strstr (err, "topic"));
    zstr_free (&err);
    zr_push_consumer_destroy (&c);
    c = zr_push_consumer_new ("broker:ipc:///nonexistent/zr-none", "g");
    zr_push_consumer_subscribe (c, "t");
    assert_int_equal (zr_push_consumer_start (c, s_handler, &ctx, &err), -1);
    assert_non_null (strstr (err, "no broker"));
    zstr_free (&err);
    zr_push_consumer_destroy (&c);
}

int
main (void)
{
    const struct CMUnitTest tests [] = {
        cmocka_unit_test_setup_teardown (test_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_steady_exactly_once, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_churn, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_broadcast, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_retry_and_dlq, s_setup,
                                         s_teardown),
        cmocka_unit_test_setup_teardown (test_ordered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown (test_offsets_survive_restart,
                                         s_setup, s_teardown),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
