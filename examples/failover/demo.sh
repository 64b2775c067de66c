#!/usr/bin/env bash
#  examples/failover/demo.sh - kill -9 the master under load and watch a
#  slave take over, with the numbers (issue #5; docs/ha.md).
#
#  On loopback only: one nameserver, a master (broker id 0) and a slave
#  (broker id 1) of group "demo", sync replication, --failover true and
#  short timings. A routed producer sends unique bodies without pause
#  (one in flight, a steady pace) and a consumer group "demo" consumes
#  through the nameserver. The demo kills the master with SIGKILL, shows
#  the slave promoted, restarts the old master (without --master: it
#  learns the new master from the nameserver, and discards a tail the new
#  master does not have) and shows it rejoin as a slave (same digest at
#  the same sequence), stops the producer, drains
#  the consumer, then prints a timeline and a verdict computed from what
#  the producer and the consumer printed.
#
#  Usage: bash examples/failover/demo.sh     (or: make failover-demo)
#  Environment: ZR_BIN (default build/zrocket), DEMO_PHASE_MS (how long
#  the producer runs in each phase, default 3000), DEMO_PACE_MS (pause
#  between sends, default 5), DEMO_KEEP=1 keeps the work directory.
#  Exit status: 0 when no acknowledged message was lost; 1 otherwise or
#  on any failure of the demo itself.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ZR_BIN=${ZR_BIN:-$HERE/../../build/zrocket}
PHASE_MS=${DEMO_PHASE_MS:-3000}
PACE_MS=${DEMO_PACE_MS:-5}
MAX_SENDS=200000                #  hard bound on the producer
TAB=$'\t'
unset ZR_BROKER ZR_NAMESERVER ZR_CONFIG ZR_BIND ZR_NS_BIND || true

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-failover-demo.XXXXXX")
PIDS=()
T0=$EPOCHREALTIME

#  now_ms : milliseconds since the demo started.
now_ms () {
    local n=${EPOCHREALTIME/./} t=${T0/./}
    echo $(( (n - t) / 1000 ))
}

#  event TEXT : one timeline line, printed and kept.
event () {
    local ms
    ms=$(now_ms)
    printf '%8s ms  %s\n' "+$ms" "$*" | tee -a "$T/timeline"
}

fail () {
    echo "failover demo: FAILED: $*" >&2
    for f in "$T"/*.err; do
        [ -s "$f" ] || continue
        echo "--- $f (last 10 lines) ---" >&2
        tail -n 10 "$f" >&2
    done
    exit 1
}

cleanup () {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "failover demo: work directory kept: $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#  start NAME CMD... : runs CMD in the background, its stdout through a
#  fifo; waits (30 s) for its first line; sets PID and EP (the first
#  tcp:// endpoint of that line).
start () {
    local name=$1 line=
    shift
    rm -f "$T/$name.fifo"
    mkfifo "$T/$name.fifo"
    "$@" > "$T/$name.fifo" 2> "$T/$name.err" &
    PID=$!
    PIDS+=("$PID")
    exec 3< "$T/$name.fifo"
    IFS= read -r -t 30 -u 3 line || fail "$name: did not start in 30 s"
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
    local line found=1 end=$((SECONDS + $3)) tail_pid
    exec 5< <(tail -n +1 -f "$1")
    tail_pid=$!
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

#  acked_after T : SEND_OK result lines stamped after wall clock T.
acked_after () {
    awk -F "$TAB" -v t="$1" '$1 > t && $3 == "SEND_OK" { n++ }
                             END { print n + 0 }' "$T/results"
}

#  run_phase N SECONDS [AFTER] : reads producer results until N SEND_OK
#  stamped after AFTER (default 0) have come and PHASE_MS has passed;
#  fails after SECONDS.
run_phase () {
    local want=$1 end=$((SECONDS + $2)) after=${3:-0} line got=0
    local until=$(( ${EPOCHREALTIME/./} / 1000 + PHASE_MS ))
    while [ "$got" -lt "$want" ] \
       || [ $(( ${EPOCHREALTIME/./} / 1000 )) -lt "$until" ]; do
        [ "$SECONDS" -lt "$end" ] \
            || fail "only $got acknowledged sends in $2 s"
        IFS= read -r -t 10 -u 4 line \
            || fail "producer: no result in 10 s"
        if [[ $line == *"${TAB}SEND_OK$TAB"* ]]; then
            [[ ${line%%$TAB*} > $after ]] && got=$((got + 1))
            if [ -z "${FIRST_OK_AFTER:-}" ] && [ "$after" != 0 ] \
               && [[ ${line%%$TAB*} > $after ]]; then
                FIRST_OK_AFTER=${line%%$TAB*}
            fi
        fi
    done
    return 0
}

#  show_cluster : `zrocket cluster` lines, aligned.
show_cluster () {
    awk -F "$TAB" '{ printf "              %-6s %-7s %-24s epoch %-3s heard %s ms ago\n",
                     $1, $2, $3, $4, $5 }'
}

[ -x "$ZR_BIN" ] || fail "no zrocket at $ZR_BIN (run: make build)"
command -v perl > /dev/null || fail "perl is needed to stamp results"

echo "zrocket failover demo (work directory $T)"
echo
event "starting a nameserver, a master (id 0) and a slave (id 1)"
start ns "$ZR_BIN" nameserver --bind 'tcp://127.0.0.1:*' --data "$T/ns" \
    --lease-ms 500 --master-dead-ms 1000
NS=$EP
COMMON=(--bind 'tcp://127.0.0.1:*' --group demo --nameserver "$NS"
        --replication sync --failover true --ha-heartbeat-ms 100
        --master-dead-ms 1000 --heartbeat-ms 200 --flush async)
start master "$ZR_BIN" broker --data "$T/b0" --role master \
    --min-insync 2 --broker-id 0 "${COMMON[@]}"
EPS=("$EP" "")
BPID=("$PID" "")
HA0=$(stat "${EPS[0]}" repl.ha_endpoint)
[ -n "$HA0" ] || fail "master: no repl.ha_endpoint in its stats"
start slave "$ZR_BIN" broker --data "$T/b1" --role slave --master "$HA0" \
    --min-insync 1 --broker-id 1 "${COMMON[@]}"
EPS[1]=$EP
BPID[1]=$PID
event "nameserver $NS, master ${EPS[0]}, slave ${EPS[1]}"
#  A nameserver grants no lease for master-dead-ms after it starts.
wait_log "$T/master.err" "acknowledging writes" 30 \
    || fail "master: no nameserver lease in 30 s"
event "master holds its nameserver lease: acknowledging writes"
wait_log "$T/master.err" "set for the nameservers: [1]" 30 \
    || fail "the slave did not join the in-sync set in 30 s"
event "slave is in the in-sync set (every SEND_OK is on both brokers)"
timeout 30 "$ZR_BIN" topic create orders --queues 4 --broker "${EPS[0]}" \
    > /dev/null 2> "$T/create.err" || fail "topic create"
event "topic 'orders' created (4 queues)"

#  start_consumer N : a member of consumer group "demo", through the
#  nameserver; bodies appended to $T/consumed (a group consumer flushes
#  each body as it prints it, so a body printed is in the file even when
#  the consumer is killed; no stdbuf, whose preload a sanitizer build
#  cannot run). CONS_PID is the consumer's own pid; its --timeout ends it
#  after 600 s without a message.
start_consumer () {
    "$ZR_BIN" consume --topic orders --group demo \
        --nameserver "$NS" --from first --timeout 600 \
        >> "$T/consumed" 2> "$T/consume$1.err" &
    CONS_PID=$!
    PIDS+=("$CONS_PID")
}
: > "$T/consumed"
start_consumer 1

#  The producer: bodies order-1, order-2, ... at a steady pace (a bounded
#  read -t on a fifo no one writes to), one in flight. perl stamps each
#  result line (wall clock, line number = body number, the line).
mkfifo "$T/pace" "$T/bodies"
feed () {
    local i pace_s
    pace_s=$(printf '0.%03d' "$PACE_MS")
    exec 6<> "$T/pace"
    for ((i = 1; i <= MAX_SENDS; i++)); do
        printf 'order-%d\n' "$i" || break
        read -r -t "$pace_s" -u 6 _ || true
    done
}
feed > "$T/bodies" &
FEED_PID=$!
PIDS+=("$FEED_PID")
: > "$T/results"
"$ZR_BIN" send --topic orders --nameserver "$NS" --inflight 1 \
    --timeout-ms 6000 < "$T/bodies" 2> "$T/send.err" \
    > >(perl -MTime::HiRes=time -ne \
        'BEGIN { $| = 1 } printf "%.6f\t%d\t%s", time, $., $_' \
        > "$T/results") &
SEND_PID=$!
PIDS+=("$SEND_PID")
exec 4< <(tail -n +1 -f "$T/results")
PIDS+=("$!")
event "producer sending (one in flight, ${PACE_MS} ms apart); consumer group 'demo' consuming"

run_phase 100 60
event "$(acked_after 0) sends acknowledged so far"

#  The crash.
kill -KILL "${BPID[0]}"
KILLED_AT=$EPOCHREALTIME
KILL_MS=$(now_ms)
{ wait "${BPID[0]}"; } 2>/dev/null || true
event "kill -9 master (pid ${BPID[0]})"

#  The promotion: poll the nameserver (bounded) until broker 1 is master
#  at epoch 2.
PROMOTED=
for try in $(seq 1 600); do
    CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS" 2> /dev/null) \
        || true
    if grep -q "^demo${TAB}master${TAB}${EPS[1]}${TAB}2${TAB}" <<< "$CL"
    then
        PROMOTED=1
        break
    fi
    [ "$(now_ms)" -lt $((KILL_MS + 30000)) ] || break
done
[ -n "$PROMOTED" ] || fail "the slave was not promoted in 30 s: $CL"
event "slave ${EPS[1]} promoted: master of epoch 2 (zrocket cluster):"
show_cluster <<< "$CL" | tee -a "$T/timeline"
#  The consumer is not restarted: it follows its broker group's new
#  master by itself (route refresh) and takes its queues there from the
#  group's committed offsets (replicated without sync waiting, so a few
#  messages may be delivered again).
wait_log "$T/consume1.err" "to ${EPS[1]} (epoch 2)" 30 \
    || fail "the consumer did not move to the new master in 30 s"
event "consumer (same process) moved to the new master ${EPS[1]}"

FIRST_OK_AFTER=
run_phase 100 60 "$KILLED_AT"
FIRST_MS=$(awk -v k="$KILLED_AT" -v f="$FIRST_OK_AFTER" -v t="$T0" \
    'BEGIN { printf "%d", (f - t) * 1000 }')
printf '%8s ms  %s\n' "+$FIRST_MS" \
    "first acknowledged send after the kill (from the new master)" \
    >> "$T/timeline"
event "$(acked_after "$KILLED_AT") sends acknowledged since the kill"

#  The old master comes back with no --master: the nameserver fences it
#  (epoch 2 has another master) and names the new master's HA endpoint.
HA1=$(stat "${EPS[1]}" repl.ha_endpoint)
[ -n "$HA1" ] || fail "new master: no repl.ha_endpoint"
start rejoin "$ZR_BIN" broker --data "$T/b0" --role slave \
    --min-insync 1 --broker-id 0 "${COMMON[@]}"
EPS[0]=$EP
BPID[0]=$PID
event "old master restarted on its data, without --master"
wait_log "$T/rejoin.err" "the nameservers name broker 1 master" 30 \
    || fail "the old master did not learn the new master in 30 s"
event "old master fenced; the nameserver names the new master: following $HA1"
wait_log "$T/slave.err" "set for the nameservers: [0]" 60 \
    || fail "the old master did not get in sync in 60 s"
event "old master caught up: back in the in-sync set (tail discarded:" \
      "$(stat "${EPS[0]}" repl.truncated_batches) batches, EPOCH_END;" \
      "full copies: $(stat "${EPS[0]}" repl.full_copies))"
REJOINED=
REJOIN_END=$((SECONDS + 30))
for try in $(seq 1 300); do
    CL=$(timeout 10 "$ZR_BIN" cluster --nameserver "$NS" 2> /dev/null) \
        || true
    if grep -q "^demo${TAB}slave${TAB}${EPS[0]}${TAB}" <<< "$CL"; then
        REJOINED=1
        break
    fi
    [ "$SECONDS" -lt "$REJOIN_END" ] || break
done
[ -n "$REJOINED" ] || fail "the old master is not listed as a slave: $CL"
event "zrocket cluster:"
show_cluster <<< "$CL" | tee -a "$T/timeline"

#  Same history: the new master's digest at its last sequence, then the
#  old master's at that sequence (bounded retries while it applies).
D1=$(timeout 10 "$ZR_BIN" digest --broker "${EPS[1]}" 2> /dev/null) \
    || fail "digest of the new master"
SEQ=${D1%%$TAB*}
D0=
DIGEST_END=$((SECONDS + 30))
for try in $(seq 1 300); do
    [ "$SECONDS" -lt "$DIGEST_END" ] || break
    D0=$(timeout 10 "$ZR_BIN" digest "$SEQ" --broker "${EPS[0]}" \
         2> /dev/null) || D0=
    [ "$D0" = "$D1" ] && break
done
[ "$D0" = "$D1" ] \
    || fail "digests differ at seq $SEQ: new master $D1, old master $D0"
event "digest at seq $SEQ equal on both: ${D1#*$TAB}"

run_phase 100 60
#  Stop the producer: the feeder ends, send reads end of input, finishes
#  what is in flight and exits.
kill "$FEED_PID" 2>/dev/null || true
wait "$FEED_PID" 2>/dev/null || true
for try in $(seq 1 100); do
    kill -0 "$SEND_PID" 2>/dev/null || break
    IFS= read -r -t 1 -u 4 _ || true
done
kill -TERM "$SEND_PID" 2>/dev/null || true
wait "$SEND_PID" 2>/dev/null || true
exec 4<&-
event "producer stopped"

#  Drain: wait (bounded) until every acknowledged body was consumed, or
#  nothing new arrived for 10 s.
awk -F "$TAB" '$3 == "SEND_OK" { print "order-" $2 }' "$T/results" \
    | sort -u > "$T/acked"
exec 7< <(tail -n +1 -f "$T/consumed")
TAIL7=$!
PIDS+=("$TAIL7")
declare -A SEEN=()
while IFS= read -r body; do SEEN[$body]=1; done < "$T/acked"
MISSING=${#SEEN[@]}
DRAIN_END=$((SECONDS + 60))
while [ "$MISSING" -gt 0 ] && [ "$SECONDS" -lt "$DRAIN_END" ]; do
    IFS= read -r -t 10 -u 7 body || break
    if [ "${SEEN[$body]:-0}" = 1 ]; then
        SEEN[$body]=2
        MISSING=$((MISSING - 1))
    fi
done
kill "$TAIL7" 2>/dev/null || true
exec 7<&-
kill -TERM "$CONS_PID" 2>/dev/null || true
wait "$CONS_PID" 2>/dev/null || true
event "consumer drained"

#  What the new master stores (every queue from its first offset, no
#  group): tells a message lost from one not delivered to the group.
#  It stops after 5 s without a message (2 s once cut a slow read short in
#  a sanitizer build).
timeout 60 "$ZR_BIN" consume --topic orders --broker "${EPS[1]}" \
    --from first --timeout 5 2> "$T/stored.err" | sort -u > "$T/stored" \
    || fail "reading the new master"
event "read back every queue of the new master"

#  The verdict, from the data.
SENT=$(awk -F "$TAB" 'END { print NR }' "$T/results")
ACKED=$(wc -l < "$T/acked")
sort -u "$T/consumed" > "$T/consumed.distinct"
CONSUMED=$(wc -l < "$T/consumed.distinct")
DUPS=$(( $(wc -l < "$T/consumed") - CONSUMED ))
UNDELIVERED=$(comm -23 "$T/acked" "$T/consumed.distinct" | wc -l)
#  Lost: acknowledged, never consumed and not on the new master.
comm -23 "$T/acked" "$T/consumed.distinct" | comm -23 - "$T/stored" \
    > "$T/lost"
LOST=$(wc -l < "$T/lost")
NOT_ACKED=$(awk -F "$TAB" '$3 != "SEND_OK"' "$T/results" | wc -l)
OUTAGE=$(awk -v k="$KILLED_AT" -v f="$FIRST_OK_AFTER" \
    'BEGIN { printf "%d", (f - k) * 1000 }')

echo
echo "Timeline"
#  Events in time order (the first-send line was added out of order).
awk '{ if (match($0, /^ *\+[0-9]+ ms/)) { key = substr($0, RSTART, RLENGTH)
       gsub(/[^0-9]/, "", key); last = key }
       printf "%012d\t%06d\t%s\n", last, NR, $0 }' "$T/timeline" \
    | sort -t "$TAB" -k1,1n -k2,2n | cut -f 3-
echo
echo "Verdict"
printf '  %-44s %s\n' \
    "messages sent" "$SENT" \
    "acknowledged (SEND_OK)" "$ACKED" \
    "not acknowledged (errors, timeouts)" "$NOT_ACKED" \
    "consumed (distinct)" "$CONSUMED" \
    "duplicates delivered" "$DUPS" \
    "acknowledged, stored, not consumed" "$UNDELIVERED" \
    "acknowledged but lost" "$LOST" \
    "kill -> first acknowledged send (new master)" "${OUTAGE} ms"
echo
if [ "$UNDELIVERED" -gt 0 ] && [ "$LOST" -eq 0 ]; then
    echo "WARNING: $UNDELIVERED acknowledged messages are stored on the new" \
         "master but the consumer group"
    echo "  did not deliver them: a consumer group bug, not a loss (see" \
         "docs/ha.md, Not built yet)"
fi
if [ "$LOST" -eq 0 ]; then
    echo "VERDICT: PASS: 0 of $ACKED acknowledged messages lost;" \
         "write outage ${OUTAGE} ms; $DUPS duplicates"
    exit 0
fi
head -n 10 "$T/lost" \
    | sed 's/^/  lost: /'
echo "VERDICT: FAIL: $LOST of $ACKED acknowledged messages lost"
exit 1
