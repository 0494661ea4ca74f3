"""ack_check.py: every sample a strata-load ack log acknowledged is in strata, bit-exactly.

`strata-load --expand-ack=LOG` re-derives each acknowledged sample; check_acked() reads them
back through /api/v1/export (one request per metric name) and compares timestamps and value
bits.  Used by the crash tests (test_crash_ingest.py, test_wal_after_cut.py).

    nwant, nseries, err = check_acked("http://127.0.0.1:PORT", "build/strata-load", ack, start_s, end_s)
"""
import json
import struct
import subprocess
import urllib.parse

from strata_client import http_call


def check_acked(base, load_bin, ack, start, end):
    """(samples acknowledged, series, None) when every one is exported with the same timestamp
    and value bits; (.., .., error text) otherwise.  start and end in seconds bound the export."""
    exp = subprocess.run([load_bin, "--expand-ack=" + ack], capture_output=True, text=True, timeout=120)
    if exp.returncode != 0:
        return 0, 0, "strata-load --expand-ack failed: %s" % exp.stderr[-500:]
    want = {}
    for line in exp.stdout.splitlines():
        o = json.loads(line)
        want[tuple(sorted(o["metric"].items()))] = dict(zip(o["timestamps"], o["values"]))
    nwant = sum(len(d) for d in want.values())
    acked = 0
    with open(ack) as f:
        for line in f:
            if not line.startswith("#"):
                _, _, n, lo, hi, _ = line.split()
                acked += int(n) * (int(hi) - int(lo))
    if nwant != acked or nwant == 0:
        return nwant, len(want), "ack log %s acknowledged %d samples but expanded to %d" % (ack, acked, nwant)
    got = {}
    for name in sorted({dict(k)["__name__"] for k in want}):
        q = urllib.parse.urlencode({"match[]": '{__name__="%s"}' % name, "start": str(start - 60),
                                    "end": str(end + 60)})
        st, body = http_call(base + "/api/v1/export?" + q, timeout=60)
        if st != 200:
            return nwant, len(want), "export of %s answered %d: %s" % (name, st, body[:300])
        for line in body.decode().splitlines():
            if line.strip():
                o = json.loads(line)
                d = got.setdefault(tuple(sorted(o["metric"].items())), {})
                d.update(zip(o["timestamps"], o["values"]))
    missing = wrong = 0
    example = None
    for k, d in want.items():
        g = got.get(k, {})
        for ts, v in d.items():
            if ts not in g:
                missing += 1
                example = example or ("missing", dict(k), ts)
            elif struct.pack("<d", float(g[ts])) != struct.pack("<d", float(v)):
                wrong += 1
                example = example or ("wrong", dict(k), ts, g[ts], v)
    if missing or wrong:
        return nwant, len(want), ("%d of %d acknowledged samples missing, %d with another value; e.g. %s"
                                  % (missing, nwant, wrong, example))
    return nwant, len(want), None
