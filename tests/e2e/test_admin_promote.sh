#!/usr/bin/env bash
#  tests/e2e/test_admin_promote.sh - graceful manual handover, `zrocket
#  admin promote` (issue #5, Failback; docs/protocol.md section 16,
#  "Graceful handover").
#
#  One nameserver (lease-ms 500, master-dead-ms 1000), broker 0 (master)
#  and broker 1 (slave), sync replication, --failover true
#  --ha-heartbeat-ms 100 --master-dead-ms 1000, on loopback, each given
#  the other's HA endpoint as --master (a fenced master follows its
#  --master setting). A routed producer (zrocket send --nameserver, one
#  message in flight, bodies 1, 2, 3...) sends without pause. Checked, by
#  waiting for output lines with timeouts:
#  - errors: promote of an unknown broker id, and of a slave (broker 2,
#    killed) that is no longer in the in-sync set: a clear error, and the
#    master goes on acknowledging (SEND_OK stamped after the error);
#  - a handover that times out after the master resigned (broker 1
#    stopped with SIGSTOP): BUSY, the resignation is withdrawn, the
#    master goes on in epoch 1;
#  - `admin promote 1` answers OK with epoch 2; `zrocket cluster` names
#    broker 1 master of epoch 2; broker 0 becomes its slave; the producer
#    goes on; every body acknowledged so far is on broker 1;
#  - `admin promote 0` hands back: epoch 3, broker 0 master;
#  - zero acknowledged lost at the end (every SEND_OK body is on the last
#    master); prints the write pause of each handover (the old master's
#    paused_ms, and the client-visible gap between SEND_OKs).
#
#  ctest sets ZR_BIN.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail

TEST=test_admin_promote
. "$(dirname "$0")/shlib.sh"

#  wait_stat EP KEY VALUE SECONDS : polls stats (a status command, no
#  event to wait for) until KEY is VALUE, with a deadline.
wait_stat () {
    local end=$((SECONDS + $4))
    while [ "$SECONDS" -lt "$end" ]; do
        [ "$(stat "$1" "$2")" = "$3" ] && return 0
    done
    return 1
}

#  wait_insync EP ID SECONDS : polls stats (a status command) until the
#  master at EP lists slave broker ID (routing id "zrb:ID:...") in its
#  in-sync set, with a deadline. repl.actor.insync is no proof: it also
#  counts a slave that left the set while the nameservers may still have
#  it recorded (held).
wait_insync () {
    local hex end=$((SECONDS + $3))
    hex=$(printf 'zrb:%s:' "$2" | od -An -tx1 | tr -d ' \n')
    while [ "$SECONDS" -lt "$end" ]; do
        stat "$1" repl.actor.slaves \
            | grep -q "\"id\":\"$hex[0-9a-f]*\"[^}]*\"in_sync\":true" \
            && return 0
    done
    return 1
}

#  free_ports N : a base port whose N consecutive ports are free (a
#  broker binds its port, the HA ROUTER on port + 1, the stream on + 2).
free_ports () {
    /usr/bin/python3 - "$1" <<'EOF'
import random, socket, sys
n = int (sys.argv [1])
for _ in range (200):
    base = random.randint (20000, 60000)
    socks = []
    try:
        for p in range (base, base + n):
            s = socket.socket ()
            s.bind (("127.0.0.1", p))
            socks.append (s)
        print (base)
        sys.exit (0)
    except OSError:
        pass
    finally:
        for s in socks:
            s.close ()
sys.exit (1)
EOF
}

start ns "$ZR_BIN" nameserver --bind 'tcp://127.0.0.1:*' --data "$T/ns" \
    --lease-ms 500 --master-dead-ms 1000
NS=$EP
P0=$(free_ports 3) || fail "no free ports"
P1=$(free_ports 3) || fail "no free ports"
P2=$(free_ports 3) || fail "no free ports"
HA0="tcp://127.0.0.1:$((P0 + 1))"
HA1="tcp://127.0.0.1:$((P1 + 1))"
COMMON=(--group g --nameserver "$NS" --replication sync --failover true
        --ha-heartbeat-ms 100 --master-dead-ms 1000 --heartbeat-ms 200
        --flush async --min-insync 1)
start b0 "$ZR_BIN" broker --data "$T/b0" --role master --broker-id 0 \
    --bind "tcp://127.0.0.1:$P0" --ha-port $((P0 + 1)) --master "$HA1" \
    "${COMMON[@]}"
B0=$EP
start b1 "$ZR_BIN" broker --data "$T/b1" --role slave --broker-id 1 \
    --bind "tcp://127.0.0.1:$P1" --ha-port $((P1 + 1)) --master "$HA0" \
    "${COMMON[@]}"
B1=$EP
B1_PID=$PID
#  The nameserver grants no lease for master-dead-ms after it starts.
wait_log "$T/b0.err" "acknowledging writes" 30 \
    || fail "b0: no majority of leases in 30 s"
timeout 30 "$ZR_BIN" topic create t --queues 4 --broker "$B0" \
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

#  all_on EP LABEL : every body acknowledged so far is on broker EP.
all_on () {
    awk -F "$TAB" '$3 == "SEND_OK" { print $2 }' "$T/results" | sort \
        > "$T/acked"
    timeout 60 "$ZR_BIN" consume --topic t --broker "$1" --from first \
        --timeout 2 2> "$T/consume.err" | sort -u > "$T/stored" \
        || fail "$2: consume from $1"
    local lost acked
    lost=$(comm -23 "$T/acked" "$T/stored" | wc -l)
    acked=$(wc -l < "$T/acked")
    [ "$lost" -eq 0 ] \
        || fail "$2: $lost of $acked acknowledged messages are not on $1"
    echo "test_admin_promote: $2: all $acked acknowledged messages are on" \
         "$1"
}

#  gap FROM TO : the client-visible write pause of a handover made
#  between FROM and TO: the longest time between two SEND_OKs, the
#  second one after FROM and the first one before TO, ms.
gap () {
    awk -F "$TAB" -v f="$1" -v t="$2" '
        $3 != "SEND_OK" { next }
        last && $1 > f && last < t && $1 - last > max { max = $1 - last }
        { last = $1 }
        END { printf "%d", max * 1000 }
    ' "$T/results"
}

#  wait_cluster LINE SECONDS : polls `zrocket cluster` (a status command)
#  until it prints a line starting with LINE, with a deadline: the new
#  master registers on its next nameserver heartbeat.
wait_cluster () {
    local end=$((SECONDS + $2))
    while [ "$SECONDS" -lt "$end" ]; do
        CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS"              2> "$T/cluster.err") || fail "zrocket cluster"
        grep -q "^$1" <<< "$CL" && return 0
    done
    return 1
}

read_until 100 30

#  Error 1: an id that is no slave of the master.
if "$ZR_BIN" admin promote 7 --broker "$B0" > "$T/p7.out" \
    2> "$T/p7.err"; then
    fail "promote 7 succeeded: $(cat "$T/p7.out")"
fi
grep -q "BAD_ARGUMENT: broker 7 is not a slave of this master" "$T/p7.err" \
    || fail "promote 7: unexpected error: $(cat "$T/p7.err")"
echo "test_admin_promote: promote 7: $(cat "$T/p7.err")"
#  ... and through the nameserver, which knows no broker 7.
if "$ZR_BIN" admin promote 7 --nameserver "$NS" > /dev/null \
    2> "$T/p7ns.err"; then
    fail "promote 7 through the nameserver succeeded"
fi
grep -q "knows no live broker 7" "$T/p7ns.err" \
    || fail "promote 7 (nameserver): $(cat "$T/p7ns.err")"
read_until 50 30 "$EPOCHREALTIME"

#  Error 2: broker 2, a slave that fell out of the in-sync set (killed).
start b2 "$ZR_BIN" broker --data "$T/b2" --role slave --broker-id 2 \
    --bind "tcp://127.0.0.1:$P2" --ha-port $((P2 + 1)) --master "$HA0" \
    "${COMMON[@]}"
B2_PID=$PID
wait_stat "$B0" repl.actor.insync 3 30 || fail "b2 never got in sync"
kill -KILL "$B2_PID"
wait_stat "$B0" repl.actor.insync 2 30 \
    || fail "b2 did not leave the in-sync set"
if "$ZR_BIN" admin promote 2 --broker "$B0" > "$T/p2.out" \
    2> "$T/p2.err"; then
    fail "promote 2 succeeded: $(cat "$T/p2.out")"
fi
grep -q "BAD_ARGUMENT: broker 2 is not in the in-sync set" "$T/p2.err" \
    || fail "promote 2: unexpected error: $(cat "$T/p2.err")"
echo "test_admin_promote: promote 2: $(cat "$T/p2.err")"
read_until 50 30 "$EPOCHREALTIME"
[ "$(stat "$B0" repl.role)" = master ] || fail "b0 is no longer master"
[ "$(stat "$B0" repl.epoch)" = 1 ] || fail "b0's epoch moved"

#  Error 3: a handover that times out after the resignation. The
#  producer is held, broker 1 catches up and is then stopped (SIGSTOP):
#  the master resigns for it, sends TAKEOVER, gets no new master within
#  --wait-ms, withdraws the resignation and takes writes again in epoch
#  1. Broker 1, continued, may campaign (the queued TAKEOVER, or its
#  master's silence): the nameserver refuses, the master lives.
kill -STOP "$SEND_PID"
wait_stat "$B0" repl.actor.hwm "$(stat "$B0" repl.seq)" 10 \
    || fail "b1 did not catch up"
kill -STOP "$B1_PID"
if timeout 30 "$ZR_BIN" admin promote 1 --broker "$B0" --wait-ms 1500 \
    > "$T/p1t.out" 2> "$T/p1t.err"; then
    kill -CONT "$B1_PID"
    fail "promote 1 with broker 1 stopped succeeded: $(cat "$T/p1t.out")"
fi
kill -CONT "$B1_PID"
kill -CONT "$SEND_PID"
grep -q "BUSY: handover timed out: broker 1 did not become master within 1500 ms" \
    "$T/p1t.err" || fail "promote 1 (stopped): $(cat "$T/p1t.err")"
echo "test_admin_promote: promote 1 (broker 1 stopped): $(cat "$T/p1t.err")"
read_until 50 30 "$EPOCHREALTIME"
[ "$(stat "$B0" repl.role)" = master ] || fail "b0 is no longer master"
[ "$(stat "$B0" repl.epoch)" = 1 ] || fail "b0's epoch moved"
wait_insync "$B0" 1 30 || fail "b1 did not get back in sync"

#  promote NAME ID EP_NEW EP_OLD EPOCH : hands over and checks.
PAUSES=
promote () {
    local name=$1 id=$2 new=$3 old=$4 epoch=$5 at out
    at=$EPOCHREALTIME
    out=$(timeout 60 "$ZR_BIN" admin promote "$id" --nameserver "$NS" \
          --wait-ms 10000 2> "$T/$name.err") \
        || fail "$name: admin promote $id failed: $(cat "$T/$name.err")"
    IFS=$TAB read -r ok pid pepoch paused <<< "$out"
    [ "$ok" = OK ] && [ "$pid" = "$id" ] && [ "$pepoch" = "$epoch" ] \
        || fail "$name: unexpected answer '$out' (want OK $id $epoch)"
    local done_at=$EPOCHREALTIME
    wait_cluster "g${TAB}master${TAB}${new}${TAB}${epoch}${TAB}" 10 \
        || fail "$name: $new is not master of epoch $epoch in: $CL"
    [ "$(stat "$new" repl.role)" = master ] || fail "$name: new repl.role"
    [ "$(stat "$new" repl.epoch)" = "$epoch" ] || fail "$name: new epoch"
    wait_stat "$old" repl.role slave 30 \
        || fail "$name: the old master $old did not become a slave"
    read_until 100 60 "$at"
    local g
    g=$(gap "$at" "$done_at")
    PAUSES="$PAUSES ${paused}ms (client gap ${g}ms)"
    echo "test_admin_promote: $name: broker $id master of epoch $epoch;" \
         "writes paused $paused ms on the old master; client-visible gap" \
         "between SEND_OKs $g ms"
}

promote promote1 1 "$B1" "$B0" 2
#  The producer is held (SIGSTOP) while broker 1 is read: consume stops
#  after 2 s without a message.
kill -STOP "$SEND_PID"
all_on "$B1" "after promote 1"
kill -CONT "$SEND_PID"
#  Broker 0 (full copy, then the stream) must be in the in-sync set of
#  broker 1 before it can take over.
wait_insync "$B1" 0 60 || fail "b0 never got in sync with b1"
promote promote0 0 "$B0" "$B1" 3

#  Never automatic: nothing moves back by itself.
read_until 100 30
[ "$(stat "$B0" repl.epoch)" = 3 ] || fail "the epoch moved by itself"

kill -TERM "$SEND_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
exec 4<&-
all_on "$B0" "end"
echo "test_admin_promote: OK: errors clear, writes went on; handovers to" \
     "1 and back to 0; $(wc -l < "$T/acked") acknowledged, 0 lost;" \
     "pauses:$PAUSES"
