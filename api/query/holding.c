/*
 * holding.c: the holding rule (holding.h).
 */
#include "holding.h"

#include <math.h>

#include "ksum.h"

int64_t api_hold_end(const tsdb_sample_t *s, size_t n, size_t i, int64_t staleness)
{
    int64_t end = s[i].t > INT64_MAX - staleness ? INT64_MAX : s[i].t + staleness;
    for (size_t k = i + 1; k < n; k++) {
        if (isnan(s[k].v) && !tsdb_is_stale(s[k].v)) continue;
        if (s[k].t < end) end = s[k].t;
        break;
    }
    return end;
}

int api_latest_value(const tsdb_sample_t *s, size_t n, int64_t at, int64_t staleness, double *v, int64_t *t)
{
    if ((n && !s) || !v || staleness <= 0) return STRATA_EINVAL;
    size_t lo = 0, hi = n; /* first sample with t > at */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid].t <= at)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0) {
        const tsdb_sample_t *x = &s[--lo];
        if (tsdb_is_stale(x->v)) return STRATA_ENOTFOUND;
        if (isnan(x->v)) continue; /* dropped: the value before it still holds */
        if (at - x->t >= staleness) return STRATA_ENOTFOUND;
        *v = x->v;
        if (t) *t = x->t;
        return 0;
    }
    return STRATA_ENOTFOUND;
}

int api_hold_integral(const tsdb_sample_t *s, size_t n, int64_t from, int64_t to, int64_t staleness,
                      api_hold_integral_t *out)
{
    if ((n && !s) || !out || staleness <= 0 || to < from) return STRATA_EINVAL;
    api_ksum_t sum = { 0, 0 };
    int64_t held = 0;
    size_t i = 0;
    while (i < n) {
        const tsdb_sample_t *x = &s[i++];
        if (x->t >= to) break;
        if (isnan(x->v)) continue; /* stale markers hold nothing; other NaNs are dropped */
        int64_t until = api_hold_end(s, n, i - 1, staleness);
        int64_t a = x->t > from ? x->t : from, b = until < to ? until : to;
        if (b <= a) continue;
        api_ksum_add(&sum, x->v * (double)(b - a));
        held += b - a;
    }
    out->value_ms = api_ksum_value(&sum);
    out->held_ms = held;
    return 0;
}
