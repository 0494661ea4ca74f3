/*
 * routes_prom_query.c: GET|POST /api/v1/query and /api/v1/query_range of the
 * Prometheus HTTP API (docs/promql.md, "HTTP API"): parameters checked in
 * Prometheus 2.42's order with its texts, the expression parsed
 * (promql_parse) and evaluated (promql_eval) as the token's tenant within the
 * request's read budget, the result written as Prometheus writes it.  The
 * evaluator comes through the routes' context (api_prom_engine_t), so a build
 * without it still checks and parses, then answers 501 "not built".
 */
#include "routes_prom.h"

#include <stdint.h>
#include <string.h>

#include "prom.h"
#include "promql.h"

static void put_series(strata_buf_t *b, const promql_series_t *s, int matrix)
{
    strata_buf_puts(b, "{\"metric\":");
    api_prom_json_labels(b, s->labels, s->nlabels);
    strata_buf_puts(b, matrix ? ",\"values\":[" : ",\"value\":");
    for (size_t i = 0; i < (matrix ? s->npoints : (s->npoints ? 1 : 0)); i++) {
        if (i) strata_buf_puts(b, ",");
        strata_buf_puts(b, "[");
        api_prom_json_point_time(b, s->points[i].t);
        strata_buf_puts(b, ",");
        api_prom_json_point_value(b, s->points[i].v);
        strata_buf_puts(b, "]");
    }
    strata_buf_puts(b, matrix ? "]}" : "}");
}

static int reply_result(api_call_t *c, const promql_result_t *res)
{
    strata_buf_t b;
    size_t hint = 128;
    for (size_t i = 0; i < res->nseries; i++) hint += 64 + res->series[i].npoints * 32;
    strata_buf_init(&b, api_call_arena(c), hint);
    strata_buf_puts(&b, "{\"resultType\":\"");
    strata_buf_puts(&b, promql_type_name(res->type));
    strata_buf_puts(&b, "\",\"result\":");
    switch (res->type) {
    case PROMQL_TYPE_SCALAR:
    case PROMQL_TYPE_STRING:
        strata_buf_puts(&b, "[");
        api_prom_json_scalar_time(&b, res->t);
        strata_buf_puts(&b, ",");
        if (res->type == PROMQL_TYPE_SCALAR)
            api_prom_json_scalar_value(&b, res->scalar);
        else
            api_prom_json_string(&b, res->string ? res->string : "");
        strata_buf_puts(&b, "]");
        break;
    default:
        strata_buf_puts(&b, "[");
        for (size_t i = 0; i < res->nseries; i++) {
            if (i) strata_buf_puts(&b, ",");
            put_series(&b, &res->series[i], res->type == PROMQL_TYPE_MATRIX);
        }
        strata_buf_puts(&b, "]");
    }
    strata_buf_puts(&b, "}");
    if (b.failed) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    return api_prom_reply_data(c, b.data, b.len, res->warnings, res->nwarnings);
}

/* Parses and evaluates; prefix_parse: the instant query's parse errors name
 * the parameter, the range query's do not (as in Prometheus 2.42). */
static int run_query(api_call_t *c, const api_prom_engine_t *eng, const api_prom_params_t *p,
                     api_read_budget_t *budget, int64_t start, int64_t end, int64_t step_ms, int prefix_parse)
{
    strata_arena_t *a = api_call_arena(c);
    const char *q = api_prom_param(p, "query");
    promql_node_t *node;
    promql_error_t pe = { 0 };
    int rc = promql_parse(q ? q : "", a, &node, &pe);
    if (rc == STRATA_EINVAL)
        return prefix_parse ? api_prom_reply_bad_param(c, "query", pe.msg)
                            : api_prom_reply_error(c, rc, pe.msg);
    if (rc) return api_prom_reply_error(c, rc, NULL);
    if (step_ms) {
        promql_type_t t = promql_node_type(node);
        if (t != PROMQL_TYPE_SCALAR && t != PROMQL_TYPE_VECTOR) {
            strata_buf_t m;
            strata_buf_init(&m, a, 128);
            strata_buf_printf(
                &m, "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
                t == PROMQL_TYPE_MATRIX ? "range vector" : promql_type_name(t));
            return api_prom_reply_error(c, STRATA_EINVAL, m.failed ? "" : m.data);
        }
    }
    /* a deadline already gone (timeout=0): Prometheus stops before evaluating */
    if (budget->deadline_ms && api_read_mono_ms() >= budget->deadline_ms)
        return api_prom_reply_error(c, STRATA_ETIMEOUT, "query timed out in query execution");
    if (!eng || !eng->eval)
        return api_prom_reply_error(c, STRATA_EUNSUPPORTED, "not built: this strata has no PromQL evaluator");
    promql_engine_opts_t opts = {
        .src = api_call_reader(c),
        .tenant = api_call_principal(c)->tenant_id,
        .budget = budget,
    };
    promql_result_t res;
    char msg[512] = "";
    rc = eng->eval(&opts, node, start, end, step_ms, a, &res, msg, sizeof msg);
    if (rc == STRATA_EINVAL)
        return prefix_parse ? api_prom_reply_bad_param(c, "query", msg) : api_prom_reply_error(c, rc, msg);
    if (rc == STRATA_ELIMIT && !budget->exceeded) budget->exceeded = STRATA_ELIMIT; /* the sample limit */
    if (rc == STRATA_ETIMEOUT || budget->exceeded) return api_prom_reply_read_error(c, budget, rc);
    if (rc) return api_prom_reply_error(c, rc, msg);
    return reply_result(c, &res);
}

static int h_query(api_call_t *c, void *ctx)
{
    api_prom_params_t p;
    if (api_prom_params_collect(c, &p)) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    int64_t t;
    if (!api_prom_time_param(c, &p, "time", api_call_now_ms(c), &t)) return 0;
    api_read_budget_t budget;
    if (!api_prom_budget(c, &p, &budget)) return 0;
    return run_query(c, ctx, &p, &budget, t, t, 0, 1);
}

static int h_query_range(api_call_t *c, void *ctx)
{
    api_prom_params_t p;
    if (api_prom_params_collect(c, &p)) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    int64_t start, end, step_ns;
    if (!api_prom_required_time(c, &p, "start", &start) || !api_prom_required_time(c, &p, "end", &end))
        return 0;
    if (end < start) return api_prom_reply_bad_param(c, "end", "end timestamp must not be before start time");
    const char *step = api_prom_param(&p, "step");
    if (!api_prom_duration_param(c, "step", step ? step : "", &step_ns)) return 0;
    /* Prometheus evaluates at whole ms; a step under 1 ms is no step */
    if (step_ns < 1000000)
        return api_prom_reply_bad_param(
            c, "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer");
    /* Prometheus divides the range by the step as Go durations (ns, truncated) */
    uint64_t range_ms = (uint64_t)end - (uint64_t)start;
    uint64_t points = range_ms > UINT64_MAX / 1000000 ? UINT64_MAX : range_ms * 1000000 / (uint64_t)step_ns;
    if (points > 11000)
        return api_prom_reply_error(
            c, STRATA_EINVAL,
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing "
            "the query resolution (?step=XX)");
    api_read_budget_t budget;
    if (!api_prom_budget(c, &p, &budget)) return 0;
    return run_query(c, ctx, &p, &budget, start, end, step_ns / 1000000, 0);
}

size_t api_prom_query_routes(const api_prom_engine_t *eng, api_route_t *out, size_t cap)
{
    void *ctx = (void *)(uintptr_t)eng;
    const api_route_t routes[] = {
        { "GET", "/api/v1/query", API_SCOPE_METRICS_READ, h_query, ctx, 0 },
        { "POST", "/api/v1/query", API_SCOPE_METRICS_READ, h_query, ctx, 0 },
        { "GET", "/api/v1/query_range", API_SCOPE_METRICS_READ, h_query_range, ctx, 0 },
        { "POST", "/api/v1/query_range", API_SCOPE_METRICS_READ, h_query_range, ctx, 0 },
    };
    size_t n = sizeof routes / sizeof routes[0];
    if (n > cap) n = cap;
    memcpy(out, routes, n * sizeof *out);
    return n;
}
