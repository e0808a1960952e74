#!/usr/bin/env python3
"""Print the Debian archive URIs this machine is configured with.

Reads /etc/apt/sources.list and /etc/apt/sources.list.d/*.list|*.sources
(one-line and deb822 formats) and prints, for the first enabled Debian
entry of each kind, a line "<kind> <uri> <signed-by or ->":

  main      the archive that carries the release suites (e.g. bookworm)
  security  the archive that carries <release>-security

Nothing here names a host: every URI comes from the machine's own
configuration, so the workspace follows whatever mirror or proxy it uses.
"""

import glob
import os
import sys

ROOT = os.environ.get("APT_ETC", "/etc/apt")


def one_line_entries(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            words = line.split()
            if words[0] not in ("deb", "deb-src"):
                continue
            opts = {}
            rest = words[1:]
            if rest and rest[0].startswith("["):
                optwords = []
                while rest:
                    w = rest.pop(0)
                    optwords.append(w.strip("[]"))
                    if w.endswith("]"):
                        break
                for o in optwords:
                    if "=" in o:
                        k, v = o.split("=", 1)
                        opts[k.lower()] = v
            if len(rest) < 2:
                continue
            yield {
                "types": [words[0]],
                "uris": [rest[0]],
                "suites": [rest[1]],
                "components": rest[2:],
                "signed-by": opts.get("signed-by"),
                "enabled": True,
            }


def deb822_entries(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    for para in text.split("\n\n"):
        fields = {}
        key = None
        for line in para.splitlines():
            if line.startswith("#"):
                continue
            if line[:1].isspace() and key:
                fields[key] += "\n" + line.strip()
                continue
            if ":" not in line:
                continue
            key, val = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = val.strip()
        if "uris" not in fields:
            continue
        yield {
            "types": fields.get("types", "").split(),
            "uris": fields["uris"].split(),
            "suites": fields.get("suites", "").split(),
            "components": fields.get("components", "").split(),
            "signed-by": fields.get("signed-by"),
            "enabled": fields.get("enabled", "yes").lower() != "no",
        }


def entries():
    main = os.path.join(ROOT, "sources.list")
    if os.path.exists(main):
        yield from one_line_entries(main)
    for path in sorted(glob.glob(os.path.join(ROOT, "sources.list.d", "*"))):
        if path.endswith(".list"):
            yield from one_line_entries(path)
        elif path.endswith(".sources"):
            yield from deb822_entries(path)


def main():
    found = {}
    for e in entries():
        if not e["enabled"]:
            continue
        signed = e["signed-by"] or "-"
        if "\n" in signed:  # an inline key block: let apt use its keyrings
            signed = "-"
        for suite in e["suites"]:
            kind = "security" if suite.endswith("-security") else "main"
            if kind == "main" and "-" in suite.rstrip("/"):
                # bookworm-updates, bookworm-backports: the same archive,
                # but only a release suite proves it is Debian's main one.
                continue
            for uri in e["uris"]:
                if "debian" not in uri and kind == "main" and "main" in found:
                    continue
                found.setdefault(kind, (uri.rstrip("/"), signed))
    if "main" not in found:
        sys.stderr.write(
            "error: no Debian archive found in %s/sources.list{,.d}; "
            "configure apt for Debian first\n" % ROOT)
        return 1
    for kind in ("main", "security"):
        if kind in found:
            print(kind, *found[kind])
    return 0


if __name__ == "__main__":
    sys.exit(main())
