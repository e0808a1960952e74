"""One run of a scenario: its context (work directory, processes, QEMUs,
console, timeline), the environment shared by all runs, and clean-up."""

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

from . import guest, vm
from .base import REPO, Fail, Procs, log


class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()
        self.marks = []          # (t, name, text)
        self.lock = threading.Lock()

    def mark(self, name, text=''):
        t = time.monotonic()
        with self.lock:
            self.marks.append((t, name, text))
        log('mark %s %s' % (name, text))
        return t

    def get(self, name, nth=0):
        found = [m for m in self.marks if m[1] == name]
        return found[nth][0] if len(found) > nth else None


class Ctx:
    def __init__(self, args, env, name):
        self.args = args
        self.env = env
        self.name = name
        self.workdir = tempfile.mkdtemp(prefix='e2e-%s-' % name.replace('/', '-'))
        self.procs = Procs(self.workdir)
        self.cleanups = contextlib.ExitStack()
        self.kernel = env['kernel']
        self.initrd = env['initrd']
        self.accel = env['accel']
        self.tl = Timeline()
        self.qemus = []
        self.console = vm.Console(os.path.join(self.workdir, 'console.log'))
        self.info = {}
        # checks made along the way by shared helpers (episodes, fsck ...)
        self.fails = []
        self.details = []

    def tail(self, logname, n=400):
        try:
            with open(os.path.join(self.workdir, logname + '.log'), 'rb') as f:
                data = f.read()[-n:]
            return data.decode('utf-8', 'replace').strip().replace('\n', ' | ')
        except OSError:
            return ''

    def close(self):
        try:
            # QEMU first: it holds the loop device and the NBD connection
            for q in self.qemus:
                q.kill(grace=1.0)
            self.cleanups.close()
        finally:
            self.procs.cleanup()
            self.console.close()


def default_bin(rel):
    return os.path.join(REPO, 'build', rel)


def prepare(args):
    """the environment shared by all runs: binaries, guest image, accel"""
    from .scenarios import DEVICES
    env = {}
    qemu = os.environ.get('QEMU') or default_bin('qemu/build/qemu-system-x86_64')
    if not os.access(qemu, os.X_OK):
        sys.exit('error: QEMU binary %s not found (set QEMU)' % qemu)
    env['qemu'] = qemu
    up = os.environ.get('QEMU_UPSTREAM') or default_bin('qemu-upstream/build/qemu-system-x86_64')
    if os.access(up, os.X_OK):
        env['upstream'] = (up, '')
    else:
        # never $QEMU instead: the "before" runs must show upstream's
        # behaviour, so each run that needs upstream fails (upstream_qemu)
        env['upstream'] = (None, 'no upstream QEMU binary at %s (make build-upstream, or set '
                           'QEMU_UPSTREAM): this run needs it, and the patched $QEMU is no '
                           'substitute' % up)
    env['qsd'] = os.environ.get('QSD') or os.path.join(
        os.path.dirname(qemu), 'storage-daemon', 'qemu-storage-daemon')
    env['qemu_img'] = os.environ.get('QEMU_IMG') or os.path.join(
        os.path.dirname(qemu), 'qemu-img')
    env['retry_props'] = {d: vm.retry_props(qemu, d) for d in DEVICES}
    env['retry'] = {d: env['retry_props'][d] is not None for d in DEVICES}
    if args.torture:
        env['torture_qemu'] = os.environ.get('QEMU_SANITIZER') or default_bin(
            'qemu/build-asan/qemu-system-x86_64')
        if not os.access(env['torture_qemu'], os.X_OK):
            sys.exit('error: no sanitizer build of QEMU at %s (make build-asan, or set '
                     'QEMU_SANITIZER)' % env['torture_qemu'])
    env['kernel'], env['initrd'] = guest.build_guest()
    env['accel'] = vm.pick_accel(args, env)
    return env


def upstream_qemu(env):
    """the upstream binary, or the failure of the run that needs it"""
    path, why = env['upstream']
    if path is None:
        raise Fail(why)
    return path


def run_one(args, env, scenario, device, storage):
    """run one scenario on one device/storage: (status, name, detail, seconds)"""
    from .scenarios import SCENARIOS
    sc = SCENARIOS[scenario]
    name = '%s/%s/%s' % (scenario, device, storage)
    if sc.needs_retry and not env['retry'][device]:
        # never a skip: a run that cannot happen is a failure
        msg = 'QEMU %s: %s has no retry policy (retry-interval, retry-timeout)' % (
            env['qemu'], device)
        return 'FAIL', name, msg, 0.0
    ctx = Ctx(args, env, name)
    t0 = time.monotonic()
    status, detail = 'FAIL', ''
    try:
        fails, detail = sc.func(ctx, device, storage)
        fails = ctx.fails + fails
        detail = ' '.join([detail] + ctx.details)
        if fails:
            detail = '; '.join(fails) + ' | ' + detail
        else:
            status = 'PASS'
    except Fail as e:
        detail = '; '.join(ctx.fails + [str(e)])
    except KeyboardInterrupt:
        detail = 'interrupted'
        raise
    except Exception as e:      # a harness bug is a failure, never a pass
        traceback.print_exc()
        detail = 'harness error: %r' % e
    finally:
        try:
            ctx.close()
        except Exception as e:
            status, detail = 'FAIL', detail + ' | cleanup failed: %r' % e
        elapsed = time.monotonic() - t0
        if 'boot_s' in ctx.info:
            detail += ' boot=%.1fs' % ctx.info['boot_s']
        if status == 'FAIL' or args.keep:
            detail += ' (logs: %s)' % ctx.workdir
        else:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    env['last_ctx'] = ctx
    return status, name, detail, elapsed
