/*
 * read_prom.c: a read source over a remote Prometheus-compatible engine
 * (--remote-query-url; docs/scale-out.md, "Read path").
 *
 * Every reader needs raw samples (the metrics query buckets them itself,
 * reports integrate them, export returns them), so a select fetches the raw
 * samples of its matchers over [mint, maxt] in one call:
 *   - victoriametrics: GET <prefix>/api/v1/export (JSON lines, exact values
 *     and timestamps, stale markers exported as null);
 *   - prometheus (Prometheus, Mimir, Cortex, Thanos Query): GET
 *     <prefix>/api/v1/query of the range selector {matchers}[<range>ms] at
 *     maxt, which answers raw samples, stale markers dropped.
 * The flavour is given, or probed once ("auto": an engine that serves
 * /api/v1/export is VictoriaMetrics).  The tenant matcher the seam adds is
 * the tenant routing ({tenant} in the URL, or a header), never a matcher sent
 * to such an engine; to one engine without routing it becomes a matcher on
 * the label the shipper writes (selector()).  The tenant label goes back
 * into every label set, as the local store's carry it.  The answer is held in the set (series sorted by
 * labels, samples sorted and deduplicated by timestamp), so a failure is one
 * failed select, never a partial answer.  libcurl easy handles are kept in a
 * small pool so connections stay alive between requests.
 */
#include "read.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "strata_arena.h"
#include "strata_buf.h"
#include "strata_log.h"

enum { FLAVOR_AUTO, FLAVOR_PROM, FLAVOR_VM };

#define POOL_MAX 16

typedef struct prom_backend {
    char *url; /* the prefix, {tenant} kept */
    char *tenant_header;
    char *bearer; /* the token, read at start */
    char *ca_file;
    int32_t *tenants;
    size_t ntenants;
    int64_t timeout_ms;
    pthread_mutex_t mu;
    int flavor; /* FLAVOR_AUTO until probed */
    CURL *pool[POOL_MAX];
    size_t npool;
} prom_backend_t;

typedef struct prom_series {
    tsdb_label_t *l;
    size_t nl;
    tsdb_sample_t *s;
    size_t ns, cap;
} prom_series_t;

typedef struct prom_set {
    strata_arena_t *arena;
    prom_series_t *series;
    size_t n, cap, cur; /* cur: 1-based after the first next */
} prom_set_t;

/* The calling thread's last failure, for the seam (ops->why). */
static _Thread_local char last_why[200];

static int fail(int rc, const char *fmt, const char *url, const char *detail)
{
    snprintf(last_why, sizeof last_why, fmt, url, detail);
    strata_error("remote read failed", "err=\"%s\" why=\"%s\"", strata_strerror(rc), last_why);
    return rc;
}

static const char *prom_why(void *backend)
{
    (void)backend;
    return last_why;
}

/* ---- HTTP ------------------------------------------------------------------ */

static CURL *handle_get(prom_backend_t *b)
{
    pthread_mutex_lock(&b->mu);
    CURL *h = b->npool ? b->pool[--b->npool] : NULL;
    pthread_mutex_unlock(&b->mu);
    return h ? h : curl_easy_init();
}

static void handle_put(prom_backend_t *b, CURL *h)
{
    curl_easy_reset(h); /* options go, the connection cache stays */
    pthread_mutex_lock(&b->mu);
    if (b->npool < POOL_MAX) {
        b->pool[b->npool++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&b->mu);
    if (h) curl_easy_cleanup(h);
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    strata_buf_t *buf = ud;
    strata_buf_put(buf, p, sz * n);
    return buf->failed ? 0 : sz * n;
}

/* The prefix for tenant (its {tenant} replaced) into out. */
static void tenant_url(const prom_backend_t *b, const char *tenant, strata_buf_t *out)
{
    const char *p = b->url, *t;
    while ((t = strstr(p, "{tenant}"))) {
        strata_buf_put(out, p, (size_t)(t - p));
        strata_buf_puts(out, tenant);
        p = t + 8;
    }
    strata_buf_puts(out, p);
}

/* GET prefix + path_query for tenant into body.  0 on a 2xx;
 * STRATA_ENOTFOUND on 404/405 (the flavour probe); else STRATA_EIO or
 * STRATA_ETIMEOUT with last_why naming the engine. */
static int http_get(prom_backend_t *b, const char *tenant, const char *path_query, int64_t deadline_ms,
                    strata_buf_t *body)
{
    strata_buf_t url = { 0 };
    tenant_url(b, tenant, &url);
    strata_buf_puts(&url, path_query);
    if (url.failed) {
        free(url.data);
        return STRATA_ENOMEM;
    }
    int64_t timeout = b->timeout_ms;
    if (deadline_ms) {
        timeout = deadline_ms - api_read_mono_ms();
        if (timeout < 1) {
            int rc = fail(STRATA_ETIMEOUT, "remote engine %s: %s", b->url, "query timeout before the call");
            free(url.data);
            return rc;
        }
    }
    CURL *h = handle_get(b);
    if (!h) {
        free(url.data);
        return STRATA_ENOMEM;
    }
    struct curl_slist *hdr = NULL;
    char line[512];
    if (b->tenant_header) {
        snprintf(line, sizeof line, "%s: %s", b->tenant_header, tenant);
        hdr = curl_slist_append(hdr, line);
    }
    if (b->bearer) {
        strata_buf_t a = { 0 };
        strata_buf_printf(&a, "Authorization: Bearer %s", b->bearer);
        if (!a.failed) hdr = curl_slist_append(hdr, a.data);
        free(a.data);
    }
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 5000 ? timeout : 5000));
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
    if (b->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, b->ca_file);
    CURLcode cc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    handle_put(b, h);
    curl_slist_free_all(hdr);
    int rc = 0;
    char detail[160];
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(detail, sizeof detail, "no answer within %" PRId64 " ms", timeout);
        rc = fail(STRATA_ETIMEOUT, "remote engine %s: %s", b->url, detail);
    } else if (cc != CURLE_OK) {
        rc = fail(body->failed ? STRATA_ENOMEM : STRATA_EIO, "remote engine %s: %s", b->url,
                  curl_easy_strerror(cc));
    } else if (status == 404 || status == 405) {
        rc = STRATA_ENOTFOUND;
    } else if (status < 200 || status > 299) {
        snprintf(detail, sizeof detail, "HTTP %ld: %.100s", status, body->data ? body->data : "");
        for (char *p = detail; *p; p++)
            if (*p == '\n' || *p == '"') *p = ' ';
        rc = fail(STRATA_EIO, "remote engine %s: %s", b->url, detail);
    }
    free(url.data);
    return rc;
}

/* ---- selectors ------------------------------------------------------------- */

static void put_quoted(strata_buf_t *q, const char *v)
{
    strata_buf_puts(q, "\"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\') strata_buf_put(q, "\\", 1);
        if (*p == '\n')
            strata_buf_puts(q, "\\n");
        else
            strata_buf_put(q, p, 1);
    }
    strata_buf_puts(q, "\"");
}

/* {name="v",...} of the matchers other than the tenant's; to an unrouted
 * engine (no {tenant}, no header) the tenant is a label matcher instead, as
 * the shipper (api/remote/ship.c) writes it: none for tenant 0, the
 * __tenant__ label for the others. */
static void selector(const tsdb_matcher_t *m, size_t n, const char *unrouted_tenant, strata_buf_t *q)
{
    static const char *const ops[] = {
        [TSDB_MATCH_EQ] = "=", [TSDB_MATCH_NEQ] = "!=", [TSDB_MATCH_RE] = "=~", [TSDB_MATCH_NRE] = "!~"
    };
    strata_buf_puts(q, "{");
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, INGEST_TENANT_LABEL) == 0) continue;
        if (!first) strata_buf_puts(q, ",");
        strata_buf_puts(q, m[i].name);
        strata_buf_puts(q, ops[m[i].op]);
        put_quoted(q, m[i].value);
        first = 0;
    }
    if (unrouted_tenant) {
        if (!first) strata_buf_puts(q, ",");
        strata_buf_puts(q, INGEST_TENANT_LABEL "=");
        put_quoted(q, strcmp(unrouted_tenant, "0") ? unrouted_tenant : "");
    }
    strata_buf_puts(q, "}");
}

static void put_escaped(strata_buf_t *out, const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if (!e) {
        out->failed = 1;
        return;
    }
    strata_buf_puts(out, e);
    curl_free(e);
}

static void put_seconds(strata_buf_t *out, int64_t ms)
{
    strata_buf_printf(out, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
}

/* ---- parsing --------------------------------------------------------------- */

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const tsdb_label_t *)a)->name, ((const tsdb_label_t *)b)->name);
}

static int sample_cmp(const void *a, const void *b)
{
    int64_t x = ((const tsdb_sample_t *)a)->t, y = ((const tsdb_sample_t *)b)->t;
    return x < y ? -1 : x > y;
}

static int series_cmp(const void *a, const void *b)
{
    const prom_series_t *x = a, *y = b;
    for (size_t i = 0; i < x->nl && i < y->nl; i++) {
        int c = strcmp(x->l[i].name, y->l[i].name);
        if (!c) c = strcmp(x->l[i].value, y->l[i].value);
        if (c) return c;
    }
    return x->nl < y->nl ? -1 : x->nl > y->nl;
}

/* A new series of set with metric's labels (any tenant label the engine kept
 * replaced by tenant), sorted by name. */
static prom_series_t *series_add(prom_set_t *set, json_t *metric, const char *tenant)
{
    if (set->n == set->cap) {
        size_t nc = set->cap ? set->cap * 2 : 64;
        prom_series_t *ns = realloc(set->series, nc * sizeof *ns);
        if (!ns) return NULL;
        set->series = ns;
        set->cap = nc;
    }
    size_t nl = json_object_size(metric) + 1;
    prom_series_t *s = &set->series[set->n];
    *s = (prom_series_t){ 0 };
    if (!(s->l = strata_arena_alloc(set->arena, nl * sizeof *s->l))) return NULL;
    const char *k;
    json_t *v;
    json_object_foreach(metric, k, v)
    {
        if (!json_is_string(v) || strcmp(k, INGEST_TENANT_LABEL) == 0) continue;
        s->l[s->nl].name = strata_arena_strdup(set->arena, k);
        s->l[s->nl].value = strata_arena_strdup(set->arena, json_string_value(v));
        if (!s->l[s->nl].name || !s->l[s->nl].value) return NULL;
        s->nl++;
    }
    s->l[s->nl++] = (tsdb_label_t){ INGEST_TENANT_LABEL, tenant };
    qsort(s->l, s->nl, sizeof *s->l, label_cmp);
    set->n++;
    return s;
}

static int sample_add(prom_series_t *s, int64_t t, double v)
{
    if (s->ns == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        tsdb_sample_t *n = realloc(s->s, nc * sizeof *n);
        if (!n) return STRATA_ENOMEM;
        s->s = n;
        s->cap = nc;
    }
    s->s[s->ns++] = (tsdb_sample_t){ t, v };
    return 0;
}

static double stale_nan(void)
{
    union {
        uint64_t u;
        double d;
    } x = { TSDB_STALE_NAN_BITS };
    return x.d;
}

/* VictoriaMetrics writes +-Inf (and, in some versions, NaN) as bare words,
 * which JSON has not: they become strings before parsing.  It exports a stale
 * marker as null (1.79) or NaN, and drops other NaNs at ingest, so both read
 * back as the stale marker. */
static char *vm_line_fix(const char *p, size_t len)
{
    strata_buf_t o = { 0 };
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = p[i];
        if (in_str) {
            strata_buf_put(&o, &ch, 1);
            if (ch == '\\' && i + 1 < len)
                strata_buf_put(&o, &p[++i], 1);
            else if (ch == '"')
                in_str = 0;
            continue;
        }
        if (ch == '"') in_str = 1;
        if (!strncmp(p + i, "NaN", 3) && i + 3 <= len) {
            strata_buf_puts(&o, "\"NaN\"");
            i += 2;
        } else if (!strncmp(p + i, "-Inf", 4) && i + 4 <= len) {
            strata_buf_puts(&o, "\"-Inf\"");
            i += 3;
        } else if ((!strncmp(p + i, "+Inf", 4) && i + 4 <= len)) {
            strata_buf_puts(&o, "\"+Inf\"");
            i += 3;
        } else if (!strncmp(p + i, "Inf", 3) && i + 3 <= len) {
            strata_buf_puts(&o, "\"+Inf\"");
            i += 2;
        } else
            strata_buf_put(&o, &ch, 1);
    }
    strata_buf_put(&o, "", 1);
    if (o.failed) {
        free(o.data);
        return NULL;
    }
    return o.data;
}

static int json_value(json_t *v, double *out)
{
    if (json_is_null(v)) { /* VictoriaMetrics' export of a stale marker */
        *out = stale_nan();
        return 0;
    }
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    if (!json_is_string(v)) return -1;
    const char *s = json_string_value(v);
    if (!strcmp(s, "NaN"))
        *out = stale_nan();
    else if (!strcmp(s, "+Inf") || !strcmp(s, "Inf"))
        *out = INFINITY;
    else if (!strcmp(s, "-Inf"))
        *out = -INFINITY;
    else {
        char *end;
        *out = strtod(s, &end);
        if (end == s || *end) return -1;
    }
    return 0;
}

static int parse_vm(prom_backend_t *b, prom_set_t *set, const char *tenant, const char *body, size_t len,
                    int64_t mint, int64_t maxt)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        if (nl > p) {
            char *fixed = vm_line_fix(p, (size_t)(nl - p));
            if (!fixed) return STRATA_ENOMEM;
            json_error_t je;
            json_t *o = json_loads(fixed, 0, &je);
            free(fixed);
            json_t *m = json_object_get(o, "metric"), *vs = json_object_get(o, "values"),
                   *ts = json_object_get(o, "timestamps");
            if (!json_is_object(m) || !json_is_array(vs) || !json_is_array(ts) ||
                json_array_size(vs) != json_array_size(ts)) {
                json_decref(o);
                return fail(STRATA_EIO, "remote engine %s: %s", b->url, "malformed /api/v1/export line");
            }
            prom_series_t *s = series_add(set, m, tenant);
            int rc = s ? 0 : STRATA_ENOMEM;
            for (size_t i = 0; !rc && i < json_array_size(vs); i++) {
                double v;
                json_t *t = json_array_get(ts, i);
                if (!json_is_integer(t) || json_value(json_array_get(vs, i), &v)) {
                    rc = fail(STRATA_EIO, "remote engine %s: %s", b->url, "malformed /api/v1/export value");
                    break;
                }
                int64_t tm = json_integer_value(t);
                if (tm >= mint && tm <= maxt) rc = sample_add(s, tm, v);
            }
            json_decref(o);
            if (rc) return rc;
        }
        p = nl + 1;
    }
    return 0;
}

static int parse_prom(prom_backend_t *b, prom_set_t *set, const char *tenant, const char *body, size_t len,
                      int64_t mint, int64_t maxt)
{
    json_error_t je;
    json_t *o = json_loadb(body, len, 0, &je);
    json_t *data = json_object_get(o, "data");
    json_t *res = json_object_get(data, "result");
    const char *rt = json_string_value(json_object_get(data, "resultType"));
    if (!json_is_array(res) || !rt || strcmp(rt, "matrix")) {
        json_decref(o);
        return fail(STRATA_EIO, "remote engine %s: %s", b->url, "not a matrix answer to a range selector");
    }
    int rc = 0;
    size_t i;
    json_t *r;
    json_array_foreach(res, i, r)
    {
        json_t *m = json_object_get(r, "metric"), *vs = json_object_get(r, "values");
        if (!json_is_object(m) || !json_is_array(vs)) {
            rc = fail(STRATA_EIO, "remote engine %s: %s", b->url, "malformed matrix series");
            break;
        }
        prom_series_t *s = series_add(set, m, tenant);
        if (!s) {
            rc = STRATA_ENOMEM;
            break;
        }
        size_t j;
        json_t *pt;
        json_array_foreach(vs, j, pt)
        {
            double v;
            json_t *t = json_array_get(pt, 0);
            if (!json_is_number(t) || json_value(json_array_get(pt, 1), &v)) {
                rc = fail(STRATA_EIO, "remote engine %s: %s", b->url, "malformed matrix sample");
                break;
            }
            /* seconds with millisecond decimals: the nearest ms is exact */
            int64_t tm = llround(json_number_value(t) * 1000.0);
            /* a NaN here is a value sent as NaN (stale markers are not returned) */
            if (isnan(v)) v = NAN;
            if (tm >= mint && tm <= maxt && (rc = sample_add(s, tm, v))) break;
        }
        if (rc) break;
    }
    json_decref(o);
    return rc;
}

/* ---- the flavour ----------------------------------------------------------- */

static int probe_flavor(prom_backend_t *b, const char *tenant, int64_t deadline_ms)
{
    pthread_mutex_lock(&b->mu);
    int f = b->flavor;
    pthread_mutex_unlock(&b->mu);
    if (f != FLAVOR_AUTO) return f;
    strata_buf_t body = { 0 };
    int rc = http_get(b, tenant,
                      "/api/v1/export?match%5B%5D=%7B__name__%3D%22strata_flavor_probe%22%7D&start=0&end=1",
                      deadline_ms, &body);
    free(body.data);
    if (rc && rc != STRATA_ENOTFOUND) return rc;
    f = rc ? FLAVOR_PROM : FLAVOR_VM;
    pthread_mutex_lock(&b->mu);
    b->flavor = f;
    pthread_mutex_unlock(&b->mu);
    strata_info("remote engine flavour", "url=%s flavor=%s", b->url,
                f == FLAVOR_VM ? "victoriametrics" : "prometheus");
    return f;
}

/* ---- ops ------------------------------------------------------------------- */

static int fetch(prom_backend_t *b, prom_set_t *set, const char *tenant, const tsdb_matcher_t *m, size_t n,
                 int64_t mint, int64_t maxt, int64_t deadline_ms)
{
    int f = probe_flavor(b, tenant, deadline_ms);
    if (f < 0) return f;
    strata_buf_t sel = { 0 }, pq = { 0 }, body = { 0 };
    int routed = strstr(b->url, "{tenant}") || b->tenant_header;
    selector(m, n, routed ? NULL : tenant, &sel);
    if (f == FLAVOR_VM) {
        strata_buf_puts(&pq, "/api/v1/export?match%5B%5D=");
        if (!sel.failed) put_escaped(&pq, sel.data);
        strata_buf_puts(&pq, "&start=");
        put_seconds(&pq, mint);
        strata_buf_puts(&pq, "&end=");
        put_seconds(&pq, maxt);
    } else {
        /* [range] covers (maxt - range, maxt]: one ms more holds mint whether
         * the engine's range is left-open (3.x) or closed (2.x) */
        strata_buf_printf(&sel, "[%" PRId64 "ms]", maxt - mint + 1);
        strata_buf_puts(&pq, "/api/v1/query?query=");
        if (!sel.failed) put_escaped(&pq, sel.data);
        strata_buf_puts(&pq, "&time=");
        put_seconds(&pq, maxt);
    }
    int rc = sel.failed || pq.failed ? STRATA_ENOMEM : 0;
    if (!rc) rc = http_get(b, tenant, pq.data, deadline_ms, &body);
    if (rc == STRATA_ENOTFOUND) rc = fail(STRATA_EIO, "remote engine %s: %s", b->url, "HTTP 404");
    if (!rc)
        rc = f == FLAVOR_VM ? parse_vm(b, set, tenant, body.data ? body.data : "", body.len, mint, maxt)
                            : parse_prom(b, set, tenant, body.data ? body.data : "", body.len, mint, maxt);
    free(sel.data);
    free(pq.data);
    free(body.data);
    return rc;
}

static void set_free(void *p)
{
    prom_set_t *set = p;
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) free(set->series[i].s);
    free(set->series);
    strata_arena_free(set->arena);
    free(set);
}

/* Sorts the series by labels, merges the lines of one series (an export may
 * split a series), sorts and deduplicates samples, drops empty series. */
static int set_finish(prom_set_t *set)
{
    int rc = 0;
    if (set->n > 1) qsort(set->series, set->n, sizeof *set->series, series_cmp);
    size_t out = 0;
    for (size_t i = 0; i < set->n; i++) {
        prom_series_t *s = &set->series[i];
        if (out && series_cmp(&set->series[out - 1], s) == 0) {
            prom_series_t *d = &set->series[out - 1];
            for (size_t j = 0; j < s->ns && !rc; j++) rc = sample_add(d, s->s[j].t, s->s[j].v);
            free(s->s);
            continue;
        }
        set->series[out++] = *s;
    }
    set->n = out;
    out = 0;
    for (size_t i = 0; i < set->n; i++) {
        prom_series_t *s = &set->series[i];
        if (s->ns > 1) qsort(s->s, s->ns, sizeof *s->s, sample_cmp);
        size_t k = 0;
        for (size_t j = 0; j < s->ns; j++) {
            if (k && s->s[k - 1].t == s->s[j].t) { /* a resent sample (at-least-once delivery): once */
                s->s[k - 1] = s->s[j];
                continue;
            }
            s->s[k++] = s->s[j];
        }
        s->ns = k;
        if (!k) {
            free(s->s);
            continue;
        }
        set->series[out++] = *s;
    }
    set->n = out;
    return rc;
}

static int prom_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                       unsigned flags, int64_t deadline_ms, void **out)
{
    prom_backend_t *b = backend;
    last_why[0] = '\0';
    /* no engine keeps data before the epoch, and the probe's end is "now" */
    if (mint < 0) mint = 0;
    if (maxt < mint) maxt = mint;
    prom_set_t *set = calloc(1, sizeof *set);
    if (!set || !(set->arena = strata_arena_new(0))) {
        free(set);
        return STRATA_ENOMEM;
    }
    const char *want = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].name, INGEST_TENANT_LABEL) == 0 && m[i].op == TSDB_MATCH_EQ) want = m[i].value;
    int rc = 0;
    for (size_t i = 0; !rc && i < b->ntenants; i++) {
        char tenant[16];
        snprintf(tenant, sizeof tenant, "%" PRId32, b->tenants[i]);
        if (want && strcmp(want, tenant)) continue;
        const char *tv = strata_arena_strdup(set->arena, tenant);
        if (!tv)
            rc = STRATA_ENOMEM;
        else
            rc = fetch(b, set, tv, m, n, mint, maxt, deadline_ms);
    }
    if (want && (flags & API_READ_ALL_TENANTS) == 0) {
        /* a tenant outside the list is still routed: the list only names
         * whom the registry rebuild walks */
        int listed = 0;
        for (size_t i = 0; i < b->ntenants; i++) {
            char tenant[16];
            snprintf(tenant, sizeof tenant, "%" PRId32, b->tenants[i]);
            listed |= !strcmp(want, tenant);
        }
        if (!listed && !rc) {
            const char *tv = strata_arena_strdup(set->arena, want);
            rc = tv ? fetch(b, set, tv, m, n, mint, maxt, deadline_ms) : STRATA_ENOMEM;
        }
    }
    if (rc) {
        set_free(set);
        return rc;
    }
    if ((rc = set_finish(set))) {
        set_free(set);
        return rc;
    }
    *out = set;
    return 0;
}

static int prom_next(void *p)
{
    prom_set_t *set = p;
    if (set->cur >= set->n) return 0;
    set->cur++;
    return 1;
}

static const tsdb_label_t *prom_labels(void *p, size_t *n)
{
    prom_set_t *set = p;
    prom_series_t *s = &set->series[set->cur - 1];
    *n = s->nl;
    return s->l;
}

static int prom_samples(void *p, const tsdb_sample_t **samples, size_t *n)
{
    prom_set_t *set = p;
    prom_series_t *s = &set->series[set->cur - 1];
    *samples = s->s;
    *n = s->ns;
    return 0;
}

static void prom_close(void *p)
{
    prom_backend_t *b = p;
    for (size_t i = 0; i < b->npool; i++) curl_easy_cleanup(b->pool[i]);
    pthread_mutex_destroy(&b->mu);
    free(b->url);
    free(b->tenant_header);
    free(b->bearer);
    free(b->ca_file);
    free(b->tenants);
    free(b);
    curl_global_cleanup();
}

/* Only /api/v1/export returns stale markers; a flavour not probed yet counts
 * as not (the refresh brings a VictoriaMetrics engine's markers back). */
static int prom_stale_markers(void *backend)
{
    prom_backend_t *b = backend;
    pthread_mutex_lock(&b->mu);
    int f = b->flavor;
    pthread_mutex_unlock(&b->mu);
    return f == FLAVOR_VM;
}

static const api_read_ops_t PROM_OPS = {
    .select = prom_select,
    .next = prom_next,
    .labels = prom_labels,
    .samples = prom_samples,
    .rollups = NULL,
    .free = set_free,
    .why = prom_why,
    .close = prom_close,
    .stale_markers = prom_stale_markers,
};

static char *dup_or_null(const char *s) { return s && *s ? strdup(s) : NULL; }

int api_read_source_prom(const api_read_remote_opts_t *o, api_read_source_t **out)
{
    *out = NULL;
    if (!o || !o->url || strncmp(o->url, "http", 4)) {
        strata_error("--remote-query-url must be an http:// or https:// URL", "url=%s",
                     o && o->url ? o->url : "");
        return STRATA_EINVAL;
    }
    int flavor = FLAVOR_AUTO;
    if (o->flavor && !strcmp(o->flavor, "prometheus"))
        flavor = FLAVOR_PROM;
    else if (o->flavor && !strcmp(o->flavor, "victoriametrics"))
        flavor = FLAVOR_VM;
    else if (o->flavor && strcmp(o->flavor, "auto"))
        return STRATA_EINVAL;
    /* once, before any handle: curl_easy_init would do it implicitly, and
     * that is not safe while other threads use libcurl (the write path) */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return STRATA_ENOMEM;
    prom_backend_t *b = calloc(1, sizeof *b);
    if (!b) {
        curl_global_cleanup();
        return STRATA_ENOMEM;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->flavor = flavor;
    b->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 300000;
    b->url = strdup(o->url);
    size_t ul = b->url ? strlen(b->url) : 0;
    while (ul && b->url[ul - 1] == '/') b->url[--ul] = '\0'; /* "/api/v1/..." is appended */
    b->tenant_header = dup_or_null(o->tenant_header);
    b->ca_file = dup_or_null(o->ca_file);
    b->ntenants = o->ntenants ? o->ntenants : 1;
    b->tenants = calloc(b->ntenants, sizeof *b->tenants);
    if (b->tenants && o->ntenants) memcpy(b->tenants, o->tenants, o->ntenants * sizeof *b->tenants);
    int rc = !b->url || !b->tenants || (o->tenant_header && *o->tenant_header && !b->tenant_header)
                 ? STRATA_ENOMEM
                 : 0;
    if (!rc && o->bearer_token_file && *o->bearer_token_file) {
        FILE *f = fopen(o->bearer_token_file, "rb");
        char tok[4096];
        size_t n = f ? fread(tok, 1, sizeof tok - 1, f) : 0;
        if (f) fclose(f);
        while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ')) n--;
        tok[n] = '\0';
        if (!f || !n) {
            strata_error("cannot read --remote-bearer-token-file", "file=%s", o->bearer_token_file);
            rc = STRATA_EINVAL;
        } else if (!(b->bearer = strdup(tok)))
            rc = STRATA_ENOMEM;
    }
    if (!rc) rc = api_read_source_new(&PROM_OPS, b, 0, out);
    if (rc) {
        prom_close(b);
        return rc;
    }
    return 0;
}
