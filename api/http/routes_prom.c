/*
 * routes_prom.c: the Prometheus HTTP API's series and label routes over the
 * read seam, their match[] parsed by strata's PromQL parser (docs/promql.md,
 * "HTTP API"): GET|POST /api/v1/series, /api/v1/labels,
 * /api/v1/query_exemplars; GET /api/v1/label/{name}/values.
 * Parameters, their checks and order, the error texts, errorTypes and
 * statuses are Prometheus 2.42's (web/api/v1/api.go), so a client that
 * handles Prometheus' answers handles these; `limit` on series and the label
 * endpoints is Prometheus 3's.  Every read is the token's tenant's
 * (api_read_select adds the matcher); the tenant label never shows.
 * Reads are bounded by the request's budget (--query-timeout and
 * --query-max-samples).
 */
#include "routes_prom.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "prom.h"
#include "promql.h"

#define TRUNCATED_WARNING "results truncated due to limit"

/* Prometheus 3's limit of series and the label endpoints: 0 = none. */
static int limit_param(api_call_t *c, const api_prom_params_t *p, size_t *limit)
{
    *limit = 0;
    const char *v = api_prom_param(p, "limit");
    if (!v || !*v) return 1;
    const char *q = v + (*v == '+' || *v == '-');
    int ok = *q != '\0';
    for (const char *s = q; *s; s++) ok &= isdigit((unsigned char)*s) != 0;
    long long n = ok && strlen(q) <= 18 ? strtoll(v, NULL, 10) : 0;
    if (!ok || strlen(q) > 18) {
        strata_buf_t m;
        strata_buf_init(&m, api_call_arena(c), 96);
        strata_buf_puts(&m, "strconv.Atoi: parsing ");
        api_prom_quote(&m, v);
        strata_buf_puts(&m, ok ? ": value out of range" : ": invalid syntax");
        api_prom_reply_bad_param(c, "limit", m.failed ? "" : m.data);
        return 0;
    }
    if (n < 0) {
        api_prom_reply_bad_param(c, "limit", "limit must be non-negative");
        return 0;
    }
    *limit = (size_t)n;
    return 1;
}

/* ---- match[] ---------------------------------------------------------------------- */

static int is_ident_start(int ch) { return isalpha(ch) || ch == '_' || ch == ':'; }
static int is_ident(int ch) { return isalnum(ch) || ch == '_' || ch == ':'; }

/* Past a {...} block at s[i] == '{', quotes respected. */
static size_t skip_braces(const char *s, size_t i)
{
    char quote = 0;
    for (i++; s[i]; i++) {
        if (quote) {
            if (s[i] == '\\' && quote != '`' && s[i + 1])
                i++;
            else if (s[i] == quote)
                quote = 0;
        } else if (s[i] == '"' || s[i] == '\'' || s[i] == '`') {
            quote = s[i];
        } else if (s[i] == '}') {
            return i + 1;
        }
    }
    return i;
}

static int word_in(const char *w, size_t n, const char *const *list)
{
    for (; *list; list++)
        if (strlen(*list) == n && strncmp(*list, w, n) == 0) return 1;
    return 0;
}

/* What Prometheus' metric-selector grammar says about an expression that
 * parses but is no plain selector: "1:4: parse error: unexpected <offset>",
 * naming the first token after the leading selector as its lexer names it. */
static void not_a_selector(strata_buf_t *m, const char *s)
{
    static const char *const keywords[] = { "offset",     "by",          "without", "on", "ignoring",
                                            "group_left", "group_right", "bool",    NULL };
    static const char *const setops[] = { "and", "or", "unless", "atan2", NULL };
    static const char *const aggrs[] = { "sum",      "avg",          "min",    "max",         "count",
                                         "group",    "stddev",       "stdvar", "topk",        "bottomk",
                                         "quantile", "count_values", "limitk", "limit_ratio", NULL };
    size_t i = 0;
    while (isspace((unsigned char)s[i])) i++;
    if (is_ident_start((unsigned char)s[i])) {
        while (is_ident((unsigned char)s[i])) i++;
        size_t j = i;
        while (isspace((unsigned char)s[j])) j++;
        if (s[j] == '{') i = skip_braces(s, j);
    } else if (s[i] == '{') {
        i = skip_braces(s, i);
    }
    while (isspace((unsigned char)s[i])) i++;
    /* line and column of byte i, 1-based */
    int line = 1, col = 1;
    for (size_t k = 0; k < i; k++) {
        if (s[k] == '\n')
            line++, col = 1;
        else
            col++;
    }
    strata_buf_printf(m, "%d:%d: parse error: unexpected ", line, col);
    const char *t = s + i;
    size_t n = 0;
    if (isdigit((unsigned char)*t) || (*t == '.' && isdigit((unsigned char)t[1]))) {
        while (isalnum((unsigned char)t[n]) || t[n] == '.') n++;
        char *num = strndup(t, n);
        strata_buf_puts(m, "number ");
        api_prom_quote(m, num ? num : "");
        free(num);
    } else if (*t == '"' || *t == '\'' || *t == '`') {
        n = 1;
        while (t[n] && t[n] != *t) n += (t[n] == '\\' && *t != '`' && t[n + 1]) ? 2 : 1;
        if (t[n]) n++;
        char *str = strndup(t, n);
        strata_buf_puts(m, "string ");
        api_prom_quote(m, str ? str : "");
        free(str);
    } else if (is_ident_start((unsigned char)*t)) {
        while (is_ident((unsigned char)t[n])) n++;
        if (word_in(t, n, keywords))
            strata_buf_printf(m, "<%.*s>", (int)n, t);
        else if (word_in(t, n, setops))
            strata_buf_printf(m, "<op:%.*s>", (int)n, t);
        else if (word_in(t, n, aggrs))
            strata_buf_printf(m, "<aggr:%.*s>", (int)n, t);
        else
            strata_buf_printf(m, "identifier \"%.*s\"", (int)n, t);
    } else if (strchr("+-*/%^", *t) && *t) {
        strata_buf_printf(m, "<op:%c>", *t);
    } else if ((*t == '=' || *t == '!' || *t == '<' || *t == '>') && (t[1] == '=' || t[1] == '~')) {
        strata_buf_printf(m, "<op:%.2s>", t);
    } else if (*t == '<' || *t == '>') {
        strata_buf_printf(m, "<op:%c>", *t);
    } else if (*t) {
        strata_buf_printf(m, "\"%c\"", *t);
    } else {
        strata_buf_puts(m, "end of input");
    }
}

/* The matcher sets of match[]; answers the 400 (Prometheus' texts, without
 * the "invalid parameter" prefix) and returns 0 when one is bad. */
typedef struct matcher_set {
    tsdb_matcher_t *m;
    size_t n;
} matcher_set_t;

/* /api/v1/series names the parameter in these errors, the label endpoints do not. */
static int match_error(api_call_t *c, int prefix, const char *msg)
{
    return prefix ? api_prom_reply_bad_param(c, "match[]", msg) : api_prom_reply_error(c, STRATA_EINVAL, msg);
}

static int parse_matchers(api_call_t *c, const char **match, size_t nmatch, int prefix, matcher_set_t **out)
{
    strata_arena_t *a = api_call_arena(c);
    matcher_set_t *sets = strata_arena_calloc(a, nmatch ? nmatch : 1, sizeof *sets);
    if (!sets) return api_prom_reply_error(c, STRATA_ENOMEM, NULL), 0;
    for (size_t i = 0; i < nmatch; i++) {
        promql_node_t *node;
        promql_error_t pe = { 0 };
        int rc = promql_parse(match[i], a, &node, &pe);
        if (rc == STRATA_EINVAL) {
            /* ParseMetricSelector leaves this check to the API, whose text differs */
            const char *msg = strstr(pe.msg, "at least one non-empty matcher")
                                  ? "match[] must contain at least one non-empty matcher"
                                  : pe.msg;
            match_error(c, prefix, msg);
            return 0;
        }
        if (rc) return api_prom_reply_error(c, rc, NULL), 0;
        rc = promql_selector_matchers(node, a, &sets[i].m, &sets[i].n);
        if (rc == STRATA_EINVAL) {
            strata_buf_t m;
            strata_buf_init(&m, a, 96);
            not_a_selector(&m, match[i]);
            match_error(c, prefix, m.failed ? "" : m.data);
            return 0;
        }
        if (rc) return api_prom_reply_error(c, rc, NULL), 0;
        for (size_t k = 0; k < sets[i].n; k++)
            if (strcmp(sets[i].m[k].name, INGEST_TENANT_LABEL) == 0) {
                match_error(c, prefix, "label " INGEST_TENANT_LABEL " is reserved");
                return 0;
            }
    }
    *out = sets;
    return 1;
}

/* ---- reading series ------------------------------------------------------------------- */

/* What one walk over the selected series gathers. */
typedef struct walk {
    strata_arena_t *arena;
    /* series: label sets, tenant label left out */
    tsdb_label_t **series;
    size_t *nlabels;
    size_t nseries, cap;
    /* label names or values: a string set (open addressing) */
    const char **set;
    size_t nset, setcap;
    uint64_t damaged;
} walk_t;

static uint64_t str_hash(const char *s)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

/* Adds a copy of s to the set unless it is there; STRATA_ENOMEM. */
static int set_add(walk_t *w, const char *s)
{
    if ((w->nset + 1) * 2 > w->setcap) {
        size_t ncap = w->setcap ? w->setcap * 2 : 64;
        const char **ns = strata_arena_calloc(w->arena, ncap, sizeof *ns);
        if (!ns) return STRATA_ENOMEM;
        for (size_t i = 0; i < w->setcap; i++) {
            if (!w->set[i]) continue;
            size_t k = str_hash(w->set[i]) & (ncap - 1);
            while (ns[k]) k = (k + 1) & (ncap - 1);
            ns[k] = w->set[i];
        }
        w->set = ns;
        w->setcap = ncap;
    }
    size_t k = str_hash(s) & (w->setcap - 1);
    while (w->set[k]) {
        if (strcmp(w->set[k], s) == 0) return 0;
        k = (k + 1) & (w->setcap - 1);
    }
    w->set[k] = strata_arena_strdup(w->arena, s);
    if (!w->set[k]) return STRATA_ENOMEM;
    w->nset++;
    return 0;
}

static int series_add(walk_t *w, const tsdb_label_t *l, size_t n)
{
    if (w->nseries == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        tsdb_label_t **ns = strata_arena_alloc(w->arena, ncap * sizeof *ns);
        size_t *nn = strata_arena_alloc(w->arena, ncap * sizeof *nn);
        if (!ns || !nn) return STRATA_ENOMEM;
        if (w->nseries) {
            memcpy(ns, w->series, w->nseries * sizeof *ns);
            memcpy(nn, w->nlabels, w->nseries * sizeof *nn);
        }
        w->series = ns;
        w->nlabels = nn;
        w->cap = ncap;
    }
    tsdb_label_t *copy = strata_arena_alloc(w->arena, (n ? n : 1) * sizeof *copy);
    if (!copy) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
        copy[k].name = strata_arena_strdup(w->arena, l[i].name);
        copy[k].value = strata_arena_strdup(w->arena, l[i].value);
        if (!copy[k].name || !copy[k].value) return STRATA_ENOMEM;
        k++;
    }
    w->series[w->nseries] = copy;
    w->nlabels[w->nseries] = k;
    w->nseries++;
    return 0;
}

enum walk_what { WALK_SERIES, WALK_NAMES, WALK_VALUES };

/* Selects each matcher set (or every series of the tenant when there is
 * none) over [start, end] and gathers what `what` asks. */
static int walk_sets(api_call_t *c, api_read_budget_t *budget, const matcher_set_t *sets, size_t nsets,
                     int64_t start, int64_t end, enum walk_what what, const char *label, walk_t *w)
{
    const api_read_source_t *src = api_call_reader(c);
    int32_t tenant = api_call_principal(c)->tenant_id;
    size_t rounds = nsets ? nsets : 1;
    for (size_t r = 0; r < rounds; r++) {
        api_read_set_t *set;
        int rc = api_read_select(src, tenant, 0, budget, nsets ? sets[r].m : NULL, nsets ? sets[r].n : 0,
                                 start, end, &set);
        if (rc) return rc;
        while ((rc = api_read_set_next(set)) == 1) {
            size_t n;
            const tsdb_label_t *l = api_read_set_labels(set, &n);
            if (what == WALK_SERIES) {
                rc = series_add(w, l, n);
            } else {
                for (size_t i = 0; i < n && rc == 1; i++) {
                    if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
                    if (what == WALK_NAMES)
                        rc = set_add(w, l[i].name) ? STRATA_ENOMEM : 1;
                    else if (strcmp(l[i].name, label) == 0)
                        rc = set_add(w, l[i].value) ? STRATA_ENOMEM : 1;
                }
            }
            if (rc < 0) break;
            rc = api_read_budget_check(budget);
            if (rc) break;
        }
        w->damaged += api_read_set_damaged(set, NULL);
        api_read_set_free(set);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Prometheus' labels.Compare: name, then value, label by label; then length. */
static int labels_cmp(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int d = strcmp(a[i].name, b[i].name);
        if (d) return d;
        d = strcmp(a[i].value, b[i].value);
        if (d) return d;
    }
    return na < nb ? -1 : na > nb;
}

typedef struct series_ref {
    const tsdb_label_t *l;
    size_t n;
} series_ref_t;

static int series_ref_cmp(const void *x, const void *y)
{
    const series_ref_t *a = x, *b = y;
    return labels_cmp(a->l, a->n, b->l, b->n);
}

static int str_cmp(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static const char *damaged_warning(api_call_t *c, uint64_t damaged)
{
    strata_buf_t m;
    strata_buf_init(&m, api_call_arena(c), 96);
    strata_buf_printf(&m, "%llu damaged block pages skipped: some series may lack samples",
                      (unsigned long long)damaged);
    return m.failed ? "damaged block pages skipped" : m.data;
}

/* ---- /api/v1/series, /api/v1/labels, /api/v1/label/{name}/values ------------------- */

/* The shared start of the three: params, start, end, limit, match[]. */
typedef struct meta_req {
    api_prom_params_t p;
    int64_t start, end;
    size_t limit;
    matcher_set_t *sets;
    size_t nsets;
    api_read_budget_t budget;
} meta_req_t;

static int meta_begin(api_call_t *c, meta_req_t *r, int need_match)
{
    if (api_prom_params_collect(c, &r->p)) return api_prom_reply_error(c, STRATA_ENOMEM, NULL), 0;
    const char **match;
    size_t nmatch = api_prom_param_all(&r->p, "match[]", &match);
    if (need_match && nmatch == 0)
        return api_prom_reply_error(c, STRATA_EINVAL, "no match[] parameter provided"), 0;
    if (!api_prom_time_param(c, &r->p, "start", API_PROM_MIN_TIME_MS, &r->start)) return 0;
    if (!api_prom_time_param(c, &r->p, "end", API_PROM_MAX_TIME_MS, &r->end)) return 0;
    if (!limit_param(c, &r->p, &r->limit)) return 0;
    /* need_match: /api/v1/series, which also names match[] in its errors */
    if (!parse_matchers(c, match, nmatch, need_match, &r->sets)) return 0;
    r->nsets = nmatch;
    api_read_source_budget(api_call_reader(c), &r->budget);
    return 1;
}

/* ["a","b"] from the walk's string set, sorted, at most limit. */
static int reply_strings(api_call_t *c, walk_t *w, size_t limit)
{
    const char **v = strata_arena_alloc(w->arena, (w->nset ? w->nset : 1) * sizeof *v);
    if (!v) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    size_t n = 0;
    for (size_t i = 0; i < w->setcap; i++)
        if (w->set[i]) v[n++] = w->set[i];
    qsort(v, n, sizeof *v, str_cmp);
    const char *warn[2];
    size_t nwarn = 0;
    if (limit && n > limit) {
        n = limit;
        warn[nwarn++] = TRUNCATED_WARNING;
    }
    if (w->damaged) warn[nwarn++] = damaged_warning(c, w->damaged);
    strata_buf_t b;
    strata_buf_init(&b, w->arena, 64 + n * 16);
    strata_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) strata_buf_puts(&b, ",");
        api_prom_json_string(&b, v[i]);
    }
    strata_buf_puts(&b, "]");
    if (b.failed) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    return api_prom_reply_data(c, b.data, b.len, warn, nwarn);
}

static int h_series(api_call_t *c, void *ctx)
{
    (void)ctx;
    meta_req_t r;
    if (!meta_begin(c, &r, 1)) return 0;
    walk_t w = { .arena = api_call_arena(c) };
    /* Prometheus answers an empty list when end is before start */
    int rc = r.end < r.start
                 ? 0
                 : walk_sets(c, &r.budget, r.sets, r.nsets, r.start, r.end, WALK_SERIES, NULL, &w);
    if (rc) return api_prom_reply_read_error(c, &r.budget, rc);
    series_ref_t *refs = strata_arena_alloc(w.arena, (w.nseries ? w.nseries : 1) * sizeof *refs);
    if (!refs) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    for (size_t i = 0; i < w.nseries; i++) refs[i] = (series_ref_t){ w.series[i], w.nlabels[i] };
    qsort(refs, w.nseries, sizeof *refs, series_ref_cmp);
    size_t n = 0;
    for (size_t i = 0; i < w.nseries; i++)
        if (!n || series_ref_cmp(&refs[n - 1], &refs[i]) != 0) refs[n++] = refs[i];
    const char *warn[2];
    size_t nwarn = 0;
    if (r.limit && n > r.limit) {
        n = r.limit;
        warn[nwarn++] = TRUNCATED_WARNING;
    }
    if (w.damaged) warn[nwarn++] = damaged_warning(c, w.damaged);
    strata_buf_t b;
    strata_buf_init(&b, w.arena, 64 + n * 64);
    strata_buf_puts(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i) strata_buf_puts(&b, ",");
        api_prom_json_labels(&b, refs[i].l, refs[i].n);
    }
    strata_buf_puts(&b, "]");
    if (b.failed) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    return api_prom_reply_data(c, b.data, b.len, warn, nwarn);
}

static int h_labels(api_call_t *c, void *ctx)
{
    (void)ctx;
    meta_req_t r;
    if (!meta_begin(c, &r, 0)) return 0;
    walk_t w = { .arena = api_call_arena(c) };
    int rc = r.end < r.start ? 0
                             : walk_sets(c, &r.budget, r.sets, r.nsets, r.start, r.end, WALK_NAMES, NULL, &w);
    if (rc) return api_prom_reply_read_error(c, &r.budget, rc);
    return reply_strings(c, &w, r.limit);
}

/* Prometheus' model.LabelNameRE: [a-zA-Z_][a-zA-Z0-9_]*. */
static int valid_label_name(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_')) return 0;
    for (s++; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static int h_label_values(api_call_t *c, void *ctx)
{
    (void)ctx;
    const char *name = api_call_segment(c, 0);
    if (!name || !valid_label_name(name)) {
        strata_buf_t m;
        strata_buf_init(&m, api_call_arena(c), 64);
        strata_buf_puts(&m, "invalid label name: ");
        api_prom_quote(&m, name ? name : "");
        return api_prom_reply_error(c, STRATA_EINVAL, m.failed ? "" : m.data);
    }
    meta_req_t r;
    if (!meta_begin(c, &r, 0)) return 0;
    walk_t w = { .arena = api_call_arena(c) };
    /* the tenant label is no label a caller can see: it has no values */
    int skip = r.end < r.start || strcmp(name, INGEST_TENANT_LABEL) == 0;
    int rc = skip ? 0 : walk_sets(c, &r.budget, r.sets, r.nsets, r.start, r.end, WALK_VALUES, name, &w);
    if (rc) return api_prom_reply_read_error(c, &r.budget, rc);
    return reply_strings(c, &w, r.limit);
}

/* ---- /api/v1/query_exemplars ------------------------------------------------------------ */

/* strata keeps no exemplars (ingest refuses them): the answer is Prometheus'
 * with an empty exemplar store, after the same checks. */
static int h_exemplars(api_call_t *c, void *ctx)
{
    (void)ctx;
    api_prom_params_t p;
    if (api_prom_params_collect(c, &p)) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    int64_t start, end;
    if (!api_prom_time_param(c, &p, "start", API_PROM_MIN_TIME_MS, &start)) return 0;
    if (!api_prom_time_param(c, &p, "end", API_PROM_MAX_TIME_MS, &end)) return 0;
    if (end < start)
        return api_prom_reply_error(c, STRATA_EINVAL, "end timestamp must not be before start timestamp");
    const char *q = api_prom_param(&p, "query");
    promql_node_t *node;
    promql_error_t pe = { 0 };
    int rc = promql_parse(q ? q : "", api_call_arena(c), &node, &pe);
    if (rc) return api_prom_reply_error(c, rc, rc == STRATA_EINVAL ? pe.msg : NULL);
    /* no selector: Prometheus answers no data at all, a 204 */
    if (!promql_has_selectors(node)) return api_call_reply_empty(c, 204);
    return api_prom_reply_data(c, "[]", 2, NULL, 0);
}

size_t api_prom_routes(api_route_t *out, size_t cap)
{
    const api_route_t routes[] = {
        { "GET", "/api/v1/series", API_SCOPE_METRICS_READ, h_series, NULL, 0 },
        { "POST", "/api/v1/series", API_SCOPE_METRICS_READ, h_series, NULL, 0 },
        { "GET", "/api/v1/labels", API_SCOPE_METRICS_READ, h_labels, NULL, 0 },
        { "POST", "/api/v1/labels", API_SCOPE_METRICS_READ, h_labels, NULL, 0 },
        { "GET", "/api/v1/label/{}/values", API_SCOPE_METRICS_READ, h_label_values, NULL,
          API_ROUTE_PATH_LABEL },
        { "GET", "/api/v1/query_exemplars", API_SCOPE_METRICS_READ, h_exemplars, NULL, 0 },
        { "POST", "/api/v1/query_exemplars", API_SCOPE_METRICS_READ, h_exemplars, NULL, 0 },
    };
    size_t n = sizeof routes / sizeof routes[0];
    if (n > cap) n = cap;
    memcpy(out, routes, n * sizeof *out);
    return n;
}
