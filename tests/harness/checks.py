"""Failures, checks and deadlines."""

import time


class Fail(Exception):
    """the run failed (a broken assertion, a deadline, a setup error)"""


def check(cond, failures, msg):
    """record msg in the list `failures` unless cond holds"""
    if not cond:
        failures.append(msg)


def wait_until(pred, deadline, what, step=0.05):
    """poll pred() until it is true: only for what no event announces (the
    guest's console and QEMU's events have their own waits)"""
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Fail('timeout waiting for %s' % what)
        time.sleep(step)
