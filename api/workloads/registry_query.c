/*
 * registry_query.c: the registry's read side.  The filterBy / sortBy fields
 * of the Workloads API (types, operators, null and multi-value rules), the
 * search, sorting and paging of GET /workloads and /count, and every read
 * entry point of registry.h: list, count, get, endpoints, elements,
 * elements_count, contains, foreach (telemetry) and foreach_pod (metrics).
 * Each takes the tenant's read lock, evaluates (registry_eval.c) and renders
 * (registry_render.c) under it.  docs/registry.md, "Queries", has the rules.
 */
#include "registry_internal.h"
#include "filter.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <strings.h>

#include "strata_fmt.h"

/* ---- filterBy / sortBy fields ----------------------------------------------- */

enum ftype { FT_STR, FT_NUM, FT_DATE };

// clang-format off
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
// clang-format on

enum field {
#define X(id, name, type, label) id,
    FIELDS(X)
#undef X
        F_COUNT
};

static const struct {
    const char *name;
    enum ftype type;
    int label;
    int uuid; /* the spec types the field as a uuid */
} FIELD_TAB[F_COUNT] = {
#define X(id, name, type, label) { name, type, label, id == F_CLUSTER_ID },
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
    const char *const *multi; /* nodepool: several strings */
    size_t nmulti;
    double d;
    int64_t t;
} fval_t;

/* The optional strings of the Workload schema: left out of the JSON when
 * their label is missing, and null to filterBy and sortBy then.  The
 * required ones render (and compare) as "". */
static int field_optional(int f)
{
    return f == F_SUBMITTED_BY || f == F_DIST_FW || f == F_AI_APP_ID || f == F_AI_APP_NAME;
}

static fval_t field_get(const view_t *v, int f)
{
    fval_t r = { 0 };
    const wl_t *w = v->w;
    if (f == F_CLUSTER_ID) {
        r.s = cluster_id(w);
        return r;
    }
    if (FIELD_TAB[f].label >= 0) {
        const char *s = w->lab[FIELD_TAB[f].label];
        r.s = s ? s : "";
        r.null = !s && field_optional(f);
        return r;
    }
    switch (f) {
    case F_PHASE: r.s = reg_phases[v->phase]; break;
    case F_NODEPOOL: {
        const nodepools_t *np = w->current.n ? &w->current : &w->requested;
        r.multi = (const char *const *)np->v;
        r.nmulti = np->n;
        r.s = np->n ? np->v[0] : "";
        break;
    }
    case F_CREATED_AT: r.t = v->created_at; break;
    case F_DELETED_AT:
        r.t = v->deleted_at;
        r.null = r.t == TMIN;
        break;
    case F_COMPLETED_AT:
        r.t = v->completed_at;
        r.null = r.t == TMIN;
        break;
    case F_PHASE_UPDATED_AT: r.t = v->phase_updated_at; break;
    case F_GUARANTEED: r.null = 1; break;
    case F_ALLOC_GPU:
        r.d = v->alloc;
        r.null = !v->has_alloc;
        break;
    case F_IDLE_GPUS: r.d = v->idle_gpus; break;
    case F_IDLE_ALLOC: r.d = v->idle_alloc; break;
    case F_PRIORITY:
        r.d = (double)v->priority;
        r.null = !v->has_priority;
        break;
    case F_PENDING:
        r.d = (double)v->pending_s;
        r.null = !v->has_totals;
        break;
    case F_RUNNING:
        r.d = (double)v->running_s;
        r.null = !v->has_totals;
        break;
    default: r.null = 1;
    }
    return r;
}

typedef struct term {
    int field;
    enum api_filter_op op;
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
    size_t i = api_filter_field_len(s);
    t->field = field_index(s, i);
    if (t->field < 0)
        return set_error(out, arena, "filterBy: invalid term \"%s\": unknown field \"%.*s\"", s, (int)i, s);
    if (api_filter_op_parse(s + i, &t->op))
        return set_error(out, arena,
                         "filterBy: invalid term \"%s\": expected one of " API_FILTER_OPS_TEXT
                         " after \"%.*s\"",
                         s, (int)i, s);
    t->val = s + i + 2;
    if (!*t->val) return set_error(out, arena, "filterBy: invalid term \"%s\": empty value", s);
    if (api_filter_op_orders(t->op) && FIELD_TAB[t->field].type == FT_NUM) {
        char *e;
        t->num = strtod(t->val, &e);
        if (e == t->val || *e || !isfinite(t->num))
            return set_error(out, arena, "filterBy: invalid term \"%s\": \"%s\" is not a number", s, t->val);
    }
    if (api_filter_op_orders(t->op) && FIELD_TAB[t->field].type == FT_DATE && parse_time(t->val, &t->t))
        return set_error(out, arena, "filterBy: invalid term \"%s\": \"%s\" is not an RFC 3339 date-time", s,
                         t->val);
    return 0;
}

/* Null (a missing value) satisfies only the negative operators.  A
 * multi-valued field (nodepool) matches a positive operator when any value
 * does, a negative one when every value does.  String operators on numbers
 * and dates apply to their rendered text. */
static int term_match(const term_t *t, const view_t *v)
{
    fval_t f = field_get(v, t->field);
    int negative = t->op == API_FILTER_NE || t->op == API_FILTER_NCONTAINS;
    if (f.null) return negative;
    char buf[32];
    switch (FIELD_TAB[t->field].type) {
    case FT_STR:
        if (f.multi && f.nmulti) {
            for (size_t i = 0; i < f.nmulti; i++) {
                int m = api_filter_match_str(t->op, f.multi[i], t->val);
                if (negative && !m) return 0;
                if (!negative && m) return 1;
            }
            return negative;
        }
        /* uuids match in any letter case for == and != (as the by-id
         * lookups find them); the other operators compare bytes */
        if (FIELD_TAB[t->field].uuid && (t->op == API_FILTER_EQ || t->op == API_FILTER_NE))
            return (strcasecmp(f.s, t->val) == 0) == (t->op == API_FILTER_EQ);
        return api_filter_match_str(t->op, f.s, t->val);
    case FT_NUM:
        if (api_filter_op_orders(t->op)) return api_filter_match_cmp(t->op, (f.d > t->num) - (f.d < t->num));
        strata_fmt_double(f.d, buf, sizeof buf);
        return api_filter_match_str(t->op, buf, t->val);
    case FT_DATE:
        if (api_filter_op_orders(t->op)) return api_filter_match_cmp(t->op, (f.t > t->t) - (f.t < t->t));
        fmt_time(f.t, buf);
        return api_filter_match_str(t->op, buf, t->val);
    }
    return 0;
}

static int view_search(const view_t *v, const char *q)
{
    const char *const s[] = { v->w->lab[L_WORKLOAD_NAME], v->w->lab[L_PROJECT_NAME], v->w->lab[L_DEPT_NAME] };
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

/* ---- queries ------------------------------------------------------------------ */

void api_registry_query_init(api_registry_query_t *q) { memset(q, 0, sizeof *q); }

static int check_page(int64_t offset, int64_t *limit, api_registry_result_t *out, strata_arena_t *arena)
{
    if (offset < 0) return set_error(out, arena, "offset: must be >= 0, got %" PRId64, offset);
    if (*limit == 0) *limit = API_REGISTRY_DEFAULT_LIMIT;
    if (*limit < 1 || *limit > API_REGISTRY_MAX_LIMIT)
        return set_error(out, arena, "limit: must be between 1 and %d, got %" PRId64, API_REGISTRY_MAX_LIMIT,
                         *limit);
    return 0;
}

static int run_query(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q, int64_t now,
                     strata_arena_t *arena, api_registry_result_t *out, int is_list)
{
    memset(out, 0, sizeof *out);
    if (q->nfilter > API_REGISTRY_MAX_FILTERS)
        return set_error(out, arena, "filterBy: at most %d terms, got %zu", API_REGISTRY_MAX_FILTERS,
                         q->nfilter);
    term_t terms[API_REGISTRY_MAX_FILTERS];
    for (size_t i = 0; i < q->nfilter; i++) {
        int rc = parse_term(q->filter_by[i] ? q->filter_by[i] : "", &terms[i], out, arena);
        if (rc) return rc;
    }
    sortctx_t sc = { F_CREATED_AT, 0 };
    int64_t limit = q->limit;
    if (is_list) {
        int rc = check_page(q->offset, &limit, out, arena);
        if (rc) return rc;
        if (q->sort_by && (sc.field = field_index(q->sort_by, strlen(q->sort_by))) < 0)
            return set_error(out, arena, "sortBy: unknown field \"%s\"", q->sort_by);
        if (q->sort_order && strcmp(q->sort_order, "asc") != 0) {
            if (strcmp(q->sort_order, "desc") != 0)
                return set_error(out, arena, "sortOrder: must be asc or desc, got \"%s\"", q->sort_order);
            sc.desc = 1;
        }
    }
    jctx_t jc = { 1 };
    json_t *root = NULL;
    tenant_t *t = reg_tenant_find(reg, tenant_id);
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
        reg_eval(reg, w, now, v);
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
            json_array_append_new(arr, reg_render_workload(reg, tenant_id, &views[i], &jc, 0));
        root = json_object();
        if (root) {
            json_object_set_new(root, "workloads", arr ? arr : json_array());
            if (end < n) json_object_set_new(root, "next", json_integer((json_int_t)end));
        } else {
            json_decref(arr);
        }
    }
    if (t) pthread_rwlock_unlock(&t->lock);
    return reg_emit(root, &jc, arena, out);
}

int api_registry_list(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q, int64_t now_ms,
                      strata_arena_t *arena, api_registry_result_t *out)
{
    return run_query(reg, tenant_id, q, now_ms, arena, out, 1);
}

int api_registry_count(api_registry_t *reg, int32_t tenant_id, const api_registry_query_t *q, int64_t now_ms,
                       strata_arena_t *arena, api_registry_result_t *out)
{
    return run_query(reg, tenant_id, q, now_ms, arena, out, 0);
}

static int is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++, s++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (*s != '-') return 0;
        } else if (!isxdigit((unsigned char)*s)) {
            return 0;
        }
    }
    return *s == '\0';
}

static wl_t *wl_get(const tenant_t *t, const char *id, size_t n)
{
    wl_t *w = bmap_get(&t->wls, id, n, hash_bytes(id, n));
    return w && w->has_info ? w : NULL;
}

/* The workload an id names.  Uuids compare case-insensitively (RFC 4122):
 * the id as given, then in lower case, then in upper case (three hash
 * lookups), and only an id the data spells in mixed case costs a walk. */
static wl_t *wl_lookup(const tenant_t *t, const char *id)
{
    size_t n = strlen(id);
    wl_t *w = wl_get(t, id, n);
    if (w || !is_uuid(id)) return w;
    char c[37];
    int letters = 0;
    for (size_t i = 0; i <= n; i++)
        letters |= isalpha((unsigned char)(c[i] = (char)tolower((unsigned char)id[i])));
    if (!letters) return NULL; /* only digits: every spelling is this one */
    if ((w = wl_get(t, c, n))) return w;
    for (size_t i = 0; i < n; i++) c[i] = (char)toupper((unsigned char)c[i]);
    if ((w = wl_get(t, c, n))) return w;
    for (size_t i = 0; i < t->nwl; i++)
        if (t->wlv[i]->has_info && !strcasecmp(t->wlv[i]->id, id)) return t->wlv[i];
    return NULL;
}

/* Looks the workload up under the tenant's read lock; on success the lock is
 * held and *tp set (caller unlocks). */
static int lock_workload(api_registry_t *reg, int32_t tenant_id, const char *id, tenant_t **tp,
                         const wl_t **wp)
{
    tenant_t *t = reg_tenant_find(reg, tenant_id);
    if (!t || !id) return STRATA_ENOTFOUND;
    pthread_rwlock_rdlock(&t->lock);
    const wl_t *w = wl_lookup(t, id);
    if (!w) {
        pthread_rwlock_unlock(&t->lock);
        return STRATA_ENOTFOUND;
    }
    *tp = t;
    *wp = w;
    return 0;
}

/* One workload read at now: the tenant (read-locked until the caller
 * unlocks it), the workload's view and the JSON context. */
typedef struct wl_read {
    tenant_t *t;
    view_t v;
    jctx_t jc;
} wl_read_t;

/* Clears *out, then lock_workload and evaluates the workload at now. */
static int wl_read_begin(api_registry_t *reg, int32_t tenant_id, const char *id, int64_t now,
                         api_registry_result_t *out, wl_read_t *r)
{
    memset(out, 0, sizeof *out);
    const wl_t *w;
    int rc = lock_workload(reg, tenant_id, id, &r->t, &w);
    if (rc) return rc;
    reg_eval(reg, w, now, &r->v);
    r->jc = (jctx_t){ 1 };
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

int api_registry_stored_id(api_registry_t *reg, int32_t tenant_id, const char *workload_id, char *buf,
                           size_t cap)
{
    tenant_t *t;
    const wl_t *w;
    if (!buf || !cap || lock_workload(reg, tenant_id, workload_id, &t, &w)) return STRATA_ENOTFOUND;
    size_t n = strlen(w->id);
    if (n < cap) memcpy(buf, w->id, n + 1);
    pthread_rwlock_unlock(&t->lock);
    return n < cap ? 0 : STRATA_ENOTFOUND;
}

int api_registry_knows_cluster(api_registry_t *reg, int32_t tenant_id, const char *cluster)
{
    tenant_t *t = reg_tenant_find(reg, tenant_id);
    if (!t || !cluster) return 0;
    int found = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nwl && !found; i++)
        found = t->wlv[i]->has_info && !strcasecmp(cluster_id(t->wlv[i]), cluster);
    pthread_rwlock_unlock(&t->lock);
    return found;
}

int api_registry_get(api_registry_t *reg, int32_t tenant_id, const char *workload_id, int64_t now_ms,
                     strata_arena_t *arena, api_registry_result_t *out)
{
    wl_read_t r;
    int rc = wl_read_begin(reg, tenant_id, workload_id, now_ms, out, &r);
    if (rc) return rc;
    json_t *root = reg_render_workload(reg, tenant_id, &r.v, &r.jc, 1);
    pthread_rwlock_unlock(&r.t->lock);
    out->total = 1;
    return reg_emit(root, &r.jc, arena, out);
}

int api_registry_endpoints(api_registry_t *reg, int32_t tenant_id, const char *workload_id, int64_t now_ms,
                           strata_arena_t *arena, api_registry_result_t *out)
{
    wl_read_t r;
    int rc = wl_read_begin(reg, tenant_id, workload_id, now_ms, out, &r);
    if (rc) return rc;
    json_t *arr = reg_render_endpoints(&r.v, reg->opt.staleness_ms, 0);
    pthread_rwlock_unlock(&r.t->lock);
    out->total = arr ? (int64_t)json_array_size(arr) : 0;
    return reg_emit(arr ? json_pack("{s:o}", "endpoints", arr) : NULL, &r.jc, arena, out);
}

/* The elements present at v->at, sorted by level, name, id. */
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

int api_registry_elements(api_registry_t *reg, int32_t tenant_id, const char *workload_id, int64_t offset,
                          int64_t limit, int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = check_page(offset, &limit, out, arena);
    if (rc) return rc;
    wl_read_t r;
    if ((rc = wl_read_begin(reg, tenant_id, workload_id, now_ms, out, &r))) return rc;
    const wl_t *w = r.v.w;
    element_t **ev = w->nels ? strata_arena_alloc(arena, w->nels * sizeof *ev) : NULL;
    if (w->nels && !ev) {
        pthread_rwlock_unlock(&r.t->lock);
        log_enomem("arena");
        return STRATA_ENOMEM;
    }
    size_t n = present_elements(w, &r.v, reg->opt.staleness_ms, ev);
    if (n > 1) qsort(ev, n, sizeof *ev, el_cmp);
    size_t start = (uint64_t)offset < n ? (size_t)offset : n;
    size_t end = (uint64_t)limit < n - start ? start + (size_t)limit : n;
    json_t *arr = json_array();
    for (size_t i = start; arr && i < end; i++) json_array_append_new(arr, reg_render_element(ev[i]));
    pthread_rwlock_unlock(&r.t->lock);
    json_t *root = json_object();
    if (root) {
        json_object_set_new(root, "elements", arr ? arr : json_array());
        if (end < n) json_object_set_new(root, "next", json_integer((json_int_t)end));
    } else {
        json_decref(arr);
    }
    out->total = (int64_t)n;
    return reg_emit(root, &r.jc, arena, out);
}

int api_registry_elements_count(api_registry_t *reg, int32_t tenant_id, const char *workload_id,
                                int64_t now_ms, strata_arena_t *arena, api_registry_result_t *out)
{
    wl_read_t r;
    int rc = wl_read_begin(reg, tenant_id, workload_id, now_ms, out, &r);
    if (rc) return rc;
    const int64_t stl = reg->opt.staleness_ms;
    const wl_t *w = r.v.w;
    int64_t stored = 0;
    for (size_t i = 0; i < w->nels; i++) stored += st_holds(&w->els[i]->s, r.v.at, stl);
    int64_t total = stored;
    if (st_holds(&w->elements_total, r.v.at, stl) && isfinite(w->elements_total.v) &&
        w->elements_total.v > (double)stored && w->elements_total.v < 2147483647.0)
        total = (int64_t)w->elements_total.v;
    pthread_rwlock_unlock(&r.t->lock);
    out->total = total;
    return reg_emit(json_pack("{s:I,s:I}", "totalElementsCount", (json_int_t)total, "storedElementsCount",
                              (json_int_t)stored),
                    &r.jc, arena, out);
}

int api_registry_foreach(api_registry_t *reg, int32_t tenant_id, int64_t now_ms, api_registry_summary_fn fn,
                         void *ctx)
{
    tenant_t *t = reg_tenant_find(reg, tenant_id);
    if (!t) return 0;
    int rc = 0;
    pthread_rwlock_rdlock(&t->lock);
    for (size_t i = 0; i < t->nwl && !rc; i++) {
        const wl_t *w = t->wlv[i];
        if (!w->has_info) continue;
        view_t v;
        reg_eval(reg, w, now_ms, &v);
        if (v.deleted) continue;
#define S(l) (w->lab[l] ? w->lab[l] : "")
        api_registry_summary_t s = {
            .id = w->id,
            .name = S(L_WORKLOAD_NAME),
            .type = S(L_WORKLOAD_TYPE),
            .category = S(L_CATEGORY),
            .phase = reg_phases[v.phase],
            .cluster_id = cluster_id(w),
            .department_id = S(L_DEPT_ID),
            .department_name = S(L_DEPT_NAME),
            .project_id = S(L_PROJECT_ID),
            .project_name = S(L_PROJECT_NAME),
            .requested_nodepools = (const char *const *)w->requested.v,
            .nrequested_nodepools = w->requested.n,
            .current_nodepools = (const char *const *)w->current.v,
            .ncurrent_nodepools = w->current.n,
            .created_at_ms = v.created_at,
            .phase_updated_at_ms = v.phase_updated_at,
            .allocated_gpus = v.alloc,
            .idle_allocated_gpus = v.idle_alloc,
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
            .namespace_ = p->ns,
            .pod = p->name,
            .node = p->node ? p->node : "",
            .nodepool = p->nodepool ? p->nodepool : "",
            .first_ms = p->first_t,
            .last_ms = p->info.t,
            .end_ms = st_end(&p->info, stl),
        };
        rc = fn(&ap, ctx);
    }
    pthread_rwlock_unlock(&t->lock);
    return rc;
}
