#!/bin/bash
# Configure (once) and build what the libvirt tests and the e2e run need in
# build/libvirt.
#
# usage: scripts/libvirt-build.sh [extra ninja targets...]
#
# Out of tree (build/libvirt/build), the QEMU driver alone (with libvirtd
# and the remote driver, which it requires), tests on, docs off, every other
# hypervisor, storage and security driver off, ccache shared with the QEMU
# builds (scripts/common.sh).  Everything is built ('all'): virsh, the QEMU
# driver and virtqemud for the e2e, and every test program, because
# libvirt's whole test suite gates the series (scripts/check-libvirt.sh),
# as it gates Debian's package build.
set -euo pipefail
. "$(dirname "$0")/common.sh"
t=${LV_TREE:-$BUILD_ROOT/libvirt}
b=$t/build
[ -f "$t/meson.build" ] && [ -e "$t/.git" ] || die "$t is not a libvirt tree; run 'make libvirt-tree' first"
command -v ccache >/dev/null || die "ccache is missing; run scripts/install-deps.sh"

OPTIONS=(
    -Ddriver_qemu=enabled -Ddriver_libvirtd=enabled -Ddriver_remote=enabled
    # the test driver (test:///default), which virshtest runs virsh against
    -Ddriver_test=enabled
    -Dtests=enabled -Dexpensive_tests=disabled -Ddocs=disabled -Dnls=disabled
    # the embedded driver (qemu:///embed) runs as root; no libvirt-qemu user
    -Dqemu_user=root -Dqemu_group=root
    -Dgit_werror=disabled
)
for d in bhyve esx hyperv interface libxl lxc ch network openvz secrets \
         vbox vmware vz; do
    OPTIONS+=(-Ddriver_$d=disabled)
done
for s in dir disk fs gluster iscsi iscsi_direct lvm mpath rbd scsi vstorage zfs; do
    OPTIONS+=(-Dstorage_$s=disabled)
done
for f in apparmor secdriver_apparmor apparmor_profiles selinux secdriver_selinux \
         sasl polkit firewalld firewalld_zone numad audit sanlock libssh libssh2 \
         curl fuse glusterfs libiscsi netcf openwsman wireshark_dissector \
         bash_completion nss dtrace nbdkit readline libpcap; do
    OPTIONS+=(-D$f=disabled)
done

want="CC=ccache cc ${OPTIONS[*]}"
if [ ! -f "$b/build.ninja" ] || [ "$(cat "$b/.qemu-retry-configured" 2>/dev/null)" != "$want" ]; then
    say "configuring $b"
    rm -rf "$b"
    mkdir -p "$b"
    (cd "$t" && CC='ccache cc' meson setup build "${OPTIONS[@]}") \
        > "$b/qemu-retry-configure.log" 2>&1 || {
        tail -30 "$b/qemu-retry-configure.log" >&2
        die "meson setup failed (full log: $b/qemu-retry-configure.log)"
    }
    echo "$want" > "$b/.qemu-retry-configured"
fi

say "building $b${*:+ and $*}"
ninja -C "$b" all "$@"
say "built in $b"
