#!/bin/bash
# Check that a package's series applies with quilt inside Debian's source
# package, the way a packager would carry it.
#
# usage: scripts/check-quilt.sh [qemu|libvirt]   (default: qemu)
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkg_only "$@"
d=$BUILD_ROOT/$PKG-quilt-check
n=$(series_files | wc -l)
[ "$n" -gt 0 ] || die "${PATCHES#"$top"/}/series is empty"
rm -rf "$d"
"$PKG_FETCH" "$d"
mkdir -p "$d/debian/patches/retry"
while read -r p; do
    cp "$p" "$d/debian/patches/retry/"
    echo "retry/$(basename "$p")" >> "$d/debian/patches/series"
done < <(series_files)
cd "$d"
# the fetch script applied Debian's own patches already (.pc records them)
QUILT_PATCHES=debian/patches quilt push -a -q --fuzz=0 >/dev/null ||
    die "the series does not apply with quilt on $PKG $(cat .debian-version)"
applied=$(QUILT_PATCHES=debian/patches quilt applied | grep -c "/retry/" || true)
[ "$applied" = "$n" ] || die "quilt applied $applied of $n patches"
echo "quilt: all $applied patches apply to Debian's $PKG $(cat .debian-version)"
rm -rf "$d"
