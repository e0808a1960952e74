"""The scenarios and the run matrix.

Each scenario is a function (ctx, device, storage) -> (failures, details);
a run PASSes when failures is empty."""

import collections

from . import migration, outage

Scenario = collections.namedtuple('Scenario', 'func needs_retry doc')

SCENARIOS = collections.OrderedDict([
    ('upstream-default', Scenario(outage.sc_upstream_default, False,
                                  'default werror/rerror: guest sees I/O errors ("before")')),
    ('upstream-stop', Scenario(outage.sc_upstream_stop, False,
                               'werror=stop,rerror=stop: VM pauses, harness sends cont')),
    ('short-outage', Scenario(outage.sc_short_outage, True,
                              'retry policy, outage < retry_timeout: guest only stalls')),
    ('long-outage', Scenario(outage.sc_long_outage, True,
                             'retry policy, outage > retry_timeout: guest gets an error')),
    ('migrate', Scenario(migration.sc_migrate, True,
                         'migrate during the outage (bandwidth held back), restore '
                         'storage, the migration completes, guest ends on the dest')),
    ('migrate-in-outage', Scenario(migration.sc_migrate_in_outage, True,
                                   'a migration completing during the outage fails '
                                   'cleanly, the guest goes on on the source; a second '
                                   'one completes')),
    ('rerror-report', Scenario(outage.sc_rerror_report, True,
                               'rerror=report,werror=retry: reads fail fast, writes hang')),
])

ALL_SCENARIOS = list(SCENARIOS)
DEVICES = ['virtio-blk', 'scsi-hd']
STORAGES = ['fuse', 'nbd']
ALL_COMBOS = [(d, s) for d in DEVICES for s in STORAGES]
# default suite (--check, what make check runs): every scenario on every
# device/storage combination, 28 runs, about 9 min.  --quick, for work on
# the harness (15 runs, about 4.5 min): short-outage on every combination,
# the other scenarios on two crossed combinations (each device and each
# storage kind once), migrate-in-outage on one.
CROSSED = [('virtio-blk', 'fuse'), ('scsi-hd', 'nbd')]
CROSSED2 = [('virtio-blk', 'nbd'), ('scsi-hd', 'fuse')]
DEFAULT_SUITE = [(n, d, s) for n in ALL_SCENARIOS for d, s in ALL_COMBOS]
QUICK_SUITE = (
    [('upstream-default', d, s) for d, s in CROSSED2] +
    [('upstream-stop', d, s) for d, s in CROSSED] +
    [('short-outage', d, s) for d, s in ALL_COMBOS] +
    [('long-outage', d, s) for d, s in CROSSED] +
    [('rerror-report', d, s) for d, s in CROSSED] +
    [('migrate', d, s) for d, s in CROSSED2] +
    [('migrate-in-outage', 'virtio-blk', 'fuse')])
