#!/bin/bash
# No silent skip: scripts/check.sh's qtest suite, on a fake QEMU tree whose
# qos-test lists 14 upstream tests and 2 retry tests, passes only when every
# test ran and the number matches what tests/expected pins; a retry qtest
# that skips, a test more than pinned, or a tree that defines another
# number of retry tests fails it.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

t=$tmp/qemu
mkdir -p "$t/build/tests/qtest" "$t/tests/qtest"
p=/x86_64/pc/i440FX-pcihost/pci-bus-pc/pci-bus/virtio-blk-pci/virtio-blk/virtio-blk-tests
for i in $(seq 14); do echo "$p/upstream-$i"; done > "$tmp/list"
printf '%s\n' "$p/retry/a" "$p/retry/b" >> "$tmp/list"
printf 'qos_add_test("retry/a", ...);\nqos_add_test("retry/b", ...);\n' > "$t/tests/qtest/fake-retry.c"
printf '#!/bin/sh\nexit 0\n' > "$t/build/qemu-system-x86_64"
cat > "$t/build/tests/qtest/qos-test" <<'Q'
#!/bin/bash
# -l: the list; --tap -k -p PATH: one test, skipped if named in $FAKE_SKIP
[ "$1" = -l ] && { grep -v "^${FAKE_HIDE:-NONE}\$" "$FAKE_LIST"; exit 0; }
path=${@: -1}
if [ "$path" = "${FAKE_SKIP:-}" ]; then echo "ok 1 $path # SKIP forced"; else echo "ok 1 $path"; fi
echo "1..1"
Q
chmod +x "$t/build/qemu-system-x86_64" "$t/build/tests/qtest/qos-test"

run() {   # run PINNED [VAR=value...]: check.sh qtest's exit status
    echo "count qtest $1" > "$tmp/expected"
    shift
    env "$@" FAKE_LIST="$tmp/list" TREE="$t" BUILD_ROOT="$tmp/b" CHECK_EXPECTED="$tmp/expected" \
        "$top/scripts/check.sh" qtest > "$tmp/out" 2>&1
}

run 16 || { cat "$tmp/out"; echo "all 16 ran: check.sh should pass"; exit 1; }
grep -q '^16 passed, 0 failed, 0 skipped$' "$tmp/out"

if run 16 FAKE_SKIP="$p/retry/b"; then
    cat "$tmp/out"; echo "a retry qtest skipped: check.sh should fail"; exit 1
fi
grep -q "not ok - $p/retry/b (skipped" "$tmp/b/check-logs/qtest.log"
tail -1 "$tmp/out" | grep -qE '^15 passed, [1-9][0-9]* failed'

if run 16 FAKE_HIDE="$p/retry/b"; then
    cat "$tmp/out"; echo "a retry qtest vanished from the list: check.sh should fail"; exit 1
fi
grep -q "15 qos tests matched .*tests/expected pins 16" "$tmp/b/check-logs/qtest.log"

# the tree defines a third retry test that nobody pinned
printf 'qos_add_test("retry/c", ...);\n' >> "$t/tests/qtest/fake-retry.c"
if run 16; then
    cat "$tmp/out"; echo "the tree defines 17: check.sh should fail"; exit 1
fi
grep -q "defines 17 tests, tests/expected pins 16" "$tmp/b/check-logs/qtest.log"
echo "check.sh: a skipped or missing retry qtest, or an unpinned count, fails"
