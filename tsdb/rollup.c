/*
 * rollup.c: rollups: the summary of a series' samples per 5m or 1h interval
 * (computing, joining two parts of one interval) and the rollup record
 * codec of block files (format.h, "Rollup records").
 */
#include "block_internal.h"
#include "format.h"

#include <stdlib.h>
#include <string.h>

/* ---- rollups ------------------------------------------------------------------- */

int tsdb_rollup_stored(const tsdb_sample_t *s, size_t n, int64_t res)
{
    int64_t min = res == TSDB_ROLLUP_5M ? TSDB_ROLLUP_5M_MIN_SPAN_MS : TSDB_ROLLUP_1H_MIN_SPAN_MS;
    /* (as unsigned: the span of timestamps far apart does not overflow) */
    return n && (uint64_t)s[n - 1].t - (uint64_t)s[0].t >= (uint64_t)min;
}

/* A run of zeros between two nonzero samples, len ms long; zero_run: the
 * store's minimum (the rollup_zero_run_ms option). */
static void rollup_inner_zero_run(tsdb_rollup_point_t *p, int64_t len, int64_t zero_run)
{
    if (len > p->zero_inner_max) p->zero_inner_max = len;
    if (len > zero_run) p->zero_inner_long += len - zero_run;
}

/* Adds one non-stale sample to the point of its interval. */
static void rollup_add(tsdb_rollup_point_t *p, int64_t t, double v, int have_prev, double prev,
                       int64_t zero_run)
{
    if (p->count == 0) {
        p->min = p->max = p->first = v;
        p->first_t = t;
        p->zero_lead_end = v != 0 ? t : INT64_MAX;
        p->zero_trail_start = v == 0 ? t : INT64_MAX;
        if (have_prev) p->increase += tsdb_counter_delta(prev, v);
    } else {
        int64_t gap = t - p->last_t;
        if (gap > p->gap_max) p->gap_max = gap;
        p->hold_sum += p->last * (double)gap;
        p->last_rise = tsdb_counter_delta(p->last, v);
        p->increase += p->last_rise;
        p->inner_increase += p->last_rise;
        if (v < p->min) p->min = v;
        if (v > p->max) p->max = v;
        if (v != 0 && p->zero_trail_start != INT64_MAX) {
            /* a run of zeros ends here: the leading one, or one inside */
            if (p->zero_lead_end == INT64_MAX)
                p->zero_lead_end = t;
            else
                rollup_inner_zero_run(p, t - p->zero_trail_start, zero_run);
            p->zero_trail_start = INT64_MAX;
        } else if (v == 0 && p->zero_trail_start == INT64_MAX) {
            p->zero_trail_start = t;
        }
    }
    p->count++;
    p->sum += v;
    p->last = v;
    p->last_t = t;
}

int tsdb_rollups_compute(const tsdb_sample_t *s, size_t n, int64_t res, int64_t zero_run,
                         tsdb_rollup_point_t **out, size_t *nout, size_t *cap)
{
    int have_prev = 0;
    double prev = 0;
    tsdb_rollup_point_t *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        /* interval (t - res, t]: a sample on a multiple of res ends its interval */
        /* the smallest multiple of res >= t; no t - 1, which overflows at INT64_MIN */
        int64_t end = (s[i].t / res + (s[i].t % res > 0)) * res;
        if (!cur || cur->t != end) {
            if (*nout == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                tsdb_rollup_point_t *np = realloc(*out, nc * sizeof *np);
                if (!np) return STRATA_ENOMEM;
                *out = np;
                *cap = nc;
            }
            cur = &(*out)[(*nout)++];
            *cur = (tsdb_rollup_point_t){ .t = end };
        }
        if (tsdb_is_stale(s[i].v)) {
            cur->stale++;
            cur->stale_t = s[i].t;
            continue;
        }
        rollup_add(cur, s[i].t, s[i].v, have_prev, prev, zero_run);
        prev = s[i].v;
        have_prev = 1;
    }
    return 0;
}

void tsdb_rollup_join(tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q, int64_t zero_run)
{
    p->stale += q->stale;
    if (q->stale) p->stale_t = q->stale_t;
    if (!q->count) return;
    if (!p->count) {
        uint32_t stale = p->stale;
        int64_t stale_t = p->stale_t;
        *p = *q;
        p->stale = stale;
        p->stale_t = stale_t;
        return;
    }
    int64_t gap = q->first_t - p->last_t;
    if (gap > p->gap_max) p->gap_max = gap;
    if (q->gap_max > p->gap_max) p->gap_max = q->gap_max;
    p->hold_sum += p->last * (double)gap + q->hold_sum;
    p->last_rise = q->count > 1 ? q->last_rise : tsdb_counter_delta(p->last, q->last);
    p->inner_increase += tsdb_counter_delta(p->last, q->first) + q->inner_increase;
    /* runs of zeros that cross the join */
    int p_all_zero = p->zero_lead_end == INT64_MAX, q_all_zero = q->zero_lead_end == INT64_MAX;
    if (q->zero_inner_max > p->zero_inner_max) p->zero_inner_max = q->zero_inner_max;
    p->zero_inner_long += q->zero_inner_long;
    if (p_all_zero) {
        p->zero_lead_end = q->zero_lead_end;
        p->zero_trail_start = q_all_zero ? p->first_t : q->zero_trail_start;
    } else {
        /* the run of zeros at the join: p's trailing one, or one q starts with */
        int64_t run = p->zero_trail_start != INT64_MAX ? p->zero_trail_start
                      : q->first == 0                  ? q->first_t
                                                       : INT64_MAX;
        if (run != INT64_MAX && !q_all_zero) rollup_inner_zero_run(p, q->zero_lead_end - run, zero_run);
        p->zero_trail_start = q_all_zero ? run : q->zero_trail_start;
    }
    p->count += q->count;
    p->sum += q->sum;
    if (q->min < p->min) p->min = q->min;
    if (q->max > p->max) p->max = q->max;
    p->last = q->last;
    p->last_t = q->last_t;
    p->increase += q->increase;
}

/* ---- rollup records (version 3): compact -------------------------------------- */
/* A series' points are written relative to the previous point: the time as
 * intervals since it, sample times as offsets inside the interval, counts as
 * varints, each double as its XOR with the previous point's (one header byte:
 * zero bytes leading << 4 | zero bytes trailing, then the bytes between), so
 * steady series cost a few bytes a point before zstd instead of 76 or 152. */

/* Times relative to the interval's start, in two's-complement arithmetic: a
 * point near INT64_MIN (an ancient sample) has a start below it, and the
 * offsets still round-trip exactly, where signed arithmetic would overflow. */
static int64_t wrap_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }

/* An in-interval time: 0 for INT64_MAX ("none"), else 1 + its offset. */
static uint64_t enc_opt_time(int64_t v, int64_t base)
{
    return v == INT64_MAX ? 0 : enc_zigzag(wrap_sub(v, base)) + 1;
}
static int64_t dec_opt_time(uint64_t u, int64_t base)
{
    return u ? wrap_add(base, enc_unzigzag(u - 1)) : INT64_MAX;
}

static int put_rollup_compact(enc_buf_t *b, const tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q,
                              int64_t res, int hold)
{
    int64_t base = wrap_sub(p->t, res); /* the interval is (base, t] */
    int rc = enc_buf_uvarint(b, enc_zigzag((p->t - q->t) / res)) | enc_buf_uvarint(b, p->count);
    if (hold)
        rc |= enc_buf_uvarint(b, p->stale) |
              enc_buf_uvarint(b, p->stale ? enc_zigzag(wrap_sub(p->stale_t, base)) : 0);
    if (!p->count) return rc ? STRATA_ENOMEM : 0;
    rc |= enc_buf_uvarint(b, enc_zigzag(wrap_sub(p->first_t, base))) |
          enc_buf_uvarint(b, enc_zigzag(p->t - p->last_t)) | enc_buf_xor(b, p->sum, q->sum) |
          enc_buf_xor(b, p->min, q->min) | enc_buf_xor(b, p->max, q->max) | enc_buf_xor(b, p->last, q->last) |
          enc_buf_xor(b, p->first, q->first) | enc_buf_xor(b, p->increase, q->increase);
    if (hold)
        rc |= enc_buf_uvarint(b, enc_zigzag(p->gap_max)) | enc_buf_xor(b, p->hold_sum, q->hold_sum) |
              enc_buf_xor(b, p->last_rise, q->last_rise) |
              enc_buf_xor(b, p->inner_increase, q->inner_increase) |
              enc_buf_uvarint(b, enc_opt_time(p->zero_lead_end, base)) |
              enc_buf_uvarint(b, enc_opt_time(p->zero_trail_start, base)) |
              enc_buf_uvarint(b, enc_zigzag(p->zero_inner_max)) |
              enc_buf_uvarint(b, enc_zigzag(p->zero_inner_long));
    return rc ? STRATA_ENOMEM : 0;
}

/* every field of a point is set below, one by one */
_Static_assert(sizeof(tsdb_rollup_point_t) == 160, "a new rollup field needs clearing in get_rollup_compact");

/* first: q is the zero point (any time may follow); later points ascend. */
static void get_rollup_compact(enc_rd_t *r, tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q, int64_t res,
                               int hold, int first)
{
    /* field by field, not memset: a 160-byte memset per point (rep stos) was a
     * third of decoding a 30-day range's 5m points */
    p->t = 0;
    p->count = 0;
    p->sum = p->min = p->max = p->last = p->first = p->increase = 0;
    p->last_t = p->first_t = 0;
    p->stale = 0;
    p->stale_t = p->gap_max = p->zero_lead_end = p->zero_trail_start = 0;
    p->zero_inner_max = p->zero_inner_long = 0;
    p->hold_sum = p->last_rise = p->inner_increase = 0;
    int64_t k = enc_unzigzag(enc_rd_uvarint(r)), lim = INT64_MAX / res / 4;
    /* times stay within +-INT64_MAX / 2: |k * res| <= INT64_MAX / 4 once k is within lim, and
     * k * res > X is k > X / res for X >= 0 without a division per point */
    if ((!first && k <= 0) || k > lim || k < -lim || (q->t > 0 && k * res > INT64_MAX / 2 - q->t)) {
        r->bad = 1;
        return;
    }
    p->t = q->t + k * res;
    int64_t base = wrap_sub(p->t, res);
    uint64_t count = enc_rd_uvarint(r);
    if (count > UINT32_MAX) {
        r->bad = 1;
        return;
    }
    p->count = (uint32_t)count;
    if (hold) {
        uint64_t stale = enc_rd_uvarint(r), st = enc_rd_uvarint(r);
        if (stale > UINT32_MAX) {
            r->bad = 1;
            return;
        }
        p->stale = (uint32_t)stale;
        p->stale_t = stale ? wrap_add(base, enc_unzigzag(st)) : 0;
    }
    if (!p->count) return;
    p->first_t = wrap_add(base, enc_unzigzag(enc_rd_uvarint(r)));
    p->last_t = p->t - enc_unzigzag(enc_rd_uvarint(r));
    p->sum = enc_rd_xor(r, q->sum);
    p->min = enc_rd_xor(r, q->min);
    p->max = enc_rd_xor(r, q->max);
    p->last = enc_rd_xor(r, q->last);
    p->first = enc_rd_xor(r, q->first);
    p->increase = enc_rd_xor(r, q->increase);
    if (!hold) return;
    p->gap_max = enc_unzigzag(enc_rd_uvarint(r));
    p->hold_sum = enc_rd_xor(r, q->hold_sum);
    p->last_rise = enc_rd_xor(r, q->last_rise);
    p->inner_increase = enc_rd_xor(r, q->inner_increase);
    p->zero_lead_end = dec_opt_time(enc_rd_uvarint(r), base);
    p->zero_trail_start = dec_opt_time(enc_rd_uvarint(r), base);
    p->zero_inner_max = enc_unzigzag(enc_rd_uvarint(r));
    p->zero_inner_long = enc_unzigzag(enc_rd_uvarint(r));
}

int tsdb_rollups_encode(enc_buf_t *b, const tsdb_rollup_point_t *p, size_t n, int64_t res, int hold)
{
    /* u32 length, then the points, each against the one before (the first
     * against a zero point at time 0) */
    size_t start = b->n;
    int rc = enc_buf_put32(b, 0);
    tsdb_rollup_point_t zero = { 0 };
    for (size_t i = 0; !rc && i < n; i++) rc = put_rollup_compact(b, &p[i], i ? &p[i - 1] : &zero, res, hold);
    if (rc) return rc;
    if (b->n - start - 4 > UINT32_MAX) return STRATA_ELIMIT;
    enc_put_u32le(b->p + start, (uint32_t)(b->n - start - 4));
    return 0;
}

int tsdb_rollups_decode(const uint8_t *data, uint32_t len, uint32_t cnt, int64_t res, int hold,
                        tsdb_rollup_point_t *out)
{
    enc_rd_t r = { data, data + len, 0 };
    tsdb_rollup_point_t zero = { 0 };
    const tsdb_rollup_point_t *prev = &zero;
    for (uint32_t i = 0; i < cnt && !r.bad; i++) {
        get_rollup_compact(&r, &out[i], prev, res, hold, i == 0);
        prev = &out[i];
    }
    return r.bad || r.p != r.end ? STRATA_ECORRUPT : 0;
}

void tsdb_rollups_decode_fixed(const uint8_t *data, uint32_t cnt, int hold, tsdb_rollup_point_t *out)
{
    size_t rsize = hold ? TSDB_ROLLUP_RECORD_SIZE_V2 : TSDB_ROLLUP_RECORD_SIZE_V1;
    enc_rd_t r = { data, data + (size_t)cnt * rsize, 0 };
    for (uint32_t i = 0; i < cnt; i++) {
        tsdb_rollup_point_t *p = &out[i];
        memset(p, 0, sizeof *p);
        p->t = (int64_t)enc_rd64(&r);
        p->count = enc_rd32(&r);
        p->sum = enc_rdd(&r);
        p->min = enc_rdd(&r);
        p->max = enc_rdd(&r);
        p->last = enc_rdd(&r);
        p->last_t = (int64_t)enc_rd64(&r);
        p->first = enc_rdd(&r);
        p->first_t = (int64_t)enc_rd64(&r);
        p->increase = enc_rdd(&r);
        if (!hold) continue; /* (callers recompute v1 blocks' 1h rollups: querier.c) */
        p->stale = enc_rd32(&r);
        p->stale_t = (int64_t)enc_rd64(&r);
        p->gap_max = (int64_t)enc_rd64(&r);
        p->hold_sum = enc_rdd(&r);
        p->last_rise = enc_rdd(&r);
        p->inner_increase = enc_rdd(&r);
        p->zero_lead_end = (int64_t)enc_rd64(&r);
        p->zero_trail_start = (int64_t)enc_rd64(&r);
        p->zero_inner_max = (int64_t)enc_rd64(&r);
        p->zero_inner_long = (int64_t)enc_rd64(&r);
    }
}
