/*
 * routes_metrics.h: GET /api/v1/workloads/{id}/metrics over api/metrics_query.h
 * (JSON, or CSV with Accept: text/csv; 207 when some metric types failed).
 */
#ifndef API_ROUTES_METRICS_H
#define API_ROUTES_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "api.h"
#include "workload_metrics.h"

typedef struct api_metrics_http {
    api_registry_t *reg;              /* resolves the workload's pods; unknown workload -> 404 */
    api_metrics_options_t opts;       /* --max-points, --max-range, --staleness */
    _Atomic uint64_t queries;         /* answered queries (200 or 207), for /metrics */
    _Atomic uint64_t points_read;     /* points those queries read from the store */
    _Atomic uint64_t damaged_answers; /* answers sent with X-Strata-Warning (damaged pages skipped) */
} api_metrics_http_t;

/* The route (scope metrics:read); ctx must outlive the server. */
api_route_t api_metrics_route(api_metrics_http_t *ctx);

/* The counters above and the registry's sizes as Prometheus text, for
 * api_server_config_t.extra_metrics (ctx = an api_metrics_http_t). */
size_t api_metrics_http_render(void *ctx, char *buf, size_t cap);

#endif
