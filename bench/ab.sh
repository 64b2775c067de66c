#!/usr/bin/env bash
# bench/ab.sh - A/B of two broker builds in one run (these machines are
# noisy: compare ratios from the same run). Async produce of 100 B and
# 1 KiB for AB_SECONDS (10) each, old and new alternating, AB_ROUNDS (2)
# rounds, one fresh broker (--flush async, no replication) per run, the
# same client (NEW_BIN's `zrocket bench`) for both. Loopback only; every
# run is bounded by time.
#
#   OLD_BIN=/path/old/zrocket NEW_BIN=build/zrocket bench/ab.sh
set -euo pipefail
: "${OLD_BIN:?OLD_BIN: the zrocket binary to compare against}"
NEW=${NEW_BIN:-build/zrocket}
SECS=${AB_SECONDS:-10}
ROUNDS=${AB_ROUNDS:-2}
W=$(mktemp -d "${TMPDIR:-/tmp}/zr-ab.XXXXXX")
PID=
cleanup () { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT

run () {    # LABEL BROKER_BIN SIZE
    local log=$W/$1-$3.log ep=
    "$2" broker --data "$W/data-$1-$3-$RANDOM" --bind 'tcp://127.0.0.1:*' \
        --flush async > "$log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do         # up to 10 s for the "listening" line
        ep=$(grep -o 'tcp://[^ ,]*' "$log" | head -n 1 || true)
        [ -n "$ep" ] && break
        read -r -t 0.1 _ < <(:) || true
    done
    [ -n "$ep" ] || { cat "$log" >&2; exit 1; }
    local r
    r=$(timeout $((SECS + 30)) "$NEW" bench produce --mode async \
        --size "$3" --duration "$SECS" --count 100000000 --broker "$ep" \
        2>&1 | grep '^RESULT' | grep -o 'msgs_per_s=[0-9]*')
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
    PID=
    echo "$1 size=$3 ${r:-msgs_per_s=failed}"
}

for round in $(seq 1 "$ROUNDS"); do
    for size in 100 1024; do
        run old "$OLD_BIN" "$size"
        run new "$NEW" "$size"
    done
done
