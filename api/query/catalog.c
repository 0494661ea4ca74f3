/*
 * catalog.c: the metric catalog (catalog.h): for each of the 23
 * WorkloadMetricTypes its source series and label conditions, the
 * aggregation within a step, the combination across series, the unit, and
 * the spec's name.  docs/metrics.md ("Catalog") is the same table in prose,
 * with why each choice was made.
 */
#include "catalog.h"

#include <string.h>

/* clang-format off */
/* Shorthands for the table: label conditions (cond, ncond) and source names. */
#define NOT_EMPTY_CONTAINER                                                      \
    { { TSDB_MATCH_NEQ, "container", "" }, { TSDB_MATCH_NEQ, "container", "POD" } }, 2
#define RESOURCE(r) { { TSDB_MATCH_EQ, "resource", r } }, 1
#define NOCOND { { 0, NULL, NULL } }, 0
#define ONE(n) { { n, NULL } }
#define NIM(n) { { n, "vllm:" n } }

static const api_catalog_entry_t CATALOG[API_METRIC_COUNT] = {
    [API_METRIC_GPU_UTILIZATION] = { "GPU_UTILIZATION", API_CATALOG_SERIES,
        ONE("DCGM_FI_DEV_GPU_UTIL"), NOCOND, API_AGG_AVG, API_COMBINE_NONE, 1, "%" },
    [API_METRIC_GPU_MEMORY_USAGE_BYTES] = { "GPU_MEMORY_USAGE_BYTES", API_CATALOG_SERIES,
        ONE("DCGM_FI_DEV_FB_USED"), NOCOND, API_AGG_AVG, API_COMBINE_NONE, 1048576, "bytes" },
    [API_METRIC_GPU_MEMORY_REQUEST_BYTES] = { "GPU_MEMORY_REQUEST_BYTES", API_CATALOG_SERIES,
        ONE("runai_workload_gpu_memory_request_bytes"), NOCOND,
        API_AGG_LAST, API_COMBINE_SUM, 1, "bytes" },
    [API_METRIC_CPU_USAGE_CORES] = { "CPU_USAGE_CORES", API_CATALOG_SERIES,
        ONE("container_cpu_usage_seconds_total"), NOT_EMPTY_CONTAINER, API_AGG_RATE,
        API_COMBINE_SUM, 1, "cores" },
    [API_METRIC_CPU_REQUEST_CORES] = { "CPU_REQUEST_CORES", API_CATALOG_SERIES,
        ONE("kube_pod_container_resource_requests"), RESOURCE("cpu"), API_AGG_LAST,
        API_COMBINE_SUM, 1, "cores" },
    [API_METRIC_CPU_LIMIT_CORES] = { "CPU_LIMIT_CORES", API_CATALOG_SERIES,
        ONE("kube_pod_container_resource_limits"), RESOURCE("cpu"), API_AGG_LAST,
        API_COMBINE_SUM, 1, "cores" },
    [API_METRIC_CPU_MEMORY_USAGE_BYTES] = { "CPU_MEMORY_USAGE_BYTES", API_CATALOG_SERIES,
        ONE("container_memory_working_set_bytes"), NOT_EMPTY_CONTAINER, API_AGG_AVG,
        API_COMBINE_SUM, 1, "bytes" },
    [API_METRIC_CPU_MEMORY_REQUEST_BYTES] = { "CPU_MEMORY_REQUEST_BYTES", API_CATALOG_SERIES,
        ONE("kube_pod_container_resource_requests"), RESOURCE("memory"), API_AGG_LAST,
        API_COMBINE_SUM, 1, "bytes" },
    [API_METRIC_CPU_MEMORY_LIMIT_BYTES] = { "CPU_MEMORY_LIMIT_BYTES", API_CATALOG_SERIES,
        ONE("kube_pod_container_resource_limits"), RESOURCE("memory"), API_AGG_LAST,
        API_COMBINE_SUM, 1, "bytes" },
    [API_METRIC_POD_COUNT] = { "POD_COUNT", API_CATALOG_SERIES, ONE("runai_pod_info"), NOCOND,
        API_AGG_PRESENT, API_COMBINE_COUNT, 1, "pods" },
    [API_METRIC_RUNNING_POD_COUNT] = { "RUNNING_POD_COUNT", API_CATALOG_SERIES,
        ONE("kube_pod_status_phase"), { { TSDB_MATCH_EQ, "phase", "Running" } }, 1,
        API_AGG_LAST, API_COMBINE_SUM, 1, "pods" },
    [API_METRIC_GPU_ALLOCATION] = { "GPU_ALLOCATION", API_CATALOG_SERIES,
        ONE("runai_workload_gpu_allocation"), NOCOND, API_AGG_LAST, API_COMBINE_SUM, 1, "devices" },
    [API_METRIC_NIM_NUM_REQUESTS_RUNNING] = { "NIM_NUM_REQUESTS_RUNNING", API_CATALOG_SERIES,
        NIM("num_requests_running"), NOCOND, API_AGG_AVG, API_COMBINE_SUM, 1, "requests" },
    [API_METRIC_NIM_NUM_REQUESTS_WAITING] = { "NIM_NUM_REQUESTS_WAITING", API_CATALOG_SERIES,
        NIM("num_requests_waiting"), NOCOND, API_AGG_AVG, API_COMBINE_SUM, 1, "requests" },
    [API_METRIC_NIM_NUM_REQUEST_MAX] = { "NIM_NUM_REQUEST_MAX", API_CATALOG_SERIES,
        NIM("num_request_max"), NOCOND, API_AGG_MAX, API_COMBINE_SUM, 1, "requests" },
    [API_METRIC_NIM_REQUEST_SUCCESS_TOTAL] = { "NIM_REQUEST_SUCCESS_TOTAL", API_CATALOG_SERIES,
        NIM("request_success_total"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1, "requests" },
    [API_METRIC_NIM_REQUEST_FAILURE_TOTAL] = { "NIM_REQUEST_FAILURE_TOTAL", API_CATALOG_SERIES,
        NIM("request_failure_total"), NOCOND, API_AGG_INCREASE, API_COMBINE_SUM, 1, "requests" },
    [API_METRIC_NIM_GPU_CACHE_USAGE_PERC] = { "NIM_GPU_CACHE_USAGE_PERC", API_CATALOG_SERIES,
        NIM("gpu_cache_usage_perc"), NOCOND, API_AGG_AVG, API_COMBINE_AVG, 1, "fraction" },
    [API_METRIC_NIM_TIME_TO_FIRST_TOKEN_SECONDS] = { "NIM_TIME_TO_FIRST_TOKEN_SECONDS", API_CATALOG_HIST,
        NIM("time_to_first_token_seconds_bucket"), NOCOND,
        API_AGG_INCREASE, API_COMBINE_SUM, 1, "histogram" },
    [API_METRIC_NIM_E2E_REQUEST_LATENCY_SECONDS] = { "NIM_E2E_REQUEST_LATENCY_SECONDS", API_CATALOG_HIST,
        NIM("e2e_request_latency_seconds_bucket"), NOCOND,
        API_AGG_INCREASE, API_COMBINE_SUM, 1, "histogram" },
    [API_METRIC_NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES] = {
        "NIM_TIME_TO_FIRST_TOKEN_SECONDS_PERCENTILES", API_CATALOG_PCT,
        NIM("time_to_first_token_seconds_bucket"), NOCOND,
        API_AGG_INCREASE, API_COMBINE_SUM, 1, "histogram" },
    [API_METRIC_NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES] = {
        "NIM_E2E_REQUEST_LATENCY_SECONDS_PERCENTILES", API_CATALOG_PCT,
        NIM("e2e_request_latency_seconds_bucket"), NOCOND,
        API_AGG_INCREASE, API_COMBINE_SUM, 1, "histogram" },
    [API_METRIC_NVLINK_BANDWIDTH_TOTAL] = { "NVLINK_BANDWIDTH_TOTAL", API_CATALOG_SERIES,
        { { "DCGM_FI_PROF_NVLINK_TX_BYTES", NULL }, { "DCGM_FI_PROF_NVLINK_RX_BYTES", NULL } },
        NOCOND, API_AGG_AVG, API_COMBINE_NONE, 1, "bytes/s" },
};
/* clang-format on */

const double api_catalog_quantiles[API_CATALOG_NQUANTILES] = { 0.5, 0.9, 0.99 };
const char *const api_catalog_quantile_keys[API_CATALOG_NQUANTILES] = { "p50", "p90", "p99" };

const api_catalog_entry_t *api_catalog_get(enum api_metric_type t)
{
    return (unsigned)t < API_METRIC_COUNT ? &CATALOG[t] : NULL;
}

const char *api_metrics_type_name(enum api_metric_type t)
{
    return (unsigned)t < API_METRIC_COUNT ? CATALOG[t].name : NULL;
}

int api_metrics_type_parse(const char *s, enum api_metric_type *out)
{
    if (!s || !out) return STRATA_EINVAL;
    for (int i = 0; i < API_METRIC_COUNT; i++)
        if (strcmp(s, CATALOG[i].name) == 0) {
            *out = (enum api_metric_type)i;
            return 0;
        }
    return STRATA_EINVAL;
}
