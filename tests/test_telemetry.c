/*
 * test_telemetry.c: GET /workloads/telemetry's computation
 * (api/workloads/telemetry.h).
 *
 * A fixture cluster is fed through api_registry_observe() exactly as ingest
 * will (sorted labels, tenant label included): nine live workloads of tenant
 * 1 with known phases (and since when), clusters, departments, projects,
 * types, categories, nodepools, GPU allocations and GPU utilisation, one
 * deleted workload, and one workload of tenant 2.  Every expected value below
 * is worked out by hand from the table in fixture().
 *
 * Each answer is parsed back with jansson and summarised as
 * "v1|v2(name)=value ..." (cluster uuids shown as C1/C2) to compare with the
 * expectation.  With TELEMETRY_FIXTURE_DIR set, every JSON and CSV body the
 * tests compute is also written there, so
 * tests/integration/test_telemetry_schema.py validates each JSON body
 * against the spec and each CSV body against its JSON twin.
 */
#include "test_helpers.h"

#include <jansson.h>

#include "registry.h"
#include "strata_arena.h"
#include "strata_time.h"
#include "telemetry.h"
#include "tsdb.h"

#define SEC    1000LL
#define MIN    (60 * SEC)
#define HOUR   (60 * MIN)
#define N      (1734705000000LL + 48 * HOUR) /* "now": 2024-12-22T14:30:00Z */
#define N_TEXT "2024-12-22T14:30:00Z"

#define C1     "7b2f4c1d-1111-4222-8333-444455556666"
#define C2     "7b2f4c1d-2222-4222-8333-444455556666"
#define WL(x)  "3f1c1a2e-0000-4000-8000-00000000000" x

typedef struct kv {
    const char *k, *v;
} kv_t;

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

/* Feeds one series as ingest would: __name__ + kv + the tenant label, sorted.
 * Labels with an empty value are left out, as ingest drops them. */
static void observe_kv(api_registry_t *r, int32_t tenant, const char *metric, const kv_t *kv, size_t nkv,
                       const tsdb_sample_t *s, size_t ns)
{
    tsdb_label_t l[40];
    char tbuf[16];
    size_t n = 0;
    snprintf(tbuf, sizeof tbuf, "%d", tenant);
    l[n++] = (tsdb_label_t){ "__name__", metric };
    l[n++] = (tsdb_label_t){ "__tenant__", tbuf };
    for (size_t i = 0; i < nkv && n < 40; i++)
        if (kv[i].v && *kv[i].v) l[n++] = (tsdb_label_t){ kv[i].k, kv[i].v };
    qsort(l, n, sizeof *l, label_cmp);
    assert_ok(api_registry_observe(r, tenant, l, n, s, ns));
}

/* One sample per `step` over [from, to], all of value v. */
static void range_kv(api_registry_t *r, int32_t tenant, const char *metric, int64_t from, int64_t to,
                     int64_t step, double v, const kv_t *kv, size_t nkv)
{
    size_t ns = (size_t)((to - from) / step) + 1;
    tsdb_sample_t *s = calloc(ns, sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < ns; i++) s[i] = (tsdb_sample_t){ from + (int64_t)i * step, v };
    observe_kv(r, tenant, metric, kv, nkv, s, ns);
    free(s);
}

#define KV(...) ((const kv_t[]){ __VA_ARGS__ }), (sizeof((const kv_t[]){ __VA_ARGS__ }) / sizeof(kv_t))
#define RANGE(r, ten, metric, from, to, step, v, ...) \
    range_kv(r, ten, metric, from, to, step, v, KV(__VA_ARGS__))

/* ---- the fixture cluster ------------------------------------------------------ */

typedef struct wl {
    const char *id, *phase;
    int64_t since; /* the current phase started at N - since */
    const char *cluster, *dept, *dept_name, *proj, *proj_name, *type, *category, *cur, *req;
    double alloc;    /* < 0: no allocation series */
    int64_t created; /* created_at = N - created */
} wl_t;

/*
 * | wl | phase     | since   | cl | dept        | project      | type      | cat    | current       | requested     | GPUs | idle |
 * | A  | Running   | 2h      | C1 | 1 research  | 10 nlp       | Training  | Train  | pool-a        | pool-a        | 2    | 2    |
 * | B  | Running   | 3h      | C1 | 1 research  | 11 vision    | Workspace | Build  | pool-a,pool-b | pool-b        | 1    | 0    |
 * | C  | Running   | 1h      | C2 | 2 ops       | 20 infra,..  | Inference | Deploy | pool-b        | pool-b        | 0.5  | 0    |
 * | D  | Pending   | 30m     | C1 | 1 research  | 10 nlp       | Training  | Train  | -             | pool-c        | -    | 0    |
 * | E  | Pending   | 1h      | C1 | 2 ops       | 20 infra,..  | Training  | Train  | -             | pool-a        | -    | 0    |
 * | F  | Pending   | 7h      | C2 | 1 (old nm)  | 11 vision    | Workspace | Build  | -             | pool-b        | -    | 0    |
 * | G  | Pending   | 30h     | C1 | 1 research  | 10 nlp       | Training  | Train  | -             | pool-a,pool-c | -    | 0    |
 * | H  | Completed | 10m     | C2 | 2 ops       | 20 infra,..  | Training  | Train  | pool-c        | pool-c        | 0.25 | 0    |
 * | K  | Pending   | 59m59s  | C2 | 2 ops       | 20 infra,..  | Inference | Deploy | -             | pool-b        | -    | 0    |
 * I (tenant 1) was deleted 15 minutes ago; J belongs to tenant 2.
 * Idle: A's GPU has been at 0% for 6 minutes (idle), B's for 4 minutes (not
 * yet), C's is at 0% except one 3% sample 2 minutes ago (not idle).
 */
#define PROJ20 "infra, \"core\""
static const wl_t FIXTURE[] = {
    { WL("a"), "Running", 2 * HOUR, C1, "1", "research", "10", "nlp", "Training", "Train", "pool-a", "pool-a",
      2, 4 * HOUR },
    { WL("b"), "Running", 3 * HOUR, C1, "1", "research", "11", "vision", "Workspace", "Build",
      "pool-a, pool-b", "pool-b", 1, 4 * HOUR },
    { WL("c"), "Running", 1 * HOUR, C2, "2", "ops", "20", PROJ20, "Inference", "Deploy", "pool-b", "pool-b",
      0.5, 3 * HOUR },
    { WL("d"), "Pending", 30 * MIN, C1, "1", "research", "10", "nlp", "Training", "Train", "", "pool-c", -1,
      30 * MIN },
    { WL("e"), "Pending", 1 * HOUR, C1, "2", "ops", "20", PROJ20, "Training", "Train", "", "pool-a", -1,
      1 * HOUR },
    { WL("f"), "Pending", 7 * HOUR, C2, "1", "research-old", "11", "vision", "Workspace", "Build", "",
      "pool-b", -1, 7 * HOUR },
    { WL("9"), "Pending", 30 * HOUR, C1, "1", "research", "10", "nlp", "Training", "Train", "",
      "pool-a,pool-c,pool-a", -1, 30 * HOUR },
    { WL("8"), "Completed", 10 * MIN, C2, "2", "ops", "20", PROJ20, "Training", "Train", "pool-c", "pool-c",
      0.25, 5 * HOUR },
    { WL("7"), "Pending", HOUR - SEC, C2, "2", "ops", "20", PROJ20, "Inference", "Deploy", "", "pool-b", -1,
      HOUR },
};
#define NFIX (sizeof FIXTURE / sizeof FIXTURE[0])

static void feed_workload(api_registry_t *r, int32_t ten, const wl_t *w)
{
    char created[STRATA_TIME_RFC3339_BUFSZ];
    assert_true(strata_time_format_rfc3339(N - w->created, created, sizeof created) > 0);
    RANGE(r, ten, "runai_workload_info", N - MIN, N - MIN, MIN, 1, { "workload_id", w->id },
          { "workload_name", w->id + 30 }, { "workload_type", w->type }, { "category", w->category },
          { "project_id", w->proj }, { "project_name", w->proj_name }, { "department_id", w->dept },
          { "department_name", w->dept_name }, { "cluster_id", w->cluster }, { "current_nodepools", w->cur },
          { "requested_nodepools", w->req }, { "created_at", created });
    /* A phase run starts at its first value-1 sample and lasts until another
     * phase starts, so two samples (start, recent) are enough.  Workloads not
     * Pending now were Pending for an hour before, which must not count. */
    tsdb_sample_t s[3];
    if (strcmp(w->phase, "Pending")) {
        s[0] = (tsdb_sample_t){ N - w->since - HOUR, 1 };
        s[1] = (tsdb_sample_t){ N - w->since, 0 };
        s[2] = (tsdb_sample_t){ N - MIN, 0 };
        observe_kv(r, ten, "runai_workload_phase", KV({ "workload_id", w->id }, { "phase", "Pending" }), s,
                   3);
    }
    s[0] = (tsdb_sample_t){ N - w->since, 1 };
    s[1] = (tsdb_sample_t){ N - MIN, 1 };
    observe_kv(r, ten, "runai_workload_phase", KV({ "workload_id", w->id }, { "phase", w->phase }), s, 2);
    if (w->alloc >= 0)
        RANGE(r, ten, "runai_workload_gpu_allocation", N - MIN, N - MIN, MIN, w->alloc,
              { "workload_id", w->id });
}

static api_registry_t *fixture(void)
{
    api_registry_t *r;
    assert_ok(api_registry_new(NULL, &r));
    for (size_t i = 0; i < NFIX; i++) feed_workload(r, 1, &FIXTURE[i]);
    const int64_t step = 15 * SEC;
    /* A: busy until 6 minutes ago, 0% since: idle (threshold 5m) */
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", N - 10 * MIN, N - 6 * MIN - step, step, 80, { "gpu", "0" },
          { "UUID", "GPU-a" }, { "workload_id", WL("a") });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", N - 6 * MIN, N, step, 0, { "gpu", "0" }, { "UUID", "GPU-a" },
          { "workload_id", WL("a") });
    /* B: 0% for 4 minutes only */
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", N - 10 * MIN, N - 4 * MIN - step, step, 35, { "gpu", "0" },
          { "UUID", "GPU-b" }, { "workload_id", WL("b") });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", N - 4 * MIN, N, step, 0, { "gpu", "0" }, { "UUID", "GPU-b" },
          { "workload_id", WL("b") });
    /* C: 0% for 10 minutes but for one 3% sample 2 minutes ago */
    tsdb_sample_t s[41];
    for (int i = 0; i < 41; i++) s[i] = (tsdb_sample_t){ N - 10 * MIN + i * step, 0 };
    s[32].v = 3;
    assert_int_equal(s[32].t, N - 2 * MIN);
    observe_kv(r, 1, "DCGM_FI_DEV_GPU_UTIL",
               KV({ "gpu", "0" }, { "UUID", "GPU-c" }, { "workload_id", WL("c") }), s, 41);

    /* I: deleted (info ended 20 minutes ago, + 5m staleness) though its
     * allocation still holds; J: tenant 2's. */
    RANGE(r, 1, "runai_workload_info", N - 30 * MIN, N - 20 * MIN, 30 * SEC, 1, { "workload_id", WL("6") },
          { "cluster_id", C1 }, { "department_id", "1" }, { "project_id", "10" },
          { "current_nodepools", "pool-a" });
    RANGE(r, 1, "runai_workload_phase", N - 30 * MIN, N - MIN, 30 * SEC, 1, { "workload_id", WL("6") },
          { "phase", "Running" });
    RANGE(r, 1, "runai_workload_gpu_allocation", N - 30 * MIN, N - MIN, 30 * SEC, 8,
          { "workload_id", WL("6") });
    wl_t j = FIXTURE[0];
    j.id = WL("5");
    j.alloc = 16;
    feed_workload(r, 2, &j);
    RANGE(r, 2, "DCGM_FI_DEV_GPU_UTIL", N - 10 * MIN, N, step, 0, { "gpu", "0" }, { "UUID", "GPU-j" },
          { "workload_id", WL("5") });
    return r;
}

/* ---- running a query ---------------------------------------------------------- */

/* "a=1&b=2" -> params (in buf, no URL decoding needed here). */
static size_t split_query(const char *q, char *buf, size_t cap, api_telemetry_param_t *p, size_t maxp)
{
    snprintf(buf, cap, "%s", q);
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "&", &save); t && n < maxp; t = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(t, '=');
        if (eq) *eq = '\0';
        p[n++] = (api_telemetry_param_t){ t, eq ? eq + 1 : "" };
    }
    return n;
}

static int g_fixture_seq;

static void write_fixture(const char *ext, const char *query, const char *body, size_t len)
{
    const char *dir = getenv("TELEMETRY_FIXTURE_DIR");
    if (!dir || !*dir) return;
    char path[600];
    snprintf(path, sizeof path, "%s/case%03d.%s", dir, g_fixture_seq, ext);
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s", path);
    fwrite(body, 1, len, f);
    fclose(f);
    if (!strcmp(ext, "json")) { /* the query, for the schema test's messages */
        snprintf(path, sizeof path, "%s/case%03d.query", dir, g_fixture_seq);
        if (!(f = fopen(path, "w"))) fail_msg("cannot write %s", path);
        fputs(query, f);
        fclose(f);
    }
}

static const char *run_fmt(api_registry_t *r, int32_t ten, const char *query, int64_t now,
                           api_telemetry_format_t fmt, strata_arena_t *a)
{
    char buf[512], err[256];
    api_telemetry_param_t p[16];
    size_t n = split_query(query, buf, sizeof buf, p, 16);
    api_telemetry_request_t *req;
    int rc = api_telemetry_parse(p, n, a, &req, err, sizeof err);
    if (rc) fail_msg("parse(%s): %s: %s", query, strata_strerror(rc), err);
    char *body;
    size_t len;
    assert_ok(api_telemetry_compute(r, ten, req, now, fmt, a, &body, &len));
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    write_fixture(fmt == API_TELEMETRY_CSV ? "csv" : "json", query, body, len);
    if (fmt == API_TELEMETRY_JSON) {
        /* byte for byte what jansson writes for the same document */
        json_error_t jerr;
        json_t *j = json_loads(body, 0, &jerr);
        if (!j) fail_msg("%s: bad JSON (%s): %s", query, jerr.text, body);
        char *again = json_dumps(j, JSON_COMPACT);
        assert_non_null(again);
        if (strcmp(again, body)) fail_msg("%s: jansson writes\n  %s\nnot\n  %s", query, again, body);
        free(again);
        json_decref(j);
    }
    return body;
}

/* Both bodies of a query, written to the fixture dir as one case. */
static void both(api_registry_t *r, int32_t ten, const char *query, int64_t now, strata_arena_t *a,
                 const char **json, const char **csv)
{
    g_fixture_seq++;
    *json = run_fmt(r, ten, query, now, API_TELEMETRY_JSON, a);
    *csv = run_fmt(r, ten, query, now, API_TELEMETRY_CSV, a);
}

static const char *json_of(api_registry_t *r, int32_t ten, const char *query, int64_t now, strata_arena_t *a)
{
    const char *j, *c;
    both(r, ten, query, now, a, &j, &c);
    return j;
}

static const char *csv_of(api_registry_t *r, int32_t ten, const char *query, int64_t now, strata_arena_t *a)
{
    const char *j, *c;
    both(r, ten, query, now, a, &j, &c);
    return c;
}

static const char *short_value(const char *v) { return !strcmp(v, C1) ? "C1" : !strcmp(v, C2) ? "C2" : v; }

/* Parses a TelemetryResponse, checks its frame (type, timestamp, group keys)
 * and returns "v1|v2(name)=value v1|v2=value ..." in out. */
static void summarise(const char *body, const char *type, int64_t now, const char *keys, char *out,
                      size_t cap)
{
    json_error_t jerr;
    json_t *j = json_loads(body, 0, &jerr);
    if (!j) fail_msg("bad JSON (%s): %s", jerr.text, body);
    assert_int_equal(json_object_size(j), 3);
    assert_string_equal(json_string_value(json_object_get(j, "type")), type);
    char ts[STRATA_TIME_RFC3339_BUFSZ];
    assert_true(strata_time_format_rfc3339(now, ts, sizeof ts) > 0);
    assert_string_equal(json_string_value(json_object_get(j, "timestamp")), ts);
    json_t *values = json_object_get(j, "values");
    assert_true(json_is_array(values));
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(values); i++) {
        json_t *v = json_array_get(values, i), *groups = json_object_get(v, "groups");
        assert_true(json_is_string(json_object_get(v, "value")));
        assert_true(json_is_array(groups));
        char gk[128] = "";
        size_t gl = 0;
        if (i) used += (size_t)snprintf(out + used, cap - used, " ");
        for (size_t g = 0; g < json_array_size(groups); g++) {
            json_t *grp = json_array_get(groups, g);
            json_t *name = json_object_get(grp, "name");
            gl += (size_t)snprintf(gk + gl, sizeof gk - gl, "%s%s", g ? "," : "",
                                   json_string_value(json_object_get(grp, "key")));
            used += (size_t)snprintf(out + used, cap - used, "%s%s", g ? "|" : "",
                                     short_value(json_string_value(json_object_get(grp, "value"))));
            if (name) used += (size_t)snprintf(out + used, cap - used, "(%s)", json_string_value(name));
        }
        assert_string_equal(gk, keys);
        used += (size_t)snprintf(out + used, cap - used, "=%s",
                                 json_string_value(json_object_get(v, "value")));
        assert_true(used < cap);
    }
    json_decref(j);
}

/* Runs query (JSON and CSV; both go to the fixture dir) and compares the
 * JSON's summary with want. */
static void check_at(api_registry_t *r, int32_t ten, int64_t now, const char *query, const char *keys,
                     const char *want)
{
    strata_arena_t *a = strata_arena_new(0);
    assert_non_null(a);
    const char *body = json_of(r, ten, query, now, a);
    const char *t = strstr(query, "telemetryType=");
    assert_non_null(t);
    char type[64];
    snprintf(type, sizeof type, "%.*s", (int)strcspn(t + 14, "&"), t + 14);
    char got[2048];
    summarise(body, type, now, keys, got, sizeof got);
    if (strcmp(got, want)) fail_msg("%s:\n  got  \"%s\"\n  want \"%s\"", query, got, want);
    strata_arena_free(a);
}
#define check(r, q, keys, want) check_at(r, 1, N, q, keys, want)

/* The query parses but computing it is STRATA_ENOTFOUND (a 404): clusterId
 * names a cluster the tenant's workloads never carried. */
static void compute_fails(api_registry_t *r, int32_t ten, const char *query)
{
    strata_arena_t *a = strata_arena_new(0);
    assert_non_null(a);
    char buf[512], err[256];
    api_telemetry_param_t p[16];
    size_t n = split_query(query, buf, sizeof buf, p, 16);
    api_telemetry_request_t *req;
    assert_ok(api_telemetry_parse(p, n, a, &req, err, sizeof err));
    char *body = NULL;
    size_t len = 0;
    for (int fmt = API_TELEMETRY_JSON; fmt <= API_TELEMETRY_CSV; fmt++) {
        int rc = api_telemetry_compute(r, ten, req, N, (api_telemetry_format_t)fmt, a, &body, &len);
        if (rc != STRATA_ENOTFOUND) fail_msg("%s: want not found, got %s", query, strata_strerror(rc));
    }
    strata_arena_free(a);
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_totals(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    check(r, "telemetryType=WORKLOADS_COUNT", "", "=9");
    check(r, "telemetryType=GPU_ALLOCATION", "", "=3.75");
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS", "", "=2");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION", "PendingTime", "0-1h=2 1h-6h=1 6h-24h=1 24h+=1");
    api_registry_free(r);
}

static void test_exact_bodies(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    strata_arena_t *a = strata_arena_new(0);
    assert_string_equal(
        json_of(r, 1, "telemetryType=GPU_ALLOCATION&groupBy=DepartmentId", N, a),
        "{\"type\":\"GPU_ALLOCATION\",\"timestamp\":\"" N_TEXT "\",\"values\":["
        "{\"value\":\"3\",\"groups\":[{\"key\":\"DepartmentId\",\"value\":\"1\",\"name\":\"research\"}]},"
        "{\"value\":\"0.75\",\"groups\":[{\"key\":\"DepartmentId\",\"value\":\"2\",\"name\":\"ops\"}]}]}");
    assert_string_equal(csv_of(r, 1, "telemetryType=GPU_ALLOCATION&groupBy=DepartmentId", N, a),
                        "DepartmentId,DepartmentName,value\n1,research,3\n2,ops,0.75\n");
    assert_string_equal(json_of(r, 1, "telemetryType=WORKLOADS_COUNT", N, a),
                        "{\"type\":\"WORKLOADS_COUNT\",\"timestamp\":\"" N_TEXT "\",\"values\":["
                        "{\"value\":\"9\",\"groups\":[]}]}");
    assert_string_equal(csv_of(r, 1, "telemetryType=WORKLOADS_COUNT", N, a), "value\n9\n");
    /* CSV quoting (RFC 4180) of a project name with a comma and quotes */
    assert_string_equal(csv_of(r, 1, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=ProjectId", N, a),
                        "PendingTime,ProjectId,ProjectName,value\n"
                        "0-1h,10,nlp,1\n0-1h,11,vision,0\n0-1h,20,\"infra, \"\"core\"\"\",1\n"
                        "1h-6h,10,nlp,0\n1h-6h,11,vision,0\n1h-6h,20,\"infra, \"\"core\"\"\",1\n"
                        "6h-24h,10,nlp,0\n6h-24h,11,vision,1\n6h-24h,20,\"infra, \"\"core\"\"\",0\n"
                        "24h+,10,nlp,1\n24h+,11,vision,0\n24h+,20,\"infra, \"\"core\"\"\",0\n");
    assert_string_equal(
        csv_of(r, 1, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=ClusterId,CurrentNodepools", N, a),
        "ClusterId,CurrentNodepools,value\n" C1 ",,0\n" C1 ",pool-a,2\n" C1 ",pool-b,0\n" C2 ",,0\n" C2
        ",pool-b,0\n" C2 ",pool-c,0\n");
    /* groupBy given and nothing matches: no values at all */
    assert_string_equal(
        json_of(r, 1, "telemetryType=WORKLOADS_COUNT&groupBy=Phase&filterByPhases=Failed", N, a),
        "{\"type\":\"WORKLOADS_COUNT\",\"timestamp\":\"" N_TEXT "\",\"values\":[]}");
    assert_string_equal(
        csv_of(r, 1, "telemetryType=WORKLOADS_COUNT&groupBy=Phase&filterByPhases=Failed", N, a),
        "Phase,value\n");
    strata_arena_free(a);
    api_registry_free(r);
}

static void test_group_by_each_key(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    /* WORKLOADS_COUNT */
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=ClusterId", "ClusterId", "C1=5 C2=4");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId", "DepartmentId", "1(research)=5 2(ops)=4");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=ProjectId", "ProjectId",
          "10(nlp)=3 11(vision)=2 20(" PROJ20 ")=4");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=Type", "Type", "Inference=2 Training=5 Workspace=2");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=CurrentNodepools", "CurrentNodepools",
          "=5 pool-a=2 pool-b=2 pool-c=1");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=RequestedNodepools", "RequestedNodepools",
          "pool-a=3 pool-b=4 pool-c=3");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=Phase", "Phase", "Completed=1 Pending=5 Running=3");
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=Category", "Category", "Build=2 Deploy=2 Train=5");
    /* GPU_ALLOCATION */
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=ClusterId", "ClusterId", "C1=3 C2=0.75");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=ProjectId", "ProjectId",
          "10(nlp)=2 11(vision)=1 20(" PROJ20 ")=0.75");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=Type", "Type", "Inference=0.5 Training=2.25 Workspace=1");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=CurrentNodepools", "CurrentNodepools",
          "=0 pool-a=3 pool-b=1.5 pool-c=0.25");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=RequestedNodepools", "RequestedNodepools",
          "pool-a=2 pool-b=1.5 pool-c=0.25");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=Phase", "Phase", "Completed=0.25 Pending=0 Running=3.5");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=Category", "Category", "Build=1 Deploy=0.5 Train=2.25");
    /* IDLE_ALLOCATED_GPUS */
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=DepartmentId", "DepartmentId",
          "1(research)=2 2(ops)=0");
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=Type", "Type", "Inference=0 Training=2 Workspace=0");
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=Phase", "Phase", "Completed=0 Pending=0 Running=2");
    /* PENDING_TIME_DISTRIBUTION with one more key */
    /* all 4 buckets for every value that has a workload, zeros included */
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=ClusterId", "PendingTime,ClusterId",
          "0-1h|C1=1 0-1h|C2=1 1h-6h|C1=1 1h-6h|C2=0 6h-24h|C1=0 6h-24h|C2=1 24h+|C1=1 24h+|C2=0");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=DepartmentId", "PendingTime,DepartmentId",
          "0-1h|1(research)=1 0-1h|2(ops)=1 1h-6h|1(research)=0 1h-6h|2(ops)=1 6h-24h|1(research-old)=1 "
          "6h-24h|2(ops)=0 24h+|1(research)=1 24h+|2(ops)=0");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Type", "PendingTime,Type",
          "0-1h|Inference=1 0-1h|Training=1 0-1h|Workspace=0 1h-6h|Inference=0 1h-6h|Training=1 "
          "1h-6h|Workspace=0 6h-24h|Inference=0 6h-24h|Training=0 6h-24h|Workspace=1 24h+|Inference=0 "
          "24h+|Training=1 24h+|Workspace=0");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=RequestedNodepools",
          "PendingTime,RequestedNodepools",
          "0-1h|pool-a=0 0-1h|pool-b=1 0-1h|pool-c=1 1h-6h|pool-a=1 1h-6h|pool-b=0 1h-6h|pool-c=0 "
          "6h-24h|pool-a=0 6h-24h|pool-b=1 6h-24h|pool-c=0 24h+|pool-a=1 24h+|pool-b=0 24h+|pool-c=1");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=CurrentNodepools",
          "PendingTime,CurrentNodepools", "0-1h|=2 1h-6h|=1 6h-24h|=1 24h+|=1");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Phase", "PendingTime,Phase",
          "0-1h|Pending=2 1h-6h|Pending=1 6h-24h|Pending=1 24h+|Pending=1");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Category", "PendingTime,Category",
          "0-1h|Build=0 0-1h|Deploy=1 0-1h|Train=1 1h-6h|Build=0 1h-6h|Deploy=0 1h-6h|Train=1 "
          "6h-24h|Build=1 6h-24h|Deploy=0 6h-24h|Train=0 24h+|Build=0 24h+|Deploy=0 24h+|Train=1");
    api_registry_free(r);
}

static void test_group_by_pairs(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId,Phase", "DepartmentId,Phase",
          "1(research)|Pending=3 1(research)|Running=2 2(ops)|Completed=1 2(ops)|Pending=2 "
          "2(ops)|Running=1");
    /* the order of the keys is the order given */
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=Phase,DepartmentId", "Phase,DepartmentId",
          "Completed|2(ops)=1 Pending|1(research)=3 Pending|2(ops)=2 Running|1(research)=2 "
          "Running|2(ops)=1");
    /* both keys multi-valued: a workload counts once per pair (B twice, G twice) */
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=CurrentNodepools,RequestedNodepools",
          "CurrentNodepools,RequestedNodepools",
          "|pool-a=2 |pool-b=2 |pool-c=2 pool-a|pool-a=1 pool-a|pool-b=1 pool-b|pool-b=2 "
          "pool-c|pool-c=1");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=ClusterId,CurrentNodepools", "ClusterId,CurrentNodepools",
          "C1|=0 C1|pool-a=3 C1|pool-b=1 C2|=0 C2|pool-b=0.5 C2|pool-c=0.25");
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=ProjectId,Category", "ProjectId,Category",
          "10(nlp)|Train=2 11(vision)|Build=1 20(" PROJ20 ")|Deploy=0.5 20(" PROJ20 ")|Train=0.25");
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=ClusterId,Type", "ClusterId,Type",
          "C1|Training=2 C1|Workspace=0 C2|Inference=0 C2|Training=0 C2|Workspace=0");
    /* repeated groupBy parameters add up the same as a comma list */
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=Category&groupBy=ClusterId", "Category,ClusterId",
          "Build|C1=1 Build|C2=1 Deploy|C2=2 Train|C1=4 Train|C2=1");
    api_registry_free(r);
}

static void test_filters(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    check(r, "telemetryType=WORKLOADS_COUNT&clusterId=" C2, "", "=4");
    check(r, "telemetryType=GPU_ALLOCATION&clusterId=" C2, "", "=0.75");
    /* uuids compare case-insensitively */
    check(r, "telemetryType=WORKLOADS_COUNT&clusterId=7B2F4C1D-2222-4222-8333-444455556666", "", "=4");
    /* a cluster no workload of the tenant ever carried: 404 */
    compute_fails(r, 1, "telemetryType=WORKLOADS_COUNT&clusterId=00000000-0000-4000-8000-000000000000");
    compute_fails(
        r, 1, "telemetryType=WORKLOADS_COUNT&clusterId=00000000-0000-4000-8000-000000000000&groupBy=Type");
    /* nodepoolName: current nodepools (D-G, K request pools but run nowhere) */
    check(r, "telemetryType=WORKLOADS_COUNT&nodepoolName=pool-a", "", "=2");
    check(r, "telemetryType=GPU_ALLOCATION&nodepoolName=pool-a", "", "=3");
    check(r, "telemetryType=GPU_ALLOCATION&nodepoolName=pool-b&groupBy=ProjectId", "ProjectId",
          "11(vision)=1 20(" PROJ20 ")=0.5");
    check(r, "telemetryType=WORKLOADS_COUNT&nodepoolName=pool-c", "", "=1");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&nodepoolName=pool-c", "PendingTime",
          "0-1h=0 1h-6h=0 6h-24h=0 24h+=0");
    check(r, "telemetryType=WORKLOADS_COUNT&departmentId=2", "", "=4");
    check(r, "telemetryType=GPU_ALLOCATION&departmentId=2&groupBy=Phase", "Phase",
          "Completed=0.25 Pending=0 Running=0.5");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&departmentId=1", "PendingTime",
          "0-1h=1 1h-6h=0 6h-24h=1 24h+=1");
    check(r, "telemetryType=WORKLOADS_COUNT&departmentId=3", "", "=0");
    check(r, "telemetryType=WORKLOADS_COUNT&filterByPhases=Running,Completed", "", "=4");
    check(r, "telemetryType=GPU_ALLOCATION&filterByPhases=Running,Completed", "", "=3.75");
    check(r, "telemetryType=WORKLOADS_COUNT&filterByPhases=Pending&groupBy=ClusterId", "ClusterId",
          "C1=3 C2=2");
    check(r, "telemetryType=WORKLOADS_COUNT&filterByPhases=Running&filterByPhases=Completed", "", "=4");
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS&filterByPhases=Running", "", "=2");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&filterByPhases=Running", "PendingTime",
          "0-1h=0 1h-6h=0 6h-24h=0 24h+=0");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&filterByPhases=Pending,Running&groupBy=ClusterId",
          "PendingTime,ClusterId",
          "0-1h|C1=1 0-1h|C2=1 1h-6h|C1=1 1h-6h|C2=0 6h-24h|C1=0 6h-24h|C2=1 24h+|C1=1 24h+|C2=0");
    /* all filters at once */
    check(r,
          "telemetryType=WORKLOADS_COUNT&clusterId=" C1 "&departmentId=1&filterByPhases=Pending"
          "&groupBy=ProjectId",
          "ProjectId", "10(nlp)=2");
    check(r,
          "telemetryType=GPU_ALLOCATION&clusterId=" C1 "&departmentId=1&nodepoolName=pool-b"
          "&filterByPhases=Running,Pending&groupBy=Type,CurrentNodepools",
          "Type,CurrentNodepools", "Workspace|pool-a=1 Workspace|pool-b=1");
    /* empty optional parameters count as absent; unknown ones are ignored */
    check(r,
          "telemetryType=WORKLOADS_COUNT&groupBy=&clusterId=&nodepoolName=&departmentId="
          "&filterByPhases=&limit=3",
          "", "=9");
    api_registry_free(r);
}

static void test_pending_buckets_move_with_now(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    /* one second earlier, E has been Pending for 59m59s and K for 59m58s */
    check_at(r, 1, N - SEC, "telemetryType=PENDING_TIME_DISTRIBUTION", "PendingTime",
             "0-1h=3 1h-6h=0 6h-24h=1 24h+=1");
    /* 3 minutes later (the info samples at N-1m still hold): D 33m, E 1h3m,
     * K 1h2m59s, F 7h3m, G 30h3m */
    check_at(r, 1, N + 3 * MIN, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=ClusterId",
             "PendingTime,ClusterId",
             "0-1h|C1=1 0-1h|C2=0 1h-6h|C1=1 1h-6h|C2=1 6h-24h|C1=0 6h-24h|C2=1 24h+|C1=1 24h+|C2=0");
    api_registry_free(r);
}

static void test_idle_threshold(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    check(r, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=ProjectId", "ProjectId",
          "10(nlp)=2 11(vision)=0 20(" PROJ20 ")=0");
    /* a minute later B's GPU has been at 0% for 5 minutes: it counts too;
     * C's 3% sample is 3 minutes old, so C still does not */
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", N + 15 * SEC, N + MIN, 15 * SEC, 0, { "gpu", "0" },
          { "UUID", "GPU-b" }, { "workload_id", WL("b") });
    check_at(r, 1, N + MIN, "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=ProjectId", "ProjectId",
             "10(nlp)=2 11(vision)=1 20(" PROJ20 ")=0");
    check_at(r, 1, N + MIN, "telemetryType=IDLE_ALLOCATED_GPUS", "", "=3");
    api_registry_free(r);
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    check_at(r, 2, N, "telemetryType=WORKLOADS_COUNT", "", "=1");
    check_at(r, 2, N, "telemetryType=GPU_ALLOCATION&groupBy=DepartmentId", "DepartmentId", "1(research)=16");
    check_at(r, 2, N, "telemetryType=IDLE_ALLOCATED_GPUS", "", "=16");
    check_at(r, 2, N, "telemetryType=PENDING_TIME_DISTRIBUTION", "PendingTime",
             "0-1h=0 1h-6h=0 6h-24h=0 24h+=0");
    /* a tenant the registry never saw */
    check_at(r, 3, N, "telemetryType=GPU_ALLOCATION", "", "=0");
    check_at(r, 3, N, "telemetryType=GPU_ALLOCATION&groupBy=ClusterId", "ClusterId", "");
    /* tenant 1's answers are those of test_totals: J (16 GPUs) and the
     * deleted I (8 GPUs) are not in them */
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=ClusterId", "ClusterId", "C1=3 C2=0.75");
    api_registry_free(r);
}

static void test_names_and_sums(void **state)
{
    (void)state;
    api_registry_t *r;
    assert_ok(api_registry_new(NULL, &r));
    /* department 5: one workload without a name, an older one named "old",
     * the newest named "new" -> "new"; department 6 has no name at all. */
    wl_t w[] = {
        { WL("a"), "Running", HOUR, C1, "5", "", "50", "", "Training", "Train", "p", "p", 0.1, 1 * HOUR },
        { WL("b"), "Running", HOUR, C1, "5", "old", "50", "", "Training", "Train", "p", "p", 0.2, 3 * HOUR },
        { WL("c"), "Running", HOUR, C1, "5", "new", "51", "", "Training", "Train", "p", "p", 0.2, 2 * HOUR },
        { WL("d"), "Running", HOUR, C1, "6", "", "60", "", "Training", "Train", "p", "p", 0.7, 2 * HOUR },
    };
    for (size_t i = 0; i < 4; i++) feed_workload(r, 1, &w[i]);
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId", "DepartmentId", "5(new)=3 6=1");
    /* fractional sums print in shortest round-trip form: 0.1 + 0.2 + 0.2 */
    check(r, "telemetryType=GPU_ALLOCATION&groupBy=DepartmentId", "DepartmentId", "5(new)=0.5 6=0.7");
    check(r, "telemetryType=GPU_ALLOCATION", "", "=1.2");
    api_registry_free(r);
}

/* Label text with characters JSON and CSV must escape. */
static void test_escaping(void **state)
{
    (void)state;
    api_registry_t *r;
    assert_ok(api_registry_new(NULL, &r));
    wl_t w = { WL("a"), "Running", HOUR,
               C1,      "d\"1\\",  "tab\there \x01\x1f\b\f\r\n caf\xc3\xa9 \xe2\x82\xac /",
               "p,1",   "x",       "Training",
               "Train", "p",       "p",
               1,       HOUR };
    feed_workload(r, 1, &w);
    /* summary shows the decoded strings */
    check(r, "telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId", "DepartmentId",
          "d\"1\\(tab\there \x01\x1f\b\f\r\n caf\xc3\xa9 \xe2\x82\xac /)=1");
    strata_arena_t *a = strata_arena_new(0);
    assert_string_equal(json_of(r, 1, "telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId", N, a),
                        "{\"type\":\"WORKLOADS_COUNT\",\"timestamp\":\"" N_TEXT
                        "\",\"values\":[{\"value\":\"1\",\"groups\":"
                        "[{\"key\":\"DepartmentId\",\"value\":\"d\\\"1\\\\\",\"name\":"
                        "\"tab\\there \\u0001\\u001F\\b\\f\\r\\n caf\xc3\xa9 \xe2\x82\xac /\"}]}]}");
    assert_string_equal(
        csv_of(r, 1, "telemetryType=WORKLOADS_COUNT&groupBy=DepartmentId,ProjectId", N, a),
        "DepartmentId,DepartmentName,ProjectId,ProjectName,value\n"
        "\"d\"\"1\\\",\"tab\there \x01\x1f\b\f\r\n caf\xc3\xa9 \xe2\x82\xac /\",\"p,1\",x,1\n");
    strata_arena_free(a);
    api_registry_free(r);
}

static void parse_fails(const char *query, const char *param)
{
    char buf[512], err[256];
    api_telemetry_param_t p[16];
    size_t n = split_query(query, buf, sizeof buf, p, 16);
    strata_arena_t *a = strata_arena_new(0);
    api_telemetry_request_t *req = (void *)1;
    int rc = api_telemetry_parse(p, n, a, &req, err, sizeof err);
    if (rc != STRATA_EINVAL) fail_msg("%s: got %d, want STRATA_EINVAL", query, rc);
    assert_null(req);
    char want[64];
    snprintf(want, sizeof want, "invalid %s parameter", param);
    if (!strstr(err, want)) fail_msg("%s: message \"%s\" does not name %s", query, err, param);
    strata_arena_free(a);
}

static void test_validation(void **state)
{
    (void)state;
    parse_fails("", "telemetryType");
    parse_fails("groupBy=Phase", "telemetryType");
    parse_fails("telemetryType=", "telemetryType");
    parse_fails("telemetryType=workloads_count", "telemetryType");
    parse_fails("telemetryType=GPU_UTILIZATION", "telemetryType");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=Phase,Type,Category", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=Phase,Type&groupBy=Category", "groupBy");
    parse_fails("telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Phase,Type", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=Nodepool", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=phase", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=PendingTime", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=Phase,", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&groupBy=Phase,Phase", "groupBy");
    parse_fails("telemetryType=WORKLOADS_COUNT&filterByPhases=Running,Sleeping", "filterByPhases");
    parse_fails("telemetryType=WORKLOADS_COUNT&filterByPhases=running", "filterByPhases");
    parse_fails("telemetryType=WORKLOADS_COUNT&filterByPhases=Creating,Initializing,Resuming,Pending,"
                "Deleting,Running,Updating,Stopped,Stopping,Degraded,Failed",
                "filterByPhases");
    parse_fails("telemetryType=WORKLOADS_COUNT&clusterId=cluster-1", "clusterId");
    parse_fails("telemetryType=WORKLOADS_COUNT&clusterId=7b2f4c1d-1111-4222-8333-44445555666", "clusterId");
    parse_fails("telemetryType=WORKLOADS_COUNT&clusterId=7b2f4c1d-1111-4222-8333-4444555566667", "clusterId");
    parse_fails("telemetryType=WORKLOADS_COUNT&clusterId=7b2f4c1d11114222-8333-4444555566667", "clusterId");
    parse_fails("telemetryType=WORKLOADS_COUNT&clusterId=7b2f4c1d-1111-4222-8333-44445555666g", "clusterId");

    /* what is accepted: 10 phases, 2 keys, the first of repeated singles */
    char buf[512], err[256];
    api_telemetry_param_t p[16];
    strata_arena_t *a = strata_arena_new(0);
    api_telemetry_request_t *req;
    const char *ok[] = {
        "telemetryType=WORKLOADS_COUNT&filterByPhases=Creating,Initializing,Resuming,Pending,"
        "Deleting,Running,Updating,Stopped,Stopping,Degraded",
        "telemetryType=IDLE_ALLOCATED_GPUS&groupBy=RequestedNodepools,CurrentNodepools",
        "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Category",
        "telemetryType=GPU_ALLOCATION&telemetryType=bogus&clusterId=" C1,
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        size_t n = split_query(ok[i], buf, sizeof buf, p, 16);
        int rc = api_telemetry_parse(p, n, a, &req, err, sizeof err);
        if (rc) fail_msg("%s: %s", ok[i], err);
    }
    assert_err(api_telemetry_parse(NULL, 1, a, &req, err, sizeof err), STRATA_EINVAL);
    strata_arena_free(a);
}

static void test_request_outlives_params(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    strata_arena_t *a = strata_arena_new(0);
    char np[16] = "pool-a", dep[8] = "1", cl[40] = C1;
    api_telemetry_param_t p[] = { { "telemetryType", "WORKLOADS_COUNT" },
                                  { "nodepoolName", np },
                                  { "departmentId", dep },
                                  { "clusterId", cl } };
    api_telemetry_request_t *req;
    assert_ok(api_telemetry_parse(p, 4, a, &req, NULL, 0));
    memset(np, 'x', sizeof np - 1);
    memset(dep, 'x', sizeof dep - 1);
    memset(cl, 'x', sizeof cl - 1);
    char *body;
    size_t len;
    assert_ok(api_telemetry_compute(r, 1, req, N, API_TELEMETRY_CSV, a, &body, &len));
    assert_string_equal(body, "value\n2\n");
    assert_err(api_telemetry_compute(NULL, 1, req, N, API_TELEMETRY_CSV, a, &body, &len), STRATA_EINVAL);
    assert_err(api_telemetry_compute(r, 1, NULL, N, API_TELEMETRY_CSV, a, &body, &len), STRATA_EINVAL);
    strata_arena_free(a);
    api_registry_free(r);
}

/* Every allocation may fail (group table, group strings, names, the body):
 * the answer is then STRATA_ENOMEM, nothing leaks (ASan) and with room
 * enough the same request succeeds. */
static void test_arena_exhausted(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    api_telemetry_param_t p[] = { { "telemetryType", "WORKLOADS_COUNT" }, { "groupBy", "ProjectId,Type" } };
    int failures = 0;
    for (size_t extra = 0;; extra += 256) {
        strata_arena_t *a = strata_arena_new(256); /* small blocks: every step can fail */
        api_telemetry_request_t *req;
        assert_ok(api_telemetry_parse(p, 2, a, &req, NULL, 0));
        strata_arena_set_cap(a, strata_arena_used(a) + extra);
        char *body;
        size_t len;
        int rc = api_telemetry_compute(r, 1, req, N, failures % 2 ? API_TELEMETRY_CSV : API_TELEMETRY_JSON, a,
                                       &body, &len);
        strata_arena_free(a);
        if (rc == 0) break;
        assert_err(rc, STRATA_ENOMEM);
        assert_null(body);
        failures++;
        assert_true(extra < 1 << 20);
    }
    assert_true(failures >= 3);
    api_registry_free(r);
}

static void test_accept_and_content_type(void **state)
{
    (void)state;
    assert_int_equal(api_telemetry_wants_csv(NULL), 0);
    assert_int_equal(api_telemetry_wants_csv("*/*"), 0);
    assert_int_equal(api_telemetry_wants_csv("application/json"), 0);
    assert_int_equal(api_telemetry_wants_csv("text/csv"), 1);
    assert_int_equal(api_telemetry_wants_csv("Text/CSV; charset=utf-8"), 1);
    assert_int_equal(api_telemetry_wants_csv("text/csv, application/json"), 1);
    assert_int_equal(api_telemetry_wants_csv("application/json, text/csv"), 0);
    assert_string_equal(api_telemetry_content_type(API_TELEMETRY_CSV), "text/csv; charset=utf-8");
    assert_string_equal(api_telemetry_content_type(API_TELEMETRY_JSON), "application/json");
    size_t n = 0;
    while (api_telemetry_param_names[n]) n++;
    assert_int_equal(n, 6);
    assert_string_equal(api_telemetry_param_names[0], "telemetryType");
}

/* PENDING_TIME_DISTRIBUTION answers all 4 buckets in order, zeros included:
 * without groupBy always (even over no Pending workload), with one more key
 * for every value of it that has a Pending workload (others stay out). */
static void test_pending_all_buckets(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
    strata_arena_t *a = strata_arena_new(0);
    assert_non_null(a);
    assert_string_equal(json_of(r, 1, "telemetryType=PENDING_TIME_DISTRIBUTION&departmentId=1", N, a),
                        "{\"type\":\"PENDING_TIME_DISTRIBUTION\",\"timestamp\":\"" N_TEXT "\",\"values\":["
                        "{\"value\":\"1\",\"groups\":[{\"key\":\"PendingTime\",\"value\":\"0-1h\"}]},"
                        "{\"value\":\"0\",\"groups\":[{\"key\":\"PendingTime\",\"value\":\"1h-6h\"}]},"
                        "{\"value\":\"1\",\"groups\":[{\"key\":\"PendingTime\",\"value\":\"6h-24h\"}]},"
                        "{\"value\":\"1\",\"groups\":[{\"key\":\"PendingTime\",\"value\":\"24h+\"}]}]}");
    assert_string_equal(csv_of(r, 1, "telemetryType=PENDING_TIME_DISTRIBUTION&filterByPhases=Running", N, a),
                        "PendingTime,value\n0-1h,0\n1h-6h,0\n6h-24h,0\n24h+,0\n");
    /* only departments with a Pending workload appear, each with 4 buckets */
    assert_string_equal(
        csv_of(r, 1, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=DepartmentId&clusterId=" C2, N, a),
        "PendingTime,DepartmentId,DepartmentName,value\n0-1h,1,research-old,0\n0-1h,2,ops,1\n"
        "1h-6h,1,research-old,0\n1h-6h,2,ops,0\n6h-24h,1,research-old,1\n6h-24h,2,ops,0\n"
        "24h+,1,research-old,0\n24h+,2,ops,0\n");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=ProjectId&departmentId=2",
          "PendingTime,ProjectId",
          "0-1h|20(" PROJ20 ")=1 1h-6h|20(" PROJ20 ")=1 6h-24h|20(" PROJ20 ")=0 24h+|20(" PROJ20 ")=0");
    /* groupBy and no Pending workload: no values (no group has a workload) */
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&groupBy=Type&filterByPhases=Running", "", "");
    strata_arena_free(a);
    api_registry_free(r);
}

/* clusterId: 404 for a cluster no workload of the tenant ever carried;
 * zeros for a known one with nothing running (deleted workloads count as
 * seen, as the registry remembers them). */
static void test_unknown_cluster(void **state)
{
    (void)state;
    api_registry_t *r = fixture();
#define C3 "7b2f4c1d-3333-4222-8333-444455556666"
    compute_fails(r, 1, "telemetryType=WORKLOADS_COUNT&clusterId=" C3);
    compute_fails(r, 1, "telemetryType=PENDING_TIME_DISTRIBUTION&clusterId=" C3);
    /* a workload on C3 that ended 20 minutes ago: C3 is known, nothing runs */
    RANGE(r, 1, "runai_workload_info", N - 30 * MIN, N - 20 * MIN, 30 * SEC, 1, { "workload_id", WL("4") },
          { "cluster_id", C3 }, { "department_id", "1" }, { "project_id", "10" });
    check(r, "telemetryType=WORKLOADS_COUNT&clusterId=" C3, "", "=0");
    check(r, "telemetryType=GPU_ALLOCATION&clusterId=7B2F4C1D-3333-4222-8333-444455556666", "", "=0");
    check(r, "telemetryType=WORKLOADS_COUNT&clusterId=" C3 "&groupBy=Type", "Type", "");
    check(r, "telemetryType=PENDING_TIME_DISTRIBUTION&clusterId=" C3, "PendingTime",
          "0-1h=0 1h-6h=0 6h-24h=0 24h+=0");
    /* seen is per tenant: tenant 2 has only C1, tenant 3 nothing */
    check_at(r, 2, N, "telemetryType=WORKLOADS_COUNT&clusterId=" C1, "", "=1");
    compute_fails(r, 2, "telemetryType=WORKLOADS_COUNT&clusterId=" C2);
    compute_fails(r, 2, "telemetryType=WORKLOADS_COUNT&clusterId=" C3);
    compute_fails(r, 3, "telemetryType=WORKLOADS_COUNT&clusterId=" C1);
    /* a workload without cluster_id is on the nil uuid */
    compute_fails(r, 1, "telemetryType=WORKLOADS_COUNT&clusterId=00000000-0000-0000-0000-000000000000");
    RANGE(r, 1, "runai_workload_info", N - MIN, N - MIN, MIN, 1, { "workload_id", WL("3") },
          { "department_id", "1" });
    check(r, "telemetryType=WORKLOADS_COUNT&clusterId=00000000-0000-0000-0000-000000000000", "", "=1");
#undef C3
    api_registry_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_totals),
        cmocka_unit_test(test_exact_bodies),
        cmocka_unit_test(test_group_by_each_key),
        cmocka_unit_test(test_group_by_pairs),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_pending_buckets_move_with_now),
        cmocka_unit_test(test_idle_threshold),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_names_and_sums),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_request_outlives_params),
        cmocka_unit_test(test_arena_exhausted),
        cmocka_unit_test(test_accept_and_content_type),
        cmocka_unit_test(test_pending_all_buckets),
        cmocka_unit_test(test_unknown_cluster),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
