/*
 * ksum.h: Neumaier's compensated sum, as Prometheus' kahanSumInc: sums of
 * gauges over long buckets and report integrals keep their low bits.  An
 * infinity clears the compensation so the result is the infinity, not NaN.
 */
#ifndef API_KSUM_H
#define API_KSUM_H

#include <math.h>

typedef struct api_ksum {
    double sum, c;
} api_ksum_t;

static inline void api_ksum_add(api_ksum_t *k, double x)
{
    double t = k->sum + x;
    if (isinf(t))
        k->c = 0;
    else if (fabs(k->sum) >= fabs(x))
        k->c += (k->sum - t) + x;
    else
        k->c += (x - t) + k->sum;
    k->sum = t;
}

static inline double api_ksum_value(const api_ksum_t *k) { return k->sum + k->c; }

#endif
