#!/usr/bin/env bash
#  tests/e2e/test_install.sh - installs the build into a private prefix,
#  builds the examples in examples/c against it the way a user would (their
#  Makefile: pkg-config --cflags --libs zrocket), and runs embedded.c: an
#  application that embeds the broker and sends and reads back 10 messages
#  over inproc. The consumer-group examples (cluster_consumer,
#  broadcast_consumer, ordered_producer, ordered_consumer) are compiled
#  and linked; ordered_producer/ordered_consumer also run against the
#  installed `zrocket dev`.
#
#  ctest sets ZR_BUILD_DIR and ZR_SOURCE_DIR.
set -euo pipefail

: "${ZR_BUILD_DIR:?ZR_BUILD_DIR must point at the build directory}"
: "${ZR_SOURCE_DIR:?ZR_SOURCE_DIR must point at the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-install.XXXXXX")
DEV_PID=
trap '[ -z "$DEV_PID" ] || kill -KILL "$DEV_PID" 2>/dev/null; rm -rf "$T"' EXIT

fail () {
    echo "test_install: FAIL: $*" >&2
    exit 1
}

PREFIX="$T/prefix"
cmake --install "$ZR_BUILD_DIR" --prefix "$PREFIX" > "$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; fail "cmake --install failed"; }

#  GNUInstallDirs may choose lib or lib/<multiarch>: find what it did.
PC=$(find "$PREFIX" -name zrocket.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] || fail "no zrocket.pc under $PREFIX"
LIBDIR=$(dirname "$(dirname "$PC")")
[ -f "$PREFIX/include/zrocket.h" ] || fail "zrocket.h not installed"
ls "$LIBDIR"/libzrocket.so.* > /dev/null 2>&1 \
    || fail "no libzrocket.so.* in $LIBDIR"
[ -x "$PREFIX/bin/zrocket" ] || fail "zrocket executable not installed"
"$PREFIX/bin/zrocket" --version > /dev/null \
    || fail "installed zrocket --version failed"

export PKG_CONFIG_PATH="$(dirname "$PC")"
#  The installed .pc must describe the prefix it was installed to, not the
#  one configured at build time.
PC_LIBDIR=$(pkg-config --variable=libdir zrocket) \
    || fail "pkg-config cannot read $PC"
[ "$(realpath -m "$PC_LIBDIR")" = "$(realpath -m "$LIBDIR")" ] \
    || fail "zrocket.pc says libdir=$PC_LIBDIR but the library was installed in $LIBDIR (the .pc is not relocated by cmake --install --prefix)"

#  Build the examples with their own Makefile, as a user would.
EXAMPLES="embedded cluster_consumer broadcast_consumer ordered_producer ordered_consumer delayed_producer transaction_producer filtered_consumer lookup batch_producer"
mkdir "$T/c"
cp "$ZR_SOURCE_DIR/examples/c/Makefile" "$T/c/"
for ex in $EXAMPLES; do
    cp "$ZR_SOURCE_DIR/examples/c/$ex.c" "$T/c/"
done
make -C "$T/c" > "$T/make.log" 2>&1 \
    || { cat "$T/make.log" >&2; fail "building examples/c failed"; }
for ex in $EXAMPLES; do
    [ -x "$T/c/$ex" ] || fail "make did not produce $ex"
done

#  It must use the installed shared library.
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
LIB=$(ldd "$T/c/embedded" | awk '/libzrocket\.so/ { print $3 }')
[ -n "$LIB" ] || fail "embedded is not linked against libzrocket.so: $(ldd "$T/c/embedded")"
case "$(realpath "$LIB")" in
    "$(realpath "$LIBDIR")"/*) ;;
    *) fail "embedded loads $LIB, not the library in $LIBDIR" ;;
esac

#  A library built with -DSANITIZE=address pulls libasan in after the
#  example's own libraries; let ASan accept that order.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

rc=0
( cd "$T" && timeout 60 "$T/c/embedded" ) > "$T/out" 2> "$T/err" || rc=$?
if [ "$rc" -ne 0 ]; then
    cat "$T/out" "$T/err" >&2
    fail "embedded exited $rc"
fi
grep '^received: ' "$T/out" | sed 's/^received: \(.*\) (queue .*$/\1/' \
    | sort > "$T/got"
seq 0 9 | sed 's/^/embedded message /' | sort > "$T/want"
diff "$T/want" "$T/got" > /dev/null \
    || { cat "$T/out" >&2; fail "embedded did not print the 10 messages it sent"; }

#  The ordered pair against the installed `zrocket dev`: 200 messages over
#  8 sharding keys, every key's sequence in order, nothing twice.
mkfifo "$T/dev.fifo"
"$PREFIX/bin/zrocket" dev --port 0 --ns-port 0 --data "$T/dev" \
    > "$T/dev.fifo" 2> "$T/dev.err" &
DEV_PID=$!
exec 3< "$T/dev.fifo"
IFS= read -r -t 30 -u 3 line1 || fail "dev: no first line within 30 s"
IFS= read -r -t 30 -u 3 line2 || fail "dev: no second line within 30 s"
cat <&3 > /dev/null &
exec 3<&-
NS=$(grep -o 'tcp://[^ ,]*' <<< "$line2" | head -n 1)
NS=${NS/tcp:\/\/0.0.0.0:/tcp://127.0.0.1:}
[ -n "$NS" ] || fail "dev printed no nameserver: $line2"
"$PREFIX/bin/zrocket" topic create ordered --nameserver "$NS" \
    > /dev/null 2> "$T/topic.err" || fail "topic create: $(cat "$T/topic.err")"
timeout 60 "$T/c/ordered_consumer" "$NS" install-group ordered 200 20 \
    > "$T/oc.out" 2> "$T/oc.err" &
OC_PID=$!
timeout 60 "$T/c/ordered_producer" "$NS" ordered 200 8 > "$T/op.out" \
    2> "$T/op.err" || fail "ordered_producer: $(cat "$T/op.out" "$T/op.err")"
rc=0
wait "$OC_PID" || rc=$?
grep -q "^ordered_consumer: 200 messages, 8 keys, 0 duplicates, 0 violations" \
    "$T/oc.out" && [ "$rc" -eq 0 ] \
    || fail "ordered_consumer exited $rc: $(tail -n 5 "$T/oc.out" "$T/oc.err")"
kill -TERM "$DEV_PID"
wait "$DEV_PID" || true
DEV_PID=
echo "test_install: PASS ($(wc -l < "$T/got") messages through the embedded broker, 200 ordered over 8 keys, library $LIB)"
