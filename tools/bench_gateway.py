#!/usr/bin/env python3
"""bench_gateway.py: the scale-out gateway's cost (make bench-gateway; docs/scale-out.md).

Write path: strata-load pushes as fast as accepted for BENCH_SECONDS (default 15) into
  1. strata alone (local ingest),
  2. strata with --remote-write-url to a real victoria-metrics (shipping while ingesting),
  3. the same with victoria-metrics stopped while strata-load pushes for BENCH_OUTAGE_SECONDS
     (default BENCH_SECONDS; --remote-queue-max-bytes=0, so nothing is refused), then started:
     the catch-up.
Prints strata's CPU per million samples ingested (including shipping), its RSS per series, and
the catch-up rate (samples the engine acknowledged per second from the moment it answers
again).  The pushed cluster is strata-load --workloads=BENCH_WORKLOADS (40) --nodes=BENCH_NODES
(8): 3,523 series.

Read path, on the bench-query data (tools/bench_query.py: one 8-GPU workload, 15 s scrapes,
BENCH_READ_DAYS of history, default 7 as bench-query; 1 for a quick run): the same strata-load
backfill (same --start and seed) goes into a local-store strata and straight into a fresh
victoria-metrics' remote-write endpoint; a gateway with no data and --remote-query-url at that
engine then answers GET /api/v1/workloads/{id}/metrics for 10 metric types at
numberOfSamples=1000 over the last 1h, 24h (and the whole range when longer), BENCH_READ_RUNS
times each (default 20, after 3 warm-up runs) on each side.  Prints p50/p99 per range, local
and gateway, their ratio, the CPU per query of strata (local; gateway) and of the engine, and
whether the two answers are equal.
BENCH_PHASES=write,read (default both) picks the parts; `outage` alone runs only 3.  For the
issue's 5-minute outage: BENCH_PHASES=outage BENCH_OUTAGE_SECONDS=300 (BENCH_OUTAGE_RATE caps
strata-load's samples/s during it).  Figures only, nothing asserted.
Everything on 127.0.0.1 with temp dirs; every process is stopped at the end.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from strata_client import Server, free_port, iso, metric_value  # noqa: E402

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build"
SECONDS = os.environ.get("BENCH_SECONDS", "15")
OUTAGE = os.environ.get("BENCH_OUTAGE_SECONDS", SECONDS)
OUTAGE_RATE = os.environ.get("BENCH_OUTAGE_RATE", "")
READ_DAYS = int(os.environ.get("BENCH_READ_DAYS", "7"))
READ_RUNS = int(os.environ.get("BENCH_READ_RUNS", "20"))
PHASES = os.environ.get("BENCH_PHASES", "write,read").split(",")
CLUSTER = ["--workloads=" + os.environ.get("BENCH_WORKLOADS", "40"), "--nodes=" + os.environ.get("BENCH_NODES", "8")]
LOAD = os.path.join(BUILD, "strata-load")
TYPES = ["GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES",
         "CPU_REQUEST_CORES", "CPU_LIMIT_CORES", "POD_COUNT", "RUNNING_POD_COUNT", "GPU_ALLOCATION",
         "NVLINK_BANDWIDTH_TOTAL"]
tmp = tempfile.mkdtemp(prefix="strata-bench-gw-")
vm_port = free_port()
vm = None
vm_dir = os.path.join(tmp, "vm")


def vm_start():
    global vm
    vm = subprocess.Popen(["/usr/bin/victoria-metrics", "-storageDataPath=" + vm_dir, "-retentionPeriod=100y",
                           "-httpListenAddr=127.0.0.1:%d" % vm_port, "-loggerLevel=ERROR"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            if urllib.request.urlopen("http://127.0.0.1:%d/health" % vm_port, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("victoria-metrics did not start")


def vm_stop():
    if vm and vm.poll() is None:
        vm.send_signal(signal.SIGTERM)
        vm.wait()


def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def run(name, remote, outage):
    extra = ["--remote-write-url=http://127.0.0.1:%d/api/v1/write" % vm_port] if remote else []
    if outage:
        extra.append("--remote-queue-max-bytes=0")
    s = Server(os.path.join(tmp, name), extra=extra, build=BUILD)
    try:
        if outage:
            vm_stop()
        c0 = cpu(s.proc.pid)
        t_push = time.time()
        subprocess.run([LOAD, "--url=" + s.url + "/api/v1/write", "--max-throughput",
                        "--duration=" + (OUTAGE if outage else SECONDS), "--quiet", "--concurrency=2"] + CLUSTER + (["--rate=" + OUTAGE_RATE] if outage and OUTAGE_RATE else []),
                       check=False)
        t_push = time.time() - t_push
        c1 = cpu(s.proc.pid)
        if outage:
            m = s.get("/metrics")[2]
            backlog = metric_value(m, "strata_remote_queue_bytes") or 0
            vm_start()
        t0 = time.time()
        while remote and metric_value(s.get("/metrics")[2], "strata_remote_queue_bytes") != 0:
            time.sleep(0.1)
        catch = time.time() - t0
        c2 = cpu(s.proc.pid)
        m = s.get("/metrics")[2]
        n = metric_value(m, "strata_ingested_samples_total") or 1
        shipped = metric_value(m, "strata_remote_samples_shipped_total") or 0
        series = metric_value(m, "strata_active_series") or 1
        with open("/proc/%d/status" % s.proc.pid) as fh:
            rss = [int(x.split()[1]) for x in fh if x.startswith("VmRSS")][0]
        print("%-28s ingested %10.0f  shipped %10.0f  in %.1f s  strata CPU per 1M samples %.2f s, RSS %d MiB "
              "(%.0f B per series of %d)" % (name, n, shipped, t_push, (c2 - c0) / n * 1e6, rss // 1024,
                                             rss * 1024.0 / series, series), flush=True)
        if outage:
            print("%-28s engine down %.0f s, backlog %.0f MiB of WAL; catch-up %.1f s, %.0f samples/s, "
                  "shipper CPU %.2f s per 1M samples" % ("", t_push, backlog / 1048576.0, catch,
                                                         shipped / catch if catch else 0,
                                                         (c2 - c1) / max(shipped, 1) * 1e6), flush=True)
    finally:
        s.stop()


def backfill(url, start):
    t0 = time.time()
    r = subprocess.run([LOAD, "--url=" + url, "--workloads=1", "--nodes=1", "--backfill=%d" % (READ_DAYS * 24),
                        "--start=%d" % start, "--seed=1", "--samples-per-series=240", "--batch-size=96",
                        "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("strata-load into %s: exit %d: %s" % (url, r.returncode, r.stdout[-800:]))
    return time.time() - t0


def settle(srv, quiet_s=3.0, max_s=180.0):
    """Waits until the local store stops cutting blocks (as bench-query does)."""
    t0 = time.time()
    last, since = metric_value(srv.get("/metrics")[2], "strata_blocks"), time.time()
    while time.time() - t0 < max_s:
        time.sleep(0.5)
        b = metric_value(srv.get("/metrics")[2], "strata_blocks")
        if b != last:
            last, since = b, time.time()
        elif time.time() - since >= quiet_s:
            break


def timed(srv, path):
    """(status, body, latencies ms, strata CPU ms per query, engine CPU ms per query)."""
    for _ in range(3):
        srv.get(path)
    lat = []
    c0, e0 = cpu(srv.proc.pid), cpu(vm.pid)
    for _ in range(READ_RUNS):
        t = time.perf_counter()
        st, _, body = srv.get(path)
        lat.append((time.perf_counter() - t) * 1000)
    return (st, body, lat, (cpu(srv.proc.pid) - c0) * 1000 / READ_RUNS, (cpu(vm.pid) - e0) * 1000 / READ_RUNS)


def reads():
    global vm_dir
    vm_dir = os.path.join(tmp, "vm-read")   # a fresh engine: nothing of the write phases in it
    vm_start()
    now = int(time.time())
    start = (now - READ_DAYS * 86400) // 15 * 15     # data up to now: the workload is live
    local = Server(os.path.join(tmp, "read-local"), extra=["--retention=30d"], build=BUILD)
    gw = None
    try:
        tl = backfill(local.url + "/api/v1/write", start)
        te = backfill("http://127.0.0.1:%d/api/v1/write" % vm_port, start)
        urllib.request.urlopen("http://127.0.0.1:%d/internal/force_flush" % vm_port, timeout=30).read()
        print("read path: %d day(s) of 1 workload (8 GPUs, 15 s) backfilled: local strata %.1f s, "
              "victoria-metrics %.1f s" % (READ_DAYS, tl, te), flush=True)
        settle(local)
        gw = Server(os.path.join(tmp, "read-gw"), build=BUILD,
                    extra=["--retention=30d", "--remote-query-url=http://127.0.0.1:%d" % vm_port,
                           "--remote-query-flavor=victoriametrics", "--query-timeout=120s"])
        wid = local.get_json("/api/v1/workloads")[1]["workloads"][0]["id"]
        deadline = time.time() + 60
        while gw.get("/api/v1/workloads/" + wid)[0] != 200 and time.time() < deadline:
            time.sleep(0.5)
        end = (now - 60) // 3600 * 3600                  # a whole hour with data, as bench-query's
        ranges = [("1h", 1), ("24h", 24)] + ([("%dd" % READ_DAYS, 24 * READ_DAYS - 1)] if READ_DAYS > 1 else [])
        print("workload %s; %d metric types per request, numberOfSamples=1000, %d runs per range per side"
              % (wid, len(TYPES), READ_RUNS))
        print("%-5s %10s %10s %10s %10s %6s %6s %21s %7s %s" % (
            "range", "local p50", "local p99", "gw p50", "gw p99", "p50 x", "p99 x", "CPU ms/q local;gw;VM",
            "status", "same"))
        for name, hours in ranges:
            s = end - hours * 3600
            path = "/api/v1/workloads/%s/metrics?metricType=%s&start=%s&end=%s&numberOfSamples=1000" % (
                wid, ",".join(TYPES), iso(s * 1000), iso(end * 1000))
            sl, bl, ll, cl, _ = timed(local, path)
            sg, bg, lg, cg, ce = timed(gw, path)
            try:
                same = "yes" if json.loads(bl) == json.loads(bg) else "no"
            except ValueError:
                same = "?"
            print("%-5s %8.1fms %8.1fms %8.1fms %8.1fms %6.1f %6.1f %21s %3d/%3d %s" % (
                name, pct(ll, 50), pct(ll, 99), pct(lg, 50), pct(lg, 99), pct(lg, 50) / pct(ll, 50),
                pct(lg, 99) / pct(ll, 99), "%.1f;%.1f;%.1f" % (cl, cg, ce), sl, sg, same), flush=True)
            if sg != 200:
                print("  " + bg[:300].decode(errors="replace"))
    finally:
        for s in (gw, local):
            if s:
                s.stop()
        vm_stop()


try:
    if "write" in PHASES or "outage" in PHASES:
        vm_start()
        if "write" in PHASES:
            run("local ingest", 0, 0)
            run("ingest + shipping", 1, 0)
        run("ingest, engine down, catch-up", 1, 1)
        vm_stop()
    if "read" in PHASES:
        reads()
finally:
    vm_stop()
    shutil.rmtree(tmp, ignore_errors=True)
