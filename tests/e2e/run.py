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

Scenarios (--scenario, comma separated; default: the suite below):
  short-outage     retry policy, outage < retry_timeout: guest only stalls
  long-outage      retry policy, outage > retry_timeout: guest gets an error
  upstream-default default werror/rerror: guest sees I/O errors ("before")
  upstream-stop    werror=stop,rerror=stop: VM pauses, harness sends cont
  migrate          migrate during the outage (bandwidth held back), restore
                   storage, the migration completes, guest ends on the dest
  migrate-in-outage a migration completing during the outage fails cleanly,
                   the guest goes on on the source; a second one completes
  rerror-report    rerror=report,werror=retry: reads fail fast, writes hang

Binaries: $QEMU (the patched build, default build/qemu/build/...),
$QEMU_UPSTREAM (unpatched; default build/qemu-upstream/build/...; when it is
missing the upstream scenarios use $QEMU with default policies), $QSD
(qemu-storage-daemon, default next to $QEMU).  Scenarios that need retry
support are reported as SKIP when $QEMU lacks it (--require-retry: FAIL).

The harness is the package e2e/ next to this file (storage, vm, guest,
scenarios, runner, report, cli); it drives QEMU with qemu.machine and
qemu.qmp from the QEMU tree's python/ (build/qemu/python, or $QEMU_PYTHON).

Output: one "PASS|FAIL|SKIP <scenario>/<device>/<storage> details" line per
run, then "N passed, N failed, N skipped"; exit status 1 on any failure.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from e2e import cli  # noqa: E402

if __name__ == '__main__':
    try:
        sys.exit(cli.main(__doc__))
    except KeyboardInterrupt:
        sys.exit(130)
