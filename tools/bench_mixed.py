#!/usr/bin/env python3
"""bench_mixed.py BUILD: metrics-query latency under mixed load (readers, ingest, head cuts).

For each --threads value in BENCH_THREADS (default "2,4,8") a fresh strata (temp dir,
--auth=none, loopback, --threads=T; since the server runs one thread per connection (docs/api.md,
"Threads") --threads has no effect and the values only matter to builds with libmicrohttpd's
thread pool, so BENCH_THREADS=4 is enough to compare such a build with a current one) gets a strata-load backfill of BENCH_HOURS hours (default 3)
of BENCH_WORKLOADS workloads on BENCH_NODES nodes, is left to settle (background cuts done), and
then BENCH_READERS reader processes (default 8, one kept-alive connection each; processes, not
threads, so the Python GIL does not add its own tail) query
GET /api/v1/workloads/{id}/metrics (10 metric types, last 1 h, numberOfSamples=1000, the
workloads in turn) for BENCH_SECONDS seconds (default 10) in each of three phases:

  readers         readers alone
  +ingest         strata-load in real time (--scrape-interval=BENCH_SCRAPE, default 1s) at the
                  same time
  +ingest+cut     the same, plus POST /api/v1/admin/cut-head every BENCH_CUT_EVERY s (1.5)

Prints per phase: queries, p50/p99/max wall-clock latency, strata's CPU ms per query, the
ingest rate, and for the cut phase the cut-head request times and the worst reader latency of
the requests that overlapped a cut vs those that did not.  Figures only, nothing asserted
(make bench-mixed).  The client shares the 2 cores with the server: compare the phases and
thread counts within one run, not with other machines.

BENCH_PERF=FILE records perf (cpu-clock and sched:sched_switch, DWARF stacks) on strata during
the cut phase into FILE.tT (perf report -i FILE.tT --no-children -S/--comm MHD-connection ...;
MHD-worker for a thread-pool build).
BENCH_WCHAN=1 also samples /proc/PID/task/*/{stat,wchan} every ~2 ms during each phase and
prints where strata's threads were (running / waiting on a futex = a lock / polling for
connections / in the WAL fsync...), by thread name.
Environment: BENCH_THREADS, BENCH_READERS, BENCH_SECONDS, BENCH_HOURS, BENCH_WORKLOADS,
BENCH_NODES, BENCH_SCRAPE, BENCH_CUT_EVERY, BENCH_WCHAN, BENCH_PERF, BENCH_KEEP=1 keeps the data dirs.
"""
import collections
import http.client
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))
from strata_client import Server, iso  # noqa: E402
from bench_query import cpu_s, gauge  # noqa: E402  (the same /metrics and /proc readers)

TYPES = ["GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "CPU_USAGE_CORES", "CPU_MEMORY_USAGE_BYTES",
         "CPU_REQUEST_CORES", "CPU_LIMIT_CORES", "POD_COUNT", "RUNNING_POD_COUNT", "GPU_ALLOCATION",
         "NVLINK_BANDWIDTH_TOTAL"]


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]



def settle(srv, quiet_s=3.0, max_s=120.0):
    t0 = time.time()
    last, since = gauge(srv, "strata_blocks"), time.time()
    while time.time() - t0 < max_s:
        time.sleep(0.5)
        b = gauge(srv, "strata_blocks")
        if b != last:
            last, since = b, time.time()
        elif time.time() - since >= quiet_s:
            break
    return last



def reader(port, paths, t_end, q, idx=0):
    """One reader process: queries in turn until t_end; sends [(t_start, ms, status, idx)]."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out, i = [], 0
    while time.time() < t_end:
        path = paths[i % len(paths)]
        i += 1
        t0w, t0 = time.time(), time.perf_counter()
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            st = r.status
        except (http.client.HTTPException, OSError):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            st = 0
        out.append((t0w, (time.perf_counter() - t0) * 1000, st, idx))
    q.put(out)


class WchanSampler(threading.Thread):
    """Where strata's threads are, sampled from /proc: (thread name, state/wchan) -> count."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.stop, self.counts = pid, threading.Event(), collections.Counter()

    def run(self):
        base = "/proc/%d/task" % self.pid
        while not self.stop.is_set():
            try:
                tids = os.listdir(base)
            except OSError:
                return
            for tid in tids:
                try:
                    with open("%s/%s/stat" % (base, tid)) as fh:
                        st = fh.read()
                    with open("%s/%s/wchan" % (base, tid)) as fh:
                        wc = fh.read().strip() or "-"
                except OSError:
                    continue
                name = st[st.index("(") + 1:st.rindex(")")]
                state = st.rsplit(")", 1)[1].split()[0]
                self.counts[(name, "running" if state == "R" else wc)] += 1
            time.sleep(0.002)


SKIP = ("futex", "__futex", "do_", "schedule", "__schedule", "__x64", "x64", "entry_SYSCALL", "syscall", "[unknown]",
        "__se", "__do", "exit_to_user", "irqentry", "asm_sysvec", "__GI___lll", "lll_", "___pthread", "__pthread",
        "pvm", "finish_task", "_raw", "preempt")


def offcpu_report(path, top=12):
    """From a BENCH_PERF recording: how long MHD workers were off the CPU, by reason (the lock and its
    caller, polling for connections, runnable but preempted), from each sched_switch to the thread's
    next event (so each wait is over-counted by up to a 2 ms cpu-clock period)."""
    try:
        out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,tid,time,event,ip,sym"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=300).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return
    ev = []
    for b in out.split("\n\n"):
        lines = b.strip().split("\n")
        if not lines or not lines[0].strip():
            continue
        h = lines[0].split()
        try:
            t = float(h[2].rstrip(":"))
        except (IndexError, ValueError):
            continue
        syms = [l.split(None, 1)[1].split("+")[0] if len(l.split(None, 1)) > 1 else "?" for l in lines[1:]]
        ev.append((h[1], t, "sched_switch" in lines[0], h[0], syms))
    ev.sort(key=lambda e: e[1])
    dur, pending = collections.defaultdict(list), {}
    for tid, t, sw, comm, syms in ev:
        if tid in pending:
            k, t0 = pending.pop(tid)
            dur[k].append((t - t0) * 1000)
        if not sw or comm not in ("MHD-worker", "MHD-connection"):
            continue
        user = [x for x in syms if not x.startswith(SKIP)]
        lock = next((x for x in syms if "rwlock_rdlock" in x or "rwlock_wrlock" in x or "mutex_lock" in x
                     or "lll_lock_wait_private" in x), None)
        if lock:
            lock = "malloc arena lock" if "private" in lock else lock.replace("(inlined)", "").strip()
            k = "lock %s in %s" % (lock, " < ".join(user[:2]))
        elif any("epoll_wait" in x for x in syms):
            k = "epoll_wait (idle, no request)"
        elif any("irqentry" in x or "exit_to_user" in x for x in syms):
            k = "preempted (runnable, waiting for a CPU)"
        elif any("io_schedule" in x for x in syms):
            k = "disk I/O: " + " < ".join(user[:2])
        else:
            k = "other: " + " < ".join(user[:2])
        pending[tid] = (k, t)
    print("  off-CPU time of the MHD workers / connection threads in %s (total ms, waits, max ms):" % path)
    for tot, n, mx, k in sorted(((sum(v), len(v), max(v), k) for k, v in dur.items()), reverse=True)[:top]:
        print("    %9.1f %6d %8.1f  %s" % (tot, n, mx, k))


def phase(srv, name, paths, readers, seconds, ingest=None, cut_every=0.0, wchan=False):
    """Runs the readers (and ingest / cuts) for `seconds`; returns a result dict."""
    pid = srv.proc.pid
    load = None
    if ingest:
        load = subprocess.Popen(ingest + ["--duration=%d" % (seconds + 2)], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        time.sleep(1.0)   # let the first real-time tick land
    app0 = gauge(srv, "strata_ingested_samples_total") or 0
    sampler = WchanSampler(pid) if wchan else None
    if sampler:
        sampler.start()
    c0, w0 = cpu_s(pid), time.time()
    t_end = w0 + seconds
    q = mp.Queue()
    procs = [mp.Process(target=reader, args=(srv.port, paths[i % len(paths):] + paths[:i % len(paths)], t_end, q, i))
             for i in range(readers)]
    for p in procs:
        p.start()
    cuts = []
    perf = None
    if cut_every and os.environ.get("BENCH_PERF"):
        # on-CPU samples plus every context switch (off-CPU: where a thread blocked), with stacks
        perf = subprocess.Popen(["perf", "record", "-q", "-F", "499", "-e", "cpu-clock", "-e", "sched:sched_switch",
                                 "--call-graph", "dwarf,16384", "-p", str(pid), "-o",
                                 "%s.t%s" % (os.environ["BENCH_PERF"], srv.threads)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    if cut_every:
        cs = Server.__new__(Server)   # a second kept-alive connection for the cuts
        cs.port, cs.conn = srv.port, None
        while time.time() < t_end - 0.5:
            time.sleep(cut_every)
            t0 = time.time()
            st = cs.req("POST", "/api/v1/admin/cut-head", b"")[0]
            cuts.append((t0, time.time(), st))
    lat = []
    for _ in procs:
        lat.extend(q.get())
    for p in procs:
        p.join()
    wall = time.time() - w0
    cpu = cpu_s(pid) - c0
    if perf:
        perf.send_signal(2)
        perf.wait()
    if sampler:
        sampler.stop.set()
        sampler.join()
    app1 = gauge(srv, "strata_ingested_samples_total") or 0
    if load:
        load.wait()
    ms = [m for _, m, _, _ in lat]
    bad = sum(1 for _, _, st, _ in lat if st != 200)
    res = {"name": name, "n": len(ms), "p50": pct(ms, 50), "p99": pct(ms, 99), "max": max(ms) if ms else 0,
           "cpu_ms_q": cpu * 1000 / max(1, len(ms)), "qps": len(ms) / wall, "ingest": (app1 - app0) / wall,
           "bad": bad, "cuts": cuts, "wchan": sampler.counts if sampler else None}
    if cuts:
        win = [(a, b) for a, b, _ in cuts]
        hit = [any(t < b and t + m / 1000 > a for a, b in win) for t, m, _, _ in lat]
        res["over"] = [x[1] for x, h in zip(lat, hit) if h]
        res["clear"] = [x[1] for x, h in zip(lat, hit) if not h]
        # head-of-line evidence: which readers had a request > 100 ms that overlapped a cut
        res["slow_readers"] = sorted({x[3] for x, h in zip(lat, hit) if h and x[1] > 100})
    return res


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    threads = [int(x) for x in os.environ.get("BENCH_THREADS", "2,4,8").split(",")]
    readers = int(os.environ.get("BENCH_READERS", "8"))
    seconds = int(os.environ.get("BENCH_SECONDS", "10"))
    hours = int(os.environ.get("BENCH_HOURS", "3"))
    workloads = os.environ.get("BENCH_WORKLOADS", "40")
    nodes = os.environ.get("BENCH_NODES", "16")
    scrape = os.environ.get("BENCH_SCRAPE", "1s")
    cut_every = float(os.environ.get("BENCH_CUT_EVERY", "1.5"))
    wchan = os.environ.get("BENCH_WCHAN") == "1"
    cluster = ["--workloads=" + workloads, "--nodes=" + nodes]
    print("bench-mixed: %d readers, %d s per phase, %d h backfill of %s workloads on %s nodes, ingest every %s"
          % (readers, seconds, hours, workloads, nodes, scrape))
    print("%-8s %-12s %6s %6s %8s %8s %8s %9s %10s %5s" % ("threads", "phase", "n", "q/s", "p50 ms", "p99 ms",
                                                           "max ms", "CPU ms/q", "ingest/s", "bad"))
    rows = []
    for t in threads:
        tmp = tempfile.mkdtemp(prefix="strata-bench-mixed-")
        srv = None
        try:
            srv = Server(os.path.join(tmp, "data"), None, ["--retention=30d", "--threads=%d" % t], build=build)
            srv.threads = t
            load = subprocess.run(
                [os.path.join(build, "strata-load"), "--url=%s/api/v1/write" % srv.url] + cluster +
                ["--backfill=%d" % hours, "--samples-per-series=60", "--quiet"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            if load.returncode != 0:
                print(load.stdout.decode(errors="replace")[-2000:])
                return 1
            blocks = settle(srv)
            st, body = srv.get_json("/api/v1/workloads")
            wids = [w["id"] for w in body["workloads"]][:16]
            end = int(time.time()) // 60 * 60 * 1000
            paths = ["/api/v1/workloads/%s/metrics?metricType=%s&start=%s&end=%s&numberOfSamples=1000"
                     % (w, ",".join(TYPES), iso(end - 3600000), iso(end)) for w in wids]
            for p in paths:
                srv.get(p)
            if t == threads[0]:
                print("  (%d workloads queried in turn; %d blocks, %d head samples after the backfill)"
                      % (len(wids), blocks or 0, gauge(srv, "strata_head_samples") or 0))
            ingest = [os.path.join(build, "strata-load"), "--url=%s/api/v1/write" % srv.url] + cluster + \
                ["--scrape-interval=" + scrape, "--quiet"]
            for name, ing, ce in (("readers", None, 0), ("+ingest", ingest, 0), ("+ingest+cut", ingest, cut_every)):
                r = phase(srv, name, paths, readers, seconds, ing, ce, wchan)
                rows.append((t, r))
                print("%-8d %-12s %6d %6.0f %8.2f %8.2f %8.2f %9.2f %10.0f %5d" % (
                    t, name, r["n"], r["qps"], r["p50"], r["p99"], r["max"], r["cpu_ms_q"], r["ingest"], r["bad"]))
                if r["cuts"]:
                    d = [(b - a) * 1000 for a, b, _ in r["cuts"]]
                    print("%-8s   %d cuts: first %.0f ms, then p50 %.0f max %.0f ms; readers overlapping a cut: "
                          "n=%d p99 %.1f max %.1f ms, the others: n=%d p99 %.1f max %.1f ms" % (
                              "", len(d), d[0], pct(d[1:] or d, 50), max(d[1:] or d), len(r["over"]),
                              pct(r["over"], 99), max(r["over"] or [0]), len(r["clear"]), pct(r["clear"], 99),
                              max(r["clear"] or [0])))
                    print("%-8s   readers with a request > 100 ms overlapping a cut: %s of %d" % (
                        "", r["slow_readers"] or "none", readers))
                if r["wchan"]:
                    tot = sum(r["wchan"].values())
                    top = ", ".join("%s/%s %.1f%%" % (n, w, 100.0 * c / tot) for (n, w), c in r["wchan"].most_common(8))
                    print("%-8s   threads: %s" % ("", top))
        finally:
            if srv:
                srv.stop()
            if os.environ.get("BENCH_KEEP") == "1":
                print("data kept in " + tmp)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    if os.environ.get("BENCH_PERF"):
        for t in threads:
            offcpu_report("%s.t%d" % (os.environ["BENCH_PERF"], t))
    base = {t: r for t, r in rows if r["name"] == "readers"}
    print("p99 / readers-alone p99 (same --threads):")
    for t, r in rows:
        if r["name"] != "readers":
            print("  threads=%d %-12s p99 x%.1f  max x%.1f" % (t, r["name"], r["p99"] / base[t]["p99"],
                                                             r["max"] / base[t]["max"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
