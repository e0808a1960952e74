#!/usr/bin/env python3
"""Does libvirt's capability fixture of the patched QEMU still describe it?

tests/qemucapabilitiesdata/caps_10.0.0_x86_64+retry.replies (added by the
libvirt series) is qemucapsprobe's dump of build/qemu/build's
qemu-system-x86_64.  The series' tests (qemucapabilitiestest,
domaincapstest) read the fixture, not the binary, so a change of the QEMU
series (a renamed command, property or enum value) would leave them green
while libvirt no longer matches the QEMU it is meant for.  This probes the
binary again, as the fixture was made, and compares the two.

Only the replies that depend on the host are left out: the CPU model
expansion and definitions (host CPU, KVM), query-kvm, SEV and SGX; the
fixture was probed on this project's machines, with KVM.  Everything else,
the QMP schema, the device and object properties, the machine types, the
command line options, must be identical, command by command.

usage: caps_drift.py QEMU_BINARY QEMUCAPSPROBE FIXTURE
Exit 0 if they match, 1 with the differences on stdout otherwise.
"""

import json
import subprocess
import sys

HOST_DEPENDENT = {
    'query-cpu-model-expansion', 'query-cpu-definitions', 'query-kvm',
    'query-sev-capabilities', 'query-sgx-capabilities',
}


def messages(text):
    """The JSON objects of a .replies dump, in order."""
    dec = json.JSONDecoder()
    pos, out = 0, []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = dec.raw_decode(text, pos)
        out.append(obj)


def exchanges(text):
    """(command, arguments) -> replies, the host-independent ones."""
    res = {}
    msgs = messages(text)
    for cmd, reply in zip(msgs[0::2], msgs[1::2]):
        if 'execute' not in cmd:
            raise ValueError('not a command: %r' % cmd)
        name = cmd['execute']
        if name in HOST_DEPENDENT:
            continue
        key = (name, json.dumps(cmd.get('arguments'), sort_keys=True))
        reply = dict(reply)
        reply.pop('id', None)
        res.setdefault(key, []).append(json.dumps(reply, sort_keys=True))
    return res


def main():
    qemu, probe, fixture = sys.argv[1:4]
    fresh = subprocess.run([probe, qemu], check=True, stdout=subprocess.PIPE,
                           universal_newlines=True, timeout=300).stdout
    with open(fixture) as f:
        old = exchanges(f.read())
    new = exchanges(fresh)
    bad = 0
    for key in sorted(set(old) | set(new)):
        if key not in new:
            print('only in the fixture: %s %s' % key)
        elif key not in old:
            print('only in the binary: %s %s' % key)
        elif old[key] != new[key]:
            print('reply differs: %s %s' % key)
        else:
            continue
        bad += 1
    print('%d host-independent exchanges compared, %d differ'
          % (len(set(old) | set(new)), bad))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
