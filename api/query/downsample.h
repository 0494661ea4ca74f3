/*
 * downsample.h: the read-side math of the workloads metrics API and reports
 * (docs/downsampling.md), with no HTTP and no store access.
 *
 * Pipeline for one metricType:
 *   1. a bucket layout over [start, end]:           api_buckets_init / _native
 *   2. per series, one point per non-empty bucket:  api_downsample (raw samples),
 *                                                   api_downsample_rollups (aligned)
 *                                                   or api_downsample_mixed
 *   3. across series, one point per step:           api_combiner_* (sum/avg/count),
 *                                                   or keep each series (passthrough)
 *   4. histograms: per-`le` increases summed:       api_hist_* (cumulative counts,
 *                                                   histogram_quantile)
 * The holding rule (latest values, integrals) is holding.h.
 *
 * Ownership: nothing here calls malloc.  Functions write into arrays the caller
 * passes (with their capacity), or allocate from the strata_arena_t the caller
 * passes; such objects live until that arena is reset or freed.  Inputs are
 * only read, and never retained past the call, except where a comment says so.
 * Objects are used by one thread at a time; everything else is reentrant.
 *
 * Sample semantics shared by every function:
 *   - samples are ascending by time with unique timestamps (as tsdb returns them);
 *   - the stale marker (bits TSDB_STALE_NAN_BITS) is never aggregated; it ends
 *     the value under the holding rule at once;
 *   - any other NaN is dropped as if it had never been sent, as VictoriaMetrics
 *     does: not counted, not aggregated, no presence, and it neither ends nor
 *     replaces the value being held;
 *   - infinities are ordinary values.
 *
 * Errors: STRATA_EINVAL (bad arguments), STRATA_ELIMIT (more points than the
 * output may hold: for native layouts this is --max-points, which the HTTP
 * layer answers with 400), STRATA_ENOMEM (arena exhausted or capped),
 * STRATA_ENOTFOUND (no value: see each function).
 */
#ifndef API_DOWNSAMPLE_H
#define API_DOWNSAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "strata_arena.h"
#include "tsdb.h"

/* --------------------------------------------------------------------------
 * Bucket layouts.
 *
 * N >= 1 (api_buckets_init): D = end - start is cut into N buckets whose edges
 * are e_i = start + floor(i * D / N), i = 0..N.  When N divides D every bucket
 * is D/N ms wide; otherwise widths are floor(D/N) or floor(D/N)+1 ms, spread
 * evenly, and the last edge is exactly `end`.  Bucket i (1-based) covers
 * (e_{i-1}, e_i]; bucket 1 also includes `start` itself.  Its point timestamp
 * is e_i.  Requires start < end and 1 <= N <= D (every bucket >= 1 ms).
 *
 * Native (api_buckets_native, numberOfSamples = 0): no buckets.  The layout is
 * the one window [start, end] (n = 1, e_0 = start, e_1 = end), and
 * api_downsample() writes one point per stored sample in it at the sample's
 * own timestamp (see there), at most max_points per series (STRATA_ELIMIT).
 * Native layouts are never served from rollups.
 *
 * The struct is a plain value so it can live on the stack; treat the fields
 * as read-only and set them only through the two init functions.
 * ------------------------------------------------------------------------ */
typedef struct api_buckets {
    int64_t start, end;
    int64_t n;         /* number of buckets */
    int64_t width;     /* floor((end-start)/n) for N >= 1; end - start for native */
    int native;        /* 1 for a native layout */
    size_t max_points; /* output capacity a series needs (N, or max_points) */
} api_buckets_t;

int api_buckets_init(api_buckets_t *b, int64_t start, int64_t end, uint32_t n);
int api_buckets_native(api_buckets_t *b, int64_t start, int64_t end, size_t max_points);
/* Edge e_i, 0 <= i <= n (e_0 = start, e_n = end). */
int64_t api_buckets_edge(const api_buckets_t *b, int64_t i);
/* 1-based bucket holding instant t, or 0 when t is outside [start, end]. */
int64_t api_buckets_index(const api_buckets_t *b, int64_t t);
/* Points one series can produce: size per-series output arrays with this. */
size_t api_buckets_capacity(const api_buckets_t *b);

/* --------------------------------------------------------------------------
 * Per-series aggregation within a step.
 * ------------------------------------------------------------------------ */
enum api_agg {
    API_AGG_AVG,  /* mean of the bucket's values (compensated sum / count) */
    API_AGG_LAST, /* value of the newest sample in the bucket */
    API_AGG_MAX,
    API_AGG_MIN,
    API_AGG_SUM,
    API_AGG_COUNT,    /* number of samples in the bucket */
    API_AGG_PRESENT,  /* 1 for every bucket holding at least one sample */
    API_AGG_INCREASE, /* counter increase, never extrapolated (below) */
    API_AGG_RATE,     /* increase / the bucket's own width in seconds */
};

/* One output point: the bucket's end (native: the sample's time) and its value. */
typedef struct api_point {
    int64_t t;
    double v;
} api_point_t;

/* Aggregates one series' samples into b's buckets.  Writes one point per
 * bucket that holds at least one sample (stale markers and NaNs do not count),
 * ascending, into out[0..cap); returns how many, or STRATA_ELIMIT when more
 * than cap would be needed (cap >= api_buckets_capacity(b) never fails for
 * N >= 1 layouts).
 *
 * Increase, as VictoriaMetrics' MetricsQL increase() without its first-sample
 * heuristics: bucket value = last - prev + (sum of the values just before each
 * drop), where prev is the last sample before the bucket, or the bucket's
 * first sample when there is none.  A drop means the counter restarted from
 * 0, so the new value itself is the increase since the restart; integer
 * counters therefore give integer increases.  Samples before `start` may be
 * passed: they are never aggregated, but the last of them is the baseline
 * (prev) of bucket 1.  Stale markers are skipped, as Prometheus and
 * VictoriaMetrics drop them from range vectors, so they do not break the
 * chain: a counter that comes back lower is a reset, higher continues.
 *
 * Native layouts (numberOfSamples = 0): one point per sample in [start, end],
 * at the sample's own timestamp, never moved to a grid.  avg, last, max, min
 * and sum give the value itself; count and present give 1.  increase gives,
 * at each sample, the increase since the previous sample (stale markers and
 * NaNs skipped): v - prev, or v itself when v < prev (a reset); rate divides
 * that by the time since the previous sample in seconds.  A counter's first
 * sample in range has a point only when a sample before `start` was passed
 * (its baseline).  Stale markers and NaNs are never points. */
int api_downsample(const api_buckets_t *b, enum api_agg agg, const tsdb_sample_t *s, size_t n,
                   api_point_t *out, size_t cap);

/* --------------------------------------------------------------------------
 * The same aggregations from rollups (tsdb_rollup_point_t, 5m or 1h).
 *
 * A rollup interval (t-R, t] is attributed to the bucket holding its first
 * millisecond t-R+1.  When every edge e_0..e_n is a multiple of R (the layout
 * is "aligned"), that is exactly the bucket holding all of the interval's
 * samples, and the result equals api_downsample() on the raw samples with two
 * caveats: (1) a sample exactly at `start` belongs to bucket 1 when read raw,
 * but to the interval ending at `start`, which is not read; (2) sum, avg,
 * increase and rate add per-interval partial sums, so they are bit-identical
 * only when those additions are exact (integer values below 2^53, as counters
 * and most GPU gauges are), else equal within rounding.  Increase also
 * assumes the store computed each interval's increase from the same
 * predecessor sample the raw path would use.
 *
 * Misaligned edges: the interval still goes to the bucket holding its first
 * millisecond, i.e. every edge is effectively moved up to the next multiple of
 * R.  Each bucket then summarises a window shifted later by less than R; the
 * data after `end` up to the next multiple of R is included and the data from
 * `start` to the next multiple of R is not.  api_rollup_choose() only picks a
 * resolution where that shift is small against the bucket width.
 * ------------------------------------------------------------------------ */

/* 1 when every edge of b is a multiple of resolution and every bucket is at
 * least that wide, else 0. */
int api_rollup_aligned(const api_buckets_t *b, int64_t resolution);
/* Which resolution to read: 0 (raw samples), TSDB_ROLLUP_5M or TSDB_ROLLUP_1H.
 * First an aligned one, exact as above (1h before 5m); else a misaligned one
 * when the narrowest bucket is at least 12 x R wide (1h before 5m), so edges
 * move by less than 1/12 of a bucket.  Native layouts read raw unless aligned.
 * The metrics query no longer uses the misaligned choice: it reads such
 * layouts mixed (api_rollup_mixed_choose), exactly. */
int64_t api_rollup_choose(const api_buckets_t *b);
/* The rollup points api_downsample_rollups() uses for b are those whose end
 * t lies in [*tmin, *tmax]: the first interval beginning at or after start
 * through the one holding end, i.e. tmin = the first multiple of R >=
 * start + R - 1, tmax = the first multiple of R >= end.  Every interval read
 * lies inside [start, tmax]: select [start, tmax] for tsdb_series_set_rollups(),
 * which keeps the intervals lying fully inside the selected range. */
int api_rollup_range(const api_buckets_t *b, int64_t resolution, int64_t *tmin, int64_t *tmax);
/* Like api_downsample() over rollup points of one resolution (ascending).
 * Points with count 0 hold no sample and are skipped.  STRATA_EINVAL for a
 * native layout (rollups cannot give per-sample points). */
int api_downsample_rollups(const api_buckets_t *b, enum api_agg agg, int64_t resolution,
                           const tsdb_rollup_point_t *p, size_t n, api_point_t *out, size_t cap);

/* --------------------------------------------------------------------------
 * Mixed: exact answers for buckets wider than a rollup interval whose edges
 * are off the rollup grid (docs/downsampling.md, section 3, "Mixed").
 *
 * Each 5m (or 1h) interval (t-R, t] that lies whole inside one bucket is
 * taken from its rollup point, and the partial intervals at the bucket's
 * edges from the raw samples, so the answer is api_downsample()'s on the
 * same samples.  A point stands for its interval only when it provably
 * gives the same value: it holds a sample, no NaN (its sum is finite),
 * and, for increase/rate, no counter reset (prev <= first = min, last =
 * max, and the store's increase is last - prev within count x 2^-52 of the
 * larger magnitude); any other interval is read raw.  count, present, min,
 * max, last, increase and rate are then bit-identical to api_downsample();
 * avg and sum add the interval's plain sum as one term of the compensated
 * sum: bit-identical when the additions are exact (integer values below
 * 2^53, dyadic values of a common scale), else within count x 2^-52 of the
 * sum of magnitudes per interval.
 *
 * s: the series' raw samples over [start - lookback, end] (all of them: an
 * edge can fall anywhere); p: its rollup points of `resolution` whose
 * intervals lie inside the selected range, ascending. */
/* The resolution for api_downsample_mixed(), 0 when no bucket is wide enough
 * (or native): TSDB_ROLLUP_1H when every bucket is >= 12 h wide, else
 * TSDB_ROLLUP_5M when every bucket is >= 5 min wide. */
int64_t api_rollup_mixed_choose(const api_buckets_t *b);
int api_downsample_mixed(const api_buckets_t *b, enum api_agg agg, int64_t resolution, const tsdb_sample_t *s,
                         size_t n, const tsdb_rollup_point_t *p, size_t np, api_point_t *out, size_t cap);

/* --------------------------------------------------------------------------
 * Across series, per step.
 * ------------------------------------------------------------------------ */
enum api_combine {
    API_COMBINE_NONE,  /* per-series passthrough: emit each series' points as they are;
                          there is nothing to combine (the combiner rejects it) */
    API_COMBINE_SUM,   /* sum over the series that have a point at that step */
    API_COMBINE_AVG,   /* that sum / the number of such series */
    API_COMBINE_COUNT, /* the number of such series */
};

typedef struct api_combiner api_combiner_t;

/* A combiner allocated from arena (all its memory comes from there). */
int api_combiner_new(strata_arena_t *arena, enum api_combine op, api_combiner_t **out);
/* Adds one series' points (ascending by t, as api_downsample writes them).
 * The points are copied; pts may be reused after the call. */
int api_combiner_add(api_combiner_t *c, const api_point_t *pts, size_t n);
/* Number of steps that have at least one series so far. */
size_t api_combiner_count(const api_combiner_t *c);
/* Writes the combined points, ascending; returns how many or STRATA_ELIMIT
 * when cap < api_combiner_count(). */
int api_combiner_result(const api_combiner_t *c, api_point_t *out, size_t cap);

/* --------------------------------------------------------------------------
 * Classic histograms (`_bucket` series with an `le` label).
 * ------------------------------------------------------------------------ */

/* One `_bucket` series after api_downsample(API_AGG_INCREASE): its le label
 * as sent and its per-step increases. */
typedef struct api_hist_input {
    const char *le;
    const api_point_t *points;
    size_t n;
} api_hist_input_t;

typedef struct api_hist api_hist_t;

/* Sums the inputs per le string (any number of series per le, e.g. one per
 * pod) over the union of their steps.  The le strings are copied into the
 * arena.  An le that does not parse as a number (strtod, the whole string;
 * "+Inf" included) or is NaN is ignored, as Prometheus ignores such series.
 * Distinct strings stay distinct even if they denote the same bound ("1" and
 * "1.0"); they are ordered by bound, ties by first appearance. */
int api_hist_build(strata_arena_t *arena, const api_hist_input_t *in, size_t nin, api_hist_t **out);
size_t api_hist_nles(const api_hist_t *h);
const char *api_hist_le(const api_hist_t *h, size_t j); /* j-th le, ascending by bound */
size_t api_hist_nsteps(const api_hist_t *h);
int64_t api_hist_step_time(const api_hist_t *h, size_t i); /* ascending */
/* Cumulative count (increase) of le j at step i; 0 when no series of that le
 * had a point at that step ("zeros included"). */
double api_hist_count(const api_hist_t *h, size_t i, size_t j);
/* The q-quantile at step i, exactly as Prometheus' histogram_quantile (see
 * api_histogram_quantile).  STRATA_ENOTFOUND where Prometheus gives NaN:
 * total count 0 (the step is omitted from percentile output), no +Inf
 * bucket, or fewer than two distinct bounds. */
int api_hist_quantile(api_hist_t *h, size_t i, double q, double *out);

typedef struct api_hist_bucket {
    double upper; /* le */
    double count; /* cumulative */
} api_hist_bucket_t;

/* Prometheus' bucketQuantile for classic histograms: sorts b by upper bound
 * (in place), requires a +Inf bucket, merges equal bounds (summing counts),
 * ignores relative differences below 1e-12 between neighbours and forces
 * monotonic counts, then interpolates linearly inside the bucket holding rank
 * q x total; the lowest bucket interpolates from 0 when its bound is > 0
 * (else returns its bound); a rank in the +Inf bucket returns the previous
 * bucket's bound.  NaN for an empty total, q NaN, < 2 buckets or no +Inf;
 * -Inf for q < 0, +Inf for q > 1.  n must be >= 1. */
double api_histogram_quantile(double q, api_hist_bucket_t *b, size_t n);
/* The same, and *forced_monotonic (may be NULL) set to 1 when a real
 * decrease (not float noise) had to be lifted to make the counts monotonic,
 * for an answer that is not NaN: PromQL reports it as an info annotation. */
double api_histogram_quantile_fixed(double q, api_hist_bucket_t *b, size_t n, int *forced_monotonic);

#endif
