#!/usr/bin/env python3
"""test_prom_api.py: strata's Prometheus HTTP query API against the real Prometheus 2.42.

The same remote-written data (gauges and counters with labels, one label value full of
characters JSON escapes) goes to strata as tenant 1 and to a real Prometheus 2.42 started with
--web.enable-remote-write-receiver; tenant 2 writes a series of its own to strata only.  Then the
same requests go to both and the bodies must be equal:
  - byte for byte where Prometheus' order is fixed (series, labels, label values, errors,
    exemplars, metadata), GET and form-encoded POST;
  - as JSON with the result sorted by metric for queries (`1+1`, selectors, `sum by (job)`),
    instant and range;
  - the error bodies and statuses of bad parameters and of match[] that is no selector.
Grafana's save-and-test (POST query 1+1, GET buildinfo) must succeed; tenant 2 must see nothing
of tenant 1 (series, labels, label values, query) and tenant 1 nothing of tenant 2; auth answers
401/403 as every strata read route.  Query comparisons are skipped, one by one, only when strata
answers 501 (the evaluator not built in).  Prints TAP lines, the plan first.
"""
import json
import os
import shutil
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import promql_data  # noqa: E402
from strata_client import Server, _fld, _varint, rw1, snappy, token  # noqa: E402

tmp = tempfile.mkdtemp(prefix="strata-promapi-")
procs = []
servers = []
results = []

NOW = int(time.time())
T0 = (NOW - 600) // 60 * 60          # first sample, whole minute
STEP = 15                            # seconds between samples
N = 30                               # samples per series (7.5 minutes)
T_EVAL = T0 + 300                    # an instant inside the data
ESC = 'a<b>&"q"\\ \u00e9\u2028'      # escaped differently by Go's JSON than by others


def series_t1():
    out = []
    for inst, zone, base in (("a", "eu", 20.0), ("b", "us", 30.5)):
        labels = [("__name__", "temp_celsius"), ("job", "node"), ("instance", inst), ("zone", zone)]
        out.append((labels, [(base + i * 0.25, (T0 + i * STEP) * 1000) for i in range(N)]))
    for code, rate in (("200", 10), ("500", 1)):
        labels = [("__name__", "http_requests_total"), ("job", "api"), ("code", code), ("method", "GET")]
        out.append((labels, [(float(rate * i), (T0 + i * STEP) * 1000) for i in range(N)]))
    out.append(([("__name__", "label_esc"), ("job", "x"), ("path", ESC)], [(1e21, T0 * 1000), (1e-7, (T0 + STEP) * 1000)]))
    return out


def series_t2():
    return [([("__name__", "other_metric"), ("job", "t2"), ("secret", "tenant2")],
             [(7.0, (T0 + i * STEP) * 1000) for i in range(N)])]


def rw1_metadata(entries):
    """A WriteRequest of MetricMetadata only: [(type enum, family, help, unit)]."""
    return b"".join(_fld(3, 2, _fld(1, 0, _varint(t)) + _fld(2, 2, fam.encode()) + _fld(4, 2, hlp.encode()) +
                         _fld(5, 2, unit.encode())) for t, fam, hlp, unit in entries)


def rw2_with_metadata(name, labels, value, ts_ms, mtype, help_text, unit):
    """An RW2 Request of one series with one sample and its Metadata (type, help_ref, unit_ref)."""
    symbols, index = [""], {"": 0}

    def ref(x):
        if x not in index:
            index[x] = len(symbols)
            symbols.append(x)
        return index[x]
    refs = b"".join(_varint(ref(n)) + _varint(ref(v)) for n, v in [("__name__", name)] + labels)
    md = _fld(1, 0, _varint(mtype)) + _fld(3, 0, _varint(ref(help_text))) + _fld(4, 0, _varint(ref(unit)))
    ts = _fld(1, 2, refs) + _fld(2, 2, _fld(1, 1, struct.pack("<d", value)) + _fld(2, 0, _varint(ts_ms))) + \
        _fld(5, 2, md)
    return b"".join(_fld(4, 2, x.encode()) for x in symbols) + _fld(5, 2, ts)


def report(ok, name, why=""):
    results.append(ok)
    print(("ok - " if ok else "not ok - ") + name + ("" if ok or not why else " # " + why.replace("\n", " ")[:600]))
    sys.stdout.flush()


def skip(name, why):
    results.append(True)
    print("ok - %s # SKIP %s" % (name, why))


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Both:
    def __init__(self, strata, prom, tok):
        self.s, self.p, self.tok = strata, prom, tok

    def strata(self, path, method="GET", form=None, tok=None):
        h = {"Authorization": "Bearer " + (tok or self.tok)}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        return http(self.s + path, method, body, h)

    def prom(self, path, method="GET", form=None):
        h, body = {}, None
        if form is not None:
            body = urllib.parse.urlencode(form, doseq=True).encode()
            h["Content-Type"] = "application/x-www-form-urlencoded"
        return http(self.p + path, method, body, h)


def q(path, **params):
    items = []
    for k, v in params.items():
        k = k.replace("match", "match[]") if k == "match" else k
        for x in (v if isinstance(v, list) else [v]):
            items.append((k, x))
    return path + ("?" + urllib.parse.urlencode(items) if items else "")


def same_bytes(b, name, path, method="GET", form=None):
    s = b.strata(path, method, form)
    p = b.prom(path, method, form)
    report(s == p, name, "strata %d %r != prometheus %d %r" % (s[0], s[1][:300], p[0], p[1][:300]))
    return s


def sort_result(doc):
    """Query answers with the result sorted by metric (vector order is unspecified)."""
    d = doc.get("data") if isinstance(doc, dict) else None
    if isinstance(d, dict) and isinstance(d.get("result"), list) and d.get("resultType") in ("vector", "matrix"):
        d["result"].sort(key=lambda r: json.dumps(r["metric"], sort_keys=True))
    return doc


def same_query(b, name, path, method="GET", form=None):
    s = b.strata(path, method, form)
    if s[0] == 501:
        skip(name, "the evaluator is not built in (501)")
        return
    p = b.prom(path, method, form)
    try:
        sj, pj = sort_result(json.loads(s[1])), sort_result(json.loads(p[1]))
    except ValueError:
        sj, pj = s[1], p[1]
    report(s[0] == p[0] and sj == pj, name, "strata %d %r != prometheus %d %r" % (s[0], s[1][:400], p[0], p[1][:400]))


def start_prometheus():
    """Prometheus 2.42 with the remote-write receiver (tests/lib/promql_data.py); its base URL."""
    p, api = promql_data.start_prometheus(tmp)
    procs.append(p)
    return "http://127.0.0.1:%d" % api.port


def main():
    print("1..68")
    secret = os.path.join(tmp, "secret")
    with open(secret, "w") as f:
        f.write("workloads-test-secret\n")
    srv = Server(os.path.join(tmp, "strata"), secret)
    servers.append(srv)
    prom = start_prometheus()
    t1r, t2r = token(1, "metrics:read"), token(2, "metrics:read")
    st = srv.write(rw1(series_t1()), token(1, "metrics:write"))[0]
    st2 = srv.write(rw1(series_t2()), token(2, "metrics:write"))[0]
    h = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
         "X-Prometheus-Remote-Write-Version": "0.1.0"}
    stp = http(prom + "/api/v1/write", "POST", snappy(rw1(series_t1())), h)[0]
    report(st == 204 and st2 == 204 and stp == 204, "the same data written to strata and Prometheus",
           "strata %d/%d prometheus %d" % (st, st2, stp))
    b = Both(srv.url, prom, t1r)

    # --- series, labels, label values: byte for byte
    same_bytes(b, "series of one selector", q("/api/v1/series", match="temp_celsius"))
    same_bytes(b, "series of two selectors (a union)",
               q("/api/v1/series", match=["temp_celsius", '{job="api"}', 'temp_celsius{zone="eu"}']))
    same_bytes(b, "series with a regex matcher", q("/api/v1/series", match='{__name__=~"http_.*|label_esc"}'))
    same_bytes(b, "series with start and end", q("/api/v1/series", match="temp_celsius", start=T0, end=T0 + 60))
    same_bytes(b, "series between Prometheus' MinTime and MaxTime texts (client_golang's defaults)",
               q("/api/v1/series", match="temp_celsius", start="-292273086-05-16T16:47:06Z",
                 end="292277025-08-18T07:12:54.999999999Z"))
    same_bytes(b, "series outside the data", q("/api/v1/series", match="temp_celsius", start=T0 - 7200, end=T0 - 3600))
    same_bytes(b, "series as a form POST", "/api/v1/series", "POST",
               {"match[]": ["http_requests_total", "label_esc"]})
    same_bytes(b, "labels", "/api/v1/labels")
    same_bytes(b, "labels of a selector", q("/api/v1/labels", match="http_requests_total"))
    same_bytes(b, "labels as a form POST", "/api/v1/labels", "POST", {"match[]": "temp_celsius"})
    same_bytes(b, "label values of job", "/api/v1/label/job/values")
    same_bytes(b, "label values of __name__", "/api/v1/label/__name__/values")
    same_bytes(b, "label values with escapes", "/api/v1/label/path/values")
    same_bytes(b, "label values of a selector", q("/api/v1/label/instance/values", match='temp_celsius{zone="us"}'))
    same_bytes(b, "label values of an unknown label", "/api/v1/label/nope/values")
    same_bytes(b, "metadata without remote-write metadata", "/api/v1/metadata")
    same_bytes(b, "exemplars of a selector", q("/api/v1/query_exemplars", query="temp_celsius"))
    same_bytes(b, "exemplars of no selector: 204", q("/api/v1/query_exemplars", query="1"))

    # --- limit (Prometheus 3; 2.42 ignores it): the sorted answer cut, with Prometheus 3's warning
    st, body = b.strata(q("/api/v1/series", match="temp_celsius", limit="1"))
    st2, body2 = b.strata(q("/api/v1/label/__name__/values", limit="2"))
    report(st == 200 and json.loads(body) == {"status": "success", "data": [
        {"__name__": "temp_celsius", "instance": "a", "job": "node", "zone": "eu"}],
        "warnings": ["results truncated due to limit"]} and json.loads(body2) == {
        "status": "success", "data": ["http_requests_total", "label_esc"], "warnings": ["results truncated due to limit"]},
        "series and label values with limit", "%r %r" % (body, body2))

    # --- errors: status and body byte for byte
    same_bytes(b, "series without match[]", "/api/v1/series")
    same_bytes(b, "series with a bad start", q("/api/v1/series", match="up", start="x"))
    same_bytes(b, "labels with a bad end", q("/api/v1/labels", end="yesterday"))
    same_bytes(b, "an invalid label name", "/api/v1/label/1a/values")
    same_bytes(b, "match[] with only empty matchers", q("/api/v1/series", match='{job=""}'))
    for sel in ("up+1", "sum(up)", "up[5m]", "1", "up offset 5m"):
        same_bytes(b, "match[] %s is no selector" % sel, q("/api/v1/labels", match=sel))
    same_bytes(b, "match[] that does not parse", q("/api/v1/series", match="{"))
    same_bytes(b, "metadata with a bad limit", q("/api/v1/metadata", limit="x"))
    same_bytes(b, "exemplars with end before start", q("/api/v1/query_exemplars", query="up", start=10, end=5))
    same_bytes(b, "query with a bad time", q("/api/v1/query", query="1", time="x"))
    same_bytes(b, "query with a bad timeout", q("/api/v1/query", query="1", timeout="soon"))
    # Prometheus' own text here is a coin toss between two (its queue gate and the context race)
    st, body = b.strata(q("/api/v1/query", query="temp_celsius", timeout="0"))
    report(st == 503 and body in (b'{"status":"error","errorType":"timeout","error":"query timed out in query %s"}' % w
                                  for w in (b"execution", b"queue")), "query with a zero timeout: 503 timeout",
           "%d %r" % (st, body))
    same_bytes(b, "query that does not parse", q("/api/v1/query", query="foo{"))
    same_bytes(b, "query without a query", "/api/v1/query")
    same_bytes(b, "query_range without start", q("/api/v1/query_range", query="1", end=5, step=1))
    same_bytes(b, "query_range without step", q("/api/v1/query_range", query="1", start=1, end=5))
    same_bytes(b, "query_range with a bad step", q("/api/v1/query_range", query="1", start=1, end=5, step="x"))
    same_bytes(b, "query_range with end before start", q("/api/v1/query_range", query="1", start=10, end=5, step=1))
    same_bytes(b, "query_range with a zero step", q("/api/v1/query_range", query="1", start=1, end=5, step=0))
    same_bytes(b, "query_range over 11,000 points", q("/api/v1/query_range", query="1", start=0, end=11001, step=1))
    same_bytes(b, "query_range of a range vector",
               q("/api/v1/query_range", query="temp_celsius[5m]", start=T0, end=T0 + 60, step=15))

    # --- queries: JSON equal, result sorted by metric
    same_query(b, "query 1+1 (scalar)", q("/api/v1/query", query="1+1", time=T_EVAL))
    same_query(b, "query 1+1 at a time with ms", q("/api/v1/query", query="1+1", time="%d.12" % T_EVAL))
    same_query(b, "query a selector", q("/api/v1/query", query="temp_celsius", time=T_EVAL))
    same_query(b, "query a selector with a matcher", q("/api/v1/query", query='http_requests_total{code="500"}',
                                                         time=T_EVAL + 0.5))
    same_query(b, "query sum by (job)", q("/api/v1/query", query="sum by (job) (http_requests_total)", time=T_EVAL))
    same_query(b, "query big and tiny values, escapes", q("/api/v1/query", query="label_esc", time=T0 + STEP))
    # 2.42's range selectors are closed ([t-1m, t]), strata's left-open as Prometheus 3's: the
    # instant is off the 15 s sample grid so that no sample sits on the boundary
    same_query(b, "query a range selector", q("/api/v1/query", query="temp_celsius[1m]", time=T_EVAL + 7))
    same_query(b, "query as a form POST", "/api/v1/query", "POST", {"query": "sum by (zone) (temp_celsius)",
                                                                   "time": str(T_EVAL)})
    same_query(b, "query_range of a selector", q("/api/v1/query_range", query="temp_celsius", start=T0, end=T0 + 600,
                                                  step=60))
    same_query(b, "query_range as a form POST", "/api/v1/query_range", "POST",
               {"query": "sum by (job) (http_requests_total)", "start": str(T0), "end": str(T0 + 300), "step": "30s"})

    # --- Grafana's save-and-test: POST query 1+1, then buildinfo
    st, body = b.strata("/api/v1/query", "POST", {"query": "1+1", "time": str(NOW)})
    if st == 501:
        skip("Grafana save-and-test: POST query 1+1", "the evaluator is not built in (501)")
    else:
        report(st == 200 and json.loads(body) == {"status": "success", "data": {"resultType": "scalar",
                                                                                 "result": [NOW, "2"]}},
               "Grafana save-and-test: POST query 1+1", "%d %r" % (st, body))
    st, body = b.strata("/api/v1/status/buildinfo")
    doc = json.loads(body) if st == 200 else {}
    ver = doc.get("data", {}).get("version", "")
    report(st == 200 and doc.get("status") == "success" and [int(x) for x in ver.split(".")] >= [2, 42, 0]
           and doc["data"].get("revision") == "strata", "Grafana save-and-test: buildinfo", "%d %r" % (st, body))

    # --- tenants
    st, body = b.strata(q("/api/v1/series", match='{__name__=~".+"}'), tok=t2r)
    report(st == 200 and json.loads(body)["data"] == [{"__name__": "other_metric", "job": "t2", "secret": "tenant2"}],
           "tenant 2's series are its own only", "%d %r" % (st, body))
    st, body = b.strata("/api/v1/labels", tok=t2r)
    report(st == 200 and json.loads(body)["data"] == ["__name__", "job", "secret"], "tenant 2's labels are its own",
           "%d %r" % (st, body))
    st, body = b.strata("/api/v1/label/__name__/values", tok=t2r)
    st1, body1 = b.strata("/api/v1/label/secret/values")
    report(st == 200 and json.loads(body)["data"] == ["other_metric"] and json.loads(body1)["data"] == [],
           "label values: each tenant sees its own", "%d %r / %r" % (st, body, body1))
    st, body = b.strata("/api/v1/label/__tenant__/values")
    st2, body2 = b.strata(q("/api/v1/series", match='{__tenant__="2"}'))
    report(st == 200 and json.loads(body)["data"] == [] and st2 == 400, "the tenant label is never seen nor matched",
           "%d %r / %d %r" % (st, body, st2, body2))
    st, body = b.strata(q("/api/v1/query", query="temp_celsius", time=T_EVAL), tok=t2r)
    if st == 501:
        skip("tenant 2 queries none of tenant 1's series", "the evaluator is not built in (501)")
    else:
        report(st == 200 and json.loads(body)["data"]["result"] == [], "tenant 2 queries none of tenant 1's series",
               "%d %r" % (st, body))

    # --- metadata sent by remote write (Prometheus keeps only its targets': strata's own answer)
    st = srv.write(rw1_metadata([(2, "temp_celsius", 'Temperature, "now" <C>', "celsius"),
                                 (1, "http_requests_total", "Requests.", ""),
                                 (2, "temp_celsius", "Temperature.", "celsius")]), token(1, "metrics:write"))[0]
    st2 = srv.write(rw1_metadata([(5, "other_metric", "Tenant 2's.", "")]), token(2, "metrics:write"))[0]
    want = {"http_requests_total": [{"type": "counter", "help": "Requests.", "unit": ""}],
            "temp_celsius": [{"type": "gauge", "help": "Temperature.", "unit": "celsius"}]}
    st3, body = b.strata("/api/v1/metadata")
    report(st == 204 and st2 == 204 and st3 == 200 and json.loads(body) == {"status": "success", "data": want},
           "metadata: what remote write sent, the latest per family", "%d %d %d %r" % (st, st2, st3, body))
    _, body = b.strata(q("/api/v1/metadata", metric="temp_celsius"))
    _, body2 = b.strata(q("/api/v1/metadata", limit="1"))
    report(json.loads(body)["data"] == {"temp_celsius": want["temp_celsius"]}
           and json.loads(body2)["data"] == {"http_requests_total": want["http_requests_total"]},
           "metadata: metric and limit", "%r %r" % (body, body2))
    _, body = b.strata("/api/v1/metadata", tok=t2r)
    report(json.loads(body)["data"] == {"other_metric": [{"type": "summary", "help": "Tenant 2's.", "unit": ""}]},
           "metadata: each tenant sees its own", "%r" % body)

    body = rw2_with_metadata("rw2_metric", [("job", "rw2")], 1.0, T0 * 1000, 2, "From RW2.", "bytes")
    st = srv.req("POST", "/api/v1/write", snappy(body), {
        "Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "2.0.0",
        "Authorization": "Bearer " + token(1, "metrics:write")})[0]
    _, body = b.strata(q("/api/v1/metadata", metric="rw2_metric"))
    report(st == 204 and json.loads(body)["data"] == {"rw2_metric": [{"type": "gauge", "help": "From RW2.",
                                                                       "unit": "bytes"}]},
           "metadata: remote write 2.0's, by metric name", "%d %r" % (st, body))

    # --- auth, as every strata read route
    st, body = http(srv.url + "/api/v1/labels")
    st2, body2 = b.strata("/api/v1/labels", tok=token(1, "metrics:write"))
    report(st == 401 and st2 == 403, "no token 401, no metrics:read 403", "%d %d" % (st, st2))

    servers.remove(srv)
    srv.stop()

    # --- --query-max-samples: Prometheus' --query.max-samples answer, exactly
    lim = Server(os.path.join(tmp, "strata-limited"), secret, extra=["--query-max-samples=3"])
    servers.append(lim)
    lim.write(rw1(series_t1()), token(1, "metrics:write"))
    st, body = http(lim.url + q("/api/v1/query", query="temp_celsius[5m]", time=T_EVAL), "GET", None,
                    {"Authorization": "Bearer " + t1r})
    if st == 501:
        skip("over --query-max-samples: 422 execution", "the evaluator is not built in (501)")
    else:
        report(st == 422 and body == b'{"status":"error","errorType":"execution","error":"query processing would '
               b'load too many samples into memory in query execution"}', "over --query-max-samples: 422 execution",
               "%d %r" % (st, body))
    servers.remove(lim)
    lim.stop()


try:
    main()
except Exception as e:  # a crash is a failure with its reason, never a silent pass
    report(False, "test_prom_api ran to the end", repr(e))
finally:
    promql_data.stop_quietly(servers + procs)
    shutil.rmtree(tmp, ignore_errors=True)
    if not all(results):
        sys.exit(1)
