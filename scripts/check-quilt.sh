#!/bin/bash
# Check that a package's series applies with quilt inside Debian's source
# package, the way a packager would carry it (common.sh: quilt_series).
#
# usage: scripts/check-quilt.sh [qemu|libvirt]   (default: qemu)
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkg_only "$@"
d=$BUILD_ROOT/$PKG-quilt-check
[ "$(series_files | wc -l)" -gt 0 ] || die "${PATCHES#"$top"/}/series is empty"
rm -rf "$d"
"$PKG_FETCH" "$d"
applied=$(quilt_series "$d")
echo "quilt: all $applied patches apply to Debian's $PKG $(cat "$d/.debian-version")"
rm -rf "$d"
