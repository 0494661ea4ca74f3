/*
 * reports_gen.c: the generate callback over the metric store
 * (api_reports_tsdb_generate): reads the tenant's workload series from tsdb
 * one UTC day at a time, joins them to workloads (DESIGN.md section 4: a
 * series belongs to a workload when it carries workload_id, or when its
 * (namespace, pod) matches a runai_pod_info series), and hands them to
 * api_reports_aggregate.
 *
 * Working a day at a time bounds memory by one day of samples whatever the
 * report's range, and rows are per day anyway, so the output is identical to
 * aggregating the whole range at once.  Each day's selection starts
 * `staleness` before the day: a value held across midnight and a counter's
 * baseline sample come from there.
 */
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "reports.h"
#include "strata_err.h"
#include "strata_log.h"

#define DAY_MS INT64_C(86400000)

enum gcol { G_ALLOC, G_UTIL, G_FB, G_CPU_REQ, G_CPU_USE, G_MEM_REQ, G_MEM_USE, G_NCOLS };

typedef struct wl {
    api_report_workload_t w;
    int64_t last_seen;    /* newest info sample: its labels win */
    size_t seq;           /* order of the info series, the tie-break */
    int excluded;         /* filterBy rejects it */
} wl_t;

typedef struct pod {
    const char *ns, *pod;
    size_t wl;
    size_t seq;
} pod_t;

typedef struct piece {
    size_t wl;
    int col;
    api_report_series_t s;
} piece_t;

typedef struct day {
    strata_arena_t *arena;
    wl_t *wl;
    size_t nwl, capwl;
    pod_t *pods;
    size_t npods, cappods;
    piece_t *pieces;
    size_t npieces, cappieces;
} day_t;

static const char *label(const tsdb_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

static int grow(void **p, size_t *cap, size_t n, size_t size)
{
    if (n < *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    void *np = realloc(*p, nc * size);
    if (!np) return STRATA_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

/* Workloads and pods are looked up once per selected series, so they are
 * kept sorted and binary-searched: with a thousand workloads a linear scan
 * per series would cost more than reading the samples. */

/* By id, then newest info series first, then the order seen. */
static int cmp_wl(const void *a, const void *b)
{
    const wl_t *x = a, *y = b;
    int c = strcmp(x->w.workload_id, y->w.workload_id);
    if (c) return c;
    if (x->last_seen != y->last_seen) return x->last_seen > y->last_seen ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static int cmp_pod(const void *a, const void *b)
{
    const pod_t *x = a, *y = b;
    int c = strcmp(x->ns, y->ns);
    if (!c) c = strcmp(x->pod, y->pod);
    if (c) return c;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

static ssize_t find_wl(const day_t *d, const char *id)
{
    size_t lo = 0, hi = d->nwl;
    while (id && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->wl[mid].w.workload_id, id);
        if (c == 0) return (ssize_t)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static ssize_t find_pod(const day_t *d, const char *ns, const char *pod)
{
    size_t lo = 0, hi = d->npods;
    while (ns && pod && lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(d->pods[mid].ns, ns);
        if (!c) c = strcmp(d->pods[mid].pod, pod);
        if (c == 0) return (ssize_t)d->pods[mid].wl;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

static const char *dup_label(strata_arena_t *a, const tsdb_label_t *l, size_t n, const char *name)
{
    const char *v = label(l, n, name);
    return strata_arena_strdup(a, v ? v : "");
}

/* runai_workload_info: one workload per workload_id, labels of its newest series. */
static int load_info(tsdb_t *db, const char *tenant, int64_t mint, int64_t maxt,
                     const api_report_request_t *req, day_t *d)
{
    tsdb_matcher_t m[2] = {{TSDB_MATCH_EQ, "__name__", "runai_workload_info"},
                           {TSDB_MATCH_EQ, INGEST_TENANT_LABEL, tenant}};
    tsdb_series_set_t *set;
    int rc = tsdb_select(db, m, 2, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *s;
        if ((rc = tsdb_series_set_samples(set, &s, &ns))) break;
        const char *id = label(l, nl, "workload_id");
        if (!id || !ns) continue;
        /* every info series is a candidate; the newest of each id is kept below */
        if ((rc = grow((void **)&d->wl, &d->capwl, d->nwl, sizeof *d->wl))) break;
        wl_t *w = &d->wl[d->nwl];
        memset(w, 0, sizeof *w);
        w->seq = d->nwl++;
        w->last_seen = s[ns - 1].t;
        strata_arena_t *a = d->arena;
        w->w.workload_id = strata_arena_strdup(a, id);
        w->w.workload_name = dup_label(a, l, nl, "workload_name");
        w->w.cluster_id = dup_label(a, l, nl, "cluster_id");
        w->w.department_id = dup_label(a, l, nl, "department_id");
        w->w.department_name = dup_label(a, l, nl, "department_name");
        w->w.project_id = dup_label(a, l, nl, "project_id");
        w->w.project_name = dup_label(a, l, nl, "project_name");
        /* a workload is attributed to the first of its current nodepools */
        const char *np = label(l, nl, "current_nodepools");
        if (!np || !*np) np = label(l, nl, "requested_nodepools");
        size_t npl = np ? strcspn(np, ",") : 0;
        w->w.nodepool = strata_arena_strndup(a, np ? np : "", npl);
        if (!w->w.workload_id || !w->w.workload_name || !w->w.cluster_id ||
            !w->w.department_id || !w->w.department_name || !w->w.project_id ||
            !w->w.project_name || !w->w.nodepool) {
            rc = STRATA_ENOMEM;
            break;
        }
        w->excluded = !api_reports_filter_match(req, &w->w);
    }
    tsdb_series_set_free(set);
    if (rc < 0) return rc;
    if (d->nwl > 1) qsort(d->wl, d->nwl, sizeof *d->wl, cmp_wl);
    size_t u = 0;
    for (size_t i = 0; i < d->nwl; i++)
        if (!u || strcmp(d->wl[u - 1].w.workload_id, d->wl[i].w.workload_id))
            d->wl[u++] = d->wl[i];
    d->nwl = u;
    return 0;
}

static int load_pods(tsdb_t *db, const char *tenant, int64_t mint, int64_t maxt, day_t *d)
{
    tsdb_matcher_t m[2] = {{TSDB_MATCH_EQ, "__name__", "runai_pod_info"},
                           {TSDB_MATCH_EQ, INGEST_TENANT_LABEL, tenant}};
    tsdb_series_set_t *set;
    int rc = tsdb_select(db, m, 2, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        ssize_t w = find_wl(d, label(l, nl, "workload_id"));
        const char *ns = label(l, nl, "namespace"), *pod = label(l, nl, "pod");
        if (w < 0 || !ns || !pod) continue;
        if ((rc = grow((void **)&d->pods, &d->cappods, d->npods, sizeof *d->pods))) break;
        pod_t *p = &d->pods[d->npods];
        p->ns = strata_arena_strdup(d->arena, ns);
        p->pod = strata_arena_strdup(d->arena, pod);
        p->wl = (size_t)w;
        p->seq = d->npods;
        if (!p->ns || !p->pod) {
            rc = STRATA_ENOMEM;
            break;
        }
        d->npods++;
    }
    tsdb_series_set_free(set);
    if (rc < 0) return rc;
    /* a pod seen twice keeps its first series' workload */
    if (d->npods > 1) qsort(d->pods, d->npods, sizeof *d->pods, cmp_pod);
    size_t u = 0;
    for (size_t i = 0; i < d->npods; i++)
        if (!u || strcmp(d->pods[u - 1].ns, d->pods[i].ns) || strcmp(d->pods[u - 1].pod, d->pods[i].pod))
            d->pods[u++] = d->pods[i];
    d->npods = u;
    return 0;
}

/* Selects one column's series and attaches each to its workload. */
static int load_col(tsdb_t *db, const char *tenant, int64_t mint, int64_t maxt, int col,
                    const char *name, const tsdb_matcher_t *extra, size_t nextra, day_t *d)
{
    tsdb_matcher_t m[6] = {{TSDB_MATCH_EQ, "__name__", name},
                           {TSDB_MATCH_EQ, INGEST_TENANT_LABEL, tenant}};
    for (size_t i = 0; i < nextra && i < 4; i++) m[2 + i] = extra[i];
    tsdb_series_set_t *set;
    int rc = tsdb_select(db, m, 2 + nextra, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        ssize_t w = find_wl(d, label(l, nl, "workload_id"));
        if (w < 0) w = find_pod(d, label(l, nl, "namespace"), label(l, nl, "pod"));
        if (w < 0 || d->wl[w].excluded) continue;
        const tsdb_sample_t *s;
        if ((rc = tsdb_series_set_samples(set, &s, &ns))) break;
        if (!ns) continue;
        tsdb_sample_t *copy = strata_arena_alloc(d->arena, ns * sizeof *copy);
        if (!copy || (rc = grow((void **)&d->pieces, &d->cappieces, d->npieces, sizeof *d->pieces))) {
            rc = rc ? rc : STRATA_ENOMEM;
            break;
        }
        memcpy(copy, s, ns * sizeof *copy);
        d->pieces[d->npieces++] = (piece_t){(size_t)w, col, {copy, ns}};
    }
    tsdb_series_set_free(set);
    return rc < 0 ? rc : 0;
}

static int cmp_piece(const void *a, const void *b)
{
    const piece_t *x = a, *y = b;
    if (x->wl != y->wl) return x->wl < y->wl ? -1 : 1;
    return (x->col > y->col) - (x->col < y->col);
}

/* Gives each workload its columns' series (contiguous runs of the sorted
 * pieces).  Several allocation series (relabelled) are merged by time. */
static int attach(day_t *d)
{
    if (d->npieces) qsort(d->pieces, d->npieces, sizeof *d->pieces, cmp_piece);
    for (size_t i = 0; i < d->npieces;) {
        size_t j = i;
        while (j < d->npieces && d->pieces[j].wl == d->pieces[i].wl &&
               d->pieces[j].col == d->pieces[i].col)
            j++;
        size_t n = j - i;
        api_report_workload_t *w = &d->wl[d->pieces[i].wl].w;
        api_report_series_t *arr = strata_arena_alloc(d->arena, n * sizeof *arr);
        if (!arr) return STRATA_ENOMEM;
        for (size_t k = 0; k < n; k++) arr[k] = d->pieces[i + k].s;
        switch (d->pieces[i].col) {
        case G_ALLOC:
            w->gpu_allocation = arr[0];
            if (n > 1) {
                size_t tot = 0;
                for (size_t k = 0; k < n; k++) tot += arr[k].n;
                tsdb_sample_t *m = strata_arena_alloc(d->arena, tot * sizeof *m);
                if (!m) return STRATA_ENOMEM;
                size_t o = 0;
                for (size_t k = 0; k < n; k++) {
                    memcpy(m + o, arr[k].s, arr[k].n * sizeof *m);
                    o += arr[k].n;
                }
                /* insertion sort by time, later duplicates replacing earlier ones */
                for (size_t a = 1; a < tot; a++) {
                    tsdb_sample_t x = m[a];
                    size_t b = a;
                    while (b > 0 && m[b - 1].t > x.t) { m[b] = m[b - 1]; b--; }
                    m[b] = x;
                }
                size_t u = 0;
                for (size_t a = 0; a < tot; a++) {
                    if (u && m[u - 1].t == m[a].t) m[u - 1] = m[a];
                    else m[u++] = m[a];
                }
                w->gpu_allocation = (api_report_series_t){m, u};
            }
            break;
        case G_UTIL: w->gpu_util = arr; w->ngpu_util = n; break;
        case G_FB: w->gpu_fb_used = arr; w->ngpu_fb_used = n; break;
        case G_CPU_REQ: w->cpu_request = arr; w->ncpu_request = n; break;
        case G_CPU_USE: w->cpu_usage = arr; w->ncpu_usage = n; break;
        case G_MEM_REQ: w->mem_request = arr; w->nmem_request = n; break;
        case G_MEM_USE: w->mem_usage = arr; w->nmem_usage = n; break;
        }
        i = j;
    }
    return 0;
}

static int one_day(const api_reports_tsdb_source_t *src, const char *tenant,
                   const api_report_request_t *req, int64_t a, int64_t b,
                   const api_report_agg_params_t *prm, api_report_csv_t *csv,
                   const volatile int *cancelled, day_t *d)
{
    int64_t mint = a - prm->staleness_ms, maxt = b - 1;
    const tsdb_matcher_t container[2] = {{TSDB_MATCH_NEQ, "container", ""},
                                         {TSDB_MATCH_NEQ, "container", "POD"}};
    const tsdb_matcher_t cpu[1] = {{TSDB_MATCH_EQ, "resource", "cpu"}};
    const tsdb_matcher_t mem[1] = {{TSDB_MATCH_EQ, "resource", "memory"}};
    int rc = load_info(src->db, tenant, mint, maxt, req, d);
    if (!rc && d->nwl) rc = load_pods(src->db, tenant, mint, maxt, d);
    struct { int col; const char *name; const tsdb_matcher_t *m; size_t n; } cols[] = {
        {G_ALLOC, "runai_workload_gpu_allocation", NULL, 0},
        {G_UTIL, "DCGM_FI_DEV_GPU_UTIL", NULL, 0},
        {G_FB, "DCGM_FI_DEV_FB_USED", NULL, 0},
        {G_CPU_REQ, "kube_pod_container_resource_requests", cpu, 1},
        {G_CPU_USE, "container_cpu_usage_seconds_total", container, 2},
        {G_MEM_REQ, "kube_pod_container_resource_requests", mem, 1},
        {G_MEM_USE, "container_memory_working_set_bytes", container, 2},
    };
    for (size_t i = 0; !rc && d->nwl && i < sizeof cols / sizeof *cols; i++) {
        if (*cancelled) return STRATA_ECLOSED;
        rc = load_col(src->db, tenant, mint, maxt, cols[i].col, cols[i].name, cols[i].m,
                      cols[i].n, d);
    }
    if (!rc) rc = attach(d);
    if (rc || !d->nwl) return rc;

    api_report_workload_t *ws = strata_arena_alloc(d->arena, d->nwl * sizeof *ws);
    if (!ws) return STRATA_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < d->nwl; i++)
        if (!d->wl[i].excluded) ws[n++] = d->wl[i].w;
    api_report_request_t sub = *req;
    sub.start_ms = a;
    sub.end_ms = b;
    api_report_row_t *rows;
    size_t nrows;
    rc = api_reports_aggregate(&sub, ws, n, prm, cancelled, d->arena, &rows, &nrows);
    for (size_t i = 0; !rc && i < nrows; i++) rc = api_reports_csv_row(csv, &rows[i]);
    return rc;
}

int api_reports_tsdb_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                              const volatile int *cancelled, char *errmsg, size_t errcap)
{
    const api_reports_tsdb_source_t *src = ctx;
    if (!src || !src->db) {
        snprintf(errmsg, errcap, "no metric store to read");
        return STRATA_EINVAL;
    }
    api_report_agg_params_t prm;
    api_reports_agg_params_init(&prm);
    if (src->staleness_ms > 0) prm.staleness_ms = src->staleness_ms;
    if (src->gpu_idle_after_ms > 0) prm.gpu_idle_after_ms = src->gpu_idle_after_ms;
    char tenant[16];
    snprintf(tenant, sizeof tenant, "%d", (int)req->tenant_id);
    day_t d;
    memset(&d, 0, sizeof d);
    d.arena = strata_arena_new(1 << 20);
    if (!d.arena) return STRATA_ENOMEM;
    int rc = 0;
    int64_t a = req->start_ms;
    while (!rc && a < req->end_ms) {
        if (*cancelled) {
            rc = STRATA_ECLOSED;
            break;
        }
        /* the next UTC midnight after a */
        int64_t day = a >= 0 ? a / DAY_MS * DAY_MS : -((-a + DAY_MS - 1) / DAY_MS) * DAY_MS;
        int64_t b = day + DAY_MS < req->end_ms ? day + DAY_MS : req->end_ms;
        strata_arena_reset(d.arena);
        d.nwl = d.npods = d.npieces = 0;
        rc = one_day(src, tenant, req, a, b, &prm, csv, cancelled, &d);
        a = b;
    }
    strata_arena_free(d.arena);
    free(d.wl);
    free(d.pods);
    free(d.pieces);
    if (rc && rc != STRATA_ECLOSED)
        snprintf(errmsg, errcap, "reading the metric store failed: %s", strata_strerror(rc));
    return rc;
}
