"""The processes the harness starts and where they keep their logs: a work
directory with its clean-ups (Workdir), helper processes in their own
process groups (Procs), daemons that say when they are ready by exiting
their parent and leave a pidfile (Daemon), and one-shot commands
(run_cmd).  QEMU itself is started by QEMUMachine (vm.py)."""

import contextlib
import logging
import os
import select
import signal
import subprocess
import tempfile

from .checks import Fail

LOG = logging.getLogger('harness')


def run_cmd(argv, timeout=30, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, universal_newlines=True)
    if check and r.returncode != 0:
        raise Fail('%s failed (%d): %s' % (' '.join(argv), r.returncode,
                                           r.stdout.strip()[-300:]))
    return r.stdout


class Daemon:
    """A process that daemonized itself (qemu-storage-daemon --daemonize
    --pidfile): followed through a pidfd, so that signals never reach a
    recycled pid and its exit is an event (poll), not a probe."""

    def __init__(self, name, pid):
        self.name = name
        self.pid = pid
        self.fd = os.pidfd_open(pid)

    def signal(self, sig):
        if self.fd is not None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self.fd, sig)

    def wait(self, timeout):
        """True once the process has exited (within timeout s)"""
        if self.fd is None:
            return True
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        return bool(p.poll(max(0, timeout) * 1000))

    def stop(self, grace=3.0):
        if self.fd is None:
            return
        if not self.wait(0):
            self.signal(signal.SIGTERM)
            if not self.wait(grace):
                self.signal(signal.SIGKILL)
                self.wait(5)
        os.close(self.fd)
        self.fd = None


class Procs:
    """Every helper process the harness starts (FUSE server, storage
    daemon), each in its own process group, stopped at clean-up."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.items = []

    def logpath(self, name):
        return os.path.join(self.workdir, name + '.log')

    def start(self, name, argv, **kw):
        logf = open(self.logpath(name), 'ab')
        LOG.debug('start %s: %s', name, ' '.join(argv))
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, start_new_session=True,
                             **kw)
        logf.close()
        p.name = name
        self.items.append(p)
        return p

    def start_daemon(self, name, argv, pidfile, timeout=15):
        """argv daemonizes once it is ready (its parent exits then, 0 if
        it is); the pid from `pidfile`.  Returns the Daemon."""
        LOG.debug('start %s: %s', name, ' '.join(argv))
        with open(self.logpath(name), 'ab') as logf:
            try:
                r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                   stderr=subprocess.STDOUT, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise Fail('%s: not ready within %d s' % (name, timeout))
        if r.returncode != 0:
            raise Fail('%s exited (%d): %s' % (name, r.returncode, self.tail(name)))
        with open(pidfile) as f:
            d = Daemon(name, int(f.read().strip()))
        self.items.append(d)
        return d

    def tail(self, name, n=400):
        try:
            with open(self.logpath(name), 'rb') as f:
                data = f.read()[-n:]
            return data.decode('utf-8', 'replace').strip().replace('\n', ' | ')
        except OSError:
            return ''

    @staticmethod
    def signal(p, sig):
        if p.returncode is not None:
            return
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, p, grace=3.0):
        if isinstance(p, Daemon):
            p.stop(grace)
            return
        # once the leader has been reaped its pid (= group id) may be
        # reused: never signal a group whose leader is gone
        if p.poll() is not None:
            return
        self.signal(p, signal.SIGTERM)
        try:
            p.wait(grace)
            return
        except subprocess.TimeoutExpired:
            pass
        self.signal(p, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(5)

    def cleanup(self):
        for p in reversed(self.items):
            self.stop(p, grace=1.0)


class Workdir:
    """A work directory (made in `parent`, default the system's temporary
    directory), the helper processes started for it, and the clean-ups to
    run when it closes.  What storage.py needs of a run."""

    def __init__(self, prefix, parent=None):
        self.workdir = tempfile.mkdtemp(prefix=prefix, dir=parent)
        self.procs = Procs(self.workdir)
        self.cleanups = contextlib.ExitStack()

    def tail(self, logname, n=400):
        """the end of a helper's log, on one line"""
        return self.procs.tail(logname, n)

    def close(self):
        try:
            self.cleanups.close()
        finally:
            self.procs.cleanup()
