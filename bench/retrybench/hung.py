"""4. Cost while hung: QEMU's CPU with 1024 requests parked across 8 disks,
for retry-interval 1000, 100 and 0; and, the same windows, QMP round trip
and the guest's heartbeat (its vCPU keeps running?).

One guest with 8 virtio-blk disks, each on its own loop/FUSE storage
(or NBD), bench-io with 128 writers per disk, started paused.  Per
interval: all 8 storages fail, the guest is let go ('g': 1024 writes
submitted, failed, parked) and paused again ('p': nothing new once they
complete), then a window of W seconds is measured:
  CPU    QEMU's threads (schedstat): main loop (the retry timer, the
         resubmissions, completions), vCPU (TCG), others; in % of one core
  QMP    query-status sent every 100 ms: round-trip times
  guest  bench-io prints a heartbeat every 100 ms (its own thread on the
         vCPU): the largest gap between two heartbeats arriving on the
         console
Then the storages come back and every episode ends.  The same window is
measured with nothing parked (the guest paused and idle) on the patched
and on the upstream binary: the floor that the retry cost adds to.
"""

import threading
import time

from .guestvm import UPSTREAM, BenchVM, cpu_delta, stats

DISKS = 8
DEPTH = 128


def window(b, seconds):
    """CPU per thread class (% of a core), QMP round trips, heartbeat gaps"""
    stop = threading.Event()
    rtts = []

    def prober():
        while not stop.is_set():
            t = time.monotonic()
            b.qmp.cmd('query-status', timeout=30)
            rtts.append((time.monotonic() - t) * 1000)
            stop.wait(0.1)
    th = threading.Thread(target=prober, daemon=True)
    a = b.threads_cpu()
    t0 = time.monotonic()
    th.start()
    time.sleep(seconds)
    stop.set()
    th.join(60)
    c = b.threads_cpu()
    el = time.monotonic() - t0
    cpu = {k: v / el * 100 for k, v in cpu_delta(a, c, b.q.pid).items()}
    hb = [t for t, _ in b.heartbeats(t0)]
    gaps = [(y - x) * 1000 for x, y in zip(hb, hb[1:])]
    return {'cpu_pct': cpu, 'qmp_ms': stats(rtts), 'hb_gap_ms': stats(gaps),
            'hb_long_gaps': [(round(x - t0, 1), round(g)) for x, g in zip(hb, gaps)
                             if g >= 500],
            'seconds': el}


def fmt(name, w):
    c = w['cpu_pct']
    return ('  hung %-28s QEMU CPU %6.2f %% of a core (main loop %6.2f, vCPU %6.2f, other '
            '%5.2f); QMP round trip p50 %.1f max %.1f ms; guest heartbeat gap max %.0f ms' % (
                name, c['total'], c['main'], c['vcpu'], c['other'], w['qmp_ms']['p50'],
                w['qmp_ms']['max'], w['hb_gap_ms']['max']))


def measure(intervals=(1000, 100, 0), seconds=60, kind='fuse', baseline=True, log=print,
            nbd_intervals=()):
    """nbd_intervals: the same on 8 NBD disks (qemu-storage-daemon killed:
    every attempt fails at once in QEMU's NBD client)"""
    out = {}
    args = ['-w', '-d', str(DEPTH), '-p', '10']
    pol = {'werror': 'retry', 'rerror': 'retry', 'retry_interval': 1000}
    if baseline:
        b = BenchVM('hung-upstream', kind, DISKS, {}, args, binary=UPSTREAM)
        try:
            b.start()
            b.send('p')
            b.wait_idle()
            time.sleep(1)
            out['upstream idle'] = w = window(b, seconds)
            log(fmt('upstream, idle guest', w))
        finally:
            b.close()
    if nbd_intervals:
        out.update(measure(nbd_intervals, seconds, 'nbd', False, log))
    b = BenchVM('hung-' + kind, kind, DISKS, pol, args)
    try:
        b.start()
        b.send('p')
        b.wait_idle()
        time.sleep(1)
        if baseline:
            out['patched idle'] = w = window(b, seconds)
            log(fmt('patched, idle guest', w))
        for iv in intervals:
            b.set_retry(interval=iv)
            i_end = b.qmp.mark()
            for i in range(DISKS):
                b.fail(i)
            b.send('g')
            b.wait_parked(DISKS * DEPTH, timeout=60)
            b.send('p')
            time.sleep(0.5)
            parked = b.parked()
            w = window(b, seconds)
            w['parked'] = parked
            out[('interval %d' if kind == 'fuse' else kind + ' interval %d') % iv] = w
            log(fmt('%s, %d parked, interval %d' % (kind, parked, iv), w))
            if w['hb_long_gaps']:
                log('  hung   heartbeat gaps of 500 ms or more (s into the window, ms): %s'
                    % w['hb_long_gaps'])
            for i in range(DISKS):
                b.restore(i)
            # every disk's episode ends: DISKS BLOCK_IO_RETRY_END events
            dl = time.monotonic() + 60
            for _ in range(DISKS):
                i_end = b.qmp.wait_event('BLOCK_IO_RETRY_END', dl, start=i_end)[0] + 1
            b.wait_idle()
    finally:
        b.close()
    return out
