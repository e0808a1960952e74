#!/bin/bash
# Re-exporting the tree that was made from patches/ changes nothing.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -d "$top/build/qemu/.git" ] || { echo "no build/qemu; run make tree"; exit 1; }

git clone -q "$top/build/qemu" "$tmp/tree"
git -C "$tmp/tree" config user.name t && git -C "$tmp/tree" config user.email t@t.invalid
mkdir -p "$tmp/repo" && cp -r "$top/scripts" "$tmp/repo/" && cp -r "$top/patches" "$tmp/patches.orig"
mkdir -p "$tmp/repo/patches"
# The cover letter's text is a source, not an export
[ ! -f "$top/patches/cover-letter.txt" ] || cp "$top/patches/cover-letter.txt" "$tmp/repo/patches/"
TREE=$tmp/tree BUILD_ROOT=$tmp "$tmp/repo/scripts/export.sh"
diff -r "$tmp/patches.orig" "$tmp/repo/patches"
echo "export: byte-stable"
