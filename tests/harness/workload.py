"""The test guest and its workload: the image (Debian kernel + busybox
initramfs holding the workload, built by tests/e2e/mkinitramfs.sh), the
workload's console protocol, and the verification of what it wrote, in
the guest and on the host.

The workload prints E2E-START, E2E-PROGRESS twice a second (written, busy_ms
= age of the operation in flight, ...), E2E-STALL / E2E-WERR / E2E-RERR as
things happen, E2E-ACK per acknowledged file (e2e.acks=1), and E2E-RESULT
once the host typed E2E-STOP (see tests/e2e/guest/workload.c).  Waits on
the console end at the line that answers them, or when QEMU exits."""

import os
import re
import shutil
import subprocess
import tempfile
import time

from .checks import Fail, check
from .paths import BIN, CACHE, E2E
from .process import run_cmd


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


def build_guest():
    """build the host helpers and the guest image: (kernel, initrd)"""
    run_cmd(['make', '-s', '-C', E2E, 'CACHE=' + CACHE], timeout=300)
    out = run_cmd([os.path.join(E2E, 'mkinitramfs.sh')], timeout=600)
    kernel = initrd = None
    for line in out.splitlines():
        if line.startswith('KERNEL='):
            kernel = line[7:]
        elif line.startswith('INITRD='):
            initrd = line[7:]
    if not kernel or not initrd:
        raise Fail('mkinitramfs.sh printed no KERNEL=/INITRD=: %s' % out[-300:])
    return kernel, initrd


def guest_append(args, extra=''):
    return ('quiet console=ttyS0 panic=-1 e2e.max=%d e2e.pace=%d %s' %
            (args.guest_max, args.pace, extra)).strip()


def boot(ctx, q):
    """start QEMU paused, attach, run; wait for the workload to start"""
    q.start(ctx.console)
    q.qmp.cmd('cont')
    dl = time.monotonic() + ctx.args.boot_timeout
    try:
        _, t, _ = ctx.console.wait(r'E2E-START', dl, what='workload start')
    except Fail as e:
        if not q.running():
            raise Fail('QEMU exited during boot: ' + ctx.tail('qemu-' + q.tag))
        raise e
    if ctx.info.boot_s is None:
        ctx.info.boot_s = round(t - q.t_spawn, 1)
    ctx.tl.mark('workload-start')


def progress(console, since=None, tag=None, prefix='E2E'):
    """[(t, {written, busy_ms, t, ...})] of the PROGRESS lines"""
    return [(t, kv(m.group(1))) for t, _, _, m in
            console.find(r'%s-PROGRESS (.*)' % prefix, since, tag)]


def last_progress(console, since=None, prefix='E2E'):
    p = console.find(r'%s-PROGRESS (.*)' % prefix, since)
    return kv(p[-1][3].group(1)) if p else None


def wait_progress(console, pred, deadline, what, since=None):
    """the first PROGRESS line (after since) for which pred(t, dict): its t"""
    def found():
        for t, p in progress(console, since):
            if pred(t, p):
                return t
        return None
    return console.wait_for(found, deadline, what)


def wait_written(ctx, n, deadline, what):
    """wait for a PROGRESS line with written >= n"""
    wait_progress(ctx.console, lambda t, p: p.get('written', 0) >= n, deadline, what)


def warmup(ctx):
    wait_written(ctx, ctx.args.warmup_files, time.monotonic() + 30, 'warm-up writes')


def outage_wait(ctx, until, poll=None):
    """let the outage's wall time pass (the one sleep the harness allows)"""
    while True:
        left = until - time.monotonic()
        if left <= 0:
            return
        if poll:
            poll()
        time.sleep(min(left, 0.2) if poll else left)


def guest_result(console, m=None):
    """the workload's E2E-RESULT (the line matched by m, default the last
    one), with the guest's fsck (E2E-FSCK, after it unmounted the disk) as
    fsck_rc"""
    if m is None:
        r = console.find(r'E2E-RESULT (.*)')
        m = r[-1][3] if r else None
    res = kv(m.group(1)) if m else {}
    fs = console.find(r'^E2E-FSCK rc=(\d+)')
    res['fsck_rc'] = int(fs[-1][3].group(1)) if fs else None
    return res


def finish(ctx, q, deadline_s=90):
    """stop the workload, get its report, wait for power-off"""
    ctx.tl.mark('stop-sent')
    ctx.console.send('\nE2E-STOP\n')
    dl = time.monotonic() + deadline_s
    _, _, m = ctx.console.wait(r'E2E-RESULT (.*)', dl, start=0, what='E2E-RESULT')
    ctx.tl.mark('result')
    q.wait_exit(time.monotonic() + 60)
    # after the workload the guest unmounts and runs e2fsck -fn
    return guest_result(ctx.console, m)


def guest_error_times(ctx, since):
    """host times of guest-visible errors after `since`"""
    werr = ctx.console.find(r'E2E-WERR ', since)
    kerr = ctx.console.find(r'I/O error|EXT4-fs error|EXT4-fs \(.*\): (?:Remount|error)', since)
    kerr = [x for x in kerr if not re.search(r'E2E\w*-', x[2])]
    return werr, kerr


def stall_info(ctx, since, until=None):
    """(stall start estimate, resume time) of the workload's writes"""
    stalled = resumed = None
    for t, p in progress(ctx.console, since):
        if stalled is None and p.get('busy_ms', 0) >= 1000:
            stalled = t - p['busy_ms'] / 1000.0
    for t, _, _, m in ctx.console.find(r'E2E-STALL (.*)', since):
        s = kv(m.group(1))
        if s.get('ms', 0) >= 1000 and s.get('err', 1) == 0:
            resumed = t
            if stalled is None:
                stalled = t - s['ms'] / 1000.0
            break
    return stalled, resumed


def wait_resumed(ctx, restore_t, deadline):
    """after storage came back: writes progress again (or report an error)"""
    base = (last_progress(ctx.console) or {}).get('written', 0)
    return wait_progress(ctx.console, lambda t, p: p.get('written', 0) > base + 3 and
                         p.get('busy_ms', 0) < 1000, deadline, 'writes to resume',
                         since=restore_t)


def post_run(ctx, seconds):
    """let the guest run `seconds` more (guest-clock progress lines)"""
    p = last_progress(ctx.console) or {'t': 0}
    t_want = p.get('t', 0) + int(seconds * 1000)
    wait_progress(ctx.console, lambda t, p: p.get('t', 0) >= t_want,
                  time.monotonic() + seconds + 30, 'progress for %.0f s' % seconds)


def wait_hung(ctx, q, t_fail):
    """until the guest really hangs on the failing storage: a write in flight
    for >= 1.5 s"""
    wait_progress(ctx.console, lambda t, p: p.get('busy_ms', 0) >= 1500,
                  time.monotonic() + 20, 'write stall', since=t_fail)
    return ctx.tl.mark('guest-stalled')


def progress_on(ctx, tag, since):
    """E2E-PROGRESS dicts the guest printed on QEMU `tag`'s console"""
    return progress(ctx.console, since, tag)


def check_guest_clean(res, fails):
    check(res.get('write_errors') == 0, fails, 'guest write errors')
    check(res.get('read_errors', 0) == 0, fails, 'guest read errors')
    check(res.get('kernel_io_errors') == 0, fails, 'kernel I/O errors in the guest')
    check(res.get('fs_rw') == 1 and res.get('fs_writable') == 1, fails,
          'filesystem not writable')
    check(res.get('bad') == 0 and res.get('verified') == res.get('written'), fails,
          'data not verified')
    check(res.get('fsck_rc') == 0, fails, 'guest fsck: rc=%s' % res.get('fsck_rc'))


def acks_on_console(console, tag=None):
    """(dir, seq) of every E2E-ACK the guests printed (e2e.acks=1)"""
    return [(m.group(1), int(m.group(2)))
            for _, _, _, m in console.find(r'E2E-ACK d=(\S+) s=(\d+)', tag=tag)]


def host_verify(ctx, image, fmt, acks):
    """every acknowledged file, checked on the host in a raw copy of the
    image, mounted (which replays the journal), then e2fsck -fn of the copy
    (after the replay: e2fsck -n cannot replay a journal, and would report
    what it finds before the replay).  Returns (E2E-HOSTVERIFY counts, the
    verifier's output, e2fsck's rc, e2fsck's first findings); ok only if
    counts['checked'] == counts['ok'] == len(acks)."""
    work = tempfile.mkdtemp(prefix='verify-', dir=ctx.workdir)
    try:
        copy = os.path.join(work, 'disk.img')
        run_cmd([ctx.env.qemu_img, 'convert', '-U', '-f', fmt, '-O', 'raw', image, copy],
                timeout=600)
        acklist = os.path.join(work, 'acks.txt')
        with open(acklist, 'w') as f:
            f.writelines('%s %d\n' % a for a in acks)
        mnt = os.path.join(work, 'mnt')
        os.makedirs(mnt)
        run_cmd(['mount', '-o', 'loop', copy, mnt], timeout=60)
        try:
            r = subprocess.run([os.path.join(BIN, 'e2e-workload'), '-V', acklist, '-m', mnt],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=300)
        finally:
            run_cmd(['umount', mnt], timeout=60, check=False)
        fsck = subprocess.run(['e2fsck', '-fn', copy], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m = re.search(r'E2E-HOSTVERIFY (.*)', r.stdout)
    counts = kv(m.group(1)) if m else {}
    findings = [ln for ln in fsck.stdout.splitlines()
                if ln.strip() and not ln.startswith(('Pass ', 'e2fsck '))][:3]
    return counts, r.stdout.strip()[-300:], fsck.returncode, findings
