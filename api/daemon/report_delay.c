/*
 * report_delay.c: the test-only --report-worker-delay: a report generate
 * callback that waits (cancellably) before calling the real one.
 */
#include "report_delay.h"

#include <time.h>

int api_reports_delayed_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                                 const volatile int *cancelled, char *errmsg, size_t errcap)
{
    const api_reports_delay_t *d = ctx;
    /* sleep in short steps so a delete or a shutdown is not held up by the knob */
    for (int64_t waited = 0; waited < d->delay_ms; waited += 20) {
        if (*cancelled) return STRATA_ECLOSED;
        struct timespec ts = { 0, 20 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    return d->inner(d->inner_ctx, req, csv, cancelled, errmsg, errcap);
}
