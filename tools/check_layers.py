#!/usr/bin/env python3
"""check_layers.py: the dependency rules of docs/architecture.md, checked.

Every #include "x.h" of a repository file is resolved to the room (folder)
that holds x.h.  A room may include only from the rooms below it:

    common <- tsdb <- ingest <- api/query <- api/workloads, api/reports, api/promql
           <- api/http <- api/daemon, api/main.c          (tools/, tests/: any)
    common <- tsdb <- ingest <- api/remote <- api/http

and no two source files may depend on each other (a.c includes b.h while
b.c includes a.h; a header with no .c of its name, such as a public contract
implemented by several files, is a unit of its own).  Prints every violation; exits 1 when there is one.
"""
import os
import re
import subprocess
import sys

ORDER = {
    "common": set(),
    "tsdb": {"common"},
    "ingest": {"common", "tsdb"},
    "api/query": {"common", "tsdb", "ingest"},
    "api/workloads": {"common", "tsdb", "ingest", "api/query"},
    "api/reports": {"common", "tsdb", "ingest", "api/query"},
    "api/promql": {"common", "tsdb", "ingest", "api/query"},
    "api/remote": {"common", "tsdb", "ingest"},
    "api/http": {"common", "tsdb", "ingest", "api/query", "api/workloads", "api/reports", "api/promql",
                 "api/remote"},
}
TOP = {"api/daemon", "api", "tools", "tests", "tests/fuzz"}  # may include anything

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def room_of(path):
    d = os.path.dirname(path)
    return d


def main():
    root = subprocess.run(["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                          check=True).stdout.strip()
    os.chdir(root)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "*.c", "*.h"],
                           capture_output=True, text=True, check=True).stdout.split()
    files = sorted({f for f in files if os.path.exists(f) and "/corpus/" not in f})
    cfiles = {f for f in files if f.endswith(".c")}
    header_home = {}
    for f in files:
        if f.endswith(".h"):
            header_home.setdefault(os.path.basename(f), []).append(f)
    bad = []
    deps = {}  # file stem -> set of file stems it includes
    for f in files:
        room = room_of(f)
        with open(f, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        stem = f[:-2]
        for inc in INCLUDE.findall(text):
            homes = header_home.get(os.path.basename(inc))
            if not homes:
                continue  # generated (protobuf) or system-like
            if len(homes) > 1:
                same = [h for h in homes if room_of(h) == room]
                homes = same or homes
                if len(homes) > 1:
                    bad.append(f"{f}: \"{inc}\" is ambiguous: {', '.join(homes)}")
                    continue
            target = homes[0]
            troom = room_of(target)
            if f.endswith(".c") and target[:-2] + ".c" in cfiles:
                deps.setdefault(stem, set()).add(target[:-2])
            if troom == room or room in TOP or room.startswith("tools") or room.startswith("tests"):
                continue
            allowed = ORDER.get(room)
            if allowed is None:
                bad.append(f"{f}: room {room} is not in the layer table (tools/check_layers.py)")
                continue
            if troom not in allowed:
                bad.append(f"{f}: includes {target}: {room} may not depend on {troom}")
    # a .c and its .h are one unit
    unit = {}
    for stem, ds in deps.items():
        unit.setdefault(stem, set()).update(d for d in ds if d != stem)
    for a, ds in unit.items():
        for b in ds:
            if a < b and a in unit.get(b, set()):
                if a.startswith(("tests/", "tools/")) or b.startswith(("tests/", "tools/")):
                    continue
                bad.append(f"{a} and {b} depend on each other")
    for line in sorted(set(bad)):
        print(line)
    print(f"check_layers: {len(files)} files, {len(set(bad))} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
