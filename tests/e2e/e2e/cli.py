"""The command line of run.py."""

import argparse
import os
import signal
import sys
import time

from . import base, report
from .runner import prepare, run_one
from .scenarios import (ALL_SCENARIOS, DEFAULT_SUITE, DEVICES, QUICK_SUITE, SCENARIOS,
                        STORAGES)

def main(doc=None):
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--scenario', help='comma separated (default: the suite)')
    ap.add_argument('--device', choices=DEVICES + ['all'])
    ap.add_argument('--storage', choices=STORAGES + ['all'])
    ap.add_argument('--all-combos', action='store_true',
                    help='every scenario on every device/storage combination '
                         '(the default suite)')
    ap.add_argument('--quick', action='store_true',
                    help='a crossed subset: every scenario, every device and '
                         'storage kind, not every combination (15 runs)')
    ap.add_argument('--demo', action='store_true',
                    help='short-outage (patched) next to upstream-default, with timelines')
    ap.add_argument('--list', action='store_true', help='list the runs and exit')
    ap.add_argument('--check', action='store_true',
                    help='run the default suite (what make check-e2e runs; same as no option)')
    ap.add_argument('--require-retry', action='store_true',
                    help='fail (instead of skip) retry scenarios when QEMU lacks retry')
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
    ap.add_argument('--guest-max', type=int, default=240,
                    help='guest workload safety limit, s')
    ap.add_argument('--keep', action='store_true', help='keep work dirs')
    ap.add_argument('-v', '--verbose', action='store_true')
    args = ap.parse_args()
    base.VERBOSE = args.verbose

    if args.scenario:
        names = args.scenario.split(',')
        for n in names:
            if n not in SCENARIOS:
                ap.error('unknown scenario %s (have: %s)' % (n, ', '.join(ALL_SCENARIOS)))
        devs = DEVICES if args.device in (None, 'all') else [args.device]
        stos = STORAGES if args.storage in (None, 'all') else [args.storage]
        runs = [(n, d, s) for n in names for d in devs for s in stos]
    else:
        suite = QUICK_SUITE if args.quick and not args.all_combos else DEFAULT_SUITE
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
        env['qemu'], ', '.join('%s %s' % (d, 'yes' if env['retry'][d] else 'no')
                               for d in DEVICES), env['upstream'][0], env['accel']))
    sys.stdout.flush()
    if args.demo:
        sts = report.demo(args, env)
        return 1 if 'FAIL' in sts else 0
    counts = {'PASS': 0, 'FAIL': 0, 'SKIP': 0}
    times = []
    for sc, dev, sto in runs:
        try:
            st, name, detail, el = run_one(args, env, sc, dev, sto)
        except KeyboardInterrupt:
            counts['FAIL'] += 1
            print('FAIL %s/%s/%s interrupted (processes stopped)' % (sc, dev, sto))
            print('%d passed, %d failed, %d skipped' % (
                counts['PASS'], counts['FAIL'], counts['SKIP']))
            return 130
        counts[st] += 1
        times.append((st, name, el))
        print('%s %s %.1fs %s' % (st, name, el, detail))
        sys.stdout.flush()
    if len(times) > 1:
        print('wall times:')
        for st, name, el in times:
            print('  %6.1fs %s %s' % (el, st, name))
    print('total %.0f s' % (time.monotonic() - t0))
    print('%d passed, %d failed, %d skipped' % (counts['PASS'], counts['FAIL'], counts['SKIP']))
    return 1 if counts['FAIL'] else 0


