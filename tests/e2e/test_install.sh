#!/usr/bin/env bash
#  tests/e2e/test_install.sh - installs the build into a private prefix,
#  builds examples/c/embedded.c against it the way a user would (its
#  Makefile: pkg-config --cflags --libs zrocket), and runs it: an
#  application that embeds the broker and sends and reads back 10 messages
#  over inproc.
#
#  ctest sets ZR_BUILD_DIR and ZR_SOURCE_DIR.
set -euo pipefail

: "${ZR_BUILD_DIR:?ZR_BUILD_DIR must point at the build directory}"
: "${ZR_SOURCE_DIR:?ZR_SOURCE_DIR must point at the source tree}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zr-test-install.XXXXXX")
trap 'rm -rf "$T"' EXIT

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

#  Build the example with its own Makefile, as a user would.
mkdir "$T/c"
cp "$ZR_SOURCE_DIR/examples/c/embedded.c" "$ZR_SOURCE_DIR/examples/c/Makefile" \
    "$T/c/"
make -C "$T/c" > "$T/make.log" 2>&1 \
    || { cat "$T/make.log" >&2; fail "building examples/c/embedded.c failed"; }
[ -x "$T/c/embedded" ] || fail "make did not produce embedded"

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
echo "test_install: PASS ($(wc -l < "$T/got") messages through the embedded broker, library $LIB)"
