#!/bin/bash
# make deb and make deb-libvirt (scripts/deb.sh) on Debian 13's real qemu
# and libvirt source packages, from the fetch scripts' caches (no network
# when they are cached; when a package is neither cached nor reachable,
# this fails), with lintian stubbed.  For each: the produced
# .debian.tar.xz's debian/patches/series is Debian's, then exactly its
# series in order under retry/, each patch byte for byte; the changelog's
# new entry is Debian's version + "+retry1", UNRELEASED, naming every patch
# in order; a lintian tag Debian's package already has does not fail, an
# error only ours has does.  libvirt: libvirt0.symbols gains exactly
# the series' LIBVIRT_11.3.0 node at that version, after 11.2.0.
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
pkg=$(basename "$dsc" | cut -d_ -f1)
echo "E: $pkg source: tag-debian-has-too"
case $dsc in *+retry*)
    echo "W: $pkg source: tag-only-ours-has"
    [ -z "${STUB_ERROR:-}" ] || echo "E: $pkg source: error-only-ours-has" ;;
esac
exit 2
L
chmod +x "$tmp/bin/lintian"
run() {
    env LINTIAN="$tmp/bin/lintian" BUILD_ROOT="$tmp/b" "$top/scripts/deb.sh" "$1" > "$tmp/out" 2>&1
}

# check PKG OUTDIR PATCHES SRCCACHE: the source package deb.sh made (its
# last step, lintian, comes after dpkg-source -b)
check() {
    local pkg=$1 out=$tmp/b/$2 patches=$top/$3 srccache=$cache/$4
    local dsc deb x=$tmp/x-$pkg cl base n p
    dsc=$(ls "$out/${pkg}"_*+retry1.dsc)
    deb=${dsc%.dsc}.debian.tar.xz
    mkdir "$x"
    tar -xJf "$deb" -C "$x" debian/changelog debian/patches debian/libvirt0.symbols 2>/dev/null ||
        tar -xJf "$deb" -C "$x" debian/changelog debian/patches
    cl=$x/debian/changelog
    base=$(dpkg-parsechangelog -l "$cl" --offset 1 --count 1 -S Version)
    [ "$(dpkg-parsechangelog -l "$cl" -S Version)" = "$base+retry1" ] ||
        { echo "$pkg changelog version: $(dpkg-parsechangelog -l "$cl" -S Version), want $base+retry1"; exit 1; }
    [ "$(dpkg-parsechangelog -l "$cl" -S Source)" = "$pkg" ]
    [ "$(dpkg-parsechangelog -l "$cl" -S Distribution)" = UNRELEASED ]
    [ "$(grep -c '^Version: ' "$dsc")" = 1 ] && grep -qx "Version: $base+retry1" "$dsc"

    # debian/patches/series: Debian's own, then the series, in order
    grep -v '^\s*\(#\|$\)' "$patches/series" | sed 's|^|retry/|' > "$tmp/want"
    n=$(wc -l < "$tmp/want")
    [ "$n" -gt 0 ]
    tar -xJOf "$srccache/${pkg}_${base#*:}.debian.tar.xz" debian/patches/series > "$tmp/debian-series"
    cat "$tmp/debian-series" "$tmp/want" | diff -u - "$x/debian/patches/series" ||
        { echo "$pkg: debian/patches/series is not Debian's + the series in order"; exit 1; }
    while read -r p; do
        cmp "$patches/${p#retry/}" "$x/debian/patches/$p"
    done < "$tmp/want"
    [ "$(ls "$x/debian/patches/retry" | wc -l)" = "$n" ]

    # the changelog entry names every patch, in order (one item each)
    dpkg-parsechangelog -l "$cl" -S Changes | sed -n 's/^ *\* \([0-9]\{4\}-[^ ]*\)$/retry\/\1.patch/p' |
        diff -u "$tmp/want" - ||
        { echo "$pkg: the changelog entry does not name the series in order"; exit 1; }
    grep -q "quilt: $n patches pushed" "$tmp/out"
    echo "$pkg: $n patches in debian/patches/series after Debian's, changelog $base+retry1 UNRELEASED"
}

# qemu: lintian's tags that Debian's package has too do not count
run qemu || { cat "$tmp/out"; echo "deb.sh qemu failed"; exit 1; }
check qemu deb patches src
[ "$(cat "$tmp/b/deb/lintian-new.txt")" = "W: qemu source: tag-only-ours-has" ] ||
    { echo "qemu lintian-new.txt:"; cat "$tmp/b/deb/lintian-new.txt"; exit 1; }

# libvirt, with lintian finding an error only the series' package has:
# the target fails, after making the source package
if STUB_ERROR=1 run libvirt; then cat "$tmp/out"; echo "a new lintian error passed"; exit 1; fi
grep -q "lintian finds errors the series' packaging introduced" "$tmp/out" ||
    { cat "$tmp/out"; exit 1; }
printf '%s\n' "E: libvirt source: error-only-ours-has" "W: libvirt source: tag-only-ours-has" |
    diff -u - "$tmp/b/deb-libvirt/lintian-new.txt" || { echo "libvirt lintian-new.txt is wrong"; exit 1; }
echo "a lintian error only the series' package has fails"
check libvirt deb-libvirt patches-libvirt src-libvirt
tar -xJOf "$cache/src-libvirt/libvirt_11.3.0-3+deb13u3.debian.tar.xz" debian/libvirt0.symbols > "$tmp/symbols"
diff "$tmp/symbols" "$tmp/x-libvirt/debian/libvirt0.symbols" > "$tmp/symbols.diff" || true
printf '%s\n' '104a105' '>  *@LIBVIRT_11.3.0 11.3.0-3+deb13u3+retry1' | diff -u - "$tmp/symbols.diff" ||
    { echo "libvirt0.symbols: not Debian's + the LIBVIRT_11.3.0 node after 11.2.0"; exit 1; }
echo "libvirt: libvirt0.symbols gains *@LIBVIRT_11.3.0 11.3.0-3+deb13u3+retry1"

