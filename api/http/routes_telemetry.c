/*
 * routes_telemetry.c: the HTTP side of workloads telemetry: every value of the
 * parameters telemetry reads goes to api_telemetry_parse (400 naming the
 * parameter), then api_telemetry_compute renders JSON, or CSV when Accept
 * asks for text/csv (Content-Type text/csv; charset=utf-8); 404 for a
 * clusterId no workload of the tenant ever carried.
 */
#include "routes_telemetry.h"

#include <string.h>

#include "telemetry.h"

/* The clusterId as sent, for the 404's details. */
static const char *req_cluster(const api_telemetry_param_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(p[i].name, "clusterId") && p[i].value[0]) return p[i].value;
    return "";
}

static int h_telemetry(api_call_t *c, void *reg)
{
    strata_arena_t *a = api_call_arena(c);
    size_t n = 0, cap = 16;
    api_telemetry_param_t *params = strata_arena_alloc(a, cap * sizeof *params);
    if (!params) return STRATA_ENOMEM;
    for (const char *const *name = api_telemetry_param_names; *name; name++) {
        const char **vals;
        size_t nv = api_call_params(c, *name, &vals);
        for (size_t i = 0; i < nv; i++) {
            if (n == cap) {
                api_telemetry_param_t *np = strata_arena_alloc(a, cap * 2 * sizeof *np);
                if (!np) return STRATA_ENOMEM;
                memcpy(np, params, n * sizeof *np);
                params = np;
                cap *= 2;
            }
            params[n++] = (api_telemetry_param_t){ *name, vals[i] };
        }
    }
    api_telemetry_request_t *req;
    char err[256] = "";
    int rc = api_telemetry_parse(params, n, a, &req, err, sizeof err);
    if (rc == STRATA_EINVAL)
        return api_call_reply_strata_error(c, rc, err[0] ? err : "invalid parameter", "");
    if (rc) return rc;
    api_telemetry_format_t fmt = api_telemetry_wants_csv(api_call_header(c, "Accept")) ? API_TELEMETRY_CSV
                                                                                       : API_TELEMETRY_JSON;
    char *body;
    size_t len;
    rc = api_telemetry_compute(reg, api_call_principal(c)->tenant_id, req, api_call_now_ms(c), fmt, a, &body,
                               &len);
    if (rc == STRATA_ENOTFOUND)
        return api_call_reply_strata_error(c, rc, "cluster not found", req_cluster(params, n));
    if (rc) return rc;
    return api_call_reply(c, 200, api_telemetry_content_type(fmt), body, len);
}

api_route_t api_telemetry_route(api_registry_t *reg)
{
    return (api_route_t){ "GET", "/api/v1/workloads/telemetry", API_SCOPE_METRICS_READ, h_telemetry, reg, 0 };
}
