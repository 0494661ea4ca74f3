/*
 * strata_time.c: RFC 3339, unix-seconds and duration parsing; RFC 3339
 * formatting.
 *
 * Calendar arithmetic uses Howard Hinnant's days_from_civil/civil_from_days
 * (proleptic Gregorian, exact for negative instants too) instead of
 * timegm()/gmtime_r(): they need no locale or TZ, cannot fail on 32-bit
 * time_t, and make the parse/format pair an exact inverse.
 */
#include "strata_time.h"
#include "strata_err.h"

#include <stdio.h>
#include <string.h>

#define MS_PER_DAY INT64_C(86400000)

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Reads exactly n digits at *p; advances *p.  Stops at the NUL, never past it. */
static int fixed_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[0])) return STRATA_EINVAL;
        v = v * 10 + ((*p)[0] - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

static int expect(const char **p, char a, char b)
{
    if (**p != a && **p != b) return STRATA_EINVAL;
    (*p)++;
    return 0;
}

int strata_time_parse_rfc3339(const char *s, int64_t *out_ms)
{
    if (!s || !out_ms) return STRATA_EINVAL;
    const char *p = s;
    int year, mon, day, hh, mm, ss;
    if (fixed_digits(&p, 4, &year) || expect(&p, '-', '-') || fixed_digits(&p, 2, &mon) ||
        expect(&p, '-', '-') || fixed_digits(&p, 2, &day) || expect(&p, 'T', 't') ||
        fixed_digits(&p, 2, &hh) || expect(&p, ':', ':') || fixed_digits(&p, 2, &mm) ||
        expect(&p, ':', ':') || fixed_digits(&p, 2, &ss))
        return STRATA_EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hh > 23 || mm > 59 || ss > 59)
        return STRATA_EINVAL;

    int frac_ms = 0;
    if (*p == '.') {
        p++;
        if (!is_digit(*p)) return STRATA_EINVAL;
        /* Digits beyond the millisecond are dropped: truncation is the floor
         * here because the fraction is a non-negative offset within its second. */
        int i = 0;
        for (; is_digit(*p); i++, p++)
            if (i < 3) frac_ms = frac_ms * 10 + (*p - '0');
        for (; i < 3; i++) frac_ms *= 10;
    }

    int64_t offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (fixed_digits(&p, 2, &oh) || expect(&p, ':', ':') || fixed_digits(&p, 2, &om))
            return STRATA_EINVAL;
        if (oh > 23 || om > 59) return STRATA_EINVAL;
        offset_min = sign * (oh * 60 + om);
    } else {
        return STRATA_EINVAL;
    }
    if (*p != '\0') return STRATA_EINVAL;

    int64_t days = days_from_civil(year, mon, day);
    *out_ms = days * MS_PER_DAY + ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + frac_ms - offset_min * 60000;
    return 0;
}

int strata_time_parse_unix(const char *s, int64_t *out_ms)
{
    if (!s || !out_ms) return STRATA_EINVAL;
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-') neg = (*p++ == '-');
    /* Magnitude limit: whole seconds whose ms (plus rounding) fit int64. */
    const int64_t max_sec = INT64_MAX / 1000 - 1;
    int64_t sec = 0;
    int ndigits = 0;
    for (; is_digit(*p); p++, ndigits++) {
        sec = sec * 10 + (*p - '0');
        if (sec > max_sec) return STRATA_EINVAL;
    }
    int64_t ms = 0;
    if (*p == '.') {
        p++;
        int i = 0, round_up = 0;
        for (; is_digit(*p); p++, i++, ndigits++) {
            if (i < 3)
                ms = ms * 10 + (*p - '0');
            else if (i == 3)
                round_up = (*p >= '5');
        }
        for (; i < 3; i++) ms *= 10;
        ms += round_up;
    }
    if (ndigits == 0 || *p != '\0') return STRATA_EINVAL;
    int64_t total = sec * 1000 + ms;
    *out_ms = neg ? -total : total;
    return 0;
}

int strata_time_parse_any(const char *s, int64_t *out_ms)
{
    if (strata_time_parse_unix(s, out_ms) == 0) return 0;
    return strata_time_parse_rfc3339(s, out_ms);
}

int strata_time_format_rfc3339(int64_t ms, char *buf, size_t cap)
{
    if (!buf || cap == 0) return STRATA_EBUFSMALL;
    buf[0] = '\0';
    /* Years 0000..9999: [-62167219200000, 253402300799999]. */
    if (ms < INT64_C(-62167219200000) || ms > INT64_C(253402300799999)) return STRATA_EINVAL;
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;
    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    /* Answers format thousands of timestamps, mostly of the same few days:
     * the "YYYY-MM-DDT" prefix is kept per thread for the last day seen, and
     * the rest written digit by digit (snprintf was most of the cost). */
    static _Thread_local int64_t cached_day = INT64_MIN;
    static _Thread_local char cached_date[11];
    if (days != cached_day) {
        int64_t y;
        int m, d;
        civil_from_days(days, &y, &m, &d);
        char *c = cached_date;
        int yy = (int)y;
        c[0] = (char)('0' + yy / 1000);
        c[1] = (char)('0' + yy / 100 % 10);
        c[2] = (char)('0' + yy / 10 % 10);
        c[3] = (char)('0' + yy % 10);
        c[4] = '-';
        c[5] = (char)('0' + m / 10);
        c[6] = (char)('0' + m % 10);
        c[7] = '-';
        c[8] = (char)('0' + d / 10);
        c[9] = (char)('0' + d % 10);
        c[10] = 'T';
        cached_day = days;
    }
    int msec = (int)(rem % 1000);
    int sod = (int)(rem / 1000), hh = sod / 3600, mi = sod / 60 % 60, ss = sod % 60;
    size_t n = msec == 0 ? 20 : 24;
    if (n >= cap) return STRATA_EBUFSMALL;
    memcpy(buf, cached_date, 11);
    char *c = buf + 11;
    c[0] = (char)('0' + hh / 10);
    c[1] = (char)('0' + hh % 10);
    c[2] = ':';
    c[3] = (char)('0' + mi / 10);
    c[4] = (char)('0' + mi % 10);
    c[5] = ':';
    c[6] = (char)('0' + ss / 10);
    c[7] = (char)('0' + ss % 10);
    c += 8;
    if (msec != 0) {
        c[0] = '.';
        c[1] = (char)('0' + msec / 100);
        c[2] = (char)('0' + msec / 10 % 10);
        c[3] = (char)('0' + msec % 10);
        c += 4;
    }
    c[0] = 'Z';
    c[1] = '\0';
    return (int)n;
}

int strata_duration_parse(const char *s, int64_t *out_ms)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {
        { "y", INT64_C(365) * 86400000 },
        { "w", INT64_C(7) * 86400000 },
        { "d", 86400000 },
        { "h", 3600000 },
        { "m", 60000 },
        { "s", 1000 },
        { "ms", 1 },
    };
    if (!s || !out_ms || !*s) return STRATA_EINVAL;
    if (s[0] == '0' && s[1] == '\0') {
        *out_ms = 0;
        return 0;
    }
    const char *p = s;
    int next_unit = 0; /* units must appear in the table's order, once each */
    int64_t total = 0;
    while (*p) {
        if (!is_digit(*p)) return STRATA_EINVAL;
        int64_t v = 0;
        for (; is_digit(*p); p++) {
            if (v > (INT64_MAX - 9) / 10) return STRATA_EINVAL;
            v = v * 10 + (*p - '0');
        }
        int u;
        if (p[0] == 'm' && p[1] == 's') {
            u = 6;
            p += 2;
        } else {
            for (u = 0; u < 6; u++)
                if (*p == units[u].unit[0]) break;
            if (u == 6) return STRATA_EINVAL;
            p++;
        }
        if (u < next_unit) return STRATA_EINVAL;
        next_unit = u + 1;
        if (v > (INT64_MAX - total) / units[u].ms) return STRATA_EINVAL;
        total += v * units[u].ms;
    }
    *out_ms = total;
    return 0;
}
