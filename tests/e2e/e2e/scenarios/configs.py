"""Deployment configurations under an outage: qcow2 on the failing storage,
the host page cache (cache.direct=off), two disks of which one fails,
multiqueue with iothreads."""

import json
import os
import re
import subprocess

from harness.checks import check, Fail
from harness.report import summary
from harness.vm import Disk, VM
from harness.workload import boot, check_guest_clean, guest_append, kv, outage_wait, warmup
from .common import (actions, block_errors, common_setup, episode_detail, finish_run,
                     make_storage, new_image, one_outage, retry_policy, sc_outage_common)
from .outage import assess_retry_short


def qemu_img_check(ctx, path):
    """qemu-img check of an image nothing has open: (exit code, JSON report)"""
    r = subprocess.run([ctx.env.qemu_img, 'check', '--output=json', path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    try:
        rep = json.loads(r.stdout)
    except ValueError:
        rep = {'output': (r.stdout + r.stderr).strip()[-300:]}
    return r.returncode, rep


def run_qcow2(ctx, device, storage, prealloc):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    if prealloc:
        kw = {'prealloc': True}
        extra = ''
    else:
        # 512-byte clusters: one L2 table maps 32 KiB and one refcount block
        # 128 KiB, so every file of 40-64 KiB (new data, never written
        # before) allocates clusters and at least one L2 table while it is
        # written, also the one parked by the outage
        kw = {'cluster_kb': 0.5}
        extra = 'e2e.kb=40,64'
    q, st, res, times = sc_outage_common(ctx, device, storage, ctx.env.qemu, pol,
                                         a.outage, extra_append=extra, fmt='qcow2', **kw)
    fails, d = assess_retry_short(ctx, q, res, times, a.outage, a.retry_interval, storage, st)
    # the image, once nothing has it open any more
    st.stop()
    rc, rep = qemu_img_check(ctx, st.image_path)
    before = (ctx.info.qcow2_before or {})
    check(rc == 0 and not rep.get('corruptions') and not rep.get('leaks') and
          not rep.get('check-errors'), fails, 'qemu-img check: exit %d, %s' % (rc, rep))
    if not prealloc:
        check(rep.get('allocated-clusters', 0) > before.get('allocated-clusters', 0), fails,
              'no cluster was allocated during the run (%s -> %s)' % (
                  before.get('allocated-clusters'), rep.get('allocated-clusters')))
    d += (' qemu-img_check: exit=%d corruptions=%s leaks=%s allocated_clusters=%s->%s '
          'image_end_offset=%s->%s' % (
              rc, rep.get('corruptions', 0), rep.get('leaks', 0),
              before.get('allocated-clusters'), rep.get('allocated-clusters'),
              before.get('image-end-offset'), rep.get('image-end-offset')))
    return fails, d


def sc_qcow2_sparse(ctx, device, storage):
    return run_qcow2(ctx, device, storage, prealloc=False)


def sc_qcow2_prealloc(ctx, device, storage):
    return run_qcow2(ctx, device, storage, prealloc=True)


WARN_CURE = re.compile(r'cache\.direct=on|cache=none')


def qemu_warnings(ctx, tag='src'):
    """QEMU's log lines that name the cure for a write-back host cache"""
    try:
        with open(os.path.join(ctx.workdir, 'qemu-%s.log' % tag), errors='replace') as f:
            return [ln.strip() for ln in f if WARN_CURE.search(ln)]
    except OSError:
        return []


def sc_writeback(ctx, device, storage):
    """cache.direct=off: the host page cache holds the guest's writes, and a
    failed flush there can never be healed (Linux drops the dirty pages,
    file-posix latches the error).  Specified by patch 0006: such a flush
    is not parked, it fails for the guest at once; QEMU warns once naming
    the node and the cure, and werror=retry over such a node warns at
    realize."""
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    st = common_setup(ctx, device, storage, cache_direct=False)
    q = VM(ctx, ctx.env.qemu, 'src', append=guest_append(a),
           disks=[Disk(st, device, pol)])
    boot(ctx, q)
    fails = []
    at_realize = qemu_warnings(ctx)
    check(at_realize and all('disk0' in w for w in at_realize), fails,
          'no warning at realize naming the node and the cure (cache.direct=on / '
          'cache=none): %s' % at_realize)
    warmup(ctx)
    # Guest writes must reach the page cache whole, so that the outage
    # is met by a flush (see FuseStorage.warm_page_cache)
    st.warm_page_cache()
    t_fail = ctx.tl.mark('outage-start')
    st.fail()
    bound = a.slack
    try:
        _, t_err, m = ctx.console.wait(r'E2E-WERR |I/O error', t_fail + bound + 10,
                                       what='the failed flush in the guest')
        err_after = t_err - t_fail
    except Fail:
        err_after = None
    check(err_after is not None and err_after <= bound, fails,
          'the failed flush reached the guest after %s s (expected at once, <= %.0f s)' % (
              '%.1f' % err_after if err_after is not None else 'never', bound))
    outage_wait(ctx, t_fail + a.outage)
    ctx.tl.mark('storage-restored')
    st.restore()
    res = finish_run(ctx, q)
    reported = [t - t_fail for t, ev in q.qmp.named('BLOCK_IO_ERROR', t_fail)
                if ev['data'].get('action') == 'report']
    check(reported and min(reported) <= bound, fails,
          'QEMU did not report the failed flush at once (BLOCK_IO_ERROR report at %s)'
          % ['%.1f' % x for x in reported[:3]])
    later = [w for w in qemu_warnings(ctx) if w not in at_realize]
    check(len(later) == 1 and 'disk0' in later[0], fails,
          'expected one warning naming the node and the cure at the failed flush, got %s'
          % later)
    check(not q.qmp.named('STOP', t_fail), fails, 'VM paused')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'acknowledged data not verified')
    ctx.info.verdict = ('the failed flush reached the guest %s after the outage began' % (
        '%.1f s' % err_after if err_after is not None else 'never'),
        'a write-back host cache cannot be retried')
    d = ('%s first_guest_error=%s qmp_reports=%d warnings_at_realize=%d warnings_later=%d '
         '(%s) qmp_io_errors=%s %s' % (
             summary(res), '+%.1fs' % err_after if err_after is not None else 'never',
             len(reported), len(at_realize), len(later), (later or at_realize or [''])[0][:120],
             actions(block_errors(q)), episode_detail(ctx)))
    return fails, d


def progress_b(ctx, since=None, until=None):
    return [(t, kv(m.group(1))) for t, _, _, m in ctx.console.find(r'E2EB-PROGRESS (.*)', since)
            if until is None or t <= until]


def sc_two_disks(ctx, device, storage):
    """disk 0 on the failing storage, disk 1 on a healthy file, both with the
    retry policy, same device type (one virtio-scsi HBA for scsi-hd); one
    workload on each: the healthy disk's I/O keeps flowing"""
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    st = common_setup(ctx, device, storage)
    img_b = new_image(ctx, name='disk-b', label='e2e2')
    stb = make_storage(ctx, 'file', img_b)
    stb.start()
    q = VM(ctx, ctx.env.qemu, 'src',
           append=guest_append(a, 'e2e.dev=LABEL=e2e e2e.dev2=LABEL=e2e2'),
           disks=[Disk(st, device, pol, node='disk0', index=0),
                  Disk(stb, device, pol, node='disk1', index=1)])
    boot(ctx, q)
    warmup(ctx)
    t_fail, t_rest = one_outage(ctx, q, st, a.outage)
    res = finish_run(ctx, q)
    fails, d = assess_retry_short(ctx, q, res, (t_fail, t_rest), a.outage, a.retry_interval,
                                  storage, st)
    rb = ctx.console.find(r'E2EB-RESULT (.*)')
    resb = kv(rb[-1][3].group(1)) if rb else {}
    fb = ctx.console.find(r'^E2EB-FSCK rc=(\d+)')
    resb['fsck_rc'] = int(fb[-1][3].group(1)) if fb else None
    check(rb, fails, 'no result from the healthy disk')
    fb_fails = []
    check_guest_clean(resb, fb_fails)
    fails += ['healthy disk: ' + f for f in fb_fails]
    # the healthy disk during the outage, against as long a time before it
    dur = t_rest - t_fail
    during = progress_b(ctx, t_fail, t_rest)
    before = progress_b(ctx, t_fail - dur, t_fail)
    n_during = (during[-1][1]['written'] - during[0][1]['written']) if len(during) > 1 else 0
    n_before = (before[-1][1]['written'] - before[0][1]['written']) if len(before) > 1 else 0
    busy = max([p.get('busy_ms', 0) for _, p in during] or [-1])
    stalls_b = ctx.console.find(r'E2EB-STALL (.*)', t_fail)
    check(n_during >= max(1, n_before // 2), fails,
          'healthy disk: %d files written during the outage, %d in as long before it'
          % (n_during, n_before))
    check(0 <= busy < 1000, fails, 'healthy disk: a write in flight for %d ms during the '
          'outage' % busy)
    check(not [x for x in stalls_b if x[0] <= t_rest + 1], fails,
          'healthy disk stalled: %s' % [x[2] for x in stalls_b][:2])
    lat = ('healthy disk during the %.1f s outage: %d files (%.1f/s; %.1f/s before), '
           'longest write in flight seen %d ms, its longest write+fsync of the run %s ms' % (
               dur, n_during, n_during / dur, n_before / dur, busy, resb.get('max_stall_ms')))
    ctx.info.verdict = ('the failing disk stalled %.1f s, the healthy one kept writing '
                        '(%d files)' % (res.get('max_stall_ms', 0) / 1000.0, n_during),
                        'one disk\'s outage does not hold up another')
    return fails, d + ' | ' + lat + ' | healthy: ' + summary(resb)


def irq_counts(ctx):
    """per virtio interrupt name: the sum over CPUs (E2E-IRQ lines)"""
    out = []
    for _, _, text, m in ctx.console.find(r'^E2E-IRQ\s+\d+:\s+(.*)'):
        fields = m.group(1).split()
        nums = []
        for f in fields:
            if f.isdigit():
                nums.append(int(f))
            else:
                break
        out.append((fields[-1], sum(nums)))
    return out


def run_multiqueue(ctx, device, storage, vq_mapping):
    a = ctx.args
    pol = retry_policy(a, a.retry_interval, a.retry_timeout)
    if device == 'virtio-blk':
        if vq_mapping:
            iothreads = ['io0', 'io1']
            dev = {'num-queues': 2, 'iothread-vq-mapping': [{'iothread': 'io0'},
                                                            {'iothread': 'io1'}]}
        else:
            iothreads = ['io0']
            dev = {'num-queues': 2, 'iothread': 'io0'}
        disk_kw = {'dev_props': dev}
        qname = r'req\.(\d+)'
    else:
        iothreads = ['io0']
        disk_kw = {'hba_props': {'num_queues': 2, 'iothread': 'io0'}}
        qname = r'request'
    q, st, res, times = sc_outage_common(
        ctx, device, storage, ctx.env.qemu, pol, a.outage, extra_append='e2e.jobs=2',
        qemu_kw={'smp': 2, 'iothreads': iothreads}, disk_kw=disk_kw)
    fails, d = assess_retry_short(ctx, q, res, times, a.outage, a.retry_interval, storage, st)
    queues = [(name, n) for name, n in irq_counts(ctx) if re.search(qname, name)]
    check(len(queues) == 2 and all(n > 0 for _, n in queues), fails,
          'expected 2 request queues with interrupts, got %s' % queues)
    check(res.get('writers') == 2, fails, 'guest writers: %s' % res.get('writers'))
    return fails, d + ' queue_interrupts=%s' % ','.join('%s:%d' % x for x in queues)


def sc_multiqueue(ctx, device, storage):
    return run_multiqueue(ctx, device, storage, vq_mapping=False)


def sc_multiqueue_vq_mapping(ctx, device, storage):
    if device != 'virtio-blk':
        raise Fail('iothread-vq-mapping is a virtio-blk property')
    return run_multiqueue(ctx, device, storage, vq_mapping=True)
