/*  nameserver/registry.h - the nameserver's registry of brokers
    (docs/protocol.md section 9), as a pure data module: no sockets, no
    clock. The caller passes the monotonic time (ms) into every call that
    needs it, so tests control time.

    A broker is known by (group, broker_id); broker_id 0 is its group's
    master. Its record (cluster, role, endpoints, epoch, topics with queue
    counts, last-seen time) is replaced whole by each REGISTER, so a topic
    left out of a re-registration leaves the routes at once.

    Requests are read straight from decoded headers (zr_obj_t maps), and
    answers are written into zr_enc_t encoders, so the nameserver actor
    only adds the reply envelope. Every field is checked: a missing field
    or a wrong type is ZR_MALFORMED, a value out of range ZR_BAD_ARGUMENT,
    each with a reason naming the field and the value.
*/
#ifndef ZR_REGISTRY_H_INCLUDED
#define ZR_REGISTRY_H_INCLUDED

#include <zrocket.h>
#include "transport/codec.h"

//  Bounds on what one REGISTER may carry, and on the registry.
#define ZR_REGISTRY_ENDPOINTS_MAX 1024      //  endpoints per broker
#define ZR_REGISTRY_TOPICS_MAX 1024         //  topics per broker
#define ZR_REGISTRY_QUEUES_MAX 1024         //  queues per topic
#define ZR_REGISTRY_ENDPOINT_MAX 255        //  bytes in one endpoint
#define ZR_REGISTRY_BROKERS_MAX 4096        //  brokers in the registry
#define ZR_REGISTRY_BROKER_ID_MAX 1000000   //  largest broker_id

typedef struct _zr_registry_t zr_registry_t;

//  Creates an empty registry for brokers of cluster (copied). Returns
//  NULL when cluster is not a valid name (1-127 of A-Z a-z 0-9 _ - % |).
zr_registry_t *
    zr_registry_new (const char *cluster);

//  Destroys the registry; NULL-safe, sets *self_p to NULL.
void
    zr_registry_destroy (zr_registry_t **self_p);

//  The cluster name (borrowed).
const char *
    zr_registry_cluster (zr_registry_t *self);

//  Number of brokers registered (expired ones count until
//  zr_registry_expire drops them).
size_t
    zr_registry_size (zr_registry_t *self);

//  Registers a broker, or refreshes it, from a REGISTER request map
//  (fields of protocol.md section 9). The broker's record is replaced
//  whole, its last-seen time set to now. Returns ZR_OK, or ZR_MALFORMED /
//  ZR_BAD_ARGUMENT with a reason in reason[size] (also a broker of
//  another cluster, naming both clusters); on error the registry is
//  unchanged.
zr_status_t
    zr_registry_register (zr_registry_t *self, const zr_obj_t *request,
                          int64_t now, char *reason, size_t size);

//  Removes a broker named by an UNREGISTER request map (cluster, group,
//  broker_id: 0 when missing). Returns ZR_OK also when the broker was not
//  registered; ZR_MALFORMED / ZR_BAD_ARGUMENT with a reason otherwise.
zr_status_t
    zr_registry_unregister (zr_registry_t *self, const zr_obj_t *request,
                            char *reason, size_t size);

//  Drops every broker whose last registration is expiry_ms or more
//  before now, logging "nameserver: broker GROUP/ID expired" for each.
//  Returns how many it dropped.
size_t
    zr_registry_expire (zr_registry_t *self, int64_t now, int64_t expiry_ms);

//  Encodes into enc (appending, not resetting) the GET_ROUTE `groups`
//  array for topic: one map {group, queues, master, slaves, epoch,
//  age_ms, master_ha} per broker group with a broker that serves the
//  topic, in group name order. Returns the number of groups; when 0, nothing is
//  encoded (the answer is TOPIC_NOT_FOUND).
size_t
    zr_registry_route (zr_registry_t *self, const char *topic, int64_t now,
                       zr_enc_t *enc);

//  Encodes into enc (appending) the GET_CLUSTER `brokers` array: one map
//  {group, broker_id, role, endpoints, epoch, topics, age_ms, ha} per
//  broker in (group, broker_id) order. Returns the number of brokers.
size_t
    zr_registry_cluster_encode (zr_registry_t *self, int64_t now,
                                zr_enc_t *enc);

#endif
