#!/usr/bin/env python3
"""test_e2e_peers.py: real Prometheus and real vmagent scrape an exporter and
remote-write to strata; strata's /api/v1/export must return exactly what they
scraped.

The exporter is served by this script (one port per scraper, so each has its
own scrape count): static gauges with awkward values and labels (UTF-8, quotes,
backslashes, tiny and huge numbers), a counter that is the number of scrapes
served, and a classic histogram derived from it.  Checks:
  - Prometheus: every series in Prometheus' own TSDB (raw samples via a range
    selector) is in strata with the same labels and bit-identical (timestamp,
    value) pairs, and nothing else under that job;
  - both scrapers: the exporter's series carry exactly the exporter's labels
    plus job/instance, gauges have their exact values, the scrape counter is
    1, 2, 3, ... with no gap (nothing lost, nothing duplicated);
  - numberOfSamples=0 (native resolution) of GET /api/v1/workloads/{id}/metrics
    against Prometheus' raw samples: the Prometheus exporter also serves a
    workload's series (a gauge, two counters, a classic histogram) and
    Prometheus stamps its scrapes at its own sub-second offset, so the scrape
    times are (almost always) not whole seconds; the query starts 437 ms before
    the second scrape, off that grid.  Every point must be a raw sample at its
    own timestamp (RFC 3339, milliseconds when not whole seconds): the gauge's
    value x 2^20, the counters' rate / increase since the previous scrape, the
    histogram's per-le increase between consecutive scrapes, each bit-exact.
    The answer must also validate against the spec (tests/lib/spec_schema.py).
Everything runs on 127.0.0.1 with temp dirs; every process is killed at the end.
STRATA_E2E_TARGET=victoria-metrics runs the same checks against VictoriaMetrics
(used to validate the test itself).  Prints TAP lines.
"""
import json
import math
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import free_port, http_call, kill_all, log_tails, spawn, wait_http  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
TARGET = os.environ.get("STRATA_E2E_TARGET", "strata")
SCRAPE_S = 1
RUN_S = 8          # scrapes each scraper makes before the comparison window is cut
CATCHUP_S = 20     # how long strata may lag behind the scrapers

procs = []
tmp = tempfile.mkdtemp(prefix="strata-e2e-")


def cleanup():
    kill_all(procs)
    shutil.rmtree(tmp, ignore_errors=True)


def bail(msg):
    print("not ok - " + msg)
    print(log_tails(tmp, 1500))
    cleanup()
    sys.exit(1)


# ---------------------------------------------------------------- exporter

GAUGES = [
    # (name, labels, value text, expected float)
    ("e2e_gpu_util", {"gpu": "0", "UUID": "GPU-1b2c", "Hostname": "node-a"}, "87", 87.0),
    ("e2e_gpu_util", {"gpu": "1", "UUID": "GPU-3d4e", "Hostname": "node-a"}, "12.5", 12.5),
    ("e2e_temperature_celsius", {"sensor": 'edge "hot" \\ spot', "model": "llama-3 \u2713 \u00f1"},
     "-3.25", -3.25),
    ("e2e_tiny", {}, "1e-09", 1e-9),
    ("e2e_huge", {}, "1.7976931348623157e+308", 1.7976931348623157e308),
    ("e2e_fb_used_bytes", {"gpu": "0"}, "150754820096", 150754820096.0),
]
HIST_LE = ["0.1", "0.5", "1", "+Inf"]

# A workload's series, served only to Prometheus (numberOfSamples=0 check).
WID = "6b1d6f0e-0000-4000-8000-00000000e2e0"
WL_INFO = {"workload_id": WID, "workload_name": "e2e-native", "workload_type": "Training",
           "category": "Train", "project_id": "p1", "project_name": "e2e", "department_id": "d1",
           "department_name": "e2e", "cluster_id": "6b1d6f0e-0000-4000-8000-00000000c100",
           "namespace": "runai-e2e"}
TTFT_LE = ["0.25", "1", "+Inf"]


def fb_mib(n):
    """DCGM_FI_DEV_FB_USED (MiB) at scrape n: varies, not an integer."""
    return (n * 37) % 1000 + 0.25


def cpu_seconds(n):
    """container_cpu_usage_seconds_total at scrape n; restarts at scrape 5."""
    return n * 0.37 if n < 5 else (n - 5) * 0.37 + 0.01


def ttft(n, i):
    """time_to_first_token_seconds_bucket{le=TTFT_LE[i]} at scrape n (cumulative in le)."""
    return [n, 2 * n + n // 3, 3 * n + n // 2][i]


def render_workload(n):
    ls = lambda d: ",".join('%s="%s"' % (k, esc(v)) for k, v in d.items())
    w = {"workload_id": WID}
    out = ["runai_workload_info{%s} 1" % ls(WL_INFO),
           'DCGM_FI_DEV_FB_USED{gpu="0",Hostname="node-e2e",%s} %r' % (ls(w), fb_mib(n)),
           "# TYPE container_cpu_usage_seconds_total counter",
           'container_cpu_usage_seconds_total{container="main",namespace="runai-e2e",pod="p0",%s} %r'
           % (ls(w), cpu_seconds(n)),
           "# TYPE request_success_total counter",
           "request_success_total{%s} %d" % (ls(w), 3 * n + n % 2),
           "# TYPE time_to_first_token_seconds histogram"]
    for i, le in enumerate(TTFT_LE):
        out.append('time_to_first_token_seconds_bucket{le="%s",%s} %d' % (le, ls(w), ttft(n, i)))
    return out


def esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(n, workload=False):
    out = ["# TYPE e2e_scrapes_total counter", "e2e_scrapes_total %d" % n]
    for name, labels, text, _ in GAUGES:
        ls = ",".join('%s="%s"' % (k, esc(v)) for k, v in labels.items())
        out.append("%s%s %s" % (name, "{%s}" % ls if ls else "", text))
    out.append("# TYPE e2e_latency_seconds histogram")
    for i, le in enumerate(HIST_LE):
        out.append('e2e_latency_seconds_bucket{le="%s"} %d' % (le, n * (i + 1)))
    out.append("e2e_latency_seconds_sum %d.5" % n)
    out.append("e2e_latency_seconds_count %d" % (n * len(HIST_LE)))
    if workload:
        out += render_workload(n)
    return ("\n".join(out) + "\n").encode()


def expected_series(n):
    """{(name, labels...) : value} of the scrape numbered n, without job/instance."""
    e = {("e2e_scrapes_total", ()): float(n)}
    for name, labels, _, v in GAUGES:
        e[(name, tuple(sorted(labels.items())))] = v
    for i, le in enumerate(HIST_LE):
        e[("e2e_latency_seconds_bucket", (("le", le),))] = float(n * (i + 1))
    e[("e2e_latency_seconds_sum", ())] = n + 0.5
    e[("e2e_latency_seconds_count", ())] = float(n * len(HIST_LE))
    return e


def start_exporter(workload=False):
    state = {"n": 0, "lock": threading.Lock()}

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            with state["lock"]:
                state["n"] += 1
                body = render(state["n"], workload)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, state


# ---------------------------------------------------------------- receiver

def start_receiver():
    port = free_port()
    if TARGET == "victoria-metrics":
        p = spawn("receiver", ["victoria-metrics", "-storageDataPath=" + os.path.join(tmp, "vm"),
                               "-httpListenAddr=127.0.0.1:%d" % port, "-loggerLevel=ERROR"], tmp, procs)
        wait_http("http://127.0.0.1:%d/health" % port, p, "victoria-metrics")
        return port
    strata = os.path.join(BUILD, "strata")
    if not os.access(strata, os.X_OK):
        bail("%s is not built" % strata)
    p = spawn("strata", [strata, "--listen=127.0.0.1:%d" % port,
                         "--data-dir=" + os.path.join(tmp, "strata"), "--auth=none"], tmp, procs)
    wait_http("http://127.0.0.1:%d/healthz" % port, p, "strata")
    wait_http("http://127.0.0.1:%d/readyz" % port, p, "strata /readyz")
    return port


def export(port, match, start, end):
    q = urllib.parse.urlencode({"match[]": match, "start": "%.3f" % start, "end": "%.3f" % end})
    st, body = http_call("http://127.0.0.1:%d/api/v1/export?%s" % (port, q), timeout=15)
    if st != 200:
        bail("export %s answered %d: %s" % (match, st, body[:300]))
    res = {}
    for line in body.decode().splitlines():
        if not line.strip():
            continue
        o = json.loads(line)
        key = tuple(sorted(o["metric"].items()))
        d = res.setdefault(key, {})
        for ts, v in zip(o["timestamps"], o["values"]):
            v = float(v)  # "NaN"/"+Inf" strings too
            if not math.isnan(v):
                d[ts] = v
    return res


def same(a, b):
    """strata stores float64 bit-exactly (docs/storage.md, "Chunk encoding"); VictoriaMetrics rounds to ~15 digits."""
    if TARGET == "victoria-metrics":
        return a == b or abs(a - b) <= 1e-12 * max(abs(a), abs(b))
    return struct.pack("<d", a) == struct.pack("<d", b)


# ---------------------------------------------------------------- numberOfSamples=0

def rfc3339(ms):
    """strata's timestamp form: whole seconds, else milliseconds."""
    s = datetime.fromtimestamp(ms // 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return s + ("Z" if ms % 1000 == 0 else ".%03dZ" % (ms % 1000))


def raw(want, name, **labels):
    """Prometheus' raw samples [(ts_ms, value)] of the one series name{labels}."""
    hits = [d for k, d in want.items()
            if dict(k).get("__name__") == name and all(dict(k).get(a) == b for a, b in labels.items())]
    if len(hits) != 1:
        bail("native: %d Prometheus series %s%s" % (len(hits), name, labels))
    return sorted(hits[0].items())


def pairs(samples, start_ms, end_ms):
    """(t, v, previous v, previous t) for every sample in [start, end] that has a previous one."""
    return [(t, v, samples[i - 1][1], samples[i - 1][0]) for i, (t, v) in enumerate(samples)
            if i > 0 and start_ms <= t <= end_ms]


def counter_step(v, prev):
    return v - prev if v >= prev else v  # a drop: restarted from 0


def check_native(port, want, lo_ms, hi_ms):
    fb = raw(want, "DCGM_FI_DEV_FB_USED", workload_id=WID)
    if len(fb) < 4:
        bail("native: Prometheus has only %d scrapes of the workload" % len(fb))
    # from 437 ms before the second scrape: the first scrape is only the
    # counters' baseline, and a grid from start would miss every sample time
    start_ms, end_ms = fb[1][0] - 437, hi_ms
    if start_ms <= lo_ms:
        bail("native: start %d not inside Prometheus' window" % start_ms)
    frac = sum(1 for t, _ in fb if t % 1000)
    types = ["GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "NIM_REQUEST_SUCCESS_TOTAL",
             "NIM_TIME_TO_FIRST_TOKEN_SECONDS"]
    q = urllib.parse.urlencode({"metricType": ",".join(types), "start": rfc3339(start_ms),
                                "end": rfc3339(end_ms), "numberOfSamples": "0"})
    st, body = http_call("http://127.0.0.1:%d/api/v1/workloads/%s/metrics?%s" % (port, WID, q), timeout=15)
    if st != 200:
        bail("native: metrics answered %d: %s" % (st, body[:300]))
    doc = json.loads(body)
    try:
        from spec_schema import Spec
        Spec.load("workloads").validate("get", "/api/v1/workloads/{workloadId}/metrics", 200, doc)
    except Exception as e:  # jsonschema.ValidationError, or the spec missing
        bail("native: the answer does not validate against the spec: %s" % getattr(e, "message", e))
    ms = {m["type"]: m for m in doc["measurements"]}
    hs = {h["type"]: h for h in doc.get("histogram", [])}

    def expect(mtype, pts, labels=None):
        m = ms.get(mtype)
        if m is None:
            bail("native: no %s in %s" % (mtype, body[:300]))
        if labels is not None and m.get("labels") != labels:
            bail("native: %s labels %s, want %s" % (mtype, m.get("labels"), labels))
        got = [(p["timestamp"], float(p["value"])) for p in m["values"]]
        exp = [(rfc3339(t), v) for t, v in pts]
        if [g[0] for g in got] != [e[0] for e in exp]:
            bail("native: %s timestamps %s, want Prometheus' %s" % (mtype, [g[0] for g in got][:4],
                                                                  [e[0] for e in exp][:4]))
        for (ts, g), (_, e) in zip(got, exp):
            if not same(g, e):
                bail("native: %s @%s is %r, want %r" % (mtype, ts, g, e))
        return len(got)

    n = expect("GPU_MEMORY_USAGE_BYTES", [(t, v * 1048576) for t, v in fb if start_ms <= t <= end_ms],
               {"gpu": "0", "node": "node-e2e"})
    cpu = raw(want, "container_cpu_usage_seconds_total", workload_id=WID)
    if not any(v < pv for _, v, pv, _ in pairs(cpu, start_ms, end_ms)):
        bail("native: the CPU counter did not restart in range")
    n += expect("CPU_USAGE_CORES", [(t, counter_step(v, pv) / ((t - pt) / 1000.0))
                                    for t, v, pv, pt in pairs(cpu, start_ms, end_ms)])
    req = raw(want, "request_success_total", workload_id=WID)
    n += expect("NIM_REQUEST_SUCCESS_TOTAL", [(t, counter_step(v, pv)) for t, v, pv, _ in pairs(req, start_ms, end_ms)])
    h = hs.get("NIM_TIME_TO_FIRST_TOKEN_SECONDS")
    if h is None:
        bail("native: no NIM_TIME_TO_FIRST_TOKEN_SECONDS histogram")
    per_le = {le: pairs(raw(want, "time_to_first_token_seconds_bucket", workload_id=WID, le=le), start_ms, end_ms)
              for le in TTFT_LE}
    exp = [(rfc3339(per_le["+Inf"][i][0]),
            {le: counter_step(per_le[le][i][1], per_le[le][i][2]) for le in TTFT_LE})
           for i in range(len(per_le["+Inf"]))]
    got = [(v["timestamp"], {k: float(x) for k, x in v["data"].items()}) for v in h["values"]]
    if got != exp:
        bail("native: histogram %s, want %s" % (got[:2], exp[:2]))
    n += len(got)
    print("ok - numberOfSamples=0: %d points of a gauge, two counters and a histogram are Prometheus' raw "
          "samples at their own timestamps (%d of %d scrape times not whole seconds, start %s)"
          % (n, frac, len(fb), rfc3339(start_ms)))


# ---------------------------------------------------------------- main

def main():
    print("1..4")
    rport = start_receiver()
    wurl = "http://127.0.0.1:%d/api/v1/write" % rport

    prom_exp, prom_state = start_exporter(workload=True)
    vm_exp, vm_state = start_exporter()
    pport, vport = free_port(), free_port()
    pcfg, vcfg = os.path.join(tmp, "prometheus.yml"), os.path.join(tmp, "vmagent.yml")
    with open(pcfg, "w") as f:
        f.write("""global:
  scrape_interval: %ds
  scrape_timeout: %ds
scrape_configs:
  - job_name: e2e-prom
    static_configs: [{targets: ['127.0.0.1:%d']}]
remote_write:
  - url: %s
    queue_config: {batch_send_deadline: 1s, min_backoff: 50ms, max_backoff: 1s}
""" % (SCRAPE_S, SCRAPE_S, prom_exp.server_address[1], wurl))
    with open(vcfg, "w") as f:
        f.write("""global:
  scrape_interval: %ds
scrape_configs:
  - job_name: e2e-vmagent
    static_configs: [{targets: ['127.0.0.1:%d']}]
""" % (SCRAPE_S, vm_exp.server_address[1]))

    t0 = time.time()
    prom = spawn("prometheus", ["prometheus", "--config.file=" + pcfg,
                                "--storage.tsdb.path=" + os.path.join(tmp, "prom"),
                                "--web.listen-address=127.0.0.1:%d" % pport,
                                "--log.level=warn"], tmp, procs)
    vma = spawn("vmagent", ["vmagent", "-promscrape.config=" + vcfg, "-remoteWrite.url=" + wurl,
                            "-remoteWrite.tmpDataPath=" + os.path.join(tmp, "vmagent-q"),
                            "-remoteWrite.flushInterval=1s", "-httpListenAddr=127.0.0.1:%d" % vport,
                            "-loggerLevel=ERROR"], tmp, procs)
    wait_http("http://127.0.0.1:%d/-/ready" % pport, prom, "prometheus")
    wait_http("http://127.0.0.1:%d/health" % vport, vma, "vmagent")
    end = time.time() + 20
    while (prom_state["n"] < RUN_S or vm_state["n"] < RUN_S) and time.time() < end:
        time.sleep(0.2)
    if prom_state["n"] < RUN_S or vm_state["n"] < RUN_S:
        bail("scrapers too slow: prometheus %d, vmagent %d scrapes in 20s" % (prom_state["n"], vm_state["n"]))
    t_cut = time.time()
    window = t_cut - t0 + 5
    for p, name in ((prom, "prometheus"), (vma, "vmagent")):
        if p.poll() is not None:
            bail("%s exited early (%s)" % (name, p.returncode))

    # Prometheus' own raw samples in (t_cut - window, t_cut].
    q = urllib.parse.urlencode({"query": '{job="e2e-prom"}[%ds]' % int(window), "time": "%.3f" % t_cut})
    st, body = http_call("http://127.0.0.1:%d/api/v1/query?%s" % (pport, q))
    if st != 200:
        bail("prometheus query answered %d" % st)
    want = {}
    for r in json.loads(body)["data"]["result"]:
        want[tuple(sorted(r["metric"].items()))] = {int(round(ts * 1000)): float(v) for ts, v in r["values"]}
    lo_ms, hi_ms = int((t_cut - window) * 1000), int(t_cut * 1000)
    nwant = sum(len(v) for v in want.values())
    if nwant < 13 * (RUN_S - 2):
        bail("prometheus scraped too little (%d samples in %d series)" % (nwant, len(want)))

    # strata must catch up with all of it (remote write lags a little).
    deadline = time.time() + CATCHUP_S
    while True:
        got = export(rport, '{job="e2e-prom"}', t_cut - window - 1, t_cut + 1)
        got = {k: {ts: v for ts, v in d.items() if lo_ms < ts <= hi_ms} for k, d in got.items()}
        got = {k: d for k, d in got.items() if d}
        missing = [(k, ts) for k, d in want.items() for ts in d if ts not in got.get(k, {})]
        if not missing or time.time() > deadline:
            break
        time.sleep(0.5)
    if missing:
        k, ts = missing[0]
        bail("prometheus: %d of %d scraped samples missing in %s, e.g. %s @%d"
             % (len(missing), nwant, TARGET, dict(k), ts))
    extra = set(got) - set(want)
    if extra:
        bail("prometheus: %s has series Prometheus does not: %s" % (TARGET, [dict(k) for k in extra][:3]))
    for k, d in want.items():
        for ts, v in d.items():
            if not same(got[k][ts], v):
                bail("prometheus: %s @%d is %r in %s, %r in Prometheus" % (dict(k), ts, got[k][ts], TARGET, v))
        if set(got[k]) != set(d):
            bail("prometheus: %s has extra samples %s" % (dict(k), sorted(set(got[k]) - set(d))[:3]))
    print("ok - prometheus: %d samples in %d series identical in %s (labels, timestamps, values)"
          % (nwant, len(want), TARGET))

    def check_exporter(job, exp_port, state, name):
        instance = "127.0.0.1:%d" % exp_port
        deadline = time.time() + CATCHUP_S
        while True:
            got = export(rport, '{job="%s"}' % job, t0 - 5, time.time() + 5)
            served = state["n"]
            counts = [d for k, d in got.items() if dict(k).get("__name__") == "e2e_scrapes_total"]
            have = len(counts[0]) if counts else 0
            # Everything scraped until a couple of seconds ago must have arrived.
            if have >= served - 3 and have >= RUN_S - 2 or time.time() > deadline:
                break
            time.sleep(0.5)
        e2e = {k: d for k, d in got.items() if dict(k)["__name__"].startswith("e2e_")}
        want_keys = {}
        for (mname, labels), _ in expected_series(1).items():
            full = dict(labels)
            full.update({"__name__": mname, "job": job, "instance": instance})
            want_keys[tuple(sorted(full.items()))] = (mname, labels)
        if set(e2e) != set(want_keys):
            bail("%s: series differ: missing %s extra %s" % (name, [dict(k) for k in set(want_keys) - set(e2e)][:2],
                                                             [dict(k) for k in set(e2e) - set(want_keys)][:2]))
        cnt_key = [k for k in e2e if dict(k)["__name__"] == "e2e_scrapes_total"][0]
        ts_sorted = sorted(e2e[cnt_key])
        ns = [int(e2e[cnt_key][ts]) for ts in ts_sorted]
        if len(ns) < RUN_S - 2 or ns != list(range(ns[0], ns[0] + len(ns))) or ns[0] > 2:
            bail("%s: scrape counter not 1,2,3.. without gaps: %s" % (name, ns[:20]))
        for k, d in e2e.items():
            mname, labels = want_keys[k]
            if sorted(d) != ts_sorted:
                bail("%s: %s has timestamps unlike the scrape counter's" % (name, dict(k)))
            for ts in ts_sorted:
                n = int(e2e[cnt_key][ts])
                v = expected_series(n)[(mname, labels)]
                if not same(d[ts], v):
                    bail("%s: %s @%d is %r, want %r" % (name, dict(k), ts, d[ts], v))
        up = [d for k, d in got.items() if dict(k)["__name__"] == "up"]
        if not up or any(v != 1.0 for v in up[0].values()):
            bail("%s: up is missing or not 1: %s" % (name, up[:1]))
        print("ok - %s: %d scrapes of %d exporter series arrived in %s with exact labels and values"
              % (name, len(ns), len(e2e), TARGET))

    check_native(rport, want, lo_ms, hi_ms)
    check_exporter("e2e-prom", prom_exp.server_address[1], prom_state, "prometheus exporter series")
    check_exporter("e2e-vmagent", vm_exp.server_address[1], vm_state, "vmagent")
    prom_exp.shutdown()
    vm_exp.shutdown()
    cleanup()
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException as e:  # never leave peers running; bail shows the logs' tails
        bail("e2e peers: %s: %s" % (type(e).__name__, e))
