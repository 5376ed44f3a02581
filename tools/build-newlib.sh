#!/usr/bin/env bash
# tools/build-newlib.sh OUTDIR
#
# Build newlib 3.3.0 (Debian's newlib-source: /usr/src/newlib/newlib-3.3.0.tar.xz)
# for a freestanding x86_64 kernel linked at a fixed address, with the host gcc
# as the "target" compiler, and install it flattened into
#     OUTDIR/newlib/include/*.h
#     OUTDIR/newlib/lib/{libc.a,libm.a,...}     (debug info stripped)
# newlib itself installs under PREFIX/x86_64-elf/; we move that up one level.
#
# Idempotent: OUTDIR/newlib/.stamp holds a fingerprint of the configuration;
# when it matches, the script only refreshes the stamp's mtime and exits.
# Output is quiet: everything goes to OUTDIR/newlib-build.log, whose tail is
# printed on failure.
set -euo pipefail

TARBALL=${NEWLIB_TARBALL:-/usr/src/newlib/newlib-3.3.0.tar.xz}
SRC_TOP=newlib-salsa            # what the Debian tarball unpacks to
TARGET=x86_64-elf
JOBS=${NEWLIB_JOBS:-2}
TARGET_CFLAGS="-O2 -g -ffreestanding -mno-red-zone -fno-stack-protector -fno-builtin -fno-pie -fno-pic"
CONFIGURE_ARGS=(
    --target="$TARGET"
    --disable-multilib
    --disable-nls
    --enable-newlib-io-long-long
    --enable-newlib-io-c99-formats
    --disable-newlib-supplied-syscalls
)
TOOL_VARS=(
    CC_FOR_TARGET=gcc AS_FOR_TARGET=as LD_FOR_TARGET=ld AR_FOR_TARGET=ar
    RANLIB_FOR_TARGET=ranlib NM_FOR_TARGET=nm OBJCOPY_FOR_TARGET=objcopy
    OBJDUMP_FOR_TARGET=objdump STRIP_FOR_TARGET=strip
    READELF_FOR_TARGET=readelf
)

# shellcheck source=tools/dep-script.sh
. "$(dirname "$0")/dep-script.sh"
dep_init build-newlib "$@"
PREFIX="$OUTDIR/newlib"
STAMP="$PREFIX/.stamp"
LOG="$OUTDIR/newlib-build.log"
WORK="$OUTDIR/newlib-build"

# Anything that changes the produced library belongs in the fingerprint.
FINGERPRINT="newlib-3.3.0 target=$TARGET cflags=[$TARGET_CFLAGS] args=[${CONFIGURE_ARGS[*]}] tools=[${TOOL_VARS[*]}] strip=-g"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$FINGERPRINT" ] &&
   [ -f "$PREFIX/lib/libc.a" ] && [ -f "$PREFIX/lib/libm.a" ] &&
   [ -f "$PREFIX/include/stdio.h" ]; then
    touch "$STAMP"
    exit 0
fi

[ -f "$TARBALL" ] ||
    die "$TARBALL not found (package newlib-source; run: tools/deps.sh install)"
need_tools gcc as ld ar ranlib strip make tar xz

# Isolate newlib's build from whatever make / environment called us: flags
# meant for the kernel (or command-line overrides carried in MAKEFLAGS) must
# not leak into newlib's configure and its sub-makes.
unset MAKEFLAGS MFLAGS MAKEOVERRIDES MAKELEVEL GNUMAKEFLAGS
unset CC CXX CPP CFLAGS CXXFLAGS CPPFLAGS LDFLAGS LIBS
export LC_ALL=C

: > "$LOG"
fail() {
    echo "---- last 40 lines of $LOG ----" >&2
    tail -n 40 "$LOG" >&2
    die "$1 failed (full log: $LOG)"
}
step() {   # step WHAT cmd... (runs in the current directory, logged)
    local what=$1; shift
    local t0=$SECONDS
    printf '\n==== %s: %s\n' "$what" "$*" >> "$LOG"
    "$@" >> "$LOG" 2>&1 || fail "$what"
    printf '==== %s: done in %d s\n' "$what" $((SECONDS - t0)) >> "$LOG"
}

start=$(date +%s)
note "building newlib 3.3.0 for $TARGET (log: $LOG)"
rm -rf "$WORK" "$PREFIX.tmp"
mkdir -p "$WORK/obj" "$WORK/stage"
step "unpack $TARBALL" tar -xJf "$TARBALL" -C "$WORK"
[ -x "$WORK/$SRC_TOP/configure" ] ||
    die "$TARBALL did not unpack to $SRC_TOP/ (got: $(ls "$WORK"))"

cd "$WORK/obj"
step configure "../$SRC_TOP/configure" --prefix="$WORK/stage" \
    "${CONFIGURE_ARGS[@]}" "${TOOL_VARS[@]}" \
    CFLAGS_FOR_TARGET="$TARGET_CFLAGS"
step "make -j$JOBS" make -j"$JOBS"
step "make install" make install

inst="$WORK/stage/$TARGET"
for f in lib/libc.a lib/libm.a include/stdio.h; do
    [ -f "$inst/$f" ] || fail "install layout check ($inst/$f missing)"
done

# Flatten PREFIX/x86_64-elf/{include,lib} -> OUTDIR/newlib/{include,lib}.
mkdir -p "$PREFIX.tmp"
mv "$inst/include" "$PREFIX.tmp/include"
mv "$inst/lib" "$PREFIX.tmp/lib"
for a in "$PREFIX.tmp"/lib/*.a; do
    step "strip -g $(basename "$a")" strip -g "$a"
done
printf '%s\n' "$FINGERPRINT" > "$PREFIX.tmp/.stamp"
cd "$OUTDIR"
rm -rf "$PREFIX"
mv "$PREFIX.tmp" "$PREFIX"
rm -rf "$WORK"                  # ~100 MB of objects; the log stays

note "newlib ready in $PREFIX ($(( $(date +%s) - start )) s;" \
     "libc.a $(du -k "$PREFIX/lib/libc.a" | cut -f1) KiB)"
