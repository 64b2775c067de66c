/*  nameserver/nameserver.c - the nameserver actor: a ROUTER that keeps
    the registry of brokers and answers route queries (docs/protocol.md
    section 9), and optionally announces itself by beacon (section 10).

    Pipe commands (see include/zrocket.h):
        START       -> OK | ERROR reason
                       binds every endpoint of setting "bind"; with
                       beacon=true, also starts the discovery actor
                       publishing the port of the first tcp endpoint
                       and our node id (the one PING answers)
        ENDPOINTS   -> OK endpoint...   (bound, ports resolved)
        $TERM       -> (exits)

    Wire commands: PING, REGISTER, UNREGISTER, GET_ROUTE, GET_CLUSTER,
    and for failover HA_HEARTBEAT and VOTE (leases and votes live in
    nameserver/ha.c; the vote file in setting "data" is read at START).
    The registry itself (nameserver/registry.c) validates and stores the
    brokers; this file reads requests, adds the reply envelope, and runs
    expiry: on a timer (min (expiry/4, 1000) ms) and before every query,
    so a query never shows a broker silent for the expiry time or more.

    Never blocks on a peer: replies go out with ZMQ_DONTWAIT on a
    ROUTER_MANDATORY socket; a gone or lagging client loses its reply.
*/
#include <zrocket.h>
#include "transport/codec.h"
#include "transport/transport.h"
#include "actors/actor.h"
#include "actors/settings.h"
#include "actors/discovery.h"
#include "nameserver/registry.h"
#include "nameserver/ha.h"

#define HEADER_MAX (64 * 1024)
#define IDENTITY_MAX 256
#define FRAMES_MAX 8
#define SERVE_MAX 1000          //  requests per turn before timers run
#define EXPIRY_MIN 10
#define EXPIRY_MAX (24LL * 3600 * 1000)
#define DISCOVERY_TIMEOUT 5000

//  Where a reply goes.
typedef struct {
    uint8_t identity [IDENTITY_MAX];
    size_t identity_size;
    bool delimiter;             //  REQ peer: reply needs an empty frame
    uint64_t rid;
} route_t;

typedef struct {
    zsock_t *pipe;
    zsock_t *router;
    zconfig_t *cfg;             //  our copy of the settings
    bool terminated;
    bool started;

    char *cluster;
    int64_t expiry_ms;
    char node_id [33];          //  16 random bytes in hex

    zlistx_t *endpoints;        //  bound endpoints (char *)
    zr_registry_t *registry;
    zr_ha_t *ha;                //  leases and votes
    zactor_t *discovery;        //  beacon publisher, or NULL
    zr_enc_t *enc;              //  reply encoder
    zr_enc_t *scratch;          //  route / cluster arrays
    int64_t expiry_checked;     //  zclock_mono of the last expiry run

    uint64_t requests;
    uint64_t malformed;
    uint64_t unroutable;
    uint64_t reply_dropped;
} nameserver_t;

//  --------------------------------------------------------------------
//  Replies

//  Sends the encoder's header to route. Never blocks.
static void
s_send_reply (nameserver_t *self, route_t *route)
{
    void *handle = zsock_resolve (self->router);
    int rc = zmq_send (handle, route->identity, route->identity_size,
                       ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc == -1) {
        if (zmq_errno () == EHOSTUNREACH)
            self->unroutable++;
        else {
            self->reply_dropped++;
            zsys_warning ("nameserver: reply to client dropped: %s",
                          zmq_strerror (zmq_errno ()));
        }
        return;
    }
    if (route->delimiter)
        zmq_send (handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send (handle, zr_enc_data (self->enc), zr_enc_size (self->enc),
              ZMQ_DONTWAIT);
}

//  Starts a reply header with `fields` extra entries after v, type, rid,
//  status (and reason when given).
static void
s_reply_begin (nameserver_t *self, route_t *route, zr_status_t status,
               const char *reason, size_t fields)
{
    zr_enc_reset (self->enc);
    zr_enc_map (self->enc, 4 + (reason ? 1 : 0) + fields);
    zr_enc_kint (self->enc, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kstr (self->enc, "type", "reply");
    zr_enc_kint (self->enc, "rid", (int64_t) route->rid);
    zr_enc_kstr (self->enc, "status", zr_status_str (status));
    if (reason)
        zr_enc_kstr (self->enc, "reason", reason);
}

static void
s_reply_error (nameserver_t *self, route_t *route, zr_status_t status,
               const char *format, ...)
{
    char reason [512];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    s_reply_begin (self, route, status, reason, 0);
    s_send_reply (self, route);
}

//  --------------------------------------------------------------------
//  Commands

static void
s_expire (nameserver_t *self)
{
    int64_t now = zclock_mono ();
    zr_registry_expire (self->registry, now, self->expiry_ms);
    self->expiry_checked = now;
}

static void
s_cmd_ping (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    s_reply_begin (self, route, ZR_OK, NULL, 4);
    zr_enc_kstr (self->enc, "nameserver", self->node_id);
    zr_enc_kstr (self->enc, "cluster", self->cluster);
    zr_enc_kstr (self->enc, "version", "0.1.0");
    zr_enc_kint (self->enc, "time", zclock_time ());
    s_send_reply (self, route);
}

static void
s_cmd_register (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    char reason [512];
    zr_status_t status = zr_registry_register (self->registry, h,
                                               zclock_mono (), reason,
                                               sizeof reason);
    if (status != ZR_OK) {
        zsys_warning ("nameserver: REGISTER refused: %s", reason);
        s_reply_error (self, route, status, "%s", reason);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 1);
    zr_enc_kint (self->enc, "expiry_ms", self->expiry_ms);
    s_send_reply (self, route);
}

static void
s_cmd_unregister (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    char reason [512];
    zr_status_t status = zr_registry_unregister (self->registry, h, reason,
                                                 sizeof reason);
    if (status != ZR_OK) {
        s_reply_error (self, route, status, "%s", reason);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 0);
    s_send_reply (self, route);
}

static void
s_cmd_get_route (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    const char *s;
    size_t len;
    int rc = zr_field_str (h, "topic", &s, &len);
    if (rc == ZR_FIELD_MISSING) {
        s_reply_error (self, route, ZR_MALFORMED, "missing field 'topic'");
        return;
    }
    if (rc != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED,
                       "field 'topic' must be a string");
        return;
    }
    bool valid = len > 0 && len <= ZR_NAME_MAX;
    for (size_t i = 0; valid && i < len; i++)
        if (!(isalnum ((unsigned char) s [i]) || s [i] == '_' || s [i] == '-'
        ||    s [i] == '%' || s [i] == '|'))
            valid = false;
    if (!valid) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT,
                       "topic name must be 1-%d characters of "
                       "A-Z a-z 0-9 _ - %% |", ZR_NAME_MAX);
        return;
    }
    char topic [ZR_NAME_MAX + 1];
    memcpy (topic, s, len);
    topic [len] = 0;
    s_expire (self);
    zr_enc_reset (self->scratch);
    size_t groups = zr_registry_route (self->registry, topic, zclock_mono (),
                                       self->scratch);
    if (groups == 0) {
        s_reply_error (self, route, ZR_TOPIC_NOT_FOUND,
                       "topic '%s' is not served by any live broker of "
                       "cluster %s", topic, self->cluster);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, 2);
    zr_enc_kstr (self->enc, "topic", topic);
    zr_enc_str (self->enc, "groups");
    zr_enc_raw (self->enc, zr_enc_data (self->scratch),
                zr_enc_size (self->scratch));
    s_send_reply (self, route);
}

static void
s_cmd_get_cluster (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    s_expire (self);
    zr_enc_reset (self->scratch);
    zr_registry_cluster_encode (self->registry, zclock_mono (),
                                self->scratch);
    s_reply_begin (self, route, ZR_OK, NULL, 2);
    zr_enc_kstr (self->enc, "cluster", self->cluster);
    zr_enc_str (self->enc, "brokers");
    zr_enc_raw (self->enc, zr_enc_data (self->scratch),
                zr_enc_size (self->scratch));
    s_send_reply (self, route);
}

//  Reads a group name field into buf. 0, or -1 after replying.
static int
s_read_group (nameserver_t *self, route_t *route, const zr_obj_t *h,
              char *buf)
{
    int rc = zr_field_strbuf (h, "group", buf, ZR_NAME_MAX + 1);
    if (rc != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED, "field 'group' must be "
                       "a group name string (at most %d bytes)",
                       ZR_NAME_MAX);
        return -1;
    }
    return 0;
}

//  Reads the named int fields, in order, into values. 0, or -1 after
//  replying.
static int
s_read_ints (nameserver_t *self, route_t *route, const zr_obj_t *h,
             const char **names, int64_t *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (zr_field_int (h, names [i], &values [i]) != ZR_FIELD_OK) {
            s_reply_error (self, route, ZR_MALFORMED, "field '%s' must be "
                           "an integer", names [i]);
            return -1;
        }
    return 0;
}

//  Checks the request's cluster (when given). 0, or -1 after replying.
static int
s_check_cluster (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    char cluster [ZR_NAME_MAX + 1];
    int rc = zr_field_strbuf (h, "cluster", cluster, sizeof cluster);
    if (rc == ZR_FIELD_MISSING)
        return 0;
    if (rc != ZR_FIELD_OK || strneq (cluster, self->cluster)) {
        s_reply_error (self, route, ZR_BAD_ARGUMENT, "this nameserver "
                       "serves cluster %s, not '%s'", self->cluster,
                       rc == ZR_FIELD_OK ? cluster : "?");
        return -1;
    }
    return 0;
}

//  HA_HEARTBEAT {cluster, group, broker_id, epoch, seq, isr: [int]}
//  -> OK {lease_ms, epoch, isr (recorded)} | BUSY (too young to grant
//  leases) |
//  NOT_MASTER {epoch, master_id} (a higher epoch exists: fenced)
static void
s_cmd_ha_heartbeat (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 1];
    const char *names [] = { "broker_id", "epoch", "seq" };
    int64_t v [3];
    if (s_check_cluster (self, route, h)
    ||  s_read_group (self, route, h, group)
    ||  s_read_ints (self, route, h, names, v, 3))
        return;
    int64_t isr [ZR_HA_ISR_MAX];
    size_t isr_count = 0;
    const zr_obj_t *list = zr_obj_get (h, "isr");
    if (list && !zr_obj_is_nil (list)) {
        if (!zr_obj_is_array (list) || zr_obj_size (list) > ZR_HA_ISR_MAX) {
            s_reply_error (self, route, ZR_MALFORMED, "field 'isr' must be "
                           "an array of at most %d broker ids",
                           ZR_HA_ISR_MAX);
            return;
        }
        for (size_t i = 0; i < zr_obj_size (list); i++)
            if (zr_obj_int (zr_obj_at (list, i), &isr [isr_count++])
                != ZR_FIELD_OK) {
                s_reply_error (self, route, ZR_MALFORMED, "field 'isr' "
                               "must hold integer broker ids");
                return;
            }
    }
    char reason [512];
    int64_t epoch = 0, master = -1;
    zr_ha_result_t result = zr_ha_heartbeat (self->ha, group, v [0], v [1],
                                             v [2], isr, isr_count,
                                             zclock_mono (), &epoch,
                                             &master, reason,
                                             sizeof reason);
    if (result == ZR_HA_GRANTED) {
        //  isr: the set now recorded, echoed so the master knows which
        //  set a candidate must belong to (section 16, "Acknowledgements").
        int64_t recorded [ZR_HA_ISR_MAX + 1];
        size_t count = zr_ha_isr (self->ha, group, recorded,
                                  ZR_HA_ISR_MAX + 1);
        s_reply_begin (self, route, ZR_OK, NULL, 3);
        zr_enc_kint (self->enc, "lease_ms", zr_ha_lease_ms (self->ha));
        zr_enc_kint (self->enc, "epoch", v [1]);
        zr_enc_str (self->enc, "isr");
        zr_enc_array (self->enc, count);
        for (size_t i = 0; i < count; i++)
            zr_enc_int (self->enc, recorded [i]);
        s_send_reply (self, route);
    }
    else
    if (result == ZR_HA_STARTING || result == ZR_HA_RESIGNED)
        s_reply_error (self, route, ZR_BUSY, "%s", reason);
    else
    if (result == ZR_HA_FENCED) {
        zsys_warning ("nameserver: HA_HEARTBEAT refused: %s", reason);
        //  NOT_MASTER: written by hand until the status is in the enum.
        zr_enc_reset (self->enc);
        zr_enc_map (self->enc, 7);
        zr_enc_kint (self->enc, "v", ZR_PROTOCOL_VERSION);
        zr_enc_kstr (self->enc, "type", "reply");
        zr_enc_kint (self->enc, "rid", (int64_t) route->rid);
        zr_enc_kstr (self->enc, "status", zr_status_str (ZR_NOT_MASTER));
        zr_enc_kstr (self->enc, "reason", reason);
        zr_enc_kint (self->enc, "epoch", epoch);
        zr_enc_kint (self->enc, "master_id", master);
        s_send_reply (self, route);
    }
    else
        s_reply_error (self, route, ZR_BAD_ARGUMENT, "%s", reason);
}

//  VOTE {cluster, group, epoch, candidate, last_epoch, last_seq}
//  -> OK {granted: bool, epoch, refusal (when not granted)} |
//  STORE_ERROR (the vote could not be written; not granted)
static void
s_cmd_vote (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 1];
    const char *names [] = { "epoch", "candidate", "last_epoch",
                             "last_seq" };
    int64_t v [4];
    if (s_check_cluster (self, route, h)
    ||  s_read_group (self, route, h, group)
    ||  s_read_ints (self, route, h, names, v, 4))
        return;
    char reason [512] = "";
    int rc = zr_ha_vote (self->ha, group, v [0], v [1], v [2], v [3],
                         zclock_mono (), reason, sizeof reason);
    if (rc < 0) {
        zsys_error ("nameserver: %s", reason);
        s_reply_error (self, route, ZR_STORE_ERROR, "%s", reason);
        return;
    }
    s_reply_begin (self, route, ZR_OK, NULL, rc ? 2 : 3);
    zr_enc_kbool (self->enc, "granted", rc == 1);
    zr_enc_kint (self->enc, "epoch", v [0]);
    if (!rc)
        zr_enc_kstr (self->enc, "refusal", reason);
    s_send_reply (self, route);
}

//  HA_RESIGN {cluster, group, broker_id, epoch, seq, successor,
//  withdraw: bool} -> OK {accepted: bool, epoch, refusal (when not)}
//  (admin promote: docs/protocol.md section 16, "Graceful handover")
static void
s_cmd_ha_resign (nameserver_t *self, route_t *route, const zr_obj_t *h)
{
    char group [ZR_NAME_MAX + 1];
    const char *names [] = { "broker_id", "epoch", "seq" };
    int64_t v [3], successor = -1;
    bool withdraw = false;
    if (s_check_cluster (self, route, h)
    ||  s_read_group (self, route, h, group)
    ||  s_read_ints (self, route, h, names, v, 3))
        return;
    const zr_obj_t *w = zr_obj_get (h, "withdraw");
    if (w && !zr_obj_is_nil (w) && zr_obj_bool (w, &withdraw)
        != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED, "field 'withdraw' must "
                       "be a boolean");
        return;
    }
    if (!withdraw && zr_field_int (h, "successor", &successor)
        != ZR_FIELD_OK) {
        s_reply_error (self, route, ZR_MALFORMED, "field 'successor' must "
                       "be an integer broker id");
        return;
    }
    char reason [512] = "";
    int rc = zr_ha_resign (self->ha, group, v [0], v [1], v [2], successor,
                           withdraw, zclock_mono (), reason, sizeof reason);
    s_reply_begin (self, route, ZR_OK, NULL, rc ? 2 : 3);
    zr_enc_kbool (self->enc, "accepted", rc == 1);
    zr_enc_kint (self->enc, "epoch", v [1]);
    if (!rc)
        zr_enc_kstr (self->enc, "refusal", reason);
    s_send_reply (self, route);
}

//  --------------------------------------------------------------------
//  Requests

static void
s_handle (nameserver_t *self, zmq_msg_t *frames, size_t count,
          bool truncated)
{
    self->requests++;
    route_t route;
    memset (&route, 0, sizeof route);
    size_t idsize = zmq_msg_size (&frames [0]);
    if (idsize == 0 || idsize > IDENTITY_MAX)
        return;     //  cannot answer it
    memcpy (route.identity, zmq_msg_data (&frames [0]), idsize);
    route.identity_size = idsize;
    size_t first = 1;
    if (count > 2 && zmq_msg_size (&frames [1]) == 0) {
        route.delimiter = true;
        first = 2;
    }
    if (count <= first) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "request has no header frame");
        return;
    }
    zmq_msg_t *header = &frames [first];
    if (zmq_msg_size (header) > HEADER_MAX) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "header frame is %zu bytes, the limit is %d",
                       zmq_msg_size (header), HEADER_MAX);
        return;
    }
    const char *err = NULL;
    zr_hdr_t *hdr = zr_hdr_decode (zmq_msg_data (header),
                                   zmq_msg_size (header), &err);
    if (!hdr) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "header is not msgpack: %s", err);
        return;
    }
    const zr_obj_t *h = zr_hdr_root (hdr);
    int64_t rid = 0, version = 0;
    char cmd [32];
    const char *cmdstr;
    size_t cmdlen;
    if (!zr_obj_is_map (h)) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "header must be a msgpack map");
        goto done;
    }
    int rc = zr_field_int (h, "rid", &rid);
    if (rc != ZR_FIELD_OK || rid < 0) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "field 'rid' must be a non-negative integer");
        goto done;
    }
    route.rid = (uint64_t) rid;
    if (truncated) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "too many frames in one request (a nameserver "
                       "request is one header frame)");
        goto done;
    }
    if (zr_field_int (h, "v", &version) != ZR_FIELD_OK) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "field 'v' (protocol version) must be an integer");
        goto done;
    }
    if (version != ZR_PROTOCOL_VERSION) {
        s_reply_error (self, &route, ZR_BAD_VERSION,
                       "protocol version %" PRId64 " is not spoken here; "
                       "this nameserver speaks 1", version);
        goto done;
    }
    if (zr_field_str (h, "cmd", &cmdstr, &cmdlen) != ZR_FIELD_OK) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "field 'cmd' must be a command name string");
        goto done;
    }
    if (cmdlen >= sizeof cmd || memchr (cmdstr, 0, cmdlen)) {
        s_reply_error (self, &route, ZR_UNKNOWN_COMMAND,
                       "unknown command '%.*s...'", 16, cmdstr);
        goto done;
    }
    memcpy (cmd, cmdstr, cmdlen);
    cmd [cmdlen] = 0;
    for (size_t i = 0; i < cmdlen; i++)
        if (!isprint ((unsigned char) cmd [i]))
            cmd [i] = '?';
    if (count - first - 1 > 0) {
        self->malformed++;
        s_reply_error (self, &route, ZR_MALFORMED,
                       "%s takes no body frames", cmd);
    }
    else
    if (streq (cmd, "PING"))
        s_cmd_ping (self, &route, h);
    else
    if (streq (cmd, "REGISTER"))
        s_cmd_register (self, &route, h);
    else
    if (streq (cmd, "UNREGISTER"))
        s_cmd_unregister (self, &route, h);
    else
    if (streq (cmd, "GET_ROUTE"))
        s_cmd_get_route (self, &route, h);
    else
    if (streq (cmd, "GET_CLUSTER"))
        s_cmd_get_cluster (self, &route, h);
    else
    if (streq (cmd, "HA_HEARTBEAT"))
        s_cmd_ha_heartbeat (self, &route, h);
    else
    if (streq (cmd, "VOTE"))
        s_cmd_vote (self, &route, h);
    else
    if (streq (cmd, "HA_RESIGN"))
        s_cmd_ha_resign (self, &route, h);
    else
        s_reply_error (self, &route, ZR_UNKNOWN_COMMAND,
                       "unknown command '%s' (a nameserver serves PING, "
                       "REGISTER, UNREGISTER, GET_ROUTE, GET_CLUSTER, "
                       "HA_HEARTBEAT, VOTE, HA_RESIGN)", cmd);
done:
    zr_hdr_destroy (&hdr);
}

//  Reads one request without blocking. Returns the frame count (0: none
//  waiting); *truncated is set when it had more than FRAMES_MAX frames
//  (the rest are read and dropped).
static size_t
s_recv (nameserver_t *self, zmq_msg_t *frames, bool *truncated)
{
    void *handle = zsock_resolve (self->router);
    size_t count = 0;
    *truncated = false;
    while (true) {
        zmq_msg_t *frame = &frames [count < FRAMES_MAX ? count
                                                       : FRAMES_MAX - 1];
        if (count >= FRAMES_MAX) {
            zmq_msg_close (frame);
            *truncated = true;
        }
        zmq_msg_init (frame);
        if (zmq_msg_recv (frame, handle, count ? 0 : ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (frame);
            return count < FRAMES_MAX ? count : FRAMES_MAX - 1;
        }
        if (count < FRAMES_MAX)
            count++;
        if (!zmq_msg_more (frame))
            break;
    }
    return count;
}

static void
s_serve_router (nameserver_t *self)
{
    zmq_msg_t frames [FRAMES_MAX];
    for (int i = 0; i < SERVE_MAX; i++) {
        bool truncated;
        size_t count = s_recv (self, frames, &truncated);
        if (count == 0)
            break;
        s_handle (self, frames, count, truncated);
        for (size_t f = 0; f < count; f++)
            zmq_msg_close (&frames [f]);
    }
}

//  --------------------------------------------------------------------
//  Start

static const char *
s_setting (nameserver_t *self, const char *name)
{
    return zr_setting_get (self->cfg, "nameserver", zr_nameserver_settings,
                           name);
}

static int
s_setting_int (nameserver_t *self, const char *name, int64_t lo,
               int64_t hi, int64_t *value, char **err)
{
    const char *text = s_setting (self, name);
    if (zr_setting_parse_int (text, value) || *value < lo || *value > hi) {
        *err = zsys_sprintf ("setting %s: '%s' is not a number in %" PRId64
                             "..%" PRId64, name, text ? text : "", lo, hi);
        return -1;
    }
    return 0;
}

//  Port of the first tcp endpoint bound, or -1.
static int
s_tcp_port (nameserver_t *self)
{
    const char *ep = (const char *) zlistx_first (self->endpoints);
    while (ep) {
        if (strncmp (ep, "tcp://", 6) == 0) {
            const char *colon = strrchr (ep, ':');
            int port = colon ? atoi (colon + 1) : 0;
            if (port > 0 && port < 65536)
                return port;
        }
        ep = (const char *) zlistx_next (self->endpoints);
    }
    return -1;
}

//  Starts the discovery actor publishing our beacon. 0, or -1 with *err.
static int
s_start_beacon (nameserver_t *self, char **err)
{
    int64_t udp_port, interval;
    if (s_setting_int (self, "beacon-port", 1, 65535, &udp_port, err)
    ||  s_setting_int (self, "beacon-interval-ms", 10, 3600000, &interval,
                       err))
        return -1;
    int port = s_tcp_port (self);
    if (port < 0) {
        *err = strdup ("setting beacon: a beacon announces a tcp port, but "
                       "no tcp:// endpoint is bound");
        return -1;
    }
    const char *iface = s_setting (self, "interface");
    self->discovery = zactor_new (zr_discovery_actor, NULL);
    if (!self->discovery) {
        *err = strdup ("cannot start the discovery actor");
        return -1;
    }
    char port_s [16], interval_s [24], udp_s [16];
    snprintf (port_s, sizeof port_s, "%d", port);
    snprintf (interval_s, sizeof interval_s, "%" PRId64, interval);
    snprintf (udp_s, sizeof udp_s, "%" PRId64, udp_port);
    zstr_sendx (self->discovery, "PUBLISH", self->cluster, port_s,
                interval_s, udp_s, iface ? iface : "", self->node_id,
                NULL);
    zpoller_t *poller = zpoller_new (self->discovery, NULL);
    void *ready = zpoller_wait (poller, DISCOVERY_TIMEOUT);
    zpoller_destroy (&poller);
    //  "OK" hostname | "ERROR" reason
    char *status = NULL, *reason = NULL;
    if (ready)
        zstr_recvx (self->discovery, &status, &reason, NULL);
    int rc = 0;
    if (!status || strneq (status, "OK")) {
        *err = zsys_sprintf ("beacon: %s", !ready
                             ? "discovery actor did not answer PUBLISH"
                             : reason ? reason : "discovery refused PUBLISH");
        zactor_destroy (&self->discovery);
        rc = -1;
    }
    else
        zsys_info ("nameserver: beacon from %s on UDP port %" PRId64
                   " every %" PRId64 " ms announces tcp port %d",
                   reason ? reason : "?", udp_port, interval, port);
    zstr_free (&status);
    zstr_free (&reason);
    return rc;
}

static int
s_start (nameserver_t *self, char **err)
{
    if (self->started) {
        *err = strdup ("nameserver is already started");
        return -1;
    }
    const char *cluster = s_setting (self, "cluster");
    self->registry = zr_registry_new (cluster);
    if (!self->registry) {
        *err = zsys_sprintf ("setting cluster: '%s' is not a valid name "
                             "(1-%d characters of A-Z a-z 0-9 _ - %% |)",
                             cluster ? cluster : "", ZR_NAME_MAX);
        return -1;
    }
    self->cluster = strdup (cluster);
    bool beacon = false;
    const char *beacon_s = s_setting (self, "beacon");
    if (zr_setting_parse_bool (beacon_s, &beacon)) {
        *err = zsys_sprintf ("setting beacon: '%s' is not true or false",
                             beacon_s ? beacon_s : "");
        return -1;
    }
    if (s_setting_int (self, "expiry-ms", EXPIRY_MIN, EXPIRY_MAX,
                       &self->expiry_ms, err))
        return -1;
    int64_t lease_ms, dead_ms;
    if (s_setting_int (self, "lease-ms", 10, EXPIRY_MAX, &lease_ms, err)
    ||  s_setting_int (self, "master-dead-ms", 10, EXPIRY_MAX, &dead_ms,
                       err))
        return -1;
    const char *data = s_setting (self, "data");
    self->ha = zr_ha_new (data, lease_ms, dead_ms, zclock_mono (), err);
    if (!self->ha)
        return -1;

    const char *bind = s_setting (self, "bind");
    char *list = strdup (bind ? bind : "");
    char *save = NULL;
    for (char *ep = strtok_r (list, ",", &save); ep;
         ep = strtok_r (NULL, ",", &save)) {
        while (*ep == ' ')
            ep++;
        if (!*ep)
            continue;
        char *bound = zr_transport_bind (self->router, ep, err);
        if (!bound) {
            free (list);
            return -1;
        }
        zlistx_add_end (self->endpoints, bound);
        zstr_free (&bound);
    }
    free (list);
    if (zlistx_size (self->endpoints) == 0) {
        *err = strdup ("setting bind: no endpoint to listen on");
        return -1;
    }
    if (beacon && s_start_beacon (self, err))
        return -1;
    self->started = true;
    self->expiry_checked = zclock_mono ();
    zsys_info ("nameserver: %s of cluster %s listening on %s, expiry %"
               PRId64 " ms%s", self->node_id, self->cluster,
               (const char *) zlistx_first (self->endpoints),
               self->expiry_ms, beacon ? ", beacon on" : "");
    return 0;
}

static void
s_pipe_command (nameserver_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *verb = zmsg_popstr (msg);
    if (!verb)
        ;
    else
    if (streq (verb, "$TERM"))
        self->terminated = true;
    else
    if (streq (verb, "START")) {
        char *err = NULL;
        if (s_start (self, &err) == 0)
            zstr_send (self->pipe, "OK");
        else {
            zstr_sendx (self->pipe, "ERROR", err ? err : "?", NULL);
            zstr_free (&err);
        }
    }
    else
    if (streq (verb, "ENDPOINTS")) {
        zmsg_t *reply = zmsg_new ();
        zmsg_addstr (reply, "OK");
        const char *ep = (const char *) zlistx_first (self->endpoints);
        while (ep) {
            zmsg_addstr (reply, ep);
            ep = (const char *) zlistx_next (self->endpoints);
        }
        zmsg_send (&reply, self->pipe);
    }
    else
        zsys_warning ("nameserver: unknown pipe command '%s'", verb);
    zstr_free (&verb);
    zmsg_destroy (&msg);
}

static void
s_endpoint_free (void **item)
{
    free (*item);
    *item = NULL;
}

//  Poll timeout: until the next expiry check.
static long
s_timeout (nameserver_t *self)
{
    if (!self->started)
        return -1;
    int64_t period = self->expiry_ms / 4;
    if (period > 1000)
        period = 1000;
    if (period < 1)
        period = 1;
    int64_t left = self->expiry_checked + period - zclock_mono ();
    return left < 0 ? 0 : (long) left;
}

void
zr_nameserver_actor (zsock_t *pipe, void *args)
{
    nameserver_t *self = (nameserver_t *) zmalloc (sizeof (nameserver_t));
    assert (self);
    self->pipe = pipe;
    char *text = args ? zconfig_str_save ((zconfig_t *) args) : NULL;
    self->cfg = text ? zconfig_str_load (text) : NULL;
    if (!self->cfg)
        self->cfg = zconfig_new ("root", NULL);
    zstr_free (&text);
    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_sndhwm (self->router, 10000);
    zsock_set_rcvhwm (self->router, 10000);
    zsock_set_linger (self->router, 0);
    self->endpoints = zlistx_new ();
    zlistx_set_destructor (self->endpoints, s_endpoint_free);
    zlistx_set_duplicator (self->endpoints, (zlistx_duplicator_fn *) strdup);
    self->enc = zr_enc_new ();
    self->scratch = zr_enc_new ();
    //  Node id: 16 random bytes (zuuid reads the system's generator).
    zuuid_t *uuid = zuuid_new ();
    assert (uuid);
    const byte *bytes = zuuid_data (uuid);
    for (int i = 0; i < 16; i++)
        snprintf (self->node_id + i * 2, 3, "%02x", bytes [i]);
    zuuid_destroy (&uuid);
    zsock_signal (pipe, 0);

    void *handle_pipe = zsock_resolve (pipe);
    void *handle_router = zsock_resolve (self->router);
    while (!self->terminated) {
        zmq_pollitem_t items [] = {
            { handle_pipe, 0, ZMQ_POLLIN, 0 },
            { handle_router, 0, ZMQ_POLLIN, 0 }
        };
        int n = zmq_poll (items, self->started ? 2 : 1, s_timeout (self));
        if (n == -1)
            break;          //  interrupted
        if (items [0].revents & ZMQ_POLLIN)
            s_pipe_command (self);
        if (self->terminated)
            break;
        if (self->started) {
            if (items [1].revents & ZMQ_POLLIN)
                s_serve_router (self);
            if (s_timeout (self) == 0)
                s_expire (self);
        }
    }
    zactor_destroy (&self->discovery);
    zsock_destroy (&self->router);
    zr_registry_destroy (&self->registry);
    zr_ha_destroy (&self->ha);
    zlistx_destroy (&self->endpoints);
    zr_enc_destroy (&self->enc);
    zr_enc_destroy (&self->scratch);
    zconfig_destroy (&self->cfg);
    free (self->cluster);
    free (self);
}

zactor_t *
zr_nameserver_new (zconfig_t *cfg, char **err)
{
    return zr_actor_start (zr_nameserver_actor, cfg, "nameserver", err);
}

char *
zr_nameserver_endpoint (zactor_t *nameserver)
{
    return zr_actor_endpoint (nameserver);
}
