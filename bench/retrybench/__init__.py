"""Benchmarks of the werror/rerror=retry series, patched QEMU side by side
with upstream QEMU built from the same source with the same flags.

Modules, by job:
  qtestvirtio  a guest driver over the qtest protocol: legacy virtio-pci
               virtio-blk and virtio-scsi queues, requests, kicks
  fastpath     1. instructions per request without errors (callgrind)
  scale        5. parked requests and disks: CPU per attempt, memory (qtest,
               virtual clock)
  guestvm      the TCG guest for real-time measurements: bench-io in an
               initramfs overlay on the e2e guest, QEMU and storage from the
               harness (tests/harness, which bench/run.py puts on sys.path)
  recovery     2. recovery latency (loop/FUSE and NBD)
  timeout      3. timeout precision
  hung         4. CPU while hung; interval 0: QMP latency, vCPU heartbeat
  report       tables (text, README markdown), PNG plots
"""
