#!/usr/bin/env bash
#  tests/e2e/test_delay_kill9.sh - a delayed message survives kill -9 of
#  the broker (docs/protocol.md section 12).
#
#  `zrocket send --delay 2s` (acknowledged with its DELIVER_AT), then
#  the broker is killed with SIGKILL before the due time; a broker on the
#  same data directory delivers the message once, not before the due
#  time. Also: bad --delay / --at values exit 2 with one line, and
#  `send --batch` prints one line per message.
#
#  ctest: RUN_SERIAL
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-delay-kill9.XXXXXX")
PIDS=()
TAB=$'\t'

fail () {
    echo "test_delay_kill9: FAIL: $*" >&2
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
export ZR_NAMESERVER=none

#  Bad values: exit 2, one line on stderr.
for bad in "--delay 5x" "--delay -1s" "--delay ''" "--at yesterday" \
           "--delay 1s --at 0" "--batch 0" "--batch 2 --delay 1s"; do
    set +e
    eval "\"\$ZR_BIN\" send --topic d --broker tcp://127.0.0.1:1 $bad x" \
        > /dev/null 2> "$T/bad.txt"
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "send $bad exited $rc, expected 2"
    [ "$(wc -l < "$T/bad.txt")" = 1 ] \
        || fail "send $bad: not one line: $(cat "$T/bad.txt")"
done

start_broker b1
timeout 30 "$ZR_BIN" topic create d --queues 2 --broker "$EP" \
    > /dev/null 2> "$T/create.err" || fail "topic create"

#  --batch 3 over 5 lines: 5 result lines, consecutive offsets per batch.
printf 'a\nb\nc\nd\ne\n' | timeout 30 "$ZR_BIN" send --topic d --queue 1 \
    --batch 3 --broker "$EP" > "$T/batch.out" 2> "$T/batch.err" \
    || fail "send --batch exited $?"
[ "$(grep -c "^SEND_OK${TAB}" "$T/batch.out")" = 5 ] \
    || fail "send --batch: $(cat "$T/batch.out")"
[ "$(cut -f4 "$T/batch.out" | tr '\n' ' ')" = "0 1 2 3 4 " ] \
    || fail "send --batch offsets: $(cut -f4 "$T/batch.out" | tr '\n' ' ')"

sent_at=$(date +%s%3N)
timeout 30 "$ZR_BIN" send --topic d --delay 2s --broker "$EP" delayed-body \
    > "$T/ack" 2> "$T/send.err" || fail "delayed send exited $?"
grep -q "^SEND_OK${TAB}" "$T/ack" || fail "not acknowledged: $(cat "$T/ack")"
due=$(cut -f5 "$T/ack")
[ -n "$due" ] && [ "$due" -ge $((sent_at + 2000)) ] \
    || fail "DELIVER_AT '$due' is not 2 s after $sent_at"
kill -KILL "$BROKER_PID"
wait "$BROKER_PID" 2>/dev/null || true
now=$(date +%s%3N)
[ "$now" -lt "$due" ] || fail "the broker was killed after the due time"

start_broker b2
#  The body shows up once, and not before the due time.
timeout 30 "$ZR_BIN" consume --topic d --from first --count 6 --timeout 10 \
    --broker "$EP" > "$T/all" 2> "$T/consume.err" \
    || fail "consume exited $?: $(cat "$T/all")"
seen=$(date +%s%3N)
[ "$(grep -c '^delayed-body$' "$T/all")" = 1 ] \
    || fail "delayed message not delivered once: $(cat "$T/all")"
[ "$seen" -ge "$due" ] || fail "delivered before its due time"
echo "test_delay_kill9: delayed message delivered after kill -9, $((seen - due)) ms after due"
