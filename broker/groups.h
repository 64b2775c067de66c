/*  broker/groups.h - consumer group membership and queue leases, in
    memory (docs/protocol.md section 11).

    A pure data module: no sockets, no clock. The broker passes the
    monotonic time (ms) to every call that needs it, so tests drive time
    by hand. Names are validated by the caller (the broker); this module
    only copies them.

    Membership: a group has members (client id, topics, mode, the routing
    identity of its last HEARTBEAT, last seen) and a membership version
    that changes whenever a member joins, leaves, expires or changes its
    topics or mode. A group with no members and no leases is forgotten.

    Leases: one per (group, topic, queue) with an owner client id, a
    token (unique within one zr_groups_t, never 0) and an expiry time. A
    lease that has expired counts as free: anyone may take it (with a new
    token) and any token passes zr_groups_check for it.

    Bounds: ZR_GROUPS_MEMBERS_MAX members per group,
    ZR_GROUPS_MEMBERS_TOTAL members in all, ZR_GROUPS_LEASES_MAX leases.

    Not thread-safe: one thread (the broker actor) uses it.
*/
#ifndef ZR_GROUPS_H_INCLUDED
#define ZR_GROUPS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZR_GROUPS_MEMBERS_MAX 10000     //  per group
#define ZR_GROUPS_MEMBERS_TOTAL 100000  //  all groups together
#define ZR_GROUPS_LEASES_MAX 100000
#define ZR_GROUPS_TOPICS_MAX 1024       //  topics per member
#define ZR_GROUPS_IDENTITY_MAX 256      //  routing identity bytes

//  Results (negative for failures).
#define ZR_GROUPS_OK 0
#define ZR_GROUPS_FULL -1           //  a bound above was reached
#define ZR_GROUPS_HELD -2           //  LOCK: another owner holds the lease
#define ZR_GROUPS_INVALID -3        //  UNLOCK: token is not the current one

typedef struct _zr_groups_t zr_groups_t;

//  A member as iteration shows it (every pointer borrowed, valid until
//  the next call that changes the groups).
typedef struct {
    const char *client_id;
    const char *const *topics;      //  topic_count names, as given
    size_t topic_count;
    bool broadcast;                 //  mode "broadcast" (else clustering)
    const uint8_t *identity;        //  routing identity of last HEARTBEAT
    size_t identity_size;
    bool delimiter;                 //  REQ peer: needs an empty frame
    int64_t last_seen;              //  monotonic ms of last HEARTBEAT
    //  per topic "tag:EXPR" / "sql:EXPR" or NULL (no filter); the whole
    //  array NULL when no topic has one (HEARTBEAT subscriptions)
    const char *const *filters;
} zr_groups_member_t;

//  Creates an empty table. Tokens start at a random point, so tokens of
//  two broker runs are unlikely to collide.
zr_groups_t *
    zr_groups_new (void);

//  Destroys the table. NULL-safe.
void
    zr_groups_destroy (zr_groups_t **self_p);

//  Records a HEARTBEAT: adds the member or refreshes it (topics, mode,
//  identity, last seen). identity_size must be 1..ZR_GROUPS_IDENTITY_MAX
//  and topic_count at most ZR_GROUPS_TOPICS_MAX (else ZR_GROUPS_FULL).
//  Returns 1 when the membership changed (join, or new topics or mode:
//  the version moved), 0 when not, ZR_GROUPS_FULL when the member would
//  exceed a bound (nothing changed).
int
    zr_groups_heartbeat (zr_groups_t *self, const char *group,
                         const char *client_id, const char *const *topics,
                         size_t topic_count, bool broadcast,
                         const void *identity, size_t identity_size,
                         bool delimiter, int64_t now);

//  Records the filters of a member's topics (display only: HEARTBEAT
//  subscriptions, shown by GROUP_STATUS): filters has one entry per
//  topic of its last heartbeat, in the same order ("tag:EXPR",
//  "sql:EXPR" or NULL), or is NULL for none. A change of topics drops
//  them. Returns 0, or -1 for an unknown member or a count mismatch.
int
    zr_groups_set_filters (zr_groups_t *self, const char *group,
                           const char *client_id, const char *const *filters,
                           size_t count);

//  Removes a member and releases every lease it holds in that group.
//  Returns 1 when it was a member (the version moved), 0 when not.
int
    zr_groups_leave (zr_groups_t *self, const char *group,
                     const char *client_id);

//  Called with a group whose membership changed.
typedef void (zr_groups_changed_fn) (const char *group, uint64_t version,
                                     void *arg);

//  Drops members not heard from for expiry_ms (last_seen + expiry_ms <=
//  now), releases their leases, drops expired leases, forgets empty
//  groups. Calls fn (may be NULL) once per group whose membership
//  changed, after all removals; fn may read the groups but not change
//  them. Returns the number of members dropped.
size_t
    zr_groups_expire (zr_groups_t *self, int64_t now, int64_t expiry_ms,
                      zr_groups_changed_fn *fn, void *arg);

//  Membership version of a group (0 for an unknown group; a known group's
//  version is >= 1).
uint64_t
    zr_groups_version (zr_groups_t *self, const char *group);

//  Moves a group's version on without a membership change (e.g. its
//  offsets were reset). Returns the new version, or 0 for an unknown
//  group (nothing to tell).
uint64_t
    zr_groups_touch (zr_groups_t *self, const char *group);

//  Calls fn for each member of group in client id order. Returns the
//  number of members. fn must not change the groups.
typedef void (zr_groups_member_fn) (const zr_groups_member_t *member,
                                    void *arg);
size_t
    zr_groups_members (zr_groups_t *self, const char *group,
                       zr_groups_member_fn *fn, void *arg);

//  Calls fn for each group (any order) with its version. Returns the
//  number of groups.
size_t
    zr_groups_foreach (zr_groups_t *self, zr_groups_changed_fn *fn,
                       void *arg);

//  Takes or renews the lease of (group, topic, queue) for client_id for
//  lease_ms from now. token is the lease the caller holds (0: none).
//  - the caller owns an unexpired lease with that token: renewed, same
//    token;
//  - no unexpired lease, or the caller owns it but named another token
//    (it lost track of it): a new lease with a new token;
//  - another owner holds an unexpired lease: ZR_GROUPS_HELD, with *owner
//    (borrowed) and *left_ms set;
//  - the lease table is full: ZR_GROUPS_FULL.
//  Returns ZR_GROUPS_OK with *token_out set, or a negative result.
int
    zr_groups_lock (zr_groups_t *self, const char *group, const char *topic,
                    int queue, const char *client_id, uint64_t token,
                    int64_t now, int64_t lease_ms, uint64_t *token_out,
                    const char **owner, int64_t *left_ms);

//  Releases a lease. ZR_GROUPS_OK when token is the current one (the
//  lease is gone) or when no unexpired lease exists (nothing to
//  release); ZR_GROUPS_INVALID when another token holds it.
int
    zr_groups_unlock (zr_groups_t *self, const char *group,
                      const char *topic, int queue, uint64_t token,
                      int64_t now);

//  True when a request with token (0: none) may read or commit (group,
//  topic, queue): no unexpired lease exists, or token is its token.
//  Gives a queue's lease (if any) a token nobody holds, keeping its owner
//  and expiry: the owner's next PULL or commit is LEASE_INVALID, so it
//  takes the lease again (LOCK) and with it the offset now committed.
//  RESET_OFFSET uses it so that running members cannot commit over the
//  reset.
void
    zr_groups_revoke (zr_groups_t *self, const char *group,
                      const char *topic, int queue);

bool
    zr_groups_check (zr_groups_t *self, const char *group,
                     const char *topic, int queue, uint64_t token,
                     int64_t now);

//  Owner of the unexpired lease of (group, topic, queue), or NULL
//  (borrowed); *left_ms (may be NULL) gets the ms it has left.
const char *
    zr_groups_owner (zr_groups_t *self, const char *group,
                     const char *topic, int queue, int64_t now,
                     int64_t *left_ms);

//  Counts for STATS: groups, members in all, leases (expired ones not
//  yet dropped by zr_groups_expire included).
size_t zr_groups_count (zr_groups_t *self);
size_t zr_groups_member_count (zr_groups_t *self);
size_t zr_groups_lease_count (zr_groups_t *self);

#endif
