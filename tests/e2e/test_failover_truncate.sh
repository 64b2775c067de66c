#!/usr/bin/env bash
#  tests/e2e/test_failover_truncate.sh - master discovery through the
#  nameserver and EPOCH_END (issue #5; docs/protocol.md section 16,
#  "Catch-up" and "Fencing"; docs/ha.md).
#
#  One nameserver (lease-ms 500, master-dead-ms 1000). A master A (sync,
#  min-insync 1, slave-ack-timeout-ms 300, isr-max-lag-ms 20000) and a
#  slave B started WITHOUT --master: B asks the nameserver for its
#  group's master (B starts first and waits, serving reads, until A is
#  registered) and follows A's HA endpoint (checked: B joins A's in-sync
#  set). Then:
#  - B is killed (SIGKILL) while in the in-sync set (isr-max-lag-ms
#    keeps it there); A stores a few sends it cannot acknowledge
#    (FLUSH_SLAVE_TIMEOUT): a tail of TAIL batches past the replicated
#    high-water mark;
#  - A is killed (SIGKILL); B restarts (same command, no --master),
#    follows the registered (dead) A, and is elected master of epoch 2;
#  - A restarts with the same command (no --master): fenced by the
#    nameserver, it asks the nameserver for the new master, asks it
#    EPOCH_END 1, learns that epoch 1 ended at the high-water mark,
#    discards its TAIL batches (repl.truncated_batches = TAIL, by a full
#    copy) and rejoins as B's slave: in B's in-sync set, listed as a
#    slave, the same digest at B's last sequence.
#
#  ctest sets ZR_BIN.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail

TEST=test_failover_truncate
. "$(dirname "$0")/shlib.sh"

#  wait_seq EP N SECONDS : polls `zrocket stats` (bounded) until
#  repl.seq is at least N.
wait_seq () {
    local end=$((SECONDS + $3)) v=
    while [ "$SECONDS" -lt "$end" ]; do
        v=$(stat "$1" repl.seq)
        [ -n "$v" ] && [ "$v" -ge "$2" ] && return 0
        IFS= read -r -t 0.1 -u 6 _ || true
    done
    echo "last repl.seq: $v" >&2
    return 1
}

mkfifo "$T/pace"
exec 6<> "$T/pace"          #  wait_stat's bounded pause (nobody writes)

start ns "$ZR_BIN" nameserver --bind 'tcp://127.0.0.1:*' --data "$T/ns" \
    --lease-ms 500 --master-dead-ms 1000
NS=$EP
COMMON=(--bind 'tcp://127.0.0.1:*' --group g --nameserver "$NS"
        --replication sync --failover true --ha-heartbeat-ms 100
        --master-dead-ms 1000 --heartbeat-ms 200 --flush async
        --min-insync 1 --isr-max-lag-ms 20000 --slave-ack-timeout-ms 300)
A_CMD=("$ZR_BIN" broker --data "$T/a" --role master --broker-id 0
       "${COMMON[@]}")
B_CMD=("$ZR_BIN" broker --data "$T/b" --role slave --broker-id 1
       "${COMMON[@]}")
#  The slave starts first, with no --master: it waits for the nameserver
#  to name its group's master, serving reads (stats) meanwhile.
start b "${B_CMD[@]}"
B=$EP
B_PID=$PID
wait_log "$T/b.err" "the nameservers name no master of group g" 30 \
    || fail "B did not report that no master is registered"
[ "$(stat "$B" repl.role)" = slave ] || fail "B's repl.role"
[ -z "$(stat "$B" repl.following)" ] || fail "B follows something already"
start a "${A_CMD[@]}"
A=$EP
A_PID=$PID
wait_log "$T/b.err" "the nameservers name broker 0 master of group g" 30 \
    || fail "B did not learn its master from the nameserver"
wait_log "$T/a.err" "acknowledging writes" 30 \
    || fail "A: no majority of leases in 30 s"
wait_log "$T/a.err" "set for the nameservers: [1]" 30 \
    || fail "B (no --master) did not join A's in-sync set"
HA_A=$(stat "$A" repl.ha_endpoint)
[ "$(stat "$B" repl.following)" = "$HA_A" ] \
    || fail "B follows '$(stat "$B" repl.following)', not A's $HA_A"
timeout 30 "$ZR_BIN" topic create t --queues 2 --broker "$A" \
    > /dev/null 2> "$T/create.err" || fail "topic create"
seq 1 20 | timeout 30 "$ZR_BIN" send --topic t --broker "$A" --inflight 1 \
    > "$T/send1" 2> "$T/send1.err" || true
#  (On a loaded machine a lease can lapse: a few NOT_MASTER are fine.)
[ "$(grep -c "^SEND_OK" "$T/send1")" -ge 1 ] \
    || fail "first sends: $(cut -f 1 "$T/send1" | sort | uniq -c)"
SENT1=$(stat "$A" repl.seq)
wait_seq "$B" "$SENT1" 10 || fail "B did not reach seq $SENT1"

#  B dies, still in the in-sync set: A stores what it cannot confirm.
kill -KILL "$B_PID"
seq 101 105 | timeout 30 "$ZR_BIN" send --topic t --broker "$A" \
    --inflight 1 --timeout-ms 5000 > "$T/send2" 2> "$T/send2.err" || true
grep -q "^SEND_OK" "$T/send2" \
    && fail "a tail send was acknowledged: $(cat "$T/send2")"
kill -KILL "$A_PID"
start b2 "${B_CMD[@]}"
B=$EP
B2_PID=$PID
wait_log "$T/b2.err" "promoted to master of epoch 2" 30 \
    || fail "B was not promoted"
#  The numbers from the logs (exact even if a stray client of another
#  test, reconnecting to a reused port, wrote to A): B's epoch 2 begins
#  after HWM, B's last batch; A's last batch is A_SEQ.
P=$(grep -o 'promoted to master of epoch 2 at seq [0-9]*' "$T/b2.err" \
    | grep -o '[0-9]*$')
HWM=$((P - 1))
[ "$HWM" -ge "$SENT1" ] || fail "B was promoted at $HWM, below $SENT1"

#  A comes back with the same command: no --master.
start a2 "${A_CMD[@]}"
A=$EP
A2_PID=$PID
wait_log "$T/a2.err" "started, data in" 10 || fail "A's start line"
A_SEQ=$(grep -o 'started, data in .*, seq [0-9]*' "$T/a2.err" \
        | grep -o '[0-9]*$') || fail "A's start line"
TAIL=$((A_SEQ - HWM))
[ "$TAIL" -ge 1 ] || fail "A wrote no tail (seq $A_SEQ, HWM $HWM)"
echo "test_failover_truncate: A wrote a tail of $TAIL batches past the" \
     "high-water mark $HWM"
wait_log "$T/a2.err" "the nameservers name broker 1 master of group g" 30 \
    || fail "A did not learn the new master from the nameserver"
wait_log "$T/a2.err" "discarding them by a full copy" 30 \
    || fail "A did not discard its tail after EPOCH_END"
wait_log "$T/b2.err" "set for the nameservers: [0]" 60 \
    || fail "A never got into B's in-sync set"
GOT=$(stat "$A" repl.truncated_batches)
[ "$GOT" = "$TAIL" ] \
    || fail "A's repl.truncated_batches is $GOT, the tail was $TAIL"
[ "$(stat "$A" repl.role)" = slave ] || fail "A's repl.role"
[ "$(stat "$A" repl.following)" = "$(stat "$B" repl.ha_endpoint)" ] \
    || fail "A does not follow B's HA endpoint"
[ "$(stat "$B" repl.actor.epoch_ends)" -ge 1 ] \
    || fail "B answered no EPOCH_END"
#  Same history: B's digest at its last sequence, A's at that sequence.
D1=$(timeout 10 "$ZR_BIN" digest --broker "$B" 2> /dev/null) \
    || fail "digest of B"
SEQ=${D1%%$TAB*}
D0=
END=$((SECONDS + 10))
while [ "$SECONDS" -lt "$END" ]; do
    D0=$(timeout 10 "$ZR_BIN" digest "$SEQ" --broker "$A" 2> /dev/null) \
        || D0=
    [ "$D0" = "$D1" ] && break
    IFS= read -r -t 0.1 -u 6 _ || true
done
[ "$D0" = "$D1" ] || fail "digests differ at $SEQ: B $D1, A $D0"
CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS" 2> /dev/null) \
    || fail "zrocket cluster"
grep -q "^g${TAB}slave${TAB}${A}${TAB}2${TAB}" <<< "$CL" \
    || fail "A is not listed as a slave of epoch 2 in: $CL"
#  The tail is gone: A serves exactly B's messages, none of 101..105.
timeout 30 "$ZR_BIN" consume --topic t --broker "$A" --from first \
    --timeout 2 2> "$T/consume.err" | sort -n > "$T/stored" \
    || fail "consume from A"
timeout 30 "$ZR_BIN" consume --topic t --broker "$B" --from first \
    --timeout 2 2> "$T/consume.err" | sort -n > "$T/stored_b" \
    || fail "consume from B"
[ -s "$T/stored" ] && cmp -s "$T/stored" "$T/stored_b" \
    || fail "A holds: $(tr '\n' ' ' < "$T/stored"); B: $(tr '\n' ' ' \
            < "$T/stored_b")"
grep -q '^10[1-5]$' "$T/stored" && fail "A still holds a tail message"
#  Both stop cleanly (a sanitizer build reports leaks and errors here).
for pid in "$A2_PID" "$B2_PID"; do
    kill -TERM "$pid"
done
for pid in "$A2_PID" "$B2_PID"; do
    for try in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        IFS= read -r -t 0.1 -u 6 _ || true
    done
    kill -0 "$pid" 2>/dev/null && fail "broker $pid did not stop in 10 s"
done
grep -l "Sanitizer\|runtime error" "$T"/a2.err "$T"/b2.err \
    && fail "sanitizer report"
echo "test_failover_truncate: OK: B found A through the nameserver; A," \
     "restarted without --master, found B, discarded its tail of $TAIL" \
     "batches (EPOCH_END: epoch 1 ended at $HWM) and rejoined; digest" \
     "equal at seq $SEQ"
