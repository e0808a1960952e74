#!/bin/bash
# The series as a Debian package: Debian 13's qemu source package (the one
# scripts/fetch-qemu.sh caches, with no network when it is cached) carrying
# the series, as a packager would upload it.
#
# usage: scripts/deb.sh            the source package (make deb)
#        scripts/deb.sh --binary   its binary packages (make deb-binary)
#        scripts/deb.sh --chroot   only make the trixie chroot --binary uses
#        scripts/deb.sh --smoke    only install the built .debs in the chroot
#                                  and show the retry properties
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
# Binary packages (make deb-binary; not run by make check: 47 min on 2
# busy cores, measured).  It runs Debian's own debian/rules on build/deb's
# .dsc, arch-only (-B: qemu-system-x86, which carries qemu-system-x86_64,
# is Architecture: any; -b would also build qemu-system-data's firmware
# with a dozen cross compilers):
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
# built.
#   - On Debian 13 it builds in build/deb-binary/ and installs nothing: it
#     lists the Build-Depends dpkg-checkbuilddeps finds missing (with those
#     profiles) and stops.
#   - Elsewhere (Debian 12 lacks 38 of them, libblkio-dev among them) it
#     builds in a trixie chroot, build/deb-chroot/trixie/ (made once with
#     debootstrap, needs root; see make_chroot), where it first runs
#     apt-get build-dep with the profiles; /proc is mounted in the chroot
#     for the build and unmounted on exit.  Then it installs the built
#     qemu-system-x86 in the chroot, writes its retry properties to
#     build/deb/smoke.txt and removes it again (smoke_test; --smoke alone).
# The log is build/deb-binary.log.  The .debs land in build/deb/:
# qemu-system-x86, qemu-system-common, qemu-system-gui,
# qemu-system-modules-*, qemu-block-extra, qemu-utils, qemu-guest-agent,
# the other qemu-system-* and their -dbgsym; install the patched QEMU with
# e.g. `apt install ./build/deb/qemu-system-x86_*.deb
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

# The Debian 13 build environment for --binary on a host that is not
# Debian 13: a trixie chroot made with debootstrap (--variant=buildd) from
# the machine's own Debian archive (scripts/debian-sources.py), apt sources
# trixie, trixie-updates, trixie-security.  Made once (needs root and
# debootstrap), then reused; DEB_CHROOT overrides its place.
CHROOT=${DEB_CHROOT:-$BUILD_ROOT/deb-chroot/trixie}
host_is_trixie() { (. /etc/os-release && [ "${VERSION_CODENAME:-}" = trixie ]); }

make_chroot() {
    local uri signed sec sec_uri
    [ -f "$CHROOT/.qemu-retry-ready" ] && return 0
    [ "$(id -u)" = 0 ] || die "this host is not Debian 13: making the trixie chroot ${CHROOT#"$top"/} needs root"
    command -v debootstrap >/dev/null || die "this host is not Debian 13: install debootstrap for the trixie chroot"
    read -r _ uri signed < <(python3 "$top/scripts/debian-sources.py" | grep '^main ') ||
        die "no Debian archive in this machine's apt sources"
    sec=$(python3 "$top/scripts/debian-sources.py" | grep '^security ' || true)
    # never rm -rf a tree with something mounted in it
    ! grep -q " $CHROOT/" /proc/mounts || die "${CHROOT#"$top"/} has mounts; unmount them first"
    rm -rf "$CHROOT"
    mkdir -p "$CHROOT"
    say "debootstrap trixie into ${CHROOT#"$top"/} from $uri (log: ${CHROOT#"$top"/}.log)"
    debootstrap --variant=buildd ${signed:+$([ "$signed" = - ] || echo "--keyring=$signed")} \
        trixie "$CHROOT" "$uri" > "$CHROOT.log" 2>&1 ||
        { tail -20 "$CHROOT.log" >&2; die "debootstrap failed (${CHROOT#"$top"/}.log)"; }
    {
        echo "deb $uri trixie main"
        echo "deb $uri trixie-updates main"
        if [ -n "$sec" ]; then
            read -r _ sec_uri _ <<<"$sec"
            echo "deb $sec_uri trixie-security main"
        fi
    } > "$CHROOT/etc/apt/sources.list"
    { in_chroot apt-get update -q && in_chroot apt-get upgrade -y -q; } >> "$CHROOT.log" 2>&1 ||
        { tail -20 "$CHROOT.log" >&2; die "apt-get update/upgrade in the chroot failed"; }
    touch "$CHROOT/.qemu-retry-ready"
}

# in_chroot CMD...: CMD in the chroot, clean environment but for the build
# variables; /proc is mounted by binary_packages around all of it
in_chroot() {
    chroot "$CHROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-}" DEB_BUILD_PROFILES="${DEB_BUILD_PROFILES:-}" "$@"
}

mount_proc() {
    trap umount_proc EXIT
    mountpoint -q "$CHROOT/proc" || mount -t proc proc "$CHROOT/proc"
}

umount_proc() {
    if mountpoint -q "$CHROOT/proc"; then umount "$CHROOT/proc" || umount -l "$CHROOT/proc"; fi
}

binary_packages() {
    local dsc b d src log missing run=() chrooted=""
    dsc=$(ls "$out"/qemu_*+retry*.dsc 2>/dev/null | head -1)
    [ -n "$dsc" ] || die "no source package in ${out#"$top"/}: make deb first"
    export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-nocheck nodoc parallel=2}
    export DEB_BUILD_PROFILES=${DEB_BUILD_PROFILES:-$PROFILES}
    log=$BUILD_ROOT/deb-binary.log
    src=$(basename "$dsc" .dsc | sed 's/_/-/; s/-[^-]*$//')
    if host_is_trixie; then
        b=$BUILD_ROOT/deb-binary d=$b/$src
    else
        make_chroot
        chrooted=1 run=(in_chroot) b=$CHROOT/build d=/build/$src
        mount_proc
    fi
    rm -rf "$b"
    mkdir -p "$b"
    # the source package, the orig tarball's link resolved
    cp -L "$dsc" "$out"/qemu_*+retry*.debian.tar.* "$out"/qemu_*.orig.tar.* "$b/"
    "${run[@]}" dpkg-source -x "${d%/*}/$(basename "$dsc")" "$d" >/dev/null
    if [ -n "$chrooted" ]; then
        say "apt-get build-dep in the trixie chroot (profiles: $DEB_BUILD_PROFILES)"
        in_chroot apt-get build-dep -y -q --arch-only -P "${DEB_BUILD_PROFILES// /,}" "$d" \
            > "$BUILD_ROOT/deb-build-dep.log" 2>&1 ||
            { tail -20 "$BUILD_ROOT/deb-build-dep.log" >&2; die "apt-get build-dep failed"; }
    fi
    missing=$("${run[@]}" sh -c "cd '$d' && dpkg-checkbuilddeps -B" 2>&1 |
              sed -n 's/.*Unmet build dependencies: //p' || true)
    [ -z "$missing" ] ||
        die "$(sed 's/ ([^)]*)//g' <<<"$missing" | wc -w) build dependencies missing (profiles: $DEB_BUILD_PROFILES): $missing"
    say "dpkg-buildpackage -B -uc -us in $d${chrooted:+ (in the chroot)} (DEB_BUILD_OPTIONS=\"$DEB_BUILD_OPTIONS\"; log: ${log#"$top"/})"
    local t0=$SECONDS
    "${run[@]}" sh -c "cd '$d' && dpkg-buildpackage -B -uc -us" > "$log" 2>&1 ||
        { tail -40 "$log" >&2; die "dpkg-buildpackage failed (${log#"$top"/})"; }
    say "dpkg-buildpackage took $(( (SECONDS - t0) / 60 )) min $(( (SECONDS - t0) % 60 )) s"
    mv "$b"/*.deb "$b"/*.ddeb "$b"/*.changes "$b"/*.buildinfo "$out/" 2>/dev/null || true
    [ -z "$chrooted" ] || smoke_test
    ls "$out"/qemu-system-x86_*.deb
}

# In the chroot: install the built qemu-system-x86 (apt takes its
# dependencies from the same build, build/deb/, or trixie), show the retry
# properties of virtio-blk-pci and scsi-hd, then remove it again so that
# the chroot stays a build environment.
smoke_test() {
    local f debs=() p
    rm -rf "$CHROOT/debs" && mkdir -p "$CHROOT/debs"
    cp "$out"/*.deb "$CHROOT/debs/"
    for f in "$CHROOT"/debs/qemu-system-{x86,common,gui,modules-opengl,modules-spice}_*.deb "$CHROOT"/debs/qemu-{block-extra,utils}_*.deb; do
        [ -f "$f" ] && debs+=("/debs/${f##*/}")
    done
    in_chroot apt-get install -y -q "${debs[@]}" > "$BUILD_ROOT/deb-install.log" 2>&1 ||
        { tail -20 "$BUILD_ROOT/deb-install.log" >&2; die "installing the built qemu-system-x86 in the chroot failed"; }
    {
        in_chroot dpkg -l qemu-system-x86 | tail -1
        in_chroot qemu-system-x86_64 --version | head -1
        for p in virtio-blk-pci scsi-hd; do
            echo "\$ qemu-system-x86_64 -device $p,help | grep -i retry"
            in_chroot qemu-system-x86_64 -device "$p,help" | grep -i retry
        done
    } > "$out/smoke.txt" 2>&1 ||
        { cat "$out/smoke.txt" >&2; die "the installed qemu-system-x86_64 lacks the retry properties"; }
    sed 's/^/    /' "$out/smoke.txt" >&2
    in_chroot apt-get purge -y -q --autoremove 'qemu-*' >> "$BUILD_ROOT/deb-install.log" 2>&1 || true
}

case ${1:-} in
"") source_package ;;
--binary) binary_packages ;;
--smoke) ! host_is_trixie || die "--smoke is for the trixie chroot"
         make_chroot; mount_proc; smoke_test ;;
--chroot) host_is_trixie && say "this host is Debian 13: no chroot needed" || make_chroot ;;
*) die "usage: ${0##*/} [--binary|--chroot|--smoke]" ;;
esac
