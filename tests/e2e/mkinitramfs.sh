#!/bin/bash
# Build (or reuse) the e2e test guest: a Debian 12 kernel and a busybox
# initramfs holding the virtio/SCSI/ext4 modules and the workload.
#
# usage: tests/e2e/mkinitramfs.sh
# prints:  KERNEL=<path to vmlinuz>
#          INITRD=<path to initramfs.cpio.gz>
#
# The kernel package is fetched with `apt-get download` (the candidate that
# linux-image-amd64 depends on) into the cache directory
# ($XDG_CACHE_HOME or ~/.cache)/qemu-retry/e2e; E2E_KERNEL_DEB=<file.deb>
# overrides it.  The initramfs is cached under a key made of all its inputs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-retry/e2e}
mkdir -p "$cache"
log() { echo "mkinitramfs: $*" >&2; }
die() { log "error: $*"; exit 1; }

for t in dpkg modinfo depmod modprobe cpio gzip gcc; do
    command -v $t >/dev/null || die "$t is missing (scripts/install-deps.sh)"
done
busybox=${E2E_BUSYBOX:-/bin/busybox}
e2fsck=$(command -v e2fsck || echo /sbin/e2fsck)
[ -x "$e2fsck" ] || die "e2fsck is missing (e2fsprogs)"
[ -x "$busybox" ] || die "busybox-static is missing"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked: install busybox-static"

# 1. kernel package
deb=${E2E_KERNEL_DEB:-}
if [ -z "$deb" ]; then
    pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
          awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    if [ -n "$pkg" ]; then
        ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
        deb=$(ls "$cache"/"${pkg}_${ver//:/%3a}"_amd64.deb 2>/dev/null || true)
        if [ -z "$deb" ]; then
            log "downloading $pkg $ver"
            (cd "$cache" && apt-get download -q "$pkg" >&2) || die "apt-get download $pkg failed"
            deb=$(ls "$cache"/"${pkg}"_*_amd64.deb | tail -1)
        fi
    else
        deb=$(ls "$cache"/linux-image-*-amd64_*_amd64.deb 2>/dev/null | tail -1 || true)
        [ -n "$deb" ] || die "cannot resolve linux-image-amd64 and no cached kernel .deb"
    fi
fi
[ -f "$deb" ] || die "no kernel package $deb"

# 2. workload binary
make -s -C "$here" CACHE="$cache" "$cache/bin/e2e-workload" >&2
workload=$cache/bin/e2e-workload

# Top-level modules; modprobe --show-depends adds dependencies and soft
# dependencies in load order (virtio_ring before virtio, crct10dif before
# crc-t10dif ...).  Accelerated crypto variants may fail under TCG: ignored.
MODS="crc32c_generic crct10dif_generic crc64_rocksoft_generic virtio_pci virtio_blk virtio_scsi sd_mod ext4 button evdev"

key=$( (basename "$deb"; stat -c %s "$deb"; sha256sum "$workload" "$here/guest/init.sh" "$0" "$busybox" "$e2fsck" | cut -d' ' -f1; echo "$MODS") | sha256sum | cut -c1-16)
out=$cache/guest-$key
if [ -f "$out/initramfs.cpio.gz" ] && [ -f "$out/vmlinuz" ]; then
    echo "KERNEL=$out/vmlinuz"
    echo "INITRD=$out/initramfs.cpio.gz"
    exit 0
fi

tmp=$(mktemp -d /tmp/e2e-initramfs.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
log "extracting $(basename "$deb")"
dpkg -x "$deb" "$tmp/k"
kver=$(ls "$tmp/k/lib/modules" | head -1)
[ -n "$kver" ] || die "no modules in $deb"
depmod -b "$tmp/k" "$kver"

root=$tmp/root
mkdir -p "$root"/{bin,dev,proc,sys,mnt,lib/modules}
: > "$root/modules.list"
declare -A seen=()
for m in $MODS; do
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue
        rel=${path#*/lib/modules/$kver/}
        base=$(basename "$rel")
        [ -n "${seen[$base]:-}" ] && continue
        seen[$base]=1
        cp "$tmp/k/lib/modules/$kver/$rel" "$root/lib/modules/$base"
        echo "$base" >> "$root/modules.list"
    done < <(modprobe -d "$tmp/k" -S "$kver" --show-depends "$m")
done
log "modules: $(tr '\n' ' ' < "$root/modules.list")"

cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
cp "$workload" "$root/bin/e2e-workload"
# e2fsck (the guest checks its filesystems after the workload) with the
# shared libraries and the dynamic loader it needs
cp "$e2fsck" "$root/bin/e2fsck"
for lib in $(ldd "$e2fsck" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
done
install -m 755 "$here/guest/init.sh" "$root/init"

mkdir -p "$out.tmp"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 > "$out.tmp/initramfs.cpio.gz"
cp "$tmp/k/boot/vmlinuz-$kver" "$out.tmp/vmlinuz"
echo "$kver" > "$out.tmp/kernel-version"
rm -rf "$out"
mv "$out.tmp" "$out"
log "built $out ($(du -sh "$out/initramfs.cpio.gz" | cut -f1) initramfs, kernel $kver)"
echo "KERNEL=$out/vmlinuz"
echo "INITRD=$out/initramfs.cpio.gz"
