#  tests/e2e/failover_lib.sh - the set-up shared by test_failover_kill.sh
#  and test_failover_async.sh (sourced, not a test): one nameserver
#  (lease-ms 500, master-dead-ms 1000), a master (broker 0, min-insync
#  $MASTER_MIN_INSYNC) and a slave (broker 1, min-insync 1), both
#  --replication $MODE --failover true --ha-heartbeat-ms 100
#  --master-dead-ms 1000, on loopback; topic t (4 queues); a routed
#  producer (zrocket send --nameserver, one message in flight, bodies 1,
#  2, 3...) whose result lines are stamped in $T/results, and
#  read_until N SECONDS [AFTER] to wait for N more SEND_OKs.
#  The caller sets TEST (its name), MODE (sync|async) and
#  MASTER_MIN_INSYNC, and ZR_BIN is set by ctest. Functions: fail, start,
#  stat, wait_log, read_until. Variables: T, TAB, NS, COMMON, MASTER,
#  MASTER_PID, SLAVE, SLAVE_PID, HA (the master's HA endpoint), SEND_PID,
#  OKS; fd 4 reads the results.
set -euo pipefail

. "$(dirname "$0")/shlib.sh"

start ns "$ZR_BIN" nameserver --bind 'tcp://127.0.0.1:*' --data "$T/ns" \
    --lease-ms 500 --master-dead-ms 1000
NS=$EP
COMMON=(--bind 'tcp://127.0.0.1:*' --group g --nameserver "$NS"
        --replication "$MODE" --failover true --ha-heartbeat-ms 100
        --master-dead-ms 1000 --heartbeat-ms 200 --flush async)
start master "$ZR_BIN" broker --data "$T/m" --role master \
    --min-insync "$MASTER_MIN_INSYNC" \
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
#  The nameservers vote only for a member of the recorded in-sync set;
#  in sync mode TOPIC_CREATE is answered OK once the in-sync set has it.
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
