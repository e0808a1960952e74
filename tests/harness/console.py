"""The guest's serial console(s): lines with their host arrival times
(time.monotonic()), and waits that end at a matching line, at a deadline,
or as soon as every QEMU feeding the console has exited (its socket
closed): a dead QEMU never costs a wait its whole deadline."""

import logging
import re
import threading
import time

from .checks import Fail

LOG = logging.getLogger('harness')


class Console:
    """The source and (after migration) destination QEMU both feed this
    object, so one list holds the whole guest run."""

    def __init__(self, logpath):
        self.lines = []            # (t, tag, text)
        self.cond = threading.Condition()
        self.sock_of = {}
        self.threads = {}
        self.ended = set()         # tags whose socket reached its end
        self.out = None
        self.logf = open(logpath, 'a')

    def attach(self, sock, tag, current=True):
        """read the connected socket sock; current: E2E-STOP goes there"""
        self.sock_of[tag] = sock
        if current:
            self.out = sock
        th = threading.Thread(target=self._reader, args=(sock, tag), daemon=True,
                              name='console-' + tag)
        self.threads[tag] = th
        th.start()

    def _reader(self, s, tag):
        buf = b''
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                d = b''
            if not d:
                break
            buf += d
            while b'\n' in buf:
                line, buf = buf.split(b'\n', 1)
                self._add(tag, line)
        if buf:
            self._add(tag, buf)
        with self.cond:
            self.ended.add(tag)
            self.cond.notify_all()

    def _add(self, tag, raw):
        text = raw.decode('utf-8', 'replace').replace('\r', '')
        t = time.monotonic()
        with self.cond:
            self.lines.append((t, tag, text))
            self.cond.notify_all()
            if not self.logf.closed:
                self.logf.write('%.3f %s %s\n' % (t, tag, text))
                self.logf.flush()
        if 'PROGRESS' not in text:
            LOG.debug('%s| %s', tag, text)

    def closed(self):
        """every console attached so far reached its end (QEMU exited)"""
        with self.cond:
            return bool(self.threads) and self.ended >= set(self.threads)

    def drained(self, tag, timeout):
        """wait until the console of `tag` reached its end (QEMU exited)"""
        th = self.threads.get(tag)
        if th:
            th.join(timeout)

    def use(self, tag):
        self.out = self.sock_of[tag]

    def send(self, text):
        if self.out is None:
            raise Fail('no console connected')
        self.out.sendall(text.encode())

    def wait_for(self, pred, deadline, what):
        """pred() (called under the lock, again at every new line) until it
        returns something true, which is returned"""
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                if self.closed():
                    raise Fail('guest %s: QEMU exited (its console closed)' % what)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail('timeout waiting for guest %s' % what)
                self.cond.wait(left)

    def wait(self, regex, deadline, start=0, what=None):
        """First line at index >= start matching regex: (index, t, match)."""
        rx = re.compile(regex)
        pos = [start]

        def match():
            while pos[0] < len(self.lines):
                i = pos[0]
                m = rx.search(self.lines[i][2])
                if m:
                    return i, self.lines[i][0], m
                pos[0] += 1
            return None
        return self.wait_for(match, deadline, what or regex)

    def find(self, regex, since=None, tag=None):
        rx = re.compile(regex)
        with self.cond:
            lines = list(self.lines)
        return [(t, tg, text, m) for t, tg, text in lines
                for m in [rx.search(text)]
                if m and (since is None or t >= since) and (tag is None or tg == tag)]

    def count(self):
        with self.cond:
            return len(self.lines)

    def close(self):
        with self.cond:
            self.logf.close()
