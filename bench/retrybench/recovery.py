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
  nbd   qemu-storage-daemon started again; t_r = its socket accepts
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
"""

import random
import time

from .guestvm import BenchVM, parse_trace, request_spans, stats

DEPTH = 16


def run_kind(kind, points=(100, 1000, 5000, 'resubmit'), outages=20, log=print, seed=1):
    rnd = random.Random(seed)
    b = BenchVM('recovery-' + kind, kind, 1,
                {'werror': 'retry', 'rerror': 'retry', 'retry_interval': 1000},
                ['-w', '-d', str(DEPTH), '-p', '10'])
    marks = []          # (point, t_fail, t_restore, resubmit answer)
    try:
        b.start()
        time.sleep(2)
        for point in points:
            interval = 1000 if point == 'resubmit' else point
            b.set_retry(interval=interval)
            for _ in range(outages):
                t_fail = time.time()
                b.fail()
                b.wait_parked(DEPTH)
                time.sleep(rnd.uniform(1.0, 1.0 + interval / 1000.0))
                n_end = len(b.qmp.named('BLOCK_IO_RETRY_END'))
                b.restore()
                t_r = time.time()
                answer = None
                if point == 'resubmit':
                    answer = b.qmp.cmd('block-retry-resubmit', {'id': b.qom(0)})
                marks.append((point, t_fail, t_r, answer))
                dl = time.monotonic() + interval / 1000.0 + 40
                while len(b.qmp.named('BLOCK_IO_RETRY_END')) <= n_end:
                    if time.monotonic() > dl:
                        raise RuntimeError('%s: no BLOCK_IO_RETRY_END %.0f s after the '
                                           'restore' % (kind, interval / 1000.0 + 40))
                    time.sleep(0.02)
                time.sleep(0.3)           # healthy I/O between outages
        time.sleep(0.5)
        ends = [ev for _, ev in b.qmp.named('BLOCK_IO_RETRY_END')]
        b.stop_qemu()
        trace = parse_trace(b.trace)
    finally:
        b.close()
    return analyse(kind, marks, trace, ends, log)


def analyse(kind, marks, trace, ends, log):
    spans = request_spans(trace)
    sleeps = [(t, int(f['timeout'])) for t, ev, f in trace if ev == 'nbd_connect_thread_sleep']
    res = {}
    for k, (point, t_fail, t_r, answer) in enumerate(marks):
        nxt = marks[k + 1][1] if k + 1 < len(marks) else float('inf')
        lat = [c - t_r for s, c, status in spans if s < t_r < c < nxt]
        r = res.setdefault(point, {'lat_ms': [], 'parked': [], 'lag_ms': [],
                                   'after_conn_ms': [], 'resubmitted': []})
        r['lat_ms'] += [x * 1000 for x in lat]
        r['parked'].append(len(lat))
        if answer is not None:
            r['resubmitted'].append(answer.get('requests'))
        if kind == 'nbd':
            # the connection thread's first wake-up (connect attempt) after t_r
            wake = [t + s for t, s in sleeps if t_fail <= t + s and t + s >= t_r and t < nxt]
            if wake:
                t_c = min(wake)
                r['lag_ms'].append((t_c - t_r) * 1000)
                r['after_conn_ms'] += [(t_r + x - t_c) * 1000 for x in lat]
    out = {}
    for point, r in res.items():
        s = stats(r['lat_ms'])
        o = {'latency_ms': s, 'parked_per_outage': r['parked'],
             'outages': len(r['parked'])}
        line = ('  recovery %-4s %-8s %2d outages, %3d parked requests: latency after the '
                'storage is back p50 %.1f p99 %.1f max %.1f ms' % (
                    kind, point, len(r['parked']), s['n'], s['p50'], s['p99'], s['max']))
        if r['resubmitted']:
            o['resubmitted'] = r['resubmitted']
        if kind == 'nbd':
            o['nbd_lag_ms'] = stats(r['lag_ms'])
            o['after_connect_ms'] = stats(r['after_conn_ms'])
            line += ('; NBD client reconnect lag p50 %.0f max %.0f ms, latency after its '
                     'reconnection p99 %.1f max %.1f ms' % (
                         o['nbd_lag_ms']['p50'], o['nbd_lag_ms']['max'],
                         o['after_connect_ms']['p99'], o['after_connect_ms']['max']))
        if any(n != r['parked'][0] for n in r['parked']) or r['parked'][0] != DEPTH:
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
