#!/usr/bin/env bash
#  tests/e2e/test_failover_consume.sh - a consumer group member follows
#  its broker group's new master after a failover, without a restart
#  (issue #5, "producers and consumers carry on"; docs/ha.md).
#
#  One nameserver (lease-ms 500, master-dead-ms 1000), a master
#  (min-insync 2) and a slave, both --failover true --ha-heartbeat-ms 100
#  --master-dead-ms 1000, on loopback, as in test_failover_kill.sh. A
#  routed producer sends bodies 1, 2, 3... in sync mode (one in flight);
#  one member of a consumer group (`zrocket consume --group cg --nameserver`)
#  consumes. Once 300 sends are acknowledged and consumed, the master is
#  killed with SIGKILL. Checked, by waiting for output lines with
#  timeouts:
#  - 200 more sends are acknowledged (by the new master);
#  - the same consumer process (never restarted) consumes every
#    acknowledged body at least once, also those sent after the kill;
#  - its log says it moved to the new master;
#  - a reader without a group (`zrocket consume --nameserver`) goes on
#    too, from its own positions;
#  - prints the time from the kill to the first body consumed that was
#    sent after the kill (so only the new master had it), and the
#    duplicates (bodies consumed more than once).
#
#  ctest sets ZR_BIN.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail

TEST=test_failover_consume
. "$(dirname "$0")/shlib.sh"
#  Names of our own: other tests on this host use the same port range,
#  and a killed broker's port may be taken by another test's broker,
#  which must not look like ours to a client reconnecting there.
TOPIC=fc-$$-$RANDOM
GROUP=fcg-$$-$RANDOM

pick_port
start ns "$ZR_BIN" nameserver --bind "tcp://127.0.0.1:$PORT" \
    --data "$T/ns" --lease-ms 500 --master-dead-ms 1000
NS=$EP
COMMON=(--group g --nameserver "$NS"
        --replication sync --failover true --ha-heartbeat-ms 100
        --master-dead-ms 1000 --heartbeat-ms 200 --flush async)
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
timeout 30 "$ZR_BIN" topic create "$TOPIC" --queues 4 --broker "$MASTER" \
    > /dev/null 2> "$T/create.err" || fail "topic create"

#  The consumer: one member of the group, through the nameserver (it
#  flushes every body it prints). perl
#  stamps each body as it comes out (wall clock s, the body).
: > "$T/consumed"
"$ZR_BIN" consume --topic "$TOPIC" --group "$GROUP" --nameserver "$NS" \
    --from first --timeout 120 2> "$T/consume.err" \
    > >(perl -MTime::HiRes=time -ne \
        'BEGIN { $| = 1 } printf "%.6f\t%s", time, $_' \
        > "$T/consumed") &
CONS_PID=$!
PIDS+=("$CONS_PID")
#  And a reader without a group (every queue, its own positions), also
#  through the nameserver: it must go on too.
"$ZR_BIN" consume --topic "$TOPIC" --nameserver "$NS" \
    --from first --timeout 120 2> "$T/plain.err" > "$T/plain" &
PLAIN_PID=$!
PIDS+=("$PLAIN_PID")

#  The producer: bodies 1, 2, 3... one in flight (sync replication:
#  SEND_OK means on both brokers).
: > "$T/results"
mkfifo "$T/bodies.fifo"
seq 1 100000000 > "$T/bodies.fifo" 2> /dev/null &
PIDS+=("$!")
"$ZR_BIN" send --topic "$TOPIC" --nameserver "$NS" --inflight 1 --timeout-ms 6000 \
    < "$T/bodies.fifo" 2> "$T/send.err" \
    > >(perl -MTime::HiRes=time -ne \
        'BEGIN { $| = 1 } printf "%.6f\t%d\t%s", time, $., $_' \
        > "$T/results") &
SEND_PID=$!
PIDS+=("$SEND_PID")
exec 4< <(tail -n +1 -f "$T/results")
PIDS+=("$!")
#  read_until N SECONDS [AFTER] : reads result lines until N more SEND_OK
#  stamped after AFTER (default 0) have come.
read_until () {
    local want=$1 end=$((SECONDS + $2)) after=${3:-0} line got=0
    while [ "$got" -lt "$want" ]; do
        [ "$SECONDS" -lt "$end" ] || fail "only $got SEND_OK in $2 s"
        IFS= read -r -t 10 -u 4 line || fail "producer: no result in 10 s"
        if [[ $line == *"${TAB}SEND_OK$TAB"* ]]; then
            [[ ${line%%$TAB*} > $after ]] && got=$((got + 1))
        fi
    done
    return 0
}

#  wait_consumed BODY SECONDS : waits until the consumer printed BODY.
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

read_until 300 30
wait_consumed 300 30 || fail "the consumer did not consume body 300 in 30 s"
#  committed SUM : the group's committed offsets on the slave (a read
#  it serves), summed; sets NCOMMITTED to the count of queues with one.
committed () {
    local out
    out=$(timeout 10 "$ZR_BIN" group status "$GROUP" --topic "$TOPIC" --broker "$SLAVE" \
          2> /dev/null) || true
    read -r NCOMMITTED SUM < <(awk -F "$TAB" -v t="$TOPIC" '
        $1 == "g" && $2 == t && $5 + 0 > 0 { n++; s += $5 }
        END { print n + 0, s + 0 }' <<< "$out")
}
#  The group commits every second: wait (bounded poll, no event to wait
#  for) until every queue has a commit replicated to the slave, so that
#  the move resumes from committed offsets, not from the start.
END=$((SECONDS + 30))
while committed; [ "$NCOMMITTED" -lt 4 ]; do
    [ "$SECONDS" -lt "$END" ] \
        || fail "the group's offsets did not reach the slave in 30 s"
    read_until 20 30
done
for try in $(seq 1 50); do
    [ "$(stat "$MASTER" repl.actor.insync)" = 2 ] && break
    [ "$try" -lt 50 ] || fail "the slave is not in the in-sync set"
done
committed
kill -KILL "$MASTER_PID"
KILLED_AT=$EPOCHREALTIME
{ wait "$MASTER_PID"; } 2> /dev/null || true
#  Bodies numbered above this were sent after the kill: only the new
#  master has them (+1: the send in flight at the kill).
SENT_BEFORE=$(awk -F "$TAB" -v k="$KILLED_AT" '$1 <= k { n = $2 }
                                              END { print n + 1 }' \
              "$T/results")
COMMITTED_BEFORE=$SUM
echo "test_failover_consume: master killed; bodies up to $SENT_BEFORE" \
     "were sent before it; the group had committed $COMMITTED_BEFORE"
read_until 200 60 "$KILLED_AT"
kill -0 "$CONS_PID" 2>/dev/null || fail "the consumer exited"

#  Every acknowledged body consumed at least once, by the same consumer
#  process (bounded wait: 60 s).
LAST_OK=$(awk -F "$TAB" '$3 == "SEND_OK" { n = $2 } END { print n + 0 }' \
          "$T/results")
wait_consumed "$LAST_OK" 60 \
    || fail "the consumer did not consume body $LAST_OK (acknowledged" \
            "after the kill) in 60 s"
kill -TERM "$SEND_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
exec 4<&-
awk -F "$TAB" '$3 == "SEND_OK" { print $2 }' "$T/results" | sort -u \
    > "$T/acked"
MISSING=1
END=$((SECONDS + 30))
while [ "$SECONDS" -lt "$END" ]; do
    cut -f 2 "$T/consumed" | sort -u > "$T/consumed.distinct"
    MISSING=$(comm -23 "$T/acked" "$T/consumed.distinct" | wc -l)
    [ "$MISSING" -eq 0 ] && break
    wait_consumed "no-such-body" 1 || true     #  a bounded 1 s wait
done
ACKED=$(wc -l < "$T/acked")
[ "$MISSING" -eq 0 ] \
    || fail "$MISSING of $ACKED acknowledged bodies never consumed:" \
            "$(comm -23 "$T/acked" "$T/consumed.distinct" | head -n 5 \
               | tr '\n' ' ')"
kill -0 "$CONS_PID" 2>/dev/null || fail "the consumer exited"
#  The reader without a group: every acknowledged body, once each (it
#  keeps its positions across the move), same process.
END=$((SECONDS + 30))
while [ "$SECONDS" -lt "$END" ]; do
    sort -u "$T/plain" > "$T/plain.distinct"
    PMISSING=$(comm -23 "$T/acked" "$T/plain.distinct" | wc -l)
    [ "$PMISSING" -eq 0 ] && break
    wait_consumed "no-such-body" 1 || true     #  a bounded 1 s wait
done
[ "$PMISSING" -eq 0 ] \
    || fail "the reader without a group missed $PMISSING acknowledged bodies"
kill -0 "$PLAIN_PID" 2>/dev/null || fail "the reader without a group exited"
grep -q "master moved from $MASTER to $SLAVE" "$T/plain.err" \
    || fail "the reader without a group did not say it moved to $SLAVE"
PDUPS=$(( $(wc -l < "$T/plain") - $(wc -l < "$T/plain.distinct") ))
grep -q "master moved from $MASTER to $SLAVE" "$T/consume.err" \
    || fail "the consumer's log does not show the move to $SLAVE"
#  Kill to the first body consumed that was sent after the kill.
FOLLOW=$(awk -F "$TAB" -v k="$KILLED_AT" -v b="$SENT_BEFORE" '
    $1 > k && $2 + 0 > b { printf "%d", ($1 - k) * 1000; exit }' \
    "$T/consumed")
[ -n "$FOLLOW" ] || fail "no body sent after the kill was consumed"
TOTAL=$(wc -l < "$T/consumed")
DISTINCT=$(wc -l < "$T/consumed.distinct")
DUPS=$((TOTAL - DISTINCT))
#  Resumed from the committed offsets (at least those read before the
#  kill), not from the start: only bodies sent before the kill and not
#  committed may come again; +2: the send in flight at the kill may be
#  stored twice (on the old master, replicated, and again when the
#  producer resends it), so it may come three times.
BOUND=$((SENT_BEFORE - COMMITTED_BEFORE + 2))
[ "$DUPS" -le "$BOUND" ] \
    || fail "$DUPS duplicates: more than $BOUND (bodies sent before the" \
            "kill and not committed)"
kill -TERM "$CONS_PID" "$PLAIN_PID" 2>/dev/null || true
wait "$CONS_PID" 2>/dev/null || true
wait "$PLAIN_PID" 2>/dev/null || true
#  (A sanitizer build reports at exit.)
! grep -q "Sanitizer\|runtime error" "$T/consume.err" "$T/plain.err" \
    || fail "sanitizer report from a consumer"
#  What the consumer said it would deliver again, summed over queues.
AGAIN=$(grep -o '[0-9]* handled before and not committed there' \
        "$T/consume.err" | awk '{ n += $1 } END { print n + 0 }')
echo "test_failover_consume: OK: $ACKED acknowledged, all consumed by" \
     "the same consumer (not restarted); kill to first message consumed" \
     "from the new master ${FOLLOW} ms; $DUPS duplicates" \
     "(the consumer announced $AGAIN); the reader without a group read" \
     "every one, $PDUPS twice"
