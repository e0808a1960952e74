"""The command line of run.py, and the demo."""

import argparse
import os
import random
import signal
import sys
import time

import harness
from harness import report

from .runner import prepare, run_one
from .scenarios import (ALL_SCENARIOS, ALL_STORAGES, CHECK_SUITE, DEVICES,
                        FULL_SUITE, OPS_TABLE_SUITE, QUICK_SUITE, SCENARIOS, operations)


def main(doc=None):
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--scenario', help='comma separated (default: the suite); with '
                    '--device/--storage (default: the scenario\'s runs in --full)')
    ap.add_argument('--device', choices=DEVICES + ['all'])
    ap.add_argument('--storage', choices=ALL_STORAGES + ['all'])
    ap.add_argument('--check', action='store_true',
                    help='the subset make check runs (the default): every scenario, '
                         'each device and storage kind, crossed (%d runs)' % len(CHECK_SUITE))
    ap.add_argument('--full', '--all-combos', action='store_true',
                    help='every scenario on every device and storage kind where they '
                         'differ (make check-full, %d runs)' % len(FULL_SUITE))
    ap.add_argument('--quick', action='store_true',
                    help='one run of every scenario, for work on the harness (%d runs)'
                         % len(QUICK_SUITE))
    ap.add_argument('--ops-table', metavar='FILE',
                    help='every operation in the hang, on the series and on upstream '
                         'werror=stop (%d runs); the markdown table goes to FILE'
                         % len(OPS_TABLE_SUITE))
    ap.add_argument('--demo', action='store_true',
                    help='short-outage (patched) next to upstream-default, with timelines')
    ap.add_argument('--list', action='store_true', help='list the runs and exit')
    ap.add_argument('--torture', action='store_true',
                    help='seeded torture (e2e/torture.py) on the sanitizer build '
                         '($QEMU_SANITIZER, default build/qemu/build-asan/...)')
    ap.add_argument('--seed', default=None,
                    help='torture seeds, comma separated (default: one random seed)')
    ap.add_argument('--duration', type=float, default=300.0,
                    help='torture: seconds per seed')
    ap.add_argument('--torture-disk-mb', type=int, default=1024,
                    help='torture: the guest disk, MiB (sparse)')
    ap.add_argument('--accel', default=os.environ.get('E2E_ACCEL', 'auto'),
                    choices=['auto', 'tcg', 'kvm'])
    ap.add_argument('--aio', default='native', choices=['native', 'io_uring', 'threads'],
                    help='aio= for the loop device (fuse storage)')
    ap.add_argument('--outage', type=float, default=5.0, help='short outage, s')
    ap.add_argument('--long-outage', type=float, default=14.0, help='s')
    ap.add_argument('--retry-interval', type=int, default=1000, help='ms')
    ap.add_argument('--retry-timeout', type=int, default=30000, help='ms')
    ap.add_argument('--long-retry-timeout', type=int, default=8000,
                    help='retry_timeout for long-outage, ms')
    ap.add_argument('--slack', type=float, default=3.0, help='timing slack, s')
    ap.add_argument('--cont-delay', type=float, default=1.0,
                    help='upstream-stop: wait before cont, s')
    ap.add_argument('--nbd-reconnect-delay', type=int, default=0)
    ap.add_argument('--nbd-tcp-reconnect-delay', type=int, default=2,
                    help='reconnect-delay of the nbd-tcp storage, s (> 0)')
    ap.add_argument('--read-ms', type=int, default=200, help='rerror-report reader period')
    ap.add_argument('--pace', type=int, default=20, help='guest ms between files')
    ap.add_argument('--disk-mb', type=int, default=64)
    ap.add_argument('--warmup-files', type=int, default=30)
    ap.add_argument('--post-seconds', type=float, default=2.0)
    ap.add_argument('--boot-timeout', type=float, default=90.0)
    ap.add_argument('--migrate-timeout', type=float, default=60.0)
    ap.add_argument('--migrate-slow-bw', type=int, default=1 << 20,
                    help='migrate: max-bandwidth during the outage, bytes/s')
    ap.add_argument('--migrate-fast-bw', type=int, default=1 << 30,
                    help='max-bandwidth otherwise, bytes/s')
    ap.add_argument('--hang-outage', type=float, default=90.0,
                    help='outage-90s: the outage, s')
    ap.add_argument('--hung-secs', type=int, default=30,
                    help='outage-90s: the guest\'s hung_task_timeout_secs')
    ap.add_argument('--read-files', type=int, default=200,
                    help='read-heavy: files written, then read again and again')
    ap.add_argument('--guest-max', type=int, default=240,
                    help='guest workload safety limit, s')
    ap.add_argument('--keep', action='store_true', help='keep work dirs')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    harness.setup_logging(args.verbose)

    if args.scenario:
        names = args.scenario.split(',')
        for n in names:
            if n not in SCENARIOS:
                ap.error('unknown scenario %s (have: %s)' % (n, ', '.join(ALL_SCENARIOS)))
        runs = []
        if args.ops_table:
            # the table's own runs of these operations, merged into it
            names = []
            runs = [r for r in OPS_TABLE_SUITE if r[0] in args.scenario.split(',')]
        for n in names:
            for d, s in SCENARIOS[n].full:
                if args.device not in (None, 'all', d):
                    continue
                if args.storage not in (None, 'all', s):
                    continue
                runs.append((n, d, s))
            if (args.device not in (None, 'all') and args.storage not in (None, 'all') and
                    (n, args.device, args.storage) not in runs):
                runs.append((n, args.device, args.storage))    # asked for explicitly
    else:
        if args.full:
            suite = FULL_SUITE
        elif args.quick:
            suite = QUICK_SUITE
        elif args.ops_table:
            suite = OPS_TABLE_SUITE       # (with --scenario: those runs, merged)
        else:
            suite = CHECK_SUITE
        runs = [r for r in suite
                if args.device in (None, 'all', r[1]) and args.storage in (None, 'all', r[2])]
    if args.list and not args.demo:
        for r in runs:
            print('%s/%s/%s' % r)
        return 0

    def on_term(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    t0 = time.monotonic()
    env = prepare(args)
    print('e2e: QEMU=%s (retry support: %s), upstream=%s, accel=%s' % (
        env.qemu, ', '.join('%s %s' % (d, 'yes' if env.has_retry(d) else 'no')
                            for d in DEVICES),
        env.upstream or 'none: the runs that need it fail', env.accel))
    sys.stdout.flush()
    if args.demo:
        sts = demo(args, env)
        return 1 if 'FAIL' in sts else 0
    if args.torture:
        from .torture import torture
        if args.seed:
            seeds = [int(x) for x in args.seed.split(',')]
        else:
            seeds = [random.SystemRandom().randrange(1, 1 << 31)]
        print('torture: QEMU=%s, seeds %s, %.0f s each' % (
            env.torture_qemu, ','.join(map(str, seeds)), args.duration))
        failed = torture(args, env, seeds, args.duration)
        print('total %.0f s' % (time.monotonic() - t0))
        print('%d passed, %d failed, 0 skipped' % (len(seeds) - failed, failed))
        return 1 if failed else 0
    counts = {'PASS': 0, 'FAIL': 0}     # a run never skips (run_one)
    times = []
    op_results = []
    for sc, dev, sto in runs:
        try:
            st, name, detail, el, ctx = run_one(args, env, sc, dev, sto)
        except KeyboardInterrupt:
            counts['FAIL'] += 1
            print('FAIL %s/%s/%s interrupted (processes stopped)' % (sc, dev, sto))
            print('%d passed, %d failed, 0 skipped' % (counts['PASS'], counts['FAIL']))
            return 130
        counts[st] += 1
        times.append((st, name, el))
        if args.ops_table and sc.startswith('op-'):
            info = ctx.info if ctx else None
            variant = 'stop' if sc.endswith('-stop') else 'retry'
            op_results.append(((sc[3:-5] if variant == 'stop' else sc[3:], variant, dev, sto),
                               info.op_rows if info else [], info.op_probe if info else {},
                               st))
            operations.save_table(args.ops_table, op_results)
        print(report.result_line(st, name, el, detail, ctx))
        sys.stdout.flush()
    if len(times) > 1:
        print('wall times:')
        for st, name, el in times:
            print('  %6.1fs %s %s' % (el, st, name))
    print('total %.0f s' % (time.monotonic() - t0))
    print('%d passed, %d failed, 0 skipped' % (counts['PASS'], counts['FAIL']))
    return 1 if counts['FAIL'] else 0


def demo(args, env):
    device, storage = args.device or 'virtio-blk', args.storage or 'fuse'
    if device == 'all':
        device = 'virtio-blk'
    if storage == 'all':
        storage = 'fuse'
    results = []
    runs = [('upstream-default', 'upstream QEMU, default werror/rerror')]
    retry_names = env.retry_props.get(device) or ('retry_interval', 'retry_timeout')
    if env.has_retry(device):
        runs.insert(0, ('short-outage', 'patched QEMU, werror=retry,rerror=retry,'
                        '%s=%d,%s=%d' % (retry_names[0], args.retry_interval,
                                         retry_names[1], args.retry_timeout)))
    else:
        print('note: %s has no retry support for %s yet; showing the upstream side only\n'
              % (env.qemu, device))
    for sc, title in runs:
        st, name, detail, el, ctx = run_one(args, env, sc, device, storage)
        print('=== %s: %s, %.0f s outage (%s/%s)' % (title, sc, args.outage, device, storage))
        for line in report.timeline_text(ctx):
            print(line)
        who = 'upstream' if sc.startswith('upstream') else 'patched'
        print('  -> %s' % report.verdict_text(who, st, ctx, detail))
        print('     (%s; %.0f s)\n' % (detail, el))
        results.append(st)
    return results
