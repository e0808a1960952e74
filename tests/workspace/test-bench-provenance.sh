#!/bin/bash
# bench/run.py records, with each item's result, the date, the workspace's
# commit, the series' commit (the patched binary's tree) and the sha256 of
# the binaries it ran (here: fake binaries in fake git trees; the item
# itself is replaced by a stub).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for t in patched upstream; do
    mkdir -p "$tmp/$t/build"
    echo "fake $t" > "$tmp/$t/build/qemu-system-x86_64"
    git -C "$tmp/$t" init -q
    git -C "$tmp/$t" -c user.name=t -c user.email=t@t.invalid commit -q --allow-empty -m "$t"
done
QEMU=$tmp/patched/build/qemu-system-x86_64 QEMU_UPSTREAM=$tmp/upstream/build/qemu-system-x86_64 \
QEMU_BEFORE=$tmp/none/build/qemu-system-x86_64 python3 - "$top" "$tmp/out.json" <<'PY' > "$tmp/log" 2>&1
import sys
top, out = sys.argv[1:3]
sys.path.insert(0, top + '/bench')
import run
run.run_item = lambda item, params, log: {'stub': 1}
sys.argv = ['run.py', '--quick', '--only', 'timeout', '--out', out]
try:
    run.main()
except Exception:          # the summary of a stub result: not what is tested
    pass
PY
python3 - "$tmp" "$(git -C "$top" rev-parse HEAD)" "$(git -C "$tmp/patched" rev-parse HEAD)" \
    "$(sha256sum < "$tmp/patched/build/qemu-system-x86_64" | cut -d' ' -f1)" \
    "$(sha256sum < "$tmp/upstream/build/qemu-system-x86_64" | cut -d' ' -f1)" <<'PY' || { cat "$tmp/log"; exit 1; }
import json, sys
tmp, ws, series, sha_p, sha_u = sys.argv[1:6]
p = json.load(open(tmp + '/out.json'))['timeout']['provenance']
assert p['workspace_commit'] == ws, p
assert p['series_commit'] == series, p
assert p['binaries']['patched']['sha256'] == sha_p, p
assert p['binaries']['upstream']['sha256'] == sha_u, p
assert p['binaries']['patched']['tree_head'] == series, p
assert 'before' not in p['binaries'], p        # missing: not recorded
assert p['date'][:2] == '20', p
PY
echo "bench: results record the commits, the binaries' sha256 and the date"
