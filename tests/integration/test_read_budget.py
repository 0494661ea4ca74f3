#!/usr/bin/env python3
"""test_read_budget.py: the per-request read budget (docs/api.md, "Read budget"), through the binary.

A daemon with --query-timeout=1ms (deliberately tiny: any read of the 20,000 series written
here takes longer) and one with --query-max-samples=3:
  - the pathological selector {__name__=~".+",job=~"(.{0,100}){120 times}"} is a 400 naming
    the regex cap, at once (it used to take seconds and ~60 MiB per request);
  - an export whose regex walks every job value answers 503 "query timeout" with
    Retry-After and details naming --query-timeout (the read failed before the first byte);
  - eight such exports in parallel all answer 503, and /healthz answers 200 while they run;
  - with --query-max-samples=3: an export of one 2-sample series is complete; one of a
    5-sample series is a 400 "query over budget" naming the flag (before the first byte);
    one of several 2-sample series sends the first series and ends with the error line
    {"error":"export failed: query over budget: ... (--query-max-samples)"}.
Prints TAP lines.
"""
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from strata_client import SECRET, Server, rw1, token  # noqa: E402

FAILS = 0
NSERIES = 20000


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


def export_path(sel, t0, t1):
    return "/api/v1/export?match[]=%s&start=%d&end=%d" % (urllib.parse.quote(sel), t0 // 1000, t1 // 1000 + 1)


def get_on_own_connection(port, path, tok):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", path, headers={"Authorization": "Bearer " + tok} if tok else {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def error_doc(body):
    try:
        return json.loads(body)
    except ValueError:
        return {}


def main():
    tmp = tempfile.mkdtemp(prefix="strata-budget-")
    secret = os.path.join(tmp, "secret")
    with open(secret, "wb") as fh:
        fh.write(SECRET)
    data = os.path.join(tmp, "data")
    srv = None
    try:
        srv = Server(data, secret, extra=["--query-timeout=1ms"])
        w1, r1 = token(1, "metrics:write"), token(1, "metrics:read")
        now = int(time.time() * 1000)
        t0 = now - 600000
        st = []
        for b in range(0, NSERIES, 2000):
            batch = [([("__name__", "budget_load"), ("job", "job-%05d" % i), ("inst", str(i % 7))],
                      [(float(i), t0)]) for i in range(b, b + 2000)]
            st.append(srv.write(rw1(batch), w1)[0])
        tap(all(s == 204 for s in st), "%d series written" % NSERIES, st)

        patho = '{__name__=~".+",job=~"%s"}' % (".{0,100}" * 120)
        began = time.time()
        s, _, body = srv.get(export_path(patho, t0, now), r1)
        doc = error_doc(body)
        tap(s == 400 and "bounded repetitions add up to more than 400" in doc.get("details", ""),
            "the pathological regex is a 400 naming the cap", "%s %s" % (s, body[:300]))
        print("# pathological selector answered in %.3f s" % (time.time() - began))

        costly = export_path('{__name__=~".+",job=~".*1.*2.*"}', t0, now)
        s, hdrs, body = srv.get(costly, r1)
        doc = error_doc(body)
        tap(s == 503 and doc.get("message") == "query timeout" and "--query-timeout" in doc.get("details", "")
            and hdrs.get("retry-after") == "5",
            "an export past --query-timeout is a 503 naming the flag, with Retry-After",
            "%s %s %s" % (s, hdrs, body[:300]))

        results, health = [], []

        def one():
            results.append(get_on_own_connection(srv.port, costly, r1)[0])

        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        health.append(get_on_own_connection(srv.port, "/healthz", None)[0])
        for t in threads:
            t.join()
        health.append(get_on_own_connection(srv.port, "/healthz", None)[0])
        tap(results == [503] * 8, "eight costly exports in parallel: each a 503", results)
        tap(health == [200, 200], "/healthz answers while they run and after", health)
        srv.stop()
        srv = None

        srv = Server(data, secret, extra=["--query-max-samples=3"])
        w = [([("__name__", "budget_small"), ("k", "a%d" % i)], [(1.0, t0 + 1000), (2.0, t0 + 2000)])
             for i in range(4)]
        w.append(([("__name__", "budget_big")], [(float(i), t0 + i * 1000) for i in range(1, 6)]))
        tap(srv.write(rw1(w), w1)[0] == 204, "small series written")

        s, _, body = srv.get(export_path('{__name__="budget_small",k="a0"}', t0, now), r1)
        lines = [json.loads(x) for x in body.decode().splitlines() if x]
        tap(s == 200 and len(lines) == 1 and lines[0].get("values") == [1, 2],
            "an export within --query-max-samples is complete", "%s %s" % (s, body[:300]))

        s, _, body = srv.get(export_path('{__name__="budget_big"}', t0, now), r1)
        doc = error_doc(body)
        tap(s == 400 and doc.get("message") == "query over budget"
            and "more than 3 samples read (--query-max-samples)" in doc.get("details", ""),
            "over --query-max-samples before the first byte: a 400 naming the flag", "%s %s" % (s, body[:300]))

        s, _, body = srv.get(export_path('{__name__="budget_small"}', t0, now), r1)
        lines = [json.loads(x) for x in body.decode().splitlines() if x]
        tap(s == 200 and len(lines) == 2 and lines[0].get("metric", {}).get("k") == "a0"
            and lines[1] == {"error": "export failed: query over budget: more than 3 samples read "
                                      "(--query-max-samples)"},
            "over --query-max-samples mid-stream: the series so far, then the error line",
            "%s %s" % (s, body[:400]))
    except Exception as e:  # noqa: BLE001
        tap(False, "unexpected exception", repr(e) + ("\n" + srv.tail() if srv else ""))
    finally:
        if srv:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % TAPS)
    sys.exit(1 if FAILS else 0)


if __name__ == "__main__":
    main()
