/*
 * routes_prom.h: the read side of the Prometheus HTTP API (docs/promql.md,
 * "HTTP API"), so Grafana's Prometheus data source, vmalert and promtool
 * work against strata: query and query_range (routes_prom_query.c), series,
 * labels, label values, query_exemplars (routes_prom.c), metadata and
 * status/buildinfo (routes_prom_info.c).  Every route reads as the token's tenant
 * (metrics:read) through the read seam.
 */
#ifndef API_ROUTES_PROM_H
#define API_ROUTES_PROM_H

#include "api.h"
#include "promql.h"

/* series, labels, label values, query_exemplars into out (at most cap);
 * returns how many. */
size_t api_prom_routes(api_route_t *out, size_t cap);
/* The evaluator the query routes call: promql_eval (promql.h), or NULL in a
 * build without it, where query and query_range check their parameters and
 * parse as ever, then answer 501 "not built". */
typedef struct api_prom_engine {
    int (*eval)(const promql_engine_opts_t *opts, const promql_node_t *expr, int64_t start_ms, int64_t end_ms,
                int64_t step_ms, strata_arena_t *arena, promql_result_t *out, char *msg, size_t msgcap);
} api_prom_engine_t;

/* query and query_range (routes_prom_query.c); eng must outlive the server. */
size_t api_prom_query_routes(const api_prom_engine_t *eng, api_route_t *out, size_t cap);
/* The metadata and buildinfo routes into out (at most cap); returns how many. */
size_t api_prom_info_routes(api_route_t *out, size_t cap);

#endif
