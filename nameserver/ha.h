/*  nameserver/ha.h - a nameserver's part in failover (docs/protocol.md
    section 16, "Leases" and "Votes"), as a pure data module: no sockets,
    no clock. The caller passes the monotonic time (ms) into every call,
    so tests control time.

    Per broker group it keeps what masters report in HA_HEARTBEAT (the
    master's broker_id, epoch, replicated sequence and in-sync set, and
    when the last heartbeat was RECEIVED), and the vote it cast for the
    group's highest epoch. Rules:

    - For dead_ms after it is created it grants no lease and casts no
      vote: it may have voted or heard a heartbeat just before a restart.
    - A heartbeat from a master at an epoch below the highest the
      nameserver knows for the group (heard or voted) is refused: that
      master is fenced. So is one at the epoch of a vote for another
      broker. Otherwise it is recorded and granted a lease of lease_ms.
    - A master is dead dead_ms after its last heartbeat was received;
      dead_ms >= lease_ms + 500, so its last lease (counted from when it
      SENT that heartbeat) expired before anyone may replace it.
    - VOTE for (group, epoch E) by candidate C is granted only when: the
      nameserver voted in E for nobody else (the same candidate asking
      again gets the same answer), E is above every epoch it knows for
      the group, the group's master is dead or was never heard, C is in
      the in-sync set the master last reported, and C's (epoch, seq) is
      at least any the nameserver knows for the group.
    - A vote is appended to the vote file (<data>/votes) and fsync'd
      BEFORE it is granted; the file is read when the module is created,
      so a nameserver votes at most once per (group, epoch) across
      restarts. The file is created on the first vote.

    Vote file: a line "zrocket-votes 1", then one line per vote:
    "GROUP EPOCH CANDIDATE LAST_EPOCH LAST_SEQ". A last line without its
    newline (a write torn by a crash: never answered) is ignored; any
    other bad line makes zr_ha_new fail with the line number.
*/
#ifndef ZR_HA_H_INCLUDED
#define ZR_HA_H_INCLUDED

#include <zrocket.h>

#define ZR_HA_ISR_MAX 64            //  brokers in one reported ISR
#define ZR_HA_LEASE_MARGIN 500      //  dead_ms >= lease_ms + this

typedef struct _zr_ha_t zr_ha_t;

//  What a heartbeat got.
typedef enum {
    ZR_HA_GRANTED = 0,      //  lease granted
    ZR_HA_STARTING,         //  nameserver too young to grant leases
    ZR_HA_FENCED,           //  a higher epoch exists (or another master
                            //  holds this epoch): stop being master
    ZR_HA_BAD,              //  bad arguments (reason says which)
    ZR_HA_RESIGNED          //  this master resigned its epoch: no lease
} zr_ha_result_t;

//  Creates the module: reads data_dir/votes when it exists. data_dir may
//  be NULL (votes are then refused: no durable place). now is the
//  monotonic time of the start. Returns NULL with *err (caller frees)
//  when dead_ms < lease_ms + ZR_HA_LEASE_MARGIN, or the vote file cannot
//  be read or is malformed.
zr_ha_t *
    zr_ha_new (const char *data_dir, int64_t lease_ms, int64_t dead_ms,
               int64_t now, char **err);

//  Destroys; NULL-safe, sets *self_p to NULL.
void
    zr_ha_destroy (zr_ha_t **self_p);

int64_t
    zr_ha_lease_ms (zr_ha_t *self);

int64_t
    zr_ha_dead_ms (zr_ha_t *self);

//  Records a master's heartbeat received at now. isr holds isr_count
//  broker ids (the master's own id among them or not: it is added).
//  On ZR_HA_FENCED, *epoch_out is the higher epoch and *master_out the
//  broker the nameserver knows as master of it (-1: none yet). reason
//  is filled on anything but ZR_HA_GRANTED.
zr_ha_result_t
    zr_ha_heartbeat (zr_ha_t *self, const char *group, int64_t broker_id,
                     int64_t epoch, int64_t seq, const int64_t *isr,
                     size_t isr_count, int64_t now, int64_t *epoch_out,
                     int64_t *master_out, char *reason, size_t size);

//  Asks for a vote. Returns 1 granted (durably recorded), 0 refused
//  (reason says why), -1 the vote could not be written (reason says
//  why; nothing granted).
int
    zr_ha_vote (zr_ha_t *self, const char *group, int64_t epoch,
                int64_t candidate, int64_t last_epoch, int64_t last_seq,
                int64_t now, char *reason, size_t size);

//  A graceful handover (HA_RESIGN). The master broker_id of epoch
//  resigns in favour of successor, which holds seq: from now on the
//  master's heartbeats at epoch get no lease (ZR_HA_RESIGNED; they still
//  count as signs of life), and a
//  VOTE for epoch + 1 by successor with (last_epoch, last_seq) at least
//  (epoch, seq) is granted without waiting for the master to be dead
//  (every other rule holds). Accepted only from the master this
//  nameserver knows at its highest epoch, for a successor in the
//  recorded in-sync set. With withdraw, the resignation of epoch is
//  taken back, unless an epoch above it is known (a vote was cast): the
//  old master may then take writes again. Kept in memory only: a
//  restarted nameserver has forgotten it, which is as if it never came
//  (the successor then waits for the usual death; withdrawing succeeds).
//  Safety rests on the fsync'd votes and on the master not taking
//  writes between resigning and a withdrawal accepted by a majority.
//  Returns 1 accepted, 0 refused (reason says why).
int
    zr_ha_resign (zr_ha_t *self, const char *group, int64_t broker_id,
                  int64_t epoch, int64_t seq, int64_t successor,
                  bool withdraw, int64_t now, char *reason, size_t size);

//  True when the group's master is dead per this nameserver at now, or
//  was never heard. Also *epoch_out (may be NULL): the highest epoch
//  known for the group (0 when none).
bool
    zr_ha_master_dead (zr_ha_t *self, const char *group, int64_t now,
                       int64_t *epoch_out);

//  The in-sync set recorded from the group's last accepted heartbeat
//  (the master's id first, then the ids it reported), copied into out
//  (at most max ids). Returns the count; 0 when none is recorded. The
//  HA_HEARTBEAT reply echoes it so the master learns what was recorded.
size_t
    zr_ha_isr (zr_ha_t *self, const char *group, int64_t *out, size_t max);

//  The master of the group's highest epoch known (-1 when none), with
//  that epoch in *epoch_out (may be NULL).
int64_t
    zr_ha_master (zr_ha_t *self, const char *group, int64_t *epoch_out);

#endif
