/*
 * metrics_query.h: GET /api/v1/workloads/{id}/metrics without the HTTP part
 * (docs/metrics.md).  The metric types and what each reads are catalog.h.
 *
 *   1. api_metrics_parse() (metrics_params.c): the query parameters
 *      (metricType, start, end, numberOfSamples) into a request, or
 *      STRATA_EINVAL with a message that names the parameter (the 400 body's
 *      message);
 *   2. api_metrics_query() (metrics_query.c): for every requested
 *      WorkloadMetricType, selects the catalog's source series of the tenant
 *      that belong to the workload (workload_id label, or (namespace, pod) of
 *      one of its pods inside the pod's active window), downsamples them with
 *      downsample.h (raw samples, or 5m/1h rollups for wide buckets) and
 *      combines them;
 *   3. api_metrics_render_json() / _csv() (metrics_render.c): the
 *      MetricsCompositeResponse body, or the CSV form for Accept: text/csv.
 *
 * Status mapping for the caller: api_metrics_parse STRATA_EINVAL -> 400;
 * api_metrics_query STRATA_ENOTFOUND (unknown workload) -> 404,
 * STRATA_ELIMIT (numberOfSamples=0 over --max-points) -> 400, anything else
 * negative -> api_status_for_error; a response with
 * api_metrics_response_partial() == 1 (some metric types failed) -> 207,
 * else 200.
 *
 * Everything a response holds lives in the arena passed to the query; one
 * request uses one arena from one thread.  The functions themselves are
 * reentrant (a read source is thread-safe).
 */
#ifndef API_METRICS_QUERY_H
#define API_METRICS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "read.h"
#include "strata_arena.h"
#include "strata_err.h"
#include "tsdb.h"

#define API_METRICS_MAX_TYPES       10   /* metricType maxItems */
#define API_METRICS_DEFAULT_SAMPLES 20   /* numberOfSamples default */
#define API_METRICS_MAX_SAMPLES     1000 /* numberOfSamples maximum */

typedef struct api_metrics_options {
    size_t max_points;    /* --max-points: numberOfSamples=0 points per series (and per
                                combined measurement); default 11000 */
    int64_t staleness_ms; /* --staleness: a pod's series stay joined this long after its
                                last runai_pod_info sample, and counters look back this far
                                for the sample before `start`; default 5m */
    int64_t max_range_ms; /* --max-range: end - start above this is a 400; 0 = no limit
                                (the default) */
    uint64_t max_samples; /* points (raw samples + rollup points) one metric type may read
                                before it fails with "sample limit" (the response becomes
                                partial); default 50,000,000 as Prometheus' query.max-samples;
                                0 = no limit.  Enforced by the read seam's budget (read.h) */
    int64_t timeout_ms;   /* --query-timeout: the whole request's reads must end within
                                this; past it the call fails with STRATA_ETIMEOUT (err says
                                so); default 2m; 0 = no limit */
} api_metrics_options_t;

/* Fills opts with the defaults above. */
void api_metrics_options_init(api_metrics_options_t *opts);

/* A parsed request: a plain value, filled by api_metrics_parse(). */
typedef struct api_metrics_request {
    enum api_metric_type types[API_METRICS_MAX_TYPES]; /* unique, in order of first mention */
    size_t ntypes;                                     /* 1..10 */
    int64_t start_ms, end_ms;                          /* start < end */
    uint32_t samples;                                  /* numberOfSamples, 0..1000 */
} api_metrics_request_t;

/* Parses the query parameters.  metric_types holds every metricType value as
 * sent (the parameter may be repeated, each value comma-separated); start,
 * end and number_of_samples are the raw strings, NULL when absent.  opts may
 * be NULL (defaults; only max_range_ms is used).  On STRATA_EINVAL, err
 * (errcap bytes, may be NULL) gets a message naming the parameter:
 *   metricType missing, empty item, unknown value, more than 10 items (as
 *   sent, duplicates counted; duplicates are then answered once);
 *   start/end missing or not RFC 3339; end <= start; numberOfSamples not an
 *   integer or outside 0..1000; end - start over max_range_ms. */
int api_metrics_parse(const char *const *metric_types, size_t nmetric_types, const char *start,
                      const char *end, const char *number_of_samples, const api_metrics_options_t *opts,
                      api_metrics_request_t *req, char *err, size_t errcap);

typedef struct api_metrics_response api_metrics_response_t;

/* One pod of the workload: the series of (namespace, pod) belong to the
 * workload over [first_ms, end_ms).  Strings are borrowed for the call. */
typedef struct api_metrics_pod {
    const char *namespace_, *pod, *node;
    int64_t first_ms, end_ms;
} api_metrics_pod_t;

/* Runs the request for one workload of one tenant, reading through src.
 * Series join the workload by their workload_id label, or by (namespace,
 * pod) of one of pods (npods may be 0).  Knowing which workloads exist is the
 * caller's part (api_workload_metrics in api/workloads/ asks the registry).
 * opts may be NULL (defaults).
 *
 * A metric type that fails on its own (store error, arena exhausted,
 * max_samples) does not fail the call: its measurement gets values null and
 * labels {"error": "..."} and the response is partial.  The call itself fails
 * with STRATA_ELIMIT when numberOfSamples = 0 would give some series more than
 * max_points points (err names the limit), with STRATA_ETIMEOUT when its reads
 * run past opts->timeout_ms (err names --query-timeout), STRATA_EINVAL for bad arguments,
 * STRATA_ENOMEM when the response itself cannot be allocated. */
int api_metrics_query(const api_read_source_t *src, int32_t tenant_id, const char *workload_id,
                      const api_metrics_pod_t *pods, size_t npods, const api_metrics_request_t *req,
                      const api_metrics_options_t *opts, strata_arena_t *arena, api_metrics_response_t **out,
                      char *err, size_t errcap);

/* 1 when at least one metric type failed (answer 207), else 0. */
int api_metrics_response_partial(const api_metrics_response_t *r);
/* Points the query read from the store: raw samples plus rollup points, over
 * every metric type (for a debug header and /metrics). */
uint64_t api_metrics_response_points_read(const api_metrics_response_t *r);
/* Damaged block pages the query's reads skipped (api_read_set_damaged, summed
 * over its selects): 0 for a complete answer; otherwise some series may lack
 * samples (the HTTP layer says so in X-Strata-Warning, docs/api.md). */
uint64_t api_metrics_response_damaged_pages(const api_metrics_response_t *r);

/* The MetricsCompositeResponse JSON (compact, NUL-terminated, in arena). */
int api_metrics_render_json(const api_metrics_response_t *r, strata_arena_t *arena, char **out, size_t *len);
/* The CSV form (docs/metrics.md has the exact header), NUL-terminated, in arena. */
int api_metrics_render_csv(const api_metrics_response_t *r, strata_arena_t *arena, char **out, size_t *len);

#endif
