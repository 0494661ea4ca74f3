"""promql_corpus.py: the query corpus of the PromQL differential test (test_promql_diff.py).

A seeded grammar generates queries family by family over the series of promql_data.py, so that
together they use every float function of Prometheus 2.42, every aggregation with by/without and
its parameter, every binary operator (arithmetic, comparison with and without bool, and/or/unless)
with on/ignoring and group_left/group_right, offset, @ start()/end()/<number>, subqueries and
nested expressions.  Hand-written families (tests/fixtures/promql/*.promql) add the panels of
NVIDIA's DCGM Grafana dashboard, typical GPU alert rules, and queries that must fail (parse and
execution errors).

Every entry is a dict {family, q, strata (the query sent to strata when it differs: 2.42's
holt_winters is Prometheus 3's double_exponential_smoothing), order (compare the order of an
instant vector: only where Prometheus defines it, an outer sort/sort_desc)}.

The corpus is a function of the seed and of t0 (the data's first minute, for `@ <number>`): the
families and their sizes are fixed, so the test's plan is too.  Every duration, offset and
subquery step is whole seconds (see promql_data.py, "Sample placement").

Functions Prometheus 2.42 lacks (limitk, limit_ratio, mad_over_time, sort_by_label) are not
here: test_promql_diff.py checks them against exact values computed from the data.
"""
import os
import random
import re

SEED = 14
DEFAULT_SEED = SEED

GAUGES = ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_POWER_USAGE",
          "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_DEV_XID_ERRORS"]
# gauges without NaN (sort order with NaN differs between 2.42 and Prometheus 3; see docs/promql.md)
GAUGES_NONAN = [g for g in GAUGES if g != "DCGM_FI_DEV_GPU_TEMP"]
COUNTERS = ["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "requests_total", "request_duration_seconds_count",
            "request_duration_seconds_sum", "request_duration_seconds_bucket"]
DCGM_MATCHERS = ["", '{gpu="1"}', '{Hostname="node-b"}', '{Hostname=~"node-(a|c)"}', '{gpu!="2"}',
                 '{namespace!~"team-(b|c)"}', '{pod=~"train.*"}', '{job="dcgm",instance=~".*:9400"}',
                 '{UUID=~"GPU-.*-00000000000[135]"}', '{gpu="3"}', '{gpu="5"}', '{modelName=~".*H100.*"}']
API_MATCHERS = {"requests_total": ["", '{code="200"}', '{code=~"5.."}', '{code!="200"}', '{job="api"}'],
                "request_duration_seconds_count": ["", '{instance="api-0:8080"}', '{instance=~"api-.*"}'],
                "request_duration_seconds_sum": ["", '{instance="api-1:8080"}'],
                "request_duration_seconds_bucket": ['{le="0.5"}', '{instance="api-0:8080"}', '{le=~"0.1|1|\\\\+Inf"}']}
RANGES = ["30s", "1m", "2m", "5m", "5m", "10m", "10m", "30m", "1h", "90s", "7m", "1h30m"]
OFFSETS = ["5m", "17m", "1h", "30s", "1h1m"]
STEPS = ["30s", "1m", "2m", "45s", "5m"]
LABELS = ["gpu", "Hostname", "namespace", "pod", "modelName", "UUID", "job", "instance"]
API_LABELS = ["code", "instance", "job", "le"]


class Gen:
    def __init__(self, seed, t0_s):
        self.r = random.Random(seed)
        self.t0_s = t0_s
        self.queues = {}

    def c(self, xs):
        return self.r.choice(xs)

    def cyc(self, xs):
        """Every element of xs once (in a seeded order) before any repeats."""
        key = tuple(xs)
        if not self.queues.get(key):
            q = list(xs)
            self.r.shuffle(q)
            self.queues[key] = q
        return self.queues[key].pop()

    # ---------------------------------------------------------------- leaves
    def gauge(self, names=GAUGES):
        return self.c(names) + self.c(DCGM_MATCHERS)

    def counter(self):
        n = self.c(COUNTERS)
        if n == "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION":
            return n + self.c(DCGM_MATCHERS)
        return n + self.c(API_MATCHERS[n])

    def series(self):
        return self.gauge() if self.r.random() < 0.6 else self.counter()

    def rng(self):
        return self.c(RANGES)

    def at(self):
        """An @ modifier, or ''."""
        x = self.r.random()
        if x < 0.08:
            return " @ start()"
        if x < 0.16:
            return " @ end()"
        if x < 0.24:
            return " @ %d" % (self.t0_s + self.c([600, 3900, 5400, 7199]))
        return ""

    def off(self):
        return " offset " + self.c(OFFSETS) if self.r.random() < 0.25 else ""

    def mod(self):
        """offset and/or @ in either order."""
        a, o = self.at(), self.off()
        return a + o if self.r.random() < 0.5 else o + a

    def grp(self, labels=LABELS):
        kind = self.cyc(["", "by", "without", "by", "without"])
        if not kind:
            return ""
        ls = ", ".join(self.r.sample(labels, self.r.randint(1 if self.r.random() < 0.85 else 0, 2)))
        return " %s (%s)" % (kind, ls)

    # ---------------------------------------------------------------- expressions
    def range_fn(self):
        """An instant vector from a range function over a selector."""
        fn = self.c(["rate", "irate", "increase", "resets", "avg_over_time", "max_over_time",
                     "delta", "deriv", "last_over_time", "count_over_time"])
        if fn in ("rate", "irate", "increase", "resets"):
            return "%s(%s[%s]%s)" % (fn, self.counter(), self.rng(), self.mod())
        return "%s(%s[%s]%s)" % (fn, self.gauge(), self.rng(), self.mod())

    def vec(self, depth=0):
        x = self.r.random()
        if depth >= 2 or x < 0.3:
            return self.series() + self.mod() if x < 0.15 else self.range_fn()
        if x < 0.5:
            return "%s%s(%s)" % (self.c(["sum", "avg", "max", "min", "count", "stddev", "group"]), self.grp(),
                                 self.vec(depth + 1))
        if x < 0.65:
            return "%s(%s)" % (self.c(["abs", "ceil", "floor", "sqrt", "ln", "exp", "sgn", "round"]), self.vec(depth + 1))
        if x < 0.8:
            return "(%s %s %s)" % (self.vec(depth + 1), self.c(["+", "-", "*", "/", ">", "<=", "> bool", "%"]),
                                   self.c(["2", "0.5", "100", "-1", "scalar(vector(3))"]))
        if x < 0.9:
            return "%s_over_time(%s[%s:%s])" % (self.c(["max", "min", "avg", "sum", "count", "last"]),
                                               self.vec(depth + 1), self.c(["10m", "30m", "5m"]), self.c(STEPS))
        return "clamp(%s, %s, %s)" % (self.vec(depth + 1), self.c(["0", "-5", "10"]), self.c(["50", "1000", "1e9"]))


def _fam_selector(g):
    x = g.r.random()
    if x < 0.55:
        return g.series() + g.mod()
    if x < 0.7:
        return g.c(['{__name__=~"DCGM_FI_DEV_(FB_USED|FB_FREE)",gpu="%d"}' % g.r.randint(0, 5),
                    '{__name__="requests_total",code!~"2.."}', '{__name__=~"request_duration_seconds_(sum|count)"}',
                    '{Hostname="node-c"}', '{__name__=~"DCGM_FI_DEV_GPU_.*",gpu=~"[0-2]"}',
                    '{__name__!="DCGM_FI_DEV_XID_ERRORS",gpu="4"}', '{job="api",__name__=~".*_count"}',
                    # regexes are anchored: "node" matches no Hostname, "batch-1" not batch-10
                    'DCGM_FI_DEV_GPU_UTIL{Hostname=~"node"}', 'DCGM_FI_DEV_GPU_UTIL{pod=~"batch-1"}',
                    'DCGM_FI_DEV_GPU_UTIL{pod!~"batch-1"}', 'DCGM_FI_DEV_POWER_USAGE{Hostname=~"(?i)NODE-A"}',
                    'DCGM_FI_DEV_FB_USED{UUID=~".*0{11}[24]"}', 'requests_total{code=~"[45]\\\\d\\\\d"}']) + g.mod()
    if x < 0.9:
        return "%s[%s]%s" % (g.series(), g.c(["30s", "1m", "2m", "45s"]), g.mod())  # a range vector: instant only
    return "%s%s" % (g.c(GAUGES), g.c(['{gpu=~"1|2",gpu!="2"}', '{Hostname!~"node-.*"}', '{pod=""}', '{missing=""}',
                                        '{gpu=~".+"}', '{gpu=~"(0|4)"}', "{namespace=~'team-a'}"]))


def _fam_rate(g):
    fn = g.cyc(["rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes", "predict_linear"])
    if fn in ("rate", "increase"):  # counters only: see promql_data.py, "Counters' first samples"
        sel = g.counter()
    elif fn in ("irate", "resets"):
        sel = g.counter() if g.r.random() < 0.85 else g.gauge()
    else:
        sel = g.gauge() if g.r.random() < 0.8 else g.counter()
    if fn == "predict_linear":
        # no @: 2.42 scopes an @-pinned range in predict_linear differently (prometheus#11708)
        return "predict_linear(%s[%s]%s, %s)" % (sel, g.rng(), g.off(), g.c(["0", "60", "3600", "-600", "4 * 3600"]))
    return "%s(%s[%s]%s)" % (fn, sel, g.rng(), g.mod())


OVER_TIME = ["avg", "min", "max", "sum", "count", "stddev", "stdvar", "last", "present"]


def _fam_over_time(g):
    x = g.r.random()
    sel = g.gauge() if g.r.random() < 0.8 else g.counter()
    if x < 0.15:
        return "quantile_over_time(%s, %s[%s]%s)" % (g.c(["0", "0.25", "0.5", "0.9", "0.99", "1", "1.5", "-1"]),
                                                     sel, g.rng(), g.mod())
    if x < 0.22:
        return "absent_over_time(%s[%s]%s)" % (g.c([sel, 'nonexistent{job="x"}', 'DCGM_FI_DEV_GPU_UTIL{gpu="3"}',
                                                    'DCGM_FI_DEV_POWER_USAGE{gpu="5"}']), g.rng(), g.mod())
    return "%s_over_time(%s[%s]%s)" % (g.cyc(OVER_TIME), sel, g.rng(), g.mod())


def _fam_holt_winters(g):
    sel = g.gauge(GAUGES_NONAN)
    args = (sel, g.c(["5m", "10m", "30m"]), g.mod(), g.c(["0.1", "0.5", "0.9"]), g.c(["0.1", "0.3", "0.8"]))
    return {"q": "holt_winters(%s[%s]%s, %s, %s)" % args,
            "strata": "double_exponential_smoothing(%s[%s]%s, %s, %s)" % args}


MATH1 = ["abs", "ceil", "floor", "exp", "ln", "log2", "log10", "sqrt", "sgn", "acos", "acosh", "asin",
         "asinh", "atan", "atanh", "cos", "cosh", "sin", "sinh", "tan", "tanh", "deg", "rad"]


def _fam_math(g):
    x = g.r.random()
    inner = g.gauge() if g.r.random() < 0.6 else g.c(["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" + g.c(DCGM_MATCHERS),
                                                      "DCGM_FI_DEV_GPU_UTIL / 100", "-DCGM_FI_DEV_POWER_USAGE",
                                                      g.range_fn()])
    if x < 0.6:
        return "%s(%s)" % (g.cyc(MATH1), inner)
    if x < 0.7:
        return "round(%s%s)" % (inner, g.c(["", ", 0.5", ", 5", ", 0.001", ", -3"]))
    if x < 0.8:
        return "clamp(%s, %s, %s)" % (inner, g.c(["0", "-10", "20"]), g.c(["50", "0.5", "100", "-20"]))
    if x < 0.9:
        return "%s(%s, %s)" % (g.cyc(["clamp_min", "clamp_max"]), inner, g.c(["0", "30", "0.25", "1e3"]))
    return g.c(["pi()", "pi() * 2", "exp(DCGM_FI_DEV_FB_USED)", "ln(DCGM_FI_DEV_FB_FREE - DCGM_FI_DEV_FB_FREE)",
                "sqrt(-DCGM_FI_DEV_GPU_UTIL)", "-abs(%s)" % inner, "deg(vector(pi()))", "rad(vector(180))", "+%s" % inner])


def _fam_time(g):
    x = g.r.random()
    fns = ["minute", "hour", "day_of_month", "day_of_week", "day_of_year", "days_in_month", "month", "year"]
    if x < 0.3:
        return "%s()" % g.cyc(fns)
    if x < 0.55:
        return "%s(%s)" % (g.cyc(fns), g.c(["timestamp(%s)" % g.gauge(), "vector(%d)" % g.c([0, 86399, 951782400, 1709251199,
                                                                                      4102444800, g.t0_s + 4000]),
                                     "vector(time() - 86400 * 45)"]))
    if x < 0.8:
        # @ or offset, not both: 2.42's timestamp() of a selector with both answers nothing
        return g.c(["timestamp(%s%s)" % (g.series(), g.c([g.at(), g.off()])), "time()", "time() - %d" % g.t0_s,
                    "timestamp(%s)" % g.range_fn(), "timestamp(%s)" % g.gauge() + " - time()"])
    return g.c(["vector(1)", "vector(time())", "scalar(%s)" % g.gauge(), 'scalar(DCGM_FI_DEV_GPU_UTIL{gpu="%d"})' %
                g.r.randint(0, 5), "vector(scalar(sum(%s)))" % g.gauge(), "scalar(vector(%s))" % g.c(["1", "-2.5", "NaN"]),
                "%s * scalar(count(%s))" % (g.gauge(), g.gauge())])


def _fam_labels(g):
    x = g.r.random()
    sel = g.gauge() if g.r.random() < 0.7 else g.range_fn()
    if x < 0.6:
        return 'label_replace(%s, "%s", "%s", "%s", "%s")' % (
            sel, g.c(["dst", "Hostname", "host", "gpu", "__tmp"]), g.c(["$1", "${1}-x", "$2", "gpu$1", "", "static"]),
            g.c(["Hostname", "gpu", "UUID", "pod", "missing", "__name__"]),
            g.c(["node-(.*)", "(.*)", "(.)", "GPU-(.*)-(.*)", "x(.*)", ".*", "", "(t)rain.*"]))
    return 'label_join(%s, "%s", "%s"%s)' % (sel, g.c(["dst", "gpu", "id"]), g.c(["-", "", ",", "/"]),
                                             "".join(', "%s"' % l for l in g.r.sample(LABELS + ["missing"],
                                                                                      g.r.randint(0, 3))))


def _fam_absent(g):
    return g.c(["absent(%s)" % g.gauge(), 'absent(nonexistent{job="x",a=~"b"})', "absent(nonexistent)",
                "absent(sum(nonexistent))", "absent(%s)" % g.range_fn(), 'absent(DCGM_FI_DEV_GPU_UTIL{gpu="3"})',
                'absent(DCGM_FI_DEV_POWER_USAGE{gpu="5",Hostname="node-c"})',
                'absent(DCGM_FI_DEV_GPU_TEMP{gpu="0"} offset %s)' % g.c(OFFSETS),
                "absent(%s > 1e9)" % g.gauge(), 'absent(vector(1))', 'absent(nonexistent{job="x"} @ end())'])


def _fam_histogram(g):
    phi = g.c(["0", "0.25", "0.5", "0.9", "0.99", "1", "1.5", "-0.5", "0.75"])
    rg = g.c(["1m", "5m", "10m", "30m", "1h"])
    inner = g.c(["sum by (le) (rate(request_duration_seconds_bucket[%s]))" % rg,
                 "sum by (le, instance) (rate(request_duration_seconds_bucket[%s]%s))" % (rg, g.mod()),
                 "sum without (instance) (increase(request_duration_seconds_bucket[%s]))" % rg,
                 "rate(request_duration_seconds_bucket[%s])" % rg,
                 'rate(request_duration_seconds_bucket{instance="api-1:8080"}[%s])' % rg,
                 "request_duration_seconds_bucket", "request_duration_seconds_bucket offset %s" % g.c(OFFSETS),
                 "sum by (le, job) (irate(request_duration_seconds_bucket[%s]))" % rg,
                 'rate(request_duration_seconds_bucket{le!="0.05"}[%s])' % rg,
                 "max_over_time(request_duration_seconds_bucket[%s])" % rg])
    if g.r.random() < 0.15:
        return "histogram_quantile(%s, %s) * 1000" % (phi, inner)
    return "histogram_quantile(%s, %s)" % (phi, inner)


def _fam_sort(g):
    cont = ["DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"]
    inner = g.c([g.gauge(GAUGES_NONAN), "rate(%s[5m])" % g.counter(), "sum by (Hostname) (%s)" % g.gauge(GAUGES_NONAN),
                 "topk(3, %s)" % g.gauge(cont), "bottomk(2, %s)" % g.gauge(cont),
                 "avg_over_time(%s[10m])" % g.gauge(GAUGES_NONAN), "count_values(\"v\", %s)" % g.gauge(["DCGM_FI_DEV_SM_CLOCK"])])
    return {"q": "%s(%s)" % (g.c(["sort", "sort_desc"]), inner), "order": True}


AGGS = ["sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"]


def _fam_aggregation(g):
    inner = g.c([g.series(), g.range_fn(), g.gauge() + g.mod()])
    agg, grp = g.cyc(AGGS), g.grp()
    if g.r.random() < 0.5:
        return "%s%s (%s)" % (agg, grp, inner)
    return "%s(%s)%s" % (agg, inner, grp)  # the clause after the argument


def _fam_aggregation_params(g):
    fn = g.cyc(["topk", "bottomk", "quantile", "count_values"])
    if fn in ("topk", "bottomk"):  # values without ties: which of two equal series wins is not defined
        cont = ["DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"]
        inner = g.c([g.gauge(cont), "rate(%s[5m])" % g.c(["DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "requests_total",
                                                          "request_duration_seconds_sum"]), g.gauge(cont) + g.mod(),
                     "avg_over_time(%s[10m])" % g.gauge(cont)])
    else:
        inner = g.c([g.gauge(), g.range_fn(), g.gauge() + g.mod()])
    grp = g.grp()
    if fn in ("topk", "bottomk"):
        p = g.c(["1", "2", "3", "0", "100", "scalar(vector(2))", "2.7"])
    elif fn == "quantile":
        p = g.c(["0", "0.1", "0.5", "0.9", "1", "1.2", "-0.1"])
    else:
        p = g.c(['"value"', '"gpu"', '"v"'])
        inner = g.c([g.gauge(["DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_GPU_UTIL"]),
                     "round(%s)" % g.range_fn(), "floor(DCGM_FI_DEV_POWER_USAGE / 100)",
                     # label values formatted from floats: decimals, exponents, -0, Inf, NaN
                     g.gauge(["DCGM_FI_PROF_PIPE_TENSOR_ACTIVE"]), "DCGM_FI_DEV_FB_USED * 1e18",
                     "DCGM_FI_DEV_FB_FREE / 3e9", "-0 * DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_POWER_USAGE",
                     "DCGM_FI_DEV_GPU_TEMP{gpu=\"1\"}"])
    if fn in ("topk", "bottomk") and g.r.random() < 0.5:
        # wrapped in a sum or count so the instant order (undefined) does not matter
        return "%s(%s%s (%s, %s))" % (g.c(["sum", "count", "max"]), fn, grp, p, inner)
    return "%s%s (%s, %s)" % (fn, grp, p, inner)


ARITH = ["+", "-", "*", "/", "%", "^", "atan2"]


def _fam_arith(g):
    x = g.r.random()
    op = g.cyc(ARITH)
    a = g.c([g.gauge(), g.range_fn()])
    if x < 0.35:
        s = g.c(["2", "0", "-1.5", "100", "1e-3", "scalar(vector(4))", "time() / 1e9", "NaN", "Inf"])
        if op == "atan2":
            a = "(%s * 1)" % a
        return "%s %s %s" % (a, op, s) if g.r.random() < 0.5 else "%s %s %s" % (s, op, a)
    if x < 0.45:
        return "%s %s %s" % (g.c(["1", "2.5", "-3", "0", "NaN", "Inf", "0x1f", "1e2"]), op, g.c(["2", "0", "-1", "3 ^ 2", "(4 - 6)"]))
    m = g.c(DCGM_MATCHERS)
    pairs = [("DCGM_FI_DEV_FB_USED" + m, "DCGM_FI_DEV_FB_FREE" + m),
             ("DCGM_FI_DEV_FB_USED" + m, "(DCGM_FI_DEV_FB_USED" + m + " + DCGM_FI_DEV_FB_FREE" + m + ")"),
             ("DCGM_FI_DEV_POWER_USAGE" + m, "DCGM_FI_DEV_POWER_USAGE" + m + " offset " + g.c(OFFSETS)),
             ("rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]) / 1000", "DCGM_FI_DEV_POWER_USAGE"),
             ("rate(request_duration_seconds_sum[%s])" % g.rng(), "rate(request_duration_seconds_count[%s])" % g.rng()),
             ("DCGM_FI_DEV_GPU_UTIL" + m, "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE" + m),
             ("sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)", "count by (Hostname) (DCGM_FI_DEV_POWER_USAGE)")]
    l, r = g.c(pairs)
    if g.r.random() < 0.3:
        l, r = r, l
    if op == "atan2":
        l = "(%s * 1)" % l  # 2.42 keeps the name through atan2, Prometheus 3 drops it (prometheus#12595)
    return "%s %s %s" % (l, op, r)


CMP = ["==", "!=", ">", "<", ">=", "<="]


def _fam_comparison(g):
    x = g.r.random()
    op = g.cyc(CMP)
    b = g.cyc(["", " bool"])
    a = g.c([g.gauge(), g.range_fn()])
    if x < 0.5:
        s = g.c(["50", "0", "80", "1e4", "0.3", "NaN", "Inf", "-Inf"])
        return "%s %s%s %s" % (a, op, b, s) if g.r.random() < 0.6 else "%s %s%s %s" % (s, op, b, a)
    if x < 0.6:
        return "%s %s bool %s" % (g.c(["1", "2", "NaN", "Inf"]), op, g.c(["1", "2", "0"]))
    m = g.c(DCGM_MATCHERS)
    l, r = g.c([("DCGM_FI_DEV_FB_USED" + m, "DCGM_FI_DEV_FB_FREE" + m),
                ("DCGM_FI_DEV_GPU_UTIL" + m, "DCGM_FI_DEV_GPU_UTIL" + m + " offset " + g.c(OFFSETS)),
                ("DCGM_FI_DEV_POWER_USAGE", "avg_over_time(DCGM_FI_DEV_POWER_USAGE[10m])"),
                ("requests_total", "requests_total offset 5m"),
                ("sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE)", "sum by (Hostname) (DCGM_FI_DEV_POWER_USAGE offset 1m)")])
    return "%s %s%s %s" % (l, op, b, r)


def _fam_set(g):
    op = g.cyc(["and", "or", "unless"])
    m = g.c(["", " on (gpu)", " on (Hostname)", " ignoring (pod, namespace)", " on ()", " ignoring (UUID)",
             " on (gpu, Hostname)"])
    l = g.c([g.gauge(), "DCGM_FI_DEV_GPU_UTIL > 50", "rate(%s[5m])" % g.counter(), "DCGM_FI_DEV_POWER_USAGE > 200"])
    r = g.c([g.gauge(), "DCGM_FI_DEV_GPU_UTIL < 30", "DCGM_FI_DEV_FB_USED > 30000", 'DCGM_FI_DEV_GPU_TEMP{gpu=~"[0-3]"}',
             "vector(1)", "absent(nonexistent)", "DCGM_FI_DEV_XID_ERRORS > 0", "count by (Hostname) (DCGM_FI_DEV_GPU_UTIL)"])
    x = "%s %s%s %s" % (l, op, m, r)
    if g.r.random() < 0.2:
        x = "(%s) %s %s" % (x, g.c(["and", "or", "unless"]), g.gauge())
    return x


def _fam_matching(g):
    x = g.r.random()
    op = g.c(["*", "/", "+", "-", ">", "> bool", "<", "== bool"])
    if x < 0.3:
        lab = g.c(["gpu", "gpu, Hostname", "UUID", "gpu, UUID, Hostname", "Hostname, gpu, namespace, pod"])
        return "DCGM_FI_DEV_FB_USED %s on (%s) DCGM_FI_DEV_FB_FREE" % (op, lab)
    if x < 0.45:
        return "DCGM_FI_DEV_POWER_USAGE %s ignoring (%s) DCGM_FI_DEV_SM_CLOCK" % (op, g.c(["", "job", "container, job"]))
    if x < 0.75:
        hl = g.c(["", "modelName", "namespace, pod"])
        return "DCGM_FI_DEV_GPU_UTIL %s on (Hostname) group_left(%s) %s by (Hostname%s) (DCGM_FI_DEV_POWER_USAGE)" % (
            op, hl if hl != "namespace, pod" else "", g.c(["sum", "max", "count", "avg"]), "")
    if x < 0.9:
        return "%s by (Hostname) (DCGM_FI_DEV_FB_USED) %s on (Hostname) group_right(%s) DCGM_FI_DEV_FB_FREE" % (
            g.c(["sum", "max", "min"]), op, g.c(["", "gpu"]))
    return g.c(['requests_total / ignoring (code) group_left sum without (code) (requests_total)',
                'rate(requests_total[5m]) / ignoring (code) group_left sum without (code) (rate(requests_total[5m]))',
                'DCGM_FI_DEV_GPU_UTIL * on (gpu, Hostname) group_left (modelName) (DCGM_FI_DEV_SM_CLOCK * 0 + 1)',
                'request_duration_seconds_bucket / on (instance) group_left request_duration_seconds_count',
                'sum by (instance) (request_duration_seconds_count) / on (instance) group_right request_duration_seconds_bucket'])


def _fam_modifiers(g):
    fn = g.c(["rate", "avg_over_time", "max_over_time", "changes", "increase", "delta", "last_over_time"])
    sel = g.counter() if fn in ("rate", "increase") else g.gauge()
    mod = g.c([" offset %s" % g.c(OFFSETS), " @ start()", " @ end()", " @ %d" % (g.t0_s + g.c([900, 3600, 6000])),
               " @ %d offset %s" % (g.t0_s + 4000, g.c(OFFSETS)), " offset %s @ end()" % g.c(OFFSETS),
               " offset -%s" % g.c(["5m", "10m", "30s"]), " @ %d.5" % (g.t0_s + 1800)])
    if g.r.random() < 0.35:
        return "%s%s" % (g.gauge(), mod)
    if g.r.random() < 0.15:
        return "sum by (Hostname) (%s%s) - sum by (Hostname) (%s)" % (g.gauge(["DCGM_FI_DEV_POWER_USAGE"]), mod,
                                                                      "DCGM_FI_DEV_POWER_USAGE")
    return "%s(%s[%s]%s)" % (fn, sel, g.rng(), mod)


def _fam_subquery(g):
    outer = g.cyc(["max_over_time", "min_over_time", "avg_over_time", "sum_over_time", "count_over_time", "rate",
                   "deriv", "quantile_over_time", "stddev_over_time", "last_over_time", "changes", "delta"])
    inner = g.c(["rate(%s[%s])" % (g.counter(), g.c(["1m", "5m"])), g.gauge(), "sum by (Hostname) (%s)" % g.gauge(),
                 "avg_over_time(%s[5m])" % g.gauge(), "max(%s)" % g.gauge(), "%s > 50" % g.gauge(),
                 "irate(%s[2m])" % g.counter()])
    rg = g.c(["5m", "10m", "30m", "1h"])
    step = g.c(STEPS + [""])
    if g.r.random() < 0.2:  # a subquery inside a subquery
        fn = g.c(["avg_over_time", "max_over_time", "rate", "deriv"])
        inner = "%s(%s[%s:%s])" % (fn, g.counter() if fn == "rate" else
                                   g.c([g.gauge(), "sum(%s)" % g.gauge(), "rate(%s[5m])" % g.counter()]),
                                   g.c(["5m10s", "2m50s", "10m10s"]), g.c(["30s", "1m", "20s", ""]))
    sub = "%s[%s:%s]%s" % (inner if " " not in inner or inner.endswith(")") else "(%s)" % inner, rg, step, g.mod())
    if outer == "quantile_over_time":
        return "quantile_over_time(0.9, %s)" % sub
    if outer == "rate":
        sub = "%s[%s:%s]" % (g.c(["requests_total", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"]), rg, step)
    return "%s(%s)" % (outer, sub)


def _fam_nested(g):
    return g.vec(0)


def _fam_literals(g):
    return g.c(['"hello"', "42", "-1.5e3", "Inf", "-Inf", "NaN", "0x1F", "1 + 2 * 3", "(1 + 2) * 3", "2 ^ 3 ^ 2",
                "-2 ^ 2", "1 > bool 0", "5 % 3", "-5 % 3", "1 / 0", "-1 / 0", "0 / 0", "time()", "pi()",
                "scalar(vector(7))", "vector(1) + vector(2)", "1e308 * 10", ".5", "5.", "1e-310 * 1", "0.1 + 0.2"])


# ---------------------------------------------------------------- coverage

FUNCTIONS = ("abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes clamp "
             "clamp_max clamp_min cos cosh count_over_time days_in_month day_of_month day_of_week day_of_year deg "
             "delta deriv exp floor histogram_quantile holt_winters hour idelta increase irate label_replace "
             "label_join last_over_time ln log10 log2 max_over_time min_over_time minute month pi predict_linear "
             "present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort sort_desc sqrt "
             "stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp vector year").split()
AGGREGATIONS = "sum avg min max count group stddev stdvar topk bottomk quantile count_values".split()
OPERATORS = ["+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<="]


def coverage_items():
    """{name: predicate(query)}: what the valid corpus must use at least once."""
    items = {}
    for f in FUNCTIONS + AGGREGATIONS:
        items[f + "()"] = re.compile(r"(?<![\w:])%s\s*(\(|by|without)" % f).search
    for a in AGGREGATIONS:
        for g in ("by", "without"):
            items["%s %s" % (a, g)] = re.compile(
                r"(?<![\w:])%s\s*(%s\s*\(|\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\s*%s\b)" % (a, g, g)).search
    for o in OPERATORS:
        items["vector " + o] = (lambda o: lambda q: (" %s " % o) in q)(o)
    for o in OPERATORS[7:]:
        items[o + " bool"] = (lambda o: lambda q: (" %s bool " % o) in q)(o)
    for k in ("and", "or", "unless", "on (", "ignoring (", "group_left", "group_right", " offset ", " offset -",
              "@ start()", "@ end()"):
        items[k.strip()] = (lambda k: lambda q: k in q)(k)
    items["@ <number>"] = re.compile(r"@ \d").search
    items["subquery"] = re.compile(r"\[\w+:\w+\]").search
    items["subquery, default step"] = re.compile(r"\[\w+:\]").search
    items["nested subquery"] = re.compile(r"\[\w+:\w*\].*\[\w+:\w*\]").search
    return items


def coverage(queries):
    """Names of coverage_items() that none of the queries uses."""
    return [k for k, pred in coverage_items().items() if not any(pred(q) for q in queries)]


# ---------------------------------------------------------------- evaluation times

def modes(t0_s):
    """(name, kind, args): the evaluations of every query: three instant times and two ranges,
    all whole seconds from a UTC midnight t0 (promql_data.t0_for_now)."""
    return [("instant@47m13s", "i", (t0_s + 47 * 60 + 13,)),
            ("instant@1h32m29s", "i", (t0_s + 92 * 60 + 29,)),
            ("instant@2h3m41s", "i", (t0_s + 123 * 60 + 41,)),
            ("range 30m-1h30m/60s", "r", (t0_s + 30 * 60, t0_s + 90 * 60, 60)),
            ("range 55m7s-1h55m7s/47s", "r", (t0_s + 55 * 60 + 7, t0_s + 115 * 60 + 7, 47))]


_UNIT = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000, "w": 604800000, "y": 31536000000}
_SUBQ = re.compile(r"\[([0-9a-z]+):([0-9a-z]*)\]")
_MOD = re.compile(r"\s*(?:offset\s+(-?[0-9a-z]+)|@\s*(start\(\)|end\(\)|-?[0-9.]+))")
DEFAULT_SUBQUERY_STEP_MS = 60000  # Prometheus' default evaluation interval (1m)


def dur_ms(d):
    return sum(int(n) * _UNIT[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", d))


def _subqueries(q):
    """[(pos of '[', start of the inner expression, range ms, step ms, offset ms, @ spec)]"""
    out = []
    for m in _SUBQ.finditer(q):
        i = m.start()
        j = i - 1
        if q[j] in ")}":
            close, open_ = q[j], "(" if q[j] == ")" else "{"
            depth = 0
            while j >= 0:
                if q[j] == close:
                    depth += 1
                elif q[j] == open_:
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
        while j > 0 and (q[j - 1].isalnum() or q[j - 1] in "_:"):
            j -= 1
        off, at, k = 0, None, m.end()
        while True:
            mm = _MOD.match(q, k)
            if not mm:
                break
            if mm.group(1):
                off += -dur_ms(mm.group(1)[1:]) if mm.group(1).startswith("-") else dur_ms(mm.group(1))
            else:
                at = mm.group(2)
            k = mm.end()
        out.append((i, j, dur_ms(m.group(1)), dur_ms(m.group(2)) if m.group(2) else DEFAULT_SUBQUERY_STEP_MS, off, at))
    return out


def boundary_safe(q, mode):
    """False when some subquery of q, evaluated in this mode, has an evaluation point exactly on
    the lower edge of a window: Prometheus 2.42 includes that point ([t - range, t]) and
    Prometheus 3 does not ((t - range, t]).  Samples are never on whole seconds, so selectors
    never meet this; subquery points are multiples of their step and can."""
    subs = [x for x in _subqueries(q) if x[3] > 0]  # a zero step is an error in both
    if not subs:
        return True
    _, kind, args = mode
    if kind == "i":
        times, qs, qe = [args[0] * 1000], args[0] * 1000, args[0] * 1000
    else:
        qs, qe = args[0] * 1000, args[1] * 1000
        times = list(range(qs, qe + 1, args[2] * 1000))

    def points(sub, outer):
        _, _, rng, step, off, at = sub
        pts = set()
        for t in outer:
            te = t if at is None else qs if at == "start()" else qe if at == "end()" else round(float(at) * 1000)
            te -= off
            lo = te - rng
            if lo % step == 0:
                return None
            first = lo + (step - lo % step)
            pts.update(range(first, te + 1, step))
        return sorted(pts)

    def enclosing(b):
        inside = [a for a in subs if a is not b and a[1] <= b[0] < a[0]]
        return min(inside, key=lambda a: a[0] - a[1]) if inside else None

    memo = {}

    def pts_of(sub):
        if sub[0] not in memo:
            enc = enclosing(sub)
            outer = times if enc is None else pts_of(enc)
            memo[sub[0]] = None if outer is None else points(sub, outer)
        return memo[sub[0]]

    return all(pts_of(sub) is not None for sub in subs)


# ---------------------------------------------------------------- hand-written

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "promql")


def fixture(name):
    """The queries of tests/fixtures/promql/NAME.promql: one per line, '#' lines are comments."""
    with open(os.path.join(FIXTURES, name + ".promql")) as f:
        return [ln.strip() for ln in f if ln.strip() and not ln.lstrip().startswith("#")]


DCGM_DASHBOARD = fixture("dcgm_dashboard")
GPU_ALERTS = fixture("gpu_alerts")
LABEL_VALUES = fixture("label_values")
REGEX = fixture("regex")
IDIOMS = fixture("idioms")
ROLLUPS = fixture("rollups")
ERRORS = fixture("errors")

# family -> (generator or hand-written list, how many distinct queries)
FAMILIES = [
    ("selectors", _fam_selector, 40),
    ("rate_deriv", _fam_rate, 70),
    ("over_time", _fam_over_time, 70),
    ("holt_winters", _fam_holt_winters, 10),
    ("math", _fam_math, 60),
    ("time_scalar_vector", _fam_time, 35),
    ("label_replace_join", _fam_labels, 25),
    ("absent", _fam_absent, 11),
    ("histogram_quantile", _fam_histogram, 30),
    ("sort", _fam_sort, 20),
    ("aggregation", _fam_aggregation, 70),
    ("aggregation_params", _fam_aggregation_params, 50),
    ("arithmetic", _fam_arith, 50),
    ("comparison", _fam_comparison, 40),
    ("set_operators", _fam_set, 30),
    ("vector_matching", _fam_matching, 30),
    ("offset_at", _fam_modifiers, 30),
    ("subquery", _fam_subquery, 40),
    ("nested", _fam_nested, 50),
    ("literals", _fam_literals, 20),
    ("dcgm_dashboard", DCGM_DASHBOARD, None),
    ("gpu_alerts", GPU_ALERTS, None),
    ("label_values", LABEL_VALUES, None),
    ("regex", REGEX, None),
    ("idioms", IDIOMS, None),
    ("rollups", ROLLUPS, None),
    ("errors", ERRORS, None),
]


def corpus(t0_s, seed=DEFAULT_SEED):
    """[entry] in family order; deterministic for a seed and t0 (a UTC midnight).  Each entry's
    "modes" are the indices of modes(t0_s) it is compared in: all of them, except for a query with
    a subquery whose evaluation points fall on a window's edge in that mode (boundary_safe); a
    generated query with a subquery needs an instant and a range mode left, or is drawn again."""
    ms = modes(t0_s)
    out, seen = [], set()
    for fam, gen, want in FAMILIES:
        g = Gen("%d/%s" % (seed, fam), t0_s)  # a family's queries do not depend on the others' sizes
        items = []
        if isinstance(gen, list):
            items = [{"q": q} for q in gen]
        else:
            tries = 0
            while len(items) < want and tries < want * 200:
                tries += 1
                e = gen(g)
                e = {"q": e} if isinstance(e, str) else e
                if e["q"] in seen:
                    continue
                seen.add(e["q"])
                e["modes"] = [i for i, m in enumerate(ms) if boundary_safe(e["q"], m)]
                kinds = {ms[i][1] for i in e["modes"]}
                if kinds != {"i", "r"}:
                    continue
                items.append(e)
            if len(items) < want:
                raise RuntimeError("family %s: only %d distinct queries" % (fam, len(items)))
        for e in items:
            e.setdefault("modes", [i for i, m in enumerate(ms) if boundary_safe(e["q"], m)])
            e.setdefault("strata", e["q"])
            e.setdefault("order", False)
            e["family"] = fam
            out.append(e)
    return out


def families():
    return [f for f, _, _ in FAMILIES]


if __name__ == "__main__":
    import sys
    import time
    for e in corpus(int(sys.argv[1]) if len(sys.argv) > 1 else (int(time.time()) - 7800) // 86400 * 86400):
        print("%-20s %-9s %s" % (e["family"], "".join(str(i) for i in e["modes"]), e["q"]))
