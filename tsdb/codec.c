/*
 * codec.c: tsdb's chunk codec (API in codec.h, byte layout in
 * docs/storage.md "Chunk encoding" and the constants in format.h).
 *
 * A chunk is a small header (magic/version, modes, n, first timestamp, time
 * span) followed by a timestamp section and a value section.
 *
 *  - Timestamps: equal deltas cost nothing beyond the header (the delta is
 *    span / (n-1)); otherwise the offsets from a grid t0 + j*step are
 *    bit-packed in blocks of 128, each block picking the cheapest of four
 *    integer block modes: frame of reference on the offsets (scrape jitter),
 *    on their deltas (irregular series), or sparse variants of both (the
 *    zero-run fast path: a mostly regular series pays one bit per sample
 *    plus its late scrapes and gaps).
 *  - Values: bit-identical values are stored once.  Otherwise, when values
 *    are decimals m / 10^e (small integers, percentages, MiB, counters with a
 *    few decimals: most GPU/CPU metrics), the integers m go through the same
 *    block packer; values that are not such decimals (NaN, stale markers,
 *    -0, +-Inf, stray long fractions) are stored raw as exceptions.  Anything
 *    else falls back to Gorilla XOR, whichever is smaller.
 *
 * Nothing is allocated: blocks are staged in 128-entry stack arrays.  The
 * decoder bounds-checks every read; bit-unpacking runs from the chunk
 * itself when 8 bytes of slack follow the block, else from a padded stack
 * copy, so the hot loop does one unaligned 64-bit load per value.
 */
#include <math.h>
#include <string.h>

#include "codec.h"
#include "encoding.h"
#include "format.h"

#define BLK TSDB_CHUNK_BLOCK_LEN

/* ---- small helpers ------------------------------------------------------ */

static inline unsigned bitwidth(uint64_t v) { return v ? 64u - (unsigned)__builtin_clzll(v) : 0u; }

static inline uint64_t mask_w(unsigned w) { return w >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << w) - 1; }

/* Powers of ten that are exact doubles: m / 10^e is then one correctly
 * rounded division, the same in the encoder's check and in the decoder. */
static const double p10[TSDB_CHUNK_DEC_MAX_EXP + 1] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* ---- writer: counts everything, stores what fits ------------------------ */

typedef struct wr {
    uint8_t *p;
    size_t len, cap;
} wr_t;

static inline void wr_byte(wr_t *w, uint8_t b)
{
    if (w->len < w->cap) w->p[w->len] = b;
    w->len++;
}

static void wr_bytes(wr_t *w, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) wr_byte(w, p[i]);
}

static void wr_varint(wr_t *w, uint64_t v)
{
    uint8_t t[10];
    wr_bytes(w, t, (size_t)(enc_put_uvarint(t, v) - t));
}

static void wr_u64(wr_t *w, uint64_t v)
{
    uint8_t t[8];
    wr_bytes(w, t, (size_t)(enc_put_u64le(t, v) - t));
}

/* LSB-first bit writer on top of wr_t: bits gather in a 64-bit register
 * and leave 32 at a time. */
typedef struct bw {
    wr_t *w;
    uint64_t acc;
    unsigned n; /* bits in acc, < 32 between calls */
} bw_t;

static inline void wr_u32(wr_t *w, uint32_t v)
{
    if (w->cap >= 4 && w->len <= w->cap - 4) {
        uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24) };
        memcpy(w->p + w->len, b, 4);
        w->len += 4;
    } else {
        for (int i = 0; i < 4; i++) wr_byte(w, (uint8_t)(v >> (8 * i)));
    }
}

static inline void bw_put32(bw_t *b, uint64_t v, unsigned w)
{
    b->acc |= v << b->n;
    b->n += w;
    if (b->n >= 32) {
        wr_u32(b->w, (uint32_t)b->acc);
        b->acc >>= 32;
        b->n -= 32;
    }
}

/* Writes the low w (0..64) bits of v. */
static inline void bw_put(bw_t *b, uint64_t v, unsigned w)
{
    if (w > 32) {
        bw_put32(b, v & 0xffffffffu, 32);
        bw_put32(b, (v >> 32) & mask_w(w - 32), w - 32);
    } else {
        bw_put32(b, v & mask_w(w), w);
    }
}

static void bw_flush(bw_t *b)
{
    for (; b->n > 0; b->n = b->n > 8 ? b->n - 8 : 0) {
        wr_byte(b->w, (uint8_t)b->acc);
        b->acc >>= 8;
    }
    b->acc = 0;
}

/* ---- reader ------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p;
    size_t len, pos;
} rd_t;

static int rd_byte(rd_t *r, unsigned *out)
{
    if (r->pos >= r->len) return STRATA_ECORRUPT;
    *out = r->p[r->pos++];
    return 0;
}

static int rd_varint(rd_t *r, uint64_t *out)
{
    const uint8_t *p = r->p + r->pos;
    if (enc_get_uvarint(&p, r->p + r->len, out)) return STRATA_ECORRUPT;
    r->pos = (size_t)(p - r->p);
    return 0;
}

static int rd_u64(rd_t *r, uint64_t *out)
{
    if (r->len - r->pos < 8) return STRATA_ECORRUPT;
    *out = enc_get_u64le(r->p + r->pos);
    r->pos += 8;
    return 0;
}

/* LSB-first bit reader with a bounds check per read (Gorilla section). */
typedef struct br {
    const uint8_t *p;
    size_t nbits, pos;
    int err;
} br_t;

static inline uint64_t br_get(br_t *r, unsigned w)
{
    if (w == 0) return 0;
    if (r->nbits - r->pos < w) {
        r->err = 1;
        r->pos = r->nbits;
        return 0;
    }
    size_t byte = r->pos >> 3;
    unsigned sh = (unsigned)(r->pos & 7);
    uint64_t v;
    if ((byte + 9) * 8 <= r->nbits) {
        v = enc_get_u64le(r->p + byte) >> sh;
        if (sh && w + sh > 64) v |= (uint64_t)r->p[byte + 8] << (64 - sh);
    } else {
        v = 0;
        unsigned got = 0;
        size_t pos = r->pos;
        while (got < w) {
            unsigned off = (unsigned)(pos & 7), take = 8 - off;
            if (take > w - got) take = w - got;
            uint64_t bits = ((uint64_t)r->p[pos >> 3] >> off) & mask_w(take);
            v |= bits << got;
            got += take;
            pos += take;
        }
    }
    r->pos += w;
    return v & mask_w(w);
}

/* ---- integer block packer ----------------------------------------------
 * A sequence x[0..m) with a predecessor `prev` is cut into blocks of BLK.
 * Each block starts with one byte: mode << 6 | width code (63 means 64). */

enum {
    BM_FOR = TSDB_CHUNK_BLOCK_FOR,
    BM_DELTA = TSDB_CHUNK_BLOCK_DELTA,
    BM_SPARSE = TSDB_CHUNK_BLOCK_SPARSE,
    BM_SPARSE_DELTA = TSDB_CHUNK_BLOCK_SPARSE_DELTA,
};

static inline unsigned wcode(unsigned w) { return w >= 63 ? 63u : w; }
static inline unsigned wfromcode(unsigned c) { return c == 63 ? 64u : c; }
static inline size_t packed_bytes(size_t cnt, unsigned w) { return (cnt * w + 7) / 8; }

static void encode_block(wr_t *w, const int64_t *x, unsigned len, int64_t *prevp)
{
    int64_t prev = *prevp;
    int64_t mn = x[0], mx = x[0];
    int64_t d0 = (int64_t)((uint64_t)x[0] - (uint64_t)prev);
    int64_t dmn = d0, dmx = d0;
    uint64_t dzzmax = 0;
    unsigned dnz = 0;
    /* Boyer-Moore majority vote: the base of the sparse mode */
    int64_t cand = x[0];
    unsigned votes = 0;
    int64_t p = prev;
    for (unsigned i = 0; i < len; i++) {
        int64_t v = x[i];
        int64_t d = (int64_t)((uint64_t)v - (uint64_t)p);
        p = v;
        if (v < mn) mn = v;
        if (v > mx) mx = v;
        if (d < dmn) dmn = d;
        if (d > dmx) dmx = d;
        if (d) {
            dnz++;
            uint64_t z = enc_zigzag(d);
            if (z > dzzmax) dzzmax = z;
        }
        if (votes == 0) {
            cand = v;
            votes = 1;
        } else if (v == cand)
            votes++;
        else
            votes--;
    }
    unsigned snz = 0;
    uint64_t szzmax = 0;
    for (unsigned i = 0; i < len; i++) {
        if (x[i] != cand) {
            snz++;
            uint64_t z = enc_zigzag((int64_t)((uint64_t)x[i] - (uint64_t)cand));
            if (z > szzmax) szzmax = z;
        }
    }

    unsigned w_for = wfromcode(wcode(bitwidth((uint64_t)mx - (uint64_t)mn)));
    unsigned w_del = wfromcode(wcode(bitwidth((uint64_t)dmx - (uint64_t)dmn)));
    unsigned w_sd = wfromcode(wcode(bitwidth(dzzmax)));
    unsigned w_sp = wfromcode(wcode(bitwidth(szzmax)));
    size_t bm = (len + 7) / 8;
    /* bases are stored relative to prev: a series far from zero (epoch
     * timestamps, byte counts) pays for its level once, not per block */
    size_t c_for = enc_uvarint_len(enc_zigzag((int64_t)((uint64_t)mn - (uint64_t)prev))) +
                   packed_bytes(len, w_for);
    size_t c_del = enc_uvarint_len(enc_zigzag(dmn)) + packed_bytes(len, w_del);
    /* sparse positions: a bitmap, or when shorter a list of pw-bit indexes */
    unsigned pw = bitwidth(len - 1);
    int sp_list = packed_bytes(snz, pw) < bm, sd_list = packed_bytes(dnz, pw) < bm;
    size_t c_sp = enc_uvarint_len(enc_zigzag((int64_t)((uint64_t)cand - (uint64_t)prev))) +
                  enc_uvarint_len(snz) + (sp_list ? packed_bytes(snz, pw) : bm) + packed_bytes(snz, w_sp);
    size_t c_sd = enc_uvarint_len(dnz) + (sd_list ? packed_bytes(dnz, pw) : bm) + packed_bytes(dnz, w_sd);

    /* ties go to the mode that decodes fastest */
    unsigned mode = BM_FOR;
    size_t best = c_for;
    if (c_del < best) {
        mode = BM_DELTA;
        best = c_del;
    }
    if (c_sp < best) {
        mode = BM_SPARSE;
        best = c_sp;
    }
    if (c_sd < best) {
        mode = BM_SPARSE_DELTA;
        best = c_sd;
    }

    bw_t b = { .w = w };
    switch (mode) {
    case BM_FOR:
        wr_byte(w, (uint8_t)(BM_FOR << 6 | wcode(w_for)));
        wr_varint(w, enc_zigzag((int64_t)((uint64_t)mn - (uint64_t)prev)));
        for (unsigned i = 0; i < len; i++) bw_put(&b, (uint64_t)x[i] - (uint64_t)mn, w_for);
        break;
    case BM_DELTA:
        wr_byte(w, (uint8_t)(BM_DELTA << 6 | wcode(w_del)));
        wr_varint(w, enc_zigzag(dmn));
        p = prev;
        for (unsigned i = 0; i < len; i++) {
            uint64_t d = (uint64_t)x[i] - (uint64_t)p;
            p = x[i];
            bw_put(&b, d - (uint64_t)dmn, w_del);
        }
        break;
    case BM_SPARSE: {
        wr_byte(w, (uint8_t)(BM_SPARSE << 6 | wcode(w_sp)));
        wr_varint(w, enc_zigzag((int64_t)((uint64_t)cand - (uint64_t)prev)));
        wr_varint(w, snz);
        for (unsigned i = 0; i < len; i++) {
            if (!sp_list)
                bw_put(&b, x[i] != cand, 1);
            else if (x[i] != cand)
                bw_put(&b, i, pw);
        }
        bw_flush(&b);
        for (unsigned i = 0; i < len; i++)
            if (x[i] != cand) bw_put(&b, enc_zigzag((int64_t)((uint64_t)x[i] - (uint64_t)cand)), w_sp);
        break;
    }
    case BM_SPARSE_DELTA:
        wr_byte(w, (uint8_t)(BM_SPARSE_DELTA << 6 | wcode(w_sd)));
        wr_varint(w, dnz);
        p = prev;
        for (unsigned i = 0; i < len; i++) {
            if (!sd_list)
                bw_put(&b, x[i] != p, 1);
            else if (x[i] != p)
                bw_put(&b, i, pw);
            p = x[i];
        }
        bw_flush(&b);
        p = prev;
        for (unsigned i = 0; i < len; i++) {
            if (x[i] != p) bw_put(&b, enc_zigzag((int64_t)((uint64_t)x[i] - (uint64_t)p)), w_sd);
            p = x[i];
        }
        break;
    }
    bw_flush(&b);
    *prevp = x[len - 1];
}

/* Unpacks cnt values of w (1..56) bits with one unaligned load each; p must
 * have packed_bytes(cnt, w) + 8 readable bytes.  Inlined per constant width
 * below, so shifts and masks become immediates and the loop unrolls. */
static inline __attribute__((always_inline)) void unpack_le56(uint64_t *out, const uint8_t *p, unsigned cnt,
                                                              unsigned w)
{
    uint64_t m = mask_w(w);
    for (unsigned i = 0; i < cnt; i++) {
        size_t bp = (size_t)i * w;
        out[i] = (enc_get_u64le(p + (bp >> 3)) >> (bp & 7)) & m;
    }
}

static void unpack(uint64_t *out, const uint8_t *p, unsigned cnt, unsigned w)
{
    switch (w) {
    case 0:
        memset(out, 0, cnt * sizeof *out);
        return;
// clang-format off
#define UNPACK_CASE(W) case W: unpack_le56(out, p, cnt, W); return;
    UNPACK_CASE(1) UNPACK_CASE(2) UNPACK_CASE(3) UNPACK_CASE(4) UNPACK_CASE(5) UNPACK_CASE(6)
    UNPACK_CASE(7) UNPACK_CASE(8) UNPACK_CASE(9) UNPACK_CASE(10) UNPACK_CASE(11) UNPACK_CASE(12)
    UNPACK_CASE(13) UNPACK_CASE(14) UNPACK_CASE(15) UNPACK_CASE(16) UNPACK_CASE(17) UNPACK_CASE(18)
    UNPACK_CASE(19) UNPACK_CASE(20) UNPACK_CASE(21) UNPACK_CASE(22) UNPACK_CASE(23) UNPACK_CASE(24)
#undef UNPACK_CASE
    default: break;
        // clang-format on
    }
    if (w <= 56) {
        unpack_le56(out, p, cnt, w);
        return;
    }
    uint64_t m = mask_w(w);
    for (unsigned i = 0; i < cnt; i++) {
        size_t bp = (size_t)i * w;
        unsigned sh = (unsigned)(bp & 7);
        uint64_t v = enc_get_u64le(p + (bp >> 3)) >> sh;
        if (sh) v |= (uint64_t)p[(bp >> 3) + 8] << (64 - sh);
        out[i] = v & m;
    }
}

/* Unpacks from the chunk when 8 bytes of slack follow, else from a padded copy. */
static int rd_unpack(rd_t *r, uint64_t *out, unsigned cnt, unsigned w)
{
    size_t nb = packed_bytes(cnt, w);
    if (r->len - r->pos < nb) return STRATA_ECORRUPT;
    const uint8_t *src = r->p + r->pos;
    if (r->len - r->pos >= nb + 8) {
        unpack(out, src, cnt, w);
    } else {
        uint8_t pad[BLK * 8 + 8];
        memcpy(pad, src, nb);
        memset(pad + nb, 0, 8);
        unpack(out, pad, cnt, w);
    }
    r->pos += nb;
    return 0;
}

/* Decodes one block of len values into x (as uint64, wrapping arithmetic). */
static int decode_block(rd_t *r, uint64_t *x, unsigned len, uint64_t *prevp)
{
    unsigned hdr;
    uint64_t base = 0;
    int rc = rd_byte(r, &hdr);
    if (rc) return rc;
    unsigned mode = hdr >> 6, w = wfromcode(hdr & 63);
    if (mode != BM_SPARSE_DELTA) {
        if ((rc = rd_varint(r, &base))) return rc;
        base = (uint64_t)enc_unzigzag(base);
    }
    uint64_t prev = *prevp;
    if (mode == BM_FOR || mode == BM_SPARSE) base += prev;
    if (mode == BM_FOR) {
        if ((rc = rd_unpack(r, x, len, w))) return rc;
        for (unsigned i = 0; i < len; i++) x[i] += base;
    } else if (mode == BM_DELTA) {
        if ((rc = rd_unpack(r, x, len, w))) return rc;
        for (unsigned i = 0; i < len; i++) {
            prev += x[i] + base;
            x[i] = prev;
        }
    } else {
        size_t bm = (len + 7) / 8;
        uint64_t k;
        if ((rc = rd_varint(r, &k))) return rc;
        if (k > len) return STRATA_ECORRUPT;
        unsigned pw = bitwidth(len - 1);
        if (packed_bytes(k, pw) < bm) {
            /* position list: strictly increasing indexes below len */
            uint64_t pos[BLK];
            if ((rc = rd_unpack(r, pos, (unsigned)k, pw))) return rc;
            for (unsigned j = 0; j < k; j++)
                if (pos[j] >= len || (j && pos[j] <= pos[j - 1])) return STRATA_ECORRUPT;
            if ((rc = rd_unpack(r, x, (unsigned)k, w))) return rc;
            /* scatter from the back: value j sits at index j <= pos[j], so
             * it is read before any write can reach its slot */
            unsigned j = (unsigned)k;
            for (unsigned i = len; i-- > 0;) {
                if (j && pos[j - 1] == i) {
                    j--;
                    x[i] = (uint64_t)enc_unzigzag(x[j]);
                } else
                    x[i] = 0;
            }
        } else {
            if (r->len - r->pos < bm) return STRATA_ECORRUPT;
            const uint8_t *bits = r->p + r->pos;
            r->pos += bm;
            unsigned cnt = 0;
            size_t i = 0;
            for (; i + 8 <= bm; i += 8) cnt += (unsigned)__builtin_popcountll(enc_get_u64le(bits + i));
            for (; i < bm; i++) cnt += (unsigned)__builtin_popcount(bits[i]);
            /* bits past len in the last bitmap byte must be clear */
            if (cnt != k || (len & 7 && bits[bm - 1] >> (len & 7))) return STRATA_ECORRUPT;
            if ((rc = rd_unpack(r, x, (unsigned)k, w))) return rc;
            /* expand in place from the back: the j-th set value never lies after slot i */
            unsigned j = (unsigned)k;
            for (unsigned i2 = len; i2-- > 0;) {
                if (bits[i2 >> 3] >> (i2 & 7) & 1)
                    x[i2] = (uint64_t)enc_unzigzag(x[--j]);
                else
                    x[i2] = 0;
            }
        }
        if (mode == BM_SPARSE) {
            for (unsigned i = 0; i < len; i++) x[i] += base;
        } else {
            for (unsigned i = 0; i < len; i++) {
                prev += x[i];
                x[i] = prev;
            }
        }
    }
    *prevp = x[len - 1];
    return 0;
}

/* ---- decimal detection ------------------------------------------------- */

/* Round to nearest (even) integer.  Adding and removing 1.5 * 2^52 does it
 * in two additions for |x| < 2^51, far cheaper than a libm call. */
static inline double round_int(double x)
{
    if (fabs(x) < 2251799813685248.0) {
        const double magic = 6755399441055744.0;
        return (x + magic) - magic;
    }
    return nearbyint(x);
}

/* True when v == (double)m / 10^e exactly, with that m in *m.  The check
 * uses the decoder's own expression, so a true answer is a guarantee. */
static inline int dec_at(double v, int e, int64_t *m)
{
    double x = v * p10[e];
    if (!(fabs(x) < 9223372036854775808.0)) return 0; /* also rejects NaN */
    int64_t mi = (int64_t)round_int(x);
    double back = e ? (double)mi / p10[e] : (double)mi;
    if (back != v || (v == 0 && signbit(v))) return 0;
    *m = mi;
    return 1;
}

/* Smallest e with v == m / 10^e, or -1.  Neighbouring values usually share
 * their exponent: try the hint first, then walk down from it. */
static int dec_exp(double v, int hint)
{
    int64_t m;
    if (!isfinite(v) || (v == 0 && signbit(v))) return -1;
    if (hint > 0 && hint <= TSDB_CHUNK_DEC_MAX_EXP && dec_at(v, hint, &m)) {
        while (hint > 0 && dec_at(v, hint - 1, &m)) hint--;
        return hint;
    }
    for (int e = 0; e <= TSDB_CHUNK_DEC_MAX_EXP; e++) {
        /* beyond 2^53 the scaled value no longer identifies m */
        if (e > 0 && fabs(v * p10[e]) > 9007199254740992.0) return -1;
        if (dec_at(v, e, &m)) return e;
    }
    return -1;
}

/* ---- Gorilla XOR (fallback) --------------------------------------------- */

static void xor_encode(wr_t *w, const tsdb_sample_t *s, size_t n)
{
    bw_t b = { .w = w };
    uint64_t prev = enc_dbits(s[0].v);
    bw_put(&b, prev, 64);
    unsigned plead = 0, ptrail = 0;
    int have = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t cur = enc_dbits(s[i].v), x = cur ^ prev;
        prev = cur;
        if (!x) {
            bw_put(&b, 0, 1);
            continue;
        }
        unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
        if (lead > 31) lead = 31;
        if (have && lead >= plead && trail >= ptrail) {
            bw_put(&b, 1, 2); /* bits "1","0" */
            bw_put(&b, x >> ptrail, 64 - plead - ptrail);
        } else {
            unsigned sig = 64 - lead - trail;
            bw_put(&b, 3, 2);
            bw_put(&b, lead, 5);
            bw_put(&b, sig & 63, 6);
            bw_put(&b, x >> trail, sig);
            plead = lead;
            ptrail = trail;
            have = 1;
        }
    }
    bw_flush(&b);
}

static int xor_decode(rd_t *r, tsdb_sample_t *out, size_t n)
{
    br_t b = { .p = r->p + r->pos, .nbits = (r->len - r->pos) * 8 };
    uint64_t prev = br_get(&b, 64);
    out[0].v = enc_bitsd(prev);
    unsigned lead = 0, trail = 0;
    int have = 0;
    for (size_t i = 1; i < n && !b.err; i++) {
        if (br_get(&b, 1)) {
            if (br_get(&b, 1)) {
                lead = (unsigned)br_get(&b, 5);
                unsigned sig = (unsigned)br_get(&b, 6);
                if (sig == 0) sig = 64;
                if (lead + sig > 64) return STRATA_ECORRUPT;
                trail = 64 - lead - sig;
                have = 1;
            } else if (!have) {
                return STRATA_ECORRUPT;
            }
            prev ^= br_get(&b, 64 - lead - trail) << trail;
        }
        out[i].v = enc_bitsd(prev);
    }
    if (b.err) return STRATA_ECORRUPT;
    r->pos += (b.pos + 7) / 8;
    return 0;
}

/* ---- encode -------------------------------------------------------------- */

size_t tsdb_chunk_max_size(size_t n)
{
    /* header <= 25; timestamps <= 10 + 8 per sample + 11 per block; values
     * never exceed the Gorilla bound (77 bits per sample + 64) because the
     * encoder compares against it whenever they could. */
    size_t blocks = (n + BLK - 1) / BLK;
    return 64 + 8 * n + 11 * blocks + (77 * n + 7) / 8 + 16;
}

/* Timestamps as offsets from the grid t0 + j*step: jitter around a fixed
 * scrape schedule costs its own range (not twice it, as deltas would), an
 * occasional late scrape is one sparse exception, and the block modes still
 * cover plain deltas (DELTA = deltas minus step) and gaps. */
static void encode_ts_grid(wr_t *w, const tsdb_sample_t *s, size_t n, uint64_t step)
{
    wr_varint(w, step);
    int64_t prev = s[0].t, x[BLK];
    for (size_t i0 = 1; i0 < n; i0 += BLK) {
        unsigned len = (unsigned)(n - i0 < BLK ? n - i0 : BLK);
        for (unsigned j = 0; j < len; j++) x[j] = (int64_t)((uint64_t)s[i0 + j].t - step * (i0 + j));
        encode_block(w, x, len, &prev);
    }
}

static void encode_ts(wr_t *w, const tsdb_sample_t *s, size_t n, int *mode)
{
    uint64_t d1 = n > 1 ? (uint64_t)s[1].t - (uint64_t)s[0].t : 0;
    size_t i = 2;
    while (i < n && (uint64_t)s[i].t - (uint64_t)s[i - 1].t == d1) i++;
    if (i >= n) {
        *mode = TSDB_CHUNK_TS_REGULAR;
        return;
    }
    *mode = TSDB_CHUNK_TS_PACKED;
    /* the step: the majority delta when there is one (a regular schedule
     * with a few late scrapes or gaps), else the mean (pure jitter) */
    uint64_t span = (uint64_t)s[n - 1].t - (uint64_t)s[0].t;
    uint64_t mean = span / (n - 1) + (span % (n - 1) >= (n - 1 + 1) / 2 ? 1 : 0);
    uint64_t cand = 0;
    size_t votes = 0, count = 0;
    for (i = 1; i < n; i++) {
        uint64_t d = (uint64_t)s[i].t - (uint64_t)s[i - 1].t;
        if (votes == 0) {
            cand = d;
            votes = 1;
        } else if (d == cand)
            votes++;
        else
            votes--;
    }
    for (i = 1; i < n; i++) count += (uint64_t)s[i].t - (uint64_t)s[i - 1].t == cand;
    uint64_t step = mean;
    if (count * 2 > n - 1 && cand != mean) {
        wr_t a = { .p = NULL }, b = { .p = NULL };
        encode_ts_grid(&a, s, n, cand);
        encode_ts_grid(&b, s, n, mean);
        if (a.len <= b.len) step = cand;
    }
    encode_ts_grid(w, s, n, step);
}

/* Value section in decimal mode with exponent e; returns exceptions written. */
static size_t encode_dec(wr_t *w, const tsdb_sample_t *s, size_t n, int e)
{
    int64_t m0 = 0, m;
    for (size_t i = 0; i < n; i++)
        if (dec_at(s[i].v, e, &m)) {
            m0 = m;
            break;
        }
    wr_byte(w, (uint8_t)e);
    wr_varint(w, enc_zigzag(m0));
    /* an exception repeats the previous m so it costs no delta */
    int64_t carry = m0, prev = m0, x[BLK];
    size_t nexc = !dec_at(s[0].v, e, &m);
    for (size_t i0 = 1; i0 < n; i0 += BLK) {
        unsigned len = (unsigned)(n - i0 < BLK ? n - i0 : BLK);
        for (unsigned j = 0; j < len; j++) {
            if (dec_at(s[i0 + j].v, e, &m))
                carry = m;
            else
                nexc++;
            x[j] = carry;
        }
        encode_block(w, x, len, &prev);
    }
    wr_varint(w, nexc);
    size_t last = 0;
    int first = 1;
    for (size_t i = 0; nexc && i < n; i++) {
        if (dec_at(s[i].v, e, &m)) continue;
        wr_varint(w, first ? i : i - last - 1);
        wr_u64(w, enc_dbits(s[i].v));
        last = i;
        first = 0;
    }
    return nexc;
}

/* Picks the exponent: raising e costs ~log2(10) bits on every changing
 * value, leaving a value as an exception costs ~10 bytes. */
static int choose_exp(const tsdb_sample_t *s, size_t n)
{
    size_t hist[TSDB_CHUNK_DEC_MAX_EXP + 1] = { 0 }, nondec = 0;
    int emax = -1;
    int hint = 0;
    for (size_t i = 0; i < n; i++) {
        int e = dec_exp(s[i].v, hint);
        if (e < 0) {
            /* mostly arbitrary doubles: stop searching, XOR will win (each
             * exception costs ~9 bytes, more than a Gorilla sample) */
            if (++nondec * 8 > (i + 1) * 7 && i >= 31) return -1;
            continue;
        }
        hint = e;
        hist[e]++;
        if (e > emax) emax = e;
    }
    if (emax < 0) return -1;
    int best = -1;
    double bestcost = 0;
    size_t below = 0;
    for (int e = 0; e <= emax; e++) {
        below += hist[e];
        if (!below) continue;
        double cost = (double)(n - below) * 80.0 + (double)n * 3.32 * e;
        if (best < 0 || cost < bestcost) {
            best = e;
            bestcost = cost;
        }
    }
    return best;
}

static void encode_values(wr_t *w, const tsdb_sample_t *s, size_t n, int *mode)
{
    uint64_t b0 = enc_dbits(s[0].v);
    size_t i = 1;
    while (i < n && enc_dbits(s[i].v) == b0) i++;
    if (i >= n) {
        *mode = TSDB_CHUNK_VAL_CONST;
        int64_t m;
        int e = dec_exp(s[0].v, 0);
        if (e >= 0 && dec_at(s[0].v, e, &m)) {
            wr_byte(w, (uint8_t)e);
            wr_varint(w, enc_zigzag(m));
        } else {
            wr_byte(w, TSDB_CHUNK_CONST_RAW);
            wr_u64(w, b0);
        }
        return;
    }
    int e = choose_exp(s, n);
    if (e >= 0) {
        size_t start = w->len;
        size_t nexc = encode_dec(w, s, n, e);
        size_t dec_bytes = w->len - start;
        if (nexc == 0 && dec_bytes <= n) {
            *mode = TSDB_CHUNK_VAL_DECIMAL;
            return;
        }
        wr_t dry = { .p = NULL, .len = 0, .cap = 0 };
        xor_encode(&dry, s, n);
        if (dec_bytes <= dry.len) {
            *mode = TSDB_CHUNK_VAL_DECIMAL;
            return;
        }
        w->len = start;
    }
    *mode = TSDB_CHUNK_VAL_XOR;
    xor_encode(w, s, n);
}

int tsdb_chunk_encode(const tsdb_sample_t *samples, size_t n, uint8_t *out, size_t cap, size_t *written)
{
    if (!samples || !written || n < 1 || n > TSDB_CHUNK_MAX_SAMPLES || (!out && cap)) return STRATA_EINVAL;
    for (size_t i = 1; i < n; i++)
        if (samples[i].t <= samples[i - 1].t) return STRATA_EINVAL;

    wr_t w = { .p = out, .len = 0, .cap = cap };
    wr_byte(&w, TSDB_CHUNK_MAGIC);
    wr_byte(&w, 0); /* modes, patched below */
    wr_varint(&w, n);
    wr_varint(&w, enc_zigzag(samples[0].t));
    wr_varint(&w, (uint64_t)samples[n - 1].t - (uint64_t)samples[0].t);
    int tmode, vmode;
    encode_ts(&w, samples, n, &tmode);
    encode_values(&w, samples, n, &vmode);
    if (w.len > cap) return STRATA_EBUFSMALL;
    out[1] = (uint8_t)(tmode | vmode << 2);
    *written = w.len;
    return 0;
}

/* ---- decode -------------------------------------------------------------- */

typedef struct hdr {
    unsigned tmode, vmode;
    size_t n;
    int64_t t0;
    uint64_t span;
} hdr_t;

static int read_header(rd_t *r, hdr_t *h)
{
    unsigned magic, modes;
    uint64_t n, t0;
    int rc;
    if ((rc = rd_byte(r, &magic))) return rc;
    if (magic != TSDB_CHUNK_MAGIC) {
        /* same magic nibble, other version: a format we do not know */
        return (magic & 0xf0) == (TSDB_CHUNK_MAGIC & 0xf0) ? STRATA_EVERSION : STRATA_ECORRUPT;
    }
    if ((rc = rd_byte(r, &modes)) || (rc = rd_varint(r, &n)) || (rc = rd_varint(r, &t0)) ||
        (rc = rd_varint(r, &h->span)))
        return rc;
    h->tmode = modes & 3;
    h->vmode = modes >> 2;
    if (h->tmode > TSDB_CHUNK_TS_PACKED || h->vmode > TSDB_CHUNK_VAL_XOR) return STRATA_ECORRUPT;
    if (n < 1 || n > TSDB_CHUNK_MAX_SAMPLES) return STRATA_ECORRUPT;
    if (n == 1 && h->span) return STRATA_ECORRUPT;
    if (n > 1 && h->span < n - 1) return STRATA_ECORRUPT;
    h->n = (size_t)n;
    h->t0 = enc_unzigzag(t0);
    /* the last timestamp must not wrap past INT64_MAX */
    if ((uint64_t)INT64_MAX - (uint64_t)h->t0 < h->span) return STRATA_ECORRUPT;
    return 0;
}

int tsdb_chunk_info(const uint8_t *buf, size_t len, size_t *n, int64_t *mint, int64_t *maxt)
{
    if (!buf) return STRATA_EINVAL;
    rd_t r = { .p = buf, .len = len };
    hdr_t h;
    int rc = read_header(&r, &h);
    if (rc) return rc;
    if (n) *n = h.n;
    if (mint) *mint = h.t0;
    if (maxt) *maxt = (int64_t)((uint64_t)h.t0 + h.span);
    return 0;
}

static int decode_ts(rd_t *r, const hdr_t *h, tsdb_sample_t *out)
{
    size_t n = h->n;
    uint64_t t = (uint64_t)h->t0;
    out[0].t = h->t0;
    if (h->tmode == TSDB_CHUNK_TS_REGULAR) {
        if (n == 1) return 0;
        if (h->span % (n - 1)) return STRATA_ECORRUPT;
        uint64_t d = h->span / (n - 1);
        for (size_t i = 1; i < n; i++) out[i].t = (int64_t)(t + d * i);
        return 0;
    }
    if (n < 3) return STRATA_ECORRUPT;
    uint64_t step, rem = h->span;
    int rc = rd_varint(r, &step);
    if (rc) return rc;
    uint64_t prev = t, x[BLK];
    int64_t last = h->t0;
    int bad = 0;
    for (size_t i0 = 1; i0 < n; i0 += BLK) {
        unsigned len = (unsigned)(n - i0 < BLK ? n - i0 : BLK);
        if ((rc = decode_block(r, x, len, &prev))) return rc;
        /* strictly ascending from t0 and ending at t0 + span (checked
         * below): exactly what a valid chunk holds */
        uint64_t g = step * i0;
        for (unsigned j = 0; j < len; j++, g += step) {
            int64_t tj = (int64_t)(x[j] + g);
            bad |= tj <= last;
            last = tj;
            out[i0 + j].t = tj;
        }
        if (bad) return STRATA_ECORRUPT;
    }
    if ((uint64_t)last != t + rem) return STRATA_ECORRUPT;
    return 0;
}

static int decode_dec(rd_t *r, size_t n, tsdb_sample_t *out)
{
    unsigned e;
    uint64_t m0, cnt;
    int rc;
    if ((rc = rd_byte(r, &e)) || (rc = rd_varint(r, &m0))) return rc;
    if (e > TSDB_CHUNK_DEC_MAX_EXP) return STRATA_ECORRUPT;
    uint64_t prev = (uint64_t)enc_unzigzag(m0), x[BLK];
    double div = p10[e];
    out[0].v = e ? (double)(int64_t)prev / div : (double)(int64_t)prev;
    for (size_t i0 = 1; i0 < n; i0 += BLK) {
        unsigned len = (unsigned)(n - i0 < BLK ? n - i0 : BLK);
        if ((rc = decode_block(r, x, len, &prev))) return rc;
        tsdb_sample_t *o = out + i0;
        if (e == 0) {
            for (unsigned j = 0; j < len; j++) o[j].v = (double)(int64_t)x[j];
        } else {
            for (unsigned j = 0; j < len; j++) o[j].v = (double)(int64_t)x[j] / div;
        }
    }
    if ((rc = rd_varint(r, &cnt))) return rc;
    if (cnt > n) return STRATA_ECORRUPT;
    size_t pos = 0;
    for (uint64_t k = 0; k < cnt; k++) {
        uint64_t gap, bits;
        if ((rc = rd_varint(r, &gap))) return rc;
        if (gap >= n) return STRATA_ECORRUPT;
        pos = k ? pos + 1 + (size_t)gap : (size_t)gap;
        if (pos >= n) return STRATA_ECORRUPT;
        if ((rc = rd_u64(r, &bits))) return rc;
        out[pos].v = enc_bitsd(bits);
    }
    return 0;
}

int tsdb_chunk_decode(const uint8_t *buf, size_t len, tsdb_sample_t *out, size_t cap, size_t *n)
{
    if (!buf || !n || (!out && cap)) return STRATA_EINVAL;
    rd_t r = { .p = buf, .len = len };
    hdr_t h;
    int rc = read_header(&r, &h);
    if (rc) return rc;
    if (h.n > cap) return STRATA_EBUFSMALL;
    if ((rc = decode_ts(&r, &h, out))) return rc;
    switch (h.vmode) {
    case TSDB_CHUNK_VAL_CONST: {
        unsigned e;
        double v;
        if ((rc = rd_byte(&r, &e))) return rc;
        if (e == TSDB_CHUNK_CONST_RAW) {
            uint64_t bits;
            if ((rc = rd_u64(&r, &bits))) return rc;
            v = enc_bitsd(bits);
        } else {
            uint64_t m;
            if (e > TSDB_CHUNK_DEC_MAX_EXP) return STRATA_ECORRUPT;
            if ((rc = rd_varint(&r, &m))) return rc;
            v = e ? (double)enc_unzigzag(m) / p10[e] : (double)enc_unzigzag(m);
        }
        for (size_t i = 0; i < h.n; i++) out[i].v = v;
        break;
    }
    case TSDB_CHUNK_VAL_DECIMAL:
        if ((rc = decode_dec(&r, h.n, out))) return rc;
        break;
    default:
        if ((rc = xor_decode(&r, out, h.n))) return rc;
        break;
    }
    /* a chunk is exactly its bytes: trailing garbage means a wrong length */
    if (r.pos != len) return STRATA_ECORRUPT;
    *n = h.n;
    return 0;
}
