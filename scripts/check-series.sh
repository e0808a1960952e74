#!/bin/bash
# Check that every patch of the series builds on its own (bisectability)
# and passes QEMU's scripts/checkpatch.pl.
#
# Uses a separate worktree and build directory (build/series-check), so
# build/qemu is left alone; ccache makes the per-patch builds incremental.
set -euo pipefail
. "$(dirname "$0")/common.sh"

t=$TREE
wt=$BUILD_ROOT/series-check
git -C "$t" rev-parse -q --verify upstream >/dev/null || die "run 'make tree' first"

commits=$(git -C "$t" rev-list --reverse upstream..HEAD)
[ -n "$commits" ] || die "the series is empty"

if [ ! -d "$wt/.git" ] && [ ! -f "$wt/.git" ]; then
    git -C "$t" worktree add -q -f --detach "$wt" upstream
fi
fail=0 n=0
for c in $commits; do
    n=$((n + 1))
    subj=$(git -C "$t" log -1 --format=%s "$c")
    git -C "$wt" checkout -q --detach "$c"
    if ! (cd "$wt" && ./scripts/checkpatch.pl "$c^..$c" >/dev/null 2>&1 &&
          git log -1 --format=%B "$c" | grep -q '^Signed-off-by: '); then
        echo "not ok $n checkpatch/signoff: $subj"
        (cd "$wt" && ./scripts/checkpatch.pl "$c^..$c" | tail -20) || true
        fail=1
        continue
    fi
    if ! TREE=$wt "$top/scripts/build.sh" >"$BUILD_ROOT/series-check.log" 2>&1; then
        echo "not ok $n build: $subj (see $BUILD_ROOT/series-check.log)"
        fail=1
        continue
    fi
    echo "ok $n $subj"
done
[ $fail = 0 ] && echo "series: all $n patches build and pass checkpatch"
exit $fail
