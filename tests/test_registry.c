/*
 * test_registry.c: the workload registry (api/workloads/registry.h).
 *
 * Series are fed through api_registry_observe() exactly as ingest will (sorted
 * labels, the tenant label included) and the rendered JSON is parsed back
 * with jansson to check every derived field against values worked out by
 * hand.  T0 = 2024-12-20T14:30:00Z; all queries pass an explicit `now`.
 *
 * With REGISTRY_FIXTURE_DIR set, the rendering test also writes each body it
 * checks to that directory, so tests/integration/test_registry_schema.py can
 * validate them against the Run:ai spec.
 */
#include "test_helpers.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>

#include "registry.h"
#include "strata_arena.h"
#include "tsdb.h"

#define SEC        1000LL
#define MIN        (60 * SEC)
#define T0         1734705000000LL /* 2024-12-20T14:30:00Z */

#define WL_A       "3f1c1a2e-0000-4000-8000-00000000000a"
#define WL_B       "3f1c1a2e-0000-4000-8000-00000000000b"
#define WL_C       "3f1c1a2e-0000-4000-8000-00000000000c"
#define WL_D       "3f1c1a2e-0000-4000-8000-00000000000d"
#define WL_E       "3f1c1a2e-0000-4000-8000-00000000000e"
#define CLUSTER    "7b2f4c1d-1111-4222-8333-444455556666"
#define CLUSTER_UP "7B2F4C1D-1111-4222-8333-444455556666"

typedef struct kv {
    const char *k, *v;
} kv_t;

static tsdb_t *g_db; /* when set, observe_kv also appends to it */

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

/* Feeds one series as ingest would: __name__ + kv + the tenant label, sorted. */
static void observe_kv(api_registry_t *r, int32_t tenant, const char *metric, const kv_t *kv, size_t nkv,
                       const tsdb_sample_t *s, size_t ns)
{
    tsdb_label_t l[40];
    char tbuf[16];
    size_t n = 0;
    snprintf(tbuf, sizeof tbuf, "%d", tenant);
    l[n++] = (tsdb_label_t){ "__name__", metric };
    l[n++] = (tsdb_label_t){ "__tenant__", tbuf };
    for (size_t i = 0; i < nkv && n < 40; i++) l[n++] = (tsdb_label_t){ kv[i].k, kv[i].v };
    qsort(l, n, sizeof *l, label_cmp);
    assert_ok(api_registry_observe(r, tenant, l, n, s, ns));
    if (g_db) { /* the replay test also stores what it feeds */
        tsdb_series_input_t in = { l, n, s, ns };
        tsdb_append_result_t res;
        assert_ok(tsdb_append(g_db, &in, 1, &res));
        assert_int_equal(res.appended, ns);
    }
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

static double stale_nan(void) { return test_bits_double(TSDB_STALE_NAN_BITS); }

static void one(api_registry_t *r, int32_t ten, const char *metric, int64_t t, double v, const kv_t *kv,
                size_t nkv)
{
    tsdb_sample_t s = { t, v };
    observe_kv(r, ten, metric, kv, nkv, &s, 1);
}
#define ONE(r, ten, metric, t, v, ...) one(r, ten, metric, t, v, KV(__VA_ARGS__))

static api_registry_t *reg_new(void)
{
    api_registry_t *r;
    assert_ok(api_registry_new(NULL, &r));
    return r;
}

/* ---- JSON helpers ----------------------------------------------------------- */

static json_t *parse(const api_registry_result_t *res)
{
    assert_non_null(res->json);
    assert_int_equal(strlen(res->json), res->len);
    json_error_t err;
    json_t *j = json_loads(res->json, 0, &err);
    if (!j) fail_msg("bad JSON (%s): %s", err.text, res->json);
    return j;
}

/* "a.b.0.c": object keys and array indexes. */
static json_t *jpath(json_t *j, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *p = strtok_r(buf, ".", &save); p && j; p = strtok_r(NULL, ".", &save))
        j = json_is_array(j) ? json_array_get(j, (size_t)atoi(p)) : json_object_get(j, p);
    return j;
}

static void check_str(json_t *j, const char *path, const char *want)
{
    json_t *v = jpath(j, path);
    if (!json_is_string(v)) fail_msg("%s: not a string", path);
    if (strcmp(json_string_value(v), want) != 0)
        fail_msg("%s = \"%s\", want \"%s\"", path, json_string_value(v), want);
}

static void check_int(json_t *j, const char *path, long long want)
{
    json_t *v = jpath(j, path);
    if (!json_is_integer(v)) fail_msg("%s: not an integer", path);
    if (json_integer_value(v) != want)
        fail_msg("%s = %lld, want %lld", path, (long long)json_integer_value(v), want);
}

static void check_num(json_t *j, const char *path, double want)
{
    json_t *v = jpath(j, path);
    if (!json_is_number(v)) fail_msg("%s: not a number", path);
    if (json_number_value(v) != want) fail_msg("%s = %.17g, want %.17g", path, json_number_value(v), want);
}

static void check_null(json_t *j, const char *path)
{
    json_t *v = jpath(j, path);
    if (!json_is_null(v)) fail_msg("%s: want null (%s)", path, v ? "non-null" : "missing");
}

static void check_absent(json_t *j, const char *path)
{
    if (jpath(j, path)) fail_msg("%s: want absent", path);
}

static void check_array_size(json_t *j, const char *path, size_t n)
{
    json_t *v = jpath(j, path);
    if (!json_is_array(v)) fail_msg("%s: not an array", path);
    if (json_array_size(v) != n) fail_msg("%s has %zu items, want %zu", path, json_array_size(v), n);
}

static void write_fixture(const char *name, const api_registry_result_t *res)
{
    const char *dir = getenv("REGISTRY_FIXTURE_DIR");
    if (!dir || !*dir) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s", path);
    fwrite(res->json, 1, res->len, f);
    fclose(f);
}

/* ---- fixtures --------------------------------------------------------------- */

/* A workload Pending from T0, Running from T0+60s, Completed from T0+360s,
 * with every phase series scraped every 30 s (0 or 1).  Only samples up to
 * `upto` are fed; the Completed series first, so arrival order is exercised. */
static void feed_lifecycle(api_registry_t *r, int32_t ten, const char *id, int64_t upto)
{
    RANGE(r, ten, "runai_workload_info", T0, upto, 30 * SEC, 1, { "workload_id", id },
          { "workload_name", "lifecycle" }, { "cluster_id", CLUSTER });
    struct {
        const char *phase;
        int64_t on, off;
    } ph[] = {
        { "Completed", T0 + 360 * SEC, T0 + 3600 * SEC },
        { "Running", T0 + 60 * SEC, T0 + 360 * SEC },
        { "Pending", T0, T0 + 60 * SEC },
    };
    for (int p = 0; p < 3; p++) {
        tsdb_sample_t s[64];
        size_t n = 0;
        for (int64_t t = T0; t <= upto; t += 30 * SEC)
            s[n++] = (tsdb_sample_t){ t, t >= ph[p].on && t < ph[p].off ? 1 : 0 };
        observe_kv(r, ten, "runai_workload_phase", KV({ "workload_id", id }, { "phase", ph[p].phase }), s, n);
    }
}

static json_t *get_json(api_registry_t *r, int32_t ten, const char *id, int64_t now, strata_arena_t *a)
{
    api_registry_result_t res;
    assert_ok(api_registry_get(r, ten, id, now, a, &res));
    return parse(&res);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_phase_lifecycle(void **state)
{
    (void)state;
    strata_arena_t *a = strata_arena_new(0);

    /* Midway, at T0+200s: Running since T0+60s. */
    api_registry_t *r = reg_new();
    feed_lifecycle(r, 1, WL_A, T0 + 180 * SEC);
    json_t *j = get_json(r, 1, WL_A, T0 + 200 * SEC, a);
    check_str(j, "phase", "Running");
    check_str(j, "phaseUpdatedAt", "2024-12-20T14:31:00Z");
    check_int(j, "totalPendingTimeSeconds", 60);
    check_int(j, "totalRunningTimeSeconds", 140);
    check_null(j, "completedAt");
    check_str(j, "createdAt", "2024-12-20T14:30:00Z");
    json_decref(j);
    api_registry_free(r);

    /* At the end, T0+600s: Completed since T0+360s. */
    r = reg_new();
    feed_lifecycle(r, 1, WL_A, T0 + 600 * SEC);
    j = get_json(r, 1, WL_A, T0 + 600 * SEC, a);
    check_str(j, "phase", "Completed");
    check_str(j, "phaseUpdatedAt", "2024-12-20T14:36:00Z");
    check_str(j, "completedAt", "2024-12-20T14:36:00Z");
    check_str(j, "k8sPhase", "Unknown"); /* no k8s_phase label: not copied from phase */
    check_str(j, "k8sPhaseUpdatedAt", "2024-12-20T14:30:00Z");
    check_int(j, "totalPendingTimeSeconds", 60);
    check_int(j, "totalRunningTimeSeconds", 300);
    check_str(j, "updatedAt", "2024-12-20T14:40:00Z");
    check_null(j, "deletedAt");
    json_decref(j);

    /* Back to Running at T0+700s: a second run adds up. */
    ONE(r, 1, "runai_workload_phase", T0 + 630 * SEC, 0, { "workload_id", WL_A }, { "phase", "Completed" });
    RANGE(r, 1, "runai_workload_phase", T0 + 630 * SEC, T0 + 720 * SEC, 30 * SEC, 1, { "workload_id", WL_A },
          { "phase", "Running" });
    RANGE(r, 1, "runai_workload_info", T0 + 630 * SEC, T0 + 720 * SEC, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "lifecycle" }, { "cluster_id", CLUSTER });
    j = get_json(r, 1, WL_A, T0 + 730 * SEC, a);
    check_str(j, "phase", "Running");
    check_str(j, "phaseUpdatedAt", "2024-12-20T14:40:30Z");
    check_null(j, "completedAt");
    check_int(j, "totalRunningTimeSeconds", 300 + 100);
    check_int(j, "totalPendingTimeSeconds", 60);
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_phase_runs_fold(void **state)
{
    (void)state;
    /* 100 alternations Pending (10 s) / Running (20 s): more runs than kept,
     * so the oldest fold into totals without changing them. */
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t t = T0;
    for (int i = 0; i < 100; i++) {
        ONE(r, 1, "runai_workload_phase", t, 1, { "workload_id", WL_A }, { "phase", "Pending" });
        ONE(r, 1, "runai_workload_phase", t + 10 * SEC, 1, { "workload_id", WL_A }, { "phase", "Running" });
        ONE(r, 1, "runai_workload_phase", t + 10 * SEC, 0, { "workload_id", WL_A }, { "phase", "Pending" });
        ONE(r, 1, "runai_workload_phase", t + 30 * SEC, 0, { "workload_id", WL_A }, { "phase", "Running" });
        t += 30 * SEC;
    }
    RANGE(r, 1, "runai_workload_info", T0, t, 60 * SEC, 1, { "workload_id", WL_A });
    /* the last Running run lasts until now = t (no next phase) */
    json_t *j = get_json(r, 1, WL_A, t, a);
    check_int(j, "totalPendingTimeSeconds", 100 * 10);
    check_int(j, "totalRunningTimeSeconds", 100 * 20);
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_deleted_by_stale_marker(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    RANGE(r, 1, "runai_workload_info", T0, T0 + 120 * SEC, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "gone" });
    ONE(r, 1, "runai_workload_info", T0 + 150 * SEC, stale_nan(), { "workload_id", WL_A },
        { "workload_name", "gone" });

    json_t *j = get_json(r, 1, WL_A, T0 + 140 * SEC, a);
    check_null(j, "deletedAt");
    json_decref(j);
    j = get_json(r, 1, WL_A, T0 + 150 * SEC, a);
    check_str(j, "deletedAt", "2024-12-20T14:32:30Z");
    check_str(j, "name", "gone");
    json_decref(j);

    api_registry_query_t q;
    api_registry_query_init(&q);
    api_registry_result_t res;
    assert_ok(api_registry_list(r, 1, &q, T0 + 200 * SEC, a, &res));
    assert_string_equal(res.json, "{\"workloads\":[]}");
    q.deleted = 1;
    assert_ok(api_registry_list(r, 1, &q, T0 + 200 * SEC, a, &res));
    assert_int_equal(res.total, 1);
    j = parse(&res);
    check_str(j, "workloads.0.id", WL_A);
    check_str(j, "workloads.0.deletedAt", "2024-12-20T14:32:30Z");
    json_decref(j);
    assert_ok(api_registry_count(r, 1, &q, T0 + 200 * SEC, a, &res));
    assert_string_equal(res.json, "{\"count\":1}");

    /* The workload comes back: a new sample after the marker revives it. */
    ONE(r, 1, "runai_workload_info", T0 + 180 * SEC, 1, { "workload_id", WL_A }, { "workload_name", "back" });
    j = get_json(r, 1, WL_A, T0 + 200 * SEC, a);
    check_null(j, "deletedAt");
    check_str(j, "name", "back");
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_deleted_by_staleness(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    RANGE(r, 1, "runai_workload_info", T0, T0 + 120 * SEC, 30 * SEC, 1, { "workload_id", WL_A });
    /* last sample at T0+120s holds for 5m: until T0+420s exclusive */
    json_t *j = get_json(r, 1, WL_A, T0 + 420 * SEC - 1, a);
    check_null(j, "deletedAt");
    json_decref(j);
    j = get_json(r, 1, WL_A, T0 + 420 * SEC, a);
    check_str(j, "deletedAt", "2024-12-20T14:37:00Z");
    json_decref(j);

    /* A series relabelled (new series, old one's stale marker at the same
     * instant) does not delete the workload, in either arrival order. */
    RANGE(r, 1, "runai_workload_info", T0, T0 + 60 * SEC, 30 * SEC, 1, { "workload_id", WL_B },
          { "current_nodepools", "a" });
    ONE(r, 1, "runai_workload_info", T0 + 90 * SEC, 1, { "workload_id", WL_B }, { "current_nodepools", "b" });
    ONE(r, 1, "runai_workload_info", T0 + 90 * SEC, stale_nan(), { "workload_id", WL_B },
        { "current_nodepools", "a" });
    RANGE(r, 1, "runai_workload_info", T0, T0 + 60 * SEC, 30 * SEC, 1, { "workload_id", WL_C },
          { "current_nodepools", "a" });
    ONE(r, 1, "runai_workload_info", T0 + 90 * SEC, stale_nan(), { "workload_id", WL_C },
        { "current_nodepools", "a" });
    ONE(r, 1, "runai_workload_info", T0 + 90 * SEC, 1, { "workload_id", WL_C }, { "current_nodepools", "b" });
    j = get_json(r, 1, WL_B, T0 + 100 * SEC, a);
    check_null(j, "deletedAt");
    check_str(j, "currentNodePools.0", "b");
    json_decref(j);
    j = get_json(r, 1, WL_C, T0 + 100 * SEC, a);
    check_null(j, "deletedAt");
    check_str(j, "currentNodePools.0", "b");
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_running_pods(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 120 * SEC;
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_B });
    /* pod status before pod info: the join does not depend on order */
    RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, 1, { "namespace", "team-a" }, { "pod", "w-0" },
          { "phase", "Running" });
    RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, 0, { "namespace", "team-a" }, { "pod", "w-0" },
          { "phase", "Pending" });
    RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, 1, { "namespace", "team-a" }, { "pod", "w-1" },
          { "phase", "Running" });
    RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, 1, { "namespace", "team-a" },
          { "pod", "other-0" }, { "phase", "Running" });
    for (int i = 0; i < 2; i++)
        RANGE(r, 1, "runai_pod_info", T0, now, 30 * SEC, 1, { "namespace", "team-a" },
              { "pod", i ? "w-1" : "w-0" }, { "workload_id", WL_A }, { "node", "node-1" },
              { "nodepool", "default" });
    RANGE(r, 1, "runai_pod_info", T0, now, 30 * SEC, 1, { "namespace", "team-a" }, { "pod", "other-0" },
          { "workload_id", WL_B });
    /* same pod name in another namespace, not Running, not ours */
    RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, 1, { "namespace", "team-b" }, { "pod", "w-1" },
          { "phase", "Running" });

    json_t *j = get_json(r, 1, WL_A, now, a);
    check_int(j, "runningPods", 2);
    json_decref(j);
    j = get_json(r, 1, WL_B, now, a);
    check_int(j, "runningPods", 1);
    json_decref(j);

    /* w-1 leaves Running at T0+150s */
    ONE(r, 1, "kube_pod_status_phase", T0 + 150 * SEC, 0, { "namespace", "team-a" }, { "pod", "w-1" },
        { "phase", "Running" });
    ONE(r, 1, "kube_pod_status_phase", T0 + 150 * SEC, 1, { "namespace", "team-a" }, { "pod", "w-0" },
        { "phase", "Running" });
    for (int i = 0; i < 2; i++)
        ONE(r, 1, "runai_pod_info", T0 + 150 * SEC, 1, { "namespace", "team-a" },
            { "pod", i ? "w-1" : "w-0" }, { "workload_id", WL_A }, { "node", "node-1" },
            { "nodepool", "default" });
    j = get_json(r, 1, WL_A, T0 + 160 * SEC, a);
    check_int(j, "runningPods", 1);
    json_decref(j);
    /* and w-0's pod info goes stale: it no longer counts either */
    ONE(r, 1, "runai_pod_info", T0 + 180 * SEC, stale_nan(), { "namespace", "team-a" }, { "pod", "w-0" },
        { "workload_id", WL_A }, { "node", "node-1" }, { "nodepool", "default" });
    ONE(r, 1, "runai_workload_info", T0 + 180 * SEC, 1, { "workload_id", WL_A });
    j = get_json(r, 1, WL_A, T0 + 190 * SEC, a);
    check_int(j, "runningPods", 0);
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

struct pods_seen {
    int n;
    char names[4][32];
    int64_t first[4], end[4];
};

static int collect_pod(const api_registry_pod_t *p, void *ctx)
{
    struct pods_seen *s = ctx;
    if (s->n < 4) {
        snprintf(s->names[s->n], 32, "%s/%s@%s", p->namespace_, p->pod, p->node);
        s->first[s->n] = p->first_ms;
        s->end[s->n] = p->end_ms;
    }
    s->n++;
    return 0;
}

static void test_foreach_pod(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    RANGE(r, 1, "runai_workload_info", T0, T0 + 60 * SEC, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "runai_pod_info", T0 + 30 * SEC, T0 + 60 * SEC, 30 * SEC, 1, { "namespace", "ns" },
          { "pod", "p0" }, { "workload_id", WL_A }, { "node", "n1" });
    ONE(r, 1, "runai_pod_info", T0 + 90 * SEC, stale_nan(), { "namespace", "ns" }, { "pod", "p0" },
        { "workload_id", WL_A }, { "node", "n1" });
    struct pods_seen s = { 0 };
    assert_ok(api_registry_foreach_pod(r, 1, WL_A, collect_pod, &s));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.names[0], "ns/p0@n1");
    assert_int_equal(s.first[0], T0 + 30 * SEC);
    assert_int_equal(s.end[0], T0 + 90 * SEC);
    assert_err(api_registry_foreach_pod(r, 1, WL_B, collect_pod, &s), STRATA_ENOTFOUND);
    assert_err(api_registry_foreach_pod(r, 2, WL_A, collect_pod, &s), STRATA_ENOTFOUND);
    api_registry_free(r);
}

/* ---- series handles (api_registry_observe_ref) ------------------------------ */

/* One series of the handle test: fed to a through api_registry_observe and
 * to b through api_registry_observe_ref with ref. */
typedef struct hseries {
    uint32_t ref;
    const char *metric;
    kv_t kv[6];
    size_t nkv;
} hseries_t;

static void observe_both(api_registry_t *a, api_registry_t *b, const hseries_t *s, int64_t t, double v)
{
    tsdb_label_t l[10];
    size_t n = 0;
    l[n++] = (tsdb_label_t){ "__name__", s->metric };
    l[n++] = (tsdb_label_t){ "__tenant__", "1" };
    for (size_t i = 0; i < s->nkv; i++) l[n++] = (tsdb_label_t){ s->kv[i].k, s->kv[i].v };
    qsort(l, n, sizeof *l, label_cmp);
    tsdb_sample_t smp = { t, v };
    assert_ok(api_registry_observe(a, 1, l, n, &smp, 1));
    assert_ok(api_registry_observe_ref(b, 1, s->ref, l, n, &smp, 1));
}

static int pod_line(const api_registry_pod_t *p, void *ctx)
{
    char *buf = ctx;
    size_t off = strlen(buf);
    snprintf(buf + off, 512 - off, "%s/%s@%s %lld %lld %lld;", p->namespace_, p->pod, p->node ? p->node : "-",
             (long long)p->first_ms, (long long)p->last_ms, (long long)p->end_ms);
    return 0;
}

/* Both registries give the same answers at now: list, get, pods, stats. */
static void handle_same_answers(api_registry_t *a, api_registry_t *b, int64_t now, strata_arena_t *ar)
{
    api_registry_query_t q;
    api_registry_query_init(&q);
    q.limit = 500;
    api_registry_result_t ra, rb;
    assert_ok(api_registry_list(a, 1, &q, now, ar, &ra));
    assert_ok(api_registry_list(b, 1, &q, now, ar, &rb));
    assert_string_equal(ra.json, rb.json);
    assert_int_equal(ra.total, 1);
    assert_ok(api_registry_get(a, 1, WL_A, now, ar, &ra));
    assert_ok(api_registry_get(b, 1, WL_A, now, ar, &rb));
    assert_string_equal(ra.json, rb.json);
    char pa[512] = "", pb[512] = "";
    assert_ok(api_registry_foreach_pod(a, 1, WL_A, pod_line, pa));
    assert_ok(api_registry_foreach_pod(b, 1, WL_A, pod_line, pb));
    assert_string_equal(pa, pb);
    api_registry_stats_t sa, sb;
    api_registry_stats(a, &sa);
    api_registry_stats(b, &sb);
    assert_memory_equal(&sa, &sb, sizeof sa);
}

static void test_handles_match_slow_path(void **state)
{
    (void)state;
    api_registry_t *a = reg_new(), *b = reg_new();
    strata_arena_t *ar = strata_arena_new(0);
#define W                   \
    {                       \
        "workload_id", WL_A \
    }
#define P0 \
    { "namespace", "ns" }, { "pod", "p0" }
#define P1 \
    { "namespace", "ns" }, { "pod", "p1" }
    /* handled: 1..12; slow path always: 13..17 (labels read per sample) */
    static const hseries_t p1s[] = {
        { 5, "kube_pod_status_phase", { P1, { "phase", "Running" } }, 3 },
        { 6, "DCGM_FI_DEV_GPU_UTIL", { P1, { "gpu", "1" }, { "UUID", "GPU-b" } }, 4 },
        { 15, "runai_pod_info", { P1, W, { "node", "n2" } }, 4 },
    };
    static const hseries_t rest[] = {
        { 1, "kube_pod_status_phase", { P0, { "phase", "Running" } }, 3 },
        { 2, "runai_pod_gpu_memory_allocated_bytes", { P0 }, 2 },
        { 3, "kube_pod_container_resource_requests", { P0, { "container", "c" }, { "resource", "cpu" } }, 4 },
        { 4, "DCGM_FI_DEV_GPU_UTIL", { P0, { "gpu", "0" }, { "UUID", "GPU-a" } }, 4 },
        { 7, "runai_workload_gpu_allocation", { W }, 1 },
        { 8, "runai_workload_gpu_memory_request_bytes", { W }, 1 },
        { 9, "runai_workload_requested_resource", { W, { "resource", "gpu" }, { "kind", "request" } }, 3 },
        { 10, "runai_workload_elements_total", { W }, 1 },
        { 11,
          "kube_pod_container_resource_limits",
          { W, { "container", "c" }, { "resource", "memory" } },
          3 },
        { 12, "DCGM_FI_DEV_GPU_UTIL", { W, { "gpu", "2" }, { "UUID", "GPU-c" } }, 3 },
        { 13, "runai_workload_info", { W, { "name", "w" } }, 2 },
        { 14, "runai_pod_info", { P0, W, { "node", "n1" } }, 4 },
        { 16, "runai_workload_phase", { W, { "phase", "Running" } }, 2 },
        { 17, "runai_workload_pending_scheduling_message", { W, { "reason", "r" } }, 2 },
    };
#undef W
#undef P0
#undef P1
    const size_t np1 = sizeof p1s / sizeof p1s[0], nrest = sizeof rest / sizeof rest[0];
    for (int r = 0; r <= 24; r++) {
        int64_t t = T0 + r * 30 * SEC;
        for (size_t i = 0; i < nrest; i++) {
            double v = r % 3 == 0 ? 0 : 40 + r;
            if (rest[i].ref == 2 && r == 5) v = stale_nan(); /* one stale marker, then back */
            observe_both(a, b, &rest[i], t, v);
        }
        /* pod p1 runs for rounds 0..3, is forgotten by the gc of round 17,
         * and comes back (same series, same refs) from round 20 */
        if (r <= 3 || r >= 20)
            for (size_t i = 0; i < np1; i++) observe_both(a, b, &p1s[i], t, r % 2 ? 1 : 0);
        handle_same_answers(a, b, t, ar);
        strata_arena_reset(ar);
        if (r == 16) assert_int_equal(api_registry_handles(b, 1), 12);
        if (r == 17) {
            api_registry_stats_t st;
            api_registry_stats(b, &st);
            assert_int_equal(st.pods, 2);
            assert_ok(api_registry_gc(a, t, 0, NULL));
            assert_ok(api_registry_gc(b, t, 0, NULL));
            assert_int_equal(api_registry_handles(b, 1), 0); /* p1's state was freed */
            api_registry_stats(b, &st);
            assert_int_equal(st.pods, 1);
            handle_same_answers(a, b, t, ar);
            strata_arena_reset(ar);
        }
    }
    assert_int_equal(api_registry_handles(b, 1), 12);
    assert_int_equal(api_registry_handles(a, 1), 0);
    /* ref 0 (unknown) never keeps a handle */
    api_registry_t *c = reg_new();
    tsdb_label_t l[] = { { "__name__", "runai_workload_gpu_allocation" },
                         { "__tenant__", "1" },
                         { "workload_id", WL_A } };
    tsdb_sample_t smp = { T0, 1 };
    assert_ok(api_registry_observe_ref(c, 1, 0, l, 3, &smp, 1));
    assert_int_equal(api_registry_handles(c, 1), 0);
    api_registry_free(c);
    strata_arena_free(ar);
    api_registry_free(a);
    api_registry_free(b);
}

static void test_idle_gpus(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 20 * MIN, step = 15 * SEC;
    const char *ids[] = { WL_A, WL_B, WL_C, WL_D };
    double alloc[] = { 2, 1, 4, 1 };
    for (int i = 0; i < 4; i++) {
        RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", ids[i] });
        RANGE(r, 1, "runai_workload_gpu_allocation", T0, now, 30 * SEC, alloc[i], { "workload_id", ids[i] });
    }
    /* A: two GPUs through the pod join; gpu 0 at 0% for 6 minutes (idle),
     * gpu 1 at 0% for 4 minutes only (not yet). 1 of 2 idle -> 2 x 1/2. */
    RANGE(r, 1, "runai_pod_info", T0, now, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "a-0" },
          { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 10 * MIN, now - 6 * MIN - step, step, 80, { "gpu", "0" },
          { "UUID", "GPU-0" }, { "Hostname", "node-1" }, { "namespace", "ns" }, { "pod", "a-0" });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 6 * MIN, now, step, 0, { "gpu", "0" }, { "UUID", "GPU-0" },
          { "Hostname", "node-1" }, { "namespace", "ns" }, { "pod", "a-0" });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 10 * MIN, now - 4 * MIN - step, step, 35, { "gpu", "1" },
          { "UUID", "GPU-1" }, { "Hostname", "node-1" }, { "namespace", "ns" }, { "pod", "a-0" });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 4 * MIN, now, step, 0, { "gpu", "1" }, { "UUID", "GPU-1" },
          { "Hostname", "node-1" }, { "namespace", "ns" }, { "pod", "a-0" });
    /* B: one GPU labelled with workload_id, at 0% for 10 minutes except a
     * single 3% sample 2 minutes ago: not idle. */
    tsdb_sample_t s[41];
    for (int i = 0; i < 41; i++) s[i] = (tsdb_sample_t){ now - 10 * MIN + i * step, 0 };
    s[32].v = 3; /* now - 2m */
    assert_int_equal(s[32].t, now - 2 * MIN);
    observe_kv(r, 1, "DCGM_FI_DEV_GPU_UTIL", KV({ "gpu", "0" }, { "UUID", "GPU-B" }, { "workload_id", WL_B }),
               s, 41);
    /* C: no GPU reports utilisation: not idle.  D: three GPUs, one idle for
     * 10 minutes, one busy, one whose series stopped 6 minutes ago (not
     * reporting) -> 1 x 1/2. */
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 10 * MIN, now, step, 0, { "gpu", "0" },
          { "workload_id", WL_D });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 10 * MIN, now, step, 55, { "gpu", "1" },
          { "workload_id", WL_D });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now - 20 * MIN, now - 6 * MIN, step, 0, { "gpu", "2" },
          { "workload_id", WL_D });

    json_t *j = get_json(r, 1, WL_A, now, a);
    check_int(j, "idleGpus", 1);
    check_num(j, "idleAllocatedGpus", 1);
    check_num(j, "allocatedResources.gpu", 2);
    json_decref(j);
    j = get_json(r, 1, WL_B, now, a);
    check_int(j, "idleGpus", 0);
    check_num(j, "idleAllocatedGpus", 0);
    json_decref(j);
    j = get_json(r, 1, WL_C, now, a);
    check_int(j, "idleGpus", 0);
    check_num(j, "idleAllocatedGpus", 0);
    json_decref(j);
    j = get_json(r, 1, WL_D, now, a);
    check_int(j, "idleGpus", 1);
    check_num(j, "idleAllocatedGpus", 0.5);
    json_decref(j);
    /* One minute later A's gpu 1 has been at 0% for 5 minutes: both idle. */
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now + step, now + MIN, step, 0, { "gpu", "1" }, { "UUID", "GPU-1" },
          { "Hostname", "node-1" }, { "namespace", "ns" }, { "pod", "a-0" });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", now + step, now + MIN, step, 0, { "gpu", "0" }, { "UUID", "GPU-0" },
          { "Hostname", "node-1" }, { "namespace", "ns" }, { "pod", "a-0" });
    j = get_json(r, 1, WL_A, now + MIN, a);
    check_int(j, "idleGpus", 2);
    check_num(j, "idleAllocatedGpus", 2);
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_idle_fraction_and_number_format(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 10 * MIN;
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "runai_workload_gpu_allocation", T0, now, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", T0, now, 30 * SEC, 0, { "gpu", "0" }, { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", T0, now, 30 * SEC, 9, { "gpu", "1" }, { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", T0, now, 30 * SEC, 7, { "gpu", "2" }, { "workload_id", WL_A });
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_B });
    RANGE(r, 1, "runai_workload_gpu_allocation", T0, now, 30 * SEC, 0.1, { "workload_id", WL_B });
    api_registry_result_t res;
    assert_ok(api_registry_get(r, 1, WL_A, now, a, &res));
    json_t *j = parse(&res);
    check_num(j, "idleAllocatedGpus", 1.0 / 3.0);
    json_decref(j);
    /* shortest round-trip text, not %.17g */
    assert_non_null(strstr(res.json, "\"idleAllocatedGpus\":0.3333333333333333,"));
    assert_ok(api_registry_get(r, 1, WL_B, now, a, &res));
    assert_non_null(strstr(res.json, "\"allocatedResources\":{\"gpu\":0.1,"));
    api_registry_free(r);
    strata_arena_free(a);
}

/* Four live workloads with distinct fields, plus a deleted one. */
static void feed_four(api_registry_t *r, int32_t ten, int64_t now)
{
    struct {
        const char *id, *name, *project, *dept, *type, *category, *priority, *created, *np_key, *np;
        double alloc;
    } w[] = {
        { WL_A, "train-alpha", "proj-a", "dept-x", "Training", "Train", "50", "2024-12-20T10:00:00Z",
          "current_nodepools", "pool-a, pool-b", 1 },
        { WL_B, "build-beta", "proj-b", "dept-x", "Workspace", "Build", "75", "2024-12-20T11:00:00Z",
          "current_nodepools", "pool-b", 0.5 },
        { WL_C, "infer-gamma", "proj-a", "dept-y", "Inference", "Deploy", "100", "2024-12-20T12:00:00Z",
          "current_nodepools", "pool-c", 2 },
        { WL_D, "train-delta", "proj-c", "dept-y", "Training", "Train", NULL, "2024-12-20T13:00:00Z",
          "requested_nodepools", "pool-a", -1 },
    };
    for (int i = 0; i < 4; i++) {
        kv_t kv[] = { { "workload_id", w[i].id },
                      { "workload_name", w[i].name },
                      { "project_name", w[i].project },
                      { "project_id", w[i].project + 5 },
                      { "department_name", w[i].dept },
                      { "workload_type", w[i].type },
                      { "category", w[i].category },
                      { "created_at", w[i].created },
                      { w[i].np_key, w[i].np },
                      { "cluster_id", CLUSTER },
                      { "priority", w[i].priority ? w[i].priority : "" } };
        /* an empty value stands for an absent label, as ingest drops them */
        range_kv(r, ten, "runai_workload_info", T0, now, 30 * SEC, 1, kv, w[i].priority ? 11 : 10);
        if (w[i].alloc >= 0)
            RANGE(r, ten, "runai_workload_gpu_allocation", T0, now, 30 * SEC, w[i].alloc,
                  { "workload_id", w[i].id });
    }
    RANGE(r, ten, "runai_workload_info", T0 - 20 * MIN, T0 - 10 * MIN, 30 * SEC, 1, { "workload_id", WL_E },
          { "workload_name", "train-old" }, { "project_name", "proj-a" });
}

/* Runs a list query and returns the ids in order, as "a,b,c" (letters). */
static const char *list_ids(api_registry_t *r, int32_t ten, api_registry_query_t *q, int64_t now,
                            strata_arena_t *a, char *buf, size_t cap)
{
    api_registry_result_t res;
    int rc = api_registry_list(r, ten, q, now, a, &res);
    if (rc) fail_msg("list failed: %s (%s)", strata_strerror(rc), res.error ? res.error : "");
    json_t *j = parse(&res);
    json_t *arr = json_object_get(j, "workloads");
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(arr, i), "id"));
        n += (size_t)snprintf(buf + n, cap - n, "%s%c", i ? "," : "", id[strlen(id) - 1]);
    }
    json_decref(j);
    return buf;
}

static const char *filter_ids(api_registry_t *r, const char *term, int64_t now, strata_arena_t *a, char *buf)
{
    api_registry_query_t q;
    api_registry_query_init(&q);
    const char *terms[] = { term };
    q.filter_by = terms;
    q.nfilter = 1;
    q.sort_by = "name";
    /* sorted by name: b(build-beta), c(infer-gamma), a(train-alpha), d(train-delta) */
    return list_ids(r, 1, &q, now, a, buf, 64);
}

static void test_filters(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + MIN;
    feed_four(r, 1, now);
    char b[64];
    struct {
        const char *term, *want;
    } cases[] = {
        /* strings */
        { "name==train-alpha", "a" },
        { "name!=train-alpha", "b,c,d" },
        { "name<=infer-gamma", "b,c" },
        { "name>=train", "a,d" },
        { "name=@ta", "b,d" },
        { "name!@train", "b,c" },
        { "name=^train", "a,d" },
        { "name=$ha", "a" },
        { "projectName==proj-a", "c,a" },
        { "departmentName=@y", "c,d" },
        { "type==Training", "a,d" },
        { "category!=Train", "b,c" },
        { "clusterId==" CLUSTER, "b,c,a,d" },
        /* a uuid field: == and != in any letter case, the others on bytes */
        { "clusterId==" CLUSTER_UP, "b,c,a,d" },
        { "clusterId!=" CLUSTER_UP, "" },
        { "clusterId!=7B2F4C1D-1111-4222-8333-444455556667", "b,c,a,d" },
        { "clusterId=^7B2F", "" },
        { "clusterId=^7b2f", "b,c,a,d" },
        { "projectId==A", "" },
        { "projectId==a", "c,a" },
        { "phase==Unknown", "b,c,a,d" },
        { "submittedBy==nobody", "" },
        { "nodepool==pool-b", "b,a" },
        { "nodepool!=pool-b", "c,d" },
        { "nodepool=^pool-a", "a,d" },
        { "nodepool!@pool-a", "b,c" },
        /* numbers (D has no allocation and no priority: null) */
        { "allocatedGPU==1", "a" },
        { "allocatedGPU!=1", "b,c,d" },
        { "allocatedGPU<=1", "b,a" },
        { "allocatedGPU>=1", "c,a" },
        { "allocatedGPU>=1e0", "c,a" },
        { "allocatedGPU=@.", "b" },
        { "allocatedGPU!@.", "c,a,d" },
        { "allocatedGPU=^0.", "b" },
        { "allocatedGPU=$5", "b" },
        { "priority>=75", "b,c" },
        { "priority<=75", "b,a" },
        { "priority=@5", "b,a" },
        { "priority!@0", "b,d" },
        { "idleGpus==0", "b,c,a,d" },
        { "idleAllocatedGpus>=0.5", "" },
        { "totalPendingTimeSeconds==0", "" },
        { "totalPendingTimeSeconds!=0", "b,c,a,d" },
        /* dates */
        { "createdAt==2024-12-20T11:00:00Z", "b" },
        { "createdAt==2024-12-20T11:00:00.000Z", "b" },
        { "createdAt!=2024-12-20T11:00:00Z", "c,a,d" },
        { "createdAt<=2024-12-20T11:00:00Z", "b,a" },
        { "createdAt>=2024-12-20T13:00:00+01:00", "c,d" },
        { "createdAt>=2024-12-20", "b,c,a,d" },
        { "createdAt=^2024-12-20T1", "b,c,a,d" },
        { "createdAt=@T12", "c" },
        { "createdAt!@T12", "b,a,d" },
        { "createdAt=$:00Z", "b,c,a,d" },
        { "deletedAt<=2030-01-01T00:00:00Z", "" },
        { "deletedAt!=2030-01-01T00:00:00Z", "b,c,a,d" },
        { "completedAt>=2000-01-01T00:00:00Z", "" },
        { "phaseUpdatedAt==2024-12-20T10:00:00Z", "a" },
        { "guaranteedRuntimeEndsAt==2024-12-20T10:00:00Z", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = filter_ids(r, cases[i].term, now, a, b);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("filterBy %s -> \"%s\", want \"%s\"", cases[i].term, got, cases[i].want);
    }

    /* terms combine with AND */
    api_registry_query_t q;
    api_registry_query_init(&q);
    const char *two[] = { "category==Train", "priority>=50" };
    q.filter_by = two;
    q.nfilter = 2;
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "a");
    api_registry_result_t res;
    assert_ok(api_registry_count(r, 1, &q, now, a, &res));
    assert_string_equal(res.json, "{\"count\":1}");
    assert_int_equal(res.total, 1);

    /* invalid terms name themselves */
    const char *bad[] = { "foo==bar",
                          "name~x",
                          "allocatedGPU>=abc",
                          "createdAt>=yesterday",
                          "name==",
                          "priority<=",
                          "==x",
                          "createdAt<=2024-02-30T00:00:00Z" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *t1[] = { bad[i] };
        q.filter_by = t1;
        q.nfilter = 1;
        assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
        assert_non_null(res.error);
        if (!strstr(res.error, bad[i])) fail_msg("error \"%s\" does not name \"%s\"", res.error, bad[i]);
        assert_err(api_registry_count(r, 1, &q, now, a, &res), STRATA_EINVAL);
        assert_non_null(strstr(res.error, bad[i]));
    }
    const char *eleven[11];
    for (int i = 0; i < 11; i++) eleven[i] = "name=@a";
    q.filter_by = eleven;
    q.nfilter = 11;
    assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
    assert_non_null(strstr(res.error, "filterBy"));
    q.nfilter = 10;
    assert_ok(api_registry_list(r, 1, &q, now, a, &res));
    assert_int_equal(res.total, 4);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_sort(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + MIN;
    feed_four(r, 1, now);
    char b[64];
    struct {
        const char *by, *order, *want;
    } cases[] = {
        { NULL, NULL, "a,b,c,d" }, /* createdAt asc */
        { "name", "asc", "b,c,a,d" },
        { "name", "desc", "d,a,c,b" },
        { "allocatedGPU", NULL, "b,a,c,d" },   /* D has none: last */
        { "allocatedGPU", "desc", "c,a,b,d" }, /* ... in either order */
        { "createdAt", "desc", "d,c,b,a" },
        { "priority", "asc", "a,b,c,d" },
        { "priority", "desc", "c,b,a,d" },
        { "projectName", "asc", "a,c,b,d" }, /* proj-a twice: tie broken by id */
        { "departmentName", "desc", "c,d,a,b" },
        { "type", "asc", "c,a,d,b" },
        { "nodepool", "asc", "a,d,b,c" },
        { "phase", "asc", "a,b,c,d" },
        { "deletedAt", "desc", "a,b,c,d" },
        { "totalRunningTimeSeconds", "asc", "a,b,c,d" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        api_registry_query_t q;
        api_registry_query_init(&q);
        q.sort_by = cases[i].by;
        q.sort_order = cases[i].order;
        const char *got = list_ids(r, 1, &q, now, a, b, sizeof b);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("sortBy %s %s -> \"%s\", want \"%s\"", cases[i].by ? cases[i].by : "(default)",
                     cases[i].order ? cases[i].order : "", got, cases[i].want);
    }
    api_registry_query_t q;
    api_registry_query_init(&q);
    api_registry_result_t res;
    q.sort_by = "bogus";
    assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
    assert_string_equal(res.error, "sortBy: unknown field \"bogus\"");
    q.sort_by = "name";
    q.sort_order = "up";
    assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
    assert_non_null(strstr(res.error, "sortOrder"));
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_pagination_search_deleted(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + MIN;
    feed_four(r, 1, now);
    char b[64];
    api_registry_query_t q;
    api_registry_query_init(&q);
    api_registry_result_t res;
    q.sort_by = "name";
    q.limit = 3;
    assert_ok(api_registry_list(r, 1, &q, now, a, &res));
    write_fixture("list_paged", &res);
    json_t *j = parse(&res);
    check_array_size(j, "workloads", 3);
    check_int(j, "next", 3);
    check_str(j, "workloads.0.name", "build-beta");
    check_str(j, "workloads.2.name", "train-alpha");
    assert_int_equal(res.total, 4);
    json_decref(j);
    q.offset = 3;
    assert_ok(api_registry_list(r, 1, &q, now, a, &res));
    j = parse(&res);
    check_array_size(j, "workloads", 1);
    check_str(j, "workloads.0.name", "train-delta");
    check_absent(j, "next");
    json_decref(j);
    q.offset = 10;
    assert_ok(api_registry_list(r, 1, &q, now, a, &res));
    assert_string_equal(res.json, "{\"workloads\":[]}");
    q.offset = 1;
    q.limit = 2;
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "c,a");
    q.offset = 0;
    q.limit = 0; /* default 50 */
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "b,c,a,d");
    q.limit = 501;
    assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
    assert_non_null(strstr(res.error, "limit"));
    q.limit = -1;
    assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
    q.limit = 500;
    q.offset = -1;
    assert_err(api_registry_list(r, 1, &q, now, a, &res), STRATA_EINVAL);
    assert_non_null(strstr(res.error, "offset"));
    q.offset = 0;

    /* search: case-insensitive over name, projectName, departmentName */
    q.search = "ALPHA";
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "a");
    q.search = "proj-a";
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "c,a");
    q.search = "Dept-Y";
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "c,d");
    q.search = "Training"; /* the type is not searched */
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "");
    q.search = "";
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "b,c,a,d");

    /* deleted=true: only E (its info stopped at T0-10m) */
    q.deleted = 1;
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "e");
    q.search = "old";
    assert_string_equal(list_ids(r, 1, &q, now, a, b, sizeof b), "e");
    assert_ok(api_registry_count(r, 1, &q, now, a, &res));
    assert_string_equal(res.json, "{\"count\":1}");
    q.search = NULL;
    j = get_json(r, 1, WL_E, now, a);
    check_str(j, "deletedAt", "2024-12-20T14:25:00Z");
    json_decref(j);
    q.deleted = 0;
    assert_ok(api_registry_count(r, 1, &q, now, a, &res));
    assert_string_equal(res.json, "{\"count\":4}");
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_tenant_isolation(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + MIN;
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "one" });
    RANGE(r, 2, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "two" });
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_B },
          { "workload_name", "only-one" });
    RANGE(r, 2, "runai_pod_info", T0, now, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "p" },
          { "workload_id", WL_A });
    RANGE(r, 2, "kube_pod_status_phase", T0, now, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "p" },
          { "phase", "Running" });
    RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "p" },
          { "phase", "Running" });

    json_t *j = get_json(r, 1, WL_A, now, a);
    check_str(j, "name", "one");
    check_int(j, "tenantId", 1);
    check_int(j, "runningPods", 0);
    json_decref(j);
    j = get_json(r, 2, WL_A, now, a);
    check_str(j, "name", "two");
    check_int(j, "tenantId", 2);
    check_int(j, "runningPods", 1);
    json_decref(j);
    api_registry_result_t res;
    assert_err(api_registry_get(r, 2, WL_B, now, a, &res), STRATA_ENOTFOUND);
    assert_err(api_registry_get(r, 3, WL_A, now, a, &res), STRATA_ENOTFOUND);
    assert_int_equal(api_registry_contains(r, 1, WL_B), 1);
    assert_int_equal(api_registry_contains(r, 2, WL_B), 0);
    api_registry_query_t q;
    api_registry_query_init(&q);
    assert_ok(api_registry_count(r, 1, &q, now, a, &res));
    assert_string_equal(res.json, "{\"count\":2}");
    assert_ok(api_registry_count(r, 2, &q, now, a, &res));
    assert_string_equal(res.json, "{\"count\":1}");
    assert_ok(api_registry_list(r, 3, &q, now, a, &res));
    assert_string_equal(res.json, "{\"workloads\":[]}");
    api_registry_free(r);
    strata_arena_free(a);
}

/* A workload with every input the data model has. */
static void feed_full(api_registry_t *r, int64_t now)
{
    RANGE(r, 7, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "llm-finetune" }, { "workload_type", "Training" }, { "category", "Train" },
          { "project_id", "4" }, { "project_name", "team-nlp" }, { "department_id", "2" },
          { "department_name", "research" }, { "cluster_id", CLUSTER }, { "namespace", "runai-team-nlp" },
          { "submitted_by", "alice@example.com" }, { "priority_class", "train" }, { "priority", "50" },
          { "requested_nodepools", "h200,a100" }, { "current_nodepools", "h200" },
          { "created_at", "2024-12-20T14:29:30.5+00:00" }, { "distributed_framework", "PyTorch" },
          { "ai_application_id", "app-1" }, { "ai_application_name", "chat" },
          { "image", "nvcr.io/nvidia/pytorch:24.10-py3" }, { "source", "CLI" },
          { "gpu_request_type", "portion" }, { "requested_pods", "2" }, { "requested_pods_min", "1" },
          { "requested_pods_max", "4" }, { "k8s_phase", "Running" }, { "actions_delete", "true" },
          { "actions_suspend", "false" });
    RANGE(r, 7, "runai_workload_phase", T0, T0 + 30 * SEC, 30 * SEC, 1, { "workload_id", WL_A },
          { "phase", "Pending" });
    RANGE(r, 7, "runai_workload_phase", T0 + 60 * SEC, now, 30 * SEC, 0, { "workload_id", WL_A },
          { "phase", "Pending" });
    RANGE(r, 7, "runai_workload_phase", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "phase", "Running" }, { "phase_message", "Running on dgx-1" });
    /* the workload's own requests and limits */
    static const struct {
        const char *res, *kind;
        double v;
    } wreq[] = {
        { "gpu", "request", 0.75 },
        { "gpu", "limit", 1 },
        { "cpu", "request", 2 },
        { "cpu", "limit", 4 },
        { "cpu_memory", "request", 8589934592.0 },
        { "cpu_memory", "limit", 17179869184.0 },
    };
    for (size_t i = 0; i < sizeof wreq / sizeof wreq[0]; i++)
        RANGE(r, 7, "runai_workload_requested_resource", T0, now, 30 * SEC, wreq[i].v,
              { "workload_id", WL_A }, { "resource", wreq[i].res }, { "kind", wreq[i].kind });
    /* conditions: PodScheduled False, then True from T0+60s; Ready from T0+90s */
    RANGE(r, 7, "runai_workload_condition", T0, T0 + 30 * SEC, 30 * SEC, 1, { "workload_id", WL_A },
          { "type", "PodScheduled" }, { "status", "False" }, { "reason", "Unschedulable" },
          { "message", "0/4 nodes are available" });
    RANGE(r, 7, "runai_workload_condition", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "type", "PodScheduled" }, { "status", "True" });
    RANGE(r, 7, "runai_workload_condition", T0 + 90 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "type", "Ready" }, { "status", "True" });
    /* a pending scheduling message from the Pending minute, gone since */
    RANGE(r, 7, "runai_workload_pending_scheduling_message", T0, T0 + 30 * SEC, 30 * SEC, 1,
          { "workload_id", WL_A }, { "nodepool", "h200" }, { "phase_reason", "OverLimit" },
          { "reason", "Unschedulable" });
    ONE(r, 7, "runai_workload_pending_scheduling_message", T0 + 60 * SEC, stale_nan(),
        { "workload_id", WL_A }, { "nodepool", "h200" }, { "phase_reason", "OverLimit" },
        { "reason", "Unschedulable" });
    RANGE(r, 7, "runai_workload_gpu_allocation", T0 + 60 * SEC, now, 30 * SEC, 1.5, { "workload_id", WL_A });
    RANGE(r, 7, "runai_workload_gpu_memory_request_bytes", T0 + 60 * SEC, now, 30 * SEC, 21474836480.0,
          { "workload_id", WL_A });
    RANGE(r, 7, "runai_pod_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "namespace", "runai-team-nlp" },
          { "pod", "llm-finetune-0" }, { "workload_id", WL_A }, { "node", "dgx-1" }, { "nodepool", "h200" });
    RANGE(r, 7, "kube_pod_status_phase", T0 + 60 * SEC, now, 30 * SEC, 1, { "namespace", "runai-team-nlp" },
          { "pod", "llm-finetune-0" }, { "phase", "Running" });
    /* kube-state-metrics: pod 0 (running) has two containers, pod 1 is not
     * running; ephemeral_storage is not a resource the API shows */
    static const struct {
        const char *metric, *pod, *container, *res;
        double v;
    } ksm[] = {
        { "kube_pod_container_resource_requests", "llm-finetune-0", "main", "cpu", 2 },
        { "kube_pod_container_resource_limits", "llm-finetune-0", "main", "cpu", 4 },
        { "kube_pod_container_resource_requests", "llm-finetune-0", "main", "memory", 8589934592.0 },
        { "kube_pod_container_resource_limits", "llm-finetune-0", "main", "memory", 17179869184.0 },
        { "kube_pod_container_resource_requests", "llm-finetune-0", "main", "nvidia_com_gpu", 2 },
        { "kube_pod_container_resource_limits", "llm-finetune-0", "main", "nvidia_com_gpu", 2 },
        { "kube_pod_container_resource_requests", "llm-finetune-0", "sidecar", "cpu", 0.5 },
        { "kube_pod_container_resource_requests", "llm-finetune-0", "main", "ephemeral_storage", 1e9 },
        { "kube_pod_container_resource_requests", "llm-finetune-1", "main", "cpu", 2 },
    };
    for (size_t i = 0; i < sizeof ksm / sizeof ksm[0]; i++)
        RANGE(r, 7, ksm[i].metric, T0 + 60 * SEC, now, 30 * SEC, ksm[i].v, { "namespace", "runai-team-nlp" },
              { "pod", ksm[i].pod }, { "container", ksm[i].container }, { "resource", ksm[i].res });
    /* a container resource series joined by workload_id alone (no namespace, pod) */
    RANGE(r, 7, "kube_pod_container_resource_requests", T0 + 60 * SEC, now, 30 * SEC, 1,
          { "workload_id", WL_A }, { "container", "launcher" }, { "resource", "cpu" });
    RANGE(r, 7, "runai_pod_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "namespace", "runai-team-nlp" },
          { "pod", "llm-finetune-1" }, { "workload_id", WL_A }, { "node", "dgx-2" }, { "nodepool", "h200" });
    /* GPU memory allocated per pod: only the running pod 0 counts */
    RANGE(r, 7, "runai_pod_gpu_memory_allocated_bytes", T0 + 60 * SEC, now, 30 * SEC, 21474836480.0,
          { "namespace", "runai-team-nlp" }, { "pod", "llm-finetune-0" });
    RANGE(r, 7, "runai_pod_gpu_memory_allocated_bytes", T0 + 60 * SEC, now, 30 * SEC, 10737418240.0,
          { "namespace", "runai-team-nlp" }, { "pod", "llm-finetune-1" });
    RANGE(r, 7, "DCGM_FI_DEV_GPU_UTIL", T0 + 60 * SEC, now, 15 * SEC, 0, { "gpu", "0" }, { "UUID", "GPU-aa" },
          { "namespace", "runai-team-nlp" }, { "pod", "llm-finetune-0" });
    RANGE(r, 7, "DCGM_FI_DEV_GPU_UTIL", T0 + 60 * SEC, now, 15 * SEC, 97, { "gpu", "1" },
          { "UUID", "GPU-bb" }, { "namespace", "runai-team-nlp" }, { "pod", "llm-finetune-0" });
    RANGE(r, 7, "runai_workload_endpoint_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "host", "chat.example.com" }, { "port", "443" }, { "path", "/v1/completions" },
          { "protocol", "HTTPS" }, { "url", "https://chat.example.com/v1/completions" },
          { "tls_enabled", "true" });
    /* an endpoint that went away */
    RANGE(r, 7, "runai_workload_endpoint_info", T0 + 60 * SEC, T0 + 90 * SEC, 30 * SEC, 1,
          { "workload_id", WL_A }, { "host", "old.example.com" }, { "url", "http://old.example.com/" });
    ONE(r, 7, "runai_workload_endpoint_info", T0 + 120 * SEC, stale_nan(), { "workload_id", WL_A },
        { "host", "old.example.com" }, { "url", "http://old.example.com/" });
    static const char *const el_ids[] = { "9a000000-0000-4000-8000-000000000001",
                                          "9a000000-0000-4000-8000-000000000002",
                                          "9a000000-0000-4000-8000-000000000003" };
    RANGE(r, 7, "runai_workload_element_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "element_id", el_ids[2] }, { "name", "worker-1" }, { "hierarchy_level", "2" },
          { "parent_id", el_ids[0] }, { "k8s_uid", "uid-w1" }, { "k8s_name", "llm-finetune-worker-1" },
          { "k8s_version", "v1" }, { "k8s_kind", "Pod" });
    RANGE(r, 7, "runai_workload_element_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "element_id", el_ids[0] }, { "name", "job" }, { "hierarchy_level", "1" },
          { "created_at", "2024-12-20T14:31:00Z" }, { "k8s_group", "batch" }, { "k8s_version", "v1" },
          { "k8s_kind", "Job" });
    RANGE(r, 7, "runai_workload_element_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "element_id", el_ids[1] }, { "name", "worker-0" }, { "hierarchy_level", "2" },
          { "parent_id", el_ids[0] });
    RANGE(r, 7, "runai_workload_elements_total", T0 + 60 * SEC, now, 30 * SEC, 5, { "workload_id", WL_A });
}

static void test_render_workload(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 10 * MIN;
    feed_full(r, now);
    api_registry_result_t res;
    assert_ok(api_registry_get(r, 7, WL_A, now, a, &res));
    write_fixture("get_workload", &res);
    json_t *j = parse(&res);
    check_int(j, "tenantId", 7);
    check_str(j, "id", WL_A);
    check_str(j, "name", "llm-finetune");
    check_str(j, "type", "Training");
    check_str(j, "category", "Train");
    check_str(j, "source", "CLI");
    check_null(j, "sourceApi");
    check_int(j, "priority", 50);
    check_str(j, "priorityClassName", "train");
    check_str(j, "submittedBy", "alice@example.com");
    check_str(j, "clusterId", CLUSTER);
    check_str(j, "projectName", "team-nlp");
    check_str(j, "projectId", "4");
    check_str(j, "departmentName", "research");
    check_str(j, "departmentId", "2");
    check_str(j, "namespace", "runai-team-nlp");
    check_str(j, "createdAt", "2024-12-20T14:29:30.500Z");
    check_str(j, "updatedAt", "2024-12-20T14:40:00Z");
    check_null(j, "deletedAt");
    check_null(j, "completedAt");
    check_str(j, "phase", "Running");
    check_str(j, "phaseUpdatedAt", "2024-12-20T14:31:00Z");
    check_str(j, "phaseMessage", "Running on dgx-1");
    check_absent(j, "phaseReason");
    check_str(j, "k8sPhase", "Running");
    check_str(j, "k8sPhaseUpdatedAt", "2024-12-20T14:30:00Z");
    check_array_size(j, "conditions", 2);
    check_str(j, "conditions.0.type", "PodScheduled");
    check_str(j, "conditions.0.status", "True");
    check_str(j, "conditions.0.lastTransitionTime", "2024-12-20T14:31:00Z");
    check_absent(j, "conditions.0.reason");
    check_absent(j, "conditions.0.message");
    check_str(j, "conditions.1.type", "Ready");
    check_str(j, "conditions.1.status", "True");
    check_str(j, "conditions.1.lastTransitionTime", "2024-12-20T14:31:30Z");
    check_int(j, "runningPods", 1);
    check_str(j, "workloadRequestedResources.gpuRequestType", "portion");
    check_num(j, "workloadRequestedResources.gpu.request", 0.75);
    check_int(j, "workloadRequestedResources.gpu.limit", 1);
    check_str(j, "workloadRequestedResources.gpuMemory.request", "21474836480");
    check_null(j, "workloadRequestedResources.gpuMemory.limit");
    check_int(j, "workloadRequestedResources.cpu.request", 2);
    check_int(j, "workloadRequestedResources.cpu.limit", 4);
    check_str(j, "workloadRequestedResources.cpuMemory.request", "8589934592");
    check_str(j, "workloadRequestedResources.cpuMemory.limit", "17179869184");
    /* pods: 2 + 0.5 + 2 cores requested, + 1 joined by workload_id; limits
     * only on pod 0's main */
    check_absent(j, "podsRequestedResources.gpuRequestType");
    check_int(j, "podsRequestedResources.gpu.request", 2);
    check_int(j, "podsRequestedResources.gpu.limit", 2);
    check_null(j, "podsRequestedResources.gpuMemory");
    check_num(j, "podsRequestedResources.cpu.request", 5.5);
    check_int(j, "podsRequestedResources.cpu.limit", 4);
    check_str(j, "podsRequestedResources.cpuMemory.request", "8589934592");
    check_str(j, "podsRequestedResources.cpuMemory.limit", "17179869184");
    /* allocated: the running pod's requests (+ 1 by workload_id), its GPU memory */
    check_num(j, "allocatedResources.cpu", 3.5);
    check_str(j, "allocatedResources.cpuMemory", "8589934592");
    check_str(j, "allocatedResources.gpuMemory", "21474836480");
    check_null(j, "allocatedResources.extendedResources");
    check_int(j, "requestedPods.number", 2);
    check_int(j, "requestedPods.min", 1);
    check_int(j, "requestedPods.max", 4);
    check_null(j, "requestedPods.parallelism");
    check_null(j, "requestedPods.completions");
    assert_true(json_is_true(jpath(j, "actionsSupport.delete")));
    assert_true(json_is_false(jpath(j, "actionsSupport.suspend")));
    check_num(j, "allocatedResources.gpu", 1.5);
    check_array_size(j, "requestedNodePools", 2);
    check_str(j, "requestedNodePools.0", "h200");
    check_str(j, "requestedNodePools.1", "a100");
    check_array_size(j, "currentNodePools", 1);
    check_str(j, "currentNodePools.0", "h200");
    check_array_size(j, "images", 1);
    check_str(j, "images.0", "nvcr.io/nvidia/pytorch:24.10-py3");
    check_str(j, "distributedFramework", "PyTorch");
    check_str(j, "aiApplicationId", "app-1");
    check_str(j, "aiApplicationName", "chat");
    /* gpu 0 at 0% since T0+60s (9 minutes), gpu 1 busy: 1.5 x 1/2 */
    check_int(j, "idleGpus", 1);
    check_num(j, "idleAllocatedGpus", 0.75);
    check_int(j, "totalPendingTimeSeconds", 60);
    check_int(j, "totalRunningTimeSeconds", 540);
    check_null(j, "guaranteedRuntimeEndsAt");
    check_null(j, "preemptible");
    check_null(j, "topology");
    check_array_size(j, "datasources", 0);
    check_array_size(j, "environments", 0);
    check_array_size(j, "externalConnections", 0);
    check_array_size(j, "urls", 1);
    check_str(j, "urls.0", "https://chat.example.com/v1/completions");
    check_array_size(j, "endpoints", 1);
    check_str(j, "endpoints.0.host", "chat.example.com");
    check_int(j, "endpoints.0.port", 443);
    check_str(j, "endpoints.0.path", "/v1/completions");
    check_str(j, "endpoints.0.protocol", "HTTPS");
    check_str(j, "endpoints.0.url", "https://chat.example.com/v1/completions");
    assert_true(json_is_true(jpath(j, "endpoints.0.tlsEnabled")));
    check_array_size(j, "pendingSchedulingMessages", 0); /* sent, none holds now */
    assert_int_equal(json_object_size(j), 51);
    json_decref(j);

    /* The list renders the same Workload, without the detailed-only field. */
    api_registry_query_t q;
    api_registry_query_init(&q);
    assert_ok(api_registry_list(r, 7, &q, now, a, &res));
    write_fixture("list_workloads", &res);
    j = parse(&res);
    check_array_size(j, "workloads", 1);
    check_absent(j, "workloads.0.pendingSchedulingMessages");
    assert_int_equal(json_object_size(jpath(j, "workloads.0")), 50);
    check_absent(j, "next");
    json_decref(j);
    assert_ok(api_registry_count(r, 7, &q, now, a, &res));
    write_fixture("count_workloads", &res);

    /* Endpoints. */
    assert_ok(api_registry_endpoints(r, 7, WL_A, now, a, &res));
    write_fixture("endpoints", &res);
    assert_string_equal(res.json, "{\"endpoints\":[{\"host\":\"chat.example.com\",\"port\":443,"
                                  "\"path\":\"/v1/completions\",\"tlsEnabled\":true,\"protocol\":\"HTTPS\","
                                  "\"url\":\"https://chat.example.com/v1/completions\"}]}");
    /* the old endpoint was there at T0+100s */
    assert_ok(api_registry_endpoints(r, 7, WL_A, T0 + 100 * SEC, a, &res));
    j = parse(&res);
    check_array_size(j, "endpoints", 2);
    json_decref(j);

    /* Elements: by level then name; paging with next. */
    assert_ok(api_registry_elements(r, 7, WL_A, 0, 2, now, a, &res));
    write_fixture("elements", &res);
    j = parse(&res);
    check_array_size(j, "elements", 2);
    check_int(j, "next", 2);
    check_str(j, "elements.0.id", "9a000000-0000-4000-8000-000000000001");
    check_str(j, "elements.0.name", "job");
    check_int(j, "elements.0.hierarchyLevel", 1);
    check_null(j, "elements.0.parentId");
    check_str(j, "elements.0.createdAt", "2024-12-20T14:31:00Z");
    check_absent(j, "elements.0.kubernetesRef.uid");
    check_str(j, "elements.0.kubernetesRef.gvk.group", "batch");
    check_str(j, "elements.0.kubernetesRef.gvk.kind", "Job");
    check_str(j, "elements.1.name", "worker-0");
    check_int(j, "elements.1.hierarchyLevel", 2);
    check_str(j, "elements.1.parentId", "9a000000-0000-4000-8000-000000000001");
    check_null(j, "elements.1.kubernetesRef");
    check_absent(j, "elements.1.createdAt");
    json_decref(j);
    assert_ok(api_registry_elements(r, 7, WL_A, 2, 2, now, a, &res));
    j = parse(&res);
    check_array_size(j, "elements", 1);
    check_absent(j, "next");
    check_str(j, "elements.0.name", "worker-1");
    check_str(j, "elements.0.kubernetesRef.uid", "uid-w1");
    check_str(j, "elements.0.kubernetesRef.name", "llm-finetune-worker-1");
    check_str(j, "elements.0.kubernetesRef.gvk.version", "v1");
    json_decref(j);
    assert_err(api_registry_elements(r, 7, WL_A, 0, 501, now, a, &res), STRATA_EINVAL);
    assert_err(api_registry_elements(r, 7, WL_A, -1, 10, now, a, &res), STRATA_EINVAL);
    assert_err(api_registry_elements(r, 7, WL_B, 0, 10, now, a, &res), STRATA_ENOTFOUND);
    assert_ok(api_registry_elements_count(r, 7, WL_A, now, a, &res));
    write_fixture("elements_count", &res);
    assert_string_equal(res.json, "{\"totalElementsCount\":5,\"storedElementsCount\":3}");
    assert_err(api_registry_endpoints(r, 8, WL_A, now, a, &res), STRATA_ENOTFOUND);

    /* Once deleted, the workload keeps its last elements and endpoints; its
     * allocation no longer holds. */
    int64_t later = now + 30 * MIN;
    assert_ok(api_registry_get(r, 7, WL_A, later, a, &res));
    write_fixture("get_deleted", &res);
    j = parse(&res);
    check_str(j, "deletedAt", "2024-12-20T14:45:00Z");
    check_num(j, "allocatedResources.gpu", 0);
    check_int(j, "runningPods", 0);
    check_null(j, "workloadRequestedResources");
    check_null(j, "podsRequestedResources");
    check_null(j, "allocatedResources.cpu");
    check_int(j, "totalRunningTimeSeconds", 840); /* until the deletion */
    check_array_size(j, "endpoints", 1);
    json_decref(j);
    assert_ok(api_registry_elements_count(r, 7, WL_A, later, a, &res));
    assert_string_equal(res.json, "{\"totalElementsCount\":5,\"storedElementsCount\":3}");
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_minimal_workload_renders_required_fields(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    ONE(r, 1, "runai_workload_info", T0, 1, { "workload_id", WL_A });
    api_registry_result_t res;
    assert_ok(api_registry_get(r, 1, WL_A, T0, a, &res));
    write_fixture("get_minimal", &res);
    json_t *j = parse(&res);
    check_str(j, "name", "");
    check_str(j, "clusterId", "00000000-0000-0000-0000-000000000000");
    check_str(j, "phase", "Unknown");
    check_str(j, "phaseUpdatedAt", "2024-12-20T14:30:00Z");
    check_str(j, "source", "Other");
    check_null(j, "priority");
    check_null(j, "totalPendingTimeSeconds");
    check_null(j, "allocatedResources.gpu");
    check_array_size(j, "requestedNodePools", 0);
    check_array_size(j, "images", 0);
    check_absent(j, "submittedBy");
    check_int(j, "idleAllocatedGpus", 0);
    json_decref(j);
    assert_ok(api_registry_elements(r, 1, WL_A, 0, 0, T0, a, &res));
    assert_string_equal(res.json, "{\"elements\":[]}");
    assert_ok(api_registry_elements_count(r, 1, WL_A, T0, a, &res));
    assert_string_equal(res.json, "{\"totalElementsCount\":0,\"storedElementsCount\":0}");
    assert_ok(api_registry_endpoints(r, 1, WL_A, T0, a, &res));
    assert_string_equal(res.json, "{\"endpoints\":[]}");
    api_registry_free(r);
    strata_arena_free(a);
}

/* A Pending workload: phase message and reason, k8s phase, pending
 * scheduling messages; values outside the spec's enums are left out. */
static void test_pending_status_fields(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 5 * MIN;
    /* k8s_phase Pending until T0+60s, then ContainerCreating */
    RANGE(r, 1, "runai_workload_info", T0, T0 + 30 * SEC, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "waiting" }, { "cluster_id", CLUSTER }, { "k8s_phase", "Pending" },
          { "gpu_request_type", "fraction" }, { "requested_pods", "two" }, { "actions_delete", "yes" });
    RANGE(r, 1, "runai_workload_info", T0 + 60 * SEC, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "waiting" }, { "cluster_id", CLUSTER }, { "k8s_phase", "ContainerCreating" },
          { "gpu_request_type", "fraction" }, { "requested_pods", "two" }, { "actions_delete", "yes" },
          { "actions_suspend", "TRUE" });
    RANGE(r, 1, "runai_workload_phase", T0, now, 30 * SEC, 1, { "workload_id", WL_A }, { "phase", "Pending" },
          { "phase_message", "Waiting for 8 GPUs in nodepool h200" },
          { "phase_reason", "NonPreemptibleOverQuota" });
    RANGE(r, 1, "runai_workload_requested_resource", T0, now, 30 * SEC, 8, { "workload_id", WL_A },
          { "resource", "gpu" }, { "kind", "request" });
    /* ignored: an unknown resource, an unknown kind */
    RANGE(r, 1, "runai_workload_requested_resource", T0, now, 30 * SEC, 3, { "workload_id", WL_A },
          { "resource", "tpu" }, { "kind", "request" });
    RANGE(r, 1, "runai_workload_requested_resource", T0, now, 30 * SEC, 3, { "workload_id", WL_A },
          { "resource", "cpu" }, { "kind", "minimum" });
    RANGE(r, 1, "runai_workload_pending_scheduling_message", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "nodepool", "h200" }, { "phase_reason", "NonPreemptibleOverQuota" },
          { "reason", "Non-preemptible workload is over quota" }, { "org_type", "PROJECT" },
          { "user_message", "Project team-a is over its GPU quota" });
    RANGE(r, 1, "runai_workload_pending_scheduling_message", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "nodepool", "default" }, { "phase_reason", "OverLimit" }, { "reason", "Over limit" },
          { "org_type", "TEAM" });
    /* no phase_reason from the spec's enum: not renderable (it is required) */
    RANGE(r, 1, "runai_workload_pending_scheduling_message", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "nodepool", "a100" }, { "phase_reason", "Unschedulable" }, { "reason", "no nodes" });
    api_registry_result_t res;
    assert_ok(api_registry_get(r, 1, WL_A, now, a, &res));
    write_fixture("get_pending", &res);
    json_t *j = parse(&res);
    check_str(j, "phase", "Pending");
    check_str(j, "phaseMessage", "Waiting for 8 GPUs in nodepool h200");
    check_str(j, "phaseReason", "NonPreemptibleOverQuota");
    check_str(j, "k8sPhase", "ContainerCreating");
    check_str(j, "k8sPhaseUpdatedAt", "2024-12-20T14:31:00Z");
    check_array_size(j, "conditions", 0);
    check_absent(j, "workloadRequestedResources.gpuRequestType"); /* "fraction" is not in the enum */
    check_int(j, "workloadRequestedResources.gpu.request", 8);
    check_null(j, "workloadRequestedResources.gpu.limit");
    check_null(j, "workloadRequestedResources.cpu");
    check_null(j, "workloadRequestedResources.gpuMemory");
    check_null(j, "podsRequestedResources");
    check_absent(j, "requestedPods");
    check_absent(j, "actionsSupport.delete");
    assert_true(json_is_true(jpath(j, "actionsSupport.suspend")));
    check_array_size(j, "pendingSchedulingMessages", 2);
    check_str(j, "pendingSchedulingMessages.0.nodePool", "h200");
    check_str(j, "pendingSchedulingMessages.0.phaseReason", "NonPreemptibleOverQuota");
    check_str(j, "pendingSchedulingMessages.0.reason", "Non-preemptible workload is over quota");
    check_str(j, "pendingSchedulingMessages.0.orgType", "PROJECT");
    check_str(j, "pendingSchedulingMessages.0.userMessage", "Project team-a is over its GPU quota");
    check_str(j, "pendingSchedulingMessages.1.nodePool", "default");
    check_str(j, "pendingSchedulingMessages.1.phaseReason", "OverLimit");
    check_absent(j, "pendingSchedulingMessages.1.orgType"); /* TEAM is not an OrgType */
    check_null(j, "pendingSchedulingMessages.1.userMessage");
    json_decref(j);

    /* Running: the Pending phase's message no longer shows. */
    ONE(r, 1, "runai_workload_phase", now + 30 * SEC, 0, { "workload_id", WL_A }, { "phase", "Pending" },
        { "phase_message", "Waiting for 8 GPUs in nodepool h200" },
        { "phase_reason", "NonPreemptibleOverQuota" });
    ONE(r, 1, "runai_workload_phase", now + 30 * SEC, 1, { "workload_id", WL_A }, { "phase", "Running" });
    j = get_json(r, 1, WL_A, now + 30 * SEC, a);
    check_str(j, "phase", "Running");
    check_absent(j, "phaseMessage");
    check_absent(j, "phaseReason");
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
}

/* Levels outside 1..3 (or missing) are kept as null, counted once per
 * element in the stats, and sort after level 3. */
static void test_element_bad_levels(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 2 * MIN;
    ONE(r, 1, "runai_workload_info", now, 1, { "workload_id", WL_A });
    static const struct {
        const char *id, *name, *level;
    } el[] = {
        { "9b000000-0000-4000-8000-000000000001", "a-root0", "0" },
        { "9b000000-0000-4000-8000-000000000002", "b-four", "4" },
        { "9b000000-0000-4000-8000-000000000003", "c-text", "2x" },
        { "9b000000-0000-4000-8000-000000000004", "d-root", "1" },
        { "9b000000-0000-4000-8000-000000000005", "e-none", NULL },
        { "9b000000-0000-4000-8000-000000000006", "f-child", "2" },
    };
    for (size_t i = 0; i < 6; i++) {
        if (el[i].level)
            RANGE(r, 1, "runai_workload_element_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
                  { "element_id", el[i].id }, { "name", el[i].name }, { "hierarchy_level", el[i].level });
        else
            RANGE(r, 1, "runai_workload_element_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
                  { "element_id", el[i].id }, { "name", el[i].name });
    }
    /* written again: still counted once per element */
    ONE(r, 1, "runai_workload_element_info", now + 30 * SEC, 1, { "workload_id", WL_A },
        { "element_id", el[0].id }, { "name", el[0].name }, { "hierarchy_level", "0" });
    api_registry_stats_t st;
    api_registry_stats(r, &st);
    assert_int_equal(st.bad_element_levels, 4);
    assert_int_equal(st.elements, 6);
    api_registry_result_t res;
    assert_ok(api_registry_elements(r, 1, WL_A, 0, 0, now, a, &res));
    json_t *j = parse(&res);
    check_array_size(j, "elements", 6);
    check_str(j, "elements.0.name", "d-root");
    check_int(j, "elements.0.hierarchyLevel", 1);
    check_str(j, "elements.1.name", "f-child");
    check_int(j, "elements.1.hierarchyLevel", 2);
    static const char *const bad[] = { "a-root0", "b-four", "c-text", "e-none" };
    for (int i = 0; i < 4; i++) {
        char path[64];
        snprintf(path, sizeof path, "elements.%d.name", i + 2);
        check_str(j, path, bad[i]);
        snprintf(path, sizeof path, "elements.%d.hierarchyLevel", i + 2);
        check_null(j, path);
    }
    json_decref(j);
    /* the agent fixes one: it renders, and the counter keeps its total */
    ONE(r, 1, "runai_workload_element_info", now + MIN, 1, { "workload_id", WL_A },
        { "element_id", el[0].id }, { "name", el[0].name }, { "hierarchy_level", "1" });
    assert_ok(api_registry_elements(r, 1, WL_A, 0, 1, now + MIN, a, &res));
    j = parse(&res);
    check_str(j, "elements.0.name", "a-root0");
    check_int(j, "elements.0.hierarchyLevel", 1);
    json_decref(j);
    api_registry_stats(r, &st);
    assert_int_equal(st.bad_element_levels, 4);
    api_registry_free(r);
    strata_arena_free(a);
}

static void test_holding_and_ignored_input(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 10 * MIN;
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A });
    /* allocation last sent 6 minutes ago: it no longer holds */
    ONE(r, 1, "runai_workload_gpu_allocation", now - 6 * MIN, 3, { "workload_id", WL_A });
    json_t *j = get_json(r, 1, WL_A, now, a);
    check_num(j, "allocatedResources.gpu", 0);
    json_decref(j);
    j = get_json(r, 1, WL_A, now - 2 * MIN, a);
    check_num(j, "allocatedResources.gpu", 3);
    json_decref(j);
    /* a stale marker ends it at once */
    ONE(r, 1, "runai_workload_gpu_allocation", now - 5 * MIN, stale_nan(), { "workload_id", WL_A });
    j = get_json(r, 1, WL_A, now - 5 * MIN, a);
    check_num(j, "allocatedResources.gpu", 0);
    json_decref(j);
    /* older samples than the newest are ignored */
    ONE(r, 1, "runai_workload_gpu_allocation", now - 10 * SEC, 2, { "workload_id", WL_A });
    ONE(r, 1, "runai_workload_gpu_allocation", now - 20 * SEC, 5, { "workload_id", WL_A });
    j = get_json(r, 1, WL_A, now, a);
    check_num(j, "allocatedResources.gpu", 2);
    json_decref(j);

    /* series the registry does not use, or without the labels it joins on */
    ONE(r, 2, "node_cpu_seconds_total", now, 1, { "workload_id", WL_B });
    ONE(r, 2, "runai_workload_info", now, 1, { "workload_name", "no-id" });
    ONE(r, 2, "runai_workload_phase", now, 1, { "workload_id", WL_B }, { "phase", "Sleeping" });
    ONE(r, 2, "runai_pod_info", now, 1, { "workload_id", WL_B }, { "pod", "p" });
    ONE(r, 2, "DCGM_FI_DEV_GPU_UTIL", now, 0, { "gpu", "0" });
    ONE(r, 2, "runai_workload_info_extra", now, 1, { "workload_id", WL_B });
    tsdb_label_t nameless[] = { { "workload_id", WL_B } };
    tsdb_sample_t s = { now, 1 };
    assert_ok(api_registry_observe(r, 2, nameless, 1, &s, 1));
    api_registry_query_t q;
    api_registry_query_init(&q);
    api_registry_result_t res;
    assert_ok(api_registry_count(r, 2, &q, now, a, &res));
    assert_string_equal(res.json, "{\"count\":0}");
    assert_int_equal(api_registry_contains(r, 2, WL_B), 0);
    /* a workload known only through its phase (no info) is not listed */
    assert_err(api_registry_get(r, 2, WL_B, now, a, &res), STRATA_ENOTFOUND);
    api_registry_free(r);
    strata_arena_free(a);
}

struct sum {
    int n;
    double alloc, idle;
    char last[128];
};

static int summarise(const api_registry_summary_t *w, void *ctx)
{
    struct sum *s = ctx;
    s->n++;
    s->alloc += w->allocated_gpus;
    s->idle += w->idle_allocated_gpus;
    if (!strcmp(w->id, WL_A))
        snprintf(s->last, sizeof s->last, "%s|%s|%s|%s|%s|%zu:%s|%zu:%s|%" PRId64, w->name, w->phase,
                 w->project_name, w->department_name, w->cluster_id, w->ncurrent_nodepools,
                 w->ncurrent_nodepools ? w->current_nodepools[0] : "", w->nrequested_nodepools,
                 w->nrequested_nodepools ? w->requested_nodepools[1] : "",
                 (int64_t)(w->phase_updated_at_ms - T0));
    return 0;
}

static int stop_at_first(const api_registry_summary_t *w, void *ctx)
{
    (void)w;
    (*(int *)ctx)++;
    return 42;
}

static void test_foreach_summary(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    int64_t now = T0 + 10 * MIN;
    feed_four(r, 1, now);
    feed_full(r, now); /* tenant 7 */
    struct sum s = { 0 };
    assert_ok(api_registry_foreach(r, 1, now, summarise, &s));
    assert_int_equal(s.n, 4); /* E is deleted */
    assert_true(s.alloc == 3.5);
    assert_true(s.idle == 0);
    memset(&s, 0, sizeof s);
    assert_ok(api_registry_foreach(r, 7, now, summarise, &s));
    assert_int_equal(s.n, 1);
    assert_true(s.alloc == 1.5);
    assert_true(s.idle == 0.75);
    assert_string_equal(s.last, "llm-finetune|Running|team-nlp|research|" CLUSTER "|1:h200|2:a100|60000");
    int calls = 0;
    assert_int_equal(api_registry_foreach(r, 1, now, stop_at_first, &calls), 42);
    assert_int_equal(calls, 1);
    assert_ok(api_registry_foreach(r, 99, now, stop_at_first, &calls));
    assert_int_equal(calls, 1);
    api_registry_free(r);
}

/* Writers on two tenants and a reader at once; the end state is exact. */
struct thr {
    api_registry_t *r;
    int32_t tenant;
};

static void *writer(void *arg)
{
    struct thr *t = arg;
    char id[64];
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "3f1c1a2e-0000-4000-8000-%012d", i);
        tsdb_label_t l[] = { { "__name__", "runai_workload_info" }, { "workload_id", id } };
        tsdb_sample_t s[2] = { { T0, 1 }, { T0 + 30 * SEC, 1 } };
        if (api_registry_observe(t->r, t->tenant, l, 2, s, 2)) return (void *)1;
        tsdb_label_t g[] = { { "__name__", "runai_workload_gpu_allocation" }, { "workload_id", id } };
        if (api_registry_observe(t->r, t->tenant, g, 2, s, 2)) return (void *)1;
    }
    return NULL;
}

static void *reader(void *arg)
{
    struct thr *t = arg;
    strata_arena_t *a = strata_arena_new(0);
    api_registry_query_t q;
    api_registry_query_init(&q);
    q.limit = 500;
    for (int i = 0; i < 50; i++) {
        api_registry_result_t res;
        if (api_registry_list(t->r, t->tenant, &q, T0 + MIN, a, &res)) return (void *)1;
        strata_arena_reset(a);
    }
    strata_arena_free(a);
    return NULL;
}

static void test_concurrency(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    struct thr t1 = { r, 1 }, t2 = { r, 2 }, t3 = { r, 1 };
    pthread_t a, b, c, d;
    assert_int_equal(pthread_create(&a, NULL, writer, &t1), 0);
    assert_int_equal(pthread_create(&b, NULL, writer, &t2), 0);
    assert_int_equal(pthread_create(&c, NULL, writer, &t3), 0);
    assert_int_equal(pthread_create(&d, NULL, reader, &t1), 0);
    void *ra, *rb, *rc, *rd;
    pthread_join(a, &ra);
    pthread_join(b, &rb);
    pthread_join(c, &rc);
    pthread_join(d, &rd);
    assert_null(ra);
    assert_null(rb);
    assert_null(rc);
    assert_null(rd);
    strata_arena_t *ar = strata_arena_new(0);
    api_registry_query_t q;
    api_registry_query_init(&q);
    api_registry_result_t res;
    for (int32_t ten = 1; ten <= 2; ten++) {
        assert_ok(api_registry_count(r, ten, &q, T0 + MIN, ar, &res));
        assert_string_equal(res.json, "{\"count\":200}");
        struct sum s = { 0 };
        assert_ok(api_registry_foreach(r, ten, T0 + MIN, summarise, &s));
        assert_true(s.alloc == 200);
    }
    strata_arena_free(ar);
    api_registry_free(r);
}

static void test_options(void **state)
{
    (void)state;
    /* a 1-minute staleness and 2-minute idle threshold */
    api_registry_options_t o;
    api_registry_options_init(&o);
    assert_int_equal(o.staleness_ms, 5 * MIN);
    assert_int_equal(o.gpu_idle_after_ms, 5 * MIN);
    o.staleness_ms = MIN;
    o.gpu_idle_after_ms = 2 * MIN;
    api_registry_t *r;
    assert_ok(api_registry_new(&o, &r));
    strata_arena_t *a = strata_arena_new(0);
    RANGE(r, 1, "runai_workload_info", T0, T0 + 3 * MIN, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "runai_workload_gpu_allocation", T0, T0 + 3 * MIN, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", T0, T0 + 3 * MIN, 30 * SEC, 0, { "gpu", "0" },
          { "workload_id", WL_A });
    json_t *j = get_json(r, 1, WL_A, T0 + 3 * MIN, a);
    check_num(j, "idleAllocatedGpus", 1);
    json_decref(j);
    j = get_json(r, 1, WL_A, T0 + 4 * MIN, a);
    check_str(j, "deletedAt", "2024-12-20T14:34:00Z");
    json_decref(j);
    api_registry_free(r);
    strata_arena_free(a);
    api_registry_free(NULL);
}

static void check_stats(api_registry_t *r, size_t tenants, size_t wls, size_t pods, size_t gpus, size_t els)
{
    api_registry_stats_t st;
    api_registry_stats(r, &st);
    if (st.tenants != tenants || st.workloads != wls || st.pods != pods || st.gpus != gpus ||
        st.elements != els)
        fail_msg("stats %zu/%zu/%zu/%zu/%zu, want %zu/%zu/%zu/%zu/%zu", st.tenants, st.workloads, st.pods,
                 st.gpus, st.elements, tenants, wls, pods, gpus, els);
}

static void test_gc(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    /* A: deleted at T0+7m (last info T0+2m), with a GPU of its own, a pod
     * with a GPU, an element and an endpoint. */
    RANGE(r, 1, "runai_workload_info", T0, T0 + 2 * MIN, 30 * SEC, 1, { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", T0, T0 + 2 * MIN, 30 * SEC, 5, { "gpu", "0" },
          { "workload_id", WL_A });
    RANGE(r, 1, "runai_pod_info", T0, T0 + 2 * MIN, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "p-a" },
          { "workload_id", WL_A });
    RANGE(r, 1, "DCGM_FI_DEV_GPU_UTIL", T0, T0 + 2 * MIN, 30 * SEC, 5, { "gpu", "1" }, { "namespace", "ns" },
          { "pod", "p-a" });
    RANGE(r, 1, "runai_workload_element_info", T0, T0 + 2 * MIN, 30 * SEC, 1, { "workload_id", WL_A },
          { "element_id", "e-a" }, { "name", "a" });
    RANGE(r, 1, "runai_workload_endpoint_info", T0, T0 + 2 * MIN, 30 * SEC, 1, { "workload_id", WL_A },
          { "url", "http://a/" });
    /* B: live to T0+20m; element e1 too, element e2 ended at T0+1m */
    RANGE(r, 1, "runai_workload_info", T0, T0 + 20 * MIN, 30 * SEC, 1, { "workload_id", WL_B });
    RANGE(r, 1, "runai_workload_element_info", T0, T0 + 20 * MIN, 30 * SEC, 1, { "workload_id", WL_B },
          { "element_id", "e1" }, { "name", "one" });
    RANGE(r, 1, "runai_workload_element_info", T0, T0 + 30 * SEC, 30 * SEC, 1, { "workload_id", WL_B },
          { "element_id", "e2" }, { "name", "two" });
    ONE(r, 1, "runai_workload_element_info", T0 + MIN, stale_nan(), { "workload_id", WL_B },
        { "element_id", "e2" }, { "name", "two" });
    /* C: never in runai_workload_info, its allocation series ended at T0+6m */
    RANGE(r, 1, "runai_workload_gpu_allocation", T0, T0 + MIN, 30 * SEC, 1, { "workload_id", WL_C });
    /* a pod of no workload, status only, ended at T0+6m */
    RANGE(r, 1, "kube_pod_status_phase", T0, T0 + MIN, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "x" },
          { "phase", "Running" });
    check_stats(r, 1, 3, 2, 2, 3);

    size_t dropped = 99;
    assert_ok(api_registry_gc(r, T0 + 20 * MIN, 60 * MIN, &dropped));
    assert_int_equal(dropped, 0);
    check_stats(r, 1, 3, 2, 2, 3);
    /* everything that ended by T0+7m-1ms: C, the pod x, B's e2 */
    assert_ok(api_registry_gc(r, T0 + 17 * MIN - 1, 10 * MIN, &dropped));
    assert_int_equal(dropped, 1);
    check_stats(r, 1, 2, 1, 2, 2);
    assert_int_equal(api_registry_contains(r, 1, WL_A), 1);
    /* A deleted at T0+7m goes now, with its pod, GPUs, element and endpoint */
    assert_ok(api_registry_gc(r, T0 + 17 * MIN, 10 * MIN, &dropped));
    assert_int_equal(dropped, 1);
    check_stats(r, 1, 1, 0, 0, 1);
    api_registry_result_t res;
    assert_err(api_registry_get(r, 1, WL_A, T0 + 17 * MIN, a, &res), STRATA_ENOTFOUND);
    assert_ok(api_registry_elements_count(r, 1, WL_B, T0 + 17 * MIN, a, &res));
    assert_string_equal(res.json, "{\"totalElementsCount\":1,\"storedElementsCount\":1}");
    api_registry_query_t q;
    api_registry_query_init(&q);
    q.deleted = 1;
    assert_ok(api_registry_count(r, 1, &q, T0 + 17 * MIN, a, &res));
    assert_string_equal(res.json, "{\"count\":0}");

    /* A comes back later: a fresh record */
    ONE(r, 1, "runai_workload_info", T0 + 30 * MIN, 1, { "workload_id", WL_A });
    json_t *j = get_json(r, 1, WL_A, T0 + 30 * MIN, a);
    check_str(j, "createdAt", "2024-12-20T15:00:00Z");
    check_array_size(j, "endpoints", 0);
    json_decref(j);

    /* Many deletions in one map: every survivor is still found. */
    char id[64];
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof id, "3f1c1a2e-0000-4000-8000-%012d", i);
        int64_t last = i % 3 ? T0 + 10 * MIN : T0;
        RANGE(r, 2, "runai_workload_info", T0, last, 5 * MIN, 1, { "workload_id", id });
    }
    assert_ok(api_registry_gc(r, T0 + 10 * MIN, 0, &dropped));
    assert_int_equal(dropped, 200);
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof id, "3f1c1a2e-0000-4000-8000-%012d", i);
        assert_int_equal(api_registry_contains(r, 2, id), i % 3 != 0);
    }
    q.deleted = 0;
    assert_ok(api_registry_count(r, 2, &q, T0 + 10 * MIN, a, &res));
    assert_string_equal(res.json, "{\"count\":400}");
    api_registry_free(r);
    strata_arena_free(a);
}

/* The store holds what ingest accepted: replaying it gives the same answers. */
static void same_answers(api_registry_t *x, api_registry_t *y, int64_t now, strata_arena_t *a)
{
    api_registry_result_t rx, ry;
    assert_ok(api_registry_get(x, 7, WL_A, now, a, &rx));
    assert_ok(api_registry_get(y, 7, WL_A, now, a, &ry));
    assert_string_equal(rx.json, ry.json);
    assert_ok(api_registry_elements(x, 7, WL_A, 0, 0, now, a, &rx));
    assert_ok(api_registry_elements(y, 7, WL_A, 0, 0, now, a, &ry));
    assert_string_equal(rx.json, ry.json);
    api_registry_query_t q;
    api_registry_query_init(&q);
    for (q.deleted = 0; q.deleted <= 1; q.deleted++) {
        assert_ok(api_registry_list(x, 1, &q, now, a, &rx));
        assert_ok(api_registry_list(y, 1, &q, now, a, &ry));
        assert_string_equal(rx.json, ry.json);
    }
    assert_int_equal(rx.total, 1);
}

static void test_replay_from_store(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.retention_ms = 0;
    tsdb_t *db;
    assert_ok(tsdb_open(&o, &db));
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 10 * MIN;
    api_registry_t *direct = reg_new();
    g_db = db;
    feed_full(direct, now);
    feed_four(direct, 1, now);
    g_db = NULL;

    api_registry_t *re = reg_new();
    api_read_source_t *rd;
    assert_ok(api_read_source_tsdb(db, &rd));
    size_t n = 0;
    /* feed_full has 38 series (15 + 6 requested resources, 3 conditions, 1
     * pending message, 10 container resources, 1 pod info, 2 pod GPU memory),
     * feed_four 8 (5 info, 3 allocation) */
    assert_ok(api_registry_replay(re, rd, T0 - 60 * MIN, now, &n));
    assert_int_equal(n, 46);
    same_answers(direct, re, now, a);
    /* replaying again changes nothing: every sample is already known */
    assert_ok(api_registry_replay(re, rd, T0 - 60 * MIN, now, &n));
    same_answers(direct, re, now, a);
    api_registry_free(re);

    /* from blocks as well as from the head */
    assert_ok(tsdb_cut_head(db));
    re = reg_new();
    assert_ok(api_registry_replay(re, rd, T0 - 60 * MIN, now, &n));
    assert_int_equal(n, 46);
    same_answers(direct, re, now, a);
    api_registry_free(re);

    api_registry_free(direct);
    api_read_source_free(rd);
    tsdb_close(db);
    test_tmpdir_free(dir);
    strata_arena_free(a);
}

/* Optional strings (submittedBy, distributedFramework, aiApplicationId/Name)
 * without their label are null, not "": the comparisons never match them,
 * != and !@ do, and they sort last in both orders.  Required strings render
 * and compare as "". */
static void test_absent_optional_strings_are_null(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + MIN;
    struct {
        const char *id, *name, *fw, *by;
    } w[] = {
        { WL_A, "wl-a", "PyTorch", "alice" },
        { WL_B, "wl-b", NULL, NULL },
        { WL_C, "wl-c", "MPI", "" },
        { WL_D, "wl-d", NULL, NULL },
    };
    for (int i = 0; i < 4; i++) {
        kv_t kv[] = { { "workload_id", w[i].id },
                      { "workload_name", w[i].name },
                      { "cluster_id", CLUSTER },
                      { "distributed_framework", w[i].fw ? w[i].fw : "" },
                      { "submitted_by", w[i].by ? w[i].by : "" } };
        range_kv(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, kv, 5);
    }
    char b[64];
    struct {
        const char *term, *want;
    } cases[] = {
        { "distributedFramework<=PyTorch", "a,c" },
        { "distributedFramework>=A", "a,c" },
        { "distributedFramework==PyTorch", "a" },
        { "distributedFramework!=PyTorch", "b,c,d" },
        { "distributedFramework=@o", "a" },
        { "distributedFramework!@o", "b,c,d" },
        { "distributedFramework=^M", "c" },
        { "distributedFramework=$h", "a" },
        { "submittedBy<=zzz", "a" },
        { "submittedBy!=alice", "b,c,d" },
        { "aiApplicationId!@x", "a,b,c,d" },
        { "aiApplicationName>=a", "" },
        /* a required string without its label is "" (as rendered) */
        { "departmentName<=a", "a,b,c,d" },
        { "priorityClassName==x", "" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = filter_ids(r, cases[i].term, now, a, b);
        if (strcmp(got, cases[i].want))
            fail_msg("filterBy %s -> \"%s\", want \"%s\"", cases[i].term, got, cases[i].want);
    }
    struct {
        const char *by, *order, *want;
    } sorts[] = {
        { "distributedFramework", "asc", "c,a,b,d" }, { "distributedFramework", "desc", "a,c,b,d" },
        { "submittedBy", "asc", "a,b,c,d" },          { "submittedBy", "desc", "a,b,c,d" },
        { "aiApplicationName", "desc", "a,b,c,d" },
    };
    for (size_t i = 0; i < sizeof sorts / sizeof sorts[0]; i++) {
        api_registry_query_t q;
        api_registry_query_init(&q);
        q.sort_by = sorts[i].by;
        q.sort_order = sorts[i].order;
        const char *got = list_ids(r, 1, &q, now, a, b, sizeof b);
        if (strcmp(got, sorts[i].want))
            fail_msg("sortBy %s %s -> \"%s\", want \"%s\"", sorts[i].by, sorts[i].order, got, sorts[i].want);
    }
    api_registry_free(r);
    strata_arena_free(a);
}

/* Uuid ids compare case-insensitively (RFC 4122) in every by-id entry
 * point, in either direction (the request's or the data's spelling);
 * answers echo the id as stored.  Other ids stay case-sensitive. */
static void test_uuid_ids_any_case(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + MIN;
    const char *lower = WL_A, *upper = "3F1C1A2E-0000-4000-8000-00000000000A";
    const char *stored_up = "3F1C1A2E-0000-4000-8000-0000000000BB",
               *asked_low = "3f1c1a2e-0000-4000-8000-0000000000bb";
    const char *stored_mixed = "3f1C1a2E-0000-4000-8000-0000000000Cc",
               *asked_up = "3F1C1A2E-0000-4000-8000-0000000000CC";
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", lower },
          { "workload_name", "l" });
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", stored_up },
          { "workload_name", "u" });
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", stored_mixed },
          { "workload_name", "m" });
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", "job-a" },
          { "workload_name", "j" });
    RANGE(r, 1, "runai_pod_info", T0, now, 30 * SEC, 1, { "namespace", "ns" }, { "pod", "p0" },
          { "workload_id", lower }, { "node", "n1" });
    struct {
        const char *ask, *stored;
    } cases[] = { { upper, lower }, { lower, lower }, { asked_low, stored_up }, { asked_up, stored_mixed } };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = get_json(r, 1, cases[i].ask, now, a);
        check_str(j, "id", cases[i].stored);
        json_decref(j);
        api_registry_result_t res;
        assert_ok(api_registry_endpoints(r, 1, cases[i].ask, now, a, &res));
        assert_ok(api_registry_elements(r, 1, cases[i].ask, 0, 0, now, a, &res));
        assert_ok(api_registry_elements_count(r, 1, cases[i].ask, now, a, &res));
        assert_int_equal(api_registry_contains(r, 1, cases[i].ask), 1);
        char buf[40];
        assert_ok(api_registry_stored_id(r, 1, cases[i].ask, buf, sizeof buf));
        assert_string_equal(buf, cases[i].stored);
        assert_err(api_registry_stored_id(r, 1, cases[i].ask, buf, 36), STRATA_ENOTFOUND);
    }
    struct pods_seen s = { 0 };
    assert_ok(api_registry_foreach_pod(r, 1, upper, collect_pod, &s));
    assert_int_equal(s.n, 1);
    /* another tenant, an unknown uuid, a non-uuid in another case */
    assert_int_equal(api_registry_contains(r, 2, upper), 0);
    assert_int_equal(api_registry_contains(r, 1, "3F1C1A2E-0000-4000-8000-00000000000F"), 0);
    assert_int_equal(api_registry_contains(r, 1, "3f1c1a2e-0000-4000-8000-000000000000"), 0);
    assert_int_equal(api_registry_contains(r, 1, "job-a"), 1);
    assert_int_equal(api_registry_contains(r, 1, "JOB-A"), 0);
    api_registry_result_t res;
    assert_err(api_registry_get(r, 1, "3F1C1A2E-0000-4000-8000-00000000000", now, a, &res), STRATA_ENOTFOUND);
    api_registry_free(r);
    strata_arena_free(a);
}

/* requestedPods from its five info labels; allocated GPU memory summed over
 * the running pods; container resource series joined by workload_id alone. */
static void test_requested_pods_gpu_memory_workload_resources(void **state)
{
    (void)state;
    api_registry_t *r = reg_new();
    strata_arena_t *a = strata_arena_new(0);
    int64_t now = T0 + 5 * MIN;
    /* A: batch-like, number missing, a bad max */
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_A },
          { "workload_name", "a" }, { "parallelism", "3" }, { "completions", "6" },
          { "requested_pods_max", "2147483648" }, { "requested_pods_min", "0" });
    /* B: nothing that is an integer: the field is left out */
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_B },
          { "workload_name", "b" }, { "requested_pods", "-1" }, { "parallelism", "1.5" },
          { "completions", "" });
    /* C: two running pods and a pending one, GPU memory on each; workload-level container resources */
    RANGE(r, 1, "runai_workload_info", T0, now, 30 * SEC, 1, { "workload_id", WL_C },
          { "workload_name", "c" }, { "requested_pods", "3" }, { "requested_pods_min", "2" },
          { "requested_pods_max", "3" });
    static const char *const pods[] = { "c-0", "c-1", "c-2" };
    static const double mem[] = { 75377410048.0, 150754820096.0, 150754820096.0 };
    for (int i = 0; i < 3; i++) {
        RANGE(r, 1, "runai_pod_info", T0, now, 30 * SEC, 1, { "namespace", "ns" }, { "pod", pods[i] },
              { "workload_id", WL_C });
        RANGE(r, 1, "kube_pod_status_phase", T0, now, 30 * SEC, i < 2 ? 1 : 0, { "namespace", "ns" },
              { "pod", pods[i] }, { "phase", "Running" });
        RANGE(r, 1, "runai_pod_gpu_memory_allocated_bytes", T0, now, 30 * SEC, mem[i], { "namespace", "ns" },
              { "pod", pods[i] });
    }
    /* ignored: no (namespace, pod) */
    RANGE(r, 1, "runai_pod_gpu_memory_allocated_bytes", T0, now, 30 * SEC, 1e9, { "workload_id", WL_C });
    RANGE(r, 1, "kube_pod_container_resource_requests", T0, now, 30 * SEC, 4, { "workload_id", WL_C },
          { "container", "main" }, { "resource", "cpu" });
    RANGE(r, 1, "kube_pod_container_resource_limits", T0, now, 30 * SEC, 8, { "workload_id", WL_C },
          { "container", "main" }, { "resource", "cpu" });
    RANGE(r, 1, "kube_pod_container_resource_requests", T0, now, 30 * SEC, 1073741824.0,
          { "workload_id", WL_C }, { "resource", "memory" });
    /* ignored: neither (namespace, pod) nor workload_id; a resource the API does not show */
    RANGE(r, 1, "kube_pod_container_resource_requests", T0, now, 30 * SEC, 100, { "container", "main" },
          { "resource", "cpu" });
    RANGE(r, 1, "kube_pod_container_resource_requests", T0, now, 30 * SEC, 100, { "workload_id", WL_C },
          { "resource", "ephemeral_storage" });

    json_t *j = get_json(r, 1, WL_A, now, a);
    check_null(j, "requestedPods.number");
    check_int(j, "requestedPods.min", 0);
    check_null(j, "requestedPods.max");
    check_int(j, "requestedPods.parallelism", 3);
    check_int(j, "requestedPods.completions", 6);
    check_null(j, "allocatedResources.gpuMemory");
    check_null(j, "podsRequestedResources");
    json_decref(j);
    j = get_json(r, 1, WL_B, now, a);
    check_absent(j, "requestedPods");
    json_decref(j);
    j = get_json(r, 1, WL_C, now, a);
    check_int(j, "requestedPods.number", 3);
    check_int(j, "requestedPods.min", 2);
    check_int(j, "requestedPods.max", 3);
    check_null(j, "requestedPods.parallelism");
    check_null(j, "requestedPods.completions");
    check_int(j, "runningPods", 2);
    check_str(j, "allocatedResources.gpuMemory", "226132230144");
    check_int(j, "allocatedResources.cpu", 4);
    check_str(j, "allocatedResources.cpuMemory", "1073741824");
    check_int(j, "podsRequestedResources.cpu.request", 4);
    check_int(j, "podsRequestedResources.cpu.limit", 8);
    check_str(j, "podsRequestedResources.cpuMemory.request", "1073741824");
    check_null(j, "podsRequestedResources.cpuMemory.limit");
    check_null(j, "podsRequestedResources.gpu");
    check_null(j, "podsRequestedResources.gpuMemory");
    json_decref(j);

    /* c-1's GPU memory ends (stale marker); then no pod runs: nothing allocated,
     * the workload-level requests still count for the pods */
    ONE(r, 1, "runai_pod_gpu_memory_allocated_bytes", now + 10 * SEC, stale_nan(), { "namespace", "ns" },
        { "pod", "c-1" });
    j = get_json(r, 1, WL_C, now + 10 * SEC, a);
    check_str(j, "allocatedResources.gpuMemory", "75377410048");
    json_decref(j);
    for (int i = 0; i < 2; i++)
        ONE(r, 1, "kube_pod_status_phase", now + 30 * SEC, 0, { "namespace", "ns" }, { "pod", pods[i] },
            { "phase", "Running" });
    j = get_json(r, 1, WL_C, now + 30 * SEC, a);
    check_int(j, "runningPods", 0);
    check_null(j, "allocatedResources.gpuMemory");
    check_null(j, "allocatedResources.cpu");
    check_null(j, "allocatedResources.cpuMemory");
    check_int(j, "podsRequestedResources.cpu.request", 4);
    json_decref(j);
    api_registry_result_t res;
    assert_ok(api_registry_get(r, 1, WL_A, now, a, &res));
    write_fixture("get_requested_pods", &res);
    api_registry_free(r);
    strata_arena_free(a);
}

/* Label names are matched whole: a name that is a prefix or an extension of
 * one the registry reads (or of __name__) is not taken for it. */
static void test_uses_series_exact_names(void **state)
{
    (void)state;
    const tsdb_label_t ok[] = { { "__name__", "runai_workload_info" }, { "workload_id", "w" } };
    const tsdb_label_t shorter[] = { { "__name__", "runai_workload_info" }, { "workload_i", "w" } };
    const tsdb_label_t longer[] = { { "__name__", "runai_workload_info" }, { "workload_idx", "w" } };
    const tsdb_label_t not_name[] = { { "__name_", "runai_workload_info" }, { "workload_id", "w" } };
    const tsdb_label_t gpu[] = { { "__name__", "DCGM_FI_DEV_GPU_UTIL" },
                                 { "namespace", "n" },
                                 { "pod", "p" } };
    const tsdb_label_t gpu_bad[] = { { "__name__", "DCGM_FI_DEV_GPU_UTIL" },
                                     { "namespac", "n" },
                                     { "pod", "p" } };
    assert_int_equal(api_registry_uses_series(ok, 2), 1);
    assert_int_equal(api_registry_uses_series(shorter, 2), 0);
    assert_int_equal(api_registry_uses_series(longer, 2), 0);
    assert_int_equal(api_registry_uses_series(not_name, 2), 0);
    assert_int_equal(api_registry_uses_series(gpu, 3), 1);
    assert_int_equal(api_registry_uses_series(gpu_bad, 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phase_lifecycle),
        cmocka_unit_test(test_uses_series_exact_names),
        cmocka_unit_test(test_phase_runs_fold),
        cmocka_unit_test(test_deleted_by_stale_marker),
        cmocka_unit_test(test_deleted_by_staleness),
        cmocka_unit_test(test_running_pods),
        cmocka_unit_test(test_foreach_pod),
        cmocka_unit_test(test_handles_match_slow_path),
        cmocka_unit_test(test_idle_gpus),
        cmocka_unit_test(test_idle_fraction_and_number_format),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_sort),
        cmocka_unit_test(test_pagination_search_deleted),
        cmocka_unit_test(test_tenant_isolation),
        cmocka_unit_test(test_render_workload),
        cmocka_unit_test(test_minimal_workload_renders_required_fields),
        cmocka_unit_test(test_pending_status_fields),
        cmocka_unit_test(test_element_bad_levels),
        cmocka_unit_test(test_holding_and_ignored_input),
        cmocka_unit_test(test_foreach_summary),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_gc),
        cmocka_unit_test(test_replay_from_store),
        cmocka_unit_test(test_absent_optional_strings_are_null),
        cmocka_unit_test(test_uuid_ids_any_case),
        cmocka_unit_test(test_requested_pods_gpu_memory_workload_resources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
