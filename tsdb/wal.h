/*
 * wal.h: tsdb's write-ahead log (internal to tsdb/).
 *
 * <dir>/wal/ holds numbered segment files (00000001, ...) and at most two
 * checkpoints (checkpoint.00000007: the head's state when segment 7 began;
 * the previous one and its segments stay until the next checkpoint).
 * Each record is framed with its length and a CRC32C (format in
 * docs/storage.md).  Writers on several threads append whole batches; with
 * TSDB_FSYNC_ALWAYS concurrent batches share one fsync (group commit), and
 * tsdb_wal_append returns only after the fsync that covers its batch.
 */
#ifndef TSDB_WAL_H
#define TSDB_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "encoding.h" /* tsdb_crc32c */
#include "tsdb.h"

typedef struct tsdb_wal tsdb_wal_t;

/* A sample as logged: refs are series ids assigned by the head (tsdb.h). */
typedef tsdb_ref_sample_t tsdb_wal_sample_t;

/* A caller-owned record buffer: build it without holding any lock, then hand
 * it to tsdb_wal_append.  Reusable after tsdb_wal_batch_reset. */
typedef struct tsdb_wal_batch {
    uint8_t *buf;
    size_t len, cap;
} tsdb_wal_batch_t;

void tsdb_wal_batch_init(tsdb_wal_batch_t *b);
void tsdb_wal_batch_reset(tsdb_wal_batch_t *b);
void tsdb_wal_batch_free(tsdb_wal_batch_t *b);
/* Adds a series record (ref -> label set). */
int tsdb_wal_batch_add_series(tsdb_wal_batch_t *b, uint64_t ref, const tsdb_label_t *labels, size_t nlabels);
/* Adds a samples record. */
int tsdb_wal_batch_add_samples(tsdb_wal_batch_t *b, const tsdb_wal_sample_t *samples, size_t n);
/* Adds a samples-copy record: samples already logged once, logged again by a
 * checkpoint (replayed like samples; a WAL cursor skips them). */
int tsdb_wal_batch_add_copies(tsdb_wal_batch_t *b, const tsdb_wal_sample_t *samples, size_t n);

typedef struct tsdb_wal_options {
    enum tsdb_fsync_policy fsync;
    int fsync_interval_ms;
    uint64_t segment_bytes;
    /* Called after every segment/checkpoint fsync with its duration, from
     * whichever thread did it, sometimes with the WAL lock held: it must be
     * quick and must not call into the WAL.  Fixed at open; to change it
     * later, pass a trampoline that reads an atomically updated target. */
    void (*fsync_observer)(double seconds, void *ctx);
    void *fsync_observer_ctx;
    /* 1: no file is deleted until tsdb_wal_set_floor() names the oldest
     * segment still needed (a WAL cursor's), and none at or after it then. */
    int retain;
} tsdb_wal_options_t;

/* Replay callbacks: labels/samples are valid only during the call. */
typedef struct tsdb_wal_replay_ops {
    int (*on_series)(void *ctx, uint64_t ref, const tsdb_label_t *labels, size_t nlabels);
    int (*on_samples)(void *ctx, const tsdb_wal_sample_t *samples, size_t n);
    void *ctx;
    int skip_copies; /* 1: SAMPLES_COPY records are not delivered (a cursor) */
} tsdb_wal_replay_ops_t;

typedef struct tsdb_wal_replay_stats {
    uint64_t records, series, samples; /* good records; series and samples delivered */
    uint64_t corrupt_records;          /* damaged regions skipped (torn, bad length, failing CRC,
                                          malformed), missing segment ranges */
    uint64_t skipped_bytes;            /* bytes in damaged regions (copied to <db>/corrupt/ at open) */
    uint64_t truncated_bytes;          /* of those, the damaged tail cut off the last segment */
    uint64_t orphan_samples;           /* samples with no SERIES record for their ref before them
                                          (still delivered: the head drops them) */
    uint64_t fallback_series;          /* series taken from a damaged checkpoint's source files */
} tsdb_wal_replay_stats_t;

/* Replays the checkpoint then every later segment in order, calling ops for
 * each record.  A damaged stretch of a file is skipped: replay resumes at the
 * next offset holding a record whose length is plausible and whose CRC
 * checks, in that file and in later ones; each stretch is logged once and
 * copied to <dir>/corrupt/.  A damaged tail of the last segment is cut off,
 * so appends continue after the last good record.  Samples whose ref no
 * earlier SERIES record defined are counted (orphan_samples; the head drops
 * them).  When the checkpoint is damaged,
 * series it lost are taken from the files it was made from (the previous
 * checkpoint and the segments since, kept until the next checkpoint).  dir is
 * the database dir. */
int tsdb_wal_open(const char *dir, const tsdb_wal_options_t *opts, const tsdb_wal_replay_ops_t *ops,
                  tsdb_wal_replay_stats_t *stats, tsdb_wal_t **out);
/* Replays one segment or checkpoint image held in memory (header included)
 * the way tsdb_wal_open replays each file, skipping damaged stretches (there
 * is no checkpoint fallback here).  Counts into stats (may be NULL).
 * *valid_len (may be NULL) is len when the image is clean, else the end of
 * its last good record (where open would cut a damaged last segment); *why
 * (may be NULL) is the reason of the first damage, NULL when clean.  An empty
 * image is a clean empty segment; a short or garbled file header makes the
 * whole image one damaged region.  Returns 0, a callback's negative return,
 * STRATA_ENOMEM, or STRATA_EVERSION for a valid header of another format
 * version. */
int tsdb_wal_replay_buffer(const uint8_t *buf, size_t len, const tsdb_wal_replay_ops_t *ops,
                           tsdb_wal_replay_stats_t *stats, size_t *valid_len, const char **why);

/* Syncs and closes; NULL is a no-op. */
void tsdb_wal_close(tsdb_wal_t *wal);

/* Writes the batch (thread-safe) and returns once it is durable per policy. */
int tsdb_wal_append(tsdb_wal_t *wal, const tsdb_wal_batch_t *batch);
int tsdb_wal_sync(tsdb_wal_t *wal);

/* Checkpointing, done by the head cut:
 *   seg = tsdb_wal_rotate(wal)            -- with appends quiesced: later records go to seg
 *   tsdb_wal_checkpoint(wal, seg, &state) -- state = the head as of the rotation
 * writes checkpoint.<seg> (temp file, fsync, rename, fsync dir) then deletes
 * what the previous checkpoint replaced: checkpoints and segments older than
 * the previous checkpoint (kept as the fallback for a damaged new one). */
int tsdb_wal_rotate(tsdb_wal_t *wal, uint64_t *seg);
int tsdb_wal_checkpoint(tsdb_wal_t *wal, uint64_t seg, const tsdb_wal_batch_t *state);

uint64_t tsdb_wal_disk_bytes(tsdb_wal_t *wal);

/* ---- what a WAL cursor (wal_cursor.c) needs --------------------------- */

/* <db>/wal */
const char *tsdb_wal_path(const tsdb_wal_t *wal);
/* Segment and checkpoint numbers present, ascending (malloc'd, free both). */
int tsdb_wal_list(tsdb_wal_t *wal, uint64_t **segs, size_t *nsegs, uint64_t **ckpts, size_t *nckpts);
/* The segment being written and how far into it records are durable (per
 * the fsync policy; written with TSDB_FSYNC_NEVER): a reader stops there, so
 * a position it records is never past what survives a crash. */
void tsdb_wal_readable(tsdb_wal_t *wal, uint64_t *seg, uint64_t *end);
/* With retain set: segments >= seg (and the newest checkpoint <= seg, with
 * the segments after it, so the series they name can be read) are kept. */
void tsdb_wal_set_floor(tsdb_wal_t *wal, uint64_t seg);
/* Is there a whole record at buf[off..len) whose length is plausible and
 * whose CRC checks?  NULL and its body length, or why not ("torn record" and
 * "torn record header" when it runs past len). */
const char *tsdb_wal_frame_check(const uint8_t *buf, size_t len, size_t off, uint32_t *body_len);

#endif
