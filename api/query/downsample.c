/*
 * downsample.c: bucket layouts, per-step aggregation (raw samples and
 * rollups), cross-series combination and classic-histogram quantiles.
 * See downsample.h for the contract and docs/downsampling.md
 * for the reasoning behind each choice.
 */
#include "downsample.h"
#include "ksum.h"
#include "strata_err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- layouts ------------------------------------------------------------ */

int api_buckets_init(api_buckets_t *b, int64_t start, int64_t end, uint32_t n)
{
    if (!b || n == 0 || end <= start) return STRATA_EINVAL;
    /* end - start must not overflow, and every bucket must be >= 1 ms wide. */
    if (start < 0 && end > INT64_MAX + start) return STRATA_EINVAL;
    if ((uint64_t)(end - start) < n) return STRATA_EINVAL;
    *b = (api_buckets_t){
        .start = start, .end = end, .n = n, .width = (end - start) / n, .native = 0, .max_points = n
    };
    return 0;
}

int api_buckets_native(api_buckets_t *b, int64_t start, int64_t end, size_t max_points)
{
    if (!b || end <= start || max_points == 0) return STRATA_EINVAL;
    if (start < 0 && end > INT64_MAX + start) return STRATA_EINVAL;
    /* one window [start, end]: points sit at the samples' own timestamps */
    *b = (api_buckets_t){
        .start = start, .end = end, .n = 1, .width = end - start, .native = 1, .max_points = max_points
    };
    return 0;
}

int64_t api_buckets_edge(const api_buckets_t *b, int64_t i)
{
    if (i <= 0) return b->start;
    if (i >= b->n) return b->end;
    /* start + floor(i*D/n) without overflow: D = q*n + r, r*i < n^2 <= 2^64. */
    int64_t d = b->end - b->start, q = d / b->n;
    uint64_t r = (uint64_t)(d % b->n);
    return b->start + q * i + (int64_t)(r * (uint64_t)i / (uint64_t)b->n);
}

int64_t api_buckets_index(const api_buckets_t *b, int64_t t)
{
    if (t < b->start || t > b->end) return 0;
    if (t == b->start) return 1;
    if (b->native) return 1;
    int64_t x = t - b->start;
    /* ceil(x*n/D) by floating point, then corrected: exact and overflow-free. */
    int64_t i = (int64_t)ceil((double)x * (double)b->n / (double)(b->end - b->start));
    if (i < 1) i = 1;
    if (i > b->n) i = b->n;
    while (i < b->n && api_buckets_edge(b, i) < t) i++;
    while (i > 1 && api_buckets_edge(b, i - 1) >= t) i--;
    return i;
}

size_t api_buckets_capacity(const api_buckets_t *b) { return b->max_points; }

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ---- per-series aggregation ---------------------------------------------- */

typedef struct {
    uint64_t count;
    api_ksum_t sum;
    double min, max, last;
    double base;       /* increase: the predecessor of the bucket's first sample */
    api_ksum_t resets; /* increase: values just before each drop */
    api_ksum_t incr;   /* rollup path: sum of the intervals' increases */
} acc_t;

static void acc_open(acc_t *a, double base)
{
    memset(a, 0, sizeof *a);
    a->min = INFINITY;
    a->max = -INFINITY;
    a->base = base;
}

static double acc_value(const api_buckets_t *b, int64_t idx, enum api_agg agg, const acc_t *a,
                        int from_rollups)
{
    double inc;
    switch (agg) {
    case API_AGG_AVG: return api_ksum_value(&a->sum) / (double)a->count;
    case API_AGG_LAST: return a->last;
    case API_AGG_MAX: return a->max;
    case API_AGG_MIN: return a->min;
    case API_AGG_SUM: return api_ksum_value(&a->sum);
    case API_AGG_COUNT: return (double)a->count;
    case API_AGG_PRESENT: return 1;
    case API_AGG_INCREASE:
    case API_AGG_RATE:
        inc = from_rollups ? api_ksum_value(&a->incr) : (a->last - a->base) + api_ksum_value(&a->resets);
        if (agg == API_AGG_INCREASE) return inc;
        return inc / ((double)(api_buckets_edge(b, idx) - api_buckets_edge(b, idx - 1)) / 1000.0);
    }
    return NAN;
}

static int valid_args(const api_buckets_t *b, enum api_agg agg, const void *in, size_t n,
                      const api_point_t *out, size_t cap)
{
    if (!b || b->n <= 0 || (n && !in) || (cap && !out)) return 0;
    return (unsigned)agg <= API_AGG_RATE;
}

static int emit(const api_buckets_t *b, enum api_agg agg, int64_t idx, const acc_t *a, int from_rollups,
                api_point_t *out, size_t cap, size_t *np)
{
    if (*np >= cap) return STRATA_ELIMIT;
    out[*np] = (api_point_t){ api_buckets_edge(b, idx), acc_value(b, idx, agg, a, from_rollups) };
    (*np)++;
    return 0;
}

/* Native resolution: one point per sample in [start, end] at its own
 * timestamp.  Gauge aggregations over one sample are its value (count and
 * present: 1); increase is the step from the previous sample (skipping stale
 * markers and NaNs), the new value itself after a drop, and rate divides it
 * by the time since that sample.  The first sample has no point unless a
 * sample before `start` was passed. */
static int downsample_native(const api_buckets_t *b, enum api_agg agg, const tsdb_sample_t *s, size_t n,
                             api_point_t *out, size_t cap)
{
    const int counter = agg == API_AGG_INCREASE || agg == API_AGG_RATE;
    size_t np = 0;
    int have_prev = 0;
    double prev = 0;
    int64_t prev_t = 0;
    for (size_t i = 0; i < n; i++) {
        double v = s[i].v, x = v;
        int64_t t = s[i].t;
        if (isnan(v)) continue; /* stale markers and NaNs: never points */
        if (t > b->end) break;
        int point = t >= b->start;
        if (counter) {
            point = point && have_prev;
            x = v >= prev ? v - prev : v; /* a drop: restarted from 0 */
            if (agg == API_AGG_RATE) x /= (double)(t - prev_t) / 1000.0;
        } else if (agg == API_AGG_COUNT || agg == API_AGG_PRESENT) {
            x = 1;
        }
        if (point) {
            if (np >= cap) return STRATA_ELIMIT;
            out[np++] = (api_point_t){ t, x };
        }
        prev = v;
        prev_t = t;
        have_prev = 1;
    }
    return (int)np;
}

static int downsample_core(const api_buckets_t *b, enum api_agg agg, int64_t R, const tsdb_sample_t *s,
                           size_t n, const tsdb_rollup_point_t *p, size_t np_in, api_point_t *out,
                           size_t cap);

int api_downsample(const api_buckets_t *b, enum api_agg agg, const tsdb_sample_t *s, size_t n,
                   api_point_t *out, size_t cap)
{
    if (!valid_args(b, agg, s, n, out, cap)) return STRATA_EINVAL;
    if (b->native) return downsample_native(b, agg, s, n, out, cap);
    return downsample_core(b, agg, 0, s, n, NULL, 0, out, cap);
}

/* ---- rollups ---------------------------------------------------------------- */

int api_rollup_aligned(const api_buckets_t *b, int64_t r)
{
    if (!b || r <= 0 || b->native || b->width < r) return 0;
    for (int64_t i = 0; i <= b->n; i++)
        if (api_buckets_edge(b, i) % r != 0) return 0;
    return 1;
}

int64_t api_rollup_choose(const api_buckets_t *b)
{
    if (!b || b->native) return 0; /* native: every sample, never rollups */
    if (api_rollup_aligned(b, TSDB_ROLLUP_1H)) return TSDB_ROLLUP_1H;
    if (api_rollup_aligned(b, TSDB_ROLLUP_5M)) return TSDB_ROLLUP_5M;
    /* b->width = floor(D/n) is the narrowest bucket of an N >= 1 layout. */
    if (b->width >= 12 * (int64_t)TSDB_ROLLUP_1H) return TSDB_ROLLUP_1H;
    if (b->width >= 12 * (int64_t)TSDB_ROLLUP_5M) return TSDB_ROLLUP_5M;
    return 0;
}

/* Smallest multiple of r >= x (r > 0), for negative x too. */
static int64_t ceil_to(int64_t x, int64_t r)
{
    int64_t m = x % r;
    if (m < 0) m += r;
    return m == 0 ? x : x - m + r;
}

int api_rollup_range(const api_buckets_t *b, int64_t resolution, int64_t *tmin, int64_t *tmax)
{
    if (!b || !tmin || !tmax || resolution <= 0) return STRATA_EINVAL;
    *tmin = ceil_to(b->start + resolution - 1, resolution);
    *tmax = ceil_to(b->end, resolution);
    return 0;
}

int api_downsample_rollups(const api_buckets_t *b, enum api_agg agg, int64_t resolution,
                           const tsdb_rollup_point_t *p, size_t n, api_point_t *out, size_t cap)
{
    if (!valid_args(b, agg, p, n, out, cap) || resolution <= 0 || b->native) return STRATA_EINVAL;
    size_t np = 0;
    int64_t cur = 0;
    acc_t a;
    const int want_sum = agg == API_AGG_AVG || agg == API_AGG_SUM;
    const int want_incr = agg == API_AGG_INCREASE || agg == API_AGG_RATE;
    for (size_t i = 0; i < n; i++) {
        if (p[i].count == 0) continue;
        int64_t idx = api_buckets_index(b, p[i].t - resolution + 1);
        if (idx == 0) {
            if (p[i].t - resolution + 1 > b->end) break;
            continue;
        }
        if (idx != cur) {
            if (cur) {
                int rc = emit(b, agg, cur, &a, 1, out, cap, &np);
                if (rc) return rc;
            }
            cur = idx;
            acc_open(&a, 0);
        }
        a.count += p[i].count;
        if (want_sum) api_ksum_add(&a.sum, p[i].sum);
        if (p[i].min < a.min) a.min = p[i].min;
        if (p[i].max > a.max) a.max = p[i].max;
        a.last = p[i].last;
        if (want_incr) api_ksum_add(&a.incr, p[i].increase);
    }
    if (cur) {
        int rc = emit(b, agg, cur, &a, 1, out, cap, &np);
        if (rc) return rc;
    }
    return (int)np;
}

/* ---- mixed: whole rollup intervals plus raw edges ------------------------------------ */

int64_t api_rollup_mixed_choose(const api_buckets_t *b)
{
    /* b->width is the narrowest bucket.  The raw samples are decoded whole
     * either way (an edge can fall anywhere), and the store decodes every
     * rollup point of the range, used or not (an edge splits about one per
     * bucket): a point costs about what 13 samples cost to aggregate
     * (docs/downsampling.md, section 3, "Mixed"), so rollups pay from about 4
     * intervals per bucket on */
    if (!b || b->native) return 0;
    if (b->width >= 4 * (int64_t)TSDB_ROLLUP_1H) return TSDB_ROLLUP_1H;
    if (b->width >= 4 * (int64_t)TSDB_ROLLUP_5M) return TSDB_ROLLUP_5M;
    return 0;
}

/* First index >= i whose sample is later than t (samples ascending).  The
 * answer is usually an interval's worth of samples ahead: gallop from i, then
 * bisect the last step (a bisection over the whole rest misses the cache). */
static size_t after_t(const tsdb_sample_t *s, size_t i, size_t n, int64_t t)
{
    size_t lo = i, hi = i, step = 16;
    while (hi < n && s[hi].t <= t) {
        lo = hi + 1;
        hi = n - hi > step ? hi + step : n;
        step *= 2;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].t <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Whether rollup point p may stand for the raw samples of its interval with
 * the same result (docs/downsampling.md, section 3, "Mixed"): it holds at
 * least one sample, none of them NaN (the store counts and sums NaNs, the raw
 * path drops them; a NaN or +Inf/-Inf pair makes the sum non-finite), and for
 * counters no reset: prev <= first, first is the minimum, last the maximum,
 * and the store's increase is last - prev up to its own rounding. */
static int rollup_usable(const tsdb_rollup_point_t *p, int counter, int have_prev, double prev)
{
    if (p->count == 0 || !isfinite(p->sum)) return 0;
    if (!counter) return 1;
    double base = have_prev ? prev : p->first;
    if (!(p->first >= base && p->min == p->first && p->max == p->last)) return 0;
    double d = p->last - base, tol = (double)p->count * 0x1p-52 * fmax(fabs(p->last), fabs(base));
    return fabs(p->increase - d) <= tol;
}

/* Aggregates the run of samples from i while t <= lim into a (stale markers
 * and NaNs skipped): only what acc_value reads for agg, one loop per kind,
 * in sample order (so sums round as a plain pass over the samples would).
 * *prev / *have_prev: the newest sample so far, the counter chain.  Returns
 * the index after the run. */
static size_t run_agg(enum api_agg agg, const tsdb_sample_t *s, size_t i, size_t n, int64_t lim, acc_t *a,
                      double *prev, int *have_prev)
{
    switch (agg) {
    case API_AGG_AVG:
    case API_AGG_SUM:
        for (; i < n && s[i].t <= lim; i++) {
            double v = s[i].v;
            if (isnan(v)) continue;
            a->count++;
            api_ksum_add(&a->sum, v);
        }
        return i;
    case API_AGG_MAX:
        for (; i < n && s[i].t <= lim; i++)
            if (s[i].v > a->max) a->max = s[i].v; /* false for NaN */
        return i;
    case API_AGG_MIN:
        for (; i < n && s[i].t <= lim; i++)
            if (s[i].v < a->min) a->min = s[i].v;
        return i;
    case API_AGG_COUNT:
        for (; i < n && s[i].t <= lim; i++) a->count += !isnan(s[i].v);
        return i;
    case API_AGG_LAST:
    case API_AGG_PRESENT: {
        size_t j = after_t(s, i, n, lim);
        for (size_t k = j; k > i; k--)
            if (!isnan(s[k - 1].v)) {
                a->last = s[k - 1].v;
                break;
            }
        return j;
    }
    case API_AGG_INCREASE:
    case API_AGG_RATE: {
        double pv = *prev;
        int hp = *have_prev;
        for (; i < n && s[i].t <= lim; i++) {
            double v = s[i].v;
            if (isnan(v)) continue;
            if (hp && v < pv) api_ksum_add(&a->resets, pv);
            pv = v;
            hp = 1;
        }
        a->last = pv;
        *prev = pv;
        *have_prev = hp;
        return i;
    }
    }
    return n;
}

/* The per-bucket aggregation of api_downsample (R = 0: every sample raw) and
 * api_downsample_mixed (R > 0: whole intervals from usable points). */
static int downsample_core(const api_buckets_t *b, enum api_agg agg, int64_t R, const tsdb_sample_t *s,
                           size_t n, const tsdb_rollup_point_t *p, size_t np_in, api_point_t *out, size_t cap)
{
    size_t np = 0, pi = 0;
    int64_t cur = 0, cur_lo = 0, cur_end = 0; /* open bucket, its lower edge and its end edge */
    int64_t it_end = INT64_MIN;               /* end of the interval of the current run (R > 0) */
    int have_prev = 0;
    double prev = 0; /* newest sample so far: the counter chain */
    acc_t a;
    const int want_sum = agg == API_AGG_AVG || agg == API_AGG_SUM;
    const int counter = agg == API_AGG_INCREASE || agg == API_AGG_RATE;
    size_t i = 0;
    while (i < n) {
        double v = s[i].v;
        int64_t t = s[i].t;
        if (isnan(v)) {
            i++;
            continue;
        }
        if (t > b->end) break;
        if (t < b->start) {
            prev = v;
            have_prev = 1;
            i++;
            continue;
        }
        if (cur == 0 || t > cur_end) {
            if (cur) {
                int rc = emit(b, agg, cur, &a, 0, out, cap, &np);
                if (rc) return rc;
            }
            cur = api_buckets_index(b, t);
            cur_lo = api_buckets_edge(b, cur - 1);
            cur_end = api_buckets_edge(b, cur);
            acc_open(&a, have_prev ? prev : v);
        }
        int64_t lim = cur_end;
        if (R) {
            if (t > it_end) {
                /* first sample of its interval (it_end - R, it_end]: whole inside
                 * the bucket (and not holding `start`, which is bucket 1's own),
                 * with a point that stands for it? */
                it_end = ceil_to(t, R);
                if (it_end - R >= cur_lo && it_end <= cur_end) {
                    while (pi < np_in && p[pi].t < it_end) pi++;
                    if (pi < np_in && p[pi].t == it_end && rollup_usable(&p[pi], counter, have_prev, prev)) {
                        const tsdb_rollup_point_t *q = &p[pi];
                        a.count += q->count;
                        if (want_sum) api_ksum_add(&a.sum, q->sum);
                        if (q->min < a.min) a.min = q->min;
                        if (q->max > a.max) a.max = q->max;
                        a.last = q->last;
                        prev = q->last;
                        have_prev = 1;
                        i = after_t(s, i, n, it_end);
                        continue;
                    }
                }
            }
            if (it_end < lim) lim = it_end;
        }
        i = run_agg(agg, s, i, n, lim, &a, &prev, &have_prev);
    }
    if (cur) {
        int rc = emit(b, agg, cur, &a, 0, out, cap, &np);
        if (rc) return rc;
    }
    return (int)np;
}

int api_downsample_mixed(const api_buckets_t *b, enum api_agg agg, int64_t resolution, const tsdb_sample_t *s,
                         size_t n, const tsdb_rollup_point_t *p, size_t np_in, api_point_t *out, size_t cap)
{
    if (!valid_args(b, agg, s, n, out, cap) || (np_in && !p) || resolution <= 0 || b->native)
        return STRATA_EINVAL;
    return downsample_core(b, agg, resolution, s, n, p, np_in, out, cap);
}

/* ---- across series ------------------------------------------------------------ */

typedef struct {
    int64_t t;
    api_ksum_t sum;
    uint64_t count;
} cell_t;

struct api_combiner {
    strata_arena_t *arena;
    enum api_combine op;
    cell_t *cells, *spare; /* merge cells + new points into spare, then swap */
    size_t n, cap, spare_cap;
};

int api_combiner_new(strata_arena_t *arena, enum api_combine op, api_combiner_t **out)
{
    if (!arena || !out || op < API_COMBINE_SUM || op > API_COMBINE_COUNT) return STRATA_EINVAL;
    api_combiner_t *c = strata_arena_calloc(arena, 1, sizeof *c);
    if (!c) return STRATA_ENOMEM;
    c->arena = arena;
    c->op = op;
    *out = c;
    return 0;
}

int api_combiner_add(api_combiner_t *c, const api_point_t *pts, size_t n)
{
    if (!c || (n && !pts)) return STRATA_EINVAL;
    for (size_t i = 1; i < n; i++)
        if (pts[i].t <= pts[i - 1].t) return STRATA_EINVAL;
    if (n == 0) return 0;
    size_t need = c->n + n;
    if (need > c->spare_cap) {
        size_t cap = need > 2 * c->cap ? need : 2 * c->cap;
        if (cap < 64) cap = 64;
        cell_t *sp = strata_arena_alloc(c->arena, cap * sizeof *sp);
        if (!sp) return STRATA_ENOMEM;
        c->spare = sp;
        c->spare_cap = cap;
    }
    size_t i = 0, j = 0, k = 0;
    while (i < c->n || j < n) {
        if (j == n || (i < c->n && c->cells[i].t < pts[j].t)) {
            c->spare[k++] = c->cells[i++];
        } else if (i == c->n || pts[j].t < c->cells[i].t) {
            c->spare[k] = (cell_t){ .t = pts[j].t, .count = 1 };
            api_ksum_add(&c->spare[k++].sum, pts[j++].v);
        } else {
            c->spare[k] = c->cells[i++];
            c->spare[k].count++;
            api_ksum_add(&c->spare[k++].sum, pts[j++].v);
        }
    }
    cell_t *tmp = c->cells;
    size_t tmp_cap = c->cap;
    c->cells = c->spare;
    c->cap = c->spare_cap;
    c->spare = tmp;
    c->spare_cap = tmp_cap;
    c->n = k;
    return 0;
}

size_t api_combiner_count(const api_combiner_t *c) { return c ? c->n : 0; }

int api_combiner_result(const api_combiner_t *c, api_point_t *out, size_t cap)
{
    if (!c || (c->n && !out)) return STRATA_EINVAL;
    if (cap < c->n) return STRATA_ELIMIT;
    for (size_t i = 0; i < c->n; i++) {
        const cell_t *x = &c->cells[i];
        double v = c->op == API_COMBINE_COUNT ? (double)x->count
                   : c->op == API_COMBINE_AVG ? api_ksum_value(&x->sum) / (double)x->count
                                              : api_ksum_value(&x->sum);
        out[i] = (api_point_t){ x->t, v };
    }
    return (int)c->n;
}

/* ---- histograms ------------------------------------------------------------------ */

/* Prometheus' almost.Equal with its minNormal special case. */
static int almost_equal(double a, double b, double eps)
{
    const double min_normal = 2.2250738585072014e-308;
    if (isnan(a) && isnan(b)) return 1;
    if (a == b) return 1;
    double abs_sum = fabs(a) + fabs(b), diff = fabs(a - b);
    if (a == 0 || b == 0 || abs_sum < min_normal) return diff < eps * min_normal;
    return diff / fmin(abs_sum, 1.7976931348623157e308) < eps;
}

static int cmp_bucket(const void *a, const void *b)
{
    double x = ((const api_hist_bucket_t *)a)->upper, y = ((const api_hist_bucket_t *)b)->upper;
    return (x > y) - (x < y);
}

double api_histogram_quantile(double q, api_hist_bucket_t *b, size_t n)
{
    return api_histogram_quantile_fixed(q, b, n, NULL);
}

double api_histogram_quantile_fixed(double q, api_hist_bucket_t *b, size_t n, int *forced_monotonic)
{
    int forced = 0;
    if (forced_monotonic) *forced_monotonic = 0;
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (!b || n == 0) return NAN;
    qsort(b, n, sizeof *b, cmp_bucket);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0)) return NAN;

    /* coalesce equal bounds */
    size_t m = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].upper == b[m].upper)
            b[m].count += b[i].count;
        else
            b[++m] = b[i];
    }
    n = m + 1;

    /* ignore insignificant deltas, then force monotonicity; prev only moves
     * on an accepted increase */
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].count;
        if (cur == prev) continue;
        if (almost_equal(prev, cur, 1e-12)) {
            b[i].count = prev; /* float noise, fixed silently */
            continue;
        }
        if (cur < prev) {
            b[i].count = prev;
            forced = 1;
            continue;
        }
        prev = cur;
    }

    if (n < 2) return NAN;
    double total = b[n - 1].count;
    if (total == 0) return NAN;
    if (forced_monotonic) *forced_monotonic = forced;
    double rank = q * total;
    size_t k = 0; /* first of b[0..n-2] with count >= rank, else n-1 (sort.Search) */
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    k = lo;
    if (k == n - 1) return b[n - 2].upper;
    if (k == 0 && b[0].upper <= 0) return b[0].upper;
    double start = 0, end = b[k].upper, count = b[k].count;
    if (k > 0) {
        start = b[k - 1].upper;
        count -= b[k - 1].count;
        rank -= b[k - 1].count;
    }
    return start + (end - start) * (rank / count);
}

struct api_hist {
    size_t nles, nsteps;
    const char **les; /* ascending by bound */
    double *bounds;
    int64_t *steps;
    double *counts; /* nsteps x nles, row-major */
    api_hist_bucket_t *scratch;
};

typedef struct {
    const char *le;
    double bound;
    size_t first; /* order of first appearance, breaks ties */
} le_key_t;

static int cmp_le(const void *a, const void *b)
{
    const le_key_t *x = a, *y = b;
    if (x->bound != y->bound) return x->bound < y->bound ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

static int parse_le(const char *s, double *out)
{
    if (!s || !*s) return 0;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || isnan(v)) return 0;
    *out = v;
    return 1;
}

static size_t find_step(const int64_t *steps, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (steps[mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int api_hist_build(strata_arena_t *arena, const api_hist_input_t *in, size_t nin, api_hist_t **out)
{
    if (!arena || !out || (nin && !in)) return STRATA_EINVAL;
    api_hist_t *h = strata_arena_calloc(arena, 1, sizeof *h);
    le_key_t *keys = strata_arena_calloc(arena, nin ? nin : 1, sizeof *keys);
    size_t *col = strata_arena_calloc(arena, nin ? nin : 1, sizeof *col);
    if (!h || !keys || !col) return STRATA_ENOMEM;

    /* distinct le strings, in order of first appearance */
    size_t nk = 0, npoints = 0;
    for (size_t i = 0; i < nin; i++) {
        double bound;
        col[i] = SIZE_MAX;
        if (!parse_le(in[i].le, &bound)) continue;
        if (in[i].n && !in[i].points) return STRATA_EINVAL;
        size_t k = 0;
        while (k < nk && strcmp(keys[k].le, in[i].le) != 0) k++;
        if (k == nk) {
            keys[nk] = (le_key_t){ in[i].le, bound, nk };
            nk++;
        }
        col[i] = k;
        npoints += in[i].n;
    }
    qsort(keys, nk, sizeof *keys, cmp_le);
    size_t *rank_of = strata_arena_calloc(arena, nk ? nk : 1, sizeof *rank_of);
    h->les = strata_arena_calloc(arena, nk ? nk : 1, sizeof *h->les);
    h->bounds = strata_arena_calloc(arena, nk ? nk : 1, sizeof *h->bounds);
    h->scratch = strata_arena_calloc(arena, nk ? nk : 1, sizeof *h->scratch);
    if (!rank_of || !h->les || !h->bounds || !h->scratch) return STRATA_ENOMEM;
    for (size_t j = 0; j < nk; j++) {
        rank_of[keys[j].first] = j;
        h->les[j] = strata_arena_strdup(arena, keys[j].le);
        if (!h->les[j]) return STRATA_ENOMEM;
        h->bounds[j] = keys[j].bound;
    }
    h->nles = nk;

    /* the union of steps */
    int64_t *steps = strata_arena_alloc(arena, (npoints ? npoints : 1) * sizeof *steps);
    if (!steps) return STRATA_ENOMEM;
    size_t ns = 0;
    for (size_t i = 0; i < nin; i++)
        if (col[i] != SIZE_MAX)
            for (size_t k = 0; k < in[i].n; k++) steps[ns++] = in[i].points[k].t;
    qsort(steps, ns, sizeof *steps, cmp_i64);
    size_t u = 0;
    for (size_t i = 0; i < ns; i++)
        if (u == 0 || steps[i] != steps[u - 1]) steps[u++] = steps[i];
    h->steps = steps;
    h->nsteps = u;

    h->counts = strata_arena_calloc(arena, (u ? u : 1) * (nk ? nk : 1), sizeof *h->counts);
    if (!h->counts) return STRATA_ENOMEM;
    for (size_t i = 0; i < nin; i++) {
        if (col[i] == SIZE_MAX) continue;
        size_t j = rank_of[col[i]];
        for (size_t k = 0; k < in[i].n; k++) {
            size_t s = find_step(steps, u, in[i].points[k].t);
            h->counts[s * nk + j] += in[i].points[k].v;
        }
    }
    *out = h;
    return 0;
}

size_t api_hist_nles(const api_hist_t *h) { return h->nles; }
const char *api_hist_le(const api_hist_t *h, size_t j) { return j < h->nles ? h->les[j] : NULL; }
size_t api_hist_nsteps(const api_hist_t *h) { return h->nsteps; }
int64_t api_hist_step_time(const api_hist_t *h, size_t i) { return i < h->nsteps ? h->steps[i] : 0; }

double api_hist_count(const api_hist_t *h, size_t i, size_t j)
{
    return i < h->nsteps && j < h->nles ? h->counts[i * h->nles + j] : 0;
}

int api_hist_quantile(api_hist_t *h, size_t i, double q, double *out)
{
    if (!h || !out || i >= h->nsteps) return STRATA_EINVAL;
    if (h->nles == 0) return STRATA_ENOTFOUND;
    for (size_t j = 0; j < h->nles; j++)
        h->scratch[j] = (api_hist_bucket_t){ h->bounds[j], h->counts[i * h->nles + j] };
    double v = api_histogram_quantile(q, h->scratch, h->nles);
    if (isnan(v)) return STRATA_ENOTFOUND;
    *out = v;
    return 0;
}
