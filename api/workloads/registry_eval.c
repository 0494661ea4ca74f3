/*
 * registry_eval.c: a workload's derived fields at one instant (reg_eval):
 * deletion, current phase and its start, phase totals, running pods, idle
 * GPUs and idle allocation, priority.  docs/registry.md, "Derived fields",
 * states each rule; the holding rule is st_holds() in registry_internal.h.
 * Nothing here reads the clock or writes state: callers hold the tenant's
 * read lock.
 */
#include "registry_internal.h"

static void count_gpus(const gpu_t *g, int64_t now, int64_t stl, int64_t idle_after, int *reporting,
                       int *idle)
{
    for (; g; g = g->next) {
        if (!st_holds(&g->s, now, stl)) continue;
        (*reporting)++;
        if (g->s.v == 0 && g->zero_since != TMIN && now - g->zero_since >= idle_after) (*idle)++;
    }
}

void reg_eval(const api_registry_t *reg, const wl_t *w, int64_t now, view_t *v)
{
    const int64_t stl = reg->opt.staleness_ms;
    memset(v, 0, sizeof *v);
    v->w = w;
    int64_t end = st_end(&w->info, stl);
    v->deleted = end <= now;
    v->deleted_at = v->deleted ? end : TMIN;
    v->at = v->deleted ? end - 1 : now;
    v->created_at = w->created_label != TMIN ? w->created_label : w->first_t;

    /* Current phase: the latest value is 1; a holding series beats one that
     * ended, then the most recent run wins. */
    int best = -1, best_hold = 0;
    for (int p = 0; p < NPHASE; p++) {
        const sstate_t *s = &w->ph[p].s;
        if (s->t == TMIN || s->v != 1) continue;
        int hold = st_holds(s, now, stl);
        if (best < 0 || hold > best_hold ||
            (hold == best_hold &&
             (w->ph[p].run_start > w->ph[best].run_start ||
              (w->ph[p].run_start == w->ph[best].run_start && s->t > w->ph[best].s.t)))) {
            best = p;
            best_hold = hold;
        }
    }
    if (best >= 0) {
        v->phase = best;
        v->phase_updated_at = w->ph[best].run_start;
    } else if (w->nruns) {
        v->phase = w->runs[w->nruns - 1].phase;
        v->phase_updated_at = w->runs[w->nruns - 1].start;
    } else {
        v->phase = PH_UNKNOWN;
        v->phase_updated_at = v->created_at;
    }
    v->completed_at = v->phase == PH_COMPLETED || v->phase == PH_FAILED ? v->phase_updated_at : TMIN;

    /* Each run lasts until the next run starts, or until now (the deletion
     * time for a deleted workload). */
    v->has_totals = w->any_phase;
    int64_t cap = v->deleted && end < now ? end : now;
    int64_t tot_pending = w->folded_ms[PH_PENDING], tot_running = w->folded_ms[PH_RUNNING];
    for (size_t i = 0; i < w->nruns; i++) {
        int64_t s = w->runs[i].start, e = i + 1 < w->nruns ? w->runs[i + 1].start : cap;
        if (e > cap) e = cap;
        if (e <= s) continue;
        if (w->runs[i].phase == PH_PENDING)
            tot_pending += e - s;
        else if (w->runs[i].phase == PH_RUNNING)
            tot_running += e - s;
    }
    v->pending_s = tot_pending / 1000;
    v->running_s = tot_running / 1000;

    int reporting = 0, idle = 0;
    for (const pod_t *p = w->pods; p; p = p->wl_next) {
        int running = st_holds(&p->info, now, stl) && st_holds(&p->running, now, stl) && p->running.v == 1;
        if (running) v->running_pods++;
        /* Requests and limits of the pod's containers: summed over the pods
         * present at now, and the requests over the running ones. */
        if (st_holds(&p->info, now, stl)) {
            for (const cres_t *c = p->res; c; c = c->next) {
                if (!st_holds(&c->s, now, stl)) continue;
                v->has_preq[c->res][c->kind] = 1;
                v->preq[c->res][c->kind] += c->s.v;
            }
        }
        if (running) {
            for (const cres_t *c = p->res; c; c = c->next) {
                if (c->kind != RK_REQUEST || !st_holds(&c->s, now, stl)) continue;
                v->has_areq[c->res] = 1;
                v->areq[c->res] += c->s.v;
            }
            /* the GPU memory the agent allocated to the running pod */
            if (st_holds(&p->gpumem, now, stl)) {
                v->has_areq[RS_GPU_MEMORY] = 1;
                v->areq[RS_GPU_MEMORY] += p->gpumem.v;
            }
        }
        count_gpus(p->gpus, now, stl, reg->opt.gpu_idle_after_ms, &reporting, &idle);
    }
    /* Container resource series joined by workload_id alone: the workload's
     * pods' requests, and allocated while any of its pods runs. */
    for (const cres_t *c = w->res; c; c = c->next) {
        if (!st_holds(&c->s, now, stl)) continue;
        v->has_preq[c->res][c->kind] = 1;
        v->preq[c->res][c->kind] += c->s.v;
        if (c->kind == RK_REQUEST && v->running_pods) {
            v->has_areq[c->res] = 1;
            v->areq[c->res] += c->s.v;
        }
    }
    count_gpus(w->gpus, now, stl, reg->opt.gpu_idle_after_ms, &reporting, &idle);

    if (w->alloc.t != TMIN) {
        v->has_alloc = 1;
        v->alloc = st_holds(&w->alloc, now, stl) ? w->alloc.v : 0;
    }
    if (st_holds(&w->memreq, now, stl)) {
        v->has_memreq = 1;
        v->memreq = w->memreq.v;
    }
    for (int i = 0; i < RS_N; i++)
        for (int k = 0; k < RK_N; k++)
            if (st_holds(&w->req[i][k], now, stl)) {
                v->has_wreq[i][k] = 1;
                v->wreq[i][k] = w->req[i][k].v;
            }
    /* runai_workload_gpu_memory_request_bytes is the gpuMemory request too. */
    if (v->has_memreq) {
        v->has_wreq[RS_GPU_MEMORY][RK_REQUEST] = 1;
        v->wreq[RS_GPU_MEMORY][RK_REQUEST] = v->memreq;
    }
    v->idle_gpus = idle;
    v->idle_alloc = reporting ? v->alloc * idle / reporting : 0;

    const char *pr = w->lab[L_PRIORITY];
    if (pr) {
        char *e;
        long long x = strtoll(pr, &e, 10);
        if (e != pr && !*e && x >= INT32_MIN && x <= INT32_MAX) {
            v->has_priority = 1;
            v->priority = x;
        }
    }
}
