/*
 * eval_call.c: function calls of the evaluator.  Range functions call the
 * numeric kernels (promql_funcs.h) per series per step over a window that
 * slides with two indexes; element-wise functions call theirs per point; the
 * functions that need labels, the step time or the whole vector (time,
 * vector, scalar, timestamp, absent*, sort*, label_replace, label_join,
 * histogram_quantile) are here.
 */
#include "eval_internal.h"

#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "downsample.h"
#include "promql_funcs.h"

static int is(const char *a, const char *b) { return strcmp(a, b) == 0; }

static double *scalars_new(pq_ev_t *ev, const pq_steps_t *st)
{
    return strata_arena_alloc(ev->a, (st->n ? st->n : 1) * sizeof(double));
}

/* A string argument (a literal, possibly in parentheses). */
static int string_arg(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, const char **out)
{
    pq_val_t v;
    int rc = pq_eval(ev, n, st, &v);
    if (rc) return rc;
    if (v.type != PROMQL_TYPE_STRING) return pq_fail(ev, STRATA_EINVAL, "expected a string argument");
    *out = v.str;
    return 0;
}

static int vector_arg(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_mat_t *out)
{
    pq_val_t v;
    int rc = pq_eval(ev, n, st, &v);
    if (rc) return rc;
    if (v.type != PROMQL_TYPE_VECTOR)
        return pq_fail(ev, STRATA_EINVAL, "expected an instant vector argument");
    *out = v.m;
    return 0;
}

/* ---- range functions ------------------------------------------------------------------ */

typedef struct range_ud {
    const char *name;
    int smoothing, predict; /* holt_winters / double_exponential_smoothing; predict_linear */
    const pq_steps_t *st;
    pq_window_t w;
    promql_range_fn_t fn;
    double **params;
    size_t nparams;
    int keep_name;
    pq_mat_t *out;
    uint8_t *present; /* absent_over_time: steps with a sample in the window */
    int prefix;       /* PFX_SUM / PFX_AVG: sum/avg_over_time, which integer series answer by prefix sums */
    int64_t *pfx;     /* their buffer, shared by the series of a select */
    size_t pfx_cap;
} range_ud_t;

enum { PFX_NONE, PFX_SUM, PFX_AVG };

/* Prefix sums of a series whose every value is an integer and whose absolute
 * values add up to at most 2^53: then every partial sum, in any order, is
 * exact, so the compensated sum of any window (k_sum_over_time,
 * k_avg_over_time) is exactly P[hi] - P[lo] with a zero compensation, and a
 * window costs O(1) instead of O(its samples) (a [5m] window at step 15s
 * re-summed 20 samples per step; gauges such as utilisation percentages are
 * integers).  NULL when the series does not qualify (or on no memory: the
 * kernels then run as before). */
static int64_t *int_prefix(pq_ev_t *ev, range_ud_t *u, const tsdb_sample_t *s, size_t n)
{
    const double lim = 9007199254740992.0; /* 2^53 */
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double a = fabs(s[i].v);
        if (!(a <= lim) || (double)(int64_t)s[i].v != s[i].v) return NULL; /* NaN fails too */
        total += a; /* exact while below 2^53, and past it the series is refused */
        if (total >= lim) return NULL;
    }
    if (n + 1 > u->pfx_cap) {
        size_t cap = (n + 1) * 2;
        int64_t *b = strata_arena_alloc(ev->a, cap * sizeof *b);
        if (!b) return NULL;
        u->pfx = b;
        u->pfx_cap = cap;
    }
    int64_t *p = u->pfx;
    p[0] = 0;
    for (size_t i = 0; i < n; i++) p[i + 1] = p[i] + (int64_t)s[i].v;
    return p;
}

static int range_cb(pq_ev_t *ev, void *ud, const tsdb_label_t *l, size_t nl, const tsdb_sample_t *s, size_t n)
{
    range_ud_t *u = ud;
    size_t lo = 0, hi = 0, idx = 0;
    int added = 0, rc = pq_check(ev);
    double pbuf[8];
    if (rc) return rc;
    /* only when windows overlap (range wider than the step): otherwise each
     * sample is summed once anyway and the prefix pass is extra work */
    const int64_t *pfx = u->prefix && !u->present && n && u->st->n > 1 && u->w.range > u->st->step
                             ? int_prefix(ev, u, s, n)
                             : NULL;
    for (size_t i = 0; i < u->st->n; i++) {
        int64_t t = pq_step_t(u->st, i), te = pq_win_end(&u->w, t), ts = te - u->w.range;
        hi = pq_after(s, hi, n, te);
        lo = pq_after(s, lo, n, ts);
        if (lo >= hi) continue;
        if (u->present) {
            u->present[i] = 1;
            continue;
        }
        for (size_t k = 0; k < u->nparams && k < 8; k++) pbuf[k] = u->params[k][i];
        if (u->smoothing) {
            /* Prometheus fails on bad factors once the function runs on a series */
            char msg[160];
            if ((rc = promql_smoothing_check(pbuf[0], pbuf[1], msg, sizeof msg)) != 0)
                return pq_fail(ev, rc, "%s", msg);
        }
        /* predict_linear extrapolates from the evaluation time (the query's
         * start for a step-invariant @), not the window's end */
        int64_t end = u->predict ? (u->w.fixed ? u->st->start : t) : te;
        double v;
        if (pfx) {
            /* the kernels' sum + c (or sum / count + c / count), c being
             * +0: the same bits, -0 included (it becomes +0 either way) */
            double sum = (double)(pfx[hi] - pfx[lo]);
            v = u->prefix == PFX_AVG ? sum / (double)(hi - lo) + 0.0 : sum + 0.0;
        } else if (!u->fn(s + lo, hi - lo, ts, end, pbuf, &v))
            continue;
        if (!added) {
            size_t nl2 = nl;
            const tsdb_label_t *l2 = l;
            if (!u->keep_name && !(l2 = pq_labels_copy(ev, l, nl, "__name__", &nl2))) return pq_nomem(ev);
            if ((rc = pq_mat_find_or_add(ev, u->out, l2, nl2, &idx)) != 0) return rc;
            if ((rc = pq_reserve(ev, &u->out->s[idx], u->st->n - i)) != 0) return rc;
            added = 1;
        }
        if ((rc = pq_push(ev, &u->out->s[idx], t, v)) != 0) return rc;
    }
    return 0;
}

/* ---- range functions over rollups ---------------------------------------------------- */

enum { RU_SUM, RU_COUNT, RU_MIN, RU_MAX, RU_AVG, RU_PRESENT, RU_LAST, RU_RATE, RU_INCREASE, RU_DELTA };

static int rollup_kind(const char *name)
{
    static const char *const names[] = {
        "sum_over_time",     "count_over_time", "min_over_time", "max_over_time", "avg_over_time",
        "present_over_time", "last_over_time",  "rate",          "increase",      "delta"
    };
    for (int k = 0; k < 10; k++)
        if (is(name, names[k])) return k;
    return -1;
}

/* sum/count/min/max/avg/present/last_over_time of a selector whose every window is whole
 * rollup intervals (range and window ends on multiples of 1h or 5m) read
 * the store's rollup points instead of raw samples: the same answer from a
 * handful of points per window.  0 when the raw path must be taken. */
static int64_t rollup_resolution(pq_ev_t *ev, const char *name, const promql_node_t *mat,
                                 const pq_steps_t *st)
{
    if (!(api_read_source_caps(ev->opts->src) & API_READ_CAP_ROLLUPS)) return 0;
    if (rollup_kind(name) < 0) return 0;
    mat = pq_unparen(mat);
    if (mat->kind != PROMQL_MATRIX_SEL) return 0;
    const promql_node_t *vs = mat->u.matrix.vector;
    int fixed = vs->u.sel.at != PROMQL_AT_NONE;
    int64_t r = mat->u.matrix.range_ms, lim = (int64_t)1 << 53;
    if (vs->u.sel.at_ms < -lim || vs->u.sel.at_ms > lim || vs->u.sel.offset_ms < -lim ||
        vs->u.sel.offset_ms > lim)
        return 0; /* the raw path refuses it */
    int64_t end0 = pq_at_time(ev, vs->u.sel.at, vs->u.sel.at_ms, st->start) - vs->u.sel.offset_ms;
    static const int64_t res[] = { TSDB_ROLLUP_1H, TSDB_ROLLUP_5M };
    /* rate, increase and delta need the rises inside each interval, which
     * only 1h points keep (inner_increase) */
    size_t nres = rollup_kind(name) >= RU_RATE ? 1 : 2;
    for (size_t i = 0; i < nres; i++) {
        int64_t R = res[i];
        if (r >= R && r % R == 0 && end0 % R == 0 && (fixed || st->n == 1 || st->step % R == 0)) return R;
    }
    return 0;
}

static int rollup_cb(pq_ev_t *ev, void *ud, api_read_set_t *set, const tsdb_label_t *l, size_t nl,
                     const tsdb_rollup_point_t *p, size_t n)
{
    range_ud_t *u = ud;
    const int kind = rollup_kind(u->name);
    double *vals = strata_arena_alloc(ev->a, u->st->n * sizeof *vals);
    uint8_t *has = strata_arena_calloc(ev->a, u->st->n, 1);
    if (!vals || !has) return pq_nomem(ev);
    /* A NaN (or infinities of both signs) in an interval: its min and max
     * need not be Prometheus'; and an avg whose sum overflows is Prometheus'
     * incremental mean: such a series takes the raw path. */
    int raw = 0;
    for (size_t i = 0; i < n && !raw; i++) raw = p[i].count && isnan(p[i].sum);
    size_t lo = 0, hi = 0, idx = 0;
    int added = 0, rc = pq_check(ev);
    if (rc) return rc;
    for (size_t i = 0; i < u->st->n && !raw; i++) {
        int64_t t = pq_step_t(u->st, i), te = pq_win_end(&u->w, t), ts = te - u->w.range;
        while (hi < n && p[hi].t <= te) hi++;
        while (lo < n && p[lo].t <= ts) lo++;
        double v = 0, c = 0, rise = 0;
        uint64_t count = 0;
        const tsdb_rollup_point_t *first = NULL, *prev = NULL;
        for (size_t j = lo; j < hi; j++) {
            if (!p[j].count) continue; /* only stale markers */
            if (!first) first = &p[j];
            /* a counter's rises: inside each interval, and from one
             * interval's last sample to the next one's first */
            rise += p[j].inner_increase;
            if (prev) rise += p[j].first >= prev->last ? p[j].first - prev->last : p[j].first;
            prev = &p[j];
            if (kind == RU_SUM || kind == RU_AVG)
                pq_kahan(p[j].sum, &v, &c);
            else if ((kind == RU_MIN || kind == RU_MAX) &&
                     (!count || (kind == RU_MAX ? p[j].max > v : p[j].min < v)))
                v = kind == RU_MAX ? p[j].max : p[j].min;
            else if (kind == RU_LAST)
                v = p[j].last;
            count += p[j].count;
        }
        if (!count) continue;
        if (kind == RU_SUM || kind == RU_AVG) v += c;
        if (kind == RU_AVG) {
            if (isinf(v)) raw = 1;
            v /= (double)count;
        }
        if (kind == RU_COUNT) v = (double)count;
        if (kind == RU_PRESENT) v = 1;
        if (kind >= RU_RATE) {
            double result = kind == RU_DELTA ? prev->last - first->first : rise;
            if (!promql_extrapolate_rate(result, first->first_t, first->first, prev->last_t, count, ts, te,
                                         kind != RU_DELTA, kind == RU_RATE, &v))
                continue;
        }
        vals[i] = v;
        has[i] = 1;
    }
    if (raw) {
        const tsdb_sample_t *s;
        size_t ns;
        rc = pq_set_samples(ev, set, &s, &ns);
        return rc ? rc : range_cb(ev, ud, l, nl, s, ns);
    }
    for (size_t i = 0; i < u->st->n; i++) {
        if (!has[i]) continue;
        if (!added) {
            size_t nl2 = nl;
            const tsdb_label_t *l2 = l;
            if (!u->keep_name && !(l2 = pq_labels_copy(ev, l, nl, "__name__", &nl2))) return pq_nomem(ev);
            if ((rc = pq_mat_find_or_add(ev, u->out, l2, nl2, &idx)) != 0) return rc;
            if ((rc = pq_reserve(ev, &u->out->s[idx], u->st->n - i)) != 0) return rc;
            added = 1;
        }
        if ((rc = pq_push(ev, &u->out->s[idx], pq_step_t(u->st, i), vals[i])) != 0) return rc;
    }
    return 0;
}

static int eval_range_fn(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    const char *name = n->u.call.func->name;
    range_ud_t u = { .st = st, .out = &out->m };
    u.keep_name = is(name, "last_over_time") || is(name, "first_over_time");
    u.smoothing = is(name, "holt_winters") || is(name, "double_exponential_smoothing");
    u.predict = is(name, "predict_linear");
    u.prefix = is(name, "sum_over_time") ? PFX_SUM : is(name, "avg_over_time") ? PFX_AVG : PFX_NONE;
    u.fn = promql_range_fn_lookup(name);
    if (!u.fn) return pq_fail(ev, STRATA_EINVAL, "function \"%s\" is not supported", name);
    const promql_node_t *mat = NULL;
    u.params = strata_arena_alloc(ev->a, (n->u.call.nargs + 1) * sizeof *u.params);
    if (!u.params) return pq_nomem(ev);
    for (size_t i = 0; i < n->u.call.nargs; i++) {
        const promql_node_t *a = n->u.call.args[i];
        if (a->type == PROMQL_TYPE_MATRIX) {
            mat = a;
            continue;
        }
        int rc = pq_eval_scalar(ev, a, st, &u.params[u.nparams++]);
        if (rc) return rc;
    }
    if (!mat) return pq_fail(ev, STRATA_EINVAL, "function \"%s\" needs a range vector", name);
    out->type = PROMQL_TYPE_VECTOR;
    u.name = name;
    int64_t res = rollup_resolution(ev, name, mat, st);
    int rc = res ? pq_rollup_walk(ev, mat, st, &u.w, res, rollup_cb, &u)
                 : pq_range_walk(ev, mat, st, &u.w, range_cb, &u);
    return rc ? rc : pq_mat_finish(ev, &out->m);
}

/* ---- absent --------------------------------------------------------------------------- */

/* The labels absent() answers with: those of the selector's equality
 * matchers, a name matched twice (or by another kind of matcher) left out,
 * as Prometheus does. */
static int absent_labels(pq_ev_t *ev, const promql_node_t *arg, tsdb_label_t **out, size_t *nout)
{
    *nout = 0;
    *out = NULL;
    arg = pq_unparen(arg);
    if (arg->kind == PROMQL_MATRIX_SEL) arg = arg->u.matrix.vector;
    if (arg->kind != PROMQL_VECTOR_SEL) return 0;
    const tsdb_label_t *cur = NULL;
    size_t n = 0;
    for (size_t i = 0; i < arg->u.sel.nmatchers; i++) {
        const promql_matcher_t *m = &arg->u.sel.matchers[i];
        if (is(m->name, "__name__")) continue;
        int has = 0;
        for (size_t j = 0; j < i; j++)
            if (is(arg->u.sel.matchers[j].name, m->name) && arg->u.sel.matchers[j].type == TSDB_MATCH_EQ)
                has = 1;
        tsdb_label_t *l = pq_labels_set(ev, cur, n, m->name, m->type == TSDB_MATCH_EQ && !has ? m->value : "",
                                        &n);
        if (!l) return pq_nomem(ev);
        cur = l;
    }
    *out = (tsdb_label_t *)cur;
    *nout = n;
    return 0;
}

static int absent_out(pq_ev_t *ev, const promql_node_t *arg, const pq_steps_t *st, const uint8_t *present,
                      pq_val_t *out)
{
    tsdb_label_t *l;
    size_t nl, idx;
    int rc = absent_labels(ev, arg, &l, &nl);
    if (rc) return rc;
    out->type = PROMQL_TYPE_VECTOR;
    memset(&out->m, 0, sizeof out->m);
    if ((rc = pq_mat_add(ev, &out->m, l, nl, &idx)) != 0) return rc;
    for (size_t i = 0; i < st->n; i++)
        if (!present[i] && (rc = pq_push(ev, &out->m.s[0], pq_step_t(st, i), 1)) != 0) return rc;
    return pq_mat_finish(ev, &out->m);
}

static int eval_absent(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out,
                       int over_time)
{
    const promql_node_t *arg = n->u.call.args[0];
    uint8_t *present = strata_arena_calloc(ev->a, st->n, 1);
    if (!present) return pq_nomem(ev);
    int rc;
    if (over_time) {
        range_ud_t u = { .st = st, .present = present };
        rc = pq_range_walk(ev, arg, st, &u.w, range_cb, &u);
    } else {
        pq_mat_t m;
        rc = vector_arg(ev, arg, st, &m);
        for (size_t i = 0; !rc && i < m.n; i++)
            for (size_t j = 0; j < m.s[i].n; j++) present[pq_step_idx(st, m.s[i].pts[j].t)] = 1;
    }
    return rc ? rc : absent_out(ev, arg, st, present, out);
}

/* ---- element-wise --------------------------------------------------------------------- */

static int eval_elem(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, promql_elem_fn_t fn,
                     pq_val_t *out)
{
    const char *name = n->u.call.func->name;
    size_t na = n->u.call.nargs;
    double *params[4] = { 0 };
    size_t np = 0;
    int rc;
    for (size_t i = 1; i < na && np < 4; i++)
        if ((rc = pq_eval_scalar(ev, n->u.call.args[i], st, &params[np++])) != 0) return rc;
    pq_mat_t in = { 0 };
    if (na == 0) {
        /* the time functions' default argument: vector(time()) */
        size_t idx;
        if ((rc = pq_mat_add(ev, &in, NULL, 0, &idx)) != 0) return rc;
        for (size_t i = 0; i < st->n; i++)
            if ((rc = pq_push(ev, &in.s[0], pq_step_t(st, i), (double)pq_step_t(st, i) / 1000.0)) != 0)
                return rc;
    } else if ((rc = vector_arg(ev, n->u.call.args[0], st, &in)) != 0) {
        return rc;
    }
    int round = is(name, "round"), clamp = is(name, "clamp");
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; i < in.n; i++) {
        size_t nl, idx;
        tsdb_label_t *l = pq_labels_copy(ev, in.s[i].labels, in.s[i].nl, "__name__", &nl);
        if (!l) return pq_nomem(ev);
        int added = 0;
        for (size_t j = 0; j < in.s[i].n; j++) {
            size_t k = pq_step_idx(st, in.s[i].pts[j].t);
            double p[4] = { round ? 1 : 0, 0, 0, 0 };
            for (size_t q = 0; q < np; q++) p[q] = params[q][k];
            if (clamp && p[1] < p[0]) continue; /* clamp with min > max: no result */
            if (!added) {
                if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &idx)) != 0) return rc;
                added = 1;
            }
            if ((rc = pq_push(ev, &out->m.s[idx], in.s[i].pts[j].t, fn(in.s[i].pts[j].v, p))) != 0) return rc;
        }
    }
    return pq_mat_finish(ev, &out->m);
}

/* ---- sorting -------------------------------------------------------------------------- */

typedef struct sort_ctx {
    int desc;
    const char **names; /* sort_by_label: label names from args[1..] */
    size_t nnames;
} sort_ctx_t;

/* Natural order of label values, as Prometheus' sort_by_label: digit runs
 * compare as numbers. */
static int natcmp(const char *a, const char *b)
{
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *x = a, *y = b;
            while (*x == '0') x++;
            while (*y == '0') y++;
            size_t lx = 0, ly = 0;
            while (x[lx] >= '0' && x[lx] <= '9') lx++;
            while (y[ly] >= '0' && y[ly] <= '9') ly++;
            if (lx != ly) return lx < ly ? -1 : 1;
            int c = strncmp(x, y, lx);
            if (c) return c;
            a = x + lx;
            b = y + ly;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++, b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

typedef struct sort_item {
    pq_series_t s;
    size_t pos;
    const sort_ctx_t *ctx;
} sort_item_t;

static int cmp_items(const void *pa, const void *pb)
{
    const sort_item_t *a = pa, *b = pb;
    const sort_ctx_t *c = a->ctx;
    int r = 0;
    if (c->names) {
        for (size_t i = 0; i < c->nnames && !r; i++) {
            const char *x = pq_label_get(a->s.labels, a->s.nl, c->names[i]);
            const char *y = pq_label_get(b->s.labels, b->s.nl, c->names[i]);
            r = natcmp(x ? x : "", y ? y : "");
        }
        if (!r) r = pq_labels_cmp(a->s.labels, a->s.nl, b->s.labels, b->s.nl);
        if (c->desc) r = -r;
    } else {
        double x = a->s.pts[0].v, y = b->s.pts[0].v;
        int nx = isnan(x), ny = isnan(y);
        if (nx || ny) /* NaN last in both orders */
            r = nx - ny;
        else
            r = x < y ? -1 : x > y ? 1 : 0;
        if (c->desc && !nx && !ny) r = -r;
    }
    if (!r) r = a->pos < b->pos ? -1 : a->pos > b->pos; /* stable */
    return r;
}

static int eval_sort(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out, int desc,
                     int by_label)
{
    int rc = vector_arg(ev, n->u.call.args[0], st, &out->m);
    if (rc) return rc;
    out->type = PROMQL_TYPE_VECTOR;
    /* Order matters only for an instant query: a range query's matrix is
     * sorted by labels (as Prometheus does). */
    if (st->n != 1 || out->m.n < 2) return 0;
    sort_ctx_t c = { .desc = desc };
    if (by_label) {
        c.nnames = n->u.call.nargs - 1;
        c.names = strata_arena_alloc(ev->a, (c.nnames + 1) * sizeof *c.names);
        if (!c.names) return pq_nomem(ev);
        for (size_t i = 0; i < c.nnames; i++)
            if ((rc = string_arg(ev, n->u.call.args[i + 1], st, &c.names[i])) != 0) return rc;
    }
    sort_item_t *it = strata_arena_alloc(ev->a, out->m.n * sizeof *it);
    if (!it) return pq_nomem(ev);
    for (size_t i = 0; i < out->m.n; i++) it[i] = (sort_item_t){ out->m.s[i], i, &c };
    qsort(it, out->m.n, sizeof *it, cmp_items);
    for (size_t i = 0; i < out->m.n; i++) out->m.s[i] = it[i].s;
    out->m.ht = NULL;
    out->m.htcap = 0;
    return 0;
}

/* ---- label_replace / label_join ------------------------------------------------------- */

/* The label names strata stores (ingest's, Prometheus' legacy scheme), so
 * that a recording rule's output can be written back; Prometheus 3 would
 * take any UTF-8 here (docs/promql.md). */
static int valid_label_name(const char *s) { return ingest_valid_label_name(s, strlen(s)); }

static int name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9');
}

/* Go's Regexp.Expand of tmpl: $1, ${1}, $name, ${name}, $$; the RE2 pattern
 * re's groups are numbered as g says, plus one for the anchoring group of
 * "^(...)$". */
static char *expand(pq_ev_t *ev, const char *tmpl, const char *src, const regmatch_t *m, size_t nm,
                    const char *re, const promql_regex_groups_t *g)
{
    size_t cap = strlen(tmpl) + 1;
    for (const char *p = tmpl; *p; p++)
        if (*p == '$') cap += strlen(src);
    char *o = strata_arena_alloc(ev->a, cap), *q = o;
    if (!o) return NULL;
    for (const char *p = tmpl; *p;) {
        if (*p != '$') {
            *q++ = *p++;
            continue;
        }
        p++;
        if (*p == '$') {
            *q++ = '$';
            p++;
            continue;
        }
        int brace = *p == '{';
        const char *nm0 = p + brace, *e = nm0;
        while (name_char(*e)) e++;
        if (e == nm0 || (brace && *e != '}')) {
            *q++ = '$'; /* malformed: the $ as text */
            continue;
        }
        p = e + brace;
        size_t len = (size_t)(e - nm0);
        int num = 1;
        long k = 0;
        for (const char *d = nm0; d < e; d++) {
            if (*d < '0' || *d > '9' || k > 100000) {
                num = 0;
                break;
            }
            k = k * 10 + (*d - '0');
        }
        long grp = -1; /* RE2 group */
        if (num) {
            grp = k;
        } else {
            for (int i = 0; i < g->n; i++)
                if ((size_t)g->name_len[i] == len && strncmp(re + g->name_off[i], nm0, len) == 0) {
                    grp = i + 1;
                    break;
                }
        }
        if (grp < 0 || grp > g->n) continue;
        size_t gi = grp == 0 ? 0 : (size_t)g->posix[grp - 1] + 1;
        if (gi < nm && m[gi].rm_so >= 0) {
            size_t l = (size_t)(m[gi].rm_eo - m[gi].rm_so);
            memcpy(q, src + m[gi].rm_so, l);
            q += l;
        }
    }
    *q = 0;
    return o;
}

static int eval_label_replace(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    const char *dst = NULL, *repl = NULL, *src = NULL, *re = NULL;
    pq_mat_t in;
    int rc = vector_arg(ev, n->u.call.args[0], st, &in);
    if (!rc) rc = string_arg(ev, n->u.call.args[1], st, &dst);
    if (!rc) rc = string_arg(ev, n->u.call.args[2], st, &repl);
    if (!rc) rc = string_arg(ev, n->u.call.args[3], st, &src);
    if (!rc) rc = string_arg(ev, n->u.call.args[4], st, &re);
    if (rc) return rc;
    if (!valid_label_name(dst))
        return pq_fail(ev, STRATA_EEXEC, "invalid destination label name in label_replace(): %s", dst);
    size_t cap = 1025; /* always enough (promql_funcs.h) */
    char *posix = strata_arena_alloc(ev->a, cap), why[200] = "";
    promql_regex_groups_t groups;
    if (!posix) return pq_nomem(ev);
    /* Prometheus names the pattern; a pattern refused as pathological also
     * says why */
    if (promql_regex_translate(re, posix, cap, &groups, why, sizeof why) != 0)
        return pq_fail(ev, STRATA_EEXEC, "invalid regular expression in label_replace(): %s", re);
    if (tsdb_regex_check(posix, why, sizeof why) != 0)
        return pq_fail(ev, STRATA_EEXEC, "invalid regular expression in label_replace(): %s: %s", re, why);
    char *anch = strata_arena_alloc(ev->a, strlen(posix) + 8);
    if (!anch) return pq_nomem(ev);
    strcpy(anch, "^(");
    strcat(anch, posix);
    strcat(anch, ")$");
    regex_t rx;
    if (regcomp(&rx, anch, REG_EXTENDED) != 0)
        return pq_fail(ev, STRATA_EEXEC, "invalid regular expression in label_replace(): %s", re);
    size_t nm = rx.re_nsub + 1;
    regmatch_t *m = strata_arena_alloc(ev->a, nm * sizeof *m);
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; m && !rc && i < in.n; i++) {
        const char *v = pq_label_get(in.s[i].labels, in.s[i].nl, src);
        const tsdb_label_t *l = in.s[i].labels;
        size_t nl = in.s[i].nl, idx;
        if (regexec(&rx, v ? v : "", nm, m, 0) == 0) {
            char *res = expand(ev, repl, v ? v : "", m, nm, re, &groups);
            if (!res || !(l = pq_labels_set(ev, l, nl, dst, res, &nl))) rc = pq_nomem(ev);
        }
        if (!rc) rc = pq_mat_find_or_add(ev, &out->m, l, nl, &idx);
        for (size_t j = 0; !rc && j < in.s[i].n; j++)
            rc = pq_push(ev, &out->m.s[idx], in.s[i].pts[j].t, in.s[i].pts[j].v);
    }
    regfree(&rx);
    if (!m) return pq_nomem(ev);
    return rc ? rc : pq_mat_finish(ev, &out->m);
}

static int eval_label_join(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    const char *dst = NULL, *sep = NULL;
    pq_mat_t in;
    size_t ns = n->u.call.nargs - 3;
    const char **srcs = strata_arena_alloc(ev->a, (ns + 1) * sizeof *srcs);
    if (!srcs) return pq_nomem(ev);
    int rc = vector_arg(ev, n->u.call.args[0], st, &in);
    if (!rc) rc = string_arg(ev, n->u.call.args[1], st, &dst);
    if (!rc) rc = string_arg(ev, n->u.call.args[2], st, &sep);
    for (size_t i = 0; !rc && i < ns; i++) rc = string_arg(ev, n->u.call.args[3 + i], st, &srcs[i]);
    if (rc) return rc;
    if (!valid_label_name(dst))
        return pq_fail(ev, STRATA_EEXEC, "invalid destination label name in label_join(): %s", dst);
    for (size_t i = 0; i < ns; i++)
        if (!valid_label_name(srcs[i]))
            return pq_fail(ev, STRATA_EEXEC, "invalid source label name in label_join(): %s", srcs[i]);
    out->type = PROMQL_TYPE_VECTOR;
    for (size_t i = 0; i < in.n; i++) {
        size_t len = 1, nl, idx;
        for (size_t k = 0; k < ns; k++) {
            const char *v = pq_label_get(in.s[i].labels, in.s[i].nl, srcs[k]);
            len += (v ? strlen(v) : 0) + strlen(sep);
        }
        char *j = strata_arena_alloc(ev->a, len);
        if (!j) return pq_nomem(ev);
        j[0] = 0;
        for (size_t k = 0; k < ns; k++) {
            const char *v = pq_label_get(in.s[i].labels, in.s[i].nl, srcs[k]);
            if (k) strcat(j, sep);
            strcat(j, v ? v : "");
        }
        tsdb_label_t *l = pq_labels_set(ev, in.s[i].labels, in.s[i].nl, dst, j, &nl);
        if (!l) return pq_nomem(ev);
        if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &idx)) != 0) return rc;
        for (size_t q = 0; q < in.s[i].n; q++)
            if ((rc = pq_push(ev, &out->m.s[idx], in.s[i].pts[q].t, in.s[i].pts[q].v)) != 0) return rc;
    }
    return pq_mat_finish(ev, &out->m);
}

/* ---- histogram_quantile --------------------------------------------------------------- */

static int parse_le(const char *s, double *out)
{
    if (!s || !*s) return 0;
    char *end;
    *out = strtod(s, &end);
    return *end == 0;
}

static int eval_histogram_quantile(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    double *phi;
    pq_mat_t in;
    int rc = pq_eval_scalar(ev, n->u.call.args[0], st, &phi);
    if (!rc) rc = vector_arg(ev, n->u.call.args[1], st, &in);
    if (rc) return rc;
    out->type = PROMQL_TYPE_VECTOR;
    /* Groups: the labels without le (the name included, as Prometheus
     * groups); each group's answer drops the name as well. */
    pq_mat_t groups = { 0 };
    size_t *gof = strata_arena_alloc(ev->a, (in.n + 1) * sizeof *gof);
    double *upper = strata_arena_alloc(ev->a, (in.n + 1) * sizeof *upper);
    size_t *cur = strata_arena_calloc(ev->a, in.n + 1, sizeof *cur);
    if (!gof || !upper || !cur) return pq_nomem(ev);
    for (size_t i = 0; i < in.n; i++) {
        gof[i] = SIZE_MAX;
        if (!parse_le(pq_label_get(in.s[i].labels, in.s[i].nl, "le"), &upper[i])) continue; /* not a bucket */
        size_t nl;
        tsdb_label_t *l = pq_labels_copy(ev, in.s[i].labels, in.s[i].nl, "le", &nl);
        if (!l) return pq_nomem(ev);
        if ((rc = pq_mat_find_or_add(ev, &groups, l, nl, &gof[i])) != 0) return rc;
    }
    size_t ng = groups.n;
    size_t *gcount = strata_arena_calloc(ev->a, ng + 1, sizeof *gcount), *gstart, *gfill;
    size_t *outidx = strata_arena_alloc(ev->a, (ng + 1) * sizeof *outidx);
    gstart = strata_arena_alloc(ev->a, (ng + 1) * sizeof *gstart);
    gfill = strata_arena_alloc(ev->a, (ng + 1) * sizeof *gfill);
    api_hist_bucket_t *b = strata_arena_alloc(ev->a, (in.n + 1) * sizeof *b);
    uint32_t *idx = strata_arena_alloc(ev->a, (in.n + 1) * sizeof *idx);
    double *vals = strata_arena_alloc(ev->a, (in.n + 1) * sizeof *vals);
    if (!gcount || !outidx || !gstart || !gfill || !b || !idx || !vals) return pq_nomem(ev);
    for (size_t i = 0; i < in.n; i++)
        if (gof[i] != SIZE_MAX) gcount[gof[i]]++;
    for (size_t g = 0, acc = 0; g < ng; g++) {
        gstart[g] = acc;
        acc += gcount[g];
        size_t nl;
        tsdb_label_t *l = pq_labels_copy(ev, groups.s[g].labels, groups.s[g].nl, "__name__", &nl);
        if (!l) return pq_nomem(ev);
        if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &outidx[g])) != 0) return rc;
    }
    for (size_t i = 0; i < st->n; i++) {
        int64_t t = pq_step_t(st, i);
        size_t k = pq_at_step(&in, cur, t, idx, vals);
        for (size_t g = 0; g < ng; g++) gfill[g] = 0;
        for (size_t q = 0; q < k; q++) {
            size_t g = gof[idx[q]];
            if (g == SIZE_MAX) continue;
            b[gstart[g] + gfill[g]++] = (api_hist_bucket_t){ upper[idx[q]], vals[q] };
        }
        for (size_t g = 0; g < ng; g++) {
            if (!gfill[g]) continue;
            double v = api_histogram_quantile(phi[i], b + gstart[g], gfill[g]);
            if ((rc = pq_push(ev, &out->m.s[outidx[g]], t, v)) != 0) return rc;
        }
        if ((rc = pq_check(ev)) != 0) return rc;
    }
    return pq_mat_finish(ev, &out->m);
}

/* ---- the dispatch --------------------------------------------------------------------- */

static int const_vector(pq_ev_t *ev, const pq_steps_t *st, const double *v, pq_val_t *out)
{
    size_t idx;
    out->type = PROMQL_TYPE_VECTOR;
    int rc = pq_mat_add(ev, &out->m, NULL, 0, &idx);
    for (size_t i = 0; !rc && i < st->n; i++) rc = pq_push(ev, &out->m.s[0], pq_step_t(st, i), v[i]);
    return rc;
}

int pq_eval_call(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    const char *name = n->u.call.func->name;
    size_t na = n->u.call.nargs;
    int rc;
    if (is(name, "time") || is(name, "pi")) {
        out->type = PROMQL_TYPE_SCALAR;
        if (!(out->scalar = scalars_new(ev, st))) return pq_nomem(ev);
        for (size_t i = 0; i < st->n; i++)
            out->scalar[i] = is(name, "pi") ? M_PI : (double)pq_step_t(st, i) / 1000.0;
        return 0;
    }
    if (is(name, "vector")) {
        double *v;
        if ((rc = pq_eval_scalar(ev, n->u.call.args[0], st, &v)) != 0) return rc;
        return const_vector(ev, st, v, out);
    }
    if (is(name, "scalar")) {
        pq_mat_t m;
        if ((rc = vector_arg(ev, n->u.call.args[0], st, &m)) != 0) return rc;
        out->type = PROMQL_TYPE_SCALAR;
        size_t *cnt = strata_arena_calloc(ev->a, st->n, sizeof *cnt);
        if (!(out->scalar = scalars_new(ev, st)) || !cnt) return pq_nomem(ev);
        for (size_t i = 0; i < m.n; i++)
            for (size_t j = 0; j < m.s[i].n; j++) {
                size_t k = pq_step_idx(st, m.s[i].pts[j].t);
                cnt[k]++;
                out->scalar[k] = m.s[i].pts[j].v;
            }
        for (size_t i = 0; i < st->n; i++)
            if (cnt[i] != 1) out->scalar[i] = NAN;
        return 0;
    }
    if (is(name, "timestamp")) {
        const promql_node_t *a = pq_unparen(n->u.call.args[0]);
        pq_mat_t in = { 0 };
        /* of a selector: the selected sample's own time */
        if (a->kind == PROMQL_VECTOR_SEL)
            rc = pq_eval_vsel(ev, a, st, 1, &in);
        else
            rc = vector_arg(ev, a, st, &in);
        if (rc) return rc;
        out->type = PROMQL_TYPE_VECTOR;
        for (size_t i = 0; i < in.n; i++) {
            size_t nl, idx;
            tsdb_label_t *l = pq_labels_copy(ev, in.s[i].labels, in.s[i].nl, "__name__", &nl);
            if (!l) return pq_nomem(ev);
            if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &idx)) != 0) return rc;
            for (size_t j = 0; j < in.s[i].n; j++) {
                const tsdb_sample_t *p = &in.s[i].pts[j];
                if ((rc = pq_push(ev, &out->m.s[idx], p->t,
                                  a->kind == PROMQL_VECTOR_SEL ? p->v : p->t / 1000.0)))
                    return rc;
            }
        }
        return pq_mat_finish(ev, &out->m);
    }
    if (is(name, "absent")) return eval_absent(ev, n, st, out, 0);
    if (is(name, "absent_over_time")) return eval_absent(ev, n, st, out, 1);
    if (is(name, "sort")) return eval_sort(ev, n, st, out, 0, 0);
    if (is(name, "sort_desc")) return eval_sort(ev, n, st, out, 1, 0);
    if (is(name, "sort_by_label")) return eval_sort(ev, n, st, out, 0, 1);
    if (is(name, "sort_by_label_desc")) return eval_sort(ev, n, st, out, 1, 1);
    if (is(name, "label_replace")) return eval_label_replace(ev, n, st, out);
    if (is(name, "label_join")) return eval_label_join(ev, n, st, out);
    if (is(name, "histogram_quantile")) return eval_histogram_quantile(ev, n, st, out);
    if (strncmp(name, "histogram_", 10) == 0) {
        /* native-histogram functions: float series give nothing */
        out->type = PROMQL_TYPE_VECTOR;
        return 0;
    }
    for (size_t i = 0; i < na; i++)
        if (n->u.call.args[i]->type == PROMQL_TYPE_MATRIX) return eval_range_fn(ev, n, st, out);
    promql_elem_fn_t fn = promql_elem_fn_lookup(name);
    if (fn) return eval_elem(ev, n, st, fn, out);
    return pq_fail(ev, STRATA_EINVAL, "function \"%s\" is not supported", name);
}
