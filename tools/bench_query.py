#!/usr/bin/env python3
"""bench_query.py BUILD: latency of GET /api/v1/workloads/{id}/metrics through the real daemon.

One 8-GPU workload (strata-load --workloads=1 --nodes=1: one Training pod of 8 GPUs, 96 series)
with 7 days of 15 s data is backfilled into a fresh strata (temp dir, --auth=none, loopback),
then one request asking for 10 metric types at numberOfSamples=1000 is timed over the last
1 h, 24 h and 7 d (and BENCH_DAYS when it is not 7: BENCH_DAYS=30 adds 30 d) (BENCH_RUNS times
each, default 50, after 3 warm-up runs), on one kept-alive
connection; plus 7 d at numberOfSamples=672 (15-min buckets on the rollup grid; 1-h buckets
beyond 10 days, numberOfSamples being at most 1000) to show what
reading 5-min rollups instead of raw samples costs (at BENCH_DAYS, over the whole range). Prints p50/p99 wall-clock latency, the X-Strata-Points-Read of the request, the
bucket width and the answer size. Figures only, nothing asserted (make bench-query).
Environment: BENCH_DAYS (7), BENCH_RUNS (50), BENCH_KEEP=1 keeps the data dir.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from strata_client import Server, iso  # noqa: E402

TYPES = ["GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES",
         "CPU_REQUEST_CORES", "CPU_LIMIT_CORES", "POD_COUNT", "RUNNING_POD_COUNT", "GPU_ALLOCATION",
         "NVLINK_BANDWIDTH_TOTAL"]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def gauge(srv, name):
    for line in srv.get("/metrics")[2].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def settle(srv, quiet_s=3.0, max_s=180.0):
    """Waits until the store stops cutting blocks (strata_blocks unchanged for quiet_s), so the
    background cut of the backfilled head does not share the CPU with the timed queries."""
    t0 = time.time()
    last, since = gauge(srv, "strata_blocks"), time.time()
    while time.time() - t0 < max_s:
        time.sleep(0.5)
        b = gauge(srv, "strata_blocks")
        if b != last:
            last, since = b, time.time()
        elif time.time() - since >= quiet_s:
            break
    print("store settled after %.1f s: %d blocks, %d samples in the head"
          % (time.time() - t0, last or 0, gauge(srv, "strata_head_samples") or 0))


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    days = int(os.environ.get("BENCH_DAYS", "7"))
    runs = int(os.environ.get("BENCH_RUNS", "50"))
    tmp = tempfile.mkdtemp(prefix="strata-bench-query-")
    srv = None
    try:
        srv = Server(os.path.join(tmp, "data"), None, ["--retention=%dd" % max(30, days + 2)], build=build)
        t0 = time.time()
        load = subprocess.run(
            [os.path.join(build, "strata-load"), "--url=%s/api/v1/write" % srv.url, "--workloads=1", "--nodes=1",
             "--backfill=%d" % (days * 24), "--samples-per-series=240", "--batch-size=96", "--quiet"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        load_s = time.time() - t0
        summary = [l for l in load.stdout.decode(errors="replace").splitlines() if l.startswith("strata-load: mode")]
        print("backfill: %d days of 1 workload (8 GPUs) in %.1f s, exit %d" % (days, load_s, load.returncode))
        for l in summary:
            print("  " + l)
        if load.returncode != 0:
            print(load.stdout.decode(errors="replace")[-2000:])
            return 1
        st, body = srv.get_json("/api/v1/workloads")
        wid = body["workloads"][0]["id"]
        end = int(time.time()) // 60 * 60 * 1000 - 60000   # a whole minute with data just before it
        results = []
        # end on a whole hour so the aligned variant's 15-min buckets sit on the rollup grid
        end = end // 3600000 * 3600000
        settle(srv)
        print("workload %s; %d metric types per request, numberOfSamples=1000, %d runs per range"
              % (wid, len(TYPES), runs))
        print("%-7s %9s %8s %8s %10s %12s %10s %6s" % ("query", "bucket", "p50 ms", "p99 ms", "CPU ms/q",
                                                        "points read", "answer B", "status"))
        long_ = "%dd" % days
        plan = [("1h", 1, 1000), ("24h", 24, 1000)]
        if days > 7:
            plan.append(("7d", 24 * 7, 1000))
        # the aligned variant: 15-min buckets, or 1-h ones where those would pass numberOfSamples' 1000
        aligned = 24 * days * 4 if 24 * days * 4 <= 1000 else 24 * days
        plan += [(long_, 24 * days, 1000), ("%s/%d" % (long_, aligned), 24 * days, aligned)]
        for name, hours, n in plan:
            start = end - hours * 3600000
            path = "/api/v1/workloads/%s/metrics?metricType=%s&start=%s&end=%s&numberOfSamples=%d" % (
                wid, ",".join(TYPES), iso(start), iso(end), n)
            lat = []
            for i in range(3):
                srv.get(path)
            c0 = cpu_s(srv.proc.pid)
            for i in range(runs):
                t = time.perf_counter()
                st, hdrs, data = srv.get(path)
                lat.append((time.perf_counter() - t) * 1000)
            cpu_ms = (cpu_s(srv.proc.pid) - c0) * 1000 / runs
            pts = hdrs.get("x-strata-points-read", "?")
            results.append((name, pct(lat, 50), pct(lat, 99), pts))
            print("%-7s %8.1fs %8.2f %8.2f %10.2f %12s %10d %6d" % (name, hours * 3600.0 / n, pct(lat, 50),
                                                                   pct(lat, 99), cpu_ms, pts, len(data), st))
            if st != 200:
                print("  " + data[:300].decode(errors="replace"))
        p99 = {n: b for n, _, b, _ in results}
        for name in sorted({"7d", long_} & set(p99), key=len):
            print("%s p99 / 1h p99 = %.2f" % (name, p99[name] / p99["1h"]))
        with open("/proc/%d/status" % srv.proc.pid) as fh:
            rss = [l.split()[1] for l in fh if l.startswith("VmRSS")]
        print("strata RSS after the runs: %s kB" % (rss[0] if rss else "?"))
        return 0
    finally:
        if srv:
            srv.stop()
        if os.environ.get("BENCH_KEEP") == "1":
            print("data kept in " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
