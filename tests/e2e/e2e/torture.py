"""Seeded torture: a guest writing through random outages (10 ms - 20 s,
random gaps) interleaved with random stop/cont, block-retry-set,
block-retry-resubmit, block-retry-fail, system_reset, device_del +
device_add, live migration and its cancel, block jobs, a snapshot merged
again (block-commit), the queries a manager makes and, during an outage, failover to a second path
(blockdev-reopen onto a loop device on the image itself, resubmit, and
back once the outage is over), across virtio-blk and scsi-hd
with the iothread on and off, on the sanitizer build of QEMU (ASan +
UBSan, leak checking at exit).

One image for the whole run, on the failing FUSE storage; the run is a
series of sessions (one QEMU each, or two around a migration), each with
a random device and configuration.  The guest writes every start into a
new directory and prints E2E-ACK for every file whose fsync succeeded.

Checked, and every failure names the seed that reproduces the schedule:
  - QEMU never dies, and exits cleanly at power-off or quit: no crash, no
    sanitizer report (use after free, double free, leak, undefined
    behaviour) in its log;
  - QMP answers during everything (stop, outages, jobs, migration);
  - per disk, retry starts and ends alternate and the ends add up to
    query-blockstats' counters (requests = recovered + failed + dropped:
    no request completed twice or lost by the policy);
  - the guest's own verification of every session's acknowledged files;
  - floors every session must reach: the guest acknowledges a write, then
    meets an outage of 2-5 s with no operation in it (each session's
    first), so each session has acknowledged files, outages and episodes
    (> 0 each);
  - at the end, on the host, every file the guest ever acknowledged, of
    every session, is there with the right content (a copy of the image,
    its journal replayed, mounted on a loop device), and then e2fsck -fn
    of that copy exits 0.
"""

import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import time

from harness import paths
from harness.checks import Fail
from harness.context import RunContext
from harness.process import run_cmd
from harness.vm import VM, Disk
from harness.workload import (acks_on_console, guest_append, host_verify, kv, last_progress,
                              wait_progress)

from .scenarios.common import check_episodes, make_storage, new_image, wait_episodes_ended
from .scenarios.migration import MigWatch

LOG = logging.getLogger('harness')

SANITIZER_RX = re.compile(r'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|'
                          r'UndefinedBehaviorSanitizer|SUMMARY: \w+Sanitizer')

SANITIZER_ENV = {
    # fast_unwind_on_malloc=0: whole allocation stacks (QEMU has no frame
    # pointers), so that a leak report says where, and suppressions match
    'ASAN_OPTIONS': 'detect_leaks=1:abort_on_error=1:print_summary=1:fast_unwind_on_malloc=0',
    'UBSAN_OPTIONS': 'halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1',
}

OPS = [('outage', 6), ('stop-cont', 2), ('retry-set', 2), ('resubmit', 1), ('fail', 1),
       ('reset', 1), ('hotplug', 1), ('migrate', 1), ('job', 2), ('snapshot', 1),
       ('migrate-cancel', 1), ('queries', 1)]


COMBOS = [('virtio-blk', False), ('virtio-blk', True), ('scsi-hd', False), ('scsi-hd', True)]


class TortureFail(Fail):
    pass


class Torture:
    def __init__(self, args, env, seed, duration):
        self.args = args
        self.env = env
        self.seed = seed
        self.duration = duration
        self.rng = random.Random(seed)
        self.counts = {}
        self.acks = []            # (dir, seq)
        self.sessions = 0
        self.episodes = 0
        self.problems = []
        self.qemu = env.torture_qemu or env.qemu
        self.n_qemu = 0
        self.boot_idx = None
        self.dumped = set()         # QEMU tags whose events are in qemu-TAG-events.log
        self.scanned = set()        # QEMU tags whose log was scanned

    # ------------------------------------------------------------------
    def count(self, what, n=1):
        self.counts[what] = self.counts.get(what, 0) + n

    def log(self, msg):
        """the schedule as it happens: -v, and always torture.log in the work
        directory (with the QMP events of every QEMU, qemu-TAG-events.log)"""
        LOG.debug('torture seed=%d: %s', self.seed, msg)
        ctx = getattr(self, 'ctx', None)
        if ctx is not None:
            with open(os.path.join(ctx.workdir, 'torture.log'), 'a') as f:
                f.write('%.3f %s\n' % (time.monotonic(), msg))

    def problem(self, msg):
        self.problems.append(msg)
        self.log('PROBLEM ' + msg)

    def run(self):
        ctx = RunContext('torture/seed-%d' % self.seed, self.env, self.args)
        self.ctx = ctx
        t_end = time.monotonic() + self.duration
        try:
            # (the caller's own settings win, e.g. fast_unwind_on_malloc=0
            # for whole allocation stacks in a leak report)
            for k, v in SANITIZER_ENV.items():
                os.environ.setdefault(k, v)
            os.environ.setdefault('LSAN_OPTIONS', 'suppressions=' + os.path.join(
                paths.REPO, 'tests', 'asan', 'lsan.supp'))
            # large enough for an hour of files (sparse: only what is written)
            image = new_image(ctx, label='e2e', size_mb=self.args.torture_disk_mb)
            self.image = image
            self.st = make_storage(ctx, 'fuse', image)
            self.st.start()
            while True:
                left = t_end - time.monotonic()
                if left < 25 and self.sessions > 0:
                    break
                self.session(max(20.0, min(left, self.rng.uniform(40, 90))))
                if self.problems:
                    break
            self.st.restore()
            self.st.stop()
            self.host_verify()
        except Fail as e:
            self.problem(str(e))
        finally:
            with contextlib.suppress(Exception):
                self.st.restore()
            for q in ctx.qemus:
                self.dump_events(q)
            ctx.close()
            for q in ctx.qemus:
                self.scan_log(q)
        return self.problems

    # ------------------------------------------------------------------
    def policy(self):
        r = self.rng
        return {'werror': 'retry', 'rerror': 'retry',
                'retry_interval': r.choice([0, 100, 300, 1000, 2000]),
                'retry_timeout': r.choice([0, 0, 0, 2000, 8000, 30000])}

    def new_qemu(self, spec=None, incoming=None):
        self.n_qemu += 1
        tag = 'q%d' % self.n_qemu
        if spec is None:
            spec = self.spec
        return VM(self.ctx, self.qemu, tag, incoming=incoming, **spec)

    def session(self, seconds):
        ctx = self.ctx
        self.sessions += 1
        # the sessions cycle through device x iothread, from an offset the
        # seed gives (seed 1: virtio-blk with an iothread, seed 2: scsi-hd
        # without ...), so that a few sessions cover all four
        device, iothread = COMBOS[(self.seed + self.sessions - 1) % len(COMBOS)]
        pol = self.policy()
        dev_props, hba_props = {}, {}
        if iothread:
            if device == 'virtio-blk':
                dev_props = {'iothread': 'io0'}
            else:
                hba_props = {'iothread': 'io0'}
        self.device = device
        self.disk = Disk(self.st, device, pol, dev_props=dev_props, hba_props=hba_props)
        # no -no-reboot: system_reset must reset, not shut down
        self.spec = dict(disks=[self.disk], iothreads=['io0'] if iothread else [],
                         append=guest_append(self.args, 'e2e.acks=1 e2e.max=100000'),
                         no_reboot=False)
        self.log('session %d: %s iothread=%s policy=%s, %.0f s' % (
            self.sessions, device, iothread, pol, seconds))
        self.count('session-%s%s' % (device, '-iothread' if iothread else ''))
        q = self.new_qemu()
        self.q = q
        self.boot_idx = idx0 = ctx.console.count()
        t_session = time.monotonic()
        episodes0, outages0 = self.episodes, self.counts.get('outage', 0)
        q.start(ctx.console)
        q.qmp.cmd('cont')
        self.wait_start()
        t_end = time.monotonic() + seconds
        # floors that every session must reach, whatever the schedule: the
        # guest acknowledges a write on healthy storage, and then meets an
        # outage of 2-5 s with no operation in it, long enough that a
        # request of the writing guest is parked: at least one episode
        try:
            ctx.console.wait(r'E2E-ACK ', time.monotonic() + 120, start=idx0,
                             what='a first acknowledged write')
        except Fail as e:
            raise TortureFail('session %d: %s' % (self.sessions, e))
        self.count('outage')
        self.log('op outage (the session\'s first)')
        self.op_outage(length=self.rng.uniform(2.0, 5.0), mid_op=False)
        self.invariants()
        while time.monotonic() < t_end and not self.problems:
            op = self.pick()
            self.count(op)
            self.log('op %s' % op)
            getattr(self, 'op_' + op.replace('-', '_'))()
            self.invariants()
        self.end_session()
        acks = len(ctx.console.find(r'E2E-ACK d=', t_session))
        outages = self.counts.get('outage', 0) - outages0
        episodes = self.episodes - episodes0
        self.log('session %d: %d acknowledged files, %d outages, %d episodes' % (
            self.sessions, acks, outages, episodes))
        if acks == 0 or outages == 0 or episodes == 0:
            self.problem('session %d: %d acknowledged files, %d outages, %d episodes: '
                         'each must be > 0' % (self.sessions, acks, outages, episodes))

    def pick(self):
        total = sum(w for _, w in OPS)
        x = self.rng.uniform(0, total)
        for name, w in OPS:
            x -= w
            if x <= 0:
                return name
        return OPS[0][0]

    def wait_start(self, timeout=180):
        """the workload (re)started since boot_idx (a console line index)"""
        if self.boot_idx is None:
            return
        try:
            self.ctx.console.wait(r'E2E-START .*dir=(\S+)', time.monotonic() + timeout,
                                  start=self.boot_idx, what='workload start')
        except Fail as e:
            st = self.q.qmp.cmd('query-status', check=False, timeout=5)
            raise TortureFail('%s (VM status %s, %d console lines since)' % (
                e, st, self.ctx.console.count() - self.boot_idx))
        self.boot_idx = None

    def invariants(self):
        q = self.q
        if not q.running():
            raise TortureFail('QEMU %s died (exit %s)' % (q.tag, q.exitcode()))
        t0 = time.monotonic()
        st = q.qmp.cmd('query-status', timeout=5)
        ms = (time.monotonic() - t0) * 1000
        if ms > 5000:
            self.problem('QMP answered in %.0f ms' % ms)
        if not st.get('running'):
            # paused by an error policy set to stop for a moment (retry-set):
            # the manager resumes it
            self.count('resumed-after-' + st.get('status', '?'))
            self.log('  VM %s: cont' % st.get('status'))
            q.qmp.cmd('cont')

    def outage_len(self):
        # log-uniform 10 ms .. 20 s
        return math.exp(self.rng.uniform(math.log(0.01), math.log(20.0)))

    # ------------------------------------------------------------------
    # operations

    def op_outage(self, length=None, mid_op=True):
        r = self.rng
        if length is None:
            length = self.outage_len()
        self.log('  outage %.3f s' % length)
        self.count('outage-seconds', length)
        t_f = self.ctx.tl.mark('outage-start', '%.2f' % length)
        self.st.fail()
        try:
            # sometimes a management operation in the middle of the outage
            if mid_op and length > 1 and r.random() < 0.6:
                time.sleep(r.uniform(0, min(length, 5)))
                op = r.choice(['stop-cont', 'retry-set', 'resubmit', 'fail', 'reset',
                               'hotplug', 'migrate', 'job', 'failover', 'snapshot',
                               'migrate-cancel', 'queries'])
                self.count('in-outage-' + op)
                self.log('  during the outage: %s' % op)
                getattr(self, 'op_' + op.replace('-', '_'))(in_outage=True)
            left = t_f + length - time.monotonic()
            if left > 0:
                time.sleep(left)
        finally:
            self.st.restore()
            self.ctx.tl.mark('storage-restored')
        self.back_on_failing_path()
        self.wait_start()          # a reboot that began during the outage
        time.sleep(r.uniform(0, 3))

    def op_stop_cont(self, in_outage=False):
        q = self.q
        q.qmp.cmd('stop')
        time.sleep(self.rng.uniform(0.05, 2))
        q.qmp.cmd('cont')

    def retry_id(self):
        return self.disk.qom_path

    def op_retry_set(self, in_outage=False):
        r = self.rng
        args = {'id': self.retry_id()}
        for k, choices in (('interval', [0, 50, 200, 1000, 3000]),
                           ('timeout', [0, 0, 500, 5000, 60000]),
                           ('write-policy', ['retry', 'retry', 'report', 'stop', 'enospc']),
                           ('read-policy', ['retry', 'retry', 'report', 'stop'])):
            if r.random() < 0.5:
                args[k] = r.choice(choices)
        self.log('  block-retry-set %s' % args)
        self.q.qmp.cmd('block-retry-set', args)
        if args.get('write-policy') == 'stop' or args.get('read-policy') == 'stop':
            # a stop policy pauses the VM on an error: resume it and put
            # retry back, as a manager would
            self.q.qmp.cmd('block-retry-set', {'id': self.retry_id(),
                                               'write-policy': 'retry',
                                               'read-policy': 'retry'})
            st = self.q.status()
            if st.get('status') != 'running':
                self.q.qmp.cmd('cont')

    def op_resubmit(self, in_outage=False):
        self.q.qmp.cmd('block-retry-resubmit', {'id': self.retry_id()})

    def op_fail(self, in_outage=False):
        self.q.qmp.cmd('block-retry-fail', {'id': self.retry_id()})

    def op_reset(self, in_outage=False):
        self.boot_idx = self.ctx.console.count()
        self.q.qmp.cmd('system_reset')
        self.after_reboot(in_outage)

    def after_reboot(self, in_outage):
        if not in_outage:       # else the guest boots once the storage is back
            self.wait_start()

    def op_hotplug(self, in_outage=False):
        q = self.q
        d = self.disk
        n0 = len(q.qmp.events)
        q.qmp.cmd('device_del', {'id': d.qdev_id})
        try:
            q.qmp.wait_event('DEVICE_DELETED', time.monotonic() + 20, start=n0,
                             pred=lambda ev: ev['data'].get('device') == d.qdev_id)
        except Fail:
            # the guest did not release the PCI device: a reset completes it
            self.count('hotplug-reset-needed')
            q.qmp.cmd('system_reset')
            q.qmp.wait_event('DEVICE_DELETED', time.monotonic() + 30, start=n0,
                             pred=lambda ev: ev['data'].get('device') == d.qdev_id)
        q.qmp.cmd('device_add', q.device_props(d))
        # the guest's filesystem lost its disk: start over
        self.boot_idx = self.ctx.console.count()
        q.qmp.cmd('system_reset')
        self.after_reboot(in_outage)

    def start_migration(self, bandwidth):
        """a destination QEMU, and the current one migrating to it: the
        destination and the source's MIGRATION events (MigWatch)"""
        sock = os.path.join(self.ctx.workdir, 'mig-%d.sock' % (self.n_qemu + 1))
        dst = self.new_qemu(spec=self.spec, incoming='unix:' + sock)
        dst.start(self.ctx.console, current=False)
        self.q.qmp.cmd('migrate-set-parameters', {'max-bandwidth': bandwidth})
        MigWatch.enable_events(self.q)
        mw = MigWatch(self.ctx, self.q, 'migration-%s' % dst.tag)
        self.q.qmp.cmd('migrate', {'uri': 'unix:' + sock})
        return dst, mw

    def end_migration(self, src, dst, st):
        """completed: go on on the destination; else the source goes on"""
        if st == 'completed':
            dst.wait_running(20)
            self.ctx.console.use(dst.tag)
            self.close_qemu(src, quit=True)
            self.q = dst
            return
        dst.terminate()
        self.dump_events(dst)
        self.scan_log(dst, expect_clean_exit=False)
        if src.status()['status'] != 'running':
            src.qmp.cmd('cont')

    def op_migrate(self, in_outage=False):
        src = self.q
        dst, mw = self.start_migration(1 << 30)
        try:
            st = mw.wait_end(120)
        except Fail:
            st = mw.status
        self.count('migrate-' + str(st))
        # failed (the storage failed at completion): the source goes on
        self.end_migration(src, dst, st)

    def op_queries(self, in_outage=False):
        """what a manager reads about the disk: query-block, its capacity,
        the counters, info block"""
        q = self.q
        q.qmp.cmd('query-block')
        q.qmp.cmd('query-blockstats')
        q.qmp.cmd('query-named-block-nodes', {'flat': True})
        q.qmp.cmd('human-monitor-command', {'command-line': 'info block'})

    def op_failover(self, in_outage=False):
        """the manager moves the disk to a second path to the same image (a
        loop device straight on the image file) and resubmits; once the
        outage is over, back_on_failing_path() moves it back"""
        q = self.q
        if getattr(self, 'alt_loop', None) is None:
            self.alt_loop = run_cmd(['losetup', '--direct-io=on', '-f', '--show',
                                     self.image]).strip()
            self.ctx.cleanups.callback(run_cmd, ['losetup', '-d', self.alt_loop],
                                       check=False)
        self.n_path = getattr(self, 'n_path', 0) + 1
        node = 'alt%d' % self.n_path
        q.qmp.cmd('blockdev-add', {'driver': 'host_device', 'node-name': node,
                                   'filename': self.alt_loop, 'cache': {'direct': True},
                                   'aio': self.args.aio})
        self.reopen_file(node)
        q.qmp.cmd('block-retry-resubmit', {'id': self.retry_id()})
        self.on_alt = node

    def reopen_file(self, node):
        """give the disk's format node another protocol node (blockdev-reopen)"""
        self.q.qmp.cmd('blockdev-reopen', {'options': [
            {'driver': 'raw', 'node-name': self.disk.node, 'file': node}]})

    def back_on_failing_path(self):
        """after a failover: the disk back on the failing storage, so that
        the next outages hit it again"""
        node = getattr(self, 'on_alt', None)
        if not node or self.q.qmp.closed:
            return
        self.on_alt = None
        fuse = 'fuse%d' % self.n_path
        self.q.qmp.cmd('blockdev-add', dict(self.st.protocol(fuse), **{'node-name': fuse}))
        self.reopen_file(fuse)
        self.q.qmp.cmd('blockdev-del', {'node-name': node})

    def op_snapshot(self, in_outage=False):
        """an overlay on healthy storage, then (storage back) block-commit
        merges it again"""
        q = self.q
        self.n_snap = getattr(self, 'n_snap', 0) + 1
        ov = os.path.join(self.ctx.workdir, 'overlay-%d.qcow2' % self.n_snap)
        node = 'ov%d' % self.n_snap
        r = q.qmp.cmd('blockdev-snapshot-sync', {'node-name': self.disk.node,
                                                 'snapshot-file': ov,
                                                 'snapshot-node-name': node,
                                                 'format': 'qcow2'}, check=False)
        if 'error' in r:
            # QEMU flushes the disk first: in an outage that fails at once,
            # naming the disk (as upstream does); anything else is a problem
            if not (in_outage and "'%s'" % self.disk.node in r['error']['desc']):
                self.problem('blockdev-snapshot-sync: %s' % r['error']['desc'])
            self.count('snapshot-refused')
            return
        if in_outage:
            # the guest's writes need the backing file (copy-on-write): the
            # merge waits for the storage
            self.st.restore()
            self.ctx.tl.mark('storage-restored')
        job = 'commit%d' % self.n_snap
        n0 = len(q.qmp.events)
        q.qmp.cmd('block-commit', {'job-id': job, 'device': node})
        q.qmp.wait_event('BLOCK_JOB_READY', time.monotonic() + 120, start=n0,
                         pred=lambda ev: ev['data'].get('device') == job)
        q.qmp.cmd('job-complete', {'id': job})
        _, _, ev = q.qmp.wait_event('BLOCK_JOB_COMPLETED', time.monotonic() + 120, start=n0,
                                    pred=lambda ev: ev['data'].get('device') == job)
        if ev['data'].get('error'):
            self.problem('block-commit of %s: %s' % (node, ev['data']['error']))

    def op_migrate_cancel(self, in_outage=False):
        src = self.q
        dst, mw = self.start_migration(1 << 20)
        time.sleep(self.rng.uniform(0.1, 2))
        src.qmp.cmd('migrate_cancel')
        st = mw.wait_end(60)
        self.count('migrate-cancel-' + str(st))
        # it may have finished first: then go on there
        self.end_migration(src, dst, st)

    def op_job(self, in_outage=False):
        q = self.q
        r = self.rng
        self.n_job = getattr(self, 'n_job', 0) + 1
        tgt = 'bk%d' % self.n_job
        size = os.path.getsize(self.image)
        q.qmp.cmd('blockdev-add', {'driver': 'null-co', 'node-name': tgt, 'size': size})
        n0 = len(q.qmp.events)
        job = 'job%d' % self.n_job
        q.qmp.cmd('blockdev-backup', {'job-id': job, 'device': self.disk.node, 'target': tgt,
                                      'sync': 'full'})
        if r.random() < 0.4:
            time.sleep(r.uniform(0, 2))
            q.qmp.cmd('block-job-cancel', {'device': job, 'force': True}, check=False)
        _, _, ev = q.qmp.wait_event(
            'JOB_STATUS_CHANGE', time.monotonic() + 120, start=n0,
            pred=lambda ev: ev['data'].get('id') == job and
            ev['data'].get('status') == 'concluded')
        q.qmp.cmd('job-dismiss', {'id': job}, check=False)
        q.qmp.cmd('blockdev-del', {'node-name': tgt})

    # ------------------------------------------------------------------
    def end_session(self):
        """storage up, guest writes again (unless its filesystem broke),
        counters consistent, the guest's own verification, clean exit"""
        ctx = self.ctx
        q = self.q
        self.st.restore()
        if q.status().get('status') != 'running':
            q.qmp.cmd('cont')
        # the guest may be rebooting (a reset during an outage)
        self.wait_start()
        t0 = (last_progress(ctx.console) or {}).get('t', 0)
        with contextlib.suppress(Fail):
            wait_progress(ctx.console, lambda t, p: p.get('t', 0) > t0 + 3000,
                          time.monotonic() + 90, 'progress after the session')
        with contextlib.suppress(Fail):
            wait_episodes_ended(q, 60, 'the last episode to end')
        fails = []
        check_episodes(ctx, q, fails)
        for f in fails:
            self.problem('session %d: %s' % (self.sessions, f))
        idx = ctx.console.count()
        ctx.tl.mark('stop-sent')
        ctx.console.send('\nE2E-STOP\n')
        _, _, m = ctx.console.wait(r'E2E-RESULT (.*)', time.monotonic() + 180, start=idx,
                                   what='E2E-RESULT')
        res = kv(m.group(1))
        if res.get('bad', 0) != 0:
            self.problem('session %d: the guest found %s acknowledged files bad' % (
                self.sessions, res.get('bad')))
        self.close_qemu(q, quit=False)

    def dump_events(self, q):
        if q.tag in self.dumped or q.qmp is None:
            return
        self.dumped.add(q.tag)
        with open(os.path.join(self.ctx.workdir, 'qemu-%s-events.log' % q.tag), 'w') as f:
            for t, ev in list(q.qmp.events):
                f.write('%.3f %s %s\n' % (t, ev['event'], json.dumps(ev.get('data', {}))))

    def close_qemu(self, q, quit):
        self.dump_events(q)
        self.episodes += len(q.qmp.named('BLOCK_IO_RETRY_END'))
        if quit:
            q.qmp.cmd('quit', check=False)
        try:
            q.wait_exit(time.monotonic() + 60)
        except Fail:
            self.problem('%s did not exit' % q.tag)
            q.terminate()
        self.collect_acks(q.tag)
        self.scan_log(q)

    def collect_acks(self, tag):
        self.acks += acks_on_console(self.ctx.console, tag)

    def scan_log(self, q, expect_clean_exit=True):
        if q.tag in self.scanned:
            return
        self.scanned.add(q.tag)
        path = os.path.join(self.ctx.workdir, 'qemu-%s.log' % q.tag)
        with contextlib.suppress(OSError):
            with open(path, errors='replace') as f:
                text = f.read()
            hits = [ln for ln in text.splitlines() if SANITIZER_RX.search(ln)]
            if hits:
                self.count('sanitizer-reports')
                self.problem('%s: sanitizer report: %s (log %s)' % (q.tag, hits[0][:200], path))
        rc = q.exitcode()
        if expect_clean_exit and rc not in (0, None):
            self.count('crashes')
            self.problem('%s exited with %s (log %s)' % (q.tag, rc, path))

    # ------------------------------------------------------------------
    def host_verify(self):
        """every file the guest ever acknowledged, checked on the host in a
        copy of the image (journal replayed by mounting it)"""
        self.verify, out, self.fsck_rc, self.fsck_out = host_verify(
            self.ctx, self.image, 'raw', self.acks)
        if not (self.acks and self.verify.get('checked') == len(self.acks) and
                self.verify.get('ok') == len(self.acks)):
            self.problem('host verification of %d acknowledged files: %s' % (
                len(self.acks), out))
        if self.fsck_rc != 0:
            self.problem('host e2fsck -fn of the image (journal replayed): rc=%d %s' % (
                self.fsck_rc, ' / '.join(self.fsck_out)))

    def summary(self):
        v = getattr(self, 'verify', {})
        ops = ', '.join('%s=%s' % (k, ('%.1f' % v2) if isinstance(v2, float) else v2)
                        for k, v2 in sorted(self.counts.items()))
        return ('seed=%d sessions=%d QEMUs=%d acknowledged=%d verified=%s lost=%s corrupt=%s '
                'episodes=%d crashes=%d sanitizer_reports=%d host_fsck_rc=%s%s; %s' % (
                    self.seed, self.sessions, self.n_qemu, len(self.acks), v.get('ok'),
                    v.get('missing'), v.get('bad'), self.episodes, self.counts.get('crashes', 0),
                    self.counts.get('sanitizer-reports', 0), getattr(self, 'fsck_rc', None),
                    ' (%s)' % ' / '.join(self.fsck_out) if getattr(self, 'fsck_out', None)
                    and self.fsck_rc else '', ops))


def torture(args, env, seeds, duration):
    """run each seed for `duration` s; returns the number of failed seeds"""
    failed = 0
    for seed in seeds:
        t0 = time.monotonic()
        tt = Torture(args, env, seed, duration)
        problems = tt.run()
        el = time.monotonic() - t0
        if problems:
            failed += 1
            print('FAIL torture/seed-%d %.0fs %s | reproduce: make torture SEED=%d DURATION=%d'
                  ' | %s (logs: %s)' % (seed, el, '; '.join(problems[:3]), seed, duration,
                                        tt.summary(), tt.ctx.workdir))
        else:
            print('PASS torture/seed-%d %.0fs %s' % (seed, el, tt.summary()))
            if not args.keep:
                shutil.rmtree(tt.ctx.workdir, ignore_errors=True)
        print(flush=True)
    return failed
