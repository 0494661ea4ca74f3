/*
 * holding.h: the holding rule (docs/downsampling.md, "The holding rule"), the
 * one definition that "latest value" reads (the registry, telemetry) and
 * report integrals use.
 *
 * A sample's value holds from its timestamp until the series' next sample,
 * for at most `staleness` ms (so over [t, min(next, t + staleness))), and a
 * stale marker ends it at once.  Other NaNs are dropped as if never sent:
 * they neither hold nor end the value before them.  Samples are ascending by
 * time with unique timestamps; pass them from at least `staleness` before the
 * range of interest.  Nothing here allocates.
 */
#ifndef API_HOLDING_H
#define API_HOLDING_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb.h"

/* When the value of s[i] (not a NaN) stops holding: the time of the next
 * sample that is not a dropped NaN, or s[i].t + staleness, whichever comes
 * first (saturating at INT64_MAX). */
int64_t api_hold_end(const tsdb_sample_t *s, size_t n, size_t i, int64_t staleness);

/* The value held at instant `at`: 0 and *v (and *t, the sample's time, when
 * t is not NULL), or STRATA_ENOTFOUND when no value holds then. */
int api_latest_value(const tsdb_sample_t *s, size_t n, int64_t at, int64_t staleness, double *v, int64_t *t);

typedef struct api_hold_integral {
    double value_ms; /* integral of the step function over [from, to), value x ms;
                          divide by 3600000 for value x hours */
    int64_t held_ms; /* how long some value held inside [from, to) */
} api_hold_integral_t;

/* The exact integral over [from, to) of the step function the samples
 * describe (compensated summation; exact whenever every value x duration
 * product and their running sum are exact in a double, e.g. integer values).
 * held_ms lets a caller take the time-weighted mean (value_ms / held_ms). */
int api_hold_integral(const tsdb_sample_t *s, size_t n, int64_t from, int64_t to, int64_t staleness,
                      api_hold_integral_t *out);

#endif
