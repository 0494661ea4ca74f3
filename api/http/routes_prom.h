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

/* series, labels, label values, query_exemplars into out (at most cap);
 * returns how many. */
size_t api_prom_routes(api_route_t *out, size_t cap);
/* query and query_range (routes_prom_query.c). */
size_t api_prom_query_routes(api_route_t *out, size_t cap);
/* query and query_range answering 501 "not built", for a build without the
 * evaluator (routes_prom_info.c). */
size_t api_prom_query_routes_unbuilt(api_route_t *out, size_t cap);
/* The metadata and buildinfo routes into out (at most cap); returns how many. */
size_t api_prom_info_routes(api_route_t *out, size_t cap);

#endif
