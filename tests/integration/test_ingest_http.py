#!/usr/bin/env python3
"""test_ingest_http.py: drives the real strata binary over HTTP on loopback.

Remote-write 1.0 and 2.0 bodies are built here by hand (protobuf wire format,
snappy block format with literals only, HS256 JWTs with hmac), so the test
needs nothing beyond the Python standard library.  Prints TAP lines.
"""
import base64, hashlib, hmac, http.client, json, os, shutil, signal, socket
import struct, subprocess, sys, tempfile, time

BUILD = os.environ.get("STRATA_BUILD", "build")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import has_metric_line, metric_value, stop_process  # noqa: E402
BIN = os.path.join(BUILD, "strata")
SECRET = b"integration-test-secret"
LIMIT = 65536                      # --max-request-bytes for this run
FAILS = 0
TAPS = 0  # checks run: the trailing TAP plan "1..TAPS" (tests/run_tests.sh compares)


def tap(ok, name, info=""):
    global FAILS, TAPS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        if info:
            for line in str(info).splitlines()[:20]:
                print("#   " + line)
    sys.stdout.flush()


# ---- wire encoding -----------------------------------------------------------

def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def fld(num, wt, payload):
    key = varint(num << 3 | wt)
    if wt == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def f64(v):
    return struct.pack("<d", v)


def stale():
    return struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def i64(n):
    return varint(n & 0xFFFFFFFFFFFFFFFF)


def rw1(series):
    """series: list of (labels [(name, value)], samples [(value, ts)])."""
    out = b""
    for labels, samples in series:
        ts = b""
        for n, v in labels:
            ts += fld(1, 2, fld(1, 2, n.encode() if isinstance(n, str) else n) +
                      fld(2, 2, v.encode() if isinstance(v, str) else v))
        for v, t in samples:
            ts += fld(2, 2, fld(1, 1, f64(v)) + fld(2, 0, i64(t)))
        out += fld(1, 2, ts)
    return out


def rw2(series):
    symbols = [""]
    index = {"": 0}

    def ref(s):
        if s not in index:
            index[s] = len(symbols)
            symbols.append(s)
        return index[s]
    body_ts = b""
    for labels, samples in series:
        refs = b"".join(varint(ref(n)) + varint(ref(v)) for n, v in labels)
        ts = fld(1, 2, refs)
        for v, t in samples:
            ts += fld(2, 2, fld(1, 1, f64(v)) + fld(2, 0, i64(t)))
        body_ts += fld(5, 2, ts)
    return b"".join(fld(4, 2, s.encode()) for s in symbols) + body_ts


def snappy(data):
    """Valid snappy block: the length, then literal chunks of up to 60 bytes."""
    out = varint(len(data))
    for i in range(0, len(data), 60):
        chunk = data[i:i + 60]
        out += bytes([(len(chunk) - 1) << 2]) + chunk
    return out


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, secret=SECRET, alg="HS256"):
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def token(tenant, scope, **extra):
    c = {"sub": "tester", "tenant_id": tenant, "scope": scope, "exp": int(time.time()) + 3600}
    c.update(extra)
    return jwt(c)


# ---- server ------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, datadir, keyfile, extra=()):
        self.port = free_port()
        self.logpath = os.path.join(os.path.dirname(datadir), "strata-%d.log" % self.port)
        self.log = open(self.logpath, "w+")
        self.proc = subprocess.Popen(
            [BIN, "--listen=127.0.0.1:%d" % self.port, "--data-dir=" + datadir, "--auth=jwt",
             "--jwt-secret-file=" + keyfile, "--max-request-bytes=%d" % LIMIT,
             "--wal-fsync=always", "--log-level=warn"] + list(extra),
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                st, _, _ = self.req("GET", "/readyz")
                if st == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("server did not become ready")

    def req(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        c.close()
        return r.status, hdrs, data

    def write(self, raw, tok, v2=False, compress=True, ctype=None, encoding="snappy"):
        h = {"Content-Type": ctype or ("application/x-protobuf;proto=io.prometheus.write.v2.Request"
                                       if v2 else "application/x-protobuf"),
             "X-Prometheus-Remote-Write-Version": "2.0.0" if v2 else "0.1.0"}
        if encoding:
            h["Content-Encoding"] = encoding
        if tok:
            h["Authorization"] = "Bearer " + tok
        return self.req("POST", "/api/v1/write", snappy(raw) if compress else raw, h)

    def export(self, sel, tok, extra=""):
        from urllib.parse import quote
        st, _, data = self.req("GET", "/api/v1/export?match[]=" + quote(sel) + extra,
                               headers={"Authorization": "Bearer " + tok})
        lines = [json.loads(x) for x in data.decode().splitlines() if x.strip()] if st == 200 else data
        return st, lines

    def stop(self):
        """SIGTERM; asserts exit 0 (tests/lib/strata_client.py stop_process: raises otherwise)."""
        return stop_process(self.proc, getattr(self, "logpath", None), 30)


def err_body(data):
    try:
        return json.loads(data)
    except ValueError:
        return {"raw": data[:200]}


def check_error(name, resp, status, message, details=None):
    st, _, data = resp
    body = err_body(data)
    ok = st == status and body.get("code") == status and body.get("message") == message
    if details is not None:
        ok = ok and body.get("details") == details
    tap(ok, name, "got %s %s" % (st, body))


def main():
    if not os.access(BIN, os.X_OK):
        tap(False, "strata binary exists at " + BIN)
        return 1
    tmp = tempfile.mkdtemp(prefix="strata-it-")
    datadir = os.path.join(tmp, "data")
    keyfile = os.path.join(tmp, "secret")
    with open(keyfile, "wb") as f:
        f.write(SECRET + b"\n")
    srv = None
    try:
        # --help and the loopback rule, before any server runs
        out = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=10)
        flags = ["--listen", "--data-dir", "--retention", "--retention-size", "--wal-fsync",
                 "--wal-fsync-interval", "--auth", "--jwt-secret-file", "--jwt-public-key",
                 "--insecure", "--tls-cert", "--tls-key", "--max-request-bytes",
                 "--max-series-per-tenant", "--max-labels-per-series", "--max-label-name-length",
                 "--max-label-value-length", "--ooo-window", "--block-duration", "--log-level",
                 "--staleness", "--gpu-idle-after", "--report-retention", "--report-workers",
                 "--max-points", "--max-range"]
        missing = [f for f in flags if f not in out.stdout]
        tap(out.returncode == 0 and not missing, "--help lists every flag", "missing: %s" % missing)
        r = subprocess.run([BIN, "--listen=0.0.0.0:%d" % free_port(), "--data-dir=" + datadir,
                            "--auth=none"], capture_output=True, text=True, timeout=10)
        tap(r.returncode == 2 and "refusing" in r.stderr,
            "--auth=none on a non-loopback address is refused", r.stderr)

        r = subprocess.run([BIN, "--threads=4", "--max-connections=2"], capture_output=True, text=True, timeout=10)
        r2 = subprocess.run([BIN, "--retention=forever"], capture_output=True, text=True, timeout=10)
        tap(r.returncode == 2 and "--max-connections" in r.stderr and r2.returncode == 2
            and "--retention" in r2.stderr, "bad flag values exit 2 naming the flag", r.stderr + r2.stderr)

        srv = Server(datadir, keyfile)
        st, _, body = srv.req("GET", "/healthz")
        tap(st == 200 and body == b"ok\n", "GET /healthz")
        r = subprocess.run([BIN, "--listen=127.0.0.1:%d" % srv.port, "--data-dir=" + os.path.join(tmp, "other")],
                           capture_output=True, text=True, timeout=10)
        tap(r.returncode == 1 and "cannot listen" in r.stderr, "a second server on a port in use exits 1", r.stderr)
        st, _, _ = srv.req("GET", "/readyz")
        tap(st == 200, "GET /readyz once the store is open")

        w1, r1 = token(1, "metrics:write"), token(1, "metrics:read")
        w2, r2 = token(2, "metrics:write metrics:read"), token(2, "metrics:read")
        now = (int(time.time()) - 60) * 1000

        # ---- good RW1: unsorted labels, an empty label value, NaN/Inf, a stale marker
        good = rw1([
            ([("job", "dcgm"), ("__name__", "rw1_gpu_util"), ("gpu", "0"), ("empty", "")],
             [(10.0, now - 2000), (20.5, now - 1000), (float("nan"), now)]),
            ([("__name__", "rw1_power"), ("gpu", "1")],
             [(float("inf"), now - 2000), (float("-inf"), now - 1000), (stale(), now)]),
        ])
        st, hdr, body = srv.write(good, w1)
        tap(st == 204 and body == b"", "RW1 write with unsorted labels, empty value, NaN/Inf, stale -> 204",
            "%s %s" % (st, body))
        want1 = [
            {"metric": {"__name__": "rw1_gpu_util", "gpu": "0", "job": "dcgm"},
             "values": [10, 20.5, "NaN"], "timestamps": [now - 2000, now - 1000, now]},
            {"metric": {"__name__": "rw1_power", "gpu": "1"},
             "values": ["+Inf", "-Inf"], "timestamps": [now - 2000, now - 1000]},
        ]

        def export_rw1():
            st, lines = srv.export('{__name__=~"rw1_.+"}', r1)
            return st, sorted(lines, key=lambda x: x["metric"]["__name__"]) if st == 200 else lines
        st, got = export_rw1()
        tap(st == 200 and got == want1, "RW1 data reads back exactly through /api/v1/export (stale marker not exported)",
            "got %s %s" % (st, got))

        st, _, _ = srv.write(good, w1)
        st2, got = export_rw1()
        tap(st == 204 and got == want1, "identical retry is idempotent (204, nothing doubled)", "%s %s" % (st, got))

        # ---- good RW2 with the written-count headers
        v2 = rw2([([("__name__", "rw2_temp"), ("gpu", "3"), ("node", "n1")], [(61.0, now - 1000), (62.25, now)]),
                  ([("__name__", "rw2_clock"), ("gpu", "3")], [(1980.0, now)])])
        st, hdr, body = srv.write(v2, w1, v2=True)
        tap(st == 204 and hdr.get("x-prometheus-remote-write-samples-written") == "3"
            and hdr.get("x-prometheus-remote-write-histograms-written") == "0"
            and hdr.get("x-prometheus-remote-write-exemplars-written") == "0",
            "RW2 write -> 204 with Samples/Histograms/Exemplars-Written headers", "%s %s" % (st, hdr))
        st, got = srv.export('rw2_temp{gpu="3"}', r1)
        tap(st == 200 and got == [{"metric": {"__name__": "rw2_temp", "gpu": "3", "node": "n1"},
                                   "values": [61, 62.25], "timestamps": [now - 1000, now]}],
            "RW2 data reads back exactly", got)
        st, got = srv.export('{__name__=~"rw2_.+",node!="n1"}', r1)
        tap(st == 200 and [l["metric"]["__name__"] for l in got] == ["rw2_clock"],
            "export selector with =~ and != matchers", got)
        st, got = srv.export('rw2_temp', r1, "&match[]=" + "rw2_temp%7Bgpu%3D%223%22%7D" + "&match[]=rw2_clock")
        tap(st == 200 and sorted(l["metric"]["__name__"] for l in got) == ["rw2_clock", "rw2_temp"],
            "several match[] are a union, each series once", got)
        st, got = srv.export('rw2_temp', r1, "&start=%s&end=%s" % (
            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now / 1000)), "%.3f" % (now / 1000 + 1)))
        tap(st == 200 and got and got[0]["timestamps"] == [now], "export start (RFC 3339) / end (unix seconds) bound the range", got)

        # ---- bad input, each with its exact status and message
        check_error("not snappy -> 400", srv.write(b"\xff\xff\xff\xff\xff\xff\xff", w1, compress=False),
                    400, "corrupt snappy data")
        check_error("truncated snappy -> 400", srv.write(snappy(good)[:-7], w1, compress=False),
                    400, "corrupt snappy data")
        check_error("snappy length bomb -> 413 before decompressing",
                    srv.write(b"\xff\xff\xff\xff\x0f\x00", w1, compress=False), 413, "request body too large",
                    "the decompressed body is over the limit of %d bytes (--max-request-bytes)" % LIMIT)
        check_error("decompressed body over the limit -> 413", srv.write(b"\x00" * (LIMIT + 1), w1),
                    413, "request body too large")
        check_error("declared Content-Length over the limit -> 413 before the body", srv.write(os.urandom(LIMIT * 2), w1, compress=False),
                    413, "request body too large",
                    "Content-Length %d is over the limit of %d bytes (--max-request-bytes); the body was not read"
                    % (LIMIT * 2, LIMIT))
        check_error("invalid protobuf -> 400", srv.write(b"\x0a\x7f\x01\x02", w1), 400, "invalid protobuf message",
                    "cannot unpack prometheus.WriteRequest")
        check_error("wrong content type -> 415", srv.write(good, w1, ctype="application/json"),
                    415, "unsupported media type")
        check_error("unknown proto parameter -> 415",
                    srv.write(good, w1, ctype="application/x-protobuf;proto=foo.Bar"), 415, "unsupported media type")
        check_error("non-snappy Content-Encoding -> 415", srv.write(good, w1, encoding="gzip"),
                    415, "unsupported media type")
        check_error("empty body -> 400", srv.write(b"", w1, compress=False), 400, "empty request body")
        st, _, _ = srv.write(b"", w1)
        tap(st == 204, "empty WriteRequest (valid snappy, no series) -> 204", st)

        check_error("missing __name__ -> 400", srv.write(rw1([([("job", "x")], [(1.0, now)])]), w1),
                    400, 'series {job="x"}: no metric name (__name__ label)',
                    "rejected: missing_metric_name=1; samples written: 0")
        check_error("invalid label name -> 400",
                    srv.write(rw1([([("__name__", "bad_name"), ("1x", "v")], [(1.0, now)])]), w1),
                    400, 'series {1x="v", __name__="bad_name"}: invalid label name "1x"')
        check_error("duplicate label names -> 400",
                    srv.write(rw1([([("__name__", "dup"), ("a", "1"), ("a", "2")], [(1.0, now)])]), w1),
                    400, 'series {__name__="dup", a="1", a="2"}: duplicate label name "a"')
        check_error("invalid UTF-8 value -> 400",
                    srv.write(rw1([([("__name__", "utf"), ("a", b"\xc3\x28")], [(1.0, now)])]), w1),
                    400, 'series {__name__="utf", a="?("}: label "a" value is not valid UTF-8')
        check_error("reserved __tenant__ label -> 400",
                    srv.write(rw1([([("__name__", "sneaky"), ("__tenant__", "2")], [(1.0, now)])]), w1),
                    400, 'series {__name__="sneaky", __tenant__="2"}: label name "__tenant__" is reserved')
        check_error("sample more than 10m in the future -> 400",
                    srv.write(rw1([([("__name__", "future")], [(1.0, now + 3600 * 1000)])]), w1),
                    400, 'series {__name__="future"}: sample timestamp %d is more than 10m ahead of the server clock'
                    % (now + 3600 * 1000))
        check_error("sample older than the out-of-order window -> 400",
                    srv.write(rw1([([("__name__", "rw1_gpu_util"), ("gpu", "0"), ("job", "dcgm")],
                                    [(5.0, now - 11 * 60 * 1000)])]), w1),
                    400, 'series {__name__="rw1_gpu_util", gpu="0", job="dcgm"}: sample is older than the out-of-order window',
                    "rejected: out_of_window=1; samples written: 0")
        check_error("conflicting value at a stored timestamp -> 400",
                    srv.write(rw1([([("__name__", "rw1_gpu_util"), ("gpu", "0"), ("job", "dcgm")],
                                    [(99.0, now - 1000)])]), w1),
                    400, 'series {__name__="rw1_gpu_util", gpu="0", job="dcgm"}: sample conflicts with a stored sample at the same timestamp')
        st, got = export_rw1()
        tap(st == 200 and got == want1, "stored data unharmed by every rejected request", got)

        # partial acceptance: the valid series of a mixed request are stored
        st, hdr, body = srv.write(rw1([([("job", "x")], [(1.0, now)]),
                                       ([("__name__", "partial_ok"), ("z", "")], [(7.0, now)])]), w1)
        b = err_body(body)
        st2, got = srv.export("partial_ok", r1)
        tap(st == 400 and b.get("details") == "rejected: missing_metric_name=1; samples written: 1"
            and got == [{"metric": {"__name__": "partial_ok"}, "values": [7], "timestamps": [now]}],
            "mixed request: 400 naming the rejected series, valid series stored (empty label dropped)",
            "%s %s %s" % (st, b, got))

        # ---- auth
        check_error("no token -> 401", srv.write(good, None), 401, "missing or invalid credentials",
                    "missing bearer token")
        check_error("expired token -> 401", srv.write(good, token(1, "metrics:write", exp=int(time.time()) - 10)),
                    401, "missing or invalid credentials", "token expired")
        check_error("token not yet valid -> 401",
                    srv.write(good, token(1, "metrics:write", nbf=int(time.time()) + 600)),
                    401, "missing or invalid credentials", "token not valid yet (nbf)")
        bad_sig = jwt({"tenant_id": 1, "scope": "metrics:write", "exp": int(time.time()) + 60}, secret=b"wrong")
        check_error("badly signed token -> 401", srv.write(good, bad_sig), 401, "missing or invalid credentials",
                    "invalid token: bad format or signature")
        check_error("token without metrics:write -> 403", srv.write(good, r1), 403, "insufficient scope",
                    "token lacks scope metrics:write")
        st, _, data = srv.req("GET", "/api/v1/export?match[]=up", headers={"Authorization": "Bearer " + w1})
        tap(st == 403 and err_body(data).get("details") == "token lacks scope metrics:read",
            "export without metrics:read -> 403", data)

        # ---- tenants
        st, got = srv.export('{__name__=~"rw1_.+|rw2_.+"}', r2)
        tap(st == 200 and got == [], "another tenant's data is invisible", got)
        st, _, _ = srv.write(rw1([([("__name__", "rw1_gpu_util"), ("gpu", "0"), ("job", "dcgm")], [(1.0, now)])]), w2)
        st2, got2 = srv.export("rw1_gpu_util", r2)
        st3, got1 = export_rw1()
        tap(st == 204 and got2 == [{"metric": {"__name__": "rw1_gpu_util", "gpu": "0", "job": "dcgm"},
                                    "values": [1], "timestamps": [now]}] and got1 == want1,
            "same series name in two tenants stays apart", "%s %s" % (got2, got1))
        st, _, data = srv.req("GET", "/api/v1/export?match[]=" + "%7B__tenant__%3D%221%22%7D",
                              headers={"Authorization": "Bearer " + r2})
        tap(st == 400 and err_body(data).get("details") == "label __tenant__ is reserved",
            "selecting on __tenant__ is refused", data)
        st, _, data = srv.req("GET", "/api/v1/export?match[]=up%7Ba%3D", headers={"Authorization": "Bearer " + r1})
        tap(st == 400 and err_body(data).get("message") == "invalid match[] parameter",
            "bad selector -> 400", data)
        st, _, data = srv.req("GET", "/api/v1/export?match[]=up&start=yesterday",
                              headers={"Authorization": "Bearer " + r1})
        tap(st == 400 and err_body(data).get("message") == "invalid start parameter", "bad start -> 400", data)

        # ---- workloads (registry fed by remote write)
        wid = "3f1c2a9e-8d7b-4c6a-9e2f-1a2b3c4d5e6f"
        srv.write(rw1([
            ([("__name__", "runai_workload_info"), ("workload_id", wid), ("workload_name", "train-1"),
              ("workload_type", "Training"), ("category", "Train"), ("project_name", "p1"),
              ("created_at", "2026-01-02T03:04:05Z")], [(1.0, now - 1000), (1.0, now)]),
            ([("__name__", "runai_workload_phase"), ("workload_id", wid), ("phase", "Running")],
             [(1.0, now - 1000), (1.0, now)]),
        ]), w1)

        def get(path, tok=r1):
            st, _, data = srv.req("GET", path, headers={"Authorization": "Bearer " + tok})
            try:
                return st, json.loads(data)
            except ValueError:
                return st, data
        st, body = get("/api/v1/workloads")
        w = body.get("workloads", [{}])[0] if isinstance(body, dict) and body.get("workloads") else {}
        tap(st == 200 and len(body.get("workloads", [])) == 1 and w.get("id") == wid and w.get("name") == "train-1"
            and w.get("phase") == "Running" and w.get("createdAt") == "2026-01-02T03:04:05Z",
            "GET /api/v1/workloads lists a workload written by remote write", body)
        st, body = get("/api/v1/workloads/count")
        tap(st == 200 and body == {"count": 1}, "GET /api/v1/workloads/count", body)
        st, body = get("/api/v1/workloads/" + wid)
        tap(st == 200 and body.get("id") == wid, "GET /api/v1/workloads/{id}", body)
        st, body = get("/api/v1/workloads/00000000-0000-0000-0000-000000000000")
        tap(st == 404 and body.get("code") == 404, "unknown workload id -> 404", body)
        st, body = get("/api/v1/workloads/count", r2)
        tap(st == 200 and body == {"count": 0}, "another tenant's workloads are invisible", body)
        st, body = get("/api/v1/workloads?limit=0")
        tap(st == 400 and body.get("message") == "invalid limit parameter", "bad limit -> 400 naming it", body)
        st, body = get("/api/v1/workloads", w1)
        tap(st == 403, "workloads need metrics:read", body)
        st, body = get("/api/v1/workloads/telemetry?telemetryType=WORKLOADS_COUNT")
        tap(st == 200 and body.get("type") == "WORKLOADS_COUNT" and [v.get("value") for v in body.get("values", [])] == ["1"],
            "GET /api/v1/workloads/telemetry counts the tenant's workloads", body)
        st, body = get("/api/v1/workloads/telemetry?telemetryType=NOPE")
        tap(st == 400 and body.get("code") == 400, "telemetry with a bad telemetryType -> 400", body)
        st, body = get("/api/v1/workloads/%s/metrics" % wid)
        tap(st == 400 and body.get("code") == 400, "metrics without metricType -> 400", body)
        st, _, _ = srv.req("DELETE", "/api/v1/workloads", headers={"Authorization": "Bearer " + r1})
        tap(st == 405, "known path, wrong method -> 405", st)

        # ---- reports: create, generate from the store, download
        wid2 = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
        t0 = (int(time.time()) - 3 * 3600) // 60 * 60 * 1000
        minutes = [(2.0, t0 + i * 60000) for i in range(61)]
        srv.write(rw1([
            ([("__name__", "runai_workload_info"), ("workload_id", wid2), ("workload_name", "rep-1"),
              ("project_id", "p-7"), ("project_name", "proj seven")], minutes),
            ([("__name__", "runai_workload_gpu_allocation"), ("workload_id", wid2)], minutes),
        ]), w1)
        rw = token(1, "metrics:read reports:write")
        iso = lambda ms: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))
        req = json.dumps({"name": "gpu-hours", "start": iso(t0), "end": iso(t0 + 3600000), "groupBy": "Project"})
        st, _, data = srv.req("POST", "/api/v1/org-unit/reports", req,
                              {"Authorization": "Bearer " + rw, "Content-Type": "application/json"})
        rep = err_body(data)
        tap(st == 202 and rep.get("name") == "gpu-hours" and rep.get("status") in ("Pending", "Processing", "Ready"),
            "POST /api/v1/org-unit/reports -> 202 with the Report", data)
        st2, _, _ = srv.req("POST", "/api/v1/org-unit/reports", req, {"Authorization": "Bearer " + r1})
        st3, _, _ = srv.req("POST", "/api/v1/org-unit/reports", req, {"Authorization": "Bearer " + rw})
        tap(st2 == 403 and st3 == 409, "creating needs reports:write; a duplicate name is 409", "%s %s" % (st2, st3))
        rid, status, deadline = rep.get("id", "x"), None, time.time() + 20
        while status not in ("Ready", "Failed") and time.time() < deadline:
            st, body = get("/api/v1/org-unit/reports/" + rid)
            status = body.get("status") if isinstance(body, dict) else None
            if status not in ("Ready", "Failed"):
                time.sleep(0.05)
        st, hdr, data = srv.req("GET", "/api/v1/org-unit/reports/%s/file" % rid, headers={"Authorization": "Bearer " + r1})
        lines = data.decode().splitlines()
        cols = lines[0].split(",") if lines else []
        rows = [dict(zip(cols, l.split(","))) for l in lines[1:]]
        hours = sum(float(r.get("gpu_allocation_hours", "nan")) for r in rows) if rows else None
        tap(status == "Ready" and st == 200 and hdr.get("content-type", "").startswith("text/csv")
            and "attachment" in hdr.get("content-disposition", "")
            and cols[:3] == ["date", "project_id", "project_name"]
            and all(r.get("project_id") == "p-7" and r.get("workloads") == "1" for r in rows)
            and hours is not None and abs(hours - 2.0) < 1e-9,
            "report generated from stored samples: 2 GPUs for 1 hour = 2 gpu_allocation_hours",
            "status=%s st=%s hdr=%s csv=%s" % (status, st, hdr, lines[:4]))
        st, body = get("/api/v1/workloads/%s/metrics?metricType=GPU_ALLOCATION&start=%s&end=%s&numberOfSamples=1"
                       % (wid2, iso(t0), iso(t0 + 3600000)))
        m = body.get("measurements", [{}])[0] if isinstance(body, dict) and body.get("measurements") else {}
        tap(st == 200 and m.get("type") == "GPU_ALLOCATION"
            and m.get("values") == [{"value": "2", "timestamp": iso(t0 + 3600000)}],
            "GET /api/v1/workloads/{id}/metrics reads the stored samples", body)
        st, body = get("/api/v1/workloads/00000000-0000-0000-0000-000000000000/metrics?metricType=GPU_ALLOCATION"
                       "&start=%s&end=%s" % (iso(t0), iso(t0 + 3600000)))
        tap(st == 404, "metrics of an unknown workload -> 404", body)
        st, _, data = srv.req("GET", "/api/v1/workloads/%s/metrics?metricType=GPU_ALLOCATION&start=%s&end=%s"
                              "&numberOfSamples=1" % (wid2, iso(t0), iso(t0 + 3600000)),
                              headers={"Authorization": "Bearer " + r1, "Accept": "text/csv"})
        tap(st == 200 and data.decode().count("\n") >= 2, "metrics as CSV with Accept: text/csv", data[:200])
        st, body = get("/api/v1/org-unit/reports/count")
        st2, body2 = get("/api/v1/org-unit/reports/count", r2)
        tap(st == 200 and body == {"count": 1} and body2 == {"count": 0}, "report count, per tenant", "%s %s" % (body, body2))
        st, _, _ = srv.req("DELETE", "/api/v1/org-unit/reports/" + rid, headers={"Authorization": "Bearer " + rw})
        st2, body = get("/api/v1/org-unit/reports/" + rid)
        tap(st == 204 and st2 == 404, "DELETE a report -> 204, then 404", "%s %s" % (st, st2))

        # ---- every Run:ai body the server answers matches the spec (read at run time)
        from spec_schema import Spec
        specs = {"workloads": Spec.load("workloads"), "reports": Spec.load("reports")}
        st, _, data = srv.req("POST", "/api/v1/org-unit/reports",
                              json.dumps({"name": "schema", "start": iso(t0), "end": iso(t0 + 3600000)}),
                              {"Authorization": "Bearer " + rw, "Content-Type": "application/json"})
        rid2 = err_body(data).get("id", "x")
        mq = "metricType=GPU_ALLOCATION,GPU_UTILIZATION&start=%s&end=%s&numberOfSamples=4" % (iso(t0), iso(t0 + 3600000))
        cases = [
            ("workloads", "get", "/api/v1/workloads", "/api/v1/workloads?deleted=true", r1, 200),
            ("workloads", "get", "/api/v1/workloads", "/api/v1/workloads", r1, 200),
            ("workloads", "get", "/api/v1/workloads/count", "/api/v1/workloads/count", r1, 200),
            ("workloads", "get", "/api/v1/workloads/{workloadId}", "/api/v1/workloads/" + wid, r1, 200),
            ("workloads", "get", "/api/v1/workloads/{workloadId}/endpoints", "/api/v1/workloads/%s/endpoints" % wid, r1, 200),
            ("workloads", "get", "/api/v1/workloads/{workloadId}/elements", "/api/v1/workloads/%s/elements" % wid, r1, 200),
            ("workloads", "get", "/api/v1/workloads/{workloadId}/elements/count",
             "/api/v1/workloads/%s/elements/count" % wid, r1, 200),
            ("workloads", "get", "/api/v1/workloads/telemetry",
             "/api/v1/workloads/telemetry?telemetryType=GPU_ALLOCATION&groupBy=ProjectId", r1, 200),
            ("workloads", "get", "/api/v1/workloads/{workloadId}/metrics", "/api/v1/workloads/%s/metrics?%s" % (wid2, mq), r1, 200),
            ("workloads", "get", "/api/v1/workloads", "/api/v1/workloads", None, 401),
            ("workloads", "get", "/api/v1/workloads", "/api/v1/workloads", w1, 403),
            ("workloads", "get", "/api/v1/workloads/{workloadId}", "/api/v1/workloads/" + "0" * 8 + "-0000-0000-0000-" + "0" * 12, r1, 404),
            ("workloads", "get", "/api/v1/workloads/telemetry", "/api/v1/workloads/telemetry?telemetryType=X", r1, 400),
            ("workloads", "get", "/api/v1/workloads/{workloadId}/metrics", "/api/v1/workloads/%s/metrics" % wid2, r1, 400),
            ("reports", "get", "/api/v1/org-unit/reports/{reportId}", "/api/v1/org-unit/reports/" + rid2, r1, 200),
            ("reports", "get", "/api/v1/org-unit/reports/{reportId}", "/api/v1/org-unit/reports/nope", r1, 404),
        ]
        for page, method, spath, url, tok, want in cases:
            h = {"Authorization": "Bearer " + tok} if tok else {}
            st, _, data = srv.req(method.upper(), url, headers=h)
            try:
                specs[page].validate(method, spath, st, json.loads(data))
                why = None if st == want else "status %s" % st
            except Exception as e:  # noqa: BLE001 - any mismatch is the failure
                why = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200])
            tap(why is None, "spec: %s %s -> %d body matches the Run:ai schema" % (method.upper(), url[:70], want),
                "%s; body %s" % (why, data[:200]))

        # ---- /metrics
        st, _, data = srv.req("GET", "/metrics", headers={"Authorization": "Bearer " + r1})
        text = data.decode()
        # 6 (RW1, the stale marker included) + 6 (identical retry) + 3 (RW2) + 1 (partial_ok)
        # + 1 (tenant 2) + 4 (workloads) + 122 (reports) accepted samples
        want_lines = ["strata_ingested_samples_total 143",
                      'strata_rejected_samples_total{reason="missing_metric_name"} 2',
                      'strata_rejected_samples_total{reason="out_of_window"} 1',
                      'strata_rejected_samples_total{reason="duplicate_timestamp"} 1',
                      'strata_rejected_samples_total{reason="too_far_in_future"} 1',
                      'strata_http_request_duration_seconds_bucket{path="/api/v1/write",code="413",le="+Inf"} 3',
                      "strata_ready 1", "strata_registry_workloads 2"]
        # series whose value varies from run to run: a whole line of that series, any number
        want_series = ['strata_http_request_duration_seconds_count{path="/api/v1/write",code="204"}',
                       "strata_wal_fsync_duration_seconds_count", "strata_active_series",
                       "strata_head_bytes", "strata_block_bytes"]
        missing = [l for l in want_lines if not has_metric_line(text, l)] + \
            [n for n in want_series if metric_value(text, n) is None]
        tap(st == 200 and not missing, "/metrics shows ingest counters, rejections, histograms, store gauges",
            "missing: %s" % missing)
        st, _, _ = srv.req("GET", "/metrics")
        tap(st == 401, "/metrics needs a token with --auth=jwt", st)
        st, _, data = srv.req("GET", "/api/v1/no-such-thing", headers={"Authorization": "Bearer " + r1})
        tap(st == 404 and err_body(data).get("code") == 404 and err_body(data).get("message") == "unknown API path",
            "unknown API paths answer 404 JSON", data)

        # ---- shutdown: a request in flight when SIGTERM arrives is finished, then exit 0
        inflight = snappy(rw1([([("__name__", "inflight")], [(42.0, now)])]))
        sock = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        sock.sendall(("POST /api/v1/write HTTP/1.1\r\nHost: strata\r\nContent-Type: application/x-protobuf\r\n"
                      "Content-Encoding: snappy\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                      % (w1, len(inflight))).encode() + inflight[:5])

        def in_flight():
            _, _, d = srv.req("GET", "/metrics", headers={"Authorization": "Bearer " + r1})
            for line in d.decode().splitlines():
                if line.startswith("strata_http_requests_in_flight "):
                    return int(line.split()[1])
        deadline = time.time() + 10
        while in_flight() != 2 and time.time() < deadline:   # the /metrics request itself is the other one
            time.sleep(0.02)
        srv.proc.send_signal(signal.SIGTERM)
        closed, deadline = False, time.time() + 10
        while not closed and time.time() < deadline:       # wait for the listener to close
            try:
                socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
                time.sleep(0.02)
            except OSError:
                closed = True
        sock.sendall(inflight[5:])
        reply = sock.recv(4096).decode(errors="replace")
        sock.close()
        try:
            rc = srv.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            rc = None
        tap(closed and reply.startswith("HTTP/1.1 204"), "SIGTERM closes the listener but finishes an in-flight write",
            reply[:100])
        tap(rc == 0, "SIGTERM exits 0", rc)
        srv = Server(datadir, keyfile)
        st, got = export_rw1()
        st2, got2 = srv.export("rw2_temp", r1)
        st3, got3 = srv.export("inflight", r1)
        st4, body4 = get("/api/v1/workloads/" + wid2)
        tap(st4 == 200 and body4.get("name") == "rep-1", "the workload registry is rebuilt from the store at start",
            body4)
        tap(st == 200 and got == want1 and len(got2) == 1 and got2[0]["values"] == [61, 62.25]
            and got3 == [{"metric": {"__name__": "inflight"}, "values": [42], "timestamps": [now]}],
            "data persists across restart (the in-flight write included)", "%s %s %s" % (got, got2, got3))
        rc = srv.stop()
        srv = None
        tap(rc == 0, "second SIGTERM exits 0", rc)

        # ---- per-tenant series limit (429), kept across a restart
        ldir = os.path.join(tmp, "limitdata")
        lim = Server(ldir, keyfile, ["--max-series-per-tenant=2"])
        a, b_, c_ = ([("__name__", "lim"), ("s", x)] for x in "abc")
        st, _, _ = lim.write(rw1([(a, [(1.0, now)]), (b_, [(1.0, now)])]), w1)
        resp = lim.write(rw1([(a, [(2.0, now + 1000)]), (c_, [(1.0, now)])]), w1)
        check_error("series over --max-series-per-tenant -> 429, the rest stored", resp, 429,
                    'series {__name__="lim", s="c"}: tenant 1 is at its limit of 2 series',
                    "rejected: tenant_series_limit=1; samples written: 1")
        st2, _, _ = lim.write(rw1([(c_, [(1.0, now)])]), w2)
        tap(st == 204 and st2 == 204, "the limit is per tenant", "%s %s" % (st, st2))
        lim.stop()
        lim = Server(ldir, keyfile, ["--max-series-per-tenant=2"])
        st, _, _ = lim.write(rw1([(c_, [(1.0, now)])]), w1)
        st2, got = lim.export("lim", r1)
        tap(st == 429 and [g["values"] for g in got] == [[1, 2], [1]],
            "series counts survive a restart", "%s %s" % (st, got))
        lim.stop()

        # ---- TLS (a throwaway self-signed test certificate kept in the repo)
        import ssl
        tls = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls")
        port = free_port()
        p = subprocess.Popen([BIN, "--listen=127.0.0.1:%d" % port, "--data-dir=" + os.path.join(tmp, "tlsdata"),
                              "--tls-cert=" + os.path.join(tls, "test.crt"),
                              "--tls-key=" + os.path.join(tls, "test.key"), "--log-level=warn"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        body, deadline = None, time.time() + 10
        while time.time() < deadline and body is None:
            try:
                c = http.client.HTTPSConnection("127.0.0.1", port, timeout=5, context=ctx)
                c.request("GET", "/healthz")
                r = c.getresponse()
                body = (r.status, r.read())
                c.close()
            except OSError:
                time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=20)
        tap(body == (200, b"ok\n") and rc == 0, "HTTPS with --tls-cert/--tls-key", "%s rc=%s" % (body, rc))
    finally:
        if srv:
            srv.proc.kill()
            srv.proc.wait()
        if FAILS:
            for name in os.listdir(tmp):
                if name.endswith(".log"):
                    with open(os.path.join(tmp, name)) as f:
                        for line in f.read().splitlines()[-15:]:
                            print("# log: " + line)
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % TAPS)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
