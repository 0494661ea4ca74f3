#!/usr/bin/env python3
"""test_gateway_read.py: the read path of a gateway (docs/scale-out.md, "Read path").

The same strata-load backfill (1 h, fixed seed, start an hour ago) goes into
  (a) a local-store strata, and
  (b) a real engine, straight to its remote-write endpoint: victoria-metrics,
      then Prometheus 2.42 (--web.enable-remote-write-receiver).
A second strata with no data of its own and --remote-query-url pointing at the
engine must then answer like the local one:
  - workloads: the list (live and deleted), the count, every workload by id;
  - metrics: several types (gauges, a counter rate, an increase, last, a
    histogram, percentiles) with numberOfSamples 12 and 0;
  - telemetry: the four types, grouped;
  - consumption reports (3 groupings): the same CSV;
  - /api/v1/export of every series: the same labels, timestamps and value bits,
    and by selectors with quotes, backslashes, UTF-8 and regexes.
A workload whose info series ends with a stale marker is in both: deleted at
the marker through victoria-metrics (export: null), and through Prometheus
(the range selector drops markers) at its last sample + --staleness, exactly
the difference docs/scale-out.md names.
Answers that depend on the wall clock (phase durations) are taken local,
gateway, local: the gateway's must equal one of the two local ones.
With victoria-metrics the gateway starts before its engine is even up (and
must be ready) and before the data, and must learn the
workloads through --registry-refresh; with Prometheus, through the rebuild at
start.  Then the engine is stopped (SIGSTOP: 503 within --query-timeout) and
killed: export and metrics answer 503 with a message naming the engine, never
a partial answer, and a report fails with that message.
Tenants through a real router, with VictoriaMetrics' cluster paths: vmauth
(bearer token) routes /select/{1,2}/prometheus/... to one victoria-metrics per
tenant and /insert/{1,2}/prometheus/... to a vmagent per tenant that writes
into that victoria-metrics.  A writing gateway
(--remote-write-url=.../insert/{tenant}/prometheus/api/v1/write) ships both
tenants' pushes: each engine holds exactly its tenant's series.  A reading
gateway (--remote-query-url=.../select/{tenant}/prometheus, --remote-tenants=1,2,
--remote-bearer-token-file) answers each tenant's workloads and export as a
local store holding both does, and nothing of the other tenant.
Everything on 127.0.0.1 with temp dirs; every process is stopped.  TAP, plan last.
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from strata_client import (SECRET, Server, export_all, free_port, http_call, iso, json_diff,  # noqa: E402
                           json_get, kill_all, metric_value, report_csv, rw1, snappy, spawn, token,
                           value_bits, wait_http)

BUILD = os.environ.get("STRATA_BUILD", "build")
LOAD = os.path.join(BUILD, "strata-load")
TRACE = os.path.join(os.environ.get("STRATA_SPEC_DIR", "../shared/spec"), "..", "data", "h200-nvml-trace.csv")
# an hour of data ending now (live workloads), starting off the 5-minute grid: buckets of the
# metrics queries (5 min at numberOfSamples=12) then never line up with the local store's 5m
# rollups, so both sides bucket raw samples (docs/scale-out.md, "What differs": rollups).
# STRATA_GW_ALIGNED=1 starts on the grid instead (to look at that difference).
START = (int(time.time()) - 3630) // 15 * 15
if START % 300 == 0:
    START -= 15
if os.environ.get("STRATA_GW_ALIGNED"):
    START = START // 300 * 300
CLUSTER = ["--workloads=6", "--nodes=2", "--scrape-interval=15s", "--start=%d" % START, "--seed=7"]
if os.path.exists(TRACE):
    CLUSTER.append("--trace=" + TRACE)
TYPES = ["GPU_UTILIZATION", "GPU_MEMORY_USAGE_BYTES", "GPU_ALLOCATION", "CPU_USAGE_CORES",
         "CPU_MEMORY_USAGE_BYTES", "POD_COUNT", "RUNNING_POD_COUNT", "NIM_REQUEST_SUCCESS_TOTAL",
         "NIM_TIME_TO_FIRST_TOKEN_SECONDS", "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES"]
TELEMETRY = ["WORKLOADS_COUNT", "GPU_ALLOCATION", "IDLE_ALLOCATED_GPUS", "PENDING_TIME_DISTRIBUTION"]
FAILS = 0
TAPS = 0
tmp = tempfile.mkdtemp(prefix="strata-gwread-")
procs = []
servers = []


def tap(ok, name, detail=""):
    global FAILS, TAPS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name, flush=True)
    if not ok:
        FAILS += 1
        if detail:
            print("#   " + str(detail)[:1500].replace("\n", "\n#   "), flush=True)


def cleanup():
    for s in servers:
        try:
            s.stop()
        except Exception as e:  # noqa: BLE001 (a failed stop is reported, the rest still stop)
            tap(False, "strata stops cleanly", e)
    kill_all(procs)
    shutil.rmtree(tmp, ignore_errors=True)


def load(url, *extra):
    r = subprocess.run([LOAD, "--url=" + url, "--backfill=1", "--samples-per-series=20", "--batch-size=300",
                        "--quiet"] + CLUSTER + list(extra), capture_output=True, text=True, timeout=300)
    return r.returncode, r.stderr[-500:]


def close_values(x, y):
    """Two JSON values (numbers or numeric strings) equal to 1e-12 relative."""
    try:
        fx, fy = float(x), float(y)
    except (TypeError, ValueError):
        return x == y
    return fx == fy or abs(fx - fy) <= 1e-12 * max(abs(fx), abs(fy))


def sandwich(local, gw, path, tok=None, expect=None):
    """(ok, detail): the gateway's answer equals a local answer taken just before or just after
    (expect(answer, path): what the gateway must give instead, where it differs by design)."""
    a = json_get(local, path, tok)
    g = json_get(gw, path, tok)
    b = json_get(local, path, tok)
    if expect:
        a, b = expect(a, path), expect(b, path)
    return g == a or g == b, (path, a[0], g[0], json_diff(a[1], g[1]) if a[0] == g[0] == 200 else (a, g))


def rng_body(grp, engine):
    b = {"name": "gw %s %s" % (engine, grp), "start": iso(START * 1000), "end": iso((START + 3600) * 1000)}
    if grp:
        b["groupBy"] = grp
    return b


def compare(engine, local, gw):
    ex = prom_expected if engine == "prometheus" else None
    rng = "start=%s&end=%s" % (iso(START * 1000), iso((START + 3600) * 1000))
    st, lst = json_get(local, "/api/v1/workloads?limit=500")
    wids = [w["id"] for w in lst.get("workloads", [])] if st == 200 else []
    st2, dl = json_get(local, "/api/v1/workloads?limit=500&deleted=true")
    dids = [w["id"] for w in dl.get("workloads", []) if w["id"] != STALE_WID] if st2 == 200 else []
    tap(st == 200 and len(wids) >= 3, "%s: the local store knows the workloads" % engine, (st, lst))
    # the rebuild at start read the engine: the same registry
    ok = True
    bad = []
    for path in ["/api/v1/workloads?limit=500", "/api/v1/workloads?limit=500&deleted=true",
                 "/api/v1/workloads/count", "/api/v1/workloads?limit=2&offset=1&sortBy=name"]:
        o, d = sandwich(local, gw, path, expect=ex)
        ok &= o
        if not o:
            bad.append(d)
    tap(ok, "%s: workload lists and count equal the local store's" % engine, bad)
    bad = []
    for wid in wids + [STALE_WID]:
        o, d = sandwich(local, gw, "/api/v1/workloads/" + wid, expect=ex)
        if not o:
            bad.append(d)
    tap(not bad, "%s: every workload by id equals the local store's%s" % (
        engine, " (the stale-marked one deleted at its last sample + 5m)" if ex else " (the stale-marked one "
        "deleted at its marker)"), bad[:2])
    for n in (12, 0):
        bad = []
        for wid in wids + dids:
            path = "/api/v1/workloads/%s/metrics?metricType=%s&%s&numberOfSamples=%d" % (
                wid, ",".join(TYPES), rng, n)
            a, g = json_get(local, path), json_get(gw, path)
            if a != g or a[0] != 200:
                bad.append((path[-60:], a[0], g[0], json_diff(a[1], g[1]) if a[0] == g[0] == 200 else (a, g)))
        tap(not bad, "%s: metrics of %d types, numberOfSamples=%d, equal the local store's" % (engine, len(TYPES), n),
            bad[:1])
    # a layout on the 5m grid: the local store reads its 5m rollups, the gateway raw samples
    # (an engine keeps none). Equal except the first bucket, which the rollups start after
    # `start` while DESIGN 5 (and the raw path) put the sample at `start` in it.
    g0 = (START // 300 + 2) * 300 * 1000
    bad = []
    for wid in wids:
        path = "/api/v1/workloads/%s/metrics?metricType=%s&start=%s&end=%s&numberOfSamples=6" % (
            wid, ",".join(TYPES), iso(g0), iso(g0 + 1800000))
        a, g = json_get(local, path), json_get(gw, path)
        if a[0] != 200 or g[0] != 200:
            bad.append((wid, a, g))
            continue
        strip = lambda o: [dict(m, values=m["values"][1:], first=m["values"][0]["timestamp"] if m["values"] else None)
                           for m in o.get("measurements", [])]
        # a bucket's mean from 5m rollup sums adds the same samples in another order than the
        # raw path: equal to 1e-12 relative, not bit for bit
        d = [x for x in json_diff(strip(a[1]), strip(g[1]), limit=10 ** 9) if not close_values(x[1], x[2])]
        if d or a[1].get("histogram") is None and g[1].get("histogram") is not None:
            bad.append((wid, d))
        ha = [dict(h, values=h["values"][1:]) for h in a[1].get("histogram") or []]
        hg = [dict(h, values=h["values"][1:]) for h in g[1].get("histogram") or []]
        if ha != hg:
            bad.append((wid, "histogram", json_diff(ha, hg)))
    tap(not bad, "%s: metrics on the 5m grid (local from rollups) equal the local store's but for the first "
        "bucket (docs/scale-out.md)" % engine, bad[:2])
    bad = []
    for t in TELEMETRY:
        for grp in ("", "&groupBy=Phase", "&groupBy=ProjectId,Type"):
            if t == "PENDING_TIME_DISTRIBUTION" and "," in grp:
                continue
            o, d = sandwich(local, gw, "/api/v1/workloads/telemetry?telemetryType=%s%s" % (t, grp), expect=ex)
            if not o:
                bad.append(d)
    tap(not bad, "%s: telemetry (4 types, grouped) equals the local store's" % engine, bad[:2])
    bad = []
    for sel in AWKWARD_SELECTORS:
        a, g = export_sel(local, sel), export_sel(gw, sel)
        if a != g or a[0] != 200 or b"gw_awkward" not in a[1]:
            bad.append((sel, a, g))
    tap(not bad, "%s: export by selectors with quotes, backslashes, UTF-8 and regexes equals the local store's"
        % engine, bad)
    bad = []
    for grp in (None, "Project", "Nodepool"):
        csvs = [report_csv(srv, rng_body(grp, engine)) for srv in (local, gw)]
        if csvs[0] != csvs[1] or not csvs[0][0] or csvs[0][1].count("\n") < 3:
            bad.append((grp, csvs))
    tap(not bad, "%s: consumption reports (3 groupings) give the same CSV as the local store's" % engine, bad[:1])
    sl, el = export_all(local)
    sg, eg = export_all(gw)
    tap(sl == 200 and sg == 200 and len(el) > 100 and el == eg,
        "%s: /api/v1/export of every series: same labels, timestamps and value bits" % engine,
        (sl, sg, len(el) if sl == 200 else el, len(eg) if sg == 200 else eg,
         sorted(set(el) ^ set(eg))[:3] if sl == sg == 200 else None,
         [k for k in el if k in eg and el[k] != eg[k]][:2] if sl == sg == 200 else None))


def refresh(local, gw):
    """The gateway started before the engine was up and had any data (as if another gateway
    took every push): the workloads reach its registry through --registry-refresh (1s here; its
    --ooo-window of 2h makes each round re-read the backfilled hour)."""
    end = time.time() + 30
    ok, d = False, None
    while time.time() < end and not ok:
        ok, d = sandwich(local, gw, "/api/v1/workloads?limit=500")
        if not ok:
            time.sleep(1)
    tap(ok, "victoria-metrics: a gateway started before its engine was up is ready, and workloads "
        "written to the engine later reach its registry by refresh", d)


def engine_down(engine, proc, gw, wid):
    # slow: the engine stopped (SIGSTOP) answers nothing; --query-timeout (5s) bounds the call
    rng = "start=%s&end=%s" % (iso(START * 1000), iso((START + 3600) * 1000))
    proc.send_signal(signal.SIGSTOP)
    t0 = time.time()
    st, _, body = gw.get("/api/v1/workloads/%s/metrics?metricType=GPU_UTILIZATION&%s" % (wid, rng))
    took = time.time() - t0
    proc.send_signal(signal.SIGCONT)
    try:
        o = json.loads(body)
    except ValueError:
        o = {}
    tap(st == 503 and took < 8 and "remote engine http://127.0.0.1:" in o.get("details", "")
        and "no answer within" in o.get("details", ""),
        "%s slow: metrics answer 503 within --query-timeout, naming the engine" % engine, (st, took, body[:300]))
    kill_all([proc])
    st, _, body = gw.get("/api/v1/export?" + urllib.parse.urlencode({"match[]": '{__name__=~".+"}'}))
    msg = json.loads(body).get("message", "") if st == 503 else body[:200]
    tap(st == 503 and "remote engine http://127.0.0.1:" in msg,
        "%s down: export answers 503 naming the engine" % engine, (st, msg))
    rng = "start=%s&end=%s" % (iso(START * 1000), iso((START + 3600) * 1000))
    st, _, body = gw.get("/api/v1/workloads/%s/metrics?metricType=GPU_UTILIZATION,GPU_ALLOCATION&%s" % (wid, rng))
    msg = json.loads(body).get("message", "") if st == 503 else body[:200]
    tap(st == 503 and "remote engine http://127.0.0.1:" in msg,
        "%s down: metrics answer 503 naming the engine, no partial answer" % engine, (st, msg))
    ok, r = report_csv(gw, rng_body("Project", engine + " down"))
    tap(not ok and r.get("status") == "Failed" and "remote engine http://127.0.0.1:" in r.get("statusMessage", ""),
        "%s down: a report fails, its message naming the engine" % engine, r)


def run_engine(engine, local):
    port = free_port()
    d = os.path.join(tmp, engine)
    flavor = "victoriametrics" if engine == "victoria-metrics" else "auto"
    gwargs = ["--remote-query-url=http://127.0.0.1:%d" % port, "--remote-query-flavor=" + flavor,
              "--query-timeout=5s", "--registry-refresh=1s", "--ooo-window=2h"]
    gw = None
    if engine == "victoria-metrics":
        # the gateway starts while its engine is not even up (it must start, ready), and
        # before the data: its registry learns the workloads by refresh
        gw = Server(os.path.join(tmp, "gw-" + engine), extra=gwargs)
        servers.append(gw)
        p = spawn(engine, ["victoria-metrics", "-storageDataPath=" + d, "-httpListenAddr=127.0.0.1:%d" % port,
                           "-retentionPeriod=100y", "-loggerLevel=ERROR"], tmp, procs)
        wait_http("http://127.0.0.1:%d/health" % port, p, engine)
    else:
        p = spawn(engine, ["prometheus", "--storage.tsdb.path=" + d, "--web.listen-address=127.0.0.1:%d" % port,
                           "--web.enable-remote-write-receiver", "--config.file=" + os.path.join(tmp, "prom.yml"),
                           "--log.level=error"], tmp, procs)
        wait_http("http://127.0.0.1:%d/-/ready" % port, p, engine)
    rc, err = load("http://127.0.0.1:%d/api/v1/write" % port)
    st, body = push_fixture("http://127.0.0.1:%d/api/v1/write" % port)
    tap(rc == 0 and st == 204, "%s: strata-load's backfill and the stale-marker fixture accepted" % engine,
        (err, st, body))
    if engine == "victoria-metrics":
        http_call("http://127.0.0.1:%d/internal/force_flush" % port)
    # the engine answers what it took: wait until its export holds every local series
    _, el = export_all(local)
    end = time.time() + 30
    while time.time() < end:
        st, body = http_call("http://127.0.0.1:%d/api/v1/query?query=count(%%7B__name__%%3D~%%22.%%2B%%22%%7D)" % port)
        try:
            if st == 200 and int(json.loads(body)["data"]["result"][0]["value"][1]) >= len(el):
                break
        except (ValueError, KeyError, IndexError):
            pass
        time.sleep(0.5)
    if gw:
        refresh(local, gw)
    else:  # after the data: the rebuild at start reads it
        gw = Server(os.path.join(tmp, "gw-" + engine), extra=gwargs)
        servers.append(gw)
    compare(engine, local, gw)
    _, lst = json_get(local, "/api/v1/workloads?limit=1")
    _, dl = json_get(local, "/api/v1/workloads?limit=1&deleted=true")
    engine_down(engine, p, gw, (lst.get("workloads") or dl.get("workloads"))[0]["id"])
    gw.stop()
    servers.remove(gw)


def tenants():
    """Tenants through a real router, VictoriaMetrics cluster paths both ways: vmauth (bearer
    token) sends /select/{tenant}/prometheus/... to one victoria-metrics per tenant, and
    /insert/{tenant}/prometheus/... to that tenant's vmagent, which writes to the same
    victoria-metrics (vmauth 1.79 appends the whole request path to url_prefix, so one
    victoria-metrics, whose -http.pathPrefix is /select/N/prometheus, cannot also take
    /insert/N/...; docs/scale-out.md).  A writing gateway ships each tenant's pushes to
    --remote-write-url=.../insert/{tenant}/prometheus/api/v1/write; each engine then holds exactly
    its tenant's series.  A reading gateway routes each tenant's reads by {tenant} in
    --remote-query-url, rebuilds tenants 1 and 2 (--remote-tenants), and answers each tenant
    what a local store holding both answers it, and nothing of the other tenant."""
    secret = os.path.join(tmp, "jwt.secret")
    with open(secret, "wb") as f:
        f.write(SECRET)
    gwtok = os.path.join(tmp, "engine.token")
    with open(gwtok, "w") as f:
        f.write("gw-secret\n")
    local = Server(os.path.join(tmp, "local-tenants"), secret_file=secret)
    servers.append(local)
    vm, agent = {}, {}
    for t in (1, 2):
        port = free_port()
        p = spawn("vm-tenant%d" % t, ["victoria-metrics", "-storageDataPath=" + os.path.join(tmp, "vmt%d" % t),
                                      "-httpListenAddr=127.0.0.1:%d" % port, "-retentionPeriod=100y",
                                      "-http.pathPrefix=/select/%d/prometheus" % t, "-loggerLevel=ERROR"], tmp, procs)
        wait_http("http://127.0.0.1:%d/select/%d/prometheus/health" % (port, t), p, "victoria-metrics of tenant %d" % t)
        vm[t] = port
        port = free_port()
        p = spawn("vmagent-tenant%d" % t, [
            "vmagent", "-httpListenAddr=127.0.0.1:%d" % port, "-http.pathPrefix=/insert/%d/prometheus" % t,
            "-remoteWrite.url=http://127.0.0.1:%d/select/%d/prometheus/api/v1/write" % (vm[t], t),
            "-remoteWrite.tmpDataPath=" + os.path.join(tmp, "vmagent%d" % t), "-loggerLevel=ERROR"], tmp, procs)
        wait_http("http://127.0.0.1:%d/insert/%d/prometheus/health" % (port, t), p, "vmagent of tenant %d" % t)
        agent[t] = port
    with open(os.path.join(tmp, "vmauth.yml"), "w") as f:
        f.write('users:\n- bearer_token: "gw-secret"\n  url_map:\n')
        for t in (1, 2):
            f.write('  - src_paths: ["/select/%d/prometheus/.*"]\n    url_prefix: "http://127.0.0.1:%d"\n' % (t, vm[t]))
            f.write('  - src_paths: ["/insert/%d/prometheus/.*"]\n    url_prefix: "http://127.0.0.1:%d"\n'
                    % (t, agent[t]))
    aport = free_port()
    pa = spawn("vmauth", ["vmauth", "-auth.config=" + os.path.join(tmp, "vmauth.yml"),
                          "-httpListenAddr=127.0.0.1:%d" % aport, "-loggerLevel=ERROR"], tmp, procs)
    end = time.time() + 15
    while http_call("http://127.0.0.1:%d/select/1/prometheus/api/v1/export?match[]=up" % aport,
               headers={"Authorization": "Bearer gw-secret"})[0] != 200 and time.time() < end:
        if pa.poll() is not None:
            raise RuntimeError("vmauth exited early")
        time.sleep(0.2)
    gww = Server(os.path.join(tmp, "gw-tenants-write"), secret_file=secret,
                 extra=["--remote-write-url=http://127.0.0.1:%d/insert/{tenant}/prometheus/api/v1/write" % aport,
                        "--remote-bearer-token-file=" + gwtok])
    servers.append(gww)
    seeds = {1: ["--seed=11", "--workloads=4"], 2: ["--seed=12", "--workloads=3"]}
    ok = True
    errs = []
    for t in (1, 2):
        for url in (local.url, gww.url):
            rc, err = load(url + "/api/v1/write", "--bearer-token=" + token(t, "metrics:write"), *seeds[t])
            ok &= rc == 0
            if rc:
                errs.append(err)
    # the queue gauge is recomputed at most every 100 ms, so it can read 0 just after the last
    # write: wait for every ingested sample to be shipped (or failed) as well
    names = ("strata_ingested_samples_total", "strata_remote_samples_shipped_total",
             "strata_remote_samples_failed_total", "strata_remote_queue_bytes")
    end = time.time() + 60
    while True:
        m = gww.get("/metrics", token(1, "metrics:read"))[2]
        got = [metric_value(m, x) for x in names]
        if (got[3] == 0 and got[0] and (got[1] or 0) + (got[2] or 0) >= got[0]) or time.time() > end:
            break
        time.sleep(0.2)
    tap(ok and got[0] and got[0] == got[1] and got[2] == 0 and got[3] == 0,
        "tenants: both backfills accepted by the local store and by a gateway that shipped every sample through "
        "vmauth to /insert/{tenant}/prometheus/api/v1/write", (errs, got))
    # each engine, read directly, holds exactly its tenant's series (vmagent forwards within ~1 s)
    bad = {}
    for t in (1, 2):
        sl, want = export_all(local, token(t, "metrics:read"))
        want = {tuple(kv for kv in k if kv[0] != "__tenant__"): v for k, v in want.items()} if sl == 200 else {}
        end = time.time() + 30
        while True:
            http_call("http://127.0.0.1:%d/select/%d/prometheus/internal/force_flush" % (vm[t], t))
            st, body = http_call("http://127.0.0.1:%d/select/%d/prometheus/api/v1/export?%s" % (
                vm[t], t, urllib.parse.urlencode({"match[]": '{__name__=~".+"}'})), timeout=30)
            have = {}
            for line in body.decode(errors="replace").splitlines() if st == 200 else []:
                o = json.loads(line)
                have[tuple(sorted(o["metric"].items()))] = [(ts, value_bits(v)) for ts, v in
                                                            zip(o["timestamps"], o["values"])]
            if (have == want and want) or time.time() > end:
                break
            time.sleep(0.5)
        if have != want or not want:
            bad[t] = (len(want), len(have), sorted(set(want) ^ set(have))[:2])
    tap(not bad, "tenants: each tenant's engine holds exactly its own series, written through vmauth (labels, "
        "timestamps, value bits; none of the other tenant's)", bad)
    gw = Server(os.path.join(tmp, "gw-tenants"), secret_file=secret,
                extra=["--remote-query-url=http://127.0.0.1:%d/select/{tenant}/prometheus" % aport,
                       "--remote-bearer-token-file=" + gwtok, "--remote-tenants=1,2"])
    servers.append(gw)
    ids = {}
    for t in (1, 2):
        tok = token(t, "metrics:read")
        o1, d1 = sandwich(local, gw, "/api/v1/workloads?limit=500", tok)
        st, lst = json_get(gw, "/api/v1/workloads?limit=500", tok)
        ids[t] = {w["id"] for w in lst.get("workloads", [])} if st == 200 else set()
        sl, el = export_all(local, tok)
        sg, eg = export_all(gw, tok)
        tap(o1 and len(ids[t]) == (4 if t == 1 else 3) and sl == sg == 200 and el == eg,
            "tenant %d: workloads and export through vmauth equal the local store's" % t,
            (d1, len(ids[t]), sl, sg, len(el) if sl == 200 else el, len(eg) if sg == 200 else eg))
        ids[t] = (ids[t], {dict(k).get("workload_id") for k in (eg if sg == 200 else {})} - {None})
    tap(ids[1][0] and ids[2][0] and not (ids[1][0] & ids[2][0]) and not (ids[1][1] & ids[2][0])
        and not (ids[2][1] & ids[1][0]),
        "tenants: no workload or series of one tenant in the other's answers", ids)
    gw.stop()
    servers.remove(gw)
    gww.stop()
    servers.remove(gww)
    local.stop()
    servers.remove(local)


# A workload whose info series is ended by a stale marker (docs/scale-out.md, "What differs"):
# six samples 15 s apart from 10 minutes into the hour, then the marker 15 s after the last.
STALE_WID = "6b1d6f0e-0000-4000-8000-00000000a7e1"
STALE_T0 = START * 1000 + 600000
STALE_LAST = STALE_T0 + 5 * 15000
STALE_AT = STALE_LAST + 15000
STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def stale_fixture():
    labels = [("__name__", "runai_workload_info"), ("category", "Train"),
              ("cluster_id", "6b1d6f0e-0000-4000-8000-00000000c1a7"), ("department_id", "d9"),
              ("department_name", "stale"), ("namespace", "runai-stale"), ("project_id", "p9"),
              ("project_name", "stale"), ("workload_id", STALE_WID), ("workload_name", "stale-marker"),
              ("workload_type", "Training")]
    samples = [(1.0, STALE_T0 + 15000 * i) for i in range(6)] + [(STALE_NAN, STALE_AT)]
    # awkward label values: the selectors sent to the engine must quote them exactly
    awkward = [("__name__", "gw_awkward"), ("model", "llama-3 \u2713 \u00f1"), ("sensor", 'edge "hot" \\ spot')]
    return snappy(rw1([(labels, samples), (awkward, [(-3.25, STALE_T0), (1e-9, STALE_T0 + 15000)])]))


AWKWARD_SELECTORS = ['{__name__="gw_awkward",sensor="edge \\"hot\\" \\\\ spot"}',
                     '{__name__=~"gw_awk.*",model=~"llama-3 \u2713.*",sensor!~"x|y"}',
                     '{__name__=~"gw_awkward|DCGM_FI_DEV_GPU_UTIL",gpu!="1"}']


def export_sel(srv, sel):
    st, _, body = srv.get("/api/v1/export?" + urllib.parse.urlencode({"match[]": sel}))
    return st, body


def push_fixture(url):
    st, body = http_call(url, stale_fixture(), {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                                           "X-Prometheus-Remote-Write-Version": "0.1.0"})
    return st, body[:200]


def prom_expected(o, path):
    """The local answer as a Prometheus-backed gateway gives it: the range selector drops the stale
    marker, so the info series ends at its last sample + --staleness (5m), not at the marker."""
    st, b = o
    if st != 200 or not isinstance(b, dict) or "workloads" not in path:
        return o
    b = json.loads(json.dumps(b))
    for w in (b.get("workloads") if "workloads" in b else [b]):
        if isinstance(w, dict) and w.get("id") == STALE_WID and w.get("deletedAt") == iso(STALE_AT):
            w["deletedAt"] = iso(STALE_LAST + 300000)
    return st, b


def flags():
    """The read path's flags: --help names them, bad values are usage errors naming the flag."""
    strata = os.path.join(BUILD, "strata")
    h = subprocess.run([strata, "--help"], capture_output=True, text=True, timeout=30)
    tap(h.returncode == 0 and all(f in h.stdout for f in (
        "--remote-query-url=URL", "--remote-query-flavor=", "--remote-tenants=", "--registry-refresh=")),
        "--help names --remote-query-url, --remote-query-flavor, --remote-tenants, --registry-refresh",
        h.stdout[-600:])
    bad = []
    for arg in ("--remote-query-url=ftp://x", "--remote-query-flavor=mimir", "--remote-tenants=1,,2",
                "--remote-tenants=x", "--remote-tenants=99999999999", "--registry-refresh=100ms"):
        r = subprocess.run([strata, "--listen=127.0.0.1:%d" % free_port(), "--data-dir=" + os.path.join(tmp, "nx"),
                            arg], capture_output=True, text=True, timeout=30)
        if r.returncode != 2 or arg.split("=")[0] not in r.stderr:
            bad.append((arg, r.returncode, r.stderr[-200:]))
    tap(not bad, "bad --remote-query-url/-flavor/--remote-tenants/--registry-refresh values: exit 2 naming the "
        "flag", bad)


def main():
    flags()
    with open(os.path.join(tmp, "prom.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1h\n")
    local = Server(os.path.join(tmp, "local"), extra=["--retention=0"])
    servers.append(local)
    rc, err = load(local.url + "/api/v1/write")
    tap(rc == 0, "local: strata-load's backfill accepted", err)
    st, body = push_fixture(local.url + "/api/v1/write")
    st2, w = json_get(local, "/api/v1/workloads/" + STALE_WID)
    tap(st == 204 and st2 == 200 and w.get("deletedAt") == iso(STALE_AT),
        "local: a workload whose info series ends with a stale marker is deleted at the marker", (st, body, w))
    for engine in os.environ.get("STRATA_GW_ENGINES", "victoria-metrics,prometheus").split(","):
        try:
            run_engine(engine, local)
        except (RuntimeError, OSError) as e:
            tap(False, "%s: the engine and its gateway run" % engine, e)
    local.stop()
    servers.remove(local)
    try:
        tenants()
    except (RuntimeError, OSError) as e:
        tap(False, "tenants: the engines, vmauth and the gateway run", e)


try:
    main()
finally:
    cleanup()
    print("1..%d" % TAPS)
sys.exit(1 if FAILS else 0)
