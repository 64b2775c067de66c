#!/usr/bin/env bash
#  tests/e2e/test_failover_async.sh - kill -9 of the master under load with
#  async replication (issue #5, Tests: async mode; docs/ha.md).
#
#  The scenario of test_failover_kill.sh, one round, with --replication
#  async: a SEND_OK means stored on the master only, so the last messages
#  acknowledged before the crash may never have reached the slave. The
#  test prints how many acknowledged messages the new master lacks (the
#  async window; it is not asserted to be 0) and asserts only recovery:
#  - the slave is promoted (`zrocket cluster`: master of epoch 2) and
#    acknowledges sends made after the kill;
#  - the old master, restarted on its data as a slave of the new one, is
#    listed as a slave and gets back in the in-sync set;
#  - both brokers have the same digest at the new master's last sequence.
#
#  ctest sets ZR_BIN.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail
TEST=test_failover_async
MODE=async
MASTER_MIN_INSYNC=1
. "$(dirname "$0")/failover_lib.sh"

read_until 300 30
kill -KILL "$MASTER_PID"
KILLED_AT=$EPOCHREALTIME
echo "test_failover_async: master killed after $OKS acknowledged sends"
read_until 300 60 "$KILLED_AT"
CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS" 2> "$T/cluster.err") \
    || fail "zrocket cluster"
grep -q "^g${TAB}master${TAB}${SLAVE}${TAB}2${TAB}" <<< "$CL" \
    || fail "$SLAVE is not master of epoch 2 in: $CL"
[ "$(stat "$SLAVE" repl.role)" = master ] || fail "new master's repl.role"
#  A result line is stamped when the stamping reader gets it, which can
#  be some ms after the producer printed it: a SEND_OK of the old master
#  may be stamped after the kill. No new master answers within 500 ms of
#  the kill (the dead-master delay is 1000 ms), so a SEND_OK stamped
#  later than that is the new master's, one stamped before may be the
#  old master's (the async window).
SETTLE=0.5
OUTAGE=$(awk -F "$TAB" -v k="$KILLED_AT" -v s="$SETTLE" '
    $1 > k + s && $3 == "SEND_OK" {
        printf "%d", ($1 - k) * 1000; exit }' "$T/results")
[ -n "$OUTAGE" ] || fail "no SEND_OK after the kill"

#  Stop the producer, then count: result line n is body n.
kill -TERM "$SEND_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
exec 4<&-
awk -F "$TAB" '$3 == "SEND_OK" { print $2 }' "$T/results" | sort \
    > "$T/acked"
awk -F "$TAB" -v k="$KILLED_AT" -v s="$SETTLE" \
    '$1 <= k + s && $3 == "SEND_OK" { print $2 }' \
    "$T/results" | sort > "$T/acked_before"
timeout 60 "$ZR_BIN" consume --topic t --broker "$SLAVE" --from first \
    --timeout 2 2> "$T/consume.err" | sort -u > "$T/stored" \
    || fail "consume from the new master"
ACKED=$(wc -l < "$T/acked")
BEFORE=$(wc -l < "$T/acked_before")
LOST=$(comm -23 "$T/acked" "$T/stored" | wc -l)
LOST_AFTER=$(comm -23 "$T/acked" "$T/stored" \
    | comm -23 - "$T/acked_before" | wc -l)
[ "$LOST_AFTER" -eq 0 ] \
    || fail "$LOST_AFTER sends acknowledged by the new master are missing"
echo "test_failover_async: acknowledged lost: $LOST of $BEFORE acknowledged" \
     "before the kill ($ACKED in all); write outage $OUTAGE ms"

#  The old master rejoins as a slave of the new one.
HA=$(stat "$SLAVE" repl.ha_endpoint)
[ -n "$HA" ] || fail "new master has no ha_endpoint"
#  No --master: fenced, it asks the nameserver for the new master.
start rejoin "$ZR_BIN" broker --data "$T/m" --role slave \
    --min-insync 1 --broker-id 0 "${COMMON[@]}"
OLD=$EP
wait_log "$T/slave.err" "set for the nameservers: [0]" 60 \
    || fail "the old master never got back in sync"
CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS" 2> "$T/cluster.err") \
    || fail "zrocket cluster"
grep -q "^g${TAB}slave${TAB}${OLD}${TAB}2${TAB}" <<< "$CL" \
    || fail "$OLD is not listed as a slave of epoch 2 in: $CL"
D1=$(timeout 10 "$ZR_BIN" digest --broker "$SLAVE" 2> /dev/null) \
    || fail "digest of the new master"
SEQ=${D1%%$TAB*}
D0=
for try in $(seq 1 100); do
    D0=$(timeout 10 "$ZR_BIN" digest "$SEQ" --broker "$OLD" 2> /dev/null) \
        || D0=
    [ "$D0" = "$D1" ] && break
done
[ "$D0" = "$D1" ] || fail "digests differ at $SEQ: $D1 vs $D0"
[ "$(stat "$OLD" repl.following)" = "$HA" ] \
    || fail "the old master does not follow the new master's $HA"
TRUNC=$(stat "$OLD" repl.truncated_batches)
echo "test_failover_async: OK: promoted, serving, old master rejoined," \
     "digest equal at seq $SEQ; acknowledged lost in the async window:" \
     "$LOST; write outage $OUTAGE ms; old master's tail discarded:" \
     "$TRUNC batches"
