#!/bin/sh
# /init of the e2e test guest (busybox-static).  Loads the modules listed in
# /modules.list (already in dependency order), mounts the ext4 test disk and
# runs the workload.  Parameters come from the kernel command line:
#   e2e.dev=/dev/vda     test disk (default: first of /dev/vda, /dev/sda)
#   e2e.max=SECS         workload safety time limit (default 300)
#   e2e.read_ms=MS       O_DIRECT reader on the raw disk every MS ms (0 = off)
#   e2e.kb=MIN,MAX       file sizes in KiB (default 1,8)
#   e2e.files=N          maximum number of files (default 8000)
#   e2e.pace=MS          pause between files (default 20)
# The host stops the workload by writing "E2E-STOP" to the serial console.
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "E2E-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"

while read -r m; do
    insmod "/lib/modules/$m" 2>/dev/null || echo "E2E-INFO insmod $m failed (ignored)"
done < /modules.list

dev=
max=300
read_ms=0
kb=1,8
files=8000
pace=20
for w in $(cat /proc/cmdline); do
    case "$w" in
        e2e.dev=*) dev=${w#e2e.dev=} ;;
        e2e.max=*) max=${w#e2e.max=} ;;
        e2e.read_ms=*) read_ms=${w#e2e.read_ms=} ;;
        e2e.kb=*) kb=${w#e2e.kb=} ;;
        e2e.files=*) files=${w#e2e.files=} ;;
        e2e.pace=*) pace=${w#e2e.pace=} ;;
    esac
done

# wait for the disk (SCSI scanning is asynchronous)
i=0
while :; do
    if [ -n "$dev" ]; then
        [ -b "$dev" ] && break
    else
        for d in /dev/vda /dev/sda; do
            [ -b "$d" ] && dev=$d && break 2
        done
    fi
    i=$((i + 1))
    if [ $i -gt 300 ]; then
        echo "E2E-RESULT written=0 verified=0 bad=0 write_errors=0 read_errors=0 max_stall_ms=0 fs_rw=0 kernel_io_errors=0 setup_failed=no_disk"
        poweroff -f
    fi
    sleep 0.1
done

mkdir -p /mnt
if ! mount -t ext4 -o errors=remount-ro "$dev" /mnt; then
    echo "E2E-RESULT written=0 verified=0 bad=0 write_errors=0 read_errors=0 max_stall_ms=0 fs_rw=0 kernel_io_errors=0 setup_failed=mount"
    poweroff -f
fi
echo "E2E-READY dev=$dev uptime=$(cut -d' ' -f1 /proc/uptime)"
/bin/e2e-workload -m /mnt -d "$dev" -r "$read_ms" -t "$max" \
    -k "${kb%,*}" -K "${kb#*,}" -n "$files" -i "$pace"
echo "E2E-EXIT rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
umount /mnt 2>/dev/null
poweroff -f
