/*  client/txproducer.c - transactional producer (docs/protocol.md
    section 13; API in include/zrocket.h).

    The application thread owns one connection for SEND (txn: true) and
    END_TXN. A background actor owns a second connection: it sends
    PRODUCER_HEARTBEAT every heartbeat_ms the broker advertises (1 s
    until the first reply), receives CHECK_TXN requests on that
    connection (the broker sends them to the identity of the member's
    last heartbeat), calls the check callback and answers with END_TXN
    (from_check: true) on the same connection.

    Actor pipe commands:
        LISTENER check arg   (pointers) -> no reply
        $TERM
*/
#include <zrocket.h>
#include "client/client.h"

#define HEARTBEAT_DEFAULT_MS 1000

struct _zr_tx_producer_t {
    zr_client_t *client;
    zactor_t *actor;
    char group [ZR_NAME_MAX + 1];
    char client_id [ZR_NAME_MAX + 1];
    zr_txn_execute_fn *execute;
    zr_txn_check_fn *check;
    void *arg;
    int timeout_ms;
    uint64_t counter;
};

typedef struct {
    char endpoint [1024];
    char group [ZR_NAME_MAX + 1];
    char client_id [ZR_NAME_MAX + 1];
} actor_args_t;

//  --------------------------------------------------------------------
//  Background actor

typedef struct {
    zr_client_t *client;
    actor_args_t args;
    zr_txn_check_fn *check;
    void *arg;
    int heartbeat_ms;
    int64_t last_heartbeat;     //  zclock_mono of the last heartbeat sent
    int64_t next_heartbeat;
} actor_t;

static void
s_heartbeat (actor_t *self)
{
    zr_enc_t *e = zr_client_begin (self->client, "PRODUCER_HEARTBEAT", 2);
    zr_enc_kstr (e, "producer_group", self->args.group);
    zr_enc_kstr (e, "client_id", self->args.client_id);
    zr_client_send (self->client, NULL, NULL, 0);
    self->last_heartbeat = zclock_mono ();
    self->next_heartbeat = self->last_heartbeat + self->heartbeat_ms;
}

//  Builds the message of a CHECK_TXN request (map "msg" + body frame).
static zr_message_t *
s_check_message (const zr_obj_t *h, zframe_t *body)
{
    const zr_obj_t *map = zr_obj_get (h, "msg");
    char topic [ZR_NAME_MAX + 1];
    if (!map || !zr_obj_is_map (map)
    ||  zr_field_strbuf (map, "topic", topic, sizeof topic) != ZR_FIELD_OK)
        return NULL;
    zr_message_t *msg = zr_message_new (topic,
                                        body ? zframe_data (body) : NULL,
                                        body ? zframe_size (body) : 0);
    if (!msg)
        return NULL;
    char buf [ZR_MSG_ID_LEN + 1];
    if (zr_field_strbuf (map, "id", buf, sizeof buf) == ZR_FIELD_OK && *buf)
        zr_message_set_id (msg, buf);
    char *s = zr_field_strdup (map, "tags");
    if (s && *s)
        zr_message_set_tags (msg, s);
    zstr_free (&s);
    s = zr_field_strdup (map, "keys");
    if (s && *s)
        zr_message_set_keys (msg, s);
    zstr_free (&s);
    int64_t born = 0;
    if (zr_field_int (map, "born", &born) == ZR_FIELD_OK && born > 0)
        zr_message_set_born (msg, born);
    const zr_obj_t *props = zr_obj_get (map, "props");
    size_t n = props && zr_obj_is_map (props) ? zr_obj_size (props) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        size_t klen, vlen;
        if (zr_obj_str (zr_obj_key_at (props, i), &k, &klen) != ZR_FIELD_OK
        ||  zr_obj_str (zr_obj_val_at (props, i), &v, &vlen) != ZR_FIELD_OK)
            continue;
        char *kz = strndup (k, klen), *vz = strndup (v, vlen);
        zr_message_set_prop (msg, kz, vz);
        free (kz);
        free (vz);
    }
    return msg;
}

//  Reads one message from the broker: answers a CHECK_TXN, ignores the
//  replies to heartbeats and END_TXN (but learns heartbeat_ms).
static void
s_receive (actor_t *self)
{
    zmsg_t *m = zmsg_recv (zr_client_sock (self->client));
    if (!m)
        return;
    zframe_t *header = zmsg_first (m);
    zframe_t *body = zmsg_next (m);
    zr_hdr_t *hdr = header ? zr_hdr_decode (zframe_data (header),
                                            zframe_size (header), NULL)
                           : NULL;
    const zr_obj_t *h = hdr ? zr_hdr_root (hdr) : NULL;
    char type [16] = "", cmd [32] = "", txn_id [64] = "";
    if (!h || !zr_obj_is_map (h)) {
        zsys_warning ("txproducer: undecodable frame from the broker");
        goto done;
    }
    zr_field_strbuf (h, "type", type, sizeof type);
    if (streq (type, "reply")) {
        int64_t hb;
        if (zr_field_int (h, "heartbeat_ms", &hb) == ZR_FIELD_OK
        &&  hb >= 10 && hb <= 3600000) {
            self->heartbeat_ms = (int) hb;
            //  The first heartbeat was scheduled with the 1 s default; a
            //  broker with a shorter expiry would drop this member before
            //  then (and send its checks to no one): reschedule now.
            if (self->next_heartbeat > self->last_heartbeat + hb)
                self->next_heartbeat = self->last_heartbeat + hb;
        }
        char status [32] = "";
        zr_field_strbuf (h, "status", status, sizeof status);
        if (strneq (status, "OK")) {
            char *reason = zr_field_strdup (h, "reason");
            zsys_warning ("txproducer: broker answered %s: %s", status,
                          reason ? reason : "");
            zstr_free (&reason);
        }
        goto done;
    }
    zr_field_strbuf (h, "cmd", cmd, sizeof cmd);
    if (strneq (type, "request") || strneq (cmd, "CHECK_TXN"))
        goto done;
    if (zr_field_strbuf (h, "txn_id", txn_id, sizeof txn_id)
        != ZR_FIELD_OK) {
        zsys_warning ("txproducer: CHECK_TXN without txn_id");
        goto done;
    }
    zr_message_t *msg = s_check_message (h, body);
    if (!msg) {
        zsys_warning ("txproducer: CHECK_TXN %s without a message",
                      txn_id);
        goto done;
    }
    zr_message_set_prop (msg, "TXN_ID", txn_id);
    zr_txn_state_t state = self->check ? self->check (msg, self->arg)
                                       : ZR_TXN_UNKNOWN;
    zr_message_destroy (&msg);
    if (state == ZR_TXN_COMMIT || state == ZR_TXN_ROLLBACK) {
        zr_enc_t *e = zr_client_begin (self->client, "END_TXN", 4);
        zr_enc_kstr (e, "txn_id", txn_id);
        zr_enc_kstr (e, "producer_group", self->args.group);
        zr_enc_kstr (e, "action",
                     state == ZR_TXN_COMMIT ? "commit" : "rollback");
        zr_enc_kbool (e, "from_check", true);
        zr_client_send (self->client, NULL, NULL, 0);
    }
done:
    zr_hdr_destroy (&hdr);
    zmsg_destroy (&m);
}

static void
s_actor (zsock_t *pipe, void *args)
{
    actor_t self;
    memset (&self, 0, sizeof self);
    self.args = *(actor_args_t *) args;
    free (args);
    self.client = zr_client_new (self.args.endpoint);
    self.heartbeat_ms = HEARTBEAT_DEFAULT_MS;
    zsock_signal (pipe, 0);
    if (!self.client)
        return;
    zr_client_set_sndtimeo (self.client, 0);
    s_heartbeat (&self);
    zpoller_t *poller = zpoller_new (pipe, zr_client_sock (self.client),
                                     NULL);
    while (true) {
        int64_t left = self.next_heartbeat - zclock_mono ();
        void *which = zpoller_wait (poller, left < 0 ? 0 : (int) left);
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *verb = msg ? zmsg_popstr (msg) : NULL;
            bool stop = !verb || streq (verb, "$TERM");
            if (verb && streq (verb, "LISTENER")) {
                zframe_t *f = zmsg_pop (msg);
                if (f && zframe_size (f) == sizeof (void *) * 2) {
                    void *p [2];
                    memcpy (p, zframe_data (f), sizeof p);
                    self.check = (zr_txn_check_fn *) p [0];
                    self.arg = p [1];
                }
                zframe_destroy (&f);
            }
            zstr_free (&verb);
            zmsg_destroy (&msg);
            if (stop)
                break;
        }
        else
        if (which)
            s_receive (&self);
        else
        if (zpoller_terminated (poller))
            break;
        if (zclock_mono () >= self.next_heartbeat)
            s_heartbeat (&self);
    }
    zpoller_destroy (&poller);
    zr_client_destroy (&self.client);
}

//  --------------------------------------------------------------------
//  API

static bool
s_name_ok (const char *s)
{
    return s && zr_name_valid (s, strlen (s));
}

zr_tx_producer_t *
zr_tx_producer_new (const char *endpoint, const char *producer_group)
{
    if (!endpoint || strlen (endpoint) >= 1024 || !s_name_ok (producer_group))
        return NULL;
    zr_tx_producer_t *self =
        (zr_tx_producer_t *) zmalloc (sizeof (zr_tx_producer_t));
    assert (self);
    self->client = zr_client_new (endpoint);
    if (!self->client) {
        free (self);
        return NULL;
    }
    snprintf (self->group, sizeof self->group, "%s", producer_group);
    char host [64] = "host";
    gethostname (host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (!(isalnum ((unsigned char) *c) || *c == '-' || *c == '_'))
            *c = '_';
    snprintf (self->client_id, sizeof self->client_id, "%.40s-%d-%04x",
              host, (int) getpid (), (unsigned) randof (0x10000));
    self->timeout_ms = 3000;
    self->counter = (uint64_t) zclock_time ();
    actor_args_t *args = (actor_args_t *) zmalloc (sizeof (actor_args_t));
    snprintf (args->endpoint, sizeof args->endpoint, "%s", endpoint);
    strcpy (args->group, self->group);
    strcpy (args->client_id, self->client_id);
    self->actor = zactor_new (s_actor, args);
    return self;
}

void
zr_tx_producer_destroy (zr_tx_producer_t **self_p)
{
    assert (self_p);
    zr_tx_producer_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy (&self->actor);
    zr_client_destroy (&self->client);
    free (self);
    *self_p = NULL;
}

void
zr_tx_producer_set_listener (zr_tx_producer_t *self,
                             zr_txn_execute_fn *execute,
                             zr_txn_check_fn *check, void *arg)
{
    assert (self);
    self->execute = execute;
    self->check = check;
    self->arg = arg;
    void *p [2] = { (void *) check, arg };
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "LISTENER");
    zmsg_addmem (msg, p, sizeof p);
    zmsg_send (&msg, self->actor);
}

void
zr_tx_producer_set_timeout (zr_tx_producer_t *self, int timeout_ms)
{
    assert (self);
    if (timeout_ms > 0)
        self->timeout_ms = timeout_ms;
}

static void
s_result_init (zr_send_result_t *result)
{
    memset (result, 0, sizeof *result);
    result->queue = -1;
    result->offset = -1;
}

//  Fills result from a reply (or its absence).
static void
s_result_status (zr_send_result_t *result, zr_reply_t *r, const char *what)
{
    if (!r) {
        result->status = ZR_TIMEOUT;
        snprintf (result->reason, sizeof result->reason,
                  "%s: no reply in time", what);
        return;
    }
    result->status = zr_reply_status (r);
    if (*zr_reply_reason (r))
        snprintf (result->reason, sizeof result->reason, "%s",
                  zr_reply_reason (r));
}

int
zr_tx_producer_send (zr_tx_producer_t *self, zr_message_t *msg,
                     zr_send_result_t *result, zr_txn_state_t *state)
{
    assert (self);
    zr_send_result_t local;
    if (!result)
        result = &local;
    s_result_init (result);
    if (state)
        *state = ZR_TXN_UNKNOWN;
    if (!msg) {
        result->status = ZR_BAD_ARGUMENT;
        snprintf (result->reason, sizeof result->reason, "no message");
        return -1;
    }
    if (!*zr_message_id (msg)) {
        char id [ZR_MSG_ID_LEN + 1];
        snprintf (id, sizeof id, "%08x%08x%016" PRIx64,
                  (unsigned) randof (0x7fffffff),
                  (unsigned) randof (0x7fffffff), ++self->counter);
        zr_message_set_id (msg, id);
    }
    zhashx_t *props = zr_message_props (msg);
    const char *shard = zr_message_sharding_key (msg);
    int queue = zr_message_queue (msg);
    size_t fields = 7 + (queue >= 0 || *shard ? 1 : 0)
                  + (props && zhashx_size (props) ? 1 : 0);
    zr_enc_t *e = zr_client_begin (self->client, "SEND", fields);
    zr_enc_kstr (e, "topic", zr_message_topic (msg));
    zr_enc_kstr (e, "id", zr_message_id (msg));
    zr_enc_kstr (e, "tags", zr_message_tags (msg));
    zr_enc_kstr (e, "keys", zr_message_keys (msg));
    zr_enc_kint (e, "born", zr_message_born (msg) > 0
                            ? zr_message_born (msg) : zclock_time ());
    zr_enc_kbool (e, "txn", true);
    zr_enc_kstr (e, "producer_group", self->group);
    if (queue >= 0)
        zr_enc_kint (e, "queue", queue);
    else
    if (*shard)
        zr_enc_kstr (e, "shard", shard);
    if (props && zhashx_size (props)) {
        zr_enc_str (e, "props");
        zr_enc_map (e, zhashx_size (props));
        const char *v = (const char *) zhashx_first (props);
        while (v) {
            zr_enc_str (e, (const char *) zhashx_cursor (props));
            zr_enc_str (e, v);
            v = (const char *) zhashx_next (props);
        }
    }
    zr_reply_t *r = zr_client_call (self->client, zr_message_body (msg),
                                    zr_message_size (msg),
                                    self->timeout_ms);
    s_result_status (result, r, "SEND");
    snprintf (result->msg_id, sizeof result->msg_id, "%s",
              zr_message_id (msg));
    char txn_id [64] = "";
    if (!r || !zr_status_stored (zr_reply_status (r))
    ||  zr_field_strbuf (zr_reply_header (r), "txn_id", txn_id,
                         sizeof txn_id) != ZR_FIELD_OK) {
        if (r && zr_status_stored (zr_reply_status (r)))
            snprintf (result->reason, sizeof result->reason,
                      "SEND reply has no txn_id");
        zr_reply_destroy (&r);
        return -1;
    }
    char flush [16] = "";
    zr_field_strbuf (zr_reply_header (r), "flush", flush, sizeof flush);
    result->flush_sync = streq (flush, "sync");
    zr_reply_destroy (&r);
    zr_message_set_prop (msg, "TXN_ID", txn_id);

    zr_txn_state_t st = self->execute ? self->execute (msg, self->arg)
                                      : ZR_TXN_UNKNOWN;
    if (st != ZR_TXN_COMMIT && st != ZR_TXN_ROLLBACK)
        st = ZR_TXN_UNKNOWN;
    if (state)
        *state = st;
    if (st == ZR_TXN_UNKNOWN)
        return 0;
    e = zr_client_begin (self->client, "END_TXN", 3);
    zr_enc_kstr (e, "txn_id", txn_id);
    zr_enc_kstr (e, "producer_group", self->group);
    zr_enc_kstr (e, "action", st == ZR_TXN_COMMIT ? "commit" : "rollback");
    r = zr_client_call (self->client, NULL, 0, self->timeout_ms);
    if (!r || zr_reply_status (r) != ZR_OK) {
        //  The half message is stored: the check-back resolves it.
        snprintf (result->reason, sizeof result->reason, "END_TXN: %s",
                  r ? zr_reply_reason (r) : "no reply in time (the broker "
                  "checks the transaction back)");
        zr_reply_destroy (&r);
        return 0;
    }
    if (st == ZR_TXN_COMMIT) {
        const zr_obj_t *h = zr_reply_header (r);
        int64_t v;
        zr_field_strbuf (h, "store_id", result->store_id,
                         sizeof result->store_id);
        if (zr_field_int (h, "queue", &v) == ZR_FIELD_OK)
            result->queue = (int) v;
        if (zr_field_int (h, "offset", &v) == ZR_FIELD_OK)
            result->offset = v;
    }
    zr_reply_destroy (&r);
    return 0;
}
