#!/usr/bin/env python3
"""bench_peers.py: `make bench-peers`, strata side by side with Prometheus 2.42
and VictoriaMetrics 1.79 on the same data, with cross-checked query answers.

One system at a time (so they never compete for the 2 cores), each on
127.0.0.1 with a throwaway data dir:
  1. start it; strata-load backfills the same simulated GPU cluster
     (--backfill=H --start=T0, same flags, same batches, same concurrency);
     ingest wall time, samples/s, server CPU (utime+stime from /proc/PID/stat)
     per million samples, peak RSS (VmHWM) and RSS per active series;
     WAL bytes on disk right after ingest;
  2. make the data durable and compressed: strata POST /api/v1/admin/cut-head,
     VictoriaMetrics /internal/force_flush then wait until no merge runs and
     the size is stable, Prometheus POST /api/v1/admin/tsdb/snapshot
     ?skip_head=false (its head written as a compressed block); block bytes;
  3. queries: strata GET /api/v1/workloads/{id}/metrics (10 metric types,
     numberOfSamples=1000) over the last hour and over the whole range, for
     several workloads; on the peers the equivalent PromQL query_range at the
     same end stamps and step; latency p50/p99;
  4. stop it.
Then every strata value is compared with the peers' for the same buckets
(rules in docs/benchmarks.md and CHECKS below).  Any unexplained difference
fails the run (exit 1), loudly.  Timings are printed, never asserted.

Output: a table on stdout, JSON (--json), and with --docs the regenerated
docs/benchmarks.md.  Python 3 standard library only.
"""
import argparse
import datetime
import http.client
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

# ---------------------------------------------------------------- scales

SCALES = {
    # ~20k active series, 3 h of 15 s data = 14.2M samples per system.
    "full": dict(workloads=250, nodes=32, hours=3, query_workloads=6, repeats=5),
    # The same cluster over 24 h = 113.5M samples per system (index and head costs amortised
    # over 8x the samples), sent in 2 h strata-load runs one after the other (chunk_hours): each
    # run ends with both workers at the same tick, so they never drift apart by the hour that
    # Prometheus 2.42 accepts behind its newest sample ("out of bounds"), and Prometheus' head
    # compaction (checked once a minute) keeps up.  Under 15 minutes on 2 cores.
    "day": dict(workloads=250, nodes=32, hours=24, query_workloads=6, repeats=3, chunk_hours=2),
    # CI: ~2k series, 2 h; runs for the cross-check (which fails there), about a minute.
    "ci": dict(workloads=25, nodes=4, hours=2, query_workloads=4, repeats=1),
}
SCRAPE_S = 15
N_SAMPLES = 1000
# Query ranges start this far after a whole second of the sample grid.  With
# 15 s samples and buckets of 3.6 s (1 h / 1000) or 10.8 s (3 h / 1000), a
# bucket edge can only fall on a sample when the offset is a multiple of
# 600 ms; 300 ms never is.  That matters because Prometheus 2.42's range
# selectors are closed on the left ([t-w, t]) while strata's buckets and
# VictoriaMetrics' windows are left-open: with no sample on an edge the three
# agree exactly.
OFFSET_MS = 300
REL_EXACT = 1e-9      # strata vs Prometheus (float64 both sides)
REL_VM = 1e-11        # strata vs VictoriaMetrics, plus its decimal rounding (below)
VM_DIGITS_REL = 5e-12  # VictoriaMetrics keeps ~12 significant digits per stored value

# ---------------------------------------------------------------- catalog
#
# For each metric type: how strata computes a step (docs/metrics.md) and the
# PromQL that computes the same thing at the same end stamp t with a range [W]
# = the bucket (t-W, t].  {S} is the workload's selector, {W} the bucket width
# ("3600ms"), {WS} the width in seconds.  Series joined by pod (no workload_id
# label) are selected with namespace, pod=~"pods" and workload_id="" (absent),
# as strata's join; series carrying workload_id with workload_id="W".
#
# kind: gauge   -> compared with Prometheus (1e-9) and VictoriaMetrics (1e-11+)
#       counter -> compared with VictoriaMetrics' increase(), which does not
#                  extrapolate (docs/downsampling.md), and with Prometheus through an exact
#                  non-extrapolating expression (valid because every bucket here
#                  is narrower than the scrape interval: at most one sample per
#                  bucket, so increase = this sample - the one before, or this
#                  sample after a reset); Prometheus' own increase()/rate(),
#                  which extrapolates, is reported, not failed.
# group: labels of one measurement (per-GPU types), "le" for histograms, () = one series.

POD = 'namespace="{ns}",pod=~"{pods}",workload_id=""'
WL = 'workload_id="{wid}"'
CPU_CONTAINERS = ',container!="",container!="POD"'

CATALOG = [
    dict(type="GPU_UTILIZATION", kind="gauge", sel=POD, group=("gpu", "node"),
         promql='avg by (gpu, node) (avg_over_time(DCGM_FI_DEV_GPU_UTIL{S}[{W}]))'),
    dict(type="GPU_MEMORY_USAGE_BYTES", kind="gauge", sel=POD, group=("gpu", "node"),
         promql='avg by (gpu, node) (avg_over_time(DCGM_FI_DEV_FB_USED{S}[{W}])) * 1048576'),
    dict(type="GPU_ALLOCATION", kind="gauge", sel=WL, group=(),
         promql='sum(last_over_time(runai_workload_gpu_allocation{S}[{W}]))'),
    dict(type="CPU_USAGE_CORES", kind="counter", sel=POD + CPU_CONTAINERS, group=(),
         metric="container_cpu_usage_seconds_total", rate=True,
         promql='sum({INC}) / {WS}'),
    dict(type="CPU_REQUEST_CORES", kind="gauge", sel=POD + ',resource="cpu"', group=(),
         promql='sum(last_over_time(kube_pod_container_resource_requests{S}[{W}]))'),
    dict(type="CPU_MEMORY_USAGE_BYTES", kind="gauge", sel=POD + CPU_CONTAINERS, group=(),
         promql='sum(avg_over_time(container_memory_working_set_bytes{S}[{W}]))'),
    dict(type="NIM_NUM_REQUESTS_RUNNING", kind="gauge", sel=POD, group=(),
         promql='sum(avg_over_time(num_requests_running{S}[{W}]))'),
    dict(type="NIM_NUM_REQUEST_MAX", kind="gauge", sel=POD, group=(),
         promql='sum(max_over_time(num_request_max{S}[{W}]))'),
    dict(type="NIM_REQUEST_SUCCESS_TOTAL", kind="counter", sel=POD, group=(),
         metric="request_success_total", rate=False,
         promql='sum({INC})'),
    dict(type="NIM_TIME_TO_FIRST_TOKEN_SECONDS", kind="counter", sel=POD, group=("le",),
         metric="time_to_first_token_seconds_bucket", rate=False, hist=True,
         promql='sum by (le) ({INC})'),
]

# The increase inside one bucket, per series, without extrapolation.
# VictoriaMetrics' increase() answers 0 for a window with no sample when there
# is one before it ("the value did not change"); strata omits empty buckets,
# so only windows holding a sample are kept (`and count_over_time`).
INC_VM = '(increase({M}{S}[{W}]) and count_over_time({M}{S}[{W}]))'
# `* 1`: Prometheus 2.42's last_over_time keeps the metric name, and inside a
# subquery a named and an unnamed series of the same pod would collide.
INC_PROM_EXACT = '((last_over_time({M}{S}[{W}]) - {M}{S} offset {W}) >= 0 or (last_over_time({M}{S}[{W}]) * 1))'
INC_PROM_NATIVE = 'increase({M}{S}[{W}])'
# Buckets holding several samples (w >= the scrape interval): the exact
# one-step increase evaluated at every 15 s grid point inside the bucket by a
# subquery, summed.  Samples sit exactly on the 15 s grid (t0 is a whole
# minute, strata-load's ticks are aligned), so each grid point is a sample and
# [15s] (closed on the left in 2.42) holds it and the one before; no grid
# point falls on a bucket edge (300 ms offset), so each sample counts once.
INC_PROM_SUBQUERY = 'sum_over_time({INC15}[{W}:15s])'


def promql_for(entry, flavour, sel, w_ms):
    """flavour: vm | prom (exact) | prom_native."""
    W = "%dms" % w_ms
    WS = repr(w_ms / 1000.0)
    q = entry["promql"]
    if entry["kind"] == "counter":
        inc = {"vm": INC_VM, "prom": INC_PROM_EXACT, "prom_native": INC_PROM_NATIVE}[flavour]
        if flavour == "prom" and w_ms >= SCRAPE_S * 1000:
            inc = INC_PROM_SUBQUERY.replace("{INC15}", INC_PROM_EXACT.replace("{W}", "%dms" % (SCRAPE_S * 1000)))
        inc = inc.replace("{M}", entry["metric"])
        q = q.replace("{INC}", inc)
    return q.replace("{S}", "{" + sel + "}").replace("{WS}", WS).replace("{W}", W)


def doc_promql(entry):
    """The PromQL as documented (placeholders kept)."""
    out = {}
    for fl in ("vm", "prom") if entry["kind"] == "counter" else ("prom",):
        q = entry["promql"]
        if entry["kind"] == "counter":
            inc = (INC_VM if fl == "vm" else INC_PROM_EXACT).replace("{M}", entry["metric"])
            q = q.replace("{INC}", inc)
        out[fl] = q.replace("{S}", "{<sel>}").replace("{W}", "<w>").replace("{WS}", "<w in s>")
    return out

# ---------------------------------------------------------------- helpers

T_START = time.time()


def log(msg):
    sys.stderr.write("[bench-peers %6.1fs] %s\n" % (time.time() - T_START, msg))
    sys.stderr.flush()


class Failure(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_req(port, method, path, body=None, timeout=600, headers=None):
    """(status, body bytes, seconds).  One connection per call: the timing
    includes a loopback connect, the same for every system."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    t0 = time.perf_counter()
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        return r.status, data, time.perf_counter() - t0
    except (OSError, http.client.HTTPException):
        return 0, b"", time.perf_counter() - t0
    finally:
        c.close()


class Conn:
    """A keep-alive connection for the timed queries (as a dashboard keeps one)."""

    def __init__(self, port):
        self.port = port
        self.c = None

    def get(self, path):
        for attempt in (0, 1):
            if self.c is None:
                self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            t0 = time.perf_counter()
            try:
                self.c.request("GET", path)
                r = self.c.getresponse()
                data = r.read()
                return r.status, data, time.perf_counter() - t0
            except (OSError, http.client.HTTPException):
                self.c.close()
                self.c = None
                if attempt:
                    return 0, b"", time.perf_counter() - t0
        return 0, b"", 0.0

    def close(self):
        if self.c:
            self.c.close()


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def proc_mem_kb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


def du(path):
    """Apparent bytes under path (hard links once)."""
    if not os.path.exists(path):
        return 0
    seen = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for n in files:
            try:
                st = os.lstat(os.path.join(root, n))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def rfc3339(ms):
    d = datetime.datetime.fromtimestamp(ms // 1000, datetime.timezone.utc)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    return s + (".%03dZ" % (ms % 1000) if ms % 1000 else "Z")


def parse_rfc3339_ms(s):
    frac = 0
    if "." in s:
        head, rest = s.split(".", 1)
        digits = rest.rstrip("Z")
        frac = int((digits + "000")[:3])
    else:
        head = s.rstrip("Z")
    d = datetime.datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 1000 + frac


def pct(vals, p):
    if not vals:
        return None
    v = sorted(vals)
    k = (len(v) - 1) * p
    lo, hi = math.floor(k), math.ceil(k)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def run_out(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""

# ---------------------------------------------------------------- systems


class System:
    name = "?"
    ready_path = "/"

    def __init__(self, args, tmp):
        self.args = args
        self.dir = os.path.join(tmp, self.name)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)
        self.port = free_port()
        self.proc = None
        self.logf = None

    def argv(self):
        raise NotImplementedError

    def start(self):
        self.logf = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(self.argv(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.dir)
        end = time.time() + 60
        while time.time() < end:
            if self.proc.poll() is not None:
                raise Failure("%s exited with %s at start: %s" % (self.name, self.proc.returncode, self.log_tail()))
            if http_req(self.port, "GET", self.ready_path, timeout=2)[0] == 200:
                return
            time.sleep(0.1)
        raise Failure("%s not ready after 60 s: %s" % (self.name, self.log_tail()))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.logf:
            self.logf.close()
            self.logf = None

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "server.log"), errors="replace") as f:
                return f.read()[-1500:]
        except OSError:
            return ""

    def write_url(self):
        return "http://127.0.0.1:%d/api/v1/write" % self.port

    def wal_bytes(self):
        raise NotImplementedError

    def make_durable(self):
        """Returns a dict of what was done."""
        raise NotImplementedError

    def block_bytes(self):
        raise NotImplementedError


class Strata(System):
    name = "strata"
    ready_path = "/readyz"

    def argv(self):
        return [os.path.abspath(os.path.join(self.args.build, "strata")),
                "--listen=127.0.0.1:%d" % self.port, "--data-dir=" + self.data,
                "--auth=none", "--log-level=warn"]

    def wal_bytes(self):
        return du(os.path.join(self.data, "wal"))

    def make_durable(self):
        st, body, secs = http_req(self.port, "POST", "/api/v1/admin/cut-head")
        if st != 200:
            raise Failure("strata: POST /api/v1/admin/cut-head answered %d %s" % (st, body[:300]))
        return {"how": "POST /api/v1/admin/cut-head", "seconds": secs, "answer": json.loads(body)}

    def block_bytes(self):
        return {"blocks": du(os.path.join(self.data, "blocks"))}


class Victoria(System):
    name = "victoria-metrics"
    ready_path = "/health"

    def argv(self):
        return ["victoria-metrics", "-storageDataPath=" + self.data,
                "-httpListenAddr=127.0.0.1:%d" % self.port, "-loggerLevel=ERROR",
                # every query answered from the data, not the rollup cache
                "-search.disableCache",
                # data up to "now" visible (the backfill ends minutes before now anyway)
                "-search.latencyOffset=0s"]

    def wal_bytes(self):
        # No WAL: recent rows sit in memory (flushed to small parts every second).
        return du(self.data)

    def metric_sum(self, name):
        st, body, _ = http_req(self.port, "GET", "/metrics", timeout=10)
        total = 0.0
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def make_durable(self):
        t0 = time.perf_counter()
        st, body, _ = http_req(self.port, "GET", "/internal/force_flush")
        if st != 200:
            raise Failure("victoria-metrics: /internal/force_flush answered %d" % st)
        # force_flush turns pending rows into parts, but 1.79 keeps small parts
        # in memory until a merge writes them out.  Wait (at most 180 s) until
        # no merge runs, the files hold at least the bytes VictoriaMetrics
        # reports for its parts (vm_data_size_bytes), and the size is stable for 3 s.
        stable, last, settled = 0, -1, False
        end = time.time() + 180
        while time.time() < end:
            time.sleep(1)
            size = sum(self.block_bytes().values())
            merges = self.metric_sum("vm_active_merges")
            target = self.metric_sum("vm_data_size_bytes")
            stable = stable + 1 if (merges == 0 and size == last and size >= target) else 0
            last = size
            if stable >= 3:
                settled = True
                break
        if not settled:
            log("victoria-metrics: parts not settled on disk after 180 s; measuring anyway")
        return {"how": "/internal/force_flush, then no active merge, files >= vm_data_size_bytes, stable 3 s",
                "seconds": time.perf_counter() - t0, "settled": settled,
                "vm_data_size_bytes": self.metric_sum("vm_data_size_bytes")}

    def block_bytes(self):
        return {"data": du(os.path.join(self.data, "data")),
                "indexdb": du(os.path.join(self.data, "indexdb"))}


class Prometheus(System):
    name = "prometheus"
    ready_path = "/-/ready"

    def argv(self):
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global: {scrape_interval: 1h}\n")
        return ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.data,
                "--web.listen-address=127.0.0.1:%d" % self.port,
                "--web.enable-remote-write-receiver", "--web.enable-admin-api",
                "--log.level=warn"]

    def wal_bytes(self):
        # the WAL plus the head chunks Prometheus memory-maps to disk
        return du(os.path.join(self.data, "wal")) + du(os.path.join(self.data, "chunks_head"))

    def make_durable(self):
        st, body, secs = http_req(self.port, "POST", "/api/v1/admin/tsdb/snapshot?skip_head=false")
        if st != 200:
            raise Failure("prometheus: snapshot answered %d %s" % (st, body[:300]))
        self.snapshot = json.loads(body)["data"]["name"]
        return {"how": "POST /api/v1/admin/tsdb/snapshot?skip_head=false", "seconds": secs,
                "snapshot": self.snapshot}

    def block_bytes(self):
        return {"snapshot": du(os.path.join(self.data, "snapshots", self.snapshot))}

# ---------------------------------------------------------------- workloads


def cluster_catalog(args):
    """{workload_id: {name, type, pods: [(ns, pod)]}} from strata-load --list-series."""
    out = subprocess.run([os.path.join(args.build, "strata-load"), "--list-series",
                          "--workloads=%d" % args.workloads, "--nodes=%d" % args.nodes,
                          "--start=%d" % (args.t0_ms // 1000)],
                         capture_output=True, text=True, check=True).stdout
    wl = {}
    pods = []
    args.nseries = len(out.splitlines())
    for line in out.splitlines():
        d = json.loads(line)
        if d["__name__"] == "runai_workload_info":
            wl[d["workload_id"]] = {"name": d["workload_name"], "type": d["workload_type"], "pods": []}
        elif d["__name__"] == "runai_pod_info":
            pods.append(d)
        elif d["__name__"] == "runai_workload_phase" and d.get("phase") == "Pending":
            pass
    for p in pods:
        if p["workload_id"] in wl:
            wl[p["workload_id"]]["pods"].append((p["namespace"], p["pod"], "node" in p))
    return wl


def pick_workloads(wl, n, prefer=()):
    """Running workloads (their pods have a node), inference first (all 10
    types have data there), then training (many GPUs), then workspaces; within
    a type, those in prefer (their counters reset in range) first."""
    order = {"Inference": 0, "Training": 1, "Workspace": 2}
    running = [(w, d) for w, d in wl.items() if d["pods"] and all(p[2] for p in d["pods"])]
    by_type = {}
    for w, d in sorted(running, key=lambda x: (x[0] not in prefer, x[1]["name"])):
        by_type.setdefault(d["type"], []).append(w)
    picked = []
    while len(picked) < n and any(by_type.values()):
        for t in sorted(by_type, key=lambda t: order.get(t, 9)):
            if by_type[t] and len(picked) < n:
                picked.append(by_type[t].pop(0))
    return picked


def reset_workloads(port, wl, start_ms, end_ms):
    """Workloads whose pods' counters reset inside [start, end], read from
    strata's /api/v1/export (raw samples).  strata-load resets all counters of
    a workload's pods at the same tick, once per simulated day, so a 3 h range
    holds a reset for about 1 workload in 8; picking those makes the
    cross-check exercise reset handling."""
    q = urllib.parse.urlencode({"match[]": 'container_cpu_usage_seconds_total{container="main"}',
                                "start": "%.3f" % (start_ms / 1000.0), "end": "%.3f" % (end_ms / 1000.0)})
    st, body, _ = http_req(port, "GET", "/api/v1/export?" + q, timeout=120)
    if st != 200:
        log("strata export answered %d: no reset-based workload choice" % st)
        return set()
    pod_wl = {(p[0], p[1]): w for w, d in wl.items() for p in d["pods"]}
    out = set()
    for line in body.decode().splitlines():
        d = json.loads(line)
        v = d["values"]
        if any(b < a for a, b in zip(v, v[1:])):
            w = pod_wl.get((d["metric"].get("namespace"), d["metric"].get("pod")))
            if w:
                out.add(w)
    return out


def selector(entry, wid, info):
    ns = info["pods"][0][0]
    pods = "|".join(sorted(p[1] for p in info["pods"]))
    return entry["sel"].format(ns=ns, pods=pods, wid=wid)

# ---------------------------------------------------------------- queries


def strata_metrics(conn, wid, types, start_ms, end_ms, n=N_SAMPLES):
    q = urllib.parse.urlencode({"metricType": ",".join(types), "start": rfc3339(start_ms),
                                "end": rfc3339(end_ms), "numberOfSamples": n})
    return conn.get("/api/v1/workloads/%s/metrics?%s" % (wid, q))


def parse_strata(body):
    """{type: {group_key: {ts_ms: value}}}; group key = tuple of (label, value)."""
    d = json.loads(body)
    out = {}
    for m in d.get("measurements", []):
        if m.get("values") is None:
            raise Failure("strata: %s failed: %s" % (m["type"], m.get("labels")))
        key = tuple(sorted((m.get("labels") or {}).items()))
        pts = out.setdefault(m["type"], {}).setdefault(key, {})
        for v in m["values"]:
            pts[parse_rfc3339_ms(v["timestamp"])] = float(v["value"])
    for h in d.get("histogram", []) or []:
        series = out.setdefault(h["type"], {})
        for v in h["values"]:
            ts = parse_rfc3339_ms(v["timestamp"])
            for le, val in v["data"].items():
                series.setdefault((("le", le),), {})[ts] = float(val)
    return out


def promql_range(conn, expr, start_ms, end_ms, step_ms):
    q = urllib.parse.urlencode({"query": expr, "start": "%.3f" % (start_ms / 1000.0),
                                "end": "%.3f" % (end_ms / 1000.0), "step": "%.3f" % (step_ms / 1000.0)})
    return conn.get("/api/v1/query_range?" + q)


def promql_instant(conn, expr, t_ms):
    q = urllib.parse.urlencode({"query": expr, "time": "%.3f" % (t_ms / 1000.0)})
    return conn.get("/api/v1/query?" + q)


def parse_prom(body, group):
    d = json.loads(body)
    if d.get("status") != "success":
        raise Failure("PromQL error: %s" % body[:300])
    out = {}
    for r in d["data"]["result"]:
        key = tuple(sorted((k, r["metric"].get(k, "")) for k in group))
        pts = out.setdefault(key, {})
        for ts, v in r["values"]:
            pts[int(round(float(ts) * 1000))] = float(v)
    return out


def norm_key(key):
    """le strings may be spelled differently ("1" / "1.0"): compare bounds by value."""
    return tuple((k, float(v)) if k == "le" else (k, v) for k, v in key)

# ---------------------------------------------------------------- the run


def balanced_batch(nseries, workers=2, most=2000):
    """Series per request so each of the workers sends the same number of slots.
    Each worker walks time on its own slots; with uneven slots (2000 + 233) the
    light one runs hours ahead, and Prometheus refuses samples more than an hour
    behind its newest ("out of bounds")."""
    nslots = -(-nseries // most)
    nslots += -nslots % workers
    return -(-nseries // nslots)


def ingest(system, args, res):
    chunk = getattr(args, "chunk_hours", None) or args.hours
    base = [os.path.join(args.build, "strata-load"), "--url=" + system.write_url(),
            "--workloads=%d" % args.workloads, "--nodes=%d" % args.nodes]
    tail = ["--concurrency=2", "--batch-size=%d" % balanced_batch(args.nseries), "--quiet"]
    runs = [base + ["--backfill=%d" % min(chunk, args.hours - h), "--start=%d" % (args.t0_ms // 1000 + h * 3600)] + tail
            for h in range(0, args.hours, chunk)]
    res["load_command"] = " ".join(runs[0][:1] + ["--url=..."] + runs[0][2:])
    if len(runs) > 1:
        res["load_command"] += " (then %d more runs, --start %d h later each)" % (len(runs) - 1, chunk)
    c0 = proc_cpu_s(system.proc.pid)
    t0 = time.perf_counter()
    summary = {"samples": 0, "elapsed_s": 0.0, "retries": 0}
    for load in runs:
        p = subprocess.run(load, capture_output=True, text=True)
        if p.returncode != 0:
            raise Failure("%s: strata-load exited %d: %s %s" % (system.name, p.returncode, p.stdout[-500:], p.stderr[-800:]))
        one = {}
        for line in p.stdout.splitlines():
            for tok in line.split()[1:]:
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    one[k] = v
        summary["samples"] += int(one["samples"])
        summary["elapsed_s"] += float(one["elapsed_s"])
        summary["retries"] += int(one.get("retries", 0))
        summary["series"] = one["series"]
    wall = time.perf_counter() - t0
    c1 = proc_cpu_s(system.proc.pid)
    samples = int(summary["samples"])
    series = int(summary["series"])
    mem = proc_mem_kb(system.proc.pid)
    res["ingest"] = {
        "samples": samples, "series": series, "wall_s": wall,
        "load_elapsed_s": float(summary["elapsed_s"]),
        "samples_per_s": samples / float(summary["elapsed_s"]),
        "cpu_s": c1 - c0, "cpu_s_per_1m_samples": (c1 - c0) * 1e6 / samples,
        "rss_bytes": mem["VmRSS"] * 1024, "peak_rss_bytes": mem["VmHWM"] * 1024,
        "peak_rss_per_series": mem["VmHWM"] * 1024 / series,
        "retries": int(summary.get("retries", 0)), "load_status": p.stdout.splitlines()[-1],
    }
    res["disk"] = {"wal_after_ingest": system.wal_bytes()}
    return samples


def durable(system, res, samples):
    c0 = proc_cpu_s(system.proc.pid)
    res["durable"] = system.make_durable()
    res["durable"]["cpu_s"] = proc_cpu_s(system.proc.pid) - c0
    blocks = system.block_bytes()
    d = res["disk"]
    d["blocks"] = blocks
    d["block_bytes"] = sum(blocks.values())
    d["bytes_per_sample"] = d["block_bytes"] / samples
    d["total_dir_after"] = du(system.data)
    if system.name != "victoria-metrics":
        d["wal_after_durable"] = system.wal_bytes()
    mem = proc_mem_kb(system.proc.pid)
    res["peak_rss_after_durable_bytes"] = mem["VmHWM"] * 1024


def run_queries(system, args, plan, res, answers):
    """Timed queries; answers[(system, wid, range)] = parsed results."""
    conn = Conn(system.port)
    lat = {"all_types": [], "per_type": {e["type"]: [] for e in CATALOG}}
    types = [e["type"] for e in CATALOG]
    errors = []
    for rep in range(args.repeats):
        for wid, info in plan["workloads"]:
            for rname, (s, e, n, timed) in plan["ranges"].items():
                if not timed and rep:
                    continue
                w = (e - s) // n
                key = (system.name, wid, rname)
                if system.name == "strata":
                    st, body, secs = strata_metrics(conn, wid, types, s, e, n)
                    if st != 200:
                        msg = body[:300].decode(errors="replace")
                        if st in (404, 405, 501) or st == 0:
                            errors.append("metrics endpoint not available: GET /api/v1/workloads/{id}/metrics answered %d %s" % (st, msg))
                        else:
                            errors.append("strata metrics answered %d %s" % (st, msg))
                        break
                    if rep == 0:
                        answers[key] = parse_strata(body)
                    if not timed:
                        continue
                    lat["all_types"].append(secs)
                    for t in types:
                        st, body, secs = strata_metrics(conn, wid, [t], s, e, n)
                        if st == 200:
                            lat["per_type"][t].append(secs)
                else:
                    total = 0.0
                    got = {}
                    for entry in CATALOG:
                        fl = "vm" if system.name == "victoria-metrics" else "prom"
                        expr = promql_for(entry, fl, selector(entry, wid, info), w)
                        st, body, secs = promql_range(conn, expr, s + w, e, w)
                        if st != 200:
                            errors.append("%s: %s answered %d %s" % (system.name, expr, st, body[:300]))
                            continue
                        total += secs
                        if timed:
                            lat["per_type"][entry["type"]].append(secs)
                        if rep == 0:
                            got[entry["type"]] = parse_prom(body, entry["group"])
                    if timed:
                        lat["all_types"].append(total)
                    if rep == 0:
                        answers[key] = got
                        if system.name == "prometheus":
                            extra_prometheus(conn, plan, wid, info, s, e, w, answers)
                        elif "prometheus" not in args.systems.split(","):
                            # no Prometheus in this run: the counters' magnitudes (the bound on
                            # VictoriaMetrics' decimal rounding) and resets from VictoriaMetrics
                            extra_prometheus(conn, plan, wid, info, s, e, w, answers, native=False)
            if errors:
                break
        if errors:
            break
    conn.close()
    res["query_latency_s"] = {
        "all_types": {"p50": pct(lat["all_types"], 0.5), "p99": pct(lat["all_types"], 0.99), "n": len(lat["all_types"])},
        "per_type": {t: {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "n": len(v)} for t, v in lat["per_type"].items()},
    }
    res["query_errors"] = errors
    return errors


def extra_prometheus(conn, plan, wid, info, s, e, w, answers, native=True):
    """Untimed: Prometheus' own (extrapolating) increase for the counter types,
    and the magnitude of the counters (sum over series of their largest value
    in the range, from float64 data) that bounds VictoriaMetrics' rounding."""
    for entry in CATALOG:
        if entry["kind"] != "counter":
            continue
        sel = selector(entry, wid, info)
        expr = promql_for(entry, "prom_native", sel, w)
        st, body, _ = promql_range(conn, expr, s + w, e, w) if native else (0, b"", 0.0)
        if st == 200:
            answers[("prom_native", wid, (s, e, w), entry["type"])] = parse_prom(body, entry["group"])
        # how many counter resets the checked range holds (reset handling exercised or not)
        st, body, _ = promql_instant(conn, "sum(resets(%s{%s}[%dms]))" % (entry["metric"], sel, e - s), e)
        if st == 200:
            r = json.loads(body)["data"]["result"]
            answers[("resets", wid, (s, e), entry["type"])] = int(float(r[0]["value"][1])) if r else 0
        by = "by (le) " if entry.get("hist") else ""
        mag = "sum %s(max_over_time(%s{%s}[%dms]))" % (by, entry["metric"], sel, (e - s) + 600000)
        st, body, _ = promql_instant(conn, mag, e)
        if st == 200:
            d = json.loads(body)
            m = {}
            for r in d["data"]["result"]:
                k = tuple(sorted((g, r["metric"].get(g, "")) for g in entry["group"]))
                m[norm_key(k)] = float(r["value"][1])
            answers[("magnitude", wid, (s, e), entry["type"])] = m


def compare(plan, answers, ref="strata"):
    """Per metric type: largest relative difference of ref's answers vs each
    peer's; failures.  ref is strata; "prometheus" checks the PromQL of the two
    peers against each other (a self-test of the harness)."""
    out = {e["type"]: {"prometheus": 0.0, "victoria-metrics": 0.0, "prometheus_native": None,
                       "points": 0, "native_points_missing": 0, "failures": 0, "resets": 0} for e in CATALOG}
    failures = []

    def rel(a, b):
        m = max(abs(a), abs(b))
        return 0.0 if a == b else abs(a - b) / m if m else 0.0

    for wid, info in plan["workloads"]:
        for rname, (s, e, n, _) in plan["ranges"].items():
            w = (e - s) // n
            sa = answers.get((ref, wid, rname))
            if sa is None:
                continue
            for entry in CATALOG:
                t = entry["type"]
                mine = {norm_key(k): v for k, v in sa.get(t, {}).items()}
                mag = answers.get(("magnitude", wid, (s, e), t), {})
                for peer in ("prometheus", "victoria-metrics"):
                    if peer == ref:
                        continue
                    pa = answers.get((peer, wid, rname))
                    if pa is None:
                        continue
                    theirs = {norm_key(k): v for k, v in pa.get(t, {}).items()}
                    for k in sorted(set(mine) | set(theirs)):
                        a, b = mine.get(k, {}), theirs.get(k, {})
                        for ts in sorted(set(a) | set(b)):
                            where = "%s %s %s %s %s@%s" % (t, info["name"], rname, peer, dict(k), rfc3339(ts))
                            if ts not in a or ts not in b:
                                out[t]["failures"] += 1
                                failures.append("%s: point only in %s (%r)" % (where, ref if ts in a else peer,
                                                                           a.get(ts, b.get(ts))))
                                continue
                            x, y = a[ts], b[ts]
                            r = rel(x, y)
                            out[t][peer] = max(out[t][peer], r)
                            if peer == "prometheus":
                                tol = REL_EXACT * max(abs(x), abs(y))
                            else:
                                m = mag.get(k, 0.0) if entry["kind"] == "counter" else 0.0
                                if entry.get("rate"):
                                    m /= w / 1000.0
                                tol = REL_VM * max(abs(x), abs(y)) + 4 * VM_DIGITS_REL * m
                            if peer == "victoria-metrics":
                                out[t]["points"] += 1
                            if abs(x - y) > tol:
                                out[t]["failures"] += 1
                                failures.append(("%s: " + ref + " %r, %s %r (rel %.3g, allowed abs %.3g)") % (where, x, peer, y, r, tol))
                if entry["kind"] == "counter" and rname == "whole":
                    out[t]["resets"] += answers.get(("resets", wid, (s, e), t), 0)
                if entry["kind"] == "counter" and ref == "strata":
                    nat = answers.get(("prom_native", wid, (s, e, w), t))
                    if nat is not None:
                        theirs = {norm_key(k): v for k, v in nat.items()}
                        for k, a in mine.items():
                            for ts, x in a.items():
                                y = theirs.get(k, {}).get(ts)
                                if y is None:
                                    out[t]["native_points_missing"] += 1
                                    continue
                                r = rel(x, y)
                                out[t]["prometheus_native"] = max(out[t]["prometheus_native"] or 0.0, r)
    return out, failures


def versions(args):
    v = {}
    v["strata"] = run_out(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"]).strip()
    v["prometheus"] = (run_out(["prometheus", "--version"]).splitlines() or ["?"])[0]
    v["victoria-metrics"] = "victoria-metrics " + run_out(["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"]).strip()
    v["python"] = sys.version.split()[0]
    return v


def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            memk = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        memk = 0
    return {"nproc": os.cpu_count(), "cpu": model, "mem_gib": round(memk / 1048576, 1),
            "loadavg_at_start": os.getloadavg()[0], "kernel": os.uname().release}

# ---------------------------------------------------------------- output


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return ("%.0f %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0


def ms(x):
    return "-" if x is None else "%.1f" % (x * 1000)


def ratio(a, b):
    return None if not a or not b else a / b


def build_tables(report):
    sysn = [s for s in ("strata", "victoria-metrics", "prometheus") if s in report["systems"]]
    S = report["systems"]
    L = []
    L.append("| | " + " | ".join(sysn) + " |")
    L.append("| --- |" + " --- |" * len(sysn))

    def row(label, f):
        cells = []
        for s in sysn:
            try:
                cells.append(f(S[s]))
            except (KeyError, TypeError, ZeroDivisionError):
                cells.append("-")
        L.append("| %s | %s |" % (label, " | ".join(cells)))

    row("ingest wall time", lambda r: "%.1f s" % r["ingest"]["load_elapsed_s"])
    row("samples/s", lambda r: "{:,.0f}".format(r["ingest"]["samples_per_s"]))
    row("server CPU s per 1M samples", lambda r: "%.3f" % r["ingest"]["cpu_s_per_1m_samples"])
    row("peak RSS during ingest", lambda r: fmt_bytes(r["ingest"]["peak_rss_bytes"]))
    row("peak RSS per active series", lambda r: "%.0f B" % r["ingest"]["peak_rss_per_series"])
    row("WAL on disk after ingest", lambda r: fmt_bytes(r["disk"]["wal_after_ingest"]) +
        (" (no WAL: in-memory parts + small parts)" if r is S.get("victoria-metrics") else ""))
    row("WAL on disk after the durable step", lambda r: fmt_bytes(r["disk"]["wal_after_durable"]))
    row("durable step", lambda r: "%.1f s, %.1f CPU s" % (r["durable"]["seconds"], r["durable"]["cpu_s"]))
    row("blocks on disk", lambda r: fmt_bytes(r["disk"]["block_bytes"]) + " (" +
        ", ".join("%s %s" % (k, fmt_bytes(v)) for k, v in r["disk"]["blocks"].items()) + ")")
    row("bytes per sample (blocks)", lambda r: "%.3f" % r["disk"]["bytes_per_sample"])
    row("queries timed (all 10 types)", lambda r: "%d" % r["query_latency_s"]["all_types"]["n"])
    row("query p50 / p99, all 10 types (ms)", lambda r: "%s / %s" % (
        ms(r["query_latency_s"]["all_types"]["p50"]), ms(r["query_latency_s"]["all_types"]["p99"])))
    for e in CATALOG:
        t = e["type"]
        row("&nbsp; %s p50 / p99 (ms)" % t, lambda r, t=t: "%s / %s" % (
            ms(r["query_latency_s"]["per_type"][t]["p50"]), ms(r["query_latency_s"]["per_type"][t]["p99"])))
    main = "\n".join(L)

    C = ["| metricType | kind | points | max rel diff vs Prometheus | max rel diff vs VictoriaMetrics | Prometheus' own increase/rate (extrapolating; reported only) | counter resets in the whole ranges | failures |",
         "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for e in CATALOG:
        c = report["crosscheck"].get(e["type"], {})
        nat = "-"
        if e["kind"] == "counter":
            nat = ("%.3g" % c["prometheus_native"]) if c.get("prometheus_native") is not None else "no value"
            if c.get("native_points_missing"):
                nat += " (%d of %d points absent: Prometheus needs 2 samples in a window)" % (c["native_points_missing"], c.get("points", 0))
        C.append("| %s | %s | %d | %.3g | %.3g | %s | %s | %d |" % (
            e["type"], e["kind"], c.get("points", 0), c.get("prometheus", 0.0), c.get("victoria-metrics", 0.0),
            nat, c.get("resets", 0) if e["kind"] == "counter" else "-", c.get("failures", 0)))
    cross = "\n".join(C)

    G = ["| goal (strata / peer) | target | measured | |", "| --- | --- | --- | --- |"]
    for g in report["goals"]:
        verdict = ""
        if g["target"] != "-" and g["ratio"] is not None:
            t = float(g["target"])
            verdict = "met" if g["ratio"] <= t else "missed: %.1fx too high" % (g["ratio"] / t)
        G.append("| %s | %s | %s | %s |" % (g["what"], "-" if g["target"] == "-" else "<= " + g["target"],
                                            "-" if g["ratio"] is None else "%.3f" % g["ratio"], verdict))
    goals = "\n".join(G)
    return main, cross, goals


def goals(report):
    S = report["systems"]

    def get(s, *path):
        r = S.get(s)
        try:
            for p in path:
                r = r[p]
            return r
        except (KeyError, TypeError):
            return None
    vm = "victoria-metrics"
    out = []
    out.append({"what": "ingest CPU s per 1M samples vs VictoriaMetrics", "target": "0.333",
                "ratio": ratio(get("strata", "ingest", "cpu_s_per_1m_samples"), get(vm, "ingest", "cpu_s_per_1m_samples"))})
    out.append({"what": "bytes on disk per sample vs VictoriaMetrics", "target": "0.7",
                "ratio": ratio(get("strata", "disk", "bytes_per_sample"), get(vm, "disk", "bytes_per_sample"))})
    out.append({"what": "peak RSS vs VictoriaMetrics", "target": "0.2",
                "ratio": ratio(get("strata", "ingest", "peak_rss_bytes"), get(vm, "ingest", "peak_rss_bytes"))})
    peers = [x for x in (get(vm, "query_latency_s", "all_types", "p50"),
                         get("prometheus", "query_latency_s", "all_types", "p50")) if x]
    out.append({"what": "query p50 (all 10 types) vs the faster peer", "target": "0.2",
                "ratio": ratio(get("strata", "query_latency_s", "all_types", "p50"), min(peers) if peers else None)})
    pr = "prometheus"
    out.append({"what": "ingest CPU s per 1M samples vs Prometheus", "target": "-",
                "ratio": ratio(get("strata", "ingest", "cpu_s_per_1m_samples"), get(pr, "ingest", "cpu_s_per_1m_samples"))})
    out.append({"what": "bytes on disk per sample vs Prometheus", "target": "-",
                "ratio": ratio(get("strata", "disk", "bytes_per_sample"), get(pr, "disk", "bytes_per_sample"))})
    out.append({"what": "peak RSS vs Prometheus", "target": "-",
                "ratio": ratio(get("strata", "ingest", "peak_rss_bytes"), get(pr, "ingest", "peak_rss_bytes"))})
    out.append({"what": "query p50 (all 10 types) vs Prometheus", "target": "-",
                "ratio": ratio(get("strata", "query_latency_s", "all_types", "p50"), get(pr, "query_latency_s", "all_types", "p50"))})
    return out


def write_docs(path, report, tables):
    main, cross, gl = tables
    p = report["params"]
    m = report["machine"]
    v = report["versions"]
    lines = []
    lines.append("# Benchmarks: strata vs Prometheus and VictoriaMetrics")
    lines.append("")
    lines.append("Generated by `%s` on %s. Do not edit by hand: run it again." % (report["command"], report["date"]))
    lines.append("")
    lines.append("Machine: %d cores (`nproc`), %s, %.1f GiB RAM, Linux %s; load average %.2f when the run "
                 "started (other builds share the machine, so timings are noisy lower bounds)." % (
                     m["nproc"], m["cpu"], m["mem_gib"], m["kernel"], m["loadavg_at_start"]))
    lines.append("Versions: strata `%s`, %s, %s (Debian packages)." % (v["strata"], v["prometheus"], v["victoria-metrics"]))
    lines.append("")
    lines.append("Data: `strata-load` backfill of a simulated GPU cluster: %d workloads on %d nodes (8 GPUs each), "
                 "%d active series, %d h of 15 s samples = %s samples, sent to each system with the same flags "
                 "(same batches, RW 1.0, at most 2000 series per request, as many per slot on both workers, one sample per series, concurrency 2): `%s`." % (
                     p["workloads"], p["nodes"], p["series"], p["hours"], "{:,}".format(p["samples"]), p["load_command"]))
    lines.append("Each system runs alone (started, loaded, made durable, queried, stopped, then the next), "
                 "so they never compete for the cores.")
    lines.append("")
    lines.append("## Results")
    lines.append("")
    lines.append(main)
    lines.append("")
    lines.append("## Goals (strata / peer; printed, not pass/fail)")
    lines.append("")
    lines.append(gl)
    lines.append("")
    lines.append("## Cross-check")
    lines.append("")
    lines.append("Every point of every strata answer (%d workloads x 10 types x 3 ranges: the last hour and the whole "
                 "range at numberOfSamples=1000, and the whole range at numberOfSamples=40, whose buckets hold many "
                 "samples each) against the same bucket from both peers. `points` counts the comparisons with VictoriaMetrics. `failures` must be 0; the run "
                 "exits 1 otherwise." % len(report["plan"]["workloads"]))
    lines.append("")
    lines.append(cross)
    lines.append("")
    lines.append(METHOD_DOC)
    lines.append("")
    lines.append("## PromQL used, per metric type")
    lines.append("")
    lines.append("`<sel>` is the workload's selector: `namespace=\"<ns>\",pod=~\"<pod1>|<pod2>\",workload_id=\"\"` "
                 "for series joined through `runai_pod_info` (no `workload_id` label: strata's pod join), or "
                 "`workload_id=\"<id>\"` for series that carry it; plus the type's own label conditions. "
                 "`<w>` is the bucket width in ms (`3600ms` for 1 h / 1000, `10800ms` for 3 h / 1000, `270000ms` for 3 h / 40). "
                 "query_range runs with `start` = strata's first bucket end, `end` = strata's `end`, `step` = w.")
    lines.append("")
    lines.append("| metricType | selector | Prometheus | VictoriaMetrics |")
    lines.append("| --- | --- | --- | --- |")
    for e in CATALOG:
        d = doc_promql(e)
        sel = e["sel"].replace("{ns}", "<ns>").replace("{pods}", "<pods>").replace("{wid}", "<id>")
        lines.append("| %s | `%s` | `%s` | `%s` |" % (e["type"], sel.replace("|", "\\|"),
                                                   d["prom"].replace("|", "\\|"),
                                                   d.get("vm", d["prom"]).replace("|", "\\|")))
    lines.append("")
    lines.append("Counter types are also queried on Prometheus with its own, extrapolating `increase(x{<sel>}[<w>])` "
                 "(divided by w for CPU_USAGE_CORES) for the reported-only column above. At 40 buckets the "
                 "Prometheus counter expression is the subquery form described above.")
    lines.append("")
    kept = "\n".join(m[2] for m in doc_sections(path))
    with open(path, "w") as f:
        f.write("\n".join(lines))
        if kept:
            f.write("\n" + kept)


# docs/benchmarks.md holds sections other runs write (`make bench-peers PEERS_SCALE=day`,
# `make bench-scale`), each between <!-- begin KEY --> and <!-- end KEY --> lines.  The full
# run rewrites the file and keeps them, at the end, in their order.
def doc_sections(path):
    """[(key, start offset, text with its marker lines)] of the kept sections in path."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    out, pos = [], 0
    while True:
        b = text.find("<!-- begin ", pos)
        if b < 0:
            return out
        key = text[b + 11:text.find(" -->", b)]
        tail = "<!-- end %s -->\n" % key
        e = text.find(tail, b)
        if e < 0:
            return out
        out.append((key, b, text[b:e + len(tail)]))
        pos = e + len(tail)


def put_doc_section(path, key, body):
    """Writes body as section KEY of path: in place of the old one, else at the end."""
    with open(path) as f:
        text = f.read()
    new = "<!-- begin %s -->\n%s\n<!-- end %s -->\n" % (key, body.rstrip("\n"), key)
    for k, start, old in doc_sections(path):
        if k == key:
            text = text[:start] + new + text[start + len(old):]
            break
    else:
        text = text.rstrip("\n") + "\n\n" + new
    with open(path, "w") as f:
        f.write(text)


def write_day_docs(path, report, tables):
    """The "Scale: day" section of docs/benchmarks.md."""
    main, cross, gl = tables
    p, m, v = report["params"], report["machine"], report["versions"]
    fails = sum(c.get("failures", 0) for c in report["crosscheck"].values())
    points = sum(c.get("points", 0) for c in report["crosscheck"].values())
    L = ["## Scale: day", "",
         "Generated by `%s` on %s (strata `%s`; load average %.2f at the start on %d cores). The same cluster "
         "as above (%d workloads, %d nodes, %d active series) over %d h: %s samples per system, sent as %s. "
         "At 3 h the per-series costs (index, head, symbols) weigh on every figure; at 24 h they are "
         "spread over 8x the samples. strata-load resets a workload's counters once per simulated day: "
         "%d of the %d queried workloads have that reset inside the range. "
         "Query ranges: the last hour (3.6 s buckets) and the whole day at numberOfSamples=1000 "
         "(86.4 s buckets, 5-6 samples each: the Prometheus counter expression is the subquery form) "
         "and 40 (36 min buckets)." % (
             report["command"], report["date"], v["strata"], m["loadavg_at_start"], m["nproc"],
             p["workloads"], p["nodes"], p.get("series", 0), p["hours"], "{:,}".format(p.get("samples", 0)),
             "`%s`" % p.get("load_command", "?"),
             sum(1 for w in report["plan"].get("workloads", []) if w.get("counter_reset_in_range")),
             len(report["plan"].get("workloads", []))),
         "", main, "", "Goals (strata / peer):", "", gl, "",
         "Cross-check: %d points compared with %s, %d failures%s." % (
             points, " and ".join(s for s in ("victoria-metrics", "prometheus") if s in report["systems"]) or "no peer",
             fails, "" if not report["errors"] else "; errors: " + "; ".join(report["errors"][:3])),
         ""]
    if "prometheus" not in report["systems"]:
        L += ["Prometheus was not run in this one (`PEERS_SYSTEMS=%s`)%s." % (
            ",".join(report["systems"]), (": " + report["note"]) if report.get("note") else ""), ""]
    put_doc_section(path, "bench-peers-day", "\n".join(L))


METHOD_DOC = """## How it is measured, and why

- **Ingest**: wall time and samples/s as `strata-load` reports them (until the last batch is
  acknowledged). Server CPU = utime + stime of the server process (`/proc/PID/stat`) over the
  load, per million samples. Peak RSS = `VmHWM` of the server right after the load; per active
  series = that / the series count.
- **WAL after ingest**: strata `wal/`; Prometheus `wal/` + `chunks_head/` (the head chunks it
  memory-maps to disk); VictoriaMetrics has no WAL (it buffers recent rows in memory and flushes
  small parts every second), so its whole data dir is shown there.
- **Durable and compressed** ("blocks"): strata `POST /api/v1/admin/cut-head` (the whole head cut
  into a block, WAL checkpointed; added for this benchmark), then `blocks/`; VictoriaMetrics
  `/internal/force_flush`, then waiting until `vm_active_merges` is 0, the files hold at least
  the `vm_data_size_bytes` it reports (1.79 keeps freshly flushed small parts in memory until a
  merge writes them out) and the size is unchanged for 3 s, then `data/` + `indexdb/`; Prometheus `POST /api/v1/admin/tsdb/snapshot?skip_head=false`
  (`--web.enable-admin-api`), which writes the head as a compressed block: the snapshot dir.
  Bytes per sample = those bytes (index included) / samples sent. Apparent sizes, hard links once.
- **Queries**: strata `GET /api/v1/workloads/{id}/metrics?metricType=<10 types>&numberOfSamples=1000`
  over the last hour and over the whole range, for several running workloads (inference first,
  where all 10 types have data, then training, then workspaces), repeated; the peers answer the
  same with one `query_range` per type (the "all 10 types" latency of a peer is the sum of its 10
  sequential queries, what a client needs for the same answer). Per-type latencies come from
  single-type requests on strata. Keep-alive HTTP from Python on loopback, the same client for all.
- **Which workloads**: running ones (their pods are placed), inference first (all 10 types have
  data there), then training, then workspaces, alternating. strata-load resets all counters of a
  workload's pods once per simulated day, so a 3 h range holds a reset for about one workload in
  eight; after the first system (strata) is loaded, its `/api/v1/export` tells which workloads'
  counters drop inside the range, and those go first in each type, so the cross-check exercises
  reset handling. The resets column counts the resets (Prometheus `resets()`) in the checked series.
- **Bucket alignment**: strata's bucket i covers (start+(i-1)w, start+iw] and is stamped at its end.
  A PromQL range selector `[w]` evaluated at t covers (t-w, t] in VictoriaMetrics and [t-w, t] in
  Prometheus 2.42 (left-closed until Prometheus 3). So the peers are asked for `start+w .. end`
  at `step=w`, and every range starts 300 ms after a whole second: with 15 s samples and widths of
  3.6 s or 10.8 s, no sample can fall on a bucket edge (that needs an offset that is a multiple
  of 600 ms), so the closed-left edge never matters. `w` divides the range exactly (whole ms), so
  the stamps agree exactly.
- **avg / max / last** within a step = `avg_over_time`, `max_over_time`, `last_over_time` over `[w]`.
  Across series: `sum`, or `avg by (gpu, node)` for per-GPU types (strata averages the series of one
  GPU). GPU memory is MiB x 1048576 on the per-step average, as strata.
- **Counters** (rate, increase, histogram buckets): strata never extrapolates: a bucket's increase is
  its last sample minus the last sample before it, reset-aware. VictoriaMetrics' `increase(x[w])`
  does the same when the sample before the window is within its max-prev-interval (1.5 x the
  scrape interval for 15 s data; the sample before is always 15 s earlier here). Its `rate()` would
  widen a window smaller than the scrape interval, so rate is `increase(x[w]) / w` on both peers.
  VictoriaMetrics' `increase()` also answers 0 for a window without any sample (it assumes the
  value did not change), where strata omits the empty bucket, so its query is
  `increase(x[w]) and count_over_time(x[w])`: only windows holding a sample.
  Prometheus' `increase()` extrapolates to the window edges and needs two samples in the window,
  which a bucket narrower than the scrape interval never has, so on Prometheus the failing check uses
  an exact expression instead: `(last_over_time(x[w]) - x offset w) >= 0 or (last_over_time(x[w]) * 1)`
  (this sample minus the one before; this sample alone after a reset; `* 1` drops the metric
  name, which Prometheus 2.42's `last_over_time` keeps). That is exact while a bucket holds at
  most one sample (the 1000-bucket ranges). For the 40-bucket range it is evaluated with w = 15 s
  at every 15 s grid point inside the bucket by a subquery and summed:
  `sum_over_time(<that, w=15s>[<w>:15s])`. Samples sit exactly on the 15 s grid here (the data
  starts on a whole minute), so every grid point is a sample and its 15 s window (closed on the
  left in 2.42) holds it and the one before; bucket edges are 300 ms off the grid, so each sample
  counts in one bucket. That is strata's increase whenever consecutive samples are 15 s apart.
- **Tolerances**: Prometheus computes in float64 like strata: relative 1e-9 (the difference is
  summation order). VictoriaMetrics stores values as decimals with about 12 significant digits, so
  a counter's increase carries rounding proportional to the counter's size, not to the increase:
  allowed |strata - VM| <= 1e-11 x |value| + 2e-11 x M, M = the sum over the selected series of their
  largest value in the range (from Prometheus, exact; divided by w for rates). Gauges: 1e-11 x |value|.
  A point present on one side only is a failure too.
- **VictoriaMetrics flags**: `-search.disableCache` (every query computed from the data: no rollup
  result cache, and no alignment of start/end to the step, which the cache would force) and
  `-search.latencyOffset=0s` (recent points not hidden). Staleness/lookback flags do not matter:
  every query names its window. Prometheus runs with defaults plus the remote-write receiver and
  the admin API (5 m lookback, used by `x offset w`)."""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--scale", default="full", choices=sorted(SCALES))
    ap.add_argument("--json", default=None, help="write the results here (default BUILD/bench-peers[-ci].json)")
    ap.add_argument("--docs", default=None, help="regenerate this markdown file (docs/benchmarks.md)")
    ap.add_argument("--systems", default="strata,victoria-metrics,prometheus")
    args = ap.parse_args()
    for k, v in SCALES[args.scale].items():
        setattr(args, k, v)
    if args.json is None:
        args.json = os.path.join(args.build, "bench-peers%s.json" % ("" if args.scale == "full" else "-" + args.scale))

    now_ms = int(time.time() * 1000)
    # Data [t0, t0 + hours), ending 2-3 minutes before now; t0 on a whole minute.
    args.t0_ms = ((now_ms - args.hours * 3600_000 - 120_000) // 60_000) * 60_000
    end_ms = args.t0_ms + args.hours * 3600_000 + OFFSET_MS
    # (start, end, numberOfSamples, timed).  The untimed coarse range puts many
    # samples in each bucket (4.5 min for 3 h), so avg/max/last/increase are
    # checked on real aggregation, not only on one sample per bucket.
    ranges = {"1h": (end_ms - 3600_000, end_ms, N_SAMPLES, True),
              "whole": (args.t0_ms + OFFSET_MS, end_ms, N_SAMPLES, True),
              "whole/40": (args.t0_ms + OFFSET_MS, end_ms, 40, False)}
    for s, e, n, _ in ranges.values():
        assert (e - s) % n == 0 and all((s - args.t0_ms + i * (e - s) // n) % (SCRAPE_S * 1000)
                                        for i in range(n + 1)), "a bucket edge on a sample"
    wl = cluster_catalog(args)
    log("scale=%s: %d workloads, %d nodes, %d h from %s" % (
        args.scale, args.workloads, args.nodes, args.hours, rfc3339(args.t0_ms)))

    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "make bench-peers" + ("" if args.scale == "full" else " PEERS_SCALE=" + args.scale),
        "machine": machine(), "versions": versions(args),
        "params": {"scale": args.scale, "workloads": args.workloads, "nodes": args.nodes, "hours": args.hours,
                   "t0": rfc3339(args.t0_ms), "numberOfSamples": N_SAMPLES, "repeats": args.repeats},
        "plan": {"ranges": {k: {"start": rfc3339(v[0]), "end": rfc3339(v[1]), "numberOfSamples": v[2],
                                "timed": v[3]} for k, v in ranges.items()}},
        "systems": {}, "errors": [],
    }
    answers = {}
    plan = None
    tmp = tempfile.mkdtemp(prefix="strata-bench-peers-")
    classes = {"strata": Strata, "victoria-metrics": Victoria, "prometheus": Prometheus}
    try:
        for name in args.systems.split(","):
            sysobj = classes[name](args, tmp)
            res = report["systems"].setdefault(name, {})
            try:
                log("%s: starting" % name)
                sysobj.start()
                log("%s: ingesting" % name)
                samples = ingest(sysobj, args, res)
                report["params"]["samples"] = samples
                report["params"]["series"] = res["ingest"]["series"]
                report["params"]["load_command"] = res["load_command"]
                log("%s: %d samples in %.1f s; making durable" % (name, samples, res["ingest"]["load_elapsed_s"]))
                durable(sysobj, res, samples)
                log("%s: %s bytes in blocks" % (name, "{:,}".format(res["disk"]["block_bytes"])))
                if plan is None:
                    # chosen once, from the first system's data, before anything is queried
                    resets = reset_workloads(sysobj.port, wl, args.t0_ms, end_ms) if name == "strata" else set()
                    picked = pick_workloads(wl, args.query_workloads, resets)
                    plan = {"workloads": [(w, wl[w]) for w in picked], "ranges": ranges}
                    report["plan"]["workloads"] = [{"id": w, "name": wl[w]["name"], "type": wl[w]["type"],
                                                    "counter_reset_in_range": w in resets} for w in picked]
                    log("query workloads: %s (%d of the cluster's workloads have a counter reset in range)" % (
                        ", ".join(wl[w]["name"] + ("*" if w in resets else "") for w in picked), len(resets)))
                log("%s: querying" % name)
                errs = run_queries(sysobj, args, plan, res, answers)
                for e in errs[:3]:
                    log("%s: QUERY ERROR: %s" % (name, e))
                report["errors"].extend(errs[:3])
            except Failure as e:
                log("%s: FAILED: %s" % (name, e))
                report["errors"].append(str(e))
            finally:
                sysobj.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if plan is None:
        plan = {"workloads": [], "ranges": ranges}
        report["plan"]["workloads"] = []
    cross, failures = compare(plan, answers)
    report["crosscheck"] = cross
    report["crosscheck_failures"] = failures[:200]
    report["goals"] = goals(report)
    if "strata" in report["systems"] and not any(k[0] == "strata" for k in answers) and not report["errors"]:
        report["errors"].append("no strata answers to cross-check")
    if not any(k[0] == "strata" for k in answers):
        # Without strata's answers, at least check the peers' PromQL against each other.
        selfc, selff = compare(plan, answers, ref="prometheus")
        report["peer_selfcheck"] = selfc
        report["peer_selfcheck_failures"] = selff[:200]
        print("peer self-check (Prometheus vs VictoriaMetrics, same PromQL semantics): %d points, %d failures" % (
            sum(c["points"] for c in selfc.values()), len(selff)))
        for t, c in selfc.items():
            print("  %-34s points %6d  max rel %.3g  failures %d" % (t, c["points"], c["victoria-metrics"], c["failures"]))
        for f in selff[:10]:
            print("  " + f)
    tables = build_tables(report)

    print("\n== bench-peers (%s): %d series, %s samples per system, %s\n" % (
        args.scale, report["params"].get("series", 0), "{:,}".format(report["params"].get("samples", 0)),
        report["date"]))
    print(tables[0])
    print("\n== goals (strata / peer)\n")
    print(tables[2])
    print("\n== cross-check (largest relative difference per metric type)\n")
    print(tables[1])
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    print("\nJSON: %s" % args.json)
    if args.docs:
        (write_day_docs if args.scale == "day" else write_docs)(args.docs, report, tables)
        print("docs: %s" % args.docs)
    bad = report["errors"] or failures
    if failures:
        print("\nCROSS-CHECK FAILED: %d differing points; first ones:" % len(failures))
        for f in failures[:20]:
            print("  " + f)
    for e in report["errors"]:
        print("\nFAILED: " + e)
    if bad:
        print("\nbench-peers: FAILED")
        return 1
    print("\nbench-peers: cross-check passed (%d points per peer)" % sum(c["points"] for c in cross.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
