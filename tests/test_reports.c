/*
 * test_reports.c: the report store (api/reports/) and the consumption CSV
 * and aggregation (api/reports/reports_csv.c): POST body validation, lifecycle,
 * failure, delete/cancel, list/count/filter/sort/search/paging, tenants,
 * persistence, crash recovery (a SIGKILLed child), retention, and the exact
 * integrals of the holding rule.  The clock is injected; no test depends on
 * timing for its verdict (waits have generous safety timeouts only).
 */
#include "test_helpers.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reports.h"
#include "strata_log.h"

#define T0   INT64_C(1734705000000) /* 2024-12-20T14:30:00Z */
#define DAY  INT64_C(86400000)
#define HOUR INT64_C(3600000)
#define MIN  INT64_C(60000)
#define D1   INT64_C(1733011200000) /* 2024-12-01T00:00:00Z */

static _Atomic int64_t g_now = T0;
static int64_t now_fn(void *ctx)
{
    (void)ctx;
    return atomic_load(&g_now);
}

/* ---- helpers ------------------------------------------------------------------ */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

static char *fd_slurp(int fd)
{
    char *s = malloc(1 << 16);
    size_t n = 0;
    ssize_t k;
    while ((k = read(fd, s + n, (1 << 16) - 1 - n)) > 0) n += (size_t)k;
    s[n] = 0;
    return s;
}

/* Files in dir/reports, sorted names joined by spaces. */
static void list_files(const char *dir, char *out, size_t cap)
{
    char path[600];
    snprintf(path, sizeof path, "%s/reports", dir);
    struct dirent **nl;
    int n = scandir(path, &nl, NULL, alphasort);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        if (nl[i]->d_name[0] != '.') {
            if (out[0]) strncat(out, " ", cap - strlen(out) - 1);
            strncat(out, nl[i]->d_name, cap - strlen(out) - 1);
        }
        free(nl[i]);
    }
    if (n >= 0) free(nl);
}

static api_reports_t *open_store(const char *dir, int workers, api_report_generate_fn gen, void *ctx)
{
    api_reports_options_t o;
    api_reports_options_init(&o);
    o.workers = workers;
    o.generate = gen;
    o.generate_ctx = ctx;
    o.now_ms = now_fn;
    api_reports_t *st = NULL;
    assert_ok(api_reports_open(dir, &o, &st));
    return st;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* Creates a report and returns its id (static buffer per call site is fine). */
static void create_ok(api_reports_t *st, int32_t tenant, const char *by, const char *body, char id[37])
{
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    int rc = api_reports_create(st, tenant, by, body, strlen(body), a, &r);
    if (rc) fail_msg("create failed: %s (%s)", strata_strerror(rc), r.error ? r.error : "");
    json_t *j = json_loads(r.json, 0, NULL);
    assert_non_null(j);
    snprintf(id, 37, "%s", jstr(j, "id"));
    json_decref(j);
    strata_arena_free(a);
}

static char *simple_body(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap,
             "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-03T00:00:00Z\"}", name);
    return buf;
}

static json_t *get_json(api_reports_t *st, int32_t tenant, const char *id)
{
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    assert_ok(api_reports_get(st, tenant, id, a, &r));
    json_t *j = json_loads(r.json, 0, NULL);
    strata_arena_free(a);
    assert_non_null(j);
    return j;
}

static void assert_status(api_reports_t *st, int32_t tenant, const char *id, const char *want)
{
    json_t *j = get_json(st, tenant, id);
    assert_string_equal(jstr(j, "status"), want);
    json_decref(j);
}

/* ---- the data every generator in these tests reports on -------------------------- */

#define NS 512
static tsdb_sample_t s_alloc_a[NS], s_alloc_b[NS], s_util_a[NS], s_cpu_a[NS];
static size_t n_alloc_a, n_alloc_b, n_util_a, n_cpu_a;
static api_report_series_t ser_util_a, ser_cpu_a;
static api_report_workload_t W[2];

static double stale_nan(void) { return test_bits_double(TSDB_STALE_NAN_BITS); }

/* Samples every `step` from t0 (inclusive) to t1 (exclusive) of value v, then
 * a stale marker at t1. */
static size_t ramp(tsdb_sample_t *s, int64_t t0, int64_t t1, int64_t step, double v)
{
    size_t n = 0;
    for (int64_t t = t0; t < t1; t += step) s[n++] = (tsdb_sample_t){ t, v };
    s[n++] = (tsdb_sample_t){ t1, stale_nan() };
    return n;
}

static void setup_workloads(void)
{
    /* a: 2 GPUs from 2024-12-01 22:00 to 12-02 02:00 (crosses midnight), util 50%,
     *    a CPU counter; b: 1 GPU from 12-02 10:00 to 12:00. */
    n_alloc_a = ramp(s_alloc_a, D1 + 22 * HOUR, D1 + 26 * HOUR, MIN, 2);
    n_util_a = ramp(s_util_a, D1 + 22 * HOUR, D1 + 26 * HOUR, MIN, 50);
    n_alloc_b = ramp(s_alloc_b, D1 + 34 * HOUR, D1 + 36 * HOUR, MIN, 1);
    n_cpu_a = 0;
    for (int i = 0; i <= 3; i++) s_cpu_a[n_cpu_a++] = (tsdb_sample_t){ D1 + (22 + i) * HOUR, 3600.0 * i };
    ser_util_a = (api_report_series_t){ s_util_a, n_util_a };
    ser_cpu_a = (api_report_series_t){ s_cpu_a, n_cpu_a };
    W[0] = (api_report_workload_t){ .workload_id = "11111111-1111-4111-8111-111111111111",
                                    .workload_name = "train-a",
                                    .cluster_id = "c1",
                                    .department_id = "d1",
                                    .department_name = "research",
                                    .project_id = "p1",
                                    .project_name = "team-a",
                                    .nodepool = "default",
                                    .gpu_allocation = { s_alloc_a, n_alloc_a },
                                    .gpu_util = &ser_util_a,
                                    .ngpu_util = 1,
                                    .cpu_usage = &ser_cpu_a,
                                    .ncpu_usage = 1 };
    W[1] = (api_report_workload_t){ .workload_id = "22222222-2222-4222-8222-222222222222",
                                    .workload_name = "infer-b",
                                    .cluster_id = "c1",
                                    .department_id = "d1",
                                    .department_name = "research",
                                    .project_id = "p2",
                                    .project_name = "team-b",
                                    .nodepool = "default",
                                    .gpu_allocation = { s_alloc_b, n_alloc_b } };
}

/* What the clean generator writes for the report "2024-12-01..12-03, by Project". */
static const char *const EXPECTED_PROJECT_CSV =
    "date,project_id,project_name,gpu_allocation_hours,gpu_idle_allocated_hours,"
    "gpu_utilization_avg_pct,gpu_memory_usage_avg_bytes,cpu_request_core_hours,"
    "cpu_usage_core_hours,cpu_memory_request_gib_hours,cpu_memory_usage_gib_hours,workloads\n"
    "2024-12-01,p1,team-a,4,0,50,,0,1,0,0,1\n"
    "2024-12-02,p1,team-a,4,0,50,,0,2,0,0,1\n"
    "2024-12-02,p2,team-b,2,0,,,0,0,0,0,1\n";

typedef struct gen_ctx {
    int calls;
    int fail_rc;       /* return this with a message instead of generating */
    int block;         /* wait until cancelled after the first row */
    int signal_fd;     /* write a byte here after the first row (crash test) */
    api_reports_t *st; /* to observe the status from inside */
    char seen_status[32];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;
    int saw_cancel;
} gen_ctx_t;

static void gen_ctx_init(gen_ctx_t *g)
{
    memset(g, 0, sizeof *g);
    g->signal_fd = -1;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static int gen(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
               const volatile int *cancelled, char *errmsg, size_t errcap)
{
    gen_ctx_t *g = ctx;
    g->calls++;
    if (g->st) {
        json_t *j = get_json(g->st, req->tenant_id, req->id);
        snprintf(g->seen_status, sizeof g->seen_status, "%s", jstr(j, "status"));
        json_decref(j);
    }
    if (g->fail_rc) {
        snprintf(errmsg, errcap, "metric store unreachable");
        return g->fail_rc;
    }
    strata_arena_t *a = strata_arena_new(0);
    api_report_row_t *rows;
    size_t n;
    int rc = api_reports_aggregate(req, W, 2, NULL, cancelled, a, &rows, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (*cancelled) {
            rc = STRATA_ECLOSED;
            break;
        }
        rc = api_reports_csv_row(csv, &rows[i]);
        if (i == 0 && g->signal_fd >= 0) {
            if (write(g->signal_fd, "x", 1) != 1) _exit(3);
            for (;;) pause(); /* the parent SIGKILLs us here, mid-generation */
        }
        if (i == 0 && g->block) {
            pthread_mutex_lock(&g->mu);
            g->started = 1;
            pthread_cond_broadcast(&g->cv);
            pthread_mutex_unlock(&g->mu);
            /* as a generator between workloads: poll the flag (bounded) */
            for (int k = 0; k < 20000 && !*cancelled; k++) usleep(1000);
            g->saw_cancel = *cancelled;
        }
    }
    strata_arena_free(a);
    return rc;
}

static int setup(void **state)
{
    strata_log_set_level(STRATA_LOG_ERROR);
    atomic_store(&g_now, T0);
    setup_workloads();
    *state = test_tmpdir_new();
    return 0;
}

static int teardown(void **state)
{
    test_tmpdir_free(*state);
    return 0;
}

/* ---- POST body ---------------------------------------------------------------- */

static void expect_invalid(api_reports_t *st, const char *body, const char *msg)
{
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    int rc = api_reports_create(st, 1, "alice", body, strlen(body), a, &r);
    if (rc != STRATA_EINVAL) fail_msg("body %s: got %d, want EINVAL", body, rc);
    assert_non_null(r.error);
    if (strcmp(r.error, msg) != 0) fail_msg("body %s: error \"%s\", want \"%s\"", body, r.error, msg);
    strata_arena_free(a);
}

static void test_create_validation(void **state)
{
    api_reports_t *st = open_store(*state, 0, gen, NULL);
    expect_invalid(st, "{\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}",
                   "name: required field is missing");
    expect_invalid(st, "{\"name\":\"r\",\"end\":\"2024-12-02T00:00:00Z\"}",
                   "start: required field is missing");
    expect_invalid(st, "{\"name\":\"r\",\"start\":\"2024-12-01T00:00:00Z\"}",
                   "end: required field is missing");
    expect_invalid(st, "{\"name\":7,\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}",
                   "name: must be a string");
    expect_invalid(st, "{\"name\":\"\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}",
                   "name: must not be empty");
    expect_invalid(st, "{\"name\":\"r\",\"start\":\"yesterday\",\"end\":\"2024-12-02T00:00:00Z\"}",
                   "start: must be an RFC 3339 date-time string (e.g. 2024-12-01T00:00:00Z)");
    /* an offset that pushes the UTC instant out of 0000..9999 (the Report could not render it) */
    expect_invalid(
        st, "{\"name\":\"r\",\"start\":\"0000-01-01T00:00:00+01:00\",\"end\":\"2024-12-02T00:00:00Z\"}",
        "start: must lie between years 0000 and 9999 in UTC");
    expect_invalid(
        st, "{\"name\":\"r\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"9999-12-31T23:59:59-01:00\"}",
        "end: must lie between years 0000 and 9999 in UTC");
    expect_invalid(st, "{\"name\":\"r\",\"start\":\"2024-12-02T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}",
                   "end: must be after start");
    expect_invalid(
        st, "{\"name\":\"r\",\"start\":\"2024-12-03T00:00:00Z\",\"end\":\"2024-12-02T00:00:00+02:00\"}",
        "end: must be after start");
    expect_invalid(st,
                   "{\"name\":\"r\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\","
                   "\"groupBy\":\"Team\"}",
                   "groupBy: must be one of Nodepool, Project, Department, Cluster, or null");
    expect_invalid(st,
                   "{\"name\":\"r\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\","
                   "\"groupBy\":\"project\"}",
                   "groupBy: must be one of Nodepool, Project, Department, Cluster, or null");
    expect_invalid(st,
                   "{\"name\":\"r\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\","
                   "\"filterBy\":\"projectName==a\"}",
                   "filterBy: must be an array of strings");
    const char *bad_terms[] = { "\"project==a\"", "\"projectName!=a\"", "\"projectName==\"",
                                "\"clusterId==a\\nb\"", "3" };
    for (size_t i = 0; i < 5; i++) {
        char body[300];
        snprintf(body, sizeof body,
                 "{\"name\":\"r\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\","
                 "\"filterBy\":[\"clusterId==ok\",%s]}",
                 bad_terms[i]);
        expect_invalid(st, body, "filterBy[1]: must match ^(projectName|departmentName|clusterId)(==).+$");
    }
    /* malformed JSON: the message says where */
    expect_invalid(st, "{\"name\": \"r\",\n  \"start\": }",
                   "malformed JSON at line 2, column 12: unexpected token near '}'");
    expect_invalid(st, "[1,2]", "request body must be a JSON object");

    /* valid, with unknown fields ignored and a null groupBy */
    char id[37];
    create_ok(st, 1, "alice",
              "{\"name\":\"ok\",\"start\":\"2024-12-01T02:00:00+02:00\",\"end\":\"2024-12-02T00:00:00.5Z\","
              "\"groupBy\":null,\"color\":\"blue\",\"filterBy\":[\"departmentName==a==b\"]}",
              id);
    json_t *j = get_json(st, 1, id);
    char want[1024];
    snprintf(want, sizeof want,
             "{\"id\": \"%s\", \"name\": \"ok\", \"tenantId\": 1, \"createdBy\": \"alice\", "
             "\"createdAt\": \"2024-12-20T14:30:00Z\", \"start\": \"2024-12-01T00:00:00Z\", "
             "\"end\": \"2024-12-02T00:00:00.500Z\", \"groupBy\": null, "
             "\"filterBy\": [\"departmentName==a==b\"], \"status\": \"Pending\", "
             "\"statusUpdatedAt\": \"2024-12-20T14:30:00Z\", \"statusMessage\": \"Waiting for a worker\", "
             "\"expiresAt\": \"2025-01-19T14:30:00Z\"}",
             id);
    char *got = json_dumps(j, 0);
    assert_string_equal(got, want);
    free(got);
    json_decref(j);
    /* the id is a v4 uuid */
    assert_int_equal(strlen(id), 36);
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
    api_reports_close(st);
}

static void test_duplicate_name(void **state)
{
    api_reports_t *st = open_store(*state, 0, gen, NULL);
    char body[256], id[37], id2[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "weekly"), id);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    assert_err(api_reports_create(st, 1, "bob", body, strlen(body), a, &r), STRATA_ECONFLICT);
    assert_string_equal(r.error, "a report named \"weekly\" already exists");
    /* names are per tenant */
    create_ok(st, 2, "carol", body, id2);
    /* deleting frees the name */
    assert_ok(api_reports_delete(st, 1, id));
    create_ok(st, 1, "bob", body, id);
    strata_arena_free(a);
    api_reports_close(st);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void test_lifecycle_ready(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    g.st = st;
    char id[37];
    create_ok(st, 1, "alice",
              "{\"name\":\"dec \\\"gpu\\\"/é\",\"start\":\"2024-12-01T00:00:00Z\","
              "\"end\":\"2024-12-03T00:00:00Z\",\"groupBy\":\"Project\"}",
              id);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_file_t f;
    api_reports_result_t r;
    assert_err(api_reports_open_file(st, 1, id, a, &f, &r), STRATA_ECONFLICT);
    assert_string_equal(r.error, "report is not ready (status Pending)");
    assert_int_equal(f.fd, -1);

    atomic_store(&g_now, T0 + 5000);
    assert_int_equal(api_reports_run_one(st), 1);
    assert_int_equal(api_reports_run_one(st), 0);
    assert_int_equal(g.calls, 1);
    assert_string_equal(g.seen_status, "Processing");
    json_t *j = get_json(st, 1, id);
    assert_string_equal(jstr(j, "status"), "Ready");
    assert_string_equal(jstr(j, "statusUpdatedAt"), "2024-12-20T14:30:05Z");
    assert_string_equal(jstr(j, "statusMessage"), "Report is ready (3 rows)");
    json_decref(j);

    assert_ok(api_reports_open_file(st, 1, id, a, &f, &r));
    char *csv = fd_slurp(f.fd);
    close(f.fd);
    assert_string_equal(csv, EXPECTED_PROJECT_CSV);
    assert_int_equal(f.size, (int64_t)strlen(EXPECTED_PROJECT_CSV));
    assert_string_equal(f.filename, "dec \"gpu\"/é.csv");
    assert_string_equal(f.content_disposition, "attachment; filename=\"dec _gpu____.csv\"; "
                                               "filename*=UTF-8''dec%20%22gpu%22%2F%C3%A9.csv");
    free(csv);
    /* only the metadata and the CSV remain */
    char files[512], want[512];
    list_files(*state, files, sizeof files);
    snprintf(want, sizeof want, "%s.csv %s.json", id, id);
    assert_string_equal(files, want);
    strata_arena_free(a);
    api_reports_close(st);
}

static void test_lifecycle_failed(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    g.fail_rc = STRATA_EIO;
    api_reports_t *st = open_store(*state, 1, gen, &g);
    char body[256], id[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "broken"), id);
    assert_ok(api_reports_wait_idle(st, 20000));
    json_t *j = get_json(st, 1, id);
    assert_string_equal(jstr(j, "status"), "Failed");
    assert_string_equal(jstr(j, "statusMessage"), "metric store unreachable");
    json_decref(j);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_file_t f;
    api_reports_result_t r;
    assert_err(api_reports_open_file(st, 1, id, a, &f, &r), STRATA_ECONFLICT);
    assert_string_equal(r.error, "report generation failed: metric store unreachable");
    char files[512], want[512];
    list_files(*state, files, sizeof files);
    snprintf(want, sizeof want, "%s.json", id);
    assert_string_equal(files, want); /* the temp CSV was discarded */
    strata_arena_free(a);
    api_reports_close(st);
}

static void test_delete_cancels(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    g.block = 1;
    api_reports_t *st = open_store(*state, 1, gen, &g);
    char body[256], id[37], other[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "long"), id);
    pthread_mutex_lock(&g.mu);
    while (!g.started) pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    assert_status(st, 1, id, "Processing");
    char files[512], want[512];
    list_files(*state, files, sizeof files);
    snprintf(want, sizeof want, "%s.csv.tmp %s.json", id, id);
    assert_string_equal(files, want);

    assert_ok(api_reports_delete(st, 1, id));
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    assert_err(api_reports_get(st, 1, id, a, &r), STRATA_ENOTFOUND);
    assert_err(api_reports_delete(st, 1, id), STRATA_ENOTFOUND);
    assert_ok(api_reports_wait_idle(st, 20000));
    assert_int_equal(g.saw_cancel, 1);
    list_files(*state, files, sizeof files);
    assert_string_equal(files, "");
    /* the worker goes on with the next report */
    g.block = 0;
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "next"), other);
    assert_ok(api_reports_wait_idle(st, 20000));
    assert_status(st, 1, other, "Ready");
    strata_arena_free(a);
    api_reports_close(st);
}

/* ---- list / count ---------------------------------------------------------------- */

static const char *list_names(api_reports_t *st, int32_t tenant, api_reports_query_t *q, strata_arena_t *a,
                              int64_t *next)
{
    api_reports_result_t r;
    assert_ok(api_reports_list(st, tenant, q, a, &r));
    json_t *j = json_loads(r.json, 0, NULL);
    assert_non_null(j);
    json_t *arr = json_object_get(j, "reports");
    assert_true(json_is_array(arr));
    char buf[512] = "";
    for (size_t i = 0; i < json_array_size(arr); i++) {
        if (i) strcat(buf, ",");
        strcat(buf, jstr(json_array_get(arr, i), "name"));
    }
    json_t *n = json_object_get(j, "next");
    *next = n ? json_integer_value(n) : -1;
    json_decref(j);
    return strata_arena_strdup(a, buf);
}

static int64_t count_of(api_reports_t *st, int32_t tenant, api_reports_query_t *q, strata_arena_t *a)
{
    api_reports_result_t r;
    assert_ok(api_reports_count(st, tenant, q, a, &r));
    char want[64];
    snprintf(want, sizeof want, "{\"count\":%lld}", (long long)r.total);
    assert_string_equal(r.json, want);
    return r.total;
}

static void test_list_count(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    const char *names[] = { "Delta-weekly", "alpha-daily", "charlie-weekly", "bravo-monthly", "echo" };
    const char *by[] = { "bob", "alice", "alice", "bob", "dave" };
    char body[256], id[5][37];
    for (int i = 0; i < 5; i++) {
        atomic_store(&g_now, T0 + i * HOUR);
        create_ok(st, 1, by[i], simple_body(body, sizeof body, names[i]), id[i]);
    }
    create_ok(st, 2, "eve", simple_body(body, sizeof body, "other-tenant"), body);
    /* the first two generate (Ready), the third fails */
    assert_int_equal(api_reports_run_one(st), 1);
    assert_int_equal(api_reports_run_one(st), 1);
    g.fail_rc = STRATA_EIO;
    assert_int_equal(api_reports_run_one(st), 1);

    strata_arena_t *a = strata_arena_new(0);
    api_reports_query_t q;
    int64_t next;
    api_reports_query_init(&q);
    assert_string_equal(list_names(st, 1, &q, a, &next),
                        "Delta-weekly,alpha-daily,charlie-weekly,bravo-monthly,echo");
    assert_int_equal(next, -1);
    assert_int_equal(count_of(st, 1, &q, a), 5);
    assert_int_equal(count_of(st, 2, &q, a), 1);

    q.sort_by = "name";
    assert_string_equal(list_names(st, 1, &q, a, &next),
                        "Delta-weekly,alpha-daily,bravo-monthly,charlie-weekly,echo");
    q.sort_order = "desc";
    q.limit = 2;
    assert_string_equal(list_names(st, 1, &q, a, &next), "echo,charlie-weekly");
    assert_int_equal(next, 2);
    q.offset = 2;
    assert_string_equal(list_names(st, 1, &q, a, &next), "bravo-monthly,alpha-daily");
    assert_int_equal(next, 4);
    q.offset = 4;
    assert_string_equal(list_names(st, 1, &q, a, &next), "Delta-weekly");
    assert_int_equal(next, -1);
    q.offset = 9;
    assert_string_equal(list_names(st, 1, &q, a, &next), "");
    q.offset = INT64_MAX;
    assert_string_equal(list_names(st, 1, &q, a, &next), "");
    assert_int_equal(next, -1);

    api_reports_query_init(&q);
    q.sort_by = "status"; /* Failed < Pending < Ready, then creation order */
    assert_string_equal(list_names(st, 1, &q, a, &next),
                        "charlie-weekly,bravo-monthly,echo,Delta-weekly,alpha-daily");
    q.sort_by = "createdBy";
    q.sort_order = "desc";
    assert_string_equal(list_names(st, 1, &q, a, &next),
                        "echo,bravo-monthly,Delta-weekly,charlie-weekly,alpha-daily");

    const char *f1[] = { "name=@weekly" };
    api_reports_query_init(&q);
    q.filter_by = f1;
    q.nfilter = 1;
    assert_string_equal(list_names(st, 1, &q, a, &next), "Delta-weekly,charlie-weekly");
    assert_int_equal(count_of(st, 1, &q, a), 2);
    const char *f2[] = { "status==Ready", "createdBy!=alice" };
    q.filter_by = f2;
    q.nfilter = 2;
    assert_string_equal(list_names(st, 1, &q, a, &next), "Delta-weekly");
    const char *f3[] = { "createdAt>=2024-12-20T16:30:00Z", "createdAt<=2024-12-20T18:30:00+01:00" };
    q.filter_by = f3;
    assert_string_equal(list_names(st, 1, &q, a, &next), "charlie-weekly,bravo-monthly");
    const char *f4[] = { "name=^b", "name!@x" };
    q.filter_by = f4;
    assert_string_equal(list_names(st, 1, &q, a, &next), "bravo-monthly");
    const char *f5[] = { "name=$ly", "createdAt=@T15:" };
    q.filter_by = f5;
    assert_string_equal(list_names(st, 1, &q, a, &next), "alpha-daily");
    const char *f6[] = { "status==Failed" };
    q.filter_by = f6;
    q.nfilter = 1;
    assert_int_equal(count_of(st, 1, &q, a), 1);

    api_reports_query_init(&q);
    q.search = "WEEK";
    assert_string_equal(list_names(st, 1, &q, a, &next), "Delta-weekly,charlie-weekly");
    assert_int_equal(count_of(st, 1, &q, a), 2);

    /* bad parameters */
    api_reports_result_t r;
    const char *bad1[] = { "owner==bob" };
    api_reports_query_init(&q);
    q.filter_by = bad1;
    q.nfilter = 1;
    assert_err(api_reports_list(st, 1, &q, a, &r), STRATA_EINVAL);
    assert_string_equal(r.error, "filterBy: invalid term \"owner==bob\": unknown field \"owner\" "
                                 "(name, status, createdAt, createdBy, groupBy)");
    const char *bad2[] = { "createdAt>=yesterday" };
    q.filter_by = bad2;
    assert_err(api_reports_count(st, 1, &q, a, &r), STRATA_EINVAL);
    assert_string_equal(r.error, "filterBy: invalid term \"createdAt>=yesterday\": \"yesterday\" is "
                                 "not an RFC 3339 date-time");
    const char *bad3[] = { "name~x" };
    q.filter_by = bad3;
    assert_err(api_reports_list(st, 1, &q, a, &r), STRATA_EINVAL);
    api_reports_query_init(&q);
    q.sort_by = "id";
    assert_err(api_reports_list(st, 1, &q, a, &r), STRATA_EINVAL);
    assert_string_equal(r.error, "sortBy: must be one of name, status, createdAt, createdBy, groupBy");
    api_reports_query_init(&q);
    q.limit = 501;
    assert_err(api_reports_list(st, 1, &q, a, &r), STRATA_EINVAL);
    assert_string_equal(r.error, "limit: must be between 1 and 500");
    api_reports_query_init(&q);
    q.offset = -1;
    assert_err(api_reports_list(st, 1, &q, a, &r), STRATA_EINVAL);
    api_reports_query_init(&q);
    q.sort_order = "up";
    assert_err(api_reports_list(st, 1, &q, a, &r), STRATA_EINVAL);
    strata_arena_free(a);
    api_reports_close(st);
}

static void test_tenant_isolation(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char body[256], id[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "mine"), id);
    assert_int_equal(api_reports_run_one(st), 1);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    api_reports_file_t f;
    assert_err(api_reports_get(st, 2, id, a, &r), STRATA_ENOTFOUND);
    assert_err(api_reports_open_file(st, 2, id, a, &f, &r), STRATA_ENOTFOUND);
    assert_err(api_reports_delete(st, 2, id), STRATA_ENOTFOUND);
    api_reports_query_t q;
    api_reports_query_init(&q);
    int64_t next;
    assert_string_equal(list_names(st, 2, &q, a, &next), "");
    assert_int_equal(count_of(st, 2, &q, a), 0);
    /* malformed and unknown ids */
    assert_err(api_reports_get(st, 1, "not-a-uuid", a, &r), STRATA_ENOTFOUND);
    assert_err(api_reports_get(st, 1, "", a, &r), STRATA_ENOTFOUND);
    assert_err(api_reports_get(st, 1, "00000000-0000-4000-8000-000000000000", a, &r), STRATA_ENOTFOUND);
    assert_err(api_reports_delete(st, 1, "../../etc/passwd"), STRATA_ENOTFOUND);
    /* the owner still sees it, with the id in upper case too */
    char up[37];
    for (int i = 0; i < 37; i++) up[i] = (char)toupper((unsigned char)id[i]);
    assert_ok(api_reports_get(st, 1, up, a, &r));
    assert_ok(api_reports_open_file(st, 1, id, a, &f, &r));
    close(f.fd);
    strata_arena_free(a);
    api_reports_close(st);
}

/* ---- persistence and recovery ------------------------------------------------------ */

static void test_persistence(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char body[256], id1[37], id2[37];
    create_ok(st, 1, "alice",
              "{\"name\":\"kept\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-03T00:00:00Z\","
              "\"groupBy\":\"Project\",\"filterBy\":[\"projectName==team-a\",\"projectName==team-b\"]}",
              id1);
    atomic_store(&g_now, T0 + 1000);
    create_ok(st, 3, "bob", simple_body(body, sizeof body, "waiting"), id2);
    assert_int_equal(api_reports_run_one(st), 1);
    json_t *j1 = get_json(st, 1, id1), *j2 = get_json(st, 3, id2);
    char *before1 = json_dumps(j1, 0), *before2 = json_dumps(j2, 0);
    json_decref(j1);
    json_decref(j2);
    api_reports_close(st);

    st = open_store(*state, 0, gen, &g);
    j1 = get_json(st, 1, id1);
    j2 = get_json(st, 3, id2);
    char *after1 = json_dumps(j1, 0), *after2 = json_dumps(j2, 0);
    assert_string_equal(after1, before1);
    assert_string_equal(after2, before2);
    assert_string_equal(jstr(j1, "status"), "Ready");
    assert_string_equal(jstr(j2, "status"), "Pending");
    strata_arena_t *a = strata_arena_new(0);
    api_reports_file_t f;
    api_reports_result_t r;
    assert_ok(api_reports_open_file(st, 1, id1, a, &f, &r));
    char *csv = fd_slurp(f.fd);
    close(f.fd);
    assert_string_equal(csv, EXPECTED_PROJECT_CSV);
    /* the creation order survives: the Pending one runs next, and names stay unique */
    assert_int_equal(api_reports_run_one(st), 1);
    assert_status(st, 3, id2, "Ready");
    const char *dup = "{\"name\":\"kept\",\"start\":\"2024-12-01T00:00:00Z\","
                      "\"end\":\"2024-12-02T00:00:00Z\"}";
    assert_err(api_reports_create(st, 1, "x", dup, strlen(dup), a, &r), STRATA_ECONFLICT);
    free(csv);
    free(before1);
    free(before2);
    free(after1);
    free(after2);
    json_decref(j1);
    json_decref(j2);
    strata_arena_free(a);
    api_reports_close(st);
}

/* ---- integrity of the report file --------------------------------------------- */

static char *csv_path(const char *dir, const char *id, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/reports/%s.csv", dir, id);
    return buf;
}

/* open_file's answer: 0 and the CSV (freed by the caller), or the error and
 * its message in msg. */
static int try_open(api_reports_t *st, const char *id, char **csv, char *msg, size_t cap)
{
    strata_arena_t *a = strata_arena_new(0);
    api_reports_file_t f;
    api_reports_result_t r;
    int rc = api_reports_open_file(st, 1, id, a, &f, &r);
    *csv = NULL;
    msg[0] = 0;
    if (rc == 0) {
        *csv = fd_slurp(f.fd);
        close(f.fd);
    } else if (r.error) {
        snprintf(msg, cap, "%s", r.error);
    }
    strata_arena_free(a);
    return rc;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x20;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* A Ready report's CSV that changed on disk (a flipped byte, a truncation) is
 * never served: the report becomes Failed with "report file damaged: ..." and
 * the download answers ECONFLICT (409) with that message, also after a
 * restart.  A report made before the integrity record is served as before. */
static void test_file_damaged(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    const char *names[4] = { "flipped", "truncated", "legacy", "intact" };
    char id[4][37], path[600], msg[512];
    for (int i = 0; i < 4; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-03T00:00:00Z\","
                 "\"groupBy\":\"Project\"}",
                 names[i]);
        create_ok(st, 1, "alice", body, id[i]);
        assert_int_equal(api_reports_run_one(st), 1);
    }
    /* the record: the file's size and SHA-256 beside seq in the metadata */
    snprintf(path, sizeof path, "%s/reports/%s.json", (char *)*state, id[0]);
    json_t *meta = json_load_file(path, 0, NULL);
    assert_non_null(meta);
    json_t *fl = json_object_get(meta, "file");
    assert_int_equal(json_integer_value(json_object_get(fl, "size")),
                     (json_int_t)strlen(EXPECTED_PROJECT_CSV));
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)EXPECTED_PROJECT_CSV, strlen(EXPECTED_PROJECT_CSV), md);
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    const char *rec = json_string_value(json_object_get(fl, "sha256"));
    assert_non_null(rec);
    assert_string_equal(rec, hex);
    json_decref(meta);

    char *csv;
    for (int i = 0; i < 4; i++) { /* whole files: served (and the result cached) */
        assert_ok(try_open(st, id[i], &csv, msg, sizeof msg));
        assert_string_equal(csv, EXPECTED_PROJECT_CSV);
        free(csv);
    }
    /* one byte flipped after it was served once: the cache notices the change */
    flip_byte(csv_path(*state, id[0], path, sizeof path), 40);
    assert_err(try_open(st, id[0], &csv, msg, sizeof msg), STRATA_ECONFLICT);
    assert_null(csv);
    if (strncmp(msg, "report file damaged: its SHA-256 is ", 36) != 0) fail_msg("message: %s", msg);
    json_t *j = get_json(st, 1, id[0]);
    assert_string_equal(jstr(j, "status"), "Failed");
    assert_string_equal(jstr(j, "statusMessage"), msg);
    json_decref(j);
    assert_err(try_open(st, id[0], &csv, msg, sizeof msg), STRATA_ECONFLICT); /* and stays so */
    assert_true(strncmp(msg, "report file damaged: ", 21) == 0);
    /* truncated by one byte */
    assert_int_equal(
        truncate(csv_path(*state, id[1], path, sizeof path), (off_t)strlen(EXPECTED_PROJECT_CSV) - 1), 0);
    assert_err(try_open(st, id[1], &csv, msg, sizeof msg), STRATA_ECONFLICT);
    char want[256];
    snprintf(want, sizeof want,
             "report file damaged: %zu bytes on disk, %zu written (truncated or appended to)",
             strlen(EXPECTED_PROJECT_CSV) - 1, strlen(EXPECTED_PROJECT_CSV));
    assert_string_equal(msg, want);
    assert_status(st, 1, id[1], "Failed");
    api_reports_close(st);

    /* a report made before the record (no "file" in its metadata) is served as
     * it is, even changed; the damaged ones stay Failed after a restart */
    snprintf(path, sizeof path, "%s/reports/%s.json", (char *)*state, id[2]);
    meta = json_load_file(path, 0, NULL);
    assert_non_null(meta);
    json_object_del(meta, "file");
    assert_int_equal(json_dump_file(meta, path, 0), 0);
    json_decref(meta);
    flip_byte(csv_path(*state, id[2], path, sizeof path), 40);
    /* truncated while the daemon was down: Failed at open from the size alone */
    assert_int_equal(truncate(csv_path(*state, id[3], path, sizeof path), 10), 0);
    st = open_store(*state, 0, gen, &g);
    assert_ok(try_open(st, id[2], &csv, msg, sizeof msg));
    assert_int_equal(strlen(csv), strlen(EXPECTED_PROJECT_CSV));
    assert_string_not_equal(csv, EXPECTED_PROJECT_CSV);
    free(csv);
    assert_status(st, 1, id[2], "Ready");
    for (int i = 0; i < 4; i++) {
        if (i == 2) continue;
        assert_status(st, 1, id[i], "Failed");
        assert_err(try_open(st, id[i], &csv, msg, sizeof msg), STRATA_ECONFLICT);
        if (strncmp(msg, "report file damaged: ", 21) != 0) fail_msg("%s: %s", names[i], msg);
    }
    api_reports_close(st);
}

/* Rewrites a report's metadata as if a crash had left it Processing, with a
 * stray temp CSV and an orphan CSV of a report that no longer exists. */
static void test_processing_requeued(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char id[37];
    create_ok(st, 1, "alice",
              "{\"name\":\"interrupted\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-03T00:00:00Z\","
              "\"groupBy\":\"Project\"}",
              id);
    api_reports_close(st);
    char path[600], tmp[600], orphan[600];
    snprintf(path, sizeof path, "%s/reports/%s.json", (char *)*state, id);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    json_object_set_new(json_object_get(j, "report"), "status", json_string("Processing"));
    assert_int_equal(json_dump_file(j, path, 0), 0);
    json_decref(j);
    snprintf(tmp, sizeof tmp, "%s/reports/%s.csv.tmp", (char *)*state, id);
    snprintf(orphan, sizeof orphan, "%s/reports/33333333-3333-4333-8333-333333333333.csv", (char *)*state);
    FILE *f = fopen(tmp, "w");
    fputs("date,half a row", f);
    fclose(f);
    f = fopen(orphan, "w");
    fputs("old", f);
    fclose(f);

    atomic_store(&g_now, T0 + 60000);
    st = open_store(*state, 0, gen, &g);
    json_t *r = get_json(st, 1, id);
    assert_string_equal(jstr(r, "status"), "Pending");
    assert_string_equal(jstr(r, "statusMessage"), "Generation was interrupted; it will run again");
    assert_string_equal(jstr(r, "statusUpdatedAt"), "2024-12-20T14:31:00Z");
    json_decref(r);
    char files[512], want[512];
    list_files(*state, files, sizeof files);
    snprintf(want, sizeof want, "%s.json", id);
    assert_string_equal(files, want);
    assert_int_equal(api_reports_run_one(st), 1);
    assert_status(st, 1, id, "Ready");
    snprintf(path, sizeof path, "%s/reports/%s.csv", (char *)*state, id);
    char *csv = slurp(path);
    assert_string_equal(csv, EXPECTED_PROJECT_CSV);
    free(csv);
    api_reports_close(st);
}

/* A Ready report whose CSV vanished is generated again; an unreadable
 * metadata file is skipped without failing the open. */
static void test_open_repairs(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char body[256], id[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "lost-file"), id);
    assert_int_equal(api_reports_run_one(st), 1);
    api_reports_close(st);
    char path[600], bad[600];
    snprintf(path, sizeof path, "%s/reports/%s.csv", (char *)*state, id);
    assert_int_equal(unlink(path), 0);
    snprintf(bad, sizeof bad, "%s/reports/44444444-4444-4444-8444-444444444444.json", (char *)*state);
    FILE *f = fopen(bad, "w");
    fputs("{\"format\":1,\"report\":{\"id\":", f);
    fclose(f);

    st = open_store(*state, 0, gen, &g);
    json_t *j = get_json(st, 1, id);
    assert_string_equal(jstr(j, "status"), "Pending");
    assert_string_equal(jstr(j, "statusMessage"), "Report file was missing; it will be generated again");
    json_decref(j);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_query_t q;
    api_reports_query_init(&q);
    assert_int_equal(count_of(st, 1, &q, a), 1);
    assert_int_equal(api_reports_run_one(st), 1);
    assert_status(st, 1, id, "Ready");
    char *csv = slurp(path);
    assert_non_null(csv);
    free(csv);
    strata_arena_free(a);
    api_reports_close(st);
}

static void test_crash_mid_generation(void **state)
{
    const char *body = "{\"name\":\"crashy\",\"start\":\"2024-12-01T00:00:00Z\","
                       "\"end\":\"2024-12-03T00:00:00Z\",\"groupBy\":\"Project\"}";
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        gen_ctx_t g;
        gen_ctx_init(&g);
        g.signal_fd = pfd[1];
        api_reports_options_t o;
        api_reports_options_init(&o);
        o.workers = 1;
        o.generate = gen;
        o.generate_ctx = &g;
        o.now_ms = now_fn;
        api_reports_t *st;
        if (api_reports_open(*state, &o, &st)) _exit(2);
        strata_arena_t *a = strata_arena_new(0);
        api_reports_result_t r;
        if (api_reports_create(st, 1, "alice", body, strlen(body), a, &r)) _exit(2);
        for (;;) pause();
    }
    close(pfd[1]);
    char c;
    assert_int_equal(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    kill(pid, SIGKILL);
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFSIGNALED(ws));

    /* the child died with the report Processing and a partial temp CSV */
    char files[512];
    list_files(*state, files, sizeof files);
    assert_non_null(strstr(files, ".csv.tmp"));
    char id[37];
    memcpy(id, files, 36);
    id[36] = 0;
    char meta[600];
    snprintf(meta, sizeof meta, "%s/reports/%s.json", (char *)*state, id);
    json_t *mj = json_load_file(meta, 0, NULL);
    assert_non_null(mj);
    assert_string_equal(jstr(json_object_get(mj, "report"), "status"), "Processing");
    json_decref(mj);

    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 1, gen, &g);
    assert_ok(api_reports_wait_idle(st, 20000));
    assert_status(st, 1, id, "Ready");
    strata_arena_t *a = strata_arena_new(0);
    api_reports_file_t f;
    api_reports_result_t r;
    assert_ok(api_reports_open_file(st, 1, id, a, &f, &r));
    char *crashed = fd_slurp(f.fd);
    close(f.fd);
    api_reports_close(st);

    /* a clean run of the same report elsewhere gives the same bytes */
    char *clean_dir = test_tmpdir_new();
    st = open_store(clean_dir, 0, gen, &g);
    char id2[37];
    create_ok(st, 1, "alice", body, id2);
    assert_int_equal(api_reports_run_one(st), 1);
    assert_ok(api_reports_open_file(st, 1, id2, a, &f, &r));
    char *clean = fd_slurp(f.fd);
    close(f.fd);
    assert_string_equal(crashed, clean);
    assert_string_equal(clean, EXPECTED_PROJECT_CSV);
    api_reports_close(st);
    test_tmpdir_free(clean_dir);
    free(crashed);
    free(clean);
    strata_arena_free(a);
}

static void test_close_requeues(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    g.block = 1;
    api_reports_t *st = open_store(*state, 1, gen, &g);
    char body[256], id[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "shutdown"), id);
    pthread_mutex_lock(&g.mu);
    while (!g.started) pthread_cond_wait(&g.cv, &g.mu);
    pthread_mutex_unlock(&g.mu);
    api_reports_close(st);
    assert_int_equal(g.saw_cancel, 1);
    g.block = 0;
    st = open_store(*state, 0, gen, &g);
    json_t *j = get_json(st, 1, id);
    assert_string_equal(jstr(j, "status"), "Pending");
    assert_string_equal(jstr(j, "statusMessage"), "Generation interrupted by a shutdown; it will run again");
    json_decref(j);
    assert_int_equal(api_reports_run_one(st), 1);
    assert_status(st, 1, id, "Ready");
    api_reports_close(st);
}

static void test_retention(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char body[256], old[37], young[37], older[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "old"), old);
    assert_int_equal(api_reports_run_one(st), 1);
    atomic_store(&g_now, T0 + 10 * DAY);
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "young"), young);
    /* exactly 30 days old is kept; a millisecond more is not */
    atomic_store(&g_now, T0 + 30 * DAY);
    assert_int_equal(api_reports_sweep(st), 0);
    atomic_store(&g_now, T0 + 30 * DAY + 1);
    assert_int_equal(api_reports_sweep(st), 1);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    assert_err(api_reports_get(st, 1, old, a, &r), STRATA_ENOTFOUND);
    char files[512], want[512];
    list_files(*state, files, sizeof files);
    snprintf(want, sizeof want, "%s.json", young);
    assert_string_equal(files, want);
    /* at open too */
    atomic_store(&g_now, T0 + 20 * DAY);
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "older"), older);
    api_reports_close(st);
    atomic_store(&g_now, T0 + 45 * DAY);
    st = open_store(*state, 0, gen, &g);
    assert_err(api_reports_get(st, 1, young, a, &r), STRATA_ENOTFOUND);
    assert_ok(api_reports_get(st, 1, older, a, &r));
    strata_arena_free(a);
    api_reports_close(st);
}

/* groupBy as a list filter and sort field; expiresAt; Retry-After on a file not ready. */
static void test_list_group_by_expires(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    const char *groups[] = { "Project", NULL, "Cluster", "Project", "Nodepool" };
    char body[256], id[5][37];
    for (int i = 0; i < 5; i++) {
        atomic_store(&g_now, T0 + i * HOUR);
        if (groups[i])
            snprintf(body, sizeof body,
                     "{\"name\":\"r%d\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-03T00:00:00Z\","
                     "\"groupBy\":\"%s\"}",
                     i, groups[i]);
        else
            snprintf(body, sizeof body,
                     "{\"name\":\"r%d\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-03T00:00:00Z\"}",
                     i);
        create_ok(st, 1, "alice", body, id[i]);
    }
    strata_arena_t *a = strata_arena_new(0);
    api_reports_query_t q;
    int64_t next;
    const char *f1[] = { "groupBy==Project" };
    api_reports_query_init(&q);
    q.filter_by = f1;
    q.nfilter = 1;
    assert_string_equal(list_names(st, 1, &q, a, &next), "r0,r3");
    assert_int_equal(count_of(st, 1, &q, a), 2);
    const char *f2[] = { "groupBy!=Project" }; /* a report without groupBy included */
    q.filter_by = f2;
    assert_string_equal(list_names(st, 1, &q, a, &next), "r1,r2,r4");
    const char *f3[] = { "groupBy==Project", "groupBy==Cluster" }; /* list terms are AND'ed */
    q.filter_by = f3;
    q.nfilter = 2;
    assert_int_equal(count_of(st, 1, &q, a), 0);
    const char *f4[] = { "groupBy=^N" };
    q.filter_by = f4;
    q.nfilter = 1;
    assert_string_equal(list_names(st, 1, &q, a, &next), "r4");
    api_reports_query_init(&q);
    q.sort_by = "groupBy";
    assert_string_equal(list_names(st, 1, &q, a, &next), "r1,r2,r4,r0,r3");
    q.sort_order = "desc";
    assert_string_equal(list_names(st, 1, &q, a, &next), "r3,r0,r4,r2,r1");
    api_reports_result_t r;
    const char *bad[] = { "groupBy==none" };
    api_reports_query_init(&q);
    q.filter_by = bad;
    q.nfilter = 1;
    assert_err(api_reports_count(st, 1, &q, a, &r), STRATA_EINVAL);
    assert_string_equal(r.error, "filterBy: invalid term \"groupBy==none\": groupBy must be one of Nodepool, "
                                 "Project, Department, Cluster");

    /* expiresAt = createdAt + retention (30d by default), in get and list */
    json_t *j = get_json(st, 1, id[2]);
    assert_string_equal(jstr(j, "createdAt"), "2024-12-20T16:30:00Z");
    assert_string_equal(jstr(j, "expiresAt"), "2025-01-19T16:30:00Z");
    json_decref(j);
    api_reports_query_init(&q);
    assert_ok(api_reports_list(st, 1, &q, a, &r));
    j = json_loads(r.json, 0, NULL);
    assert_string_equal(jstr(json_array_get(json_object_get(j, "reports"), 0), "expiresAt"),
                        "2025-01-19T14:30:00Z");
    json_decref(j);

    /* the file of a Pending report: 409 with a Retry-After */
    api_reports_file_t f;
    assert_err(api_reports_open_file(st, 1, id[0], a, &f, &r), STRATA_ECONFLICT);
    assert_int_equal(r.retry_after_s, API_REPORTS_RETRY_AFTER_S);
    api_reports_close(st);

    /* retention 0 (kept forever): expiresAt null; the metadata file never holds it */
    api_reports_options_t o;
    api_reports_options_init(&o);
    o.workers = 0;
    o.generate = gen;
    o.generate_ctx = &g;
    o.now_ms = now_fn;
    o.retention_ms = 0;
    assert_ok(api_reports_open(*state, &o, &st));
    j = get_json(st, 1, id[2]);
    assert_true(json_is_null(json_object_get(j, "expiresAt")));
    json_decref(j);
    char path[512];
    snprintf(path, sizeof path, "%s/reports/%s.json", (const char *)*state, id[2]);
    char *meta = slurp(path);
    assert_non_null(meta);
    assert_null(strstr(meta, "expiresAt"));
    free(meta);
    strata_arena_free(a);
    api_reports_close(st);
}

/* The JSON view of a CSV, read a few bytes at a time: quoted fields, an empty
 * average (null), number layouts, asOf. */
static void test_file_json(void **state)
{
    (void)state;
    const char *csv =
        "date,project_id,project_name,gpu_allocation_hours,gpu_utilization_avg_pct,workloads\r\n"
        "2024-12-01,p1,\"team, \"\"a\"\"\nline\",7,,2\n"
        "2024-12-02,p2,b\\c,1e-7,1e+21,1\n";
    char tmpl[] = "/tmp/strata-file-json-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    unlink(tmpl);
    assert_int_equal(write(fd, csv, strlen(csv)), (ssize_t)strlen(csv));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    api_reports_file_json_t *j;
    assert_ok(api_reports_file_json_new(fd, D1 + 2 * DAY, &j));
    char out[4096];
    size_t n = 0;
    for (;;) {
        ssize_t k = api_reports_file_json_read(j, out + n, 3);
        assert_true(k >= 0);
        if (k == 0) break;
        n += (size_t)k;
        assert_true(n < sizeof out - 3);
    }
    out[n] = 0;
    api_reports_file_json_free(j);
    assert_string_equal(out, "{\"columns\":[{\"name\":\"date\",\"kind\":\"dimension\"},"
                             "{\"name\":\"project_id\",\"kind\":\"dimension\"},"
                             "{\"name\":\"project_name\",\"kind\":\"dimension\"},"
                             "{\"name\":\"gpu_allocation_hours\",\"kind\":\"measure\"},"
                             "{\"name\":\"gpu_utilization_avg_pct\",\"kind\":\"measure\"},"
                             "{\"name\":\"workloads\",\"kind\":\"measure\"}],"
                             "\"rows\":[[\"2024-12-01\",\"p1\",\"team, \\\"a\\\"\\nline\",7,null,2],"
                             "[\"2024-12-02\",\"p2\",\"b\\\\c\",1e-7,1e+21,1]],"
                             "\"asOf\":\"2024-12-03T00:00:00Z\"}");
    assert_true(api_reports_is_measure("workloads"));
    assert_false(api_reports_is_measure("nodepool"));
}

/* ---- aggregation ------------------------------------------------------------------ */

static api_report_request_t req_of(int64_t start, int64_t end, enum api_report_group g)
{
    return (api_report_request_t){
        .id = "x", .name = "x", .tenant_id = 1, .start_ms = start, .end_ms = end, .group_by = g
    };
}

static void test_agg_gpu_hours(void **state)
{
    (void)state;
    /* 2 GPUs from 10:00 to 13:30: samples every 30 s, stale marker at 13:30 */
    static tsdb_sample_t s[512];
    size_t n = ramp(s, D1 + 10 * HOUR, D1 + 13 * HOUR + 30 * MIN, 30000, 2);
    api_report_workload_t w = {
        .workload_id = "w", .workload_name = "w", .cluster_id = "c", .gpu_allocation = { s, n }
    };
    api_report_request_t rq = req_of(D1, D1 + DAY, API_REPORT_GROUP_NONE);
    strata_arena_t *a = strata_arena_new(0);
    api_report_row_t *rows;
    size_t nr;
    assert_ok(api_reports_aggregate(&rq, &w, 1, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 1);
    assert_true(rows[0].gpu_allocation_hours == 7.0);
    assert_int_equal(rows[0].day_ms, D1);
    assert_int_equal(rows[0].workloads, 1);
    assert_true(isnan(rows[0].gpu_utilization_avg_pct));
    assert_true(rows[0].gpu_idle_allocated_hours == 0);

    /* without the stale marker the last value holds for the staleness (5m) */
    assert_ok(api_reports_aggregate(
        &rq, &(api_report_workload_t){ .workload_id = "w", .gpu_allocation = { s, n - 1 } }, 1, NULL, NULL, a,
        &rows, &nr));
    assert_true(rows[0].gpu_allocation_hours == 2 * (3.5 * HOUR - 30000 + 5 * MIN) / (double)HOUR);

    /* a 10-minute gap in scrapes: the value lapses after 5 minutes */
    static tsdb_sample_t gap[4] = { { 0, 1 }, { 600000, 1 }, { 0, 0 }, { 0, 0 } };
    gap[0].t = D1;
    gap[1].t = D1 + 10 * MIN;
    gap[2] = (tsdb_sample_t){ D1 + 11 * MIN, stale_nan() };
    assert_ok(api_reports_aggregate(
        &rq, &(api_report_workload_t){ .workload_id = "w", .gpu_allocation = { gap, 3 } }, 1, NULL, NULL, a,
        &rows, &nr));
    assert_true(rows[0].gpu_allocation_hours == 6 * MIN / (double)HOUR);
    strata_arena_free(a);
}

static void test_agg_midnight_split(void **state)
{
    (void)state;
    /* 3 GPUs from 22:00 to 02:00 next day: 2 h each side of midnight */
    static tsdb_sample_t s[2048];
    size_t n = ramp(s, D1 + 22 * HOUR, D1 + 26 * HOUR, 15000, 3);
    api_report_workload_t w = { .workload_id = "w", .gpu_allocation = { s, n } };
    api_report_request_t rq = req_of(D1, D1 + 3 * DAY, API_REPORT_GROUP_CLUSTER);
    strata_arena_t *a = strata_arena_new(0);
    api_report_row_t *rows;
    size_t nr;
    assert_ok(api_reports_aggregate(&rq, &w, 1, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 2);
    assert_int_equal(rows[0].day_ms, D1);
    assert_int_equal(rows[1].day_ms, D1 + DAY);
    assert_true(rows[0].gpu_allocation_hours == 6.0);
    assert_true(rows[1].gpu_allocation_hours == 6.0);
    /* a range starting at 23:15 and ending at 01:30 clips both days */
    rq = req_of(D1 + 23 * HOUR + 15 * MIN, D1 + 25 * HOUR + 30 * MIN, API_REPORT_GROUP_CLUSTER);
    assert_ok(api_reports_aggregate(&rq, &w, 1, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 2);
    assert_true(rows[0].gpu_allocation_hours == 3 * 0.75);
    assert_true(rows[1].gpu_allocation_hours == 3 * 1.5);
    strata_arena_free(a);
}

static void test_agg_cpu_counter_reset(void **state)
{
    (void)state;
    /* cpu seconds: 100 before the range (baseline), then 160, 220, reset to 30,
     * 90, 7290 (a 2-core burst for an hour) */
    tsdb_sample_t s[] = {
        { D1 - MIN, 100 },    { D1, 160 },          { D1 + MIN, 220 },
        { D1 + 2 * MIN, 30 }, { D1 + 3 * MIN, 90 }, { D1 + 3 * MIN + HOUR, 7290 },
    };
    api_report_series_t cpu = { s, 6 };
    tsdb_sample_t req[] = { { D1, 4 }, { D1 + 4 * MIN, 4 }, { D1 + 8 * MIN, stale_nan() } };
    api_report_series_t creq = { req, 3 };
    /* 2 GiB requested for the same 8 minutes, 512 MiB used */
    tsdb_sample_t mreq[] = { { D1, 2 * 1073741824.0 },
                             { D1 + 4 * MIN, 2 * 1073741824.0 },
                             { D1 + 8 * MIN, stale_nan() } };
    tsdb_sample_t muse[] = { { D1, 536870912.0 },
                             { D1 + 4 * MIN, 536870912.0 },
                             { D1 + 8 * MIN, stale_nan() } };
    api_report_series_t mr = { mreq, 3 }, mu = { muse, 3 };
    api_report_workload_t w = { .workload_id = "w",
                                .cpu_usage = &cpu,
                                .ncpu_usage = 1,
                                .cpu_request = &creq,
                                .ncpu_request = 1,
                                .mem_request = &mr,
                                .nmem_request = 1,
                                .mem_usage = &mu,
                                .nmem_usage = 1 };
    api_report_request_t rq = req_of(D1, D1 + DAY, API_REPORT_GROUP_NONE);
    strata_arena_t *a = strata_arena_new(0);
    api_report_row_t *rows;
    size_t nr;
    assert_ok(api_reports_aggregate(&rq, &w, 1, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 1);
    /* 60 + 60 + 30 + 60 + 7200 = 7410 core-seconds */
    assert_true(rows[0].cpu_usage_core_hours == 7410.0 / 3600.0);
    assert_true(rows[0].cpu_request_core_hours == 4 * 8.0 / 60.0);
    assert_true(rows[0].cpu_memory_request_gib_hours == 2 * 8.0 / 60.0);
    assert_true(rows[0].cpu_memory_usage_gib_hours == 0.5 * 8.0 / 60.0);
    assert_true(rows[0].gpu_allocation_hours == 0);
    strata_arena_free(a);
}

static void test_agg_idle_hours(void **state)
{
    (void)state;
    /* 2 GPUs allocated 10:00-11:00; GPU0 at 0% all along, GPU1 at 50%:
     * GPU0 becomes idle at 10:05, so idle allocated = 2 x 1/2 for 55 minutes */
    static tsdb_sample_t al[128], u0[128], u1[128], fb0[128], fb1[128];
    size_t nal = ramp(al, D1 + 10 * HOUR, D1 + 11 * HOUR, 30000, 2);
    size_t n0 = ramp(u0, D1 + 10 * HOUR, D1 + 11 * HOUR, 60000, 0);
    size_t n1 = ramp(u1, D1 + 10 * HOUR, D1 + 11 * HOUR, 60000, 50);
    size_t nf0 = ramp(fb0, D1 + 10 * HOUR, D1 + 11 * HOUR, 60000, 1024); /* MiB */
    size_t nf1 = ramp(fb1, D1 + 10 * HOUR, D1 + 11 * HOUR, 60000, 3072);
    api_report_series_t util[2] = { { u0, n0 }, { u1, n1 } }, fb[2] = { { fb0, nf0 }, { fb1, nf1 } };
    api_report_workload_t w = { .workload_id = "w",
                                .gpu_allocation = { al, nal },
                                .gpu_util = util,
                                .ngpu_util = 2,
                                .gpu_fb_used = fb,
                                .ngpu_fb_used = 2 };
    api_report_request_t rq = req_of(D1, D1 + DAY, API_REPORT_GROUP_NONE);
    strata_arena_t *a = strata_arena_new(0);
    api_report_row_t *rows;
    size_t nr;
    assert_ok(api_reports_aggregate(&rq, &w, 1, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 1);
    assert_true(rows[0].gpu_idle_allocated_hours == 55.0 / 60.0);
    assert_true(rows[0].gpu_allocation_hours == 2.0);
    assert_true(rows[0].gpu_utilization_avg_pct == 25.0);
    assert_true(rows[0].gpu_memory_usage_avg_bytes == 2048.0 * 1048576.0);

    /* GPU0 wakes up at 10:30 for one minute: idle again from 10:36 */
    u0[30].v = 10;
    assert_ok(api_reports_aggregate(&rq, &w, 1, NULL, NULL, a, &rows, &nr));
    assert_true(rows[0].gpu_idle_allocated_hours == (25.0 + 24.0) / 60.0);
    /* a shorter idle threshold */
    api_report_agg_params_t p;
    api_reports_agg_params_init(&p);
    p.gpu_idle_after_ms = 0;
    assert_ok(api_reports_aggregate(&rq, &w, 1, &p, NULL, a, &rows, &nr));
    assert_true(rows[0].gpu_idle_allocated_hours == 59.0 / 60.0);
    strata_arena_free(a);
}

static void test_agg_groups_and_filters(void **state)
{
    (void)state;
    setup_workloads();
    static tsdb_sample_t c[128];
    size_t nc = ramp(c, D1 + 12 * HOUR, D1 + 13 * HOUR, MIN, 4);
    api_report_workload_t w[3] = { W[0],
                                   W[1],
                                   { .workload_id = "33333333-3333-4333-8333-333333333333",
                                     .workload_name = "w3",
                                     .cluster_id = "c2",
                                     .department_id = "d2",
                                     .department_name = "ops",
                                     .project_id = "p1",
                                     .project_name = "team-a",
                                     .nodepool = "a100",
                                     .gpu_allocation = { c, nc } } };
    strata_arena_t *a = strata_arena_new(0);
    api_report_row_t *rows;
    size_t nr;
    api_report_request_t rq = req_of(D1, D1 + 2 * DAY, API_REPORT_GROUP_DEPARTMENT);
    assert_ok(api_reports_aggregate(&rq, w, 3, NULL, NULL, a, &rows, &nr));
    /* day 1: d1 (a: 2h x 2), d2 (w3: 4 x 1h); day 2: d1 (a 4 + b 2) */
    assert_int_equal(nr, 3);
    assert_string_equal(rows[0].department_id, "d1");
    assert_true(rows[0].gpu_allocation_hours == 4);
    assert_int_equal(rows[0].workloads, 1);
    assert_string_equal(rows[1].department_id, "d2");
    assert_string_equal(rows[1].department_name, "ops");
    assert_true(rows[1].gpu_allocation_hours == 4);
    assert_int_equal(rows[2].day_ms, D1 + DAY);
    assert_true(rows[2].gpu_allocation_hours == 6);
    assert_int_equal(rows[2].workloads, 2);

    rq.group_by = API_REPORT_GROUP_NODEPOOL;
    assert_ok(api_reports_aggregate(&rq, w, 3, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 3);
    assert_string_equal(rows[0].nodepool, "a100");
    assert_string_equal(rows[1].nodepool, "default");

    /* filters: same field OR'ed, different fields AND'ed */
    const char *f1[] = { "projectName==team-a", "clusterId==c1" };
    rq.group_by = API_REPORT_GROUP_NONE;
    rq.filter_by = f1;
    rq.nfilter = 2;
    assert_ok(api_reports_aggregate(&rq, w, 3, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 2); /* train-a on both days */
    assert_string_equal(rows[0].workload_name, "train-a");
    assert_string_equal(rows[1].workload_name, "train-a");
    const char *f2[] = { "projectName==team-a", "projectName==team-b", "departmentName==research" };
    rq.filter_by = f2;
    rq.nfilter = 3;
    assert_ok(api_reports_aggregate(&rq, w, 3, NULL, NULL, a, &rows, &nr));
    assert_int_equal(nr, 3);
    /* a cancelled aggregation stops */
    volatile int cancel = 1;
    assert_err(api_reports_aggregate(&rq, w, 3, NULL, &cancel, a, &rows, &nr), STRATA_ECLOSED);
    strata_arena_free(a);
}

static void test_csv_writer(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    api_report_csv_t *csv;
    assert_ok(api_reports_csv_new(f, API_REPORT_GROUP_NONE, &csv));
    api_report_row_t r = { .day_ms = D1,
                           .cluster_id = "c1",
                           .department_id = "d1",
                           .department_name = "R&D, \"east\"",
                           .project_id = "p1",
                           .project_name = "team\na",
                           .nodepool = NULL,
                           .workload_id = "w1",
                           .workload_name = "train",
                           .gpu_allocation_hours = 0.1,
                           .gpu_idle_allocated_hours = 1.0 / 3.0,
                           .gpu_utilization_avg_pct = NAN,
                           .gpu_memory_usage_avg_bytes = 85899345920.0,
                           .cpu_request_core_hours = 1e-7,
                           .cpu_usage_core_hours = 12.5,
                           .cpu_memory_request_gib_hours = 1e21,
                           .cpu_memory_usage_gib_hours = 0,
                           .workloads = 1 };
    assert_ok(api_reports_csv_row(csv, &r));
    assert_int_equal(api_reports_csv_rows(csv), 1);
    api_reports_csv_free(csv);
    fclose(f);
    assert_string_equal(
        buf, "date,cluster_id,department_id,department_name,project_id,project_name,nodepool,"
             "workload_id,workload_name,gpu_allocation_hours,gpu_idle_allocated_hours,"
             "gpu_utilization_avg_pct,gpu_memory_usage_avg_bytes,cpu_request_core_hours,"
             "cpu_usage_core_hours,cpu_memory_request_gib_hours,cpu_memory_usage_gib_hours,workloads\n"
             "2024-12-01,c1,d1,\"R&D, \"\"east\"\"\",p1,\"team\na\",,w1,train,0.1,0.3333333333333333,,"
             "85899345920,1e-7,12.5,1e+21,0,1\n");
    free(buf);
    assert_string_equal(api_reports_csv_header(API_REPORT_GROUP_NODEPOOL), "date,nodepool,");
}

/* ---- the generator over a real tsdb ------------------------------------------------- */

static int cmp_label(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

/* Appends samples s[0..n) to the series whose labels are the "name=value"
 * strings in ap (NULL-terminated). */
static void vappend(tsdb_t *db, const tsdb_sample_t *s, size_t n, va_list ap)
{
    tsdb_label_t l[16];
    char buf[16][128];
    size_t nl = 0;
    for (const char *kv; (kv = va_arg(ap, const char *));) {
        snprintf(buf[nl], sizeof buf[nl], "%s", kv);
        char *eq = strchr(buf[nl], '=');
        *eq = 0;
        l[nl] = (tsdb_label_t){ buf[nl], eq + 1 };
        nl++;
    }
    qsort(l, nl, sizeof *l, cmp_label);
    tsdb_series_input_t in = { l, nl, s, n };
    tsdb_append_result_t res;
    assert_ok(tsdb_append(db, &in, 1, &res));
    assert_int_equal(res.appended, n);
}

static void append_series(tsdb_t *db, const tsdb_sample_t *s, size_t n, ...)
{
    va_list ap;
    va_start(ap, n);
    vappend(db, s, n, ap);
    va_end(ap);
}

/* Appends one series: labels "name=value" (NULL-terminated), samples every
 * minute of value v (counter: v per minute added) over [t0, t1), then a stale
 * marker at t1. */
static void put(tsdb_t *db, int64_t t0, int64_t t1, double v, int counter, ...)
{
    static tsdb_sample_t s[8192];
    size_t k = 0;
    double c = 0;
    for (int64_t t = t0; t < t1; t += MIN) {
        s[k++] = (tsdb_sample_t){ t, counter ? c : v };
        c += v;
    }
    s[k++] = (tsdb_sample_t){ t1, stale_nan() };
    va_list ap;
    va_start(ap, counter);
    vappend(db, s, k, ap);
    va_end(ap);
}

/* A store under the test's directory, maintenance by hand, keeping everything. */
static tsdb_t *open_test_db(const char *dir, int64_t ooo_window_ms)
{
    char dbdir[600];
    snprintf(dbdir, sizeof dbdir, "%s/tsdb", dir);
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dbdir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    if (ooo_window_ms) o.ooo_window_ms = ooo_window_ms;
    tsdb_t *db;
    assert_ok(tsdb_open(&o, &db));
    return db;
}

static void test_tsdb_generator(void **state)
{
    tsdb_t *db = open_test_db(*state, 0);
    int64_t a = D1 + 22 * HOUR, b = D1 + 26 * HOUR;
    put(db, a, b, 1, 0, "__name__=runai_workload_info", "__tenant__=1", "workload_id=W1",
        "workload_name=train", "cluster_id=c1", "department_id=d1", "department_name=research",
        "project_id=p1", "project_name=team-a", "current_nodepools=pool-a,pool-b", NULL);
    put(db, a, b, 2, 0, "__name__=runai_workload_gpu_allocation", "__tenant__=1", "workload_id=W1", NULL);
    put(db, a, b, 1, 0, "__name__=runai_pod_info", "__tenant__=1", "workload_id=W1", "namespace=ns1",
        "pod=train-0", "node=n1", "nodepool=pool-a", NULL);
    put(db, a, b, 0, 0, "__name__=DCGM_FI_DEV_GPU_UTIL", "__tenant__=1", "gpu=0", "namespace=ns1",
        "pod=train-0", NULL);
    put(db, a, b, 100, 0, "__name__=DCGM_FI_DEV_GPU_UTIL", "__tenant__=1", "gpu=1", "namespace=ns1",
        "pod=train-0", NULL);
    put(db, a, b, 60, 1, "__name__=container_cpu_usage_seconds_total", "__tenant__=1", "namespace=ns1",
        "pod=train-0", "container=main", NULL);
    put(db, a, b, 1e6, 1, "__name__=container_cpu_usage_seconds_total", "__tenant__=1", "namespace=ns1",
        "pod=train-0", "container=POD", NULL);
    put(db, a, b, 2, 0, "__name__=kube_pod_container_resource_requests", "__tenant__=1", "namespace=ns1",
        "pod=train-0", "container=main", "resource=cpu", NULL);
    put(db, a, b, 4294967296.0, 0, "__name__=kube_pod_container_resource_requests", "__tenant__=1",
        "namespace=ns1", "pod=train-0", "container=main", "resource=memory", NULL);
    put(db, a, b, 1073741824.0, 0, "__name__=container_memory_working_set_bytes", "__tenant__=1",
        "namespace=ns1", "pod=train-0", "container=main", NULL);
    /* another workload of tenant 1 (team-b) and one of tenant 2 */
    put(db, D1 + 34 * HOUR, D1 + 35 * HOUR, 1, 0, "__name__=runai_workload_info", "__tenant__=1",
        "workload_id=W3", "workload_name=serve", "cluster_id=c1", "department_id=d1",
        "department_name=research", "project_id=p2", "project_name=team-b", NULL);
    put(db, D1 + 34 * HOUR, D1 + 35 * HOUR, 1, 0, "__name__=runai_workload_gpu_allocation", "__tenant__=1",
        "workload_id=W3", NULL);
    put(db, a, b, 1, 0, "__name__=runai_workload_info", "__tenant__=2", "workload_id=W9",
        "workload_name=theirs", "project_name=team-a", NULL);
    put(db, a, b, 8, 0, "__name__=runai_workload_gpu_allocation", "__tenant__=2", "workload_id=W9", NULL);

    api_read_source_t *rd;
    assert_ok(api_read_source_tsdb(db, &rd));
    api_reports_tsdb_source_t src = { .reader = rd };
    api_reports_t *st = open_store(*state, 0, api_reports_tsdb_generate, &src);
    char all[37], team_a[37];
    create_ok(st, 1, "alice",
              "{\"name\":\"all\",\"start\":\"2024-12-01T00:00:00Z\","
              "\"end\":\"2024-12-03T00:00:00Z\"}",
              all);
    create_ok(st, 1, "alice",
              "{\"name\":\"team-a\",\"start\":\"2024-12-01T00:00:00Z\","
              "\"end\":\"2024-12-03T00:00:00Z\",\"groupBy\":\"Project\","
              "\"filterBy\":[\"projectName==team-a\"]}",
              team_a);
    assert_int_equal(api_reports_run_one(st), 1);
    assert_int_equal(api_reports_run_one(st), 1);
    char path[700];
    snprintf(path, sizeof path, "%s/reports/%s.csv", (char *)*state, all);
    char *csv = slurp(path);
    assert_non_null(csv);
    assert_string_equal(
        csv, "date,cluster_id,department_id,department_name,project_id,project_name,nodepool,"
             "workload_id,workload_name,gpu_allocation_hours,gpu_idle_allocated_hours,"
             "gpu_utilization_avg_pct,gpu_memory_usage_avg_bytes,cpu_request_core_hours,"
             "cpu_usage_core_hours,cpu_memory_request_gib_hours,cpu_memory_usage_gib_hours,workloads\n"
             "2024-12-01,c1,d1,research,p1,team-a,pool-a,W1,train,4,1.9166666666666667,50,,4,"
             "1.9833333333333334,8,2,1\n"
             "2024-12-02,c1,d1,research,p1,team-a,pool-a,W1,train,4,2,50,,4,2,8,2,1\n"
             "2024-12-02,c1,d1,research,p2,team-b,,W3,serve,1,0,,,0,0,0,0,1\n");
    free(csv);
    snprintf(path, sizeof path, "%s/reports/%s.csv", (char *)*state, team_a);
    csv = slurp(path);
    assert_non_null(csv);
    assert_string_equal(
        csv, "date,project_id,project_name,gpu_allocation_hours,gpu_idle_allocated_hours,"
             "gpu_utilization_avg_pct,gpu_memory_usage_avg_bytes,cpu_request_core_hours,"
             "cpu_usage_core_hours,cpu_memory_request_gib_hours,cpu_memory_usage_gib_hours,workloads\n"
             "2024-12-01,p1,team-a,4,1.9166666666666667,50,,4,1.9833333333333334,8,2,1\n"
             "2024-12-02,p1,team-a,4,2,50,,4,2,8,2,1\n");
    free(csv);
    api_reports_close(st);
    api_read_source_free(rd);
    tsdb_close(db);
}

/* ---- rollups against raw samples -------------------------------------------------- */

static uint64_t rng_state;
static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33) % n;
}

enum shape { SH_LEVEL, SH_ALLOC, SH_UTIL, SH_COUNTER };

/* A random series over [t0, t1): samples every 60 s (a few on odd seconds),
 * levels held for a while then changed (allocations rarely); utilization alternates runs of zeros
 * and busy runs; counters rise with resets.  Rarely a gap wider than the
 * staleness or a stale marker in the middle; a stale marker at the end. */
static size_t random_series(tsdb_sample_t *s, int64_t t0, int64_t t1, enum shape sh, double level)
{
    size_t n = 0;
    double v = level, c = 1000;
    int64_t left = 0; /* ms until the value changes */
    for (int64_t t = t0; t < t1;) {
        if (left <= 0) {
            left = (int64_t)(sh == SH_UTIL ? 20 + rnd(300) : 2 + rnd(150)) * 60000;
            if (sh == SH_UTIL)
                v = v == 0 ? (double)(1 + rnd(100)) : (rnd(3) ? 0 : (double)(1 + rnd(100)));
            else if (sh == SH_LEVEL && rnd(4) == 0)
                v = level * (double)(1 + rnd(3));
            else if (sh == SH_ALLOC && rnd(20) == 0)
                v = level + 1; /* rarely resized */
        }
        if (sh == SH_COUNTER) {
            c = rnd(500) == 0 ? (double)rnd(50) : c + (double)rnd(120) + 0.5;
            s[n++] = (tsdb_sample_t){ t, c };
        } else {
            s[n++] = (tsdb_sample_t){ t, v };
        }
        uint32_t r = rnd(1000000);
        if (r < 20) s[n++] = (tsdb_sample_t){ t + 1000, stale_nan() };
        int64_t step = r >= 20 && r < 30 ? (int64_t)(6 + rnd(30)) * 60000 : r < 20000 ? 61000 : 60000;
        if (step == 61000) step = 60000 + (int64_t)(1 + rnd(20)) * 1000; /* off the minute */
        t += step;
        left -= step;
    }
    s[n++] = (tsdb_sample_t){ t1, stale_nan() };
    return n;
}

static char *generate_csv(api_reports_tsdb_source_t *src, int64_t start, int64_t end, enum api_report_group g)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    api_report_csv_t *csv;
    assert_ok(api_reports_csv_new(f, g, &csv));
    api_report_request_t req = { 0 };
    req.id = "r";
    req.name = "r";
    req.tenant_id = 1;
    req.start_ms = start;
    req.end_ms = end;
    req.group_by = g;
    volatile int cancelled = 0;
    char err[256] = "";
    int rc = api_reports_tsdb_generate(src, &req, csv, &cancelled, err, sizeof err);
    if (rc) fail_msg("generate: %s (%s)", strata_strerror(rc), err);
    api_reports_csv_free(csv);
    fclose(f);
    return buf;
}

/* Same rows, same text columns, numbers equal to 1e-9 relative; a failure
 * names the column (empty ones counted) and shows both rows. */
static void assert_csv_close(const char *x, const char *y)
{
    size_t line = 0;
    while (*x || *y) {
        const char *ex = strchr(x, '\n'), *ey = strchr(y, '\n');
        assert_non_null(ex);
        assert_non_null(ey);
        line++;
        int nx = (int)(ex - x), ny = (int)(ey - y);
        char lx[1024], ly[1024];
        snprintf(lx, sizeof lx, "%.*s", nx, x);
        snprintf(ly, sizeof ly, "%.*s", ny, y);
        char *fx = lx, *fy = ly;
        for (int col = 0; fx || fy; col++) {
            if (!fx || !fy) fail_msg("line %zu: column counts differ\n%.*s\n%.*s", line, nx, x, ny, y);
            char *nfx = strchr(fx, ','), *nfy = strchr(fy, ',');
            if (nfx) *nfx++ = 0;
            if (nfy) *nfy++ = 0;
            char *endx, *endy;
            double dx = strtod(fx, &endx), dy = strtod(fy, &endy);
            int numeric = !*endx && !*endy && endx != fx && endy != fy;
            if ((!numeric && strcmp(fx, fy)) || (numeric && fabs(dx - dy) > 1e-9 * fmax(1, fabs(dx))))
                fail_msg("line %zu column %d: %s (rollups) vs %s (raw)\n%.*s\n%.*s", line, col, fx, fy, nx, x,
                         ny, y);
            fx = nfx;
            fy = nfy;
        }
        x = ex + 1;
        y = ey + 1;
    }
}

/* Twelve random workloads over three days, stored as blocks and a head:
 * the report from rollups equals the report from raw samples, row by row,
 * with and without groupBy, for whole days and for a range off the hour
 * grid; and most workload-days did come from rollups. */
static void test_tsdb_generator_rollups_match_raw(void **state)
{
    tsdb_t *db = open_test_db(*state, 4 * DAY);
    rng_state = 42;
    static tsdb_sample_t s[8000];
    for (int w = 0; w < 12; w++) {
        int64_t t0 = D1 - 3 * HOUR + (int64_t)rnd(40) * HOUR,
                t1 = t0 + (int64_t)(6 + rnd(70)) * HOUR + (int64_t)rnd(3600) * 1000;
        if (w < 3) {
            t0 = D1 - HOUR;
            t1 = D1 + 3 * DAY + HOUR;
        } /* all three days */
        char id[32], name[32], proj[32], ns[32], pod[32];
        snprintf(id, sizeof id, "workload_id=W%02d", w);
        snprintf(name, sizeof name, "workload_name=job-%d", w);
        snprintf(proj, sizeof proj, "project_name=team-%d", w % 3);
        snprintf(ns, sizeof ns, "namespace=ns%d", w);
        snprintf(pod, sizeof pod, "pod=p%d", w);
        size_t n = random_series(s, t0, t1, SH_LEVEL, 1);
        append_series(db, s, n, "__name__=runai_workload_info", "__tenant__=1", id, name, proj,
                      "cluster_id=c1", "department_id=d1", "department_name=research",
                      "current_nodepools=pool-a", NULL);
        n = random_series(s, t0, t1, SH_LEVEL, 1);
        append_series(db, s, n, "__name__=runai_pod_info", "__tenant__=1", id, ns, pod, NULL);
        n = random_series(s, t0, t1, SH_ALLOC, (double)(1 + rnd(4)));
        append_series(db, s, n, "__name__=runai_workload_gpu_allocation", "__tenant__=1", id, NULL);
        for (int g = 0; g < 2; g++) {
            char gpu[16];
            snprintf(gpu, sizeof gpu, "gpu=%d", g);
            /* the second GPU of some workloads starts and ends off the hour */
            int64_t g0 = g && w % 2 ? t0 + 17 * MIN : t0, g1 = g && w % 2 ? t1 - 23 * MIN : t1;
            n = random_series(s, g0, g1, SH_UTIL, 0);
            append_series(db, s, n, "__name__=DCGM_FI_DEV_GPU_UTIL", "__tenant__=1", gpu, ns, pod, NULL);
            n = random_series(s, g0, g1, SH_LEVEL, 1024.5 * (1 + g));
            append_series(db, s, n, "__name__=DCGM_FI_DEV_FB_USED", "__tenant__=1", gpu, ns, pod, NULL);
        }
        n = random_series(s, t0, t1, SH_LEVEL, 0.5);
        append_series(db, s, n, "__name__=kube_pod_container_resource_requests", "__tenant__=1", ns, pod,
                      "container=main", "resource=cpu", NULL);
        n = random_series(s, t0, t1, SH_LEVEL, 2147483648.0);
        append_series(db, s, n, "__name__=kube_pod_container_resource_requests", "__tenant__=1", ns, pod,
                      "container=main", "resource=memory", NULL);
        n = random_series(s, t0, t1, SH_COUNTER, 0);
        append_series(db, s, n, "__name__=container_cpu_usage_seconds_total", "__tenant__=1", ns, pod,
                      "container=main", NULL);
        n = random_series(s, t0, t1, SH_LEVEL, 123456789.0);
        append_series(db, s, n, "__name__=container_memory_working_set_bytes", "__tenant__=1", ns, pod,
                      "container=main", NULL);
        if (w % 4 == 3) assert_ok(tsdb_cut_head(db)); /* some blocks, some head */
    }
    /* W99, on purpose: a stale marker just after an hour starts, before its
     * first sample (ends the value held in); a counter whose only sample in
     * (23:00, 24:00] is at midnight (its rise belongs to the next day) */
    size_t n = 0;
    for (int64_t t = D1 + HOUR; t < D1 + 2 * DAY; t += MIN) {
        if (t == D1 + 5 * HOUR) s[n++] = (tsdb_sample_t){ t + 10000, stale_nan() };
        if (t < D1 + 5 * HOUR || t >= D1 + 5 * HOUR + 30 * MIN) s[n++] = (tsdb_sample_t){ t - 20000, 2 };
    }
    append_series(db, s, n, "__name__=runai_workload_gpu_allocation", "__tenant__=1", "workload_id=W99",
                  NULL);
    n = 0;
    for (int64_t t = D1 + HOUR; t < D1 + 2 * DAY; t += MIN) s[n++] = (tsdb_sample_t){ t, 50 };
    append_series(db, s, n, "__name__=runai_workload_info", "__tenant__=1", "workload_id=W99",
                  "project_name=team-9", NULL);
    append_series(db, s, n, "__name__=DCGM_FI_DEV_GPU_UTIL", "__tenant__=1", "workload_id=W99", "gpu=0",
                  NULL);
    n = 0;
    for (int64_t t = D1 + HOUR; t < D1 + 2 * DAY; t += MIN)
        if (t <= D1 + 23 * HOUR || t >= D1 + DAY) s[n++] = (tsdb_sample_t){ t, (double)(t - D1) / 1000 };
    append_series(db, s, n, "__name__=container_cpu_usage_seconds_total", "__tenant__=1", "workload_id=W99",
                  "container=main", NULL);
    api_read_source_t *rd;
    assert_ok(api_read_source_tsdb(db, &rd));
    api_reports_tsdb_source_t fast = { .reader = rd }, raw = { .reader = rd, .raw_only = 1 };
    const struct {
        int64_t start, end;
        enum api_report_group g;
    } cases[] = {
        { D1, D1 + 3 * DAY, API_REPORT_GROUP_NONE },
        { D1, D1 + 3 * DAY, API_REPORT_GROUP_PROJECT },
        { D1 - DAY, D1 + 4 * DAY, API_REPORT_GROUP_CLUSTER },
        { D1 + 5 * HOUR + 7 * MIN, D1 + 2 * DAY + 30 * MIN, API_REPORT_GROUP_NONE },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *x = generate_csv(&fast, cases[i].start, cases[i].end, cases[i].g);
        char *y = generate_csv(&raw, cases[i].start, cases[i].end, cases[i].g);
        assert_true(strlen(y) > 300);
        assert_csv_close(x, y);
        free(x);
        free(y);
    }
    uint64_t from_rollups = atomic_load(&fast.days_from_rollups), from_raw = atomic_load(&fast.days_from_raw);
    print_message("workload-days from rollups %llu, from raw samples %llu\n",
                  (unsigned long long)from_rollups, (unsigned long long)from_raw);
    /* the raw ones: days off the hour grid, stale markers between samples,
     * gaps, allocation resized in an hour with idle GPUs, a GPU reporting
     * part of an hour with another idle */
    assert_true(from_rollups * 10 >= (from_rollups + from_raw) * 4);
    assert_true(from_raw > 0);
    assert_int_equal(atomic_load(&raw.days_from_rollups), 0);
    api_read_source_free(rd);
    tsdb_close(db);
}

/* ---- hardening: range bounds, name length, bounded generation, restarts -------- */

static api_reports_t *open_store_retention(const char *dir, int64_t data_retention_ms)
{
    api_reports_options_t o;
    api_reports_options_init(&o);
    o.workers = 0;
    o.generate = gen;
    o.now_ms = now_fn;
    o.data_retention_ms = data_retention_ms;
    api_reports_t *st = NULL;
    assert_ok(api_reports_open(dir, &o, &st));
    return st;
}

/* A range outside the data that can exist is a 400 naming the bound. */
static void test_create_range_bounds(void **state)
{
    atomic_store(&g_now, T0); /* 2024-12-20T14:30:00Z */
    api_reports_t *st = open_store_retention(*state, 15 * DAY);
    expect_invalid(st,
                   "{\"name\":\"far\",\"start\":\"0001-01-01T00:00:00Z\",\"end\":\"9999-12-31T23:59:59Z\"}",
                   "start: must not be before 2024-12-05T14:30:00Z (now - the store's retention of 15d: "
                   "older samples are deleted)");
    expect_invalid(
        st, "{\"name\":\"old\",\"start\":\"2024-12-05T14:29:59.999Z\",\"end\":\"2024-12-06T00:00:00Z\"}",
        "start: must not be before 2024-12-05T14:30:00Z (now - the store's retention of 15d: "
        "older samples are deleted)");
    expect_invalid(
        st, "{\"name\":\"future\",\"start\":\"2024-12-20T00:00:00Z\",\"end\":\"2024-12-20T14:40:00.001Z\"}",
        "end: must not be after 2024-12-20T14:40:00Z (now + 10m: no samples can exist later)");
    char id[37];
    create_ok(st, 1, "alice",
              "{\"name\":\"edges\",\"start\":\"2024-12-05T14:30:00Z\",\"end\":\"2024-12-20T14:40:00Z\"}", id);
    api_reports_close(st);
    /* data kept forever: only the Unix epoch and the future bound */
    st = open_store_retention(*state, 0);
    expect_invalid(st,
                   "{\"name\":\"far\",\"start\":\"0001-01-01T00:00:00Z\",\"end\":\"9999-12-31T23:59:59Z\"}",
                   "start: must not be before 1970-01-01T00:00:00Z (the Unix epoch)");
    expect_invalid(st, "{\"name\":\"x\",\"start\":\"1969-12-31T23:59:59Z\",\"end\":\"2024-12-01T00:00:00Z\"}",
                   "start: must not be before 1970-01-01T00:00:00Z (the Unix epoch)");
    create_ok(st, 1, "alice",
              "{\"name\":\"epoch\",\"start\":\"1970-01-01T00:00:00Z\",\"end\":\"2024-12-01T00:00:00Z\"}", id);
    api_reports_close(st);
}

static void test_name_length(void **state)
{
    api_reports_t *st = open_store(*state, 0, gen, NULL);
    static char name[3 * 1024 * 1024], body[3 * 1024 * 1024 + 200];
    char id[37];
    /* 256 bytes: accepted; 257: refused; counted in UTF-8 bytes (é is 2) */
    memset(name, 'a', 256);
    name[256] = 0;
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}", name);
    create_ok(st, 1, "alice", body, id);
    name[256] = 'a';
    name[257] = 0;
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}", name);
    expect_invalid(st, body, "name: must be at most 256 bytes (UTF-8), got 257");
    name[0] = 0;
    for (int i = 0; i < 128; i++) strcat(name, "\xc3\xa9");
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}", name);
    create_ok(st, 1, "alice", body, id);
    strcat(name, "\xc3\xa9");
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}", name);
    expect_invalid(st, body, "name: must be at most 256 bytes (UTF-8), got 258");
    /* the 2 MB name of the issue */
    memset(name, 'n', 2 * 1024 * 1024);
    name[2 * 1024 * 1024] = 0;
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}", name);
    expect_invalid(st, body, "name: must be at most 256 bytes (UTF-8), got 2097152");
    api_reports_close(st);
}

/* Rewrites a stored report's metadata: status, start and the attempts count. */
static void rewrite_meta(const char *dir, const char *id, const char *status, const char *start, int attempts)
{
    char path[600];
    snprintf(path, sizeof path, "%s/reports/%s.json", dir, id);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    json_t *rep = json_object_get(j, "report");
    json_object_set_new(rep, "status", json_string(status));
    if (start) json_object_set_new(rep, "start", json_string(start));
    if (attempts) json_object_set_new(j, "attempts", json_integer(attempts));
    assert_int_equal(json_dump_file(j, path, 0), 0);
    json_decref(j);
}

/* A report that cannot be generated at start is Failed with a message, not
 * requeued: a range outside the data (an older version accepted it), or a
 * generation interrupted by a crash API_REPORTS_MAX_ATTEMPTS times. */
static void test_open_fails_hopeless(void **state)
{
    atomic_store(&g_now, T0);
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char far[37], crashy[37], once[37], pending[37];
    char body[256];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "far"), far);
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "crashy"), crashy);
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "once"), once);
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "pending"), pending);
    api_reports_close(st);
    rewrite_meta(*state, far, "Processing", "0001-01-01T00:00:00Z", 0);
    rewrite_meta(*state, crashy, "Processing", NULL, API_REPORTS_MAX_ATTEMPTS);
    rewrite_meta(*state, once, "Processing", NULL, API_REPORTS_MAX_ATTEMPTS - 1);
    rewrite_meta(*state, pending, "Pending", "2024-11-01T00:00:00Z", 0);

    api_reports_options_t o;
    api_reports_options_init(&o);
    o.workers = 0;
    o.generate = gen;
    o.generate_ctx = &g;
    o.now_ms = now_fn;
    o.data_retention_ms = 25 * DAY; /* the pending one now starts before the data */
    assert_ok(api_reports_open(*state, &o, &st));
    json_t *r = get_json(st, 1, far);
    assert_string_equal(jstr(r, "status"), "Failed");
    assert_string_equal(
        jstr(r, "statusMessage"),
        "Cannot be generated: start: must not be before 2024-11-25T14:30:00Z (now - the store's "
        "retention of 25d: older samples are deleted)");
    json_decref(r);
    r = get_json(st, 1, crashy);
    assert_string_equal(jstr(r, "status"), "Failed");
    assert_string_equal(jstr(r, "statusMessage"),
                        "Generation was interrupted 3 times (the daemon stopped during it); not tried again");
    json_decref(r);
    r = get_json(st, 1, pending);
    assert_string_equal(jstr(r, "status"), "Failed");
    json_decref(r);
    assert_status(st, 1, once, "Pending");
    /* only "once" runs; afterwards nothing is left to run */
    assert_int_equal(api_reports_run_one(st), 1);
    assert_status(st, 1, once, "Ready");
    assert_int_equal(api_reports_run_one(st), 0);
    api_reports_close(st);
    /* and it stays so */
    st = open_store_retention(*state, 25 * DAY);
    assert_status(st, 1, far, "Failed");
    assert_status(st, 1, crashy, "Failed");
    assert_status(st, 1, once, "Ready");
    assert_int_equal(api_reports_run_one(st), 0);
    api_reports_close(st);
}

/* A read source over another that records the selects the generator makes. */
typedef struct spy {
    const api_read_source_t *inner;
    int info_run, info_run_max; /* runai_workload_info selects since the last column select */
    int selects;
    int cancel_after; /* > 0: set *cancel after this many selects */
    volatile int *cancel;
    int sleep_ms; /* > 0: every select takes this long (a slow backend) */
} spy_t;

static int spy_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                      unsigned flags, int64_t deadline_ms, void **set)
{
    (void)deadline_ms;
    spy_t *sp = backend;
    tsdb_matcher_t mm[8];
    size_t k = 0;
    int32_t tenant = 0;
    const char *name = "";
    for (size_t i = 0; i < n && k < 8; i++) {
        if (strcmp(m[i].name, "__tenant__") == 0)
            tenant = atoi(m[i].value);
        else
            mm[k++] = m[i];
        if (strcmp(m[i].name, "__name__") == 0) name = m[i].value;
    }
    sp->selects++;
    if (sp->sleep_ms > 0) nanosleep(&(struct timespec){ 0, sp->sleep_ms * 1000000L }, NULL);
    if (sp->cancel_after && sp->selects >= sp->cancel_after) *sp->cancel = 1;
    if (strcmp(name, "runai_workload_info") == 0) {
        if (++sp->info_run > sp->info_run_max) sp->info_run_max = sp->info_run;
    } else if (strcmp(name, "runai_pod_info") != 0) {
        sp->info_run = 0;
    }
    return api_read_select(sp->inner, tenant, flags, NULL, mm, k, mint, maxt, (api_read_set_t **)set);
}
static int spy_next(void *set) { return api_read_set_next(set); }
static const tsdb_label_t *spy_labels(void *set, size_t *n) { return api_read_set_labels(set, n); }
static int spy_samples(void *set, const tsdb_sample_t **s, size_t *n)
{
    return api_read_set_samples(set, s, n);
}
static int spy_rollups(void *set, int64_t res, const tsdb_rollup_point_t **p, size_t *n)
{
    return api_read_set_rollups(set, res, p, n);
}
static void spy_free(void *set) { api_read_set_free(set); }
static const api_read_ops_t SPY_OPS = { spy_select, spy_next, spy_labels, spy_samples, spy_rollups,
                                        spy_free,   NULL,     NULL,       NULL };

static char spy_err[256]; /* the last spy_generate's error message */

/* Runs the generator over [a, b) through the spy; returns the CSV (malloc'ed). */
static char *spy_generate(api_reports_tsdb_source_t *src, int64_t a, int64_t b, const volatile int *cancel,
                          int *rc)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    api_report_csv_t *csv;
    assert_ok(api_reports_csv_new(f, API_REPORT_GROUP_NONE, &csv));
    api_report_request_t req = { .id = "x", .name = "x", .tenant_id = 1, .start_ms = a, .end_ms = b };
    static const int never = 0;
    spy_err[0] = 0;
    *rc = api_reports_tsdb_generate(src, &req, csv, cancel ? cancel : &never, spy_err, sizeof spy_err);
    api_reports_csv_free(csv);
    fclose(f);
    return buf;
}

/* A long range is walked in batches of at most a month of days (memory does
 * not grow with the range), with the same rows as day-sized reports give,
 * and a cancel stops it within the batch. */
static void test_tsdb_generator_batches(void **state)
{
    tsdb_t *db = open_test_db(*state, 0);
    int64_t base = D1 - 40 * DAY;
    const int64_t wdays[] = { 0, 30, 31, 45, 70, 95 }; /* batches start at days 31, 62, 93 */
    for (size_t i = 0; i < 6; i++) {
        int64_t a = base + wdays[i] * DAY + 22 * HOUR, b = a + 4 * HOUR; /* across midnight */
        put(db, a, b, 1, 0, "__name__=runai_workload_info", "__tenant__=1", "workload_id=W1",
            "workload_name=train", "cluster_id=c1", "project_id=p1", "project_name=team-a", NULL);
        put(db, a, b, 2, 0, "__name__=runai_workload_gpu_allocation", "__tenant__=1", "workload_id=W1", NULL);
        put(db, a, b, 60, 1, "__name__=container_cpu_usage_seconds_total", "__tenant__=1", "workload_id=W1",
            "container=main", NULL);
    }
    api_read_source_t *inner, *rd;
    assert_ok(api_read_source_tsdb(db, &inner));
    spy_t sp = { .inner = inner };
    assert_ok(api_read_source_new(&SPY_OPS, &sp, API_READ_CAP_ROLLUPS, &rd));
    api_reports_tsdb_source_t src = { .reader = rd };
    int rc;
    char *whole = spy_generate(&src, base, base + 100 * DAY, NULL, &rc);
    assert_ok(rc);
    assert_true(sp.info_run_max <= 31);
    /* the same rows as one report per day */
    char *want = strndup(whole, (size_t)(strchr(whole, '\n') + 1 - whole)); /* the header */
    for (int64_t d = 0; d < 100; d++) {
        char *one = spy_generate(&src, base + d * DAY, base + (d + 1) * DAY, NULL, &rc);
        assert_ok(rc);
        char *rows = strchr(one, '\n') + 1;
        want = realloc(want, strlen(want) + strlen(rows) + 1);
        strcat(want, rows);
        free(one);
    }
    assert_string_equal(whole, want);
    int nrows = 0;
    for (const char *p = whole; *p; p++) nrows += *p == '\n';
    assert_int_equal(nrows, 1 + 11); /* days 30 and 31 share a row */
    free(want);
    free(whole);
    /* cancelled after 40 selects: stops before the next day */
    volatile int cancel = 0;
    sp.selects = 0;
    sp.cancel_after = 40;
    sp.cancel = &cancel;
    free(spy_generate(&src, base, base + 100 * DAY, &cancel, &rc));
    assert_int_equal(rc, STRATA_ECLOSED);
    assert_true(sp.selects <= 41);
    api_read_source_free(rd);
    api_read_source_free(inner);
    tsdb_close(db);
}

/* A report's reads stop at its deadline (--report-timeout): a slow backend
 * fails the generation with a message naming the flag, where no deadline lets
 * it finish. */
static void test_tsdb_generator_deadline(void **state)
{
    tsdb_t *db = open_test_db(*state, 0);
    int64_t a = D1 + 22 * HOUR, b = a + 4 * HOUR;
    put(db, a, b, 1, 0, "__name__=runai_workload_info", "__tenant__=1", "workload_id=W1",
        "workload_name=train", "cluster_id=c1", "project_id=p1", "project_name=team-a", NULL);
    put(db, a, b, 2, 0, "__name__=runai_workload_gpu_allocation", "__tenant__=1", "workload_id=W1", NULL);
    api_read_source_t *inner, *rd;
    assert_ok(api_read_source_tsdb(db, &inner));
    spy_t sp = { .inner = inner, .sleep_ms = 20 };
    assert_ok(api_read_source_new(&SPY_OPS, &sp, API_READ_CAP_ROLLUPS, &rd));
    api_reports_tsdb_source_t src = { .reader = rd, .timeout_ms = 50 };
    int rc;
    free(spy_generate(&src, D1, D1 + 10 * DAY, NULL, &rc));
    assert_err(rc, STRATA_ETIMEOUT);
    assert_non_null(strstr(spy_err, "ran past --report-timeout (50 ms)"));
    int timed_out_after = sp.selects;
    /* without a deadline the same report completes, with more selects */
    src.timeout_ms = 0;
    sp.selects = 0;
    sp.sleep_ms = 0;
    char *csv = spy_generate(&src, D1, D1 + 10 * DAY, NULL, &rc);
    assert_ok(rc);
    assert_non_null(strstr(csv, "W1,train"));
    assert_true(sp.selects > timed_out_after);
    free(csv);
    api_read_source_free(rd);
    api_read_source_free(inner);
    tsdb_close(db);
}

/* Report ids are uuids: get, file and delete find one in any case (RFC
 * 4122), and the Report echoes the id as stored (lower case). */
static void test_uuid_any_case(void **state)
{
    gen_ctx_t g;
    gen_ctx_init(&g);
    api_reports_t *st = open_store(*state, 0, gen, &g);
    char body[256], id[37], up[37];
    create_ok(st, 1, "alice", simple_body(body, sizeof body, "cased"), id);
    assert_int_equal(api_reports_run_one(st), 1);
    for (int i = 0; i < 37; i++) up[i] = (char)toupper((unsigned char)id[i]);
    assert_string_not_equal(up, id);
    json_t *j = get_json(st, 1, up);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    json_decref(j);
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    api_reports_file_t f;
    assert_ok(api_reports_open_file(st, 1, up, a, &f, &r));
    close(f.fd);
    assert_err(api_reports_get(st, 2, up, a, &r), STRATA_ENOTFOUND);
    assert_ok(api_reports_delete(st, 1, up));
    assert_err(api_reports_get(st, 1, id, a, &r), STRATA_ENOTFOUND);
    strata_arena_free(a);
    api_reports_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lifecycle_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_damaged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processing_requeued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_repairs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_mid_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_requeues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_group_by_expires, setup, teardown),
        cmocka_unit_test(test_file_json),
        cmocka_unit_test(test_agg_gpu_hours),
        cmocka_unit_test(test_agg_midnight_split),
        cmocka_unit_test(test_agg_cpu_counter_reset),
        cmocka_unit_test(test_agg_idle_hours),
        cmocka_unit_test_setup_teardown(test_agg_groups_and_filters, setup, teardown),
        cmocka_unit_test(test_csv_writer),
        cmocka_unit_test_setup_teardown(test_tsdb_generator, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsdb_generator_rollups_match_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uuid_any_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_range_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails_hopeless, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsdb_generator_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tsdb_generator_deadline, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
