/*
 * fuzz_query_params.c: libFuzzer target for the list/query parameter parsing
 * of the HTTP API: GET /workloads, /count (api/workloads/registry_query.c),
 * GET /workloads/{id}/metrics (api_metrics_parse), GET /workloads/telemetry
 * (api_telemetry_parse + compute) and GET /org-unit/reports and /count
 * (api/reports/list.c).
 *
 * The input is a query string: pairs split on '&', name and value on the
 * first '=' (no percent-decoding: the fuzzer sends the decoded bytes
 * directly).  Every consumer gets the same pairs and picks its own names,
 * exactly as the handlers in api/http_*.c do (filterBy split on ',', at most
 * 10 terms; offset/limit with strtoll, limit 1..500).  The registry and the
 * report store hold a few workloads and reports (built once), so filters,
 * sorting and paging run on real rows.
 *
 * What must hold: every answer is 0 or STRATA_EINVAL (with a message); a 0
 * answer is valid JSON (CSV for telemetry) of the documented shape: a page
 * of at most `limit` items, "next" = offset + items exactly when more
 * remain, list total = the count endpoint's count; a parsed metrics request
 * has 1..10 unique known types, start < end equal to the RFC 3339 values
 * sent and at most --max-range (30 d here) apart, and numberOfSamples the
 * integer sent, in 0..1000 (20 when absent).
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "metrics_query.h"
#include "registry.h"
#include "reports.h"
#include "strata_log.h"
#include "strata_time.h"
#include "telemetry.h"

#define SEC       INT64_C(1000)
#define T0        INT64_C(1734705000000) /* 2024-12-20T14:30:00Z */
#define NOW       (T0 + 600 * SEC)
#define TENANT    1
#define MAX_PAIRS 64

static api_registry_t *g_reg;
static api_reports_t *g_reports;
static char g_dir[64];

/* ---- fixture --------------------------------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

/* One series as ingest hands it over: labels sorted, one sample every 30 s. */
static void feed(const char *metric, const char *const *kv, size_t nkv, int64_t from, int64_t to, double v)
{
    tsdb_label_t l[16];
    size_t n = 0;
    l[n++] = (tsdb_label_t){ "__name__", metric };
    for (size_t i = 0; i + 1 < nkv; i += 2) l[n++] = (tsdb_label_t){ kv[i], kv[i + 1] };
    qsort(l, n, sizeof *l, label_cmp);
    tsdb_sample_t s[64];
    size_t ns = 0;
    for (int64_t t = from; t <= to && ns < 64; t += 30 * SEC) s[ns++] = (tsdb_sample_t){ t, v };
    if (api_registry_observe(g_reg, TENANT, l, n, s, ns)) abort();
}

static void add_workload(const char *id, const char *name, const char *project, const char *dept,
                         const char *type, const char *phase, double gpus, int64_t until)
{
    const char *info[] = {
        "workload_id",       id,        "workload_name", name,
        "project_name",      project,   "project_id",    "p-1",
        "department_name",   dept,      "department_id", "d-1",
        "workload_type",     type,      "cluster_id",    "7b2f4c1d-1111-4222-8333-444455556666",
        "current_nodepools", "default", "submitted_by",  "alice"
    };
    feed("runai_workload_info", info, sizeof info / sizeof *info, T0, until, 1);
    const char *ph[] = { "workload_id", id, "phase", phase };
    feed("runai_workload_phase", ph, 4, T0, until, 1);
    const char *al[] = { "workload_id", id };
    feed("runai_workload_gpu_allocation", al, 2, T0, until, gpus);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void teardown(void)
{
    api_reports_close(g_reports);
    api_registry_free(g_reg);
    nftw(g_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return NOW;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    strata_log_set_level(STRATA_LOG_ERROR);
    if (api_registry_new(NULL, &g_reg)) abort();
    add_workload("3f1c1a2e-0000-4000-8000-00000000000a", "train-a", "vision", "research", "Training",
                 "Running", 2, NOW);
    add_workload("3f1c1a2e-0000-4000-8000-00000000000b", "infer-b", "nlp", "research", "Inference", "Pending",
                 0.5, NOW);
    add_workload("3f1c1a2e-0000-4000-8000-00000000000c", "old-c", "vision", "ops", "Workspace", "Running", 1,
                 T0 + 60 * SEC); /* ends: deleted at NOW */

    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz_query_params.XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    api_reports_options_t o;
    api_reports_options_init(&o);
    o.workers = 0;
    o.now_ms = fixed_now;
    if (api_reports_open(g_dir, &o, &g_reports)) abort();
    static const char *const bodies[] = {
        "{\"name\":\"daily\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}",
        "{\"name\":\"by project\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-08T00:00:00Z\","
        "\"groupBy\":\"Project\",\"filterBy\":[\"projectName==vision\"]}",
        "{\"name\":\"Zeta\",\"start\":\"2024-11-01T00:00:00+02:00\",\"end\":\"2024-12-01T00:00:00Z\","
        "\"groupBy\":\"Cluster\"}",
    };
    strata_arena_t *a = strata_arena_new(0);
    for (size_t i = 0; i < 3; i++) {
        api_reports_result_t r;
        if (api_reports_create(g_reports, TENANT, "alice", bodies[i], strlen(bodies[i]), a, &r)) abort();
    }
    strata_arena_free(a);
    atexit(teardown);
    return 0;
}

/* ---- the query string ------------------------------------------------------ */

typedef struct pair {
    const char *name, *value;
} pair_t;

static size_t npairs;
static pair_t pairs[MAX_PAIRS];

static const char *param(const char *name)
{
    for (size_t i = 0; i < npairs; i++)
        if (!strcmp(pairs[i].name, name)) return pairs[i].value;
    return NULL;
}

static size_t params(const char *name, const char **vals)
{
    size_t n = 0;
    for (size_t i = 0; i < npairs; i++)
        if (!strcmp(pairs[i].name, name)) vals[n++] = pairs[i].value;
    return n;
}

/* As the handlers: 1 present and parsed, 0 absent or empty, -1 bad. */
static int int_param(const char *name, int64_t *out)
{
    const char *v = param(name);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v) return -1;
    *out = x;
    return 1;
}

/* filterBy values split on ',' into terms (strings in arena); -1 over 10. */
static int split_filters(strata_arena_t *a, const char **terms, size_t max, size_t *nt)
{
    const char *vals[MAX_PAIRS];
    size_t nv = params("filterBy", vals);
    *nt = 0;
    for (size_t i = 0; i < nv; i++) {
        char *copy = strata_arena_strdup(a, vals[i]);
        if (!copy) abort();
        for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (*nt == max) return -1;
            terms[(*nt)++] = t;
        }
    }
    return 0;
}

/* Common paging/paging checks of a list answer against its count answer. */
static void check_page(const char *json, size_t len, const char *key, int64_t total, int64_t count,
                       int64_t offset, int64_t limit)
{
    if (strlen(json) != len) abort();
    json_error_t e;
    json_t *j = json_loadb(json, len, 0, &e);
    if (!j) abort();
    json_t *arr = json_object_get(j, key);
    if (!json_is_array(arr)) abort();
    int64_t got = (int64_t)json_array_size(arr);
    if (total != count || total < 0) abort();
    if (got > limit) abort();
    int64_t expect = offset >= total ? 0 : (total - offset < limit ? total - offset : limit);
    if (got != expect) abort();
    json_t *next = json_object_get(j, "next");
    if ((next != NULL) != (offset + got < total)) abort();
    if (next && (!json_is_integer(next) || json_integer_value(next) != offset + got)) abort();
    json_decref(j);
}

static int64_t count_of(const char *json, size_t len)
{
    json_error_t e;
    json_t *j = json_loadb(json, len, 0, &e);
    if (!j) abort();
    json_t *c = json_object_get(j, "count");
    if (!json_is_integer(c)) abort();
    int64_t n = json_integer_value(c);
    json_decref(j);
    return n;
}

/* ---- the consumers ----------------------------------------------------------- */

static void workloads(strata_arena_t *a)
{
    api_registry_query_t q;
    api_registry_query_init(&q);
    const char *terms[API_REGISTRY_MAX_FILTERS];
    size_t nt;
    if (split_filters(a, terms, API_REGISTRY_MAX_FILTERS, &nt)) return; /* 400 in the handler */
    q.filter_by = terms;
    q.nfilter = nt;
    q.sort_by = param("sortBy");
    q.sort_order = param("sortOrder");
    q.search = param("search");
    int r = int_param("offset", &q.offset);
    if (r < 0 || q.offset < 0) return;
    r = int_param("limit", &q.limit);
    if (r < 0 || (r == 1 && (q.limit < 1 || q.limit > API_REGISTRY_MAX_LIMIT))) return;
    const char *d = param("deleted");
    if (d && *d) {
        if (!strcmp(d, "true"))
            q.deleted = 1;
        else if (strcmp(d, "false"))
            return;
    }
    api_registry_result_t lr, cr;
    int rl = api_registry_list(g_reg, TENANT, &q, NOW, a, &lr);
    int rc = api_registry_count(g_reg, TENANT, &q, NOW, a, &cr);
    if (rl == STRATA_EINVAL) {
        if (!lr.error || !*lr.error) abort();
        /* count ignores sort and paging; it may still accept the rest */
        if (rc && (rc != STRATA_EINVAL || !cr.error)) abort();
        return;
    }
    if (rl || rc) abort();
    int64_t limit = q.limit ? q.limit : API_REGISTRY_DEFAULT_LIMIT;
    check_page(lr.json, lr.len, "workloads", lr.total, count_of(cr.json, cr.len), q.offset, limit);
    if (lr.total > 3) abort(); /* the fixture has 3 workloads in all */
}

static void reports(strata_arena_t *a)
{
    api_reports_query_t q;
    api_reports_query_init(&q);
    const char *terms[API_REPORTS_MAX_FILTERS];
    size_t nt;
    if (split_filters(a, terms, API_REPORTS_MAX_FILTERS, &nt)) return;
    q.filter_by = terms;
    q.nfilter = nt;
    q.sort_by = param("sortBy");
    q.sort_order = param("sortOrder");
    q.search = param("search");
    int r = int_param("offset", &q.offset);
    if (r < 0 || q.offset < 0) return;
    r = int_param("limit", &q.limit);
    if (r < 0 || (r == 1 && (q.limit < 1 || q.limit > API_REPORTS_MAX_LIMIT))) return;
    api_reports_result_t lr, cr;
    int rl = api_reports_list(g_reports, TENANT, &q, a, &lr);
    int rc = api_reports_count(g_reports, TENANT, &q, a, &cr);
    if (rl == STRATA_EINVAL) {
        if (!lr.error || !*lr.error) abort();
        if (rc && (rc != STRATA_EINVAL || !cr.error)) abort();
        return;
    }
    if (rl || rc) abort();
    int64_t limit = q.limit ? q.limit : API_REPORTS_DEFAULT_LIMIT;
    check_page(lr.json, lr.len, "reports", lr.total, count_of(cr.json, cr.len), q.offset, limit);
    if (lr.total > 3) abort();
}

static void metrics(void)
{
    const char *types[MAX_PAIRS];
    size_t nt = params("metricType", types);
    const char *start = param("start"), *end = param("end"), *ns = param("numberOfSamples");
    api_metrics_request_t req;
    char err[256] = "";
    api_metrics_options_t opts;
    api_metrics_options_init(&opts);
    opts.max_range_ms = INT64_C(30) * 86400 * SEC;
    int rc = api_metrics_parse(types, nt, start, end, ns, &opts, &req, err, sizeof err);
    if (rc) {
        if (rc != STRATA_EINVAL || !err[0]) abort();
        return;
    }
    if (req.ntypes < 1 || req.ntypes > API_METRICS_MAX_TYPES) abort();
    size_t items = 0;
    for (size_t i = 0; i < nt; i++) {
        items++;
        for (const char *p = types[i]; *p; p++) items += *p == ',';
    }
    if (items > API_METRICS_MAX_TYPES) abort();
    for (size_t i = 0; i < req.ntypes; i++) {
        if ((unsigned)req.types[i] >= API_METRIC_COUNT) abort();
        for (size_t k = 0; k < i; k++)
            if (req.types[k] == req.types[i]) abort();
        /* each type was sent by its exact name */
        const char *name = api_metrics_type_name(req.types[i]);
        size_t l = strlen(name);
        int seen = 0;
        for (size_t v = 0; v < nt && !seen; v++)
            for (const char *p = types[v]; p && !seen; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
                seen = !strncmp(p, name, l) && (p[l] == ',' || p[l] == '\0');
        if (!seen) abort();
    }
    int64_t s, e;
    if (!start || !end || strata_time_parse_rfc3339(start, &s) || strata_time_parse_rfc3339(end, &e)) abort();
    if (s != req.start_ms || e != req.end_ms || s >= e) abort();
    if (req.samples > API_METRICS_MAX_SAMPLES) abort();
    if (!ns && req.samples != API_METRICS_DEFAULT_SAMPLES) abort();
    if (e - s > opts.max_range_ms) abort();
    if (ns) {
        /* an optionally signed decimal integer, "-0" being the only negative */
        const char *p = ns + (*ns == '+' || *ns == '-');
        char *stop;
        errno = 0;
        unsigned long long v = strtoull(p, &stop, 10);
        if (!*p || *p < '0' || *p > '9' || *stop || errno || v != req.samples) abort();
        if (*ns == '-' && v) abort();
    }
}

static void telemetry(strata_arena_t *a)
{
    api_telemetry_param_t tp[MAX_PAIRS];
    size_t n = 0;
    /* the handler passes only the endpoint's names, grouped by name */
    for (const char *const *name = api_telemetry_param_names; *name; name++)
        for (size_t i = 0; i < npairs; i++)
            if (!strcmp(pairs[i].name, *name)) tp[n++] = (api_telemetry_param_t){ *name, pairs[i].value };
    api_telemetry_request_t *req;
    char err[256] = "";
    int rc = api_telemetry_parse(tp, n, a, &req, err, sizeof err);
    if (rc) {
        if (rc != STRATA_EINVAL || !err[0]) abort();
        return;
    }
    char *body;
    size_t len;
    rc = api_telemetry_compute(g_reg, TENANT, req, NOW, API_TELEMETRY_JSON, a, &body, &len);
    if (rc == STRATA_ENOTFOUND) return; /* a clusterId no workload carried: the 404 */
    if (rc) abort();
    json_error_t e;
    json_t *j = json_loadb(body, len, 0, &e);
    if (!j || strlen(body) != len || !json_is_object(j)) abort();
    json_decref(j);
    if (api_telemetry_compute(g_reg, TENANT, req, NOW, API_TELEMETRY_CSV, a, &body, &len)) abort();
    if (strlen(body) != len || len == 0 || body[len - 1] != '\n') abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    npairs = 0;
    for (char *save = NULL, *t = strtok_r(s, "&", &save); t && npairs < MAX_PAIRS;
         t = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(t, '=');
        if (eq) *eq++ = '\0';
        pairs[npairs++] = (pair_t){ t, eq ? eq : "" };
    }
    strata_arena_t *a = strata_arena_new(0);
    if (!a) abort();
    strata_arena_set_cap(a, 64u << 20);
    workloads(a);
    reports(a);
    metrics();
    telemetry(a);
    strata_arena_free(a);
    free(s);
    return 0;
}
