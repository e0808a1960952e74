#!/bin/bash
# Export a package's tree, commits upstream..HEAD, to its series:
#   qemu (the default): build/qemu to patches/*.patch + patches/series, and
#       patches/0000-cover-letter.patch from patches/cover-letter.txt;
#   libvirt: build/libvirt to patches-libvirt/*.patch + patches-libvirt/series
#       (a cover letter likewise, if patches-libvirt/cover-letter.txt exists).
#
# usage: scripts/export.sh [qemu|libvirt]
#
# Byte-stable: the same commits always give the same files (zero commit ids,
# no version signature, full index, fixed abbreviation, no rename
# detection), so re-exporting an unchanged tree changes nothing in git.
set -euo pipefail
. "$(dirname "$0")/common.sh"

pkg_only "$@"
t=$PKG_TREE
git -C "$t" rev-parse -q --verify upstream >/dev/null 2>&1 ||
    die "$t is not a workspace tree; run 'make $PKG_MAKE_TREE' first"
[ -z "$(git -C "$t" status --porcelain --untracked-files=no)" ] ||
    die "$t has uncommitted changes; commit them into the right patch (git commit --fixup=<sha>; git rebase -i --autosquash upstream) first"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cover=()
[ -f "$PATCHES/cover-letter.txt" ] && cover=(--cover-letter)
git -C "$t" -c core.abbrev=12 -c diff.noprefix=false -c format.signOff=false \
    format-patch -q --zero-commit --no-signature --full-index \
    --no-renames --subject-prefix=PATCH "${cover[@]}" -o "$tmp" upstream..HEAD
(cd "$tmp" && ls *.patch 2>/dev/null | grep -v '^0000-cover-letter.patch$' || true) > "$tmp/series"
if [ ${#cover[@]} != 0 ]; then
    # The cover letter's subject (first line) and text come from
    # cover-letter.txt next to the series; git adds the shortlog and the diffstat.
    # Its date is the last commit's, so that the export stays byte-stable.
    fill_cover_letter "$tmp/0000-cover-letter.patch" "$PATCHES/cover-letter.txt" \
        "$(git -C "$t" log -1 --format=%aD HEAD)"
fi
mkdir -p "$PATCHES"
rm -f "$PATCHES"/*.patch
cp "$tmp"/*.patch "$PATCHES"/ 2>/dev/null || true
cp "$tmp/series" "$PATCHES/series"
tree_ids "$t" > "$t/.git/qemu-retry-synced"
say "exported $(grep -c . "$PATCHES/series" || true) patches to $PATCHES"
