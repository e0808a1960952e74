"""What the harness prints and measures: result summaries, timelines of a
run (the demo's), verdicts, result lines, and the statistics of samples
(percentiles by the statistics module)."""

import math
import re
import statistics

from .workload import guest_error_times, kv, progress, stall_info


def percentile(xs, p):
    """the p-th percentile (p a whole number), linear between the closest
    ranks (numpy's default): statistics.quantiles' inclusive method"""
    if not xs:
        return math.nan
    if len(xs) == 1 or p <= 0:
        return float(min(xs))
    if p >= 100:
        return float(max(xs))
    return statistics.quantiles(xs, n=100, method='inclusive')[int(p) - 1]


def stats(xs):
    """n, min, p50, p90, p99, max of samples"""
    return {'n': len(xs), 'min': min(xs) if xs else math.nan,
            'p50': percentile(xs, 50), 'p90': percentile(xs, 90),
            'p99': percentile(xs, 99), 'max': max(xs) if xs else math.nan}


def summary(res, keys=('written', 'verified', 'bad', 'write_errors', 'read_errors',
                       'max_stall_ms', 'fs_rw', 'fs_writable', 'kernel_io_errors',
                       'fsck_rc')):
    return ' '.join('%s=%s' % (k, res.get(k)) for k in keys)


def timeline_text(ctx):
    tl = ctx.tl
    t_fail = tl.get('outage-start')
    t_rest = tl.get('storage-restored')
    if t_fail is None:
        return ['  (no outage happened)']
    ev = [(t_fail, 'storage fails (outage starts)')]
    if t_rest:
        ev.append((t_rest, 'storage restored'))
    qmp_ev = [(t, e) for q in ctx.qemus if q.qmp
              for t, e in q.qmp.named('BLOCK_IO_ERROR', t_fail)]
    if qmp_ev:
        t, e = min(qmp_ev, key=lambda x: x[0])
        act = e['data'].get('action')
        ev.append((t, 'QEMU: first BLOCK_IO_ERROR event, action=%s (%d in all%s)' % (
            act, len(qmp_ev), ', rate limited' if act in ('report', 'ignore') else '')))
    stalled, resumed = stall_info(ctx, t_fail)
    if stalled:
        ev.append((stalled, 'guest writes stall (fsync blocked, no error)'))
    if resumed:
        ev.append((resumed, 'guest writes resume (the stalled fsync completes)'))
    werr, kerr = guest_error_times(ctx, t_fail)
    if werr:
        ev.append((werr[0][0], 'guest: first failed write: %s' %
                   re.sub(r'^.*E2E-WERR t=\d+ n=\d+ ', '', werr[0][2].strip())[:60]))
    shown = set()
    for t, _, text, _ in kerr:
        msg = re.sub(r'^\[[ \d.]+\] ', '', text.strip())
        kind = ('fs' if re.search(r'EXT4|journal|read-only', msg) else 'io')
        if kind not in shown:
            shown.add(kind)
            ev.append((t, 'guest kernel: %s' % msg[:70]))
    for t, _, text, _ in ctx.console.find(r'Remounting filesystem read-only|Aborting journal',
                                          t_fail)[:1]:
        ev.append((t, 'guest kernel: %s' % re.sub(r'^\[[ \d.]+\] ', '', text.strip())[:70]))
    if not resumed:
        prog = progress(ctx.console, t_fail + 1.0)
        if prog:
            base = prog[0][1].get('written', 0)
            again = [t for t, p in prog if p.get('written', 0) > base]
            if again:
                ev.append((again[0], 'guest writes succeed again'))
            elif werr:
                ev.append((prog[-1][0], 'guest writes still failing'))
    labels = {'vm-paused': 'VM paused (status %s)', 'cont-sent': 'harness sends cont',
              'migrate-start': 'migration starts', 'migration-completed': 'migration completed',
              'migration-failed': 'migration failed: %s', 'bandwidth-lifted':
              'migration bandwidth limit lifted', 'migrate2-start': 'second migration starts',
              'migration2-completed': 'second migration completed'}
    for t, name, text in tl.marks:
        if name in labels:
            ev.append((t, labels[name] % text if '%' in labels[name] else labels[name]))
    r = ctx.console.find(r'E2E-RESULT (.*)')
    if r:
        res = kv(r[-1][3].group(1))
        ev.append((tl.get('result') or r[-1][0],
                   'workload stopped: %d of %d acknowledged files verified (%d bytes), bad=%d;'
                   ' %d failed writes; fs %s; %d kernel I/O error lines; longest stall %.1f s'
                   % (res.get('verified', 0), res.get('written', 0), res.get('verified_bytes', 0),
                      res.get('bad', 0), res.get('write_errors', 0),
                      'writable' if res.get('fs_writable') == 1 else 'NOT WRITABLE',
                      res.get('kernel_io_errors', 0), res.get('max_stall_ms', 0) / 1000.0)))
    ev.sort(key=lambda e: e[0])
    return ['  %+7.1fs  %s' % (t - t_fail, text) for t, text in ev]


def verdict_text(who, status, ctx, detail=''):
    """what a run showed, and whether that was the expected outcome: a
    "before" run that PASSes is upstream's problem reproduced, not a
    verdict in upstream's favour"""
    v = ctx.info.verdict if ctx else None
    if status != 'PASS':
        return '%s: NOT the expected outcome: %s' % (who, detail.split(' | ')[0])
    if not v:
        return '%s: as expected' % who
    return '%s: %s: expected (%s)' % (who, v[0], v[1])


def result_line(status, name, seconds, detail, ctx=None):
    """one line per run: PASS|FAIL name seconds [what it showed] details"""
    v = ctx.info.verdict if ctx is not None and ctx.name == name else None
    if v and status == 'PASS':
        detail = '[%s: expected, %s] %s' % (v[0], v[1], detail)
    return '%s %s %.1fs %s' % (status, name, seconds, detail)
