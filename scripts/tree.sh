#!/bin/bash
# Create or refresh an unpacked source tree of a package as a git
# repository, with its series applied.
#
# usage: scripts/tree.sh [qemu|libvirt] [--upstream] [--force]
#
# qemu (the default):
#   build/qemu:           base commit tagged 'upstream' + one commit per patch
#                         of patches/series (git am).
#   build/qemu-upstream:  (--upstream) the same base, no patches, for
#                         comparisons and benchmarks.
#   The source is the Debian source package of qemu 10.0.x
#   (scripts/fetch-qemu.sh), or QEMU_SRC: a directory (e.g. a 'git checkout
#   v10.0.x', with its subprojects) or a release tarball.
# libvirt:
#   build/libvirt:        base commit tagged 'upstream' = libvirt 11.3.0 with
#                         Debian's 30 quilt patches applied
#                         (scripts/fetch-libvirt.sh), + one commit per patch
#                         of patches-libvirt/series (git am).
#
# Work is never thrown away silently: a tree whose commits or changes are
# not in the series (since it was last applied or exported) is refused
# unless --force (FORCE=1) is given.
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkg=qemu
case ${1:-} in qemu|libvirt) pkg=$1; shift ;; esac
pkg_select "$pkg"
upstream=0 force=${FORCE:-0}
for a in "$@"; do
    case $a in
    --upstream) [ "$PKG" = qemu ] || die "--upstream is for qemu only"; upstream=1 ;;
    --force) force=1 ;;
    *) die "usage: $0 [qemu|libvirt] [--upstream] [--force]" ;;
    esac
done
[ "$force" = 0 ] || force=1
t=$PKG_TREE
[ $upstream = 1 ] && t=$UPSTREAM_TREE
stamp=$t/.git/qemu-retry-synced
series=${PATCHES#"$top"/}/

git_setup() {
    git -C "$1" config core.abbrev 12
    git -C "$1" config user.name "$GIT_COMMITTER_NAME"
    git -C "$1" config user.email "$GIT_COMMITTER_EMAIL"
    # libvirt: quilt's state and the meson build directory stay out of git
    # status (QEMU's own .gitignore has build/; its .pc is in the base)
    [ "$PKG" = qemu ] ||
        printf '/.pc/\n/build/\n' >> "$(git -C "$1" rev-parse --path-format=absolute --git-path info/exclude)"
}

# Unpack the source into $1 (a new directory), with .debian-version.
unpack_source() {
    local d=$1
    rm -rf "$d"
    if [ "$PKG" = qemu ] && [ -n "${QEMU_SRC:-}" ]; then
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
        "$PKG_FETCH" "$d"
    fi
    [ "$PKG" = qemu ] || return 0
    case $(cat "$d/VERSION") in
    10.0.*) ;;
    *) die "source is QEMU $(cat "$d/VERSION"), the series is for 10.0.x" ;;
    esac
}

make_base() {
    local d=$1 v body
    v=$(cat "$d/.debian-version")
    rm -f "$d/.debian-version"
    git -C "$d" init -q -b master .
    git_setup "$d"
    # -f: QEMU's .gitignore ignores the vendored subprojects, which the
    # offline build needs; libvirt's tree is the package, whatever its
    # .gitignore says, but for quilt's state
    if [ "$PKG" = qemu ]; then
        (cd "$d" && git add -f -A .)
        body="Unpacked source of $v, base of the retry series."
    else
        (cd "$d" && git add -f -A . ':!.pc')
        body="Debian 13's libvirt source package $v, Debian's quilt patches applied; base of the retry series."
    fi
    (cd "$d" &&
     GIT_AUTHOR_NAME=upstream GIT_AUTHOR_EMAIL=upstream@$PKG.invalid \
     GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' \
        git commit -q -m "$PKG_NAME $v" -m "$body")
    git -C "$d" tag upstream
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
        say "$t is up to date with $series ($(echo "$want" | grep -c . || true) patches)"
        exit 0
    fi
    if [ $force = 0 ]; then
        synced=$(cat "$stamp" 2>/dev/null || echo none)
        if [ -n "$dirty" ] || [ "$now" != "$synced" ]; then
            echo "${0##*/}: error: $t holds work that $series does not:" >&2
            [ -n "$dirty" ] && echo "  uncommitted changes" >&2
            [ "$now" != "$synced" ] && echo "  commits changed since they were last applied or exported" >&2
            echo "  Keep it with 'make $PKG_MAKE_EXPORT' (then commit $series), or discard it with 'make $PKG_MAKE_TREE FORCE=1'." >&2
            exit 1
        fi
    fi
    say "re-applying $series to $t"
    apply_series "$t"
    exit 0
fi

[ ! -e "$t" ] || [ $force = 1 ] ||
    die "$t exists but is not a workspace tree (no 'upstream' tag); move it away or use --force"
mkdir -p "$BUILD_ROOT"
# Unpack once into a pristine repository, then clone it for each tree.
if [ ! -d "$PKG_PRISTINE/.git" ] || { [ "$PKG" = qemu ] && [ -n "${QEMU_SRC:-}" ]; }; then
    unpack_source "$PKG_PRISTINE.new"
    make_base "$PKG_PRISTINE.new"
    rm -rf "$PKG_PRISTINE"
    mv "$PKG_PRISTINE.new" "$PKG_PRISTINE"
fi
rm -rf "$t"
git clone -q --no-local "$PKG_PRISTINE" "$t"
git -C "$t" rev-parse -q --verify upstream >/dev/null || die "$PKG_PRISTINE has no 'upstream' tag"
git -C "$t" remote remove origin
git_setup "$t"
if [ $upstream = 1 ]; then
    say "$t ready (upstream, no patches)"
else
    apply_series "$t"
    say "$t ready: $(git -C "$t" rev-list --count upstream..HEAD) patches on $(git -C "$t" log -1 --format=%s upstream)"
fi
