#  tests/e2e/shlib.sh - helpers shared by the shell tests that run real
#  zrocket processes (sourced, not a test). The caller sets TEST (its
#  name, for messages and its temp dir) and `set -euo pipefail`; ctest
#  sets ZR_BIN. Gives:
#    T           a fresh temp dir, removed at exit (ZR_TEST_KEEP=1 keeps it)
#    PIDS        processes killed at exit (start adds to it)
#    TAB         a tab
#    fail MSG    prints MSG and the last 15 lines of every $T/*.err, exits 1
#    start NAME CMD...  runs CMD (stdout on a fifo, stderr in
#                $T/NAME.err), waits 30 s for its first line, sets PID and
#                EP (the first tcp:// endpoint in that line)
#    stat EP KEY one value of `zrocket stats --broker EP`
#    wait_log FILE TEXT SECONDS  waits for a line holding TEXT in FILE
#    pick_port   sets PORT to a port P with P..P+2 free, away from the
#                range `tcp://127.0.0.1:*` binds take (49152 up), so a
#                killed broker's port is not at once another test's

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"
: "${TEST:?TEST must name the test}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-$TEST.XXXXXX")
PIDS=()
TAB=$'\t'

fail () {
    echo "$TEST: FAIL: $*" >&2
    for f in "$T"/*.err; do
        [ -s "$f" ] || continue
        echo "--- $f (last 15 lines) ---" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}

cleanup () {
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ "${ZR_TEST_KEEP:-0}" = 1 ]; then
        echo "kept $T" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start () {
    local name=$1
    shift
    mkfifo "$T/$name.fifo"
    "$@" > "$T/$name.fifo" 2> "$T/$name.err" &
    PID=$!
    PIDS+=("$PID")
    exec 3< "$T/$name.fifo"
    local line=
    IFS= read -r -t 30 -u 3 line || fail "$name: no first line in 30 s"
    cat <&3 > "$T/$name.out" &
    PIDS+=("$!")
    exec 3<&-
    rm -f "$T/$name.fifo"
    EP=$(grep -o 'tcp://[^ ,]*' <<< "$line" | head -n 1) \
        || fail "$name: no endpoint in: $line"
}

stat () {
    timeout 10 "$ZR_BIN" stats --broker "$1" 2> /dev/null \
        | awk -v k="$2" '$1 == k { print $2 }'
}

wait_log () {
    local line found=1 end=$((SECONDS + $3))
    exec 5< <(tail -n +1 -f "$1")
    local tail_pid=$!
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

USED=
pick_port () {
    command -v ss > /dev/null || fail "ss (iproute2) is needed to pick ports"
    local p
    USED="$USED $(ss -Htan 2> /dev/null \
                  | awk '{ n = split($4, a, ":"); printf "%s ", a[n] }')"
    while :; do
        p=$((20000 + RANDOM % 20000))
        [[ " $USED " == *" $p "* || " $USED " == *" $((p + 1)) "* \
           || " $USED " == *" $((p + 2)) "* ]] || break
    done
    USED="$USED $p $((p + 1)) $((p + 2))"
    PORT=$p
}

[ -x "$ZR_BIN" ] || fail "ZR_BIN=$ZR_BIN is not executable"
