"""The test harness of the werror/rerror=retry series: one package for the
guest-level e2e tests (tests/e2e), the libvirt e2e (tests/libvirt), the
torture (tests/e2e) and the benchmarks (bench/).

Modules, by job:
  paths     where things are: the repository, the cache, the binaries, the
            QEMU tree's python/ (put on sys.path here, the one place)
  checks    failures, checks, deadlines
  process   work directories, helper processes and daemons, commands
  storage   storage that really fails: loop device over a FUSE file (its
            control file), NBD served by qemu-storage-daemon (killed and
            started again; unix socket or TCP), plain files, images
  vm        QEMU: VM, a qemu.machine.QEMUMachine with its disks, QMP through
            qemu.qmp with QEMU's event time stamps; the accelerator
  console   the guest's serial console, waits that end when QEMU exits
  workload  the guest image, the workload's console protocol, verification
            in the guest and on the host
  context   the environment of all runs (Env) and one run's (RunContext,
            RunInfo, Timeline)
  report    result lines, timelines, verdicts, percentiles

The entry scripts (tests/e2e/run.py, tests/libvirt/e2e.py, bench/run.py)
put this package's parent directory (tests/) on sys.path and import it;
logging goes through the 'harness' logger (setup_logging).
"""

import logging
import sys

from . import paths

paths.use_qemu_python()


def setup_logging(verbose):
    """-v: the harness's debug messages (QMP events, console lines, marks,
    processes) and qemu.machine's and qemu.qmp's warnings on stderr; else
    the harness's warnings only (a QMP connection that QEMU's exit resets,
    a QEMU killed on purpose: the harness reports what matters of them)"""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format='  [%(asctime)s] %(name)s: %(message)s', datefmt='%H:%M:%S')
    logging.getLogger('harness').setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger('qemu').setLevel(logging.WARNING if verbose else logging.CRITICAL)
