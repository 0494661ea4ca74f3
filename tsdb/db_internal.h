/*
 * db_internal.h: the database object and what its files share (internal to
 * tsdb/).  See docs/storage.md, "Source layout", for which file does what.
 *
 * Locking (always taken in this order):
 *   gate       rwlock: appends hold it shared from classification until their
 *              samples are visible; a head cut holds it exclusively while it
 *              drops what its block holds and rotates the WAL, so no batch is
 *              half-applied across the rotation ("quiesce appends").
 *              Writer-preferring, so a cut is not starved by appends.
 *   head_lock  rwlock over the head: series table, postings, sample buffers,
 *              symbols.  Readers copy what they need and let go.
 *   blocks_mu  the block list and block reference counts.
 * maint_mu serialises cut, compaction and retention with each other.
 *
 * An append classifies its samples and creates its series under head_lock,
 * writes the WAL with no lock but the shared gate (so concurrent batches
 * share an fsync), then makes the samples visible.  A series' SERIES record
 * is logged by every batch until one of them reached the WAL, so a failed
 * WAL write never leaves samples whose series the log does not know.
 */
#ifndef TSDB_DB_INTERNAL_H
#define TSDB_DB_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "block_internal.h"
#include "tsdb.h"
#include "tsdb_internal.h"
#include "wal.h"

typedef struct hseries hseries_t;

struct tsdb {
    tsdb_options_t opts;
    char *dir, *blocks_dir, *corrupt_dir;
    int lock_fd;
    pthread_rwlock_t gate, head_lock;
    pthread_mutex_t blocks_mu, maint_mu, obs_mu;

    tsdb_symtab_t syms;
    tsdb_head_index_t hidx;
    hseries_t **series; /* by ref; NULL once collected */
    size_t series_cap;
    uint32_t next_ref;
    uint64_t *smap; /* label-set hash table: hash >> 32 << 32 | ref + 1, 0 = empty */
    size_t smap_slots, smap_n;
    uint64_t head_series, head_samples, head_bytes;
    int64_t head_mint, head_maxt;
    struct {
        uint64_t from;
        uint32_t to;
    } * alias; /* replay: WAL ref -> live ref */
    size_t nalias, alias_cap;

    tsdb_block_t **blocks; /* live blocks, each holding one reference */
    size_t nblocks, blocks_cap;

    tsdb_wal_t *wal;
    tsdb_fsync_observer_fn obs_fn;
    void *obs_ctx;
    double fsync_seconds;
    atomic_uint_fast64_t samples_appended, wal_fsyncs, blocks_corrupt, block_pages_damaged;
    /* repairs: chunk pages rebuilt from parity (blocks point here), meta and
     * index files put back from the copy, copies rewritten (at block open) */
    atomic_uint_fast64_t block_pages_rebuilt, block_meta_repaired, block_index_repaired, block_copy_repaired;
    uint64_t wal_corruptions;
    atomic_int replaying, closed;
    atomic_int warned_far_range; /* compact.c: logged once per open */
    int cut_pending;             /* compact.c, maint_mu: head trimmed, WAL not yet checkpointed */

    pthread_t bg;
    int bg_started, stopping;
    pthread_mutex_t bg_mu;
    pthread_cond_t bg_cond;
};

/* ---- block list (db.c) -------------------------------------------------- */
/* Drops a reference; the last one closes the block (and removes its dir when dropped). */
void db_block_unref_locked(tsdb_t *db, tsdb_block_t *b);
void db_block_unref(tsdb_t *db, tsdb_block_t *b);
/* Takes b off the list (blocks_mu held) and drops the list's reference. */
void db_blocks_remove_locked(tsdb_t *db, tsdb_block_t *b);
/* Adds b, kept sorted by (mint, id), with one reference (blocks_mu held). */
int db_blocks_add_locked(tsdb_t *db, tsdb_block_t *b);
/* A page of b (file 0 chunks, 1 rollups, 2 rollups1h) failed its CRC,
 * decompression or decoding: remembered in b, counted and logged the first
 * time.  The block stays listed; its other pages are still read. */
void db_block_page_damaged(tsdb_t *db, tsdb_block_t *b, int file, uint64_t page);
/* 1 when a damaged page of b has been found (compaction leaves b as it is). */
int db_block_damaged(tsdb_t *db, const tsdb_block_t *b);
/* Snapshot of the live blocks overlapping [mint, maxt], each referenced. */
int db_blocks_snapshot(tsdb_t *db, int64_t mint, int64_t maxt, tsdb_block_t ***out, size_t *n);

/* ---- series sets (querier.c) --------------------------------------------- */
enum querier_flags {
    QUERIER_HEAD = 1 << 0,        /* include the head */
    QUERIER_LAZY_HEAD = 1 << 1,   /* head samples read at next() (a cut: appends are quiesced) */
    QUERIER_SNAP_BLOCKS = 1 << 2, /* take the live blocks overlapping [mint, maxt] */
};

typedef struct querier_params {
    const tsdb_cmatcher_t *cm; /* NULL: every series */
    size_t ncm;
    unsigned flags;      /* enum querier_flags */
    tsdb_block_t **blks; /* blocks to read (references taken over), or NULL */
    size_t nblks;
    int64_t mint, maxt;
    int64_t deadline_ms; /* tsdb_mono_ms() past which building fails STRATA_ETIMEOUT; 0 = none */
} querier_params_t;

/* Builds a set over what p names. */
int querier_build(tsdb_t *db, const querier_params_t *p, tsdb_series_set_t **out);
/* The head ref (or block-local id) of the current series' first source. */
uint32_t querier_current_id(const tsdb_series_set_t *set);

/* ---- WAL glue (head_wal.c) ------------------------------------------------ */
void head_wal_fsync_observer(double seconds, void *ctx);
int head_wal_replay_series(void *ctx, uint64_t ref, const tsdb_label_t *labels, size_t n);
int head_wal_replay_samples(void *ctx, const tsdb_wal_sample_t *smp, size_t n);
/* Writes checkpoint.<seg> and the head's samples after it (see head_wal.c). */
int head_wal_checkpoint(tsdb_t *db, uint64_t seg);

/* ---- maintenance (compact.c), maint_mu held ----------------------------- */
int compact_cut_if_due_locked(tsdb_t *db);
int compact_run_locked(tsdb_t *db);
void compact_retention_locked(tsdb_t *db);

#endif
