#!/usr/bin/env bash
#  tests/e2e/test_kill9.sh - acknowledged messages survive kill -9.
#
#  Sends 500 messages (all must be SEND_OK), then starts a fast stream
#  of sends and kills the broker with SIGKILL in the middle of it. Every
#  SEND_OK printed before the crash is an acknowledged message. After a
#  restart on the same data directory (flush async: the WAL is in the page
#  cache, which a process crash does not lose): every acknowledged body is
#  there, at the queue and offset its ack named, and new sends continue
#  each queue's offsets with no gap and no reuse.
#
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-kill9.XXXXXX")
PIDS=()
TAB=$'\t'
QUEUES=4

fail () {
    echo "test_kill9: FAIL: $*" >&2
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

#  start_broker NAME : starts a broker on $T/data, waits for its line,
#  sets BROKER_PID and EP.
start_broker () {
    local name=$1
    mkfifo "$T/$name.fifo"
    "$ZR_BIN" broker --data "$T/data" --bind 'tcp://127.0.0.1:*' \
        --flush async > "$T/$name.fifo" 2> "$T/$name.err" &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    exec 3< "$T/$name.fifo"
    local line=
    IFS= read -r -t 30 -u 3 line || fail "$name: no first line in 30 s"
    cat <&3 > "$T/$name.out" &
    exec 3<&-
    EP=$(grep -o 'tcp://[^ ,]*' <<< "$line" | head -n 1) \
        || fail "$name: no endpoint in: $line"
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

start_broker b1
timeout 30 "$ZR_BIN" topic create k --queues $QUEUES --broker "$EP" \
    > /dev/null 2> "$T/create.err" || fail "topic create"

#  1. 500 messages, every one SEND_OK
seq 1 500 | sed 's/^/a-/' > "$T/bodies1"
timeout 60 "$ZR_BIN" send --topic k --broker "$EP" < "$T/bodies1" \
    > "$T/ack1" 2> "$T/send1.err" || fail "send 1 exited $?"
[ "$(grep -c "^SEND_OK$TAB" "$T/ack1")" -eq 500 ] \
    || fail "send 1: $(grep -vc "^SEND_OK" "$T/ack1") lines not SEND_OK"

#  2. A fast stream; kill -9 the broker once 300 results are out
mkfifo "$T/ack2.fifo"
seq 1 2000000 | sed 's/^/b-/' | "$ZR_BIN" send --topic k --broker "$EP" \
    --timeout-ms 1000 > "$T/ack2.fifo" 2> "$T/send2.err" &
SEND_PID=$!
PIDS+=("$SEND_PID")
exec 4< "$T/ack2.fifo"
: > "$T/ack2"
for i in $(seq 1 300); do
    IFS= read -r -t 30 -u 4 line || fail "stream: only $((i - 1)) results in time"
    echo "$line" >> "$T/ack2"
done
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
#  Whatever the sender printed is in order; stop it and keep its output
kill -KILL "$SEND_PID" 2>/dev/null || true
timeout 30 cat <&4 >> "$T/ack2" || true
exec 4<&-
wait "$SEND_PID" 2>/dev/null || true

#  A last line without its newline may be cut anywhere (even inside the
#  offset): drop it
if [ -s "$T/ack2" ] && [ -n "$(tail -c 1 "$T/ack2")" ]; then
    sed -i '$d' "$T/ack2"
fi

#  Acknowledged (queue, offset, body) triples; line j of a result file is
#  the result of input line j.
awk -F"$TAB" '$1 == "SEND_OK" { print $3 "\t" $4 "\ta-" NR }' "$T/ack1" \
    > "$T/acked"
#  The sender died mid-write: its last line may be cut short, so only
#  whole lines count
OK_RE="^SEND_OK$TAB[0-9a-f]\{32\}$TAB[0-9]\+$TAB[0-9]\+\$"
awk -F"$TAB" -v re="^SEND_OK\t[0-9a-f]+\t[0-9]+\t[0-9]+$" \
    '$0 ~ re { print $3 "\t" $4 "\tb-" NR }' "$T/ack2" >> "$T/acked"
N2=$(grep -c "$OK_RE" "$T/ack2" || true)
[ "$N2" -ge 300 ] || fail "only $N2 acks before the kill"
[ "$(cut -f1,2 "$T/acked" | sort -u | wc -l)" -eq "$(wc -l < "$T/acked")" ] \
    || fail "two acks name the same queue and offset"
echo "test_kill9: $((500 + N2)) acknowledged, broker killed"

#  3. Restart on the same data; everything acknowledged is there
start_broker b2
B=(--broker "$EP")
GROUP=$(timeout 30 "$ZR_BIN" ping "${B[@]}" | cut -f2) || fail "ping"
timeout 120 "$ZR_BIN" consume --topic k --from first --timeout 3 "${B[@]}" \
    > "$T/all" 2> "$T/consume.err" || fail "consume exited $?"
sort "$T/all" > "$T/all.sorted"
cut -f3 "$T/acked" | sort > "$T/acked.sorted"
missing=$(comm -23 "$T/acked.sorted" "$T/all.sorted" | wc -l)
[ "$missing" -eq 0 ] || fail "$missing acknowledged messages lost, e.g. $(comm -23 "$T/acked.sorted" "$T/all.sorted" | head -n 3 | tr '\n' ' ')"
[ "$(sort -u "$T/all" | wc -l)" -eq "$(wc -l < "$T/all")" ] \
    || fail "a message is stored twice"

#  Same queue and offset: every 25th ack and the last 5 of the stream
{ awk 'NR % 25 == 0' "$T/acked"; tail -n 5 "$T/acked"; } > "$T/sample"
while IFS="$TAB" read -r q o body; do
    got=$(timeout 30 "$ZR_BIN" msg "$GROUP:k:$q:$o" "${B[@]}" | tail -n 1) \
        || fail "msg $GROUP:k:$q:$o failed"
    [ "$got" = "$body" ] || fail "queue $q offset $o holds '$got', acked '$body'"
done < "$T/sample"

#  4. Offsets continue: a new message in each queue gets the next offset,
#     above every acknowledged one; together the queues hold exactly what
#     consume read (no gaps below max)
total=0
for q in $(seq 0 $((QUEUES - 1))); do
    res=$(timeout 30 "$ZR_BIN" send --topic k --queue "$q" "${B[@]}" \
          "after-$q") || fail "send after restart to queue $q"
    new=$(cut -f4 <<< "$res")
    top=$(awk -F"$TAB" -v q="$q" '$1 == q && $2 + 0 > m { m = $2 + 0 }
                                 END { print m + 0 }' "$T/acked")
    [ "$new" -gt "$top" ] || fail "queue $q: new offset $new <= acked $top"
    total=$((total + new))
done
[ "$total" -eq "$(wc -l < "$T/all")" ] \
    || fail "queues' next offsets sum to $total, consume read $(wc -l < "$T/all")"

kill -TERM "$BROKER_PID"
rc=0
timeout 20 tail --pid="$BROKER_PID" -f /dev/null || fail "no exit on SIGTERM"
wait "$BROKER_PID" || rc=$?
[ "$rc" -eq 0 ] || fail "broker exited $rc on SIGTERM"
echo "test_kill9: PASS"
