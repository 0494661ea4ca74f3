/*
 * routes_telemetry.h: GET /api/v1/workloads/telemetry over api/telemetry.h.
 */
#ifndef API_ROUTES_TELEMETRY_H
#define API_ROUTES_TELEMETRY_H

#include "api.h"
#include "registry.h"

/* The route (scope metrics:read); reg must outlive the server. */
api_route_t api_telemetry_route(api_registry_t *reg);

#endif
