#!/usr/bin/env python3
"""QEMU's own test suites as the series' gate.

Runs, on the patched build, the suites a QEMU maintainer runs before
merging block-layer work:

  meson          every qtest-x86_64 program but migration-test, the unit
                 tests and the QAPI schema tests (meson test --suite ...)
  migration      migration-test, alone: its quick mode, or with --full its
                 full one (make check-full)
  iotests-raw    the qemu-iotests 'auto' group, on raw
  iotests-qcow2  ... and on qcow2

and compares them with upstream QEMU built from the same source with the
same flags.  Every test that passes on upstream must pass on the series;
a test that fails on both is accepted only when tests/gate/expected names
it, with the reason.  The number of tests of each suite is pinned there
too, so that a suite that shrinks or does not run fails.

Without --full (make check, which also leaves migration out with
--suites): the suites on the patched build, and on upstream each test
that failed on the series (is it the series?) and each known failure
(does it still fail there?).  --full (make check-full): every test on
both builds, which also gives upstream's own counts.

Prints TAP on stdout (one line per test; a known failure is
'not ok ... # TODO'), and a summary per suite on stderr.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

MESON_SUITES = ('qtest-x86_64', 'unit', 'qapi-schema')
MIGRATION = 'qtest-x86_64/migration-test'
IOTEST_FORMATS = ('raw', 'qcow2')


@dataclass
class Expected:
    """tests/gate/expected: pinned counts and known failures"""
    counts: dict = field(default_factory=dict)      # suite -> (tests, not run)
    known: dict = field(default_factory=dict)       # (suite, test) -> reason

    @classmethod
    def load(cls, path):
        exp = cls()
        with open(path, encoding='utf-8') as f:
            for n, line in enumerate(f, 1):
                line = line.split('#', 1)[0].strip()
                if not line:
                    continue
                kind, rest = line.split(None, 1)
                if kind == 'count':
                    suite, tests, notrun = rest.split()
                    # '-': not measured yet, only the number of tests counts
                    exp.counts[suite] = (int(tests), None if notrun == '-'
                                         else int(notrun))
                elif kind == 'known':
                    suite, test, reason = rest.split(None, 2)
                    exp.known[(suite, test)] = reason
                else:
                    sys.exit(f'{path}:{n}: unknown line kind {kind!r}')
        return exp


class Build:
    """One configured QEMU build tree and what runs its tests"""

    def __init__(self, name, build_dir, logdir):
        self.name = name
        self.dir = os.path.abspath(build_dir)
        self.logdir = logdir
        self.meson = os.path.join(self.dir, 'pyvenv', 'bin', 'meson')
        self.python = os.path.join(self.dir, 'pyvenv', 'bin', 'python3')
        self.iotests = os.path.join(self.dir, 'tests', 'qemu-iotests')

    def log(self, what):
        return os.path.join(self.logdir, f'gate-{self.name}-{what}.log')

    def run(self, args, what, cwd=None, env=None, timeout=3600):
        t0 = time.monotonic()
        with open(self.log(what), 'w', encoding='utf-8') as out:
            try:
                subprocess.run(args, cwd=cwd or self.dir, stdout=out,
                               stderr=subprocess.STDOUT, timeout=timeout,
                               env=dict(os.environ, **(env or {})),
                               check=False)
            except subprocess.TimeoutExpired:
                out.write(f'\n(timed out after {timeout} s)\n')
        secs = time.monotonic() - t0
        print(f'  {self.name}: {what} ({secs:.0f} s, {self.log(what)})',
              file=sys.stderr)
        with open(self.log(what), encoding='utf-8', errors='replace') as f:
            return f.read()

    # --- meson test: qtest-x86_64, unit, qapi-schema ---

    def meson_tests(self):
        args = [self.meson, 'test', '--no-rebuild', '--list']
        for s in MESON_SUITES:
            args += ['--suite', s]
        out = subprocess.run(args, cwd=self.dir, capture_output=True,
                             text=True, check=True).stdout
        names = [line.split(' / ', 1)[1].strip()
                 for line in out.splitlines() if ' / ' in line]
        return sorted(set(names) - {MIGRATION})

    def run_meson(self, names, what='meson'):
        """{test: 'pass'|'fail'|'skip'} of meson tests NAMES"""
        logbase = f'gate-{what}'
        jlog = os.path.join(self.dir, 'meson-logs', f'{logbase}.json')
        if os.path.exists(jlog):
            os.remove(jlog)
        self.run([self.meson, 'test', '--no-rebuild', '--print-errorlogs',
                  '--timeout-multiplier', '3', '--logbase', logbase] + names,
                 what)
        results = {n: 'fail' for n in names}   # no result: it did not run
        if os.path.exists(jlog):
            with open(jlog, encoding='utf-8') as f:
                for line in f:
                    r = json.loads(line)
                    # 'qemu:SUITES / NAME', as --list prints it
                    name = r['name'].split(' / ', 1)[-1].strip()
                    results[name] = {'OK': 'pass', 'SKIP': 'skip',
                                          'EXPECTEDFAIL': 'pass'}.get(
                                              r['result'], 'fail')
        return results

    # --- migration-test, run alone ---

    def run_migration(self, full, only=None):
        """{test path: result} of migration-test's own TAP"""
        args = ['./tests/qtest/migration-test', '--tap', '-k']
        if full:
            args.append('--full')
        for path in only or ():
            args += ['-p', path]
        env = {'QTEST_QEMU_BINARY': './qemu-system-x86_64',
               'QTEST_QEMU_IMG': './qemu-img',
               'PYTHON': self.python,
               'G_TEST_DBUS_DAEMON': '/bin/true'}
        out = self.run(args, 'migration' + ('-only' if only else ''),
                       env=env, timeout=3 * 3600 if full else 1800)
        return tap_results(out, r'(/\S+)')

    # --- qemu-iotests -g auto ---

    def run_iotests(self, fmt, only=None):
        """{test: result} of ./check -FMT -g auto (or of tests ONLY)"""
        args = [self.python, './check', '-tap', f'-{fmt}']
        args += list(only) if only else ['-g', 'auto']
        out = self.run(args, f'iotests-{fmt}' + ('-only' if only else ''),
                       cwd=self.iotests)
        return tap_results(out, rf'{fmt} (\S+)')


def tap_results(text, name_re):
    """TAP lines to {name: 'pass'|'fail'|'skip'}"""
    results = {}
    for m in re.finditer(rf'^(not ok|ok)(?: \d+)? (?:- )?{name_re}(.*)$',
                         text, re.M):
        ok, name, rest = m.groups()
        if ok == 'not ok':
            results[name] = 'fail'
        elif re.search(r'#\s*skip', rest, re.I):
            results[name] = 'skip'
        else:
            results[name] = 'pass'
    return results


def run_suites(build, full, suites, only=None):
    """{(suite, test): result} of SUITES; ONLY: {suite: [tests]} to run
    just those tests of each suite (a suite not in it is not run)"""
    res = {}

    def want(suite):
        return suite in suites and (only is None or only.get(suite))

    def add(suite, results):
        res.update({(suite, t): r for t, r in results.items()})

    if want('meson'):
        add('meson', build.run_meson(only['meson'] if only
                                     else build.meson_tests()))
    # --full registers other tests than the quick mode: its own suite
    migration = 'migration-full' if full else 'migration'
    if want(migration):
        add(migration, build.run_migration(
            full, only[migration] if only else None))
    for fmt in IOTEST_FORMATS:
        suite = f'iotests-{fmt}'
        if want(suite):
            add(suite, build.run_iotests(fmt, only[suite] if only else None))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--series', required=True, help='patched build dir')
    ap.add_argument('--upstream', required=True, help='upstream build dir')
    ap.add_argument('--expected', required=True)
    ap.add_argument('--logdir', required=True)
    ap.add_argument('--full', action='store_true')
    ap.add_argument('--suites', default='meson,migration,iotests-raw,'
                    'iotests-qcow2', help='comma-separated subset')
    a = ap.parse_args()

    exp = Expected.load(a.expected)
    wanted = a.suites.split(',')
    if a.full and 'migration' in wanted:
        wanted[wanted.index('migration')] = 'migration-full'
    series = Build('series', a.series, a.logdir)
    upstream = Build('upstream', a.upstream, a.logdir)
    print('gate: the patched build', file=sys.stderr)
    ser = run_suites(series, a.full, wanted)

    if a.full:
        print('gate: the upstream build, every test', file=sys.stderr)
        ups = run_suites(upstream, True, wanted)
    else:
        # Upstream answers only what the series' results leave open
        ask = {}
        for (suite, test), r in ser.items():
            if r == 'fail':
                ask.setdefault(suite, set()).add(test)
        for (suite, test) in exp.known:
            if suite in wanted:
                ask.setdefault(suite, set()).add(test)
        ups = {}
        if ask:
            print('gate: the upstream build, the tests in question: ' +
                  ', '.join(f'{s}:{t}' for s in sorted(ask)
                            for t in sorted(ask[s])), file=sys.stderr)
            ups = run_suites(upstream, False, wanted,
                             {s: sorted(t) for s, t in ask.items()})

    n = 0
    bad = 0
    stats = {}
    for key in sorted(set(ser) | set(exp.known) | (set(ups) if a.full
                                                    else set())):
        suite, test = key
        if suite not in wanted:
            continue
        n += 1
        r, u = ser.get(key, 'absent'), ups.get(key)
        st = stats.setdefault(suite, {'pass': 0, 'fail': 0, 'skip': 0,
                                      'known': 0, 'up_pass': 0, 'tests': 0})
        st['tests'] += r != 'absent'
        st['up_pass'] += u == 'pass'
        name = f'{suite} {test}'
        if key in exp.known:
            if r == 'fail' and u == 'fail':
                st['known'] += 1
                print(f'not ok {n} - {name} # TODO fails on upstream too: '
                      f'{exp.known[key]}')
                continue
            if r == 'pass':
                # The reasons are the machine's (nested KVM): elsewhere
                # the test may pass, which is what we want
                st['pass'] += 1
                print(f'ok {n} - {name} (listed as failing on these '
                      f'machines, passes here on the series)')
                continue
            bad += 1
            st['fail'] += 1
            print(f'not ok {n} - {name}: listed as a known failure, but it '
                  f'{"passes" if r == "pass" else r} on the series and '
                  f'{u or "was not run"} on upstream: update '
                  f'tests/gate/expected')
        elif r == 'pass' or r == 'skip':
            st[r] += 1
            if a.full and u == 'pass' and r == 'skip':
                bad += 1
                print(f'not ok {n} - {name}: not run on the series, '
                      f'passes on upstream')
            elif r == 'skip':
                print(f'ok {n} - {name} # SKIP not run (as on upstream '
                      f'{"too" if u == "skip" else "builds alike"})')
            else:
                print(f'ok {n} - {name}')
        else:
            bad += 1
            st['fail'] += 1
            why = {'pass': 'passes on upstream: a regression of the series',
                   'fail': 'fails on upstream too, but tests/gate/expected '
                           'does not name it',
                   'skip': 'not run on upstream'}.get(u, 'not run on upstream')
            print(f'not ok {n} - {name} ({r} on the series; {why})')

    for suite in wanted:
        st = stats.get(suite, {'pass': 0, 'fail': 0, 'skip': 0, 'known': 0,
                               'up_pass': 0, 'tests': 0})
        want = exp.counts.get(suite)
        got = (st['tests'], st['skip'])
        if want is not None and want[1] is None:
            got = (st['tests'], None)
        n += 1
        if want is None or got != want:
            bad += 1
            print(f'not ok {n} - {suite}: {got[0]} tests of which {got[1]} '
                  f'not run; tests/gate/expected pins {want}')
        else:
            print(f'ok {n} - {suite}: {got[0]} tests, {got[1]} not run, '
                  f'as pinned')
        up = f', upstream {st["up_pass"]} passed' if a.full else ''
        print(f'gate {suite}: {st["pass"]} passed, {st["fail"]} failed, '
              f'{st["skip"]} not run, {st["known"]} known failures{up}',
              file=sys.stderr)
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
