#!/bin/bash
# make deb (scripts/deb.sh) on the real Debian 13 qemu source package, from
# fetch-qemu.sh's cache (no network when it is cached; when it is neither
# cached nor reachable, this fails), with lintian stubbed: the produced
# .debian.tar.xz's debian/patches/series is Debian's, then exactly the
# series in order under retry/, each patch byte for byte; the changelog's
# new entry is Debian's version + "+retry1", UNRELEASED, naming every
# patch in order; a lintian tag Debian's package already has does not
# fail, an error only ours has does.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cache=${XDG_CACHE_HOME:-$HOME/.cache}/qemu-retry

mkdir -p "$tmp/bin"
cat > "$tmp/bin/lintian" <<'L'
#!/bin/sh
[ "$1" = --print-version ] && { echo 0-stub; exit 0; }
for a; do dsc=$a; done
echo "E: qemu source: tag-debian-has-too"
case $dsc in *+retry*)
    echo "W: qemu source: tag-only-ours-has"
    [ -z "${STUB_ERROR:-}" ] || echo "E: qemu source: error-only-ours-has" ;;
esac
exit 2
L
chmod +x "$tmp/bin/lintian"
run() {
    env LINTIAN="$tmp/bin/lintian" BUILD_ROOT="$tmp/b" "$top/scripts/deb.sh" > "$tmp/out" 2>&1
}
run || { cat "$tmp/out"; echo "deb.sh failed"; exit 1; }

out=$tmp/b/deb
dsc=$(ls "$out"/qemu_*+retry1.dsc)
deb=${dsc%.dsc}.debian.tar.xz
mkdir "$tmp/x"
tar -xJf "$deb" -C "$tmp/x" debian/changelog debian/patches
cl=$tmp/x/debian/changelog
base=$(dpkg-parsechangelog -l "$cl" --offset 1 --count 1 -S Version)
[ "$(dpkg-parsechangelog -l "$cl" -S Version)" = "$base+retry1" ] ||
    { echo "changelog version: $(dpkg-parsechangelog -l "$cl" -S Version), want $base+retry1"; exit 1; }
[ "$(dpkg-parsechangelog -l "$cl" -S Distribution)" = UNRELEASED ]
[ "$(grep -c '^Version: ' "$dsc")" = 1 ] && grep -qx "Version: $base+retry1" "$dsc"

# debian/patches/series: Debian's own, then the series, in order
grep -v '^\s*\(#\|$\)' "$top/patches/series" | sed 's|^|retry/|' > "$tmp/want"
n=$(wc -l < "$tmp/want")
[ "$n" -gt 0 ]
tar -xJOf "$cache/src/qemu_${base#*:}.debian.tar.xz" debian/patches/series > "$tmp/debian-series"
cat "$tmp/debian-series" "$tmp/want" | diff -u - "$tmp/x/debian/patches/series" ||
    { echo "debian/patches/series is not Debian's + the series in order"; exit 1; }
while read -r p; do
    cmp "$top/patches/${p#retry/}" "$tmp/x/debian/patches/$p"
done < "$tmp/want"
[ "$(ls "$tmp/x/debian/patches/retry" | wc -l)" = "$n" ]

# the changelog entry names every patch, in order (one item each)
dpkg-parsechangelog -l "$cl" -S Changes | sed -n 's/^ *\* \([0-9]\{4\}-[^ ]*\)$/retry\/\1.patch/p' |
    diff -u "$tmp/want" - ||
    { echo "the changelog entry does not name the series in order"; exit 1; }
grep -q "quilt: $n patches pushed" "$tmp/out"

# lintian: only the tag Debian's package lacks is new; a new error fails
[ "$(cat "$out/lintian-new.txt")" = "W: qemu source: tag-only-ours-has" ] ||
    { echo "lintian-new.txt:"; cat "$out/lintian-new.txt"; exit 1; }
if STUB_ERROR=1 run; then cat "$tmp/out"; echo "a new lintian error passed"; exit 1; fi
grep -q "lintian finds errors the series' packaging introduced" "$tmp/out" ||
    { cat "$tmp/out"; exit 1; }
echo "deb: $n patches in debian/patches/series after Debian's, changelog $base+retry1 UNRELEASED, new lintian errors fail"
