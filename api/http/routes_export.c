/*
 * routes_export.c: GET /api/v1/export, streaming JSON lines as VictoriaMetrics does:
 *   {"metric":{labels},"values":[...],"timestamps":[ms...]}
 * one series a line, the tenant label removed and the tenant matcher added to
 * every selector.  The body is produced series by series as the connection
 * takes it (api_call_reply_stream), so memory stays at one series whatever
 * the result size.
 * Several match[] selectors are a union; a series matched twice is written
 * once (remembered by a 64-bit label hash).
 * An export that is not complete says so in its last lines (docs/api.md):
 * a series read without what damaged block pages held is followed by
 *   {"warning":"<n> damaged block pages skipped: samples missing","metric":{labels}}
 * and such an export ends with {"error":"export incomplete: ..."}; a failure
 * mid-stream ends it with {"error":"export failed: <reason>"}.  A complete
 * export has neither.
 */
#include "routes_export.h"
#include "selector.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_buf.h"
#include "strata_fmt.h"
#include "strata_log.h"
#include "strata_time.h"

typedef struct selector {
    tsdb_matcher_t *m;
    size_t n;
} selector_t;

typedef struct export_state {
    const api_read_source_t *reader;
    int32_t tenant;
    strata_arena_t *arena;
    selector_t *sels;
    size_t nsels, cur;
    api_read_set_t *set;
    int64_t start, end;
    uint64_t *seen;
    size_t seen_cap, seen_n;
    strata_buf_t out;
    size_t out_pos;
    uint64_t damaged;         /* damaged block pages skipped, summed over the selectors */
    api_read_budget_t budget; /* --query-timeout and --query-max-samples over the whole export */
    int done;                 /* the final error line is out: the stream ends */
} export_state_t;

static uint64_t hash_labels(const tsdb_label_t *l, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        for (const char *s = l[i].name;; s++) {
            h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
            if (!*s) break;
        }
        for (const char *s = l[i].value;; s++) {
            h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
            if (!*s) break;
        }
    }
    return h ? h : 1;
}

/* 1 if h was already seen, else remembers it. */
static int seen_before(export_state_t *st, uint64_t h)
{
    if ((st->seen_n + 1) * 2 > st->seen_cap) {
        size_t ncap = st->seen_cap ? st->seen_cap * 2 : 256;
        uint64_t *ns = calloc(ncap, sizeof *ns);
        if (!ns) return 0;
        for (size_t i = 0; i < st->seen_cap; i++) {
            if (!st->seen[i]) continue;
            size_t k = st->seen[i] & (ncap - 1);
            while (ns[k]) k = (k + 1) & (ncap - 1);
            ns[k] = st->seen[i];
        }
        free(st->seen);
        st->seen = ns;
        st->seen_cap = ncap;
    }
    size_t k = h & (st->seen_cap - 1);
    while (st->seen[k]) {
        if (st->seen[k] == h) return 1;
        k = (k + 1) & (st->seen_cap - 1);
    }
    st->seen[k] = h;
    st->seen_n++;
    return 0;
}

static void put_value(strata_buf_t *b, double v)
{
    if (isnan(v)) {
        strata_buf_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        strata_buf_puts(b, v > 0 ? "\"+Inf\"" : "\"-Inf\"");
        return;
    }
    char num[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(v, num, sizeof num);
    strata_buf_puts(b, num);
}

/* The labels as a JSON object, without the tenant label. */
static void put_metric(strata_buf_t *b, const tsdb_label_t *l, size_t nl)
{
    strata_buf_puts(b, "{");
    int first = 1;
    for (size_t i = 0; i < nl; i++) {
        if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
        if (!first) strata_buf_puts(b, ",");
        strata_buf_json_string(b, l[i].name);
        strata_buf_puts(b, ":");
        strata_buf_json_string(b, l[i].value);
        first = 0;
    }
    strata_buf_puts(b, "}");
}

/* The series line's values and timestamps (after its metric). */
static void render_samples(strata_buf_t *b, const tsdb_sample_t *s, size_t ns)
{
    strata_buf_puts(b, ",\"values\":[");
    int first = 1;
    for (size_t i = 0; i < ns; i++) {
        if (tsdb_is_stale(s[i].v)) continue;
        if (!first) strata_buf_puts(b, ",");
        put_value(b, s[i].v);
        first = 0;
    }
    strata_buf_puts(b, "],\"timestamps\":[");
    first = 1;
    for (size_t i = 0; i < ns; i++) {
        if (tsdb_is_stale(s[i].v)) continue;
        strata_buf_printf(b, first ? "%lld" : ",%lld", (long long)s[i].t);
        first = 0;
    }
    strata_buf_puts(b, "]}\n");
}

/* Renders the current series of st->set into st->out; 0 if it had nothing to export. */
static int render_series(export_state_t *st)
{
    size_t nl, ns;
    const tsdb_label_t *l = api_read_set_labels(st->set, &nl);
    const tsdb_sample_t *s;
    int rc = api_read_set_samples(st->set, &s, &ns);
    if (rc < 0) return rc;
    uint64_t damaged = 0;
    api_read_set_damaged(st->set, &damaged);
    size_t live = 0;
    for (size_t i = 0; i < ns; i++) live += !tsdb_is_stale(s[i].v);
    if (live == 0 && !damaged) return 0;
    if (st->nsels > 1 && seen_before(st, hash_labels(l, nl))) return 0;
    strata_buf_t *b = &st->out;
    if (live) {
        strata_buf_puts(b, "{\"metric\":");
        put_metric(b, l, nl);
        render_samples(b, s, ns);
    }
    if (damaged) {
        /* the readable samples went out above; what the pages held did not */
        strata_buf_printf(b, "{\"warning\":\"%llu damaged block pages skipped: samples missing\",\"metric\":",
                          (unsigned long long)damaged);
        put_metric(b, l, nl);
        strata_buf_puts(b, "}\n");
    }
    return b->failed ? STRATA_ENOMEM : 1;
}

/* Fills st->out with the next non-empty line; 0 at the end. */
static int next_line(export_state_t *st)
{
    for (;;) {
        if (!st->set) {
            if (st->cur == st->nsels) {
                if (!st->damaged || st->done) return 0;
                st->done = 1;
                strata_buf_printf(
                    &st->out,
                    "{\"error\":\"export incomplete: %llu damaged block pages skipped; the series "
                    "before a warning line lack their samples\"}\n",
                    (unsigned long long)st->damaged);
                return st->out.failed ? STRATA_ENOMEM : 1;
            }
            selector_t *sel = &st->sels[st->cur++];
            int rc = api_read_select(st->reader, st->tenant, 0, &st->budget, sel->m, sel->n, st->start,
                                     st->end, &st->set);
            if (rc < 0) return rc;
        }
        int rc = api_read_set_next(st->set);
        if (rc < 0) return rc;
        if (rc == 0) {
            st->damaged += api_read_set_damaged(st->set, NULL);
            api_read_set_free(st->set);
            st->set = NULL;
            continue;
        }
        rc = render_series(st);
        if (rc != 0) return rc;
    }
}

/* api_stream_fn: the body, one series at a time. */
static ssize_t next_bytes(void *cls, char *buf, size_t max)
{
    export_state_t *st = cls;
    if (st->out_pos == st->out.len) {
        st->out.len = st->out_pos = 0;
        if (st->done == 2) return 0;
        int rc = next_line(st);
        if (rc == 0) return 0;
        if (rc < 0) {
            /* the status line is long gone: the last line tells the client */
            strata_error("export failed mid-stream", "err=\"%s\"", strata_strerror(rc));
            st->out.len = st->out_pos = 0;
            st->out.failed = 0;
            char msg[300], why[256];
            snprintf(msg, sizeof msg, "export failed: %s",
                     st->budget.exceeded ? api_read_budget_why(&st->budget, why, sizeof why)
                                         : strata_strerror(rc));
            strata_buf_puts(&st->out, "{\"error\":");
            strata_buf_json_string(&st->out, msg);
            strata_buf_puts(&st->out, "}\n");
            st->done = 2;
            if (st->out.failed) return -1; /* not even that: cut the connection */
        }
    }
    size_t n = st->out.len - st->out_pos;
    if (n > max) n = max;
    memcpy(buf, st->out.data + st->out_pos, n);
    st->out_pos += n;
    return (ssize_t)n;
}

static void state_free(void *cls)
{
    export_state_t *st = cls;
    if (st->set) api_read_set_free(st->set);
    free(st->seen);
    free(st->out.data);
    strata_arena_free(st->arena);
    free(st);
}

static int time_param(const api_call_t *c, const char *name, int64_t dflt, int64_t *out)
{
    const char *v = api_call_param(c, name);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    return strata_time_parse_any(v, out);
}

/* An error answer whose status comes from the one mapping (no Retry-After). */
static int fail(api_call_t *c, export_state_t *st, int err, const char *message, const char *details)
{
    if (st) state_free(st);
    return api_call_reply_error(c, api_status_for_error(err), message, details);
}

/* A read that failed before the first byte: its status from the one mapping.
 * Past --query-timeout: 503 (with Retry-After); over --query-max-samples: bad
 * input as --max-points is for the metrics query (ELIMIT -> EINVAL, 400). */
static int fail_read(api_call_t *c, export_state_t *st, int rc)
{
    char why[256];
    api_read_budget_why(&st->budget, why, sizeof why);
    int exceeded = st->budget.exceeded;
    int remote = st->budget.backend_why[0] != 0;
    strata_warn("export failed", "err=\"%s\" why=\"%s\"", strata_strerror(rc), why);
    state_free(st);
    if (remote) /* a remote engine failed: 503, its name in the message */
        return api_call_reply_strata_error(c, exceeded, why, "");
    if (exceeded == STRATA_ETIMEOUT)
        return api_call_reply_strata_error(c, STRATA_ETIMEOUT, "query timeout", why);
    if (exceeded == STRATA_ELIMIT)
        return api_call_reply_strata_error(c, STRATA_EINVAL, "query over budget", why);
    return api_call_reply_strata_error(c, rc, "export failed", "");
}

static int h_export(api_call_t *c, void *ctx)
{
    (void)ctx;
    export_state_t *st = calloc(1, sizeof *st);
    if (!st || !(st->arena = strata_arena_new(0))) {
        free(st);
        return fail(c, NULL, STRATA_ENOMEM, "out of memory", "");
    }
    st->reader = api_call_reader(c);
    st->tenant = api_call_principal(c)->tenant_id;
    char details[300];
    const char **match;
    size_t nmatch = api_call_param_values(c, "match[]", &match);
    if (nmatch == 0)
        return fail(c, st, STRATA_EINVAL, "missing match[] parameter",
                    "export needs at least one series selector, e.g. match[]={__name__=~\".+\"}");
    if (time_param(c, "start", INT64_MIN, &st->start))
        return fail(c, st, STRATA_EINVAL, "invalid start parameter", "want RFC 3339 or unix seconds");
    if (time_param(c, "end", api_call_now_ms(c), &st->end))
        return fail(c, st, STRATA_EINVAL, "invalid end parameter", "want RFC 3339 or unix seconds");
    if (st->end < st->start)
        return fail(c, st, STRATA_EINVAL, "invalid end parameter", "end is before start");
    st->sels = strata_arena_calloc(st->arena, nmatch, sizeof *st->sels);
    for (size_t i = 0; st->sels && i < nmatch; i++) {
        tsdb_matcher_t *m;
        size_t n;
        int rc = api_selector_parse(st->arena, match[i], &m, &n, details, sizeof details);
        if (rc == 0) {
            for (size_t k = 0; k < n; k++)
                if (strcmp(m[k].name, INGEST_TENANT_LABEL) == 0) {
                    rc = STRATA_EINVAL;
                    snprintf(details, sizeof details, "label " INGEST_TENANT_LABEL " is reserved");
                }
        }
        if (rc) return fail(c, st, rc, "invalid match[] parameter", details);
        st->sels[st->nsels++] = (selector_t){ m, n };
    }
    if (st->nsels != nmatch) return fail(c, st, STRATA_ENOMEM, "out of memory", "");
    /* The first line is read before the status goes out: a select that fails
     * (a costly regex past the deadline, say) is answered with a status, not
     * an error line after a 200. */
    api_read_source_budget(st->reader, &st->budget);
    int rc = next_line(st);
    if (rc < 0) return fail_read(c, st, rc);
    if (rc == 0) st->done = 2; /* nothing to export: the body is empty */
    rc = api_call_reply_stream(c, 200, "application/stream+json", next_bytes, st, state_free);
    if (rc == STRATA_ENOMEM) return fail(c, NULL, STRATA_ENOMEM, "out of memory", "");
    return rc;
}

api_route_t api_export_route(void)
{
    return (api_route_t){ "GET",
                          "/api/v1/export",
                          API_SCOPE_METRICS_READ,
                          h_export,
                          NULL,
                          API_ROUTE_ANY_BODY | API_ROUTE_PATH_LABEL };
}
