"""QEMU control: VM, a qemu.machine.QEMUMachine (from the QEMU tree's
python/, as the iotests use it) that knows its disks and builds its own
command line, with QMP through qemu.qmp's QMPClient on a private event
loop in a thread (Monitor), so that several threads may send commands and
events are collected as QEMU sends them.  Every event is kept with QEMU's
own time stamp (its "timestamp" member), on the harness's clock
(time.monotonic()), so that the time of an event does not depend on when
the harness got to read it."""

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import re
import socket
import subprocess
import tempfile
import threading
import time

from qemu.machine import QEMUMachine
from qemu.machine.machine import AbnormalShutdown, VMLaunchFailure
from qemu.qmp import ExecInterruptedError, ExecuteError, QMPClient, QMPError, Runstate

from .checks import Fail
from .paths import CACHE
from .process import run_cmd
from .storage import drive_opts

LOG = logging.getLogger('harness')


# --------------------------------------------------------------------------
# QMP

class Monitor:
    """A QMP connection (qemu.qmp.QMPClient) on a private event loop.
    events: [(time, event dict)] in arrival order; time is QEMU's time
    stamp of the event, on time.monotonic()'s clock."""

    def __init__(self, sock, tag, timeout=20.0):
        self.tag = tag
        self.cond = threading.Condition()
        self.events = []
        self.closed = False
        self.client = None
        self.tasks = []
        # QEMU stamps events with the real-time clock
        self.clock_offset = time.time() - time.monotonic()
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

    def event_time(self, msg):
        ts = msg.get('timestamp')
        if not ts or ts.get('seconds', -1) < 0:
            return time.monotonic()
        return ts['seconds'] + ts['microseconds'] / 1e6 - self.clock_offset

    async def _pump_events(self):
        async for ev in self.client.events:
            msg = dict(ev)
            t = self.event_time(msg)
            with self.cond:
                self.events.append((t, msg))
                self.cond.notify_all()
            LOG.debug('%s event %s %s', self.tag, msg['event'],
                      json.dumps(msg.get('data', {}))[:200])

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

    def next_event(self, name, deadline, start=0, pred=None):
        """first event `name` (or one of the names, a tuple) at index >=
        start (matching pred): (index, time, event), or None at the
        deadline; Fail if QMP closed first"""
        names = (name,) if isinstance(name, str) else tuple(name)
        i = start
        with self.cond:
            while True:
                while i < len(self.events):
                    t, ev = self.events[i]
                    if ev['event'] in names and (pred is None or pred(ev)):
                        return i, t, ev
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                if self.closed:
                    raise Fail('%s: QMP closed while waiting for %s' % (self.tag, name))
                self.cond.wait(left)

    def wait_event(self, name, deadline, start=0, pred=None):
        """as next_event, but Fail at the deadline"""
        r = self.next_event(name, deadline, start, pred)
        if r is None:
            raise Fail('%s: timeout waiting for event %s' % (self.tag, name))
        return r

    def mark(self):
        """the index the next event will have (for wait_event's start)"""
        with self.cond:
            return len(self.events)

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
# devices

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


# --------------------------------------------------------------------------
# QEMU

class VM(QEMUMachine):
    """One QEMU process: its disks, QMP monitor (Monitor) and console (fed
    to a console.Console).  `ctx` gives the work directory, the guest
    (env.kernel, env.initrd, env.accel, env.retry_props) and the list of
    QEMUs to stop at clean-up."""

    def __init__(self, ctx, binary, tag, storage=None, device=None, policy=None,
                 append='', incoming=None, disks=None, smp=1, iothreads=(),
                 mem=256, extra_args=(), no_reboot=True):
        super().__init__(binary, name='qemu-' + tag, base_temp_dir=ctx.workdir,
                         log_dir=ctx.workdir)
        self.set_qmp_monitor(False)        # Monitor instead (threads, events)
        self.ctx = ctx
        self.tag = tag
        self.disks = disks or [Disk(storage, device, policy or {})]
        self.append = append
        self.incoming = incoming
        self.smp = smp
        self.iothreads = list(iothreads)
        self.mem = mem
        self.extra_args = list(extra_args)
        self.no_reboot = no_reboot
        self.qmp = None
        self.console = None
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

    def policy_props(self, disk, policy):
        """a policy with this binary's names of the retry properties"""
        names = self.ctx.env.retry_props.get(disk.device)
        out = {}
        for k, v in policy.items():
            if names and k.replace('_', '-') == 'retry-interval':
                k = names[0]
            elif names and k.replace('_', '-') == 'retry-timeout':
                k = names[1]
            out[k] = v
        out.update(disk.dev_props)
        return out

    def device_props(self, disk):
        """the -device (or device_add) properties of a disk"""
        props = {'driver': QDEV[disk.device], 'drive': disk.node, 'id': disk.qdev_id}
        if disk.device == 'scsi-hd':
            props['bus'] = 'scsi0.0'
        props.update(self.policy_props(disk, disk.policy))
        return props

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
            if d.device == 'scsi-hd' and not hba:
                hp = {'driver': 'virtio-scsi-pci', 'id': 'scsi0'}
                hp.update(d.hba_props)
                a += ['-device', self._device_arg(hp)]
                hba = True
            a += ['-device', self._device_arg(self.device_props(d))]
        return a

    def guest_args(self):
        env = self.ctx.env
        a = ['-accel', env.accel, '-m', str(self.mem), '-smp', str(self.smp),
             '-nodefaults'] + (['-no-reboot'] if self.no_reboot else []) + [
             '-kernel', env.kernel, '-initrd', env.initrd, '-append', self.append]
        for io in self.iothreads:
            a += ['-object', 'iothread,id=%s' % io]
        if env.accel == 'kvm':
            a += ['-cpu', 'host']
        a += self.disk_args()
        a += self.extra_args
        if self.incoming:
            a += ['-incoming', self.incoming]
        else:
            a += ['-S']
        return a

    def start(self, console, current=True):
        """launch QEMU (paused, or waiting for a migration), connect QMP and
        the serial console (both over socket pairs)"""
        qa, qb = socket.socketpair()
        sa, sb = socket.socketpair()
        for s in (qa, sa):
            os.set_inheritable(s.fileno(), True)
        self.add_args(*self.guest_args())
        self.add_args('-chardev', 'socket,id=qmp0,fd=%d' % qa.fileno(),
                      '-mon', 'chardev=qmp0,mode=control',
                      '-chardev', 'socket,id=ser0,fd=%d' % sa.fileno(),
                      '-serial', 'chardev:ser0')
        LOG.debug('start qemu-%s: %s %s', self.tag, self.binary, ' '.join(self.args))
        self.t_spawn = time.monotonic()
        try:
            self.launch()
        except VMLaunchFailure as e:
            qb.close()
            sb.close()
            raise Fail('%s: could not start %s (exit %s): %s' % (
                self.tag, self.binary, e.exitcode,
                (e.output or repr(e.__cause__)).strip().replace('\n', ' | ')[-400:]))
        finally:
            qa.close()
            sa.close()
        self.ctx.qemus.append(self)
        self.console = console
        console.attach(sb, self.tag, current)
        try:
            self.qmp = Monitor(qb, self.tag)
        except Exception as e:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._subp.wait(1)
            if not self.is_running():
                raise Fail('%s exited at start (%s): %s' % (
                    self.tag, self.exitcode(), self.ctx.tail('qemu-' + self.tag)))
            raise Fail('%s: QMP connection failed: %r' % (self.tag, e))

    @property
    def pid(self):
        return self.get_pid()

    def running(self):
        return self.is_running()

    def status(self, timeout=5.0):
        return self.qmp.cmd('query-status', timeout=timeout)

    def wait_running(self, timeout, what='running'):
        """the VM runs: now, or at its next RESUME event"""
        i = self.qmp.mark()
        if self.status()['status'] != 'running':
            self.qmp.wait_event('RESUME', time.monotonic() + timeout, start=i)
        return True

    def _post_shutdown(self):
        if self.console is not None:
            # its end of file follows QEMU's exit: every line is read
            self.console.drained(self.tag, 5)
        if self.qmp:
            self.qmp.close()
        super()._post_shutdown()

    def wait_exit(self, deadline):
        """QEMU exits by itself (the guest powered off, or quit was sent):
        QEMUMachine.wait; past the deadline it is killed, and this fails"""
        try:
            self.wait(timeout=max(0.1, deadline - time.monotonic()))
        except AbnormalShutdown:
            raise Fail('%s did not exit (killed)' % self.tag)

    def terminate(self, grace=1.0):
        """stop QEMU: SIGTERM (a clean exit: sanitizer reports and trace
        files are written), SIGKILL after `grace` s (QEMUMachine.shutdown
        without a QMP connection of its own)"""
        with contextlib.suppress(AbnormalShutdown):
            self.shutdown(timeout=grace)


# --------------------------------------------------------------------------
# accelerator

def pick_accel(accel, qemu, kernel, initrd):
    """accel 'auto': kvm if a guest really boots under it here (cached)"""
    if accel != 'auto':
        return accel
    if not os.access('/dev/kvm', os.R_OK | os.W_OK):
        return 'tcg'
    st = os.stat(qemu)
    key = '%s %d %s %s' % (qemu, st.st_mtime, os.uname().release, kernel)
    cache = os.path.join(CACHE, 'kvm-probe.json')
    with contextlib.suppress(OSError, ValueError):
        with open(cache) as f:
            c = json.load(f)
        if c.get('key') == key:
            return c['accel']
    accel = 'kvm' if probe_kvm(qemu, kernel, initrd) else 'tcg'
    with contextlib.suppress(OSError):
        with open(cache, 'w') as f:
            json.dump({'key': key, 'accel': accel}, f)
    return accel


def probe_kvm(qemu, kernel, initrd, timeout=15):
    """does a guest really boot under KVM here? (a nested host may say no):
    its console shows the init's first line, or QEMU exits, or time runs out"""
    with tempfile.TemporaryDirectory(prefix='e2e-kvmprobe-') as w:
        m = QEMUMachine(qemu, args=[
            '-accel', 'kvm', '-cpu', 'host', '-m', '256', '-nodefaults', '-no-reboot',
            '-kernel', kernel, '-initrd', initrd, '-append', 'quiet console=ttyS0 panic=-1'],
            base_temp_dir=w, log_dir=w)
        m.set_qmp_monitor(False)
        m.set_console()
        try:
            m.launch()
        except VMLaunchFailure:
            return False
        try:
            f = m.console_socket
            f.settimeout(1.0)
            buf = b''
            dl = time.monotonic() + timeout
            while time.monotonic() < dl and b'E2E-INIT' not in buf:
                with contextlib.suppress(socket.timeout):
                    d = f.recv(65536)
                    if not d:
                        break           # QEMU exited
                    buf += d
            return b'E2E-INIT' in buf
        finally:
            m.kill()
