/*
 * fuzz_time.c: libFuzzer target for common/strata_time.c and common/strata_fmt.c,
 * the number and time parsers every query string goes through.
 *
 * 1. The first 8 bytes as a float64: strata_fmt_double must round-trip
 *    through strtod bit-exactly (NaN stays NaN), be the shortest such string
 *    (printf's correctly rounded form with one digit fewer must not round-trip),
 *    use exponent notation exactly outside 1e-6 <= |v| < 1e21, and fail
 *    cleanly with a buffer one byte too small.
 * 2. The same 8 bytes as ms: strata_time_format_rfc3339 succeeds exactly for
 *    years 0000..9999 and parses back to the same instant.
 * 3. The whole input as a string: strata_time_parse_unix and
 *    strata_duration_parse against independent reference parsers (exact
 *    __int128 arithmetic), strata_time_parse_any against the two grammars,
 *    and strata_time_parse_rfc3339 against format -> parse round trips.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_err.h"
#include "strata_fmt.h"
#include "strata_time.h"

#define MIN_MS INT64_C(-62167219200000) /* 0000-01-01T00:00:00Z */
#define MAX_MS INT64_C(253402300799999) /* 9999-12-31T23:59:59.999Z */

static int isdig(char c) { return c >= '0' && c <= '9'; }

/* Reference for strata_time_parse_unix: [+-]digits[.digits] with at least one
 * digit, rounded to ms half away from zero; out of int64 range is an error. */
static int ref_unix(const char *s, int64_t *out)
{
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = *p++ == '-';
    __int128 sec = 0;
    int nd = 0;
    for (; isdig(*p); p++, nd++) {
        sec = sec * 10 + (*p - '0');
        if (sec > (__int128)INT64_MAX) return -1;
    }
    __int128 ms = 0;
    if (*p == '.') {
        p++;
        int i = 0;
        for (; isdig(*p); p++, i++, nd++) {
            if (i < 3)
                ms = ms * 10 + (*p - '0');
            else if (i == 3 && *p >= '5')
                ms += 1; /* the 4th digit decides the half */
        }
        /* scale only the digits kept; the rounding unit was added at ms scale */
        if (i < 3)
            for (int k = i; k < 3; k++) ms *= 10;
    }
    if (nd == 0 || *p) return -1;
    __int128 total = sec * 1000 + ms;
    /* strata's documented limit: whole seconds up to INT64_MAX/1000 - 1 */
    if (sec > INT64_MAX / 1000 - 1) return -1;
    if (neg) total = -total;
    *out = (int64_t)total;
    return 0;
}

/* Reference for strata_duration_parse: "0", or <digits><unit> groups with
 * units y w d h m s ms, each at most once, in that order; no overflow. */
static int ref_duration(const char *s, int64_t *out)
{
    static const char *const unit[] = { "y", "w", "d", "h", "m", "s", "ms" };
    static const int64_t ums[] = {
        INT64_C(31536000000), INT64_C(604800000), 86400000, 3600000, 60000, 1000, 1
    };
    if (!*s) return -1;
    if (!strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    __int128 total = 0;
    int next = 0;
    const char *p = s;
    while (*p) {
        __int128 v = 0;
        int nd = 0;
        for (; isdig(*p); p++, nd++) {
            v = v * 10 + (*p - '0');
            /* strata's digit loop stops 8 short of INT64_MAX (it checks before
             * adding the digit); a bound that loose is harmless, so mirror it */
            if (v > (__int128)((INT64_MAX - 9) / 10) * 10 + 9) return -1;
        }
        if (!nd) return -1;
        int u = -1;
        if (p[0] == 'm' && p[1] == 's')
            u = 6;
        else
            for (int k = 0; k < 6; k++)
                if (*p == unit[k][0]) {
                    u = k;
                    break;
                }
        if (u < 0 || u < next) return -1;
        p += strlen(unit[u]);
        next = u + 1;
        total += v * ums[u];
        if (total > (__int128)INT64_MAX) return -1;
    }
    *out = (int64_t)total;
    return 0;
}

static void check_double(double v)
{
    char buf[STRATA_FMT_DOUBLE_BUFSZ];
    int n = strata_fmt_double(v, buf, sizeof buf);
    if (n <= 0 || (size_t)n >= sizeof buf || strlen(buf) != (size_t)n) abort();
    if (isnan(v)) {
        if (strcmp(buf, "NaN")) abort();
    } else if (isinf(v)) {
        if (strcmp(buf, v > 0 ? "+Inf" : "-Inf")) abort();
    } else {
        char *end;
        double back = strtod(buf, &end);
        if (*end || memcmp(&back, &v, sizeof v)) abort();
        double a = fabs(v);
        int has_e = strchr(buf, 'e') != NULL;
        if (a != 0 && has_e != (a < 1e-6 || a >= 1e21)) abort();
        if (a == 0 && strcmp(buf, signbit(v) ? "-0" : "0")) abort();
        /* significant digits in the output */
        int sig = 0, lead = 1;
        for (const char *p = buf; *p && *p != 'e'; p++) {
            if (!isdig(*p)) continue;
            if (lead && *p == '0') continue;
            lead = 0;
            sig++;
        }
        /* trailing zeros of an integer like "100" are layout, not digits */
        if (!has_e && !strchr(buf, '.'))
            for (const char *p = buf + n - 1; p > buf && *p == '0' && sig > 1; p--) sig--;
        if (sig > 1) {
            char shorter[64];
            snprintf(shorter, sizeof shorter, "%.*e", sig - 2, v);
            double s2 = strtod(shorter, NULL);
            if (!memcmp(&s2, &v, sizeof v)) abort(); /* not the shortest */
        }
    }
    /* one byte too small: a clean error and an empty string */
    char small[STRATA_FMT_DOUBLE_BUFSZ];
    memset(small, 'x', sizeof small);
    if (strata_fmt_double(v, small, (size_t)n) != STRATA_EBUFSMALL || small[0]) abort();
}

static void check_format_ms(int64_t ms)
{
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    int n = strata_time_format_rfc3339(ms, buf, sizeof buf);
    if (ms < MIN_MS || ms > MAX_MS) {
        if (n != STRATA_EINVAL || buf[0]) abort();
        return;
    }
    if (n <= 0 || (size_t)n != strlen(buf) || (n != 20 && n != 24)) abort();
    if ((n == 24) != (((ms % 1000) + 1000) % 1000 != 0)) abort();
    int64_t back;
    if (strata_time_parse_rfc3339(buf, &back) || back != ms) abort();
    if (strata_time_parse_any(buf, &back) || back != ms) abort();
    if (strata_time_format_rfc3339(ms, buf, (size_t)n) != STRATA_EBUFSMALL || buf[0]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 8) {
        double v;
        int64_t ms;
        memcpy(&v, data, 8);
        memcpy(&ms, data, 8);
        check_double(v);
        check_format_ms(ms);
        check_format_ms(ms % (MAX_MS + 1)); /* mostly in range */
    }
    if (size > 4096) return 0;
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    int64_t a = 0, b = 0, r = 0;
    int ru = strata_time_parse_unix(s, &a);
    if ((ru == 0) != (ref_unix(s, &r) == 0) || (ru && ru != STRATA_EINVAL) || (ru == 0 && a != r)) abort();

    int rr = strata_time_parse_rfc3339(s, &b);
    if (rr && rr != STRATA_EINVAL) abort();
    if (rr == 0) {
        /* the grammar bounds years to 0000..9999 and offsets to +-23:59 */
        if (b < MIN_MS - 86400000 || b > MAX_MS + 86400000) abort();
        if (ru == 0) abort(); /* the two grammars never both match */
        if (b >= MIN_MS && b <= MAX_MS) check_format_ms(b);
    }

    int64_t c = 0;
    int ra = strata_time_parse_any(s, &c);
    if (ru == 0 ? (ra || c != a) : rr == 0 ? (ra || c != b) : ra != STRATA_EINVAL) abort();

    int64_t d = 0, rd_ms = 0;
    int rd = strata_duration_parse(s, &d);
    int ref = ref_duration(s, &rd_ms);
    if ((rd == 0) != (ref == 0) || (rd && rd != STRATA_EINVAL) || (rd == 0 && (d != rd_ms || d < 0))) abort();

    free(s);
    return 0;
}
