/*
 * report_gen.c: consumption-report generation over tsdb.
 *
 * Workloads come from the store, not from the registry, because a report
 * covers workloads deleted long ago as well as live ones and the store is
 * the only complete record of them.  A series belongs to a workload when it
 * carries its workload_id, or when its (namespace, pod) is one of the
 * workload's pods (runai_pod_info) and the sample lies inside that pod's
 * active window (DESIGN section 4); pod-joined series that carry a
 * workload_id of their own are left to that workload, so nothing is counted
 * twice.  Everything for one report lives in one arena freed at the end.
 */
#include "report_gen.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "strata_log.h"

typedef struct svec {
    api_report_series_t *v;
    size_t n, cap;
} svec_t;

typedef struct pod {
    const char *ns, *name;
    int64_t from, to;  /* active window [from, to) */
} pod_t;

typedef struct wl {
    api_report_workload_t w;
    int64_t newest;    /* newest info sample: the freshest labels win */
} wl_t;

typedef struct gen {
    tsdb_t *db;
    strata_arena_t *arena;
    char tenant[16];
    int64_t mint, maxt, staleness;
} gen_t;

static const char *lv(const tsdb_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return "";
}

static int is_stale(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u == TSDB_STALE_NAN_BITS;
}

static int svec_push(strata_arena_t *a, svec_t *sv, api_report_series_t s)
{
    if (sv->n == sv->cap) {
        size_t ncap = sv->cap ? sv->cap * 2 : 8;
        api_report_series_t *nv = strata_arena_alloc(a, ncap * sizeof *nv);
        if (!nv) return STRATA_ENOMEM;
        if (sv->n) memcpy(nv, sv->v, sv->n * sizeof *nv);
        sv->v = nv;
        sv->cap = ncap;
    }
    sv->v[sv->n++] = s;
    return 0;
}

/* Appends every series matching m to sv, samples clipped to [lo, hi). */
static int collect(gen_t *g, const tsdb_matcher_t *m, size_t nm, int64_t lo, int64_t hi, svec_t *sv)
{
    tsdb_series_set_t *set;
    int rc = tsdb_select(g->db, m, nm, g->mint, g->maxt, &set);
    if (rc) return rc;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        const tsdb_sample_t *s;
        size_t n;
        if ((rc = tsdb_series_set_samples(set, &s, &n)) < 0) break;
        size_t first = 0, last = n;
        while (first < n && s[first].t < lo) first++;
        while (last > first && s[last - 1].t >= hi) last--;
        if (last == first) continue;
        tsdb_sample_t *copy = strata_arena_alloc(g->arena, (last - first) * sizeof *copy);
        if (!copy) { rc = STRATA_ENOMEM; break; }
        memcpy(copy, s + first, (last - first) * sizeof *copy);
        if ((rc = svec_push(g->arena, sv, (api_report_series_t){ copy, last - first }))) break;
    }
    tsdb_series_set_free(set);
    return rc < 0 ? rc : 0;
}

typedef struct source {
    const char *name;
    tsdb_matcher_t extra[2];
    size_t nextra;
} source_t;

/* The source's series of one workload: by workload_id, then by its pods. */
static int gather(gen_t *g, const source_t *src, const char *wid, const pod_t *pods, size_t npods,
                  const api_report_series_t **out, size_t *nout)
{
    svec_t sv = { 0 };
    tsdb_matcher_t m[6];
    size_t nm = 0;
    m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "__name__", src->name };
    m[nm++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, INGEST_TENANT_LABEL, g->tenant };
    for (size_t i = 0; i < src->nextra; i++) m[nm++] = src->extra[i];
    m[nm] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", wid };
    int rc = collect(g, m, nm + 1, INT64_MIN, INT64_MAX, &sv);
    for (size_t p = 0; rc == 0 && p < npods; p++) {
        tsdb_matcher_t pm[8];
        memcpy(pm, m, nm * sizeof *m);
        size_t k = nm;
        pm[k++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "workload_id", "" };
        pm[k++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "namespace", pods[p].ns };
        pm[k++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, "pod", pods[p].name };
        rc = collect(g, pm, k, pods[p].from, pods[p].to, &sv);
    }
    *out = sv.v;
    *nout = sv.n;
    return rc;
}

/* The workload's pods and their active windows. */
static int pods_of(gen_t *g, const char *wid, pod_t **out, size_t *nout)
{
    tsdb_matcher_t m[] = {
        { TSDB_MATCH_EQ, "__name__", "runai_pod_info" },
        { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, g->tenant },
        { TSDB_MATCH_EQ, "workload_id", wid },
    };
    tsdb_series_set_t *set;
    int rc = tsdb_select(g->db, m, 3, g->mint, g->maxt, &set);
    if (rc) return rc;
    pod_t *pods = NULL;
    size_t n = 0, cap = 0;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *s;
        if ((rc = tsdb_series_set_samples(set, &s, &ns)) < 0) break;
        if (ns == 0 || !*lv(l, nl, "namespace") || !*lv(l, nl, "pod")) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            pod_t *np = strata_arena_alloc(g->arena, ncap * sizeof *np);
            if (!np) { rc = STRATA_ENOMEM; break; }
            if (n) memcpy(np, pods, n * sizeof *np);
            pods = np;
            cap = ncap;
        }
        const tsdb_sample_t *last = &s[ns - 1];
        pods[n] = (pod_t){ strata_arena_strdup(g->arena, lv(l, nl, "namespace")),
                           strata_arena_strdup(g->arena, lv(l, nl, "pod")), s[0].t,
                           is_stale(last->v) ? last->t : last->t + g->staleness };
        if (!pods[n].ns || !pods[n].name) { rc = STRATA_ENOMEM; break; }
        n++;
    }
    tsdb_series_set_free(set);
    *out = pods;
    *nout = n;
    return rc < 0 ? rc : 0;
}

/* The tenant's workloads with info samples in range, newest labels winning. */
static int workloads(gen_t *g, wl_t **out, size_t *nout)
{
    tsdb_matcher_t m[] = {
        { TSDB_MATCH_EQ, "__name__", "runai_workload_info" },
        { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, g->tenant },
        { TSDB_MATCH_NEQ, "workload_id", "" },
    };
    tsdb_series_set_t *set;
    int rc = tsdb_select(g->db, m, 3, g->mint, g->maxt, &set);
    if (rc) return rc;
    wl_t *w = NULL;
    size_t n = 0, cap = 0;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *s;
        if ((rc = tsdb_series_set_samples(set, &s, &ns)) < 0) break;
        if (ns == 0) continue;
        const char *id = lv(l, nl, "workload_id");
        wl_t *e = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(w[i].w.workload_id, id) == 0) { e = &w[i]; break; }
        if (e && e->newest >= s[ns - 1].t) continue;
        if (!e) {
            if (n == cap) {
                size_t ncap = cap ? cap * 2 : 16;
                wl_t *nw = strata_arena_alloc(g->arena, ncap * sizeof *nw);
                if (!nw) { rc = STRATA_ENOMEM; break; }
                if (n) memcpy(nw, w, n * sizeof *nw);
                w = nw;
                cap = ncap;
            }
            e = &w[n++];
        }
        memset(e, 0, sizeof *e);
        e->newest = s[ns - 1].t;
        strata_arena_t *a = g->arena;
        e->w.workload_id = strata_arena_strdup(a, id);
        e->w.workload_name = strata_arena_strdup(a, lv(l, nl, "workload_name"));
        e->w.cluster_id = strata_arena_strdup(a, lv(l, nl, "cluster_id"));
        e->w.department_id = strata_arena_strdup(a, lv(l, nl, "department_id"));
        e->w.department_name = strata_arena_strdup(a, lv(l, nl, "department_name"));
        e->w.project_id = strata_arena_strdup(a, lv(l, nl, "project_id"));
        e->w.project_name = strata_arena_strdup(a, lv(l, nl, "project_name"));
        const char *pools = *lv(l, nl, "current_nodepools") ? lv(l, nl, "current_nodepools")
                                                            : lv(l, nl, "requested_nodepools");
        const char *comma = strchr(pools, ',');
        e->w.nodepool = strata_arena_strndup(a, pools, comma ? (size_t)(comma - pools) : strlen(pools));
        if (!e->w.workload_id || !e->w.workload_name || !e->w.cluster_id || !e->w.department_id ||
            !e->w.department_name || !e->w.project_id || !e->w.project_name || !e->w.nodepool) {
            rc = STRATA_ENOMEM;
            break;
        }
    }
    tsdb_series_set_free(set);
    *out = w;
    *nout = n;
    return rc < 0 ? rc : 0;
}

int api_report_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                        const volatile int *cancelled, char *errmsg, size_t errcap)
{
    api_report_gen_t *rg = ctx;
    gen_t g = { .db = atomic_load(&rg->db), .staleness = rg->params.staleness_ms };
    if (!g.db) { snprintf(errmsg, errcap, "the metric store is not open"); return STRATA_ECLOSED; }
    if (!(g.arena = strata_arena_new(0))) { snprintf(errmsg, errcap, "out of memory"); return STRATA_ENOMEM; }
    snprintf(g.tenant, sizeof g.tenant, "%d", (int)req->tenant_id);
    g.mint = req->start_ms - g.staleness;
    g.maxt = req->end_ms - 1;

    static const source_t sources[] = {
        { "DCGM_FI_DEV_GPU_UTIL", { { 0 } }, 0 },
        { "DCGM_FI_DEV_FB_USED", { { 0 } }, 0 },
        { "kube_pod_container_resource_requests", { { TSDB_MATCH_EQ, "resource", "cpu" } }, 1 },
        { "container_cpu_usage_seconds_total",
          { { TSDB_MATCH_NEQ, "container", "" }, { TSDB_MATCH_NEQ, "container", "POD" } }, 2 },
        { "kube_pod_container_resource_requests", { { TSDB_MATCH_EQ, "resource", "memory" } }, 1 },
        { "container_memory_working_set_bytes",
          { { TSDB_MATCH_NEQ, "container", "" }, { TSDB_MATCH_NEQ, "container", "POD" } }, 2 },
    };
    wl_t *w = NULL;
    size_t nw = 0, kept = 0;
    int rc = workloads(&g, &w, &nw);
    api_report_workload_t *ws = rc ? NULL : strata_arena_calloc(g.arena, nw ? nw : 1, sizeof *ws);
    if (!rc && !ws) rc = STRATA_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nw; i++) {
        if (cancelled && *cancelled) { rc = STRATA_ECLOSED; break; }
        api_report_workload_t *x = &w[i].w;
        if (!api_reports_filter_match(req, x)) continue;
        pod_t *pods;
        size_t npods;
        if ((rc = pods_of(&g, x->workload_id, &pods, &npods))) break;
        const api_report_series_t *alloc;
        size_t nalloc;
        source_t alloc_src = { "runai_workload_gpu_allocation", { { 0 } }, 0 };
        if ((rc = gather(&g, &alloc_src, x->workload_id, NULL, 0, &alloc, &nalloc))) break;
        if (nalloc) x->gpu_allocation = alloc[0];
        if ((rc = gather(&g, &sources[0], x->workload_id, pods, npods, &x->gpu_util, &x->ngpu_util))) break;
        if ((rc = gather(&g, &sources[1], x->workload_id, pods, npods, &x->gpu_fb_used, &x->ngpu_fb_used))) break;
        if ((rc = gather(&g, &sources[2], x->workload_id, pods, npods, &x->cpu_request, &x->ncpu_request))) break;
        if ((rc = gather(&g, &sources[3], x->workload_id, pods, npods, &x->cpu_usage, &x->ncpu_usage))) break;
        if ((rc = gather(&g, &sources[4], x->workload_id, pods, npods, &x->mem_request, &x->nmem_request))) break;
        if ((rc = gather(&g, &sources[5], x->workload_id, pods, npods, &x->mem_usage, &x->nmem_usage))) break;
        ws[kept++] = *x;
    }
    api_report_row_t *rows = NULL;
    size_t nrows = 0;
    if (rc == 0)
        rc = api_reports_aggregate(req, ws, kept, &rg->params, cancelled, g.arena, &rows, &nrows);
    for (size_t i = 0; rc == 0 && i < nrows; i++) rc = api_reports_csv_row(csv, &rows[i]);
    if (rc)
        snprintf(errmsg, errcap, "%s", rc == STRATA_ECLOSED ? "generation cancelled" : strata_strerror(rc));
    strata_arena_free(g.arena);
    return rc;
}
