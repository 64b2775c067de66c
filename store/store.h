/*  store/store.h - the broker's durable state in RocksDB.

    The only module that includes rocksdb/c.h. One database per broker
    data directory, with column families:

      default   metadata: format version, broker group name, epoch, last
                sequence, topics (name -> queue count), marks ("m/" +
                name -> empty)
      msg       messages, key = topic length (1 byte) | topic | queue
                (4 bytes BE) | offset (8 bytes BE), so one queue is one
                ordered key range; value = the broker's record (opaque)
      offsets   consumer offsets, key = group | 0 | topic | 0 | queue (4
                bytes BE), value = offset (8 bytes BE)
      log       one entry per committed batch, key = sequence (8 bytes
                BE), value = msgpack [epoch, seq, ops] describing the
                batch (appends by key range, offset commits, topic
                changes): the replication position and catch-up source
      timer     scheduled work, key = due time (8 bytes BE, ms since the
                Unix epoch) | sequence (8 bytes BE, assigned by the
                store), so the earliest timer is the first key; value
                opaque (the broker's retry records)
      index     lookup indexes (broker/retention.c): topic prefix as in
                msg | type (0 id, 1 key) | string | 0 | queue (4 bytes
                BE) | offset (8 bytes BE), empty values
      half      transactional half messages and their check counts, key
                and value chosen by broker/txn.c

    Data directories made before the timer column family existed open
    fine: missing column families are created.

    Writes are group-committed: the caller fills the store's one open
    batch (zr_store_batch_*) and commits it with a single WriteBatch and
    one WAL write (fsync'd when sync is true). Each commit gets the next
    broker-wide sequence number and the current epoch, written in the same
    atomic batch, so after a crash the sequence, the log and the data
    agree.

    Not thread-safe: one thread (the broker actor) uses a store.
*/
#ifndef ZR_STORE_H_INCLUDED
#define ZR_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Highest data directory format this code reads and writes.
#define ZR_STORE_FORMAT 1

//  Size of a timer key: due (8 bytes BE) | sequence (8 bytes BE).
#define ZR_STORE_TIMER_KEY 16

typedef struct _zr_store_t zr_store_t;

typedef struct {
    //  Broker group name to record on first open; NULL generates one
    //  ("broker-" + 8 hex digits). An existing directory keeps its name
    //  unless this is set and differs, which is refused.
    const char *group;
    //  RocksDB write buffer size in bytes (0: a sensible default).
    size_t write_buffer_size;
} zr_store_opts_t;

//  Opens (creating if needed) the store in directory path. On failure
//  returns NULL and sets *err (caller frees) to one line that names the
//  path, what went wrong and what to do: locked by another broker, not
//  writable, damaged, or a newer format.
zr_store_t *
    zr_store_open (const char *path, const zr_store_opts_t *opts,
                   char **err);

//  Closes the store (flushes nothing extra: every commit is already in
//  the WAL). NULL-safe.
void
    zr_store_destroy (zr_store_t **self_p);

//  Broker group name (borrowed).
const char *zr_store_group (zr_store_t *self);
//  Current epoch (1 until replication changes it).
uint64_t zr_store_epoch (zr_store_t *self);
//  Sequence of the last committed batch (0 for a new store).
uint64_t zr_store_seq (zr_store_t *self);
//  Data directory (borrowed).
const char *zr_store_path (zr_store_t *self);

//  Topics

//  Calls fn for each topic recorded in the store, in name order.
typedef void (zr_store_topic_fn) (const char *topic, int queues,
                                  void *arg);
void
    zr_store_topic_foreach (zr_store_t *self, zr_store_topic_fn *fn,
                            void *arg);

//  Reads the min offset (first stored) and max offset (one past the last
//  stored) of a queue from the data; both 0 for an empty queue. Returns 0
//  or -1 on a read error.
int
    zr_store_queue_bounds (zr_store_t *self, const char *topic, int queue,
                           int64_t *min, int64_t *max);

//  Batch (group commit). The store has one open batch; these add to it.

//  Stores a record at (topic, queue, offset). Copies record.
void
    zr_store_batch_append (zr_store_t *self, const char *topic, int queue,
                           int64_t offset, const void *record, size_t size);

//  Records a consumer group's offset for a queue.
void
    zr_store_batch_offset (zr_store_t *self, const char *group,
                           const char *topic, int queue, int64_t offset);

//  Creates or updates a topic with its queue count.
void
    zr_store_batch_topic_put (zr_store_t *self, const char *topic,
                              int queues);

//  Deletes a topic, its messages and every group's offsets for it.
void
    zr_store_batch_topic_delete (zr_store_t *self, const char *topic);

//  Stores a timer due at `due` (ms since the Unix epoch, >= 0) with a
//  copy of value. The store picks the key's sequence part (unique, and
//  in put order within a due time); key_out (ZR_STORE_TIMER_KEY bytes,
//  may be NULL) receives the key. Returns 0, or -1 for a negative due.
int
    zr_store_batch_timer_put (zr_store_t *self, int64_t due,
                              const void *value, size_t size,
                              unsigned char *key_out);

//  Deletes the timer with this key (as zr_store_timer_read gave it).
//  Returns 0, or -1 when size is not ZR_STORE_TIMER_KEY.
int
    zr_store_batch_timer_delete (zr_store_t *self, const void *key,
                                 size_t size);

//  Records a mark: a name (1 to 1024 bytes) whose presence is all that
//  counts (e.g. "this dead letter was resent"). Returns 0, or -1 for a
//  bad name.
int
    zr_store_batch_mark_put (zr_store_t *self, const char *name);

//  Number of operations in the open batch.
size_t
    zr_store_batch_ops (zr_store_t *self);

//  Bytes of records in the open batch.
size_t
    zr_store_batch_bytes (zr_store_t *self);

//  Writes the open batch as one atomic WriteBatch with the next sequence
//  number and one log entry; fsyncs the WAL first when sync is true.
//  Returns 0 (the batch is durable to the asked degree and the sequence
//  advanced) or -1 with *err set (caller frees): nothing of the batch is
//  stored. The batch is empty afterwards either way. An empty batch
//  commits nothing and returns 0.
int
    zr_store_commit (zr_store_t *self, bool sync, char **err);

//  Drops the open batch without writing it.
void
    zr_store_abort (zr_store_t *self);

//  Reads

//  Calls fn for each record of (topic, queue) from offset on, in offset
//  order, until max_count records or max_bytes of records (at least one
//  record is returned even when it alone is larger) or the end of the
//  queue. The record pointer is valid only during the call. Returns the
//  number of records visited, or -1 on a read error.
typedef void (zr_store_record_fn) (int64_t offset, const void *record,
                                   size_t size, void *arg);
int
    zr_store_read (zr_store_t *self, const char *topic, int queue,
                   int64_t offset, int max_count, size_t max_bytes,
                   zr_store_record_fn *fn, void *arg);

//  Reads one record with one point lookup. Returns 0 with *record set
//  (caller frees with free()), 1 when there is no such record, -1 on a
//  read error.
int
    zr_store_get (zr_store_t *self, const char *topic, int queue,
                  int64_t offset, void **record, size_t *size);

//  Reads a group's committed offset: 0 with *offset set, 1 when none,
//  -1 on a read error.
int
    zr_store_offset_get (zr_store_t *self, const char *group,
                         const char *topic, int queue, int64_t *offset);

//  Calls fn for each timer due at or before `until` (ms since the
//  epoch), in due order (then put order), until max timers. key and
//  value are valid only during the call. Returns the number of timers
//  visited, or -1 on a read error.
typedef void (zr_store_timer_fn) (const void *key, size_t key_size,
                                  int64_t due, const void *value,
                                  size_t size, void *arg);
int
    zr_store_timer_read (zr_store_t *self, int64_t until, int max,
                         zr_store_timer_fn *fn, void *arg);

//  Due time of the earliest stored timer (ms since the epoch), or -1
//  when there is none (or on a read error, which is logged).
int64_t
    zr_store_timer_next (zr_store_t *self);

//  Returns 1 when the mark was committed, 0 when not, -1 on a read
//  error.
int
    zr_store_mark_exists (zr_store_t *self, const char *name);

//  Half (transactional) entries, broker/txn.c: a key space of their own
//  (the "half" column family), key = a C string of 1..255 bytes chosen
//  by the broker, value opaque. Put and delete go into the open batch
//  and return 0, or -1 for a bad key.
int
    zr_store_batch_half_put (zr_store_t *self, const char *key,
                             const void *value, size_t size);
int
    zr_store_batch_half_delete (zr_store_t *self, const char *key);

//  Reads one half entry: 0 with *value (caller frees with free()), 1
//  when there is none, -1 on a read error.
int
    zr_store_half_get (zr_store_t *self, const char *key, void **value,
                       size_t *size);

//  Calls fn for each half entry in key order. key and value are valid
//  only during the call. Returns the number visited, or -1 on a read
//  error.
typedef void (zr_store_half_fn) (const char *key, const void *value,
                                 size_t size, void *arg);
int
    zr_store_half_foreach (zr_store_t *self, zr_store_half_fn *fn,
                           void *arg);

//  Calls fn for each log entry with sequence > after, in order, until
//  max entries. The entry is msgpack [epoch, seq, [op...]] where op is
//  ["A", topic, queue, first_offset, count] | ["O", group, topic, queue,
//  offset] | ["T", topic, queues] | ["D", topic] | ["X", key] (timer put;
//  key is bin, 16 bytes; the value is read from the timer column family,
//  and a timer already gone there has its "x" in a later entry) |
//  ["x", key] (timer delete) | ["M", name] (mark put) | ["H", key]
//  (half entry put; the value is read from the half column family, and
//  one already gone there has its "h" in a later entry) | ["h", key]
//  (half entry delete) | ["R", topic, queue, from, to] (retention range
//  delete) | ["P", topic, ms, bytes] (topic retention). Returns the
//  number of entries visited, or -1.
typedef void (zr_store_log_fn) (uint64_t seq, const void *entry,
                                size_t size, void *arg);
int
    zr_store_log_read (zr_store_t *self, uint64_t after, int max,
                       zr_store_log_fn *fn, void *arg);

//  Retention and lookup (broker/retention.c, docs/protocol.md section 15)

//  Longest key of the index column family.
#define ZR_STORE_INDEX_KEY_MAX 2048

//  Records a topic's retention (ms, bytes; -1: the broker's default) in
//  meta key "r/<topic>". Topics without one (made before retention
//  existed) use the defaults. Logged as ["P", topic, ms, bytes].
void
    zr_store_batch_topic_retention (zr_store_t *self, const char *topic,
                                    int64_t ms, int64_t bytes);

//  Reads a topic's retention: 0 with *ms and *bytes set, 1 when none
//  is stored (both -1), -1 on a read error.
int
    zr_store_topic_retention (zr_store_t *self, const char *topic,
                              int64_t *ms, int64_t *bytes);

//  Deletes the messages [from, to) of a queue with one range delete.
//  Logged as ["R", topic, queue, from, to].
void
    zr_store_batch_delete_range (zr_store_t *self, const char *topic,
                                 int queue, int64_t from, int64_t to);

//  Puts a key (1 to ZR_STORE_INDEX_KEY_MAX bytes, empty value) in the
//  index column family; keys that start with the message key's topic
//  prefix (length byte, name) go with zr_store_batch_topic_delete. Not
//  logged: a replica rebuilds its index from the records it applies.
void
    zr_store_batch_index_put (zr_store_t *self, const void *key,
                              size_t size);

//  Calls fn for each index key that starts with prefix, in key order,
//  until max keys or fn returns non-zero. Returns the number visited or
//  -1 on a read error.
typedef int (zr_store_index_fn) (const void *key, size_t size, void *arg);
int
    zr_store_index_scan (zr_store_t *self, const void *prefix,
                         size_t size, int max, zr_store_index_fn *fn,
                         void *arg);

//  Approximate bytes of a topic's messages in flushed files (the
//  memtable is not counted), or -1.
int64_t
    zr_store_topic_disk (zr_store_t *self, const char *topic);

//  Disk

//  Free bytes on the file system of the data directory, or -1.
int64_t zr_store_disk_free (zr_store_t *self);
//  Approximate bytes the store uses on disk (SST files + WAL), or -1.
int64_t zr_store_disk_used (zr_store_t *self);

//  Replication (broker/repl.c, docs/protocol.md section 16)
//
//  Every commit also records, in the "repl" column family under its
//  sequence (8 bytes BE), msgpack [epoch, seq, hash, payload]: payload
//  is the commit's RocksDB WriteBatch as it was before the store added
//  its own sequence, hash and repl keys (so every column family travels
//  without special cases), hash is h(seq) = SHA-1 (h(seq - 1) ||
//  payload), 20 bytes, h(0) = 20 zero bytes. With zr_store_set_repl_log
//  (self, false) payload is nil (the hash chain is still kept). Meta
//  key "hash" holds h(last seq), "role" the persisted role.
//
//  Functions marked "any thread" only read RocksDB through the open
//  handle and may run in another thread (the repl actor) while the
//  owning thread writes; the store must outlive that thread.

#define ZR_STORE_HASH_LEN 20

//  Called after each successful zr_store_commit with the batch's epoch,
//  sequence, hash and payload (valid only during the call).
typedef void (zr_store_commit_fn) (uint64_t epoch, uint64_t seq,
                                   const unsigned char *hash,
                                   const void *payload, size_t size,
                                   void *arg);
void
    zr_store_set_commit_fn (zr_store_t *self, zr_store_commit_fn *fn,
                            void *arg);

//  Keeps (true, the default) or drops commit payloads in the repl
//  column family.
void
    zr_store_set_repl_log (zr_store_t *self, bool keep);

//  Hash of the last committed batch (ZR_STORE_HASH_LEN bytes, borrowed).
const unsigned char *
    zr_store_hash (zr_store_t *self);

//  Persisted role ("master", "slave"), or NULL when never set.
const char *
    zr_store_role (zr_store_t *self);

//  Persists epoch and role (fsync'd). Returns 0 or -1 with *err.
int
    zr_store_set_role (zr_store_t *self, uint64_t epoch, const char *role,
                       char **err);

//  Applies a batch replicated from the master: checks seq == last + 1
//  and hash == SHA-1 (last hash || payload), then writes payload, the
//  meta keys and the repl entry in one atomic write (fsync'd when sync).
//  The open batch must be empty. Returns 0, 1 for a duplicate (seq <=
//  last, nothing done), or -1 with *err (gap, hash mismatch, bad
//  payload, write error; nothing stored).
int
    zr_store_apply (zr_store_t *self, uint64_t epoch, uint64_t seq,
                    const unsigned char *hash, const void *payload,
                    size_t size, bool sync, char **err);

//  Any thread. Calls fn for each repl entry with seq > after, in order,
//  until max_count entries or max_bytes of payload (at least one).
//  payload is NULL when not kept. Returns the number visited, -1 on a
//  read error.
typedef void (zr_store_repl_fn) (uint64_t epoch, uint64_t seq,
                                 const unsigned char *hash,
                                 const void *payload, size_t size,
                                 void *arg);
int
    zr_store_repl_read (zr_store_t *self, uint64_t after, int max_count,
                        size_t max_bytes, zr_store_repl_fn *fn, void *arg);

//  Any thread. Reads h(seq) into hash: 0, 1 when that entry is not
//  retained, -1 on a read error.
int
    zr_store_repl_hash (zr_store_t *self, uint64_t seq,
                        unsigned char *hash);

//  Any thread. First retained repl sequence (0: none).
uint64_t
    zr_store_repl_first (zr_store_t *self);

//  Any thread. Last retained repl sequence (0: none).
uint64_t
    zr_store_repl_last (zr_store_t *self);

//  Any thread. Deletes repl entries with seq < keep_from. Returns 0/-1.
int
    zr_store_repl_trim (zr_store_t *self, uint64_t keep_from);

//  Any thread. Column families as "name=id,..." in id order (caller
//  frees): master and slave must agree for payloads to apply.
char *
    zr_store_cf_map (zr_store_t *self);

//  Any thread. Makes a RocksDB checkpoint (a consistent copy, hard links
//  where possible) in dir, which must not exist. Returns 0 or -1 with
//  *err.
int
    zr_store_checkpoint (zr_store_t *self, const char *dir, char **err);

//  Owning thread. Replaces the store's contents with the checkpoint in
//  dir (a full copy from the master), keeping our group and role; then
//  seq, epoch and hash are the checkpoint's. The open batch must be
//  empty. Returns 0 or -1 with *err.
int
    zr_store_ingest (zr_store_t *self, const char *dir, char **err);

//  Epoch history (marks "zr.epoch/EPOCH/FIRST_SEQ", replicated with the
//  data; see zr_repl_promote_store).

//  Any thread. Sets *end to the last sequence of epoch in this store's
//  history: the first sequence of the lowest recorded epoch above it,
//  minus 1. Returns 0, 1 when no later epoch is recorded (epoch is the
//  current one here; *end unchanged), -1 on a read error.
int
    zr_store_epoch_end (zr_store_t *self, uint64_t epoch, uint64_t *end);

//  Any thread. Epoch of batch seq per the history: the highest recorded
//  epoch whose first sequence is <= seq, else 1 (the first epoch has no
//  mark).
uint64_t
    zr_store_epoch_of (zr_store_t *self, uint64_t seq);

#endif
