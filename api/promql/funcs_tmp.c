/*
 * funcs_tmp.c: a temporary stand-in for the kernels of promql_funcs.h, only
 * the few the evaluator's tests need, until the real kernels (funcs*.c of
 * another branch) are merged; then this file is deleted.
 */
#include "promql_funcs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "strata_err.h"

static int extrap(const tsdb_sample_t *s, size_t n, int64_t rs, int64_t re, int counter, int rate,
                  double *out)
{
    if (n < 2) return 0;
    double res = s[n - 1].v - s[0].v;
    if (counter) {
        for (size_t i = 1; i < n; i++)
            if (s[i].v < s[i - 1].v) res += s[i - 1].v;
    }
    double start = (double)(s[0].t - rs) / 1000, end = (double)(re - s[n - 1].t) / 1000;
    double sampled = (double)(s[n - 1].t - s[0].t) / 1000, avg = sampled / (double)(n - 1);
    if (counter && res > 0 && s[0].v >= 0) {
        double dz = sampled * (s[0].v / res);
        if (dz < start) start = dz;
    }
    double thr = avg * 1.1, ext = sampled;
    ext += start >= thr ? avg / 2 : start;
    ext += end >= thr ? avg / 2 : end;
    double f = ext / sampled;
    if (rate) f /= (double)(re - rs) / 1000;
    *out = res * f;
    return 1;
}

static int f_rate(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)p;
    return extrap(s, n, a, b, 1, 1, o);
}
static int f_increase(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)p;
    return extrap(s, n, a, b, 1, 0, o);
}
static int f_sum(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)a, (void)b, (void)p;
    double x = 0;
    for (size_t i = 0; i < n; i++) x += s[i].v;
    *o = x;
    return n > 0;
}
static int f_count(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)s, (void)a, (void)b, (void)p;
    *o = (double)n;
    return n > 0;
}
static int f_last(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)a, (void)b, (void)p;
    if (!n) return 0;
    *o = s[n - 1].v;
    return 1;
}
static int f_max(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)a, (void)b, (void)p;
    if (!n) return 0;
    double x = s[0].v;
    for (size_t i = 1; i < n; i++)
        if (s[i].v > x || isnan(x)) x = s[i].v;
    *o = x;
    return 1;
}
static int f_min(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    (void)a, (void)b, (void)p;
    if (!n) return 0;
    double x = s[0].v;
    for (size_t i = 1; i < n; i++)
        if (s[i].v < x || isnan(x)) x = s[i].v;
    *o = x;
    return 1;
}
static int f_avg(const tsdb_sample_t *s, size_t n, int64_t a, int64_t b, const double *p, double *o)
{
    if (!f_sum(s, n, a, b, p, o)) return 0;
    *o /= (double)n;
    return 1;
}

promql_range_fn_t promql_range_fn_lookup(const char *name)
{
    static const struct {
        const char *n;
        promql_range_fn_t f;
    } t[] = { { "rate", f_rate },           { "increase", f_increase },
              { "sum_over_time", f_sum },   { "count_over_time", f_count },
              { "last_over_time", f_last }, { "max_over_time", f_max },
              { "min_over_time", f_min },   { "avg_over_time", f_avg } };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].n, name) == 0) return t[i].f;
    return NULL;
}

static double e_abs(double v, const double *p)
{
    (void)p;
    return fabs(v);
}
static double e_round(double v, const double *p) { return floor(v * (1 / p[0]) + 0.5) / (1 / p[0]); }
static double e_clamp(double v, const double *p) { return fmax(p[0], fmin(p[1], v)); }
static double e_hour(double v, const double *p)
{
    (void)p;
    return (double)(((int64_t)v % 86400) / 3600);
}

promql_elem_fn_t promql_elem_fn_lookup(const char *name)
{
    if (strcmp(name, "abs") == 0) return e_abs;
    if (strcmp(name, "round") == 0) return e_round;
    if (strcmp(name, "clamp") == 0) return e_clamp;
    if (strcmp(name, "hour") == 0) return e_hour;
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double promql_quantile(double phi, double *v, size_t n)
{
    if (!n || isnan(phi)) return NAN;
    if (phi < 0) return -INFINITY;
    if (phi > 1) return INFINITY;
    qsort(v, n, sizeof *v, cmp_d);
    double rank = phi * (double)(n - 1);
    size_t lo = (size_t)rank, hi = lo + 1 < n ? lo + 1 : lo;
    double w = rank - floor(rank);
    return v[lo] * (1 - w) + v[hi] * w;
}

static int cmp_b(const void *a, const void *b)
{
    double x = ((const promql_bucket_t *)a)->upper, y = ((const promql_bucket_t *)b)->upper;
    return x < y ? -1 : x > y;
}

double promql_bucket_quantile(double q, promql_bucket_t *b, size_t n)
{
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(b, n, sizeof *b, cmp_b);
    if (n < 2 || !isinf(b[n - 1].upper)) return NAN;
    for (size_t i = 1; i < n; i++)
        if (b[i].count < b[i - 1].count) b[i].count = b[i - 1].count;
    double rank = q * b[n - 1].count;
    size_t i = 0;
    while (i < n - 1 && b[i].count < rank) i++;
    if (i == n - 1) return b[n - 2].upper;
    if (i == 0 && b[0].upper <= 0) return b[0].upper;
    double start = 0, end = b[i].upper, count = b[i].count;
    if (i > 0) {
        start = b[i - 1].upper;
        count -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / count);
}

int promql_regex_to_posix(const char *re, char *out, size_t cap, int *icase, char *why, size_t whycap)
{
    (void)why, (void)whycap;
    *icase = 0;
    if (strncmp(re, "(?i)", 4) == 0) {
        *icase = 1;
        re += 4;
    }
    size_t k = 0;
    for (const char *p = re; *p; p++) {
        const char *rep = NULL;
        char one[2] = { *p, 0 };
        if (p[0] == '\\' && p[1] == 'd') {
            rep = "[0-9]";
            p++;
        } else {
            rep = one;
        }
        size_t l = strlen(rep);
        if (k + l + 1 > cap) return STRATA_EBUFSMALL;
        memcpy(out + k, rep, l);
        k += l;
    }
    out[k] = 0;
    return 0;
}
