"""What every scenario shares: storage set-up, the one-outage run, the
stop/cont manager, QMP event helpers."""

import os
import threading
import time

from ..base import Fail, wait_until
from ..guest import boot, finish, guest_append, outage_wait, post_run, warmup, wait_resumed
from ..report import summary  # noqa: F401  (re-exported for the scenarios)
from ..storage import FuseStorage, NbdStorage, make_image
from ..vm import Qemu


def block_errors(q, since=None):
    return [ev['data'] for _, ev in q.qmp.named('BLOCK_IO_ERROR', since)]


def actions(errs):
    out = {}
    for e in errs:
        out[e.get('action')] = out.get(e.get('action'), 0) + 1
    return out


def make_storage(ctx, kind, image):
    a = ctx.args
    if kind == 'fuse':
        return FuseStorage(ctx, image, a.aio)
    return NbdStorage(ctx, image, ctx.env['qsd'], a.nbd_reconnect_delay)


def common_setup(ctx, device, storage_kind):
    image = os.path.join(ctx.workdir, 'disk.img')
    make_image(image, ctx.args.disk_mb)
    st = make_storage(ctx, storage_kind, image)
    st.start()
    return st


def retry_policy(a, interval, timeout, rerror='retry'):
    return {'werror': 'retry', 'rerror': rerror,
            'retry_interval': interval, 'retry_timeout': timeout}


def sc_outage_common(ctx, device, storage_kind, binary, policy, outage, *,
                     extra_append='', stop_manager=False, wait_resume=True,
                     resume_deadline=None):
    """boot, warm up, fail storage for `outage` s, restore, finish.
    Returns (qemu, storage, result, times)."""
    st = common_setup(ctx, device, storage_kind)
    q = Qemu(ctx, binary, 'src', st, device, policy,
             guest_append(ctx.args, extra_append))
    boot(ctx, q)
    warmup(ctx)
    mgr = StopManager(ctx, q) if stop_manager else None
    try:
        t_fail = ctx.tl.mark('outage-start')
        st.fail()
        outage_wait(ctx, t_fail + outage)
        t_rest = ctx.tl.mark('storage-restored')
        st.restore()
        if wait_resume:
            dl = time.monotonic() + (resume_deadline or
                                     (30 + st.reconnect_lag(outage)))
            ctx.info['resume_t'] = wait_resumed(ctx, t_rest, dl)
        post_run(ctx, ctx.args.post_seconds)
    finally:
        if mgr:
            mgr.stop()
    if mgr:
        ctx.info['cycles'] = mgr.cycles
        ctx.info['paused_states'] = mgr.states
        wait_until(lambda: q.status()['status'] == 'running', time.monotonic() + 10,
                   'VM running before stop')
    res = finish(ctx, q)
    return q, st, res, (t_fail, t_rest)


class StopManager:
    """a management layer: on every STOP (werror/rerror=stop) wait
    cont_delay, then cont"""

    def __init__(self, ctx, q):
        self.ctx = ctx
        self.q = q
        self.cycles = 0
        self.states = []
        self.quit = threading.Event()
        self.error = None
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        idx = 0
        try:
            while not self.quit.is_set():
                try:
                    i, t, ev = self.q.qmp.wait_event('STOP', time.monotonic() + 0.3, start=idx)
                except Fail:
                    if self.q.qmp.closed:
                        return
                    continue
                idx = i + 1
                st = self.q.status()
                self.states.append(st.get('status'))
                self.ctx.tl.mark('vm-paused', st.get('status'))
                if self.quit.wait(self.ctx.args.cont_delay):
                    pass
                self.q.qmp.cmd('cont')
                self.cycles += 1
                self.ctx.tl.mark('cont-sent')
        except Exception as e:     # reported by stop()
            self.error = e

    def stop(self):
        self.quit.set()
        self.th.join(15)
        if self.error:
            raise Fail('stop manager: %s' % self.error)


