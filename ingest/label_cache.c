/*
 * label_cache.c: the raw-label-bytes -> series ref cache (label_cache.h).
 *
 * Open addressing over 16-byte entries, keyed by the tenant and an 80-bit
 * hash of the label bytes as they came on the wire (their length included).
 * The hash is seeded at random per process, so which inputs collide cannot be
 * known in advance; the tenant is compared exactly, so a collision could only
 * ever mix two series of the same tenant, with odds of about n^2 / 2^81 for
 * n series of it (2^-41 for a million).
 */
#include "label_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "strata_err.h"

/* 16 bytes: 80 bits of the key's hash, the tenant exactly, the ref and the
 * observer flag.  Tenants outside 0..65535 and refs from 2^31 on are not
 * cached (they take the slow path). */
typedef struct entry {
    uint64_t h1;
    uint32_t ref_flags; /* ref << 1 | observe; 0 = empty slot */
    uint16_t tenant;
    uint16_t h2;
} entry_t;

struct ingest_lcache {
    pthread_rwlock_t lock;
    entry_t *slots;
    size_t nslots, count, max;
    uint64_t seed1, seed2;
};

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

ingest_lcache_t *ingest_lcache_new(size_t max_entries)
{
    ingest_lcache_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    uint64_t seed[2] = { 0, 0 };
    if (getentropy(seed, sizeof seed) != 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed[0] = (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)c;
        seed[1] = (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 32);
    }
    c->seed1 = mix(seed[0] | 1);
    c->seed2 = mix(seed[1] ^ UINT64_C(0x9e3779b97f4a7c15));
    c->max = max_entries ? max_entries : 1;
    pthread_rwlock_init(&c->lock, NULL);
    return c;
}

void ingest_lcache_free(ingest_lcache_t *c)
{
    if (!c) return;
    pthread_rwlock_destroy(&c->lock);
    free(c->slots);
    free(c);
}

static inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

#if defined(__SIZEOF_INT128__)
/* 64x64 -> 128-bit multiply, halves folded: 16 input bytes per step with
 * only a rotate and an add on the dependency chain. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}
#else
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    uint64_t x = a * (b | 1);
    return x ^ rotl(b * UINT64_C(0x9e3779b97f4a7c15) + a, 32);
}
#endif

ingest_lkey_t ingest_lcache_key(const ingest_lcache_t *c, const uint8_t *p, size_t n)
{
    /* two lanes with their own secrets; rotating the accumulator between
     * blocks makes the result depend on the blocks' order */
    const uint64_t s0 = c->seed1, s1 = c->seed2, s2 = rotl(c->seed1, 21) ^ c->seed2,
                   s3 = rotl(c->seed2, 43) + c->seed1;
    uint64_t a = s0 ^ n, b = s1 + n, w0, w1;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        memcpy(&w0, p + i, 8);
        memcpy(&w1, p + i + 8, 8);
        a = rotl(a, 23) + mum(w0 ^ s0, w1 ^ s1);
        b = rotl(b, 37) + mum(w0 ^ s2, w1 ^ s3);
    }
    if (i < n) {
        uint8_t t[16] = { 0 };
        memcpy(t, p + i, n - i);
        t[15] ^= (uint8_t)(n - i);
        memcpy(&w0, t, 8);
        memcpy(&w1, t + 8, 8);
        a = rotl(a, 23) + mum(w0 ^ s0, w1 ^ s1);
        b = rotl(b, 37) + mum(w0 ^ s2, w1 ^ s3);
    }
    ingest_lkey_t k = { mix(a ^ rotl(b, 17)), (uint32_t)(mix(b + s3 + n) >> 32), (uint32_t)n };
    return k;
}

void ingest_lcache_prefetch(const ingest_lcache_t *c, ingest_lkey_t k)
{
    if (c->nslots) __builtin_prefetch(&c->slots[(size_t)k.h1 & (c->nslots - 1)]);
}

void ingest_lcache_rdlock(ingest_lcache_t *c) { pthread_rwlock_rdlock(&c->lock); }
void ingest_lcache_unlock(ingest_lcache_t *c) { pthread_rwlock_unlock(&c->lock); }

static inline int cacheable(int32_t tenant, ingest_lkey_t k)
{
    return tenant >= 0 && tenant <= UINT16_MAX && k.len > 0;
}

static inline int entry_is(const entry_t *e, int32_t tenant, ingest_lkey_t k)
{
    return e->h1 == k.h1 && e->h2 == (uint16_t)k.h2 && e->tenant == (uint16_t)tenant;
}

uint32_t ingest_lcache_get(const ingest_lcache_t *c, int32_t tenant, ingest_lkey_t k, unsigned *flags)
{
    if (!c->nslots || !cacheable(tenant, k)) return 0;
    size_t mask = c->nslots - 1;
    for (size_t i = (size_t)k.h1 & mask;; i = (i + 1) & mask) {
        const entry_t *e = &c->slots[i];
        if (!e->ref_flags) return 0;
        if (entry_is(e, tenant, k)) {
            *flags = e->ref_flags & 1;
            return e->ref_flags >> 1;
        }
    }
}

static entry_t *slot_for(entry_t *slots, size_t nslots, int32_t tenant, ingest_lkey_t k)
{
    size_t mask = nslots - 1;
    for (size_t i = (size_t)k.h1 & mask;; i = (i + 1) & mask)
        if (!slots[i].ref_flags || entry_is(&slots[i], tenant, k)) return &slots[i];
}

static int grow(ingest_lcache_t *c)
{
    size_t ns = c->nslots ? c->nslots * 2 : 4096;
    entry_t *nm = calloc(ns, sizeof *nm);
    if (!nm) return STRATA_ENOMEM;
    for (size_t j = 0; j < c->nslots; j++) {
        const entry_t *e = &c->slots[j];
        if (!e->ref_flags) continue;
        ingest_lkey_t k = { e->h1, e->h2, 1 };
        *slot_for(nm, ns, e->tenant, k) = *e;
    }
    free(c->slots);
    c->slots = nm;
    c->nslots = ns;
    return 0;
}

int ingest_lcache_put(ingest_lcache_t *c, int32_t tenant, const ingest_lkey_t *keys, const uint32_t *refs,
                      const unsigned *flags, size_t n)
{
    int rc = 0;
    pthread_rwlock_wrlock(&c->lock);
    for (size_t i = 0; i < n && !rc; i++) {
        if (!refs[i] || refs[i] > UINT32_MAX >> 1 || !cacheable(tenant, keys[i])) continue;
        if (c->count >= c->max) { /* the bound: start over */
            memset(c->slots, 0, c->nslots * sizeof *c->slots);
            c->count = 0;
        }
        if ((c->count + 1) * 4 > c->nslots * 3 && (rc = grow(c))) break;
        entry_t *e = slot_for(c->slots, c->nslots, tenant, keys[i]);
        if (!e->ref_flags) c->count++;
        *e = (entry_t){ keys[i].h1, refs[i] << 1 | (flags[i] & 1), (uint16_t)tenant, (uint16_t)keys[i].h2 };
    }
    pthread_rwlock_unlock(&c->lock);
    return rc;
}

void ingest_lcache_clear(ingest_lcache_t *c)
{
    pthread_rwlock_wrlock(&c->lock);
    if (c->slots) memset(c->slots, 0, c->nslots * sizeof *c->slots);
    c->count = 0;
    pthread_rwlock_unlock(&c->lock);
}

size_t ingest_lcache_count(ingest_lcache_t *c)
{
    pthread_rwlock_rdlock(&c->lock);
    size_t n = c->count;
    pthread_rwlock_unlock(&c->lock);
    return n;
}
