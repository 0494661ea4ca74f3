/*
 * registry.h: the workload registry, what strata knows about Run:ai workloads.
 *
 * Ingest hands every accepted series write to api_registry_observe(); the
 * registry keeps, per tenant and per workload, the state docs/registry.md
 * ("Input") derives from the cluster agent's series (runai_workload_info,
 * _phase, _gpu_allocation, _gpu_memory_request_bytes, _endpoint_info,
 * _element_info, _elements_total, runai_pod_info,
 * kube_pod_status_phase{phase="Running"}, DCGM_FI_DEV_GPU_UTIL).  It keeps only the newest edge of each series (plus
 * the phase history), so memory grows with workloads, pods and GPUs, never
 * with samples.  Everything that depends on time (deletedAt, current phase,
 * running pods, idle GPUs, phase totals) is evaluated at query time against
 * the caller's `now`, so answers are deterministic for tests.
 *
 * Queries render the Run:ai Workloads API JSON bodies into the caller's
 * arena (docs/registry.md, "Derived fields" and "Queries", has the rules).
 *
 * Thread-safety: every function may be called from several threads at once.
 * Tenants are looked up under a registry-wide rwlock held only for the
 * lookup; each tenant has its own rwlock: observe takes it for writing,
 * queries for reading.  So writers of different tenants never contend, and
 * writers of one tenant serialise on short O(labels + samples) sections.
 * Callbacks of the foreach functions run under the tenant's read lock: they
 * must not call api_registry_observe() (deadlock) and should be quick.
 */
#ifndef API_REGISTRY_H
#define API_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "strata_arena.h"
#include "strata_err.h"
#include "read.h"
#include "tsdb.h"

typedef struct api_registry api_registry_t;

typedef struct api_registry_options {
    int64_t staleness_ms;      /* a sample holds this long at most; default 5m */
    int64_t gpu_idle_after_ms; /* a GPU at 0% this long is idle; default 5m */
} api_registry_options_t;

/* Fills opts with the defaults above. */
void api_registry_options_init(api_registry_options_t *opts);

/* opts may be NULL (defaults); a field <= 0 takes its default. */
int api_registry_new(const api_registry_options_t *opts, api_registry_t **out);
/* NULL is a no-op. */
void api_registry_free(api_registry_t *reg);

/* Feeds one accepted series write: labels sorted by name (extra labels, the
 * tenant label included, are ignored), samples ascending.  Series whose
 * __name__ the registry does not use cost one scan for __name__ and a table
 * lookup, no lock.  Samples at or before the newest one the registry has
 * seen for that series are ignored (it tracks the forward edge only).
 * Returns 0 or STRATA_ENOMEM. */
int api_registry_observe(api_registry_t *reg, int32_t tenant_id, const tsdb_label_t *labels, size_t nlabels,
                         const tsdb_sample_t *samples, size_t nsamples);
/* api_registry_observe for a series the store knows by ref (nonzero, never
 * naming another label set while the registry lives; 0 = unknown): the
 * first write finds the state the series feeds, and later writes of a
 * series whose samples need no label per sample (GPU utilisation, pod
 * phase and GPU memory, container resources, allocation, memory request,
 * elements total, requested resources) go straight to it, with no label
 * read.  The registry ends in the same state either way.  Every
 * api_registry_gc() forgets all handles first (docs/registry.md). */
int api_registry_observe_ref(api_registry_t *reg, int32_t tenant_id, uint32_t ref, const tsdb_label_t *labels,
                             size_t nlabels, const tsdb_sample_t *samples, size_t nsamples);
/* How many series handles the tenant holds (tests, stats). */
size_t api_registry_handles(api_registry_t *reg, int32_t tenant_id);
/* 1 when api_registry_observe uses the series (labels as it takes them): one
 * of the few Run:ai, kube-state-metrics and DCGM names of docs/registry.md
 * with the labels the registry reads it by; else 0.  A function of the
 * labels alone: ingest asks once per series and feeds only those. */
int api_registry_uses_series(const tsdb_label_t *labels, size_t nlabels);

/* ---- queries -------------------------------------------------------------- */

#define API_REGISTRY_MAX_FILTERS   10
#define API_REGISTRY_DEFAULT_LIMIT 50
#define API_REGISTRY_MAX_LIMIT     500

/* GET /workloads parameters, already split by the HTTP layer. */
typedef struct api_registry_query {
    const char *const *filter_by; /* terms "field<op>value", op one of == != <= >= =@ !@ =^ =$ */
    size_t nfilter;               /* at most API_REGISTRY_MAX_FILTERS */
    const char *sort_by;          /* a WorkloadsSort field, NULL = createdAt */
    const char *sort_order;       /* "asc" (default, NULL) or "desc" */
    int64_t offset;               /* >= 0 */
    int64_t limit;                /* 1..500; 0 = default 50 */
    const char *search;           /* case-insensitive substring of name, projectName,
                                     departmentName; NULL or "" = none */
    int deleted;                  /* 1: only deleted workloads; 0: only live ones */
} api_registry_query_t;

void api_registry_query_init(api_registry_query_t *q);

/* A rendered answer.  json is NUL-terminated and lives in the caller's arena.
 * On STRATA_EINVAL, error names the offending parameter or filter term (for
 * the 400 body's message); it is NULL otherwise. */
typedef struct api_registry_result {
    char *json;
    size_t len;
    int64_t total; /* list: workloads matching (before paging); count: the count */
    const char *error;
} api_registry_result_t;

/* GET /workloads: {"workloads": [Workload...], "next": N} (next only when
 * more remain).  STRATA_EINVAL for a bad filter term, sortBy, sortOrder,
 * offset or limit. */
int api_registry_list(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q, int64_t now_ms,
                      strata_arena_t *arena, api_registry_result_t *out);

/* GET /workloads/count: {"count": N}; offset, limit and sort are ignored. */
int api_registry_count(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q, int64_t now_ms,
                       strata_arena_t *arena, api_registry_result_t *out);

/* GET /workloads/{id}: a WorkloadDetailed, deleted ones included.
 * STRATA_ENOTFOUND when the tenant has no such workload. */
int api_registry_get(api_registry_t *reg, int32_t tenant_id, const char *workload_id, int64_t now_ms,
                     strata_arena_t *arena, api_registry_result_t *out);

/* GET /workloads/{id}/endpoints: {"endpoints": [...]}. */
int api_registry_endpoints(api_registry_t *reg, int32_t tenant_id, const char *workload_id, int64_t now_ms,
                           strata_arena_t *arena, api_registry_result_t *out);

/* GET /workloads/{id}/elements: {"elements": [...], "next": N}, ordered by
 * hierarchy level, then name, then id.  limit 0 = default 50; STRATA_EINVAL
 * for offset < 0 or limit outside 1..500. */
int api_registry_elements(api_registry_t *reg, int32_t tenant_id, const char *workload_id, int64_t offset,
                          int64_t limit, int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out);

/* GET /workloads/{id}/elements/count:
 * {"totalElementsCount": N, "storedElementsCount": M}. */
int api_registry_elements_count(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                                int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out);

/* 1 when the tenant has a workload with this id (deleted or not), else 0.
 * Every by-id entry point finds a uuid id in any letter case (RFC 4122). */
int api_registry_contains(api_registry_t *reg, int32_t tenant_id, const char *workload_id);

/* The workload's id as stored (the data's spelling) for an id that names it
 * in any case: copied into buf (cap >= 37 holds any uuid).  0, or
 * STRATA_ENOTFOUND (no such workload; id longer than cap - 1). */
int api_registry_stored_id(api_registry_t *reg, int32_t tenant_id, const char *workload_id, char *buf,
                           size_t cap);

/* 1 when any workload of the tenant the registry remembers (deleted ones
 * included, until gc) carries this cluster id, compared case-insensitively
 * (a workload without cluster_id has the nil uuid), else 0. */
int api_registry_knows_cluster(api_registry_t *reg, int32_t tenant_id, const char *cluster_id);

/* ---- iteration (telemetry, metrics) --------------------------------------- */

/* One workload as telemetry sees it.  Strings are never NULL ("" when the
 * label is missing) and valid only during the callback. */
typedef struct api_registry_summary {
    const char *id, *name, *type, *category, *phase;
    const char *cluster_id, *department_id, *department_name, *project_id, *project_name;
    const char *const *requested_nodepools;
    size_t nrequested_nodepools;
    const char *const *current_nodepools;
    size_t ncurrent_nodepools;
    int64_t created_at_ms;
    int64_t phase_updated_at_ms;
    double allocated_gpus; /* 0 when no allocation holds at now */
    double idle_allocated_gpus;
} api_registry_summary_t;

/* A nonzero return from the callback stops the walk and is returned. */
typedef int (*api_registry_summary_fn)(const api_registry_summary_t *w, void *ctx);

/* Calls fn for each of the tenant's non-deleted workloads at now (in no
 * particular order). */
int api_registry_foreach(api_registry_t *reg, int32_t tenant_id, int64_t now_ms, api_registry_summary_fn fn,
                         void *ctx);

/* One pod of a workload (from runai_pod_info): the series of (namespace,
 * pod) belong to the workload while the pod is active, i.e. over
 * [first_ms, end_ms). */
typedef struct api_registry_pod {
    const char *namespace_, *pod, *node, *nodepool;
    int64_t first_ms; /* first runai_pod_info sample seen */
    int64_t last_ms;  /* newest runai_pod_info sample */
    int64_t end_ms;   /* stale marker time, else last_ms + staleness */
} api_registry_pod_t;

typedef int (*api_registry_pod_fn)(const api_registry_pod_t *p, void *ctx);

/* Calls fn for every pod ever attached to the workload.  STRATA_ENOTFOUND
 * when the tenant has no such workload. */
int api_registry_foreach_pod(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                             api_registry_pod_fn fn, void *ctx);

/* ---- housekeeping ---------------------------------------------------------- */

/* What the registry holds, summed over tenants (for /metrics). */
typedef struct api_registry_stats {
    size_t tenants, workloads, pods, gpus, elements;
    uint64_t bad_element_levels; /* elements seen with a missing or out-of-range hierarchy_level */
} api_registry_stats_t;

void api_registry_stats(api_registry_t *reg, api_registry_stats_t *out);

/* Forgets what ended at least retain_ms before now: GPU series, pods (info,
 * Running status and GPUs all ended), and workloads (deleted, with their
 * elements and endpoints; a workload never seen in runai_workload_info once
 * all its series ended).  Until then deleted workloads stay listable with
 * deleted=true.  Call it periodically; it takes each tenant's write lock in
 * turn.  *dropped (may be NULL) = workloads forgotten. */
int api_registry_gc(api_registry_t *reg, int64_t now_ms, int64_t retain_ms, size_t *dropped);

/* Rebuilds what the registry knows from the store (at start-up, since the
 * registry lives in memory): feeds every stored series it uses, tenant taken
 * from ingest's tenant label, through api_registry_observe().  The workload
 * series (info, phase, allocation, pods, endpoints, elements, requested
 * resources, conditions, pending scheduling messages) are read over
 * [mint, maxt]; GPU utilisation, kube_pod_status_phase{phase="Running"}
 * and kube_pod_container_resource_requests/_limits only over the tail that
 * decides their state at maxt (staleness + gpu_idle_after), reaching a
 * further INGEST_MAX_FUTURE_MS back since callers pass now plus that
 * allowance as maxt.  Safe while ingest already feeds the registry: samples it
 * has seen are ignored.  *series (may be NULL) = series fed. */
int api_registry_replay(api_registry_t *reg, const api_read_source_t *src, int64_t mint, int64_t maxt,
                        size_t *series);

#endif
