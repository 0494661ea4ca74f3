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
    /* phaseReason is left out: the spec makes it nullable but its enum is not,
     * so no null can validate; the field is optional. */
    SET("k8sPhase", jstr(reg_phases[v->phase]));
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
    SET("urls", reg_render_endpoints(v, stl, 1));
    SET("endpoints", reg_render_endpoints(v, stl, 0));
    if (detailed) SET("pendingSchedulingMessages", json_null());
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
