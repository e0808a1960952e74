"""Live migration during an outage.

What QEMU guarantees (and the two scenarios assert): a migration completes
only once every disk has been flushed (the source's caches must reach the
storage before the destination takes over), so
  migrate            a migration started during the outage, held back by a
                     bandwidth limit, completes after the storage is back;
                     the guest stalls, then continues on the destination;
  migrate-in-outage  a migration that reaches completion during the outage
                     fails cleanly: the source keeps running, the guest
                     sees nothing; a second migration, storage healthy,
                     completes.
(Migrating the parked requests themselves is covered by a qtest, where the
flushes succeed.)

"""

import contextlib
import os
import time

from harness.checks import check, Fail
from harness.report import summary
from harness.vm import VM
from harness.workload import (boot, check_guest_clean, guest_append, guest_error_times, outage_wait,
                              post_run, progress_on, wait_hung, wait_resumed, warmup)
from .common import (actions, block_errors, check_episodes, common_setup, episode_detail,
                     finish_run, make_qemu, retry_policy)


class MigWatch:
    """follows the source's MIGRATION events (capability "events", set by
    enable_events): marks every status on the timeline at the event's time;
    query-migrate once it ended (error, RAM, downtime).  Made before the
    migrate command is sent."""

    END = ('completed', 'failed', 'cancelled')

    def __init__(self, ctx, q, prefix='migration'):
        self.ctx = ctx
        self.q = q
        self.prefix = prefix
        self.idx = q.qmp.mark()
        self.status = None
        self.r = {}
        self.t_end = None

    @staticmethod
    def enable_events(q):
        q.qmp.cmd('migrate-set-capabilities',
                  {'capabilities': [{'capability': 'events', 'state': True}]})

    def _take(self, deadline):
        """the events up to the end of the migration or the deadline"""
        while self.status not in self.END:
            r = self.q.qmp.next_event('MIGRATION', deadline, start=self.idx)
            if r is None:
                return False
            i, t, ev = r
            self.idx = i + 1
            self.status = ev['data'].get('status')
            if self.status in self.END:
                self.t_end = t
                self.query()
            self.ctx.tl.mark('%s-%s' % (self.prefix, self.status),
                             self.r.get('error-desc', ''), t=t)
        return True

    def poll(self):
        """the events that came so far: the migration's status now"""
        self._take(0)
        return self.status

    def query(self):
        self.r = self.q.qmp.cmd('query-migrate')
        return self.r

    def wait_end(self, timeout):
        if not self._take(time.monotonic() + timeout):
            raise Fail('timeout waiting for %s to end (%s)' % (self.prefix, self.status))
        return self.status

    def ram_mb(self, key):
        v = self.r.get('ram', {}).get(key)
        return '%.1f' % (v / 1048576.0) if v is not None else '-'


def start_destination(ctx, src, tag):
    """a second QEMU waiting for the stream on a unix socket; its console is
    read from now on (silent until it runs)"""
    sock = os.path.join(ctx.workdir, tag + '-mig.sock')
    dst = VM(ctx, src.binary, tag, incoming='unix:' + sock, **src.clone_spec())
    dst.start(ctx.console, current=False)
    return dst, 'unix:' + sock


def switch_to(ctx, src, dst, t_done, fails):
    """after a completed migration: the guest runs on dst and writes there"""
    ctx.console.use(dst.tag)
    dst.wait_running(15)
    sst = src.status()['status']
    check(sst == 'postmigrate', fails, 'source status %s after migration' % sst)

    def writes_on_dst():
        # new files written on dst: compared with its first progress line
        # (which also counts files written on src since src's last line)
        pp = progress_on(ctx, dst.tag, t_done)
        return pp and any(p.get('written', 0) > pp[0][1].get('written', 0) + 3 and
                          p.get('busy_ms', 0) < 1000 for _, p in pp[1:])
    # the destination's NBD client may still be reconnecting: retry covers it
    ctx.console.wait_for(writes_on_dst, time.monotonic() + 30, 'writes on %s' % dst.tag)
    return ctx.tl.mark('writes-on-' + dst.tag)


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
    src = make_qemu(ctx, ctx.env.qemu, st, device, pol, guest_append(a))
    boot(ctx, src)
    return st, src


def finish_on_destination(ctx, a, src, dst, t_done, t_fail, fails):
    """After a migration that completed at t_done: the guest goes on on dst,
    writes a while, is stopped and checked (no error, one stall from the
    outage, only 'retry' events on either side).  Returns (result, QMP
    BLOCK_IO_ERROR actions, when the guest first wrote on dst)."""
    t_dw = switch_to(ctx, src, dst, t_done, fails)
    post_run(ctx, a.post_seconds)
    check_episodes(ctx, src)
    src.qmp.cmd('quit', check=False)
    res = finish_run(ctx, dst)
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
    MigWatch.enable_events(src)
    mw = MigWatch(ctx, src)
    t_m = ctx.tl.mark('migrate-start')
    src.qmp.cmd('migrate', {'uri': uri})
    return st, src, dst, uri, t_fail, t_m, mw


def sc_migrate(ctx, device, storage):
    a = ctx.args
    # held back: at this rate the first RAM pass alone takes minutes
    st, src, dst, uri, t_fail, t_m, mw = migrate_in_outage(
        ctx, device, storage, a.migrate_slow_bw)
    fails = []
    outage_wait(ctx, t_fail + a.outage)
    at_restore = mw.poll()
    mw.query()
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
    return fails, d + ' ' + episode_detail(ctx)


def sc_migrate_in_outage(ctx, device, storage):
    a = ctx.args
    st, src, dst, uri, t_fail, t_m, mw = migrate_in_outage(
        ctx, device, storage, a.migrate_fast_bw)
    fails = []
    # the storage stays down for the outage and until the migration ended
    outage_wait(ctx, t_fail + a.outage)
    mw.wait_end(a.migrate_timeout)
    check(mw.status == 'failed', fails, 'first migration %s during the outage, expected '
          'failed' % mw.status)
    err = mw.r.get('error-desc', '')
    # it failed at completion: the source had stopped the VM for the switchover
    stops = src.qmp.named('STOP', t_m)
    check(stops and stops[0][0] <= mw.t_end, fails,
          'no STOP before the migration failed: it did not reach completion')
    with contextlib.suppress(Fail):
        src.wait_running(5)
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
    dst_rc = dst.exitcode()
    dst2, uri2 = start_destination(ctx, src, 'dst2')
    mw2 = MigWatch(ctx, src, 'migration2')
    t_m2 = ctx.tl.mark('migrate2-start')
    src.qmp.cmd('migrate', {'uri': uri2})
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
    return fails, d + ' ' + episode_detail(ctx)
