/*  actors/discovery.c - nameserver beacons (docs/protocol.md section 10).

    The beacon codec, and the discovery actor wrapping CZMQ's zbeacon.

    Pipe commands and replies:
      PUBLISH cluster port interval_ms udp_port interface [node_id_hex]
                  -> "OK" hostname | "ERROR" reason
      LISTEN cluster udp_port interface
                  -> "OK" hostname | "ERROR" reason
      STATS       -> "OK" heard bad ignored_cluster   (decimal strings)
      $TERM
    Sent by the actor while listening, once per new nameserver (a node id
    not heard before, or a known one at a new endpoint):
      "NAMESERVER" endpoint node_id_hex

    One actor does one thing: a second PUBLISH or LISTEN gets ERROR.

    Interface: a non-empty interface argument calls zsys_set_interface,
    which is process-global CZMQ state (every zbeacon the process
    configures afterwards uses it). An empty one leaves that state alone,
    so zbeacon uses ZSYS_INTERFACE or an earlier zsys_set_interface, and
    otherwise the first broadcast-capable interface.

    Nothing received reaches an assert: zbeacon only asserts on payloads
    over 255 bytes when publishing (encode never makes one), and every
    received payload is checked here before use.
*/
#include "actors/discovery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define ZR_BEACON_HEADER 25            //  bytes before the cluster name
#define ZR_BEACON_CLUSTER_MAX 127
//  Most nameservers remembered while listening; beyond that new ones are
//  still reported but not deduplicated (a LAN has a handful).
#define ZR_DISCOVERY_KNOWN_MAX 1024


//  --------------------------------------------------------------------
//  Beacon codec

int
zr_beacon_encode (const zr_beacon_t *beacon, uint8_t *buf)
{
    assert (beacon);
    assert (buf);
    size_t len = strnlen (beacon->cluster, sizeof (beacon->cluster));
    if (len == 0 || len > ZR_BEACON_CLUSTER_MAX)
        return -1;
    memcpy (buf, ZR_BEACON_TAG, 4);
    buf [4] = ZR_BEACON_VERSION;
    buf [5] = beacon->role;
    buf [6] = (uint8_t) (beacon->port >> 8);
    buf [7] = (uint8_t) (beacon->port & 0xff);
    memcpy (buf + 8, beacon->node_id, ZR_BEACON_NODE_ID);
    buf [24] = (uint8_t) len;
    memcpy (buf + ZR_BEACON_HEADER, beacon->cluster, len);
    return (int) (ZR_BEACON_HEADER + len);
}

int
zr_beacon_decode (const uint8_t *data, size_t size, zr_beacon_t *beacon,
                  const char **reason)
{
    assert (beacon);
    const char *dummy;
    if (!reason)
        reason = &dummy;
    memset (beacon, 0, sizeof (*beacon));
    if (!data || size < ZR_BEACON_HEADER + 1) {
        *reason = "too short";
        return -1;
    }
    if (size > ZR_BEACON_MAX) {
        *reason = "too long";
        return -1;
    }
    if (memcmp (data, ZR_BEACON_TAG, 4) != 0) {
        *reason = "wrong tag";
        return -1;
    }
    if (data [4] != ZR_BEACON_VERSION) {
        *reason = "wrong version";
        return -1;
    }
    if (data [5] != ZR_BEACON_ROLE_NAMESERVER) {
        *reason = "wrong role";
        return -1;
    }
    size_t len = data [24];
    if (len == 0 || len > ZR_BEACON_CLUSTER_MAX) {
        *reason = "bad cluster name length";
        return -1;
    }
    if (size != ZR_BEACON_HEADER + len) {
        *reason = "cluster name length does not match the payload size";
        return -1;
    }
    if (memchr (data + ZR_BEACON_HEADER, 0, len)) {
        *reason = "cluster name holds a NUL byte";
        return -1;
    }
    uint16_t port = (uint16_t) ((data [6] << 8) | data [7]);
    if (port == 0) {
        *reason = "port 0";
        return -1;
    }
    beacon->role = data [5];
    beacon->port = port;
    memcpy (beacon->node_id, data + 8, ZR_BEACON_NODE_ID);
    memcpy (beacon->cluster, data + ZR_BEACON_HEADER, len);
    beacon->cluster [len] = 0;
    *reason = NULL;
    return 0;
}


//  --------------------------------------------------------------------
//  Discovery actor

typedef enum { S_IDLE, S_PUBLISH, S_LISTEN } s_mode_t;

typedef struct {
    zsock_t *pipe;
    zpoller_t *poller;
    zactor_t *beacon;                   //  zbeacon, once started
    s_mode_t mode;
    bool terminated;
    char cluster [ZR_BEACON_CLUSTER_MAX + 1];
    zhashx_t *known;                    //  node id hex -> endpoint
    uint64_t heard;                     //  good beacons of our cluster
    uint64_t bad;                       //  payloads that do not parse
    uint64_t ignored_cluster;           //  good beacons of other clusters
} s_self_t;

static void
s_reply_error (s_self_t *self, const char *reason)
{
    zsock_send (self->pipe, "ss", "ERROR", reason);
}

static void
s_hex (const uint8_t *data, size_t size, char *out)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out [2 * i] = digits [data [i] >> 4];
        out [2 * i + 1] = digits [data [i] & 15];
    }
    out [2 * size] = 0;
}

static int
s_unhex (const char *hex, uint8_t *out, size_t size)
{
    if (strlen (hex) != 2 * size)
        return -1;
    for (size_t i = 0; i < 2 * size; i++) {
        char c = hex [i];
        int v;
        if (c >= '0' && c <= '9')
            v = c - '0';
        else
        if (c >= 'a' && c <= 'f')
            v = c - 'a' + 10;
        else
        if (c >= 'A' && c <= 'F')
            v = c - 'A' + 10;
        else
            return -1;
        if (i % 2 == 0)
            out [i / 2] = (uint8_t) (v << 4);
        else
            out [i / 2] |= (uint8_t) v;
    }
    return 0;
}

//  Parses a decimal in [min, max]; -1 when it is not one.
static long
s_number (const char *s, long min, long max)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long v = strtol (s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -1;
    return v;
}

//  Starts zbeacon on udp_port with the given interface ("" keeps the
//  process-wide setting). Returns the hostname (caller frees) or NULL
//  with an ERROR sent.
static char *
s_start_beacon (s_self_t *self, long udp_port, const char *iface)
{
    if (iface && *iface)
        zsys_set_interface (iface);
    else
    if (streq (zsys_interface (), "") && !zsys_ipv6 ()) {
        //  zbeacon would log an error of its own; say it once, our way
        ziflist_t *iflist = ziflist_new ();
        size_t usable = iflist ? ziflist_size (iflist) : 0;
        ziflist_destroy (&iflist);
        if (usable == 0) {
            s_reply_error (self, "no broadcast-capable network interface");
            return NULL;
        }
    }
    self->beacon = zactor_new (zbeacon, NULL);
    if (!self->beacon) {
        s_reply_error (self, "cannot start zbeacon");
        return NULL;
    }
    zsock_send (self->beacon, "si", "CONFIGURE", (int) udp_port);
    char *hostname = zstr_recv (self->beacon);
    if (!hostname || !*hostname) {
        zstr_free (&hostname);
        zactor_destroy (&self->beacon);
        s_reply_error (self, "no broadcast-capable network interface");
        return NULL;
    }
    return hostname;
}

//  PUBLISH cluster port interval_ms udp_port interface [node_id_hex]
static void
s_publish (s_self_t *self, zmsg_t *msg)
{
    char *cluster = zmsg_popstr (msg);
    char *port_s = zmsg_popstr (msg);
    char *interval_s = zmsg_popstr (msg);
    char *udp_s = zmsg_popstr (msg);
    char *iface = zmsg_popstr (msg);
    char *node_s = zmsg_popstr (msg);
    long port = s_number (port_s, 1, 65535);
    long interval = s_number (interval_s, 1, 3600000);
    long udp_port = s_number (udp_s, 1, 65535);
    zr_beacon_t beacon;
    memset (&beacon, 0, sizeof (beacon));
    uint8_t payload [ZR_BEACON_MAX];
    int size = -1;

    if (self->mode != S_IDLE)
        s_reply_error (self, "discovery: already started");
    else
    if (!iface)
        s_reply_error (self, "PUBLISH: missing arguments");
    else
    if (port < 0)
        s_reply_error (self, "PUBLISH: bad TCP port");
    else
    if (interval < 0)
        s_reply_error (self, "PUBLISH: bad interval");
    else
    if (udp_port < 0)
        s_reply_error (self, "PUBLISH: bad UDP port");
    else
    if (strlen (cluster) == 0 || strlen (cluster) > ZR_BEACON_CLUSTER_MAX)
        s_reply_error (self, "PUBLISH: cluster name must be 1 to 127 bytes");
    else
    if (node_s && *node_s
    &&  s_unhex (node_s, beacon.node_id, ZR_BEACON_NODE_ID) == -1)
        s_reply_error (self, "PUBLISH: node id must be 32 hex digits");
    else {
        beacon.role = ZR_BEACON_ROLE_NAMESERVER;
        beacon.port = (uint16_t) port;
        if (!node_s || !*node_s) {
            //  zuuid reads the system's randomness, unlike randof ()
            zuuid_t *uuid = zuuid_new ();
            assert (uuid);
            memcpy (beacon.node_id, zuuid_data (uuid), ZR_BEACON_NODE_ID);
            zuuid_destroy (&uuid);
        }
        strcpy (beacon.cluster, cluster);
        size = zr_beacon_encode (&beacon, payload);
        if (size < 0 || size > ZR_BEACON_MAX)
            s_reply_error (self, "PUBLISH: cannot encode the beacon");
    }
    if (size > 0 && size <= ZR_BEACON_MAX && self->mode == S_IDLE) {
        char *hostname = s_start_beacon (self, udp_port, iface);
        if (hostname) {
            zsock_send (self->beacon, "sbi", "PUBLISH", payload,
                        (size_t) size, (int) interval);
            self->mode = S_PUBLISH;
            snprintf (self->cluster, sizeof (self->cluster), "%s", cluster);
            zsock_send (self->pipe, "ss", "OK", hostname);
            zstr_free (&hostname);
        }
    }
    zstr_free (&cluster);
    zstr_free (&port_s);
    zstr_free (&interval_s);
    zstr_free (&udp_s);
    zstr_free (&iface);
    zstr_free (&node_s);
}

//  LISTEN cluster udp_port interface
static void
s_listen (s_self_t *self, zmsg_t *msg)
{
    char *cluster = zmsg_popstr (msg);
    char *udp_s = zmsg_popstr (msg);
    char *iface = zmsg_popstr (msg);
    long udp_port = s_number (udp_s, 1, 65535);

    if (self->mode != S_IDLE)
        s_reply_error (self, "discovery: already started");
    else
    if (!iface)
        s_reply_error (self, "LISTEN: missing arguments");
    else
    if (udp_port < 0)
        s_reply_error (self, "LISTEN: bad UDP port");
    else
    if (strlen (cluster) == 0 || strlen (cluster) > ZR_BEACON_CLUSTER_MAX)
        s_reply_error (self, "LISTEN: cluster name must be 1 to 127 bytes");
    else {
        char *hostname = s_start_beacon (self, udp_port, iface);
        if (hostname) {
            //  Empty filter: every payload reaches us, so bad ones count
            zsock_send (self->beacon, "sb", "SUBSCRIBE", "", (size_t) 0);
            zpoller_add (self->poller, self->beacon);
            self->mode = S_LISTEN;
            snprintf (self->cluster, sizeof (self->cluster), "%s", cluster);
            zsock_send (self->pipe, "ss", "OK", hostname);
            zstr_free (&hostname);
        }
    }
    zstr_free (&cluster);
    zstr_free (&udp_s);
    zstr_free (&iface);
}

//  One beacon from zbeacon: sender address string + payload frame.
static void
s_handle_beacon (s_self_t *self)
{
    zmsg_t *msg = zmsg_recv (self->beacon);
    if (!msg)
        return;
    char *sender = zmsg_popstr (msg);
    zframe_t *payload = zmsg_pop (msg);
    zr_beacon_t beacon;
    const char *reason = NULL;

    if (!sender || !payload || !*sender || strlen (sender) > 200) {
        self->bad++;
        zsys_debug ("discovery: malformed message from zbeacon");
    }
    else
    if (zr_beacon_decode (zframe_data (payload), zframe_size (payload),
                          &beacon, &reason) == -1) {
        self->bad++;
        if (self->bad <= 10)
            zsys_warning ("discovery: bad beacon from %s: %s", sender,
                          reason);
    }
    else
    if (strneq (beacon.cluster, self->cluster))
        self->ignored_cluster++;
    else {
        self->heard++;
        char node [2 * ZR_BEACON_NODE_ID + 1];
        s_hex (beacon.node_id, ZR_BEACON_NODE_ID, node);
        //  IPv6 senders need brackets in a ZeroMQ endpoint
        char *endpoint = strchr (sender, ':')
            ? zsys_sprintf ("tcp://[%s]:%u", sender, (unsigned) beacon.port)
            : zsys_sprintf ("tcp://%s:%u", sender, (unsigned) beacon.port);
        const char *known = (const char *) zhashx_lookup (self->known, node);
        if (!known || strneq (known, endpoint)) {
            if (known || zhashx_size (self->known) < ZR_DISCOVERY_KNOWN_MAX)
                zhashx_update (self->known, node, endpoint);
            zsock_send (self->pipe, "sss", "NAMESERVER", endpoint, node);
        }
        zstr_free (&endpoint);
    }
    zstr_free (&sender);
    zframe_destroy (&payload);
    zmsg_destroy (&msg);
}

static void
s_handle_pipe (s_self_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg) {
        self->terminated = true;
        return;
    }
    char *verb = zmsg_popstr (msg);
    if (verb && streq (verb, "$TERM"))
        self->terminated = true;
    else
    if (verb && streq (verb, "PUBLISH"))
        s_publish (self, msg);
    else
    if (verb && streq (verb, "LISTEN"))
        s_listen (self, msg);
    else
    if (verb && streq (verb, "STATS")) {
        char heard [24], bad [24], ignored [24];
        snprintf (heard, sizeof (heard), "%" PRIu64, self->heard);
        snprintf (bad, sizeof (bad), "%" PRIu64, self->bad);
        snprintf (ignored, sizeof (ignored), "%" PRIu64,
                  self->ignored_cluster);
        zsock_send (self->pipe, "ssss", "OK", heard, bad, ignored);
    }
    else {
        zsys_warning ("discovery: unknown command '%s'", verb ? verb : "");
        s_reply_error (self, "unknown command");
    }
    zstr_free (&verb);
    zmsg_destroy (&msg);
}

void
zr_discovery_actor (zsock_t *pipe, void *args)
{
    s_self_t self;
    memset (&self, 0, sizeof (self));
    self.pipe = pipe;
    self.poller = zpoller_new (pipe, NULL);
    self.known = zhashx_new ();
    assert (self.poller);
    assert (self.known);
    zhashx_set_destructor (self.known, (zhashx_destructor_fn *) zstr_free);
    zhashx_set_duplicator (self.known, (zhashx_duplicator_fn *) strdup);
    zsock_signal (pipe, 0);

    while (!self.terminated) {
        void *which = zpoller_wait (self.poller, -1);
        if (!which) {
            if (zpoller_terminated (self.poller))
                break;
            continue;
        }
        if (which == pipe)
            s_handle_pipe (&self);
        else
        if (self.beacon && which == self.beacon)
            s_handle_beacon (&self);
    }
    if (self.beacon && self.mode == S_PUBLISH)
        zstr_sendx (self.beacon, "SILENCE", NULL);
    zactor_destroy (&self.beacon);
    zhashx_destroy (&self.known);
    zpoller_destroy (&self.poller);
}
