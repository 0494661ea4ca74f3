/*
 * list.c: GET /org-unit/reports and /count: the filterBy terms, search,
 * sort (ties by creation order) and paging (docs/reports.md, "What the HTTP
 * handlers call"), over a scan of the in-memory table.
 */
#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "reports_internal.h"
#include "filter.h"
#include "strata_err.h"
#include "strata_time.h"

enum field { F_NAME, F_STATUS, F_CREATED_AT, F_CREATED_BY, F_GROUP_BY, F_COUNT };
static const char *const FIELDS[F_COUNT] = { "name", "status", "createdAt", "createdBy", "groupBy" };
#define FIELDS_TEXT "name, status, createdAt, createdBy, groupBy"
#define GROUPS_TEXT "Nodepool, Project, Department, Cluster"

typedef struct term {
    int field;
    enum api_filter_op op;
    const char *val;
    int64_t t;
} term_t;

typedef struct query {
    term_t terms[API_REPORTS_MAX_FILTERS];
    size_t nterms;
    int sort_field, desc;
    int64_t offset, limit;
    const char *search;
} query_t;

void api_reports_query_init(api_reports_query_t *q) { memset(q, 0, sizeof *q); }

static int parse_query(const api_reports_query_t *q, query_t *pq, strata_arena_t *arena,
                       api_reports_result_t *out)
{
    memset(pq, 0, sizeof *pq);
    pq->sort_field = F_CREATED_AT;
    pq->limit = API_REPORTS_DEFAULT_LIMIT;
    if (!q) return 0;
    if (q->nfilter > API_REPORTS_MAX_FILTERS)
        return reports_error(out, arena, STRATA_EINVAL, "filterBy: at most %d terms",
                             API_REPORTS_MAX_FILTERS);
    for (size_t k = 0; k < q->nfilter; k++) {
        const char *s = q->filter_by[k];
        term_t *t = &pq->terms[pq->nterms++];
        size_t i = api_filter_field_len(s);
        t->field = -1;
        for (int f = 0; f < F_COUNT; f++)
            if (strlen(FIELDS[f]) == i && strncmp(s, FIELDS[f], i) == 0) t->field = f;
        if (t->field < 0)
            return reports_error(out, arena, STRATA_EINVAL,
                                 "filterBy: invalid term \"%s\": unknown field \"%.*s\" (" FIELDS_TEXT ")", s,
                                 (int)i, s);
        if (api_filter_op_parse(s + i, &t->op))
            return reports_error(out, arena, STRATA_EINVAL,
                                 "filterBy: invalid term \"%s\": expected one of " API_FILTER_OPS_TEXT
                                 " after \"%.*s\"",
                                 s, (int)i, s);
        t->val = s + i + 2;
        if (!*t->val)
            return reports_error(out, arena, STRATA_EINVAL, "filterBy: invalid term \"%s\": empty value", s);
        if (t->field == F_CREATED_AT && api_filter_op_orders(t->op) &&
            strata_time_parse_rfc3339(t->val, &t->t))
            return reports_error(out, arena, STRATA_EINVAL,
                                 "filterBy: invalid term \"%s\": \"%s\" is not an RFC 3339 date-time", s,
                                 t->val);
        enum api_report_group g;
        if (t->field == F_GROUP_BY && (t->op == API_FILTER_EQ || t->op == API_FILTER_NE) &&
            report_parse_group(t->val, &g))
            return reports_error(out, arena, STRATA_EINVAL,
                                 "filterBy: invalid term \"%s\": groupBy must be one of " GROUPS_TEXT, s);
    }
    if (q->sort_by) {
        pq->sort_field = -1;
        for (int f = 0; f < F_COUNT; f++)
            if (strcmp(q->sort_by, FIELDS[f]) == 0) pq->sort_field = f;
        if (pq->sort_field < 0)
            return reports_error(out, arena, STRATA_EINVAL, "sortBy: must be one of " FIELDS_TEXT);
    }
    if (q->sort_order) {
        if (strcmp(q->sort_order, "desc") == 0)
            pq->desc = 1;
        else if (strcmp(q->sort_order, "asc") != 0)
            return reports_error(out, arena, STRATA_EINVAL, "sortOrder: must be asc or desc");
    }
    if (q->offset < 0) return reports_error(out, arena, STRATA_EINVAL, "offset: must be >= 0");
    if (q->limit) {
        if (q->limit < 1 || q->limit > API_REPORTS_MAX_LIMIT)
            return reports_error(out, arena, STRATA_EINVAL, "limit: must be between 1 and %d",
                                 API_REPORTS_MAX_LIMIT);
        pq->limit = q->limit;
    }
    pq->offset = q->offset;
    pq->search = q->search && *q->search ? q->search : NULL;
    return 0;
}

static const char *field_text(const report_t *r, int f, char *buf, size_t cap)
{
    switch (f) {
    case F_NAME: return r->name;
    case F_STATUS: return reports_status_names[r->status];
    case F_CREATED_BY: return r->created_by;
    case F_GROUP_BY: return r->group_by ? reports_group_names[r->group_by] : ""; /* none: "" */
    default:
        if (strata_time_format_rfc3339(r->created_at, buf, cap) < 0) buf[0] = 0;
        return buf;
    }
}

static int term_match(const term_t *t, const report_t *r)
{
    if (t->field == F_CREATED_AT && api_filter_op_orders(t->op))
        return api_filter_match_cmp(t->op, (r->created_at > t->t) - (r->created_at < t->t));
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    return api_filter_match_str(t->op, field_text(r, t->field, buf, sizeof buf), t->val);
}

static int search_match(const char *hay, const char *needle)
{
    size_t m = strlen(needle);
    for (const char *p = hay; *p; p++)
        if (strncasecmp(p, needle, m) == 0) return 1;
    return m == 0;
}

static int matches(const query_t *q, int32_t tenant_id, const report_t *r)
{
    if (r->tenant_id != tenant_id) return 0;
    for (size_t i = 0; i < q->nterms; i++)
        if (!term_match(&q->terms[i], r)) return 0;
    return !q->search || search_match(r->name, q->search);
}

/* qsort_r comparator; pq is the parsed query. */
static int cmp_reports(const void *a, const void *b, void *pq)
{
    const query_t *sort_q = pq;
    const report_t *x = *(report_t *const *)a, *y = *(report_t *const *)b;
    int c;
    if (sort_q->sort_field == F_CREATED_AT) {
        c = (x->created_at > y->created_at) - (x->created_at < y->created_at);
    } else {
        char b1[8], b2[8];
        c = strcmp(field_text(x, sort_q->sort_field, b1, sizeof b1),
                   field_text(y, sort_q->sort_field, b2, sizeof b2));
    }
    if (c == 0) c = (x->seq > y->seq) - (x->seq < y->seq);
    return sort_q->desc ? -c : c;
}

int api_reports_list(api_reports_t *st, int32_t tenant_id, const api_reports_query_t *q,
                     strata_arena_t *arena, api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    query_t pq;
    int rc = parse_query(q, &pq, arena, out);
    if (rc) return rc;
    pthread_mutex_lock(&st->mu);
    report_t **m = st->n ? malloc(st->n * sizeof *m) : NULL;
    if (st->n && !m) {
        pthread_mutex_unlock(&st->mu);
        return STRATA_ENOMEM;
    }
    size_t nm = 0;
    for (size_t i = 0; i < st->n; i++)
        if (matches(&pq, tenant_id, st->r[i])) m[nm++] = st->r[i];
    if (nm) qsort_r(m, nm, sizeof *m, cmp_reports, &pq);
    json_t *o = json_object(), *arr = json_array();
    rc = o && arr ? 0 : STRATA_ENOMEM;
    int64_t end = pq.offset > INT64_MAX - pq.limit ? INT64_MAX : pq.offset + pq.limit;
    for (int64_t i = pq.offset; rc == 0 && i < (int64_t)nm && i < end; i++) {
        json_t *rj = report_json(m[i], reports_retention(st));
        if (!rj || json_array_append_new(arr, rj)) rc = STRATA_ENOMEM;
    }
    pthread_mutex_unlock(&st->mu);
    free(m);
    if (rc) {
        json_decref(o);
        json_decref(arr);
        return rc;
    }
    json_object_set_new(o, "reports", arr);
    if (end < (int64_t)nm) json_object_set_new(o, "next", json_integer(end));
    out->total = (int64_t)nm;
    return reports_render(o, arena, out);
}

int api_reports_count(api_reports_t *st, int32_t tenant_id, const api_reports_query_t *q,
                      strata_arena_t *arena, api_reports_result_t *out)
{
    memset(out, 0, sizeof *out);
    query_t pq;
    int rc = parse_query(q, &pq, arena, out);
    if (rc) return rc;
    int64_t n = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n; i++) n += matches(&pq, tenant_id, st->r[i]);
    pthread_mutex_unlock(&st->mu);
    out->total = n;
    json_t *o = json_object();
    if (o) json_object_set_new(o, "count", json_integer(n));
    return reports_render(o, arena, out);
}
