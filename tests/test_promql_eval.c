/*
 * test_promql_eval.c: the PromQL evaluator (promql_eval, api/promql/eval*.c)
 * over a real tsdb in a temp dir, read through the read seam as the daemon
 * reads: selectors with lookback, staleness and the left-open windows of
 * Prometheus 3, offset and @, range-query stepping, subqueries, every
 * aggregation, vector matching and its errors, set operators, label
 * functions, histogram_quantile, absent, sort, timestamp, tenant isolation
 * and the read budget.  Expressions are built as trees (the shape the parser
 * produces, promql_internal.h); every expected value is worked out from the
 * data below.
 */
#include "test_helpers.h"

#include <math.h>

#include "ingest.h"
#include "promql.h"
#include "promql_internal.h"
#include "read.h"
#include "strata_fmt.h"
#include "strata_log.h"
#include "tsdb.h"

/* B: the data's origin, on a whole hour (subquery steps align to the epoch). */
#define B   ((int64_t)300 * 3600 * 1000)
#define SEC 1000
#define MIN (60 * SEC)

static char *g_dir;
static tsdb_t *g_db;
static api_read_source_t *g_src;
static strata_arena_t *A;

/* ---- data ----------------------------------------------------------------------------- */

static void put(const char *tenant, const char *const *kv, const tsdb_sample_t *s, size_t ns)
{
    tsdb_label_t l[16];
    size_t n = 0;
    for (; kv[2 * n]; n++) l[n] = (tsdb_label_t){ kv[2 * n], kv[2 * n + 1] };
    l[n++] = (tsdb_label_t){ INGEST_TENANT_LABEL, tenant };
    /* sorted by name, as tsdb_append wants */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(l[j - 1].name, l[j].name) > 0; j--) {
            tsdb_label_t t = l[j];
            l[j] = l[j - 1];
            l[j - 1] = t;
        }
    tsdb_series_input_t in = { l, n, s, ns };
    tsdb_append_result_t res;
    assert_ok(tsdb_append(g_db, &in, 1, &res));
    assert_int_equal(res.appended, ns);
}

/* Samples every `every` ms from B + from, values v0 + i * dv. */
static void put_line(const char *tenant, const char *const *kv, int64_t from, int64_t every, size_t n,
                     double v0, double dv)
{
    tsdb_sample_t s[128];
    for (size_t i = 0; i < n; i++)
        s[i] = (tsdb_sample_t){ B + from + (int64_t)i * every, v0 + (double)i * dv };
    put(tenant, kv, s, n);
}

static int group_setup(void **state)
{
    (void)state;
    strata_log_set_level(STRATA_LOG_ERROR);
    g_dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = g_dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    if (tsdb_open(&o, &g_db)) return -1;
    if (api_read_source_tsdb(g_db, &g_src)) return -1;

    /* gauges every minute from B to B+10m: a/1 = 0..10, a/2 = 0,10,..100, b/2 = 3 */
    put_line("1", (const char *[]){ "__name__", "gauge", "job", "a", "inst", "1", NULL }, 0, MIN, 11, 0, 1);
    put_line("1", (const char *[]){ "__name__", "gauge", "job", "a", "inst", "2", NULL }, 0, MIN, 11, 0, 10);
    put_line("1", (const char *[]){ "__name__", "gauge", "job", "b", "inst", "2", NULL }, 0, MIN, 11, 3, 0);
    /* b/1: 5 at 0, 1m, 2m; a stale marker at 2m30s; then a gap until 7 at 10m */
    tsdb_sample_t b1[] = { { B, 5 },
                           { B + MIN, 5 },
                           { B + 2 * MIN, 5 },
                           { B + 150 * SEC, test_bits_double(TSDB_STALE_NAN_BITS) },
                           { B + 10 * MIN, 7 } };
    put("1", (const char *[]){ "__name__", "gauge", "job", "b", "inst", "1", NULL }, b1, 5);
    /* a counter every 10 s from B to B+10m: k for k < 30, then reset: k - 30 */
    tsdb_sample_t c[61];
    for (int k = 0; k <= 60; k++) c[k] = (tsdb_sample_t){ B + k * 10 * SEC, k < 30 ? k : k - 30 };
    put("1", (const char *[]){ "__name__", "cnt_total", "job", "a", NULL }, c, 61);
    /* info series for group_left */
    put_line("1", (const char *[]){ "__name__", "info", "job", "a", "owner", "alice", NULL }, 0, MIN, 11, 1,
             0);
    put_line("1", (const char *[]){ "__name__", "info", "job", "b", "owner", "bob", NULL }, 0, MIN, 11, 1, 0);
    /* classic histogram buckets at 10m: 10 <= 0.1, 30 <= 1, 40 in all */
    put_line("1", (const char *[]){ "__name__", "lat_bucket", "job", "a", "le", "0.1", NULL }, 10 * MIN, MIN,
             1, 10, 0);
    put_line("1", (const char *[]){ "__name__", "lat_bucket", "job", "a", "le", "1", NULL }, 10 * MIN, MIN, 1,
             30, 0);
    put_line("1", (const char *[]){ "__name__", "lat_bucket", "job", "a", "le", "+Inf", NULL }, 10 * MIN, MIN,
             1, 40, 0);
    /* dense: every 10 s for 3h, integers, cut into a block with the rest so
     * that reads come from block pages and stored rollups */
    {
        tsdb_sample_t d[1080];
        for (int i = 0; i < 1080; i++) d[i] = (tsdb_sample_t){ B + i * 10 * SEC, (i * 7) % 13 };
        d[500].v = test_bits_double(TSDB_STALE_NAN_BITS);
        put("1", (const char *[]){ "__name__", "dense", "job", "r", NULL }, d, 1080);
        /* one with a NaN: its min/max come from raw samples */
        d[500].v = NAN;
        put("1", (const char *[]){ "__name__", "dense", "job", "nan", NULL }, d, 1080);
    }
    /* tenant 2: the same names, other values, and a name of its own */
    put_line("2", (const char *[]){ "__name__", "gauge", "job", "a", "inst", "1", NULL }, 0, MIN, 11, 1000,
             0);
    put_line("2", (const char *[]){ "__name__", "secret", NULL }, 0, MIN, 11, 42, 0);
    if (tsdb_cut_head(g_db)) return -1;
    return 0;
}

/* The same store without rollups: a backend over tsdb that keeps none, so
 * the evaluator takes the raw path (the reference of the rollup path). */
static int raw_select(void *b, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt, unsigned flags,
                      int64_t deadline_ms, void **set)
{
    (void)flags;
    return tsdb_select_until(b, m, n, mint, maxt, deadline_ms, (tsdb_series_set_t **)set);
}
static int raw_next(void *set) { return tsdb_series_set_next(set); }
static const tsdb_label_t *raw_labels(void *set, size_t *n) { return tsdb_series_set_labels(set, n); }
static int raw_samples(void *set, const tsdb_sample_t **s, size_t *n)
{
    return tsdb_series_set_samples(set, s, n);
}
static void raw_free(void *set) { tsdb_series_set_free(set); }
static const api_read_ops_t raw_ops = { raw_select, raw_next, raw_labels, raw_samples, NULL,
                                        raw_free,   NULL,     NULL,       NULL };

static int group_teardown(void **state)
{
    (void)state;
    api_read_source_free(g_src);
    tsdb_close(g_db);
    test_tmpdir_free(g_dir);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    A = strata_arena_new(0);
    strata_arena_set_cap(A, 256u << 20);
    return A ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    strata_arena_free(A);
    return 0;
}

/* ---- trees ---------------------------------------------------------------------------- */

static promql_node_t *node(promql_node_kind_t k, promql_type_t t)
{
    promql_node_t *n = strata_arena_calloc(A, 1, sizeof *n);
    n->kind = k;
    n->type = t;
    return n;
}

static promql_node_t *NUM(double v)
{
    promql_node_t *n = node(PROMQL_NUMBER, PROMQL_TYPE_SCALAR);
    n->u.number = v;
    return n;
}

static promql_node_t *STR(const char *s)
{
    promql_node_t *n = node(PROMQL_STRING_LIT, PROMQL_TYPE_STRING);
    n->u.string = s;
    return n;
}

/* SEL("gauge", "job=a", "inst!=2", "x=~re", "y!~re", NULL); name may be NULL */
static promql_node_t *SEL(const char *name, ...)
{
    promql_node_t *n = node(PROMQL_VECTOR_SEL, PROMQL_TYPE_VECTOR);
    promql_matcher_t *m = strata_arena_calloc(A, 16, sizeof *m);
    size_t k = 0;
    if (name) m[k++] = (promql_matcher_t){ "__name__", name, TSDB_MATCH_EQ };
    va_list ap;
    va_start(ap, name);
    for (const char *s; (s = va_arg(ap, const char *)) != NULL;) {
        const char *op = strpbrk(s, "=!");
        char *nm = strata_arena_strndup(A, s, (size_t)(op - s));
        int type = TSDB_MATCH_EQ;
        size_t skip = 1;
        if (op[0] == '!' && op[1] == '~')
            type = TSDB_MATCH_NRE, skip = 2;
        else if (op[0] == '!')
            type = TSDB_MATCH_NEQ, skip = 2;
        else if (op[1] == '~')
            type = TSDB_MATCH_RE, skip = 2;
        m[k++] = (promql_matcher_t){ nm, op + skip, type };
    }
    va_end(ap);
    n->u.sel.name = name;
    n->u.sel.matchers = m;
    n->u.sel.nmatchers = k;
    return n;
}

static promql_node_t *OFFSET(promql_node_t *n, int64_t off)
{
    n->u.sel.offset_ms = off;
    return n;
}

static promql_node_t *AT(promql_node_t *n, promql_at_t at, int64_t ms)
{
    n->u.sel.at = at;
    n->u.sel.at_ms = ms;
    return n;
}

static promql_node_t *RANGE(promql_node_t *vs, int64_t r)
{
    promql_node_t *n = node(PROMQL_MATRIX_SEL, PROMQL_TYPE_MATRIX);
    n->u.matrix.vector = vs;
    n->u.matrix.range_ms = r;
    return n;
}

static promql_node_t *SUBQ(promql_node_t *e, int64_t r, int64_t step, int64_t off)
{
    promql_node_t *n = node(PROMQL_SUBQUERY, PROMQL_TYPE_MATRIX);
    n->u.subquery.expr = e;
    n->u.subquery.range_ms = r;
    n->u.subquery.step_ms = step;
    n->u.subquery.offset_ms = off;
    return n;
}

static promql_node_t *CALL(const char *fname, promql_type_t ret, size_t nargs, ...)
{
    promql_node_t *n = node(PROMQL_CALL, ret);
    promql_function_t *f = strata_arena_calloc(A, 1, sizeof *f);
    f->name = fname;
    f->return_type = ret;
    n->u.call.func = f;
    n->u.call.args = strata_arena_calloc(A, nargs + 1, sizeof *n->u.call.args);
    n->u.call.nargs = nargs;
    va_list ap;
    va_start(ap, nargs);
    for (size_t i = 0; i < nargs; i++) n->u.call.args[i] = va_arg(ap, promql_node_t *);
    va_end(ap);
    return n;
}
#define FV(name, ...)                                                                                    \
    CALL(name, PROMQL_TYPE_VECTOR, sizeof((promql_node_t *[]){ __VA_ARGS__ }) / sizeof(promql_node_t *), \
         __VA_ARGS__)

static promql_labels_t LABELS(const char *const *names)
{
    promql_labels_t l = { (const char **)names, 0 };
    while (names && names[l.n]) l.n++;
    return l;
}

/* AGG(op, expr, param, without, (const char *[]){"job", NULL}) */
static promql_node_t *AGG(promql_aggop_t op, promql_node_t *e, promql_node_t *param, int without,
                          const char *const *by)
{
    promql_node_t *n = node(PROMQL_AGGREGATE, PROMQL_TYPE_VECTOR);
    n->u.agg.op = op;
    n->u.agg.expr = e;
    n->u.agg.param = param;
    n->u.agg.without = without;
    n->u.agg.grouping = LABELS(by);
    return n;
}

static promql_node_t *BIN(promql_binop_t op, promql_node_t *l, promql_node_t *r)
{
    int vec = l->type == PROMQL_TYPE_VECTOR || r->type == PROMQL_TYPE_VECTOR;
    promql_node_t *n = node(PROMQL_BINARY, vec ? PROMQL_TYPE_VECTOR : PROMQL_TYPE_SCALAR);
    n->u.binary.op = op;
    n->u.binary.lhs = l;
    n->u.binary.rhs = r;
    n->u.binary.card = op >= PROMQL_OP_AND ? PROMQL_CARD_MANY_TO_MANY : PROMQL_CARD_ONE_TO_ONE;
    return n;
}

static promql_node_t *MATCH(promql_node_t *n, int on, const char *const *names, promql_card_t card,
                            const char *const *include)
{
    n->u.binary.on = on;
    n->u.binary.matching = LABELS(names);
    n->u.binary.card = card;
    n->u.binary.include = LABELS(include);
    return n;
}

/* ---- running and printing ------------------------------------------------------------- */

static promql_result_t R;
static char g_msg[512];

static int run(promql_node_t *e, int64_t start, int64_t end, int64_t step, api_read_budget_t *b,
               int32_t tenant)
{
    promql_engine_opts_t o = { .src = g_src, .tenant = tenant, .budget = b };
    return promql_eval(&o, e, start, end, step, A, &R, g_msg, sizeof g_msg);
}

static void put_num(char *out, size_t cap, double v)
{
    char b[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(v, b, sizeof b);
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "%s", b);
}

/* "name{a=\"b\"} v;" per series; a matrix: "v@t,v@t" with t in seconds from B. */
static const char *render(void)
{
    static char out[8192];
    out[0] = 0;
    if (R.type == PROMQL_TYPE_SCALAR) {
        put_num(out, sizeof out, R.scalar);
        return out;
    }
    for (size_t i = 0; i < R.nseries; i++) {
        const promql_series_t *s = &R.series[i];
        size_t len = strlen(out);
        const char *name = NULL;
        for (size_t j = 0; j < s->nlabels; j++)
            if (strcmp(s->labels[j].name, "__name__") == 0) name = s->labels[j].value;
        len += (size_t)snprintf(out + len, sizeof out - len, "%s{", name ? name : "");
        int first = 1;
        for (size_t j = 0; j < s->nlabels; j++) {
            if (strcmp(s->labels[j].name, "__name__") == 0) continue;
            len += (size_t)snprintf(out + len, sizeof out - len, "%s%s=\"%s\"", first ? "" : ",",
                                    s->labels[j].name, s->labels[j].value);
            first = 0;
        }
        snprintf(out + len, sizeof out - len, "} ");
        for (size_t j = 0; j < s->npoints; j++) {
            put_num(out, sizeof out, s->points[j].v);
            if (R.type == PROMQL_TYPE_MATRIX) {
                len = strlen(out);
                snprintf(out + len, sizeof out - len, "@%lld%s", (long long)((s->points[j].t - B) / SEC),
                         j + 1 < s->npoints ? "," : "");
            }
        }
        len = strlen(out);
        snprintf(out + len, sizeof out - len, ";");
    }
    return out;
}

/* An instant query at B + at_s seconds, tenant 1, printed. */
static const char *Q(promql_node_t *e, int64_t at_s)
{
    int rc = run(e, B + at_s * SEC, B + at_s * SEC, 0, NULL, 1);
    if (rc) fail_msg("promql_eval: %d %s", rc, g_msg);
    return render();
}

/* A range query, printed. */
static const char *QR(promql_node_t *e, int64_t from_s, int64_t to_s, int64_t step_s)
{
    int rc = run(e, B + from_s * SEC, B + to_s * SEC, step_s * SEC, NULL, 1);
    if (rc) fail_msg("promql_eval: %d %s", rc, g_msg);
    assert_int_equal(R.type, PROMQL_TYPE_MATRIX);
    return render();
}

/* The value of an instant query's one series, whose labels print as want. */
static double QV(promql_node_t *e, int64_t at_s, const char *want)
{
    Q(e, at_s);
    assert_int_equal(R.nseries, 1);
    char got[512];
    snprintf(got, sizeof got, "%s", render());
    *strchr(got, ' ') = 0;
    assert_string_equal(got, want);
    return R.series[0].points[0].v;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_selector_lookback_and_staleness(void **state)
{
    (void)state;
    /* at 5m: b/1's newest sample is the stale marker, so it is absent */
    assert_string_equal(
        Q(SEL("gauge", NULL), 300),
        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"2\",job=\"b\"} 3;");
    /* at 2m10s: 5 from 2m, before the marker */
    assert_string_equal(Q(SEL("gauge", "job=b", "inst=1", NULL), 130), "gauge{inst=\"1\",job=\"b\"} 5;");
    /* lookback (t - 5m, t]: a sample exactly 5m old is out, 4m59.999s old is in */
    assert_string_equal(Q(SEL("gauge", "job=a", "inst=1", NULL), 900), "");
    int rc = run(SEL("gauge", "job=a", "inst=1", NULL), B + 900 * SEC - 1, B + 900 * SEC - 1, 0, NULL, 1);
    assert_ok(rc);
    assert_string_equal(render(), "gauge{inst=\"1\",job=\"a\"} 10;");
    /* regex and negative matchers */
    assert_string_equal(Q(SEL("gauge", "job=~a|c", "inst!=2", NULL), 60), "gauge{inst=\"1\",job=\"a\"} 1;");
    assert_string_equal(Q(SEL(NULL, "__name__=~g.*", "inst!~1|3", NULL), 60),
                        "gauge{inst=\"2\",job=\"a\"} 10;gauge{inst=\"2\",job=\"b\"} 3;");
    /* (?i) through the regex translation */
    assert_string_equal(Q(SEL("gauge", "job=~(?i)B", "inst=2", NULL), 60), "gauge{inst=\"2\",job=\"b\"} 3;");
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    assert_string_equal(Q(SEL("secret", NULL), 300), "");
    assert_string_equal(Q(SEL("gauge", "job=a", "inst=1", NULL), 300), "gauge{inst=\"1\",job=\"a\"} 5;");
    /* tenant 2 sees its own, and never the tenant label */
    assert_ok(run(SEL("gauge", "job=a", NULL), B + 300 * SEC, B + 300 * SEC, 0, NULL, 2));
    assert_string_equal(render(), "gauge{inst=\"1\",job=\"a\"} 1000;");
    /* a matcher on the tenant label is refused, not answered */
    assert_err(run(SEL("gauge", "__tenant__=2", NULL), B, B, 0, NULL, 1), STRATA_EINVAL);
}

static void test_offset_and_at(void **state)
{
    (void)state;
    assert_string_equal(Q(OFFSET(SEL("gauge", "job=a", "inst=1", NULL), 2 * MIN), 600),
                        "gauge{inst=\"1\",job=\"a\"} 8;");
    /* @ fixes the time of every step */
    assert_string_equal(
        QR(AT(SEL("gauge", "job=a", "inst=1", NULL), PROMQL_AT_TIME, B + 2 * MIN), 0, 240, 120),
        "gauge{inst=\"1\",job=\"a\"} 2@0,2@120,2@240;");
    /* @ end() with an offset */
    assert_string_equal(
        QR(OFFSET(AT(SEL("gauge", "job=a", "inst=1", NULL), PROMQL_AT_END, 0), MIN), 0, 240, 120),
        "gauge{inst=\"1\",job=\"a\"} 3@0,3@120,3@240;");
    assert_string_equal(QR(AT(SEL("gauge", "job=a", "inst=1", NULL), PROMQL_AT_START, 0), 60, 180, 60),
                        "gauge{inst=\"1\",job=\"a\"} 1@60,1@120,1@180;");
}

static void test_range_query_stepping(void **state)
{
    (void)state;
    /* b/1: present until the marker, absent through the gap, back at 10m */
    assert_string_equal(QR(SEL("gauge", "job=b", "inst=1", NULL), 0, 600, 120),
                        "gauge{inst=\"1\",job=\"b\"} 5@0,5@120,7@600;");
    /* steps between samples take the newest within the lookback; after the
     * last sample 5m of lookback, then nothing */
    assert_string_equal(QR(SEL("gauge", "job=a", "inst=1", NULL), 570, 930, 90),
                        "gauge{inst=\"1\",job=\"a\"} 9@570,10@660,10@750,10@840;");
    /* a matrix sorted by labels, the tenant label never shown */
    assert_string_equal(QR(SEL("gauge", "inst=2", NULL), 0, 60, 60),
                        "gauge{inst=\"2\",job=\"a\"} 0@0,10@60;gauge{inst=\"2\",job=\"b\"} 3@0,3@60;");
    /* a scalar expression is one series without labels */
    assert_string_equal(QR(BIN(PROMQL_OP_ADD, NUM(1), NUM(2)), 0, 120, 60), "{} 3@0,3@60,3@120;");
    assert_string_equal(QR(CALL("time", PROMQL_TYPE_SCALAR, 0), 0, 60, 60), "{} 1080000@0,1080060@60;");
    /* a range vector cannot be a range query's result */
    assert_err(run(RANGE(SEL("gauge", NULL), MIN), B, B + MIN, MIN, NULL, 1), STRATA_EINVAL);
    assert_string_equal(
        g_msg, "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector");
    /* too many points per series */
    promql_engine_opts_t o = { .src = g_src, .tenant = 1, .max_points_per_series = 10 };
    assert_err(promql_eval(&o, SEL("gauge", NULL), B, B + 10 * MIN, MIN, A, &R, g_msg, sizeof g_msg),
               STRATA_EEXEC);
}

static void test_range_vector_result(void **state)
{
    (void)state;
    /* (t - 3m, t]: the sample at 7m is out; stale markers are dropped */
    assert_string_equal(Q(RANGE(SEL("gauge", "job=a", "inst=1", NULL), 3 * MIN), 600),
                        "gauge{inst=\"1\",job=\"a\"} 8@480,9@540,10@600;");
    assert_string_equal(Q(RANGE(SEL("gauge", "job=b", "inst=1", NULL), 10 * MIN), 600),
                        "gauge{inst=\"1\",job=\"b\"} 5@60,5@120,7@600;");
}

static void test_range_functions(void **state)
{
    (void)state;
    promql_node_t *a1 = SEL("gauge", "job=a", "inst=1", NULL);
    assert_string_equal(Q(FV("sum_over_time", RANGE(a1, 3 * MIN)), 600), "{inst=\"1\",job=\"a\"} 27;");
    /* last_over_time keeps the name */
    assert_string_equal(Q(FV("last_over_time", RANGE(a1, 3 * MIN)), 600), "gauge{inst=\"1\",job=\"a\"} 10;");
    /* the marker is not a sample; the window is left-open */
    assert_string_equal(Q(FV("count_over_time", RANGE(SEL("gauge", "job=b", "inst=1", NULL), 10 * MIN)), 600),
                        "{inst=\"1\",job=\"b\"} 3;");
    /* increase over (9m, 10m]: 25..30, extrapolated by 60/50 */
    assert_true(fabs(QV(FV("increase", RANGE(SEL("cnt_total", NULL), MIN)), 600, "{job=\"a\"}") - 6) < 1e-12);
    assert_true(fabs(QV(FV("rate", RANGE(SEL("cnt_total", NULL), MIN)), 600, "{job=\"a\"}") - 0.1) < 1e-12);
    /* across the reset at 5m: 28, 29, 0, 1, 2, 3 -> 4, x 1.2 */
    assert_true(fabs(QV(FV("increase", RANGE(SEL("cnt_total", NULL), MIN)), 330, "{job=\"a\"}") - 4.8) <
                1e-12);
    /* stepped: one read, a sliding window per series */
    assert_string_equal(QR(FV("max_over_time", RANGE(a1, 2 * MIN)), 0, 600, 300),
                        "{inst=\"1\",job=\"a\"} 0@0,5@300,10@600;");
}

static void test_subqueries(void **state)
{
    (void)state;
    promql_node_t *a1 = SEL("gauge", "job=a", "inst=1", NULL);
    /* steps on multiples of 2m within (5m, 10m]: 6m, 8m, 10m */
    assert_string_equal(Q(FV("sum_over_time", SUBQ(a1, 5 * MIN, 2 * MIN, 0)), 600),
                        "{inst=\"1\",job=\"a\"} 24;");
    /* offset 1m: (4m, 9m] -> 6m, 8m */
    assert_string_equal(Q(FV("sum_over_time", SUBQ(a1, 5 * MIN, 2 * MIN, MIN)), 600),
                        "{inst=\"1\",job=\"a\"} 14;");
    /* the default step is 1m: (7m, 10m] -> 8, 9, 10 */
    assert_string_equal(Q(FV("sum_over_time", SUBQ(a1, 3 * MIN, 0, 0)), 600), "{inst=\"1\",job=\"a\"} 27;");
    /* a subquery as an instant query's result, at the inner steps */
    assert_string_equal(Q(SUBQ(a1, 5 * MIN, 2 * MIN, 0), 600),
                        "gauge{inst=\"1\",job=\"a\"} 6@360,8@480,10@600;");
    /* nested: max over 4m (step 2m) of sum_over_time over 2m (step 1m) */
    promql_node_t *inner = FV("sum_over_time", SUBQ(a1, 2 * MIN, MIN, 0));
    assert_string_equal(Q(FV("max_over_time", SUBQ(inner, 4 * MIN, 2 * MIN, 0)), 600),
                        "{inst=\"1\",job=\"a\"} 19;");
    /* stepped outer query */
    assert_string_equal(QR(FV("sum_over_time", SUBQ(a1, 2 * MIN, MIN, 0)), 120, 240, 60),
                        "{inst=\"1\",job=\"a\"} 3@120,5@180,7@240;");
}

static void test_aggregations(void **state)
{
    (void)state;
    /* at 5m: a/1 = 5, a/2 = 50, b/2 = 3 (b/1 is stale) */
    const char *job[] = { "job", NULL }, *inst[] = { "inst", NULL };
    assert_string_equal(Q(AGG(PROMQL_AGG_SUM, SEL("gauge", NULL), NULL, 0, NULL), 300), "{} 58;");
    assert_string_equal(Q(AGG(PROMQL_AGG_SUM, SEL("gauge", NULL), NULL, 0, job), 300),
                        "{job=\"a\"} 55;{job=\"b\"} 3;");
    assert_string_equal(Q(AGG(PROMQL_AGG_SUM, SEL("gauge", NULL), NULL, 1, inst), 300),
                        "{job=\"a\"} 55;{job=\"b\"} 3;");
    assert_string_equal(Q(AGG(PROMQL_AGG_AVG, SEL("gauge", NULL), NULL, 0, job), 300),
                        "{job=\"a\"} 27.5;{job=\"b\"} 3;");
    /* avg whose running sum overflows: 1.75e307 and 1.75e308 average to 9.625e307 */
    double big = QV(
        AGG(PROMQL_AGG_AVG, BIN(PROMQL_OP_MUL, SEL("gauge", "job=a", NULL), NUM(3.5e306)), NULL, 0, NULL),
        300, "{}");
    assert_true(fabs(big / 9.625e307 - 1) < 1e-12);
    assert_string_equal(Q(AGG(PROMQL_AGG_MIN, SEL("gauge", NULL), NULL, 0, NULL), 300), "{} 3;");
    assert_string_equal(Q(AGG(PROMQL_AGG_MAX, SEL("gauge", NULL), NULL, 0, inst), 300),
                        "{inst=\"1\"} 5;{inst=\"2\"} 50;");
    assert_string_equal(Q(AGG(PROMQL_AGG_COUNT, SEL("gauge", NULL), NULL, 0, NULL), 300), "{} 3;");
    assert_string_equal(Q(AGG(PROMQL_AGG_GROUP, SEL("gauge", NULL), NULL, 0, job), 300),
                        "{job=\"a\"} 1;{job=\"b\"} 1;");
    /* variance of 5, 50, 3: 2534/3 - (58/3)^2 = 4238/9 */
    assert_ok(run(AGG(PROMQL_AGG_STDVAR, SEL("gauge", NULL), NULL, 0, NULL), B + 300 * SEC, B + 300 * SEC, 0,
                  NULL, 1));
    assert_true(fabs(R.series[0].points[0].v - 4238.0 / 9) < 1e-9);
    assert_ok(run(AGG(PROMQL_AGG_STDDEV, SEL("gauge", NULL), NULL, 0, NULL), B + 300 * SEC, B + 300 * SEC, 0,
                  NULL, 1));
    assert_true(fabs(R.series[0].points[0].v - sqrt(4238.0 / 9)) < 1e-9);
    assert_string_equal(Q(AGG(PROMQL_AGG_QUANTILE, SEL("gauge", NULL), NUM(0.5), 0, NULL), 300), "{} 5;");
    assert_string_equal(Q(AGG(PROMQL_AGG_QUANTILE, SEL("gauge", NULL), NUM(0.75), 0, NULL), 300), "{} 27.5;");
    /* topk/bottomk keep every label, ordered by value */
    assert_string_equal(Q(AGG(PROMQL_AGG_TOPK, SEL("gauge", NULL), NUM(2), 0, NULL), 300),
                        "gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"1\",job=\"a\"} 5;");
    assert_string_equal(Q(AGG(PROMQL_AGG_BOTTOMK, SEL("gauge", NULL), NUM(2), 0, NULL), 300),
                        "gauge{inst=\"2\",job=\"b\"} 3;gauge{inst=\"1\",job=\"a\"} 5;");
    assert_string_equal(Q(AGG(PROMQL_AGG_TOPK, SEL("gauge", NULL), NUM(1), 0, job), 300),
                        "gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"2\",job=\"b\"} 3;");
    assert_string_equal(Q(AGG(PROMQL_AGG_TOPK, SEL("gauge", NULL), NUM(0), 0, NULL), 300), "");
    assert_err(run(AGG(PROMQL_AGG_TOPK, SEL("gauge", NULL), NUM(NAN), 0, NULL), B, B, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(g_msg, "Scalar value NaN overflows int64");
    /* topk in a range query: per step */
    assert_string_equal(QR(AGG(PROMQL_AGG_TOPK, SEL("gauge", "job=a", NULL), NUM(1), 0, NULL), 0, 60, 60),
                        "gauge{inst=\"1\",job=\"a\"} 0@0;gauge{inst=\"2\",job=\"a\"} 10@60;");
    assert_string_equal(Q(AGG(PROMQL_AGG_LIMITK, SEL("gauge", NULL), NUM(1), 0, job), 300),
                        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"b\"} 3;");
    assert_string_equal(
        Q(AGG(PROMQL_AGG_LIMIT_RATIO, SEL("gauge", NULL), NUM(1), 0, NULL), 300),
        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"2\",job=\"b\"} 3;");
    /* limit_ratio(r) and limit_ratio(r - 1) split a vector in two, by label hash */
    for (double r = 0.1; r < 1; r += 0.2) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s", Q(AGG(PROMQL_AGG_LIMIT_RATIO, SEL("gauge", NULL), NUM(r), 0, NULL), 300));
        size_t na = R.nseries;
        snprintf(b, sizeof b, "%s",
                 Q(AGG(PROMQL_AGG_LIMIT_RATIO, SEL("gauge", NULL), NUM(r - 1), 0, NULL), 300));
        assert_int_equal(na + R.nseries, 3);
        for (char *p = strtok(a, ";"); p; p = strtok(NULL, ";")) assert_null(strstr(b, p));
    }
    /* count_values: at 0 a/1 = a/2 = 0; at 2m a/1 = 2, b/1 = 5, a/2 = 20, b/2 = 3 (in the
     * store's order, inst before job; Prometheus leaves this order open) */
    assert_string_equal(Q(AGG(PROMQL_AGG_COUNT_VALUES, SEL("gauge", "job=a", NULL), STR("v"), 0, NULL), 0),
                        "{v=\"0\"} 2;");
    assert_string_equal(
        Q(AGG(PROMQL_AGG_COUNT_VALUES, SEL("gauge", NULL), STR("v"), 0, job), 120),
        "{job=\"a\",v=\"2\"} 1;{job=\"b\",v=\"5\"} 1;{job=\"a\",v=\"20\"} 1;{job=\"b\",v=\"3\"} 1;");
}

static void test_binary_operators(void **state)
{
    (void)state;
    const char *job[] = { "job", NULL }, *inst[] = { "inst", NULL }, *owner[] = { "owner", NULL };
    /* arithmetic drops the name; comparisons filter and keep it; bool drops it */
    assert_string_equal(Q(BIN(PROMQL_OP_MUL, SEL("gauge", "job=a", NULL), NUM(2)), 300),
                        "{inst=\"1\",job=\"a\"} 10;{inst=\"2\",job=\"a\"} 100;");
    assert_string_equal(Q(BIN(PROMQL_OP_GTR, SEL("gauge", NULL), NUM(4)), 300),
                        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;");
    promql_node_t *b = BIN(PROMQL_OP_GTR, SEL("gauge", NULL), NUM(4));
    b->u.binary.return_bool = 1;
    assert_string_equal(Q(b, 300),
                        "{inst=\"1\",job=\"a\"} 1;{inst=\"2\",job=\"a\"} 1;{inst=\"2\",job=\"b\"} 0;");
    /* scalar on the left of a comparison: the vector's value is kept */
    assert_string_equal(Q(BIN(PROMQL_OP_LSS, NUM(4), SEL("gauge", NULL)), 300),
                        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;");
    assert_string_equal(Q(BIN(PROMQL_OP_SUB, NUM(100), SEL("gauge", "job=a", "inst=2", NULL)), 300),
                        "{inst=\"2\",job=\"a\"} 50;");
    assert_string_equal(Q(BIN(PROMQL_OP_POW, NUM(2), NUM(10)), 0), "1024");
    assert_string_equal(Q(BIN(PROMQL_OP_MOD, SEL("gauge", "job=a", "inst=2", NULL), NUM(7)), 300),
                        "{inst=\"2\",job=\"a\"} 1;");
    /* one-to-one on(inst): a/2 + b/2 */
    assert_string_equal(Q(MATCH(BIN(PROMQL_OP_ADD, SEL("gauge", "job=a", NULL), SEL("gauge", "job=b", NULL)),
                                1, inst, PROMQL_CARD_ONE_TO_ONE, NULL),
                          300),
                        "{inst=\"2\"} 53;");
    /* ignoring(job) keeps the rest */
    assert_string_equal(Q(MATCH(BIN(PROMQL_OP_SUB, SEL("gauge", "job=a", NULL), SEL("gauge", "job=b", NULL)),
                                0, job, PROMQL_CARD_ONE_TO_ONE, NULL),
                          300),
                        "{inst=\"2\"} 47;");
    /* group_left(owner): the owner comes from the one side */
    assert_string_equal(Q(MATCH(BIN(PROMQL_OP_MUL, SEL("gauge", NULL), SEL("info", NULL)), 1, job,
                                PROMQL_CARD_MANY_TO_ONE, owner),
                          300),
                        "{inst=\"1\",job=\"a\",owner=\"alice\"} 5;{inst=\"2\",job=\"a\",owner=\"alice\"} 50;"
                        "{inst=\"2\",job=\"b\",owner=\"bob\"} 3;");
    /* group_right: the same from the other side */
    assert_string_equal(Q(MATCH(BIN(PROMQL_OP_MUL, SEL("info", NULL), SEL("gauge", NULL)), 1, job,
                                PROMQL_CARD_ONE_TO_MANY, owner),
                          300),
                        "{inst=\"1\",job=\"a\",owner=\"alice\"} 5;{inst=\"2\",job=\"a\",owner=\"alice\"} 50;"
                        "{inst=\"2\",job=\"b\",owner=\"bob\"} 3;");
    /* the errors, word for word */
    assert_err(run(MATCH(BIN(PROMQL_OP_ADD, SEL("info", NULL), SEL("gauge", NULL)), 1, job,
                         PROMQL_CARD_ONE_TO_ONE, NULL),
                   B + 300 * SEC, B + 300 * SEC, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(
        g_msg, "found duplicate series for the match group {job=\"a\"} on the right hand-side of the "
               "operation: [{__name__=\"gauge\", inst=\"2\", job=\"a\"}, {__name__=\"gauge\", "
               "inst=\"1\", job=\"a\"}];many-to-many matching not allowed: matching labels must be "
               "unique on one side");
    assert_err(run(MATCH(BIN(PROMQL_OP_ADD, SEL("gauge", NULL), SEL("info", NULL)), 1, job,
                         PROMQL_CARD_ONE_TO_ONE, NULL),
                   B + 300 * SEC, B + 300 * SEC, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(
        g_msg, "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)");
    assert_err(run(MATCH(BIN(PROMQL_OP_MUL, SEL("gauge", NULL), SEL("gauge", NULL)), 1, job,
                         PROMQL_CARD_ONE_TO_MANY, NULL),
                   B + 300 * SEC, B + 300 * SEC, 0, NULL, 1),
               STRATA_EEXEC);
    assert_true(strstr(g_msg, "on the left hand-side of the operation") != NULL);
}

static void test_set_operators(void **state)
{
    (void)state;
    const char *job[] = { "job", NULL };
    assert_string_equal(Q(MATCH(BIN(PROMQL_OP_AND, SEL("gauge", NULL), SEL("info", "owner=alice", NULL)), 1,
                                job, PROMQL_CARD_MANY_TO_MANY, NULL),
                          300),
                        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;");
    assert_string_equal(Q(MATCH(BIN(PROMQL_OP_UNLESS, SEL("gauge", NULL), SEL("info", "owner=alice", NULL)),
                                1, job, PROMQL_CARD_MANY_TO_MANY, NULL),
                          300),
                        "gauge{inst=\"2\",job=\"b\"} 3;");
    /* or: the left side, then what of the right has no match in it */
    assert_string_equal(Q(BIN(PROMQL_OP_OR, SEL("gauge", "job=b", NULL), SEL("gauge", "inst=1", NULL)), 300),
                        "gauge{inst=\"2\",job=\"b\"} 3;gauge{inst=\"1\",job=\"a\"} 5;");
    /* without on(): all labels but the name */
    assert_string_equal(
        Q(BIN(PROMQL_OP_AND, SEL("gauge", NULL), BIN(PROMQL_OP_GTR, SEL("gauge", NULL), NUM(4))), 300),
        "gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;");
    /* per step in a range query, a matrix sorted by labels (__name__ first) */
    assert_string_equal(QR(BIN(PROMQL_OP_OR, SEL("gauge", "job=b", "inst=1", NULL),
                               BIN(PROMQL_OP_MUL, SEL("gauge", "job=b", "inst=2", NULL), NUM(1))),
                           0, 600, 300),
                        "gauge{inst=\"1\",job=\"b\"} 5@0,7@600;{inst=\"2\",job=\"b\"} 3@0,3@300,3@600;");
}

static void test_label_functions(void **state)
{
    (void)state;
    promql_node_t *a = SEL("gauge", "job=a", NULL);
    assert_string_equal(
        Q(FV("label_replace", a, STR("host"), STR("h-$1"), STR("inst"), STR("(.*)")), 300),
        "gauge{host=\"h-1\",inst=\"1\",job=\"a\"} 5;gauge{host=\"h-2\",inst=\"2\",job=\"a\"} 50;");
    /* ${1}, $$ and a group that did not match */
    assert_string_equal(Q(FV("label_replace", SEL("gauge", "job=a", "inst=1", NULL), STR("x"),
                             STR("${1}$$$2"), STR("inst"), STR("(1)|(z)")),
                          300),
                        "gauge{inst=\"1\",job=\"a\",x=\"1$\"} 5;");
    /* anchored: "1" does not match "" of a missing label; no match leaves the series as it is */
    assert_string_equal(Q(FV("label_replace", SEL("gauge", "job=a", "inst=1", NULL), STR("x"), STR("y"),
                             STR("inst"), STR("\\d\\d")),
                          300),
                        "gauge{inst=\"1\",job=\"a\"} 5;");
    /* an empty replacement removes the label */
    assert_string_equal(Q(FV("label_replace", SEL("gauge", "job=a", "inst=1", NULL), STR("job"), STR(""),
                             STR("job"), STR(".*")),
                          300),
                        "gauge{inst=\"1\"} 5;");
    /* two series made equal: an error */
    assert_err(run(FV("label_replace", a, STR("inst"), STR("x"), STR(""), STR("")), B + 300 * SEC,
                   B + 300 * SEC, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(g_msg, "vector cannot contain metrics with the same labelset");
    assert_string_equal(
        Q(FV("label_join", a, STR("id"), STR("/"), STR("job"), STR("inst"), STR("none")), 300),
        "gauge{id=\"a/1/\",inst=\"1\",job=\"a\"} 5;gauge{id=\"a/2/\",inst=\"2\",job=\"a\"} 50;");
    /* the names strata stores, [a-zA-Z_][a-zA-Z0-9_]*: "x_1" is one, "a.b" and "1x" are not */
    assert_string_equal(Q(FV("label_replace", SEL("gauge", "job=a", "inst=1", NULL), STR("x_1"), STR("1x"),
                             STR("job"), STR(".*")),
                          300),
                        "gauge{inst=\"1\",job=\"a\",x_1=\"1x\"} 5;");
    assert_err(run(FV("label_replace", a, STR("a.b"), STR(""), STR("job"), STR(".*")), B, B, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(g_msg, "invalid destination label name in label_replace(): a.b");
    assert_err(run(FV("label_join", a, STR("1x"), STR("-"), STR("job")), B, B, 0, NULL, 1), STRATA_EEXEC);
    assert_string_equal(g_msg, "invalid destination label name in label_join(): 1x");
    assert_err(run(AGG(PROMQL_AGG_COUNT_VALUES, a, STR("bad label"), 0, NULL), B, B, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(g_msg, "invalid label name \"bad label\"");
    assert_err(run(FV("label_replace", a, STR(""), STR(""), STR("job"), STR(".*")), B, B, 0, NULL, 1),
               STRATA_EEXEC);
    assert_string_equal(g_msg, "invalid destination label name in label_replace(): ");
    assert_err(run(FV("label_join", a, STR("\xff"), STR("-"), STR("job")), B, B, 0, NULL, 1), STRATA_EEXEC);
    assert_err(run(AGG(PROMQL_AGG_COUNT_VALUES, a, STR(""), 0, NULL), B, B, 0, NULL, 1), STRATA_EEXEC);
    assert_string_equal(g_msg, "invalid label name \"\"");
}

static void test_histogram_quantile(void **state)
{
    (void)state;
    /* rank 20 of 40 lies in (0.1, 1] holding 20: 0.1 + 0.9 * 10/20 */
    assert_string_equal(Q(FV("histogram_quantile", NUM(0.5), SEL("lat_bucket", NULL)), 600),
                        "{job=\"a\"} 0.55;");
    /* rank 5 in (0, 0.1] */
    assert_string_equal(Q(FV("histogram_quantile", NUM(0.125), SEL("lat_bucket", NULL)), 600),
                        "{job=\"a\"} 0.05;");
    /* over a sum by (le) */
    const char *le[] = { "le", NULL };
    assert_string_equal(
        Q(FV("histogram_quantile", NUM(0.5), AGG(PROMQL_AGG_SUM, SEL("lat_bucket", NULL), NULL, 0, le)), 600),
        "{} 0.55;");
    /* series without le are not buckets */
    assert_string_equal(Q(FV("histogram_quantile", NUM(0.5), SEL("gauge", NULL)), 600), "");
}

static void test_absent_sort_timestamp(void **state)
{
    (void)state;
    assert_string_equal(Q(FV("absent", SEL("nope", "job=x", "inst=~.+", NULL)), 300), "{job=\"x\"} 1;");
    assert_string_equal(Q(FV("absent", SEL("gauge", NULL)), 300), "");
    assert_string_equal(Q(FV("absent_over_time", RANGE(SEL("gauge", "job=b", "inst=1", NULL), MIN)), 300),
                        "{inst=\"1\",job=\"b\"} 1;");
    assert_string_equal(
        Q(FV("absent_over_time", RANGE(SEL("gauge", "job=b", "inst=1", NULL), 10 * MIN)), 300), "");
    /* per step: absent from 3m to 9m */
    assert_string_equal(QR(FV("absent", SEL("gauge", "job=b", "inst=1", NULL)), 0, 600, 180),
                        "{inst=\"1\",job=\"b\"} 1@180,1@360,1@540;");
    assert_string_equal(
        Q(FV("sort_desc", SEL("gauge", NULL)), 300),
        "gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"b\"} 3;");
    assert_string_equal(
        Q(FV("sort", SEL("gauge", NULL)), 300),
        "gauge{inst=\"2\",job=\"b\"} 3;gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"a\"} 50;");
    assert_string_equal(
        Q(FV("sort_by_label_desc", SEL("gauge", NULL), STR("job"), STR("inst")), 300),
        "gauge{inst=\"2\",job=\"b\"} 3;gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"1\",job=\"a\"} 5;");
    /* timestamp of the selected sample, not of the step */
    assert_string_equal(Q(FV("timestamp", SEL("gauge", "job=b", "inst=2", NULL)), 330),
                        "{inst=\"2\",job=\"b\"} 1080300;");
    assert_string_equal(
        Q(FV("timestamp", BIN(PROMQL_OP_MUL, SEL("gauge", "job=b", "inst=2", NULL), NUM(1))), 330),
        "{inst=\"2\",job=\"b\"} 1080330;");
    assert_string_equal(Q(FV("vector", NUM(7)), 0), "{} 7;");
    assert_string_equal(Q(FV("scalar", SEL("gauge", "job=a", "inst=2", NULL)), 300), "50");
    assert_string_equal(Q(FV("scalar", SEL("gauge", NULL)), 300), "NaN");
    /* element-wise: clamp with min > max is empty; round's argument */
    assert_string_equal(Q(FV("clamp", SEL("gauge", "job=a", NULL), NUM(6), NUM(20)), 300),
                        "{inst=\"1\",job=\"a\"} 6;{inst=\"2\",job=\"a\"} 20;");
    assert_string_equal(Q(FV("clamp", SEL("gauge", "job=a", NULL), NUM(20), NUM(6)), 300), "");
    assert_string_equal(
        Q(FV("round", BIN(PROMQL_OP_DIV, SEL("gauge", "job=a", "inst=2", NULL), NUM(3)), NUM(0.5)), 300),
        "{inst=\"2\",job=\"a\"} 16.5;");
    /* a time function without argument is of vector(time()): B is 300h */
    assert_string_equal(Q(CALL("hour", PROMQL_TYPE_VECTOR, 0), 0), "{} 12;");
}

static void test_budget(void **state)
{
    (void)state;
    api_read_budget_t b;
    api_read_budget_init(&b, 0, 5);
    assert_err(run(FV("sum_over_time", RANGE(SEL("cnt_total", NULL), 9 * MIN)), B + 600 * SEC, B + 600 * SEC,
                   0, &b, 1),
               STRATA_ELIMIT);
    assert_string_equal(g_msg,
                        "query processing would load too many samples into memory in query execution: query "
                        "over budget: more than 5 samples read (--query-max-samples)");
    /* what the evaluation holds counts too: 601 steps x 4 series from 44 samples read */
    api_read_budget_init(&b, 0, 1000);
    assert_err(run(SEL("gauge", NULL), B, B + 600 * SEC, SEC, &b, 1), STRATA_ELIMIT);
    assert_string_equal(g_msg,
                        "query processing would load too many samples into memory in query execution: the "
                        "evaluation holds more than 1000 points (--query-max-samples)");
    api_read_budget_init(&b, 0, 1000);
    assert_ok(run(SEL("gauge", NULL), B, B + 600 * SEC, 60 * SEC, &b, 1));
    /* a deadline already past: 503's error */
    api_read_budget_init(&b, 1000, 0);
    b.deadline_ms = api_read_mono_ms() - 1;
    assert_err(run(SEL("gauge", NULL), B, B, 0, &b, 1), STRATA_ETIMEOUT);
    assert_string_equal(g_msg, "query timed out in expression evaluation: query timeout: the read ran past "
                               "--query-timeout (1000 ms)");
    /* within the budget, the same query answers */
    api_read_budget_init(&b, 0, 1000);
    assert_ok(
        run(FV("sum_over_time", RANGE(SEL("cnt_total", NULL), MIN)), B + 600 * SEC, B + 600 * SEC, 0, &b, 1));
    assert_string_equal(render(), "{job=\"a\"} 165;");
}

/* Windows of whole 5m / 1h intervals read rollup points, and answer what
 * the raw samples answer. */
static void test_rollups_answer_as_raw(void **state)
{
    (void)state;
    api_read_source_t *raw;
    assert_ok(api_read_source_new(&raw_ops, g_db, 0, &raw));
    static const char *fns[] = {
        "sum_over_time",     "count_over_time", "min_over_time", "max_over_time", "avg_over_time",
        "present_over_time", "last_over_time",  "rate",          "increase",      "delta"
    };
    static const struct {
        const char *job;
        int64_t range, from, to, step; /* ms from B */
    } cases[] = {
        { "r", TSDB_ROLLUP_1H, 60 * MIN, 180 * MIN, 60 * MIN }, /* 1h points */
        { "r", 2 * TSDB_ROLLUP_1H, 120 * MIN, 180 * MIN, 60 * MIN },
        { "r", 15 * MIN, 15 * MIN, 180 * MIN, 15 * MIN },         /* 5m points */
        { "nan", TSDB_ROLLUP_1H, 60 * MIN, 180 * MIN, 60 * MIN }, /* raw fallback */
        { "r", 10 * MIN, 7 * MIN, 180 * MIN, 10 * MIN },          /* not aligned: raw */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
            char job[16];
            snprintf(job, sizeof job, "job=%s", cases[c].job);
            promql_node_t *e = FV(fns[f], RANGE(SEL("dense", job, NULL), cases[c].range));
            api_read_budget_t b1, b2;
            api_read_budget_init(&b1, 0, 0);
            api_read_budget_init(&b2, 0, 0);
            promql_engine_opts_t o1 = { .src = g_src, .tenant = 1, .budget = &b1 };
            promql_engine_opts_t o2 = { .src = raw, .tenant = 1, .budget = &b2 };
            promql_result_t r1, r2;
            int64_t from = B + cases[c].from, to = B + cases[c].to;
            assert_ok(promql_eval(&o1, e, from, to, cases[c].step, A, &r1, g_msg, sizeof g_msg));
            assert_ok(promql_eval(&o2, e, from, to, cases[c].step, A, &r2, g_msg, sizeof g_msg));
            assert_int_equal(r1.nseries, 1);
            assert_int_equal(r2.nseries, 1);
            assert_int_equal(r1.series[0].npoints, r2.series[0].npoints);
            assert_int_equal(r1.series[0].nlabels, r2.series[0].nlabels); /* last_over_time keeps the name */
            for (size_t i = 0; i < r1.series[0].npoints; i++) {
                assert_int_equal(r1.series[0].points[i].t, r2.series[0].points[i].t);
                double x = r1.series[0].points[i].v, y = r2.series[0].points[i].v;
                if (!(x == y || (isnan(x) && isnan(y))))
                    fail_msg("%s case %zu point %zu: %g (rollups) != %g (raw)", fns[f], c, i, x, y);
            }
            /* the rollup path hands out far fewer points than the raw one */
            /* rate, increase and delta read 1h points only */
            int rolled = c < 2 || (c == 2 && f < 7);
            if (rolled) assert_true(b1.samples * 10 < b2.samples);
            if (!rolled && c != 3) assert_int_equal(b1.samples, b2.samples);
        }
    /* sum_over_time(dense[1h]) at 1h: (0, 1h] holds i = 1..360 */
    double want = 0;
    for (int i = 1; i <= 360; i++) want += (i * 7) % 13;
    assert_true(QV(FV("sum_over_time", RANGE(SEL("dense", "job=r", NULL), TSDB_ROLLUP_1H)), 3600,
                   "{job=\"r\"}") == want);
    api_read_source_free(raw);
}

/* sum/avg_over_time of an integer series over overlapping windows (range
 * wider than the step) answer from prefix sums: the same bits as summing
 * each window's samples (exact for integers, as here). */
static void test_over_time_prefix_sums(void **state)
{
    (void)state;
    static const char *fns[] = { "sum_over_time", "avg_over_time" };
    for (size_t f = 0; f < 2; f++) {
        promql_node_t *e = FV(fns[f], RANGE(SEL("dense", "job=r", NULL), 10 * MIN));
        api_read_budget_t b;
        api_read_budget_init(&b, 0, 0);
        promql_engine_opts_t o = { .src = g_src, .tenant = 1, .budget = &b };
        promql_result_t r;
        int64_t from = B + 7 * SEC, to = B + 100 * MIN + 7 * SEC, step = 30 * SEC; /* past the stale marker */
        assert_ok(promql_eval(&o, e, from, to, step, A, &r, g_msg, sizeof g_msg));
        assert_int_equal(r.nseries, 1);
        assert_true(r.series[0].npoints > 190);
        for (size_t i = 0; i < r.series[0].npoints; i++) {
            int64_t t = r.series[0].points[i].t;
            double sum = 0, n = 0; /* dense: value (i * 7) % 13 at B + i * 10 s, 500 stale */
            for (int k = 0; k < 1080; k++) {
                if (k == 500) continue;
                int64_t ts = B + k * 10 * SEC;
                if (ts > t - 10 * MIN && ts <= t) sum += (k * 7) % 13, n++;
            }
            double want = f ? sum / n : sum;
            if (r.series[0].points[i].v != want)
                fail_msg("%s at %lld: %.17g, want %.17g", fns[f], (long long)(t - B), r.series[0].points[i].v,
                         want);
        }
    }
}

/* A backend whose reads skipped damaged pages: the answer carries a warning. */
static uint64_t two_damaged(void *set, uint64_t *current)
{
    (void)set;
    if (current) *current = 2;
    return 2;
}

static void test_damaged_pages_warn(void **state)
{
    (void)state;
    api_read_source_t *src;
    assert_ok(api_read_source_new(&raw_ops, g_db, 0, &src));
    api_read_source_set_damaged(src, two_damaged);
    promql_engine_opts_t o = { .src = src, .tenant = 1 };
    assert_ok(promql_eval(&o, SEL("gauge", "job=b", NULL), B + 300 * SEC, B + 300 * SEC, 0, A, &R, g_msg,
                          sizeof g_msg));
    assert_string_equal(render(), "gauge{inst=\"2\",job=\"b\"} 3;");
    assert_int_equal(R.nwarnings, 1);
    assert_string_equal(
        R.warnings[0],
        "2 damaged stored page(s) were skipped: some series are answered without their samples");
    /* an intact read has none */
    assert_ok(run(SEL("gauge", "job=b", NULL), B + 300 * SEC, B + 300 * SEC, 0, NULL, 1));
    assert_int_equal(R.nwarnings, 0);
    api_read_source_free(src);
}

/* ---- the same through the parser ------------------------------------------------------ */

static promql_node_t *parse(const char *q)
{
    promql_node_t *e;
    promql_error_t err;
    if (promql_parse(q, A, &e, &err) != 0) fail_msg("promql_parse(%s): %s", q, err.msg);
    return e;
}

/* An instant query string at B + at_s, printed. */
static const char *PQ(const char *q, int64_t at_s) { return Q(parse(q), at_s); }
static const char *PQR(const char *q, int64_t from_s, int64_t to_s, int64_t step_s)
{
    return QR(parse(q), from_s, to_s, step_s);
}

static void test_parsed_queries(void **state)
{
    (void)state;
    /* Grafana's save-and-test */
    assert_string_equal(PQ("1+1", 0), "2");
    assert_string_equal(PQ("gauge{job=\"b\"}", 300), "gauge{inst=\"2\",job=\"b\"} 3;");
    assert_string_equal(PQ("gauge{job=\"a\",inst=\"1\"} offset 2m", 600), "gauge{inst=\"1\",job=\"a\"} 8;");
    assert_string_equal(PQR("gauge{job=\"a\",inst=\"1\"} @ end() offset 1m", 0, 240, 120),
                        "gauge{inst=\"1\",job=\"a\"} 3@0,3@120,3@240;");
    assert_string_equal(PQ("sum by (job) (gauge)", 300), "{job=\"a\"} 55;{job=\"b\"} 3;");
    assert_string_equal(PQ("sum(gauge) without (inst)", 300), "{job=\"a\"} 55;{job=\"b\"} 3;");
    assert_string_equal(PQ("topk(2, gauge)", 300),
                        "gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"1\",job=\"a\"} 5;");
    assert_string_equal(PQ("quantile(0.75, gauge)", 300), "{} 27.5;");
    assert_string_equal(PQ("count_values(\"v\", gauge{job=\"a\"})", 0), "{v=\"0\"} 2;");
    /* the value label as Go's FormatFloat(v, 'f', -1): never an exponent */
    assert_string_equal(PQ("count_values(\"v\", gauge{job=\"a\",inst=\"1\"} * 1e21)", 300),
                        "{v=\"5000000000000000000000\"} 1;");
    assert_string_equal(PQ("count_values(\"v\", gauge{job=\"b\"} * 1e-7)", 300), "{v=\"0.0000003\"} 1;");
    assert_string_equal(PQ("count_values(\"v\", -gauge{job=\"b\"} / 0)", 300), "{v=\"-Inf\"} 1;");
    assert_string_equal(PQ("sum_over_time(gauge{job=\"a\",inst=\"1\"}[5m:2m] offset 1m)", 600),
                        "{inst=\"1\",job=\"a\"} 14;");
    assert_string_equal(PQ("max_over_time(sum_over_time(gauge{job=\"a\",inst=\"1\"}[2m:1m])[4m:2m])", 600),
                        "{inst=\"1\",job=\"a\"} 19;");
    assert_string_equal(PQ("gauge * on(job) group_left(owner) info", 300),
                        "{inst=\"1\",job=\"a\",owner=\"alice\"} 5;{inst=\"2\",job=\"a\",owner=\"alice\"} 50;"
                        "{inst=\"2\",job=\"b\",owner=\"bob\"} 3;");
    assert_string_equal(PQ("gauge{job=\"a\"} - ignoring(job) gauge{job=\"b\"}", 300), "{inst=\"2\"} 47;");
    assert_string_equal(PQ("gauge > bool 4", 300),
                        "{inst=\"1\",job=\"a\"} 1;{inst=\"2\",job=\"a\"} 1;{inst=\"2\",job=\"b\"} 0;");
    assert_string_equal(PQ("-gauge{job=\"b\"}", 300), "{inst=\"2\",job=\"b\"} -3;");
    assert_string_equal(PQ("gauge unless on(job) info{owner=\"alice\"}", 300),
                        "gauge{inst=\"2\",job=\"b\"} 3;");
    assert_string_equal(
        PQ("label_replace(gauge{job=\"a\"}, \"host\", \"h-$1\", \"inst\", \"(.*)\")", 300),
        "gauge{host=\"h-1\",inst=\"1\",job=\"a\"} 5;gauge{host=\"h-2\",inst=\"2\",job=\"a\"} 50;");
    /* the translator turns `.` into a group of its own: $1 is still RE2's group 1 */
    assert_string_equal(PQ("count(gauge{job=~\".\"})", 300), "{} 3;");
    assert_string_equal(
        PQ("label_replace(gauge{job=\"a\",inst=\"1\"}, \"x\", \"$1\", \"job\", \"(.)\")", 300),
        "gauge{inst=\"1\",job=\"a\",x=\"a\"} 5;");
    /* named groups, after a (?:...) that became a POSIX group */
    assert_string_equal(PQ("label_replace(gauge{job=\"a\",inst=\"1\"}, \"x\", \"${who}-$who-$2\", \"job\", "
                           "\"(?:x|(?P<who>a))(.*)\")",
                           300),
                        "gauge{inst=\"1\",job=\"a\",x=\"a-a-\"} 5;");
    assert_string_equal(
        PQ("label_join(gauge{job=\"a\"}, \"id\", \"/\", \"job\", \"inst\")", 300),
        "gauge{id=\"a/1\",inst=\"1\",job=\"a\"} 5;gauge{id=\"a/2\",inst=\"2\",job=\"a\"} 50;");
    assert_string_equal(PQ("histogram_quantile(0.5, sum by (le) (lat_bucket))", 600), "{} 0.55;");
    assert_string_equal(PQ("absent(nope{job=\"x\"})", 300), "{job=\"x\"} 1;");
    assert_string_equal(
        PQ("sort_desc(gauge)", 300),
        "gauge{inst=\"2\",job=\"a\"} 50;gauge{inst=\"1\",job=\"a\"} 5;gauge{inst=\"2\",job=\"b\"} 3;");
    assert_string_equal(PQ("timestamp(gauge{job=\"b\",inst=\"2\"})", 330), "{inst=\"2\",job=\"b\"} 1080300;");
    assert_string_equal(PQ("scalar(gauge{job=\"a\",inst=\"2\"}) * 2", 300), "100");
    assert_string_equal(PQR("gauge{job=\"b\",inst=\"1\"} or on() vector(0)", 0, 600, 300),
                        "{} 0@300;gauge{inst=\"1\",job=\"b\"} 5@0,7@600;");
    assert_true(fabs(QV(parse("sum(rate(cnt_total[1m]))"), 600, "{}") - 0.1) < 1e-12);
    /* errors: 422 with Prometheus' words */
    assert_err(run(parse("info + on(job) gauge"), B + 300 * SEC, B + 300 * SEC, 0, NULL, 1), STRATA_EEXEC);
    assert_true(strncmp(g_msg, "found duplicate series for the match group {job=\"a\"}", 52) == 0);
}

/* Every function of the parser's table evaluates (none is left unsupported). */
static void test_every_function(void **state)
{
    (void)state;
    static const char *const queries[] = {
        "abs(gauge)",
        "absent(gauge)",
        "absent_over_time(gauge[5m])",
        "acos(gauge)",
        "acosh(gauge)",
        "asin(gauge)",
        "asinh(gauge)",
        "atan(gauge)",
        "atanh(gauge)",
        "avg_over_time(gauge[5m])",
        "ceil(gauge)",
        "changes(gauge[5m])",
        "clamp(gauge, 1, 20)",
        "clamp_max(gauge, 2)",
        "clamp_min(gauge, 2)",
        "cos(gauge)",
        "cosh(gauge)",
        "count_over_time(gauge[5m])",
        "day_of_month(gauge)",
        "day_of_week(gauge)",
        "day_of_year(gauge)",
        "days_in_month(gauge)",
        "deg(gauge)",
        "delta(gauge[5m])",
        "deriv(gauge[5m])",
        "double_exponential_smoothing(gauge[5m], 0.5, 0.5)",
        "exp(gauge)",
        "floor(gauge)",
        "histogram_quantile(0.5, lat_bucket)",
        "holt_winters(gauge[5m], 0.5, 0.5)",
        "hour(gauge)",
        "idelta(gauge[5m])",
        "increase(gauge[5m])",
        "irate(gauge[5m])",
        "label_join(gauge, \"x\", \"-\", \"job\", \"inst\")",
        "label_replace(gauge, \"x\", \"$1\", \"job\", \"(.*)\")",
        "last_over_time(gauge[5m])",
        "ln(gauge)",
        "log10(gauge)",
        "log2(gauge)",
        "mad_over_time(gauge[5m])",
        "max_over_time(gauge[5m])",
        "min_over_time(gauge[5m])",
        "minute(gauge)",
        "month(gauge)",
        "pi()",
        "predict_linear(gauge[5m], 60)",
        "present_over_time(gauge[5m])",
        "quantile_over_time(0.5, gauge[5m])",
        "rad(gauge)",
        "rate(gauge[5m])",
        "resets(gauge[5m])",
        "round(gauge, 2)",
        "scalar(gauge{job=\"b\",inst=\"2\"})",
        "sgn(gauge)",
        "sin(gauge)",
        "sinh(gauge)",
        "sort(gauge)",
        "sort_by_label(gauge, \"job\")",
        "sort_by_label_desc(gauge, \"job\")",
        "sort_desc(gauge)",
        "sqrt(gauge)",
        "stddev_over_time(gauge[5m])",
        "stdvar_over_time(gauge[5m])",
        "sum_over_time(gauge[5m])",
        "tan(gauge)",
        "tanh(gauge)",
        "time()",
        "timestamp(gauge)",
        "vector(1)",
        "year(gauge)",
    };
    for (size_t i = 0; i < sizeof queries / sizeof queries[0]; i++) {
        int rc = run(parse(queries[i]), B + 600 * SEC, B + 600 * SEC, 0, NULL, 1);
        if (rc) fail_msg("%s: %d %s", queries[i], rc, g_msg);
        rc = run(parse(queries[i]), B, B + 600 * SEC, 120 * SEC, NULL, 1);
        if (rc) fail_msg("%s (range): %d %s", queries[i], rc, g_msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_selector_lookback_and_staleness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offset_and_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_query_stepping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_vector_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_subqueries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_binary_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_label_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_quantile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_absent_sort_timestamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups_answer_as_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_over_time_prefix_sums, setup, teardown),
        cmocka_unit_test_setup_teardown(test_damaged_pages_warn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parsed_queries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_function, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
