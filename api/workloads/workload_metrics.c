/*
 * workload_metrics.c: the registry's pods of a workload handed to the metrics
 * query (workload_metrics.h).
 */
#include "workload_metrics.h"

#include <stdio.h>
#include <string.h>

typedef struct pod_list {
    strata_arena_t *arena;
    api_metrics_pod_t *pods;
    size_t n, cap;
} pod_list_t;

static int collect_pod(const api_registry_pod_t *p, void *ctx)
{
    pod_list_t *l = ctx;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 16;
        api_metrics_pod_t *np = strata_arena_alloc(l->arena, nc * sizeof *np);
        if (!np) return STRATA_ENOMEM;
        if (l->n) memcpy(np, l->pods, l->n * sizeof *np);
        l->pods = np;
        l->cap = nc;
    }
    /* the registry's strings may go once its lock is released: copy them */
    api_metrics_pod_t *d = &l->pods[l->n];
    d->namespace_ = strata_arena_strdup(l->arena, p->namespace_);
    d->pod = strata_arena_strdup(l->arena, p->pod);
    d->node = strata_arena_strdup(l->arena, p->node);
    if (!d->namespace_ || !d->pod || !d->node) return STRATA_ENOMEM;
    d->first_ms = p->first_ms;
    d->end_ms = p->end_ms;
    l->n++;
    return 0;
}

int api_workload_metrics(const api_read_source_t *src, api_registry_t *reg, int32_t tenant_id,
                         const char *workload_id, const api_metrics_request_t *req,
                         const api_metrics_options_t *opts, strata_arena_t *arena,
                         api_metrics_response_t **out, char *err, size_t errcap)
{
    if (err && errcap) err[0] = 0;
    if (!workload_id || !arena) return STRATA_EINVAL;
    pod_list_t pods = { .arena = arena };
    char stored[256];
    if (reg) {
        /* the series carry the id as the data spells it; a uuid may be asked in any case */
        if (api_registry_stored_id(reg, tenant_id, workload_id, stored, sizeof stored) == 0)
            workload_id = stored;
        int rc = api_registry_foreach_pod(reg, tenant_id, workload_id, collect_pod, &pods);
        if (rc == STRATA_ENOTFOUND) {
            if (err && errcap) snprintf(err, errcap, "workload %.64s not found", workload_id);
            return rc;
        }
        if (rc) return rc;
    }
    return api_metrics_query(src, tenant_id, workload_id, pods.pods, pods.n, req, opts, arena, out, err,
                             errcap);
}
