"""What every scenario shares: images and storage, the one-outage run, the
stop/cont manager, QMP event helpers, the end-of-run checks (episodes,
guest fsck)."""

import json
import os
import threading
import time

from harness.checks import check, Fail
from harness.process import run_cmd
from harness.storage import FileStorage, FuseStorage, make_image, NbdStorage
from harness.vm import Disk, VM
from harness.workload import boot, finish, guest_append, outage_wait, post_run, wait_resumed, warmup

# a sparse qcow2 grows while the guest writes; a loop device and an NBD
# export have the size of the file when they are set up (FACTS), so the
# file is extended first
QCOW2_ROOM_MB = 256


def block_errors(q, since=None):
    return [ev['data'] for _, ev in q.qmp.named('BLOCK_IO_ERROR', since)]


def actions(errs):
    out = {}
    for e in errs:
        out[e.get('action')] = out.get(e.get('action'), 0) + 1
    return out


def new_image(ctx, name='disk', label='e2e', fmt='raw', prealloc=False, cluster_kb=None,
              size_mb=None):
    """an ext4 image, raw or converted to qcow2 (sparse, or with
    preallocation=metadata); returns its path"""
    raw = os.path.join(ctx.workdir, name + '.img')
    make_image(raw, size_mb or ctx.args.disk_mb, label)
    if fmt == 'raw':
        return raw
    out = os.path.join(ctx.workdir, name + '.qcow2')
    opts = []
    if prealloc:
        opts.append('preallocation=metadata')
    if cluster_kb:
        opts.append('cluster_size=%d' % (cluster_kb * 1024))
    run_cmd([ctx.env.qemu_img, 'convert', '-f', 'raw', '-O', 'qcow2'] +
            (['-o', ','.join(opts)] if opts else []) + [raw, out], timeout=120)
    os.unlink(raw)
    if os.path.getsize(out) < QCOW2_ROOM_MB << 20:
        os.truncate(out, QCOW2_ROOM_MB << 20)
    info = run_cmd([ctx.env.qemu_img, 'check', '--output=json', out], timeout=60)
    ctx.info.qcow2_before = json.loads(info)
    return out


def make_storage(ctx, kind, image, fmt='raw', cache_direct=True):
    a = ctx.args
    if kind == 'fuse':
        return FuseStorage(ctx, image, a.aio if cache_direct else 'threads', fmt,
                           cache_direct)
    if kind == 'nbd':
        return NbdStorage(ctx, image, ctx.env.qsd, a.nbd_reconnect_delay, fmt)
    if kind == 'nbd-tcp':
        return NbdStorage(ctx, image, ctx.env.qsd, a.nbd_tcp_reconnect_delay, fmt,
                          tcp=True)
    if kind == 'file':
        return FileStorage(ctx, image, fmt)
    raise Fail('unknown storage kind %s' % kind)


def common_setup(ctx, device, storage_kind, fmt='raw', prealloc=False, cache_direct=True,
                 cluster_kb=None):
    image = new_image(ctx, fmt=fmt, prealloc=prealloc, cluster_kb=cluster_kb)
    st = make_storage(ctx, storage_kind, image, fmt, cache_direct)
    st.image_path = image
    st.start()
    return st


def retry_policy(a, interval, timeout, rerror='retry'):
    return {'werror': 'retry', 'rerror': rerror,
            'retry_interval': interval, 'retry_timeout': timeout}


# --------------------------------------------------------------------------
# end-of-run checks

def _disk_key(qdev):
    """query-block names a scsi-hd by its id, the events by its QOM path"""
    return qdev if qdev.startswith('/') else '/machine/peripheral/' + qdev


def episodes_by_disk(q, since=None, segments=False):
    """per disk (QOM path): [('start'|'end', t, data)] in arrival order, from
    BLOCK_IO_ERROR action=retry (start) and BLOCK_IO_RETRY_END (end).
    A device that was deleted (DEVICE_DELETED) and added again is a new
    device with new counters: segments=True gives per disk the list of its
    incarnations' sequences, else only the last one's."""
    out = {}
    with q.qmp.cond:
        events = list(q.qmp.events)
    for t, ev in events:
        if since is not None and t < since:
            continue
        d = ev.get('data', {})
        if ev['event'] == 'DEVICE_DELETED' and d.get('path'):
            for key, segs in out.items():
                if key == d['path'] or key.startswith(d['path'] + '/'):
                    segs.append([])
            continue
        if ev['event'] == 'BLOCK_IO_ERROR' and d.get('action') == 'retry':
            kind = 'start'
        elif ev['event'] == 'BLOCK_IO_RETRY_END':
            kind = 'end'
        else:
            continue
        out.setdefault(_disk_key(d.get('qom-path', '?')), [[]])[-1].append((kind, t, d))
    if segments:
        return out
    return {k: segs[-1] for k, segs in out.items()}


def check_episodes(ctx, q, fails=None):
    """After a run, while QEMU still runs: query-block shows every episode
    ended, starts and ends alternate per disk, and the ends add up to
    query-blockstats' retry counters (episodes, recovered, failed, dropped,
    attempts).  Failures go to `fails` (default: the run's); returns the
    totals of the ends."""
    fails = ctx.fails if fails is None else fails
    tag = q.tag
    blocks = q.qmp.cmd('query-block')
    stats = {_disk_key(s['qdev']): s.get('stats', {}).get('retry')
             for s in q.qmp.cmd('query-blockstats') if s.get('qdev')}
    retry_disks = set()
    for b in blocks:
        r = b.get('retry')
        if r is None or not b.get('qdev'):
            continue
        key = _disk_key(b['qdev'])
        retry_disks.add(key)
        check(not r.get('active') and r.get('requests') == 0, fails,
              '%s %s: an episode is still active after the run (query-block retry %s)'
              % (tag, key, r))
    segs = episodes_by_disk(q, segments=True)
    totals = {'episodes': 0, 'recovered': 0, 'failed': 0, 'dropped': 0}
    for key in sorted(set(segs) | retry_disks):
        # every incarnation of the device: its starts and ends alternate,
        # and it ended with no episode open (an unplug releases them)
        for seq in segs.get(key, [[]]):
            kinds = [k for k, _, _ in seq]
            check(kinds == ['start', 'end'] * (len(kinds) // 2), fails,
                  '%s %s: retry start/end events do not alternate: %s' % (tag, key, kinds))
        # the device as it is now: its counters
        seq = segs.get(key, [[]])[-1]
        ends = [d for k, _, d in seq if k == 'end']
        st = stats.get(key)
        if st is None:
            check(not ends, fails, '%s %s: BLOCK_IO_RETRY_END on a disk without retry '
                  'counters' % (tag, key))
            continue
        sums = {'episodes': len(ends)}
        for f in ('recovered', 'failed', 'dropped', 'attempts'):
            sums[f] = sum(d.get(f, 0) for d in ends)
        for f, v in sums.items():
            check(st.get(f) == v, fails, '%s %s: query-blockstats retry %s=%s, the '
                  'BLOCK_IO_RETRY_END events add up to %s' % (tag, key, f, st.get(f), v))
        check(st.get('requests') == st.get('recovered', 0) + st.get('failed', 0) +
              st.get('dropped', 0), fails, '%s %s: retry counters do not add up: %s'
              % (tag, key, st))
        for f in totals:
            totals[f] += sums[f]
    ctx.info.episodes[tag] = totals
    return totals


def check_one_episode(ctx, q, fails):
    """one outage on one failing disk, with requests parked until the
    storage came back (none failed, none dropped, no error reached the
    guest, so the guest resubmitted nothing): exactly one episode, as the
    series defines it (from the first parked request to the end of the
    last; a failure while one is active joins it).  It cannot split: its
    requests complete only once the storage is back, and nothing fails
    after that.  This holds on nbd-tcp too: the requests held for
    reconnect-delay fail together and park in the one episode.  The
    totals are over every disk of `q`, so a healthy second disk must have
    none."""
    eps = ctx.info.episodes.get(q.tag, {})
    check(eps.get('episodes') == 1, fails, '%s episodes for one outage, expected exactly 1 '
          '(%s)' % (eps.get('episodes'), eps))


def episode_detail(ctx):
    eps = ctx.info.episodes
    return ' '.join('%s_episodes=%d(recovered=%d,failed=%d,dropped=%d)' % (
        tag, t['episodes'], t['recovered'], t['failed'], t['dropped'])
        for tag, t in sorted(eps.items()))


def wait_episodes_ended(q, timeout, what='the episodes to end'):
    """no retry episode active on any disk of q: now, or once the
    BLOCK_IO_RETRY_END events came (query-block asked again after each)"""
    dl = time.monotonic() + timeout
    while True:
        i = q.qmp.mark()
        if not any((b.get('retry') or {}).get('active') for b in q.qmp.cmd('query-block')):
            return
        if q.qmp.next_event('BLOCK_IO_RETRY_END', dl, start=i) is None:
            raise Fail('timeout waiting for %s' % what)


def check_fsck(ctx, res, fails, prefix='E2E'):
    """the guest's e2fsck -fn after unmounting (E2E-FSCK rc=N)"""
    rc = res.get('fsck_rc')
    check(rc == 0, fails, 'guest fsck of the disk: %s' % (
        'not run' if rc is None else 'rc=%s %s' % (rc, '; '.join(
            t for _, _, t, _ in ctx.console.find(r'%s-FSCK-OUT ' % prefix))[:300])))


def finish_run(ctx, q, deadline_s=90):
    """end a run: episode checks while QEMU runs, then stop the workload"""
    check_episodes(ctx, q)
    return finish(ctx, q, deadline_s)


def one_outage(ctx, q, st, outage, *, stop_manager=False, wait_resume=True,
               resume_deadline=None, poll=None):
    """fail storage for `outage` s (calling poll() meanwhile), restore, let
    the guest run post_seconds more.  Returns (t_fail, t_rest)."""
    mgr = StopManager(ctx, q) if stop_manager else None
    try:
        t_fail = ctx.tl.mark('outage-start')
        st.fail()
        outage_wait(ctx, t_fail + outage, poll)
        t_rest = ctx.tl.mark('storage-restored')
        st.restore()
        if wait_resume:
            dl = time.monotonic() + (resume_deadline or
                                     (30 + st.reconnect_lag(outage)))
            ctx.info.resume_t = wait_resumed(ctx, t_rest, dl)
        post_run(ctx, ctx.args.post_seconds)
    finally:
        if mgr:
            mgr.stop()
    if mgr:
        ctx.info.cycles = mgr.cycles
        ctx.info.paused_states = mgr.states
        q.wait_running(10)
    return t_fail, t_rest


def sc_outage_common(ctx, device, storage_kind, binary, policy, outage, *,
                     extra_append='', stop_manager=False, wait_resume=True,
                     resume_deadline=None, fmt='raw', prealloc=False, cluster_kb=None,
                     cache_direct=True, qemu_kw=None, disk_kw=None):
    """boot, warm up, fail storage for `outage` s, restore, finish.
    Returns (qemu, storage, result, times)."""
    st = common_setup(ctx, device, storage_kind, fmt=fmt, prealloc=prealloc,
                      cluster_kb=cluster_kb, cache_direct=cache_direct)
    q = make_qemu(ctx, binary, st, device, policy, guest_append(ctx.args, extra_append),
                  qemu_kw, disk_kw)
    boot(ctx, q)
    warmup(ctx)
    times = one_outage(ctx, q, st, outage, stop_manager=stop_manager,
                       wait_resume=wait_resume, resume_deadline=resume_deadline)
    res = finish_run(ctx, q)
    return q, st, res, times


def make_qemu(ctx, binary, st, device, policy, append, qemu_kw=None, disk_kw=None,
              tag='src'):
    disk = Disk(st, device, policy, **(disk_kw or {}))
    return VM(ctx, binary, tag, append=append, disks=[disk], **(qemu_kw or {}))


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
                    # (a short deadline: quit is looked at in between)
                    r = self.q.qmp.next_event('STOP', time.monotonic() + 0.3, start=idx)
                except Fail:
                    return          # QMP closed: QEMU went away
                if r is None:
                    continue
                idx = r[0] + 1
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
