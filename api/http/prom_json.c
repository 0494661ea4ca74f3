/*
 * prom_json.c: the JSON of the Prometheus query API written byte for byte as
 * Prometheus 2.42 writes it (docs/promql.md, "HTTP API"), so clients that
 * compare or cache answers see the same text from strata:
 *   - a vector or matrix point is [<seconds>.<ms as 3 digits>, "<value>"]
 *     (its jsoniter encoder: 1435781451.120, 1435781451), the value with
 *     strconv 'f' shortest, 'e' outside 1e-6 <= |v| < 1e21 ("1e+21");
 *   - a scalar or string is [<Go JSON float of ms/1000>, "<value>"]
 *     (1435781451.12), a scalar's value 'f' shortest, never an exponent;
 *   - strings escaped as Go's encoding/json does (HTML characters too).
 * The shortest digits are the fewest that strtod reads back to the same
 * bits, the closest among those (strata_fmt_shortest), as Go's are.
 */
#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "strata_fmt.h"

/* The shortest round-trip digits of finite v > 0: digits (no dot, no
 * trailing zeros, NUL-terminated) and e with v = d.ddd x 10^e.  strata_fmt's
 * exact integer search, not a printf/strtod pair per precision: a rate's
 * 16-17 digit values cost up to 17 pairs each, and that was most of a
 * query_range answer's CPU. */
static void shortest(double v, char digits[24], int *e)
{
    int k = strata_fmt_shortest(v, digits, e);
    digits[k] = '\0';
}

/* strconv.FormatFloat(v, fmt, -1, 64) for fmt 'f' or 'e'. */
static void go_float(strata_buf_t *b, double v, char fmt)
{
    if (isnan(v)) {
        strata_buf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        strata_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (signbit(v)) strata_buf_puts(b, "-");
    v = fabs(v);
    if (v == 0) {
        strata_buf_puts(b, fmt == 'e' ? "0e+00" : "0");
        return;
    }
    char d[24];
    int e;
    shortest(v, d, &e);
    int n = (int)strlen(d);
    if (fmt == 'e') {
        strata_buf_put(b, d, 1);
        if (n > 1) {
            strata_buf_puts(b, ".");
            strata_buf_put(b, d + 1, (size_t)n - 1);
        }
        strata_buf_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        return;
    }
    if (e < 0) {
        strata_buf_puts(b, "0.");
        for (int i = 0; i < -e - 1; i++) strata_buf_puts(b, "0");
        strata_buf_put(b, d, (size_t)n);
        return;
    }
    /* e + 1 integer digits, zero-padded past the significant ones */
    for (int i = 0; i <= e; i++) strata_buf_put(b, i < n ? d + i : "0", 1);
    if (n > e + 1) {
        strata_buf_puts(b, ".");
        strata_buf_put(b, d + e + 1, (size_t)(n - e - 1));
    }
}

void api_prom_json_point_value(strata_buf_t *b, double v)
{
    double a = fabs(v);
    strata_buf_puts(b, "\"");
    go_float(b, v, a != 0 && (a < 1e-6 || a >= 1e21) && !isinf(a) ? 'e' : 'f');
    strata_buf_puts(b, "\"");
}

void api_prom_json_point_time(strata_buf_t *b, int64_t ms)
{
    /* digits by hand: one per point of a matrix, and printf's format
     * parsing was a visible share of an answer's CPU */
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms, sec = u / 1000;
    unsigned frac = (unsigned)(u % 1000);
    char tmp[32];
    size_t o = sizeof tmp;
    if (frac) {
        for (int i = 0; i < 3; i++, frac /= 10) tmp[--o] = (char)('0' + frac % 10);
        tmp[--o] = '.';
    }
    do {
        tmp[--o] = (char)('0' + sec % 10);
        sec /= 10;
    } while (sec);
    if (ms < 0) tmp[--o] = '-';
    strata_buf_put(b, tmp + o, sizeof tmp - o);
}

void api_prom_json_scalar_value(strata_buf_t *b, double v)
{
    strata_buf_puts(b, "\"");
    go_float(b, v, 'f');
    strata_buf_puts(b, "\"");
}

void api_prom_json_scalar_time(strata_buf_t *b, int64_t ms)
{
    /* encoding/json's float64: 'e' outside [1e-6, 1e21), with e-07 -> e-7 */
    double v = (double)ms / 1000.0;
    double a = fabs(v);
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        strata_buf_t t;
        strata_buf_init(&t, NULL, 32);
        go_float(&t, v, 'e');
        if (t.failed) {
            b->failed = 1;
            return;
        }
        size_t n = t.len;
        if (n >= 4 && t.data[n - 4] == 'e' && t.data[n - 3] == '-' && t.data[n - 2] == '0') {
            t.data[n - 2] = t.data[n - 1];
            t.len--;
        }
        strata_buf_put(b, t.data, t.len);
        strata_buf_free(&t);
        return;
    }
    go_float(b, v, 'f');
}

void api_prom_json_string(strata_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    strata_buf_puts(b, "\"");
    const unsigned char *p = (const unsigned char *)s, *run = p;
    for (; *p; p++) {
        const char *esc = NULL;
        char u[7];
        if (*p == '"')
            esc = "\\\"";
        else if (*p == '\\')
            esc = "\\\\";
        else if (*p == '\n')
            esc = "\\n";
        else if (*p == '\r')
            esc = "\\r";
        else if (*p == '\t')
            esc = "\\t";
        else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&') {
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[*p >> 4], u[5] = hex[*p & 15],
            u[6] = 0;
            esc = u;
        } else if (*p == 0xE2 && p[1] == 0x80 && (p[2] == 0xA8 || p[2] == 0xA9)) {
            /* U+2028 and U+2029 end a line in JavaScript */
            strata_buf_put(b, (const char *)run, (size_t)(p - run));
            strata_buf_puts(b, p[2] == 0xA8 ? "\\u2028" : "\\u2029");
            p += 2;
            run = p + 1;
            continue;
        }
        if (!esc) continue;
        strata_buf_put(b, (const char *)run, (size_t)(p - run));
        strata_buf_puts(b, esc);
        run = p + 1;
    }
    strata_buf_put(b, (const char *)run, (size_t)(p - run));
    strata_buf_puts(b, "\"");
}

void api_prom_json_labels(strata_buf_t *b, const tsdb_label_t *l, size_t n)
{
    strata_buf_puts(b, "{");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
        if (!first) strata_buf_puts(b, ",");
        api_prom_json_string(b, l[i].name);
        strata_buf_puts(b, ":");
        api_prom_json_string(b, l[i].value);
        first = 0;
    }
    strata_buf_puts(b, "}");
}

/* ---- answers ------------------------------------------------------------------ */

/* The body is built in the call's arena; api_call_reply copies it. */
static int reply_buf(api_call_t *c, int status, strata_buf_t *b)
{
    if (b->failed) return api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "");
    return api_call_reply(c, status, "application/json", b->data, b->len);
}

int api_prom_reply_error(api_call_t *c, int err, const char *msg)
{
    int status;
    const char *type = api_prom_error_type(err, &status);
    strata_arena_t *a = api_call_arena(c);
    if (!a) return api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "");
    strata_buf_t b;
    strata_buf_init(&b, a, 256);
    strata_buf_puts(&b, "{\"status\":\"error\",\"errorType\":");
    api_prom_json_string(&b, type);
    strata_buf_puts(&b, ",\"error\":");
    api_prom_json_string(&b, msg && *msg ? msg : strata_strerror(err));
    strata_buf_puts(&b, "}");
    return reply_buf(c, status, &b);
}

int api_prom_reply_bad_param(api_call_t *c, const char *name, const char *msg)
{
    strata_arena_t *a = api_call_arena(c);
    if (!a) return api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "");
    strata_buf_t m;
    strata_buf_init(&m, a, 128);
    strata_buf_printf(&m, "invalid parameter \"%s\": %s", name, msg);
    if (m.failed) return api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "");
    return api_prom_reply_error(c, STRATA_EINVAL, m.data);
}

int api_prom_reply_data(api_call_t *c, const char *data, size_t len, const char *const *warnings,
                        size_t nwarnings)
{
    strata_arena_t *a = api_call_arena(c);
    if (!a) return api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "");
    strata_buf_t b;
    strata_buf_init(&b, a, len + 64);
    strata_buf_puts(&b, "{\"status\":\"success\",\"data\":");
    strata_buf_put(&b, data, len);
    if (nwarnings) {
        strata_buf_puts(&b, ",\"warnings\":[");
        for (size_t i = 0; i < nwarnings; i++) {
            if (i) strata_buf_puts(&b, ",");
            api_prom_json_string(&b, warnings[i]);
        }
        strata_buf_puts(&b, "]");
    }
    strata_buf_puts(&b, "}");
    return reply_buf(c, 200, &b);
}

/* A read error as Prometheus' API answers a storage or limit failure. */
int api_prom_reply_read_error(api_call_t *c, api_read_budget_t *b, int rc)
{
    if (b->exceeded == STRATA_ETIMEOUT || rc == STRATA_ETIMEOUT)
        return api_prom_reply_error(c, STRATA_ETIMEOUT, "query timed out in expression evaluation");
    if (b->exceeded == STRATA_ELIMIT)
        return api_prom_reply_error(
            c, STRATA_ELIMIT, "query processing would load too many samples into memory in query execution");
    /* the seam's other limit: matchers in one selector */
    if (rc == STRATA_ELIMIT)
        return api_prom_reply_error(c, STRATA_EINVAL, "too many matchers in one selector");
    if (rc == STRATA_EBADREGEX) return api_prom_reply_error(c, rc, "invalid regular expression in a matcher");
    return api_prom_reply_error(c, rc, NULL);
}
