/*
 * registry_internal.h: what the files of the workload registry share, and
 * nothing outside them includes.  registry.h stays the public contract (its
 * types are opaque); the struct bodies, the label and phase tables every
 * file indexes, the series-state rules and the few cross-file functions are
 * here.  docs/registry.md has the rules this code implements.
 *
 * State per tenant: workloads (by workload_id), pods (by namespace+pod), GPU
 * utilisation series (by their full label set) and workload elements, each
 * in a hash map (bytemap.h).  A series contributes only its newest edge:
 * last real sample (t, v) and the time of a stale marker after it (sstate
 * below).  The one piece of history kept is each workload's phase runs,
 * folded into per-phase totals once more than PHASE_RUNS_MAX accumulate.
 *
 * The holding rule (docs/registry.md, "Derived fields"): a value holds over
 * [t, t + staleness) and a stale marker ends it at once.  Query-time
 * evaluation applies it against the caller's `now`; nothing here reads the
 * clock.
 *
 * The files, each using only this header and bytemap.h of the others:
 *   registry.c         label and metric tables, lifecycle, observe
 *   registry_eval.c    reg_eval(): a workload's derived fields at `now`
 *   registry_query.c   filterBy / sortBy fields, search, paging; every read
 *                      entry point (list, count, get, endpoints, elements,
 *                      contains, foreach, foreach_pod)
 *   registry_render.c  Workload, endpoint and element JSON; reg_emit()
 *   registry_gc.c      housekeeping: stats, gc
 *   registry_replay.c  the rebuild from the store through api_read_select
 */
#ifndef API_REGISTRY_INTERNAL_H
#define API_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bytemap.h"
#include "registry.h"
#include "strata_log.h"
#include "strata_time.h"

#define TMIN INT64_MIN
#define TMAX INT64_MAX

/* ---- small helpers ---------------------------------------------------------- */

static inline void log_enomem(const char *what) { strata_error("registry: out of memory", "what=%s", what); }

/* RFC 3339 UTC with Z (strata_time's form); "" for years beyond 0000..9999. */
static inline int fmt_time(int64_t ms, char buf[STRATA_TIME_RFC3339_BUFSZ])
{
    return strata_time_format_rfc3339(ms, buf, STRATA_TIME_RFC3339_BUFSZ);
}

/* An RFC 3339 date-time, or a bare date (midnight UTC) as filters may use. */
static inline int parse_time(const char *s, int64_t *out)
{
    if (strlen(s) == 10) {
        char buf[24];
        snprintf(buf, sizeof buf, "%sT00:00:00Z", s);
        return strata_time_parse_rfc3339(buf, out);
    }
    return strata_time_parse_rfc3339(s, out);
}

/* ---- series state: the newest edge of a series ------------------------------- */

typedef struct sstate {
    int64_t t; /* newest real (non-stale) sample, TMIN = never */
    double v;
    int64_t end; /* stale marker after t, TMAX = none */
} sstate_t;

/* 1 when (t, v) became the newest sample; older and equal ones are ignored. */
static inline int st_sample(sstate_t *s, int64_t t, double v)
{
    if (s->t != TMIN && t <= s->t) return 0;
    s->t = t;
    s->v = v;
    if (t >= s->end) s->end = TMAX;
    return 1;
}

static inline void st_stale(sstate_t *s, int64_t t)
{
    if (s->t != TMIN && t > s->t && t < s->end) s->end = t;
}

static inline int st_holds(const sstate_t *s, int64_t at, int64_t staleness)
{
    return s->t != TMIN && at - s->t < staleness && at < s->end;
}

/* When the series' presence ends: the stale marker, else t + staleness. */
static inline int64_t st_end(const sstate_t *s, int64_t staleness)
{
    return s->end != TMAX ? s->end : s->t + staleness;
}

/* ---- labels and phases ---------------------------------------------------- */

/* Every label name the registry reads, sorted by strcmp (checked at new()). */
// clang-format off
#define LABELS(X)                                                                \
    X(L_ACT_DELETE, "actions_delete") X(L_ACT_SUSPEND, "actions_suspend")       \
    X(L_AI_APP_ID, "ai_application_id") X(L_AI_APP_NAME, "ai_application_name") \
    X(L_CATEGORY, "category") X(L_CLUSTER_ID, "cluster_id")                     \
    X(L_COMPLETIONS, "completions") X(L_CONTAINER, "container")                 \
    X(L_CREATED_AT, "created_at") X(L_CURRENT_NP, "current_nodepools")          \
    X(L_DEPT_ID, "department_id") X(L_DEPT_NAME, "department_name")             \
    X(L_DIST_FW, "distributed_framework") X(L_ELEMENT_ID, "element_id")         \
    X(L_GPU_REQ_TYPE, "gpu_request_type")                                       \
    X(L_HIERARCHY, "hierarchy_level") X(L_HOST, "host") X(L_IMAGE, "image")     \
    X(L_K8S_GROUP, "k8s_group") X(L_K8S_KIND, "k8s_kind")                      \
    X(L_K8S_NAME, "k8s_name") X(L_K8S_PHASE, "k8s_phase")                      \
    X(L_K8S_UID, "k8s_uid") X(L_K8S_VERSION, "k8s_version") X(L_KIND, "kind")  \
    X(L_MESSAGE, "message") X(L_NAME, "name")                                   \
    X(L_NAMESPACE, "namespace") X(L_NODE, "node") X(L_NODEPOOL, "nodepool")     \
    X(L_ORG_TYPE, "org_type") X(L_PARALLELISM, "parallelism")                   \
    X(L_PARENT_ID, "parent_id") X(L_PATH, "path") X(L_PHASE, "phase")           \
    X(L_PHASE_MSG, "phase_message") X(L_PHASE_REASON, "phase_reason")           \
    X(L_POD, "pod") X(L_PORT, "port") X(L_PRIORITY, "priority")                 \
    X(L_PRIORITY_CLASS, "priority_class") X(L_PROJECT_ID, "project_id")         \
    X(L_PROJECT_NAME, "project_name") X(L_PROTOCOL, "protocol")                 \
    X(L_REASON, "reason")                                                       \
    X(L_REQUESTED_NP, "requested_nodepools") X(L_REQUESTED_PODS, "requested_pods") \
    X(L_REQ_PODS_MAX, "requested_pods_max") X(L_REQ_PODS_MIN, "requested_pods_min") \
    X(L_RESOURCE, "resource") X(L_SOURCE, "source") X(L_STATUS, "status")       \
    X(L_SUBMITTED_BY, "submitted_by") X(L_TLS, "tls_enabled") X(L_TYPE, "type") \
    X(L_URL, "url") X(L_USER_MESSAGE, "user_message")                           \
    X(L_WORKLOAD_ID, "workload_id") X(L_WORKLOAD_NAME, "workload_name")         \
    X(L_WORKLOAD_TYPE, "workload_type")
// clang-format on

enum label_id {
#define X(id, s) id,
    LABELS(X)
#undef X
        L_COUNT
};

enum { EP_HOST, EP_PORT, EP_PATH, EP_PROTOCOL, EP_URL, EP_TLS, EP_NF };

enum { EL_NAME, EL_LEVEL, EL_PARENT, EL_CREATED, EL_UID, EL_KNAME, EL_GROUP, EL_VERSION, EL_KIND, EL_NF };

/* Pending scheduling messages: one per distinct label set. */
enum { PS_NODEPOOL, PS_PHASE_REASON, PS_REASON, PS_ORG_TYPE, PS_USER_MESSAGE, PS_NF };

/* Requested resources: the workload's own (runai_workload_requested_resource)
 * and each container's (kube_pod_container_resource_requests/_limits). */
enum { RS_GPU, RS_GPU_MEMORY, RS_CPU, RS_CPU_MEMORY, RS_N };
enum { RK_REQUEST, RK_LIMIT, RK_N };

/* The API's Phase enum, in the spec's order (defined in registry.c). */
#define NPHASE 14
extern const char *const reg_phases[NPHASE];
enum { PH_PENDING = 3, PH_RUNNING = 5, PH_FAILED = 10, PH_COMPLETED = 11, PH_UNKNOWN = 13 };

/* ---- state ------------------------------------------------------------------ */

struct wl;

typedef struct gpu {
    char *key;
    size_t klen;
    struct gpu *next; /* in its owner's list (workload or pod) */
    sstate_t s;
    int64_t zero_since; /* first sample of the current run of 0%, TMIN = not at 0 */
} gpu_t;

/* One container's resource series (request or limit of one resource). */
typedef struct cres {
    struct cres *next;
    char *container; /* "" when the series has no container label */
    int res, kind;
    sstate_t s;
} cres_t;

typedef struct pod {
    char *key; /* namespace NUL pod NUL */
    size_t klen;
    const char *ns, *name; /* into key */
    struct wl *wl;
    struct pod *wl_next;
    char *node, *nodepool;
    sstate_t info;
    int64_t first_t;
    sstate_t running; /* kube_pod_status_phase{phase="Running"} */
    sstate_t gpumem;  /* runai_pod_gpu_memory_allocated_bytes */
    gpu_t *gpus;
    cres_t *res; /* kube_pod_container_resource_requests/_limits */
} pod_t;

typedef struct endpoint {
    char *f[EP_NF];
    sstate_t s;
} endpoint_t;

typedef struct element {
    char *key; /* workload_id NUL element_id NUL */
    size_t klen;
    const char *id; /* into key */
    char *f[EL_NF];
    sstate_t s;
    int level;        /* parsed hierarchy_level, 1..3; 0 = missing or out of range */
    int level_warned; /* a bad level was counted and logged for this element */
} element_t;

/* runai_workload_condition, one per condition type (the newest labels). */
typedef struct condition {
    char *type, *status, *reason, *message;
    sstate_t s;
    int64_t since; /* first sample of the current status: lastTransitionTime */
} condition_t;

/* runai_workload_pending_scheduling_message, one per distinct label set. */
typedef struct psm {
    char *f[PS_NF];
    sstate_t s;
} psm_t;

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
    char *lab[L_COUNT];    /* info labels only (INFO_LABELS) */
    sstate_t info;         /* over all info series of the workload */
    int64_t first_t;       /* first info sample */
    int64_t created_label; /* parsed created_at label, TMIN = none/invalid */
    int64_t updated_t;     /* newest sample of any series carrying workload_id */
    nodepools_t requested, current;
    struct {
        sstate_t s;
        int64_t run_start;
        char *message, *reason; /* phase_message / phase_reason of the newest sample */
    } ph[NPHASE];
    int64_t k8s_phase_since;  /* first info sample carrying the current k8s_phase */
    sstate_t req[RS_N][RK_N]; /* runai_workload_requested_resource */
    condition_t *conds;       /* sorted by type */
    size_t nconds;
    psm_t *psms;
    size_t npsms;
    int any_phase;
    phase_run_t *runs; /* ascending by start; consecutive runs differ in phase */
    size_t nruns, capruns;
    int64_t folded_ms[NPHASE];
    sstate_t alloc, memreq, elements_total;
    pod_t *pods;
    cres_t *res; /* container resource series carrying workload_id but no (namespace, pod) */
    gpu_t *gpus; /* GPU series carrying workload_id */
    endpoint_t *eps;
    size_t neps;
    element_t **els;
    size_t nels, capels;
} wl_t;

/* A series' handle (docs/registry.md, "Series handles"): for a series
 * known by its store ref whose samples need no label per sample, the state
 * they land in, found once by the slow path.  Kept until the next gc. */
typedef struct reg_handle {
    uint32_t ref; /* 0 = empty slot */
    int gpu;      /* target is a gpu_t, else an sstate_t */
    void *target;
    struct wl *w; /* the workload a new sample touches, or NULL */
} reg_handle_t;

typedef struct tenant {
    int32_t id;
    reg_handle_t *hs; /* open addressing by ref; cleared by every gc */
    size_t hcap, hcount;
    pthread_rwlock_t lock;
    bmap_t wls, pods, gpus, els;
    wl_t **wlv; /* insertion order, for iteration */
    size_t nwl, capwl;
    uint64_t bad_levels; /* elements seen with a missing or out-of-range hierarchy_level */
} tenant_t;

struct api_registry {
    api_registry_options_t opt;
    pthread_rwlock_t lock; /* the tenant map only */
    bmap_t tenants;
};

/* Forgets every series handle of t (tenant lock held for writing): the
 * state they point at may be freed. */
void reg_handles_clear(tenant_t *t);

/* Takes p out of its workload's pod list (p->wl itself is left as is). */
static inline void pod_unlink(pod_t *p)
{
    if (!p->wl) return;
    for (pod_t **pp = &p->wl->pods; *pp; pp = &(*pp)->wl_next)
        if (*pp == p) {
            *pp = p->wl_next;
            break;
        }
}

/* Frees a list of container resource series. */
static inline void cres_free(cres_t **head)
{
    for (cres_t *c = *head, *n; c; c = n) {
        n = c->next;
        free(c->container);
        free(c);
    }
    *head = NULL;
}

/* Frees a pod's container resource series. */
static inline void pod_free_res(pod_t *p) { cres_free(&p->res); }

/* A hierarchy_level label: 1..3, else 0 (missing, not an integer, out of range). */
static inline int el_parse_level(const char *s)
{
    if (!s) return 0;
    char *end;
    long x = strtol(s, &end, 10);
    return end != s && !*end && x >= 1 && x <= 3 ? (int)x : 0;
}

/* An element's level for ordering: an unknown one sorts after level 3. */
static inline int el_level(const element_t *e) { return e->level ? e->level : 4; }

/* The spec requires clusterId as a uuid: a workload whose agent sent none
 * gets the nil uuid rather than a body that breaks the schema. */
#define NIL_UUID "00000000-0000-0000-0000-000000000000"

static inline const char *cluster_id(const wl_t *w)
{
    return w->lab[L_CLUSTER_ID] ? w->lab[L_CLUSTER_ID] : NIL_UUID;
}

/* ---- registry.c ------------------------------------------------------------- */

/* The tenant, or NULL; tenants live as long as the registry. */
tenant_t *reg_tenant_find(api_registry_t *reg, int32_t id);
/* Frees a workload and what it owns (not its pods, GPUs or elements, which
 * belong to the tenant's maps). */
void reg_wl_free(wl_t *w);

/* ---- registry_eval.c -------------------------------------------------------- */

/* A workload's derived fields at one instant. */
typedef struct view {
    const wl_t *w;
    int deleted;
    int64_t deleted_at; /* TMIN = null */
    int64_t at;         /* instant for endpoints/elements: now, or just before deletion */
    int64_t created_at;
    int phase;
    int64_t phase_updated_at;
    int64_t completed_at; /* TMIN = null */
    int has_totals;
    int64_t pending_s, running_s;
    int running_pods;
    int has_alloc;
    double alloc;
    int has_memreq;
    double memreq;
    /* requested resources: the workload's own, its pods' summed, and the
     * running pods' summed (allocatedResources); has_* = some series held */
    int has_wreq[RS_N][RK_N], has_preq[RS_N][RK_N], has_areq[RS_N];
    double wreq[RS_N][RK_N], preq[RS_N][RK_N], areq[RS_N];
    int idle_gpus;
    double idle_alloc;
    int has_priority;
    int64_t priority;
} view_t;

/* Evaluates w at now into *v. */
void reg_eval(const api_registry_t *reg, const wl_t *w, int64_t now, view_t *v);

/* ---- registry_render.c ------------------------------------------------------ */

/* jansson prints every real with one precision; track the smallest one that
 * still round-trips every real of the document, so 0.1 prints as 0.1. */
typedef struct jctx {
    int prec;
} jctx_t;

/* A WorkloadDetailed (detailed != 0) or a Workload of the list. */
json_t *reg_render_workload(const api_registry_t *reg, int32_t tenant_id, const view_t *v, jctx_t *jc,
                            int detailed);
/* v's endpoints holding at v->at: their urls (urls_only) or Endpoint objects. */
json_t *reg_render_endpoints(const view_t *v, int64_t stl, int urls_only);
json_t *reg_render_element(const element_t *e);
/* Serialises root (consumed; NULL = out of memory) into out->json in the arena. */
int reg_emit(json_t *root, const jctx_t *jc, strata_arena_t *arena, api_registry_result_t *out);

#endif
