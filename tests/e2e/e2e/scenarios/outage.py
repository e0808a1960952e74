"""One outage on one disk: the "before" pictures (default and stop
policies, on the upstream binary and on the patched one, whose paths the
series rewrote), the retry policy's short and long outages, rerror=report,
the policy given only on -drive (inherited by the device), and retry then
stop (werror=stop with a retry-timeout)."""

import time

from harness.checks import check, Fail
from harness.report import summary
from harness.workload import (boot, guest_append, guest_error_times, kv, outage_wait, post_run,
                              wait_resumed, warmup)
from ..runner import upstream_qemu
from .common import (actions, block_errors, check_fsck, check_one_episode, common_setup,
                     episode_detail, finish_run, make_qemu, one_outage, retry_policy,
                     sc_outage_common)


def assess_default(ctx, q, res, times, why):
    """the default policy: the guest must see the outage"""
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
    saw = ['%d failed writes' % res.get('write_errors', 0),
           '%d kernel I/O error lines' % res.get('kernel_io_errors', 0)]
    if res.get('fs_writable') != 1 or res.get('fs_rw') != 1:
        saw.append('its filesystem not writable')
    if res.get('fsck_rc'):
        saw.append('fsck errors')
    ctx.info.verdict = ('the guest saw ' + ', '.join(saw), why)
    return fails, d


def sc_upstream_default(ctx, device, storage):
    binary = upstream_qemu(ctx.env)
    q, st, res, times = sc_outage_common(ctx, device, storage, binary, {},
                                         ctx.args.outage, wait_resume=False)
    return assess_default(ctx, q, res, times, 'this is the problem the series solves')


def sc_patched_default(ctx, device, storage):
    q, st, res, times = sc_outage_common(ctx, device, storage, ctx.env.qemu, {},
                                         ctx.args.outage, wait_resume=False)
    fails, d = assess_default(ctx, q, res, times,
                              'the series leaves the default policy as it was')
    return fails, d + ' ' + episode_detail(ctx)


def sc_upstream_stop(ctx, device, storage):
    return run_stop(ctx, device, storage, upstream_qemu(ctx.env),
                    'the data is safe but the whole VM stops: what the series improves on')


def sc_patched_stop(ctx, device, storage):
    fails, d = run_stop(ctx, device, storage, ctx.env.qemu,
                        'the series leaves werror=stop as it was')
    return fails, d + ' ' + episode_detail(ctx)


def run_stop(ctx, device, storage, binary, why):
    q, st, res, (t_fail, t_rest) = sc_outage_common(
        ctx, device, storage, binary, {'werror': 'stop', 'rerror': 'stop'},
        ctx.args.outage, stop_manager=True)
    fails = []
    stops = q.qmp.named('STOP', t_fail)
    errs = block_errors(q, t_fail)
    cyc = ctx.info.cycles
    check(len(stops) >= 1, fails, 'no STOP event during the outage')
    check('io-error' in ctx.info.paused_states, fails,
          'query-status never reported io-error (saw %s)' % ctx.info.paused_states)
    check(cyc >= 1, fails, 'no pause/cont cycle')
    check(all(e.get('action') == 'stop' for e in errs) and errs, fails,
          'BLOCK_IO_ERROR actions %s, expected stop' % actions(errs))
    check(res.get('write_errors') == 0, fails, 'guest write errors')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')
    check(res.get('fs_rw') == 1 and res.get('fs_writable') == 1, fails,
          'filesystem not writable')
    check(res.get('kernel_io_errors') == 0, fails, 'kernel I/O errors in the guest')
    check_fsck(ctx, res, fails)
    paused = 0.0
    for t, ev in stops:
        r = [t2 for t2, e2 in q.qmp.named('RESUME', t)]
        paused += (r[0] if r else time.monotonic()) - t
    d = '%s pause_cont_cycles=%d paused_total=%.1fs' % (summary(res), cyc, paused)
    ctx.info.verdict = ('the whole VM paused %d times (%.1f s in all), the guest saw no '
                        'error' % (cyc, paused), why)
    return fails, d


def assess_retry_short(ctx, q, res, times, outage, interval, storage_kind, st):
    """the retry policy, an outage shorter than retry_timeout: the guest only
    stalls; every episode recovered"""
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
    check(set(acts) <= {'retry'}, fails, 'BLOCK_IO_ERROR actions %s, expected retry' % acts)
    check(not q.qmp.named('STOP', t_fail), fails, 'VM paused')
    check_fsck(ctx, res, fails)
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('recovered', 0) >= 1 and
          eps.get('failed') == 0 and eps.get('dropped') == 0, fails,
          'episodes %s: expected recovered requests only' % eps)
    check_one_episode(ctx, q, fails)
    ctx.info.verdict = ('no error in the guest, %d of %d acknowledged files verified, '
                        'writes stalled %.1f s and resumed' % (
                            res.get('verified', 0), res.get('written', 0),
                            res.get('max_stall_ms', 0) / 1000.0), 'the series at work')
    return fails, '%s stall_bound_ms=%d qmp_io_errors=%s %s' % (
        summary(res), bound_ms, acts, episode_detail(ctx))


def sc_short_outage(ctx, device, storage):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    q, st, res, times = sc_outage_common(ctx, device, storage, ctx.env.qemu, pol,
                                         a.outage)
    return assess_retry_short(ctx, q, res, times, a.outage, a.retry_interval, storage, st)


def sc_drive_policy(ctx, device, storage):
    """werror=retry,rerror=retry only on -drive: the device, which sets no
    policy of its own, inherits them (with the default interval and
    timeout); a short outage must then only stall the guest"""
    a = ctx.args
    drive = {'werror': 'retry', 'rerror': 'retry'}
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, {}, guest_append(a),
                  disk_kw={'mode': 'drive', 'drive_policy': drive})
    boot(ctx, q)
    fails = []
    pols = [(b.get('retry') or {}) for b in q.qmp.cmd('query-block')
            if b.get('device') == 'disk0']
    check(pols and pols[0].get('write-policy') == 'retry' and
          pols[0].get('read-policy') == 'retry', fails,
          'query-block: the device did not inherit the -drive policy (retry: %s)' % pols)
    warmup(ctx)
    times = one_outage(ctx, q, st, a.outage)
    res = finish_run(ctx, q)
    f2, d = assess_retry_short(ctx, q, res, times, a.outage, 1000, storage, st)
    return fails + f2, d


def sc_long_outage(ctx, device, storage):
    a = ctx.args
    timeout_ms = a.long_retry_timeout
    outage = a.long_outage
    pol = retry_policy(a, a.retry_interval, timeout_ms)
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, pol, guest_append(a))
    boot(ctx, q)
    warmup(ctx)
    fails = []
    n0 = len(q.qmp.events)
    t_fail = ctx.tl.mark('outage-start')
    st.fail()
    # NBD with reconnect-delay > 0 (nbd-tcp): the first attempt hangs in
    # QEMU's NBD client for reconnect-delay before it fails, then the
    # request's retry_timeout runs
    hang = st.reconnect_delay if st.kind == 'nbd-tcp' else 0
    bound = timeout_ms / 1000.0 + a.retry_interval / 1000.0 + hang + a.slack
    # the guest must see an error within timeout + interval (+ hang) + slack
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
    # (0.25 s for the host's and QEMU's clocks and the console's delay)
    check(err_after is None or err_after >= timeout_ms / 1000.0 - 0.25, fails,
          'guest error after %.1f s, before retry_timeout %.1f s' % (
              err_after or 0, timeout_ms / 1000.0))
    first = [t for t, ev in q.qmp.events[n0:] if ev['event'] == 'BLOCK_IO_ERROR']
    first_fail = first[0] - t_fail if first else None
    t0 = time.monotonic()
    stq = q.status()
    qmp_ms = (time.monotonic() - t0) * 1000
    check(stq.get('status') == 'running', fails, 'VM status %s' % stq.get('status'))
    check(qmp_ms < 2000, fails, 'QMP answered in %.0f ms' % qmp_ms)
    outage_wait(ctx, t_fail + outage)
    ctx.tl.mark('storage-restored')
    st.restore()
    post_run(ctx, a.post_seconds + st.reconnect_lag(outage))
    res = finish_run(ctx, q)
    errs = block_errors(q, t_fail)
    check(res.get('write_errors', 0) > 0 or res.get('kernel_io_errors', 0) > 0, fails,
          'guest result shows no error')
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('failed', 0) >= 1, fails, 'no request failed at retry_timeout (episodes %s)'
          % eps)
    d = ('%s first_guest_error=+%s bound=%.1fs first_failure_in_qemu=+%s reconnect_delay=%s '
         'qmp_status_ms=%.0f qmp_io_errors=%s %s' % (
             summary(res), '%.1fs' % err_after if err_after is not None else 'never', bound,
             '%.1fs' % first_fail if first_fail is not None else '-', hang, qmp_ms,
             actions(errs), episode_detail(ctx)))
    ctx.info.verdict = ('the guest got its first error %s after the outage began' % (
        '%.1f s' % err_after if err_after is not None else 'never'),
        'retry_timeout=%d ms expired' % timeout_ms)
    return fails, d


def sc_rerror_report(ctx, device, storage):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout, rerror='report')
    q, st, res, times = sc_outage_common(
        ctx, device, storage, ctx.env.qemu, pol, a.outage,
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
    check_fsck(ctx, res, fails)
    acts = actions(block_errors(q, t_fail))
    d = '%s read_fail_ms_max=%s qmp_io_errors=%s %s' % (
        summary(res), max(fast) if fast else '-', acts, episode_detail(ctx))
    return fails, d


def sc_retry_then_stop(ctx, device, storage):
    """werror=stop,rerror=stop,retry-timeout=10000: a short outage stays
    invisible (no STOP, no guest error); a long one pauses the VM once,
    when the retry-timeout expires, with the requests kept; a manager sends
    'cont' once the storage is back, and the guest carries on with no error
    and every acknowledged byte intact."""
    a = ctx.args
    timeout_s = 10.0
    interval_s = a.retry_interval / 1000.0
    long_outage = 60.0
    pol = {'werror': 'stop', 'rerror': 'stop',
           'retry_interval': a.retry_interval, 'retry_timeout': int(timeout_s * 1000)}
    st = common_setup(ctx, device, storage)
    q = make_qemu(ctx, ctx.env.qemu, st, device, pol, guest_append(a))
    boot(ctx, q)
    warmup(ctx)
    fails = []

    # 1. shorter than the timeout: retried, invisible
    t1, r1 = one_outage(ctx, q, st, a.outage)
    acts1 = actions(block_errors(q, t1))
    check(not q.qmp.named('STOP', t1), fails,
          'the VM paused during a %.0f s outage (timeout %.0f s)' % (a.outage, timeout_s))
    check(acts1 and set(acts1) == {'retry'}, fails,
          'short outage: BLOCK_IO_ERROR actions %s, expected retry only' % acts1)

    # 2. longer than the timeout: one pause, 'cont' after the storage is back
    n0 = len(q.qmp.events)
    t_fail = ctx.tl.mark('outage-start', 'long')
    st.fail()
    bound = timeout_s + interval_s + a.slack
    try:
        _, t_stop, _ = q.qmp.wait_event('STOP', t_fail + bound + 5, start=n0)
        stop_after = t_stop - t_fail
        ctx.tl.mark('vm-paused', 'after %.1f s' % stop_after)
    except Fail:
        stop_after = None
    check(stop_after is not None and timeout_s - 0.25 <= stop_after <= bound, fails,
          'the VM paused after %s s, expected within [%.1f, %.1f] s' % (
              '%.1f' % stop_after if stop_after is not None else 'never',
              timeout_s, bound))
    status = q.status().get('status')
    check(status == 'io-error', fails, 'query-status %s while paused, expected io-error'
          % status)
    outage_wait(ctx, t_fail + long_outage)
    t_rest = ctx.tl.mark('storage-restored')
    st.restore()
    stops = q.qmp.named('STOP', t_fail)
    check(len(stops) == 1, fails, '%d STOP events during the long outage, expected 1'
          % len(stops))
    q.qmp.cmd('cont')
    ctx.tl.mark('cont-sent')
    ctx.info.resume_t = wait_resumed(ctx, t_rest, time.monotonic() + 30)
    post_run(ctx, a.post_seconds)
    check(len(q.qmp.named('STOP', t_fail)) == 1, fails,
          'the VM paused again after cont (%d STOP events)'
          % len(q.qmp.named('STOP', t_fail)))
    acts2 = actions(block_errors(q, t_fail))
    check(acts2.get('stop', 0) >= 1 and set(acts2) <= {'retry', 'stop'}, fails,
          'long outage: BLOCK_IO_ERROR actions %s, expected retry then stop' % acts2)

    res = finish_run(ctx, q)
    check(res.get('write_errors') == 0 and res.get('read_errors') == 0, fails,
          'guest I/O errors')
    check(res.get('kernel_io_errors') == 0, fails, 'kernel I/O errors in the guest')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')
    check(res.get('fs_rw') == 1 and res.get('fs_writable') == 1, fails,
          'filesystem not writable')
    check_fsck(ctx, res, fails)
    ctx.info.verdict = ('a %.0f s outage only stalled the guest; a %.0f s one paused the '
                        'VM once, %.1f s in, and cont resumed it with no guest error' % (
                            a.outage, long_outage, stop_after or -1),
                        'retry, then stop')
    return fails, '%s short_outage_actions=%s long_outage_actions=%s stop_after=%s %s' % (
        summary(res), acts1, acts2,
        '%.1fs' % stop_after if stop_after is not None else 'never', episode_detail(ctx))
