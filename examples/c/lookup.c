/*  examples/c/lookup.c - finding messages by key and by id through the
    broker's indexes (FIND, docs/protocol.md section 15).

    Sends one message to TOPIC with keys "KEY order-demo" and prints its
    id, then looks it up by KEY and by that id with zr_consumer_find and
    prints what each lookup returned.

    Run against a development fabric:
        zrocket dev &                     # broker on 127.0.0.1:10911
        ./lookup tcp://127.0.0.1:10911 demo order-42
        zrocket msg find --topic demo --key order-42    # the same, CLI
*/
#include <zrocket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Prints a lookup's messages; returns how many, or -1 on an error.
static int
s_print (const char *what, zr_pull_t *found)
{
    if (!found || zr_pull_status (found) != ZR_OK) {
        fprintf (stderr, "find %s: %s: %s\n", what,
                 found ? zr_status_str (zr_pull_status (found)) : "error",
                 found ? zr_pull_reason (found) : "bad arguments");
        return -1;
    }
    for (size_t i = 0; i < zr_pull_count (found); i++) {
        zr_message_t *msg = zr_pull_message (found, i);
        printf ("find %s: %s queue %d offset %lld keys '%s': %.*s\n", what,
                zr_message_id (msg), zr_message_queue (msg),
                (long long) zr_message_offset (msg), zr_message_keys (msg),
                (int) zr_message_size (msg),
                (const char *) zr_message_body (msg));
    }
    return (int) zr_pull_count (found);
}

int
main (int argc, char **argv)
{
    if (argc < 4) {
        fprintf (stderr, "usage: %s BROKER TOPIC KEY\n", argv [0]);
        return 2;
    }
    const char *topic = argv [2];
    const char *key = argv [3];
    zr_producer_t *producer = zr_producer_new (argv [1]);
    zr_consumer_t *consumer = zr_consumer_new (argv [1]);
    if (!producer || !consumer) {
        fprintf (stderr, "bad endpoint %s\n", argv [1]);
        zr_producer_destroy (&producer);
        zr_consumer_destroy (&consumer);
        return 2;
    }
    char keys [256];
    snprintf (keys, sizeof keys, "%s order-demo", key);
    const char *body = "a message to look up";
    zr_message_t *msg = zr_message_new (topic, body, strlen (body));
    zr_message_set_keys (msg, keys);
    zr_send_result_t result;
    int rc = zr_producer_send (producer, msg, &result) ? 1 : 0;
    zr_message_destroy (&msg);
    if (rc)
        fprintf (stderr, "send: %s: %s\n", zr_status_str (result.status),
                 result.reason);
    else {
        printf ("sent %s to queue %d offset %lld\n", result.msg_id,
                result.queue, (long long) result.offset);
        //  Every message that carried the key (a key may be reused)
        zr_pull_t *found = zr_consumer_find (consumer, topic, NULL, key, 10);
        int by_key = s_print ("by key", found);
        zr_pull_destroy (&found);
        //  The message with this id
        found = zr_consumer_find (consumer, topic, result.msg_id, NULL, 0);
        int by_id = s_print ("by id", found);
        zr_pull_destroy (&found);
        if (by_key < 1 || by_id != 1) {
            fprintf (stderr, "lookup: expected the message by key and by "
                     "id\n");
            rc = 1;
        }
    }
    zr_consumer_destroy (&consumer);
    zr_producer_destroy (&producer);
    return rc;
}
