#!/usr/bin/env bash
#  tests/e2e/test_cli_ns.sh - the zrocket command line through a
#  nameserver: `zrocket dev` runs a nameserver and a broker registered
#  with it; cluster, route, topic create/list/delete, send, consume (with
#  a --group), msg by store id, ping, ZR_NAMESERVER, and the errors for a
#  dead nameserver, an unknown topic, stats without a broker. Also
#  `zrocket nameserver` on its own, and the --help of the new commands.
#
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-cli-ns.XXXXXX")
PIDS=()
TAB=$'\t'
#  No discovery from the test's environment
unset ZR_BROKER ZR_NAMESERVER ZR_CONFIG ZR_NS_BIND ZR_BIND || true

fail () {
    echo "test_cli_ns: FAIL: $*" >&2
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

#  stop PID : SIGTERM, wait at most 20 s, exit status must be 0.
stop () {
    local pid=$1 rc=0
    kill -TERM "$pid"
    timeout 20 tail --pid="$pid" -f /dev/null || fail "pid $pid ignored SIGTERM"
    wait "$pid" || rc=$?
    [ "$rc" -eq 0 ] || fail "pid $pid exited $rc on SIGTERM"
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

#  --- help ----------------------------------------------------------------
for cmd in nameserver cluster route; do
    expect_rc 0 "$ZR_BIN" "$cmd" --help
    grep -q "usage: zrocket $cmd" "$T/last.out" \
        || fail "zrocket $cmd --help prints no usage"
done
expect_rc 0 "$ZR_BIN" nameserver --help
for s in bind cluster expiry-ms beacon interface; do
    grep -q -- "--$s " "$T/last.out" || fail "nameserver --help lacks --$s"
done
grep -q "ZR_NS_BIND" "$T/last.out" || fail "nameserver --help lacks ZR_NS_BIND"
expect_rc 0 "$ZR_BIN" broker --help
for s in nameserver cluster heartbeat-ms interface beacon-port; do
    grep -q -- "--$s " "$T/last.out" || fail "broker --help lacks --$s"
done
expect_rc 0 "$ZR_BIN" send --help
grep -q -- "--nameserver LIST" "$T/last.out" || fail "send --help lacks --nameserver"
grep -q "ZR_NAMESERVER" "$T/last.out" || fail "send --help lacks ZR_NAMESERVER"
expect_rc 2 "$ZR_BIN" nameserver --expiry-ms soon
one_line_err "expiry-ms"
expect_rc 2 "$ZR_BIN" dev --ns-port many
one_line_err "'many'"
expect_rc 2 "$ZR_BIN" cluster --nameserver localhost
one_line_err "not an endpoint"

#  --- a nameserver on its own ---------------------------------------------
mkfifo "$T/ns.fifo"
"$ZR_BIN" nameserver --bind 'tcp://127.0.0.1:*' --cluster Solo \
    > "$T/ns.fifo" 2> "$T/ns.err" &
NS_PID=$!
PIDS+=("$NS_PID")
exec 3< "$T/ns.fifo"
IFS= read -r -t 30 -u 3 line || fail "nameserver: no first line within 30 s"
exec 3<&-
[[ "$line" =~ ^"zrocket nameserver: cluster Solo listening on tcp://127.0.0.1:"[0-9]+" (beacon off)"$ ]] \
    || fail "nameserver line: $line"
SOLO=$(grep -o 'tcp://[^ ]*' <<< "$line")
expect_rc 0 "$ZR_BIN" ping --nameserver "$SOLO"
grep -q "^OK${TAB}nameserver${TAB}.*${TAB}Solo${TAB}$SOLO\$" "$T/last.out" \
    || fail "ping nameserver: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" cluster --nameserver "$SOLO"
[ ! -s "$T/last.out" ] || fail "empty cluster printed: $(cat "$T/last.out")"
expect_rc 1 "$ZR_BIN" route nothing --nameserver "$SOLO"
one_line_err "TOPIC_NOT_FOUND"
expect_rc 1 "$ZR_BIN" topic create t --nameserver "$SOLO"
one_line_err "knows no master broker"
stop "$NS_PID"

#  --- dev: a nameserver and a broker ------------------------------------------
mkfifo "$T/dev.fifo"
"$ZR_BIN" dev --ns-port 0 --port 0 --data "$T/dev" \
    > "$T/dev.fifo" 2> "$T/dev.err" &
DEV_PID=$!
PIDS+=("$DEV_PID")
exec 3< "$T/dev.fifo"
IFS= read -r -t 30 -u 3 line1 || fail "dev: no first line within 30 s"
IFS= read -r -t 30 -u 3 line2 || fail "dev: no second line within 30 s"
cat <&3 > "$T/dev.out" &
exec 3<&-
grep -q "^zrocket dev: group .* listening on tcp://" <<< "$line1" \
    || fail "dev line 1: $line1"
grep -q "^zrocket dev: nameserver listening on tcp://.* (cluster DefaultCluster, beacon off)" <<< "$line2" \
    || fail "dev line 2: $line2"
BROKER=$(grep -o 'tcp://[^ ,]*' <<< "$line1" | head -n 1)
BROKER=${BROKER/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
NS=$(grep -o 'tcp://[^ ,]*' <<< "$line2" | head -n 1)
NS=${NS/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
[ "${NS##*:}" != 9876 ] || fail "--ns-port 0 bound 9876"
N=(--nameserver "$NS")

#  A broker answers TOPIC_CREATE once its nameservers have its new
#  state, so after this create the nameserver surely knows the broker
#  (no waiting on its first heartbeat)
expect_rc 0 "$ZR_BIN" topic create warmup --brokers "$BROKER"
[ "$(cat "$T/last.out")" = "warmup${TAB}8${TAB}created${TAB}$BROKER" ] \
    || fail "topic create --brokers: $(cat "$T/last.out")"

#  cluster: one master, the dev broker
expect_rc 0 "$ZR_BIN" cluster "${N[@]}"
[ "$(wc -l < "$T/last.out")" -eq 1 ] || fail "cluster: $(cat "$T/last.out")"
IFS="$TAB" read -r G ROLE EP EPOCH AGE < "$T/last.out"
[ "$ROLE" = master ] || fail "cluster role: $(cat "$T/last.out")"
[ "$EP" = "$BROKER" ] || fail "cluster endpoint $EP, dev broker at $BROKER"
[[ "$EPOCH" =~ ^[0-9]+$ && "$AGE" =~ ^[0-9]+$ ]] \
    || fail "cluster epoch/age: $(cat "$T/last.out")"

#  topic create through the nameserver, then the route has it at once
expect_rc 0 "$ZR_BIN" topic create orders --queues 3 "${N[@]}"
[ "$(cat "$T/last.out")" = "orders${TAB}3${TAB}created${TAB}$BROKER" ] \
    || fail "topic create: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" route orders "${N[@]}"
[ "$(cut -f1-3 "$T/last.out")" = "$G${TAB}$BROKER${TAB}3" ] \
    || fail "route: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" topic list "${N[@]}"
grep -qx "orders${TAB}3${TAB}1" "$T/last.out" \
    && grep -qx "warmup${TAB}8${TAB}1" "$T/last.out" || fail "topic list: $(cat "$T/last.out")"

#  send and consume through the nameserver
SEND_RE="^SEND_OK${TAB}[0-9a-f]\{32\}${TAB}[0-9]\+${TAB}[0-9]\+\$"
seq 1 20 | sed 's/^/body-/' > "$T/bodies"
expect_rc 0 "$ZR_BIN" send --topic orders "${N[@]}" < "$T/bodies"
[ "$(grep -c "$SEND_RE" "$T/last.out")" -eq 20 ] \
    || fail "send: $(cat "$T/last.out")"
cp "$T/last.out" "$T/acks"
expect_rc 0 "$ZR_BIN" consume --topic orders --from first --count 20 \
    --timeout 10 "${N[@]}"
sort "$T/last.out" | diff - <(sort "$T/bodies") > /dev/null \
    || fail "consume got: $(cat "$T/last.out")"

#  --group commits on the broker: a second run sees only new messages
expect_rc 0 "$ZR_BIN" consume --topic orders --group g1 --from first \
    --count 20 --timeout 10 "${N[@]}"
expect_rc 0 "$ZR_BIN" send --topic orders "${N[@]}" "later"
expect_rc 0 "$ZR_BIN" consume --topic orders --group g1 --count 1 \
    --timeout 10 "${N[@]}"
[ "$(cat "$T/last.out")" = later ] || fail "group run 2: $(cat "$T/last.out")"

#  msg by store id: the nameserver names the group's master
read -r Q O < <(awk -F"$TAB" 'NR == 7 { print $3, $4 }' "$T/acks")
expect_rc 0 "$ZR_BIN" msg "$G:orders:$Q:$O" "${N[@]}"
[ "$(tail -n 1 "$T/last.out")" = body-7 ] || fail "msg: $(cat "$T/last.out")"
expect_rc 1 "$ZR_BIN" msg "nosuchgroup:orders:0:0" "${N[@]}"
one_line_err "nosuchgroup"

#  ZR_NAMESERVER works like --nameserver
ZR_NAMESERVER=$NS expect_rc 0 "$ZR_BIN" route orders
grep -q "^$G${TAB}$BROKER${TAB}3" "$T/last.out" || fail "env route: $(cat "$T/last.out")"
ZR_NAMESERVER=$NS expect_rc 0 "$ZR_BIN" send --topic orders "via env"
grep -q "$SEND_RE" "$T/last.out" || fail "env send: $(cat "$T/last.out")"
#  the flag wins over the environment
ZR_NAMESERVER=tcp://127.0.0.1:1 expect_rc 0 "$ZR_BIN" route orders "${N[@]}"

#  errors name what is missing
expect_rc 1 "$ZR_BIN" route nosuch "${N[@]}"
one_line_err "TOPIC_NOT_FOUND"
expect_rc 1 "$ZR_BIN" consume --topic nosuch --timeout 1 "${N[@]}"
one_line_err "nosuch"
expect_rc 1 "$ZR_BIN" stats "${N[@]}"
one_line_err "needs a broker"
expect_rc 0 "$ZR_BIN" stats --broker "$BROKER"
expect_rc 1 "$ZR_BIN" cluster --broker "$BROKER"
one_line_err "needs a nameserver"

#  a nameserver flag at a dead port: the clear error, exit 1
DEAD=tcp://127.0.0.1:1
for cmd in "cluster" "route orders" "topic list" "send --topic orders x" \
           "consume --topic orders --timeout 1"; do
    # shellcheck disable=SC2086
    expect_rc 1 "$ZR_BIN" $cmd --nameserver "$DEAD" --timeout-ms 300
    grep -q "no nameserver answered at $DEAD" "$T/last.err" \
        || fail "$cmd at a dead nameserver: $(cat "$T/last.err")"
done
ZR_NAMESERVER=$DEAD expect_rc 1 "$ZR_BIN" cluster --timeout-ms 300
one_line_err "no nameserver answered at $DEAD within 300 ms"

#  topic delete through the nameserver
expect_rc 0 "$ZR_BIN" topic delete orders "${N[@]}"
[ "$(cat "$T/last.out")" = "orders${TAB}deleted${TAB}$BROKER" ] \
    || fail "topic delete: $(cat "$T/last.out")"
expect_rc 1 "$ZR_BIN" topic delete orders "${N[@]}"
one_line_err "TOPIC_NOT_FOUND"

stop "$DEV_PID"
grep -q "try: .*--nameserver $NS" "$T/dev.out" \
    || fail "dev hint: $(cat "$T/dev.out")"
echo "test_cli_ns: PASS"
