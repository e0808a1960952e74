"""The environment of a run.py invocation (harness.context.Env: binaries,
guest image, accelerator), one run of a scenario in its context, and its
clean-up."""

import os
import shutil
import sys
import time
import traceback

from harness import paths, vm, workload
from harness.checks import Fail
from harness.context import Env, RunContext


def prepare(args):
    """the environment shared by all runs: binaries, guest image, accel"""
    from .scenarios import DEVICES
    qemu = paths.QEMU
    if not os.access(qemu, os.X_OK):
        sys.exit('error: QEMU binary %s not found (set QEMU)' % qemu)
    up = paths.QEMU_UPSTREAM
    kernel, initrd = workload.build_guest()
    env = Env(qemu=qemu, kernel=kernel, initrd=initrd,
              accel=vm.pick_accel(args.accel, qemu, kernel, initrd),
              qsd=paths.qsd_for(qemu), qemu_img=paths.qemu_img_for(qemu),
              retry_props={d: vm.retry_props(qemu, d) for d in DEVICES})
    if os.access(up, os.X_OK):
        env.upstream = up
    else:
        # never $QEMU instead: the "before" runs must show upstream's
        # behaviour, so each run that needs upstream fails (upstream_qemu)
        env.upstream_missing = (
            'no upstream QEMU binary at %s (make build-upstream, or set QEMU_UPSTREAM): this '
            'run needs it, and the patched $QEMU is no substitute' % up)
    if args.torture:
        env.torture_qemu = paths.QEMU_SANITIZER
        if not os.access(env.torture_qemu, os.X_OK):
            sys.exit('error: no sanitizer build of QEMU at %s (make build-asan, or set '
                     'QEMU_SANITIZER)' % env.torture_qemu)
    return env


def upstream_qemu(env):
    """the upstream binary, or the failure of the run that needs it"""
    if env.upstream is None:
        raise Fail(env.upstream_missing)
    return env.upstream


def run_one(args, env, scenario, device, storage):
    """run one scenario on one device/storage: (status, name, detail,
    seconds, its RunContext)"""
    from .scenarios import SCENARIOS
    sc = SCENARIOS[scenario]
    name = '%s/%s/%s' % (scenario, device, storage)
    if sc.needs_retry and not env.has_retry(device):
        # never a skip: a run that cannot happen is a failure
        msg = 'QEMU %s: %s has no retry policy (retry-interval, retry-timeout)' % (
            env.qemu, device)
        return 'FAIL', name, msg, 0.0, None
    ctx = RunContext(name, env, args)
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
        if ctx.info.boot_s is not None:
            detail += ' boot=%.1fs' % ctx.info.boot_s
        if status == 'FAIL' or args.keep:
            detail += ' (logs: %s)' % ctx.workdir
        else:
            shutil.rmtree(ctx.workdir, ignore_errors=True)
    return status, name, detail, elapsed, ctx
