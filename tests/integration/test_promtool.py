#!/usr/bin/env python3
"""test_promtool.py: Debian's promtool 2.42 as a real client of strata's Prometheus query API.

strata (--auth=none on loopback: promtool sends no token) and a real Prometheus 2.42 get the
same remote-written gauges; then `promtool query series|labels|instant|range
http://127.0.0.1:<port> ...` runs against both.  Its output from strata must be exactly the
lines the data implies and the same as from Prometheus.  instant and range are skipped only when
strata answers 501 (the evaluator not built in).  Prints TAP lines, the plan first.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import promql_data  # noqa: E402
from strata_client import Server, rw1, snappy  # noqa: E402

tmp = tempfile.mkdtemp(prefix="strata-promtool-")
procs, servers, results = [], [], []
NOW = int(time.time())
T0 = (NOW - 600) // 60 * 60
N = 20


def data():
    out = []
    for inst, base in (("a", 1.5), ("b", 100.0)):
        labels = [("__name__", "gpu_temp"), ("job", "dcgm"), ("gpu", inst)]
        out.append((labels, [(base + i, (T0 + i * 15) * 1000) for i in range(N)]))
    out.append(([("__name__", "fan_rpm"), ("job", "ipmi")], [(1200.0, (T0 + i * 15) * 1000) for i in range(N)]))
    return out


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + name + ("" if ok or not why else " # " + why.replace("\n", "|")[:600]))
    sys.stdout.flush()


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def promtool(*args):
    p = subprocess.run(["promtool", "query"] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def start_prometheus():
    """Prometheus 2.42 with the remote-write receiver (tests/lib/promql_data.py); its base URL."""
    p, api = promql_data.start_prometheus(tmp)
    procs.append(p)
    return "http://127.0.0.1:%d" % api.port


def check(name, args_for, want=None, evaluator=False):
    """Runs promtool against both; strata's output must equal Prometheus' (and want when given)."""
    s = promtool(*args_for(strata_url))
    if evaluator and s[0] != 0 and "501" in s[2]:
        results.append(True)
        print("ok - %s # SKIP the evaluator is not built in (501)" % name)
        return
    p = promtool(*args_for(prom_url))
    ok = s[0] == 0 and s == p and (want is None or s[1] == want)
    report(ok, name, "strata %r / prometheus %r / want %r" % (s, p, want))


strata_url = prom_url = None


def main():
    global strata_url, prom_url
    print("1..8")
    srv = Server(os.path.join(tmp, "strata"), None)
    servers.append(srv)
    strata_url = srv.url
    prom_url = start_prometheus()
    h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
         "X-Prometheus-Remote-Write-Version": "0.1.0"}
    st = srv.write(rw1(data()))[0]
    stp = http(prom_url + "/api/v1/write", "POST", snappy(rw1(data())), h)[0]
    report(st == 204 and stp == 204, "the same data written to strata and Prometheus", "%d %d" % (st, stp))

    check("promtool query series", lambda u: ["series", "--match=gpu_temp", "--match=fan_rpm", u],
          '{__name__="fan_rpm", job="ipmi"}\n{__name__="gpu_temp", gpu="a", job="dcgm"}\n'
          '{__name__="gpu_temp", gpu="b", job="dcgm"}\n')
    check("promtool query series with start and end",
          lambda u: ["series", "--match={job=\"dcgm\"}", "--start=%d" % T0, "--end=%d" % (T0 + 60), u],
          '{__name__="gpu_temp", gpu="a", job="dcgm"}\n{__name__="gpu_temp", gpu="b", job="dcgm"}\n')
    check("promtool query labels job", lambda u: ["labels", u, "job"], "dcgm\nipmi\n")
    check("promtool query labels __name__", lambda u: ["labels", u, "__name__"], "fan_rpm\ngpu_temp\n")
    t = T0 + 150  # the 11th sample of each series
    check("promtool query instant", lambda u: ["instant", "--time=%d" % t, u, "gpu_temp"],
          'gpu_temp{gpu="a", job="dcgm"} => 11.5 @[%d]\ngpu_temp{gpu="b", job="dcgm"} => 110 @[%d]\n' % (t, t),
          evaluator=True)
    check("promtool query instant of a scalar", lambda u: ["instant", "--time=%d" % t, u, "1+1"],
          "scalar: 2 @[%d]\n" % t, evaluator=True)
    check("promtool query range",
          lambda u: ["range", "--start=%d" % T0, "--end=%d" % (T0 + 120), "--step=30s", u, 'gpu_temp{gpu="a"}'],
          'gpu_temp{gpu="a", job="dcgm"} =>\n' + "".join("%g @[%d]\n" % (1.5 + 2 * k, T0 + 30 * k) for k in range(5)),
          evaluator=True)
    servers.remove(srv)
    srv.stop()


try:
    main()
except Exception as e:
    report(False, "test_promtool ran to the end", repr(e))
finally:
    promql_data.stop_quietly(servers + procs)
    shutil.rmtree(tmp, ignore_errors=True)
    if not all(results):
        sys.exit(1)
