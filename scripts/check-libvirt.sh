#!/bin/bash
# The libvirt series' tests, as TAP:
#
#  0. libvirt's whole test suite (build/libvirt/build, built by
#     scripts/libvirt-build.sh), as Debian's debian/rules runs it: meson
#     test without the syntax-check suite (make check-libvirt-series runs
#     syntax-check on what each patch touches), one result per test.
#     Skipped is only what KNOWN_SKIPS names, with its reason; any other
#     skip fails.  An expected failure (libvirtd's missing-config test) is
#     a pass.  meson test may first build what a test needs that 'all' does
#     not (the lxc monitor protocol files that check-driverimpls and
#     check-aclrules read);
#  1. again, verbosely, libvirt's test programs for what the series
#     touches:
#     qemuxmlconftest, genericxml2xmltest, virschematest,
#     qemucapabilitiestest, domaincapstest, qemumonitorjsontest,
#     qemuhotplugtest, virshtest (virsh against the test driver);
#  2. inside them, every test case the series adds (named in
#     patches-libvirt/*.patch) ran, as often as the series registers it;
#  3. the capability fixture of the patched QEMU (the +retry variant) is
#     what qemucapsprobe gets from build/qemu/build's binary now
#     (tests/libvirt/caps_drift.py);
#  4. the end-to-end run, tests/libvirt/e2e.py (root; patched and upstream
#     QEMU built).
# The workspace's scripts for libvirt (tree, export) are tested with QEMU's,
# in tests/workspace (make check-workspace).
#
# usage: scripts/check-libvirt.sh [--no-e2e]
#
# Counted exactly: the number of results must be the number the tree and the
# e2e's own list define, or a last "not ok" says so.  Exits 1 on any
# "not ok".  Nothing is ever skipped.
set -uo pipefail
. "$(dirname "$0")/common.sh"
PATCHES=$top/patches-libvirt
t=${LV_TREE:-$BUILD_ROOT/libvirt}
lb=$t/build
e2e=1
[ "${1:-}" = --no-e2e ] && e2e=0

PROGRAMS=(qemuxmlconftest genericxml2xmltest virschematest qemucapabilitiestest domaincapstest
          qemumonitorjsontest qemuhotplugtest virshtest)
# libvirt's tests that cannot run on this machine: name and reason
declare -A KNOWN_SKIPS=(
    [vshtabletest]="needs the en_US.UTF-8 locale, which this machine does not generate"
)
logdir=$BUILD_ROOT/check-logs/libvirt
mkdir -p "$logdir"
n=0 failed=0
result() {   # result OK|FAIL text
    n=$((n + 1))
    if [ "$1" = OK ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failed=$((failed + 1))
    fi
}

# Test cases the series adds to test program $1 (source file tests/$1.c),
# one line per registration: "+ DO_TEST...("name"...)" / "+ DO_TEST(Name)";
# qemuhotplugtest's DO_TEST_FULL("arch", "+variant", "file", ACTION, "dev"
# runs as "file+variant ACTION dev".
series_cases() {
    awk -v f="tests/$1.c" '
        /^\+\+\+ b\// { cur = substr($2, 3); next }
        cur == f && f == "tests/qemuhotplugtest.c" && /^\+ +DO_TEST_FULL\("/ {
            s = $0; sub(/^\+ +DO_TEST_FULL\(/, "", s); gsub(/"/, "", s)
            split(s, a, / *, */); print a[3] a[2] " " a[4] " " a[5]; next
        }
        cur == f && /^\+ +DO_TEST[A-Z_]*\(/ {
            s = $0
            if (match(s, /\("[^"]+"/)) { print substr(s, RSTART + 2, RLENGTH - 3); next }
            if (match(s, /^\+ +DO_TEST\([A-Za-z0-9_]+\)/)) {
                s = substr(s, RSTART, RLENGTH); sub(/^\+ +DO_TEST\(/, "", s); sub(/\)$/, "", s); print s
            }
        }' "$PATCHES"/*.patch
}

# How often case $2 ran in the verbose log $3 of program $1: a case that
# libvirt's test reports as SKIP did not run, and does not count (the
# verdict of a case that prints an expected error comes on the next line)
ran_count() {
    local prog=$1 name=$2 log=$3 rx
    rx=$(printf '%s' "$name" | sed 's/[.[\*^$/+]/\\&/g')
    case $prog in
    qemuxmlconftest)    grep -E "^ *[0-9]+\) QEMU XML def parse $rx\.[a-z0-9_]+-[a-z0-9.]+ " "$log" ;;
    genericxml2xmltest) grep -E "^ *[0-9]+\) GENERIC XML-2-XML $rx +\.\.\. " "$log" ;;
    *)                  grep -E "^ *[0-9]+\) $rx +\.\.\. " "$log" ;;
    esac | grep -cvE '\.\.\. +SKIP$'
}

[ -x "$lb/tools/virsh" ] && [ -f "$lb/build.ninja" ] ||
    { result FAIL "libvirt is not built in $lb (make build-libvirt)"; echo "1..$n"; exit 1; }

# 0. the whole suite: "N/M libvirt:SUITE / NAME   VERDICT  TIME"
log=$logdir/suite.log
(cd "$lb" && meson test --no-suite syntax-check) > "$log" 2>&1
rc=$?
want=$(cd "$lb" && meson test --list --no-suite syntax-check 2>/dev/null | grep -c ' / ')
got=0
while IFS=$'\t' read -r name verdict; do
    got=$((got + 1))
    case $verdict in
    OK) result OK "libvirt test suite: $name" ;;
    EXPECTEDFAIL) result OK "libvirt test suite: $name (expected to fail, and did)" ;;
    SKIP)
        if [ -n "${KNOWN_SKIPS[$name]:-}" ]; then
            result OK "libvirt test suite: $name # SKIP ${KNOWN_SKIPS[$name]}"
        else
            result FAIL "libvirt test suite: $name skipped (see $log)"
        fi ;;
    *) result FAIL "libvirt test suite: $name $verdict (see $log)" ;;
    esac
done < <(sed -nE 's|^ *[0-9]+/[0-9]+ libvirt:[^ ]+ / (.+[^ ]) +(OK\|FAIL\|SKIP\|EXPECTEDFAIL\|UNEXPECTEDPASS\|TIMEOUT\|ERROR) .*|\1\t\2|p' "$log")
[ "$got" = "$want" ] && [ "$want" -gt 0 ] ||
    result FAIL "libvirt test suite: $got results of the $want tests meson lists (exit $rc, see $log)"
[ $rc = 0 ] || [ $failed -gt 0 ] || result FAIL "libvirt test suite: meson test exited $rc (see $log)"

for p in "${PROGRAMS[@]}"; do
    want=$((want + 1))
    log=$logdir/$p.log
    # meson test: the program's verdict; VIR_TEST_VERBOSE: one line per case
    (cd "$lb" && VIR_TEST_VERBOSE=1 meson test --no-rebuild --verbose "$p") > "$log" 2>&1
    rc=$?
    if [ $rc = 0 ] && grep -qE "^ *1/1 .*$p +OK " "$log"; then
        result OK "meson test $p"
    else
        result FAIL "meson test $p (exit $rc, see $log)"
    fi
    # each case the series adds, as often as it registers it
    while read -r cnt name; do
        want=$((want + 1))
        got=$(ran_count "$p" "$name" "$log")
        if [ "$got" = "$cnt" ]; then
            result OK "$p: the series' case $name ran ($got of $cnt)"
        else
            result FAIL "$p: the series' case $name ran $got times, the series registers it $cnt times"
        fi
    done < <(series_cases "$p" | sort | uniq -c)
done

# the +retry capability fixture against the binary it was probed from
want=$((want + 1))
qemu=$BUILD_ROOT/qemu/build/qemu-system-x86_64
fixture=$t/tests/qemucapabilitiesdata/caps_10.0.0_x86_64+retry.replies
log=$logdir/caps-drift.log
if [ -x "$qemu" ] && python3 "$top/tests/libvirt/caps_drift.py" "$qemu" \
        "$lb/tests/qemucapsprobe" "$fixture" > "$log" 2>&1; then
    result OK "the +retry capability fixture matches $qemu ($(tail -1 "$log"))"
else
    result FAIL "the +retry capability fixture drifted from $qemu, or it is not built (see $log)"
fi

if [ $e2e = 1 ]; then
    log=$logdir/e2e.log
    list=$(python3 "$top/tests/libvirt/e2e.py" --list)
    ne2e=$(echo "$list" | grep -c .)
    want=$((want + ne2e))
    timeout 900 python3 "$top/tests/libvirt/e2e.py" > "$log" 2>&1
    rc=$?
    got=0
    while read -r line; do
        case $line in
        "ok "*) got=$((got + 1)); result OK "e2e ${line#ok * - }" ;;
        "not ok "*) got=$((got + 1)); result FAIL "e2e ${line#not ok * - }" ;;
        esac
    done < "$log"
    # a check the e2e lists but did not report (it crashed) is a failure
    while [ $got -lt "$ne2e" ]; do
        got=$((got + 1))
        result FAIL "e2e: only $((got - 1)) of $ne2e results (exit $rc, see $log)"
    done
    [ $rc = 0 ] || [ $failed -gt 0 ] || result FAIL "e2e exited $rc (see $log)"
fi

[ $n = $want ] || result FAIL "$((n)) results, the tree and the e2e define $want"
echo "1..$n"
[ $failed = 0 ]
