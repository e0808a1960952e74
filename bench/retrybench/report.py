"""Results as text (make bench), as the README's table, and as PNG plots
(python3-matplotlib)."""

import os
import statistics

RETRY = 'patched, werror/rerror=retry'


def _med(xs):
    return statistics.median(xs) if xs else float('nan')


def rows(results, matrix=True):
    """[(benchmark, measured, goal)] (matrix: with recovery-matrix's cells)"""
    out = []
    fp = results.get('fastpath', {}).get('result')
    if fp:
        for key in sorted(fp):
            v = fp[key]
            if 'upstream' not in v or RETRY not in v:
                continue
            up, pa = v['upstream'], v[RETRY]
            n = len(up['total'])
            tot = _med(pa['total']) / _med(up['total'])
            dev = _med(pa['device']) / _med(up['device'])
            kind, op = key.split('/')
            out.append(('fast path, %s %s: instructions per request, patched retry / upstream'
                        % ('virtio-blk' if kind == 'blk' else 'virtio-scsi', op),
                        'whole process %.0f / %.0f = **%.4f**; device path (submit + '
                        'complete) %.0f / %.0f = **%.4f**%s' % (
                            _med(pa['total']), _med(up['total']), tot, _med(pa['device']),
                            _med(up['device']), dev,
                            ' (median of %d)' % n if n > 1 else ''),
                        'at most 1.005'))
    rc = results.get('recovery', {}).get('result')
    if rc:
        for kind in ('fuse', 'nbd'):
            for point, o in (rc.get(kind) or {}).items():
                if point == 'episodes':
                    continue
                s = o['latency_ms']
                what = ('block-retry-resubmit at once (interval 1000)' if point == 'resubmit'
                        else 'retry-interval %s' % point)
                goal = ('p99 at most 10 ms' if point == 'resubmit'
                        else 'p99 at most %d ms' % (int(point) + 50))
                m = 'p50 %.0f, **p99 %.0f**, max %.0f ms (%d requests, %d outages)' % (
                    s['p50'], s['p99'], s['max'], s['n'], o['outages'])
                if kind == 'nbd':
                    m += ('; of which the NBD client\'s reconnect lag p50 %.0f, max %.0f ms; '
                          'after its reconnection p99 %.0f ms' % (
                              o['nbd_lag_ms']['p50'], o['nbd_lag_ms']['max'],
                              o['after_connect_ms']['p99']))
                out.append(('recovery latency, %s, %s' % (
                    'loop/FUSE' if kind == 'fuse' else 'NBD (unix socket)', what), m, goal))
    rm = results.get('recovery-matrix', {}).get('result')
    if rm and matrix:
        for variant, kind, point, o in matrix_cells(rm):
            s = o['latency_ms']
            m = 'p50 %.0f, **p99 %.0f**, max %.0f ms (%d requests, %d outages); p99 / %d ms = ' \
                '**%.1f**' % (s['p50'], s['p99'], s['max'], s['n'], o['outages'], GOAL_MS,
                              s['p99'] / GOAL_MS)
            if o.get('nbd_lag_ms'):
                m += '; NBD client\'s first attempt after the server is back: p50 %.0f, ' \
                     'max %.0f ms' % (o['nbd_lag_ms']['p50'], o['nbd_lag_ms']['max'])
            out.append(('recovery latency, %s, %s, %s' % (
                VARIANT_LABEL[variant], KIND_LABEL[kind], 'interval %s ms' % point
                if variant != 'upstream' else 'outages of 1 s + [0, %s ms]' % point),
                m, 'p99 at most %d ms' % GOAL_MS))
    to = results.get('timeout', {}).get('result')
    if to:
        for tmo in sorted((k for k in to if k.isdigit()), key=int):
            o = to[tmo]
            s = o['stats']
            out.append(('timeout precision, retry-timeout %d s, interval %d ms: error '
                        'delivered - first failure' % (int(tmo) // 1000, to['interval']),
                        'min %.0f, p50 %.0f, max %.0f ms; %d of %d in bound' % (
                            s['min'], s['p50'], s['max'], o['in_bound'], s['n']),
                        'within [%d, %d] ms' % (int(tmo), int(tmo) + to['interval'] + 50)))
    hu = results.get('hung', {}).get('result')
    if hu:
        idle = hu.get('patched idle')

        def order(name):
            return ('idle' not in name, name.startswith('nbd'),
                    -int(name.split()[-1]) if 'interval' in name else 0)
        for name, w in sorted(hu.items(), key=lambda kv: order(kv[0])):
            c = w['cpu_pct']
            m = 'QEMU %.2f %% of a core (main loop %.2f %%, vCPU %.2f %%)' % (
                c['total'], c['main'], c['vcpu'])
            goal = ''
            if 'interval' in name:
                if idle:
                    m += '; over the idle guest: %+.2f %%' % (c['total'] - idle['cpu_pct']['total'])
                m += '; QMP max %.0f ms, guest heartbeat gap max %.0f ms' % (
                    w['qmp_ms']['max'], w['hb_gap_ms']['max'])
                if name == 'interval 1000':
                    goal = 'under 1 % of a core'
                elif name.endswith('interval 0'):
                    goal = 'QMP under 100 ms, vCPU keeps running'
                what = 'CPU while hung: %d requests parked on 8 disks (%s), retry-%s ms' % (
                    w.get('parked', 1024), 'NBD, the server gone' if name.startswith('nbd')
                    else 'loop/FUSE', name.split()[-2] + '=' + name.split()[-1])
            else:
                what = 'CPU, %s (nothing parked, guest paused): the floor' % name
            out.append((what, m, goal))
    sc = results.get('scale', {}).get('result')
    if sc and sc.get('requests'):
        pts = sorted((p for p in sc['requests'] if p['variant'] == 'patched'),
                     key=lambda p: p['requests'])
        ups = sorted((p for p in sc['requests'] if p['variant'] == 'upstream'),
                     key=lambda p: p['requests'])
        ns = ', '.join(str(p['requests']) for p in pts)
        if pts and 'ir_per_attempt' in pts[0]:
            out.append(('scale, patched: one retry attempt with N parked requests (1 disk, '
                        'N = %s), per parked request' % ns,
                        'instructions %s; allocations other than the block layer\'s AIOCB '
                        '(qemu_aio_get, one per submission as for any request): %s per '
                        'attempt; main thread CPU %s us' % (
                            ', '.join('%.0f' % (p['ir_per_attempt'] / p['requests'])
                                      for p in pts),
                            ', '.join('%.0f' % (p['allocs_per_attempt'] -
                                                p['aiocb_allocs_per_attempt']) for p in pts),
                            ', '.join('%.2f' % (p['cpu_per_attempt_us'] / p['requests'])
                                      for p in pts)),
                        'linear; no allocation per request beyond the request itself'))
        for v, pp in (('patched', pts), ('upstream', ups)):
            if pp and 'heap_per_req_b' in pp[0]:
                k = (sc.get('fit') or {}).get('requests/%s' % v, {}).get('heap')
                out.append(('scale, %s: heap per parked request (N = %s)' % (
                    'patched, werror=retry' if v == 'patched' else 'upstream, werror=stop', ns),
                    '%s B%s; growth per attempt after the first %d: %s B' % (
                        ', '.join('%.0f' % p['heap_per_req_b'] for p in pp),
                        ' (fit %.0f B x N + %.0f B, R^2 %.5f)' % (k['b'], k['a'], k['r2'])
                        if k else '', 3,
                        ', '.join('%.0f' % p['heap_growth_per_attempt_b'] for p in pp)),
                    'the request itself; no growth' if v == 'patched' else ''))
        if ups:
            out.append(('scale, upstream: stop + cont with N parked (N = %s), main thread CPU '
                        'per parked request' % ns,
                        '%s us' % ', '.join('%.2f' % (p['cpu_per_attempt_us'] / p['requests'])
                                            for p in ups), ''))
    if sc and sc.get('disks'):
        pts = sorted((p for p in sc['disks'] if p['variant'] == 'patched'),
                     key=lambda p: p['disks'])
        if pts and 'ir_per_attempt' in pts[0]:
            out.append(('scale, patched: one attempt, 1024 requests over D disks (D = %s)' %
                        ', '.join(str(p['disks']) for p in pts),
                        'instructions per request %s; allocations %s (AIOCBs %s); main thread '
                        'CPU %s us' % (
                            ', '.join('%.0f' % (p['ir_per_attempt'] / p['requests'])
                                      for p in pts),
                            ', '.join('%.0f' % p['allocs_per_attempt'] for p in pts),
                            ', '.join('%.0f' % p['aiocb_allocs_per_attempt'] for p in pts),
                            ', '.join('%.0f' % p['cpu_per_attempt_us'] for p in pts)),
                        'linear'))
    return out


GOAL_MS = 50
VARIANT_LABEL = {'after': 'series (with its NBD patches), werror=retry',
                 'before': 'series without its NBD patches, werror=retry',
                 'upstream': 'upstream, werror=stop + manager (cont, 1 s poll)',
                 'probe': 'series + manager probing the storage every 100 ms while requests '
                          'are parked (block-retry-resubmit)',
                 'qprobe': 'series with retry-probe-interval=80 (its own probe, patch 16)'}
MATRIX_VARIANTS = ('after', 'qprobe', 'probe', 'before', 'upstream')
KIND_LABEL = {'fuse': 'loop/FUSE', 'nbd': 'NBD unix', 'nbd-tcp': 'NBD TCP'}


def matrix_cells(rm):
    """[(variant, kind, point, result)] of a recovery-matrix result, in
    table order"""
    out = []
    for kind in ('fuse', 'nbd', 'nbd-tcp'):
        points = sorted({int(p) for v in MATRIX_VARIANTS
                         for p in (rm.get(v, {}).get(kind) or {}) if p.isdigit()})
        for point in points:
            for variant in MATRIX_VARIANTS:
                o = (rm.get(variant, {}).get(kind) or {}).get(str(point))
                if o and o['latency_ms']['n']:
                    out.append((variant, kind, point, o))
    return out


def matrix_table(rm):
    """issue 19's table: one line per (storage, interval, binary)"""
    lines = ['| storage | retry-interval (ms) | binary | p50 (ms) | p99 (ms) | max (ms) | '
             'p99 / 50 ms | requests (outages) | NBD client: first attempt after the '
             'server is back, p50 / max (ms) | notes |',
             '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    short = {'after': 'after (0001-0015)', 'before': 'before (0001-0011)',
             'upstream': 'upstream stop + manager', 'probe': 'after + 100 ms probe',
             'qprobe': 'retry-probe-interval=80 (0016)'}
    for variant, kind, point, o in matrix_cells(rm):
        s = o['latency_ms']
        lag = o.get('nbd_lag_ms')
        notes = []
        if o.get('source') and 'recovery-matrix-nbd' in o['source']:
            notes.append('from the recovery-matrix-nbd run')
        if o.get('conts_per_outage'):
            c = o['conts_per_outage']
            notes.append('cont per outage: median %d, max %d' % (statistics.median_high(c),
                                                                 max(c)))
        lines.append('| %s | %s | %s | %.0f | **%.0f** | %.0f | %s | %d (%d) | %s | %s |' % (
            KIND_LABEL[kind], point if variant != 'upstream' else '(%s)' % point,
            short[variant], s['p50'], s['p99'], s['max'],
            ('%.2f' if s['p99'] < 10 * GOAL_MS else '%.0f') % (s['p99'] / GOAL_MS),
            s['n'], o['outages'],
            '%.0f / %.0f' % (lag['p50'], lag['max']) if lag and lag.get('n') else '',
            '; '.join(notes)))
    return '\n'.join(lines)


def probe_table(rm):
    """the probe's cost: per (variant, loop/FUSE point), CPU while all
    requests were parked, and the probe manager's with nothing parked"""
    lines = ['| binary | retry-interval (ms) | p50 / p99 / max (ms) | parked (s) | QEMU CPU '
             'while parked (% of a core) | manager CPU while parked (%) | probes (per s) | '
             'manager with nothing parked, whole run: s, probes, CPU (ms) |',
             '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |']
    for variant in ('qprobe', 'probe', 'after'):
        cell = (rm.get(variant) or {}).get('fuse') or {}
        idle = (cell.get('probe') or {}).get('idle')
        for point in sorted((p for p in cell if p.isdigit()), key=int):
            o = cell[point]
            c = o.get('cpu_parked')
            if not c or not o['latency_ms']['n']:
                continue
            s = o['latency_ms']
            lines.append('| %s | %s | %.0f / **%.0f** / %.0f | %.0f | %.2f | %s | %s | %s |' % (
                variant, point, s['p50'], s['p99'], s['max'], c['seconds'],
                c['qemu_cpu_pct'], '%.3f' % c['manager_cpu_pct'] if variant == 'probe' else '',
                '%d (%.1f)' % (c['probes'], c['probes_per_s'])
                if variant in ('probe', 'qprobe') else '',
                '%.0f s, %d probes, %.2f ms' % (idle['seconds'], idle['probes'],
                                                idle['manager_cpu_ms'])
                if idle and point == max((p for p in cell if p.isdigit()), key=int) else ''))
    return '\n'.join(lines)


def merge_results(a, b):
    """results a updated with b; recovery-matrix* items are merged into
    one 'recovery-matrix' cell by cell (b's (binary, kind, point) replace
    a's), with each source's command, date and meta kept"""
    out = dict(a)
    for item, v in b.items():
        if not item.startswith('recovery-matrix') or not isinstance(v, dict):
            out[item] = v
            continue
        cur = out.setdefault('recovery-matrix', {'result': {}, 'sources': []})
        cur.setdefault('sources', [])
        cur['sources'].append({'command': v.get('command'), 'date': v.get('date'),
                               'meta': v['result'].get('meta')})
        cur['command'] = ' + '.join(x['command'] for x in cur['sources'])
        cur['date'] = ', '.join(str(x['date']) for x in cur['sources'])
        r = cur['result']
        for variant, kinds in v['result'].items():
            if variant == 'meta':
                r.setdefault('meta', kinds)
                continue
            for kind, cell in kinds.items():
                c = r.setdefault(variant, {}).setdefault(kind, {})
                for k, x in cell.items():
                    if k.isdigit():
                        c[k] = dict(x, source=v.get('command'))
                    elif k not in c:
                        c[k] = x
    return out


def matrix_meta(rm):
    m = rm.get('meta', {})
    out = ['Series at %s; %s.' % (m.get('series_commit', '?'), m.get('date', '?'))]
    for v, b in (m.get('binaries') or {}).items():
        out.append('%s: `%s` sha256 %s (tree at %s).' % (
            v, b['path'], b['sha256'], (b.get('tree_head') or '?')[:12]))
    cut = ['%s %s %s: %d of %d outages' % (v, k, c['point'], c['done'], c['planned'])
           for v in MATRIX_VARIANTS for k, r in (rm.get(v) or {}).items()
           for c in r.get('cut_by_deadline', [])]
    if cut:
        out.append('Cut by the time budget: %s.' % ', '.join(cut))
    err = ['%s %s: %s' % (v, k, r['error']) for v in MATRIX_VARIANTS
           for k, r in (rm.get(v) or {}).items() if 'error' in r]
    if err:
        out.append('Failed: %s.' % '; '.join(err))
    return ' '.join(out)


def readme_table(results):
    lines = ['| benchmark | measured | goal |', '| --- | --- | --- |']
    for what, m, goal in rows(results, matrix=False):
        lines.append('| %s | %s | %s |' % (what, m, goal))
    rm = results.get('recovery-matrix', {}).get('result')
    if rm:
        lines += ['', 'Recovery latency per binary (goal: p99 at most %d ms):' % GOAL_MS, '',
                  matrix_table(rm), '', matrix_meta(rm)]
    cmds = ['%s: `%s` (%s)' % (k, v.get('command', '?'), v.get('date', '?'))
            for k, v in results.items() if isinstance(v, dict)]
    return '\n'.join(lines) + '\n\nProduced by: ' + '; '.join(cmds) + '.'


def summary(results):
    out = ['Benchmark results (reported, not asserted):']
    for what, m, goal in rows(results):
        out.append('  %s: %s%s' % (what, m.replace('**', ''),
                                   ' [goal: %s]' % goal if goal else ''))
    return '\n'.join(out)


def plots(results, outdir):
    """recovery latency vs interval; CPU (and instructions) per attempt vs
    parked requests.  Returns the files written."""
    try:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        print('python3-matplotlib missing: no plots')
        return []
    written = []
    rc = results.get('recovery', {}).get('result')
    rm = results.get('recovery-matrix', {}).get('result')
    if rm:
        written.append(matrix_plot(plt, rm, results['recovery-matrix'], outdir))
    elif rc:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        pts = [p for p in ('100', '1000', '5000') if p in (rc.get('fuse') or {})]
        xs = [int(p) for p in pts]
        for kind, mk, col in (('fuse', 'o', 'tab:blue'), ('nbd', 's', 'tab:red')):
            d = rc.get(kind) or {}
            if not all(p in d for p in pts):
                continue
            name = 'loop/FUSE' if kind == 'fuse' else 'NBD'
            for q, ls in (('p50', ':'), ('p99', '-'), ('max', '--')):
                ax.plot(xs, [d[p]['latency_ms'][q] for p in pts], ls, marker=mk, color=col,
                        label='%s %s' % (name, q))
            if 'resubmit' in d:
                ax.plot([1000], [max(d['resubmit']['latency_ms']['p99'], 0.1)], '*',
                        markersize=12, color=col,
                        label='%s, block-retry-resubmit at once: p99' % name)
        ax.plot(xs, [x + 50 for x in xs], color='grey', lw=0.8, label='goal: interval + 50 ms')
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_xlabel('retry-interval (ms)')
        ax.set_ylabel('storage back -> request completed (ms)')
        ax.set_title('Recovery latency (20 outages x 16 parked requests per point)')
        ax.legend(fontsize=7, loc='lower right')
        ax.grid(True, which='both', alpha=0.3)
        p = os.path.join(outdir, 'recovery-latency.png')
        fig.tight_layout()
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    sc = results.get('scale', {}).get('result')
    if sc and sc.get('requests'):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
        for v, mk in (('patched', 'o'), ('upstream', 's')):
            pts = sorted((r for r in sc['requests'] if r['variant'] == v),
                         key=lambda r: r['requests'])
            xs = [r['requests'] for r in pts]
            lab = 'patched: retry attempt' if v == 'patched' else 'upstream: stop + cont'
            if v == 'patched':
                a1.plot(xs, [r['ir_per_attempt'] for r in pts], marker=mk, label=lab)
            # CPU time minus the driver's own commands: below the noise
            # (<= 0) at the smallest N, left out
            pos = [r for r in pts if r['cpu_per_attempt_us'] > 0]
            a2.plot([r['requests'] for r in pos], [r['cpu_per_attempt_us'] for r in pos],
                    marker=mk, label=lab)
        for a in (a1, a2):
            a.set_xscale('log')
            a.set_yscale('log')
            a.set_xlabel('parked requests (1 disk)')
            a.grid(True, which='both', alpha=0.3)
            a.legend(fontsize=8)
        a1.set_ylabel('instructions per attempt (callgrind)')
        a2.set_ylabel('main thread CPU per attempt (us)')
        fig.suptitle('CPU vs parked requests (qtest, failing blkdebug storage)')
        fig.tight_layout()
        p = os.path.join(outdir, 'cpu-vs-parked.png')
        fig.savefig(p, dpi=100)
        plt.close(fig)
        written.append(p)
    return written


MATRIX_STYLE = {'after': ('o', 'tab:green', 'series (0001-0015)'),
                'qprobe': ('v', 'tab:blue', 'series + retry-probe-interval=80 (0016)'),
                'probe': ('D', 'tab:purple', 'series + 100 ms probe (outside QEMU)'),
                'before': ('s', 'tab:orange', 'series without NBD patches (0001-0011)'),
                'upstream': ('^', 'tab:red', 'upstream stop + 1 s cont manager '
                                             '(x: outage 1 s + [0, x])')}


def matrix_plot(plt, rm, item, outdir):
    """recovery-latency.png from a recovery-matrix result: one panel per
    transport, p99 (solid) and max (dotted) per binary against the
    interval, and the 50 ms goal"""
    kinds = [k for k in ('fuse', 'nbd', 'nbd-tcp')
             if any((rm.get(v) or {}).get(k) for v in MATRIX_VARIANTS)]
    fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4.6), sharey=True,
                             squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for v in MATRIX_VARIANTS:
            cell = (rm.get(v) or {}).get(kind) or {}
            pts = sorted((int(p) for p in cell if p.isdigit() and cell[p]['latency_ms']['n']))
            if not pts:
                continue
            mk, col, lab = MATRIX_STYLE[v]
            ax.plot(pts, [cell[str(p)]['latency_ms']['p99'] for p in pts], '-', marker=mk,
                    color=col, label='%s p99' % lab)
            ax.plot(pts, [cell[str(p)]['latency_ms']['max'] for p in pts], ':', marker=mk,
                    color=col, alpha=0.5, markersize=4)
        ax.axhline(GOAL_MS, color='black', lw=1, ls='--', label='goal: p99 %d ms' % GOAL_MS)
        ax.set_xscale('log')
        ax.set_yscale('log')
        ax.set_title(KIND_LABEL[kind])
        ax.set_xlabel('retry-interval (ms)')
        ax.grid(True, which='both', alpha=0.3)
    axes[0][0].set_ylabel('storage back -> request completed (ms)\n(solid p99, dotted max)')
    seen = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    axes[0][-1].legend(list(seen.values()), list(seen), fontsize=7, loc='upper left')
    meta = rm.get('meta') or {}
    fig.suptitle('Recovery latency, 16 parked writes per outage; series %s, run of %s' % (
        (meta.get('series_commit') or '?')[:12], meta.get('date') or item.get('date', '?')),
        fontsize=10)
    fig.tight_layout()
    p = os.path.join(outdir, 'recovery-latency.png')
    fig.savefig(p, dpi=100)
    plt.close(fig)
    return p
