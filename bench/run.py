#!/usr/bin/python3
"""Benchmarks of the werror/rerror=retry series against upstream QEMU built
from the same source with the same flags (bench/retrybench/__init__.py
lists the modules; the README's "Benchmarks" section shows the results).

  fastpath  instructions per request without errors (callgrind): virtio-blk
            and virtio-scsi, reads and writes; whole process and the
            device's own path
  scale     parked requests 1..4096 and disks 1..64: CPU and instructions
            per attempt, allocator calls, heap per parked request (qtest)
  recovery  latency from "storage is back" to each parked request's
            completion, loop/FUSE and NBD, interval 100/1000/5000 and
            block-retry-resubmit (TCG guest)
  timeout   error delivered - first failure, retry-timeout 1 s and 10 s
  hung      QEMU CPU with 1024 requests parked on 8 disks, interval
            1000/100/0; QMP round trip and guest heartbeat meanwhile
  recovery-matrix
            (issue 19) recovery latency per binary (the series 'after',
            the series without its NBD patches 'before', upstream with
            werror=stop and a manager sending cont) x storage (loop/FUSE,
            NBD unix, NBD TCP) x interval 100/1000/5000/60000; against
            the goal p99 <= 50 ms; and 'probe' (the series plus a
            manager that, while requests are parked, reads the loop
            device's first 4 KiB every 100 ms and sends
            block-retry-resubmit once a read succeeds) on loop/FUSE.
            Not in the default --only (27 min); its lanes run at the same
            time
  recovery-probe
            (issue 19) 'probe' on loop/FUSE at 5000 and 1000 ms, then
            'after' at 5000 ms, one after the other (nothing else runs):
            latency, and QEMU's and the manager's CPU while parked and
            the manager's with nothing parked
  recovery-qprobe
            'qprobe' (the series' own probe, retry-probe-interval=80) on
            loop/FUSE at 1000, 5000 and 60000 ms, then 'after' at 5000 ms:
            latency, QEMU's CPU while parked, QEMU's probes with nothing
            parked

usage: bench/run.py [--quick | --full] [--only ITEM,...] [--plots] [--out JSON]
  --quick   (make bench) small counts, prints the results, no thresholds
  --full    (make bench-full) the README's figures; writes bench/*.png
Results (JSON) go to build/bench-results/<mode>.json (or --out), each item's
with its provenance: the date, the workspace's and the series' commits (git
HEAD of this repository and of the patched binary's tree) and the sha256 of
every QEMU binary (retrybench/binaries.py); --readme JSON prints the README
table from such a file (with --plots: and writes the plots).  Needs root
(loop devices, FUSE) for the guest items, valgrind for fastpath and scale,
python3-matplotlib for plots.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
# the harness package (tests/harness): its parent on sys.path (retrybench
# is next to this file)
sys.path.insert(1, os.path.join(TOP, 'tests'))
RESULTS = os.path.join(TOP, 'build', 'bench-results')

ITEMS = ('fastpath', 'scale', 'recovery', 'timeout', 'hung')
EXTRA_ITEMS = ('recovery-matrix', 'recovery-matrix-nbd', 'recovery-probe', 'recovery-qprobe')
P4 = (100, 1000, 5000, 60000)

MODES = {
    'quick': {
        'fastpath': dict(n1=128, n2=512, reps=1, kinds=('blk', 'scsi'), ops=('read', 'write'),
                         names=('upstream', 'patched, werror/rerror=retry')),
        'scale': dict(requests=(1, 1024), disks=(), disk_total=1024, k_attempts=5),
        'recovery': dict(kinds=('fuse', 'nbd'), points=(100, 'resubmit'), outages=2),
        'timeout': dict(timeouts=(1000,), samples=3),
        'hung': dict(intervals=(1000, 0), seconds=5, baseline=False),
    },
    'full': {
        'fastpath': dict(n1=512, n2=3072, reps=3),
        'scale': dict(requests=(1, 4, 16, 64, 256, 1024, 4096),
                      disks=(1, 2, 4, 8, 16, 32, 64), disk_total=1024, k_attempts=20),
        'recovery': dict(kinds=('fuse', 'nbd'), points=(100, 1000, 5000, 'resubmit'),
                         outages=20),
        'timeout': dict(timeouts=(1000, 10000), samples=20),
        'hung': dict(intervals=(1000, 100, 0), seconds=60, baseline=True, nbd_intervals=(0,)),
        # 5 lanes at once, about 20 min each; reduced where a point would
        # not fit: 60000 ms costs 31 s + the recovery per outage; 'before'
        # on loop/FUSE runs the same code as 'after' (the NBD patches do
        # not touch it): fewer outages; upstream's interval only sets the
        # outage's length.  In a lane, what matters most first: past the
        # time budget the last jobs' last points are cut
        'recovery-matrix': dict(time_budget=27 * 60, lanes=[
            [('after', 'fuse', P4, {100: 20, 1000: 20, 5000: 20, 60000: 3}),
             ('upstream', 'fuse', P4, {100: 10, 1000: 10, 5000: 10, 60000: 2}),
             ('before', 'fuse', P4, {100: 5, 1000: 5, 5000: 5, 60000: 2})],
            [('after', 'nbd', (100, 1000, 5000), 20),
             ('upstream', 'nbd', P4, {100: 10, 1000: 10, 5000: 10, 60000: 2}),
             ('before', 'nbd', P4, {100: 20, 1000: 20, 5000: 20, 60000: 3})],
            [('after', 'nbd-tcp', (100, 1000, 5000), 20),
             ('upstream', 'nbd-tcp', P4, {100: 10, 1000: 10, 5000: 10, 60000: 2}),
             ('before', 'nbd-tcp', P4, {100: 20, 1000: 20, 5000: 20, 60000: 3})],
            [('probe', 'fuse', P4, {100: 20, 1000: 20, 5000: 20, 60000: 3}),
             ('after', 'nbd', (60000,), 20)],
            [('after', 'nbd-tcp', (60000,), 20)],
        ]),
        # the probe from outside QEMU against the series alone, one job at
        # a time (the CPU figures are not shared with other guests)
        'recovery-probe': dict(time_budget=15 * 60, lanes=[
            [('probe', 'fuse', (5000, 1000), 20), ('after', 'fuse', (5000,), 20)]]),
    },
}
# the series' NBD points alone, to run again after a change (t_r probed
# every 1 ms since 2026-12-07: before, up to 50 ms late)
MODES['full']['recovery-matrix-nbd'] = dict(time_budget=15 * 60, lanes=[
    [('after', 'nbd', (100, 1000, 5000), 20)],
    [('after', 'nbd-tcp', (100, 1000, 5000), 20)],
    [('after', 'nbd', (60000,), 20)],
    [('after', 'nbd-tcp', (60000,), 20)],
])
MODES['quick']['recovery-probe'] = dict(time_budget=3 * 60, lanes=[
    [('probe', 'fuse', (1000,), 2)]])
# the series' own probe (patch 16: retry-probe-interval=80) on loop/FUSE,
# alone, then the series without it at 5000 ms, for the ratio in one run
MODES['full']['recovery-qprobe'] = dict(time_budget=15 * 60, lanes=[
    [('qprobe', 'fuse', (1000, 5000, 60000), {1000: 20, 5000: 20, 60000: 3}),
     ('after', 'fuse', (5000,), 20)]])
MODES['quick']['recovery-qprobe'] = dict(time_budget=3 * 60, lanes=[
    [('qprobe', 'fuse', (1000,), 2)]])
MODES['quick']['recovery-matrix'] = dict(time_budget=5 * 60, lanes=[
    [('after', 'nbd-tcp', (100,), 2), ('upstream', 'nbd-tcp', (100,), 2)],
    [('before', 'fuse', (100,), 2), ('after', 'nbd', (1000,), 2)],
])


def run_item(item, params, log):
    if item == 'fastpath':
        from retrybench import fastpath
        r = fastpath.measure(log=log, **params)
        return {'%s/%s' % k: v for k, v in r.items()}
    if item == 'scale':
        from retrybench import scale
        return scale.measure(log=log, **params)
    if item == 'recovery':
        from retrybench import recovery
        return recovery.measure(log=log, **params)
    if item == 'timeout':
        from retrybench import timeout
        return timeout.measure(log=log, **params)
    if item == 'hung':
        from retrybench import hung
        return hung.measure(log=log, **params)
    if item in EXTRA_ITEMS:
        from retrybench import recovery
        return recovery.matrix(log=log, **params)
    raise SystemExit('unknown item %s' % item)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--quick', action='store_true')
    g.add_argument('--full', action='store_true')
    ap.add_argument('--only', default=','.join(ITEMS),
                    help='comma separated, of: %s' % ', '.join(ITEMS + EXTRA_ITEMS))
    ap.add_argument('--plots', action='store_true', help='write bench/*.png (default: '
                    'with --full)')
    ap.add_argument('--out', metavar='JSON', help='results file (default: '
                    'build/bench-results/<mode>.json)')
    ap.add_argument('--time-budget', metavar='SECONDS', type=int,
                    help='recovery-matrix: begin no outage that could end later (default: '
                    'the mode\'s)')
    ap.add_argument('--readme', metavar='JSON', help='print the README table of a results '
                    'file (or of several, comma separated: the later ones\' recovery-matrix* '
                    'cells replace the earlier ones\') and exit')
    a = ap.parse_args()
    import harness
    harness.setup_logging(False)
    from retrybench import report
    if a.readme:
        res = {}
        for path in a.readme.split(','):
            with open(path) as f:
                res = report.merge_results(res, json.load(f))
        print(report.readme_table(res))
        if a.plots:
            for p in report.plots(res, HERE):
                print('wrote %s' % os.path.relpath(p, TOP))
        return 0
    mode = 'full' if a.full else 'quick'
    items = [i for i in a.only.split(',') if i]
    for i in items:
        if i not in ITEMS + EXTRA_ITEMS:
            ap.error('unknown item %s' % i)
    path = a.out or os.path.join(RESULTS, '%s.json' % mode)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    cmd = 'bench/run.py --%s --only %s%s%s' % (
        mode, ','.join(items), ' --out %s' % a.out if a.out else '',
        ' --time-budget %d' % a.time_budget if a.time_budget else '')
    if a.time_budget:
        for i in EXTRA_ITEMS:
            if i in MODES[mode]:
                MODES[mode][i]['time_budget'] = a.time_budget
    print('== %s (%s mode)' % (cmd, mode))
    # what every item's result records: date, workspace and series commits,
    # the binaries' sha256
    from retrybench import binaries
    prov = binaries.provenance()
    print('== workspace %s%s, series %s; %s' % (
        (prov['workspace_commit'] or '?')[:12],
        ' (with changes)' if prov['workspace_dirty'] else '',
        (prov['series_commit'] or '?')[:12],
        ', '.join('%s sha256 %s' % (k, v['sha256'][:16]) for k, v in prov['binaries'].items())))
    failed = []
    for item in items:
        t0 = time.monotonic()
        print('== %s' % item, flush=True)
        try:
            r = run_item(item, MODES[mode][item], lambda s: print(s, flush=True))
        except Exception as e:          # pylint: disable=broad-except
            import traceback
            traceback.print_exc()
            print('== %s FAILED: %r' % (item, e), flush=True)
            failed.append(item)
            continue
        results[item] = {'result': r, 'params': repr(MODES[mode][item]),
                         'command': cmd, 'seconds': round(time.monotonic() - t0, 1),
                         'date': time.strftime('%Y-%m-%d %H:%M'), 'provenance': prov}
        with open(path, 'w') as f:
            json.dump(results, f, indent=1, default=str)
        print('== %s: %.0f s' % (item, time.monotonic() - t0), flush=True)
    print()
    print(report.summary(results))
    for i in EXTRA_ITEMS:
        rm = results.get(i, {}).get('result')
        if rm and i in items:
            print()
            print(report.matrix_table(rm))
            if 'probe' in rm or 'qprobe' in rm:
                print()
                print(report.probe_table(rm))
            print()
            print(report.matrix_meta(rm))
    if a.full or a.plots:
        for p in report.plots(results, HERE):
            print('wrote %s' % os.path.relpath(p, TOP))
    print('results: %s' % os.path.relpath(path, TOP))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
