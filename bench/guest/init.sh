#!/bin/sh
# /init of the benchmark guest: the e2e guest's initramfs (busybox, the
# virtio modules in /modules.list) with this file and bench-io laid over it.
# Kernel command line: bench.disks=N (wait for N virtio-blk disks),
# bench.args="..." (bench-io options, commas for spaces).
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
while read -r m; do
    insmod "/lib/modules/$m" 2>/dev/null
done < /modules.list
disks=1
args=
for w in $(cat /proc/cmdline); do
    case "$w" in
        bench.disks=*) disks=${w#bench.disks=} ;;
        bench.args=*) args=$(echo "${w#bench.args=}" | tr , ' ') ;;
    esac
done
i=0
while [ "$(ls /dev/vd? 2>/dev/null | wc -l)" -lt "$disks" ]; do
    i=$((i + 1))
    [ $i -gt 300 ] && { echo "BIO-FATAL only $(ls /dev/vd? | wc -l) of $disks disks"; poweroff -f; }
    sleep 0.1
done
# the console must not echo or buffer the host's p/g commands
stty -echo -icanon 2>/dev/null
echo "BIO-READY uptime=$(cut -d' ' -f1 /proc/uptime)"
# shellcheck disable=SC2086
exec /bin/bench-io $args $(ls /dev/vd? | head -n "$disks")
