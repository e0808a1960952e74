#!/bin/bash
# Create or refresh build/libvirt: Debian 13's libvirt source package as a
# git repository, with the libvirt series applied.
#
# usage: scripts/libvirt-tree.sh [--force]
#
# build/libvirt:  base commit tagged 'upstream' = libvirt 11.3.0 with
#                 Debian's 30 quilt patches applied (scripts/fetch-libvirt.sh),
#                 + one commit per patch of patches-libvirt/series (git am).
#
# Work is never thrown away silently: a tree whose commits or changes are
# not in patches-libvirt/ (since it was last applied or exported) is refused
# unless --force (FORCE=1) is given.
set -euo pipefail
. "$(dirname "$0")/common.sh"
LV_TREE=${LV_TREE:-$BUILD_ROOT/libvirt}
PATCHES=$top/patches-libvirt        # for series_files/series_ids

force=${FORCE:-0}
for a in "$@"; do
    case $a in
    --force) force=1 ;;
    *) die "usage: $0 [--force]" ;;
    esac
done
[ "$force" = 0 ] || force=1
t=$LV_TREE
stamp=$t/.git/qemu-retry-synced
pristine=$BUILD_ROOT/libvirt-src

git_setup() {
    git -C "$1" config core.abbrev 12
    git -C "$1" config user.name "$GIT_COMMITTER_NAME"
    git -C "$1" config user.email "$GIT_COMMITTER_EMAIL"
    # quilt's state and the meson build directory stay out of git status
    printf '/.pc/\n/build/\n' >> "$(git -C "$1" rev-parse --path-format=absolute --git-path info/exclude)"
}

make_base() {
    local d=$1 v
    v=$(cat "$d/.debian-version")
    rm -f "$d/.debian-version"
    git -C "$d" init -q -b master .
    git_setup "$d"
    # -f: whatever .gitignore the tarball carries, the tree is the package
    (cd "$d" && git add -f -A . ':!.pc')
    (cd "$d" &&
     GIT_AUTHOR_NAME=upstream GIT_AUTHOR_EMAIL=upstream@libvirt.invalid \
     GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
        git commit -q -m "libvirt $v" \
            -m "Debian 13's libvirt source package $v, Debian's quilt patches applied; base of the retry series.")
    git -C "$d" tag upstream
}

apply_series() {
    local d=$1 f
    git -C "$d" reset -q --hard upstream
    while read -r f; do
        [ -n "$f" ] || continue
        if ! git -C "$d" am -q -3 --keep-cr "$f" >&2; then
            git -C "$d" am --abort || true
            die "patch $(basename "$f") does not apply to $(git -C "$d" log -1 --format=%s upstream); fix the series in $d"
        fi
    done < <(series_files)
    tree_ids "$d" > "$stamp"
}

if [ -d "$t/.git" ] && git -C "$t" rev-parse -q --verify upstream >/dev/null; then
    now=$(tree_ids "$t")
    want=$(series_ids)
    dirty=$(git -C "$t" status --porcelain --untracked-files=no)
    if [ -z "$dirty" ] && [ "$now" = "$want" ]; then
        say "$t is up to date with patches-libvirt/ ($(echo "$want" | grep -c . || true) patches)"
        exit 0
    fi
    if [ $force = 0 ]; then
        synced=$(cat "$stamp" 2>/dev/null || echo none)
        if [ -n "$dirty" ] || [ "$now" != "$synced" ]; then
            echo "${0##*/}: error: $t holds work that patches-libvirt/ does not:" >&2
            [ -n "$dirty" ] && echo "  uncommitted changes" >&2
            [ "$now" != "$synced" ] && echo "  commits changed since they were last applied or exported" >&2
            echo "  Keep it with 'make export-libvirt' (then commit patches-libvirt/), or discard it with 'make libvirt-tree FORCE=1'." >&2
            exit 1
        fi
    fi
    say "re-applying patches-libvirt/ to $t"
    apply_series "$t"
    exit 0
fi

[ ! -e "$t" ] || [ $force = 1 ] ||
    die "$t exists but is not a workspace tree (no 'upstream' tag); move it away or use --force"
mkdir -p "$BUILD_ROOT"
# Unpack once into a pristine repository, then clone it for the tree.
if [ ! -d "$pristine/.git" ]; then
    rm -rf "$pristine.new"
    "$top/scripts/fetch-libvirt.sh" "$pristine.new"
    make_base "$pristine.new"
    rm -rf "$pristine"
    mv "$pristine.new" "$pristine"
fi
rm -rf "$t"
git clone -q --no-local "$pristine" "$t"
git -C "$t" rev-parse -q --verify upstream >/dev/null || die "$pristine has no 'upstream' tag"
git -C "$t" remote remove origin
git_setup "$t"
apply_series "$t"
say "$t ready: $(git -C "$t" rev-list --count upstream..HEAD) patches on $(git -C "$t" log -1 --format=%s upstream)"
