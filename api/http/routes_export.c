/*
 * routes_export.c: GET /api/v1/export, streaming JSON lines as VictoriaMetrics does:
 *   {"metric":{labels},"values":[...],"timestamps":[ms...]}
 * one series a line, the tenant label removed and the tenant matcher added to
 * every selector.  The body is produced series by series from a libmicrohttpd
 * content reader, so memory stays at one series whatever the result size.
 * Several match[] selectors are a union; a series matched twice is written
 * once (remembered by a 64-bit label hash).
 */
#include "server_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
} export_state_t;

typedef struct args {
    strata_arena_t *arena;
    const char **match;
    size_t nmatch, cap;
} args_t;

static enum MHD_Result collect_match(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *value)
{
    (void)kind;
    args_t *a = cls;
    if (strcmp(key, "match[]") != 0 || !value) return MHD_YES;
    if (a->nmatch == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 4;
        const char **nm = strata_arena_alloc(a->arena, ncap * sizeof *nm);
        if (!nm) return MHD_NO;
        if (a->nmatch) memcpy(nm, a->match, a->nmatch * sizeof *nm);
        a->match = nm;
        a->cap = ncap;
    }
    a->match[a->nmatch++] = value;
    return MHD_YES;
}

static uint64_t hash_labels(const tsdb_label_t *l, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        for (const char *s = l[i].name; ; s++) { h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211); if (!*s) break; }
        for (const char *s = l[i].value; ; s++) { h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211); if (!*s) break; }
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
    if (isnan(v)) { strata_buf_puts(b, "\"NaN\""); return; }
    if (isinf(v)) { strata_buf_puts(b, v > 0 ? "\"+Inf\"" : "\"-Inf\""); return; }
    char num[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(v, num, sizeof num);
    strata_buf_puts(b, num);
}

/* Renders the current series of st->set into st->out; 0 if it had nothing to export. */
static int render_series(export_state_t *st)
{
    size_t nl, ns;
    const tsdb_label_t *l = api_read_set_labels(st->set, &nl);
    const tsdb_sample_t *s;
    int rc = api_read_set_samples(st->set, &s, &ns);
    if (rc < 0) return rc;
    size_t live = 0;
    for (size_t i = 0; i < ns; i++) live += !tsdb_is_stale(s[i].v);
    if (live == 0) return 0;
    if (st->nsels > 1 && seen_before(st, hash_labels(l, nl))) return 0;
    strata_buf_t *b = &st->out;
    strata_buf_puts(b, "{\"metric\":{");
    int first = 1;
    for (size_t i = 0; i < nl; i++) {
        if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
        if (!first) strata_buf_puts(b, ",");
        strata_buf_json_string(b, l[i].name);
        strata_buf_puts(b, ":");
        strata_buf_json_string(b, l[i].value);
        first = 0;
    }
    strata_buf_puts(b, "},\"values\":[");
    first = 1;
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
    return b->failed ? STRATA_ENOMEM : 1;
}

/* Fills st->out with the next non-empty line; 0 at the end. */
static int next_line(export_state_t *st)
{
    for (;;) {
        if (!st->set) {
            if (st->cur == st->nsels) return 0;
            selector_t *sel = &st->sels[st->cur++];
            int rc = api_read_select(st->reader, st->tenant, 0, sel->m, sel->n, st->start, st->end, &st->set);
            if (rc < 0) return rc;
        }
        int rc = api_read_set_next(st->set);
        if (rc < 0) return rc;
        if (rc == 0) {
            api_read_set_free(st->set);
            st->set = NULL;
            continue;
        }
        rc = render_series(st);
        if (rc != 0) return rc;
    }
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    export_state_t *st = cls;
    if (st->out_pos == st->out.len) {
        st->out.len = st->out_pos = 0;
        int rc = next_line(st);
        if (rc == 0) return MHD_CONTENT_READER_END_OF_STREAM;
        if (rc < 0) {
            strata_error("export failed mid-stream", "err=\"%s\"", strata_strerror(rc));
            return MHD_CONTENT_READER_END_WITH_ERROR;
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

static int time_param(struct MHD_Connection *conn, const char *name, int64_t dflt, int64_t *out)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
    if (!v || !*v) { *out = dflt; return 0; }
    return strata_time_parse_any(v, out);
}

/* An error answer whose status comes from the one mapping. */
static struct MHD_Response *fail(int err, int *status, const char *message, const char *details)
{
    *status = api_status_for_error(err);
    return api_error_response(*status, message, details);
}

struct MHD_Response *api_export_response(const api_read_source_t *src, struct MHD_Connection *conn,
                                         int32_t tenant, int *status)
{
    export_state_t *st = calloc(1, sizeof *st);
    if (!st || !(st->arena = strata_arena_new(0))) {
        free(st);
        return fail(STRATA_ENOMEM, status, "out of memory", "");
    }
    st->reader = src;
    st->tenant = tenant;
    char details[300];
    args_t a = { .arena = st->arena };
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_match, &a);
    if (a.nmatch == 0) {
        state_free(st);
        return fail(STRATA_EINVAL, status, "missing match[] parameter", "export needs at least one series selector, e.g. match[]={__name__=~\".+\"}");
    }
    int64_t now_ms = 0;
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (time_param(conn, "start", INT64_MIN, &st->start)) {
        state_free(st);
        return fail(STRATA_EINVAL, status, "invalid start parameter", "want RFC 3339 or unix seconds");
    }
    if (time_param(conn, "end", now_ms, &st->end)) {
        state_free(st);
        return fail(STRATA_EINVAL, status, "invalid end parameter", "want RFC 3339 or unix seconds");
    }
    if (st->end < st->start) {
        state_free(st);
        return fail(STRATA_EINVAL, status, "invalid end parameter", "end is before start");
    }
    st->sels = strata_arena_calloc(st->arena, a.nmatch, sizeof *st->sels);
    for (size_t i = 0; st->sels && i < a.nmatch; i++) {
        tsdb_matcher_t *m;
        size_t n;
        int rc = ingest_parse_selector(st->arena, a.match[i], &m, &n, details, sizeof details);
        if (rc == 0) {
            for (size_t k = 0; k < n; k++)
                if (strcmp(m[k].name, INGEST_TENANT_LABEL) == 0) {
                    rc = STRATA_EINVAL;
                    snprintf(details, sizeof details, "label " INGEST_TENANT_LABEL " is reserved");
                }
        }
        if (rc) {
            *status = api_status_for_error(rc);
            state_free(st);
            return api_error_response(*status, "invalid match[] parameter", details);
        }
        st->sels[st->nsels++] = (selector_t){ m, n };
    }
    if (st->nsels != a.nmatch) {
        state_free(st);
        return fail(STRATA_ENOMEM, status, "out of memory", "");
    }
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, reader,
                                                               st, state_free);
    if (!r) {
        state_free(st);
        return fail(STRATA_ENOMEM, status, "out of memory", "");
    }
    MHD_add_response_header(r, "Content-Type", "application/stream+json");
    *status = 200;
    return r;
}
