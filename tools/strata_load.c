/*
 * strata_load.c: strata-load, a Prometheus remote-write load generator.
 *
 * It simulates a GPU cluster (W Run:ai workloads on N nodes of 8 GPUs) and
 * pushes the full input data model of docs/architecture.md (Run:ai workload
 * state, DCGM, cAdvisor, kube-state-metrics, NIM) to any remote-write
 * receiver, as remote-write 1.0 or 2.0, protobuf encoded by hand and
 * snappy-block compressed, over libcurl with one keep-alive handle per worker.
 *
 * Determinism is the central design choice: every sample value is a pure
 * function of (seed, series, timestamp), and every batch is a pure function
 * of (seed, config, sequence number).  So the same flags send the same
 * batches to every receiver, and an ack log of (seq, timestamp, series
 * range) lines is enough for --expand-ack to re-derive every acknowledged
 * sample without storing them.  Counters are closed-form (k*u + jitter
 * below k/2, so strictly increasing) and reset once per simulated pod
 * lifetime, which keeps them realistic and random-access.
 *
 * Each series belongs to exactly one batch slot and each slot to exactly
 * one worker thread, which sends its slots in time order: per-series order
 * is preserved at any --concurrency, as Prometheus' sharding does, so
 * receivers without an out-of-order window (Prometheus) accept everything.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "strata_arena.h"
#include "strata_err.h"
#include "strata_log.h"

#define GPUS_PER_NODE 8
#define MAX_LABELS    32
#define MAX_STATUS    600
#define DEFAULT_TRACE "../shared/data/h200-nvml-trace.csv"
#define H200_FB_BYTES 150754820096.0

/* ------------------------------------------------------------------ */
/* Options                                                              */

struct opts {
    const char *url;
    int rw_version;
    int concurrency;
    int batch_size;         /* series per request */
    int samples_per_series; /* ticks per request in backfill/max-throughput */
    const char *bearer;
    int workloads, nodes;
    uint64_t seed;
    int64_t interval_ms;
    double backfill_h;
    int64_t start_ms; /* 0 = derived from the mode */
    bool follow, max_throughput, quiet;
    double duration_s;
    double rate; /* samples/s cap, 0 = none */
    const char *trace;
    const char *ack_log;
    const char *expand_ack;
    bool list_series;
    double timeout_s, retry_for_s;
    uint64_t metric_mask; /* bit i: metric_names[i] is sent; all ones = no filter */
};

/* Every __name__ the simulator can produce, in catalog order; --metrics picks from it. */
static const char *const metric_names[] = {
    "runai_workload_info",
    "runai_workload_phase",
    "runai_workload_gpu_allocation",
    "runai_workload_gpu_memory_request_bytes",
    "runai_workload_endpoint_info",
    "runai_workload_element_info",
    "runai_workload_elements_total",
    "runai_workload_requested_resource",
    "runai_workload_condition",
    "runai_workload_pending_scheduling_message",
    "runai_pod_info",
    "runai_pod_gpu_memory_allocated_bytes",
    "kube_pod_status_phase",
    "kube_pod_container_resource_requests",
    "kube_pod_container_resource_limits",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_MEM_COPY_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "DCGM_FI_DEV_POWER_USAGE",
    "DCGM_FI_DEV_GPU_TEMP",
    "DCGM_FI_DEV_SM_CLOCK",
    "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
    "DCGM_FI_PROF_NVLINK_TX_BYTES",
    "DCGM_FI_PROF_NVLINK_RX_BYTES",
    "num_requests_running",
    "num_requests_waiting",
    "num_request_max",
    "request_success_total",
    "request_failure_total",
    "gpu_cache_usage_perc",
    "time_to_first_token_seconds_bucket",
    "time_to_first_token_seconds_count",
    "time_to_first_token_seconds_sum",
    "e2e_request_latency_seconds_bucket",
    "e2e_request_latency_seconds_count",
    "e2e_request_latency_seconds_sum",
};
#define N_METRICS ((int)(sizeof metric_names / sizeof metric_names[0]))
_Static_assert(sizeof metric_names / sizeof metric_names[0] < 64, "metric_mask is 64 bits");
#define ALL_METRICS ((1ULL << N_METRICS) - 1)

/* `--metrics=report`: what api/reports_gen.c reads for a consumption report. */
static const char *const report_metrics[] = {
    "runai_workload_info",
    "runai_pod_info",
    "runai_workload_gpu_allocation",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "kube_pod_container_resource_requests",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
};

static int metric_index(const char *name, size_t len)
{
    for (int i = 0; i < N_METRICS; i++)
        if (strlen(metric_names[i]) == len && strncmp(metric_names[i], name, len) == 0) return i;
    return -1;
}

/* ------------------------------------------------------------------ */
/* Deterministic pseudo-randomness                                      */

static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
static uint64_t mix2(uint64_t a, uint64_t b) { return mix64(a ^ mix64(b + 0x632be59bd9b4e019ULL)); }
static double h01(uint64_t a, uint64_t b) { return (double)(mix2(a, b) >> 11) * 0x1p-53; }

/* A sequential generator for building the catalog (not for values). */
struct rng {
    uint64_t s;
};
static uint64_t rng_next(struct rng *r)
{
    r->s += 0x9e3779b97f4a7c15ULL;
    return mix64(r->s);
}
static int rng_int(struct rng *r, int n) { return (int)(rng_next(r) % (uint64_t)n); }
static void rng_uuid(struct rng *r, char out[37])
{
    uint64_t a = rng_next(r), b = rng_next(r);
    a = (a & ~0xf000ULL) | 0x4000ULL;                 /* version 4 */
    b = (b & ~(0xc000ULL << 48)) | (0x8000ULL << 48); /* variant 10 */
    snprintf(out, 37, "%08x-%04x-%04x-%04x-%012" PRIx64, (unsigned)(a >> 32), (unsigned)((a >> 16) & 0xffff),
             (unsigned)(a & 0xffff), (unsigned)(b >> 48), (uint64_t)(b & 0xffffffffffffULL));
}

/* ------------------------------------------------------------------ */
/* The NVML trace                                                       */

enum { PH_IDLE, PH_TRAIN, PH_MEMRAMP, PH_DENSE, PH_INFER, PH_N };
static const char *const phase_csv[PH_N][3] = {
    [PH_IDLE] = { "idle", "idle2", "idle3" },
    [PH_TRAIN] = { "train" },
    [PH_MEMRAMP] = { "mem_ramp" },
    [PH_DENSE] = { "dense" },
    [PH_INFER] = { "inference" },
};

struct trow {
    double util, memcopy, fb_bytes, power_mw, temp, smclk, pcie_tx, pcie_rx;
};
struct trace {
    struct trow *rows[PH_N];
    int n[PH_N];
};

static int trace_load(struct trace *tr, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        strata_error("cannot open trace", "path=%s err=\"%s\" hint=\"pass --trace=PATH\"", path,
                     strerror(errno));
        return STRATA_EIO;
    }
    char line[1024];
    int cap[PH_N] = { 0 };
    memset(tr, 0, sizeof *tr);
    while (fgets(line, sizeof line, f)) {
        char ph[32];
        double v[13];
        long long ts;
        if (sscanf(line, "%lld,%31[^,],%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &ts, ph, &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &v[11], &v[12]) != 13)
            continue; /* header */
        for (int p = 0; p < PH_N; p++)
            for (int k = 0; k < 3 && phase_csv[p][k]; k++) {
                if (strcmp(ph, phase_csv[p][k]) != 0) continue;
                if (tr->n[p] == cap[p]) {
                    cap[p] = cap[p] ? 2 * cap[p] : 256;
                    void *nr = realloc(tr->rows[p], (size_t)cap[p] * sizeof(struct trow));
                    if (!nr) {
                        fclose(f);
                        return STRATA_ENOMEM;
                    }
                    tr->rows[p] = nr;
                }
                tr->rows[p][tr->n[p]++] = (struct trow){ v[2], v[3], v[4], v[6], v[7], v[8], v[11], v[12] };
            }
    }
    fclose(f);
    for (int p = 0; p < PH_N; p++)
        if (tr->n[p] == 0) {
            strata_error("trace lacks a phase", "path=%s phase=%s", path, phase_csv[p][0]);
            return STRATA_ECORRUPT;
        }
    return 0;
}

static void trace_free(struct trace *tr)
{
    for (int p = 0; p < PH_N; p++) free(tr->rows[p]);
}

/* ------------------------------------------------------------------ */
/* Series catalog                                                       */

enum kind {
    K_CONST,   /* p[0] */
    K_DCGM,    /* field: which trace column; p[0] = scale */
    K_COUNTER, /* p[0] = increase per tick, p[1] = decimals (-1: integer) */
    K_WAVE,    /* p[0] base, p[1] amplitude, p[2] noise, p[3] quantum */
    K_HBUCKET, /* p[0] = CDF at le, p[1] = requests per tick */
    K_HSUM,    /* p[0] = mean seconds, p[1] = requests per tick */
};
enum dcgm_field { F_UTIL, F_MEMCOPY, F_FB, F_POWER, F_TEMP, F_SMCLK, F_ENERGY, F_NVTX, F_NVRX };
enum wtype { W_TRAIN, W_INFER, W_WORKSPACE };

/* RW 2.0 metric types (io.prometheus.write.v2.Metadata.MetricType). */
enum { MT_COUNTER = 1, MT_GAUGE = 2, MT_HISTOGRAM = 3 };

struct series {
    uint8_t *pb1;   /* RW 1.0: the encoded `labels` fields of a TimeSeries */
    uint32_t *refs; /* RW 2.0: name/value symbol ids, sorted by name */
    uint32_t pb1_len;
    uint16_t nrefs;
    uint8_t kind, field, mtype, wtype;
    uint64_t key; /* jitter key; shared by the members of one histogram */
    int64_t off;  /* tick offset: pod lifetime phase / workload phase */
    uint32_t gpu_off;
    double p[4];
};

/* Ticks per simulated pod lifetime: counters reset once per lifetime. */
static int64_t lifetime_ticks(int64_t interval_ms)
{
    int64_t t = 86400000 / interval_ms;
    return t < 100 ? 100 : t;
}
#define SEG_TICKS 40 /* ticks a GPU stays in one trace phase */

struct sim {
    struct opts o;
    struct trace tr;
    strata_arena_t *arena;
    char **syms; /* global symbol table */
    uint32_t nsyms, syms_cap;
    uint32_t *hslots; /* open addressing: symbol id + 1, 0 = empty */
    uint32_t hcap;
    struct series *ser;
    uint32_t nser, ser_cap;
    /* Series of the full catalog so far, kept or not: the jitter keys hang off this index,
     * so --metrics leaves every kept series' values exactly as without it. */
    uint32_t nall;
    struct series dropped; /* scratch target for the parameters of a series not sent */
    int64_t lifetime;
    bool oom;        /* an allocation failed while building the catalog */
    bool bad_metric; /* a series' name is not in metric_names */
};

static uint32_t str_hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s) {
        h ^= (uint8_t)*s++;
        h *= 16777619u;
    }
    return h;
}

static int sym_grow(struct sim *s)
{
    uint32_t ncap = s->hcap ? s->hcap * 2 : 4096;
    uint32_t *nh = calloc(ncap, sizeof *nh);
    if (!nh) return STRATA_ENOMEM;
    for (uint32_t i = 0; i < s->nsyms; i++) {
        uint32_t h = str_hash(s->syms[i]) & (ncap - 1);
        while (nh[h]) h = (h + 1) & (ncap - 1);
        nh[h] = i + 1;
    }
    free(s->hslots);
    s->hslots = nh;
    s->hcap = ncap;
    return 0;
}

static int64_t sym_intern(struct sim *s, const char *str)
{
    if ((s->nsyms + 1) * 2 >= s->hcap && sym_grow(s) != 0) return STRATA_ENOMEM;
    uint32_t h = str_hash(str) & (s->hcap - 1);
    while (s->hslots[h]) {
        uint32_t id = s->hslots[h] - 1;
        if (strcmp(s->syms[id], str) == 0) return id;
        h = (h + 1) & (s->hcap - 1);
    }
    if (s->nsyms == s->syms_cap) {
        uint32_t ncap = s->syms_cap ? s->syms_cap * 2 : 1024;
        char **ns = realloc(s->syms, ncap * sizeof *ns);
        if (!ns) return STRATA_ENOMEM;
        s->syms = ns;
        s->syms_cap = ncap;
    }
    char *copy = strata_arena_strdup(s->arena, str);
    if (!copy) return STRATA_ENOMEM;
    s->syms[s->nsyms] = copy;
    s->hslots[h] = s->nsyms + 1;
    return s->nsyms++;
}

struct lblset {
    int n;
    const char *name[MAX_LABELS], *value[MAX_LABELS];
};

/* Empty values are not labels at all (Prometheus treats them as absent). */
static void ls_set(struct lblset *ls, const char *name, const char *value)
{
    for (int i = 0; i < ls->n; i++)
        if (strcmp(ls->name[i], name) == 0) {
            ls->value[i] = value;
            return;
        }
    if (ls->n < MAX_LABELS) {
        ls->name[ls->n] = name;
        ls->value[ls->n] = value;
        ls->n++;
    }
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}
static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
static uint8_t *put_bytes(uint8_t *p, uint8_t tag, const char *s, size_t n)
{
    *p++ = tag;
    p = put_varint(p, n);
    memcpy(p, s, n);
    return p + n;
}

static struct series *add_series(struct sim *s, const struct lblset *base, const char *metric, enum kind kind,
                                 uint8_t mtype)
{
    if (!metric) return NULL; /* afmt ran out of memory (s->oom is set) */
    int mi = metric_index(metric, strlen(metric));
    if (mi < 0) { /* a name missing from metric_names: a bug, caught by any test run */
        strata_error("metric missing from metric_names", "metric=%s", metric);
        s->bad_metric = true;
        return NULL;
    }
    uint32_t full_idx = s->nall++;
    if (!(s->o.metric_mask >> mi & 1)) {
        memset(&s->dropped, 0, sizeof s->dropped);
        return &s->dropped;
    }
    struct lblset ls = *base;
    ls_set(&ls, "__name__", metric);
    int idx[MAX_LABELS], n = 0;
    for (int i = 0; i < ls.n; i++)
        if (ls.value[i] && *ls.value[i]) idx[n++] = i;
    for (int i = 1; i < n; i++) /* insertion sort by name: label sets are small */
        for (int j = i; j > 0 && strcmp(ls.name[idx[j - 1]], ls.name[idx[j]]) > 0; j--) {
            int t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
        }
    if (s->nser == s->ser_cap) {
        uint32_t ncap = s->ser_cap ? s->ser_cap * 2 : 4096;
        struct series *ns = realloc(s->ser, ncap * sizeof *ns);
        if (!ns) {
            s->oom = true;
            return NULL;
        }
        s->ser = ns;
        s->ser_cap = ncap;
    }
    struct series *se = &s->ser[s->nser];
    memset(se, 0, sizeof *se);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(ls.name[idx[i]]), vl = strlen(ls.value[idx[i]]);
        size_t inner = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;
        len += 1 + varint_len(inner) + inner;
    }
    se->pb1 = strata_arena_alloc(s->arena, len);
    se->refs = strata_arena_alloc(s->arena, (size_t)n * 2 * sizeof(uint32_t));
    if (!se->pb1 || !se->refs) {
        s->oom = true;
        return NULL;
    }
    uint8_t *p = se->pb1;
    for (int i = 0; i < n; i++) {
        const char *nm = ls.name[idx[i]], *v = ls.value[idx[i]];
        size_t nl = strlen(nm), vl = strlen(v);
        size_t inner = 1 + varint_len(nl) + nl + 1 + varint_len(vl) + vl;
        *p++ = 0x0a; /* TimeSeries.labels = 1 */
        p = put_varint(p, inner);
        p = put_bytes(p, 0x0a, nm, nl);
        p = put_bytes(p, 0x12, v, vl);
        int64_t a = sym_intern(s, nm), b = sym_intern(s, v);
        if (a < 0 || b < 0) {
            s->oom = true;
            return NULL;
        }
        se->refs[2 * i] = (uint32_t)a;
        se->refs[2 * i + 1] = (uint32_t)b;
    }
    se->pb1_len = (uint32_t)len;
    se->nrefs = (uint16_t)(2 * n);
    se->kind = (uint8_t)kind;
    se->mtype = mtype;
    se->key = mix2(s->o.seed, full_idx);
    s->nser++;
    return se;
}

/* A printf into the catalog arena (label values live as long as the catalog). */
static const char *afmt(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *afmt(struct sim *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    const char *r = strata_arena_strdup(s->arena, buf);
    if (!r) s->oom = true;
    return r;
}

static void rfc3339(char *out, size_t cap, int64_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *const dept_names[] = { "research", "production", "platform" };
static const char *const proj_names[] = { "llm-pretrain", "vision",    "nim-serving",
                                          "recsys",       "notebooks", "eval" };
static const int proj_dept[] = { 0, 0, 1, 1, 2, 0 };
static const char *const users[] = { "alice@example.com", "bob@example.com", "carol@example.com",
                                     "dave@example.com", "erin@example.com" };
static const char *const kube_phases[] = { "Pending", "Running", "Succeeded", "Failed", "Unknown" };
static const char *const ttft_le[] = { "0.001", "0.005", "0.01", "0.02", "0.04", "0.06",
                                       "0.08",  "0.1",   "0.25", "0.5",  "0.75", "1",
                                       "2.5",   "5",     "7.5",  "10",   "+Inf" };
static const char *const e2e_le[] = { "0.3", "0.5", "0.8", "1",  "1.5", "2",  "2.5", "5",
                                      "10",  "15",  "20",  "30", "40",  "50", "60",  "+Inf" };

/* Log-normal CDF: the fraction of requests at or below le. */
static double lognorm_cdf(const char *le, double median, double sigma)
{
    if (strcmp(le, "+Inf") == 0) return 1.0;
    double x = strtod(le, NULL);
    return 0.5 * erfc(-(log(x) - log(median)) / (sigma * sqrt(2.0)));
}

static void add_histogram(struct sim *s, const struct lblset *base, const char *name, const char *const *les,
                          int nles, double median, double sigma, double rps, int64_t off)
{
    char m[128];
    uint64_t key = mix2(s->o.seed ^ 0x4853, s->nall);
    struct lblset ls = *base;
    for (int i = 0; i < nles; i++) {
        ls_set(&ls, "le", les[i]);
        snprintf(m, sizeof m, "%s_bucket", name);
        struct series *se = add_series(s, &ls, afmt(s, "%s", m), K_HBUCKET, MT_HISTOGRAM);
        if (!se) return;
        se->key = key;
        se->off = off;
        se->p[0] = lognorm_cdf(les[i], median, sigma);
        se->p[1] = rps;
    }
    snprintf(m, sizeof m, "%s_count", name);
    struct series *se = add_series(s, base, afmt(s, "%s", m), K_HBUCKET, MT_HISTOGRAM);
    if (!se) return;
    se->key = key;
    se->off = off;
    se->p[0] = 1.0;
    se->p[1] = rps;
    snprintf(m, sizeof m, "%s_sum", name);
    se = add_series(s, base, afmt(s, "%s", m), K_HSUM, MT_HISTOGRAM);
    if (!se) return;
    se->key = key;
    se->off = off;
    se->p[0] = median * exp(sigma * sigma / 2); /* log-normal mean */
    se->p[1] = rps;
}

static struct series *add_const(struct sim *s, const struct lblset *ls, const char *metric, double v)
{
    struct series *se = add_series(s, ls, metric, K_CONST, MT_GAUGE);
    if (se) se->p[0] = v;
    return se;
}

static struct series *add_wave(struct sim *s, const struct lblset *ls, const char *metric, int64_t off,
                               double base, double amp, double noise, double q)
{
    struct series *se = add_series(s, ls, metric, K_WAVE, MT_GAUGE);
    if (se) {
        se->off = off;
        se->p[0] = base;
        se->p[1] = amp;
        se->p[2] = noise;
        se->p[3] = q;
    }
    return se;
}

static struct series *add_counter(struct sim *s, const struct lblset *ls, const char *metric, int64_t off,
                                  double per_tick, int decimals)
{
    struct series *se = add_series(s, ls, metric, K_COUNTER, MT_COUNTER);
    if (se) {
        se->off = off;
        se->p[0] = per_tick;
        se->p[1] = decimals;
    }
    return se;
}

/*
 * Builds the cluster.  Everything comes from one rng seeded by --seed, so
 * the catalog (labels, series order, parameters) is a function of
 * (seed, workloads, nodes, interval, UTC day of the data's start).
 */
static int sim_build(struct sim *s, int64_t data_start_ms)
{
    struct rng r = { s->o.seed * 0x2545F4914F6CDD1DULL + 1 };
    double isec = (double)s->o.interval_ms / 1000.0;
    s->lifetime = lifetime_ticks(s->o.interval_ms);
    char cluster_id[37];
    rng_uuid(&r, cluster_id);
    const char *cluster = afmt(s, "%s", cluster_id);
    int total_gpus = s->o.nodes * GPUS_PER_NODE, gpu_cursor = 0;

    for (int w = 0; w < s->o.workloads; w++) {
        enum wtype wt = (w % 5 < 2) ? W_TRAIN : (w % 5 < 4) ? W_INFER : W_WORKSPACE;
        bool pending = (w % 8 == 7);
        int proj = (wt == W_INFER) ? 2 : (wt == W_WORKSPACE) ? 4 : (w / 5) % 2 == 0 ? 0 : rng_int(&r, 6);
        int dept = proj_dept[proj];
        char wid[37], tmp[37];
        rng_uuid(&r, wid);
        const char *workload_id = afmt(s, "%s", wid);
        const char *ns = afmt(s, "runai-%s", proj_names[proj]);
        const char *wname = wt == W_TRAIN   ? afmt(s, "train-llama-%03d", w)
                            : wt == W_INFER ? afmt(s, "nim-llama3-8b-%03d", w)
                                            : afmt(s, "jupyter-%s-%03d", proj_names[proj], w);
        int npods = wt == W_TRAIN ? (w % 10 == 0 && s->o.nodes > 1 ? 2 : 1) : 1;
        int gpus_per_pod = wt == W_TRAIN   ? (total_gpus >= 8 ? 8 : total_gpus)
                           : wt == W_INFER ? (w % 3 == 0 ? 2 : 1)
                                           : 1;
        double alloc_per_pod = (wt == W_WORKSPACE && w % 2 == 1) ? 0.5 : gpus_per_pod;
        /* Anchored on the UTC day, so separate runs on one day (a backfill,
         * then a real-time run) describe the same workloads. */
        int64_t day = data_start_ms - data_start_ms % 86400000;
        int64_t created_ms = day - (int64_t)(1 + rng_int(&r, 72)) * 3600000 -
                             (int64_t)rng_int(&r, 3600) * 1000;
        char created[40];
        rfc3339(created, sizeof created, created_ms);
        const char *created_at = afmt(s, "%s", created);
        int64_t woff = (int64_t)(rng_next(&r) % (uint64_t)s->lifetime);
        const char *image = wt == W_TRAIN   ? "nvcr.io/nvidia/pytorch:24.05-py3"
                            : wt == W_INFER ? "nvcr.io/nim/meta/llama3-8b-instruct:1.0.0"
                                            : "jupyter/scipy-notebook:2024-05-27";

        /* Pod placement: contiguous GPUs on one node, wrapping around the cluster. */
        int pod_node[4], pod_gpu0[4];
        for (int p = 0; p < npods; p++) {
            int need = gpus_per_pod;
            if (gpu_cursor % GPUS_PER_NODE + need > GPUS_PER_NODE)
                gpu_cursor += GPUS_PER_NODE - gpu_cursor % GPUS_PER_NODE;
            if (gpu_cursor + need > total_gpus) gpu_cursor = 0;
            pod_node[p] = gpu_cursor / GPUS_PER_NODE;
            pod_gpu0[p] = gpu_cursor % GPUS_PER_NODE;
            if (!pending) gpu_cursor += need;
        }
        const char *nodepool_of[2] = { "h200", "default" };
#define NODEPOOL(n) (s->o.nodes > 1 && (n) < s->o.nodes / 2 ? nodepool_of[0] : nodepool_of[1])
        const char *cur_pools = NODEPOOL(pod_node[0]);
        if (npods > 1 && NODEPOOL(pod_node[1]) != cur_pools) cur_pools = "h200,default";

        /* Run:ai workload state. */
        struct lblset wl = { 0 };
        ls_set(&wl, "workload_id", workload_id);
        struct lblset info = wl;
        ls_set(&info, "workload_name", wname);
        ls_set(&info, "workload_type",
               wt == W_TRAIN   ? "Training"
               : wt == W_INFER ? "Inference"
                               : "Workspace");
        ls_set(&info, "category", wt == W_TRAIN ? "Train" : wt == W_INFER ? "Deploy" : "Build");
        ls_set(&info, "project_id", afmt(s, "%d", 11 + proj));
        ls_set(&info, "project_name", proj_names[proj]);
        ls_set(&info, "department_id", afmt(s, "%d", 1 + dept));
        ls_set(&info, "department_name", dept_names[dept]);
        ls_set(&info, "cluster_id", cluster);
        ls_set(&info, "namespace", ns);
        ls_set(&info, "submitted_by", users[w % 5]);
        ls_set(&info, "priority_class", wt == W_TRAIN ? "train" : wt == W_INFER ? "inference" : "build");
        ls_set(&info, "priority", wt == W_TRAIN ? "50" : wt == W_INFER ? "125" : "100");
        ls_set(&info, "requested_nodepools", "h200,default");
        ls_set(&info, "current_nodepools", pending ? "" : cur_pools);
        ls_set(&info, "created_at", created_at);
        ls_set(&info, "distributed_framework", npods > 1 ? "PyTorch" : "");
        if (wt == W_INFER) {
            rng_uuid(&r, tmp);
            ls_set(&info, "ai_application_id", afmt(s, "%s", tmp));
            ls_set(&info, "ai_application_name", afmt(s, "chat-assistant-%d", w % 3));
        }
        ls_set(&info, "image", image);
        /* What the API's resource and status fields read (docs/registry.md). */
        /* a fraction of a GPU is asked as GPU memory, whole GPUs as a portion */
        ls_set(&info, "gpu_request_type", alloc_per_pod < 1 ? "memory" : "portion");
        ls_set(&info, "requested_pods", afmt(s, "%d", npods));
        if (wt == W_TRAIN && npods > 1) { /* distributed: a fixed gang of workers */
            ls_set(&info, "requested_pods_min", afmt(s, "%d", npods));
            ls_set(&info, "requested_pods_max", afmt(s, "%d", npods));
        } else if (wt == W_TRAIN) { /* batch-like: one pod to complete */
            ls_set(&info, "parallelism", "1");
            ls_set(&info, "completions", "1");
        } else if (wt == W_INFER) { /* autoscaled replicas */
            ls_set(&info, "requested_pods_min", "1");
            ls_set(&info, "requested_pods_max", "3");
        }
        ls_set(&info, "k8s_phase", pending ? "Pending" : "Running");
        ls_set(&info, "actions_delete", "true");
        ls_set(&info, "actions_suspend", wt == W_INFER ? "false" : "true");
        add_const(s, &info, "runai_workload_info", 1);
        struct lblset ph = wl;
        ls_set(&ph, "phase", "Pending");
        if (pending) {
            ls_set(&ph, "phase_message",
                   afmt(s, "Waiting for %g GPU(s) in nodepools h200,default", alloc_per_pod * npods));
            ls_set(&ph, "phase_reason", "OverLimit");
        }
        add_const(s, &ph, "runai_workload_phase", pending ? 1 : 0);
        ph = wl;
        ls_set(&ph, "phase", "Running");
        add_const(s, &ph, "runai_workload_phase", pending ? 0 : 1);
        add_const(s, &wl, "runai_workload_gpu_allocation", pending ? 0 : alloc_per_pod * npods);
        /* GPU memory per pod: the fraction asked for, else the devices' memory */
        double gpu_mem_per_pod = alloc_per_pod < 1 ? 75377410048.0 : H200_FB_BYTES * gpus_per_pod;
        add_const(s, &wl, "runai_workload_gpu_memory_request_bytes", gpu_mem_per_pod * npods);
        if (wt != W_TRAIN) {
            struct lblset ep = wl;
            const char *host = afmt(s, "%s.%s.svc.cluster.local", wname, ns);
            const char *port = wt == W_INFER ? "8000" : "8888";
            const char *path = wt == W_INFER ? "/v1/chat/completions" : "/";
            ls_set(&ep, "host", host);
            ls_set(&ep, "port", port);
            ls_set(&ep, "path", path);
            ls_set(&ep, "protocol", "http");
            ls_set(&ep, "url", afmt(s, "http://%s:%s%s", host, port, path));
            ls_set(&ep, "tls_enabled", "false");
            add_const(s, &ep, "runai_workload_endpoint_info", 1);
        }
        /* The workload's own requests (per pod), its conditions and, while
         * Pending, why it waits in each requested nodepool. */
        double cpu_req = wt == W_TRAIN ? 16 : wt == W_INFER ? 4 : 1;
        double mem_req = (wt == W_TRAIN ? 128.0 : wt == W_INFER ? 32.0 : 8.0) * 1073741824.0;
        const char *const req_res[5] = { alloc_per_pod < 1 ? "gpu_memory" : "gpu", "cpu", "cpu", "cpu_memory",
                                         "cpu_memory" };
        static const char *const req_kind[5] = { "request", "request", "limit", "request", "limit" };
        double req_v[5] = { alloc_per_pod < 1 ? gpu_mem_per_pod : alloc_per_pod, cpu_req, cpu_req * 2,
                            mem_req, mem_req * 2 };
        for (int k = 0; k < 5; k++) {
            struct lblset rq = wl;
            ls_set(&rq, "resource", req_res[k]);
            ls_set(&rq, "kind", req_kind[k]);
            add_const(s, &rq, "runai_workload_requested_resource", req_v[k]);
        }
        struct lblset cond = wl;
        ls_set(&cond, "type", pending ? "PodScheduled" : "Ready");
        ls_set(&cond, "status", pending ? "False" : "True");
        if (pending) {
            ls_set(&cond, "reason", "Unschedulable");
            ls_set(&cond, "message",
                   afmt(s, "0/%d nodes are available: insufficient nvidia.com/gpu", s->o.nodes));
        }
        add_const(s, &cond, "runai_workload_condition", 1);
        for (int k = 0; pending && k < 2; k++) {
            struct lblset pm = wl;
            ls_set(&pm, "nodepool", nodepool_of[k]);
            ls_set(&pm, "phase_reason", "OverLimit");
            ls_set(&pm, "reason", afmt(s, "Not enough free GPUs in nodepool %s", nodepool_of[k]));
            ls_set(&pm, "org_type", "PROJECT");
            ls_set(&pm, "user_message", afmt(s, "Project %s is over its GPU limit", proj_names[proj]));
            add_const(s, &pm, "runai_workload_pending_scheduling_message", 1);
        }
        /* Elements: the root k8s object (level 1), then one per pod (level 2). */
        char root_eid[37];
        rng_uuid(&r, root_eid);
        const char *root_id = afmt(s, "%s", root_eid);
        for (int e = 0; e <= npods; e++) {
            struct lblset el = wl;
            char eid[37], uid[37];
            if (e)
                rng_uuid(&r, eid);
            else
                memcpy(eid, root_eid, 37);
            rng_uuid(&r, uid);
            const char *kname = e ? afmt(s, "%s-worker-%d", wname, e - 1) : wname;
            ls_set(&el, "element_id", afmt(s, "%s", eid));
            ls_set(&el, "name", kname);
            ls_set(&el, "hierarchy_level", e ? "2" : "1");
            ls_set(&el, "parent_id", e ? root_id : "");
            ls_set(&el, "created_at", created_at);
            ls_set(&el, "k8s_uid", afmt(s, "%s", uid));
            ls_set(&el, "k8s_name", kname);
            ls_set(&el, "k8s_group",
                   e               ? ""
                   : wt == W_TRAIN ? "kubeflow.org"
                   : wt == W_INFER ? "apps.nvidia.com"
                                   : "apps");
            ls_set(&el, "k8s_version", e ? "v1" : wt == W_TRAIN ? "v1" : wt == W_INFER ? "v1alpha1" : "v1");
            ls_set(&el, "k8s_kind",
                   e               ? "Pod"
                   : wt == W_TRAIN ? "PyTorchJob"
                   : wt == W_INFER ? "NIMService"
                                   : "StatefulSet");
            add_const(s, &el, "runai_workload_element_info", 1);
        }
        add_const(s, &wl, "runai_workload_elements_total", npods + 1);

        for (int p = 0; p < npods; p++) {
            const char *pod = afmt(s, "%s-worker-%d", wname, p);
            const char *node = afmt(s, "node-%02d", pod_node[p]);
            int64_t poff = woff + p; /* pods of one workload restart together */
            struct lblset pi = { 0 };
            ls_set(&pi, "namespace", ns);
            ls_set(&pi, "pod", pod);
            ls_set(&pi, "workload_id", workload_id);
            ls_set(&pi, "node", pending ? "" : node);
            ls_set(&pi, "nodepool", pending ? "" : NODEPOOL(pod_node[p]));
            add_const(s, &pi, "runai_pod_info", 1);

            /* kube-state-metrics */
            struct lblset ksm = { 0 };
            ls_set(&ksm, "job", "kube-state-metrics");
            ls_set(&ksm, "instance", "kube-state-metrics:8080");
            ls_set(&ksm, "namespace", ns);
            ls_set(&ksm, "pod", pod);
            for (int k = 0; k < 5; k++) {
                struct lblset l = ksm;
                ls_set(&l, "phase", kube_phases[k]);
                add_const(s, &l, "kube_pod_status_phase", (k == (pending ? 0 : 1)) ? 1 : 0);
            }
            struct lblset c = ksm;
            ls_set(&c, "container", "main");
            ls_set(&c, "node", pending ? "" : node);
            ls_set(&c, "resource", "cpu");
            ls_set(&c, "unit", "core");
            add_const(s, &c, "kube_pod_container_resource_requests", cpu_req);
            add_const(s, &c, "kube_pod_container_resource_limits", cpu_req * 2);
            ls_set(&c, "resource", "memory");
            ls_set(&c, "unit", "byte");
            add_const(s, &c, "kube_pod_container_resource_requests", mem_req);
            add_const(s, &c, "kube_pod_container_resource_limits", mem_req * 2);
            if (alloc_per_pod >= 1) { /* a fraction of a GPU is not a device request */
                ls_set(&c, "resource", "nvidia_com_gpu");
                ls_set(&c, "unit", "integer");
                add_const(s, &c, "kube_pod_container_resource_requests", gpus_per_pod);
                add_const(s, &c, "kube_pod_container_resource_limits", gpus_per_pod);
            }
            if (pending) continue;

            /* the GPU memory the scheduler allocated to the running pod */
            struct lblset gm = { 0 };
            ls_set(&gm, "namespace", ns);
            ls_set(&gm, "pod", pod);
            add_const(s, &gm, "runai_pod_gpu_memory_allocated_bytes", gpu_mem_per_pod);

            /* cAdvisor: the container, the pause container and the pod cgroup
             * (no container label), so the API's container filters matter. */
            struct lblset ca = { 0 };
            ls_set(&ca, "job", "kubelet");
            ls_set(&ca, "metrics_path", "/metrics/cadvisor");
            ls_set(&ca, "instance", node);
            ls_set(&ca, "node", node);
            ls_set(&ca, "namespace", ns);
            ls_set(&ca, "pod", pod);
            double use = cpu_req * (0.4 + 0.5 * h01(s->o.seed, (uint64_t)w));
            for (int k = 0; k < 3; k++) {
                struct lblset l = ca;
                ls_set(&l, "container", k == 0 ? "main" : k == 1 ? "POD" : "");
                ls_set(&l, "image", k == 0 ? image : k == 1 ? "registry.k8s.io/pause:3.9" : "");
                double f = k == 0 ? 1.0 : k == 1 ? 0.0005 : 1.02;
                struct lblset lc = l;
                ls_set(&lc, "cpu", "total");
                add_counter(s, &lc, "container_cpu_usage_seconds_total", poff, use * f * isec, 6);
                double mem = mem_req * (0.3 + 0.4 * h01(s->o.seed ^ 7, (uint64_t)w)) * (k == 1 ? 0.0001 : f);
                add_wave(s, &l, "container_memory_working_set_bytes", poff, mem, mem * 0.1, mem * 0.02, 4096);
            }

            /* DCGM, one set per GPU of the pod, values replayed from the trace. */
            for (int g = 0; g < gpus_per_pod; g++) {
                int gi = pod_gpu0[p] + g, global = pod_node[p] * GPUS_PER_NODE + gi;
                struct rng gr = { s->o.seed ^ ((uint64_t)global * 0x9E3779B97F4A7C15ULL) };
                char uuid[37];
                rng_uuid(&gr, uuid);
                struct lblset d = { 0 };
                ls_set(&d, "job", "dcgm-exporter");
                ls_set(&d, "instance", afmt(s, "%s:9400", node));
                ls_set(&d, "gpu", afmt(s, "%d", gi));
                ls_set(&d, "UUID", afmt(s, "GPU-%s", uuid));
                ls_set(&d, "device", afmt(s, "nvidia%d", gi));
                ls_set(&d, "modelName", "NVIDIA H200");
                ls_set(&d, "Hostname", node);
                ls_set(&d, "node", node);
                ls_set(&d, "namespace", ns);
                ls_set(&d, "pod", pod);
                ls_set(&d, "container", "main");
                static const struct {
                    const char *m;
                    enum dcgm_field f;
                    uint8_t mt;
                } dm[] = {
                    { "DCGM_FI_DEV_GPU_UTIL", F_UTIL, MT_GAUGE },
                    { "DCGM_FI_DEV_MEM_COPY_UTIL", F_MEMCOPY, MT_GAUGE },
                    { "DCGM_FI_DEV_FB_USED", F_FB, MT_GAUGE },
                    { "DCGM_FI_DEV_POWER_USAGE", F_POWER, MT_GAUGE },
                    { "DCGM_FI_DEV_GPU_TEMP", F_TEMP, MT_GAUGE },
                    { "DCGM_FI_DEV_SM_CLOCK", F_SMCLK, MT_GAUGE },
                    { "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", F_ENERGY, MT_COUNTER },
                    { "DCGM_FI_PROF_NVLINK_TX_BYTES", F_NVTX, MT_GAUGE },
                    { "DCGM_FI_PROF_NVLINK_RX_BYTES", F_NVRX, MT_GAUGE },
                };
                for (size_t k = 0; k < sizeof dm / sizeof dm[0]; k++) {
                    struct series *se = add_series(s, &d, dm[k].m, K_DCGM, dm[k].mt);
                    if (!se) return STRATA_ENOMEM;
                    se->field = (uint8_t)dm[k].f;
                    se->wtype = (uint8_t)wt;
                    se->off = woff;
                    se->gpu_off = (uint32_t)(g * 37 + global);
                    se->p[0] = wt == W_TRAIN ? (npods > 1 ? 60.0 : 30.0) : 2.0; /* NVLink vs PCIe */
                    if (dm[k].f == F_ENERGY) {
                        se->key = mix2(s->o.seed ^ 0xE, (uint64_t)global);
                        se->off = poff;
                    }
                }
            }

            /* NIM (vLLM-style) serving metrics. */
            if (wt == W_INFER) {
                struct lblset n = { 0 };
                ls_set(&n, "job", "nim");
                ls_set(&n, "instance", afmt(s, "%s:8000", pod));
                ls_set(&n, "model_name", "meta/llama3-8b-instruct");
                ls_set(&n, "namespace", ns);
                ls_set(&n, "pod", pod);
                double rps = 2.0 + 10.0 * h01(s->o.seed ^ 3, (uint64_t)w); /* requests/s */
                add_wave(s, &n, "num_requests_running", poff, rps * 0.8, rps * 0.6, 2, 1);
                add_wave(s, &n, "num_requests_waiting", poff, 1, 3, 2, 1);
                add_const(s, &n, "num_request_max", 256);
                add_counter(s, &n, "request_success_total", poff, rps * isec, -1);
                add_counter(s, &n, "request_failure_total", poff, 2.0 + rps * isec * 0.001, -1);
                add_wave(s, &n, "gpu_cache_usage_perc", poff, 0.45, 0.3, 0.05, 0.0001);
                add_histogram(s, &n, "time_to_first_token_seconds", ttft_le, 17, 0.08, 0.9, rps * isec, poff);
                add_histogram(s, &n, "e2e_request_latency_seconds", e2e_le, 16, 2.5, 0.7, rps * isec, poff);
            }
        }
        if (s->oom) return STRATA_ENOMEM;
        if (s->bad_metric) return STRATA_EINVAL;
    }
#undef NODEPOOL
    return 0;
}

/* ------------------------------------------------------------------ */
/* Values                                                               */

static const int playlist[3][5] = {
    [W_TRAIN] = { PH_TRAIN, PH_DENSE, PH_TRAIN, PH_MEMRAMP, PH_DENSE },
    [W_INFER] = { PH_INFER, PH_INFER, PH_INFER, PH_IDLE, PH_INFER },
    [W_WORKSPACE] = { PH_IDLE, PH_IDLE, PH_IDLE, PH_INFER, PH_TRAIN },
};

/* Strictly increasing within a lifetime: each tick adds k plus jitter in (-k/2, k/2). */
static double counter_at(const struct sim *s, const struct series *se, int64_t t, double k)
{
    int64_t u = (t + se->off) % s->lifetime;
    return k * (double)u + 0.5 * k * h01(se->key, (uint64_t)t);
}

static double round_dec(double v, int dec)
{
    double m = pow(10, dec);
    return round(v * m) / m;
}

static double sample_value(const struct sim *s, const struct series *se, int64_t t)
{
    switch (se->kind) {
    case K_CONST: return se->p[0];
    case K_DCGM: {
        if (se->field == F_ENERGY) /* mJ; ~500 W average */
            return floor(counter_at(s, se, t, 500000.0 * (double)s->o.interval_ms / 1000.0));
        int64_t tt = t + se->off;
        int ph = playlist[se->wtype][mix2(se->off, (uint64_t)(tt / SEG_TICKS)) % 5];
        const struct trow *row =
            &s->tr.rows[ph][(uint64_t)((tt % SEG_TICKS) * 3 + se->gpu_off) % (uint64_t)s->tr.n[ph]];
        switch (se->field) {
        case F_UTIL: return row->util;
        case F_MEMCOPY: return row->memcopy;
        case F_FB: return round(row->fb_bytes / 1048576.0);
        case F_POWER: return round_dec(row->power_mw / 1000.0, 3);
        case F_TEMP: return row->temp;
        case F_SMCLK: return row->smclk;
        case F_NVTX: return round(row->pcie_tx * 125.0 * se->p[0]); /* kbit/s -> B/s, scaled */
        case F_NVRX: return round(row->pcie_rx * 125.0 * se->p[0]);
        default: return 0;
        }
    }
    case K_COUNTER: {
        double v = counter_at(s, se, t, se->p[0]);
        return se->p[1] < 0 ? floor(v) : round_dec(v, (int)se->p[1]);
    }
    case K_WAVE: {
        double ph = (double)((t + se->off) % 240) / 240.0;
        double v = se->p[0] + se->p[1] * sin(2 * M_PI * ph) + se->p[2] * (h01(se->key, (uint64_t)t) - 0.5);
        v = round(v / se->p[3]) * se->p[3];
        if (se->p[3] < 1) v = round_dec(v, 4);
        return v < 0 ? 0 : v;
    }
    case K_HBUCKET: {
        double n = floor(counter_at(s, se, t, se->p[1]));
        return floor(n * se->p[0]);
    }
    case K_HSUM: {
        double n = floor(counter_at(s, se, t, se->p[1]));
        return round_dec(n * se->p[0], 3);
    }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                             */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int buf_reserve(struct buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return 0;
    size_t ncap = b->cap ? b->cap : 65536;
    while (ncap < b->len + extra) ncap *= 2;
    uint8_t *np = realloc(b->p, ncap);
    if (!np) return STRATA_ENOMEM;
    b->p = np;
    b->cap = ncap;
    return 0;
}

static uint8_t *put_double(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)(u >> (8 * i));
    return p;
}

/* One Sample message body: value = 1 (double), timestamp = 2 (int64). */
static size_t sample_len(int64_t ts) { return 1 + 8 + 1 + varint_len((uint64_t)ts); }

/* Per-worker scratch for RW 2.0's per-request symbol table. */
struct symmap {
    uint32_t *local, *gen, *order;
    uint32_t n, cur;
};

static int encode_batch(const struct sim *s, struct buf *out, struct buf *tsb, struct symmap *sm, uint32_t lo,
                        uint32_t hi, int64_t tick0, int nticks)
{
    int64_t ims = s->o.interval_ms;
    size_t samples_len = 0;
    for (int k = 0; k < nticks; k++) {
        size_t l = sample_len((tick0 + k) * ims);
        samples_len += 1 + varint_len(l) + l;
    }
    out->len = 0;
    if (s->o.rw_version == 1) {
        for (uint32_t i = lo; i < hi; i++) {
            const struct series *se = &s->ser[i];
            size_t tlen = se->pb1_len + samples_len;
            if (buf_reserve(out, 1 + varint_len(tlen) + tlen) != 0) return STRATA_ENOMEM;
            uint8_t *p = out->p + out->len;
            *p++ = 0x0a; /* WriteRequest.timeseries = 1 */
            p = put_varint(p, tlen);
            memcpy(p, se->pb1, se->pb1_len);
            p += se->pb1_len;
            for (int k = 0; k < nticks; k++) {
                int64_t t = tick0 + k, ts = t * ims;
                *p++ = 0x12; /* TimeSeries.samples = 2 */
                p = put_varint(p, sample_len(ts));
                *p++ = 0x09;
                p = put_double(p, sample_value(s, se, t));
                *p++ = 0x10;
                p = put_varint(p, (uint64_t)ts);
            }
            out->len = (size_t)(p - out->p);
        }
        return 0;
    }
    /* RW 2.0: timeseries first into tsb while the local symbol table fills. */
    sm->cur++;
    sm->n = 0;
    tsb->len = 0;
    sm->order[sm->n++] = UINT32_MAX; /* symbols[0] must be "" */
    for (uint32_t i = lo; i < hi; i++) {
        const struct series *se = &s->ser[i];
        size_t refs_len = 0;
        for (int j = 0; j < se->nrefs; j++) {
            uint32_t g = se->refs[j];
            if (sm->gen[g] != sm->cur) {
                sm->gen[g] = sm->cur;
                sm->local[g] = sm->n;
                sm->order[sm->n++] = g;
            }
            refs_len += varint_len(sm->local[g]);
        }
        size_t tlen = 1 + varint_len(refs_len) + refs_len + samples_len + 4; /* + metadata */
        if (buf_reserve(tsb, 1 + varint_len(tlen) + tlen) != 0) return STRATA_ENOMEM;
        uint8_t *p = tsb->p + tsb->len;
        *p++ = 0x2a; /* Request.timeseries = 5 */
        p = put_varint(p, tlen);
        *p++ = 0x0a; /* TimeSeries.labels_refs = 1, packed */
        p = put_varint(p, refs_len);
        for (int j = 0; j < se->nrefs; j++) p = put_varint(p, sm->local[se->refs[j]]);
        for (int k = 0; k < nticks; k++) {
            int64_t t = tick0 + k, ts = t * ims;
            *p++ = 0x12;
            p = put_varint(p, sample_len(ts));
            *p++ = 0x09;
            p = put_double(p, sample_value(s, se, t));
            *p++ = 0x10;
            p = put_varint(p, (uint64_t)ts);
        }
        *p++ = 0x2a; /* TimeSeries.metadata = 5 { type = 1 } */
        *p++ = 2;
        *p++ = 0x08;
        *p++ = se->mtype;
        tsb->len = (size_t)(p - tsb->p);
    }
    for (uint32_t j = 0; j < sm->n; j++) {
        const char *str = sm->order[j] == UINT32_MAX ? "" : s->syms[sm->order[j]];
        size_t l = strlen(str);
        if (buf_reserve(out, 1 + varint_len(l) + l) != 0) return STRATA_ENOMEM;
        out->len = (size_t)(put_bytes(out->p + out->len, 0x22, str, l) - out->p); /* symbols = 4 */
    }
    if (buf_reserve(out, tsb->len) != 0) return STRATA_ENOMEM;
    memcpy(out->p + out->len, tsb->p, tsb->len);
    out->len += tsb->len;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Sending                                                              */

static volatile sig_atomic_t stop_flag;
/* A second Ctrl-C exits at once; SIGTERM (make run's Ctrl-C sends INT to the
 * process group and TERM from its trap) always stops gracefully. */
static void on_signal(int sig)
{
    if (stop_flag && sig == SIGINT) _exit(128 + sig);
    stop_flag = 1;
}

struct stats {
    atomic_uint_fast64_t samples, batches, requests, retries, failed, bytes, aborted;
    atomic_uint_fast64_t status[MAX_STATUS]; /* [0] = transport errors */
    atomic_int_fast64_t max_tick;            /* newest tick sent, for progress */
};
static struct stats st;

struct run {
    struct sim *sim;
    int64_t tick_start, tick_end; /* tick_end: exclusive, INT64_MAX = open */
    int64_t deadline_ms;          /* 0 = none */
    bool realtime_ok;             /* may wait for the clock to reach a tick */
    uint32_t nslots;
    FILE *ack;
    pthread_mutex_t ack_mu;
    struct curl_slist *headers;
    atomic_int errors_logged;
    atomic_int workers_done;
    int64_t t0_ms;
};

struct worker {
    struct run *run;
    int id;
    pthread_t th;
    struct buf raw, tsb, comp;
    struct symmap sm;
    CURL *curl;
    char errbody[512];
    size_t errlen;
    long retry_after_s;
    long written_hdr;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, waking early when asked to stop; returns false if stopping. */
static bool nap(int64_t ms)
{
    while (ms > 0 && !stop_flag) {
        int64_t step = ms > 100 ? 100 : ms;
        struct timespec ts = { (time_t)(step / 1000), (long)(step % 1000) * 1000000L };
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !stop_flag;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    struct worker *w = ud;
    size_t len = size * n, room = sizeof w->errbody - 1 - w->errlen;
    size_t c = len < room ? len : room;
    memcpy(w->errbody + w->errlen, ptr, c);
    w->errlen += c;
    w->errbody[w->errlen] = '\0';
    return len;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    struct worker *w = ud;
    size_t len = size * n;
    if (len > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0)
        w->retry_after_s = strtol(ptr + 12, NULL, 10);
    else if (len > 42 && strncasecmp(ptr, "X-Prometheus-Remote-Write-Samples-Written:", 42) == 0)
        w->written_hdr = strtol(ptr + 42, NULL, 10);
    return len;
}

static int on_xfer(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)ud;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return stop_flag ? 1 : 0; /* abort a hung transfer on Ctrl-C */
}

/*
 * Posts one compressed batch, retrying 5xx, 429 and transport errors with
 * exponential backoff (30 ms doubling to 5 s, as Prometheus' queue manager)
 * for up to --retry-for seconds.  4xx other than 429 is final at once.
 * Returns the final HTTP status (0 when the transport never succeeded).
 */
static long post_batch(struct worker *w, uint64_t samples)
{
    struct run *r = w->run;
    const struct opts *o = &r->sim->o;
    int64_t backoff = 30, first = mono_ms();
    for (;;) {
        w->errlen = 0;
        w->errbody[0] = '\0';
        w->retry_after_s = -1;
        w->written_hdr = -1;
        curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, (const char *)w->comp.p);
        curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)w->comp.len);
        CURLcode cc = curl_easy_perform(w->curl);
        long code = 0;
        if (cc == CURLE_OK) curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
        atomic_fetch_add(&st.requests, 1);
        atomic_fetch_add(&st.status[code > 0 && code < MAX_STATUS ? code : 0], 1);
        if (code >= 200 && code < 300) {
            atomic_fetch_add(&st.bytes, w->comp.len);
            /* A 1.0-only receiver parses a 2.0 body as an empty 1.0 request and
             * answers 2xx: the missing confirmation header is the only hint. */
            static atomic_int warned_v2;
            if (o->rw_version == 2 && w->written_hdr < 0 && atomic_exchange(&warned_v2, 1) == 0)
                strata_warn("receiver did not confirm samples written; it may not support "
                            "remote-write 2.0 and drop everything",
                            "status=%ld", code);
            if (w->written_hdr >= 0 && (uint64_t)w->written_hdr != samples &&
                atomic_fetch_add(&r->errors_logged, 1) < 5)
                strata_warn("receiver wrote fewer samples than sent", "sent=%" PRIu64 " written=%ld", samples,
                            w->written_hdr);
            return code;
        }
        bool retry = code == 0 || code == 429 || code >= 500;
        if (atomic_fetch_add(&r->errors_logged, 1) < 10) {
            char q[600];
            strata_warn(retry ? "request failed, retrying" : "request rejected",
                        "status=%ld curl=\"%s\" body=%s", code,
                        cc == CURLE_OK ? "ok" : curl_easy_strerror(cc),
                        strata_log_quote(q, sizeof q, w->errbody));
        }
        if (!retry || stop_flag) return code;
        if (mono_ms() - first > (int64_t)(o->retry_for_s * 1000)) return code;
        atomic_fetch_add(&st.retries, 1);
        int64_t wait = backoff;
        if (code == 429 && w->retry_after_s > 0) wait = w->retry_after_s * 1000;
        if (!nap(wait)) return code;
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct run *r = w->run;
    struct sim *s = r->sim;
    const struct opts *o = &s->o;
    int spb = o->samples_per_series;
    uint64_t my_samples = 0;
    int64_t my_t0 = mono_ms();
    /* This worker's series per tick: its slots are slot % concurrency == id. */
    uint64_t my_series = 0;
    for (uint32_t slot = (uint32_t)w->id; slot < r->nslots; slot += (uint32_t)o->concurrency) {
        uint32_t lo = slot * (uint32_t)o->batch_size, hi = lo + (uint32_t)o->batch_size;
        my_series += (hi > s->nser ? s->nser : hi) - lo;
    }
    /* --rate is shared in proportion to the series each worker sends, so the
     * workers together send --rate whatever the slots per worker.  (Each
     * worker used to get rate / concurrency: with fewer slots than workers,
     * or slots unevenly spread, the idle workers' shares were never sent and
     * --rate=16000 over one slot and two workers gave 8000.) */
    double my_rate = o->rate > 0 && s->nser ? o->rate * (double)my_series / (double)s->nser : 0;
    if (my_series == 0) { /* more workers than slots: nothing to send */
        atomic_fetch_add(&r->workers_done, 1);
        return NULL;
    }
    for (int64_t t = r->tick_start; t < r->tick_end && !stop_flag;) {
        int n = spb;
        if (t + n > r->tick_end) n = (int)(r->tick_end - t);
        /* Never send a sample from the future: wait for the clock (real-time mode). */
        int64_t last_ts = (t + n - 1) * o->interval_ms;
        if (last_ts > now_ms()) {
            if (!r->realtime_ok) break;
            n = 1;
            last_ts = t * o->interval_ms;
            int64_t wait = last_ts - now_ms();
            /* not past --duration: the deadline is checked only between ticks */
            if (r->deadline_ms && wait > r->deadline_ms - mono_ms()) wait = r->deadline_ms - mono_ms();
            if (!nap(wait)) break;
            if (r->deadline_ms && mono_ms() >= r->deadline_ms) break;
            if (last_ts > now_ms()) continue; /* woke early: wait again */
        }
        if (r->deadline_ms && mono_ms() >= r->deadline_ms) break;
        for (uint32_t slot = (uint32_t)w->id; slot < r->nslots && !stop_flag;
             slot += (uint32_t)o->concurrency) {
            uint32_t lo = slot * (uint32_t)o->batch_size, hi = lo + (uint32_t)o->batch_size;
            if (hi > s->nser) hi = s->nser;
            if (encode_batch(s, &w->raw, &w->tsb, &w->sm, lo, hi, t, n) != 0 ||
                buf_reserve(&w->comp, snappy_max_compressed_length(w->raw.len)) != 0) {
                strata_error("out of memory encoding a batch", "series=%u", hi - lo);
                stop_flag = 1;
                break;
            }
            size_t clen = w->comp.cap;
            if (snappy_compress((const char *)w->raw.p, w->raw.len, (char *)w->comp.p, &clen) != SNAPPY_OK) {
                strata_error("snappy_compress failed", "len=%zu", w->raw.len);
                stop_flag = 1;
                break;
            }
            w->comp.len = clen;
            uint64_t samples = (uint64_t)(hi - lo) * (uint64_t)n;
            long code = post_batch(w, samples);
            if (code >= 200 && code < 300) {
                atomic_fetch_add(&st.samples, samples);
                atomic_fetch_add(&st.batches, 1);
                if (r->ack) {
                    uint64_t seq = (uint64_t)(t - r->tick_start) * r->nslots + slot;
                    pthread_mutex_lock(&r->ack_mu);
                    fprintf(r->ack, "%" PRIu64 " %" PRId64 " %d %u %u %ld\n", seq, t * o->interval_ms, n, lo,
                            hi, code);
                    fflush(r->ack); /* a line is a promise: keep it if we are killed */
                    pthread_mutex_unlock(&r->ack_mu);
                }
            } else if (stop_flag && (code == 0 || code == 429 || code >= 500)) {
                atomic_fetch_add(&st.aborted, 1); /* interrupted, not refused */
            } else {
                atomic_fetch_add(&st.failed, 1);
            }
            my_samples += samples;
            if (my_rate > 0) {
                int64_t due = my_t0 + (int64_t)((double)my_samples / my_rate * 1000.0);
                int64_t now = mono_ms();
                if (due > now) nap(due - now);
            }
        }
        int64_t cur = atomic_load(&st.max_tick);
        while (t + n - 1 > cur && !atomic_compare_exchange_weak(&st.max_tick, &cur, t + n - 1)) {}
        t += n;
    }
    atomic_fetch_add(&r->workers_done, 1);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Option parsing                                                       */

static int parse_duration_ms(const char *v, int64_t *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || d <= 0) return STRATA_EINVAL;
    double mult = 1000;
    if (strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0 || *end == '\0')
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else if (strcmp(end, "h") == 0)
        mult = 3600000;
    else
        return STRATA_EINVAL;
    *out = (int64_t)(d * mult);
    return *out > 0 ? 0 : STRATA_EINVAL;
}

static int parse_time_ms(const char *v, int64_t *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end != v && *end == '\0') {
        *out = (int64_t)(d * 1000);
        return 0;
    }
    struct tm tm = { 0 };
    const char *rest = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest || (*rest != 'Z' && *rest != '\0')) return STRATA_EINVAL;
    *out = (int64_t)timegm(&tm) * 1000;
    return 0;
}

/*
 * --metrics=LIST: comma-separated __name__s, or the preset `report`, into a
 * bit mask over metric_names.  Returns 0, or 2 (usage error, message printed).
 */
static int parse_metrics(const char *v, uint64_t *mask)
{
    *mask = 0;
    const char *p = v;
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 6 && strncmp(p, "report", 6) == 0) {
            for (size_t i = 0; i < sizeof report_metrics / sizeof report_metrics[0]; i++)
                *mask |= 1ULL << metric_index(report_metrics[i], strlen(report_metrics[i]));
        } else if (len > 0) {
            int mi = metric_index(p, len);
            if (mi < 0) {
                fprintf(stderr, "strata-load: --metrics: unknown metric '%.*s'; known: report (preset)",
                        (int)len, p);
                for (int i = 0; i < N_METRICS; i++) fprintf(stderr, " %s", metric_names[i]);
                fputc('\n', stderr);
                return 2;
            }
            *mask |= 1ULL << mi;
        }
        if (!p[len]) break;
        p += len + 1;
    }
    if (!*mask) {
        fprintf(stderr, "strata-load: --metrics: empty list (see --help)\n");
        return 2;
    }
    return 0;
}

/* The selection as a canonical comma list (catalog order), for the ack-log header. */
static void metrics_list(uint64_t mask, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < N_METRICS && len < cap; i++)
        if (mask >> i & 1)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", metric_names[i]);
}

static bool metrics_filtered(uint64_t mask) { return mask != ALL_METRICS; }

static void usage(FILE *f)
{
    fprintf(
        f, "usage: strata-load [options]\n"
           "Simulates a GPU cluster (Run:ai workloads, DCGM, cAdvisor, kube-state-metrics, NIM)\n"
           "and pushes its samples to a Prometheus remote-write receiver.\n"
           "\n"
           "Target:\n"
           "  --url=URL                 receiver (default http://127.0.0.1:9201/api/v1/write)\n"
           "  --rw-version=1|2          remote-write protocol version (default 1)\n"
           "  --bearer-token=T          send Authorization: Bearer T\n"
           "  --bearer-token-file=F     same, token read from file F\n"
           "  --concurrency=N           worker threads, one connection each (default 2)\n"
           "  --batch-size=N            series per request (default 2000)\n"
           "  --samples-per-series=K    samples per series per request when not real-time (default 1)\n"
           "  --timeout=S               per-request timeout in seconds (default 30)\n"
           "  --retry-for=S             keep retrying 5xx/429/connection errors for S seconds (default 120)\n"
           "Cluster:\n"
           "  --workloads=W             workloads to simulate (default 10)\n"
           "  --nodes=N                 nodes with 8 GPUs each (default 2)\n"
           "  --seed=N                  seed; same seed and flags give the same batches (default 1)\n"
           "  --trace=PATH              NVML trace shaping GPU values (default " DEFAULT_TRACE ")\n"
           "  --metrics=LIST            send only these metric names (comma-separated __name__s); the\n"
           "                            word `report` stands for what a consumption report reads:\n"
           "                            runai_workload_info, runai_pod_info,\n"
           "                            runai_workload_gpu_allocation, DCGM_FI_DEV_GPU_UTIL,\n"
           "                            DCGM_FI_DEV_FB_USED, kube_pod_container_resource_requests,\n"
           "                            container_cpu_usage_seconds_total,\n"
           "                            container_memory_working_set_bytes.  Other series are not\n"
           "                            generated at all; kept series have the same values as without\n"
           "                            the flag (default: all)\n"
           "Mode (default: real time from now on):\n"
           "  --scrape-interval=D       sample spacing, e.g. 15s, 1s, 500ms (default 15s)\n"
           "  --backfill=HOURS          send HOURS of history up to now as fast as accepted, then exit\n"
           "  --follow                  after --backfill, continue in real time\n"
           "  --start=TIME              first sample time (unix seconds or RFC 3339); pins the data\n"
           "  --max-throughput          send as fast as accepted from --start (default now-24h)\n"
           "  --duration=S              stop after S seconds\n"
           "  --rate=N                  cap at N samples/s\n"
           "Output:\n"
           "  --ack-log=FILE            one line per acknowledged batch (see --expand-ack)\n"
           "  --expand-ack=FILE         print the samples an ack log acknowledged, as JSON lines, and exit\n"
           "  --list-series             print the series as JSON lines and exit\n"
           "  --quiet                   no progress output\n"
           "Exit status: 0 when every batch was acknowledged, 1 when any finally failed, 2 on bad usage.\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){ .url = "http://127.0.0.1:9201/api/v1/write",
                        .rw_version = 1,
                        .concurrency = 2,
                        .batch_size = 2000,
                        .samples_per_series = 1,
                        .workloads = 10,
                        .nodes = 2,
                        .seed = 1,
                        .interval_ms = 15000,
                        .trace = DEFAULT_TRACE,
                        .timeout_s = 30,
                        .retry_for_s = 120,
                        .metric_mask = ALL_METRICS };
    static char token[4096];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        const char *v = eq ? eq + 1 : "";
        size_t kl = eq ? (size_t)(eq - a) : strlen(a);
#define IS(name) (kl == strlen(name) && strncmp(a, name, kl) == 0)
#define INT_OPT(name, field, min)                            \
    else if (IS(name))                                       \
    {                                                        \
        char *e;                                             \
        long x = strtol(v, &e, 10);                          \
        if (!*v || *e || x < (min) || x > INT_MAX) goto bad; \
        o->field = (int)x;                                   \
    }
        if (IS("--help") || IS("-h")) {
            usage(stdout);
            exit(0);
        } else if (IS("--url"))
            o->url = v;
        INT_OPT("--rw-version", rw_version, 1)
        INT_OPT("--concurrency", concurrency, 1)
        INT_OPT("--batch-size", batch_size, 1)
        INT_OPT("--samples-per-series", samples_per_series, 1)
        INT_OPT("--workloads", workloads, 1)
        INT_OPT("--nodes", nodes, 1)
        else if (IS("--seed"))
        {
            char *e;
            o->seed = strtoull(v, &e, 10);
            if (!*v || *e) goto bad;
        }
        else if (IS("--bearer-token")) o->bearer = v;
        else if (IS("--bearer-token-file"))
        {
            FILE *f = fopen(v, "r");
            if (!f) {
                fprintf(stderr, "strata-load: cannot read %s: %s\n", v, strerror(errno));
                return 2;
            }
            size_t n = fread(token, 1, sizeof token - 1, f);
            fclose(f);
            token[n] = '\0';
            while (n && isspace((unsigned char)token[n - 1])) token[--n] = '\0';
            o->bearer = token;
        }
        else if (IS("--scrape-interval"))
        {
            if (parse_duration_ms(v, &o->interval_ms)) goto bad;
        }
        else if (IS("--backfill"))
        {
            o->backfill_h = strtod(v, NULL);
            if (o->backfill_h <= 0) goto bad;
        }
        else if (IS("--start"))
        {
            if (parse_time_ms(v, &o->start_ms)) goto bad;
        }
        else if (IS("--follow")) o->follow = true;
        else if (IS("--max-throughput")) o->max_throughput = true;
        else if (IS("--duration"))
        {
            o->duration_s = strtod(v, NULL);
            if (o->duration_s <= 0) goto bad;
        }
        else if (IS("--rate"))
        {
            o->rate = strtod(v, NULL);
            if (o->rate <= 0) goto bad;
        }
        else if (IS("--trace")) o->trace = v;
        else if (IS("--metrics"))
        {
            int rc = parse_metrics(v, &o->metric_mask);
            if (rc) return rc;
        }
        else if (IS("--ack-log")) o->ack_log = v;
        else if (IS("--expand-ack")) o->expand_ack = v;
        else if (IS("--list-series")) o->list_series = true;
        else if (IS("--quiet")) o->quiet = true;
        else if (IS("--timeout"))
        {
            o->timeout_s = strtod(v, NULL);
            if (o->timeout_s <= 0) goto bad;
        }
        else if (IS("--retry-for"))
        {
            o->retry_for_s = strtod(v, NULL);
            if (o->retry_for_s < 0) goto bad;
        }
        else
        {
            fprintf(stderr, "strata-load: unknown option %s (see --help)\n", a);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "strata-load: bad value for %.*s: '%s' (see --help)\n", (int)kl, a, v);
        return 2;
#undef IS
#undef INT_OPT
    }
    if (o->rw_version != 1 && o->rw_version != 2) {
        fprintf(stderr, "strata-load: --rw-version must be 1 or 2\n");
        return 2;
    }
    return 0;
}

/* The default trace path is relative to the repository; also try beside the binary. */
static const char *find_trace(const char *path, char *buf, size_t cap)
{
    if (strcmp(path, DEFAULT_TRACE) != 0 || access(path, R_OK) == 0) return path;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return path;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash) return path;
    *slash = '\0';
    for (int up = 1; up <= 3; up++) {
        size_t len = (size_t)snprintf(buf, cap, "%s", exe);
        for (int k = 0; k < up && len < cap; k++) len += (size_t)snprintf(buf + len, cap - len, "/..");
        snprintf(buf + len, cap - len, "/%s", DEFAULT_TRACE);
        if (access(buf, R_OK) == 0) return buf;
    }
    return path;
}

/* ------------------------------------------------------------------ */
/* JSON-lines output (--list-series, --expand-ack)                      */

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', f);
            fputc(*s, f);
        } else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void json_labels(FILE *f, const struct sim *s, const struct series *se)
{
    fputc('{', f);
    for (int j = 0; j < se->nrefs; j += 2) {
        if (j) fputc(',', f);
        json_str(f, s->syms[se->refs[j]]);
        fputc(':', f);
        json_str(f, s->syms[se->refs[j + 1]]);
    }
    fputc('}', f);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Re-derives every acknowledged sample from an ack log, as export-style JSON lines. */
static int expand_ack(struct sim *s, FILE *f)
{
    struct line {
        int64_t t0;
        int n;
        uint32_t lo, hi;
    } *ls = NULL;
    size_t nl = 0, cap = 0;
    char buf[256];
    while (fgets(buf, sizeof buf, f)) {
        if (buf[0] == '#') continue;
        uint64_t seq;
        int64_t ts;
        int n;
        unsigned lo, hi;
        if (sscanf(buf, "%" SCNu64 " %" SCNd64 " %d %u %u", &seq, &ts, &n, &lo, &hi) != 5 || hi > s->nser ||
            lo > hi || n < 1) {
            strata_error("bad ack-log line", "line=\"%.60s\"", buf);
            free(ls);
            return STRATA_ECORRUPT;
        }
        if (nl == cap) {
            cap = cap ? cap * 2 : 1024;
            void *p = realloc(ls, cap * sizeof *ls);
            if (!p) {
                free(ls);
                return STRATA_ENOMEM;
            }
            ls = p;
        }
        ls[nl++] = (struct line){ ts / s->o.interval_ms, n, lo, hi };
    }
    size_t *cnt = calloc(s->nser + 1, sizeof *cnt);
    if (!cnt) {
        free(ls);
        return STRATA_ENOMEM;
    }
    for (size_t i = 0; i < nl; i++)
        for (uint32_t j = ls[i].lo; j < ls[i].hi; j++) cnt[j + 1] += (size_t)ls[i].n;
    for (uint32_t j = 0; j < s->nser; j++) cnt[j + 1] += cnt[j];
    int64_t *ticks = malloc((cnt[s->nser] + 1) * sizeof *ticks);
    size_t *fill = malloc((s->nser + 1) * sizeof *fill);
    if (!ticks || !fill) {
        free(ls);
        free(cnt);
        free(ticks);
        free(fill);
        return STRATA_ENOMEM;
    }
    memcpy(fill, cnt, (s->nser + 1) * sizeof *fill);
    for (size_t i = 0; i < nl; i++)
        for (uint32_t j = ls[i].lo; j < ls[i].hi; j++)
            for (int k = 0; k < ls[i].n; k++) ticks[fill[j]++] = ls[i].t0 + k;
    for (uint32_t j = 0; j < s->nser; j++) {
        size_t a = cnt[j], b = cnt[j + 1];
        if (a == b) continue;
        qsort(ticks + a, b - a, sizeof *ticks, cmp_i64);
        printf("{\"metric\":");
        json_labels(stdout, s, &s->ser[j]);
        printf(",\"values\":[");
        int64_t prev = INT64_MIN;
        bool first = true;
        for (size_t k = a; k < b; k++) {
            if (ticks[k] == prev) continue; /* a retried batch acknowledged twice */
            printf(first ? "%.17g" : ",%.17g", sample_value(s, &s->ser[j], ticks[k]));
            first = false;
            prev = ticks[k];
        }
        printf("],\"timestamps\":[");
        prev = INT64_MIN;
        first = true;
        for (size_t k = a; k < b; k++) {
            if (ticks[k] == prev) continue;
            printf(first ? "%" PRId64 : ",%" PRId64, ticks[k] * s->o.interval_ms);
            first = false;
            prev = ticks[k];
        }
        printf("]}\n");
    }
    free(ls);
    free(cnt);
    free(ticks);
    free(fill);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Progress and main                                                    */

static void fmt_si(char *out, size_t cap, double v)
{
    if (v >= 1e9)
        snprintf(out, cap, "%.2fG", v / 1e9);
    else if (v >= 1e6)
        snprintf(out, cap, "%.2fM", v / 1e6);
    else if (v >= 1e3)
        snprintf(out, cap, "%.1fk", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

static void progress(const struct run *r, bool tty, double elapsed, double rate_now)
{
    char a[32], b[32], when[40];
    fmt_si(a, sizeof a, (double)atomic_load(&st.samples));
    fmt_si(b, sizeof b, rate_now);
    int64_t mt = atomic_load(&st.max_tick);
    if (mt > 0)
        rfc3339(when, sizeof when, mt * r->sim->o.interval_ms);
    else
        snprintf(when, sizeof when, "-");
    fprintf(stderr,
            "%s[%6.1fs] samples=%s (%s/s) batches=%" PRIuFAST64 " retries=%" PRIuFAST64 " failed=%" PRIuFAST64
            " data_at=%s%s",
            tty ? "\r\033[K" : "", elapsed, a, b, atomic_load(&st.batches), atomic_load(&st.retries),
            atomic_load(&st.failed), when, tty ? "" : "\n");
    fflush(stderr);
}

int main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    char tbuf[PATH_MAX + 64];
    o.trace = find_trace(o.trace, tbuf, sizeof tbuf);

    FILE *expand = NULL;
    if (o.expand_ack) {
        /* The ack log's header carries the flags that shape the catalog. */
        expand = fopen(o.expand_ack, "r");
        char hdr[PATH_MAX + 2048], trace[PATH_MAX];
        long long start, ims;
        unsigned long long seed;
        int end = 0;
        if (!expand || !fgets(hdr, sizeof hdr, expand) ||
            sscanf(hdr,
                   "# strata-load ack-log v1 seed=%llu workloads=%d nodes=%d interval_ms=%lld "
                   "start_ms=%lld trace=%4095s%n",
                   &seed, &o.workloads, &o.nodes, &ims, &start, trace, &end) != 6) {
            fprintf(stderr, "strata-load: %s is not an ack log\n", o.expand_ack);
            if (expand) fclose(expand);
            return 2;
        }
        /* A log written with --metrics says so after the trace; older logs sent everything. */
        o.metric_mask = ALL_METRICS;
        if (strncmp(hdr + end, " metrics=", 9) == 0) {
            char *list = hdr + end + 9;
            list[strcspn(list, " \n")] = '\0';
            if (parse_metrics(list, &o.metric_mask) != 0) {
                fprintf(stderr, "strata-load: %s: bad metrics= in the header\n", o.expand_ack);
                fclose(expand);
                return 2;
            }
        }
        o.seed = seed;
        o.interval_ms = ims;
        o.start_ms = start;
        snprintf(tbuf, sizeof tbuf, "%s", trace);
        o.trace = tbuf;
    }

    struct sim s = { .o = o };
    s.arena = strata_arena_new(0);
    if (!s.arena) return 1;
    if ((rc = trace_load(&s.tr, o.trace)) != 0) {
        strata_arena_free(s.arena);
        return 1;
    }

    /* The data range: the catalog's created_at labels hang off its start. */
    int64_t now = now_ms();
    int64_t start = o.start_ms;
    if (!start) {
        if (o.backfill_h > 0)
            start = now - (int64_t)(o.backfill_h * 3600000.0);
        else if (o.max_throughput)
            start = now - 24 * 3600000LL;
        else
            start = now;
    }
    int64_t tick_start = (start + o.interval_ms - 1) / o.interval_ms;
    int64_t data_start = tick_start * o.interval_ms;
    rc = sim_build(&s, data_start);
    if (rc != 0) {
        strata_error("cannot build the simulated cluster", "err=\"%s\"", strata_strerror(rc));
        goto out;
    }

    if (o.list_series || expand) {
        if (o.list_series)
            for (uint32_t i = 0; i < s.nser; i++) {
                json_labels(stdout, &s, &s.ser[i]);
                putchar('\n');
            }
        else
            rc = expand_ack(&s, expand);
        goto out;
    }

    struct run r = { .sim = &s, .tick_start = tick_start, .tick_end = INT64_MAX };
    r.nslots = (s.nser + (uint32_t)o.batch_size - 1) / (uint32_t)o.batch_size;
    r.realtime_ok = true;
    if (o.backfill_h > 0 && !o.follow) {
        r.tick_end = now / o.interval_ms + 1; /* up to now, then exit */
        r.realtime_ok = false;
    }
    if (o.backfill_h > 0 && o.start_ms && !o.follow)
        r.tick_end = tick_start + (int64_t)(o.backfill_h * 3600000.0) / o.interval_ms;
    if (o.duration_s > 0) r.deadline_ms = mono_ms() + (int64_t)(o.duration_s * 1000);
    if (o.max_throughput && o.duration_s <= 0)
        strata_warn("--max-throughput without --duration runs until interrupted", "%s", "");
    if (o.ack_log) {
        r.ack = fopen(o.ack_log, "w");
        if (!r.ack) {
            strata_error("cannot open ack log", "path=%s err=\"%s\"", o.ack_log, strerror(errno));
            rc = STRATA_EIO;
            goto out;
        }
        char abs[PATH_MAX], mlist[2048] = "";
        if (metrics_filtered(o.metric_mask)) {
            memcpy(mlist, " metrics=", 10);
            metrics_list(o.metric_mask, mlist + 9, sizeof mlist - 9);
        }
        fprintf(r.ack,
                "# strata-load ack-log v1 seed=%" PRIu64 " workloads=%d nodes=%d "
                "interval_ms=%" PRId64 " start_ms=%" PRId64 " trace=%s%s\n",
                o.seed, o.workloads, o.nodes, o.interval_ms, data_start,
                realpath(o.trace, abs) ? abs : o.trace, mlist);
        fprintf(r.ack, "# seq first_ts_ms samples_per_series series_lo series_hi status\n");
        fflush(r.ack);
    }
    pthread_mutex_init(&r.ack_mu, NULL);

    curl_global_init(CURL_GLOBAL_DEFAULT);
    r.headers = curl_slist_append(NULL, "Content-Encoding: snappy");
    r.headers = curl_slist_append(
        r.headers, o.rw_version == 1
                       ? "Content-Type: application/x-protobuf"
                       : "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request");
    r.headers = curl_slist_append(r.headers, o.rw_version == 1 ? "X-Prometheus-Remote-Write-Version: 0.1.0"
                                                               : "X-Prometheus-Remote-Write-Version: 2.0.0");
    r.headers = curl_slist_append(r.headers, "User-Agent: strata-load/1.0");
    r.headers = curl_slist_append(r.headers, "Expect:"); /* no 100-continue round trip */
    char authz[4200];
    if (o.bearer) {
        snprintf(authz, sizeof authz, "Authorization: Bearer %s", o.bearer);
        r.headers = curl_slist_append(r.headers, authz);
    }

    struct sigaction sa = { .sa_handler = on_signal };
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    strata_info("starting", "url=%s rw=%d series=%u slots=%u workers=%d interval_ms=%" PRId64 " mode=%s",
                o.url, o.rw_version, s.nser, r.nslots, o.concurrency, o.interval_ms,
                o.max_throughput   ? "max-throughput"
                : o.backfill_h > 0 ? (o.follow ? "backfill+follow" : "backfill")
                                   : "realtime");
    struct worker *ws = calloc((size_t)o.concurrency, sizeof *ws);
    if (!ws) {
        rc = STRATA_ENOMEM;
        goto out_curl;
    }
    r.t0_ms = mono_ms();
    int started = 0;
    for (int i = 0; i < o.concurrency; i++) {
        struct worker *w = &ws[i];
        w->run = &r;
        w->id = i;
        w->sm.local = calloc(s.nsyms, sizeof(uint32_t));
        w->sm.gen = calloc(s.nsyms, sizeof(uint32_t));
        w->sm.order = calloc(s.nsyms + 1, sizeof(uint32_t));
        w->curl = curl_easy_init();
        if (!w->sm.local || !w->sm.gen || !w->sm.order || !w->curl) {
            rc = STRATA_ENOMEM;
            break;
        }
        curl_easy_setopt(w->curl, CURLOPT_URL, o.url);
        curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, r.headers);
        curl_easy_setopt(w->curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(w->curl, CURLOPT_WRITEDATA, w);
        curl_easy_setopt(w->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(w->curl, CURLOPT_HEADERDATA, w);
        curl_easy_setopt(w->curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(w->curl, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(w->curl, CURLOPT_TIMEOUT_MS, (long)(o.timeout_s * 1000));
        curl_easy_setopt(w->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(w->curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(w->curl, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(w->curl, CURLOPT_TCP_KEEPALIVE, 1L);
        if (pthread_create(&w->th, NULL, worker_main, w) != 0) {
            rc = STRATA_ENOMEM;
            break;
        }
        started++;
    }
    if (rc) stop_flag = 1;

    /* Progress: one updating line on a terminal, a line every 10 s otherwise. */
    bool tty = isatty(2);
    int64_t every = tty ? 1000 : 10000, last = r.t0_ms;
    uint64_t last_samples = 0;
    while (atomic_load(&r.workers_done) < started) {
        struct timespec ts = { 0, 100000000L };
        nanosleep(&ts, NULL);
        int64_t m = mono_ms();
        if (!o.quiet && m - last >= every) {
            uint64_t cur = atomic_load(&st.samples);
            progress(&r, tty, (double)(m - r.t0_ms) / 1000.0,
                     (double)(cur - last_samples) * 1000.0 / (double)(m - last));
            last = m;
            last_samples = cur;
        }
    }
    for (int i = 0; i < started; i++) pthread_join(ws[i].th, NULL);
    double secs = (double)(mono_ms() - r.t0_ms) / 1000.0;
    if (!o.quiet && tty) fputc('\n', stderr);

    uint64_t samples = atomic_load(&st.samples), failed = atomic_load(&st.failed);
    printf("strata-load: mode=%s rw=%d elapsed_s=%.2f samples=%" PRIu64 " series=%u "
           "samples_per_s=%.0f requests=%" PRIuFAST64 " batches_ok=%" PRIuFAST64 " retries=%" PRIuFAST64
           " failed_batches=%" PRIu64 " aborted_batches=%" PRIuFAST64 " bytes_sent=%" PRIuFAST64 "\n",
           o.max_throughput   ? "max-throughput"
           : o.backfill_h > 0 ? (o.follow ? "backfill+follow" : "backfill")
                              : "realtime",
           o.rw_version, secs, samples, s.nser, secs > 0 ? (double)samples / secs : 0.0,
           atomic_load(&st.requests), atomic_load(&st.batches), atomic_load(&st.retries), failed,
           atomic_load(&st.aborted), atomic_load(&st.bytes));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                 (double)ru.ru_stime.tv_usec / 1e6;
    printf("strata-load: own_cpu_s=%.2f own_samples_per_cpu_s=%.0f\n", cpu,
           cpu > 0 ? (double)samples / cpu : 0.0);
    printf("strata-load: status");
    for (int c = 0; c < MAX_STATUS; c++) {
        uint64_t n = atomic_load(&st.status[c]);
        if (n && c)
            printf(" %d=%" PRIu64, c, n);
        else if (n)
            printf(" conn_error=%" PRIu64, n);
    }
    printf("\n");
    fflush(stdout);
    if (failed) rc = 1;

    for (int i = 0; i < o.concurrency; i++) {
        free(ws[i].raw.p);
        free(ws[i].tsb.p);
        free(ws[i].comp.p);
        free(ws[i].sm.local);
        free(ws[i].sm.gen);
        free(ws[i].sm.order);
        if (ws[i].curl) curl_easy_cleanup(ws[i].curl);
    }
    free(ws);
out_curl:
    curl_slist_free_all(r.headers);
    curl_global_cleanup();
    if (r.ack) fclose(r.ack);
    pthread_mutex_destroy(&r.ack_mu);
out:
    if (expand) fclose(expand);
    trace_free(&s.tr);
    free(s.syms);
    free(s.hslots);
    free(s.ser);
    strata_arena_free(s.arena);
    return rc == 0 ? 0 : 1;
}
