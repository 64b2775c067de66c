#!/usr/bin/env bash
#  tests/e2e/test_cli.sh - the zrocket command line against real brokers:
#  usage errors, --help, topic admin, send (argument, stdin, slow writer),
#  consume (--from, --count, idle timeout, --group commits), msg, stats,
#  ping, dev, config precedence, a locked data directory, SIGTERM.
#
#  ctest sets ZR_BIN (the zrocket executable) and ZR_SOURCE_DIR.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"
: "${ZR_SOURCE_DIR:?ZR_SOURCE_DIR must point at the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-cli.XXXXXX")
PIDS=()
TAB=$'\t'

fail () {
    echo "test_cli: FAIL: $*" >&2
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

#  start_broker NAME ARGS... : starts `zrocket ARGS...` in the background,
#  waits (bounded) for its "listening on" line, and sets PID_<NAME>,
#  EP_<NAME> (a connectable endpoint) and LINE_<NAME> (the line).
start_broker () {
    local name=$1
    shift
    mkfifo "$T/$name.fifo"
    "$ZR_BIN" "$@" > "$T/$name.fifo" 2> "$T/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    exec 3< "$T/$name.fifo"
    local line=
    IFS= read -r -t 30 -u 3 line \
        || fail "$name: no first line within 30 s ($*)"
    cat <&3 > "$T/$name.out" &
    exec 3<&-
    case "$line" in
        *" listening on "*) ;;
        *) fail "$name: first line is not 'listening on': $line" ;;
    esac
    local ep
    ep=$(grep -o 'tcp://[^ ,]*' <<< "$line" | head -n 1) \
        || fail "$name: no tcp endpoint in: $line"
    ep=${ep/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
    printf -v "PID_$name" '%s' "$pid"
    printf -v "EP_$name" '%s' "$ep"
    printf -v "LINE_$name" '%s' "$line"
}

#  stop_broker PID : SIGTERM, wait at most 20 s; sets STOP_RC to the
#  exit status.
stop_broker () {
    local pid=$1
    STOP_RC=0
    kill -TERM "$pid"
    timeout 20 tail --pid="$pid" -f /dev/null || fail "pid $pid ignored SIGTERM"
    wait "$pid" || STOP_RC=$?
}

#  expect_rc WANT CMD... : runs CMD, checks its exit status.
expect_rc () {
    local want=$1 rc=0
    shift
    timeout 60 "$@" > "$T/last.out" 2> "$T/last.err" || rc=$?
    [ "$rc" -eq "$want" ] \
        || fail "'$*' exited $rc, expected $want; stderr: $(head -c 300 "$T/last.err")"
}

one_line_err () {
    [ "$(wc -l < "$T/last.err")" -eq 1 ] \
        || fail "expected one stderr line, got: $(cat "$T/last.err")"
    grep -q -- "$1" "$T/last.err" \
        || fail "stderr does not mention '$1': $(cat "$T/last.err")"
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

#  --- usage -------------------------------------------------------------
expect_rc 0 "$ZR_BIN" --help
grep -q "consume" "$T/last.out" || fail "zrocket --help lists no commands"
for cmd in dev broker topic send consume stats msg ping; do
    expect_rc 0 "$ZR_BIN" "$cmd" --help
    grep -q "usage: zrocket $cmd" "$T/last.out" \
        || fail "zrocket $cmd --help prints no usage"
done
expect_rc 2 "$ZR_BIN" frobnicate
one_line_err "frobnicate"
expect_rc 2 "$ZR_BIN" send --topic t --bogus 1
one_line_err "bogus"
expect_rc 2 "$ZR_BIN" broker --data "$T/x" --port abc
one_line_err "'abc'"
expect_rc 2 "$ZR_BIN" broker --data "$T/x" --max-msg-size lots
one_line_err "max-msg-size"
expect_rc 2 "$ZR_BIN" broker --data "$T/x" --flush sometimes
one_line_err "async|sync"
ZR_AUTO_CREATE=maybe expect_rc 2 "$ZR_BIN" broker --data "$T/x"
one_line_err "ZR_AUTO_CREATE"
expect_rc 2 "$ZR_BIN" broker --config "$T/absent.cfg"
one_line_err "$T/absent.cfg"
expect_rc 2 "$ZR_BIN" consume --topic t --count many
one_line_err "'many' is not a number"
expect_rc 2 "$ZR_BIN" send
one_line_err "--topic"

#  broker --help lists every setting of actors/settings.c with its env var
expect_rc 0 "$ZR_BIN" broker --help
settings=$(sed -n '/zr_broker_settings/,/^};/s/^ *{ "\([a-z-]*\)", ZR_SETTING_.*/\1/p' \
           "$ZR_SOURCE_DIR/actors/settings.c")
[ -n "$settings" ] || fail "no settings found in actors/settings.c"
for s in $settings; do
    env=ZR_$(tr 'a-z-' 'A-Z_' <<< "$s")
    grep -q -- "--$s " "$T/last.out" || fail "broker --help lacks --$s"
    grep -q -- "$env" "$T/last.out" || fail "broker --help lacks $env"
done

#  --- a broker without auto-create -------------------------------------
start_broker A broker --data "$T/a" --bind 'tcp://127.0.0.1:*'
B=(--broker "$EP_A")
grep -q "data in $T/a" <<< "$LINE_A" || fail "line lacks data dir: $LINE_A"
grep -q "(flush async)" <<< "$LINE_A" || fail "line lacks flush: $LINE_A"

expect_rc 0 "$ZR_BIN" ping "${B[@]}"
grep -q "^OK$TAB" "$T/last.out" || fail "ping: $(cat "$T/last.out")"
GROUP=$(cut -f2 "$T/last.out")

#  topics
expect_rc 0 "$ZR_BIN" topic create orders --queues 4 "${B[@]}"
expect_rc 0 "$ZR_BIN" topic create scratch "${B[@]}"
expect_rc 0 "$ZR_BIN" topic list "${B[@]}"
grep -qx "orders${TAB}4" "$T/last.out" || fail "list: $(cat "$T/last.out")"
grep -qx "scratch${TAB}8" "$T/last.out" || fail "list: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" topic delete scratch "${B[@]}"
expect_rc 0 "$ZR_BIN" topic list "${B[@]}"
grep -q "^scratch" "$T/last.out" && fail "scratch still listed after delete"
expect_rc 1 "$ZR_BIN" topic delete scratch "${B[@]}"
one_line_err "TOPIC_NOT_FOUND"
expect_rc 2 "$ZR_BIN" topic create "${B[@]}"

#  send with a body
SEND_RE="^SEND_OK${TAB}[0-9a-f]\{32\}${TAB}[0-9]\+${TAB}[0-9]\+\$"
expect_rc 0 "$ZR_BIN" send --topic orders --tag t1 --key k1 \
    --prop color=red "${B[@]}" "first body"
[ "$(wc -l < "$T/last.out")" -eq 1 ] || fail "send printed $(cat "$T/last.out")"
grep -q "$SEND_RE" "$T/last.out" || fail "send line: $(cat "$T/last.out")"
Q=$(cut -f3 "$T/last.out")
O=$(cut -f4 "$T/last.out")

#  msg by store id
expect_rc 0 "$ZR_BIN" msg "$GROUP:orders:$Q:$O" "${B[@]}"
grep -qx "offset $O" "$T/last.out" || fail "msg: $(cat "$T/last.out")"
grep -qx "tags t1" "$T/last.out" || fail "msg lacks tag: $(cat "$T/last.out")"
grep -qx "prop.color red" "$T/last.out" || fail "msg lacks prop"
[ "$(tail -n 1 "$T/last.out")" = "first body" ] || fail "msg body"
expect_rc 1 "$ZR_BIN" msg "$GROUP:orders:$Q:999999" "${B[@]}"

#  send from stdin: 3 lines, one result each, in order, to queue 2
printf 'line one\nline two\nline three\n' > "$T/three"
expect_rc 0 "$ZR_BIN" send --topic orders --queue 2 "${B[@]}" < "$T/three"
[ "$(wc -l < "$T/last.out")" -eq 3 ] || fail "stdin send: $(cat "$T/last.out")"
[ "$(grep -c "$SEND_RE" "$T/last.out")" -eq 3 ] || fail "stdin send lines"
cut -f3 "$T/last.out" | sort -u | grep -qx 2 || fail "--queue 2 ignored"
[ "$(cut -f4 "$T/last.out" | tr '\n' ' ')" = "0 1 2 " ] \
    || fail "offsets in queue 2 are not 0 1 2: $(cut -f4 "$T/last.out")"

#  consume --from first --count 4: all four bodies
expect_rc 0 "$ZR_BIN" consume --topic orders --from first --count 4 \
    --timeout 10 "${B[@]}"
printf 'first body\nline one\nline three\nline two\n' > "$T/want4"
sort "$T/last.out" | diff - "$T/want4" > /dev/null \
    || fail "consume got: $(cat "$T/last.out")"
#  queue order within queue 2
grep -v "first body" "$T/last.out" | diff - "$T/three" > /dev/null \
    || fail "queue 2 out of order: $(cat "$T/last.out")"

#  --count 10 with only 4 there: exit 2 after the 1 s idle timeout
expect_rc 2 "$ZR_BIN" consume --topic orders --from first --count 10 \
    --timeout 1 "${B[@]}"
[ "$(wc -l < "$T/last.out")" -eq 4 ] || fail "consume past end printed $(wc -l < "$T/last.out")"
#  no --count: exit 0 at the idle timeout
expect_rc 0 "$ZR_BIN" consume --topic orders --from first --timeout 1 \
    "${B[@]}"
[ "$(wc -l < "$T/last.out")" -eq 4 ] || fail "consume to idle printed $(wc -l < "$T/last.out")"
#  default --from last: nothing old
expect_rc 0 "$ZR_BIN" consume --topic orders --timeout 1 "${B[@]}"
[ ! -s "$T/last.out" ] || fail "--from last printed old messages"

#  --group: commits, so the next run sees only new messages
expect_rc 0 "$ZR_BIN" consume --topic orders --group g1 --from first \
    --count 4 --timeout 10 "${B[@]}"
printf 'new one\nnew two\n' | "$ZR_BIN" send --topic orders --queue 1 \
    "${B[@]}" > /dev/null || fail "send new"
expect_rc 0 "$ZR_BIN" consume --topic orders --group g1 --count 2 \
    --timeout 10 "${B[@]}"
printf 'new one\nnew two\n' | diff - "$T/last.out" > /dev/null \
    || fail "group run 2 got: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" consume --topic orders --group g1 --timeout 1 "${B[@]}"
[ ! -s "$T/last.out" ] || fail "group run 3 got: $(cat "$T/last.out")"

#  --from TIME: a consumer started before a send gets it promptly
NOW=$(date +%s%3N)
timeout 30 "$ZR_BIN" consume --topic orders --from "$NOW" --count 1 \
    --timeout 20 "${B[@]}" > "$T/live.out" 2> "$T/live.err" &
LIVE=$!
"$ZR_BIN" send --topic orders "${B[@]}" "live body" > /dev/null \
    || fail "send live"
wait "$LIVE" || fail "live consume exited $?"
[ "$(cat "$T/live.out")" = "live body" ] || fail "live: $(cat "$T/live.out")"

#  slow writer: each line's result comes out before the next line is
#  written (read with a deadline, never sleep)
mkfifo "$T/in.fifo" "$T/res.fifo"
"$ZR_BIN" send --topic orders "${B[@]}" < "$T/in.fifo" > "$T/res.fifo" \
    2> "$T/slow.err" &
SLOW=$!
exec 4> "$T/in.fifo" 5< "$T/res.fifo"
for i in 1 2 3; do
    echo "slow $i" >&4
    IFS= read -r -t 10 -u 5 res || fail "no result for slow line $i in 10 s"
    grep -q "$SEND_RE" <<< "$res" || fail "slow line $i: $res"
done
exec 4>&-
wait "$SLOW" || fail "slow send exited $?"
exec 5<&-

#  missing topic without auto-create: exit 1, names the topic
expect_rc 1 "$ZR_BIN" send --topic nosuch "${B[@]}" "x"
grep -q "^TOPIC_NOT_FOUND${TAB}.*nosuch" "$T/last.out" \
    || fail "missing topic: $(cat "$T/last.out")"

#  stats
expect_rc 0 "$ZR_BIN" stats "${B[@]}"
[ -s "$T/last.out" ] || fail "stats printed nothing"
grep -qv '^[A-Za-z0-9_.%|-]\+ .*$' "$T/last.out" \
    && fail "stats lines are not 'key value': $(head -n 3 "$T/last.out")"

#  a second broker on the same data directory fails, naming the path
expect_rc 1 "$ZR_BIN" broker --data "$T/a" --bind 'tcp://127.0.0.1:*'
grep -q "$T/a" "$T/last.err" || fail "locked dir: $(cat "$T/last.err")"

#  SIGTERM: exit 0
stop_broker "$PID_A"
[ "$STOP_RC" -eq 0 ] || fail "broker exited $STOP_RC on SIGTERM"

#  no broker answering: one line, exit 1. An ipc endpoint nobody binds:
#  the stopped broker's tcp port may already serve another test (libzmq
#  hands out ephemeral ports from 49152 up, one after the other).
NOBODY="ipc://$T/nobody"
expect_rc 1 "$ZR_BIN" topic list --broker "$NOBODY" --timeout-ms 300
one_line_err "no broker answering at $NOBODY within 300 ms"
expect_rc 1 "$ZR_BIN" send --topic orders --broker "$NOBODY" --timeout-ms 300 x
one_line_err "no broker answering"

#  --- dev: auto-create, config file and env precedence -------------------
printf 'broker\n    flush = sync\n    max-msg-size = 1K\n' > "$T/dev.cfg"
ZR_MAX_MSG_SIZE=2K start_broker D dev --data "$T/d" --port 0 \
    --config "$T/dev.cfg"
grep -q "(flush sync)" <<< "$LINE_D" || fail "config file ignored: $LINE_D"
expect_rc 0 "$ZR_BIN" send --topic fresh --broker "$EP_D" "auto"
grep -q "$SEND_RE" "$T/last.out" || fail "dev auto-create: $(cat "$T/last.out")"
#  ZR_MAX_MSG_SIZE=2K beats the file's 1K: 1500 bytes fit, 3000 do not
expect_rc 0 "$ZR_BIN" send --topic fresh --broker "$EP_D" \
    "$(head -c 1500 /dev/zero | tr '\0' a)"
expect_rc 1 "$ZR_BIN" send --topic fresh --broker "$EP_D" \
    "$(head -c 3000 /dev/zero | tr '\0' a)"
grep -q "^MSG_TOO_LARGE" "$T/last.out" || fail "3000 B: $(cat "$T/last.out")"
stop_broker "$PID_D"
[ "$STOP_RC" -eq 0 ] || fail "dev exited $STOP_RC on SIGTERM"
grep -q "try: " "$T/D.out" || fail "dev printed no hint: $(cat "$T/D.out")"

echo "test_cli: PASS"
