#!/bin/bash
# tree.sh never throws away work that patches/ does not hold.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -d "$top/build/qemu/.git" ] || { echo "no build/qemu; run make tree"; exit 1; }

git clone -q "$top/build/qemu" "$tmp/qemu"
git -C "$tmp/qemu" config user.name t && git -C "$tmp/qemu" config user.email t@t.invalid
export TREE=$tmp/qemu
"$top/scripts/tree.sh" 2>&1 | grep -q "up to date"

# An uncommitted change is refused, and kept
echo "/* local work */" >> "$tmp/qemu/block/block-backend.c"
if "$top/scripts/tree.sh" 2> "$tmp/err"; then
    echo "dirty tree: tree.sh should refuse"; exit 1
fi
grep -q "holds work that patches/ does not" "$tmp/err"
grep -q "local work" "$tmp/qemu/block/block-backend.c"

# So is a new commit
git -C "$tmp/qemu" commit -qam "local commit"
if "$top/scripts/tree.sh" 2> "$tmp/err"; then
    echo "new commit: tree.sh should refuse"; exit 1
fi
git -C "$tmp/qemu" log -1 --format=%s | grep -q "local commit"

# --force discards it and re-applies the series
"$top/scripts/tree.sh" --force 2>/dev/null
[ "$(git -C "$tmp/qemu" rev-list --count upstream..HEAD)" = "$(grep -c . "$top/patches/series")" ]
! grep -q "local work" "$tmp/qemu/block/block-backend.c"
echo "tree: refuses to discard work"
