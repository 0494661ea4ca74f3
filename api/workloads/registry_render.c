/*
 * registry_render.c: the registry's JSON bodies, built with jansson: a
 * Workload / WorkloadDetailed from its evaluated view, its endpoints and
 * urls, a workload element, and reg_emit(), which serialises a tree into
 * the caller's arena.  Integral numbers print as integers, other reals in
 * the shortest form that reads back (jctx_t tracks the precision);
 * timestamps are RFC 3339 UTC.  docs/registry.md, "Derived fields", has the
 * field rules and the empty forms of fields the data model cannot fill.
 */
#include "registry_internal.h"

#include <math.h>

#include "strata_fmt.h"

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
                        tls && !strcasecmp(tls, "true")    ? json_true()
                        : tls && !strcasecmp(tls, "false") ? json_false()
                                                           : json_null());
    if (e->f[EP_PROTOCOL]) json_object_set_new(o, "protocol", jstr(e->f[EP_PROTOCOL]));
    if (e->f[EP_URL]) json_object_set_new(o, "url", jstr(e->f[EP_URL]));
    return o;
}

json_t *reg_render_endpoints(const view_t *v, int64_t stl, int urls_only)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->w->neps; i++) {
        const endpoint_t *e = &v->w->eps[i];
        if (!st_holds(&e->s, v->at, stl)) continue;
        if (urls_only) {
            if (e->f[EP_URL]) json_array_append_new(a, jstr(e->f[EP_URL]));
        } else
            json_array_append_new(a, render_endpoint(e));
    }
    return a;
}

/* A spec quantity (RequestResourceQuantity's string), shortest round-trip form. */
static json_t *jqty(double d)
{
    if (!isfinite(d)) return json_null();
    char buf[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(d, buf, sizeof buf);
    return jstr(buf);
}

/* {request, limit} of one resource, each null when unknown; null when both are. */
static json_t *render_rl(jctx_t *jc, const int has[RK_N], const double val[RK_N], int quantity)
{
    if (!has[RK_REQUEST] && !has[RK_LIMIT]) return json_null();
    json_t *o = json_object();
    if (!o) return json_null();
    for (int k = 0; k < RK_N; k++) {
        json_t *x = !has[k] ? json_null() : quantity ? jqty(val[k]) : jnum(jc, val[k]);
        json_object_set_new(o, k == RK_REQUEST ? "request" : "limit", x);
    }
    return o;
}

/* A WorkloadRequestResources object, null when no request or limit holds
 * (gpuRequestType alone does not make one). */
static json_t *render_requests(jctx_t *jc, const int has[RS_N][RK_N], const double val[RS_N][RK_N],
                               const char *gpu_type)
{
    int any = 0;
    for (int i = 0; i < RS_N; i++) any |= has[i][RK_REQUEST] | has[i][RK_LIMIT];
    if (!any) return json_null();
    json_t *o = json_object();
    if (!o) return json_null();
    if (gpu_type) json_object_set_new(o, "gpuRequestType", jstr(gpu_type));
    json_object_set_new(o, "gpu", render_rl(jc, has[RS_GPU], val[RS_GPU], 0));
    json_object_set_new(o, "gpuMemory", render_rl(jc, has[RS_GPU_MEMORY], val[RS_GPU_MEMORY], 1));
    json_object_set_new(o, "cpu", render_rl(jc, has[RS_CPU], val[RS_CPU], 0));
    json_object_set_new(o, "cpuMemory", render_rl(jc, has[RS_CPU_MEMORY], val[RS_CPU_MEMORY], 1));
    return o;
}

/* A pod count label: an integer in 0..INT32_MAX, else -1 (missing or not one). */
static long long label_count(const char *s)
{
    if (!s) return -1;
    char *e;
    long long n = strtoll(s, &e, 10);
    return e != s && !*e && n >= 0 && n <= INT32_MAX ? n : -1;
}

/* RequestedPods from the info labels requested_pods, requested_pods_min,
 * requested_pods_max, parallelism, completions: each null when missing or
 * not an integer; NULL (the field left out) when none is one. */
static json_t *render_requested_pods(const wl_t *w)
{
    static const struct {
        const char *key;
        enum label_id label;
    } f[] = { { "number", L_REQUESTED_PODS },
              { "min", L_REQ_PODS_MIN },
              { "max", L_REQ_PODS_MAX },
              { "parallelism", L_PARALLELISM },
              { "completions", L_COMPLETIONS } };
    long long n[5];
    int any = 0;
    for (int i = 0; i < 5; i++) any |= (n[i] = label_count(w->lab[f[i].label])) >= 0;
    if (!any) return NULL;
    json_t *o = json_object();
    for (int i = 0; o && i < 5; i++)
        json_object_set_new(o, f[i].key, n[i] >= 0 ? json_integer((json_int_t)n[i]) : json_null());
    return o;
}

/* "true" / "false" (any case): 1 / 0; anything else -1. */
static int label_bool(const char *s)
{
    if (!s) return -1;
    return !strcasecmp(s, "true") ? 1 : !strcasecmp(s, "false") ? 0 : -1;
}

/* The spec's PhaseReason enum; anything else is unknown. */
static int phase_reason_ok(const char *s)
{
    return s && (!strcmp(s, "NonPreemptibleOverQuota") || !strcmp(s, "OverLimit"));
}

static json_t *render_conditions(const view_t *v, int64_t stl)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->w->nconds; i++) {
        const condition_t *c = &v->w->conds[i];
        if (!st_holds(&c->s, v->at, stl)) continue;
        json_t *o = json_object();
        if (!o) continue;
        json_object_set_new(o, "type", jstr(c->type));
        json_object_set_new(o, "status", jstr(c->status));
        if (c->reason) json_object_set_new(o, "reason", jstr(c->reason));
        if (c->message) json_object_set_new(o, "message", jstr(c->message));
        json_object_set_new(o, "lastTransitionTime", jtime(c->since));
        json_array_append_new(a, o);
    }
    return a;
}

/* Null when the agent never sent any; else those holding at v->at whose
 * phase_reason is in the spec's enum (the field is required there). */
static json_t *render_pending_messages(const view_t *v, int64_t stl)
{
    if (!v->w->npsms) return json_null();
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->w->npsms; i++) {
        const psm_t *m = &v->w->psms[i];
        if (!st_holds(&m->s, v->at, stl) || !phase_reason_ok(m->f[PS_PHASE_REASON])) continue;
        json_t *o = json_object();
        if (!o) continue;
        json_object_set_new(o, "nodePool", jstr(m->f[PS_NODEPOOL]));
        json_object_set_new(o, "phaseReason", jstr(m->f[PS_PHASE_REASON]));
        json_object_set_new(o, "reason", jstr(m->f[PS_REASON]));
        /* orgType, like phaseReason, is nullable over a non-nullable enum:
         * left out when not PROJECT or DEPARTMENT */
        const char *org = m->f[PS_ORG_TYPE];
        if (org && (!strcmp(org, "PROJECT") || !strcmp(org, "DEPARTMENT")))
            json_object_set_new(o, "orgType", jstr(org));
        json_object_set_new(o, "userMessage",
                            m->f[PS_USER_MESSAGE] ? jstr(m->f[PS_USER_MESSAGE]) : json_null());
        json_array_append_new(a, o);
    }
    return a ? a : json_null();
}

json_t *reg_render_workload(const api_registry_t *reg, int32_t tenant_id, const view_t *v, jctx_t *jc,
                            int detailed)
{
    const wl_t *w = v->w;
    const int64_t stl = reg->opt.staleness_ms;
    json_t *o = json_object();
    if (!o) return NULL;
#define SET(k, val) json_object_set_new(o, k, val)
#define LAB(k, l)   SET(k, jstr(w->lab[l]))
#define LAB_OPT(k, l)             \
    do {                          \
        if (w->lab[l]) LAB(k, l); \
    } while (0)
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
    SET("phase", jstr(reg_phases[v->phase]));
    SET("phaseUpdatedAt", jtime(v->phase_updated_at));
    /* phaseMessage / phaseReason: labels of the current phase's series; a
     * reason outside the spec's enum is left out (null cannot validate). */
    const char *pmsg = w->ph[v->phase].message, *preason = w->ph[v->phase].reason;
    if (pmsg) SET("phaseMessage", jstr(pmsg));
    if (phase_reason_ok(preason)) SET("phaseReason", jstr(preason));
    /* k8sPhase: the info label k8s_phase, since its first sample; "Unknown"
     * (since createdAt) when the agent sends none. */
    if (w->lab[L_K8S_PHASE]) {
        SET("k8sPhase", jstr(w->lab[L_K8S_PHASE]));
        SET("k8sPhaseUpdatedAt", jtime(w->k8s_phase_since));
    } else {
        SET("k8sPhase", jstr("Unknown"));
        SET("k8sPhaseUpdatedAt", jtime(v->created_at));
    }
    SET("conditions", render_conditions(v, stl));
    SET("runningPods", json_integer(v->running_pods));
    const char *gtype = w->lab[L_GPU_REQ_TYPE];
    if (gtype && strcmp(gtype, "portion") != 0 && strcmp(gtype, "memory") != 0) gtype = NULL;
    SET("workloadRequestedResources", render_requests(jc, v->has_wreq, v->wreq, gtype));
    SET("podsRequestedResources", render_requests(jc, v->has_preq, v->preq, NULL));
    json_t *alloc = json_object();
    if (alloc) {
        json_object_set_new(alloc, "gpu", v->has_alloc ? jnum(jc, v->alloc) : json_null());
        json_object_set_new(alloc, "gpuMemory",
                            v->has_areq[RS_GPU_MEMORY] ? jqty(v->areq[RS_GPU_MEMORY]) : json_null());
        json_object_set_new(alloc, "cpu", v->has_areq[RS_CPU] ? jnum(jc, v->areq[RS_CPU]) : json_null());
        json_object_set_new(alloc, "cpuMemory",
                            v->has_areq[RS_CPU_MEMORY] ? jqty(v->areq[RS_CPU_MEMORY]) : json_null());
        json_object_set_new(alloc, "extendedResources", json_null());
    }
    SET("allocatedResources", alloc ? alloc : json_null());
    json_t *rpods = render_requested_pods(w);
    if (rpods) SET("requestedPods", rpods);
    int act_del = label_bool(w->lab[L_ACT_DELETE]), act_sus = label_bool(w->lab[L_ACT_SUSPEND]);
    if (act_del >= 0 || act_sus >= 0) {
        json_t *as = json_object();
        if (as && act_del >= 0) json_object_set_new(as, "delete", json_boolean(act_del));
        if (as && act_sus >= 0) json_object_set_new(as, "suspend", json_boolean(act_sus));
        if (as) SET("actionsSupport", as);
    }
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
    SET("urls", reg_render_endpoints(v, stl, 1));
    SET("endpoints", reg_render_endpoints(v, stl, 0));
    if (detailed) SET("pendingSchedulingMessages", render_pending_messages(v, stl));
#undef SET
#undef LAB
#undef LAB_OPT
    return o;
}

int reg_emit(json_t *root, const jctx_t *jc, strata_arena_t *arena, api_registry_result_t *out)
{
    if (!root) {
        log_enomem("json");
        return STRATA_ENOMEM;
    }
    char *s = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(jc->prec));
    json_decref(root);
    if (!s) {
        log_enomem("json text");
        return STRATA_ENOMEM;
    }
    size_t n = strlen(s);
    out->json = strata_arena_strndup(arena, s, n);
    free(s);
    if (!out->json) {
        log_enomem("arena");
        return STRATA_ENOMEM;
    }
    out->len = n;
    return 0;
}

/* ---- elements ----------------------------------------------------------------- */

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

json_t *reg_render_element(const element_t *e)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_object_set_new(o, "id", jstr(e->id));
    json_object_set_new(o, "name", jname250(e->f[EL_NAME]));
    /* a level the agent got wrong is kept as null (counted in the stats) */
    json_object_set_new(o, "hierarchyLevel", e->level ? json_integer(e->level) : json_null());
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
