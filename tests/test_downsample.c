/* test_downsample.c: api/downsample (bucket layouts, per-step aggregation from
 * raw samples and rollups, cross-series combination, histograms and
 * histogram_quantile, the holding rule).  Expected values are worked out by
 * hand in the comments. */
#include "test_helpers.h"
#include "downsample.h"
#include "holding.h"
#include "strata_log.h"

#include <math.h>

#define T0      INT64_C(1734688800000) /* 2024-12-20T10:00:00Z */
#define SEC(x)  ((int64_t)(x)*1000)
#define MIN(x)  ((int64_t)(x)*60000)
#define HOUR(x) ((int64_t)(x)*3600000)

static double stale_nan(void) { return test_bits_double(TSDB_STALE_NAN_BITS); }

/* Exact comparison of doubles (bit patterns), printing both on failure. */
#define assert_dbl(a, b)                                                                                  \
    do {                                                                                                  \
        double a_ = (a), b_ = (b);                                                                        \
        if (test_double_bits(a_) != test_double_bits(b_)) fail_msg("%s = %.17g, want %.17g", #a, a_, b_); \
    } while (0)

static void assert_points(const api_point_t *got, int n, const api_point_t *want, int nwant)
{
    if (n != nwant) fail_msg("got %d points, want %d", n, nwant);
    for (int i = 0; i < n; i++) {
        if (got[i].t != want[i].t)
            fail_msg("point %d: t = %lld, want %lld", i, (long long)got[i].t, (long long)want[i].t);
        if (test_double_bits(got[i].v) != test_double_bits(want[i].v))
            fail_msg("point %d (t %lld): v = %.17g, want %.17g", i, (long long)got[i].t, got[i].v, want[i].v);
    }
}

/* ---- layouts ---------------------------------------------------------------- */

static void test_layout_even(void **state)
{
    (void)state;
    api_buckets_t b;
    /* 60 s in 4 buckets of 15 s: edges T0, +15, +30, +45, +60 s */
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(60), 4));
    assert_int_equal(b.width, 15000);
    for (int i = 0; i <= 4; i++) assert_int_equal(api_buckets_edge(&b, i), T0 + SEC(15) * i);
    assert_int_equal(api_buckets_capacity(&b), 4);
    /* start belongs to bucket 1; an instant exactly at a bucket's end is in that bucket */
    assert_int_equal(api_buckets_index(&b, T0), 1);
    assert_int_equal(api_buckets_index(&b, T0 + 1), 1);
    assert_int_equal(api_buckets_index(&b, T0 + SEC(15)), 1);
    assert_int_equal(api_buckets_index(&b, T0 + SEC(15) + 1), 2);
    assert_int_equal(api_buckets_index(&b, T0 + SEC(45)), 3);
    assert_int_equal(api_buckets_index(&b, T0 + SEC(60)), 4);
    assert_int_equal(api_buckets_index(&b, T0 - 1), 0);
    assert_int_equal(api_buckets_index(&b, T0 + SEC(60) + 1), 0);
    /* invalid layouts */
    assert_err(api_buckets_init(&b, T0, T0 + SEC(60), 0), STRATA_EINVAL);
    assert_err(api_buckets_init(&b, T0, T0, 1), STRATA_EINVAL);
    assert_err(api_buckets_init(&b, T0 + 1, T0, 1), STRATA_EINVAL);
    assert_err(api_buckets_init(&b, T0, T0 + 3, 4), STRATA_EINVAL); /* < 1 ms per bucket */
}

static void test_layout_uneven(void **state)
{
    (void)state;
    api_buckets_t b;
    /* D = 10 ms, N = 3: e_i = floor(10 i / 3) = 0, 3, 6, 10 -> widths 3, 3, 4 */
    assert_ok(api_buckets_init(&b, T0, T0 + 10, 3));
    static const int64_t e3[] = { 0, 3, 6, 10 };
    for (int i = 0; i <= 3; i++) assert_int_equal(api_buckets_edge(&b, i), T0 + e3[i]);
    static const int64_t idx3[] = { 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3 }; /* t = T0 .. T0+10 */
    for (int t = 0; t <= 10; t++) assert_int_equal(api_buckets_index(&b, T0 + t), idx3[t]);

    /* D = 100000 ms, N = 7: floor(100000 i / 7) =
     * 0, 14285, 28571, 42857, 57142, 71428, 85714, 100000 */
    static const int64_t e7[] = { 0, 14285, 28571, 42857, 57142, 71428, 85714, 100000 };
    assert_ok(api_buckets_init(&b, T0, T0 + 100000, 7));
    for (int i = 0; i <= 7; i++) {
        assert_int_equal(api_buckets_edge(&b, i), T0 + e7[i]);
        if (i > 0) {
            assert_int_equal(api_buckets_index(&b, T0 + e7[i]), i);
            assert_int_equal(api_buckets_index(&b, T0 + e7[i - 1] + 1), i);
        }
    }
    /* a sample on an uneven edge: 3 samples of 1 at 14285, 14286, 100000 ms
     * -> COUNT 1 in bucket 1, 1 in bucket 2, 1 in bucket 7 */
    tsdb_sample_t s[] = { { T0 + 14285, 1 }, { T0 + 14286, 1 }, { T0 + 100000, 1 } };
    api_point_t out[7];
    api_point_t want[] = { { T0 + 14285, 1 }, { T0 + 28571, 1 }, { T0 + 100000, 1 } };
    assert_points(out, api_downsample(&b, API_AGG_COUNT, s, 3, out, 7), want, 3);
    /* rate divides by each bucket's own width: bucket 1 is 14.285 s */
    tsdb_sample_t c[] = { { T0, 0 }, { T0 + 14285, 10 } };
    api_point_t wr[] = { { T0 + 14285, 10 / 14.285 } };
    assert_points(out, api_downsample(&b, API_AGG_RATE, c, 2, out, 7), wr, 1);
}

/* ---- per-series aggregation ---------------------------------------------------- */

static void test_bucket_edges_and_avg(void **state)
{
    (void)state;
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(60), 2)); /* (T0, +30 s], (+30 s, +60 s] */
    tsdb_sample_t s[] = {
        { T0 - 1, 1000 },          /* before start: not aggregated */
        { T0, 1 },                 /* exactly at start: bucket 1 */
        { T0 + SEC(30), 3 },       /* exactly at bucket 1's end: bucket 1 */
        { T0 + SEC(30) + 1, 10 },  /* bucket 2 */
        { T0 + SEC(60), 20 },      /* exactly at end: bucket 2 */
        { T0 + SEC(60) + 1, 100 }, /* after end: ignored */
    };
    api_point_t out[2];
    /* avg: bucket 1 (1+3)/2 = 2, bucket 2 (10+20)/2 = 15 */
    api_point_t want[] = { { T0 + SEC(30), 2 }, { T0 + SEC(60), 15 } };
    assert_points(out, api_downsample(&b, API_AGG_AVG, s, 6, out, 2), want, 2);
    api_point_t wc[] = { { T0 + SEC(30), 2 }, { T0 + SEC(60), 2 } };
    assert_points(out, api_downsample(&b, API_AGG_COUNT, s, 6, out, 2), wc, 2);
    /* too small an output array */
    assert_err(api_downsample(&b, API_AGG_AVG, s, 6, out, 1), STRATA_ELIMIT);
    assert_err(api_downsample(&b, (enum api_agg)99, s, 6, out, 2), STRATA_EINVAL);
}

static void test_empty_buckets_omitted(void **state)
{
    (void)state;
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(60), 4));
    tsdb_sample_t s[] = { { T0 + SEC(5), 7 }, { T0 + SEC(50), 9 } };
    api_point_t out[4];
    /* only buckets 1 (ends +15 s) and 4 (ends +60 s) hold samples */
    api_point_t want[] = { { T0 + SEC(15), 7 }, { T0 + SEC(60), 9 } };
    assert_points(out, api_downsample(&b, API_AGG_LAST, s, 2, out, 4), want, 2);
    assert_int_equal(api_downsample(&b, API_AGG_LAST, s, 0, out, 4), 0);
}

static void test_gauge_aggregations(void **state)
{
    (void)state;
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(60), 1));
    tsdb_sample_t s[] = { { T0 + SEC(15), 4 }, { T0 + SEC(30), 8 }, { T0 + SEC(45), 6 } };
    api_point_t out[1];
    struct {
        enum api_agg agg;
        double want;
    } cases[] = {
        { API_AGG_AVG, 6 }, /* (4+8+6)/3 */
        { API_AGG_LAST, 6 }, { API_AGG_MAX, 8 },   { API_AGG_MIN, 4 },
        { API_AGG_SUM, 18 }, { API_AGG_COUNT, 3 }, { API_AGG_PRESENT, 1 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        api_point_t want = { T0 + SEC(60), cases[i].want };
        assert_points(out, api_downsample(&b, cases[i].agg, s, 3, out, 1), &want, 1);
    }
    /* compensated sum: 1e16 + 1 + 1 - 1e16 = 2 (a naive sum gives 0) */
    tsdb_sample_t k[] = { { T0 + 1, 1e16 }, { T0 + 2, 1 }, { T0 + 3, 1 }, { T0 + 4, -1e16 } };
    api_point_t wk = { T0 + SEC(60), 2 };
    assert_points(out, api_downsample(&b, API_AGG_SUM, k, 4, out, 1), &wk, 1);
    /* infinities are ordinary values: 1 + Inf + 2 = +Inf (not NaN from the
     * compensation term), max = +Inf */
    tsdb_sample_t inf[] = { { T0 + 1, 1 }, { T0 + 2, INFINITY }, { T0 + 3, 2 } };
    api_point_t wi = { T0 + SEC(60), INFINITY };
    assert_points(out, api_downsample(&b, API_AGG_SUM, inf, 3, out, 1), &wi, 1);
    assert_points(out, api_downsample(&b, API_AGG_AVG, inf, 3, out, 1), &wi, 1);
    assert_points(out, api_downsample(&b, API_AGG_MAX, inf, 3, out, 1), &wi, 1);
}

static void test_increase_and_rate(void **state)
{
    (void)state;
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(120), 2)); /* two 60 s buckets */
    tsdb_sample_t s[] = {
        { T0 - SEC(15), 100 }, /* baseline for bucket 1 */
        { T0 + SEC(15), 110 }, /* +10 */
        { T0 + SEC(30), 130 }, /* +20 */
        { T0 + SEC(45), 5 },   /* reset inside bucket 1: restarted from 0, +5 */
        { T0 + SEC(60), 20 },  /* +15  => bucket 1: 10+20+5+15 = 50 */
        { T0 + SEC(75), 3 },   /* reset across the edge: +3 */
        { T0 + SEC(90), 9 },   /* +6   => bucket 2: 9 */
    };
    api_point_t out[2];
    api_point_t wi[] = { { T0 + SEC(60), 50 }, { T0 + SEC(120), 9 } };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, s, 7, out, 2), wi, 2);
    /* rate = increase / 60 s */
    api_point_t wr[] = { { T0 + SEC(60), 50.0 / 60.0 }, { T0 + SEC(120), 9.0 / 60.0 } };
    assert_points(out, api_downsample(&b, API_AGG_RATE, s, 7, out, 2), wr, 2);

    /* no sample before bucket 1: the bucket's first sample is the baseline:
     * 110 -> 130 -> (reset) 5 -> 20 = 20 + 5 + 15 = 40, never extrapolated */
    api_point_t wn[] = { { T0 + SEC(60), 40 }, { T0 + SEC(120), 9 } };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, s + 1, 6, out, 2), wn, 2);

    /* a single sample with no predecessor: increase 0 */
    api_point_t w1 = { T0 + SEC(60), 0 };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, s + 1, 1, out, 2), &w1, 1);

    /* an empty bucket between two: bucket 2's baseline is bucket 1's last sample
     * even with a bucket in between (N=3 over 90 s: 30 s buckets) */
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(90), 3));
    tsdb_sample_t g[] = { { T0 + SEC(10), 1 }, { T0 + SEC(20), 4 }, { T0 + SEC(80), 10 } };
    api_point_t wg[] = { { T0 + SEC(30), 3 }, { T0 + SEC(90), 6 } };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, g, 3, out, 3), wg, 2);

    /* a repeated value (v == prev) is no reset: 7 -> 7 -> 7 -> 9 is +2, not 7 + 7 + 2 */
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(60), 1));
    tsdb_sample_t r[] = {
        { T0 - SEC(15), 7 }, { T0 + SEC(15), 7 }, { T0 + SEC(30), 7 }, { T0 + SEC(45), 9 }
    };
    api_point_t wrep = { T0 + SEC(60), 2 };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, r, 4, out, 1), &wrep, 1);
    api_point_t wrr = { T0 + SEC(60), 2.0 / 60.0 };
    assert_points(out, api_downsample(&b, API_AGG_RATE, r, 4, out, 1), &wrr, 1);
}

static void test_stale_markers_and_nans(void **state)
{
    (void)state;
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0, T0 + SEC(120), 2));
    tsdb_sample_t s[] = {
        { T0 + SEC(10), 5 },           { T0 + SEC(20), stale_nan() }, /* never aggregated */
        { T0 + SEC(40), 7 },           { T0 + SEC(50), NAN },         /* an ordinary NaN: dropped */
        { T0 + SEC(90), stale_nan() }, /* bucket 2 holds only a stale marker: omitted */
    };
    api_point_t out[2];
    api_point_t wa = { T0 + SEC(60), 6 }; /* (5+7)/2 */
    assert_points(out, api_downsample(&b, API_AGG_AVG, s, 5, out, 2), &wa, 1);
    api_point_t wc = { T0 + SEC(60), 2 };
    assert_points(out, api_downsample(&b, API_AGG_COUNT, s, 5, out, 2), &wc, 1);
    api_point_t wl = { T0 + SEC(60), 7 };
    assert_points(out, api_downsample(&b, API_AGG_LAST, s, 5, out, 2), &wl, 1);
    assert_points(out, api_downsample(&b, API_AGG_MAX, s, 5, out, 2), &wl, 1);

    /* a counter across a stale marker: 10, stale, 12 -> +2 (the chain is not
     * broken, as Prometheus drops stale markers from range vectors); then
     * 3 after another stale marker is a reset -> +3 */
    tsdb_sample_t c[] = {
        { T0 + SEC(10), 10 },          { T0 + SEC(20), stale_nan() }, { T0 + SEC(30), 12 },
        { T0 + SEC(70), stale_nan() }, { T0 + SEC(80), 3 },
    };
    api_point_t wi[] = { { T0 + SEC(60), 2 }, { T0 + SEC(120), 3 } };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, c, 5, out, 2), wi, 2);
}

static void test_native_resolution(void **state)
{
    (void)state;
    /* numberOfSamples = 0 over [T0+0.5 s, T0+60.5 s]: scrapes at .611 (not
     * whole seconds, and not on the start's .500 grid).  Every point is a
     * sample at its own timestamp; a grid layout would stamp them at
     * T0+10.5 s, T0+20.5 s, ... */
    const int64_t S = T0 + 500, E = T0 + SEC(60) + 500;
    api_buckets_t b;
    assert_ok(api_buckets_native(&b, S, E, 11000));
    assert_int_equal(b.n, 1);
    assert_int_equal(api_buckets_capacity(&b), 11000);
    assert_int_equal(api_buckets_index(&b, T0 + 3611), 1);
    assert_int_equal(api_buckets_index(&b, S - 1), 0);
    tsdb_sample_t g[] = {
        { T0 - 6389, 7 }, /* before start: not a point */
        { S, 0.5 },       /* exactly at start: a point */
        { T0 + 3611, 1 },    { T0 + 13611, 2.5 },   { T0 + 20000, stale_nan() }, /* never a point */
        { T0 + 23611, NAN },                                                     /* dropped */
        { T0 + 33611, 4 },   { T0 + 43611, -0.25 }, { E, 9 },                    /* exactly at end: a point */
        { T0 + 63611, 10 },                                                      /* after end */
    };
    const size_t ng = sizeof g / sizeof g[0];
    api_point_t out[16];
    api_point_t wg[] = {
        { S, 0.5 }, { T0 + 3611, 1 }, { T0 + 13611, 2.5 }, { T0 + 33611, 4 }, { T0 + 43611, -0.25 }, { E, 9 },
    };
    /* a gauge's within-step aggregation over one sample is the value itself */
    const enum api_agg gauges[] = { API_AGG_AVG, API_AGG_LAST, API_AGG_MAX, API_AGG_MIN, API_AGG_SUM };
    for (size_t k = 0; k < sizeof gauges / sizeof gauges[0]; k++)
        assert_points(out, api_downsample(&b, gauges[k], g, ng, out, 16), wg, 6);
    api_point_t w1[6];
    for (int i = 0; i < 6; i++) w1[i] = (api_point_t){ wg[i].t, 1 };
    assert_points(out, api_downsample(&b, API_AGG_PRESENT, g, ng, out, 16), w1, 6);
    assert_points(out, api_downsample(&b, API_AGG_COUNT, g, ng, out, 16), w1, 6);

    /* A counter: at each sample, the increase since the previous sample (its
     * baseline before start included), a drop counting as a restart from 0;
     * rate divides by the time since that sample.  The stale marker and the
     * NaN are skipped: the value after them compares with 103.5. */
    tsdb_sample_t c[] = {
        { T0 - 6389, 100 },                             /* baseline: no point of its own */
        { T0 + 3611, 103.5 },                           /* +3.5 over 10 s */
        { T0 + 13611, stale_nan() }, { T0 + 14111, 2 }, /* reset: +2 over 10.5 s */
        { T0 + 24111, NAN },         { T0 + 25611, 5 }, /* +3 over 11.5 s */
        { T0 + 70000, 6 },                              /* after end */
    };
    const size_t nc = sizeof c / sizeof c[0];
    api_point_t wi[] = { { T0 + 3611, 3.5 }, { T0 + 14111, 2 }, { T0 + 25611, 3 } };
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, c, nc, out, 16), wi, 3);
    api_point_t wr[] = { { T0 + 3611, 3.5 / 10.0 }, { T0 + 14111, 2 / 10.5 }, { T0 + 25611, 3 / 11.5 } };
    assert_points(out, api_downsample(&b, API_AGG_RATE, c, nc, out, 16), wr, 3);
    /* no sample before start: the first sample in range has no point */
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, c + 1, nc - 1, out, 16), wi + 1, 2);
    api_point_t wr2[] = { { T0 + 14111, 2 / 10.5 }, { T0 + 25611, 3 / 11.5 } };
    assert_points(out, api_downsample(&b, API_AGG_RATE, c + 1, nc - 1, out, 16), wr2, 2);

    /* --max-points: 6 points do not fit in 5 */
    assert_ok(api_buckets_native(&b, S, E, 5));
    assert_int_equal(api_buckets_capacity(&b), 5);
    assert_err(api_downsample(&b, API_AGG_LAST, g, ng, out, api_buckets_capacity(&b)), STRATA_ELIMIT);
    assert_points(out, api_downsample(&b, API_AGG_INCREASE, c, nc, out, api_buckets_capacity(&b)), wi, 3);
    /* never rollups, even on 1 h edges */
    assert_ok(api_buckets_native(&b, T0, T0 + HOUR(1), 11000));
    assert_int_equal(api_rollup_choose(&b), 0);
    assert_int_equal(api_rollup_aligned(&b, TSDB_ROLLUP_5M), 0);
    assert_err(api_buckets_native(&b, T0, T0, 10), STRATA_EINVAL);
}

/* ---- rollups ------------------------------------------------------------------- */

/* Builds rollup points from raw samples exactly as tsdb.h defines them:
 * interval (t-R, t], stale markers excluded, increase from the last sample
 * before the interval (or the interval's first sample) summed over resets. */
static size_t make_rollups(const tsdb_sample_t *s, size_t n, int64_t r, tsdb_rollup_point_t *out)
{
    size_t np = 0;
    int have_prev = 0;
    double prev = 0;
    for (size_t i = 0; i < n; i++) {
        double v = s[i].v;
        if (isnan(v)) continue;
        int64_t t = s[i].t, end = (t % r == 0) ? t : t - (t % r) + r; /* t > 0 here */
        if (np == 0 || out[np - 1].t != end)
            out[np++] = (tsdb_rollup_point_t){
                .t = end, .min = INFINITY, .max = -INFINITY, .first = v, .first_t = t
            };
        tsdb_rollup_point_t *p = &out[np - 1];
        p->count++;
        p->sum += v;
        if (v < p->min) p->min = v;
        if (v > p->max) p->max = v;
        if (have_prev) p->increase += v >= prev ? v - prev : v;
        p->last = v;
        p->last_t = t;
        prev = v;
        have_prev = 1;
    }
    return np;
}

static void test_rollups_equal_raw_when_aligned(void **state)
{
    (void)state;
    /* 3 h of 15 s samples at :07, :22, :37, :52 (none exactly on a 5 m edge),
     * integer gauge values and an integer counter with two resets and a stale
     * marker: every sum is exact, so raw and rollup results must be bit-identical. */
    enum { NS = 3 * 240 };
    static tsdb_sample_t g[NS], c[NS];
    static tsdb_rollup_point_t rg[NS], rc[NS];
    double counter = 1000;
    for (int i = 0; i < NS; i++) {
        int64_t t = T0 + SEC(7) + SEC(15) * i;
        g[i] = (tsdb_sample_t){ t, (double)((i * 37) % 101) };
        counter += (i * 13) % 7;
        if (i == 100 || i == 500) counter = (i % 5); /* resets */
        c[i] = (tsdb_sample_t){ t, counter };
    }
    g[300].v = stale_nan();
    c[301].v = stale_nan();
    static const enum api_agg aggs[] = { API_AGG_AVG,     API_AGG_LAST,     API_AGG_MAX,
                                         API_AGG_MIN,     API_AGG_SUM,      API_AGG_COUNT,
                                         API_AGG_PRESENT, API_AGG_INCREASE, API_AGG_RATE };
    /* layouts aligned to 5 m: 30 m buckets, 1 h buckets, and 3 x 20 m inside */
    struct {
        int64_t start, end;
        uint32_t n;
        int64_t res;
    } lay[] = {
        { T0, T0 + HOUR(3), 6, TSDB_ROLLUP_5M },
        { T0, T0 + HOUR(3), 3, TSDB_ROLLUP_1H },
        { T0 + MIN(20), T0 + MIN(80), 3, TSDB_ROLLUP_5M },
    };
    for (size_t l = 0; l < sizeof lay / sizeof lay[0]; l++) {
        api_buckets_t b;
        assert_ok(api_buckets_init(&b, lay[l].start, lay[l].end, lay[l].n));
        assert_int_equal(api_rollup_aligned(&b, lay[l].res), 1);
        /* aligned: exactly the intervals ending in (start, end] */
        int64_t tmin, tmax;
        assert_ok(api_rollup_range(&b, lay[l].res, &tmin, &tmax));
        assert_int_equal(tmin, lay[l].start + lay[l].res);
        assert_int_equal(tmax, lay[l].end);
        size_t ng = make_rollups(g, NS, lay[l].res, rg), nc = make_rollups(c, NS, lay[l].res, rc);
        for (size_t a = 0; a < sizeof aggs / sizeof aggs[0]; a++) {
            const tsdb_sample_t *raw = aggs[a] >= API_AGG_INCREASE ? c : g;
            const tsdb_rollup_point_t *ru = aggs[a] >= API_AGG_INCREASE ? rc : rg;
            size_t nru = aggs[a] >= API_AGG_INCREASE ? nc : ng;
            api_point_t want[8], got[8];
            int nw = api_downsample(&b, aggs[a], raw, NS, want, 8);
            assert_int_equal(nw, lay[l].n);
            int n = api_downsample_rollups(&b, aggs[a], lay[l].res, ru, nru, got, 8);
            assert_points(got, n, want, nw);
        }
    }
    /* the stated caveat: a sample exactly at start is in raw bucket 1 but in
     * the rollup interval ending at start, which is not read */
    tsdb_sample_t e[] = { { T0, 1 }, { T0 + MIN(1), 1 } };
    tsdb_rollup_point_t re[2];
    size_t nre = make_rollups(e, 2, TSDB_ROLLUP_5M, re);
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0, T0 + MIN(10), 1));
    api_point_t out[1];
    api_point_t w_raw = { T0 + MIN(10), 2 }, w_ru = { T0 + MIN(10), 1 };
    assert_points(out, api_downsample(&b, API_AGG_COUNT, e, 2, out, 1), &w_raw, 1);
    assert_points(out, api_downsample_rollups(&b, API_AGG_COUNT, TSDB_ROLLUP_5M, re, nre, out, 1), &w_ru, 1);
}

/* The same comparison end to end through the real store: samples written to
 * a tsdb in two blocks whose boundary falls inside a 5 m interval, rollups
 * read back with tsdb_series_set_rollups over [start, tmax] from
 * api_rollup_range, raw samples read back over [T0, end] (so bucket 1 has its
 * counter baseline), every aggregation compared bit for bit. */
static int read_series(tsdb_t *db, const char *name, int64_t mint, int64_t maxt, int64_t res,
                       const tsdb_sample_t **s, size_t *ns, const tsdb_rollup_point_t **p, size_t *np,
                       tsdb_series_set_t **set)
{
    tsdb_matcher_t m = { TSDB_MATCH_EQ, "__name__", name };
    assert_ok(tsdb_select(db, &m, 1, mint, maxt, set));
    assert_int_equal(tsdb_series_set_next(*set), 1);
    if (res) return tsdb_series_set_rollups(*set, res, p, np);
    return tsdb_series_set_samples(*set, s, ns);
}

static void test_rollups_from_tsdb_equal_raw(void **state)
{
    (void)state;
    strata_log_set_level(STRATA_LOG_WARN); /* open/cut info lines are noise here */
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));

    enum { NS = 3 * 240, CUT = 350 }; /* sample 350 is at T0+87m37s: mid-interval */
    static tsdb_sample_t g[NS], c[NS];
    double counter = 1000;
    for (int i = 0; i < NS; i++) {
        int64_t t = T0 + SEC(7) + SEC(15) * i;
        g[i] = (tsdb_sample_t){ t, (double)((i * 37) % 101) };
        counter += (i * 13) % 7;
        if (i == 100 || i == 500) counter = (i % 5);
        c[i] = (tsdb_sample_t){ t, counter };
    }
    g[300].v = stale_nan();
    c[301].v = stale_nan();
    tsdb_label_t lg[] = { { "__name__", "g" } }, lc[] = { { "__name__", "c" } };
    for (int part = 0; part < 2; part++) {
        size_t off = part ? CUT : 0, n = part ? NS - CUT : CUT;
        tsdb_series_input_t in[] = { { lg, 1, g + off, n }, { lc, 1, c + off, n } };
        tsdb_append_result_t res;
        assert_ok(tsdb_append(db, in, 2, &res));
        assert_int_equal(res.appended, 2 * n);
        assert_ok(tsdb_cut_head(db));
    }

    static const enum api_agg aggs[] = { API_AGG_AVG,     API_AGG_LAST,     API_AGG_MAX,
                                         API_AGG_MIN,     API_AGG_SUM,      API_AGG_COUNT,
                                         API_AGG_PRESENT, API_AGG_INCREASE, API_AGG_RATE };
    struct {
        int64_t start, end;
        uint32_t n;
        int64_t res;
    } lay[] = {
        { T0, T0 + HOUR(3), 6, TSDB_ROLLUP_5M },
        { T0, T0 + HOUR(3), 3, TSDB_ROLLUP_1H },
        { T0 + MIN(20), T0 + MIN(80), 3, TSDB_ROLLUP_5M },
        { T0 + MIN(60), T0 + MIN(120), 4, TSDB_ROLLUP_5M }, /* the block boundary inside */
    };
    for (size_t l = 0; l < sizeof lay / sizeof lay[0]; l++) {
        api_buckets_t b;
        int64_t tmin, tmax;
        assert_ok(api_buckets_init(&b, lay[l].start, lay[l].end, lay[l].n));
        assert_int_equal(api_rollup_choose(&b), lay[l].res);
        assert_ok(api_rollup_range(&b, lay[l].res, &tmin, &tmax));
        for (size_t a = 0; a < sizeof aggs / sizeof aggs[0]; a++) {
            const char *name = aggs[a] >= API_AGG_INCREASE ? "c" : "g";
            const tsdb_sample_t *raw;
            const tsdb_rollup_point_t *ru;
            size_t nraw, nru;
            tsdb_series_set_t *set;
            api_point_t want[8], got[8];
            assert_ok(read_series(db, name, T0, lay[l].end, 0, &raw, &nraw, NULL, NULL, &set));
            int nw = api_downsample(&b, aggs[a], raw, nraw, want, 8);
            tsdb_series_set_free(set);
            assert_int_equal(nw, lay[l].n);
            assert_ok(read_series(db, name, lay[l].start, tmax, lay[l].res, NULL, NULL, &ru, &nru, &set));
            int n = api_downsample_rollups(&b, aggs[a], lay[l].res, ru, nru, got, 8);
            tsdb_series_set_free(set);
            assert_points(got, n, want, nw);
        }
    }
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Mixed reads (api_downsample_mixed): whole 5 m / 1 h intervals from the
 * store's rollups, the ragged edges raw, compared with api_downsample on the
 * same raw samples for the aggregation of every one of the 23 metric types.
 * The series (15 s scrapes 7 s after the minute, about 50 h, written as two
 * blocks and the head with boundaries inside intervals):
 *   gi  integer gauge, ordinary NaNs, stale markers, a 40 min gap
 *   gd  dyadic gauge (multiples of 1/8): its sums are exact
 *   gf  decimal gauge (multiples of 0.1): its interval sums round
 *   ci  integer counter: resets inside intervals, at an interval's first
 *       sample and at bucket edges, a stale marker, a gap and a comeback
 *   cf  decimal counter (CPU seconds), resets
 * Every aggregation is bit-identical, except avg and sum of gf: those are
 * within count x 2^-52 of the sum of magnitudes (docs/downsampling.md). */
#include "catalog.h"

enum { MX_NS = 50 * 240 };

static void mixed_series(tsdb_sample_t *gi, tsdb_sample_t *gd, tsdb_sample_t *gf, tsdb_sample_t *ci,
                         tsdb_sample_t *cf, size_t *n)
{
    double cint = 500, cflt = 12.3;
    size_t k = 0;
    for (int i = 0; i < MX_NS; i++) {
        int64_t t = T0 + SEC(7) + SEC(15) * i;
        if (i >= 1000 && i < 1160) continue; /* a 40 min gap */
        gi[k] = (tsdb_sample_t){ t, (double)((i * 37) % 101) };
        gd[k] = (tsdb_sample_t){ t, (double)((i * 29) % 83) / 8.0 };
        gf[k] = (tsdb_sample_t){ t, (double)((i * 31) % 97) * 0.1 };
        cint += (i * 13) % 7;
        cflt += 0.1 * ((i * 7) % 5);
        /* resets: every 97th sample (inside intervals, and some at an interval's first
         * sample: i % 20 == 0 is at hh:mm:07 with mm a multiple of 5) */
        if (i % 97 == 0 || i % 260 == 0) cint = (double)(i % 3);
        if (i % 131 == 0 || i % 400 == 0) cflt = 0.1 * (i % 4);
        ci[k] = (tsdb_sample_t){ t, cint };
        cf[k] = (tsdb_sample_t){ t, cflt };
        if (i % 500 == 250) gi[k].v = NAN;
        if (i % 700 == 3) gi[k].v = stale_nan();
        if (i % 900 == 5) ci[k].v = stale_nan();
        k++;
    }
    *n = k;
}

static void test_mixed_equals_raw_every_type(void **state)
{
    (void)state;
    strata_log_set_level(STRATA_LOG_WARN);
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    static tsdb_sample_t gi[MX_NS], gd[MX_NS], gf[MX_NS], ci[MX_NS], cf[MX_NS];
    size_t n;
    mixed_series(gi, gd, gf, ci, cf, &n);
    const char *names[] = { "gi", "gd", "gf", "ci", "cf" };
    tsdb_sample_t *data[] = { gi, gd, gf, ci, cf };
    /* parts: [0, 4003) and [4003, 9111) become blocks (both cuts inside a 5 m
     * interval), the rest stays in the head */
    size_t cut[] = { 0, 4003, 9111, n };
    for (int part = 0; part < 3; part++) {
        tsdb_series_input_t in[5];
        tsdb_label_t lab[5][1];
        for (int k = 0; k < 5; k++) {
            lab[k][0] = (tsdb_label_t){ "__name__", names[k] };
            in[k] = (tsdb_series_input_t){ lab[k], 1, data[k] + cut[part], cut[part + 1] - cut[part] };
        }
        tsdb_append_result_t res;
        assert_ok(tsdb_append(db, in, 5, &res));
        if (part < 2) assert_ok(tsdb_cut_head(db));
    }

    /* res: the resolution compared (api_downsample_mixed is exact at any width);
     * choice: what api_rollup_mixed_choose picks for the layout */
    struct {
        int64_t start, end;
        uint32_t n;
        int64_t res, choice;
    } lay[] = {
        { T0 + MIN(1) + SEC(7), T0 + HOUR(5) + MIN(3), 37, TSDB_ROLLUP_5M, 0 }, /* 8.1 min buckets */
        { T0 + SEC(13), T0 + HOUR(6) - 1, 50, TSDB_ROLLUP_5M, 0 },         /* starts inside an interval */
        { T0 + MIN(2), T0 + MIN(2) + 20 * 604800, 20, TSDB_ROLLUP_5M, 0 }, /* 604.8 s, as 7 d / 1000 */
        { T0 + MIN(5) + SEC(7), T0 + HOUR(10) + SEC(22), 25, TSDB_ROLLUP_5M, TSDB_ROLLUP_5M }, /* 23.8 min */
        { T0 + MIN(3), T0 + HOUR(20) + SEC(3), 9, TSDB_ROLLUP_5M, TSDB_ROLLUP_5M },            /* 2.2 h */
        { T0 + HOUR(4) + MIN(17), T0 + HOUR(48) + MIN(17) + 1, 3, TSDB_ROLLUP_1H,
          TSDB_ROLLUP_1H }, /* 14.7 h */
    };
    enum { CAP = 128 };
    api_point_t want[CAP], got[CAP];
    int inexact = 0, used = 0;
    for (size_t l = 0; l < sizeof lay / sizeof lay[0]; l++) {
        api_buckets_t b;
        assert_ok(api_buckets_init(&b, lay[l].start, lay[l].end, lay[l].n));
        assert_int_equal(api_rollup_aligned(&b, TSDB_ROLLUP_5M), 0);
        assert_int_equal(api_rollup_mixed_choose(&b), lay[l].choice);
        for (int type = 0; type < API_METRIC_COUNT; type++) {
            enum api_agg agg = api_catalog_get((enum api_metric_type)type)->agg;
            int counter = agg == API_AGG_INCREASE || agg == API_AGG_RATE;
            for (int k = counter ? 3 : 0; k < (counter ? 5 : 3); k++) {
                tsdb_matcher_t m = { TSDB_MATCH_EQ, "__name__", names[k] };
                tsdb_series_set_t *set;
                const tsdb_sample_t *raw;
                const tsdb_rollup_point_t *ru;
                size_t nraw, nru;
                /* the metrics query's mixed read: [start - staleness, end], samples and rollups */
                assert_ok(tsdb_select(db, &m, 1, lay[l].start - MIN(5), lay[l].end, &set));
                assert_int_equal(tsdb_series_set_next(set), 1);
                assert_ok(tsdb_series_set_samples(set, &raw, &nraw));
                assert_ok(tsdb_series_set_rollups(set, lay[l].res, &ru, &nru));
                int nw = api_downsample(&b, agg, raw, nraw, want, CAP);
                int ng = api_downsample_mixed(&b, agg, lay[l].res, raw, nraw, ru, nru, got, CAP);
                assert_true(nw > 0);
                used += nru > 0;
                if (k == 2 && (agg == API_AGG_AVG || agg == API_AGG_SUM)) {
                    /* decimal sums: the store's per-interval plain sums round */
                    assert_int_equal(ng, nw);
                    for (int i = 0; i < nw; i++) {
                        assert_int_equal(got[i].t, want[i].t);
                        double tol = 40 * 0x1p-52 * 9.6 * (agg == API_AGG_SUM ? 4000 : 1);
                        if (fabs(got[i].v - want[i].v) > tol)
                            fail_msg("%s %s layout %zu point %d: %.17g vs %.17g", api_catalog_get(type)->name,
                                     names[k], l, i, got[i].v, want[i].v);
                        inexact += got[i].v != want[i].v;
                    }
                } else {
                    if (ng != nw || memcmp(got, want, (size_t)nw * sizeof *got) != 0)
                        fail_msg("%s on %s, layout %zu differs", api_catalog_get(type)->name, names[k], l);
                    assert_points(got, ng, want, nw);
                }
                tsdb_series_set_free(set);
            }
        }
    }
    assert_true(used > 0);
    (void)inexact; /* how many decimal avg/sum points round differently: informative only */
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* The rollup points really stand for whole intervals: the raw samples inside
 * them can be anything.  One bucket (T0+2m, T0+14m]: raw edge (T0+2m, T0+5m]
 * holds 60 and 61 (at +3m, +4m), intervals (5m, 10m] = {count 3, sum 30, min
 * 1, max 20, last 9} from its point, the edge (10m, 14m] holds 100 at +12m.
 * The samples at +6m, +7m, +8m are garbage the rollup path must skip.  A
 * point with a NaN sum (the store counts NaNs) is not used: raw again. */
static void test_mixed_uses_whole_intervals(void **state)
{
    (void)state;
    api_buckets_t b;
    assert_ok(api_buckets_init(&b, T0 + MIN(2), T0 + MIN(14), 1));
    tsdb_sample_t s[] = { { T0 + MIN(3), 60 },  { T0 + MIN(4), 61 }, { T0 + MIN(6), -1e9 },
                          { T0 + MIN(7), 1e9 }, { T0 + MIN(8), 5 },  { T0 + MIN(12), 100 } };
    tsdb_rollup_point_t p[] = {
        { .t = T0 + MIN(5), .count = 2, .sum = 121, .min = 60, .max = 61, .last = 61 },
        { .t = T0 + MIN(10), .count = 3, .sum = 30, .min = 1, .max = 20, .last = 9 },
        { .t = T0 + MIN(15), .count = 1, .sum = 100, .min = 100, .max = 100, .last = 100 }
    };
    api_point_t out[1];
    struct {
        enum api_agg agg;
        double v;
    } want[] = {
        { API_AGG_COUNT, 6 }, /* 2 + 3 + 1 */
        { API_AGG_SUM, 251 }, /* 121 + 30 + 100 */
        { API_AGG_MIN, 1 },   { API_AGG_MAX, 100 }, { API_AGG_LAST, 100 }, { API_AGG_AVG, 251.0 / 6 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        api_point_t w = { T0 + MIN(14), want[i].v };
        assert_points(out, api_downsample_mixed(&b, want[i].agg, TSDB_ROLLUP_5M, s, 6, p, 3, out, 1), &w, 1);
    }
    /* the interval's point has a NaN sum: its raw samples count (-1e9 is the minimum) */
    p[1].sum = NAN;
    api_point_t w = { T0 + MIN(14), -1e9 };
    assert_points(out, api_downsample_mixed(&b, API_AGG_MIN, TSDB_ROLLUP_5M, s, 6, p, 3, out, 1), &w, 1);
    /* counters: (5m, 10m] from 61 to 9 is a drop, so that interval is read raw:
     * 60 -> 61 -> -1e9 (reset: +61) -> 1e9 -> 5 (reset: +1e9) -> 100;
     * increase = 100 - 60 + 61 + 1e9 */
    p[1].sum = 30;
    w.v = (100.0 - 60) + (61 + 1e9);
    assert_points(out, api_downsample_mixed(&b, API_AGG_INCREASE, TSDB_ROLLUP_5M, s, 6, p, 3, out, 1), &w, 1);
    /* a monotone interval 61 -> 70 (first 62, increase 9 = 70 - 61) stands for
     * its samples; the raw path would have seen the garbage */
    p[1] = (tsdb_rollup_point_t){ .t = T0 + MIN(10),
                                  .count = 3,
                                  .sum = 198,
                                  .min = 62,
                                  .max = 70,
                                  .last = 70,
                                  .first = 62,
                                  .increase = 9 };
    w.v = 100.0 - 60;
    assert_points(out, api_downsample_mixed(&b, API_AGG_INCREASE, TSDB_ROLLUP_5M, s, 6, p, 3, out, 1), &w, 1);
    /* the same with a hidden reset: the store's increase 9 + 65 (62, 65, 3 -> 70)
     * is not last - prev, so the interval is read raw */
    p[1].increase = 74;
    w.v = (100.0 - 60) + (61 + 1e9);
    assert_points(out, api_downsample_mixed(&b, API_AGG_INCREASE, TSDB_ROLLUP_5M, s, 6, p, 3, out, 1), &w, 1);
    /* choice: raw under 20 min (4 intervals of 5 m), 5 m up to 4 h, 1 h from
     * 4 h; native never */
    assert_ok(api_buckets_init(&b, T0, T0 + MIN(1200) - 1, 60));
    assert_int_equal(api_rollup_mixed_choose(&b), 0);
    assert_ok(api_buckets_init(&b, T0, T0 + MIN(1200), 60));
    assert_int_equal(api_rollup_mixed_choose(&b), TSDB_ROLLUP_5M);
    assert_ok(api_buckets_init(&b, T0, T0 + HOUR(8) - 1, 2));
    assert_int_equal(api_rollup_mixed_choose(&b), TSDB_ROLLUP_5M);
    assert_ok(api_buckets_init(&b, T0, T0 + HOUR(8), 2));
    assert_int_equal(api_rollup_mixed_choose(&b), TSDB_ROLLUP_1H);
    assert_ok(api_buckets_native(&b, T0, T0 + HOUR(24), 10));
    assert_int_equal(api_rollup_mixed_choose(&b), 0);
    assert_err(api_downsample_mixed(&b, API_AGG_SUM, TSDB_ROLLUP_5M, s, 6, p, 3, out, 1), STRATA_EINVAL);
}

static void test_rollups_misaligned_and_choice(void **state)
{
    (void)state;
    api_buckets_t b;
    /* misaligned edges: [T0+1m, T0+21m], N = 2 -> edges +1m, +11m, +21m.
     * 5 m intervals ending at +5m, +10m, +15m, +20m, +25m begin (first ms)
     * at +0m+1ms (before start: dropped), +5m+1ms (bucket 1), +10m+1ms
     * (bucket 1), +15m+1ms (bucket 2), +20m+1ms (bucket 2). */
    assert_ok(api_buckets_init(&b, T0 + MIN(1), T0 + MIN(21), 2));
    assert_int_equal(api_rollup_aligned(&b, TSDB_ROLLUP_5M), 0);
    tsdb_rollup_point_t p[5];
    for (int i = 0; i < 5; i++)
        p[i] = (tsdb_rollup_point_t){ .t = T0 + MIN(5) * (i + 1),
                                      .count = (uint32_t)(i + 1),
                                      .sum = 10.0 * (i + 1),
                                      .min = 1,
                                      .max = 9,
                                      .last = i,
                                      .increase = 100 };
    api_point_t out[2];
    api_point_t wc[] = { { T0 + MIN(11), 2 + 3 }, { T0 + MIN(21), 4 + 5 } };
    assert_points(out, api_downsample_rollups(&b, API_AGG_COUNT, TSDB_ROLLUP_5M, p, 5, out, 2), wc, 2);
    api_point_t wa[] = { { T0 + MIN(11), 50.0 / 5 }, { T0 + MIN(21), 90.0 / 9 } };
    assert_points(out, api_downsample_rollups(&b, API_AGG_AVG, TSDB_ROLLUP_5M, p, 5, out, 2), wa, 2);
    api_point_t wl[] = { { T0 + MIN(11), 2 }, { T0 + MIN(21), 4 } };
    assert_points(out, api_downsample_rollups(&b, API_AGG_LAST, TSDB_ROLLUP_5M, p, 5, out, 2), wl, 2);
    /* rate over the 600 s bucket: 200 / 600 */
    api_point_t wr[] = { { T0 + MIN(11), 200.0 / 600.0 }, { T0 + MIN(21), 200.0 / 600.0 } };
    assert_points(out, api_downsample_rollups(&b, API_AGG_RATE, TSDB_ROLLUP_5M, p, 5, out, 2), wr, 2);
    /* the points read: t = +10m (first to begin at/after +1m) .. +25m (holds +21m) */
    int64_t tmin, tmax;
    assert_ok(api_rollup_range(&b, TSDB_ROLLUP_5M, &tmin, &tmax));
    assert_int_equal(tmin, T0 + MIN(10));
    assert_int_equal(tmax, T0 + MIN(25));
    /* an interval holding no sample is skipped */
    p[2].count = 0;
    api_point_t wc2[] = { { T0 + MIN(11), 2 }, { T0 + MIN(21), 9 } };
    assert_points(out, api_downsample_rollups(&b, API_AGG_COUNT, TSDB_ROLLUP_5M, p, 5, out, 2), wc2, 2);

    /* which resolution (T0 is a whole hour) */
    assert_ok(api_buckets_init(&b, T0, T0 + HOUR(2), 2)); /* 1 h aligned */
    assert_int_equal(api_rollup_choose(&b), TSDB_ROLLUP_1H);
    assert_ok(api_buckets_init(&b, T0, T0 + HOUR(2), 4)); /* 30 m: 5 m aligned */
    assert_int_equal(api_rollup_choose(&b), TSDB_ROLLUP_5M);
    assert_ok(api_buckets_init(&b, T0, T0 + HOUR(1), 20)); /* 3 m < 5 m: raw */
    assert_int_equal(api_rollup_choose(&b), 0);
    assert_ok(api_buckets_init(&b, T0 + 7, T0 + HOUR(2) + 7, 4)); /* 30 m misaligned: raw */
    assert_int_equal(api_rollup_choose(&b), 0);
    assert_ok(api_buckets_init(&b, T0 + 7, T0 + HOUR(2) + 7, 2)); /* 1 h misaligned >= 12 x 5 m */
    assert_int_equal(api_rollup_choose(&b), TSDB_ROLLUP_5M);
    /* 30 days in 20 buckets of 36 h, misaligned: 1 h rollups (36 h >= 12 h) */
    assert_ok(api_buckets_init(&b, T0 + 12345, T0 + 12345 + HOUR(24 * 30), 20));
    assert_int_equal(api_rollup_choose(&b), TSDB_ROLLUP_1H);
    assert_ok(api_buckets_native(&b, T0, T0 + HOUR(1), 11000));
    assert_int_equal(api_rollup_choose(&b), 0);
}

/* ---- across series ----------------------------------------------------------------- */

static void test_combiner(void **state)
{
    (void)state;
    strata_arena_t *arena = strata_arena_new(0);
    const int64_t t1 = T0 + SEC(15), t2 = T0 + SEC(30), t3 = T0 + SEC(45);
    api_point_t a[] = { { t1, 1 }, { t2, 2 } };
    api_point_t b[] = { { t2, 10 }, { t3, 20 } };
    api_point_t c[] = { { t1, 4 } };
    struct {
        enum api_combine op;
        double w1, w2, w3;
    } cases[] = {
        { API_COMBINE_SUM, 5, 12, 20 },  /* 1+4, 2+10, 20 */
        { API_COMBINE_AVG, 2.5, 6, 20 }, /* 5/2, 12/2, 20/1 */
        { API_COMBINE_COUNT, 2, 2, 1 },
    };
    for (size_t i = 0; i < 3; i++) {
        api_combiner_t *cb;
        assert_ok(api_combiner_new(arena, cases[i].op, &cb));
        assert_ok(api_combiner_add(cb, a, 2));
        assert_ok(api_combiner_add(cb, b, 2));
        assert_ok(api_combiner_add(cb, c, 1));
        assert_ok(api_combiner_add(cb, NULL, 0));
        assert_int_equal(api_combiner_count(cb), 3);
        api_point_t out[3];
        api_point_t want[] = { { t1, cases[i].w1 }, { t2, cases[i].w2 }, { t3, cases[i].w3 } };
        assert_points(out, api_combiner_result(cb, out, 3), want, 3);
        assert_err(api_combiner_result(cb, out, 2), STRATA_ELIMIT);
    }
    api_combiner_t *cb;
    assert_err(api_combiner_new(arena, API_COMBINE_NONE, &cb), STRATA_EINVAL);
    assert_ok(api_combiner_new(arena, API_COMBINE_SUM, &cb));
    api_point_t unsorted[] = { { t2, 1 }, { t1, 1 } };
    assert_err(api_combiner_add(cb, unsorted, 2), STRATA_EINVAL);

    /* growth: 200 series, series k has points at steps k..k+99 of value k;
     * step s gets the series max(0,s-99)..min(s,199): check sum and count */
    api_combiner_t *sum, *cnt;
    assert_ok(api_combiner_new(arena, API_COMBINE_SUM, &sum));
    assert_ok(api_combiner_new(arena, API_COMBINE_COUNT, &cnt));
    api_point_t pts[100];
    for (int k = 0; k < 200; k++) {
        for (int j = 0; j < 100; j++) pts[j] = (api_point_t){ T0 + SEC(k + j), k };
        assert_ok(api_combiner_add(sum, pts, 100));
        assert_ok(api_combiner_add(cnt, pts, 100));
    }
    static api_point_t out[299], outc[299];
    assert_int_equal(api_combiner_result(sum, out, 299), 299);
    assert_int_equal(api_combiner_result(cnt, outc, 299), 299);
    for (int s = 0; s < 299; s++) {
        int lo = s - 99 > 0 ? s - 99 : 0, hi = s < 199 ? s : 199;
        assert_int_equal(out[s].t, T0 + SEC(s));
        assert_dbl(out[s].v, (double)(lo + hi) * (hi - lo + 1) / 2);
        assert_dbl(outc[s].v, (double)(hi - lo + 1));
    }
    strata_arena_free(arena);
}

/* ---- histograms ------------------------------------------------------------------ */

static void test_histogram_quantile_prometheus(void **state)
{
    (void)state;
    /* cumulative 10, 40, 80, 98, 100 for le 0.1, 0.5, 1, 2.5, +Inf (unsorted input) */
    api_hist_bucket_t h[] = { { INFINITY, 100 }, { 0.5, 40 }, { 2.5, 98 }, { 0.1, 10 }, { 1, 80 } };
    api_hist_bucket_t w[5];
    /* p50: rank 50 -> bucket le=1 (first count >= 50): 0.5 + (1-0.5) x (50-40)/(80-40) = 0.625 */
    memcpy(w, h, sizeof h);
    assert_dbl(api_histogram_quantile(0.5, w, 5), 0.625);
    /* p90: rank 90 -> le=2.5: 1 + 1.5 x (90-80)/(98-80) = 1 + 1.5 x 10/18 */
    memcpy(w, h, sizeof h);
    assert_dbl(api_histogram_quantile(0.9, w, 5), 1.0 + 1.5 * (10.0 / 18.0));
    /* p99: rank 99 > 98 -> the +Inf bucket -> the previous bound, 2.5 */
    memcpy(w, h, sizeof h);
    assert_dbl(api_histogram_quantile(0.99, w, 5), 2.5);
    /* p5: rank 5 in the first bucket, lower bound 0: 0.1 x 5/10 = 0.05 */
    memcpy(w, h, sizeof h);
    assert_dbl(api_histogram_quantile(0.05, w, 5), 0 + 0.1 * (5.0 / 10.0));
    /* q out of range */
    memcpy(w, h, sizeof h);
    assert_dbl(api_histogram_quantile(-0.1, w, 5), -INFINITY);
    assert_dbl(api_histogram_quantile(1.1, w, 5), INFINITY);
    assert_true(isnan(api_histogram_quantile(NAN, w, 5)));

    /* first bucket with a bound <= 0 returns its bound */
    api_hist_bucket_t neg[] = { { -1, 5 }, { 0, 10 }, { INFINITY, 10 } };
    assert_dbl(api_histogram_quantile(0.25, neg, 3), -1);
    /* no +Inf bucket, zero total, a single bucket: NaN */
    api_hist_bucket_t noinf[] = { { 1, 5 }, { 2, 10 } };
    assert_true(isnan(api_histogram_quantile(0.5, noinf, 2)));
    api_hist_bucket_t zero[] = { { 1, 0 }, { INFINITY, 0 } };
    assert_true(isnan(api_histogram_quantile(0.5, zero, 2)));
    api_hist_bucket_t one[] = { { INFINITY, 10 } };
    assert_true(isnan(api_histogram_quantile(0.5, one, 1)));

    /* monotonicity fix-up: 10, 4, 12, 12 -> 10, 10, 12, 12; p50 rank 6 is in
     * the first bucket: 1 x 6/10 = 0.6 (without the fix-up the search would
     * land on le=3: 2.25) */
    api_hist_bucket_t nm[] = { { 1, 10 }, { 2, 4 }, { 3, 12 }, { INFINITY, 12 } };
    assert_dbl(api_histogram_quantile(0.5, nm, 4), 0.6);
    /* insignificant deltas (relative < 1e-12) are ignored: 100, 100+1e-11,
     * 100+1e-11 -> 100, 100, 100; p100 rank 100 -> first bucket: 1 */
    api_hist_bucket_t tiny[] = { { 1, 100 }, { 2, 100 + 1e-11 }, { INFINITY, 100 + 1e-11 } };
    assert_dbl(api_histogram_quantile(1, tiny, 3), 1);
    /* equal bounds are merged by summing: (1: 3) + (1: 2) = (1: 5); p50 rank 5 -> 1 */
    api_hist_bucket_t dup[] = { { 1, 3 }, { 1, 2 }, { INFINITY, 10 } };
    assert_dbl(api_histogram_quantile(0.5, dup, 3), 1);
}

static void test_histogram_build(void **state)
{
    (void)state;
    strata_arena_t *arena = strata_arena_new(0);
    const int64_t t1 = T0 + MIN(1), t2 = T0 + MIN(2), t3 = T0 + MIN(3);
    /* two pods' per-step increases of time_to_first_token_seconds_bucket:
     *         le:  0.1  0.5   1  2.5  +Inf
     *   pod A t1:    6   25  50   60    61    t2: 1 1 1 1 1    t3: all 0
     *   pod B t1:    4   15  30   38    39    (no points at t2, t3)
     *   sum   t1:   10   40  80   98   100 */
    api_point_t a[5][3], bb[5][1];
    const double av[5] = { 6, 25, 50, 60, 61 }, bv[5] = { 4, 15, 30, 38, 39 };
    for (int j = 0; j < 5; j++) {
        a[j][0] = (api_point_t){ t1, av[j] };
        a[j][1] = (api_point_t){ t2, 1 };
        a[j][2] = (api_point_t){ t3, 0 };
        bb[j][0] = (api_point_t){ t1, bv[j] };
    }
    static const char *les[5] = { "0.1", "0.5", "1", "2.5", "+Inf" };
    /* inputs in scrambled order; an unparseable le is ignored */
    api_point_t junk[] = { { t1, 1000 } };
    api_hist_input_t in[] = {
        { les[4], a[4], 3 }, { les[2], bb[2], 1 }, { les[0], a[0], 3 },  { "abc", junk, 1 },
        { les[3], a[3], 3 }, { les[1], bb[1], 1 }, { les[4], bb[4], 1 }, { les[2], a[2], 3 },
        { les[1], a[1], 3 }, { les[0], bb[0], 1 }, { les[3], bb[3], 1 },
    };
    api_hist_t *h;
    assert_ok(api_hist_build(arena, in, sizeof in / sizeof in[0], &h));
    assert_int_equal(api_hist_nles(h), 5);
    for (int j = 0; j < 5; j++) assert_string_equal(api_hist_le(h, (size_t)j), les[j]);
    assert_int_equal(api_hist_nsteps(h), 3);
    assert_int_equal(api_hist_step_time(h, 0), t1);
    assert_int_equal(api_hist_step_time(h, 2), t3);
    const double sum_t1[5] = { 10, 40, 80, 98, 100 };
    for (int j = 0; j < 5; j++) {
        assert_dbl(api_hist_count(h, 0, (size_t)j), sum_t1[j]);
        assert_dbl(api_hist_count(h, 1, (size_t)j), 1);
        assert_dbl(api_hist_count(h, 2, (size_t)j), 0); /* zeros included */
    }
    double q;
    assert_ok(api_hist_quantile(h, 0, 0.5, &q));
    assert_dbl(q, 0.625);
    assert_ok(api_hist_quantile(h, 0, 0.9, &q));
    assert_dbl(q, 1.0 + 1.5 * (10.0 / 18.0));
    assert_ok(api_hist_quantile(h, 0, 0.99, &q));
    assert_dbl(q, 2.5);
    /* t2: 1 observation, all in the first bucket: p50 = 0.1 x 0.5/1 = 0.05 */
    assert_ok(api_hist_quantile(h, 1, 0.5, &q));
    assert_dbl(q, 0.05);
    /* t3: zero total -> the step is omitted from percentile output */
    assert_err(api_hist_quantile(h, 2, 0.5, &q), STRATA_ENOTFOUND);
    /* the quantile did not disturb the cumulative counts */
    assert_dbl(api_hist_count(h, 0, 1), 40);

    /* "1" and "1.0" stay distinct keys, ordered by bound then first
     * appearance, and are merged for the quantile: (1: 3+2), (+Inf: 10) */
    api_point_t p3[] = { { t1, 3 } }, p2[] = { { t1, 2 } }, p10[] = { { t1, 10 } };
    api_hist_input_t in2[] = { { "+Inf", p10, 1 }, { "1.0", p2, 1 }, { "1", p3, 1 } };
    assert_ok(api_hist_build(arena, in2, 3, &h));
    assert_int_equal(api_hist_nles(h), 3);
    assert_string_equal(api_hist_le(h, 0), "1.0");
    assert_string_equal(api_hist_le(h, 1), "1");
    assert_string_equal(api_hist_le(h, 2), "+Inf");
    assert_ok(api_hist_quantile(h, 0, 0.5, &q));
    assert_dbl(q, 1);
    /* without a +Inf bucket no quantile exists */
    assert_ok(api_hist_build(arena, in2 + 1, 2, &h));
    assert_err(api_hist_quantile(h, 0, 0.5, &q), STRATA_ENOTFOUND);
    /* nothing at all */
    assert_ok(api_hist_build(arena, NULL, 0, &h));
    assert_int_equal(api_hist_nsteps(h), 0);
    assert_int_equal(api_hist_nles(h), 0);
    strata_arena_free(arena);
}

/* ---- holding rule ------------------------------------------------------------------- */

static void test_hold_integral_gpu_hours(void **state)
{
    (void)state;
    /* 2 GPUs allocated from 10:00 to 13:30: a sample of 2 every 15 s from
     * 10:00:00 to 13:29:45 and a stale marker at 13:30:00.
     * 2 x 3.5 h = 2 x 12600000 ms = 25200000 value-ms = 7.0 GPU hours. */
    enum { NS = 14 * 60 + 1 }; /* 3.5 h / 15 s = 840 samples + the marker */
    static tsdb_sample_t s[NS];
    for (int i = 0; i < NS - 1; i++) s[i] = (tsdb_sample_t){ T0 + SEC(15) * i, 2 };
    s[NS - 1] = (tsdb_sample_t){ T0 + HOUR(3) + MIN(30), stale_nan() };
    api_hold_integral_t r;
    assert_ok(api_hold_integral(s, NS, T0 - HOUR(1), T0 + HOUR(5), MIN(5), &r));
    assert_dbl(r.value_ms, 25200000.0);
    assert_dbl(r.value_ms / 3600000.0, 7.0);
    assert_int_equal(r.held_ms, HOUR(3) + MIN(30));
    /* without the stale marker the last sample (13:29:45) holds 5 m, to
     * 13:34:45: 7.0 + 2 x 285 s = 25200000 + 570000 value-ms */
    assert_ok(api_hold_integral(s, NS - 1, T0, T0 + HOUR(5), MIN(5), &r));
    assert_dbl(r.value_ms, 25200000.0 + 570000.0);
    /* a window [11:00, 12:00) inside: 2 x 1 h */
    assert_ok(api_hold_integral(s, NS, T0 + HOUR(1), T0 + HOUR(2), MIN(5), &r));
    assert_dbl(r.value_ms / 3600000.0, 2.0);
    /* half a GPU for an hour: samples every 15 s 10:00..10:59:45, marker at 11:00 */
    static tsdb_sample_t h[241];
    for (int i = 0; i < 240; i++) h[i] = (tsdb_sample_t){ T0 + SEC(15) * i, 0.5 };
    h[240] = (tsdb_sample_t){ T0 + HOUR(1), stale_nan() };
    assert_ok(api_hold_integral(h, 241, T0, T0 + HOUR(2), MIN(5), &r));
    assert_dbl(r.value_ms / 3600000.0, 0.5);
}

static void test_hold_integral_gaps_and_markers(void **state)
{
    (void)state;
    api_hold_integral_t r;
    /* a gap longer than staleness: 3 at 10:00 and 10:20 hold 5 m each:
     * [10:00, 10:30) -> 3 x 10 min = 1800000 value-ms, held 10 min */
    tsdb_sample_t g[] = { { T0, 3 }, { T0 + MIN(20), 3 } };
    assert_ok(api_hold_integral(g, 2, T0, T0 + MIN(30), MIN(5), &r));
    assert_dbl(r.value_ms, 1800000.0);
    assert_int_equal(r.held_ms, MIN(10));
    /* a stale marker ends the value at once: 4 from 10:00 to 10:02 */
    tsdb_sample_t m[] = { { T0, 4 }, { T0 + MIN(2), stale_nan() }, { T0 + MIN(3), 1 } };
    assert_ok(api_hold_integral(m, 2, T0, T0 + HOUR(1), MIN(5), &r));
    assert_dbl(r.value_ms, 4.0 * MIN(2));
    /* ... and a later sample starts a new run: 4 x 2 m + 1 x 5 m */
    assert_ok(api_hold_integral(m, 3, T0, T0 + HOUR(1), MIN(5), &r));
    assert_dbl(r.value_ms, 4.0 * MIN(2) + 1.0 * MIN(5));
    assert_int_equal(r.held_ms, MIN(7));
    /* a value from before the range holds into it: 2 at 09:58, 6 at 10:01;
     * [10:00, 10:10) -> 2 x 1 m + 6 x 5 m */
    tsdb_sample_t b[] = { { T0 - MIN(2), 2 }, { T0 + MIN(1), 6 } };
    assert_ok(api_hold_integral(b, 2, T0, T0 + MIN(10), MIN(5), &r));
    assert_dbl(r.value_ms, 2.0 * MIN(1) + 6.0 * MIN(5));
    /* an ordinary NaN is dropped: the 2 keeps holding through it */
    tsdb_sample_t n[] = { { T0, 2 }, { T0 + MIN(1), NAN }, { T0 + MIN(2), 2 } };
    assert_ok(api_hold_integral(n, 3, T0, T0 + MIN(3), MIN(5), &r));
    assert_dbl(r.value_ms, 2.0 * MIN(3));
    /* empty range, bad arguments */
    assert_ok(api_hold_integral(g, 2, T0, T0, MIN(5), &r));
    assert_dbl(r.value_ms, 0);
    assert_err(api_hold_integral(g, 2, T0 + 1, T0, MIN(5), &r), STRATA_EINVAL);
    assert_err(api_hold_integral(g, 2, T0, T0 + 1, 0, &r), STRATA_EINVAL);
}

static void test_latest_value(void **state)
{
    (void)state;
    tsdb_sample_t s[] = {
        { T0, 1 },
        { T0 + MIN(1), 2 },
        { T0 + MIN(2), NAN },
        { T0 + MIN(10), 3 },
        { T0 + MIN(11), stale_nan() },
    };
    double v;
    int64_t t;
    assert_err(api_latest_value(s, 5, T0 - 1, MIN(5), &v, &t), STRATA_ENOTFOUND);
    assert_ok(api_latest_value(s, 5, T0, MIN(5), &v, &t)); /* exactly at a sample */
    assert_dbl(v, 1);
    assert_int_equal(t, T0);
    /* 2 (10:01) holds through the dropped NaN until 10:06, exclusive */
    assert_ok(api_latest_value(s, 5, T0 + MIN(3), MIN(5), &v, &t));
    assert_dbl(v, 2);
    assert_int_equal(t, T0 + MIN(1));
    assert_ok(api_latest_value(s, 5, T0 + MIN(6) - 1, MIN(5), &v, NULL));
    assert_dbl(v, 2);
    assert_err(api_latest_value(s, 5, T0 + MIN(6), MIN(5), &v, &t), STRATA_ENOTFOUND);
    assert_ok(api_latest_value(s, 5, T0 + MIN(10) + SEC(30), MIN(5), &v, &t));
    assert_dbl(v, 3);
    /* the stale marker ends it at once */
    assert_err(api_latest_value(s, 5, T0 + MIN(11), MIN(5), &v, &t), STRATA_ENOTFOUND);
    assert_err(api_latest_value(s, 5, T0 + MIN(12), MIN(5), &v, &t), STRATA_ENOTFOUND);
    assert_err(api_latest_value(s, 0, T0, MIN(5), &v, &t), STRATA_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_even),
        cmocka_unit_test(test_layout_uneven),
        cmocka_unit_test(test_bucket_edges_and_avg),
        cmocka_unit_test(test_empty_buckets_omitted),
        cmocka_unit_test(test_gauge_aggregations),
        cmocka_unit_test(test_increase_and_rate),
        cmocka_unit_test(test_stale_markers_and_nans),
        cmocka_unit_test(test_native_resolution),
        cmocka_unit_test(test_rollups_equal_raw_when_aligned),
        cmocka_unit_test(test_rollups_from_tsdb_equal_raw),
        cmocka_unit_test(test_mixed_equals_raw_every_type),
        cmocka_unit_test(test_mixed_uses_whole_intervals),
        cmocka_unit_test(test_rollups_misaligned_and_choice),
        cmocka_unit_test(test_combiner),
        cmocka_unit_test(test_histogram_quantile_prometheus),
        cmocka_unit_test(test_histogram_build),
        cmocka_unit_test(test_hold_integral_gpu_hours),
        cmocka_unit_test(test_hold_integral_gaps_and_markers),
        cmocka_unit_test(test_latest_value),
    };
    return cmocka_run_group_tests_name("downsample", tests, NULL, NULL);
}
