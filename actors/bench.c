/*  actors/bench.c - `zrocket bench`: load generator and latency meter.

    zrocket bench produce --mode sync|async|oneway --size BYTES --count N
                          --clients N [--inflight N] [--duration S]
                          [--topic T] [--queues N] [--broker ENDPOINT]
    zrocket bench consume --topic T [--count N] [--clients N]
                          [--duration S] [--broker ENDPOINT]
    zrocket bench rtt     [--count N] [--size BYTES]

    produce: one thread per client, each with its own zr_producer_t,
    sends count/clients messages or until --duration passes, whichever
    comes first. sync measures each zr_producer_send; async keeps up to
    --inflight sends open and measures each from the send to its
    callback; oneway sends without replies and ends with one sync send,
    so the figure counts only what the broker has processed.

    consume: one thread per client, each pulling a share of the topic's
    queues from their min offset, until --count messages (0: all that
    the topic held when the run started) or --duration.

    rtt: the baseline, a bare ZeroMQ DEALER -> ROUTER echo round trip
    over tcp://127.0.0.1 inside this process.

    Latencies go into log-linear histograms (1/64 relative precision),
    one per thread, merged at the end. Every run prints a human summary
    and one machine-readable line starting with "RESULT ".

    The bench talks to a broker it does not own, so it cannot see the
    broker's disk: bench/run.sh checks free space before it starts.
*/
#include <zrocket.h>
#include "client/client.h"
#include "actors/settings.h"
#include <pthread.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <time.h>
#include <sys/resource.h>

#include "actors/cli.h"

#define BENCH_DEFAULT_TOPIC "bench"
#define BENCH_DEFAULT_DURATION 60       //  seconds, the hard bound
#define BENCH_MAX_CLIENTS 256
#define BENCH_MAX_SIZE (64 * 1024 * 1024)

//  --------------------------------------------------------------------
//  Clock

static uint64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

//  CPU time this process has used, ns (user + system, all threads).
static uint64_t
s_cpu_ns (void)
{
    struct rusage ru;
    if (getrusage (RUSAGE_SELF, &ru))
        return 0;
    return ((uint64_t) ru.ru_utime.tv_sec + (uint64_t) ru.ru_stime.tv_sec)
           * 1000000000ULL
           + ((uint64_t) ru.ru_utime.tv_usec + (uint64_t) ru.ru_stime.tv_usec)
           * 1000ULL;
}

//  Percent of one core used between two readings.
static double
s_cpu_pct (uint64_t cpu0, uint64_t wall0)
{
    uint64_t cpu = s_cpu_ns () - cpu0;
    uint64_t wall = s_now_ns () - wall0;
    return wall ? 100.0 * (double) cpu / (double) wall : 0;
}

//  --------------------------------------------------------------------
//  Log-linear histogram of nanoseconds: values below 128 have their own
//  bucket; above, each power of two is split into 64 linear buckets.

#define HIST_SUB 64
#define HIST_LINEAR 128
#define HIST_BUCKETS (HIST_LINEAR + 58 * HIST_SUB)

typedef struct {
    uint64_t count [HIST_BUCKETS];
    uint64_t total;
    uint64_t max;
} hist_t;

static size_t
s_hist_index (uint64_t v)
{
    if (v < HIST_LINEAR)
        return (size_t) v;
    int msb = 63 - __builtin_clzll (v);
    int shift = msb - 6;                //  v >> shift in [64, 128)
    return HIST_LINEAR + (size_t) (shift - 1) * HIST_SUB
           + (size_t) ((v >> shift) - HIST_SUB);
}

//  Middle of bucket i, in ns.
static double
s_hist_value (size_t i)
{
    if (i < HIST_LINEAR)
        return (double) i;
    size_t shift = (i - HIST_LINEAR) / HIST_SUB + 1;
    uint64_t low = ((i - HIST_LINEAR) % HIST_SUB + HIST_SUB);
    return ((double) low + 0.5) * (double) (1ULL << shift);
}

static void
s_hist_add (hist_t *h, uint64_t v)
{
    h->count [s_hist_index (v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}

static void
s_hist_merge (hist_t *into, const hist_t *from)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        into->count [i] += from->count [i];
    into->total += from->total;
    if (from->max > into->max)
        into->max = from->max;
}

//  Value at quantile q (0..1) in µs; 0 when empty.
static double
s_hist_quantile_us (const hist_t *h, double q)
{
    if (h->total == 0)
        return 0;
    uint64_t rank = (uint64_t) (q * (double) h->total + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count [i];
        if (seen >= rank) {
            double v = s_hist_value (i);
            if (v > (double) h->max)
                v = (double) h->max;
            return v / 1000.0;
        }
    }
    return (double) h->max / 1000.0;
}

//  --------------------------------------------------------------------
//  Options

typedef struct {
    const char *mode;           //  sync, async, oneway
    int64_t size;
    int64_t count;
    int64_t clients;
    int64_t inflight;
    int64_t duration;           //  seconds
    int64_t queues;
    const char *topic;
    const char *broker;
    bool count_given;
} opts_t;

static int
s_parse_num (const char *flag, const char *text, int64_t min, int64_t max,
             int64_t *value)
{
    if (zr_setting_parse_int (text, value) || *value < min || *value > max) {
        fprintf (stderr, "zrocket bench: %s wants a number from %" PRId64
                 " to %" PRId64 ", got '%s'\n", flag, min, max,
                 text ? text : "");
        return -1;
    }
    return 0;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
"usage: zrocket bench produce --mode sync|async|oneway [--size BYTES]\n"
"                             [--count N] [--clients N] [--inflight N]\n"
"                             [--duration SECONDS] [--topic T] [--queues N]\n"
"                             [--broker ENDPOINT]\n"
"       zrocket bench consume --topic T [--count N] [--clients N]\n"
"                             [--duration SECONDS] [--broker ENDPOINT]\n"
"       zrocket bench rtt [--count N] [--size BYTES]\n"
"\n"
"produce  N client threads, one producer each, send count/clients\n"
"         messages each, or until --duration passes. Defaults: --size 1K,\n"
"         --count 100000, --clients 1, --inflight 256 (async window),\n"
"         --duration 60, --topic bench (created with --queues 8 if\n"
"         missing), --broker " ZR_DEFAULT_ENDPOINT ".\n"
"consume  pulls every queue of the topic from its min offset until\n"
"         --count messages (default 0: all the topic holds at the start)\n"
"         or --duration.\n"
"rtt      bare ZeroMQ DEALER/ROUTER round trip over tcp://127.0.0.1 in\n"
"         this process: the baseline for sync send latency.\n"
"\n"
"Each run prints a summary and one line starting with RESULT with\n"
"key=value fields (msgs_per_s, mb_per_s, p50_us, p99_us, p999_us...).\n"
"Sizes take K/M suffixes (1K = 1024).\n");
}

//  Parses flags after the subcommand. Returns 0, 1 for --help, or -1.
static int
s_parse_opts (int argc, char **argv, opts_t *o)
{
    o->mode = "async";
    o->size = 1024;
    o->count = 100000;
    o->clients = 1;
    o->inflight = 256;
    o->duration = BENCH_DEFAULT_DURATION;
    o->queues = ZR_DEFAULT_QUEUES;
    o->topic = BENCH_DEFAULT_TOPIC;
    o->broker = ZR_DEFAULT_ENDPOINT;
    o->count_given = false;

    for (int i = 1; i < argc; i++) {
        const char *flag = argv [i];
        if (streq (flag, "--help") || streq (flag, "-h"))
            return 1;
        const char *value = i + 1 < argc ? argv [i + 1] : NULL;
        if (!value) {
            fprintf (stderr, "zrocket bench: %s wants a value\n", flag);
            return -1;
        }
        i++;
        int rc = 0;
        if (streq (flag, "--mode")) {
            if (!streq (value, "sync") && !streq (value, "async")
            &&  !streq (value, "oneway")) {
                fprintf (stderr, "zrocket bench: --mode is sync, async or "
                         "oneway, not '%s'\n", value);
                return -1;
            }
            o->mode = value;
        }
        else
        if (streq (flag, "--size"))
            rc = s_parse_num (flag, value, 0, BENCH_MAX_SIZE, &o->size);
        else
        if (streq (flag, "--count")) {
            rc = s_parse_num (flag, value, 0, INT64_MAX / 2, &o->count);
            o->count_given = true;
        }
        else
        if (streq (flag, "--clients"))
            rc = s_parse_num (flag, value, 1, BENCH_MAX_CLIENTS,
                              &o->clients);
        else
        if (streq (flag, "--inflight"))
            rc = s_parse_num (flag, value, 1, 65536, &o->inflight);
        else
        if (streq (flag, "--duration"))
            rc = s_parse_num (flag, value, 1, 86400, &o->duration);
        else
        if (streq (flag, "--queues"))
            rc = s_parse_num (flag, value, 1, 1024, &o->queues);
        else
        if (streq (flag, "--topic"))
            o->topic = value;
        else
        if (streq (flag, "--broker"))
            o->broker = value;
        else {
            fprintf (stderr, "zrocket bench: unknown flag '%s' (try "
                     "zrocket bench --help)\n", flag);
            return -1;
        }
        if (rc)
            return -1;
    }
    return 0;
}

//  Creates the topic (TOPIC_CREATE is a no-op when it exists with as
//  many queues). Returns 0, or -1 with a message on stderr.
static int
s_topic_ensure (const opts_t *o)
{
    zr_client_t *client = zr_client_new (o->broker);
    if (!client) {
        fprintf (stderr, "zrocket bench: bad broker endpoint '%s'\n",
                 o->broker);
        return -1;
    }
    zr_enc_t *enc = zr_client_begin (client, "TOPIC_CREATE", 2);
    zr_enc_kstr (enc, "topic", o->topic);
    zr_enc_kint (enc, "queues", o->queues);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, 5000);
    int rc = 0;
    if (!reply) {
        fprintf (stderr, "zrocket bench: no broker answering at %s "
                 "within 5 s\n", o->broker);
        rc = -1;
    }
    else
    if (zr_reply_status (reply) != ZR_OK) {
        //  Asking for fewer queues than the topic has is BAD_ARGUMENT;
        //  the topic is there, so that is fine for a bench.
        if (zr_reply_status (reply) != ZR_BAD_ARGUMENT) {
            fprintf (stderr, "zrocket bench: cannot create topic '%s': "
                     "%s %s\n", o->topic, zr_reply_status_str (reply),
                     zr_reply_reason (reply));
            rc = -1;
        }
    }
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    return rc;
}

//  --------------------------------------------------------------------
//  produce

typedef struct {
    const opts_t *opts;
    int index;
    int64_t quota;              //  messages this thread sends
    uint64_t deadline;          //  ns, monotonic
    struct gate_t *gate;        //  start when all are connected
    //  Results
    hist_t hist;
    int64_t sent;               //  requests that went out
    int64_t ok;                 //  replies with a stored status
    int64_t errors;
    uint64_t start_ns;
    uint64_t end_ns;
    char first_error [300];
    //  Async bookkeeping
    uint64_t *stamps;           //  ring of send times, by sequence
    uint64_t ring_mask;
    int64_t open;               //  sends without a callback yet
} producer_job_t;

//  Start gate: producers connect and warm up, then wait until the main
//  thread opens the gate, so the measured interval is the same for all.
typedef struct gate_t {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int ready;
    bool open;
} gate_t;

static void
s_gate_arrive (gate_t *gate)
{
    pthread_mutex_lock (&gate->lock);
    gate->ready++;
    pthread_cond_broadcast (&gate->cond);
    while (!gate->open)
        pthread_cond_wait (&gate->cond, &gate->lock);
    pthread_mutex_unlock (&gate->lock);
}

static void
s_gate_open (gate_t *gate, int arrivals)
{
    pthread_mutex_lock (&gate->lock);
    while (gate->ready < arrivals)
        pthread_cond_wait (&gate->cond, &gate->lock);
    gate->open = true;
    pthread_cond_broadcast (&gate->cond);
    pthread_mutex_unlock (&gate->lock);
}

static __thread producer_job_t *s_job;

static void
s_job_error (producer_job_t *job, const char *what, const char *detail)
{
    job->errors++;
    if (!job->first_error [0])
        snprintf (job->first_error, sizeof job->first_error, "%s%s%s",
                  what, detail && *detail ? ": " : "", detail ? detail : "");
}

static void
s_on_reply (const zr_send_result_t *result, void *arg)
{
    producer_job_t *job = s_job;
    assert (job);
    uint64_t seq = (uint64_t) (uintptr_t) arg;
    uint64_t now = s_now_ns ();
    job->open--;
    if (zr_status_stored (result->status)) {
        job->ok++;
        s_hist_add (&job->hist, now - job->stamps [seq & job->ring_mask]);
    }
    else
        s_job_error (job, zr_status_str (result->status), result->reason);
}

//  One producer thread.
static void *
s_producer_thread (void *arg)
{
    producer_job_t *job = (producer_job_t *) arg;
    const opts_t *o = job->opts;
    s_job = job;

    zr_producer_t *producer = zr_producer_new (o->broker);
    zr_message_t *msg = NULL;
    //  Random bytes, so a compressing store gets no free ride.
    char *body = (char *) zmalloc ((size_t) o->size + 1);
    uint64_t x = 0x9e3779b97f4a7c15ULL ^ (uint64_t) job->index;
    for (int64_t b = 0; b < o->size; b++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body [b] = (char) (x >> 24);
    }
    if (producer) {
        zr_producer_set_max_inflight (producer, (int) o->inflight);
        msg = zr_message_new (o->topic, body, (size_t) o->size);
    }
    if (!producer || !msg)
        s_job_error (job, "cannot create producer or message", o->broker);

    //  Ids: 16 hex digits unique to this thread and run, 16 of counter.
    uint64_t prefix = ((uint64_t) getpid () << 32)
                    ^ ((uint64_t) job->index << 24) ^ s_now_ns ();
    char id [ZR_MSG_ID_LEN + 1];
    uint64_t seq = 0;

    //  Warm-up: one sync send connects the DEALER, so connection set-up
    //  is outside the measured interval.
    zr_send_result_t result;
    if (msg) {
        snprintf (id, sizeof id, "%016" PRIx64 "%016" PRIx64, prefix, seq++);
        zr_message_set_id (msg, id);
        if (zr_producer_send (producer, msg, &result))
            s_job_error (job, "warm-up send failed",
                         zr_status_str (result.status));
    }
    bool usable = msg && job->errors == 0;
    s_gate_arrive (job->gate);
    job->start_ns = s_now_ns ();

    bool is_sync = streq (o->mode, "sync");
    bool is_async = streq (o->mode, "async");
    int timeout_ms = 10000;
    if (usable)
        zr_producer_set_timeout (producer, timeout_ms);

    int64_t i;
    for (i = 0; usable && i < job->quota; i++) {
        if ((i & 63) == 0 && (s_now_ns () >= job->deadline
                              || zsys_interrupted))
            break;
        if (is_async) {
            //  Wait for room ourselves so that the send time we record
            //  does not include time spent waiting for the window.
            while (job->open >= o->inflight)
                zr_producer_poll (producer, 100);
        }
        snprintf (id, sizeof id, "%016" PRIx64 "%016" PRIx64, prefix, seq);
        zr_message_set_id (msg, id);
        uint64_t t0 = s_now_ns ();
        if (is_sync) {
            int rc = zr_producer_send (producer, msg, &result);
            job->sent++;
            if (rc == 0 && zr_status_stored (result.status)) {
                job->ok++;
                s_hist_add (&job->hist, s_now_ns () - t0);
            }
            else
                s_job_error (job, zr_status_str (result.status),
                             result.reason);
        }
        else
        if (is_async) {
            job->stamps [seq & job->ring_mask] = t0;
            job->open++;
            if (zr_producer_send_async (producer, msg, s_on_reply,
                                        (void *) (uintptr_t) seq) == 0)
                job->sent++;
            else {
                job->open--;
                s_job_error (job, "send_async failed", NULL);
            }
        }
        else {
            if (zr_producer_send_oneway (producer, msg) == 0) {
                job->sent++;
                job->ok++;
            }
            else
                s_job_error (job, "send_oneway failed", NULL);
        }
        seq++;
    }
    if (usable && is_async) {
        if (zr_producer_flush (producer, timeout_ms) != 0)
            s_job_error (job, "flush: some async sends timed out", NULL);
        //  Sends that never got a callback count as errors.
        if (job->open > 0) {
            job->errors += job->open;
            job->open = 0;
        }
    }
    else
    if (usable && !is_sync) {
        //  Oneway: one sync send behind the stream. When it is answered
        //  the broker has processed everything before it (one DEALER,
        //  in order).
        snprintf (id, sizeof id, "%016" PRIx64 "%016" PRIx64, prefix, seq);
        zr_message_set_id (msg, id);
        if (zr_producer_send (producer, msg, &result) == 0) {
            job->sent++;
            job->ok++;
        }
        else
            s_job_error (job, "closing sync send after oneway stream",
                         zr_status_str (result.status));
    }
    job->end_ns = s_now_ns ();
    zr_message_destroy (&msg);
    zr_producer_destroy (&producer);
    free (body);
    return NULL;
}

static int
s_bench_produce (opts_t *o)
{
    if (s_topic_ensure (o))
        return 1;
    int clients = (int) o->clients;
    if (o->count < clients)
        o->count = clients;
    producer_job_t *jobs = (producer_job_t *) zmalloc (
                               sizeof (producer_job_t) * (size_t) clients);
    pthread_t *threads = (pthread_t *) zmalloc (
                             sizeof (pthread_t) * (size_t) clients);
    gate_t gate = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                    0, false };

    uint64_t ring = 1;
    while (ring < (uint64_t) o->inflight * 2)
        ring <<= 1;
    //  The deadline runs from now: connection set-up is small next to it.
    uint64_t deadline = s_now_ns ()
                      + (uint64_t) o->duration * 1000000000ULL;
    uint64_t cpu0 = s_cpu_ns ();
    uint64_t wall0 = s_now_ns ();
    int started = 0;
    for (int t = 0; t < clients; t++) {
        producer_job_t *job = &jobs [t];
        job->opts = o;
        job->index = t;
        job->quota = o->count / clients + (t < o->count % clients ? 1 : 0);
        job->deadline = deadline;
        job->gate = &gate;
        job->ring_mask = ring - 1;
        job->stamps = (uint64_t *) zmalloc (sizeof (uint64_t) * ring);
        if (pthread_create (&threads [t], NULL, s_producer_thread, job)) {
            fprintf (stderr, "zrocket bench: cannot start thread %d\n", t);
            break;
        }
        started++;
    }
    s_gate_open (&gate, started);
    for (int t = 0; t < started; t++)
        pthread_join (threads [t], NULL);
    if (started < clients)
        jobs [0].errors++;      //  reported below; counts as a failure
    double cpu_pct = s_cpu_pct (cpu0, wall0);

    hist_t *all = (hist_t *) zmalloc (sizeof (hist_t));
    int64_t sent = 0, ok = 0, errors = 0;
    uint64_t start = UINT64_MAX, end = 0;
    const char *first_error = NULL;
    for (int t = 0; t < clients; t++) {
        producer_job_t *job = &jobs [t];
        s_hist_merge (all, &job->hist);
        sent += job->sent;
        ok += job->ok;
        errors += job->errors;
        if (job->start_ns && job->start_ns < start)
            start = job->start_ns;
        if (job->end_ns > end)
            end = job->end_ns;
        if (!first_error && job->first_error [0])
            first_error = job->first_error;
    }
    double secs = end > start ? (double) (end - start) / 1e9 : 0;
    double rate = secs > 0 ? (double) ok / secs : 0;
    double mbs = rate * (double) o->size / 1e6;
    double p50 = s_hist_quantile_us (all, 0.50);
    double p99 = s_hist_quantile_us (all, 0.99);
    double p999 = s_hist_quantile_us (all, 0.999);
    double pmax = (double) all->max / 1000.0;

    printf ("bench produce: mode=%s size=%" PRId64 " clients=%d",
            o->mode, o->size, clients);
    if (streq (o->mode, "async"))
        printf (" inflight=%" PRId64, o->inflight);
    printf (" topic=%s broker=%s\n", o->topic, o->broker);
    printf ("  messages  %" PRId64 " stored of %" PRId64 " sent in %.2f s, "
            "%" PRId64 " errors\n", ok, sent, secs, errors);
    printf ("  rate      %.0f msgs/s, %.1f MB/s (bench process CPU %.0f %%)\n",
            rate, mbs, cpu_pct);
    if (all->total)
        printf ("  latency   p50 %.0f us, p99 %.0f us, p999 %.0f us, "
                "max %.0f us (%" PRIu64 " samples)\n",
                p50, p99, p999, pmax, all->total);
    if (first_error)
        printf ("  first error: %s\n", first_error);
    printf ("RESULT mode=%s size=%" PRId64 " clients=%d inflight=%" PRId64
            " msgs=%" PRId64 " secs=%.3f errors=%" PRId64
            " msgs_per_s=%.0f mb_per_s=%.2f client_cpu_pct=%.0f",
            o->mode, o->size, clients,
            streq (o->mode, "async") ? o->inflight : 1,
            ok, secs, errors, rate, mbs, cpu_pct);
    if (all->total)             //  oneway has no latencies
        printf (" p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f",
                p50, p99, p999, pmax);
    printf ("\n");
    fflush (stdout);

    for (int t = 0; t < clients; t++)
        free (jobs [t].stamps);
    free (jobs);
    free (threads);
    free (all);
    return errors || ok == 0 ? 1 : 0;
}

//  --------------------------------------------------------------------
//  consume

typedef struct {
    const opts_t *opts;
    int index;
    int queues;                 //  of the topic
    int64_t *next;              //  per queue, next offset to pull
    int64_t *end;               //  per queue, max at the start
    int64_t target;             //  total to consume (all threads)
    atomic_int_fast64_t *total; //  consumed so far (all threads)
    uint64_t deadline;
    int64_t msgs;
    int64_t bytes;
    int64_t errors;
    char first_error [300];
} consumer_job_t;

static void *
s_consumer_thread (void *arg)
{
    consumer_job_t *job = (consumer_job_t *) arg;
    const opts_t *o = job->opts;
    int clients = (int) o->clients;
    zr_consumer_t *consumer = zr_consumer_new (o->broker);
    if (!consumer) {
        job->errors++;
        return NULL;
    }
    bool wait_mode = o->count_given && o->count > 0;
    bool busy = true;
    while (busy && !zsys_interrupted) {
        busy = false;
        for (int q = job->index; q < job->queues; q += clients) {
            if (atomic_load (job->total) >= job->target
            ||  s_now_ns () >= job->deadline)
                break;
            //  Without a count, a queue is done at its starting max.
            if (!wait_mode && job->next [q] >= job->end [q])
                continue;
            int wait = job->next [q] < job->end [q] ? 0 : 1000;
            int64_t left = job->target - atomic_load (job->total);
            int max_count = left < 1024 ? (int) left : 1024;
            zr_pull_t *pull = zr_consumer_pull (consumer, o->topic, q,
                                                job->next [q], max_count,
                                                wait);
            busy = true;
            zr_status_t status = pull ? zr_pull_status (pull) : ZR_TIMEOUT;
            if (status == ZR_OK) {
                size_t n = zr_pull_count (pull);
                for (size_t i = 0; i < n; i++)
                    job->bytes += (int64_t) zr_message_size (
                                      zr_pull_message (pull, i));
                job->msgs += (int64_t) n;
                atomic_fetch_add (job->total, (int_fast64_t) n);
                job->next [q] = zr_pull_next (pull);
            }
            else
            if (status == ZR_NO_NEW_MSG) {
                //  Nothing more; the queue's max moved down (retention)
                //  or the topic shrank since the start.
                if (!wait_mode)
                    job->end [q] = job->next [q];
            }
            else
            if (status == ZR_OFFSET_OUT_OF_RANGE)
                job->next [q] = zr_pull_min (pull);
            else {
                job->errors++;
                if (!job->first_error [0])
                    snprintf (job->first_error, sizeof job->first_error,
                              "queue %d: %s %s", q, zr_status_str (status),
                              pull ? zr_pull_reason (pull) : "");
                if (!wait_mode)
                    job->end [q] = job->next [q];     //  give up on it
            }
            zr_pull_destroy (&pull);
        }
        if (atomic_load (job->total) >= job->target
        ||  s_now_ns () >= job->deadline)
            break;
    }
    zr_consumer_destroy (&consumer);
    return NULL;
}

static int
s_bench_consume (opts_t *o)
{
    zr_consumer_t *consumer = zr_consumer_new (o->broker);
    if (!consumer) {
        fprintf (stderr, "zrocket bench: bad broker endpoint '%s'\n",
                 o->broker);
        return 1;
    }
    int queues = zr_consumer_queues (consumer, o->topic);
    if (queues <= 0) {
        fprintf (stderr, "zrocket bench: topic '%s' not found at %s (or "
                 "no broker answering)\n", o->topic, o->broker);
        zr_consumer_destroy (&consumer);
        return 1;
    }
    int64_t *next = (int64_t *) zmalloc (sizeof (int64_t) * (size_t) queues);
    int64_t *end = (int64_t *) zmalloc (sizeof (int64_t) * (size_t) queues);
    int64_t held = 0;
    int rc = 0;
    for (int q = 0; q < queues; q++) {
        if (zr_consumer_queue_offsets (consumer, o->topic, q,
                                       &next [q], &end [q])) {
            fprintf (stderr, "zrocket bench: cannot read offsets of %s "
                     "queue %d\n", o->topic, q);
            rc = 1;
            break;
        }
        held += end [q] - next [q];
    }
    zr_consumer_destroy (&consumer);
    int64_t target = o->count_given && o->count > 0 ? o->count : held;
    if (rc || target == 0) {
        if (!rc)
            fprintf (stderr, "zrocket bench: topic '%s' is empty\n",
                     o->topic);
        free (next);
        free (end);
        return 1;
    }
    int clients = (int) o->clients;
    if (clients > queues)
        clients = queues;
    o->clients = clients;

    atomic_int_fast64_t total;
    atomic_init (&total, 0);
    consumer_job_t *jobs = (consumer_job_t *) zmalloc (
                               sizeof (consumer_job_t) * (size_t) clients);
    pthread_t *threads = (pthread_t *) zmalloc (
                             sizeof (pthread_t) * (size_t) clients);
    uint64_t cpu0 = s_cpu_ns ();
    uint64_t start = s_now_ns ();
    uint64_t deadline = start + (uint64_t) o->duration * 1000000000ULL;
    int started = 0;
    for (int t = 0; t < clients; t++) {
        consumer_job_t *job = &jobs [t];
        job->opts = o;
        job->index = t;
        job->queues = queues;
        job->next = next;       //  each thread touches only its queues
        job->end = end;
        job->target = target;
        job->total = &total;
        job->deadline = deadline;
        if (pthread_create (&threads [t], NULL, s_consumer_thread, job))
            break;
        started++;
    }
    for (int t = 0; t < started; t++)
        pthread_join (threads [t], NULL);
    uint64_t stop = s_now_ns ();
    double cpu_pct = s_cpu_pct (cpu0, start);

    int64_t msgs = 0, bytes = 0, errors = 0;
    const char *first_error = NULL;
    for (int t = 0; t < started; t++) {
        msgs += jobs [t].msgs;
        bytes += jobs [t].bytes;
        errors += jobs [t].errors;
        if (!first_error && jobs [t].first_error [0])
            first_error = jobs [t].first_error;
    }
    if (started < clients)
        errors++;
    double secs = (double) (stop - start) / 1e9;
    double rate = secs > 0 ? (double) msgs / secs : 0;
    double mbs = secs > 0 ? (double) bytes / secs / 1e6 : 0;
    int64_t size = msgs ? bytes / msgs : 0;
    printf ("bench consume: topic=%s clients=%d queues=%d broker=%s\n",
            o->topic, clients, queues, o->broker);
    printf ("  messages  %" PRId64 " of %" PRId64 " (%" PRId64 " bytes) in "
            "%.2f s, %" PRId64 " errors\n", msgs, target, bytes, secs,
            errors);
    printf ("  rate      %.0f msgs/s, %.1f MB/s (bench process CPU %.0f %%)\n",
            rate, mbs, cpu_pct);
    if (first_error)
        printf ("  first error: %s\n", first_error);
    printf ("RESULT mode=consume size=%" PRId64 " clients=%d msgs=%" PRId64
            " secs=%.3f errors=%" PRId64 " msgs_per_s=%.0f mb_per_s=%.2f"
            " client_cpu_pct=%.0f\n",
            size, clients, msgs, secs, errors, rate, mbs, cpu_pct);
    fflush (stdout);
    free (jobs);
    free (threads);
    free (next);
    free (end);
    return errors || msgs < target ? 1 : 0;
}

//  --------------------------------------------------------------------
//  rtt: ROUTER echo thread and a DEALER in this thread. The echo side has
//  its own ZeroMQ context, so each end has its own I/O thread, as a
//  client and a broker in two processes have.

typedef struct {
    void *ctx;
    int port;                   //  bound port, or -1
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool ready;
} echo_t;

static void *
s_echo_thread (void *arg)
{
    echo_t *echo = (echo_t *) arg;
    void *router = zmq_socket (echo->ctx, ZMQ_ROUTER);
    int port = -1;
    if (router && zmq_bind (router, "tcp://127.0.0.1:*") == 0) {
        char endpoint [256];
        size_t len = sizeof endpoint;
        if (zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &len) == 0) {
            char *colon = strrchr (endpoint, ':');
            port = colon ? atoi (colon + 1) : -1;
        }
        int timeout = 100, linger = 0;
        zmq_setsockopt (router, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt (router, ZMQ_LINGER, &linger, sizeof linger);
    }
    pthread_mutex_lock (&echo->lock);
    echo->port = port;
    echo->ready = true;
    pthread_cond_signal (&echo->cond);
    pthread_mutex_unlock (&echo->lock);

    while (port > 0 && !atomic_load (&echo->stop)) {
        //  Echo one multipart message (routing id + payload) as it came
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, router, 0) < 0) {
            zmq_msg_close (&part);
            if (zmq_errno () == EAGAIN || zmq_errno () == EINTR)
                continue;
            break;
        }
        bool more = zmq_msg_more (&part);
        zmq_msg_send (&part, router, more ? ZMQ_SNDMORE : 0);
        while (more) {
            zmq_msg_init (&part);
            if (zmq_msg_recv (&part, router, 0) < 0) {
                zmq_msg_close (&part);
                break;
            }
            more = zmq_msg_more (&part);
            zmq_msg_send (&part, router, more ? ZMQ_SNDMORE : 0);
        }
    }
    if (router)
        zmq_close (router);
    return NULL;
}

static int
s_bench_rtt (opts_t *o)
{
    if (!o->count_given)
        o->count = 20000;
    if (o->count < 1)
        o->count = 1;
    echo_t echo;
    memset (&echo, 0, sizeof echo);
    echo.ctx = zmq_ctx_new ();
    echo.port = -1;
    atomic_init (&echo.stop, false);
    pthread_mutex_init (&echo.lock, NULL);
    pthread_cond_init (&echo.cond, NULL);
    pthread_t thread;
    bool started = echo.ctx
                && pthread_create (&thread, NULL, s_echo_thread, &echo) == 0;
    if (started) {
        pthread_mutex_lock (&echo.lock);
        while (!echo.ready)
            pthread_cond_wait (&echo.cond, &echo.lock);
        pthread_mutex_unlock (&echo.lock);
    }
    zsock_t *dealer = NULL;
    if (started && echo.port > 0)
        dealer = zsock_new_dealer (NULL);
    if (!dealer) {
        fprintf (stderr, "zrocket bench: cannot bind tcp://127.0.0.1:*\n");
        atomic_store (&echo.stop, true);
        if (started)
            pthread_join (thread, NULL);
        if (echo.ctx)
            zmq_ctx_term (echo.ctx);
        return 1;
    }
    char port [16];
    snprintf (port, sizeof port, "%d", echo.port);
    zsock_connect (dealer, "tcp://127.0.0.1:%s", port);
    zsock_set_rcvtimeo (dealer, 5000);
    char *body = (char *) zmalloc ((size_t) o->size + 1);
    memset (body, 'x', (size_t) o->size);
    hist_t *hist = (hist_t *) zmalloc (sizeof (hist_t));
    int64_t warmup = o->count / 10 < 1000 ? o->count / 10 : 1000;
    int64_t errors = 0;
    uint64_t deadline = s_now_ns ()
                      + (uint64_t) o->duration * 1000000000ULL;
    uint64_t start = 0, stop = 0;
    int64_t i, done = 0;
    for (i = -warmup; i < o->count; i++) {
        if (i == 0)
            start = s_now_ns ();
        if (s_now_ns () >= deadline || zsys_interrupted)
            break;
        uint64_t t0 = s_now_ns ();
        zframe_t *frame = zframe_new (body, (size_t) o->size);
        if (zframe_send (&frame, dealer, 0)) {
            zframe_destroy (&frame);
            errors++;
            break;
        }
        frame = zframe_recv (dealer);
        if (!frame) {
            errors++;
            break;
        }
        if (i >= 0) {
            s_hist_add (hist, s_now_ns () - t0);
            done++;
        }
        zframe_destroy (&frame);
    }
    stop = s_now_ns ();
    double secs = start && stop > start ? (double) (stop - start) / 1e9 : 0;
    double rate = secs > 0 ? (double) done / secs : 0;
    double p50 = s_hist_quantile_us (hist, 0.50);
    double p99 = s_hist_quantile_us (hist, 0.99);
    double p999 = s_hist_quantile_us (hist, 0.999);
    printf ("bench rtt: bare DEALER/ROUTER echo over tcp://127.0.0.1 (echo "
            "thread with its own context), "
            "size=%" PRId64 "\n", o->size);
    printf ("  round trips %" PRId64 " in %.2f s, %" PRId64 " errors\n",
            done, secs, errors);
    printf ("  latency   p50 %.0f us, p99 %.0f us, p999 %.0f us, "
            "max %.0f us\n", p50, p99, p999, (double) hist->max / 1000.0);
    printf ("RESULT mode=rtt size=%" PRId64 " clients=1 msgs=%" PRId64
            " secs=%.3f errors=%" PRId64 " msgs_per_s=%.0f p50_us=%.1f"
            " p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
            o->size, done, secs, errors, rate, p50, p99, p999,
            (double) hist->max / 1000.0);
    fflush (stdout);
    zsock_destroy (&dealer);
    atomic_store (&echo.stop, true);
    pthread_join (thread, NULL);
    zmq_ctx_term (echo.ctx);
    pthread_mutex_destroy (&echo.lock);
    pthread_cond_destroy (&echo.cond);
    free (body);
    free (hist);
    return errors || done == 0 ? 1 : 0;
}

//  --------------------------------------------------------------------

int
zr_cli_bench (int argc, char **argv)
{
    //  actors/cli.h passes the command name as argv[0]; skip it, so
    //  argv[0] is the subcommand either way.
    if (argc >= 1 && argv [0] && streq (argv [0], "bench")) {
        argc--;
        argv++;
    }
    if (argc < 1 || !argv [0] || streq (argv [0], "--help")
    ||  streq (argv [0], "-h") || streq (argv [0], "help")) {
        s_usage (argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    const char *sub = argv [0];
    if (!streq (sub, "produce") && !streq (sub, "consume")
    &&  !streq (sub, "rtt")) {
        fprintf (stderr, "zrocket bench: unknown subcommand '%s' (produce, "
                 "consume or rtt)\n", sub);
        return 2;
    }
    opts_t opts;
    int rc = s_parse_opts (argc, argv, &opts);
    if (rc == 1) {
        s_usage (stdout);
        return 0;
    }
    if (rc)
        return 2;
    zsys_init ();               //  before any thread makes a socket
    if (streq (sub, "produce"))
        return s_bench_produce (&opts);
    if (streq (sub, "consume"))
        return s_bench_consume (&opts);
    return s_bench_rtt (&opts);
}
