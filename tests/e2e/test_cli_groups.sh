#!/usr/bin/env bash
#  tests/e2e/test_cli_groups.sh - consumer groups from the command line,
#  through `zrocket dev` (a nameserver and a broker):
#  - two `zrocket consume --group G` processes on one topic split its
#    queues: each of 200 messages is printed by exactly one of them;
#  - `group status G` afterwards: committed == max (lag 0) on every queue;
#  - `group reset G --to first|last|TIME` and a single consume after it;
#  - `dlq list` of a group with no dead letters prints nothing;
#  - a dead letter (parked with a protocol-level SEND_BACK dlq=true from
#    /usr/bin/python3, when it has zmq and msgpack) is listed by
#    `dlq list`, resent by `dlq resend ID`, and consumed again;
#  - --help of group and dlq, and their usage errors.
#
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-cli-groups.XXXXXX")
PIDS=()
TAB=$'\t'
unset ZR_BROKER ZR_NAMESERVER ZR_CONFIG ZR_NS_BIND ZR_BIND || true

fail () {
    echo "test_cli_groups: FAIL: $*" >&2
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

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

#  --- help and usage errors (no fabric needed) ------------------------------
expect_rc 0 "$ZR_BIN" group --help
grep -q "usage: zrocket group status GROUP" "$T/last.out" \
    || fail "group --help: $(head -n 3 "$T/last.out")"
grep -q "OWNER<TAB>COMMITTED<TAB>MAX<TAB>LAG<TAB>OLDEST_AGE_MS" "$T/last.out" \
    || fail "group --help does not document the queue table"
expect_rc 0 "$ZR_BIN" dlq --help
grep -q "ORIGIN_TOPIC" "$T/last.out" || fail "dlq --help lacks the format"
expect_rc 0 "$ZR_BIN" --help
grep -q "^  group " "$T/last.out" && grep -q "^  dlq " "$T/last.out" \
    || fail "zrocket --help does not list group and dlq"
expect_rc 2 "$ZR_BIN" group
one_line_err "status or reset"
expect_rc 2 "$ZR_BIN" group frobnicate g
one_line_err "unknown subcommand"
expect_rc 2 "$ZR_BIN" group status 'no spaces'
one_line_err "not a group name"
expect_rc 2 "$ZR_BIN" group reset g --topic t
one_line_err "to is required"
expect_rc 2 "$ZR_BIN" group reset g --to first
one_line_err "topic is required"
expect_rc 2 "$ZR_BIN" group reset g --topic t --to yesterday
one_line_err "'yesterday'"
expect_rc 2 "$ZR_BIN" group status g --to first
one_line_err "reset only"
expect_rc 2 "$ZR_BIN" group status g --topic 'a b'
one_line_err "not a topic name"
expect_rc 2 "$ZR_BIN" dlq
one_line_err "list or resend"
expect_rc 2 "$ZR_BIN" dlq list
one_line_err "needs a GROUP"
expect_rc 2 "$ZR_BIN" dlq resend g not-an-id
one_line_err "not a message id"
expect_rc 2 "$ZR_BIN" dlq list g --max 0
one_line_err "out of range"

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
BROKER=$(grep -o 'tcp://[^ ,]*' <<< "$line1" | head -n 1)
BROKER=${BROKER/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
NS=$(grep -o 'tcp://[^ ,]*' <<< "$line2" | head -n 1)
NS=${NS/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
[ -n "$BROKER" ] && [ -n "$NS" ] || fail "dev lines: $line1 / $line2"
N=(--nameserver "$NS")
TOPIC=gt
G=g1

#  The broker answers TOPIC_CREATE once the nameserver has the route
expect_rc 0 "$ZR_BIN" topic create "$TOPIC" --queues 8 --brokers "$BROKER"
expect_rc 0 "$ZR_BIN" cluster "${N[@]}"
BGROUP=$(cut -f1 "$T/last.out")
[ -n "$BGROUP" ] || fail "cluster: $(cat "$T/last.out")"

#  An unknown group: no members, no queues; no dead letters
expect_rc 0 "$ZR_BIN" group status nobody "${N[@]}"
printf 'BROKER\tCLIENT_ID\tTOPICS\tMODE\tAGE_MS\n\nBROKER\tTOPIC\tQUEUE\tOWNER\tCOMMITTED\tMAX\tLAG\tOLDEST_AGE_MS\n' \
    | diff - "$T/last.out" > /dev/null \
    || fail "status of an unknown group: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" dlq list nobody "${N[@]}"
[ ! -s "$T/last.out" ] || fail "dlq list of a group with none: $(cat "$T/last.out")"
#  also with the broker only
expect_rc 0 "$ZR_BIN" dlq list nobody --broker "$BROKER"
[ ! -s "$T/last.out" ] || fail "dlq list --broker: $(cat "$T/last.out")"

#  --- two members split the queues -------------------------------------------
seq 1 200 | sed 's/^/body-/' > "$T/all"
head -n 100 "$T/all" > "$T/first100"
tail -n 100 "$T/all" > "$T/last100"
T0=$(date +%s%3N)

#  Both start before anything is sent, --from first. The first to join
#  may take every queue and print some of the first 100 messages before
#  the second joins; the rebalance then hands half of the queues over.
#  A handover does not redeliver: the old owner finishes the message in
#  its handler, commits and releases the lease (UNLOCK with the offset),
#  and only then can the new owner take the queue (LOCK answers
#  LEASE_HELD until then) and start at the committed offset. Both stop
#  cleanly (idle timeout: commit, release, leave), so the bound on
#  duplicates is 0 here; a crashed member (lease expiry) is where
#  duplicates can happen, and that is not this test.
IDLE=8
for m in a b; do
    "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --from first \
        --timeout "$IDLE" "${N[@]}" > "$T/$m.out" 2> "$T/$m.err" &
    PIDS+=($!)
    eval "PID_$m=$!"
done
expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" "${N[@]}" < "$T/first100"

#  Wait (deadline 20 s, several times the 2 s rebalance bound) until the
#  group status shows two members each owning queues of the topic; the
#  status query itself is the wait, no sleeping.
deadline=$(( $(date +%s) + 20 ))
owners=0
while [ "$(date +%s)" -lt "$deadline" ]; do
    timeout 10 "$ZR_BIN" group status "$G" "${N[@]}" > "$T/status.out" \
        2> "$T/status.err" || continue
    owners=$(awk -F"$TAB" -v t="$TOPIC" 'NF == 8 && $2 == t && $4 != "-" { print $4 }' \
        "$T/status.out" | sort -u | wc -l)
    [ "$owners" -ge 2 ] && break
done
[ "$owners" -ge 2 ] \
    || fail "the two members never owned queues at the same time: $(cat "$T/status.out")"
members=$(awk -F"$TAB" 'NF == 5 && $1 != "BROKER"' "$T/status.out" | wc -l)
[ "$members" -eq 2 ] || fail "status shows $members members: $(cat "$T/status.out")"
awk -F"$TAB" -v t="$TOPIC" 'NF == 5 && $1 != "BROKER" && ($3 != t || $4 != "clustering") { bad = 1 } END { exit bad }' \
    "$T/status.out" || fail "member lines: $(cat "$T/status.out")"

expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" "${N[@]}" < "$T/last100"
for m in a b; do
    pid_var="PID_$m"
    rc=0
    timeout 60 tail --pid="${!pid_var}" -f /dev/null \
        || fail "consumer $m still running 60 s after the last send"
    wait "${!pid_var}" || rc=$?
    [ "$rc" -eq 0 ] || fail "consumer $m exited $rc"
done
na=$(wc -l < "$T/a.out")
nb=$(wc -l < "$T/b.out")
cat "$T/a.out" "$T/b.out" | sort > "$T/union"
dups=$(uniq -d "$T/union" | wc -l)
echo "test_cli_groups: member a printed $na, member b $nb, duplicates $dups"
[ "$dups" -eq 0 ] || fail "$dups bodies printed twice: $(uniq -d "$T/union" | head -n 5)"
sort -u "$T/union" | diff - <(sort "$T/all") > /dev/null \
    || fail "union of the two members is not the 200 bodies ($(sort -u "$T/union" | wc -l) distinct)"
[ "$na" -gt 0 ] && [ "$nb" -gt 0 ] || fail "one member printed nothing (a $na, b $nb)"
#  per queue order: each member's bodies of one queue are increasing; the
#  sender spreads over queues, so check the global property that matters:
#  nothing printed twice (above) and nothing missing (above).

#  --- status after they finished: lag 0 --------------------------------------
#  (no member is left, so the broker lists no topic: --topic asks for one)
expect_rc 0 "$ZR_BIN" group status "$G" --topic "$TOPIC" "${N[@]}"
cp "$T/last.out" "$T/status.out"
members=$(awk -F"$TAB" 'NF == 5 && $1 != "BROKER"' "$T/status.out" | wc -l)
[ "$members" -eq 0 ] || fail "members left behind: $(cat "$T/status.out")"
qlines=$(awk -F"$TAB" -v t="$TOPIC" 'NF == 8 && $2 == t' "$T/status.out" | wc -l)
[ "$qlines" -eq 8 ] || fail "status shows $qlines queues of $TOPIC: $(cat "$T/status.out")"
awk -F"$TAB" -v t="$TOPIC" -v b="$BGROUP" 'NF == 8 && $2 == t && ($1 != b || $5 != $6 || $7 != 0 || $8 != 0) { bad = 1 } END { exit bad }' \
    "$T/status.out" || fail "committed != max or lag != 0: $(cat "$T/status.out")"
total=$(awk -F"$TAB" -v t="$TOPIC" 'NF == 8 && $2 == t { s += $6 } END { print s + 0 }' "$T/status.out")
[ "$total" -eq 200 ] || fail "max offsets sum to $total, not 200"

#  --- reset ---------------------------------------------------------------------
expect_rc 0 "$ZR_BIN" group reset "$G" --topic "$TOPIC" --to first "${N[@]}"
[ "$(cat "$T/last.out")" = "$BGROUP${TAB}8" ] || fail "reset first: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" group status "$G" --topic "$TOPIC" --broker "$BROKER"
lag=$(awk -F"$TAB" -v t="$TOPIC" 'NF == 8 && $2 == t { s += $7 } END { print s + 0 }' "$T/last.out")
[ "$lag" -eq 200 ] || fail "lag after reset to first is $lag: $(cat "$T/last.out")"
#  a single member gets all 200 again (default --from last does not apply:
#  the group has offsets)
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --count 200 \
    --timeout 10 "${N[@]}"
sort "$T/last.out" | diff - <(sort "$T/all") > /dev/null \
    || fail "consume after reset: $(wc -l < "$T/last.out") lines"

expect_rc 0 "$ZR_BIN" group reset "$G" --topic "$TOPIC" --to "$T0" "${N[@]}"
[ "$(cat "$T/last.out")" = "$BGROUP${TAB}8" ] || fail "reset TIME: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --count 200 \
    --timeout 10 "${N[@]}"
sort "$T/last.out" | diff - <(sort "$T/all") > /dev/null \
    || fail "consume after reset to a time before the sends: $(wc -l < "$T/last.out") lines"

expect_rc 0 "$ZR_BIN" group reset "$G" --topic "$TOPIC" --to last --broker "$BROKER"
[ "$(cat "$T/last.out")" = "$BGROUP${TAB}8" ] || fail "reset last: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --timeout 1 "${N[@]}"
[ ! -s "$T/last.out" ] || fail "consume after reset to last printed $(wc -l < "$T/last.out")"

expect_rc 1 "$ZR_BIN" group reset "$G" --topic nosuchtopic --to first "${N[@]}"
one_line_err "nosuchtopic"

#  --count stops exactly: 3 of 5 new messages, the group's next run the rest
seq 1 5 | sed 's/^/more-/' > "$T/more"
expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" --queue 2 "${N[@]}" < "$T/more"
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --count 3 \
    --timeout 10 "${N[@]}"
head -n 3 "$T/more" | diff - "$T/last.out" > /dev/null \
    || fail "--count 3 printed: $(cat "$T/last.out")"
expect_rc 2 "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --count 3 \
    --timeout 2 "${N[@]}"
tail -n 2 "$T/more" | diff - "$T/last.out" > /dev/null \
    || fail "the rest after --count: $(cat "$T/last.out")"

#  --- a dead letter, made at protocol level ---------------------------------------
PY=/usr/bin/python3
if ! "$PY" -c 'import zmq, msgpack' 2> /dev/null; then
    echo "test_cli_groups: no zmq/msgpack in $PY: dead-letter flow not checked"
    echo "test_cli_groups: PASS"
    exit 0
fi
expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" --queue 5 "${N[@]}" "poison body"
IFS="$TAB" read -r _ MID _ POFF < "$T/last.out"
timeout 30 "$PY" - "$BROKER" "$G" "$TOPIC" 5 "$POFF" > "$T/py.out" 2> "$T/py.err" <<'EOF' || fail "SEND_BACK: $(cat "$T/py.out" "$T/py.err")"
import sys, zmq, msgpack
ep, group, topic, queue, offset = sys.argv[1:6]
s = zmq.Context().socket(zmq.DEALER)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 10000)
s.connect(ep)
s.send(msgpack.packb({"v": 1, "cmd": "SEND_BACK", "rid": 1, "group": group,
                      "topic": topic, "queue": int(queue),
                      "offset": int(offset), "error": "bad\tinput",
                      "dlq": True}))
while True:
    rep = msgpack.unpackb(s.recv_multipart()[0], raw=False)
    if rep.get("type") == "reply" and rep.get("rid") == 1:
        break
print(rep)
sys.exit(0 if rep.get("status") == "OK" and rep.get("dlq") else 1)
EOF
expect_rc 0 "$ZR_BIN" dlq list "$G" "${N[@]}"
[ "$(wc -l < "$T/last.out")" -eq 1 ] || fail "dlq list: $(cat "$T/last.out")"
[ "$(cat "$T/last.out")" = "$MID${TAB}$TOPIC${TAB}5${TAB}$POFF${TAB}1${TAB}bad input${TAB}poison body" ] \
    || fail "dlq list line: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" dlq resend "$G" 0123456789abcdef0123456789abcdef "${N[@]}"
[ "$(cat "$T/last.out")" = 0 ] || fail "dlq resend of an unknown id: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" dlq resend "$G" "$MID" "${N[@]}"
[ "$(cat "$T/last.out")" = 1 ] || fail "dlq resend: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" dlq list "$G" "${N[@]}"
[ ! -s "$T/last.out" ] || fail "dlq list after resend: $(cat "$T/last.out")"
#  the group gets it again through its retry topic (the original was
#  consumed already: the group is at the end of $TOPIC)
expect_rc 0 "$ZR_BIN" group reset "$G" --topic "$TOPIC" --to last "${N[@]}"
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group "$G" --count 1 \
    --timeout 10 "${N[@]}"
[ "$(cat "$T/last.out")" = "poison body" ] \
    || fail "resent message not consumed: $(cat "$T/last.out")"

echo "test_cli_groups: PASS"
