#!/usr/bin/env python3
"""test_store_lifecycle.py: the running daemon's store over its life, through the real binary.

  - retention: with --retention=10m --block-duration=1m, a block whose maxt is exactly
    newest - retention is kept, and once a sample 1 ms newer arrives it disappears from the
    running server (export no longer returns it, strata_blocks goes down by one); the rule is
    tsdb/compact.c's `maxt < newest - retention` (tests/test_tsdb.c has the same boundary);
  - readiness: after a SIGKILL with millions of samples in the WAL, /readyz answers 503 while
    the WAL replays (at least once before 200), and a write then gets 503 with Retry-After;
  - shutdown: a request started on an open connection after SIGTERM gets 503 with Retry-After,
    the request in flight when SIGTERM came is finished, and the exit code is 0;
  - --max-connections: a connection past the limit is refused, served again once one closes;
  - native histograms and exemplars in remote-write 1.0 and 2.0: a 400 naming them, the float
    samples of the same request stored (read back with export).

Prints a TAP plan first, then one line per check.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, HERE)
from strata_client import BUILD, Server, metric_value, stop_process  # noqa: E402
import test_ingest_http as w  # noqa: E402  (the wire helpers: fld, f64, i64, varint, snappy)

PLAN = 16
FAILS = 0
MIN = 60000


def tap(ok, name, info=""):
    global FAILS
    print(("ok - " if ok else "not ok - ") + name)
    if not ok:
        FAILS += 1
        for line in str(info).splitlines()[:25]:
            print("#   " + line)
    sys.stdout.flush()
    return ok


def export(srv, sel):
    st, _, data = srv.req("GET", "/api/v1/export?match[]=" + urllib.parse.quote(sel))
    return st, ([json.loads(x) for x in data.decode().splitlines() if x.strip()] if st == 200 else data)


def metrics(srv):
    st, _, data = srv.req("GET", "/metrics")
    return data if st == 200 else b""


def write(srv, raw, v2=False):
    h = {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request" if v2
         else "application/x-protobuf", "Content-Encoding": "snappy",
         "X-Prometheus-Remote-Write-Version": "2.0.0" if v2 else "0.1.0"}
    return srv.req("POST", "/api/v1/write", w.snappy(raw), h)


def rw1(name, v, t):
    return w.rw1([([("__name__", name)], [(v, t)])])


def wait_for(fn, secs):
    deadline = time.time() + secs
    while True:
        got = fn()
        if got or time.time() > deadline:
            return got
        time.sleep(0.1)


# ---- retention ---------------------------------------------------------------------------

def retention(tmp):
    R = 10 * MIN
    srv = Server(os.path.join(tmp, "ret"), None, ["--retention=10m", "--block-duration=1m", "--wal-fsync=never"])
    try:
        base = int(time.time() * 1000) // MIN * MIN
        t_edge = base - 5 * MIN - 1           # the last millisecond of its 1-minute window
        t_keep = base - 2 * MIN - 30000
        sts = [write(srv, rw1("edge", 1.0, t_edge))[0], write(srv, rw1("keep", 2.0, t_keep))[0],
               write(srv, rw1("newest", 3.0, t_edge + R))[0]]   # newest - retention == t_edge
        tap(sts == [204, 204, 204], "retention: samples at newest - 10m, inside, and newest -> 204", sts)
        # the head spans 10 minutes, more than 1.5 block durations: the background cut makes
        # blocks of the edge and keep windows; retention runs right after each cut
        blocks = wait_for(lambda: (metric_value(metrics(srv), "strata_blocks") or 0) >= 2 and
                          metric_value(metrics(srv), "strata_blocks"), 20)
        time.sleep(2.5)  # two more background passes (one a second): the edge block stays
        st, got = export(srv, "edge")
        blocks2 = metric_value(metrics(srv), "strata_blocks")
        tap(blocks and st == 200 and [g["timestamps"] for g in got] == [[t_edge]] and blocks2 == blocks,
            "retention: a block with maxt == newest - retention is kept (the rule is maxt < newest - retention)",
            "blocks=%s then %s export=%s %s" % (blocks, blocks2, st, got))
        st = write(srv, rw1("newest", 4.0, t_edge + R + 1))[0]
        gone = wait_for(lambda: export(srv, "edge") == (200, []), 15)
        tap(st == 204 and gone, "retention: one ms newer data drops it from the running server (export empty)",
            "%s %s" % (st, export(srv, "edge")))
        blocks3 = metric_value(metrics(srv), "strata_blocks")
        st, got = export(srv, "keep")
        tap(blocks3 == blocks2 - 1 and st == 200 and [g["values"] for g in got] == [[2]],
            "retention: strata_blocks goes down by one; data inside the window is still there",
            "blocks %s -> %s, keep: %s %s" % (blocks2, blocks3, st, got))
    finally:
        srv.stop()


# ---- readiness during WAL replay ---------------------------------------------------------

def replay(tmp):
    data = os.path.join(tmp, "replay")
    flags = ["--retention=0", "--block-duration=24h", "--wal-fsync=never"]
    srv = Server(data, None, flags)
    # 16 h of 892 series at 15 s: about 3.4 M samples in the WAL, the head never cut
    r = subprocess.run([os.path.join(BUILD, "strata-load"), "--url=" + srv.url + "/api/v1/write",
                        "--backfill=16", "--scrape-interval=15s", "--concurrency=2", "--retry-for=30"],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    tap(r.returncode == 0 and " failed_batches=0 " in out, "readiness: strata-load backfilled 16 h into the WAL",
        out[-800:])
    srv.proc.kill()
    srv.proc.wait()
    # restart and poll at once; a write whenever /readyz says 503
    port = srv.port
    log = open(os.path.join(tmp, "replay2.log"), "w+")
    proc = subprocess.Popen([os.path.join(BUILD, "strata"), "--listen=127.0.0.1:%d" % port, "--data-dir=" + data,
                             "--auth=none", "--log-level=warn"] + flags, stdout=log, stderr=log)
    probe = Server.__new__(Server)
    probe.port, probe.conn = port, None
    seen, writes, deadline = [], [], time.time() + 120
    now = int(time.time() * 1000)
    while time.time() < deadline and proc.poll() is None:
        try:
            st = probe.req("GET", "/readyz")[0]
        except OSError:
            probe.conn = None
            time.sleep(0.005)
            continue
        seen.append(st)
        if st == 200:
            break
        if st == 503 and len(writes) < 5:
            wst, hdrs, body = write(probe, rw1("during_replay", 1.0, now))
            writes.append((wst, hdrs.get("retry-after"), body[:120]))
        time.sleep(0.005)
    tap(503 in seen and seen[-1] == 200 and seen.index(503) < seen.index(200),
        "readiness: /readyz answers 503 while the WAL replays, then 200",
        "readyz answers: %d x 503, then %s" % (seen.count(503), seen[-1:] or "none"))
    got503 = [x for x in writes if x[0] == 503]
    tap(got503 and all(x[0] in (503, 204) for x in writes) and all(x[1] == "5" for x in got503)
        and all(json.loads(x[2]).get("code") == 503 for x in got503),
        "readiness: a write during the replay -> 503 with Retry-After: 5", writes)
    st = write(probe, rw1("after_replay", 1.0, now))[0]
    tap(st == 204, "readiness: writes are taken once ready", st)
    if probe.conn:
        probe.conn.close()
    stop_process(proc, log.name, 60)


# ---- shutdown ----------------------------------------------------------------------------

def shutdown(tmp):
    srv = Server(os.path.join(tmp, "shut"), None, ["--wal-fsync=never"])
    now = int(time.time() * 1000)
    body = w.snappy(rw1("inflight", 42.0, now))
    # connection A: a write whose body is not all sent yet (in flight when SIGTERM arrives)
    a = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    a.sendall(("POST /api/v1/write HTTP/1.1\r\nHost: strata\r\nContent-Type: application/x-protobuf\r\n"
               "Content-Encoding: snappy\r\nContent-Length: %d\r\n\r\n" % len(body)).encode() + body[:3])
    # connection B: kept alive after one answered request
    st_b0 = srv.req("GET", "/healthz")[0]
    deadline = time.time() + 10
    while metric_value(metrics(srv), "strata_http_requests_in_flight") != 2 and time.time() < deadline:
        time.sleep(0.02)
    srv.proc.send_signal(signal.SIGTERM)
    closed, deadline = False, time.time() + 10
    while not closed and time.time() < deadline:       # the listener closes first
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=1).close()
            time.sleep(0.02)
        except OSError:
            closed = True
    st, hdrs, data = write(srv, rw1("late", 1.0, now))  # on B, still open
    try:
        code = json.loads(data).get("code")
    except ValueError:
        code = None
    tap(st_b0 == 200 and closed and st == 503 and hdrs.get("retry-after") == "5" and code == 503,
        "shutdown: a write started on an open connection after SIGTERM -> 503 with Retry-After: 5",
        "%s %s %s %s %s" % (st_b0, closed, st, hdrs, data[:200]))
    a.sendall(body[3:])
    resp = a.recv(4096)
    a.close()
    srv.conn.close()
    srv.conn = None
    rc = srv.stop()
    tap(resp.startswith(b"HTTP/1.1 204") and rc == 0,
        "shutdown: the write in flight at SIGTERM is answered 204, then exit 0", resp[:60])


# ---- --max-connections -------------------------------------------------------------------

def refused(sock):
    """True when the server closes a connection without answering a request on it."""
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: strata\r\n\r\n")
        return sock.recv(100) == b""
    except OSError:
        return True


def max_connections(tmp):
    srv = Server(os.path.join(tmp, "maxc"), None, ["--threads=1", "--max-connections=2"])
    try:
        srv.conn.close()
        srv.conn = None
        held = []
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: strata\r\n\r\n")
            held.append((s, s.recv(4096)))
        third = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        r3 = refused(third)
        third.close()
        tap(all(r.startswith(b"HTTP/1.1 200") for _, r in held) and r3,
            "--max-connections=2: a third connection is closed unanswered while two are open",
            [r[:40] for _, r in held])
        held[0][0].close()
        ok = False
        deadline = time.time() + 5
        while not ok and time.time() < deadline:
            time.sleep(0.1)
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            try:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: strata\r\nConnection: close\r\n\r\n")
                ok = s.recv(4096).startswith(b"HTTP/1.1 200")
            except OSError:
                pass
            s.close()
        tap(ok, "--max-connections=2: once one closes, a new connection is served")
        held[1][0].close()
    finally:
        srv.stop()


# ---- native histograms and exemplars -----------------------------------------------------

def histograms(tmp):
    srv = Server(os.path.join(tmp, "hist"), None, ["--wal-fsync=never"])
    try:
        now = int(time.time() * 1000)
        fld, f64, i64, varint = w.fld, w.f64, w.i64, w.varint
        hist = fld(1, 0, varint(3)) + fld(3, 1, f64(1.5)) + fld(15, 0, i64(now))   # count 3, sum 1.5
        # 1.0: TimeSeries {labels 1, samples 2, exemplars 3, histograms 4}
        lab = fld(1, 2, fld(1, 2, b"__name__") + fld(2, 2, b"h1"))
        ex1 = fld(1, 2, fld(1, 2, b"trace_id") + fld(2, 2, b"abc")) + fld(2, 1, f64(0.5)) + fld(3, 0, i64(now))
        ts = lab + fld(2, 2, fld(1, 1, f64(7.0)) + fld(2, 0, i64(now))) + fld(3, 2, ex1) + fld(4, 2, hist)
        st, _, data = write(srv, fld(1, 2, ts))
        body = w.err_body(data)
        tap(st == 400 and "native histograms are not supported" in body.get("details", "") + body.get("message", "")
            and "exemplar_unsupported=1" in body.get("details", "") + body.get("message", ""),
            "remote-write 1.0: a native histogram and an exemplar -> 400 naming both", "%s %s" % (st, body))
        st, got = export(srv, "h1")
        tap(st == 200 and got == [{"metric": {"__name__": "h1"}, "values": [7], "timestamps": [now]}],
            "remote-write 1.0: the float sample of that request is stored", "%s %s" % (st, got))
        # 2.0: symbols 4, TimeSeries 5 {labels_refs 1, samples 2, histograms 3, exemplars 4}
        syms = [b"", b"__name__", b"h2", b"trace_id", b"abc"]
        ex2 = fld(1, 2, varint(3) + varint(4)) + fld(2, 1, f64(0.5)) + fld(3, 0, i64(now))
        ts2 = fld(1, 2, varint(1) + varint(2)) + fld(2, 2, fld(1, 1, f64(8.0)) + fld(2, 0, i64(now))) \
            + fld(3, 2, hist) + fld(4, 2, ex2)
        st, hdrs, data = write(srv, b"".join(fld(4, 2, s) for s in syms) + fld(5, 2, ts2), v2=True)
        body = w.err_body(data)
        tap(st == 400 and "native histograms are not supported" in body.get("details", "") + body.get("message", "")
            and "exemplar_unsupported=1" in body.get("details", "") + body.get("message", ""),
            "remote-write 2.0: a native histogram and an exemplar -> 400 naming both",
            "%s %s %s" % (st, hdrs, body))
        st, got = export(srv, "h2")
        tap(st == 200 and got == [{"metric": {"__name__": "h2"}, "values": [8], "timestamps": [now]}],
            "remote-write 2.0: the float sample of that request is stored", "%s %s" % (st, got))
    finally:
        srv.stop()


def main():
    print("1..%d" % PLAN)
    tmp = tempfile.mkdtemp(prefix="strata-it-life-")
    try:
        retention(tmp)
        histograms(tmp)
        max_connections(tmp)
        shutdown(tmp)
        replay(tmp)
    finally:
        if FAILS:
            for name in sorted(os.listdir(tmp)):
                if name.endswith(".log"):
                    with open(os.path.join(tmp, name), errors="replace") as f:
                        for line in f.read().splitlines()[-15:]:
                            print("# %s: %s" % (name, line))
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
