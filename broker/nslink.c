/*  broker/nslink.c - the broker's link to its nameservers (see nslink.h).

    One DEALER per nameserver. A REGISTER carries the broker's whole
    state and its rid is the state's generation, so a reply says which
    state that nameserver holds. REGISTERs are idempotent (a nameserver
    replaces the broker's record), so a few stale ones queued for a
    nameserver that was down do no harm; the send HWM keeps them few.
*/
#include <zrocket.h>
#include <netdb.h>
#include <arpa/inet.h>
#include "broker/nslink.h"
#include "actors/discovery.h"
#include "transport/codec.h"
#include "transport/transport.h"
#include "client/client.h"

#define ACK_WAIT_MS 3000
#define UNREGISTER_WAIT_MS 500
#define NS_MAX 16
#define PROBE_ENDPOINT "tcp://127.0.0.1:9876"
#define PROBE_MS 200
#define FIND_MS 500             //  FIND_MASTER: wait for every answer
#define QUERY_RID (1ULL << 40)  //  rids at or above: FIND_MASTER queries

typedef struct {
    char *endpoint;
    zsock_t *dealer;
    uint64_t acked;         //  highest state generation it confirmed
    bool refused;           //  it answered an error (logged once)
} ns_t;

typedef struct {
    uint64_t gen;
    int64_t deadline;
} wait_t;

typedef struct {
    zsock_t *pipe;
    bool terminated;
    bool configured;
    char *cluster;
    int heartbeat_ms;
    char *interface;
    int beacon_port;
    bool automatic;         //  "auto": probe loopback, listen to beacons
    zactor_t *discovery;

    ns_t ns [NS_MAX];
    size_t ns_count;

    zr_hdr_t *state;        //  last STATE (decoded; views into state_frame)
    zframe_t *state_frame;
    uint64_t gen;
    zr_enc_t *enc;
    wait_t waits [64];
    size_t wait_count;
    int64_t next_heartbeat;
    //  FIND_MASTER: one query round at a time (rid find_rid)
    uint64_t find_rid;          //  0: no round open
    int64_t find_end;
    size_t find_answered;
    char find_group [ZR_NAME_MAX + 1];
    int64_t find_self;          //  our broker id (never named)
    char *find_ha;              //  best so far
    int64_t find_epoch;
    int64_t find_id;
} nslink_t;

//  --------------------------------------------------------------------
//  Advertised endpoints

//  Local IPv4 address used to reach host, or NULL.
static char *
s_local_address_toward (const char *host)
{
    struct addrinfo hints, *res = NULL;
    memset (&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_DGRAM;
    if (getaddrinfo (host, "9", &hints, &res) != 0 || !res)
        return NULL;
    char *result = NULL;
    struct sockaddr_in *peer = (struct sockaddr_in *) res->ai_addr;
    if ((ntohl (peer->sin_addr.s_addr) >> 24) == 127)
        result = strdup ("127.0.0.1");
    else {
        int fd = socket (AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in local;
        socklen_t len = sizeof local;
        if (fd >= 0
        &&  connect (fd, res->ai_addr, res->ai_addrlen) == 0
        &&  getsockname (fd, (struct sockaddr *) &local, &len) == 0) {
            char text [INET_ADDRSTRLEN];
            if (inet_ntop (AF_INET, &local.sin_addr, text, sizeof text))
                result = strdup (text);
        }
        if (fd >= 0)
            close (fd);
    }
    freeaddrinfo (res);
    return result;
}

char *
zr_nslink_advertise (const char *bound, const char *nameserver_endpoint)
{
    if (strncmp (bound, "tcp://", 6) != 0)
        return strdup (bound);
    const char *host = bound + 6;
    const char *colon = strrchr (host, ':');
    if (!colon)
        return strdup (bound);
    size_t hostlen = (size_t) (colon - host);
    bool wildcard = (hostlen == 1 && *host == '*')
                 || (hostlen == 7 && memcmp (host, "0.0.0.0", 7) == 0);
    if (!wildcard)
        return strdup (bound);
    char *local = NULL;
    if (nameserver_endpoint && strncmp (nameserver_endpoint, "tcp://", 6) == 0) {
        char nshost [256];
        const char *h = nameserver_endpoint + 6;
        const char *c = strrchr (h, ':');
        size_t n = c ? (size_t) (c - h) : strlen (h);
        if (n < sizeof nshost) {
            memcpy (nshost, h, n);
            nshost [n] = 0;
            local = s_local_address_toward (nshost);
        }
    }
    if (!local)
        return zr_transport_advertise (bound);
    char *result = zsys_sprintf ("tcp://%s%s", local, colon);
    free (local);
    return result;
}

//  --------------------------------------------------------------------
//  Nameservers

static ns_t *
s_ns_find (nslink_t *self, const char *endpoint)
{
    for (size_t i = 0; i < self->ns_count; i++)
        if (streq (self->ns [i].endpoint, endpoint))
            return &self->ns [i];
    return NULL;
}

//  Writes a REGISTER (or UNREGISTER) for ns into self->enc.
static void
s_encode_register (nslink_t *self, ns_t *ns)
{
    const zr_obj_t *st = zr_hdr_root (self->state);
    const zr_obj_t *endpoints = zr_obj_get (st, "endpoints");
    const zr_obj_t *topics = zr_obj_get (st, "topics");
    char group [ZR_NAME_MAX + 1] = "";
    char role [16] = "master";
    int64_t broker_id = 0, epoch = 1;
    zr_field_strbuf (st, "group", group, sizeof group);
    zr_field_strbuf (st, "role", role, sizeof role);
    zr_field_int (st, "broker_id", &broker_id);
    zr_field_int (st, "epoch", &epoch);

    //  Endpoints other hosts can reach: the tcp ones, advertised toward
    //  this nameserver; every one when there is no tcp endpoint.
    size_t count = zr_obj_size (endpoints), tcp = 0;
    for (size_t i = 0; i < count; i++) {
        const char *s;
        size_t len;
        if (zr_obj_str (zr_obj_at (endpoints, i), &s, &len) == 0
        &&  len > 6 && memcmp (s, "tcp://", 6) == 0)
            tcp++;
    }
    //  The HA endpoint (a master's replication ROUTER), advertised like
    //  the client endpoints: slaves find their master through it.
    char ha [ZR_NAME_MAX + 256] = "";
    zr_field_strbuf (st, "ha", ha, sizeof ha);
    char *ha_adv = *ha ? zr_nslink_advertise (ha, ns->endpoint) : NULL;
    zr_enc_t *e = self->enc;
    zr_enc_reset (e);
    zr_enc_map (e, ha_adv ? 12 : 11);
    if (ha_adv)
        zr_enc_kstr (e, "ha", ha_adv);
    free (ha_adv);
    zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kstr (e, "cmd", "REGISTER");
    zr_enc_kint (e, "rid", (int64_t) self->gen);
    zr_enc_kstr (e, "cluster", self->cluster);
    zr_enc_kstr (e, "group", group);
    zr_enc_kint (e, "broker_id", broker_id);
    zr_enc_kstr (e, "role", role);
    zr_enc_kint (e, "epoch", epoch);
    zr_enc_kint (e, "heartbeat_ms", self->heartbeat_ms);
    zr_enc_str (e, "endpoints");
    zr_enc_array (e, tcp ? tcp : count);
    for (size_t i = 0; i < count; i++) {
        const char *s;
        size_t len;
        if (zr_obj_str (zr_obj_at (endpoints, i), &s, &len))
            continue;
        bool is_tcp = len > 6 && memcmp (s, "tcp://", 6) == 0;
        if (tcp && !is_tcp)
            continue;
        char *text = (char *) malloc (len + 1);
        memcpy (text, s, len);
        text [len] = 0;
        char *adv = zr_nslink_advertise (text, ns->endpoint);
        zr_enc_str (e, adv);
        free (adv);
        free (text);
    }
    zr_enc_str (e, "topics");
    size_t ntopics = zr_obj_size (topics);
    zr_enc_array (e, ntopics);
    for (size_t i = 0; i < ntopics; i++) {
        const zr_obj_t *t = zr_obj_at (topics, i);
        const char *name = "";
        size_t len = 0;
        int64_t queues = 0;
        zr_field_str (t, "topic", &name, &len);
        zr_field_int (t, "queues", &queues);
        zr_enc_map (e, 2);
        zr_enc_str (e, "topic");
        zr_enc_strn (e, name, len);
        zr_enc_kint (e, "queues", queues);
    }
}

static void
s_send_register (nslink_t *self, ns_t *ns)
{
    if (!self->state)
        return;
    s_encode_register (self, ns);
    //  A nameserver that is down or slow just misses this one: the next
    //  heartbeat carries the same state.
    zmq_send (zsock_resolve (ns->dealer), zr_enc_data (self->enc),
              zr_enc_size (self->enc), ZMQ_DONTWAIT);
}

static void
s_send_unregister (nslink_t *self, ns_t *ns)
{
    if (!self->state)
        return;
    char group [ZR_NAME_MAX + 1] = "";
    int64_t broker_id = 0;
    const zr_obj_t *st = zr_hdr_root (self->state);
    zr_field_strbuf (st, "group", group, sizeof group);
    zr_field_int (st, "broker_id", &broker_id);
    zr_enc_t *e = self->enc;
    zr_enc_reset (e);
    zr_enc_map (e, 6);
    zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
    zr_enc_kstr (e, "cmd", "UNREGISTER");
    zr_enc_kint (e, "rid", 0);
    zr_enc_kstr (e, "cluster", self->cluster);
    zr_enc_kstr (e, "group", group);
    zr_enc_kint (e, "broker_id", broker_id);
    zmq_send (zsock_resolve (ns->dealer), zr_enc_data (e), zr_enc_size (e),
              ZMQ_DONTWAIT);
}

static void s_send_info (nslink_t *self);

static void
s_ns_add (nslink_t *self, const char *endpoint)
{
    if (s_ns_find (self, endpoint))
        return;
    if (self->ns_count == NS_MAX) {
        zsys_warning ("nslink: more than %d nameservers, ignoring %s",
                      NS_MAX, endpoint);
        return;
    }
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_set_linger (dealer, 0);
    zsock_set_sndhwm (dealer, 4);
    char *err = NULL;
    if (zr_transport_connect (dealer, endpoint, &err)) {
        zsys_warning ("nslink: %s", err ? err : "connect failed");
        zstr_free (&err);
        zsock_destroy (&dealer);
        return;
    }
    ns_t *ns = &self->ns [self->ns_count++];
    memset (ns, 0, sizeof *ns);
    ns->endpoint = strdup (endpoint);
    ns->dealer = dealer;
    zsys_info ("nslink: registering with nameserver %s", endpoint);
    s_send_register (self, ns);
    if (self->configured)
        s_send_info (self);
}

//  --------------------------------------------------------------------
//  FIND_MASTER: which broker of our group the nameservers name master
//  (registered as master at the highest epoch, with an HA endpoint)

static void
s_find_start (nslink_t *self, zmsg_t *msg)
{
    char *group = zmsg_popstr (msg);
    char *id = zmsg_popstr (msg);
    if (group && id && strlen (group) <= ZR_NAME_MAX && !self->find_rid
    &&  self->ns_count) {
        strcpy (self->find_group, group);
        self->find_self = atoll (id);
        self->find_rid = QUERY_RID + (uint64_t) zclock_mono ();
        self->find_end = zclock_mono () + FIND_MS;
        self->find_answered = 0;
        self->find_epoch = -1;
        self->find_id = -1;
        zstr_free (&self->find_ha);
        zr_enc_t *e = self->enc;
        for (size_t i = 0; i < self->ns_count; i++) {
            zr_enc_reset (e);
            zr_enc_map (e, 3);
            zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
            zr_enc_kstr (e, "cmd", "GET_CLUSTER");
            zr_enc_kint (e, "rid", (int64_t) self->find_rid);
            zmq_send (zsock_resolve (self->ns [i].dealer), zr_enc_data (e),
                      zr_enc_size (e), ZMQ_DONTWAIT);
        }
    }
    else
    if (group && id && !self->find_rid)
        zstr_sendx (self->pipe, "MASTER", "", "0", "-1", NULL);
    zstr_free (&group);
    zstr_free (&id);
}

//  A GET_CLUSTER answer of the open round: keeps the best master.
static void
s_find_answer (nslink_t *self, const zr_obj_t *h)
{
    self->find_answered++;
    const zr_obj_t *brokers = zr_obj_get (h, "brokers");
    size_t count = brokers && zr_obj_is_array (brokers)
                 ? zr_obj_size (brokers) : 0;
    for (size_t i = 0; i < count; i++) {
        const zr_obj_t *b = zr_obj_at (brokers, i);
        char group [ZR_NAME_MAX + 1], role [16], ha [512];
        int64_t id = -1, epoch = 0;
        if (zr_field_strbuf (b, "group", group, sizeof group) != ZR_FIELD_OK
        ||  zr_field_strbuf (b, "role", role, sizeof role) != ZR_FIELD_OK
        ||  zr_field_strbuf (b, "ha", ha, sizeof ha) != ZR_FIELD_OK
        ||  zr_field_int (b, "broker_id", &id) != ZR_FIELD_OK
        ||  zr_field_int (b, "epoch", &epoch) != ZR_FIELD_OK
        ||  strneq (group, self->find_group) || strneq (role, "master")
        ||  !*ha || id == self->find_self)
            continue;
        if (epoch > self->find_epoch) {
            self->find_epoch = epoch;
            self->find_id = id;
            zstr_free (&self->find_ha);
            self->find_ha = strdup (ha);
        }
    }
}

//  Ends the round when every nameserver answered or the wait is over:
//  tells the broker MASTER ha epoch id ("" 0 -1 when none is named).
static void
s_find_check (nslink_t *self)
{
    if (!self->find_rid || (self->find_answered < self->ns_count
                            && zclock_mono () < self->find_end))
        return;
    char epoch [24], id [24];
    snprintf (epoch, sizeof epoch, "%" PRId64,
              self->find_epoch > 0 ? self->find_epoch : 0);
    snprintf (id, sizeof id, "%" PRId64, self->find_id);
    zstr_sendx (self->pipe, "MASTER", self->find_ha ? self->find_ha : "",
                epoch, id, NULL);
    self->find_rid = 0;
    zstr_free (&self->find_ha);
}

//  Reads a nameserver's reply.
static void
s_ns_reply (nslink_t *self, ns_t *ns)
{
    zmsg_t *msg = zmsg_recv (ns->dealer);
    if (!msg)
        return;
    zframe_t *frame = zmsg_first (msg);
    zr_hdr_t *hdr = frame ? zr_hdr_decode (zframe_data (frame),
                                           zframe_size (frame), NULL)
                          : NULL;
    const zr_obj_t *h = hdr ? zr_hdr_root (hdr) : NULL;
    int64_t rid = 0;
    char status [32] = "";
    if (h && zr_field_int (h, "rid", &rid) == 0
    &&  zr_field_strbuf (h, "status", status, sizeof status) == 0) {
        if ((uint64_t) rid >= QUERY_RID) {
            if ((uint64_t) rid == self->find_rid && streq (status, "OK"))
                s_find_answer (self, h);
        }
        else
        if (streq (status, "OK")) {
            if ((uint64_t) rid > ns->acked)
                ns->acked = (uint64_t) rid;
            ns->refused = false;
        }
        else
        if (!ns->refused) {
            char *reason = zr_field_strdup (h, "reason");
            zsys_warning ("nslink: nameserver %s refused registration: "
                          "%s %s", ns->endpoint, status,
                          reason ? reason : "");
            free (reason);
            ns->refused = true;
        }
    }
    zr_hdr_destroy (&hdr);
    zmsg_destroy (&msg);
}

//  Tells the broker about states now on every nameserver, or whose wait
//  is over.
static void
s_check_waits (nslink_t *self)
{
    int64_t now = zclock_mono ();
    size_t kept = 0;
    for (size_t i = 0; i < self->wait_count; i++) {
        wait_t *w = &self->waits [i];
        size_t acked = 0;
        for (size_t n = 0; n < self->ns_count; n++)
            if (self->ns [n].acked >= w->gen)
                acked++;
        if (acked == self->ns_count || now >= w->deadline) {
            char gen [24], a [24], t [24];
            snprintf (gen, sizeof gen, "%" PRIu64, w->gen);
            snprintf (a, sizeof a, "%zu", acked);
            snprintf (t, sizeof t, "%zu", self->ns_count);
            zstr_sendx (self->pipe, "ACKED", gen, a, t, NULL);
        }
        else
            self->waits [kept++] = *w;
    }
    self->wait_count = kept;
}

//  Is a nameserver answering on loopback's default port?
static bool
s_probe_loopback (void)
{
    zr_client_t *client = zr_client_new (PROBE_ENDPOINT);
    if (!client)
        return false;
    zr_client_begin (client, "PING", 0);
    zr_reply_t *reply = zr_client_call (client, NULL, 0, PROBE_MS);
    bool found = reply && zr_reply_status (reply) == ZR_OK
              && zr_obj_get (zr_reply_header (reply), "nameserver");
    zr_reply_destroy (&reply);
    zr_client_destroy (&client);
    return found;
}

//  Tells the broker which nameservers it has and what beacons it heard.
static void
s_send_info (nslink_t *self)
{
    char list [NS_MAX * 260] = "";
    for (size_t i = 0; i < self->ns_count; i++) {
        if (i)
            strcat (list, ",");
        strncat (list, self->ns [i].endpoint, 255);
    }
    char *heard = NULL, *bad = NULL, *other = NULL;
    if (self->discovery) {
        char *status = NULL;
        zstr_send (self->discovery, "STATS");
        zstr_recvx (self->discovery, &status, &heard, &bad, &other, NULL);
        zstr_free (&status);
    }
    zstr_sendx (self->pipe, "INFO", list, heard ? heard : "0",
                bad ? bad : "0", other ? other : "0", NULL);
    zstr_free (&heard);
    zstr_free (&bad);
    zstr_free (&other);
}

static void
s_configure (nslink_t *self, zmsg_t *msg)
{
    char *list = zmsg_popstr (msg);
    char *cluster = zmsg_popstr (msg);
    char *heartbeat = zmsg_popstr (msg);
    char *interface = zmsg_popstr (msg);
    char *port = zmsg_popstr (msg);
    if (!list || !cluster || !heartbeat || !interface || !port) {
        zstr_sendx (self->pipe, "ERROR", "CONFIGURE needs 5 arguments", NULL);
        goto done;
    }
    self->cluster = strdup (cluster);
    self->heartbeat_ms = atoi (heartbeat) > 0 ? atoi (heartbeat) : 10000;
    self->interface = strdup (interface);
    self->beacon_port = atoi (port) > 0 ? atoi (port) : 9876;
    if (streq (list, "auto"))
        self->automatic = true;
    else
    if (strneq (list, "none")) {
        char *save = NULL;
        for (char *ep = strtok_r (list, ",", &save); ep;
             ep = strtok_r (NULL, ",", &save)) {
            while (*ep == ' ')
                ep++;
            if (*ep)
                s_ns_add (self, ep);
        }
    }
    zstr_send (self->pipe, "OK");
    //  From here on the broker reads INFO events: none before the OK.
    self->configured = true;
    if (self->automatic) {
        if (s_probe_loopback ())
            s_ns_add (self, PROBE_ENDPOINT);
        self->discovery = zactor_new (zr_discovery_actor, NULL);
        char bp [16];
        snprintf (bp, sizeof bp, "%d", self->beacon_port);
        zstr_sendx (self->discovery, "LISTEN", self->cluster, bp,
                    self->interface, NULL);
        char *status = NULL, *reason = NULL;
        zstr_recvx (self->discovery, &status, &reason, NULL);
        if (!status || strneq (status, "OK")) {
            zsys_warning ("nslink: not listening for nameserver beacons: %s",
                          reason ? reason : "?");
            zactor_destroy (&self->discovery);
        }
        zstr_free (&status);
        zstr_free (&reason);
    }
    s_send_info (self);
done:
    zstr_free (&list);
    zstr_free (&cluster);
    zstr_free (&heartbeat);
    zstr_free (&interface);
    zstr_free (&port);
}

static void
s_pipe_command (nslink_t *self)
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
    if (streq (verb, "CONFIGURE"))
        s_configure (self, msg);
    else
    if (streq (verb, "STATE")) {
        char *gen = zmsg_popstr (msg);
        zframe_t *frame = zmsg_pop (msg);
        zr_hdr_t *state = frame ? zr_hdr_decode (zframe_data (frame),
                                                 zframe_size (frame), NULL)
                                : NULL;
        if (gen && state && zr_obj_is_map (zr_hdr_root (state))) {
            zr_hdr_destroy (&self->state);
            zframe_destroy (&self->state_frame);
            self->state = state;
            self->state_frame = frame;
            state = NULL;
            frame = NULL;
            self->gen = strtoull (gen, NULL, 10);
            for (size_t i = 0; i < self->ns_count; i++)
                s_send_register (self, &self->ns [i]);
            if (self->wait_count < 64) {
                self->waits [self->wait_count].gen = self->gen;
                self->waits [self->wait_count].deadline =
                    zclock_mono () + ACK_WAIT_MS;
                self->wait_count++;
            }
            self->next_heartbeat = zclock_mono () + self->heartbeat_ms;
            s_check_waits (self);
        }
        zr_hdr_destroy (&state);
        zframe_destroy (&frame);
        zstr_free (&gen);
    }
    else
    if (streq (verb, "FIND_MASTER"))
        s_find_start (self, msg);
    else
    if (streq (verb, "NAMESERVERS")) {
        zmsg_t *reply = zmsg_new ();
        zmsg_addstr (reply, "OK");
        for (size_t i = 0; i < self->ns_count; i++)
            zmsg_addstr (reply, self->ns [i].endpoint);
        zmsg_send (&reply, self->pipe);
    }
    zstr_free (&verb);
    zmsg_destroy (&msg);
}

static void
s_discovery_event (nslink_t *self)
{
    zmsg_t *msg = zmsg_recv (self->discovery);
    if (!msg)
        return;
    char *event = zmsg_popstr (msg);
    char *endpoint = zmsg_popstr (msg);
    if (event && endpoint && streq (event, "NAMESERVER"))
        s_ns_add (self, endpoint);
    zstr_free (&event);
    zstr_free (&endpoint);
    zmsg_destroy (&msg);
}

void
zr_nslink_actor (zsock_t *pipe, void *args)
{
    nslink_t *self = (nslink_t *) zmalloc (sizeof (nslink_t));
    self->pipe = pipe;
    self->enc = zr_enc_new ();
    self->heartbeat_ms = 10000;
    zsock_signal (pipe, 0);

    while (!self->terminated) {
        zmq_pollitem_t items [NS_MAX + 2];
        size_t n = 0;
        items [n++] = (zmq_pollitem_t) { zsock_resolve (pipe), 0,
                                         ZMQ_POLLIN, 0 };
        size_t disc = SIZE_MAX;
        if (self->discovery) {
            disc = n;
            items [n++] = (zmq_pollitem_t) {
                zsock_resolve (zactor_sock (self->discovery)), 0,
                ZMQ_POLLIN, 0 };
        }
        size_t first_ns = n;
        for (size_t i = 0; i < self->ns_count; i++)
            items [n++] = (zmq_pollitem_t) {
                zsock_resolve (self->ns [i].dealer), 0, ZMQ_POLLIN, 0 };
        int64_t now = zclock_mono ();
        int64_t timeout = self->next_heartbeat ? self->next_heartbeat - now
                                               : 1000;
        for (size_t i = 0; i < self->wait_count; i++)
            if (self->waits [i].deadline - now < timeout)
                timeout = self->waits [i].deadline - now;
        if (self->find_rid && self->find_end - now < timeout)
            timeout = self->find_end - now;
        if (timeout < 0)
            timeout = 0;
        if (zmq_poll (items, (int) n, (long) timeout) == -1)
            break;
        if (items [0].revents & ZMQ_POLLIN)
            s_pipe_command (self);
        if (self->terminated)
            break;
        if (disc != SIZE_MAX && (items [disc].revents & ZMQ_POLLIN))
            s_discovery_event (self);
        size_t count = n - first_ns;
        for (size_t i = 0; i < count && i < self->ns_count; i++)
            if (items [first_ns + i].revents & ZMQ_POLLIN)
                s_ns_reply (self, &self->ns [i]);
        now = zclock_mono ();
        if (self->state && now >= self->next_heartbeat) {
            if (self->automatic && !s_ns_find (self, PROBE_ENDPOINT)
            &&  s_probe_loopback ())
                s_ns_add (self, PROBE_ENDPOINT);
            for (size_t i = 0; i < self->ns_count; i++)
                s_send_register (self, &self->ns [i]);
            self->next_heartbeat = zclock_mono () + self->heartbeat_ms;
            s_send_info (self);
        }
        s_check_waits (self);
        s_find_check (self);
    }
    //  Unregister, and give the nameservers a moment to hear it.
    if (self->state && self->ns_count) {
        for (size_t i = 0; i < self->ns_count; i++)
            s_send_unregister (self, &self->ns [i]);
        int64_t end = zclock_mono () + UNREGISTER_WAIT_MS;
        size_t answered = 0;
        bool done [NS_MAX] = { false };
        while (answered < self->ns_count && zclock_mono () < end) {
            zmq_pollitem_t items [NS_MAX];
            for (size_t i = 0; i < self->ns_count; i++)
                items [i] = (zmq_pollitem_t) {
                    zsock_resolve (self->ns [i].dealer), 0, ZMQ_POLLIN, 0 };
            if (zmq_poll (items, (int) self->ns_count,
                          (long) (end - zclock_mono ())) <= 0)
                break;
            for (size_t i = 0; i < self->ns_count; i++)
                if (items [i].revents & ZMQ_POLLIN) {
                    zmsg_t *m = zmsg_recv (self->ns [i].dealer);
                    zmsg_destroy (&m);
                    if (!done [i]) {
                        done [i] = true;
                        answered++;
                    }
                }
        }
    }
    for (size_t i = 0; i < self->ns_count; i++) {
        zsock_destroy (&self->ns [i].dealer);
        free (self->ns [i].endpoint);
    }
    zactor_destroy (&self->discovery);
    zr_hdr_destroy (&self->state);
    zframe_destroy (&self->state_frame);
    zr_enc_destroy (&self->enc);
    free (self->find_ha);
    free (self->cluster);
    free (self->interface);
    free (self);
}
