/*
 * decode.c: remote-write body decoding and validation (no storage here).
 *
 * snappy block -> protobuf-c unpack (RW1 prometheus.WriteRequest or RW2
 * io.prometheus.write.v2.Request) through an arena-backed ProtobufCAllocator
 * -> one normalised, validated tsdb_series_input_t per good series.  Bad
 * series and samples are dropped and counted per reason rather than failing
 * the request, because remote-write senders do not retry a 400 and the good
 * part of a batch must not be lost with it.
 */
#include "ingest_internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "remote_write_v1.pb-c.h"
#include "remote_write_v2.pb-c.h"

struct ingest_batch {
    tsdb_series_input_t *series;
    size_t nseries, cap;
    size_t samples_in, histograms_in, exemplars_in;
    size_t rejected[INGEST_R_COUNT];
    char *first_error;
    ingest_metadata_t *metadata;
    size_t nmetadata;
    ingest_series_meta_t *meta; /* parallel to series */
    const ingest_limits_t *lim; /* what it was decoded with, for ingest_batch_labels */
    int64_t now_ms;
    const char *tenant;
};

static const char *const reason_names[INGEST_R_COUNT] = {
    [INGEST_R_MISSING_NAME] = "missing_metric_name",
    [INGEST_R_INVALID_LABEL_NAME] = "invalid_label_name",
    [INGEST_R_DUPLICATE_LABEL] = "duplicate_label_name",
    [INGEST_R_INVALID_LABEL_VALUE] = "invalid_label_value",
    [INGEST_R_TOO_MANY_LABELS] = "too_many_labels",
    [INGEST_R_LABEL_NAME_TOO_LONG] = "label_name_too_long",
    [INGEST_R_LABEL_VALUE_TOO_LONG] = "label_value_too_long",
    [INGEST_R_RESERVED_LABEL] = "reserved_label",
    [INGEST_R_INVALID_SYMBOL_REF] = "invalid_symbol_ref",
    [INGEST_R_FUTURE] = "too_far_in_future",
    [INGEST_R_RETENTION] = "too_old_for_retention",
    [INGEST_R_TOO_OLD] = "out_of_window",
    [INGEST_R_CONFLICT] = "duplicate_timestamp",
    [INGEST_R_HISTOGRAM] = "native_histogram_unsupported",
    [INGEST_R_EXEMPLAR] = "exemplar_unsupported",
    [INGEST_R_TENANT_LIMIT] = "tenant_series_limit",
};

const char *ingest_reason_name(enum ingest_reason r)
{
    return (unsigned)r < INGEST_R_COUNT ? reason_names[r] : "unknown";
}

int64_t ingest_oldest_allowed(const ingest_limits_t *lim, int64_t now_ms)
{
    if (!lim || lim->retention_ms <= 0 || now_ms <= lim->retention_ms) return 0;
    return now_ms - lim->retention_ms;
}

/* A retention as the flag would spell it: its largest exact unit ("15d"). */
static const char *retention_text(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = { { 86400000, "d" }, { 3600000, "h" }, { 60000, "m" }, { 1000, "s" }, { 1, "ms" } };
    for (size_t i = 0; i < sizeof units / sizeof *units; i++)
        if (ms % units[i].ms == 0) {
            snprintf(buf, cap, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
            break;
        }
    return buf;
}

void ingest_limits_init(ingest_limits_t *lim)
{
    lim->max_request_bytes = 32u << 20;
    lim->max_labels_per_series = 64;
    lim->max_label_name_length = 1024;
    lim->max_label_value_length = 4096;
    lim->max_series_per_tenant = 0;
    lim->retention_ms = 0;
}

/* ---- content type ------------------------------------------------------ */

/* Compares the token s[0..n) (trimmed) with want, case-insensitively. */
static int token_eq(const char *s, size_t n, const char *want)
{
    while (n && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    return strlen(want) == n && strncasecmp(s, want, n) == 0;
}

int ingest_parse_content_type(const char *ct, const char *ce, enum ingest_proto *out)
{
    if (ce && *ce && !token_eq(ce, strlen(ce), "snappy")) return STRATA_EMEDIA;
    *out = INGEST_PROTO_V1;
    if (!ct || !*ct) return 0;
    const char *semi = strchr(ct, ';');
    size_t mlen = semi ? (size_t)(semi - ct) : strlen(ct);
    if (!token_eq(ct, mlen, "application/x-protobuf")) return STRATA_EMEDIA;
    while (semi) {
        const char *p = semi + 1;
        semi = strchr(p, ';');
        size_t plen = semi ? (size_t)(semi - p) : strlen(p);
        const char *eq = memchr(p, '=', plen);
        if (!eq) continue;
        if (!token_eq(p, (size_t)(eq - p), "proto")) continue;
        size_t vlen = plen - (size_t)(eq + 1 - p);
        if (token_eq(eq + 1, vlen, "prometheus.WriteRequest"))
            *out = INGEST_PROTO_V1;
        else if (token_eq(eq + 1, vlen, "io.prometheus.write.v2.Request"))
            *out = INGEST_PROTO_V2;
        else
            return STRATA_EMEDIA;
    }
    return 0;
}

/* ---- snappy ------------------------------------------------------------ */

int ingest_snappy_decompress(strata_arena_t *arena, const void *in, size_t inlen, size_t max_out, char **out,
                             size_t *outlen)
{
    size_t n = 0;
    if (inlen == 0 || snappy_uncompressed_length(in, inlen, &n) != SNAPPY_OK) return STRATA_EBADSNAPPY;
    if (n > max_out) return STRATA_ETOOBIG;
    char *buf = strata_arena_alloc(arena, n ? n : 1);
    if (!buf) return STRATA_ETOOBIG;
    size_t got = n;
    if (snappy_uncompress(in, inlen, buf, &got) != SNAPPY_OK || got != n) return STRATA_EBADSNAPPY;
    *out = buf;
    *outlen = n;
    return 0;
}

/* ---- protobuf-c allocator ---------------------------------------------- */

static void *pb_alloc(void *data, size_t size) { return strata_arena_alloc(data, size ? size : 1); }
static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* the arena frees in bulk */
}

/* ---- validation helpers ------------------------------------------------- */

int ingest_valid_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *e = s + len;
    while (s < e) {
        /* label values are nearly always ASCII: 8 bytes at a time */
        if ((size_t)(e - s) >= 8) {
            uint64_t w;
            memcpy(&w, s, 8);
            if (!(w & UINT64_C(0x8080808080808080))) {
                s += 8;
                continue;
            }
        }
        unsigned c = *s;
        if (c < 0x80) {
            s++;
            continue;
        }
        size_t need;
        unsigned cp, min;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
            min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
            min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else
            return 0;
        if ((size_t)(e - s) <= need) return 0;
        for (size_t i = 1; i <= need; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = (cp << 6) | (s[i] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
        s += need + 1;
    }
    return 1;
}

/* [a-zA-Z_][a-zA-Z0-9_]*, by arithmetic: isalnum() goes through the locale
 * table per byte, which showed in profiles. */
static inline int name_start(uint8_t c) { return (uint8_t)((c | 0x20) - 'a') < 26 || c == '_'; }
static inline int name_char(uint8_t c) { return name_start(c) || (uint8_t)(c - '0') < 10; }

static int valid_label_name(const uint8_t *s, size_t n)
{
    if (n == 0 || !name_start(s[0])) return 0;
    for (size_t i = 1; i < n; i++)
        if (!name_char(s[i])) return 0;
    return 1;
}

int ingest_valid_label_name(const char *s, size_t len) { return valid_label_name((const uint8_t *)s, len); }

/* Valid UTF-8 without NUL (values become C strings), in one pass that
 * takes ASCII 8 bytes at a time; the rare rest goes to the exact checks. */
static int valid_value(const uint8_t *s, size_t n)
{
    const uint64_t hi = UINT64_C(0x8080808080808080), lo = UINT64_C(0x0101010101010101);
    size_t i = 0;
    uint64_t w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if ((w & hi) || ((w - lo) & ~w & hi)) break; /* a non-ASCII or a zero byte */
    }
    if (i < n && n >= 8 && n - i < 8) {
        /* the tail as the last 8 bytes, overlapping what was checked */
        memcpy(&w, s + n - 8, 8);
        if (!(w & hi) && !((w - lo) & ~w & hi)) return 1;
    }
    for (size_t k = i; k < n; k++) {
        if (!s[k]) return 0;
        if (s[k] & 0x80) return ingest_valid_utf8((const char *)s + i, n - i) && !memchr(s + i, 0, n - i);
    }
    return 1;
}

/* A raw (unvalidated) label: pointers into the unpacked message. */
typedef struct raw_label {
    const uint8_t *name, *value;
    size_t nlen, vlen;
} raw_label_t;

static inline int cmp_raw_label(const raw_label_t *x, const raw_label_t *y)
{
    /* names nearly always differ in their first byte: no memcmp call then */
    if (x->nlen && y->nlen && x->name[0] != y->name[0]) return x->name[0] < y->name[0] ? -1 : 1;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int c = n ? memcmp(x->name, y->name, n) : 0; /* an empty name may have a NULL pointer */
    if (c) return c;
    return (x->nlen > y->nlen) - (x->nlen < y->nlen);
}

/* Renders the series' labels as {a="b", ...} for messages, bounded. */
static void describe(char *buf, size_t cap, const raw_label_t *l, size_t n)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, cap - off, "{");
    for (size_t i = 0; i < n && off < cap; i++) {
        char name[80], value[80];
        size_t nl = l[i].nlen < sizeof name - 1 ? l[i].nlen : sizeof name - 1;
        size_t vl = l[i].vlen < sizeof value - 1 ? l[i].vlen : sizeof value - 1;
        for (size_t k = 0; k < nl; k++) name[k] = isprint(l[i].name[k]) ? (char)l[i].name[k] : '?';
        for (size_t k = 0; k < vl; k++) {
            unsigned char c = l[i].value[k];
            value[k] = (isprint(c) && c != '"' && c != '\\') ? (char)c : '?';
        }
        name[nl] = value[vl] = '\0';
        off += (size_t)snprintf(buf + off, cap - off, "%s%s=\"%s\"", i ? ", " : "", name, value);
    }
    if (off < cap) snprintf(buf + off, cap - off, "}");
    if (off >= cap && cap > 4) strcpy(buf + cap - 5, "...}");
}

typedef struct ctx {
    strata_arena_t *arena;
    ingest_batch_t *b;
    const ingest_limits_t *lim;
    int64_t now_ms;
    const char *tenant;
    int contig;             /* raw labels point into one wire buffer (the RW1 fast path) */
    ingest_lcache_t *cache; /* read-locked by the caller, or NULL */
    int32_t tenant_id;
    ingest_series_meta_t next; /* meta of the series add_series is given */
    ingest_lkey_t *keys;       /* the RW1 walk's label span keys, one per series (len 0: none) */
    const uint8_t **spans;     /* where each keyed span starts */
    size_t nkeys, capkeys;
    size_t nwalked; /* series the RW1 walk's first pass found */
    int trusted;    /* add_series: the labels are a cached (validated and stored) set */
} ctx_t;

/* Makes room for ncap series in the batch. */
static int batch_reserve(ctx_t *c, size_t ncap)
{
    ingest_batch_t *b = c->b;
    if (ncap <= b->cap) return 0;
    tsdb_series_input_t *ns_ = strata_arena_alloc(c->arena, ncap * sizeof *ns_);
    ingest_series_meta_t *nm = strata_arena_alloc(c->arena, ncap * sizeof *nm);
    if (!ns_ || !nm) return STRATA_ENOMEM;
    if (b->nseries) {
        memcpy(ns_, b->series, b->nseries * sizeof *ns_);
        memcpy(nm, b->meta, b->nseries * sizeof *nm);
    }
    b->series = ns_;
    b->meta = nm;
    b->cap = ncap;
    return 0;
}

/* Appends a series and its meta (c->next) to the batch. */
static int batch_push(ctx_t *c, tsdb_series_input_t in)
{
    ingest_batch_t *b = c->b;
    if (b->nseries == b->cap) {
        int rc = batch_reserve(c, b->cap ? b->cap * 2 : 64);
        if (rc) return rc;
    }
    b->meta[b->nseries] = c->next;
    b->series[b->nseries++] = in;
    return 0;
}

static void reject(ctx_t *c, enum ingest_reason r, size_t count, const raw_label_t *l, size_t nl,
                   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void reject(ctx_t *c, enum ingest_reason r, size_t count, const raw_label_t *l, size_t nl,
                   const char *fmt, ...)
{
    c->b->rejected[r] += count ? count : 1;
    if (c->b->first_error) return;
    char what[256], series[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    describe(series, sizeof series, l, nl);
    size_t cap = sizeof what + sizeof series + 16;
    c->b->first_error = strata_arena_alloc(c->arena, cap);
    if (c->b->first_error) snprintf(c->b->first_error, cap, "series %s: %s", series, what);
}

/* Printable copy of a label name for messages. */
static const char *shown(char *buf, size_t cap, const uint8_t *s, size_t n)
{
    size_t k = 0;
    for (; k < n && k + 1 < cap; k++) buf[k] = (isprint(s[k]) && s[k] != '"') ? (char)s[k] : '?';
    buf[k] = '\0';
    return buf;
}

/* Validates one series given as raw labels plus its samples and appends the
 * normalised result to the batch.  Returns STRATA_ENOMEM only. */
static int add_series(ctx_t *c, raw_label_t *raw, size_t nraw, const tsdb_sample_t *samples, size_t nsamples)
{
    const ingest_limits_t *lim = c->lim;
    char nb[80];
    /* Prometheus treats an empty value as an absent label. */
    size_t n = 0;
    for (size_t i = 0; i < nraw; i++)
        if (raw[i].vlen) raw[n++] = raw[i];
    /* Senders almost always send sorted labels: check before sorting, and
     * sort the few that are not by insertion (label sets are small).  A
     * strictly ascending set has no duplicate names either. */
    int strict = 1;
    for (size_t i = 1; i < n; i++) {
        int cmp = cmp_raw_label(&raw[i - 1], &raw[i]);
        if (cmp < 0) continue;
        strict = 0;
        if (cmp == 0) continue;
        raw_label_t x = raw[i];
        size_t j = i;
        while (j > 0 && cmp_raw_label(&raw[j - 1], &x) > 0) {
            raw[j] = raw[j - 1];
            j--;
        }
        raw[j] = x;
    }
    /* A label set from the cache was validated, with the same limits, when it
     * was first stored: it would pass every check below again. */
    int has_name = c->trusted;
    for (size_t i = 0; i < n && !c->trusted; i++) {
        const raw_label_t *l = &raw[i];
        if (lim->max_label_name_length && l->nlen > lim->max_label_name_length) {
            reject(c, INGEST_R_LABEL_NAME_TOO_LONG, nsamples, raw, n,
                   "label name \"%.40s...\" is %zu bytes, longer than the limit of %zu",
                   shown(nb, sizeof nb, l->name, l->nlen), l->nlen, lim->max_label_name_length);
            return 0;
        }
        if (!valid_label_name(l->name, l->nlen)) {
            reject(c, INGEST_R_INVALID_LABEL_NAME, nsamples, raw, n, "invalid label name \"%s\"",
                   shown(nb, sizeof nb, l->name, l->nlen));
            return 0;
        }
        if (!strict && i > 0 && cmp_raw_label(&raw[i - 1], l) == 0) {
            reject(c, INGEST_R_DUPLICATE_LABEL, nsamples, raw, n, "duplicate label name \"%s\"",
                   shown(nb, sizeof nb, l->name, l->nlen));
            return 0;
        }
        if (l->nlen == strlen(INGEST_TENANT_LABEL) && memcmp(l->name, INGEST_TENANT_LABEL, l->nlen) == 0) {
            reject(c, INGEST_R_RESERVED_LABEL, nsamples, raw, n,
                   "label name \"" INGEST_TENANT_LABEL "\" is reserved");
            return 0;
        }
        if (!valid_value(l->value, l->vlen)) {
            reject(c, INGEST_R_INVALID_LABEL_VALUE, nsamples, raw, n, "label \"%s\" value is not valid UTF-8",
                   shown(nb, sizeof nb, l->name, l->nlen));
            return 0;
        }
        if (lim->max_label_value_length && l->vlen > lim->max_label_value_length) {
            reject(c, INGEST_R_LABEL_VALUE_TOO_LONG, nsamples, raw, n,
                   "label \"%s\" value is %zu bytes, longer than the limit of %zu",
                   shown(nb, sizeof nb, l->name, l->nlen), l->vlen, lim->max_label_value_length);
            return 0;
        }
        if (l->nlen == 8 && memcmp(l->name, "__name__", 8) == 0) has_name = 1;
    }
    if (!has_name) {
        reject(c, INGEST_R_MISSING_NAME, nsamples, raw, n, "no metric name (__name__ label)");
        return 0;
    }
    /* the store's own limit applies too (TSDB_MAX_LABELS, the tenant label included) */
    size_t max_labels = lim->max_labels_per_series && lim->max_labels_per_series < TSDB_MAX_LABELS - 1
                            ? lim->max_labels_per_series
                            : TSDB_MAX_LABELS - 1;
    if (n > max_labels && !c->trusted) {
        reject(c, INGEST_R_TOO_MANY_LABELS, nsamples, raw, n, "%zu labels, more than the limit of %zu", n,
               max_labels);
        return 0;
    }
    if (nsamples == 0) return 0;

    /* Samples: drop those too far in the future or older than the retention
     * window (never before the Unix epoch), keep the rest.  A new series may
     * start anywhere inside the retention (backfill), not at 1 ms or at
     * INT64_MIN, which the store would have to keep in a block of its own. */
    tsdb_sample_t *s = strata_arena_alloc(c->arena, nsamples * sizeof *s);
    if (!s) return STRATA_ENOMEM;
    size_t ns = 0, future = 0, old = 0;
    int64_t first_future = 0, first_old = 0;
    const int64_t oldest = ingest_oldest_allowed(lim, c->now_ms);
    for (size_t i = 0; i < nsamples; i++) {
        if (samples[i].t > c->now_ms + INGEST_MAX_FUTURE_MS) {
            if (!future++) first_future = samples[i].t;
            continue;
        }
        if (samples[i].t < oldest) {
            if (!old++) first_old = samples[i].t;
            continue;
        }
        s[ns++] = samples[i];
    }
    if (future)
        reject(c, INGEST_R_FUTURE, future, raw, n,
               "sample timestamp %" PRId64 " is more than 10m ahead of the server clock", first_future);
    if (old && oldest == 0)
        reject(c, INGEST_R_RETENTION, old, raw, n, "sample timestamp %" PRId64 " is before the Unix epoch",
               first_old);
    else if (old) {
        char d[32];
        reject(c, INGEST_R_RETENTION, old, raw, n,
               "sample timestamp %" PRId64 " is older than the retention window (--retention %s)", first_old,
               retention_text(lim->retention_ms, d, sizeof d));
    }
    if (ns == 0) return 0;

    size_t nl = n + (c->tenant ? 1 : 0);
    tsdb_label_t *labels = strata_arena_alloc(c->arena, nl * sizeof *labels);
    if (!labels) return STRATA_ENOMEM;
    /* the strings, NUL-terminated, in one block */
    char *str;
    const uint8_t *lo = NULL;
    if (c->contig) {
        /* One copy of the span of the wire holding them: the byte after each
         * name or value there is the next field's tag, never part of another
         * string, so it can take the NUL. */
        const uint8_t *hi = raw[0].name;
        lo = raw[0].name;
        for (size_t i = 0; i < n; i++) {
            if (raw[i].name < lo) lo = raw[i].name;
            if (raw[i].value < lo) lo = raw[i].value;
            if (raw[i].name + raw[i].nlen > hi) hi = raw[i].name + raw[i].nlen;
            if (raw[i].value + raw[i].vlen > hi) hi = raw[i].value + raw[i].vlen;
        }
        if (!(str = strata_arena_alloc(c->arena, (size_t)(hi - lo) + 1))) return STRATA_ENOMEM;
        memcpy(str, lo, (size_t)(hi - lo));
    } else {
        size_t bytes = 0;
        for (size_t i = 0; i < n; i++) bytes += raw[i].nlen + raw[i].vlen + 2;
        if (!(str = strata_arena_alloc(c->arena, bytes ? bytes : 1))) return STRATA_ENOMEM;
    }
    /* the tenant label goes to its sorted place like any other */
    static const size_t tl = sizeof INGEST_TENANT_LABEL - 1;
    size_t k = 0;
    int stamped = c->tenant == NULL;
    for (size_t i = 0; i < n; i++) {
        if (!stamped) {
            size_t m = raw[i].nlen < tl ? raw[i].nlen : tl;
            int cmp = memcmp(raw[i].name, INGEST_TENANT_LABEL, m);
            if (cmp > 0 || (cmp == 0 && raw[i].nlen > tl)) {
                labels[k++] = (tsdb_label_t){ INGEST_TENANT_LABEL, c->tenant };
                stamped = 1;
            }
        }
        if (c->contig) {
            char *nm = str + (raw[i].name - lo), *vl = str + (raw[i].value - lo);
            nm[raw[i].nlen] = '\0';
            vl[raw[i].vlen] = '\0';
            labels[k++] = (tsdb_label_t){ nm, vl };
            continue;
        }
        labels[k].name = str;
        memcpy(str, raw[i].name, raw[i].nlen);
        str += raw[i].nlen;
        *str++ = '\0';
        labels[k].value = str;
        memcpy(str, raw[i].value, raw[i].vlen);
        str += raw[i].vlen;
        *str++ = '\0';
        k++;
    }
    if (!stamped) labels[k++] = (tsdb_label_t){ INGEST_TENANT_LABEL, c->tenant };
    return batch_push(c, (tsdb_series_input_t){ labels, nl, s, ns });
}

/* ---- RW1 / RW2 ------------------------------------------------------------ */

/* A metadata text: valid UTF-8, no NUL, within the label value limit; NULL
 * when not (or out of memory: *nomem). */
static const char *meta_text(ctx_t *c, const ProtobufCBinaryData *d, int *nomem)
{
    if (c->lim->max_label_value_length && d->len > c->lim->max_label_value_length) return NULL;
    /* an absent bytes field has no data pointer at all */
    const char *p = d->len ? (const char *)d->data : "";
    if (memchr(p, 0, d->len) || !ingest_valid_utf8(p, d->len)) return NULL;
    char *s = strata_arena_strndup(c->arena, p, d->len);
    if (!s) *nomem = 1;
    return s;
}

/* Prometheus' textparse type names, by the (same) enum of RW1 and RW2. */
static const char *const meta_types[] = { "unknown",        "counter", "gauge", "histogram",
                                          "gaugehistogram", "summary", "info",  "stateset" };

static const char *meta_type(int t)
{
    return (unsigned)t < sizeof meta_types / sizeof meta_types[0] ? meta_types[t] : meta_types[0];
}

/* RW2: a series' Metadata, keyed by its metric name (RW2 has no family
 * name); one entry per name and request. */
static int decode_v2_metadata(ctx_t *c, const Io__Prometheus__Write__V2__Request *req,
                              const Io__Prometheus__Write__V2__TimeSeries *ts, const raw_label_t *raw,
                              size_t nl)
{
    const Io__Prometheus__Write__V2__Metadata *md = ts->metadata;
    if (!md || (!md->type && !md->help_ref && !md->unit_ref)) return 0;
    if (md->help_ref >= req->n_symbols || md->unit_ref >= req->n_symbols) return 0;
    const raw_label_t *name = NULL;
    for (size_t k = 0; k < nl && !name; k++)
        if (raw[k].nlen == 8 && memcmp(raw[k].name, "__name__", 8) == 0) name = &raw[k];
    if (!name || !name->vlen) return 0;
    ingest_batch_t *b = c->b;
    if (b->nmetadata && strlen(b->metadata[b->nmetadata - 1].family) == name->vlen &&
        memcmp(b->metadata[b->nmetadata - 1].family, name->value, name->vlen) == 0)
        return 0;
    if (!b->metadata) {
        b->metadata = strata_arena_alloc(c->arena, req->n_timeseries * sizeof *b->metadata);
        if (!b->metadata) return STRATA_ENOMEM;
    }
    int nomem = 0;
    ProtobufCBinaryData fam = { name->vlen, (uint8_t *)(uintptr_t)name->value };
    const char *f = meta_text(c, &fam, &nomem);
    const char *help = meta_text(c, &req->symbols[md->help_ref], &nomem);
    const char *unit = meta_text(c, &req->symbols[md->unit_ref], &nomem);
    if (nomem) return STRATA_ENOMEM;
    if (f && help && unit)
        b->metadata[b->nmetadata++] = (ingest_metadata_t){ f, meta_type(md->type), help, unit };
    return 0;
}

/* RW1's MetricMetadata into the batch. */
static int decode_v1_metadata(ctx_t *c, const Prometheus__WriteRequest *req)
{
    if (!req->n_metadata) return 0;
    ingest_metadata_t *m = strata_arena_alloc(c->arena, req->n_metadata * sizeof *m);
    if (!m) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < req->n_metadata; i++) {
        const Prometheus__MetricMetadata *md = req->metadata[i];
        int nomem = 0;
        const char *fam = md->metric_family_name.len ? meta_text(c, &md->metric_family_name, &nomem) : NULL;
        const char *help = meta_text(c, &md->help, &nomem);
        const char *unit = meta_text(c, &md->unit, &nomem);
        if (nomem) return STRATA_ENOMEM;
        if (!fam || !help || !unit) continue;
        m[k++] = (ingest_metadata_t){ fam, meta_type(md->type), help, unit };
    }
    c->b->metadata = m;
    c->b->nmetadata = k;
    return 0;
}

static int decode_v1(ctx_t *c, const Prometheus__WriteRequest *req)
{
    int mrc = decode_v1_metadata(c, req);
    if (mrc) return mrc;
    for (size_t i = 0; i < req->n_timeseries; i++) {
        const Prometheus__TimeSeries *ts = req->timeseries[i];
        c->b->samples_in += ts->n_samples;
        c->b->histograms_in += ts->n_histograms;
        c->b->exemplars_in += ts->n_exemplars;
        raw_label_t *raw = strata_arena_alloc(c->arena, (ts->n_labels ? ts->n_labels : 1) * sizeof *raw);
        tsdb_sample_t *s = strata_arena_alloc(c->arena, (ts->n_samples ? ts->n_samples : 1) * sizeof *s);
        if (!raw || !s) return STRATA_ENOMEM;
        for (size_t k = 0; k < ts->n_labels; k++)
            raw[k] = (raw_label_t){ ts->labels[k]->name.data, ts->labels[k]->value.data,
                                    ts->labels[k]->name.len, ts->labels[k]->value.len };
        for (size_t k = 0; k < ts->n_samples; k++)
            s[k] = (tsdb_sample_t){ ts->samples[k]->timestamp, ts->samples[k]->value };
        if (ts->n_histograms)
            reject(c, INGEST_R_HISTOGRAM, ts->n_histograms, raw, ts->n_labels,
                   "native histograms are not supported yet (%zu dropped)", ts->n_histograms);
        if (ts->n_exemplars)
            reject(c, INGEST_R_EXEMPLAR, ts->n_exemplars, raw, ts->n_labels,
                   "exemplars are not supported yet (%zu dropped)", ts->n_exemplars);
        int rc = add_series(c, raw, ts->n_labels, s, ts->n_samples);
        if (rc) return rc;
    }
    return 0;
}

static int decode_v2(ctx_t *c, const Io__Prometheus__Write__V2__Request *req)
{
    int symbols_ok = req->n_symbols > 0 && req->symbols[0].len == 0;
    for (size_t i = 0; i < req->n_timeseries; i++) {
        const Io__Prometheus__Write__V2__TimeSeries *ts = req->timeseries[i];
        c->b->samples_in += ts->n_samples;
        c->b->histograms_in += ts->n_histograms;
        c->b->exemplars_in += ts->n_exemplars;
        size_t nl = ts->n_labels_refs / 2;
        raw_label_t *raw = strata_arena_alloc(c->arena, (nl ? nl : 1) * sizeof *raw);
        tsdb_sample_t *s = strata_arena_alloc(c->arena, (ts->n_samples ? ts->n_samples : 1) * sizeof *s);
        if (!raw || !s) return STRATA_ENOMEM;
        int refs_ok = symbols_ok && ts->n_labels_refs % 2 == 0;
        for (size_t k = 0; refs_ok && k < ts->n_labels_refs; k++)
            if (ts->labels_refs[k] >= req->n_symbols) refs_ok = 0;
        if (!refs_ok) {
            size_t bad = ts->n_samples + ts->n_histograms;
            reject(c, INGEST_R_INVALID_SYMBOL_REF, bad, NULL, 0,
                   symbols_ok ? "labels_refs has an odd length or points past the symbols table"
                              : "symbols table is empty or symbols[0] is not \"\"");
            continue;
        }
        for (size_t k = 0; k < nl; k++) {
            const ProtobufCBinaryData *nm = &req->symbols[ts->labels_refs[2 * k]];
            const ProtobufCBinaryData *vl = &req->symbols[ts->labels_refs[2 * k + 1]];
            raw[k] = (raw_label_t){ nm->data, vl->data, nm->len, vl->len };
        }
        for (size_t k = 0; k < ts->n_samples; k++)
            s[k] = (tsdb_sample_t){ ts->samples[k]->timestamp, ts->samples[k]->value };
        if (ts->n_histograms)
            reject(c, INGEST_R_HISTOGRAM, ts->n_histograms, raw, nl,
                   "native histograms are not supported yet (%zu dropped)", ts->n_histograms);
        if (ts->n_exemplars)
            reject(c, INGEST_R_EXEMPLAR, ts->n_exemplars, raw, nl,
                   "exemplars are not supported yet (%zu dropped)", ts->n_exemplars);
        int rc = decode_v2_metadata(c, req, ts, raw, nl);
        if (rc) return rc;
        rc = add_series(c, raw, nl, s, ts->n_samples);
        if (rc) return rc;
    }
    return 0;
}

/* ---- RW1 fast path ---------------------------------------------------------
 * protobuf-c builds a heap object per TimeSeries, Label and Sample and
 * copies every name and value; Prometheus-shaped requests are little more
 * than labels, so that was the largest single cost of ingest.  A request
 * made only of the fields senders use (timeseries, labels, samples), each
 * with its canonical one-byte tag, is read here straight from the buffer.
 * Anything else (metadata, exemplars, histograms, unknown fields,
 * non-canonical tags, malformed data) is left to protobuf-c as before, so
 * what is accepted, refused or stored does not change; the limits below
 * mirror protobuf-c's (5-byte lengths up to INT_MAX, 10-byte varints). */

typedef struct rd {
    const uint8_t *p, *e;
} rd_t;

/* 0, or -1: not for the fast path. */
static inline int rd_varint(rd_t *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10 && r->p < r->e; i++) {
        uint8_t b = *r->p++;
        if (i == 9 && b > 1) return -1; /* bits past 64: protobuf-c's business */
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static inline int rd_len(rd_t *r, rd_t *sub)
{
    uint64_t n = 0;
    unsigned i = 0;
    if (r->p < r->e && *r->p < 0x80) { /* most lengths fit one byte */
        n = *r->p++;
        if (n > (uint64_t)(r->e - r->p)) return -1;
        sub->p = r->p;
        sub->e = r->p + n;
        r->p += n;
        return 0;
    }
    for (;; i++) {
        if (i == 5 || r->p == r->e) return -1;
        uint8_t b = *r->p++;
        n |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) break;
    }
    if (n > 0x7fffffff || n > (uint64_t)(r->e - r->p)) return -1;
    sub->p = r->p;
    sub->e = r->p + n;
    r->p += n;
    return 0;
}

/* 1 when add_series would keep every sample (none too far in the future,
 * none older than the retention). */
static int times_ok(const ctx_t *c, const tsdb_sample_t *smp, size_t ns)
{
    const int64_t oldest = ingest_oldest_allowed(c->lim, c->now_ms),
                  newest = c->now_ms + INGEST_MAX_FUTURE_MS;
    for (size_t i = 0; i < ns; i++)
        if (smp[i].t > newest || smp[i].t < oldest) return 0;
    return 1;
}

/* One Label message's body (m) into *l; -1 on a field other than name (1) or
 * value (2), or a bad length. */
static int label_read(rd_t m, raw_label_t *l)
{
    *l = (raw_label_t){ NULL, NULL, 0, 0 };
    while (m.p < m.e) {
        uint8_t t = *m.p++;
        rd_t f;
        if ((t != 0x0a && t != 0x12) || rd_len(&m, &f)) return -1;
        if (t == 0x0a) {
            l->name = f.p;
            l->nlen = (size_t)(f.e - f.p);
        } else {
            l->value = f.p;
            l->vlen = (size_t)(f.e - f.p);
        }
    }
    return 0;
}

/* The labels in a span of whole Label messages (one series' span, already
 * checked by v1_walk's first pass) into raw (NULL: only counted); how many. */
static size_t span_labels(const uint8_t *p, size_t len, raw_label_t *raw)
{
    rd_t r = { p, p + len };
    size_t nl = 0;
    while (r.p < r.e) {
        rd_t lm;
        r.p++;
        if (rd_len(&r, &lm)) break;
        raw_label_t l;
        if (label_read(lm, &l)) break;
        if (raw) raw[nl] = l;
        nl++;
    }
    return nl;
}

/* Walks a RW1 request.  fill = 0: checks that it has the fast-path shape and
 * returns the most labels and samples of one series in *maxl, *maxs (-1 when
 * it has not).  fill = 1: decodes it (already checked) into the batch. */
static int v1_walk(ctx_t *c, const uint8_t *buf, size_t len, int fill, size_t *maxl, size_t *maxs,
                   raw_label_t *raw, tsdb_sample_t *smp)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    if (!fill) return -1; /* doubles are read as little-endian words */
#endif
    rd_t r = { buf, buf + len };
    size_t nts = 0;
    while (r.p < r.e) {
        rd_t ts;
        if (*r.p++ != 0x0a || rd_len(&r, &ts)) return -1;
        size_t nl = 0, ns = 0;
        /* the span of the wire holding the labels, the label cache's key */
        const uint8_t *lab_lo = NULL, *lab_hi = NULL;
        int lab_split = 0, sample_seen = 0;
        /* Fill pass: a series the cache knows and the observer does not want
         * needs only its samples, so its label span is stepped over unread
         * (it was checked by the first pass; read later if it is needed). */
        uint32_t hit_ref = 0;
        unsigned hit_fl = 0;
        const uint8_t *skip = NULL;
        if (fill && c->cache && c->keys && c->keys[nts].len) {
            hit_ref = ingest_lcache_get(c->cache, c->tenant_id, c->keys[nts], &hit_fl);
            if (hit_ref && !(hit_fl & INGEST_LC_OBSERVE)) skip = c->spans[nts];
        }
        int skipped = 0;
        while (ts.p < ts.e) {
            if (ts.p == skip) {
                lab_lo = skip;
                lab_hi = ts.p = skip + c->keys[nts].len;
                skipped = 1;
                continue;
            }
            const uint8_t *field = ts.p;
            uint8_t tag = *ts.p++;
            rd_t m;
            if ((tag != 0x0a && tag != 0x12) || rd_len(&ts, &m)) return -1;
            if (tag == 0x0a) {
                if (!lab_lo)
                    lab_lo = field;
                else if (sample_seen)
                    lab_split = 1;
                lab_hi = m.e;
                raw_label_t l;
                if (label_read(m, &l)) return -1;
                if (fill) raw[nl] = l;
                nl++;
            } else {
                sample_seen = lab_lo != NULL;
                tsdb_sample_t x = { 0, 0.0 };
                while (m.p < m.e) {
                    uint8_t t = *m.p++;
                    if (t == 0x09) {
                        if (m.e - m.p < 8) return -1;
                        memcpy(&x.v, m.p, 8);
                        m.p += 8;
                    } else if (t == 0x10) {
                        uint64_t v;
                        if (rd_varint(&m, &v)) return -1;
                        x.t = (int64_t)v;
                    } else {
                        return -1;
                    }
                }
                if (fill) smp[ns] = x;
                ns++;
            }
        }
        if (fill) {
            c->b->samples_in += ns;
            c->next = (ingest_series_meta_t){ { 0, 0, 0 }, NULL, 0, INGEST_OBSERVE_UNKNOWN };
            if (c->cache && c->keys && c->keys[nts].len) {
                c->next.key = c->keys[nts];
                c->next.span = lab_lo;
                if (hit_ref) {
                    /* seen, validated and stored before: only its samples are new */
                    c->next.ref = hit_ref;
                    c->next.observe = (uint8_t)(hit_fl & INGEST_LC_OBSERVE);
                    if (!c->next.observe && ns && times_ok(c, smp, ns)) {
                        tsdb_sample_t *s = strata_arena_alloc(c->arena, ns * sizeof *s);
                        if (!s) return STRATA_ENOMEM;
                        memcpy(s, smp, ns * sizeof *s);
                        int rc = batch_push(c, (tsdb_series_input_t){ NULL, 0, s, ns });
                        if (rc) return rc;
                        nts++;
                        continue;
                    }
                }
            }
            /* labels stepped over but wanted after all (no sample to keep
             * as it is): read from the span now, as the walk would have */
            if (skipped) nl = span_labels(lab_lo, (size_t)(lab_hi - lab_lo), raw);
            /* an observed series is handed over with its labels: built here,
             * without the checks when it came from the cache */
            c->trusted = c->next.ref != 0;
            int rc = add_series(c, raw, nl, smp, ns);
            c->trusted = 0;
            if (rc) return rc;
        } else {
            if (nl > *maxl) *maxl = nl;
            if (ns > *maxs) *maxs = ns;
            if (c->cache) {
                /* the keys now, with their slots prefetched, so the lookups
                 * in the fill pass find them in cache */
                if (c->nkeys == c->capkeys) {
                    size_t ncap = c->capkeys ? c->capkeys * 2 : 256;
                    ingest_lkey_t *nk = strata_arena_alloc(c->arena, ncap * sizeof *nk);
                    const uint8_t **nsp = strata_arena_alloc(c->arena, ncap * sizeof *nsp);
                    if (!nk || !nsp) return -1;
                    if (c->nkeys) {
                        memcpy(nk, c->keys, c->nkeys * sizeof *nk);
                        memcpy(nsp, c->spans, c->nkeys * sizeof *nsp);
                    }
                    c->keys = nk;
                    c->spans = nsp;
                    c->capkeys = ncap;
                }
                ingest_lkey_t k = { 0, 0, 0 };
                if (lab_lo && !lab_split) {
                    k = ingest_lcache_key(c->cache, lab_lo, (size_t)(lab_hi - lab_lo));
                    ingest_lcache_prefetch(c->cache, k);
                }
                c->spans[c->nkeys] = lab_lo;
                c->keys[c->nkeys++] = k;
            }
        }
        nts++;
    }
    if (!fill) c->nwalked = nts;
    return 0;
}

/* 1 when the request was decoded here, 0 when it is protobuf-c's, or
 * STRATA_ENOMEM. */
/* Top-level timeseries fields of an RW1 message (stops at the first other
 * field or bad length: the walk judges the message). */
static size_t v1_count_series(const uint8_t *buf, size_t len)
{
    rd_t r = { buf, buf + len }, ts;
    size_t n = 0;
    while (r.p < r.e && *r.p == 0x0a) {
        r.p++;
        if (rd_len(&r, &ts)) break;
        n++;
    }
    return n;
}

static int decode_v1_fast(ctx_t *c, const uint8_t *buf, size_t len)
{
    size_t maxl = 0, maxs = 0;
    /* The label keys and the batch at their final size at once: grown by
     * doubling, every smaller copy stayed in the request arena (about as much
     * again as the final one). */
    size_t n = v1_count_series(buf, len);
    if (c->cache && n) {
        c->keys = strata_arena_alloc(c->arena, n * sizeof *c->keys);
        c->spans = strata_arena_alloc(c->arena, n * sizeof *c->spans);
        if (!c->keys || !c->spans) return STRATA_ENOMEM;
        c->capkeys = n;
    }
    if (v1_walk(c, buf, len, 0, &maxl, &maxs, NULL, NULL)) return 0;
    raw_label_t *raw = strata_arena_alloc(c->arena, (maxl ? maxl : 1) * sizeof *raw);
    tsdb_sample_t *smp = strata_arena_alloc(c->arena, (maxs ? maxs : 1) * sizeof *smp);
    if (!raw || !smp) return STRATA_ENOMEM;
    int rc = batch_reserve(c, c->nwalked ? c->nwalked : 1);
    if (rc) return rc;
    c->contig = 1;
    rc = v1_walk(c, buf, len, 1, &maxl, &maxs, raw, smp);
    c->contig = 0;
    return rc ? rc : 1;
}

int ingest_decode(strata_arena_t *arena, enum ingest_proto proto, const void *buf, size_t len,
                  const ingest_limits_t *lim, int64_t now_ms, const char *tenant, ingest_batch_t **out)
{
    return ingest_decode_cached(arena, proto, buf, len, lim, now_ms, tenant, NULL, 0, out);
}

int ingest_decode_cached(strata_arena_t *arena, enum ingest_proto proto, const void *buf, size_t len,
                         const ingest_limits_t *lim, int64_t now_ms, const char *tenant,
                         ingest_lcache_t *cache, int32_t tenant_id, ingest_batch_t **out)
{
    ProtobufCAllocator alloc = { pb_alloc, pb_free, arena };
    ingest_batch_t *b = strata_arena_calloc(arena, 1, sizeof *b);
    if (!b) return STRATA_ENOMEM;
    b->lim = lim;
    b->now_ms = now_ms;
    b->tenant = tenant;
    ctx_t c = { .arena = arena,
                .b = b,
                .lim = lim,
                .now_ms = now_ms,
                .tenant = tenant,
                .cache = cache,
                .tenant_id = tenant_id,
                .next = { { 0, 0, 0 }, NULL, 0, INGEST_OBSERVE_UNKNOWN } };
    int rc;
    if (proto == INGEST_PROTO_V2) {
        Io__Prometheus__Write__V2__Request *req = io__prometheus__write__v2__request__unpack(&alloc, len,
                                                                                             buf);
        if (!req) goto unpack_failed;
        rc = decode_v2(&c, req);
    } else if ((rc = decode_v1_fast(&c, buf, len)) != 0) {
        if (rc == 1) rc = 0;
    } else {
        Prometheus__WriteRequest *req = prometheus__write_request__unpack(&alloc, len, buf);
        if (!req) goto unpack_failed;
        rc = decode_v1(&c, req);
    }
    if (rc) return rc == STRATA_ENOMEM ? STRATA_ETOOBIG : rc;
    *out = b;
    return 0;

unpack_failed:
    /* protobuf-c says only "failed"; a probe allocation tells a capped arena
     * (a message that expands too much in memory) from a malformed one. */
    if (!strata_arena_alloc(arena, 4096)) return STRATA_ETOOBIG;
    return STRATA_EBADPROTO;
}

const tsdb_series_input_t *ingest_batch_series(const ingest_batch_t *b, size_t *n)
{
    *n = b->nseries;
    return b->series;
}
size_t ingest_batch_samples_in(const ingest_batch_t *b) { return b->samples_in; }
size_t ingest_batch_histograms_in(const ingest_batch_t *b) { return b->histograms_in; }
size_t ingest_batch_exemplars_in(const ingest_batch_t *b) { return b->exemplars_in; }
size_t ingest_batch_rejected(const ingest_batch_t *b, enum ingest_reason r)
{
    return (unsigned)r < INGEST_R_COUNT ? b->rejected[r] : 0;
}
const char *ingest_batch_first_error(const ingest_batch_t *b) { return b->first_error; }
const ingest_metadata_t *ingest_batch_metadata(const ingest_batch_t *b, size_t *n)
{
    *n = b->nmetadata;
    return b->metadata;
}

const ingest_series_meta_t *ingest_batch_meta(const ingest_batch_t *b) { return b->meta; }

int ingest_batch_labels(const ingest_batch_t *b, strata_arena_t *arena, size_t i, const tsdb_label_t **labels,
                        size_t *n)
{
    const tsdb_series_input_t *in = &b->series[i];
    const ingest_series_meta_t *m = &b->meta[i];
    if (in->labels || !m->span) {
        *labels = in->labels;
        *n = in->nlabels;
        return 0;
    }
    /* the span is whole Label messages, already checked by v1_walk */
    size_t nl = span_labels(m->span, m->key.len, NULL);
    raw_label_t *raw = strata_arena_alloc(arena, (nl ? nl : 1) * sizeof *raw);
    if (!raw) return STRATA_ENOMEM;
    span_labels(m->span, m->key.len, raw);
    ingest_batch_t tmp;
    memset(&tmp, 0, sizeof tmp);
    ctx_t c = { .arena = arena,
                .b = &tmp,
                .lim = b->lim,
                .now_ms = b->now_ms,
                .tenant = b->tenant,
                .contig = 1,
                .next = { { 0, 0, 0 }, NULL, 0, INGEST_OBSERVE_UNKNOWN } };
    tsdb_sample_t one = { b->now_ms, 0.0 };
    int rc = add_series(&c, raw, nl, &one, 1);
    if (rc) return rc;
    if (tmp.nseries != 1) return STRATA_EINVAL; /* cannot be: it was stored */
    *labels = tmp.series[0].labels;
    *n = tmp.series[0].nlabels;
    return 0;
}
