/*
 * selfmon.h: strata's self-monitoring: request counts and durations, WAL
 * fsync latency, remote-write counters, and GET /metrics rendering them in
 * the Prometheus text format (docs/api.md, "Operations").  Internal to
 * api/http.
 */
#ifndef API_SELFMON_H
#define API_SELFMON_H

#include <stddef.h>

#include "api.h"
#include "ingest.h"

typedef struct api_selfmon api_selfmon_t;

/* extra (may be NULL) adds more Prometheus text to GET /metrics, as
 * api_server_config_t.extra_metrics. */
int api_selfmon_new(size_t (*extra)(void *ctx, char *buf, size_t cap), void *extra_ctx, api_selfmon_t **out);
void api_selfmon_free(api_selfmon_t *m);

/* A request begins / ends: strata_http_requests_in_flight. */
void api_selfmon_request_begin(api_selfmon_t *m);
void api_selfmon_request_end(api_selfmon_t *m);
int api_selfmon_inflight(api_selfmon_t *m);
/* A finished request: strata_http_request_duration_seconds{path,code};
 * path must be static storage. */
void api_selfmon_observe_request(api_selfmon_t *m, const char *path, int code, double secs);
void api_selfmon_observe_fsync(api_selfmon_t *m, double secs);

/* A remote-write batch was stored (fully or in part) / refused as a whole. */
void api_selfmon_write_stored(api_selfmon_t *m, const ingest_result_t *res);
void api_selfmon_write_refused(api_selfmon_t *m);
/* Adds the remote-write shipper's lines to /metrics (NULL: none). */
void api_selfmon_set_shipper(api_selfmon_t *m, remote_ship_t *ship);
/* Connections the server closed as too slow (docs/api.md, "Slow clients"). */
void api_selfmon_slow_closed(api_selfmon_t *m, unsigned headers, unsigned body);

/* GET /metrics (any valid token; served before the store is open). */
api_route_t api_selfmon_route(api_selfmon_t *m);

#endif
