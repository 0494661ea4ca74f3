#!/usr/bin/env python3
"""test_hardening_http.py: HTTP framing and auth configuration, against the real binary.

Framing (docs/api.md, "Request framing"): two different Content-Length headers, or
Transfer-Encoding together with Content-Length, are a 400 with a JSON error; a declared
Content-Length over the body limit is a 413 sent at once, before any body byte, and the
connection is closed.  Requests are written by hand over a socket, since http.client
refuses to send such framing.

Auth configuration (docs/api.md, "Tenants and auth"): --jwt-public-key must name a PEM
public key or the server does not start; a token without exp is a 401 unless
--jwt-require-exp=false (or --no-jwt-require-exp).

Slow clients (docs/api.md, "Slow clients"): more slow connections from one address than
--max-connections-per-ip (and than --max-connections) leave /healthz and /readyz answering
another address at once; a connection that sends a byte every half second without ever
completing its headers is closed after --header-timeout, a body trickling in below
--body-min-rate after its grace; a kept-alive connection idle longer than the header timeout
is still served.

Held requests (docs/api.md, "Threads"): with --threads=1 and a gateway whose remote engine
accepts connections and never answers, two export requests are held inside the server; on
other connections /healthz, /readyz and a data endpoint (the workloads list) must answer while
both are still in flight (ordering asserted: every probe's answer comes before either held
answer, which only comes once the engine lets go).  With libmicrohttpd's thread pool they
waited behind the held request on its worker.  Prints TAP lines.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import BUILD, SECRET, Server, free_port, metric_value, rw1, snappy, token  # noqa: E402

BIN = os.path.join(BUILD, "strata")
LIMIT = 1 << 20  # --max-request-bytes for this run
FAILS = 0
TAPS = 0  # checks run: the trailing TAP plan "1..TAPS" (tests/run_tests.sh compares)


def tap(ok, name, info=""):
    global FAILS, TAPS
    TAPS += 1
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        for line in str(info).splitlines()[:20]:
            print("#   " + line)
    sys.stdout.flush()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(claims, secret=SECRET):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest()
    return head + "." + body + "." + b64url(sig)


def raw(port, head, body=b"", timeout=5.0):
    """Sends head (CRLF-joined lines) and body; returns (status, headers, body, closed, seconds).
    status None = no answer within timeout.  closed: the server closed the connection after it."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t0 = time.time()
    try:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        s.close()
        return None, {}, b"", False, time.time() - t0
    secs = time.time() - t0
    if b"\r\n\r\n" not in buf:
        s.close()
        return None, {}, buf, True, secs
    hdr, _, rest = buf.partition(b"\r\n\r\n")
    lines = hdr.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    n = int(hdrs.get("content-length", "0"))
    closed = False
    try:
        while len(rest) < n:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            rest += chunk
        if not closed:
            s.settimeout(2.0)
            closed = s.recv(1) == b""
    except socket.timeout:
        closed = False
    except ConnectionResetError:
        closed = True
    s.close()
    return status, hdrs, rest[:n], closed, secs


def err(body):
    try:
        return json.loads(body)
    except ValueError:
        return {}


def write_head(tok, *extra):
    return ["POST /api/v1/write HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/x-protobuf",
            "Content-Encoding: snappy", "Authorization: Bearer " + tok] + list(extra)


def check_json_error(name, got, status, details_has):
    st, hdrs, body, _, _ = got
    b = err(body)
    ok = (st == status and hdrs.get("content-type") == "application/json" and b.get("code") == status
          and details_has in (b.get("message", "") + " " + b.get("details", "")))
    tap(ok, name, "status %s headers %s body %r" % (st, hdrs, body[:300]))


def framing(tmp, secret):
    srv = Server(os.path.join(tmp, "framing"), secret, extra=["--max-request-bytes=%d" % LIMIT])
    try:
        w = token(1, "metrics:write")
        body = snappy(rw1([([("__name__", "framing_ok")], [(1.0, int(time.time() * 1000))])]))
        got = raw(srv.port, write_head(w, "Content-Length: %d" % len(body)), body)
        tap(got[0] == 204, "well-framed write over a raw socket -> 204", got[:3])
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        got = raw(srv.port, write_head(w, "Transfer-Encoding: chunked"), chunked)
        tap(got[0] == 204, "chunked write without Content-Length -> 204", got[:3])

        got = raw(srv.port, write_head(w, "Content-Length: %d" % len(body), "Content-Length: %d" % (len(body) + 4)),
                  body + b"\0\0\0\0")
        check_json_error("two different Content-Length headers -> 400", got, 400, "Content-Length")
        got = raw(srv.port, write_head(w, "Content-Length: %d" % len(body), "Transfer-Encoding: chunked"), chunked)
        check_json_error("Transfer-Encoding with Content-Length -> 400", got, 400, "Transfer-Encoding")
        got = raw(srv.port, write_head(w, "Transfer-Encoding: chunked", "Content-Length: %d" % len(body)), chunked)
        check_json_error("Content-Length with Transfer-Encoding (other order) -> 400", got, 400,
                         "Transfer-Encoding")
        got = raw(srv.port, write_head(w, "Transfer-Encoding: gzip, chunked"), chunked)
        tap(got[0] in (400, 501) and err(got[2]).get("code") == got[0],
            "a Transfer-Encoding other than chunked is refused with a JSON error", got[:3])

        big = 1073741824
        got = raw(srv.port, write_head(w, "Content-Length: %d" % big))
        check_json_error("Content-Length: 1 GiB, no body sent -> 413 at once", got, 413, str(LIMIT))
        tap(got[0] == 413 and got[3], "... and the connection is closed", got[:4])
        got = raw(srv.port, write_head(w, "Content-Length: %d" % big, "Expect: 100-continue"))
        tap(got[0] == 413, "Content-Length: 1 GiB with Expect: 100-continue -> 413, no 100 Continue", got[:3])
        got = raw(srv.port, write_head(w, "Content-Length: %d" % (LIMIT // 2)), b"\0" * 1000)
        tap(got[0] is None, "a body under the limit is still waited for (no early answer)", got[:3])

        # a chunked body declares no length: cut as it arrives, still a 413
        junk = os.urandom(LIMIT * 2)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(junk[i:i + 65536]), junk[i:i + 65536])
                          for i in range(0, len(junk), 65536)) + b"0\r\n\r\n"
        got = raw(srv.port, write_head(w, "Transfer-Encoding: chunked"), chunks, timeout=30)
        check_json_error("chunked body over the limit -> 413 once it is read", got, 413,
                         "the body is over the limit of %d bytes" % LIMIT)
        st, hdrs, data = srv.req("GET", "/metrics", headers={"Authorization": "Bearer " + w})
        refused = metric_value(data, "strata_write_requests_refused_total")
        tap(st == 200 and refused is not None and refused >= 6,
            "framing refusals of remote writes count in strata_write_requests_refused_total", refused)

        st, _, _ = srv.write(rw1([([("__name__", "after")], [(1.0, int(time.time() * 1000))])]), w)
        tap(st == 204, "the server still serves writes afterwards", st)
    finally:
        srv.stop()


def start_fails(tmp, args):
    """Runs strata with args; returns (exit code or None if it kept running, output)."""
    p = subprocess.Popen([BIN, "--listen=127.0.0.1:0", "--data-dir=" + os.path.join(tmp, "nostart")] + args,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        out, _ = p.communicate(timeout=10)
        return p.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return None, out.decode(errors="replace")


def auth_config(tmp, secret):
    notpem = os.path.join(tmp, "notpem")
    with open(notpem, "w") as f:
        f.write("this is not a PEM public key\n")
    rc, out = start_fails(tmp, ["--auth=jwt", "--jwt-public-key=" + notpem])
    tap(rc not in (None, 0) and "PEM" in out and notpem in out,
        "--jwt-public-key naming a non-PEM file: refused at start, non-zero exit", "rc %s: %s" % (rc, out))
    cert = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls", "test.crt")
    if os.path.exists(cert):
        rc, out = start_fails(tmp, ["--auth=jwt", "--jwt-public-key=" + cert])
        tap(rc not in (None, 0) and "PEM" in out, "--jwt-public-key naming a certificate, not a key: refused",
            "rc %s: %s" % (rc, out))
    rc, out = start_fails(tmp, ["--jwt-require-exp=maybe"])
    tap(rc == 2 and "jwt-require-exp" in out, "--jwt-require-exp=maybe is a usage error", "rc %s: %s" % (rc, out))
    h = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, timeout=10).stdout.decode()
    tap("--jwt-require-exp" in h and "PEM" in h, "--help documents --jwt-require-exp", h[-600:])

    good = rw1([([("__name__", "noexp")], [(1.0, int(time.time() * 1000))])])
    noexp = jwt({"sub": "t", "tenant_id": 1, "scope": "metrics:write"})
    srv = Server(os.path.join(tmp, "exp-default"), secret)
    try:
        st, hdrs, body = srv.write(good, noexp)
        b = err(body)
        tap(st == 401 and "exp" in b.get("details", "") and hdrs.get("www-authenticate") == "Bearer",
            "token without exp -> 401 naming exp (default --jwt-require-exp)", "%s %s" % (st, body))
        st, _, _ = srv.write(good, token(1, "metrics:write"))
        tap(st == 204, "token with exp still accepted", st)
    finally:
        srv.stop()
    for flag in ("--jwt-require-exp=false", "--no-jwt-require-exp"):
        srv = Server(os.path.join(tmp, "exp-off" + flag), secret, extra=[flag])
        try:
            st, _, body = srv.write(good, noexp)
            tap(st == 204, "token without exp accepted with " + flag, "%s %s" % (st, body))
            st, _, body = srv.write(good, jwt({"tenant_id": 1, "scope": "metrics:write", "exp": int(time.time()) - 5}))
            tap(st == 401, "an expired token is still refused with " + flag, "%s %s" % (st, body))
        finally:
            srv.stop()


# ---- slow clients (docs/api.md, "Slow clients") --------------------------------------------

SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # headers never completed


class Drip:
    """Sockets from 127.0.0.1 that each sent a partial request and then send one byte every
    half second (a slowloris), with the time the server closed each (None = still open)."""

    def __init__(self, port, n, first=SLOW_HEAD):
        self.socks, self.closed_at, self.t0 = [], [], time.time()
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s.sendall(first)
            except OSError:
                pass
            s.setblocking(False)
            self.socks.append(s)
            self.closed_at.append(None)
        self.stop = threading.Event()
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()

    def poll(self):
        for i, s in enumerate(self.socks):
            if self.closed_at[i] is not None:
                continue
            try:
                if s.recv(4096) == b"":
                    self.closed_at[i] = time.time() - self.t0
            except BlockingIOError:
                pass
            except OSError:
                self.closed_at[i] = time.time() - self.t0

    def run(self):
        while not self.stop.wait(0.5):
            self.poll()
            for i, s in enumerate(self.socks):
                if self.closed_at[i] is None:
                    try:
                        s.send(b"a")
                    except BlockingIOError:
                        pass
                    except OSError:
                        self.closed_at[i] = time.time() - self.t0

    def nclosed(self):
        return sum(1 for c in self.closed_at if c is not None)

    def wait_closed(self, n, timeout):
        deadline = time.time() + timeout
        while self.nclosed() < n and time.time() < deadline:
            time.sleep(0.1)
        return self.nclosed() >= n

    def close(self):
        self.stop.set()
        self.th.join()
        for s in self.socks:
            s.close()


def get_from(port, path, source):
    """GET path on a new connection from source address; (status, body, seconds), status None on failure."""
    t0 = time.time()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
        s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return int(buf.split(b" ", 2)[1]), buf.partition(b"\r\n\r\n")[2], time.time() - t0
    except (OSError, IndexError, ValueError) as e:
        return None, repr(e).encode(), time.time() - t0


def slow_clients(tmp, secret):
    h = subprocess.run([BIN, "--help"], stdout=subprocess.PIPE, timeout=10).stdout.decode()
    tap(all(f in h for f in ("--header-timeout", "--body-min-rate", "--max-connections-per-ip")),
        "--help documents --header-timeout, --body-min-rate, --max-connections-per-ip", h[-900:])
    for bad in ("--header-timeout=50ms", "--header-timeout=soon", "--body-min-rate=-1",
                "--max-connections-per-ip=many"):
        rc, out = start_fails(tmp, [bad])
        tap(rc == 2 and bad.split("=")[0] in out, bad + " is a usage error", "rc %s: %s" % (rc, out))

    # More slow connections from one address than the per-address limit, and more than the
    # server takes at all (--max-connections=24): the address is capped, everyone else served.
    # A long header deadline here, so only the per-address limit closes anything.
    srv = Server(os.path.join(tmp, "perip"), secret,
                 extra=["--threads=1", "--max-connections=24", "--max-connections-per-ip=8",
                        "--header-timeout=60s"])
    drip = None
    try:
        srv.conn.close()  # the readiness probe's kept-alive connection, from 127.0.0.1 too
        srv.conn = None
        time.sleep(0.3)
        drip = Drip(srv.port, 30)
        ok = drip.wait_closed(22, 15)
        time.sleep(1.0)
        drip.poll()
        still = len(drip.socks) - drip.nclosed()
        tap(ok and 1 <= still <= 8,
            "30 slow connections from one address, --max-connections-per-ip=8: the ones over the limit "
            "are closed, at most 8 kept", "closed %d, still open %d" % (drip.nclosed(), still))
        for path, want in (("/healthz", b"ok\n"), ("/readyz", b"ready\n")):
            st, body, secs = get_from(srv.port, path, "127.0.0.2")
            tap(st == 200 and body == want and secs < 5,
                "%s answers at once from another address while they drip" % path,
                "status %s body %r after %.2fs" % (st, body[:200], secs))
    finally:
        if drip:
            drip.close()
        srv.stop()

    # The header deadline: a connection that keeps sending a byte every half second (never idle)
    # is closed once --header-timeout has passed without complete headers.
    srv = Server(os.path.join(tmp, "deadline"), secret, extra=["--header-timeout=2s", "--http-timeout=60s"])
    drip = None
    try:
        drip = Drip(srv.port, 1)
        ok = drip.wait_closed(1, 20)
        at = drip.closed_at[0]
        tap(ok and at >= 1.0, "a slow-header connection sending a byte every 0.5s is closed after "
            "--header-timeout=2s (idle timeout 60s)", "closed at %s s" % at)
        drip.close()
        # a body trickling below --body-min-rate (64KiB/s by default after the 2s grace)
        w = token(1, "metrics:write")
        head = "\r\n".join(write_head(w, "Content-Length: 1000000")).encode() + b"\r\n\r\n"
        drip = Drip(srv.port, 1, first=head + b"\0")
        ok = drip.wait_closed(1, 20)
        at = drip.closed_at[0]
        tap(ok and at >= 1.0, "a 1 MB body sent a byte every 0.5s is closed after the grace (--body-min-rate)",
            "closed at %s s" % at)
        drip.close()
        drip = None
        # a kept-alive connection idle longer than the header timeout still serves its next request
        c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        c.request("GET", "/healthz")
        r1 = c.getresponse().read()
        time.sleep(3.0)
        try:
            c.request("GET", "/healthz")
            r2 = c.getresponse().read()
        except (http.client.HTTPException, OSError) as e:
            r2 = repr(e)
        c.close()
        tap(r1 == b"ok\n" and r2 == b"ok\n",
            "a kept-alive connection idle 3s (> --header-timeout) between requests is still served", r2)
        st, _, data = srv.req("GET", "/metrics", headers={"Authorization": "Bearer " + w})
        lines = {ln.split()[0]: float(ln.split()[-1]) for ln in data.decode().splitlines()
                 if ln.startswith("strata_http_slow_connections_closed_total")}
        tap(st == 200 and lines.get('strata_http_slow_connections_closed_total{phase="headers"}', 0) >= 1
            and lines.get('strata_http_slow_connections_closed_total{phase="body"}', 0) >= 1,
            "strata_http_slow_connections_closed_total counts both", lines)
    finally:
        if drip:
            drip.close()
        srv.stop()


class StalledEngine:
    """A remote engine that hangs: a listener on 127.0.0.1 that accepts every connection and
    reads what it is sent, never answering, until release() closes them all."""

    def __init__(self, port):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", port))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        self.cv = threading.Condition()
        self.socks = []
        self.got = b""  # every byte received, on any connection
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            with self.cv:
                if self.closed:
                    s.close()
                    return
                self.socks.append(s)
            threading.Thread(target=self._read, args=(s,), daemon=True).start()

    def _read(self, s):
        while True:
            try:
                b = s.recv(65536)
            except OSError:
                return
            if not b:
                return
            with self.cv:
                self.got += b
                self.cv.notify_all()

    def wait_for(self, needle, count, timeout):
        """True once needle has arrived count times (a bound only, so a broken server cannot hang)."""
        with self.cv:
            return self.cv.wait_for(lambda: self.got.count(needle) >= count, timeout)

    def release(self):
        with self.cv:
            self.closed = True
            socks, self.socks = self.socks, []
        try:
            self.ls.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.ls.close()
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def held_requests(tmp, secret):
    # The gateway starts while nothing listens on the engine's port (it is ready at once: the
    # registry rebuild fails fast and is retried by --registry-refresh), then the engine comes up.
    eport = free_port()
    engine = None
    srv = None
    held = []
    events, ev_mu = [], threading.Lock()

    def record(what):
        with ev_mu:
            events.append(what)

    def read_reply(name, s, out):
        buf = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if not out.get("first"):
                    out["first"] = True
                    record(name)
        except OSError as e:
            out["err"] = repr(e)
        out["reply"] = buf

    try:
        srv = Server(os.path.join(tmp, "held"), secret,
                     extra=["--threads=1", "--remote-query-url=http://127.0.0.1:%d" % eport,
                            "--remote-query-flavor=victoriametrics", "--query-timeout=10m",
                            "--registry-refresh=1h"])
        engine = StalledEngine(eport)
        srv.conn.close()  # the readiness probe's kept-alive connection
        srv.conn = None
        r = token(1, "metrics:read")
        # two export requests the engine will hold, each on its own kept-alive connection
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=300)
            s.sendall(("GET /api/v1/export?match[]=held_metric_%d HTTP/1.1\r\nHost: strata\r\n"
                       "Authorization: Bearer %s\r\nConnection: close\r\n\r\n" % (i, r)).encode())
            out = {}
            t = threading.Thread(target=read_reply, args=("held %d" % i, s, out), daemon=True)
            t.start()
            held.append((s, t, out))
            tap(engine.wait_for(b"held_metric_%d" % i, 1, 20),
                "held request %d reached the stalled engine" % i, engine.got[-300:])
        # the probes, each on a new connection, while both are held
        probes = [("/healthz", None, 200, b"ok\n"), ("/readyz", None, 200, b"ready\n"),
                  ("/api/v1/workloads?limit=1", r, 200, None)]
        pouts = []
        for path, tok, _, _ in probes:
            out = {}
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=300)
            s.sendall(("GET %s HTTP/1.1\r\nHost: strata\r\n%sConnection: close\r\n\r\n"
                       % (path, "Authorization: Bearer %s\r\n" % tok if tok else "")).encode())
            t = threading.Thread(target=read_reply, args=(path, s, out), daemon=True)
            t.start()
            pouts.append((s, t, out))
        # wait for the probes (a bound, not a check: a server that serialises them answers
        # them only after the engine lets go below, and the ordering check fails)
        for _, t, _ in pouts:
            t.join(20)
        engine.release()
        for s, t, _ in held + pouts:
            t.join(60)
            s.close()
        order = list(events)
        for (path, _, want_st, want_body), (_, _, out) in zip(probes, pouts):
            rep = out.get("reply", b"")
            st = rep.split(b" ", 2)[1] if rep.startswith(b"HTTP/1.1 ") else b""
            body = rep.partition(b"\r\n\r\n")[2]
            before = path in order and all("held %d" % i in order and order.index(path) < order.index("held %d" % i)
                                           for i in range(2))
            tap(st == b"%d" % want_st and (want_body is None or body == want_body) and before,
                "%s answers while two requests are held (--threads=1)" % path.split("?")[0],
                "status %r body %r order %s" % (st, body[:200], order))
        for i, (_, _, out) in enumerate(held):
            rep = out.get("reply", b"")
            tap(rep.startswith(b"HTTP/1.1 503") and b"remote engine http://127.0.0.1:%d" % engine.port in rep,
                "held request %d answers 503 naming the engine once it lets go" % i, rep[:300])
    finally:
        if engine:
            engine.release()
        for s, _, _ in held:
            s.close()
        if srv:
            srv.stop()


def deep_queries(tmp, secret):
    """Every connection has its own thread with a stack of its own size (docs/api.md, "Threads"):
    the deepest expressions the PromQL parser accepts (999 levels) are evaluated on it."""
    srv = Server(os.path.join(tmp, "deep"), secret, extra=["--threads=1"])
    try:
        r = token(1, "metrics:read")
        D = 999
        for name, q, want in (
                ("999 nested sum()", "sum(" * D + "up" + ")" * D, []),
                ("a chain of 999 additions", "+".join(["vector(1)"] * D), [{"metric": {}, "value": [1700000000, "999"]}]),
                ("999 nested parentheses", "(" * D + "1" + ")" * D, [1700000000, "1"])):
            st, _, body = srv.req("GET", "/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": "1700000000"}),
                                  headers={"Authorization": "Bearer " + r})
            try:
                got = json.loads(body)["data"]["result"]
            except (ValueError, KeyError, TypeError):
                got = body[:200]
            tap(st == 200 and got == want and srv.proc.poll() is None,
                "%s is evaluated on a connection thread" % name, (st, got))
    finally:
        srv.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="strata-hardening-")
    try:
        secret = os.path.join(tmp, "secret")
        with open(secret, "wb") as f:
            f.write(SECRET + b"\n")
        framing(tmp, secret)
        auth_config(tmp, secret)
        slow_clients(tmp, secret)
        held_requests(tmp, secret)
        deep_queries(tmp, secret)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("# %d failed" % FAILS)
    print("1..%d" % TAPS)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
