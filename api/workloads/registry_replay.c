/*
 * registry_replay.c: api_registry_replay(), the rebuild of the in-memory
 * registry from the store at start-up.  It reads through the read seam
 * (api_read_select, read.h) and feeds every series to api_registry_observe(),
 * so replay and live ingest share one code path (docs/registry.md,
 * "Start-up: replay from the store").
 */
#include "registry_internal.h"

#include "ingest.h"

static int replay_select(api_registry_t *reg, const api_read_source_t *src, const tsdb_matcher_t *m,
                         size_t nm, int64_t mint, int64_t maxt, size_t *fed)
{
    api_read_set_t *set;
    int rc = api_read_select(src, 0, API_READ_ALL_TENANTS, NULL, m, nm, mint, maxt, &set);
    if (rc) {
        strata_error("registry: replay select failed", "err=\"%s\"", strata_strerror(rc));
        return rc;
    }
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const tsdb_sample_t *s;
        const char *tenant = NULL;
        for (size_t i = 0; i < nl && !tenant; i++)
            if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) tenant = l[i].value;
        if (!tenant) continue;
        char *end;
        long tid = strtol(tenant, &end, 10);
        if (end == tenant || *end || tid < INT32_MIN || tid > INT32_MAX) continue;
        if ((rc = api_read_set_samples(set, &s, &ns))) break;
        if ((rc = api_registry_observe(reg, (int32_t)tid, l, nl, s, ns))) break;
        (*fed)++;
    }
    api_read_set_free(set);
    if (rc < 0) strata_error("registry: replay failed", "err=\"%s\"", strata_strerror(rc));
    return rc < 0 ? rc : 0;
}

int api_registry_replay(api_registry_t *reg, const api_read_source_t *src, int64_t mint, int64_t maxt,
                        size_t *series)
{
    static const char workload_series[] =
        "runai_workload_info|runai_workload_phase|runai_workload_gpu_allocation|"
        "runai_workload_gpu_memory_request_bytes|runai_pod_info|runai_workload_endpoint_info|"
        "runai_workload_element_info|runai_workload_elements_total|runai_workload_requested_resource|"
        "runai_workload_condition|runai_workload_pending_scheduling_message";
    size_t fed = 0;
    const tsdb_matcher_t wl[] = { { TSDB_MATCH_RE, "__name__", workload_series } };
    const tsdb_matcher_t gpu[] = { { TSDB_MATCH_EQ, "__name__", "DCGM_FI_DEV_GPU_UTIL" } };
    const tsdb_matcher_t pod[] = { { TSDB_MATCH_EQ, "__name__", "kube_pod_status_phase" },
                                   { TSDB_MATCH_EQ, "phase", "Running" } };
    const tsdb_matcher_t res[] = {
        { TSDB_MATCH_RE, "__name__",
          "kube_pod_container_resource_requests|kube_pod_container_resource_limits|"
          "runai_pod_gpu_memory_allocated_bytes" }
    };
    /* A GPU at 0% over the whole tail has been at 0% for at least
     * gpu_idle_after at maxt, which is all the idle rule asks. */
    /* maxt is now plus the future a sample may carry (INGEST_MAX_FUTURE_MS):
     * the tails reach back from now, not from maxt */
    int64_t gpu_from = maxt - INGEST_MAX_FUTURE_MS - reg->opt.staleness_ms - reg->opt.gpu_idle_after_ms;
    int64_t pod_from = maxt - INGEST_MAX_FUTURE_MS - reg->opt.staleness_ms;
    int rc = replay_select(reg, src, wl, 1, mint, maxt, &fed);
    if (!rc) rc = replay_select(reg, src, gpu, 1, gpu_from > mint ? gpu_from : mint, maxt, &fed);
    if (!rc) rc = replay_select(reg, src, pod, 2, pod_from > mint ? pod_from : mint, maxt, &fed);
    if (!rc) rc = replay_select(reg, src, res, 1, pod_from > mint ? pod_from : mint, maxt, &fed);
    if (series) *series = fed;
    return rc;
}
