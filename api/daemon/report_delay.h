/*
 * report_delay.h: the test-only --report-worker-delay wrapper around the
 * report generator (docs/api.md, "Flags" under the reports endpoints).
 */
#ifndef DAEMON_REPORT_DELAY_H
#define DAEMON_REPORT_DELAY_H

#include <stddef.h>
#include <stdint.h>

#include "reports.h"

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
