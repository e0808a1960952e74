#!/bin/bash
# Configure (once) and build what the tests and the demo need in a tree.
#
# usage: scripts/build.sh [--upstream | --asan] [--all | extra ninja targets...]
#
# --all: everything the configured tree builds (ninja's default target),
# the test programs of QEMU's own suites included (scripts/gate.py).
#
# Out of tree (TREE/build), x86_64-softmmu only, linux-aio and io_uring on,
# every optional UI/audio/network backend off, ccache shared across trees.
# Only the binaries the tests use are built, not 'all'.
#
# --asan: the patched tree's qemu-system-x86_64 alone, with
# AddressSanitizer and UndefinedBehaviorSanitizer (one build, both
# sanitizers), in TREE/build-asan (the qtests that check that no parked
# request is leaked, freed twice, used after free or hits undefined
# behaviour run it).
set -euo pipefail
. "$(dirname "$0")/common.sh"

t=$TREE
b=$t/build
asan= all=
if [ "${1:-}" = --upstream ]; then
    t=$UPSTREAM_TREE
    b=$t/build
    shift
elif [ "${1:-}" = --asan ]; then
    b=$t/build-asan
    asan=1
    shift
    # QEMU's .gitignore knows build/ only: keep the tree's status clean
    exclude=$(git -C "$t" rev-parse --path-format=absolute \
                  --git-path info/exclude 2>/dev/null) &&
        { grep -qx '/build-asan/' "$exclude" 2>/dev/null ||
          echo '/build-asan/' >> "$exclude"; }
fi
[ -f "$t/configure" ] || die "$t is not a QEMU tree; run 'make tree' first"

CONFIGURE_FLAGS=(
    --target-list=x86_64-softmmu
    --python=/usr/bin/python3
    "--cc=ccache cc"
    --without-default-features
    --disable-install-blobs
    --disable-docs
    --enable-tools
    --enable-linux-aio
    --enable-linux-io-uring
    --enable-kvm --enable-tcg
    --enable-fdt=system
    ${QEMU_CONFIGURE_EXTRA:-}
)
TARGETS=(
    qemu-system-x86_64 qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon
    tests/qtest/qos-test
)
if [ -n "$asan" ]; then
    CONFIGURE_FLAGS+=(--enable-asan --enable-ubsan --disable-tools)
    TARGETS=(qemu-system-x86_64)
fi

command -v ccache >/dev/null || die "ccache is missing; run scripts/install-deps.sh"
want="${CONFIGURE_FLAGS[*]}"
if [ ! -f "$b/build.ninja" ] || [ "$(cat "$b/.qemu-retry-configured" 2>/dev/null)" != "$want" ]; then
    say "configuring $b"
    rm -rf "$b"
    mkdir -p "$b"
    (cd "$b" && ../configure "${CONFIGURE_FLAGS[@]}") > "$b/qemu-retry-configure.log" 2>&1 || {
        tail -30 "$b/qemu-retry-configure.log" >&2
        die "configure failed (full log: $b/qemu-retry-configure.log)"
    }
    echo "$want" > "$b/.qemu-retry-configured"
fi

extra=()
for x in "$@"; do
    case $x in
    --all) all=1 ;;
    *) extra+=("$x") ;;
    esac
done
if [ -n "$all" ]; then
    [ -z "$asan" ] || die "--all is for the patched and upstream builds"
    say "building everything in $b (QEMU's own test programs included)"
    ninja -C "$b"
else
    say "building ${TARGETS[*]} ${extra[*]}"
    ninja -C "$b" "${TARGETS[@]}" "${extra[@]}"
fi
# QEMU's own option ROMs (linuxboot_dma.bin for -kernel); they need a
# 32-bit capable gcc (gcc-multilib), found by configure.
if [ -f "$b/pc-bios/optionrom/Makefile" ]; then
    make -s -C "$b/pc-bios/optionrom" >/dev/null
fi
# The binaries look for firmware in the build tree's bundle; the +ds source
# has none, so point it at Debian's seabios/ipxe and the option ROMs we built.
bundle=$b/qemu-bundle/usr/local/share/qemu
mkdir -p "$bundle"
for f in /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom "$b"/pc-bios/optionrom/*.bin; do
    [ -e "$f" ] || continue
    ln -sf "$f" "$bundle/$(basename "$f")"
done
say "built in $b"
