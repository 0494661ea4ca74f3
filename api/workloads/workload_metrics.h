/*
 * workload_metrics.h: a workload's metrics (GET /workloads/{id}/metrics):
 * the registry says whether the workload exists and which pods it had, then
 * api/query/metrics_query.h reads and downsamples its series.
 */
#ifndef API_WORKLOAD_METRICS_H
#define API_WORKLOAD_METRICS_H

#include "metrics_query.h"
#include "registry.h"

/* api_metrics_query() for workload_id of tenant_id with the pods reg knows of
 * it.  STRATA_ENOTFOUND (err says which) when the tenant has no such
 * workload.  reg NULL: no workload is unknown and only the workload_id label
 * joins (tests of the query layer). */
int api_workload_metrics(const api_read_source_t *src, api_registry_t *reg, int32_t tenant_id,
                         const char *workload_id, const api_metrics_request_t *req,
                         const api_metrics_options_t *opts, strata_arena_t *arena,
                         api_metrics_response_t **out, char *err, size_t errcap);

#endif
