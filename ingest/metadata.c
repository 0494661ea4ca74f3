/*
 * metadata.c: the metric metadata (TYPE, HELP, UNIT) remote write 1.0 sends
 * beside the samples, kept so /api/v1/metadata can answer it (docs/promql.md,
 * "HTTP API").  Prometheus keeps metadata only in memory, from its scrape
 * targets; strata keeps what the senders last said, per tenant, in memory:
 * one hash table keyed by (tenant, family), at most INGEST_METADATA_PER_TENANT
 * families a tenant so one tenant's senders cannot grow it without bound.
 */
#include "metadata.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct meta_entry {
    int32_t tenant;
    char *family, *help, *unit; /* NULL family = empty slot */
    const char *type;           /* a static name */
} meta_entry_t;

typedef struct tenant_count {
    int32_t tenant;
    size_t n;
} tenant_count_t;

struct ingest_meta_store {
    pthread_mutex_t mu;
    meta_entry_t *slots;
    size_t cap, count;
    tenant_count_t *tc;
    size_t ntc;
};

static uint64_t key_hash(int32_t tenant, const char *family)
{
    uint64_t h = UINT64_C(1469598103934665603) ^ (uint32_t)tenant;
    for (const char *s = family; *s; s++) h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    h ^= h >> 29;
    return h;
}

ingest_meta_store_t *ingest_meta_store_new(void)
{
    ingest_meta_store_t *st = calloc(1, sizeof *st);
    if (st) pthread_mutex_init(&st->mu, NULL);
    return st;
}

void ingest_meta_store_free(ingest_meta_store_t *st)
{
    if (!st) return;
    for (size_t i = 0; i < st->cap; i++) {
        free(st->slots[i].family);
        free(st->slots[i].help);
        free(st->slots[i].unit);
    }
    free(st->slots);
    free(st->tc);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

static size_t *tenant_count(ingest_meta_store_t *st, int32_t tenant)
{
    for (size_t i = 0; i < st->ntc; i++)
        if (st->tc[i].tenant == tenant) return &st->tc[i].n;
    tenant_count_t *n = realloc(st->tc, (st->ntc + 1) * sizeof *n);
    if (!n) return NULL;
    st->tc = n;
    st->tc[st->ntc] = (tenant_count_t){ tenant, 0 };
    return &st->tc[st->ntc++].n;
}

static meta_entry_t *find_slot(meta_entry_t *slots, size_t cap, int32_t tenant, const char *family)
{
    size_t k = key_hash(tenant, family) & (cap - 1);
    while (slots[k].family && !(slots[k].tenant == tenant && strcmp(slots[k].family, family) == 0))
        k = (k + 1) & (cap - 1);
    return &slots[k];
}

static int grow(ingest_meta_store_t *st)
{
    size_t ncap = st->cap ? st->cap * 2 : 64;
    meta_entry_t *ns = calloc(ncap, sizeof *ns);
    if (!ns) return STRATA_ENOMEM;
    for (size_t i = 0; i < st->cap; i++)
        if (st->slots[i].family)
            *find_slot(ns, ncap, st->slots[i].tenant, st->slots[i].family) = st->slots[i];
    free(st->slots);
    st->slots = ns;
    st->cap = ncap;
    return 0;
}

static int same(const char *a, const char *b) { return strcmp(a, b) == 0; }

void ingest_meta_store_put(ingest_meta_store_t *st, int32_t tenant, const ingest_metadata_t *m, size_t n)
{
    if (!st || !n) return;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < n; i++) {
        if ((st->count + 1) * 2 > st->cap && grow(st)) break;
        meta_entry_t *e = find_slot(st->slots, st->cap, tenant, m[i].family);
        if (e->family) {
            /* most writes repeat what is known: no allocation then */
            if (e->type == m[i].type && same(e->help, m[i].help) && same(e->unit, m[i].unit)) continue;
            char *h = strdup(m[i].help), *u = strdup(m[i].unit);
            if (!h || !u) {
                free(h);
                free(u);
                continue;
            }
            free(e->help);
            free(e->unit);
            e->help = h;
            e->unit = u;
            e->type = m[i].type;
            continue;
        }
        size_t *cnt = tenant_count(st, tenant);
        if (!cnt || *cnt >= INGEST_METADATA_PER_TENANT) continue;
        meta_entry_t ne = { tenant, strdup(m[i].family), strdup(m[i].help), strdup(m[i].unit), m[i].type };
        if (!ne.family || !ne.help || !ne.unit) {
            free(ne.family);
            free(ne.help);
            free(ne.unit);
            continue;
        }
        *e = ne;
        st->count++;
        (*cnt)++;
    }
    pthread_mutex_unlock(&st->mu);
}

static int by_family(const void *a, const void *b)
{
    return strcmp(((const ingest_metadata_t *)a)->family, ((const ingest_metadata_t *)b)->family);
}

int ingest_meta_store_list(ingest_meta_store_t *st, int32_t tenant, const char *metric, strata_arena_t *arena,
                           ingest_metadata_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!st) return 0;
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    size_t k = 0, want = 0;
    for (size_t i = 0; i < st->cap; i++) want += st->slots[i].family && st->slots[i].tenant == tenant;
    ingest_metadata_t *m = want ? strata_arena_alloc(arena, want * sizeof *m) : NULL;
    if (want && !m) rc = STRATA_ENOMEM;
    for (size_t i = 0; m && i < st->cap; i++) {
        const meta_entry_t *e = &st->slots[i];
        if (!e->family || e->tenant != tenant || (metric && *metric && strcmp(metric, e->family) != 0))
            continue;
        m[k] = (ingest_metadata_t){ strata_arena_strdup(arena, e->family), e->type,
                                    strata_arena_strdup(arena, e->help),
                                    strata_arena_strdup(arena, e->unit) };
        if (!m[k].family || !m[k].help || !m[k].unit) {
            rc = STRATA_ENOMEM;
            break;
        }
        k++;
    }
    pthread_mutex_unlock(&st->mu);
    if (rc) return rc;
    if (k) qsort(m, k, sizeof *m, by_family);
    *out = m;
    *n = k;
    return 0;
}
