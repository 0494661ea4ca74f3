/*
 * metrics_query.c: the workload metrics query (metrics_query.h): for each
 * requested type, the catalog's source series (catalog.h) that belong to the
 * workload (its workload_id, or one of its pods inside the pod's active
 * window), downsampled through downsample.h (raw samples, or 5m/1h rollups
 * for wide buckets) and combined into the response metrics_render.c writes.
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

typedef struct qctx {
    const api_read_source_t *src;
    strata_arena_t *arena;
    const api_metrics_options_t *opt;
    const api_metrics_request_t *req;
    int32_t tenant;
    const char *wid;
    qpod_t *pods;
    size_t npods;

    /* per metric type */
    const api_catalog_entry_t *c;
    api_buckets_t b;
    int64_t res;              /* 0 raw, else rollup resolution */
    int mixed;                /* res != 0: whole intervals from rollups, edges raw */
    int64_t mint, maxt;       /* select range */
    uint64_t points;          /* read by this type */
    uint64_t damaged;         /* damaged block pages its reads skipped */
    int cap_exceeded;         /* native max_points: the whole request fails */
    api_read_budget_t budget; /* this type's reads: --query-max-samples per type, the
                                 request's --query-timeout deadline */
    char err[160];            /* this type's failure */

    int any_series;

    /* aggregation */
    api_point_t *scratch;
    size_t scap;
    api_combiner_t *comb;
    gpu_group_t *groups;
    size_t ng, gcap;
    api_hist_input_t *hin;
    size_t nh, hcap;
} qctx_t;

static const char *label_get(const tsdb_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

static int type_fail(qctx_t *q, int rc, const char *what)
{
    if (!q->err[0]) {
        snprintf(q->err, sizeof q->err, "%s: %s", what, strata_strerror(rc));
        strata_error("metrics query: metric type failed", "type=%s tenant=%" PRId32 " workload=%s err=\"%s\"",
                     q->c->name, q->tenant, q->wid, q->err);
    }
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
static int on_series(qctx_t *q, int comp, const tsdb_label_t *l, size_t nl, const qpod_t *pod,
                     const tsdb_sample_t *s, size_t ns, const tsdb_rollup_point_t *r, size_t nr)
{
    q->any_series = 1;
    const api_catalog_entry_t *c = q->c;
    int n = q->mixed ? api_downsample_mixed(&q->b, c->agg, q->res, s, ns, r, nr, q->scratch, q->scap)
            : q->res ? api_downsample_rollups(&q->b, c->agg, q->res, r, nr, q->scratch, q->scap)
                     : api_downsample(&q->b, c->agg, s, ns, q->scratch, q->scap);
    if (n == STRATA_ELIMIT && q->b.native) {
        q->cap_exceeded = 1;
        return n;
    }
    if (n < 0) return type_fail(q, n, "downsampling");
    int rc = 0;
    if (c->kind != API_CATALOG_SERIES) {
        const char *le = label_get(l, nl, "le");
        if (!le || n == 0) return 0;
        if ((rc = arena_grow(q->arena, (void **)&q->hin, &q->hcap, q->nh, sizeof *q->hin)))
            return type_fail(q, rc, "histogram");
        api_point_t *cp = strata_arena_alloc(q->arena, (size_t)n * sizeof *cp);
        char *lec = strata_arena_strdup(q->arena, le);
        if (!cp || !lec) return type_fail(q, STRATA_ENOMEM, "histogram");
        memcpy(cp, q->scratch, (size_t)n * sizeof *cp);
        q->hin[q->nh++] = (api_hist_input_t){ lec, cp, (size_t)n };
        return 0;
    }
    if (c->combine != API_COMBINE_NONE) {
        rc = api_combiner_add(q->comb, q->scratch, (size_t)n);
        return rc ? type_fail(q, rc, "combining series") : 0;
    }
    /* per GPU: duplicates of one GPU (two pods' views of one device) are
     * averaged per component; components are summed at the end */
    const char *gpu = label_get(l, nl, "gpu");
    const char *node = gpu_node(l, nl, pod);
    if (!gpu) gpu = "";
    size_t g = 0;
    while (g < q->ng && (strcmp(q->groups[g].gpu, gpu) || strcmp(q->groups[g].node, node))) g++;
    if (g == q->ng) {
        if ((rc = arena_grow(q->arena, (void **)&q->groups, &q->gcap, q->ng, sizeof *q->groups)))
            return type_fail(q, rc, "per-GPU series");
        gpu_group_t *G = &q->groups[q->ng];
        memset(G, 0, sizeof *G);
        G->gpu = strata_arena_strdup(q->arena, gpu);
        G->node = strata_arena_strdup(q->arena, node);
        if (!G->gpu || !G->node) return type_fail(q, STRATA_ENOMEM, "per-GPU series");
        q->ng++;
    }
    gpu_group_t *G = &q->groups[g];
    if (!G->comp[comp] && (rc = api_combiner_new(q->arena, API_COMBINE_AVG, &G->comp[comp])))
        return type_fail(q, rc, "per-GPU series");
    rc = api_combiner_add(G->comp[comp], q->scratch, (size_t)n);
    return rc ? type_fail(q, rc, "per-GPU series") : 0;
}

/* The type read more than --query-max-samples points (the read seam's budget
 * stopped it): it fails alone. */
static int sample_limit(qctx_t *q)
{
    if (!q->err[0]) {
        snprintf(q->err, sizeof q->err, "sample limit: more than %" PRIu64 " points to read",
                 q->opt->max_samples);
        strata_warn("metrics query: sample limit", "type=%s tenant=%" PRId32 " workload=%s limit=%" PRIu64,
                    q->c->name, q->tenant, q->wid, q->opt->max_samples);
    }
    return STRATA_ELIMIT;
}

/* Runs one select and feeds its series to on_series.  pod != NULL: the series
 * were matched by (namespace, pod), keep only what lies in its window.
 * *kept counts series with data in the query range. */
static int run_select(qctx_t *q, int comp, const tsdb_matcher_t *m, size_t nm, const qpod_t *pod, int *kept)
{
    int64_t mint = q->mint, maxt = q->maxt;
    if (pod && (pod->end <= mint || pod->first > maxt)) return 0; /* not active in range */
    if (pod && (!q->res || q->mixed)) {
        /* raw reads: let the store cut the window [first, end); mixed reads get
         * only the rollup intervals lying whole inside it */
        if (pod->first > mint) mint = pod->first;
        if (pod->end - 1 < maxt) maxt = pod->end - 1;
        if (maxt < mint || maxt < q->req->start_ms) return 0;
    }
    api_read_set_t *set = NULL;
    int rc = api_read_select(q->src, q->tenant, 0, &q->budget, m, nm, mint, maxt, &set);
    if (rc == STRATA_ETIMEOUT) return rc; /* the whole request fails */
    if (rc == STRATA_ELIMIT && q->budget.exceeded) return sample_limit(q);
    if (rc) return type_fail(q, rc, "select");
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const tsdb_sample_t *s = NULL;
        const tsdb_rollup_point_t *r = NULL;
        size_t ns = 0, nr = 0;
        if (q->mixed) {
            if ((rc = api_read_set_samples(set, &s, &ns)) ||
                (rc = api_read_set_rollups(set, q->res, &r, &nr))) {
                if (!q->budget.exceeded) type_fail(q, rc, "samples");
                break;
            }
            q->points += ns + nr;
            if (ns == 0 || s[ns - 1].t < q->req->start_ms) continue;
        } else if (q->res) {
            if ((rc = api_read_set_rollups(set, q->res, &r, &nr))) {
                if (!q->budget.exceeded) type_fail(q, rc, "rollups");
                break;
            }
            q->points += nr;
            if (pod) {
                /* keep the intervals (t-R, t] that overlap the pod's window */
                size_t a = 0;
                while (a < nr && r[a].t < pod->first) a++;
                size_t z = a;
                while (z < nr && r[z].t - q->res + 1 < pod->end) z++;
                r += a;
                nr = z - a;
            }
            if (nr == 0) continue;
        } else {
            if ((rc = api_read_set_samples(set, &s, &ns))) {
                if (!q->budget.exceeded) type_fail(q, rc, "samples");
                break;
            }
            q->points += ns;
            /* samples before start are only a counter's baseline */
            if (ns == 0 || s[ns - 1].t < q->req->start_ms) continue;
        }
        (*kept)++;
        if ((rc = on_series(q, comp, l, nl, pod, s, ns, r, nr))) break;
    }
    if (rc == STRATA_ELIMIT && q->budget.exceeded == STRATA_ELIMIT) sample_limit(q);
    q->damaged += api_read_set_damaged(set, NULL);
    api_read_set_free(set);
    if (rc == STRATA_ETIMEOUT) return rc; /* the whole request fails */
    if (rc < 0 && !q->err[0] && !q->cap_exceeded) type_fail(q, rc, "select");
    return rc < 0 ? rc : 0;
}

/* Every series of the type that belongs to the workload, component by
 * component; for each component the first alternative name with data wins. */
static int scan(qctx_t *q)
{
    const api_catalog_entry_t *c = q->c;
    for (int comp = 0; comp < API_CATALOG_MAX_COMP && c->src[comp][0]; comp++) {
        for (int alt = 0; alt < API_CATALOG_MAX_ALT && c->src[comp][alt]; alt++) {
            tsdb_matcher_t m[8];
            size_t nm = 0;
            m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "__name__", c->src[comp][alt] };
            for (size_t i = 0; i < c->ncond; i++) m[nm++] = c->cond[i];
            int kept = 0, rc;
            m[nm] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", q->wid };
            if ((rc = run_select(q, comp, m, nm + 1, NULL, &kept))) return rc;
            /* a series that names a workload belongs to that one only */
            m[nm] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", "" };
            for (size_t p = 0; p < q->npods; p++) {
                m[nm + 1] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "namespace", q->pods[p].ns };
                m[nm + 2] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "pod", q->pods[p].pod };
                if ((rc = run_select(q, comp, m, nm + 3, &q->pods[p], &kept))) return rc;
            }
            if (kept) break;
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
static int take_points(qctx_t *q, const api_combiner_t *cb, double scale, api_point_t **out, size_t *n)
{
    size_t cnt = api_combiner_count(cb);
    *out = strata_arena_alloc(q->arena, (cnt ? cnt : 1) * sizeof **out);
    if (!*out) return STRATA_ENOMEM;
    int k = api_combiner_result(cb, *out, cnt);
    if (k < 0) return k;
    *n = (size_t)k;
    if (q->b.native && *n > q->opt->max_points) {
        q->cap_exceeded = 1;
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
static int finish_type(qctx_t *q, api_metrics_response_t *resp, int type)
{
    const api_catalog_entry_t *c = q->c;
    int rc;
    if (c->kind != API_CATALOG_SERIES) {
        hseries_t hs = { .type = type };
        if (q->nh) {
            if ((rc = api_hist_build(q->arena, q->hin, q->nh, &hs.h))) return type_fail(q, rc, "histogram");
            if (q->b.native && api_hist_nsteps(hs.h) > q->opt->max_points) {
                q->cap_exceeded = 1;
                return STRATA_ELIMIT;
            }
            if (c->kind == API_CATALOG_PCT) {
                size_t ns = api_hist_nsteps(hs.h);
                hs.qt = strata_arena_alloc(q->arena, (ns ? ns : 1) * sizeof *hs.qt);
                hs.qv = strata_arena_alloc(q->arena, (ns ? ns : 1) * sizeof *hs.qv);
                if (!hs.qt || !hs.qv) return type_fail(q, STRATA_ENOMEM, "histogram");
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
        if ((rc = take_points(q, q->comb, c->scale, &m.pts, &m.n)))
            return q->cap_exceeded ? rc : type_fail(q, rc, "combining series");
        return add_measurement(resp, q->arena, &m) ? type_fail(q, STRATA_ENOMEM, "response") : 0;
    }
    if (q->ng == 0) {
        measurement_t m = { .type = type };
        return add_measurement(resp, q->arena, &m) ? type_fail(q, STRATA_ENOMEM, "response") : 0;
    }
    qsort(q->groups, q->ng, sizeof *q->groups, cmp_gpu);
    for (size_t g = 0; g < q->ng; g++) {
        gpu_group_t *G = &q->groups[g];
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
                return type_fail(q, rc, "per-GPU series");
            for (int k = 0; k < API_CATALOG_MAX_COMP; k++) {
                api_point_t *p;
                size_t n;
                if (!G->comp[k]) continue;
                if ((rc = take_points(q, G->comp[k], 1, &p, &n)))
                    return q->cap_exceeded ? rc : type_fail(q, rc, "per-GPU series");
                if ((rc = api_combiner_add(sum, p, n))) return type_fail(q, rc, "per-GPU series");
            }
            src = sum;
        }
        if ((rc = take_points(q, src, c->scale, &m.pts, &m.n)))
            return q->cap_exceeded ? rc : type_fail(q, rc, "per-GPU series");
        if (add_measurement(resp, q->arena, &m)) return type_fail(q, STRATA_ENOMEM, "response");
    }
    return 0;
}

/* Lays out the buckets and reads one metric type. */
static int run_type(qctx_t *q, api_metrics_response_t *resp, int type)
{
    const api_catalog_entry_t *c = q->c = api_catalog_get((enum api_metric_type)type);
    const api_metrics_request_t *req = q->req;
    q->points = 0;
    q->budget.samples = 0; /* the sample limit is per type, the deadline per request */
    if (q->budget.exceeded == STRATA_ELIMIT) q->budget.exceeded = 0;
    q->damaged = 0;
    q->err[0] = 0;
    q->any_series = 0;
    q->comb = NULL;
    q->groups = NULL;
    q->ng = q->gcap = 0;
    q->hin = NULL;
    q->nh = q->hcap = 0;
    /* counters need the sample before start as bucket 1's baseline */
    int64_t lookback = c->agg == API_AGG_INCREASE || c->agg == API_AGG_RATE ? q->opt->staleness_ms : 0;
    size_t nm0 = resp->nm, nh0 = resp->nh;
    int rc = 0;
    if (req->samples == 0) {
        /* native: every stored sample at its own timestamp */
        if ((rc = api_buckets_native(&q->b, req->start_ms, req->end_ms, q->opt->max_points))) {
            type_fail(q, rc, "layout");
            goto out;
        }
    } else {
        /* buckets under 1 ms are meaningless: at most one bucket per ms */
        int64_t d = req->end_ms - req->start_ms;
        uint32_t n = (int64_t)req->samples > d ? (uint32_t)d : req->samples;
        if ((rc = api_buckets_init(&q->b, req->start_ms, req->end_ms, n))) {
            type_fail(q, rc, "layout");
            goto out;
        }
    }
    /* a source without rollups (a remote engine) answers every layout from raw samples */
    q->res = 0;
    q->mixed = 0;
    if (api_read_source_caps(q->src) & API_READ_CAP_ROLLUPS) {
        /* aligned rollups (exact, docs/downsampling.md section 3), else whole
         * intervals from rollups and the edges raw (exact too) */
        if (!q->b.native && api_rollup_aligned(&q->b, TSDB_ROLLUP_1H))
            q->res = TSDB_ROLLUP_1H;
        else if (!q->b.native && api_rollup_aligned(&q->b, TSDB_ROLLUP_5M))
            q->res = TSDB_ROLLUP_5M;
        else
            q->mixed = (q->res = api_rollup_mixed_choose(&q->b)) != 0;
    }
    if (q->res && !q->mixed) {
        int64_t tmin, tmax;
        if ((rc = api_rollup_range(&q->b, q->res, &tmin, &tmax))) {
            type_fail(q, rc, "layout");
            goto out;
        }
        q->mint = req->start_ms;
        q->maxt = tmax;
    } else {
        q->mint = req->start_ms - lookback;
        q->maxt = req->end_ms;
    }
    q->scap = api_buckets_capacity(&q->b);
    q->scratch = strata_arena_alloc(q->arena, q->scap * sizeof *q->scratch);
    if (!q->scratch) {
        rc = type_fail(q, STRATA_ENOMEM, "buffers");
        goto out;
    }
    if (c->kind == API_CATALOG_SERIES && c->combine != API_COMBINE_NONE &&
        (rc = api_combiner_new(q->arena, c->combine, &q->comb))) {
        type_fail(q, rc, "buffers");
        goto out;
    }
    if ((rc = scan(q))) goto out;
    if (q->err[0] == 0 && !q->any_series) {
        /* no data: an empty measurement / histogram */
        if (c->kind != API_CATALOG_SERIES) {
            resp->h[resp->nh++] = (hseries_t){ .type = type };
        } else {
            measurement_t m = { .type = type };
            if (add_measurement(resp, q->arena, &m)) rc = type_fail(q, STRATA_ENOMEM, "response");
        }
    } else {
        rc = finish_type(q, resp, type);
    }
out:
    resp->points_read += q->points;
    resp->damaged_pages += q->damaged;
    if (q->cap_exceeded) return STRATA_ELIMIT;
    if (rc == STRATA_ETIMEOUT || q->budget.exceeded == STRATA_ETIMEOUT) return STRATA_ETIMEOUT;
    /* a remote engine that failed fails every type alike: one 503 naming it */
    if (q->budget.exceeded == STRATA_EIO) return STRATA_EIO;
    if (rc || q->err[0]) {
        resp->nm = nm0; /* drop what the type had output before it failed */
        resp->nh = nh0;
        measurement_t m = {
            .type = type, .error = strata_arena_strdup(q->arena, q->err[0] ? q->err : strata_strerror(rc))
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
    /* one deadline for the whole request; the sample limit is reset per type */
    api_read_budget_init(&q.budget, opts->timeout_ms, opts->max_samples);
    if (npods && !(q.pods = strata_arena_alloc(arena, npods * sizeof *q.pods))) return STRATA_ENOMEM;
    for (size_t i = 0; i < npods; i++)
        q.pods[i] = (qpod_t){ pods[i].namespace_, pods[i].pod, pods[i].node, pods[i].first_ms,
                              pods[i].end_ms };
    api_metrics_response_t *resp = strata_arena_calloc(arena, 1, sizeof *resp);
    if (!resp) return STRATA_ENOMEM;
    resp->h = strata_arena_calloc(arena, req->ntypes, sizeof *resp->h);
    if (!resp->h) return STRATA_ENOMEM;
    for (size_t i = 0; i < req->ntypes; i++) {
        if ((unsigned)req->types[i] >= API_METRIC_COUNT) return STRATA_EINVAL;
        q.cap_exceeded = 0;
        int rc = run_type(&q, resp, (int)req->types[i]);
        if (rc == STRATA_ELIMIT) {
            if (err && cap)
                snprintf(err, cap,
                         "numberOfSamples=0: %s has more than %zu points per series "
                         "in this range; use numberOfSamples 1..%d or a shorter range",
                         api_metrics_type_name(req->types[i]), opts->max_points, API_METRICS_MAX_SAMPLES);
            return rc;
        }
        if (rc == STRATA_ETIMEOUT || rc == STRATA_EIO) {
            if (err && cap) {
                char why[256];
                snprintf(err, cap, "%s (while reading %s)", api_read_budget_why(&q.budget, why, sizeof why),
                         api_metrics_type_name(req->types[i]));
            }
            if (rc == STRATA_ETIMEOUT)
                strata_warn("metrics query: timeout", "tenant=%" PRId32 " workload=%s timeout_ms=%" PRId64,
                            tenant_id, workload_id, opts->timeout_ms);
            return rc;
        }
        if (rc) return rc;
    }
    *out = resp;
    return 0;
}
