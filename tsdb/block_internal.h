/*
 * block_internal.h: immutable blocks and rollups (internal to tsdb/): the
 * block object, its reader and writer, the page cache in front of its page
 * files, and rollup computation.  The byte layout is in format.h.
 */
#ifndef TSDB_BLOCK_INTERNAL_H
#define TSDB_BLOCK_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "encoding.h"
#include "tsdb.h"
#include "tsdb_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "strata's on-disk format assumes a little-endian host");

/* The default of the rollup_zero_run_ms option. */
#define TSDB_ROLLUP_ZERO_RUN_DEFAULT_MS (5 * 60 * 1000)

/* ---- rollups ------------------------------------------------------------ */
/* Appends the rollup points of sorted samples s[0..n) at resolution res;
 * zero_run is the minimum zero-run length zero_inner_long counts beyond. */
int tsdb_rollups_compute(const tsdb_sample_t *s, size_t n, int64_t res, int64_t zero_run,
                         tsdb_rollup_point_t **out, size_t *nout, size_t *cap);
/* Joins q into p, two parts of one interval's summary with q's samples all
 * after p's (a source boundary inside the interval).  `increase` of q must
 * already count the rise of its first sample. */
void tsdb_rollup_join(tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q, int64_t zero_run);
/* A series' rollup record (format.h): appends the u32 length and the points. */
int tsdb_rollups_encode(enc_buf_t *b, const tsdb_rollup_point_t *p, size_t n, int64_t res, int hold);
/* Decodes cnt points of a version 3 record body of len bytes into out. */
int tsdb_rollups_decode(const uint8_t *data, uint32_t len, uint32_t cnt, int64_t res, int hold,
                        tsdb_rollup_point_t *out);
/* Decodes cnt fixed-size points (versions 1 and 2; hold: the 152-byte 1h form). */
void tsdb_rollups_decode_fixed(const uint8_t *data, uint32_t cnt, int hold, tsdb_rollup_point_t *out);
/* Whether a block stores the points at res (TSDB_ROLLUP_5M or _1H) of a
 * series whose samples there are s[0..n) (docs/storage.md, "Rollups only
 * where they pay"): only when they span TSDB_ROLLUP_5M_MIN_SPAN_MS (_1H_).
 * A block series with samples and no points at res (r5_n or r1_n == 0) has
 * them computed from its samples when read. */
int tsdb_rollup_stored(const tsdb_sample_t *s, size_t n, int64_t res);
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
    const uint32_t *labels; /* nlabels pairs of symbol ids */
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
    uint32_t version;    /* TSDB_BLOCK_VERSION it was written with (1: no holding-rule rollup fields) */
    int64_t zero_run_ms; /* the rollup_zero_run_ms its 1h rollups were built with */
    const char **syms;
    uint32_t nsyms;
    tsdb_block_series_t *series;
    struct tsdb_bpost {
        uint32_t name, value, n;
        const uint32_t *ids;
    } * postings;
    uint32_t npostings;
    void *mem;                               /* the loaded index and arrays */
    int fd_chunks, fd_rollups, fd_rollups1h; /* rollups1h: version >= 2 */
    /* the parity of the chunks file (version 5; format.h): -1 when absent or
     * its header fails its checks, then a damaged chunk page is lost */
    int fd_parity;
    uint32_t parity_width;
    uint64_t chunks_size;
    /* what tsdb_block_open repaired (each 0 or 1): meta or index put back
     * from the copy, the copy rewritten from meta and index */
    uint8_t repaired_meta, repaired_index, repaired_copy;
    /* set by db.c when the block is listed: chunk pages rebuilt from parity
     * are counted there (once per page and open block) */
    atomic_uint_fast64_t *pages_rebuilt;
    /* owned by db.c under the blocks mutex */
    int refs;
    int dropped;         /* compacted away or past retention: delete */
    uint64_t *bad_pages; /* pages found damaged (page offset * 4 + file), sorted */
    size_t nbad, bad_cap;
};

/* Page cache: one decompressed page per reader (in front of the process-wide
 * LRU of decompressed pages in page_cache.c). */
#define TSDB_STREAM_PAGES 16
typedef struct tsdb_page_cache {
    const tsdb_block_t *blk;
    int file;
    uint64_t page;
    uint8_t *buf;
    size_t len, cap;
    const uint8_t *data; /* the current page: a pinned shared page, or buf */
    void *pin;           /* the shared page pinned, NULL if none */
    int stream;          /* pages read from disk stay private (a one-pass scan) */
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
    /* Set by a reader that skips damaged pages: tsdb_block_series_samples then
     * reports a chunk whose page fails its checks here and goes on with the
     * series' other chunks instead of returning STRATA_ECORRUPT. */
    void (*on_damage)(void *ctx, const tsdb_block_t *b, int file, uint64_t page);
    void *damage_ctx;
} tsdb_page_cache_t;

void tsdb_page_cache_free(tsdb_page_cache_t *pc);
/* Bytes held by the process-wide cache of decompressed pages. */
size_t tsdb_page_cache_bytes(void);
/* Sets the process-wide cache's size (evicting down to it). */
void tsdb_page_cache_set_limit(size_t bytes);
#define TSDB_PAGE_CACHE_DEFAULT_BYTES ((size_t)64 << 20)
/* Drops b's pages: after close its address may be reused by another block. */
void tsdb_page_cache_drop_block(const tsdb_block_t *b);
/* The record at (page, off, len) of file 0 (chunks), 1 (rollups: 5m, and 1h
 * in version 1 blocks) or 2 (rollups1h), valid until pc reads another page. */
int tsdb_page_read(const tsdb_block_t *b, int file, uint64_t page, uint32_t off, uint32_t len,
                   tsdb_page_cache_t *pc, const uint8_t **out);
/* pread of exactly n bytes: STRATA_EIO (logged), STRATA_ECORRUPT past the end. */
int tsdb_pread_all(int fd, void *p, size_t n, uint64_t off);
/* write of all n bytes: 0 or STRATA_EIO/STRATA_ENOSPC (errno kept, not logged:
 * the caller, which knows the path, logs with strata_io_error). */
int tsdb_write_all(int fd, const void *p, size_t n);

/* Writes the copy file (format.h) of a block's meta and index bytes as
 * <dir>/<name>, fsynced. */
int tsdb_block_copy_write(const char *dir, const char *name, const uint8_t *meta, size_t mlen,
                          const uint8_t *ix, size_t ilen);
/* Opens <blocks_dir>/<id>, verifying meta and index CRCs (STRATA_ECORRUPT). */
int tsdb_block_open(const char *blocks_dir, const char *id, tsdb_block_t **out);
void tsdb_block_close(tsdb_block_t *b);
extern const tsdb_index_ops_t tsdb_block_index_ops;

/* Appends the samples of series idx in [mint, maxt] to *buf.  A chunk whose
 * page fails its CRC, decompression or decoding is STRATA_ECORRUPT, or, when
 * pc->on_damage is set, reported there and skipped (the other chunks are read). */
int tsdb_block_series_samples(const tsdb_block_t *b, uint32_t idx, int64_t mint, int64_t maxt,
                              tsdb_page_cache_t *pc, tsdb_sample_t **buf, size_t *n, size_t *cap);
/* Appends the stored rollup points of series idx at res. */
int tsdb_block_series_rollups(const tsdb_block_t *b, uint32_t idx, int64_t res, tsdb_page_cache_t *pc,
                              tsdb_rollup_point_t **buf, size_t *n, size_t *cap);

typedef struct tsdb_block_writer tsdb_block_writer_t;
/* Starts <blocks_dir>/<id>.tmp. level: 1 for a head cut, more for compactions;
 * zero_run_ms: the store's rollup_zero_run_ms, recorded in the meta. */
int tsdb_block_writer_new(const char *blocks_dir, uint32_t level, int64_t zero_run_ms,
                          tsdb_block_writer_t **out);
/* Raises the samples a chunk page may hold (TSDB_PAGE_MAX_SAMPLES at least,
 * and by default); call before the first add. */
void tsdb_block_writer_set_page_samples(tsdb_block_writer_t *w, size_t max);
/* Series must come in ascending label-set order with sorted, unique samples;
 * label strings must stay valid until finish/abort. */
int tsdb_block_writer_add(tsdb_block_writer_t *w, const tsdb_label_t *labels, size_t nlabels,
                          const tsdb_sample_t *s, size_t n);
/* Writes index and meta, fsyncs, renames into place; id_out gets the id.
 * STRATA_ENOTFOUND (and nothing on disk) when no series was added.
 * Frees the writer in every case. */
/* What the writer keeps per series for the index (block_index.c). */
typedef struct tsdb_block_wseries {
    const tsdb_label_t *labels;
    uint32_t nlabels, nchunks;
    size_t chunk0; /* index of its first chunk in the writer's chunk array */
    uint64_t r5_page, r1_page;
    uint32_t r5_off, r5_n, r1_off, r1_n;
} tsdb_block_wseries_t;
/* Appends the index of these series (chunk refs in cm) to ix. */
int tsdb_block_index_build(const tsdb_block_wseries_t *series, size_t nseries, const tsdb_block_chunk_t *cm,
                           enc_buf_t *ix);
/* Parses a loaded index into b (keeping p only on failure half-way, in b->mem). */
int tsdb_block_index_parse(tsdb_block_t *b, uint8_t *p, size_t n);
/* Frees what tsdb_block_index_parse allocated. */
void tsdb_block_index_free(tsdb_block_t *b);

int tsdb_block_writer_finish(tsdb_block_writer_t *w, char id_out[40]);
/* Appends index bytes compressed as the copy file and a compressed index file
 * hold them (format.h): u32 raw_len | u32 comp_len | u32 crc32c | zstd frame. */
int tsdb_block_index_zip(const uint8_t *ix, size_t n, enc_buf_t *out);
void tsdb_block_writer_abort(tsdb_block_writer_t *w);

/* Removes a block directory (files, then the directory). */
void tsdb_rm_tree(const char *path);

#endif
