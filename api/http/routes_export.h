/*
 * routes_export.h: GET /api/v1/export, every matching series as JSON lines
 * (docs/api.md, "GET /api/v1/export").
 */
#ifndef API_ROUTES_EXPORT_H
#define API_ROUTES_EXPORT_H

#include "api.h"

/* The route (scope metrics:read). */
api_route_t api_export_route(void);

#endif
