#!/bin/bash
# debian-sources.py finds the archive URIs in deb822 and one-line formats.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/a/sources.list.d"
cat > "$tmp/a/sources.list.d/debian.sources" <<'S'
Types: deb
URIs: http://mirror.example/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: trixie-security
Components: main
S
out=$(APT_ETC=$tmp/a python3 "$here/scripts/debian-sources.py")
[ "$out" = "main http://mirror.example/debian /usr/share/keyrings/debian-archive-keyring.gpg
security http://mirror.example/debian-security -" ] || { echo "deb822: got: $out"; exit 1; }

mkdir -p "$tmp/b/sources.list.d"
cat > "$tmp/b/sources.list" <<'S'
# a comment
deb [arch=amd64 signed-by=/k.gpg] http://proxy.example:3142/debian/ bookworm main
deb http://proxy.example:3142/debian-security bookworm-security main
S
out=$(APT_ETC=$tmp/b python3 "$here/scripts/debian-sources.py")
[ "$out" = "main http://proxy.example:3142/debian /k.gpg
security http://proxy.example:3142/debian-security -" ] || { echo "one-line: got: $out"; exit 1; }

mkdir -p "$tmp/c/sources.list.d"
if APT_ETC=$tmp/c python3 "$here/scripts/debian-sources.py" 2>"$tmp/err"; then
    echo "no sources: should fail"; exit 1
fi
grep -q "no Debian archive" "$tmp/err"
echo "debian-sources: ok"
