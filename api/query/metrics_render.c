/*
 * metrics_render.c: the metrics response as a body (metrics_query.h):
 * MetricsCompositeResponse JSON, or the long CSV form for Accept: text/csv.
 * Both are written straight into the request's arena through one strata_buf
 * sized by a generous guess, so a 2 MB answer is one allocation and never
 * copied.  docs/metrics.md ("JSON", "CSV") has the exact shapes.
 */
#include "metrics_internal.h"

#include <string.h>

#include "strata_buf.h"
#include "strata_fmt.h"
#include "strata_time.h"

/* The body as the caller wants it: in the arena, NUL-terminated. */
static int buf_finish(strata_buf_t *b, char **out, size_t *len)
{
    strata_buf_put(b, "", 0); /* an empty body is still a string */
    if (b->failed) return STRATA_ENOMEM;
    *out = b->data;
    if (len) *len = b->len;
    return 0;
}

/* A generous guess of the body's size, so that it is written in place in one
 * arena block (no doubling chain, no final copy; 2 MB answers are common).
 * JSON: ~55-60 bytes per point, a histogram cell is its le string and count.
 * CSV: a row per point or cell, about as long plus the type name and labels. */
static size_t size_guess(const api_metrics_response_t *r, int csv)
{
    size_t g = 4096 + r->nh * 4096;
    for (size_t i = 0; i < r->nm; i++) {
        const measurement_t *m = &r->m[i];
        size_t row = 72;
        if (csv)
            row += strlen(api_metrics_type_name(m->type)) + (m->gpu ? strlen(m->gpu) : 0) +
                   (m->node ? strlen(m->node) : 0);
        g += m->n * row;
    }
    for (size_t i = 0; i < r->nh; i++) {
        const hseries_t *h = &r->h[i];
        size_t name = csv ? strlen(api_metrics_type_name(h->type)) : 0;
        if (api_catalog_get(h->type)->kind == API_CATALOG_PCT) {
            g += h->nq * API_CATALOG_NQUANTILES * (name + 72);
        } else if (h->h) {
            size_t nl = api_hist_nles(h->h), les = 0;
            for (size_t j = 0; j < nl; j++) les += strlen(api_hist_le(h->h, j));
            g += api_hist_nsteps(h->h) * (64 + les + nl * (name + 72));
        }
    }
    return g;
}

/* Room for one point: the literals, a double and a timestamp (each written
 * with their whole BUFSZ of room, as strata_buf_double would). */
#define POINT_ROOM (40 + STRATA_FMT_DOUBLE_BUFSZ + STRATA_TIME_RFC3339_BUFSZ)

/* {"value":"v","timestamp":"t"} (a comma before all but the first), written
 * in place after one reserve: most of a 2 MB answer is these, and a call per
 * piece (strlen, memcpy, a reserve each) was a tenth of a 7-day query. */
static void json_point(strata_buf_t *b, const api_point_t *pt, int first)
{
    static const char open[] = ",{\"value\":\"", mid[] = "\",\"timestamp\":\"";
    if (!strata_buf_reserve(b, POINT_ROOM)) return;
    char *p = b->data + b->len;
    size_t o = first ? 1 : 0; /* the first has no comma */
    memcpy(p, open + o, sizeof open - 1 - o);
    p += sizeof open - 1 - o;
    int n = strata_fmt_double(pt->v, p, STRATA_FMT_DOUBLE_BUFSZ);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    p += n;
    memcpy(p, mid, sizeof mid - 1);
    p += sizeof mid - 1;
    n = strata_time_format_rfc3339(pt->t, p, STRATA_TIME_RFC3339_BUFSZ);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    p += n;
    *p++ = '"';
    *p++ = '}';
    *p = '\0';
    b->len = (size_t)(p - b->data);
}

int api_metrics_render_json(const api_metrics_response_t *r, strata_arena_t *arena, char **out, size_t *len)
{
    if (!r || !arena || !out) return STRATA_EINVAL;
    strata_buf_t b;
    strata_buf_init(&b, arena, size_guess(r, 0));
    strata_buf_puts(&b, "{\"measurements\":[");
    for (size_t i = 0; i < r->nm; i++) {
        const measurement_t *m = &r->m[i];
        if (i) strata_buf_puts(&b, ",");
        strata_buf_puts(&b, "{\"type\":");
        strata_buf_json_string(&b, api_metrics_type_name(m->type));
        if (m->error) {
            strata_buf_puts(&b, ",\"labels\":{\"error\":");
            strata_buf_json_string(&b, m->error);
            strata_buf_puts(&b, "},\"values\":null}");
            continue;
        }
        if (m->gpu) {
            strata_buf_puts(&b, ",\"labels\":{\"gpu\":");
            strata_buf_json_string(&b, m->gpu);
            strata_buf_puts(&b, ",\"node\":");
            strata_buf_json_string(&b, m->node);
            strata_buf_puts(&b, "}");
        }
        strata_buf_puts(&b, ",\"values\":[");
        for (size_t k = 0; k < m->n && !b.failed; k++) json_point(&b, &m->pts[k], k == 0);
        strata_buf_puts(&b, "]}");
    }
    strata_buf_puts(&b, "]");
    if (r->nh) {
        strata_buf_puts(&b, ",\"histogram\":[");
        for (size_t i = 0; i < r->nh; i++) {
            const hseries_t *h = &r->h[i];
            if (i) strata_buf_puts(&b, ",");
            strata_buf_puts(&b, "{\"type\":");
            strata_buf_json_string(&b, api_metrics_type_name(h->type));
            strata_buf_puts(&b, ",\"values\":[");
            if (api_catalog_get(h->type)->kind == API_CATALOG_PCT) {
                for (size_t s = 0; s < h->nq; s++) {
                    strata_buf_puts(&b, s ? ",{\"timestamp\":\"" : "{\"timestamp\":\"");
                    strata_buf_time_rfc3339(&b, h->qt[s]);
                    strata_buf_puts(&b, "\",\"data\":{");
                    for (int k = 0; k < API_CATALOG_NQUANTILES; k++) {
                        strata_buf_puts(&b, k ? ",\"" : "\"");
                        strata_buf_puts(&b, api_catalog_quantile_keys[k]);
                        strata_buf_puts(&b, "\":\"");
                        strata_buf_double(&b, h->qv[s][k]);
                        strata_buf_puts(&b, "\"");
                    }
                    strata_buf_puts(&b, "}}");
                }
            } else if (h->h) {
                size_t ns = api_hist_nsteps(h->h), nl = api_hist_nles(h->h);
                for (size_t s = 0; s < ns; s++) {
                    strata_buf_puts(&b, s ? ",{\"timestamp\":\"" : "{\"timestamp\":\"");
                    strata_buf_time_rfc3339(&b, api_hist_step_time(h->h, s));
                    strata_buf_puts(&b, "\",\"data\":{");
                    for (size_t j = 0; j < nl; j++) {
                        if (j) strata_buf_puts(&b, ",");
                        strata_buf_json_string(&b, api_hist_le(h->h, j));
                        strata_buf_puts(&b, ":\"");
                        strata_buf_double(&b, api_hist_count(h->h, s, j));
                        strata_buf_puts(&b, "\"");
                    }
                    strata_buf_puts(&b, "}}");
                }
            }
            strata_buf_puts(&b, "]}");
        }
        strata_buf_puts(&b, "]");
    }
    strata_buf_puts(&b, "}");
    return buf_finish(&b, out, len);
}

/* The label columns of a measurement, in the order of the header. */
enum { COL_GPU, COL_NODE, COL_ERROR, NCOL };
static const char *const COL_NAMES[NCOL] = { "gpu", "node", "error" };

static const char *col_value(const measurement_t *m, int c)
{
    switch (c) {
    case COL_GPU: return m->gpu ? m->gpu : "";
    case COL_NODE: return m->node ? m->node : "";
    default: return m->error ? m->error : "";
    }
}

int api_metrics_render_csv(const api_metrics_response_t *r, strata_arena_t *arena, char **out, size_t *len)
{
    if (!r || !arena || !out) return STRATA_EINVAL;
    int used[NCOL] = { 0 };
    for (size_t i = 0; i < r->nm; i++) {
        used[COL_GPU] |= r->m[i].gpu != NULL;
        used[COL_NODE] |= r->m[i].gpu != NULL;
        used[COL_ERROR] |= r->m[i].error != NULL;
    }
    int with_key = r->nh > 0;
    strata_buf_t b;
    strata_buf_init(&b, arena, size_guess(r, 1));
    strata_buf_puts(&b, with_key ? "type,timestamp,key,value" : "type,timestamp,value");
    for (int c = 0; c < NCOL; c++)
        if (used[c]) {
            strata_buf_puts(&b, ",");
            strata_buf_puts(&b, COL_NAMES[c]);
        }
    strata_buf_puts(&b, "\r\n");
    for (size_t i = 0; i < r->nm; i++) {
        const measurement_t *m = &r->m[i];
        const char *type = api_metrics_type_name(m->type);
        size_t rows = m->error ? 1 : m->n;
        for (size_t k = 0; k < rows; k++) {
            strata_buf_puts(&b, type);
            strata_buf_puts(&b, ",");
            if (!m->error) strata_buf_time_rfc3339(&b, m->pts[k].t);
            strata_buf_puts(&b, with_key ? ",," : ",");
            if (!m->error) strata_buf_double(&b, m->pts[k].v);
            for (int c = 0; c < NCOL; c++)
                if (used[c]) {
                    strata_buf_puts(&b, ",");
                    strata_buf_csv_field(&b, col_value(m, c));
                }
            strata_buf_puts(&b, "\r\n");
        }
    }
    char tail[NCOL + 1];
    size_t nt = 0;
    for (int c = 0; c < NCOL; c++)
        if (used[c]) tail[nt++] = ',';
    tail[nt] = 0;
    for (size_t i = 0; i < r->nh; i++) {
        const hseries_t *h = &r->h[i];
        const char *type = api_metrics_type_name(h->type);
        if (api_catalog_get(h->type)->kind == API_CATALOG_PCT) {
            for (size_t s = 0; s < h->nq; s++)
                for (int k = 0; k < API_CATALOG_NQUANTILES; k++) {
                    strata_buf_puts(&b, type);
                    strata_buf_puts(&b, ",");
                    strata_buf_time_rfc3339(&b, h->qt[s]);
                    strata_buf_puts(&b, ",");
                    strata_buf_puts(&b, api_catalog_quantile_keys[k]);
                    strata_buf_puts(&b, ",");
                    strata_buf_double(&b, h->qv[s][k]);
                    strata_buf_puts(&b, tail);
                    strata_buf_puts(&b, "\r\n");
                }
        } else if (h->h) {
            size_t ns = api_hist_nsteps(h->h), nl = api_hist_nles(h->h);
            for (size_t s = 0; s < ns; s++)
                for (size_t j = 0; j < nl; j++) {
                    strata_buf_puts(&b, type);
                    strata_buf_puts(&b, ",");
                    strata_buf_time_rfc3339(&b, api_hist_step_time(h->h, s));
                    strata_buf_puts(&b, ",");
                    strata_buf_csv_field(&b, api_hist_le(h->h, j));
                    strata_buf_puts(&b, ",");
                    strata_buf_double(&b, api_hist_count(h->h, s, j));
                    strata_buf_puts(&b, tail);
                    strata_buf_puts(&b, "\r\n");
                }
        }
    }
    return buf_finish(&b, out, len);
}
