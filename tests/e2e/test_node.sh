#!/usr/bin/env bash
#  tests/e2e/test_node.sh - the Node.js example client against a real
#  broker, and interop with the zrocket CLI in both directions.
#
#  ctest sets ZR_BIN (the zrocket executable) and ZR_SOURCE_DIR. Needs node
#  and npm, and the npm registry (or a warm npm cache): `npm ci` installs
#  the locked dependencies into a copy of examples/node in the test's temp
#  dir, so the source tree is left alone. No npm is a failure, not a skip.
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"
: "${ZR_SOURCE_DIR:?ZR_SOURCE_DIR must point at the source tree}"
N=1000

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-node.XXXXXX")
EX="$T/node"
BROKER_PID=
DRAIN_PID=

fail () {
    echo "test_node: FAIL: $*" >&2
    if [ -s "$T/broker.err" ]; then
        echo "--- broker stderr (last 20 lines) ---" >&2
        tail -n 20 "$T/broker.err" >&2
    fi
    exit 1
}

#  Stops the broker with SIGTERM, waiting at most 15 s, then SIGKILL.
#  Sets BROKER_RC to its exit status.
stop_broker () {
    BROKER_RC=
    if [ -n "$BROKER_PID" ] && kill -0 "$BROKER_PID" 2>/dev/null; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        timeout 15 tail --pid="$BROKER_PID" -f /dev/null || true
        if kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "test_node: broker did not stop on SIGTERM; killing" >&2
            kill -KILL "$BROKER_PID" 2>/dev/null || true
        fi
    fi
    if [ -n "$BROKER_PID" ]; then
        BROKER_RC=0
        wait "$BROKER_PID" 2>/dev/null || BROKER_RC=$?
    fi
    BROKER_PID=
    if [ -n "$DRAIN_PID" ]; then
        wait "$DRAIN_PID" 2>/dev/null || true
        DRAIN_PID=
    fi
}

cleanup () {
    stop_broker
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"
command -v node > /dev/null || fail "node is not installed"
command -v npm > /dev/null || fail "npm is not installed"

#  Install the locked dependencies into a copy of the example.
mkdir "$EX"
cp "$ZR_SOURCE_DIR"/examples/node/{package.json,package-lock.json,*.js} "$EX/"
( cd "$EX" && timeout 300 npm ci --no-audit --no-fund --loglevel=error ) \
    > "$T/npm.log" 2>&1 || { cat "$T/npm.log" >&2; fail "npm ci failed"; }
( cd "$EX" && node -e 'require("zeromq"); require("@msgpack/msgpack")' ) \
    || fail "zeromq or @msgpack/msgpack does not load after npm ci"

#  Start the broker. Its stdout goes through a FIFO so that we can block
#  (with a deadline) until it prints the "listening on" line; a drain
#  then copies the rest to broker.out so the broker never blocks on it.
mkfifo "$T/broker.fifo"
"$ZR_BIN" broker --data "$T/data" --bind 'tcp://127.0.0.1:*' \
    --auto-create true > "$T/broker.fifo" 2> "$T/broker.err" &
BROKER_PID=$!
exec 3< "$T/broker.fifo"
ENDPOINT=
deadline=$((SECONDS + 30))
while [ -z "$ENDPOINT" ]; do
    left=$((deadline - SECONDS))
    [ "$left" -gt 0 ] || fail "broker printed no 'listening on' line in 30 s"
    IFS= read -r -t "$left" -u 3 line \
        || fail "broker exited or went silent before listening"
    echo "$line" >> "$T/broker.out"
    case "$line" in
        *" listening on "*)
            ENDPOINT=$(grep -o 'tcp://[^ ,]*' <<< "$line" | head -n 1) \
                || fail "no tcp endpoint in: $line"
            ;;
    esac
done
cat <&3 >> "$T/broker.out" &
DRAIN_PID=$!
exec 3<&-
#  A wildcard address is not one to connect to.
ENDPOINT=${ENDPOINT/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
ENDPOINT=${ENDPOINT/tcp:\/\/\*:/tcp://127.0.0.1:}
echo "test_node: broker pid $BROKER_PID at $ENDPOINT"

#  Checks a producer's output file: $2 lines, all SEND_OK, distinct ids,
#  distinct (queue, offset) pairs.
check_sends () {
    local file=$1 count=$2
    [ "$(wc -l < "$file")" -eq "$count" ] \
        || fail "$file: $(wc -l < "$file") lines, expected $count"
    if grep -qv '^SEND_OK [0-9a-f]\{32\} [0-9]\+ [0-9]\+$' "$file"; then
        fail "$file has lines other than 'SEND_OK id queue offset': $(grep -v '^SEND_OK' "$file" | head -n 3 | tr '\n' ' ')"
    fi
    [ "$(cut -d' ' -f2 "$file" | sort -u | wc -l)" -eq "$count" ] \
        || fail "$file: message ids are not unique"
    [ "$(cut -d' ' -f3,4 "$file" | sort -u | wc -l)" -eq "$count" ] \
        || fail "$file: (queue, offset) pairs are not unique"
}

#  Asserts that the bodies in $2 are exactly those in $1, as sets.
same_bodies () {
    sort "$1" > "$T/a.sorted"
    sort "$2" > "$T/b.sorted"
    diff -q "$T/a.sorted" "$T/b.sorted" > /dev/null \
        || fail "$3: bodies differ ($(wc -l < "$1") sent, $(wc -l < "$2") received; first differences: $(diff "$T/a.sorted" "$T/b.sorted" | head -n 4 | tr '\n' ' '))"
}

RUN=$$-$RANDOM

#  1. Node producer -> Node consumer, N messages, auto-created topic.
TOPIC=js-$RUN
seq 0 $((N - 1)) | sed "s/^/js-body-$RUN-/" > "$T/sent1"
timeout 120 node "$EX/producer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --count "$N" --body-prefix "js-body-$RUN-" > "$T/prod1" \
    || fail "producer.js exited $?"
check_sends "$T/prod1" "$N"
timeout 120 node "$EX/consumer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --from first --count "$N" --timeout 20 > "$T/recv1" \
    || fail "consumer.js exited $?"
same_bodies "$T/sent1" "$T/recv1" "node -> node"
echo "test_node: node -> node: $N messages OK"

#  2. The consumer runs out of messages: idle timeout exits 2 after
#     printing all N.
rc=0
timeout 60 node "$EX/consumer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --count $((N + 1)) --timeout 1 --wait 200 > "$T/recv2" 2> "$T/recv2.err" \
    || rc=$?
[ "$rc" -eq 2 ] || fail "consumer.js past the end exited $rc, expected 2"
grep -q "idle" "$T/recv2.err" || fail "idle consumer did not say why it stopped"
same_bodies "$T/sent1" "$T/recv2" "idle consumer"

#  3. --create with a queue count, bodies from stdin (with spaces).
TOPIC=jsc-$RUN
seq 0 99 | sed "s/^/stdin body $RUN /" > "$T/sent3"
timeout 60 node "$EX/producer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --create --queues 3 < "$T/sent3" > "$T/prod3" \
    || fail "producer.js --create exited $?"
check_sends "$T/prod3" 100
if cut -d' ' -f3 "$T/prod3" | grep -qv '^[012]$'; then
    fail "--queues 3 topic got a queue outside 0..2"
fi
timeout 60 node "$EX/consumer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --count 100 --timeout 20 > "$T/recv3" || fail "consumer.js exited $?"
same_bodies "$T/sent3" "$T/recv3" "stdin bodies"
echo "test_node: --create and stdin bodies OK"

#  4. zrocket send -> Node consumer.
TOPIC=cli2js-$RUN
seq 0 $((N - 1)) | sed "s/^/cli-body-$RUN-/" > "$T/sent4"
timeout 120 "$ZR_BIN" send --broker "$ENDPOINT" --topic "$TOPIC" \
    < "$T/sent4" > "$T/prod4" || fail "zrocket send exited $?"
timeout 120 node "$EX/consumer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --from first --count "$N" --timeout 20 > "$T/recv4" \
    || fail "consumer.js after zrocket send exited $?"
same_bodies "$T/sent4" "$T/recv4" "zrocket send -> node"
echo "test_node: zrocket send -> node: $N messages OK"

#  5. Node producer -> zrocket consume.
TOPIC=js2cli-$RUN
seq 0 $((N - 1)) | sed "s/^/to-cli-$RUN-/" > "$T/sent5"
timeout 120 node "$EX/producer.js" --broker "$ENDPOINT" --topic "$TOPIC" \
    --count "$N" --body-prefix "to-cli-$RUN-" > "$T/prod5" \
    || fail "producer.js exited $?"
check_sends "$T/prod5" "$N"
timeout 120 "$ZR_BIN" consume --broker "$ENDPOINT" --topic "$TOPIC" \
    --from first --count "$N" > "$T/recv5" \
    || fail "zrocket consume exited $?"
same_bodies "$T/sent5" "$T/recv5" "node -> zrocket consume"
echo "test_node: node -> zrocket consume: $N messages OK"

#  6. The broker stops cleanly on SIGTERM.
stop_broker
[ "$BROKER_RC" = 0 ] || fail "broker exited $BROKER_RC on SIGTERM"
echo "test_node: PASS"
