/*
 * encoding.h: the byte-level helpers every on-disk format of tsdb uses (the
 * WAL, the chunk codec, blocks and rollup records): little-endian integers,
 * LEB128 varints, zigzag, the bits of a double and the byte-wise XOR of two
 * doubles, a growable output buffer and a bounds-checked input reader.
 * Formats themselves are in format.h and docs/storage.md.
 */
#ifndef TSDB_ENCODING_H
#define TSDB_ENCODING_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strata_err.h"

/* CRC32C (Castagnoli) of data, continuing crc (0 to start): crc32c.c. */
uint32_t tsdb_crc32c(uint32_t crc, const void *data, size_t len);

/* ---- doubles ------------------------------------------------------------- */
static inline uint64_t enc_dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static inline double enc_bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ---- little-endian integers ----------------------------------------------- */
static inline uint64_t enc_le64(uint64_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap64(v);
#else
    return v;
#endif
}
static inline uint32_t enc_le32(uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return __builtin_bswap32(v);
#else
    return v;
#endif
}
static inline void enc_put_u32le(uint8_t *p, uint32_t v)
{
    v = enc_le32(v);
    memcpy(p, &v, 4);
}
static inline uint32_t enc_get_u32le(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return enc_le32(v);
}
static inline uint8_t *enc_put_u64le(uint8_t *p, uint64_t v)
{
    v = enc_le64(v);
    memcpy(p, &v, 8);
    return p + 8;
}
static inline uint64_t enc_get_u64le(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return enc_le64(v);
}

/* ---- varints (unsigned LEB128, at most 10 bytes) and zigzag ----------------- */
static inline size_t enc_uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v at p (room for 10 bytes); returns the end. */
static inline uint8_t *enc_put_uvarint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint from *pp (< end): 0 and *out with *pp advanced, or -1 when
 * it is truncated or does not fit in 64 bits (the 10th byte may only be 0 or 1). */
static inline int enc_get_uvarint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned shift = 0; p < end && shift <= 63; shift += 7) {
        uint8_t b = *p++;
        if (shift == 63 && b > 1) return -1;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* Zigzag on the two's complement bits, in unsigned arithmetic so that deltas
 * wrapping around the int64 limits are defined behaviour. */
static inline uint64_t enc_zigzag_u(uint64_t d) { return (d << 1) ^ (0 - (d >> 63)); }
static inline uint64_t enc_unzigzag_u(uint64_t z) { return (z >> 1) ^ (0 - (z & 1)); }
static inline uint64_t enc_zigzag(int64_t v) { return enc_zigzag_u((uint64_t)v); }
static inline int64_t enc_unzigzag(uint64_t z) { return (int64_t)enc_unzigzag_u(z); }

/* ---- byte-wise XOR of two doubles ---------------------------------------------
 * x = bits(v) ^ bits(prev) as one header byte (zero bytes leading << 4 | zero
 * bytes trailing; 0x80 when x is 0), then the bytes between, most significant
 * first.  Writes 1 to 9 bytes at p; returns the end. */
static inline uint8_t *enc_put_xor(uint8_t *p, double v, double prev)
{
    uint64_t x = enc_dbits(v) ^ enc_dbits(prev);
    if (!x) {
        *p++ = 0x80;
        return p;
    }
    int lead = 0, trail = 0;
    while (!(x >> (56 - 8 * lead) & 0xff)) lead++;
    while (!(x >> (8 * trail) & 0xff)) trail++;
    *p++ = (uint8_t)(lead << 4 | trail);
    for (int i = 7 - lead; i >= trail; i--) *p++ = (uint8_t)(x >> (8 * i));
    return p;
}

/* Reads what enc_put_xor wrote against prev: 0 and *out, or -1 when malformed. */
static inline int enc_get_xor(const uint8_t **pp, const uint8_t *end, double prev, double *out)
{
    const uint8_t *p = *pp;
    if (p >= end) return -1;
    uint8_t h = *p++;
    int lead = h >> 4, trail = h & 15;
    if (lead + trail > 8 || (lead == 8 && trail)) return -1;
    uint64_t x = 0;
    for (int i = 7 - lead; i >= trail; i--) {
        if (p >= end) return -1;
        x |= (uint64_t)*p++ << (8 * i);
    }
    *pp = p;
    *out = enc_bitsd(enc_dbits(prev) ^ x);
    return 0;
}

/* ---- a growable output buffer ------------------------------------------------ */
typedef struct enc_buf {
    uint8_t *p;
    size_t n, cap;
} enc_buf_t;

static inline int enc_buf_reserve(enc_buf_t *b, size_t more)
{
    if (b->n + more <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->n + more) nc *= 2;
    uint8_t *np = realloc(b->p, nc);
    if (!np) return STRATA_ENOMEM;
    b->p = np;
    b->cap = nc;
    return 0;
}
static inline int enc_buf_put(enc_buf_t *b, const void *p, size_t n)
{
    if (enc_buf_reserve(b, n)) return STRATA_ENOMEM;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}
static inline int enc_buf_put32(enc_buf_t *b, uint32_t v)
{
    uint8_t t[4];
    enc_put_u32le(t, v);
    return enc_buf_put(b, t, 4);
}
static inline int enc_buf_put64(enc_buf_t *b, uint64_t v)
{
    uint8_t t[8];
    enc_put_u64le(t, v);
    return enc_buf_put(b, t, 8);
}
static inline int enc_buf_uvarint(enc_buf_t *b, uint64_t v)
{
    uint8_t t[10];
    return enc_buf_put(b, t, (size_t)(enc_put_uvarint(t, v) - t));
}
static inline int enc_buf_xor(enc_buf_t *b, double v, double prev)
{
    uint8_t t[9];
    return enc_buf_put(b, t, (size_t)(enc_put_xor(t, v, prev) - t));
}

/* ---- a bounds-checked reader: a short read sets bad and yields 0 -------------- */
typedef struct enc_rd {
    const uint8_t *p, *end;
    int bad;
} enc_rd_t;

static inline uint32_t enc_rd32(enc_rd_t *r)
{
    if (r->end - r->p < 4) {
        r->bad = 1;
        return 0;
    }
    uint32_t v = enc_get_u32le(r->p);
    r->p += 4;
    return v;
}
static inline uint64_t enc_rd64(enc_rd_t *r)
{
    if (r->end - r->p < 8) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = enc_get_u64le(r->p);
    r->p += 8;
    return v;
}
static inline double enc_rdd(enc_rd_t *r) { return enc_bitsd(enc_rd64(r)); }
static inline uint64_t enc_rd_uvarint(enc_rd_t *r)
{
    uint64_t v = 0;
    if (enc_get_uvarint(&r->p, r->end, &v)) {
        r->bad = 1;
        return 0;
    }
    return v;
}
static inline double enc_rd_xor(enc_rd_t *r, double prev)
{
    double d = 0;
    if (enc_get_xor(&r->p, r->end, prev, &d)) {
        r->bad = 1;
        return 0;
    }
    return d;
}

#endif
