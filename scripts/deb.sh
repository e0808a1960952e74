#!/bin/bash
# The series as a Debian package: Debian 13's source package of qemu or
# libvirt (the one scripts/fetch-qemu.sh or fetch-libvirt.sh caches, with
# no network when it is cached) carrying its series (patches/ or
# patches-libvirt/), as a packager would upload it.
#
# usage: scripts/deb.sh [qemu|libvirt]            the source package
#        scripts/deb.sh --binary [qemu|libvirt]   its binary packages
#        scripts/deb.sh --chroot                  only make the trixie chroot
#        scripts/deb.sh --smoke [qemu|libvirt]    only install the built
#                                                 .debs in the chroot and try them
# (make deb, deb-binary; make deb-libvirt, deb-binary-libvirt)
#
# Source package, in build/deb/ (libvirt: build/deb-libvirt/):
#   - the series goes to debian/patches/retry/ and is appended to
#     debian/patches/series, and quilt pushes it on top of Debian's own
#     patches, without fuzz (common.sh: quilt_series, as make check-quilt);
#   - a debian/changelog entry, version Debian's + "+retry$RETRY_REV"
#     (1:10.0.13+ds-0+deb13u1+retry1, 11.3.0-3+deb13u3+retry1),
#     distribution UNRELEASED, one item per patch (its name without
#     .patch: dch wraps longer lines); dch from devscripts when installed,
#     else the same stanza written here;
#   - libvirt only: debian/libvirt0.symbols gets the LIBVIRT_11.3.0 node
#     that the series' new public API (virDomainBlockRetry) opens, at this
#     version, so that dpkg-gensymbols knows it and a program that calls it
#     depends on this libvirt0 (deb_packaging);
#   - dpkg-source -b: <pkg>_<version>.dsc and .debian.tar.xz (the orig
#     tarball is a link to the cached one);
#   - lintian on that .dsc and on Debian's unmodified one: lintian.txt,
#     lintian-debian.txt, and lintian-new.txt, the tags only ours has.
#     An E: tag there fails (Debian's own tags do not count).  Debian's
#     qemu .dsc is the archive's; libvirt's .dsc answers 404 in the archive
#     (fetch-libvirt.sh), so dpkg-source -b makes one from Debian's own
#     tarballs, unmodified (debian_dsc).
#
# Binary packages (not run by make check: qemu 47 min on 2 busy cores,
# measured).  They are Debian's own debian/rules on the .dsc, arch-only
# (-B; for qemu, -b would also build qemu-system-data's firmware with a
# dozen cross compilers):
#   qemu:
#     DEB_BUILD_OPTIONS="nocheck nodoc parallel=2" \
#     DEB_BUILD_PROFILES="nocheck nodoc pkg.qemu.omit-user pkg.qemu.omit-system-xen pkg.qemu.use-upstream-vdso" \
#     dpkg-buildpackage -B -uc -us
#   The pkg.qemu.* profiles are the ones debian/control declares: omit-user
#   drops qemu-user, qemu-user-static, qemu-user-binfmt (the static
#   linux-user build); omit-system-xen drops qemu-system-xen (its own
#   i386-softmmu build); use-upstream-vdso (or omit-vdso-build-dep) drops
#   the Build-Depends on qemu-system-data for linux-user's vDSOs.
#   (pkg.qemu.omit-system would drop every qemu-system-* package, ours too.)
#   debian/rules does not look at nodoc: the manual is built with sphinx
#   anyway.  Every softmmu target and qemu-system-x86_64-microvm are still
#   built.
#   libvirt:
#     DEB_BUILD_OPTIONS="parallel=2" dpkg-buildpackage -B -uc -us
#   debian/control declares no build profile, and libvirt's test suite
#   (meson test, as debian/rules runs it: every suite but syntax-check)
#   is the packager's check of the series, so it runs.
#   - On Debian 13 it builds in build/deb-binary/<pkg>/ and installs
#     nothing: it lists the Build-Depends dpkg-checkbuilddeps finds missing
#     (with those profiles) and stops.
#   - Elsewhere (Debian 12 lacks 38 of qemu's, libblkio-dev among them) it
#     builds in a trixie chroot, build/deb-chroot/trixie/ (made once with
#     debootstrap, needs root; see make_chroot), in /build/<pkg>/, where it
#     first runs apt-get build-dep with the profiles; /proc is mounted in
#     the chroot for the build and unmounted on exit.  Then it installs
#     the built packages in the chroot, tries them, writes what they show
#     to build/deb*/smoke.txt, and removes them again (smoke_qemu,
#     smoke_libvirt; --smoke alone): qemu-system-x86_64's retry properties
#     on virtio-blk-pci and scsi-hd; virsh on the test driver attaching a
#     disk with the retry policy and steering it (domblkretry), and
#     virt-xml-validate on that disk's domain XML.
# The log is build/deb-binary.log (libvirt: deb-binary-libvirt.log).  The
# .debs land in build/deb/ (build/deb-libvirt/): qemu-system-x86,
# qemu-system-common, qemu-system-gui, qemu-system-modules-*,
# qemu-block-extra, qemu-utils, qemu-guest-agent, the other qemu-system-*
# and their -dbgsym; install the patched QEMU with e.g.
# `apt install ./build/deb/qemu-system-x86_*.deb
# ./build/deb/qemu-system-common_*.deb` (qemu-system-data, arch: all, from
# the archive).
set -euo pipefail
. "$(dirname "$0")/common.sh"

# deb_select PKG: the package's settings (common.sh's pkg_select, and)
#   out        the output directory
#   LOG_SUFFIX for build/deb-binary$LOG_SUFFIX.log
#   PROFILES   DEB_BUILD_PROFILES, and BUILD_OPTIONS the DEB_BUILD_OPTIONS
#              (both overridable from the environment)
#   WHAT       what the series does, for the changelog
#   SHOWN      the binary package listed at the end
#   SMOKE_DEBS, SMOKE_PURGE   what smoke_test installs and removes again
deb_select() {
    pkg_select "$1"
    case $PKG in
    qemu)
        out=$BUILD_ROOT/deb LOG_SUFFIX=
        PROFILES="nocheck nodoc pkg.qemu.omit-user pkg.qemu.omit-system-xen pkg.qemu.use-upstream-vdso"
        BUILD_OPTIONS="nocheck nodoc parallel=2"
        WHAT="virtio-blk and scsi-hd retry failed requests (retry-interval, retry-timeout) instead of failing them or stopping the VM"
        SHOWN=qemu-system-x86
        SMOKE_DEBS=(qemu-system-x86 qemu-system-common qemu-system-gui qemu-system-modules-opengl
                    qemu-system-modules-spice qemu-block-extra qemu-utils)
        SMOKE_PURGE=('qemu-*') ;;
    libvirt)
        out=$BUILD_ROOT/deb-libvirt LOG_SUFFIX=-libvirt
        PROFILES="" BUILD_OPTIONS="parallel=2"
        WHAT="the disk driver's error_policy/rerror_policy 'retry' with retry_interval and retry_timeout, their events, and virDomainBlockRetry (virsh domblkretry)"
        SHOWN=libvirt-clients
        SMOKE_DEBS=(libvirt0 libvirt-common libvirt-clients)
        SMOKE_PURGE=('libvirt*') ;;
    esac
}
RETRY_REV=${RETRY_REV:-1}
LINTIAN=${LINTIAN:-lintian}

# The changelog entry: dch when installed, else the same stanza by hand.
changelog_entry() {
    local d=$1 ver=$2 n=$3 p msg
    msg="Carry the disk error retry series: $WHAT; $n patches in debian/patches/retry/."
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
        echo "$PKG ($ver) UNRELEASED; urgency=medium"
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

# deb_packaging DIR VERSION: what the series needs in debian/ besides its
# patches.  libvirt: the series adds virDomainBlockRetry to libvirt.so in a
# LIBVIRT_11.3.0 version node, which Debian's libvirt0.symbols does not
# list (it ends at LIBVIRT_11.2.0); the node gets this version, the first
# libvirt0 that has it.
deb_packaging() {
    local d=$1 ver=$2 sym
    [ "$PKG" = libvirt ] || return 0
    sym=$d/debian/libvirt0.symbols
    grep -q '^ \*@LIBVIRT_11\.3\.0 ' "$sym" && die "Debian's libvirt0.symbols already has LIBVIRT_11.3.0"
    grep -q '^ \*@LIBVIRT_11\.2\.0 ' "$sym" || die "no LIBVIRT_11.2.0 line in Debian's libvirt0.symbols"
    sed -i "/^ \*@LIBVIRT_11\.2\.0 /a\\ *@LIBVIRT_11.3.0 $ver" "$sym"
}

# debian_dsc VERSION: Debian's own .dsc of the package, for lintian's
# comparison: the archive's when fetch cached it (qemu), else one that
# dpkg-source -b makes from Debian's unmodified tarballs (libvirt), in
# build/.lintian/
debian_dsc() {
    local base=$1 dsc up d
    dsc=$PKG_SRC_CACHE/${PKG}_${base#*:}.dsc
    if [ ! -f "$dsc" ]; then
        up=${base#*:} up=${up%-*}
        d=$BUILD_ROOT/.lintian/$PKG-debian
        rm -rf "$d" && mkdir -p "$d"
        "$PKG_FETCH" "$d/$PKG-$up" > "$d/fetch.log" 2>&1 ||
            { cat "$d/fetch.log" >&2; die "fetching Debian's $PKG for lintian's comparison failed"; }
        rm "$d/$PKG-$up/.debian-version"
        ln -sf "$(ls "$PKG_SRC_CACHE/${PKG}_$up".orig.tar.* | head -1)" "$d/"
        (cd "$d" && dpkg-source -b "$PKG-$up" > dpkg-source.log 2>&1) ||
            { cat "$d/dpkg-source.log" >&2; die "dpkg-source -b of Debian's $PKG failed"; }
        dsc=$d/${PKG}_${base#*:}.dsc
        rm -rf "${d:?}/$PKG-$up"
    fi
    echo "$dsc"
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
    deb_packaging "$d" "$ver"
    rm "$d/.debian-version"
    mv "$d" "$out/$PKG-$up"
    d=$out/$PKG-$up
    orig=$(ls "$PKG_SRC_CACHE/${PKG}_$up".orig.tar.* | head -1)
    ln -sf "$orig" "$out/"   # dpkg-source -x may have put one there
    (cd "$out" && dpkg-source -b "$PKG-$up" > dpkg-source.log 2>&1) ||
        { cat "$out/dpkg-source.log" >&2; die "dpkg-source -b failed"; }
    dsc=$out/${PKG}_${ver#*:}.dsc
    [ -f "$dsc" ] || die "dpkg-source -b made no $(basename "$dsc")"
    say "source package: ${dsc#"$top"/}"

    # lintian on Debian's .dsc: once per lintian version (kept in build/)
    local base_dsc lv cached
    lv=$("$LINTIAN" --print-version)
    cached=$BUILD_ROOT/.lintian/${PKG}_${base#*:}-lintian-$lv.txt
    if [ ! -f "$cached" ]; then
        mkdir -p "$BUILD_ROOT/.lintian"
        base_dsc=$(debian_dsc "$base")
        say "lintian on Debian's $(basename "$base_dsc")"
        run_lintian "$base_dsc" "$cached"
    fi
    cp "$cached" "$out/lintian-debian.txt"
    say "lintian on $(basename "$dsc")"
    run_lintian "$dsc" "$out/lintian.txt"
    comm -13 "$out/lintian-debian.txt" "$out/lintian.txt" > "$out/lintian-new.txt"
    say "lintian: $(grep -c . "$out/lintian.txt" || true) tags, $(grep -c . "$out/lintian-new.txt" || true) not on Debian's package (${out#"$top"/}/lintian-new.txt):"
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
    dsc=$(ls "$out/${PKG}"_*+retry*.dsc 2>/dev/null | head -1)
    [ -n "$dsc" ] || die "no source package in ${out#"$top"/}: scripts/deb.sh $PKG first"
    export DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS-$BUILD_OPTIONS}
    export DEB_BUILD_PROFILES=${DEB_BUILD_PROFILES-$PROFILES}
    log=$BUILD_ROOT/deb-binary$LOG_SUFFIX.log
    src=$(basename "$dsc" .dsc | sed 's/_/-/; s/-[^-]*$//')
    if host_is_trixie; then
        b=$BUILD_ROOT/deb-binary/$PKG d=$b/$src
    else
        make_chroot
        chrooted=1 run=(in_chroot) b=$CHROOT/build/$PKG d=/build/$PKG/$src
        mount_proc
    fi
    rm -rf "$b"
    mkdir -p "$b"
    # the source package, the orig tarball's link resolved
    cp -L "$dsc" "$out/${PKG}"_*+retry*.debian.tar.* "$out/${PKG}"_*.orig.tar.* "$b/"
    "${run[@]}" dpkg-source -x "${d%/*}/$(basename "$dsc")" "$d" >/dev/null
    if [ -n "$chrooted" ]; then
        say "apt-get build-dep in the trixie chroot (profiles: ${DEB_BUILD_PROFILES:-none})"
        in_chroot apt-get build-dep -y -q --arch-only ${DEB_BUILD_PROFILES:+-P "${DEB_BUILD_PROFILES// /,}"} "$d" \
            > "$BUILD_ROOT/deb-build-dep$LOG_SUFFIX.log" 2>&1 ||
            { tail -20 "$BUILD_ROOT/deb-build-dep$LOG_SUFFIX.log" >&2; die "apt-get build-dep failed"; }
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
    ls "$out/$SHOWN"_*.deb
}

# In the chroot: install some of the built packages (apt takes their
# dependencies from the same build, build/deb*/, or trixie), try them
# (smoke_$PKG, output in build/deb*/smoke.txt), then remove them again so
# that the chroot stays a build environment.
smoke_test() {
    local f debs=()
    rm -rf "$CHROOT/debs" && mkdir -p "$CHROOT/debs"
    cp "$out"/*.deb "$CHROOT/debs/"
    for f in "${SMOKE_DEBS[@]}"; do
        f=$(ls "$CHROOT/debs/${f}"_*.deb 2>/dev/null | head -1)
        [ -z "$f" ] || debs+=("/debs/${f##*/}")
    done
    [ ${#debs[@]} -gt 0 ] || die "no .deb to install in ${out#"$top"/}"
    in_chroot apt-get install -y -q --no-install-recommends "${debs[@]}" > "$BUILD_ROOT/deb-install$LOG_SUFFIX.log" 2>&1 ||
        { tail -20 "$BUILD_ROOT/deb-install$LOG_SUFFIX.log" >&2; die "installing the built $SHOWN in the chroot failed"; }
    "smoke_$PKG" > "$out/smoke.txt" 2>&1 ||
        { cat "$out/smoke.txt" >&2; die "the installed $SHOWN does not show the series (above)"; }
    sed 's/^/    /' "$out/smoke.txt" >&2
    in_chroot apt-get purge -y -q --autoremove "${SMOKE_PURGE[@]}" >> "$BUILD_ROOT/deb-install$LOG_SUFFIX.log" 2>&1 || true
}

# qemu: qemu-system-x86_64 shows the retry properties of virtio-blk-pci and
# scsi-hd
smoke_qemu() {
    local p
    in_chroot dpkg -l qemu-system-x86 | tail -1
    in_chroot qemu-system-x86_64 --version | head -1
    for p in virtio-blk-pci scsi-hd; do
        echo "\$ qemu-system-x86_64 -device $p,help | grep -i retry"
        in_chroot qemu-system-x86_64 -device "$p,help" | grep -i retry
    done
}

# libvirt: virsh on the test driver (in libvirt0) attaches a disk with the
# retry policy to its running domain "test", steers it with domblkretry
# and shows the driver element; virt-xml-validate accepts that domain's
# XML with Debian's schemas plus the series'
smoke_libvirt() {
    local disk='<disk type="file" device="disk"><driver name="qemu" type="raw" error_policy="retry" rerror_policy="retry" retry_interval="2000" retry_timeout="10000"/><source file="/guest/disk2"/><target dev="vdb" bus="virtio"/></disk>'
    local cmds="attach-device test /tmp/disk.xml --live; domblkretry test vdb --interval 500; dumpxml test --xpath \"//disk[target/@dev='vdb']/driver\"; domblkretry test vdb --resubmit"
    in_chroot dpkg -l libvirt-clients | tail -1
    in_chroot virsh --version
    echo "$disk" > "$CHROOT/tmp/disk.xml"
    echo "\$ virsh -c test:///default \"${cmds//\"/\\\"}\""
    in_chroot virsh -c test:///default "$cmds" | tee "$CHROOT/tmp/virsh.out"
    grep -q 'error_policy="retry" rerror_policy="retry" retry_interval="500" retry_timeout="10000"' "$CHROOT/tmp/virsh.out" &&
        grep -q '^Resubmitted 0 pending requests of disk vdb$' "$CHROOT/tmp/virsh.out" || return 1
    # the live XML of that domain (a new connection would start afresh)
    in_chroot virsh -c test:///default "attach-device test /tmp/disk.xml --live; dumpxml test" |
        sed -n '/^<domain/,/^<\/domain>/p' > "$CHROOT/tmp/test.xml"
    echo "\$ virt-xml-validate test.xml domain   # test's XML with that disk"
    grep -q "retry_timeout='10000'" "$CHROOT/tmp/test.xml" || return 1
    in_chroot virt-xml-validate /tmp/test.xml domain
}

mode=${1:-}
case $mode in --*) shift ;; *) mode= ;; esac
[ $# -le 1 ] || die "usage: ${0##*/} [--binary|--chroot|--smoke] [qemu|libvirt]"
deb_select "${1:-qemu}"
case $mode in
"") source_package ;;
--binary) binary_packages ;;
--smoke) ! host_is_trixie || die "--smoke is for the trixie chroot"
         make_chroot; mount_proc; smoke_test ;;
--chroot) host_is_trixie && say "this host is Debian 13: no chroot needed" || make_chroot ;;
*) die "usage: ${0##*/} [--binary|--chroot|--smoke] [qemu|libvirt]" ;;
esac
