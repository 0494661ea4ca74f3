/*
 * routes_metrics.c: the HTTP side of the workload metrics query: parameters as
 * sent (metricType repeated and/or comma-separated) -> api_metrics_parse ->
 * api_metrics_query -> JSON or CSV, with the status mapping metrics_query.h
 * documents (parse error 400, unknown workload 404, --max-points exceeded
 * 400, partial 207).
 */
#include "routes_metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int wants_csv(const api_call_t *c)
{
    const char *accept = api_call_header(c, "Accept");
    return accept && strstr(accept, "text/csv") != NULL;
}

static int h_metrics(api_call_t *c, void *ctx)
{
    api_metrics_http_t *m = ctx;
    const char **types;
    size_t ntypes = api_call_params(c, "metricType", &types);
    api_metrics_request_t req;
    char err[256] = "";
    int rc = api_metrics_parse(types, ntypes, api_call_param(c, "start"), api_call_param(c, "end"),
                               api_call_param(c, "numberOfSamples"), &m->opts, &req, err, sizeof err);
    if (rc == STRATA_EINVAL)
        return api_call_reply_strata_error(c, rc, err[0] ? err : "invalid parameter", "");
    if (rc) return api_call_reply_strata_error(c, rc, NULL, err);
    api_metrics_response_t *resp;
    rc = api_workload_metrics(api_call_reader(c), m->reg, api_call_principal(c)->tenant_id,
                              api_call_segment(c, 0), &req, &m->opts, api_call_arena(c), &resp, err,
                              sizeof err);
    if (rc == STRATA_ENOTFOUND) return api_call_reply_strata_error(c, rc, "workload not found", err);
    /* past --query-timeout: 503, the client may retry (later, or a shorter range) */
    if (rc == STRATA_ETIMEOUT) return api_call_reply_strata_error(c, rc, "query timeout", err);
    /* a remote engine failed (docs/scale-out.md): its name in the message */
    if (rc == STRATA_EIO && err[0]) return api_call_reply_strata_error(c, rc, err, "");
    /* over --max-points is a bad request here, not a tenant limit (429) */
    if (rc == STRATA_ELIMIT || rc == STRATA_EINVAL)
        return api_call_reply_strata_error(c, STRATA_EINVAL, err[0] ? err : strata_strerror(rc), "");
    if (rc) return api_call_reply_strata_error(c, rc, NULL, err);
    /* points read is the query's cost: a header for the caller, a counter for operators */
    uint64_t points = api_metrics_response_points_read(resp);
    atomic_fetch_add(&m->queries, 1);
    atomic_fetch_add(&m->points_read, points);
    char pr[24];
    snprintf(pr, sizeof pr, "%" PRIu64, points);
    api_call_add_header(c, "X-Strata-Points-Read", pr);
    /* an answer missing what damaged block pages held says so (docs/api.md) */
    uint64_t damaged = api_metrics_response_damaged_pages(resp);
    if (damaged) {
        char w[64];
        snprintf(w, sizeof w, "%" PRIu64 " damaged block pages skipped", damaged);
        api_call_add_header(c, "X-Strata-Warning", w);
        atomic_fetch_add(&m->damaged_answers, 1);
    }
    char *body;
    size_t len;
    int csv = wants_csv(c);
    rc = csv ? api_metrics_render_csv(resp, api_call_arena(c), &body, &len)
             : api_metrics_render_json(resp, api_call_arena(c), &body, &len);
    if (rc) return api_call_reply_strata_error(c, rc, NULL, "");
    return api_call_reply(c, api_metrics_response_partial(resp) ? 207 : 200,
                          csv ? "text/csv; charset=utf-8" : "application/json", body, len);
}

api_route_t api_metrics_route(api_metrics_http_t *ctx)
{
    return (api_route_t){ "GET", "/api/v1/workloads/{}/metrics", API_SCOPE_METRICS_READ, h_metrics, ctx, 0 };
}

size_t api_metrics_http_render(void *ctx, char *buf, size_t cap)
{
    api_metrics_http_t *m = ctx;
    api_registry_stats_t st;
    api_registry_stats(m->reg, &st);
    int n = snprintf(
        buf, cap,
        "# HELP strata_metrics_queries_total Workload metrics queries answered (200 or 207).\n"
        "# TYPE strata_metrics_queries_total counter\n"
        "strata_metrics_queries_total %" PRIu64 "\n"
        "# HELP strata_metrics_points_read_total Points (raw samples and rollup points) read by workload "
        "metrics queries.\n"
        "# TYPE strata_metrics_points_read_total counter\n"
        "strata_metrics_points_read_total %" PRIu64 "\n"
        "# HELP strata_metrics_queries_damaged_total Workload metrics answers that skipped damaged block "
        "pages (sent with X-Strata-Warning).\n"
        "# TYPE strata_metrics_queries_damaged_total counter\n"
        "strata_metrics_queries_damaged_total %" PRIu64 "\n"
        "# HELP strata_registry_workloads Workloads the registry holds (deleted ones until gc).\n"
        "# TYPE strata_registry_workloads gauge\n"
        "strata_registry_workloads %zu\n"
        "# HELP strata_registry_pods Pods the registry holds.\n"
        "# TYPE strata_registry_pods gauge\n"
        "strata_registry_pods %zu\n"
        "# HELP strata_registry_gpus GPU series the registry holds.\n"
        "# TYPE strata_registry_gpus gauge\n"
        "strata_registry_gpus %zu\n"
        "# HELP strata_registry_element_level_invalid_total Workload elements whose hierarchy_level was "
        "missing or "
        "outside 1..3 (kept with a null level).\n"
        "# TYPE strata_registry_element_level_invalid_total counter\n"
        "strata_registry_element_level_invalid_total %" PRIu64 "\n",
        atomic_load(&m->queries), atomic_load(&m->points_read), atomic_load(&m->damaged_answers),
        st.workloads, st.pods, st.gpus, st.bad_element_levels);
    return n < 0 ? 0 : (size_t)n;
}
