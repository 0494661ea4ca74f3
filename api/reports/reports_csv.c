/*
 * reports_csv.c: the consumption CSV (docs/reports.md, "The CSV"): the row
 * writer generators call, and the pure aggregation that turns per-workload
 * samples into per-UTC-day, per-group rows with the exact integrals of the
 * holding rule (docs/reports.md, "Aggregation").
 *
 * Integrals are accumulated as value x milliseconds and divided once per row,
 * so integer inputs (GPU counts, bytes, cores) give exact hours: 2 GPUs for
 * 3.5 h is 2 x 12600000 ms / 3600000 = 7 exactly.  Counters follow the
 * increase rule of the same section (never interpolated), so a cross-midnight
 * increase goes whole to the day of the later sample and integer counters
 * stay integers.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "holding.h"
#include "reports.h"
#include "strata_err.h"
#include "strata_fmt.h"

#define DAY_MS   INT64_C(86400000)
#define HOUR_MS  3600000.0
#define GIB      1073741824.0
#define MIB      1048576.0
#define MAX_DAYS 100000

/* ---- CSV writer -------------------------------------------------------------- */

struct api_report_csv {
    FILE *f;
    enum api_report_group group_by;
    int64_t rows;
};

static const char *const METRIC_COLS =
    "gpu_allocation_hours,gpu_idle_allocated_hours,gpu_utilization_avg_pct,"
    "gpu_memory_usage_avg_bytes,cpu_request_core_hours,cpu_usage_core_hours,"
    "cpu_memory_request_gib_hours,cpu_memory_usage_gib_hours,workloads\n";

const char *api_reports_csv_header(enum api_report_group g)
{
    switch (g) {
    case API_REPORT_GROUP_CLUSTER: return "date,cluster_id,";
    case API_REPORT_GROUP_DEPARTMENT: return "date,department_id,department_name,";
    case API_REPORT_GROUP_PROJECT: return "date,project_id,project_name,";
    case API_REPORT_GROUP_NODEPOOL: return "date,nodepool,";
    default:
        return "date,cluster_id,department_id,department_name,project_id,project_name,nodepool,"
               "workload_id,workload_name,";
    }
}

int api_reports_csv_new(FILE *f, enum api_report_group group_by, api_report_csv_t **out)
{
    if (!f || !out) return STRATA_EINVAL;
    api_report_csv_t *c = calloc(1, sizeof *c);
    if (!c) return STRATA_ENOMEM;
    c->f = f;
    c->group_by = group_by;
    if (fputs(api_reports_csv_header(group_by), f) < 0 || fputs(METRIC_COLS, f) < 0) {
        free(c);
        return errno == ENOSPC ? STRATA_ENOSPC : STRATA_EIO;
    }
    *out = c;
    return 0;
}

void api_reports_csv_free(api_report_csv_t *csv) { free(csv); }

int64_t api_reports_csv_rows(const api_report_csv_t *csv) { return csv ? csv->rows : 0; }

/* RFC 4180: quote a field holding a comma, quote or line break. */
static void put_field(FILE *f, const char *s)
{
    fputc(',', f);
    if (!s) return;
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_num(FILE *f, double v)
{
    char buf[STRATA_FMT_DOUBLE_BUFSZ];
    fputc(',', f);
    if (isnan(v)) return;
    if (strata_fmt_double(v, buf, sizeof buf) > 0) fputs(buf, f);
}

int api_reports_csv_row(api_report_csv_t *csv, const api_report_row_t *r)
{
    if (!csv || !r) return STRATA_EINVAL;
    FILE *f = csv->f;
    int64_t days = r->day_ms >= 0 ? r->day_ms / DAY_MS : -((-r->day_ms + DAY_MS - 1) / DAY_MS);
    time_t secs = (time_t)(days * 86400);
    struct tm tm;
    gmtime_r(&secs, &tm);
    fprintf(f, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    switch (csv->group_by) {
    case API_REPORT_GROUP_CLUSTER: put_field(f, r->cluster_id); break;
    case API_REPORT_GROUP_DEPARTMENT:
        put_field(f, r->department_id);
        put_field(f, r->department_name);
        break;
    case API_REPORT_GROUP_PROJECT:
        put_field(f, r->project_id);
        put_field(f, r->project_name);
        break;
    case API_REPORT_GROUP_NODEPOOL: put_field(f, r->nodepool); break;
    default:
        put_field(f, r->cluster_id);
        put_field(f, r->department_id);
        put_field(f, r->department_name);
        put_field(f, r->project_id);
        put_field(f, r->project_name);
        put_field(f, r->nodepool);
        put_field(f, r->workload_id);
        put_field(f, r->workload_name);
    }
    put_num(f, r->gpu_allocation_hours);
    put_num(f, r->gpu_idle_allocated_hours);
    put_num(f, r->gpu_utilization_avg_pct);
    put_num(f, r->gpu_memory_usage_avg_bytes);
    put_num(f, r->cpu_request_core_hours);
    put_num(f, r->cpu_usage_core_hours);
    put_num(f, r->cpu_memory_request_gib_hours);
    put_num(f, r->cpu_memory_usage_gib_hours);
    fprintf(f, ",%lld\n", (long long)r->workloads);
    if (ferror(f)) return errno == ENOSPC ? STRATA_ENOSPC : STRATA_EIO;
    csv->rows++;
    return 0;
}

/* ---- holding rule ---------------------------------------------------------------- */

void api_reports_agg_params_init(api_report_agg_params_t *p)
{
    p->staleness_ms = 5 * 60000;
    p->gpu_idle_after_ms = 5 * 60000;
}

typedef struct piece {
    int64_t t0, t1; /* [t0, t1) */
    double v;
} piece_t;

/* The step function of one series under the holding rule (holding.h).
 * *out is malloc'd. */
static int hold_pieces(const api_report_series_t *s, int64_t staleness, piece_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!s || !s->n) return 0;
    piece_t *p = malloc(s->n * sizeof *p);
    if (!p) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        double v = s->s[i].v;
        if (isnan(v)) continue; /* stale markers end values below, through `next` */
        int64_t t = s->s[i].t, end = api_hold_end(s->s, s->n, i, staleness);
        if (end > t) p[k++] = (piece_t){ t, end, v };
    }
    *out = p;
    *n = k;
    return 0;
}

/* ---- per-workload, per-day accumulation -------------------------------------------- */

typedef api_report_day_totals_t acc_t;

typedef struct window {
    int64_t start, end; /* the report's range */
    int64_t day0;       /* UTC midnight of start's day */
    size_t ndays;
} window_t;

static int64_t floor_day(int64_t t)
{
    return t >= 0 ? t / DAY_MS * DAY_MS : -((-t + DAY_MS - 1) / DAY_MS) * DAY_MS;
}

enum col { C_ALLOC, C_UTIL, C_FB, C_CPU_REQ, C_MEM_REQ, C_MEM_USE };

/* Per-day integrals through api_hold_integral (compensated sums, the same
 * holding rule as the metrics API), starting each day's scan at the first
 * sample that can still hold into it. */
static int gauge_into(const window_t *win, const api_report_series_t *s, int64_t staleness, enum col col,
                      acc_t *acc)
{
    if (!s || !s->n) return 0;
    for (size_t d = 0; d < win->ndays; d++) {
        int64_t a = win->day0 + (int64_t)d * DAY_MS, b = a + DAY_MS;
        if (a < win->start) a = win->start;
        if (b > win->end) b = win->end;
        size_t lo = 0, hi = s->n; /* first sample with t >= a - staleness */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (s->s[mid].t < a - staleness)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == s->n || s->s[lo].t >= b) continue;
        api_hold_integral_t hi_;
        int rc = api_hold_integral(s->s + lo, s->n - lo, a, b, staleness, &hi_);
        if (rc) return rc;
        if (hi_.held_ms <= 0) continue;
        acc_t *x = &acc[d];
        double held = (double)hi_.held_ms;
        x->present = 1;
        switch (col) {
        case C_ALLOC: x->alloc_ms += hi_.value_ms; break;
        case C_UTIL:
            x->util_sum += hi_.value_ms;
            x->util_held += held;
            break;
        case C_FB:
            x->fb_sum += hi_.value_ms * MIB;
            x->fb_held += held;
            break;
        case C_CPU_REQ: x->cpu_req_ms += hi_.value_ms; break;
        case C_MEM_REQ: x->mem_req_ms += hi_.value_ms; break;
        case C_MEM_USE: x->mem_use_ms += hi_.value_ms; break;
        }
    }
    return 0;
}

/* Section 5's increase: each sample in range adds its rise over the previous
 * sample (any age), or its own value after a drop (a restart from 0); the
 * first sample ever has no baseline and adds nothing. */
static void counter_into(const window_t *win, const api_report_series_t *s, acc_t *acc)
{
    int have_prev = 0;
    double prev = 0;
    for (size_t i = 0; s && i < s->n; i++) {
        double v = s->s[i].v;
        int64_t t = s->s[i].t;
        if (isnan(v)) continue;
        if (t >= win->start && t < win->end) {
            acc_t *a = &acc[(size_t)((floor_day(t) - win->day0) / DAY_MS)];
            a->present = 1;
            if (have_prev) a->cpu_inc_s += v >= prev ? v - prev : v;
        }
        prev = v;
        have_prev = 1;
    }
}

/* Sorts a[0..off[nruns]) made of nruns ascending runs (run r = [off[r], off[r+1]))
 * by merging neighbouring runs pairwise, O(n log runs); tmp holds as many
 * values as a.  Returns whichever of a and tmp ends up holding the result.
 * The breakpoints below come as such runs (each step function's pieces are
 * ordered), and a qsort of them was most of a report's CPU time. */
static int64_t *merge_runs(int64_t *a, int64_t *tmp, size_t *off, size_t nruns)
{
    while (nruns > 1) {
        size_t w = 0;
        for (size_t r = 0; r < nruns; r += 2) {
            size_t i = off[r], mid = off[r + 1], j = mid, end = r + 1 < nruns ? off[r + 2] : mid, o = i;
            while (i < mid && j < end) tmp[o++] = a[j] < a[i] ? a[j++] : a[i++];
            while (i < mid) tmp[o++] = a[i++];
            while (j < end) tmp[o++] = a[j++];
            off[w++] = off[r];
        }
        off[w] = off[nruns];
        nruns = w;
        int64_t *x = a;
        a = tmp;
        tmp = x;
    }
    return a;
}

/* Value of the pieces at instant t, advancing *cur (t never decreases). */
static int piece_at(const piece_t *p, size_t n, size_t *cur, int64_t t, double *v)
{
    while (*cur < n && p[*cur].t1 <= t) (*cur)++;
    if (*cur < n && p[*cur].t0 <= t) {
        if (v) *v = p[*cur].v;
        return 1;
    }
    return 0;
}

/* gpu_idle_allocated_hours: allocation x (GPUs idle) / (GPUs reporting) at
 * every instant, where a GPU is idle once its utilization has held 0 without
 * a break for gpu_idle_after.  All three are step functions, so the integral
 * is exact over the segments between their breakpoints. */
static int idle_into(const window_t *win, const api_report_workload_t *w, const api_report_agg_params_t *prm,
                     acc_t *acc)
{
    if (!w->ngpu_util || !w->gpu_allocation.n) return 0;
    size_t G = w->ngpu_util;
    piece_t *alloc = NULL;
    size_t nalloc = 0;
    piece_t **rep = calloc(G, sizeof *rep), **idle = calloc(G, sizeof *idle);
    size_t *nrep = calloc(G, sizeof *nrep), *nidle = calloc(G, sizeof *nidle);
    size_t *crep = calloc(G, sizeof *crep), *cidle = calloc(G, sizeof *cidle);
    int64_t *bp = NULL, *bp2 = NULL;
    size_t *off = NULL;
    int rc = rep && idle && nrep && nidle && crep && cidle ? 0 : STRATA_ENOMEM;
    if (!rc) rc = hold_pieces(&w->gpu_allocation, prm->staleness_ms, &alloc, &nalloc);
    size_t nbp = 2 * nalloc + 2 + win->ndays;
    for (size_t g = 0; !rc && g < G; g++) {
        rc = hold_pieces(&w->gpu_util[g], prm->staleness_ms, &rep[g], &nrep[g]);
        if (rc) break;
        /* idle intervals: runs of contiguous zero pieces, minus their first
         * gpu_idle_after */
        idle[g] = malloc((nrep[g] ? nrep[g] : 1) * sizeof *idle[g]);
        if (!idle[g]) {
            rc = STRATA_ENOMEM;
            break;
        }
        for (size_t i = 0; i < nrep[g];) {
            if (rep[g][i].v != 0) {
                i++;
                continue;
            }
            size_t j = i;
            while (j + 1 < nrep[g] && rep[g][j + 1].v == 0 && rep[g][j + 1].t0 == rep[g][j].t1) j++;
            int64_t a = rep[g][i].t0 + prm->gpu_idle_after_ms, b = rep[g][j].t1;
            if (a < b) idle[g][nidle[g]++] = (piece_t){ a, b, 1 };
            i = j + 1;
        }
        nbp += 2 * nrep[g] + 2 * nidle[g];
    }
    if (!rc && (!(bp = malloc(nbp * sizeof *bp)) || !(bp2 = malloc(nbp * sizeof *bp2)) ||
                !(off = malloc((2 * G + 3) * sizeof *off))))
        rc = STRATA_ENOMEM;
    if (!rc) {
        /* each run ascending: the range with its midnights, then every step
         * function's pieces (ordered and disjoint, so t0, t1, t0, t1 ... ascends) */
        size_t k = 0, nruns = 0;
        off[nruns++] = k;
        bp[k++] = win->start;
        for (size_t d = 1; d < win->ndays; d++) bp[k++] = win->day0 + (int64_t)d * DAY_MS;
        bp[k++] = win->end;
        off[nruns++] = k;
        for (size_t i = 0; i < nalloc; i++) {
            bp[k++] = alloc[i].t0;
            bp[k++] = alloc[i].t1;
        }
        for (size_t g = 0; g < G; g++) {
            off[nruns++] = k;
            for (size_t i = 0; i < nrep[g]; i++) {
                bp[k++] = rep[g][i].t0;
                bp[k++] = rep[g][i].t1;
            }
            off[nruns++] = k;
            for (size_t i = 0; i < nidle[g]; i++) {
                bp[k++] = idle[g][i].t0;
                bp[k++] = idle[g][i].t1;
            }
        }
        off[nruns] = k;
        int64_t *sorted = merge_runs(bp, bp2, off, nruns);
        if (sorted != bp) {
            int64_t *x = bp;
            bp = bp2;
            bp2 = x;
        }
        size_t ca = 0;
        for (size_t i = 0; i + 1 < k; i++) {
            int64_t x = bp[i], y = bp[i + 1];
            if (x == y || x < win->start || y > win->end) continue;
            double a = 0;
            int have = piece_at(alloc, nalloc, &ca, x, &a);
            int r = 0, id = 0;
            for (size_t g = 0; g < G; g++) {
                r += piece_at(rep[g], nrep[g], &crep[g], x, NULL);
                id += piece_at(idle[g], nidle[g], &cidle[g], x, NULL);
            }
            if (!have || !r || !id) continue;
            /* [x, y) lies inside one day: midnights are breakpoints */
            acc[(size_t)((floor_day(x) - win->day0) / DAY_MS)].idle_ms += a * id / r * (double)(y - x);
        }
    }
    free(alloc);
    for (size_t g = 0; g < G; g++) {
        if (rep) free(rep[g]);
        if (idle) free(idle[g]);
    }
    free(rep);
    free(idle);
    free(nrep);
    free(nidle);
    free(crep);
    free(cidle);
    free(bp);
    free(bp2);
    free(off);
    return rc;
}

/* ---- filters and groups ---------------------------------------------------------- */

int api_reports_filter_match(const api_report_request_t *req, const api_report_workload_t *w)
{
    static const char *const fields[3] = { "projectName==", "departmentName==", "clusterId==" };
    const char *vals[3] = { w->project_name, w->department_name, w->cluster_id };
    for (int f = 0; f < 3; f++) {
        size_t fl = strlen(fields[f]);
        int seen = 0, ok = 0;
        for (size_t i = 0; i < req->nfilter; i++) {
            if (strncmp(req->filter_by[i], fields[f], fl)) continue;
            seen = 1;
            if (vals[f] && strcmp(vals[f], req->filter_by[i] + fl) == 0) ok = 1;
        }
        if (seen && !ok) return 0;
    }
    return 1;
}

typedef api_report_entry_t entry_t;

static int scmp(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

static int cmp_group(enum api_report_group g, const api_report_workload_t *x, const api_report_workload_t *y)
{
    int c = 0;
    switch (g) {
    case API_REPORT_GROUP_CLUSTER: return scmp(x->cluster_id, y->cluster_id);
    case API_REPORT_GROUP_DEPARTMENT:
        if ((c = scmp(x->department_id, y->department_id))) return c;
        return scmp(x->department_name, y->department_name);
    case API_REPORT_GROUP_PROJECT:
        if ((c = scmp(x->project_id, y->project_id))) return c;
        return scmp(x->project_name, y->project_name);
    case API_REPORT_GROUP_NODEPOOL: return scmp(x->nodepool, y->nodepool);
    default: {
        const char *a[8] = { x->cluster_id,   x->department_id, x->department_name, x->project_id,
                             x->project_name, x->nodepool,      x->workload_id,     x->workload_name };
        const char *b[8] = { y->cluster_id,   y->department_id, y->department_name, y->project_id,
                             y->project_name, y->nodepool,      y->workload_id,     y->workload_name };
        for (int i = 0; i < 8; i++)
            if ((c = scmp(a[i], b[i]))) return c;
        return 0;
    }
    }
}

/* Day, then group columns, then workload id (to count distinct workloads);
 * pg points at the report's groupBy (qsort_r's context). */
static int cmp_entries(const void *pa, const void *pb, void *pg)
{
    const entry_t *a = pa, *b = pb;
    if (a->day_ms != b->day_ms) return a->day_ms < b->day_ms ? -1 : 1;
    int c = cmp_group(*(const enum api_report_group *)pg, a->w, b->w);
    if (c) return c;
    return scmp(a->w->workload_id, b->w->workload_id);
}

int api_reports_workload_days(const api_report_request_t *req, const api_report_workload_t *x,
                              const api_report_agg_params_t *prm, api_report_day_totals_t *acc, size_t ndays)
{
    if (!req || !x || !acc || req->start_ms >= req->end_ms) return STRATA_EINVAL;
    api_report_agg_params_t defaults;
    api_reports_agg_params_init(&defaults);
    if (!prm) prm = &defaults;
    window_t win = { req->start_ms, req->end_ms, floor_day(req->start_ms), 0 };
    int64_t nd = (floor_day(req->end_ms - 1) - win.day0) / DAY_MS + 1;
    if (nd > MAX_DAYS || (size_t)nd != ndays) return STRATA_EINVAL;
    win.ndays = ndays;
    memset(acc, 0, ndays * sizeof *acc);
    int64_t st = prm->staleness_ms;
    int rc = gauge_into(&win, &x->gpu_allocation, st, C_ALLOC, acc);
    for (size_t i = 0; !rc && i < x->ngpu_util; i++) rc = gauge_into(&win, &x->gpu_util[i], st, C_UTIL, acc);
    for (size_t i = 0; !rc && i < x->ngpu_fb_used; i++)
        rc = gauge_into(&win, &x->gpu_fb_used[i], st, C_FB, acc);
    for (size_t i = 0; !rc && i < x->ncpu_request; i++)
        rc = gauge_into(&win, &x->cpu_request[i], st, C_CPU_REQ, acc);
    for (size_t i = 0; !rc && i < x->nmem_request; i++)
        rc = gauge_into(&win, &x->mem_request[i], st, C_MEM_REQ, acc);
    for (size_t i = 0; !rc && i < x->nmem_usage; i++)
        rc = gauge_into(&win, &x->mem_usage[i], st, C_MEM_USE, acc);
    for (size_t i = 0; !rc && i < x->ncpu_usage; i++) counter_into(&win, &x->cpu_usage[i], acc);
    if (!rc) rc = idle_into(&win, x, prm, acc);
    return rc;
}

int api_reports_group(const api_report_request_t *req, api_report_entry_t *ent, size_t nent,
                      strata_arena_t *arena, api_report_row_t **rows, size_t *nrows)
{
    if (!req || (!ent && nent) || !arena || !rows || !nrows) return STRATA_EINVAL;
    *rows = NULL;
    *nrows = 0;
    if (!nent) return 0;
    enum api_report_group g = req->group_by;
    qsort_r(ent, nent, sizeof *ent, cmp_entries, &g);
    api_report_row_t *out = strata_arena_calloc(arena, nent, sizeof *out);
    if (!out) return STRATA_ENOMEM;
    size_t nr = 0;
    for (size_t i = 0; i < nent;) {
        size_t j = i;
        acc_t sum = { 0 };
        int64_t distinct = 0;
        for (; j < nent && ent[j].day_ms == ent[i].day_ms && cmp_group(g, ent[j].w, ent[i].w) == 0; j++) {
            const acc_t *a = &ent[j].totals;
            sum.alloc_ms += a->alloc_ms;
            sum.idle_ms += a->idle_ms;
            sum.util_sum += a->util_sum;
            sum.util_held += a->util_held;
            sum.fb_sum += a->fb_sum;
            sum.fb_held += a->fb_held;
            sum.cpu_req_ms += a->cpu_req_ms;
            sum.cpu_inc_s += a->cpu_inc_s;
            sum.mem_req_ms += a->mem_req_ms;
            sum.mem_use_ms += a->mem_use_ms;
            if (j == i || scmp(ent[j].w->workload_id, ent[j - 1].w->workload_id)) distinct++;
        }
        const api_report_workload_t *x = ent[i].w;
        api_report_row_t *r = &out[nr++];
        r->day_ms = ent[i].day_ms;
        r->cluster_id = x->cluster_id;
        r->department_id = x->department_id;
        r->department_name = x->department_name;
        r->project_id = x->project_id;
        r->project_name = x->project_name;
        r->nodepool = x->nodepool;
        r->workload_id = x->workload_id;
        r->workload_name = x->workload_name;
        r->gpu_allocation_hours = sum.alloc_ms / HOUR_MS;
        r->gpu_idle_allocated_hours = sum.idle_ms / HOUR_MS;
        r->gpu_utilization_avg_pct = sum.util_held > 0 ? sum.util_sum / sum.util_held : NAN;
        r->gpu_memory_usage_avg_bytes = sum.fb_held > 0 ? sum.fb_sum / sum.fb_held : NAN;
        r->cpu_request_core_hours = sum.cpu_req_ms / HOUR_MS;
        r->cpu_usage_core_hours = sum.cpu_inc_s / 3600.0;
        r->cpu_memory_request_gib_hours = sum.mem_req_ms / GIB / HOUR_MS;
        r->cpu_memory_usage_gib_hours = sum.mem_use_ms / GIB / HOUR_MS;
        r->workloads = distinct;
        i = j;
    }
    *rows = out;
    *nrows = nr;
    return 0;
}

int api_reports_aggregate(const api_report_request_t *req, const api_report_workload_t *w, size_t nw,
                          const api_report_agg_params_t *prm, const volatile int *cancelled,
                          strata_arena_t *arena, api_report_row_t **rows, size_t *nrows)
{
    if (!req || (!w && nw) || !arena || !rows || !nrows || req->start_ms >= req->end_ms) return STRATA_EINVAL;
    *rows = NULL;
    *nrows = 0;
    int64_t day0 = floor_day(req->start_ms);
    int64_t nd = (floor_day(req->end_ms - 1) - day0) / DAY_MS + 1;
    if (nd > MAX_DAYS) return STRATA_ELIMIT;
    size_t ndays = (size_t)nd;
    acc_t *acc = malloc(ndays * sizeof *acc);
    entry_t *ent = NULL;
    size_t nent = 0, cap = 0;
    int rc = acc ? 0 : STRATA_ENOMEM;
    for (size_t k = 0; !rc && k < nw; k++) {
        if (cancelled && *cancelled) {
            rc = STRATA_ECLOSED;
            break;
        }
        if (!api_reports_filter_match(req, &w[k])) continue;
        rc = api_reports_workload_days(req, &w[k], prm, acc, ndays);
        for (size_t d = 0; !rc && d < ndays; d++) {
            if (!acc[d].present) continue;
            if (nent == cap) {
                size_t nc = cap ? cap * 2 : 256;
                entry_t *ne = realloc(ent, nc * sizeof *ne);
                if (!ne) {
                    rc = STRATA_ENOMEM;
                    break;
                }
                ent = ne;
                cap = nc;
            }
            ent[nent++] = (entry_t){ day0 + (int64_t)d * DAY_MS, &w[k], acc[d] };
        }
    }
    free(acc);
    if (!rc) rc = api_reports_group(req, ent, nent, arena, rows, nrows);
    free(ent);
    return rc;
}
