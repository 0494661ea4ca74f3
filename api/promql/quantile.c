/*
 * quantile.c: promql_quantile (the quantile aggregation), as Prometheus 3's
 * quantile (docs/promql.md, "Kernels").  histogram_quantile over classic
 * `le` buckets is api_histogram_quantile_fixed (api/query/downsample.h), the
 * one the metrics endpoint's percentiles use.
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
