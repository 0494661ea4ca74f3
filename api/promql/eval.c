/*
 * eval.c: promql_eval (promql.h): the step grid, the node dispatch, the
 * selectors (instant, range, subquery) over the read seam, label-set tables
 * and the shape of the result.  Functions, aggregations and binary operators
 * live in eval_call.c, aggregate.c and binop.c; docs/promql.md, "Evaluator",
 * says what follows Prometheus and how.
 */
#include "eval_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "promql_funcs.h"

#define PQ_DEFAULT_LOOKBACK   (5 * 60 * 1000)
#define PQ_DEFAULT_SUBQ_STEP  (60 * 1000)
#define PQ_DEFAULT_MAX_POINTS 11000

/* ---- errors --------------------------------------------------------------------------- */

int pq_fail(pq_ev_t *ev, int rc, const char *fmt, ...)
{
    if (ev->msg && ev->msgcap && !ev->msg[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ev->msg, ev->msgcap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int pq_nomem(pq_ev_t *ev) { return pq_fail(ev, STRATA_ENOMEM, "out of memory evaluating the query"); }

/* A read's failure in Prometheus' words, with strata's reason. */
static int read_fail(pq_ev_t *ev, int rc)
{
    char why[256];
    const char *w = api_read_budget_why(ev->opts->budget, why, sizeof why);
    if (rc == STRATA_ELIMIT)
        return pq_fail(ev, rc,
                       "query processing would load too many samples into memory in query execution%s%s",
                       *w ? ": " : "", w);
    if (rc == STRATA_ETIMEOUT)
        return pq_fail(ev, rc, "query timed out in expression evaluation%s%s", *w ? ": " : "", w);
    return pq_fail(ev, rc, "reading the store: %s", strata_strerror(rc));
}

/* A read's error as a walk returns it: the budget's and the deadline's in
 * Prometheus' words (read_fail), any other as it is. */
static int read_rc(pq_ev_t *ev, int rc)
{
    return rc == STRATA_ELIMIT || rc == STRATA_ETIMEOUT ? read_fail(ev, rc) : rc;
}

int pq_check(pq_ev_t *ev)
{
    /* The seam checks the deadline on every read; between reads the
     * evaluator looks at it now and then, so a costly evaluation stops too. */
    if ((ev->checks++ & 63) != 0) return 0;
    int rc = api_read_budget_check(ev->opts->budget);
    return rc ? read_fail(ev, rc) : 0;
}

const promql_node_t *pq_unparen(const promql_node_t *n)
{
    while (n && n->kind == PROMQL_PAREN) n = n->u.unary.expr;
    return n;
}

/* ---- labels --------------------------------------------------------------------------- */

const char *pq_label_get(const tsdb_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

int pq_labels_cmp(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb)
{
    /* Prometheus' labels.Compare: name, then value, then length. */
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c) return c;
        c = strcmp(a[i].value, b[i].value);
        if (c) return c;
    }
    return na < nb ? -1 : na > nb ? 1 : 0;
}

tsdb_label_t *pq_labels_copy(pq_ev_t *ev, const tsdb_label_t *l, size_t n, const char *drop, size_t *nout)
{
    tsdb_label_t *o = strata_arena_alloc(ev->a, (n ? n : 1) * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!drop || strcmp(l[i].name, drop) != 0) o[k++] = l[i];
    *nout = k;
    return o;
}

tsdb_label_t *pq_labels_set(pq_ev_t *ev, const tsdb_label_t *l, size_t n, const char *name, const char *value,
                            size_t *nout)
{
    tsdb_label_t *o = strata_arena_alloc(ev->a, (n + 1) * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    int done = 0;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(l[i].name, name);
        if (c == 0) {
            if (*value) o[k++] = (tsdb_label_t){ l[i].name, value };
            done = 1;
            continue;
        }
        if (c > 0 && !done) {
            if (*value) o[k++] = (tsdb_label_t){ name, value };
            done = 1;
        }
        o[k++] = l[i];
    }
    if (!done && *value) o[k++] = (tsdb_label_t){ name, value };
    *nout = k;
    return o;
}

static int in_names(const promql_labels_t *names, const char *name)
{
    for (size_t i = 0; names && i < names->n; i++)
        if (strcmp(names->names[i], name) == 0) return 1;
    return 0;
}

tsdb_label_t *pq_labels_filter(pq_ev_t *ev, const tsdb_label_t *l, size_t n, const promql_labels_t *names,
                               int keep, size_t *nout)
{
    tsdb_label_t *o = strata_arena_alloc(ev->a, (n ? n : 1) * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int in = in_names(names, l[i].name);
        if (keep ? in : !in && strcmp(l[i].name, "__name__") != 0) o[k++] = l[i];
    }
    *nout = k;
    return o;
}

char *pq_labels_str(pq_ev_t *ev, const tsdb_label_t *l, size_t n)
{
    size_t len = 3;
    for (size_t i = 0; i < n; i++) len += strlen(l[i].name) + 2 * strlen(l[i].value) + 6;
    char *s = strata_arena_alloc(ev->a, len);
    if (!s) return NULL;
    char *p = s;
    *p++ = '{';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',', *p++ = ' ';
        p += sprintf(p, "%s=\"", l[i].name);
        for (const char *v = l[i].value; *v; v++) {
            if (*v == '"' || *v == '\\') *p++ = '\\';
            *p++ = *v;
        }
        *p++ = '"';
    }
    *p++ = '}';
    *p = 0;
    return s;
}

/* ---- series tables -------------------------------------------------------------------- */

static uint64_t labels_hash(const tsdb_label_t *l, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = l[i].name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = l[i].value; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xfe) * 1099511628211ULL;
    }
    return h;
}

static int mat_grow(pq_ev_t *ev, pq_mat_t *m)
{
    if (m->n < m->cap) return 0;
    size_t cap = m->cap ? m->cap * 2 : 8;
    pq_series_t *s = strata_arena_alloc(ev->a, cap * sizeof *s);
    if (!s) return pq_nomem(ev);
    if (m->n) memcpy(s, m->s, m->n * sizeof *s);
    m->s = s;
    m->cap = cap;
    return 0;
}

static int mat_rehash(pq_ev_t *ev, pq_mat_t *m)
{
    size_t cap = m->htcap ? m->htcap * 2 : 16;
    while (cap < 2 * (m->n + 1)) cap *= 2;
    uint32_t *ht = strata_arena_calloc(ev->a, cap, sizeof *ht);
    if (!ht) return pq_nomem(ev);
    for (size_t i = 0; i < m->n; i++) {
        size_t h = (size_t)labels_hash(m->s[i].labels, m->s[i].nl) & (cap - 1);
        while (ht[h]) h = (h + 1) & (cap - 1);
        ht[h] = (uint32_t)(i + 1);
    }
    m->ht = ht;
    m->htcap = cap;
    return 0;
}

int pq_mat_add(pq_ev_t *ev, pq_mat_t *m, const tsdb_label_t *l, size_t nl, size_t *idx)
{
    int rc = mat_grow(ev, m);
    if (rc) return rc;
    m->s[m->n] = (pq_series_t){ .labels = l, .nl = nl };
    *idx = m->n++;
    if (m->ht) {
        if (2 * m->n > m->htcap) return mat_rehash(ev, m);
        size_t h = (size_t)labels_hash(l, nl) & (m->htcap - 1);
        while (m->ht[h]) h = (h + 1) & (m->htcap - 1);
        m->ht[h] = (uint32_t)m->n;
    }
    return 0;
}

int pq_mat_find_or_add(pq_ev_t *ev, pq_mat_t *m, const tsdb_label_t *l, size_t nl, size_t *idx)
{
    if (!m->ht || 2 * (m->n + 1) > m->htcap) {
        int rc = mat_rehash(ev, m);
        if (rc) return rc;
    }
    size_t h = (size_t)labels_hash(l, nl) & (m->htcap - 1);
    while (m->ht[h]) {
        pq_series_t *s = &m->s[m->ht[h] - 1];
        if (pq_labels_cmp(s->labels, s->nl, l, nl) == 0) {
            *idx = m->ht[h] - 1;
            return 0;
        }
        h = (h + 1) & (m->htcap - 1);
    }
    int rc = mat_grow(ev, m);
    if (rc) return rc;
    m->s[m->n] = (pq_series_t){ .labels = l, .nl = nl };
    *idx = m->n++;
    m->ht[h] = (uint32_t)m->n;
    return 0;
}

int pq_push(pq_ev_t *ev, pq_series_t *s, int64_t t, double v)
{
    if (ev->max_points && ++ev->points > ev->max_points)
        return pq_fail(ev, STRATA_ELIMIT,
                       "query processing would load too many samples into memory in query execution: the "
                       "evaluation holds more than %llu points (--query-max-samples)",
                       (unsigned long long)ev->max_points);
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        tsdb_sample_t *p = strata_arena_alloc(ev->a, cap * sizeof *p);
        if (!p) return pq_nomem(ev);
        if (s->n) memcpy(p, s->pts, s->n * sizeof *p);
        s->pts = p;
        s->cap = cap;
    }
    if (s->n && s->pts[s->n - 1].t >= t) {
        if (s->pts[s->n - 1].t == t)
            return pq_fail(ev, STRATA_EEXEC, "vector cannot contain metrics with the same labelset");
        s->unsorted = 1;
    }
    s->pts[s->n++] = (tsdb_sample_t){ t, v };
    return 0;
}

int pq_reserve(pq_ev_t *ev, pq_series_t *s, size_t n)
{
    if (s->cap || !n) return 0;
    if (!(s->pts = strata_arena_alloc(ev->a, n * sizeof *s->pts))) return pq_nomem(ev);
    s->cap = n;
    return 0;
}

static int cmp_sample(const void *a, const void *b)
{
    int64_t x = ((const tsdb_sample_t *)a)->t, y = ((const tsdb_sample_t *)b)->t;
    return x < y ? -1 : x > y;
}

int pq_mat_finish(pq_ev_t *ev, pq_mat_t *m)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        pq_series_t *s = &m->s[i];
        if (s->unsorted) {
            qsort(s->pts, s->n, sizeof *s->pts, cmp_sample);
            for (size_t j = 1; j < s->n; j++)
                if (s->pts[j].t == s->pts[j - 1].t)
                    return pq_fail(ev, STRATA_EEXEC, "vector cannot contain metrics with the same labelset");
            s->unsorted = 0;
        }
        if (s->n) m->s[k++] = *s;
    }
    if (k != m->n) {
        m->n = k;
        m->ht = NULL; /* rebuilt by the next find_or_add */
        m->htcap = 0;
    }
    return 0;
}

size_t pq_at_step(const pq_mat_t *m, size_t *cur, int64_t t, uint32_t *idx, double *vals)
{
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        const pq_series_t *s = &m->s[i];
        while (cur[i] < s->n && s->pts[cur[i]].t < t) cur[i]++;
        if (cur[i] < s->n && s->pts[cur[i]].t == t) {
            if (idx) idx[k] = (uint32_t)i;
            if (vals) vals[k] = s->pts[cur[i]].v;
            k++;
        }
    }
    return k;
}

/* ---- selectors ------------------------------------------------------------------------ */

static int build_matchers(pq_ev_t *ev, const promql_node_t *vs, tsdb_matcher_t *m)
{
    size_t n = vs->u.sel.nmatchers;
    if (n > API_READ_MAX_MATCHERS - 1)
        return pq_fail(ev, STRATA_EINVAL, "too many label matchers in a selector");
    for (size_t i = 0; i < n; i++) {
        const promql_matcher_t *pm = &vs->u.sel.matchers[i];
        m[i] = (tsdb_matcher_t){ (enum tsdb_match_op)pm->type, pm->name, pm->value };
        if (pm->type == TSDB_MATCH_RE || pm->type == TSDB_MATCH_NRE) {
            size_t cap = 1025; /* always enough (promql_funcs.h) */
            char *buf = strata_arena_alloc(ev->a, cap);
            char why[200] = "";
            int icase = 0;
            if (!buf) return pq_nomem(ev);
            int rc = promql_regex_to_posix(pm->value, buf, cap, &icase, why, sizeof why);
            if (rc)
                return pq_fail(ev, STRATA_EINVAL, "invalid regular expression \"%s\" in a matcher of %s: %s",
                               pm->value, pm->name, why[0] ? why : strata_strerror(rc));
            /* the translator spells case folding out as [aA] classes */
            if (icase) return pq_fail(ev, STRATA_EINVAL, "a case-insensitive matcher cannot be translated");
            m[i].value = buf;
        }
    }
    return 0;
}

/* Selects vs over [mint, maxt]; the tenant matcher is the seam's. */
static int sel_open(pq_ev_t *ev, const promql_node_t *vs, int64_t mint, int64_t maxt, api_read_set_t **set)
{
    tsdb_matcher_t m[API_READ_MAX_MATCHERS];
    int rc = build_matchers(ev, vs, m);
    if (rc) return rc;
    rc = api_read_select(ev->opts->src, ev->opts->tenant, 0, ev->opts->budget, m, vs->u.sel.nmatchers, mint,
                         maxt, set);
    if (rc == STRATA_EINVAL || rc == STRATA_EBADREGEX) {
        for (size_t i = 0; i < vs->u.sel.nmatchers; i++)
            if (strcmp(m[i].name, INGEST_TENANT_LABEL) == 0)
                return pq_fail(ev, STRATA_EINVAL, "invalid selector: the label %s comes from the token",
                               INGEST_TENANT_LABEL);
        return pq_fail(ev, STRATA_EINVAL, "invalid selector: %s", strata_strerror(rc));
    }
    return rc ? read_fail(ev, rc) : 0;
}

static void sel_close(pq_ev_t *ev, api_read_set_t *set)
{
    if (!set) return;
    ev->damaged += api_read_set_damaged(set, NULL);
    api_read_set_free(set);
}

/* Times, offsets, ranges and steps beyond 2^53 ms (285,000 years) are
 * refused, so that the few of them any window adds up stay far inside
 * int64. */
#define PQ_TIME_MAX ((int64_t)1 << 53)
static int time_ok(int64_t v) { return v >= -PQ_TIME_MAX && v <= PQ_TIME_MAX; }

static int times_ok(pq_ev_t *ev, promql_at_t at, int64_t at_ms, int64_t offset, int64_t range, int64_t step)
{
    if ((at == PROMQL_AT_TIME && !time_ok(at_ms)) || !time_ok(offset) || !time_ok(range) || !time_ok(step))
        return pq_fail(ev, STRATA_EINVAL, "a time, offset, range or step of the query is out of range");
    return 0;
}

/* The effective time of selector or subquery at step time t. */
int64_t pq_at_time(const pq_ev_t *ev, promql_at_t at, int64_t at_ms, int64_t t)
{
    switch (at) {
    case PROMQL_AT_TIME: return at_ms;
    case PROMQL_AT_START: return ev->qstart;
    case PROMQL_AT_END: return ev->qend;
    default: return t;
    }
}

/* The current series' labels without the tenant label, copied to the arena
 * (the set's own labels go at the next api_read_set_next). */
static tsdb_label_t *series_labels(pq_ev_t *ev, api_read_set_t *set, size_t *nout)
{
    size_t n;
    const tsdb_label_t *l = api_read_set_labels(set, &n);
    tsdb_label_t *o = strata_arena_alloc(ev->a, (n ? n : 1) * sizeof *o);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
        o[k].name = strata_arena_strdup(ev->a, l[i].name);
        o[k].value = strata_arena_strdup(ev->a, l[i].value);
        if (!o[k].name || !o[k].value) return NULL;
        k++;
    }
    *nout = k;
    return o;
}

int pq_eval_vsel(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, int ts_value, pq_mat_t *out)
{
    const int64_t off = n->u.sel.offset_ms, lb = ev->lookback;
    int rc = times_ok(ev, n->u.sel.at, n->u.sel.at_ms, off, 0, 0);
    if (rc) return rc;
    int64_t first = pq_at_time(ev, n->u.sel.at, n->u.sel.at_ms, pq_step_t(st, 0)) - off;
    int64_t last = pq_at_time(ev, n->u.sel.at, n->u.sel.at_ms, pq_step_t(st, st->n - 1)) - off;
    api_read_set_t *set = NULL;
    size_t *at = strata_arena_alloc(ev->a, (st->n ? st->n : 1) * sizeof *at);
    if (!at) return pq_nomem(ev);
    if ((rc = sel_open(ev, n, first - lb + 1, last, &set)) != 0) return rc;
    while ((rc = api_read_set_next(set)) == 1) {
        const tsdb_sample_t *s;
        size_t ns, j = 0, idx = 0;
        if ((rc = api_read_set_samples(set, &s, &ns)) != 0) break;
        /* each step's sample index, found once by galloping (a wide step
         * skips most samples), and the steps with a value counted, so that
         * the points are allocated once, at their size */
        size_t want = 0;
        for (size_t i = 0; i < st->n; i++) {
            int64_t te = pq_at_time(ev, n->u.sel.at, n->u.sel.at_ms, pq_step_t(st, i)) - off;
            j = pq_after(s, j, ns, te);
            at[i] = j;
            if (j && s[j - 1].t > te - lb && !tsdb_is_stale(s[j - 1].v)) want++;
        }
        if (!want) continue;
        int added = 0;
        for (size_t i = 0; i < st->n; i++) {
            int64_t t = pq_step_t(st, i), te = pq_at_time(ev, n->u.sel.at, n->u.sel.at_ms, t) - off;
            j = at[i];
            if (j == 0 || s[j - 1].t <= te - lb || tsdb_is_stale(s[j - 1].v)) continue;
            if (!added) {
                size_t nl;
                tsdb_label_t *l = series_labels(ev, set, &nl);
                if (!l) {
                    rc = pq_nomem(ev);
                    break;
                }
                /* one label set per series of a select: no lookup needed */
                if ((rc = pq_mat_add(ev, out, l, nl, &idx)) != 0) break;
                if (!(out->s[idx].pts = strata_arena_alloc(ev->a, want * sizeof(tsdb_sample_t)))) {
                    rc = pq_nomem(ev);
                    break;
                }
                out->s[idx].cap = want;
                added = 1;
            }
            double v = ts_value ? (double)s[j - 1].t / 1000.0 : s[j - 1].v;
            if ((rc = pq_push(ev, &out->s[idx], t, v)) != 0) break;
        }
        if (rc) break;
    }
    sel_close(ev, set);
    return rc < 0 ? read_rc(ev, rc) : 0;
}

/* The subquery's own step grid for the outer steps. */
static int subquery_steps(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_steps_t *inner,
                          pq_window_t *w)
{
    int64_t step = n->u.subquery.step_ms > 0 ? n->u.subquery.step_ms : PQ_DEFAULT_SUBQ_STEP;
    int rc = times_ok(ev, n->u.subquery.at, n->u.subquery.at_ms, n->u.subquery.offset_ms,
                      n->u.subquery.range_ms, step);
    if (rc) return rc;
    w->range = n->u.subquery.range_ms;
    w->offset = n->u.subquery.offset_ms;
    w->fixed = n->u.subquery.at != PROMQL_AT_NONE;
    w->at = pq_at_time(ev, n->u.subquery.at, n->u.subquery.at_ms, 0);
    int64_t lo = pq_win_end(w, pq_step_t(st, 0)) - w->range, hi = pq_win_end(w, pq_step_t(st, st->n - 1));
    /* the first multiple of step after lo (absolute, from epoch 0) */
    int64_t start = lo >= 0 ? lo / step * step : -((-lo + step - 1) / step) * step;
    if (start <= lo) start += step;
    if (start > hi) {
        inner->n = 0;
        return 0;
    }
    inner->start = start;
    inner->step = step;
    inner->n = (size_t)((hi - start) / step) + 1;
    if (inner->n > 50 * 1000 * 1000)
        return pq_fail(ev, STRATA_EEXEC, "subquery would evaluate at too many steps (%zu)", inner->n);
    return 0;
}

/* Opens the select of matrix selector n for every window of the steps st,
 * and sets w to its range, offset and @. */
static int matrix_open(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_window_t *w,
                       api_read_set_t **set)
{
    const promql_node_t *vs = n->u.matrix.vector;
    int rc = times_ok(ev, vs->u.sel.at, vs->u.sel.at_ms, vs->u.sel.offset_ms, n->u.matrix.range_ms, 0);
    if (rc) return rc;
    w->range = n->u.matrix.range_ms;
    w->offset = vs->u.sel.offset_ms;
    w->fixed = vs->u.sel.at != PROMQL_AT_NONE;
    w->at = pq_at_time(ev, vs->u.sel.at, vs->u.sel.at_ms, 0);
    int64_t lo = pq_win_end(w, pq_step_t(st, 0)) - w->range, hi = pq_win_end(w, pq_step_t(st, st->n - 1));
    return sel_open(ev, vs, lo + 1, hi, set);
}

int pq_range_walk(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_window_t *w, pq_series_cb cb,
                  void *ud)
{
    n = pq_unparen(n);
    if (n->kind == PROMQL_SUBQUERY) {
        pq_steps_t inner;
        int rc = subquery_steps(ev, n, st, &inner, w);
        if (rc || inner.n == 0) return rc;
        pq_val_t v;
        if ((rc = pq_eval(ev, n->u.subquery.expr, &inner, &v)) != 0) return rc;
        if (v.type == PROMQL_TYPE_SCALAR) {
            /* the parser refuses it as Prometheus does ("subquery is only
             * allowed on instant vector"); a hand-built tree gets the same */
            return pq_fail(ev, STRATA_EINVAL,
                           "subquery is only allowed on instant vector, got scalar instead");
        }
        for (size_t i = 0; i < v.m.n; i++)
            if ((rc = cb(ev, ud, v.m.s[i].labels, v.m.s[i].nl, v.m.s[i].pts, v.m.s[i].n)) != 0) return rc;
        return 0;
    }
    if (n->kind != PROMQL_MATRIX_SEL) return pq_fail(ev, STRATA_EINVAL, "expected a range vector");
    api_read_set_t *set = NULL;
    int rc = matrix_open(ev, n, st, w, &set);
    if (rc) return rc;
    tsdb_sample_t *buf = NULL;
    size_t bufcap = 0;
    while ((rc = api_read_set_next(set)) == 1) {
        const tsdb_sample_t *s;
        size_t ns, k = 0;
        if ((rc = api_read_set_samples(set, &s, &ns)) != 0) break;
        /* most series hold no stale marker: hand out the seam's array as it
         * is, copying (to drop the markers) only from the first one on */
        while (k < ns && !tsdb_is_stale(s[k].v)) k++;
        if (k == ns) {
            size_t nl;
            tsdb_label_t *l = series_labels(ev, set, &nl);
            if (!l) {
                rc = pq_nomem(ev);
                break;
            }
            if ((rc = cb(ev, ud, l, nl, s, ns)) != 0) break;
            continue;
        }
        if (ns > bufcap) {
            /* one scratch buffer for every series of the select */
            bufcap = ns * 2;
            if (!(buf = strata_arena_alloc(ev->a, bufcap * sizeof *buf))) {
                rc = pq_nomem(ev);
                break;
            }
        }
        memcpy(buf, s, k * sizeof *buf);
        for (size_t i = k; i < ns; i++)
            if (!tsdb_is_stale(s[i].v)) buf[k++] = s[i];
        size_t nl;
        tsdb_label_t *l = series_labels(ev, set, &nl);
        if (!l) {
            rc = pq_nomem(ev);
            break;
        }
        if ((rc = cb(ev, ud, l, nl, buf, k)) != 0) break;
    }
    sel_close(ev, set);
    return rc < 0 ? read_rc(ev, rc) : 0;
}

int pq_set_samples(pq_ev_t *ev, api_read_set_t *set, const tsdb_sample_t **out, size_t *n)
{
    const tsdb_sample_t *s;
    size_t ns, k = 0;
    int rc = api_read_set_samples(set, &s, &ns);
    if (rc) return read_rc(ev, rc);
    tsdb_sample_t *buf = strata_arena_alloc(ev->a, (ns ? ns : 1) * sizeof *buf);
    if (!buf) return pq_nomem(ev);
    for (size_t i = 0; i < ns; i++)
        if (!tsdb_is_stale(s[i].v)) buf[k++] = s[i];
    *out = buf;
    *n = k;
    return 0;
}

int pq_rollup_walk(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_window_t *w, int64_t res,
                   pq_rollup_cb cb, void *ud)
{
    n = pq_unparen(n);
    api_read_set_t *set = NULL;
    int rc = matrix_open(ev, n, st, w, &set);
    if (rc) return rc;
    while ((rc = api_read_set_next(set)) == 1) {
        const tsdb_rollup_point_t *p;
        size_t np, nl;
        if ((rc = api_read_set_rollups(set, res, &p, &np)) != 0) break;
        tsdb_label_t *l = series_labels(ev, set, &nl);
        if (!l) {
            rc = pq_nomem(ev);
            break;
        }
        if ((rc = cb(ev, ud, set, l, nl, p, np)) != 0) break;
    }
    sel_close(ev, set);
    return rc < 0 ? read_rc(ev, rc) : 0;
}

/* A range vector as the result of an instant query: each series' samples
 * in (t - range, t] at their own timestamps. */
typedef struct matrix_ud {
    pq_mat_t *out;
    pq_window_t *w;
    int64_t t;
} matrix_ud_t;

static int matrix_cb(pq_ev_t *ev, void *ud, const tsdb_label_t *l, size_t nl, const tsdb_sample_t *s,
                     size_t n)
{
    matrix_ud_t *u = ud;
    int64_t te = pq_win_end(u->w, u->t), ts = te - u->w->range;
    size_t idx;
    int added = 0, rc;
    for (size_t i = 0; i < n; i++) {
        if (s[i].t <= ts || s[i].t > te) continue;
        if (!added) {
            if ((rc = pq_mat_add(ev, u->out, l, nl, &idx)) != 0) return rc;
            added = 1;
        }
        if ((rc = pq_push(ev, &u->out->s[idx], s[i].t, s[i].v)) != 0) return rc;
    }
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------- */

int pq_eval_scalar(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, double **out)
{
    pq_val_t v;
    int rc = pq_eval(ev, n, st, &v);
    if (rc) return rc;
    if (v.type != PROMQL_TYPE_SCALAR) return pq_fail(ev, STRATA_EINVAL, "expected a scalar argument");
    *out = v.scalar;
    return 0;
}

static double *scalar_new(pq_ev_t *ev, const pq_steps_t *st)
{
    return strata_arena_alloc(ev->a, (st->n ? st->n : 1) * sizeof(double));
}

static int eval_unary(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    int rc = pq_eval(ev, n->u.unary.expr, st, out);
    if (rc || !n->u.unary.negate) return rc;
    if (out->type == PROMQL_TYPE_SCALAR) {
        for (size_t i = 0; i < st->n; i++) out->scalar[i] = -out->scalar[i];
        return 0;
    }
    /* -v drops the metric name; two series differing only by it collide */
    pq_mat_t in = out->m;
    memset(&out->m, 0, sizeof out->m);
    for (size_t i = 0; i < in.n; i++) {
        size_t nl, idx;
        tsdb_label_t *l = pq_labels_copy(ev, in.s[i].labels, in.s[i].nl, "__name__", &nl);
        if (!l) return pq_nomem(ev);
        if ((rc = pq_mat_find_or_add(ev, &out->m, l, nl, &idx)) != 0) return rc;
        for (size_t j = 0; j < in.s[i].n; j++)
            if ((rc = pq_push(ev, &out->m.s[idx], in.s[i].pts[j].t, -in.s[i].pts[j].v)) != 0) return rc;
    }
    return pq_mat_finish(ev, &out->m);
}

int pq_eval(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    memset(out, 0, sizeof *out);
    out->type = n->type;
    int rc = pq_check(ev);
    if (rc) return rc;
    switch (n->kind) {
    case PROMQL_NUMBER:
        out->type = PROMQL_TYPE_SCALAR;
        if (!(out->scalar = scalar_new(ev, st))) return pq_nomem(ev);
        for (size_t i = 0; i < st->n; i++) out->scalar[i] = n->u.number;
        return 0;
    case PROMQL_STRING_LIT:
        out->type = PROMQL_TYPE_STRING;
        out->str = n->u.string;
        return 0;
    case PROMQL_VECTOR_SEL: out->type = PROMQL_TYPE_VECTOR; return pq_eval_vsel(ev, n, st, 0, &out->m);
    case PROMQL_MATRIX_SEL:
    case PROMQL_SUBQUERY: {
        /* Only an instant query's result: every sample of the window. */
        out->type = PROMQL_TYPE_MATRIX;
        if (st->n != 1)
            return pq_fail(
                ev, STRATA_EINVAL,
                "invalid expression type \"range vector\" for range query, must be Scalar or instant "
                "Vector");
        pq_window_t w;
        matrix_ud_t u = { &out->m, &w, st->start };
        return pq_range_walk(ev, n, st, &w, matrix_cb, &u);
    }
    case PROMQL_PAREN: return pq_eval(ev, n->u.unary.expr, st, out);
    case PROMQL_UNARY: return eval_unary(ev, n, st, out);
    case PROMQL_BINARY: return pq_eval_binary(ev, n, st, out);
    case PROMQL_AGGREGATE: return pq_eval_aggregate(ev, n, st, out);
    case PROMQL_CALL: return pq_eval_call(ev, n, st, out);
    }
    return pq_fail(ev, STRATA_EINVAL, "unknown expression node");
}

/* ---- the result ----------------------------------------------------------------------- */

static int cmp_series(const void *a, const void *b)
{
    const promql_series_t *x = a, *y = b;
    return pq_labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

static int result_series(pq_ev_t *ev, const pq_mat_t *m, promql_result_t *out)
{
    out->series = strata_arena_alloc(ev->a, (m->n ? m->n : 1) * sizeof *out->series);
    if (!out->series) return pq_nomem(ev);
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++) {
        if (!m->s[i].n) continue;
        out->series[k++] = (promql_series_t){ m->s[i].labels, m->s[i].nl, m->s[i].pts, m->s[i].n };
    }
    out->nseries = k;
    return 0;
}

int promql_eval(const promql_engine_opts_t *opts, const promql_node_t *expr, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, strata_arena_t *arena, promql_result_t *out, char *msg, size_t msgcap)
{
    if (msg && msgcap) msg[0] = 0;
    memset(out, 0, sizeof *out);
    pq_ev_t ev = {
        .opts = opts, .a = arena, .msg = msg, .msgcap = msgcap, .qstart = start_ms, .qend = end_ms
    };
    ev.max_points = opts->budget ? opts->budget->max_samples : 0;
    ev.lookback = opts->lookback_ms > 0 ? opts->lookback_ms : PQ_DEFAULT_LOOKBACK;
    size_t maxp = opts->max_points_per_series ? opts->max_points_per_series : PQ_DEFAULT_MAX_POINTS;
    if (!expr || !opts->src) return pq_fail(&ev, STRATA_EINVAL, "no expression or no source to read");
    if (!time_ok(start_ms) || !time_ok(end_ms) || !time_ok(step_ms) || !time_ok(ev.lookback))
        return pq_fail(&ev, STRATA_EINVAL, "a time, offset, range or step of the query is out of range");
    pq_steps_t st = { .start = start_ms, .step = 1, .n = 1 };
    int range = step_ms > 0;
    if (range) {
        if (end_ms < start_ms)
            return pq_fail(&ev, STRATA_EINVAL, "end timestamp must not be before start time");
        if (expr->type != PROMQL_TYPE_SCALAR && expr->type != PROMQL_TYPE_VECTOR)
            return pq_fail(&ev, STRATA_EINVAL,
                           "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                           expr->type == PROMQL_TYPE_MATRIX ? "range vector" : "string");
        uint64_t n = (uint64_t)(end_ms - start_ms) / (uint64_t)step_ms + 1;
        if (n > maxp)
            return pq_fail(
                &ev, STRATA_EEXEC,
                "exceeded maximum resolution of %zu points per timeseries. Try decreasing the query "
                "resolution (?step=XX)",
                maxp);
        st.step = step_ms;
        st.n = (size_t)n;
    } else if (start_ms != end_ms) {
        return pq_fail(&ev, STRATA_EINVAL, "an instant query has start == end and step 0");
    }
    pq_val_t v;
    int rc = pq_eval(&ev, expr, &st, &v);
    if (rc) {
        if (msg && msgcap && !msg[0]) snprintf(msg, msgcap, "%s", strata_strerror(rc));
        return rc;
    }
    if (v.type == PROMQL_TYPE_VECTOR || v.type == PROMQL_TYPE_MATRIX) {
        if ((rc = pq_mat_finish(&ev, &v.m)) != 0) return rc;
    }
    if (!range) {
        out->type = v.type;
        out->t = start_ms;
        if (v.type == PROMQL_TYPE_SCALAR) out->scalar = v.scalar[0];
        if (v.type == PROMQL_TYPE_STRING) out->string = v.str;
        if (v.type == PROMQL_TYPE_VECTOR || v.type == PROMQL_TYPE_MATRIX) rc = result_series(&ev, &v.m, out);
    } else {
        out->type = PROMQL_TYPE_MATRIX;
        if (v.type == PROMQL_TYPE_SCALAR) {
            out->series = strata_arena_calloc(arena, 1, sizeof *out->series);
            tsdb_sample_t *p = strata_arena_alloc(arena, st.n * sizeof *p);
            if (!out->series || !p) return pq_nomem(&ev);
            for (size_t i = 0; i < st.n; i++) p[i] = (tsdb_sample_t){ pq_step_t(&st, i), v.scalar[i] };
            out->series[0] = (promql_series_t){ NULL, 0, p, st.n };
            out->nseries = 1;
        } else {
            rc = result_series(&ev, &v.m, out);
            if (!rc) qsort(out->series, out->nseries, sizeof *out->series, cmp_series);
        }
    }
    if (rc) return rc;
    if (ev.damaged) {
        out->warnings = strata_arena_alloc(arena, sizeof *out->warnings);
        char buf[200];
        snprintf(buf, sizeof buf,
                 "%llu damaged stored page(s) were skipped: some series are answered without their samples",
                 (unsigned long long)ev.damaged);
        if (!out->warnings || !(out->warnings[0] = strata_arena_strdup(arena, buf))) return pq_nomem(&ev);
        out->nwarnings = 1;
    }
    return 0;
}
