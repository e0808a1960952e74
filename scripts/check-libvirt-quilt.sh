#!/bin/bash
# Check that the libvirt series applies with quilt inside Debian's libvirt
# source package, the way a packager would carry it.
set -euo pipefail
. "$(dirname "$0")/common.sh"
PATCHES=$top/patches-libvirt

d=$BUILD_ROOT/libvirt-quilt-check
rm -rf "$d"
"$top/scripts/fetch-libvirt.sh" "$d"
n=$(series_files | wc -l)
[ "$n" -gt 0 ] || die "patches-libvirt/series is empty"
mkdir -p "$d/debian/patches/retry"
while read -r p; do
    cp "$p" "$d/debian/patches/retry/"
    echo "retry/$(basename "$p")" >> "$d/debian/patches/series"
done < <(series_files)
cd "$d"
# fetch-libvirt.sh applied Debian's own patches already (.pc records them)
QUILT_PATCHES=debian/patches quilt push -a -q --fuzz=0 >/dev/null ||
    die "the series does not apply with quilt on libvirt $(cat .debian-version)"
applied=$(QUILT_PATCHES=debian/patches quilt applied | grep -c "/retry/" || true)
[ "$applied" = "$n" ] || die "quilt applied $applied of $n patches"
echo "quilt: all $applied patches apply to Debian's libvirt $(cat .debian-version)"
rm -rf "$d"
