#!/usr/bin/env python3
"""Guest-level end-to-end tests for werror/rerror=retry (python3 stdlib only).

A small Linux guest (Debian 12 kernel + busybox initramfs, see
mkinitramfs.sh) writes files with fsync on an ext4 disk while the host makes
the storage fail for a while:

  fuse  a loop device (direct I/O) over a file served by failing-fuse, which
        answers EIO while the outage lasts; QEMU opens /dev/loopN with
        cache=none,aio=native (--aio to change);
  nbd   qemu-storage-daemon exporting the image over a unix socket; the
        outage is SIGKILL of the daemon, recovery is restarting it.

Scenarios (--scenario, comma separated; default: the suite below):
  short-outage     retry policy, outage < retry_timeout: guest only stalls
  long-outage      retry policy, outage > retry_timeout: guest gets an error
  upstream-default default werror/rerror: guest sees I/O errors ("before")
  upstream-stop    werror=stop,rerror=stop: VM pauses, harness sends cont
  migrate          migrate during the outage (bandwidth held back), restore
                   storage, the migration completes, guest ends on the dest
  migrate-in-outage a migration completing during the outage fails cleanly,
                   the guest goes on on the source; a second one completes
  rerror-report    rerror=report,werror=retry: reads fail fast, writes hang

Binaries: $QEMU (the patched build, default build/qemu/build/...),
$QEMU_UPSTREAM (unpatched; default build/qemu-upstream/build/...; when it is
missing the upstream scenarios use $QEMU with default policies), $QSD
(qemu-storage-daemon, default next to $QEMU).  Scenarios that need retry
support are reported as SKIP when $QEMU lacks it (--require-retry: FAIL).

Output: one "PASS|FAIL|SKIP <scenario>/<device>/<storage> details" line per
run, then "N passed, N failed, N skipped"; exit status 1 on any failure.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get('E2E_CACHE') or os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
    'qemu-retry', 'e2e')
BIN = os.path.join(CACHE, 'bin')

RETRY_SCENARIOS = {'short-outage', 'long-outage', 'migrate', 'migrate-in-outage',
                   'rerror-report'}
ALL_SCENARIOS = ['upstream-default', 'upstream-stop', 'short-outage',
                 'long-outage', 'migrate', 'migrate-in-outage', 'rerror-report']
DEVICES = ['virtio-blk', 'scsi-hd']
STORAGES = ['fuse', 'nbd']
ALL_COMBOS = [(d, s) for d in DEVICES for s in STORAGES]
# default suite (--check, what make check runs): every scenario on every
# device/storage combination, 28 runs, about 9 min.  --quick, for work on
# the harness (15 runs, about 4.5 min): short-outage on every combination,
# the other scenarios on two crossed combinations (each device and each
# storage kind once), migrate-in-outage on one.
CROSSED = [('virtio-blk', 'fuse'), ('scsi-hd', 'nbd')]
CROSSED2 = [('virtio-blk', 'nbd'), ('scsi-hd', 'fuse')]
DEFAULT_SUITE = [(n, d, s) for n in ALL_SCENARIOS for d, s in ALL_COMBOS]
QUICK_SUITE = (
    [('upstream-default', d, s) for d, s in CROSSED2] +
    [('upstream-stop', d, s) for d, s in CROSSED] +
    [('short-outage', d, s) for d, s in ALL_COMBOS] +
    [('long-outage', d, s) for d, s in CROSSED] +
    [('rerror-report', d, s) for d, s in CROSSED] +
    [('migrate', d, s) for d, s in CROSSED2] +
    [('migrate-in-outage', 'virtio-blk', 'fuse')])

VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write('  [%s] %s\n' % (time.strftime('%H:%M:%S'), msg))
        sys.stderr.flush()


class Fail(Exception):
    pass


class Skip(Exception):
    pass


def kv(text):
    """'a=1 b=x' -> {'a': 1, 'b': 'x'} (ints converted)"""
    out = {}
    for m in re.finditer(r'(\w+)=(\S+)', text):
        v = m.group(2)
        try:
            v = int(v)
        except ValueError:
            pass
        out[m.group(1)] = v
    return out


def wait_until(pred, deadline, what, step=0.05):
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail('timeout waiting for %s' % what)
        time.sleep(step)


# --------------------------------------------------------------------------
# processes

class Procs:
    """Every process the harness starts, each in its own process group."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.items = []

    def start(self, name, argv, **kw):
        logf = open(os.path.join(self.workdir, name + '.log'), 'ab')
        log('start %s: %s' % (name, ' '.join(argv)))
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             **kw)
        logf.close()
        p.name = name
        self.items.append(p)
        return p

    @staticmethod
    def signal(p, sig):
        if p.returncode is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, grace=3.0):
        # once the leader has been reaped its pid (= group id) may be
        # reused: never signal a group whose leader is gone
        if p.poll() is not None:
            return
        self.signal(p, signal.SIGTERM)
        try:
            p.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
        self.signal(p, signal.SIGKILL)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self):
        for p in reversed(self.items):
            self.stop(p, grace=1.0)


def run_cmd(argv, timeout=30, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, universal_newlines=True)
    if check and r.returncode != 0:
        raise Fail('%s failed (%d): %s' % (' '.join(argv), r.returncode,
                                          r.stdout.strip()[-300:]))
    return r.stdout


# --------------------------------------------------------------------------
# timeline, console, QMP

class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()
        self.marks = []          # (t, name, text)
        self.lock = threading.Lock()

    def mark(self, name, text=''):
        t = time.monotonic()
        with self.lock:
            self.marks.append((t, name, text))
        log('mark %s %s' % (name, text))
        return t

    def get(self, name, nth=0):
        found = [m for m in self.marks if m[1] == name]
        return found[nth][0] if len(found) > nth else None


class Console:
    """Serial console(s) of the guest: lines with host arrival times.

    The source and (after migration) destination QEMU both feed this
    object, so one list holds the whole guest run."""

    def __init__(self, logpath):
        self.lines = []            # (t, tag, text)
        self.cond = threading.Condition()
        self.socks = []
        self.sock_of = {}
        self.out = None
        self.logf = open(logpath, 'a')

    def attach(self, path, tag, deadline, current=True):
        """read the serial socket at path; current: E2E-STOP goes there"""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wait_until(lambda: self._try_connect(s, path), deadline,
                   'serial socket %s' % path)
        self.socks.append(s)
        self.sock_of[tag] = s
        if current:
            self.out = s
        th = threading.Thread(target=self._reader, args=(s, tag), daemon=True)
        th.start()

    @staticmethod
    def _try_connect(s, path):
        try:
            s.connect(path)
            return True
        except OSError:
            return False

    def _reader(self, s, tag):
        buf = b''
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                d = b''
            if not d:
                break
            buf += d
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                self._add(tag, line)
        if buf:
            self._add(tag, buf)

    def _add(self, tag, raw):
        text = raw.decode('utf-8', 'replace').replace('\r', '')
        t = time.monotonic()
        with self.cond:
            self.lines.append((t, tag, text))
            self.cond.notify_all()
        self.logf.write('%.3f %s %s\n' % (t, tag, text))
        self.logf.flush()
        if VERBOSE and 'E2E-PROGRESS' not in text:
            log('%s| %s' % (tag, text))

    def use(self, tag):
        self.out = self.sock_of[tag]

    def send(self, text):
        if self.out is None:
            raise Fail('no console connected')
        self.out.sendall(text.encode())

    def wait(self, regex, deadline, start=0, what=None):
        """First line at index >= start matching regex: (index, t, match)."""
        rx = re.compile(regex)
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][2])
                    if m:
                        return i, self.lines[i][0], m
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail('timeout waiting for guest %s' % (what or regex))
                self.cond.wait(min(left, 0.5))

    def find(self, regex, since=None):
        rx = re.compile(regex)
        with self.cond:
            lines = list(self.lines)
        return [(t, tag, text, m) for t, tag, text in lines
                for m in [rx.search(text)] if m and (since is None or t >= since)]

    def count(self):
        with self.cond:
            return len(self.lines)

    def close(self):
        for s in self.socks:
            with contextlib.suppress(OSError):
                s.close()
        self.logf.close()


class QMP:
    def __init__(self, path, deadline, tag):
        self.tag = tag
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        wait_until(lambda: Console._try_connect(self.sock, path), deadline,
                   'QMP socket %s' % path)
        self.rfile = self.sock.makefile('rb')
        self.cond = threading.Condition()
        self.events = []          # (t, event dict)
        self.replies = {}
        self.closed = False
        self.next_id = 0
        self.send_lock = threading.Lock()
        greeting = self.rfile.readline()
        if not greeting or b'QMP' not in greeting:
            raise Fail('%s: bad QMP greeting %r' % (tag, greeting[:100]))
        threading.Thread(target=self._reader, daemon=True).start()
        self.cmd('qmp_capabilities')

    def _reader(self):
        while True:
            try:
                line = self.rfile.readline()
            except OSError:
                line = b''
            if not line:
                break
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self.cond:
                if 'event' in msg:
                    self.events.append((time.monotonic(), msg))
                    log('%s event %s %s' % (self.tag, msg['event'],
                                            json.dumps(msg.get('data', {}))[:200]))
                elif 'id' in msg:
                    self.replies[msg['id']] = msg
                self.cond.notify_all()
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def cmd(self, name, args=None, timeout=10.0, check=True):
        with self.send_lock:
            self.next_id += 1
            i = self.next_id
            req = {'execute': name, 'id': i}
            if args:
                req['arguments'] = args
            try:
                self.sock.sendall(json.dumps(req).encode() + b'\n')
            except OSError as e:
                raise Fail('%s: QMP %s: %s' % (self.tag, name, e))
        deadline = time.monotonic() + timeout
        with self.cond:
            while i not in self.replies:
                left = deadline - time.monotonic()
                if self.closed:
                    raise Fail('%s: QMP closed during %s' % (self.tag, name))
                if left <= 0:
                    raise Fail('%s: QMP %s: no answer in %.0f s' % (self.tag, name, timeout))
                self.cond.wait(left)
            r = self.replies.pop(i)
        if 'error' in r:
            if check:
                raise Fail('%s: QMP %s: %s' % (self.tag, name, r['error'].get('desc')))
            return r
        return r['return']

    def wait_event(self, name, deadline, start=0, pred=None):
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    t, ev = self.events[i]
                    if ev['event'] == name and (pred is None or pred(ev)):
                        return i, t, ev
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail('%s: timeout waiting for event %s' % (self.tag, name))
                if self.closed:
                    raise Fail('%s: QMP closed while waiting for %s' % (self.tag, name))
                self.cond.wait(min(left, 0.5))

    def named(self, name, since=None):
        with self.cond:
            return [(t, ev) for t, ev in self.events
                    if ev['event'] == name and (since is None or t >= since)]

    def close(self):
        with contextlib.suppress(OSError):
            self.sock.close()


# --------------------------------------------------------------------------
# storage

def make_image(path, size_mb):
    with open(path, 'wb') as f:
        f.truncate(size_mb << 20)
    run_cmd(['mkfs.ext4', '-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0',
             '-L', 'e2e', path])


class FuseStorage:
    """loop device (direct I/O) over a failing-fuse file"""
    kind = 'fuse'

    def __init__(self, ctx, image, aio):
        self.ctx = ctx
        self.image = image
        self.aio = aio
        self.mnt = os.path.join(ctx.workdir, 'fuse')
        self.proc = None
        self.loop = None

    def start(self):
        if os.geteuid() != 0:
            raise Skip('fuse storage needs root (losetup, FUSE mount)')
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = self.ctx.procs.start(
            'failing-fuse', [os.path.join(BIN, 'failing-fuse'), self.image, self.mnt,
                             '-f', '-o', 'max_threads=16'])
        self.ctx.cleanups.callback(self.stop)
        disk = os.path.join(self.mnt, 'disk')
        wait_until(lambda: os.path.ismount(self.mnt) and os.path.exists(disk),
                   time.monotonic() + 10, 'FUSE mount')
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

    def blockdev(self, node):
        return {'driver': 'raw', 'node-name': node,
                'file': {'driver': 'host_device', 'filename': self.loop,
                         'cache': {'direct': True}, 'aio': self.aio}}

    def fail(self):
        os.kill(self.proc.pid, signal.SIGUSR1)

    def restore(self):
        os.kill(self.proc.pid, signal.SIGUSR2)

    @staticmethod
    def reconnect_lag(outage):
        return 0.0


class NbdStorage:
    """qemu-storage-daemon NBD export over a unix socket; outage = SIGKILL"""
    kind = 'nbd'

    def __init__(self, ctx, image, qsd, reconnect_delay):
        self.ctx = ctx
        self.image = image
        self.qsd = qsd
        self.sock = os.path.join(ctx.workdir, 'nbd.sock')
        self.reconnect_delay = reconnect_delay
        self.proc = None
        self.starts = 0

    def start(self):
        if not os.access(self.qsd, os.X_OK):
            raise Fail('qemu-storage-daemon not found: %s (set QSD)' % self.qsd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.sock)
        self.starts += 1
        self.proc = self.ctx.procs.start('qsd-%d' % self.starts, [
            self.qsd,
            '--blockdev', json.dumps({'driver': 'file', 'filename': self.image,
                                      'node-name': 'f0', 'cache': {'direct': True},
                                      'aio': 'threads'}),
            '--nbd-server', 'addr.type=unix,addr.path=%s' % self.sock,
            '--export', 'type=nbd,id=e0,node-name=f0,name=disk,writable=on'])
        if self.starts == 1:
            self.ctx.cleanups.callback(self.stop)

        def up():
            if self.proc.poll() is not None:
                raise Fail('qemu-storage-daemon exited (%d)' % self.proc.returncode)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.sock)
                return True
            except OSError:
                return False
            finally:
                s.close()
        wait_until(up, time.monotonic() + 15, 'NBD server socket')

    def stop(self):
        if self.proc:
            self.ctx.procs.stop(self.proc)
            self.proc = None

    def blockdev(self, node):
        return {'driver': 'raw', 'node-name': node,
                'file': {'driver': 'nbd', 'export': 'disk',
                         'server': {'type': 'unix', 'path': self.sock},
                         'reconnect-delay': self.reconnect_delay}}

    def fail(self):
        Procs.signal(self.proc, signal.SIGKILL)
        self.proc.wait(5)

    def restore(self):
        self.start()

    @staticmethod
    def reconnect_lag(outage):
        """QEMU's NBD client retries connecting after 1, 2, 4, 8, 16, 16 ... s
        (nbd/client-connection.c): time from restart to its next attempt."""
        t, step = 0.0, 1.0
        while t < outage:
            t += step
            step = min(step * 2, 16)
        return t - outage


# --------------------------------------------------------------------------
# QEMU

class Qemu:
    def __init__(self, ctx, binary, tag, storage, device, policy, append,
                 incoming=None):
        self.ctx = ctx
        self.binary = binary
        self.tag = tag
        self.storage = storage
        self.device = device
        self.policy = policy          # dict of device properties
        self.append = append
        self.incoming = incoming
        w = ctx.workdir
        self.qmp_path = os.path.join(w, tag + '-qmp.sock')
        self.ser_path = os.path.join(w, tag + '-serial.sock')
        self.proc = None
        self.qmp = None
        self.t_spawn = None

    def argv(self):
        a = [self.binary, '-accel', self.ctx.accel, '-m', '256', '-smp', '1',
             '-nodefaults', '-no-reboot', '-display', 'none',
             '-kernel', self.ctx.kernel, '-initrd', self.ctx.initrd,
             '-append', self.append,
             '-chardev', 'socket,id=ser0,path=%s,server=on,wait=off,logfile=%s'
             % (self.ser_path, os.path.join(self.ctx.workdir, self.tag + '-serial.log')),
             '-serial', 'chardev:ser0',
             '-qmp', 'unix:%s,server=on,wait=off' % self.qmp_path,
             '-blockdev', json.dumps(self.storage.blockdev('disk0'))]
        if self.ctx.accel == 'kvm':
            a += ['-cpu', 'host']
        props = ''.join(',%s=%s' % (k, v) for k, v in self.policy.items())
        if self.device == 'virtio-blk':
            a += ['-device', 'virtio-blk-pci,drive=disk0,id=vd0' + props]
        else:
            a += ['-device', 'virtio-scsi-pci,id=scsi0',
                  '-device', 'scsi-hd,bus=scsi0.0,drive=disk0,id=sd0' + props]
        if self.incoming:
            a += ['-incoming', self.incoming]
        else:
            a += ['-S']
        return a

    def start(self, console):
        for p in (self.qmp_path, self.ser_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        self.t_spawn = time.monotonic()
        self.proc = self.ctx.procs.start('qemu-' + self.tag, self.argv())
        self.ctx.qemus.append(self)
        dl = time.monotonic() + 20
        try:
            self.qmp = QMP(self.qmp_path, dl, self.tag)
        except Fail:
            if self.proc.poll() is not None:
                raise Fail('%s exited at start (%d): %s' % (
                    self.tag, self.proc.returncode, self.ctx.tail('qemu-' + self.tag)))
            raise
        self.ctx.cleanups.callback(self.qmp.close)
        console.attach(self.ser_path, self.tag, dl)

    def status(self, timeout=5.0):
        return self.qmp.cmd('query-status', timeout=timeout)

    def wait_exit(self, deadline):
        try:
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise Fail('%s did not exit after the guest powered off' % self.tag)


def qemu_help_props(binary, device):
    qdev = 'virtio-blk-pci' if device == 'virtio-blk' else 'scsi-hd'
    try:
        return run_cmd([binary, '-device', qdev + ',help'], timeout=20)
    except (Fail, OSError, subprocess.TimeoutExpired):
        return ''


def has_retry(binary, device):
    """does the device of this binary have the retry policy?"""
    h = qemu_help_props(binary, device)
    return 'retry_interval' in h and 'retry_timeout' in h


# --------------------------------------------------------------------------
# scenario context

class Ctx:
    def __init__(self, args, env, name):
        self.args = args
        self.env = env
        self.name = name
        self.workdir = tempfile.mkdtemp(prefix='e2e-%s-' % name.replace('/', '-'))
        self.procs = Procs(self.workdir)
        self.cleanups = contextlib.ExitStack()
        self.kernel = env['kernel']
        self.initrd = env['initrd']
        self.accel = env['accel']
        self.tl = Timeline()
        self.qemus = []
        self.console = Console(os.path.join(self.workdir, 'console.log'))
        self.info = {}

    def tail(self, logname, n=400):
        try:
            with open(os.path.join(self.workdir, logname + '.log'), 'rb') as f:
                data = f.read()[-n:]
            return data.decode('utf-8', 'replace').strip().replace('\n', ' | ')
        except OSError:
            return ''

    def close(self):
        try:
            # QEMU first: it holds the loop device and the NBD connection
            for p in self.procs.items:
                if p.name.startswith('qemu'):
                    self.procs.stop(p, grace=1.0)
            self.cleanups.close()
        finally:
            self.procs.cleanup()
            self.console.close()


def guest_append(args, extra=''):
    return ('quiet console=ttyS0 panic=-1 e2e.max=%d e2e.pace=%d %s' %
            (args.guest_max, args.pace, extra)).strip()


def boot(ctx, q):
    """start QEMU paused, attach, run; wait for the workload to start"""
    q.start(ctx.console)
    q.qmp.cmd('cont')
    dl = time.monotonic() + ctx.args.boot_timeout
    try:
        _, t, _ = ctx.console.wait(r'E2E-START', dl, what='workload start')
    except Fail:
        if q.proc.poll() is not None:
            raise Fail('QEMU exited during boot: ' + ctx.tail('qemu-' + q.tag))
        raise
    ctx.info.setdefault('boot_s', round(t - q.t_spawn, 1))
    ctx.tl.mark('workload-start')


def last_progress(ctx, since=None):
    p = ctx.console.find(r'E2E-PROGRESS (.*)', since)
    return kv(p[-1][3].group(1)) if p else None


def wait_written(ctx, n, deadline, what):
    """wait for a PROGRESS line with written >= n"""
    def ok():
        p = last_progress(ctx)
        return p is not None and p.get('written', 0) >= n
    wait_until(ok, deadline, what, step=0.1)


def warmup(ctx):
    wait_written(ctx, ctx.args.warmup_files, time.monotonic() + 30, 'warm-up writes')


def outage_wait(ctx, until, poll=None):
    """let the outage's wall time pass (the one sleep the harness allows)"""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return
        if poll:
            poll()
        time.sleep(min(left, 0.2))


def finish(ctx, q, deadline_s=90):
    """stop the workload, get its report, wait for power-off"""
    ctx.tl.mark('stop-sent')
    start = ctx.console.count()
    ctx.console.send('\nE2E-STOP\n')
    dl = time.monotonic() + deadline_s
    _, t, m = ctx.console.wait(r'E2E-RESULT (.*)', dl, start=0, what='E2E-RESULT')
    res = kv(m.group(1))
    ctx.tl.mark('result')
    q.wait_exit(time.monotonic() + 30)
    return res


def guest_error_times(ctx, since):
    """host times of guest-visible errors after `since`"""
    werr = ctx.console.find(r'E2E-WERR ', since)
    kerr = ctx.console.find(r'I/O error|EXT4-fs error|EXT4-fs \(.*\): (?:Remount|error)', since)
    kerr = [x for x in kerr if 'E2E-' not in x[2]]
    return werr, kerr


def stall_info(ctx, since, until=None):
    """(stall start estimate, resume time) of the workload's writes"""
    stalled = resumed = None
    for t, _, _, m in ctx.console.find(r'E2E-PROGRESS (.*)', since):
        p = kv(m.group(1))
        if stalled is None and p.get('busy_ms', 0) >= 1000:
            stalled = t - p['busy_ms'] / 1000.0
    for t, _, _, m in ctx.console.find(r'E2E-STALL (.*)', since):
        s = kv(m.group(1))
        if s.get('ms', 0) >= 1000 and s.get('err', 1) == 0:
            resumed = t
            if stalled is None:
                stalled = t - s['ms'] / 1000.0
            break
    return stalled, resumed


def block_errors(q, since=None):
    return [ev['data'] for _, ev in q.qmp.named('BLOCK_IO_ERROR', since)]


def actions(errs):
    out = {}
    for e in errs:
        out[e.get('action')] = out.get(e.get('action'), 0) + 1
    return out


def wait_resumed(ctx, restore_t, deadline):
    """after storage came back: writes progress again (or report an error)"""
    p0 = last_progress(ctx) or {}
    base = p0.get('written', 0)

    def ok():
        for t, _, _, m in ctx.console.find(r'E2E-PROGRESS (.*)', restore_t):
            p = kv(m.group(1))
            if p.get('written', 0) > base + 3 and p.get('busy_ms', 0) < 1000:
                return t
        return None
    return wait_until(ok, deadline, 'guest writes to resume', step=0.1)


def post_run(ctx, seconds):
    """let the guest run `seconds` more (guest-clock progress lines)"""
    p = last_progress(ctx) or {'t': 0}
    t_want = p.get('t', 0) + int(seconds * 1000)
    dl = time.monotonic() + seconds + 30
    ctx.console.wait(r'E2E-PROGRESS t=(\d+)', dl, start=max(0, ctx.console.count() - 1),
                     what='progress')
    wait_until(lambda: (last_progress(ctx) or {}).get('t', 0) >= t_want, dl,
               'guest progress for %.0f s' % seconds, step=0.1)


def make_storage(ctx, kind, image):
    a = ctx.args
    if kind == 'fuse':
        return FuseStorage(ctx, image, a.aio)
    return NbdStorage(ctx, image, ctx.env['qsd'], a.nbd_reconnect_delay)


def common_setup(ctx, device, storage_kind):
    image = os.path.join(ctx.workdir, 'disk.img')
    make_image(image, ctx.args.disk_mb)
    st = make_storage(ctx, storage_kind, image)
    st.start()
    return st


def retry_policy(a, interval, timeout, rerror='retry'):
    return {'werror': 'retry', 'rerror': rerror,
            'retry_interval': interval, 'retry_timeout': timeout}


def check(cond, failures, msg):
    if not cond:
        failures.append(msg)


def summary(res, keys=('written', 'verified', 'bad', 'write_errors', 'read_errors',
                       'max_stall_ms', 'fs_rw', 'fs_writable', 'kernel_io_errors')):
    return ' '.join('%s=%s' % (k, res.get(k)) for k in keys)


# --------------------------------------------------------------------------
# scenarios

def sc_outage_common(ctx, device, storage_kind, binary, policy, outage, *,
                     extra_append='', stop_manager=False, wait_resume=True,
                     resume_deadline=None):
    """boot, warm up, fail storage for `outage` s, restore, finish.
    Returns (qemu, storage, result, times)."""
    st = common_setup(ctx, device, storage_kind)
    q = Qemu(ctx, binary, 'src', st, device, policy,
             guest_append(ctx.args, extra_append))
    boot(ctx, q)
    warmup(ctx)
    mgr = StopManager(ctx, q) if stop_manager else None
    try:
        t_fail = ctx.tl.mark('outage-start')
        st.fail()
        outage_wait(ctx, t_fail + outage)
        t_rest = ctx.tl.mark('storage-restored')
        st.restore()
        if wait_resume:
            dl = time.monotonic() + (resume_deadline or
                                     (30 + st.reconnect_lag(outage)))
            ctx.info['resume_t'] = wait_resumed(ctx, t_rest, dl)
        post_run(ctx, ctx.args.post_seconds)
    finally:
        if mgr:
            mgr.stop()
    if mgr:
        ctx.info['cycles'] = mgr.cycles
        ctx.info['paused_states'] = mgr.states
        wait_until(lambda: q.status()['status'] == 'running', time.monotonic() + 10,
                   'VM running before stop')
    res = finish(ctx, q)
    return q, st, res, (t_fail, t_rest)


class StopManager:
    """a management layer: on every STOP (werror/rerror=stop) wait
    cont_delay, then cont"""

    def __init__(self, ctx, q):
        self.ctx = ctx
        self.q = q
        self.cycles = 0
        self.states = []
        self.quit = threading.Event()
        self.error = None
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        idx = 0
        try:
            while not self.quit.is_set():
                try:
                    i, t, ev = self.q.qmp.wait_event('STOP', time.monotonic() + 0.3, start=idx)
                except Fail:
                    if self.q.qmp.closed:
                        return
                    continue
                idx = i + 1
                st = self.q.status()
                self.states.append(st.get('status'))
                self.ctx.tl.mark('vm-paused', st.get('status'))
                if self.quit.wait(self.ctx.args.cont_delay):
                    pass
                self.q.qmp.cmd('cont')
                self.cycles += 1
                self.ctx.tl.mark('cont-sent')
        except Exception as e:     # reported by stop()
            self.error = e

    def stop(self):
        self.quit.set()
        self.th.join(15)
        if self.error:
            raise Fail('stop manager: %s' % self.error)


def assess_upstream_default(ctx, q, res, times):
    t_fail, t_rest = times
    fails = []
    werr, kerr = guest_error_times(ctx, t_fail)
    guest_saw = (res.get('write_errors', 0) > 0 or res.get('kernel_io_errors', 0) > 0 or
                 res.get('fs_rw') != 1 or res.get('fs_writable') != 1 or
                 res.get('bad', 0) > 0)
    check(guest_saw, fails, 'guest saw no error during a %.0f s outage' % ctx.args.outage)
    check(not q.qmp.named('STOP'), fails, 'VM paused with the default policy')
    errs = block_errors(q, t_fail)
    first = min([x[0] for x in werr + kerr] or [None]) if (werr or kerr) else None
    d = summary(res) + ' qmp_io_errors=%s' % actions(errs)
    if first is not None:
        d += ' first_guest_error=+%.1fs' % (first - t_fail)
    return fails, d


def sc_upstream_default(ctx, device, storage):
    binary, note = ctx.env['upstream']
    q, st, res, times = sc_outage_common(ctx, device, storage, binary, {},
                                         ctx.args.outage, wait_resume=False)
    fails, d = assess_upstream_default(ctx, q, res, times)
    return fails, d + note


def sc_upstream_stop(ctx, device, storage):
    binary, note = ctx.env['upstream']
    q, st, res, (t_fail, t_rest) = sc_outage_common(
        ctx, device, storage, binary, {'werror': 'stop', 'rerror': 'stop'},
        ctx.args.outage, stop_manager=True)
    fails = []
    stops = q.qmp.named('STOP', t_fail)
    errs = block_errors(q, t_fail)
    cyc = ctx.info.get('cycles', 0)
    check(len(stops) >= 1, fails, 'no STOP event during the outage')
    check('io-error' in ctx.info.get('paused_states', []), fails,
          'query-status never reported io-error (saw %s)' % ctx.info.get('paused_states'))
    check(cyc >= 1, fails, 'no pause/cont cycle')
    check(all(e.get('action') == 'stop' for e in errs) and errs, fails,
          'BLOCK_IO_ERROR actions %s, expected stop' % actions(errs))
    check(res.get('write_errors') == 0, fails, 'guest write errors')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')
    check(res.get('fs_rw') == 1 and res.get('fs_writable') == 1, fails,
          'filesystem not writable')
    check(res.get('kernel_io_errors') == 0, fails, 'kernel I/O errors in the guest')
    paused = 0.0
    for t, ev in stops:
        r = [t2 for t2, e2 in q.qmp.named('RESUME', t)]
        paused += (r[0] if r else time.monotonic()) - t
    d = '%s pause_cont_cycles=%d paused_total=%.1fs' % (summary(res), cyc, paused)
    return fails, d + note


def assess_retry_short(ctx, q, res, times, outage, interval, storage_kind, st):
    t_fail, t_rest = times
    fails = []
    slack = ctx.args.slack
    bound_ms = int((outage + st.reconnect_lag(outage) + interval / 1000.0 + slack) * 1000)
    errs = block_errors(q, t_fail)
    acts = actions(errs)
    check(res.get('write_errors') == 0, fails, 'guest write errors')
    check(res.get('kernel_io_errors') == 0, fails, 'kernel I/O errors in the guest')
    check(res.get('fs_rw') == 1 and res.get('fs_writable') == 1, fails,
          'filesystem not writable')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')
    check(res.get('max_stall_ms', 0) <= bound_ms, fails,
          'max stall %s ms > bound %d ms' % (res.get('max_stall_ms'), bound_ms))
    check(res.get('max_stall_ms', 0) >= 0.5 * outage * 1000, fails,
          'guest did not stall (max %s ms): the outage did not hit' % res.get('max_stall_ms'))
    check(acts.get('retry', 0) >= 1, fails, 'no BLOCK_IO_ERROR action=retry (saw %s)' % acts)
    check(not q.qmp.named('STOP', t_fail), fails, 'VM paused')
    return fails, '%s stall_bound_ms=%d qmp_io_errors=%s' % (summary(res), bound_ms, acts)


def sc_short_outage(ctx, device, storage):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    q, st, res, times = sc_outage_common(ctx, device, storage, ctx.env['qemu'], pol,
                                         a.outage)
    return assess_retry_short(ctx, q, res, times, a.outage, a.retry_interval, storage, st)


def sc_long_outage(ctx, device, storage):
    a = ctx.args
    timeout_ms = a.long_retry_timeout
    outage = a.long_outage
    pol = retry_policy(a, a.retry_interval, timeout_ms)
    st = common_setup(ctx, device, storage)
    q = Qemu(ctx, ctx.env['qemu'], 'src', st, device, pol, guest_append(a))
    boot(ctx, q)
    warmup(ctx)
    fails = []
    t_fail = ctx.tl.mark('outage-start')
    st.fail()
    bound = timeout_ms / 1000.0 + a.retry_interval / 1000.0 + a.slack
    # the guest must see an error within timeout + interval + slack
    try:
        _, t_err, m = ctx.console.wait(r'E2E-WERR |I/O error|EXT4-fs error',
                                       t_fail + bound + 5, what='an I/O error')
        err_after = t_err - t_fail
        ctx.tl.mark('guest-error', m.group(0))
    except Fail:
        err_after = None
    check(err_after is not None and err_after <= bound, fails,
          'guest error after %s s, bound %.1f s' % (
              '%.1f' % err_after if err_after is not None else 'never', bound))
    check(err_after is None or err_after >= timeout_ms / 1000.0 - 1.0, fails,
          'guest error after %.1f s, before retry_timeout %.1f s' % (
              err_after or 0, timeout_ms / 1000.0))
    t0 = time.monotonic()
    stq = q.status()
    qmp_ms = (time.monotonic() - t0) * 1000
    check(stq.get('status') == 'running', fails, 'VM status %s' % stq.get('status'))
    check(qmp_ms < 2000, fails, 'QMP answered in %.0f ms' % qmp_ms)
    outage_wait(ctx, t_fail + outage)
    t_rest = ctx.tl.mark('storage-restored')
    st.restore()
    post_run(ctx, a.post_seconds + st.reconnect_lag(outage))
    res = finish(ctx, q)
    errs = block_errors(q, t_fail)
    check(res.get('write_errors', 0) > 0 or res.get('kernel_io_errors', 0) > 0, fails,
          'guest result shows no error')
    d = '%s first_guest_error=+%s bound=%.1fs qmp_status_ms=%.0f qmp_io_errors=%s' % (
        summary(res), '%.1fs' % err_after if err_after is not None else 'never', bound,
        qmp_ms, actions(errs))
    return fails, d


def sc_rerror_report(ctx, device, storage):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout, rerror='report')
    q, st, res, times = sc_outage_common(
        ctx, device, storage, ctx.env['qemu'], pol, a.outage,
        extra_append='e2e.read_ms=%d' % a.read_ms)
    t_fail, t_rest = times
    fails = []
    rerr = ctx.console.find(r'E2E-RERR (.*)', t_fail)
    fast = [kv(m.group(1)).get('ms', 10**9) for _, _, _, m in rerr]
    qmp_reads = [t - t_fail for t, ev in q.qmp.named('BLOCK_IO_ERROR', t_fail)
                 if ev['data'].get('operation') == 'read' and
                 ev['data'].get('action') == 'report']
    # QEMU must report the failed read at once, on both devices
    check(qmp_reads and min(qmp_reads) <= 2.0, fails,
          'QEMU did not report a read error at once (%s)' % qmp_reads[:1])
    if device == 'virtio-blk':
        check(res.get('read_errors', 0) >= 1, fails, 'no read error reached the guest')
        check(fast and max(fast) <= 2000, fails, 'reads did not fail fast (%s ms)' %
              (max(fast) if fast else '-'))
    # scsi-hd: Linux's SCSI midlayer retries a command that failed with
    # a retryable sense (ABORTED COMMAND) and blocks the device's queue
    # while other commands are outstanding, here the parked writes: the
    # guest's read waits behind them and succeeds after the outage.
    # The application sees a slow read, not an error.
    check(res.get('write_errors') == 0, fails, 'guest write errors')
    check(res.get('max_stall_ms', 0) >= 0.5 * a.outage * 1000, fails,
          'writes did not hang (max stall %s ms)' % res.get('max_stall_ms'))
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')
    check(res.get('fs_writable') == 1 and res.get('fs_errors', 0) == 0, fails,
          'filesystem errors (fs_rw=%s fs_errors=%s)' % (res.get('fs_rw'), res.get('fs_errors')))
    acts = actions(block_errors(q, t_fail))
    d = '%s read_fail_ms_max=%s qmp_io_errors=%s' % (
        summary(res), max(fast) if fast else '-', acts)
    return fails, d


# --- migration -------------------------------------------------------------
#
# What QEMU guarantees (and the two scenarios assert): a migration completes
# only once every disk has been flushed (the source's caches must reach the
# storage before the destination takes over), so
#   migrate            a migration started during the outage, held back by a
#                      bandwidth limit, completes after the storage is back;
#                      the guest stalls, then continues on the destination;
#   migrate-in-outage  a migration that reaches completion during the outage
#                      fails cleanly: the source keeps running, the guest
#                      sees nothing; a second migration, storage healthy,
#                      completes.
# (Migrating the parked requests themselves is covered by a qtest, where the
# flushes succeed.)

class MigWatch:
    """follows query-migrate on the source, marks every status change"""

    END = ('completed', 'failed', 'cancelled')

    def __init__(self, ctx, q, prefix='migration'):
        self.ctx = ctx
        self.q = q
        self.prefix = prefix
        self.r = {}
        self.t_end = None

    @property
    def status(self):
        return self.r.get('status')

    def poll(self):
        r = self.q.qmp.cmd('query-migrate')
        if r.get('status') != self.status:
            t = self.ctx.tl.mark('%s-%s' % (self.prefix, r.get('status')),
                                 r.get('error-desc', ''))
            if r.get('status') in self.END:
                self.t_end = t
        self.r = r
        return self.status in self.END

    def wait_end(self, timeout):
        wait_until(self.poll, time.monotonic() + timeout, '%s to end' % self.prefix,
                   step=0.1)
        return self.status

    def ram_mb(self, key):
        v = self.r.get('ram', {}).get(key)
        return '%.1f' % (v / 1048576.0) if v is not None else '-'


def start_destination(ctx, src, tag):
    """a second QEMU waiting for the stream on a unix socket; its console is
    read from now on (silent until it runs)"""
    sock = os.path.join(ctx.workdir, tag + '-mig.sock')
    dst = Qemu(ctx, src.binary, tag, src.storage, src.device, src.policy, src.append,
               incoming='unix:' + sock)
    dst.start(_NullConsole())
    ctx.console.attach(dst.ser_path, tag, time.monotonic() + 5, current=False)
    return dst, 'unix:' + sock


def wait_hung(ctx, q, t_fail):
    """until the guest really hangs on the failing storage: a write in flight
    for >= 1.5 s"""
    def hung():
        for _, _, _, m in ctx.console.find(r'E2E-PROGRESS (.*)', t_fail):
            if kv(m.group(1)).get('busy_ms', 0) >= 1500:
                return True
        return False
    wait_until(hung, time.monotonic() + 20, 'guest write stall', step=0.1)
    return ctx.tl.mark('guest-stalled')


def progress_on(ctx, tag, since):
    """E2E-PROGRESS dicts the guest printed on QEMU `tag`'s console"""
    return [(t, kv(m.group(1))) for t, tg, _, m in
            ctx.console.find(r'E2E-PROGRESS (.*)', since) if tg == tag]


def switch_to(ctx, src, dst, t_done, fails):
    """after a completed migration: the guest runs on dst and writes there"""
    ctx.console.use(dst.tag)
    wait_until(lambda: dst.status()['status'] == 'running', time.monotonic() + 15,
               '%s running' % dst.tag)
    sst = src.status()['status']
    check(sst == 'postmigrate', fails, 'source status %s after migration' % sst)

    def writes_on_dst():
        # new files written on dst: compared with its first progress line
        # (which also counts files written on src since src's last line)
        pp = progress_on(ctx, dst.tag, t_done)
        return pp and any(p.get('written', 0) > pp[0][1].get('written', 0) + 3 and
                          p.get('busy_ms', 0) < 1000 for _, p in pp[1:])
    # the destination's NBD client may still be reconnecting: retry covers it
    wait_until(writes_on_dst, time.monotonic() + 30, 'guest writes on %s' % dst.tag,
               step=0.1)
    return ctx.tl.mark('writes-on-' + dst.tag)


def check_guest_clean(res, fails):
    check(res.get('write_errors') == 0, fails, 'guest write errors')
    check(res.get('read_errors', 0) == 0, fails, 'guest read errors')
    check(res.get('kernel_io_errors') == 0, fails, 'kernel I/O errors in the guest')
    check(res.get('fs_rw') == 1 and res.get('fs_writable') == 1, fails,
          'filesystem not writable')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')


def check_retry_only(qs, since, fails):
    acts = {}
    for q in qs:
        for k, v in actions(block_errors(q, since)).items():
            acts[k] = acts.get(k, 0) + v
    check(set(acts) <= {'retry'}, fails, 'BLOCK_IO_ERROR actions %s, expected retry' % acts)
    return acts


def migrate_setup(ctx, device, storage):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    st = common_setup(ctx, device, storage)
    src = Qemu(ctx, ctx.env['qemu'], 'src', st, device, pol, guest_append(a))
    boot(ctx, src)
    return st, src


def finish_on_destination(ctx, a, src, dst, t_done, t_fail, fails):
    """After a migration that completed at t_done: the guest goes on on dst,
    writes a while, is stopped and checked (no error, one stall from the
    outage, only 'retry' events on either side).  Returns (result, QMP
    BLOCK_IO_ERROR actions, when the guest first wrote on dst)."""
    t_dw = switch_to(ctx, src, dst, t_done, fails)
    post_run(ctx, a.post_seconds)
    src.qmp.cmd('quit', check=False)
    res = finish(ctx, dst)
    check_guest_clean(res, fails)
    check(res.get('max_stall_ms', 0) >= 0.5 * a.outage * 1000, fails,
          'guest did not stall during the outage (max %s ms)' % res.get('max_stall_ms'))
    acts = check_retry_only([src, dst], t_fail, fails)
    return res, acts, t_dw


def migrate_in_outage(ctx, device, storage, bandwidth):
    """boot, start the destination while the storage is up (it opens the
    disk), fail the storage, wait for the guest to hang, start migrating"""
    st, src = migrate_setup(ctx, device, storage)
    dst, uri = start_destination(ctx, src, 'dst')
    warmup(ctx)
    t_fail = ctx.tl.mark('outage-start')
    st.fail()
    wait_hung(ctx, src, t_fail)
    src.qmp.cmd('migrate-set-parameters', {'max-bandwidth': bandwidth})
    t_m = ctx.tl.mark('migrate-start')
    src.qmp.cmd('migrate', {'uri': uri})
    return st, src, dst, uri, t_fail, t_m, MigWatch(ctx, src)


def sc_migrate(ctx, device, storage):
    a = ctx.args
    # held back: at this rate the first RAM pass alone takes minutes
    st, src, dst, uri, t_fail, t_m, mw = migrate_in_outage(
        ctx, device, storage, a.migrate_slow_bw)
    fails = []
    outage_wait(ctx, t_fail + a.outage, poll=mw.poll)
    mw.poll()
    at_restore = mw.status
    mb_at_restore = mw.ram_mb('transferred')
    t_rest = ctx.tl.mark('storage-restored')
    st.restore()
    check(at_restore == 'active', fails,
          'migration %s before the storage came back (expected active)' % at_restore)
    # the parked writes complete on the source once QEMU reaches the storage
    t_res = wait_resumed(ctx, t_rest, time.monotonic() + 30 + st.reconnect_lag(a.outage))
    resumed_on = [tg for t, tg, _, _ in ctx.console.find(r'E2E-PROGRESS', t_res - 0.01)
                  if t == t_res][:1]
    check(resumed_on == ['src'], fails, 'guest resumed on %s, expected src' % resumed_on)
    # now let the migration converge
    t_lift = ctx.tl.mark('bandwidth-lifted')
    src.qmp.cmd('migrate-set-parameters', {'max-bandwidth': a.migrate_fast_bw})
    mw.wait_end(a.migrate_timeout)
    if mw.status != 'completed':
        raise Fail('migration %s after the storage came back: %s; source VM %s' % (
            mw.status, mw.r.get('error-desc', ''), src.status().get('status')))
    t_done = mw.t_end
    check(t_done > t_rest, fails, 'migration completed %.1f s before the storage came back'
          % (t_rest - t_done))
    res, acts, t_dw = finish_on_destination(ctx, a, src, dst, t_done, t_fail, fails)
    d = ('%s migration: started +%.1fs, %s at restore (%s MB sent), guest resumed on '
         'src +%.1fs, completed +%.1fs (%.1fs after the limit was lifted, %s MB), '
         'downtime_ms=%s, guest writes on dst +%.1fs; qmp_io_errors=%s' % (
             summary(res), t_m - t_fail, at_restore, mb_at_restore, t_res - t_fail,
             t_done - t_fail, t_done - t_lift, mw.ram_mb('transferred'),
             mw.r.get('downtime'), t_dw - t_fail, acts))
    return fails, d


def sc_migrate_in_outage(ctx, device, storage):
    a = ctx.args
    st, src, dst, uri, t_fail, t_m, mw = migrate_in_outage(
        ctx, device, storage, a.migrate_fast_bw)
    fails = []
    # the storage stays down for the outage and until the migration ended
    outage_wait(ctx, t_fail + a.outage, poll=mw.poll)
    mw.wait_end(a.migrate_timeout)
    check(mw.status == 'failed', fails, 'first migration %s during the outage, expected '
          'failed' % mw.status)
    err = mw.r.get('error-desc', '')
    # it failed at completion: the source had stopped the VM for the switchover
    stops = src.qmp.named('STOP', t_m)
    check(stops and stops[0][0] <= mw.t_end, fails,
          'no STOP before the migration failed: it did not reach completion')
    with contextlib.suppress(Fail):
        wait_until(lambda: src.status()['status'] == 'running', time.monotonic() + 5,
                   'source running again')
    t0 = time.monotonic()
    sst = src.status(timeout=5.0)['status']
    qmp_ms = (time.monotonic() - t0) * 1000
    check(sst == 'running', fails, 'source VM %s after the failed migration' % sst)
    check(qmp_ms < 2000, fails, 'QMP answered in %.0f ms' % qmp_ms)
    werr, kerr = guest_error_times(ctx, t_fail)
    check(not werr and not kerr, fails, 'guest errors during the outage: %s' %
          [x[2] for x in (werr + kerr)[:2]])
    t_rest = ctx.tl.mark('storage-restored')
    st.restore()
    check(mw.t_end < t_rest, fails, 'first migration ended after the storage came back')
    t_res = wait_resumed(ctx, t_rest, time.monotonic() + 30 + st.reconnect_lag(a.outage))
    on = [tg for t, tg, _, _ in ctx.console.find(r'E2E-PROGRESS', t_res - 0.01)
          if t == t_res][:1]
    check(on == ['src'], fails, 'guest resumed on %s, expected src' % on)
    # second attempt, storage healthy
    dst_rc = dst.proc.poll()
    dst2, uri2 = start_destination(ctx, src, 'dst2')
    t_m2 = ctx.tl.mark('migrate2-start')
    src.qmp.cmd('migrate', {'uri': uri2})
    mw2 = MigWatch(ctx, src, 'migration2')
    mw2.wait_end(a.migrate_timeout)
    if mw2.status != 'completed':
        raise Fail('second migration (storage healthy) %s: %s' % (
            mw2.status, mw2.r.get('error-desc', '')))
    res, acts, t_dw = finish_on_destination(ctx, a, src, dst2, mw2.t_end, t_fail,
                                            fails)
    d = ('%s 1st migration: started +%.1fs, failed +%.1fs (%s), source %s, '
         'qmp_status_ms=%.0f, 1st dst exit=%s; storage back +%.1fs, guest resumed on src '
         '+%.1fs; 2nd migration %.1fs, downtime_ms=%s, guest writes on dst2 +%.1fs; '
         'qmp_io_errors=%s' % (
             summary(res), t_m - t_fail, mw.t_end - t_fail, err, sst, qmp_ms, dst_rc,
             t_rest - t_fail, t_res - t_fail, mw2.t_end - t_m2, mw2.r.get('downtime'),
             t_dw - t_fail, acts))
    return fails, d


class _NullConsole:
    def attach(self, *a, **k):
        pass


SCENARIO_FUNCS = {
    'short-outage': sc_short_outage,
    'long-outage': sc_long_outage,
    'upstream-default': sc_upstream_default,
    'upstream-stop': sc_upstream_stop,
    'migrate': sc_migrate,
    'migrate-in-outage': sc_migrate_in_outage,
    'rerror-report': sc_rerror_report,
}


def run_one(args, env, scenario, device, storage):
    name = '%s/%s/%s' % (scenario, device, storage)
    if scenario in RETRY_SCENARIOS and not env['retry'][device]:
        msg = 'QEMU %s: %s has no retry policy (retry_interval, retry_timeout)' % (
            env['qemu'], device)
        if args.require_retry:
            return 'FAIL', name, msg, 0.0
        return 'SKIP', name, msg, 0.0
    ctx = Ctx(args, env, name)
    t0 = time.monotonic()
    status, detail = 'FAIL', ''
    try:
        fails, detail = SCENARIO_FUNCS[scenario](ctx, device, storage)
        if fails:
            detail = '; '.join(fails) + ' | ' + detail
        else:
            status = 'PASS'
    except Skip as e:
        status, detail = 'SKIP', str(e)
    except Fail as e:
        detail = str(e)
    except KeyboardInterrupt:
        detail = 'interrupted'
        raise
    except Exception as e:      # a harness bug is a failure, never a pass
        import traceback
        traceback.print_exc()
        detail = 'harness error: %r' % e
    finally:
        try:
            ctx.close()
        except Exception as e:
            status, detail = 'FAIL', detail + ' | cleanup failed: %r' % e
        elapsed = time.monotonic() - t0
        if 'boot_s' in ctx.info:
            detail += ' boot=%.1fs' % ctx.info['boot_s']
        if status == 'FAIL' or args.keep:
            detail += ' (logs: %s)' % ctx.workdir
        else:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    env['last_ctx'] = ctx
    return status, name, detail, elapsed


# --------------------------------------------------------------------------
# environment

def default_bin(rel):
    return os.path.join(REPO, 'build', rel)


def prepare(args):
    env = {}
    qemu = os.environ.get('QEMU') or default_bin('qemu/build/qemu-system-x86_64')
    if not os.access(qemu, os.X_OK):
        sys.exit('error: QEMU binary %s not found (set QEMU)' % qemu)
    env['qemu'] = qemu
    up = os.environ.get('QEMU_UPSTREAM') or default_bin('qemu-upstream/build/qemu-system-x86_64')
    if os.access(up, os.X_OK):
        env['upstream'] = (up, '')
    else:
        env['upstream'] = (qemu, ' (no upstream binary: ran $QEMU with upstream policies)')
    env['qsd'] = os.environ.get('QSD') or os.path.join(
        os.path.dirname(qemu), 'storage-daemon', 'qemu-storage-daemon')
    env['retry'] = {d: has_retry(qemu, d) for d in DEVICES}
    run_cmd(['make', '-s', '-C', HERE, 'CACHE=' + CACHE], timeout=300)
    out = run_cmd([os.path.join(HERE, 'mkinitramfs.sh')], timeout=600)
    for line in out.splitlines():
        if line.startswith('KERNEL='):
            env['kernel'] = line[7:]
        elif line.startswith('INITRD='):
            env['initrd'] = line[7:]
    env['accel'] = pick_accel(args, env)
    return env


def pick_accel(args, env):
    if args.accel != 'auto':
        return args.accel
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return 'tcg'
    st = os.stat(env['qemu'])
    key = '%s %d %s %s' % (env['qemu'], st.st_mtime, os.uname().release, env['kernel'])
    cache = os.path.join(CACHE, 'kvm-probe.json')
    with contextlib.suppress(OSError, ValueError):
        with open(cache) as f:
            c = json.load(f)
        if c.get('key') == key:
            return c['accel']
    accel = 'kvm' if probe_kvm(env) else 'tcg'
    with contextlib.suppress(OSError):
        with open(cache, 'w') as f:
            json.dump({'key': key, 'accel': accel}, f)
    return accel


def probe_kvm(env):
    """does a guest really boot under KVM here? (a nested host may say no)"""
    w = tempfile.mkdtemp(prefix='e2e-kvmprobe-')
    p = None
    try:
        ser = os.path.join(w, 'serial.log')
        p = subprocess.Popen(
            [env['qemu'], '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults',
             '-no-reboot', '-display', 'none', '-kernel', env['kernel'],
             '-initrd', env['initrd'], '-append', 'quiet console=ttyS0 panic=-1',
             '-serial', 'file:' + ser],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        dl = time.monotonic() + 15
        while time.monotonic() < dl and p.poll() is None:
            with contextlib.suppress(OSError):
                with open(ser, 'rb') as f:
                    if b'E2E-INIT' in f.read():
                        return True
            time.sleep(0.2)
        return False
    finally:
        if p:
            Procs.signal(p, signal.SIGKILL)
            p.wait()
        shutil.rmtree(w, ignore_errors=True)


# --------------------------------------------------------------------------
# demo

def timeline_text(ctx):
    tl = ctx.tl
    t_fail = tl.get('outage-start')
    t_rest = tl.get('storage-restored')
    if t_fail is None:
        return ['  (no outage happened)']
    ev = [(t_fail, 'storage fails (outage starts)')]
    if t_rest:
        ev.append((t_rest, 'storage restored'))
    qmp_ev = [(t, e) for q in ctx.qemus if q.qmp
              for t, e in q.qmp.named('BLOCK_IO_ERROR', t_fail)]
    if qmp_ev:
        t, e = min(qmp_ev, key=lambda x: x[0])
        act = e['data'].get('action')
        ev.append((t, 'QEMU: first BLOCK_IO_ERROR event, action=%s (%d in all%s)' % (
            act, len(qmp_ev), ', rate limited' if act in ('report', 'ignore') else '')))
    stalled, resumed = stall_info(ctx, t_fail)
    if stalled:
        ev.append((stalled, 'guest writes stall (fsync blocked, no error)'))
    if resumed:
        ev.append((resumed, 'guest writes resume (the stalled fsync completes)'))
    werr, kerr = guest_error_times(ctx, t_fail)
    if werr:
        ev.append((werr[0][0], 'guest: first failed write: %s' %
                   re.sub(r'^.*E2E-WERR t=\d+ n=\d+ ', '', werr[0][2].strip())[:60]))
    shown = set()
    for t, _, text, _ in kerr:
        msg = re.sub(r'^\[[ \d.]+\] ', '', text.strip())
        kind = ('fs' if re.search(r'EXT4|journal|read-only', msg) else 'io')
        if kind not in shown:
            shown.add(kind)
            ev.append((t, 'guest kernel: %s' % msg[:70]))
    for t, _, text, _ in ctx.console.find(r'Remounting filesystem read-only|Aborting journal',
                                          t_fail)[:1]:
        ev.append((t, 'guest kernel: %s' % re.sub(r'^\[[ \d.]+\] ', '', text.strip())[:70]))
    if not resumed:
        prog = [(t, kv(m.group(1))) for t, _, _, m in
                ctx.console.find(r'E2E-PROGRESS (.*)', t_fail + 1.0)]
        if prog:
            base = prog[0][1].get('written', 0)
            again = [t for t, p in prog if p.get('written', 0) > base]
            if again:
                ev.append((again[0], 'guest writes succeed again'))
            elif werr:
                ev.append((prog[-1][0], 'guest writes still failing'))
    labels = {'vm-paused': 'VM paused (status %s)', 'cont-sent': 'harness sends cont',
              'migrate-start': 'migration starts', 'migration-completed': 'migration completed',
              'migration-failed': 'migration failed: %s', 'bandwidth-lifted':
              'migration bandwidth limit lifted', 'migrate2-start': 'second migration starts',
              'migration2-completed': 'second migration completed'}
    for t, name, text in tl.marks:
        if name in labels:
            ev.append((t, labels[name] % text if '%' in labels[name] else labels[name]))
    r = ctx.console.find(r'E2E-RESULT (.*)')
    if r:
        res = kv(r[-1][3].group(1))
        ev.append((tl.get('result') or r[-1][0],
                   'workload stopped: %d of %d acknowledged files verified (%d bytes), bad=%d;'
                   ' %d failed writes; fs %s; %d kernel I/O error lines; longest stall %.1f s'
                   % (res.get('verified', 0), res.get('written', 0), res.get('verified_bytes', 0),
                      res.get('bad', 0), res.get('write_errors', 0),
                      'writable' if res.get('fs_writable') == 1 else 'NOT WRITABLE',
                      res.get('kernel_io_errors', 0), res.get('max_stall_ms', 0) / 1000.0)))
    ev.sort(key=lambda e: e[0])
    return ['  %+7.1fs  %s' % (t - t_fail, text) for t, text in ev]


def demo(args, env):
    device, storage = args.device or 'virtio-blk', args.storage or 'fuse'
    if device == 'all':
        device = 'virtio-blk'
    if storage == 'all':
        storage = 'fuse'
    results = []
    runs = [('upstream-default', ('upstream QEMU' if not env['upstream'][1] else
                                  '$QEMU (no upstream build)') + ', default werror/rerror')]
    if env['retry'][device]:
        runs.insert(0, ('short-outage', 'patched QEMU, werror=retry,rerror=retry,'
                        'retry_interval=%d,retry_timeout=%d' % (args.retry_interval,
                                                                args.retry_timeout)))
    else:
        print('note: %s has no retry support for %s yet; showing the upstream side only\n'
              % (env['qemu'], device))
    for sc, title in runs:
        st, name, detail, el = run_one(args, env, sc, device, storage)
        ctx = env['last_ctx']
        print('=== %s: %s, %.0f s outage (%s/%s)' % (title, sc, args.outage, device, storage))
        for line in timeline_text(ctx):
            print(line)
        print('  -> %s %s (%.0f s)\n' % (st, detail, el))
        results.append(st)
    return results


# --------------------------------------------------------------------------

def main():
    global VERBOSE
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--scenario', help='comma separated (default: the suite)')
    ap.add_argument('--device', choices=DEVICES + ['all'])
    ap.add_argument('--storage', choices=STORAGES + ['all'])
    ap.add_argument('--all-combos', action='store_true',
                    help='every scenario on every device/storage combination '
                         '(the default suite)')
    ap.add_argument('--quick', action='store_true',
                    help='a crossed subset: every scenario, every device and '
                         'storage kind, not every combination (15 runs)')
    ap.add_argument('--demo', action='store_true',
                    help='short-outage (patched) next to upstream-default, with timelines')
    ap.add_argument('--list', action='store_true', help='list the runs and exit')
    ap.add_argument('--check', action='store_true',
                    help='run the default suite (what make check-e2e runs; same as no option)')
    ap.add_argument('--require-retry', action='store_true',
                    help='fail (instead of skip) retry scenarios when QEMU lacks retry')
    ap.add_argument('--accel', default=os.environ.get('E2E_ACCEL', 'auto'),
                    choices=['auto', 'tcg', 'kvm'])
    ap.add_argument('--aio', default='native', choices=['native', 'io_uring', 'threads'],
                    help='aio= for the loop device (fuse storage)')
    ap.add_argument('--outage', type=float, default=5.0, help='short outage, s')
    ap.add_argument('--long-outage', type=float, default=14.0, help='s')
    ap.add_argument('--retry-interval', type=int, default=1000, help='ms')
    ap.add_argument('--retry-timeout', type=int, default=30000, help='ms')
    ap.add_argument('--long-retry-timeout', type=int, default=8000,
                    help='retry_timeout for long-outage, ms')
    ap.add_argument('--slack', type=float, default=3.0, help='timing slack, s')
    ap.add_argument('--cont-delay', type=float, default=1.0,
                    help='upstream-stop: wait before cont, s')
    ap.add_argument('--nbd-reconnect-delay', type=int, default=0)
    ap.add_argument('--read-ms', type=int, default=200, help='rerror-report reader period')
    ap.add_argument('--pace', type=int, default=20, help='guest ms between files')
    ap.add_argument('--disk-mb', type=int, default=64)
    ap.add_argument('--warmup-files', type=int, default=30)
    ap.add_argument('--post-seconds', type=float, default=2.0)
    ap.add_argument('--boot-timeout', type=float, default=90.0)
    ap.add_argument('--migrate-timeout', type=float, default=60.0)
    ap.add_argument('--migrate-slow-bw', type=int, default=1 << 20,
                    help='migrate: max-bandwidth during the outage, bytes/s')
    ap.add_argument('--migrate-fast-bw', type=int, default=1 << 30,
                    help='max-bandwidth otherwise, bytes/s')
    ap.add_argument('--guest-max', type=int, default=240,
                    help='guest workload safety limit, s')
    ap.add_argument('--keep', action='store_true', help='keep work dirs')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    VERBOSE = args.verbose

    if args.scenario:
        names = args.scenario.split(',')
        for n in names:
            if n not in SCENARIO_FUNCS:
                ap.error('unknown scenario %s (have: %s)' % (n, ', '.join(ALL_SCENARIOS)))
        devs = DEVICES if args.device in (None, 'all') else [args.device]
        stos = STORAGES if args.storage in (None, 'all') else [args.storage]
        runs = [(n, d, s) for n in names for d in devs for s in stos]
    else:
        suite = QUICK_SUITE if args.quick and not args.all_combos else DEFAULT_SUITE
        runs = [r for r in suite
                if args.device in (None, 'all', r[1]) and args.storage in (None, 'all', r[2])]
    if args.list and not args.demo:
        for r in runs:
            print('%s/%s/%s' % r)
        return 0

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    t0 = time.monotonic()
    env = prepare(args)
    print('e2e: QEMU=%s (retry support: %s), upstream=%s, accel=%s' % (
        env['qemu'], ', '.join('%s %s' % (d, 'yes' if env['retry'][d] else 'no')
                               for d in DEVICES), env['upstream'][0], env['accel']))
    sys.stdout.flush()
    if args.demo:
        sts = demo(args, env)
        return 1 if 'FAIL' in sts else 0
    counts = {'PASS': 0, 'FAIL': 0, 'SKIP': 0}
    times = []
    for sc, dev, sto in runs:
        try:
            st, name, detail, el = run_one(args, env, sc, dev, sto)
        except KeyboardInterrupt:
            counts['FAIL'] += 1
            print('FAIL %s/%s/%s interrupted (processes stopped)' % (sc, dev, sto))
            print('%d passed, %d failed, %d skipped' % (
                counts['PASS'], counts['FAIL'], counts['SKIP']))
            return 130
        counts[st] += 1
        times.append((st, name, el))
        print('%s %s %.1fs %s' % (st, name, el, detail))
        sys.stdout.flush()
    if len(times) > 1:
        print('wall times:')
        for st, name, el in times:
            print('  %6.1fs %s %s' % (el, st, name))
    print('total %.0f s' % (time.monotonic() - t0))
    print('%d passed, %d failed, %d skipped' % (counts['PASS'], counts['FAIL'], counts['SKIP']))
    return 1 if counts['FAIL'] else 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
