"""1. Fast path without errors: instructions per request under callgrind.

QEMU runs under valgrind --tool=callgrind with -accel qtest and a null-co
disk; this process drives it as the guest (qtestvirtio): BATCH requests of
4 KiB in flight, kicked together, polled until all completed.  Each variant
runs twice, with N1 and N2 requests after the same warm-up, and the cost
per request is (I(N2) - I(N1)) / (N2 - N1): start-up, warm-up and exit
cancel out.  Callgrind counts instructions, so the figures are
deterministic (up to the qtest polling, whose command count is reported).

Besides the whole process (where the qtest protocol between this driver
and QEMU is most of the cost) the device's own path is reported: the
inclusive cost of
  submission  the queue's handler, virtio_blk_handle_output or
              virtio_scsi_handle_cmd (pops the requests, builds them,
              submits them to the block layer: blk_aio_preadv/pwritev)
  completion  blk_aio_complete_bh (null-co completes in a bottom half; it
              runs the device's callback: virtio_blk_rw_complete, or
              scsi-disk's DMA completion, the request's completion,
              virtio_notify)
These two trees are disjoint (a bottom half never runs inside the queue
handler here), so their sum is the device path.  The retry series adds its
per-request work exactly there (the cookie reset at submission, the
unlikely() branch at completion).
"""

import os
import re
import shutil
import subprocess
import tempfile

from .binaries import PATCHED, UPSTREAM
from .qtestvirtio import Dev, Machine, device_args, prepare_direct

BATCH = 32
WARMUP = 8 * BATCH
RETRY = ',werror=retry,rerror=retry,retry-interval=1000,retry-timeout=30000'

SUBMIT = {'blk': 'virtio_blk_handle_output', 'scsi': 'virtio_scsi_handle_cmd'}
COMPLETE = 'blk_aio_complete_bh'


def variants():
    """(name, binary, device extra properties)"""
    return [('upstream', UPSTREAM, ''),
            ('patched, default policy', PATCHED, ''),
            ('patched, werror/rerror=retry', PATCHED, RETRY)]


def run_once(binary, kind, op, extra, n, workdir):
    """callgrind totals of one QEMU run of WARMUP + n requests:
    (total Ir, {function: inclusive Ir}, qtest commands sent)"""
    out = os.path.join(workdir, 'callgrind.out')
    wrapper = ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out,
               '--dump-instr=no', '--collect-jumps=no']
    args = ['-blockdev', 'null-co,node-name=d0,size=%d' % (64 << 20)]
    args += device_args(kind, 0, 4, 0, 'd0', extra)
    m = Machine(binary, args, wrapper=wrapper, workdir=workdir)
    try:
        dev = Dev(m, kind, 0, 4, 0)
        q = dev.setup()[0]
        prepare_direct(q, BATCH, op)
        done = 0
        n0 = None
        for target in (WARMUP, WARMUP + n):
            while done < target:
                want = (q.avail_idx + BATCH) & 0xffff
                q.kick(BATCH)
                while q.used_idx() != want:
                    pass
                done += BATCH
            if n0 is None:
                n0 = m.ncmds
        cmds = m.ncmds - n0
    finally:
        m.shutdown(timeout=300)
    return parse_callgrind(out) + (cmds,)


def parse_callgrind(path):
    total = None
    with open(path) as f:
        for line in f:
            if line.startswith('summary:') or line.startswith('totals:'):
                total = int(line.split()[1])
    r = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100', path],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                       universal_newlines=True, check=True)
    incl = {}
    rx = re.compile(r'^\s*([\d,]+)\s+(?:\([\d. %]+\)\s+)?\S*?:(\w+)\s')
    for line in r.stdout.splitlines():
        m = rx.match(line)
        if m:
            # a function inlined from a header is a cost centre of its own:
            # add up every file's part of the function
            incl[m.group(2)] = incl.get(m.group(2), 0) + int(m.group(1).replace(',', ''))
    return total, incl


def measure(kinds=('blk', 'scsi'), ops=('read', 'write'), n1=512, n2=2048, reps=1,
            log=print, names=None):
    """{(kind, op): {variant: {metric: [one value per repetition]}}}: the
    variants alternate within each repetition"""
    results = {}
    work = tempfile.mkdtemp(prefix='bench-callgrind-')
    try:
        for kind in kinds:
            for op in ops:
                res = results[(kind, op)] = {}
                for rep in range(reps):
                    vs = variants() if rep % 2 == 0 else list(reversed(variants()))
                    for name, binary, extra in vs:
                        if names and name not in names:
                            continue
                        a = run_once(binary, kind, op, extra, n1, work)
                        b = run_once(binary, kind, op, extra, n2, work)
                        n = n2 - n1
                        fn = {}
                        for f in (SUBMIT[kind], COMPLETE):
                            fn[f] = (b[1].get(f, 0) - a[1].get(f, 0)) / n
                        one = {
                            'total': (b[0] - a[0]) / n,
                            'submit': fn[SUBMIT[kind]],
                            'complete': fn[COMPLETE],
                            'device': fn[SUBMIT[kind]] + fn[COMPLETE],
                            'qtest_cmds': (b[2] - a[2]) / n,
                        }
                        r = res.setdefault(name, {})
                        for k, v in one.items():
                            r.setdefault(k, []).append(v)
                        log('  fastpath %s %s %-28s %9.1f Ir/request (device path %7.1f: '
                            'submit %.1f, complete %.1f; %.3f qtest commands/request)' % (
                                kind, op, name, one['total'], one['device'],
                                one['submit'], one['complete'], one['qtest_cmds']))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results
