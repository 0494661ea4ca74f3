/*
 * tsdb_internal.h: types shared by the engine core's files (internal to tsdb/).
 *
 *   tsdb_index.c  symbol interning, the head's postings, matcher compilation
 *                 and evaluation over any index (head or block)
 *   tsdb_block.c  immutable blocks: writer, reader, page files, rollups
 *   tsdb.c        the database: head, append, select, cut, compaction
 *
 * Series ids inside one index are uint32 (head refs, block-local ordinals):
 * half the postings memory of uint64, and four billion series is far beyond
 * what one node holds.
 */
#ifndef TSDB_INTERNAL_H
#define TSDB_INTERNAL_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "strata_arena.h"
#include "tsdb.h"

static inline uint64_t tsdb_dbits(double d) { uint64_t u; __builtin_memcpy(&u, &d, 8); return u; }
static inline int64_t tsdb_floor_div(int64_t a, int64_t b) { int64_t q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; }

/* ---- symbols ------------------------------------------------------------
 * Strings live in an arena for the db's lifetime; ids index a two-level
 * table whose chunks never move, so readers resolve ids without a lock.
 * Each string is preceded by its length (4 bytes), so the append path can
 * compare label strings by length and words instead of strcmp. */
#define TSDB_SYM_CHUNK_BITS 16
#define TSDB_SYM_CHUNK (1u << TSDB_SYM_CHUNK_BITS)
#define TSDB_SYM_MAX_CHUNKS 65536u

typedef struct tsdb_symtab {
    const char **chunks[TSDB_SYM_MAX_CHUNKS];
    uint32_t n;
    uint32_t *slots;     /* open addressing, id + 1, 0 = empty */
    size_t nslots;
    strata_arena_t *strings;
    size_t bytes;
} tsdb_symtab_t;

int tsdb_symtab_init(tsdb_symtab_t *st);
void tsdb_symtab_free(tsdb_symtab_t *st);
/* 0 and *id, or STRATA_ENOMEM/STRATA_ELIMIT. Caller serialises writers. */
int tsdb_symtab_intern(tsdb_symtab_t *st, const char *s, uint32_t *id);
/* 1 when present (and *id), else 0. */
int tsdb_symtab_find(const tsdb_symtab_t *st, const char *s, uint32_t *id);
static inline const char *tsdb_symtab_str(const tsdb_symtab_t *st, uint32_t id)
{
    return st->chunks[id >> TSDB_SYM_CHUNK_BITS][id & (TSDB_SYM_CHUNK - 1)];
}
static inline size_t tsdb_symtab_len(const tsdb_symtab_t *st, uint32_t id)
{
    uint32_t n;
    __builtin_memcpy(&n, tsdb_symtab_str(st, id) - 4, 4);
    return n;
}
uint64_t tsdb_hash_bytes(const void *p, size_t n, uint64_t seed);

/* ---- head postings: (name, value) symbol pair -> sorted refs ------------ */
typedef struct tsdb_postings {
    uint32_t n, cap;
    union { uint32_t one; uint32_t *ids; } u;  /* inline while cap <= 1 */
} tsdb_postings_t;

static inline const uint32_t *tsdb_postings_ids(const tsdb_postings_t *p)
{
    return p->cap <= 1 ? &p->u.one : p->u.ids;
}

typedef struct tsdb_head_index {
    struct tsdb_pentry { uint32_t name, value; tsdb_postings_t p; } *pairs;
    size_t npairs_slots, npairs;
    struct tsdb_lname { uint32_t name; uint32_t n, cap; uint32_t *vals; } *names;
    size_t nnames, names_cap;
    uint32_t *name_slots;  /* name sym -> index + 1 into names */
    size_t nname_slots;
    size_t bytes;
} tsdb_head_index_t;

void tsdb_head_index_init(tsdb_head_index_t *hi);
void tsdb_head_index_free(tsdb_head_index_t *hi);
int tsdb_head_index_add(tsdb_head_index_t *hi, uint32_t name, uint32_t value, uint32_t ref);
const tsdb_postings_t *tsdb_head_index_get(const tsdb_head_index_t *hi, uint32_t name, uint32_t value);
const struct tsdb_lname *tsdb_head_index_name(const tsdb_head_index_t *hi, uint32_t name);

/* ---- matchers ----------------------------------------------------------- */
enum { TSDB_MK_SET, TSDB_MK_PREFIX, TSDB_MK_REGEX };

typedef struct tsdb_cmatcher {
    enum tsdb_match_op op;
    const char *name, *value;
    int kind;              /* how the value is matched (EQ/NEQ are a one-element SET) */
    char **alts;           /* SET alternatives, PREFIX prefix in alts[0] */
    size_t nalts;
    regex_t re;
    int has_re;
    int matches_empty;     /* whether the matcher, op applied, accepts "" */
} tsdb_cmatcher_t;

/* Compiles; STRATA_EBADREGEX on a bad regex, STRATA_EINVAL when every matcher
 * matches the empty string. */
int tsdb_matchers_compile(const tsdb_matcher_t *m, size_t n, tsdb_cmatcher_t **out);
void tsdb_matchers_free(tsdb_cmatcher_t *m, size_t n);
/* The matcher with its op applied: 1 = accepts v. */
int tsdb_cmatcher_match(const tsdb_cmatcher_t *m, const char *v);

/* What matcher evaluation needs from an index (head or block). */
typedef int (*tsdb_value_cb)(void *ctx, const char *value, const uint32_t *ids, size_t n);
typedef struct tsdb_index_ops {
    /* Calls cb for every value of label `name` (stops on a nonzero return). */
    int (*each_value)(const void *idx, const char *name, tsdb_value_cb cb, void *ctx);
    /* Postings of name=value, or n = 0. */
    void (*lookup)(const void *idx, const char *name, const char *value,
                   const uint32_t **ids, size_t *n);
} tsdb_index_ops_t;

/* Sorted ids matching every matcher; *out malloc'd (may be NULL when n = 0). */
int tsdb_index_select(const tsdb_index_ops_t *ops, const void *idx, const tsdb_cmatcher_t *m,
                      size_t nm, uint32_t **out, size_t *nout);

/* ---- rollups ------------------------------------------------------------ */
/* Appends the rollup points of sorted samples s[0..n) at resolution res. */
int tsdb_rollups_compute(const tsdb_sample_t *s, size_t n, int64_t res,
                         tsdb_rollup_point_t **out, size_t *nout, size_t *cap);
/* Joins q into p, two parts of one interval's summary with q's samples all
 * after p's (a source boundary inside the interval).  `increase` of q must
 * already count the rise of its first sample. */
void tsdb_rollup_join(tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q);
/* Counter delta from a to b (a reset restarts from zero). */
static inline double tsdb_counter_delta(double a, double b) { return b >= a ? b - a : b; }

/* ---- blocks ------------------------------------------------------------- */
typedef struct tsdb_block tsdb_block_t;

typedef struct tsdb_block_chunk {
    int64_t mint, maxt;
    uint64_t page;
    uint32_t off, len, count;
} tsdb_block_chunk_t;

typedef struct tsdb_block_series {
    const uint32_t *labels;       /* nlabels pairs of symbol ids */
    uint32_t nlabels, nchunks;
    const tsdb_block_chunk_t *chunks;
    uint64_t r5_page, r1_page;
    uint32_t r5_off, r5_n, r1_off, r1_n;
} tsdb_block_series_t;

struct tsdb_block {
    char id[40];
    char *path;
    int64_t mint, maxt;
    uint64_t nseries, nsamples, nchunks, bytes;
    uint32_t level;
    uint32_t version;             /* TSDB_BLOCK_VERSION it was written with (1: no holding-rule rollup fields) */
    const char **syms;
    uint32_t nsyms;
    tsdb_block_series_t *series;
    struct tsdb_bpost { uint32_t name, value, n; const uint32_t *ids; } *postings;
    uint32_t npostings;
    void *mem;                    /* the loaded index and arrays */
    int fd_chunks, fd_rollups, fd_rollups1h;   /* rollups1h: version >= 2 */
    /* owned by tsdb.c under its blocks mutex */
    int refs;
    int corrupt;                  /* a read failed its CRC: set aside */
    int dropped;                  /* compacted away or past retention: delete */
};

/* Page cache: one decompressed page per reader (in front of the process-wide
 * LRU of decompressed pages in tsdb_block.c). */
#define TSDB_STREAM_PAGES 16
typedef struct tsdb_page_cache {
    const tsdb_block_t *blk;
    int file;
    uint64_t page;
    uint8_t *buf;
    size_t len, cap;
    const uint8_t *data;          /* the current page: a pinned shared page, or buf */
    void *pin;                    /* the shared page pinned, NULL if none */
    int stream;                   /* pages read from disk stay private (a one-pass scan) */
    /* stream mode: the last pages read, kept privately (a series' group
     * switches blocks at every series, so one page would thrash) */
    struct tsdb_stream_page {
        const tsdb_block_t *blk;
        int file;
        uint64_t page;
        uint8_t *buf;
        size_t len, cap;
    } ring[TSDB_STREAM_PAGES];
    unsigned ring_next;
} tsdb_page_cache_t;

void tsdb_page_cache_free(tsdb_page_cache_t *pc);
/* Bytes held by the process-wide cache of decompressed pages. */
size_t tsdb_page_cache_bytes(void);

/* Opens <blocks_dir>/<id>, verifying meta and index CRCs (STRATA_ECORRUPT). */
int tsdb_block_open(const char *blocks_dir, const char *id, tsdb_block_t **out);
void tsdb_block_close(tsdb_block_t *b);
extern const tsdb_index_ops_t tsdb_block_index_ops;

/* Appends the samples of series idx in [mint, maxt] to *buf. */
int tsdb_block_series_samples(const tsdb_block_t *b, uint32_t idx, int64_t mint, int64_t maxt,
                              tsdb_page_cache_t *pc, tsdb_sample_t **buf, size_t *n,
                              size_t *cap);
/* Appends the stored rollup points of series idx at res. */
int tsdb_block_series_rollups(const tsdb_block_t *b, uint32_t idx, int64_t res,
                              tsdb_page_cache_t *pc, tsdb_rollup_point_t **buf, size_t *n,
                              size_t *cap);

typedef struct tsdb_block_writer tsdb_block_writer_t;
/* Starts <blocks_dir>/<id>.tmp. level: 1 for a head cut, more for compactions. */
int tsdb_block_writer_new(const char *blocks_dir, uint32_t level, tsdb_block_writer_t **out);
/* Series must come in ascending label-set order with sorted, unique samples;
 * label strings must stay valid until finish/abort. */
int tsdb_block_writer_add(tsdb_block_writer_t *w, const tsdb_label_t *labels, size_t nlabels,
                          const tsdb_sample_t *s, size_t n);
/* Writes index and meta, fsyncs, renames into place; id_out gets the id.
 * STRATA_ENOTFOUND (and nothing on disk) when no series was added.
 * Frees the writer in every case. */
int tsdb_block_writer_finish(tsdb_block_writer_t *w, char id_out[40]);
void tsdb_block_writer_abort(tsdb_block_writer_t *w);

int tsdb_label_cmp(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb);
int tsdb_fsync_dir(const char *path);
/* Removes a block directory (files, then the directory). */
void tsdb_rm_tree(const char *path);

#endif
