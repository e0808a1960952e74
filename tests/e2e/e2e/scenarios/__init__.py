"""The scenarios and the run matrix.

Each scenario is a function (ctx, device, storage) -> (failures, details);
a run PASSes when failures is empty.  A run is scenario/device/storage.

--full (make check-full) runs every scenario on every device and storage
kind where they differ; --check (make check) a fixed subset that still
runs every scenario, on both devices and both main storage kinds, crossed
(see CHECK below and tests/e2e/README.md)."""

import collections

from . import configs, migration, operations, outage, patterns

Scenario = collections.namedtuple('Scenario', 'func needs_retry doc full check')

DEVICES = ['virtio-blk', 'scsi-hd']
STORAGES = ['fuse', 'nbd']            # the two main kinds of failing storage
ALL_STORAGES = STORAGES + ['nbd-tcp']
ALL_COMBOS = [(d, s) for d in DEVICES for s in STORAGES]
# crossed pairs: each device and each storage kind once
CROSSED = [('virtio-blk', 'fuse'), ('scsi-hd', 'nbd')]
CROSSED2 = [('virtio-blk', 'nbd'), ('scsi-hd', 'fuse')]
FUSE_BOTH = [('virtio-blk', 'fuse'), ('scsi-hd', 'fuse')]
TCP_BOTH = [('virtio-blk', 'nbd-tcp'), ('scsi-hd', 'nbd-tcp')]


def _sc(func, needs_retry, doc, full=ALL_COMBOS, check=CROSSED):
    return Scenario(func, needs_retry, doc, list(full), list(check))


SCENARIOS = collections.OrderedDict([
    ('upstream-default', _sc(outage.sc_upstream_default, False,
                             'upstream binary, default werror/rerror: the guest sees I/O '
                             'errors (the "before")', check=CROSSED2)),
    ('upstream-stop', _sc(outage.sc_upstream_stop, False,
                          'upstream binary, werror=stop,rerror=stop: the VM pauses, the '
                          'harness sends cont')),
    ('patched-default', _sc(outage.sc_patched_default, False,
                            'patched binary, default werror/rerror: as upstream')),
    ('patched-stop', _sc(outage.sc_patched_stop, False,
                         'patched binary, werror=stop,rerror=stop: as upstream',
                         check=CROSSED2)),
    ('short-outage', _sc(outage.sc_short_outage, True,
                         'retry policy, outage < retry_timeout: the guest only stalls',
                         full=ALL_COMBOS + TCP_BOTH, check=ALL_COMBOS + TCP_BOTH)),
    ('long-outage', _sc(outage.sc_long_outage, True,
                        'retry policy, outage > retry_timeout: the guest gets an error '
                        '(on nbd-tcp the attempts hang for reconnect-delay first)',
                        full=ALL_COMBOS + TCP_BOTH, check=CROSSED + [('scsi-hd', 'nbd-tcp')])),
    ('migrate', _sc(migration.sc_migrate, True,
                    'migrate during the outage (bandwidth held back), restore storage, '
                    'the migration completes, the guest ends on the destination',
                    check=CROSSED2)),
    ('migrate-in-outage', _sc(migration.sc_migrate_in_outage, True,
                              'a migration completing during the outage fails cleanly, '
                              'the guest goes on on the source; a second one completes')),
    ('retry-then-stop', _sc(outage.sc_retry_then_stop, True,
                            'werror=stop with retry-timeout=10000: a short outage stays '
                            'invisible, a 60 s one pauses the VM once after the timeout, '
                            'cont after the storage is back resumes it',
                            full=FUSE_BOTH, check=[('virtio-blk', 'fuse')])),
    ('rerror-report', _sc(outage.sc_rerror_report, True,
                          'rerror=report,werror=retry: reads fail fast, writes hang')),
    ('drive-policy', _sc(outage.sc_drive_policy, True,
                         'werror=retry,rerror=retry only on -drive, inherited by the '
                         'device: a short outage only stalls the guest', check=CROSSED2)),
    ('flapping', _sc(patterns.sc_flapping, True,
                     '6 outages of 0.3-3 s with 0.5-2 s gaps: one episode per outage, '
                     'the guest only stalls')),
    ('outage-90s', _sc(patterns.sc_outage_90s, True,
                       'a 90 s outage, retry_timeout=0: no guest I/O error, no SCSI task '
                       'management, hung-task warnings reported', check=FUSE_BOTH)),
    ('interval-zero', _sc(patterns.sc_interval_zero, True,
                          'retry-interval=0 on storage that fails at once: QMP answers '
                          'within 100 ms, the guest\'s vCPU runs on, QEMU\'s CPU use printed')),
    ('read-heavy', _sc(patterns.sc_read_heavy, True,
                       'rerror=retry under reads with the page cache dropped: reads park, '
                       'recover, and return the right data', check=CROSSED2)),
    ('qcow2-sparse', _sc(configs.sc_qcow2_sparse, True,
                         'sparse qcow2 (512 B clusters) on the failing storage: clusters and '
                         'L2 tables allocated during the outage; qemu-img check and guest '
                         'fsck clean')),
    ('qcow2-prealloc', _sc(configs.sc_qcow2_prealloc, True,
                           'qcow2 with preallocation=metadata: qemu-img check and guest '
                           'fsck clean', check=CROSSED2)),
    ('writeback', _sc(configs.sc_writeback, True,
                      'cache.direct=off (host page cache): a failed flush fails for the '
                      'guest at once, QEMU warns (at realize and once at the flush)',
                      full=FUSE_BOTH, check=FUSE_BOTH)),
    ('two-disks', _sc(configs.sc_two_disks, True,
                      'two disks, one failing: the healthy one keeps flowing (its '
                      'latency reported)')),
    ('multiqueue', _sc(configs.sc_multiqueue, True,
                       '2 vCPUs, 2 queues, an iothread; both queues carry requests')),
    ('multiqueue-vq-mapping', _sc(configs.sc_multiqueue_vq_mapping, True,
                                  'virtio-blk, 2 queues on 2 iothreads '
                                  '(iothread-vq-mapping), 2 vCPUs',
                                  full=[('virtio-blk', 'fuse'), ('virtio-blk', 'nbd')],
                                  check=[('virtio-blk', 'nbd')])),
])

# Operations during an outage (operations.py): 'op-NAME' on the series,
# 'op-NAME-stop' the baseline (upstream, werror=stop).  make check runs the
# series' side of those whose failure would be a defect of the series (the
# rest, and the baseline, in check-full and the table, run.py --ops-table).
OPS_CHECK = {
    'queries': [('virtio-blk', 'fuse')],
    'snapshot-commit': [('scsi-hd', 'nbd')],
    'unplug-hung': [('virtio-blk', 'nbd'), ('scsi-hd', 'fuse')],
    'reset': [('scsi-hd', 'fuse')],
    'powerdown': [('virtio-blk', 'fuse')],
    'fail-shutdown': [('scsi-hd', 'nbd')],
    'failover': [('virtio-blk', 'nbd'), ('scsi-hd', 'fuse')],
}
for _i, (_name, _doc, *_rest) in enumerate(operations.OPS):
    SCENARIOS['op-' + _name] = _sc(operations.scenario(_name, 'retry'), True,
                                   'in the hang: ' + _doc,
                                   check=OPS_CHECK.get(_name, []))
    SCENARIOS['op-%s-stop' % _name] = _sc(operations.scenario(_name, 'stop'), False,
                                          'baseline (upstream, werror=stop): ' + _doc,
                                          full=CROSSED, check=[])
# --ops-table: each operation on one disk/storage pair, both variants
OPS_TABLE_SUITE = [('op-%s%s' % (n, v), d, s)
                   for i, (n, *_) in enumerate(operations.OPS)
                   for d, s in [CROSSED2[i % 2]]
                   for v in ('-stop', '')]

ALL_SCENARIOS = list(SCENARIOS)
FULL_SUITE = [(n, d, s) for n, sc in SCENARIOS.items() for d, s in sc.full]
CHECK_SUITE = [(n, d, s) for n, sc in SCENARIOS.items() for d, s in sc.check]
# --quick, for work on the harness: one run of every scenario
QUICK_SUITE = [(n,) + (sc.check or sc.full)[0] for n, sc in SCENARIOS.items()]
