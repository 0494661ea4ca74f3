/*
 * aggregate.c: the aggregation operators of the evaluator: sum avg min max
 * count group stddev stdvar quantile count_values topk bottomk limitk
 * limit_ratio, with by/without.  Each input series' group is found once;
 * then every step folds the series present at it into per-group
 * accumulators, with Prometheus' NaN, ordering and label rules.
 */
#include "eval_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "promql_funcs.h"
#include "strata_fmt.h"

/* XXH64 (seed 0): Prometheus' labels.Hash, which limit_ratio samples by. */
static uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
#define XP1 0x9E3779B185EBCA87ULL
#define XP2 0xC2B2AE3D27D4EB4FULL
#define XP3 0x165667B19E3779F9ULL
#define XP4 0x85EBCA77C2B2AE63ULL
#define XP5 0x27D4EB2F165667C5ULL
static uint64_t xround(uint64_t acc, uint64_t in) { return rotl64(acc + in * XP2, 31) * XP1; }
static uint64_t xmerge(uint64_t acc, uint64_t v) { return (acc ^ xround(0, v)) * XP1 + XP4; }
static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t rd32(const unsigned char *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
}

static uint64_t xxh64(const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;
    uint64_t h;
    if (len >= 32) {
        uint64_t v1 = XP1 + XP2, v2 = XP2, v3 = 0, v4 = 0 - XP1;
        for (; p + 32 <= end; p += 32) {
            v1 = xround(v1, rd64(p));
            v2 = xround(v2, rd64(p + 8));
            v3 = xround(v3, rd64(p + 16));
            v4 = xround(v4, rd64(p + 24));
        }
        h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
        h = xmerge(h, v1);
        h = xmerge(h, v2);
        h = xmerge(h, v3);
        h = xmerge(h, v4);
    } else {
        h = XP5;
    }
    h += (uint64_t)len;
    for (; p + 8 <= end; p += 8) h = rotl64(h ^ xround(0, rd64(p)), 27) * XP1 + XP4;
    if (p + 4 <= end) {
        h = rotl64(h ^ (rd32(p) * XP1), 23) * XP2 + XP3;
        p += 4;
    }
    for (; p < end; p++) h = rotl64(h ^ (*p * XP5), 11) * XP1;
    h ^= h >> 33;
    h *= XP2;
    h ^= h >> 29;
    h *= XP3;
    h ^= h >> 32;
    return h;
}

/* Where a series falls in limit_ratio's [0, 1). */
static double ratio_offset(pq_ev_t *ev, const pq_series_t *s)
{
    size_t len = 0;
    for (size_t i = 0; i < s->nl; i++) len += strlen(s->labels[i].name) + strlen(s->labels[i].value) + 2;
    unsigned char *b = strata_arena_alloc(ev->a, len + 1), *p = b;
    if (!b) return 0;
    for (size_t i = 0; i < s->nl; i++) {
        size_t a = strlen(s->labels[i].name), v = strlen(s->labels[i].value);
        memcpy(p, s->labels[i].name, a);
        p += a;
        *p++ = 0xff;
        memcpy(p, s->labels[i].value, v);
        p += v;
        *p++ = 0xff;
    }
    return (double)xxh64(b, len) / (double)UINT64_MAX;
}

/* Go's strconv.FormatFloat(v, 'f', -1, 64): the shortest digits, never an
 * exponent (count_values' label). */
static void fmt_plain(double v, char *out, size_t cap)
{
    char b[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(v, b, sizeof b);
    char *e = strchr(b, 'e');
    if (!e || isnan(v) || isinf(v)) {
        snprintf(out, cap, "%s", b);
        return;
    }
    int exp = atoi(e + 1);
    *e = 0;
    const char *m = b;
    int neg = *m == '-';
    if (neg) m++;
    char digits[40];
    int nd = 0, dot = -1;
    for (const char *p = m; *p; p++) {
        if (*p == '.')
            dot = nd;
        else
            digits[nd++] = *p;
    }
    if (dot < 0) dot = nd;
    int point = dot + exp; /* digits before the decimal point */
    char *o = out;
    size_t left = cap;
#define PUT(c)                            \
    do {                                  \
        if (left > 1) *o++ = (c), left--; \
    } while (0)
    if (neg) PUT('-');
    if (point <= 0) {
        PUT('0');
        PUT('.');
        for (int i = 0; i < -point; i++) PUT('0');
        for (int i = 0; i < nd; i++) PUT(digits[i]);
    } else {
        for (int i = 0; i < point; i++) PUT(i < nd ? digits[i] : '0');
        if (point < nd) {
            PUT('.');
            for (int i = point; i < nd; i++) PUT(digits[i]);
        }
    }
#undef PUT
    *o = 0;
}

static void fmt_go(double v, char *out, size_t cap)
{
    if (isnan(v))
        snprintf(out, cap, "NaN");
    else if (isinf(v))
        snprintf(out, cap, "%sInf", v > 0 ? "+" : "-");
    else
        snprintf(out, cap, "%g", v);
}

typedef struct cand {
    double v;
    uint32_t s; /* input series */
} cand_t;

static int cmp_top(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    int na = isnan(a->v), nb = isnan(b->v);
    if (na || nb) {
        if (na != nb) return na - nb; /* NaN last */
    } else if (a->v != b->v) {
        return a->v > b->v ? -1 : 1;
    }
    return a->s < b->s ? -1 : a->s > b->s;
}

static int cmp_bottom(const void *pa, const void *pb)
{
    const cand_t *a = pa, *b = pb;
    int na = isnan(a->v), nb = isnan(b->v);
    if (na || nb) {
        if (na != nb) return na - nb;
    } else if (a->v != b->v) {
        return a->v < b->v ? -1 : 1;
    }
    return a->s < b->s ? -1 : a->s > b->s;
}

/* Moves the first k of c[0..n) in cmp's order to c[0..k), sorted (the rest
 * is left in any order).  topk(5, ...) over a few dozen series at every step
 * sorted them all: a bounded insertion is O(n k) with small k and gives the
 * same k in the same order, cmp being a total order (ties by series). */
static void first_k(cand_t *c, size_t n, size_t k, int (*cmp)(const void *, const void *))
{
    if (k == 0) return;
    if (k >= n || k > 32) {
        qsort(c, n, sizeof *c, cmp);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cand_t x = c[i];
        if (i >= k && cmp(&x, &c[k - 1]) >= 0) continue;
        size_t j = i < k ? i : k - 1; /* when full the last one drops out */
        for (; j > 0 && cmp(&x, &c[j - 1]) < 0; j--) c[j] = c[j - 1];
        c[j] = x;
    }
}

typedef struct acc {
    double sum, c, mean, m2, val;
    size_t cnt;
    int incr; /* avg: the sum overflowed, the mean is kept incrementally */
} acc_t;

/* avg as Prometheus 3: the compensated sum over the count, switching to a
 * compensated incremental mean once the sum would overflow. */
static void avg_add(acc_t *a, double v)
{
    double n = (double)a->cnt;
    if (a->cnt == 1) {
        a->sum = v;
        a->mean = v;
        return;
    }
    if (!a->incr) {
        double s = a->sum, c = a->c;
        pq_kahan(v, &s, &c);
        if (!isinf(s)) {
            a->sum = s;
            a->c = c;
            return;
        }
        a->incr = 1;
        a->mean = a->sum / (n - 1);
        a->c /= n - 1;
    }
    if (isinf(a->mean)) {
        if (isinf(v) && (a->mean > 0) == (v > 0)) return;
        if (!isinf(v) && !isnan(v)) return;
    }
    double cur = a->mean + a->c;
    pq_kahan(v / n - cur / n, &a->mean, &a->c);
}

int pq_eval_aggregate(pq_ev_t *ev, const promql_node_t *n, const pq_steps_t *st, pq_val_t *out)
{
    const promql_aggop_t op = n->u.agg.op;
    pq_val_t inv;
    int rc = pq_eval(ev, n->u.agg.expr, st, &inv);
    if (rc) return rc;
    pq_mat_t in = inv.m;
    double *param = NULL;
    const char *vlabel = NULL;
    if (op == PROMQL_AGG_COUNT_VALUES) {
        pq_val_t pv;
        if ((rc = pq_eval(ev, n->u.agg.param, st, &pv)) != 0) return rc;
        vlabel = pv.str;
        /* the names strata stores (see valid_label_name in eval_call.c) */
        int ok = vlabel && ingest_valid_label_name(vlabel, strlen(vlabel));
        if (!ok) return pq_fail(ev, STRATA_EEXEC, "invalid label name \"%s\"", vlabel ? vlabel : "");
    } else if (n->u.agg.param) {
        if ((rc = pq_eval_scalar(ev, n->u.agg.param, st, &param)) != 0) return rc;
    }
    out->type = PROMQL_TYPE_VECTOR;
    const promql_labels_t *gr = &n->u.agg.grouping;
    const int keep = !n->u.agg.without;
    const int selecting = op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK || op == PROMQL_AGG_LIMITK ||
                          op == PROMQL_AGG_LIMIT_RATIO;

    /* count_values groups by the value label too (by) */
    promql_labels_t cvgr = *gr;
    if (vlabel && keep) {
        const char **nm = strata_arena_alloc(ev->a, (gr->n + 1) * sizeof *nm);
        if (!nm) return pq_nomem(ev);
        for (size_t i = 0; i < gr->n; i++) nm[i] = gr->names[i];
        nm[gr->n] = vlabel;
        cvgr.names = nm;
        cvgr.n = gr->n + 1;
    }

    size_t ns = in.n;
    pq_mat_t groups = { 0 };
    size_t *gof = strata_arena_alloc(ev->a, (ns + 1) * sizeof *gof);
    size_t *cur = strata_arena_calloc(ev->a, ns + 1, sizeof *cur);
    uint32_t *idx = strata_arena_alloc(ev->a, (ns + 1) * sizeof *idx);
    double *vals = strata_arena_alloc(ev->a, (ns + 1) * sizeof *vals);
    size_t *outof = strata_arena_alloc(ev->a, (ns + 1) * sizeof *outof); /* selecting: input -> output */
    double *roff = selecting ? strata_arena_alloc(ev->a, (ns + 1) * sizeof *roff) : NULL;
    if (!gof || !cur || !idx || !vals || !outof || (selecting && !roff)) return pq_nomem(ev);
    for (size_t i = 0; i < ns && !vlabel; i++) {
        size_t nl;
        tsdb_label_t *l = pq_labels_filter(ev, in.s[i].labels, in.s[i].nl, gr, keep, &nl);
        if (!l) return pq_nomem(ev);
        if ((rc = pq_mat_find_or_add(ev, &groups, l, nl, &gof[i])) != 0) return rc;
        outof[i] = SIZE_MAX;
        if (op == PROMQL_AGG_LIMIT_RATIO) roff[i] = ratio_offset(ev, &in.s[i]);
    }
    size_t ng = groups.n;
    acc_t *acc = strata_arena_alloc(ev->a, (ng + 1) * sizeof *acc);
    size_t *gstart = strata_arena_calloc(ev->a, ng + 1, sizeof *gstart);
    size_t *gfill = strata_arena_calloc(ev->a, ng + 1, sizeof *gfill);
    size_t *touched = strata_arena_alloc(ev->a, (ng + 1) * sizeof *touched);
    size_t *gout = strata_arena_alloc(ev->a, (ng + 1) * sizeof *gout);
    cand_t *cands = strata_arena_alloc(ev->a, (ns + 1) * sizeof *cands);
    double *qv = strata_arena_alloc(ev->a, (ns + 1) * sizeof *qv);
    if (!acc || !gstart || !gfill || !touched || !gout || !cands || !qv) return pq_nomem(ev);
    {
        size_t *cnt = strata_arena_calloc(ev->a, ng + 1, sizeof *cnt);
        if (!cnt) return pq_nomem(ev);
        for (size_t i = 0; i < ns && !vlabel; i++) cnt[gof[i]]++;
        for (size_t g = 0, a = 0; g < ng; g++) gstart[g] = a, a += cnt[g], gout[g] = SIZE_MAX;
    }
    /* count_values' per-step counts, by output series */
    size_t *cvcount = NULL, *cvtouch = NULL, cvcap = 0;

    for (size_t i = 0; i < st->n; i++) {
        int64_t t = pq_step_t(st, i);
        size_t k = pq_at_step(&in, cur, t, idx, vals), nt = 0;
        if ((rc = pq_check(ev)) != 0) return rc;
        if (!k) continue;

        if (vlabel) {
            /* count_values: the group is that of the series with the value label set */
            size_t ntouch = 0;
            for (size_t q = 0; q < k; q++) {
                const pq_series_t *s = &in.s[idx[q]];
                char vb[400];
                fmt_plain(vals[q], vb, sizeof vb);
                char *vs = strata_arena_strdup(ev->a, vb);
                size_t nl, nl2, o;
                tsdb_label_t *l = vs ? pq_labels_set(ev, s->labels, s->nl, vlabel, vs, &nl) : NULL;
                tsdb_label_t *l2 = l ? pq_labels_filter(ev, l, nl, &cvgr, keep, &nl2) : NULL;
                if (!l2) return pq_nomem(ev);
                if ((rc = pq_mat_find_or_add(ev, &out->m, l2, nl2, &o)) != 0) return rc;
                if (out->m.n > cvcap) {
                    size_t c2 = out->m.n * 2 + 16;
                    size_t *nc = strata_arena_calloc(ev->a, c2, sizeof *nc);
                    size_t *nt2 = strata_arena_alloc(ev->a, c2 * sizeof *nt2);
                    if (!nc || !nt2) return pq_nomem(ev);
                    if (cvcap) memcpy(nc, cvcount, cvcap * sizeof *nc);
                    if (ntouch) memcpy(nt2, cvtouch, ntouch * sizeof *nt2);
                    cvcount = nc;
                    cvtouch = nt2;
                    cvcap = c2;
                }
                if (!cvcount[o]++) cvtouch[ntouch++] = o;
            }
            for (size_t q = 0; q < ntouch; q++) {
                size_t o = cvtouch[q];
                if ((rc = pq_push(ev, &out->m.s[o], t, (double)cvcount[o])) != 0) return rc;
                cvcount[o] = 0;
            }
            continue;
        }

        for (size_t q = 0; q < k; q++) {
            size_t g = gof[idx[q]];
            double v = vals[q];
            acc_t *a = &acc[g];
            if (!gfill[g]) {
                touched[nt++] = g;
                *a = (acc_t){ .val = v };
            }
            cands[gstart[g] + gfill[g]++] = (cand_t){ v, idx[q] };
            a->cnt++;
            switch (op) {
            case PROMQL_AGG_SUM: pq_kahan(v, &a->sum, &a->c); break;
            case PROMQL_AGG_AVG: avg_add(a, v); break;
            case PROMQL_AGG_MIN:
                if (a->val > v || isnan(a->val)) a->val = v;
                break;
            case PROMQL_AGG_MAX:
                if (a->val < v || isnan(a->val)) a->val = v;
                break;
            case PROMQL_AGG_STDDEV:
            case PROMQL_AGG_STDVAR: {
                double d = v - a->mean;
                a->mean += d / (double)a->cnt;
                a->m2 += d * (v - a->mean);
                break;
            }
            default: break;
            }
        }

        /* k of topk/bottomk/limitk, checked as Prometheus does */
        int64_t kk = 0;
        double ratio = 0;
        if (op == PROMQL_AGG_TOPK || op == PROMQL_AGG_BOTTOMK || op == PROMQL_AGG_LIMITK) {
            double p = param[i];
            if (!(p <= 9223372036854774784.0 && p >= -9223372036854775808.0)) {
                char b[40];
                fmt_go(p, b, sizeof b);
                return pq_fail(ev, STRATA_EEXEC, "Scalar value %s overflows int64", b);
            }
            kk = (int64_t)p;
            if (kk < 1) goto clear;
        } else if (op == PROMQL_AGG_LIMIT_RATIO) {
            ratio = param[i];
            if (isnan(ratio)) return pq_fail(ev, STRATA_EEXEC, "Ratio value NaN is NaN");
            if (ratio == 0) goto clear;
            if (ratio < -1) ratio = -1;
            if (ratio > 1) ratio = 1;
        }

        for (size_t q = 0; q < nt; q++) {
            size_t g = touched[q];
            acc_t *a = &acc[g];
            cand_t *c = cands + gstart[g];
            size_t nc = gfill[g];
            if (selecting) {
                size_t take = nc;
                if (op != PROMQL_AGG_LIMIT_RATIO && (uint64_t)kk < take) take = (size_t)kk;
                if (op == PROMQL_AGG_TOPK) first_k(c, nc, take, cmp_top);
                if (op == PROMQL_AGG_BOTTOMK) first_k(c, nc, take, cmp_bottom);
                for (size_t j = 0; j < take; j++) {
                    size_t s = c[j].s;
                    if (op == PROMQL_AGG_LIMIT_RATIO) {
                        double off = roff[s];
                        if (!((ratio >= 0 && off < ratio) || (ratio < 0 && off >= 1.0 + ratio))) continue;
                    }
                    if (outof[s] == SIZE_MAX &&
                        (rc = pq_mat_add(ev, &out->m, in.s[s].labels, in.s[s].nl, &outof[s])) != 0)
                        return rc;
                    if ((rc = pq_push(ev, &out->m.s[outof[s]], t, c[j].v)) != 0) return rc;
                }
                continue;
            }
            double v;
            switch (op) {
            case PROMQL_AGG_SUM: v = a->sum + a->c; break;
            case PROMQL_AGG_AVG: v = a->incr ? a->mean + a->c : (a->sum + a->c) / (double)a->cnt; break;
            case PROMQL_AGG_MIN:
            case PROMQL_AGG_MAX: v = a->val; break;
            case PROMQL_AGG_COUNT: v = (double)a->cnt; break;
            case PROMQL_AGG_GROUP: v = 1; break;
            case PROMQL_AGG_STDVAR: v = a->m2 / (double)a->cnt; break;
            case PROMQL_AGG_STDDEV: v = sqrt(a->m2 / (double)a->cnt); break;
            case PROMQL_AGG_QUANTILE:
                for (size_t j = 0; j < nc; j++) qv[j] = c[j].v;
                v = promql_quantile(param[i], qv, nc);
                break;
            default: return pq_fail(ev, STRATA_EINVAL, "unsupported aggregation");
            }
            if (gout[g] == SIZE_MAX &&
                (rc = pq_mat_add(ev, &out->m, groups.s[g].labels, groups.s[g].nl, &gout[g])) != 0)
                return rc;
            if ((rc = pq_push(ev, &out->m.s[gout[g]], t, v)) != 0) return rc;
        }
    clear:
        for (size_t q = 0; q < nt; q++) gfill[touched[q]] = 0;
    }
    return pq_mat_finish(ev, &out->m);
}
