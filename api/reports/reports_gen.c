/*
 * reports_gen.c: the generate callback over the metric store
 * (api_reports_tsdb_generate): reads the tenant's workload series from tsdb,
 * joins them to workloads (docs/reports.md, "Generation": a series belongs to
 * a workload when it carries workload_id, or when its (namespace, pod)
 * matches a runai_pod_info series), sums them per workload and UTC day, and
 * writes the rows through api_reports_group.
 *
 * Three passes over each batch of at most BATCH_DAYS days (so memory does not
 * grow with the range): each day's workloads and pods (raw info samples); each
 * column's 1h rollups over the batch in one streaming select, walked
 * hour by hour into every day on the hour grid; then day by day, the
 * workload-days the rollups could not give exactly from raw samples, and the
 * day's rows.  Each hour's integral is the value held into it from the
 * previous sample plus the point's hold_sum and its newest value held to the
 * hour's end, all exact while every gap is within the staleness
 * (docs/reports.md, "Generation from rollups").  The raw path's selection
 * starts staleness + gpu_idle_after before the day, so values held across
 * midnight and a GPU already idle at midnight are seen; counters read from
 * the rollup walk's lookback, so both paths see the same baseline.
 *
 * Reads carry a read budget (read.h) with the report's own deadline,
 * --report-timeout (default 1h), and no sample limit: a generation is a
 * background job whose memory the 31-day batches bound, not a request a client
 * waits on, so --query-timeout and --query-max-samples do not apply
 * (docs/api.md).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "reports.h"
#include "strata_err.h"
#include "strata_log.h"

#define DAY_MS     INT64_C(86400000)
#define HOUR_MS    INT64_C(3600000)
#define MIB        1048576.0
/* Days whose state (workloads, pods, hour arrays, an arena) is held at once:
 * a month, so a 30-day report reads each rollup column in one pass while a
 * longer range is walked in bounded memory. */
#define BATCH_DAYS 31

enum gcol { G_ALLOC, G_UTIL, G_FB, G_CPU_REQ, G_CPU_USE, G_MEM_REQ, G_MEM_USE, G_NCOLS };

typedef struct wl {
    api_report_workload_t w;
    int64_t last_seen; /* newest info sample: its labels win */
    size_t seq;        /* order of the info series, the tie-break */
    int excluded;      /* filterBy rejects it */
    /* the day from rollups */
    int raw; /* the rollups cannot give it exactly: read raw samples */
    api_report_day_totals_t tot;
    int nalloc;       /* allocation series seen */
    double *alloc_v;  /* per hour: allocation held unchanged all hour, else NaN */
    double *idle_sum; /* per hour: idle ms summed over GPUs */
    uint32_t *rep;    /* per hour: GPUs reporting all hour */
    uint8_t *partial; /* per hour: a GPU reported part of the hour */
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
    int64_t a, b;  /* the day's part of the range */
    size_t nhours; /* > 0: summed from 1h rollups over [a, b) */
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
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
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
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static const char *dup_label(strata_arena_t *a, const tsdb_label_t *l, size_t n, const char *name)
{
    const char *v = label(l, n, name);
    return strata_arena_strdup(a, v ? v : "");
}

/* runai_workload_info: one workload per workload_id, labels of its newest series. */
static int load_info(const api_read_source_t *rd, api_read_budget_t *budget, int32_t tenant, int64_t mint,
                     int64_t maxt, const api_report_request_t *req, day_t *d)
{
    const tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "runai_workload_info" } };
    api_read_set_t *set;
    int rc = api_read_select(rd, tenant, 0, budget, m, 1, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const tsdb_sample_t *s;
        if ((rc = api_read_set_samples(set, &s, &ns))) break;
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
        if (!w->w.workload_id || !w->w.workload_name || !w->w.cluster_id || !w->w.department_id ||
            !w->w.department_name || !w->w.project_id || !w->w.project_name || !w->w.nodepool) {
            rc = STRATA_ENOMEM;
            break;
        }
        w->excluded = !api_reports_filter_match(req, &w->w);
    }
    api_read_set_free(set);
    if (rc < 0) return rc;
    if (d->nwl > 1) qsort(d->wl, d->nwl, sizeof *d->wl, cmp_wl);
    size_t u = 0;
    for (size_t i = 0; i < d->nwl; i++)
        if (!u || strcmp(d->wl[u - 1].w.workload_id, d->wl[i].w.workload_id)) d->wl[u++] = d->wl[i];
    d->nwl = u;
    return 0;
}

static int load_pods(const api_read_source_t *rd, api_read_budget_t *budget, int32_t tenant, int64_t mint,
                     int64_t maxt, day_t *d)
{
    const tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "runai_pod_info" } };
    api_read_set_t *set;
    int rc = api_read_select(rd, tenant, 0, budget, m, 1, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
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
    api_read_set_free(set);
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
static int load_col(const api_read_source_t *rd, api_read_budget_t *budget, int32_t tenant, int64_t mint,
                    int64_t maxt, int col, const char *name, const tsdb_matcher_t *extra, size_t nextra,
                    day_t *d)
{
    tsdb_matcher_t m[5] = { { TSDB_MATCH_EQ, "__name__", name } };
    for (size_t i = 0; i < nextra && i < 4; i++) m[1 + i] = extra[i];
    api_read_set_t *set;
    int rc = api_read_select(rd, tenant, 0, budget, m, 1 + nextra, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        ssize_t w = find_wl(d, label(l, nl, "workload_id"));
        if (w < 0) w = find_pod(d, label(l, nl, "namespace"), label(l, nl, "pod"));
        if (w < 0 || d->wl[w].excluded || (d->nhours && !d->wl[w].raw)) continue;
        const tsdb_sample_t *s;
        if ((rc = api_read_set_samples(set, &s, &ns))) break;
        if (!ns) continue;
        tsdb_sample_t *copy = strata_arena_alloc(d->arena, ns * sizeof *copy);
        if (!copy || (rc = grow((void **)&d->pieces, &d->cappieces, d->npieces, sizeof *d->pieces))) {
            rc = rc ? rc : STRATA_ENOMEM;
            break;
        }
        memcpy(copy, s, ns * sizeof *copy);
        d->pieces[d->npieces++] = (piece_t){ (size_t)w, col, { copy, ns } };
    }
    api_read_set_free(set);
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
        while (j < d->npieces && d->pieces[j].wl == d->pieces[i].wl && d->pieces[j].col == d->pieces[i].col)
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
                    while (b > 0 && m[b - 1].t > x.t) {
                        m[b] = m[b - 1];
                        b--;
                    }
                    m[b] = x;
                }
                size_t u = 0;
                for (size_t a = 0; a < tot; a++) {
                    if (u && m[u - 1].t == m[a].t)
                        m[u - 1] = m[a];
                    else
                        m[u++] = m[a];
                }
                w->gpu_allocation = (api_report_series_t){ m, u };
            }
            break;
        case G_UTIL:
            w->gpu_util = arr;
            w->ngpu_util = n;
            break;
        case G_FB:
            w->gpu_fb_used = arr;
            w->ngpu_fb_used = n;
            break;
        case G_CPU_REQ:
            w->cpu_request = arr;
            w->ncpu_request = n;
            break;
        case G_CPU_USE:
            w->cpu_usage = arr;
            w->ncpu_usage = n;
            break;
        case G_MEM_REQ:
            w->mem_request = arr;
            w->nmem_request = n;
            break;
        case G_MEM_USE:
            w->mem_usage = arr;
            w->nmem_usage = n;
            break;
        }
        i = j;
    }
    return 0;
}

/* ---- a day from 1h rollups ----------------------------------------------------- */

/* Where a series stands at an hour boundary. */
typedef struct walk {
    int64_t staleness, idle_after, zero_run; /* zero_run: the store's tsdb_rollup_zero_run_ms */
    int have;                                /* a sample before */
    int64_t pt;                              /* the newest sample before: time and value */
    double pv;
    int64_t run; /* start of a run of zeros held up to the boundary, else INT64_MAX */
} walk_t;

typedef struct hour {
    int64_t held; /* ms some value held in the hour */
    double value; /* integral, value x ms */
    int64_t idle; /* ms idle (held at 0 for idle_after) */
    int constant; /* one value all the time it held */
    double cval;
} hour_t;

/* Idle time of a run of zeros [s, e) inside [from, ...): it starts idle_after in. */
static int64_t idle_of(int64_t s, int64_t e, int64_t from, int64_t idle_after)
{
    int64_t x = s + idle_after > from ? s + idle_after : from;
    return e > x ? e - x : 0;
}

/* The hour [A, B) of a series whose point for (A, B] is P (NULL: nothing in
 * it).  Returns 1 when the rollups cannot give it exactly (stale markers
 * between samples, a NaN, a gap beyond the staleness inside the hour, with
 * want_idle a run of zeros inside the hour going idle under a threshold other
 * than the one the rollups keep), else 0 and the hour in h. */
static int walk_hour(walk_t *w, const tsdb_rollup_point_t *P, int64_t A, int64_t B, int want_idle, hour_t *h)
{
    const tsdb_rollup_point_t *Q = P && P->count ? P : NULL; /* the hour's samples */
    int64_t st = INT64_MAX;                                  /* a stale marker ending a hold */
    if (P && P->stale) {
        if (P->stale > 1 || (Q && P->stale_t > Q->first_t && P->stale_t < Q->last_t)) return 1;
        st = P->stale_t;
    }
    if (Q && (Q->gap_max > w->staleness || isnan(Q->sum) || isnan(Q->hold_sum))) return 1;
    int inner_kept = w->idle_after == w->zero_run;
    if (want_idle && Q && !inner_kept && Q->zero_inner_max > w->idle_after) return 1;
    /* the value held into the hour from the newest sample before it */
    int64_t c1 = A;
    if (w->have && w->pt + w->staleness > A) {
        c1 = w->pt + w->staleness < B ? w->pt + w->staleness : B;
        if (Q && Q->first_t < c1) c1 = Q->first_t;
        if (st < c1) c1 = st; /* (a stale marker after the samples is past first_t) */
    }
    int64_t carry = c1 - A, E = A;
    *h = (hour_t){ carry, carry ? w->pv * (double)carry : 0, 0, 1, carry ? w->pv : NAN };
    if (Q) {
        /* samples up to the newest are held without a break (gap_max <= staleness) */
        E = Q->last_t + w->staleness < B ? Q->last_t + w->staleness : B;
        if (st > Q->last_t && st < E) E = st;
        h->held += E - Q->first_t;
        h->value += Q->hold_sum + Q->last * (double)(E - Q->last_t);
        if (Q->min != Q->max || (carry && w->pv != Q->min)) h->constant = 0;
        h->cval = Q->min;
    }
    if (want_idle) {
        int64_t next = INT64_MAX;
        int64_t r0 = carry && w->pv == 0 ? (w->run != INT64_MAX ? w->run : w->pt) : INT64_MAX;
        if (Q && Q->first == 0) {
            /* the run the hour's samples start with, joined to the one held in */
            int64_t s1 = Q->first_t, e1 = Q->zero_lead_end == INT64_MAX ? E : Q->zero_lead_end;
            if (r0 != INT64_MAX && c1 == s1)
                s1 = r0;
            else if (r0 != INT64_MAX)
                h->idle += idle_of(r0, c1, A, w->idle_after);
            h->idle += idle_of(s1, e1, A, w->idle_after);
            if (Q->zero_lead_end == INT64_MAX && E == B) next = s1;
        } else if (r0 != INT64_MAX) {
            h->idle += idle_of(r0, c1, A, w->idle_after);
            if (!Q && c1 == B) next = r0;
        }
        if (Q && inner_kept) h->idle += Q->zero_inner_long;
        if (Q && Q->zero_lead_end != INT64_MAX && Q->zero_trail_start != INT64_MAX) {
            h->idle += idle_of(Q->zero_trail_start, E, A, w->idle_after);
            if (E == B) next = Q->zero_trail_start;
        }
        w->run = next;
    }
    if (Q) {
        w->have = 1;
        w->pt = Q->last_t;
        w->pv = Q->last;
    }
    if (st != INT64_MAX && (!Q || st > Q->last_t)) {
        w->have = 0; /* the stale marker ended the hold */
        w->run = INT64_MAX;
    }
    return 0;
}

/* A counter's increase over samples in [a, b), from the points ending in
 * [a - lookback + 1h, b] (the counter rule of docs/reports.md, "Aggregation":
 * each sample adds its rise over the sample before, a drop its whole value;
 * the first sample seen has no baseline, as in the raw path's window).
 * Returns 1 with NaN samples. */
static int counter_day(const tsdb_rollup_point_t *p, size_t n, int64_t a, int64_t b, double *inc,
                       int *present)
{
    int seen = 0;
    double prev = 0;
    for (size_t i = 0; i < n && p[i].t <= b; i++) {
        const tsdb_rollup_point_t *P = &p[i];
        if (!P->count) continue;
        if (isnan(P->sum) || isnan(P->inner_increase)) return 1;
        double first = seen ? (P->first >= prev ? P->first - prev : P->first) : 0;
        /* the rise of the newest sample, when it sits exactly on the end */
        double end = P->count > 1 ? P->last_rise : first;
        if (P->t == a) {
            if (P->last_t == a) {
                *inc += end;
                *present = 1;
            }
        } else if (P->t > a) {
            double r = first + P->inner_increase;
            if (P->t == b && P->last_t == b) r -= end; /* that sample is the next day's */
            *inc += r;
            if (P->t < b || P->first_t < b) *present = 1;
        }
        seen = 1;
        prev = P->last;
    }
    return 0;
}

/* How far before the day the rollup walk starts: enough to see the value
 * held in, the counter's baseline and a run of zeros that went idle before. */
static int64_t walk_lookback(const api_report_agg_params_t *prm)
{
    int64_t x = prm->staleness_ms + prm->gpu_idle_after_ms;
    return (x + HOUR_MS - 1) / HOUR_MS * HOUR_MS + HOUR_MS;
}

/* One series' 1h points p[0..np) into workload x's day d (a from-rollups
 * day): the walk from the lookback before the day to its end. */
static void fast_series_day(const api_report_agg_params_t *prm, int64_t zero_run, int col,
                            const tsdb_rollup_point_t *p, size_t np, const day_t *d, wl_t *x)
{
    int64_t w0 = d->a - walk_lookback(prm);
    size_t lo = 0, hi = np; /* first point of the walk: t > w0 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p[mid].t <= w0)
            lo = mid + 1;
        else
            hi = mid;
    }
    p += lo;
    np -= lo;
    if (!np || p[0].t > d->b) return; /* nothing that day (a series of other days) */
    if (col == G_CPU_USE) {
        x->raw = counter_day(p, np, d->a, d->b, &x->tot.cpu_inc_s, &x->tot.present);
        return;
    }
    if (col == G_ALLOC) x->nalloc++;
    walk_t w = { prm->staleness_ms, prm->gpu_idle_after_ms, zero_run, 0, 0, 0, INT64_MAX };
    double value = 0;
    int64_t held = 0;
    size_t j = 0;
    for (int64_t B = w0 + HOUR_MS; B <= d->b; B += HOUR_MS) {
        while (j < np && p[j].t < B) j++;
        const tsdb_rollup_point_t *P = j < np && p[j].t == B ? &p[j] : NULL;
        hour_t h;
        if (walk_hour(&w, P, B - HOUR_MS, B, col == G_UTIL, &h)) {
            x->raw = 1;
            return;
        }
        if (B - HOUR_MS < d->a) continue;
        size_t k = (size_t)((B - HOUR_MS - d->a) / HOUR_MS);
        value += h.value;
        held += h.held;
        if (col == G_ALLOC) x->alloc_v[k] = h.held == HOUR_MS && h.constant ? h.cval : NAN;
        if (col == G_UTIL) {
            x->idle_sum[k] += (double)h.idle;
            if (h.held == HOUR_MS)
                x->rep[k]++;
            else if (h.held > 0)
                x->partial[k] = 1;
        }
    }
    if (held <= 0) return;
    x->tot.present = 1;
    switch (col) {
    case G_ALLOC: x->tot.alloc_ms += value; break;
    case G_UTIL:
        x->tot.util_sum += value;
        x->tot.util_held += (double)held;
        break;
    case G_FB:
        x->tot.fb_sum += value * MIB;
        x->tot.fb_held += (double)held;
        break;
    case G_CPU_REQ: x->tot.cpu_req_ms += value; break;
    case G_MEM_REQ: x->tot.mem_req_ms += value; break;
    case G_MEM_USE: x->tot.mem_use_ms += value; break;
    }
}

/* One column's series from rollups into every from-rollups day, with one
 * select over all of them: each series' 1h points are read once (a block
 * spans up to 7 days, and its points of a series are read whole). */
static int fast_col(const api_read_source_t *rd, api_read_budget_t *budget, int32_t tenant,
                    const api_report_agg_params_t *prm, int col, const char *name,
                    const tsdb_matcher_t *extra, size_t nextra, day_t *days, size_t ndays,
                    const volatile int *cancelled)
{
    tsdb_matcher_t m[5] = { { TSDB_MATCH_EQ, "__name__", name } };
    for (size_t i = 0; i < nextra && i < 4; i++) m[1 + i] = extra[i];
    int64_t mint = INT64_MAX, maxt = INT64_MIN;
    for (size_t k = 0; k < ndays; k++) {
        if (!days[k].nhours) continue;
        if (days[k].a - walk_lookback(prm) < mint) mint = days[k].a - walk_lookback(prm);
        if (days[k].b > maxt) maxt = days[k].b;
    }
    if (mint == INT64_MAX) return 0;
    api_read_set_t *set;
    /* one pass over 30 days: keep the page cache for queries */
    int rc = api_read_select(rd, tenant, API_READ_STREAM, budget, m, 1 + nextra, mint, maxt, &set);
    if (rc) return rc;
    while ((rc = api_read_set_next(set)) == 1) {
        if (*cancelled) {
            rc = STRATA_ECLOSED;
            break;
        }
        size_t nl, np = 0;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const char *id = label(l, nl, "workload_id");
        const char *ns = label(l, nl, "namespace"), *pod = label(l, nl, "pod");
        const tsdb_rollup_point_t *p = NULL;
        int rrc = 0;
        for (size_t k = 0; k < ndays && !rrc; k++) {
            day_t *d = &days[k];
            if (!d->nhours || !d->nwl) continue;
            ssize_t wi = find_wl(d, id);
            if (wi < 0) wi = find_pod(d, ns, pod);
            if (wi < 0 || d->wl[wi].excluded || d->wl[wi].raw) continue;
            if (!p && (rrc = api_read_set_rollups(set, TSDB_ROLLUP_1H, &p, &np))) break;
            fast_series_day(prm, api_read_source_rollup_zero_run_ms(rd), col, p, np, d, &d->wl[wi]);
        }
        if (rrc) {
            rc = rrc;
            break;
        }
    }
    api_read_set_free(set);
    return rc < 0 ? rc : 0;
}

/* Idle allocated time hour by hour: allocation x idle GPU-ms / GPUs reporting,
 * exact when the allocation held one value all hour and every GPU reported
 * all hour or not at all; otherwise the workload-day goes raw. */
static void fast_idle(day_t *d)
{
    for (size_t i = 0; i < d->nwl; i++) {
        wl_t *x = &d->wl[i];
        if (x->excluded || x->raw) continue;
        if (x->nalloc > 1) {
            x->raw = 1;
            continue;
        } /* relabelled: merged from raw samples */
        double idle = 0;
        for (size_t k = 0; k < d->nhours && x->nalloc; k++) {
            if (x->idle_sum[k] <= 0) continue;
            if (x->partial[k] || !x->rep[k] || isnan(x->alloc_v[k])) {
                x->raw = 1;
                break;
            }
            idle += x->alloc_v[k] * x->idle_sum[k] / x->rep[k];
        }
        x->tot.idle_ms = idle;
    }
}

static const tsdb_matcher_t M_CONTAINER[2] = { { TSDB_MATCH_NEQ, "container", "" },
                                               { TSDB_MATCH_NEQ, "container", "POD" } };
static const tsdb_matcher_t M_CPU[1] = { { TSDB_MATCH_EQ, "resource", "cpu" } };
static const tsdb_matcher_t M_MEM[1] = { { TSDB_MATCH_EQ, "resource", "memory" } };

static const struct column {
    int col;
    const char *name;
    const tsdb_matcher_t *m;
    size_t n;
} COLUMNS[] = {
    { G_ALLOC, "runai_workload_gpu_allocation", NULL, 0 },
    { G_UTIL, "DCGM_FI_DEV_GPU_UTIL", NULL, 0 },
    { G_FB, "DCGM_FI_DEV_FB_USED", NULL, 0 },
    { G_CPU_REQ, "kube_pod_container_resource_requests", M_CPU, 1 },
    { G_CPU_USE, "container_cpu_usage_seconds_total", M_CONTAINER, 2 },
    { G_MEM_REQ, "kube_pod_container_resource_requests", M_MEM, 1 },
    { G_MEM_USE, "container_memory_working_set_bytes", M_CONTAINER, 2 },
};
#define NCOLUMNS (sizeof COLUMNS / sizeof *COLUMNS)

/* The day's workloads and pods (raw samples), and its per-hour arrays when
 * its hours come from rollups. */
static int day_load(const api_reports_tsdb_source_t *src, api_read_budget_t *budget, int32_t tenant,
                    const api_report_request_t *req, const api_report_agg_params_t *prm, day_t *d)
{
    /* workloads and pods are seen from raw samples as far back as the raw path reads */
    int64_t mint = d->a - prm->staleness_ms - prm->gpu_idle_after_ms, maxt = d->b - 1;
    int rc = load_info(src->reader, budget, tenant, mint, maxt, req, d);
    if (!rc && d->nwl) rc = load_pods(src->reader, budget, tenant, mint, maxt, d);
    if (rc || !d->nwl) return rc;
    int on_grid = d->a % HOUR_MS == 0 && d->b % HOUR_MS == 0;
    if (src->raw_only || !on_grid || !(api_read_source_caps(src->reader) & API_READ_CAP_ROLLUPS)) {
        for (size_t i = 0; i < d->nwl; i++) d->wl[i].raw = 1;
        return 0;
    }
    d->nhours = (size_t)((d->b - d->a) / HOUR_MS);
    for (size_t i = 0; i < d->nwl; i++) {
        wl_t *x = &d->wl[i];
        x->alloc_v = strata_arena_alloc(d->arena, d->nhours * sizeof *x->alloc_v);
        x->idle_sum = strata_arena_calloc(d->arena, d->nhours, sizeof *x->idle_sum);
        x->rep = strata_arena_calloc(d->arena, d->nhours, sizeof *x->rep);
        x->partial = strata_arena_calloc(d->arena, d->nhours, sizeof *x->partial);
        if (!x->alloc_v || !x->idle_sum || !x->rep || !x->partial) return STRATA_ENOMEM;
        for (size_t k = 0; k < d->nhours; k++) x->alloc_v[k] = NAN;
    }
    return 0;
}

/* The day's rows: idle hours from rollups, every workload the rollups could
 * not give exactly from raw samples, then grouped and written. */
static int day_finish(api_reports_tsdb_source_t *src, api_read_budget_t *budget, int32_t tenant,
                      const api_report_request_t *req, const api_report_agg_params_t *prm,
                      api_report_csv_t *csv, const volatile int *cancelled, day_t *d, uint64_t *from_rollups,
                      uint64_t *from_raw)
{
    if (!d->nwl) return 0;
    int64_t a = d->a, b = d->b;
    int64_t mint = a - prm->staleness_ms - prm->gpu_idle_after_ms, maxt = b - 1;
    int rc = 0;
    if (d->nhours) fast_idle(d);
    size_t nraw = 0, nfast = 0;
    for (size_t i = 0; i < d->nwl; i++)
        if (!d->wl[i].excluded && d->wl[i].raw) nraw++;
    if (nraw) {
        for (size_t i = 0; !rc && i < NCOLUMNS; i++) {
            if (*cancelled) return STRATA_ECLOSED;
            /* a counter's baseline: its last sample inside the rollup walk's lookback */
            int64_t from = COLUMNS[i].col == G_CPU_USE ? a - walk_lookback(prm) + 1 : mint;
            rc = load_col(src->reader, budget, tenant, from, maxt, COLUMNS[i].col, COLUMNS[i].name,
                          COLUMNS[i].m, COLUMNS[i].n, d);
        }
        if (!rc) rc = attach(d);
        if (rc) return rc;
    }
    api_report_request_t sub = *req;
    sub.start_ms = a;
    sub.end_ms = b;
    api_report_entry_t *ent = strata_arena_alloc(d->arena, d->nwl * sizeof *ent);
    if (!ent) return STRATA_ENOMEM;
    size_t n = 0, nraw_present = 0;
    int64_t day = a - (a % DAY_MS + DAY_MS) % DAY_MS;
    for (size_t i = 0; !rc && i < d->nwl; i++) {
        wl_t *x = &d->wl[i];
        if (x->excluded) continue;
        if (*cancelled) return STRATA_ECLOSED;
        if (x->raw) rc = api_reports_workload_days(&sub, &x->w, prm, &x->tot, 1);
        if (rc || !x->tot.present) continue;
        ent[n++] = (api_report_entry_t){ day, &x->w, x->tot };
        if (x->raw)
            nraw_present++;
        else
            nfast++;
    }
    if (rc) return rc;
    atomic_fetch_add(&src->days_from_rollups, nfast);
    atomic_fetch_add(&src->days_from_raw, nraw_present);
    *from_rollups += nfast;
    *from_raw += nraw_present;
    api_report_row_t *rows;
    size_t nrows;
    rc = api_reports_group(&sub, ent, n, d->arena, &rows, &nrows);
    for (size_t i = 0; !rc && i < nrows; i++) rc = api_reports_csv_row(csv, &rows[i]);
    return rc;
}

static void day_free(day_t *d)
{
    strata_arena_free(d->arena);
    free(d->wl);
    free(d->pods);
    free(d->pieces);
    memset(d, 0, sizeof *d);
}

int api_reports_tsdb_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                              const volatile int *cancelled, char *errmsg, size_t errcap)
{
    api_reports_tsdb_source_t *src = ctx;
    if (!src || !src->reader) {
        snprintf(errmsg, errcap, "no metric store to read");
        return STRATA_EINVAL;
    }
    api_report_agg_params_t prm;
    api_reports_agg_params_init(&prm);
    if (src->staleness_ms > 0) prm.staleness_ms = src->staleness_ms;
    if (src->gpu_idle_after_ms > 0) prm.gpu_idle_after_ms = src->gpu_idle_after_ms;
    int32_t tenant = req->tenant_id;
    /* one deadline for the whole report (--report-timeout); no sample limit:
     * memory is bounded by the batches below, not by what is read */
    api_read_budget_t budget;
    api_read_budget_init(&budget, src->timeout_ms, 0);
    budget.timeout_flag = "--report-timeout";
    /* the UTC days of [start, end): the first and last may be partial */
    int64_t day0 = req->start_ms - ((req->start_ms % DAY_MS) + DAY_MS) % DAY_MS;
    size_t ndays = (size_t)((req->end_ms - 1 - day0) / DAY_MS + 1);
    size_t cap = ndays < BATCH_DAYS ? ndays : BATCH_DAYS;
    day_t *days = calloc(cap, sizeof *days);
    if (!days) return STRATA_ENOMEM;
    int rc = 0;
    uint64_t from_rollups = 0, from_raw = 0;
    /* A batch of at most BATCH_DAYS days at a time, so memory does not grow
     * with the range: 1. each day's workloads; 2. the rollup columns over the
     * batch's days at once; 3. each day's rows in order (raw fallbacks read
     * then).  Each day's sums read only its own window, so the rows are the
     * same whatever the batching. */
    for (size_t k0 = 0; !rc && k0 < ndays; k0 += cap) {
        size_t nb = ndays - k0 < cap ? ndays - k0 : cap;
        for (size_t i = 0; !rc && i < nb; i++) {
            size_t k = k0 + i;
            day_t *d = &days[i];
            d->a = k ? day0 + (int64_t)k * DAY_MS : req->start_ms;
            d->b = day0 + (int64_t)(k + 1) * DAY_MS < req->end_ms ? day0 + (int64_t)(k + 1) * DAY_MS
                                                                  : req->end_ms;
            if (*cancelled)
                rc = STRATA_ECLOSED;
            else if (!(d->arena = strata_arena_new(1 << 20)))
                rc = STRATA_ENOMEM;
            else
                rc = day_load(src, &budget, tenant, req, &prm, d);
        }
        for (size_t i = 0; !rc && i < NCOLUMNS; i++) {
            if (*cancelled)
                rc = STRATA_ECLOSED;
            else
                rc = fast_col(src->reader, &budget, tenant, &prm, COLUMNS[i].col, COLUMNS[i].name,
                              COLUMNS[i].m, COLUMNS[i].n, days, nb, cancelled);
        }
        for (size_t i = 0; !rc && i < nb; i++) {
            if (*cancelled)
                rc = STRATA_ECLOSED;
            else
                rc = day_finish(src, &budget, tenant, req, &prm, csv, cancelled, &days[i], &from_rollups,
                                &from_raw);
            day_free(&days[i]); /* done with it: memory is the days not yet written */
        }
        for (size_t i = 0; i < nb; i++) day_free(&days[i]);
    }
    free(days);
    char why[256];
    if (rc && rc != STRATA_ECLOSED)
        snprintf(errmsg, errcap, "reading the metric store failed: %s",
                 budget.exceeded ? api_read_budget_why(&budget, why, sizeof why) : strata_strerror(rc));
    if (!rc)
        strata_info("report generated", "id=%s workload_days_from_rollups=%llu workload_days_from_raw=%llu",
                    req->id ? req->id : "", (unsigned long long)from_rollups, (unsigned long long)from_raw);
    return rc;
}
