/*
 * promql_funcs.h: the pure numeric kernels of the PromQL engine, shared by
 * the evaluator (api/promql/eval*.c) and nothing outside the room.
 *
 * Nothing here reads the store, allocates or knows about labels: each kernel
 * takes numbers and gives numbers, so each can be tested against values
 * worked out by hand and against Prometheus' own definitions
 * (docs/promql.md).  The evaluator selects, drops stale markers, applies
 * offset and @, groups series, and calls these.
 */
#ifndef PROMQL_FUNCS_H
#define PROMQL_FUNCS_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb.h"

/* A function over one series' samples in a window (range_start, range_end]
 * (left-open, Prometheus 3), stale markers already removed, ascending:
 * rate, irate, increase, delta, idelta, deriv, predict_linear, resets,
 * changes, every *_over_time but absent_over_time, holt_winters /
 * double_exponential_smoothing.  params are the function's scalar
 * arguments in call order without the range vector (predict_linear's t,
 * quantile_over_time's phi, holt_winters' sf and tf).  Returns 1 with *out
 * set, or 0 when the function gives no point for this window (too few
 * samples; rate of one sample). */
typedef int (*promql_range_fn_t)(const tsdb_sample_t *s, size_t n, int64_t range_start_ms,
                                 int64_t range_end_ms, const double *params, double *out);
/* The kernel of range function name ("rate", "sum_over_time", ...), or NULL. */
promql_range_fn_t promql_range_fn_lookup(const char *name);

/* An element-wise function of one sample's value: abs, ceil, floor, exp,
 * sqrt, ln, log2, log10, sgn, the trigonometric ones, deg, rad, round
 * (params[0]: to_nearest, 1 when not given), clamp (params: min, max),
 * clamp_min, clamp_max, and the time functions of a value in seconds since
 * the epoch (day_of_month, day_of_week, day_of_year, days_in_month, hour,
 * minute, month, year; UTC). */
typedef double (*promql_elem_fn_t)(double v, const double *params);
/* The kernel of element-wise function name, or NULL. */
promql_elem_fn_t promql_elem_fn_lookup(const char *name);

/* The phi-quantile of values (sorted in place) as Prometheus' quantile
 * aggregation and quantile_over_time compute it: linear interpolation
 * between closest ranks; phi < 0 gives -Inf, phi > 1 +Inf, NaN phi NaN, no
 * values NaN. */
double promql_quantile(double phi, double *values, size_t n);

/* One classic histogram bucket: its `le` bound and cumulative count. */
typedef struct promql_bucket {
    double upper;
    double count;
} promql_bucket_t;

/* histogram_quantile's answer for one series group's buckets (sorted in
 * place by upper): Prometheus' bucketQuantile, with its monotonicity fix,
 * NaN when there is no +Inf bucket or fewer than 2 buckets, +-Inf for phi
 * out of [0, 1]. */
double promql_bucket_quantile(double phi, promql_bucket_t *buckets, size_t n);

/* Translates an RE2 pattern, as PromQL writes it (matchers, label_replace),
 * into a POSIX extended regex with the same meaning when fully anchored:
 * \d \w \s \D \W \S, character-class shorthands inside [], escaped
 * metacharacters, (?:...) groups, (?i) at the start (*icase set), and
 * Prometheus 3's `.` matching newlines.  The result is written to out (NUL
 * terminated).  0, or STRATA_EBADREGEX with a reason in why for what RE2
 * accepts but has no POSIX equivalent (lazy quantifiers, lookaround is
 * not RE2 either) or what is not a valid RE2 pattern; STRATA_EBUFSMALL. */
int promql_regex_to_posix(const char *re2, char *out, size_t outcap, int *icase, char *why, size_t whycap);

#endif
