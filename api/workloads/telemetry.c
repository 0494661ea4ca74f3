/*
 * telemetry.c: the workloads telemetry endpoint's computation (telemetry.h):
 * parameter validation, one pass over the registry's live workloads that
 * folds each into its group(s) in a hash table, then sorting and rendering
 * as TelemetryResponse JSON (jansson) or CSV.
 *
 * Why it is shaped this way:
 *   - The registry's foreach runs our callback under the tenant's read lock,
 *     so the callback only filters, hashes and adds; strings are copied into
 *     the arena once per new group, never per workload.
 *   - Multi-valued keys (the nodepool lists) put a workload into every value
 *     (the cross product when both keys are multi-valued), each value once
 *     even if the label repeats it; a workload with no nodepool counts under
 *     the empty value, so grouping never drops workloads.
 *   - GPU sums use Neumaier's compensated summation: the registry walks
 *     workloads in no fixed order, and a plain sum of fractional GPUs could
 *     differ in its last bit from one run to the next.
 *   - Output order is by group values (bytewise), PendingTime by its bucket
 *     order, so equal input gives byte-identical answers.
 */
#include "telemetry.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strata_buf.h"
#include "strata_fmt.h"
#include "strata_log.h"
#include "strata_time.h"

#define HOUR_MS    INT64_C(3600000)
#define MAX_KEYS   2
#define MAX_PHASES 10

const char *const api_telemetry_param_names[] = {
    "telemetryType", "groupBy", "clusterId", "nodepoolName", "departmentId", "filterByPhases", NULL,
};

enum ttype { T_WORKLOADS_COUNT, T_GPU_ALLOCATION, T_PENDING_TIME_DISTRIBUTION, T_IDLE_ALLOCATED_GPUS, NTYPE };
static const char *const TYPES[NTYPE] = {
    "WORKLOADS_COUNT",
    "GPU_ALLOCATION",
    "PENDING_TIME_DISTRIBUTION",
    "IDLE_ALLOCATED_GPUS",
};
#define TYPE_LIST "WORKLOADS_COUNT, GPU_ALLOCATION, PENDING_TIME_DISTRIBUTION, IDLE_ALLOCATED_GPUS"

/* groupBy keys in the spec's order, then the implicit PendingTime. */
enum key {
    K_CLUSTER,
    K_DEPARTMENT,
    K_PROJECT,
    K_TYPE,
    K_CURRENT_NP,
    K_REQUESTED_NP,
    K_PHASE,
    K_CATEGORY,
    K_PENDING,
    NKEY
};
static const char *const KEYS[NKEY] = {
    "ClusterId",          "DepartmentId", "ProjectId", "Type",        "CurrentNodepools",
    "RequestedNodepools", "Phase",        "Category",  "PendingTime",
};
#define KEY_LIST \
    "ClusterId, DepartmentId, ProjectId, Type, CurrentNodepools, RequestedNodepools, Phase, Category"
/* CSV column carrying groups[].name for keys that have one. */
static const char *const NAME_COLS[NKEY] = { [K_DEPARTMENT] = "DepartmentName", [K_PROJECT] = "ProjectName" };

static const char *const PHASES[] = {
    "Creating", "Initializing", "Resuming", "Pending", "Deleting",  "Running",     "Updating",
    "Stopped",  "Stopping",     "Degraded", "Failed",  "Completed", "Terminating", "Unknown",
};
#define NPHASE     ((int)(sizeof PHASES / sizeof PHASES[0]))
#define PH_PENDING 3

static const char *const BUCKETS[] = { "0-1h", "1h-6h", "6h-24h", "24h+" };

struct api_telemetry_request {
    enum ttype type;
    int nkeys;
    enum key keys[MAX_KEYS];                           /* PendingTime first for PENDING_TIME_DISTRIBUTION */
    const char *cluster_id, *nodepool, *department_id; /* NULL = no filter */
    uint32_t phases;                                   /* bit per PHASES index; 0 = every phase */
};

/* ---- parsing ------------------------------------------------------------------ */

static int fail(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return STRATA_EINVAL;
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

static const char *first_value(const api_telemetry_param_t *p, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].name && p[i].value && !strcmp(p[i].name, name)) return p[i].value[0] ? p[i].value : NULL;
    return NULL;
}

/* Calls item() for every comma-separated item of every value of name.  An
 * empty value is skipped (absent); an empty item inside a list is passed on
 * so that it is rejected as unknown. */
typedef int (*item_fn)(const char *item, size_t len, void *ctx, char *err, size_t errcap);
static int each_item(const api_telemetry_param_t *p, size_t n, const char *name, item_fn fn, void *ctx,
                     char *err, size_t errcap)
{
    for (size_t i = 0; i < n; i++) {
        if (!p[i].name || !p[i].value || strcmp(p[i].name, name) || !p[i].value[0]) continue;
        for (const char *s = p[i].value;;) {
            const char *e = strchr(s, ',');
            size_t len = e ? (size_t)(e - s) : strlen(s);
            int rc = fn(s, len, ctx, err, errcap);
            if (rc) return rc;
            if (!e) break;
            s = e + 1;
        }
    }
    return 0;
}

static int lookup(const char *const *names, int n, const char *s, size_t len)
{
    for (int i = 0; i < n; i++)
        if (strlen(names[i]) == len && !memcmp(names[i], s, len)) return i;
    return -1;
}

/* Long or odd user input is cut in messages; they are for humans. */
#define SHOWN 64

static int group_item(const char *s, size_t len, void *ctx, char *err, size_t errcap)
{
    api_telemetry_request_t *r = ctx;
    int k = lookup(KEYS, K_PENDING, s, len);
    if (k < 0)
        return fail(err, errcap, "invalid groupBy parameter: unknown key \"%.*s\" (want one of " KEY_LIST ")",
                    (int)(len < SHOWN ? len : SHOWN), s);
    for (int i = 0; i < r->nkeys; i++)
        if (r->keys[i] == (enum key)k)
            return fail(err, errcap, "invalid groupBy parameter: key %s given twice", KEYS[k]);
    if (r->nkeys == MAX_KEYS) {
        if (r->type == T_PENDING_TIME_DISTRIBUTION)
            return fail(err, errcap,
                        "invalid groupBy parameter: at most 1 key with "
                        "PENDING_TIME_DISTRIBUTION (it is grouped by PendingTime first)");
        return fail(err, errcap, "invalid groupBy parameter: at most 2 keys");
    }
    r->keys[r->nkeys++] = (enum key)k;
    return 0;
}

typedef struct phase_ctx {
    uint32_t mask;
    int n;
} phase_ctx_t;

static int phase_item(const char *s, size_t len, void *ctx, char *err, size_t errcap)
{
    phase_ctx_t *pc = ctx;
    int p = lookup(PHASES, NPHASE, s, len);
    if (p < 0)
        return fail(err, errcap, "invalid filterByPhases parameter: unknown phase \"%.*s\"",
                    (int)(len < SHOWN ? len : SHOWN), s);
    if (++pc->n > MAX_PHASES)
        return fail(err, errcap, "invalid filterByPhases parameter: at most %d phases", MAX_PHASES);
    pc->mask |= 1u << p;
    return 0;
}

int api_telemetry_parse(const api_telemetry_param_t *params, size_t nparams, strata_arena_t *arena,
                        api_telemetry_request_t **out, char *err, size_t errcap)
{
    if (err && errcap) err[0] = '\0';
    if (!arena || !out || (!params && nparams)) return STRATA_EINVAL;
    *out = NULL;
    api_telemetry_request_t *r = strata_arena_calloc(arena, 1, sizeof *r);
    if (!r) return STRATA_ENOMEM;

    const char *t = first_value(params, nparams, "telemetryType");
    if (!t) return fail(err, errcap, "invalid telemetryType parameter: missing (want one of " TYPE_LIST ")");
    int ti = lookup(TYPES, NTYPE, t, strlen(t));
    if (ti < 0)
        return fail(err, errcap,
                    "invalid telemetryType parameter: unknown type \"%.*s\" (want one of " TYPE_LIST ")",
                    SHOWN, t);
    r->type = (enum ttype)ti;
    if (r->type == T_PENDING_TIME_DISTRIBUTION) r->keys[r->nkeys++] = K_PENDING;
    int rc = each_item(params, nparams, "groupBy", group_item, r, err, errcap);
    if (rc) return rc;

    r->cluster_id = first_value(params, nparams, "clusterId");
    if (r->cluster_id && !is_uuid(r->cluster_id))
        return fail(err, errcap, "invalid clusterId parameter: \"%.*s\" is not a uuid", SHOWN, r->cluster_id);
    r->nodepool = first_value(params, nparams, "nodepoolName");
    r->department_id = first_value(params, nparams, "departmentId");

    phase_ctx_t pc = { 0, 0 };
    rc = each_item(params, nparams, "filterByPhases", phase_item, &pc, err, errcap);
    if (rc) return rc;
    r->phases = pc.mask;

    /* the caller's strings may not outlive the request object otherwise */
    if ((r->cluster_id && !(r->cluster_id = strata_arena_strdup(arena, r->cluster_id))) ||
        (r->nodepool && !(r->nodepool = strata_arena_strdup(arena, r->nodepool))) ||
        (r->department_id && !(r->department_id = strata_arena_strdup(arena, r->department_id))))
        return STRATA_ENOMEM;
    *out = r;
    return 0;
}

int api_telemetry_wants_csv(const char *accept)
{
    if (!accept) return 0;
    const char *csv = strcasestr(accept, "text/csv");
    const char *json = strcasestr(accept, "application/json");
    return csv && (!json || csv < json);
}

const char *api_telemetry_content_type(api_telemetry_format_t fmt)
{
    return fmt == API_TELEMETRY_CSV ? "text/csv; charset=utf-8" : "application/json";
}

/* ---- aggregation -------------------------------------------------------------- */

typedef struct group {
    const char *val[MAX_KEYS];  /* arena copies; PendingTime points into BUCKETS */
    const char *name[MAX_KEYS]; /* department/project name, NULL when none seen */
    int64_t name_at[MAX_KEYS];  /* createdAt of the workload the name came from */
    uint64_t hash;
    int64_t count;
    double sum, comp; /* Neumaier: true sum ~ sum + comp */
} group_t;

typedef struct agg {
    const api_telemetry_request_t *req;
    strata_arena_t *arena;
    int64_t now_ms;
    group_t **slots; /* open addressing, power-of-two size */
    size_t cap, n;
    int rc;
} agg_t;

static uint64_t hash_str(uint64_t h, const char *s)
{
    /* FNV-1a, then a separator so ("ab","c") and ("a","bc") differ */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
    return (h ^ 0xff) * UINT64_C(0x100000001b3);
}

static int agg_grow(agg_t *a)
{
    size_t cap = a->cap ? a->cap * 2 : 64;
    group_t **s = strata_arena_calloc(a->arena, cap, sizeof *s);
    if (!s) return STRATA_ENOMEM;
    for (size_t i = 0; i < a->cap; i++) {
        group_t *g = a->slots[i];
        if (!g) continue;
        size_t j = g->hash & (cap - 1);
        while (s[j]) j = (j + 1) & (cap - 1);
        s[j] = g;
    }
    a->slots = s;
    a->cap = cap;
    return 0;
}

static group_t *agg_find(agg_t *a, const char *const *val)
{
    int nk = a->req->nkeys;
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (int k = 0; k < nk; k++) h = hash_str(h, val[k]);
    if ((a->n + 1) * 10 > a->cap * 7 && agg_grow(a)) return NULL;
    size_t j = h & (a->cap - 1);
    for (group_t *g; (g = a->slots[j]); j = (j + 1) & (a->cap - 1)) {
        if (g->hash != h) continue;
        int k = 0;
        while (k < nk && !strcmp(g->val[k], val[k])) k++;
        if (k == nk) return g;
    }
    group_t *g = strata_arena_calloc(a->arena, 1, sizeof *g);
    if (!g) return NULL;
    g->hash = h;
    for (int k = 0; k < nk; k++) {
        if (a->req->keys[k] == K_PENDING)
            g->val[k] = val[k];
        else if (!(g->val[k] = strata_arena_strdup(a->arena, val[k])))
            return NULL;
    }
    a->slots[j] = g;
    a->n++;
    return g;
}

static void neumaier_add(group_t *g, double x)
{
    double t = g->sum + x;
    if (fabs(g->sum) >= fabs(x))
        g->comp += (g->sum - t) + x;
    else
        g->comp += (x - t) + g->sum;
    g->sum = t;
}

/* Department and project names may differ between workloads of one id (a
 * rename): a non-empty name beats an empty one, then the newest workload's,
 * then the bytewise smaller, so the choice does not depend on walk order. */
static int set_name(agg_t *a, group_t *g, int k, const char *name, int64_t at)
{
    if (!*name) return 0;
    const char *cur = g->name[k];
    if (cur && (at < g->name_at[k] || (at == g->name_at[k] && strcmp(name, cur) >= 0))) return 0;
    if (cur && !strcmp(cur, name)) {
        g->name_at[k] = at;
        return 0;
    }
    if (!(g->name[k] = strata_arena_strdup(a->arena, name))) return STRATA_ENOMEM;
    g->name_at[k] = at;
    return 0;
}

/* The values a workload takes for key k: one, or a (deduplicated) nodepool
 * list; "" for a workload with no nodepool.  Returns the count. */
static size_t key_values(enum key k, const api_registry_summary_t *w, int64_t now_ms, const char **buf,
                         size_t cap, const char **single)
{
    const char *const *list = NULL;
    size_t n = 0;
    switch (k) {
    case K_CLUSTER: *single = w->cluster_id; return 1;
    case K_DEPARTMENT: *single = w->department_id; return 1;
    case K_PROJECT: *single = w->project_id; return 1;
    case K_TYPE: *single = w->type; return 1;
    case K_PHASE: *single = w->phase; return 1;
    case K_CATEGORY: *single = w->category; return 1;
    case K_PENDING: {
        int64_t age = now_ms - w->phase_updated_at_ms;
        *single = age < HOUR_MS        ? BUCKETS[0]
                  : age < 6 * HOUR_MS  ? BUCKETS[1]
                  : age < 24 * HOUR_MS ? BUCKETS[2]
                                       : BUCKETS[3];
        return 1;
    }
    case K_CURRENT_NP:
        list = w->current_nodepools;
        n = w->ncurrent_nodepools;
        break;
    case K_REQUESTED_NP:
        list = w->requested_nodepools;
        n = w->nrequested_nodepools;
        break;
    default: break;
    }
    if (n == 0) {
        *single = "";
        return 1;
    }
    if (n == 1) {
        *single = list[0];
        return 1;
    }
    size_t m = 0;
    for (size_t i = 0; i < n && m < cap; i++) {
        size_t j = 0;
        while (j < m && strcmp(buf[j], list[i])) j++;
        if (j == m) buf[m++] = list[i];
    }
    if (m == 1) *single = buf[0];
    return m;
}

static int matches(const api_telemetry_request_t *r, const api_registry_summary_t *w)
{
    if (r->type == T_PENDING_TIME_DISTRIBUTION && strcmp(w->phase, PHASES[PH_PENDING])) return 0;
    if (r->phases) {
        int p = lookup(PHASES, NPHASE, w->phase, strlen(w->phase));
        if (p < 0 || !(r->phases & (1u << p))) return 0;
    }
    if (r->cluster_id && strcasecmp(r->cluster_id, w->cluster_id)) return 0;
    if (r->department_id && strcmp(r->department_id, w->department_id)) return 0;
    if (r->nodepool) {
        size_t i = 0;
        while (i < w->ncurrent_nodepools && strcmp(w->current_nodepools[i], r->nodepool)) i++;
        if (i == w->ncurrent_nodepools) return 0;
    }
    return 1;
}

/* Nodepool lists are short; more distinct values than this in one workload
 * would be a malformed label, and the extra ones are not counted. */
#define MAX_VALUES 64

static int visit(const api_registry_summary_t *w, void *ctx)
{
    agg_t *a = ctx;
    const api_telemetry_request_t *r = a->req;
    if (!matches(r, w)) return 0;
    double x = 0;
    if (r->type == T_GPU_ALLOCATION)
        x = w->allocated_gpus;
    else if (r->type == T_IDLE_ALLOCATED_GPUS)
        x = w->idle_allocated_gpus;
    if (!isfinite(x)) x = 0;

    const char *bufs[MAX_KEYS][MAX_VALUES], *single[MAX_KEYS] = { "", "" };
    const char *const *vals[MAX_KEYS] = { single, single + 1 };
    size_t nv[MAX_KEYS] = { 1, 1 };
    for (int k = 0; k < r->nkeys; k++) {
        nv[k] = key_values(r->keys[k], w, a->now_ms, bufs[k], MAX_VALUES, &single[k]);
        vals[k] = nv[k] == 1 ? &single[k] : bufs[k];
    }
    for (size_t i = 0; i < nv[0]; i++) {
        for (size_t j = 0; j < nv[1]; j++) {
            const char *key[MAX_KEYS] = { r->nkeys > 0 ? vals[0][i] : "", r->nkeys > 1 ? vals[1][j] : "" };
            group_t *g = agg_find(a, key);
            if (!g) {
                a->rc = STRATA_ENOMEM;
                return 1;
            }
            g->count++;
            neumaier_add(g, x);
            for (int k = 0; k < r->nkeys; k++) {
                const char *name = r->keys[k] == K_DEPARTMENT ? w->department_name
                                   : r->keys[k] == K_PROJECT  ? w->project_name
                                                              : NULL;
                if (name && set_name(a, g, k, name, w->created_at_ms)) {
                    a->rc = STRATA_ENOMEM;
                    return 1;
                }
            }
        }
    }
    return 0;
}

static int bucket_of(const char *v)
{
    for (int i = 0; i < 4; i++)
        if (v == BUCKETS[i]) return i;
    return 4;
}

static int group_cmp(const void *pa, const void *pb, void *ctx)
{
    const group_t *a = *(const group_t *const *)pa, *b = *(const group_t *const *)pb;
    const api_telemetry_request_t *r = ctx;
    for (int k = 0; k < r->nkeys; k++) {
        int c = r->keys[k] == K_PENDING ? bucket_of(a->val[k]) - bucket_of(b->val[k])
                                        : strcmp(a->val[k], b->val[k]);
        if (c) return c;
    }
    return 0;
}

/* ---- rendering ---------------------------------------------------------------- */

static int format_value(const api_telemetry_request_t *r, const group_t *g, char *buf, size_t cap)
{
    if (r->type == T_WORKLOADS_COUNT || r->type == T_PENDING_TIME_DISTRIBUTION)
        return snprintf(buf, cap, "%lld", (long long)g->count);
    return strata_fmt_double(g->sum + g->comp, buf, cap);
}

/* One CSV field, preceded by a comma unless it starts the row. */
static void csv_field(strata_buf_t *b, const char *s, int first)
{
    if (!first) STRATA_BUF_LIT(b, ",");
    strata_buf_csv_field(b, s);
}

/* TelemetryResponse, compact, keys in the spec's order.  Written directly
 * rather than through a jansson tree: with thousands of groups the tree's
 * allocations alone cost milliseconds (see docs/telemetry.md). */
static int render_json(const api_telemetry_request_t *r, group_t **gs, size_t n, int64_t now_ms,
                       strata_arena_t *arena, char **body, size_t *len)
{
    char ts[STRATA_TIME_RFC3339_BUFSZ], num[STRATA_FMT_DOUBLE_BUFSZ];
    if (strata_time_format_rfc3339(now_ms, ts, sizeof ts) < 0) return STRATA_EINVAL;
    strata_buf_t b;
    strata_buf_init(&b, arena, 0);
    STRATA_BUF_LIT(&b, "{\"type\":");
    strata_buf_json_string(&b, TYPES[r->type]);
    STRATA_BUF_LIT(&b, ",\"timestamp\":");
    strata_buf_json_string(&b, ts);
    STRATA_BUF_LIT(&b, ",\"values\":[");
    for (size_t i = 0; i < n; i++) {
        if (format_value(r, gs[i], num, sizeof num) < 0) return STRATA_EINVAL;
        if (i) STRATA_BUF_LIT(&b, ",");
        STRATA_BUF_LIT(&b, "{\"value\":");
        strata_buf_json_string(&b, num);
        STRATA_BUF_LIT(&b, ",\"groups\":[");
        for (int k = 0; k < r->nkeys; k++) {
            if (k) STRATA_BUF_LIT(&b, ",");
            STRATA_BUF_LIT(&b, "{\"key\":");
            strata_buf_json_string(&b, KEYS[r->keys[k]]);
            STRATA_BUF_LIT(&b, ",\"value\":");
            strata_buf_json_string(&b, gs[i]->val[k]);
            if (gs[i]->name[k]) {
                STRATA_BUF_LIT(&b, ",\"name\":");
                strata_buf_json_string(&b, gs[i]->name[k]);
            }
            STRATA_BUF_LIT(&b, "}");
        }
        STRATA_BUF_LIT(&b, "]}");
    }
    STRATA_BUF_LIT(&b, "]}");
    if (b.failed) return STRATA_ENOMEM;
    *body = b.data;
    *len = b.len;
    return 0;
}

static int render_csv(const api_telemetry_request_t *r, group_t **gs, size_t n, strata_arena_t *arena,
                      char **body, size_t *len)
{
    strata_buf_t b;
    strata_buf_init(&b, arena, 0);
    char num[STRATA_FMT_DOUBLE_BUFSZ];
    for (int k = 0; k < r->nkeys; k++) {
        csv_field(&b, KEYS[r->keys[k]], k == 0);
        if (NAME_COLS[r->keys[k]]) csv_field(&b, NAME_COLS[r->keys[k]], 0);
    }
    csv_field(&b, "value", r->nkeys == 0);
    strata_buf_put(&b, "\n", 1);
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < r->nkeys; k++) {
            csv_field(&b, gs[i]->val[k], k == 0);
            if (NAME_COLS[r->keys[k]]) csv_field(&b, gs[i]->name[k] ? gs[i]->name[k] : "", 0);
        }
        if (format_value(r, gs[i], num, sizeof num) < 0) return STRATA_EINVAL;
        csv_field(&b, num, r->nkeys == 0);
        strata_buf_put(&b, "\n", 1);
    }
    if (b.failed) return STRATA_ENOMEM;
    *body = b.data;
    *len = b.len;
    return 0;
}

/* PENDING_TIME_DISTRIBUTION answers all 4 buckets, zeros included: without
 * groupBy always, with one more key for every value of it that has a
 * workload (a value only appears through its workloads).  A zero group takes
 * the name the value's other groups would give it (set_name's rule). */
static int fill_buckets(agg_t *a)
{
    size_t n = 0;
    group_t **orig = strata_arena_alloc(a->arena, (a->n ? a->n : 1) * sizeof *orig);
    if (!orig) return STRATA_ENOMEM;
    for (size_t i = 0; i < a->cap; i++)
        if (a->slots[i]) orig[n++] = a->slots[i];
    if (a->req->nkeys == 1) {
        for (int b = 0; b < 4; b++) {
            const char *key[MAX_KEYS] = { BUCKETS[b], "" };
            if (!agg_find(a, key)) return STRATA_ENOMEM;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const group_t *g = orig[i];
        for (int b = 0; b < 4; b++) {
            const char *key[MAX_KEYS] = { BUCKETS[b], g->val[1] };
            group_t *z = agg_find(a, key);
            if (!z) return STRATA_ENOMEM;
            if (z->count == 0 && g->name[1] && set_name(a, z, 1, g->name[1], g->name_at[1]))
                return STRATA_ENOMEM;
        }
    }
    return 0;
}

int api_telemetry_compute(api_registry_t *reg, int32_t tenant_id, const api_telemetry_request_t *req,
                          int64_t now_ms, api_telemetry_format_t fmt, strata_arena_t *arena, char **body,
                          size_t *len)
{
    if (!reg || !req || !arena || !body || !len) return STRATA_EINVAL;
    *body = NULL;
    *len = 0;
    /* a cluster strata has never seen is a 404; a known one with nothing
     * running answers zeros */
    if (req->cluster_id && !api_registry_knows_cluster(reg, tenant_id, req->cluster_id))
        return STRATA_ENOTFOUND;
    agg_t a = { .req = req, .arena = arena, .now_ms = now_ms };
    if (agg_grow(&a)) goto oom;
    int rc = api_registry_foreach(reg, tenant_id, now_ms, visit, &a);
    if (a.rc) goto oom;
    if (rc < 0) return rc;

    if (req->type == T_PENDING_TIME_DISTRIBUTION && fill_buckets(&a)) goto oom;

    group_t **gs = strata_arena_alloc(arena, (a.n ? a.n : 1) * sizeof *gs);
    if (!gs) goto oom;
    size_t n = 0;
    for (size_t i = 0; i < a.cap; i++)
        if (a.slots[i]) gs[n++] = a.slots[i];
    /* Without groupBy the one total is always there, 0 over no workloads. */
    group_t zero = { 0 };
    if (req->nkeys == 0 && n == 0) gs[n++] = &zero;
    qsort_r(gs, n, sizeof *gs, group_cmp, (void *)req);

    rc = fmt == API_TELEMETRY_CSV ? render_csv(req, gs, n, arena, body, len)
                                  : render_json(req, gs, n, now_ms, arena, body, len);
    if (rc == STRATA_ENOMEM) goto oom;
    return rc;
oom:
    strata_error("telemetry: out of memory", "tenant=%d", (int)tenant_id);
    return STRATA_ENOMEM;
}
