#!/usr/bin/env python3
"""bench_promql.py: `make bench-promql`, strata's PromQL engine side by side with Prometheus 2.42
and VictoriaMetrics on the bench-peers data.  Figures are printed, nothing is asserted.

The data and the systems are tools/bench_peers.py's (imported, not copied): strata-load backfills
the same simulated GPU cluster into each system in turn (one at a time, so they never compete
for the 2 cores), the data is made durable (strata cut-head, VictoriaMetrics force_flush,
Prometheus snapshot), then a fixed set of dashboard queries is timed as GET
/api/v1/query_range over the last 1h, 24h and 7d before the data's end, each at a Grafana-like
step (~240-340 points), repeated: p50 and p99 per system over a kept-alive connection.
The series count of every answer is printed next to the time, so an empty or failed answer is
visible (an error answer is timed but marked).

Scales (--scale): small (4 workloads, 1 node, 24 h of data; a few minutes), week (10 workloads,
2 nodes, 7 days: the 7d range then reads real data).  The issue's goals are printed, not
asserted: strata's p50 at most 1/3 of the faster peer's, and 7d no more than 3x the cost of 1h.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_peers as bp  # noqa: E402

SCALES = {
    "small": dict(workloads=4, nodes=1, hours=24, repeats=15),
    "week": dict(workloads=10, nodes=2, hours=168, repeats=9),
}
QUERIES = [
    ("sum_rate", 'sum by (namespace) (rate(container_cpu_usage_seconds_total{container!="",container!="POD"}[5m]))'),
    ("avg_over_time", "avg by (Hostname) (avg_over_time(DCGM_FI_DEV_GPU_UTIL[5m]))"),
    ("topk", "topk(5, avg_over_time(DCGM_FI_DEV_GPU_UTIL[5m]))"),
    ("histogram_quantile", "histogram_quantile(0.9, sum by (le) (rate(time_to_first_token_seconds_bucket[5m])))"),
    ("sum_gauge", "sum by (Hostname) (DCGM_FI_DEV_FB_USED) * 1048576"),
]
RANGES = [("1h", 3600, 15), ("24h", 86400, 300), ("7d", 7 * 86400, 1800)]


_balanced = bp.balanced_batch


def one_slot(nseries, workers=2, most=2000):
    """Every series in one request slot while they fit: bench-peers' two balanced slots drift
    apart over a day of backfill, and Prometheus refuses samples more than an hour behind its
    newest ("out of bounds")."""
    return nseries if nseries <= most else _balanced(nseries, workers, most)


bp.balanced_batch = one_slot


def timed(conn, q, start, end, step, repeats):
    path = "/api/v1/query_range?" + urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step})
    secs, series, err = [], None, None
    st, body, _ = conn.get(path)  # warm-up, not timed
    for _ in range(repeats):
        st, body, s = conn.get(path)
        secs.append(s)
    try:
        doc = json.loads(body)
        if st == 200 and doc.get("status") == "success":
            series = len(doc["data"]["result"])
        else:
            err = "%s %s" % (st, doc.get("errorType") or doc.get("message") or "")
    except ValueError:
        err = "%s (not JSON)" % st
    return {"p50": bp.pct(secs, 0.5), "p99": bp.pct(secs, 0.99), "series": series, "error": err}


def fmt(r):
    if r is None:
        return "-"
    s = "%s/%s" % (bp.ms(r["p50"]), bp.ms(r["p99"]))
    return s + (" ERR %s" % r["error"] if r["error"] else " (%s)" % r["series"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--scale", default="small", choices=sorted(SCALES))
    ap.add_argument("--systems", default="strata,prometheus,victoria-metrics")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    for k, v in SCALES[args.scale].items():
        setattr(args, k, v)
    now_ms = int(time.time() * 1000)
    args.t0_ms = ((now_ms - args.hours * 3600_000 - 120_000) // 60_000) * 60_000
    end_s = (args.t0_ms + args.hours * 3600_000) // 1000
    bp.cluster_catalog(args)  # sets args.nseries, as bench-peers does
    bp.log("bench-promql scale=%s: %d workloads, %d nodes, %d h, %d series" % (
        args.scale, args.workloads, args.nodes, args.hours, args.nseries))
    classes = {"strata": bp.Strata, "victoria-metrics": bp.Victoria, "prometheus": bp.Prometheus}
    results = {}
    tmp = tempfile.mkdtemp(prefix="strata-bench-promql-")
    try:
        for name in args.systems.split(","):
            s = classes[name](args, tmp)
            res = {}
            try:
                s.start()
                bp.log("%s: ingesting" % name)
                samples = bp.ingest(s, args, res)
                bp.durable(s, res, samples)
                bp.log("%s: %d samples; querying" % (name, samples))
                conn = bp.Conn(s.port)
                for qn, q in QUERIES:
                    for rn, secs, step in RANGES:
                        results[(name, qn, rn)] = timed(conn, q, end_s - secs, end_s, step, args.repeats)
                conn.close()
            except bp.Failure as e:
                bp.log("%s: FAILED: %s" % (name, e))
            finally:
                s.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    systems = args.systems.split(",")
    print("\n== bench-promql (%s: %d series, %d h of 15 s data), p50/p99 ms (series in the answer)\n"
          % (args.scale, args.nseries, args.hours))
    head = "| query | range | " + " | ".join(systems) + " |"
    print(head)
    print("|" + "---|" * (2 + len(systems)))
    for qn, q in QUERIES:
        for rn, _, step in RANGES:
            print("| %s | %s step %ds | %s |" % (qn, rn, step, " | ".join(fmt(results.get((s, qn, rn))) for s in systems)))
    print("\nqueries:")
    for qn, q in QUERIES:
        print("  %-20s %s" % (qn, q))
    if "strata" in systems:
        print("\ngoals (printed, not asserted):")
        for qn, _ in QUERIES:
            st = {rn: results.get(("strata", qn, rn)) for rn, _, _ in RANGES}
            parts = []
            for rn, _, _ in RANGES:
                peers = [results.get((p, qn, rn)) for p in systems if p != "strata"]
                peers = [p["p50"] for p in peers if p and not p["error"]]
                if st[rn] and not st[rn]["error"] and peers:
                    parts.append("%s p50 %.2fx the faster peer" % (rn, st[rn]["p50"] / min(peers)))
            if st.get("1h") and st.get("7d") and not st["1h"]["error"] and not st["7d"]["error"]:
                parts.append("7d/1h %.1fx" % (st["7d"]["p50"] / st["1h"]["p50"]))
            print("  %-20s %s" % (qn, "; ".join(parts) or "strata answered no query"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"%s|%s|%s" % k: v for k, v in results.items()}, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
