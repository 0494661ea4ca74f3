/*
 * catalog.h: the metric catalog, the 23 WorkloadMetricTypes of the Run:ai
 * spec and what each is made of (docs/metrics.md, "Catalog").  Read by the
 * workload metrics query (metrics_query.h) and meant to be read as well by
 * anything else that answers these types (a PromQL engine, a scale-out
 * gateway): one table, no store access, no allocation.
 *
 * For each type: the source series (by metric name, with label conditions),
 * the aggregation within a step (downsample.h's enum api_agg), the
 * combination across the workload's series (enum api_combine, or per GPU),
 * the factor that turns the stored unit into the answer's, and that unit.
 */
#ifndef API_CATALOG_H
#define API_CATALOG_H

#include <stddef.h>

#include "downsample.h"
#include "strata_err.h"
#include "tsdb.h"

/* The WorkloadMetricType enum of the Run:ai spec, in the spec's order. */
enum api_metric_type {
    API_METRIC_GPU_UTILIZATION,
    API_METRIC_GPU_MEMORY_USAGE_BYTES,
    API_METRIC_GPU_MEMORY_REQUEST_BYTES,
    API_METRIC_CPU_USAGE_CORES,
    API_METRIC_CPU_REQUEST_CORES,
    API_METRIC_CPU_LIMIT_CORES,
    API_METRIC_CPU_MEMORY_USAGE_BYTES,
    API_METRIC_CPU_MEMORY_REQUEST_BYTES,
    API_METRIC_CPU_MEMORY_LIMIT_BYTES,
    API_METRIC_POD_COUNT,
    API_METRIC_RUNNING_POD_COUNT,
    API_METRIC_GPU_ALLOCATION,
    API_METRIC_NIM_NUM_REQUESTS_RUNNING,
    API_METRIC_NIM_NUM_REQUESTS_WAITING,
    API_METRIC_NIM_NUM_REQUEST_MAX,
    API_METRIC_NIM_REQUEST_SUCCESS_TOTAL,
    API_METRIC_NIM_REQUEST_FAILURE_TOTAL,
    API_METRIC_NIM_GPU_CACHE_USAGE_PERC,
    API_METRIC_NIM_TIME_TO_FIRST_TOKEN_SECONDS,
    API_METRIC_NIM_E2E_REQUEST_LATENCY_SECONDS,
    API_METRIC_NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES,
    API_METRIC_NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES,
    API_METRIC_NVLINK_BANDWIDTH_TOTAL,
    API_METRIC_COUNT
};

/* What a type answers with. */
enum api_catalog_kind {
    API_CATALOG_SERIES, /* measurements: one combined series, or one per GPU */
    API_CATALOG_HIST,   /* histogram: cumulative increase per le */
    API_CATALOG_PCT,    /* histogram: the quantiles below, per step */
};

#define API_CATALOG_MAX_COMP 2 /* source components summed per step (NVLINK TX + RX) */
#define API_CATALOG_MAX_ALT  2 /* alternative names of one component (NIM and vllm:) */
#define API_CATALOG_MAX_COND 2 /* label conditions besides the name */

typedef struct api_catalog_entry {
    const char *name; /* the spec's name, "GPU_UTILIZATION" */
    enum api_catalog_kind kind;
    /* src[c][a]: component c, alternative name a (NULL-terminated).  The
     * first alternative with data for the workload is used, so a server that
     * exports both names is not counted twice. */
    const char *src[API_CATALOG_MAX_COMP][API_CATALOG_MAX_ALT];
    tsdb_matcher_t cond[API_CATALOG_MAX_COND]; /* every source series matches these */
    size_t ncond;
    enum api_agg agg;         /* within a step, per series */
    enum api_combine combine; /* across series; API_COMBINE_NONE: one per GPU */
    double scale;             /* applied to each output value (stored unit -> unit) */
    const char *unit;         /* of the answer: "bytes", "cores", "histogram", ... */
} api_catalog_entry_t;

/* The entry of type t, or NULL when out of range. */
const api_catalog_entry_t *api_catalog_get(enum api_metric_type t);

/* Percentile types answer these quantiles (Prometheus' histogram_quantile),
 * keyed p50, p90, p99. */
#define API_CATALOG_NQUANTILES 3
extern const double api_catalog_quantiles[API_CATALOG_NQUANTILES];
extern const char *const api_catalog_quantile_keys[API_CATALOG_NQUANTILES];

/* The spec's name of t ("GPU_UTILIZATION"), or NULL when out of range. */
const char *api_metrics_type_name(enum api_metric_type t);
/* The type named s (exact, case-sensitive); STRATA_EINVAL when none. */
int api_metrics_type_parse(const char *s, enum api_metric_type *out);

#endif
