/*  cluster_consumer.c - a member of a consumer group in clustering mode:
    the group's members share the topic's queues, and each message is
    handled by exactly one of them.

    Build against an installed zrocket (or `make` in this directory):

        cc cluster_consumer.c $(pkg-config --cflags --libs zrocket) \
            -o cluster_consumer

    Run against `zrocket dev` (a nameserver on 127.0.0.1:9876 and a
    broker), in two or three terminals:

        zrocket dev
        ./cluster_consumer tcp://127.0.0.1:9876 demo-group demo
        ./cluster_consumer tcp://127.0.0.1:9876 demo-group demo
        seq 1 100 | zrocket send --topic demo

    Each line printed is "CLIENT_ID TOPIC QUEUE OFFSET BODY": the queues
    are split between the running members, and when one stops (Ctrl-C)
    the others take its queues over within a few seconds. FABRIC may also
    be "broker:tcp://127.0.0.1:10911" for a broker without a nameserver.
    `zrocket group status demo-group` shows who owns which queue.
*/
#include <zrocket.h>
#include <unistd.h>

static char s_client_id [64];

static zr_consume_result_t
s_handler (zr_message_t *msg, void *arg)
{
    (void) arg;
    //  One printf per message: lines from handler threads do not mix
    printf ("%s %s %d %lld %.*s\n", s_client_id, zr_message_topic (msg),
            zr_message_queue (msg), (long long) zr_message_offset (msg),
            (int) zr_message_size (msg),
            (const char *) zr_message_body (msg));
    fflush (stdout);
    return ZR_CONSUME_SUCCESS;
}

int
main (int argc, char *argv [])
{
    if (argc != 4) {
        fprintf (stderr, "usage: cluster_consumer FABRIC GROUP TOPIC\n");
        return 2;
    }
    zsys_set_logstream (stderr);
    char host [32] = "host";
    gethostname (host, sizeof host - 1);
    host [sizeof host - 1] = 0;
    snprintf (s_client_id, sizeof s_client_id, "cluster-%s-%d", host,
              (int) getpid ());

    zr_push_consumer_t *consumer = zr_push_consumer_new (argv [1], argv [2]);
    if (!consumer) {
        fprintf (stderr, "cluster_consumer: '%s' is not a group name\n",
                 argv [2]);
        return 2;
    }
    int rc = 1;
    char *err = NULL;
    if (zr_push_consumer_set_mode (consumer, "clustering")
    ||  zr_push_consumer_set_client_id (consumer, s_client_id)
    ||  zr_push_consumer_set_from (consumer, "first")
    ||  zr_push_consumer_subscribe (consumer, argv [3]))
        fprintf (stderr, "cluster_consumer: bad setting or topic name\n");
    else
    if (zr_push_consumer_start (consumer, s_handler, NULL, &err))
        fprintf (stderr, "cluster_consumer: %s\n", err ? err : "no start");
    else {
        fprintf (stderr, "cluster_consumer: %s in group %s, Ctrl-C stops\n",
                 s_client_id, argv [2]);
        //  The consumer works in its own threads; wait for Ctrl-C
        while (!zsys_interrupted)
            zclock_sleep (200);
        zr_push_consumer_stop (consumer);
        rc = 0;
    }
    free (err);
    zr_push_consumer_destroy (&consumer);
    return rc;
}
