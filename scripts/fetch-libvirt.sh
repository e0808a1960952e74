#!/bin/bash
# Fetch and unpack the Debian source package of libvirt 11.3.0 (Debian 13).
#
# usage: scripts/fetch-libvirt.sh DESTDIR
#
# On success DESTDIR holds the upstream source with Debian's quilt patches
# applied (quilt push -a over debian/patches/series), a .pc directory that
# records them, and .debian-version.
#
# - apt's deb-src indexes live in a private state directory under the cache
#   dir (nothing is written to /etc); their URIs are copied from the
#   machine's own configured Debian sources (scripts/apt-src.sh, shared
#   with scripts/fetch-qemu.sh).
# - The archive's libvirt .dsc (and orig.tar.xz.asc) answer 404, so
#   'apt-get source' fails after downloading the two tarballs.  They are
#   downloaded from the URIs 'apt-get source --print-uris' gives, and
#   verified against the SHA256 sums of the Sources index (apt-cache
#   showsrc), which apt itself verified against the signed Release file.
#   The sums are kept next to the tarballs, so a second run needs no network.
# - LIBVIRT_DEB_VERSION (default: the pinned version) must be offered by
#   trixie's deb-src; there is no fallback to another version, since the
#   series' fixtures (QEMU caps, expected command lines) depend on it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

VERSION=${LIBVIRT_DEB_VERSION:-11.3.0-3+deb13u3}
UPSTREAM=${VERSION%-*}
RELEASE=trixie

dest=${1:?usage: $0 DESTDIR}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-retry
srcdir=$cache/src-libvirt
mkdir -p "$srcdir"

die() { echo "fetch-libvirt: error: $*" >&2; exit 1; }
say() { echo "fetch-libvirt: $*" >&2; }
. "$here/apt-src.sh"
apt_state "$cache/apt-libvirt"

orig=libvirt_$UPSTREAM.orig.tar.xz
deb=libvirt_$VERSION.debian.tar.xz
sums=$srcdir/libvirt_$VERSION.sha256

verify() {
    [ -s "$sums" ] && (cd "$srcdir" && sha256sum --quiet -c "$sums" 2>/dev/null)
}

if verify; then
    say "using cached, verified $orig and $deb"
else
    apt_update ||
        die "cannot reach the Debian archive to fetch the libvirt source (see above); check the network and /etc/apt/sources.list*"
    # The SHA256 block of the Sources stanza of exactly $VERSION.
    apt-cache "${APT[@]}" showsrc libvirt 2>/dev/null |
        awk -v v="$VERSION" '
            /^Package: /{p=$2} /^Version: /{ver=$2}
            /^Checksums-Sha256:/{on=(p=="libvirt" && ver==v); next}
            /^[^ ]/{on=0}
            on && NF==3 && ($3==o || $3==d) {print $1"  "$3}' o="$orig" d="$deb" |
        sort -u > "$sums.new"
    [ "$(wc -l < "$sums.new")" = 2 ] || {
        rm -f "$sums.new"
        die "libvirt $VERSION is not in $RELEASE's deb-src (offered: $(apt-cache "${APT[@]}" showsrc libvirt 2>/dev/null | awk '/^Version:/{print $2}' | sort -u | tr '\n' ' '))"
    }
    mv "$sums.new" "$sums"
    # apt-get source fails on the .dsc (404) but leaves the tarballs it
    # fetched before (apt's own transport, proxies and apt.conf apply).
    say "downloading $orig and $deb (about 10 MB; apt reports the .dsc's 404)"
    (cd "$srcdir" && apt-get "${APT[@]}" source --download-only -q "libvirt=$VERSION" \
        >"$state/source.log" 2>&1) || true
    for f in "$orig" "$deb"; do
        [ -s "$srcdir/$f" ] || { cat "$state/source.log" >&2; die "apt-get source did not download $f"; }
    done
    rm -f "$srcdir"/libvirt_*.dsc "$srcdir"/libvirt_*.asc
    verify || die "the downloaded tarballs do not match the SHA256 sums of the Sources index ($sums)"
fi

rm -rf "$dest.tmp"
mkdir -p "$dest.tmp"
say "unpacking $orig + $deb, applying Debian's quilt patches"
tar -C "$dest.tmp" --strip-components=1 -xf "$srcdir/$orig"
tar -C "$dest.tmp" -xf "$srcdir/$deb"
[ -f "$dest.tmp/debian/patches/series" ] || die "$deb has no debian/patches/series"
(cd "$dest.tmp" && QUILT_PATCHES=debian/patches quilt push -a -q --fuzz=0 >/dev/null) ||
    die "Debian's own quilt patches do not apply to $orig"
echo "$VERSION" > "$dest.tmp/.debian-version"
rm -rf "$dest"
mv "$dest.tmp" "$dest"
say "source ready in $dest ($(grep -vc '^\s*\(#\|$\)' "$dest/debian/patches/series") Debian patches applied)"
