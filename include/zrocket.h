/*  zrocket.h - public API of zrocket, a brokered messaging fabric on ZeroMQ.

    One header for applications: the broker actor to embed, the producer,
    the pull consumer, and the status codes of docs/protocol.md.

    Thread safety: a zr_producer_t, zr_consumer_t, zr_message_t or
    zr_pull_t belongs to one thread at a time (like a ZeroMQ socket).
    Use one producer per sending thread. The broker runs in its own actor
    thread and is driven only through its zactor pipe.
*/
#ifndef ZROCKET_H_INCLUDED
#define ZROCKET_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZROCKET_VERSION_MAJOR 0
#define ZROCKET_VERSION_MINOR 1
#define ZROCKET_VERSION_PATCH 0

//  Wire protocol version carried in every header ("v").
#define ZR_PROTOCOL_VERSION 1

//  Defaults (RocketMQ's ports).
#define ZR_DEFAULT_BROKER_PORT 10911
#define ZR_DEFAULT_ENDPOINT "tcp://127.0.0.1:10911"
#define ZR_DEFAULT_QUEUES 8
#define ZR_DEFAULT_MAX_MSG_SIZE (4 * 1024 * 1024)

//  Lengths of identifiers (without the terminating NUL).
#define ZR_MSG_ID_LEN 32            //  producer id: 32 hex digits
#define ZR_NAME_MAX 127             //  topic and group names
#define ZR_STORE_ID_MAX 300         //  GROUP:TOPIC:QUEUE:OFFSET

//  Reply statuses: the names travel on the wire as strings
//  (docs/protocol.md, "Statuses"). Keep this list and zr_status_str in
//  step with the spec.
typedef enum {
    ZR_OK = 0,                  //  request done
    ZR_SEND_OK,                 //  stored with the guarantee asked for
    ZR_FLUSH_DISK_TIMEOUT,      //  stored, disk flush not confirmed
    ZR_FLUSH_SLAVE_TIMEOUT,     //  stored, slave did not confirm in time
    ZR_SLAVE_NOT_AVAILABLE,     //  stored, not replicated
    ZR_NO_NEW_MSG,              //  pull: nothing at or after offset
    ZR_BUSY,                    //  not done, retry later
    ZR_MALFORMED,               //  frame is not a valid request
    ZR_BAD_VERSION,             //  unknown protocol version
    ZR_UNKNOWN_COMMAND,
    ZR_BAD_ARGUMENT,            //  a field has a bad value
    ZR_TOPIC_NOT_FOUND,
    ZR_QUEUE_NOT_FOUND,
    ZR_OFFSET_OUT_OF_RANGE,
    ZR_MSG_TOO_LARGE,
    ZR_DISK_FULL,
    ZR_STORE_ERROR,
    ZR_NOT_FOUND,               //  lookup found nothing
    ZR_SHUTTING_DOWN,           //  broker is stopping, not done
    ZR_LEASE_HELD,              //  another group member holds the lease
    ZR_LEASE_INVALID,           //  stale or missing lease token
    ZR_NOT_MASTER,              //  a slave: write to the master
    ZR_TIMEOUT,                 //  client side: no reply in time
    ZR_UNKNOWN_STATUS,          //  client side: reply had a status we
                                //  do not know
    ZR_STATUS_COUNT
} zr_status_t;

//  Returns the wire name of a status ("SEND_OK"); never NULL.
const char *
    zr_status_str (zr_status_t status);

//  Returns the status named by a wire string, or ZR_UNKNOWN_STATUS.
zr_status_t
    zr_status_parse (const char *name);

//  True when the message was stored (SEND_OK or a stored-but-unconfirmed
//  status).
bool
    zr_status_stored (zr_status_t status);

//  --------------------------------------------------------------------
//  Broker actor
//
//  zactor_t *broker = zactor_new (zr_broker_actor, cfg);
//
//  cfg is a zconfig_t * (CZMQ ZPL tree, borrowed; NULL for defaults)
//  whose "broker/..." entries are the settings that `zrocket broker
//  --help` lists, for example broker/data, broker/bind (comma-separated
//  endpoints), broker/flush. The actor copies what it needs before
//  zactor_new returns.
//
//  Pipe commands (strings):
//    START              -> "OK" | "ERROR" reason
//                          opens the store and binds every endpoint
//    ENDPOINTS          -> "OK" endpoint... (bound, ports resolved)
//    DATA               -> "OK" path of the data directory
//    GROUP              -> "OK" broker group name
//    STATS              -> "OK" msgpack-stats-as-JSON text
//    $TERM              -> actor answers pending requests and exits
void
    zr_broker_actor (zsock_t *pipe, void *args);

//  Convenience: starts the actor and sends START. Returns the actor, or
//  NULL with *err set (caller frees) when the broker could not start.
zactor_t *
    zr_broker_new (zconfig_t *cfg, char **err);

//  Returns the first endpoint the broker listens on, with its port
//  resolved (caller frees), or NULL.
char *
    zr_broker_endpoint (zactor_t *broker);

//  --------------------------------------------------------------------
//  Nameserver actor
//
//  zactor_t *ns = zactor_new (zr_nameserver_actor, cfg);
//
//  cfg: zconfig_t * (borrowed, NULL for defaults) with the
//  "nameserver/..." settings that `zrocket nameserver --help` lists:
//  bind, cluster, expiry-ms, beacon, beacon-port, beacon-interval-ms,
//  interface.
//
//  Pipe commands:
//    START      -> "OK" | "ERROR" reason   (binds, starts the beacon)
//    ENDPOINTS  -> "OK" endpoint...
//    $TERM
void
    zr_nameserver_actor (zsock_t *pipe, void *args);

//  Starts the actor and sends START; NULL with *err (caller frees) when
//  it could not start.
zactor_t *
    zr_nameserver_new (zconfig_t *cfg, char **err);

//  First endpoint the nameserver listens on, port resolved, wildcard
//  host as 127.0.0.1 (caller frees), or NULL.
char *
    zr_nameserver_endpoint (zactor_t *nameserver);

//  --------------------------------------------------------------------
//  Routes: which broker groups serve a topic (from a nameserver).

typedef struct _zr_route_t zr_route_t;

//  Asks the nameservers (comma-separated endpoints; any one that answers
//  will do) for a topic's route. Returns NULL with *err (caller frees)
//  naming what is missing: no nameserver answered, or the topic is
//  unknown to every nameserver that answered.
zr_route_t *
    zr_route_lookup (const char *nameservers, const char *topic,
                     int timeout_ms, char **err);

void        zr_route_destroy (zr_route_t **self_p);
//  Broker groups serving the topic.
size_t      zr_route_groups (zr_route_t *self);
//  Group i's name, its master's endpoint (NULL when it has none) and the
//  topic's queue count there. Borrowed.
const char *zr_route_group (zr_route_t *self, size_t index);
const char *zr_route_master (zr_route_t *self, size_t index);
int         zr_route_queues (zr_route_t *self, size_t index);
//  Group i's epoch (0 when the nameserver gave none), its live slaves'
//  count and slave j's endpoint (NULL past the end; borrowed).
int64_t     zr_route_epoch (zr_route_t *self, size_t index);
size_t      zr_route_slaves (zr_route_t *self, size_t index);
const char *zr_route_slave (zr_route_t *self, size_t index, size_t slave);

//  Finds nameservers the way every zrocket command does when given no
//  address: 127.0.0.1:9876 if a nameserver answers there within 200 ms,
//  else the first beacon of cluster (NULL: DefaultCluster) heard within
//  timeout_ms. Listening sends nothing. Returns a comma-separated
//  endpoint list (caller frees) or NULL.
char *
    zr_discover_nameservers (const char *cluster, int timeout_ms);

//  --------------------------------------------------------------------
//  Messages

typedef struct _zr_message_t zr_message_t;

//  Creates a message for topic with a copy of body. Returns NULL when
//  topic is not a valid name.
zr_message_t *
    zr_message_new (const char *topic, const void *body, size_t size);

//  Destroys a message; NULL-safe.
void
    zr_message_destroy (zr_message_t **self_p);

//  Setters (copy their arguments). Tags: one tag string; keys: space-
//  separated keys; props: user properties (string map).
void zr_message_set_tags (zr_message_t *self, const char *tags);
void zr_message_set_keys (zr_message_t *self, const char *keys);
void zr_message_set_prop (zr_message_t *self, const char *name,
                          const char *value);
//  Sends to this queue (>= 0); -1 (default) lets the broker choose.
void zr_message_set_queue (zr_message_t *self, int queue);
//  Messages with the same sharding key go to the same queue.
void zr_message_set_sharding_key (zr_message_t *self, const char *key);
//  Sets the producer-assigned id (32 hex digits); the producer assigns
//  one when none is set, and keeps it across its retries.
void zr_message_set_id (zr_message_t *self, const char *id);
//  Delayed and scheduled messages (docs/protocol.md section 12): the
//  message becomes visible ms after the broker receives it, at ms_epoch
//  (ms since the Unix epoch; a past time: at once), or after RocketMQ
//  delay level 1..18 (1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m
//  30m 1h 2h). At most one applies: each call replaces the others; a
//  negative value clears it. The broker refuses delays beyond its
//  max-delay setting (BAD_ARGUMENT). A delayed send's result has
//  deliver_at set, no queue or offset (they are chosen at delivery).
void zr_message_set_delay (zr_message_t *self, int64_t ms);
void zr_message_set_deliver_at (zr_message_t *self, int64_t ms_epoch);
void zr_message_set_delay_level (zr_message_t *self, int level);

//  Getters: borrowed strings, valid while the message lives. A field
//  that is not set reads "" (strings), -1 (queue, offset) or 0 (times).
const char *zr_message_topic (zr_message_t *self);
const void *zr_message_body (zr_message_t *self);
size_t      zr_message_size (zr_message_t *self);
const char *zr_message_tags (zr_message_t *self);
const char *zr_message_keys (zr_message_t *self);
//  Returns the property value, or NULL when not set.
const char *zr_message_prop (zr_message_t *self, const char *name);
//  Returns the property table (borrowed; NULL when none).
zhashx_t   *zr_message_props (zr_message_t *self);
const char *zr_message_id (zr_message_t *self);
const char *zr_message_store_id (zr_message_t *self);
int         zr_message_queue (zr_message_t *self);
int64_t     zr_message_offset (zr_message_t *self);
int64_t     zr_message_born (zr_message_t *self);    //  ms since epoch
int64_t     zr_message_stored (zr_message_t *self);  //  ms since epoch

//  --------------------------------------------------------------------
//  Producer

typedef struct _zr_producer_t zr_producer_t;

typedef struct {
    zr_status_t status;
    char msg_id [ZR_MSG_ID_LEN + 1];
    char store_id [ZR_STORE_ID_MAX + 1];
    int queue;                  //  -1 when not stored
    int64_t offset;             //  -1 when not stored
    bool flush_sync;            //  true: fsync'd before the reply
    char reason [256];          //  human reason for a non-OK status
    void *user;                 //  async: the arg given to send_async
    int64_t deliver_at;         //  delayed send: due time, ms since epoch
} zr_send_result_t;

//  Called for each async send when its reply (or timeout) arrives, in the
//  thread that calls zr_producer_send_async / _poll / _flush.
typedef void (zr_send_fn) (const zr_send_result_t *result, void *arg);

//  Creates a producer connected to a broker endpoint; NULL on a bad
//  endpoint. Connecting is asynchronous; the first send waits for it.
zr_producer_t *
    zr_producer_new (const char *endpoint);

//  Creates a producer that routes through nameservers (comma-separated
//  endpoints; NULL: zr_discover_nameservers). It spreads sends over every
//  queue of every broker group serving the topic, refreshes routes on an
//  interval and when a broker says the topic is not there, and retries a
//  send whose broker does not answer on another broker (keeping its id),
//  avoiding that broker until the routes show it alive again. Sends with
//  a sharding key or an explicit queue never move to another broker.
//  Returns NULL when no nameserver can be found.
zr_producer_t *
    zr_producer_new_routed (const char *nameservers);

//  Route refresh interval for a routed producer, ms (default 30000).
void zr_producer_set_route_refresh (zr_producer_t *self, int interval_ms);

void
    zr_producer_destroy (zr_producer_t **self_p);

//  Reply timeout for sync sends and async replies, ms (default 3000).
void zr_producer_set_timeout (zr_producer_t *self, int timeout_ms);
//  Retries of a sync send after a timeout or BUSY, same id (default 2).
void zr_producer_set_retries (zr_producer_t *self, int retries);
//  Async window: most sends in flight at once (default 256).
void zr_producer_set_max_inflight (zr_producer_t *self, int max);

//  Sends and waits for the reply. Fills result (may be NULL). Returns 0
//  when the message was stored (result->status says how durably), -1
//  otherwise. Does not take msg.
int
    zr_producer_send (zr_producer_t *self, zr_message_t *msg,
                      zr_send_result_t *result);

//  Sends without waiting; callback fires later with the result. Blocks
//  while the window is full, calling callbacks of replies as they come.
//  Returns 0 when the request went out, -1 on a local error. Does not
//  take msg.
int
    zr_producer_send_async (zr_producer_t *self, zr_message_t *msg,
                            zr_send_fn *callback, void *arg);

//  Sends count messages (all to the same topic, none delayed) as one
//  SEND_BATCH: stored atomically in one queue (the first message's queue
//  or sharding key, else the broker's choice) with consecutive offsets,
//  or not at all. Fills results[i] (may be NULL) for each message.
//  Returns 0 when the batch was stored, -1 otherwise (every result then
//  has the status and reason). Does not take the messages.
int
    zr_producer_send_batch (zr_producer_t *self, zr_message_t **msgs,
                            size_t count, zr_send_result_t *results);

//  Sends with no reply at all (no confirmation, fastest). Returns 0 when
//  the request was queued.
int
    zr_producer_send_oneway (zr_producer_t *self, zr_message_t *msg);

//  Processes async replies that have arrived, waiting up to timeout_ms
//  for the first. Returns the number of sends still in flight.
int
    zr_producer_poll (zr_producer_t *self, int timeout_ms);

//  Waits until every async send has its callback (reply or timeout).
//  Returns 0 when all replied, -1 when some timed out.
int
    zr_producer_flush (zr_producer_t *self, int timeout_ms);

//  --------------------------------------------------------------------
//  Pull consumer

typedef struct _zr_consumer_t zr_consumer_t;
typedef struct _zr_pull_t zr_pull_t;

zr_consumer_t *
    zr_consumer_new (const char *endpoint);

void
    zr_consumer_destroy (zr_consumer_t **self_p);

//  Request timeout beyond a pull's own wait, ms (default 3000).
void zr_consumer_set_timeout (zr_consumer_t *self, int timeout_ms);

//  Pulls up to max_count messages from (topic, queue) at offset; waits
//  up to wait_ms on the broker for a new message when there is none.
//  Returns a result (caller destroys) or NULL on a local error; check
//  zr_pull_status.
zr_pull_t *
    zr_consumer_pull (zr_consumer_t *self, const char *topic, int queue,
                      int64_t offset, int max_count, int wait_ms);

//  Filters the following pulls on the broker (docs/protocol.md section
//  14): type "tag" (`*`, `TagA || TagB`) or "sql" (SQL92 over
//  properties and TAGS); expr NULL removes the filter. Only matching
//  messages come back; zr_pull_next moves past the others. A malformed
//  expression makes the next pull fail with ZR_BAD_ARGUMENT and a reason
//  "position N: ...". Returns 0, or -1 on an unknown type.
int
    zr_consumer_set_filter (zr_consumer_t *self, const char *type,
                            const char *expr);

//  Looks messages up by producer-assigned id or by key, through the
//  broker's indexes (FIND, docs/protocol.md section 15): give exactly
//  one of id and key. Returns up to max_count (<= 0: the broker's
//  default, 32) messages in (queue, offset) order; an id or key that
//  matches nothing is ZR_OK with no messages. NULL on bad arguments;
//  check zr_pull_status (zr_pull_next/_min/_max are -1).
zr_pull_t *
    zr_consumer_find (zr_consumer_t *self, const char *topic,
                      const char *id, const char *key, int max_count);

//  Number of queues of a topic, or -1 (unknown topic, timeout).
int
    zr_consumer_queues (zr_consumer_t *self, const char *topic);

//  Min and max offsets of a queue (max = next offset to be written).
//  Returns 0, or -1.
int
    zr_consumer_queue_offsets (zr_consumer_t *self, const char *topic,
                               int queue, int64_t *min, int64_t *max);

//  Commits a consumer group's offset for a queue (the next offset to
//  consume). Returns 0, or -1.
int
    zr_consumer_commit (zr_consumer_t *self, const char *group,
                        const char *topic, int queue, int64_t offset);

//  Reads a group's committed offset (-1 when none). Returns 0, or -1.
int
    zr_consumer_committed (zr_consumer_t *self, const char *group,
                           const char *topic, int queue, int64_t *offset);

void        zr_pull_destroy (zr_pull_t **self_p);
zr_status_t zr_pull_status (zr_pull_t *self);
const char *zr_pull_reason (zr_pull_t *self);
//  Offset to pull next (after the last message returned).
int64_t     zr_pull_next (zr_pull_t *self);
int64_t     zr_pull_min (zr_pull_t *self);
int64_t     zr_pull_max (zr_pull_t *self);
size_t      zr_pull_count (zr_pull_t *self);
//  Message i (borrowed, lives as long as the result).
zr_message_t *zr_pull_message (zr_pull_t *self, size_t index);

//  --------------------------------------------------------------------
//  Push consumer (consumer groups, docs/protocol.md section 11)
//
//  An actor that joins a consumer group on every broker serving its
//  topics, takes the queues allocated to it (holding a lease on each),
//  long-polls them, buffers up to a limit per queue, and calls the
//  handler from a pool of threads. The handler returns ZR_CONSUME_SUCCESS
//  or ZR_CONSUME_RETRY (the message comes back later through the group's
//  retry topic, then goes to its dead-letter queue after max-reconsume
//  attempts). Offsets are committed periodically, when a queue is
//  released, and on stop.
//
//  zr_push_consumer_t is driven from one thread (like a socket); the
//  handler runs in the consumer's own threads, at most `threads` at once,
//  and must be thread-safe if threads > 1. In orderly mode each queue's
//  messages reach the handler one at a time, in offset order.

typedef struct _zr_push_consumer_t zr_push_consumer_t;

typedef enum {
    ZR_CONSUME_SUCCESS = 0,
    ZR_CONSUME_RETRY = 1
} zr_consume_result_t;

//  The handler: msg is borrowed for the duration of the call.
typedef zr_consume_result_t (zr_consume_fn) (zr_message_t *msg, void *arg);

//  Creates a push consumer in group. fabric: nameserver endpoints
//  ("tcp://h1:9876,tcp://h2:9876"), or "broker:ENDPOINT" for one broker
//  without a nameserver, or NULL to discover nameservers. NULL on a bad
//  group name.
zr_push_consumer_t *
    zr_push_consumer_new (const char *fabric, const char *group);

void
    zr_push_consumer_destroy (zr_push_consumer_t **self_p);

//  Settings, before start. Return 0, or -1 on a bad value.
//  mode: "clustering" (default) or "broadcast"
int zr_push_consumer_set_mode (zr_push_consumer_t *self, const char *mode);
//  strategy: "averagely" (default), "circle" or "hash"
int zr_push_consumer_set_strategy (zr_push_consumer_t *self,
                                   const char *strategy);
//  handler threads (default 4); in orderly mode, queues are spread over
//  them, one queue per thread at a time
int zr_push_consumer_set_threads (zr_push_consumer_t *self, int threads);
//  orderly: one message at a time per queue, in offset order
int zr_push_consumer_set_orderly (zr_push_consumer_t *self, bool orderly);
//  where a queue with no committed offset starts: "first", "last"
//  (default) or ms since the epoch as decimal text
int zr_push_consumer_set_from (zr_push_consumer_t *self, const char *from);
//  most messages buffered per queue before pulling stops (default 256)
int zr_push_consumer_set_buffer (zr_push_consumer_t *self, int messages);
//  broadcast mode: directory of the local offsets file (required there)
int zr_push_consumer_set_offset_dir (zr_push_consumer_t *self,
                                     const char *dir);
//  orderly mode: in-place retries before the dead-letter queue (default 3)
int zr_push_consumer_set_max_retries (zr_push_consumer_t *self, int n);
//  client id (default: host-pid-random)
int zr_push_consumer_set_client_id (zr_push_consumer_t *self,
                                    const char *id);

//  Adds a topic. Returns 0, or -1 on a bad name.
int
    zr_push_consumer_subscribe (zr_push_consumer_t *self, const char *topic);

//  Adds a topic whose messages the broker filters (docs/protocol.md
//  section 14): type "tag" or "sql", expr the expression (sent with
//  every PULL; a malformed one is logged by the consumer as each PULL of
//  the topic fails with BAD_ARGUMENT). Returns 0, or -1 on a bad name or
//  type.
int
    zr_push_consumer_subscribe_filtered (zr_push_consumer_t *self,
                                         const char *topic,
                                         const char *type, const char *expr);

//  Starts consuming. Returns 0, or -1 with *err (caller frees): no
//  fabric found, no topic subscribed, offset dir missing in broadcast.
int
    zr_push_consumer_start (zr_push_consumer_t *self, zr_consume_fn *handler,
                            void *arg, char **err);

//  Stops: finishes the handlers running, commits offsets, releases
//  leases, leaves the group. Also done by destroy.
void
    zr_push_consumer_stop (zr_push_consumer_t *self);

//  Queues this member owns now and knows where to start in (the lease is
//  held and a "last" start position resolved), as "topic:queue@group"
//  strings joined by ',' (caller frees); for status output and tests.
char *
    zr_push_consumer_owned (zr_push_consumer_t *self);

//  --------------------------------------------------------------------
//  Transactional producer (docs/protocol.md section 13), RocketMQ's
//  TransactionListener model: zr_tx_producer_send stores a half message
//  (invisible to consumers), runs the local transaction (execute), then
//  commits or rolls the message back. A transaction left UNKNOWN is
//  checked back later by the broker; the check callback answers.
//
//  Threading: zr_tx_producer_send runs execute in the calling thread.
//  The producer also runs a background thread (an actor with its own
//  connection) that heartbeats the producer group and calls check when
//  the broker asks; check must be thread-safe with respect to the
//  application's other threads. The messages passed to execute and
//  check carry the property "TXN_ID" (the transaction id); msg is
//  borrowed for the call.

typedef struct _zr_tx_producer_t zr_tx_producer_t;

typedef enum {
    ZR_TXN_COMMIT = 0,
    ZR_TXN_ROLLBACK = 1,
    ZR_TXN_UNKNOWN = 2
} zr_txn_state_t;

typedef zr_txn_state_t (zr_txn_execute_fn) (zr_message_t *msg, void *arg);
typedef zr_txn_state_t (zr_txn_check_fn) (zr_message_t *msg, void *arg);

//  Creates a transactional producer of producer_group talking to one
//  broker endpoint, and starts its heartbeat thread. NULL on a bad
//  endpoint or group name.
zr_tx_producer_t *
    zr_tx_producer_new (const char *endpoint, const char *producer_group);

//  Stops the heartbeat thread and closes the connections. Unresolved
//  transactions stay on the broker (another member of the group answers
//  their checks).
void
    zr_tx_producer_destroy (zr_tx_producer_t **self_p);

//  Sets the listener; call before the first send. check may be NULL
//  (checks are then answered UNKNOWN, i.e. not at all).
void
    zr_tx_producer_set_listener (zr_tx_producer_t *self,
                                 zr_txn_execute_fn *execute,
                                 zr_txn_check_fn *check, void *arg);

//  Reply timeout, ms (default 3000).
void
    zr_tx_producer_set_timeout (zr_tx_producer_t *self, int timeout_ms);

//  Sends msg as a half message, runs execute (when set; else UNKNOWN),
//  then commits or rolls back (UNKNOWN leaves it to the check-back).
//  Fills result (may be NULL: on commit the store id, queue and offset
//  of the visible message; otherwise queue -1, offset -1) and state (may
//  be NULL: what execute returned). Returns 0 when the half message was
//  stored, -1 when not (result says why; execute was not run). Does not
//  take msg; sets its "TXN_ID" property.
int
    zr_tx_producer_send (zr_tx_producer_t *self, zr_message_t *msg,
                         zr_send_result_t *result, zr_txn_state_t *state);

#ifdef __cplusplus
}
#endif

#endif
