/*  broker/repl.h - master/slave replication (docs/protocol.md section 16).

    A zr_repl_t lives in the broker's thread and owns one actor:

    master  a PUB (the replication stream) and a ROUTER (catch-up, full
            copy, acknowledgements) on the HA host. The broker's store
            hands every commit to zr_repl through its commit hook; the
            actor publishes it and tracks the slaves' acks, the in-sync
            set and the replicated high-water mark. Catch-up reads run
            in the actor's thread (zr_store_repl_read, "any thread").
    slave   a DEALER to the master's ROUTER and a SUB to its stream. The
            actor orders batches (drops duplicates, refetches on gaps)
            and hands them to the broker thread, where zr_repl_event
            applies them with zr_store_apply; the actor then acks.

    The broker polls zr_repl_sock and calls zr_repl_event when it is
    readable. Nothing here blocks the broker loop.
*/
#ifndef ZR_REPL_H_INCLUDED
#define ZR_REPL_H_INCLUDED

#include <czmq.h>
#include "store/store.h"
#include "transport/codec.h"

typedef struct _zr_repl_t zr_repl_t;

typedef enum {
    ZR_REPL_NONE,           //  no stream
    ZR_REPL_ASYNC,          //  answer after the master's commit
    ZR_REPL_SYNC            //  answer when the in-sync set has the batch
} zr_repl_mode_t;

typedef struct {
    const char *role;           //  "master" | "slave" (persisted wins)
    const char *mode;           //  "sync" | "async" | "none"
    const char *ha_bind;        //  ROUTER endpoint; the PUB binds the
                                //  next port (or another ephemeral one)
    const char *master;         //  slave: the master's ROUTER endpoint
                                //  (NULL or "": none known yet)
    const char *client_endpoint;    //  ours, told to slaves
    int min_insync;
    int isr_max_lag_ms;
    int slave_ack_timeout_ms;
    int64_t log_keep;           //  repl log entries kept (trim above)
    int sndhwm;                 //  stream PUB send HWM
    int rcvhwm;                 //  slave SUB receive HWM
    bool flush_sync;            //  slave: fsync applied batches
    int64_t broker_id;          //  failover: ours (-1: none), see end
} zr_repl_opts_t;

//  Starts replication on an open store. Returns NULL with *err set.
zr_repl_t *
    zr_repl_new (zr_store_t *store, const zr_repl_opts_t *opts, char **err);

//  Stops the actor (before the store closes). NULL-safe.
void
    zr_repl_destroy (zr_repl_t **self_p);

//  Socket to poll for events, or NULL.
zsock_t *
    zr_repl_sock (zr_repl_t *self);

//  What zr_repl_event reports (flags).
#define ZR_REPL_APPLIED 1       //  slave: the store got batches: reload
#define ZR_REPL_HWM     2       //  master: high-water mark or set moved

//  Handles what the actor reported (drains what is waiting). Returns
//  flags.
int
    zr_repl_event (zr_repl_t *self);

//  Slave: throws away the store's contents and takes a full copy (a
//  checkpoint of the master's store) before following again, e.g. when
//  our history diverged from the master's. Returns 0, or -1 on a master.
int
    zr_repl_full_copy (zr_repl_t *self);

//  True on a slave (refuses writes).
bool
    zr_repl_is_slave (zr_repl_t *self);

zr_repl_mode_t
    zr_repl_mode (zr_repl_t *self);

//  Master: highest sequence every member of the in-sync set has.
uint64_t
    zr_repl_hwm (zr_repl_t *self);

//  Master: members of the in-sync set, the master included.
int
    zr_repl_insync (zr_repl_t *self);

int zr_repl_min_insync (zr_repl_t *self);
int zr_repl_ack_timeout (zr_repl_t *self);

//  HA endpoint (the ROUTER slaves give as --master), borrowed, or "".
const char *
    zr_repl_endpoint (zr_repl_t *self);

//  Slave: the master's client endpoint when known, else "" (borrowed).
const char *
    zr_repl_master (zr_repl_t *self);

//  Slave: the master's HA endpoint it follows, or "" when it was made
//  without one (opts.master NULL or ""): it then waits, serving reads,
//  until the broker makes a new zr_repl_t with the master the nameservers
//  name. "" on a master. Borrowed.
const char *
    zr_repl_following (zr_repl_t *self);

//  Encodes "repl" and a map of replication state (one map entry).
void
    zr_repl_stats (zr_repl_t *self, zr_enc_t *enc);

//  --------------------------------------------------------------------
//  Failover (broker/failover.c, protocol section 16). A slave started
//  with opts.broker_id >= 0 names its catch-up DEALER "zrb:ID:RANDOM" so
//  the master can tell the nameservers its in-sync set by broker id.

//  Master: comma-separated broker ids of the in-sync slaves (from the
//  actor's last INFO; "" when none). Caller frees.
char *
    zr_repl_isr_ids (zr_repl_t *self);

//  Master: the version of the set zr_repl_isr_ids returns (it grows
//  each time the in-sync broker ids change).
uint64_t
    zr_repl_isr_version (zr_repl_t *self);

//  Master with failover: ids (comma-separated broker ids, "" for none)
//  are the slaves the nameservers may have recorded (zr_failover_recorded)
//  counting every in-sync set up to version ver (the zr_repl_isr_version
//  of the set last told to the failover actor). A slave that left the
//  in-sync set keeps holding the high-water mark (at its last acked) and
//  counts for min-insync until such a set lacks it. Without failover
//  (opts.broker_id -1) it is ignored.
void
    zr_repl_recorded (zr_repl_t *self, const char *ids, uint64_t ver);

//  Slave: ms since the master's stream or catch-up was last heard (from
//  the actor's last INFO, within 200 ms), or -1 when never heard.
int64_t
    zr_repl_silence_ms (zr_repl_t *self);

//  Promotion, step 1, before a master zr_repl_t is made on the store:
//  persists (epoch, "master") and commits a batch holding the epoch
//  history entry (epoch -> first seq, a mark "zr.epoch/E/SEQ" replicated
//  with the data). Call on a store with no repl running. 0 or -1, *err.
int
    zr_repl_promote_store (zr_store_t *store, uint64_t epoch, char **err);

//  Demotion, step 1: persists (epoch, "slave"), epoch the fencing one
//  (or ours when higher), so a new zr_repl_t made on the store follows
//  opts.master. 0 or -1 with *err.
int
    zr_repl_demote_store (zr_store_t *store, uint64_t epoch, char **err);

//  Slave: true once (then cleared) when applying failed because the
//  master's history differs from ours (hash chain mismatch): a tail we
//  wrote as master of an older epoch. The caller then asks for a full
//  copy (zr_repl_full_copy).
bool
    zr_repl_take_diverged (zr_repl_t *self);

//  --------------------------------------------------------------------
//  Graceful handover (admin promote, protocol section 16).

//  Master: what the last INFO says of the slave named broker_id: its
//  highest acked sequence, whether it is in the in-sync set, and how
//  long ago it was last heard (ms; heard may be NULL). 0, or -1 when no
//  slave of that id is known.
int
    zr_repl_slave_acked (zr_repl_t *self, int64_t broker_id,
                         uint64_t *acked, bool *in_sync, int64_t *heard);

//  Master: asks the actor for an INFO now (zr_repl_slave_acked is then
//  fresh after the next zr_repl_event).
void
    zr_repl_info_now (zr_repl_t *self);

//  How many INFO messages the broker thread received from the actor. The
//  answer to zr_repl_info_now has come once this grew by 2 (the actor
//  may have sent one periodic INFO before it read the request; more
//  only when the broker thread left the pipe unread for 2 periods).
uint64_t
    zr_repl_info_count (zr_repl_t *self);

//  Master: sends TAKEOVER epoch seq to the slave(s) named broker_id over
//  the HA ROUTER: the master resigned epoch at seq for it.
void
    zr_repl_takeover (zr_repl_t *self, int64_t broker_id, uint64_t epoch,
                      uint64_t seq);

//  Slave: the epoch of a TAKEOVER received (once, then cleared), or 0.
uint64_t
    zr_repl_take_takeover (zr_repl_t *self);

#endif
