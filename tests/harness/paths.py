"""Where things are: this repository, the cache of built helpers and guest
images, the QEMU binaries (the environment's choice, else build/...), and
the QEMU tree's python/ directory (qemu.machine, qemu.qmp), which
harness/__init__.py puts on sys.path: the one place that does."""

import os
import sys

HARNESS = os.path.dirname(os.path.abspath(__file__))     # tests/harness
TESTS = os.path.dirname(HARNESS)
REPO = os.path.dirname(TESTS)
E2E = os.path.join(TESTS, 'e2e')        # the guest's sources, failing-fuse, mkinitramfs.sh
CACHE = os.environ.get('E2E_CACHE') or os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
    'qemu-retry', 'e2e')
BIN = os.path.join(CACHE, 'bin')


def build(rel):
    """a path under build/ (the fetched trees and their builds)"""
    return os.path.join(REPO, 'build', rel)


# the binaries: the series, upstream QEMU from the same source, the
# series without its NBD patches (bench recovery-matrix), the sanitizer
# build (torture)
QEMU = os.environ.get('QEMU') or build('qemu/build/qemu-system-x86_64')
QEMU_UPSTREAM = os.environ.get('QEMU_UPSTREAM') or build(
    'qemu-upstream/build/qemu-system-x86_64')
QEMU_BEFORE = os.environ.get('QEMU_BEFORE') or build('qemu-nbd/build/qemu-system-x86_64')
QEMU_SANITIZER = os.environ.get('QEMU_SANITIZER') or build(
    'qemu/build-asan/qemu-system-x86_64')


def qsd_for(qemu):
    """qemu-storage-daemon: $QSD, else the one built next to `qemu`"""
    return os.environ.get('QSD') or os.path.join(os.path.dirname(qemu), 'storage-daemon',
                                                 'qemu-storage-daemon')


def qemu_img_for(qemu):
    return os.environ.get('QEMU_IMG') or os.path.join(os.path.dirname(qemu), 'qemu-img')


def qemu_python_dir():
    for d in (os.environ.get('QEMU_PYTHON'), build('qemu/python'),
              build('qemu-upstream/python')):
        if d and os.path.isfile(os.path.join(d, 'qemu', 'machine', 'machine.py')):
            return d
    raise SystemExit('error: no QEMU python/ tree (build/qemu/python: run make tree, '
                     'or set QEMU_PYTHON)')


def use_qemu_python():
    d = qemu_python_dir()
    if d not in sys.path:
        sys.path.insert(0, d)
