/*  broker/groups.c - consumer group membership and queue leases (see
    groups.h). Groups are a hash by name; each holds its members (hash by
    client id, with a sorted array cached for iteration) and its leases
    (hash by "topic\nqueue": names never hold a newline).
*/
#include <czmq.h>
#include "broker/groups.h"

typedef struct {
    char *client_id;
    char **topics;
    size_t topic_count;
    char **filters;         //  per topic "tag:EXPR"/"sql:EXPR" or NULL
    bool broadcast;
    uint8_t identity [ZR_GROUPS_IDENTITY_MAX];
    size_t identity_size;
    bool delimiter;
    int64_t last_seen;
} member_t;

typedef struct {
    char *owner;
    uint64_t token;
    int64_t expires;        //  monotonic ms
} lease_t;

typedef struct {
    char *name;
    uint64_t version;
    zhashx_t *members;      //  client id -> member_t
    zhashx_t *leases;       //  "topic\nqueue" -> lease_t
    member_t **sorted;      //  members by client id, or NULL when stale
} group_t;

struct _zr_groups_t {
    zhashx_t *groups;       //  name -> group_t
    size_t member_total;
    size_t lease_total;
    uint64_t version_counter;   //  versions never repeat in one table
    uint64_t next_token;
};

//  --------------------------------------------------------------------
//  Items

static void
s_member_filters_free (member_t *self)
{
    if (self->filters)
        for (size_t i = 0; i < self->topic_count; i++)
            free (self->filters [i]);
    free (self->filters);
    self->filters = NULL;
}

static void
s_member_destroy (member_t **self_p)
{
    if (*self_p) {
        member_t *self = *self_p;
        s_member_filters_free (self);
        for (size_t i = 0; i < self->topic_count; i++)
            free (self->topics [i]);
        free (self->topics);
        free (self->client_id);
        free (self);
        *self_p = NULL;
    }
}

static void
s_member_free (void **item)
{
    s_member_destroy ((member_t **) item);
}

static void
s_lease_free (void **item)
{
    if (*item) {
        lease_t *lease = (lease_t *) *item;
        free (lease->owner);
        free (lease);
        *item = NULL;
    }
}

static void
s_group_free (void **item)
{
    if (*item) {
        group_t *group = (group_t *) *item;
        zhashx_destroy (&group->members);
        zhashx_destroy (&group->leases);
        free (group->sorted);
        free (group->name);
        free (group);
        *item = NULL;
    }
}

static group_t *
s_group_require (zr_groups_t *self, const char *name)
{
    group_t *group = (group_t *) zhashx_lookup (self->groups, name);
    if (!group) {
        group = (group_t *) zmalloc (sizeof (group_t));
        group->name = strdup (name);
        group->version = ++self->version_counter;
        group->members = zhashx_new ();
        zhashx_set_destructor (group->members, s_member_free);
        group->leases = zhashx_new ();
        zhashx_set_destructor (group->leases, s_lease_free);
        zhashx_insert (self->groups, name, group);
    }
    return group;
}

//  Forgets a group that has nothing left.
static void
s_group_gc (zr_groups_t *self, group_t *group)
{
    if (zhashx_size (group->members) == 0
    &&  zhashx_size (group->leases) == 0)
        zhashx_delete (self->groups, group->name);
}

static void
s_group_changed (zr_groups_t *self, group_t *group)
{
    group->version = ++self->version_counter;
    free (group->sorted);
    group->sorted = NULL;
}

static char *
s_lease_key (const char *topic, int queue)
{
    return zsys_sprintf ("%s\n%d", topic, queue);
}

static void
s_lease_delete (zr_groups_t *self, group_t *group, const char *key)
{
    if (zhashx_lookup (group->leases, key)) {
        zhashx_delete (group->leases, key);
        self->lease_total--;
    }
}

//  Releases the leases of client_id in group (all of them when client_id
//  is NULL and now >= their expiry: expired ones).
static void
s_release_leases (zr_groups_t *self, group_t *group, const char *client_id,
                  int64_t now)
{
    zlistx_t *gone = zlistx_new ();
    lease_t *lease = (lease_t *) zhashx_first (group->leases);
    while (lease) {
        bool drop = client_id ? streq (lease->owner, client_id)
                              : lease->expires <= now;
        if (drop)
            zlistx_add_end (gone, (void *) zhashx_cursor (group->leases));
        lease = (lease_t *) zhashx_next (group->leases);
    }
    const char *key = (const char *) zlistx_first (gone);
    while (key) {
        s_lease_delete (self, group, key);
        key = (const char *) zlistx_next (gone);
    }
    zlistx_destroy (&gone);
}

//  --------------------------------------------------------------------
//  Table

zr_groups_t *
zr_groups_new (void)
{
    zr_groups_t *self = (zr_groups_t *) zmalloc (sizeof (zr_groups_t));
    self->groups = zhashx_new ();
    zhashx_set_destructor (self->groups, s_group_free);
    //  A random start below 2^61 leaves room to count up without ever
    //  reaching INT64_MAX (tokens travel as msgpack ints).
    uint64_t start = ((uint64_t) randof (0x40000000) << 31)
                   ^ (uint64_t) randof (0x40000000)
                   ^ ((uint64_t) zclock_time () << 8);
    self->next_token = (start & ((1ULL << 61) - 1)) + 1;
    return self;
}

void
zr_groups_destroy (zr_groups_t **self_p)
{
    if (*self_p) {
        zr_groups_t *self = *self_p;
        zhashx_destroy (&self->groups);
        free (self);
        *self_p = NULL;
    }
}

static bool
s_same_topics (member_t *member, const char *const *topics, size_t count)
{
    if (member->topic_count != count)
        return false;
    for (size_t i = 0; i < count; i++)
        if (strneq (member->topics [i], topics [i]))
            return false;
    return true;
}

int
zr_groups_heartbeat (zr_groups_t *self, const char *group_name,
                     const char *client_id, const char *const *topics,
                     size_t topic_count, bool broadcast,
                     const void *identity, size_t identity_size,
                     bool delimiter, int64_t now)
{
    assert (self);
    assert (group_name && client_id);
    if (identity_size == 0 || identity_size > ZR_GROUPS_IDENTITY_MAX
    ||  topic_count > ZR_GROUPS_TOPICS_MAX)
        return ZR_GROUPS_FULL;
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    member_t *member = group
        ? (member_t *) zhashx_lookup (group->members, client_id) : NULL;
    if (!member
    &&  ((group && zhashx_size (group->members) >= ZR_GROUPS_MEMBERS_MAX)
    ||   self->member_total >= ZR_GROUPS_MEMBERS_TOTAL))
        return ZR_GROUPS_FULL;
    group = s_group_require (self, group_name);
    bool changed = false;
    if (!member) {
        member = (member_t *) zmalloc (sizeof (member_t));
        member->client_id = strdup (client_id);
        zhashx_insert (group->members, client_id, member);
        self->member_total++;
        changed = true;
    }
    if (!s_same_topics (member, topics, topic_count)) {
        s_member_filters_free (member);
        for (size_t i = 0; i < member->topic_count; i++)
            free (member->topics [i]);
        free (member->topics);
        member->topics = topic_count
            ? (char **) zmalloc (sizeof (char *) * topic_count) : NULL;
        for (size_t i = 0; i < topic_count; i++)
            member->topics [i] = strdup (topics [i]);
        member->topic_count = topic_count;
        changed = true;
    }
    if (member->broadcast != broadcast) {
        member->broadcast = broadcast;
        changed = true;
    }
    memcpy (member->identity, identity, identity_size);
    member->identity_size = identity_size;
    member->delimiter = delimiter;
    member->last_seen = now;
    if (changed)
        s_group_changed (self, group);
    return changed ? 1 : 0;
}

int
zr_groups_set_filters (zr_groups_t *self, const char *group_name,
                       const char *client_id, const char *const *filters,
                       size_t count)
{
    assert (self);
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    member_t *member = group
        ? (member_t *) zhashx_lookup (group->members, client_id) : NULL;
    if (!member || (filters && count != member->topic_count))
        return -1;
    s_member_filters_free (member);
    bool any = false;
    for (size_t i = 0; filters && i < count; i++)
        any = any || filters [i];
    if (any) {
        member->filters = (char **) zmalloc (sizeof (char *) * count);
        for (size_t i = 0; i < count; i++)
            member->filters [i] = filters [i] ? strdup (filters [i]) : NULL;
    }
    return 0;
}

int
zr_groups_leave (zr_groups_t *self, const char *group_name,
                 const char *client_id)
{
    assert (self);
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    if (!group)
        return 0;
    s_release_leases (self, group, client_id, 0);
    bool was = zhashx_lookup (group->members, client_id) != NULL;
    if (was) {
        zhashx_delete (group->members, client_id);
        self->member_total--;
        s_group_changed (self, group);
    }
    s_group_gc (self, group);
    return was ? 1 : 0;
}

size_t
zr_groups_expire (zr_groups_t *self, int64_t now, int64_t expiry_ms,
                  zr_groups_changed_fn *fn, void *arg)
{
    assert (self);
    size_t dropped = 0;
    zlistx_t *changed = zlistx_new ();      //  group_t *
    zlistx_t *gone = zlistx_new ();         //  member keys (borrowed)
    group_t *group = (group_t *) zhashx_first (self->groups);
    while (group) {
        member_t *member = (member_t *) zhashx_first (group->members);
        while (member) {
            if (member->last_seen + expiry_ms <= now)
                zlistx_add_end (gone, member);
            member = (member_t *) zhashx_next (group->members);
        }
        member = (member_t *) zlistx_first (gone);
        while (member) {
            s_release_leases (self, group, member->client_id, 0);
            //  Deleting frees member: read nothing from it afterwards.
            zhashx_delete (group->members, member->client_id);
            self->member_total--;
            dropped++;
            member = (member_t *) zlistx_next (gone);
        }
        if (zlistx_size (gone)) {
            s_group_changed (self, group);
            zlistx_add_end (changed, group);
        }
        zlistx_purge (gone);
        s_release_leases (self, group, NULL, now);
        group = (group_t *) zhashx_next (self->groups);
    }
    group = (group_t *) zlistx_first (changed);
    while (group) {
        if (fn)
            fn (group->name, group->version, arg);
        group = (group_t *) zlistx_next (changed);
    }
    //  Forget groups with nothing left (not while iterating the hash).
    zlistx_t *empty = zlistx_new ();
    group = (group_t *) zhashx_first (self->groups);
    while (group) {
        if (zhashx_size (group->members) == 0
        &&  zhashx_size (group->leases) == 0)
            zlistx_add_end (empty, group);
        group = (group_t *) zhashx_next (self->groups);
    }
    group = (group_t *) zlistx_first (empty);
    while (group) {
        zhashx_delete (self->groups, group->name);
        group = (group_t *) zlistx_next (empty);
    }
    zlistx_destroy (&empty);
    zlistx_destroy (&gone);
    zlistx_destroy (&changed);
    return dropped;
}

uint64_t
zr_groups_version (zr_groups_t *self, const char *group_name)
{
    assert (self);
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    return group ? group->version : 0;
}

uint64_t
zr_groups_touch (zr_groups_t *self, const char *group_name)
{
    assert (self);
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    if (!group)
        return 0;
    group->version = ++self->version_counter;
    return group->version;
}

static int
s_member_cmp (const void *a, const void *b)
{
    const member_t *x = *(const member_t *const *) a;
    const member_t *y = *(const member_t *const *) b;
    return strcmp (x->client_id, y->client_id);
}

size_t
zr_groups_members (zr_groups_t *self, const char *group_name,
                   zr_groups_member_fn *fn, void *arg)
{
    assert (self);
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    if (!group)
        return 0;
    size_t n = zhashx_size (group->members);
    if (n == 0)
        return 0;
    if (!group->sorted) {
        group->sorted = (member_t **) zmalloc (sizeof (member_t *) * n);
        size_t i = 0;
        member_t *member = (member_t *) zhashx_first (group->members);
        while (member) {
            group->sorted [i++] = member;
            member = (member_t *) zhashx_next (group->members);
        }
        qsort (group->sorted, n, sizeof (member_t *), s_member_cmp);
    }
    for (size_t i = 0; fn && i < n; i++) {
        member_t *m = group->sorted [i];
        zr_groups_member_t view = {
            m->client_id, (const char *const *) m->topics, m->topic_count,
            m->broadcast, m->identity, m->identity_size, m->delimiter,
            m->last_seen, (const char *const *) m->filters
        };
        fn (&view, arg);
    }
    return n;
}

size_t
zr_groups_foreach (zr_groups_t *self, zr_groups_changed_fn *fn, void *arg)
{
    assert (self);
    group_t *group = (group_t *) zhashx_first (self->groups);
    while (group) {
        if (fn)
            fn (group->name, group->version, arg);
        group = (group_t *) zhashx_next (self->groups);
    }
    return zhashx_size (self->groups);
}

//  --------------------------------------------------------------------
//  Leases

//  The lease of (group, topic, queue), expired or not, or NULL.
static lease_t *
s_lease_find (zr_groups_t *self, const char *group_name, const char *topic,
              int queue, group_t **group_p)
{
    group_t *group = (group_t *) zhashx_lookup (self->groups, group_name);
    if (group_p)
        *group_p = group;
    if (!group)
        return NULL;
    char *key = s_lease_key (topic, queue);
    lease_t *lease = (lease_t *) zhashx_lookup (group->leases, key);
    zstr_free (&key);
    return lease;
}

int
zr_groups_lock (zr_groups_t *self, const char *group_name, const char *topic,
                int queue, const char *client_id, uint64_t token,
                int64_t now, int64_t lease_ms, uint64_t *token_out,
                const char **owner, int64_t *left_ms)
{
    assert (self);
    assert (token_out);
    lease_t *lease = s_lease_find (self, group_name, topic, queue, NULL);
    bool live = lease && lease->expires > now;
    if (live && strneq (lease->owner, client_id)) {
        if (owner)
            *owner = lease->owner;
        if (left_ms)
            *left_ms = lease->expires - now;
        return ZR_GROUPS_HELD;
    }
    if (live && token && lease->token == token) {
        lease->expires = now + lease_ms;
        *token_out = lease->token;
        return ZR_GROUPS_OK;
    }
    if (!lease) {
        if (self->lease_total >= ZR_GROUPS_LEASES_MAX)
            return ZR_GROUPS_FULL;
        group_t *group = s_group_require (self, group_name);
        lease = (lease_t *) zmalloc (sizeof (lease_t));
        char *key = s_lease_key (topic, queue);
        zhashx_insert (group->leases, key, lease);
        zstr_free (&key);
        self->lease_total++;
    }
    free (lease->owner);
    lease->owner = strdup (client_id);
    lease->token = self->next_token++;
    lease->expires = now + lease_ms;
    *token_out = lease->token;
    return ZR_GROUPS_OK;
}

int
zr_groups_unlock (zr_groups_t *self, const char *group_name,
                  const char *topic, int queue, uint64_t token, int64_t now)
{
    assert (self);
    group_t *group = NULL;
    lease_t *lease = s_lease_find (self, group_name, topic, queue, &group);
    if (!lease)
        return ZR_GROUPS_OK;
    if (lease->expires > now && lease->token != token)
        return ZR_GROUPS_INVALID;
    char *key = s_lease_key (topic, queue);
    s_lease_delete (self, group, key);
    zstr_free (&key);
    s_group_gc (self, group);
    return ZR_GROUPS_OK;
}

void
zr_groups_revoke (zr_groups_t *self, const char *group_name,
                  const char *topic, int queue)
{
    assert (self);
    lease_t *lease = s_lease_find (self, group_name, topic, queue, NULL);
    if (lease)
        lease->token = self->next_token++;
}

bool
zr_groups_check (zr_groups_t *self, const char *group_name,
                 const char *topic, int queue, uint64_t token, int64_t now)
{
    assert (self);
    lease_t *lease = s_lease_find (self, group_name, topic, queue, NULL);
    return !lease || lease->expires <= now || lease->token == token;
}

const char *
zr_groups_owner (zr_groups_t *self, const char *group_name,
                 const char *topic, int queue, int64_t now,
                 int64_t *left_ms)
{
    assert (self);
    lease_t *lease = s_lease_find (self, group_name, topic, queue, NULL);
    if (!lease || lease->expires <= now)
        return NULL;
    if (left_ms)
        *left_ms = lease->expires - now;
    return lease->owner;
}

size_t
zr_groups_count (zr_groups_t *self)
{
    assert (self);
    return zhashx_size (self->groups);
}

size_t
zr_groups_member_count (zr_groups_t *self)
{
    assert (self);
    return self->member_total;
}

size_t
zr_groups_lease_count (zr_groups_t *self)
{
    assert (self);
    return self->lease_total;
}
