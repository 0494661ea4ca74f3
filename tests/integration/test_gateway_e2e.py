#!/usr/bin/env python3
"""test_gateway_e2e.py: two gateways, each receiving half of a real Prometheus' scrapes, answer
like one local-store strata holding all of them (docs/scale-out.md, "End to end").

A real Prometheus 2.42 scrapes four exporter targets served by this script (tests/lib/
runai_exporter.py: a small Run:ai cluster whose workloads are spread over the targets, so each
half holds workloads only in part) every 3 s, and remote-writes:
  - to gateway A of each engine the targets 0 and 2, to gateway B the targets 1 and 3
    (write_relabel_configs on `instance`);
  - to a reference strata with its local store, all four.
Two engines run side by side, fed by the same scrapes: a victoria-metrics, and a second
Prometheus 2.42 with --web.enable-remote-write-receiver.  Each engine has its two gateways
(--remote-write-url and --remote-query-url at it, --registry-refresh=1s).  Scrapes are 3 s
apart; after 9 of every target the scraper is stopped (SIGTERM) at a quiet moment, once every
receiver holds every sample scraped and no scrape is due (a scrape cut short by the shutdown
would write stale markers, and a scrape the remote-write queues had not read yet would reach
some receivers only).  Each receiver must then hold exactly the samples scraped (count), each
gateway must have shipped all of it (queue empty, nothing failed), and each gateway must answer
exactly what the reference answers:
  - /api/v1/export of every series: labels, timestamps, value bits;
  - the workload lists (live, deleted, paged and sorted), the count, every workload by id;
  - metrics of all 23 types for every workload at numberOfSamples 12 and 0 over the data's
    range;
  - telemetry, 4 types, grouped;
  - consumption reports, 3 groupings: the same CSV.
One workload (W6) ends mid-run: its series leave node-2's exposition, and the scraper writes a
stale marker for each.  The reference deletes W6 at the marker (checked); through
victoria-metrics, whose export returns markers, the gateways answer exactly the reference.
Through Prometheus the range selector drops markers, so series end at the staleness instead
(docs/scale-out.md, "What differs"): the gateways must answer exactly what a second local store
answers that holds the reference's samples without the markers (W6 live there, to its last
sample + 5m), lists, by id, metrics, telemetry and reports alike; export is the reference's
(it never shows markers).  The gateway that took W6's pushes must answer like the one that
learns W6 from the engine (it did not: see tests/test_gateway_feed.c).
Answers that depend on the wall clock (lists, by id,
telemetry) are read reference, A, B, reference: each gateway's must equal one of the two.
Everything on 127.0.0.1 with temp dirs; every process is stopped.  TAP, plan first.
"""
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from runai_exporter import TARGETS, W6, W6_LAST, WORKLOADS, samples, series_total, start_targets  # noqa: E402
from strata_client import (Server, export_all, free_port, http_call, iso, json_diff, json_get,  # noqa: E402
                           kill_all, metric_value, report_csv, rw1, spawn, wait_http)

SCRAPES = 9           # scrapes of every target before the scraper stops
INTERVAL = 3          # the scrape interval (s): 4 targets leave a gap of 0.75 s or more
QUIET_AFTER = 0.1     # the scraper is stopped no sooner than this after a scrape (s)
QUIET_BEFORE = 0.3    # nor later than this before the next one is due (s)
HALF = {"A": (0, 2), "B": (1, 3)}   # the targets each gateway of an engine receives
ENGINES = ["victoria-metrics", "prometheus"]
COMMON = ["--gpu-idle-after=10s"]   # the idle GPUs of the data idle within the run
TYPES = [
    ["GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_MEMORY_REQUEST_BYTES", "GPU_ALLOCATION",
     "CPU_USAGE_CORES", "CPU_REQUEST_CORES", "CPU_LIMIT_CORES", "CPU_MEMORY_REQUEST_BYTES",
     "CPU_MEMORY_LIMIT_BYTES", "CPU_MEMORY_USAGE_BYTES"],
    ["POD_COUNT", "RUNNING_POD_COUNT", "NIM_NUM_REQUESTS_RUNNING", "NIM_NUM_REQUESTS_WAITING",
     "NIM_NUM_REQUEST_MAX", "NIM_REQUEST_SUCCESS_TOTAL", "NIM_REQUEST_FAILURE_TOTAL",
     "NIM_GPU_CACHE_USAGE_PERC", "NVLINK_BANDWIDTH_TOTAL"],
    ["NIM_TIME_TO_FIRST_TOKEN_SECONDS", "NIM_E2E_REQUEST_LATENCY_SECONDS",
     "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES", "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"],
]
TELEMETRY = ["WORKLOADS_COUNT", "GPU_ALLOCATION", "IDLE_ALLOCATED_GPUS", "PENDING_TIME_DISTRIBUTION"]
LISTS = ["/api/v1/workloads?limit=500", "/api/v1/workloads?limit=500&deleted=true", "/api/v1/workloads/count",
         "/api/v1/workloads?limit=2&offset=1&sortBy=name"]
PLAN = 4 + 7 * len(ENGINES)

tmp = tempfile.mkdtemp(prefix="strata-gwe2e-")
procs = []
servers = []
FAILS = 0


def tap(ok, name, detail=""):
    global FAILS
    print(("ok - " if ok else "not ok - ") + name, flush=True)
    if not ok:
        FAILS += 1
        if detail:
            print("#   " + str(detail)[:2000].replace("\n", "\n#   "), flush=True)
    return ok


def cleanup():
    for s in servers:
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001 (a failed stop is reported, the rest still stop)
            print("# strata did not stop cleanly: %s" % str(e)[:500].replace("\n", "\n# "))
    kill_all(procs)
    if os.environ.get("STRATA_KEEP_TMP"):
        print("# kept " + tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def sandwich(ref, gws, path):
    """[] when each gateway's answer equals the reference's taken just before or just after
    (the wall clock moves between them), else what differs."""
    a = json_get(ref, path)
    gs = [json_get(g, path) for g in gws]
    b = json_get(ref, path)
    bad = []
    if a[0] != 200:
        bad.append((path, "reference", a))
    for name, g in zip("AB", gs):
        if g != a and g != b:
            bad.append((path, name, g[0], json_diff(a[1], g[1]) if a[0] == g[0] == 200 else g))
    return bad


def poll(fn, timeout):
    """fn() -> (done, detail), called until done or timeout; the last (done, detail)."""
    end = time.time() + timeout
    while True:
        done, detail = fn()
        if done or time.time() > end:
            return done, detail
        time.sleep(0.5)


def scrape_config(targets, gws, ref):
    inst = ["127.0.0.1:%d" % s.server_address[1] for s, _ in targets]
    INSTANCES[:] = inst
    half = {side: [inst[t] for t in ts] for side, ts in HALF.items()}
    out = ["global:", "  scrape_interval: %ds" % INTERVAL, "  scrape_timeout: %ds" % INTERVAL, "scrape_configs:",
           "  - job_name: runai-e2e", "    static_configs: [{targets: [%s]}]" % ", ".join("'%s'" % i for i in inst),
           "remote_write:"]
    queue = "    queue_config: {batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 1s}"
    for (engine, side), gw in sorted(gws.items()):
        out += ["  - url: %s/api/v1/write" % gw.url, "    name: %s-%s" % (engine, side), queue,
                "    write_relabel_configs:",
                "      - {source_labels: [instance], regex: '%s', action: keep}"
                % "|".join(i.replace(".", "\\.") for i in half[side])]
    out += ["  - url: %s/api/v1/write" % ref.url, "    name: reference", queue]
    return "\n".join(out) + "\n"


def start_engine(engine):
    port = free_port()
    d = os.path.join(tmp, engine)
    if engine == "victoria-metrics":
        p = spawn(engine, ["victoria-metrics", "-storageDataPath=" + d, "-httpListenAddr=127.0.0.1:%d" % port,
                           "-retentionPeriod=100y", "-loggerLevel=ERROR"], tmp, procs)
        wait_http("http://127.0.0.1:%d/health" % port, p, engine)
    else:
        cfg = os.path.join(tmp, "engine.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1h\n")
        p = spawn(engine, ["prometheus", "--storage.tsdb.path=" + d, "--web.listen-address=127.0.0.1:%d" % port,
                           "--web.enable-remote-write-receiver", "--config.file=" + cfg, "--log.level=error"],
                  tmp, procs)
        wait_http("http://127.0.0.1:%d/-/ready" % port, p, engine)
    return port


def selfmon(srv, *names):
    st, _, body = srv.get("/metrics")
    return [metric_value(body, n) if st == 200 else None for n in names]


def expected_samples(served, side=None, markers=True):
    """Samples a receiver of the given half (None: all targets) has after `served` scrapes: each
    scrape of target t gives its series and the scraper's 5 own (up, scrape_duration_seconds,
    scrape_samples_scraped, scrape_samples_post_metric_relabeling, scrape_series_added), and the
    stale markers of the series gone since the scrape before (W6's), unless markers is False."""
    return sum(samples(t, n)[0] - (0 if markers else samples(t, n)[1]) + 5 * n
               for t, n in enumerate(served) if side is None or t in HALF[side])


def scrape(targets, gws, ref):
    """Scrape every target SCRAPES times or more, then stop the scraper (SIGTERM) in a quiet
    moment: no scrape for QUIET_AFTER s and none due for QUIET_BEFORE s, and every receiver has
    every sample scraped so far.  Prometheus' remote write reads its WAL behind the scrapes, and a
    scrape cut short by the shutdown is a failed scrape (up 0 and stale markers): a SIGTERM at any
    other moment can leave one receiver without a scrape another has.  Returns (exit code, the
    scrapes served at the SIGTERM, the scrapes served at the end)."""
    port = free_port()
    cfg = os.path.join(tmp, "scraper.yml")
    with open(cfg, "w") as f:
        f.write(scrape_config(targets, gws, ref))
    p = spawn("scraper", ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(tmp, "scraper"),
                          "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"], tmp, procs)
    wait_http("http://127.0.0.1:%d/-/ready" % port, p, "the scraping prometheus")
    end = time.time() + 30 + SCRAPES * INTERVAL
    receivers = [(None, ref)] + [(side, g) for (_, side), g in sorted(gws.items())]
    served = None
    while time.time() < end:
        if p.poll() is not None:
            raise RuntimeError("the scraping prometheus exited early (%s)" % p.returncode)
        snap = [(s["n"], s["t"]) for _, s in targets]
        now = time.time()
        quiet = all(now - t >= QUIET_AFTER and t + INTERVAL - now >= QUIET_BEFORE for _, t in snap)
        if min(n for n, _ in snap) >= SCRAPES and quiet:
            ns = [n for n, _ in snap]
            got = [selfmon(g, "strata_ingested_samples_total")[0] for _, g in receivers]
            if (got == [expected_samples(ns, side) for side, _ in receivers]
                    and [(s["n"], s["t"]) for _, s in targets] == snap
                    and all(t + INTERVAL - time.time() >= QUIET_BEFORE / 2 for _, t in snap)):
                p.send_signal(signal.SIGTERM)
                served = ns
                break
        time.sleep(0.02)
    if served is None:
        p.send_signal(signal.SIGTERM)
    try:
        rc = p.wait(timeout=90)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    return rc, served, [s["n"] for _, s in targets]


def check_reference(ref, want):
    """The reference holds the whole cluster: W6 deleted at its stale marker (the timestamp of
    node-2's scrape after its last, the scraper's own `up` series of that target), the other
    workloads live, every metric type with data."""
    st, lst = json_get(ref, "/api/v1/workloads?limit=500")
    ids = sorted(w["id"] for w in lst.get("workloads", [])) if st == 200 else lst
    st2, dl = json_get(ref, "/api/v1/workloads?limit=500&deleted=true")
    up2 = [v for k, v in want.items() if dict(k)["__name__"] == "up" and dict(k)["instance"] == INSTANCES[2]]
    marker = iso(up2[0][W6_LAST][0]) if len(up2) == 1 and len(up2[0]) > W6_LAST else None
    deleted = [(w["id"], w.get("deletedAt")) for w in dl.get("workloads", [])] if st2 == 200 else dl
    rng, _ = data_range(ref)
    empty = set(t for grp in TYPES for t in grp)
    for wid in WORKLOADS:
        for grp in TYPES:
            st3, m = json_get(ref, "/api/v1/workloads/%s/metrics?metricType=%s&%s&numberOfSamples=12"
                         % (wid, ",".join(grp), rng))
            for x in (m.get("measurements", []) + m.get("histogram", []) if st3 == 200 else []):
                if x.get("values"):
                    empty.discard(x["type"])
    tap(ids == sorted(set(WORKLOADS) - {W6}) and marker and deleted == [(W6, marker)] and not empty,
        "reference: five workloads live, W6 deleted at its stale marker (%s), all 23 metric types with data"
        % marker, (ids, marker, deleted, sorted(empty)))


def unmarked(ref, want):
    """A second local store holding the reference's samples without the stale markers (its export
    never shows them): what a Prometheus-flavoured engine answers (docs/scale-out.md, "What
    differs": the range selector drops markers, so series end at the staleness instead)."""
    ref2 = Server(os.path.join(tmp, "reference-unmarked"), extra=COMMON)
    servers.append(ref2)
    series = [(sorted(k, key=lambda kv: kv[0] != "__name__"),
               [(struct.unpack("<d", bytes.fromhex(b))[0], t) for t, b in v]) for k, v in want.items()]
    st, _, body = ref2.write(rw1(series))
    _, exp2 = export_all(ref2)
    _, w1 = json_get(ref, "/api/v1/workloads/" + W6)
    _, w2 = json_get(ref2, "/api/v1/workloads/" + W6)
    tap(st == 204 and exp2 == want and w1.get("deletedAt") and w2.get("deletedAt") is None,
        "a second local store holding the reference's samples but not the stale markers: the same export, "
        "W6 live there (deleted at its last sample + 5m, still to come)", (st, body[:200], exp2 == want, w1, w2))
    return ref2


RANGE = {}
INSTANCES = []


def data_range(ref):
    """metrics query range over the data: from 700 ms before the first sample to 300 ms after the
    last (off every scrape time), and the report body's range (off the hour grid)."""
    if not RANGE:
        st, ex = export_all(ref)
        ts = [t for s in ex.values() for t, _ in s] if st == 200 else [0]
        RANGE["lo"], RANGE["hi"] = min(ts) - 700, max(ts) + 300
    return "start=%s&end=%s" % (iso(RANGE["lo"]), iso(RANGE["hi"])), (RANGE["lo"], RANGE["hi"])


def compare(engine, ref, gws, want, who):
    ga, gb = gws[(engine, "A")], gws[(engine, "B")]
    pair = [ga, gb]
    # the engine holds every sample: each gateway's export (read from it) is the reference's
    def same_export():
        got = [export_all(g) for g in pair]
        return all(g == (200, want) for g in got), [
            (g[0], len(g[1]) if g[0] == 200 else g[1], sorted(set(want) ^ set(g[1]))[:2] if g[0] == 200 else None,
             [k for k in want if g[0] == 200 and k in g[1] and g[1][k] != want[k]][:2]) for g in got]
    ok, d = poll(same_export, 30)
    tap(ok, "%s: export of every series (%d) through gateways A and B equals the reference's (labels, "
        "timestamps, value bits)" % (engine, len(want)), d)
    # the registries: each gateway learns the other half by --registry-refresh
    ok, d = poll(lambda: (lambda b: (not b, b))(sandwich(ref, pair, LISTS[0])), 30)
    bad = [] if ok else d
    for path in LISTS[1:]:
        bad += sandwich(ref, pair, path)
    tap(not bad, "%s: workload lists and count of gateways A and B equal %s" % (engine, who), bad[:2])
    bad = []
    for wid in WORKLOADS:
        bad += sandwich(ref, pair, "/api/v1/workloads/" + wid)
    tap(not bad, "%s: every workload by id equals %s" % (engine, who), bad[:2])
    rng, _ = data_range(ref)
    for n in (12, 0):
        bad = []
        for wid in WORKLOADS:
            for grp in TYPES:
                path = "/api/v1/workloads/%s/metrics?metricType=%s&%s&numberOfSamples=%d" % (
                    wid, ",".join(grp), rng, n)
                a = json_get(ref, path)
                for name, g in zip("AB", pair):
                    b = json_get(g, path)
                    if a[0] != 200 or b != a:
                        bad.append((wid, grp[0], name, a[0], b[0],
                                    json_diff(a[1], b[1]) if a[0] == b[0] == 200 else (a, b)))
        tap(not bad, "%s: metrics of all 23 types, numberOfSamples=%d, of every workload equal %s"
            % (engine, n, who), bad[:2])
    bad = []
    for t in TELEMETRY:
        for grp in ("", "&groupBy=Phase", "&groupBy=ProjectId,Type", "&groupBy=CurrentNodepools"):
            if t == "PENDING_TIME_DISTRIBUTION" and "," in grp:
                continue
            bad += sandwich(ref, pair, "/api/v1/workloads/telemetry?telemetryType=%s%s" % (t, grp))
    tap(not bad, "%s: telemetry (4 types, grouped) equals %s" % (engine, who), bad[:2])
    _, (lo, hi) = data_range(ref)
    bad = []
    for grp in (None, "Project", "Nodepool"):
        body = {"name": "e2e %s %s" % (engine, grp), "start": iso(lo - 1000), "end": iso(hi + 1000)}
        if grp:
            body["groupBy"] = grp
        csvs = [report_csv(s, body) for s in (ref, ga, gb)]
        if not csvs[0][0] or csvs[0][1].count("\n") < 3 or csvs[1] != csvs[0] or csvs[2] != csvs[0]:
            bad.append((grp, csvs))
    tap(not bad, "%s: consumption reports (3 groupings) give %s CSV" % (engine, who), bad[:1])


def main():
    print("1..%d" % PLAN, flush=True)
    targets = start_targets()
    ports = {e: start_engine(e) for e in ENGINES}
    ref = Server(os.path.join(tmp, "reference"), extra=COMMON)
    servers.append(ref)
    gws = {}
    for e in ENGINES:
        for side in "AB":
            url = "http://127.0.0.1:%d" % ports[e]
            gws[(e, side)] = Server(os.path.join(tmp, "gw-%s-%s" % (e, side)), extra=COMMON + [
                "--remote-write-url=%s/api/v1/write" % url, "--remote-query-url=" + url,
                "--registry-refresh=1s", "--query-timeout=30s"])
            servers.append(gws[(e, side)])
    rc, served, final = scrape(targets, gws, ref)
    for srv, _ in targets:
        srv.shutdown()
    # every receiver has exactly what the scraper scraped (nothing lost, no stale marker from the
    # shutdown), and every gateway shipped it all: queue empty, nothing failed
    names = ["strata_ingested_samples_total", "strata_remote_samples_shipped_total",
             "strata_remote_samples_failed_total", "strata_remote_queue_bytes"]
    want = {(e, side): expected_samples(final, side) for e, side in gws}

    def flushed():
        m = {k: selfmon(g, *names) for k, g in gws.items()}
        return all(v == [want[k], want[k], 0, 0] for k, v in m.items()), m
    ok, m = poll(flushed, 30)
    (total,) = selfmon(ref, names[0])
    tap(rc == 0 and served == final and ok and total == expected_samples(final),
        "the scraper stopped cleanly after %s scrapes (no scrape after the SIGTERM); the reference took all "
        "%s samples, each gateway its half (%s and %s), and shipped it all (queue empty, none failed)"
        % (final, total, want[(ENGINES[0], "A")], want[(ENGINES[0], "B")]),
        (rc, served, final, total, expected_samples(final), m))
    http_call("http://127.0.0.1:%d/internal/force_flush" % ports["victoria-metrics"])
    st, want = export_all(ref)
    nseries = sum(series_total(t, n) + 5 for t, n in enumerate(final))
    tap(st == 200 and len(want) == nseries
        and sum(len(v) for v in want.values()) == expected_samples(final, markers=False),
        "reference: export of every series (%d), every sample scraped" % nseries,
        (st, want if st != 200 else (len(want), sum(len(v) for v in want.values()))))
    check_reference(ref, want)
    ref2 = unmarked(ref, want)
    for e in ENGINES:
        if e == "prometheus":
            compare(e, ref2, gws, want, "the unmarked reference's")
        else:
            compare(e, ref, gws, want, "the reference's")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    t_start = time.time()
    try:
        main()
    except (RuntimeError, OSError) as e:
        tap(False, "the engines, gateways, reference and scraper run", e)
    finally:
        cleanup()
        print("# %.1f s" % (time.time() - t_start))
    sys.exit(1 if FAILS else 0)
