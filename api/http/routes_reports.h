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

/* Test-only (--report-worker-delay): a generate callback that waits delay_ms
 * (cancellable: a delete or shutdown ends the wait at once) and then calls
 * inner.  Lets integration tests see a report Pending/Processing long enough
 * to check the 409 on its file and to kill the daemon mid-generation. */
typedef struct api_reports_delay {
    int64_t delay_ms;
    api_report_generate_fn inner;
    void *inner_ctx;
} api_reports_delay_t;

int api_reports_delayed_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                                 const volatile int *cancelled, char *errmsg, size_t errcap);

#endif
