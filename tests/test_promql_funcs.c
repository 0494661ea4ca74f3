/*
 * test_promql_funcs.c: the numeric kernels of api/promql/promql_funcs.h
 * (range functions, element-wise functions, quantile, histogram_quantile
 * over classic buckets) and the RE2 -> POSIX regex translator, each against
 * values worked out by hand from Prometheus 3's definitions (the working is
 * in the comments).
 */
#include "test_helpers.h"

#include <float.h>
#include <math.h>
#include <regex.h>
#include <time.h>

#include "downsample.h"
#include "promql_funcs.h"

#define S(sec, val)                  \
    {                                \
        (int64_t)((sec)*1000), (val) \
    }

/* Runs range function name over s; fails the test if it gives no point. */
static double rng(const char *name, const tsdb_sample_t *s, size_t n, int64_t start_ms, int64_t end_ms,
                  const double *params)
{
    promql_range_fn_t fn = promql_range_fn_lookup(name);
    if (!fn) fail_msg("no kernel %s", name);
    double out = -12345;
    if (fn(s, n, start_ms, end_ms, params, &out) != 1) fail_msg("%s gave no point", name);
    return out;
}

static int rng_none(const char *name, const tsdb_sample_t *s, size_t n, const double *params)
{
    double out = -12345;
    int rc = promql_range_fn_lookup(name)(s, n, 0, 60000, params, &out);
    return rc == 0 && out == -12345;
}

static double elem(const char *name, double v, const double *params)
{
    promql_elem_fn_t fn = promql_elem_fn_lookup(name);
    if (!fn) fail_msg("no kernel %s", name);
    return fn(v, params);
}

/* Equal to 1e-12 relative: for results whose working rounds (divisions
 * like 40/30); exact results are compared with ==. */
static int near(double a, double b) { return fabs(a - b) <= 1e-12 * fmax(1, fabs(b)); }
#define assert_near(a, b) assert_true(near((a), (b)))
#define N(a)              (sizeof(a) / sizeof((a)[0]))

static void test_rate_extrapolation(void **state)
{
    (void)state;
    /* Window (0s, 60s], samples every 10s from 5s to 55s, +10 each.
     * increase = 50 over 50s; 5s to either edge is under 1.1 x 10s, so the
     * rate extends to both edges: 50 x 60/50 = 60; zero point 50 x 10/50 =
     * 10s before the first sample, beyond the 5s: no limit. */
    tsdb_sample_t a[] = { S(5, 10), S(15, 20), S(25, 30), S(35, 40), S(45, 50), S(55, 60) };
    assert_near(rng("increase", a, 6, 0, 60000, NULL), 60);
    assert_near(rng("rate", a, 6, 0, 60000, NULL), 1.0);
    assert_near(rng("delta", a, 6, 0, 60000, NULL), 60);

    /* Samples 20s..60s, 1 to 41: the first is 20s after the start, over
     * 11s, so only half an interval (5s) is added there; the counter's zero
     * point is 40 x 1/40 = 1s before the first sample, closer: 1s.  The
     * last sits on the end.  increase = 40 x (40 + 1 + 0)/40 = 41;
     * delta (no zero point) = 40 x 45/40 = 45. */
    tsdb_sample_t b[] = { S(20, 1), S(30, 11), S(40, 21), S(50, 31), S(60, 41) };
    assert_near(rng("increase", b, 5, 0, 60000, NULL), 41);
    assert_near(rng("rate", b, 5, 0, 60000, NULL), 41.0 / 60);
    assert_near(rng("delta", b, 5, 0, 60000, NULL), 45);

    /* Zero point between half an interval and 1.1: 8, 18, .. 48 at 20s..60s.
     * 40 over 40s; 20s to the start is capped to 5s, the zero point
     * 40 x 8/40 = 8s is farther: 40 x 45/40 = 45 (Prometheus 2.42 took the
     * 8s: 48). */
    tsdb_sample_t z[] = { S(20, 8), S(30, 18), S(40, 28), S(50, 38), S(60, 48) };
    assert_near(rng("increase", z, 5, 0, 60000, NULL), 45);

    /* A reset: 5, 10, 2, 7 at 10..40s in (0, 40s]: 7 - 5 + 10 = 12 over
     * 30s; 10s to the start is under 11s; zero point 30 x 5/12 = 12.5s is
     * farther: extrapolate the full 10s.  12 x 40/30 = 16; rate 16/40. */
    tsdb_sample_t c[] = { S(10, 5), S(20, 10), S(30, 2), S(40, 7) };
    assert_near(rng("increase", c, 4, 0, 40000, NULL), 16);
    assert_near(rng("rate", c, 4, 0, 40000, NULL), 0.4);
    /* delta ignores the reset: (7 - 5) x 40/30. */
    assert_near(rng("delta", c, 4, 0, 40000, NULL), 2.0 * 40 / 30);

    /* A gauge going down is no counter: delta -20 x (20 + 5 + 5)/20. */
    tsdb_sample_t d[] = { S(10, 30), S(20, 20), S(30, 10) };
    assert_near(rng("delta", d, 3, 5000, 35000, NULL), -30);

    /* One sample: no point. */
    assert_true(rng_none("rate", a, 1, NULL));
    assert_true(rng_none("increase", a, 1, NULL));
    assert_true(rng_none("delta", a, 0, NULL));
}

static void test_irate_idelta(void **state)
{
    (void)state;
    /* The last two: 10 -> 15 over 10s. */
    tsdb_sample_t a[] = { S(0, 1), S(10, 10), S(20, 15) };
    assert_near(rng("irate", a, 3, 0, 20000, NULL), 0.5);
    assert_near(rng("idelta", a, 3, 0, 20000, NULL), 5);
    /* A reset 10 -> 3: irate takes 3 as the increase, 3/10s; idelta -7. */
    tsdb_sample_t b[] = { S(10, 5), S(20, 10), S(30, 3) };
    assert_near(rng("irate", b, 3, 0, 30000, NULL), 0.3);
    assert_near(rng("idelta", b, 3, 0, 30000, NULL), -7);
    assert_true(rng_none("irate", b, 1, NULL));
    assert_true(rng_none("idelta", b, 1, NULL));
}

static void test_deriv_predict(void **state)
{
    (void)state;
    /* v = 2 t + 3 at t = 0, 10, 20, 30s.  Relative to 30s: x = -30..0,
     * y = 3..63; sums x -60, y 132, xy -980, xx 1400; cov 1000, var 500:
     * slope 2, intercept 63 at 30s; 60s ahead 63 + 120 = 183. */
    tsdb_sample_t a[] = { S(0, 3), S(10, 23), S(20, 43), S(30, 63) };
    double p = 60;
    assert_true(rng("deriv", a, 4, -1, 30000, NULL) == 2);
    assert_true(rng("predict_linear", a, 4, -1, 30000, &p) == 183);
    /* The line at the window's end (40s) instead: 83 + 120. */
    assert_true(rng("predict_linear", a, 4, 0, 40000, &p) == 203);
    /* Constant: slope 0, prediction the constant; an infinite one NaN. */
    tsdb_sample_t c[] = { S(0, 7), S(10, 7) };
    assert_true(rng("deriv", c, 2, 0, 10000, NULL) == 0);
    assert_true(rng("predict_linear", c, 2, 0, 10000, &p) == 7);
    tsdb_sample_t inf[] = { S(0, INFINITY), S(10, INFINITY) };
    assert_true(isnan(rng("deriv", inf, 2, 0, 10000, NULL)));
    assert_true(rng_none("deriv", a, 1, NULL));
    assert_true(rng_none("predict_linear", a, 1, &p));
}

static void test_resets_changes(void **state)
{
    (void)state;
    /* Pairs: 1>2? 2>1 reset; 1,1; 1,NaN (no reset, a change); NaN,NaN (no
     * change); NaN,3 (change, no reset); 3>0 reset.  resets 2; changes
     * 1-2, 2-1, 1-NaN, NaN-3, 3-0 = 5. */
    tsdb_sample_t a[] = { S(1, 1), S(2, 2), S(3, 1), S(4, 1), S(5, NAN), S(6, NAN), S(7, 3), S(8, 0) };
    assert_true(rng("resets", a, 8, 0, 8000, NULL) == 2);
    assert_true(rng("changes", a, 8, 0, 8000, NULL) == 5);
    /* One sample: 0 of each, still a point. */
    assert_true(rng("resets", a, 1, 0, 8000, NULL) == 0);
    assert_true(rng("changes", a, 1, 0, 8000, NULL) == 0);
    assert_true(rng_none("resets", a, 0, NULL));
    assert_true(rng_none("changes", a, 0, NULL));
}

static void test_over_time(void **state)
{
    (void)state;
    tsdb_sample_t a[] = { S(1, 1), S(2, 2), S(3, 3), S(4, 4) };
    assert_true(rng("avg_over_time", a, 4, 0, 4000, NULL) == 2.5);
    assert_true(rng("sum_over_time", a, 4, 0, 4000, NULL) == 10);
    assert_true(rng("count_over_time", a, 4, 0, 4000, NULL) == 4);
    assert_true(rng("min_over_time", a, 4, 0, 4000, NULL) == 1);
    assert_true(rng("max_over_time", a, 4, 0, 4000, NULL) == 4);
    assert_true(rng("last_over_time", a, 4, 0, 4000, NULL) == 4);
    assert_true(rng("first_over_time", a, 4, 0, 4000, NULL) == 1);
    assert_true(rng("present_over_time", a, 4, 0, 4000, NULL) == 1);
    /* Mean 2.5; squared deviations 2.25 + .25 + .25 + 2.25 = 5; / 4. */
    assert_true(rng("stdvar_over_time", a, 4, 0, 4000, NULL) == 1.25);
    assert_true(rng("stddev_over_time", a, 4, 0, 4000, NULL) == sqrt(1.25));
    /* Median 2.5; distances 1.5 .5 .5 1.5, their median 1. */
    assert_true(rng("mad_over_time", a, 4, 0, 4000, NULL) == 1);
    /* phi 0.9: rank 0.9 x 3 = 2.7 between 3 and 4: 3 x .3 + 4 x .7. */
    double phi = 0.9;
    assert_near(rng("quantile_over_time", a, 4, 0, 4000, &phi), 3.7);
    phi = 0.5;
    assert_true(rng("quantile_over_time", a, 4, 0, 4000, &phi) == 2.5);

    /* Unsorted, with NaN (sorted first): NaN 1 3. */
    tsdb_sample_t q[] = { S(1, 3), S(2, NAN), S(3, 1) };
    phi = 0;
    assert_true(isnan(rng("quantile_over_time", q, 3, 0, 3000, &phi)));
    phi = 0.5;
    assert_true(rng("quantile_over_time", q, 3, 0, 3000, &phi) == 1);
    phi = 1;
    assert_true(rng("quantile_over_time", q, 3, 0, 3000, &phi) == 3);
    phi = -1;
    assert_true(rng("quantile_over_time", q, 3, 0, 3000, &phi) == -INFINITY);
    phi = 2;
    assert_true(rng("quantile_over_time", q, 3, 0, 3000, &phi) == INFINITY);
    /* Negative values and -0 order: -5 -1 2 -> median -1. */
    tsdb_sample_t neg[] = { S(1, 2), S(2, -5), S(3, -1) };
    phi = 0.5;
    assert_true(rng("quantile_over_time", neg, 3, 0, 3000, &phi) == -1);

    /* min/max replace a NaN by the next number; NaN only if all are. */
    tsdb_sample_t m[] = { S(1, NAN), S(2, 5), S(3, 3) };
    assert_true(rng("max_over_time", m, 3, 0, 3000, NULL) == 5);
    assert_true(rng("min_over_time", m, 3, 0, 3000, NULL) == 3);
    tsdb_sample_t m2[] = { S(1, 5), S(2, NAN), S(3, 3) };
    assert_true(rng("max_over_time", m2, 3, 0, 3000, NULL) == 5);
    assert_true(rng("min_over_time", m2, 3, 0, 3000, NULL) == 3);
    assert_true(isnan(rng("max_over_time", m, 1, 0, 3000, NULL)));

    /* Compensated: 1e100 + 1 - 1e100 is 0 plainly, 1 with Neumaier's
     * compensation; the mean divides sum and compensation: 1/3. */
    tsdb_sample_t k[] = { S(1, 1e100), S(2, 1), S(3, -1e100) };
    assert_true(rng("sum_over_time", k, 3, 0, 3000, NULL) == 1);
    assert_true(rng("avg_over_time", k, 3, 0, 3000, NULL) == 1.0 / 3);
    /* An overflowing sum turns to the incremental mean: DBL_MAX. */
    tsdb_sample_t big[] = { S(1, DBL_MAX), S(2, DBL_MAX) };
    assert_true(rng("avg_over_time", big, 2, 0, 2000, NULL) == DBL_MAX);
    tsdb_sample_t infs[] = { S(1, INFINITY), S(2, 1) };
    assert_true(rng("sum_over_time", infs, 2, 0, 2000, NULL) == INFINITY);

    assert_true(rng_none("avg_over_time", a, 0, NULL));
    assert_true(rng_none("count_over_time", a, 0, NULL));
    assert_true(rng_none("quantile_over_time", a, 0, &phi));
    assert_true(promql_range_fn_lookup("absent_over_time") == NULL);
    assert_true(promql_range_fn_lookup("nope") == NULL);
}

/* Windows over 1024 samples take the in-place bisection, shorter ones a
 * sorted copy: both must give the same order statistics. */
static void test_quantile_long_windows(void **state)
{
    (void)state;
    static tsdb_sample_t w[3001];
    size_t sizes[] = { 101, 3001 };
    for (size_t k = 0; k < 2; k++) {
        size_t n = sizes[k];
        /* i x 37 mod n (n has no factor 37): a permutation of 0..n-1. */
        for (size_t i = 0; i < n; i++) w[i].t = (int64_t)i * 1000, w[i].v = (double)(i * 37 % n);
        double half = (double)(n - 1) / 2, phi = 0.5;
        /* median of 0..n-1 is (n-1)/2 */
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == half);
        /* phi 0.9: rank 0.9 (n-1), a whole number for both sizes */
        phi = 0.9;
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == 0.9 * (double)(n - 1));
        phi = 0;
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == 0);
        phi = 1;
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == (double)(n - 1));
        /* distances from the median h: 0, 1, 1, 2, 2, ..., h, h; the
         * middle one (index h) is h/2 (h even for both sizes). */
        assert_true(rng("mad_over_time", w, n, -1, (int64_t)n * 1000, NULL) == half / 2);
        /* A NaN sorts first: the minimum becomes NaN, the maximum stays. */
        w[5].v = NAN;
        phi = 0;
        assert_true(isnan(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi)));
        phi = 1;
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == (double)(n - 1));
        /* Negative values order below positive ones in both paths. */
        for (size_t i = 0; i < n; i++) w[i].v = -(double)(i * 37 % n);
        phi = 0;
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == -(double)(n - 1));
        phi = 0.5;
        assert_true(rng("quantile_over_time", w, n, -1, (int64_t)n * 1000, &phi) == -half);
    }
}

static void test_holt_winters(void **state)
{
    (void)state;
    /* 1, 3, 7 with sf = tf = 0.5: level 1, trend 2.  Step 1: 0.5 x 3 +
     * 0.5 x (1 + 2) = 3.  Step 2: trend 0.5 x (3 - 1) + 0.5 x 2 = 2;
     * 0.5 x 7 + 0.5 x (3 + 2) = 6. */
    tsdb_sample_t a[] = { S(1, 1), S(2, 3), S(3, 7) };
    double p[2] = { 0.5, 0.5 };
    assert_true(rng("holt_winters", a, 3, 0, 3000, p) == 6);
    assert_true(rng("double_exponential_smoothing", a, 3, 0, 3000, p) == 6);
    /* Two samples: level 0.5 x 3 + 0.5 x (1 + 2) = 3. */
    assert_true(rng("holt_winters", a, 2, 0, 3000, p) == 3);
    assert_true(rng_none("holt_winters", a, 1, p));

    char msg[128];
    assert_ok(promql_smoothing_check(0.5, 0.5, msg, sizeof msg));
    assert_err(promql_smoothing_check(1, 0.5, msg, sizeof msg), STRATA_EEXEC);
    assert_string_equal(msg, "invalid smoothing factor. Expected: 0 < sf < 1, got: 1.000000");
    assert_err(promql_smoothing_check(0.5, 0, msg, sizeof msg), STRATA_EEXEC);
    assert_string_equal(msg, "invalid trend factor. Expected: 0 < tf < 1, got: 0.000000");
    double bad[2] = { 0.5, 1.5 };
    assert_true(rng_none("holt_winters", a, 3, bad));
}

static void test_quantile(void **state)
{
    (void)state;
    double v[4];
#define RESET() (v[0] = 4, v[1] = 1, v[2] = 3, v[3] = 2)
    RESET();
    assert_true(promql_quantile(0, v, 4) == 1);
    RESET();
    /* rank 1.5: 2 x .5 + 3 x .5 */
    assert_true(promql_quantile(0.5, v, 4) == 2.5);
    RESET();
    assert_near(promql_quantile(0.9, v, 4), 3.7);
    RESET();
    assert_true(promql_quantile(1, v, 4) == 4);
    RESET();
    assert_true(promql_quantile(-1, v, 4) == -INFINITY);
    RESET();
    assert_true(promql_quantile(2, v, 4) == INFINITY);
    RESET();
    assert_true(isnan(promql_quantile(NAN, v, 4)));
    assert_true(isnan(promql_quantile(0.5, v, 0)));
    /* NaN sorts first: {NaN, 1}: phi 1 -> 1, phi 0 -> NaN. */
    double w[2] = { 1, NAN };
    assert_true(promql_quantile(1, w, 2) == 1);
    assert_true(isnan(promql_quantile(0, w, 2)));
    /* phi 1 over a +Inf top: Inf x 1 + Inf x 0 = NaN, as Prometheus. */
    double x[2] = { INFINITY, 1 };
    assert_true(isnan(promql_quantile(1, x, 2)));
}

static void set_buckets(api_hist_bucket_t *b, const double *spec, size_t n)
{
    for (size_t i = 0; i < n; i++) b[i].upper = spec[2 * i], b[i].count = spec[2 * i + 1];
}

static double bq(double phi, const double *spec, size_t n, int *forced)
{
    api_hist_bucket_t b[16];
    set_buckets(b, spec, n);
    return api_histogram_quantile_fixed(phi, b, n, forced);
}

static void test_bucket_quantile(void **state)
{
    (void)state;
    int forced = -1;
    /* le 1:10, 2:20, 4:40, +Inf:40 (given out of order).  40 observations. */
    const double h[] = { 4, 40, INFINITY, 40, 1, 10, 2, 20 };
    /* 0.5: rank 20 -> le=2: 1 + (2-1) x (20-10)/(20-10) = 2 */
    assert_true(bq(0.5, h, 4, &forced) == 2);
    assert_int_equal(forced, 0);
    /* 0.25: rank 10 -> first bucket, from 0: 1 x 10/10 */
    assert_true(bq(0.25, h, 4, NULL) == 1);
    /* 0.1: rank 4 -> 0 + 1 x 4/10 */
    assert_true(bq(0.1, h, 4, NULL) == 0.4);
    /* 0.75: rank 30 -> le=4: 2 + 2 x (30-20)/(40-20) = 3 */
    assert_true(bq(0.75, h, 4, NULL) == 3);
    assert_true(bq(1, h, 4, NULL) == 4);
    assert_true(bq(0, h, 4, NULL) == 0);
    assert_true(bq(-0.1, h, 4, NULL) == -INFINITY);
    assert_true(bq(1.1, h, 4, NULL) == INFINITY);
    assert_true(isnan(bq(NAN, h, 4, NULL)));

    /* The rank in the +Inf bucket: the highest finite bound, 2. */
    const double top[] = { 1, 10, 2, 20, INFINITY, 30 };
    assert_true(bq(0.9, top, 3, NULL) == 2);

    /* Non-monotonic 10, 8, 20, 20 -> 10, 10, 20, 20 (forced): 0.5 rank 10
     * -> 1; 0.75 rank 15 -> le=4: 2 + 2 x 5/10 = 3. */
    const double nm[] = { 1, 10, 2, 8, 4, 20, INFINITY, 20 };
    forced = 0;
    assert_true(bq(0.5, nm, 4, &forced) == 1);
    assert_int_equal(forced, 1);
    assert_true(bq(0.75, nm, 4, &forced) == 3);
    assert_int_equal(forced, 1);

    /* A difference of a relative 1e-13 is float noise, fixed silently. */
    const double noise[] = { 1, 10, 2, 10 * (1 - 1e-13), INFINITY, 20 };
    forced = -1;
    assert_true(bq(0.25, noise, 3, &forced) == 0.5);
    assert_int_equal(forced, 0);

    /* No +Inf bucket, only +Inf, no observations: NaN. */
    const double noinf[] = { 1, 10, 2, 20 };
    assert_true(isnan(bq(0.5, noinf, 2, NULL)));
    const double only[] = { INFINITY, 10 };
    assert_true(isnan(bq(0.5, only, 1, NULL)));
    const double zero[] = { 1, 0, INFINITY, 0 };
    assert_true(isnan(bq(0.5, zero, 2, NULL)));

    /* First bound <= 0: its bound itself; above, interpolation from it:
     * le -1:5, 0:10, +Inf:10; 0.2 rank 2 -> -1; 0.7 rank 7 -> -1 + 2/5. */
    const double negb[] = { -1, 5, 0, 10, INFINITY, 10 };
    assert_true(bq(0.2, negb, 3, NULL) == -1);
    assert_near(bq(0.7, negb, 3, NULL), -0.6);

    /* The same bound twice adds up: le 1:5 + 1:5, +Inf:10 -> 0.5 = 0.5. */
    const double dup[] = { 1, 5, 1, 5, INFINITY, 10 };
    assert_true(bq(0.5, dup, 3, NULL) == 0.5);

    api_hist_bucket_t b[4];
    set_buckets(b, h, 4);
    assert_true(api_histogram_quantile(0.5, b, 4) == 2);
}

static void test_elem(void **state)
{
    (void)state;
    assert_true(elem("abs", -2, NULL) == 2);
    assert_true(elem("ceil", 1.2, NULL) == 2);
    assert_true(elem("floor", -1.2, NULL) == -2);
    assert_true(elem("exp", 0, NULL) == 1);
    assert_true(elem("sqrt", 16, NULL) == 4);
    assert_true(isnan(elem("sqrt", -1, NULL)));
    assert_true(elem("ln", 1, NULL) == 0);
    assert_true(elem("ln", 0, NULL) == -INFINITY);
    assert_true(elem("log2", 8, NULL) == 3);
    assert_true(elem("log10", 1000, NULL) == 3);
    assert_true(elem("sgn", -3, NULL) == -1);
    assert_true(elem("sgn", 2, NULL) == 1);
    assert_true(elem("sgn", 0, NULL) == 0);
    assert_true(isnan(elem("sgn", NAN, NULL)));
    assert_true(elem("acos", 1, NULL) == 0);
    assert_true(isnan(elem("acos", 2, NULL)));
    assert_true(elem("acosh", 1, NULL) == 0);
    assert_true(elem("asin", 0, NULL) == 0);
    assert_true(elem("asinh", 0, NULL) == 0);
    assert_true(elem("atan", 0, NULL) == 0);
    assert_true(elem("atanh", 0, NULL) == 0);
    assert_true(elem("atanh", 1, NULL) == INFINITY);
    assert_true(elem("cos", 0, NULL) == 1);
    assert_true(elem("cosh", 0, NULL) == 1);
    assert_true(elem("sin", 0, NULL) == 0);
    assert_true(elem("sinh", 0, NULL) == 0);
    assert_true(elem("tan", 0, NULL) == 0);
    assert_true(elem("tanh", 0, NULL) == 0);
    assert_near(elem("deg", M_PI, NULL), 180);
    assert_near(elem("rad", 180, NULL), M_PI);
    assert_near(elem("atan", 1, NULL), M_PI / 4);

    /* round: floor(v / to_nearest + 0.5) x to_nearest, via the inverse. */
    assert_true(elem("round", 2.5, NULL) == 3);
    assert_true(elem("round", -2.5, NULL) == -2);
    double one = 1, tenth = 0.1, five = 5;
    assert_true(elem("round", 2.4, &one) == 2);
    assert_near(elem("round", 1.26, &tenth), 1.3);
    /* 7 x 0.2 + 0.5 = 1.9 -> 1 -> 1 / 0.2 = 5 */
    assert_true(elem("round", 7, &five) == 5);
    assert_true(elem("round", 8, &five) == 10);
    assert_true(isnan(elem("round", NAN, NULL)));

    double mm[2] = { 0, 3 };
    assert_true(elem("clamp", 5, mm) == 3);
    assert_true(elem("clamp", -1, mm) == 0);
    assert_true(elem("clamp", 2, mm) == 2);
    assert_true(isnan(elem("clamp", NAN, mm)));
    double nanmin[2] = { NAN, 3 };
    assert_true(isnan(elem("clamp", 2, nanmin)));
    double two = 2, three = 3;
    assert_true(elem("clamp_min", 1, &two) == 2);
    assert_true(elem("clamp_min", 5, &two) == 5);
    assert_true(elem("clamp_max", 5, &three) == 3);
    assert_true(isnan(elem("clamp_max", NAN, &three)));

    /* 2024-02-29T13:45:00Z: 2024-01-01 is 54 x 365 + 13 leap days = 19723
     * days after the epoch, plus 59 -> 19782 x 86400 + 13 h 45 m =
     * 1709214300; a Thursday, the 60th day of a leap February. */
    double t = 1709214300.9;
    assert_true(elem("year", t, NULL) == 2024);
    assert_true(elem("month", t, NULL) == 2);
    assert_true(elem("day_of_month", t, NULL) == 29);
    assert_true(elem("day_of_week", t, NULL) == 4);
    assert_true(elem("day_of_year", t, NULL) == 60);
    assert_true(elem("days_in_month", t, NULL) == 29);
    assert_true(elem("hour", t, NULL) == 13);
    assert_true(elem("minute", t, NULL) == 45);
    /* -1.5 truncates to -1: 1969-12-31T23:59:59, a Wednesday, day 365. */
    assert_true(elem("year", -1.5, NULL) == 1969);
    assert_true(elem("month", -1.5, NULL) == 12);
    assert_true(elem("day_of_month", -1.5, NULL) == 31);
    assert_true(elem("day_of_week", -1.5, NULL) == 3);
    assert_true(elem("day_of_year", -1.5, NULL) == 365);
    assert_true(elem("hour", -1.5, NULL) == 23);
    assert_true(elem("minute", -1.5, NULL) == 59);
    /* 2000-02-15 (11002 days): a leap February; 2023-02-01 is not. */
    assert_true(elem("days_in_month", 11002.0 * 86400, NULL) == 29);
    assert_true(elem("days_in_month", 1675209600, NULL) == 28);
    assert_true(isnan(elem("year", NAN, NULL)));
    assert_true(isnan(elem("hour", INFINITY, NULL)));

    /* Against libc's gmtime over 1900..2100 every 7 days + 1h + 1m. */
    for (int64_t s = -2208988800LL; s < 4102444800LL; s += 7 * 86400 + 3660) {
        time_t tt = (time_t)s;
        struct tm tm;
        gmtime_r(&tt, &tm);
        double v = (double)s;
        if (elem("year", v, NULL) != tm.tm_year + 1900 || elem("month", v, NULL) != tm.tm_mon + 1 ||
            elem("day_of_month", v, NULL) != tm.tm_mday || elem("day_of_week", v, NULL) != tm.tm_wday ||
            elem("day_of_year", v, NULL) != tm.tm_yday + 1 || elem("hour", v, NULL) != tm.tm_hour ||
            elem("minute", v, NULL) != tm.tm_min)
            fail_msg("calendar differs from gmtime at %lld", (long long)s);
    }

    assert_true(promql_elem_fn_lookup("pi") == NULL);
    assert_true(promql_elem_fn_lookup("timestamp") == NULL);
}

/* The translation anchored as tsdb/index.c anchors it. */
static int re_matches(const char *posix, const char *s)
{
    char anch[1100];
    snprintf(anch, sizeof anch, "^(%s)$", posix);
    regex_t re;
    int rc = regcomp(&re, anch, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) fail_msg("regcomp refused %s (%d)", anch, rc);
    int m = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return m;
}

/* The UTF-8 form of a code point, NUL-terminated. */
static void utf8(unsigned cp, char *b)
{
    int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    static const unsigned char lead[] = { 0, 0, 0xC0, 0xE0, 0xF0 };
    for (int i = n - 1; i > 0; i--, cp >>= 6) b[i] = (char)(0x80 | (cp & 0x3F));
    b[0] = (char)(n == 1 ? cp : (lead[n] | cp));
    b[n] = 0;
}

static void test_regex_translate(void **state)
{
    (void)state;
    static const struct {
        const char *re2;
        const char *yes[4];
        const char *no[4];
    } cases[] = {
        { "foo.*", { "foo", "foobar", "foo\nbar" }, { "fo", "xfoo" } },
        { "a.c", { "abc", "a\nc" }, { "ac", "abbc" } },
        { "(?-s)a.c", { "abc" }, { "a\nc" } },
        { "\\d+", { "123" }, { "12a", "" } },
        { "\\w+\\s\\W", { "ab_1 !", "x\t-" }, { "ab c", "a b" } },
        { "\\D\\S\\W", { "a!-" }, { "1!-", "a -", "a!b" } },
        { "[\\d.]+", { "1.2", "." }, { "1,2" } },
        { "[^\\d]+", { "ab", "\n" }, { "a1" } },
        { "[\\s]", { " ", "\t" }, { "a" } },
        { "\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^\\$\\\\", { ".*+?()[]{}|^$\\" }, { "x" } },
        { "\\-\\/\\<\\>", { "-/<>" }, { "" } },
        { "a{2,3}", { "aa", "aaa" }, { "a", "aaaa" } },
        { "a{2}", { "aa" }, { "aaa" } },
        { "a{2,}", { "aaaaa" }, { "a" } },
        { "a{,2}", { "a{,2}" }, { "aa", "" } },
        { "x{", { "x{" }, { "x" } },
        { "x{a}", { "x{a}" }, { "x" } },
        { "a]b}", { "a]b}" }, { "ab" } },
        { "(?:ab)+", { "abab", "ab" }, { "aba", "" } },
        { "(?i)abc", { "ABC", "aBc" }, { "abd" } },
        { "(?i)[a-c]x", { "BX", "cx" }, { "dx" } },
        { "(?i)[^a]", { "b" }, { "a", "A" } },
        { "a(?i:b)c", { "aBc", "abc" }, { "ABc", "abC" } },
        { "(?i)a(?-i)b", { "Ab" }, { "AB" } },
        { "(a(?i)b)b", { "aBb" }, { "aBB" } },
        { "[[:alpha:]]+[[:digit:]]", { "ab1" }, { "ab", "1" } },
        { "[[:^digit:]]", { "a" }, { "1" } },
        { "[]a]+", { "]a]" }, { "b" } },
        { "[^]a]", { "b" }, { "]", "a" } },
        { "[a-]", { "-", "a" }, { "b" } },
        { "[-^]", { "-", "^" }, { "a" } },
        { "[\\^x]", { "^", "x" }, { "a" } },
        { "[[]", { "[" }, { "]" } },
        { "[\\]\\\\]", { "]", "\\" }, { "a" } },
        { "\\x41\\x{42}\\101", { "ABA" }, { "" } },
        /* \0101 is \010 (backspace, three octal digits at most) then 1 */
        { "\\0101", { "\b1" }, { "A" } },
        { "\\t\\n\\r", { "\t\n\r" }, { "tnr" } },
        { "\\Qa.b\\E+", { "a.b", "a.bbb" }, { "axb" } },
        { "\\Q(x", { "(x" }, { "x" } },
        { "\xc3\xa9+", { "\xc3\xa9\xc3\xa9" }, { "\xc3\xa9\xa9", "" } },
        { "\\x{e9}", { "\xc3\xa9" }, { "e" } },
        { "\\bfoo\\b", { "foo" }, { "" } },
        { "\\Afoo\\z", { "foo" }, { "foo\n" } },
        { "a|", { "a", "" }, { "b" } },
        { "(a)|b", { "a", "b" }, { "ab" } },
        { "", { "" }, { "a" } },
        { "(?P<x>a)(?<y>b)", { "ab" }, { "a" } },
        { "a$", { "a" }, { "a\n" } },
        { "x*y+z?", { "yy", "xyz" }, { "xz" } },
        /* `.` and negated sets match one character, not one byte */
        { "caf.", { "caf\xc3\xa9", "cafe" }, { "caf\xc3", "caf" } },
        { "a.?b",
          { "a\xe2\x82\xac"
            "b",
            "ab" },
          { "a\xc3\xa9\xc3\xa9"
            "b" } },
        { "[^/]x", { "\xf0\x9f\x98\x80x", "ax" }, { "/x", "\xc3\xa9\xc3\xa9x" } },
        { "\\D|\\S\\W", { "\xc3\xa9", "a\xc3\xa9" }, { "1", "a\xc3\xa9\xc3\xa9" } },
        { "(?-s).+", { "\xc3\xa9t\xc3\xa9" }, { "a\nb" } },
        /* two one-or-more runs need two characters, not two bytes */
        { ".+[^a]+", { "ab", "\xc3\xa9\xc3\xa9" }, { "\xc3\xa9", "a" } },
        { "[^a]*.*x", { "\xc3\xa9x", "x" }, { "\xc3\xa9" } },
        /* lazy quantifiers: anchored, the same strings as greedy ones */
        { "train.+?0", { "train-llm-0", "trainx0" }, { "train0", "train-llm-1" } },
        { "(?U)a+b*?", { "aaa", "abb" }, { "b" } },
        /* bounded repetition of `.` counts characters */
        { ".{9}",
          { "train-llm", "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9" },
          { "abcdefgh",
            "\xc3\xa9"
            "abcdefg",
            "train-llm-0" } },
        { ".{2,5}-.*", { "ab-c", "batch-9", "\xc3\xa9\xc3\xa9-x" }, { "a-b", "abcdef-x", "\xc3\xa9-x" } },
        /* Unicode classes with an exact UTF-8 form */
        { "\\p{Han}+",
          { "\xe6\xb8\xac\xe8\xa9\xa6", "\xe3\x80\x85", "\xf0\xa0\x80\x80" },
          { "a", "\xc3\xa9", "\xe3\x80\x86", "" } },
        { "\\P{Han}|\\p{^Han}x", { "a", "\xc3\xa9", "\n", "\xe3\x80\x86x" }, { "\xe6\xb8\xac", "", "ab" } },
        { "\\p{Any}\\P{Any}?", { "\xc3\xa9", "\n" }, { "", "ab" } },
        { "a[^\\d\\D]?b",
          { "ab" },
          { "axb", "a1b",
            "a\xc3\xa9"
            "b" } },
    };
    char out[512], why[200];
    for (size_t i = 0; i < N(cases); i++) {
        int icase = -1;
        char wide[1025]; /* what the store takes: \P{Han} is about 500 bytes */
        int rc = promql_regex_to_posix(cases[i].re2, wide, sizeof wide, &icase, why, sizeof why);
        if (rc != 0) fail_msg("%s refused (%d): %s", cases[i].re2, rc, why);
        assert_int_equal(icase, 0);
        for (size_t j = 0; j < 4 && cases[i].yes[j]; j++)
            if (!re_matches(wide, cases[i].yes[j]))
                fail_msg("%s (-> %s) must match \"%s\"", cases[i].re2, wide, cases[i].yes[j]);
        for (size_t j = 0; j < 4 && cases[i].no[j]; j++)
            if (re_matches(wide, cases[i].no[j]))
                fail_msg("%s (-> %s) must not match \"%s\"", cases[i].re2, wide, cases[i].no[j]);
    }

    /* Exact output for a few: escapes, classes, case folding. */
    assert_ok(promql_regex_to_posix("a\\.b\\d", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "a\\.b[0-9]");
    assert_ok(promql_regex_to_posix("(?i)a1", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "[aA]1");
    assert_ok(promql_regex_to_posix("(?:x)", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "(x)");
    assert_ok(promql_regex_to_posix("\\W*", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "[^0-9A-Z_a-z]*");
    assert_ok(promql_regex_to_posix("foo.*", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "foo.*"); /* tsdb's prefix fast path still applies */
    /* One character of a negated set: an ASCII member or a UTF-8 sequence. */
    assert_ok(promql_regex_to_posix("[^a]", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "([^\x80-\xff"
                             "a]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]|"
                             "[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf])");

    /* Groups: (?:a) becomes POSIX group 1, so RE2's 1 (b) is POSIX 2, and
     * the named (?P<n>c) RE2's 2 is POSIX 3; a repeated é and a lone `.`
     * (one character) add one each, so (d) is POSIX 6. */
    promql_regex_groups_t g;
    const char *pat = "(?:a)(b)(?P<name>c)\xc3\xa9*.(d)";
    assert_ok(promql_regex_translate(pat, out, sizeof out, &g, why, sizeof why));
    assert_string_equal(
        out, "(a)(b)(c)(\xc3\xa9)*([^\x80-\xff]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]|"
             "[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf])(d)");
    assert_int_equal(g.n, 3);
    assert_int_equal(g.posix[0], 2);
    assert_int_equal(g.posix[1], 3);
    assert_int_equal(g.posix[2], 6);
    assert_int_equal(g.name_len[0], 0);
    assert_int_equal(g.name_len[1], 4);
    assert_memory_equal(pat + g.name_off[1], "name", 4);

    /* Captures through the anchored translation, as label_replace takes
     * them: RE2 group i is POSIX group posix[i - 1] + 1 under "^(...)$". */
    static const struct {
        const char *re2, *s, *want; /* RE2's $1 */
    } caps[] = {
        { "GPU-(?:[0-9a-f]+-){4}0*(\\d+)", "GPU-0a1b2c3d-0000-4000-8000-000000000005", "5" },
        { "GPU-(?:[0-9a-f]+-){4}0*(\\d+)", "GPU-0a1b2c3d-0000-4000-8000-000000000000", "0" },
        { "GPU-(?:[0-9a-f]+-){4}0*(\\d+)", "GPU-0a1b2c3d-0000-4000-8000-000000000120", "120" },
        { ".*(\\p{Han}+)", "NVIDIA H100 \xc3\xa9t\xc3\xa9 \xe6\xb8\xac\xe8\xa9\xa6", "\xe8\xa9\xa6" },
        { "NVIDIA (\\P{Han}+) .*", "NVIDIA H100 \xc3\xa9t\xc3\xa9 \xe6\xb8\xac", "H100 \xc3\xa9t\xc3\xa9" },
    };
    for (size_t i = 0; i < N(caps); i++) {
        assert_ok(promql_regex_translate(caps[i].re2, out, sizeof out, &g, why, sizeof why));
        char anch[1200];
        snprintf(anch, sizeof anch, "^(%s)$", out);
        regex_t re;
        assert_int_equal(regcomp(&re, anch, REG_EXTENDED), 0);
        regmatch_t m[64];
        if (regexec(&re, caps[i].s, 64, m, 0) != 0) fail_msg("%s must match %s", caps[i].re2, caps[i].s);
        regfree(&re);
        regmatch_t *c = &m[g.posix[0] + 1];
        size_t n = strlen(caps[i].want);
        if ((size_t)(c->rm_eo - c->rm_so) != n || memcmp(caps[i].s + c->rm_so, caps[i].want, n) != 0)
            fail_msg("%s on %s: $1 \"%.*s\", want \"%s\"", caps[i].re2, caps[i].s, (int)(c->rm_eo - c->rm_so),
                     caps[i].s + c->rm_so, caps[i].want);
    }
    /* Lazy with captures: RE2 would capture less ("(a+?)a*" takes "a"). */
    assert_err(promql_regex_translate("(a+?)a*", out, sizeof out, &g, why, sizeof why), STRATA_EBADREGEX);
    assert_string_equal(why,
                        "non-greedy repetition with capture groups has no POSIX equivalent (RE2 and POSIX "
                        "would capture different text)");
    assert_err(promql_regex_translate("(?U)(a)*", out, sizeof out, &g, why, sizeof why), STRATA_EBADREGEX);
    /* ...but no captures, or no map (a matcher): accepted, greedy. */
    assert_ok(promql_regex_translate("a+?b", out, sizeof out, &g, why, sizeof why));
    assert_string_equal(out, "a+b");
    assert_ok(promql_regex_to_posix("(a+?)a*", out, sizeof out, NULL, why, sizeof why));
    assert_string_equal(out, "(a+)a*");

    /* \p{Han} exactly: both ends of every range of Go 1.20's table
     * (Unicode 13) match, the code points just outside do not, and \P{Han}
     * the other way round. */
    static const unsigned han[][2] = {
        { 0x2e80, 0x2e99 },   { 0x2e9b, 0x2ef3 },   { 0x2f00, 0x2fd5 },   { 0x3005, 0x3005 },
        { 0x3007, 0x3007 },   { 0x3021, 0x3029 },   { 0x3038, 0x303b },   { 0x3400, 0x4dbf },
        { 0x4e00, 0x9ffc },   { 0xf900, 0xfa6d },   { 0xfa70, 0xfad9 },   { 0x16ff0, 0x16ff1 },
        { 0x20000, 0x2a6dd }, { 0x2a700, 0x2b734 }, { 0x2b740, 0x2b81d }, { 0x2b820, 0x2cea1 },
        { 0x2ceb0, 0x2ebe0 }, { 0x2f800, 0x2fa1d }, { 0x30000, 0x3134a },
    };
    char han_in[1025], han_out[1025];
    assert_ok(promql_regex_to_posix("\\p{Han}", han_in, sizeof han_in, NULL, why, sizeof why));
    assert_ok(promql_regex_to_posix("\\P{Han}", han_out, sizeof han_out, NULL, why, sizeof why));
    for (size_t i = 0; i < N(han); i++) {
        unsigned probe[4] = { han[i][0], han[i][1], han[i][0] - 1, han[i][1] + 1 };
        for (int k = 0; k < 4; k++) {
            char u[8];
            utf8(probe[k], u);
            int in = k < 2;
            if (re_matches(han_in, u) != in) fail_msg("\\p{Han} on U+%04X: want %d", probe[k], in);
            if (re_matches(han_out, u) == in) fail_msg("\\P{Han} on U+%04X: want %d", probe[k], !in);
        }
    }
    /* \P{Han} around the surrogates and at the ends of the code space. */
    static const unsigned other[] = { 0x01,   0x7f,   0x80,   0x7ff,   0x800,
                                      0xd7ff, 0xe000, 0xffff, 0x10000, 0x10ffff };
    for (size_t i = 0; i < N(other); i++) {
        char u[8];
        utf8(other[i], u);
        if (!re_matches(han_out, u)) fail_msg("\\P{Han} on U+%04X must match", other[i]);
        if (re_matches(han_in, u)) fail_msg("\\p{Han} on U+%04X must not match", other[i]);
    }

    static const struct {
        const char *re2, *why;
    } bad[] = {
        { "a**", "invalid nested repetition operator: `*`" },
        { "a++", "invalid nested repetition operator: `+`" },
        { "*a", "missing argument to repetition operator: `*`" },
        { "(+)", "missing argument to repetition operator: `+`" },
        { "a|?", "missing argument to repetition operator: `?`" },
        { "(a", "missing closing ): `(a`" },
        { "a)", "unexpected ): `a)`" },
        { "[a", "missing closing ]" },
        { "[]", "missing closing ]" },
        { "[z-a]", "invalid character class range: `z-a`" },
        { "[[:foo:]]", "invalid character class range: `[:foo:]`" },
        { "\\pL",
          "Unicode class `\\pL` is not supported: only \\p{Han} and \\p{Any} have an exact POSIX form "
          "here (\\pL, \\p{Lu}, \\pN need several KB)" },
        { "\\p{Lu}+ .*", "Unicode class `\\p{Lu}` is not supported: only \\p{Han} and \\p{Any} have an exact "
                         "POSIX form here (\\pL, \\p{Lu}, \\pN need several KB)" },
        { "NVIDIA (\\PL+).*",
          "Unicode class `\\PL` is not supported: only \\p{Han} and \\p{Any} have an exact "
          "POSIX form here (\\pL, \\p{Lu}, \\pN need several KB)" },
        { "\\p{Han", "invalid character class range: `\\p{Han`" },
        { "[\\p{Han}]", "Unicode classes (\\p, \\P) inside [] are not supported" },
        { "(?=a)", "lookaround `(?=` is not RE2 syntax" },
        { "(?<!a)", "lookaround `(?<!` is not RE2 syntax" },
        { "(a)\\1", "invalid escape sequence: `\\1`" },
        { "\\q", "invalid escape sequence: `\\q`" },
        { "\\x{110000}", "invalid escape sequence: `\\x`" },
        { "\\C", "invalid escape sequence: `\\C`" },
        { "a\\", "trailing backslash at end of expression" },
        { "a{1001}", "invalid repeat count: `{1001}`" },
        { "a{3,2}", "invalid repeat count: `{3,2}`" },
        /* a count of many digits once looped forever (found by fuzzing) */
        { "a{2,99999999999999999999}", "invalid repeat count: `{2,99999999999999999999}`" },
        { "(?m)^a", "multi-line `^` ((?m)) has no POSIX equivalent" },
        { "[\xc3\xa9]", "non-ASCII character in a character class has no POSIX equivalent here" },
        { "\xc3", "invalid UTF-8" },
        { "(?P<>a)", "invalid named capture: `(?P<>`" },
        { "(?z)", "invalid or unsupported Perl syntax: `(?z`" },
        { "(?i-)", "invalid or unsupported Perl syntax: `(?i-)`" },
        { "^*", "repetition of an empty-width assertion has no POSIX equivalent: `*`" },
        { "\\x00", "NUL character in pattern" },
        /* valid RE2, refused by tsdb_regex_check as pathological */
        { "x{1,101}", "repetition bound over 100" },
        { "(a+)+(b+)+(c+)+(d+)+(e+)+", "more than 4 repeated groups that repeat inside" },
    };
    for (size_t i = 0; i < N(bad); i++) {
        why[0] = 0;
        int rc = promql_regex_to_posix(bad[i].re2, out, sizeof out, NULL, why, sizeof why);
        if (rc != STRATA_EBADREGEX) fail_msg("%s: rc %d, out %s", bad[i].re2, rc, out);
        if (strcmp(why, bad[i].why) != 0)
            fail_msg("%s: why \"%s\", want \"%s\"", bad[i].re2, why, bad[i].why);
    }

    assert_err(promql_regex_to_posix("abcdef", out, 4, NULL, why, sizeof why), STRATA_EBUFSMALL);
    /* 20 lone dots are 20 groups of about 60 bytes: over the store's 1024,
     * a buffer too small for that, refused with a buffer that holds 1024. */
    assert_err(promql_regex_to_posix("....................", out, sizeof out, NULL, why, sizeof why),
               STRATA_EBUFSMALL);
    char big[1100];
    assert_err(promql_regex_to_posix("....................", big, sizeof big, NULL, why, sizeof why),
               STRATA_EBADREGEX);
    assert_string_equal(why, "pattern longer than 1024 bytes once translated");
    assert_ok(promql_regex_to_posix("abc", out, 4, NULL, why, sizeof why));
    assert_string_equal(out, "abc");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_extrapolation), cmocka_unit_test(test_irate_idelta),
        cmocka_unit_test(test_deriv_predict),      cmocka_unit_test(test_resets_changes),
        cmocka_unit_test(test_over_time),          cmocka_unit_test(test_quantile_long_windows),
        cmocka_unit_test(test_holt_winters),       cmocka_unit_test(test_quantile),
        cmocka_unit_test(test_bucket_quantile),    cmocka_unit_test(test_elem),
        cmocka_unit_test(test_regex_translate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
