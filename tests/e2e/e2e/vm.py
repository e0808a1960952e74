"""QEMU control: the process through qemu.machine.QEMUMachine and QMP
through qemu.qmp, both from the QEMU tree's python/ (as the iotests use
them), plus a small reader of the guest's serial console that stamps every
line with its host arrival time.

QMP runs on its own asyncio loop in a thread, so that events are received
(and time-stamped) as QEMU sends them, while the harness waits elsewhere.
"""

import asyncio
import concurrent.futures
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

from . import base
from .base import CACHE, REPO, Fail, log, run_cmd
from .storage import drive_opts


def qemu_python_dir():
    for d in (os.environ.get('QEMU_PYTHON'),
              os.path.join(REPO, 'build', 'qemu', 'python'),
              os.path.join(REPO, 'build', 'qemu-upstream', 'python')):
        if d and os.path.isfile(os.path.join(d, 'qemu', 'machine', 'machine.py')):
            return d
    raise SystemExit('error: no QEMU python/ tree (build/qemu/python: run make tree, '
                     'or set QEMU_PYTHON)')


sys.path.insert(0, qemu_python_dir())
# pylint: disable=wrong-import-position
from qemu.machine import QEMUMachine                  # noqa: E402
from qemu.machine.machine import AbnormalShutdown, VMLaunchFailure   # noqa: E402
from qemu.qmp import (ExecInterruptedError, ExecuteError, QMPClient,   # noqa: E402
                      QMPError, Runstate)


# --------------------------------------------------------------------------
# QMP

class Monitor:
    """A QMP connection (qemu.qmp.QMPClient) on a private event loop.
    events: [(host arrival time, event dict)], in arrival order."""

    def __init__(self, sock, tag, timeout=20.0):
        self.tag = tag
        self.cond = threading.Condition()
        self.events = []
        self.closed = False
        self.client = None
        self.tasks = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                       name='qmp-' + tag)
        self.thread.start()
        try:
            self._run(self._connect(sock), timeout)
        except Exception:
            self.close()
            raise

    def _run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise

    async def _connect(self, sock):
        self.client = QMPClient(self.tag)
        await self.client.connect(sock)
        self.tasks = [self.loop.create_task(self._pump_events()),
                      self.loop.create_task(self._watch())]

    async def _pump_events(self):
        async for ev in self.client.events:
            t = time.monotonic()
            msg = dict(ev)
            with self.cond:
                self.events.append((t, msg))
                self.cond.notify_all()
            log('%s event %s %s' % (self.tag, msg['event'],
                                    json.dumps(msg.get('data', {}))[:200]))

    async def _watch(self):
        while True:
            st = await self.client.runstate_changed()
            if st in (Runstate.DISCONNECTING, Runstate.IDLE):
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return

    def cmd(self, name, args=None, timeout=10.0, check=True):
        if self.closed:
            raise Fail('%s: QMP closed during %s' % (self.tag, name))
        try:
            return self._run(self.client.execute(name, args), timeout)
        except concurrent.futures.TimeoutError:
            raise Fail('%s: QMP %s: no answer in %.0f s' % (self.tag, name, timeout))
        except ExecuteError as e:
            if check:
                raise Fail('%s: QMP %s: %s' % (self.tag, name, e.error.error.desc))
            return {'error': {'class': e.error_class, 'desc': e.error.error.desc}}
        except (ExecInterruptedError, QMPError, EOFError, OSError) as e:
            if check:
                raise Fail('%s: QMP closed during %s (%s)' % (self.tag, name, e))
            return {'error': {'class': 'Disconnected', 'desc': str(e)}}

    def wait_event(self, name, deadline, start=0, pred=None):
        """first event `name` at index >= start (matching pred):
        (index, arrival time, event)"""
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

    async def _stop_tasks(self):
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def close(self):
        if self.client is not None and self.loop.is_running():
            with contextlib.suppress(Exception):
                self._run(self.client.disconnect(), 5)
            with contextlib.suppress(Exception):
                self._run(self._stop_tasks(), 5)
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            if not self.thread.is_alive():
                self.loop.close()
        with self.cond:
            self.closed = True
            self.cond.notify_all()


# --------------------------------------------------------------------------
# serial console

class Console:
    """Serial console(s) of the guest: lines with host arrival times.

    The source and (after migration) destination QEMU both feed this
    object, so one list holds the whole guest run."""

    def __init__(self, logpath):
        self.lines = []            # (t, tag, text)
        self.cond = threading.Condition()
        self.sock_of = {}
        self.threads = {}
        self.out = None
        self.logf = open(logpath, 'a')

    def attach(self, sock, tag, current=True):
        """read the connected socket sock; current: E2E-STOP goes there"""
        self.sock_of[tag] = sock
        if current:
            self.out = sock
        th = threading.Thread(target=self._reader, args=(sock, tag), daemon=True,
                              name='console-' + tag)
        self.threads[tag] = th
        th.start()

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
            if not self.logf.closed:
                self.logf.write('%.3f %s %s\n' % (t, tag, text))
                self.logf.flush()
        if base.VERBOSE and 'PROGRESS' not in text:
            log('%s| %s' % (tag, text))

    def drained(self, tag, timeout):
        """wait until the console of `tag` reached its end (QEMU exited)"""
        th = self.threads.get(tag)
        if th:
            th.join(timeout)

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

    def find(self, regex, since=None, tag=None):
        rx = re.compile(regex)
        with self.cond:
            lines = list(self.lines)
        return [(t, tg, text, m) for t, tg, text in lines
                for m in [rx.search(text)]
                if m and (since is None or t >= since) and (tag is None or tg == tag)]

    def count(self):
        with self.cond:
            return len(self.lines)

    def close(self):
        with self.cond:
            self.logf.close()


# --------------------------------------------------------------------------
# QEMU

QDEV = {'virtio-blk': 'virtio-blk-pci', 'scsi-hd': 'scsi-hd'}


def qemu_help_props(binary, device):
    try:
        return run_cmd([binary, '-device', QDEV[device] + ',help'], timeout=20)
    except (Fail, OSError, subprocess.TimeoutExpired):
        return ''


def retry_props(binary, device):
    """the names of the retry interval/timeout properties of the device
    in this binary (dashed once present, else the first spelling), or None
    when it has no retry policy"""
    h = qemu_help_props(binary, device)
    for names in (('retry-interval', 'retry-timeout'), ('retry_interval', 'retry_timeout')):
        if all(re.search(r'^\s*%s=' % re.escape(n), h, re.M) for n in names):
            return names
    return None


class Disk:
    """one guest disk: storage + device + policy.
    mode 'blockdev': -blockdev + device policy; 'drive': -drive with the
    werror/rerror given in `drive_policy` (the device inherits them)"""

    def __init__(self, storage, device, policy, node='disk0', index=0, mode='blockdev',
                 drive_policy=None, dev_props=None, hba_props=None):
        self.storage = storage
        self.device = device
        self.policy = dict(policy)
        self.node = node
        self.index = index
        self.mode = mode
        self.drive_policy = dict(drive_policy or {})
        self.dev_props = dict(dev_props or {})
        self.hba_props = dict(hba_props or {})

    @property
    def qdev_id(self):
        return ('vd%d' if self.device == 'virtio-blk' else 'sd%d') % self.index

    @property
    def qom_path(self):
        """the path block-retry-* and the events name"""
        if self.device == 'virtio-blk':
            return '/machine/peripheral/%s/virtio-backend' % self.qdev_id
        return '/machine/peripheral/%s' % self.qdev_id


class Qemu:
    """One QEMU process (QEMUMachine), its QMP monitor and console."""

    def __init__(self, ctx, binary, tag, storage=None, device=None, policy=None,
                 append='', incoming=None, disks=None, smp=1, iothreads=(),
                 mem=256, extra_args=(), no_reboot=True):
        self.ctx = ctx
        self.binary = binary
        self.tag = tag
        self.disks = disks or [Disk(storage, device, policy or {})]
        self.append = append
        self.incoming = incoming
        self.smp = smp
        self.iothreads = list(iothreads)
        self.mem = mem
        self.extra_args = list(extra_args)
        self.no_reboot = no_reboot
        self.machine = None
        self.qmp = None
        self.t_spawn = None

    # the first disk, for the scenarios that have one
    @property
    def storage(self):
        return self.disks[0].storage

    @property
    def device(self):
        return self.disks[0].device

    @property
    def policy(self):
        return self.disks[0].policy

    def clone_spec(self):
        return dict(disks=self.disks, append=self.append, smp=self.smp,
                    iothreads=self.iothreads, mem=self.mem, extra_args=self.extra_args,
                    no_reboot=self.no_reboot)

    def _props(self, disk, policy):
        names = self.ctx.env.get('retry_props', {}).get(disk.device)
        out = {}
        for k, v in policy.items():
            if names and k.replace('_', '-') == 'retry-interval':
                k = names[0]
            elif names and k.replace('_', '-') == 'retry-timeout':
                k = names[1]
            out[k] = v
        out.update(disk.dev_props)
        return out

    @staticmethod
    def _device_arg(props):
        if any(isinstance(v, (list, dict)) for v in props.values()):
            return json.dumps(props)
        return props['driver'] + ''.join(',%s=%s' % (k, v) for k, v in props.items()
                                         if k != 'driver')

    def disk_args(self):
        a = []
        hba = False
        for d in self.disks:
            if d.mode == 'drive':
                bd = d.storage.blockdev(d.node)
                bd.pop('node-name', None)
                opts = drive_opts(bd) + ',if=none,id=%s' % d.node
                opts += ''.join(',%s=%s' % kv for kv in d.drive_policy.items())
                a += ['-drive', opts]
            else:
                a += ['-blockdev', json.dumps(d.storage.blockdev(d.node))]
            if d.device == 'virtio-blk':
                props = {'driver': 'virtio-blk-pci', 'drive': d.node, 'id': d.qdev_id}
                props.update(self._props(d, d.policy))
                a += ['-device', self._device_arg(props)]
            else:
                if not hba:
                    hp = {'driver': 'virtio-scsi-pci', 'id': 'scsi0'}
                    hp.update(d.hba_props)
                    a += ['-device', self._device_arg(hp)]
                    hba = True
                props = {'driver': 'scsi-hd', 'bus': 'scsi0.0', 'drive': d.node,
                         'id': d.qdev_id}
                props.update(self._props(d, d.policy))
                a += ['-device', self._device_arg(props)]
        return a

    def argv(self):
        a = ['-accel', self.ctx.accel, '-m', str(self.mem), '-smp', str(self.smp),
             '-nodefaults'] + (['-no-reboot'] if self.no_reboot else []) + [
             '-kernel', self.ctx.kernel, '-initrd', self.ctx.initrd,
             '-append', self.append]
        for io in self.iothreads:
            a += ['-object', 'iothread,id=%s' % io]
        if self.ctx.accel == 'kvm':
            a += ['-cpu', 'host']
        a += self.disk_args()
        a += self.extra_args
        if self.incoming:
            a += ['-incoming', self.incoming]
        else:
            a += ['-S']
        return a

    def start(self, console, current=True):
        w = self.ctx.workdir
        m = QEMUMachine(self.binary, args=self.argv(), name='qemu-' + self.tag,
                        base_temp_dir=w, log_dir=w)
        m.set_qmp_monitor(False)       # qemu.qmp's async client below instead
        m.set_console()
        qa, qb = socket.socketpair()
        os.set_inheritable(qa.fileno(), True)
        m.add_args('-chardev', 'socket,id=qmp0,fd=%d' % qa.fileno(),
                   '-mon', 'chardev=qmp0,mode=control')
        log('start qemu-%s: %s %s' % (self.tag, self.binary, ' '.join(m.args)))
        self.t_spawn = time.monotonic()
        try:
            m.launch()
        except VMLaunchFailure as e:
            qb.close()
            raise Fail('%s: could not start %s (exit %s): %s' % (
                self.tag, self.binary, e.exitcode,
                (e.output or repr(e.__cause__)).strip().replace('\n', ' | ')[-400:]))
        finally:
            qa.close()
        self.machine = m
        self.ctx.qemus.append(self)
        try:
            self.qmp = Monitor(qb, self.tag)
        except Exception as e:
            time.sleep(0.5)
            if not m.is_running():
                raise Fail('%s exited at start (%s): %s' % (
                    self.tag, m.exitcode(), self.ctx.tail('qemu-' + self.tag)))
            raise Fail('%s: QMP connection failed: %r' % (self.tag, e))
        console.attach(m.console_socket, self.tag, current)

    @property
    def pid(self):
        return self.machine.get_pid() if self.machine else None

    def running(self):
        return self.machine is not None and self.machine.is_running()

    def status(self, timeout=5.0):
        return self.qmp.cmd('query-status', timeout=timeout)

    def wait_exit(self, deadline):
        """the guest powered off: QEMU exits by itself"""
        while self.machine.is_running():
            if time.monotonic() >= deadline:
                raise Fail('%s did not exit after the guest powered off' % self.tag)
            time.sleep(0.05)
        self.ctx.console.drained(self.tag, 5)
        self.reap()

    def reap(self):
        """clean up after QEMU exited (QEMUMachine's post-shutdown)"""
        if self.qmp:
            self.qmp.close()
        with contextlib.suppress(AbnormalShutdown, subprocess.TimeoutExpired):
            self.machine.wait(timeout=5)

    def kill(self, grace=1.0):
        """stop QEMU: SIGTERM (a clean exit: sanitizer reports are written),
        then SIGKILL"""
        if self.machine is None:
            return
        pid = self.machine.get_pid()
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            dl = time.monotonic() + grace
            while self.machine.is_running() and time.monotonic() < dl:
                time.sleep(0.05)
        if self.machine.is_running():
            if self.qmp:
                self.qmp.close()
            self.machine.shutdown(hard=True)
        else:
            self.ctx.console.drained(self.tag, 2)
            self.reap()

    def exitcode(self):
        return self.machine.exitcode() if self.machine else None


# --------------------------------------------------------------------------
# accelerator

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
            base.Procs.signal(p, signal.SIGKILL)
            p.wait()
        shutil.rmtree(w, ignore_errors=True)
