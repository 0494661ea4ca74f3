/*
 * routes_admin.h: POST /api/v1/admin/cut-head (docs/benchmarks.md).
 */
#ifndef API_ROUTES_ADMIN_H
#define API_ROUTES_ADMIN_H

#include "api.h"

/* The route (scope metrics:write, as writing). */
api_route_t api_admin_cut_head_route(void);

#endif
