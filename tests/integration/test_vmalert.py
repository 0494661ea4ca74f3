#!/usr/bin/env python3
"""test_vmalert.py: vmalert (Debian's victoria-metrics package) as a real client of strata.

strata (--auth=jwt) and Prometheus 2.42 get the same seeded data (tests/lib/promql_data.py).
vmalert then replays tests/fixtures/promql/rules.yml (recording rules, and alerting rules with
`for:` that fire and resolve inside the data) over the data's two hours, once with
-datasource.url and -remoteWrite.url pointing at strata (bearer tokens), once at Prometheus
(remote-write receiver, an out-of-order window so the replayed past is accepted).  Replay mode
(-replay.timeFrom/-replay.timeTo) asks query_range over the whole span with step = the group's
interval, so both runs are deterministic.  Checks:
  - the replay against Prometheus: exits 0, writes every recording rule, and every alert fires;
    GPUIdle, GPUXidError and GPUPowerHigh also resolve (validates the rules and the data);
  - the replay against strata exits 0 (every query_range answered);
  - the recorded series read back from strata (/api/v1/export) equal those read back from
    Prometheus (a range selector): label sets, timestamps exactly, values to 1e-9;
  - the same for ALERTS and for ALERTS_FOR_STATE.
A failure prints the series that differ.  Everything runs on 127.0.0.1 with temp dirs; every
process is stopped at the end.  STRATA_VMALERT_TARGET=prometheus runs the "strata" side against a
second Prometheus (validates the test).
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import promql_data as pd  # noqa: E402
from strata_client import token  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
TARGET = os.environ.get("STRATA_VMALERT_TARGET", "strata")
RULES = os.path.join(HERE, "..", "fixtures", "promql", "rules.yml")
SECRET = b"vmalert-test-secret"
REL = 1e-9
RECORDS = ["gpu:util:avg5m", "gpu:fb_used:ratio", "gpu:power:sum_by_host", "gpu:energy:rate5m", "gpu:temp:max30m",
           "gpu:count_by_model", "api:request_duration_seconds:p90_5m", "api:requests:error_ratio5m",
           "api:requests:increase10m"]
ALERTS = ["GPUIdle", "GPUXidError", "GPUPowerHigh", "GPUMemoryNearFull", "GPUTempHigh", "DCGMSeriesMissing",
          "APIErrorRatioHigh"]
RESOLVE = ["GPUIdle", "GPUXidError", "GPUPowerHigh"]

procs = []
tmp = tempfile.mkdtemp(prefix="strata-vmalert-")


def cleanup():
    pd.stop_quietly(procs)
    procs.clear()
    shutil.rmtree(tmp, ignore_errors=True)


def rfc3339(s):
    return datetime.fromtimestamp(s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def replay(name, api, t_from, t_to):
    """Runs vmalert's replay against api; (exit code, log tail)."""
    url = "http://127.0.0.1:%d" % api.port
    argv = ["vmalert", "-rule=" + RULES, "-datasource.url=" + url, "-remoteWrite.url=" + url,
            "-replay.timeFrom=" + rfc3339(t_from), "-replay.timeTo=" + rfc3339(t_to),
            "-replay.disableProgressBar", "-replay.rulesDelay=0s", "-replay.maxDatapointsPerQuery=1000",
            "-datasource.queryStep=1m", "-remoteWrite.flushInterval=100ms", "-httpListenAddr=127.0.0.1:%d" % pd.free_port(),
            "-loggerLevel=ERROR"]
    if api.tok:
        argv += ["-datasource.bearerToken=" + api.tok, "-remoteWrite.bearerToken=" + api.tok]
    log = os.path.join(tmp, name + ".log")
    with open(log, "w") as f:
        try:
            rc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=120).returncode
        except subprocess.TimeoutExpired:
            rc = -1
    with open(log, errors="replace") as f:
        return rc, f.read()[-1500:]


def read_prometheus(api, match, t_end):
    st, doc, body = api.call("/api/v1/query", {"query": "%s[1d]" % match, "time": "%d" % t_end})
    if st != 200:
        raise RuntimeError("prometheus read %s: %d %s" % (match, st, body[:300]))
    return {tuple(sorted(r["metric"].items())): [(int(round(float(t) * 1000)), float(v)) for t, v in r["values"]]
            for r in doc["data"]["result"]}


def read_strata(api, match, t_end):
    st, body = api.req("GET", "/api/v1/export?" + urllib.parse.urlencode({"match[]": match, "end": "%d" % t_end}))
    if st != 200:
        raise RuntimeError("strata export %s: %d %s" % (match, st, body[:300]))
    out = {}
    for line in body.decode().splitlines():
        if not line.strip():
            continue
        o = json.loads(line)
        if "metric" not in o:
            raise RuntimeError("strata export: %s" % line[:300])
        out[tuple(sorted(o["metric"].items()))] = [(int(t), float(v)) for t, v in zip(o["timestamps"], o["values"])]
    return out


def same(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b))


def compare(want, got):
    """[why] for every series that differs."""
    bad = []
    for k in sorted(set(want) - set(got)):
        bad.append("missing in %s: %s (%d samples)" % (TARGET, dict(k), len(want[k])))
    for k in sorted(set(got) - set(want)):
        bad.append("extra in %s: %s (%d samples)" % (TARGET, dict(k), len(got[k])))
    for k in sorted(set(want) & set(got)):
        w, g = want[k], got[k]
        if len(w) != len(g) or any(a[0] != b[0] or not same(a[1], b[1]) for a, b in zip(w, g)):
            first = next((i for i, (a, b) in enumerate(zip(w, g)) if a[0] != b[0] or not same(a[1], b[1])),
                         min(len(w), len(g)))
            bad.append("%s: %d vs %d samples, first difference at #%d: prometheus %s, %s %s"
                       % (dict(k), len(w), len(g), first, w[first:first + 2], TARGET, g[first:first + 2]))
    return bad


def line(ok, name, bad=()):
    print("%s - %s" % ("ok" if ok else "not ok", name))
    for b in list(bad)[:6]:
        print("#   " + b)
    if len(bad) > 6:
        print("#   ... %d more" % (len(bad) - 6))
    sys.stdout.flush()


def main():
    print("1..5")
    t0_ms = pd.t0_for_now()
    t0_s = t0_ms // 1000
    ds = pd.Dataset(t0_ms)
    prom_p, prom = pd.start_prometheus(tmp, ooo_window="2d")
    procs.append(prom_p)
    if TARGET == "prometheus":
        sp, subj = pd.start_prometheus(tmp, "prometheus-2", ooo_window="2d")
    else:
        secret = os.path.join(tmp, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET)
        sp, subj = pd.start_strata(tmp, BUILD, secret_file=secret)
        subj.tok = token(1, "metrics:read metrics:write", secret=SECRET)
    procs.append(sp)
    pd.load(prom, ds)
    pd.load(subj, ds)
    t_from, t_to = t0_s + 5 * 60, t0_s + 2 * 3600 + 5 * 60
    t_read = t0_s + 3 * 3600

    t = time.time()
    rc, tail = replay("vmalert-prometheus", prom, t_from, t_to)
    secs = time.time() - t
    names = RECORDS + ["ALERTS", "ALERTS_FOR_STATE"]
    match = '{__name__=~"%s"}' % "|".join(n.replace(":", ":") for n in names)
    want = read_prometheus(prom, match, t_read) if rc == 0 else {}
    rec = {dict(k)["__name__"] for k in want}
    fired = {dict(k).get("alertname") for k in want if dict(k).get("__name__") == "ALERTS"
             and dict(k).get("alertstate") == "firing"}
    resolved = set()
    for k, smp in want.items():
        d = dict(k)
        if d.get("__name__") == "ALERTS" and d.get("alertstate") == "firing" and smp[-1][0] < (t_to - 300) * 1000:
            resolved.add(d.get("alertname"))
    why = []
    if rc != 0:
        why.append("vmalert exited %d: %s" % (rc, tail.replace("\n", "\n#   ")))
    why += ["no recorded series %s" % r for r in RECORDS if r not in rec]
    why += ["alert %s never fired" % a for a in ALERTS if a not in fired]
    why += ["alert %s never resolved" % a for a in RESOLVE if a not in resolved]
    line(not why, "vmalert replay against Prometheus 2.42 (%.1fs): %d series, %d recording rules, %d alerts fired, "
         "%s resolved" % (secs, len(want), len(rec & set(RECORDS)), len(fired), ",".join(sorted(resolved))), why)

    t = time.time()
    rc2, tail2 = replay("vmalert-" + TARGET, subj, t_from, t_to)
    line(rc2 == 0, "vmalert replay against %s exits 0 (%.1fs)" % (TARGET, time.time() - t),
         [] if rc2 == 0 else ["vmalert exited %d: %s" % (rc2, tail2.replace("\n", "\n#   "))])

    got = (read_prometheus if TARGET == "prometheus" else read_strata)(subj, match, t_read)
    for what, sel in (("recording rules (%s)" % ", ".join(RECORDS[:3]) + ", ...", lambda n: n in RECORDS),
                      ("ALERTS", lambda n: n == "ALERTS"), ("ALERTS_FOR_STATE", lambda n: n == "ALERTS_FOR_STATE")):
        w = {k: v for k, v in want.items() if sel(dict(k)["__name__"])}
        g = {k: v for k, v in got.items() if sel(dict(k)["__name__"])}
        bad = compare(w, g)
        if not w:
            bad.insert(0, "Prometheus has no such series")
        line(not bad, "%s: %d series, %d samples written back by vmalert equal in %s and Prometheus"
             % (what, len(w), sum(len(v) for v in w.values()), TARGET), bad)
    cleanup()
    return 0


if __name__ == "__main__":
    pd.run_tap_main(main, "vmalert", procs, cleanup)
