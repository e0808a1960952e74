#!/bin/bash
# Fetch and unpack the Debian source package of QEMU 10.0.x.
#
# usage: scripts/fetch-qemu.sh DESTDIR
#
# Prints nothing but progress on stderr; on success DESTDIR holds the
# unpacked source with Debian's quilt patches applied (dpkg-source -x).
#
# - apt's deb-src indexes live in a private state directory under the cache
#   dir (nothing is written to /etc); their URIs are copied from the
#   machine's own configured Debian sources (scripts/apt-src.sh).
# - QEMU_DEB_VERSION (default: the pinned version below) is preferred; when
#   the archive no longer has it, the newest 1:10.0.x it offers is used.
# - Downloads are cached in $XDG_CACHE_HOME/qemu-retry/src and verified
#   against the .dsc checksums each time; a second run downloads nothing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

PINNED=${QEMU_DEB_VERSION:-1:10.0.13+ds-0+deb13u1}
SERIES=10.0            # upstream series the patches are written against
RELEASE=trixie         # the Debian release whose stable qemu is 10.0.x

dest=${1:?usage: $0 DESTDIR}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-retry
srcdir=$cache/src
mkdir -p "$srcdir"

die() { echo "fetch-qemu: error: $*" >&2; exit 1; }
say() { echo "fetch-qemu: $*" >&2; }
. "$here/apt-src.sh"
apt_state "$cache/apt"

# A cached, verified download of some 1:10.0.x: use it without the network
# when it is the pinned version, or when the archive cannot be reached.
cached_dsc() {
    local v=${1#*:}
    ls "$srcdir"/qemu_"$v".dsc 2>/dev/null | head -1 || true
}

verify_dsc() {
    # Every file the .dsc names must be present with its SHA256.
    local dsc=$1 dir
    dir=$(dirname "$dsc")
    awk '/^Checksums-Sha256:/{on=1;next} /^[^ ]/{on=0} on&&NF==3{print $1"  "$3}' "$dsc" |
        (cd "$dir" && sha256sum --quiet -c -) ||
        return 1
}

version=$PINNED
dsc=$(cached_dsc "$PINNED")
if [ -z "$dsc" ] || ! verify_dsc "$dsc"; then
    if ! apt_update; then
        dsc=$(ls -t "$srcdir"/qemu_${SERIES}.*.dsc 2>/dev/null | head -1 || true)
        [ -n "$dsc" ] && verify_dsc "$dsc" ||
            die "cannot reach the Debian archive to fetch the qemu source (see above); check the network and /etc/apt/sources.list*"
        say "archive unreachable; using cached $(basename "$dsc")"
    else
        avail=$(apt-cache "${APT[@]}" showsrc qemu 2>/dev/null |
                awk '/^Package: /{p=$2} /^Version: /{if (p=="qemu") print $2}' | sort -u)
        [ -n "$avail" ] ||
            die "the archive's deb-src indexes for $RELEASE offer no qemu source package"
        if ! grep -qxF "$PINNED" <<<"$avail"; then
            version=$(grep -E "^1:${SERIES//./\\.}\.[0-9]+" <<<"$avail" |
                      sort -V | tail -1 || true)
            [ -n "$version" ] ||
                die "no qemu 1:$SERIES.x in $RELEASE's deb-src (offered: $(echo $avail)); set QEMU_SRC to a v$SERIES.x tree"
            say "pinned $PINNED is gone from the archive; using newest $version"
        fi
        dsc=$(cached_dsc "$version")
        if [ -z "$dsc" ] || ! verify_dsc "$dsc"; then
            say "downloading qemu=$version source (about 40 MB)"
            (cd "$srcdir" && apt-get "${APT[@]}" source --download-only -q "qemu=$version" >&2) ||
                die "downloading qemu=$version failed; the archive may have dropped it (retry, or set QEMU_DEB_VERSION)"
            dsc=$(cached_dsc "$version")
            [ -n "$dsc" ] && verify_dsc "$dsc" || die "downloaded qemu=$version does not verify against its .dsc"
        fi
    fi
else
    say "using cached, verified $(basename "$dsc")"
fi

rm -rf "$dest.tmp"
say "unpacking $(basename "$dsc") (dpkg-source applies Debian's quilt patches)"
dpkg-source --no-check -x "$dsc" "$dest.tmp" >/dev/null ||
    die "dpkg-source -x $(basename "$dsc") failed"
basename "$dsc" .dsc | sed 's/^qemu_//' > "$dest.tmp/.debian-version"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
say "source ready in $dest"
