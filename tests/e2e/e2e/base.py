"""Paths, logging, errors, deadlines and the processes the harness starts."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tests/e2e
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get('E2E_CACHE') or os.path.join(
    os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'),
    'qemu-retry', 'e2e')
BIN = os.path.join(CACHE, 'bin')

VERBOSE = False


def log(msg):
    if VERBOSE:
        sys.stderr.write('  [%s] %s\n' % (time.strftime('%H:%M:%S'), msg))
        sys.stderr.flush()


class Fail(Exception):
    """the run failed (a broken assertion, a deadline, a setup error)"""


def kv(text):
    """'a=1 b=x' -> {'a': 1, 'b': 'x'} (ints converted)"""
    out = {}
    for m in re.finditer(r'(\w+)=(\S+)', text):
        v = m.group(2)
        try:
            v = int(v)
        except ValueError:
            pass
        out[m.group(1)] = v
    return out


def wait_until(pred, deadline, what, step=0.05):
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail('timeout waiting for %s' % what)
        time.sleep(step)


def check(cond, failures, msg):
    if not cond:
        failures.append(msg)


def run_cmd(argv, timeout=30, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, universal_newlines=True)
    if check and r.returncode != 0:
        raise Fail('%s failed (%d): %s' % (' '.join(argv), r.returncode,
                                           r.stdout.strip()[-300:]))
    return r.stdout


class Procs:
    """Every helper process the harness starts (FUSE server, storage
    daemon), each in its own process group.  QEMU itself is started by
    QEMUMachine (vm.py)."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.items = []

    def start(self, name, argv, **kw):
        logf = open(os.path.join(self.workdir, name + '.log'), 'ab')
        log('start %s: %s' % (name, ' '.join(argv)))
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             **kw)
        logf.close()
        p.name = name
        self.items.append(p)
        return p

    @staticmethod
    def signal(p, sig):
        if p.returncode is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, grace=3.0):
        # once the leader has been reaped its pid (= group id) may be
        # reused: never signal a group whose leader is gone
        if p.poll() is not None:
            return
        self.signal(p, signal.SIGTERM)
        try:
            p.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
        self.signal(p, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(5)

    def cleanup(self):
        for p in reversed(self.items):
            self.stop(p, grace=1.0)
