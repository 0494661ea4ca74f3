#!/usr/bin/env python3
"""test_gateway_write.py: the scale-out write path (docs/scale-out.md) against real engines.

strata runs with --remote-write-url; this script pushes remote-write 1.0 batches to it and
keeps every batch strata acknowledged (204).  Checks, each reading the engine's own export
(VictoriaMetrics /api/v1/export, Prometheus raw samples through a range selector):
  - every acknowledged sample is in VictoriaMetrics, bit-exact, and nothing else (before each
    SIGKILL of VictoriaMetrics the script waits until it holds everything and has written it to
    disk: it acknowledges before that, so a kill would lose what it had acknowledged);
  - VictoriaMetrics SIGKILLed for ~12 s while pushing: writes go on being accepted, /metrics
    counts retries and a queue; after its restart nothing is missing;
  - strata SIGKILLed while shipping a backlog, then restarted: nothing is missing;
  - a small --remote-queue-max-bytes with the engine down: writers get 503 naming the queue, and
    once the engine is up every acknowledged sample arrives;
  - two tenants (--auth=jwt) with {tenant} in the URL go to two VictoriaMetrics (127.0.0.1 and
    127.0.0.2, same port: the tenant number is the address's last byte), without the tenant
    label, never mixed;
  - the same push with Prometheus 2.42 (--web.enable-remote-write-receiver) as the engine;
  - --remote-write-version=2 (remote-write 2.0) to a second strata, which takes 2.0.
Everything on loopback with temp dirs; every process is stopped at the end.  Prints TAP lines.
"""
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import SECRET, Server, free_port, metric_value, rw1, token  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
PLAN = 13
tmp = tempfile.mkdtemp(prefix="strata-gw-")
procs = []
servers = []
nok = 0


def ok(cond, name, why=""):
    global nok
    nok += 1
    print(("ok - " if cond else "not ok - ") + name + ("" if cond or not why else " # " + why), flush=True)
    return cond


def cleanup():
    for s in servers:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


def http_get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


class Engine:
    """victoria-metrics or prometheus on (host, port) with a data dir that survives restarts."""

    def __init__(self, kind, name, host="127.0.0.1", port=None):
        self.kind, self.host = kind, host
        self.port = port or free_port()
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.base = "http://%s:%d" % (host, self.port)

    def start(self):
        log = open(self.dir + ".log", "a")
        if self.kind == "vm":
            cmd = ["/usr/bin/victoria-metrics", "-storageDataPath=" + os.path.join(self.dir, "data"),
                   "-httpListenAddr=%s:%d" % (self.host, self.port), "-retentionPeriod=100y",
                   "-loggerLevel=ERROR", "-search.disableCache"]
            health = "/health"
        else:
            cfg = os.path.join(self.dir, "prometheus.yml")
            with open(cfg, "w") as f:
                f.write("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
            cmd = ["/usr/bin/prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
                   "--web.listen-address=%s:%d" % (self.host, self.port), "--web.enable-remote-write-receiver",
                   "--log.level=error"]
            health = "/-/ready"
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        procs.append(self.proc)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if http_get(self.base + health, 2)[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("%s did not start" % self.kind)

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def samples(self, metric):
        """{labels tuple: {t_ms: value bits}} of every series named metric, from the engine."""
        out = {}
        if self.kind == "vm":
            q = urllib.parse.urlencode({"match[]": '{__name__="%s"}' % metric})
            _, body = http_get(self.base + "/api/v1/export?" + q, 30)
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                r = json.loads(line)
                key = tuple(sorted(r["metric"].items()))
                d = out.setdefault(key, {})
                for t, v in zip(r["timestamps"], r["values"]):
                    d[t] = bits(float(v))
        else:
            q = urllib.parse.urlencode({"query": '{__name__="%s"}[2h]' % metric, "time": "%.3f" % time.time()})
            _, body = http_get(self.base + "/api/v1/query?" + q, 30)
            for r in json.loads(body)["data"]["result"]:
                key = tuple(sorted(r["metric"].items()))
                d = out.setdefault(key, {})
                for t, v in r["values"]:
                    d[int(Decimal(str(t)) * 1000)] = bits(float(v))
        return out


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


class Pusher:
    """Pushes batches of one metric to a strata and keeps what was acknowledged."""

    def __init__(self, metric, nseries=40, tenant=None, seed=1):
        self.metric, self.nseries, self.tenant = metric, nseries, tenant
        self.rng = random.Random(seed)
        self.t = int(time.time() * 1000) - 50 * 60 * 1000  # well inside every retention, in the past
        self.acked = {}  # labels tuple -> {t: bits}
        self.refused = []  # (status, body) of refusals

    def labels(self, i):
        return [("__name__", self.metric), ("i", "%03d" % i), ("kind", "gw \"q\" é")]

    def push(self, srv, k=None):
        """One batch (one sample per series); True when acknowledged."""
        self.t += 1000
        series = []
        for i in range(self.nseries):
            # values every engine stores exactly: VictoriaMetrics keeps a block's values as
            # integers with one decimal exponent, so a series keeps one kind of magnitude
            v = [round(self.rng.uniform(-1e6, 1e6), 3), float(self.rng.randrange(0, 1 << 40)),
                 float("%d.%d" % (i, self.rng.randrange(0, 10))), float("%de-7" % self.rng.randrange(1, 1000))][i % 4]
            series.append((self.labels(i), [(v, self.t)]))
        tok = token(self.tenant, "metrics:write") if self.tenant is not None else None
        try:
            st, _, body = srv.write(rw1(series), tok)
        except OSError as e:
            self.refused.append((0, str(e)))
            return False
        if st != 204:
            self.refused.append((st, body))
            return False
        for labels, smp in series:
            key = tuple(sorted(labels))
            for v, t in smp:
                self.acked.setdefault(key, {})[t] = bits(v)
        return True

    def expected(self, extra=()):
        return {tuple(sorted(list(k) + list(extra))): v for k, v in self.acked.items()}


def wait_equal(engine, metric, want, timeout=90):
    """Polls the engine until it holds exactly want; returns (equal, why)."""
    deadline = time.time() + timeout
    got = {}
    while time.time() < deadline:
        try:
            got = engine.samples(metric)
        except OSError:
            got = {}
        if got == want:
            return True, ""
        missing = sum(1 for k, d in want.items() for t in d if got.get(k, {}).get(t) != d[t])
        if missing == 0 and sum(len(d) for d in got.values()) > sum(len(d) for d in want.values()):
            break  # everything there and more: extra samples never come back out
        time.sleep(0.5)
    missing = sum(1 for k, d in want.items() for t in d if got.get(k, {}).get(t) != d[t])
    extra = sum(1 for k, d in got.items() for t in d if t not in want.get(k, {}))
    return False, "missing or different %d, extra %d, series want %d got %d" % (missing, extra, len(want), len(got))


def settle(engine, metric, want):
    """Before a SIGKILL of VictoriaMetrics: it holds want, and has had time to write it to disk.
    It acknowledges before its in-memory parts reach disk (within about 12 s), so a SIGKILL right
    after a write loses what it acknowledged (an engine property the gateway cannot see)."""
    eq, _ = wait_equal(engine, metric, want)
    time.sleep(15)  # measured: 6 s after a write is not always on disk, 12 s is
    return eq


def strata(datadir, url, *extra, secret_file=None):
    s = Server(datadir, secret_file=secret_file, extra=["--remote-write-url=" + url] + list(extra))
    servers.append(s)
    return s


def metrics(srv):
    return srv.get("/metrics")[2].decode()


def main():
    print("1..%d" % PLAN, flush=True)
    # --- VictoriaMetrics: push, engine outage, gateway crash --------------------------------
    vm = Engine("vm", "vm1")
    vm.start()
    d1 = os.path.join(tmp, "s1")
    url = vm.base + "/api/v1/write"
    s1 = strata(d1, url)
    p = Pusher("gw_vm")
    acked = all(p.push(s1) for _ in range(20))
    eq, why = wait_equal(vm, "gw_vm", p.expected())
    ok(acked and eq, "every acknowledged sample is in VictoriaMetrics bit-exactly, nothing else", why)

    settle(vm, "gw_vm", p.expected())
    vm.kill()
    t_end = time.time() + 12
    accepted = True
    while time.time() < t_end:
        accepted &= p.push(s1)
        time.sleep(0.4)
    m = metrics(s1)
    ok(accepted, "writes are accepted while the engine is down", str(p.refused[:1]))
    ok((metric_value(m, "strata_remote_samples_retried_total") or 0) > 0 and
       (metric_value(m, "strata_remote_queue_bytes") or 0) > 0 and
       (metric_value(m, "strata_remote_queue_age_seconds") or 0) > 1,
       "/metrics counts retries, queue bytes and age while the engine is down",
       "retried=%s queue=%s age=%s" % (metric_value(m, "strata_remote_samples_retried_total"),
                                       metric_value(m, "strata_remote_queue_bytes"),
                                       metric_value(m, "strata_remote_queue_age_seconds")))
    vm.start()
    eq, why = wait_equal(vm, "gw_vm", p.expected())
    ok(eq, "after the engine's restart nothing acknowledged is missing", why)
    m = metrics(s1)
    ok(metric_value(m, "strata_remote_queue_bytes") == 0 and
       (metric_value(m, "strata_remote_samples_shipped_total") or 0) >= sum(len(d) for d in p.acked.values()) and
       (metric_value(m, "strata_remote_request_duration_seconds_count") or 0) > 0,
       "/metrics: queue drained, samples shipped, request durations observed")

    # a backlog, then strata SIGKILLed while shipping it, twice
    for rnd in range(2):
        settle(vm, "gw_vm", p.expected())
        vm.kill()
        for _ in range(15):
            p.push(s1)
        vm.start()
        time.sleep(0.3 * rnd)
        s1.proc.send_signal(signal.SIGKILL)
        s1.proc.wait()
        servers.remove(s1)
        s1 = strata(d1, url)
        for _ in range(3):
            p.push(s1)
    eq, why = wait_equal(vm, "gw_vm", p.expected())
    ok(eq and not p.refused, "strata SIGKILLed while shipping and restarted: nothing acknowledged is missing",
       why or str(p.refused[:1]))
    s1.stop()
    servers.remove(s1)

    # --- backpressure ----------------------------------------------------------------------------
    vm2 = Engine("vm", "vm2")
    d2 = os.path.join(tmp, "s2")
    s2 = strata(d2, vm2.base + "/api/v1/write", "--remote-queue-max-bytes=16KiB")
    p2 = Pusher("gw_bp", nseries=20, seed=2)
    for _ in range(400):
        if not p2.push(s2):
            break
        time.sleep(0.01)
    st, body = p2.refused[0] if p2.refused else (0, b"")
    ok(st == 503 and b"remote-write queue" in body and len(p2.acked) > 0,
       "a small --remote-queue-max-bytes with the engine down: writers get 503 naming the queue",
       "status %s body %r" % (st, body[:200]))
    m = metrics(s2)
    ok((metric_value(m, "strata_remote_writes_refused_total") or 0) >= 1, "/metrics counts the refused writes")
    vm2.start()
    eq, why = wait_equal(vm2, "gw_bp", p2.expected())
    ok(eq, "once the engine is up every acknowledged sample arrives", why)
    s2.stop()
    servers.remove(s2)
    vm2.stop()

    # --- tenants: {tenant} in the URL picks the engine -----------------------------------------
    port = free_port()
    va, vb = Engine("vm", "vma", "127.0.0.1", port), Engine("vm", "vmb", "127.0.0.2", port)
    va.start()
    vb.start()
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as f:
        f.write(SECRET)
    s3 = strata(os.path.join(tmp, "s3"), "http://127.0.0.{tenant}:%d/api/v1/write" % port, secret_file=secret)
    t1, t2 = Pusher("gw_tenant", 10, tenant=1, seed=3), Pusher("gw_tenant", 10, tenant=2, seed=4)
    t1.labels = lambda i: [("__name__", "gw_tenant"), ("who", "one"), ("i", str(i))]
    t2.labels = lambda i: [("__name__", "gw_tenant"), ("who", "two"), ("i", str(i))]
    good = all(t1.push(s3) and t2.push(s3) for _ in range(10))
    ea, wa = wait_equal(va, "gw_tenant", t1.expected())
    eb, wb = wait_equal(vb, "gw_tenant", t2.expected())
    ok(good and ea and eb, "two tenants reach two engines through {tenant}, without the tenant label, never mixed",
       wa + " / " + wb)
    s3.stop()
    servers.remove(s3)
    va.stop()
    vb.stop()

    # --- Prometheus 2.42 as the engine ---------------------------------------------------------
    pr = Engine("prom", "prom")
    pr.start()
    s4 = strata(os.path.join(tmp, "s4"), pr.base + "/api/v1/write")
    p4 = Pusher("gw_prom", 30, seed=5)
    good = all(p4.push(s4) for _ in range(20))
    eq, why = wait_equal(pr, "gw_prom", p4.expected())
    ok(good and eq, "Prometheus 2.42 as the engine: every acknowledged sample, bit-exact, nothing else", why)
    s4.stop()
    servers.remove(s4)
    pr.stop()

    # --- flags ------------------------------------------------------------------------------------
    # --- remote-write 2.0: a second strata (which takes 2.0) as the engine ----------------------
    eng = Server(os.path.join(tmp, "s6"))
    servers.append(eng)
    e6 = Engine("vm", "s6e")  # strata's /api/v1/export has VictoriaMetrics' format
    e6.base = eng.url
    s5 = strata(os.path.join(tmp, "s5"), eng.url + "/api/v1/write", "--remote-write-version=2",
                "--remote-tenant-header=X-Scope-OrgID")
    p5 = Pusher("gw_rw2", 25, seed=6)
    good = all(p5.push(s5) for _ in range(10))
    eq, why = wait_equal(e6, "gw_rw2", p5.expected())
    m = metrics(s5)
    ok(good and eq and metric_value(m, "strata_remote_samples_failed_total") == 0,
       "--remote-write-version=2: every acknowledged sample reaches a 2.0 receiver bit-exactly", why)
    s5.stop()
    servers.remove(s5)
    eng.stop()
    servers.remove(eng)
    r = subprocess.run([os.path.join(BUILD, "strata"), "--help"], capture_output=True, text=True, timeout=30)
    ok(all(f in r.stdout for f in ("--remote-write-url", "--remote-write-version", "--remote-tenant-header",
                                   "--remote-bearer-token-file", "--remote-ca-file", "--remote-queue-max-bytes")),
       "--help lists the remote-write flags")
    vm.stop()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash of the script is a failure that says so
        import traceback
        traceback.print_exc()
        print("not ok - script error: %s" % e)
        nok += 1
    finally:
        cleanup()
    if nok != PLAN:
        while nok < PLAN:
            print("not ok - not reached")
            nok += 1
    sys.exit(0)
