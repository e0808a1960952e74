#!/bin/bash
# Check that every patch of a package's series builds on its own
# (bisectability) and has a Signed-off-by, and:
#
#   qemu (the default): passes QEMU's scripts/checkpatch.pl;
#   libvirt: passes libvirt's whole test suite as check-libvirt runs it
#     (meson test --no-suite syntax-check) and libvirt's syntax-check for
#     the files it touches.
#
# usage: scripts/check-series.sh [qemu|libvirt]
#
# libvirt's syntax-check runs offline (meson test --suite syntax-check,
# about 30 s), but on this tree it fails for files the series does not
# touch: the tree is Debian's source package (debian/, the vendored
# keycodemapdb subproject, po/ files are not in upstream git, whose file
# list the rules walk).  A rule therefore counts against a patch only when
# its report names a file that patch touches.
#
# Uses a separate worktree and build directory (build/series-check,
# build/libvirt-series), so the package's tree is left alone; ccache makes
# the per-patch builds incremental.
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkg_only "$@"
t=$PKG_TREE
if [ "$PKG" = qemu ]; then
    wt=$BUILD_ROOT/series-check log=$BUILD_ROOT/series-check.log
else
    wt=$BUILD_ROOT/libvirt-series log=$BUILD_ROOT/libvirt-series.log
fi
git -C "$t" rev-parse -q --verify upstream >/dev/null || die "run 'make $PKG_MAKE_TREE' first"

commits=$(git -C "$t" rev-list --reverse upstream..HEAD)
[ -n "$commits" ] || die "the $PKG series is empty"

if [ ! -e "$wt/.git" ]; then
    git -C "$t" worktree add -q -f --detach "$wt" upstream
    if [ "$PKG" = libvirt ]; then
        ex=$(git -C "$wt" rev-parse --path-format=absolute --git-path info/exclude)
        grep -qx /build/ "$ex" 2>/dev/null || printf '/.pc/\n/build/\n' >> "$ex"
    fi
fi

# QEMU: checkpatch, then the build.  Prints the failure, returns 1.
check_qemu() {
    local c=$1 n=$2 subj=$3
    if ! (cd "$wt" && ./scripts/checkpatch.pl "$c^..$c" >/dev/null 2>&1); then
        echo "not ok $n checkpatch: $subj"
        (cd "$wt" && ./scripts/checkpatch.pl "$c^..$c" | tail -20) || true
        return 1
    fi
    if ! TREE=$wt "$top/scripts/build.sh" >"$log" 2>&1; then
        echo "not ok $n build: $subj (see $log)"
        return 1
    fi
}

# libvirt: the build, the tests, syntax-check on the files the patch touches.
check_libvirt() {
    local c=$1 n=$2 subj=$3 files bad= r
    if ! LV_TREE=$wt "$top/scripts/libvirt-build.sh" >>"$log" 2>&1; then
        echo "not ok $n build: $subj (see $log)"
        return 1
    fi
    if ! (cd "$wt/build" && meson test --no-suite syntax-check) >>"$log" 2>&1; then
        echo "not ok $n tests: $subj (see $log)"
        return 1
    fi
    files=$(git -C "$t" diff --name-only "$c^" "$c")
    (cd "$wt/build" && meson test --no-rebuild --suite syntax-check) >"$log.sc" 2>&1 || true
    cat "$log.sc" >> "$log"
    for r in $(grep -oE '^ *[0-9]+/[0-9]+ libvirt:syntax-check / [A-Za-z0-9_-]+ +FAIL' "$log.sc" |
                   awk '{print $4}'); do
        if make -s -C "$wt/build/build-aux" "sc_$r" 2>&1 | grep -qF -f <(echo "$files"); then
            bad="$bad $r"
        fi
    done
    if [ -n "$bad" ]; then
        echo "not ok $n syntax-check:$bad: $subj"
        for r in $bad; do
            make -s -C "$wt/build/build-aux" "sc_$r" 2>&1 | grep -F -f <(echo "$files") | head -5
        done
        return 1
    fi
}

[ "$PKG" = qemu ] || : > "$log"
fail=0 n=0
for c in $commits; do
    n=$((n + 1))
    subj=$(git -C "$t" log -1 --format=%s "$c")
    git -C "$wt" checkout -q --detach "$c"
    if ! git -C "$t" log -1 --format=%B "$c" | grep -q '^Signed-off-by: '; then
        echo "not ok $n signoff: $subj"
        fail=1
        continue
    fi
    if "check_$PKG" "$c" "$n" "$subj"; then
        echo "ok $n $subj"
    else
        fail=1
    fi
done
if [ "$PKG" = qemu ]; then
    [ $fail = 0 ] && echo "series: all $n patches build and pass checkpatch"
else
    [ $fail = 0 ] && echo "libvirt series: all $n patches build, pass the tests and syntax-check"
fi
exit $fail
