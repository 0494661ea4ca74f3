/*
 * routes_reports.c: query parameters and bodies -> api_reports calls -> replies
 * for the Run:ai reports endpoints (docs/reports.md, "What the HTTP handlers
 * call").  Report files are streamed from the descriptor the store opens, so
 * a large CSV never sits in memory.
 */
#include "routes_reports.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int answer(api_call_t *c, int rc, const api_reports_result_t *res, int ok_status)
{
    switch (rc) {
    case 0: return api_call_reply(c, ok_status, "application/json", res->json, res->len);
    case STRATA_EINVAL:
        return api_call_reply_strata_error(c, rc, res->error ? res->error : "invalid request", "");
    case STRATA_ECONFLICT:
        if (res->retry_after_s > 0) {
            char v[24];
            snprintf(v, sizeof v, "%d", res->retry_after_s);
            api_call_add_header(c, "Retry-After", v);
        }
        return api_call_reply_strata_error(c, rc, res->error ? res->error : "conflict", "");
    case STRATA_ENOTFOUND:
        return api_call_reply_strata_error(c, rc, "report not found", api_call_segment(c, 0));
    default: return api_call_reply_strata_error(c, rc, NULL, res->error ? res->error : "");
    }
}

static int parse_query(api_call_t *c, api_reports_query_t *q)
{
    api_reports_query_init(q);
    api_list_params_t lp;
    if (!api_call_list_params(c, API_REPORTS_MAX_FILTERS, API_REPORTS_MAX_LIMIT, &lp)) return 0;
    q->filter_by = lp.filter_by;
    q->nfilter = lp.nfilter;
    q->sort_by = lp.sort_by;
    q->sort_order = lp.sort_order;
    q->search = lp.search;
    q->offset = lp.offset;
    q->limit = lp.limit;
    return 1;
}

static int h_create(api_call_t *c, void *ctx)
{
    api_reports_ref_t *ref = ctx;
    size_t len;
    const char *body = api_call_body(c, &len);
    const api_principal_t *who = api_call_principal(c);
    api_reports_result_t res = { 0 };
    int rc = api_reports_create(ref->st, who->tenant_id, who->sub, body, len, api_call_arena(c), &res);
    return answer(c, rc, &res, 202);
}

static int h_list(api_call_t *c, void *ctx)
{
    api_reports_ref_t *ref = ctx;
    api_reports_query_t q;
    if (!parse_query(c, &q)) return 0;
    api_reports_result_t res = { 0 };
    int rc = api_reports_list(ref->st, api_call_principal(c)->tenant_id, &q, api_call_arena(c), &res);
    return answer(c, rc, &res, 200);
}

static int h_count(api_call_t *c, void *ctx)
{
    api_reports_ref_t *ref = ctx;
    api_reports_query_t q;
    if (!parse_query(c, &q)) return 0;
    api_reports_result_t res = { 0 };
    int rc = api_reports_count(ref->st, api_call_principal(c)->tenant_id, &q, api_call_arena(c), &res);
    return answer(c, rc, &res, 200);
}

static int h_get(api_call_t *c, void *ctx)
{
    api_reports_ref_t *ref = ctx;
    api_reports_result_t res = { 0 };
    int rc = api_reports_get(ref->st, api_call_principal(c)->tenant_id, api_call_segment(c, 0),
                             api_call_arena(c), &res);
    return answer(c, rc, &res, 200);
}

static int h_delete(api_call_t *c, void *ctx)
{
    api_reports_ref_t *ref = ctx;
    int rc = api_reports_delete(ref->st, api_call_principal(c)->tenant_id, api_call_segment(c, 0));
    if (rc == 0) return api_call_reply(c, 204, NULL, "", 0);
    api_reports_result_t res = { 0 };
    return answer(c, rc, &res, 204);
}

/* JSON when Accept names application/json and does not name text/csv
 * before it; else the CSV (no Accept, text/csv, or anything else). */
static int wants_json(const char *accept)
{
    if (!accept) return 0;
    const char *json = strcasestr(accept, "application/json");
    const char *csv = strcasestr(accept, "text/csv");
    return json && (!csv || json < csv);
}

static ssize_t json_next(void *ctx, char *buf, size_t max)
{
    return api_reports_file_json_read(ctx, buf, max);
}

static void json_free(void *ctx) { api_reports_file_json_free(ctx); }

static int h_file(api_call_t *c, void *ctx)
{
    api_reports_ref_t *ref = ctx;
    api_reports_result_t res = { 0 };
    api_reports_file_t f = { .fd = -1 };
    int rc = api_reports_open_file(ref->st, api_call_principal(c)->tenant_id, api_call_segment(c, 0),
                                   api_call_arena(c), &f, &res);
    if (rc) return answer(c, rc, &res, 200);
    if (wants_json(api_call_header(c, "Accept"))) {
        api_reports_file_json_t *j;
        if ((rc = api_reports_file_json_new(f.fd, f.as_of_ms, &j))) return answer(c, rc, &res, 200);
        rc = api_call_reply_stream(c, 200, "application/json", json_next, j, json_free);
        return rc == STRATA_ENOMEM ? answer(c, rc, &res, 200) : rc;
    }
    if (f.content_disposition) api_call_add_header(c, "Content-Disposition", f.content_disposition);
    return api_call_reply_fd(c, 200, "text/csv; charset=utf-8", f.fd, (uint64_t)f.size);
}

/* Reading reports (list, count, one, its file) is allowed to metrics:read and
 * to reports:write: whoever may create a report may poll and download it. */
#define REPORTS_READ (API_SCOPE_METRICS_READ | API_SCOPE_REPORTS_WRITE)

size_t api_reports_routes(api_reports_ref_t *ref, api_route_t *out, size_t cap)
{
    /* /count before /{} so "count" is not taken for an id */
    const api_route_t r[API_REPORTS_NROUTES] = {
        { "POST", "/api/v1/org-unit/reports", API_SCOPE_REPORTS_WRITE, h_create, ref, 0 },
        { "GET", "/api/v1/org-unit/reports", REPORTS_READ, h_list, ref, 0 },
        { "GET", "/api/v1/org-unit/reports/count", REPORTS_READ, h_count, ref, 0 },
        { "GET", "/api/v1/org-unit/reports/{}", REPORTS_READ, h_get, ref, 0 },
        { "DELETE", "/api/v1/org-unit/reports/{}", API_SCOPE_REPORTS_WRITE, h_delete, ref, 0 },
        { "GET", "/api/v1/org-unit/reports/{}/file", REPORTS_READ, h_file, ref, 0 },
    };
    size_t n = cap < API_REPORTS_NROUTES ? cap : API_REPORTS_NROUTES;
    memcpy(out, r, n * sizeof *r);
    return n;
}
