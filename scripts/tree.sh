#!/bin/bash
# Create or refresh an unpacked QEMU tree as a git repository.
#
# usage: scripts/tree.sh [--upstream] [--force]
#
# build/qemu:           base commit tagged 'upstream' + one commit per patch
#                       of patches/series (git am).
# build/qemu-upstream:  (--upstream) the same base, no patches, for
#                       comparisons and benchmarks.
#
# The source is the Debian source package of qemu 10.0.x (scripts/fetch-qemu.sh),
# or QEMU_SRC: a directory (e.g. a 'git checkout v10.0.x', with its
# subprojects) or a release tarball.
#
# Work is never thrown away silently: a tree whose commits or changes are
# not in patches/ (since it was last applied or exported) is refused unless
# --force is given.
set -euo pipefail
. "$(dirname "$0")/common.sh"

upstream=0 force=${FORCE:-0}
for a in "$@"; do
    case $a in
    --upstream) upstream=1 ;;
    --force) force=1 ;;
    *) die "usage: $0 [--upstream] [--force]" ;;
    esac
done
[ "$force" = 0 ] || force=1
t=$TREE
[ $upstream = 1 ] && t=$UPSTREAM_TREE
stamp=$t/.git/qemu-retry-synced

# Unpack the source into $1 (a new directory).
unpack_source() {
    local d=$1
    rm -rf "$d"
    if [ -n "${QEMU_SRC:-}" ]; then
        mkdir -p "$d"
        if [ -d "$QEMU_SRC" ]; then
            say "copying QEMU_SRC=$QEMU_SRC"
            tar -C "$QEMU_SRC" --exclude=./.git --exclude=./build -cf - . | tar -C "$d" -xf -
        elif [ -f "$QEMU_SRC" ]; then
            say "unpacking QEMU_SRC=$QEMU_SRC"
            tar -C "$d" --strip-components=1 -xf "$QEMU_SRC"
        else
            die "QEMU_SRC=$QEMU_SRC is neither a directory nor a tarball"
        fi
        [ -f "$d/VERSION" ] || die "QEMU_SRC=$QEMU_SRC does not look like a QEMU source tree (no VERSION)"
        echo "QEMU_SRC $(cat "$d/VERSION")" > "$d/.debian-version"
    else
        "$top/scripts/fetch-qemu.sh" "$d"
    fi
    case $(cat "$d/VERSION") in
    10.0.*) ;;
    *) die "source is QEMU $(cat "$d/VERSION"), the series is for 10.0.x" ;;
    esac
}

make_base() {
    local d=$1 v
    v=$(cat "$d/.debian-version")
    rm -f "$d/.debian-version"
    (
        cd "$d"
        git init -q -b master .
        git config core.abbrev 12
        git config user.name "$GIT_COMMITTER_NAME"
        git config user.email "$GIT_COMMITTER_EMAIL"
        # -f: QEMU's .gitignore ignores the vendored subprojects, which the
        # offline build needs.
        git add -f -A .
        GIT_AUTHOR_NAME=upstream GIT_AUTHOR_EMAIL=upstream@qemu.invalid \
        GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
            git commit -q -m "QEMU $v" -m "Unpacked source of $v, base of the retry series."
        git tag upstream
    )
}

apply_series() {
    local d=$1 f
    git -C "$d" reset -q --hard upstream
    while read -r f; do
        [ -n "$f" ] || continue
        if ! git -C "$d" am -q -3 --keep-cr "$f" >&2; then
            git -C "$d" am --abort || true
            die "patch $(basename "$f") does not apply to $(git -C "$d" log -1 --format=%s upstream); fix the series in $d (see README, 'Working on the series')"
        fi
    done < <(series_files)
    tree_ids "$d" > "$d/.git/qemu-retry-synced"
}

if [ -d "$t/.git" ] && git -C "$t" rev-parse -q --verify upstream >/dev/null; then
    if [ $upstream = 1 ]; then
        [ -z "$(git -C "$t" status --porcelain --untracked-files=no)" ] ||
            [ $force = 1 ] || die "$t has local changes; commit them elsewhere or use --force"
        git -C "$t" reset -q --hard upstream
        say "$t is upstream ($(git -C "$t" log -1 --format=%s upstream))"
        exit 0
    fi
    now=$(tree_ids "$t")
    want=$(series_ids)
    dirty=$(git -C "$t" status --porcelain --untracked-files=no)
    if [ -z "$dirty" ] && [ "$now" = "$want" ]; then
        say "$t is up to date with patches/ ($(echo "$want" | grep -c . || true) patches)"
        exit 0
    fi
    if [ $force = 0 ]; then
        synced=$(cat "$stamp" 2>/dev/null || echo none)
        if [ -n "$dirty" ] || [ "$now" != "$synced" ]; then
            echo "${0##*/}: error: $t holds work that patches/ does not:" >&2
            [ -n "$dirty" ] && echo "  uncommitted changes" >&2
            [ "$now" != "$synced" ] && echo "  commits changed since they were last applied or exported" >&2
            echo "  Keep it with 'make export' (then commit patches/), or discard it with 'make tree FORCE=1'." >&2
            exit 1
        fi
    fi
    say "re-applying patches/ to $t"
    apply_series "$t"
    exit 0
fi

[ ! -e "$t" ] || [ $force = 1 ] ||
    die "$t exists but is not a workspace tree (no 'upstream' tag); move it away or use --force"
mkdir -p "$BUILD_ROOT"
# Unpack once into a shared pristine copy, then clone it for each tree.
if [ ! -d "$BUILD_ROOT/.src/.git" ] || [ -n "${QEMU_SRC:-}" ]; then
    unpack_source "$BUILD_ROOT/.src.new"
    make_base "$BUILD_ROOT/.src.new"
    rm -rf "$BUILD_ROOT/.src"
    mv "$BUILD_ROOT/.src.new" "$BUILD_ROOT/.src"
fi
rm -rf "$t"
git clone -q --no-local "$BUILD_ROOT/.src" "$t"
git -C "$t" rev-parse -q --verify upstream >/dev/null || die "$BUILD_ROOT/.src has no 'upstream' tag"
git -C "$t" remote remove origin
git -C "$t" config core.abbrev 12
git -C "$t" config user.name "$GIT_COMMITTER_NAME"
git -C "$t" config user.email "$GIT_COMMITTER_EMAIL"
if [ $upstream = 1 ]; then
    say "$t ready (upstream, no patches)"
else
    apply_series "$t"
    say "$t ready: $(git -C "$t" rev-list --count upstream..HEAD) patches on $(git -C "$t" log -1 --format=%s upstream)"
fi
