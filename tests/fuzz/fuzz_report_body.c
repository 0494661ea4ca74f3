/*
 * fuzz_report_body.c: libFuzzer target for POST /org-unit/reports body
 * validation (api_reports_create in api/reports/reports.c, api/reports/validate.c).
 *
 * The input is the request body.  A store opened once in a temp directory
 * (no workers) takes it; every report created is checked, fetched back and
 * deleted again, so the store stays at its one fixture report, "taken",
 * which makes every valid body with that name a conflict.
 *
 * What must hold: the answer is 0, STRATA_EINVAL or STRATA_ECONFLICT (the
 * last two with a message), and it agrees with an independent reading of
 * ReportRequestFields done here with jansson: an object; name a non-empty
 * string without NUL of at most 256 bytes; start and end RFC 3339 strings
 * with start < end, start not before the Unix epoch, end at most 10 minutes
 * past the store's (fixed) now;
 * groupBy absent, null or one of Nodepool, Project, Department, Cluster;
 * filterBy absent or an array of strings matching
 * ^(projectName|departmentName|clusterId)(==).+$ ('.' not a line
 * terminator).  A created Report echoes name, groupBy and filterBy, has
 * status Pending, start/end as the instants sent, and api_reports_get
 * returns the same JSON.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "reports.h"
#include "strata_err.h"
#include "strata_log.h"
#include "strata_time.h"

#define TENANT 7
#define NOW    INT64_C(1734705000000)

static api_reports_t *g_st;
static char g_dir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb;
    (void)flag;
    (void)f;
    return remove(p);
}

static void teardown(void)
{
    api_reports_close(g_st);
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
    snprintf(g_dir, sizeof g_dir, "/tmp/fuzz_report_body.XXXXXX");
    if (!mkdtemp(g_dir)) abort();
    api_reports_options_t o;
    api_reports_options_init(&o);
    o.workers = 0;
    o.now_ms = fixed_now;
    if (api_reports_open(g_dir, &o, &g_st)) abort();
    static const char body[] =
        "{\"name\":\"taken\",\"start\":\"2024-12-01T00:00:00Z\",\"end\":\"2024-12-02T00:00:00Z\"}";
    strata_arena_t *a = strata_arena_new(0);
    api_reports_result_t r;
    if (api_reports_create(g_st, TENANT, "fuzz", body, strlen(body), a, &r)) abort();
    strata_arena_free(a);
    atexit(teardown);
    return 0;
}

static int term_ok(const char *s)
{
    static const char *const fields[] = { "projectName==", "departmentName==", "clusterId==" };
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(fields[i]);
        if (strncmp(s, fields[i], n)) continue;
        const unsigned char *v = (const unsigned char *)s + n;
        if (!*v) return 0;
        for (; *v; v++)
            if (*v == '\n' || *v == '\r' || (v[0] == 0xe2 && v[1] == 0x80 && (v[2] == 0xa8 || v[2] == 0xa9)))
                return 0;
        return 1;
    }
    return 0;
}

static int str_ok(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/* The reference reading: 1 valid, 0 not; start/end filled when valid. */
static int ref_valid(const json_t *j, int64_t *start, int64_t *end)
{
    if (!json_is_object(j)) return 0;
    const json_t *name = json_object_get(j, "name");
    if (!str_ok(name) || json_string_length(name) == 0 ||
        json_string_length(name) > API_REPORTS_MAX_NAME_BYTES)
        return 0;
    const json_t *s = json_object_get(j, "start"), *e = json_object_get(j, "end");
    if (!json_is_string(s) || !json_is_string(e) || strata_time_parse_rfc3339(json_string_value(s), start) ||
        strata_time_parse_rfc3339(json_string_value(e), end) || *start >= *end)
        return 0;
    /* the data that can exist: the store keeps data forever here (no
     * data_retention_ms), so from the Unix epoch to now + the allowance */
    if (*start < 0 || *end > NOW + API_REPORTS_MAX_FUTURE_MS) return 0;
    const json_t *g = json_object_get(j, "groupBy");
    if (g && !json_is_null(g)) {
        static const char *const groups[] = { "Nodepool", "Project", "Department", "Cluster" };
        int hit = 0;
        for (int i = 0; i < 4 && json_is_string(g); i++) hit |= !strcmp(json_string_value(g), groups[i]);
        if (!hit) return 0;
    }
    const json_t *fb = json_object_get(j, "filterBy");
    if (fb && !json_is_array(fb)) return 0;
    for (size_t i = 0; fb && i < json_array_size(fb); i++) {
        const json_t *t = json_array_get(fb, i);
        if (!str_ok(t) || !term_ok(json_string_value(t))) return 0;
    }
    return 1;
}

/* A Report's start/end: the RFC 3339 UTC form of the instant sent. */
static void check_time(const json_t *rep, const char *key, int64_t ms)
{
    const json_t *v = json_object_get(rep, key);
    int64_t back;
    if (!json_is_string(v) || strata_time_parse_rfc3339(json_string_value(v), &back) || back != ms) abort();
}

static void check_created(const json_t *req, const api_reports_result_t *res, int64_t start, int64_t end,
                          strata_arena_t *a)
{
    json_error_t e;
    json_t *rep = json_loadb(res->json, res->len, 0, &e);
    if (!rep || strlen(res->json) != res->len) abort();
    if (!json_equal(json_object_get(rep, "name"), json_object_get(req, "name"))) abort();
    const json_t *g = json_object_get(req, "groupBy");
    if (!json_equal(json_object_get(rep, "groupBy"), g && !json_is_null(g) ? g : json_null())) abort();
    const json_t *fb = json_object_get(req, "filterBy");
    json_t *empty = json_array();
    if (!json_equal(json_object_get(rep, "filterBy"), fb ? fb : empty)) abort();
    json_decref(empty);
    if (strcmp(json_string_value(json_object_get(rep, "status")), "Pending")) abort();
    check_time(rep, "start", start);
    check_time(rep, "end", end);
    const char *id = json_string_value(json_object_get(rep, "id"));
    if (!id) abort();
    api_reports_result_t got;
    if (api_reports_get(g_st, TENANT, id, a, &got) || got.len != res->len ||
        memcmp(got.json, res->json, res->len))
        abort();
    if (api_reports_delete(g_st, TENANT, id)) abort();
    if (api_reports_get(g_st, TENANT, id, a, &got) != STRATA_ENOTFOUND) abort();
    json_decref(rep);
}

/* A start or end whose UTC instant falls outside years 0000..9999 (e.g.
 * "0000-01-01T00:00:00+01:00") is refused by api_reports_create with a 400;
 * out_of_range() lets this target's own reading of the body expect that. */
static int out_of_range(const json_t *j)
{
    static const char *const keys[] = { "start", "end" };
    for (int i = 0; i < 2; i++) {
        const json_t *v = json_object_get(j, keys[i]);
        int64_t ms;
        if (json_is_string(v) && strata_time_parse_rfc3339(json_string_value(v), &ms) == 0 &&
            (ms < INT64_C(-62167219200000) || ms > INT64_C(253402300799999)))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192) return 0;
    strata_arena_t *a = strata_arena_new(0);
    if (!a) abort();
    strata_arena_set_cap(a, 64u << 20);
    api_reports_result_t res;
    int rc = api_reports_create(g_st, TENANT, "fuzz", (const char *)data, size, a, &res);

    json_error_t e;
    json_t *req = json_loadb((const char *)data, size, 0, &e);
    int64_t start = 0, end = 0;
    int valid = req && ref_valid(req, &start, &end) && !out_of_range(req);
    int taken = valid && !strcmp(json_string_value(json_object_get(req, "name")), "taken");

    if (rc == STRATA_EINVAL || rc == STRATA_ECONFLICT) {
        if (!res.error || !*res.error) abort();
    }
    if (rc == 0) {
        if (!valid || taken) abort();
        check_created(req, &res, start, end, a);
    } else if (rc == STRATA_ECONFLICT) {
        if (!taken) abort();
    } else if (rc == STRATA_EINVAL) {
        if (valid) abort();
    } else {
        abort();
    }
    json_decref(req);
    strata_arena_free(a);
    return 0;
}
