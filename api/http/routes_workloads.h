/*
 * routes_workloads.h: the HTTP side of the workload registry (api/registry.h):
 * GET /api/v1/workloads, /count, /{id}, /{id}/endpoints, /{id}/elements,
 * /{id}/elements/count.
 */
#ifndef API_ROUTES_WORKLOADS_H
#define API_ROUTES_WORKLOADS_H

#include <stddef.h>

#include "api.h"
#include "registry.h"

/* Routes for api_server_config_t.routes, all with scope metrics:read.
 * Writes at most cap entries (cap >= API_WORKLOADS_NROUTES); returns the count. */
#define API_WORKLOADS_NROUTES 6
size_t api_workloads_routes(api_registry_t *reg, api_route_t *out, size_t cap);

#endif
