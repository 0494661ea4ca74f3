/*
 * quantile.c: promql_quantile (the quantile aggregation) and
 * promql_bucket_quantile (histogram_quantile over classic `le` buckets), as
 * Prometheus 3's quantile and BucketQuantile (docs/promql.md, "Kernels").
 */
#include "promql_funcs.h"

#include <math.h>
#include <stdlib.h>

/* NaN sorts below everything, as Prometheus' vectorByValueHeap orders it. */
static int cmp_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return x < y ? -1 : x > y;
}

double promql_quantile(double phi, double *values, size_t n)
{
    if (n == 0 || isnan(phi)) return NAN;
    if (phi < 0) return -INFINITY;
    if (phi > 1) return INFINITY;
    qsort(values, n, sizeof *values, cmp_value);
    double dn = (double)n;
    double rank = phi * (dn - 1);
    double lower = fmax(0, floor(rank));
    double upper = fmin(dn - 1, lower + 1);
    double weight = rank - floor(rank);
    /* Both terms always, as Prometheus: phi = 1 over a +Inf top gives
     * Inf * 1 + Inf * 0 = NaN there too. */
    return values[(size_t)lower] * (1 - weight) + values[(size_t)upper] * weight;
}

static int cmp_upper(const void *a, const void *b)
{
    double x = ((const promql_bucket_t *)a)->upper, y = ((const promql_bucket_t *)b)->upper;
    return x < y ? -1 : x > y;
}

double promql_bucket_quantile_fixed(double phi, promql_bucket_t *b, size_t n, int *forced_monotonic)
{
    if (forced_monotonic) *forced_monotonic = 0;
    if (isnan(phi) || n == 0) return NAN;
    if (phi < 0) return -INFINITY;
    if (phi > 1) return INFINITY;
    qsort(b, n, sizeof *b, cmp_upper);
    if (!(isinf(b[n - 1].upper) && b[n - 1].upper > 0)) return NAN;

    /* Buckets of the same bound (the same le written two ways) add up. */
    size_t m = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].upper == b[m].upper)
            b[m].count += b[i].count;
        else
            b[++m] = b[i];
    }
    n = m + 1;

    /* Counts that differ from the one below by a relative 1e-12 are float
     * noise (sums of rates): they are set equal, and silently. */
    double prev = b[0].count;
    for (size_t i = 1; i < n; i++) {
        double delta = fabs(b[i].count - prev);
        if (delta == 0) continue;
        if (delta / b[i].count <= 1e-12)
            b[i].count = prev;
        else
            prev = b[i].count;
    }

    /* A real decrease is lifted to the running maximum (the envelope);
     * Prometheus reports this as an info annotation. */
    int forced = 0;
    double max = b[0].count;
    for (size_t i = 1; i < n; i++) {
        if (b[i].count > max) {
            max = b[i].count;
        } else if (b[i].count < max) {
            b[i].count = max;
            forced = 1;
        }
    }

    if (n < 2) return NAN;
    double observations = b[n - 1].count;
    if (observations == 0) return NAN;
    if (forced_monotonic) *forced_monotonic = forced;
    double rank = phi * observations;
    /* The first bucket (of all but +Inf) whose count reaches the rank. */
    size_t lo = 0, hi = n - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid].count >= rank)
            hi = mid;
        else
            lo = mid + 1;
    }
    size_t k = lo;
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

double promql_bucket_quantile(double phi, promql_bucket_t *buckets, size_t n)
{
    return promql_bucket_quantile_fixed(phi, buckets, n, NULL);
}
