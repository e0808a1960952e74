#!/bin/bash
# Run the test suites: the series' own tests and the upstream tests that
# guard the code it touches, plus the workspace's own tests.
#
# usage: scripts/check.sh [SUITE...]   (default: all suites)
#   suites: workspace gate qtest iotests asan e2e torture libvirt (default:
#           all), e2e-full (every e2e run, not only make check's subset),
#           gate-full (QEMU's suites in full on both builds)
#
# Prints one summary line per suite and, last, "N passed, N failed, N skipped".
# Exits non-zero if anything failed.  Each suite runs exactly the number of
# tests tests/expected pins (CHECK_EXPECTED: another file), and fails when
# its tree or harness defines another number.  A retry test (qtest, asan,
# the series' iotests, the libvirt series' cases) that skips is a failure;
# only the upstream iotests tests/expected counts as not run, and the
# libvirt tests check-libvirt.sh names with a reason, are skipped.
set -uo pipefail
. "$(dirname "$0")/common.sh"

b=$TREE/build
suites=("$@")
[ ${#suites[@]} = 0 ] && suites=(workspace gate qtest iotests asan e2e torture libvirt)
logdir=$BUILD_ROOT/check-logs
mkdir -p "$logdir"

EXPECTED=${CHECK_EXPECTED:-$top/tests/expected}
[ -f "$EXPECTED" ] || die "$EXPECTED is missing"
# The count tests/expected pins for suite $1 (field $2: 3 the tests, 4 the
# iotests not run), or 0 when it pins none (which fails the suite)
pinned() {
    awk -v s="$1" -v f="${2:-3}" '$1 == "count" && $2 == s { n = $f }
                                  END { print (n ~ /^[0-9]+$/) ? n : 0 }' "$EXPECTED"
}
# A TAP failure when the tree or harness defines another number of tests
# than tests/expected pins: check_defined SUITE DEFINED PINNED WHAT
check_defined() {
    [ "$2" = "$3" ] ||
        echo "not ok - $1: $4 defines $2 tests, tests/expected pins $3 (update it with the change)"
}

total_pass=0 total_fail=0 total_skip=0
summary=() failed_logs=()

# Count a TAP stream: ok / not ok / ok ... # SKIP; a 'not ok ... # TODO'
# (a known failure, scripts/gate.py) is neither passed nor failed
tap_count() {
    local log=$1 p f s
    p=$(grep -cE '^ok ' "$log")
    s=$(grep -cE '^ok .*# *(SKIP|skip)' "$log")
    f=$(grep -E '^not ok ' "$log" | grep -cvE '# TODO')
    echo "$((p - s)) $f $s"
}

record() {
    local name=$1 p=$2 f=$3 s=$4 secs=$5 extra=${6:-}
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    total_skip=$((total_skip + s))
    [ "$f" = 0 ] || failed_logs+=("$logdir/$name"*.log)
    summary+=("$(printf '%-10s %4d passed, %d failed, %d skipped (%ds)%s' \
                 "$name:" "$p" "$f" "$s" "$secs" "$extra")")
    echo "${summary[-1]}"
}

suite_workspace() {
    local log=$logdir/workspace.log t0=$SECONDS want
    : > "$log"
    local n=0
    want=$(pinned workspace)
    for t in "$top"/tests/workspace/test-*.sh; do
        n=$((n + 1))
        if bash "$t" >> "$log" 2>&1; then
            echo "ok $n $(basename "$t")" >> "$log"
        else
            echo "not ok $n $(basename "$t")" >> "$log"
        fi
    done
    # the Python of the tests and the benchmarks, with .flake8's settings
    n=$((n + 1))
    if (cd "$top" && flake8 tests bench) >> "$log" 2>&1; then
        echo "ok $n flake8 tests bench" >> "$log"
    else
        echo "not ok $n flake8 tests bench (Debian package flake8)" >> "$log"
    fi
    [ "$want" -gt 0 ] && [ $n = "$want" ] ||
        echo "not ok - $n workspace tests, tests/expected pins $want" >> "$log"
    record workspace $(tap_count "$log") $((SECONDS - t0))
}

# QEMU's own suites (every qtest-x86_64 program, the unit and QAPI schema
# tests, migration-test, iotests -g auto on raw and qcow2) on the patched
# build, compared with the upstream build: scripts/gate.py.  What passes
# on upstream must pass on the series; tests/gate/expected pins each
# suite's count and names the tests that fail on upstream too.
run_gate() {
    local suite=$1 log=$logdir/$1.log t0=$SECONDS rc d known
    shift
    for d in "$b" "$UPSTREAM_TREE/build"; do
        if [ ! -x "$d/tests/qtest/migration-test" ]; then
            record "$suite" 0 1 0 0 " ($d lacks QEMU's test programs: make build-gate)"
            return
        fi
    done
    timeout 10800 python3 "$top/scripts/gate.py" --series "$b" \
        --upstream "$UPSTREAM_TREE/build" --expected "$top/tests/gate/expected" \
        --logdir "$logdir" "$@" > "$log" 2> "$logdir/$suite.summary"
    rc=$?
    sed 's/^/    /' "$logdir/$suite.summary"
    grep -qE '^(not )?ok ' "$log" || echo "not ok - gate.py printed no result (exit $rc)" >> "$log"
    [ $rc = 0 ] || grep -E '^not ok ' "$log" | grep -qvE '# TODO' ||
        echo "not ok - gate.py exited $rc" >> "$log"
    known=$(grep -cE '^not ok .*# TODO' "$log")
    record "$suite" $(tap_count "$log") $((SECONDS - t0)) \
        " ($known failing on upstream too, named in tests/gate/expected)"
}
# make check leaves migration-test out: it runs no block device (a RAM
# dirtier migrated between two QEMUs), and its quick mode alone takes 9
# minutes here; the series' own qtests migrate parked requests
suite_gate() { run_gate gate --suites meson,iotests-raw,iotests-qcow2; }
suite_gate-full() { run_gate gate-full --full; }

# Upstream QEMU 10.0's virtio-blk and virtio-scsi qos tests on x86_64
# (8 virtio-blk, 6 virtio-scsi): the part of the qtest suite the series
# does not define.
UPSTREAM_QOS=14

# The retry qtests the patched tree registers, counted in its sources:
# qos tests named "retry/..." and plain qtest functions ".../retry/...".
retry_qtests_in_tree() {
    grep -oE '(register_[a-z_]*retry_test|qos_add_test)\("retry/[^"]*"|qtest_add_func\("/[^"]*/retry/[^"]*"' \
        "$TREE"/tests/qtest/*.c | sort -u | wc -l
}

# Run the qos tests whose paths match FILTER one by one, so that a crash is
# one failure, against QEMU binary QEMU; exactly as many as tests/expected
# pins for SUITE must match (a test that vanished, or one the filter no
# longer sees, fails the suite), and the tree's sources must define DEFINED.
# usage: run_qos SUITE FILTER QEMU DEFINED [VAR=value...]
run_qos() {
    local suite=$1 filter=$2 qemu=$3 defined=$4 t n=0 rc want
    shift 4
    want=$(pinned "$suite")
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
        elif grep -qE 'runtime error:|UndefinedBehaviorSanitizer' "$one"; then
            echo "not ok - $t (UndefinedBehaviorSanitizer report)" >> "$log"
        elif grep -qE '^ok .*# *(SKIP|skip)' "$one"; then
            echo "not ok - $t (skipped: a test of this suite that did not run)" >> "$log"
        elif [ $rc != 0 ] && ! grep -qE '^not ok' "$one"; then
            echo "not ok - $t (exit $rc: crashed or timed out)" >> "$log"
        elif ! grep -qE '^(not )?ok' "$one"; then
            echo "not ok - $t (did not run)" >> "$log"
        fi
    done
    # Another number than tests/expected pins means the list broke
    [ "$want" -gt 0 ] && [ $n -eq "$want" ] ||
        echo "not ok - $n qos tests matched $filter, tests/expected pins $want" >> "$log"
    check_defined "$suite" "$defined" "$want" "the tree's source (tests/qtest/*.c)" >> "$log"
    record "$suite" $(tap_count "$log") $((SECONDS - t0))
}

# Upstream's virtio-blk and virtio-scsi qos tests (14), which include the
# series' retry tests
suite_qtest() {
    run_qos qtest '/pci-bus/virtio-(blk|scsi)-pci/|/virtio-(blk|scsi)/retry/' \
        ./qemu-system-x86_64 $((UPSTREAM_QOS + $(retry_qtests_in_tree)))
}

# qemu-iotests of the quick group that involve werror/rerror, blkdebug
# or NBD, on raw and qcow2, plus the series' own ('retry' in the name).
# The formats the series' iotest $1 declares (supported_fmts), or both
test_formats() {
    local f=$TREE/tests/qemu-iotests/tests/$1 fmts
    fmts=$(grep -oE "supported_fmts=\[[^]]*\]" "$f" | grep -oE "'[a-z0-9]+'" | tr -d "'" | sort -u)
    if [ -n "$fmts" ]; then echo "$fmts"; else printf 'raw\nqcow2\n'; fi
}
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
# The iotests the series adds (named in patches/), each of which must be in
# the list and pass on at least one format.
series_iotests() {
    grep -h '^+++ b/tests/qemu-iotests/' "$PATCHES"/*.patch |
        sed -E 's|^\+\+\+ b/tests/qemu-iotests/(tests/)?||' | grep -v '\.out$' | sort -u
}
# The series' iotest retry-device-sweep starts every block device with
# every error policy QEMU had; the first part of its reference output must
# be exactly what upstream QEMU prints.  Run it on the upstream build (in
# that tree while it runs), against that part.
SWEEP=retry-device-sweep
sweep_on_upstream() {
    local src=$TREE/tests/qemu-iotests/tests dst=$UPSTREAM_TREE/tests/qemu-iotests/tests
    local log=$logdir/iotests-sweep-upstream.log n
    if [ ! -f "$src/$SWEEP.out" ] || [ ! -d "$UPSTREAM_TREE/build/tests/qemu-iotests" ]; then
        echo "iotests: $SWEEP or the upstream build is missing" >&2
        return 1
    fi
    cp "$src/$SWEEP" "$dst/$SWEEP"
    sed '/^=== werror\/rerror=retry ===$/,$d' "$src/$SWEEP.out" > "$dst/$SWEEP.out"
    n=$(grep -cE ' (cold|hot) ' "$dst/$SWEEP.out")
    echo '=== this QEMU has no werror/rerror=retry ===' >> "$dst/$SWEEP.out"
    (cd "$UPSTREAM_TREE/build/tests/qemu-iotests" &&
     timeout 900 ../../pyvenv/bin/python3 ./check -tap -raw "$SWEEP") > "$log" 2>&1
    rm -f "$dst/$SWEEP" "$dst/$SWEEP.out"
    if grep -qx "ok raw $SWEEP" "$log"; then
        echo "    $SWEEP: upstream QEMU answers its $n configurations of the policies it has alike" >&2
        return 0
    fi
    echo "iotests: $SWEEP's first part is not what upstream prints ($log):" >&2
    grep -E '^[-+][a-z]' "$log" | head -20 >&2
    return 1
}
suite_iotests() {
    local t0=$SECONDS fmt pass=0 fail=0 skip=0 c1 c2 c3 n t list want extra=
    local d=$b/tests/qemu-iotests notrun=$logdir/iotests-notrun.txt flaky=$logdir/iotests-flaky.txt
    [ -d "$d" ] || { record iotests 0 1 0 0; return; }
    list=$(iotests_list)
    : > "$notrun"
    : > "$flaky"
    for fmt in raw qcow2; do
        local log=$logdir/iotests-$fmt.log flist
        # the series' own tests only on the formats they declare, so that
        # none of them is ever "not run": that would be a skipped retry test
        flist=$(for t in $list; do
                    series_iotests | grep -qx "$t" &&
                        ! test_formats "$t" | grep -qx "$fmt" && continue
                    echo "$t"
                done)
        want=$(pinned "iotests-$fmt")
        (cd "$d" && timeout 1800 ../../pyvenv/bin/python3 ./check -tap -$fmt $flist) \
            > "$log" 2>&1 || true
        # An upstream test that fails runs once more, alone: some race with
        # their own helpers (qemu-img-bitmaps: common.nbd's nbd_server_stop
        # kills qemu-nbd without waiting, and the next command may find the
        # image still locked).  It counts as passed only if that run passes,
        # and is named in $flaky; the series' own tests never run twice.
        for t in $(sed -n "s/^not ok $fmt \([^ ]*\).*/\1/p" "$log"); do
            series_iotests | grep -qx "$t" && continue
            if (cd "$d" && timeout 600 ../../pyvenv/bin/python3 ./check -tap -$fmt "$t") \
                    2>&1 | grep -qx "ok $fmt $t"; then
                sed -i "s/^not ok $fmt $t\b.*/ok $fmt $t (failed once, passed alone: upstream's race)/" "$log"
                echo "$fmt $t: failed once, passed on a second run (log: $log)" >> "$flaky"
            fi
        done
        n=$(grep -cE '^(not )?ok ' "$log")
        c3=$(grep -cE '^ok .*# *(SKIP|skip)' "$log")
        {
            check_defined "iotests-$fmt" "$(echo "$flist" | grep -c .)" "$want" "the list (iotests_list)"
            for t in $(series_iotests); do
                grep -qE "^ok $fmt $t # SKIP" "$log" &&
                    echo "not ok 0 iotests -$fmt: the series' test $t did not run"
            done
            # one result per test of the list, or the run broke
            [ "$want" -gt 0 ] && [ "$n" = "$want" ] ||
                echo "not ok 0 iotests -$fmt: $n results, tests/expected pins $want tests"
            # as many upstream tests not run as pinned: one more is a test
            # that stopped running here
            [ "$c3" = "$(pinned "iotests-$fmt" 4)" ] ||
                echo "not ok 0 iotests -$fmt: $c3 tests not run, tests/expected pins $(pinned "iotests-$fmt" 4)"
        } >> "$log"
        read -r c1 c2 c3 < <(tap_count "$log")
        pass=$((pass + c1)); fail=$((fail + c2)); skip=$((skip + c3))
        # "not run", with the reason the test gave (TAP mode prints none)
        grep -E '^ok [a-z0-9]+ [^ ]+ # SKIP' "$log" | while read -r _ f name _; do
            echo "$f: $(head -1 "$d/scratch/$f-file-$name/$name.notrun" 2>/dev/null ||
                         echo '(no reason given)')|$name"
        done >> "$notrun"
    done
    for t in $(series_iotests); do
        if ! echo "$list" | grep -qx "$t"; then
            echo "iotests: the series' test $t is not in the list (vanished?)" >&2
            fail=$((fail + 1))
        elif ! grep -qhE "^ok (raw|qcow2) $t\$" "$logdir"/iotests-raw.log "$logdir"/iotests-qcow2.log; then
            echo "iotests: the series' test $t passed on no format" >&2
            fail=$((fail + 1))
        fi
    done
    if sweep_on_upstream; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
    [ "$skip" -gt 0 ] && extra=" (not run, by format and reason, in $notrun)"
    [ -s "$flaky" ] && extra+="; $(grep -c . "$flaky") upstream test(s) passed only on a second run, in $flaky"
    record iotests $pass $fail $skip $((SECONDS - t0)) "$extra"
    # the not-run list, grouped by format and reason
    sort "$notrun" | awk -F'|' '$1 != last { if (last != "") print line; line = "    not run " $1 ":"; last = $1 }
                                { line = line " " $2 } END { if (last != "") print line }'
}

# The series' retry qtests again, against a build of QEMU with
# AddressSanitizer and UndefinedBehaviorSanitizer (scripts/build.sh --asan):
# a parked request that is leaked, completed twice or used after free
# (reset, unplug, abort, migration, QMP fail-now), or undefined behaviour
# (shifts, overflows, misaligned or null accesses), makes QEMU abort, and
# the test fail; a report in the log fails it too.
SANITIZER_ENV=(
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:print_summary=1
    LSAN_OPTIONS=suppressions=$top/tests/asan/lsan.supp
    UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1
)
# (ASAN_QEMU: another sanitizer build of qemu-system-x86_64 to run them on)
suite_asan() {
    run_qos asan '/virtio-(blk|scsi)(-pci)?(-tests)?/retry/' \
        "${ASAN_QEMU:-$TREE/build-asan/qemu-system-x86_64}" "$(retry_qtests_in_tree)" \
        "${SANITIZER_ENV[@]}"
}

# The guest-level harness: run.py ARGS must report exactly WANT results
# (runs of the scenario matrix, or torture seeds); there is no skip (a run
# that cannot happen fails, and so does a skipped one).  Each run gets SECS
# seconds.  DEFINED: how many runs the harness lists, which must be WANT too.
run_e2e() {
    local suite=$1 want=$2 defined=$3 secs=$4 log=$logdir/$1.log t0=$SECONDS
    shift 4
    if [ ! -f "$top/tests/e2e/run.py" ]; then
        record "$suite" 0 1 0 0 " (no e2e harness: tests/e2e/run.py is missing)"
        return
    fi
    QEMU=$b/qemu-system-x86_64 QEMU_UPSTREAM=$UPSTREAM_TREE/build/qemu-system-x86_64 \
        QEMU_SANITIZER=$TREE/build-asan/qemu-system-x86_64 \
        timeout $((want * secs + 300)) python3 "$top/tests/e2e/run.py" "$@" > "$log" 2>&1
    local rc=$? line
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
    if [ -z "$line" ]; then
        record "$suite" 0 1 0 $((SECONDS - t0)) " (harness exited $rc, see $log)"
        return
    fi
    set -- $(echo "$line" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?.*/\1 \2 \4/')
    local p=$1 f=$2 s=${3:-0} extra=
    [ $rc != 0 ] && [ "$f" = 0 ] && f=1
    if [ "$want" = 0 ] || [ $((p + f + s)) != "$want" ]; then
        extra=" ($((p + f + s)) results for the $want runs expected)"
        f=$((f + 1))
    fi
    if [ "$defined" != "$want" ]; then
        extra="$extra (run.py lists $defined runs, tests/expected pins $want)"
        f=$((f + 1))
    fi
    [ "$f" = 0 ] || extra="$extra (failures: grep ^FAIL $log)"
    record "$suite" "$p" "$((f + s))" 0 $((SECONDS - t0)) "$extra"
}
e2e_runs() { python3 "$top/tests/e2e/run.py" "$1" --list | grep -c /; }
suite_e2e() { run_e2e e2e "$(pinned e2e)" "$(e2e_runs --check)" 150 --check; }
suite_e2e-full() { run_e2e e2e-full "$(pinned e2e-full)" "$(e2e_runs --full)" 200 --full; }

# The seeded torture run's quick mode (tests/e2e/e2e/torture.py): fixed
# seeds, TORTURE_DURATION seconds each, on the sanitizer build.  make check
# runs seed 2 (four QEMUs: outages, a failure given up, hotplug, migration
# and its cancel; 115 s), make check-full seeds 1 and 2 (seed 1 adds a
# 131 s single-QEMU session: CI's 60 minutes had no room for both).  A long
# run: make torture SEED=... DURATION=...
TORTURE_SEEDS=${TORTURE_SEEDS:-2}
TORTURE_DURATION=${TORTURE_DURATION:-90}
suite_torture() {
    local n
    n=$(echo "$TORTURE_SEEDS" | tr ',' '\n' | grep -c .)
    run_e2e torture "$n" "$n" $((TORTURE_DURATION + 400)) --torture \
        --seed "$TORTURE_SEEDS" --duration "$TORTURE_DURATION"
}

# The libvirt series (patches-libvirt/): libvirt's whole test suite, its
# test programs for what it touches, each case it adds, and its end-to-end
# run; TAP from
# scripts/check-libvirt.sh, which checks the count its tree and e2e define;
# the number of results must be the one tests/expected pins.
suite_libvirt() {
    local log=$logdir/libvirt.log t0=$SECONDS rc n want
    want=$(pinned libvirt)
    timeout 1800 "$top/scripts/check-libvirt.sh" > "$log" 2>&1
    rc=$?
    n=$(grep -cE '^(not )?ok ' "$log")
    [ "$want" -gt 0 ] && [ "$n" = "$want" ] ||
        echo "not ok - $n libvirt results, tests/expected pins $want" >> "$log"
    grep -qE '^(not )?ok ' "$log" || echo "not ok - the libvirt suite did not run (exit $rc)" >> "$log"
    [ $rc = 0 ] || grep -qE '^not ok ' "$log" || echo "not ok - check-libvirt.sh exited $rc" >> "$log"
    record libvirt $(tap_count "$log") $((SECONDS - t0))
}

for s in "${suites[@]}"; do
    case $s in
    workspace|gate|gate-full|qtest|iotests|asan|e2e|e2e-full|torture|libvirt) "suite_$s" ;;
    *) die "unknown suite '$s' (workspace gate gate-full qtest iotests asan e2e e2e-full torture libvirt)" ;;
    esac
done

if [ $total_fail != 0 ]; then
    # What failed, in the output itself: CI keeps only what is printed
    echo
    echo "Failures (first 40; whole logs in $logdir):"
    grep -E '^(FAIL |not ok )' "${failed_logs[@]}" 2>/dev/null | cut -c1-1500 | head -40
fi
echo
echo "Summary (logs in $logdir):"
printf '  %s\n' "${summary[@]}"
# the last line, also CI's (.ci/run ends on make check)
echo "$total_pass passed, $total_fail failed, $total_skip skipped"
[ $total_fail = 0 ]
