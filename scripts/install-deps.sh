#!/bin/bash
# Install what fetching, building and testing the series needs, on Debian 12 or 13.
#
# Idempotent: when everything is already installed it touches nothing and
# needs no network.  On Debian 12 (bookworm) QEMU 10.0's configure needs a
# newer meson and pycotap than the release has; both come from
# bookworm-backports, whose source entry is derived from the machine's own
# configured Debian archive (no host name is written by this script).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# Packages for: building QEMU (+ its 32-bit option ROMs), the workspace
# (dpkg-dev/quilt/git), running qtests and guests (firmware), the
# guest-level tests (kernel modules, busybox, FUSE-backed failing storage),
# and building libvirt's QEMU driver and its tests.
PKGS=(
    build-essential gcc-multilib git ninja-build ccache pkg-config
    python3 python3-venv flex bison
    libglib2.0-dev libpixman-1-dev libaio-dev liburing-dev zlib1g-dev
    libfdt-dev
    dpkg-dev quilt xz-utils ca-certificates
    # make deb: the series as a Debian source package, checked (scripts/deb.sh)
    lintian devscripts libdistro-info-perl
    seabios ipxe-qemu
    busybox-static cpio kmod fuse3 libfuse3-dev
    # QEMU's own suites (scripts/gate.py): test-io-channel-command needs
    # socat.  (Not xorriso: with it, cdrom-test's am53c974 boot test hangs
    # here until its timeout, 30 min with gate.py's multiplier, on upstream
    # too; without it, cdrom-test registers no test.)
    socat
    # the benchmarks (bench/): callgrind and massif, the plots
    valgrind python3-matplotlib
    # the workspace suite lints tests/ and bench/ (scripts/check.sh, .flake8)
    flake8
    # libvirt 11.3 with the QEMU driver only (scripts/libvirt-build.sh)
    libxml2-dev libxml2-utils libgnutls28-dev libjson-c-dev libtirpc-dev
    libnl-3-dev libnl-route-3-dev xsltproc python3-docutils libpciaccess-dev
    libcap-ng-dev libudev-dev libdevmapper-dev libblkid-dev libacl1-dev
    libattr1-dev libselinux1-dev libnuma-dev
)
BACKPORT_PKGS=(meson python3-pycotap)

. /etc/os-release
codename=${VERSION_CODENAME:-}

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "error: installing packages needs root (run as root, or install: $*)" >&2
        exit 1
    fi
}

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' ||
        missing+=("$p")
done

meson_ok() {
    command -v meson >/dev/null &&
        dpkg --compare-versions "$(meson --version 2>/dev/null || echo 0)" ge 1.5
}
pycotap_ok() {
    /usr/bin/python3 -c "import pycotap" 2>/dev/null
}
bp_missing=()
meson_ok || bp_missing+=(meson)
pycotap_ok || bp_missing+=(python3-pycotap)

if [ ${#missing[@]} = 0 ] && [ ${#bp_missing[@]} = 0 ]; then
    echo "install-deps: all dependencies present"
    exit 0
fi

need_root "${missing[@]}" "${bp_missing[@]}"
export DEBIAN_FRONTEND=noninteractive

suite_for_bp=""
if [ ${#bp_missing[@]} != 0 ] && [ "$codename" = bookworm ]; then
    # Debian 12: meson >= 1.5 and pycotap are only in bookworm-backports.
    read -r _ uri signed < <(python3 "$here/debian-sources.py" | grep '^main ')
    list=/etc/apt/sources.list.d/qemu-retry-backports.sources
    {
        echo "# Added by qemu-retry scripts/install-deps.sh, derived from this machine's sources."
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: bookworm-backports"
        echo "Components: main"
        [ "$signed" != - ] && echo "Signed-By: $signed"
    } > "$list.new"
    mv "$list.new" "$list"
    suite_for_bp=bookworm-backports
fi

if ! apt-get update -q; then
    echo "error: apt-get update failed: is the Debian archive reachable?" >&2
    exit 1
fi
if [ ${#missing[@]} != 0 ]; then
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ ${#bp_missing[@]} != 0 ]; then
    if [ -n "$suite_for_bp" ]; then
        apt-get install -y -q --no-install-recommends -t "$suite_for_bp" "${BACKPORT_PKGS[@]}"
    else
        apt-get install -y -q --no-install-recommends "${BACKPORT_PKGS[@]}"
    fi
fi
meson_ok || { echo "error: meson >= 1.5 is still missing" >&2; exit 1; }
pycotap_ok || { echo "error: python3 module pycotap is still missing" >&2; exit 1; }
echo "install-deps: done"
