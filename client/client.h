/*  client/client.h - one DEALER connection to a broker with request ids.

    The layer under zr_producer_t, zr_consumer_t and the CLI's admin
    commands: builds request headers (v, cmd, rid + the caller's fields),
    sends them with optional body frames, and reads replies, matching them
    by rid. Internal (not installed); not thread-safe.

    Typical use:
        zr_client_t *c = zr_client_new ("tcp://127.0.0.1:10911");
        zr_enc_t *e = zr_client_begin (c, "TOPIC_CREATE", 2);
        zr_enc_kstr (e, "topic", "orders");
        zr_enc_kint (e, "queues", 8);
        zr_reply_t *r = zr_client_call (c, NULL, 0, 3000);
        if (r && zr_reply_status (r) == ZR_OK) ...
        zr_reply_destroy (&r);
*/
#ifndef ZR_CLIENT_H_INCLUDED
#define ZR_CLIENT_H_INCLUDED

#include <zrocket.h>
#include "transport/codec.h"

typedef struct _zr_client_t zr_client_t;
typedef struct _zr_reply_t zr_reply_t;

//  Connects a DEALER to endpoint. Returns NULL when the endpoint is
//  invalid.
zr_client_t *zr_client_new (const char *endpoint);
void zr_client_destroy (zr_client_t **self_p);

//  The DEALER socket, for polling (borrowed).
zsock_t *zr_client_sock (zr_client_t *self);
const char *zr_client_endpoint (zr_client_t *self);

//  Starts a request header: resets the client's encoder and writes a map
//  of (3 + fields) entries with v, cmd and a fresh rid; the caller then
//  writes exactly `fields` key/value pairs. Returns the encoder
//  (borrowed).
zr_enc_t *zr_client_begin (zr_client_t *self, const char *cmd,
                           size_t fields);

//  rid of the request begun last.
uint64_t zr_client_rid (zr_client_t *self);

//  Sends the begun request with `bodies` body frames (data[i], size[i]);
//  does not wait. Returns 0, or -1 when the socket would block longer than
//  the send timeout.
int zr_client_send (zr_client_t *self, const void *const *data,
                    const size_t *size, size_t bodies);

//  Receives the next reply of any rid, waiting up to timeout_ms (-1:
//  forever). Returns NULL on timeout or interrupt. Frames whose type is
//  not "reply" and undecodable frames are skipped.
zr_reply_t *zr_client_recv (zr_client_t *self, int timeout_ms);

//  Like zr_client_recv, but also returns broker-initiated requests
//  (type "request", e.g. MEMBERS_CHANGED; their body frames are dropped):
//  zr_reply_is_request tells them apart, zr_reply_header has their
//  fields, and their status reads ZR_OK.
zr_reply_t *zr_client_recv_any (zr_client_t *self, int timeout_ms);
bool zr_reply_is_request (zr_reply_t *self);

//  Sends the begun request (with one optional body) and waits for the
//  reply with its rid, discarding replies to older requests. Returns NULL
//  on timeout.
zr_reply_t *zr_client_call (zr_client_t *self, const void *body,
                            size_t size, int timeout_ms);

//  Reply accessors.
void zr_reply_destroy (zr_reply_t **self_p);
uint64_t zr_reply_rid (zr_reply_t *self);
zr_status_t zr_reply_status (zr_reply_t *self);
//  Status as sent (borrowed), even when not known to this client.
const char *zr_reply_status_str (zr_reply_t *self);
//  Reason ("" when none; borrowed).
const char *zr_reply_reason (zr_reply_t *self);
//  Root map of the header (borrowed).
const zr_obj_t *zr_reply_header (zr_reply_t *self);
//  Body frames after the header.
size_t zr_reply_bodies (zr_reply_t *self);
zframe_t *zr_reply_body (zr_reply_t *self, size_t index);

//  Builds a zr_message_t from a message map (PULL / GET_MSG) and its body
//  frame. Returns NULL when the map lacks required fields.
zr_message_t *zr_message_from_wire (const zr_obj_t *map, zframe_t *body);

//  Sets how long zr_client_send may block when the socket is full,
//  ms (default 3000; -1 blocks).
void zr_client_set_sndtimeo (zr_client_t *self, int timeout_ms);

//  True when name (len bytes) is a valid topic or group name: 1 to
//  ZR_NAME_MAX characters of A-Z a-z 0-9 _ - % |.
bool zr_name_valid (const char *name, size_t len);

//  Message internals the producer needs (client/message.c).
//  Sharding key, "" when not set (borrowed).
const char *zr_message_sharding_key (zr_message_t *self);
//  Sets the born time, ms since the Unix epoch.
void zr_message_set_born (zr_message_t *self, int64_t born);
//  The delay field to send: *name "delay_ms", "deliver_at" or
//  "delay_level" and *value, or *name NULL when the message is not
//  delayed.
void zr_message_delay (zr_message_t *self, const char **name,
                       int64_t *value);

#endif
