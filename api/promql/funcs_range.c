/*
 * funcs_range.c: the range-vector kernels of promql_funcs.h (rate, irate,
 * increase, delta, idelta, deriv, predict_linear, resets, changes, every
 * *_over_time but absent_over_time, holt_winters and
 * double_exponential_smoothing), with Prometheus 3's definitions
 * (docs/promql.md, "Kernels").
 *
 * Each kernel sees one series' samples of a window (range_start, range_end],
 * stale markers removed, ascending, and allocates nothing: the quantile and
 * median based kernels sort a stack copy of short windows and select the
 * order statistics of long ones in place, by bisection over the ordered bit
 * patterns of the values.
 */
#include "promql_funcs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "strata_err.h"

/* Neumaier's compensated sum, as Prometheus' kahansum.Inc: an infinity
 * clears the compensation so the result stays the infinity, not NaN. */
static void ksum_inc(double inc, double *sum, double *c)
{
    double t = *sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(*sum) >= fabs(inc))
        *c += (*sum - t) + inc;
    else
        *c += (inc - t) + *sum;
    *sum = t;
}

/* rate, increase and delta: Prometheus' extrapolatedRate.  The counter
 * adjustment adds the value before each drop; the result is extrapolated to
 * the window's edges when the first/last sample lies within 1.1 average
 * intervals of them, else by half an interval; a counter is not
 * extrapolated below zero.  Prometheus 3 caps the start at half an
 * interval first and then takes a nearer zero point; 2.x took the zero
 * point first and capped only what was still beyond 1.1 intervals, so a
 * zero point between 0.5 and 1.1 intervals away counts there, not here. */
static int extrapolated_rate(const tsdb_sample_t *s, size_t n, int64_t range_start, int64_t range_end,
                             int is_counter, int is_rate, double *out)
{
    if (n < 2) return 0;
    double result = s[n - 1].v - s[0].v;
    if (is_counter)
        for (size_t i = 1; i < n; i++)
            if (s[i].v < s[i - 1].v) result += s[i - 1].v;
    double to_start = (double)(s[0].t - range_start) / 1000;
    double to_end = (double)(range_end - s[n - 1].t) / 1000;
    double sampled = (double)(s[n - 1].t - s[0].t) / 1000;
    double avg = sampled / (double)(n - 1);
    double threshold = avg * 1.1;
    if (to_start >= threshold) to_start = avg / 2;
    if (is_counter) {
        double to_zero = to_start;
        if (result > 0 && s[0].v >= 0) to_zero = sampled * (s[0].v / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    if (to_end >= threshold) to_end = avg / 2;
    double factor = (sampled + to_start + to_end) / sampled;
    if (is_rate) factor /= (double)(range_end - range_start) / 1000;
    *out = result * factor;
    return 1;
}

static int k_rate(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)p;
    return extrapolated_rate(s, n, a, b, 1, 1, out);
}

static int k_increase(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)p;
    return extrapolated_rate(s, n, a, b, 1, 0, out);
}

static int k_delta(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)p;
    return extrapolated_rate(s, n, a, b, 0, 0, out);
}

/* irate and idelta: the last two samples.  On a counter drop irate takes
 * the last value itself as the increase (the counter restarted from 0). */
static int instant_value(const tsdb_sample_t *s, size_t n, int is_rate, double *out)
{
    if (n < 2) return 0;
    const tsdb_sample_t *a = &s[n - 2], *b = &s[n - 1];
    int64_t interval = b->t - a->t;
    if (interval == 0) return 0;
    double r = b->v;
    if (!is_rate || !(b->v < a->v)) r = b->v - a->v;
    if (is_rate) r /= (double)interval / 1000;
    *out = r;
    return 1;
}

static int k_irate(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)a, (void)b, (void)p;
    return instant_value(s, n, 1, out);
}

static int k_idelta(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)a, (void)b, (void)p;
    return instant_value(s, n, 0, out);
}

/* Least squares over (seconds since intercept_t, value), compensated sums
 * as Prometheus' linearRegression; a constant series has slope 0 (NaN when
 * the constant is infinite). */
static void linear_regression(const tsdb_sample_t *s, size_t n, int64_t intercept_t, double *slope,
                              double *intercept)
{
    double sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    int const_y = 1;
    for (size_t i = 0; i < n; i++) {
        if (const_y && i > 0 && s[i].v != s[0].v) const_y = 0;
        double x = (double)(s[i].t - intercept_t) / 1e3;
        ksum_inc(x, &sx, &cx);
        ksum_inc(s[i].v, &sy, &cy);
        ksum_inc(x * s[i].v, &sxy, &cxy);
        ksum_inc(x * x, &sx2, &cx2);
    }
    if (const_y) {
        if (isinf(s[0].v)) {
            *slope = *intercept = NAN;
        } else {
            *slope = 0;
            *intercept = s[0].v;
        }
        return;
    }
    double dn = (double)n;
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / dn;
    double var = sx2 - sx * sx / dn;
    *slope = cov / var;
    *intercept = sy / dn - *slope * sx / dn;
}

static int k_deriv(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)a, (void)b, (void)p;
    if (n < 2) return 0;
    double slope, icept;
    /* x relative to the first sample keeps the squares small (Prometheus
     * does the same for accuracy). */
    linear_regression(s, n, s[0].t, &slope, &icept);
    *out = slope;
    return 1;
}

static int k_predict_linear(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                            double *out)
{
    (void)a;
    if (n < 2 || !p) return 0;
    double slope, icept;
    linear_regression(s, n, b, &slope, &icept);
    *out = slope * p[0] + icept;
    return 1;
}

static int k_resets(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    size_t r = 0;
    for (size_t i = 1; i < n; i++) r += s[i].v < s[i - 1].v;
    *out = (double)r;
    return 1;
}

/* A change is a differing value; NaN to NaN is no change, NaN to a number
 * (or back) is one. */
static int k_changes(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    size_t c = 0;
    for (size_t i = 1; i < n; i++)
        if (s[i].v != s[i - 1].v && !(isnan(s[i].v) && isnan(s[i - 1].v))) c++;
    *out = (double)c;
    return 1;
}

/* The mean as Prometheus 3 computes it: a direct compensated sum divided
 * at the end, switching to an incremental mean only when the sum would
 * overflow (2.x always used the incremental mean, with no compensation in
 * 2.42: results may differ in the last bits). */
static int k_avg_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                           double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    double sum = s[0].v, count = 1, mean = 0, c = 0;
    int incremental = 0;
    for (size_t i = 1; i < n; i++) {
        count = (double)(i + 1);
        if (!incremental) {
            double ns = sum, nc = c;
            ksum_inc(s[i].v, &ns, &nc);
            if (!isinf(ns)) {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = 1;
            mean = sum / (count - 1);
            c /= count - 1;
        }
        double q = (count - 1) / count;
        mean *= q;
        c *= q;
        ksum_inc(s[i].v / count, &mean, &c);
    }
    *out = incremental ? mean + c : sum / count + c / count;
    return 1;
}

static int k_sum_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                           double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    double sum = 0, c = 0;
    for (size_t i = 0; i < n; i++) ksum_inc(s[i].v, &sum, &c);
    *out = isinf(sum) ? sum : sum + c;
    return 1;
}

static int k_count_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                             double *out)
{
    (void)s, (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    *out = (double)n;
    return 1;
}

/* min/max: a NaN so far is replaced by whatever comes next, so NaN is the
 * answer only when every value is NaN. */
static int k_max_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                           double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    double m = s[0].v;
    for (size_t i = 0; i < n; i++)
        if (s[i].v > m || isnan(m)) m = s[i].v;
    *out = m;
    return 1;
}

static int k_min_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                           double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    double m = s[0].v;
    for (size_t i = 0; i < n; i++)
        if (s[i].v < m || isnan(m)) m = s[i].v;
    *out = m;
    return 1;
}

static int k_last_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                            double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    *out = s[n - 1].v;
    return 1;
}

static int k_first_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                             double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    *out = s[0].v;
    return 1;
}

static int k_present_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                               double *out)
{
    (void)s, (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    *out = 1;
    return 1;
}

/* Welford's running variance with compensated mean and sum of squares, as
 * Prometheus 3's varianceOverTime (2.42 had no compensation). */
static double variance(const tsdb_sample_t *s, size_t n)
{
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
    for (size_t i = 0; i < n; i++) {
        count++;
        double delta = s[i].v - (mean + cmean);
        ksum_inc(delta / count, &mean, &cmean);
        ksum_inc(delta * (s[i].v - (mean + cmean)), &aux, &caux);
    }
    return (aux + caux) / count;
}

static int k_stdvar_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                              double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    *out = variance(s, n);
    return 1;
}

static int k_stddev_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                              double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    *out = sqrt(variance(s, n));
    return 1;
}

/* Order statistics without a copy.  Values map to unsigned keys in the
 * order Prometheus' quantile sorts them (NaN first, then -Inf .. +Inf);
 * the k-th smallest is the least key with more than k keys at or below
 * it, found by bisection over the 64-bit key space: 64 passes of n. */
static uint64_t order_key(double v)
{
    if (isnan(v)) return 0;
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return (u >> 63) ? ~u : u | (UINT64_C(1) << 63);
}

static double key_value(uint64_t k)
{
    if (k == 0) return NAN;
    uint64_t u = (k >> 63) ? k & ~(UINT64_C(1) << 63) : ~k;
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Value i of the sequence: the sample, or its distance from center when
 * mad is set (mad_over_time's second pass). */
static double seq_value(const tsdb_sample_t *s, size_t i, int mad, double center)
{
    return mad ? fabs(s[i].v - center) : s[i].v;
}

static double kth_smallest(const tsdb_sample_t *s, size_t n, size_t k, int mad, double center)
{
    uint64_t lo = 0, hi = UINT64_MAX;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        size_t at_or_below = 0;
        for (size_t i = 0; i < n; i++) at_or_below += order_key(seq_value(s, i, mad, center)) <= mid;
        if (at_or_below > k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return key_value(lo);
}

/* promql_quantile's interpolation over the sequence, unsorted. */
/* Windows up to this many samples are copied to the stack and sorted
 * (8 KiB; faster than 64 passes); longer ones are bisected in place. */
#define SORT_ON_STACK 1024

static double seq_quantile(double phi, const tsdb_sample_t *s, size_t n, int mad, double center)
{
    if (n <= SORT_ON_STACK) {
        double v[SORT_ON_STACK];
        for (size_t i = 0; i < n; i++) v[i] = seq_value(s, i, mad, center);
        return promql_quantile(phi, v, n);
    }
    if (isnan(phi)) return NAN;
    if (phi < 0) return -INFINITY;
    if (phi > 1) return INFINITY;
    double dn = (double)n;
    double rank = phi * (dn - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin(dn - 1, lower + 1);
    double weight = rank - floor(rank);
    double lv = kth_smallest(s, n, (size_t)lower, mad, center);
    double uv = (size_t)upper == (size_t)lower ? lv : kth_smallest(s, n, (size_t)upper, mad, center);
    return lv * (1 - weight) + uv * weight;
}

static int k_quantile_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                                double *out)
{
    (void)a, (void)b;
    if (n == 0 || !p) return 0;
    *out = seq_quantile(p[0], s, n, 0, 0);
    return 1;
}

static int k_mad_over_time(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p,
                           double *out)
{
    (void)a, (void)b, (void)p;
    if (n == 0) return 0;
    double median = seq_quantile(0.5, s, n, 0, 0);
    *out = seq_quantile(0.5, s, n, 1, median);
    return 1;
}

int promql_smoothing_check(double sf, double tf, char *msg, size_t msgcap)
{
    /* Prometheus' own test and message ("%f": six decimals); NaN passes
     * both tests there, so it passes here. */
    if (sf <= 0 || sf >= 1) {
        if (msg && msgcap)
            snprintf(msg, msgcap, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf);
        return STRATA_EEXEC;
    }
    if (tf <= 0 || tf >= 1) {
        if (msg && msgcap) snprintf(msg, msgcap, "invalid trend factor. Expected: 0 < tf < 1, got: %f", tf);
        return STRATA_EEXEC;
    }
    return 0;
}

/* Holt's double exponential smoothing: level s1 seeded with the first
 * value, trend b with the first difference; the trend is updated from the
 * second step on (Prometheus' calcTrendValue). */
static int k_smoothing(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *out)
{
    (void)a, (void)b;
    if (!p || promql_smoothing_check(p[0], p[1], NULL, 0) != 0 || n < 2) return 0;
    double sf = p[0], tf = p[1];
    double s0 = 0, s1 = s[0].v, trend = s[1].v - s[0].v;
    for (size_t i = 1; i < n; i++) {
        double x = sf * s[i].v;
        if (i > 1) trend = tf * (s1 - s0) + (1 - tf) * trend;
        double y = (1 - sf) * (s1 + trend);
        s0 = s1;
        s1 = x + y;
    }
    *out = s1;
    return 1;
}

static const struct {
    const char *name;
    promql_range_fn_t fn;
} range_fns[] = {
    { "rate", k_rate },
    { "increase", k_increase },
    { "delta", k_delta },
    { "irate", k_irate },
    { "idelta", k_idelta },
    { "deriv", k_deriv },
    { "predict_linear", k_predict_linear },
    { "resets", k_resets },
    { "changes", k_changes },
    { "avg_over_time", k_avg_over_time },
    { "sum_over_time", k_sum_over_time },
    { "count_over_time", k_count_over_time },
    { "min_over_time", k_min_over_time },
    { "max_over_time", k_max_over_time },
    { "last_over_time", k_last_over_time },
    { "first_over_time", k_first_over_time },
    { "present_over_time", k_present_over_time },
    { "quantile_over_time", k_quantile_over_time },
    { "stddev_over_time", k_stddev_over_time },
    { "stdvar_over_time", k_stdvar_over_time },
    { "mad_over_time", k_mad_over_time },
    { "holt_winters", k_smoothing },
    { "double_exponential_smoothing", k_smoothing },
};

promql_range_fn_t promql_range_fn_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof range_fns / sizeof range_fns[0]; i++)
        if (strcmp(range_fns[i].name, name) == 0) return range_fns[i].fn;
    return NULL;
}
