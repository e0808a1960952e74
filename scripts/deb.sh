#!/bin/bash
# The series as a Debian package: Debian 13's qemu source package (the one
# scripts/fetch-qemu.sh caches, with no network when it is cached) carrying
# the series, as a packager would upload it.
#
# usage: scripts/deb.sh            the source package (make deb)
#        scripts/deb.sh --binary   its binary packages (make deb-binary)
#
# Source package (make deb), in build/deb/:
#   - the series goes to debian/patches/retry/ and is appended to
#     debian/patches/series, and quilt pushes it on top of Debian's own
#     patches, without fuzz (common.sh: quilt_series, as make check-quilt);
#   - a debian/changelog entry, version Debian's + "+retry$RETRY_REV"
#     (1:10.0.13+ds-0+deb13u1+retry1), distribution UNRELEASED, one item
#     per patch (its name without .patch: dch wraps longer lines); dch from
#     devscripts when installed, else the same stanza written here;
#   - dpkg-source -b: qemu_<version>.dsc and .debian.tar.xz (the orig
#     tarball is a link to the cached one);
#   - lintian on that .dsc and on Debian's unmodified one: lintian.txt,
#     lintian-debian.txt, and lintian-new.txt, the tags only ours has.
#     An E: tag there fails (Debian's own tags do not count).
#
# Binary packages (make deb-binary; not run by make check: hours on 2
# cores).  It unpacks build/deb's .dsc into build/deb-binary/ and runs
# Debian's own debian/rules there, arch-only (-B: qemu-system-x86, which
# carries qemu-system-x86_64, is Architecture: any; -b would also build
# qemu-system-data's firmware with a dozen cross compilers):
#     DEB_BUILD_OPTIONS="nocheck nodoc parallel=2" \
#     DEB_BUILD_PROFILES="nocheck nodoc pkg.qemu.omit-user pkg.qemu.omit-system-xen pkg.qemu.use-upstream-vdso" \
#     dpkg-buildpackage -B -uc -us
# The pkg.qemu.* profiles are the ones debian/control declares: omit-user
# drops qemu-user, qemu-user-static, qemu-user-binfmt (the static
# linux-user build); omit-system-xen drops qemu-system-xen (its own
# i386-softmmu build); use-upstream-vdso (or omit-vdso-build-dep) drops
# the Build-Depends on qemu-system-data for linux-user's vDSOs.
# (pkg.qemu.omit-system would drop every qemu-system-* package, ours too.)
# debian/rules does not look at nodoc: the manual is built with sphinx
# anyway.  Every softmmu target and qemu-system-x86_64-microvm are still
# built.  It installs nothing: first it lists the Build-Depends that
# dpkg-checkbuilddeps finds missing (with those profiles) and stops; install
# them with apt-get on Debian 13 (on Debian 12, libblkio-dev does not
# exist).  The .debs land in build/deb/: qemu-system-x86, qemu-system-common,
# qemu-system-gui, qemu-system-modules-*, qemu-block-extra, qemu-utils,
# qemu-guest-agent, the other qemu-system-* and their -dbgsym; install the
# patched QEMU with e.g. `apt install ./build/deb/qemu-system-x86_*.deb
# ./build/deb/qemu-system-common_*.deb` (qemu-system-data, arch: all, from
# the archive).
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkg_select qemu
out=$BUILD_ROOT/deb
RETRY_REV=${RETRY_REV:-1}
LINTIAN=${LINTIAN:-lintian}
PROFILES="nocheck nodoc pkg.qemu.omit-user pkg.qemu.omit-system-xen pkg.qemu.use-upstream-vdso"

# The changelog entry: dch when installed, else the same stanza by hand.
changelog_entry() {
    local d=$1 ver=$2 n=$3 p msg
    msg="Carry the werror/rerror=retry series: virtio-blk and scsi-hd retry failed requests (retry-interval, retry-timeout) instead of failing them or stopping the VM; $n patches in debian/patches/retry/."
    export DEBFULLNAME=${DEBFULLNAME:-$GIT_COMMITTER_NAME} DEBEMAIL=${DEBEMAIL:-$GIT_COMMITTER_EMAIL}
    if command -v dch >/dev/null; then
        (cd "$d" &&
         dch --no-conf --no-auto-nmu --preserve -v "$ver" -D UNRELEASED "$msg" &&
         series_files | while read -r p; do
             dch --no-conf --preserve -a "$(basename "$p" .patch)"
         done) >&2
        return
    fi
    {
        echo "qemu ($ver) UNRELEASED; urgency=medium"
        echo
        fold -s -w 76 <<<"$msg" | sed '1s/^/  * /; 2,$s/^/    /; s/ *$//'
        series_files | while read -r p; do echo "  * $(basename "$p" .patch)"; done
        echo
        echo " -- $DEBFULLNAME <$DEBEMAIL>  $(date -R)"
        echo
        cat "$d/debian/changelog"
    } > "$d/debian/changelog.new"
    mv "$d/debian/changelog.new" "$d/debian/changelog"
}

# lintian DSC OUT: its tags (I: too), sorted; fails only when lintian
# cannot run (exit 1; 2 means it found an error tag)
run_lintian() {
    local rc=0
    "$LINTIAN" -I --tag-display-limit 0 "$1" > "$2.tmp" 2> "$2.err" || rc=$?
    [ $rc = 0 ] || [ $rc = 2 ] ||
        { cat "$2.err" >&2; die "lintian $(basename "$1") failed (exit $rc)"; }
    sort -u "$2.tmp" > "$2" && rm "$2.tmp" "$2.err"
}

source_package() {
    local d base ver up n dsc orig
    rm -rf "$out"
    mkdir -p "$out"
    d=$out/src
    "$PKG_FETCH" "$d"
    base=$(dpkg-parsechangelog -l "$d/debian/changelog" -S Version)
    ver=$base+retry$RETRY_REV
    up=${base#*:} up=${up%-*}
    n=$(quilt_series "$d")
    say "quilt: $n patches pushed on Debian's own in debian/patches/retry/"
    changelog_entry "$d" "$ver" "$n"
    rm "$d/.debian-version"
    mv "$d" "$out/qemu-$up"
    d=$out/qemu-$up
    orig=$(ls "$CACHE/src/qemu_$up".orig.tar.* | head -1)
    ln -sf "$orig" "$out/"   # dpkg-source -x may have put one there
    (cd "$out" && dpkg-source -b "qemu-$up" > dpkg-source.log 2>&1) ||
        { cat "$out/dpkg-source.log" >&2; die "dpkg-source -b failed"; }
    dsc=$out/qemu_${ver#*:}.dsc
    [ -f "$dsc" ] || die "dpkg-source -b made no $(basename "$dsc")"
    say "source package: ${dsc#"$top"/}"

    # lintian on Debian's .dsc: once per lintian version (kept in build/)
    local base_dsc=$CACHE/src/qemu_${base#*:}.dsc lv cached
    lv=$("$LINTIAN" --print-version)
    cached=$BUILD_ROOT/.lintian/$(basename "$base_dsc" .dsc)-lintian-$lv.txt
    if [ ! -f "$cached" ]; then
        mkdir -p "$BUILD_ROOT/.lintian"
        say "lintian on Debian's $(basename "$base_dsc")"
        run_lintian "$base_dsc" "$cached"
    fi
    cp "$cached" "$out/lintian-debian.txt"
    say "lintian on $(basename "$dsc")"
    run_lintian "$dsc" "$out/lintian.txt"
    comm -13 "$out/lintian-debian.txt" "$out/lintian.txt" > "$out/lintian-new.txt"
    say "lintian: $(grep -c . "$out/lintian.txt" || true) tags, $(grep -c . "$out/lintian-new.txt" || true) not on Debian's package (build/deb/lintian-new.txt):"
    sed 's/^/    /' "$out/lintian-new.txt" >&2
    ! grep -q '^E: ' "$out/lintian-new.txt" ||
        die "lintian finds errors the series' packaging introduced (above)"
    echo "$dsc"
}

binary_packages() {
    local dsc b d missing
    dsc=$(ls "$out"/qemu_*+retry*.dsc 2>/dev/null | head -1)
    [ -n "$dsc" ] || die "no source package in ${out#"$top"/}: make deb first"
    b=$BUILD_ROOT/deb-binary
    rm -rf "$b"
    mkdir -p "$b"
    d=$b/$(basename "$dsc" .dsc | sed 's/_/-/; s/-[^-]*$//')
    dpkg-source -x "$dsc" "$d" >/dev/null
    export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck nodoc parallel=2}
    export DEB_BUILD_PROFILES=${DEB_BUILD_PROFILES:-$PROFILES}
    missing=$(cd "$d" && dpkg-checkbuilddeps -B 2>&1 |
              sed -n 's/.*Unmet build dependencies: //p' || true)
    [ -z "$missing" ] ||
        die "$(sed 's/ ([^)]*)//g' <<<"$missing" | wc -w) build dependencies missing (profiles: $DEB_BUILD_PROFILES): $missing"
    say "dpkg-buildpackage -B -uc -us in ${d#"$top"/} (DEB_BUILD_OPTIONS=\"$DEB_BUILD_OPTIONS\")"
    (cd "$d" && dpkg-buildpackage -B -uc -us) > "$b/build.log" 2>&1 ||
        { tail -40 "$b/build.log" >&2; die "dpkg-buildpackage failed (${b#"$top"/}/build.log)"; }
    mv "$b"/*.deb "$b"/*.ddeb "$b"/*.changes "$b"/*.buildinfo "$out/" 2>/dev/null || true
    ls "$out"/qemu-system-x86_*.deb
}

case ${1:-} in
"") source_package ;;
--binary) binary_packages ;;
*) die "usage: ${0##*/} [--binary]" ;;
esac
