/*
 * telemetry.h: GET /api/v1/workloads/telemetry (Run:ai "Get the workloads
 * telemetry"; docs/telemetry.md): one number per group over a tenant's
 * non-deleted workloads as of `now`, computed from the workload registry.
 *
 *   WORKLOADS_COUNT            workloads
 *   GPU_ALLOCATION             sum of allocated GPUs
 *   IDLE_ALLOCATED_GPUS        sum of idle allocated GPUs (the registry's
 *                              idleAllocatedGpus, --gpu-idle-after)
 *   PENDING_TIME_DISTRIBUTION  Pending workloads counted by time since they
 *                              entered Pending: 0-1h, 1h-6h, 6h-24h, 24h+
 *                              (group key PendingTime, always first)
 *
 * Use: collect the query parameters as a name/value list (repeats allowed),
 * api_telemetry_parse() them (STRATA_EINVAL -> 400 with the message, which
 * names the parameter), then api_telemetry_compute() the body in JSON
 * (TelemetryResponse) or CSV (Accept: text/csv, see api_telemetry_wants_csv).
 * docs/telemetry.md has the exact rules and formats.
 *
 * Everything lives in the caller's arena; one request, one arena, one thread.
 * The functions are reentrant (the registry is thread-safe).
 */
#ifndef API_TELEMETRY_H
#define API_TELEMETRY_H

#include <stddef.h>
#include <stdint.h>

#include "registry.h"
#include "strata_arena.h"
#include "strata_err.h"

/* The query parameters the endpoint reads, NULL-terminated: telemetryType,
 * groupBy, clusterId, nodepoolName, departmentId, filterByPhases.  A handler
 * collects every value of these (others are ignored anyway). */
extern const char *const api_telemetry_param_names[];

/* One query parameter as sent (URL-decoded).  A name may appear several
 * times: groupBy and filterByPhases take every value (each also split on
 * commas, as the spec's explode=false); the others take the first. */
typedef struct api_telemetry_param {
    const char *name, *value;
} api_telemetry_param_t;

typedef enum api_telemetry_format {
    API_TELEMETRY_JSON,
    API_TELEMETRY_CSV,
} api_telemetry_format_t;

typedef struct api_telemetry_request api_telemetry_request_t;

/* Parses and validates the parameters into *out (in arena).  On
 * STRATA_EINVAL, err (errcap bytes, may be NULL) gets a message naming the
 * parameter: telemetryType missing or unknown; groupBy with an unknown or
 * repeated key, more than 2 keys (more than 1 for PENDING_TIME_DISTRIBUTION,
 * whose first group is PendingTime); filterByPhases with an unknown phase or
 * more than 10; clusterId not a uuid.  An empty value of an optional
 * parameter counts as absent.  STRATA_ENOMEM when the arena is exhausted. */
int api_telemetry_parse(const api_telemetry_param_t *params, size_t nparams, strata_arena_t *arena,
                        api_telemetry_request_t **out, char *err, size_t errcap);

/* 1 when an Accept header value asks for CSV: text/csv appears before any
 * application/json (q-values are not weighed).  NULL -> 0. */
int api_telemetry_wants_csv(const char *accept);

/* "application/json" or "text/csv; charset=utf-8" (as metrics and report
 * files). */
const char *api_telemetry_content_type(api_telemetry_format_t fmt);

/* Computes the answer for the tenant's non-deleted workloads at now_ms and
 * renders it: JSON (compact TelemetryResponse) or CSV (header = group keys,
 * DepartmentName/ProjectName after their ids, then value).  *body is
 * NUL-terminated, in arena; *len excludes the NUL.  Values are ordered by
 * their group values; only groups with at least one workload appear.
 * PENDING_TIME_DISTRIBUTION answers all 4 buckets (zeros included) for
 * every value of its other key that has a workload, and without groupBy
 * always.  Returns 0, STRATA_ENOTFOUND (clusterId names a cluster no
 * workload of the tenant ever carried, deleted ones included),
 * STRATA_EINVAL (NULL argument) or STRATA_ENOMEM. */
int api_telemetry_compute(api_registry_t *reg, int32_t tenant_id, const api_telemetry_request_t *req,
                          int64_t now_ms, api_telemetry_format_t fmt, strata_arena_t *arena, char **body,
                          size_t *len);

#endif
