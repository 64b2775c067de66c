#!/usr/bin/env bash
#  tests/e2e/test_failover_demo.sh - runs examples/failover/demo.sh (what
#  `make failover-demo` runs) with short phases and checks its exit status
#  and its verdict line: 0 acknowledged messages lost.
#
#  ctest sets ZR_BIN and ZR_SOURCE_DIR.
#  ctest: RUN_SERIAL  (failover timings)
set -euo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"
SRC=${ZR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
OUT=$(mktemp "${TMPDIR:-/tmp}/zr-test-failover-demo.XXXXXX")
trap 'rm -f "$OUT"' EXIT

fail () {
    echo "test_failover_demo: FAIL: $*" >&2
    tail -n 40 "$OUT" >&2
    exit 1
}

rc=0
ZR_BIN=$ZR_BIN DEMO_PHASE_MS=1000 timeout 170 \
    bash "$SRC/examples/failover/demo.sh" > "$OUT" 2>&1 || rc=$?
[ "$rc" -eq 0 ] || fail "demo exited $rc"
VERDICT=$(grep '^VERDICT: ' "$OUT") || fail "no VERDICT line"
[[ $VERDICT == "VERDICT: PASS: 0 of "* ]] || fail "verdict: $VERDICT"
grep -q 'promoted: master of epoch 2' "$OUT" || fail "no promotion shown"
grep -q 'digest at seq [0-9]* equal on both' "$OUT" \
    || fail "no digest convergence shown"
LOST=$(awk '/acknowledged but lost/ { print $NF }' "$OUT")
[ "$LOST" = 0 ] || fail "acknowledged but lost: $LOST"
echo "test_failover_demo: OK: $VERDICT"
