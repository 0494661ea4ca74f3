#!/usr/bin/env python3
"""test_promql_diff.py: strata's PromQL engine against the real Prometheus 2.42, differentially.

Starts strata (--auth=jwt) and Prometheus 2.42 (remote-write receiver, no scrape targets) on
127.0.0.1 with temp dirs and remote-writes the same seeded data to both (tests/lib/promql_data.py:
DCGM gauges, counters with resets, a gap, stale markers, NaN/+Inf/-Inf, classic histograms, label
values needing escapes).  strata cuts its head into a block after the first hour, so its blocks,
rollups and head are all read.  Then every query of the corpus (tests/lib/promql_corpus.py: 980
generated and hand-written queries in 27 families) runs against both over HTTP:
  - instant queries (GET /api/v1/query) at three times: inside the 10-minute gap (47m13s), late
    in the data (1h32m29s), and 3m41s after the data ends (the 5m lookback);
  - range queries (POST /api/v1/query_range, form-encoded, as Grafana sends them): one hour at
    step 60s from 30m, and one hour at the odd step 47s from 55m7s.
  (times from t0, a UTC midnight; a query with a subquery skips a mode where a subquery point
  falls on a window's lower edge: promql_corpus.boundary_safe.)
Compared: the HTTP status and, for errors, the errorType; resultType; the set of series (label
sets); every timestamp exactly; every value to 1e-9 relative (NaN equals NaN, +Inf equals +Inf),
and its text when both hold the same float.  The order of an instant vector is compared only
under an outer sort/sort_desc (as values: ties may come in any order).  Every time, range,
offset and step is whole seconds and no sample is on a whole second, so 2.42's closed range
selectors select what Prometheus 3's left-open ones do.  docs/promql.md ("Differential tests
against Prometheus 2.42") lists the 2.42 / Prometheus 3 differences the corpus avoids.

TAP lines (the families and their sizes are fixed by the corpus, so is the plan): one per query
family; the size of the valid corpus; its coverage (every function, aggregation with by and
without, operator, modifier); tenants (another tenant's token sees nothing, no token is a 401);
the HTTP parameters in their other forms (RFC 3339 and float times, duration and float steps,
GET and POST) and their errors; four for the functions 2.42 lacks (mad_over_time, sort_by_label,
limitk, limit_ratio), checked against values computed from the data or from Prometheus' answer
for the plain selector.  A failing family prints its first queries with both answers
(truncated).  Then a summary: queries run, equal, different, per family.

STRATA_PROMQL_TARGET=prometheus compares Prometheus with a second Prometheus (must be all equal;
validates the harness), =victoria-metrics with VictoriaMetrics (known differences).
STRATA_PROMQL_FAMILIES=a,b limits the run to some families, STRATA_PROMQL_SHOW=N prints N
failing queries per family, STRATA_PROMQL_BUDGET=S the seconds queries may start in (240).
"""
import json
import math
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))

import promql_corpus  # noqa: E402
import promql_data as pd  # noqa: E402
from strata_client import token  # noqa: E402

BUILD = os.environ.get("STRATA_BUILD", "build")
TARGET = os.environ.get("STRATA_PROMQL_TARGET", "strata")
ONLY = [f for f in os.environ.get("STRATA_PROMQL_FAMILIES", "").split(",") if f]
REL = 1e-9
MIN_VALID = 500
SHOW = int(os.environ.get("STRATA_PROMQL_SHOW", "3"))  # failing queries printed per family
BUDGET_S = float(os.environ.get("STRATA_PROMQL_BUDGET", "240"))  # queries not started by then are failed
DEADLINE = [None]
TRUNC = 700       # characters of each answer printed

procs = []
tmp = tempfile.mkdtemp(prefix="strata-promql-")


def cleanup():
    pd.stop_quietly(procs)
    procs.clear()
    shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- comparison

def num(v):
    return float(v)  # "NaN", "+Inf", "-Inf" too


def same_value(a, b):
    """Equal to 1e-9 relative; and written alike when the two numbers are the same float."""
    if a != b and isinstance(a, str) and isinstance(b, str) and num(a) == num(b) and \
            math.copysign(1, num(a)) == math.copysign(1, num(b)):
        return False  # the same number written differently ("1e+21" for "1000000000000000000000")
    a, b = num(a), num(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= REL * max(abs(a), abs(b))


def same_ts(a, b):
    return round(float(a) * 1000) == round(float(b) * 1000)


def key(metric):
    return tuple(sorted(metric.items()))


def diff(want, got, order=False):
    """None when the two answers (http status, JSON doc) agree, else why not."""
    (ws, wd), (gs, gd) = want, got
    if not isinstance(wd, dict) or not isinstance(gd, dict):
        return "not JSON (status %s / %s)" % (ws, gs)
    if wd.get("status") != "success" or gd.get("status") != "success":
        if ws != gs or wd.get("status") != gd.get("status") or wd.get("errorType") != gd.get("errorType"):
            return "status %s %s/%s vs %s %s/%s" % (ws, wd.get("status"), wd.get("errorType"),
                                                     gs, gd.get("status"), gd.get("errorType"))
        return None
    w, g = wd.get("data", {}), gd.get("data", {})
    if w.get("resultType") != g.get("resultType"):
        return "resultType %s vs %s" % (w.get("resultType"), g.get("resultType"))
    rt, wr, gr = w["resultType"], w.get("result"), g.get("result")
    if rt in ("scalar", "string"):
        if not isinstance(gr, list) or len(gr) != 2 or not same_ts(wr[0], gr[0]):
            return "%s point %s vs %s" % (rt, wr, gr)
        ok = wr[1] == gr[1] if rt == "string" else same_value(wr[1], gr[1])
        return None if ok else "%s value %s vs %s" % (rt, wr[1], gr[1])
    if not isinstance(gr, list):
        return "result is not a list"
    wm = {key(s["metric"]): s for s in wr}
    gm = {}
    for s in gr:
        k = key(s.get("metric", {}))
        if k in gm:
            return "duplicate series %s" % dict(k)
        gm[k] = s
    if set(wm) != set(gm):
        miss, extra = set(wm) - set(gm), set(gm) - set(wm)
        return "series differ: %d missing, e.g. %s; %d extra, e.g. %s" % (
            len(miss), dict(next(iter(miss))) if miss else "-", len(extra), dict(next(iter(extra))) if extra else "-")
    for k, ws_ in wm.items():
        gs_ = gm[k]
        if rt == "vector":
            wv, gv = ws_["value"], gs_.get("value")
            if not gv or not same_ts(wv[0], gv[0]) or not same_value(wv[1], gv[1]):
                return "%s: %s vs %s" % (dict(k), wv, gv)
        else:
            wv, gv = ws_["values"], gs_.get("values", [])
            if len(wv) != len(gv):
                return "%s: %d points vs %d" % (dict(k), len(wv), len(gv))
            for a, b in zip(wv, gv):
                if not same_ts(a[0], b[0]) or not same_value(a[1], b[1]):
                    return "%s: point %s vs %s" % (dict(k), a, b)
    if order and rt == "vector":
        wv = [s["value"][1] for s in wr]
        gv = [s["value"][1] for s in gr]
        if not all(same_value(a, b) for a, b in zip(wv, gv)):
            return "order of values differs: %s vs %s" % (wv[:8], gv[:8])
    return None


def short(x):
    s = json.dumps(x[1], separators=(",", ":")) if x[1] is not None else "<not JSON>"
    return "%s %s" % (x[0], s[:TRUNC] + ("..." if len(s) > TRUNC else ""))


# ---------------------------------------------------------------- the runs

def ask(api, q, kind, args):
    if kind == "i":
        st, doc, _ = api.query(q, *args)
    else:
        st, doc, _ = api.query_range(q, *args, post=True)
    return st, doc


def run_entry(ref, subj, e, ms):
    """[(mode name, why or None, ref answer, subject answer)] for the entry's modes."""
    out = []
    for name, kind, args in [ms[i] for i in e["modes"]]:
        if time.time() > DEADLINE[0]:
            out.append((name, "not run: the test's %ds budget was spent" % BUDGET_S, (0, None), (0, None)))
            continue
        a = ask(ref, e["q"], kind, args)
        b = ask(subj, e["q"] if TARGET != "strata" else e["strata"], kind, args)
        out.append((name, diff(a, b, e["order"] and kind == "i"), a, b))
    return out


# ---------------------------------------------------------------- functions 2.42 lacks

def window(samples, t_ms, r_ms):
    return [v for t, v in samples if t_ms - r_ms < t <= t_ms and not pd.is_stale(v)]


def quantile(xs, q):
    xs = sorted(xs)
    rank = q * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    w = rank - lo
    return xs[lo] * (1 - w) + xs[hi] * w


def strata_only(ds, ref, subj, t0_s):
    """Five TAP lines: exact values from the data (mad_over_time) or from Prometheus' own
    answer for the plain selector (sort_by_label, limitk, limit_ratio)."""
    if TARGET != "strata":
        for n in ("mad_over_time", "unicode classes", "sort_by_label", "limitk", "limit_ratio"):
            print("ok - %s: strata only # SKIP target is %s" % (n, TARGET))
        return
    times = [m[2][0] for m in promql_corpus.modes(t0_s)[:2]]

    # mad_over_time: median of |x - median| over (t - 10m, t], from the raw samples
    bad, n = [], 0
    for name in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE"):
        q = "mad_over_time(%s[10m])" % name
        for t in times:
            want = {}
            for labels, smp in ds.raw(name):
                xs = window(smp, t * 1000, 600000)
                if xs:
                    m = quantile(xs, 0.5)
                    want[key({k: v for k, v in labels.items() if k != "__name__"})] = quantile([abs(x - m) for x in xs], 0.5)
            st, doc = ask(subj, q, "i", (t,))
            got = {}
            if st == 200 and isinstance(doc, dict) and doc.get("status") == "success":
                got = {key(s["metric"]): s["value"][1] for s in doc["data"]["result"]}
            n += 1
            if set(got) != set(want) or any(not same_value(want[k], got[k]) for k in want):
                bad.append("%s @%d: want %s\n#   got %s %s" % (q, t, sorted(want.items())[:2], st, str(doc)[:TRUNC]))
    report_line("mad_over_time: %d instant queries equal the median absolute deviation of the raw samples" % n, bad)

    def sel(q, t):
        st, doc = ask(ref, q, "i", (t,))
        if st != 200 or not isinstance(doc, dict) or doc.get("status") != "success":
            raise RuntimeError("Prometheus answered %s %s for %s" % (st, str(doc)[:300], q))
        return [(key(s["metric"]), s["value"][1]) for s in doc["data"]["result"]]

    def got_of(q, t):
        st, doc = ask(subj, q, "i", (t,))
        if st != 200 or not isinstance(doc, dict) or doc.get("status") != "success":
            return None, "%s %s" % (st, str(doc)[:TRUNC])
        return [(key(s["metric"]), s["value"][1]) for s in doc["data"]["result"]], None

    # Unicode classes without an exact POSIX form: a clear refusal, never an approximate answer
    bad, n = [], 0
    for q, status, etype in (('DCGM_FI_DEV_GPU_UTIL{modelName=~"\\\\p{Lu}+ .*"}', 400, "bad_data"),
                             ('label_replace(gpu_node_info, "dst", "$1", "modelName", "NVIDIA (\\\\PL+).*")',
                              422, "execution")):
        for t in times:
            st, doc = ask(subj, q, "i", (t,))
            n += 1
            ok = st == status and isinstance(doc, dict) and doc.get("errorType") == etype \
                and "regular expression" in doc.get("error", "")
            if not ok:
                bad.append("%s @%d: want %d %s naming the regular expression, got %s %s"
                           % (q, t, status, etype, st, str(doc)[:TRUNC]))
    report_line("unicode classes: %d answers refuse \\p{Lu} and \\PL with 400/422 and the reason" % n, bad)

    checked(sort_by_label_check, sel, got_of, times)
    checked(limitk_check, sel, got_of, times)
    checked(limit_ratio_check, sel, got_of, times)


def checked(fn, *args):
    """One TAP line from fn, also when it fails unexpectedly (the plan stays whole)."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001
        report_line(fn.__doc__.split(":")[0], ["%s: %s" % (type(e).__name__, e)])


def sort_by_label_check(sel, got_of, times):
    """sort_by_label: Prometheus' series in label order"""
    # sort_by_label: Prometheus' answer for the selector, ordered by the labels (values are single
    # characters or node-x, where natural and lexicographic order agree), then by the label set
    bad = []
    for q, labs, desc in (('sort_by_label(DCGM_FI_DEV_GPU_UTIL, "Hostname", "gpu")', ("Hostname", "gpu"), False),
                          ('sort_by_label_desc(DCGM_FI_DEV_POWER_USAGE, "gpu")', ("gpu",), True),
                          ('sort_by_label(DCGM_FI_DEV_FB_USED, "namespace", "gpu")', ("namespace", "gpu"), False)):
        base = q[q.index("(") + 1:q.index(",")]
        want = sel(base, times[0])
        want.sort(key=lambda kv: (tuple(dict(kv[0]).get(l, "") for l in labs), kv[0]), reverse=desc)
        got, err = got_of(q, times[0])
        if err or [k for k, _ in got] != [k for k, _ in want] or \
                any(not same_value(a, b) for (_, a), (_, b) in zip(got, want)):
            bad.append("%s: want order %s\n#   got %s" % (q, [dict(k).get("gpu") for k, _ in want],
                                                          err or [dict(k).get("gpu") for k, _ in got]))
    report_line("sort_by_label, sort_by_label_desc: Prometheus' series in label order", bad)


def limitk_check(sel, got_of, times):
    """limitk: min(k, group size) of each group's series"""
    # limitk: per group, min(k, group size) of the group's series with their own values
    bad = []
    for q, k, by, base in (("limitk(2, DCGM_FI_DEV_GPU_UTIL)", 2, (), "DCGM_FI_DEV_GPU_UTIL"),
                           ("limitk by (Hostname) (2, DCGM_FI_DEV_GPU_UTIL)", 2, ("Hostname",), "DCGM_FI_DEV_GPU_UTIL"),
                           ("limitk without (gpu, UUID, pod, namespace) (1, DCGM_FI_DEV_POWER_USAGE)", 1,
                            ("Hostname",), "DCGM_FI_DEV_POWER_USAGE"),
                           ("limitk(0, DCGM_FI_DEV_GPU_UTIL)", 0, (), "DCGM_FI_DEV_GPU_UTIL"),
                           ("limitk(100, requests_total)", 100, (), "requests_total")):
        for t in times:
            allv = dict(sel(base, t))
            groups = {}
            for kk in allv:
                groups.setdefault(tuple(dict(kk).get(l) for l in by), []).append(kk)
            got, err = got_of(q, t)
            why = err
            if not why:
                gk = [kk for kk, _ in got]
                if len(set(gk)) != len(gk) or not set(gk) <= set(allv):
                    why = "not a subset of the selector's series"
                elif any(not same_value(v, allv[kk]) for kk, v in got):
                    why = "values differ from the selector's"
                else:
                    for gkey, members in groups.items():
                        have = sum(1 for kk in gk if kk in members)
                        if have != min(k, len(members)):
                            why = "group %s has %d series, want %d" % (gkey, have, min(k, len(members)))
            if why:
                bad.append("%s @%d: %s" % (q, t, why))
    report_line("limitk: min(k, group size) of each group's series, values unchanged", bad)


def limit_ratio_check(sel, got_of, times):
    """limit_ratio: complementary subsets"""
    # limit_ratio: r and -(1 - r) split the series in two complementary sets; 1 keeps all, 0 none
    bad = []
    for base in ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "request_duration_seconds_bucket"):
        for t in times:
            allv = dict(sel(base, t))
            parts = {}
            for r in ("0.5", "-0.5", "0.25", "-0.75", "1", "0"):
                got, err = got_of("limit_ratio(%s, %s)" % (r, base), t)
                parts[r] = dict(got) if got is not None else None
                if err:
                    bad.append("limit_ratio(%s, %s) @%d: %s" % (r, base, t, err))
            if any(v is None for v in parts.values()):
                continue
            for a, b in (("0.5", "-0.5"), ("0.25", "-0.75")):
                pa, pb = set(parts[a]), set(parts[b])
                if pa & pb or pa | pb != set(allv):
                    bad.append("limit_ratio(%s|%s, %s) @%d: not complementary (%d + %d of %d series)"
                               % (a, b, base, t, len(pa), len(pb), len(allv)))
            if set(parts["1"]) != set(allv) or parts["0"]:
                bad.append("limit_ratio(1|0, %s) @%d: %d and %d series of %d" % (base, t, len(parts["1"]),
                                                                                  len(parts["0"]), len(allv)))
            for r, p in parts.items():
                if any(not same_value(v, allv.get(kk, "x0")) for kk, v in p.items() if kk in allv):
                    bad.append("limit_ratio(%s, %s) @%d: values differ" % (r, base, t))
    report_line("limit_ratio: complementary subsets for r and -(1 - r), 1 keeps all, 0 none", bad)


def tenants(subj, t0_s, dead):
    """Another tenant's token reads none of tenant 1's data; no token is a 401."""
    name = "tenants: tenant 2's token sees none of tenant 1's series; no token gets 401"
    if TARGET != "strata":
        print("ok - %s # SKIP target is %s" % (name, TARGET))
        return
    if dead:
        print("not ok - %s (not run)" % name)
        return
    bad = []
    other = pd.Api("strata", subj.port, token(2, "metrics:read", secret=b"promql-diff-secret"))
    anon = pd.Api("strata", subj.port)
    q = 'count({__name__=~".+"})'
    for what, (st, doc) in (("instant", ask(other, q, "i", (t0_s + 3600,))),
                            ("range", ask(other, q, "r", (t0_s, t0_s + 7200, 60)))):
        if st != 200 or not isinstance(doc, dict) or doc.get("status") != "success" or doc["data"]["result"]:
            bad.append("tenant 2, %s %s: %s %s" % (what, q, st, str(doc)[:TRUNC]))
    st, doc = ask(subj, q, "i", (t0_s + 3600,))
    if st != 200 or not isinstance(doc, dict) or not doc.get("data", {}).get("result"):
        bad.append("tenant 1, %s: %s %s (want its series counted)" % (q, st, str(doc)[:TRUNC]))
    st, doc = ask(anon, q, "i", (t0_s + 3600,))
    if st != 401:
        bad.append("no token: %s %s, want 401" % (st, str(doc)[:TRUNC]))
    other.close()
    anon.close()
    report_line(name, bad)


def http_params(ref, subj, t0_s, dead):
    """The same queries with the parameters written in the other forms Prometheus accepts
    (RFC 3339 times with fractions, float seconds, steps as durations or floats), GET and POST,
    and the parameter errors: each answer compared as the corpus' answers are."""
    name = "http parameters: times, steps and parameter errors in every form answered as Prometheus"
    if dead:
        print("not ok - %s (not run)" % name)
        return
    from datetime import datetime, timezone

    def rfc(s, frac=""):
        return datetime.fromtimestamp(s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"

    t = t0_s + 47 * 60 + 13
    q = "sum by (Hostname) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]))"
    g = "avg_over_time(DCGM_FI_DEV_POWER_USAGE[5m])"
    cases = [
        ("/api/v1/query", {"query": g, "time": rfc(t)}),
        ("/api/v1/query", {"query": g, "time": rfc(t, ".250")}),
        ("/api/v1/query", {"query": g, "time": "%d.75" % t}),
        ("/api/v1/query", {"query": g, "time": rfc(t)[:-1] + "+02:00"}),
        ("/api/v1/query", {"query": "time()", "time": "%d.001" % t}),
        ("/api/v1/query_range", {"query": q, "start": rfc(t), "end": rfc(t + 3600), "step": "1m"}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t + 3600), "step": "60.0"}),
        ("/api/v1/query_range", {"query": q, "start": "%d.5" % t, "end": "%d.5" % (t + 1800), "step": "90s"}),
        ("/api/v1/query_range", {"query": q, "start": rfc(t, ".100"), "end": rfc(t + 600, ".100"), "step": "1m30s"}),
        ("/api/v1/query_range", {"query": g, "start": "%d" % t, "end": "%d" % t, "step": "15"}),
        # parameter errors
        ("/api/v1/query", {"time": "%d" % t}),
        ("/api/v1/query", {"query": g, "time": "yesterday"}),
        ("/api/v1/query", {"query": g, "time": "%d" % t, "timeout": "x"}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t + 60)}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t - 60), "step": "15"}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t + 60), "step": "0"}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t + 60), "step": "-15"}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t + 86400), "step": "1"}),
        ("/api/v1/query_range", {"query": q, "start": "x", "end": "%d" % (t + 60), "step": "15"}),
        ("/api/v1/query_range", {"query": q, "start": "%d" % t, "end": "%d" % (t + 60), "step": "1h1"}),
    ]
    bad, n = [], 0
    for path, params in cases:
        for post in (False, True):
            a = ref.call(path, params, post)
            b = subj.call(path, params, post)
            n += 1
            why = diff(a[:2], b[:2])
            if why:
                bad.append("%s %s %s: %s\n#     prometheus: %s\n#     %s: %s" % (
                    "POST" if post else "GET", path, params, why, short(a[:2]), TARGET, short(b[:2])))
    report_line(name + " (%d requests)" % n, bad)


def report_line(name, bad):
    if bad:
        print("not ok - %s (%d failures)" % (name, len(bad)))
        for b in bad[:SHOW]:
            print("#   " + b)
    else:
        print("ok - " + name)
    sys.stdout.flush()


# ---------------------------------------------------------------- main

def main():
    t0_ms = pd.t0_for_now()
    t0_s = t0_ms // 1000
    ds = pd.Dataset(t0_ms)
    entries = promql_corpus.corpus(t0_s)
    fams = promql_corpus.families()
    if ONLY:
        fams = [f for f in fams if f in ONLY]
        entries = [e for e in entries if e["family"] in fams]
    print("1..%d" % (len(fams) + 2 + 5 + 2))
    sys.stdout.flush()
    t_start = time.time()

    prom_p, prom = pd.start_prometheus(tmp)
    procs.append(prom_p)
    if TARGET == "prometheus":
        sp, subj = pd.start_prometheus(tmp, "prometheus-2")
    elif TARGET == "victoria-metrics":
        sp, subj = pd.start_victoria(tmp)
    else:
        secret = os.path.join(tmp, "secret")
        with open(secret, "wb") as f:
            f.write(b"promql-diff-secret")
        sp, subj = pd.start_strata(tmp, BUILD, secret_file=secret)
        subj.tok = token(1, "metrics:read metrics:write", secret=b"promql-diff-secret")
    procs.append(sp)
    pd.load(prom, ds)
    # strata: the first hour goes into a block (with its 5m/1h rollups), the second stays in the
    # head, so the queries read both and windows across the seam
    pd.load(subj, ds, 3600 * 1000, pd.strata_cut_head if TARGET == "strata" else None)
    if TARGET == "victoria-metrics":
        subj.req("GET", "/internal/force_flush")
        time.sleep(2)
    print("# data: %d series, %d samples, t0=%d; loaded in %.1fs" % (len(ds.series), ds.n_samples(), t0_s,
                                                                     time.time() - t_start))

    ms = promql_corpus.modes(t0_s)
    alive = ask(subj, "1+1", "i", (t0_s,))
    dead = None
    if alive[0] != 200:
        dead = "%s does not answer /api/v1/query: %s" % (TARGET, short(alive))
        print("# " + dead)

    results = {}  # family -> [(entry, [(mode, why, a, b)])]
    DEADLINE[0] = time.time() + BUDGET_S
    if not dead:
        # two workers: each query goes to both systems in turn, so each system sees at most two at once
        with ThreadPoolExecutor(max_workers=2) as ex:
            futs = [(e, ex.submit(run_entry, prom, subj, e, ms)) for e in entries]
            for e, f in futs:
                results.setdefault(e["family"], []).append((e, f.result()))
    print("# %d queries x %d modes in %.1fs" % (len(entries), len(ms), time.time() - t_start))
    if sp.proc.poll() is not None:
        print("# %s EXITED (%s) during the run; log tail:\n# %s" % (TARGET, sp.proc.returncode,
                                                                    sp.tail().replace("\n", "\n# ")))

    # queries Prometheus rejects (in every mode where it is asked): printed, compared by status+errorType only
    rejected = []
    for fam in fams:
        for e, rs in results.get(fam, []):
            if all(a[1] is None or a[1].get("status") != "success" for _, _, a, _ in rs):
                rejected.append(e)
    valid = len(entries) - len(rejected)
    gen_rejected = [e for e in rejected if e["family"] != "errors"]
    print("# %d queries, %d valid in Prometheus 2.42 (at least one mode answers success), %d rejected "
          "(%d of them outside the errors family; their errors are compared as status + errorType)"
          % (len(entries), valid, len(rejected), len(gen_rejected)))
    for e in gen_rejected[:20]:
        print("#   rejected (%s): %s" % (e["family"], e["q"]))
    if dead:
        print("not ok - corpus: not run: %s" % dead)
    elif valid >= MIN_VALID or ONLY:
        print("ok - corpus: %d queries valid in Prometheus 2.42 (at least %d wanted)" % (valid, MIN_VALID))
    else:
        print("not ok - corpus: only %d queries valid in Prometheus 2.42, want at least %d" % (valid, MIN_VALID))

    def nonempty(rs):
        for _, _, a, _ in rs:
            d = a[1] if isinstance(a[1], dict) else {}
            if d.get("status") == "success" and (d["data"]["resultType"] in ("scalar", "string") or d["data"]["result"]):
                return True
        return False

    # error messages (positions included): reported, not asserted
    nerr, msg_diff = 0, []
    for fam in fams:
        for e, rr in results.get(fam, []):
            for _, _, a, b in rr:
                if isinstance(a[1], dict) and isinstance(b[1], dict) and a[1].get("status") == "error" \
                        and b[1].get("status") == "error":
                    nerr += 1
                    if a[1].get("error") != b[1].get("error") and e["q"] not in {m[0] for m in msg_diff}:
                        msg_diff.append((e["q"], a[1].get("error"), b[1].get("error")))
    if nerr:
        print("# error answers: %d; %d queries' messages differ from Prometheus' (reported, not asserted)" % (nerr, len(msg_diff)))
        for q, a, b in msg_diff[:8]:
            a, b = a or "", b or ""
            i = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            cut = max(0, i - 40)
            print("#   %s  (first difference at character %d)\n#     prometheus: %s%s\n#     %s: %s%s"
                  % (q, i, "..." if cut else "", a[cut:cut + 160], TARGET, "..." if cut else "", b[cut:cut + 160]))
    nanswers = sum(len(e["modes"]) for e in entries)
    print("# %d answers compared per system (%d query x mode pairs skipped at a subquery window edge)"
          % (nanswers, len(entries) * len(ms) - nanswers))
    # every function, aggregation (by and without) and operator is used by a query Prometheus accepts
    rej = {e["q"] for e in rejected}
    missing = promql_corpus.coverage([e["q"] for e in entries if e["family"] != "errors" and e["q"] not in rej])
    if dead:
        print("not ok - coverage: not run")
    elif ONLY:
        print("ok - coverage: # SKIP only some families run")
    else:
        print("%s - coverage: the valid queries use all %d items: functions, aggregations with by/without, operators "
              "with bool, set operators, matching, offset, @ and subqueries%s"
              % ("not ok" if missing else "ok", len(promql_corpus.coverage_items()),
                 "; missing: " + ", ".join(missing) if missing else ""))
    summary = []
    tot_eq = tot_diff = 0
    for fam in fams:
        rs = results.get(fam, [])
        nq = sum(1 for e in entries if e["family"] == fam)
        if dead:
            print("not ok - %s: %d queries (not run)" % (fam, nq))
            summary.append((fam, nq, 0, nq, 0))
            tot_diff += nq
            continue
        fails = [(e, r) for e, rr in rs for r in rr if r[1]]
        bad_q = {e["q"] for e, _ in fails}
        eq, df = nq - len(bad_q), len(bad_q)
        tot_eq += eq
        tot_diff += df
        ne = sum(1 for _, rr in rs if nonempty(rr))
        summary.append((fam, nq, eq, df, ne))
        na = sum(len(rr) for _, rr in rs)
        if not fails:
            print("ok - %s: %d queries (%d answers) equal in %s and Prometheus 2.42" % (fam, nq, na, TARGET))
        else:
            print("not ok - %s: %d of %d queries differ (%d of %d answers)" % (fam, df, nq, len(fails), na))
            shown = set()
            for e, (mode, why, a, b) in fails:
                if e["q"] in shown:
                    continue
                shown.add(e["q"])
                if len(shown) > SHOW:
                    break
                print("#   query: %s%s   [%s]" % (e["q"], "" if e["strata"] == e["q"] else "  (strata: %s)" % e["strata"], mode))
                print("#   why: %s" % why)
                print("#   prometheus: %s" % short(a))
                print("#   %s: %s" % (TARGET, short(b)))
        sys.stdout.flush()

    if dead:
        for n in ("mad_over_time", "unicode classes", "sort_by_label", "limitk", "limit_ratio"):
            print("not ok - %s: strata only (not run)" % n)
    else:
        strata_only(ds, prom, subj, t0_s)

    tenants(subj, t0_s, dead)
    http_params(prom, subj, t0_s, dead)
    print("# summary: %d queries, %d equal, %d different (target %s, %.1fs)" % (len(entries), tot_eq, tot_diff, TARGET,
                                                                                  time.time() - t_start))
    for fam, nq, eq, df, ne in summary:
        print("#   %-22s %4d queries %4d equal %4d different (%d with a non-empty answer from Prometheus)"
              % (fam, nq, eq, df, ne))
    cleanup()
    return 0


if __name__ == "__main__":
    pd.run_tap_main(main, "promql diff", procs, cleanup)
