/* strata_arena.c: chained-block bump allocator; large requests get their own block. */
#include "strata_arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct strata_arena {
    struct arena_block *head;  /* current block: allocations come from here */
    struct arena_block *first; /* kept across reset */
    size_t block_size, total, cap;
};

static struct arena_block *block_new(size_t size)
{
    struct arena_block *b = malloc(sizeof *b + size);
    if (!b) return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

strata_arena_t *strata_arena_new(size_t block_size)
{
    strata_arena_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->first = a->head = block_new(a->block_size);
    if (!a->first) {
        free(a);
        return NULL;
    }
    a->total = a->block_size;
    return a;
}

void strata_arena_reset(strata_arena_t *a)
{
    if (!a) return;
    struct arena_block *b = a->head;
    while (b && b != a->first) {
        struct arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = a->first;
    a->first->next = NULL;
    a->first->used = 0;
    a->total = a->first->size;
}

void strata_arena_free(strata_arena_t *a)
{
    if (!a) return;
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

void *strata_arena_alloc(strata_arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    struct arena_block *b = a->head;
    if (b->size - b->used < size) {
        size_t bs = size > a->block_size ? size : a->block_size;
        if (a->cap && a->total + bs > a->cap) return NULL;
        struct arena_block *nb = block_new(bs);
        if (!nb) return NULL;
        nb->next = a->head;
        a->head = nb;
        a->total += bs;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

void *strata_arena_calloc(strata_arena_t *a, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = strata_arena_alloc(a, count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

char *strata_arena_strndup(strata_arena_t *a, const char *s, size_t len)
{
    char *p = strata_arena_alloc(a, len + 1);
    if (!p) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *strata_arena_strdup(strata_arena_t *a, const char *s) { return strata_arena_strndup(a, s, strlen(s)); }

size_t strata_arena_used(const strata_arena_t *a) { return a->total; }
void strata_arena_set_cap(strata_arena_t *a, size_t cap) { a->cap = cap; }
