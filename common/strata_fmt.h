/*
 * strata_fmt.h: numbers as the API writes them.
 *
 * strata_fmt_double() writes the shortest decimal string that parses back
 * (strtod) to the very same float64 bits: the fewest significant digits, then
 * the layout of ECMAScript's Number::toString (what JSON.stringify prints),
 * so values look as a dashboard expects:
 *     100 -> "100"   0.1 -> "0.1"   12.5 -> "12.5"   85899345920 -> "85899345920"
 *     1e21 -> "1e+21"   1.5e-7 -> "1.5e-7"   -0.0 -> "-0"
 * Plain decimal notation for 1e-6 <= |v| < 1e21, exponent notation outside.
 * NaN (any payload, the stale marker too) -> "NaN"; infinities -> "+Inf" and
 * "-Inf" as in the Prometheus text format.  -0 keeps its sign so that the
 * round trip is bit-exact.
 *
 * Assumes the "C" numeric locale (strata never calls setlocale).
 * Thread-safe, no allocation.
 */
#ifndef STRATA_FMT_H
#define STRATA_FMT_H

#include <stddef.h>

/* Longest output is 25 characters ("-0.0000012345678901234567"); with NUL. */
#define STRATA_FMT_DOUBLE_BUFSZ 32

/* Writes v into buf (NUL-terminated).  Returns the length written (NUL
 * excluded) or STRATA_EBUFSMALL (buf then holds "" when cap > 0). */
int strata_fmt_double(double v, char *buf, size_t cap);

/* The shortest round-trip significant digits of a finite a > 0 (the closest
 * among the shortest), for writers with another layout (the Prometheus API's
 * Go strconv form): digits (no NUL, no leading or trailing zeros, at most 17)
 * and *exp10 with a = d.ddd x 10^exp10.  Returns the digit count. */
int strata_fmt_shortest(double a, char digits[20], int *exp10);

#endif
