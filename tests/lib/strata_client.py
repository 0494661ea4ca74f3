"""strata_client.py: a small client for driving the real strata binary in tests and benchmarks.

Standard library only: remote-write 1.0 bodies encoded by hand (protobuf wire format, snappy
block format with literals only), HS256 JWTs with hmac, a Server that starts build/strata on a
free loopback port in a temp data dir and waits for /readyz, HTTP helpers, the child-process
helpers of the scripts that start peers themselves (spawn, wait_http, kill_all), and the JSON
answer helpers of the scripts that compare two servers' answers (json_get, json_diff, export_all,
report_csv).

    from strata_client import Server, token, rw1, STALE
    srv = Server(datadir, secret_file)                # --auth=jwt
    srv.write(rw1([([("__name__", "up")], [(1.0, ts_ms)])]), token(1, "metrics:write"))
    st, hdrs, body = srv.get("/api/v1/workloads", token(1, "metrics:read"))
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

BUILD = os.environ.get("STRATA_BUILD", "build")
SECRET = b"workloads-test-secret"
# Prometheus' stale marker, bit-exact (a NaN with this payload).
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _fld(num, wt, payload):
    key = _varint(num << 3 | wt)
    return key + _varint(len(payload)) + payload if wt == 2 else key + payload


def rw1(series):
    """WriteRequest bytes; series = [(labels [(name, value)], samples [(value, ts_ms)])]."""
    parts = []
    for labels, samples in series:
        ts = b"".join(_fld(1, 2, _fld(1, 2, n.encode()) + _fld(2, 2, v.encode())) for n, v in labels)
        ts += b"".join(_fld(2, 2, _fld(1, 1, struct.pack("<d", v)) + _fld(2, 0, _varint(t & 0xFFFFFFFFFFFFFFFF)))
                       for v, t in samples)
        parts.append(_fld(1, 2, ts))
    return b"".join(parts)


def snappy(data):
    """A valid snappy block: the length, then literal chunks of up to 60 bytes."""
    out = [_varint(len(data))]
    for i in range(0, len(data), 60):
        chunk = data[i:i + 60]
        out.append(bytes([(len(chunk) - 1) << 2]) + chunk)
    return b"".join(out)


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(tenant, scope, secret=SECRET, sub="tester"):
    head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64url(json.dumps({"sub": sub, "tenant_id": tenant, "scope": scope,
                               "exp": int(time.time()) + 3600}).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + _b64url(sig)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def http_call(url, data=None, headers=None, timeout=10):
    """(status, body) of one request (a POST when data is given); (0, b"") when nothing answers."""
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return 0, b""


def spawn(name, argv, tmp, procs):
    """Starts argv with its output in tmp/name.log and appends it to procs (see kill_all)."""
    log = open(os.path.join(tmp, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    procs.append(p)
    return p


def wait_http(url, proc, what, timeout=30, probe_timeout=10, step=0.1):
    """Polls url until it answers 200; raises RuntimeError when proc exits first or after timeout s."""
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s before it was ready" % (what, proc.returncode))
        if http_call(url, timeout=probe_timeout)[0] == 200:
            return
        time.sleep(step)
    raise RuntimeError("%s not ready after %d s" % (what, timeout))


def kill_all(procs):
    """SIGKILLs every process of procs still running and reaps it (10 s each at most)."""
    for p in procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass


def json_get(srv, path, tok=None):
    """(status, parsed JSON answer or the raw body) of srv.get(path); a telemetry answer's
    timestamp (the wall clock of the answer) is dropped so two answers compare."""
    st, _, body = srv.get(path, tok)
    try:
        o = json.loads(body)
    except ValueError:
        return st, body
    if isinstance(o, dict) and "telemetry" in path:
        o.pop("timestamp", None)
    return st, o


def json_diff(a, b, at="", limit=4):
    """The first few (path, a's value, b's value) where two JSON values differ; [] when equal."""
    if type(a) is not type(b):
        return [(at, a, b)]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += json_diff(a.get(k), b.get(k), at + "." + k, limit)
        return out[:limit]
    if isinstance(a, list):
        if len(a) != len(b):
            return [(at + ".len", len(a), len(b))]
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out += json_diff(x, y, "%s[%d]" % (at, i), limit)
        return out[:limit]
    return [] if a == b else [(at, a, b)]


def value_bits(v):
    """A sample value's float64 bits as hex, so NaNs and -0 compare exactly."""
    return struct.pack("<d", float(v)).hex()


def export_all(srv, tok=None):
    """(200, {sorted label pairs: [(timestamp, value_bits)]}) of every series srv's
    /api/v1/export holds, or (status, the body's start) when it does not answer 200."""
    st, _, body = srv.get("/api/v1/export?" + urllib.parse.urlencode({"match[]": '{__name__=~".+"}'}), tok)
    if st != 200:
        return st, body[:300]
    got = {}
    for line in body.decode().splitlines():
        if line.strip():
            o = json.loads(line)
            got[tuple(sorted(o["metric"].items()))] = [(t, value_bits(v))
                                                       for t, v in zip(o["timestamps"], o["values"])]
    return 200, got


def report_csv(srv, body):
    """(True, CSV text) of a consumption report (POST body) once Ready, or (False, what happened)."""
    st, _, data = srv.req("POST", "/api/v1/org-unit/reports", json.dumps(body).encode(),
                          {"Content-Type": "application/json"})
    if st != 202:
        return False, (st, data[:300])
    rid = json.loads(data)["id"]
    end = time.time() + 60
    r = {}
    while time.time() < end:
        st, r = json_get(srv, "/api/v1/org-unit/reports/" + rid)
        if st == 200 and r.get("status") in ("Ready", "Failed"):
            break
        time.sleep(0.1)
    if r.get("status") != "Ready":
        return False, r
    st, _, data = srv.get("/api/v1/org-unit/reports/%s/file" % rid)
    return st == 200, data.decode(errors="replace")


def log_tails(tmp, n=1500):
    """The last n characters of every *.log in tmp, as TAP comment lines."""
    out = []
    for name in sorted(os.listdir(tmp)) if os.path.isdir(tmp) else []:
        if name.endswith(".log"):
            with open(os.path.join(tmp, name), errors="replace") as f:
                tail = f.read()[-n:]
            out.append("# --- %s ---\n# %s" % (name, tail.replace("\n", "\n# ")))
    return "\n".join(out)


def iso(ms):
    """RFC 3339 UTC as strata writes it: whole seconds, else milliseconds."""
    s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000))
    return s + ("Z" if ms % 1000 == 0 else ".%03dZ" % (ms % 1000))


class Server:
    """build/strata on a free port; auth=jwt with secret_file unless secret_file is None."""

    def __init__(self, datadir, secret_file=None, extra=(), build=None):
        build = build or BUILD
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.logpath = datadir.rstrip("/") + ".log"
        self.log = open(self.logpath, "w+")
        auth = ["--auth=jwt", "--jwt-secret-file=" + secret_file] if secret_file else ["--auth=none"]
        self.proc = subprocess.Popen(
            [os.path.join(build, "strata"), "--listen=127.0.0.1:%d" % self.port, "--data-dir=" + datadir,
             "--log-level=warn"] + auth + list(extra), stdout=self.log, stderr=self.log)
        self.conn = None
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.req("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                self.conn = None
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("strata did not become ready; log: " + self.tail())

    def tail(self, n=15):
        with open(self.logpath) as f:
            return "\n".join(f.read().splitlines()[-n:])

    def req(self, method, path, body=None, headers=None):
        """(status, {lowercased header: value}, body bytes) over a kept-alive connection."""
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, data
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise

    def get(self, path, tok=None, accept=None):
        h = {}
        if tok:
            h["Authorization"] = "Bearer " + tok
        if accept:
            h["Accept"] = accept
        return self.req("GET", path, headers=h)

    def get_json(self, path, tok=None):
        st, hdrs, data = self.get(path, tok)
        try:
            return st, json.loads(data)
        except ValueError:
            return st, data

    def write(self, raw, tok=None):
        h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
             "X-Prometheus-Remote-Write-Version": "0.1.0"}
        if tok:
            h["Authorization"] = "Bearer " + tok
        return self.req("POST", "/api/v1/write", snappy(raw), h)

    def stop(self):
        """SIGTERM and wait: returns 0, or raises StrataExitError (a non-zero exit, a sanitizer
        report at shutdown, or no exit within 30 s), so a test that stops a server fails then."""
        if self.conn:
            self.conn.close()
            self.conn = None
        return stop_process(self.proc, self.logpath, 30)


class StrataExitError(AssertionError):
    pass


def stop_process(proc, logpath=None, timeout=30):
    """SIGTERM proc and assert it exits 0 within timeout (else SIGKILL and raise StrataExitError
    with the log's tail).  Returns 0."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=timeout)
        why = None if rc == 0 else "exited %d on SIGTERM" % rc
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc, why = -999, "did not exit within %d s of SIGTERM (killed)" % timeout
    if why:
        tail = ""
        if logpath:
            try:
                with open(logpath, errors="replace") as f:
                    tail = "\n".join(f.read().splitlines()[-30:])
            except OSError:
                pass
        raise StrataExitError("strata %s; log tail:\n%s" % (why, tail))
    return rc


def metric_value(text, series):
    """The value of the /metrics line for series exactly (name and labels as printed, e.g.
    'strata_blocks' or 'x_total{reason="a"}'), as a float; None when no line is that series.
    Whole lines only: 'strata_blocks' never matches 'strata_blocks_bytes 7'."""
    if isinstance(text, bytes):
        text = text.decode()
    for line in text.splitlines():
        name, sep, value = line.rpartition(" ")
        if sep and name == series:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def has_metric_line(text, line):
    """True when /metrics text has exactly this line (not a line that merely contains it)."""
    if isinstance(text, bytes):
        text = text.decode()
    return line in text.splitlines()
