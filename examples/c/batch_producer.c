/*  examples/c/batch_producer.c - many messages per request with
    zr_producer_send_batch (SEND_BATCH, docs/protocol.md section 12).

    Sends COUNT messages "batch message I" to TOPIC in batches of SIZE
    (default 100). Each batch is stored atomically in one queue at
    consecutive offsets, or not at all; every message gets its own id and
    offset in the results. Message i carries the key "k<i>" and the
    property n = i. A batch over the broker's limits (more than 1024
    messages, bodies over max-batch-bytes) is refused as a whole and
    nothing of it is stored. The ids, keys and properties of all the
    messages travel in one header frame of at most 64 KiB, so with keys
    and properties like these keep SIZE to a few hundred.

    Run against a development fabric:
        zrocket dev &                     # broker on 127.0.0.1:10911
        ./batch_producer tcp://127.0.0.1:10911 demo 1000 250
        zrocket consume --topic demo --from first --timeout 2
    It prints one line per batch: its queue and offsets, and the first
    and last message ids.
*/
#include <zrocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc < 4) {
        fprintf (stderr, "usage: %s BROKER TOPIC COUNT [SIZE]\n", argv [0]);
        return 2;
    }
    const char *topic = argv [2];
    int count = atoi (argv [3]);
    int size = argc > 4 ? atoi (argv [4]) : 100;
    if (count < 1 || size < 1) {
        fprintf (stderr, "COUNT and SIZE must be positive\n");
        return 2;
    }
    zr_producer_t *producer = zr_producer_new (argv [1]);
    if (!producer) {
        fprintf (stderr, "bad endpoint %s\n", argv [1]);
        return 2;
    }
    zr_message_t **msgs = (zr_message_t **) calloc ((size_t) size,
                                                    sizeof *msgs);
    zr_send_result_t *results = (zr_send_result_t *)
        calloc ((size_t) size, sizeof *results);
    if (!msgs || !results) {
        fprintf (stderr, "out of memory\n");
        free (msgs);
        free (results);
        zr_producer_destroy (&producer);
        return 1;
    }
    int rc = 0;
    for (int first = 0; first < count && rc == 0; first += size) {
        size_t n = (size_t) (count - first < size ? count - first : size);
        for (size_t k = 0; k < n; k++) {
            int i = first + (int) k;
            char body [64], key [32], value [16];
            snprintf (body, sizeof body, "batch message %d", i);
            snprintf (key, sizeof key, "k%d", i);
            snprintf (value, sizeof value, "%d", i);
            msgs [k] = zr_message_new (topic, body, strlen (body));
            zr_message_set_keys (msgs [k], key);
            zr_message_set_prop (msgs [k], "n", value);
        }
        if (zr_producer_send_batch (producer, msgs, n, results) == 0)
            printf ("%zu messages in queue %d, offsets %lld..%lld, ids "
                    "%s..%s\n", n, results [0].queue,
                    (long long) results [0].offset,
                    (long long) results [n - 1].offset, results [0].msg_id,
                    results [n - 1].msg_id);
        else {
            //  Nothing of this batch was stored
            fprintf (stderr, "batch of %zu: %s: %s\n", n,
                     zr_status_str (results [0].status), results [0].reason);
            rc = 1;
        }
        for (size_t k = 0; k < n; k++)
            zr_message_destroy (&msgs [k]);
    }
    free (msgs);
    free (results);
    zr_producer_destroy (&producer);
    return rc;
}
