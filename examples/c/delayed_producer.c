/*  examples/c/delayed_producer.c - delayed messages and a batch.

    Sends COUNT messages to TOPIC, message i delayed by i * 500 ms (plus
    one at RocketMQ delay level 1 = 1 s), then a batch of 4 messages that
    is stored atomically in one queue. Prints each result.

    Run against a development fabric:
        zrocket dev &                     # broker on 127.0.0.1:10911
        ./delayed_producer tcp://127.0.0.1:10911 demo 5
        zrocket consume --topic demo --from first --timeout 5
    The delayed bodies show up as their time comes.
*/
#include <zrocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc < 4) {
        fprintf (stderr, "usage: %s BROKER TOPIC COUNT\n", argv [0]);
        return 2;
    }
    int count = atoi (argv [3]);
    zr_producer_t *producer = zr_producer_new (argv [1]);
    if (!producer) {
        fprintf (stderr, "bad endpoint %s\n", argv [1]);
        return 2;
    }
    int rc = 0;
    for (int i = 0; i <= count && rc == 0; i++) {
        char body [64];
        snprintf (body, sizeof body, "delayed %d", i);
        zr_message_t *msg = zr_message_new (argv [2], body, strlen (body));
        if (i < count)
            zr_message_set_delay (msg, (int64_t) i * 500);
        else
            zr_message_set_delay_level (msg, 1);
        zr_send_result_t result;
        if (zr_producer_send (producer, msg, &result) == 0)
            printf ("%s due at %lld\n", result.msg_id,
                    (long long) result.deliver_at);
        else {
            fprintf (stderr, "%s: %s\n", zr_status_str (result.status),
                     result.reason);
            rc = 1;
        }
        zr_message_destroy (&msg);
    }
    zr_message_t *batch [4];
    for (int i = 0; i < 4; i++) {
        char body [64];
        snprintf (body, sizeof body, "batch %d", i);
        batch [i] = zr_message_new (argv [2], body, strlen (body));
    }
    zr_send_result_t results [4];
    if (rc == 0 && zr_producer_send_batch (producer, batch, 4, results) == 0)
        for (int i = 0; i < 4; i++)
            printf ("%s queue %d offset %lld\n", results [i].msg_id,
                    results [i].queue, (long long) results [i].offset);
    else
    if (rc == 0) {
        fprintf (stderr, "batch: %s: %s\n", zr_status_str (results [0].status),
                 results [0].reason);
        rc = 1;
    }
    for (int i = 0; i < 4; i++)
        zr_message_destroy (&batch [i]);
    zr_producer_destroy (&producer);
    return rc;
}
