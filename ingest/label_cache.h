/*
 * label_cache.h: ingest's cache from a series' raw remote-write label bytes
 * (and tenant) to its store ref, so a series seen before skips label
 * decoding, validation, hashing and the series table (docs/strata-load.md,
 * "Where ingest time goes").  Internal to ingest/.
 */
#ifndef INGEST_LABEL_CACHE_H
#define INGEST_LABEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct ingest_lcache ingest_lcache_t;

/* A keyed hash of a label span (h1 and 16 bits of h2 are kept) and its
 * length (0: not cacheable). */
typedef struct ingest_lkey {
    uint64_t h1;
    uint32_t h2, len;
} ingest_lkey_t;

/* Entry flag: the write observer wants this series. */
#define INGEST_LC_OBSERVE 1u

/* max_entries bounds the memory (16 bytes an entry at <= 3/4 load): when a
 * new entry would pass it, the cache starts over empty. */
ingest_lcache_t *ingest_lcache_new(size_t max_entries);
void ingest_lcache_free(ingest_lcache_t *c);

ingest_lkey_t ingest_lcache_key(const ingest_lcache_t *c, const uint8_t *p, size_t n);
/* Starts loading the slot get(k) will read first (read lock held). */
void ingest_lcache_prefetch(const ingest_lcache_t *c, ingest_lkey_t k);

/* Readers (any number of threads) hold the read lock around get; put and
 * clear take the write lock themselves. */
void ingest_lcache_rdlock(ingest_lcache_t *c);
void ingest_lcache_unlock(ingest_lcache_t *c);
/* The ref stored for (tenant, key) and its flags, or 0. */
uint32_t ingest_lcache_get(const ingest_lcache_t *c, int32_t tenant, ingest_lkey_t k, unsigned *flags);
/* Stores n entries at once (one write lock).  STRATA_ENOMEM. */
int ingest_lcache_put(ingest_lcache_t *c, int32_t tenant, const ingest_lkey_t *keys, const uint32_t *refs,
                      const unsigned *flags, size_t n);
void ingest_lcache_clear(ingest_lcache_t *c);
size_t ingest_lcache_count(ingest_lcache_t *c);

#endif
