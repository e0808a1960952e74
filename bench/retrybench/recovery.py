"""2. Recovery latency: the storage comes back at time t_r; how long until
each parked request completes for the guest.

One guest per storage kind: 16 O_DIRECT 4 KiB writers (bench-io -d 16,
each writing again 10 ms after its previous write completed) on one
virtio-blk disk, werror=retry,rerror=retry.  Per outage: the storage
fails; once all 16 requests are parked (query-block) it stays down for a
random 1 s + [0, interval] more (so that t_r falls anywhere in the retry
interval);
then it comes back at t_r:
  fuse  'ok' written to failing-fuse's control file (the write returns once
        it switched; the loop device answers again at once)
  nbd   qemu-storage-daemon started again; t_r = its pidfile was
        written (after its NBD server is set up, before it accepts)
and the time from t_r to each parked request's completion
(virtio_blk_req_complete in QEMU's trace; a request is parked in this
outage if it was submitted before t_r and completed after it) is one
sample.  Points: retry-interval 100, 1000, 5000 (block-retry-set), and
'resubmit': interval 1000 with block-retry-resubmit sent at t_r.

NBD: QEMU's NBD client reconnects on its own schedule.  Its connection
thread (nbd/client-connection.c, connect_thread_func) tries to connect,
and after each failure sleeps 1, 2, 4, 8, 16, 16 ... s (trace
nbd_connect_thread_sleep), so the client has a connection again only at
its first wake-up after t_r: t_c.  The lag t_c - t_r is the NBD client's,
and the latency after t_c is the retry policy's; both are reported.

Storage kinds: 'fuse' (loop/FUSE), 'nbd' (qemu-storage-daemon on a unix
socket), 'nbd-tcp' (the same on 127.0.0.1, a TCP port kept across the
daemon's restarts).

Binaries (matrix(), issue 19), the same guest, storage and outages (the
same seed, so the same outage lengths) on each:
  after     the series (build/qemu, $QEMU): werror=retry,rerror=retry;
            with its NBD patches, a retry attempt asks the NBD client for a
            connection at once, and the client's reconnection resubmits
            the parked requests (bdrv_storage_back)
  before    the series without its NBD patches ($QEMU_BEFORE, default
            build/qemu-nbd/build): werror=retry,rerror=retry
  upstream  upstream QEMU ($QEMU_UPSTREAM), werror=stop,rerror=stop, and a
            manager thread (KubeVirt-style) that every 1 s sends
            query-status and, when the VM is paused on an I/O error
            (io-error, or paused), query-block and cont.  Its 'interval'
            only sets how long each outage lasts (1 s + [0, interval]).
            "Parked" = the VM stopped (STOP); done = the VM running again
            for 1.2 s without a new STOP.  The latency is measured as for
            the others (t_r -> virtio_blk_req_complete of each request
            submitted before t_r).
The NBD client's reconnection t_c (for the lag) is its first connection
attempt after t_r: the end of a back-off sleep (nbd_connect_thread_sleep),
or, with the NBD patches, an attempt asked for (nbd_connect_thread_woken)
or a background connection (nbd_connect_thread_ready), whichever is first.
"""

import mmap
import multiprocessing
import os
import random
import threading
import time

from .guestvm import BenchVM, Fail, env, parse_trace, request_spans, stats
from .binaries import BEFORE, PATCHED, UPSTREAM, git_head, sha256
from .qtestvirtio import wait_for_binary

DEPTH = 16
VARIANTS = ('after', 'before', 'upstream', 'probe', 'qprobe')
GOAL_MS = 50            # issue 19: p99 at most 50 ms, whatever the interval
MANAGER_PERIOD = 1.0
PROBE_PERIOD = 0.1      # the probe variant: one read every 100 ms while requests wait
PROBE_BYTES = 4096
# the qprobe variant: the series' own probe (patch 16, retry-probe-interval);
# 80 ms for a p99 within 100 ms (the outside probe measured p99 = period +
# 15-22 ms)
QPROBE_MS = 80


def binary_of(variant):
    return {'after': PATCHED, 'probe': PATCHED, 'qprobe': PATCHED, 'before': BEFORE,
            'upstream': UPSTREAM}[variant]


def qemu_probes(b):
    """the qprobe variant: QEMU's count of probe reads (query-blockstats)"""
    for dev in b.qmp.cmd('query-blockstats'):
        retry = dev.get('stats', {}).get('retry')
        if retry is not None:
            return retry['probes']
    raise Fail('query-blockstats: no disk with retry counters')


def thread_cpu(tid):
    """CPU seconds of thread `tid` of this process (schedstat, ns)"""
    with open('/proc/self/task/%d/schedstat' % tid) as f:
        return int(f.read().split()[0]) / 1e9


def process_cpu(b):
    """CPU seconds of all of QEMU's threads"""
    return sum(s for _, s in b.threads_cpu().values())


def _n_outages(outages, point):
    """outages: a count, or {point: count} with an optional 'default'"""
    if isinstance(outages, dict):
        return outages.get(point, outages.get(str(point), outages.get('default', 20)))
    return outages


class Manager(threading.Thread):
    """the upstream baseline's manager: every `period` s query-status; when
    the VM is paused on an error, query-block (what a manager reads to
    see which disk) and cont.  It polls on purpose: it is the model of a
    polling manager (KubeVirt's), whose period is part of what is measured"""

    def __init__(self, qmp, period=MANAGER_PERIOD):
        super().__init__(daemon=True, name='manager')
        self.qmp = qmp
        self.period = period
        self.halt = threading.Event()
        self.conts = []             # wall-clock times of the conts sent
        self.errors = []

    def run(self):
        nxt = time.monotonic()
        while not self.halt.is_set():
            try:
                st = self.qmp.cmd('query-status')
                if st.get('status') in ('io-error', 'paused'):
                    self.qmp.cmd('query-block')
                    self.qmp.cmd('cont', check=False)
                    self.conts.append(time.time())
            except Fail as e:
                self.errors.append(str(e))
                if self.qmp.closed:
                    return
            nxt += self.period
            self.halt.wait(max(0.0, nxt - time.monotonic()))

    def stop(self):
        self.halt.set()
        self.join(5)


class ProbeManager(threading.Thread):
    """the 'probe' variant's manager (issue 19: does a cheap probe pay on
    storage that has no "back" event?), outside QEMU: from a
    BLOCK_IO_ERROR with action 'retry' (an episode begins: requests are
    parked) to the episode's BLOCK_IO_RETRY_END, one O_DIRECT read of the
    first `size` bytes of the device QEMU uses every `period` s; after a
    read that succeeds, block-retry-resubmit of the disk (then it waits up
    to 1 s for the episode to end, and probes again if it does not).
    Between episodes it only waits for the next BLOCK_IO_ERROR (it wakes
    once a second to see whether it should stop): no I/O, no QMP."""

    def __init__(self, qmp, path, qom, start, period=PROBE_PERIOD, size=PROBE_BYTES):
        super().__init__(daemon=True, name='probe-manager')
        self.qmp = qmp
        self.qom = qom
        self.start_index = start        # QMP events from this index on
        self.period = period
        self.buf = mmap.mmap(-1, size)  # page aligned, as O_DIRECT needs
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
        self.halt = threading.Event()
        self.tid = None
        self.ready = threading.Event()
        self.probes = []            # (time.time(), read succeeded)
        self.resubmits = []         # (time.time(), requests resubmitted)
        self.episodes = []          # (time.time() of its BLOCK_IO_ERROR, of its end or None)
        self.errors = []

    def cpu(self):
        """this thread's CPU seconds so far"""
        return thread_cpu(self.tid)

    def _read(self):
        try:
            return os.preadv(self.fd, [self.buf], 0) == len(self.buf)
        except OSError:
            return False

    def run(self):
        self.tid = threading.get_native_id()
        self.ready.set()
        i = self.start_index
        try:
            while not self.halt.is_set():
                r = self.qmp.next_event('BLOCK_IO_ERROR', time.monotonic() + 1.0, start=i,
                                        pred=lambda ev: ev['data'].get('action') == 'retry')
                if r is None:
                    continue
                i = r[0] + 1
                self.episodes.append([time.time(), None])
                i = self._episode(i)
                self.episodes[-1][1] = time.time()
        except Fail as e:
            self.errors.append(str(e))

    def _episode(self, i):
        """probe until the episode's BLOCK_IO_RETRY_END; returns the index
        after it"""
        nxt = time.monotonic()
        while not self.halt.is_set():
            ok = self._read()
            self.probes.append((time.time(), ok))
            if ok:
                a = self.qmp.cmd('block-retry-resubmit', {'id': self.qom}, check=False)
                self.resubmits.append((time.time(), a.get('requests')))
                nxt = time.monotonic() + 1.0
            else:
                nxt = max(nxt + self.period, time.monotonic())
            end = self.qmp.next_event('BLOCK_IO_RETRY_END', nxt, start=i)
            if end is not None:
                return end[0] + 1
        return i

    def stop(self):
        self.halt.set()
        self.join(5)
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _wait_running_again(qmp, start, t_r_mono, deadline, quiet=1.2):
    """the upstream baseline is done with an outage once the VM runs again
    and stays running: a RESUME (at or after event index `start`) followed
    by `quiet` s without a STOP, counted from the later of the RESUME and
    the restore"""
    i = start
    while True:
        r = qmp.next_event('RESUME', deadline, start=i)
        if r is None:
            return False
        i, t, _ = r
        i += 1
        again = qmp.next_event('STOP', max(t, t_r_mono) + quiet, start=i)
        if again is None:
            return True
        i = again[0] + 1


def run_kind(kind, points=(100, 1000, 5000, 'resubmit'), outages=20, log=print, seed=1,
             variant='after', deadline=None):
    """one guest on storage `kind` with the binary of `variant`, every
    point in turn; `deadline` (time.time()): no outage is begun that could
    end after it (the points not reached are left out)"""
    rnd = random.Random(seed)
    stop_mode = variant == 'upstream'
    probe_mode = variant == 'probe'
    qprobe_mode = variant == 'qprobe'
    if (probe_mode or qprobe_mode) and kind != 'fuse':
        raise ValueError('the probe variants read a host file or device: kind fuse only')
    binary = binary_of(variant)
    wait_for_binary(binary)
    policy = ({'werror': 'stop', 'rerror': 'stop'} if stop_mode else
              {'werror': 'retry', 'rerror': 'retry', 'retry_interval': 1000})
    if qprobe_mode:
        policy['retry-probe-interval'] = QPROBE_MS
    b = BenchVM('recovery-%s-%s' % (variant, kind), kind, 1, policy,
                ['-w', '-d', str(DEPTH), '-p', '10'], binary=binary)
    marks = []          # (point, t_fail, t_restore, resubmit answer)
    parked_cpu = []     # per outage, all parked until t_r: (point, snapshot, snapshot)
    idle = []           # probe: nothing parked (no episode): (snapshot, snapshot)
    mgr = None
    cut = []

    def snap():
        """(time.time(), QEMU's CPU s, the probe manager's CPU s, its
        probes or QEMU's)"""
        return (time.time(), process_cpu(b), mgr.cpu() if probe_mode else 0.0,
                len(mgr.probes) if probe_mode else qemu_probes(b) if qprobe_mode else 0)
    try:
        b.start()
        if stop_mode:
            mgr = Manager(b.qmp)
            mgr.start()
        elif probe_mode:
            mgr = ProbeManager(b.qmp, b.device_path(0), b.qom(0), b.qmp.mark())
            mgr.start()
            mgr.ready.wait(5)
        idle_from = snap()
        time.sleep(2)
        for point in points:
            interval = 1000 if point == 'resubmit' else point
            if not stop_mode:
                b.set_retry(interval=interval)
            n = _n_outages(outages, point)
            for k in range(n):
                # worst case of one outage: 1 s + interval down, up to
                # another interval (+ the NBD back-off) to recover
                if deadline and time.time() + 2 * interval / 1000.0 + 20 > deadline:
                    cut.append((point, k, n))
                    log('  recovery %s %s %s: deadline, %d of %d outages' % (
                        variant, kind, point, k, n))
                    break
                if probe_mode or qprobe_mode:
                    idle.append((idle_from, snap()))
                t_fail = time.time()
                i0 = b.qmp.mark()
                if stop_mode:
                    b.fail()
                    b.qmp.wait_event('STOP', time.monotonic() + 30, start=i0)
                else:
                    b.fail()
                    b.wait_parked(DEPTH)
                c0 = snap()
                time.sleep(rnd.uniform(1.0, 1.0 + interval / 1000.0))
                i_end = b.qmp.mark()
                c1 = snap()
                t_r = b.restore()
                parked_cpu.append((point, c0, c1))
                t_r_mono = time.monotonic() - (time.time() - t_r)
                answer = None
                if point == 'resubmit':
                    answer = b.qmp.cmd('block-retry-resubmit', {'id': b.qom(0)})
                marks.append((point, t_fail, t_r, answer))
                dl = time.monotonic() + interval / 1000.0 + 40
                if stop_mode:
                    ok = _wait_running_again(b.qmp, i0, t_r_mono, dl)
                else:
                    ok = b.qmp.next_event('BLOCK_IO_RETRY_END', dl, start=i_end) is not None
                if not ok:
                    raise RuntimeError('%s %s: not recovered %.0f s after the restore' % (
                        variant, kind, interval / 1000.0 + 40))
                if probe_mode or qprobe_mode:
                    idle_from = snap()      # the episode ended: nothing parked
                time.sleep(0.3)           # healthy I/O between outages
            if cut:
                break
        time.sleep(0.5)
        if probe_mode or qprobe_mode:
            idle.append((idle_from, snap()))
        if mgr:
            mgr.stop()
        ends = [ev for _, ev in b.qmp.named('BLOCK_IO_RETRY_END')]
        stops = [t for t, _ in b.qmp.named('STOP')]
        b.stop_qemu()
        trace = parse_trace(b.trace)
    finally:
        if mgr:
            mgr.stop()
        b.close()
    out = analyse(kind, marks, trace, ends, log, prefix='%s ' % variant)
    if stop_mode:
        per = _per_outage(mgr.conts, marks)
        for point in {m[0] for m in marks}:
            out[str(point)]['conts_per_outage'] = [c for c, m in zip(per, marks)
                                                   if m[0] == point]
        out['episodes'] = {'stops': len(stops), 'conts': len(mgr.conts),
                           'manager_errors': mgr.errors[:5]}
    for point in {m[0] for m in marks}:
        c = out[str(point)]['cpu_parked'] = _cpu_parked([(c0, c1) for p, c0, c1 in parked_cpu
                                                         if p == point])
        log('  recovery %s %s %s: while parked (%.1f s): QEMU %.2f %% of a core%s' % (
            variant, kind, point, c['seconds'], c['qemu_cpu_pct'] or 0,
            ', probe manager %.3f %% (%d probes, %.3f ms each)' % (
                c['manager_cpu_pct'], c['probes'], c['manager_cpu_ms_per_probe'] or 0)
            if probe_mode else ''))
    if probe_mode:
        out['probe'] = _probe_summary(mgr, idle, log, '%s %s' % (variant, kind))
    if qprobe_mode:
        out['probe'] = _qprobe_summary(idle, log, '%s %s' % (variant, kind))
    if cut:
        out['cut_by_deadline'] = [{'point': p, 'done': k, 'planned': n} for p, k, n in cut]
    return out


def _cpu_parked(windows):
    """CPU over the windows in which all requests were parked (from all
    parked to just before t_r): QEMU's and the probe manager's, in % of a
    core, and the manager's probes"""
    secs = sum(c1[0] - c0[0] for c0, c1 in windows)
    qemu = sum(c1[1] - c0[1] for c0, c1 in windows)
    mgr = sum(c1[2] - c0[2] for c0, c1 in windows)
    probes = sum(c1[3] - c0[3] for c0, c1 in windows)
    return {'seconds': round(secs, 3), 'qemu_cpu_pct': 100.0 * qemu / secs if secs else None,
            'manager_cpu_pct': 100.0 * mgr / secs if secs else None,
            'manager_cpu_ms_per_probe': 1000.0 * mgr / probes if probes else None,
            'probes': probes, 'probes_per_s': probes / secs if secs else None,
            'qemu_cpu_pct_per_outage': [round(100.0 * (c1[1] - c0[1]) / (c1[0] - c0[0]), 3)
                                        for c0, c1 in windows if c1[0] > c0[0]]}


def _probe_summary(mgr, idle, log, tag):
    """what the probe manager did: probes and resubmits, its CPU with
    nothing parked (between episodes)"""
    secs = sum(b[0] - a[0] for a, b in idle)
    cpu = sum(b[2] - a[2] for a, b in idle)
    probes = sum(b[3] - a[3] for a, b in idle)
    out = {'probes': len(mgr.probes), 'probes_ok': sum(1 for _, ok in mgr.probes if ok),
           'resubmits': len(mgr.resubmits),
           'resubmitted_requests': [n for _, n in mgr.resubmits],
           'episodes': len(mgr.episodes), 'errors': mgr.errors[:5],
           'idle': {'seconds': round(secs, 3), 'manager_cpu_ms': round(1000.0 * cpu, 3),
                    'manager_cpu_pct': 100.0 * cpu / secs if secs else None,
                    'probes': probes}}
    log('  recovery %s: %d probes (%d succeeded), %d resubmits, %d episodes; with nothing '
        'parked (%.1f s): %d probes, manager CPU %.2f ms' % (
            tag, out['probes'], out['probes_ok'], out['resubmits'], out['episodes'], secs,
            probes, 1000.0 * cpu))
    return out


def _qprobe_summary(idle, log, tag):
    """QEMU's own probes with nothing parked (between episodes): there
    must be none; and QEMU's CPU meanwhile"""
    secs = sum(b[0] - a[0] for a, b in idle)
    cpu = sum(b[1] - a[1] for a, b in idle)
    probes = sum(b[3] - a[3] for a, b in idle)
    out = {'idle': {'seconds': round(secs, 3), 'probes': probes,
                    'qemu_cpu_pct': 100.0 * cpu / secs if secs else None,
                    'manager_cpu_ms': 0.0}}
    log('  recovery %s: with nothing parked (%.1f s): %d probes, QEMU CPU %.2f %%' % (
        tag, secs, probes, out['idle']['qemu_cpu_pct'] or 0))
    return out


def _per_outage(times, marks):
    """how many of `times` (wall clock) fall in each outage (its failure to
    the next one's)"""
    out = []
    for k, (_, t_fail, _, _) in enumerate(marks):
        nxt = marks[k + 1][1] if k + 1 < len(marks) else float('inf')
        out.append(sum(1 for t in times if t_fail <= t < nxt))
    return out


def analyse(kind, marks, trace, ends, log, prefix=''):
    spans = request_spans(trace)
    sleeps = [(t, int(f['timeout'])) for t, ev, f in trace if ev == 'nbd_connect_thread_sleep']
    # with the NBD patches: an attempt asked for now, a background connection
    asked = [t for t, ev, f in trace
             if ev in ('nbd_connect_thread_woken', 'nbd_connect_thread_ready')]
    res = {}
    for k, (point, t_fail, t_r, answer) in enumerate(marks):
        nxt = marks[k + 1][1] if k + 1 < len(marks) else float('inf')
        lat = [c - t_r for s, c, status in spans if s < t_r < c < nxt]
        r = res.setdefault(point, {'lat_ms': [], 'parked': [], 'lag_ms': [],
                                   'after_conn_ms': [], 'resubmitted': [], 'max_ms': []})
        r['lat_ms'] += [x * 1000 for x in lat]
        r['parked'].append(len(lat))
        r['max_ms'].append(round(max(lat) * 1000, 1) if lat else None)
        if answer is not None:
            r['resubmitted'].append(answer.get('requests'))
        if kind.startswith('nbd'):
            # the connection thread's first wake-up (connect attempt) after t_r
            wake = [t + s for t, s in sleeps if t_fail <= t + s and t + s >= t_r and t < nxt]
            wake += [t for t in asked if t_r <= t < nxt]
            if wake:
                t_c = min(wake)
                r['lag_ms'].append((t_c - t_r) * 1000)
                r['after_conn_ms'] += [(t_r + x - t_c) * 1000 for x in lat]
    out = {}
    for point, r in res.items():
        s = stats(r['lat_ms'])
        o = {'latency_ms': s, 'parked_per_outage': r['parked'],
             'max_ms_per_outage': r['max_ms'], 'outages': len(r['parked'])}
        line = ('  recovery %s%-7s %-8s %2d outages, %3d parked requests: latency after the '
                'storage is back p50 %.1f p99 %.1f max %.1f ms' % (
                    prefix, kind, point, len(r['parked']), s['n'], s['p50'], s['p99'], s['max']))
        if r['resubmitted']:
            o['resubmitted'] = r['resubmitted']
        if kind.startswith('nbd') and r['lag_ms']:
            o['nbd_lag_ms'] = stats(r['lag_ms'])
            o['after_connect_ms'] = stats(r['after_conn_ms'])
            line += ('; NBD client reconnect lag p50 %.0f max %.0f ms, latency after its '
                     'reconnection p99 %.1f max %.1f ms' % (
                         o['nbd_lag_ms']['p50'], o['nbd_lag_ms']['max'],
                         o['after_connect_ms']['p99'], o['after_connect_ms']['max']))
        if r['parked'] and (any(n != r['parked'][0] for n in r['parked']) or
                            r['parked'][0] != DEPTH):
            line += ' (parked per outage: %s)' % r['parked']
        log(line)
        out[str(point)] = o
    out['episodes'] = {'count': len(ends),
                       'recovered': sum(e['data'].get('recovered', 0) for e in ends),
                       'failed': sum(e['data'].get('failed', 0) for e in ends)}
    return out


def measure(kinds=('fuse', 'nbd'), points=(100, 1000, 5000, 'resubmit'), outages=20,
            log=print):
    return {k: run_kind(k, points, outages, log) for k in kinds}


def _lane(lane, deadline, q):
    """one process: the jobs of `lane` in turn"""
    for variant, kind, points, outages in lane:
        tag = '[%s %s]' % (variant, kind)
        try:
            r = run_kind(kind, points, outages, variant=variant, deadline=deadline,
                         log=lambda m, tag=tag: print('%s %s' % (tag, m.strip()), flush=True))
        except Exception as e:          # pylint: disable=broad-except
            import traceback
            traceback.print_exc()
            r = {'error': repr(e)}
        q.put((variant, kind, r))


def matrix(lanes, log=print, time_budget=None):
    """issue 19: recovery latency per (binary, storage kind, point).
    lanes: [[(variant, kind, points, outages), ...], ...]: each lane runs
    its jobs in turn in its own process, and the lanes run at the same
    time (a guest whose requests are parked is idle: most of a long
    interval's run is waiting).  time_budget (s): no outage begins that
    could end later than that after the start."""
    e = env()                   # the bench guest built once, before the lanes fork
    t0 = time.time()
    deadline = time.time() + time_budget if time_budget else None
    meta = {'date': time.strftime('%Y-%m-%d %H:%M:%S %Z'),
            'series_commit': git_head(PATCHED), 'goal_p99_ms': GOAL_MS,
            'manager_period_s': MANAGER_PERIOD, 'storage_daemon': e.qsd,
            'storage_daemon_sha256': sha256(e.qsd),
            'lanes': [[list(j[:2]) for j in lane] for lane in lanes],
            'binaries': {}}
    for v in VARIANTS:
        path = binary_of(v)
        wait_for_binary(path)
        meta['binaries'][v] = {'path': path, 'sha256': sha256(path),
                               'tree_head': git_head(path)}
    for v, m in meta['binaries'].items():
        log('  %-8s %s sha256 %s (tree at %s)' % (v, m['path'], m['sha256'][:16],
                                                  (m['tree_head'] or '?')[:12]))
    ctx = multiprocessing.get_context('fork')
    q = ctx.Queue()
    procs = [ctx.Process(target=_lane, args=(lane, deadline, q), name='lane%d' % i)
             for i, lane in enumerate(lanes)]
    for p in procs:
        p.start()
    out = {'meta': meta}
    want = sum(len(lane) for lane in lanes)
    got = 0
    while got < want:
        try:
            variant, kind, r = q.get(timeout=5)
        except Exception:                # pylint: disable=broad-except  (queue.Empty)
            if not any(p.is_alive() for p in procs) and q.empty():
                break
            continue
        got += 1
        # two lanes may run points of the same (variant, kind): merge
        cell = out.setdefault(variant, {}).setdefault(kind, {})
        for k, v in r.items():
            if k in cell and isinstance(v, list):
                cell[k] = cell[k] + v
            elif k in cell and isinstance(v, dict) and k == 'episodes':
                cell[k] = {e: cell[k].get(e, 0) + n if isinstance(n, (int, float)) else n
                           for e, n in v.items()}
            else:
                cell[k] = v
    for p in procs:
        p.join(30)
    meta['seconds'] = round(time.time() - t0, 1)
    meta['time_budget_s'] = time_budget
    return out
