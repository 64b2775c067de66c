#!/usr/bin/env bash
#  tests/e2e/test_failover_kill.sh - automatic failover under load, sync
#  replication (issue #5, Failover; docs/protocol.md section 16).
#
#  One nameserver (lease-ms 500, master-dead-ms 1000), a master (min-insync
#  2: every SEND_OK is on the slave too) and a slave (min-insync 1: alone
#  after its promotion), both --failover true --ha-heartbeat-ms 100
#  --master-dead-ms 1000, on loopback. A routed producer (zrocket send
#  --nameserver, one message in flight, bodies 1, 2, 3...) sends without
#  pause. Once 300 sends are acknowledged the master is killed with
#  SIGKILL. Checked, all by waiting for output lines with timeouts:
#  - the slave is promoted: `zrocket cluster` names it master, epoch 2;
#  - the producer goes on: SEND_OK lines follow the kill;
#  - zero acknowledged lost: every body whose send printed SEND_OK (before
#    or after the kill) is read back from the new master;
#  - prints the client-visible write outage: from the kill to the first
#    SEND_OK of a send made after it.
#
#  ctest sets ZR_BIN.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail
TEST=test_failover_kill
MODE=sync
MASTER_MIN_INSYNC=2     #  every SEND_OK is on the slave too
. "$(dirname "$0")/failover_lib.sh"

#  Rounds: kill the master, see the slave promoted and the producer go on;
#  restart the killed broker without --master (a persisted master role of
#  the old epoch is fenced first; it asks the nameserver for the new
#  master's HA endpoint, asks it EPOCH_END, and discards a tail it wrote
#  that the new master does not have), wait until it is in the in-sync
#  set, and kill the new master.
ROUNDS=${ZR_FAILOVER_ROUNDS:-3}
NAME=(master slave)
DATA=("$T/m" "$T/s")
EPS=("$MASTER" "$SLAVE")
BPID=("$MASTER_PID" "$SLAVE_PID")
M=0
OUTAGES=
for round in $(seq 1 "$ROUNDS"); do
    S=$((1 - M))
    epoch=$((round + 1))
    read_until 300 30
    #  The in-sync set in the stats lags by up to 200 ms: ask again.
    for try in $(seq 1 50); do
        [ "$(stat "${EPS[$M]}" repl.actor.insync)" = 2 ] && break
        [ "$try" -lt 50 ] \
            || fail "round $round: the slave is not in the in-sync set"
    done
    kill -KILL "${BPID[$M]}"
    KILLED_AT=$EPOCHREALTIME
    echo "test_failover_kill: round $round: master killed after $OKS" \
         "acknowledged sends"
    #  300 acknowledged sends stamped after the kill: only the new master
    #  can have given them.
    read_until 300 60 "$KILLED_AT"
    CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS" \
         2> "$T/cluster.err") || fail "zrocket cluster"
    grep -q "^g${TAB}master${TAB}${EPS[$S]}${TAB}${epoch}${TAB}" <<< "$CL" \
        || fail "round $round: ${EPS[$S]} is not master of epoch $epoch" \
                "in: $CL"
    [ "$(stat "${EPS[$S]}" repl.role)" = master ] \
        || fail "round $round: new master's repl.role"
    [ "$(stat "${EPS[$S]}" repl.epoch)" = "$epoch" ] \
        || fail "round $round: new master's repl.epoch"
    #  Outage: the kill to the first SEND_OK after it, skipping a line
    #  stamped within 5 ms of the kill (a reply sent just before).
    OUTAGE=$(awk -F "$TAB" -v k="$KILLED_AT" '
        $1 > k + 0.005 && $3 == "SEND_OK" {
            printf "%d", ($1 - k) * 1000; exit }' "$T/results")
    [ -n "$OUTAGE" ] || fail "round $round: no SEND_OK after the kill"
    OUTAGES="$OUTAGES ${OUTAGE}ms"
    echo "test_failover_kill: round $round: ${EPS[$S]} promoted to epoch" \
         "$epoch; write outage $OUTAGE ms"
    if [ "$round" -lt "$ROUNDS" ]; then
        HA=$(stat "${EPS[$S]}" repl.ha_endpoint)
        [ -n "$HA" ] || fail "round $round: new master has no ha_endpoint"
        NAME[$M]="${NAME[$M]}-r$round"
        start "${NAME[$M]}" "$ZR_BIN" broker --data "${DATA[$M]}" \
            --role slave --min-insync 1 --broker-id "$M" "${COMMON[@]}"
        EPS[$M]=$EP
        BPID[$M]=$PID
        wait_log "$T/${NAME[$S]}.err" "set for the nameservers: [$M]" 60 \
            || fail "round $round: the restarted broker never got in sync"
        [ "$(stat "${EPS[$M]}" repl.following)" = "$HA" ] \
            || fail "round $round: the restarted broker does not follow $HA"
        echo "test_failover_kill: round $round: the old master found the" \
             "new one through the nameserver; tail discarded:" \
             "$(stat "${EPS[$M]}" repl.truncated_batches) batches"
    fi
    M=$S
done
#  Stop the producer (and its input): what it printed so far stands.
kill -TERM "$SEND_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
exec 4<&-

#  Zero acknowledged lost: result line n is body n.
awk -F "$TAB" '$3 == "SEND_OK" { print $2 }' "$T/results" | sort \
    > "$T/acked"
timeout 60 "$ZR_BIN" consume --topic t --broker "${EPS[$M]}" --from first \
    --timeout 2 2> "$T/consume.err" | sort -u > "$T/stored" \
    || fail "consume from the last master"
LOST=$(comm -23 "$T/acked" "$T/stored" | wc -l)
ACKED=$(wc -l < "$T/acked")
[ "$ACKED" -ge $((300 * (ROUNDS + 1))) ] || fail "only $ACKED acknowledged"
[ "$LOST" -eq 0 ] \
    || fail "$LOST of $ACKED acknowledged messages are not on the last master"
echo "test_failover_kill: OK: $ROUNDS kill -9 rounds; $ACKED acknowledged," \
     "0 lost; client-visible write outage per round:$OUTAGES"
