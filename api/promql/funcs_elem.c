/*
 * funcs_elem.c: the element-wise kernels of promql_funcs.h (math, trig,
 * rounding, clamping and the UTC calendar functions), with the results
 * Prometheus 3 gives, NaN and infinities included (docs/promql.md,
 * "Kernels").
 */
#include "promql_funcs.h"

#include <math.h>
#include <string.h>

/* Go's math.Max/Min: a NaN on either side wins (C's fmax/fmin drop it),
 * and +0 is above -0. */
static double go_max(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && b == 0) return signbit(a) ? b : a;
    return a > b ? a : b;
}

static double go_min(double a, double b)
{
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && b == 0) return signbit(a) ? a : b;
    return a < b ? a : b;
}

static double e_abs(double v, const double *p) { return (void)p, fabs(v); }
static double e_ceil(double v, const double *p) { return (void)p, ceil(v); }
static double e_floor(double v, const double *p) { return (void)p, floor(v); }
static double e_exp(double v, const double *p) { return (void)p, exp(v); }
static double e_sqrt(double v, const double *p) { return (void)p, sqrt(v); }
static double e_ln(double v, const double *p) { return (void)p, log(v); }
static double e_log2(double v, const double *p) { return (void)p, log2(v); }
static double e_log10(double v, const double *p) { return (void)p, log10(v); }
static double e_acos(double v, const double *p) { return (void)p, acos(v); }
static double e_acosh(double v, const double *p) { return (void)p, acosh(v); }
static double e_asin(double v, const double *p) { return (void)p, asin(v); }
static double e_asinh(double v, const double *p) { return (void)p, asinh(v); }
static double e_atan(double v, const double *p) { return (void)p, atan(v); }
static double e_atanh(double v, const double *p) { return (void)p, atanh(v); }
static double e_cos(double v, const double *p) { return (void)p, cos(v); }
static double e_cosh(double v, const double *p) { return (void)p, cosh(v); }
static double e_sin(double v, const double *p) { return (void)p, sin(v); }
static double e_sinh(double v, const double *p) { return (void)p, sinh(v); }
static double e_tan(double v, const double *p) { return (void)p, tan(v); }
static double e_tanh(double v, const double *p) { return (void)p, tanh(v); }
/* The same operation order as Prometheus, so the last bit agrees. */
static double e_deg(double v, const double *p) { return (void)p, v * 180 / M_PI; }
static double e_rad(double v, const double *p) { return (void)p, v * M_PI / 180; }

/* sgn keeps NaN and the sign of zero (v itself when neither < 0 nor > 0). */
static double e_sgn(double v, const double *p)
{
    (void)p;
    return v < 0 ? -1 : v > 0 ? 1 : v;
}

/* Ties round up; dividing by the inverse, as Prometheus does, because it
 * gives fewer representation errors than multiplying by to_nearest. */
static double e_round(double v, const double *p)
{
    double inv = 1.0 / (p ? p[0] : 1.0);
    return floor(v * inv + 0.5) / inv;
}

static double e_clamp(double v, const double *p) { return go_max(p[0], go_min(p[1], v)); }
static double e_clamp_min(double v, const double *p) { return go_max(p[0], go_min(INFINITY, v)); }
static double e_clamp_max(double v, const double *p) { return go_max(-INFINITY, go_min(p[0], v)); }

/* A calendar date in UTC. */
typedef struct civil {
    int64_t year;
    int month, day, yday, wday, hour, minute;
} civil_t;

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* Seconds since the epoch -> UTC date, proleptic Gregorian (the
 * days-from-civil inverse over 400-year eras; valid for any int64). */
static void to_civil(int64_t secs, civil_t *c)
{
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    c->hour = (int)(rem / 3600);
    c->minute = (int)(rem % 3600 / 60);
    c->wday = (int)(((days % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* from March 1 */
    int64_t mp = (5 * doy + 2) / 153;
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = yoe + era * 400 + (c->month <= 2);
    static const int before[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
    c->yday = before[c->month - 1] + c->day + (c->month > 2 && is_leap(c->year));
}

/* The value as Go's time.Unix(int64(v), 0): truncated toward zero.  NaN,
 * the infinities and values beyond int64 give NaN here (Go's conversion
 * is undefined there and Prometheus answers a meaningless date). */
static int value_civil(double v, civil_t *c)
{
    if (!(v > -9.2e18 && v < 9.2e18)) return 0;
    to_civil((int64_t)v, c);
    return 1;
}

#define TIME_FN(fname, expr)                       \
    static double fname(double v, const double *p) \
    {                                              \
        (void)p;                                   \
        civil_t c;                                 \
        if (!value_civil(v, &c)) return NAN;       \
        return (double)(expr);                     \
    }

static int month_days(int64_t y, int m)
{
    static const int d[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return d[m - 1] + (m == 2 && is_leap(y));
}

TIME_FN(e_day_of_month, c.day)
TIME_FN(e_day_of_week, c.wday)
TIME_FN(e_day_of_year, c.yday)
TIME_FN(e_days_in_month, month_days(c.year, c.month))
TIME_FN(e_hour, c.hour)
TIME_FN(e_minute, c.minute)
TIME_FN(e_month, c.month)
TIME_FN(e_year, c.year)

static const struct {
    const char *name;
    promql_elem_fn_t fn;
} elem_fns[] = {
    { "abs", e_abs },
    { "ceil", e_ceil },
    { "floor", e_floor },
    { "exp", e_exp },
    { "sqrt", e_sqrt },
    { "ln", e_ln },
    { "log2", e_log2 },
    { "log10", e_log10 },
    { "sgn", e_sgn },
    { "acos", e_acos },
    { "acosh", e_acosh },
    { "asin", e_asin },
    { "asinh", e_asinh },
    { "atan", e_atan },
    { "atanh", e_atanh },
    { "cos", e_cos },
    { "cosh", e_cosh },
    { "sin", e_sin },
    { "sinh", e_sinh },
    { "tan", e_tan },
    { "tanh", e_tanh },
    { "deg", e_deg },
    { "rad", e_rad },
    { "round", e_round },
    { "clamp", e_clamp },
    { "clamp_min", e_clamp_min },
    { "clamp_max", e_clamp_max },
    { "day_of_month", e_day_of_month },
    { "day_of_week", e_day_of_week },
    { "day_of_year", e_day_of_year },
    { "days_in_month", e_days_in_month },
    { "hour", e_hour },
    { "minute", e_minute },
    { "month", e_month },
    { "year", e_year },
};

promql_elem_fn_t promql_elem_fn_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof elem_fns / sizeof elem_fns[0]; i++)
        if (strcmp(elem_fns[i].name, name) == 0) return elem_fns[i].fn;
    return NULL;
}
