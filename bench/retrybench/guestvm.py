"""The benchmark guest, for what needs real time (the retry timer runs on
QEMU_CLOCK_VIRTUAL, which under -accel qtest only moves with clock_step):
a TCG guest running bench-io (bench/guest/bench-io.c) on raw virtio-blk
disks.

Everything but the workload comes from the e2e harness (tests/e2e/e2e):
the kernel and initramfs (guest.build_guest: Debian's kernel, busybox, the
virtio modules), the failing storage (storage.FuseStorage: loop device over
a failing FUSE file; storage.NbdStorage: qemu-storage-daemon), QEMU through
QEMUMachine and qemu.qmp (vm.Qemu, vm.Monitor, vm.Console) and the run
context (runner.Ctx).  The bench guest is that initramfs with a second
cpio archive appended (the kernel unpacks both, the later files win): its
own /init and /bin/bench-io.

QEMU traces a few events with wall-clock time stamps (-msg timestamp=on,
-D file): request submission and completion (virtio_blk_handle_*,
virtio_blk_req_complete), the retry layer's parking and timeouts
(blk_retry_park, blk_retry_timeout, blk_retry_attempt), and the NBD
client's reconnect back-off (nbd_connect_thread_sleep) and, with the
series' NBD patches, its attempts asked for (nbd_connect_thread_woken) and
background connections (nbd_connect_thread_ready).
"""

import argparse
import contextlib
import hashlib
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(TOP, 'bench', 'guest')
CACHE = os.path.join(TOP, 'build', 'bench-cache')
sys.path.insert(0, os.path.join(TOP, 'tests', 'e2e'))
# pylint: disable=wrong-import-position
from e2e import guest as e2e_guest            # noqa: E402
from e2e import runner, vm                    # noqa: E402
from e2e.base import Fail, wait_until         # noqa: E402
from e2e.storage import FuseStorage, NbdStorage   # noqa: E402

from .binaries import PATCHED, UPSTREAM                      # noqa: E402
from .qtestvirtio import wait_for_binary                     # noqa: E402

TRACE_EVENTS = ('virtio_blk_req_complete', 'virtio_blk_handle_write',
                'virtio_blk_handle_read', 'blk_retry_park', 'blk_retry_timeout',
                'blk_retry_attempt', 'nbd_connect_thread_sleep',
                # the series' NBD patches (no such events in older binaries)
                'nbd_connect_thread_woken', 'nbd_connect_thread_ready')


def build_bench_guest():
    """(kernel, initrd): the e2e guest with bench-io and its /init laid over"""
    kernel, initrd = e2e_guest.build_guest()
    os.makedirs(CACHE, exist_ok=True)
    src = os.path.join(HERE, 'bench-io.c')
    init = os.path.join(HERE, 'init.sh')
    h = hashlib.sha256()
    for p in (src, init, initrd):
        with open(p, 'rb') as f:
            h.update(f.read())
    key = h.hexdigest()[:16]
    out = os.path.join(CACHE, 'bench-initrd-%s.cpio.gz' % key)
    if os.path.exists(out):
        return kernel, out
    with tempfile.TemporaryDirectory(prefix='bench-initrd-') as tmp:
        root = os.path.join(tmp, 'root')
        os.makedirs(os.path.join(root, 'bin'))
        subprocess.run(['gcc', '-O2', '-Wall', '-Wextra', '-static', '-o',
                        os.path.join(root, 'bin', 'bench-io'), src], check=True)
        with open(init, 'rb') as f, open(os.path.join(root, 'init'), 'wb') as g:
            g.write(f.read())
        os.chmod(os.path.join(root, 'init'), 0o755)
        overlay = os.path.join(tmp, 'overlay.cpio.gz')
        subprocess.run('cd %s && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0 '
                       '| gzip -1 > %s' % (root, overlay), shell=True, check=True)
        with open(out + '.tmp', 'wb') as g:
            for p in (initrd, overlay):
                with open(p, 'rb') as f:
                    g.write(f.read())
        os.rename(out + '.tmp', out)
    return kernel, out


_ENV = {}


def env():
    if not _ENV:
        for b in (PATCHED, UPSTREAM):
            wait_for_binary(b)
        kernel, initrd = build_bench_guest()
        e = {'qemu': PATCHED, 'kernel': kernel, 'initrd': initrd,
             'qsd': os.path.join(os.path.dirname(PATCHED), 'storage-daemon',
                                 'qemu-storage-daemon')}
        e['accel'] = vm.pick_accel(argparse.Namespace(accel=os.environ.get(
            'E2E_ACCEL', 'auto')), e)
        e['retry_props'] = {'virtio-blk': vm.retry_props(PATCHED, 'virtio-blk')}
        _ENV.update(e)
    return _ENV


class BenchVM:
    """one guest with `ndisks` virtio-blk disks on storage `kind` ('fuse',
    'nbd' or 'nbd-tcp'), bench-io started with `bio_args`"""

    def __init__(self, name, kind, ndisks, policy, bio_args, binary=None, mem=256,
                 disk_mb=256):
        e = env()
        tempfile.tempdir = None
        os.makedirs('/tmp', exist_ok=True)
        self.base = tempfile.mkdtemp(prefix='bench-%s-' % name)
        tempfile.tempdir = self.base          # runner.Ctx makes its dir in here
        try:
            self.ctx = runner.Ctx(argparse.Namespace(), e, name)
        finally:
            tempfile.tempdir = None
        self.kind = kind
        self.trace = os.path.join(self.ctx.workdir, 'trace.log')
        self.storages = []
        disks = []
        for i in range(ndisks):
            img = os.path.join(self.ctx.workdir, 'disk%d.img' % i)
            with open(img, 'wb') as f:
                f.truncate(disk_mb << 20)
            if kind == 'fuse':
                st = FuseStorage(self.ctx, img, 'native')
                st.mnt = os.path.join(self.ctx.workdir, 'fuse%d' % i)
            else:
                # 'nbd': unix socket; 'nbd-tcp': TCP on 127.0.0.1 (a port
                # free at set-up, kept across restarts of the daemon)
                st = NbdStorage(self.ctx, img, e['qsd'], 0, tcp=kind == 'nbd-tcp')
                st.sock = os.path.join(self.ctx.workdir, 'nbd%d.sock' % i)
            self.storages.append(st)
            disks.append(vm.Disk(st, 'virtio-blk', policy, node='disk%d' % i, index=i))
        self.disks = disks
        trace = []
        for ev in TRACE_EVENTS:
            trace += ['-trace', 'enable=' + ev]
        append = 'quiet console=ttyS0 panic=-1 bench.disks=%d bench.args=%s' % (
            ndisks, ','.join(bio_args))
        self.q = vm.Qemu(self.ctx, binary or PATCHED, 'bench', disks=disks, append=append,
                         mem=mem, extra_args=trace + ['-D', self.trace, '-msg', 'timestamp=on',
                                                      '-name', 'bench,debug-threads=on'])

    def start(self, boot_timeout=120):
        for st in self.storages:
            st.start()
        self.q.start(self.ctx.console)
        self.q.qmp.cmd('cont')
        self.ctx.console.wait(r'BIO-START', time.monotonic() + boot_timeout,
                              what='bench-io start')
        return self

    @property
    def qmp(self):
        return self.q.qmp

    def qom(self, i):
        return self.disks[i].qom_path

    def retry_state(self):
        """[(requests, attempts)] per disk, from query-block"""
        out = []
        for b in self.qmp.cmd('query-block'):
            r = b.get('retry') or {}
            out.append((r.get('requests', 0), r.get('attempts', 0)))
        return out

    def parked(self):
        return sum(r for r, _ in self.retry_state())

    def wait_parked(self, n, timeout=30):
        return wait_until(lambda: self.parked() >= n, time.monotonic() + timeout,
                          '%d parked requests' % n, step=0.02)

    def set_retry(self, **kw):
        for i in range(len(self.disks)):
            a = {'id': self.qom(i)}
            a.update(kw)
            self.qmp.cmd('block-retry-set', a)

    def fail(self, i=0):
        """storage i fails; for loop/FUSE through the control file, whose
        write returns once failing-fuse switched (a signal would be
        asynchronous)"""
        st = self.storages[i]
        if self.kind == 'fuse':
            with open(os.path.join(st.mnt, 'ctl'), 'w') as f:
                f.write('fail')
        else:
            st.fail()

    def restore(self, i=0):
        """storage i is back when this returns; returns t_r (time.time()):
        FUSE: the control write returned; NBD: the first connect() of a
        probe that tries every 1 ms from before the daemon starts (the
        harness's own wait polls every 50 ms: a QEMU client that asks for
        a connection every 100 ms may connect, and its parked requests
        complete, before that wait ends)"""
        st = self.storages[i]
        if self.kind == 'fuse':
            with open(os.path.join(st.mnt, 'ctl'), 'w') as f:
                f.write('ok')
            return time.time()
        found = []
        halt = threading.Event()

        def probe():
            while not halt.is_set():
                if st.accepts():
                    found.append(time.time())
                    return
                time.sleep(0.001)
        th = threading.Thread(target=probe, daemon=True, name='nbd-probe')
        th.start()
        try:
            st.restore()
            th.join(5)
        finally:
            halt.set()
        return found[0] if found else time.time()

    def send(self, text):
        self.ctx.console.send(text)

    def heartbeats(self, since=None):
        """[(host time.monotonic, {t, done, err, inflight, paused})]"""
        out = []
        for t, _, _, m in self.ctx.console.find(r'BIO-HB (.*)', since):
            out.append((t, dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)',
                                                                   m.group(1)))))
        return out

    def wait_idle(self, timeout=60):
        """the guest's requests all completed (after a pause)"""
        t0 = time.monotonic()

        def idle():
            hb = self.heartbeats(t0)
            return hb and hb[-1][1]['inflight'] == 0
        wait_until(idle, time.monotonic() + timeout, 'guest idle', step=0.05)

    def threads_cpu(self):
        """{tid: (name, CPU seconds)} of QEMU's threads (schedstat, ns)"""
        pid = self.q.pid
        out = {}
        for tid in os.listdir('/proc/%d/task' % pid):
            with contextlib.suppress(OSError):
                with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                    name = f.read().strip()
                with open('/proc/%d/task/%s/schedstat' % (pid, tid)) as f:
                    ns = int(f.read().split()[0])
                out[int(tid)] = (name, ns / 1e9)
        return out

    def stop_qemu(self):
        """end QEMU (SIGTERM: a clean exit, so the trace file is complete)"""
        self.q.kill(grace=10.0)

    def close(self):
        self.ctx.close()
        import shutil
        shutil.rmtree(self.base, ignore_errors=True)


def cpu_delta(a, b, pid):
    """per thread class: main (the main loop, pid), vcpu (CPU n/TCG),
    other (RCU, workers ...), total: CPU seconds between snapshots a and b"""
    out = {'main': 0.0, 'vcpu': 0.0, 'other': 0.0}
    for tid, (name, s) in b.items():
        d = s - a.get(tid, (name, 0.0))[1]
        if tid == pid:
            out['main'] += d
        elif '/TCG' in name or '/KVM' in name:
            out['vcpu'] += d
        else:
            out['other'] += d
    out['total'] = sum(out.values())
    return out


_TRACE_RX = re.compile(r'^(\d+)@(\d+)\.(\d+):(\w+) (.*)$')


def parse_trace(path):
    """[(wall time, event, {field: value})]"""
    out = []
    with open(path, errors='replace') as f:
        for line in f:
            m = _TRACE_RX.match(line.strip())
            if not m:
                continue
            t = int(m.group(2)) + int(m.group(3)) / 1e6
            fields = dict(re.findall(r'(\w+) (0x[0-9a-f]+|-?\d+|\(nil\))', m.group(5)))
            out.append((t, m.group(4), fields))
    return out


def request_spans(trace):
    """[(first submission, completion, status)] per guest request, from the
    trace (a resubmission traces virtio_blk_handle_* again: the first one
    counts)"""
    open_ = {}
    spans = []
    for t, ev, f in trace:
        if ev in ('virtio_blk_handle_write', 'virtio_blk_handle_read'):
            open_.setdefault(f.get('req'), t)
        elif ev == 'virtio_blk_req_complete':
            t0 = open_.pop(f.get('req'), None)
            if t0 is not None:
                spans.append((t0, t, int(f.get('status', 0))))
    return spans


def percentile(xs, p):
    if not xs:
        return float('nan')
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    i = int(k)
    j = min(i + 1, len(xs) - 1)
    return xs[i] + (xs[j] - xs[i]) * (k - i)


def stats(xs):
    return {'n': len(xs), 'min': min(xs) if xs else float('nan'),
            'p50': percentile(xs, 50), 'p90': percentile(xs, 90),
            'p99': percentile(xs, 99), 'max': max(xs) if xs else float('nan')}


__all__ = ['BenchVM', 'Fail', 'cpu_delta', 'parse_trace', 'request_spans', 'stats',
           'percentile', 'env']
