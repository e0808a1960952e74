#!/usr/bin/env python3
"""Fast-path cost of the retry series: virtio-blk requests that succeed.

Patched and unpatched QEMU (built from the same source with the same flags)
run with -accel qtest and a null-co disk.  This script is the guest driver:
it speaks the qtest protocol, sets up a legacy virtio-pci virtio-blk device
and submits batches of 4 KiB reads.  It measures the QEMU process' CPU time
(of its main thread, from /proc/PID/schedstat) per request, alternating the binaries round by
round, and prints each variant's median relative to upstream.

usage: bench/virtio-blk-fastpath.py [--requests N] [--rounds R]
       (QEMU and QEMU_UPSTREAM select the binaries)
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IO = 0xc000                 # I/O BAR of the device
RING = 0x100000             # vring, page aligned
HDRS, DATA, STATUS = 0x200000, 0x300000, 0x500000
BATCH = 32                  # requests in flight at once (3 descriptors each)


class QTest:
    def __init__(self, binary, extra):
        self.dir = tempfile.mkdtemp(prefix='qemu-retry-bench-')
        path = os.path.join(self.dir, 'qtest.sock')
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(30)
        self.proc = subprocess.Popen(
            [binary, '-M', 'pc', '-accel', 'qtest', '-qtest', 'unix:' + path,
             '-display', 'none', '-nodefaults', '-m', '128M',
             '-qtest-log', os.environ.get('BENCH_QTEST_LOG', '/dev/null'),
             '-blockdev', 'null-co,node-name=d0,size=%d' % (64 << 20),
             '-device', 'virtio-blk-pci,drive=d0,addr=04.0,disable-modern=on'
             + extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            self.sock, _ = srv.accept()
        except socket.timeout:
            self.proc.kill()
            raise RuntimeError('QEMU did not start: %s' %
                               self.proc.stderr.read().decode())
        srv.close()
        self.f = self.sock.makefile('rb')

    def cmd(self, line):
        self.sock.sendall(line.encode() + b'\n')
        while True:
            r = self.f.readline().decode().split()
            if not r:
                raise RuntimeError('QEMU closed qtest: %s' %
                                   self.proc.stderr.read().decode())
            if r[0] == 'OK':
                return r[1:]
            if r[0] == 'FAIL':
                raise RuntimeError('qtest %r failed: %r' % (line, r))
            # 'IRQ' notifications: ignore

    def outl(self, a, v): self.cmd('outl 0x%x 0x%x' % (a, v))
    def outw(self, a, v): self.cmd('outw 0x%x 0x%x' % (a, v))
    def outb(self, a, v): self.cmd('outb 0x%x 0x%x' % (a, v))
    def inw(self, a): return int(self.cmd('inw 0x%x' % a)[0], 16)
    def readw(self, a): return int(self.cmd('readw 0x%x' % a)[0], 16)
    def writew(self, a, v): self.cmd('writew 0x%x 0x%x' % (a, v))

    def write(self, a, data):
        self.cmd('write 0x%x 0x%x 0x%s' % (a, len(data), data.hex()))

    def cpu_seconds(self):
        # CPU time of QEMU's main thread, which does all the work here
        # (no iothread), in ns resolution
        with open('/proc/%d/schedstat' % self.proc.pid) as f:
            return int(f.read().split()[0]) / 1e9

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.sock.close()


def setup_device(q):
    cfg = 0x80000000 | (4 << 11)
    q.outl(0xcf8, cfg | 0x10)
    q.outl(0xcfc, IO)                   # BAR0: I/O ports
    q.outl(0xcf8, cfg | 0x04)
    q.outl(0xcfc, 0x5)                  # I/O space + bus master
    q.outb(IO + 18, 0)                  # reset
    q.outb(IO + 18, 1 | 2)              # ACKNOWLEDGE | DRIVER
    q.outl(IO + 4, 0)                   # no features
    q.outw(IO + 14, 0)                  # queue 0
    qsize = q.inw(IO + 12)
    q.outl(IO + 8, RING >> 12)
    q.outb(IO + 18, 1 | 2 | 4)          # DRIVER_OK
    avail = RING + 16 * qsize
    used = (avail + 6 + 2 * qsize + 4095) & ~4095

    desc = bytearray()
    for i in range(BATCH):
        hdr = (0).to_bytes(4, 'little') * 2 + (i * 8).to_bytes(8, 'little')
        q.write(HDRS + 16 * i, hdr)     # VIRTIO_BLK_T_IN, sector i * 8
        d = 3 * i
        desc += (HDRS + 16 * i).to_bytes(8, 'little') + (16).to_bytes(4, 'little') + \
            (1).to_bytes(2, 'little') + (d + 1).to_bytes(2, 'little')
        desc += (DATA + 4096 * i).to_bytes(8, 'little') + (4096).to_bytes(4, 'little') + \
            (1 | 2).to_bytes(2, 'little') + (d + 2).to_bytes(2, 'little')
        desc += (STATUS + i).to_bytes(8, 'little') + (1).to_bytes(4, 'little') + \
            (2).to_bytes(2, 'little') + (0).to_bytes(2, 'little')
    q.write(RING, bytes(desc))
    ring = b''.join(((k % BATCH) * 3).to_bytes(2, 'little') for k in range(qsize))
    q.write(avail + 4, ring)
    return avail, used


def run_requests(q, avail, used, n, idx):
    for _ in range(n // BATCH):
        idx = (idx + BATCH) & 0xffff
        q.writew(avail + 2, idx)
        q.outw(IO + 16, 0)              # kick queue 0
        while q.readw(used + 2) != idx:
            pass
    return idx


# One QEMU instance serves at most this many requests: in qtest mode QEMU
# stops answering the qtest socket after roughly 10,000 of them (upstream
# and patched alike; not investigated further), so longer runs are split.
CHUNK = 6144


def measure(binary, extra, n):
    cpu = wall = 0.0
    done = 0
    while done < n:
        k = min(CHUNK, n - done)
        q = QTest(binary, extra)
        try:
            avail, used = setup_device(q)
            idx = run_requests(q, avail, used, 32 * BATCH, 0)     # warm up
            c0, t0 = q.cpu_seconds(), time.monotonic()
            run_requests(q, avail, used, k, idx)
            cpu += q.cpu_seconds() - c0
            wall += time.monotonic() - t0
        finally:
            q.close()
        done += k
    return cpu / n * 1e6, wall / n * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--requests', type=int, default=200000)
    ap.add_argument('--rounds', type=int, default=5)
    a = ap.parse_args()
    patched = os.environ.get('QEMU') or \
        os.path.join(TOP, 'build/qemu/build/qemu-system-x86_64')
    upstream = os.environ.get('QEMU_UPSTREAM') or \
        os.path.join(TOP, 'build/qemu-upstream/build/qemu-system-x86_64')
    for b in (patched, upstream):
        if not os.access(b, os.X_OK):
            sys.exit('missing %s: run make build build-upstream' % b)
    variants = [
        ('upstream', upstream, ''),
        ('patched, default policy', patched, ''),
        ('patched, werror/rerror=retry', patched,
         ',werror=retry,rerror=retry,retry_interval=1000,retry_timeout=30000'),
    ]
    cpu = {v[0]: [] for v in variants}
    wall = {v[0]: [] for v in variants}
    print('%d x 4 KiB reads from null-co, %d in flight, %d rounds' %
          (a.requests, BATCH, a.rounds))
    for r in range(a.rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for name, binary, extra in order:
            c, w = measure(binary, extra, a.requests)
            cpu[name].append(c)
            wall[name].append(w)
        print('round %d: %s' % (r + 1, ', '.join(
            '%s %.2f us' % (n, cpu[n][-1]) for n, _, _ in variants)))
    base = statistics.median(cpu['upstream'])
    print()
    print('%-30s %14s %14s %10s' % ('QEMU CPU per request', 'median us',
                                     'min..max', 'vs upstream'))
    for name, _, _ in variants:
        m = statistics.median(cpu[name])
        print('%-30s %14.3f %7.3f..%-6.3f %10.3f' % (
            name, m, min(cpu[name]), max(cpu[name]), m / base))


if __name__ == '__main__':
    main()
