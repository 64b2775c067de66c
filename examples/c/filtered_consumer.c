/*  examples/c/filtered_consumer.c - a pull consumer with a SQL92 filter
    evaluated on the broker (docs/protocol.md section 14).

    Sends 20 messages to TOPIC, message i with properties n=i and
    color=red (even i) or blue, and tag A or B; then reads every queue of
    the topic from its oldest message with the filter EXPR (default
    "n > 10 AND color = 'red'") and prints the bodies that match. The
    others never leave the broker; zr_pull_next moves past them.

    Run against a development fabric:
        zrocket dev &                     # broker on 127.0.0.1:10911
        ./filtered_consumer tcp://127.0.0.1:10911 demo
        ./filtered_consumer tcp://127.0.0.1:10911 demo "TAGS = 'A' AND n IN (2, 4)"
    A malformed expression is refused with its position and reason.
*/
#include <zrocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
main (int argc, char **argv)
{
    if (argc < 3) {
        fprintf (stderr, "usage: %s BROKER TOPIC [EXPR]\n", argv [0]);
        return 2;
    }
    const char *topic = argv [2];
    const char *expr = argc > 3 ? argv [3] : "n > 10 AND color = 'red'";
    zr_producer_t *producer = zr_producer_new (argv [1]);
    zr_consumer_t *consumer = zr_consumer_new (argv [1]);
    if (!producer || !consumer) {
        fprintf (stderr, "bad endpoint %s\n", argv [1]);
        zr_producer_destroy (&producer);
        zr_consumer_destroy (&consumer);
        return 2;
    }
    int rc = 0;
    for (int i = 1; i <= 20 && rc == 0; i++) {
        char body [64], n [16];
        snprintf (body, sizeof body, "message %d", i);
        snprintf (n, sizeof n, "%d", i);
        zr_message_t *msg = zr_message_new (topic, body, strlen (body));
        zr_message_set_tags (msg, i % 3 ? "A" : "B");
        zr_message_set_prop (msg, "n", n);
        zr_message_set_prop (msg, "color", i % 2 ? "blue" : "red");
        zr_send_result_t result;
        if (zr_producer_send (producer, msg, &result)) {
            fprintf (stderr, "send: %s: %s\n", zr_status_str (result.status),
                     result.reason);
            rc = 1;
        }
        zr_message_destroy (&msg);
    }
    int queues = rc ? -1 : zr_consumer_queues (consumer, topic);
    if (rc == 0 && queues <= 0) {
        fprintf (stderr, "cannot read the queues of %s\n", topic);
        rc = 1;
    }
    zr_consumer_set_filter (consumer, "sql", expr);
    int matched = 0;
    for (int q = 0; q < queues && rc == 0; q++) {
        int64_t offset, max;
        if (zr_consumer_queue_offsets (consumer, topic, q, &offset, &max)) {
            rc = 1;
            break;
        }
        while (offset < max) {
            zr_pull_t *pull = zr_consumer_pull (consumer, topic, q, offset,
                                                32, 0);
            if (!pull || zr_pull_status (pull) != ZR_OK) {
                if (pull && zr_pull_status (pull) != ZR_NO_NEW_MSG) {
                    //  A bad expression: "position N: what was expected"
                    fprintf (stderr, "%s: %s\n",
                             zr_status_str (zr_pull_status (pull)),
                             zr_pull_reason (pull));
                    rc = 1;
                }
                zr_pull_destroy (&pull);
                break;
            }
            for (size_t i = 0; i < zr_pull_count (pull); i++) {
                zr_message_t *msg = zr_pull_message (pull, i);
                printf ("queue %d offset %lld: %.*s (n=%s color=%s)\n", q,
                        (long long) zr_message_offset (msg),
                        (int) zr_message_size (msg),
                        (const char *) zr_message_body (msg),
                        zr_message_prop (msg, "n"),
                        zr_message_prop (msg, "color"));
                matched++;
            }
            offset = zr_pull_next (pull);
            zr_pull_destroy (&pull);
        }
    }
    if (rc == 0)
        printf ("%d messages matched %s\n", matched, expr);
    zr_consumer_destroy (&consumer);
    zr_producer_destroy (&producer);
    return rc;
}
