#!/bin/bash
# No silent skip in check.sh's iotests suite, on a fake QEMU tree: one
# upstream test (001, not run on qcow2, as pinned) and the series' tests
# retry-a and retry-device-sweep (raw only).  The suite passes as pinned;
# a series' test that is not run fails it, and so does an upstream test
# that is not run beyond the pinned count.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# a copy of scripts/ whose patches/ names the fake series' iotests
mkdir -p "$tmp/repo/patches"
cp -r "$top/scripts" "$tmp/repo/"
printf '+++ b/tests/qemu-iotests/tests/%s\n' retry-a retry-device-sweep > "$tmp/repo/patches/0001-fake.patch"

# fake iotests ./check (run as pyvenv/bin/python3 ./check -tap -FMT TESTS):
# "ok FMT TEST", or "ok FMT TEST # SKIP" for FMT:TEST in $FAKE_SKIP
for t in qemu up; do
    mkdir -p "$tmp/$t/build/pyvenv/bin" "$tmp/$t/build/tests/qemu-iotests" "$tmp/$t/tests/qemu-iotests/tests"
    cat > "$tmp/$t/build/pyvenv/bin/python3" <<'P'
#!/bin/bash
shift 2
fmt=${1#-}
shift
for t in "$@"; do
    case " $FAKE_SKIP " in
    *" $fmt:$t "*) echo "ok $fmt $t # SKIP" ;;
    *) echo "ok $fmt $t" ;;
    esac
done
P
    chmod +x "$tmp/$t/build/pyvenv/bin/python3"
done
q=$tmp/qemu/tests/qemu-iotests
printf '#!/bin/bash\n# group: rw quick\n# werror\n' > "$q/001"
printf "#!/usr/bin/env python3\n# group: rw\n# supported_fmts=['raw']\n" > "$q/tests/retry-a"
cp "$q/tests/retry-a" "$q/tests/retry-device-sweep"
printf 'virtio-blk cold ok\n=== werror/rerror=retry ===\nmore\n' > "$q/tests/retry-device-sweep.out"
printf 'count iotests-raw 3 0\ncount iotests-qcow2 1 1\n' > "$tmp/expected"

run() {   # run FAKE_SKIP: check.sh iotests' exit status
    env FAKE_SKIP="$1" TREE="$tmp/qemu" UPSTREAM_TREE="$tmp/up" BUILD_ROOT="$tmp/b" \
        CHECK_EXPECTED="$tmp/expected" "$tmp/repo/scripts/check.sh" iotests > "$tmp/out" 2>&1
}

run "qcow2:001" || { cat "$tmp/out"; echo "as pinned: check.sh should pass"; exit 1; }
grep -q '^iotests: *4 passed, 0 failed, 1 skipped' "$tmp/out" || { cat "$tmp/out"; exit 1; }

if run "qcow2:001 raw:retry-a"; then
    cat "$tmp/out"; echo "the series' retry-a not run: check.sh should fail"; exit 1
fi
grep -q "not ok 0 iotests -raw: the series' test retry-a did not run" "$tmp/b/check-logs/iotests-raw.log"

if run "qcow2:001 raw:001"; then
    cat "$tmp/out"; echo "001 not run on raw too: check.sh should fail"; exit 1
fi
grep -q "not ok 0 iotests -raw: 1 tests not run, tests/expected pins 0" "$tmp/b/check-logs/iotests-raw.log"
echo "check.sh: a series' iotest not run, or one more upstream iotest not run, fails"
