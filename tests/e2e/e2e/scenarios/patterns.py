"""Outages as deployments meet them: a flapping link, a very long outage,
an outage under a read workload."""

import os
import re
import time

from harness.checks import check, Fail
from harness.report import summary
from harness.workload import (boot, check_guest_clean, guest_append, kv, outage_wait, post_run,
                              wait_hung, wait_resumed, warmup)
from .common import (actions, block_errors, check_one_episode, common_setup,
                     episode_detail, episodes_by_disk, finish_run, make_qemu, one_outage,
                     retry_policy)

# (outage, gap after it), seconds: 6 outages of 0.3-3 s, gaps of 0.5-2 s
FLAPS = [(0.3, 1.0), (1.5, 0.5), (3.0, 2.0), (0.5, 1.5), (2.0, 0.8), (1.0, 0.0)]
# shorter than every gap: the requests of one outage are resubmitted (and
# recover) before the next outage begins, so each outage is one episode
FLAP_INTERVAL_MS = 200


def sc_flapping(ctx, device, storage):
    a = ctx.args
    pol = retry_policy(a, FLAP_INTERVAL_MS, a.retry_timeout)
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, pol, guest_append(a))
    boot(ctx, q)
    warmup(ctx)
    fails = []
    windows = []            # (start, restored, back, outage, lag)
    for i, (outage, gap) in enumerate(FLAPS):
        n0 = len(q.qmp.events)
        t_f = ctx.tl.mark('outage-start', str(i + 1))
        st.fail()
        outage_wait(ctx, t_f + outage)
        t_r = ctx.tl.mark('storage-restored', str(i + 1))
        st.restore()
        lag = st.reconnect_lag(outage)
        back = t_r
        if lag:
            # NBD: the storage is back for QEMU once its client reconnected,
            # which ends the episode; the gap counts from there
            try:
                _, back, _ = q.qmp.wait_event(
                    'BLOCK_IO_RETRY_END', t_r + lag + FLAP_INTERVAL_MS / 1000.0 + a.slack,
                    start=n0)
            except Fail:
                back = t_r + lag
        windows.append((t_f, t_r, back, outage, lag))
        outage_wait(ctx, back + gap)
    ctx.info.resume_t = wait_resumed(ctx, windows[-1][1], time.monotonic() + 30)
    post_run(ctx, a.post_seconds)
    res = finish_run(ctx, q)
    check_guest_clean(res, fails)
    # one episode per outage, checked by the events' content: in the window
    # from one outage's start to the next one's, one start (BLOCK_IO_ERROR
    # action=retry) and then one end (BLOCK_IO_RETRY_END) after the storage
    # came back, its requests recovered, none failed or dropped
    seq = [x for evs in episodes_by_disk(q).values() for x in evs]
    seq.sort(key=lambda x: x[1])
    per = []
    for i, (t_f, t_r, back, outage, lag) in enumerate(windows):
        t_next = windows[i + 1][0] if i + 1 < len(windows) else float('inf')
        inw = [(k, t, d) for k, t, d in seq if t_f <= t < t_next]
        kinds = [k for k, _, _ in inw]
        bound_ms = (outage + lag + FLAP_INTERVAL_MS / 1000.0 + a.slack) * 1000
        ok = kinds == ['start', 'end']
        if ok:
            end_t, end = inw[1][1], inw[1][2]
            ok = (end_t >= t_r and end.get('recovered', 0) >= 1 and end.get('failed') == 0 and
                  end.get('dropped') == 0 and end.get('duration-ms', 0) <= bound_ms)
            per.append('%.1fs:%dms/%d' % (outage, end.get('duration-ms', -1),
                                          end.get('recovered', 0)))
        else:
            per.append('%.1fs:%s' % (outage, kinds))
        check(ok, fails, 'outage %d (%.1f s): events %s, expected one episode that '
              'recovered within %.0f ms' % (
                  i + 1, outage, [(k, d.get('duration-ms'), d.get('recovered'))
                                  for k, _, d in inw], bound_ms))
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('episodes') == len(FLAPS), fails, '%s episodes for %d outages' % (
        eps.get('episodes'), len(FLAPS)))
    worst = max(o + lag for _, _, _, o, lag in windows)
    bound = int((worst + FLAP_INTERVAL_MS / 1000.0 + a.slack) * 1000)
    check(res.get('max_stall_ms', 0) <= bound, fails, 'max stall %s ms > bound %d ms' % (
        res.get('max_stall_ms'), bound))
    acts = actions(block_errors(q))
    check(set(acts) <= {'retry'}, fails, 'BLOCK_IO_ERROR actions %s, expected retry' % acts)
    ctx.info.verdict = ('%d outages, %d episodes, no error in the guest' % (
        len(FLAPS), eps.get('episodes', 0)), 'one episode per outage')
    return fails, '%s episodes(outage:duration/recovered)=%s stall_bound_ms=%d %s' % (
        summary(res), ','.join(per), bound, episode_detail(ctx))


class MidOutageProbe:
    """once, half-way through the outage: QMP answers at once, the VM runs,
    query-block shows the episode in progress"""

    def __init__(self, ctx, q, at):
        self.ctx, self.q, self.at = ctx, q, at
        self.done = None

    def __call__(self):
        if self.done is not None or time.monotonic() < self.at:
            return
        t0 = time.monotonic()
        status = self.q.status().get('status')
        blocks = self.q.qmp.cmd('query-block')
        ms = (time.monotonic() - t0) * 1000
        r = [b['retry'] for b in blocks if b.get('retry') and b.get('device') in ('', 'disk0')]
        self.done = {'status': status, 'qmp_ms': ms, 'retry': r[0] if r else None}


def sc_outage_90s(ctx, device, storage):
    """a 90 s outage with retry_timeout=0: the guest waits it out"""
    a = ctx.args
    outage = a.hang_outage
    pol = retry_policy(a, a.retry_interval, 0)
    extra = []
    if device == 'scsi-hd':
        # every task management function and every cancelled request shows
        # up in QEMU's log; scsi_device_retry_requests (one line per retry
        # attempt, once per retry-interval during the outage) proves that
        # tracing reaches the log, so that no TMF line means none happened
        extra = ['-trace', 'virtio_scsi_tmf_req', '-trace', 'scsi_req_cancel',
                 '-trace', 'scsi_device_retry_requests']
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, pol,
                  guest_append(a, 'e2e.hung=%d' % a.hung_secs),
                  qemu_kw={'extra_args': extra})
    boot(ctx, q)
    warmup(ctx)
    fails = []
    t_start = time.monotonic()
    probe = MidOutageProbe(ctx, q, t_start + outage / 2)
    t_fail, t_rest = one_outage(ctx, q, st, outage, poll=probe,
                                resume_deadline=60 + st.reconnect_lag(outage))
    res = finish_run(ctx, q)
    check_guest_clean(res, fails)
    lag = st.reconnect_lag(outage)
    bound_ms = int((outage + lag + a.retry_interval / 1000.0 + a.slack) * 1000)
    check(0.9 * outage * 1000 <= res.get('max_stall_ms', 0) <= bound_ms, fails,
          'max stall %s ms, expected %d..%d ms' % (
              res.get('max_stall_ms'), 0.9 * outage * 1000, bound_ms))
    p = probe.done or {}
    r = p.get('retry') or {}
    check(p.get('status') == 'running', fails, 'mid-outage VM status %s' % p.get('status'))
    check(p.get('qmp_ms', 10**6) < 2000, fails, 'mid-outage QMP answered in %s ms' %
          p.get('qmp_ms'))
    check(r.get('active') and r.get('requests', 0) >= 1 and
          r.get('episode-ms', 0) >= outage / 2 * 1000 * 0.8, fails,
          'mid-outage query-block retry %s: expected an episode in progress' % r)
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('failed') == 0 and eps.get('dropped') == 0 and
          eps.get('recovered', 0) >= 1, fails, 'episodes %s: expected recovered requests '
          'only (dropped = released by a reset or an abort)' % eps)
    check_one_episode(ctx, q, fails)
    tmf = cancels = attempts_traced = 0
    if device == 'scsi-hd':
        with open(os.path.join(ctx.workdir, 'qemu-src.log'), errors='replace') as f:
            logtext = f.read()
        tmf = len(re.findall(r'virtio_scsi_tmf_req', logtext))
        cancels = len(re.findall(r'scsi_req_cancel', logtext))
        attempts_traced = len(re.findall(r'scsi_device_retry_requests', logtext))
        check(attempts_traced > 0, fails, 'no scsi_device_retry_requests line in QEMU\'s '
              'log: tracing does not work, so the absence of TMF lines proves nothing')
        check(tmf == 0 and cancels == 0, fails, 'SCSI task management during the outage: '
              '%d TMF requests, %d cancelled requests' % (tmf, cancels))
    hung = ctx.console.find(r'blocked for more than (\d+) seconds')
    ctx.info.verdict = ('the guest waited %.0f s without an error; %d hung-task '
                        'warnings' % (res.get('max_stall_ms', 0) / 1000.0,
                                      res.get('hung_tasks', len(hung))),
                        'retry_timeout=0 waits for the storage')
    d = ('%s outage=%.0fs stall_bound_ms=%d hung_task_warnings=%s%s mid_outage_qmp_ms=%.0f '
         'mid_outage_episode_ms=%s tmf=%d cancelled=%d traced_attempts=%d qmp_io_errors=%s '
         '%s' % (
             summary(res), outage, bound_ms, res.get('hung_tasks'),
             ' (%s)' % hung[0][2].strip()[:90] if hung else '', p.get('qmp_ms', -1),
             r.get('episode-ms'), tmf, cancels, attempts_traced, actions(block_errors(q)),
             episode_detail(ctx)))
    return fails, d


def sc_read_heavy(ctx, device, storage):
    """the guest reads its files back again and again, page cache dropped
    before every pass; the storage fails under the reads"""
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, pol,
                  guest_append(a, 'e2e.mode=read e2e.files=%d e2e.mntopts=noatime'
                               % a.read_files))
    boot(ctx, q)
    fails = []
    ctx.console.wait(r'E2E-READPASS t=\d+ n=1 ', time.monotonic() + 120,
                     what='a first read pass')
    t_fail = ctx.tl.mark('outage-start')
    st.fail()
    wait_hung(ctx, q, t_fail)           # a read in flight for >= 1.5 s
    outage_wait(ctx, t_fail + a.outage)
    ctx.tl.mark('storage-restored')
    i0 = ctx.console.count()
    st.restore()
    # reads go on: a whole pass completes after the storage came back
    ctx.console.wait(r'E2E-READPASS ', time.monotonic() + 60 + st.reconnect_lag(a.outage),
                     start=i0, what='a read pass after the outage')
    post_run(ctx, a.post_seconds)
    res = finish_run(ctx, q)
    check_guest_clean(res, fails)
    check(res.get('read_bad') == 0, fails, '%s reads returned wrong data' % res.get('read_bad'))
    check(res.get('read_passes', 0) >= 2, fails, 'only %s read passes' %
          res.get('read_passes'))
    check(res.get('max_read_ms', 0) >= 0.5 * a.outage * 1000, fails,
          'reads did not wait for the storage (longest read %s ms)' % res.get('max_read_ms'))
    errs = block_errors(q, t_fail)
    reads = [e for e in errs if e.get('operation') == 'read' and e.get('action') == 'retry']
    check(reads, fails, 'no read was parked (BLOCK_IO_ERROR %s)' % [
        (e.get('operation'), e.get('action')) for e in errs])
    acts = actions(errs)
    check(set(acts) <= {'retry'}, fails, 'BLOCK_IO_ERROR actions %s, expected retry' % acts)
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('failed') == 0 and eps.get('dropped') == 0 and
          eps.get('recovered', 0) >= 1, fails, 'episodes %s: expected recovered requests '
          'only' % eps)
    check_one_episode(ctx, q, fails)
    rstall = [kv(m.group(1)).get('ms', 0) for _, _, _, m in
              ctx.console.find(r'E2E-RSTALL (.*)', t_fail)]
    ctx.info.verdict = ('reads waited %.1f s and returned the right data' % (
        res.get('max_read_ms', 0) / 1000.0), 'rerror=retry parks reads')
    d = ('%s reads=%s read_bad=%s read_passes=%s max_read_ms=%s read_stalls=%d '
         'first_parked=%s qmp_io_errors=%s %s' % (
             summary(res), res.get('reads'), res.get('read_bad'), res.get('read_passes'),
             res.get('max_read_ms'), len(rstall), reads[0].get('operation') if reads else '-',
             acts, episode_detail(ctx)))
    return fails, d


def cpu_seconds(pid):
    """user + system CPU time of a process so far, s"""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def sc_interval_zero(ctx, device, storage):
    """retry-interval=0 on storage that fails at once: every parked request
    is resubmitted as soon as it failed, for the whole outage.  QEMU must
    stay responsive: QMP answers within 100 ms throughout (every 50 ms a
    query-status, the longest round trip measured), the guest's vCPU keeps
    running (its heartbeat, E2E-PROGRESS twice a second of guest time, keeps
    coming), and QEMU's CPU use during the outage is printed."""
    a = ctx.args
    pol = retry_policy(a, 0, 0)
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, pol, guest_append(a))
    boot(ctx, q)
    warmup(ctx)
    fails = []
    cpu0 = cpu_seconds(q.pid)
    t_fail = ctx.tl.mark('outage-start')
    st.fail()
    rtts = []
    while time.monotonic() < t_fail + a.outage:
        t0 = time.monotonic()
        q.qmp.cmd('query-status', timeout=5)
        rtts.append((time.monotonic() - t0) * 1000)
        time.sleep(0.05)
    t_rest = ctx.tl.mark('storage-restored')
    cpu1 = cpu_seconds(q.pid)
    st.restore()
    ctx.info.resume_t = wait_resumed(ctx, t_rest,
                                     time.monotonic() + 30 + st.reconnect_lag(a.outage))
    post_run(ctx, a.post_seconds)
    res = finish_run(ctx, q)
    check_guest_clean(res, fails)
    beats = [t for t, _, _, _ in ctx.console.find(r'E2E-PROGRESS ', t_fail - 1)
             if t <= t_rest + 1]
    gaps = [b - a_ for a_, b in zip(beats, beats[1:])]
    max_gap = max(gaps) if gaps else None
    cpu_pct = (cpu1 - cpu0) / (t_rest - t_fail) * 100
    errs = block_errors(q, t_fail)
    acts = actions(errs)
    check(rtts and max(rtts) < 100, fails, 'QMP round trip up to %.0f ms during the outage '
          '(%d queries)' % (max(rtts) if rtts else -1, len(rtts)))
    check(max_gap is not None and max_gap < 1.5, fails, 'the guest\'s heartbeat stopped for '
          '%s s during the outage' % ('%.1f' % max_gap if max_gap is not None else '-'))
    check(acts.get('retry', 0) >= 1 and set(acts) <= {'retry'}, fails,
          'BLOCK_IO_ERROR actions %s, expected retry' % acts)
    check(res.get('max_stall_ms', 0) >= 0.5 * a.outage * 1000, fails,
          'guest did not stall (max %s ms): the outage did not hit' % res.get('max_stall_ms'))
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('failed') == 0 and eps.get('dropped') == 0 and
          eps.get('recovered', 0) >= 1, fails, 'episodes %s: expected recovered requests '
          'only' % eps)
    # no exact count here: attempts every 10 ms, so a request that failed
    # at the storage just before it came back can complete after the
    # retried ones succeeded and the episode ended, and start a second one
    attempts = sum(d.get('attempts', 0) for _, ev in q.qmp.named('BLOCK_IO_RETRY_END')
                   for d in [ev['data']])
    ctx.info.verdict = ('QMP answered within %.0f ms and the guest ran on while QEMU '
                        'retried at once (%d attempts, %.0f %% of a CPU)' % (
                            max(rtts), attempts, cpu_pct), 'interval 0 stays responsive')
    d = ('%s qmp_rtt_ms_max=%.1f qmp_rtt_ms_median=%.1f queries=%d heartbeat_gap_max_s=%s '
         'qemu_cpu_during_outage=%.0f%% attempts=%d qmp_io_errors=%s %s' % (
             summary(res), max(rtts), sorted(rtts)[len(rtts) // 2], len(rtts),
             '%.2f' % max_gap if max_gap is not None else '-', cpu_pct, attempts, acts,
             episode_detail(ctx)))
    return fails, d
