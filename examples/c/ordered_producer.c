/*  ordered_producer.c - sends N messages over K sharding keys. Messages
    with one sharding key go to one queue, in send order; the body of
    each is "KEY SEQ", SEQ counting 1, 2, 3... per key, so that
    ordered_consumer can check the order it gets them in.

    Build against an installed zrocket (or `make` in this directory):

        cc ordered_producer.c $(pkg-config --cflags --libs zrocket) \
            -o ordered_producer

    Run against `zrocket dev` (a nameserver on 127.0.0.1:9876):

        zrocket dev
        ./ordered_consumer tcp://127.0.0.1:9876 order-group orders 1000
        ./ordered_producer tcp://127.0.0.1:9876 orders 1000 16

    FABRIC may also be "broker:tcp://127.0.0.1:10911" (one broker, no
    nameserver). Exits 0 when every message was stored.
*/
#include <zrocket.h>

int
main (int argc, char *argv [])
{
    if (argc != 5) {
        fprintf (stderr, "usage: ordered_producer FABRIC TOPIC N K\n");
        return 2;
    }
    zsys_set_logstream (stderr);
    long n = atol (argv [3]);
    long k = atol (argv [4]);
    if (n < 1 || k < 1 || k > 1000000) {
        fprintf (stderr, "ordered_producer: N and K must be positive\n");
        return 2;
    }
    const char *fabric = argv [1];
    zr_producer_t *producer = strncmp (fabric, "broker:", 7) == 0
        ? zr_producer_new (fabric + 7) : zr_producer_new_routed (fabric);
    if (!producer) {
        fprintf (stderr, "ordered_producer: cannot reach '%s'\n", fabric);
        return 1;
    }
    long *seq = (long *) calloc ((size_t) k, sizeof *seq);
    long stored = 0;
    for (long i = 0; i < n && seq && !zsys_interrupted; i++) {
        long key = i % k;
        char name [32], body [64];
        snprintf (name, sizeof name, "key-%ld", key);
        snprintf (body, sizeof body, "%s %ld", name, ++seq [key]);
        zr_message_t *msg = zr_message_new (argv [2], body, strlen (body));
        if (!msg) {
            fprintf (stderr, "ordered_producer: '%s' is not a topic name\n",
                     argv [2]);
            break;
        }
        zr_message_set_sharding_key (msg, name);
        //  A sync send: the next message of a key goes out only after
        //  the broker stored this one
        zr_send_result_t result;
        if (zr_producer_send (producer, msg, &result) == 0)
            stored++;
        else {
            fprintf (stderr, "ordered_producer: '%s' not stored: %s %s\n",
                     body, zr_status_str (result.status), result.reason);
            zr_message_destroy (&msg);
            break;
        }
        zr_message_destroy (&msg);
    }
    printf ("ordered_producer: %ld of %ld messages stored over %ld keys\n",
            stored, n, k);
    free (seq);
    zr_producer_destroy (&producer);
    return stored == n ? 0 : 1;
}
