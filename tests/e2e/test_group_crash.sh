#!/usr/bin/env bash
#  tests/e2e/test_group_crash.sh - consumer groups across crashes, with the
#  command line (`zrocket broker` and `zrocket consume --group`):
#  a. the broker is killed with SIGKILL after a group consumed 120 of 300
#     messages; restarted on the same data, the group's next consume
#     prints exactly the other 180 (no message twice, none lost), and one
#     more consume prints nothing;
#  b. one of two members of a group on an 8-queue topic is killed with
#     SIGKILL while it works; the survivor owns all 8 queues (group
#     status) within 3x (member expiry + lease) of the kill, every
#     message sent after the kill is printed by the survivor, and the
#     union of both outputs holds every message sent. Messages the dead
#     member printed but had not committed may be printed again by the
#     survivor: they are counted and reported, and nothing else may be a
#     duplicate.
#
#  ctest: RUN_SERIAL  (member expiry and lease timings)
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-group-crash.XXXXXX")
PIDS=()
TAB=$'\t'
HB_MS=300
EXPIRY_MS=1500
LEASE_MS=1000
BOUND_MS=$(( 3 * (EXPIRY_MS + LEASE_MS) ))
unset ZR_BROKER ZR_NAMESERVER ZR_CONFIG ZR_NS_BIND ZR_BIND || true

fail () {
    echo "test_group_crash: FAIL: $*" >&2
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
        { wait "$pid" || true; } 2> /dev/null
    done
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms () { date +%s%3N; }

#  expect_rc WANT CMD... : runs CMD (stdout in last.out), checks its status.
expect_rc () {
    local want=$1 rc=0
    shift
    timeout 60 "$@" > "$T/last.out" 2> "$T/last.err" || rc=$?
    [ "$rc" -eq "$want" ] \
        || fail "'$*' exited $rc, expected $want; stderr: $(head -c 300 "$T/last.err")"
}

#  start_broker NAME DATA : starts a broker on DATA with short group
#  timers, waits for its first line, sets BROKER_PID and EP.
start_broker () {
    local name=$1 data=$2
    mkfifo "$T/$name.fifo"
    "$ZR_BIN" broker --data "$data" --bind 'tcp://127.0.0.1:*' \
        --auto-create true --nameserver none \
        --member-heartbeat-ms "$HB_MS" --member-expiry-ms "$EXPIRY_MS" \
        --lease-ms "$LEASE_MS" > "$T/$name.fifo" 2> "$T/$name.err" &
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

#  status GROUP TOPIC : group status into $T/status.out; 0 when it answered.
status () {
    timeout 10 "$ZR_BIN" group status "$1" --topic "$2" --broker "$EP" \
        > "$T/status.out" 2> "$T/status.err"
}

#  Sums of a column (7: lag) over TOPIC's queue lines of status.out.
status_sum () {
    awk -F"$TAB" -v t="$2" -v c="$1" 'NF == 8 && $2 == t { s += $c }
                                      END { print s + 0 }' "$T/status.out"
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

#  === a. broker kill -9 keeps the group's offsets ===========================
start_broker a1 "$T/data-a"
expect_rc 0 "$ZR_BIN" topic create ka --queues 4 --broker "$EP"
seq 1 300 | sed 's/^/a-/' > "$T/a.all"
expect_rc 0 "$ZR_BIN" send --topic ka --broker "$EP" < "$T/a.all"
[ "$(grep -c "^SEND_OK$TAB" "$T/last.out")" -eq 300 ] \
    || fail "send: $(grep -vc "^SEND_OK" "$T/last.out") of 300 not SEND_OK"

expect_rc 0 "$ZR_BIN" consume --topic ka --group GA --from first \
    --count 120 --timeout 20 --broker "$EP"
cp "$T/last.out" "$T/a.first"
[ "$(wc -l < "$T/a.first")" -eq 120 ] \
    || fail "first consume printed $(wc -l < "$T/a.first"), not 120"

kill -KILL "$BROKER_PID"
{ wait "$BROKER_PID" || true; } 2> /dev/null
start_broker a2 "$T/data-a"

#  The committed offsets came back: exactly the other 180
expect_rc 0 "$ZR_BIN" consume --topic ka --group GA --count 180 \
    --timeout 20 --broker "$EP"
cp "$T/last.out" "$T/a.second"
[ "$(wc -l < "$T/a.second")" -eq 180 ] \
    || fail "second consume printed $(wc -l < "$T/a.second"), not 180"
sort "$T/a.first" "$T/a.second" > "$T/a.union"
dups=$(uniq -d "$T/a.union" | wc -l)
[ "$dups" -eq 0 ] \
    || fail "after the broker's kill -9, $dups bodies printed again, e.g. $(uniq -d "$T/a.union" | head -n 3 | tr '\n' ' ')"
diff "$T/a.union" <(sort "$T/a.all") > /dev/null \
    || fail "first 120 + next 180 are not the 300 sent ($(sort -u "$T/a.union" | wc -l) distinct)"
#  and nothing is left: no redelivery, lag 0
expect_rc 0 "$ZR_BIN" consume --topic ka --group GA --timeout 2 --broker "$EP"
[ ! -s "$T/last.out" ] \
    || fail "a third consume printed $(wc -l < "$T/last.out") messages again"
status GA ka || fail "group status after restart: $(cat "$T/status.err")"
[ "$(status_sum 7 ka)" -eq 0 ] && [ "$(status_sum 6 ka)" -eq 300 ] \
    || fail "status after restart: $(cat "$T/status.out")"
echo "test_group_crash: a. broker kill -9: 120 + 180 of 300, no duplicate"
kill -KILL "$BROKER_PID"
{ wait "$BROKER_PID" || true; } 2> /dev/null

#  === b. a member dies without leaving =======================================
start_broker b1 "$T/data-b"
expect_rc 0 "$ZR_BIN" topic create kb --queues 8 --broker "$EP"
G=GB

#  Member A prints into a fifo (to see when it is working), B into a file
mkfifo "$T/ma.fifo"
"$ZR_BIN" consume --topic kb --group "$G" --from first --timeout 60 \
    --broker "$EP" > "$T/ma.fifo" 2> "$T/ma.err" &
PID_A=$!
PIDS+=("$PID_A")
exec 4< "$T/ma.fifo"
"$ZR_BIN" consume --topic kb --group "$G" --from first --timeout 60 \
    --broker "$EP" > "$T/mb.out" 2> "$T/mb.err" &
PID_B=$!
PIDS+=("$PID_B")

#  Both members own queues (status polled up to a deadline)
deadline=$(( $(now_ms) + 20000 ))
owners=0
while [ "$(now_ms)" -lt "$deadline" ]; do
    status "$G" kb || continue
    owners=$(awk -F"$TAB" 'NF == 8 && $2 == "kb" && $4 != "-" { print $4 }' \
        "$T/status.out" | sort -u | wc -l)
    owned=$(awk -F"$TAB" 'NF == 8 && $2 == "kb" && $4 != "-"' \
        "$T/status.out" | wc -l)
    [ "$owners" -eq 2 ] && [ "$owned" -eq 8 ] && break
done
[ "$owners" -eq 2 ] || fail "two members never shared kb: $(cat "$T/status.out")"

#  Batch 1; A is killed as soon as it has printed one message (it commits
#  every second, so what it printed since may come again from B)
seq 1 200 | sed 's/^/p1-/' > "$T/batch1"
expect_rc 0 "$ZR_BIN" send --topic kb --broker "$EP" < "$T/batch1"
IFS= read -r -t 30 -u 4 first_a || fail "member A printed nothing in 30 s"
kill -KILL "$PID_A"
T_KILL=$(now_ms)
{ wait "$PID_A" || true; } 2> /dev/null
{ echo "$first_a"; timeout 10 cat <&4; } > "$T/ma.out" || true
exec 4<&-
na=$(wc -l < "$T/ma.out")

#  Batch 2, sent after the kill: some of it waits on A's queues
seq 1 200 | sed 's/^/p2-/' > "$T/batch2"
expect_rc 0 "$ZR_BIN" send --topic kb --broker "$EP" < "$T/batch2"

#  The survivor owns all 8 within the bound
deadline=$(( T_KILL + BOUND_MS + 10000 ))
taken=
while [ "$(now_ms)" -lt "$deadline" ]; do
    status "$G" kb || continue
    members=$(awk -F"$TAB" 'NF == 5 && $1 != "BROKER" { print $2 }' \
        "$T/status.out")
    owners=$(awk -F"$TAB" 'NF == 8 && $2 == "kb" { print $4 }' \
        "$T/status.out" | sort -u)
    if [ "$(wc -l <<< "$members")" -eq 1 ] && [ -n "$members" ] \
        && [ "$owners" = "$members" ]; then
        taken=$(now_ms)
        break
    fi
done
[ -n "$taken" ] || fail "the survivor never owned all 8 queues: $(cat "$T/status.out")"
took=$(( taken - T_KILL ))
echo "test_group_crash: b. survivor owns all 8 queues ${took} ms after the kill (bound ${BOUND_MS} ms)"
[ "$took" -le "$BOUND_MS" ] \
    || fail "takeover took ${took} ms, more than 3x (expiry ${EXPIRY_MS} + lease ${LEASE_MS}) = ${BOUND_MS} ms"

#  Everything consumed and committed: lag 0 (deadline)
deadline=$(( $(now_ms) + 20000 ))
lag=-1
while [ "$(now_ms)" -lt "$deadline" ]; do
    status "$G" kb || continue
    lag=$(status_sum 7 kb)
    [ "$lag" -eq 0 ] && [ "$(status_sum 6 kb)" -eq 400 ] && break
done
[ "$lag" -eq 0 ] || fail "lag stays $lag: $(cat "$T/status.out")"
kill -INT "$PID_B"
timeout 30 tail --pid="$PID_B" -f /dev/null \
    || fail "member B still running 30 s after SIGINT"
rc=0
wait "$PID_B" || rc=$?
[ "$rc" -eq 0 ] || fail "member B exited $rc after SIGINT"
nb=$(wc -l < "$T/mb.out")

#  B printed every message of batch 2; together they printed all 400
missing2=$(comm -23 <(sort "$T/batch2") <(sort -u "$T/mb.out") | wc -l)
[ "$missing2" -eq 0 ] \
    || fail "$missing2 messages sent after the kill not printed by the survivor, e.g. $(comm -23 <(sort "$T/batch2") <(sort -u "$T/mb.out") | head -n 3 | tr '\n' ' ')"
sort "$T/ma.out" "$T/mb.out" > "$T/union"
missing=$(comm -23 <(sort "$T/batch1" "$T/batch2") <(sort -u "$T/union") | wc -l)
[ "$missing" -eq 0 ] \
    || fail "$missing messages lost, e.g. $(comm -23 <(sort "$T/batch1" "$T/batch2") <(sort -u "$T/union") | head -n 3 | tr '\n' ' ')"
extra=$(comm -13 <(sort "$T/batch1" "$T/batch2") <(sort -u "$T/union") | wc -l)
[ "$extra" -eq 0 ] || fail "$extra lines that were never sent"
#  A member never prints one message twice; a duplicate is a message A
#  printed (not committed) that B printed again
[ -z "$(sort "$T/ma.out" | uniq -d)" ] || fail "A printed a message twice"
[ -z "$(sort "$T/mb.out" | uniq -d)" ] || fail "B printed a message twice"
uniq -d "$T/union" > "$T/dups"
dups=$(wc -l < "$T/dups")
echo "test_group_crash: b. A printed $na, B $nb; $dups duplicates (printed by A, not committed before its kill, printed again by B)"
[ "$dups" -eq 0 ] \
    || echo "test_group_crash: b. duplicates: $(head -n 20 "$T/dups" | tr '\n' ' ')"
[ "$dups" -le "$na" ] || fail "more duplicates ($dups) than A printed ($na)"

echo "test_group_crash: PASS"
