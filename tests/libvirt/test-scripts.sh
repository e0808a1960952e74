#!/bin/bash
# The libvirt series' workspace scripts, on a clone of build/libvirt:
#   tree:   libvirt-tree.sh never throws away work that patches-libvirt/
#           does not hold (uncommitted change, new commit), --force does;
#   export: re-exporting the tree made from patches-libvirt/ changes nothing.
# Prints one TAP line per check.
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d /tmp/libvirt-scripts-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
tap() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fi; }

tree_test() {
    set -e
    [ -d "$top/build/libvirt/.git" ] || { echo "no build/libvirt; run make libvirt-tree"; return 1; }
    git clone -q --shared "$top/build/libvirt" "$tmp/lv"
    git -C "$tmp/lv" config user.name t && git -C "$tmp/lv" config user.email t@t.invalid
    export LV_TREE=$tmp/lv
    "$top/scripts/libvirt-tree.sh" 2>&1 | grep -q "up to date"
    # an uncommitted change is refused, and kept
    echo "/* local work */" >> "$tmp/lv/src/qemu/qemu_command.c"
    if "$top/scripts/libvirt-tree.sh" 2> "$tmp/err"; then
        echo "dirty tree: libvirt-tree.sh should refuse"; return 1
    fi
    grep -q "holds work that patches-libvirt/ does not" "$tmp/err"
    grep -q "local work" "$tmp/lv/src/qemu/qemu_command.c"
    # so is a new commit
    git -C "$tmp/lv" commit -qam "local commit"
    if "$top/scripts/libvirt-tree.sh" 2> "$tmp/err"; then
        echo "new commit: libvirt-tree.sh should refuse"; return 1
    fi
    git -C "$tmp/lv" log -1 --format=%s | grep -q "local commit"
    # --force discards it and re-applies the series
    "$top/scripts/libvirt-tree.sh" --force 2>/dev/null
    [ "$(git -C "$tmp/lv" rev-list --count upstream..HEAD)" = "$(grep -c . "$top/patches-libvirt/series")" ]
    ! grep -q "local work" "$tmp/lv/src/qemu/qemu_command.c"
}

# on the clone tree_test left as patches-libvirt/ makes it
export_test() {
    set -e
    [ "$(git -C "$tmp/lv" rev-list --count upstream..HEAD 2>/dev/null)" = \
      "$(grep -c . "$top/patches-libvirt/series")" ] || { echo "no tree from tree_test"; return 1; }
    mkdir -p "$tmp/repo" && cp -r "$top/scripts" "$tmp/repo/" &&
        cp -r "$top/patches-libvirt" "$tmp/patches.orig"
    mkdir -p "$tmp/repo/patches-libvirt"
    [ ! -f "$top/patches-libvirt/cover-letter.txt" ] ||
        cp "$top/patches-libvirt/cover-letter.txt" "$tmp/repo/patches-libvirt/"
    LV_TREE=$tmp/lv BUILD_ROOT=$tmp "$tmp/repo/scripts/libvirt-export.sh" 2>/dev/null
    diff -r "$tmp/patches.orig" "$tmp/repo/patches-libvirt"
}

(tree_test) > "$tmp/tree.log" 2>&1; rc=$?
tap $rc "libvirt-tree.sh refuses to discard work (uncommitted change, new commit), --force does"
[ $rc = 0 ] || sed 's/^/# /' "$tmp/tree.log"
(export_test) > "$tmp/export.log" 2>&1; rc=$?
tap $rc "libvirt-export.sh is byte-stable"
[ $rc = 0 ] || sed 's/^/# /' "$tmp/export.log"
echo "1..$n"
