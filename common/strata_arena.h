/*
 * strata_arena.h: a per-request bump allocator (as nginx's pools).
 *
 * Everything a request allocates (snappy output, protobuf-c unpack through
 * strata_arena_protobuf_allocator in ingest, response buffers) comes from one
 * arena and goes with one strata_arena_free().  Pointers returned stay valid
 * until strata_arena_reset() or strata_arena_free() on that arena.  An arena
 * is not thread-safe: one request, one thread.
 */
#ifndef STRATA_ARENA_H
#define STRATA_ARENA_H

#include <stddef.h>

typedef struct strata_arena strata_arena_t;

/* block_size: size of each chunk it grows by (0 = 64 KiB). NULL on ENOMEM. */
strata_arena_t *strata_arena_new(size_t block_size);
void strata_arena_free(strata_arena_t *arena);
/* Frees all but the first block, so a reused arena keeps its warm memory. */
void strata_arena_reset(strata_arena_t *arena);

/* 16-byte aligned; NULL on ENOMEM (or when a cap set below is exceeded). */
void *strata_arena_alloc(strata_arena_t *arena, size_t size);
void *strata_arena_calloc(strata_arena_t *arena, size_t count, size_t size);
char *strata_arena_strndup(strata_arena_t *arena, const char *s, size_t len);
char *strata_arena_strdup(strata_arena_t *arena, const char *s);

/* Total bytes handed out by the arena's blocks (for limits and metrics). */
size_t strata_arena_used(const strata_arena_t *arena);
/* Refuse allocations once the arena holds more than cap bytes (0 = no cap). */
void strata_arena_set_cap(strata_arena_t *arena, size_t cap);

#endif
