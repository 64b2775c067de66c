/*  client/client.c - one DEALER connection to a broker with request ids
    (docs/protocol.md sections 1 to 3).

    A request is frame 0 (the msgpack header that zr_client_begin starts
    in the client's reusable encoder) plus raw body frames; they go out
    with zmq_send on the DEALER's handle, so a send costs no allocation.
    A reply is read with zmq_msg_recv; its header frame stays alive inside
    the zr_reply_t because the decoded views may point into it.

    zr_client_call waits for the reply with its own rid and DROPS every
    other reply it reads meanwhile (late replies to requests that already
    timed out, typically). Callers that keep requests in flight (the async
    producer) use zr_client_send and zr_client_recv and match rids
    themselves.

    Not thread-safe: a zr_client_t and its replies belong to one thread.
*/
#include "client/client.h"

#define ZR_CLIENT_HWM 100000
#define ZR_CLIENT_SNDTIMEO 3000

struct _zr_client_t {
    zsock_t *sock;              //  DEALER
    void *handle;               //  its libzmq socket
    char *endpoint;
    zr_enc_t *enc;              //  header of the request being built
    uint64_t rid;               //  rid of the request begun last
};

struct _zr_reply_t {
    zmq_msg_t frame;            //  header bytes (the views may use them)
    zr_hdr_t *hdr;
    const zr_obj_t *root;
    uint64_t rid;
    zr_status_t status;
    char status_str [32];
    char *reason;               //  NULL when none
    zframe_t **bodies;
    size_t nbodies;
    bool is_request;            //  a broker-initiated request
};

zr_client_t *
zr_client_new (const char *endpoint)
{
    if (!endpoint || !*endpoint)
        return NULL;
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    if (!sock)
        return NULL;
    zsock_set_linger (sock, 0);
    zsock_set_sndhwm (sock, ZR_CLIENT_HWM);
    zsock_set_rcvhwm (sock, ZR_CLIENT_HWM);
    zsock_set_sndtimeo (sock, ZR_CLIENT_SNDTIMEO);
    if (zsock_connect (sock, "%s", endpoint) == -1) {
        zsock_destroy (&sock);
        return NULL;
    }
    zr_client_t *self = (zr_client_t *) zmalloc (sizeof (zr_client_t));
    assert (self);
    self->sock = sock;
    self->handle = zsock_resolve (sock);
    self->endpoint = strdup (endpoint);
    self->enc = zr_enc_new ();
    assert (self->endpoint && self->enc);
    return self;
}

void
zr_client_destroy (zr_client_t **self_p)
{
    assert (self_p);
    zr_client_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    zr_enc_destroy (&self->enc);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

zsock_t *
zr_client_sock (zr_client_t *self)
{
    assert (self);
    return self->sock;
}

const char *
zr_client_endpoint (zr_client_t *self)
{
    assert (self);
    return self->endpoint;
}

void
zr_client_set_sndtimeo (zr_client_t *self, int timeout_ms)
{
    assert (self);
    zsock_set_sndtimeo (self->sock, timeout_ms < 0 ? -1 : timeout_ms);
}

zr_enc_t *
zr_client_begin (zr_client_t *self, const char *cmd, size_t fields)
{
    assert (self);
    assert (cmd);
    self->rid++;
    zr_enc_reset (self->enc);
    zr_enc_map (self->enc, 3 + fields);
    zr_enc_kint (self->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kstr (self->enc, "cmd", cmd);
    zr_enc_kint (self->enc, "rid", (int64_t) self->rid);
    return self->enc;
}

uint64_t
zr_client_rid (zr_client_t *self)
{
    assert (self);
    return self->rid;
}

int
zr_client_send (zr_client_t *self, const void *const *data,
                const size_t *size, size_t bodies)
{
    assert (self);
    assert (bodies == 0 || (data && size));
    //  Only the first frame can block (libzmq accepts the rest of a
    //  multipart message once its first frame is in).
    if (zmq_send (self->handle, zr_enc_data (self->enc),
                  zr_enc_size (self->enc), bodies ? ZMQ_SNDMORE : 0)
        == -1)
        return -1;
    for (size_t i = 0; i < bodies; i++) {
        const void *bytes = size [i] ? data [i] : "";
        if (zmq_send (self->handle, bytes, size [i],
                      i + 1 < bodies ? ZMQ_SNDMORE : 0)
            == -1)
            return -1;
    }
    return 0;
}

void
zr_reply_destroy (zr_reply_t **self_p)
{
    assert (self_p);
    zr_reply_t *self = *self_p;
    if (!self)
        return;
    zr_hdr_destroy (&self->hdr);
    zmq_msg_close (&self->frame);
    for (size_t i = 0; i < self->nbodies; i++)
        zframe_destroy (&self->bodies [i]);
    free (self->bodies);
    free (self->reason);
    free (self);
    *self_p = NULL;
}

//  Reads and discards the rest of a multipart message.
static void
s_drain (zr_client_t *self)
{
    while (zsock_rcvmore (self->sock)) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        int rc = zmq_msg_recv (&part, self->handle, 0);
        zmq_msg_close (&part);
        if (rc == -1)
            break;
    }
}

//  Builds a reply from a received header frame (taken) and reads the body
//  frames that follow it. Returns NULL (after reading the whole message)
//  when the frame is not a reply we can read.
static zr_reply_t *
s_reply_new (zr_client_t *self, zmq_msg_t *frame, bool requests)
{
    zr_reply_t *reply = (zr_reply_t *) zmalloc (sizeof (zr_reply_t));
    assert (reply);
    zmq_msg_init (&reply->frame);
    zmq_msg_move (&reply->frame, frame);
    zmq_msg_close (frame);
    bool more = zmq_msg_more (&reply->frame);

    const char *err = NULL;
    reply->hdr = zr_hdr_decode (zmq_msg_data (&reply->frame),
                                zmq_msg_size (&reply->frame), &err);
    reply->root = reply->hdr ? zr_hdr_root (reply->hdr) : NULL;
    const char *type = NULL, *status = NULL;
    size_t type_len = 0, status_len = 0;
    int64_t rid = 0;
    if (!reply->root || !zr_obj_is_map (reply->root)) {
        zsys_warning ("client: %s: undecodable reply header: %s",
                      self->endpoint, err ? err : "not a map");
        goto skip;
    }
    if (requests
        && zr_field_str (reply->root, "type", &type, &type_len)
               == ZR_FIELD_OK
        && type_len == 7 && memcmp (type, "request", 7) == 0) {
        //  Broker-initiated request: no status; rid when readable.
        reply->is_request = true;
        if (zr_field_int (reply->root, "rid", &rid) == ZR_FIELD_OK
            && rid >= 0)
            reply->rid = (uint64_t) rid;
        reply->status = ZR_OK;
        if (more)
            s_drain (self);
        return reply;
    }
    if (zr_field_str (reply->root, "type", &type, &type_len) != ZR_FIELD_OK
        || type_len != 5 || memcmp (type, "reply", 5) != 0)
        goto skip;              //  not a reply (e.g. a broker request)
    if (zr_field_int (reply->root, "rid", &rid) != ZR_FIELD_OK || rid < 0
        || zr_field_str (reply->root, "status", &status, &status_len)
               != ZR_FIELD_OK) {
        zsys_warning ("client: %s: reply without rid or status",
                      self->endpoint);
        goto skip;
    }
    reply->rid = (uint64_t) rid;
    if (status_len >= sizeof (reply->status_str))
        status_len = sizeof (reply->status_str) - 1;
    memcpy (reply->status_str, status, status_len);
    reply->status_str [status_len] = 0;
    reply->status = zr_status_parse (reply->status_str);
    //  The wire never carries the client's own statuses.
    if (reply->status == ZR_TIMEOUT)
        reply->status = ZR_UNKNOWN_STATUS;
    reply->reason = zr_field_strdup (reply->root, "reason");

    //  Body frames
    size_t limit = 0;
    while (more) {
        zframe_t *body = zframe_recv (self->sock);
        if (!body)
            break;
        more = zframe_more (body) != 0;
        if (reply->nbodies == limit) {
            limit = limit ? limit * 2 : 8;
            reply->bodies = (zframe_t **) realloc (
                reply->bodies, limit * sizeof (zframe_t *));
            assert (reply->bodies);
        }
        reply->bodies [reply->nbodies++] = body;
    }
    return reply;

skip:
    if (more)
        s_drain (self);
    zr_reply_destroy (&reply);
    return NULL;
}

static zr_reply_t *
s_recv (zr_client_t *self, int timeout_ms, bool requests)
{
    int64_t deadline = timeout_ms >= 0 ? zclock_mono () + timeout_ms : -1;
    while (true) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            if (errno != EAGAIN)
                return NULL;    //  context terminated or interrupted
            long wait = -1;
            if (deadline >= 0) {
                wait = (long) (deadline - zclock_mono ());
                if (wait <= 0)
                    return NULL;
            }
            zmq_pollitem_t item = { self->handle, 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (&item, 1, wait) <= 0)
                return NULL;    //  timeout, or interrupted
            continue;
        }
        zr_reply_t *reply = s_reply_new (self, &frame, requests);
        if (reply)
            return reply;
    }
}

zr_reply_t *
zr_client_recv (zr_client_t *self, int timeout_ms)
{
    assert (self);
    return s_recv (self, timeout_ms, false);
}

zr_reply_t *
zr_client_recv_any (zr_client_t *self, int timeout_ms)
{
    assert (self);
    return s_recv (self, timeout_ms, true);
}

bool
zr_reply_is_request (zr_reply_t *self)
{
    assert (self);
    return self->is_request;
}

zr_reply_t *
zr_client_call (zr_client_t *self, const void *body, size_t size,
                int timeout_ms)
{
    assert (self);
    uint64_t rid = self->rid;
    const void *data [1] = { body };
    size_t sizes [1] = { size };
    if (zr_client_send (self, data, sizes, body || size ? 1 : 0) == -1)
        return NULL;
    int64_t deadline = timeout_ms >= 0 ? zclock_mono () + timeout_ms : -1;
    while (true) {
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - zclock_mono ();
            wait = left > 0 ? (int) left : 0;
        }
        zr_reply_t *reply = zr_client_recv (self, wait);
        if (!reply)
            return NULL;
        if (reply->rid == rid)
            return reply;
        zr_reply_destroy (&reply);      //  not ours: dropped (see top)
    }
}

uint64_t
zr_reply_rid (zr_reply_t *self)
{
    assert (self);
    return self->rid;
}

zr_status_t
zr_reply_status (zr_reply_t *self)
{
    assert (self);
    return self->status;
}

const char *
zr_reply_status_str (zr_reply_t *self)
{
    assert (self);
    return self->status_str;
}

const char *
zr_reply_reason (zr_reply_t *self)
{
    assert (self);
    return self->reason ? self->reason : "";
}

const zr_obj_t *
zr_reply_header (zr_reply_t *self)
{
    assert (self);
    return self->root;
}

size_t
zr_reply_bodies (zr_reply_t *self)
{
    assert (self);
    return self->nbodies;
}

zframe_t *
zr_reply_body (zr_reply_t *self, size_t index)
{
    assert (self);
    return index < self->nbodies ? self->bodies [index] : NULL;
}
