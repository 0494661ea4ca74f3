/*
 * routes_reports.h: the HTTP side of the report store (api/reports.h):
 * POST/GET /api/v1/org-unit/reports, /count, /{id} (GET, DELETE), /{id}/file.
 */
#ifndef API_ROUTES_REPORTS_H
#define API_ROUTES_REPORTS_H

#include <stddef.h>

#include "api.h"
#include "reports.h"

/* The store is opened after the routes are built (it lives in the data
 * directory, opened with the tsdb); handlers read it through this holder,
 * which is filled before the server turns ready. */
typedef struct api_reports_ref {
    api_reports_t *st;
} api_reports_ref_t;

#define API_REPORTS_NROUTES 6
/* Writes at most cap routes (cap >= API_REPORTS_NROUTES); returns the count.
 * Creating and deleting need reports:write, reading metrics:read. */
size_t api_reports_routes(api_reports_ref_t *ref, api_route_t *out, size_t cap);

#endif
