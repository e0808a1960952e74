"""A guest driver over the qtest protocol: QEMU runs with -accel qtest
(QEMUQtestMachine from the QEMU tree's python/, optionally under a wrapper
such as valgrind), and this module plays the guest's virtio driver for
legacy (virtio 0.9) virtio-pci devices: virtio-blk-pci and
virtio-scsi-pci + scsi-hd.

Guest physical memory is laid out by hand (no allocator): each device gets
a 1 MiB window for its rings and request headers, and all data buffers
share one 4 KiB page (the contents do not matter).
"""

import os
import struct
import time

import harness  # noqa: F401  (the harness puts the QEMU tree's python/ on sys.path)
from qemu.machine.qtest import QEMUQtestMachine


IO_BASE = 0xc000
IO_SIZE = 0x100                # legacy virtio-pci BAR0 (virtio-blk: 128 bytes; aligned)
DEV_MEM = 0x1000000            # device windows start at 16 MiB
DEV_WIN = 0x100000             # 1 MiB per device
DATA = 0x800000                # the shared data page
STATUS_BYTES = 0x900000        # not used by scsi (status in the response)

VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT = 0, 1
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4
VIRTIO_BLK_F_MQ = 1 << 12
VIRTIO_RING_F_INDIRECT_DESC = 1 << 28
SCSI_REQ = 51                  # virtio_scsi_cmd_req with a 32-byte CDB
SCSI_RESP = 108                # virtio_scsi_cmd_resp with 96 bytes of sense


def desc(addr, length, flags, nxt):
    return struct.pack('<QIHH', addr, length, flags, nxt)


def wait_for_binary(path, timeout=300):
    """the lead may be rebuilding: wait for the binary to come back (a
    file's appearance has no event here: looked for every 5 s)"""
    dl = time.monotonic() + timeout
    while not os.access(path, os.X_OK):
        if time.monotonic() > dl:
            raise SystemExit('missing %s: run make build build-upstream' % path)
        time.sleep(5)


class Machine:
    """QEMU under qtest with `devices` (list of Dev) on PCI bus 0"""

    def __init__(self, binary, args, wrapper=(), workdir='/tmp', log=None):
        wait_for_binary(binary)
        self.vm = QEMUQtestMachine(binary, ['-M', 'pc', '-display', 'none', '-nodefaults',
                                            '-m', '256M'] + list(args),
                                   wrapper=list(wrapper), base_temp_dir=workdir)
        self.vm.launch()
        self.ncmds = 0

    # qtest protocol
    def qt(self, line):
        self.ncmds += 1
        r = self.vm.qtest(line)
        w = r.split()
        if not w:
            raise RuntimeError('QEMU closed the qtest socket: %s' % self.vm.get_log())
        if w[0] != 'OK':
            raise RuntimeError('qtest %r failed: %r' % (line, r))
        return w[1:]

    def outl(self, a, v): self.qt('outl 0x%x 0x%x' % (a, v))
    def outw(self, a, v): self.qt('outw 0x%x 0x%x' % (a, v))
    def outb(self, a, v): self.qt('outb 0x%x 0x%x' % (a, v))
    def inl(self, a): return int(self.qt('inl 0x%x' % a)[0], 16)
    def inw(self, a): return int(self.qt('inw 0x%x' % a)[0], 16)
    def readw(self, a): return int(self.qt('readw 0x%x' % a)[0], 16)
    def writew(self, a, v): self.qt('writew 0x%x 0x%x' % (a, v))

    def write(self, a, data):
        # in chunks: one qtest line per 64 KiB
        for off in range(0, len(data), 65536):
            chunk = data[off:off + 65536]
            self.qt('write 0x%x 0x%x 0x%s' % (a + off, len(chunk), chunk.hex()))

    def clock_step(self, ns):
        return int(self.qt('clock_step %d' % ns)[0])

    # QMP (the machine's own monitor)
    def qmp(self, cmd, **args):
        return self.vm.cmd(cmd, **args)

    def drop_events(self):
        """forget the QMP events received so far"""
        self.vm.get_qmp_events()

    def wait_event(self, name, timeout=120):
        """the next event `name` since drop_events (QEMUMachine.event_wait)"""
        return self.vm.event_wait(name, timeout=timeout)

    @property
    def pid(self):
        return self.vm.get_pid()

    def main_thread_cpu(self):
        """CPU seconds of QEMU's main thread (all the work under qtest:
        no iothread, null-co/blkdebug complete in the main loop)"""
        with open('/proc/%d/schedstat' % self.pid) as f:
            return int(f.read().split()[0]) / 1e9

    def memory_kb(self):
        """(VmRSS, [heap] Rss) in KiB"""
        rss = heap = 0
        with open('/proc/%d/status' % self.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    rss = int(line.split()[1])
        with open('/proc/%d/smaps' % self.pid) as f:
            in_heap = False
            for line in f:
                if '-' in line.split()[0] and len(line.split()) >= 5:
                    in_heap = line.rstrip().endswith('[heap]')
                elif in_heap and line.startswith('Rss:'):
                    heap += int(line.split()[1])
        return rss, heap

    def shutdown(self, timeout=120):
        self.vm.shutdown(timeout=timeout)


class Dev:
    """one legacy virtio-pci device at bus 0, slot:function; kind 'blk' or
    'scsi' (virtio-scsi-pci with one scsi-hd, LUN 0)"""

    def __init__(self, m, kind, index, slot, func):
        self.m = m
        self.kind = kind
        self.index = index
        self.slot, self.func = slot, func
        self.io = IO_BASE + IO_SIZE * index
        self.win = DEV_MEM + DEV_WIN * index
        self.queues = {}              # queue index -> Queue

    def setup(self, nqueues=1, indirect=False):
        m = self.m
        cfg = 0x80000000 | (self.slot << 11) | (self.func << 8)
        m.outl(0xcf8, cfg | 0x10)
        m.outl(0xcfc, self.io)                   # BAR0: I/O ports
        m.outl(0xcf8, cfg | 0x04)
        m.outl(0xcfc, 0x5)                       # I/O space + bus master
        m.outb(self.io + 18, 0)                  # reset
        m.outb(self.io + 18, 1 | 2)              # ACKNOWLEDGE | DRIVER
        host = m.inl(self.io + 0)
        want = 0
        if indirect:
            want |= VIRTIO_RING_F_INDIRECT_DESC
        if self.kind == 'blk' and nqueues > 1:
            want |= VIRTIO_BLK_F_MQ
        if host & want != want:
            raise RuntimeError('device lacks features %#x (has %#x)' % (want, host))
        m.outl(self.io + 4, want)
        first = 2 if self.kind == 'scsi' else 0  # scsi: control, event, requests...
        base = self.win
        for qi in range(first, first + nqueues):
            m.outw(self.io + 14, qi)
            qsize = m.inw(self.io + 12)
            q = Queue(self, qi, qsize, base)
            m.outl(self.io + 8, base >> 12)
            self.queues[qi] = q
            base += (q.size_bytes + 0xfff) & ~0xfff
        self.hdr_base = base                     # request headers / tables follow
        m.outb(self.io + 18, 1 | 2 | 4)          # DRIVER_OK
        return list(self.queues.values())


class Queue:
    def __init__(self, dev, index, qsize, base):
        self.dev = dev
        self.index = index
        self.qsize = qsize
        self.desc = base
        self.avail = base + 16 * qsize
        self.used = (self.avail + 6 + 2 * qsize + 0xfff) & ~0xfff
        self.size_bytes = self.used - base + 6 + 8 * qsize
        self.avail_idx = 0

    def used_idx(self):
        return self.dev.m.readw(self.used + 2)

    def kick(self, n):
        """make n more ring entries available and notify"""
        self.avail_idx = (self.avail_idx + n) & 0xffff
        self.dev.m.writew(self.avail + 2, self.avail_idx)
        self.dev.m.outw(self.dev.io + 16, self.index)


def request_chain(dev, slot, hdr_addr, op, sector, blocks=8):
    """descriptors (as (addr, len, flags) without chaining) and the header
    bytes to write for one 4 KiB request (blocks of 512 bytes)"""
    length = blocks * 512
    if dev.kind == 'blk':
        hdr = struct.pack('<IIQ', VIRTIO_BLK_T_OUT if op == 'write' else VIRTIO_BLK_T_IN,
                          0, sector)
        status = STATUS_BYTES + (dev.index << 12) + slot
        data = (DATA, length, 0 if op == 'write' else F_WRITE)
        return [(hdr_addr, 16, 0), data, (status, 1, F_WRITE)], [(hdr_addr, hdr)]
    # virtio-scsi: READ(10) / WRITE(10) to target 0, LUN 0
    lun = bytes([1, 0, 0x40, 0, 0, 0, 0, 0])
    cdb = struct.pack('>BBIBHB', 0x2a if op == 'write' else 0x28, 0, sector, 0, blocks, 0)
    req = lun + struct.pack('<QBBB', slot + 1, 0, 0, 0) + cdb.ljust(32, b'\0')
    assert len(req) == SCSI_REQ
    resp_addr = hdr_addr + 64
    chain = [(hdr_addr, SCSI_REQ, 0)]
    if op == 'write':
        chain += [(DATA, length, 0), (resp_addr, SCSI_RESP, F_WRITE)]
    else:
        chain += [(resp_addr, SCSI_RESP, F_WRITE), (DATA, length, F_WRITE)]
    return chain, [(hdr_addr, req)]


def prepare_direct(q, n, op):
    """n requests, 3 descriptors each, at ring heads 0, 3, 6 ...; the avail
    ring repeats them so that kick(n) can be called again and again once
    the previous n completed"""
    dev = q.dev
    stride = 256                               # header area per request
    descs = bytearray()
    writes = []
    for i in range(n):
        chain, hdrs = request_chain(dev, i, dev.hdr_base + stride * i, op, i * 8)
        writes += hdrs
        for j, (a, ln, fl) in enumerate(chain):
            last = j == len(chain) - 1
            descs += desc(a, ln, fl | (0 if last else F_NEXT), 0 if last else 3 * i + j + 1)
    assert 3 * n <= q.qsize
    dev.m.write(q.desc, bytes(descs))
    for a, b in writes:
        dev.m.write(a, b)
    ring = b''.join(struct.pack('<H', (k % n) * 3) for k in range(q.qsize))
    dev.m.write(q.avail + 4, ring)


def prepare_indirect(q, n, op, table_base):
    """n requests, one indirect descriptor each (ring head i -> table i);
    returns the end of the tables and headers in guest memory"""
    dev = q.dev
    assert n <= q.qsize
    descs = bytearray()
    blob = bytearray()          # tables and headers: 256 bytes per request
    for i in range(n):
        slot_addr = table_base + 256 * i
        # sectors 16 apart: no two requests are adjacent, so virtio-blk never
        # merges them (each parked request is resubmitted on its own)
        chain, hdrs = request_chain(dev, i, slot_addr + 64, op, (i * 16) % (1 << 20))
        tbl = bytearray()
        for j, (a, ln, fl) in enumerate(chain):
            last = j == len(chain) - 1
            tbl += desc(a, ln, fl | (0 if last else F_NEXT), 0 if last else j + 1)
        rec = bytearray(256)
        rec[0:len(tbl)] = tbl
        for a, b in hdrs:
            off = a - slot_addr
            rec[off:off + len(b)] = b
        blob += rec
        descs += desc(slot_addr, len(tbl), F_INDIRECT, 0)
    dev.m.write(q.desc, bytes(descs))
    dev.m.write(table_base, bytes(blob))
    ring = b''.join(struct.pack('<H', k % q.qsize) for k in range(q.qsize))
    dev.m.write(q.avail + 4, ring)
    return table_base + 256 * n


def device_args(kind, index, slot, func, drive, extra='', multifunction=False):
    """-device arguments for device `index` on drive `drive`"""
    addr = 'addr=%02x.%x' % (slot, func)
    mf = ',multifunction=on' if multifunction and func == 0 else ''
    if kind == 'blk':
        return ['-device', 'virtio-blk-pci,id=vd%d,drive=%s,%s%s,disable-modern=on,'
                'vectors=0%s' % (index, drive, addr, mf, extra)]
    return ['-device', 'virtio-scsi-pci,id=hba%d,%s%s,disable-modern=on,vectors=0'
            % (index, addr, mf),
            '-device', 'scsi-hd,id=sd%d,bus=hba%d.0,drive=%s,scsi-id=0,lun=0%s'
            % (index, index, drive, extra)]
