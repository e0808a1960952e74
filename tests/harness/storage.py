"""Storage that really fails, under QEMU's block layer: one mechanism for
every user (e2e, libvirt e2e, torture, bench).

  fuse      a loop device (direct I/O) over a file served by failing-fuse;
            outage = "fail" written to its control file, recovery = "ok"
            (each write returns once failing-fuse switched); QEMU opens
            /dev/loopN as host_device (cache.direct=on, aio=native unless
            told otherwise)
  nbd       qemu-storage-daemon exporting the image over a unix socket;
            outage = SIGKILL of the daemon, recovery = starting it again
  nbd-tcp   the same over TCP on loopback
  file      a plain image file that never fails (a healthy second disk)

Readiness is an event, not a probe: failing-fuse writes "ready" on a pipe
once its mount is served; qemu-storage-daemon --daemonize exits its parent
once its export listens, and its --pidfile (written then) gives the pid
and, by its mtime, the moment the storage was back.

The image's format (raw or qcow2) is QEMU's business: the format node sits
on top of the failing protocol node, so qcow2 metadata I/O fails too.
"""

import json
import logging
import os
import select
import signal
import socket
import time

from .checks import Fail
from .paths import BIN
from .process import run_cmd

LOG = logging.getLogger('harness')


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
    """loop device (direct I/O) over a failing-fuse file; `ctx` is a
    process.Workdir (or anything with its workdir, procs, cleanups)"""
    kind = 'fuse'

    def __init__(self, ctx, image, aio='native', fmt='raw', cache_direct=True, name='fuse'):
        self.ctx = ctx
        self.image = image
        self.aio = aio
        self.fmt = fmt
        self.cache_direct = cache_direct
        self.name = name
        self.mnt = os.path.join(ctx.workdir, name)
        self.proc = None
        self.loop = None

    def start(self, timeout=10):
        if os.geteuid() != 0:
            raise Fail('fuse storage needs root (losetup, FUSE mount)')
        os.makedirs(self.mnt, exist_ok=True)
        rd, wr = os.pipe()
        try:
            self.proc = self.ctx.procs.start(
                'failing-' + self.name,
                [os.path.join(BIN, 'failing-fuse'), self.image, self.mnt,
                 '-f', '-o', 'max_threads=16'],
                pass_fds=(wr,), env=dict(os.environ, FAILING_FUSE_READY_FD=str(wr)))
            self.ctx.cleanups.callback(self.stop)
            os.close(wr)
            wr = None
            # "ready" once mounted; end of file if it exited first
            ready = select.select([rd], [], [], timeout)[0] and os.read(rd, 16)
        finally:
            os.close(rd)
            if wr is not None:
                os.close(wr)
        if not ready:
            raise Fail('failing-fuse %s: %s' % (
                'exited' if self.proc.poll() is not None else 'not mounted within %d s'
                % timeout, self.ctx.tail('failing-' + self.name)))
        disk = os.path.join(self.mnt, 'disk')
        self.loop = run_cmd(['losetup', '--direct-io=on', '-f', '--show', disk]).strip()
        dio = run_cmd(['losetup', '-n', '-O', 'DIO', self.loop]).strip()
        if dio != '1':
            raise Fail('%s: direct I/O is off (errors would be hidden by the page cache)'
                       % self.loop)
        LOG.debug('loop device %s over %s', self.loop, disk)

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

    def _ctl(self, what):
        """failing-fuse's control file: the write returns once it switched"""
        if self.proc is None:
            raise Fail('failing-fuse is not running')
        with open(os.path.join(self.mnt, 'ctl'), 'w') as f:
            f.write(what)

    def fail(self):
        self._ctl('fail')

    def restore(self):
        """storage back; returns when it was (time.time())"""
        self._ctl('ok')
        return time.time()


def free_tcp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]
    finally:
        s.close()


class NbdStorage(Storage):
    """qemu-storage-daemon NBD export over a unix socket (or TCP on
    loopback, a port free at set-up and kept across restarts); outage =
    SIGKILL of the daemon"""

    def __init__(self, ctx, image, qsd, reconnect_delay, fmt='raw', tcp=False, name='nbd'):
        self.ctx = ctx
        self.image = image
        self.qsd = qsd
        self.fmt = fmt
        self.tcp = tcp
        self.name = name
        self.kind = 'nbd-tcp' if tcp else 'nbd'
        self.sock = os.path.join(ctx.workdir, name + '.sock')
        self.pidfile = os.path.join(ctx.workdir, name + '-qsd.pid')
        self.port = free_tcp_port() if tcp else None
        self.reconnect_delay = reconnect_delay
        self.daemon = None
        self.starts = 0
        self.t_ready = None

    def server_addr(self):
        if self.tcp:
            return {'type': 'inet', 'host': '127.0.0.1', 'port': str(self.port)}
        return {'type': 'unix', 'path': self.sock}

    def start(self):
        """returns once the export listens (--daemonize: the parent exits
        then); t_ready: when it began to (the pidfile's mtime, written after
        the NBD server is set up and before it accepts, time.time())"""
        if not os.access(self.qsd, os.X_OK):
            raise Fail('qemu-storage-daemon not found: %s (set QSD)' % self.qsd)
        for p in (self.sock, self.pidfile):
            if os.path.exists(p):
                os.unlink(p)
        self.starts += 1
        if self.tcp:
            addr = 'addr.type=inet,addr.host=127.0.0.1,addr.port=%d' % self.port
        else:
            addr = 'addr.type=unix,addr.path=%s' % self.sock
        self.daemon = self.ctx.procs.start_daemon('qsd-%s-%d' % (self.name, self.starts), [
            self.qsd,
            '--blockdev', json.dumps({'driver': 'file', 'filename': self.image,
                                      'node-name': 'f0', 'cache': {'direct': True},
                                      'aio': 'threads'}),
            '--nbd-server', addr,
            '--export', 'type=nbd,id=e0,node-name=f0,name=disk,writable=on',
            '--daemonize', '--pidfile', self.pidfile], self.pidfile)
        self.t_ready = os.stat(self.pidfile).st_mtime_ns / 1e9
        if self.starts == 1:
            self.ctx.cleanups.callback(self.stop)

    def stop(self):
        if self.daemon:
            self.ctx.procs.stop(self.daemon)
            self.daemon = None

    def protocol(self, node):
        return {'driver': 'nbd', 'export': 'disk', 'server': self.server_addr(),
                'reconnect-delay': self.reconnect_delay}

    def fail(self):
        self.daemon.signal(signal.SIGKILL)
        if not self.daemon.wait(5):
            raise Fail('qemu-storage-daemon %d survived SIGKILL' % self.daemon.pid)
        self.stop()

    def restore(self):
        """storage back; returns when it was (time.time())"""
        self.start()
        return self.t_ready

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
