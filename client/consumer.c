/*  client/consumer.c - zr_consumer_t, the pull consumer: PULL (with long
    poll), TOPIC_INFO, GET_OFFSETS, COMMIT_OFFSET and QUERY_OFFSET over
    one zr_client_t (docs/protocol.md section 5).

    Requests go one at a time with zr_client_call; a reply that comes
    after its request timed out is dropped when the next call reads it.
    A pull that gets no reply in time returns a result with status
    ZR_TIMEOUT (next = the offset asked for, min and max -1); NULL only
    for bad arguments.

    Not thread-safe: a consumer and the zr_pull_t results it returns
    belong to one thread.
*/
#include "client/client.h"

#define ZR_CONSUMER_TIMEOUT 3000

struct _zr_consumer_t {
    zr_client_t *client;
    int timeout;                //  ms, beyond a pull's own wait
    char *filter_type;          //  "tag" or "sql", or NULL: no filter
    char *filter;
};

struct _zr_pull_t {
    zr_status_t status;
    char *reason;
    int64_t next;
    int64_t min;
    int64_t max;
    zr_message_t **msgs;
    size_t count;
};

zr_consumer_t *
zr_consumer_new (const char *endpoint)
{
    zr_client_t *client = zr_client_new (endpoint);
    if (!client)
        return NULL;
    zr_consumer_t *self = (zr_consumer_t *) zmalloc (sizeof (zr_consumer_t));
    assert (self);
    self->client = client;
    self->timeout = ZR_CONSUMER_TIMEOUT;
    return self;
}

void
zr_consumer_destroy (zr_consumer_t **self_p)
{
    assert (self_p);
    zr_consumer_t *self = *self_p;
    if (!self)
        return;
    zr_client_destroy (&self->client);
    zstr_free (&self->filter_type);
    zstr_free (&self->filter);
    free (self);
    *self_p = NULL;
}

void
zr_consumer_set_timeout (zr_consumer_t *self, int timeout_ms)
{
    assert (self);
    self->timeout = timeout_ms > 0 ? timeout_ms : 1;
}

int
zr_consumer_set_filter (zr_consumer_t *self, const char *type,
                        const char *expr)
{
    assert (self);
    if (type && strneq (type, "tag") && strneq (type, "sql"))
        return -1;
    zstr_free (&self->filter_type);
    zstr_free (&self->filter);
    if (expr) {
        self->filter_type = strdup (type ? type : "tag");
        self->filter = strdup (expr);
    }
    return 0;
}

//  Sends the begun request and returns the reply, or NULL on timeout.
//  Errors are the caller's to report (the library does not log them).
static zr_reply_t *
s_call (zr_consumer_t *self, int timeout_ms)
{
    return zr_client_call (self->client, NULL, 0, timeout_ms);
}

//  --------------------------------------------------------------------
//  Pull

static zr_pull_t *
s_pull_new (zr_status_t status, const char *reason, int64_t next)
{
    zr_pull_t *self = (zr_pull_t *) zmalloc (sizeof (zr_pull_t));
    assert (self);
    self->status = status;
    self->reason = strdup (reason ? reason : "");
    assert (self->reason);
    self->next = next;
    self->min = -1;
    self->max = -1;
    return self;
}

void
zr_pull_destroy (zr_pull_t **self_p)
{
    assert (self_p);
    zr_pull_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        zr_message_destroy (&self->msgs [i]);
    free (self->msgs);
    free (self->reason);
    free (self);
    *self_p = NULL;
}

static zr_pull_t *
    s_pull_result (zr_consumer_t *self, const char *cmd, int timeout,
                   int64_t offset);

zr_pull_t *
zr_consumer_pull (zr_consumer_t *self, const char *topic, int queue,
                  int64_t offset, int max_count, int wait_ms)
{
    assert (self);
    if (!topic)
        return NULL;
    if (wait_ms < 0)
        wait_ms = 0;
    if (wait_ms > INT_MAX - self->timeout)
        wait_ms = INT_MAX - self->timeout;      //  the broker rejects it
    zr_enc_t *enc = zr_client_begin (self->client, "PULL",
                                     self->filter ? 7 : 5);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queue", queue);
    zr_enc_kint (enc, "offset", offset);
    zr_enc_kint (enc, "max_count", max_count);
    zr_enc_kint (enc, "wait", wait_ms);
    if (self->filter) {
        zr_enc_kstr (enc, "filter_type", self->filter_type);
        zr_enc_kstr (enc, "filter", self->filter);
    }
    return s_pull_result (self, "PULL", wait_ms + self->timeout, offset);
}

//  Sends the request begun on self->client and makes the result of its
//  reply: status, reason, next/min/max and msgs with their bodies (PULL
//  and FIND). offset: next when the reply has none.
static zr_pull_t *
s_pull_result (zr_consumer_t *self, const char *cmd, int timeout,
               int64_t offset)
{
    zr_reply_t *reply = s_call (self, timeout);
    if (!reply) {
        char reason [256];
        snprintf (reason, sizeof (reason), "no reply from %s within %d ms",
                  zr_client_endpoint (self->client), timeout);
        return s_pull_new (ZR_TIMEOUT, reason, offset);
    }
    zr_status_t status = zr_reply_status (reply);
    zr_pull_t *pull;
    if (status == ZR_UNKNOWN_STATUS) {
        char *reason = zsys_sprintf ("%s: %s", zr_reply_status_str (reply),
                                     zr_reply_reason (reply));
        pull = s_pull_new (status, reason, offset);
        zstr_free (&reason);
    }
    else
        pull = s_pull_new (status, zr_reply_reason (reply), offset);

    const zr_obj_t *hdr = zr_reply_header (reply);
    int64_t value;
    if (zr_field_int (hdr, "next", &value) == ZR_FIELD_OK && value >= 0)
        pull->next = value;
    if (zr_field_int (hdr, "min", &value) == ZR_FIELD_OK)
        pull->min = value;
    if (zr_field_int (hdr, "max", &value) == ZR_FIELD_OK)
        pull->max = value;

    const zr_obj_t *msgs = zr_obj_get (hdr, "msgs");
    if (status == ZR_OK && msgs && zr_obj_is_array (msgs)) {
        size_t count = zr_obj_size (msgs);
        if (count != zr_reply_bodies (reply)) {
            zsys_warning ("consumer: %s from %s: %zu messages, %zu bodies",
                          cmd, zr_client_endpoint (self->client), count,
                          zr_reply_bodies (reply));
            pull->status = ZR_MALFORMED;
            zstr_free (&pull->reason);
            pull->reason = strdup ("reply's message and body counts differ");
            count = 0;
        }
        if (count) {
            pull->msgs = (zr_message_t **) calloc (count, sizeof (zr_message_t *));
            assert (pull->msgs);
        }
        for (size_t i = 0; i < count; i++) {
            zr_message_t *msg = zr_message_from_wire (zr_obj_at (msgs, i),
                                                      zr_reply_body (reply, i));
            if (!msg) {
                zsys_warning ("consumer: %s from %s: message %zu unreadable",
                              cmd, zr_client_endpoint (self->client), i);
                continue;
            }
            pull->msgs [pull->count++] = msg;
        }
    }
    zr_reply_destroy (&reply);
    return pull;
}

zr_pull_t *
zr_consumer_find (zr_consumer_t *self, const char *topic, const char *id,
                  const char *key, int max_count)
{
    assert (self);
    if (!topic || (id == NULL) == (key == NULL))
        return NULL;
    zr_enc_t *enc = zr_client_begin (self->client, "FIND",
                                     max_count > 0 ? 3 : 2);
    zr_enc_kstr (enc, "topic", topic);
    if (id)
        zr_enc_kstr (enc, "id", id);
    else
        zr_enc_kstr (enc, "key", key);
    if (max_count > 0)
        zr_enc_kint (enc, "max_count", max_count);
    return s_pull_result (self, "FIND", self->timeout, -1);
}

zr_status_t
zr_pull_status (zr_pull_t *self)
{
    assert (self);
    return self->status;
}

const char *
zr_pull_reason (zr_pull_t *self)
{
    assert (self);
    return self->reason;
}

int64_t
zr_pull_next (zr_pull_t *self)
{
    assert (self);
    return self->next;
}

int64_t
zr_pull_min (zr_pull_t *self)
{
    assert (self);
    return self->min;
}

int64_t
zr_pull_max (zr_pull_t *self)
{
    assert (self);
    return self->max;
}

size_t
zr_pull_count (zr_pull_t *self)
{
    assert (self);
    return self->count;
}

zr_message_t *
zr_pull_message (zr_pull_t *self, size_t index)
{
    assert (self);
    return index < self->count ? self->msgs [index] : NULL;
}

//  --------------------------------------------------------------------
//  Topic and offsets

int
zr_consumer_queues (zr_consumer_t *self, const char *topic)
{
    assert (self);
    if (!topic)
        return -1;
    zr_enc_t *enc = zr_client_begin (self->client, "TOPIC_INFO", 1);
    zr_enc_kstr (enc, "topic", topic);
    zr_reply_t *reply = s_call (self, self->timeout);
    if (!reply)
        return -1;
    int64_t queues = -1;
    if (zr_reply_status (reply) != ZR_OK
        || zr_field_int (zr_reply_header (reply), "queues", &queues)
            != ZR_FIELD_OK
        || queues < 0 || queues > INT32_MAX)
        queues = -1;
    zr_reply_destroy (&reply);
    return (int) queues;
}

int
zr_consumer_queue_offsets (zr_consumer_t *self, const char *topic, int queue,
                           int64_t *min, int64_t *max)
{
    assert (self);
    if (!topic)
        return -1;
    zr_enc_t *enc = zr_client_begin (self->client, "GET_OFFSETS", 2);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queue", queue);
    zr_reply_t *reply = s_call (self, self->timeout);
    if (!reply)
        return -1;
    int rc = -1;
    int64_t lo, hi;
    if (zr_reply_status (reply) == ZR_OK
        && zr_field_int (zr_reply_header (reply), "min", &lo) == ZR_FIELD_OK
        && zr_field_int (zr_reply_header (reply), "max", &hi) == ZR_FIELD_OK) {
        if (min)
            *min = lo;
        if (max)
            *max = hi;
        rc = 0;
    }
    zr_reply_destroy (&reply);
    return rc;
}

int
zr_consumer_commit (zr_consumer_t *self, const char *group, const char *topic,
                    int queue, int64_t offset)
{
    assert (self);
    if (!group || !topic)
        return -1;
    zr_enc_t *enc = zr_client_begin (self->client, "COMMIT_OFFSET", 4);
    zr_enc_kstr (enc, "group", group);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queue", queue);
    zr_enc_kint (enc, "offset", offset);
    zr_reply_t *reply = s_call (self, self->timeout);
    if (!reply)
        return -1;
    int rc = zr_reply_status (reply) == ZR_OK ? 0 : -1;
    zr_reply_destroy (&reply);
    return rc;
}

int
zr_consumer_committed (zr_consumer_t *self, const char *group,
                       const char *topic, int queue, int64_t *offset)
{
    assert (self);
    if (!group || !topic)
        return -1;
    zr_enc_t *enc = zr_client_begin (self->client, "QUERY_OFFSET", 3);
    zr_enc_kstr (enc, "group", group);
    zr_enc_kstr (enc, "topic", topic);
    zr_enc_kint (enc, "queue", queue);
    zr_reply_t *reply = s_call (self, self->timeout);
    if (!reply)
        return -1;
    int rc = -1;
    int64_t value;
    if (zr_reply_status (reply) == ZR_OK
        && zr_field_int (zr_reply_header (reply), "offset", &value)
        == ZR_FIELD_OK) {
        if (offset)
            *offset = value < 0 ? -1 : value;
        rc = 0;
    }
    zr_reply_destroy (&reply);
    return rc;
}
