#!/bin/bash
# Check that the series applies with quilt inside Debian's qemu source
# package, the way a packager would carry it.
set -euo pipefail
. "$(dirname "$0")/common.sh"

d=$BUILD_ROOT/quilt-check
rm -rf "$d"
"$top/scripts/fetch-qemu.sh" "$d"
mkdir -p "$d/debian/patches/retry"
while read -r p; do
    cp "$p" "$d/debian/patches/retry/"
    echo "retry/$(basename "$p")" >> "$d/debian/patches/series"
done < <(series_files)
cd "$d"
# dpkg-source -x applied Debian's own patches already (.pc records them)
QUILT_PATCHES=debian/patches quilt push -a -q --fuzz=0 >/dev/null ||
    die "the series does not apply with quilt on $(cat .debian-version)"
applied=$(QUILT_PATCHES=debian/patches quilt applied | grep -c "/retry/" || true)
[ "$applied" = "$(series_files | wc -l)" ] ||
    die "quilt applied $applied of $(series_files | wc -l) patches"
echo "quilt: all $applied patches apply to Debian's qemu $(cat .debian-version)"
rm -rf "$d"
