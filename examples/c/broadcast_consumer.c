/*  broadcast_consumer.c - a member of a consumer group in broadcast mode:
    every member gets every message, and each keeps its own position in
    a file under OFFSET_DIR (not on the broker), so a restarted member
    resumes where it stopped.

    Build against an installed zrocket (or `make` in this directory):

        cc broadcast_consumer.c $(pkg-config --cflags --libs zrocket) \
            -o broadcast_consumer

    Run against `zrocket dev` (a nameserver on 127.0.0.1:9876), two
    members with their own offset directories:

        zrocket dev
        ./broadcast_consumer tcp://127.0.0.1:9876 news-readers news /tmp/a
        ./broadcast_consumer tcp://127.0.0.1:9876 news-readers news /tmp/b
        seq 1 10 | zrocket send --topic news

    Both print all 10 bodies as "CLIENT_ID QUEUE OFFSET BODY". Stop one
    (Ctrl-C), send more, start it again with the same directory: it
    prints only what it had not seen.
*/
#include <zrocket.h>
#include <unistd.h>

static char s_client_id [64];

static zr_consume_result_t
s_handler (zr_message_t *msg, void *arg)
{
    (void) arg;
    printf ("%s %d %lld %.*s\n", s_client_id, zr_message_queue (msg),
            (long long) zr_message_offset (msg), (int) zr_message_size (msg),
            (const char *) zr_message_body (msg));
    fflush (stdout);
    return ZR_CONSUME_SUCCESS;
}

int
main (int argc, char *argv [])
{
    if (argc != 5) {
        fprintf (stderr, "usage: broadcast_consumer FABRIC GROUP TOPIC "
                 "OFFSET_DIR\n");
        return 2;
    }
    zsys_set_logstream (stderr);
    char host [32] = "host";
    gethostname (host, sizeof host - 1);
    host [sizeof host - 1] = 0;
    snprintf (s_client_id, sizeof s_client_id, "broadcast-%s-%d", host,
              (int) getpid ());
    if (zsys_dir_create ("%s", argv [4])) {
        fprintf (stderr, "broadcast_consumer: cannot create '%s'\n",
                 argv [4]);
        return 1;
    }
    zr_push_consumer_t *consumer = zr_push_consumer_new (argv [1], argv [2]);
    if (!consumer) {
        fprintf (stderr, "broadcast_consumer: '%s' is not a group name\n",
                 argv [2]);
        return 2;
    }
    int rc = 1;
    char *err = NULL;
    if (zr_push_consumer_set_mode (consumer, "broadcast")
    ||  zr_push_consumer_set_offset_dir (consumer, argv [4])
    ||  zr_push_consumer_set_client_id (consumer, s_client_id)
    ||  zr_push_consumer_set_from (consumer, "first")
    ||  zr_push_consumer_subscribe (consumer, argv [3]))
        fprintf (stderr, "broadcast_consumer: bad setting or topic name\n");
    else
    if (zr_push_consumer_start (consumer, s_handler, NULL, &err))
        fprintf (stderr, "broadcast_consumer: %s\n", err ? err : "no start");
    else {
        fprintf (stderr, "broadcast_consumer: %s, offsets in %s, Ctrl-C "
                 "stops\n", s_client_id, argv [4]);
        while (!zsys_interrupted)
            zclock_sleep (200);
        //  Writes the local offsets file
        zr_push_consumer_stop (consumer);
        rc = 0;
    }
    free (err);
    zr_push_consumer_destroy (&consumer);
    return rc;
}
