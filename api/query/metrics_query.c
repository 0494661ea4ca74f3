/*
 * metrics_query.c: the workload metrics query (metrics_query.h): the
 * catalog's source series (catalog.h) of every requested type that belong to
 * the workload (its workload_id, or one of its pods inside the pod's active
 * window), read in one select for the workload and one per pod over all the
 * types' names, routed to their types, downsampled through downsample.h (raw
 * samples, aligned 5m/1h rollups, or whole rollup intervals with raw edges)
 * and combined into the response metrics_render.c writes.
 * docs/metrics.md explains the choices; tests/test_metrics_query.c checks
 * them against a real tsdb.
 */
#include "metrics_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_log.h"

int api_metrics_response_partial(const api_metrics_response_t *r) { return r ? r->partial : 0; }
uint64_t api_metrics_response_points_read(const api_metrics_response_t *r) { return r ? r->points_read : 0; }

uint64_t api_metrics_response_damaged_pages(const api_metrics_response_t *r)
{
    return r ? r->damaged_pages : 0;
}

/* ---- the query ---------------------------------------------------------------------- */

typedef struct qpod {
    const char *ns, *pod, *node;
    int64_t first, end; /* active window [first, end) */
} qpod_t;

typedef struct gpu_group {
    const char *gpu, *node;
    api_combiner_t *comp[API_CATALOG_MAX_COMP];
} gpu_group_t;

/* One requested metric type: its read window, accumulators and failure. */
typedef struct tstate {
    const api_catalog_entry_t *c;
    int type;
    int64_t mint, maxt;             /* its select range (counters read from start - staleness) */
    uint64_t points;                /* read by this type */
    int cap_exceeded;               /* native max_points: the whole request fails */
    int failed;                     /* err is set: the rest of its series are passed over */
    int kept[API_CATALOG_MAX_COMP]; /* series with data in range, per component (first name) */
    char err[160];                  /* this type's failure */
    int any_series;
    api_combiner_t *comb;
    gpu_group_t *groups;
    size_t ng, gcap;
    api_hist_input_t *hin;
    size_t nh, hcap;
} tstate_t;

typedef struct qctx {
    const api_read_source_t *src;
    strata_arena_t *arena;
    const api_metrics_options_t *opt;
    const api_metrics_request_t *req;
    int32_t tenant;
    const char *wid;
    qpod_t *pods;
    size_t npods;

    /* the layout, the same for every type */
    api_buckets_t b;
    int64_t res;              /* 0 raw, else rollup resolution */
    int mixed;                /* res != 0: whole intervals from rollups, edges raw */
    api_read_budget_t budget; /* the request's --query-timeout deadline; the sample
                                 limit (--query-max-samples) is counted per type here */
    uint64_t damaged;         /* damaged block pages the reads skipped */
    api_point_t *scratch;
    size_t scap;

    tstate_t *ts; /* the requested types, in request order */
    size_t nts;
    size_t reading; /* the type being read, for a timeout's message */
} qctx_t;

static const char *label_get(const tsdb_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

static int type_fail(qctx_t *q, tstate_t *t, int rc, const char *what)
{
    if (!t->err[0]) {
        snprintf(t->err, sizeof t->err, "%s: %s", what, strata_strerror(rc));
        strata_error("metrics query: metric type failed", "type=%s tenant=%" PRId32 " workload=%s err=\"%s\"",
                     t->c->name, q->tenant, q->wid, t->err);
    }
    t->failed = 1;
    return rc;
}

static int arena_grow(strata_arena_t *a, void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? 2 * *cap : 16;
    void *na = strata_arena_alloc(a, nc * elem);
    if (!na) return STRATA_ENOMEM;
    if (n) memcpy(na, *arr, n * elem);
    *arr = na;
    *cap = nc;
    return 0;
}

/* Where a GPU runs: the series' node label, else dcgm-exporter's Hostname,
 * else the node of the pod it was joined through. */
static const char *gpu_node(const tsdb_label_t *l, size_t nl, const qpod_t *pod)
{
    const char *n = label_get(l, nl, "node");
    if (!n) n = label_get(l, nl, "Hostname");
    if (!n && pod) n = pod->node;
    return n ? n : "";
}

/* One selected series, kept for the workload: downsampled into the type's
 * accumulators. */
static int on_series(qctx_t *q, tstate_t *t, int comp, const tsdb_label_t *l, size_t nl, const qpod_t *pod,
                     const tsdb_sample_t *s, size_t ns, const tsdb_rollup_point_t *r, size_t nr)
{
    t->any_series = 1;
    const api_catalog_entry_t *c = t->c;
    int n = q->mixed ? api_downsample_mixed(&q->b, c->agg, q->res, s, ns, r, nr, q->scratch, q->scap)
            : q->res ? api_downsample_rollups(&q->b, c->agg, q->res, r, nr, q->scratch, q->scap)
                     : api_downsample(&q->b, c->agg, s, ns, q->scratch, q->scap);
    if (n == STRATA_ELIMIT && q->b.native) {
        t->cap_exceeded = 1;
        t->failed = 1;
        return n;
    }
    if (n < 0) return type_fail(q, t, n, "downsampling");
    int rc = 0;
    if (c->kind != API_CATALOG_SERIES) {
        const char *le = label_get(l, nl, "le");
        if (!le || n == 0) return 0;
        if ((rc = arena_grow(q->arena, (void **)&t->hin, &t->hcap, t->nh, sizeof *t->hin)))
            return type_fail(q, t, rc, "histogram");
        api_point_t *cp = strata_arena_alloc(q->arena, (size_t)n * sizeof *cp);
        char *lec = strata_arena_strdup(q->arena, le);
        if (!cp || !lec) return type_fail(q, t, STRATA_ENOMEM, "histogram");
        memcpy(cp, q->scratch, (size_t)n * sizeof *cp);
        t->hin[t->nh++] = (api_hist_input_t){ lec, cp, (size_t)n };
        return 0;
    }
    if (c->combine != API_COMBINE_NONE) {
        rc = api_combiner_add(t->comb, q->scratch, (size_t)n);
        return rc ? type_fail(q, t, rc, "combining series") : 0;
    }
    /* per GPU: duplicates of one GPU (two pods' views of one device) are
     * averaged per component; components are summed at the end */
    const char *gpu = label_get(l, nl, "gpu");
    const char *node = gpu_node(l, nl, pod);
    if (!gpu) gpu = "";
    size_t g = 0;
    while (g < t->ng && (strcmp(t->groups[g].gpu, gpu) || strcmp(t->groups[g].node, node))) g++;
    if (g == t->ng) {
        if ((rc = arena_grow(q->arena, (void **)&t->groups, &t->gcap, t->ng, sizeof *t->groups)))
            return type_fail(q, t, rc, "per-GPU series");
        gpu_group_t *G = &t->groups[t->ng];
        memset(G, 0, sizeof *G);
        G->gpu = strata_arena_strdup(q->arena, gpu);
        G->node = strata_arena_strdup(q->arena, node);
        if (!G->gpu || !G->node) return type_fail(q, t, STRATA_ENOMEM, "per-GPU series");
        t->ng++;
    }
    gpu_group_t *G = &t->groups[g];
    if (!G->comp[comp] && (rc = api_combiner_new(q->arena, API_COMBINE_AVG, &G->comp[comp])))
        return type_fail(q, t, rc, "per-GPU series");
    rc = api_combiner_add(G->comp[comp], q->scratch, (size_t)n);
    return rc ? type_fail(q, t, rc, "per-GPU series") : 0;
}

/* The type read more than --query-max-samples points: it fails alone. */
static int sample_limit(qctx_t *q, tstate_t *t)
{
    if (!t->err[0]) {
        snprintf(t->err, sizeof t->err, "sample limit: more than %" PRIu64 " points to read",
                 q->opt->max_samples);
        strata_warn("metrics query: sample limit", "type=%s tenant=%" PRId32 " workload=%s limit=%" PRIu64,
                    t->c->name, q->tenant, q->wid, q->opt->max_samples);
    }
    t->failed = 1;
    return STRATA_ELIMIT;
}

/* First index of s[0..n) with time >= t. */
static size_t first_at(const tsdb_sample_t *s, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].t < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The window a type reads of one series: its own select range, for a pod's
 * series (raw and mixed reads) cut to the pod's active window [first, end).
 * 0 when nothing of it is read. */
static int type_window(const qctx_t *q, const tstate_t *t, const qpod_t *pod, int64_t *lo, int64_t *hi)
{
    int64_t mint = t->mint, maxt = t->maxt;
    if (pod && (pod->end <= mint || pod->first > maxt)) return 0; /* not active in range */
    if (pod && (!q->res || q->mixed)) {
        /* raw reads: the window [first, end) is cut; mixed reads get only the
         * rollup intervals lying whole inside it */
        if (pod->first > mint) mint = pod->first;
        if (pod->end - 1 < maxt) maxt = pod->end - 1;
        if (maxt < mint || maxt < q->req->start_ms) return 0;
    }
    *lo = mint;
    *hi = maxt;
    return 1;
}

/* One series of a select (read over a range holding the type's window) for
 * component comp of type t: what the type's own select would have handed
 * out, counted against its sample limit, then downsampled.  The samples and
 * points are the set's current series'. */
static int feed_series(qctx_t *q, tstate_t *t, int comp, const tsdb_label_t *l, size_t nl, const qpod_t *pod,
                       const tsdb_sample_t *s, size_t ns, const tsdb_rollup_point_t *r, size_t nr)
{
    int64_t lo, hi;
    if (!type_window(q, t, pod, &lo, &hi)) return 0;
    if (!q->res || q->mixed) {
        size_t a = first_at(s, ns, lo), z = first_at(s, ns, hi + 1);
        s += a;
        ns = z > a ? z - a : 0;
    }
    if (q->res) {
        /* the intervals (t-R, t] lying whole inside [lo, hi] (aligned reads:
         * [start, tmax], all alike) */
        size_t a = 0;
        while (a < nr && r[a].t - q->res + 1 < lo) a++;
        size_t z = a;
        while (z < nr && r[z].t <= hi) z++;
        r += a;
        nr = z - a;
    }
    uint64_t n = (uint64_t)ns + (q->res ? (uint64_t)nr : 0);
    if (q->opt->max_samples && t->points + n > q->opt->max_samples) return sample_limit(q, t);
    t->points += n;
    if (q->res && !q->mixed) {
        if (pod) {
            /* keep the intervals (t-R, t] that overlap the pod's window */
            size_t a = 0;
            while (a < nr && r[a].t < pod->first) a++;
            size_t z = a;
            while (z < nr && r[z].t - q->res + 1 < pod->end) z++;
            r += a;
            nr = z - a;
        }
        if (nr == 0) return 0;
    } else if (ns == 0 || s[ns - 1].t < q->req->start_ms) {
        return 0; /* samples before start are only a counter's baseline */
    }
    t->kept[comp]++;
    return on_series(q, t, comp, l, nl, pod, s, ns, r, nr);
}

/* Which types a series is routed to. */
typedef struct route {
    tstate_t *t;
    int comp;
} route_t;

/* 1 when the labels satisfy every condition (= and != only; a missing label
 * is "", as in Prometheus). */
static int conds_match(const api_catalog_entry_t *c, const tsdb_label_t *l, size_t nl)
{
    for (size_t i = 0; i < c->ncond; i++) {
        const char *v = label_get(l, nl, c->cond[i].name);
        int eq = strcmp(v ? v : "", c->cond[i].value) == 0;
        if ((c->cond[i].op == TSDB_MATCH_EQ) != eq) return 0;
    }
    return 1;
}

/* A type the batched read serves: its conditions are all = or != (the
 * catalog's are). */
static int batchable(const api_catalog_entry_t *c)
{
    for (size_t i = 0; i < c->ncond; i++)
        if (c->cond[i].op != TSDB_MATCH_EQ && c->cond[i].op != TSDB_MATCH_NEQ) return 0;
    return 1;
}

/* Fails every batched type that has not failed yet the same way. */
static void batch_fail(qctx_t *q, const int *in_batch, int rc, const char *what)
{
    for (size_t k = 0; k < q->nts; k++)
        if (in_batch[k] && !q->ts[k].failed) type_fail(q, &q->ts[k], rc, what);
}

/* What a select reads of its current series: the raw samples (no resolution,
 * or mixed), the rollups at q->res, or both; what names the read that failed. */
typedef struct series_data {
    const tsdb_sample_t *s;
    size_t ns;
    const tsdb_rollup_point_t *r;
    size_t nr;
    const char *what;
} series_data_t;

/* Reads the current series of set into d: 0, or the read's error. */
static int series_read(const qctx_t *q, api_read_set_t *set, series_data_t *d)
{
    *d = (series_data_t){ .what = q->res && !q->mixed ? "rollups" : "samples" };
    int rc = 0;
    if (!q->res || q->mixed) rc = api_read_set_samples(set, &d->s, &d->ns);
    if (!rc && q->res) rc = api_read_set_rollups(set, q->res, &d->r, &d->nr);
    return rc;
}

/* One select over the first names of every batched type's components, for
 * the workload's own series (pod NULL) or one pod's; each series is routed
 * to the (type, component) pairs it is a source of. */
static int batch_select(qctx_t *q, const int *in_batch, const char *names, int64_t mint, int64_t maxt,
                        const qpod_t *pod)
{
    if (pod) {
        if (pod->end <= mint || pod->first > maxt) return 0;
        if (!q->res || q->mixed) {
            if (pod->first > mint) mint = pod->first;
            if (pod->end - 1 < maxt) maxt = pod->end - 1;
            if (maxt < mint || maxt < q->req->start_ms) return 0;
        }
    }
    tsdb_matcher_t m[4];
    size_t nm = 0;
    m[nm++] = (tsdb_matcher_t){ strchr(names, '|') ? TSDB_MATCH_RE : TSDB_MATCH_EQ, "__name__", names };
    if (pod) {
        /* a series that names a workload belongs to that one only */
        m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", "" };
        m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "namespace", pod->ns };
        m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "pod", pod->pod };
    } else {
        m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", q->wid };
    }
    api_read_set_t *set = NULL;
    int rc = api_read_select(q->src, q->tenant, 0, &q->budget, m, nm, mint, maxt, &set);
    if (rc == STRATA_ETIMEOUT || q->budget.exceeded) return rc; /* the whole request fails */
    if (rc) {
        batch_fail(q, in_batch, rc, "select");
        return 0;
    }
    route_t routes[API_METRICS_MAX_TYPES * API_CATALOG_MAX_COMP];
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const char *name = label_get(l, nl, "__name__");
        size_t nr_ = 0;
        for (size_t k = 0; k < q->nts && name; k++) {
            tstate_t *t = &q->ts[k];
            if (!in_batch[k] || t->failed) continue;
            for (int comp = 0; comp < API_CATALOG_MAX_COMP && t->c->src[comp][0]; comp++)
                if (strcmp(t->c->src[comp][0], name) == 0 && conds_match(t->c, l, nl))
                    routes[nr_++] = (route_t){ t, comp };
        }
        if (nr_ == 0) continue;
        series_data_t d;
        if ((rc = series_read(q, set, &d))) {
            if (!q->budget.exceeded) batch_fail(q, in_batch, rc, d.what);
            break;
        }
        /* a type that fails (its sample limit, --max-points) passes over the rest */
        for (size_t i = 0; i < nr_; i++)
            if (!routes[i].t->failed)
                feed_series(q, routes[i].t, routes[i].comp, l, nl, pod, d.s, d.ns, d.r, d.nr);
    }
    q->damaged += api_read_set_damaged(set, NULL);
    api_read_set_free(set);
    if (rc == STRATA_ETIMEOUT || q->budget.exceeded) return rc ? rc : q->budget.exceeded;
    if (rc < 0) batch_fail(q, in_batch, rc, "select");
    return 0;
}

/* Runs one select of one type and feeds its series.  pod != NULL: the series
 * were matched by (namespace, pod), keep only what lies in its window.
 * *kept counts series with data in the query range. */
static int run_select(qctx_t *q, tstate_t *t, int comp, const tsdb_matcher_t *m, size_t nm, const qpod_t *pod,
                      int *kept)
{
    int64_t mint, maxt;
    if (!type_window(q, t, pod, &mint, &maxt)) return 0;
    api_read_set_t *set = NULL;
    int rc = api_read_select(q->src, q->tenant, 0, &q->budget, m, nm, mint, maxt, &set);
    if (rc == STRATA_ETIMEOUT || q->budget.exceeded) return rc; /* the whole request fails */
    if (rc) return type_fail(q, t, rc, "select");
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        series_data_t d;
        if ((rc = series_read(q, set, &d))) {
            if (!q->budget.exceeded) type_fail(q, t, rc, d.what);
            break;
        }
        int before = t->kept[comp];
        rc = feed_series(q, t, comp, l, nl, pod, d.s, d.ns, d.r, d.nr);
        *kept += t->kept[comp] - before;
        if (rc) break;
    }
    q->damaged += api_read_set_damaged(set, NULL);
    api_read_set_free(set);
    if (rc == STRATA_ETIMEOUT || q->budget.exceeded) return rc ? rc : q->budget.exceeded;
    if (rc < 0 && !t->err[0] && !t->cap_exceeded) type_fail(q, t, rc, "select");
    return rc < 0 ? rc : 0;
}

/* The series of type t's component comp under alternative names from
 * alt0 on (the first with data wins), one select per name and pod. */
static int scan_comp(qctx_t *q, tstate_t *t, int comp, int alt0)
{
    const api_catalog_entry_t *c = t->c;
    for (int alt = alt0; alt < API_CATALOG_MAX_ALT && c->src[comp][alt]; alt++) {
        tsdb_matcher_t m[8];
        size_t nm = 0;
        m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "__name__", c->src[comp][alt] };
        for (size_t i = 0; i < c->ncond; i++) m[nm++] = c->cond[i];
        int kept = 0, rc;
        m[nm] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", q->wid };
        if ((rc = run_select(q, t, comp, m, nm + 1, NULL, &kept))) return rc;
        /* a series that names a workload belongs to that one only */
        m[nm] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", "" };
        for (size_t p = 0; p < q->npods; p++) {
            m[nm + 1] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "namespace", q->pods[p].ns };
            m[nm + 2] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "pod", q->pods[p].pod };
            if ((rc = run_select(q, t, comp, m, nm + 3, &q->pods[p], &kept))) return rc;
        }
        if (kept) break;
    }
    return 0;
}

/* Every series of every type that belongs to the workload.  One select for
 * the workload's own series and one per pod, over the first names of all
 * the types' components at once; series are routed to their types in the
 * order the per-type selects would have given them (the workload's own,
 * then pod by pod, each in label order), so the sums add up in the same
 * order.  A component whose first name had no data then tries its next name
 * on its own (NIM and vllm:). */
static int scan_all(qctx_t *q, const int *in_batch)
{
    size_t len = 0, nb = 0;
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    for (size_t k = 0; k < q->nts; k++) {
        if (!in_batch[k]) continue;
        nb++;
        if (q->ts[k].mint < mint) mint = q->ts[k].mint;
        if (q->ts[k].maxt > maxt) maxt = q->ts[k].maxt;
        for (int comp = 0; comp < API_CATALOG_MAX_COMP && q->ts[k].c->src[comp][0]; comp++)
            len += strlen(q->ts[k].c->src[comp][0]) + 1;
    }
    if (nb) {
        /* the names are plain metric names (letters, digits, _): an
         * alternation of literals, which the index looks up one by one */
        char *names = strata_arena_alloc(q->arena, len + 1);
        if (!names) {
            batch_fail(q, in_batch, STRATA_ENOMEM, "buffers");
        } else {
            size_t o = 0;
            names[0] = 0;
            for (size_t k = 0; k < q->nts; k++) {
                if (!in_batch[k]) continue;
                for (int comp = 0; comp < API_CATALOG_MAX_COMP && q->ts[k].c->src[comp][0]; comp++) {
                    const char *nm = q->ts[k].c->src[comp][0];
                    size_t ln = strlen(nm);
                    int dup = 0;
                    for (const char *p = names; !dup && (p = strstr(p, nm)); p++)
                        dup = (p == names || p[-1] == '|') && (p[ln] == '|' || p[ln] == 0);
                    if (dup) continue;
                    if (o) names[o++] = '|';
                    memcpy(names + o, nm, ln + 1);
                    o += ln;
                }
            }
            for (q->reading = 0; !in_batch[q->reading]; q->reading++) {}
            int rc = batch_select(q, in_batch, names, mint, maxt, NULL);
            for (size_t p = 0; !rc && p < q->npods; p++)
                rc = batch_select(q, in_batch, names, mint, maxt, &q->pods[p]);
            if (rc) return rc;
        }
    }
    for (size_t k = 0; k < q->nts; k++) {
        tstate_t *t = &q->ts[k];
        for (int comp = 0; comp < API_CATALOG_MAX_COMP && t->c->src[comp][0] && !t->failed; comp++) {
            if (in_batch[k] && t->kept[comp]) continue;
            q->reading = k;
            int rc = scan_comp(q, t, comp, in_batch[k] ? 1 : 0);
            if (rc && (rc == STRATA_ETIMEOUT || q->budget.exceeded)) return rc;
        }
    }
    return 0;
}

static int add_measurement(api_metrics_response_t *resp, strata_arena_t *arena, const measurement_t *m)
{
    if (arena_grow(arena, (void **)&resp->m, &resp->mcap, resp->nm, sizeof *resp->m)) return STRATA_ENOMEM;
    resp->m[resp->nm++] = *m;
    return 0;
}

/* Combined output of one accumulator, scaled, copied into the arena. */
static int take_points(qctx_t *q, tstate_t *t, const api_combiner_t *cb, double scale, api_point_t **out,
                       size_t *n)
{
    size_t cnt = api_combiner_count(cb);
    *out = strata_arena_alloc(q->arena, (cnt ? cnt : 1) * sizeof **out);
    if (!*out) return STRATA_ENOMEM;
    int k = api_combiner_result(cb, *out, cnt);
    if (k < 0) return k;
    *n = (size_t)k;
    if (q->b.native && *n > q->opt->max_points) {
        t->cap_exceeded = 1;
        return STRATA_ELIMIT;
    }
    if (scale != 1)
        for (size_t i = 0; i < *n; i++) (*out)[i].v *= scale;
    return 0;
}

static int cmp_gpu(const void *a, const void *b)
{
    const gpu_group_t *x = a, *y = b;
    int c = strcmp(x->node, y->node);
    if (c) return c;
    char *ex, *ey;
    long gx = strtol(x->gpu, &ex, 10), gy = strtol(y->gpu, &ey, 10);
    if (*x->gpu && *y->gpu && !*ex && !*ey && gx != gy) return gx < gy ? -1 : 1;
    return strcmp(x->gpu, y->gpu);
}

/* Turns the accumulators of a finished scan into the type's output. */
static int finish_type(qctx_t *q, tstate_t *t, api_metrics_response_t *resp)
{
    const api_catalog_entry_t *c = t->c;
    const int type = t->type;
    int rc;
    if (c->kind != API_CATALOG_SERIES) {
        hseries_t hs = { .type = type };
        if (t->nh) {
            if ((rc = api_hist_build(q->arena, t->hin, t->nh, &hs.h)))
                return type_fail(q, t, rc, "histogram");
            if (q->b.native && api_hist_nsteps(hs.h) > q->opt->max_points) {
                t->cap_exceeded = 1;
                return STRATA_ELIMIT;
            }
            if (c->kind == API_CATALOG_PCT) {
                size_t ns = api_hist_nsteps(hs.h);
                hs.qt = strata_arena_alloc(q->arena, (ns ? ns : 1) * sizeof *hs.qt);
                hs.qv = strata_arena_alloc(q->arena, (ns ? ns : 1) * sizeof *hs.qv);
                if (!hs.qt || !hs.qv) return type_fail(q, t, STRATA_ENOMEM, "histogram");
                for (size_t i = 0; i < ns; i++) {
                    int ok = 1;
                    for (int k = 0; k < API_CATALOG_NQUANTILES && ok; k++)
                        ok = api_hist_quantile(hs.h, i, api_catalog_quantiles[k], &hs.qv[hs.nq][k]) == 0;
                    if (!ok) continue; /* total count 0 (or no +Inf bucket): omitted */
                    hs.qt[hs.nq++] = api_hist_step_time(hs.h, i);
                }
            }
        }
        resp->h[resp->nh++] = hs;
        return 0;
    }
    if (c->combine != API_COMBINE_NONE) {
        measurement_t m = { .type = type };
        if ((rc = take_points(q, t, t->comb, c->scale, &m.pts, &m.n)))
            return t->cap_exceeded ? rc : type_fail(q, t, rc, "combining series");
        return add_measurement(resp, q->arena, &m) ? type_fail(q, t, STRATA_ENOMEM, "response") : 0;
    }
    if (t->ng == 0) {
        measurement_t m = { .type = type };
        return add_measurement(resp, q->arena, &m) ? type_fail(q, t, STRATA_ENOMEM, "response") : 0;
    }
    qsort(t->groups, t->ng, sizeof *t->groups, cmp_gpu);
    for (size_t g = 0; g < t->ng; g++) {
        gpu_group_t *G = &t->groups[g];
        measurement_t m = { .type = type, .gpu = G->gpu, .node = G->node };
        int ncomp = 0;
        for (int k = 0; k < API_CATALOG_MAX_COMP; k++) ncomp += G->comp[k] != NULL;
        const api_combiner_t *src = NULL;
        if (ncomp == 1) {
            for (int k = 0; k < API_CATALOG_MAX_COMP; k++)
                if (G->comp[k]) src = G->comp[k];
        } else {
            /* NVLINK: TX + RX at each step */
            api_combiner_t *sum;
            if ((rc = api_combiner_new(q->arena, API_COMBINE_SUM, &sum)))
                return type_fail(q, t, rc, "per-GPU series");
            for (int k = 0; k < API_CATALOG_MAX_COMP; k++) {
                api_point_t *p;
                size_t n;
                if (!G->comp[k]) continue;
                if ((rc = take_points(q, t, G->comp[k], 1, &p, &n)))
                    return t->cap_exceeded ? rc : type_fail(q, t, rc, "per-GPU series");
                if ((rc = api_combiner_add(sum, p, n))) return type_fail(q, t, rc, "per-GPU series");
            }
            src = sum;
        }
        if ((rc = take_points(q, t, src, c->scale, &m.pts, &m.n)))
            return t->cap_exceeded ? rc : type_fail(q, t, rc, "per-GPU series");
        if (add_measurement(resp, q->arena, &m)) return type_fail(q, t, STRATA_ENOMEM, "response");
    }
    return 0;
}

/* Lays out the buckets and reads one metric type. */

/* Lays out the buckets (the same for every type) and picks raw, aligned
 * rollups or mixed reads. */
static int layout(qctx_t *q)
{
    const api_metrics_request_t *req = q->req;
    int rc;
    if (req->samples == 0) {
        /* native: every stored sample at its own timestamp */
        rc = api_buckets_native(&q->b, req->start_ms, req->end_ms, q->opt->max_points);
    } else {
        /* buckets under 1 ms are meaningless: at most one bucket per ms */
        int64_t d = req->end_ms - req->start_ms;
        uint32_t n = (int64_t)req->samples > d ? (uint32_t)d : req->samples;
        rc = api_buckets_init(&q->b, req->start_ms, req->end_ms, n);
    }
    if (rc) return rc;
    q->res = 0;
    q->mixed = 0;
    /* a source without rollups (a remote engine) answers every layout from raw samples */
    if (api_read_source_caps(q->src) & API_READ_CAP_ROLLUPS) {
        /* aligned rollups (exact, docs/downsampling.md section 3), else whole
         * intervals from rollups and the edges raw where that pays (exact too) */
        if (!q->b.native && api_rollup_aligned(&q->b, TSDB_ROLLUP_1H))
            q->res = TSDB_ROLLUP_1H;
        else if (!q->b.native && api_rollup_aligned(&q->b, TSDB_ROLLUP_5M))
            q->res = TSDB_ROLLUP_5M;
        else
            q->mixed = (q->res = api_rollup_mixed_choose(&q->b)) != 0;
    }
    q->scap = api_buckets_capacity(&q->b);
    q->scratch = strata_arena_alloc(q->arena, q->scap * sizeof *q->scratch);
    return q->scratch ? 0 : STRATA_ENOMEM;
}

/* A type's state before its reads: its select range and accumulators. */
static void type_init(qctx_t *q, tstate_t *t, int type, int layout_rc)
{
    const api_metrics_request_t *req = q->req;
    memset(t, 0, sizeof *t);
    t->type = type;
    t->c = api_catalog_get((enum api_metric_type)type);
    if (layout_rc) {
        type_fail(q, t, layout_rc, layout_rc == STRATA_ENOMEM ? "buffers" : "layout");
        return;
    }
    if (q->res && !q->mixed) {
        int64_t tmin, tmax;
        int rc = api_rollup_range(&q->b, q->res, &tmin, &tmax);
        if (rc) {
            type_fail(q, t, rc, "layout");
            return;
        }
        t->mint = req->start_ms;
        t->maxt = tmax;
    } else {
        /* counters need the sample before start as bucket 1's baseline */
        int counter = t->c->agg == API_AGG_INCREASE || t->c->agg == API_AGG_RATE;
        t->mint = req->start_ms - (counter ? q->opt->staleness_ms : 0);
        t->maxt = req->end_ms;
    }
    int rc;
    if (t->c->kind == API_CATALOG_SERIES && t->c->combine != API_COMBINE_NONE &&
        (rc = api_combiner_new(q->arena, t->c->combine, &t->comb)))
        type_fail(q, t, rc, "buffers");
}

/* The type's answer after its reads: its output, an empty one, or its
 * failure (what it had output dropped).  STRATA_ELIMIT (--max-points at
 * numberOfSamples=0) fails the whole request; STRATA_ENOMEM too. */
static int type_finish(qctx_t *q, tstate_t *t, api_metrics_response_t *resp)
{
    size_t nm0 = resp->nm, nh0 = resp->nh;
    int rc = 0;
    resp->points_read += t->points;
    if (t->cap_exceeded) return STRATA_ELIMIT;
    if (!t->failed) {
        if (!t->any_series) {
            /* no data: an empty measurement / histogram */
            if (t->c->kind != API_CATALOG_SERIES) {
                resp->h[resp->nh++] = (hseries_t){ .type = t->type };
            } else {
                measurement_t m = { .type = t->type };
                if (add_measurement(resp, q->arena, &m)) rc = type_fail(q, t, STRATA_ENOMEM, "response");
            }
        } else {
            rc = finish_type(q, t, resp);
        }
    }
    if (t->cap_exceeded) return STRATA_ELIMIT;
    if (rc || t->err[0]) {
        resp->nm = nm0; /* drop what the type had output before it failed */
        resp->nh = nh0;
        measurement_t m = {
            .type = t->type, .error = strata_arena_strdup(q->arena, t->err[0] ? t->err : strata_strerror(rc))
        };
        if (!m.error || add_measurement(resp, q->arena, &m)) return STRATA_ENOMEM;
        resp->partial = 1;
    }
    return 0;
}

int api_metrics_query(const api_read_source_t *src, int32_t tenant_id, const char *workload_id,
                      const api_metrics_pod_t *pods, size_t npods, const api_metrics_request_t *req,
                      const api_metrics_options_t *opts, strata_arena_t *arena, api_metrics_response_t **out,
                      char *err, size_t cap)
{
    if (err && cap) err[0] = 0;
    if (!src || !workload_id || (npods && !pods) || !req || !arena || !out || req->ntypes == 0 ||
        req->ntypes > API_METRICS_MAX_TYPES || req->end_ms <= req->start_ms ||
        req->samples > API_METRICS_MAX_SAMPLES)
        return STRATA_EINVAL;
    *out = NULL;
    for (size_t i = 0; i < req->ntypes; i++)
        if ((unsigned)req->types[i] >= API_METRIC_COUNT) return STRATA_EINVAL;
    api_metrics_options_t defaults;
    api_metrics_options_init(&defaults);
    if (!opts) opts = &defaults;
    qctx_t q = { .src = src,
                 .arena = arena,
                 .opt = opts,
                 .req = req,
                 .tenant = tenant_id,
                 .wid = workload_id,
                 .npods = npods };
    /* one deadline for the whole request; the sample limit is counted per type */
    api_read_budget_init(&q.budget, opts->timeout_ms, 0);
    if (npods && !(q.pods = strata_arena_alloc(arena, npods * sizeof *q.pods))) return STRATA_ENOMEM;
    for (size_t i = 0; i < npods; i++)
        q.pods[i] = (qpod_t){ pods[i].namespace_, pods[i].pod, pods[i].node, pods[i].first_ms,
                              pods[i].end_ms };
    api_metrics_response_t *resp = strata_arena_calloc(arena, 1, sizeof *resp);
    if (!resp) return STRATA_ENOMEM;
    resp->h = strata_arena_calloc(arena, req->ntypes, sizeof *resp->h);
    q.ts = strata_arena_calloc(arena, req->ntypes, sizeof *q.ts);
    if (!resp->h || !q.ts) return STRATA_ENOMEM;
    q.nts = req->ntypes;
    int lrc = layout(&q);
    int in_batch[API_METRICS_MAX_TYPES];
    for (size_t i = 0; i < req->ntypes; i++) {
        type_init(&q, &q.ts[i], (int)req->types[i], lrc);
        in_batch[i] = !q.ts[i].failed && batchable(q.ts[i].c);
    }
    int rc = scan_all(&q, in_batch);
    if (rc == STRATA_ETIMEOUT || rc == STRATA_EIO || q.budget.exceeded) {
        if (!rc) rc = q.budget.exceeded;
        if (err && cap) {
            char why[256];
            snprintf(err, cap, "%s (while reading %s)", api_read_budget_why(&q.budget, why, sizeof why),
                     api_metrics_type_name(req->types[q.reading]));
        }
        if (rc == STRATA_ETIMEOUT)
            strata_warn("metrics query: timeout", "tenant=%" PRId32 " workload=%s timeout_ms=%" PRId64,
                        tenant_id, workload_id, opts->timeout_ms);
        return rc;
    }
    resp->damaged_pages = q.damaged;
    for (size_t i = 0; i < req->ntypes; i++) {
        rc = type_finish(&q, &q.ts[i], resp);
        if (rc == STRATA_ELIMIT) {
            if (err && cap)
                snprintf(err, cap,
                         "numberOfSamples=0: %s has more than %zu points per series "
                         "in this range; use numberOfSamples 1..%d or a shorter range",
                         api_metrics_type_name(req->types[i]), opts->max_points, API_METRICS_MAX_SAMPLES);
            return rc;
        }
        if (rc) return rc;
    }
    *out = resp;
    return 0;
}
