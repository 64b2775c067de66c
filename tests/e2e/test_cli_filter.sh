#!/usr/bin/env bash
#  tests/e2e/test_cli_filter.sh - broker-side filtering from the command
#  line, through `zrocket dev` (a nameserver and a broker):
#  - `zrocket send --tag T --prop n=N --prop color=C` of 14 messages;
#  - `consume --tags 'A || B'` and `--sql "n > 50 AND color = 'red'"`
#    print exactly the matching bodies, without and with --group (and
#    through the nameserver);
#  - a malformed expression exits 2 with one stderr line that names the
#    broker's position, before anything is printed, with and without
#    --group; --tags with --sql is a usage error;
#  - `topic create --retention-ms/--retention-bytes` (and their errors).
#
#  ctest sets ZR_BIN.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-cli-filter.XXXXXX")
PIDS=()
unset ZR_BROKER ZR_NAMESERVER ZR_CONFIG ZR_NS_BIND ZR_BIND || true

fail () {
    echo "test_cli_filter: FAIL: $*" >&2
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

#  same_lines FILE WHAT: last.out holds FILE's lines, in any order.
same_lines () {
    diff <(sort "$1") <(sort "$T/last.out") > "$T/diff.txt" \
        || fail "$2: printed lines differ from the expected:
$(cat "$T/diff.txt")"
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"

#  --- help and usage errors (no fabric needed) ------------------------------
expect_rc 0 "$ZR_BIN" consume --help
grep -q -- "--sql EXPR" "$T/last.out" && grep -q -- "--tags EXPR" "$T/last.out" \
    || fail "consume --help does not document --tags and --sql"
expect_rc 2 "$ZR_BIN" consume --topic t --tags A --sql 'n > 1' \
    --broker tcp://127.0.0.1:1
one_line_err "not both"
expect_rc 0 "$ZR_BIN" topic --help
grep -q -- "--retention-ms" "$T/last.out" \
    || fail "topic --help does not document --retention-ms"
expect_rc 2 "$ZR_BIN" topic create t --retention-ms -5
one_line_err "out of range"
expect_rc 2 "$ZR_BIN" topic list --retention-bytes 10
one_line_err "create only"

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
B=(--broker "$BROKER")
TOPIC=ft

#  Retention on create, and changed by a second create
expect_rc 0 "$ZR_BIN" topic create "$TOPIC" --queues 3 \
    --retention-ms 3600000 --retention-bytes 0 --brokers "$BROKER"
grep -q "^$TOPIC" "$T/last.out" || fail "topic create: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" topic create "$TOPIC" --queues 3 \
    --retention-ms 7200000 --brokers "$BROKER"
grep -q "exists" "$T/last.out" || fail "second create: $(cat "$T/last.out")"

#  --- messages ---------------------------------------------------------------
#  i = 1..12: tag A, B, C in turn, n = 10 i, red when i is even
: > "$T/tags_ab"
: > "$T/sql_match"
for i in $(seq 1 12); do
    tag=$(printf 'ABC' | cut -c $(( (i - 1) % 3 + 1 )))
    n=$(( i * 10 ))
    color=blue
    [ $(( i % 2 )) -eq 0 ] && color=red
    body="m$i-$tag-n$n-$color"
    expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" --tag "$tag" \
        --prop "n=$n" --prop "color=$color" "${B[@]}" "$body"
    [ "$tag" != C ] && echo "$body" >> "$T/tags_ab"
    [ "$n" -gt 50 ] && [ "$color" = red ] && echo "$body" >> "$T/sql_match"
done
#  No n: UNKNOWN, never matches the SQL; n not a number: UNKNOWN too
expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" --tag A --prop color=red \
    "${B[@]}" "no-n-A-red"
echo "no-n-A-red" >> "$T/tags_ab"
expect_rc 0 "$ZR_BIN" send --topic "$TOPIC" --prop n=abc --prop color=red \
    "${B[@]}" "n-abc-untagged-red"
[ "$(wc -l < "$T/sql_match")" -eq 4 ] || fail "test setup: sql_match"
[ "$(wc -l < "$T/tags_ab")" -eq 9 ] || fail "test setup: tags_ab"

#  Unfiltered: all 14
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    "${B[@]}"
[ "$(wc -l < "$T/last.out")" -eq 14 ] \
    || fail "unfiltered consume printed $(wc -l < "$T/last.out") lines"

#  --- filters without a group -------------------------------------------------
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --tags 'A || B' "${B[@]}"
same_lines "$T/tags_ab" "--tags 'A || B'"
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --sql "n > 50 AND color = 'red'" "${B[@]}"
same_lines "$T/sql_match" "--sql"
#  --count stops after N matching ones
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --from first --count 9 \
    --tags 'B||A' "${B[@]}"
same_lines "$T/tags_ab" "--tags --count 9"
#  Through the nameserver
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --sql "n > 50 AND color = 'red'" --nameserver "$NS"
same_lines "$T/sql_match" "--sql through the nameserver"
#  A tag that no message has: nothing, exit 0
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --tags 'Z' "${B[@]}"
[ ! -s "$T/last.out" ] || fail "--tags Z printed: $(cat "$T/last.out")"

#  --- malformed expressions ---------------------------------------------------
expect_rc 2 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --sql "n > " "${B[@]}"
one_line_err "position 5"
[ ! -s "$T/last.out" ] || fail "bad --sql printed: $(cat "$T/last.out")"
expect_rc 2 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --sql "n > 50 AND (color = 'red'" "${B[@]}"
one_line_err "position [0-9]*:"
expect_rc 2 "$ZR_BIN" consume --topic "$TOPIC" --from first --timeout 1 \
    --sql "n >> 3" --nameserver "$NS"
one_line_err "position [0-9]*:"
expect_rc 2 "$ZR_BIN" consume --topic "$TOPIC" --group gbad --from first \
    --timeout 1 --sql "color = 'red" "${B[@]}"
one_line_err "position [0-9]*:"
[ ! -s "$T/last.out" ] || fail "bad --sql --group printed: $(cat "$T/last.out")"

#  --- with a group -----------------------------------------------------------
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group g1 --from first \
    --timeout 3 --sql "n > 50 AND color = 'red'" "${B[@]}"
same_lines "$T/sql_match" "--sql --group g1"
#  The group has them all: a second run prints nothing
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group g1 --from first \
    --timeout 2 --sql "n > 50 AND color = 'red'" "${B[@]}"
[ ! -s "$T/last.out" ] || fail "second --group run printed: $(cat "$T/last.out")"
expect_rc 0 "$ZR_BIN" consume --topic "$TOPIC" --group g2 --from first \
    --count 9 --tags 'A || B' --nameserver "$NS"
same_lines "$T/tags_ab" "--tags --group g2 through the nameserver"

echo "test_cli_filter: OK"
