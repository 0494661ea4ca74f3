/*
 * head_internal.h: the in-memory head's series (internal to tsdb/): sealed
 * codec chunks, the open buffer of raw samples, out-of-order samples, and the
 * series table that finds a series by its label set (head.c).
 */
#ifndef TSDB_HEAD_INTERNAL_H
#define TSDB_HEAD_INTERNAL_H

#include <stdint.h>

#include "db_internal.h"

/* A series' sealed chunks live back to back in one buffer, s->cbuf: each is a
 * little-endian u16 length, then that many codec bytes (docs/storage.md,
 * "Head").  Sample count and time bounds come from the codec header. */
#define HEAD_CHUNK_PREFIX 2

/* One sealed chunk as head_chunk_next() finds it. */
typedef struct hchunk {
    const uint8_t *data;
    uint32_t len, n;
    int64_t mint, maxt;
} hchunk_t;

struct hseries {
    uint64_t hash; /* head_label_set_hash() of its label strings */
    uint32_t ref;
    uint16_t nlabels;
    uint8_t logged;    /* its SERIES record reached the WAL */
    uint8_t nraw;      /* in-order samples in the open buffer (head_raw), after the chunks */
    uint32_t nooo;     /* out-of-order samples, sorted, merged on read */
    uint32_t clen;     /* bytes of cbuf in use (0: no sealed chunk) */
    uint32_t ccap;     /* bytes of cbuf allocated */
    uint32_t tail_off; /* cbuf offset of the first chunk a later merge may take */
    int64_t maxt;      /* newest sample (INT64_MIN: none yet) */
    uint8_t *cbuf;
    tsdb_sample_t *ooo;
    uint32_t labels[]; /* nlabels (name, value) symbol pairs, then the open
                        * buffer: TSDB_HEAD_OPEN_SAMPLES raw samples */
};

/* The open buffer, allocated with the series after its labels (so appending
 * allocates nothing between seals, and the labels stay next to the header
 * for lookups). */
static inline tsdb_sample_t *head_raw(const hseries_t *s)
{
    return (tsdb_sample_t *)(void *)&((hseries_t *)s)->labels[2u * s->nlabels];
}

/* The next sealed chunk at *off (start with 0): 1 and *c filled, 0 past the
 * last one (or on a damaged header, which the head never writes). */
int head_chunk_next(const hseries_t *s, uint32_t *off, hchunk_t *c);

/* ---- one series (head.c); the caller holds head_lock as writer for changes */
/* Frees the series' samples (the series itself stays). */
void head_series_free_data(tsdb_t *db, hseries_t *s);
/* Samples held in sealed chunks. */
uint64_t head_series_chunk_samples(const hseries_t *s);
/* Appends an in-order sample (t above everything in raw and chunks). */
int head_series_push(tsdb_t *db, hseries_t *s, int64_t t, double v);
/* 1 when the series holds a sample at t (its value in *v, which may be NULL). */
int head_series_find(const hseries_t *s, int64_t t, double *v);
/* Makes one accepted sample visible; a sample already there is skipped. */
int head_series_add(tsdb_t *db, hseries_t *s, int64_t t, double v);
/* Appends the series' samples in [mint, maxt], ascending, to *buf. */
int head_series_read(const hseries_t *s, int64_t mint, int64_t maxt, tsdb_sample_t **buf, size_t *n,
                     size_t *cap);
/* Grows *buf to hold need samples. */
int tsdb_grow_samples(tsdb_sample_t **buf, size_t *cap, size_t need);

/* ---- the series table (head.c) ------------------------------------------- */
/* Hash of the label set; lens gets the 2n string lengths for the lookup. */
uint64_t head_label_set_hash(const tsdb_label_t *labels, size_t n, size_t *lens);
/* Looks the label set up without creating anything: NULL when unknown.
 * h and lens from head_label_set_hash(labels, n, lens). */
hseries_t *head_series_lookup(tsdb_t *db, const tsdb_label_t *labels, const size_t *lens, size_t n,
                              uint64_t h);
/* Creates a series with ref (UINT32_MAX: the next free one); h is
 * head_label_set_hash(labels, n). head_lock held. */
int head_series_create(tsdb_t *db, const tsdb_label_t *labels, size_t n, uint64_t h, uint32_t ref,
                       hseries_t **out);
/* Drops series without samples and rebuilds the hash table and postings. */
int head_gc(tsdb_t *db);

/* Prefetches what smap_find(h) will read.  stage 0: the slot; stage 1: the
 * series the slot names; stage 2: its label strings, which the comparison
 * reads (each stage expects the previous one's lines in cache). */
static inline void head_smap_prefetch(const tsdb_t *db, uint64_t h, int stage)
{
    if (!db->smap_slots) return;
    const uint64_t *slot = &db->smap[h & (db->smap_slots - 1)];
    if (stage == 0) {
        __builtin_prefetch(slot);
        return;
    }
    uint64_t v = *slot;
    if (!v || v >> 32 != h >> 32) return;
    const hseries_t *s = db->series[(uint32_t)v - 1];
    if (stage == 1) {
        /* the header, then the label ids, which start on the next line */
        __builtin_prefetch(s);
        __builtin_prefetch((const char *)s + 64);
        __builtin_prefetch((const char *)s + 128);
        return;
    }
    for (uint32_t k = 0; k < 2u * s->nlabels; k++)
        __builtin_prefetch(tsdb_symtab_str(&db->syms, s->labels[k]));
}

#endif
