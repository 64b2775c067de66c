/*  client/router.h - a routed client's table of topic routes, taken from
    nameservers with GET_ROUTE (docs/protocol.md section 9).

    Internal (not installed); not thread-safe. The routed producer keeps
    one zr_router_t. A route lists, per broker group serving the topic,
    the group's name, its master's endpoint and the topic's queue count
    there; groups are kept in name order, so every client that sees the
    same route numbers the (group, queue) pairs the same way.

    A route object of a topic lives as long as the router; a refresh
    replaces its contents, so callers copy what they need (endpoint,
    queue) before anything that may refresh (a wait, a callback).
*/
#ifndef ZR_ROUTER_H_INCLUDED
#define ZR_ROUTER_H_INCLUDED

#include <zrocket.h>

typedef struct _zr_router_t zr_router_t;
typedef struct _zr_router_route_t zr_router_route_t;

//  Creates a router over comma-separated nameserver endpoints. Returns
//  NULL when the list holds no usable endpoint.
zr_router_t *zr_router_new (const char *nameservers);
void zr_router_destroy (zr_router_t **self_p);

//  Nameserver list as given (borrowed).
const char *zr_router_nameservers (zr_router_t *self);

//  Refresh interval, ms (default 30000).
void zr_router_set_refresh (zr_router_t *self, int interval_ms);

//  Returns the route of topic (borrowed), asking the nameservers when it
//  is not known yet, older than the refresh interval, or when force is
//  true (a broker said "not here"; forced refreshes of one topic happen
//  at most every 100 ms). timeout_ms bounds the whole lookup (split over
//  the nameservers, each tried in turn until one answers). When a
//  refresh fails but an older route is known, the older route is
//  returned. *refreshed tells whether the contents were just replaced.
//  Returns NULL, with *status and reason filled, when there is no usable
//  route:
//    ZR_TIMEOUT          "no nameserver reachable at LIST"
//    ZR_TOPIC_NOT_FOUND  "topic 'T' is unknown to every nameserver"
//    ZR_TIMEOUT          "no broker serving topic 'T'" (groups known, but
//                        none has a live master with queues: transient,
//                        e.g. during a failover)
zr_router_route_t *zr_router_get (zr_router_t *self, const char *topic,
                                  bool force, int timeout_ms,
                                  bool *refreshed, zr_status_t *status,
                                  char *reason, size_t reason_size);

//  True when some known route names endpoint as a group's master.
bool zr_router_names (zr_router_t *self, const char *endpoint);

//  (group, queue) pairs of the route: only groups with a master count.
size_t zr_router_pairs (zr_router_route_t *route);
//  Pair i: its group's master endpoint and the queue (borrowed).
const char *zr_router_pair (zr_router_route_t *route, size_t index,
                            int *queue);

//  Groups of the route and their fields (borrowed; master NULL when the
//  group has no live master). age_ms: ms since the master's last
//  REGISTER, as the nameserver said when fetched_at (zclock_mono) was.
size_t zr_router_groups (zr_router_route_t *route);
const char *zr_router_group (zr_router_route_t *route, size_t index);
const char *zr_router_master (zr_router_route_t *route, size_t index);
int zr_router_queues (zr_router_route_t *route, size_t index);
int64_t zr_router_age (zr_router_route_t *route, size_t index);
int64_t zr_router_fetched_at (zr_router_route_t *route);

#endif
