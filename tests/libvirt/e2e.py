#!/usr/bin/env python3
"""libvirt end to end: the seed's domain XML, started by the patched libvirt
QEMU driver, rides out a real storage outage.

libvirt's embedded QEMU driver (qemu:///embed, no daemon) runs inside one
virsh process that this script drives command by command over a pipe, as a
management application would.  The domain is the e2e guest (Debian kernel +
busybox initramfs writing ext4 files with fsync, tests/e2e) with <emulator>
pointing at the patched QEMU and one disk, the seed's:

    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'
              error_policy='retry' rerror_policy='retry'
              retry_interval='2000' retry_timeout='10000'/>
      <source dev='/dev/loopN'/>        (a loop device over failing-fuse)
      <target dev='vda' bus='virtio'/>

The storage fails for --outage seconds (EIO from the FUSE file under the
loop device).

Migration (--migration, both buses by default): the same domain on two
virtqemud daemons from the build tree (class Daemon: a mount namespace
each, their own host_uuid), moved with 'virsh migrate --live --p2p' over
unix sockets, QEMU's stream on TCP 127.0.0.1, the storage shared (the same
loop device): a -> b with the disk healthy (the retry settings in b's
live XML, -device and query-block); b -> a while the storage fails, which
QEMU refuses at completion (the source's flush fails; the domain keeps
running, and hanging, on b); b -> a after the storage came back while the
requests are still parked (next attempt 600 s away), which succeeds, and
a completes them.

Prints TAP: a fixed plan, one line per check, never a skip;
whatever cannot be checked because an earlier step broke is "not ok".

Needs root (loop device, FUSE), build/libvirt/build (make build-libvirt),
build/qemu/build and build/qemu-upstream/build (make build build-upstream).
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the harness package (tests/harness): its parent, tests/, on sys.path
sys.path.insert(1, os.path.dirname(HERE))

# the harness's building blocks: failing storage, the guest image and its
# workload, the serial console reader, the work directory
import harness                                          # noqa: E402
from harness import paths, storage, workload           # noqa: E402
from harness.checks import Fail                         # noqa: E402
from harness.console import Console                     # noqa: E402
from harness.process import Workdir                     # noqa: E402
from harness.workload import kv                         # noqa: E402

NAME = 'retry-e2e'

# per bus: guest disk name, libvirt's alias, QEMU's device
BUSES = {
    'virtio': dict(dst='vda', alias='virtio-disk0',
                   device='virtio-blk-pci', controller=''),
    'scsi': dict(dst='sda', alias='scsi0-0-0-0', device='scsi-hd',
                 controller="    <controller type='scsi' index='0' model='virtio-scsi'/>\n"),
}

# the seed's <driver> line
DRIVER = ("<driver name='qemu' type='raw' cache='none' io='native' "
          "error_policy='retry' rerror_policy='retry' "
          "retry_interval='2000' retry_timeout='10000'/>")

# checks made once, in the first bus's run (with upstream QEMU too)
ONCE = [
    'qemu-without-policy',   # a QEMU without the policy: start refused, clear error
    'domcapabilities',       # errorPolicy/retryTiming of the patched QEMU, and of upstream's
]

# checks of each bus's run
CHECKS = [
    'command-line',          # the -device line QEMU got
    'migratable-xml',        # migration XML carries the retry configuration
    'event-retry',           # the hang starts: io-error event, action retry
    'hanging-state',         # domblkerror, domstats, domstate during the hang
    'restart-while-hanging',  # the driver restarts mid-hang: the domain and the hang survive
    'domblkretry',           # virsh domblkretry --timeout/--resubmit/--fail, domstats, live XML
    'event-retry-end',       # the hang ends: io-error event, retry-end: recovered
    'recovered-state',       # domblkerror, domstats after the hang
    'guest-data',            # every acknowledged byte verified, no guest error
]


# checks of the migration run (one bus): two virtqemud daemons from the
# build tree on this machine, the domain moved between them with
# virsh migrate --live --p2p (shared storage: the same loop device)
MIGRATION = [
    'migrate',               # A -> B: running on B, the retry settings in B's live XML and QEMU
    'migrate-while-failing',  # B -> A while the storage fails: refused, B still runs (hangs)
    'migrate-parked',        # storage back, requests still parked: B -> A, completed on A
    'migrated-guest-data',   # every acknowledged byte verified, no guest error
]


def domain_xml(args, bus, kernel, initrd, loop, console_sock, emulator):
    b = BUSES[bus]
    return '''<domain type='qemu'>
  <name>%(name)s</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>%(kernel)s</kernel>
    <initrd>%(initrd)s</initrd>
    <cmdline>quiet console=ttyS0 panic=-1 e2e.max=%(max)d e2e.pace=%(pace)d</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>%(emulator)s</emulator>
    <disk type='block' device='disk'>
      %(driver)s
      <source dev='%(loop)s'/>
      <target dev='%(dst)s' bus='%(bus)s'/>
    </disk>
%(controller)s    <serial type='unix'>
      <source mode='bind' path='%(sock)s'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
''' % dict(name=NAME, kernel=kernel, initrd=initrd, max=args.guest_max,
           pace=args.pace, emulator=emulator, driver=DRIVER, loop=loop,
           sock=console_sock, dst=b['dst'], bus=bus, controller=b['controller'])


class Virsh:
    """One virsh process holding the embedded QEMU driver (the domain lives
    as long as it does), fed one command at a time; each command is followed
    by 'echo' of a marker, so its output is what comes before the marker."""

    PROMPT = 'virsh # '

    def __init__(self, libvirt_build, root, logpath, uri=None):
        self.log = open(logpath, 'a')
        self.p = subprocess.Popen(
            [os.path.join(libvirt_build, 'run'), os.path.join(libvirt_build, 'tools', 'virsh'),
             '-c', uri or 'qemu:///embed?root=' + root],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
            # the driver's own log (warnings: taint, ...) to a file, not
            # into the commands' output
            env=dict(os.environ, LIBVIRT_LOG_OUTPUTS='3:file:%s' % os.path.join(
                os.path.dirname(logpath), 'libvirt.log')))
        self.buf = ''
        self.cond = threading.Condition()
        self.n = 0
        self.reader = threading.Thread(target=self._reader, daemon=True)
        self.reader.start()

    def _reader(self):
        while True:
            d = os.read(self.p.stdout.fileno(), 65536)
            if not d:
                break
            text = d.decode('utf-8', 'replace')
            with self.cond:
                self.buf += text
                if not self.log.closed:
                    self.log.write(text)
                    self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def start(self, line):
        """send a command; returns a handle for wait()"""
        self.n += 1
        mark = '@@done-%d@@' % self.n
        with self.cond:
            start = len(self.buf)
        self.log.write('\n>>> %s\n' % line)
        self.p.stdin.write(('%s\necho %s\n' % (line, mark)).encode())
        self.p.stdin.flush()
        return (line, mark, start)

    def wait(self, handle, timeout=60):
        line, mark, start = handle
        dl = time.monotonic() + timeout
        with self.cond:
            while mark not in self.buf[start:]:
                left = dl - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    raise Fail('virsh: no answer to %r within %d s (virsh %s)' % (
                        line, timeout, 'exited' if self.p.poll() is not None else 'running'))
                self.cond.wait(min(left, 0.5))
            out = self.buf[start:self.buf.index(mark, start)]
        return out.replace(self.PROMPT, '').strip()

    def cmd(self, line, timeout=60):
        return self.wait(self.start(line), timeout)

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write(b'quit\n')
                self.p.stdin.flush()
                self.p.wait(20)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
                self.p.wait(5)
        self.reader.join(5)     # virsh's last words, into the log
        with self.cond:
            self.log.close()


def setup_root(root):
    os.makedirs(os.path.join(root, 'etc'), exist_ok=True)
    with open(os.path.join(root, 'etc', 'qemu.conf'), 'w') as f:
        # no namespaces, cgroups, virtlogd or unprivileged QEMU user: this
        # is a test machine, not a host
        f.write('namespaces = []\ncgroup_controllers = []\n'
                'user = "root"\ngroup = "root"\nstdio_handler = "file"\n')


class Results:
    def __init__(self, names):
        self.names = names
        self.res = {}

    def ok(self, name, cond, detail):
        # the first verdict of a check stands
        assert name in self.names, name
        self.res.setdefault(name, (bool(cond), detail))
        return cond

    def report(self):
        print('1..%d' % len(self.names))
        failed = 0
        for i, name in enumerate(self.names, 1):
            good, detail = self.res.get(name, (False, 'not reached'))
            failed += not good
            print('%s %d - %s: %s' % ('ok' if good else 'not ok', i, name, detail))
        return failed


def domstats_block(out):
    return {m.group(1): m.group(2) for m in re.finditer(r'block\.0\.([\w.]+)=(\S+)', out)}


def check_names(buses, migration_buses=()):
    return (ONCE + ['%s/%s' % (bus, c) for bus in buses for c in CHECKS] +
            ['migration-%s/%s' % (bus, c) for bus in migration_buses for c in MIGRATION])


def domcaps_enum(xml, name):
    """the values of <enum name=NAME> in <disk> of domcapabilities, or None"""
    disk = re.search(r"<disk supported='yes'>(.*?)</disk>", xml, re.S)
    if not disk:
        return None
    m = re.search(r"<enum name='%s'(/>|>(.*?)</enum>)" % name, disk.group(1), re.S)
    if not m:
        return None
    return re.findall(r'<value>([^<]*)</value>', m.group(2) or '')


def run(args, R):
    qemu = args.qemu
    upstream = args.qemu_upstream
    for b in (qemu, upstream):
        if not os.access(b, os.X_OK):
            raise Fail('QEMU binary %s not found (make build build-upstream)' % b)
    if not os.access(os.path.join(args.libvirt_build, 'tools', 'virsh'), os.X_OK):
        raise Fail('no virsh in %s (make build-libvirt)' % args.libvirt_build)
    if os.geteuid() != 0:
        raise Fail('needs root (loop device, FUSE mount)')

    kernel, initrd = workload.build_guest()
    for i, bus in enumerate(args.buses):
        try:
            run_bus(args, R, bus, kernel, initrd, first=(i == 0))
        except Fail as e:
            print('# %s: error: %s' % (bus, e))
    for bus in args.migration_buses:
        try:
            run_migration(args, R, bus, kernel, initrd)
        except Fail as e:
            print('# migration-%s: error: %s' % (bus, e))


def guest_data(res, gerr, min_written, min_stall_ms=0):
    """the guest's verdict on its files (E2E-RESULT) and the console's
    error lines: (passed, detail)"""
    passed = (res.get('written', 0) > min_written and
              res.get('verified') == res.get('written') and
              res.get('bad') == 0 and res.get('write_errors') == 0 and
              res.get('read_errors', 0) == 0 and res.get('kernel_io_errors') == 0 and
              res.get('fs_rw') == 1 and not gerr and
              res.get('max_stall_ms', 0) >= min_stall_ms)
    detail = ('written=%s verified=%s bad=%s write_errors=%s read_errors=%s '
              'kernel_io_errors=%s fs_rw=%s max_stall_ms=%s guest_error_lines=%d' % (
                  res.get('written'), res.get('verified'), res.get('bad'),
                  res.get('write_errors'), res.get('read_errors'),
                  res.get('kernel_io_errors'), res.get('fs_rw'), res.get('max_stall_ms'),
                  len(gerr)))
    return passed, detail


def clean_up(virshes, console, ctx, work, finished, keep):
    """destroy the domain on every daemon, close what is open, and remove
    the work directory of a run that finished (kept otherwise, or with
    --keep)"""
    for v in virshes:
        with contextlib.suppress(Fail):
            v.cmd('destroy %s' % NAME, timeout=20)
        v.close()
    if console:
        console.close()
    ctx.close()
    if finished and not keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        sys.stderr.write('libvirt-e2e: work directory kept: %s\n' % work)


def run_bus(args, R, bus, kernel, initrd, first):
    """one domain on one bus, through one outage"""
    b = BUSES[bus]
    qemu = args.qemu
    upstream = args.qemu_upstream

    def ok(check, cond, detail):
        return R.ok(check if check in ONCE else '%s/%s' % (bus, check), cond, detail)

    ctx = Workdir('libvirt-e2e-%s-' % bus, '/tmp')
    work = ctx.workdir
    virsh = console = None
    finished = False
    try:
        root = os.path.join(work, 'root')
        setup_root(root)
        image = os.path.join(work, 'disk.img')
        storage.make_image(image, args.disk_mb)
        st = storage.FuseStorage(ctx, image, 'native')
        st.start()
        sock = os.path.join(work, 'console.sock')
        virsh = Virsh(args.libvirt_build, root, os.path.join(work, 'virsh.log'))

        # 1. a QEMU without the policy refuses to start the domain, saying why
        if first:
            xml_up = os.path.join(work, 'dom-upstream.xml')
            with open(xml_up, 'w') as f:
                f.write(domain_xml(args, bus, kernel, initrd, st.loop, sock, upstream))
            out = virsh.cmd('create %s' % xml_up)
            left = virsh.cmd('list --all --name')
            ok('qemu-without-policy',
               "the 'retry' error policy is not supported by this QEMU binary" in out and
               "disk '%s'" % b['dst'] in out and NAME not in left,
               out.splitlines()[-1] if out else '(no output)')

            # what a management application reads before it writes the XML
            caps = {}
            for name, binary in (('patched', qemu), ('upstream', upstream)):
                x = virsh.cmd('domcapabilities --emulatorbin %s --arch x86_64 --virttype qemu '
                              '--machine pc' % binary, timeout=120)
                caps[name] = (domcaps_enum(x, 'errorPolicy'), domcaps_enum(x, 'retryTiming'))
            base_pol = ['stop', 'report', 'ignore', 'enospace']
            ok('domcapabilities',
               caps['patched'] == (base_pol + ['retry'], ['retry_interval', 'retry_timeout']) and
               caps['upstream'] == (base_pol, []),
               'patched QEMU: errorPolicy %s retryTiming %s; upstream QEMU: errorPolicy %s '
               'retryTiming %s' % (caps['patched'] + caps['upstream']))

        # the domain, on the patched QEMU
        xml = os.path.join(work, 'dom.xml')
        with open(xml, 'w') as f:
            f.write(domain_xml(args, bus, kernel, initrd, st.loop, sock, qemu))
        out = virsh.cmd('create %s' % xml, timeout=120)
        if "Domain '%s' created" % NAME not in out:
            raise Fail('virsh create failed: %s' % out)
        # QEMU listens on it before virsh create returns (libvirt starts
        # QEMU paused, connects its monitor, then lets it run)
        console = Console(os.path.join(work, 'console.log'))
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        console.attach(s, 'guest')

        # 2. the command line libvirt gave QEMU
        qlog = os.path.join(root, 'log', 'qemu', NAME + '.log')
        with open(qlog) as f:
            cmdline = f.read()
        dev = re.search(r"-device '(\{\"driver\":\"%s\"[^']*)'" % b['device'], cmdline)
        props = json.loads(dev.group(1)) if dev else {}
        ok('command-line',
           props.get('werror') == 'retry' and props.get('rerror') == 'retry' and
           props.get('retry-interval') == 2000 and props.get('retry-timeout') == 10000,
           '-device %s' % (dev.group(1) if dev else '(no %s -device in %s)' % (b['device'], qlog)))

        # 3. the migration XML carries the configuration
        mx = virsh.cmd('dumpxml %s --migratable' % NAME)
        drv = re.search(r'<driver [^>]*error_policy[^>]*/>', mx)
        ok('migratable-xml',
           drv and all(a in drv.group(0) for a in (
                 "error_policy='retry'", "rerror_policy='retry'",
                 "retry_interval='2000'", "retry_timeout='10000'")),
           drv.group(0) if drv else '(no <driver> with error_policy)')

        # the guest writes
        dl = time.monotonic() + args.boot_timeout
        console.wait(r'E2E-START', dl, what='workload start')
        workload.wait_progress(console, lambda t, p: p.get('written', 0) >= 20,
                               time.monotonic() + 60, 'warm-up writes')
        before = virsh.cmd('domblkerror %s' % NAME)

        # 4. the outage; the start of the hang arrives as an I/O error event
        h = virsh.start('event --domain %s --event io-error-reason --timeout %d' % (
            NAME, args.outage + 30))
        time.sleep(1.0)         # let virsh register the callback (ordering, not an assertion)
        t_fail = time.monotonic()
        st.fail()
        out = virsh.wait(h, args.outage + 40)
        t_event = time.monotonic()
        want = "event 'io-error' for domain '%s': %s (%s) retry due to message" % (
            NAME, st.loop, b['alias'])
        ok('event-retry', want in out, '%s (%.1f s after the outage started)' % (
            out.splitlines()[0] if out else '(no event)', t_event - t_fail))

        # 5. while it hangs
        berr = virsh.cmd('domblkerror %s' % NAME)
        stats = domstats_block(virsh.cmd('domstats %s --block' % NAME))
        state = virsh.cmd('domstate %s --reason' % NAME)
        ok('hanging-state',
           before == 'No errors found' and
           berr == '%s: I/O error being retried (disk hangs)' % b['dst'] and
           stats.get('retry.active') == 'yes' and int(stats.get('retry.pending', 0)) >= 1 and
           int(stats.get('retry.episode_ms', -1)) >= 0 and state.startswith('running'),
           'domblkerror "%s"; domstats retry.active=%s pending=%s episode_ms=%s; domstate %s' % (
                 berr, stats.get('retry.active'), stats.get('retry.pending'),
                 stats.get('retry.episode_ms'), state))

        # 5b. the driver restarts while the disk hangs: the embedded driver
        # lives in the virsh process, so a new virsh on the same root is a
        # new driver, which reconnects to the running QEMU (query-block with
        # the 'retry' members included); the hang is seen by reading the
        # state, as a client that missed the start event must
        virsh.close()
        t_restart = time.monotonic()
        virsh = Virsh(args.libvirt_build, root, os.path.join(work, 'virsh.log'))
        virsh.cmd('echo', timeout=120)      # the new driver is up (and its banner read)
        t_restart = time.monotonic() - t_restart
        running = virsh.cmd('list --name')
        berr = virsh.cmd('domblkerror %s' % NAME)
        stats = domstats_block(virsh.cmd('domstats %s --block' % NAME))
        state = virsh.cmd('domstate %s --reason' % NAME)
        ok('restart-while-hanging',
           NAME in running.split() and
           berr == '%s: I/O error being retried (disk hangs)' % b['dst'] and
           stats.get('retry.active') == 'yes' and int(stats.get('retry.pending', 0)) >= 1 and
           stats.get('retry.episodes') == '1' and state.startswith('running'),
           'new driver up in %.1f s; list "%s"; domblkerror "%s"; domstats retry.active=%s '
           'pending=%s episodes=%s; domstate %s' % (
                 t_restart, running, berr, stats.get('retry.active'),
                 stats.get('retry.pending'), stats.get('retry.episodes'), state))

        # 6. steering the hang with virsh domblkretry (virDomainBlockRetry)
        dst = b['dst']
        r_set = virsh.cmd('domblkretry %s %s --timeout 600000' % (NAME, dst))
        st_set = domstats_block(virsh.cmd('domstats %s --block' % NAME))
        # the live definition follows (the domain is transient: it has no
        # persistent one to leave alone)
        live = re.search(r'<driver [^>]*error_policy[^>]*/>', virsh.cmd('dumpxml %s' % NAME))
        r_res = virsh.cmd('domblkretry %s %s --resubmit' % (NAME, dst))
        m = re.match(r'Resubmitted (\d+) pending requests of disk %s$' % dst, r_res)
        steer_ok = (r_set == 'Retry settings of disk %s changed' % dst and
                    st_set.get('retry.timeout') == '600000' and
                    st_set.get('retry.interval') == '2000' and
                    st_set.get('retry.active') == 'yes' and
                    live and "retry_timeout='600000'" in live.group(0) and
                    m and int(m.group(1)) >= 1)
        steer_detail = ('--timeout: "%s", domstats retry.timeout=%s retry.interval=%s, '
                        'live <driver> %s; --resubmit (storage still down): "%s"' % (
                            r_set, st_set.get('retry.timeout'), st_set.get('retry.interval'),
                            live.group(0) if live else None, r_res))

        # 7. storage back: the end of the hang
        h = virsh.start('event --domain %s --event io-error-reason --timeout 60' % NAME)
        time.sleep(1.0)
        base_wait = t_fail + args.outage - time.monotonic()
        if base_wait > 0:
            time.sleep(base_wait)   # the outage's length: the one sleep that makes it
        t_rest = time.monotonic()
        st.restore()
        out = virsh.wait(h, 70)
        t_end = time.monotonic()
        want = "event 'io-error' for domain '%s': %s (%s) retry-end: recovered" % (
            NAME, st.loop, b['alias'])
        ok('event-retry-end', want in out, '%s (%.1f s after the storage came back; '
           'outage %.1f s)' % (out.splitlines()[0] if out else '(no event)',
                               t_end - t_rest, t_rest - t_fail))

        # 8. after it
        berr = virsh.cmd('domblkerror %s' % NAME)
        stats = domstats_block(virsh.cmd('domstats %s --block' % NAME))
        r_fail = virsh.cmd('domblkretry %s %s --fail' % (NAME, dst))
        r_none = virsh.cmd('domblkretry %s %s' % (NAME, dst))
        ok('recovered-state',
           berr == 'No errors found' and stats.get('retry.active') == 'no' and
           stats.get('retry.pending') == '0' and 'retry.episode_ms' not in stats and
           stats.get('retry.episodes') == '1' and int(stats.get('retry.recovered', 0)) >= 1 and
           stats.get('retry.failed') == '0' and stats.get('retry.dropped') == '0',
           'domblkerror "%s"; domstats %s' % (berr, ' '.join(
                 '%s=%s' % (k, v) for k, v in sorted(stats.items()) if k.startswith('retry.'))))
        steer_ok = (steer_ok and r_fail == 'Gave up on 0 pending requests of disk %s' % dst and
                    'Nothing to do' in r_none)
        ok('domblkretry', steer_ok, steer_detail + '; --fail (after): "%s"; no option: "%s"' % (
            r_fail, r_none))

        # 9. the guest: resumes, then stops and verifies every file it wrote
        workload.wait_progress(console, lambda t, p: p.get('busy_ms', 0) < 1000 and
                               p.get('written', 0) > 0, time.monotonic() + 30,
                               'writes to resume', since=t_rest)
        time.sleep(2.0)         # a little more load after the outage
        # the guest's power-off arrives as a lifecycle event (Shutdown, then
        # Stopped; virsh registers its callback long before: the guest first
        # verifies its files and checks its filesystem)
        h = virsh.start('event --domain %s --event lifecycle --timeout 90' % NAME)
        console.send('\nE2E-STOP\n')
        _, _, m = console.wait(r'E2E-RESULT (.*)', time.monotonic() + 90, what='E2E-RESULT')
        res = kv(m.group(1))
        out = virsh.wait(h, 100)
        if 'Shutdown' not in out and 'Stopped' not in out:
            raise Fail('no lifecycle event after the guest powered off: %s' % out)
        gerr = console.find(r'E2E-WERR |E2E-RERR |I/O error|EXT4-fs error|Remounting', t_fail)
        ok('guest-data', *guest_data(res, gerr, 20, 500 * args.outage))
        finished = True
    finally:
        clean_up([virsh] if virsh else [], console, ctx, work, finished, args.keep)


class Daemon:
    """virtqemud from the build tree, as root, with directories of its own.

    A privileged QEMU driver keeps its state in fixed places (/run/libvirt,
    LOCALSTATEDIR=/var/local/lib/libvirt, SYSCONFDIR=/usr/local/etc/libvirt
    for this build; the pid file, given here, in /run); two of them on one
    machine would share them.  Each
    daemon runs in a mount namespace of its own in which its directories
    under `dir` are bound over those places; its client socket, in
    unix_sock_dir, is outside them, so virsh and the other daemon reach it.
    libvirt refuses a migration between daemons with the same host UUID
    ("Attempt to migrate guest to the same host"), so each has its own
    host_uuid.  QEMU's migration stream goes over TCP on 127.0.0.1."""

    def __init__(self, ctx, libvirt_build, name, host_uuid):
        self.ctx = ctx
        self.name = name
        self.dir = os.path.join(ctx.workdir, name)
        var, etc, run_, sock = (os.path.join(self.dir, d) for d in ('var', 'etc', 'run', 'sock'))
        for d in (var, os.path.join(etc, 'libvirt'), run_, sock):
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(etc, 'libvirt', 'qemu.conf'), 'w') as f:
            f.write('namespaces = []\ncgroup_controllers = []\n'
                    'user = "root"\ngroup = "root"\nstdio_handler = "file"\n')
        conf = os.path.join(etc, 'libvirt', 'virtqemud.conf')
        with open(conf, 'w') as f:
            f.write('unix_sock_dir = "%s"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
                    'host_uuid = "%s"\nlog_outputs = "3:file:%s"\n' % (
                        sock, host_uuid, os.path.join(self.dir, 'virtqemud.log')))
        self.log = os.path.join(var, 'log', 'libvirt', 'qemu')     # QEMU's logs
        self.sock = os.path.join(sock, 'virtqemud-sock')
        self.uri = 'qemu+unix:///system?socket=' + self.sock
        for d in ('/var/local', '/usr/local/etc', '/run/libvirt'):
            os.makedirs(d, exist_ok=True)       # mount points (Debian has the first two)
        script = ('mount --bind %s /var/local && mount --bind %s /usr/local/etc && '
                  'mount --bind %s /run/libvirt && exec %s %s -f %s -p %s' % (
                      var, etc, run_, os.path.join(libvirt_build, 'run'),
                      os.path.join(libvirt_build, 'src', 'virtqemud'), conf,
                      os.path.join(run_, 'virtqemud.pid')))
        self.proc = ctx.procs.start('virtqemud-' + name, [
            'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script])
        dl = time.monotonic() + 60
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > dl:
                raise Fail('virtqemud %s: no socket %s (%s)' % (
                    name, self.sock, ctx.tail('virtqemud-' + name)))
            time.sleep(0.1)

    def virsh(self, libvirt_build):
        return Virsh(libvirt_build, None,
                     os.path.join(self.ctx.workdir, 'virsh-%s.log' % self.name), uri=self.uri)


def qemu_retry(virsh, qdev):
    """the 'retry' member of query-block for the device `qdev`, asked of
    QEMU through libvirt (qemu-monitor-command), or None"""
    out = virsh.cmd("qemu-monitor-command %s '{\"execute\":\"query-block\"}'" % NAME)
    try:
        blocks = json.loads(out)['return']
    except (ValueError, KeyError):
        return None
    for b in blocks:
        if b.get('qdev') == qdev:
            return b.get('retry')
    return None


def driver_line(virsh):
    m = re.search(r'<driver [^>]*error_policy[^>]*/>', virsh.cmd('dumpxml %s' % NAME))
    return m.group(0) if m else None


def run_migration(args, R, bus, kernel, initrd):
    """one domain migrated between two virtqemud daemons, through an outage"""
    b = BUSES[bus]
    qdev = ('/machine/peripheral/%s/virtio-backend' % b['alias'] if bus == 'virtio'
            else b['alias'])

    def ok(check, cond, detail):
        return R.ok('migration-%s/%s' % (bus, check), cond, detail)

    ctx = Workdir('libvirt-e2e-migration-%s-' % bus, '/tmp')
    work = ctx.workdir
    vs = {}
    console = None
    finished = False
    try:
        image = os.path.join(work, 'disk.img')
        storage.make_image(image, args.disk_mb)
        st = storage.FuseStorage(ctx, image, 'native')
        st.start()
        d = {n: Daemon(ctx, args.libvirt_build, n, u) for n, u in (
            ('a', 'a1a1a1a1-0000-4000-8000-00000000000a'),
            ('b', 'b2b2b2b2-0000-4000-8000-00000000000b'))}
        vs = {n: d[n].virsh(args.libvirt_build) for n in d}
        for n in vs:
            vs[n].cmd('echo', timeout=60)

        socks = [os.path.join(work, 'console.sock')]

        def migrate(src, dst, timeout=120):
            # the destination's serial socket gets a path of its own (the
            # source's QEMU removes its path when it quits, which is the
            # destination's too if they share it): the migration XML with
            # that path, as a management application gives it (--xml)
            socks.append(os.path.join(work, 'console%d.sock' % len(socks)))
            mx = vs[src].cmd('dumpxml --migratable %s' % NAME)
            dxml = os.path.join(work, 'dom-%d.xml' % len(socks))
            with open(dxml, 'w') as f:
                f.write(mx.replace(socks[-2], socks[-1]))
            t = time.monotonic()
            # QEMU's stream on the loopback: libvirt refuses a local
            # address in qemu.conf's migration_address and migration_host,
            # so it goes on the command
            out = vs[src].cmd('migrate --live --p2p --verbose %s %s --xml %s '
                              '--migrateuri tcp://127.0.0.1 --listen-address 127.0.0.1' % (
                                  NAME, d[dst].uri, dxml), timeout=timeout)
            if 'Migration: [100' not in out:
                socks.pop()         # the domain stays where it was
            return out, time.monotonic() - t

        console = Console(os.path.join(work, 'console.log'))
        n_attach = [0]

        def attach_console():
            # the serial socket of the QEMU that runs the guest now: the
            # destination's binds the same path anew
            n_attach[0] += 1
            s = socket.socket(socket.AF_UNIX)
            s.connect(socks[-1])
            console.attach(s, 'guest%d' % n_attach[0])

        def migrate_and_look(src, dst):
            # a migration that must succeed, and what the daemons then show:
            # (virsh output, seconds, src's domains, dst's state, its
            # <driver>, QEMU's retry settings on dst)
            out, took = migrate(src, dst)
            attach_console()
            return (out, took, vs[src].cmd('list --all --name'),
                    vs[dst].cmd('domstate %s' % NAME), driver_line(vs[dst]),
                    qemu_retry(vs[dst], qdev) or {})

        xml = os.path.join(work, 'dom.xml')
        with open(xml, 'w') as f:
            f.write(domain_xml(args, bus, kernel, initrd, st.loop, socks[0], args.qemu))
        out = vs['a'].cmd('create %s' % xml, timeout=120)
        if "Domain '%s' created" % NAME not in out:
            raise Fail('virsh create on daemon a failed: %s' % out)
        attach_console()
        console.wait(r'E2E-START', time.monotonic() + args.boot_timeout, what='workload start')
        workload.wait_progress(console, lambda t, p: p.get('written', 0) >= 10,
                               time.monotonic() + 60, 'warm-up writes')

        # 1. a migration of the running domain: the settings go with it
        out, took, on_a, state, drv, qr = migrate_and_look('a', 'b')
        try:
            with open(os.path.join(d['b'].log, NAME + '.log')) as f:
                dev = re.findall(r"-device '(\{\"driver\":\"%s\"[^']*)'" % b['device'], f.read())
            props = json.loads(dev[-1]) if dev else {}
        except OSError:
            props = {}
        workload.wait_progress(console, lambda t, p: p.get('written', 0) > 0,
                               time.monotonic() + 30, 'writes on b', since=time.monotonic())
        ok('migrate',
           'Migration: [100' in out and NAME not in on_a.split() and state == 'running' and
           drv and all(a in drv for a in (
               "error_policy='retry'", "rerror_policy='retry'",
               "retry_interval='2000'", "retry_timeout='10000'")) and
           qr.get('read-policy') == 'retry' and qr.get('write-policy') == 'retry' and
           qr.get('interval') == 2000 and qr.get('timeout') == 10000 and
           props.get('werror') == 'retry' and props.get('retry-interval') == 2000 and
           props.get('retry-timeout') == 10000,
           'a -> b in %.1f s; a lists "%s"; b: %s, live %s; QEMU on b: query-block retry '
           'read-policy=%s write-policy=%s interval=%s timeout=%s, -device werror=%s '
           'retry-interval=%s retry-timeout=%s' % (
               took, on_a, state, drv, qr.get('read-policy'), qr.get('write-policy'),
               qr.get('interval'), qr.get('timeout'), props.get('werror'),
               props.get('retry-interval'), props.get('retry-timeout')))

        # 2. the storage fails on b's disk: a hang; a longer timing (so that
        # nothing fails for the guest while the test migrates), then a
        # migration back to a, which QEMU must refuse: it completes only
        # after the source flushed its disks, and the flush fails
        h = vs['b'].start('event --domain %s --event io-error-reason --timeout %d' % (
            NAME, args.outage + 30))
        time.sleep(1.0)
        t_fail = time.monotonic()
        st.fail()
        ev = vs['b'].wait(h, args.outage + 40)
        steer = vs['b'].cmd('domblkretry %s %s --interval 600000 --timeout 600000' % (
            NAME, b['dst']))
        out, took = migrate('b', 'a')
        state = vs['b'].cmd('domstate %s --reason' % NAME)
        on_a = vs['a'].cmd('list --all --name')
        berr = vs['b'].cmd('domblkerror %s' % NAME)
        # (virsh's progress line has no newline before the error)
        err = re.search(r'error: (.*)', out)
        ok('migrate-while-failing',
           'retry due to message' in ev and
           steer == 'Retry settings of disk %s changed' % b['dst'] and
           err and 'Input/output error' in err.group(1) and 'Migration: [100' not in out and
           state.startswith('running') and NAME not in on_a.split() and
           berr == '%s: I/O error being retried (disk hangs)' % b['dst'],
           'refused after %.1f s: "%s"; b: %s, domblkerror "%s"; a lists "%s"' % (
               took, err.group(0) if err else out, state, berr, on_a))

        # 3. the storage is back, the requests still parked on b (the next
        # attempt 600 s away): the migration carries them, a resubmits them
        base_wait = t_fail + args.outage - time.monotonic()
        if base_wait > 0:
            time.sleep(base_wait)
        st.restore()
        t_rest = time.monotonic()
        before = domstats_block(vs['b'].cmd('domstats %s --block' % NAME))
        out, took, on_b, state, drv, qr = migrate_and_look('b', 'a')
        dl = time.monotonic() + 10
        while True:
            after = domstats_block(vs['a'].cmd('domstats %s --block' % NAME))
            if after.get('retry.pending') == '0' or time.monotonic() > dl:
                break
            time.sleep(0.5)
        berr = vs['a'].cmd('domblkerror %s' % NAME)
        workload.wait_progress(console, lambda t, p: p.get('busy_ms', 0) < 1000 and
                               p.get('written', 0) > 0, time.monotonic() + 30,
                               'writes to resume on a', since=time.monotonic())
        ok('migrate-parked',
           int(before.get('retry.pending', 0)) >= 1 and 'Migration: [100' in out and
           NAME not in on_b.split() and state == 'running' and
           drv and "retry_interval='600000'" in drv and "retry_timeout='600000'" in drv and
           qr.get('interval') == 600000 and qr.get('timeout') == 600000 and
           after.get('retry.active') == 'no' and after.get('retry.pending') == '0' and
           berr == 'No errors found',
           'b before: retry.active=%s pending=%s; b -> a in %.1f s (%.1f s after the storage '
           'came back); b lists "%s"; a: %s, live %s; QEMU on a: interval=%s timeout=%s; '
           'a after: retry.active=%s pending=%s requests=%s recovered=%s, domblkerror "%s"' % (
               before.get('retry.active'), before.get('retry.pending'), took,
               time.monotonic() - t_rest, on_b, state, drv, qr.get('interval'),
               qr.get('timeout'), after.get('retry.active'), after.get('retry.pending'),
               after.get('retry.requests'), after.get('retry.recovered'), berr))

        # 4. the guest, on a: writes again, then stops and verifies every
        # file it wrote
        workload.wait_progress(console, lambda t, p: p.get('busy_ms', 0) < 1000 and
                               p.get('written', 0) > 0, time.monotonic() + 30,
                               'writes to resume on a', since=t_rest)
        console.send('\nE2E-STOP\n')
        _, _, m = console.wait(r'E2E-RESULT (.*)', time.monotonic() + 90, what='E2E-RESULT')
        res = kv(m.group(1))
        gerr = console.find(r'E2E-WERR |E2E-RERR |I/O error|EXT4-fs error|Remounting', t_fail)
        ok('migrated-guest-data', *guest_data(res, gerr, 10))
        finished = True
    finally:
        clean_up(list(vs.values()), console, ctx, work, finished, args.keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--outage', type=float, default=5.0, help='seconds of failing storage')
    ap.add_argument('--disk-mb', type=int, default=128)
    ap.add_argument('--guest-max', type=int, default=180)
    ap.add_argument('--pace', type=int, default=20)
    ap.add_argument('--boot-timeout', type=float, default=120)
    ap.add_argument('--bus', default='virtio,scsi',
                    help='disk buses to run, comma separated (default: virtio,scsi)')
    ap.add_argument('--migration', default='virtio,scsi', metavar='BUSES',
                    help='disk buses of the migration runs between two virtqemud daemons, '
                    'comma separated (default: virtio,scsi; "" for none)')
    ap.add_argument('--keep', action='store_true', help='keep the work directory')
    ap.add_argument('-v', '--verbose', action='store_true')
    ap.add_argument('--qemu', default=paths.QEMU)
    ap.add_argument('--qemu-upstream', default=paths.QEMU_UPSTREAM)
    ap.add_argument('--libvirt-build', default=os.environ.get('LIBVIRT_BUILD') or
                    paths.build('libvirt/build'))
    ap.add_argument('--list', action='store_true',
                    help='print the names of the checks, one a line, and exit')
    args = ap.parse_args()
    harness.setup_logging(args.verbose)
    args.buses = [x for x in args.bus.split(',') if x]
    args.migration_buses = [x for x in args.migration.split(',') if x]
    for x in args.buses + args.migration_buses:
        if x not in BUSES:
            ap.error('unknown bus %s (%s)' % (x, ', '.join(BUSES)))
    if args.list:
        print('\n'.join(check_names(args.buses, args.migration_buses)))
        return 0
    R = Results(check_names(args.buses, args.migration_buses))
    try:
        run(args, R)
    except Fail as e:
        print('# error: %s' % e)
    return 1 if R.report() else 0


if __name__ == '__main__':
    sys.exit(main())
