/*
 * util.c: the error-to-HTTP-status mapping (the only one in strata), time
 * parameter parsing and shortest round-trip number formatting.
 */
#include "api.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int api_status_for_error(int err)
{
    switch (err) {
    case STRATA_OK:          return 200;
    case STRATA_EINVAL:
    case STRATA_EBADSNAPPY:
    case STRATA_EBADPROTO:
    case STRATA_EBADLABEL:
    case STRATA_ETOOOLD:
    case STRATA_EDUPTS:
    case STRATA_EFUTURE:
    case STRATA_EBADREGEX:   return 400;
    case STRATA_EUNAUTH:     return 401;
    case STRATA_EFORBIDDEN:  return 403;
    case STRATA_ENOTFOUND:   return 404;
    case STRATA_ECONFLICT:   return 409;
    case STRATA_ETOOBIG:     return 413;
    case STRATA_EMEDIA:      return 415;
    case STRATA_ELIMIT:      return 429;
    case STRATA_EUNSUPPORTED:return 501;
    /* the store cannot take the request now; the client may retry */
    case STRATA_ENOMEM:
    case STRATA_EIO:
    case STRATA_ENOSPC:
    case STRATA_ECLOSED:
    case STRATA_ELOCKED:
    case STRATA_ETIMEOUT:    return 503;
    default:                 return 500;
    }
}

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Fraction digits after a '.', as milliseconds (truncated past 3 digits). */
static int fraction_ms(const char **p, int *ms)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s)) return -1;
    int v = 0, n = 0;
    for (; isdigit((unsigned char)*s); s++, n++)
        if (n < 3) v = v * 10 + (*s - '0');
    for (; n < 3; n++) v *= 10;
    *ms = v;
    *p = s;
    return 0;
}

static int parse_rfc3339(const char *s, int64_t *out)
{
    int Y, M, D, h, m, sec, ms = 0;
    const char *p = s;
    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
        digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' ')) return STRATA_EINVAL;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' || digits(&p, 2, &sec))
        return STRATA_EINVAL;
    if (*p == '.') { p++; if (fraction_ms(&p, &ms)) return STRATA_EINVAL; }
    int off_min = 0;
    if (*p == 'Z' || *p == 'z') p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return STRATA_EINVAL;
        off_min = sign * (oh * 60 + om);
    } else return STRATA_EINVAL;
    if (*p) return STRATA_EINVAL;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60) return STRATA_EINVAL;
    struct tm tm = { .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                     .tm_hour = h, .tm_min = m, .tm_sec = sec };
    time_t t = timegm(&tm);
    if (tm.tm_mday != D) return STRATA_EINVAL; /* 31 February and friends */
    *out = ((int64_t)t - (int64_t)off_min * 60) * 1000 + ms;
    return 0;
}

int api_parse_time(const char *s, int64_t *ms)
{
    if (!s || !*s) return STRATA_EINVAL;
    if (strchr(s, '-') && strlen(s) >= 10 && s[4] == '-') return parse_rfc3339(s, ms);
    /* unix seconds, parsed as integer + fraction so 1700000000.123 is exact */
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+') neg = *p++ == '-';
    if (!isdigit((unsigned char)*p)) return STRATA_EINVAL;
    int64_t secs = 0;
    for (; isdigit((unsigned char)*p); p++) {
        if (secs > INT64_C(9000000000000)) return STRATA_EINVAL;
        secs = secs * 10 + (*p - '0');
    }
    int frac = 0;
    if (*p == '.') { p++; if (fraction_ms(&p, &frac)) return STRATA_EINVAL; }
    if (*p) return STRATA_EINVAL;
    int64_t v = secs * 1000 + frac;
    *ms = neg ? -v : v;
    return 0;
}

void api_format_double(char *buf, size_t cap, double v)
{
    /* %g would write 141557760 as 1.4155776e+08; integers read better whole */
    if (v == floor(v) && fabs(v) < 1e21) {
        snprintf(buf, cap, "%.0f", v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) return;
    }
}
