/*  broker/txn.c - transactional messages in the broker: half messages in
    the store, producer group members, check-back (see txn.h and
    docs/protocol.md section 13).
*/
#include "broker/txn.h"

#define IDENTITY_MAX 256

//  A live member of a producer group.
typedef struct {
    char client_id [ZR_NAME_MAX + 1];
    uint8_t identity [IDENTITY_MAX];
    size_t identity_size;
    bool delimiter;
    int64_t seen;               //  last heartbeat, zclock_mono ms
} member_t;

typedef struct {
    char name [ZR_NAME_MAX + 1];
    zhashx_t *members;          //  client_id -> member_t
    uint64_t cursor;            //  round robin over members
} pgroup_t;

//  An unresolved half message.
typedef struct {
    char txn_id [ZR_TXN_ID_LEN + 1];
    char group [ZR_NAME_MAX + 1];
    int64_t created;            //  ms since the epoch
    int64_t checks;             //  checks sent
    int64_t next;               //  next check (or rollback), epoch ms
} half_t;

struct _zr_txn_t {
    int64_t check_ms;
    int64_t max_checks;
    int64_t expiry_ms;
    zhashx_t *groups;           //  name -> pgroup_t
    zhashx_t *pending;          //  txn_id -> half_t
    zhashx_t *resolved;         //  txn_id -> "committed" | "rolled back"
    zlistx_t *resolved_order;   //  txn ids, oldest first
    int64_t next_due;           //  earliest half_t.next, -1: none
    uint64_t prefix;            //  random part of new ids
    uint64_t counter;           //  counting part of new ids
    zr_enc_t *enc;
    struct {
        uint64_t halves;
        uint64_t committed;
        uint64_t rolled_back;
        uint64_t rolled_back_timeout;
        uint64_t checks_sent;
        uint64_t checks_no_member;
        uint64_t checks_dropped;
    } stats;
};

static void
s_pgroup_destroy (void **item)
{
    pgroup_t *g = (pgroup_t *) *item;
    if (g) {
        zhashx_destroy (&g->members);
        free (g);
    }
    *item = NULL;
}

static void
s_free (void **item)
{
    free (*item);
    *item = NULL;
}

zr_txn_t *
zr_txn_new (int64_t check_ms, int64_t max_checks, int64_t expiry_ms)
{
    zr_txn_t *self = (zr_txn_t *) zmalloc (sizeof (zr_txn_t));
    assert (self);
    self->check_ms = check_ms;
    self->max_checks = max_checks;
    self->expiry_ms = expiry_ms;
    self->groups = zhashx_new ();
    zhashx_set_destructor (self->groups, s_pgroup_destroy);
    self->pending = zhashx_new ();
    zhashx_set_destructor (self->pending, s_free);
    self->resolved = zhashx_new ();     //  values are static strings
    self->resolved_order = zlistx_new ();
    zlistx_set_destructor (self->resolved_order, s_free);
    self->next_due = -1;
    for (int i = 0; i < 8; i++)
        self->prefix = (self->prefix << 8) | (uint64_t) randof (256);
    //  Time-based counter: ids stay unique across restarts.
    self->counter = (uint64_t) zclock_time () * 1000;
    self->enc = zr_enc_new ();
    return self;
}

void
zr_txn_destroy (zr_txn_t **self_p)
{
    assert (self_p);
    zr_txn_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->groups);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->resolved);
    zlistx_destroy (&self->resolved_order);
    zr_enc_destroy (&self->enc);
    free (self);
    *self_p = NULL;
}

static bool
s_valid_name (const char *s, size_t len)
{
    if (len == 0 || len > ZR_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s [i];
        if (!(isalnum ((unsigned char) c) || c == '_' || c == '-'
        ||    c == '%' || c == '|'))
            return false;
    }
    return true;
}

//  Reads a required name field into buf (ZR_NAME_MAX + 1). Returns ZR_OK
//  or an error status with reason.
static zr_status_t
s_name_field (const zr_obj_t *h, const char *key, char *buf, char *reason,
              size_t reason_size)
{
    const char *s;
    size_t len;
    int rc = zr_field_str (h, key, &s, &len);
    if (rc != ZR_FIELD_OK) {
        snprintf (reason, reason_size, rc == ZR_FIELD_MISSING
                  ? "missing field '%s'" : "field '%s' must be a string",
                  key);
        return ZR_MALFORMED;
    }
    if (!s_valid_name (s, len)) {
        snprintf (reason, reason_size, "'%.*s' is not a valid %s (1-%d "
                  "characters of A-Z a-z 0-9 _ - %% |)",
                  (int) (len > 64 ? 64 : len), s, key, ZR_NAME_MAX);
        return ZR_BAD_ARGUMENT;
    }
    memcpy (buf, s, len);
    buf [len] = 0;
    return ZR_OK;
}

static void
s_key (char *buf, const char *prefix, const char *txn_id)
{
    snprintf (buf, 3 + ZR_TXN_ID_LEN, "%s%s", prefix, txn_id);
}

static void
s_due (zr_txn_t *self, int64_t next)
{
    if (self->next_due == -1 || next < self->next_due)
        self->next_due = next;
}

static half_t *
s_half_add (zr_txn_t *self, const char *txn_id, const char *group,
            int64_t created, int64_t checks)
{
    half_t *half = (half_t *) zmalloc (sizeof (half_t));
    assert (half);
    snprintf (half->txn_id, sizeof half->txn_id, "%s", txn_id);
    snprintf (half->group, sizeof half->group, "%s", group);
    half->created = created;
    half->checks = checks;
    half->next = created + self->check_ms * (checks + 1);
    zhashx_update (self->pending, txn_id, half);
    s_due (self, half->next);
    return half;
}

//  --------------------------------------------------------------------
//  Loading

typedef struct {
    zr_txn_t *self;
    zhashx_t *checks;           //  txn_id -> int64_t *
    int count;
} load_t;

static void
s_load_entry (const char *key, const void *value, size_t size, void *arg)
{
    load_t *l = (load_t *) arg;
    size_t len = strlen (key);
    if (len != 2 + ZR_TXN_ID_LEN) {
        zsys_warning ("txn: skipping a half entry with key '%.40s'", key);
        return;
    }
    const char *txn_id = key + 2;
    if (strncmp (key, "c/", 2) == 0) {
        if (size != 8)
            return;
        const uint8_t *p = (const uint8_t *) value;
        int64_t *n = (int64_t *) zmalloc (sizeof (int64_t));
        for (int i = 0; i < 8; i++)
            *n = (*n << 8) | p [i];
        zhashx_update (l->checks, txn_id, n);
        return;
    }
    if (strncmp (key, "m/", 2) != 0)
        return;
    zr_hdr_t *hdr = zr_hdr_decode (value, size, NULL);
    const zr_obj_t *map = hdr ? zr_hdr_root (hdr) : NULL;
    char group [ZR_NAME_MAX + 1];
    int64_t created = 0;
    if (!map || !zr_obj_is_map (map)
    ||  zr_field_strbuf (map, "group", group, sizeof group) != ZR_FIELD_OK
    ||  zr_field_int (map, "created", &created) != ZR_FIELD_OK)
        zsys_warning ("txn: half message %s is damaged; it stays in the "
                      "store, unchecked", txn_id);
    else {
        s_half_add (l->self, txn_id, group, created, 0);
        l->count++;
    }
    zr_hdr_destroy (&hdr);
}

int
zr_txn_load (zr_txn_t *self, zr_store_t *store)
{
    assert (self);
    load_t l = { self, zhashx_new (), 0 };
    zhashx_set_destructor (l.checks, s_free);
    int rc = zr_store_half_foreach (store, s_load_entry, &l);
    int64_t *n = (int64_t *) zhashx_first (l.checks);
    while (n) {
        half_t *half = (half_t *) zhashx_lookup (
            self->pending, (const char *) zhashx_cursor (l.checks));
        if (half) {
            half->checks = *n;
            half->next = half->created + self->check_ms * (*n + 1);
        }
        n = (int64_t *) zhashx_next (l.checks);
    }
    zhashx_destroy (&l.checks);
    //  Recompute the earliest due time
    self->next_due = -1;
    half_t *half = (half_t *) zhashx_first (self->pending);
    while (half) {
        s_due (self, half->next);
        half = (half_t *) zhashx_next (self->pending);
    }
    return rc < 0 ? -1 : l.count;
}

//  --------------------------------------------------------------------
//  Producer group members

int64_t
zr_txn_heartbeat_ms (zr_txn_t *self)
{
    int64_t hb = self->expiry_ms / 3;
    return hb < 1 ? 1 : hb;
}

int64_t zr_txn_expiry_ms (zr_txn_t *self) { return self->expiry_ms; }
int64_t zr_txn_check_ms (zr_txn_t *self) { return self->check_ms; }

//  Drops members of g not heard from within the expiry.
static void
s_expire (zr_txn_t *self, pgroup_t *g, int64_t now)
{
    zlistx_t *gone = zlistx_new ();
    member_t *m = (member_t *) zhashx_first (g->members);
    while (m) {
        if (now - m->seen > self->expiry_ms)
            zlistx_add_end (gone, m->client_id);
        m = (member_t *) zhashx_next (g->members);
    }
    const char *id = (const char *) zlistx_first (gone);
    while (id) {
        zhashx_delete (g->members, id);
        id = (const char *) zlistx_next (gone);
    }
    zlistx_destroy (&gone);
}

zr_status_t
zr_txn_heartbeat (zr_txn_t *self, const zr_obj_t *h, const void *identity,
                  size_t identity_size, bool delimiter, char *reason,
                  size_t reason_size)
{
    assert (self);
    char group [ZR_NAME_MAX + 1], client_id [ZR_NAME_MAX + 1];
    zr_status_t status = s_name_field (h, "producer_group", group, reason,
                                       reason_size);
    if (status == ZR_OK)
        status = s_name_field (h, "client_id", client_id, reason,
                               reason_size);
    if (status != ZR_OK)
        return status;
    if (identity_size == 0 || identity_size > IDENTITY_MAX) {
        snprintf (reason, reason_size, "routing identity of %zu bytes",
                  identity_size);
        return ZR_BAD_ARGUMENT;
    }
    int64_t now = zclock_mono ();
    pgroup_t *g = (pgroup_t *) zhashx_lookup (self->groups, group);
    if (!g) {
        if (zhashx_size (self->groups) >= ZR_TXN_GROUPS_MAX) {
            //  Make room: drop groups with no live member
            zlistx_t *empty = zlistx_new ();
            pgroup_t *other = (pgroup_t *) zhashx_first (self->groups);
            while (other) {
                s_expire (self, other, now);
                if (zhashx_size (other->members) == 0)
                    zlistx_add_end (empty, other->name);
                other = (pgroup_t *) zhashx_next (self->groups);
            }
            const char *name = (const char *) zlistx_first (empty);
            while (name) {
                zhashx_delete (self->groups, name);
                name = (const char *) zlistx_next (empty);
            }
            zlistx_destroy (&empty);
        }
        if (zhashx_size (self->groups) >= ZR_TXN_GROUPS_MAX) {
            snprintf (reason, reason_size, "the broker has %d producer "
                      "groups with live members; not joined",
                      ZR_TXN_GROUPS_MAX);
            return ZR_BUSY;
        }
        g = (pgroup_t *) zmalloc (sizeof (pgroup_t));
        assert (g);
        strcpy (g->name, group);
        g->members = zhashx_new ();
        zhashx_set_destructor (g->members, s_free);
        zhashx_insert (self->groups, group, g);
    }
    member_t *m = (member_t *) zhashx_lookup (g->members, client_id);
    if (!m) {
        s_expire (self, g, now);
        if (zhashx_size (g->members) >= ZR_TXN_MEMBERS_MAX) {
            snprintf (reason, reason_size, "producer group '%s' has %d "
                      "members; not joined", group, ZR_TXN_MEMBERS_MAX);
            return ZR_BUSY;
        }
        m = (member_t *) zmalloc (sizeof (member_t));
        assert (m);
        strcpy (m->client_id, client_id);
        zhashx_insert (g->members, client_id, m);
    }
    memcpy (m->identity, identity, identity_size);
    m->identity_size = identity_size;
    m->delimiter = delimiter;
    m->seen = now;
    return ZR_OK;
}

//  A live member of group, round robin; NULL when none.
static member_t *
s_pick (zr_txn_t *self, const char *group, int64_t now)
{
    pgroup_t *g = (pgroup_t *) zhashx_lookup (self->groups, group);
    if (!g)
        return NULL;
    s_expire (self, g, now);
    size_t n = zhashx_size (g->members);
    if (n == 0)
        return NULL;
    size_t index = (size_t) (g->cursor++ % n);
    member_t *m = (member_t *) zhashx_first (g->members);
    while (m && index--)
        m = (member_t *) zhashx_next (g->members);
    return m;
}

//  --------------------------------------------------------------------
//  Half messages

int
zr_txn_wanted (const zr_obj_t *h, char *reason, size_t reason_size)
{
    bool txn = false;
    int rc = zr_field_bool (h, "txn", &txn);
    if (rc == ZR_FIELD_TYPE) {
        snprintf (reason, reason_size, "field 'txn' must be a boolean");
        return -1;
    }
    return rc == ZR_FIELD_OK && txn ? 1 : 0;
}

//  Copies an optional string field of h into the encoder (as "" when
//  absent).
static void
s_copy_str (zr_enc_t *enc, const zr_obj_t *h, const char *key)
{
    const char *s = "";
    size_t len = 0;
    if (zr_field_str (h, key, &s, &len) != ZR_FIELD_OK) {
        s = "";
        len = 0;
    }
    zr_enc_str (enc, key);
    zr_enc_strn (enc, s, len);
}

zr_status_t
zr_txn_half_put (zr_txn_t *self, zr_store_t *store, const zr_obj_t *h,
                 const char *topic, int queue, const char *id,
                 const void *body, size_t body_size, char *txn_id,
                 char *reason, size_t reason_size)
{
    assert (self);
    char group [ZR_NAME_MAX + 1];
    zr_status_t status = s_name_field (h, "producer_group", group, reason,
                                       reason_size);
    if (status != ZR_OK)
        return status;
    const zr_obj_t *props = zr_obj_get (h, "props");
    size_t nprops = 0;
    if (props && !zr_obj_is_nil (props)) {
        if (!zr_obj_is_map (props)) {
            snprintf (reason, reason_size,
                      "field 'props' must be a map of strings");
            return ZR_MALFORMED;
        }
        nprops = zr_obj_size (props);
        for (size_t i = 0; i < nprops; i++)
            if (!zr_obj_is_str (zr_obj_key_at (props, i))
            ||  !zr_obj_is_str (zr_obj_val_at (props, i))) {
                snprintf (reason, reason_size,
                          "field 'props' must be a map of strings");
                return ZR_MALFORMED;
            }
    }
    if (zhashx_size (self->pending) >= ZR_TXN_PENDING_MAX) {
        snprintf (reason, reason_size, "%d transactions are unresolved; "
                  "not stored, retry later", ZR_TXN_PENDING_MAX);
        return ZR_BUSY;
    }
    snprintf (txn_id, ZR_TXN_ID_LEN + 1, "%016" PRIx64 "%016" PRIx64,
              self->prefix, ++self->counter);
    int64_t born = 0;
    if (zr_field_int (h, "born", &born) != ZR_FIELD_OK || born < 0)
        born = 0;
    int64_t created = zclock_time ();
    zr_enc_t *e = self->enc;
    zr_enc_reset (e);
    zr_enc_map (e, 12);
    zr_enc_kint (e, "v", 1);
    zr_enc_kstr (e, "txn_id", txn_id);
    zr_enc_kstr (e, "group", group);
    zr_enc_kstr (e, "topic", topic);
    zr_enc_kint (e, "queue", queue);
    zr_enc_kstr (e, "id", id);
    s_copy_str (e, h, "tags");
    s_copy_str (e, h, "keys");
    zr_enc_str (e, "props");
    zr_enc_map (e, nprops);
    for (size_t i = 0; i < nprops; i++) {
        const char *s;
        size_t len;
        zr_obj_str (zr_obj_key_at (props, i), &s, &len);
        zr_enc_strn (e, s, len);
        zr_obj_str (zr_obj_val_at (props, i), &s, &len);
        zr_enc_strn (e, s, len);
    }
    zr_enc_kint (e, "born", born);
    zr_enc_kint (e, "created", created);
    zr_enc_str (e, "body");
    zr_enc_bin (e, body, body_size);
    char key [3 + ZR_TXN_ID_LEN];
    s_key (key, "m/", txn_id);
    if (zr_store_batch_half_put (store, key, zr_enc_data (e),
                                 zr_enc_size (e))) {
        snprintf (reason, reason_size, "cannot store the half message");
        return ZR_STORE_ERROR;
    }
    s_half_add (self, txn_id, group, created, 0);
    self->stats.halves++;
    return ZR_OK;
}

void
zr_txn_forget (zr_txn_t *self, const char *txn_id)
{
    assert (self);
    zhashx_delete (self->pending, txn_id);
}

zr_status_t
zr_txn_end_parse (const zr_obj_t *h, zr_txn_end_t *end, char *reason,
                  size_t reason_size)
{
    memset (end, 0, sizeof *end);
    const char *s;
    size_t len;
    int rc = zr_field_str (h, "txn_id", &s, &len);
    if (rc != ZR_FIELD_OK) {
        snprintf (reason, reason_size, rc == ZR_FIELD_MISSING
                  ? "missing field 'txn_id'"
                  : "field 'txn_id' must be a string");
        return ZR_MALFORMED;
    }
    bool hex = len == ZR_TXN_ID_LEN;
    for (size_t i = 0; hex && i < len; i++)
        hex = isxdigit ((unsigned char) s [i]) != 0;
    if (!hex) {
        snprintf (reason, reason_size, "unknown transaction '%.*s' (a "
                  "transaction id is %d hex digits)",
                  (int) (len > 40 ? 40 : len), s, ZR_TXN_ID_LEN);
        return ZR_NOT_FOUND;
    }
    memcpy (end->txn_id, s, len);
    end->txn_id [len] = 0;
    for (size_t i = 0; i < len; i++)
        end->txn_id [i] = (char) tolower ((unsigned char) end->txn_id [i]);
    zr_status_t status = s_name_field (h, "producer_group", end->group,
                                       reason, reason_size);
    if (status != ZR_OK)
        return status;
    rc = zr_field_str (h, "action", &s, &len);
    if (rc != ZR_FIELD_OK) {
        snprintf (reason, reason_size, rc == ZR_FIELD_MISSING
                  ? "missing field 'action'"
                  : "field 'action' must be a string");
        return ZR_MALFORMED;
    }
    if (len == 6 && memcmp (s, "commit", 6) == 0)
        end->commit = true;
    else
    if (!(len == 8 && memcmp (s, "rollback", 8) == 0)) {
        snprintf (reason, reason_size, "action '%.*s' must be commit or "
                  "rollback", (int) (len > 32 ? 32 : len), s);
        return ZR_BAD_ARGUMENT;
    }
    if (zr_field_bool (h, "from_check", &end->from_check) == ZR_FIELD_TYPE) {
        snprintf (reason, reason_size,
                  "field 'from_check' must be a boolean");
        return ZR_MALFORMED;
    }
    return ZR_OK;
}

//  Reads and decodes a half message value.
static int
s_half_decode (zr_txn_half_t *half, void *value, size_t size)
{
    memset (half, 0, sizeof *half);
    half->value = value;
    half->hdr = zr_hdr_decode (value, size, NULL);
    const zr_obj_t *map = half->hdr ? zr_hdr_root (half->hdr) : NULL;
    int64_t queue = -1;
    if (!map || !zr_obj_is_map (map)
    ||  zr_field_strbuf (map, "topic", half->topic, sizeof half->topic)
        != ZR_FIELD_OK
    ||  !s_valid_name (half->topic, strlen (half->topic))
    ||  zr_field_int (map, "queue", &queue) != ZR_FIELD_OK
    ||  queue < 0 || queue > INT32_MAX
    ||  zr_obj_bin (zr_obj_get (map, "body"), &half->body,
                    &half->body_size) != ZR_FIELD_OK)
        return -1;
    half->queue = (int) queue;
    return 0;
}

zr_status_t
zr_txn_half_read (zr_txn_t *self, zr_store_t *store,
                  const zr_txn_end_t *end, zr_txn_half_t *half,
                  char *reason, size_t reason_size)
{
    assert (self);
    memset (half, 0, sizeof *half);
    half_t *pending = (half_t *) zhashx_lookup (self->pending, end->txn_id);
    if (!pending) {
        const char *how = (const char *) zhashx_lookup (self->resolved,
                                                        end->txn_id);
        if (how)
            snprintf (reason, reason_size, "transaction %s already "
                      "resolved (%s)", end->txn_id, how);
        else
            snprintf (reason, reason_size, "unknown transaction %s",
                      end->txn_id);
        return ZR_NOT_FOUND;
    }
    if (strneq (pending->group, end->group)) {
        snprintf (reason, reason_size, "transaction %s belongs to "
                  "producer group '%s', not '%s'", end->txn_id,
                  pending->group, end->group);
        return ZR_BAD_ARGUMENT;
    }
    char key [3 + ZR_TXN_ID_LEN];
    s_key (key, "m/", end->txn_id);
    void *value = NULL;
    size_t size = 0;
    int rc = zr_store_half_get (store, key, &value, &size);
    if (rc == 1) {
        snprintf (reason, reason_size, "unknown transaction %s",
                  end->txn_id);
        zhashx_delete (self->pending, end->txn_id);
        return ZR_NOT_FOUND;
    }
    if (rc != 0 || s_half_decode (half, value, size)) {
        if (rc == 0)
            zr_txn_half_free (half);
        snprintf (reason, reason_size, "cannot read the half message of "
                  "transaction %s", end->txn_id);
        return ZR_STORE_ERROR;
    }
    return ZR_OK;
}

void
zr_txn_half_free (zr_txn_half_t *half)
{
    if (!half)
        return;
    zr_hdr_destroy (&half->hdr);
    free (half->value);
    half->value = NULL;
}

void
zr_txn_batch_resolve (zr_txn_t *self, zr_store_t *store, const char *txn_id)
{
    char key [3 + ZR_TXN_ID_LEN];
    s_key (key, "m/", txn_id);
    zr_store_batch_half_delete (store, key);
    half_t *half = (half_t *) zhashx_lookup (self->pending, txn_id);
    if (!half || half->checks > 0) {
        s_key (key, "c/", txn_id);
        zr_store_batch_half_delete (store, key);
    }
}

void
zr_txn_resolved (zr_txn_t *self, const char *txn_id, bool committed)
{
    assert (self);
    zhashx_delete (self->pending, txn_id);
    if (committed)
        self->stats.committed++;
    else
        self->stats.rolled_back++;
    if (zhashx_lookup (self->resolved, txn_id))
        return;
    if (zlistx_size (self->resolved_order) >= ZR_TXN_RESOLVED_MAX) {
        char *oldest = (char *) zlistx_first (self->resolved_order);
        zhashx_delete (self->resolved, oldest);
        zlistx_delete (self->resolved_order, NULL);
    }
    zhashx_insert (self->resolved, txn_id,
                   (void *) (committed ? "committed" : "rolled back"));
    zlistx_add_end (self->resolved_order, strdup (txn_id));
}

//  --------------------------------------------------------------------
//  Check-back

int64_t
zr_txn_timeout (zr_txn_t *self)
{
    if (!self || self->next_due == -1)
        return -1;
    int64_t left = self->next_due - zclock_time ();
    return left < 0 ? 0 : left;
}

//  Sends CHECK_TXN for a half to member. Returns 0, or -1 when it could
//  not be sent (member gone or lagging; the check still counts).
static int
s_send_check (zr_txn_t *self, zr_store_t *store, zsock_t *router,
              member_t *m, half_t *half, uint64_t *rid)
{
    char key [3 + ZR_TXN_ID_LEN];
    s_key (key, "m/", half->txn_id);
    void *value = NULL;
    size_t size = 0;
    if (zr_store_half_get (store, key, &value, &size) != 0)
        return -1;
    zr_txn_half_t h;
    int rc = -1;
    if (s_half_decode (&h, value, size) == 0) {
        const zr_obj_t *map = zr_hdr_root (h.hdr);
        const char *id = "";
        size_t id_len = 0;
        zr_field_str (map, "id", &id, &id_len);
        zr_enc_t *e = self->enc;
        zr_enc_reset (e);
        zr_enc_map (e, 10);
        zr_enc_kint (e, "v", ZR_PROTOCOL_VERSION);
        zr_enc_kstr (e, "type", "request");
        zr_enc_kstr (e, "cmd", "CHECK_TXN");
        zr_enc_kint (e, "rid", (int64_t) ++*rid);
        zr_enc_kstr (e, "txn_id", half->txn_id);
        zr_enc_kstr (e, "producer_group", half->group);
        zr_enc_kint (e, "checks", half->checks + 1);
        zr_enc_str (e, "id");
        zr_enc_strn (e, id, id_len);
        zr_enc_kstr (e, "topic", h.topic);
        //  The message map: what a producer needs to decide
        zr_enc_str (e, "msg");
        zr_enc_map (e, 7);
        zr_enc_str (e, "id");
        zr_enc_strn (e, id, id_len);
        zr_enc_kstr (e, "topic", h.topic);
        zr_enc_kint (e, "queue", h.queue);
        const char *names [] = { "tags", "keys" };
        for (int i = 0; i < 2; i++) {
            const char *s = "";
            size_t len = 0;
            if (zr_field_str (map, names [i], &s, &len) != ZR_FIELD_OK)
                len = 0;
            zr_enc_str (e, names [i]);
            zr_enc_strn (e, s, len);
        }
        const zr_obj_t *props = zr_obj_get (map, "props");
        size_t n = props && zr_obj_is_map (props) ? zr_obj_size (props)
                                                    : 0;
        zr_enc_str (e, "props");
        zr_enc_map (e, n);
        for (size_t i = 0; i < n; i++) {
            const char *s = "";
            size_t len = 0;
            zr_obj_str (zr_obj_key_at (props, i), &s, &len);
            zr_enc_strn (e, s, len);
            s = "";
            len = 0;
            zr_obj_str (zr_obj_val_at (props, i), &s, &len);
            zr_enc_strn (e, s, len);
        }
        int64_t born = 0;
        zr_field_int (map, "born", &born);
        zr_enc_kint (e, "born", born);
        void *handle = zsock_resolve (router);
        if (zmq_send (handle, m->identity, m->identity_size,
                      ZMQ_SNDMORE | ZMQ_DONTWAIT) != -1) {
            if (m->delimiter)
                zmq_send (handle, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send (handle, zr_enc_data (e), zr_enc_size (e),
                      ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send (handle, h.body, h.body_size, ZMQ_DONTWAIT);
            rc = 0;
        }
    }
    zr_txn_half_free (&h);
    return rc;
}

void
zr_txn_tick (zr_txn_t *self, zr_store_t *store, zsock_t *router, bool sync,
             uint64_t *rid)
{
    assert (self);
    int64_t now = zclock_time ();
    if (self->next_due == -1 || self->next_due > now)
        return;
    if (zr_store_batch_ops (store) > 0)
        return;             //  the broker commits first; next turn
    int64_t mono = zclock_mono ();
    //  Collect first: no lookups while iterating the table
    zlistx_t *due = zlistx_new ();          //  half_t (borrowed)
    int64_t next_due = -1;
    half_t *half = (half_t *) zhashx_first (self->pending);
    while (half) {
        if (half->next <= now && zlistx_size (due) < ZR_TXN_TICK_MAX)
            zlistx_add_end (due, half);
        else {
            int64_t next = half->next > now ? half->next : now;
            if (next_due == -1 || next < next_due)
                next_due = next;
        }
        half = (half_t *) zhashx_next (self->pending);
    }
    zlistx_t *rollback = zlistx_new ();     //  txn ids (borrowed)
    half = (half_t *) zlistx_first (due);
    while (half) {
        if (half->checks >= self->max_checks) {
            zlistx_add_end (rollback, half->txn_id);
            zr_txn_batch_resolve (self, store, half->txn_id);
        }
        else {
            member_t *m = s_pick (self, half->group, mono);
            if (!m)
                self->stats.checks_no_member++;
            else
            if (s_send_check (self, store, router, m, half, rid))
                self->stats.checks_dropped++;
            else
                self->stats.checks_sent++;
            half->checks++;
            half->next = now + self->check_ms;
            uint8_t count [8];
            for (int i = 0; i < 8; i++)
                count [i] = (uint8_t) ((uint64_t) half->checks
                                       >> (56 - 8 * i));
            char key [3 + ZR_TXN_ID_LEN];
            s_key (key, "c/", half->txn_id);
            zr_store_batch_half_put (store, key, count, 8);
            if (next_due == -1 || half->next < next_due)
                next_due = half->next;
        }
        half = (half_t *) zlistx_next (due);
    }
    char *err = NULL;
    if (zr_store_commit (store, sync, &err) == 0) {
        const char *id = (const char *) zlistx_first (rollback);
        while (id) {
            char copy [ZR_TXN_ID_LEN + 1];
            snprintf (copy, sizeof copy, "%s", id);
            half = (half_t *) zhashx_lookup (self->pending, copy);
            zsys_warning ("broker: transaction %s rolled back after %" PRId64
                          " checks", copy, half ? half->checks : 0);
            self->stats.rolled_back_timeout++;
            zr_txn_resolved (self, copy, false);
            id = (const char *) zlistx_next (rollback);
        }
    }
    else {
        zsys_error ("txn: cannot record checks and rollbacks: %s",
                    err ? err : "?");
        zstr_free (&err);
        //  Try again in a second; the checks sent are counted again then
        if (next_due == -1 || next_due > now + 1000)
            next_due = now + 1000;
    }
    zlistx_destroy (&rollback);
    zlistx_destroy (&due);
    self->next_due = next_due;
}

//  --------------------------------------------------------------------
//  Stats

size_t
zr_txn_stats_count (void)
{
    return 7;
}

void
zr_txn_stats (zr_txn_t *self, zr_enc_t *enc)
{
    zr_enc_kint (enc, "txn_half_pending",
                 self ? (int64_t) zhashx_size (self->pending) : 0);
    zr_enc_kint (enc, "txn_halves", self ? (int64_t) self->stats.halves
                                         : 0);
    zr_enc_kint (enc, "txn_committed",
                 self ? (int64_t) self->stats.committed : 0);
    zr_enc_kint (enc, "txn_rolled_back",
                 self ? (int64_t) self->stats.rolled_back : 0);
    zr_enc_kint (enc, "txn_rolled_back_timeout",
                 self ? (int64_t) self->stats.rolled_back_timeout : 0);
    zr_enc_kint (enc, "txn_checks_sent",
                 self ? (int64_t) self->stats.checks_sent : 0);
    zr_enc_kint (enc, "txn_checks_no_member",
                 self ? (int64_t) (self->stats.checks_no_member
                                   + self->stats.checks_dropped) : 0);
}
