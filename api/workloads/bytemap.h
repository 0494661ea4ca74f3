/*
 * bytemap.h: a byte-keyed open-addressing hash map (linear probing, FNV-1a
 * hashes, backward-shift deletion: no tombstones), the one map type of the
 * workload registry.  Keys are owned by the values: the map stores pointers
 * to both and never copies a key.  Callers hash once (hash_bytes) and pass
 * the hash to every call.  Lookups are inline: they sit on ingest's path.
 */
#ifndef API_BYTEMAP_H
#define API_BYTEMAP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline uint64_t hash_bytes(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

/* An empty bucket has v == NULL. */
typedef struct bucket {
    uint64_t h;
    const char *k;
    size_t klen;
    void *v;
} bucket_t;

typedef struct bmap {
    bucket_t *b;
    size_t cap, n;
} bmap_t;

static inline void *bmap_get(const bmap_t *m, const char *k, size_t klen, uint64_t h)
{
    if (!m->cap) return NULL;
    for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const bucket_t *b = &m->b[i];
        if (!b->v) return NULL;
        if (b->h == h && b->klen == klen && memcmp(b->k, k, klen) == 0) return b->v;
    }
}

/* Linear probing's backward-shift delete: no tombstones.  No-op when absent. */
void bmap_del(bmap_t *m, const char *k, size_t klen, uint64_t h);

/* Adds k -> v (v != NULL; k must not be present), growing at 70% load.
 * 0 or STRATA_ENOMEM (logged). */
int bmap_put(bmap_t *m, const char *k, size_t klen, uint64_t h, void *v);

#endif
