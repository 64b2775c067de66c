/*  broker/failover.h - a broker's side of failover (docs/protocol.md
    section 16, "Leases", "Votes", "Fencing").

    An actor the broker starts when its setting "failover" is true and
    it has nameservers. One DEALER per nameserver. As master it sends
    HA_HEARTBEAT {cluster, group, broker_id, epoch, seq, isr} to every
    nameserver each heartbeat_ms; each OK reply grants a lease that runs
    lease_ms from when THAT heartbeat was sent (monotonic clock), so the
    broker's view is never later than a nameserver's. The broker may
    acknowledge a write only while now < the time until which a majority
    of the configured nameservers' leases run (zr_failover_majority).
    As a candidate it asks every nameserver for a VOTE and reports the
    outcome. It never blocks the broker: pipe only, sends never wait.

    zactor_new (zr_failover_actor, NULL), then:
      CONFIGURE nameservers cluster group broker_id heartbeat_ms
                                  -> "OK" | "ERROR" reason
            nameservers: comma-separated endpoints (at least one)
      STATE role epoch seq isr    -> (no reply) role "master" heartbeats,
            "slave" does not; seq: the sequence every in-sync member
            holds; isr: comma-separated broker ids ("" for none)
      CAMPAIGN epoch last_epoch last_seq  -> (no reply) asks every
            nameserver to vote this broker master of epoch; the actor
            later sends ELECTED or DEFEATED
      RESIGN epoch seq successor  -> (no reply) graceful handover: sends
            HA_RESIGN to every nameserver; later RESIGNED or
            RESIGN_FAILED
      WITHDRAW epoch seq successor -> (no reply) takes a resignation
            back; later WITHDRAWN or WITHDRAW_FAILED
      The actor sends, unasked:
      LEASE until                 the monotonic ms until which a majority
            of leases runs (sent whenever it grows)
      FENCED epoch master_id      a nameserver knows a higher epoch (or
            another master of ours): stop acknowledging writes now
      ELECTED epoch               a majority voted for us
      DEFEATED epoch reason       no majority (every nameserver answered,
            or 1 s passed)
      RESIGNED | WITHDRAWN epoch reason     a majority accepted
      RESIGN_FAILED | WITHDRAW_FAILED epoch reason  no majority
            (every nameserver answered, or 1 s passed)
      RECORDED states ids         master: the slaves a candidate may come
            from: every in-sync set told since the newest one a majority
            of nameservers confirmed recording (their OK echoes `isr`),
            united; states: how many STATE commands it accounts for.
            Sent after each STATE, each confirmation and each heartbeat
      $TERM
*/
#ifndef ZR_FAILOVER_H_INCLUDED
#define ZR_FAILOVER_H_INCLUDED

#include <czmq.h>

#define ZR_FAILOVER_NAMESERVERS_MAX 16
#define ZR_FAILOVER_ISR_MAX 64          //  slaves in one in-sync set
#define ZR_FAILOVER_HISTORY 32          //  sets kept until confirmed

//  An in-sync set told to the nameservers: slave ids, and the newest set
//  version it stands for (an entry merged from several versions holds
//  their union and the newest of them).
typedef struct {
    int64_t version;
    size_t count;
    int64_t ids [ZR_FAILOVER_ISR_MAX];
} zr_failover_isr_t;

void
    zr_failover_actor (zsock_t *pipe, void *args);

//  The broker thread's handle: owns the actor and the lease it last
//  heard of. Events are drained (never waited for) by may_ack.
typedef struct _zr_failover_t zr_failover_t;

//  Starts the actor and configures it. NULL with *err (caller frees).
zr_failover_t *
    zr_failover_new (const char *nameservers, const char *cluster,
                     const char *group, int64_t broker_id,
                     int64_t heartbeat_ms, char **err);

//  Stops the actor. NULL-safe.
void
    zr_failover_destroy (zr_failover_t **self_p);

//  Tells the actor the broker's role and state (see STATE above).
void
    zr_failover_state (zr_failover_t *self, bool master, int64_t epoch,
                       int64_t seq, const char *isr);

//  True when a write may be acknowledged now: not fenced, and leases
//  from a majority of nameservers run past now. Otherwise fills reason.
bool
    zr_failover_may_ack (zr_failover_t *self, char *reason, size_t size);

//  The higher epoch a nameserver told us of (0: not fenced).
int64_t
    zr_failover_fenced (zr_failover_t *self);

//  Asks the nameservers to vote this broker master of epoch (see
//  CAMPAIGN). The outcome comes later through zr_failover_outcome.
void
    zr_failover_campaign (zr_failover_t *self, int64_t epoch,
                          int64_t last_epoch, int64_t last_seq);

//  1 (elected, *epoch set), -1 (defeated, *epoch set) or 0 (nothing yet,
//  or no campaign). Each outcome is reported once.
int
    zr_failover_outcome (zr_failover_t *self, int64_t *epoch);

//  True while a campaign waits for its outcome.
bool
    zr_failover_campaigning (zr_failover_t *self);

//  The master_id the fencing nameserver named, or -1.
int64_t
    zr_failover_fenced_by (zr_failover_t *self);

//  Graceful handover (admin promote): asks every nameserver to accept
//  that this master resigns epoch at seq in favour of successor (or,
//  withdraw, takes that back). The outcome comes through
//  zr_failover_resign_outcome.
void
    zr_failover_resign (zr_failover_t *self, bool withdraw, int64_t epoch,
                        int64_t seq, int64_t successor);

//  1 (a majority accepted), -1 (not; *why says why, borrowed) or 0
//  (nothing yet). Each outcome is reported once.
int
    zr_failover_resign_outcome (zr_failover_t *self, const char **why);

//  Given the lease expiry of each of count configured nameservers (0 or
//  anything in the past: none), returns the time until which a majority
//  (count / 2 + 1) of them holds a lease: the (count / 2 + 1)-th largest.
//  Returns 0 when count is 0.
int64_t
    zr_failover_majority (const int64_t *until, size_t count);

//  The slaves a newly elected master may come from, as far as this
//  master knows. history holds the sets told (oldest first, count
//  entries); confirmed [i] the newest set version nameserver i of
//  ns_count confirmed recording (0: none). Every set from the newest
//  version a majority confirmed on (zr_failover_majority over confirmed)
//  may still be recorded by some member of any majority, so the answer is
//  their union (all of history when no majority confirmed any). Writes
//  ids into out (at most max, ascending, no duplicates); returns the
//  count.
size_t
    zr_failover_recorded_set (const zr_failover_isr_t *history,
                              size_t count, const int64_t *confirmed,
                              size_t ns_count, int64_t *out, size_t max);

//  Master: the slaves the nameservers may have recorded (RECORDED above,
//  comma-separated, "" for none), borrowed; NULL until the actor has
//  counted the in-sync set of the latest STATE told (or not master).
//  Drains events.
const char *
    zr_failover_recorded (zr_failover_t *self);

#endif
