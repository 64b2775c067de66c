#!/usr/bin/env bash
#  tests/e2e/test_failover_isolation.sh - isolated master (issue #5).  ctest: RUN_SERIAL
#
#  The master is cut off from the nameserver and the slave while a client
#  still reaches it (docs/protocol.md section 16, Leases and Votes).
#  Its own network: one namespace holds two bridges, four hosts
#  (namespaces) are joined to them by veth pairs:
#      LAN A 198.51.100.0/25:   ns .1, m .2, s .3, c .4
#      LAN B 198.51.100.128/25: m .130, c .131
#  ns runs the nameserver (lease-ms 500, master-dead-ms 1000); m the
#  master (bound on both LANs, id 0), s the slave (id 1); both sync
#  replication, --failover true, ha-heartbeat 100 ms, master-dead 1000.
#  c sends to the master straight over LAN B (zrocket send --broker
#  tcp://198.51.100.130:10911, one in flight, bodies 1, 2, 3..., every
#  result line stamped as it comes out).
#
#  After 200 SEND_OK, m's LAN A link is taken down. Checked:
#  - s is promoted: `zrocket cluster` (from c) names it master, epoch 2;
#  - zero acknowledged lost: every body the old master answered SEND_OK
#    (before or after the cut) comes back from `zrocket consume --from
#    first` on the new master (bodies are unique, so a consume of the
#    whole topic is a complete and simple check; `zrocket msg` would need
#    one request per id);
#  - the old master stops acknowledging: its last SEND_OK is stamped less
#    than lease-ms + 500 ms after the cut (printed, with the last stored
#    status of any kind), no SEND_OK comes later, and a fresh send to it
#    after the promotion is answered NOT_MASTER. (With the slave cut off,
#    sync replication cannot give SEND_OK after the cut at all; no
#    stored status of any kind, FLUSH_SLAVE_TIMEOUT included, may come
#    after the leases expired.)
#
#  Needs root (network namespaces). Without it: a loud SKIPPED and exit 0,
#  or exit 1 when ZR_REQUIRE_NETNS=1 (CI sets it). ctest sets ZR_BIN.
set -uo pipefail

: "${ZR_BIN:?ZR_BIN must point at the zrocket executable}"

NAME=test_failover_isolation
LEASE_MS=500
DEAD_MS=1000
MARGIN_MS=500
FIRST_OKS=200
TAB=$'\t'

skip () {
    echo "" >&2
    echo "**************************************************************" >&2
    echo "*** $NAME: SKIPPED: $*" >&2
    echo "**************************************************************" >&2
    echo "$NAME: SKIPPED: $*"
    if [ "${ZR_REQUIRE_NETNS:-0}" = 1 ]; then
        echo "$NAME: FAIL: ZR_REQUIRE_NETNS=1 turns the skip into a failure" >&2
        exit 1
    fi
    exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v ip > /dev/null || skip "needs root for network namespaces (no ip command)"
command -v perl > /dev/null || { echo "$NAME: FAIL: needs perl" >&2; exit 1; }
[ -x "$ZR_BIN" ] || { echo "$NAME: FAIL: ZR_BIN=$ZR_BIN is not executable" >&2; exit 1; }

unset ZR_BROKER ZR_NAMESERVER ZR_INTERFACE ZSYS_INTERFACE ZR_BEACON_PORT

P="zriso$$"                    #  namespace prefix
T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-isolation.XXXXXX")
PIDS=()
NETNS_MADE=()

NS_EP=tcp://198.51.100.1:9876
M_A=tcp://198.51.100.2:10911
M_B=tcp://198.51.100.130:10911
M_HA=tcp://198.51.100.2:10912
S_EP=tcp://198.51.100.3:10911

fail () {
    echo "$NAME: FAIL: $*" >&2
    for f in "$T"/*.err; do
        [ -s "$f" ] || continue
        echo "--- $f (last 15 lines) ---" >&2
        tail -n 15 "$f" >&2
    done
    exit 1
}

cleanup () {
    local pid ns
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2> /dev/null || true
    done
    for ns in "${NETNS_MADE[@]}"; do
        for pid in $(ip netns pids "$ns" 2> /dev/null); do
            kill -KILL "$pid" 2> /dev/null || true
        done
    done
    for pid in "${PIDS[@]}"; do
        { wait "$pid"; } 2> /dev/null || true
    done
    for ns in "${NETNS_MADE[@]}"; do
        ip netns del "$ns" 2> /dev/null || true
    done
    exec 9<&- 2> /dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

#  pause SECONDS: between polling attempts only (read -t on a fifo).
mkfifo "$T/tick"
exec 9<> "$T/tick"
pause () {
    read -r -t "$1" -u 9 _ || true
}

#  now_ms: wall clock, ms (same clock as the perl stamps)
now_ms () {
    local t=$EPOCHREALTIME
    echo $(( ${t%.*} * 1000 + 10#${t#*.} / 1000 ))
}

#  ---- The network ---------------------------------------------------
if ! ip netns add "$P-br" 2> "$T/netns.err"; then
    skip "needs root for network namespaces ($(cat "$T/netns.err"))"
fi
NETNS_MADE+=("$P-br")
for br in brA brB; do
    ip -n "$P-br" link add "$br" type bridge || fail "bridge $br"
    ip -n "$P-br" link set "$br" up || fail "bridge $br up"
done
for h in ns m s c; do
    ip netns add "$P-$h" || fail "netns add $P-$h"
    NETNS_MADE+=("$P-$h")
    ip -n "$P-$h" link set lo up || fail "$h: lo up"
done
#  link HOST DEV BRIDGE ADDRESS
LINKS=()
link () {
    local h=$1 dev=$2 br=$3 addr=$4 peer="v$1$2"
    ip -n "$P-$h" link add "$dev" type veth peer name "$peer" netns "$P-br" \
        || fail "$h: veth $dev"
    ip -n "$P-br" link set "$peer" master "$br" || fail "$h: $peer on $br"
    ip -n "$P-br" link set "$peer" up || fail "$h: $peer up"
    ip -n "$P-$h" addr add "$addr" dev "$dev" || fail "$h: address $addr"
    ip -n "$P-$h" link set "$dev" up || fail "$h: $dev up"
    LINKS+=("$h:$dev")
}
link ns ethA brA 198.51.100.1/25
link m  ethA brA 198.51.100.2/25
link s  ethA brA 198.51.100.3/25
link c  ethA brA 198.51.100.4/25
link m  ethB brB 198.51.100.130/25
link c  ethB brB 198.51.100.131/25
for l in "${LINKS[@]}"; do
    h=${l%%:*} dev=${l#*:} ok=0
    for try in $(seq 1 50); do
        if ip -n "$P-$h" -o link show "$dev" | grep -q 'LOWER_UP'; then
            ok=1
            break
        fi
        pause 0.1
    done
    [ "$ok" = 1 ] || fail "$h: $dev never came up"
done

#  on HOST CMD...: runs CMD in host's namespace
on () {
    local h=$1
    shift
    ip netns exec "$P-$h" "$@"
}

#  wait_log FILE TEXT SECONDS: polls FILE for TEXT
wait_log () {
    local end=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$end" ]; do
        grep -qF -- "$2" "$1" 2> /dev/null && return 0
        pause 0.1
    done
    return 1
}

#  stat EP KEY: one value of `zrocket stats`, asked from c
stat () {
    timeout 10 ip netns exec "$P-c" "$ZR_BIN" stats --broker "$1" 2> /dev/null \
        | awk -v k="$2" '$1 == k { print $2 }'
}

#  ---- Nameserver, master, slave ---------------------------------------
on ns "$ZR_BIN" nameserver --bind "$NS_EP" --data "$T/ns" \
    --lease-ms "$LEASE_MS" --master-dead-ms "$DEAD_MS" \
    > "$T/ns.log" 2> "$T/ns.err" &
NS_PID=$!
PIDS+=("$NS_PID")
wait_log "$T/ns.log" listening 30 || fail "nameserver did not start"

COMMON=(--group g --nameserver "$NS_EP" --replication sync --failover true
        --ha-heartbeat-ms 100 --master-dead-ms "$DEAD_MS" --heartbeat-ms 200
        --flush async --min-insync 1 --slave-ack-timeout-ms 1000)
on m "$ZR_BIN" broker --data "$T/m" --bind "$M_A,$M_B" --ha-port 10912 \
    --role master --broker-id 0 "${COMMON[@]}" \
    > "$T/master.log" 2> "$T/master.err" &
M_PID=$!
PIDS+=("$M_PID")
on s "$ZR_BIN" broker --data "$T/s" --bind "$S_EP" --ha-port 10912 \
    --role slave --master "$M_HA" --broker-id 1 "${COMMON[@]}" \
    > "$T/slave.log" 2> "$T/slave.err" &
S_PID=$!
PIDS+=("$S_PID")

#  The nameserver grants no lease for master-dead-ms after it starts.
wait_log "$T/master.err" "acknowledging writes" 30 \
    || fail "master: no majority of leases in 30 s"
timeout 30 ip netns exec "$P-c" "$ZR_BIN" topic create t --queues 4 \
    --broker "$M_B" > /dev/null 2> "$T/create.err" \
    || fail "topic create over LAN B"
#  Both in the in-sync set, and the nameserver told so (the vote needs it)
for try in $(seq 1 100); do
    [ "$(stat "$M_B" repl.actor.insync)" = 2 ] && break
    [ "$try" -lt 100 ] || fail "the slave never joined the in-sync set"
    pause 0.1
done
wait_log "$T/master.err" "set for the nameservers: [" 30 \
    || fail "master never told the nameserver its in-sync set"
CL=$(timeout 10 ip netns exec "$P-c" "$ZR_BIN" cluster --nameserver "$NS_EP" \
     2> "$T/cluster.err")
grep -q "^g${TAB}master${TAB}${M_A}${TAB}1${TAB}" <<< "$CL" \
    || fail "master not registered at $M_A epoch 1: $CL"

#  ---- The producer, over LAN B --------------------------------------
: > "$T/results"
mkfifo "$T/bodies.fifo"
seq 1 100000000 > "$T/bodies.fifo" 2> /dev/null &
PIDS+=("$!")
ip netns exec "$P-c" "$ZR_BIN" send --topic t --broker "$M_B" --inflight 1 \
    --timeout-ms 3000 < "$T/bodies.fifo" 2> "$T/send.err" \
    > >(perl -MTime::HiRes=time -ne \
        'BEGIN { $| = 1 } printf "%d\t%d\t%s", time * 1000, $., $_' \
        > "$T/results") &
SEND_PID=$!
PIDS+=("$SEND_PID")

#  count STATUS [AFTER_MS]: result lines with STATUS stamped after AFTER_MS
count () {
    awk -F "$TAB" -v s="$1" -v a="${2:-0}" '$3 == s && $1 > a' "$T/results" \
        | wc -l
}

end=$((SECONDS + 30))
while [ "$(count SEND_OK)" -lt "$FIRST_OKS" ]; do
    [ "$SECONDS" -lt "$end" ] \
        || fail "only $(count SEND_OK) SEND_OK over LAN B in 30 s; last: $(tail -n 1 "$T/results")"
    kill -0 "$SEND_PID" 2> /dev/null || fail "producer exited"
    pause 0.05
done

#  ---- The cut ---------------------------------------------------------
ip -n "$P-m" link set ethA down || fail "cannot take m's LAN A link down"
CUT_AT=$(now_ms)
BEFORE=$(count SEND_OK)
echo "$NAME: m's LAN A link down after $BEFORE SEND_OK"

#  Promotion: s master at epoch 2 (bounded: 30 s)
PROMOTED=
for try in $(seq 1 150); do
    CL=$(timeout 10 ip netns exec "$P-c" "$ZR_BIN" cluster \
         --nameserver "$NS_EP" 2>> "$T/cluster.err")
    if grep -q "^g${TAB}master${TAB}${S_EP}${TAB}2${TAB}" <<< "$CL"; then
        PROMOTED=$(( $(now_ms) - CUT_AT ))
        break
    fi
    pause 0.2
done
[ -n "$PROMOTED" ] || fail "s not master at epoch 2 30 s after the cut: $CL"
echo "$NAME: $S_EP master at epoch 2, seen $PROMOTED ms after the cut"

#  Keep sending to the old master until 3 replies stamped well after its
#  leases expired (bounded: 30 s)
REFUSE_FROM=$((CUT_AT + LEASE_MS + MARGIN_MS))
end=$((SECONDS + 30))
while :; do
    late=$(awk -F "$TAB" -v a="$REFUSE_FROM" '$1 > a' "$T/results" | wc -l)
    [ "$late" -ge 3 ] && break
    [ "$SECONDS" -lt "$end" ] \
        || fail "old master: only $late replies in 30 s after its leases expired"
    kill -0 "$SEND_PID" 2> /dev/null || fail "producer exited"
    pause 0.1
done
kill -TERM "$SEND_PID" 2> /dev/null || true
{ wait "$SEND_PID"; } 2> /dev/null || true

#  ---- The old master refuses writes ----------------------------------
#  Statuses that mean stored (acknowledged): docs/protocol.md section 4
STORED='^(SEND_OK|FLUSH_DISK_TIMEOUT|FLUSH_SLAVE_TIMEOUT|SLAVE_NOT_AVAILABLE)$'
LAST_OK=$(awk -F "$TAB" '$3 == "SEND_OK" { t = $1 } END { print t }' \
          "$T/results")
OK_AFTER_CUT=$((LAST_OK - CUT_AT))
[ "$OK_AFTER_CUT" -lt 0 ] && OK_AFTER_CUT=0
LAST_ACK=$(awk -F "$TAB" -v re="$STORED" '$3 ~ re { t = $1 } END { print t }' \
           "$T/results")
ACK_AFTER_CUT=$((LAST_ACK - CUT_AT))
[ "$ACK_AFTER_CUT" -lt 0 ] && ACK_AFTER_CUT=0
AFTER=$(awk -F "$TAB" -v a="$CUT_AT" '$1 > a { print $3 }' "$T/results" \
        | sort | uniq -c | awk '{ printf "%s %s, ", $2, $1 }')
echo "$NAME: old master's replies after the cut: ${AFTER%, }"
echo "$NAME: old master's last SEND_OK $OK_AFTER_CUT ms after the cut" \
     "(lease ${LEASE_MS} ms, limit $((LEASE_MS + MARGIN_MS)) ms); last stored" \
     "status of any kind $ACK_AFTER_CUT ms after the cut"
[ "$OK_AFTER_CUT" -lt $((LEASE_MS + MARGIN_MS)) ] \
    || fail "old master answered SEND_OK $OK_AFTER_CUT ms after the cut"
bad=$(awk -F "$TAB" -v a="$REFUSE_FROM" '$1 > a && $3 == "SEND_OK"' \
      "$T/results")
[ -z "$bad" ] || fail "old master, after its leases expired, replied: $(head -n 3 <<< "$bad")"
#  protocol.md section 16 (Leases): no stored status at all once the
#  leases expired; a send in flight at the cut, whose slave never
#  acknowledged, is answered NOT_MASTER, not FLUSH_SLAVE_TIMEOUT.
other=$(awk -F "$TAB" -v a="$((CUT_AT + LEASE_MS))" \
        '$1 > a && $3 != "NOT_MASTER" && $3 != "SEND_OK"' "$T/results")
[ -z "$other" ] || fail "after its leases expired the old master still" \
    "answered with a stored status: $(head -n 3 <<< "$other" | tr '\n\t' '; ')"
probe=$(timeout 20 ip netns exec "$P-c" "$ZR_BIN" send --topic t \
        --broker "$M_B" probe 2> "$T/probe.err")
rc=$?
[ "$rc" = 1 ] && [[ $probe == NOT_MASTER* ]] \
    || fail "a send to the old master after the promotion: exit $rc, '$probe'"
echo "$NAME: a send to the old master now: ${probe%%$TAB*}"

#  ---- Zero acknowledged lost ------------------------------------------
awk -F "$TAB" '$3 == "SEND_OK" { print $2 }' "$T/results" | sort > "$T/acked"
timeout 60 ip netns exec "$P-c" "$ZR_BIN" consume --topic t --broker "$S_EP" \
    --from first --timeout 2 2> "$T/consume.err" | sort -u > "$T/stored"
ACKED=$(wc -l < "$T/acked")
STORED_N=$(wc -l < "$T/stored")
LOST=$(comm -23 "$T/acked" "$T/stored" | wc -l)
[ "$ACKED" -ge "$FIRST_OKS" ] || fail "only $ACKED acknowledged"
[ "$LOST" -eq 0 ] \
    || fail "$LOST of $ACKED SEND_OK are not on the new master (first: $(comm -23 "$T/acked" "$T/stored" | head -n 3 | tr '\n' ' '))"

echo "$NAME: OK: $ACKED SEND_OK from the isolated master ($((ACKED - BEFORE)) after" \
     "the cut), all $ACKED on the new master ($STORED_N messages there), 0 lost;" \
     "last SEND_OK $OK_AFTER_CUT ms after the cut; promotion seen" \
     "after $PROMOTED ms"
exit 0
