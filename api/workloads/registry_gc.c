/*
 * registry_gc.c: the registry's housekeeping.  api_registry_stats() counts
 * what each tenant holds; api_registry_gc() forgets GPU series, pods,
 * elements, endpoints and workloads that ended at least retain_ms before
 * now, under each tenant's write lock in turn (docs/registry.md,
 * "Housekeeping").  Maps delete by backward shift (bytemap.c).
 */
#include "registry_internal.h"

void api_registry_stats(api_registry_t *reg, api_registry_stats_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->tenants.cap; i++) {
        tenant_t *t = reg->tenants.b[i].v;
        if (!t) continue;
        pthread_rwlock_rdlock(&t->lock);
        out->tenants++;
        out->workloads += t->wls.n;
        out->pods += t->pods.n;
        out->gpus += t->gpus.n;
        out->elements += t->els.n;
        out->bad_element_levels += t->bad_levels;
        pthread_rwlock_unlock(&t->lock);
    }
    pthread_rwlock_unlock(&reg->lock);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

static int64_t st_end_or_min(const sstate_t *s, int64_t stl) { return s->t == TMIN ? TMIN : st_end(s, stl); }

static void gpu_drop(tenant_t *t, gpu_t *g)
{
    bmap_del(&t->gpus, g->key, g->klen, hash_bytes(g->key, g->klen));
    free(g->key);
    free(g);
}

/* Drops the list's GPUs that ended by `before` (all of them when all != 0);
 * returns when the newest survivor ends. */
static int64_t gc_gpus(tenant_t *t, gpu_t **head, int64_t before, int64_t stl, int all)
{
    int64_t act = TMIN;
    for (gpu_t **gp = head; *gp;) {
        gpu_t *g = *gp;
        int64_t end = st_end_or_min(&g->s, stl);
        if (all || end <= before) {
            *gp = g->next;
            gpu_drop(t, g);
        } else {
            act = max64(act, end);
            gp = &g->next;
        }
    }
    return act;
}

static void pod_drop(tenant_t *t, pod_t *p)
{
    pod_unlink(p);
    gc_gpus(t, &p->gpus, 0, 0, 1);
    bmap_del(&t->pods, p->key, p->klen, hash_bytes(p->key, p->klen));
    pod_free_res(p);
    free(p->key);
    free(p->node);
    free(p->nodepool);
    free(p);
}

static void element_drop(tenant_t *t, element_t *e)
{
    bmap_del(&t->els, e->key, e->klen, hash_bytes(e->key, e->klen));
    for (int j = 0; j < EL_NF; j++) free(e->f[j]);
    free(e->key);
    free(e);
}

static void wl_drop(tenant_t *t, wl_t *w)
{
    for (pod_t *p = w->pods, *next; p; p = next) {
        next = p->wl_next;
        p->wl = NULL;
        p->wl_next = NULL;
    }
    w->pods = NULL;
    gc_gpus(t, &w->gpus, 0, 0, 1);
    for (size_t i = 0; i < w->nels; i++) { element_drop(t, w->els[i]); }
    size_t n = strlen(w->id);
    bmap_del(&t->wls, w->id, n, hash_bytes(w->id, n));
    reg_wl_free(w);
}

static int gc_tenant(tenant_t *t, int64_t before, int64_t stl, size_t *dropped)
{
    reg_handles_clear(t); /* what they point at may go below */
    /* Pods first (their GPUs with them), collected before any map shifts. */
    pod_t **pods = t->pods.n ? malloc(t->pods.n * sizeof *pods) : NULL;
    if (t->pods.n && !pods) {
        log_enomem("gc");
        return STRATA_ENOMEM;
    }
    size_t np = 0;
    for (size_t i = 0; i < t->pods.cap; i++) {
        pod_t *p = t->pods.b[i].v;
        if (!p) continue;
        int64_t act = gc_gpus(t, &p->gpus, before, stl, 0);
        act = max64(act, st_end_or_min(&p->info, stl));
        act = max64(act, st_end_or_min(&p->running, stl));
        act = max64(act, st_end_or_min(&p->gpumem, stl));
        if (act <= before) pods[np++] = p;
    }
    for (size_t i = 0; i < np; i++) pod_drop(t, pods[i]);
    free(pods);

    size_t keep = 0;
    for (size_t i = 0; i < t->nwl; i++) {
        wl_t *w = t->wlv[i];
        int64_t act = gc_gpus(t, &w->gpus, before, stl, 0);
        if (w->has_info) {
            act = max64(act, st_end(&w->info, stl));
        } else {
            /* known only from phase, allocation, ... series: the newest of them */
            if (w->updated_t != TMIN) act = max64(act, w->updated_t + stl);
            for (const pod_t *p = w->pods; p; p = p->wl_next) act = max64(act, st_end_or_min(&p->info, stl));
        }
        if (act <= before) {
            wl_drop(t, w);
            (*dropped)++;
            continue;
        }
        t->wlv[keep++] = w;
        /* a live workload's elements and endpoints that went away */
        size_t ke = 0;
        for (size_t k = 0; k < w->nels; k++) {
            element_t *e = w->els[k];
            if (st_end_or_min(&e->s, stl) > before)
                w->els[ke++] = e;
            else
                element_drop(t, e);
        }
        w->nels = ke;
        size_t kp = 0;
        for (size_t k = 0; k < w->neps; k++) {
            if (st_end_or_min(&w->eps[k].s, stl) > before) {
                w->eps[kp++] = w->eps[k];
                continue;
            }
            for (int j = 0; j < EP_NF; j++) free(w->eps[k].f[j]);
        }
        w->neps = kp;
    }
    t->nwl = keep;
    return 0;
}

int api_registry_gc(api_registry_t *reg, int64_t now_ms, int64_t retain_ms, size_t *dropped)
{
    size_t n = 0;
    int rc = 0;
    if (retain_ms < 0) retain_ms = 0;
    pthread_rwlock_rdlock(&reg->lock);
    for (size_t i = 0; i < reg->tenants.cap && !rc; i++) {
        tenant_t *t = reg->tenants.b[i].v;
        if (!t) continue;
        pthread_rwlock_wrlock(&t->lock);
        rc = gc_tenant(t, now_ms - retain_ms, reg->opt.staleness_ms, &n);
        pthread_rwlock_unlock(&t->lock);
    }
    pthread_rwlock_unlock(&reg->lock);
    if (dropped) *dropped = n;
    return rc;
}
