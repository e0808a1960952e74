#!/bin/bash
# check-series.sh, for each package, on a fake tree (a base tagged
# 'upstream' with a checkpatch.pl that passes, and two commits) with the
# builds and libvirt's meson stubbed: every patch is checked out and
# reported "ok N", and a patch without Signed-off-by fails the check.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/repo" "$tmp/bin"
cp -r "$top/scripts" "$tmp/repo/"
printf '#!/bin/sh\nmkdir -p "${LV_TREE:-$TREE}/build"\n' > "$tmp/repo/scripts/build.sh"
cp "$tmp/repo/scripts/build.sh" "$tmp/repo/scripts/libvirt-build.sh"
printf '#!/bin/sh\nexit 0\n' > "$tmp/bin/meson"
chmod +x "$tmp/repo/scripts/build.sh" "$tmp/repo/scripts/libvirt-build.sh" "$tmp/bin/meson"

fake_tree() {   # fake_tree DIR: upstream + two signed-off commits
    local d=$1 i
    mkdir -p "$d/scripts"
    printf '#!/bin/sh\nexit 0\n' > "$d/scripts/checkpatch.pl"
    chmod +x "$d/scripts/checkpatch.pl"
    git -C "$d" init -q -b master
    git -C "$d" config user.name t && git -C "$d" config user.email t@t.invalid
    git -C "$d" add -A && git -C "$d" commit -qm base && git -C "$d" tag upstream
    for i in 1 2; do
        echo "$i" > "$d/file$i"
        git -C "$d" add -A && git -C "$d" commit -qm "patch $i" -m "Signed-off-by: t <t@t.invalid>"
    done
}

for pkg in qemu libvirt; do
    fake_tree "$tmp/$pkg"
    run() {
        env PATH="$tmp/bin:$PATH" TREE="$tmp/qemu" LV_TREE="$tmp/libvirt" BUILD_ROOT="$tmp/b-$pkg" \
            "$tmp/repo/scripts/check-series.sh" "$pkg" > "$tmp/out" 2>&1
    }
    run || { cat "$tmp/out"; echo "$pkg: check-series should pass"; exit 1; }
    grep -qx "ok 1 patch 1" "$tmp/out" && grep -qx "ok 2 patch 2" "$tmp/out"
    git -C "$tmp/$pkg" commit -q --amend -m "patch 2, not signed off"
    if run; then cat "$tmp/out"; echo "$pkg: a patch without Signed-off-by passed"; exit 1; fi
    grep -qx "not ok 2 signoff: patch 2, not signed off" "$tmp/out"
    echo "check-series $pkg: every patch checked, a missing Signed-off-by fails"
done
