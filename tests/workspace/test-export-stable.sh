#!/bin/bash
# Exporting a tree made from the series gives the series back, byte for
# byte, for each package (or the one given: qemu, libvirt): a clone of its
# tree in build/, re-made from the series with tree.sh --force, exported by
# a copy of scripts/ into an empty series directory.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

stable() {
    local pkg=$1 src var series t=$tmp/$1/tree
    case $pkg in
    qemu)    src=$top/build/qemu var=TREE series=patches ;;
    libvirt) src=$top/build/libvirt var=LV_TREE series=patches-libvirt ;;
    esac
    [ -d "$src/.git" ] || { echo "no $src; run make tree, make libvirt-tree"; return 1; }
    git clone -q --shared "$src" "$t"
    git -C "$t" config user.name t && git -C "$t" config user.email t@t.invalid
    env "$var=$t" "$top/scripts/tree.sh" "$pkg" --force 2>/dev/null
    mkdir -p "$tmp/$pkg/repo/$series"
    cp -r "$top/scripts" "$tmp/$pkg/repo/"
    # the cover letter's text is a source, not an export
    [ ! -f "$top/$series/cover-letter.txt" ] || cp "$top/$series/cover-letter.txt" "$tmp/$pkg/repo/$series/"
    env "$var=$t" BUILD_ROOT="$tmp/$pkg" "$tmp/$pkg/repo/scripts/export.sh" "$pkg" 2>/dev/null
    diff -r "$top/$series" "$tmp/$pkg/repo/$series"
    echo "export $pkg: byte-stable"
}

for pkg in ${1:-qemu libvirt}; do
    stable "$pkg"
done
