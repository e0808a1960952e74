"""3. Timeout precision: (error delivered to the guest - the request's first
failure) for retry-timeout 1 s and 10 s, retry-interval 1000 ms.

One guest: one O_DIRECT 4 KiB writer (bench-io -d 1) on one virtio-blk
disk on the loop/FUSE storage.  Per sample the storage fails and stays
down until QEMU reported the error (BLOCK_IO_ERROR action=report), then
comes back; the next sample starts once a write succeeded again (the disk
fails fast after a timeout until then).  From QEMU's trace: the first
failure is the request's first blk_retry_park (waited_ns 0), the delivery
is its virtio_blk_req_complete with an error status; both wall-clock time
stamps.  The policy's bound is [timeout, timeout + interval] (a request
fails at the first failed attempt that ends timeout ms or more after its
first failure); the goal allows 50 ms more.
"""

import time

from .guestvm import BenchVM, parse_trace, stats

INTERVAL = 1000


def measure(timeouts=(1000, 10000), samples=20, log=print):
    b = BenchVM('timeout', 'fuse', 1,
                {'werror': 'retry', 'rerror': 'retry', 'retry_interval': INTERVAL},
                ['-w', '-d', '1', '-p', '10'])
    marks = []
    try:
        b.start()
        time.sleep(1)
        for tmo in timeouts:
            b.set_retry(interval=INTERVAL, timeout=tmo)
            for _ in range(samples):
                i0 = b.qmp.mark()
                t_fail = time.time()
                b.fail()
                # the error the guest gets: BLOCK_IO_ERROR action=report
                b.qmp.wait_event('BLOCK_IO_ERROR', time.monotonic() + tmo / 1000.0 + 30,
                                 start=i0, pred=lambda ev: ev['data'].get('action') == 'report')
                b.restore()
                # a write succeeds again: fail-fast is over
                t_r = time.monotonic()

                def resumed():
                    hb = b.heartbeats(t_r + 0.2)
                    return len(hb) >= 2 and hb[-1][1]['done'] > hb[0][1]['done']
                b.ctx.console.wait_for(resumed, t_r + 30, 'writes to resume')
                marks.append((tmo, t_fail))
        time.sleep(0.3)
        guest_errors = len(b.ctx.console.find(r'BIO-ERR '))
        b.stop_qemu()
        trace = parse_trace(b.trace)
    finally:
        b.close()
    out = {}
    for k, (tmo, t_fail) in enumerate(marks):
        nxt = marks[k + 1][1] if k + 1 < len(marks) else float('inf')
        first = next((t for t, ev, f in trace if ev == 'blk_retry_park' and
                      t_fail <= t < nxt and int(f.get('waited_ns', 1)) == 0), None)
        err = next((t for t, ev, f in trace if ev == 'virtio_blk_req_complete' and
                    t_fail <= t < nxt and int(f.get('status', 0)) != 0), None)
        qemu_wait = next((int(f['waited_ns']) / 1e6 for t, ev, f in trace
                          if ev == 'blk_retry_timeout' and t_fail <= t < nxt), None)
        o = out.setdefault(str(tmo), {'delay_ms': [], 'qemu_waited_ms': []})
        if first is not None and err is not None:
            o['delay_ms'].append((err - first) * 1000)
        if qemu_wait is not None:
            o['qemu_waited_ms'].append(qemu_wait)
    for tmo, o in out.items():
        d = o['delay_ms']
        o['stats'] = stats(d)
        o['in_bound'] = sum(1 for x in d if int(tmo) <= x <= int(tmo) + INTERVAL + 50)
        log('  timeout %5s ms (interval %d): %d samples, error delivered after the first '
            'failure: min %.1f p50 %.1f p99 %.1f max %.1f ms; %d of %d within [timeout, '
            'timeout + interval + 50 ms]' % (
                tmo, INTERVAL, len(d), o['stats']['min'], o['stats']['p50'],
                o['stats']['p99'], o['stats']['max'], o['in_bound'], len(d)))
    out['guest_errors'] = guest_errors
    out['interval'] = INTERVAL
    return out
