/*
 * prom_params.c: the parameters of the Prometheus query API as Prometheus
 * 2.42 reads them (docs/promql.md, "HTTP API"): Go's r.Form (a form-encoded
 * POST body before the URL's parameters; Grafana POSTs its queries), its
 * parseTime and parseDuration, and Go's %q for the error texts that quote
 * the input.  The form parser takes any bytes (a fuzz target's input).
 */
#include "prom.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "call.h"
#include "strata_time.h"

/* ---- r.Form ------------------------------------------------------------------- */

static int params_add(api_prom_params_t *p, const char *name, const char *value)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        const char **nn = strata_arena_alloc(p->arena, ncap * sizeof *nn);
        const char **nv = strata_arena_alloc(p->arena, ncap * sizeof *nv);
        if (!nn || !nv) return STRATA_ENOMEM;
        if (p->n) {
            memcpy(nn, p->names, p->n * sizeof *nn);
            memcpy(nv, p->values, p->n * sizeof *nv);
        }
        p->names = nn;
        p->values = nv;
        p->cap = ncap;
    }
    p->names[p->n] = name;
    p->values[p->n] = value;
    p->n++;
    return 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Go's QueryUnescape of s[0..n) into the arena: NULL on a bad escape (*bad
 * set) or out of memory. */
static char *unescape(strata_arena_t *a, const char *s, size_t n, int *bad)
{
    char *out = strata_arena_alloc(a, n + 1);
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[k++] = ' ';
        } else if (s[i] == '%') {
            int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                *bad = 1;
                return NULL;
            }
            out[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            out[k++] = s[i];
        }
    }
    out[k] = '\0';
    return out;
}

int api_prom_form_parse(api_prom_params_t *p, const char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        const char *amp = memchr(text + i, '&', len - i);
        size_t end = amp ? (size_t)(amp - text) : len;
        const char *pair = text + i;
        size_t plen = end - i;
        i = amp ? end + 1 : len;
        /* Go refuses ';' as a separator since 1.17: the pair is dropped */
        if (plen == 0 || memchr(pair, ';', plen)) continue;
        const char *eq = memchr(pair, '=', plen);
        size_t nlen = eq ? (size_t)(eq - pair) : plen;
        int bad = 0;
        char *name = unescape(p->arena, pair, nlen, &bad);
        char *value = !name ? NULL
                      : eq  ? unescape(p->arena, eq + 1, plen - nlen - 1, &bad)
                            : strata_arena_strdup(p->arena, "");
        if (bad) continue;
        if (!name || !value) return STRATA_ENOMEM;
        /* a NUL escaped into a name or value cuts it here; Go would keep it,
         * but no parameter of this API means anything with one */
        int rc = params_add(p, name, value);
        if (rc) return rc;
    }
    return 0;
}

typedef struct url_collect {
    api_prom_params_t *p;
    int rc;
} url_collect_t;

static enum MHD_Result collect_url(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    url_collect_t *u = cls;
    u->rc = params_add(u->p, key, value ? value : "");
    return u->rc ? MHD_NO : MHD_YES;
}

/* Go's ParseForm reads the body of a POST whose media type is this one. */
static int is_form(const char *ct)
{
    static const char form[] = "application/x-www-form-urlencoded";
    if (!ct) return 0;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strlen(form);
    if (strncasecmp(ct, form, n) != 0) return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t') ct++;
    return *ct == '\0' || *ct == ';';
}

int api_prom_params_collect(api_call_t *c, api_prom_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->arena = api_call_arena(c);
    if (!p->arena) return STRATA_ENOMEM;
    size_t blen;
    const char *body = api_call_body(c, &blen);
    if (blen && is_form(api_call_header(c, "Content-Type"))) {
        int rc = api_prom_form_parse(p, body, blen);
        if (rc) return rc;
    }
    url_collect_t u = { p, 0 };
    MHD_get_connection_values(c->conn, MHD_GET_ARGUMENT_KIND, collect_url, &u);
    return u.rc;
}

const char *api_prom_param(const api_prom_params_t *p, const char *name)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) return p->values[i];
    return NULL;
}

size_t api_prom_param_all(const api_prom_params_t *p, const char *name, const char ***out)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n; i++) n += strcmp(p->names[i], name) == 0;
    const char **v = n ? strata_arena_alloc(p->arena, n * sizeof *v) : NULL;
    *out = v;
    if (!v) return 0;
    size_t k = 0;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->names[i], name) == 0) v[k++] = p->values[i];
    return k;
}

/* ---- times and durations ------------------------------------------------------ */

/* Go's strconv.ParseFloat for the decimal forms ([+-]digits[.digits][e[+-]digits]);
 * hexadecimal floats, Inf and NaN are refused (no time or duration means them). */
static int parse_float(const char *s, double *out)
{
    const char *q = s;
    if (*q == '+' || *q == '-') q++;
    int digits = 0;
    while (isdigit((unsigned char)*q)) q++, digits++;
    if (*q == '.') {
        q++;
        while (isdigit((unsigned char)*q)) q++, digits++;
    }
    if (!digits) return STRATA_EINVAL;
    if (*q == 'e' || *q == 'E') {
        q++;
        if (*q == '+' || *q == '-') q++;
        if (!isdigit((unsigned char)*q)) return STRATA_EINVAL;
        while (isdigit((unsigned char)*q)) q++;
    }
    if (*q) return STRATA_EINVAL;
    errno = 0;
    double v = strtod(s, NULL);
    /* Go refuses what overflows float64; underflow to 0 is fine */
    if (isinf(v)) return STRATA_EINVAL;
    *out = v;
    return 0;
}

int api_prom_parse_time(const char *s, int64_t *ms)
{
    double t;
    if (parse_float(s, &t) == 0) {
        /* math.Modf, the fraction rounded to the ms (halves away from zero) */
        double ip;
        double frac = modf(t, &ip);
        if (!(fabs(ip) < 9.2e15)) return STRATA_EINVAL;
        *ms = (int64_t)ip * 1000 + (int64_t)llround(frac * 1000.0);
        return 0;
    }
    if (strata_time_parse_rfc3339(s, ms) == 0) return 0;
    /* Go's time package prints and parses 4-digit years only; Prometheus
     * accepts its own boundaries' texts (client_golang sends them) */
    if (strcmp(s, "-292273086-05-16T16:47:06Z") == 0) {
        *ms = API_PROM_MIN_TIME_MS;
        return 0;
    }
    if (strcmp(s, "292277025-08-18T07:12:54.999999999Z") == 0) {
        *ms = API_PROM_MAX_TIME_MS;
        return 0;
    }
    return STRATA_EINVAL;
}

int api_prom_parse_duration(const char *s, int64_t *ns, int *overflow)
{
    *overflow = 0;
    double d;
    if (parse_float(s, &d) == 0) {
        double x = d * 1e9;
        if (x >= 9223372036854775807.0 || x < -9223372036854775808.0) {
            *overflow = 1;
            return STRATA_EINVAL;
        }
        *ns = (int64_t)x;
        return 0;
    }
    int64_t ms;
    if (strata_duration_parse(s, &ms) != 0 || ms > INT64_MAX / 1000000) return STRATA_EINVAL;
    *ns = ms * 1000000;
    return 0;
}

void api_prom_quote(strata_buf_t *b, const char *s)
{
    strata_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': strata_buf_puts(b, "\\\""); break;
        case '\\': strata_buf_puts(b, "\\\\"); break;
        case '\a': strata_buf_puts(b, "\\a"); break;
        case '\b': strata_buf_puts(b, "\\b"); break;
        case '\f': strata_buf_puts(b, "\\f"); break;
        case '\n': strata_buf_puts(b, "\\n"); break;
        case '\r': strata_buf_puts(b, "\\r"); break;
        case '\t': strata_buf_puts(b, "\\t"); break;
        case '\v': strata_buf_puts(b, "\\v"); break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                strata_buf_printf(b, "\\x%02x", *p);
            else
                strata_buf_put(b, (const char *)p, 1);
        }
    }
    strata_buf_puts(b, "\"");
}

/* ---- parameters with their 400s ----------------------------------------------------------------- */

/* Prometheus' parseTimeParam: absent or empty is dflt. */
int api_prom_time_param(api_call_t *c, const api_prom_params_t *p, const char *name, int64_t dflt,
                        int64_t *out)
{
    const char *v = api_prom_param(p, name);
    if (!v || !*v) {
        *out = dflt;
        return 1;
    }
    if (api_prom_parse_time(v, out) == 0) return 1;
    strata_buf_t m;
    strata_buf_init(&m, api_call_arena(c), 128);
    strata_buf_printf(&m, "Invalid time value for '%s': cannot parse ", name);
    api_prom_quote(&m, v);
    strata_buf_puts(&m, " to a valid timestamp");
    api_prom_reply_bad_param(c, name, m.failed ? "" : m.data);
    return 0;
}

/* query_range's start and end: required, no wrapping text. */
int api_prom_required_time(api_call_t *c, const api_prom_params_t *p, const char *name, int64_t *out)
{
    const char *v = api_prom_param(p, name);
    if (!v) v = "";
    if (api_prom_parse_time(v, out) == 0) return 1;
    strata_buf_t m;
    strata_buf_init(&m, api_call_arena(c), 128);
    strata_buf_puts(&m, "cannot parse ");
    api_prom_quote(&m, v);
    strata_buf_puts(&m, " to a valid timestamp");
    api_prom_reply_bad_param(c, name, m.failed ? "" : m.data);
    return 0;
}

/* A duration parameter in ns; answers the 400 and returns 0 when bad. */
int api_prom_duration_param(api_call_t *c, const char *name, const char *v, int64_t *ns)
{
    int overflow;
    if (api_prom_parse_duration(v, ns, &overflow) == 0) return 1;
    strata_buf_t m;
    strata_buf_init(&m, api_call_arena(c), 128);
    strata_buf_puts(&m, "cannot parse ");
    api_prom_quote(&m, v);
    strata_buf_puts(&m, overflow ? " to a valid duration. It overflows int64" : " to a valid duration");
    api_prom_reply_bad_param(c, name, m.failed ? "" : m.data);
    return 0;
}

/* The request's read budget: the source's limits, the deadline lowered by a
 * timeout parameter (Prometheus' context.WithTimeout); 0 after a 400. */
int api_prom_budget(api_call_t *c, const api_prom_params_t *p, api_read_budget_t *b)
{
    api_read_source_budget(api_call_reader(c), b);
    const char *to = api_prom_param(p, "timeout");
    if (!to || !*to) return 1;
    int64_t ns;
    if (!api_prom_duration_param(c, "timeout", to, &ns)) return 0;
    int64_t ms = ns / 1000000;
    int64_t deadline = api_read_mono_ms() + ms;
    if (!b->deadline_ms || deadline < b->deadline_ms) {
        b->deadline_ms = deadline;
        b->timeout_ms = ms;
        b->timeout_flag = "the timeout parameter";
    }
    return 1;
}
