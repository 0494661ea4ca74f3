/*
 * registry.c: the workload registry (see registry.h for the contract).
 *
 * State per tenant: workloads (by workload_id), pods (by namespace+pod), GPU
 * utilisation series (by their full label set) and workload elements, each
 * in a hash map.  A series contributes only its newest edge: last real
 * sample (t, v) and the time of a stale marker after it (sstate below).  The
 * one piece of history kept is each workload's phase runs, folded into
 * per-phase totals once more than PHASE_RUNS_MAX accumulate.
 *
 * The holding rule (DESIGN 4): a value holds over [t, t + staleness) and a
 * stale marker ends it at once.  Query-time evaluation applies it against
 * the caller's `now`; nothing here reads the clock.
 *
 * Joins: a pod links to its workload through runai_pod_info's workload_id;
 * a GPU series links either directly (workload_id label) or through its
 * (namespace, pod) to a pod record, created as a placeholder if the pod's
 * info has not arrived yet, so arrival order never matters.
 */
#include "registry.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ingest.h"
#include "strata_fmt.h"
#include "strata_log.h"
#include "strata_time.h"

#define TMIN INT64_MIN
#define TMAX INT64_MAX
#define DEFAULT_STALENESS_MS (5 * 60 * 1000)
#define DEFAULT_IDLE_AFTER_MS (5 * 60 * 1000)
#define PHASE_RUNS_MAX 64

/* ---- small helpers ---------------------------------------------------------- */

static void log_enomem(const char *what)
{
    strata_error("registry: out of memory", "what=%s", what);
}

static int streq_n(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

/* Replaces *slot with a copy of v (NULL clears) unless it is already equal,
 * so a steady scrape does not churn the allocator. */
static int set_str(char **slot, const char *v)
{
    if (streq_n(*slot, v)) return 0;
    char *c = NULL;
    if (v && !(c = strdup(v))) { log_enomem("label value"); return STRATA_ENOMEM; }
    free(*slot);
    *slot = c;
    return 0;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ULL; }
    return h ^ (h >> 29);
}

/* ---- time and numbers ------------------------------------------------------------ */

/* RFC 3339 UTC with Z (strata_time's form); "" for years beyond 0000..9999. */
static int fmt_time(int64_t ms, char buf[STRATA_TIME_RFC3339_BUFSZ])
{
    return strata_time_format_rfc3339(ms, buf, STRATA_TIME_RFC3339_BUFSZ);
}

/* An RFC 3339 date-time, or a bare date (midnight UTC) as filters may use. */
static int parse_time(const char *s, int64_t *out)
{
    if (strlen(s) == 10) {
        char buf[24];
        snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
        return strata_time_parse_rfc3339(buf, out);
    }
    return strata_time_parse_rfc3339(s, out);
}

/* jansson prints every real of a document with one precision: the fewest
 * significant digits that still read back as d. */
static int real_precision(double d)
{
    char buf[32];
    for (int p = 1; p < 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, d);
        if (strtod(buf, NULL) == d) return p;
    }
    return 17;
}

/* ---- a byte-keyed open-addressing hash map ---------------------------------- */

/* Keys are owned by the values (the map stores pointers); no deletion. */
typedef struct bucket {
    uint64_t h;
    const char *k;
    size_t klen;
    void *v;
} bucket_t;

typedef struct bmap {
    bucket_t *b;
    size_t cap, n;
} bmap_t;

static void *bmap_get(const bmap_t *m, const char *k, size_t klen, uint64_t h)
{
    if (!m->cap) return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const bucket_t *b = &m->b[i];
        if (!b->v) return NULL;
        if (b->h == h && b->klen == klen && memcmp(b->k, k, klen) == 0) return b->v;
    }
}

/* Linear probing's backward-shift delete: no tombstones. */
static void bmap_del(bmap_t *m, const char *k, size_t klen, uint64_t h)
{
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const bucket_t *b = &m->b[i];
        if (!b->v) return;
        if (b->h == h && b->klen == klen && memcmp(b->k, k, klen) == 0) break;
    }
    m->b[i].v = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->b[j].v; j = (j + 1) & mask) {
        size_t home = m->b[j].h & mask;
        /* the entry at j may move into the hole at i unless its home lies
         * cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        m->b[i] = m->b[j];
        m->b[j].v = NULL;
        i = j;
    }
}

static int bmap_put(bmap_t *m, const char *k, size_t klen, uint64_t h, void *v)
{
    if ((m->n + 1) * 10 >= m->cap * 7) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        bucket_t *nb = calloc(ncap, sizeof *nb);
        if (!nb) { log_enomem("hash map"); return STRATA_ENOMEM; }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->b[i].v) continue;
            size_t j = m->b[i].h & (ncap - 1);
            while (nb[j].v) j = (j + 1) & (ncap - 1);
            nb[j] = m->b[i];
        }
        free(m->b);
        m->b = nb;
        m->cap = ncap;
    }
    size_t i = h & (m->cap - 1);
    while (m->b[i].v) i = (i + 1) & (m->cap - 1);
    m->b[i] = (bucket_t){h, k, klen, v};
    m->n++;
    return 0;
}

/* ---- series state: the newest edge of a series ------------------------------- */

typedef struct sstate {
    int64_t t;    /* newest real (non-stale) sample, TMIN = never */
    double v;
    int64_t end;  /* stale marker after t, TMAX = none */
} sstate_t;

static const sstate_t SSTATE_INIT = {TMIN, 0, TMAX};

/* 1 when (t, v) became the newest sample; older and equal ones are ignored. */
static int st_sample(sstate_t *s, int64_t t, double v)
{
    if (s->t != TMIN && t <= s->t) return 0;
    s->t = t;
    s->v = v;
    if (t >= s->end) s->end = TMAX;
    return 1;
}

static void st_stale(sstate_t *s, int64_t t)
{
    if (s->t != TMIN && t > s->t && t < s->end) s->end = t;
}

static int st_holds(const sstate_t *s, int64_t at, int64_t staleness)
{
    return s->t != TMIN && at - s->t < staleness && at < s->end;
}

/* When the series' presence ends: the stale marker, else t + staleness. */
static int64_t st_end(const sstate_t *s, int64_t staleness)
{
    return s->end != TMAX ? s->end : s->t + staleness;
}

/* ---- label and metric tables ---------------------------------------------- */

/* Every label name the registry reads, sorted by strcmp (checked at new()). */
#define LABELS(X)                                                                \
    X(L_AI_APP_ID, "ai_application_id") X(L_AI_APP_NAME, "ai_application_name") \
    X(L_CATEGORY, "category") X(L_CLUSTER_ID, "cluster_id")                     \
    X(L_CREATED_AT, "created_at") X(L_CURRENT_NP, "current_nodepools")          \
    X(L_DEPT_ID, "department_id") X(L_DEPT_NAME, "department_name")             \
    X(L_DIST_FW, "distributed_framework") X(L_ELEMENT_ID, "element_id")         \
    X(L_HIERARCHY, "hierarchy_level") X(L_HOST, "host") X(L_IMAGE, "image")     \
    X(L_K8S_GROUP, "k8s_group") X(L_K8S_KIND, "k8s_kind")                      \
    X(L_K8S_NAME, "k8s_name") X(L_K8S_UID, "k8s_uid")                          \
    X(L_K8S_VERSION, "k8s_version") X(L_NAME, "name")                          \
    X(L_NAMESPACE, "namespace") X(L_NODE, "node") X(L_NODEPOOL, "nodepool")     \
    X(L_PARENT_ID, "parent_id") X(L_PATH, "path") X(L_PHASE, "phase")           \
    X(L_POD, "pod") X(L_PORT, "port") X(L_PRIORITY, "priority")                 \
    X(L_PRIORITY_CLASS, "priority_class") X(L_PROJECT_ID, "project_id")         \
    X(L_PROJECT_NAME, "project_name") X(L_PROTOCOL, "protocol")                 \
    X(L_REQUESTED_NP, "requested_nodepools") X(L_SOURCE, "source")              \
    X(L_SUBMITTED_BY, "submitted_by") X(L_TLS, "tls_enabled") X(L_URL, "url")   \
    X(L_WORKLOAD_ID, "workload_id") X(L_WORKLOAD_NAME, "workload_name")         \
    X(L_WORKLOAD_TYPE, "workload_type")

enum label_id {
#define X(id, s) id,
    LABELS(X)
#undef X
    L_COUNT
};

static const char *const LABEL_NAMES[L_COUNT] = {
#define X(id, s) s,
    LABELS(X)
#undef X
};

/* The info labels a workload keeps (latest values). */
static const enum label_id INFO_LABELS[] = {
    L_WORKLOAD_NAME, L_WORKLOAD_TYPE, L_CATEGORY, L_PROJECT_ID, L_PROJECT_NAME, L_DEPT_ID,
    L_DEPT_NAME, L_CLUSTER_ID, L_NAMESPACE, L_SUBMITTED_BY, L_PRIORITY_CLASS, L_PRIORITY,
    L_REQUESTED_NP, L_CURRENT_NP, L_CREATED_AT, L_DIST_FW, L_AI_APP_ID, L_AI_APP_NAME, L_IMAGE,
    L_SOURCE,
};
#define N_INFO_LABELS (sizeof INFO_LABELS / sizeof INFO_LABELS[0])

enum { EP_HOST, EP_PORT, EP_PATH, EP_PROTOCOL, EP_URL, EP_TLS, EP_NF };
static const enum label_id EP_LABELS[EP_NF] = {L_HOST, L_PORT, L_PATH, L_PROTOCOL, L_URL, L_TLS};

enum { EL_NAME, EL_LEVEL, EL_PARENT, EL_CREATED, EL_UID, EL_KNAME, EL_GROUP, EL_VERSION,
       EL_KIND, EL_NF };
static const enum label_id EL_LABELS[EL_NF] = {L_NAME, L_HIERARCHY, L_PARENT_ID, L_CREATED_AT,
                                              L_K8S_UID, L_K8S_NAME, L_K8S_GROUP,
                                              L_K8S_VERSION, L_K8S_KIND};

static int label_index(const char *name)
{
    int lo = 0, hi = L_COUNT - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2, c = strcmp(name, LABEL_NAMES[mid]);
        if (!c) return mid;
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

enum metric {
    M_NONE, M_INFO, M_PHASE, M_ALLOC, M_MEMREQ, M_POD_INFO, M_ENDPOINT, M_ELEMENT,
    M_ELEMENTS_TOTAL, M_POD_PHASE, M_GPU_UTIL,
};

/* A perfect hash in all but name: the length picks at most two candidates. */
static enum metric metric_of(const char *name)
{
    static const struct { const char *name; enum metric m; } tab[] = {
        {"runai_workload_info", M_INFO},
        {"runai_workload_phase", M_PHASE},
        {"runai_workload_gpu_allocation", M_ALLOC},
        {"runai_workload_gpu_memory_request_bytes", M_MEMREQ},
        {"runai_pod_info", M_POD_INFO},
        {"runai_workload_endpoint_info", M_ENDPOINT},
        {"runai_workload_element_info", M_ELEMENT},
        {"runai_workload_elements_total", M_ELEMENTS_TOTAL},
        {"kube_pod_status_phase", M_POD_PHASE},
        {"DCGM_FI_DEV_GPU_UTIL", M_GPU_UTIL},
    };
    size_t n = strlen(name);
    if (n < 14 || n > 39 || (name[0] != 'r' && name[0] != 'k' && name[0] != 'D')) return M_NONE;
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strlen(tab[i].name) == n && memcmp(tab[i].name, name, n) == 0) return tab[i].m;
    return M_NONE;
}

/* The API's Phase enum, in the spec's order. */
static const char *const PHASES[] = {
    "Creating", "Initializing", "Resuming", "Pending", "Deleting", "Running", "Updating",
    "Stopped", "Stopping", "Degraded", "Failed", "Completed", "Terminating", "Unknown",
};
#define NPHASE ((int)(sizeof PHASES / sizeof PHASES[0]))
enum { PH_PENDING = 3, PH_RUNNING = 5, PH_FAILED = 10, PH_COMPLETED = 11, PH_UNKNOWN = 13 };

static int phase_index(const char *s)
{
    for (int i = 0; i < NPHASE; i++)
        if (strcmp(PHASES[i], s) == 0) return i;
    return -1;
}

/* ---- state ------------------------------------------------------------------ */

struct wl;

typedef struct gpu {
    char *key;
    size_t klen;
    struct gpu *next;       /* in its owner's list (workload or pod) */
    sstate_t s;
    int64_t zero_since;     /* first sample of the current run of 0%, TMIN = not at 0 */
} gpu_t;

typedef struct pod {
    char *key;              /* namespace NUL pod NUL */
    size_t klen;
    const char *ns, *name;  /* into key */
    struct wl *wl;
    struct pod *wl_next;
    char *node, *nodepool;
    sstate_t info;
    int64_t first_t;
    sstate_t running;       /* kube_pod_status_phase{phase="Running"} */
    gpu_t *gpus;
} pod_t;

typedef struct endpoint {
    char *f[EP_NF];
    sstate_t s;
} endpoint_t;

typedef struct element {
    char *key;              /* workload_id NUL element_id NUL */
    size_t klen;
    const char *id;         /* into key */
    char *f[EL_NF];
    sstate_t s;
} element_t;

typedef struct phase_run {
    int64_t start;
    int phase;
} phase_run_t;

typedef struct nodepools {
    char **v;
    size_t n;
} nodepools_t;

typedef struct wl {
    char *id;
    int has_info;
    char *lab[L_COUNT];     /* info labels only (INFO_LABELS) */
    sstate_t info;          /* over all info series of the workload */
    int64_t first_t;        /* first info sample */
    int64_t created_label;  /* parsed created_at label, TMIN = none/invalid */
    int64_t updated_t;      /* newest sample of any series carrying workload_id */
    nodepools_t requested, current;
    struct { sstate_t s; int64_t run_start; } ph[NPHASE];
    int any_phase;
    phase_run_t *runs;      /* ascending by start; consecutive runs differ in phase */
    size_t nruns, capruns;
    int64_t folded_ms[NPHASE];
    sstate_t alloc, memreq, elements_total;
    pod_t *pods;
    gpu_t *gpus;            /* GPU series carrying workload_id */
    endpoint_t *eps;
    size_t neps;
    element_t **els;
    size_t nels, capels;
} wl_t;

typedef struct tenant {
    int32_t id;
    pthread_rwlock_t lock;
    bmap_t wls, pods, gpus, els;
    wl_t **wlv;             /* insertion order, for iteration */
    size_t nwl, capwl;
} tenant_t;

struct api_registry {
    api_registry_options_t opt;
    pthread_rwlock_t lock;  /* the tenant map only */
    bmap_t tenants;
};

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
    if (!r) { log_enomem("registry"); return STRATA_ENOMEM; }
    api_registry_options_init(&r->opt);
    if (opts && opts->staleness_ms > 0) r->opt.staleness_ms = opts->staleness_ms;
    if (opts && opts->gpu_idle_after_ms > 0) r->opt.gpu_idle_after_ms = opts->gpu_idle_after_ms;
    if (pthread_rwlock_init(&r->lock, NULL) != 0) { free(r); return STRATA_ENOMEM; }
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

static void wl_free(wl_t *w)
{
    free(w->id);
    for (int i = 0; i < L_COUNT; i++) free(w->lab[i]);
    nodepools_clear(&w->requested);
    nodepools_clear(&w->current);
    free(w->runs);
    for (size_t i = 0; i < w->neps; i++)
        for (int j = 0; j < EP_NF; j++) free(w->eps[i].f[j]);
    free(w->eps);
    free(w->els);   /* the elements themselves belong to the tenant's map */
    free(w);
}

static void tenant_free(tenant_t *t)
{
    for (size_t i = 0; i < t->wls.cap; i++)
        if (t->wls.b[i].v) wl_free(t->wls.b[i].v);
    for (size_t i = 0; i < t->pods.cap; i++) {
        pod_t *p = t->pods.b[i].v;
        if (!p) continue;
        free(p->key); free(p->node); free(p->nodepool); free(p);
    }
    for (size_t i = 0; i < t->gpus.cap; i++) {
        gpu_t *g = t->gpus.b[i].v;
        if (g) { free(g->key); free(g); }
    }
    for (size_t i = 0; i < t->els.cap; i++) {
        element_t *e = t->els.b[i].v;
        if (!e) continue;
        for (int j = 0; j < EL_NF; j++) free(e->f[j]);
        free(e->key);
        free(e);
    }
    free(t->wls.b); free(t->pods.b); free(t->gpus.b); free(t->els.b);
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

static tenant_t *tenant_find(api_registry_t *reg, int32_t id)
{
    pthread_rwlock_rdlock(&reg->lock);
    tenant_t *t = bmap_get(&reg->tenants, (const char *)&id, sizeof id, hash_bytes(&id, sizeof id));
    pthread_rwlock_unlock(&reg->lock);
    return t;
}

/* Tenants are never freed before the registry, so the pointer outlives the lock. */
static int tenant_get(api_registry_t *reg, int32_t id, tenant_t **out)
{
    if ((*out = tenant_find(reg, id))) return 0;
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

static wl_t *wl_lookup(const tenant_t *t, const char *id)
{
    size_t n = strlen(id);
    return bmap_get(&t->wls, id, n, hash_bytes(id, n));
}

static wl_t *wl_get(tenant_t *t, const char *id)
{
    size_t n = strlen(id);
    uint64_t h = hash_bytes(id, n);
    wl_t *w = bmap_get(&t->wls, id, n, h);
    if (w) return w;
    if (t->nwl == t->capwl) {
        size_t nc = t->capwl ? t->capwl * 2 : 16;
        wl_t **nv = realloc(t->wlv, nc * sizeof *nv);
        if (!nv) { log_enomem("workload vector"); return NULL; }
        t->wlv = nv;
        t->capwl = nc;
    }
    w = calloc(1, sizeof *w);
    if (!w || !(w->id = strdup(id))) { free(w); log_enomem("workload"); return NULL; }
    w->info = w->alloc = w->memreq = w->elements_total = SSTATE_INIT;
    w->first_t = w->created_label = w->updated_t = TMIN;
    for (int i = 0; i < NPHASE; i++) { w->ph[i].s = SSTATE_INIT; w->ph[i].run_start = TMIN; }
    if (bmap_put(&t->wls, w->id, n, h, w)) { wl_free(w); return NULL; }
    t->wlv[t->nwl++] = w;
    return w;
}

static pod_t *pod_get(tenant_t *t, const char *ns, const char *name, int create)
{
    size_t a = strlen(ns), b = strlen(name), n = a + b + 2;
    char stackbuf[256], *key = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!key) { log_enomem("pod key"); return NULL; }
    memcpy(key, ns, a + 1);
    memcpy(key + a + 1, name, b + 1);
    uint64_t h = hash_bytes(key, n);
    pod_t *p = bmap_get(&t->pods, key, n, h);
    if (!p && create) {
        p = calloc(1, sizeof *p);
        if (!p || !(p->key = malloc(n))) { free(p); p = NULL; log_enomem("pod"); goto out; }
        memcpy(p->key, key, n);
        p->klen = n;
        p->ns = p->key;
        p->name = p->key + a + 1;
        p->info = p->running = SSTATE_INIT;
        p->first_t = TMIN;
        if (bmap_put(&t->pods, p->key, n, h, p)) { free(p->key); free(p); p = NULL; }
    }
out:
    if (key != stackbuf) free(key);
    return p;
}

static void pod_attach(pod_t *p, wl_t *w)
{
    if (p->wl == w) return;
    if (p->wl) {
        for (pod_t **pp = &p->wl->pods; *pp; pp = &(*pp)->wl_next)
            if (*pp == p) { *pp = p->wl_next; break; }
    }
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
    if (!(np->v = calloc(cap, sizeof *np->v))) { log_enomem("nodepools"); return STRATA_ENOMEM; }
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b > a) {
            if (!(np->v[np->n] = strndup(a, (size_t)(b - a)))) { log_enomem("nodepool"); return STRATA_ENOMEM; }
            np->n++;
        }
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int wl_set_info_labels(wl_t *w, const char *const *lv)
{
    int rc = 0;
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
        w->runs[i].start = t;   /* the next run of p started earlier than we knew */
    } else {
        if (w->nruns == w->capruns) {
            size_t nc = w->capruns ? w->capruns * 2 : 4;
            phase_run_t *nr = realloc(w->runs, nc * sizeof *nr);
            if (!nr) { log_enomem("phase runs"); return STRATA_ENOMEM; }
            w->runs = nr;
            w->capruns = nc;
        }
        memmove(&w->runs[i + 1], &w->runs[i], (w->nruns - i) * sizeof *w->runs);
        w->runs[i] = (phase_run_t){t, p};
        w->nruns++;
    }
    /* The oldest runs are settled (their successor is known): fold them. */
    while (w->nruns > PHASE_RUNS_MAX) {
        w->folded_ms[w->runs[0].phase] += w->runs[1].start - w->runs[0].start;
        memmove(&w->runs[0], &w->runs[1], (w->nruns - 1) * sizeof *w->runs);
        w->nruns--;
    }
    for (size_t k = w->nruns; k > 0; k--)
        if (w->runs[k - 1].phase == p) { w->ph[p].run_start = w->runs[k - 1].start; break; }
    return 0;
}

static int observe_gpu(tenant_t *t, const tsdb_label_t *labels, size_t nlabels,
                       const char *const *lv, const tsdb_sample_t *samples, size_t nsamples,
                       int64_t staleness)
{
    /* Identity: the whole label set but __name__. */
    size_t n = 0;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp(labels[i].name, "__name__") != 0)
            n += strlen(labels[i].name) + strlen(labels[i].value) + 2;
    char stackbuf[1024], *key = n <= sizeof stackbuf ? stackbuf : malloc(n ? n : 1);
    if (!key) { log_enomem("gpu key"); return STRATA_ENOMEM; }
    size_t off = 0;
    for (size_t i = 0; i < nlabels; i++) {
        if (strcmp(labels[i].name, "__name__") == 0) continue;
        size_t a = strlen(labels[i].name) + 1, b = strlen(labels[i].value) + 1;
        memcpy(key + off, labels[i].name, a); off += a;
        memcpy(key + off, labels[i].value, b); off += b;
    }
    uint64_t h = hash_bytes(key, n);
    int rc = 0;
    gpu_t *g = bmap_get(&t->gpus, key, n, h);
    if (!g) {
        wl_t *w = NULL;
        pod_t *p = NULL;
        if (lv[L_WORKLOAD_ID]) w = wl_get(t, lv[L_WORKLOAD_ID]);
        else p = pod_get(t, lv[L_NAMESPACE], lv[L_POD], 1);
        if (!w && !p) { rc = STRATA_ENOMEM; goto out; }
        g = calloc(1, sizeof *g);
        if (!g || !(g->key = malloc(n ? n : 1))) { free(g); rc = STRATA_ENOMEM; log_enomem("gpu"); goto out; }
        memcpy(g->key, key, n);
        g->klen = n;
        g->s = SSTATE_INIT;
        g->zero_since = TMIN;
        if ((rc = bmap_put(&t->gpus, g->key, n, h, g))) { free(g->key); free(g); goto out; }
        gpu_t **head = w ? &w->gpus : &p->gpus;
        g->next = *head;
        *head = g;
    }
    for (size_t i = 0; i < nsamples; i++) {
        int64_t ts = samples[i].t;
        double v = samples[i].v;
        if (tsdb_is_stale(v)) { st_stale(&g->s, ts); continue; }
        int was_zero = st_holds(&g->s, ts, staleness) && g->s.v == 0;
        if (!st_sample(&g->s, ts, v)) continue;
        if (v == 0) { if (!was_zero) g->zero_since = ts; }
        else g->zero_since = TMIN;
    }
out:
    if (key != stackbuf) free(key);
    return rc;
}

static int observe_locked(api_registry_t *reg, tenant_t *t, enum metric m,
                          const tsdb_label_t *labels, size_t nlabels, const char *const *lv,
                          const tsdb_sample_t *samples, size_t nsamples)
{
    const int64_t stl = reg->opt.staleness_ms;
    if (m == M_GPU_UTIL) return observe_gpu(t, labels, nlabels, lv, samples, nsamples, stl);
    if (m == M_POD_PHASE) {
        pod_t *p = pod_get(t, lv[L_NAMESPACE], lv[L_POD], 1);
        if (!p) return STRATA_ENOMEM;
        for (size_t i = 0; i < nsamples; i++) {
            if (tsdb_is_stale(samples[i].v)) st_stale(&p->running, samples[i].t);
            else st_sample(&p->running, samples[i].t, samples[i].v);
        }
        return 0;
    }
    wl_t *w = wl_get(t, lv[L_WORKLOAD_ID]);
    if (!w) return STRATA_ENOMEM;
    int newest = 0;   /* some sample of this call became the series' newest */
    sstate_t *st = NULL;
    switch (m) {
    case M_INFO:
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            if (tsdb_is_stale(samples[i].v)) { st_stale(&w->info, ts); continue; }
            w->has_info = 1;
            if (w->first_t == TMIN || ts < w->first_t) w->first_t = ts;
            if (st_sample(&w->info, ts, samples[i].v)) { newest = 1; wl_touch(w, ts); }
        }
        return newest ? wl_set_info_labels(w, lv) : 0;
    case M_PHASE: {
        int p = phase_index(lv[L_PHASE]);   /* valid: checked before locking */
        w->any_phase = 1;
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            double v = samples[i].v;
            if (tsdb_is_stale(v)) { st_stale(&w->ph[p].s, ts); continue; }
            if (!st_sample(&w->ph[p].s, ts, v)) continue;
            wl_touch(w, ts);
            if (v == 1) {
                int rc = phase_mark(w, p, ts);
                if (rc) return rc;
            }
        }
        return 0;
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
            if (tsdb_is_stale(samples[i].v)) { st_stale(&p->info, ts); continue; }
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
            if (!ne) { log_enomem("endpoint"); return STRATA_ENOMEM; }
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
        if (!key) { log_enomem("element key"); return STRATA_ENOMEM; }
        memcpy(key, wid, a + 1);
        memcpy(key + a + 1, eid, b + 1);
        uint64_t h = hash_bytes(key, n);
        element_t *e = bmap_get(&t->els, key, n, h);
        int rc = 0;
        if (!e) {
            if (w->nels == w->capels) {
                size_t nc = w->capels ? w->capels * 2 : 8;
                element_t **nv = realloc(w->els, nc * sizeof *nv);
                if (!nv) { rc = STRATA_ENOMEM; log_enomem("elements"); goto el_out; }
                w->els = nv;
                w->capels = nc;
            }
            e = calloc(1, sizeof *e);
            if (!e || !(e->key = malloc(n))) { free(e); e = NULL; rc = STRATA_ENOMEM; log_enomem("element"); goto el_out; }
            memcpy(e->key, key, n);
            e->klen = n;
            e->id = e->key + a + 1;
            e->s = SSTATE_INIT;
            if ((rc = bmap_put(&t->els, e->key, n, h, e))) { free(e->key); free(e); e = NULL; goto el_out; }
            w->els[w->nels++] = e;
        }
        for (size_t i = 0; i < nsamples; i++) {
            int64_t ts = samples[i].t;
            if (tsdb_is_stale(samples[i].v)) { st_stale(&e->s, ts); continue; }
            if (st_sample(&e->s, ts, samples[i].v)) { newest = 1; wl_touch(w, ts); }
        }
        for (int j = 0; newest && j < EL_NF && !rc; j++) rc = set_str(&e->f[j], lv[EL_LABELS[j]]);
    el_out:
        if (key != stackbuf) free(key);
        return rc;
    }
    default:
        return 0;
    }
    for (size_t i = 0; i < nsamples; i++) {
        int64_t ts = samples[i].t;
        if (tsdb_is_stale(samples[i].v)) st_stale(st, ts);
        else if (st_sample(st, ts, samples[i].v)) wl_touch(w, ts);
    }
    return 0;
}

int api_registry_observe(api_registry_t *reg, int32_t tenant_id,
                         const tsdb_label_t *labels, size_t nlabels,
                         const tsdb_sample_t *samples, size_t nsamples)
{
    enum metric m = M_NONE;
    for (size_t i = 0; i < nlabels; i++) {
        if (strcmp(labels[i].name, "__name__") == 0) { m = metric_of(labels[i].value); break; }
    }
    if (m == M_NONE || nsamples == 0) return 0;

    const char *lv[L_COUNT] = {0};
    for (size_t i = 0; i < nlabels; i++) {
        int k = label_index(labels[i].name);
        if (k >= 0 && labels[i].value[0]) lv[k] = labels[i].value;
    }
    switch (m) {
    case M_GPU_UTIL:
        if (!lv[L_WORKLOAD_ID] && !(lv[L_NAMESPACE] && lv[L_POD])) return 0;
        break;
    case M_POD_PHASE:
        if (!lv[L_NAMESPACE] || !lv[L_POD] || !lv[L_PHASE] || strcmp(lv[L_PHASE], "Running") != 0)
            return 0;
        break;
    case M_POD_INFO:
        if (!lv[L_WORKLOAD_ID] || !lv[L_NAMESPACE] || !lv[L_POD]) return 0;
        break;
    case M_PHASE:
        if (!lv[L_WORKLOAD_ID] || !lv[L_PHASE] || phase_index(lv[L_PHASE]) < 0) return 0;
        break;
    case M_ELEMENT:
        if (!lv[L_WORKLOAD_ID] || !lv[L_ELEMENT_ID]) return 0;
        break;
    default:
        if (!lv[L_WORKLOAD_ID]) return 0;
    }
    tenant_t *t;
    int rc = tenant_get(reg, tenant_id, &t);
    if (rc) return rc;
    pthread_rwlock_wrlock(&t->lock);
    rc = observe_locked(reg, t, m, labels, nlabels, lv, samples, nsamples);
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* ---- evaluation at `now` ------------------------------------------------------ */

/* A workload's derived fields at one instant. */
typedef struct view {
    const wl_t *w;
    int deleted;
    int64_t deleted_at;         /* TMIN = null */
    int64_t at;                 /* instant for endpoints/elements: now, or just before deletion */
    int64_t created_at;
    int phase;
    int64_t phase_updated_at;
    int64_t completed_at;       /* TMIN = null */
    int has_totals;
    int64_t pending_s, running_s;
    int running_pods;
    int has_alloc;
    double alloc;
    int has_memreq;
    double memreq;
    int idle_gpus;
    double idle_alloc;
    int has_priority;
    int64_t priority;
} view_t;

static void count_gpus(const gpu_t *g, int64_t now, int64_t stl, int64_t idle_after,
                       int *reporting, int *idle)
{
    for (; g; g = g->next) {
        if (!st_holds(&g->s, now, stl)) continue;
        (*reporting)++;
        if (g->s.v == 0 && g->zero_since != TMIN && now - g->zero_since >= idle_after) (*idle)++;
    }
}

static void eval(const api_registry_t *reg, const wl_t *w, int64_t now, view_t *v)
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
            (hold == best_hold && (w->ph[p].run_start > w->ph[best].run_start ||
                                   (w->ph[p].run_start == w->ph[best].run_start &&
                                    s->t > w->ph[best].s.t)))) {
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
        if (w->runs[i].phase == PH_PENDING) tot_pending += e - s;
        else if (w->runs[i].phase == PH_RUNNING) tot_running += e - s;
    }
    v->pending_s = tot_pending / 1000;
    v->running_s = tot_running / 1000;

    int reporting = 0, idle = 0;
    for (const pod_t *p = w->pods; p; p = p->wl_next) {
        if (st_holds(&p->info, now, stl) && st_holds(&p->running, now, stl) && p->running.v == 1)
            v->running_pods++;
        count_gpus(p->gpus, now, stl, reg->opt.gpu_idle_after_ms, &reporting, &idle);
    }
    count_gpus(w->gpus, now, stl, reg->opt.gpu_idle_after_ms, &reporting, &idle);

    if (w->alloc.t != TMIN) {
        v->has_alloc = 1;
        v->alloc = st_holds(&w->alloc, now, stl) ? w->alloc.v : 0;
    }
    if (st_holds(&w->memreq, now, stl)) { v->has_memreq = 1; v->memreq = w->memreq.v; }
    v->idle_gpus = idle;
    v->idle_alloc = reporting ? v->alloc * idle / reporting : 0;

    const char *pr = w->lab[L_PRIORITY];
    if (pr) {
        char *e;
        long long x = strtoll(pr, &e, 10);
        if (e != pr && !*e && x >= INT32_MIN && x <= INT32_MAX) { v->has_priority = 1; v->priority = x; }
    }
}

/* ---- filterBy / sortBy fields ----------------------------------------------- */

enum ftype { FT_STR, FT_NUM, FT_DATE };

#define FIELDS(X)                                                                  \
    X(F_TYPE, "type", FT_STR, L_WORKLOAD_TYPE) X(F_NAME, "name", FT_STR, L_WORKLOAD_NAME) \
    X(F_CLUSTER_ID, "clusterId", FT_STR, L_CLUSTER_ID)                             \
    X(F_PROJECT_ID, "projectId", FT_STR, L_PROJECT_ID)                             \
    X(F_PROJECT_NAME, "projectName", FT_STR, L_PROJECT_NAME)                       \
    X(F_DEPT_ID, "departmentId", FT_STR, L_DEPT_ID)                                \
    X(F_DEPT_NAME, "departmentName", FT_STR, L_DEPT_NAME)                          \
    X(F_CREATED_AT, "createdAt", FT_DATE, -1) X(F_DELETED_AT, "deletedAt", FT_DATE, -1) \
    X(F_SUBMITTED_BY, "submittedBy", FT_STR, L_SUBMITTED_BY)                       \
    X(F_PHASE, "phase", FT_STR, -1) X(F_COMPLETED_AT, "completedAt", FT_DATE, -1)  \
    X(F_NODEPOOL, "nodepool", FT_STR, -1)                                          \
    X(F_DIST_FW, "distributedFramework", FT_STR, L_DIST_FW)                        \
    X(F_ALLOC_GPU, "allocatedGPU", FT_NUM, -1) X(F_IDLE_GPUS, "idleGpus", FT_NUM, -1) \
    X(F_IDLE_ALLOC, "idleAllocatedGpus", FT_NUM, -1)                               \
    X(F_PHASE_UPDATED_AT, "phaseUpdatedAt", FT_DATE, -1)                           \
    X(F_CATEGORY, "category", FT_STR, L_CATEGORY) X(F_PRIORITY, "priority", FT_NUM, -1) \
    X(F_PENDING, "totalPendingTimeSeconds", FT_NUM, -1)                            \
    X(F_RUNNING, "totalRunningTimeSeconds", FT_NUM, -1)                            \
    X(F_PRIORITY_CLASS, "priorityClassName", FT_STR, L_PRIORITY_CLASS)             \
    X(F_GUARANTEED, "guaranteedRuntimeEndsAt", FT_DATE, -1)                        \
    X(F_AI_APP_ID, "aiApplicationId", FT_STR, L_AI_APP_ID)                         \
    X(F_AI_APP_NAME, "aiApplicationName", FT_STR, L_AI_APP_NAME)

enum field {
#define X(id, name, type, label) id,
    FIELDS(X)
#undef X
    F_COUNT
};

static const struct { const char *name; enum ftype type; int label; } FIELD_TAB[F_COUNT] = {
#define X(id, name, type, label) {name, type, label},
    FIELDS(X)
#undef X
};

static int field_index(const char *name, size_t n)
{
    for (int i = 0; i < F_COUNT; i++)
        if (strlen(FIELD_TAB[i].name) == n && memcmp(FIELD_TAB[i].name, name, n) == 0) return i;
    return -1;
}

typedef struct fval {
    int null;
    const char *s;
    const char *const *multi;   /* nodepool: several strings */
    size_t nmulti;
    double d;
    int64_t t;
} fval_t;

/* The spec requires clusterId as a uuid: a workload whose agent sent none
 * gets the nil uuid rather than a body that breaks the schema. */
#define NIL_UUID "00000000-0000-0000-0000-000000000000"

static const char *cluster_id(const wl_t *w)
{
    return w->lab[L_CLUSTER_ID] ? w->lab[L_CLUSTER_ID] : NIL_UUID;
}

static fval_t field_get(const view_t *v, int f)
{
    fval_t r = {0};
    const wl_t *w = v->w;
    if (f == F_CLUSTER_ID) {
        r.s = cluster_id(w);
        return r;
    }
    if (FIELD_TAB[f].label >= 0) {
        const char *s = w->lab[FIELD_TAB[f].label];
        r.s = s ? s : "";
        return r;
    }
    switch (f) {
    case F_PHASE: r.s = PHASES[v->phase]; break;
    case F_NODEPOOL: {
        const nodepools_t *np = w->current.n ? &w->current : &w->requested;
        r.multi = (const char *const *)np->v;
        r.nmulti = np->n;
        r.s = np->n ? np->v[0] : "";
        break;
    }
    case F_CREATED_AT: r.t = v->created_at; break;
    case F_DELETED_AT: r.t = v->deleted_at; r.null = r.t == TMIN; break;
    case F_COMPLETED_AT: r.t = v->completed_at; r.null = r.t == TMIN; break;
    case F_PHASE_UPDATED_AT: r.t = v->phase_updated_at; break;
    case F_GUARANTEED: r.null = 1; break;
    case F_ALLOC_GPU: r.d = v->alloc; r.null = !v->has_alloc; break;
    case F_IDLE_GPUS: r.d = v->idle_gpus; break;
    case F_IDLE_ALLOC: r.d = v->idle_alloc; break;
    case F_PRIORITY: r.d = (double)v->priority; r.null = !v->has_priority; break;
    case F_PENDING: r.d = (double)v->pending_s; r.null = !v->has_totals; break;
    case F_RUNNING: r.d = (double)v->running_s; r.null = !v->has_totals; break;
    default: r.null = 1;
    }
    return r;
}

enum op { OP_EQ, OP_NE, OP_LE, OP_GE, OP_CONTAINS, OP_NCONTAINS, OP_PREFIX, OP_SUFFIX, OP_COUNT };
static const char *const OPS[OP_COUNT] = {"==", "!=", "<=", ">=", "=@", "!@", "=^", "=$"};

typedef struct term {
    int field;
    int op;
    const char *val;
    double num;
    int64_t t;
} term_t;

static int set_error(api_registry_result_t *out, strata_arena_t *arena, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int set_error(api_registry_result_t *out, strata_arena_t *arena, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    out->error = strata_arena_strdup(arena, buf);
    if (!out->error) out->error = "invalid argument";
    return STRATA_EINVAL;
}

static int parse_term(const char *s, term_t *t, api_registry_result_t *out, strata_arena_t *arena)
{
    size_t i = 0;
    while (isalpha((unsigned char)s[i])) i++;
    t->field = field_index(s, i);
    if (t->field < 0)
        return set_error(out, arena, "filterBy: invalid term \"%s\": unknown field \"%.*s\"", s,
                         (int)i, s);
    t->op = -1;
    for (int k = 0; k < OP_COUNT; k++)
        if (strncmp(s + i, OPS[k], 2) == 0) { t->op = k; break; }
    if (t->op < 0)
        return set_error(out, arena,
                         "filterBy: invalid term \"%s\": expected one of == != <= >= =@ !@ =^ =$ after \"%.*s\"",
                         s, (int)i, s);
    t->val = s + i + 2;
    if (!*t->val) return set_error(out, arena, "filterBy: invalid term \"%s\": empty value", s);
    if (t->op <= OP_GE && FIELD_TAB[t->field].type == FT_NUM) {
        char *e;
        t->num = strtod(t->val, &e);
        if (e == t->val || *e || !isfinite(t->num))
            return set_error(out, arena, "filterBy: invalid term \"%s\": \"%s\" is not a number", s,
                             t->val);
    }
    if (t->op <= OP_GE && FIELD_TAB[t->field].type == FT_DATE && parse_time(t->val, &t->t))
        return set_error(out, arena,
                         "filterBy: invalid term \"%s\": \"%s\" is not an RFC 3339 date-time", s,
                         t->val);
    return 0;
}

static int match_str(int op, const char *s, const char *val)
{
    size_t n = strlen(s), m = strlen(val);
    switch (op) {
    case OP_EQ: return strcmp(s, val) == 0;
    case OP_NE: return strcmp(s, val) != 0;
    case OP_LE: return strcmp(s, val) <= 0;
    case OP_GE: return strcmp(s, val) >= 0;
    case OP_CONTAINS: return strstr(s, val) != NULL;
    case OP_NCONTAINS: return strstr(s, val) == NULL;
    case OP_PREFIX: return n >= m && memcmp(s, val, m) == 0;
    case OP_SUFFIX: return n >= m && memcmp(s + n - m, val, m) == 0;
    }
    return 0;
}

static int match_cmp(int op, int c)
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LE: return c <= 0;
    case OP_GE: return c >= 0;
    }
    return 0;
}

/* Null (a missing value) satisfies only the negative operators.  A
 * multi-valued field (nodepool) matches a positive operator when any value
 * does, a negative one when every value does.  String operators on numbers
 * and dates apply to their rendered text. */
static int term_match(const term_t *t, const view_t *v)
{
    fval_t f = field_get(v, t->field);
    int negative = t->op == OP_NE || t->op == OP_NCONTAINS;
    if (f.null) return negative;
    char buf[32];
    switch (FIELD_TAB[t->field].type) {
    case FT_STR:
        if (f.multi && f.nmulti) {
            for (size_t i = 0; i < f.nmulti; i++) {
                int m = match_str(t->op, f.multi[i], t->val);
                if (negative && !m) return 0;
                if (!negative && m) return 1;
            }
            return negative;
        }
        return match_str(t->op, f.s, t->val);
    case FT_NUM:
        if (t->op <= OP_GE) return match_cmp(t->op, (f.d > t->num) - (f.d < t->num));
        strata_fmt_double(f.d, buf, sizeof buf);
        return match_str(t->op, buf, t->val);
    case FT_DATE:
        if (t->op <= OP_GE) return match_cmp(t->op, (f.t > t->t) - (f.t < t->t));
        fmt_time(f.t, buf);
        return match_str(t->op, buf, t->val);
    }
    return 0;
}

static int view_search(const view_t *v, const char *q)
{
    const char *const s[] = {v->w->lab[L_WORKLOAD_NAME], v->w->lab[L_PROJECT_NAME],
                             v->w->lab[L_DEPT_NAME]};
    for (int i = 0; i < 3; i++)
        if (s[i] && strcasestr(s[i], q)) return 1;
    return 0;
}

typedef struct sortctx {
    int field;
    int desc;
} sortctx_t;

/* Missing values last in either order; ties by id so pages are stable. */
static int view_cmp(const void *a, const void *b, void *arg)
{
    const sortctx_t *c = arg;
    const view_t *x = a, *y = b;
    fval_t fx = field_get(x, c->field), fy = field_get(y, c->field);
    int r = 0;
    if (fx.null != fy.null) return fx.null ? 1 : -1;
    if (!fx.null) {
        switch (FIELD_TAB[c->field].type) {
        case FT_STR: r = strcmp(fx.s, fy.s); break;
        case FT_NUM: r = (fx.d > fy.d) - (fx.d < fy.d); break;
        case FT_DATE: r = (fx.t > fy.t) - (fx.t < fy.t); break;
        }
        if (c->desc) r = -r;
    }
    return r ? r : strcmp(x->w->id, y->w->id);
}

/* ---- JSON rendering ------------------------------------------------------------- */

/* jansson prints every real with one precision; track the smallest one that
 * still round-trips every real of the document, so 0.1 prints as 0.1. */
typedef struct jctx {
    int prec;
} jctx_t;

static json_t *jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("");
}

static json_t *jnum(jctx_t *jc, double d)
{
    if (!isfinite(d)) return json_null();
    if (d == floor(d) && fabs(d) < 9007199254740992.0) return json_integer((json_int_t)d);
    int p = real_precision(d);
    if (p > jc->prec) jc->prec = p;
    return json_real(d);
}

static json_t *jtime(int64_t ms)
{
    if (ms == TMIN) return json_null();
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    if (fmt_time(ms, buf) < 0) return json_null();
    return json_string(buf);
}

static json_t *jstrs(const nodepools_t *np)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < np->n; i++) json_array_append_new(a, jstr(np->v[i]));
    return a;
}

static json_t *render_endpoint(const endpoint_t *e)
{
    json_t *o = json_object();
    if (!o) return NULL;
    if (e->f[EP_HOST]) json_object_set_new(o, "host", jstr(e->f[EP_HOST]));
    if (e->f[EP_PORT]) {
        char *end;
        long port = strtol(e->f[EP_PORT], &end, 10);
        if (end != e->f[EP_PORT] && !*end && port >= 0 && port <= 65535)
            json_object_set_new(o, "port", json_integer(port));
    }
    if (e->f[EP_PATH]) json_object_set_new(o, "path", jstr(e->f[EP_PATH]));
    const char *tls = e->f[EP_TLS];
    json_object_set_new(o, "tlsEnabled",
                        tls && !strcasecmp(tls, "true") ? json_true()
                        : tls && !strcasecmp(tls, "false") ? json_false() : json_null());
    if (e->f[EP_PROTOCOL]) json_object_set_new(o, "protocol", jstr(e->f[EP_PROTOCOL]));
    if (e->f[EP_URL]) json_object_set_new(o, "url", jstr(e->f[EP_URL]));
    return o;
}

static json_t *render_endpoints(const view_t *v, int64_t stl, int urls_only)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->w->neps; i++) {
        const endpoint_t *e = &v->w->eps[i];
        if (!st_holds(&e->s, v->at, stl)) continue;
        if (urls_only) { if (e->f[EP_URL]) json_array_append_new(a, jstr(e->f[EP_URL])); }
        else json_array_append_new(a, render_endpoint(e));
    }
    return a;
}

static json_t *render_workload(const api_registry_t *reg, int32_t tenant_id, const view_t *v,
                               jctx_t *jc, int detailed)
{
    const wl_t *w = v->w;
    const int64_t stl = reg->opt.staleness_ms;
    json_t *o = json_object();
    if (!o) return NULL;
#define SET(k, val) json_object_set_new(o, k, val)
#define LAB(k, l) SET(k, jstr(w->lab[l]))
#define LAB_OPT(k, l) do { if (w->lab[l]) LAB(k, l); } while (0)
    SET("tenantId", json_integer(tenant_id));
    SET("id", jstr(w->id));
    LAB("name", L_WORKLOAD_NAME);
    LAB("type", L_WORKLOAD_TYPE);
    LAB("category", L_CATEGORY);
    const char *src = w->lab[L_SOURCE];
    SET("source", jstr(src && (!strcmp(src, "CLI") || !strcmp(src, "Control-plane")) ? src : "Other"));
    SET("sourceApi", json_null());
    SET("priority", v->has_priority ? json_integer(v->priority) : json_null());
    LAB("priorityClassName", L_PRIORITY_CLASS);
    LAB_OPT("submittedBy", L_SUBMITTED_BY);
    SET("clusterId", jstr(cluster_id(w)));
    LAB("projectName", L_PROJECT_NAME);
    LAB("projectId", L_PROJECT_ID);
    LAB("departmentName", L_DEPT_NAME);
    LAB("departmentId", L_DEPT_ID);
    LAB("namespace", L_NAMESPACE);
    SET("createdAt", jtime(v->created_at));
    SET("updatedAt", jtime(w->updated_t));
    SET("deletedAt", jtime(v->deleted_at));
    SET("completedAt", jtime(v->completed_at));
    SET("phase", jstr(PHASES[v->phase]));
    SET("phaseUpdatedAt", jtime(v->phase_updated_at));
    /* phaseReason is left out: the spec makes it nullable but its enum is not,
     * so no null can validate; the field is optional. */
    SET("k8sPhase", jstr(PHASES[v->phase]));
    SET("k8sPhaseUpdatedAt", jtime(v->phase_updated_at));
    SET("conditions", json_array());
    SET("runningPods", json_integer(v->running_pods));
    json_t *req = json_null();
    if (v->has_memreq) {
        char buf[STRATA_FMT_DOUBLE_BUFSZ];
        strata_fmt_double(v->memreq, buf, sizeof buf);
        req = json_pack("{s:{s:s,s:n}}", "gpuMemory", "request", buf, "limit");
    }
    SET("workloadRequestedResources", req ? req : json_null());
    SET("podsRequestedResources", json_null());
    json_t *alloc = json_object();
    if (alloc) {
        json_object_set_new(alloc, "gpu", v->has_alloc ? jnum(jc, v->alloc) : json_null());
        json_object_set_new(alloc, "gpuMemory", json_null());
        json_object_set_new(alloc, "cpu", json_null());
        json_object_set_new(alloc, "cpuMemory", json_null());
        json_object_set_new(alloc, "extendedResources", json_null());
    }
    SET("allocatedResources", alloc ? alloc : json_null());
    SET("requestedNodePools", jstrs(&w->requested));
    SET("currentNodePools", jstrs(&w->current));
    json_t *images = json_array();
    if (images && w->lab[L_IMAGE]) json_array_append_new(images, jstr(w->lab[L_IMAGE]));
    SET("images", images);
    LAB_OPT("distributedFramework", L_DIST_FW);
    LAB_OPT("aiApplicationId", L_AI_APP_ID);
    LAB_OPT("aiApplicationName", L_AI_APP_NAME);
    SET("idleGpus", json_integer(v->idle_gpus));
    SET("idleAllocatedGpus", jnum(jc, v->idle_alloc));
    SET("totalPendingTimeSeconds", v->has_totals ? json_integer(v->pending_s) : json_null());
    SET("totalRunningTimeSeconds", v->has_totals ? json_integer(v->running_s) : json_null());
    SET("guaranteedRuntimeEndsAt", json_null());
    SET("preemptible", json_null());
    SET("topology", json_null());
    SET("datasources", json_array());
    SET("environments", json_array());
    SET("externalConnections", json_array());
    SET("urls", render_endpoints(v, stl, 1));
    SET("endpoints", render_endpoints(v, stl, 0));
    if (detailed) SET("pendingSchedulingMessages", json_null());
#undef SET
#undef LAB
#undef LAB_OPT
    return o;
}

static int emit(json_t *root, const jctx_t *jc, strata_arena_t *arena, api_registry_result_t *out)
{
    if (!root) { log_enomem("json"); return STRATA_ENOMEM; }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(jc->prec));
    json_decref(root);
    if (!s) { log_enomem("json text"); return STRATA_ENOMEM; }
    size_t n = strlen(s);
    out->json = strata_arena_strndup(arena, s, n);
    free(s);
    if (!out->json) { log_enomem("arena"); return STRATA_ENOMEM; }
    out->len = n;
    return 0;
}

/* ---- queries ------------------------------------------------------------------ */

void api_registry_query_init(api_registry_query_t *q)
{
    memset(q, 0, sizeof *q);
}

static int check_page(int64_t offset, int64_t *limit, api_registry_result_t *out,
                      strata_arena_t *arena)
{
    if (offset < 0)
        return set_error(out, arena, "offset: must be >= 0, got %" PRId64, offset);
    if (*limit == 0) *limit = API_REGISTRY_DEFAULT_LIMIT;
    if (*limit < 1 || *limit > API_REGISTRY_MAX_LIMIT)
        return set_error(out, arena, "limit: must be between 1 and %d, got %" PRId64,
                         API_REGISTRY_MAX_LIMIT, *limit);
    return 0;
}

static int run_query(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q,
                     int64_t now, strata_arena_t *arena, api_registry_result_t *out, int is_list)
{
    memset(out, 0, sizeof *out);
    if (q->nfilter > API_REGISTRY_MAX_FILTERS)
        return set_error(out, arena, "filterBy: at most %d terms, got %zu",
                         API_REGISTRY_MAX_FILTERS, q->nfilter);
    term_t terms[API_REGISTRY_MAX_FILTERS];
    for (size_t i = 0; i < q->nfilter; i++) {
        int rc = parse_term(q->filter_by[i] ? q->filter_by[i] : "", &terms[i], out, arena);
        if (rc) return rc;
    }
    sortctx_t sc = {F_CREATED_AT, 0};
    int64_t limit = q->limit;
    if (is_list) {
        int rc = check_page(q->offset, &limit, out, arena);
        if (rc) return rc;
        if (q->sort_by && (sc.field = field_index(q->sort_by, strlen(q->sort_by))) < 0)
            return set_error(out, arena, "sortBy: unknown field \"%s\"", q->sort_by);
        if (q->sort_order && strcmp(q->sort_order, "asc") != 0) {
            if (strcmp(q->sort_order, "desc") != 0)
                return set_error(out, arena, "sortOrder: must be asc or desc, got \"%s\"",
                                 q->sort_order);
            sc.desc = 1;
        }
    }
    jctx_t jc = {1};
    json_t *root = NULL;
    tenant_t *t = tenant_find(reg, tenant_id);
    if (t) pthread_rwlock_rdlock(&t->lock);
    size_t nwl = t ? t->nwl : 0, n = 0;
    view_t *views = nwl ? strata_arena_alloc(arena, nwl * sizeof *views) : NULL;
    if (nwl && !views) {
        pthread_rwlock_unlock(&t->lock);
        log_enomem("arena");
        return STRATA_ENOMEM;
    }
    for (size_t i = 0; i < nwl; i++) {
        const wl_t *w = t->wlv[i];
        if (!w->has_info) continue;
        view_t *v = &views[n];
        eval(reg, w, now, v);
        if (v->deleted != (q->deleted != 0)) continue;
        if (q->search && *q->search && !view_search(v, q->search)) continue;
        size_t k = 0;
        while (k < q->nfilter && term_match(&terms[k], v)) k++;
        if (k < q->nfilter) continue;
        n++;
    }
    out->total = (int64_t)n;
    if (!is_list) {
        root = json_pack("{s:I}", "count", (json_int_t)n);
    } else {
        if (n > 1) qsort_r(views, n, sizeof *views, view_cmp, &sc);
        size_t start = (uint64_t)q->offset < n ? (size_t)q->offset : n;
        size_t end = (uint64_t)limit < n - start ? start + (size_t)limit : n;
        json_t *arr = json_array();
        for (size_t i = start; arr && i < end; i++)
            json_array_append_new(arr, render_workload(reg, tenant_id, &views[i], &jc, 0));
        root = json_object();
        if (root) {
            json_object_set_new(root, "workloads", arr ? arr : json_array());
            if (end < n) json_object_set_new(root, "next", json_integer((json_int_t)end));
        } else {
            json_decref(arr);
        }
    }
    if (t) pthread_rwlock_unlock(&t->lock);
    return emit(root, &jc, arena, out);
}

int api_registry_list(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q,
                      int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out)
{
    return run_query(reg, tenant_id, q, now_ms, arena, out, 1);
}

int api_registry_count(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q,
                       int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out)
{
    return run_query(reg, tenant_id, q, now_ms, arena, out, 0);
}

/* Looks the workload up under the tenant's read lock; on success the lock is
 * held and *tp set (caller unlocks). */
static int lock_workload(api_registry_t *reg, int32_t tenant_id, const char *id, tenant_t **tp,
                         const wl_t **wp)
{
    tenant_t *t = tenant_find(reg, tenant_id);
    if (!t || !id) return STRATA_ENOTFOUND;
    pthread_rwlock_rdlock(&t->lock);
    const wl_t *w = wl_lookup(t, id);
    if (!w || !w->has_info) {
        pthread_rwlock_unlock(&t->lock);
        return STRATA_ENOTFOUND;
    }
    *tp = t;
    *wp = w;
    return 0;
}

int api_registry_contains(api_registry_t *reg, int32_t tenant_id, const char *workload_id)
{
    tenant_t *t;
    const wl_t *w;
    if (lock_workload(reg, tenant_id, workload_id, &t, &w)) return 0;
    pthread_rwlock_unlock(&t->lock);
    return 1;
}

int api_registry_get(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                     int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out)
{
    memset(out, 0, sizeof *out);
    tenant_t *t;
    const wl_t *w;
    int rc = lock_workload(reg, tenant_id, workload_id, &t, &w);
    if (rc) return rc;
    view_t v;
    jctx_t jc = {1};
    eval(reg, w, now_ms, &v);
    json_t *root = render_workload(reg, tenant_id, &v, &jc, 1);
    pthread_rwlock_unlock(&t->lock);
    out->total = 1;
    return emit(root, &jc, arena, out);
}

int api_registry_endpoints(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                           int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out)
{
    memset(out, 0, sizeof *out);
    tenant_t *t;
    const wl_t *w;
    int rc = lock_workload(reg, tenant_id, workload_id, &t, &w);
    if (rc) return rc;
    view_t v;
    jctx_t jc = {1};
    eval(reg, w, now_ms, &v);
    json_t *arr = render_endpoints(&v, reg->opt.staleness_ms, 0);
    pthread_rwlock_unlock(&t->lock);
    out->total = arr ? (int64_t)json_array_size(arr) : 0;
    return emit(arr ? json_pack("{s:o}", "endpoints", arr) : NULL, &jc, arena, out);
}

/* The elements present at v->at, sorted by level, name, id. */
static int el_level(const element_t *e)
{
    const char *s = e->f[EL_LEVEL];
    long x = s ? strtol(s, NULL, 10) : 1;
    return x < 1 ? 1 : x > 3 ? 3 : (int)x;
}

static int el_cmp(const void *a, const void *b)
{
    const element_t *x = *(const element_t *const *)a, *y = *(const element_t *const *)b;
    int lx = el_level(x), ly = el_level(y);
    if (lx != ly) return lx - ly;
    int c = strcmp(x->f[EL_NAME] ? x->f[EL_NAME] : "", y->f[EL_NAME] ? y->f[EL_NAME] : "");
    return c ? c : strcmp(x->id, y->id);
}

static size_t present_elements(const wl_t *w, const view_t *v, int64_t stl, element_t **outv)
{
    size_t n = 0;
    for (size_t i = 0; i < w->nels; i++)
        if (st_holds(&w->els[i]->s, v->at, stl)) outv[n++] = w->els[i];
    return n;
}

/* The spec caps names at 250 characters: cut at a UTF-8 boundary. */
static json_t *jname250(const char *s)
{
    if (!s) return json_string("");
    size_t chars = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && ++chars > 250) break;
    }
    json_t *j = json_stringn(s, i);
    return j ? j : json_string("");
}

static json_t *render_element(const element_t *e)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", jstr(e->id));
    json_object_set_new(o, "name", jname250(e->f[EL_NAME]));
    json_object_set_new(o, "hierarchyLevel", json_integer(el_level(e)));
    json_object_set_new(o, "parentId", e->f[EL_PARENT] ? jstr(e->f[EL_PARENT]) : json_null());
    int64_t ms;
    if (e->f[EL_CREATED] && parse_time(e->f[EL_CREATED], &ms) == 0)
        json_object_set_new(o, "createdAt", jtime(ms));
    if (e->f[EL_UID] || e->f[EL_KNAME] || e->f[EL_GROUP] || e->f[EL_VERSION] || e->f[EL_KIND]) {
        json_t *k = json_object(), *gvk = json_object();
        if (e->f[EL_UID]) json_object_set_new(k, "uid", jstr(e->f[EL_UID]));
        if (e->f[EL_KNAME]) json_object_set_new(k, "name", jstr(e->f[EL_KNAME]));
        if (e->f[EL_GROUP]) json_object_set_new(gvk, "group", jstr(e->f[EL_GROUP]));
        if (e->f[EL_VERSION]) json_object_set_new(gvk, "version", jstr(e->f[EL_VERSION]));
        if (e->f[EL_KIND]) json_object_set_new(gvk, "kind", jstr(e->f[EL_KIND]));
        json_object_set_new(k, "gvk", gvk);
        json_object_set_new(o, "kubernetesRef", k);
    } else {
        json_object_set_new(o, "kubernetesRef", json_null());
    }
    return o;
}

int api_registry_elements(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                          int64_t offset, int64_t limit, int64_t now_ms,
                          strata_arena_t *arena, api_registry_result_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_page(offset, &limit, out, arena);
    if (rc) return rc;
    tenant_t *t;
    const wl_t *w;
    if ((rc = lock_workload(reg, tenant_id, workload_id, &t, &w))) return rc;
    view_t v;
    jctx_t jc = {1};
    eval(reg, w, now_ms, &v);
    element_t **ev = w->nels ? strata_arena_alloc(arena, w->nels * sizeof *ev) : NULL;
    if (w->nels && !ev) {
        pthread_rwlock_unlock(&t->lock);
        log_enomem("arena");
        return STRATA_ENOMEM;
    }
    size_t n = present_elements(w, &v, reg->opt.staleness_ms, ev);
    if (n > 1) qsort(ev, n, sizeof *ev, el_cmp);
    size_t start = (uint64_t)offset < n ? (size_t)offset : n;
    size_t end = (uint64_t)limit < n - start ? start + (size_t)limit : n;
    json_t *arr = json_array();
    for (size_t i = start; arr && i < end; i++) json_array_append_new(arr, render_element(ev[i]));
    pthread_rwlock_unlock(&t->lock);
    json_t *root = json_object();
    if (root) {
        json_object_set_new(root, "elements", arr ? arr : json_array());
        if (end < n) json_object_set_new(root, "next", json_integer((json_int_t)end));
    } else {
        json_decref(arr);
    }
    out->total = (int64_t)n;
    return emit(root, &jc, arena, out);
}

int api_registry_elements_count(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                                int64_t now_ms, strata_arena_t *arena,
                                api_registry_result_t *out)
{
    memset(out, 0, sizeof *out);
    tenant_t *t;
    const wl_t *w;
    int rc = lock_workload(reg, tenant_id, workload_id, &t, &w);
    if (rc) return rc;
    view_t v;
    jctx_t jc = {1};
    eval(reg, w, now_ms, &v);
    const int64_t stl = reg->opt.staleness_ms;
    int64_t stored = 0;
    for (size_t i = 0; i < w->nels; i++) stored += st_holds(&w->els[i]->s, v.at, stl);
    int64_t total = stored;
    if (st_holds(&w->elements_total, v.at, stl) && isfinite(w->elements_total.v) &&
        w->elements_total.v > (double)stored && w->elements_total.v < 2147483647.0)
        total = (int64_t)w->elements_total.v;
    pthread_rwlock_unlock(&t->lock);
    out->total = total;
    return emit(json_pack("{s:I,s:I}", "totalElementsCount", (json_int_t)total,
                          "storedElementsCount", (json_int_t)stored),
                &jc, arena, out);
}

int api_registry_foreach(api_registry_t *reg, int32_t tenant_id, int64_t now_ms,
                         api_registry_summary_fn fn, void *ctx)
{
    tenant_t *t = tenant_find(reg, tenant_id);
    if (!t) return 0;
    int rc = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nwl && !rc; i++) {
        const wl_t *w = t->wlv[i];
        if (!w->has_info) continue;
        view_t v;
        eval(reg, w, now_ms, &v);
        if (v.deleted) continue;
#define S(l) (w->lab[l] ? w->lab[l] : "")
        api_registry_summary_t s = {
            .id = w->id, .name = S(L_WORKLOAD_NAME), .type = S(L_WORKLOAD_TYPE),
            .category = S(L_CATEGORY), .phase = PHASES[v.phase],
            .cluster_id = cluster_id(w), .department_id = S(L_DEPT_ID),
            .department_name = S(L_DEPT_NAME), .project_id = S(L_PROJECT_ID),
            .project_name = S(L_PROJECT_NAME),
            .requested_nodepools = (const char *const *)w->requested.v,
            .nrequested_nodepools = w->requested.n,
            .current_nodepools = (const char *const *)w->current.v,
            .ncurrent_nodepools = w->current.n,
            .created_at_ms = v.created_at, .phase_updated_at_ms = v.phase_updated_at,
            .allocated_gpus = v.alloc, .idle_allocated_gpus = v.idle_alloc,
        };
#undef S
        rc = fn(&s, ctx);
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

int api_registry_foreach_pod(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                             api_registry_pod_fn fn, void *ctx)
{
    tenant_t *t;
    const wl_t *w;
    int rc = lock_workload(reg, tenant_id, workload_id, &t, &w);
    if (rc) return rc;
    const int64_t stl = reg->opt.staleness_ms;
    for (const pod_t *p = w->pods; p && !rc; p = p->wl_next) {
        if (p->info.t == TMIN) continue;
        api_registry_pod_t ap = {
            .namespace_ = p->ns, .pod = p->name,
            .node = p->node ? p->node : "", .nodepool = p->nodepool ? p->nodepool : "",
            .first_ms = p->first_t, .last_ms = p->info.t, .end_ms = st_end(&p->info, stl),
        };
        rc = fn(&ap, ctx);
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}

/* ---- housekeeping -------------------------------------------------------------- */

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
        pthread_rwlock_unlock(&t->lock);
    }
    pthread_rwlock_unlock(&reg->lock);
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static int64_t st_end_or_min(const sstate_t *s, int64_t stl)
{
    return s->t == TMIN ? TMIN : st_end(s, stl);
}

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
    if (p->wl) {
        for (pod_t **pp = &p->wl->pods; *pp; pp = &(*pp)->wl_next)
            if (*pp == p) { *pp = p->wl_next; break; }
    }
    gc_gpus(t, &p->gpus, 0, 0, 1);
    bmap_del(&t->pods, p->key, p->klen, hash_bytes(p->key, p->klen));
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
    for (size_t i = 0; i < w->nels; i++) {
        element_drop(t, w->els[i]);
    }
    size_t n = strlen(w->id);
    bmap_del(&t->wls, w->id, n, hash_bytes(w->id, n));
    wl_free(w);
}

static int gc_tenant(tenant_t *t, int64_t before, int64_t stl, size_t *dropped)
{
    /* Pods first (their GPUs with them), collected before any map shifts. */
    pod_t **pods = t->pods.n ? malloc(t->pods.n * sizeof *pods) : NULL;
    if (t->pods.n && !pods) { log_enomem("gc"); return STRATA_ENOMEM; }
    size_t np = 0;
    for (size_t i = 0; i < t->pods.cap; i++) {
        pod_t *p = t->pods.b[i].v;
        if (!p) continue;
        int64_t act = gc_gpus(t, &p->gpus, before, stl, 0);
        act = max64(act, st_end_or_min(&p->info, stl));
        act = max64(act, st_end_or_min(&p->running, stl));
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
            for (const pod_t *p = w->pods; p; p = p->wl_next)
                act = max64(act, st_end_or_min(&p->info, stl));
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
            if (st_end_or_min(&e->s, stl) > before) w->els[ke++] = e;
            else element_drop(t, e);
        }
        w->nels = ke;
        size_t kp = 0;
        for (size_t k = 0; k < w->neps; k++) {
            if (st_end_or_min(&w->eps[k].s, stl) > before) { w->eps[kp++] = w->eps[k]; continue; }
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

/* ---- replay from the store ---------------------------------------------------- */

static int replay_select(api_registry_t *reg, const api_read_source_t *src,
                         const tsdb_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                         size_t *fed)
{
    api_read_set_t *set;
    int rc = api_read_select(src, 0, API_READ_ALL_TENANTS, m, nm, mint, maxt, &set);
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
        "runai_workload_element_info|runai_workload_elements_total";
    size_t fed = 0;
    const tsdb_matcher_t wl[] = {{TSDB_MATCH_RE, "__name__", workload_series}};
    const tsdb_matcher_t gpu[] = {{TSDB_MATCH_EQ, "__name__", "DCGM_FI_DEV_GPU_UTIL"}};
    const tsdb_matcher_t pod[] = {{TSDB_MATCH_EQ, "__name__", "kube_pod_status_phase"},
                                  {TSDB_MATCH_EQ, "phase", "Running"}};
    /* A GPU at 0% over the whole tail has been at 0% for at least
     * gpu_idle_after at maxt, which is all the idle rule asks. */
    int64_t gpu_from = maxt - reg->opt.staleness_ms - reg->opt.gpu_idle_after_ms;
    int64_t pod_from = maxt - reg->opt.staleness_ms;
    int rc = replay_select(reg, src, wl, 1, mint, maxt, &fed);
    if (!rc) rc = replay_select(reg, src, gpu, 1, gpu_from > mint ? gpu_from : mint, maxt, &fed);
    if (!rc) rc = replay_select(reg, src, pod, 2, pod_from > mint ? pod_from : mint, maxt, &fed);
    if (series) *series = fed;
    return rc;
}
