"""Storage that really fails, under QEMU's block layer.

  fuse      a loop device (direct I/O) over a file served by failing-fuse,
            which answers EIO while the outage lasts; QEMU opens /dev/loopN
            as host_device (cache.direct=on, aio=native unless told otherwise)
  nbd       qemu-storage-daemon exporting the image over a unix socket;
            outage = SIGKILL of the daemon, recovery = starting it again
  nbd-tcp   the same over TCP on loopback
  file      a plain image file that never fails (a healthy second disk)

The image's format (raw or qcow2) is QEMU's business: the format node sits
on top of the failing protocol node, so qcow2 metadata I/O fails too.
"""

import contextlib
import json
import os
import signal
import socket
import time

from .base import BIN, Fail, Procs, log, run_cmd, wait_until


def make_image(path, size_mb, label='e2e'):
    """an ext4 filesystem in a raw image file"""
    with open(path, 'wb') as f:
        f.truncate(size_mb << 20)
    run_cmd(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0',
             '-L', label, path])


class Storage:
    kind = None
    fmt = 'raw'

    def format_node(self, node, proto):
        return {'driver': self.fmt, 'node-name': node, 'file': proto}

    def blockdev(self, node):
        return self.format_node(node, self.protocol(node))

    @staticmethod
    def reconnect_lag(outage):
        return 0.0


class FuseStorage(Storage):
    """loop device (direct I/O) over a failing-fuse file"""
    kind = 'fuse'

    def __init__(self, ctx, image, aio, fmt='raw', cache_direct=True):
        self.ctx = ctx
        self.image = image
        self.aio = aio
        self.fmt = fmt
        self.cache_direct = cache_direct
        self.mnt = os.path.join(ctx.workdir, 'fuse')
        self.proc = None
        self.loop = None

    def start(self):
        if os.geteuid() != 0:
            raise Fail('fuse storage needs root (losetup, FUSE mount)')
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = self.ctx.procs.start(
            'failing-fuse', [os.path.join(BIN, 'failing-fuse'), self.image, self.mnt,
                             '-f', '-o', 'max_threads=16'])
        self.ctx.cleanups.callback(self.stop)
        disk = os.path.join(self.mnt, 'disk')

        def mounted():
            if self.proc.poll() is not None:
                raise Fail('failing-fuse exited (%d): %s' % (
                    self.proc.returncode, self.ctx.tail('failing-fuse')))
            return os.path.ismount(self.mnt) and os.path.exists(disk)
        wait_until(mounted, time.monotonic() + 10, 'FUSE mount')
        self.loop = run_cmd(['losetup', '--direct-io=on', '-f', '--show', disk]).strip()
        dio = run_cmd(['losetup', '-n', '-O', 'DIO', self.loop]).strip()
        if dio != '1':
            raise Fail('%s: direct I/O is off (errors would be hidden by the page cache)'
                       % self.loop)
        log('loop device %s over %s' % (self.loop, disk))

    def stop(self):
        if self.loop:
            run_cmd(['losetup', '-d', self.loop], check=False)
            self.loop = None
        if self.proc:
            run_cmd(['fusermount3', '-u', '-z', self.mnt], check=False)
            self.ctx.procs.stop(self.proc)
            self.proc = None

    def protocol(self, node):
        p = {'driver': 'host_device', 'filename': self.loop,
             'cache': {'direct': self.cache_direct}, 'aio': self.aio}
        if not self.cache_direct or self.fmt != 'raw':
            # named, so that QEMU's messages about it can be checked
            p['node-name'] = node + '-file'
        return p

    def warm_page_cache(self):
        """Read the whole loop device through the host page cache, which a
        QEMU with cache.direct=off shares: a guest write then lands in pages
        that are up to date, and the first I/O to reach the failing storage
        is the writeback of a flush.  (A write to a page that is not cached
        needs a read first; in an outage that read fails, and the write
        fails as an ordinary, retryable write error.)"""
        with open(self.loop, 'rb', buffering=0) as f:
            while f.read(1 << 20):
                pass

    def fail(self):
        os.kill(self.proc.pid, signal.SIGUSR1)

    def restore(self):
        os.kill(self.proc.pid, signal.SIGUSR2)


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


class NbdStorage(Storage):
    """qemu-storage-daemon NBD export over a unix socket (or TCP on
    loopback); outage = SIGKILL of the daemon"""

    def __init__(self, ctx, image, qsd, reconnect_delay, fmt='raw', tcp=False):
        self.ctx = ctx
        self.image = image
        self.qsd = qsd
        self.fmt = fmt
        self.tcp = tcp
        self.kind = 'nbd-tcp' if tcp else 'nbd'
        self.sock = os.path.join(ctx.workdir, 'nbd.sock')
        self.port = free_tcp_port() if tcp else None
        self.reconnect_delay = reconnect_delay
        self.proc = None
        self.starts = 0

    def server_addr(self):
        if self.tcp:
            return {'type': 'inet', 'host': '127.0.0.1', 'port': str(self.port)}
        return {'type': 'unix', 'path': self.sock}

    def start(self):
        if not os.access(self.qsd, os.X_OK):
            raise Fail('qemu-storage-daemon not found: %s (set QSD)' % self.qsd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)
        self.starts += 1
        if self.tcp:
            addr = 'addr.type=inet,addr.host=127.0.0.1,addr.port=%d' % self.port
        else:
            addr = 'addr.type=unix,addr.path=%s' % self.sock
        self.proc = self.ctx.procs.start('qsd-%d' % self.starts, [
            self.qsd,
            '--blockdev', json.dumps({'driver': 'file', 'filename': self.image,
                                      'node-name': 'f0', 'cache': {'direct': True},
                                      'aio': 'threads'}),
            '--nbd-server', addr,
            '--export', 'type=nbd,id=e0,node-name=f0,name=disk,writable=on'])
        if self.starts == 1:
            self.ctx.cleanups.callback(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise Fail('qemu-storage-daemon exited (%d): %s' % (
                    self.proc.returncode, self.ctx.tail('qsd-%d' % self.starts)))
            return self.accepts()
        wait_until(up, time.monotonic() + 15, 'NBD server socket')

    def accepts(self):
        """whether the server's socket accepts a connection now"""
        if self.tcp:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            where = ('127.0.0.1', self.port)
        else:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            where = self.sock
        try:
            s.connect(where)
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        if self.proc:
            self.ctx.procs.stop(self.proc)
            self.proc = None

    def protocol(self, node):
        return {'driver': 'nbd', 'export': 'disk', 'server': self.server_addr(),
                'reconnect-delay': self.reconnect_delay}

    def fail(self):
        Procs.signal(self.proc, signal.SIGKILL)
        self.proc.wait(5)

    def restore(self):
        self.start()

    def reconnect_lag(self, outage):
        """QEMU's NBD client retries connecting after 1, 2, 4, 8, 16, 16 ... s
        (nbd/client-connection.c): time from restart to its next attempt."""
        t, step = 0.0, 1.0
        while t < outage:
            t += step
            step = min(step * 2, 16)
        return t - outage


class FileStorage(Storage):
    """a plain image file that never fails"""
    kind = 'file'

    def __init__(self, ctx, image, fmt='raw'):
        self.ctx = ctx
        self.image = image
        self.fmt = fmt

    def start(self):
        pass

    def protocol(self, node):
        return {'driver': 'file', 'filename': self.image,
                'cache': {'direct': True}, 'aio': 'native'}


def drive_opts(blockdev):
    """a -blockdev dict as -drive options (dotted keys)"""
    out = []

    def walk(prefix, d):
        for k, v in d.items():
            key = prefix + k
            if isinstance(v, dict):
                walk(key + '.', v)
            elif isinstance(v, bool):
                out.append('%s=%s' % (key, 'on' if v else 'off'))
            else:
                out.append('%s=%s' % (key, v))
    walk('', blockdev)
    return ','.join(out)
