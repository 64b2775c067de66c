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

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-failover-kill.XXXXXX")
PIDS=()
TAB=$'\t'

fail () {
    echo "test_failover_kill: FAIL: $*" >&2
    for f in "$T"/*.err; do
        [ -s "$f" ] || continue
        echo "--- $f (last 15 lines) ---" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}

cleanup () {
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#  start NAME CMD... : runs CMD with stdout on a fifo, waits for its first
#  line (30 s), sets PID and EP (the first tcp:// endpoint in that line).
start () {
    local name=$1
    shift
    mkfifo "$T/$name.fifo"
    "$@" > "$T/$name.fifo" 2> "$T/$name.err" &
    PID=$!
    PIDS+=("$PID")
    exec 3< "$T/$name.fifo"
    local line=
    IFS= read -r -t 30 -u 3 line || fail "$name: no first line in 30 s"
    cat <&3 > "$T/$name.out" &
    PIDS+=("$!")
    exec 3<&-
    EP=$(grep -o 'tcp://[^ ,]*' <<< "$line" | head -n 1) \
        || fail "$name: no endpoint in: $line"
}

#  stat EP KEY : one value of `zrocket stats`.
stat () {
    timeout 10 "$ZR_BIN" stats --broker "$1" 2> /dev/null \
        | awk -v k="$2" '$1 == k { print $2 }'
}

#  wait_log FILE TEXT SECONDS : waits for a line holding TEXT in FILE.
wait_log () {
    local line found=1 end=$((SECONDS + $3))
    exec 5< <(tail -n +1 -f "$1")
    local tail_pid=$!
    while [ "$SECONDS" -lt "$end" ] \
       && IFS= read -r -t "$3" -u 5 line; do
        if [[ $line == *"$2"* ]]; then
            found=0
            break
        fi
    done
    kill "$tail_pid" 2>/dev/null || true
    exec 5<&-
    return $found
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

start ns "$ZR_BIN" nameserver --bind 'tcp://127.0.0.1:*' --data "$T/ns" \
    --lease-ms 500 --master-dead-ms 1000
NS=$EP
COMMON=(--bind 'tcp://127.0.0.1:*' --group g --nameserver "$NS"
        --replication sync --failover true --ha-heartbeat-ms 100
        --master-dead-ms 1000 --heartbeat-ms 200 --flush async)
start master "$ZR_BIN" broker --data "$T/m" --role master --min-insync 2 \
    --broker-id 0 "${COMMON[@]}"
MASTER_PID=$PID
MASTER=$EP
HA=$(stat "$MASTER" repl.ha_endpoint)
[ -n "$HA" ] || fail "master: no repl.ha_endpoint in its stats"
start slave "$ZR_BIN" broker --data "$T/s" --role slave --master "$HA" \
    --min-insync 1 --broker-id 1 "${COMMON[@]}"
SLAVE=$EP
SLAVE_PID=$PID
#  The nameserver grants no lease for master-dead-ms after it starts: the
#  master refuses writes (NOT_MASTER) until it holds one.
wait_log "$T/master.err" "acknowledging writes" 30 \
    || fail "master: no majority of leases in 30 s"
#  Sync: TOPIC_CREATE is answered OK once the in-sync set (min-insync 2,
#  so the slave too) has it.
wait_log "$T/master.err" "set for the nameservers: [1]" 30 \
    || fail "master: the slave did not join the in-sync set in 30 s"
timeout 30 "$ZR_BIN" topic create t --queues 4 --broker "$MASTER" \
    > /dev/null 2> "$T/create.err" || fail "topic create"

#  The producer: bodies 1, 2, 3... one in flight. perl stamps each result
#  line as it comes out (wall clock s, line number = body, the line).
: > "$T/results"
mkfifo "$T/bodies.fifo"
seq 1 100000000 > "$T/bodies.fifo" 2> /dev/null &
PIDS+=("$!")
"$ZR_BIN" send --topic t --nameserver "$NS" --inflight 1 --timeout-ms 6000 \
    < "$T/bodies.fifo" 2> "$T/send.err" \
    > >(perl -MTime::HiRes=time -ne \
        'BEGIN { $| = 1 } printf "%.6f\t%d\t%s", time, $., $_' \
        > "$T/results") &
SEND_PID=$!
PIDS+=("$SEND_PID")
exec 4< <(tail -n +1 -f "$T/results")
PIDS+=("$!")
OKS=0
#  read_until N SECONDS [AFTER] : reads result lines until N more SEND_OK
#  stamped after AFTER (default 0) have come.
read_until () {
    local want=$1 end=$((SECONDS + $2)) after=${3:-0} line got=0
    while [ "$got" -lt "$want" ]; do
        [ "$SECONDS" -lt "$end" ] || fail "only $got SEND_OK in $2 s"
        IFS= read -r -t 10 -u 4 line || fail "producer: no result in 10 s"
        if [[ $line == *"${TAB}SEND_OK$TAB"* ]]; then
            OKS=$((OKS + 1))
            [[ ${line%%$TAB*} > $after ]] && got=$((got + 1))
        fi
    done
    return 0
}

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
