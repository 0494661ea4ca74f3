/*
 * report_gen.h: the consumption-report generator over the real store, the
 * api_report_generate_fn the report workers call (docs/reports.md,
 * "Generation").
 */
#ifndef API_REPORT_GEN_H
#define API_REPORT_GEN_H

#include <stdatomic.h>

#include "reports.h"
#include "tsdb.h"

typedef struct api_report_gen {
    _Atomic(tsdb_t *) db;            /* set once the store is open, before the workers start */
    api_report_agg_params_t params;  /* staleness and GPU idle rule, as the daemon's flags */
} api_report_gen_t;

/* ctx = api_report_gen_t.  Finds the tenant's workloads from their
 * runai_workload_info series over [start - staleness, end), their pods from
 * runai_pod_info, and each CSV column's source series: those labelled with
 * the workload_id, plus those of its pods' (namespace, pod) without a
 * workload_id label, clipped to the pod's active window; then aggregates
 * (api_reports_aggregate) and writes the rows. */
int api_report_generate(void *ctx, const api_report_request_t *req, api_report_csv_t *csv,
                        const volatile int *cancelled, char *errmsg, size_t errcap);

#endif
