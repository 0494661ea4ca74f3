#!/usr/bin/env python3
"""test_strata_load.py: strata-load --metrics (only the named series are generated and sent).

With the real binaries:
  1. --list-series --metrics=report lists exactly the unfiltered --list-series' series whose
     __name__ is one of the eight a consumption report reads (api/reports_gen.c), in the same
     order; a list of names picks exactly those; an unknown name or an empty list is a usage
     error (exit 2) naming the culprit.
  2. A 1 h backfill with --metrics=report and --ack-log into one real strata, and the same
     backfill without the filter into another: the filtered store's /api/v1/export holds only
     the report's metric names, exactly the listed series, every acknowledged sample, and each
     series' timestamps and value bits equal the unfiltered store's (the filter shifts no
     random stream), and equal what --expand-ack re-derives from the filtered ack log (whose
     header records the selection); and consumption reports over that hour (by Project and
     per workload) are byte-identical on both stores, so the preset feeds a report fully.
  3. --rate holds with fewer batch slots than --concurrency: 391 series in one slot
     (--batch-size=2000) over --concurrency=2 (and 3 slots over 4 workers, unevenly shared)
     at --rate=4000 for 3 s achieve at least 90% of the rate, by strata-load's own summary
     line and by strata's strata_ingested_samples_total (the pacing once gave each worker
     rate/concurrency, so the idle worker's share was never sent: 16000 gave 7999).
Prints TAP lines.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from strata_client import Server, iso, metric_value  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
LOAD = os.path.join(BUILD, "strata-load")
REPORT = {"runai_workload_info", "runai_pod_info", "runai_workload_gpu_allocation",
          "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "kube_pod_container_resource_requests",
          "container_cpu_usage_seconds_total", "container_memory_working_set_bytes"}
# 2026-01-05T00:00:00Z: a fixed range, so the catalog (created_at hangs off the start's day) is too
START = 1767571200
CLUSTER = ["--workloads=10", "--nodes=2", "--scrape-interval=15s", "--start=%d" % START]
FAILS = 0
TAPS = 0  # checks run: the trailing TAP plan "1..TAPS" (tests/run_tests.sh compares)


def tap(ok, name, detail=""):
    global FAILS, TAPS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        if detail:
            print("#   " + str(detail)[:800].replace("\n", "\n#   "))


def load(*args):
    return subprocess.run([LOAD] + list(args), capture_output=True, text=True, timeout=300)


def series_list(*args):
    r = load("--list-series", *(CLUSTER + list(args)))
    return r.returncode, [json.loads(line) for line in r.stdout.splitlines() if line.strip()], r.stderr


def key(labels):
    return tuple(sorted(labels.items()))


def bits(v):
    return struct.pack("<d", float(v))


def export(srv, names):
    """{labels key: {ts: value bits}} of every series of the given names in srv."""
    got = {}
    for name in sorted(names):
        q = urllib.parse.urlencode({"match[]": '{__name__="%s"}' % name})
        st, _, body = srv.get("/api/v1/export?" + q)
        if st != 200:
            raise RuntimeError("export of %s answered %d: %s" % (name, st, body[:200]))
        for line in body.decode().splitlines():
            if line.strip():
                o = json.loads(line)
                got.setdefault(key(o["metric"]), {}).update(
                    (t, bits(v)) for t, v in zip(o["timestamps"], o["values"]))
    return got


def all_names(srv):
    st, _, body = srv.get("/api/v1/export?" + urllib.parse.urlencode({"match[]": '{__name__=~".+"}'}))
    if st != 200:
        raise RuntimeError("export answered %d: %s" % (st, body[:200]))
    return {json.loads(line)["metric"]["__name__"] for line in body.decode().splitlines() if line.strip()}


def backfill(srv, ack, *extra):
    return load("--url=%s/api/v1/write" % srv.url, "--backfill=1",
                "--samples-per-series=20", "--batch-size=300", "--ack-log=" + ack, "--quiet",
                *(CLUSTER + list(extra)))


def listing():
    rc, full, err = series_list()
    tap(rc == 0 and len(full) == 892 and {s["__name__"] for s in full} >= REPORT,
        "unfiltered --list-series: 892 series including the report's metrics", (rc, len(full), err))
    # element levels as the spec defines them: roots are 1 without parent_id, pods 2 under a root
    els = [s for s in full if s["__name__"] == "runai_workload_element_info"]
    roots = {(s["workload_id"], s["element_id"]) for s in els if s.get("hierarchy_level") == "1"}
    tap(els and all((s.get("hierarchy_level") == "1" and "parent_id" not in s) or
                    (s.get("hierarchy_level") == "2" and (s["workload_id"], s.get("parent_id")) in roots)
                    for s in els) and len(roots) == len({s["workload_id"] for s in els}),
        "element_info: one level-1 root per workload, level-2 children under it (1-based levels)",
        [(s.get("hierarchy_level"), s.get("parent_id")) for s in els][:6])
    # the status and resource series the workload API reads (docs/registry.md)
    infos = [s for s in full if s["__name__"] == "runai_workload_info"]
    pend = {s["workload_id"] for s in full if s["__name__"] == "runai_workload_phase" and s["phase"] == "Pending"
            and "phase_reason" in s}
    names = {s["__name__"] for s in full}
    tap(all(s.get("gpu_request_type") in ("portion", "memory") and s.get("requested_pods") in ("1", "2")
            and s.get("k8s_phase") == ("Pending" if s["workload_id"] in pend else "Running") for s in infos)
        and len(pend) == 1 and {"runai_workload_requested_resource", "runai_workload_condition",
                                "runai_workload_pending_scheduling_message"} <= names
        and sum(1 for s in full if s["__name__"] == "runai_workload_requested_resource") == 5 * len(infos),
        "info carries gpu_request_type, requested_pods, k8s_phase; requests, conditions, pending messages sent",
        infos[:1])
    # requestedPods' other fields, by workload type (docs/strata-load.md)
    pods_of = {}
    for s in full:
        if s["__name__"] == "runai_pod_info":
            pods_of.setdefault(s["workload_id"], []).append((s["namespace"], s["pod"]))
    rp = {(s["workload_type"], s["requested_pods"], s.get("requested_pods_min"), s.get("requested_pods_max"),
           s.get("parallelism"), s.get("completions")) for s in infos}
    tap(rp == {("Training", "2", "2", "2", None, None), ("Training", "1", None, None, "1", "1"),
               ("Inference", "1", "1", "3", None, None), ("Workspace", "1", None, None, None, None)},
        "info: distributed training min=max=pods, batch training parallelism=completions=1, "
        "inference min 1 max 3, workspaces neither", sorted(rp, key=str))
    # allocated GPU memory: one series per running pod, the workload's per-pod request;
    # fractional GPUs are asked as memory
    gm = {(s["namespace"], s["pod"]): s for s in full if s["__name__"] == "runai_pod_gpu_memory_allocated_bytes"}
    frac = [s for s in infos if s["gpu_request_type"] == "memory"]
    running_pods = {k for s in infos if s["workload_id"] not in pend for k in pods_of[s["workload_id"]]}
    tap(len(gm) == 10 and set(gm) == running_pods and all(set(s) == {"__name__", "namespace", "pod"}
                                                            for s in gm.values())
        and frac and all(s["workload_type"] == "Workspace" for s in frac)
        and {s["workload_id"] for s in full if s["__name__"] == "runai_workload_requested_resource"
             and s["resource"] == "gpu_memory"} == {s["workload_id"] for s in frac},
        "runai_pod_gpu_memory_allocated_bytes{namespace,pod} for each running pod; fractional GPUs asked as "
        "gpu_memory (gpu_request_type=memory)", (len(gm), len(running_pods), len(frac)))
    rc, rep, err = series_list("--metrics=report")
    want = [s for s in full if s["__name__"] in REPORT]
    tap(rc == 0 and {key(s) for s in rep} == {key(s) for s in want} and len(rep) == len(want) == 215,
        "--metrics=report lists exactly the report's series of the unfiltered list",
        (rc, len(rep), len(want), err))
    tap(rep == want, "--metrics=report keeps the unfiltered catalog order")
    rc, two, err = series_list("--metrics=DCGM_FI_DEV_GPU_UTIL,runai_workload_phase")
    want2 = [s for s in full if s["__name__"] in ("DCGM_FI_DEV_GPU_UTIL", "runai_workload_phase")]
    tap(rc == 0 and two == want2 and len(two) == 66,
        "--metrics=A,B lists exactly the series named A or B", (rc, len(two), len(want2), err))
    rc, same, err = series_list("--metrics=report,runai_pod_info,DCGM_FI_DEV_FB_USED")
    tap(rc == 0 and same == rep, "names repeated beside the preset change nothing", (rc, len(same)))
    r = load("--list-series", "--metrics=report,DCGM_FI_DEV_GPU_UTILS")
    tap(r.returncode == 2 and r.stdout == "" and "'DCGM_FI_DEV_GPU_UTILS'" in r.stderr
        and "DCGM_FI_DEV_GPU_UTIL " in r.stderr,
        "an unknown metric name is a usage error naming it and the valid names", (r.returncode, r.stderr))
    r = load("--list-series", "--metrics=")
    tap(r.returncode == 2 and r.stdout == "", "an empty --metrics is a usage error", (r.returncode, r.stderr))
    return rep


def backfills(tmp, rep):
    ack_f = os.path.join(tmp, "filtered.ack")
    ack_u = os.path.join(tmp, "unfiltered.ack")
    srv_f = Server(os.path.join(tmp, "filtered"), extra=["--retention=0"])
    srv_u = Server(os.path.join(tmp, "unfiltered"), extra=["--retention=0"])
    try:
        r = backfill(srv_f, ack_f, "--metrics=report")
        n = 215 * 240
        tap(r.returncode == 0 and " series=215 " in r.stdout and " samples=%d " % n in r.stdout,
            "filtered backfill: 215 series, %d samples acknowledged" % n, r.stdout + r.stderr)
        r2 = backfill(srv_u, ack_u)
        tap(r2.returncode == 0 and " series=892 " in r2.stdout and " samples=214080 " in r2.stdout,
            "unfiltered backfill: 892 series, 214080 samples", r2.stdout + r2.stderr)
        with open(ack_f) as f:
            head = f.readline()
        tap(head.rstrip().endswith(" metrics=runai_workload_info,runai_workload_gpu_allocation,"
                                   "runai_pod_info,kube_pod_container_resource_requests,"
                                   "container_cpu_usage_seconds_total,container_memory_working_set_bytes,"
                                   "DCGM_FI_DEV_GPU_UTIL,DCGM_FI_DEV_FB_USED"),
            "the ack log header records the selection", head)
        with open(ack_u) as f:
            head_u = f.readline()
        tap("metrics=" not in head_u, "an unfiltered ack log header is unchanged", head_u)

        names = all_names(srv_f)
        tap(names == REPORT, "the filtered store holds only the report's metric names", sorted(names))
        got = export(srv_f, REPORT)
        tap(set(got) == {key(s) for s in rep} and sum(len(d) for d in got.values()) == n,
            "export holds exactly the listed series and every acknowledged sample",
            (len(got), sum(len(d) for d in got.values())))
        ref = export(srv_u, REPORT)
        diff = [k for k in got if got[k] != ref.get(k)]
        tap(got and not diff, "every series' timestamps and value bits equal the unfiltered run's",
            (len(diff), diff[:1]))
        e = load("--expand-ack=" + ack_f)
        exp = {}
        for line in e.stdout.splitlines():
            o = json.loads(line)
            exp[key(o["metric"])] = {t: bits(v) for t, v in zip(o["timestamps"], o["values"])}
        tap(e.returncode == 0 and exp == got,
            "--expand-ack of the filtered log re-derives exactly what was stored",
            (e.returncode, len(exp), len(got), e.stderr[-300:]))
        a = [report(srv_f, gb) for gb in ("Project", None)]
        b = [report(srv_u, gb) for gb in ("Project", None)]
        rows = [x.count(b"\n") - 1 for x in a]
        tap(a == b and rows == [5, 10] and b"llm-pretrain" in a[0],
            "consumption reports (by Project, and per workload) are byte-identical to the unfiltered store's",
            (rows, [x.count(b"\n") - 1 for x in b], a[0][:300]))
        histograms(tmp, head_u)
    finally:
        for s in (srv_f, srv_u):
            s.stop()


def report(srv, group_by):
    """The CSV of a report over the backfilled hour: what --metrics=report must fully feed."""
    body = {"name": "r-%s" % group_by, "start": iso(START * 1000), "end": iso((START + 3600) * 1000)}
    if group_by:
        body["groupBy"] = group_by
    st, _, data = srv.req("POST", "/api/v1/org-unit/reports", json.dumps(body),
                          {"Content-Type": "application/json"})
    if st != 202:
        return b"POST answered %d: %s" % (st, data[:200])
    rid = json.loads(data)["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        st, _, data = srv.get("/api/v1/org-unit/reports/" + rid)
        status = json.loads(data).get("status")
        if status in ("Ready", "Failed"):
            break
        time.sleep(0.05)
    st, _, data = srv.get("/api/v1/org-unit/reports/%s/file" % rid)
    return data if st == 200 else b"file answered %d" % st


def histograms(tmp, head_u):
    """NIM histogram members share one jitter key: --expand-ack of hand-written ack logs (the
    unfiltered header, with and without a metrics= selection) derives the same values."""
    names = ["time_to_first_token_seconds_bucket", "e2e_request_latency_seconds_sum",
             "request_success_total", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]
    t0 = START * 1000 + 3600000

    def expand(path, header, nser):
        with open(path, "w") as f:
            f.write(header.rstrip("\n") + "\n0 %d 40 0 %d 204\n" % (t0, nser))
        e = load("--expand-ack=" + path)
        return e.returncode, {key(json.loads(line)["metric"]): json.loads(line)
                              for line in e.stdout.splitlines()}
    rc_u, full = expand(os.path.join(tmp, "h_u.ack"), head_u, 892)
    nsel = sum(1 for k in full if dict(k)["__name__"] in names)
    rc_f, sel = expand(os.path.join(tmp, "h_f.ack"), head_u.rstrip("\n") + " metrics=" + ",".join(names), nsel)
    want = {k: v for k, v in full.items() if dict(k)["__name__"] in names}
    tap(rc_u == 0 and rc_f == 0 and nsel == 51 + 3 + 3 + 46 and sel == want,
        "histogram, counter and energy series derive the same values with a selection",
        (rc_u, rc_f, nsel, len(sel), len(want)))


def metric(srv, name):
    st, _, body = srv.get("/metrics")
    return metric_value(body, name) if st == 200 else None


def rate(tmp):
    """--rate with fewer slots than workers (docs/strata-load.md, "Modes")."""
    srv = Server(os.path.join(tmp, "rate"), extra=["--retention=0"])
    try:
        for label, extra in (("1 slot, 2 workers", ["--batch-size=2000", "--concurrency=2"]),
                             ("3 slots, 4 workers", ["--batch-size=140", "--concurrency=4"])):
            before = metric(srv, "strata_ingested_samples_total") or 0
            r = load("--url=%s/api/v1/write" % srv.url, "--max-throughput", "--duration=3", "--rate=4000",
                     "--quiet", "--workloads=4", "--nodes=1", *extra)
            kv = dict(f.split("=", 1) for f in r.stdout.splitlines()[0].split()[1:] if "=" in f) \
                if r.stdout else {}
            elapsed = float(kv.get("elapsed_s", "0"))
            achieved = float(kv.get("samples_per_s", "0"))
            stored = (metric(srv, "strata_ingested_samples_total") or 0) - before
            # generous upper bound too: the cap must still cap
            tap(r.returncode == 0 and 3600 <= achieved <= 4400 and elapsed >= 2.5
                and stored == int(kv.get("samples", "-1")) and stored >= 0.9 * 4000 * elapsed,
                "--rate=4000 with %s: at least 90%% of the rate, by the summary and by strata's count" % label,
                (r.returncode, achieved, elapsed, stored, r.stdout, r.stderr[-300:]))
    finally:
        srv.stop()


def main():
    for b in (LOAD, os.path.join(BUILD, "strata")):
        if not os.access(b, os.X_OK):
            print("not ok - %s is not built" % b)
            return 1
    tmp = tempfile.mkdtemp(prefix="strata-load-test-")
    try:
        rep = listing()
        backfills(tmp, rep)
        rate(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % TAPS)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
