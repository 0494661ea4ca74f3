/*
 * routes_workloads.c: query parameters -> api_registry calls -> JSON replies
 * for the Run:ai workloads endpoints.
 *
 * Parameter rules (docs/api.md, "Routes"): unknown parameters are ignored;
 * an invalid value of a known one is a 400 naming it.  filterBy is
 * comma-separated (the spec's explode=false), and repeated filterBy
 * parameters are accepted too.
 */
#include "routes_workloads.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int answer(api_call_t *c, int rc, const api_registry_result_t *res)
{
    if (rc == 0) return api_call_reply(c, 200, "application/json", res->json, res->len);
    if (rc == STRATA_EINVAL)
        return api_call_reply_strata_error(c, rc, res->error ? res->error : "invalid parameter", "");
    if (rc == STRATA_ENOTFOUND)
        return api_call_reply_strata_error(c, rc, "workload not found", api_call_segment(c, 0));
    return api_call_reply_strata_error(c, rc, NULL, "");
}

/* Fills q from the request; answers the 400 itself and returns 0 when a
 * parameter is bad. */
static int parse_query(api_call_t *c, api_registry_query_t *q)
{
    api_registry_query_init(q);
    api_list_params_t lp;
    if (!api_call_list_params(c, API_REGISTRY_MAX_FILTERS, API_REGISTRY_MAX_LIMIT, &lp)) return 0;
    q->filter_by = lp.filter_by;
    q->nfilter = lp.nfilter;
    q->sort_by = lp.sort_by;
    q->sort_order = lp.sort_order;
    q->search = lp.search;
    q->offset = lp.offset;
    q->limit = lp.limit;
    const char *d = api_call_param(c, "deleted");
    if (d && *d) {
        if (!strcmp(d, "true"))
            q->deleted = 1;
        else if (!strcmp(d, "false"))
            q->deleted = 0;
        else {
            api_call_reply_bad_param(c, "deleted", "want true or false");
            return 0;
        }
    }
    return 1;
}

static int h_list(api_call_t *c, void *reg)
{
    api_registry_query_t q;
    if (!parse_query(c, &q)) return 0;
    api_registry_result_t res = { 0 };
    int rc = api_registry_list(reg, api_call_principal(c)->tenant_id, &q, api_call_now_ms(c),
                               api_call_arena(c), &res);
    return answer(c, rc, &res);
}

static int h_count(api_call_t *c, void *reg)
{
    api_registry_query_t q;
    if (!parse_query(c, &q)) return 0;
    api_registry_result_t res = { 0 };
    int rc = api_registry_count(reg, api_call_principal(c)->tenant_id, &q, api_call_now_ms(c),
                                api_call_arena(c), &res);
    return answer(c, rc, &res);
}

static int h_get(api_call_t *c, void *reg)
{
    api_registry_result_t res = { 0 };
    int rc = api_registry_get(reg, api_call_principal(c)->tenant_id, api_call_segment(c, 0),
                              api_call_now_ms(c), api_call_arena(c), &res);
    return answer(c, rc, &res);
}

static int h_endpoints(api_call_t *c, void *reg)
{
    api_registry_result_t res = { 0 };
    int rc = api_registry_endpoints(reg, api_call_principal(c)->tenant_id, api_call_segment(c, 0),
                                    api_call_now_ms(c), api_call_arena(c), &res);
    return answer(c, rc, &res);
}

static int h_elements(api_call_t *c, void *reg)
{
    int64_t offset = 0, limit = 0;
    int r = api_call_int_param(c, "offset", &offset);
    if (r < 0 || offset < 0) return api_call_reply_bad_param(c, "offset", "want an integer >= 0");
    r = api_call_int_param(c, "limit", &limit);
    if (r < 0 || (r == 1 && (limit < 1 || limit > API_REGISTRY_MAX_LIMIT)))
        return api_call_reply_bad_param(c, "limit", "want an integer 1..500");
    api_registry_result_t res = { 0 };
    int rc = api_registry_elements(reg, api_call_principal(c)->tenant_id, api_call_segment(c, 0), offset,
                                   limit, api_call_now_ms(c), api_call_arena(c), &res);
    return answer(c, rc, &res);
}

static int h_elements_count(api_call_t *c, void *reg)
{
    api_registry_result_t res = { 0 };
    int rc = api_registry_elements_count(reg, api_call_principal(c)->tenant_id, api_call_segment(c, 0),
                                         api_call_now_ms(c), api_call_arena(c), &res);
    return answer(c, rc, &res);
}

size_t api_workloads_routes(api_registry_t *reg, api_route_t *out, size_t cap)
{
    /* /count before /{} so "count" is not taken for an id */
    const api_route_t r[API_WORKLOADS_NROUTES] = {
        { "GET", "/api/v1/workloads", API_SCOPE_METRICS_READ, h_list, reg, 0 },
        { "GET", "/api/v1/workloads/count", API_SCOPE_METRICS_READ, h_count, reg, 0 },
        { "GET", "/api/v1/workloads/{}", API_SCOPE_METRICS_READ, h_get, reg, 0 },
        { "GET", "/api/v1/workloads/{}/endpoints", API_SCOPE_METRICS_READ, h_endpoints, reg, 0 },
        { "GET", "/api/v1/workloads/{}/elements", API_SCOPE_METRICS_READ, h_elements, reg, 0 },
        { "GET", "/api/v1/workloads/{}/elements/count", API_SCOPE_METRICS_READ, h_elements_count, reg, 0 },
    };
    size_t n = cap < API_WORKLOADS_NROUTES ? cap : API_WORKLOADS_NROUTES;
    memcpy(out, r, n * sizeof *r);
    return n;
}
