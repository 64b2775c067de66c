/*  embedded.c - a C application that runs a zrocket broker inside itself.

    The broker is a CZMQ actor: zactor_new (zr_broker_actor, cfg), then the
    pipe command START. It binds inproc://embedded (and a tcp endpoint when
    --tcp is given, so other processes can use it too). The application
    then sends 10 messages with a producer and reads them back with the pull
    consumer, both over inproc, which needs no network and shares CZMQ's
    process-wide context with the broker.

    Build against an installed zrocket:

        cc embedded.c $(pkg-config --cflags --libs zrocket) -o embedded

    Run:

        ./embedded [--tcp tcp://127.0.0.1:10911] [--data DIR]

    Without --data it uses a fresh temporary directory and removes it at
    exit; a DIR given with --data should be empty. Prints "received: BODY" per message and exits 0 only when all 10
    messages came back.
*/
#include <zrocket.h>

#define ENDPOINT    "inproc://embedded"
#define TOPIC       "embedded"
#define MESSAGES    10

//  Sends a command on the actor pipe and waits (up to 10 s) for the reply.
//  Returns the reply's first frame, which the caller frees, or NULL. The
//  rest of the reply is printed as "  detail" lines.
static char *
s_pipe_command (zactor_t *broker, const char *command)
{
    if (zstr_send (broker, command))
        return NULL;
    zsock_t *pipe = zactor_sock (broker);
    zsock_set_rcvtimeo (pipe, 10000);
    zmsg_t *reply = zmsg_recv (pipe);
    zsock_set_rcvtimeo (pipe, -1);
    if (!reply)
        return NULL;
    char *status = zmsg_popstr (reply);
    char *detail = zmsg_popstr (reply);
    while (detail) {
        printf ("  %s %s\n", command, detail);
        zstr_free (&detail);
        detail = zmsg_popstr (reply);
    }
    zmsg_destroy (&reply);
    return status;
}

//  Sends MESSAGES messages; returns how many were stored.
static int
s_produce (void)
{
    zr_producer_t *producer = zr_producer_new (ENDPOINT);
    if (!producer) {
        fprintf (stderr, "embedded: cannot create a producer\n");
        return 0;
    }
    int stored = 0;
    for (int i = 0; i < MESSAGES; i++) {
        char body [64];
        snprintf (body, sizeof body, "embedded message %d", i);
        zr_message_t *msg = zr_message_new (TOPIC, body, strlen (body));
        if (!msg)
            break;
        zr_send_result_t result;
        if (zr_producer_send (producer, msg, &result) == 0) {
            printf ("sent: %s -> %s %s queue %d offset %" PRId64 "\n",
                    body, zr_status_str (result.status), result.msg_id,
                    result.queue, result.offset);
            stored++;
        }
        else
            fprintf (stderr, "embedded: send '%s' failed: %s %s\n", body,
                     zr_status_str (result.status), result.reason);
        zr_message_destroy (&msg);
    }
    zr_producer_destroy (&producer);
    return stored;
}

//  Reads every queue of the topic from its first offset; returns the
//  number of messages read, or -1 on an error.
static int
s_consume (void)
{
    zr_consumer_t *consumer = zr_consumer_new (ENDPOINT);
    if (!consumer) {
        fprintf (stderr, "embedded: cannot create a consumer\n");
        return -1;
    }
    int received = 0;
    int queues = zr_consumer_queues (consumer, TOPIC);
    if (queues < 1) {
        fprintf (stderr, "embedded: topic '%s' has no queues\n", TOPIC);
        received = -1;
    }
    for (int queue = 0; queue < queues && received >= 0; queue++) {
        int64_t min, max;
        if (zr_consumer_queue_offsets (consumer, TOPIC, queue, &min, &max)) {
            fprintf (stderr, "embedded: no offsets for queue %d\n", queue);
            received = -1;
            break;
        }
        int64_t offset = min;
        while (offset < max) {
            zr_pull_t *pull = zr_consumer_pull (consumer, TOPIC, queue,
                                                offset, 32, 0);
            if (!pull || zr_pull_status (pull) != ZR_OK) {
                fprintf (stderr, "embedded: pull %d@%" PRId64 ": %s %s\n",
                         queue, offset,
                         pull ? zr_status_str (zr_pull_status (pull))
                              : "local error",
                         pull ? zr_pull_reason (pull) : "");
                zr_pull_destroy (&pull);
                received = -1;
                break;
            }
            for (size_t i = 0; i < zr_pull_count (pull); i++) {
                zr_message_t *msg = zr_pull_message (pull, i);
                printf ("received: %.*s (queue %d offset %" PRId64 ")\n",
                        (int) zr_message_size (msg),
                        (const char *) zr_message_body (msg),
                        zr_message_queue (msg), zr_message_offset (msg));
                received++;
            }
            int64_t next = zr_pull_next (pull);
            zr_pull_destroy (&pull);
            if (next <= offset)
                break;              //  no progress: do not spin
            offset = next;
        }
    }
    zr_consumer_destroy (&consumer);
    return received;
}

int
main (int argc, char *argv [])
{
    const char *tcp = NULL;
    const char *data = NULL;
    for (int i = 1; i < argc; i++) {
        if (streq (argv [i], "--tcp") && i + 1 < argc)
            tcp = argv [++i];
        else
        if (streq (argv [i], "--data") && i + 1 < argc)
            data = argv [++i];
        else {
            fprintf (stderr, "usage: embedded [--tcp ENDPOINT] "
                     "[--data DIR]\n");
            return 2;
        }
    }
    char tempdir [] = "/tmp/zrocket-embedded-XXXXXX";
    if (!data) {
        if (!mkdtemp (tempdir)) {
            fprintf (stderr, "embedded: mkdtemp: %s\n", strerror (errno));
            return 1;
        }
        data = tempdir;
    }

    //  The broker's settings are the "broker/..." keys that
    //  `zrocket broker --help` lists.
    zconfig_t *cfg = zconfig_new ("root", NULL);
    char *bind = tcp ? zsys_sprintf ("%s,%s", ENDPOINT, tcp)
                     : strdup (ENDPOINT);
    zconfig_put (cfg, "broker/data", data);
    zconfig_put (cfg, "broker/bind", bind);
    zconfig_put (cfg, "broker/auto-create", "true");
    free (bind);

    int rc = 1;
    zactor_t *broker = zactor_new (zr_broker_actor, cfg);
    zconfig_destroy (&cfg);             //  the actor copied what it needs
    if (!broker) {
        fprintf (stderr, "embedded: cannot start the broker actor\n");
        goto done;
    }
    char *status = s_pipe_command (broker, "START");
    if (!status || !streq (status, "OK")) {
        fprintf (stderr, "embedded: broker START answered %s\n",
                 status ? status : "nothing");
        zstr_free (&status);
        goto done;
    }
    zstr_free (&status);
    status = s_pipe_command (broker, "ENDPOINTS");
    zstr_free (&status);

    int stored = s_produce ();
    int received = s_consume ();
    printf ("embedded: %d of %d messages stored, %d received\n",
            stored, MESSAGES, received);
    if (stored == MESSAGES && received == MESSAGES)
        rc = 0;
done:
    zactor_destroy (&broker);           //  $TERM: the broker closes its store
    if (data == tempdir) {
        zdir_t *dir = zdir_new (tempdir, NULL);
        if (dir)
            zdir_remove (dir, true);
        zdir_destroy (&dir);
    }
    return rc;
}
