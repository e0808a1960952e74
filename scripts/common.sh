# Shared settings for the workspace scripts (sourced, not run).
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_ROOT=${BUILD_ROOT:-$top/build}
TREE=${TREE:-$BUILD_ROOT/qemu}
UPSTREAM_TREE=${UPSTREAM_TREE:-$BUILD_ROOT/qemu-upstream}
LV_TREE=${LV_TREE:-$BUILD_ROOT/libvirt}
PATCHES=$top/patches
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-retry

# ccache: outside the repository, shared by every tree under $BUILD_ROOT
# (patched, upstream, a helper's), which only hit each other's entries when
# paths are made relative to a common base and the cwd is not hashed.
export CCACHE_DIR=${CCACHE_DIR:-$CACHE/ccache}
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$BUILD_ROOT}
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-6G}

# Identity for the commits the workspace makes in build/ trees.
export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-qemu-retry developers}
export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-dev@qemu-retry.invalid}

die() { echo "${0##*/}: error: $*" >&2; exit 1; }
say() { echo "${0##*/}: $*" >&2; }

# The source packages the workspace carries a series for.  pkg_select PKG
# (qemu or libvirt) sets, for the scripts that serve both (tree, export,
# check-quilt, check-series; the package is their first argument, qemu when
# none is given):
#   PKG, PKG_NAME     qemu, QEMU / libvirt, libvirt
#   PKG_TREE          the patched tree (TREE, LV_TREE)
#   PATCHES           the series (patches/, patches-libvirt/)
#   PKG_PRISTINE      the unpacked source as a git repository, cloned for trees
#   PKG_FETCH         the script that fetches and unpacks Debian's source package
#   PKG_SRC_CACHE     where that script keeps Debian's tarballs (and .dsc)
#   PKG_MAKE_TREE, PKG_MAKE_EXPORT   the make targets, for messages
pkg_select() {
    case $1 in
    qemu)
        PKG=qemu PKG_NAME=QEMU PKG_TREE=$TREE PATCHES=$top/patches
        PKG_PRISTINE=$BUILD_ROOT/.src PKG_FETCH=$top/scripts/fetch-qemu.sh
        PKG_SRC_CACHE=$CACHE/src
        PKG_MAKE_TREE=tree PKG_MAKE_EXPORT=export ;;
    libvirt)
        PKG=libvirt PKG_NAME=libvirt PKG_TREE=$LV_TREE PATCHES=$top/patches-libvirt
        PKG_PRISTINE=$BUILD_ROOT/libvirt-src PKG_FETCH=$top/scripts/fetch-libvirt.sh
        PKG_SRC_CACHE=$CACHE/src-libvirt
        PKG_MAKE_TREE=libvirt-tree PKG_MAKE_EXPORT=export-libvirt ;;
    *) die "unknown source package '$1' (qemu, libvirt)" ;;
    esac
}
# pkg_only [PKG]: pkg_select for a script whose only argument is the package
pkg_only() {
    [ $# -le 1 ] || die "usage: ${0##*/} [qemu|libvirt]"
    pkg_select "${1:-qemu}"
}

# Stable patch-ids of the commits upstream..HEAD of a tree, sorted.
tree_ids() {
    local t=$1 c
    git -C "$t" rev-list --reverse upstream..HEAD | while read -r c; do
        git -C "$t" show "$c" | git patch-id --stable | cut -d' ' -f1
    done
}

# Stable patch-ids of patches/series, in order.
series_ids() {
    local p
    [ -f "$PATCHES/series" ] || return 0
    grep -v '^\s*\(#\|$\)' "$PATCHES/series" | while read -r p; do
        git patch-id --stable < "$PATCHES/$p" | cut -d' ' -f1
    done
}

series_files() {
    [ -f "$PATCHES/series" ] || return 0
    grep -v '^\s*\(#\|$\)' "$PATCHES/series" | sed "s|^|$PATCHES/|"
}

# Fill in the cover letter that git format-patch --cover-letter wrote ($1):
# subject (first line) and text from a cover-letter.txt ($2), date $3 (the
# last commit's, so that an export stays byte-stable); git's shortlog and
# diffstat stay.
fill_cover_letter() {
    python3 - "$1" "$2" "$3" <<'PY'
import re, sys
path, src, date = sys.argv[1:4]
letter = open(path).read()
subject, _, blurb = open(src).read().partition('\n')
letter = re.sub(r'^Date: .*$', 'Date: ' + date, letter, count=1, flags=re.M)
letter = letter.replace('*** SUBJECT HERE ***', subject.strip(), 1)
letter = letter.replace('*** BLURB HERE ***', blurb.strip('\n'), 1)
open(path, 'w').write(letter)
PY
}

# quilt_series DIR: carry the series in DIR, a Debian source package
# unpacked by $PKG_FETCH (Debian's own patches applied, .pc records them),
# the way a packager would: the patches go to debian/patches/retry/ (no
# clash with Debian's names), are appended to debian/patches/series and
# pushed with quilt, without fuzz.  Fails unless every patch applies;
# prints how many did.
quilt_series() {
    local d=$1 n p applied
    n=$(series_files | wc -l)
    [ "$n" -gt 0 ] || die "${PATCHES#"$top"/}/series is empty"
    mkdir -p "$d/debian/patches/retry"
    while read -r p; do
        cp "$p" "$d/debian/patches/retry/"
        echo "retry/$(basename "$p")" >> "$d/debian/patches/series"
    done < <(series_files)
    (cd "$d" && QUILT_PATCHES=debian/patches quilt push -a -q --fuzz=0 >/dev/null) ||
        die "the series does not apply with quilt on $PKG $(cat "$d/.debian-version")"
    applied=$(cd "$d" && QUILT_PATCHES=debian/patches quilt applied | grep -c "/retry/" || true)
    [ "$applied" = "$n" ] || die "quilt applied $applied of $n patches"
    echo "$applied"
}
