/*
 * ingest_internal.h: what write.c and decode.c share beyond ingest.h: decoding
 * through the label cache (label_cache.h) and the per-series facts it leaves
 * in the batch.
 */
#ifndef INGEST_INTERNAL_H
#define INGEST_INTERNAL_H

#include "ingest.h"
#include "label_cache.h"

#define INGEST_OBSERVE_UNKNOWN 2

/* Per series of a batch decoded with a cache. */
typedef struct ingest_series_meta {
    ingest_lkey_t key;   /* of its raw label bytes; len 0: not keyed (not cacheable) */
    const uint8_t *span; /* those bytes (in the request), for ingest_batch_labels */
    uint32_t ref;        /* the store ref the cache gave (tsdb_append_refs), 0 = none */
    uint8_t observe;     /* the write observer wants it: 0, 1 or INGEST_OBSERVE_UNKNOWN */
} ingest_series_meta_t;

/* ingest_decode, looking each RW1 series' raw label bytes up in cache (held
 * read-locked by the caller) for tenant_id.  A series found there whose
 * observer flag is clear and whose samples all pass the time checks is not
 * decoded at all: its input has labels NULL and nlabels 0 and its meta a
 * ref.  cache NULL: exactly ingest_decode (meta still filled, nothing keyed). */
int ingest_decode_cached(strata_arena_t *arena, enum ingest_proto proto, const void *buf, size_t len,
                         const ingest_limits_t *lim, int64_t now_ms, const char *tenant,
                         ingest_lcache_t *cache, int32_t tenant_id, ingest_batch_t **out);
/* nseries entries, parallel to ingest_batch_series. */
const ingest_series_meta_t *ingest_batch_meta(const ingest_batch_t *b);
/* The labels of series i (decoded from its raw bytes when the cache skipped
 * that), in arena.  STRATA_ENOMEM. */
int ingest_batch_labels(const ingest_batch_t *b, strata_arena_t *arena, size_t i, const tsdb_label_t **labels,
                        size_t *n);

#endif
