"""Guest-level end-to-end tests for werror/rerror=retry.

Modules, by job:
  base       paths, logging, errors, deadlines, the processes the harness starts
  storage    storage that really fails: loop device over a FUSE file, NBD
             served by qemu-storage-daemon (unix socket or TCP), images
  vm         QEMU control: QEMUMachine and qemu.qmp from the QEMU tree's
             python/, the serial console reader, accelerator choice
  guest      the guest image (kernel + initramfs) and the workload's protocol
  scenarios  one module per family of scenarios, and the run matrix
  runner     one run: its context, work directory and clean-up
  report     result lines, timelines, verdicts of the "before" runs
  cli        the command line (run.py)
"""
