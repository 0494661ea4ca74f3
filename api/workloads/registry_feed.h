/*
 * registry_feed.h: the ingest observer that feeds the workload registry
 * (docs/registry.md).
 */
#ifndef API_REGISTRY_FEED_H
#define API_REGISTRY_FEED_H

#include <stdint.h>

#include "registry.h"

/* An ingest_observer_fn: hands each written series to api_registry_observe()
 * (ctx = the registry), samples in ascending time order as it wants them. */
int api_workloads_observe(void *ctx, int32_t tenant, const tsdb_series_input_t *series);
/* An ingest_observer_ref_fn: the same through api_registry_observe_ref(),
 * so the registry keeps a handle per series by its store ref. */
int api_workloads_observe_ref(void *ctx, int32_t tenant, uint32_t ref, const tsdb_series_input_t *series);
/* An ingest_observer_filter_fn: api_registry_uses_series (ctx unused). */
int api_workloads_wants(void *ctx, const tsdb_series_input_t *series);

#endif
