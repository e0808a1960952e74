#!/bin/bash
# tree.sh never throws away work that the series does not hold, for each
# package (or the one given: qemu, libvirt), on a clone of its tree in
# build/: an uncommitted change and a new commit are refused and kept;
# --force discards them and re-applies the series.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

refuses() {
    local pkg=$1 src var series file t=$tmp/$1
    case $pkg in
    qemu)    src=$top/build/qemu var=TREE series=patches file=block/block-backend.c ;;
    libvirt) src=$top/build/libvirt var=LV_TREE series=patches-libvirt file=src/qemu/qemu_command.c ;;
    esac
    [ -d "$src/.git" ] || { echo "no $src; run make tree, make libvirt-tree"; return 1; }
    git clone -q --shared "$src" "$t"
    git -C "$t" config user.name t && git -C "$t" config user.email t@t.invalid
    export "$var=$t"
    # the clone as the series makes it (build/ may hold work in progress)
    "$top/scripts/tree.sh" "$pkg" --force 2>/dev/null
    "$top/scripts/tree.sh" "$pkg" 2>&1 | grep -q "up to date"

    # An uncommitted change is refused, and kept
    echo "/* local work */" >> "$t/$file"
    if "$top/scripts/tree.sh" "$pkg" 2> "$tmp/err"; then
        echo "$pkg: dirty tree: tree.sh should refuse"; return 1
    fi
    grep -q "holds work that $series/ does not" "$tmp/err"
    grep -q "local work" "$t/$file"

    # So is a new commit
    git -C "$t" commit -qam "local commit"
    if "$top/scripts/tree.sh" "$pkg" 2> "$tmp/err"; then
        echo "$pkg: new commit: tree.sh should refuse"; return 1
    fi
    git -C "$t" log -1 --format=%s | grep -q "local commit"

    # --force discards it and re-applies the series
    "$top/scripts/tree.sh" "$pkg" --force 2>/dev/null
    [ "$(git -C "$t" rev-list --count upstream..HEAD)" = "$(grep -c . "$top/$series/series")" ]
    ! grep -q "local work" "$t/$file"
    echo "tree $pkg: refuses to discard work"
}

for pkg in ${1:-qemu libvirt}; do
    refuses "$pkg"
done
