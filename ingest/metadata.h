/*
 * metadata.h: the receiver's store of remote-write metadata (internal to
 * ingest/; ingest_metadata_list in ingest.h is its public face).
 */
#ifndef INGEST_METADATA_H
#define INGEST_METADATA_H

#include "ingest.h"

typedef struct ingest_meta_store ingest_meta_store_t;

ingest_meta_store_t *ingest_meta_store_new(void);
void ingest_meta_store_free(ingest_meta_store_t *st);
/* Keeps the latest of each family for tenant (bounded, see ingest.h). */
void ingest_meta_store_put(ingest_meta_store_t *st, int32_t tenant, const ingest_metadata_t *m, size_t n);
int ingest_meta_store_list(ingest_meta_store_t *st, int32_t tenant, const char *metric, strata_arena_t *arena,
                           ingest_metadata_t **out, size_t *n);

#endif
