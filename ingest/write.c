/*
 * write.c: the remote-write receiver over a tsdb: decode, per-tenant series
 * limit, append, and the per-request outcome.
 *
 * The series limit needs to know whether a series is new before the store
 * creates it, so the receiver keeps, per tenant, a set of 64-bit hashes of
 * the label sets it has seen (8 bytes a series, filled from the db at start).
 * It is only kept when a limit is configured.  A hash collision could let one
 * series slip past the limit; that is the price of not asking the index.
 */
#include "ingest_internal.h"
#include "metadata.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_log.h"

typedef struct tenant_set {
    int32_t tenant;
    uint64_t *slots; /* open addressing, 0 = empty */
    size_t cap, count;
} tenant_set_t;

struct ingest {
    tsdb_t *db;
    ingest_limits_t lim;
    pthread_mutex_t mu;
    tenant_set_t *tenants;
    size_t ntenants, tcap;
    ingest_observer_fn observer;
    ingest_observer_filter_fn wants;
    void *observer_ctx;
    ingest_observer_ref_fn observer_ref; /* when set, called instead of observer */
    ingest_lcache_t *lcache;             /* NULL when off */
    ingest_meta_store_t *meta;           /* remote-write metadata (metadata.c) */
};

void ingest_set_observer(ingest_t *ing, ingest_observer_fn fn, void *ctx)
{
    ing->observer = fn;
    ing->observer_ctx = ctx;
}

void ingest_set_observer_ref(ingest_t *ing, ingest_observer_ref_fn fn, void *ctx)
{
    ing->observer_ref = fn;
    ing->observer_ctx = ctx;
}

void ingest_set_observer_filter(ingest_t *ing, ingest_observer_filter_fn fn) { ing->wants = fn; }

size_t ingest_label_cache_size(ingest_t *ing)
{
    return ing && ing->lcache ? ingest_lcache_count(ing->lcache) : 0;
}

static uint64_t hash_labels(const tsdb_label_t *l, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) continue;
        for (const char *s = l[i].name;; s++) {
            h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
            if (!*s) break;
        }
        for (const char *s = l[i].value;; s++) {
            h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
            if (!*s) break;
        }
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    return h ? h : 1;
}

static tenant_set_t *tenant_get(ingest_t *ing, int32_t tenant)
{
    for (size_t i = 0; i < ing->ntenants; i++)
        if (ing->tenants[i].tenant == tenant) return &ing->tenants[i];
    if (ing->ntenants == ing->tcap) {
        size_t ncap = ing->tcap ? ing->tcap * 2 : 8;
        tenant_set_t *t = realloc(ing->tenants, ncap * sizeof *t);
        if (!t) return NULL;
        ing->tenants = t;
        ing->tcap = ncap;
    }
    tenant_set_t *t = &ing->tenants[ing->ntenants++];
    *t = (tenant_set_t){ .tenant = tenant };
    return t;
}

static uint64_t *set_find(tenant_set_t *t, uint64_t h)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask)
        if (t->slots[i] == h || t->slots[i] == 0) return &t->slots[i];
}

static int set_grow(tenant_set_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    tenant_set_t nt = { t->tenant, calloc(ncap, sizeof(uint64_t)), ncap, 0 };
    if (!nt.slots) return STRATA_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i]) {
            *set_find(&nt, t->slots[i]) = t->slots[i];
            nt.count++;
        }
    free(t->slots);
    *t = nt;
    return 0;
}

/* Adds h; returns 1 if it was new, 0 if known, <0 on ENOMEM. */
static int set_add(tenant_set_t *t, uint64_t h)
{
    if ((t->count + 1) * 4 > t->cap * 3) {
        int rc = set_grow(t);
        if (rc) return rc;
    }
    uint64_t *slot = set_find(t, h);
    if (*slot) return 0;
    *slot = h;
    t->count++;
    return 1;
}

static int set_has(tenant_set_t *t, uint64_t h) { return t->cap && *set_find(t, h) == h; }

static int load_tenants(ingest_t *ing)
{
    /* Every stored series, its tenant read from its label: this is no tenant's
     * read, so it adds no tenant matcher (reads add it in one place, the read
     * seam: docs/architecture.md). */
    tsdb_matcher_t m = { TSDB_MATCH_RE, "__name__", ".+" };
    tsdb_series_set_t *set;
    int rc = tsdb_select(ing->db, &m, 1, INT64_MIN, INT64_MAX, &set);
    if (rc) return rc;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t n;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &n);
        const char *tv = NULL;
        for (size_t i = 0; i < n && !tv; i++)
            if (strcmp(l[i].name, INGEST_TENANT_LABEL) == 0) tv = l[i].value;
        if (!tv) continue; /* not written through ingest */
        tenant_set_t *t = tenant_get(ing, (int32_t)strtol(tv, NULL, 10));
        if (!t || set_add(t, hash_labels(l, n)) < 0) {
            rc = STRATA_ENOMEM;
            break;
        }
    }
    tsdb_series_set_free(set);
    return rc < 0 ? rc : 0;
}

int ingest_new(tsdb_t *db, const ingest_limits_t *lim, ingest_t **out)
{
    ingest_t *ing = calloc(1, sizeof *ing);
    if (!ing) return STRATA_ENOMEM;
    ing->db = db;
    ing->lim = *lim;
    pthread_mutex_init(&ing->mu, NULL);
    if (!(ing->meta = ingest_meta_store_new())) {
        pthread_mutex_destroy(&ing->mu);
        free(ing);
        return STRATA_ENOMEM;
    }
    if (!lim->max_series_per_tenant && !(ing->lcache = ingest_lcache_new(INGEST_LABEL_CACHE_MAX))) {
        ingest_free(ing);
        return STRATA_ENOMEM;
    }
    if (lim->max_series_per_tenant && db) {
        int rc = load_tenants(ing);
        if (rc) {
            strata_error("cannot count series per tenant", "err=\"%s\"", strata_strerror(rc));
            ingest_free(ing);
            return rc;
        }
    }
    *out = ing;
    return 0;
}

void ingest_free(ingest_t *ing)
{
    if (!ing) return;
    for (size_t i = 0; i < ing->ntenants; i++) free(ing->tenants[i].slots);
    free(ing->tenants);
    ingest_meta_store_free(ing->meta);
    ingest_lcache_free(ing->lcache);
    pthread_mutex_destroy(&ing->mu);
    free(ing);
}

/* {a="b", ...} without the tenant label, for messages. */
static void describe(char *buf, size_t cap, const tsdb_series_input_t *s)
{
    size_t off = (size_t)snprintf(buf, cap, "{");
    int first = 1;
    for (size_t i = 0; i < s->nlabels && off < cap; i++) {
        if (strcmp(s->labels[i].name, INGEST_TENANT_LABEL) == 0) continue;
        off += (size_t)snprintf(buf + off, cap - off, "%s%s=\"%.80s\"", first ? "" : ", ", s->labels[i].name,
                                s->labels[i].value);
        first = 0;
    }
    if (off < cap) snprintf(buf + off, cap - off, "}");
    if (off >= cap && cap > 4) strcpy(buf + cap - 5, "...}");
}

/* Keeps the series the tenant may still create; rejects the rest.  Series
 * are reserved here, before the append, so two concurrent requests cannot
 * both take the last slot. */
static int apply_series_limit(ingest_t *ing, int32_t tenant, tsdb_series_input_t *series, size_t *n,
                              ingest_result_t *res)
{
    size_t keep = 0;
    int rc = 0;
    pthread_mutex_lock(&ing->mu);
    tenant_set_t *t = tenant_get(ing, tenant);
    if (!t) {
        pthread_mutex_unlock(&ing->mu);
        return STRATA_ENOMEM;
    }
    for (size_t i = 0; i < *n; i++) {
        uint64_t h = hash_labels(series[i].labels, series[i].nlabels);
        if (!set_has(t, h)) {
            if (t->count >= ing->lim.max_series_per_tenant) {
                res->rejected[INGEST_R_TENANT_LIMIT] += series[i].nsamples;
                if (!res->message[0]) {
                    char d[300];
                    describe(d, sizeof d, &series[i]);
                    snprintf(res->message, sizeof res->message,
                             "series %s: tenant %" PRId32 " is at its limit of %" PRIu64 " series", d, tenant,
                             ing->lim.max_series_per_tenant);
                }
                continue;
            }
            if ((rc = set_add(t, h)) < 0) break;
            rc = 0;
        }
        series[keep++] = series[i];
    }
    pthread_mutex_unlock(&ing->mu);
    *n = keep;
    return rc;
}

/* 1 when the observer wants the series (its filter). */
static int observer_wants(const ingest_t *ing, const tsdb_series_input_t *s)
{
    if (!ing->observer && !ing->observer_ref) return 0;
    return !ing->wants || ing->wants(ing->observer_ctx, s) ? 1 : 0;
}

/* One pass of ingest_write over the decompressed body, through the label
 * cache when one is given.  STRATA_ENOTFOUND: a cached ref named a series
 * the head has dropped since; nothing was stored, res is to be redone. */
static int write_decoded(ingest_t *ing, strata_arena_t *arena, enum ingest_proto proto, const char *raw,
                         size_t rawlen, int32_t tenant, const char *tenant_s, int64_t now_ms,
                         ingest_lcache_t *cache, ingest_result_t *res)
{
    memset(res, 0, sizeof *res);
    ingest_batch_t *b;
    if (cache) ingest_lcache_rdlock(cache);
    int rc = ingest_decode_cached(arena, proto, raw, rawlen, &ing->lim, now_ms, tenant_s, cache, tenant, &b);
    if (cache) ingest_lcache_unlock(cache);
    if (rc) return rc;
    for (int r = 0; r < INGEST_R_COUNT; r++)
        res->rejected[r] = ingest_batch_rejected(b, (enum ingest_reason)r);
    const char *first = ingest_batch_first_error(b);
    if (first) snprintf(res->message, sizeof res->message, "%s", first);
    size_t nmd;
    const ingest_metadata_t *md = ingest_batch_metadata(b, &nmd);
    ingest_meta_store_put(ing->meta, tenant, md, nmd);

    size_t n;
    const tsdb_series_input_t *in = ingest_batch_series(b, &n);
    const ingest_series_meta_t *meta = cache ? ingest_batch_meta(b) : NULL;
    tsdb_series_input_t *series = NULL;
    if (n) {
        series = strata_arena_alloc(arena, n * sizeof *series);
        if (!series) return STRATA_ETOOBIG;
        memcpy(series, in, n * sizeof *series);
    }
    if (ing->lim.max_series_per_tenant && n && (rc = apply_series_limit(ing, tenant, series, &n, res)))
        return rc;

    if (n) {
        uint32_t *refs = strata_arena_alloc(arena, n * sizeof *refs);
        unsigned *obs = strata_arena_alloc(arena, n * sizeof *obs);
        if (!refs || !obs) return STRATA_ETOOBIG;
        for (size_t i = 0; i < n; i++) {
            refs[i] = meta ? meta[i].ref : 0;
            obs[i] = meta && meta[i].observe != INGEST_OBSERVE_UNKNOWN
                         ? meta[i].observe
                         : (unsigned)observer_wants(ing, &series[i]);
        }
        tsdb_append_result_t ar;
        memset(&ar, 0, sizeof ar);
        rc = tsdb_append_refs(ing->db, series, n, refs, &ar);
        if (rc < 0) return rc;
        if (meta) {
            /* new series (and refs that changed) go into the cache */
            ingest_lkey_t *keys = strata_arena_alloc(arena, n * sizeof *keys);
            uint32_t *nrefs = strata_arena_alloc(arena, n * sizeof *nrefs);
            unsigned *nflags = strata_arena_alloc(arena, n * sizeof *nflags);
            size_t nnew = 0;
            for (size_t i = 0; keys && nrefs && nflags && i < n; i++) {
                if (!meta[i].key.len || meta[i].ref == refs[i]) continue;
                keys[nnew] = meta[i].key;
                nrefs[nnew] = refs[i];
                nflags[nnew++] = obs[i] ? INGEST_LC_OBSERVE : 0;
            }
            if (nnew && ingest_lcache_put(cache, tenant, keys, nrefs, nflags, nnew) < 0)
                strata_warn("label cache full", "err=\"%s\"", strata_strerror(STRATA_ENOMEM));
        }
        for (size_t i = 0; (ing->observer || ing->observer_ref) && i < n; i++) {
            if (!obs[i] || !series[i].labels) continue; /* a series it wants is always decoded */
            int orc = ing->observer_ref ? ing->observer_ref(ing->observer_ctx, tenant, refs[i], &series[i])
                                        : ing->observer(ing->observer_ctx, tenant, &series[i]);
            if (orc < 0) {
                strata_warn("write observer failed", "err=\"%s\"", strata_strerror(orc));
                break;
            }
        }
        res->samples_written = ar.appended + ar.duplicates;
        res->series_created = ar.new_series;
        res->rejected[INGEST_R_TOO_OLD] += ar.too_old;
        res->rejected[INGEST_R_CONFLICT] += ar.conflicting;
        if (!res->message[0] && ar.first_rejected_series < n) {
            char d[300];
            tsdb_series_input_t shown = series[ar.first_rejected_series];
            if (!shown.labels && meta &&
                ingest_batch_labels(b, arena, ar.first_rejected_series, &shown.labels, &shown.nlabels))
                shown.nlabels = 0;
            describe(d, sizeof d, &shown);
            snprintf(res->message, sizeof res->message, "series %s: %s", d,
                     ar.first_rejected_error == STRATA_EDUPTS
                         ? "sample conflicts with a stored sample at the same timestamp"
                         : "sample is older than the out-of-order window");
        }
    }
    return 0;
}

int ingest_write(ingest_t *ing, strata_arena_t *arena, enum ingest_proto proto, const void *body, size_t len,
                 int32_t tenant, int64_t now_ms, ingest_result_t *res)
{
    memset(res, 0, sizeof *res);
    char *raw;
    size_t rawlen;
    int rc = ingest_snappy_decompress(arena, body, len, ing->lim.max_request_bytes, &raw, &rawlen);
    if (rc) return rc;
    char tenant_s[16];
    snprintf(tenant_s, sizeof tenant_s, "%" PRId32, tenant);
    /* A stale cached ref (the head dropped the series) stores nothing: the
     * cache starts over and the request is decoded again; after two such
     * tries (a head cut each time), without the cache. */
    for (int attempt = 0;; attempt++) {
        ingest_lcache_t *cache = attempt < 2 ? ing->lcache : NULL;
        rc = write_decoded(ing, arena, proto, raw, rawlen, tenant, tenant_s, now_ms, cache, res);
        if (rc != STRATA_ENOTFOUND || !cache) break;
        ingest_lcache_clear(cache);
    }
    if (rc) return rc;

    size_t total = 0, off = 0;
    for (int r = 0; r < INGEST_R_COUNT; r++) {
        if (!res->rejected[r]) continue;
        total += res->rejected[r];
        off += (size_t)snprintf(res->details + off, sizeof res->details - off, "%s%s=%zu",
                                off ? ", " : "rejected: ", ingest_reason_name((enum ingest_reason)r),
                                res->rejected[r]);
        if (off >= sizeof res->details) break;
    }
    if (off < sizeof res->details)
        snprintf(res->details + off, sizeof res->details - off, "%ssamples written: %zu", off ? "; " : "",
                 res->samples_written);
    if (!total) return 0;
    if (!res->message[0]) snprintf(res->message, sizeof res->message, "%zu samples rejected", total);
    return res->rejected[INGEST_R_TENANT_LIMIT] ? STRATA_ELIMIT : STRATA_EINVAL;
}

int ingest_metadata_list(ingest_t *ing, int32_t tenant, const char *metric, strata_arena_t *arena,
                         ingest_metadata_t **out, size_t *n)
{
    return ingest_meta_store_list(ing ? ing->meta : NULL, tenant, metric, arena, out, n);
}
