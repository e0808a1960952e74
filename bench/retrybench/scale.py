"""5. Scale: parked requests 1..4096 and disks 1..64, CPU per attempt and
memory, patched QEMU (werror=retry) side by side with upstream QEMU
(werror=stop, which parks failed requests in the same place).

QEMU runs under qtest (virtual clock), so an attempt happens exactly when
this driver moves the clock (clock_step by the interval), and the CPU it
costs is the main thread's CPU time (all the work: no iothread, the
storage is raw over blkdebug over null-co, failing every read and write
with EIO, completing in the main loop).  Upstream's counterpart of an
attempt is 'cont' after the I/O error stopped the VM: it resubmits every
parked request, which fail and stop the VM again.

Per point:
  1. the requests are written into the virtqueues (indirect descriptors,
     queue-size 1024, up to 4 queues per disk), memory measured;
  2. overhead: K rounds of what an attempt round costs the driver with
     nothing parked (clock_step + query-block polls; upstream: stop and
     cont), main thread CPU;
  3. all queues kicked: every request fails once and is parked; memory
     measured again (-> bytes per parked request);
  4. K attempts (patched: clock_step(interval), then poll query-block
     until every disk counted one more attempt and has every request
     parked again; upstream: cont, then its STOP event, no QMP command,
     since 2026-12-07: before, query-status polls); CPU per
     attempt = (CPU of the K rounds - overhead) / K; memory again (->
     growth per attempt, which must be zero).
"""

import math
import shutil
import tempfile
import time

from .binaries import PATCHED, UPSTREAM
from .qtestvirtio import Dev, Machine, device_args, prepare_indirect

QSIZE = 1024
WARM_ATTEMPTS = 3      # massif: heap growth measured after these
TABLES = 0x6000000
INTERVAL_MS = 1000


def disk_args(i, variant, nqueues):
    a = ['-blockdev', 'null-co,node-name=n%d,size=%d' % (i, 1 << 30),
         '-blockdev', 'blkdebug,node-name=b%d,image=n%d,'
         'inject-error.0.event=read_aio,inject-error.0.errno=5,'
         'inject-error.1.event=write_aio,inject-error.1.errno=5' % (i, i),
         '-blockdev', 'raw,node-name=d%d,file=b%d' % (i, i)]
    if variant == 'patched':
        pol = ',werror=retry,rerror=retry,retry-interval=%d' % INTERVAL_MS
    else:
        pol = ',werror=stop,rerror=stop'
    extra = ',queue-size=%d,num-queues=%d%s' % (QSIZE, nqueues, pol)
    return a + device_args('blk', i, 4 + i // 8, i % 8, 'd%d' % i, extra,
                           multifunction=True)


def split(n, parts):
    return [n // parts + (1 if k < n % parts else 0) for k in range(parts)]


def retry_state(m):
    out = []
    for b in m.qmp('query-block'):
        r = b.get('retry')
        if r is not None:
            out.append((r.get('attempts', 0), r.get('requests', 0)))
    return out


def wait_parked(m, want_per_disk, attempts_before=None, timeout=120):
    """patched: every disk has its requests parked (after one more attempt
    than attempts_before); query-block, as QEMU has no event per parked
    request or attempt"""
    dl = time.monotonic() + timeout
    while True:
        st = retry_state(m)
        ok = all(req == w for (_, req), w in zip(st, want_per_disk))
        if ok and attempts_before is not None:
            ok = all(a > b for (a, _), b in zip(st, attempts_before))
        if ok:
            return st
        if time.monotonic() > dl:
            raise RuntimeError('requests not parked: %s, want %s' % (st, want_per_disk))


def wait_stopped(m, timeout=120):
    """upstream, werror=stop: the VM stopped on the error (its STOP event,
    the first since m.drop_events())"""
    m.wait_event('STOP', timeout)


def settle(m, rounds=5):
    for _ in range(rounds):
        m.qmp('query-status')


def heap_bytes(m, work):
    """live heap bytes (massif: requested + allocator overhead) now, from a
    snapshot asked through vgdb"""
    import os
    import subprocess
    path = os.path.join(work, 'snapshot')
    subprocess.run(['vgdb', '--pid=%d' % m.pid, 'snapshot', path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    v = {}
    with open(path) as f:
        for line in f:
            k, _, val = line.strip().partition('=')
            if k in ('mem_heap_B', 'mem_heap_extra_B'):
                v[k] = int(val)
    os.unlink(path)
    return v['mem_heap_B'], v['mem_heap_extra_B']


def one_point(variant, ndisks, nreq, k_attempts, nqueues=None, callgrind=None,
              massif=False):
    """native: CPU time; callgrind=path: under callgrind; massif: under
    massif, heap snapshots before the kick, once parked, after the attempts"""
    binary = PATCHED if variant == 'patched' else UPSTREAM
    wrapper = []
    if callgrind:
        # collect only inside the attempt's functions: QMP and qtest traffic
        # is not counted
        wrapper = ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + callgrind,
                   '--dump-instr=no', '--collect-jumps=no'] + [
                       '--toggle-collect=' + f for f in ATTEMPT_FUNCS]
    elif massif:
        wrapper = ['valgrind', '--tool=massif', '--massif-out-file=/dev/null']
    per_disk = split(nreq, ndisks)
    nq = nqueues or max(1, math.ceil(max(per_disk) / QSIZE))
    args = []
    for i in range(ndisks):
        args += disk_args(i, variant, nq)
    work = tempfile.mkdtemp(prefix='bench-scale-')
    m = Machine(binary, args, workdir=work, wrapper=wrapper)
    try:
        queues = []
        tbl = TABLES
        for i in range(ndisks):
            d = Dev(m, 'blk', i, 4 + i // 8, i % 8)
            qs = d.setup(nqueues=nq, indirect=True)
            for q, n in zip(qs, split(per_disk[i], nq)):
                if n:
                    tbl = prepare_indirect(q, n, 'write', tbl)
                    queues.append((q, n))
        settle(m)
        m.qmp('stop')
        m.qmp('cont')
        settle(m)
        # 2. overhead of a round with nothing parked (not under valgrind)
        rounds = 0 if (callgrind or massif) else k_attempts
        c0 = m.main_thread_cpu()
        for _ in range(rounds):
            if variant == 'patched':
                m.clock_step(INTERVAL_MS * 1000000)
                m.qt('readw 0x0')
            else:
                m.qmp('stop')
                m.qmp('cont')
        overhead = m.main_thread_cpu() - c0
        settle(m)
        mem0 = heap_bytes(m, work) if massif else m.memory_kb()
        # 3. park them all
        m.drop_events()
        for q, n in queues:
            q.kick(n)
        if variant == 'patched':
            st = wait_parked(m, per_disk)
        else:
            wait_stopped(m)
            settle(m, 20)
        mem1 = heap_bytes(m, work) if massif else m.memory_kb()
        # 4. attempts.  patched: one qtest command after each clock_step (the
        # completion bottom halves run before the main loop reads it), so
        # that QMP is not in the measured window; the attempts that really
        # happened are counted afterwards (query-block)
        before = [a for a, _ in st] if variant == 'patched' else None
        c0 = m.main_thread_cpu()
        mem_warm = None
        for i in range(k_attempts):
            if massif and i == WARM_ATTEMPTS:
                # after the first attempts: what grows from here on grows
                # with every attempt
                if variant == 'patched':
                    wait_parked(m, per_disk)
                settle(m)
                mem_warm = heap_bytes(m, work)
            if variant == 'patched':
                m.clock_step(INTERVAL_MS * 1000000)
                m.qt('readw 0x0')
            else:
                m.drop_events()
                m.qmp('cont')
                wait_stopped(m)
        cpu = m.main_thread_cpu() - c0
        done = k_attempts
        if variant == 'patched':
            st = wait_parked(m, per_disk)
            done = min(a - b for (a, _), b in zip(st, before))
            if done < 1:
                raise RuntimeError('no attempt happened')
        settle(m)
        mem2 = heap_bytes(m, work) if massif else m.memory_kb()
        for q, n in queues:
            if q.used_idx() != 0:
                raise RuntimeError('a request completed: the storage should fail them all')
    finally:
        m.shutdown(timeout=600)
        shutil.rmtree(work, ignore_errors=True)
    if massif:
        return {'heap_per_req_b': (mem1[0] - mem0[0]) / nreq,
                'heap_extra_per_req_b': (mem1[1] - mem0[1]) / nreq,
                'heap_first_attempts_b': mem_warm[0] - mem1[0],
                'heap_growth_per_attempt_b': (mem2[0] - mem_warm[0]) /
                (k_attempts - WARM_ATTEMPTS)}
    return {
        'variant': variant, 'disks': ndisks, 'requests': nreq, 'attempts': done,
        'cpu_per_attempt_us': (cpu - overhead * done / k_attempts) / done * 1e6,
        'cpu_raw_us': cpu / done * 1e6, 'overhead_us': overhead / k_attempts * 1e6,
    }


def fit(xs, ys):
    """least squares y = a + b x: (a, b, r2)"""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    b = sxy / sxx if sxx else 0.0
    a = my - b * mx
    ss = sum((y - my) ** 2 for y in ys)
    res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return a, b, (1 - res / ss) if ss else 1.0


def measure(requests=(1, 4, 16, 64, 256, 1024, 4096), disks=(1, 2, 4, 8, 16, 32, 64),
            disk_total=1024, k_attempts=20, log=print):
    """both sweeps, both variants: native run (CPU time, memory) and two
    callgrind runs (instructions and allocator calls per attempt)"""
    out = {'requests': [], 'disks': []}
    sweeps = [('requests', [(1, n, 4) for n in requests]),
              ('disks', [(d, disk_total, None) for d in disks])]
    for key, points in sweeps:
        for ndisks, nreq, nq in points:
            for v in ('upstream', 'patched'):
                r = one_point(v, ndisks, nreq, k_attempts, nqueues=nq)
                if v == 'patched':
                    # upstream's restart after 'cont' has no such single
                    # path (its failed completions are not under the
                    # functions counted): CPU time and heap only
                    r.update(instructions_point(v, ndisks, nreq, nqueues=nq))
                r.update(one_point(v, ndisks, nreq, 13, nqueues=nq, massif=True))
                out[key].append(r)
                r.setdefault('ir_per_attempt', float('nan'))
                r.setdefault('allocs_per_attempt', float('nan'))
                r.setdefault('aiocb_allocs_per_attempt', float('nan'))
                log('  scale %-8s %2d disk(s) %5d parked: %10.0f Ir/attempt (%6.1f per request), '
                    '%7.1f allocations/attempt (%.1f of them AIOCBs); '
                    'CPU %8.1f us/attempt (raw %.1f - overhead '
                    '%.1f); heap %6.1f B (+%.1f B allocator overhead) per parked request, heap '
                    'growth %+.0f B in the first %d attempts, then %+.1f B/attempt' % (
                        v, ndisks, nreq, r['ir_per_attempt'], r['ir_per_attempt'] / nreq,
                        r['allocs_per_attempt'], r['aiocb_allocs_per_attempt'],
                        r['cpu_per_attempt_us'], r['cpu_raw_us'],
                        r['overhead_us'], r['heap_per_req_b'], r['heap_extra_per_req_b'],
                        r['heap_first_attempts_b'], WARM_ATTEMPTS,
                        r['heap_growth_per_attempt_b']))
        for v in ('upstream', 'patched'):
            pts = [r for r in out[key] if r['variant'] == v]
            if len(pts) < 2:
                continue
            xs = [p[key] for p in pts]
            f = out.setdefault('fit', {})['%s/%s' % (key, v)] = {}
            for metric in ('ir_per_attempt', 'allocs_per_attempt', 'aiocb_allocs_per_attempt',
                           'cpu_per_attempt_us'):
                if any(p[metric] != p[metric] for p in pts):     # NaN: not measured
                    continue
                a, b, r2 = fit(xs, [p[metric] for p in pts])
                f[metric] = {'a': a, 'b': b, 'r2': r2}
                log('  scale fit %-8s %s vs %s: %.1f + %.3f x %s (R^2 %.5f)' % (
                    v, metric, key, a, b, key, r2))
            if key == 'requests':
                a, b, r2 = fit(xs, [p['heap_per_req_b'] * p['requests'] for p in pts])
                f['heap'] = {'a': a, 'b': b, 'r2': r2}
                log('  scale fit %-8s heap vs parked requests: %.0f B + %.1f B x requests '
                    '(R^2 %.6f)' % (v, a, b, r2))
    return out


# The attempt's own path, for instructions under callgrind: the retry
# timer (patched) or the restart after 'cont' (upstream), which resubmit
# every parked request, and the completion bottom halves of the
# resubmitted requests, which fail and park them again.
ATTEMPT_FUNCS = ('blk_retry_timer_cb', 'virtio_blk_dma_restart_cb',
                 'virtio_blk_dma_restart_bh', 'blk_aio_complete_bh')
ALLOC_FUNCS = ('malloc', 'calloc', 'realloc', 'memalign', 'posix_memalign',
               'aligned_alloc', 'g_malloc', 'g_malloc0', 'g_malloc_n', 'g_malloc0_n',
               'g_realloc', 'g_realloc_n', 'g_try_malloc', 'g_try_malloc0', 'g_memdup',
               'g_memdup2', 'g_slice_alloc', 'g_slice_alloc0', 'g_strdup')
# the block layer's request control block: every submission allocates one
# (blk_aio_prwv -> qemu_aio_get), the guest's first one as each resubmission
AIOCB_ALLOC = 'qemu_aio_get'


def callgrind_counts(path):
    """(Ir inside ATTEMPT_FUNCS, allocations made from there, of which by
    qemu_aio_get) from a callgrind profile made with --toggle-collect on
    them.  An allocation is a call into an allocator entry point (libc or
    glib) from code that is not itself one."""
    ir = 0
    names = {}
    allocs = aiocb = 0
    caller = callee = None
    with open(path) as f:
        for line in f:
            if line.startswith(('summary:', 'totals:')):
                ir = int(line.split()[1])
            elif line.startswith(('fn=', 'cfn=')):
                key, _, rest = line.partition('=')
                rest = rest.strip()
                if rest.startswith('('):
                    i = rest.index(')')
                    fid, name = rest[1:i], rest[i + 1:].strip()
                    if name:
                        names[fid] = name
                    name = names.get(fid, '')
                else:
                    name = rest
                name = name.split("'")[0]           # recursion levels: f'2
                if key == 'fn':
                    caller, callee = name, None
                else:
                    callee = name
            elif (line.startswith('calls=') and callee in ALLOC_FUNCS and
                  caller not in ALLOC_FUNCS):
                n = int(line[6:].split()[0])
                allocs += n
                if caller == AIOCB_ALLOC:
                    aiocb += n
    return ir, allocs, aiocb


def instructions_point(variant, ndisks, nreq, k1=1, k2=3, nqueues=None):
    """instructions and allocator calls per attempt, from two callgrind runs
    (k1 and k2 attempts) whose difference cancels start-up and parking"""
    import os
    import shutil
    work = tempfile.mkdtemp(prefix='bench-scale-cg-')
    try:
        got = []
        for k in (k1, k2):
            out = os.path.join(work, 'cg.%d' % k)
            r = one_point(variant, ndisks, nreq, k, nqueues, callgrind=out)
            got.append(callgrind_counts(out) + (r['attempts'],))
        n = got[1][3] - got[0][3]
        return {'ir_per_attempt': (got[1][0] - got[0][0]) / n,
                'allocs_per_attempt': (got[1][1] - got[0][1]) / n,
                'aiocb_allocs_per_attempt': (got[1][2] - got[0][2]) / n}
    finally:
        shutil.rmtree(work, ignore_errors=True)
