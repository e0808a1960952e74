#!/usr/bin/env python3
"""Guest-level end-to-end tests for werror/rerror=retry.

A small Linux guest (Debian 12 kernel + busybox initramfs, see
mkinitramfs.sh) writes files with fsync on an ext4 disk while the host makes
the storage fail for a while:

  fuse  a loop device (direct I/O) over a file served by failing-fuse, which
        answers EIO while the outage lasts; QEMU opens /dev/loopN with
        cache=none,aio=native (--aio to change);
  nbd   qemu-storage-daemon exporting the image over a unix socket; the
        outage is SIGKILL of the daemon, recovery is restarting it.

Scenarios (--scenario, comma separated; --list prints the runs of a suite):
one outage on one disk (the "before" pictures with the default and stop
policies, short and long outages, rerror=report, the policy on -drive,
retry then stop), live migration during an outage, outage patterns
(flapping, 90 s, interval 0, a read workload), configurations (qcow2,
the host page cache, two disks, multiqueue), and 16 management
operations sent while the disk hangs (op-NAME on the series, op-NAME-stop
on upstream with werror=stop; --ops-table FILE runs both and writes the
table README.md shows).  --check is make check's subset, --full every
run, --torture the seeded torture on the sanitizer build.

Binaries: $QEMU (the patched build, default build/qemu/build/...),
$QEMU_UPSTREAM (unpatched; default build/qemu-upstream/build/...; when it is
missing, every run that needs it fails: $QEMU is no substitute), $QSD
(qemu-storage-daemon, default next to $QEMU).  A run that needs retry
support fails when $QEMU lacks it: nothing is skipped.

The scenarios are the package e2e/ next to this file (scenarios, runner,
torture, cli), on the harness shared with the libvirt e2e and the bench,
tests/harness (storage, vm, console, workload, context, report); it drives
QEMU with qemu.machine and qemu.qmp from the QEMU tree's python/
(build/qemu/python, or $QEMU_PYTHON).

Output: one "PASS|FAIL <scenario>/<device>/<storage> details" line per
run, then "N passed, N failed, N skipped" (never a skip); exit status 1 on
any failure.
"""

import os
import sys

# the harness package (tests/harness): its parent, tests/, on sys.path
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from e2e import cli  # noqa: E402

if __name__ == '__main__':
    try:
        sys.exit(cli.main(__doc__))
    except KeyboardInterrupt:
        sys.exit(130)
