/*
 * routes_prom.h: the read side of the Prometheus HTTP API (docs/promql.md,
 * "HTTP API"), so Grafana's Prometheus data source, vmalert and promtool
 * work against strata: query, query_range, series, labels, label values,
 * query_exemplars (routes_prom.c), metadata and status/buildinfo
 * (routes_prom_info.c).  Every route reads as the token's tenant
 * (metrics:read) through the read seam.
 */
#ifndef API_ROUTES_PROM_H
#define API_ROUTES_PROM_H

#include "api.h"

/* The query routes into out (at most cap); returns how many. */
size_t api_prom_routes(api_route_t *out, size_t cap);
/* The metadata and buildinfo routes into out (at most cap); returns how many. */
size_t api_prom_info_routes(api_route_t *out, size_t cap);

#endif
