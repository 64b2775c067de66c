/*  actors/cli_send.c - `zrocket send`: one message from BODY, or one per
    line of standard input, sent as each line arrives. Sends are pipelined
    (async) while more input is already waiting, and every reply is
    printed in input order; before blocking on a slow writer the command
    waits for the replies it has, so each line's result shows promptly.
*/
#include "actors/cli.h"
#include "client/client.h"
#include "broker/delay.h"
#include <poll.h>
#include <unistd.h>

static const zr_cli_opt_t s_opts [] = {
    { "topic", "TOPIC", "topic to send to (required)" },
    { "tag", "TAG", "message tag" },
    { "key", "KEY", "message keys (space-separated; indexed for lookup)" },
    { "queue", "Q", "queue number (default: the broker chooses)" },
    { "shard", "KEY", "sharding key: same key, same queue" },
    { "prop", "NAME=VALUE", "user property (repeatable)" },
    { "inflight", "N", "most sends in flight when input is waiting "
                       "(default 256; 1 sends one at a time)" },
    { "delay", "DURATION", "deliver after this long (500ms, 30s, 2m, 1h, "
                           "1d; a bare number is ms)" },
    { "at", "TIME", "deliver at TIME (ms since the epoch, or ISO-8601 "
                    "YYYY-MM-DDTHH:MM[:SS][Z])" },
    { "batch", "N", "send input lines N to a request (SEND_BATCH: stored "
                    "atomically in one queue)" },
    ZR_CLI_CLIENT_OPTS,
    { NULL, NULL, NULL }
};

#define S_OPT_PROP 5             //  index of "prop" in s_opts

typedef struct {
    bool done;
    zr_send_result_t result;
} s_pending_t;

typedef struct {
    zr_producer_t *producer;
    zlistx_t *pending;          //  s_pending_t in input order
    zlistx_t *orphans;          //  given up on; freed after the producer
    int timeout_ms;
    const char *endpoint;       //  broker, or nameservers when routed
    bool routed;                //  through nameservers
    size_t sent, ok, stored, failed;
    int64_t delay_ms;           //  --delay, or -1
    int64_t deliver_at;         //  --at, or -1
    size_t batch;               //  --batch N, or 0
    zr_message_t **group;       //  --batch: messages read, not yet sent
    size_t grouped;
} s_sender_t;

static void
s_on_result (const zr_send_result_t *result, void *arg)
{
    s_pending_t *p = (s_pending_t *) arg;
    p->result = *result;
    p->done = true;
}

//  Prints and drops the finished sends at the head of the list.
static void
s_print_done (s_sender_t *self)
{
    s_pending_t *p = (s_pending_t *) zlistx_first (self->pending);
    bool printed = false;
    while (p && p->done) {
        zr_send_result_t *r = &p->result;
        if ((r->status == ZR_SEND_OK || zr_status_stored (r->status))
        &&  r->deliver_at > 0) {
            printf ("%s\t%s\t%d\t%" PRId64 "\t%" PRId64 "\n",
                    zr_status_str (r->status), r->msg_id, r->queue,
                    r->offset, r->deliver_at);
            self->ok += r->status == ZR_SEND_OK;
            self->stored += r->status != ZR_SEND_OK;
        }
        else
        if (r->status == ZR_SEND_OK || zr_status_stored (r->status)) {
            printf ("%s\t%s\t%d\t%" PRId64 "\n", zr_status_str (r->status),
                    r->msg_id, r->queue, r->offset);
            if (r->status == ZR_SEND_OK)
                self->ok++;
            else
                self->stored++;
        }
        else {
            const char *reason = r->reason;
            char why [320];
            if (r->status == ZR_TIMEOUT && !*reason) {
                if (self->routed)
                    snprintf (why, sizeof why, "no reply from any broker "
                              "routed by %s within %d ms", self->endpoint,
                              self->timeout_ms);
                else
                    snprintf (why, sizeof why, "no reply from broker at %s "
                              "within %d ms", self->endpoint,
                              self->timeout_ms);
                reason = why;
            }
            printf ("%s\t%s\n", zr_status_str (r->status),
                    *reason ? reason : "-");
            self->failed++;
        }
        printed = true;
        zlistx_delete (self->pending, NULL);
        free (p);
        p = (s_pending_t *) zlistx_first (self->pending);
    }
    if (printed)
        fflush (stdout);
}

static zr_message_t *
s_message (zr_cli_args_t *args, const char *topic, const void *body,
           size_t size)
{
    zr_message_t *msg = zr_message_new (topic, body, size);
    if (!msg)
        return NULL;
    const char *v;
    if ((v = zr_cli_get (args, "tag")))
        zr_message_set_tags (msg, v);
    if ((v = zr_cli_get (args, "key")))
        zr_message_set_keys (msg, v);
    if ((v = zr_cli_get (args, "shard")))
        zr_message_set_sharding_key (msg, v);
    int64_t queue;
    zr_cli_get_int (args, "queue", -1, -1, INT32_MAX, &queue);
    zr_message_set_queue (msg, (int) queue);
    zlist_t *props = args->repeated [S_OPT_PROP];
    for (char *p = props ? (char *) zlist_first (props) : NULL; p;
         p = (char *) zlist_next (props)) {
        char *copy = strdup (p);
        char *eq = strchr (copy, '=');
        *eq = 0;
        zr_message_set_prop (msg, copy, eq + 1);
        free (copy);
    }
    return msg;
}

//  --batch: sends the grouped messages as one SEND_BATCH and prints a
//  line per message.
static void
s_batch_flush (s_sender_t *self)
{
    if (self->grouped == 0)
        return;
    zr_send_result_t *results = (zr_send_result_t *) calloc (
        self->grouped, sizeof (zr_send_result_t));
    zr_producer_send_batch (self->producer, self->group, self->grouped,
                            results);
    for (size_t i = 0; i < self->grouped; i++) {
        s_pending_t *p = (s_pending_t *) zmalloc (sizeof *p);
        p->done = true;
        p->result = results [i];
        zlistx_add_end (self->pending, p);
        zr_message_destroy (&self->group [i]);
        self->sent++;
    }
    self->grouped = 0;
    free (results);
    s_print_done (self);
}

//  Sends one message (async); returns 0, or -1 on a local error.
static int
s_send (s_sender_t *self, zr_cli_args_t *args, const char *topic,
        const void *body, size_t size)
{
    zr_message_t *msg = s_message (args, topic, body, size);
    if (!msg)
        return -1;
    if (self->delay_ms >= 0)
        zr_message_set_delay (msg, self->delay_ms);
    if (self->deliver_at >= 0)
        zr_message_set_deliver_at (msg, self->deliver_at);
    if (self->batch > 0) {
        self->group [self->grouped++] = msg;
        if (self->grouped == self->batch)
            s_batch_flush (self);
        return 0;
    }
    s_pending_t *p = (s_pending_t *) zmalloc (sizeof *p);
    zlistx_add_end (self->pending, p);
    int rc = zr_producer_send_async (self->producer, msg, s_on_result, p);
    zr_message_destroy (&msg);
    if (rc) {
        p->done = true;
        p->result.status = ZR_TIMEOUT;
        snprintf (p->result.reason, sizeof p->result.reason,
                  "could not send to %s", self->endpoint);
    }
    self->sent++;
    s_print_done (self);
    return 0;
}

//  Waits for every reply and prints them.
static void
s_drain (s_sender_t *self)
{
    s_batch_flush (self);
    if (zlistx_size (self->pending) > 0)
        zr_producer_flush (self->producer, self->timeout_ms + 1000);
    s_print_done (self);
    //  Anything still unanswered did not get a callback: report it
    s_pending_t *p;
    while ((p = (s_pending_t *) zlistx_first (self->pending)) && !p->done) {
        //  The producer may still call back into p: keep it alive
        s_pending_t *copy = (s_pending_t *) zmalloc (sizeof *copy);
        copy->done = true;
        copy->result.status = ZR_TIMEOUT;
        zlistx_delete (self->pending, NULL);
        zlistx_add_start (self->pending, copy);
        zlistx_add_end (self->orphans, p);
        s_print_done (self);
    }
}

//  Line reader on fd 0 that knows whether a whole line is buffered.
typedef struct {
    char *buf;
    size_t size, used, start;
    bool eof;
} s_reader_t;

//  Returns true when a whole line (or the last, unterminated one) is
//  ready without reading.
static bool
s_line_ready (s_reader_t *r)
{
    return memchr (r->buf + r->start, '\n', r->used - r->start) != NULL
        || (r->eof && r->used > r->start);
}

//  Reads more input (blocking). Returns -1 at EOF/error.
static int
s_fill (s_reader_t *r)
{
    if (r->start > 0) {
        memmove (r->buf, r->buf + r->start, r->used - r->start);
        r->used -= r->start;
        r->start = 0;
    }
    if (r->used == r->size) {
        r->size *= 2;
        r->buf = (char *) realloc (r->buf, r->size);
        assert (r->buf);
    }
    ssize_t n = read (STDIN_FILENO, r->buf + r->used, r->size - r->used);
    if (n < 0 && errno == EINTR)
        return zsys_interrupted ? -1 : 0;
    if (n <= 0) {
        r->eof = true;
        return -1;
    }
    r->used += (size_t) n;
    return 0;
}

//  Next line (borrowed, NUL-terminated, no newline), or NULL when done.
static char *
s_next_line (s_reader_t *r, size_t *len)
{
    if (!s_line_ready (r))
        return NULL;
    char *line = r->buf + r->start;
    char *nl = (char *) memchr (line, '\n', r->used - r->start);
    size_t n = nl ? (size_t) (nl - line) : r->used - r->start;
    //  NUL-terminate: room exists when the line ends with '\n'; else grow
    if (!nl) {
        if (r->used == r->size) {
            r->size *= 2;
            r->buf = (char *) realloc (r->buf, r->size);
            assert (r->buf);
            line = r->buf + r->start;
        }
    }
    line [n] = 0;
    r->start += nl ? n + 1 : n;
    if (n > 0 && line [n - 1] == '\r')
        line [--n] = 0;
    *len = n;
    return line;
}

static bool
s_stdin_readable (void)
{
    struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
    return poll (&pfd, 1, 0) > 0;
}

int
zr_cli_send (int argc, char **argv)
{
    zr_cli_args_t args;
    if (zr_cli_parse ("send", s_opts, 1, argc, argv, &args)) {
        zr_cli_args_free (&args);
        return 2;
    }
    int rc = 2;
    s_sender_t self = { 0 };
    s_reader_t reader = { 0 };
    zr_cli_fabric_t fabric = { 0 };
    if (args.help) {
        zr_cli_usage (stdout,
            "zrocket send --topic TOPIC [--tag TAG] [--key KEY] [--queue Q] "
            "[--shard KEY]\n"
            "                    [--prop NAME=VALUE]... [--delay DURATION | "
            "--at TIME]\n"
            "                    [--batch N] [BODY]",
            "Sends BODY as one message; without BODY, each line of standard\n"
            "input (without its newline) is one message, sent as it is read.\n"
            "Prints one line per message, in input order:\n"
            "  STATUS<TAB>MSG_ID<TAB>QUEUE<TAB>OFFSET   when stored (SEND_OK, "
            "or\n"
            "      FLUSH_DISK_TIMEOUT, FLUSH_SLAVE_TIMEOUT, "
            "SLAVE_NOT_AVAILABLE)\n"
            "  STATUS<TAB>REASON                        when not stored\n"
            "  STATUS<TAB>MSG_ID<TAB>-1<TAB>-1<TAB>DELIVER_AT  when delayed "
            "(--delay,\n"
            "      --at: queue and offset are chosen at delivery)\n"
            "Exit status: 0 all SEND_OK; 3 all stored, some durability not\n"
            "confirmed; 1 some message not stored; 2 usage error.\n"
            "Through a nameserver, sends spread over every broker serving\n"
            "the topic, and a send a broker does not answer is retried on\n"
            "another (same MSG_ID)."
            ZR_CLI_FABRIC_HELP,
            s_opts);
        rc = 0;
        goto done;
    }
    const char *topic = zr_cli_get (&args, "topic");
    if (!topic || !*topic) {
        fprintf (stderr, "zrocket send: --topic is required\n");
        goto done;
    }
    int64_t queue, inflight, batch;
    if (zr_cli_get_int (&args, "queue", -1, -1, INT32_MAX, &queue)
    ||  zr_cli_get_int (&args, "inflight", 256, 1, 65536, &inflight)
    ||  zr_cli_get_int (&args, "batch", 0, 1, 1024, &batch))
        goto done;
    self.delay_ms = -1;
    self.deliver_at = -1;
    self.batch = (size_t) batch;
    const char *delay = zr_cli_get (&args, "delay");
    const char *at = zr_cli_get (&args, "at");
    if (delay && at) {
        fprintf (stderr, "zrocket send: give --delay or --at, not both\n");
        goto done;
    }
    if (delay && zr_delay_parse_duration (delay, &self.delay_ms)) {
        fprintf (stderr, "zrocket send: --delay: '%s' is not a duration "
                 "(a number with ms, s, m, h or d, e.g. 500ms or 30s)\n",
                 delay);
        goto done;
    }
    if (at && zr_cli_parse_time (at, &self.deliver_at)) {
        fprintf (stderr, "zrocket send: --at: '%s' is not a time (ms since "
                 "the epoch, or YYYY-MM-DDTHH:MM[:SS][Z])\n", at);
        goto done;
    }
    if (self.batch && (delay || at)) {
        fprintf (stderr, "zrocket send: --batch cannot be delayed (--delay, "
                 "--at)\n");
        goto done;
    }
    if (self.batch)
        self.group = (zr_message_t **) calloc (self.batch,
                                               sizeof (zr_message_t *));
    zlist_t *props = args.repeated [S_OPT_PROP];
    for (char *p = props ? (char *) zlist_first (props) : NULL; p;
         p = (char *) zlist_next (props))
        if (!strchr (p, '=') || *p == '=') {
            fprintf (stderr, "zrocket send: --prop: '%s' is not "
                     "NAME=VALUE\n", p);
            goto done;
        }
    {
        zr_message_t *probe = zr_message_new (topic, "", 0);
        if (!probe) {
            fprintf (stderr, "zrocket send: --topic: '%s' is not a valid "
                     "topic name (1..127 of A-Z a-z 0-9 _ - %% |)\n", topic);
            goto done;
        }
        zr_message_destroy (&probe);
    }
    rc = zr_cli_fabric_find (&args, &fabric);
    if (rc)
        goto done;
    rc = 1;
    self.timeout_ms = fabric.timeout_ms;
    if (fabric.nameservers) {
        //  Routed: a nameserver must answer before we read any input
        self.routed = true;
        self.endpoint = fabric.nameservers;
        zr_reply_t *pong = zr_cli_ns_call (fabric.nameservers, "PING", NULL,
                                           self.timeout_ms, NULL);
        if (!pong)
            goto done;
        zr_reply_destroy (&pong);
        self.producer = zr_producer_new_routed (fabric.nameservers);
    }
    else {
        self.endpoint = fabric.broker;
        if (zr_cli_ping_broker (self.endpoint, self.timeout_ms, NULL))
            goto done;
        self.producer = zr_producer_new (self.endpoint);
    }
    if (!self.producer) {
        fprintf (stderr, "zrocket send: cannot connect to '%s'\n",
                 self.endpoint);
        goto done;
    }
    zr_producer_set_timeout (self.producer, self.timeout_ms);
    zr_producer_set_max_inflight (self.producer, (int) inflight);
    self.pending = zlistx_new ();
    self.orphans = zlistx_new ();

    if (args.npos == 1)
        s_send (&self, &args, topic, args.pos [0], strlen (args.pos [0]));
    else {
        reader.size = 65536;
        reader.buf = (char *) malloc (reader.size);
        assert (reader.buf);
        while (!zsys_interrupted) {
            size_t len;
            char *line = s_next_line (&reader, &len);
            if (line) {
                s_send (&self, &args, topic, line, len);
                continue;
            }
            if (reader.eof)
                break;
            //  No whole line buffered: if the writer is slow, show the
            //  results we have before blocking on it
            if ((zlistx_size (self.pending) > 0 || self.grouped > 0)
            &&  !s_stdin_readable ())
                s_drain (&self);
            s_fill (&reader);
        }
    }
    s_drain (&self);
    rc = self.failed > 0 ? 1 : self.stored > 0 ? 3 : 0;
done:
    zr_producer_destroy (&self.producer);
    zlistx_t *lists [2] = { self.pending, self.orphans };
    for (int i = 0; i < 2; i++) {
        s_pending_t *p;
        while (lists [i] && (p = (s_pending_t *) zlistx_first (lists [i]))) {
            zlistx_delete (lists [i], NULL);
            free (p);
        }
        zlistx_destroy (&lists [i]);
    }
    free (reader.buf);
    for (size_t i = 0; i < self.grouped; i++)
        zr_message_destroy (&self.group [i]);
    free (self.group);
    zr_cli_fabric_free (&fabric);
    zr_cli_args_free (&args);
    return rc;
}
