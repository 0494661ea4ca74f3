"""promql_data.py: the deterministic data set of the PromQL differential tests.

Two hours of 15 s samples (seeded, so every run writes the same values) of a small GPU
cluster, remote-written (v1) identically to strata and to Prometheus 2.42:

  - DCGM gauges per GPU (6 GPUs on node-a, node-b, node-c; labels gpu, UUID, Hostname,
    namespace, pod, modelName, job, instance): DCGM_FI_DEV_GPU_UTIL, DCGM_FI_DEV_FB_USED,
    DCGM_FI_DEV_FB_FREE, DCGM_FI_DEV_POWER_USAGE, DCGM_FI_DEV_GPU_TEMP, DCGM_FI_DEV_SM_CLOCK,
    DCGM_FI_PROF_PIPE_TENSOR_ACTIVE, and DCGM_FI_DEV_XID_ERRORS (the last XID, 0 or 13/48/79)
    on two GPUs;
  - counters with resets: DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (mJ, an exporter restart on one
    GPU) and requests_total{code} (two restarts);
  - a classic histogram request_duration_seconds_bucket{le=...}/_sum/_count on two instances,
    with increasing counts;
  - every counter starts large, as a long-running one (see "Counters' first samples");
  - a gap: DCGM_FI_DEV_GPU_UTIL of node-b gpu 3 sends nothing for 10 minutes;
  - stale markers (NaN 0x7ff0000000000002): DCGM_FI_DEV_POWER_USAGE of node-c gpu 5 ends with one
    after 70 minutes (its pod was deleted), DCGM_FI_DEV_GPU_TEMP of node-a gpu 0 has one at minute
    55 and resumes at minute 60;
  - a series born mid-range: DCGM_FI_DEV_GPU_UTIL of a second pod on node-c gpu 5 from minute 75;
  - ordinary NaN (DCGM_FI_DEV_GPU_TEMP gpu 1, three samples), +Inf and -Inf values
    (DCGM_FI_DEV_POWER_USAGE gpu 2, one each);
  - gpu_node_info, whose label values hold quotes, a backslash and UTF-8.

Sample placement: every sample sits at a timestamp whose millisecond part is not 0 (each scrape
target, i.e. instance, starts at its own offset, 1234 ms + 2437 ms x its index, plus a per-sample
jitter of up to 150 ms; the series of one target share their timestamps, as one scrape stamps them;
bumped off a whole second if it lands on one; never .500 either).  The tests evaluate every
query at whole seconds (instant times, range starts and steps; ranges, offsets and subquery steps
in whole seconds, subquery points at multiples of their step; one @ at .5), so no sample ever
lies on the edge t - range of a range selector or of the 5m lookback.  (Subquery points can lie
on a subquery's own edge: promql_corpus.boundary_safe skips those evaluations.)  Prometheus 2.42's closed selectors
[t - r, t] and Prometheus 3's left-open (t - r, t] (what strata implements) then select the same
samples: the boundary difference is avoided by placement, not hidden by tolerance.

Counters' first samples: rate/increase extrapolate the window's start to the first sample, at most
to the counter's zero point.  Prometheus 3 caps the extrapolation at half a sample interval first
and then takes the zero point when nearer; 2.42 took the zero point first.  They differ only when
the first sample is 1.1 intervals or more after the window's start (the series begins inside the
window) and the zero point lies between half an interval and 1.1 intervals before it.  Every
counter here starts at a value much larger than any window's increase, so its zero point is far
away in both, and the corpus applies rate/increase to counters only (gauges start, stop and have
gaps).

Order: Prometheus 2.42 refuses samples older than an hour behind its newest ("out of bounds"),
so the data is sent in time order: one request per 10-minute window holding every series'
samples in it.

    import promql_data as pd
    ds = pd.Dataset(pd.t0_for_now())       # t0: a UTC midnight, 10 m to 26 h before the data ends
    proc, api = pd.start_prometheus(tmp)   # or start_strata(tmp, build, secret_file), start_victoria
    pd.load(api, ds)                       # remote write, in time order
    st, doc, body = api.query("rate(requests_total[5m])", t_s)
"""
import math
import random
import struct

from strata_client import rw1, STALE

STEP_MS = 15000
HOURS = 2
N = HOURS * 3600 * 1000 // STEP_MS            # samples per full series (480)
MIN = 60 * 1000
SEED = 20261205
WINDOW_MS = 10 * MIN                          # one remote-write request per 10 minutes of data

GPUS = [  # (gpu, UUID, Hostname, namespace, pod, modelName)
    ("0", "GPU-0a1b2c3d-0000-4000-8000-000000000000", "node-a", "team-a", "train-llm-0", "NVIDIA A100-SXM4-80GB"),
    ("1", "GPU-0a1b2c3d-0000-4000-8000-000000000001", "node-a", "team-a", "train-llm-0", "NVIDIA A100-SXM4-80GB"),
    ("2", "GPU-0a1b2c3d-0000-4000-8000-000000000002", "node-a", "team-b", "infer-7b-1", "NVIDIA A100-SXM4-80GB"),
    ("3", "GPU-0a1b2c3d-0000-4000-8000-000000000003", "node-b", "team-b", "infer-7b-2", "NVIDIA H100 80GB HBM3"),
    ("4", "GPU-0a1b2c3d-0000-4000-8000-000000000004", "node-b", "team-a", "notebook-3", "NVIDIA H100 80GB HBM3"),
    ("5", "GPU-0a1b2c3d-0000-4000-8000-000000000005", "node-c", "team-c", "batch-9", "NVIDIA L40S"),
]
FB_TOTAL_MIB = {"NVIDIA A100-SXM4-80GB": 81920, "NVIDIA H100 80GB HBM3": 81559, "NVIDIA L40S": 46068}
TARGETS = ["node-a:9400", "node-b:9400", "node-c:9400", "api-0:8080", "api-1:8080"]
HIST_LE = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]
METRICS = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_POWER_USAGE",
           "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
           "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "requests_total",
           "request_duration_seconds_bucket", "request_duration_seconds_sum", "request_duration_seconds_count"]


def is_stale(v):
    return isinstance(v, float) and struct.pack("<d", v) == struct.pack("<d", STALE)


class Series:
    def __init__(self, labels, idx):
        self.labels = dict(labels)
        self.idx = idx
        self.samples = []  # [(ts_ms, value)] in time order; STALE for stale markers

    def key(self):
        return tuple(sorted(self.labels.items()))


class Dataset:
    def __init__(self, t0_ms, seed=SEED):
        assert t0_ms % MIN == 0, "t0 must be a whole minute"
        self.t0 = t0_ms
        self.end = t0_ms + HOURS * 3600 * 1000  # no sample at or after this
        self.rng = random.Random(seed)
        self.series = []
        self._build()

    # ------------------------------------------------------------ helpers
    def _new(self, labels):
        s = Series(labels, len(self.series))
        self.series.append(s)
        return s

    def _ts(self, s, k):
        """Timestamp of sample k of series s: never a whole second.  The series of one target (one
        instance, as one scrape) share their timestamps, as a real scrape stamps them."""
        tgt = TARGETS.index(s.labels["instance"])
        jit = (k * 7919 + tgt * 104729) % 151
        t = self.t0 + k * STEP_MS + 1234 + 2437 * tgt + jit
        if t % 1000 == 0:
            t += 1
        return t

    def _fill(self, s, fn, k0=0, k1=N, skip=None):
        for k in range(k0, k1):
            if skip and skip(k):
                continue
            s.samples.append((self._ts(s, k), float(fn(k))))

    # ------------------------------------------------------------ the cluster
    def _build(self):
        r = self.rng
        for i, (gpu, uuid, host, ns, pod, model) in enumerate(GPUS):
            base = {"gpu": gpu, "UUID": uuid, "Hostname": host, "namespace": ns, "pod": pod,
                    "modelName": model, "job": "dcgm", "instance": host + ":9400", "container": "main"}

            def lab(name, extra=None):
                d = dict(base, __name__=name)
                d.update(extra or {})
                return d

            # GPU utilization, % (integers, as DCGM reports); gpu 4 idle (0) for its first 40 minutes
            level = [r.randint(5, 95) for _ in range(12)]
            s = self._new(lab("DCGM_FI_DEV_GPU_UTIL"))
            gap = (lambda k: 160 <= k < 200) if gpu == "3" else None   # minutes 40-50: nothing
            self._fill(s, lambda k, lv=level, g=gpu: 0 if (g == "4" and k < 160)
                       else max(0, min(100, lv[k // 40] + r.randint(-7, 7))), skip=gap)
            # framebuffer used / free, MiB; gpu 1 climbs to 97 % full
            total = FB_TOTAL_MIB[model]
            used = []
            for k in range(N):
                if gpu == "1":
                    u = int(total * (0.5 + 0.48 * k / N)) + r.randint(0, 50)
                else:
                    u = int(total * (0.2 + 0.1 * i)) + r.randint(-800, 800)
                used.append(min(u, total))
            s = self._new(lab("DCGM_FI_DEV_FB_USED"))
            self._fill(s, lambda k, u=used: u[k])
            s = self._new(lab("DCGM_FI_DEV_FB_FREE"))
            self._fill(s, lambda k, u=used, t=total: t - u[k])
            # power, W (fractional); gpu 2 has one +Inf and one -Inf; gpu 5 ends with a stale marker
            s = self._new(lab("DCGM_FI_DEV_POWER_USAGE"))
            pw = [round(60 + 300 * r.random() + (150 if gpu == "3" and 240 <= k < 330 else 0), 3) for k in range(N)]
            if gpu == "2":
                pw[100], pw[101] = math.inf, -math.inf
            if gpu == "5":
                self._fill(s, lambda k, p=pw: p[k], 0, 280)
                s.samples.append((self._ts(s, 280), STALE))
            else:
                self._fill(s, lambda k, p=pw: p[k])
            # temperature, C; gpu 0: stale marker at minute 55, resumes at minute 60; gpu 1: NaN x3
            s = self._new(lab("DCGM_FI_DEV_GPU_TEMP"))
            tp = [40 + i * 3 + r.randint(0, 40) + (k // 60) for k in range(N)]
            if gpu == "1":
                for k in (50, 51, 300):
                    tp[k] = math.nan
            if gpu == "0":
                self._fill(s, lambda k, t=tp: t[k], 0, 220)
                s.samples.append((self._ts(s, 220), STALE))
                self._fill(s, lambda k, t=tp: t[k], 240, N)
            else:
                self._fill(s, lambda k, t=tp: t[k])
            # SM clock, MHz
            s = self._new(lab("DCGM_FI_DEV_SM_CLOCK"))
            self._fill(s, lambda k: r.choice([210, 1410, 1410, 1755, 1980]))
            # tensor pipe active, ratio 0..1
            s = self._new(lab("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"))
            self._fill(s, lambda k: round(r.random() * 0.8, 6))
            # XID errors (value = last XID) on two GPUs
            if gpu in ("1", "4"):
                s = self._new(lab("DCGM_FI_DEV_XID_ERRORS"))
                xid = {"1": {200: 13, 201: 13, 202: 13, 350: 79}, "4": {90: 48}}[gpu]
                self._fill(s, lambda k, x=xid: x.get(k, 0))
            # energy counter, mJ; gpu 2's exporter restarts at minute 65 (counter starts again)
            if gpu in ("0", "2", "3"):
                s = self._new(lab("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"))
                acc, vals = 1.0e9 * (i + 1), []
                for k in range(N):
                    if gpu == "2" and k == 260:
                        acc = 0.0
                    acc += pw[k] * 15000 if math.isfinite(pw[k]) else 3000000
                    vals.append(acc)
                self._fill(s, lambda k, v=vals: v[k])
        # a second pod's GPU util on node-c gpu 5, from minute 75 (a series born mid-range)
        g = GPUS[5]
        s = self._new({"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": g[0], "UUID": g[1], "Hostname": g[2],
                       "namespace": "team-c", "pod": "batch-10", "modelName": g[5], "job": "dcgm",
                       "instance": g[2] + ":9400", "container": "main"})
        self._fill(s, lambda k: 50 + (k % 9) * 5, 300, N)
        # an info series whose label values need JSON escaping and hold UTF-8 (no newline: Prometheus 3's
        # "." matches one, 2.42's does not)
        for host, model in (("node-a", 'NVIDIA "A100" \\ SXM4 \u2713'), ("node-b", "NVIDIA H100 \u00e9t\u00e9 \u6e2c\u8a66")):
            s = self._new({"__name__": "gpu_node_info", "Hostname": host, "modelName": model, "driver": "550.54.15",
                           "job": "dcgm", "instance": host + ":9400"})
            self._fill(s, lambda k: 1)
        # requests_total{code}: counters of an API, restarting at minutes 30 and 95
        for code, rate, start in (("200", 40.0, 5.0e6), ("500", 0.7, 4.0e4), ("503", 0.05, 1.0e4)):
            s = self._new({"__name__": "requests_total", "job": "api", "instance": "api-0:8080", "code": code})
            acc, vals = start, []
            for k in range(N):
                if k in (120, 380):
                    acc = 0.0
                acc += r.randint(0, int(rate * 30) + 1)
                vals.append(acc)
            self._fill(s, lambda k, v=vals: v[k])
        # classic histogram request_duration_seconds on two instances
        for inst, scale in (("api-0:8080", 1.0), ("api-1:8080", 2.5)):
            cum = [float(int(1e6 * scale * f)) for f in (0.2, 0.4, 0.6, 0.8, 0.9, 0.97, 1.0)]
            per_k = []
            ssum = 3.0e5 * scale
            for k in range(N):
                n = int(r.randint(5, 30) * scale)
                obs = [r.expovariate(1 / 0.3) for _ in range(n)]
                for o in obs:
                    ssum += o
                    for j, le in enumerate(HIST_LE):
                        if o <= float(le):
                            cum[j] += 1
                per_k.append((list(cum), round(ssum, 6)))
            for j, le in enumerate(HIST_LE):
                s = self._new({"__name__": "request_duration_seconds_bucket", "job": "api", "instance": inst, "le": le})
                self._fill(s, lambda k, j=j, p=per_k: p[k][0][j])
            s = self._new({"__name__": "request_duration_seconds_sum", "job": "api", "instance": inst})
            self._fill(s, lambda k, p=per_k: p[k][1])
            s = self._new({"__name__": "request_duration_seconds_count", "job": "api", "instance": inst})
            self._fill(s, lambda k, p=per_k: p[k][0][-1])
        for s in self.series:
            assert all(t % 1000 for t, _ in s.samples), s.labels
            assert all(a[0] < b[0] for a, b in zip(s.samples, s.samples[1:])), s.labels

    # ------------------------------------------------------------ sending
    def requests(self):
        """WriteRequest bodies (uncompressed protobuf), in time order: one per 10 minutes."""
        out = []
        for w0 in range(self.t0, self.end + WINDOW_MS, WINDOW_MS):
            batch = []
            for s in self.series:
                smp = [(v, t) for t, v in s.samples if w0 <= t < w0 + WINDOW_MS]
                if smp:
                    batch.append((sorted(s.labels.items()), smp))
            if batch:
                out.append(rw1(batch))
        return out

    def n_samples(self):
        return sum(len(s.samples) for s in self.series)

    def raw(self, name, **match):
        """[(labels dict, [(ts, v)])] of the series with this name and these labels."""
        return [(s.labels, s.samples) for s in self.series
                if s.labels["__name__"] == name and all(s.labels.get(k) == v for k, v in match.items())]


# ---------------------------------------------------------------- the peers
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

from strata_client import snappy, free_port


class Api:
    """The Prometheus HTTP API of one system (strata, Prometheus, VictoriaMetrics) on loopback;
    one kept-alive connection per thread."""

    def __init__(self, name, port, tok=None):
        self.name, self.port, self.tok = name, port, tok
        self._local = threading.local()

    @property
    def conn(self):
        return getattr(self._local, "conn", None)

    @conn.setter
    def conn(self, c):
        self._local.conn = c

    def req(self, method, path, body=None, headers=None, timeout=30):
        h = dict(headers or {})
        if self.tok:
            h["Authorization"] = "Bearer " + self.tok
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                return r.status, r.read()
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    return 0, b""

    def write(self, raw):
        return self.req("POST", "/api/v1/write", snappy(raw),
                        {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                         "X-Prometheus-Remote-Write-Version": "0.1.0"})

    def call(self, path, params, post=False):
        """(http status, parsed JSON or None, raw body)."""
        q = urllib.parse.urlencode(params)
        if post:
            st, body = self.req("POST", path, q.encode(), {"Content-Type": "application/x-www-form-urlencoded"})
        else:
            st, body = self.req("GET", path + "?" + q)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        return st, doc, body

    def query(self, expr, t_s, post=False):
        return self.call("/api/v1/query", {"query": expr, "time": "%d" % t_s}, post)

    def query_range(self, expr, start_s, end_s, step_s, post=False):
        return self.call("/api/v1/query_range", {"query": expr, "start": "%d" % start_s, "end": "%d" % end_s,
                                                 "step": "%d" % step_s}, post)

    def close(self):
        if self.conn:
            self.conn.close()
            self.conn = None


class Proc:
    """A child process with its log in a temp dir; stop() SIGTERMs it and waits (SIGKILL after 20 s)."""

    def __init__(self, name, argv, tmp, ready_port=None, ready_path="/", timeout=60):
        self.name = name
        self.logpath = os.path.join(tmp, name + ".log")
        self.logf = open(self.logpath, "w")
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=tmp)
        if ready_port:
            api = Api(name, ready_port)
            end = time.time() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError("%s exited %s at start: %s" % (name, self.proc.returncode, self.tail()))
                if api.req("GET", ready_path, timeout=2)[0] == 200:
                    break
                if time.time() > end:
                    raise RuntimeError("%s not ready after %d s: %s" % (name, timeout, self.tail()))
                time.sleep(0.1)
            api.close()

    def tail(self, n=1500):
        try:
            with open(self.logpath, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def wait(self, timeout):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


def stop_quietly(things):
    """Stops every peer process and strata Server in things (each has stop()), never raising, so a
    failed stop cannot leave the others running."""
    for t in things:
        try:
            t.stop()
        except Exception:
            pass


def run_tap_main(main, what, procs, cleanup):
    """Runs a TAP script's main() so that a crash is a `not ok` line with its reason and the peers'
    log tails, SIGTERM and every exit stop the peers (cleanup()), and the exit code is main()'s."""
    signal.signal(signal.SIGTERM, lambda *a: (cleanup(), sys.exit(1)))
    try:
        sys.exit(main())
    except SystemExit:
        raise
    except BaseException as e:  # never leave peers running
        try:
            print("not ok - %s: %s: %s" % (what, type(e).__name__, e))
            for p in procs:
                print("# --- %s ---\n# %s" % (p.name, p.tail().replace("\n", "\n# ")))
        except OSError:  # stdout gone (a closed pipe): still clean up
            pass
        sys.exit(1)
    finally:
        cleanup()


def start_prometheus(tmp, name="prometheus", ooo_window=None):
    """Prometheus 2.42 with the remote-write receiver and no scrape targets."""
    d = os.path.join(tmp, name)
    os.makedirs(d)
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1h, evaluation_interval: 1m}\n")
        if ooo_window:
            f.write("storage: {tsdb: {out_of_order_time_window: %s}}\n" % ooo_window)
    port = free_port()
    p = Proc(name, ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "data"),
                    "--storage.tsdb.retention.time=30d", "--web.listen-address=127.0.0.1:%d" % port,
                    "--web.enable-remote-write-receiver", "--query.lookback-delta=5m", "--log.level=warn"],
             tmp, port, "/-/ready")
    return p, Api(name, port)


def start_victoria(tmp, name="victoria-metrics"):
    d = os.path.join(tmp, name)
    port = free_port()
    p = Proc(name, ["victoria-metrics", "-storageDataPath=" + d, "-httpListenAddr=127.0.0.1:%d" % port,
                    "-loggerLevel=ERROR", "-search.disableCache", "-search.latencyOffset=0s",
                    "-retentionPeriod=100y"], tmp, port, "/health")
    return p, Api(name, port)


def start_strata(tmp, build, name="strata", secret_file=None, extra=()):
    port = free_port()
    auth = ["--auth=jwt", "--jwt-secret-file=" + secret_file] if secret_file else ["--auth=none"]
    p = Proc(name, [os.path.abspath(os.path.join(build, "strata")), "--listen=127.0.0.1:%d" % port,
                    "--data-dir=" + os.path.join(tmp, name), "--log-level=warn"] + auth + list(extra),
             tmp, port, "/readyz")
    return p, Api(name, port)


def load(api, ds, cut_after_ms=None, cut=None):
    """Remote-writes the data set in time order; raises on any non-2xx answer.  With cut, calls
    cut(api) once the data before t0 + cut_after_ms (a multiple of 10 minutes) is written."""
    for i, body in enumerate(ds.requests()):
        if cut and i * WINDOW_MS == cut_after_ms:
            cut(api)
        st, resp = api.write(body)
        if st // 100 != 2:
            raise RuntimeError("%s refused the data: %d %s" % (api.name, st, resp[:300]))


def strata_cut_head(api):
    """POST /api/v1/admin/cut-head: strata writes its whole head as a block (with rollups)."""
    st, body = api.req("POST", "/api/v1/admin/cut-head")
    if st != 200:
        raise RuntimeError("strata cut-head: %d %s" % (st, body[:300]))


def t0_for_now(now_s=None):
    """The data's first sample minute: a UTC midnight such that the 2 hours of data end at least
    10 minutes before now (so 10 m to 26 h ago).  Every query time is then the same offset from a
    day boundary on every run, and the corpus (which depends on the alignment of subquery steps,
    all of which divide a day) is the same too."""
    now_s = int(now_s if now_s is not None else time.time())
    return (now_s - HOURS * 3600 - 600) // 86400 * 86400 * 1000
