#!/bin/bash
# Run the test suites: the series' own tests and the upstream tests that
# guard the code it touches, plus the workspace's own tests.
#
# usage: scripts/check.sh [SUITE...]   (default: all suites)
#   suites: workspace qtest iotests e2e asan libvirt (default: all)
#
# Prints one summary line per suite and, last, "N passed, N failed, N skipped".
# Exits non-zero if anything failed.  A skipped test is counted as skipped.
set -uo pipefail
. "$(dirname "$0")/common.sh"

b=$TREE/build
suites=("$@")
[ ${#suites[@]} = 0 ] && suites=(workspace qtest iotests asan e2e libvirt)
logdir=$BUILD_ROOT/check-logs
mkdir -p "$logdir"

total_pass=0 total_fail=0 total_skip=0
summary=()

# Count a TAP stream: ok / not ok / ok ... # SKIP
tap_count() {
    local log=$1 p f s
    p=$(grep -cE '^ok ' "$log")
    s=$(grep -cE '^ok .*# *(SKIP|skip)' "$log")
    f=$(grep -cE '^not ok ' "$log")
    echo "$((p - s)) $f $s"
}

record() {
    local name=$1 p=$2 f=$3 s=$4 secs=$5 extra=${6:-}
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + s))
    summary+=("$(printf '%-10s %4d passed, %d failed, %d skipped (%ds)%s' \
                 "$name:" "$p" "$f" "$s" "$secs" "$extra")")
    echo "${summary[-1]}"
}

suite_workspace() {
    local log=$logdir/workspace.log t0=$SECONDS
    : > "$log"
    local n=0
    for t in "$top"/tests/workspace/test-*.sh; do
        n=$((n + 1))
        if bash "$t" >> "$log" 2>&1; then
            echo "ok $n $(basename "$t")" >> "$log"
        else
            echo "not ok $n $(basename "$t")" >> "$log"
        fi
    done
    record workspace $(tap_count "$log") $((SECONDS - t0))
}

# Run the qos tests whose paths match FILTER one by one, so that a crash is
# one failure, against QEMU binary QEMU; at least MIN must match.
# usage: run_qos SUITE FILTER QEMU MIN [VAR=value...]
run_qos() {
    local suite=$1 filter=$2 qemu=$3 min=$4 t n=0 rc
    shift 4
    local log=$logdir/$suite.log one=$logdir/$suite-one.log t0=$SECONDS
    local env=(QTEST_QEMU_BINARY=$qemu QTEST_QEMU_IMG=./qemu-img
               QTEST_QEMU_STORAGE_DAEMON_BINARY=./storage-daemon/qemu-storage-daemon
               "$@")
    [ -x "$b/tests/qtest/qos-test" ] || { echo "$suite: $b/tests/qtest/qos-test missing; run 'make build'" >&2; record "$suite" 0 1 0 0; return; }
    [ -x "$qemu" ] || [ -x "$b/$qemu" ] || { echo "$suite: $qemu missing" >&2; record "$suite" 0 1 0 0; return; }
    : > "$log"
    for t in $(cd "$b" && env "${env[@]}" ./tests/qtest/qos-test -l | grep -E "$filter"); do
        n=$((n + 1))
        (cd "$b" && env "${env[@]}" timeout 300 ./tests/qtest/qos-test --tap -k -p "$t") \
            > "$one" 2>&1
        rc=$?
        cat "$one" >> "$log"
        if grep -qE 'ERROR: (Address|Leak)Sanitizer' "$one"; then
            echo "not ok - $t (AddressSanitizer report)" >> "$log"
        elif [ $rc != 0 ] && ! grep -qE '^not ok' "$one"; then
            echo "not ok - $t (exit $rc: crashed or timed out)" >> "$log"
        elif ! grep -qE '^(not )?ok' "$one"; then
            echo "not ok - $t (did not run)" >> "$log"
        fi
    done
    # Fewer than expected means the list broke
    [ $n -ge "$min" ] || echo "not ok - only $n qos tests matched $filter" >> "$log"
    record "$suite" $(tap_count "$log") $((SECONDS - t0))
}

# Upstream's virtio-blk and virtio-scsi qos tests (14), which include the
# series' retry tests
suite_qtest() {
    run_qos qtest '/pci-bus/virtio-(blk|scsi)-pci/|/virtio-(blk|scsi)/retry/' \
        ./qemu-system-x86_64 20
}

# qemu-iotests of the quick group that involve werror/rerror, blkdebug
# or NBD, on raw and qcow2, plus the series' own ('retry' in the name).
iotests_list() {
    local d=$TREE/tests/qemu-iotests f g
    (cd "$d" && for f in [0-9][0-9][0-9] tests/*; do
        [ -f "$f" ] || continue
        case $f in *.out|*.py|*.pyc) continue ;; esac
        g=$(grep -m1 '^# group:' "$f")
        case $f in *retry*) echo "${f#tests/}"; continue ;; esac
        case $g in *quick*) ;; *) continue ;; esac
        grep -qE 'werror|rerror|blkdebug|nbd' "$f" && echo "${f#tests/}"
    done)
}
suite_iotests() {
    local t0=$SECONDS fmt pass=0 fail=0 skip=0 c
    [ -d "$b/tests/qemu-iotests" ] || { record iotests 0 1 0 0; return; }
    for fmt in raw qcow2; do
        local log=$logdir/iotests-$fmt.log
        (cd "$b/tests/qemu-iotests" &&
         timeout 1800 ../../pyvenv/bin/python3 ./check -tap -$fmt $(iotests_list)) \
            > "$log" 2>&1 || true
        grep -qE '^(not )?ok ' "$log" || echo "not ok 0 iotests -$fmt did not run" >> "$log"
        read -r c1 c2 c3 < <(tap_count "$log")
        pass=$((pass + c1)); fail=$((fail + c2)); skip=$((skip + c3))
    done
    record iotests $pass $fail $skip $((SECONDS - t0))
}

# The series' retry qtests again, against an AddressSanitizer build of QEMU
# (scripts/build.sh --asan): a parked request that is leaked, completed
# twice or used after free (reset, unplug, abort, migration, QMP fail-now)
# makes QEMU abort, and the test fail.
suite_asan() {
    run_qos asan '/virtio-(blk|scsi)(-pci)?(-tests)?/retry/' \
        "$TREE/build-asan/qemu-system-x86_64" 30 \
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:print_summary=1 \
        LSAN_OPTIONS=suppressions=$top/tests/asan/lsan.supp
}

suite_e2e() {
    local log=$logdir/e2e.log t0=$SECONDS
    if [ ! -f "$top/tests/e2e/run.py" ]; then
        record e2e 0 0 0 0 " (no e2e harness)"
        return
    fi
    QEMU=$b/qemu-system-x86_64 QEMU_UPSTREAM=$UPSTREAM_TREE/build/qemu-system-x86_64 \
        timeout 1200 python3 "$top/tests/e2e/run.py" --check > "$log" 2>&1
    local rc=$? line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        record e2e 0 1 0 $((SECONDS - t0)) " (harness exited $rc, see $log)"
        return
    fi
    set -- $(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
    local f=$2
    [ $rc != 0 ] && [ "$f" = 0 ] && f=1
    record e2e "$1" "$f" "${3:-0}" $((SECONDS - t0))
}

# The libvirt series (patches-libvirt/): libvirt's own test programs for what
# it touches, each case it adds, and its end-to-end run; TAP from
# scripts/check-libvirt.sh, which checks its own count.
suite_libvirt() {
    local log=$logdir/libvirt.log t0=$SECONDS rc
    timeout 1800 "$top/scripts/check-libvirt.sh" > "$log" 2>&1
    rc=$?
    grep -qE '^(not )?ok ' "$log" || echo "not ok - the libvirt suite did not run (exit $rc)" >> "$log"
    [ $rc = 0 ] || grep -qE '^not ok ' "$log" || echo "not ok - check-libvirt.sh exited $rc" >> "$log"
    record libvirt $(tap_count "$log") $((SECONDS - t0))
}

for s in "${suites[@]}"; do
    case $s in
    workspace|qtest|iotests|asan|e2e|libvirt) "suite_$s" ;;
    *) die "unknown suite '$s' (workspace qtest iotests asan e2e libvirt)" ;;
    esac
done

echo
echo "Summary (logs in $logdir):"
printf '  %s\n' "${summary[@]}"
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ $total_fail = 0 ]
