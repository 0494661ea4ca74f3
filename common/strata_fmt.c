/*
 * strata_fmt.c: shortest round-trip formatting of float64.
 *
 * Finding the digits: any decimal of at most 15 significant digits survives
 * decimal -> double -> decimal (DBL_DIG = 15), so if some <= 15-digit string
 * reads back as v, printf's correctly rounded 15-digit form of v is that
 * string padded with zeros; stripping the zeros gives the shortest.  When 15
 * digits are not enough, 16 may be: printf's correctly rounded 16 digits, or
 * (next to a power of two, where the rounding interval is lopsided) the 16-digit
 * neighbour on the other side of v.  Otherwise 17 digits always suffice.
 * This costs at most four snprintf/strtod pairs and needs no big-number code
 * (subnormals, rare, try each precision in turn).
 *
 * Fast path (query answers are mostly integers and short decimals, and the
 * snprintf/strtod pairs were most of a metrics query's CPU): see fast_digits.
 */
#include "strata_fmt.h"
#include "strata_err.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Splits printf's "%.Ne" output "d.ddde[+-]xx" into digits and exponent. */
static int split_sci(const char *s, char *digits, int *exp10)
{
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') digits[nd++] = *s;
    *exp10 = (*s == 'e') ? atoi(s + 1) : 0;
    return nd;
}

static int strip_zeros(const char *digits, int nd)
{
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    return nd;
}

static double parse_digits(const char *digits, int nd, int exp10)
{
    char tmp[48];
    int o = 0;
    tmp[o++] = digits[0];
    tmp[o++] = '.';
    for (int i = 1; i < nd; i++) tmp[o++] = digits[i];
    snprintf(tmp + o, sizeof tmp - (size_t)o, "e%d", exp10);
    return strtod(tmp, NULL);
}

/* Adds delta (+1 or -1) to the last digit of an nd-digit mantissa, carrying. */
static void step_digits(char *digits, int nd, int *exp10, int delta)
{
    int i = nd - 1;
    if (delta > 0) {
        while (i >= 0 && digits[i] == '9') digits[i--] = '0';
        if (i >= 0) {
            digits[i]++;
            return;
        }
        digits[0] = '1'; /* 99..9 + 1 = 100..0: one more decade */
        (*exp10)++;
    } else {
        while (i >= 0 && digits[i] == '0') digits[i--] = '9';
        if (i > 0 || digits[0] > '1') {
            digits[i]--;
            return;
        }
        digits[0] = '9'; /* 100..0 - 1 = 99..9: one decade less */
        (*exp10)--;
    }
}

/* Writes the decimal digits of r (> 0) without trailing zeros; *exp10 is the
 * power of ten of the first digit, less scale. */
static int int_digits(uint64_t r, int scale, char *digits, int *exp10)
{
    /* two digits per division (a value has up to 17 of them) */
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char buf[24];
    int p = (int)sizeof buf;
    while (r >= 100) {
        unsigned x = (unsigned)(r % 100);
        r /= 100;
        p -= 2;
        memcpy(buf + p, pairs + 2 * x, 2);
    }
    if (r >= 10) {
        p -= 2;
        memcpy(buf + p, pairs + 2 * r, 2);
    } else {
        buf[--p] = (char)('0' + r);
    }
    int n = (int)sizeof buf - p, k = n;
    *exp10 = n - 1 - scale;
    while (k > 1 && buf[p + k - 1] == '0') k--;
    memcpy(digits, buf + p, (size_t)k);
    return k;
}

/* One d of the search below: *q = the nearest integer to m * 10^d / 2^sh.
 * 1 when d qualifies (q has 17 digits or more, or q / 10^d reads back),
 * 0 when not, -1 on an exact tie of the rounding. */
static int fast_try(uint64_t m, int sh, int d, unsigned __int128 *qout)
{
    const uint64_t ten16 = UINT64_C(10000000000000000);
    static const unsigned __int128 pow10[23] = { 1u,
                                                 10u,
                                                 100u,
                                                 1000u,
                                                 10000u,
                                                 100000u,
                                                 1000000u,
                                                 10000000u,
                                                 100000000u,
                                                 1000000000u,
                                                 10000000000u,
                                                 100000000000u,
                                                 1000000000000u,
                                                 10000000000000u,
                                                 100000000000000u,
                                                 1000000000000000u,
                                                 10000000000000000u,
                                                 100000000000000000u,
                                                 1000000000000000000u,
                                                 10000000000000000000u,
                                                 (unsigned __int128)10000000000000000000u * 10,
                                                 (unsigned __int128)10000000000000000000u * 100,
                                                 (unsigned __int128)10000000000000000000u * 1000 };
    /* m * 10^22 < 2^53 * 2^74: no overflow */
    unsigned __int128 p10 = pow10[d], half = (unsigned __int128)1 << (sh - 1);
    unsigned __int128 num = (unsigned __int128)m * p10, q = num >> sh;
    unsigned __int128 rem = num - (q << sh);
    if (rem == half) return -1;
    if (rem > half) q++;
    *qout = q;
    if (q == 0) return 0;
    if (q >= ten16) return 1;
    /* Reads back iff |q/10^d - m/2^sh| < half an ulp (2^-sh / 2), or equal
     * and m even (ties to even); times 10^d * 2^sh, all in 128 bits
     * (q * 2^sh < 2^54 * 2^73). */
    unsigned __int128 lhs = q << sh, diff = lhs > num ? lhs - num : num - lhs, hd = p10 / 2;
    return diff < hd || (diff == hd && (m & 1) == 0);
}

/*
 * a: finite, normal and > 0.  Finds the shortest decimal without printf for
 * integers below 2^53 and for non-integers in [2^-20, 2^53); returns 0 when it
 * cannot decide (the slow path then does).  Write a = m / 2^sh exactly
 * (m < 2^53, 0 < sh <= 73).  For d = 1, 2, ...: q = the exactly rounded nearest
 * integer to a * 10^d = m * 10^d / 2^sh (128-bit arithmetic, no error), and
 * whether the decimal q / 10^d reads back as a is decided exactly too (see
 * fast_try).  Why the first such d gives the shortest, and the closest among the
 * shortest (ECMAScript's choice and printf's): a's rounding interval is
 * symmetric (powers of two, where it is lopsided, are excluded), so if the
 * nearest integer at a smaller d does not read back no other integer there
 * does; at larger d every candidate has more significant digits.  When no d
 * gives a match of at most 16 digits, the nearest 17-digit decimal always
 * reads back and is the answer.  Exact ties of the rounding go to the slow
 * path.
 */
static int fast_digits(double a, char *digits, int *exp10)
{
    const uint64_t ten16 = UINT64_C(10000000000000000);
    if (a < 9007199254740992.0 && a == floor(a)) /* integers below 2^53: exact, spacing <= 1 */
        return int_digits((uint64_t)a, 0, digits, exp10);
    /* from the bits, not frexp/ldexp (library calls, per value written):
     * a normal a = (2^52 | frac) * 2^(be - 1075), i.e. frexp's e2 = be - 1022 */
    uint64_t bits;
    memcpy(&bits, &a, sizeof bits);
    uint64_t frac = bits & ((UINT64_C(1) << 52) - 1);
    int e2 = (int)((bits >> 52) & 0x7ff) - 1022;
    int sh = 53 - e2; /* a = m / 2^sh */
    if (sh <= 0 || sh > 73) return 0;
    uint64_t m = frac | (UINT64_C(1) << 52);
    /* A short binary fraction (37.25, 39.875: an average over a power-of-two
     * count) is a = odd / 2^k = N / 10^k exactly, N = odd * 5^k, N odd.  When
     * N < 2^53 its digits are the answer: every decimal with fewer digits
     * after the point is at least 10^-k away from a, more than half an ulp
     * (<= a * 2^-53 = N * 10^-k * 2^-53, on either side, powers of two too),
     * so it does not read back.  (The search below gives these up: they hold
     * an exact tie of the rounding at k - 1 digits.) */
    int tz = __builtin_ctzll(m), k = sh - tz;
    if (k >= 1 && k <= 22) {
        uint64_t odd = m >> tz, p5 = 1;
        for (int i = 0; i < k; i++) p5 *= 5;
        if (odd <= ((UINT64_C(1) << 53) - 1) / p5) return int_digits(odd * p5, k, digits, exp10);
    }
    if (frac == 0) return 0; /* power of two: lopsided interval */
    /* The d tried are 1..22, the first that qualifies (fast_try) wins, and
     * a tie of the rounding before it gives up.  Qualifying is upward closed
     * in d (q / 10^d reading back, the nearest at d + 1 is no farther; q only
     * grows), so the first is found by bisection: ~5 tries, not up to 17
     * (a rate's values have 16-17 digits).  A tie happens at exactly one d:
     * m * 10^d / 2^(sh-1) odd, i.e. d = sh - 1 - ctz(m); the search stops
     * short of it and gives up when nothing qualifies before it, as a walk
     * from d = 1 would. */
    int dtie = sh - 1 - tz, hi = dtie >= 1 && dtie <= 22 ? dtie - 1 : 22, lo = 1;
    /* E <= log10(a) (2^(e2-1) <= a): at d = 16 - E, q >= 10^16 qualifies
     * without a try */
    int e10lo = (int)floor((e2 - 1) * 0.30102999566398119521); /* exact for |e2| < 1000 */
    unsigned __int128 q;
    if (16 - e10lo >= 1 && 16 - e10lo < hi)
        hi = 16 - e10lo;
    else if (hi < 1 || fast_try(m, sh, hi, &q) != 1)
        return 0;
    /* most non-integer values need 16 or 17 digits (a rate, an average):
     * step down from the top twice before bisecting */
    for (int k = 0; k < 2 && lo < hi; k++) {
        int r = fast_try(m, sh, hi - 1, &q);
        if (r < 0) return 0;
        if (!r) {
            lo = hi;
            break;
        }
        hi--;
    }
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, r = fast_try(m, sh, mid, &q);
        if (r < 0) return 0;
        if (r)
            hi = mid;
        else
            lo = mid + 1;
    }
    if (fast_try(m, sh, lo, &q) != 1) return 0;
    if (q >= ten16) return q < ten16 * 10 ? int_digits((uint64_t)q, lo, digits, exp10) : 0;
    return int_digits((uint64_t)q, lo, digits, exp10);
}

/* a: finite and > 0.  Fills digits (no leading/trailing zeros), returns count. */
static int shortest_digits(double a, char *digits, int *exp10)
{
    char tmp[48];
    if (a >= DBL_MIN) {
        int k = fast_digits(a, digits, exp10);
        if (k > 0) return k;
    }
    if (a < DBL_MIN) {
        /* Subnormals carry fewer than 53 bits, so DBL_DIG's promise does not
         * hold; but their spacing is uniform (a symmetric rounding interval),
         * so the first precision whose correctly rounded form reads back is
         * the shortest. */
        for (int p = 1; p < 17; p++) {
            snprintf(tmp, sizeof tmp, "%.*e", p - 1, a);
            if (strtod(tmp, NULL) == a) return strip_zeros(digits, split_sci(tmp, digits, exp10));
        }
    }
    snprintf(tmp, sizeof tmp, "%.14e", a);
    if (strtod(tmp, NULL) == a) return strip_zeros(digits, split_sci(tmp, digits, exp10));

    snprintf(tmp, sizeof tmp, "%.15e", a);
    if (strtod(tmp, NULL) == a) return strip_zeros(digits, split_sci(tmp, digits, exp10));
    char alt[20];
    int alt_exp, nd = split_sci(tmp, alt, &alt_exp);
    step_digits(alt, nd, &alt_exp, strtod(tmp, NULL) > a ? -1 : +1);
    if (parse_digits(alt, nd, alt_exp) == a) {
        memcpy(digits, alt, (size_t)nd);
        *exp10 = alt_exp;
        return strip_zeros(digits, nd);
    }

    snprintf(tmp, sizeof tmp, "%.16e", a);
    return strip_zeros(digits, split_sci(tmp, digits, exp10));
}

int strata_fmt_shortest(double a, char digits[20], int *exp10) { return shortest_digits(a, digits, exp10); }

int strata_fmt_double(double v, char *buf, size_t cap)
{
    char out[STRATA_FMT_DOUBLE_BUFSZ];
    size_t o = 0;
    if (isnan(v)) {
        strcpy(out, "NaN");
        o = 3;
    } else if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        o = 4;
    } else {
        if (signbit(v)) out[o++] = '-';
        if (v == 0) {
            out[o++] = '0';
        } else {
            char d[20];
            int e10, k = shortest_digits(fabs(v), d, &e10);
            int n = e10 + 1; /* value = 0.d1d2..dk x 10^n (ECMAScript's n) */
            if (k <= n && n <= 21) {
                memcpy(out + o, d, (size_t)k);
                o += (size_t)k;
                for (int i = k; i < n; i++) out[o++] = '0';
            } else if (0 < n && n <= 21) {
                memcpy(out + o, d, (size_t)n);
                o += (size_t)n;
                out[o++] = '.';
                memcpy(out + o, d + n, (size_t)(k - n));
                o += (size_t)(k - n);
            } else if (-6 < n && n <= 0) {
                out[o++] = '0';
                out[o++] = '.';
                for (int i = n; i < 0; i++) out[o++] = '0';
                memcpy(out + o, d, (size_t)k);
                o += (size_t)k;
            } else {
                out[o++] = d[0];
                if (k > 1) {
                    out[o++] = '.';
                    memcpy(out + o, d + 1, (size_t)(k - 1));
                    o += (size_t)(k - 1);
                }
                o += (size_t)snprintf(out + o, sizeof out - o, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
            }
        }
        out[o] = '\0';
    }
    if (!buf || cap <= o) {
        if (buf && cap > 0) buf[0] = '\0';
        return STRATA_EBUFSMALL;
    }
    memcpy(buf, out, o + 1);
    return (int)o;
}
