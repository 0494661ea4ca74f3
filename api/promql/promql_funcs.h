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
/* The extrapolation step of rate, increase and delta (Prometheus'
 * extrapolatedRate) from what it needs of a window: the rise `result`
 * (counter-corrected when is_counter), the first and last samples' times,
 * the first value and the number of samples n.  The rate kernel calls it
 * over raw samples and the evaluator over rollup points, so both give one
 * answer.  Returns 0 (no point) when n < 2. */
int promql_extrapolate_rate(double result, int64_t first_t, double first, int64_t last_t, uint64_t n,
                            int64_t range_start, int64_t range_end, int is_counter, int is_rate, double *out);

/* The kernel of range function name ("rate", "sum_over_time", ...), or NULL.
 * Also "first_over_time" (Prometheus 3, experimental).  Notes for callers:
 *   - rate divides by (range_end - range_start) in seconds;
 *   - predict_linear evaluates the regression line at range_end + params[0]
 *     seconds and reads range_end for nothing else; Prometheus evaluates it
 *     at the step's evaluation time + params[0], which differs from the
 *     window's end under offset and @: pass the evaluation time as
 *     range_end there;
 *   - resets, changes and every *_over_time give a point for n >= 1; rate,
 *     increase, delta, irate, idelta, deriv, predict_linear, holt_winters /
 *     double_exponential_smoothing need n >= 2;
 *   - holt_winters / double_exponential_smoothing give no point for sf or
 *     tf outside (0, 1): Prometheus fails the query, so the caller checks
 *     promql_smoothing_check first. */
promql_range_fn_t promql_range_fn_lookup(const char *name);

/* Prometheus' check of holt_winters / double_exponential_smoothing's
 * factors: 0, or STRATA_EEXEC (422 execution) with its message, e.g.
 * "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000".  NaN
 * passes, as there.  Prometheus fails whenever the function runs on a
 * series, even one with fewer than 2 samples. */
int promql_smoothing_check(double sf, double tf, char *msg, size_t msgcap);

/* An element-wise function of one sample's value: abs, ceil, floor, exp,
 * sqrt, ln, log2, log10, sgn, the trigonometric ones, deg, rad, round
 * (params[0]: to_nearest, 1 when not given), clamp (params: min, max),
 * clamp_min, clamp_max, and the time functions of a value in seconds since
 * the epoch (day_of_month, day_of_week, day_of_year, days_in_month, hour,
 * minute, month, year; UTC).  clamp with max < min gives no series at all
 * in Prometheus: the caller checks params[1] < params[0] and drops the
 * vector (the kernel would answer min).  round with params NULL rounds to
 * 1.  The time functions truncate toward zero as Go's int64(v); NaN, +-Inf
 * and values beyond int64 give NaN (Prometheus gives a meaningless date). */
typedef double (*promql_elem_fn_t)(double v, const double *params);
/* The kernel of element-wise function name, or NULL. */
promql_elem_fn_t promql_elem_fn_lookup(const char *name);

/* The phi-quantile of values (sorted in place) as Prometheus' quantile
 * aggregation and quantile_over_time compute it: linear interpolation
 * between closest ranks; phi < 0 gives -Inf, phi > 1 +Inf, NaN phi NaN, no
 * values NaN. */
double promql_quantile(double phi, double *values, size_t n);

/* Translates an RE2 pattern, as PromQL writes it (matchers, label_replace;
 * Go's regexp syntax), into a POSIX extended regex for glibc's
 * regcomp(REG_EXTENDED) without REG_NEWLINE, in the C locale, with the
 * same meaning when fully anchored.  The output is NOT anchored: the caller
 * wraps it as "^(" out ")$" (tsdb/index.c does so for =~ and !~ matchers;
 * label_replace must do the same), which adds one group in front.
 *   - \d \w \s \D \W \S (inside [] too), [[:alpha:]] classes, escaped
 *     metacharacters and punctuation, \t \n \r \f \v \a, \x41, \x{e9}, octal
 *     \012, \Q...\E, \A and \z, \b and \B (glibc's own, same ASCII words);
 *   - (?:...) and (?P<name>...) / (?<name>...) become plain groups, so group
 *     numbers shift: promql_regex_translate's groups map gives each RE2
 *     capture group's POSIX number and name;
 *   - flags (?i) (?s) (?-s) (?U) anywhere, (?i:...) groups: case folding is
 *     spelled out as [aA] classes (*icase is always 0); `.` matches
 *     newlines (Prometheus 3's (?s:...));
 *   - a repeated non-ASCII character is grouped so the whole character
 *     repeats; `.` and negated classes (\D [^a] ...) match one character,
 *     ASCII or a UTF-8 sequence, through a group, except under * where
 *     matching bytes gives the same answer (".*" stays ".*"), also under
 *     {n,m} (".{2}" does not match "\xc3\xa9");
 *   - non-greedy *? +? ?? {n,m}? and (?U) become greedy (fully anchored,
 *     the same strings match) unless a groups map is given and the pattern
 *     captures: RE2 would capture other text, so that is refused;
 *   - \p{Han} \P{Han} \p{^Han} (Go 1.20's table, Unicode 13) as exact
 *     UTF-8 byte sequences, \p{Any}.
 * Refused with STRATA_EBADREGEX and a reason in why: what RE2 accepts but
 * POSIX cannot say here (other Unicode classes: \pL, \p{Lu}, \pN have
 * hundreds of ranges, several KB exactly; \p inside []; (?m)
 * with ^ or $, non-ASCII characters inside [], repeating ^ $ \b), what is
 * not RE2 (unbalanced parentheses or brackets, a** and other stacked
 * repetition, * with nothing before it, {1001}, backreferences \1,
 * lookaround, bad escapes, invalid UTF-8), a NUL, and what
 * tsdb_regex_check refuses as pathological, and a translation over 1024
 * bytes.  STRATA_EBUFSMALL when out is too small: 1025 bytes always do.
 * Known difference: (?i) folds ASCII letters only ("(?i)é" does not
 * match "É"). */
int promql_regex_to_posix(const char *re2, char *out, size_t outcap, int *icase, char *why, size_t whycap);

#define PROMQL_REGEX_MAX_GROUPS 64

/* The capture groups of a translated pattern, in RE2's numbering. */
typedef struct promql_regex_groups {
    int n;                                 /* RE2 capture groups */
    int posix[PROMQL_REGEX_MAX_GROUPS];    /* [i]: POSIX group number of RE2 group i + 1 (before anchoring) */
    int name_off[PROMQL_REGEX_MAX_GROUPS]; /* [i]: offset of its name in the RE2 pattern */
    int name_len[PROMQL_REGEX_MAX_GROUPS]; /* [i]: its length, 0 for an unnamed group */
} promql_regex_groups_t;

/* promql_regex_to_posix with the groups map (may be NULL); with a map, a
 * pattern of more than PROMQL_REGEX_MAX_GROUPS capture groups is refused. */
int promql_regex_translate(const char *re2, char *out, size_t outcap, promql_regex_groups_t *groups,
                           char *why, size_t whycap);

#endif
