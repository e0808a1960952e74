"""The benchmark guest, for what needs real time (the retry timer runs on
QEMU_CLOCK_VIRTUAL, which under -accel qtest only moves with clock_step):
a TCG guest running bench-io (bench/guest/bench-io.c) on raw virtio-blk
disks.

Everything but the workload comes from the harness (tests/harness): the
kernel and initramfs (workload.build_guest: Debian's kernel, busybox, the
virtio modules), the failing storage (storage.FuseStorage: loop device over
a failing FUSE file, failed and restored through its control file;
storage.NbdStorage: qemu-storage-daemon, killed and started again), QEMU
through QEMUMachine and qemu.qmp (vm.VM, vm.Monitor, console.Console) and
the run context (context.RunContext).  The bench guest is that initramfs with a second
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

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time

from harness import paths, vm, workload
from harness.checks import Fail, wait_until
from harness.context import Env, RunContext
from harness.report import percentile, stats
from harness.storage import FuseStorage, NbdStorage

from .binaries import PATCHED, UPSTREAM
from .qtestvirtio import wait_for_binary

HERE = os.path.join(paths.REPO, 'bench', 'guest')
CACHE = paths.build('bench-cache')

TRACE_EVENTS = ('virtio_blk_req_complete', 'virtio_blk_handle_write',
                'virtio_blk_handle_read', 'blk_retry_park', 'blk_retry_timeout',
                'blk_retry_attempt', 'nbd_connect_thread_sleep',
                # the series' NBD patches (no such events in older binaries)
                'nbd_connect_thread_woken', 'nbd_connect_thread_ready')


def build_bench_guest():
    """(kernel, initrd): the e2e guest with bench-io and its /init laid over"""
    kernel, initrd = workload.build_guest()
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


_ENV = []


def env():
    """the harness's Env of the bench guest (built once)"""
    if not _ENV:
        for b in (PATCHED, UPSTREAM):
            wait_for_binary(b)
        kernel, initrd = build_bench_guest()
        _ENV.append(Env(
            qemu=PATCHED, kernel=kernel, initrd=initrd, qsd=paths.qsd_for(PATCHED),
            accel=vm.pick_accel(os.environ.get('E2E_ACCEL', 'auto'), PATCHED, kernel, initrd),
            retry_props={'virtio-blk': vm.retry_props(PATCHED, 'virtio-blk')}))
    return _ENV[0]


class BenchVM:
    """one guest with `ndisks` virtio-blk disks on storage `kind` ('fuse',
    'nbd' or 'nbd-tcp'), bench-io started with `bio_args`"""

    def __init__(self, name, kind, ndisks, policy, bio_args, binary=None, mem=256,
                 disk_mb=256):
        e = env()
        self.ctx = RunContext(name, e, prefix='bench-')
        self.kind = kind
        self.trace = os.path.join(self.ctx.workdir, 'trace.log')
        self.storages = []
        disks = []
        for i in range(ndisks):
            img = os.path.join(self.ctx.workdir, 'disk%d.img' % i)
            with open(img, 'wb') as f:
                f.truncate(disk_mb << 20)
            if kind == 'fuse':
                st = FuseStorage(self.ctx, img, 'native', name='fuse%d' % i)
            else:
                # 'nbd': unix socket; 'nbd-tcp': TCP on 127.0.0.1 (a port
                # free at set-up, kept across restarts of the daemon)
                st = NbdStorage(self.ctx, img, e.qsd, 0, tcp=kind == 'nbd-tcp',
                                name='nbd%d' % i)
            self.storages.append(st)
            disks.append(vm.Disk(st, 'virtio-blk', policy, node='disk%d' % i, index=i))
        self.disks = disks
        trace = []
        for ev in TRACE_EVENTS:
            trace += ['-trace', 'enable=' + ev]
        append = 'quiet console=ttyS0 panic=-1 bench.disks=%d bench.args=%s' % (
            ndisks, ','.join(bio_args))
        self.q = vm.VM(self.ctx, binary or PATCHED, 'bench', disks=disks, append=append,
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

    def device_path(self, i=0):
        """the host file or device QEMU opens for disk i (loop/FUSE: the
        loop device)"""
        proto = self.storages[i].protocol('disk%d' % i)
        if 'filename' not in proto:
            raise Fail('%s storage: no host file to read' % self.kind)
        return proto['filename']

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
        """n requests parked in all: query-block (QEMU has no event per
        parked request, only one per episode)"""
        return wait_until(lambda: self.parked() >= n, time.monotonic() + timeout,
                          '%d parked requests' % n, step=0.02)

    def set_retry(self, **kw):
        for i in range(len(self.disks)):
            a = {'id': self.qom(i)}
            a.update(kw)
            self.qmp.cmd('block-retry-set', a)

    def fail(self, i=0):
        """storage i fails (harness.storage: FUSE's control file, whose
        write returns once failing-fuse switched; NBD: the daemon killed)"""
        self.storages[i].fail()

    def restore(self, i=0):
        """storage i is back when this returns; returns t_r (time.time()):
        FUSE: the control write returned; NBD: qemu-storage-daemon's
        pidfile was written (after its NBD server was set up, before it
        accepts: the moment a client can connect)"""
        return self.storages[i].restore()

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
        """the guest's requests all completed (after a pause): a heartbeat
        line says so"""
        t0 = time.monotonic()

        def idle():
            hb = self.heartbeats(t0)
            return hb and hb[-1][1]['inflight'] == 0
        self.ctx.console.wait_for(idle, time.monotonic() + timeout, 'idle')

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
        self.q.terminate(grace=10.0)

    def close(self):
        self.ctx.close()
        shutil.rmtree(self.ctx.workdir, ignore_errors=True)


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


__all__ = ['BenchVM', 'Fail', 'cpu_delta', 'parse_trace', 'request_spans', 'stats',
           'percentile', 'env']
