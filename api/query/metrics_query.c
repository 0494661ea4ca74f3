/*
 * metrics_query.c: the workload metrics query layer (metrics_query.h):
 * the metric catalog of DESIGN section 4, parameter validation, the
 * workload join, downsampling through api/downsample.h, and JSON/CSV
 * rendering of MetricsCompositeResponse.  docs/metrics.md explains the
 * choices; tests/test_metrics_query.c checks them against a real tsdb.
 */
#include "metrics_query.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "downsample.h"
#include "strata_buf.h"
#include "strata_fmt.h"
#include "strata_log.h"
#include "strata_time.h"

/* ---- the catalog ------------------------------------------------------------------ */

enum kind {
    K_SERIES, /* measurements: one combined series, or one per GPU */
    K_HIST,   /* histogram: cumulative increase per le */
    K_PCT,    /* histogram: p50/p90/p99 */
};

#define MAX_COMP 2 /* components summed per step (NVLINK TX + RX) */
#define MAX_ALT 2  /* alternative names of one component (NIM and vllm:) */
#define MAX_COND 2

typedef struct catalog {
    const char *type;
    enum kind kind;
    /* src[c][a]: component c, alternative name a (NULL-terminated).  The
     * first alternative with data for the workload is used, so a server that
     * exports both names is not counted twice. */
    const char *src[MAX_COMP][MAX_ALT];
    tsdb_matcher_t cond[MAX_COND];
    size_t ncond;
    enum api_agg agg;
    enum api_combine combine; /* API_COMBINE_NONE: per GPU */
    double scale;             /* unit transform applied to each output value */
} catalog_t;

#define NOT_EMPTY_CONTAINER                                                      \
    { { TSDB_MATCH_NEQ, "container", "" }, { TSDB_MATCH_NEQ, "container", "POD" } }, 2
#define RESOURCE(r) { { TSDB_MATCH_EQ, "resource", r } }, 1
#define NOCOND { { 0, NULL, NULL } }, 0
#define ONE(n) { { n, NULL } }
#define NIM(n) { { n, "vllm:" n } }

static const catalog_t CATALOG[API_METRIC_COUNT] = {
    [API_METRIC_GPU_UTILIZATION] = { "GPU_UTILIZATION", K_SERIES, ONE("DCGM_FI_DEV_GPU_UTIL"),
        NOCOND, API_AGG_AVG, API_COMBINE_NONE, 1 },
    [API_METRIC_GPU_MEMORY_USAGE_BYTES] = { "GPU_MEMORY_USAGE_BYTES", K_SERIES,
        ONE("DCGM_FI_DEV_FB_USED"), NOCOND, API_AGG_AVG, API_COMBINE_NONE, 1048576 },
    [API_METRIC_GPU_MEMORY_REQUEST_BYTES] = { "GPU_MEMORY_REQUEST_BYTES", K_SERIES,
        ONE("runai_workload_gpu_memory_request_bytes"), NOCOND, API_AGG_LAST, API_COMBINE_SUM, 1 },
    [API_METRIC_CPU_USAGE_CORES] = { "CPU_USAGE_CORES", K_SERIES,
        ONE("container_cpu_usage_seconds_total"), NOT_EMPTY_CONTAINER, API_AGG_RATE,
        API_COMBINE_SUM, 1 },
    [API_METRIC_CPU_REQUEST_CORES] = { "CPU_REQUEST_CORES", K_SERIES,
        ONE("kube_pod_container_resource_requests"), RESOURCE("cpu"), API_AGG_LAST,
        API_COMBINE_SUM, 1 },
    [API_METRIC_CPU_LIMIT_CORES] = { "CPU_LIMIT_CORES", K_SERIES,
        ONE("kube_pod_container_resource_limits"), RESOURCE("cpu"), API_AGG_LAST,
        API_COMBINE_SUM, 1 },
    [API_METRIC_CPU_MEMORY_USAGE_BYTES] = { "CPU_MEMORY_USAGE_BYTES", K_SERIES,
        ONE("container_memory_working_set_bytes"), NOT_EMPTY_CONTAINER, API_AGG_AVG,
        API_COMBINE_SUM, 1 },
    [API_METRIC_CPU_MEMORY_REQUEST_BYTES] = { "CPU_MEMORY_REQUEST_BYTES", K_SERIES,
        ONE("kube_pod_container_resource_requests"), RESOURCE("memory"), API_AGG_LAST,
        API_COMBINE_SUM, 1 },
    [API_METRIC_CPU_MEMORY_LIMIT_BYTES] = { "CPU_MEMORY_LIMIT_BYTES", K_SERIES,
        ONE("kube_pod_container_resource_limits"), RESOURCE("memory"), API_AGG_LAST,
        API_COMBINE_SUM, 1 },
    [API_METRIC_POD_COUNT] = { "POD_COUNT", K_SERIES, ONE("runai_pod_info"), NOCOND,
        API_AGG_PRESENT, API_COMBINE_COUNT, 1 },
    [API_METRIC_RUNNING_POD_COUNT] = { "RUNNING_POD_COUNT", K_SERIES,
        ONE("kube_pod_status_phase"), { { TSDB_MATCH_EQ, "phase", "Running" } }, 1,
        API_AGG_LAST, API_COMBINE_SUM, 1 },
    [API_METRIC_GPU_ALLOCATION] = { "GPU_ALLOCATION", K_SERIES,
        ONE("runai_workload_gpu_allocation"), NOCOND, API_AGG_LAST, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_NUM_REQUESTS_RUNNING] = { "NIM_NUM_REQUESTS_RUNNING", K_SERIES,
        NIM("num_requests_running"), NOCOND, API_AGG_AVG, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_NUM_REQUESTS_WAITING] = { "NIM_NUM_REQUESTS_WAITING", K_SERIES,
        NIM("num_requests_waiting"), NOCOND, API_AGG_AVG, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_NUM_REQUEST_MAX] = { "NIM_NUM_REQUEST_MAX", K_SERIES,
        NIM("num_request_max"), NOCOND, API_AGG_MAX, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_REQUEST_SUCCESS_TOTAL] = { "NIM_REQUEST_SUCCESS_TOTAL", K_SERIES,
        NIM("request_success_total"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_REQUEST_FAILURE_TOTAL] = { "NIM_REQUEST_FAILURE_TOTAL", K_SERIES,
        NIM("request_failure_total"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_GPU_CACHE_USAGE_PERC] = { "NIM_GPU_CACHE_USAGE_PERC", K_SERIES,
        NIM("gpu_cache_usage_perc"), NOCOND, API_AGG_AVG, API_COMBINE_AVG, 1 },
    [API_METRIC_NIM_TIME_TO_FIRST_TOKEN_SECONDS] = { "NIM_TIME_TO_FIRST_TOKEN_SECONDS", K_HIST,
        NIM("time_to_first_token_seconds_bucket"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_E2E_REQUEST_LATENCY_SECONDS] = { "NIM_E2E_REQUEST_LATENCY_SECONDS", K_HIST,
        NIM("e2e_request_latency_seconds_bucket"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES] = {
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES", K_PCT,
        NIM("time_to_first_token_seconds_bucket"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1 },
    [API_METRIC_NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES] = {
        "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES", K_PCT,
        NIM("e2e_request_latency_seconds_bucket"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1 },
    [API_METRIC_NVLINK_BANDWIDTH_TOTAL] = { "NVLINK_BANDWIDTH_TOTAL", K_SERIES,
        { { "DCGM_FI_PROF_NVLINK_TX_BYTES", NULL }, { "DCGM_FI_PROF_NVLINK_RX_BYTES", NULL } },
        NOCOND, API_AGG_AVG, API_COMBINE_NONE, 1 },
};

static const double QUANTILES[3] = { 0.5, 0.9, 0.99 };
static const char *const QUANTILE_KEYS[3] = { "p50", "p90", "p99" };

const char *api_metrics_type_name(enum api_metric_type t)
{
    return (unsigned)t < API_METRIC_COUNT ? CATALOG[t].type : NULL;
}

int api_metrics_type_parse(const char *s, enum api_metric_type *out)
{
    if (!s || !out) return STRATA_EINVAL;
    for (int i = 0; i < API_METRIC_COUNT; i++)
        if (strcmp(s, CATALOG[i].type) == 0) {
            *out = (enum api_metric_type)i;
            return 0;
        }
    return STRATA_EINVAL;
}

void api_metrics_options_init(api_metrics_options_t *o)
{
    o->max_points = 11000;
    o->staleness_ms = 5 * 60 * 1000;
    o->max_range_ms = 0;
    o->max_samples = 50000000;
}

/* ---- parameters --------------------------------------------------------------------- */

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t cap, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return STRATA_EINVAL;
}

/* A duration as the flags spell it ("30d", "1h30m", "90s", "250ms"). */
static void fmt_duration(int64_t ms, char *buf, size_t cap)
{
    static const struct { const char *u; int64_t ms; } U[] = {
        { "d", 86400000 }, { "h", 3600000 }, { "m", 60000 }, { "s", 1000 }, { "ms", 1 } };
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof U / sizeof U[0] && off < cap; i++) {
        if (ms < U[i].ms) continue;
        int w = snprintf(buf + off, cap - off, "%" PRId64 "%s", ms / U[i].ms, U[i].u);
        if (w < 0) break;
        off += (size_t)w;
        ms %= U[i].ms;
    }
    if (!buf[0]) snprintf(buf, cap, "0s");
}

static int parse_time(const char *name, const char *s, int64_t *out, char *err, size_t cap)
{
    if (!s) return fail(err, cap, "%s is required", name);
    if (strata_time_parse_rfc3339(s, out))
        return fail(err, cap, "%s: invalid date-time \"%.64s\" (want RFC 3339, e.g. "
                    "2024-12-20T14:30:00Z)", name, s);
    return 0;
}

int api_metrics_parse(const char *const *mt, size_t nmt, const char *start, const char *end,
                      const char *nsamples, const api_metrics_options_t *opts,
                      api_metrics_request_t *req, char *err, size_t cap)
{
    if (!req || (nmt && !mt)) return STRATA_EINVAL;
    if (err && cap) err[0] = 0;
    memset(req, 0, sizeof *req);
    size_t given = 0;
    for (size_t i = 0; i < nmt; i++) {
        const char *p = mt[i];
        if (!p) continue;
        for (;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char item[64];
            if (len == 0) return fail(err, cap, "metricType: empty value");
            if (len >= sizeof item)
                return fail(err, cap, "metricType: invalid value \"%.48s...\"", p);
            memcpy(item, p, len);
            item[len] = 0;
            enum api_metric_type t;
            if (api_metrics_type_parse(item, &t))
                return fail(err, cap, "metricType: invalid value \"%s\"", item);
            if (++given > API_METRICS_MAX_TYPES) {
                /* count the rest for the message */
                while (comma) { given++; comma = strchr(comma + 1, ','); }
                for (size_t j = i + 1; j < nmt; j++) {
                    if (!mt[j]) continue;
                    given++;
                    for (const char *c = strchr(mt[j], ','); c; c = strchr(c + 1, ',')) given++;
                }
                return fail(err, cap, "metricType: at most %d values allowed, got %zu",
                            API_METRICS_MAX_TYPES, given);
            }
            size_t k = 0;
            while (k < req->ntypes && req->types[k] != t) k++;
            if (k == req->ntypes) req->types[req->ntypes++] = t;
            if (!comma) break;
            p = comma + 1;
        }
    }
    if (given == 0) return fail(err, cap, "metricType is required");
    int rc = parse_time("start", start, &req->start_ms, err, cap);
    if (!rc) rc = parse_time("end", end, &req->end_ms, err, cap);
    if (rc) return rc;
    if (req->end_ms <= req->start_ms) return fail(err, cap, "end must be after start");
    req->samples = API_METRICS_DEFAULT_SAMPLES;
    if (nsamples) {
        const char *p = nsamples;
        int neg = 0, digits = 0;
        uint64_t v = 0;
        if (*p == '+' || *p == '-') neg = *p++ == '-';
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (v <= 100000) v = v * 10 + (uint64_t)(*p - '0');
        if (!digits || *p || (neg && v) || v > API_METRICS_MAX_SAMPLES)
            return fail(err, cap, "numberOfSamples: must be an integer from 0 to %d, got \"%.32s\"",
                        API_METRICS_MAX_SAMPLES, nsamples);
        req->samples = (uint32_t)v;
    }
    int64_t max_range = opts ? opts->max_range_ms : 0;
    if (max_range > 0 && req->end_ms - req->start_ms > max_range) {
        char a[48], b[48];
        fmt_duration(req->end_ms - req->start_ms, a, sizeof a);
        fmt_duration(max_range, b, sizeof b);
        return fail(err, cap, "end - start is %s, more than the maximum range %s", a, b);
    }
    return 0;
}

/* ---- the response ------------------------------------------------------------------- */

typedef struct measurement {
    int type;
    const char *gpu, *node;  /* per-GPU labels, else NULL */
    api_point_t *pts;
    size_t n;
    const char *error;       /* the type failed: values null, labels {"error"} */
} measurement_t;

typedef struct hseries {
    int type;
    api_hist_t *h;           /* K_HIST: NULL when no data */
    int64_t *qt;             /* K_PCT: steps with a quantile */
    double (*qv)[3];
    size_t nq;
} hseries_t;

struct api_metrics_response {
    measurement_t *m;
    size_t nm, mcap;
    hseries_t *h;
    size_t nh;
    int partial;
    uint64_t points_read;
};

int api_metrics_response_partial(const api_metrics_response_t *r) { return r ? r->partial : 0; }
uint64_t api_metrics_response_points_read(const api_metrics_response_t *r)
{
    return r ? r->points_read : 0;
}

/* ---- the query ---------------------------------------------------------------------- */

typedef struct qpod {
    const char *ns, *pod, *node;
    int64_t first, end;  /* active window [first, end) */
} qpod_t;

typedef struct gpu_group {
    const char *gpu, *node;
    api_combiner_t *comp[MAX_COMP];
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
    const catalog_t *c;
    api_buckets_t b;
    int64_t res;            /* 0 raw, else rollup resolution */
    int64_t mint, maxt;     /* select range */
    uint64_t points;        /* read by this type */
    int cap_exceeded;       /* native max_points: the whole request fails */
    char err[160];          /* this type's failure */

    /* pass 1 (native): the smallest scrape interval */
    int64_t min_interval;
    int any_series;

    /* pass 2: aggregation */
    int pass2;
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
                     q->c->type, q->tenant, q->wid, q->err);
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

/* One selected series, kept for the workload: pass 1 measures its scrape
 * interval, pass 2 downsamples it into the type's accumulators. */
static int on_series(qctx_t *q, int comp, const tsdb_label_t *l, size_t nl, const qpod_t *pod,
                     const tsdb_sample_t *s, size_t ns, const tsdb_rollup_point_t *r, size_t nr)
{
    q->any_series = 1;
    if (!q->pass2) {
        int64_t iv = api_scrape_interval(s, ns);
        if (iv > 0 && (q->min_interval == 0 || iv < q->min_interval)) q->min_interval = iv;
        return 0;
    }
    const catalog_t *c = q->c;
    int n = q->res ? api_downsample_rollups(&q->b, c->agg, q->res, r, nr, q->scratch, q->scap)
                   : api_downsample(&q->b, c->agg, s, ns, q->scratch, q->scap);
    if (n == STRATA_ELIMIT && q->b.native) {
        q->cap_exceeded = 1;
        return n;
    }
    if (n < 0) return type_fail(q, n, "downsampling");
    int rc = 0;
    if (c->kind != K_SERIES) {
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

/* Runs one select and feeds its series to on_series.  pod != NULL: the series
 * were matched by (namespace, pod), keep only what lies in its window.
 * *kept counts series with data in the query range. */
static int run_select(qctx_t *q, int comp, const tsdb_matcher_t *m, size_t nm, const qpod_t *pod,
                      int *kept)
{
    int64_t mint = q->mint, maxt = q->maxt;
    if (pod && (pod->end <= mint || pod->first > maxt)) return 0;  /* not active in range */
    if (pod && !q->res) {
        /* raw reads: let the store cut the window [first, end) */
        if (pod->first > mint) mint = pod->first;
        if (pod->end - 1 < maxt) maxt = pod->end - 1;
        if (maxt < mint || maxt < q->req->start_ms) return 0;
    }
    api_read_set_t *set = NULL;
    int rc = api_read_select(q->src, q->tenant, 0, m, nm, mint, maxt, &set);
    if (rc) return type_fail(q, rc, "select");
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const tsdb_sample_t *s = NULL;
        const tsdb_rollup_point_t *r = NULL;
        size_t ns = 0, nr = 0;
        if (q->res) {
            if ((rc = api_read_set_rollups(set, q->res, &r, &nr))) { type_fail(q, rc, "rollups"); break; }
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
            if ((rc = api_read_set_samples(set, &s, &ns))) { type_fail(q, rc, "samples"); break; }
            q->points += ns;
            /* samples before start are only a counter's baseline */
            if (ns == 0 || s[ns - 1].t < q->req->start_ms) continue;
        }
        if (q->opt->max_samples && q->points > q->opt->max_samples) {
            snprintf(q->err, sizeof q->err, "sample limit: more than %" PRIu64
                     " points to read", q->opt->max_samples);
            strata_warn("metrics query: sample limit", "type=%s tenant=%" PRId32 " workload=%s limit=%" PRIu64,
                        q->c->type, q->tenant, q->wid, q->opt->max_samples);
            rc = STRATA_ELIMIT;
            break;
        }
        (*kept)++;
        if ((rc = on_series(q, comp, l, nl, pod, s, ns, r, nr))) break;
    }
    api_read_set_free(set);
    if (rc < 0 && !q->err[0] && !q->cap_exceeded) type_fail(q, rc, "select");
    return rc < 0 ? rc : 0;
}

/* Every series of the type that belongs to the workload, component by
 * component; for each component the first alternative name with data wins. */
static int scan(qctx_t *q)
{
    const catalog_t *c = q->c;
    for (int comp = 0; comp < MAX_COMP && c->src[comp][0]; comp++) {
        for (int alt = 0; alt < MAX_ALT && c->src[comp][alt]; alt++) {
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

static int add_measurement(api_metrics_response_t *resp, strata_arena_t *arena,
                           const measurement_t *m)
{
    if (arena_grow(arena, (void **)&resp->m, &resp->mcap, resp->nm, sizeof *resp->m))
        return STRATA_ENOMEM;
    resp->m[resp->nm++] = *m;
    return 0;
}

/* Combined output of one accumulator, scaled, copied into the arena. */
static int take_points(qctx_t *q, const api_combiner_t *cb, double scale, api_point_t **out,
                       size_t *n)
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
    const catalog_t *c = q->c;
    int rc;
    if (c->kind != K_SERIES) {
        hseries_t hs = { .type = type };
        if (q->nh) {
            if ((rc = api_hist_build(q->arena, q->hin, q->nh, &hs.h))) return type_fail(q, rc, "histogram");
            if (q->b.native && api_hist_nsteps(hs.h) > q->opt->max_points) {
                q->cap_exceeded = 1;
                return STRATA_ELIMIT;
            }
            if (c->kind == K_PCT) {
                size_t ns = api_hist_nsteps(hs.h);
                hs.qt = strata_arena_alloc(q->arena, (ns ? ns : 1) * sizeof *hs.qt);
                hs.qv = strata_arena_alloc(q->arena, (ns ? ns : 1) * sizeof *hs.qv);
                if (!hs.qt || !hs.qv) return type_fail(q, STRATA_ENOMEM, "histogram");
                for (size_t i = 0; i < ns; i++) {
                    int ok = 1;
                    for (int k = 0; k < 3 && ok; k++)
                        ok = api_hist_quantile(hs.h, i, QUANTILES[k], &hs.qv[hs.nq][k]) == 0;
                    if (!ok) continue;  /* total count 0 (or no +Inf bucket): omitted */
                    hs.qt[hs.nq++] = api_hist_step_time(hs.h, i);
                }
            }
        }
        resp->h[resp->nh++] = hs;
        return 0;
    }
    if (c->combine != API_COMBINE_NONE) {
        measurement_t m = { .type = type };
        if ((rc = take_points(q, q->comb, c->scale, &m.pts, &m.n))) return q->cap_exceeded ? rc : type_fail(q, rc, "combining series");
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
        for (int k = 0; k < MAX_COMP; k++) ncomp += G->comp[k] != NULL;
        const api_combiner_t *src = NULL;
        if (ncomp == 1) {
            for (int k = 0; k < MAX_COMP; k++) if (G->comp[k]) src = G->comp[k];
        } else {
            /* NVLINK: TX + RX at each step */
            api_combiner_t *sum;
            if ((rc = api_combiner_new(q->arena, API_COMBINE_SUM, &sum))) return type_fail(q, rc, "per-GPU series");
            for (int k = 0; k < MAX_COMP; k++) {
                api_point_t *p;
                size_t n;
                if (!G->comp[k]) continue;
                if ((rc = take_points(q, G->comp[k], 1, &p, &n))) return q->cap_exceeded ? rc : type_fail(q, rc, "per-GPU series");
                if ((rc = api_combiner_add(sum, p, n))) return type_fail(q, rc, "per-GPU series");
            }
            src = sum;
        }
        if ((rc = take_points(q, src, c->scale, &m.pts, &m.n))) return q->cap_exceeded ? rc : type_fail(q, rc, "per-GPU series");
        if (add_measurement(resp, q->arena, &m)) return type_fail(q, STRATA_ENOMEM, "response");
    }
    return 0;
}

/* Lays out the buckets and reads one metric type. */
static int run_type(qctx_t *q, api_metrics_response_t *resp, int type)
{
    const catalog_t *c = q->c = &CATALOG[type];
    const api_metrics_request_t *req = q->req;
    q->points = 0;
    q->err[0] = 0;
    q->min_interval = 0;
    q->any_series = 0;
    q->comb = NULL;
    q->groups = NULL; q->ng = q->gcap = 0;
    q->hin = NULL; q->nh = q->hcap = 0;
    /* counters need the sample before start as bucket 1's baseline */
    int64_t lookback = c->agg == API_AGG_INCREASE || c->agg == API_AGG_RATE ? q->opt->staleness_ms : 0;
    size_t nm0 = resp->nm, nh0 = resp->nh;
    int rc = 0;
    if (req->samples == 0) {
        /* native: pass 1 finds the scrape interval over raw samples */
        q->pass2 = 0;
        q->res = 0;
        q->mint = req->start_ms - lookback;
        q->maxt = req->end_ms;
        if ((rc = scan(q))) goto out;
        if (!q->any_series) goto finish;
        if ((rc = api_buckets_native(&q->b, req->start_ms, req->end_ms, q->min_interval,
                                     q->opt->max_points))) { type_fail(q, rc, "layout"); goto out; }
    } else {
        /* buckets under 1 ms are meaningless: at most one bucket per ms */
        int64_t d = req->end_ms - req->start_ms;
        uint32_t n = (int64_t)req->samples > d ? (uint32_t)d : req->samples;
        if ((rc = api_buckets_init(&q->b, req->start_ms, req->end_ms, n))) { type_fail(q, rc, "layout"); goto out; }
    }
    q->res = api_rollup_choose(&q->b);
    if (q->res) {
        int64_t tmin, tmax;
        if ((rc = api_rollup_range(&q->b, q->res, &tmin, &tmax))) { type_fail(q, rc, "layout"); goto out; }
        q->mint = req->start_ms;
        q->maxt = tmax;
    } else {
        q->mint = req->start_ms - lookback;
        q->maxt = req->end_ms;
    }
    q->pass2 = 1;
    q->scap = api_buckets_capacity(&q->b);
    q->scratch = strata_arena_alloc(q->arena, q->scap * sizeof *q->scratch);
    if (!q->scratch) { rc = type_fail(q, STRATA_ENOMEM, "buffers"); goto out; }
    if (c->kind == K_SERIES && c->combine != API_COMBINE_NONE &&
        (rc = api_combiner_new(q->arena, c->combine, &q->comb))) { type_fail(q, rc, "buffers"); goto out; }
    if ((rc = scan(q))) goto out;
finish:
    if (q->err[0] == 0 && !q->any_series) {
        /* no data: an empty measurement / histogram */
        if (c->kind != K_SERIES) {
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
    if (q->cap_exceeded) return STRATA_ELIMIT;
    if (rc || q->err[0]) {
        resp->nm = nm0;  /* drop what the type had output before it failed */
        resp->nh = nh0;
        measurement_t m = { .type = type, .error = strata_arena_strdup(q->arena, q->err[0] ? q->err : strata_strerror(rc)) };
        if (!m.error || add_measurement(resp, q->arena, &m)) return STRATA_ENOMEM;
        resp->partial = 1;
    }
    return 0;
}

int api_metrics_query(const api_read_source_t *src, int32_t tenant_id, const char *workload_id,
                      const api_metrics_pod_t *pods, size_t npods,
                      const api_metrics_request_t *req, const api_metrics_options_t *opts,
                      strata_arena_t *arena, api_metrics_response_t **out, char *err, size_t cap)
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
    qctx_t q = { .src = src, .arena = arena, .opt = opts, .req = req, .tenant = tenant_id,
                 .wid = workload_id, .npods = npods };
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
                snprintf(err, cap, "numberOfSamples=0: %s has more than %zu points per series "
                         "in this range; use numberOfSamples 1..%d or a shorter range",
                         CATALOG[req->types[i]].type, opts->max_points, API_METRICS_MAX_SAMPLES);
            return rc;
        }
        if (rc) return rc;
    }
    *out = resp;
    return 0;
}

/* ---- rendering ---------------------------------------------------------------------- */

/* The body as the caller wants it: in the arena, NUL-terminated. */
static int buf_finish(strata_buf_t *b, char **out, size_t *len)
{
    strata_buf_put(b, "", 0);  /* an empty body is still a string */
    if (b->failed) return STRATA_ENOMEM;
    *out = b->data;
    if (len) *len = b->len;
    return 0;
}

int api_metrics_render_json(const api_metrics_response_t *r, strata_arena_t *arena, char **out,
                            size_t *len)
{
    if (!r || !arena || !out) return STRATA_EINVAL;
    /* Written straight into the arena, sized by a generous guess (~55-60
     * bytes per point; 2 MB answers are common): no realloc chain and no
     * final copy. */
    size_t npts = 0;
    for (size_t i = 0; i < r->nm; i++) npts += r->m[i].n;
    size_t guess = 4096 + npts * 72 + r->nh * 4096;
    strata_buf_t b;
    strata_buf_init(&b, arena, guess);
    strata_buf_puts(&b, "{\"measurements\":[");
    for (size_t i = 0; i < r->nm; i++) {
        const measurement_t *m = &r->m[i];
        if (i) strata_buf_puts(&b, ",");
        strata_buf_puts(&b, "{\"type\":");
        strata_buf_json_string(&b, CATALOG[m->type].type);
        if (m->error) {
            strata_buf_puts(&b, ",\"labels\":{\"error\":");
            strata_buf_json_string(&b, m->error);
            strata_buf_puts(&b, "},\"values\":null}");
            continue;
        }
        if (m->gpu) {
            strata_buf_puts(&b, ",\"labels\":{\"gpu\":");
            strata_buf_json_string(&b, m->gpu);
            strata_buf_puts(&b, ",\"node\":");
            strata_buf_json_string(&b, m->node);
            strata_buf_puts(&b, "}");
        }
        strata_buf_puts(&b, ",\"values\":[");
        for (size_t k = 0; k < m->n; k++) {
            strata_buf_puts(&b, k ? ",{\"value\":\"" : "{\"value\":\"");
            strata_buf_double(&b, m->pts[k].v);
            strata_buf_puts(&b, "\",\"timestamp\":\"");
            strata_buf_time_rfc3339(&b, m->pts[k].t);
            strata_buf_puts(&b, "\"}");
        }
        strata_buf_puts(&b, "]}");
    }
    strata_buf_puts(&b, "]");
    if (r->nh) {
        strata_buf_puts(&b, ",\"histogram\":[");
        for (size_t i = 0; i < r->nh; i++) {
            const hseries_t *h = &r->h[i];
            if (i) strata_buf_puts(&b, ",");
            strata_buf_puts(&b, "{\"type\":");
            strata_buf_json_string(&b, CATALOG[h->type].type);
            strata_buf_puts(&b, ",\"values\":[");
            if (CATALOG[h->type].kind == K_PCT) {
                for (size_t s = 0; s < h->nq; s++) {
                    strata_buf_puts(&b, s ? ",{\"timestamp\":\"" : "{\"timestamp\":\"");
                    strata_buf_time_rfc3339(&b, h->qt[s]);
                    strata_buf_puts(&b, "\",\"data\":{");
                    for (int k = 0; k < 3; k++) {
                        strata_buf_puts(&b, k ? ",\"" : "\"");
                        strata_buf_puts(&b, QUANTILE_KEYS[k]);
                        strata_buf_puts(&b, "\":\"");
                        strata_buf_double(&b, h->qv[s][k]);
                        strata_buf_puts(&b, "\"");
                    }
                    strata_buf_puts(&b, "}}");
                }
            } else if (h->h) {
                size_t ns = api_hist_nsteps(h->h), nl = api_hist_nles(h->h);
                for (size_t s = 0; s < ns; s++) {
                    strata_buf_puts(&b, s ? ",{\"timestamp\":\"" : "{\"timestamp\":\"");
                    strata_buf_time_rfc3339(&b, api_hist_step_time(h->h, s));
                    strata_buf_puts(&b, "\",\"data\":{");
                    for (size_t j = 0; j < nl; j++) {
                        if (j) strata_buf_puts(&b, ",");
                        strata_buf_json_string(&b, api_hist_le(h->h, j));
                        strata_buf_puts(&b, ":\"");
                        strata_buf_double(&b, api_hist_count(h->h, s, j));
                        strata_buf_puts(&b, "\"");
                    }
                    strata_buf_puts(&b, "}}");
                }
            }
            strata_buf_puts(&b, "]}");
        }
        strata_buf_puts(&b, "]");
    }
    strata_buf_puts(&b, "}");
    return buf_finish(&b, out, len);
}

/* The label columns of a measurement, in the order of the header. */
enum { COL_GPU, COL_NODE, COL_ERROR, NCOL };
static const char *const COL_NAMES[NCOL] = { "gpu", "node", "error" };

static const char *col_value(const measurement_t *m, int c)
{
    switch (c) {
    case COL_GPU: return m->gpu ? m->gpu : "";
    case COL_NODE: return m->node ? m->node : "";
    default: return m->error ? m->error : "";
    }
}

int api_metrics_render_csv(const api_metrics_response_t *r, strata_arena_t *arena, char **out,
                           size_t *len)
{
    if (!r || !arena || !out) return STRATA_EINVAL;
    int used[NCOL] = { 0 };
    for (size_t i = 0; i < r->nm; i++) {
        used[COL_GPU] |= r->m[i].gpu != NULL;
        used[COL_NODE] |= r->m[i].gpu != NULL;
        used[COL_ERROR] |= r->m[i].error != NULL;
    }
    int with_key = r->nh > 0;
    strata_buf_t b;
    strata_buf_init(&b, arena, 0);
    strata_buf_puts(&b, with_key ? "type,timestamp,key,value" : "type,timestamp,value");
    for (int c = 0; c < NCOL; c++)
        if (used[c]) { strata_buf_puts(&b, ","); strata_buf_puts(&b, COL_NAMES[c]); }
    strata_buf_puts(&b, "\r\n");
    for (size_t i = 0; i < r->nm; i++) {
        const measurement_t *m = &r->m[i];
        size_t rows = m->error ? 1 : m->n;
        for (size_t k = 0; k < rows; k++) {
            strata_buf_puts(&b, CATALOG[m->type].type);
            strata_buf_puts(&b, ",");
            if (!m->error) strata_buf_time_rfc3339(&b, m->pts[k].t);
            strata_buf_puts(&b, with_key ? ",," : ",");
            if (!m->error) strata_buf_double(&b, m->pts[k].v);
            for (int c = 0; c < NCOL; c++)
                if (used[c]) { strata_buf_puts(&b, ","); strata_buf_csv_field(&b, col_value(m, c)); }
            strata_buf_puts(&b, "\r\n");
        }
    }
    char tail[NCOL + 1];
    size_t nt = 0;
    for (int c = 0; c < NCOL; c++) if (used[c]) tail[nt++] = ',';
    tail[nt] = 0;
    for (size_t i = 0; i < r->nh; i++) {
        const hseries_t *h = &r->h[i];
        const char *type = CATALOG[h->type].type;
        if (CATALOG[h->type].kind == K_PCT) {
            for (size_t s = 0; s < h->nq; s++)
                for (int k = 0; k < 3; k++) {
                    strata_buf_puts(&b, type);
                    strata_buf_puts(&b, ",");
                    strata_buf_time_rfc3339(&b, h->qt[s]);
                    strata_buf_puts(&b, ",");
                    strata_buf_puts(&b, QUANTILE_KEYS[k]);
                    strata_buf_puts(&b, ",");
                    strata_buf_double(&b, h->qv[s][k]);
                    strata_buf_puts(&b, tail);
                    strata_buf_puts(&b, "\r\n");
                }
        } else if (h->h) {
            size_t ns = api_hist_nsteps(h->h), nl = api_hist_nles(h->h);
            for (size_t s = 0; s < ns; s++)
                for (size_t j = 0; j < nl; j++) {
                    strata_buf_puts(&b, type);
                    strata_buf_puts(&b, ",");
                    strata_buf_time_rfc3339(&b, api_hist_step_time(h->h, s));
                    strata_buf_puts(&b, ",");
                    strata_buf_csv_field(&b, api_hist_le(h->h, j));
                    strata_buf_puts(&b, ",");
                    strata_buf_double(&b, api_hist_count(h->h, s, j));
                    strata_buf_puts(&b, tail);
                    strata_buf_puts(&b, "\r\n");
                }
        }
    }
    return buf_finish(&b, out, len);
}
