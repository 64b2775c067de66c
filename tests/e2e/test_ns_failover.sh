#!/usr/bin/env bash
#  tests/e2e/test_ns_failover.sh - a routed producer survives kill -9 of
#  one of two brokers.
#
#  One nameserver (expiry 2 s), two brokers (groups g1, g2; heartbeat
#  300 ms) registered with it, a topic over both. `zrocket send
#  --nameserver` is fed 3000 lines through a fifo, a few lines ahead of
#  its results; after 1000 results broker g1 is killed with SIGKILL. Every
#  line must still come back SEND_OK (the producer retries on g2) and the
#  sender exit 0. Then g1 restarts on its data directory, and consuming
#  through the nameserver (both brokers) returns every acknowledged body.
#
#  ctest: RUN_SERIAL
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-ns-failover.XXXXXX")
PIDS=()
TAB=$'\t'
LINES=3000
KILL_AT=1000
AHEAD=20                        #  lines written ahead of their results
unset ZR_BROKER ZR_NAMESERVER ZR_CONFIG ZR_BIND ZR_NS_BIND || true

fail () {
    echo "test_ns_failover: FAIL: $*" >&2
    for f in "$T"/*.err; do
        [ -s "$f" ] || continue
        echo "--- $f (last 10 lines) ---" >&2
        tail -n 10 "$f" >&2
    done
    exit 1
}

cleanup () {
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#  start NAME ARGS... : starts `zrocket ARGS...`, waits (bounded) for its
#  first line; sets PID and EP (its first tcp endpoint).
start () {
    local name=$1
    shift
    mkfifo "$T/$name.fifo"
    "$ZR_BIN" "$@" > "$T/$name.fifo" 2> "$T/$name.err" &
    PID=$!
    PIDS+=("$PID")
    exec 3< "$T/$name.fifo"
    local line=
    IFS= read -r -t 30 -u 3 line || fail "$name: no first line within 30 s"
    cat <&3 > "$T/$name.out" &
    exec 3<&-
    case "$line" in
        *" listening on "*) ;;
        *) fail "$name: first line is not 'listening on': $line" ;;
    esac
    EP=$(grep -o 'tcp://[^ ,]*' <<< "$line" | head -n 1) \
        || fail "$name: no endpoint in: $line"
}

#  broker NAME GROUP : starts a broker on $T/GROUP; sets PID and EP.
broker () {
    start "$1" broker --data "$T/$2" --group "$2" --bind 'tcp://127.0.0.1:*' \
        --nameserver "$NS" --heartbeat-ms 300
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

start ns nameserver --bind 'tcp://127.0.0.1:*' --expiry-ms 2000
NS=$EP NS_PID=$PID
N=(--nameserver "$NS")
broker b1 g1
B1_PID=$PID B1=$EP
broker b2 g2
B2=$EP B2_PID=$PID

#  A broker answers TOPIC_CREATE once its nameservers have its state:
#  after this, the nameserver knows both (no waiting on heartbeats)
timeout 30 "$ZR_BIN" topic create sync --queues 1 --brokers "$B1,$B2" \
    > /dev/null 2> "$T/sync.err" || fail "topic create --brokers"
timeout 30 "$ZR_BIN" cluster "${N[@]}" > "$T/cluster" 2> "$T/cluster.err" \
    || fail "cluster"
[ "$(grep -c "${TAB}master${TAB}" "$T/cluster")" -eq 2 ] \
    || fail "cluster: $(cat "$T/cluster")"

#  The topic over both brokers
timeout 30 "$ZR_BIN" topic create T --queues 4 "${N[@]}" > "$T/create" \
    2> "$T/create.err" || fail "topic create"
[ "$(wc -l < "$T/create")" -eq 2 ] || fail "topic create: $(cat "$T/create")"
timeout 30 "$ZR_BIN" route T "${N[@]}" > "$T/route" 2> "$T/route.err" \
    || fail "route"
[ "$(cut -f1 "$T/route" | sort | tr '\n' ' ')" = "g1 g2 " ] \
    || fail "route: $(cat "$T/route")"

#  The stream: lines written $AHEAD ahead of their results
seq 1 $LINES | sed 's/^/m-/' > "$T/bodies"
mkfifo "$T/in.fifo" "$T/res.fifo"
"$ZR_BIN" send --topic T "${N[@]}" --timeout-ms 1000 < "$T/in.fifo" \
    > "$T/res.fifo" 2> "$T/send.err" &
SEND_PID=$!
PIDS+=("$SEND_PID")
exec 4> "$T/in.fifo" 5< "$T/res.fifo"
: > "$T/results"
got=0
killed=0
next_result () {
    local res=
    IFS= read -r -t 30 -u 5 res \
        || fail "only $got results within 30 s of each other (killed: $killed)"
    printf '%s\n' "$res" >> "$T/results"
    got=$((got + 1))
    if [ "$got" -eq "$KILL_AT" ]; then
        kill -KILL "$B1_PID"
        wait "$B1_PID" 2>/dev/null || true
        killed=1
    fi
}
while IFS= read -r body; do
    printf '%s\n' "$body" >&4
    sent=$((${sent:-0} + 1))
    if [ "$sent" -gt "$AHEAD" ]; then
        next_result
    fi
done < "$T/bodies"
exec 4>&-
while [ "$got" -lt "$LINES" ]; do
    next_result
done
exec 5<&-
rc=0
timeout 30 tail --pid="$SEND_PID" -f /dev/null || fail "sender did not exit"
wait "$SEND_PID" || rc=$?
[ "$killed" -eq 1 ] || fail "broker g1 was never killed"
SEND_RE="^SEND_OK${TAB}[0-9a-f]\{32\}${TAB}[0-9]\+${TAB}[0-9]\+\$"
nok=$(grep -c "$SEND_RE" "$T/results" || true)
[ "$nok" -eq "$LINES" ] \
    || fail "$nok of $LINES SEND_OK; others: $(grep -v "$SEND_RE" "$T/results" | sort | uniq -c | head -n 3)"
[ "$rc" -eq 0 ] || fail "sender exited $rc"
[ "$(cut -f2 "$T/results" | sort -u | wc -l)" -eq "$LINES" ] \
    || fail "two results carry the same message id"
echo "test_ns_failover: $LINES sends SEND_OK across a kill -9"

#  Restart g1 on its data; a new topic on it makes sure the nameserver
#  has its new endpoint before we read
broker b1again g1
B1=$EP B1_PID=$PID
timeout 30 "$ZR_BIN" topic create sync2 --queues 1 --brokers "$B1" \
    > /dev/null 2> "$T/sync2.err" || fail "topic create on restarted g1"

#  Every acknowledged body is there, on one broker or the other
timeout 120 "$ZR_BIN" consume --topic T --from first --timeout 3 "${N[@]}" \
    > "$T/all" 2> "$T/consume.err" || fail "consume exited $?"
sort -u "$T/all" > "$T/all.sorted"
sort "$T/bodies" > "$T/bodies.sorted"
missing=$(comm -23 "$T/bodies.sorted" "$T/all.sorted" | wc -l)
[ "$missing" -eq 0 ] \
    || fail "$missing acknowledged bodies missing, e.g. $(comm -23 "$T/bodies.sorted" "$T/all.sorted" | head -n 3 | tr '\n' ' ')"
extra=$(comm -13 "$T/bodies.sorted" "$T/all.sorted" | wc -l)
[ "$extra" -eq 0 ] || fail "$extra bodies that were never sent"

#  Both brokers took a share
for ep in "$B1" "$B2"; do
    n=$(timeout 60 "$ZR_BIN" consume --topic T --from first --timeout 2 \
        --broker "$ep" 2> "$T/share.err" | wc -l) || fail "consume at $ep"
    [ "$n" -gt 0 ] || fail "broker $ep holds none of the messages"
done
#  Everything stops cleanly on SIGTERM
for pid in "$B1_PID" "$B2_PID" "$NS_PID"; do
    kill -TERM "$pid"
    timeout 20 tail --pid="$pid" -f /dev/null || fail "pid $pid ignored SIGTERM"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "pid $pid exited $rc on SIGTERM"
done
echo "test_ns_failover: PASS"
