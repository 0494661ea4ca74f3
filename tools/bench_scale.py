#!/usr/bin/env python3
"""bench_scale.py: `make bench-scale`, how strata's costs grow with the number of active series,
next to VictoriaMetrics 1.79 on the same data (figures printed, nothing asserted).

For each size (BENCH_SCALE_SERIES, default 10000,100000,1000000 active series) and each system,
one at a time on 127.0.0.1 with a throwaway data dir: strata-load backfills BENCH_SCALE_MINUTES
(default 30) minutes of 15 s data of a simulated GPU cluster sized to give that many series
(workloads = series / 79, nodes = workloads / 8: the bench-peers cluster's proportions), so every
series is active and holds the same samples; printed: server CPU (utime+stime, /proc/PID/stat) per
1M samples, peak RSS (VmHWM) after the load and per active series, samples/s.  For strata also
its own gauges (strata_active_series, strata_head_bytes: the open chunks).

BENCH_SCALE_HEAP=1 adds, at the smallest size, a strata run under heaptrack: its heap at the peak,
grouped by what holds it (series table, labels and symbols, postings index, open chunks, WAL
buffers, the workload registry, HTTP/decode buffers), in bytes per active series.  heaptrack slows
the daemon down; that run's CPU is not reported.

BENCH_SCALE_QUERY_DAYS (default 30; 0 skips) runs tools/bench_query.py with BENCH_DAYS set to it:
the metrics endpoint's p50/p99 over 1h, 24h, 7d and 30d of one 8-GPU workload.

Options: --sizes, --minutes, --systems, --heap, --query-days, --docs FILE (writes the "How cost
grows" section of docs/benchmarks.md), --json FILE.  Python 3 standard library only.
"""
import argparse
import collections
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_peers as bp  # noqa: E402  (System classes, /proc readers, docs sections)

DEFAULT_SIZES = "10000,100000,1000000"
SERIES_PER_WORKLOAD = 79   # bench-peers: 250 workloads, 32 nodes -> 19,706 series
WORKLOADS_PER_NODE = 8


def log(msg):
    sys.stderr.write("[bench-scale %6.1fs] %s\n" % (time.time() - bp.T_START, msg))
    sys.stderr.flush()


def cluster_for(series):
    w = max(1, round(series / SERIES_PER_WORKLOAD))
    return w, max(1, round(w / WORKLOADS_PER_NODE))


def count_series(build, w, n, t0_s):
    p = subprocess.run([os.path.join(build, "strata-load"), "--list-series", "--workloads=%d" % w,
                        "--nodes=%d" % n, "--start=%d" % t0_s], capture_output=True, check=True)
    return p.stdout.count(b"\n")


def strata_gauges(port):
    st, body, _ = bp.http_req(port, "GET", "/metrics", timeout=30)
    out = {}
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("strata_") and " " in line and "{" not in line:
            k, v = line.rsplit(" ", 1)
            try:
                out[k] = float(v)
            except ValueError:
                pass
    return out


class HeapStrata(bp.Strata):
    """strata under heaptrack (the heap breakdown run)."""

    def argv(self):
        self.heapfile = os.path.join(self.dir, "heap")
        return ["heaptrack", "-o", self.heapfile] + super().argv()

    def server_pid(self):
        # heaptrack execs the daemon with its preload: the child of the heaptrack shell
        for _ in range(100):
            kids = bp.run_out(["pgrep", "-P", str(self.proc.pid)]).split()
            for k in kids:
                try:
                    if os.readlink("/proc/%s/exe" % k).endswith("/strata"):
                        return int(k)
                except OSError:
                    pass
            time.sleep(0.1)
        return self.proc.pid

    def stop(self):
        # SIGTERM to the daemon (heaptrack's shell runs it in the foreground and then writes
        # its data file), then wait for the shell
        if self.proc and self.proc.poll() is None:
            try:
                os.kill(self.server_pid(), 15)
                self.proc.wait(timeout=300)
            except (OSError, subprocess.TimeoutExpired):
                pass
        super().stop()


def run_one(cls, args, tmp, size, w, n, t0_s):
    sysobj = cls(args, tmp)
    res = {"system": sysobj.name, "target_series": size, "workloads": w, "nodes": n}
    try:
        sysobj.start()
        pid = sysobj.server_pid() if hasattr(sysobj, "server_pid") else sysobj.proc.pid
        load = [os.path.join(args.build, "strata-load"), "--url=" + sysobj.write_url(),
                "--workloads=%d" % w, "--nodes=%d" % n, "--backfill=%g" % (args.minutes / 60.0),
                "--start=%d" % t0_s, "--concurrency=2", "--batch-size=%d" % bp.balanced_batch(args.nseries),
                "--quiet"]
        res["load_command"] = " ".join(["strata-load", "--url=..."] + load[2:])
        c0 = bp.proc_cpu_s(pid)
        p = subprocess.run(load, capture_output=True, text=True)
        c1 = bp.proc_cpu_s(pid)
        if p.returncode != 0:
            raise bp.Failure("strata-load exited %d: %s" % (p.returncode, (p.stdout + p.stderr)[-600:]))
        summ = dict(tok.split("=", 1) for tok in p.stdout.split() if "=" in tok)
        samples, series = int(summ["samples"]), int(summ["series"])
        mem = bp.proc_mem_kb(pid)
        res.update(samples=samples, series=series, elapsed_s=float(summ["elapsed_s"]),
                   samples_per_s=samples / float(summ["elapsed_s"]), cpu_s=c1 - c0,
                   cpu_s_per_1m=(c1 - c0) * 1e6 / samples, rss=mem["VmRSS"] * 1024,
                   peak_rss=mem["VmHWM"] * 1024, peak_rss_per_series=mem["VmHWM"] * 1024 / series)
        if sysobj.name == "strata":
            res["gauges"] = strata_gauges(sysobj.port)
    except bp.Failure as e:
        res["error"] = str(e)
        log("%s at %d series: FAILED: %s" % (sysobj.name, size, e))
    finally:
        sysobj.stop()
    if isinstance(sysobj, HeapStrata) and "error" not in res:
        res["heap"] = heap_breakdown(sysobj.heapfile)
    shutil.rmtree(sysobj.dir, ignore_errors=True)
    return res

# ------------------------------------------------------------ where the bytes go
#
# heaptrack's peak flame-graph stacks ("outer;...;inner bytes", each frame "function (file.c)")
# are grouped by the innermost strata frame: its function, else its file.  The head's chunk
# code is inlined into tsdb_append's frames, so "open chunks and sample buffers" holds the
# sealed head chunk buffers, out-of-order buffers and the per-request append scratch (each
# series' open buffer of 8 samples is inside its series struct: "series table");
# strata_head_bytes (from /metrics) says how much of it is chunk bytes.

HEAP_BY_FUNC = [
    ("labels and symbols (symbol table)", r"^tsdb_symtab_"),
    ("series table (series structs, hash map)", r"^(head_series_create|smap_)"),
    ("postings index", r"^(postings_|tsdb_head_index_|pairs_grow|grow_u32)"),
    ("request arenas (HTTP body, decode)", r"^(write_arena|strata_arena_|block_new)$"),
]
HEAP_BY_FILE = [
    ("WAL buffers", r"^wal(_cursor)?\.c$"),
    ("postings index", r"^(index|block_index)\.c$"),
    ("open chunks and sample buffers", r"^(head|head_append|head_wal|codec)\.c$"),
    ("workload registry", r"^(registry|registry_eval|registry_feed|bytemap)\.c$"),
    ("ingest decode", r"^(decode|write|metadata)\.c$"),
    ("HTTP server", r"^(server|routes_write|call)\.c$"),
    ("store open (fixed)", r"^(db|store)\.c$"),
]


FIXED_CATEGORIES = ("request arenas", "store open", "HTTP server", "other")


def heap_category(frames):
    """frames innermost first."""
    for fr in frames:
        m = re.match(r"^(\S+) \((\S+)\)$", fr.strip())
        if not m:
            continue
        fn, fl = m.groups()
        for cat, rx in HEAP_BY_FUNC:
            if re.search(rx, fn):
                return cat, fn
        for cat, rx in HEAP_BY_FILE:
            if re.search(rx, fl):
                return cat, fn
    return "other (libraries, TLS, startup)", "?"


def heap_breakdown(heapfile):
    """{category: bytes at the heap's peak} from heaptrack's peak flame-graph stacks."""
    d = os.path.dirname(heapfile)
    files = [f for f in os.listdir(d) if f.startswith(os.path.basename(heapfile))]
    if not files:
        return {"error": "no heaptrack file"}
    stacks = os.path.join(d, "stacks.txt")
    subprocess.run(["heaptrack_print", "-f", os.path.join(d, files[0]), "--flamegraph-cost-type", "peak",
                    "-F", stacks, "-p", "0", "-a", "0", "-T", "0"], capture_output=True)
    cats = collections.Counter()
    top = collections.Counter()
    try:
        with open(stacks) as f:
            for line in f:
                path, _, cost = line.rstrip("\n").rstrip().rpartition(" ")
                if not cost.isdigit() or not int(cost):
                    continue
                cat, fn = heap_category([x for x in path.split(";") if x][::-1])
                cats[cat] += int(cost)
                top[(cat, fn)] += int(cost)
    except OSError:
        return {"error": "heaptrack_print wrote nothing"}
    return {"categories": dict(cats), "top_sites": [[c, s, b] for (c, s), b in top.most_common(25)]}

# ------------------------------------------------------------ queries


def run_bench_query(args):
    env = dict(os.environ, BENCH_DAYS=str(args.query_days), BENCH_RUNS=str(args.query_runs))
    p = subprocess.run([sys.executable, os.path.join(HERE, "bench_query.py"), args.build],
                       capture_output=True, text=True, env=env)
    rows = []
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) == 8 and re.match(r"^\d+[hd](/\d+)?$", f[0]) and f[1].endswith("s"):
            rows.append({"range": f[0], "bucket": f[1], "p50_ms": float(f[2]), "p99_ms": float(f[3]),
                         "cpu_ms": float(f[4]), "points_read": f[5], "answer_bytes": int(f[6]), "status": int(f[7])})
    return {"rc": p.returncode, "rows": rows, "output": p.stdout[-3000:], "stderr": p.stderr[-1000:]}

# ------------------------------------------------------------ output


def table(results):
    L = ["| active series | system | samples | samples/s | CPU s per 1M samples | peak RSS | peak RSS per series | strata / VM: CPU, RSS |",
         "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    by = {(r["target_series"], r["system"]): r for r in results}
    for r in results:
        if r["system"] not in ("strata", "victoria-metrics"):
            continue
        if "error" in r:
            L.append("| %s | %s | failed: %s | | | | | |" % ("{:,}".format(r["target_series"]), r["system"], r["error"][:80]))
            continue
        rat = ""
        vm = by.get((r["target_series"], "victoria-metrics"))
        if r["system"] == "strata" and vm and "error" not in vm:
            rat = "%.2fx, %.2fx" % (r["cpu_s_per_1m"] / vm["cpu_s_per_1m"], r["peak_rss"] / vm["peak_rss"])
        L.append("| %s | %s | %s | %s | %.3f | %s | %.0f B | %s |" % (
            "{:,}".format(r["series"]), r["system"], "{:,}".format(r["samples"]), "{:,.0f}".format(r["samples_per_s"]),
            r["cpu_s_per_1m"], bp.fmt_bytes(r["peak_rss"]), r["peak_rss_per_series"], rat))
    return "\n".join(L)


def heap_table(res):
    h = res["heap"]
    n = res["series"]
    total = sum(h["categories"].values())
    L = ["| held by | bytes at the heap's peak | per active series | share |", "| --- | --- | --- | --- |"]
    for cat, b in sorted(h["categories"].items(), key=lambda x: -x[1]):
        L.append("| %s | %s | %.0f B | %.0f%% |" % (cat, bp.fmt_bytes(b), b / n, 100.0 * b / total))
    L.append("| heap total | %s | %.0f B | |" % (bp.fmt_bytes(total), total / n))
    return "\n".join(L)


def query_table(q):
    L = ["| range | bucket | p50 ms | p99 ms | CPU ms per request | points read |", "| --- | --- | --- | --- | --- | --- |"]
    for r in q["rows"]:
        L.append("| %s | %s | %.2f | %.2f | %.2f | %s |" % (r["range"], r["bucket"], r["p50_ms"], r["p99_ms"],
                                                           r["cpu_ms"], r["points_read"]))
    return "\n".join(L)


def write_docs(path, report, sizes):
    v, m = report["versions"], report["machine"]
    ran = sorted({r["target_series"] for r in report["results"] if "error" not in r})
    L = ["## How cost grows", "",
         "Generated by `make bench-scale` (tools/bench_scale.py; here `%s`) on %s, strata `%s`, "
         "%d cores; load average %s while it ran (other jobs share the machine: CPU seconds are "
         "less noisy than wall time, RSS not at all). Each size is a strata-load backfill of %g "
         "minutes of 15 s data (every series active, %d samples each) of a cluster with the "
         "bench-peers proportions (workloads = series / %d, nodes = workloads / %d), into a fresh "
         "strata, then a fresh VictoriaMetrics; same flags, concurrency 2." % (
             report["command"], report["date"], v["strata"], m["nproc"],
             "-".join("%.1f" % x for x in (min(report["loadavg"]), max(report["loadavg"]))) if report["loadavg"] else "?",
             report["minutes"], int(report["minutes"] * 4), SERIES_PER_WORKLOAD, WORKLOADS_PER_NODE), "",
         table(report["results"]), ""]
    missing = [int(s) for s in DEFAULT_SIZES.split(",") if int(s) not in ran]
    if missing:
        L += ["Not run here: %s active series (`BENCH_SCALE_SERIES=%s`)%s." % (
            ", ".join("{:,}".format(x) for x in missing), ",".join(str(x) for x in missing),
            (": " + report["note"]) if report["note"] else ""), ""]
    hr = report.get("heap_run")
    if hr and "heap" in hr and "categories" in hr["heap"]:
        g = hr.get("gauges", {})
        L += ["### Where strata's bytes per series go", "",
              "`BENCH_SCALE_HEAP=1`: strata under heaptrack at %s active series; its heap at the peak "
              "(heaptrack's peak flame graph), grouped by the innermost strata function or file of "
              "each allocation. strata_head_bytes (sealed head chunks) was %s = %.0f B per series; "
              "peak RSS under heaptrack %s." % (
                  "{:,}".format(hr["series"]), bp.fmt_bytes(g.get("strata_head_bytes", 0)),
                  g.get("strata_head_bytes", 0) / max(1, hr["series"]), bp.fmt_bytes(hr.get("peak_rss", 0))), "",
              heap_table(hr), ""]
        cats = hr["heap"]["categories"]
        fixed = sum(b for c, b in cats.items() if c.startswith(FIXED_CATEGORIES))
        per = sum(cats.values()) - fixed
        L += ["Of that heap, %s is fixed (request arenas sized by the batch, not the series count; "
              "the store's setup; the HTTP server; libraries) and %s grows with the series: %.0f B per "
              "active series, %s of it in the head's sealed chunk buffers (each series' open buffer "
              "of 8 samples lives in its series struct, under the series table). The heap's peak is "
              "the moment the most bytes were held, not the end of the run: strata_head_bytes above "
              "is the head when the run ended, with %d samples per series." % (
                  bp.fmt_bytes(fixed), bp.fmt_bytes(per), per / max(1, hr["series"]),
                  "%.0f B" % (cats.get("open chunks and sample buffers", 0) / max(1, hr["series"])),
                  int(report["minutes"] * 4)), ""]
    q = report.get("query")
    if q and q["rows"]:
        L += ["### Query cost over range", "",
              "`BENCH_DAYS=%d make bench-query` (tools/bench_query.py, run by bench-scale): one 8-GPU "
              "workload (96 series) with %d days of 15 s data, 10 metric types per request at "
              "numberOfSamples=1000 (the last row: buckets on the rollup grid), %d runs per "
              "range; wall-clock p50/p99 on one kept-alive connection, and the daemon's CPU per "
              "request (utime+stime over the runs / runs: less sensitive to a busy machine than "
              "wall time)." % (
                  report["query_days"], report["query_days"], report["query_runs"]), "",
              query_table(q), ""]
    bp.put_doc_section(path, "bench-scale", "\n".join(L))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default=os.environ.get("BENCH_SCALE_SERIES", DEFAULT_SIZES))
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("BENCH_SCALE_MINUTES", "30")))
    ap.add_argument("--systems", default="strata,victoria-metrics")
    ap.add_argument("--heap", action="store_true", default=os.environ.get("BENCH_SCALE_HEAP") == "1")
    ap.add_argument("--query-days", type=int, default=int(os.environ.get("BENCH_SCALE_QUERY_DAYS", "30")))
    ap.add_argument("--query-runs", type=int, default=int(os.environ.get("BENCH_RUNS", "30")))
    ap.add_argument("--json", default=None)
    ap.add_argument("--note", default="", help="why sizes of the default set were not run (for --docs)")
    ap.add_argument("--docs", default=None)
    args = ap.parse_args()
    args.json = args.json or os.path.join(args.build, "bench-scale.json")
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    now = time.time()
    t0_s = int((now - args.minutes * 60 - 120) // 60 * 60)
    report = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": " ".join(["BENCH_SCALE_SERIES=" + args.sizes, "BENCH_SCALE_MINUTES=%g" % args.minutes]
                                  + (["BENCH_SCALE_HEAP=1"] if args.heap else [])
                                  + ["BENCH_SCALE_QUERY_DAYS=%d" % args.query_days, "BENCH_RUNS=%d" % args.query_runs,
                                     "make bench-scale"]),
              "note": args.note, "query_days": args.query_days, "query_runs": args.query_runs,
              "machine": bp.machine(), "versions": bp.versions(args), "minutes": args.minutes,
              "results": [], "loadavg": []}
    classes = {"strata": bp.Strata, "victoria-metrics": bp.Victoria}
    tmp = tempfile.mkdtemp(prefix="strata-bench-scale-")
    try:
        for size in sizes:
            w, n = cluster_for(size)
            args.nseries = count_series(args.build, w, n, t0_s)
            for name in args.systems.split(","):
                log("%d series (%d workloads, %d nodes): %s, load average %.2f" % (
                    args.nseries, w, n, name, os.getloadavg()[0]))
                report["loadavg"].append(os.getloadavg()[0])
                r = run_one(classes[name], args, tmp, size, w, n, t0_s)
                report["results"].append(r)
                if "error" not in r:
                    log("  %.3f CPU s per 1M samples, peak RSS %s = %.0f B per series" % (
                        r["cpu_s_per_1m"], bp.fmt_bytes(r["peak_rss"]), r["peak_rss_per_series"]))
        if args.heap and sizes:
            w, n = cluster_for(sizes[0])
            args.nseries = count_series(args.build, w, n, t0_s)
            log("%d series: strata under heaptrack" % args.nseries)
            report["heap_run"] = run_one(HeapStrata, args, tmp, sizes[0], w, n, t0_s)
        if args.query_days:
            log("bench_query.py with BENCH_DAYS=%d" % args.query_days)
            report["query"] = run_bench_query(args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n== bench-scale: %g min of 15 s data per size, %s\n" % (args.minutes, report["date"]))
    print(table(report["results"]))
    hr = report.get("heap_run")
    if hr and "heap" in hr and "categories" in hr["heap"]:
        print("\n== strata heap at its peak, %d active series (heaptrack)\n" % hr["series"])
        print(heap_table(hr))
        for c, s, b in hr["heap"]["top_sites"][:15]:
            print("  %-32s %-40s %s" % (c, s, bp.fmt_bytes(b)))
    elif hr:
        print("\nheap run: %s" % hr.get("error") or hr.get("heap"))
    if "query" in report:
        print("\n== metrics endpoint, 1 workload, %d days (tools/bench_query.py)\n" % args.query_days)
        print(query_table(report["query"]))
        if report["query"]["rc"]:
            print(report["query"]["output"][-1500:], report["query"]["stderr"])
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    print("\nJSON: %s" % args.json)
    if args.docs:
        write_docs(args.docs, report, sizes)
        print("docs: %s" % args.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
