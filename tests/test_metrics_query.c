/*
 * test_metrics_query.c: the workload metrics query layer (api/query/metrics_query.h)
 * over a real tsdb (temp dir, background=0) and a real registry fed through
 * api_registry_observe, exactly as ingest feeds them (sorted labels, the
 * tenant label stamped).  Every expected value is worked out by hand in the
 * comments; JSON and CSV bodies are compared as exact strings.
 *
 * Time base T0 = 2024-12-20T14:30:00Z.  Unless said otherwise a query covers
 * [T0, T0+2m] with numberOfSamples=2: bucket 1 = [T0, T0+60s] (start
 * included), bucket 2 = (T0+60s, T0+120s]; point timestamps 14:31:00Z and
 * 14:32:00Z.  Scrapes are every 15 s, so bucket 1 holds t = 0,15,30,45,60 s
 * and bucket 2 t = 75,90,105,120 s.
 *
 * With STRATA_GOLDEN_DIR set, every JSON body checked here is also written
 * to that directory (<case>.json) for tests/integration/test_metrics_schema.py,
 * which validates them against the Run:ai spec.
 */
#include "test_helpers.h"

#include <inttypes.h>
#include <math.h>
#include <time.h>

#include "workload_metrics.h"
#include "registry.h"
#include "ingest.h"
#include "read.h"
#include "strata_arena.h"
#include "strata_log.h"
#include "strata_time.h"
#include "tsdb.h"

#define SEC       1000LL
#define MIN       (60 * SEC)
#define HOUR      (60 * MIN)
#define DAY       (24 * HOUR)
#define T0        1734705000000LL /* 2024-12-20T14:30:00Z */
#define TD        1734652800000LL /* 2024-12-20T00:00:00Z */

#define TEN       7
#define OTHER_TEN 8
#define WL        "3f1c1a2e-0000-4000-8000-00000000000a"
#define WL_OTHER  "3f1c1a2e-0000-4000-8000-00000000000b"

typedef struct kv {
    const char *k, *v;
} kv_t;

#define KV(...) ((const kv_t[]){ __VA_ARGS__ }), (sizeof((const kv_t[]){ __VA_ARGS__ }) / sizeof(kv_t))
#define VALS(...) \
    ((const double[]){ __VA_ARGS__ }), (sizeof((const double[]){ __VA_ARGS__ }) / sizeof(double))

typedef struct fx {
    char *dir;
    tsdb_t *db;
    api_read_source_t *reader;
    api_registry_t *reg;
    strata_arena_t *arena;
} fx_t;

static int setup(void **state)
{
    strata_log_set_level(STRATA_LOG_ERROR);
    fx_t *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = f->dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    if (tsdb_open(&o, &f->db)) return -1;
    if (api_read_source_tsdb(f->db, &f->reader)) return -1;
    if (api_registry_new(NULL, &f->reg)) return -1;
    f->arena = strata_arena_new(0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    strata_arena_free(f->arena);
    api_registry_free(f->reg);
    api_read_source_free(f->reader);
    tsdb_close(f->db);
    test_tmpdir_free(f->dir);
    free(f);
    return 0;
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

static double stale_nan(void) { return test_bits_double(TSDB_STALE_NAN_BITS); }

/* Stores one series as ingest would (store + registry). */
static void put(fx_t *f, int32_t ten, const char *metric, const kv_t *kv, size_t nkv, const tsdb_sample_t *s,
                size_t ns)
{
    tsdb_label_t l[32];
    char tbuf[16];
    size_t n = 0;
    snprintf(tbuf, sizeof tbuf, "%d", ten);
    l[n++] = (tsdb_label_t){ "__name__", metric };
    l[n++] = (tsdb_label_t){ "__tenant__", tbuf };
    for (size_t i = 0; i < nkv; i++) l[n++] = (tsdb_label_t){ kv[i].k, kv[i].v };
    qsort(l, n, sizeof *l, label_cmp);
    tsdb_series_input_t in = { l, n, s, ns };
    tsdb_append_result_t res;
    assert_ok(tsdb_append(f->db, &in, 1, &res));
    assert_int_equal(res.appended, ns);
    assert_ok(api_registry_observe(f->reg, ten, l, n, s, ns));
}

/* Values every 15 s from T0 + first_s seconds. */
static void put15(fx_t *f, int32_t ten, const char *metric, const kv_t *kv, size_t nkv, int first_s,
                  const double *v, size_t nv)
{
    tsdb_sample_t s[64];
    assert_true(nv <= 64);
    for (size_t i = 0; i < nv; i++) s[i] = (tsdb_sample_t){ T0 + (first_s + 15 * (int64_t)i) * SEC, v[i] };
    put(f, ten, metric, kv, nkv, s, nv);
}

/* A constant value every 15 s over [T0+from_s, T0+to_s]. */
static void const15(fx_t *f, int32_t ten, const char *metric, const kv_t *kv, size_t nkv, int from_s,
                    int to_s, double v)
{
    double vals[64];
    size_t n = 0;
    for (int t = from_s; t <= to_s; t += 15) vals[n++] = v;
    put15(f, ten, metric, kv, nkv, from_s, vals, n);
}

/* runai_pod_info of a pod of WL (tenant ten) every 15 s over [from_s, to_s]. */
static void pod_info(fx_t *f, int32_t ten, const char *pod, const char *node, int from_s, int to_s)
{
    const15(f, ten, "runai_pod_info",
            KV({ "namespace", "team-a" }, { "pod", pod }, { "workload_id", WL }, { "node", node },
               { "nodepool", "default" }),
            from_s, to_s, 1);
}

/* WL as the cluster agent announces it (the registry knows a workload by its
 * runai_workload_info series). */
static void workload_info(fx_t *f)
{
    const15(f, TEN, "runai_workload_info",
            KV({ "workload_id", WL }, { "workload_name", "train" }, { "namespace", "team-a" },
               { "project_name", "team-a" }, { "category", "Train" }),
            -60, 180, 1);
}

static void golden(const char *name, const char *json)
{
    const char *dir = getenv("STRATA_GOLDEN_DIR");
    if (!dir || !*dir) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp) fail_msg("cannot write %s", path);
    fputs(json, fp);
    fclose(fp);
}

typedef struct qres {
    api_metrics_response_t *resp;
    char *json;
    uint64_t points;
    int partial;
} qres_t;

/* Parses "types" (one metricType value), start/end as instants and
 * numberOfSamples n (NULL = default), runs the query and renders JSON. */
static qres_t query(fx_t *f, int32_t ten, const char *types, int64_t start, int64_t end, const char *n,
                    const api_metrics_options_t *o)
{
    char s[STRATA_TIME_RFC3339_BUFSZ], e[STRATA_TIME_RFC3339_BUFSZ], err[256];
    assert_true(strata_time_format_rfc3339(start, s, sizeof s) > 0);
    assert_true(strata_time_format_rfc3339(end, e, sizeof e) > 0);
    api_metrics_request_t req;
    const char *mt[] = { types };
    int rc = api_metrics_parse(mt, 1, s, e, n, o, &req, err, sizeof err);
    if (rc) fail_msg("parse: %s", err);
    qres_t r = { 0 };
    rc = api_workload_metrics(f->reader, f->reg, ten, WL, &req, o, f->arena, &r.resp, err, sizeof err);
    if (rc) fail_msg("query: %s (%s)", strata_strerror(rc), err);
    size_t len;
    assert_ok(api_metrics_render_json(r.resp, f->arena, &r.json, &len));
    assert_int_equal(len, strlen(r.json));
    r.points = api_metrics_response_points_read(r.resp);
    r.partial = api_metrics_response_partial(r.resp);
    return r;
}

#define assert_json(got, want)                                             \
    do {                                                                   \
        const char *g_ = (got), *w_ = (want);                              \
        if (strcmp(g_, w_) != 0) fail_msg("\ngot:  %s\nwant: %s", g_, w_); \
    } while (0)

#define PT(v, ts) "{\"value\":\"" v "\",\"timestamp\":\"2024-12-20T" ts "Z\"}"

/* ---- per-GPU measurements ------------------------------------------------------ */

/* Pod train-0 of WL runs on node-1 from T0-60s to T0+180s. */
static void feed_gpu(fx_t *f)
{
    workload_info(f);
    pod_info(f, TEN, "train-0", "node-1", -60, 180);
    /* GPU 0, joined by (namespace, pod).  The samples before start (999)
     * are outside every bucket.  b1 = avg(10,20,30,40,50) = 30,
     * b2 = avg(60,70,80,90) = 75. */
    put15(f, TEN, "DCGM_FI_DEV_GPU_UTIL",
          KV({ "gpu", "0" }, { "UUID", "GPU-aaaa" }, { "Hostname", "node-1" }, { "namespace", "team-a" },
             { "pod", "train-0" }, { "container", "main" }),
          -30, VALS(999, 999, 10, 20, 30, 40, 50, 60, 70, 80, 90));
    /* GPU 1: b1 = 100, b2 = avg(0,0,50,50) = 25 */
    put15(f, TEN, "DCGM_FI_DEV_GPU_UTIL",
          KV({ "gpu", "1" }, { "UUID", "GPU-bbbb" }, { "Hostname", "node-1" }, { "namespace", "team-a" },
             { "pod", "train-0" }, { "container", "main" }),
          -30, VALS(999, 999, 100, 100, 100, 100, 100, 0, 0, 50, 50));
    /* GPU 0 of node-2, joined by its workload_id label (no pod): 5 and 5 */
    const15(f, TEN, "DCGM_FI_DEV_GPU_UTIL",
            KV({ "gpu", "0" }, { "Hostname", "node-2" }, { "workload_id", WL }), 0, 120, 5);
    /* Never used: another workload's series on our pod (its workload_id
     * wins over the pod join), and the same series in another tenant. */
    const15(f, TEN, "DCGM_FI_DEV_GPU_UTIL",
            KV({ "gpu", "2" }, { "Hostname", "node-1" }, { "workload_id", WL_OTHER },
               { "namespace", "team-a" }, { "pod", "train-0" }),
            0, 120, 1);
    pod_info(f, OTHER_TEN, "train-0", "node-1", -60, 180);
    const15(f, OTHER_TEN, "DCGM_FI_DEV_GPU_UTIL",
            KV({ "gpu", "0" }, { "UUID", "GPU-aaaa" }, { "Hostname", "node-1" }, { "namespace", "team-a" },
               { "pod", "train-0" }, { "container", "main" }),
            0, 120, 0);
    /* Framebuffer in MiB, without Hostname: the node comes from the pod.
     * GPU 0: 1024 MiB = 1073741824 B; GPU 1: 2048 then 3072 MiB =
     * 2147483648 and 3221225472 B. */
    const15(f, TEN, "DCGM_FI_DEV_FB_USED",
            KV({ "gpu", "0" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0, 120, 1024);
    put15(f, TEN, "DCGM_FI_DEV_FB_USED", KV({ "gpu", "1" }, { "namespace", "team-a" }, { "pod", "train-0" }),
          0, VALS(2048, 2048, 2048, 2048, 2048, 3072, 3072, 3072, 3072));
    /* NVLINK: GPU 0 TX 1000 + RX (500, then 700) = 1500, 1700;
     * GPU 1 TX 200 only = 200, 200. */
    const15(f, TEN, "DCGM_FI_PROF_NVLINK_TX_BYTES",
            KV({ "gpu", "0" }, { "Hostname", "node-1" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0,
            120, 1000);
    put15(f, TEN, "DCGM_FI_PROF_NVLINK_RX_BYTES",
          KV({ "gpu", "0" }, { "Hostname", "node-1" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0,
          VALS(500, 500, 500, 500, 500, 700, 700, 700, 700));
    const15(f, TEN, "DCGM_FI_PROF_NVLINK_TX_BYTES",
            KV({ "gpu", "1" }, { "Hostname", "node-1" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0,
            120, 200);
}

#define GPU_JSON                                                                                                                                                                                                                        \
    "{\"measurements\":["                                                                                                                                                                                                               \
    "{\"type\":\"GPU_UTILIZATION\",\"labels\":{\"gpu\":\"0\",\"node\":\"node-1\"},\"values\":[" PT(                                                                                                                                     \
        "30",                                                                                                                                                                                                                           \
        "1"                                                                                                                                                                                                                             \
        "4"                                                                                                                                                                                                                             \
        ":"                                                                                                                                                                                                                             \
        "3"                                                                                                                                                                                                                             \
        "1"                                                                                                                                                                                                                             \
        ":"                                                                                                                                                                                                                             \
        "0"                                                                                                                                                                                                                             \
        "0") "," PT("75",                                                                                                                                                                                                               \
                    "14:32:00") "]},"                                                                                                                                                                                                   \
                                "{\"type\":\"GPU_UTILIZATION\",\"labels\":{\"gpu\":\"1\",\"node\":\"node-"                                                                                                                              \
                                "1\"},"                                                                                                                                                                                                 \
                                "\"values\":[" PT("100", "14:31:00") "," PT(                                                                                                                                                            \
                                    "25",                                                                                                                                                                                               \
                                    "14:32:00") "]},"                                                                                                                                                                                   \
                                                "{\"type\":\"GPU_UTILIZATION\",\"labels\":{\"gpu\":\"0\","                                                                                                                              \
                                                "\"node\":"                                                                                                                                                                             \
                                                "\"node-2\"},\"values\":[" PT("5", "14:31:00") "," PT(                                                                                                                                  \
                                                    "5",                                                                                                                                                                                \
                                                    "14:32:00") "]},"                                                                                                                                                                   \
                                                                "{\"type\":\"GPU_MEMORY_USAGE_BYTES\","                                                                                                                                 \
                                                                "\"labels\":{"                                                                                                                                                          \
                                                                "\"gpu\":\"0\",\"node\":\"node-1\"},"                                                                                                                                   \
                                                                "\"values\":"                                                                                                                                                           \
                                                                "[" PT("1073741824", "14:31:00") "," PT(                                                                                                                                \
                                                                    "1073741824",                                                                                                                                                       \
                                                                    "14:32:00") "]},"                                                                                                                                                   \
                                                                                "{\"type\":\"GPU_"                                                                                                                                      \
                                                                                "MEMORY_USAGE_"                                                                                                                                         \
                                                                                "BYTES\",\"labels\":{"                                                                                                                                  \
                                                                                "\"gpu\":"                                                                                                                                              \
                                                                                "\"1\",\"node\":"                                                                                                                                       \
                                                                                "\"node-1\"},"                                                                                                                                          \
                                                                                "\"values\":[" PT(                                                                                                                                      \
                                                                                    "2147483648",                                                                                                                                       \
                                                                                    "1"                                                                                                                                                 \
                                                                                    "4"                                                                                                                                                 \
                                                                                    ":"                                                                                                                                                 \
                                                                                    "3"                                                                                                                                                 \
                                                                                    "1"                                                                                                                                                 \
                                                                                    ":"                                                                                                                                                 \
                                                                                    "0"                                                                                                                                                 \
                                                                                    "0") "," PT("32212"                                                                                                                                 \
                                                                                                "2547"                                                                                                                                  \
                                                                                                "2",                                                                                                                                    \
                                                                                                "14:"                                                                                                                                   \
                                                                                                "32:"                                                                                                                                   \
                                                                                                "00") "]},"                                                                                                                             \
                                                                                                      "{\"t"                                                                                                                            \
                                                                                                      "ype"                                                                                                                             \
                                                                                                      "\":"                                                                                                                             \
                                                                                                      "\"NV"                                                                                                                            \
                                                                                                      "LINK"                                                                                                                            \
                                                                                                      "_"                                                                                                                               \
                                                                                                      "BAND"                                                                                                                            \
                                                                                                      "WIDT"                                                                                                                            \
                                                                                                      "H_"                                                                                                                              \
                                                                                                      "TOTA"                                                                                                                            \
                                                                                                      "L\","                                                                                                                            \
                                                                                                      "\"la"                                                                                                                            \
                                                                                                      "bels"                                                                                                                            \
                                                                                                      "\":{"                                                                                                                            \
                                                                                                      "\"gp"                                                                                                                            \
                                                                                                      "u\":"                                                                                                                            \
                                                                                                      "\"0"                                                                                                                             \
                                                                                                      "\","                                                                                                                             \
                                                                                                      "\"no"                                                                                                                            \
                                                                                                      "de\""                                                                                                                            \
                                                                                                      ":\"n"                                                                                                                            \
                                                                                                      "ode-"                                                                                                                            \
                                                                                                      "1\"}"                                                                                                                            \
                                                                                                      ",\"v"                                                                                                                            \
                                                                                                      "alue"                                                                                                                            \
                                                                                                      "s\":"                                                                                                                            \
                                                                                                      "[" PT(                                                                                                                           \
                                                                                                          "1500",                                                                                                                       \
                                                                                                          "14"                                                                                                                          \
                                                                                                          ":3"                                                                                                                          \
                                                                                                          "1:"                                                                                                                          \
                                                                                                          "0"                                                                                                                           \
                                                                                                          "0") "," PT("1700",                                                                                                           \
                                                                                                                      "14:32:00") "]"                                                                                                   \
                                                                                                                                  "}"                                                                                                   \
                                                                                                                                  ","                                                                                                   \
                                                                                                                                  "{"                                                                                                   \
                                                                                                                                  "\"type\":\"NVLINK_BANDWIDTH_TOTAL\",\"labels\":{\"gpu\":\"1\",\"node\":\"node-1\"},\"values\":[" PT( \
                                                                                                                                      "200",                                                                                            \
                                                                                                                                      "14:31:00") "," PT("200",                                                                         \
                                                                                                                                                         "14:32:00") "]}]}"

static void test_gpu_per_gpu(void **state)
{
    fx_t *f = *state;
    feed_gpu(f);
    qres_t r = query(f, TEN, "GPU_UTILIZATION,GPU_MEMORY_USAGE_BYTES,NVLINK_BANDWIDTH_TOTAL", T0,
                     T0 + 2 * MIN, "2", NULL);
    assert_json(r.json, GPU_JSON);
    golden("gpu", r.json);
    assert_int_equal(r.partial, 0);
    /* points read, all in [T0, T0+120s] (9 samples a series): util 3 series
     * (node-2 by label, GPU 0 and 1 by pod) = 27, FB 2 = 18, NVLINK 3 = 27 */
    assert_int_equal(r.points, 72);
}

static void test_gpu_csv(void **state)
{
    fx_t *f = *state;
    feed_gpu(f);
    qres_t r = query(f, TEN, "GPU_UTILIZATION", T0, T0 + 2 * MIN, "2", NULL);
    char *csv;
    size_t len;
    assert_ok(api_metrics_render_csv(r.resp, f->arena, &csv, &len));
    assert_json(csv, "type,timestamp,value,gpu,node\r\n"
                     "GPU_UTILIZATION,2024-12-20T14:31:00Z,30,0,node-1\r\n"
                     "GPU_UTILIZATION,2024-12-20T14:32:00Z,75,0,node-1\r\n"
                     "GPU_UTILIZATION,2024-12-20T14:31:00Z,100,1,node-1\r\n"
                     "GPU_UTILIZATION,2024-12-20T14:32:00Z,25,1,node-1\r\n"
                     "GPU_UTILIZATION,2024-12-20T14:31:00Z,5,0,node-2\r\n"
                     "GPU_UTILIZATION,2024-12-20T14:32:00Z,5,0,node-2\r\n");
    assert_int_equal(len, strlen(csv));
}

/* ---- counters: CPU rate with a reset, NIM increases ---------------------------- */

static void feed_cpu(fx_t *f)
{
    workload_info(f);
    pod_info(f, TEN, "train-0", "node-1", -60, 180);
    /* main: prev for b1 is the sample at -15 s (100): b1 = 115-100 = 15 s of
     * CPU in 60 s = 0.25 cores; b2 resets at 75 s (115 -> 3):
     * 45 - 115 + 115 = 45 -> 0.75 cores. */
    put15(f, TEN, "container_cpu_usage_seconds_total",
          KV({ "container", "main" }, { "namespace", "team-a" }, { "pod", "train-0" }, { "cpu", "total" }),
          -15, VALS(100, 103, 106, 109, 112, 115, 3, 6, 9, 45));
    /* sidecar: b1 = 30 - 0 = 30 -> 0.5; b2 = 60 - 30 = 30 -> 0.5.
     * Sums: 0.75 and 1.25. */
    put15(f, TEN, "container_cpu_usage_seconds_total",
          KV({ "container", "sidecar" }, { "namespace", "team-a" }, { "pod", "train-0" }, { "cpu", "total" }),
          -15, VALS(0, 6, 12, 18, 24, 30, 37.5, 45, 52.5, 60));
    /* excluded: the pause container and the pod-level cgroup (no container) */
    put15(f, TEN, "container_cpu_usage_seconds_total",
          KV({ "container", "POD" }, { "namespace", "team-a" }, { "pod", "train-0" }), -15,
          VALS(0, 1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 7e6, 8e6, 9e6));
    put15(f, TEN, "container_cpu_usage_seconds_total", KV({ "namespace", "team-a" }, { "pod", "train-0" }),
          -15, VALS(0, 1e6, 2e6, 3e6, 4e6, 5e6, 6e6, 7e6, 8e6, 9e6));
    /* excluded: the same series in another tenant */
    pod_info(f, OTHER_TEN, "train-0", "node-1", -60, 180);
    put15(f, OTHER_TEN, "container_cpu_usage_seconds_total",
          KV({ "container", "main" }, { "namespace", "team-a" }, { "pod", "train-0" }, { "cpu", "total" }),
          -15, VALS(0, 1e9, 2e9, 3e9, 4e9, 5e9, 6e9, 7e9, 8e9, 9e9));
    /* working set: main b1 avg(100..500) = 300, b2 1000; sidecar 50:
     * sums 350 and 1050 */
    put15(f, TEN, "container_memory_working_set_bytes",
          KV({ "container", "main" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0,
          VALS(100, 200, 300, 400, 500, 1000, 1000, 1000, 1000));
    const15(f, TEN, "container_memory_working_set_bytes",
            KV({ "container", "sidecar" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0, 120, 50);
    const15(f, TEN, "container_memory_working_set_bytes",
            KV({ "container", "POD" }, { "namespace", "team-a" }, { "pod", "train-0" }), 0, 120, 1e9);
    /* NIM successes (unprefixed name): b1 = 5 - 0 = 5; b2 resets at 75 s
     * (5 -> 2): 8 - 5 + 5 = 8.  The vllm: series of the same workload is
     * ignored because the unprefixed name has data (no double count). */
    put15(f, TEN, "request_success_total",
          KV({ "namespace", "team-a" }, { "pod", "train-0" }, { "model_name", "llama" }), -15,
          VALS(0, 1, 2, 3, 4, 5, 2, 4, 6, 8));
    put15(f, TEN, "vllm:request_success_total",
          KV({ "namespace", "team-a" }, { "pod", "train-0" }, { "model_name", "llama" }), -15,
          VALS(0, 100, 200, 300, 400, 500, 600, 700, 800, 900));
    /* vllm: name only: failures b1 = 1 - 0, b2 = 3 - 1 */
    put15(f, TEN, "vllm:request_failure_total", KV({ "workload_id", WL }, { "model_name", "llama" }), -15,
          VALS(0, 0, 0, 1, 1, 1, 1, 2, 2, 3));
}

static void test_counters_rate_and_increase(void **state)
{
    fx_t *f = *state;
    feed_cpu(f);
    qres_t r = query(f, TEN,
                     "CPU_USAGE_CORES,CPU_MEMORY_USAGE_BYTES,NIM_REQUEST_SUCCESS_TOTAL,"
                     "NIM_REQUEST_FAILURE_TOTAL",
                     T0, T0 + 2 * MIN, "2", NULL);
    assert_json(
        r.json,
        "{\"measurements\":["
        "{\"type\":\"CPU_USAGE_CORES\",\"values\":[" PT("0.75", "14:31:00") "," PT(
            "1.25",
            "14:32:00") "]},"
                        "{\"type\":\"CPU_MEMORY_USAGE_BYTES\",\"values\":[" PT("350", "14:31:00") "," PT(
                            "1050",
                            "14:32:00") "]},"
                                        "{\"type\":\"NIM_REQUEST_SUCCESS_TOTAL\",\"values\":[" PT(
                                            "5",
                                            "14:31:00") "," PT("8",
                                                               "14:32:00") "]},"
                                                                           "{\"type\":\"NIM_REQUEST_"
                                                                           "FAILURE_TOTAL\",\"values\":"
                                                                           "[" PT("1", "14:31:00") "," PT(
                                                                               "2", "14:32:00") "]}]}");
    golden("counters", r.json);
    /* counters look back 5 m for their baseline: the -15 s sample is read.
     * CPU 2 series x 10 = 20; memory 2 x 9 = 18; successes 10 (the vllm:
     * alternative is not read); failures 10. */
    assert_int_equal(r.points, 58);
}

/* ---- NIM histograms ---------------------------------------------------------- */

/* Two replicas of WL (workload_id label, vllm: names).  Every bucket series
 * is 0 up to 45 s, A1 from 60 s, A2 from 120 s to 180 s.  Query [T0, T0+3m],
 * N=3: b1 increase = A1, b2 = A2 - A1, b3 = 0.
 *   le       0.25 0.5  1  2 +Inf
 *   r0 A1      1   3   4  5  5     A2  1 4 5 7 7
 *   r1 A1      1   3   4  5  5     A2  1 4 6 7 7
 *   sum b1     2   6   8 10 10     b2  0 2 3 4 4     b3 all 0 */
static void feed_hist(fx_t *f)
{
    workload_info(f);
    static const char *les[] = { "0.25", "0.5", "1", "2", "+Inf" };
    static const double a1[2][5] = { { 1, 3, 4, 5, 5 }, { 1, 3, 4, 5, 5 } };
    static const double a2[2][5] = { { 1, 4, 5, 7, 7 }, { 1, 4, 6, 7, 7 } };
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 5; j++) {
            double v[14];
            for (int i = 0; i < 14; i++) {
                int t = -15 + 15 * i;
                v[i] = t <= 45 ? 0 : t < 120 ? a1[r][j] : a2[r][j];
            }
            put15(f, TEN, "vllm:time_to_first_token_seconds_bucket",
                  KV({ "workload_id", WL }, { "replica", r ? "1" : "0" }, { "le", les[j] }), -15, v, 14);
        }
}

/* p50/p90/p99 as Prometheus' histogram_quantile:
 * b1 (total 10): p50 rank 5 in (0.25,0.5]: 0.25 + 0.25 x (5-2)/4 = 0.4375;
 *   p90 rank 9 in (1,2]: 1 + 1 x (9-8)/2 = 1.5;
 *   p99 rank 9.9 in (1,2]: 1 + (9.9-8)/2 = 1.95 (9.9 - 8 is 1.9000000000000004
 *   in binary, hence 1.9500000000000002).
 * b2 (total 4): p50 rank 2 in (0.25,0.5]: 0.25 + 0.25 x 2/2 = 0.5;
 *   p90 rank 3.6 in (1,2]: 1 + (3.6-3)/1 = 1.6; p99 rank 3.96: 1.96.
 * b3: total 0, omitted. */
#define HIST_JSON                                                                                            \
    "{\"measurements\":[{\"type\":\"NIM_NUM_REQUESTS_RUNNING\",\"values\":[]}],"                             \
    "\"histogram\":["                                                                                        \
    "{\"type\":\"NIM_TIME_TO_FIRST_TOKEN_SECONDS\",\"values\":["                                             \
    "{\"timestamp\":\"2024-12-20T14:31:00Z\",\"data\":{\"0.25\":\"2\",\"0.5\":\"6\",\"1\":\"8\",\"2\":"      \
    "\"10\",\"+Inf\":\"10\"}},"                                                                              \
    "{\"timestamp\":\"2024-12-20T14:32:00Z\",\"data\":{\"0.25\":\"0\",\"0.5\":\"2\",\"1\":\"3\",\"2\":"      \
    "\"4\",\"+Inf\":\"4\"}},"                                                                                \
    "{\"timestamp\":\"2024-12-20T14:33:00Z\",\"data\":{\"0.25\":\"0\",\"0.5\":\"0\",\"1\":\"0\",\"2\":"      \
    "\"0\",\"+Inf\":\"0\"}}]},"                                                                              \
    "{\"type\":\"NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES\",\"values\":["                                 \
    "{\"timestamp\":\"2024-12-20T14:31:00Z\",\"data\":{\"p50\":\"0.4375\",\"p90\":\"1.5\",\"p99\":\"1."      \
    "9500000000000002\"}},"                                                                                  \
    "{\"timestamp\":\"2024-12-20T14:32:00Z\",\"data\":{\"p50\":\"0.5\",\"p90\":\"1.6\",\"p99\":\"1.96\"}}]}" \
    ","                                                                                                      \
    "{\"type\":\"NIM_E2E_REQUEST_LATENCY_SECONDS\",\"values\":[]}]}"

static void test_nim_histograms(void **state)
{
    fx_t *f = *state;
    feed_hist(f);
    /* WL must be known to the registry: one pod of it */
    pod_info(f, TEN, "nim-0", "node-1", 0, 180);
    qres_t r = query(f, TEN,
                     "NIM_TIME_TO_FIRST_TOKEN_SECONDS,NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,"
                     "NIM_E2E_REQUEST_LATENCY_SECONDS,NIM_NUM_REQUESTS_RUNNING",
                     T0, T0 + 3 * MIN, "3", NULL);
    assert_json(r.json, HIST_JSON);
    golden("histogram", r.json);
    char *csv;
    assert_ok(api_metrics_render_csv(r.resp, f->arena, &csv, NULL));
    const char *want_head = "type,timestamp,key,value\r\n"
                            "NIM_TIME_TO_FIRST_TOKEN_SECONDS,2024-12-20T14:31:00Z,0.25,2\r\n"
                            "NIM_TIME_TO_FIRST_TOKEN_SECONDS,2024-12-20T14:31:00Z,0.5,6\r\n";
    assert_memory_equal(csv, want_head, strlen(want_head));
    assert_non_null(
        strstr(csv, "\r\nNIM_TIME_TO_FIRST_TOKEN_SECONDS,2024-12-20T14:33:00Z,+Inf,0\r\n"
                    "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,2024-12-20T14:31:00Z,p50,0.4375\r\n"));
    /* last rows: b2's p99; b3 has no percentile row */
    const char *tail = "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,2024-12-20T14:32:00Z,p99,1.96\r\n";
    assert_string_equal(csv + strlen(csv) - strlen(tail), tail);
    /* 3 steps x 5 les + 2 steps x 3 quantiles + the header */
    size_t rows = 0;
    for (const char *p = csv; *p; p++) rows += *p == '\n';
    assert_int_equal(rows, 1 + 15 + 6);
}

/* ---- requests, limits, pod counts over pods that come and go -------------------- */

/* Pod A: runai_pod_info from -60 s to 60 s, stale marker at 75 s, so its
 * window is [T0-60s, T0+75s).  Pod B: from 75 s.  Pod C: throughout.  Pod D:
 * 0..30 s only (its window runs 5 m past its last sample). */
static void feed_pods(fx_t *f)
{
    workload_info(f);
    pod_info(f, TEN, "train-a", "node-1", -60, 60);
    tsdb_sample_t st = { T0 + 75 * SEC, stale_nan() };
    put(f, TEN, "runai_pod_info",
        KV({ "namespace", "team-a" }, { "pod", "train-a" }, { "workload_id", WL }, { "node", "node-1" },
           { "nodepool", "default" }),
        &st, 1);
    pod_info(f, TEN, "train-b", "node-2", 75, 180);
    pod_info(f, TEN, "train-c", "node-1", -60, 180);
    pod_info(f, TEN, "train-d", "node-3", 0, 30);
#define REQ(pod, res) \
    KV({ "container", "main" }, { "namespace", "team-a" }, { "pod", pod }, { "resource", res })
    /* cpu requests: b1 = A 0.5 + C 0.25 = 0.75 (B's 100 at 30 s is before its
     * window); b2 = B 2 + C 0.25 = 2.25 (A's samples after 75 s are outside
     * its window) */
    const15(f, TEN, "kube_pod_container_resource_requests", REQ("train-a", "cpu"), -60, 120, 0.5);
    put15(f, TEN, "kube_pod_container_resource_requests", REQ("train-b", "cpu"), 30,
          VALS(100, 100, 100, 2, 2, 2, 2));
    const15(f, TEN, "kube_pod_container_resource_requests", REQ("train-c", "cpu"), -60, 120, 0.25);
    /* memory requests: b1 = 1073741824 + 536870912 = 1610612736;
     * b2 = 4294967296 + 536870912 = 4831838208 */
    const15(f, TEN, "kube_pod_container_resource_requests", REQ("train-a", "memory"), -60, 120, 1073741824);
    const15(f, TEN, "kube_pod_container_resource_requests", REQ("train-b", "memory"), 75, 120, 4294967296);
    const15(f, TEN, "kube_pod_container_resource_requests", REQ("train-c", "memory"), -60, 120, 536870912);
    /* cpu limits: b1 = 1 + 0.5, b2 = 4 + 0.5; no memory limits at all */
    const15(f, TEN, "kube_pod_container_resource_limits", REQ("train-a", "cpu"), -60, 120, 1);
    const15(f, TEN, "kube_pod_container_resource_limits", REQ("train-b", "cpu"), 75, 120, 4);
    const15(f, TEN, "kube_pod_container_resource_limits", REQ("train-c", "cpu"), -60, 120, 0.5);
#undef REQ
    /* Running: b1 = A 1 + C 1 = 2; b2 = B (last 1) + C (last 0) = 1.
     * B's Pending series is not Running. */
#define PH(pod, ph) KV({ "namespace", "team-a" }, { "pod", pod }, { "phase", ph })
    const15(f, TEN, "kube_pod_status_phase", PH("train-a", "Running"), 0, 60, 1);
    put15(f, TEN, "kube_pod_status_phase", PH("train-b", "Running"), 75, VALS(0, 0, 0, 1));
    put15(f, TEN, "kube_pod_status_phase", PH("train-b", "Pending"), 75, VALS(1, 1, 1, 0));
    put15(f, TEN, "kube_pod_status_phase", PH("train-c", "Running"), 0, VALS(1, 1, 1, 1, 1, 1, 1, 0, 0));
#undef PH
    /* workload-level series: allocation last b1 = 2 (at 60 s), b2 = 3 */
    put15(f, TEN, "runai_workload_gpu_allocation", KV({ "workload_id", WL }), -60,
          VALS(1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3));
    const15(f, TEN, "runai_workload_gpu_memory_request_bytes", KV({ "workload_id", WL }), -60, 120,
            42949672960.0);
}

/* POD_COUNT (runai_pod_info present): b1 = A, C, D = 3; b2 = B, C = 2 (A's
 * stale marker at 75 s is no presence). */
#define PODS_JSON                                                                                                                               \
    "{\"measurements\":["                                                                                                                       \
    "{\"type\":\"CPU_REQUEST_CORES\",\"values\":[" PT("0.75", "14:31:00") "," PT(                                                               \
        "2.25",                                                                                                                                 \
        "14:32:00") "]},"                                                                                                                       \
                    "{\"type\":\"CPU_LIMIT_CORES\",\"values\":[" PT("1.5", "14:31:00") "," PT(                                                  \
                        "4.5",                                                                                                                  \
                        "14:32:00") "]},"                                                                                                       \
                                    "{\"type\":\"CPU_MEMORY_REQUEST_BYTES\",\"values\":[" PT("1610612736", "14:31:00") "," PT(                  \
                                        "4831838208",                                                                                           \
                                        "14:32:00") "]},"                                                                                       \
                                                    "{\"type\":\"CPU_MEMORY_LIMIT_BYTES\",\"values\":[]},"                                      \
                                                    "{\"type\":\"POD_COUNT\",\"values\":[" PT(                                                  \
                                                        "3",                                                                                    \
                                                        "14:31:"                                                                                \
                                                        "00") "," PT("2",                                                                       \
                                                                     "14:32:00") "]},"                                                          \
                                                                                 "{\"type\":\"RUNNING_POD_"                                     \
                                                                                 "COUNT\","                                                     \
                                                                                 "\"values\":[" PT(                                             \
                                                                                     "2",                                                       \
                                                                                     "14"                                                       \
                                                                                     ":3"                                                       \
                                                                                     "1:"                                                       \
                                                                                     "0"                                                        \
                                                                                     "0") "," PT("1",                                           \
                                                                                                 "14:"                                          \
                                                                                                 "32:"                                          \
                                                                                                 "00") "]},"                                    \
                                                                                                       "{\""                                    \
                                                                                                       "typ"                                    \
                                                                                                       "e\""                                    \
                                                                                                       ":\""                                    \
                                                                                                       "GPU"                                    \
                                                                                                       "_"                                      \
                                                                                                       "ALL"                                    \
                                                                                                       "OCA"                                    \
                                                                                                       "TIO"                                    \
                                                                                                       "N\""                                    \
                                                                                                       ","                                      \
                                                                                                       "\"v"                                    \
                                                                                                       "alu"                                    \
                                                                                                       "es"                                     \
                                                                                                       "\":"                                    \
                                                                                                       "[" PT("2", "14:31:00") "," PT(          \
                                                                                                           "3",                                 \
                                                                                                           "14:"                                \
                                                                                                           "32:"                                \
                                                                                                           "00") "]},"                          \
                                                                                                                 "{\"typ"                       \
                                                                                                                 "e\":"                         \
                                                                                                                 "\"GPU_"                       \
                                                                                                                 "MEMORY"                       \
                                                                                                                 "_REQUE"                       \
                                                                                                                 "ST_"                          \
                                                                                                                 "BYTES"                        \
                                                                                                                 "\","                          \
                                                                                                                 "\"valu"                       \
                                                                                                                 "es\":"                        \
                                                                                                                 "[" PT(                        \
                                                                                                                     "42"                       \
                                                                                                                     "94"                       \
                                                                                                                     "96"                       \
                                                                                                                     "72"                       \
                                                                                                                     "96"                       \
                                                                                                                     "0",                       \
                                                                                                                     "14"                       \
                                                                                                                     ":3"                       \
                                                                                                                     "1:"                       \
                                                                                                                     "0"                        \
                                                                                                                     "0") "," PT("42949672960", \
                                                                                                                                 "14:32:00") "]}]}"

static void test_pods_requests_and_counts(void **state)
{
    fx_t *f = *state;
    feed_pods(f);
    qres_t r = query(f, TEN,
                     "CPU_REQUEST_CORES,CPU_LIMIT_CORES,CPU_MEMORY_REQUEST_BYTES,CPU_MEMORY_LIMIT_BYTES,"
                     "POD_COUNT,RUNNING_POD_COUNT,GPU_ALLOCATION,GPU_MEMORY_REQUEST_BYTES",
                     T0, T0 + 2 * MIN, "2", NULL);
    assert_json(r.json, PODS_JSON);
    golden("pods", r.json);
    assert_int_equal(r.partial, 0);
}

/* Another tenant asking for WL: the workload does not exist there. */
static void test_unknown_workload_and_tenant(void **state)
{
    fx_t *f = *state;
    feed_pods(f);
    api_metrics_request_t req;
    const char *mt[] = { "POD_COUNT" };
    char err[128];
    assert_ok(api_metrics_parse(mt, 1, "2024-12-20T14:30:00Z", "2024-12-20T14:32:00Z", "2", NULL, &req, err,
                                sizeof err));
    api_metrics_response_t *resp;
    assert_err(
        api_workload_metrics(f->reader, f->reg, OTHER_TEN, WL, &req, NULL, f->arena, &resp, err, sizeof err),
        STRATA_ENOTFOUND);
    assert_string_equal(err, "workload " WL " not found");
    assert_err(
        api_workload_metrics(f->reader, f->reg, TEN, WL_OTHER, &req, NULL, f->arena, &resp, err, sizeof err),
        STRATA_ENOTFOUND);
}

/* A type over the per-type sample limit fails alone: values null, labels
 * {"error"}, the response is partial (207); the other type is answered. */
static void test_partial_on_sample_limit(void **state)
{
    fx_t *f = *state;
    feed_pods(f);
    api_metrics_options_t o;
    api_metrics_options_init(&o);
    /* CPU_REQUEST_CORES reads A 5 + B 4 + C 9 = 18 > 10 samples;
     * GPU_ALLOCATION reads 9 (0..120 s) */
    o.max_samples = 10;
    qres_t r = query(f, TEN, "CPU_REQUEST_CORES,GPU_ALLOCATION", T0, T0 + 2 * MIN, "2", &o);
    assert_int_equal(r.partial, 1);
    assert_json(r.json, "{\"measurements\":["
                        "{\"type\":\"CPU_REQUEST_CORES\",\"labels\":{\"error\":\"sample limit: more than 10 "
                        "points to read\"},\"values\":null},"
                        "{\"type\":\"GPU_ALLOCATION\",\"values\":[" PT("2", "14:31:00") "," PT(
                            "3", "14:32:00") "]}]}");
    golden("partial", r.json);
    char *csv;
    assert_ok(api_metrics_render_csv(r.resp, f->arena, &csv, NULL));
    assert_json(csv, "type,timestamp,value,error\r\n"
                     "CPU_REQUEST_CORES,,,sample limit: more than 10 points to read\r\n"
                     "GPU_ALLOCATION,2024-12-20T14:31:00Z,2,\r\n"
                     "GPU_ALLOCATION,2024-12-20T14:32:00Z,3,\r\n");
}

/* A backend over the store whose select takes 3 ms: with a 1 ms --query-timeout
 * the deadline has passed when the seam next looks. */
static int slow_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                       unsigned flags, int64_t deadline_ms, void **set)
{
    (void)deadline_ms;
    struct timespec ts = { 0, 3 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    /* the inner select adds the tenant matcher again: pass the others on */
    tsdb_matcher_t mm[API_READ_MAX_MATCHERS];
    size_t k = 0;
    int32_t tenant = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, INGEST_TENANT_LABEL) == 0)
            tenant = atoi(m[i].value);
        else
            mm[k++] = m[i];
    }
    return api_read_select(backend, tenant, flags, NULL, mm, k, mint, maxt, (api_read_set_t **)set);
}
static int slow_next(void *set) { return api_read_set_next(set); }
static const tsdb_label_t *slow_labels(void *set, size_t *n) { return api_read_set_labels(set, n); }
static int slow_samples(void *set, const tsdb_sample_t **s, size_t *n)
{
    return api_read_set_samples(set, s, n);
}
static void slow_free(void *set) { api_read_set_free(set); }

/* Past --query-timeout the whole request fails (STRATA_ETIMEOUT, 503 at the
 * route), naming the flag: not a 207 with one type failed, as a per-type
 * failure (the sample limit above) is. */
static void test_timeout_fails_the_request(void **state)
{
    fx_t *f = *state;
    feed_pods(f);
    static const api_read_ops_t ops = { slow_select, slow_next, slow_labels, slow_samples, NULL,
                                        slow_free,   NULL,      NULL,        NULL };
    api_read_source_t *slow;
    assert_ok(api_read_source_new(&ops, f->reader, 0, &slow));
    api_metrics_options_t o;
    api_metrics_options_init(&o);
    assert_int_equal(o.timeout_ms, 120000); /* the default: 2m */
    o.timeout_ms = 1;
    char s[STRATA_TIME_RFC3339_BUFSZ], e[STRATA_TIME_RFC3339_BUFSZ], err[256];
    assert_true(strata_time_format_rfc3339(T0, s, sizeof s) > 0);
    assert_true(strata_time_format_rfc3339(T0 + 2 * MIN, e, sizeof e) > 0);
    api_metrics_request_t req;
    const char *mt[] = { "CPU_REQUEST_CORES,GPU_ALLOCATION" };
    assert_ok(api_metrics_parse(mt, 1, s, e, "2", &o, &req, err, sizeof err));
    api_metrics_response_t *resp = NULL;
    assert_err(api_workload_metrics(slow, f->reg, TEN, WL, &req, &o, f->arena, &resp, err, sizeof err),
               STRATA_ETIMEOUT);
    assert_null(resp);
    assert_json(err,
                "query timeout: the read ran past --query-timeout (1 ms) (while reading CPU_REQUEST_CORES)");
    /* the same request without the slow backend is answered in full */
    o.timeout_ms = 0;
    qres_t r = query(f, TEN, "CPU_REQUEST_CORES,GPU_ALLOCATION", T0, T0 + 2 * MIN, "2", &o);
    assert_int_equal(r.partial, 0);
    api_read_source_free(slow);
}

/* ---- numberOfSamples = 0 ------------------------------------------------------- */

static void test_native_and_max_points(void **state)
{
    fx_t *f = *state;
    workload_info(f);
    pod_info(f, TEN, "train-0", "node-1", 0, 60);
    put15(f, TEN, "runai_workload_gpu_allocation", KV({ "workload_id", WL }), 0, VALS(1, 1, 2, 2, 2.5));
    /* [T0-5s, T0+60s]: each stored sample once, at its own timestamp */
    qres_t r = query(f, TEN, "GPU_ALLOCATION", T0 - 5 * SEC, T0 + 60 * SEC, "0", NULL);
    assert_json(
        r.json,
        "{\"measurements\":[{\"type\":\"GPU_ALLOCATION\",\"values\":[" PT("1", "14:30:00") "," PT(
            "1", "14:30:15") "," PT("2", "14:30:30") "," PT("2", "14:30:45") "," PT("2.5",
                                                                                    "14:31:00") "]}]}");
    golden("native", r.json);
    /* one pass: the 5 samples are read once */
    assert_int_equal(r.points, 5);

    /* 5 points > max_points 4: the whole request fails (the caller's 400) */
    api_metrics_options_t o;
    api_metrics_options_init(&o);
    o.max_points = 4;
    api_metrics_request_t req;
    const char *mt[] = { "GPU_ALLOCATION" };
    char err[256];
    assert_ok(api_metrics_parse(mt, 1, "2024-12-20T14:29:55Z", "2024-12-20T14:31:00Z", "0", &o, &req, err,
                                sizeof err));
    assert_int_equal(req.samples, 0);
    api_metrics_response_t *resp;
    assert_err(api_workload_metrics(f->reader, f->reg, TEN, WL, &req, &o, f->arena, &resp, err, sizeof err),
               STRATA_ELIMIT);
    assert_string_equal(err, "numberOfSamples=0: GPU_ALLOCATION has more than 4 points per series "
                             "in this range; use numberOfSamples 1..1000 or a shorter range");
    /* numberOfSamples above the range in ms: one bucket per ms, edges
     * -2, -1, 0, 1, 2, 3 ms; the sample at T0 is the bucket ending at T0 */
    r = query(f, TEN, "GPU_ALLOCATION", T0 - 2, T0 + 3, "20", NULL);
    assert_json(r.json,
                "{\"measurements\":[{\"type\":\"GPU_ALLOCATION\",\"values\":[" PT("1", "14:30:00") "]}]}");
    /* with 5 it fits */
    o.max_points = 5;
    r = query(f, TEN, "GPU_ALLOCATION", T0 - 5 * SEC, T0 + 60 * SEC, "0", &o);
    assert_non_null(strstr(r.json, PT("2.5", "14:31:00")));
}

#define SAMPLES(...)                          \
    ((const tsdb_sample_t[]){ __VA_ARGS__ }), \
        (sizeof((const tsdb_sample_t[]){ __VA_ARGS__ }) / sizeof(tsdb_sample_t))

/* numberOfSamples = 0 with scrapes that are not whole seconds (.611, .250)
 * and a query over [T0+0.5 s, T0+60.5 s]: every point is at a sample's own
 * timestamp (a grid would put them at .500 instants). */
static void test_native_own_timestamps(void **state)
{
    fx_t *f = *state;
    workload_info(f);
    const int64_t S = T0 + 500, E = T0 + 60 * SEC + 500;
    /* POD_COUNT: train-0 every 15 s at .611, train-1 at .611 twice, then at
     * 23.250 s: 2 pods at 0.611 and 15.611, 1 at 23.250, 30.611, 45.611
     * (the sample at 60.611 is after end). */
    put(f, TEN, "runai_pod_info",
        KV({ "namespace", "team-a" }, { "pod", "train-0" }, { "workload_id", WL }, { "node", "node-1" },
           { "nodepool", "default" }),
        SAMPLES({ T0 - 14389, 1 }, { T0 + 611, 1 }, { T0 + 15611, 1 }, { T0 + 30611, 1 }, { T0 + 45611, 1 },
                { T0 + 60611, 1 }));
    put(f, TEN, "runai_pod_info",
        KV({ "namespace", "team-a" }, { "pod", "train-1" }, { "workload_id", WL }, { "node", "node-1" },
           { "nodepool", "default" }),
        SAMPLES({ T0 + 611, 1 }, { T0 + 15611, 1 }, { T0 + 23250, 1 }));
    /* GPU_MEMORY_USAGE_BYTES: MiB x 1048576 per sample; the one before start,
     * the stale marker and the NaN are no points. */
    put(f, TEN, "DCGM_FI_DEV_FB_USED", KV({ "gpu", "0" }, { "Hostname", "node-1" }, { "workload_id", WL }),
        SAMPLES({ T0 - 9389, 999 }, { T0 + 611, 1024 }, { T0 + 10611, 2048 }, { T0 + 20611, stale_nan() },
                { T0 + 25000, NAN }, { T0 + 30611, 1.5 }));
    /* NVLINK: TX + RX at the same timestamp; RX alone at 15.250 s */
    put(f, TEN, "DCGM_FI_PROF_NVLINK_TX_BYTES",
        KV({ "gpu", "0" }, { "Hostname", "node-1" }, { "workload_id", WL }),
        SAMPLES({ T0 + 611, 100 }, { T0 + 10611, 200 }));
    put(f, TEN, "DCGM_FI_PROF_NVLINK_RX_BYTES",
        KV({ "gpu", "0" }, { "Hostname", "node-1" }, { "workload_id", WL }),
        SAMPLES({ T0 + 611, 5 }, { T0 + 10611, 7 }, { T0 + 15250, 9 }));
    /* CPU_USAGE_CORES: per sample, increase / seconds since the previous
     * sample, summed over pods at equal timestamps.  train-0: 2.5/10 at 0.611,
     * 2.5/10 at 10.611, reset to 3: 3/10 at 20.611, 0.5/5 at 25.611.
     * train-1 has no sample before start, so its first (0.611) is no point:
     * 4/10 at 10.611, 2/10 at 20.611.  Sums: 0.25, 0.65, 0.5, 0.1. */
    put(f, TEN, "container_cpu_usage_seconds_total",
        KV({ "container", "main" }, { "pod", "train-0" }, { "namespace", "team-a" }, { "workload_id", WL }),
        SAMPLES({ T0 - 9389, 10 }, { T0 + 611, 12.5 }, { T0 + 10611, 15 }, { T0 + 20611, 3 },
                { T0 + 25611, 3.5 }));
    put(f, TEN, "container_cpu_usage_seconds_total",
        KV({ "container", "main" }, { "pod", "train-1" }, { "namespace", "team-a" }, { "workload_id", WL }),
        SAMPLES({ T0 + 611, 0 }, { T0 + 10611, 4 }, { T0 + 20611, 6 }));
    /* NIM_REQUEST_SUCCESS_TOTAL: 7-5 = 2, 0, reset to 1: 1 */
    put(f, TEN, "request_success_total", KV({ "workload_id", WL }),
        SAMPLES({ T0 - 9389, 5 }, { T0 + 611, 7 }, { T0 + 10611, 7 }, { T0 + 20611, 1 }));
    /* Histogram: cumulative (0.5, 1, +Inf) = (1,2,2), (3,6,8), (3,8,10):
     * increases (2,4,6) at 0.611 and (0,2,2) at 10.611.  Percentiles at
     * 0.611 (total 6): p50 rank 3 in (0.5, 1]: 0.5 + 0.5 x 1/2 = 0.75; p90
     * rank 5.4 and p99 rank 5.94 are in +Inf: 1.  At 10.611 (total 2):
     * 0.5 + 0.5 x q = 0.75, 0.95, 0.995. */
    static const char *les[] = { "0.5", "1", "+Inf" };
    static const double cum[3][3] = { { 1, 2, 2 }, { 3, 6, 8 }, { 3, 8, 10 } };
    for (int j = 0; j < 3; j++)
        put(f, TEN, "time_to_first_token_seconds_bucket", KV({ "le", les[j] }, { "workload_id", WL }),
            SAMPLES({ T0 - 9389, cum[0][j] }, { T0 + 611, cum[1][j] }, { T0 + 10611, cum[2][j] }));

#define PM(v, ts) "{\"value\":\"" v "\",\"timestamp\":\"2024-12-20T14:30:" ts "Z\"}"
    qres_t r = query(f, TEN,
                     "POD_COUNT,GPU_MEMORY_USAGE_BYTES,NVLINK_BANDWIDTH_TOTAL,CPU_USAGE_CORES,"
                     "NIM_REQUEST_SUCCESS_TOTAL,NIM_TIME_TO_FIRST_TOKEN_SECONDS,"
                     "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES",
                     S, E, "0", NULL);
    assert_json(
        r.json,
        "{\"measurements\":["
        "{\"type\":\"POD_COUNT\",\"values\":[" PM("2", "00.611") "," PM("2", "15.611") "," PM("1", "23.250") "," PM("1", "30.611") "," PM(
            "1",
            "45.611") "]},"
                      "{\"type\":\"GPU_MEMORY_USAGE_BYTES\",\"labels\":{\"gpu\":\"0\","
                      "\"node\":\"node-1\"},"
                      "\"values\":[" PM("1073741824", "00.611") "," PM(
                          "2147483648",
                          "10."
                          "611") "," PM("1572864",
                                        "30.611") "]},"
                                                  "{\"type\":\"NVLINK_BANDWIDTH_TOTAL\",\"labels\":{"
                                                  "\"gpu\":\"0\",\"node\":\"node-1\"},"
                                                  "\"values\":[" PM("105", "00.611") "," PM(
                                                      "207",
                                                      "10."
                                                      "611") "," PM("9",
                                                                    "15.250") "]},"
                                                                              "{\"type\":\"CPU_USAGE_CORES\","
                                                                              "\"values\":"
                                                                              "[" PM("0.25", "00.611") "," PM(
                                                                                  "0.65",
                                                                                  "1"
                                                                                  "0"
                                                                                  "."
                                                                                  "6"
                                                                                  "1"
                                                                                  "1") "," PM("0.5",
                                                                                              "20.611") "," PM("0.1",
                                                                                                               "25.611") "]},"
                                                                                                                         "{\"type\":\"NIM_REQUEST_"
                                                                                                                         "SUCCESS_TOTAL\",\"values\":"
                                                                                                                         "[" PM("2", "00.611") "," PM("0", "10.611") "," PM(
                                                                                                                             "1",
                                                                                                                             "20.611") "]}],"
                                                                                                                                       "\"histogram\""
                                                                                                                                       ":["
                                                                                                                                       "{\"type\":"
                                                                                                                                       "\"NIM_TIME_"
                                                                                                                                       "TO_FIRST_"
                                                                                                                                       "TOKEN_"
                                                                                                                                       "SECONDS\","
                                                                                                                                       "\"values\":["
                                                                                                                                       "{\"timestamp"
                                                                                                                                       "\":\"2024-12-"
                                                                                                                                       "20T14:30:00."
                                                                                                                                       "611Z\","
                                                                                                                                       "\"data\":{"
                                                                                                                                       "\"0.5\":"
                                                                                                                                       "\"2\",\"1\":"
                                                                                                                                       "\"4\",\"+"
                                                                                                                                       "Inf\":\"6\"}}"
                                                                                                                                       ","
                                                                                                                                       "{\"timestamp"
                                                                                                                                       "\":\"2024-12-"
                                                                                                                                       "20T14:30:10."
                                                                                                                                       "611Z\","
                                                                                                                                       "\"data\":{"
                                                                                                                                       "\"0.5\":"
                                                                                                                                       "\"0\",\"1\":"
                                                                                                                                       "\"2\",\"+"
                                                                                                                                       "Inf\":\"2\"}}"
                                                                                                                                       "]},"
                                                                                                                                       "{\"type\":"
                                                                                                                                       "\"NIM_TIME_"
                                                                                                                                       "TO_FIRST_"
                                                                                                                                       "TOKEN_"
                                                                                                                                       "SECONDS_"
                                                                                                                                       "PERCENTILES\""
                                                                                                                                       ",\"values\":["
                                                                                                                                       "{\"timestamp"
                                                                                                                                       "\":\"2024-12-"
                                                                                                                                       "20T14:30:00."
                                                                                                                                       "611Z\","
                                                                                                                                       "\"data\":{"
                                                                                                                                       "\"p50\":\"0."
                                                                                                                                       "75\",\"p90\":"
                                                                                                                                       "\"1\","
                                                                                                                                       "\"p99\":"
                                                                                                                                       "\"1\"}},"
                                                                                                                                       "{\"timestamp"
                                                                                                                                       "\":\"2024-12-"
                                                                                                                                       "20T14:30:10."
                                                                                                                                       "611Z\","
                                                                                                                                       "\"data\":{"
                                                                                                                                       "\"p50\":\"0."
                                                                                                                                       "75\",\"p90\":"
                                                                                                                                       "\"0.95\","
                                                                                                                                       "\"p99\":"
                                                                                                                                       "\"0.995\"}}]}"
                                                                                                                                       "]}");
    golden("native_fractional", r.json);

    /* The counter's baseline is read from start - staleness: starting at
     * 0.700 s, the sample at 0.611 is the baseline and has no point. */
    r = query(f, TEN, "NIM_REQUEST_SUCCESS_TOTAL", T0 + 700, E, "0", NULL);
    assert_json(r.json, "{\"measurements\":[{\"type\":\"NIM_REQUEST_SUCCESS_TOTAL\",\"values\":[" PM(
                            "0", "10.611") "," PM("1", "20.611") "]}]}");
    /* CSV: the same timestamps */
    char *csv;
    r = query(f, TEN, "NVLINK_BANDWIDTH_TOTAL", S, E, "0", NULL);
    assert_ok(api_metrics_render_csv(r.resp, f->arena, &csv, NULL));
    assert_json(csv, "type,timestamp,value,gpu,node\r\n"
                     "NVLINK_BANDWIDTH_TOTAL,2024-12-20T14:30:00.611Z,105,0,node-1\r\n"
                     "NVLINK_BANDWIDTH_TOTAL,2024-12-20T14:30:10.611Z,207,0,node-1\r\n"
                     "NVLINK_BANDWIDTH_TOTAL,2024-12-20T14:30:15.250Z,9,0,node-1\r\n");
#undef PM
}

/* ---- validation ------------------------------------------------------------------ */

static void expect_invalid(const char *const *mt, size_t nmt, const char *start, const char *end,
                           const char *n, const api_metrics_options_t *o, const char *want)
{
    api_metrics_request_t req;
    char err[256];
    assert_err(api_metrics_parse(mt, nmt, start, end, n, o, &req, err, sizeof err), STRATA_EINVAL);
    if (strcmp(err, want) != 0) fail_msg("message \"%s\", want \"%s\"", err, want);
}

static void test_validation(void **state)
{
    (void)state;
    const char *S = "2024-12-20T14:30:00Z", *E = "2024-12-20T15:30:00Z";
    const char *one[] = { "GPU_UTILIZATION" };
    expect_invalid(NULL, 0, S, E, NULL, NULL, "metricType is required");
    expect_invalid((const char *[]){ "" }, 1, S, E, NULL, NULL, "metricType: empty value");
    expect_invalid((const char *[]){ "GPU_UTILIZATION,,POD_COUNT" }, 1, S, E, NULL, NULL,
                   "metricType: empty value");
    expect_invalid((const char *[]){ "GPU_UTILIZATION,gpu_utilization" }, 1, S, E, NULL, NULL,
                   "metricType: invalid value \"gpu_utilization\"");
    expect_invalid((const char *[]){ "CPU_USAGE" }, 1, S, E, NULL, NULL,
                   "metricType: invalid value \"CPU_USAGE\"");
    /* 11 values: 6 in one parameter, 5 in a repeated one */
    const char *eleven[] = { "GPU_UTILIZATION,GPU_MEMORY_USAGE_BYTES,GPU_MEMORY_REQUEST_BYTES,"
                             "CPU_USAGE_CORES,CPU_REQUEST_CORES,CPU_LIMIT_CORES",
                             "CPU_MEMORY_USAGE_BYTES,CPU_MEMORY_REQUEST_BYTES,CPU_MEMORY_LIMIT_BYTES,"
                             "POD_COUNT,RUNNING_POD_COUNT" };
    expect_invalid(eleven, 2, S, E, NULL, NULL, "metricType: at most 10 values allowed, got 11");
    expect_invalid(one, 1, NULL, E, NULL, NULL, "start is required");
    expect_invalid(one, 1, S, NULL, NULL, NULL, "end is required");
    expect_invalid(one, 1, "yesterday", E, NULL, NULL,
                   "start: invalid date-time \"yesterday\" (want RFC 3339, e.g. 2024-12-20T14:30:00Z)");
    expect_invalid(
        one, 1, S, "2024-12-20 15:30:00", NULL, NULL,
        "end: invalid date-time \"2024-12-20 15:30:00\" (want RFC 3339, e.g. 2024-12-20T14:30:00Z)");
    expect_invalid(one, 1, S, "1734708600", NULL, NULL,
                   "end: invalid date-time \"1734708600\" (want RFC 3339, e.g. 2024-12-20T14:30:00Z)");
    expect_invalid(one, 1, S, S, NULL, NULL, "end must be after start");
    /* 16:30+02:00 is 14:30Z: equal, not after */
    expect_invalid(one, 1, S, "2024-12-20T16:30:00+02:00", NULL, NULL, "end must be after start");
    expect_invalid(one, 1, E, S, NULL, NULL, "end must be after start");
    static const char *bad_n[] = { "1001", "-1", "abc", "", "20.0", "1e3", " 5", "99999999999999999999" };
    for (size_t i = 0; i < sizeof bad_n / sizeof bad_n[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "numberOfSamples: must be an integer from 0 to 1000, got \"%s\"",
                 bad_n[i]);
        expect_invalid(one, 1, S, E, bad_n[i], NULL, want);
    }
    api_metrics_options_t o;
    api_metrics_options_init(&o);
    o.max_range_ms = 30 * DAY;
    expect_invalid(one, 1, "2024-11-01T00:00:00Z", "2024-12-01T00:00:00.5Z", NULL, &o,
                   "end - start is 30d500ms, more than the maximum range 30d");

    /* valid forms: fractions, offsets, repeated + comma-separated, duplicates once */
    api_metrics_request_t req;
    char err[256];
    const char *mt[] = { "POD_COUNT,GPU_UTILIZATION", "POD_COUNT", "NVLINK_BANDWIDTH_TOTAL" };
    assert_ok(api_metrics_parse(mt, 3, "2024-12-20T14:30:00.250Z", "2024-12-20T17:30:00+02:00", NULL, &o,
                                &req, err, sizeof err));
    assert_int_equal(req.ntypes, 3);
    assert_int_equal(req.types[0], API_METRIC_POD_COUNT);
    assert_int_equal(req.types[1], API_METRIC_GPU_UTILIZATION);
    assert_int_equal(req.types[2], API_METRIC_NVLINK_BANDWIDTH_TOTAL);
    assert_int_equal(req.start_ms, T0 + 250);
    assert_int_equal(req.end_ms, T0 + HOUR);
    assert_int_equal(req.samples, 20);
    assert_ok(api_metrics_parse(one, 1, S, E, "0", NULL, &req, err, sizeof err));
    assert_int_equal(req.samples, 0);
    assert_ok(api_metrics_parse(one, 1, S, E, "1000", NULL, &req, err, sizeof err));
    assert_int_equal(req.samples, 1000);
    /* exactly the maximum range is allowed */
    assert_ok(api_metrics_parse(one, 1, "2024-11-01T00:00:00Z", "2024-12-01T00:00:00Z", NULL, &o, &req, err,
                                sizeof err));
    /* every spec name round-trips */
    for (int t = 0; t < API_METRIC_COUNT; t++) {
        enum api_metric_type got;
        assert_ok(api_metrics_type_parse(api_metrics_type_name((enum api_metric_type)t), &got));
        assert_int_equal(got, t);
    }
    assert_null(api_metrics_type_name(API_METRIC_COUNT));
}

/* ---- rollups: a 30-day range reads about as much as a 1-hour one ------------------- */

static void test_rollups_bound_points_read(void **state)
{
    fx_t *f = *state;
    workload_info(f);
    /* GPU allocation of WL every 15 s for 30 days from TD (midnight), value =
     * hours since TD, written in 15 blocks of 2 days (cut). */
    enum { PER_BLOCK = 2 * 24 * 240 };
    tsdb_sample_t *s = malloc(PER_BLOCK * sizeof *s);
    assert_non_null(s);
    for (int blk = 0; blk < 15; blk++) {
        for (int i = 0; i < PER_BLOCK; i++) {
            int64_t t = TD + ((int64_t)blk * PER_BLOCK + i) * 15 * SEC;
            s[i] = (tsdb_sample_t){ t, (double)((t - TD) / HOUR) };
        }
        put(f, TEN, "runai_workload_gpu_allocation", KV({ "workload_id", WL }), s, PER_BLOCK);
        assert_ok(tsdb_cut_head(f->db));
    }
    free(s);
    tsdb_sample_t last = { TD + 30 * DAY, 720 };
    put(f, TEN, "runai_workload_gpu_allocation", KV({ "workload_id", WL }), &last, 1);

    /* 30 days, N = 30: 1-day buckets, aligned on hours -> 1 h rollups, the
     * 720 intervals (TD, TD+1h] .. (TD+719h, TD+720h]: 720 points read
     * instead of 172801 raw samples.  Bucket i's last sample is at its end,
     * value 24 i. */
    qres_t wide = query(f, TEN, "GPU_ALLOCATION", TD, TD + 30 * DAY, "30", NULL);
    assert_int_equal(wide.points, 720);
    assert_non_null(strstr(wide.json, "{\"measurements\":[{\"type\":\"GPU_ALLOCATION\",\"values\":["
                                      "{\"value\":\"24\",\"timestamp\":\"2024-12-21T00:00:00Z\"},"
                                      "{\"value\":\"48\",\"timestamp\":\"2024-12-22T00:00:00Z\"},"));
    assert_non_null(strstr(wide.json, "{\"value\":\"720\",\"timestamp\":\"2025-01-19T00:00:00Z\"}]}]}"));
    size_t npts = 0;
    for (const char *p = wide.json; (p = strstr(p, "\"value\"")); p++) npts++;
    assert_int_equal(npts, 30);

    /* 1 hour, N = 20: 3-minute buckets read raw: 241 samples */
    qres_t narrow = query(f, TEN, "GPU_ALLOCATION", TD + 10 * DAY, TD + 10 * DAY + HOUR, "20", NULL);
    assert_int_equal(narrow.points, 241);
    /* bounded: within 3x of the 1-hour read, and < 1% of the raw samples */
    assert_true(wide.points <= 3 * narrow.points);
    assert_true(wide.points * 100 < 172801);

    /* A pod-joined series read from rollups: pod train-r of WL is active
     * from TD+3d (runai_pod_info every 15 s up to TD+5d-15s, window end =
     * that + 5 m staleness).  Its working-set series runs all 30 days at 1.
     * Rollup intervals (t-1h, t] overlapping the window are kept: the one
     * ending TD+3d (it holds the sample at TD+3d: bucket 3), those of days
     * 4 and 5, and the one ending TD+5d+1h (the staleness tail: bucket 6),
     * exactly the buckets the raw samples of the window fall in. */
    {
        enum { NP = 2 * 24 * 240 };
        tsdb_sample_t *ps = malloc(NP * sizeof *ps);
        assert_non_null(ps);
        for (int i = 0; i < NP; i++) ps[i] = (tsdb_sample_t){ TD + 3 * DAY + (int64_t)i * 15 * SEC, 1 };
        put(f, TEN, "runai_pod_info",
            KV({ "namespace", "team-a" }, { "pod", "train-r" }, { "workload_id", WL }, { "node", "node-9" }),
            ps, NP);
        free(ps);
        enum { NM = 30 * 24 * 240 };
        tsdb_sample_t *ms = malloc(NM * sizeof *ms);
        assert_non_null(ms);
        for (int i = 0; i < NM; i++) ms[i] = (tsdb_sample_t){ TD + (int64_t)i * 15 * SEC, 1 };
        put(f, TEN, "container_memory_working_set_bytes",
            KV({ "namespace", "team-a" }, { "pod", "train-r" }, { "container", "main" }), ms, NM);
        free(ms);
        qres_t pr = query(f, TEN, "CPU_MEMORY_USAGE_BYTES", TD, TD + 30 * DAY, "30", NULL);
        assert_json(pr.json, "{\"measurements\":[{\"type\":\"CPU_MEMORY_USAGE_BYTES\",\"values\":["
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-23T00:00:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-24T00:00:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:00:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-26T00:00:00Z\"}]}]}");
        /* around the window's end, 1 hour at N = 4: 15-minute buckets, aligned
         * to 5 m, so 5 m rollups (12 read); the window ends at TD+5d-15s+5m, so
         * the interval (TD+5d+10m, TD+5d+15m] is outside it and the last bucket
         * gets nothing */
        qres_t rr = query(f, TEN, "CPU_MEMORY_USAGE_BYTES", TD + 5 * DAY - 30 * MIN, TD + 5 * DAY + 30 * MIN,
                          "4", NULL);
        assert_json(rr.json, "{\"measurements\":[{\"type\":\"CPU_MEMORY_USAGE_BYTES\",\"values\":["
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-24T23:45:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:00:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:15:00Z\"}]}]}");
        assert_int_equal(rr.points, 12);
        /* the same read raw: 54 minutes at N = 6, 9-minute buckets (not a
         * multiple of 5 m, under 1 h).  The store cuts the window: samples
         * from TD+5d-27m to TD+5d (109) and after it while the window lasts,
         * i.e. before TD+5d+4m45s (15 s .. 4m30s: 18) = 127 */
        qres_t rw = query(f, TEN, "CPU_MEMORY_USAGE_BYTES", TD + 5 * DAY - 27 * MIN, TD + 5 * DAY + 27 * MIN,
                          "6", NULL);
        assert_json(rw.json, "{\"measurements\":[{\"type\":\"CPU_MEMORY_USAGE_BYTES\",\"values\":["
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-24T23:42:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-24T23:51:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:00:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:09:00Z\"}]}]}");
        assert_int_equal(rw.points, 127);
        /* mixed: 2 h 2 m at N = 4, 30.5-minute buckets off the 5 m grid: whole
         * 5 m intervals from rollups, the edges raw, the same answer as raw.
         * The store cuts the window [TD+5d-61m, TD+5d+4m45s): 245 samples up
         * to TD+5d, 18 after it, and the 12 intervals lying whole inside it,
         * (TD+5d-60m, TD+5d-55m] .. (TD+5d-5m, TD+5d] = 275 points */
        qres_t mx = query(f, TEN, "CPU_MEMORY_USAGE_BYTES", TD + 5 * DAY - 61 * MIN, TD + 5 * DAY + 61 * MIN,
                          "4", NULL);
        assert_json(mx.json, "{\"measurements\":[{\"type\":\"CPU_MEMORY_USAGE_BYTES\",\"values\":["
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-24T23:29:30Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:00:00Z\"},"
                             "{\"value\":\"1\",\"timestamp\":\"2024-12-25T00:30:30Z\"}]}]}");
        assert_int_equal(mx.points, 275);
    }

    /* 3 days at N = 18 (4 h buckets): 72 rollup points */
    qres_t mid = query(f, TEN, "GPU_ALLOCATION", TD + DAY, TD + 4 * DAY, "18", NULL);
    assert_int_equal(mid.points, 72);
    assert_non_null(strstr(mid.json, "{\"value\":\"28\",\"timestamp\":\"2024-12-21T04:00:00Z\"}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_gpu_per_gpu, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gpu_csv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counters_rate_and_increase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nim_histograms, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pods_requests_and_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_workload_and_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partial_on_sample_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_fails_the_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_and_max_points, setup, teardown),
        cmocka_unit_test_setup_teardown(test_native_own_timestamps, setup, teardown),
        cmocka_unit_test(test_validation),
        cmocka_unit_test_setup_teardown(test_rollups_bound_points_read, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
