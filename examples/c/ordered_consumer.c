/*  ordered_consumer.c - an orderly member of a consumer group: each
    queue's messages reach the handler one at a time, in offset order, so
    the messages of one sharding key (one queue) arrive in send order.
    It checks that: ordered_producer's bodies are "KEY SEQ", and a SEQ not
    above the key's last one is reported (equal: a duplicate; lower: an
    order violation).

    A body that starts with "poison" fails every time: the consumer
    retries it in place a few times, then it goes to the group's
    dead-letter queue and its queue carries on (see `zrocket dlq list
    GROUP`).

    Build against an installed zrocket (or `make` in this directory):

        cc ordered_consumer.c $(pkg-config --cflags --libs zrocket) \
            -o ordered_consumer

    Run against `zrocket dev` (a nameserver on 127.0.0.1:9876):

        zrocket dev
        ./ordered_consumer tcp://127.0.0.1:9876 order-group orders 1000
        ./ordered_producer tcp://127.0.0.1:9876 orders 1000 16

    Arguments: FABRIC GROUP TOPIC [COUNT [IDLE_SECONDS]]. It stops after
    COUNT good messages (0: at Ctrl-C), or after IDLE_SECONDS (default
    10) without a message, then prints one summary line and exits 0 when
    there was no order violation and COUNT messages arrived.
*/
#include <zrocket.h>
#include <pthread.h>

typedef struct {
    pthread_mutex_t lock;
    zhashx_t *last;             //  key -> last SEQ (long *)
    long good, duplicates, violations, poison;
    int64_t last_msg;           //  zclock_mono of the last message
} s_state_t;

static zr_consume_result_t
s_handler (zr_message_t *msg, void *arg)
{
    s_state_t *self = (s_state_t *) arg;
    char body [128];
    size_t size = zr_message_size (msg);
    if (size >= sizeof body)
        size = sizeof body - 1;
    memcpy (body, zr_message_body (msg), size);
    body [size] = 0;
    pthread_mutex_lock (&self->lock);
    self->last_msg = zclock_mono ();
    if (strncmp (body, "poison", 6) == 0) {
        self->poison++;
        pthread_mutex_unlock (&self->lock);
        return ZR_CONSUME_RETRY;
    }
    char key [64];
    long seq;
    if (sscanf (body, "%63s %ld", key, &seq) != 2) {
        fprintf (stderr, "ordered_consumer: not a KEY SEQ body: '%s'\n",
                 body);
        self->violations++;
    }
    else {
        long *last = (long *) zhashx_lookup (self->last, key);
        if (!last) {
            last = (long *) calloc (1, sizeof *last);
            zhashx_insert (self->last, key, last);
        }
        if (seq == *last) {
            self->duplicates++;
            printf ("DUPLICATE %s %ld (queue %d)\n", key, seq,
                    zr_message_queue (msg));
        }
        else
        if (seq < *last) {
            self->violations++;
            printf ("VIOLATION %s %ld after %ld (queue %d)\n", key, seq,
                    *last, zr_message_queue (msg));
        }
        else {
            *last = seq;
            self->good++;
        }
    }
    pthread_mutex_unlock (&self->lock);
    return ZR_CONSUME_SUCCESS;
}

int
main (int argc, char *argv [])
{
    if (argc < 4 || argc > 6) {
        fprintf (stderr, "usage: ordered_consumer FABRIC GROUP TOPIC "
                 "[COUNT [IDLE_SECONDS]]\n");
        return 2;
    }
    zsys_set_logstream (stderr);
    long count = argc > 4 ? atol (argv [4]) : 0;
    long idle_s = argc > 5 ? atol (argv [5]) : 10;
    s_state_t state;
    memset (&state, 0, sizeof state);
    pthread_mutex_init (&state.lock, NULL);
    state.last = zhashx_new ();
    zhashx_set_destructor (state.last, (zhashx_destructor_fn *) zstr_free);

    zr_push_consumer_t *consumer = zr_push_consumer_new (argv [1], argv [2]);
    if (!consumer) {
        fprintf (stderr, "ordered_consumer: '%s' is not a group name\n",
                 argv [2]);
        zhashx_destroy (&state.last);
        return 2;
    }
    int rc = 1;
    char *err = NULL;
    if (zr_push_consumer_set_orderly (consumer, true)
    ||  zr_push_consumer_set_from (consumer, "first")
    ||  zr_push_consumer_subscribe (consumer, argv [3]))
        fprintf (stderr, "ordered_consumer: bad setting or topic name\n");
    else
    if (zr_push_consumer_start (consumer, s_handler, &state, &err))
        fprintf (stderr, "ordered_consumer: %s\n", err ? err : "no start");
    else {
        state.last_msg = zclock_mono ();
        while (!zsys_interrupted) {
            pthread_mutex_lock (&state.lock);
            bool enough = count > 0 && state.good >= count;
            bool idle = count > 0
                     && zclock_mono () - state.last_msg > idle_s * 1000;
            pthread_mutex_unlock (&state.lock);
            if (enough || idle)
                break;
            zclock_sleep (100);
        }
        zr_push_consumer_stop (consumer);
        printf ("ordered_consumer: %ld messages, %zu keys, %ld duplicates, "
                "%ld violations, %ld poison attempts\n", state.good,
                zhashx_size (state.last), state.duplicates, state.violations,
                state.poison);
        rc = state.violations == 0 && state.good >= count ? 0 : 1;
    }
    free (err);
    zr_push_consumer_destroy (&consumer);
    zhashx_destroy (&state.last);
    pthread_mutex_destroy (&state.lock);
    return rc;
}
