#!/bin/bash
# .ci/run ends on make check's closing line, when the tests pass and when
# one fails (make itself replaced by a stub that prints what make check
# prints, then make's own error line, and fails).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/bin"
cat > "$tmp/bin/make" <<'M'
#!/bin/bash
[ "$*" = check ] || exit 0
echo "Summary (logs in build/check-logs):"
echo "$FAKE_LINE"
[ "$FAKE_RC" = 0 ] || echo "make: *** [Makefile:60: check] Error 1" >&2
exit "$FAKE_RC"
M
chmod +x "$tmp/bin/make"

for rc in 0 2; do
    line="$((rc == 0 ? 5 : 4)) passed, $((rc == 0 ? 0 : 1)) failed, 0 skipped"
    got=0
    PATH=$tmp/bin:$PATH FAKE_RC=$rc FAKE_LINE=$line "$top/.ci/run" > "$tmp/out" 2>&1 || got=$?
    [ "$(tail -1 "$tmp/out")" = "$line" ] ||
        { cat "$tmp/out"; echo "make check exit $rc: CI does not end on the closing line"; exit 1; }
    [ "$got" = "$rc" ] || { echo "make check exit $rc: .ci/run exited $got"; exit 1; }
done
echo ".ci/run: ends on make check's closing line, with make check's exit status"
