/*  broker/txn.h - transactional messages in the broker (docs/protocol.md
    section 13): half messages, producer group members, check-back.

    The broker actor owns one zr_txn_t. A SEND with `txn: true` stores a
    half message in the store's half key space (invisible to consumers);
    END_TXN commits it (the broker appends it to its queue in the same
    batch that deletes the half entry) or rolls it back (deleted). Half
    messages unresolved for txn-check-ms are checked back: zr_txn_tick
    sends CHECK_TXN, a broker-initiated request, to a live member of the
    message's producer group on the connection of that member's last
    PRODUCER_HEARTBEAT; after txn-max-checks checks without an answer the
    half message is rolled back and that is logged.

    Half key space (store "half" column family):
        "m/" TXN_ID   the half message, a msgpack map:
                      {v: 1, txn_id, group, topic, queue, id, tags, keys,
                       props: map str->str, born, created (ms since the
                       epoch, broker clock), body: bin}
        "c/" TXN_ID   checks sent so far, 8 bytes BE (absent: none)
    Both are deleted when the transaction is resolved. The check count is
    in the store, so a restart does not reset it.

    Not thread-safe: the broker actor's thread only.
*/
#ifndef ZR_TXN_H_INCLUDED
#define ZR_TXN_H_INCLUDED

#include <zrocket.h>
#include "transport/codec.h"
#include "store/store.h"

#define ZR_TXN_ID_LEN 32            //  hex digits
#define ZR_TXN_MEMBERS_MAX 1024     //  live members per producer group
#define ZR_TXN_GROUPS_MAX 4096      //  producer groups per broker
#define ZR_TXN_PENDING_MAX 1000000  //  unresolved half messages
#define ZR_TXN_TICK_MAX 256         //  checks and timeouts per turn
#define ZR_TXN_RESOLVED_MAX 65536   //  resolved ids remembered

typedef struct _zr_txn_t zr_txn_t;

//  Creates the transaction state: first check after check_ms, at most
//  max_checks checks, members dropped after expiry_ms without a
//  heartbeat.
zr_txn_t *
    zr_txn_new (int64_t check_ms, int64_t max_checks, int64_t expiry_ms);

void
    zr_txn_destroy (zr_txn_t **self_p);

//  Reads the unresolved half messages from the store (at start). Returns
//  how many, or -1 on a read error.
int
    zr_txn_load (zr_txn_t *self, zr_store_t *store);

//  PRODUCER_HEARTBEAT: reads producer_group and client_id from h and
//  records the member at this routing identity. Returns ZR_OK, or an
//  error status with reason filled (MALFORMED, BAD_ARGUMENT, BUSY).
zr_status_t
    zr_txn_heartbeat (zr_txn_t *self, const zr_obj_t *h,
                      const void *identity, size_t identity_size,
                      bool delimiter, char *reason, size_t reason_size);

//  Heartbeat interval to tell producers (expiry / 3), expiry, check ms.
int64_t zr_txn_heartbeat_ms (zr_txn_t *self);
int64_t zr_txn_expiry_ms (zr_txn_t *self);
int64_t zr_txn_check_ms (zr_txn_t *self);

//  SEND with txn: reads `txn` from h. Returns 0 when it is absent or
//  false (a plain send), 1 when true, or -1 with reason filled when it is
//  not a boolean (MALFORMED).
int
    zr_txn_wanted (const zr_obj_t *h, char *reason, size_t reason_size);

//  Puts a half message into the store's open batch: producer_group, tags,
//  keys, props and born are read from h (the SEND header, already
//  checked by the broker except producer_group and props); topic, queue
//  and id are the broker's choice. Makes a new transaction id into
//  txn_id (ZR_TXN_ID_LEN + 1 bytes) and counts the half as pending.
//  Returns ZR_OK, or MALFORMED / BAD_ARGUMENT / BUSY with reason: nothing
//  was added. When the commit then fails, call zr_txn_forget.
zr_status_t
    zr_txn_half_put (zr_txn_t *self, zr_store_t *store, const zr_obj_t *h,
                     const char *topic, int queue, const char *id,
                     const void *body, size_t body_size, char *txn_id,
                     char *reason, size_t reason_size);

//  Forgets a pending half whose put was not committed.
void
    zr_txn_forget (zr_txn_t *self, const char *txn_id);

//  END_TXN request fields.
typedef struct {
    char txn_id [ZR_TXN_ID_LEN + 1];
    char group [ZR_NAME_MAX + 1];
    bool commit;
    bool from_check;
} zr_txn_end_t;

//  Reads END_TXN's fields. Returns ZR_OK, or MALFORMED / BAD_ARGUMENT
//  with reason.
zr_status_t
    zr_txn_end_parse (const zr_obj_t *h, zr_txn_end_t *end, char *reason,
                      size_t reason_size);

//  A half message read back from the store.
typedef struct {
    void *value;                //  the stored value (owned)
    zr_hdr_t *hdr;              //  its decoded map (id, tags, keys,
                                //  props, born; owned)
    char topic [ZR_NAME_MAX + 1];
    int queue;
    const void *body;           //  points into value
    size_t body_size;
} zr_txn_half_t;

//  Finds the pending half message of end->txn_id in group end->group.
//  Returns ZR_OK with half filled (free with zr_txn_half_free), or
//  NOT_FOUND ("unknown transaction", "already committed", "already
//  rolled back"), BAD_ARGUMENT (another producer group's), STORE_ERROR,
//  with reason.
zr_status_t
    zr_txn_half_read (zr_txn_t *self, zr_store_t *store,
                      const zr_txn_end_t *end, zr_txn_half_t *half,
                      char *reason, size_t reason_size);

void
    zr_txn_half_free (zr_txn_half_t *half);

//  Puts the deletes of a half message (and its check count) into the
//  open batch.
void
    zr_txn_batch_resolve (zr_txn_t *self, zr_store_t *store,
                          const char *txn_id);

//  After the resolving batch committed: the transaction is no longer
//  pending and is remembered as committed or rolled back.
void
    zr_txn_resolved (zr_txn_t *self, const char *txn_id, bool committed);

//  Milliseconds until zr_txn_tick has work (-1: none).
int64_t
    zr_txn_timeout (zr_txn_t *self);

//  Sends due checks (CHECK_TXN on router, never blocking) and rolls back
//  half messages checked max_checks times, at most ZR_TXN_TICK_MAX per
//  call. Writes check counts and rollbacks in its own commit (sync:
//  fsync): call it only when the store's open batch is empty. rid is
//  the broker's counter for broker-initiated requests.
void
    zr_txn_tick (zr_txn_t *self, zr_store_t *store, zsock_t *router,
                 bool sync, uint64_t *rid);

//  Stats: writes zr_txn_stats_count () key/value pairs into enc.
size_t
    zr_txn_stats_count (void);
void
    zr_txn_stats (zr_txn_t *self, zr_enc_t *enc);

#endif
