"""Management operations during an outage.

The manual lists what a hung disk breaks: queries of its capacity, online
resize, snapshots and their merge, hot-plug and unplug, stop/cont, reset,
graceful and forced shutdown, live migration and its cancel, suspend
(snapshot-save), CD changes.  Each scenario here runs one of them (the
queries as one family) while the guest's disk is really hung, as an
operator would: the guest writes and fsyncs, the storage fails, the guest
hangs, and 2 s later the operation is sent.  The storage comes back after
the outage (unless the operation ended the VM), the guest finishes.

Every run measures the time to the QMP reply and to the operation's
completion event, records the outcome (works / fails at once with the
error / no reply), probes query-status every 100 ms from boot to the end
(the main loop must never stall: p99 < 50 ms), and verifies on the host
every file the guest ever acknowledged (the guest prints E2E-ACK per fsync;
the image is mounted in a copy, the files checked, then e2fsck -fn), so
operations that end the VM are checked too.

Two variants: 'op-<name>' is the series (werror/rerror=retry on the
patched binary), 'op-<name>-stop' the baseline (werror/rerror=stop on the
upstream binary, the harness sends cont once the storage is back, as a
manager would).  The retry variant fails when an operation hangs, fails
where it must work, corrupts or loses an acknowledged write, or stalls the
monitor; the baseline only records (its data must still verify).
`run.py --ops-table` runs both and prints the table README.md shows."""

import contextlib
import json
import os
import threading
import time

from harness.checks import check, Fail
from harness.process import run_cmd
from harness.report import percentile
from harness.storage import FileStorage, NbdStorage
from harness.workload import (acks_on_console, boot, check_guest_clean, finish, guest_append,
                              guest_result, last_progress, outage_wait, wait_hung, wait_progress,
                              warmup)
from harness.workload import host_verify as guest_host_verify

from ..runner import upstream_qemu
from .common import (StopManager, check_episodes, common_setup, make_qemu, new_image,
                     retry_policy, wait_episodes_ended)
from .migration import start_destination

OUTAGE = 8.0            # s; every operation is sent 2 s into the hang
REPLY_HANG_S = 5.0      # a reply slower than this is a hang
QMP_P99_MS = 50.0       # query-status, throughout every run
FAILOVER_MS = 100       # from blockdev-reopen to the end of the hang


class LatencyProbe:
    """query-status every 100 ms on its own thread, until QEMU goes away"""

    def __init__(self, q):
        self.q = q
        self.ms = []
        self.quit = threading.Event()
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.quit.wait(0.1):
            if self.q.qmp is None or self.q.qmp.closed:
                return
            t0 = time.monotonic()
            r = self.q.qmp.cmd('query-status', timeout=10, check=False)
            if 'error' in r:
                return
            self.ms.append((time.monotonic() - t0) * 1000)

    def stop(self):
        self.quit.set()
        self.th.join(15)

    def p99(self):
        return percentile(self.ms, 99) if self.ms else None


class OpRun:
    """one operation scenario: its QEMU, storage, rows and verdicts"""

    def __init__(self, ctx, device, storage, variant):
        self.ctx = ctx
        self.device = device
        self.storage = storage
        self.variant = variant          # 'retry' (series) or 'stop' (upstream)
        self.fails = []
        self.rows = []
        self.q = None
        self.st = None
        self.ended = False              # the operation ended the VM
        self.guest_lost_disk = False    # the operation took the guest's disk
        self.verify_image = None        # (path, fmt) to check on the host

    @property
    def retry(self):
        return self.variant == 'retry'

    def expect(self, cond, msg):
        """an expectation of the series (the baseline only records)"""
        if self.retry:
            check(cond, self.fails, msg)

    def call(self, what, cmd, args=None, timeout=REPLY_HANG_S * 6):
        """a timed QMP command; its row; returns the reply (or the error)"""
        t0 = time.monotonic()
        r = self.q.qmp.cmd(cmd, args, timeout=timeout, check=False)
        ms = (time.monotonic() - t0) * 1000
        if isinstance(r, dict) and 'error' in r:
            outcome = 'error: %s' % r['error']['desc']
        else:
            outcome = 'ok'
        if ms > REPLY_HANG_S * 1000:
            outcome = 'hangs %.1f s, then %s' % (ms / 1000, outcome)
        self.row(what, ms, outcome)
        self.expect(ms <= REPLY_HANG_S * 1000, '%s: reply after %.0f ms' % (what, ms))
        return r, t0

    def row(self, what, ms, outcome, event=None):
        self.rows.append({'op': what, 'ms': None if ms is None else round(ms, 1),
                          'outcome': outcome, 'event': event})

    def event_after(self, what, name, t0, timeout, pred=None, start=0):
        """time from t0 to the first event `name` (matching pred) or None;
        recorded on the last row"""
        try:
            _, t, ev = self.q.qmp.wait_event(name, time.monotonic() + timeout, start=start,
                                             pred=pred)
        except Fail:
            ev, ms = None, None
        else:
            ms = (t - t0) * 1000
        self.rows[-1]['event'] = ('%s +%.0f ms' % (name, ms) if ms is not None
                                  else '%s not within %.0f s' % (name, timeout))
        return ms, ev

    @property
    def disk(self):
        return self.q.disks[0]


# --------------------------------------------------------------------------
# the operations: during(run) runs in the hang; after(run), if any, once the
# storage is back and the guest wrote again

def op_queries(run):
    r, _ = run.call('query-block', 'query-block')
    if run.retry and isinstance(r, list):
        ret = [b.get('retry') for b in r if b.get('retry')]
        run.expect(ret and ret[0].get('active') and ret[0].get('requests', 0) >= 1,
                   'query-block in the hang: no active episode (%s)' % ret)
    run.call('query-blockstats', 'query-blockstats')
    r, _ = run.call('query-named-block-nodes (capacity)', 'query-named-block-nodes',
                    {'flat': True})
    size = os.path.getsize(run.st.image_path)
    if isinstance(r, list):
        sizes = [n['image']['virtual-size'] for n in r if n.get('node-name') == 'disk0']
        run.expect(sizes == [size], 'query-named-block-nodes: capacity %s, the image has %d'
                   % (sizes, size))
    r, _ = run.call('info block (HMP)', 'human-monitor-command',
                    {'command-line': 'info block'})
    run.expect(isinstance(r, str) and 'disk0' in r, 'info block: %r' % (r,))


def op_resize(run):
    size = run.q.qmp.cmd('query-block')[0]['inserted']['image']['virtual-size']
    run.call('block_resize (qcow2, +16 MiB)', 'block_resize',
             {'node-name': 'disk0', 'size': size + (16 << 20)})
    run.resize_base = size


def op_resize_after(run):
    r, _ = run.call('block_resize after recovery', 'block_resize',
                    {'node-name': 'disk0', 'size': run.resize_base + (32 << 20)})
    got = run.q.qmp.cmd('query-block')[0]['inserted']['image']['virtual-size']
    run.expect('error' not in r and got == run.resize_base + (32 << 20),
               'block_resize after recovery: %s, size %d' % (r, got))


def _snapshot(run, when='in the hang'):
    """an overlay on healthy storage; returns whether it was made.  In the
    hang, QEMU first flushes the disk (blockdev.c, as upstream does): over
    storage that fails, it refuses at once, naming the disk"""
    ov = os.path.join(run.ctx.workdir, 'overlay.qcow2')
    r, _ = run.call('blockdev-snapshot-sync (%s)' % when, 'blockdev-snapshot-sync',
                    {'node-name': 'disk0', 'snapshot-file': ov,
                     'snapshot-node-name': 'ov', 'format': 'qcow2'})
    if 'error' in r:
        run.expect("'disk0'" in r['error']['desc'],
                   'blockdev-snapshot-sync: the error does not name the disk: %s' % r)
        return False
    run.overlay = ov
    return True


def op_snapshot(run):
    run.overlay = None
    _snapshot(run)


def _snapshot_after(run):
    """storage back: the snapshot if the hang refused it, then the merge"""
    if not run.overlay:
        ok = _snapshot(run, 'after recovery')
        run.expect(ok, 'blockdev-snapshot-sync after recovery failed')
        return ok
    return True


def _job(run, what, cmd, args, job, ready):
    n0 = len(run.q.qmp.events)
    r, t0 = run.call(what, cmd, args)
    if 'error' in r:
        run.expect(False, '%s: %s' % (what, r))
        return
    if ready:
        ms, _ = run.event_after(what, 'BLOCK_JOB_READY', t0, 120, start=n0,
                                pred=lambda ev: ev['data'].get('device') == job)
        run.expect(ms is not None, '%s: no BLOCK_JOB_READY' % what)
        if ms is None:
            return
        r, t0 = run.call('job-complete', 'job-complete', {'id': job})
    ms, ev = run.event_after(what, 'BLOCK_JOB_COMPLETED', t0, 120, start=n0,
                             pred=lambda ev: ev['data'].get('device') == job)
    run.expect(ms is not None and not ev['data'].get('error'),
               '%s: BLOCK_JOB_COMPLETED %s' % (what, ev and ev['data']))


def op_commit_after(run):
    if not _snapshot_after(run):
        return
    _job(run, 'block-commit (merge, after recovery)', 'block-commit',
         {'job-id': 'commit0', 'device': 'ov'}, 'commit0', True)


def op_stream_after(run):
    if not _snapshot_after(run):
        return
    _job(run, 'block-stream (merge, after recovery)', 'block-stream',
         {'job-id': 'stream0', 'device': 'ov'}, 'stream0', False)
    # the data now lives in the overlay alone
    run.verify_image = (run.overlay, 'qcow2')


def _add_healthy_disk(run, name, size_mb=16):
    img = new_image(run.ctx, name=name, label=name, size_mb=size_mb)
    run.call('blockdev-add (healthy file)', 'blockdev-add',
             dict(FileStorage(run.ctx, img).blockdev(name)))
    return img


def _device_props(run, node, qid):
    props = {'driver': 'virtio-blk-pci' if run.device == 'virtio-blk' else 'scsi-hd',
             'drive': node, 'id': qid}
    if run.device == 'scsi-hd':
        props['bus'] = 'scsi0.0'
    return props


def op_hotplug(run):
    _add_healthy_disk(run, 'hp0')
    r, _ = run.call('device_add (second disk)', 'device_add', _device_props(run, 'hp0', 'hp0dev'))
    run.expect('error' not in r, 'device_add: %s' % r)
    outage_wait(run.ctx, time.monotonic() + 2)      # the guest sees the new disk
    n0 = len(run.q.qmp.events)
    r, t0 = run.call('device_del (the second disk)', 'device_del', {'id': 'hp0dev'})
    ms, _ = run.event_after('device_del', 'DEVICE_DELETED', t0, 20, start=n0,
                            pred=lambda ev: ev['data'].get('device') == 'hp0dev')
    run.expect(ms is not None, 'device_del of the healthy disk: no DEVICE_DELETED in 20 s')
    run.hp_pending = None if ms is not None else (n0, t0)


def op_hotplug_after(run):
    if run.hp_pending:
        n0, t0 = run.hp_pending
        run.row('(DEVICE_DELETED of the second disk, VM running again)', None, 'waited')
        run.event_after('device_del', 'DEVICE_DELETED', t0, 30, start=n0,
                        pred=lambda ev: ev['data'].get('device') == 'hp0dev')
    run.call('blockdev-del (second disk)', 'blockdev-del', {'node-name': 'hp0'})


def op_unplug_hung(run):
    qid = run.disk.qdev_id
    n0 = len(run.q.qmp.events)
    r, t0 = run.call('device_del (the hung disk)', 'device_del', {'id': qid})
    run.unplug = (n0, t0)
    run.guest_lost_disk = True
    # scsi-hd goes at once; virtio-blk needs the guest, which first waits
    # for its own request in flight (the parked one)
    ms, _ = run.event_after('device_del', 'DEVICE_DELETED', t0, 4, start=n0,
                            pred=lambda ev: ev['data'].get('device') == qid)
    run.unplug_done = ms is not None


def op_unplug_hung_after(run):
    qid = run.disk.qdev_id
    n0, t0 = run.unplug
    if not run.unplug_done:
        run.row('(DEVICE_DELETED of the hung disk, storage back)', None, 'waited')
        ms, _ = run.event_after('device_del', 'DEVICE_DELETED', t0, 30, start=n0,
                                pred=lambda ev: ev['data'].get('device') == qid)
        run.expect(ms is not None, 'device_del of the hung disk: never completed')
    # the device and its parked requests are gone: the monitor and the
    # retry counters say so
    blocks = run.q.qmp.cmd('query-block')
    run.expect(not any(b.get('qdev') in (qid, run.disk.qom_path) for b in blocks),
               'the unplugged disk is still in query-block')


def op_stop_cont(run):
    q = run.q
    n0 = len(q.qmp.events)
    r, t0 = run.call('stop', 'stop')
    run.event_after('stop', 'STOP', t0, 5, start=n0)
    outage_wait(run.ctx, time.monotonic() + 1)
    n0 = len(q.qmp.events)
    r, t0 = run.call('cont', 'cont')
    run.event_after('cont', 'RESUME', t0, 5, start=n0)
    run.expect(q.status()['status'] == 'running', 'not running after cont')


def op_reset(run):
    n0 = len(run.q.qmp.events)
    run.boot_idx = run.ctx.console.count()
    r, t0 = run.call('system_reset', 'system_reset')
    run.event_after('system_reset', 'RESET', t0, 5, start=n0)
    run.rebooting = True


def op_powerdown(run):
    n0 = len(run.q.qmp.events)
    r, t0 = run.call('system_powerdown', 'system_powerdown')
    run.event_after('system_powerdown', 'POWERDOWN', t0, 5, start=n0)
    idx = run.ctx.console.count()
    try:
        run.ctx.console.wait(r'E2E-POWERBUTTON', time.monotonic() + 10, start=idx,
                             what='power button')
        seen = 'the guest starts its shutdown'
    except Fail:
        seen = 'the guest did not see the power button'
    run.row('(guest)', None, seen)
    run.powerdown_t = t0
    run.graceful = True


def op_quit(run):
    n0 = len(run.q.qmp.events)
    r, t0 = run.call('quit', 'quit')
    _exit_wait(run, 'quit', t0, n0)


def _exit_wait(run, what, t0, n0):
    try:
        run.q.wait_exit(time.monotonic() + 30)
        ms = (time.monotonic() - t0) * 1000
        out = 'QEMU exited +%.0f ms (status %s)' % (ms, run.q.exitcode())
    except Fail:
        ms, out = None, 'QEMU still running after 30 s'
        run.q.terminate()
    run.rows[-1]['event'] = out
    run.expect(ms is not None and ms <= REPLY_HANG_S * 1000 and run.q.exitcode() == 0,
               '%s: %s' % (what, out))
    run.ended = True


def op_kill(run):
    t0 = time.monotonic()
    os.kill(run.q.pid, 9)
    run.q.wait_exit(time.monotonic() + 30)
    run.row('SIGKILL', (time.monotonic() - t0) * 1000, 'QEMU gone')
    run.ended = True


def migrate_prepare(run):
    # before the outage: the destination opens the same storage
    run.dst = start_destination(run.ctx, run.q, 'dst')


def op_migrate_cancel(run):
    src = run.q
    dst, uri = run.dst
    src.qmp.cmd('migrate-set-capabilities',
                {'capabilities': [{'capability': 'events', 'state': True}]})
    src.qmp.cmd('migrate-set-parameters', {'max-bandwidth': 1 << 20})
    n0 = len(src.qmp.events)
    r, t0 = run.call('migrate (1 MiB/s)', 'migrate', {'uri': uri})
    run.event_after('migrate', 'MIGRATION', t0, 10, start=n0,
                    pred=lambda ev: ev['data'].get('status') == 'active')
    outage_wait(run.ctx, time.monotonic() + 1)
    n0 = len(src.qmp.events)
    r, t0 = run.call('migrate_cancel', 'migrate_cancel')
    ms, _ = run.event_after('migrate_cancel', 'MIGRATION', t0, 20, start=n0,
                            pred=lambda ev: ev['data'].get('status') == 'cancelled')
    run.expect(ms is not None and ms <= REPLY_HANG_S * 1000,
               'migrate_cancel: not cancelled (%s)' % run.rows[-1]['event'])
    dst.terminate()
    st = src.status()['status']
    run.expect(st == 'running', 'source status %s after the cancel' % st)


def op_snapshot_save(run):
    q = run.q
    n0 = len(q.qmp.events)
    r, t0 = run.call('snapshot-save (vmstate on a healthy qcow2)', 'snapshot-save',
                     {'job-id': 'save0', 'tag': 'snap0', 'vmstate': 'vmst',
                      'devices': ['vmst']})
    if 'error' in r:
        return
    ms, ev = run.event_after('snapshot-save', 'JOB_STATUS_CHANGE', t0, 60, start=n0,
                             pred=lambda ev: ev['data'].get('id') == 'save0' and
                             ev['data'].get('status') == 'concluded')
    jobs = [j for j in q.qmp.cmd('query-jobs') if j.get('id') == 'save0']
    err = jobs[0].get('error') if jobs else None
    if err:
        run.rows[-1]['outcome'] = 'job failed: %s' % err
    run.expect(ms is not None and ms <= REPLY_HANG_S * 1000,
               'snapshot-save: %s' % run.rows[-1]['event'])
    q.qmp.cmd('job-dismiss', {'id': 'save0'}, check=False)
    st = q.status()['status']
    if run.retry:
        run.expect(st == 'running', 'status %s after snapshot-save' % st)


def _vmstate_disk(run):
    img = os.path.join(run.ctx.workdir, 'vmstate.qcow2')
    run_cmd([run.ctx.env.qemu_img, 'create', '-q', '-f', 'qcow2', img, '512M'])
    return ['-blockdev', json.dumps({'driver': 'qcow2', 'node-name': 'vmst',
                                     'file': {'driver': 'file', 'filename': img}})]


def _cdrom(run):
    return ['-device', 'ide-cd,id=cd0,bus=ide.1,unit=0']


def op_cdrom(run):
    iso = os.path.join(run.ctx.workdir, 'medium.iso')
    with open(iso, 'wb') as f:
        f.truncate(4 << 20)
    n0 = len(run.q.qmp.events)
    r, t0 = run.call('blockdev-change-medium (CD beside the hung disk)',
                     'blockdev-change-medium', {'id': 'cd0', 'filename': iso, 'format': 'raw'})
    run.expect('error' not in r, 'blockdev-change-medium: %s' % r)
    run.event_after('change-medium', 'DEVICE_TRAY_MOVED', t0, 5, start=n0)
    n0 = len(run.q.qmp.events)
    r, t0 = run.call('eject (CD)', 'eject', {'id': 'cd0', 'force': True})
    run.expect('error' not in r, 'eject: %s' % r)
    run.event_after('eject', 'DEVICE_TRAY_MOVED', t0, 5, start=n0,
                    pred=lambda ev: ev['data'].get('tray-open'))


def op_fail_shutdown(run):
    """the guest begins a graceful shutdown (the workload stops, syncs and
    verifies, then init unmounts, checks and powers off): in the hang it
    cannot finish; block-retry-fail hands the error to the guest, which
    then does"""
    ctx = run.ctx
    idx = ctx.console.count()
    t0 = time.monotonic()
    ctx.console.send('\nE2E-STOP\n')
    outage_wait(ctx, time.monotonic() + 3)
    done = ctx.console.find(r'E2E-RESULT', t0)
    run.row('graceful guest shutdown (in the hang)', None,
            'finished' if done else 'blocked on the hung disk (3 s)')
    run.expect(not done, 'the guest finished its shutdown in the hang: the outage did '
               'not hit')
    if not run.retry:
        run.row('block-retry-fail', None, 'no such command: the guest waits for the '
                'storage (or the VM stays paused)')
        run.graceful = True
        return
    r, t0 = run.call('block-retry-fail', 'block-retry-fail', {'id': run.disk.qdev_id})
    try:
        ctx.console.wait(r'E2E-DONE', time.monotonic() + 60, start=idx, what='shutdown')
        run.q.wait_exit(time.monotonic() + 30)
        ms = (time.monotonic() - t0) * 1000
        run.rows[-1]['event'] = 'guest powered off +%.0f ms' % ms
    except Fail:
        run.rows[-1]['event'] = 'guest still up after 60 s'
        run.expect(False, 'block-retry-fail: the guest did not shut down')
        run.q.terminate()
    run.guest_lost_disk = True      # the guest saw the error, by design
    run.ended = True


def _alt_path(run):
    """a second, healthy path to the same data: a second storage daemon
    exporting the image (nbd), or a loop device straight on the image file
    (fuse); returns its protocol node options"""
    ctx = run.ctx
    if run.storage.startswith('nbd'):
        alt = NbdStorage(ctx, run.st.image_path, ctx.env.qsd, 0,
                         tcp=run.storage == 'nbd-tcp', name='nbd-alt')
        alt.start()
        ctx.cleanups.callback(alt.stop)
        return alt.protocol('alt')
    loop = run_cmd(['losetup', '--direct-io=on', '-f', '--show',
                    run.st.image_path]).strip()
    ctx.cleanups.callback(run_cmd, ['losetup', '-d', loop], check=False)
    return {'driver': 'host_device', 'filename': loop, 'cache': {'direct': True},
            'aio': ctx.args.aio}


def op_failover(run):
    q = run.q
    opts = dict(_alt_path(run), **{'node-name': 'alt'})
    run.call('blockdev-add (second path)', 'blockdev-add', opts)
    r, t0 = run.call('blockdev-reopen (format node onto the second path)', 'blockdev-reopen',
                     {'options': [{'driver': 'raw', 'node-name': 'disk0', 'file': 'alt'}]})
    run.expect('error' not in r, 'blockdev-reopen: %s' % r)
    n0 = len(q.qmp.events)
    if run.retry:
        r, t1 = run.call('block-retry-resubmit', 'block-retry-resubmit',
                         {'id': run.disk.qdev_id})
        ms, _ = run.event_after('failover', 'BLOCK_IO_RETRY_END', t0, 10, start=n0)
        run.failover_ms = ms
        run.expect(ms is not None and ms <= FAILOVER_MS,
                   'failover: the hang did not end within %d ms of the reopen (%s)' %
                   (FAILOVER_MS, run.rows[-1]['event']))
    else:
        r, t1 = run.call('cont', 'cont')
        run.event_after('failover', 'RESUME', t0, 10, start=n0)
    run.failed_over = 'error' not in r


OPS = [
    # name, doc, during, after, extra QEMU arguments, image format; the
    # preparations before the outage are in PREPARE
    ('queries', 'query-block, query-blockstats, query-named-block-nodes (capacity), '
     'info block', op_queries, None, None, 'raw'),
    ('resize', 'block_resize of the hung disk (qcow2), again after recovery',
     op_resize, op_resize_after, None, 'qcow2'),
    ('snapshot-commit', 'blockdev-snapshot-sync onto healthy storage in the hang (or, '
     'refused, after recovery), block-commit after recovery', op_snapshot, op_commit_after,
     None, 'raw'),
    ('snapshot-stream', 'blockdev-snapshot-sync in the hang (or after recovery), '
     'block-stream after recovery', op_snapshot, op_stream_after, None, 'raw'),
    ('hotplug', 'device_add of a second (healthy) disk and device_del of it',
     op_hotplug, op_hotplug_after, None, 'raw'),
    ('unplug-hung', 'device_del of the hung disk', op_unplug_hung, op_unplug_hung_after,
     None, 'raw'),
    ('stop-cont', 'stop, 1 s, cont', op_stop_cont, None, None, 'raw'),
    ('reset', 'system_reset; the guest reboots once the storage is back', op_reset, None,
     None, 'raw'),
    ('powerdown', 'system_powerdown (ACPI): the guest shuts down gracefully once the '
     'storage is back', op_powerdown, None, None, 'raw'),
    ('quit', 'quit', op_quit, None, None, 'raw'),
    ('kill', 'SIGKILL of QEMU', op_kill, None, None, 'raw'),
    ('migrate-cancel', 'migrate (1 MiB/s), then migrate_cancel', op_migrate_cancel, None,
     None, 'raw'),
    ('snapshot-save', 'snapshot-save (suspend) with the vmstate on healthy storage',
     op_snapshot_save, None, _vmstate_disk, 'raw'),
    ('cdrom', 'blockdev-change-medium and eject of a CD beside the hung disk', op_cdrom,
     None, _cdrom, 'raw'),
    ('fail-shutdown', 'graceful guest shutdown, blocked by the hang; block-retry-fail '
     'lets it finish', op_fail_shutdown, None, None, 'raw'),
    ('failover', 'blockdev-reopen of the format node onto a second path to the same data, '
     'block-retry-resubmit', op_failover, None, None, 'raw'),
]


PREPARE = {'migrate-cancel': migrate_prepare}


# --------------------------------------------------------------------------
# one run

def host_verify(run, fails):
    """every file the guest acknowledged, in a copy of the image (mounted:
    the journal is replayed), then e2fsck -fn of the copy"""
    acks = acks_on_console(run.ctx.console)
    path, fmt = run.verify_image or (run.st.image_path, run.st.fmt)
    v, out, fsck_rc, findings = guest_host_verify(run.ctx, path, fmt, acks)
    check(acks and v.get('checked') == len(acks) and v.get('ok') == len(acks), fails,
          'host verification of %d acknowledged files: %s' % (len(acks), out[-200:]))
    # a guest that lost its disk, or was told of the error, may leave the
    # journal aborted: e2fsck's verdict is then recorded, not required
    if not run.guest_lost_disk:
        check(fsck_rc == 0, fails, 'host e2fsck -fn: rc=%d %s' % (fsck_rc,
                                                                 ' / '.join(findings)))
    return len(acks), v, fsck_rc


def run_op(ctx, device, storage, variant, name):
    _, doc, during, after, extra, fmt = next(o for o in OPS if o[0] == name)
    a = ctx.args
    if variant == 'retry':
        binary = ctx.env.qemu
        pol = retry_policy(a, 1000, 0)
    else:
        binary = upstream_qemu(ctx.env)
        pol = {'werror': 'stop', 'rerror': 'stop'}
    run = OpRun(ctx, device, storage, variant)
    run.st = common_setup(ctx, device, storage, fmt=fmt)
    run.q = q = make_qemu(ctx, binary, run.st, device, pol, guest_append(a, 'e2e.acks=1'),
                          qemu_kw={'extra_args': extra(run) if extra else [],
                                   'no_reboot': name != 'reset'})
    boot(ctx, q)
    warmup(ctx)
    if name in PREPARE:
        PREPARE[name](run)
    probe = LatencyProbe(q)
    try:
        t_fail = ctx.tl.mark('outage-start')
        run.st.fail()
        if run.retry:
            wait_hung(ctx, q, t_fail)
        else:
            q.qmp.wait_event('STOP', time.monotonic() + 20)
        outage_wait(ctx, time.monotonic() + 0.5)
        during(run)
        outage_wait(ctx, t_fail + OUTAGE)
        ctx.tl.mark('storage-restored')
        run.st.restore()
        res = None
        if not run.ended:
            res = _after_outage(run, after)
    finally:
        probe.stop()
        if getattr(run, 'mgr', None):
            try:
                run.mgr.stop()
            except Fail:
                if q.running():         # else QEMU went away under it
                    raise
    fails = run.fails
    if res is not None and not run.guest_lost_disk and run.retry:
        check_guest_clean(res, fails)
    n_acks, v, fsck_rc = host_verify(run, fails)
    p99 = probe.p99()
    check(p99 is not None and p99 <= QMP_P99_MS, fails,
          'query-status p99 %s ms over %d probes (> %.0f ms)' % (
              p99 and round(p99, 1), len(probe.ms), QMP_P99_MS))
    ctx.info.op_rows = run.rows
    ctx.info.op_probe = {'n': len(probe.ms), 'p99': p99 and round(p99, 1),
                         'max': probe.ms and round(max(probe.ms), 1)}
    rows = '; '.join('%s: %s%s%s' % (r['op'], r['outcome'],
                                     ' (%.0f ms)' % r['ms'] if r['ms'] is not None else '',
                                     ', ' + r['event'] if r['event'] else '')
                     for r in run.rows)
    d = ('%s | query-status p99=%s ms max=%s ms n=%d | acknowledged=%d host_verified=%s '
         'host_fsck_rc=%d%s' % (rows, p99 and round(p99, 1),
                                probe.ms and round(max(probe.ms), 1), len(probe.ms), n_acks,
                                v.get('ok'), fsck_rc,
                                ' guest: written=%s verified=%s write_errors=%s' % (
                                    res.get('written'), res.get('verified'),
                                    res.get('write_errors')) if res else ''))
    return fails, d


def _after_outage(run, after):
    """storage back: the baseline's manager sends cont; the guest writes
    again (or reboots); the operation's second half; the guest finishes"""
    ctx, q = run.ctx, run.q
    if not run.retry:
        # the manager of werror=stop: cont after every stop (over NBD the
        # first attempts may fail again before the client reconnects)
        run.mgr = StopManager(ctx, q)
    if getattr(run, 'rebooting', False):
        ctx.console.wait(r'E2E-START', time.monotonic() + 90, start=run.boot_idx,
                         what='the guest back after the reset')
    if getattr(run, 'graceful', False):
        # the guest's own shutdown goes on once the storage is back
        t0 = time.monotonic()
        try:
            ctx.console.wait(r'E2E-DONE', time.monotonic() + 90, start=0, what='shutdown')
            q.wait_exit(time.monotonic() + 30)
            run.row('(guest shutdown, storage back)', None,
                    'powered off +%.0f ms after the storage returned' %
                    ((time.monotonic() - t0) * 1000))
        except Fail as e:
            run.row('(guest shutdown, storage back)', None, str(e))
            run.expect(False, 'the guest did not power off: %s' % e)
        _, _, m = ctx.console.wait(r'E2E-RESULT (.*)', time.monotonic() + 1, start=0)
        run.ended = True
        return guest_result(ctx.console, m)
    if not run.guest_lost_disk:
        n0 = (last_progress(ctx.console) or {}).get('written', 0)
        wait_progress(ctx.console, lambda t, p: p.get('written', 0) > n0 + 3,
                      time.monotonic() + 60, 'writes after the outage')
    if after:
        after(run)
    if run.retry and not run.guest_lost_disk:
        wait_episodes_ended(q, 30, 'the episode to end')
        check_episodes(ctx, q, run.fails)
    if run.guest_lost_disk:
        ctx.console.send('\nE2E-STOP\n')
        try:
            ctx.console.wait(r'E2E-DONE', time.monotonic() + 120, start=0, what='E2E-DONE')
        except Fail:
            pass
        q.terminate()
        return None
    return finish(ctx, q, 120)


def scenario(name, variant):
    def sc(ctx, device, storage):
        return run_op(ctx, device, storage, variant, name)
    sc.__name__ = 'sc_op_%s_%s' % (name.replace('-', '_'), variant)
    return sc


def save_table(path, results):
    """write the table to path, its data to path.json; runs already in
    path.json that were not run again are kept (so that --scenario can
    redo some of them)"""
    data = {}
    with contextlib.suppress(OSError, ValueError):
        with open(path + '.json') as f:
            data = {tuple(k): v for k, v in json.load(f)}
    for key, rows, probe, status in results:
        data[tuple(key)] = (rows, probe, status)
    with open(path + '.json', 'w') as f:
        json.dump([[list(k), v] for k, v in data.items()], f, indent=1)
    with open(path, 'w') as f:
        f.write(table([(k,) + tuple(v) for k, v in data.items()]) + '\n')


def table(results):
    """markdown: operation x (upstream stop, patched retry)"""
    by = {}
    for (name, variant, dev, sto), rows, probe, status in results:
        by.setdefault(name, {})[variant] = (rows, probe, status, '%s/%s' % (dev, sto))
    out = ['| operation | disk/storage | upstream `werror=stop` (VM paused) | '
           'patched `werror=retry` | query-status p99 (retry) |',
           '| --- | --- | --- | --- | --- |']

    def cell(v):
        if not v:
            return 'not run'
        rows, probe, status, _ = v
        parts = []
        for r in rows:
            s = '%s: %s' % (r['op'], r['outcome'])
            if r['ms'] is not None:
                s += ' %.0f ms' % r['ms']
            if r['event']:
                s += ' (%s)' % r['event']
            parts.append(s)
        return '<br>'.join(parts).replace('|', '/') + ('' if status == 'PASS' else
                                                       ' **FAIL**')
    for name, _, *_ in OPS:
        v = by.get(name, {})
        where = (v.get('retry') or v.get('stop') or (None, None, None, '-'))[3]
        probe = (v.get('retry') or (None, {}))[1] or {}
        out.append('| %s | %s | %s | %s | %s ms |' % (
            name, where, cell(v.get('stop')), cell(v.get('retry')), probe.get('p99')))
    return '\n'.join(out)
