/*
 * bytemap.c: the growing and deleting half of the registry's byte-keyed hash
 * map (bytemap.h has the contract and the inline lookup).
 */
#include "bytemap.h"

#include <stdlib.h>

#include "strata_err.h"
#include "strata_log.h"

void bmap_del(bmap_t *m, const char *k, size_t klen, uint64_t h)
{
    if (!m->cap) return;
    size_t mask = m->cap - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const bucket_t *b = &m->b[i];
        if (!b->v) return;
        if (b->h == h && b->klen == klen && memcmp(b->k, k, klen) == 0) break;
    }
    m->b[i].v = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->b[j].v; j = (j + 1) & mask) {
        size_t home = m->b[j].h & mask;
        /* the entry at j may move into the hole at i unless its home lies
         * cyclically in (i, j] */
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        m->b[i] = m->b[j];
        m->b[j].v = NULL;
        i = j;
    }
}

int bmap_put(bmap_t *m, const char *k, size_t klen, uint64_t h, void *v)
{
    if ((m->n + 1) * 10 >= m->cap * 7) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        bucket_t *nb = calloc(ncap, sizeof *nb);
        if (!nb) {
            strata_error("registry: out of memory", "what=%s", "hash map");
            return STRATA_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->b[i].v) continue;
            size_t j = m->b[i].h & (ncap - 1);
            while (nb[j].v) j = (j + 1) & (ncap - 1);
            nb[j] = m->b[i];
        }
        free(m->b);
        m->b = nb;
        m->cap = ncap;
    }
    size_t i = h & (m->cap - 1);
    while (m->b[i].v) i = (i + 1) & (m->cap - 1);
    m->b[i] = (bucket_t){ h, k, klen, v };
    m->n++;
    return 0;
}
