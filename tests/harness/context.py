"""What a run works with: the environment shared by all runs (Env: the
binaries, the guest image, the accelerator), and one run's context
(RunContext: its work directory and helper processes, its QEMUs, the
guest's console, the timeline of what the harness did, and what the run
found, RunInfo)."""

import dataclasses
import logging
import os
import threading
import time

from .console import Console
from .process import Workdir

LOG = logging.getLogger('harness')


@dataclasses.dataclass
class Env:
    qemu: str                       # the series' binary
    kernel: str
    initrd: str
    accel: str
    qsd: str
    qemu_img: str = None
    upstream: str = None            # upstream QEMU, or None (why: upstream_missing)
    upstream_missing: str = ''
    retry_props: dict = dataclasses.field(default_factory=dict)   # device -> names or None
    torture_qemu: str = None        # the sanitizer build

    def has_retry(self, device):
        return self.retry_props.get(device) is not None


@dataclasses.dataclass
class RunInfo:
    """what a run found, beyond its pass/fail and details"""
    boot_s: float = None
    verdict: tuple = None           # (what the run showed, why that was expected)
    episodes: dict = dataclasses.field(default_factory=dict)    # QEMU tag -> totals
    resume_t: float = None          # guest writes resumed after the outage
    cycles: int = 0                 # pause/cont cycles of a stop manager
    paused_states: list = dataclasses.field(default_factory=list)
    qcow2_before: dict = None       # qemu-img check before the run
    op_rows: list = dataclasses.field(default_factory=list)     # operations' table rows
    op_probe: dict = dataclasses.field(default_factory=dict)


class Timeline:
    def __init__(self):
        self.t0 = time.monotonic()
        self.marks = []          # (t, name, text)
        self.lock = threading.Lock()

    def mark(self, name, text='', t=None):
        """a mark now, or at t (an event's time)"""
        t = time.monotonic() if t is None else t
        with self.lock:
            self.marks.append((t, name, text))
        LOG.debug('mark %s %s', name, text)
        return t

    def get(self, name, nth=0):
        found = [m for m in self.marks if m[1] == name]
        return found[nth][0] if len(found) > nth else None


class RunContext(Workdir):
    """one run: a work directory (in `parent`, default the system's
    temporary directory), its QEMUs (vm.VM, stopped first at close), the
    guest's console, a timeline; args: the command line's options"""

    def __init__(self, name, env, args=None, prefix='e2e-', parent=None):
        super().__init__(prefix + name.replace('/', '-') + '-', parent)
        self.name = name
        self.env = env
        self.args = args
        self.tl = Timeline()
        self.qemus = []
        self.console = Console(os.path.join(self.workdir, 'console.log'))
        self.info = RunInfo()
        # checks made along the way by shared helpers (episodes, fsck ...)
        self.fails = []
        self.details = []

    def close(self):
        try:
            # QEMU first: it holds the loop device and the NBD connection
            for q in self.qemus:
                q.terminate(grace=1.0)
        finally:
            try:
                super().close()
            finally:
                self.console.close()
