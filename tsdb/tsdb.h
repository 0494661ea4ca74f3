/*
 * tsdb.h: the whole public contract of strata's storage engine.
 *
 * A database lives in one directory (held with an exclusive flock).  Series
 * are identified by their sorted label set; samples are (int64 ms, float64)
 * and round-trip bit-exactly (NaN payloads and the stale marker included).
 * Appends go to the WAL first, then to the in-memory head; the head is cut
 * into immutable blocks every block duration, blocks are compacted, and
 * retention drops whole blocks by time and by size.  Rollups (5m, 1h) are
 * written with every block so wide reads can avoid raw samples.
 *
 * tsdb knows nothing of HTTP, tenants or workloads: the ingest layer stamps a
 * tenant label and the API layer adds a matcher on it.
 *
 * Errors are the negative STRATA_E* codes of strata_err.h; 0 is success.
 * All functions are safe to call from several threads at once on one
 * tsdb_t, except tsdb_close(), which must be the last call.  A series set is
 * used by one thread at a time.
 */
#ifndef TSDB_H
#define TSDB_H

#include <stddef.h>
#include <stdint.h>

#include "strata_err.h"

/* Prometheus' stale marker: a NaN with this exact bit pattern. */
#define TSDB_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* 1 when v is the stale marker (bit-exact: other NaNs are values). */
static inline int tsdb_is_stale(double v)
{
    union {
        double d;
        uint64_t u;
    } x = { .d = v };
    return x.u == TSDB_STALE_NAN_BITS;
}

/* Most labels one series may have: tsdb_append refuses a batch holding a
 * series with more (STRATA_EINVAL). */
#define TSDB_MAX_LABELS 4096

typedef struct tsdb tsdb_t;
typedef struct tsdb_series_set tsdb_series_set_t;

typedef struct tsdb_label {
    const char *name;
    const char *value;
} tsdb_label_t;

typedef struct tsdb_sample {
    int64_t t; /* milliseconds since the Unix epoch */
    double v;
} tsdb_sample_t;

enum tsdb_fsync_policy {
    TSDB_FSYNC_ALWAYS,   /* fsync before tsdb_append returns */
    TSDB_FSYNC_INTERVAL, /* group commit: fsync every fsync_interval_ms */
    TSDB_FSYNC_NEVER,    /* leave it to the OS (data survives a process crash, not a power loss) */
};

typedef struct tsdb_options {
    const char *dir;              /* data directory; created if missing */
    int64_t block_duration_ms;    /* head cut interval, default 2h */
    int64_t retention_ms;         /* drop blocks older than this (0 = keep forever), default 15d */
    uint64_t retention_bytes;     /* drop oldest blocks beyond this size (0 = no limit) */
    int64_t ooo_window_ms;        /* accept samples this far behind a series' newest, default 10m */
    enum tsdb_fsync_policy fsync; /* default TSDB_FSYNC_INTERVAL */
    int fsync_interval_ms;        /* default 100 */
    uint64_t wal_segment_bytes;   /* default 64 MiB */
    int background;               /* 1 (default): a thread cuts, compacts and applies retention;
                                      0: only the tsdb_cut_head/tsdb_compact calls do (tests) */
    size_t page_cache_bytes;      /* cache of decompressed block pages, default 64 MiB (0: the
                                      default); one cache per process: the last tsdb_open sizes it */
    int64_t rollup_zero_run_ms;   /* runs of zeros longer than this count in a 1h rollup point's
                                      zero_inner_long, default 5 minutes (<= 0: the default) */
    int wal_retain;               /* 1: WAL segments are kept until a WAL cursor has committed
                                      past them (a remote-write shipper), whatever retention and
                                      checkpoints say; none is deleted before the cursor opens */
} tsdb_options_t;

/* Fills opts with the defaults above (dir = NULL). */
void tsdb_options_init(tsdb_options_t *opts);

/* Opens (creating if needed) and replays the WAL.  A torn or corrupt WAL
 * tail is cut off and logged; a block whose meta or index is damaged is moved
 * aside to <dir>/corrupt/ and logged (a damaged chunk or rollup page is found
 * on read, skipped and reported, never moving its block).  STRATA_ELOCKED if another process holds it. */
int tsdb_open(const tsdb_options_t *opts, tsdb_t **out);
/* Syncs the WAL, stops background work and frees everything. NULL is a no-op. */
void tsdb_close(tsdb_t *db);

/* ---- writing ---------------------------------------------------------- */

/* One series of a batch: labels sorted by name, unique, non-empty values,
 * already validated by the caller.  Samples in any order. */
typedef struct tsdb_series_input {
    const tsdb_label_t *labels;
    size_t nlabels;
    const tsdb_sample_t *samples;
    size_t nsamples;
} tsdb_series_input_t;

/* What tsdb_append did.  A sample is either appended, a duplicate (same
 * timestamp and same value bits as the stored one: a no-op), too old (more
 * than ooo_window behind the series' newest sample) or conflicting (same
 * timestamp, different value bits).  The last two are rejected. */
typedef struct tsdb_append_result {
    size_t appended;
    size_t duplicates;
    size_t too_old;
    size_t conflicting;
    size_t new_series;
    /* index into the input of the first series with a rejected sample, or SIZE_MAX */
    size_t first_rejected_series;
    int first_rejected_error; /* STRATA_ETOOOLD or STRATA_EDUPTS */
} tsdb_append_result_t;

/* Appends a batch.  Returns 0 once every accepted sample is in the WAL
 * (fsynced per the policy), so a 2xx may be sent.  Rejected samples are
 * counted in res, not errors.  A negative return (STRATA_EIO, STRATA_ENOSPC,
 * STRATA_ECLOSED) means nothing of the batch may be acknowledged. */
int tsdb_append(tsdb_t *db, const tsdb_series_input_t *series, size_t nseries, tsdb_append_result_t *res);

/* tsdb_append with series refs, for a caller that caches them (ingest's
 * label cache, docs/strata-load.md).  refs has nseries entries: refs[i] = 0
 * finds or creates series i by its labels; refs[i] = r names the series this
 * db returned as r before (a ref is never reused while the db is open), and
 * then series[i].labels may be NULL.  The caller vouches that a series given
 * both a ref and labels has exactly those labels.  On return every refs[i]
 * holds its series' ref.  When a ref given without labels names a series
 * the head has since dropped (or one not yet in the WAL), nothing is
 * appended and STRATA_ENOTFOUND is returned: call again with labels. */
int tsdb_append_refs(tsdb_t *db, const tsdb_series_input_t *series, size_t nseries, uint32_t *refs,
                     tsdb_append_result_t *res);

/* ---- reading ---------------------------------------------------------- */

enum tsdb_match_op {
    TSDB_MATCH_EQ,  /* name="value"  (value "" matches series without the label) */
    TSDB_MATCH_NEQ, /* name!="value" */
    TSDB_MATCH_RE,  /* name=~"re"    fully anchored POSIX ERE; a|b|c and abc.* are fast paths */
    TSDB_MATCH_NRE, /* name!~"re" */
};

typedef struct tsdb_matcher {
    enum tsdb_match_op op;
    const char *name;
    const char *value;
} tsdb_matcher_t;

/* Selects the series matching all matchers that have samples in [mint, maxt]
 * (inclusive), from the head and every block, merged and deduplicated.
 * At least one matcher must not match the empty string (STRATA_EINVAL). */
int tsdb_select(tsdb_t *db, const tsdb_matcher_t *matchers, size_t nmatchers, int64_t mint, int64_t maxt,
                tsdb_series_set_t **out);
/* tsdb_select with a deadline (tsdb_mono_ms(); 0 = none): past it, walking a
 * label's values for a regex (checked between values) or the matched series
 * fails with STRATA_ETIMEOUT, so a costly select neither runs on nor holds the
 * head lock (which appends wait for) long.  The set's own reads are not
 * bounded by it; the read seam (api/query/read.h) checks those. */
int tsdb_select_until(tsdb_t *db, const tsdb_matcher_t *matchers, size_t nmatchers, int64_t mint,
                      int64_t maxt, int64_t deadline_ms, tsdb_series_set_t **out);
/* CLOCK_MONOTONIC in ms: the clock of every read deadline. */
int64_t tsdb_mono_ms(void);

/* Advances to the next series in label order: 1 = there is one, 0 = end, <0 = error. */
int tsdb_series_set_next(tsdb_series_set_t *set);
/* Labels of the current series, sorted by name; valid until the next _next(). */
const tsdb_label_t *tsdb_series_set_labels(tsdb_series_set_t *set, size_t *nlabels);
/* Samples of the current series in [mint, maxt], ascending by time, without
 * duplicates; valid until the next _next().  A block chunk whose page fails
 * its CRC (or decompression, or decoding) is skipped: the samples returned
 * are the ones that could be read, and tsdb_series_set_damaged() says how
 * many damaged pages were skipped (docs/storage.md, "Damaged pages"). */
int tsdb_series_set_samples(tsdb_series_set_t *set, const tsdb_sample_t **samples, size_t *n);
/* Damaged block pages whose chunks this set's reads skipped so far (distinct
 * pages); *current (may be NULL) gets those skipped by the current series'
 * samples once they have been read (0 before).  0 and 0 for an intact read. */
uint64_t tsdb_series_set_damaged(const tsdb_series_set_t *set, uint64_t *current);
/* Marks the set as a one-pass scan: the pages it reads from disk are not kept
 * in the process-wide page cache (pages already there are still used), so a
 * long report does not push out what queries keep reading. */
void tsdb_series_set_stream(tsdb_series_set_t *set);
void tsdb_series_set_free(tsdb_series_set_t *set);

/* A rollup point summarises the raw samples in (t - resolution, t]. */
typedef struct tsdb_rollup_point {
    int64_t t;      /* end of the interval, a multiple of the resolution */
    uint32_t count; /* samples in the interval (stale markers excluded) */
    double sum, min, max;
    double last;    /* value of the newest sample in the interval */
    int64_t last_t; /* its timestamp */
    double first;   /* value of the oldest sample in the interval */
    int64_t first_t;
    /* counter increase: newest minus the last sample before the interval
     * (or the interval's first sample when there is none), summed over resets */
    double increase;
    /* What the holding rule needs (docs/storage.md, "Rollups": a sample holds
     * until the next one, at most the staleness), so that consumers can integrate
     * the step function exactly from rollups whenever every gap in the
     * interval is within their staleness.  TSDB_ROLLUP_1H points only: at
     * TSDB_ROLLUP_5M these are all 0 (not stored, to keep 5m rollups small). */
    uint32_t stale;        /* stale markers in the interval (a point may hold only these: count 0) */
    int64_t stale_t;       /* the newest one's time (0 when none) */
    int64_t gap_max;       /* widest gap between consecutive samples in the interval (0 with one) */
    double hold_sum;       /* sum over consecutive samples of v_i * (t_{i+1} - t_i), in value x ms:
                           the integral of the step function from first_t to last_t */
    double last_rise;      /* counter rise of the newest sample over the one before it in the
                           interval (a drop counts its whole value); 0 when it is the only one */
    double inner_increase; /* counter rises between the interval's own samples: `increase`
                              without the first sample's rise over an earlier one */
    /* Runs of samples equal to 0 (an idle GPU), with times of samples: */
    int64_t zero_lead_end;    /* first sample nonzero: first_t; else the first nonzero
                                 sample's time; INT64_MAX when every sample is 0 */
    int64_t zero_trail_start; /* newest sample 0: first sample of the run of zeros it ends;
                                 INT64_MAX when the newest sample is not 0 */
    int64_t zero_inner_max;   /* longest run of zeros between two nonzero samples, from its
                                 first zero to the next nonzero sample; 0 when none */
    int64_t zero_inner_long;  /* sum over those runs of their length beyond the store's
                                 rollup_zero_run_ms (tsdb_rollup_zero_run_ms()) */
} tsdb_rollup_point_t;

#define TSDB_ROLLUP_5M (5 * 60 * 1000)
#define TSDB_ROLLUP_1H (60 * 60 * 1000)

/* Rollup points of the current series at resolution TSDB_ROLLUP_5M or
 * TSDB_ROLLUP_1H whose intervals lie in [mint, maxt], ascending; computed from
 * stored rollups for blocks and from raw samples for the head (and, at 1h,
 * for blocks written before the holding-rule fields existed or with another
 * rollup_zero_run_ms).  An interval holding only
 * stale markers gives a point with count 0 (and only `t` and `stale` set).
 * Valid until the next _next(). */
int tsdb_series_set_rollups(tsdb_series_set_t *set, int64_t resolution, const tsdb_rollup_point_t **points,
                            size_t *n);

/* The zero-run minimum of the open store (its rollup_zero_run_ms option):
 * 1h rollup points' zero_inner_long counts zeros beyond it, whatever the
 * blocks were written with (those built with another are recomputed). */
int64_t tsdb_rollup_zero_run_ms(const tsdb_t *db);

/* Checks a =~ / !~ pattern before it reaches regcomp: glibc's compiler is
 * exponential in stacked and nested repetition ("(x?)++++" spins for minutes,
 * "x{1,32767}" takes gigabytes), so such patterns are refused with
 * STRATA_EBADREGEX and a reason in why (may be NULL).  tsdb_select applies it
 * to every regex matcher; parsers call it to answer a clear 400 early. */
int tsdb_regex_check(const char *pattern, char *why, size_t whycap);

/* Values of one label name across all series (sorted, unique), e.g. to list
 * tenants.  *values is malloc'd, the strings are owned by the db and valid
 * until tsdb_close(); free the array with free(). */
int tsdb_label_values(tsdb_t *db, const char *name, const char ***values, size_t *n);

/* ---- maintenance ------------------------------------------------------ */

/* Cuts the whole head into a block now (checkpointing the WAL), regardless of
 * the block duration.  Used by benchmarks and by tests. */
int tsdb_cut_head(tsdb_t *db);
/* Runs one compaction and retention pass now. */
int tsdb_compact(tsdb_t *db);
/* fsyncs the WAL now. */
int tsdb_sync(tsdb_t *db);

typedef struct tsdb_stats {
    uint64_t series;      /* series in the index */
    uint64_t head_series; /* series with samples in the head */
    uint64_t head_samples;
    uint64_t head_bytes; /* memory held by head chunks */
    uint64_t blocks;
    uint64_t block_bytes;      /* on disk */
    uint64_t wal_bytes;        /* on disk */
    uint64_t samples_appended; /* since open */
    uint64_t wal_fsyncs;
    double wal_fsync_seconds_total;
    uint64_t wal_corruptions; /* damaged WAL stretches skipped (or a torn tail cut) at open */
    uint64_t blocks_corrupt;  /* blocks set aside at open (meta or index damaged) */
    uint64_t
        block_pages_damaged; /* distinct block pages found damaged and not rebuilt since open (reads skip them) */
    uint64_t block_pages_rebuilt; /* distinct chunk pages found damaged and rebuilt from parity since open */
    uint64_t block_meta_repaired, block_index_repaired; /* meta/index files put back from the copy */
    uint64_t block_copy_repaired;                       /* copy files found damaged at open and rewritten */
    int64_t min_time, max_time;                         /* over all data, INT64_MAX/INT64_MIN when empty */
    int replaying;                                      /* 1 while the WAL is being replayed */
    uint64_t page_cache_bytes; /* decompressed block pages cached (process-wide, all dbs) */
} tsdb_stats_t;

void tsdb_get_stats(tsdb_t *db, tsdb_stats_t *stats);

/* ---- WAL cursor: reading the log in order (the remote-write shipper) ---- */

/* A position in the WAL: a segment number and a byte offset in it, always at
 * a record boundary.  {0, 0} means "the oldest record kept". */
typedef struct tsdb_wal_pos {
    uint64_t segment;
    uint64_t offset;
} tsdb_wal_pos_t;

/* A logged sample: ref names its series (tsdb_wal_cursor_series). */
typedef struct tsdb_ref_sample {
    uint64_t ref;
    int64_t t;
    double v;
} tsdb_ref_sample_t;

typedef struct tsdb_wal_cursor tsdb_wal_cursor_t;

/* Opens the one cursor of db at from (a position an earlier cursor gave;
 * {0, 0}: the oldest segment kept), learning the series the records after it
 * name from the checkpoint and segments before it.  A position whose segment
 * is gone (the store ran without wal_retain) resumes at the oldest segment
 * after it, logged; an offset past the durable end is cut to it.  With
 * wal_retain the cursor's segment is the WAL's floor from here on. */
int tsdb_wal_cursor_open(tsdb_t *db, tsdb_wal_pos_t from, tsdb_wal_cursor_t **out);
/* Reads whole records from the cursor's position, about max_bytes of them
 * (at least one record), and calls on_samples for each samples record (not
 * for the copies a checkpoint logs again) in log order; the series their refs
 * name are known during the call (tsdb_wal_cursor_series).  Returns the
 * number of records read (0: caught up with the durable end), or a negative
 * code (the callback's own negative return stops the read: the position
 * stays before that record).  Damaged stretches are skipped, logged and
 * counted (tsdb_wal_cursor_skipped_bytes). */
typedef int (*tsdb_wal_cursor_fn)(void *ctx, const tsdb_ref_sample_t *samples, size_t n);
int tsdb_wal_cursor_read(tsdb_wal_cursor_t *c, size_t max_bytes, tsdb_wal_cursor_fn on_samples, void *ctx);
/* The labels of ref as of the record being read (sorted), or NULL when no
 * SERIES record named it (its segment was damaged or deleted). */
const tsdb_label_t *tsdb_wal_cursor_series(const tsdb_wal_cursor_t *c, uint64_t ref, size_t *nlabels);
/* The position after the last record read. */
tsdb_wal_pos_t tsdb_wal_cursor_pos(const tsdb_wal_cursor_t *c);
/* Bytes of log from pos to the durable end (what a shipper has yet to send). */
uint64_t tsdb_wal_bytes_after(tsdb_t *db, tsdb_wal_pos_t pos);
/* Everything before pos is done with: with wal_retain the WAL may delete the
 * segments before pos's (at its next checkpoint). */
void tsdb_wal_cursor_commit(tsdb_wal_cursor_t *c, tsdb_wal_pos_t pos);
/* Bytes skipped as damaged, since open. */
uint64_t tsdb_wal_cursor_skipped_bytes(const tsdb_wal_cursor_t *c);
/* NULL is a no-op; the floor stays where the last commit put it. */
void tsdb_wal_cursor_close(tsdb_wal_cursor_t *c);

/* CRC32C (Castagnoli), continuing crc (0 to start): for the small state files
 * of the rooms above (the shipper's position). */
uint32_t tsdb_crc32c(uint32_t crc, const void *data, size_t len);

/* WAL fsync duration buckets for /metrics: called for every fsync. */
typedef void (*tsdb_fsync_observer_fn)(double seconds, void *ctx);
void tsdb_set_fsync_observer(tsdb_t *db, tsdb_fsync_observer_fn fn, void *ctx);

#endif
