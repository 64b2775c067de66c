/*  broker/failover.c - HA heartbeats, leases and vote campaigns (see
    failover.h).
*/
#include <zrocket.h>
#include "transport/codec.h"
#include "broker/failover.h"

#define RING 64                 //  requests remembered per nameserver
#define CAMPAIGN_MS 1000
#define HEADER_MAX (64 * 1024)

typedef enum { REQ_NONE, REQ_HEARTBEAT, REQ_VOTE, REQ_RESIGN,
               REQ_WITHDRAW } req_kind_t;

typedef struct {
    uint64_t rid;
    req_kind_t kind;
    int64_t sent;
    int64_t epoch;
    int64_t version;            //  heartbeat: the in-sync set's version
    uint64_t isr_hash;          //  and its digest (s_isr_hash)
} req_t;

typedef struct {
    char *endpoint;
    zsock_t *dealer;
    int64_t lease_until;
    int64_t confirmed;          //  newest set version it echoed back
    req_t ring [RING];
} ns_t;

typedef struct {
    zsock_t *pipe;
    bool terminated;
    bool configured;
    char *cluster;
    char *group;
    int64_t broker_id;
    int64_t heartbeat_ms;
    ns_t ns [ZR_FAILOVER_NAMESERVERS_MAX];
    size_t ns_count;
    //  State from the broker
    bool master;
    int64_t epoch;
    int64_t seq;
    int64_t isr [64];
    size_t isr_count;
    //  Timers and results
    int64_t next_heartbeat;
    int64_t lease_told;         //  last LEASE sent to the broker
    uint64_t rid;
    //  Campaign (epoch 0: none)
    int64_t campaign_epoch;
    int64_t campaign_end;
    size_t granted;
    size_t answered;
    char refusal [256];
    //  Handover round (admin promote): HA_RESIGN or its withdrawal to
    //  every nameserver (resign_kind REQ_NONE: none)
    req_kind_t resign_kind;
    int64_t resign_epoch;
    int64_t resign_seq;
    int64_t resign_successor;
    int64_t resign_end;
    size_t resign_ok;
    size_t resign_answered;
    char resign_refusal [256];
    zr_enc_t *enc;
    //  In-sync sets told this term, until a majority confirmed them
    int64_t isr_version;
    zr_failover_isr_t history [ZR_FAILOVER_HISTORY];
    size_t history_count;
    uint64_t states;            //  STATE commands received
    char *recorded_told;        //  last RECORDED ids sent
} failover_t;

int64_t
zr_failover_majority (const int64_t *until, size_t count)
{
    if (count == 0 || count > ZR_FAILOVER_NAMESERVERS_MAX)
        return 0;
    int64_t sorted [ZR_FAILOVER_NAMESERVERS_MAX];
    memcpy (sorted, until, count * sizeof (int64_t));
    //  Descending insertion sort: count is small.
    for (size_t i = 1; i < count; i++)
        for (size_t j = i; j > 0 && sorted [j] > sorted [j - 1]; j--) {
            int64_t t = sorted [j];
            sorted [j] = sorted [j - 1];
            sorted [j - 1] = t;
        }
    return sorted [count / 2];
}

static int
s_id_cmp (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Sorts ids and drops duplicates and skip (our own id). Returns the
//  count left.
static size_t
s_ids_norm (int64_t *ids, size_t count, int64_t skip)
{
    qsort (ids, count, sizeof (int64_t), s_id_cmp);
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (ids [i] != skip && (n == 0 || ids [n - 1] != ids [i]))
            ids [n++] = ids [i];
    return n;
}

//  FNV-1a over normalised ids: tells an echoed set from the one sent.
static uint64_t
s_isr_hash (const int64_t *ids, size_t count)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < count; i++)
        for (int b = 0; b < 8; b++) {
            h ^= (uint64_t) ((ids [i] >> (b * 8)) & 0xff);
            h *= 1099511628211ULL;
        }
    return h ^ count;
}

size_t
zr_failover_recorded_set (const zr_failover_isr_t *history, size_t count,
                          const int64_t *confirmed, size_t ns_count,
                          int64_t *out, size_t max)
{
    int64_t oldest = zr_failover_majority (confirmed, ns_count);
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (history [i].version < oldest)
            continue;       //  superseded at a majority
        for (size_t j = 0; j < history [i].count; j++) {
            bool dup = false;
            for (size_t k = 0; k < n && !dup; k++)
                dup = out [k] == history [i].ids [j];
            if (!dup && n < max)
                out [n++] = history [i].ids [j];
        }
    }
    qsort (out, n, sizeof (int64_t), s_id_cmp);
    return n;
}

static void
s_send (failover_t *self, ns_t *ns, req_kind_t kind, int64_t epoch)
{
    uint64_t rid = ++self->rid;
    req_t *req = &ns->ring [rid % RING];
    req->rid = rid;
    req->kind = kind;
    req->sent = zclock_mono ();
    req->epoch = epoch;
    req->version = self->isr_version;
    if (kind == REQ_HEARTBEAT) {
        int64_t ids [64];
        memcpy (ids, self->isr, self->isr_count * sizeof (int64_t));
        size_t n = s_ids_norm (ids, self->isr_count, self->broker_id);
        req->isr_hash = s_isr_hash (ids, n);
    }
    zr_enc_t *e = self->enc;
    zr_enc_reset (e);
    if (kind == REQ_HEARTBEAT) {
        zr_enc_map (e, 9);
        zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
        zr_enc_kstr (e, "cmd", "HA_HEARTBEAT");
        zr_enc_kint (e, "rid", (int64_t) rid);
        zr_enc_kstr (e, "cluster", self->cluster);
        zr_enc_kstr (e, "group", self->group);
        zr_enc_kint (e, "broker_id", self->broker_id);
        zr_enc_kint (e, "epoch", self->epoch);
        zr_enc_kint (e, "seq", self->seq);
        zr_enc_str (e, "isr");
        zr_enc_array (e, self->isr_count);
        for (size_t i = 0; i < self->isr_count; i++)
            zr_enc_int (e, self->isr [i]);
    }
    else
    if (kind == REQ_RESIGN || kind == REQ_WITHDRAW) {
        zr_enc_map (e, 10);
        zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
        zr_enc_kstr (e, "cmd", "HA_RESIGN");
        zr_enc_kint (e, "rid", (int64_t) rid);
        zr_enc_kstr (e, "cluster", self->cluster);
        zr_enc_kstr (e, "group", self->group);
        zr_enc_kint (e, "broker_id", self->broker_id);
        zr_enc_kint (e, "epoch", epoch);
        zr_enc_kint (e, "seq", self->resign_seq);
        zr_enc_kint (e, "successor", self->resign_successor);
        zr_enc_kbool (e, "withdraw", kind == REQ_WITHDRAW);
    }
    else {
        zr_enc_map (e, 9);
        zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
        zr_enc_kstr (e, "cmd", "VOTE");
        zr_enc_kint (e, "rid", (int64_t) rid);
        zr_enc_kstr (e, "cluster", self->cluster);
        zr_enc_kstr (e, "group", self->group);
        zr_enc_kint (e, "epoch", epoch);
        zr_enc_kint (e, "candidate", self->broker_id);
        zr_enc_kint (e, "last_epoch", self->epoch);
        zr_enc_kint (e, "last_seq", self->seq);
    }
    //  Never waits: a nameserver that is gone just misses it.
    zmq_send (zsock_resolve (ns->dealer), zr_enc_data (e), zr_enc_size (e),
              ZMQ_DONTWAIT);
}

static void s_tell_recorded (failover_t *self, bool force);

static void
s_heartbeat (failover_t *self)
{
    for (size_t i = 0; i < self->ns_count; i++)
        s_send (self, &self->ns [i], REQ_HEARTBEAT, 0);
    self->next_heartbeat = zclock_mono () + self->heartbeat_ms;
    s_tell_recorded (self, true);   //  again: a dropped event heals
}

//  Tells the broker which slaves the nameservers may have recorded
//  (RECORDED), and forgets sets a majority has superseded.
static void
s_tell_recorded (failover_t *self, bool force)
{
    if (!self->master)
        return;
    int64_t confirmed [ZR_FAILOVER_NAMESERVERS_MAX];
    for (size_t i = 0; i < self->ns_count; i++)
        confirmed [i] = self->ns [i].confirmed;
    int64_t oldest = zr_failover_majority (confirmed, self->ns_count);
    size_t keep = 0;
    for (size_t i = 0; i < self->history_count; i++)
        if (self->history [i].version >= oldest
        ||  i + 1 == self->history_count)
            self->history [keep++] = self->history [i];
    self->history_count = keep;
    int64_t ids [ZR_FAILOVER_ISR_MAX];
    size_t n = zr_failover_recorded_set (self->history, self->history_count,
                                         confirmed, self->ns_count, ids,
                                         ZR_FAILOVER_ISR_MAX);
    char text [ZR_FAILOVER_ISR_MAX * 21 + 1] = "";
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += snprintf (text + len, sizeof text - len, "%s%" PRId64,
                         i ? "," : "", ids [i]);
    if (!force && self->recorded_told && streq (text, self->recorded_told))
        return;
    free (self->recorded_told);
    self->recorded_told = strdup (text);
    char states [24];
    snprintf (states, sizeof states, "%" PRIu64, self->states);
    zstr_sendx (self->pipe, "RECORDED", states, text, NULL);
}

//  A STATE arrived: a new term starts the history afresh; a new set gets
//  the next version (sent with every heartbeat that carries it).
static void
s_isr_told (failover_t *self, bool new_term, bool moved)
{
    self->states++;
    if (!self->master)
        return;
    if (new_term) {
        self->history_count = 0;
        for (size_t i = 0; i < self->ns_count; i++)
            self->ns [i].confirmed = 0;
    }
    if (new_term || moved || self->history_count == 0) {
        if (self->history_count == ZR_FAILOVER_HISTORY) {
            //  Full: merge the two oldest (their union stands for both,
            //  which only keeps more slaves counted).
            zr_failover_isr_t *a = &self->history [0];
            zr_failover_isr_t *b = &self->history [1];
            for (size_t i = 0; i < a->count; i++) {
                bool dup = false;
                for (size_t j = 0; j < b->count && !dup; j++)
                    dup = b->ids [j] == a->ids [i];
                if (!dup && b->count < ZR_FAILOVER_ISR_MAX)
                    b->ids [b->count++] = a->ids [i];
            }
            memmove (self->history, self->history + 1,
                     (ZR_FAILOVER_HISTORY - 1) * sizeof (zr_failover_isr_t));
            self->history_count--;
        }
        zr_failover_isr_t *e = &self->history [self->history_count++];
        e->version = ++self->isr_version;
        e->count = self->isr_count < ZR_FAILOVER_ISR_MAX
                 ? self->isr_count : ZR_FAILOVER_ISR_MAX;
        memcpy (e->ids, self->isr, e->count * sizeof (int64_t));
        e->count = s_ids_norm (e->ids, e->count, self->broker_id);
    }
}

//  An OK to a heartbeat: when it echoes the set that heartbeat carried,
//  that nameserver recorded the set's version (or a newer one).
static void
s_isr_confirm (failover_t *self, ns_t *ns, const req_t *req,
               const zr_obj_t *h)
{
    const zr_obj_t *list = zr_obj_get (h, "isr");
    if (!list || !zr_obj_is_array (list)
    ||  zr_obj_size (list) > ZR_FAILOVER_ISR_MAX + 1)
        return;     //  no echo: nothing confirmed (an older nameserver)
    int64_t ids [ZR_FAILOVER_ISR_MAX + 1];
    size_t n = zr_obj_size (list);
    for (size_t i = 0; i < n; i++)
        if (zr_obj_int (zr_obj_at (list, i), &ids [i]) != ZR_FIELD_OK)
            return;
    n = s_ids_norm (ids, n, self->broker_id);
    if (s_isr_hash (ids, n) != req->isr_hash
    ||  req->version <= ns->confirmed)
        return;
    ns->confirmed = req->version;
    s_tell_recorded (self, false);
}

static void
s_tell_lease (failover_t *self)
{
    int64_t until [ZR_FAILOVER_NAMESERVERS_MAX];
    for (size_t i = 0; i < self->ns_count; i++)
        until [i] = self->ns [i].lease_until;
    int64_t majority = zr_failover_majority (until, self->ns_count);
    if (majority > self->lease_told) {
        self->lease_told = majority;
        char text [24];
        snprintf (text, sizeof text, "%" PRId64, majority);
        zstr_sendx (self->pipe, "LEASE", text, NULL);
    }
}

static void
s_fenced (failover_t *self, int64_t epoch, int64_t master)
{
    //  Drop every lease: nothing more may be acknowledged.
    for (size_t i = 0; i < self->ns_count; i++)
        self->ns [i].lease_until = 0;
    self->lease_told = 0;
    self->master = false;
    char e [24], m [24];
    snprintf (e, sizeof e, "%" PRId64, epoch);
    snprintf (m, sizeof m, "%" PRId64, master);
    zstr_sendx (self->pipe, "FENCED", e, m, NULL);
}

static void
s_campaign_end (failover_t *self, bool won)
{
    char e [24];
    snprintf (e, sizeof e, "%" PRId64, self->campaign_epoch);
    if (won)
        zstr_sendx (self->pipe, "ELECTED", e, NULL);
    else
        zstr_sendx (self->pipe, "DEFEATED", e,
                    self->refusal [0] ? self->refusal
                                      : "no majority of nameservers "
                                        "answered in time", NULL);
    self->campaign_epoch = 0;
}

//  Ends a handover round: RESIGNED / RESIGN_FAILED reason, or
//  WITHDRAWN / WITHDRAW_FAILED reason, with the epoch.
static void
s_resign_end (failover_t *self, bool ok)
{
    char e [24];
    snprintf (e, sizeof e, "%" PRId64, self->resign_epoch);
    bool withdraw = self->resign_kind == REQ_WITHDRAW;
    const char *event = withdraw ? (ok ? "WITHDRAWN" : "WITHDRAW_FAILED")
                                 : (ok ? "RESIGNED" : "RESIGN_FAILED");
    zstr_sendx (self->pipe, event, e,
                self->resign_refusal [0] ? self->resign_refusal
                                         : "no majority of nameservers "
                                           "answered in time", NULL);
    self->resign_kind = REQ_NONE;
}

static void
s_reply (failover_t *self, ns_t *ns)
{
    zmsg_t *msg = zmsg_recv (ns->dealer);
    if (!msg)
        return;
    zframe_t *frame = zmsg_first (msg);
    zr_hdr_t *hdr = NULL;
    if (frame && zframe_size (frame) <= HEADER_MAX)
        hdr = zr_hdr_decode (zframe_data (frame), zframe_size (frame),
                             NULL);
    const zr_obj_t *h = hdr ? zr_hdr_root (hdr) : NULL;
    int64_t rid = -1;
    char status [32] = "";
    if (!h || zr_field_int (h, "rid", &rid) != ZR_FIELD_OK
    ||  zr_field_strbuf (h, "status", status, sizeof status)
        != ZR_FIELD_OK)
        goto done;
    req_t *req = &ns->ring [(uint64_t) rid % RING];
    if (req->rid != (uint64_t) rid || req->kind == REQ_NONE)
        goto done;      //  too old, or not ours
    req_kind_t kind = req->kind;
    req->kind = REQ_NONE;
    if (kind == REQ_HEARTBEAT && streq (status, "OK") && self->master)
        s_isr_confirm (self, ns, req, h);
    if (kind == REQ_HEARTBEAT) {
        int64_t lease_ms = 0;
        if (streq (status, "OK")
        &&  zr_field_int (h, "lease_ms", &lease_ms) == ZR_FIELD_OK
        &&  lease_ms > 0 && self->master) {
            int64_t until = req->sent + lease_ms;
            if (until > ns->lease_until)
                ns->lease_until = until;
            s_tell_lease (self);
        }
        else
        if (streq (status, "NOT_MASTER") && self->master) {
            int64_t epoch = 0, master = -1;
            zr_field_int (h, "epoch", &epoch);
            zr_field_int (h, "master_id", &master);
            if (epoch < self->epoch) {
                //  Fencing needs a later epoch (or ours under another
                //  master): an older or missing one is not evidence of
                //  another master (e.g. a foreign process on a reused
                //  port answered).
                zsys_warning ("failover: nameserver %s answered NOT_MASTER "
                              "with epoch %" PRId64 " (ours: %" PRId64
                              "): ignored", ns->endpoint, epoch,
                              self->epoch);
                goto done;
            }
            zsys_warning ("failover: nameserver %s: a higher epoch %"
                          PRId64 " exists; this broker stops acting as "
                          "master", ns->endpoint, epoch);
            s_fenced (self, epoch, master);
        }
    }
    else
    if ((kind == REQ_RESIGN || kind == REQ_WITHDRAW)
    &&  kind == self->resign_kind && req->epoch == self->resign_epoch) {
        bool accepted = false;
        self->resign_answered++;
        if (streq (status, "OK")
        &&  zr_field_bool (h, "accepted", &accepted) == ZR_FIELD_OK
        &&  accepted)
            self->resign_ok++;
        else {
            char why [200] = "";
            if (zr_field_strbuf (h, "refusal", why, sizeof why)
                != ZR_FIELD_OK)
                zr_field_strbuf (h, "reason", why, sizeof why);
            snprintf (self->resign_refusal, sizeof self->resign_refusal,
                      "%s: %s", ns->endpoint, why [0] ? why : status);
        }
        if (self->resign_ok >= self->ns_count / 2 + 1)
            s_resign_end (self, true);
        else
        if (self->resign_answered >= self->ns_count)
            s_resign_end (self, false);
    }
    else
    if (kind == REQ_VOTE && self->campaign_epoch == req->epoch) {
        bool granted = false;
        self->answered++;
        if (streq (status, "OK")
        &&  zr_field_bool (h, "granted", &granted) == ZR_FIELD_OK
        &&  granted)
            self->granted++;
        else {
            char why [200] = "";
            if (zr_field_strbuf (h, "refusal", why, sizeof why)
                != ZR_FIELD_OK)
                zr_field_strbuf (h, "reason", why, sizeof why);
            snprintf (self->refusal, sizeof self->refusal, "%s: %s",
                      ns->endpoint, why [0] ? why : status);
        }
        if (self->granted >= self->ns_count / 2 + 1)
            s_campaign_end (self, true);
        else
        if (self->answered >= self->ns_count)
            s_campaign_end (self, false);
    }
done:
    zr_hdr_destroy (&hdr);
    zmsg_destroy (&msg);
}

static int
s_configure (failover_t *self, zmsg_t *msg, char **err)
{
    char *list = zmsg_popstr (msg);
    self->cluster = zmsg_popstr (msg);
    self->group = zmsg_popstr (msg);
    char *id = zmsg_popstr (msg);
    char *hb = zmsg_popstr (msg);
    int rc = 0;
    if (!list || !self->cluster || !self->group || !id || !hb) {
        *err = strdup ("CONFIGURE needs nameservers cluster group "
                       "broker_id heartbeat_ms");
        rc = -1;
    }
    else {
        self->broker_id = atoll (id);
        self->heartbeat_ms = atoll (hb);
        if (self->heartbeat_ms < 1)
            self->heartbeat_ms = 1;
        char *save = NULL;
        for (char *ep = strtok_r (list, ",", &save); ep && rc == 0;
             ep = strtok_r (NULL, ",", &save)) {
            while (*ep == ' ')
                ep++;
            if (!*ep)
                continue;
            if (self->ns_count == ZR_FAILOVER_NAMESERVERS_MAX) {
                *err = zsys_sprintf ("failover: at most %d nameservers",
                                     ZR_FAILOVER_NAMESERVERS_MAX);
                rc = -1;
                break;
            }
            ns_t *ns = &self->ns [self->ns_count];
            ns->dealer = zsock_new (ZMQ_DEALER);
            zsock_set_linger (ns->dealer, 0);
            zsock_set_sndhwm (ns->dealer, 100);
            zsock_set_sndtimeo (ns->dealer, 0);
            if (zsock_connect (ns->dealer, "%s", ep)) {
                *err = zsys_sprintf ("failover: cannot connect to "
                                     "nameserver '%s'", ep);
                zsock_destroy (&ns->dealer);
                rc = -1;
                break;
            }
            ns->endpoint = strdup (ep);
            self->ns_count++;
        }
        if (rc == 0 && self->ns_count == 0) {
            *err = strdup ("failover needs at least one nameserver "
                           "endpoint");
            rc = -1;
        }
    }
    zstr_free (&list);
    zstr_free (&id);
    zstr_free (&hb);
    if (rc == 0)
        self->configured = true;
    return rc;
}

static void
s_pipe_command (failover_t *self)
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
    if (streq (verb, "CONFIGURE")) {
        char *err = NULL;
        if (self->configured)
            zstr_sendx (self->pipe, "ERROR", "already configured", NULL);
        else
        if (s_configure (self, msg, &err) == 0)
            zstr_send (self->pipe, "OK");
        else
            zstr_sendx (self->pipe, "ERROR", err ? err : "?", NULL);
        zstr_free (&err);
    }
    else
    if (streq (verb, "STATE")) {
        char *role = zmsg_popstr (msg);
        char *epoch = zmsg_popstr (msg);
        char *seq = zmsg_popstr (msg);
        char *isr = zmsg_popstr (msg);
        bool was_master = self->master;
        self->master = role && streq (role, "master");
        self->epoch = epoch ? atoll (epoch) : 1;
        self->seq = seq ? atoll (seq) : 0;
        int64_t was_isr [64];
        size_t was_count = self->isr_count;
        memcpy (was_isr, self->isr, was_count * sizeof (int64_t));
        self->isr_count = 0;
        char *save = NULL;
        for (char *t = isr ? strtok_r (isr, ",", &save) : NULL;
             t && self->isr_count < 64; t = strtok_r (NULL, ",", &save))
            self->isr [self->isr_count++] = atoll (t);
        bool isr_moved = was_count != self->isr_count
                      || memcmp (was_isr, self->isr,
                                 was_count * sizeof (int64_t));
        s_isr_told (self, self->master && !was_master, isr_moved);
        if (self->master && was_master && isr_moved)
            s_heartbeat (self);     //  the nameservers learn the set now
        if (self->master && !was_master) {
            //  A new term: no lease carries over.
            for (size_t i = 0; i < self->ns_count; i++)
                self->ns [i].lease_until = 0;
            self->lease_told = 0;
            s_heartbeat (self);
        }
        s_tell_recorded (self, true);
        zstr_free (&role);
        zstr_free (&epoch);
        zstr_free (&seq);
        zstr_free (&isr);
    }
    else
    if (streq (verb, "CAMPAIGN")) {
        char *epoch = zmsg_popstr (msg);
        char *last_epoch = zmsg_popstr (msg);
        char *last_seq = zmsg_popstr (msg);
        if (epoch && last_epoch && last_seq && self->configured) {
            self->campaign_epoch = atoll (epoch);
            self->epoch = atoll (last_epoch);
            self->seq = atoll (last_seq);
            self->campaign_end = zclock_mono () + CAMPAIGN_MS;
            self->granted = self->answered = 0;
            self->refusal [0] = 0;
            for (size_t i = 0; i < self->ns_count; i++)
                s_send (self, &self->ns [i], REQ_VOTE,
                        self->campaign_epoch);
        }
        zstr_free (&epoch);
        zstr_free (&last_epoch);
        zstr_free (&last_seq);
    }
    else
    if (streq (verb, "RESIGN") || streq (verb, "WITHDRAW")) {
        char *epoch = zmsg_popstr (msg);
        char *seq = zmsg_popstr (msg);
        char *successor = zmsg_popstr (msg);
        if (epoch && seq && successor && self->configured) {
            self->resign_kind = streq (verb, "RESIGN") ? REQ_RESIGN
                                                       : REQ_WITHDRAW;
            self->resign_epoch = atoll (epoch);
            self->resign_seq = atoll (seq);
            self->resign_successor = atoll (successor);
            self->resign_end = zclock_mono () + CAMPAIGN_MS;
            self->resign_ok = self->resign_answered = 0;
            self->resign_refusal [0] = 0;
            for (size_t i = 0; i < self->ns_count; i++)
                s_send (self, &self->ns [i], self->resign_kind,
                        self->resign_epoch);
        }
        zstr_free (&epoch);
        zstr_free (&seq);
        zstr_free (&successor);
    }
    else
        zsys_warning ("failover: unknown pipe command '%s'", verb);
    zstr_free (&verb);
    zmsg_destroy (&msg);
}

static long
s_timeout (failover_t *self)
{
    int64_t now = zclock_mono ();
    int64_t next = -1;
    if (self->master)
        next = self->next_heartbeat;
    if (self->campaign_epoch
    &&  (next == -1 || self->campaign_end < next))
        next = self->campaign_end;
    if (self->resign_kind != REQ_NONE
    &&  (next == -1 || self->resign_end < next))
        next = self->resign_end;
    if (next == -1)
        return -1;
    return next <= now ? 0 : (long) (next - now);
}

void
zr_failover_actor (zsock_t *pipe, void *args)
{
    failover_t *self = (failover_t *) zmalloc (sizeof (failover_t));
    self->pipe = pipe;
    self->enc = zr_enc_new ();
    //  Events to the broker never wait: the broker drains them only when
    //  it answers a write. A LEASE dropped on a full pipe only shortens
    //  the broker's view (safe); the next one refreshes it.
    zsock_set_sndtimeo (pipe, 0);
    zsock_signal (pipe, 0);
    while (!self->terminated) {
        zmq_pollitem_t items [1 + ZR_FAILOVER_NAMESERVERS_MAX];
        items [0] = (zmq_pollitem_t) { zsock_resolve (pipe), 0, ZMQ_POLLIN,
                                       0 };
        for (size_t i = 0; i < self->ns_count; i++)
            items [1 + i] = (zmq_pollitem_t) {
                zsock_resolve (self->ns [i].dealer), 0, ZMQ_POLLIN, 0 };
        size_t polled = self->ns_count;  //  CONFIGURE may add some
        if (zmq_poll (items, 1 + polled, s_timeout (self)) == -1)
            break;
        if (items [0].revents & ZMQ_POLLIN)
            s_pipe_command (self);
        if (self->terminated)
            break;
        for (size_t i = 0; i < polled; i++)
            if (items [1 + i].revents & ZMQ_POLLIN)
                s_reply (self, &self->ns [i]);
        int64_t now = zclock_mono ();
        if (self->master && now >= self->next_heartbeat)
            s_heartbeat (self);
        if (self->campaign_epoch && now >= self->campaign_end)
            s_campaign_end (self, false);
        if (self->resign_kind != REQ_NONE && now >= self->resign_end)
            s_resign_end (self, false);
    }
    for (size_t i = 0; i < self->ns_count; i++) {
        zsock_destroy (&self->ns [i].dealer);
        free (self->ns [i].endpoint);
    }
    zr_enc_destroy (&self->enc);
    free (self->recorded_told);
    free (self->cluster);
    free (self->group);
    free (self);
}

//  --------------------------------------------------------------------
//  Broker-thread handle

struct _zr_failover_t {
    zactor_t *actor;
    int64_t lease_until;
    int64_t fenced;
    int64_t fenced_by;          //  master_id the nameserver named, or -1
    bool master;                //  last STATE told
    int64_t epoch;
    int64_t elected;            //  epoch won, not yet taken
    int64_t defeated;           //  epoch lost, not yet taken
    bool campaigning;
    int resigned;               //  handover round: 1 ok, -1 failed, 0
    char resign_why [256];
    uint64_t states_told;       //  STATE commands sent
    uint64_t isr_state;         //  the one that told the current set
    char *isr_told;             //  that set
    uint64_t recorded_states;   //  STATEs the last RECORDED counts
    char *recorded;             //  its ids
};

zr_failover_t *
zr_failover_new (const char *nameservers, const char *cluster,
                 const char *group, int64_t broker_id, int64_t heartbeat_ms,
                 char **err)
{
    zr_failover_t *self = (zr_failover_t *) zmalloc (sizeof *self);
    self->actor = zactor_new (zr_failover_actor, NULL);
    char id [24], hb [24];
    snprintf (id, sizeof id, "%" PRId64, broker_id);
    snprintf (hb, sizeof hb, "%" PRId64, heartbeat_ms);
    zstr_sendx (self->actor, "CONFIGURE", nameservers, cluster, group, id,
                hb, NULL);
    char *status = NULL, *reason = NULL;
    zstr_recvx (self->actor, &status, &reason, NULL);
    if (!status || strneq (status, "OK")) {
        *err = strdup (reason ? reason : "failover actor did not start");
        zr_failover_destroy (&self);
    }
    zstr_free (&status);
    zstr_free (&reason);
    return self;
}

void
zr_failover_destroy (zr_failover_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy (&(*self_p)->actor);
    free ((*self_p)->recorded);
    free ((*self_p)->isr_told);
    free (*self_p);
    *self_p = NULL;
}

void
zr_failover_state (zr_failover_t *self, bool master, int64_t epoch,
                   int64_t seq, const char *isr)
{
    char e [24], s [24];
    snprintf (e, sizeof e, "%" PRId64, epoch);
    snprintf (s, sizeof s, "%" PRId64, seq);
    zstr_sendx (self->actor, "STATE", master ? "master" : "slave", e, s,
                isr ? isr : "", NULL);
    self->states_told++;
    //  A RECORDED set is current once it counts the STATE that told
    //  this set (later STATEs with the same set only move seq).
    if (!self->isr_told || strneq (self->isr_told, isr ? isr : "")
    ||  master != self->master || epoch != self->epoch) {
        free (self->isr_told);
        self->isr_told = strdup (isr ? isr : "");
        self->isr_state = self->states_told;
    }
    //  A new term (role or epoch): no lease carries over. The same term
    //  with a new seq or set keeps the lease it holds.
    if (master != self->master || epoch != self->epoch) {
        if (master)
            self->fenced = 0;
        self->lease_until = 0;
    }
    self->master = master;
    self->epoch = epoch;
}

static void
s_drain (zr_failover_t *self)
{
    while (zsock_events (zactor_sock (self->actor)) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv (self->actor);
        if (!msg)
            break;
        char *event = zmsg_popstr (msg);
        char *arg = zmsg_popstr (msg);
        if (event && arg && streq (event, "LEASE"))
            self->lease_until = atoll (arg);
        else
        if (event && arg && streq (event, "FENCED")) {
            self->fenced = atoll (arg);
            char *by = zmsg_popstr (msg);
            self->fenced_by = by ? atoll (by) : -1;
            zstr_free (&by);
            self->lease_until = 0;
        }
        else
        if (event && arg && streq (event, "ELECTED")) {
            self->elected = atoll (arg);
            self->campaigning = false;
        }
        else
        if (event && arg && (streq (event, "RESIGNED")
                         ||  streq (event, "WITHDRAWN")
                         ||  streq (event, "RESIGN_FAILED")
                         ||  streq (event, "WITHDRAW_FAILED"))) {
            self->resigned = streq (event, "RESIGNED")
                          || streq (event, "WITHDRAWN") ? 1 : -1;
            char *why = zmsg_popstr (msg);
            snprintf (self->resign_why, sizeof self->resign_why, "%s",
                      why ? why : "?");
            zstr_free (&why);
        }
        else
        if (event && arg && streq (event, "RECORDED")) {
            char *ids = zmsg_popstr (msg);
            if (ids) {
                self->recorded_states = strtoull (arg, NULL, 10);
                free (self->recorded);
                self->recorded = ids;
            }
        }
        else
        if (event && arg && streq (event, "DEFEATED")) {
            self->defeated = atoll (arg);
            self->campaigning = false;
            char *why = zmsg_popstr (msg);
            zsys_info ("failover: not elected for epoch %s: %s", arg,
                       why ? why : "?");
            zstr_free (&why);
        }
        zstr_free (&event);
        zstr_free (&arg);
        zmsg_destroy (&msg);
    }
}

bool
zr_failover_may_ack (zr_failover_t *self, char *reason, size_t size)
{
    s_drain (self);
    if (self->fenced) {
        snprintf (reason, size, "fenced: epoch %" PRId64 " has another "
                  "master", self->fenced);
        return false;
    }
    if (zclock_mono () >= self->lease_until) {
        snprintf (reason, size, "this master lost its nameserver leases "
                  "(no majority); the write is not acknowledged");
        return false;
    }
    return true;
}

int64_t
zr_failover_fenced (zr_failover_t *self)
{
    s_drain (self);
    return self->fenced;
}

void
zr_failover_campaign (zr_failover_t *self, int64_t epoch,
                      int64_t last_epoch, int64_t last_seq)
{
    char e [24], le [24], ls [24];
    snprintf (e, sizeof e, "%" PRId64, epoch);
    snprintf (le, sizeof le, "%" PRId64, last_epoch);
    snprintf (ls, sizeof ls, "%" PRId64, last_seq);
    self->elected = self->defeated = 0;
    self->campaigning = true;
    zstr_sendx (self->actor, "CAMPAIGN", e, le, ls, NULL);
}

int
zr_failover_outcome (zr_failover_t *self, int64_t *epoch)
{
    s_drain (self);
    if (self->elected) {
        *epoch = self->elected;
        self->elected = 0;
        return 1;
    }
    if (self->defeated) {
        *epoch = self->defeated;
        self->defeated = 0;
        return -1;
    }
    return 0;
}

bool
zr_failover_campaigning (zr_failover_t *self)
{
    s_drain (self);
    return self->campaigning;
}

int64_t
zr_failover_fenced_by (zr_failover_t *self)
{
    s_drain (self);
    return self->fenced ? self->fenced_by : -1;
}

void
zr_failover_resign (zr_failover_t *self, bool withdraw, int64_t epoch,
                    int64_t seq, int64_t successor)
{
    char e [24], s [24], o [24];
    snprintf (e, sizeof e, "%" PRId64, epoch);
    snprintf (s, sizeof s, "%" PRId64, seq);
    snprintf (o, sizeof o, "%" PRId64, successor);
    s_drain (self);
    self->resigned = 0;
    zstr_sendx (self->actor, withdraw ? "WITHDRAW" : "RESIGN", e, s, o,
                NULL);
}

int
zr_failover_resign_outcome (zr_failover_t *self, const char **why)
{
    s_drain (self);
    int outcome = self->resigned;
    self->resigned = 0;
    if (why)
        *why = self->resign_why;
    return outcome;
}

const char *
zr_failover_recorded (zr_failover_t *self)
{
    s_drain (self);
    if (!self->master || !self->recorded
    ||  self->recorded_states < self->isr_state)
        return NULL;
    return self->recorded;
}
