"""The QEMU binaries the benchmarks run, and what a result records of them:
the series' commit (the tree a binary was built from), the workspace's
commit, each binary's sha256, and the date.

  PATCHED   the series ($QEMU, default build/qemu/build/...)
  UPSTREAM  upstream QEMU from the same source ($QEMU_UPSTREAM)
  BEFORE    the series without its NBD patches ($QEMU_BEFORE,
            build/qemu-nbd/build/...; recovery-matrix only)
"""

import hashlib
import os
import subprocess
import time

from harness import paths

TOP = paths.REPO
PATCHED = paths.QEMU
UPSTREAM = paths.QEMU_UPSTREAM
BEFORE = paths.QEMU_BEFORE


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for blk in iter(lambda: f.read(1 << 20), b''):
            h.update(blk)
    return h.hexdigest()


def _git(tree, *args):
    try:
        return subprocess.run(['git', '-C', tree] + list(args), capture_output=True,
                              text=True, check=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def git_head(path):
    """HEAD of the git tree the binary was built from (its build dir's
    parent), or None"""
    return _git(os.path.dirname(os.path.dirname(os.path.realpath(path))), 'rev-parse', 'HEAD')


def describe(path):
    """{path, sha256, tree_head} of one binary, or None if it is missing"""
    if not os.path.isfile(path):
        return None
    return {'path': path, 'sha256': sha256(path), 'tree_head': git_head(path)}


def provenance(binaries=None):
    """what a results file records of the run: the date, the workspace's
    commit (and whether its tree had changes), the series' commit (the
    patched binary's tree) and every binary that exists, by name"""
    binaries = binaries or {'patched': PATCHED, 'upstream': UPSTREAM, 'before': BEFORE}
    dirty = _git(TOP, 'status', '--porcelain', '--untracked-files=no')
    out = {'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
           'workspace_commit': _git(TOP, 'rev-parse', 'HEAD'),
           'workspace_dirty': None if dirty is None else bool(dirty),
           'series_commit': git_head(binaries['patched']) if 'patched' in binaries else None,
           'binaries': {}}
    for name, path in binaries.items():
        d = describe(path)
        if d:
            out['binaries'][name] = d
    return out
