#!/bin/sh
# /init of the e2e test guest (busybox-static).  Loads the modules listed in
# /modules.list (already in dependency order), mounts the ext4 test disk and
# runs the workload.  Parameters come from the kernel command line:
#   e2e.dev=/dev/vda     test disk (default: first of /dev/vda, /dev/sda);
#                        LABEL=x finds it by its filesystem label
#   e2e.dev2=LABEL=x     a second disk: a second workload (prefix E2EB) on it
#   e2e.max=SECS         workload safety time limit (default 300)
#   e2e.read_ms=MS       O_DIRECT reader on the raw disk every MS ms (0 = off)
#   e2e.kb=MIN,MAX       file sizes in KiB (default 1,8)
#   e2e.files=N          maximum number of files (default 8000)
#   e2e.pace=MS          pause between files (default 20)
#   e2e.jobs=N           writer threads, one per CPU (default 1)
#   e2e.mode=read        write the files, then read them back again and again
#   e2e.mntopts=OPTS     extra mount options (e.g. noatime)
#   e2e.hung=SECS        kernel.hung_task_timeout_secs (default: the kernel's)
#   e2e.acks=1           each start writes into a new directory and prints an
#                        E2E-ACK line per acknowledged file (torture runs)
# The ACPI power button (system_powerdown) is a graceful shutdown: the
# workload gets SIGTERM, which ends it as E2E-STOP does (E2E-POWERBUTTON).
# The host stops the workload by writing "E2E-STOP" to the serial console.
# After the workload the disks are unmounted and checked with e2fsck -fn
# (E2E-FSCK rc=N), and the virtio interrupt counts are printed (E2E-IRQ).
export PATH=/bin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /etc /tmp && ln -sf /proc/mounts /etc/mtab
echo "E2E-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"

while read -r m; do
    insmod "/lib/modules/$m" 2>/dev/null || echo "E2E-INFO insmod $m failed (ignored)"
done < /modules.list

dev=
dev2=
max=300
read_ms=0
kb=1,8
files=8000
pace=20
jobs=1
mode=write
mntopts=
hung=
acks=
for w in $(cat /proc/cmdline); do
    case "$w" in
        e2e.dev=*) dev=${w#e2e.dev=} ;;
        e2e.dev2=*) dev2=${w#e2e.dev2=} ;;
        e2e.max=*) max=${w#e2e.max=} ;;
        e2e.read_ms=*) read_ms=${w#e2e.read_ms=} ;;
        e2e.kb=*) kb=${w#e2e.kb=} ;;
        e2e.files=*) files=${w#e2e.files=} ;;
        e2e.pace=*) pace=${w#e2e.pace=} ;;
        e2e.jobs=*) jobs=${w#e2e.jobs=} ;;
        e2e.mode=*) mode=${w#e2e.mode=} ;;
        e2e.mntopts=*) mntopts=,${w#e2e.mntopts=} ;;
        e2e.hung=*) hung=${w#e2e.hung=} ;;
        e2e.acks=1) acks="-D -A" ;;
    esac
done
[ -n "$hung" ] && echo "$hung" > /proc/sys/kernel/hung_task_timeout_secs

fail_setup() {
    echo "E2E-RESULT written=0 verified=0 bad=0 write_errors=0 read_errors=0 max_stall_ms=0 fs_rw=0 kernel_io_errors=0 setup_failed=$1"
    poweroff -f
}

# wait for a disk (SCSI scanning is asynchronous): resolve $1 (a device,
# LABEL=..., or empty for the first of vda/sda) and print it
find_disk() {
    i=0
    while :; do
        case "$1" in
            LABEL=*) d=$(findfs "$1" 2>/dev/null) && [ -b "$d" ] && break ;;
            ?*) [ -b "$1" ] && d=$1 && break ;;
            *) for d in /dev/vda /dev/sda; do [ -b "$d" ] && break 2; done ;;
        esac
        i=$((i + 1))
        [ $i -gt 300 ] && return 1
        sleep 0.1
    done
    echo "$d"
}

# power_button INPUTDIR PID: the first event of the ACPI power button
# device (an input_event is 24 bytes on x86_64) sends PID SIGTERM
power_button() {
    for e in "$1"/event*; do
        [ -e "$e" ] || continue
        dd if="/dev/input/${e##*/}" bs=24 count=1 >/dev/null 2>&1 || return
        echo "E2E-POWERBUTTON uptime=$(cut -d' ' -f1 /proc/uptime)"
        kill -TERM "$2"
        return
    done
}

dev=$(find_disk "$dev") || fail_setup no_disk
mkdir -p /mnt /mnt2
mount -t ext4 -o "errors=remount-ro$mntopts" "$dev" /mnt || fail_setup mount
if [ -n "$dev2" ]; then
    dev2=$(find_disk "$dev2") || fail_setup no_disk2
    mount -t ext4 -o "errors=remount-ro$mntopts" "$dev2" /mnt2 || fail_setup mount2
fi
echo "E2E-READY dev=$dev dev2=${dev2:--} uptime=$(cut -d' ' -f1 /proc/uptime)"
ropt=
[ "$mode" = read ] && ropt=-R
bpid=
if [ -n "$dev2" ]; then
    /bin/e2e-workload -P E2EB -m /mnt2 -t "$max" -k "${kb%,*}" -K "${kb#*,}" -n "$files" \
        -i "$pace" </dev/null &
    bpid=$!
fi
# a background job's stdin would be /dev/null: give it the console
/bin/e2e-workload -m /mnt -d "$dev" -r "$read_ms" -t "$max" \
    -k "${kb%,*}" -K "${kb#*,}" -n "$files" -i "$pace" -j "$jobs" $ropt $acks \
    </dev/console &
wpid=$!
for n in /sys/class/input/input*; do
    grep -q "Power Button" "$n/name" 2>/dev/null && power_button "$n" "$wpid" &
done
wait "$wpid"
echo "E2E-EXIT rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
if [ -n "$bpid" ]; then
    kill -TERM "$bpid"
    wait "$bpid"
fi

check_fs() {   # PREFIX MOUNTPOINT DEVICE
    umount "$2" 2>/dev/null || echo "$1-INFO umount $2 failed"
    e2fsck -fn "$3" > /tmp/fsck.out 2>&1
    rc=$?
    [ $rc != 0 ] && sed "s/^/$1-FSCK-OUT /" /tmp/fsck.out | head -20
    echo "$1-FSCK rc=$rc dev=$3"
}
check_fs E2E /mnt "$dev"
[ -n "$dev2" ] && check_fs E2EB /mnt2 "$dev2"
grep virtio /proc/interrupts | sed 's/^/E2E-IRQ /'
echo "E2E-DONE"
poweroff -f
