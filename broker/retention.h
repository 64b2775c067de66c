/*  broker/retention.h - per-topic retention and lookup indexes of the
    broker (docs/protocol.md section 15: TOPIC_CREATE retention fields,
    FIND).

    The broker actor owns one zr_retention_t. It keeps each topic's
    retention (from the store's "r/<topic>" record, or the broker's
    defaults), the record bytes of each queue (counted once by a scan the
    first time size retention needs them, then kept up to date by the
    appends and deletes), and counts of deleted messages.

    Retention: zr_retention_queue decides how far a queue's min offset
    moves: every message older than retention_ms (by its "stored" time)
    and, while the queue holds more than retention_bytes / queue count
    record bytes, the oldest messages. A queue always keeps its newest
    message, so its offsets survive a restart (they are read from the
    data). The deletion is one range delete in the open store batch.

    Lookup: every appended record adds index keys (zr_retention_on_append,
    in the same batch as the record): one for its message id, one for
    each space-separated word of its keys. Retention leaves index keys
    behind; zr_retention_find skips keys whose message is gone. Topic
    deletion removes the topic's index keys with its messages.
*/
#ifndef ZR_RETENTION_H_INCLUDED
#define ZR_RETENTION_H_INCLUDED

#include <zrocket.h>
#include "store/store.h"

//  Longest message id or key FIND accepts and the index holds.
#define ZR_RETENTION_STR_MAX 1024
//  Records a retention turn reads, over every queue.
#define ZR_RETENTION_BUDGET 20000
//  Index keys one FIND visits (stale ones included).
#define ZR_RETENTION_SCAN_MAX 100000

//  Index types
#define ZR_RETENTION_BY_ID 0
#define ZR_RETENTION_BY_KEY 1

typedef struct _zr_retention_t zr_retention_t;

//  default_ms, default_bytes: the broker's defaults (0: unlimited).
zr_retention_t *
    zr_retention_new (zr_store_t *store, int64_t default_ms,
                      int64_t default_bytes);

void
    zr_retention_destroy (zr_retention_t **self_p);

//  A topic's effective retention (defaults applied; 0: unlimited).
void
    zr_retention_get (zr_retention_t *self, const char *topic, int64_t *ms,
                      int64_t *bytes);

//  Sets a topic's retention (-1 keeps the current value of that one, or
//  the default for a new topic) and adds its record to the open store
//  batch. Returns true when something changed (the caller commits).
bool
    zr_retention_set (zr_retention_t *self, const char *topic, int64_t ms,
                      int64_t bytes);

//  Forgets a deleted topic's state.
void
    zr_retention_forget (zr_retention_t *self, const char *topic);

//  Indexes an appended record (the broker's record: 4-byte meta size,
//  meta map, body) in the open store batch and counts its bytes.
void
    zr_retention_on_append (zr_retention_t *self, const char *topic,
                            int queue, int64_t offset, const void *record,
                            size_t size);

//  Applies retention to one queue holding [min, max) at time now (ms
//  since the epoch): adds the range delete to the open store batch and
//  returns the new min offset (min when nothing goes). Reads at most
//  *budget records and lowers it by those read.
int64_t
    zr_retention_queue (zr_retention_t *self, const char *topic,
                        int queues, int queue, int64_t min, int64_t max,
                        int64_t now, int *budget);

//  Undoes the byte counts of the last zr_retention_queue calls when
//  their batch failed to commit (counted again by a scan).
void
    zr_retention_abort (zr_retention_t *self);

//  Calls fn for each stored message of topic whose id (type BY_ID) or
//  one of whose keys (BY_KEY) is str, in (queue, offset) order, until
//  max messages. Returns the number found or -1 on a read error.
typedef void (zr_retention_found_fn) (int queue, int64_t offset,
                                      const void *record, size_t size,
                                      void *arg);
int
    zr_retention_find (zr_retention_t *self, const char *topic, int type,
                       const char *str, size_t len, int max,
                       zr_retention_found_fn *fn, void *arg);

//  Messages retention deleted from topic since the broker started.
uint64_t
    zr_retention_deleted (zr_retention_t *self, const char *topic);

#endif
