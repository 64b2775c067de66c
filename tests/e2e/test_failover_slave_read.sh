#!/usr/bin/env bash
#  tests/e2e/test_failover_slave_read.sh - while a broker group has no
#  master, a consumer group member goes on reading the queues it held
#  from a slave (issue #5; docs/ha.md, docs/protocol.md section 11
#  "Following a broker group's new master").
#
#  One nameserver (lease-ms 500) and a master (min-insync 2) and a slave,
#  both --failover true, on loopback as in test_failover_consume.sh, but
#  with --master-dead-ms 8000 everywhere: after the master's death no
#  promotion can happen for at least 8 s. A topic with 2 queues gets
#  2000 bodies of 3000 bytes (synchronous replication: SEND_OK means on
#  both brokers) while one member (`zrocket consume --group G
#  --nameserver`) consumes them slowly: its output goes through a reader
#  that takes one line per 5 ms, so the member's handler blocks on its
#  output and a backlog stays on the broker. The master is killed with
#  SIGKILL. Checked:
#  - the member logs "reading from slave SLAVE while group g has no
#    master", and the slave's stats show messages served (msgs_out > 0)
#    while it is still a slave (before any promotion);
#  - the member then moves to the promoted slave (its log), having
#    read messages from the slave (its log's count > 0);
#  - every acknowledged body is consumed at least once by the same
#    process, also 100 bodies sent after the promotion;
#  - prints the time from the kill to the first slave read and to the
#    move, the messages read from the slave, and the duplicates.
#
#  ctest sets ZR_BIN.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail

TEST=test_failover_slave_read
. "$(dirname "$0")/shlib.sh"
TOPIC=fsr-$$-$RANDOM
GROUP=fsrg-$$-$RANDOM
DEAD_MS=8000
N=2000

pick_port
start ns "$ZR_BIN" nameserver --bind "tcp://127.0.0.1:$PORT" \
    --data "$T/ns" --lease-ms 500 --master-dead-ms "$DEAD_MS"
NS=$EP
COMMON=(--group g --nameserver "$NS"
        --replication sync --failover true --ha-heartbeat-ms 100
        --master-dead-ms "$DEAD_MS" --heartbeat-ms 200 --flush async)
pick_port
start master "$ZR_BIN" broker --data "$T/m" --role master --min-insync 2 \
    --bind "tcp://127.0.0.1:$PORT" --broker-id 0 "${COMMON[@]}"
MASTER_PID=$PID
MASTER=$EP
HA=$(stat "$MASTER" repl.ha_endpoint)
[ -n "$HA" ] || fail "master: no repl.ha_endpoint in its stats"
pick_port
start slave "$ZR_BIN" broker --data "$T/s" --role slave --master "$HA" \
    --bind "tcp://127.0.0.1:$PORT" --min-insync 1 --broker-id 1 \
    "${COMMON[@]}"
SLAVE=$EP
wait_log "$T/master.err" "acknowledging writes" 30 \
    || fail "master: no majority of leases in 30 s"
wait_log "$T/master.err" "set for the nameservers: [1]" 30 \
    || fail "the slave did not join the in-sync set in 30 s"
timeout 30 "$ZR_BIN" topic create "$TOPIC" --queues 2 --broker "$MASTER" \
    > /dev/null 2> "$T/create.err" || fail "topic create"

#  The member, slowed down by its reader: perl takes a line every 5 ms
#  and stamps it (wall clock s, the body's number).
: > "$T/consumed"
"$ZR_BIN" consume --topic "$TOPIC" --group "$GROUP" --nameserver "$NS" \
    --from first --timeout 120 2> "$T/consume.err" \
    > >(perl -MTime::HiRes=time,sleep -ne \
        'BEGIN { $| = 1 } sleep 0.005; my ($n) = split / /;
         printf "%.6f\t%s\n", time, $n' > "$T/consumed") &
CONS_PID=$!
PIDS+=("$CONS_PID")

#  wait_consumed BODY SECONDS : waits until the member printed BODY.
wait_consumed () {
    local line found=1 end=$((SECONDS + $2))
    exec 6< <(tail -n +1 -f "$T/consumed")
    local tail_pid=$!
    while [ "$SECONDS" -lt "$end" ] \
       && IFS= read -r -t "$2" -u 6 line; do
        if [ "${line#*$TAB}" = "$1" ]; then
            found=0
            break
        fi
    done
    kill "$tail_pid" 2>/dev/null || true
    exec 6<&-
    return $found
}

#  send FIRST LAST FILE : sends bodies FIRST..LAST ("N xxx...", 3000
#  bytes), one result line each, in input order, into FILE.
PAD=$(printf 'x%.0s' $(seq 1 3000))
send () {
    seq "$1" "$2" | sed "s/\$/ $PAD/" \
        | timeout 120 "$ZR_BIN" send --topic "$TOPIC" --nameserver "$NS" \
            --inflight 16 --timeout-ms 6000 > "$3" 2>> "$T/send.err" \
        || fail "send $1..$2 failed: $(tail -n 3 "$T/send.err")"
    local ok
    ok=$(grep -c "^SEND_OK$TAB" "$3" || true)
    [ "$ok" -eq $(($2 - $1 + 1)) ] || fail "send $1..$2: only $ok SEND_OK"
}
wait_consumed 1 30 < /dev/null &
WAIT1=$!
send 1 "$N" "$T/results1"
wait "$WAIT1" || fail "the member did not consume body 1 in 30 s"
CONSUMED_BEFORE=$(wc -l < "$T/consumed")
#  A backlog of at least 300 (the reader takes 5 ms a body; how much is
#  consumed while the sends run depends on the machine's speed).
[ "$CONSUMED_BEFORE" -le $((N - 300)) ] \
    || fail "the member consumed $CONSUMED_BEFORE of $N before the kill:" \
            "no backlog (is the reader slow?)"
OUT_BEFORE=$(stat "$SLAVE" msgs_out)
kill -KILL "$MASTER_PID"
KILLED_AT=$EPOCHREALTIME
{ wait "$MASTER_PID"; } 2> /dev/null || true
echo "test_failover_slave_read: master killed; $CONSUMED_BEFORE of $N" \
     "bodies consumed before"

wait_log "$T/consume.err" "reading from slave $SLAVE while group g has no master" 20 \
    || fail "the member did not start reading from slave $SLAVE in 20 s"
READ_AT=$EPOCHREALTIME
#  The slave serves the member's PULLs while still a slave (bounded poll
#  of its stats: no event to wait for).
SERVED=0
END=$((SECONDS + 20))
while [ "$SECONDS" -lt "$END" ]; do
    ROLE=$(stat "$SLAVE" repl.role)
    OUT=$(stat "$SLAVE" msgs_out)
    [ "$ROLE" = slave ] || break
    if [ "${OUT:-0}" -gt "${OUT_BEFORE:-0}" ]; then
        SERVED=$((OUT - OUT_BEFORE))
        break
    fi
    wait_consumed "no-such-body" 1 || true     #  a bounded 1 s wait
done
[ "$SERVED" -gt 0 ] \
    || fail "the slave served no message while a slave (role now $ROLE)"
wait_log "$T/consume.err" "master moved from $MASTER to $SLAVE" 60 \
    || fail "the member did not move to $SLAVE in 60 s"
MOVED_AT=$EPOCHREALTIME
wait_log "$T/consume.err" "stopped reading from slave $SLAVE" 10 \
    || fail "the member did not say it stopped reading from the slave"
SLAVE_MSGS=$(grep -o "stopped reading from slave [^ ]* ([^)]*): [0-9]* messages" \
             "$T/consume.err" | awk '{ n += $(NF - 1) } END { print n + 0 }')
[ "$SLAVE_MSGS" -gt 0 ] || fail "the member read no message from the slave"
#  Bodies consumed between the kill and the move.
IN_GAP=$(awk -F "$TAB" -v k="$KILLED_AT" -v m="$MOVED_AT" \
         '$1 > k && $1 < m { n++ } END { print n + 0 }' "$T/consumed")

#  100 more through the new master.
send $((N + 1)) $((N + 100)) "$T/results2"
cat "$T/results1" "$T/results2" \
    | awk -F "$TAB" '$1 == "SEND_OK" { print NR }' | sort -u > "$T/acked"
ACKED=$(wc -l < "$T/acked")
wait_consumed $((N + 100)) 90 \
    || fail "the member did not consume body $((N + 100)) in 90 s"
MISSING=1
END=$((SECONDS + 60))
while [ "$SECONDS" -lt "$END" ]; do
    cut -f 2 "$T/consumed" | sort -u > "$T/consumed.distinct"
    MISSING=$(comm -23 "$T/acked" "$T/consumed.distinct" | wc -l)
    [ "$MISSING" -eq 0 ] && break
    wait_consumed "no-such-body" 1 || true     #  a bounded 1 s wait
done
[ "$MISSING" -eq 0 ] \
    || fail "$MISSING of $ACKED acknowledged bodies never consumed:" \
            "$(comm -23 "$T/acked" "$T/consumed.distinct" | head -n 5 \
               | tr '\n' ' ')"
kill -0 "$CONS_PID" 2>/dev/null || fail "the member exited"
TOTAL=$(wc -l < "$T/consumed")
DISTINCT=$(wc -l < "$T/consumed.distinct")
kill -TERM "$CONS_PID" 2>/dev/null || true
wait "$CONS_PID" 2>/dev/null || true
! grep -q "Sanitizer\|runtime error" "$T/consume.err" \
    || fail "sanitizer report from the member"
ms () { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
echo "test_failover_slave_read: OK: $ACKED acknowledged, all consumed by" \
     "the same member; kill to first slave read $(ms "$KILLED_AT" "$READ_AT") ms," \
     "to the move to the promoted slave $(ms "$KILLED_AT" "$MOVED_AT") ms" \
     "(master-dead-ms $DEAD_MS); $SLAVE_MSGS messages read from the slave," \
     "the slave served $SERVED while still a slave; $IN_GAP bodies" \
     "consumed between kill and move; $((TOTAL - DISTINCT)) duplicates"
