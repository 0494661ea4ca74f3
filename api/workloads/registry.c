/*
 * registry.c: the workload registry's state and what ingest feeds it (see
 * registry.h for the contract, registry_internal.h for the state and the
 * other files).
 *
 *   - the label, metric and phase tables observe() reads series through;
 *   - lifecycle: new, free, the tenant map;
 *   - observe: folds one accepted series write into the tenant's state.
 *
 * Joins: a pod links to its workload through runai_pod_info's workload_id;
 * a GPU series links either directly (workload_id label) or through its
 * (namespace, pod) to a pod record, created as a placeholder if the pod's
 * info has not arrived yet, so arrival order never matters.  Container
 * resource series join the same way: through (namespace, pod) when they
 * carry both, else directly by workload_id.
 */
#include "registry_internal.h"

#include <ctype.h>

#include "strata_err.h"

#define DEFAULT_STALENESS_MS  (5 * 60 * 1000)
#define DEFAULT_IDLE_AFTER_MS (5 * 60 * 1000)
#define PHASE_RUNS_MAX        64

static const sstate_t SSTATE_INIT = { TMIN, 0, TMAX };

/* ---- small helpers ---------------------------------------------------------- */

static int streq_n(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* 1 for "__name__"; other names seldom start with '_', so this rarely
 * gets as far as a comparison (it ran for every label of every series fed). */
static inline int is_name_label(const char *s) { return s[0] == '_' && strcmp(s, "__name__") == 0; }

/* Replaces *slot with a copy of v (NULL clears) unless it is already equal,
 * so a steady scrape does not churn the allocator. */
static int set_str(char **slot, const char *v)
{
    if (streq_n(*slot, v)) return 0;
    char *c = NULL;
    if (v && !(c = strdup(v))) {
        log_enomem("label value");
        return STRATA_ENOMEM;
    }
    free(*slot);
    *slot = c;
    return 0;
}

/* ---- label and metric tables ---------------------------------------------- */

static const char *const LABEL_NAMES[L_COUNT] = {
#define X(id, s) s,
    LABELS(X)
#undef X
};

/* The info labels a workload keeps (latest values). */
static const enum label_id INFO_LABELS[] = {
    L_WORKLOAD_NAME, L_WORKLOAD_TYPE, L_CATEGORY,     L_PROJECT_ID,     L_PROJECT_NAME,   L_DEPT_ID,
    L_DEPT_NAME,     L_CLUSTER_ID,    L_NAMESPACE,    L_SUBMITTED_BY,   L_PRIORITY_CLASS, L_PRIORITY,
    L_REQUESTED_NP,  L_CURRENT_NP,    L_CREATED_AT,   L_DIST_FW,        L_AI_APP_ID,      L_AI_APP_NAME,
    L_IMAGE,         L_SOURCE,        L_GPU_REQ_TYPE, L_REQUESTED_PODS, L_K8S_PHASE,      L_ACT_DELETE,
    L_ACT_SUSPEND,   L_REQ_PODS_MIN,  L_REQ_PODS_MAX, L_PARALLELISM,    L_COMPLETIONS,
};
#define N_INFO_LABELS (sizeof INFO_LABELS / sizeof INFO_LABELS[0])

static const enum label_id EP_LABELS[EP_NF] = { L_HOST, L_PORT, L_PATH, L_PROTOCOL, L_URL, L_TLS };

static const enum label_id PS_LABELS[PS_NF] = { L_NODEPOOL, L_PHASE_REASON, L_REASON, L_ORG_TYPE,
                                                L_USER_MESSAGE };

static const enum label_id EL_LABELS[EL_NF] = { L_NAME,       L_HIERARCHY,   L_PARENT_ID,
                                                L_CREATED_AT, L_K8S_UID,     L_K8S_NAME,
                                                L_K8S_GROUP,  L_K8S_VERSION, L_K8S_KIND };

/* Label name -> index through a small open-addressing table (built once):
 * one pass over the name and usually one comparison, where a binary search
 * took about six strcmp per label of every series fed. */
#define LABEL_SLOTS 512
static int16_t label_slots[LABEL_SLOTS]; /* index + 1, 0 = empty */
static pthread_once_t label_once = PTHREAD_ONCE_INIT;

static uint32_t label_hash(const char *s, size_t *len)
{
    uint32_t h = 2166136261u;
    size_t n = 0;
    for (; s[n]; n++) h = (h ^ (uint8_t)s[n]) * 16777619u;
    *len = n;
    return h ^ (h >> 15);
}

static size_t label_lens[L_COUNT]; /* strlen(LABEL_NAMES[i]) */

static void label_table_build(void)
{
    for (int i = 0; i < L_COUNT; i++) {
        size_t n;
        uint32_t k = label_hash(LABEL_NAMES[i], &n) & (LABEL_SLOTS - 1);
        label_lens[i] = n;
        while (label_slots[k]) k = (k + 1) & (LABEL_SLOTS - 1);
        label_slots[k] = (int16_t)(i + 1);
    }
}

static int label_index(const char *name)
{
    pthread_once(&label_once, label_table_build);
    size_t n;
    uint32_t k = label_hash(name, &n) & (LABEL_SLOTS - 1);
    for (;; k = (k + 1) & (LABEL_SLOTS - 1)) {
        int v = label_slots[k];
        if (!v) return -1;
        /* the length is known from the hash pass: a memcmp, no strcmp */
        if (label_lens[v - 1] == n && memcmp(LABEL_NAMES[v - 1], name, n) == 0) return v - 1;
    }
}

enum metric {
    M_NONE,
    M_INFO,
    M_PHASE,
    M_ALLOC,
    M_MEMREQ,
    M_POD_INFO,
    M_ENDPOINT,
    M_ELEMENT,
    M_ELEMENTS_TOTAL,
    M_POD_PHASE,
    M_GPU_UTIL,
    M_WREQ,       /* runai_workload_requested_resource */
    M_COND,       /* runai_workload_condition */
    M_PSM,        /* runai_workload_pending_scheduling_message */
    M_CRES_REQ,   /* kube_pod_container_resource_requests */
    M_CRES_LIM,   /* kube_pod_container_resource_limits */
    M_POD_GPUMEM, /* runai_pod_gpu_memory_allocated_bytes */
};

/* A perfect hash in all but name: the length picks at most two candidates. */
static enum metric metric_of(const char *name)
{
    static const struct {
        const char *name;
        enum metric m;
    } tab[] = {
        { "runai_workload_info", M_INFO },
        { "runai_workload_phase", M_PHASE },
        { "runai_workload_gpu_allocation", M_ALLOC },
        { "runai_workload_gpu_memory_request_bytes", M_MEMREQ },
        { "runai_pod_info", M_POD_INFO },
        { "runai_workload_endpoint_info", M_ENDPOINT },
        { "runai_workload_element_info", M_ELEMENT },
        { "runai_workload_elements_total", M_ELEMENTS_TOTAL },
        { "kube_pod_status_phase", M_POD_PHASE },
        { "DCGM_FI_DEV_GPU_UTIL", M_GPU_UTIL },
        { "runai_workload_requested_resource", M_WREQ },
        { "runai_workload_condition", M_COND },
        { "runai_workload_pending_scheduling_message", M_PSM },
        { "kube_pod_container_resource_requests", M_CRES_REQ },
        { "kube_pod_container_resource_limits", M_CRES_LIM },
        { "runai_pod_gpu_memory_allocated_bytes", M_POD_GPUMEM },
    };
    size_t n = strlen(name);
    if (n < 14 || n > 41 || (name[0] != 'r' && name[0] != 'k' && name[0] != 'D')) return M_NONE;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].name) == n && memcmp(tab[i].name, name, n) == 0) return tab[i].m;
    return M_NONE;
}

/* The API's Phase enum, in the spec's order. */
const char *const reg_phases[] = {
    "Creating", "Initializing", "Resuming", "Pending", "Deleting",  "Running",     "Updating",
    "Stopped",  "Stopping",     "Degraded", "Failed",  "Completed", "Terminating", "Unknown",
};
_Static_assert(sizeof reg_phases / sizeof reg_phases[0] == NPHASE, "NPHASE");

static int phase_index(const char *s)
{
    for (int i = 0; i < NPHASE; i++)
        if (strcmp(reg_phases[i], s) == 0) return i;
    return -1;
}

/* A resource name: the agent's (gpu, gpu_memory, cpu, cpu_memory) or
 * kube-state-metrics' (nvidia_com_gpu, cpu, memory); -1 for any other. */
static int resource_index(const char *s, int ksm)
{
    if (!s) return -1;
    if (!strcmp(s, "cpu")) return RS_CPU;
    if (ksm) {
        if (!strcmp(s, "memory")) return RS_CPU_MEMORY;
        if (!strcmp(s, "nvidia_com_gpu") || !strcmp(s, "nvidia.com/gpu")) return RS_GPU;
        return -1;
    }
    if (!strcmp(s, "gpu")) return RS_GPU;
    if (!strcmp(s, "gpu_memory")) return RS_GPU_MEMORY;
    if (!strcmp(s, "cpu_memory")) return RS_CPU_MEMORY;
    return -1;
}

static int kind_index(const char *s)
{
    if (!s) return -1;
    return !strcmp(s, "request") ? RK_REQUEST : !strcmp(s, "limit") ? RK_LIMIT : -1;
}

/* ---- lifecycle -------------------------------------------------------------- */

void api_registry_options_init(api_registry_options_t *opts)
{
    opts->staleness_ms = DEFAULT_STALENESS_MS;
    opts->gpu_idle_after_ms = DEFAULT_IDLE_AFTER_MS;
}

int api_registry_new(const api_registry_options_t *opts, api_registry_t **out)
{
    *out = NULL;
    for (int i = 1; i < L_COUNT; i++) {
        if (strcmp(LABEL_NAMES[i - 1], LABEL_NAMES[i]) >= 0) {
            strata_error("registry: label table not sorted", "at=%s", LABEL_NAMES[i]);
            return STRATA_EINVAL;
        }
    }
    api_registry_t *r = calloc(1, sizeof *r);
    if (!r) {
        log_enomem("registry");
        return STRATA_ENOMEM;
    }
    api_registry_options_init(&r->opt);
    if (opts && opts->staleness_ms > 0) r->opt.staleness_ms = opts->staleness_ms;
    if (opts && opts->gpu_idle_after_ms > 0) r->opt.gpu_idle_after_ms = opts->gpu_idle_after_ms;
    if (pthread_rwlock_init(&r->lock, NULL) != 0) {
        free(r);
        return STRATA_ENOMEM;
    }
    *out = r;
    return 0;
}

static void nodepools_clear(nodepools_t *np)
{
    for (size_t i = 0; i < np->n; i++) free(np->v[i]);
    free(np->v);
    np->v = NULL;
    np->n = 0;
}

void reg_wl_free(wl_t *w)
{
    free(w->id);
    for (int i = 0; i < L_COUNT; i++) free(w->lab[i]);
    nodepools_clear(&w->requested);
    nodepools_clear(&w->current);
    free(w->runs);
    for (int i = 0; i < NPHASE; i++) {
        free(w->ph[i].message);
        free(w->ph[i].reason);
    }
    for (size_t i = 0; i < w->nconds; i++) {
        condition_t *c = &w->conds[i];
        free(c->type);
        free(c->status);
        free(c->reason);
        free(c->message);
    }
    free(w->conds);
    for (size_t i = 0; i < w->npsms; i++)
        for (int j = 0; j < PS_NF; j++) free(w->psms[i].f[j]);
    free(w->psms);
    for (size_t i = 0; i < w->neps; i++)
        for (int j = 0; j < EP_NF; j++) free(w->eps[i].f[j]);
    free(w->eps);
    free(w->els); /* the elements themselves belong to the tenant's map */
    cres_free(&w->res);
    free(w);
}

static void tenant_free(tenant_t *t)
{
    free(t->hs);
    for (size_t i = 0; i < t->wls.cap; i++)
        if (t->wls.b[i].v) reg_wl_free(t->wls.b[i].v);
    for (size_t i = 0; i < t->pods.cap; i++) {
        pod_t *p = t->pods.b[i].v;
        if (!p) continue;
        pod_free_res(p);
        free(p->key);
        free(p->node);
        free(p->nodepool);
        free(p);
    }
    for (size_t i = 0; i < t->gpus.cap; i++) {
        gpu_t *g = t->gpus.b[i].v;
        if (g) {
            free(g->key);
            free(g);
        }
    }
    for (size_t i = 0; i < t->els.cap; i++) {
        element_t *e = t->els.b[i].v;
        if (!e) continue;
        for (int j = 0; j < EL_NF; j++) free(e->f[j]);
        free(e->key);
        free(e);
    }
    free(t->wls.b);
    free(t->pods.b);
    free(t->gpus.b);
    free(t->els.b);
    free(t->wlv);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

void api_registry_free(api_registry_t *reg)
{
    if (!reg) return;
    for (size_t i = 0; i < reg->tenants.cap; i++)
        if (reg->tenants.b[i].v) tenant_free(reg->tenants.b[i].v);
    free(reg->tenants.b);
    pthread_rwlock_destroy(&reg->lock);
    free(reg);
}

tenant_t *reg_tenant_find(api_registry_t *reg, int32_t id)
{
    pthread_rwlock_rdlock(&reg->lock);
    tenant_t *t = bmap_get(&reg->tenants, (const char *)&id, sizeof id, hash_bytes(&id, sizeof id));
    pthread_rwlock_unlock(&reg->lock);
    return t;
}

/* Tenants are never freed before the registry, so the pointer outlives the lock. */
static int tenant_get(api_registry_t *reg, int32_t id, tenant_t **out)
{
    if ((*out = reg_tenant_find(reg, id))) return 0;
    uint64_t h = hash_bytes(&id, sizeof id);
    pthread_rwlock_wrlock(&reg->lock);
    tenant_t *t = bmap_get(&reg->tenants, (const char *)&id, sizeof id, h);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t || pthread_rwlock_init(&t->lock, NULL) != 0) {
            free(t);
            pthread_rwlock_unlock(&reg->lock);
            log_enomem("tenant");
            return STRATA_ENOMEM;
        }
        t->id = id;
        if (bmap_put(&reg->tenants, (const char *)&t->id, sizeof t->id, h, t)) {
            pthread_rwlock_destroy(&t->lock);
            free(t);
            pthread_rwlock_unlock(&reg->lock);
            return STRATA_ENOMEM;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    *out = t;
    return 0;
}

/* ---- observe ---------------------------------------------------------------- */

static wl_t *wl_get(tenant_t *t, const char *id)
{
    size_t n = strlen(id);
    uint64_t h = hash_bytes(id, n);
    wl_t *w = bmap_get(&t->wls, id, n, h);
    if (w) return w;
    if (t->nwl == t->capwl) {
        size_t nc = t->capwl ? t->capwl * 2 : 16;
        wl_t **nv = realloc(t->wlv, nc * sizeof *nv);
        if (!nv) {
            log_enomem("workload vector");
            return NULL;
        }
        t->wlv = nv;
        t->capwl = nc;
    }
    w = calloc(1, sizeof *w);
    if (!w || !(w->id = strdup(id))) {
        free(w);
        log_enomem("workload");
        return NULL;
    }
    w->info = w->alloc = w->memreq = w->elements_total = SSTATE_INIT;
    w->first_t = w->created_label = w->updated_t = w->k8s_phase_since = TMIN;
    for (int i = 0; i < RS_N; i++)
        for (int k = 0; k < RK_N; k++) w->req[i][k] = SSTATE_INIT;
    for (int i = 0; i < NPHASE; i++) {
        w->ph[i].s = SSTATE_INIT;
        w->ph[i].run_start = TMIN;
    }
    if (bmap_put(&t->wls, w->id, n, h, w)) {
        reg_wl_free(w);
        return NULL;
    }
    t->wlv[t->nwl++] = w;
    return w;
}

static pod_t *pod_get(tenant_t *t, const char *ns, const char *name, int create)
{
    size_t a = strlen(ns), b = strlen(name), n = a + b + 2;
    char stackbuf[256], *key = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!key) {
        log_enomem("pod key");
        return NULL;
    }
    memcpy(key, ns, a + 1);
    memcpy(key + a + 1, name, b + 1);
    uint64_t h = hash_bytes(key, n);
    pod_t *p = bmap_get(&t->pods, key, n, h);
    if (!p && create) {
        p = calloc(1, sizeof *p);
        if (!p || !(p->key = malloc(n))) {
            free(p);
            p = NULL;
            log_enomem("pod");
            goto out;
        }
        memcpy(p->key, key, n);
        p->klen = n;
        p->ns = p->key;
        p->name = p->key + a + 1;
        p->info = p->running = p->gpumem = SSTATE_INIT;
        p->first_t = TMIN;
        if (bmap_put(&t->pods, p->key, n, h, p)) {
            free(p->key);
            free(p);
            p = NULL;
        }
    }
out:
    if (key != stackbuf) free(key);
    return p;
}

static void pod_attach(pod_t *p, wl_t *w)
{
    if (p->wl == w) return;
    pod_unlink(p);
    p->wl = w;
    p->wl_next = w->pods;
    w->pods = p;
}

static int parse_nodepools(const char *s, nodepools_t *np)
{
    nodepools_clear(np);
    if (!s) return 0;
    size_t cap = 1;
    for (const char *c = s; *c; c++) cap += *c == ',';
    if (!(np->v = calloc(cap, sizeof *np->v))) {
        log_enomem("nodepools");
        return STRATA_ENOMEM;
    }
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b > a) {
            if (!(np->v[np->n] = strndup(a, (size_t)(b - a)))) {
                log_enomem("nodepool");
                return STRATA_ENOMEM;
            }
            np->n++;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* Takes the info labels of a sample newer than any seen; `ts` is the first
 * such sample of the write (when a changed k8s_phase took effect). */
static int wl_set_info_labels(wl_t *w, const char *const *lv, int64_t ts)
{
    int rc = 0;
    if (w->k8s_phase_since == TMIN || !streq_n(w->lab[L_K8S_PHASE], lv[L_K8S_PHASE])) w->k8s_phase_since = ts;
    for (size_t i = 0; i < N_INFO_LABELS; i++) {
        enum label_id id = INFO_LABELS[i];
        if (streq_n(w->lab[id], lv[id])) continue;
        if ((rc = set_str(&w->lab[id], lv[id]))) return rc;
        if (id == L_REQUESTED_NP && (rc = parse_nodepools(lv[id], &w->requested))) return rc;
        if (id == L_CURRENT_NP && (rc = parse_nodepools(lv[id], &w->current))) return rc;
        if (id == L_CREATED_AT) {
            int64_t ms;
            w->created_label = lv[id] && parse_time(lv[id], &ms) == 0 ? ms : TMIN;
        }
    }
    return 0;
}

static void wl_touch(wl_t *w, int64_t t)
{
    if (t > w->updated_t) w->updated_t = t;
}

/* Records that phase p has value 1 at t: starts a run of p unless the run in
 * force at t is already p.  Runs never repeat a phase back to back. */
static int phase_mark(wl_t *w, int p, int64_t t)
{
    size_t i = w->nruns;
    while (i > 0 && w->runs[i - 1].start > t) i--;
    /* runs[i-1] is the run in force at t (if any), runs[i] the next one */
    if (i > 0 && w->runs[i - 1].phase == p) return 0;
    if (i < w->nruns && w->runs[i].phase == p) {
        w->runs[i].start = t; /* the next run of p started earlier than we knew */
    } else {
        if (w->nruns == w->capruns) {
            size_t nc = w->capruns ? w->capruns * 2 : 4;
            phase_run_t *nr = realloc(w->runs, nc * sizeof *nr);
            if (!nr) {
                log_enomem("phase runs");
                return STRATA_ENOMEM;
            }
            w->runs = nr;
            w->capruns = nc;
        }
        memmove(&w->runs[i + 1], &w->runs[i], (w->nruns - i) * sizeof *w->runs);
        w->runs[i] = (phase_run_t){ t, p };
        w->nruns++;
    }
    /* The oldest runs are settled (their successor is known): fold them. */
    while (w->nruns > PHASE_RUNS_MAX) {
        w->folded_ms[w->runs[0].phase] += w->runs[1].start - w->runs[0].start;
        memmove(&w->runs[0], &w->runs[1], (w->nruns - 1) * sizeof *w->runs);
        w->nruns--;
    }
    for (size_t k = w->nruns; k > 0; k--)
        if (w->runs[k - 1].phase == p) {
            w->ph[p].run_start = w->runs[k - 1].start;
            break;
        }
    return 0;
}

/* The samples of a GPU series, fast path and slow path alike. */
static void feed_gpu(gpu_t *g, const tsdb_sample_t *samples, size_t nsamples, int64_t staleness)
{
    for (size_t i = 0; i < nsamples; i++) {
        int64_t ts = samples[i].t;
        double v = samples[i].v;
        if (tsdb_is_stale(v)) {
            st_stale(&g->s, ts);
            continue;
        }
        int was_zero = st_holds(&g->s, ts, staleness) && g->s.v == 0;
        if (!st_sample(&g->s, ts, v)) continue;
        if (v == 0) {
            if (!was_zero) g->zero_since = ts;
        } else
            g->zero_since = TMIN;
    }
}

/* The samples of a series kept as one state, touching w (may be NULL) on a
 * new newest sample; fast path and slow path alike. */
static void feed_st(sstate_t *st, wl_t *w, const tsdb_sample_t *samples, size_t nsamples)
{
    for (size_t i = 0; i < nsamples; i++) {
        if (tsdb_is_stale(samples[i].v))
            st_stale(st, samples[i].t);
        else if (st_sample(st, samples[i].t, samples[i].v) && w)
            wl_touch(w, samples[i].t);
    }
}

static int observe_gpu(tenant_t *t, const tsdb_label_t *labels, size_t nlabels, const char *const *lv,
                       const tsdb_sample_t *samples, size_t nsamples, int64_t staleness, reg_handle_t *hd)
{
    /* Identity: the whole label set but __name__, as name\0value\0...; the
     * lengths of the first labels are measured once and kept for the copy. */
    enum { NLEN = 32 };
    size_t n = 0, lens[2 * NLEN];
    for (size_t i = 0; i < nlabels; i++) {
        if (is_name_label(labels[i].name)) continue;
        size_t a = strlen(labels[i].name) + 1, b = strlen(labels[i].value) + 1;
        if (i < NLEN) {
            lens[2 * i] = a;
            lens[2 * i + 1] = b;
        }
        n += a + b;
    }
    char stackbuf[1024], *key = n <= sizeof stackbuf ? stackbuf : malloc(n ? n : 1);
    if (!key) {
        log_enomem("gpu key");
        return STRATA_ENOMEM;
    }
    size_t off = 0;
    for (size_t i = 0; i < nlabels; i++) {
        if (is_name_label(labels[i].name)) continue;
        size_t a = i < NLEN ? lens[2 * i] : strlen(labels[i].name) + 1,
               b = i < NLEN ? lens[2 * i + 1] : strlen(labels[i].value) + 1;
        memcpy(key + off, labels[i].name, a);
        off += a;
        memcpy(key + off, labels[i].value, b);
        off += b;
    }
    uint64_t h = hash_bytes(key, n);
    int rc = 0;
    gpu_t *g = bmap_get(&t->gpus, key, n, h);
    if (!g) {
        wl_t *w = NULL;
        pod_t *p = NULL;
        if (lv[L_WORKLOAD_ID])
            w = wl_get(t, lv[L_WORKLOAD_ID]);
        else
            p = pod_get(t, lv[L_NAMESPACE], lv[L_POD], 1);
        if (!w && !p) {
            rc = STRATA_ENOMEM;
            goto out;
        }
        g = calloc(1, sizeof *g);
        if (!g || !(g->key = malloc(n ? n : 1))) {
            free(g);
            rc = STRATA_ENOMEM;
            log_enomem("gpu");
            goto out;
        }
        memcpy(g->key, key, n);
        g->klen = n;
        g->s = SSTATE_INIT;
        g->zero_since = TMIN;
        if ((rc = bmap_put(&t->gpus, g->key, n, h, g))) {
            free(g->key);
            free(g);
            goto out;
        }
        gpu_t **head = w ? &w->gpus : &p->gpus;
        g->next = *head;
        *head = g;
    }
    feed_gpu(g, samples, nsamples, staleness);
    if (hd) *hd = (reg_handle_t){ 0, 1, g, NULL };
out:
    if (key != stackbuf) free(key);
    return rc;
}

/* The series for (container, resource, kind) in a pod's (or a workload's)
 * list, created on first sight. */
static cres_t *observe_cres_find(cres_t **head, const char *container, int res, int kind)
{
    for (cres_t *c = *head; c; c = c->next)
        if (c->res == res && c->kind == kind && !strcmp(c->container, container)) return c;
    cres_t *c = calloc(1, sizeof *c);
    if (!c || !(c->container = strdup(container))) {
        free(c);
        log_enomem("container resource");
        return NULL;
    }
    c->res = res;
    c->kind = kind;
    c->s = SSTATE_INIT;
    c->next = *head;
    *head = c;
    return c;
}

/* runai_workload_condition: one record per type, sorted by type; the newest
 * sample's labels win, and a changed status starts a new transition. */
static int observe_condition(wl_t *w, const char *const *lv, const tsdb_sample_t *samples, size_t nsamples)
{
    const char *type = lv[L_TYPE];
    size_t i = 0;
    while (i < w->nconds && strcmp(w->conds[i].type, type) < 0) i++;
    if (i == w->nconds || strcmp(w->conds[i].type, type) != 0) {
        condition_t *nc = realloc(w->conds, (w->nconds + 1) * sizeof *nc);
        if (!nc) {
            log_enomem("condition");
            return STRATA_ENOMEM;
        }
        w->conds = nc;
        memmove(&w->conds[i + 1], &w->conds[i], (w->nconds - i) * sizeof *nc);
        memset(&w->conds[i], 0, sizeof *nc);
        w->conds[i].s = SSTATE_INIT;
        w->conds[i].since = TMIN;
        w->nconds++;
        if (!(w->conds[i].type = strdup(type))) {
            log_enomem("condition");
            return STRATA_ENOMEM;
        }
    }
    condition_t *c = &w->conds[i];
    int64_t first_new = TMIN;
    for (size_t k = 0; k < nsamples; k++) {
        int64_t ts = samples[k].t;
        if (tsdb_is_stale(samples[k].v)) {
            st_stale(&c->s, ts);
            continue;
        }
        if (st_sample(&c->s, ts, samples[k].v)) {
            if (first_new == TMIN) first_new = ts;
            wl_touch(w, ts);
        }
    }
    if (first_new == TMIN) return 0;
    if (c->since == TMIN || !streq_n(c->status, lv[L_STATUS])) c->since = first_new;
    int rc = set_str(&c->status, lv[L_STATUS]);
    if (!rc) rc = set_str(&c->reason, lv[L_REASON]);
    return rc ? rc : set_str(&c->message, lv[L_MESSAGE]);
}

/* Feeds one series; when its samples need no label per sample, *h (if not
 * NULL) gets the handle the next writes of the series can take instead. */
static int observe_locked(api_registry_t *reg, tenant_t *t, enum metric m, const tsdb_label_t *labels,
                          size_t nlabels, const char *const *lv, const tsdb_sample_t *samples,
                          size_t nsamples, reg_handle_t *h)
{
    const int64_t stl = reg->opt.staleness_ms;
    if (m == M_GPU_UTIL) return observe_gpu(t, labels, nlabels, lv, samples, nsamples, stl, h);
    if (m == M_CRES_REQ || m == M_CRES_LIM) {
        /* joined through (namespace, pod) when it has them, else by workload_id */
        wl_t *w = NULL;
        pod_t *p = NULL;
        if (lv[L_NAMESPACE] && lv[L_POD])
            p = pod_get(t, lv[L_NAMESPACE], lv[L_POD], 1);
        else
            w = wl_get(t, lv[L_WORKLOAD_ID]);
        if (!p && !w) return STRATA_ENOMEM;
        cres_t *c = observe_cres_find(p ? &p->res : &w->res, lv[L_CONTAINER] ? lv[L_CONTAINER] : "",
                                      resource_index(lv[L_RESOURCE], 1),
                                      m == M_CRES_REQ ? RK_REQUEST : RK_LIMIT);
        if (!c) return STRATA_ENOMEM;
        feed_st(&c->s, w, samples, nsamples);
        if (h) *h = (reg_handle_t){ 0, 0, &c->s, w };
        return 0;
    }
    if (m == M_POD_PHASE || m == M_POD_GPUMEM) {
        pod_t *p = pod_get(t, lv[L_NAMESPACE], lv[L_POD], 1);
        if (!p) return STRATA_ENOMEM;
        sstate_t *ps = m == M_POD_PHASE ? &p->running : &p->gpumem;
        feed_st(ps, NULL, samples, nsamples);
        if (h) *h = (reg_handle_t){ 0, 0, ps, NULL };
        return 0;
    }
    wl_t *w = wl_get(t, lv[L_WORKLOAD_ID]);
    if (!w) return STRATA_ENOMEM;
    int newest = 0; /* some sample of this call became the series' newest */
    sstate_t *st = NULL;
    switch (m) {
    case M_INFO: {
        int64_t first_new = TMIN;
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            if (tsdb_is_stale(samples[i].v)) {
                st_stale(&w->info, ts);
                continue;
            }
            w->has_info = 1;
            if (w->first_t == TMIN || ts < w->first_t) w->first_t = ts;
            if (st_sample(&w->info, ts, samples[i].v)) {
                if (!newest) first_new = ts;
                newest = 1;
                wl_touch(w, ts);
            }
        }
        return newest ? wl_set_info_labels(w, lv, first_new) : 0;
    }
    case M_PHASE: {
        int p = phase_index(lv[L_PHASE]); /* valid: checked before locking */
        w->any_phase = 1;
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            double v = samples[i].v;
            if (tsdb_is_stale(v)) {
                st_stale(&w->ph[p].s, ts);
                continue;
            }
            if (!st_sample(&w->ph[p].s, ts, v)) continue;
            newest = 1;
            wl_touch(w, ts);
            if (v == 1) {
                int rc = phase_mark(w, p, ts);
                if (rc) return rc;
            }
        }
        if (!newest) return 0;
        int rc = set_str(&w->ph[p].message, lv[L_PHASE_MSG]);
        return rc ? rc : set_str(&w->ph[p].reason, lv[L_PHASE_REASON]);
    }
    case M_WREQ:
        st = &w->req[resource_index(lv[L_RESOURCE], 0)][kind_index(lv[L_KIND])]; /* checked before locking */
        break;
    case M_COND: return observe_condition(w, lv, samples, nsamples);
    case M_PSM: {
        psm_t *e = NULL;
        for (size_t i = 0; i < w->npsms && !e; i++) {
            int same = 1;
            for (int j = 0; j < PS_NF && same; j++) same = streq_n(w->psms[i].f[j], lv[PS_LABELS[j]]);
            if (same) e = &w->psms[i];
        }
        if (!e) {
            psm_t *ne = realloc(w->psms, (w->npsms + 1) * sizeof *ne);
            if (!ne) {
                log_enomem("pending scheduling message");
                return STRATA_ENOMEM;
            }
            w->psms = ne;
            e = &w->psms[w->npsms];
            memset(e, 0, sizeof *e);
            e->s = SSTATE_INIT;
            w->npsms++;
            for (int j = 0; j < PS_NF; j++)
                if (set_str(&e->f[j], lv[PS_LABELS[j]])) return STRATA_ENOMEM;
        }
        st = &e->s;
        break;
    }
    case M_ALLOC: st = &w->alloc; break;
    case M_MEMREQ: st = &w->memreq; break;
    case M_ELEMENTS_TOTAL: st = &w->elements_total; break;
    case M_POD_INFO: {
        pod_t *p = pod_get(t, lv[L_NAMESPACE], lv[L_POD], 1);
        if (!p) return STRATA_ENOMEM;
        pod_attach(p, w);
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            if (tsdb_is_stale(samples[i].v)) {
                st_stale(&p->info, ts);
                continue;
            }
            if (p->first_t == TMIN || ts < p->first_t) p->first_t = ts;
            newest |= st_sample(&p->info, ts, samples[i].v);
        }
        if (newest) {
            int rc = set_str(&p->node, lv[L_NODE]);
            return rc ? rc : set_str(&p->nodepool, lv[L_NODEPOOL]);
        }
        return 0;
    }
    case M_ENDPOINT: {
        endpoint_t *e = NULL;
        for (size_t i = 0; i < w->neps && !e; i++) {
            int same = 1;
            for (int j = 0; j < EP_NF && same; j++) same = streq_n(w->eps[i].f[j], lv[EP_LABELS[j]]);
            if (same) e = &w->eps[i];
        }
        if (!e) {
            endpoint_t *ne = realloc(w->eps, (w->neps + 1) * sizeof *ne);
            if (!ne) {
                log_enomem("endpoint");
                return STRATA_ENOMEM;
            }
            w->eps = ne;
            e = &w->eps[w->neps];
            memset(e, 0, sizeof *e);
            e->s = SSTATE_INIT;
            w->neps++;
            for (int j = 0; j < EP_NF; j++)
                if (set_str(&e->f[j], lv[EP_LABELS[j]])) return STRATA_ENOMEM;
        }
        st = &e->s;
        break;
    }
    case M_ELEMENT: {
        const char *wid = lv[L_WORKLOAD_ID], *eid = lv[L_ELEMENT_ID];
        size_t a = strlen(wid), b = strlen(eid), n = a + b + 2;
        char stackbuf[256], *key = n <= sizeof stackbuf ? stackbuf : malloc(n);
        if (!key) {
            log_enomem("element key");
            return STRATA_ENOMEM;
        }
        memcpy(key, wid, a + 1);
        memcpy(key + a + 1, eid, b + 1);
        uint64_t h = hash_bytes(key, n);
        element_t *e = bmap_get(&t->els, key, n, h);
        int rc = 0;
        if (!e) {
            if (w->nels == w->capels) {
                size_t nc = w->capels ? w->capels * 2 : 8;
                element_t **nv = realloc(w->els, nc * sizeof *nv);
                if (!nv) {
                    rc = STRATA_ENOMEM;
                    log_enomem("elements");
                    goto el_out;
                }
                w->els = nv;
                w->capels = nc;
            }
            e = calloc(1, sizeof *e);
            if (!e || !(e->key = malloc(n))) {
                free(e);
                e = NULL;
                rc = STRATA_ENOMEM;
                log_enomem("element");
                goto el_out;
            }
            memcpy(e->key, key, n);
            e->klen = n;
            e->id = e->key + a + 1;
            e->s = SSTATE_INIT;
            if ((rc = bmap_put(&t->els, e->key, n, h, e))) {
                free(e->key);
                free(e);
                e = NULL;
                goto el_out;
            }
            w->els[w->nels++] = e;
        }
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            if (tsdb_is_stale(samples[i].v)) {
                st_stale(&e->s, ts);
                continue;
            }
            if (st_sample(&e->s, ts, samples[i].v)) {
                newest = 1;
                wl_touch(w, ts);
            }
        }
        for (int j = 0; newest && j < EL_NF && !rc; j++) rc = set_str(&e->f[j], lv[EL_LABELS[j]]);
        if (newest && !rc) {
            e->level = el_parse_level(e->f[EL_LEVEL]);
            if (e->level) {
                e->level_warned = 0;
            } else if (!e->level_warned) {
                /* Kept, with a null level; counted and logged once per element. */
                e->level_warned = 1;
                t->bad_levels++;
                strata_warn("registry: element hierarchy_level missing or out of range 1..3",
                            "workload_id=%s element_id=%s hierarchy_level=\"%s\"", wid, eid,
                            e->f[EL_LEVEL] ? e->f[EL_LEVEL] : "");
            }
        }
    el_out:
        if (key != stackbuf) free(key);
        return rc;
    }
    default: return 0;
    }
    feed_st(st, w, samples, nsamples);
    /* a pending scheduling message's state moves when w->psms grows */
    if (h && m != M_PSM) *h = (reg_handle_t){ 0, 0, st, w };
    return 0;
}

/* The metric the registry reads this series as, with its labels in lv, or
 * M_NONE when it does not use the series.  A function of the labels alone. */
static enum metric classify(const tsdb_label_t *labels, size_t nlabels, const char **lv)
{
    enum metric m = M_NONE;
    for (size_t i = 0; i < nlabels; i++) {
        if (is_name_label(labels[i].name)) {
            m = metric_of(labels[i].value);
            break;
        }
    }
    if (m == M_NONE) return M_NONE;
    for (size_t i = 0; i < nlabels; i++) {
        int k = label_index(labels[i].name);
        if (k >= 0 && labels[i].value[0]) lv[k] = labels[i].value;
    }
    switch (m) {
    case M_GPU_UTIL:
        if (!lv[L_WORKLOAD_ID] && !(lv[L_NAMESPACE] && lv[L_POD])) return M_NONE;
        break;
    case M_POD_PHASE:
        if (!lv[L_NAMESPACE] || !lv[L_POD] || !lv[L_PHASE] || strcmp(lv[L_PHASE], "Running") != 0)
            return M_NONE;
        break;
    case M_POD_INFO:
        if (!lv[L_WORKLOAD_ID] || !lv[L_NAMESPACE] || !lv[L_POD]) return M_NONE;
        break;
    case M_PHASE:
        if (!lv[L_WORKLOAD_ID] || !lv[L_PHASE] || phase_index(lv[L_PHASE]) < 0) return M_NONE;
        break;
    case M_ELEMENT:
        if (!lv[L_WORKLOAD_ID] || !lv[L_ELEMENT_ID]) return M_NONE;
        break;
    case M_CRES_REQ:
    case M_CRES_LIM:
        if ((!lv[L_NAMESPACE] || !lv[L_POD]) && !lv[L_WORKLOAD_ID]) return M_NONE;
        if (resource_index(lv[L_RESOURCE], 1) < 0) return M_NONE;
        break;
    case M_POD_GPUMEM:
        if (!lv[L_NAMESPACE] || !lv[L_POD]) return M_NONE;
        break;
    case M_WREQ:
        if (!lv[L_WORKLOAD_ID] || resource_index(lv[L_RESOURCE], 0) < 0 || kind_index(lv[L_KIND]) < 0)
            return M_NONE;
        break;
    case M_COND:
        if (!lv[L_WORKLOAD_ID] || !lv[L_TYPE] || !lv[L_STATUS]) return M_NONE;
        break;
    default:
        if (!lv[L_WORKLOAD_ID]) return M_NONE;
    }
    return m;
}

int api_registry_uses_series(const tsdb_label_t *labels, size_t nlabels)
{
    const char *lv[L_COUNT] = { 0 };
    return labels && classify(labels, nlabels, lv) != M_NONE;
}

int api_registry_observe(api_registry_t *reg, int32_t tenant_id, const tsdb_label_t *labels, size_t nlabels,
                         const tsdb_sample_t *samples, size_t nsamples)
{
    if (nsamples == 0) return 0;
    const char *lv[L_COUNT] = { 0 };
    enum metric m = classify(labels, nlabels, lv);
    if (m == M_NONE) return 0;
    tenant_t *t;
    int rc = tenant_get(reg, tenant_id, &t);
    if (rc) return rc;
    pthread_rwlock_wrlock(&t->lock);
    rc = observe_locked(reg, t, m, labels, nlabels, lv, samples, nsamples, NULL);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* ---- series handles --------------------------------------------------------- */

static inline size_t handle_slot(uint32_t ref, size_t cap)
{
    return (size_t)(ref * UINT32_C(0x9e3779b1)) & (cap - 1);
}

static const reg_handle_t *handle_find(const tenant_t *t, uint32_t ref)
{
    if (!t->hcap) return NULL;
    for (size_t i = handle_slot(ref, t->hcap);; i = (i + 1) & (t->hcap - 1)) {
        const reg_handle_t *h = &t->hs[i];
        if (!h->ref) return NULL;
        if (h->ref == ref) return h;
    }
}

/* Best effort: without memory the series just keeps the slow path. */
static void handle_put(tenant_t *t, const reg_handle_t *h)
{
    if ((t->hcount + 1) * 4 > t->hcap * 3) {
        size_t nc = t->hcap ? t->hcap * 2 : 256;
        reg_handle_t *nv = calloc(nc, sizeof *nv);
        if (!nv) return;
        for (size_t j = 0; j < t->hcap; j++) {
            if (!t->hs[j].ref) continue;
            size_t i = handle_slot(t->hs[j].ref, nc);
            while (nv[i].ref) i = (i + 1) & (nc - 1);
            nv[i] = t->hs[j];
        }
        free(t->hs);
        t->hs = nv;
        t->hcap = nc;
    }
    size_t i = handle_slot(h->ref, t->hcap);
    while (t->hs[i].ref && t->hs[i].ref != h->ref) i = (i + 1) & (t->hcap - 1);
    if (!t->hs[i].ref) t->hcount++;
    t->hs[i] = *h;
}

void reg_handles_clear(tenant_t *t)
{
    free(t->hs);
    t->hs = NULL;
    t->hcap = t->hcount = 0;
}

size_t api_registry_handles(api_registry_t *reg, int32_t tenant_id)
{
    tenant_t *t = reg_tenant_find(reg, tenant_id);
    if (!t) return 0;
    pthread_rwlock_rdlock(&t->lock);
    size_t n = t->hcount;
    pthread_rwlock_unlock(&t->lock);
    return n;
}

int api_registry_observe_ref(api_registry_t *reg, int32_t tenant_id, uint32_t ref, const tsdb_label_t *labels,
                             size_t nlabels, const tsdb_sample_t *samples, size_t nsamples)
{
    if (nsamples == 0) return 0;
    if (!ref) return api_registry_observe(reg, tenant_id, labels, nlabels, samples, nsamples);
    tenant_t *t = reg_tenant_find(reg, tenant_id);
    if (t) {
        pthread_rwlock_wrlock(&t->lock);
        const reg_handle_t *h = handle_find(t, ref);
        if (h) {
            if (h->gpu)
                feed_gpu(h->target, samples, nsamples, reg->opt.staleness_ms);
            else
                feed_st(h->target, h->w, samples, nsamples);
            pthread_rwlock_unlock(&t->lock);
            return 0;
        }
        pthread_rwlock_unlock(&t->lock);
    }
    const char *lv[L_COUNT] = { 0 };
    enum metric m = classify(labels, nlabels, lv);
    if (m == M_NONE) return 0;
    int rc = tenant_get(reg, tenant_id, &t);
    if (rc) return rc;
    reg_handle_t h = { 0, 0, NULL, NULL };
    pthread_rwlock_wrlock(&t->lock);
    rc = observe_locked(reg, t, m, labels, nlabels, lv, samples, nsamples, &h);
    if (!rc && h.target) {
        h.ref = ref;
        handle_put(t, &h);
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}
