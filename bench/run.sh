#!/usr/bin/env bash
# bench/run.sh - runs zrocket's standard benchmark matrix against a fresh
# local broker and writes docs/benchmarks.md.
#
#   bench/run.sh                    # build/zrocket (built if needed)
#   ZR_BIN=/path/zrocket bench/run.sh
#
# Environment:
#   BENCH_SECONDS        headline (async) run length, s        (30)
#   BENCH_SHORT_SECONDS  sync and oneway run length, s         (10)
#   BENCH_RTT_COUNT      bare round trips per rtt run          (20000)
#   BENCH_FLUSH          broker flush mode, async|sync         (async)
#   BENCH_PERF           1: perf record -g the broker during each
#                        headline run; reports go to the work dir
#   BENCH_TMPDIR         where the broker's data goes          ($TMPDIR)
#   BENCH_OUT            the report                 (docs/benchmarks.md)
#   BENCH_KEEP           1: keep the work dir (logs, perf data)
#
# The matrix, for each size (100 B, 1 KiB) on a fresh broker: rtt (bare
# DEALER/ROUTER baseline, in the bench process), sync 1 client, sync 16
# clients, async 1 client (headline), oneway 1 client, and consume of
# everything the size's runs stored. Every run is bounded by a count and by time.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
HEADLINE=${BENCH_SECONDS:-30}
SHORT=${BENCH_SHORT_SECONDS:-10}
RTT_COUNT=${BENCH_RTT_COUNT:-20000}
FLUSH=${BENCH_FLUSH:-async}
OUT=${BENCH_OUT:-$SRC/docs/benchmarks.md}
SIZES="100 1024"
BIG=100000000                       # count for time-bounded runs
MIN_FREE_KB=$((2 * 1024 * 1024))   # 2 GiB

die () { echo "bench/run.sh: $*" >&2; exit 1; }

# --- the binary ----------------------------------------------------------
if [ -n "${ZR_BIN:-}" ]; then
    BIN=$ZR_BIN
else
    BIN=$SRC/build/zrocket
    echo "bench/run.sh: building $BIN"
    cmake -S "$SRC" -B "$SRC/build" >/dev/null \
        || die "cmake configure failed"
    cmake --build "$SRC/build" --target zrocket_bin -j"$(nproc)" >/dev/null \
        || die "build failed (cmake --build $SRC/build)"
fi
[ -x "$BIN" ] || die "no zrocket executable at $BIN (set ZR_BIN)"

# --- work dir and free disk ----------------------------------------------
BASE=${BENCH_TMPDIR:-${TMPDIR:-/tmp}}
WORK=$(mktemp -d "$BASE/zrbench.XXXXXX") || die "cannot make a dir in $BASE"
FREE_KB=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
if [ -z "$FREE_KB" ] || [ "$FREE_KB" -lt "$MIN_FREE_KB" ]; then
    rmdir "$WORK"
    die "only $((${FREE_KB:-0} / 1024)) MiB free under $BASE; the matrix" \
        "needs at least 2 GiB (set BENCH_TMPDIR to a roomier disk)"
fi

BROKER_PID=
cleanup () {
    stop_broker
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        echo "bench/run.sh: work dir kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- broker --------------------------------------------------------------
ENDPOINT=
start_broker () {                   # $1: name of the data dir
    local log=$WORK/broker-$1.log
    "$BIN" broker --data "$WORK/data-$1" --bind 'tcp://127.0.0.1:*' \
        --flush "$FLUSH" >"$log" 2>&1 &
    BROKER_PID=$!
    ENDPOINT=
    for _ in $(seq 100); do         # up to 10 s for the "listening" line
        ENDPOINT=$(grep -o 'tcp://[^ ,]*' "$log" | head -n 1 || true)
        [ -n "$ENDPOINT" ] && break
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$ENDPOINT" ]; then
        cat "$log" >&2
        die "broker did not start (log above)"
    fi
    ENDPOINT=${ENDPOINT/tcp:\/\/\*:/tcp://127.0.0.1:}
    ENDPOINT=${ENDPOINT/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
    echo "bench/run.sh: broker $BROKER_PID at $ENDPOINT, data in" \
         "$WORK/data-$1"
}

stop_broker () {
    [ -n "$BROKER_PID" ] || return 0
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$BROKER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
}

# CPU seconds (user+system) the broker has used so far.
broker_cpu () {
    [ -n "$BROKER_PID" ] || { echo 0; return; }
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' \
        "/proc/$BROKER_PID/stat" 2>/dev/null || echo 0
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
REV=$(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$SRC" status --porcelain 2>/dev/null | grep -q . \
        && echo " (work tree had uncommitted changes)" || true)

# --- runs ----------------------------------------------------------------
RESULTS=$WORK/results.txt           # label|RESULT line|broker cpu %
COMMANDS=$WORK/commands.txt
: >"$RESULTS"
: >"$COMMANDS"

# run LABEL PERF(0|1) ARGS...: one `zrocket bench` run.
run () {
    local label=$1 perf=$2
    shift 2
    local log=$WORK/run-$label.log
    echo "zrocket bench $*" >>"$COMMANDS"
    echo "bench/run.sh: [$label] zrocket bench $*"
    local cpu0 t0 t1 cpu1 perf_pid=
    cpu0=$(broker_cpu)
    t0=$(date +%s.%N)
    if [ "$perf" = 1 ] && [ "${BENCH_PERF:-0}" = 1 ] && [ -n "$BROKER_PID" ]
    then
        perf record -g -F 499 -p "$BROKER_PID" \
            -o "$WORK/perf-$label.data" >/dev/null 2>&1 &
        perf_pid=$!
    fi
    local rc=0
    "$BIN" bench "$@" >"$log" 2>&1 || rc=$?
    if [ -n "$perf_pid" ]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        {
            echo "== broker samples by thread and library"
            perf report -i "$WORK/perf-$label.data" --no-children \
                --sort comm,dso -g none --stdio 2>/dev/null \
                | grep -v '^#' | grep -v '^$' | head -n 30
            echo "== hottest symbols (self)"
            perf report -i "$WORK/perf-$label.data" --no-children \
                --sort comm,dso,symbol -g none --stdio 2>/dev/null \
                | grep -v '^#' | grep -v '^$' | head -n 40
            echo "== inclusive (children)"
            perf report -i "$WORK/perf-$label.data" --children \
                --sort symbol -g none --stdio 2>/dev/null \
                | grep -v '^#' | grep -v '^$' | head -n 40
        } >"$WORK/perf-$label.txt" 2>&1 || true
        echo "bench/run.sh: perf report in $WORK/perf-$label.txt"
    fi
    t1=$(date +%s.%N)
    cpu1=$(broker_cpu)
    sed 's/^/    /' "$log"
    local line
    line=$(grep '^RESULT ' "$log" | tail -n 1 || true)
    [ -n "$line" ] || line="RESULT mode=failed rc=$rc"
    [ "$rc" = 0 ] || line="$line rc=$rc"
    local cpu_pct
    cpu_pct=$(awk -v a="$cpu0" -v b="$cpu1" -v s="$t0" -v e="$t1" \
        'BEGIN { d = e - s; if (d > 0) printf "%.0f", 100 * (b - a) / d;
                 else print 0 }')
    echo "$label|$line|$cpu_pct" >>"$RESULTS"
}

for size in $SIZES; do
    start_broker "$size"
    topic=bench-$size
    common=(--size "$size" --topic "$topic" --broker "$ENDPOINT")
    # The baseline right before the sync run it is compared with: on a
    # shared machine the round trip drifts from minute to minute.
    run "rtt-$size" 0 rtt --count "$RTT_COUNT" --size "$size"
    run "sync1-$size" 0 produce --mode sync --clients 1 --count "$BIG" \
        --duration "$SHORT" "${common[@]}"
    run "sync16-$size" 0 produce --mode sync --clients 16 --count "$BIG" \
        --duration "$SHORT" "${common[@]}"
    run "async1-$size" 1 produce --mode async --clients 1 --inflight 256 \
        --count "$BIG" --duration "$HEADLINE" "${common[@]}"
    run "oneway1-$size" 0 produce --mode oneway --clients 1 --count "$BIG" \
        --duration "$SHORT" "${common[@]}"
    run "consume-$size" 1 consume --topic "$topic" --clients 1 \
        --duration 300 --broker "$ENDPOINT"
    stop_broker
    rm -rf "$WORK/data-$size"
done

# --- report --------------------------------------------------------------
field () {                          # field LABEL KEY
    local line
    line=$(grep "^$1|" "$RESULTS" | head -n 1 | cut -d'|' -f2 || true)
    echo "$line" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}
or_dash () { if [ -n "$1" ]; then echo "$1"; else echo "-"; fi; }
ratio () {                          # ratio A B -> A/B with 2 decimals
    awk -v a="$1" -v b="$2" \
        'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b;
                 else print "-" }'
}
check () {                          # check OK_EXPRESSION -> met / MISSED
    awk "BEGIN { if ($1) print \"met\"; else print \"**missed**\" }" \
        2>/dev/null || echo "-"
}

MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
MEM=$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)

{
echo "# Benchmarks"
echo
echo "Written by \`bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), at"
echo "commit $REV$DIRTY. Broker and bench ran on the same machine over"
echo "loopback TCP; the broker was a separate \`zrocket broker\` process"
echo "with a fresh data directory per message size, flush mode \`$FLUSH\`."
PERF_NOTE=
[ "${BENCH_PERF:-0}" = 1 ] && PERF_NOTE="; perf recorded the broker during the headline and consume runs"
echo "Executable: \`$BIN\`$PERF_NOTE."
echo
echo "## Machine"
echo
echo "| | |"
echo "|---|---|"
echo "| CPUs (nproc) | $(nproc) |"
echo "| CPU model | $MODEL |"
echo "| memory | $MEM |"
echo "| kernel | $(uname -sr) |"
echo "| load average at start / end | $LOAD_START / $(cut -d' ' -f1-3 /proc/loadavg) |"
echo "| disk under the data dir | $(df -Ph "$WORK" | awk 'NR == 2 { print $1 ", " $4 " free" }') |"
echo
echo "## Results"
echo
echo "Rates count stored messages (replied with a stored status; for"
echo "oneway, everything up to a closing sync send that was answered)."
echo "MB/s is body bytes, 10^6 per MB. Latency: sync from call to return,"
echo "async from send to callback, rtt one bare round trip; log-linear"
echo "histogram, about 1.6 % resolution. Broker CPU is the broker"
echo "process's user+system time over the run's wall time (200 % = both"
echo "cores); bench CPU the same for the bench process, over its measured"
echo "interval."
echo
echo "| run | size | clients | seconds | msgs/s | MB/s | p50 µs | p99 µs | p999 µs | errors | broker CPU | bench CPU |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
while IFS='|' read -r label line cpu; do
    get () { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -n 1; }
    mode=$(get mode)
    kind=$mode
    [ "$mode" = async ] && kind="async (inflight $(get inflight))"
    [ "$mode" = rtt ] && cpu=""
    [ "$mode" = rtt ] && kind="rtt (bare DEALER/ROUTER)"
    ccpu=$(get client_cpu_pct)
    rc=$(get rc)
    [ -n "$rc" ] && kind="$kind, exit $rc"
    echo "| $kind | $(or_dash "$(get size)") | $(or_dash "$(get clients)")" \
         "| $(or_dash "$(get secs)") | $(or_dash "$(get msgs_per_s)")" \
         "| $(or_dash "$(get mb_per_s)") | $(or_dash "$(get p50_us)")" \
         "| $(or_dash "$(get p99_us)") | $(or_dash "$(get p999_us)")" \
         "| $(or_dash "$(get errors)") | $(or_dash "${cpu:+$cpu %}") |" \
         "$(or_dash "$(get client_cpu_pct)")${ccpu:+ %} |"
done <"$RESULTS"
echo
echo "## Targets (issue 2)"
echo
echo "| target | measured | |"
echo "|---|---|---|"
a1k=$(field async1-1024 msgs_per_s)
a100=$(field async1-100 msgs_per_s)
echo "| async 1 KiB >= 150,000 msgs/s | $(or_dash "$a1k") | $(check "${a1k:-0} >= 150000") |"
echo "| async 100 B >= 250,000 msgs/s | $(or_dash "$a100") | $(check "${a100:-0} >= 250000") |"
for size in $SIZES; do
    c=$(field "consume-$size" msgs_per_s)
    p=$(field "async1-$size" msgs_per_s)
    echo "| consume $size B >= async produce $size B | $(or_dash "$c") vs $(or_dash "$p") | $(check "${c:-0} >= ${p:-1} && ${c:-0} > 0") |"
done
for size in $SIZES; do
    s=$(field "sync1-$size" p50_us)
    r=$(field "rtt-$size" p50_us)
    q=$(ratio "$s" "$r")
    echo "| sync p50 $size B <= 1.5 x bare round trip | $(or_dash "$s") µs / $(or_dash "$r") µs = $q | $(check "\"$q\" != \"-\" && $q <= 1.5") |"
done
echo
echo "## Commands"
echo
echo "Broker, one per message size (fresh data directory each):"
echo
echo '```'
echo "zrocket broker --data DIR --bind 'tcp://127.0.0.1:*' --flush $FLUSH"
echo '```'
echo
echo "Runs, in order (ENDPOINT is the broker's bound endpoint):"
echo
echo '```'
sed -e 's/tcp:\/\/127\.0\.0\.1:[0-9]*/ENDPOINT/g' "$COMMANDS"
echo '```'
echo
echo "Reproduce with \`bench/run.sh\` (\`BENCH_SECONDS=$HEADLINE"
echo "BENCH_SHORT_SECONDS=$SHORT\` were used)."
} >"$OUT.tmp"

# Keep hand-written notes below the marker line of an older report.
MARK='<!-- notes: kept by bench/run.sh -->'
if [ -f "$OUT" ] && grep -qF "$MARK" "$OUT"; then
    { echo; sed -n "/$MARK/,\$p" "$OUT"; } >>"$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
echo "bench/run.sh: wrote $OUT"
cat "$OUT"
