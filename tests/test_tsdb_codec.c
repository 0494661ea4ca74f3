/*
 * test_tsdb_codec.c: the chunk codec (tsdb/codec.c).
 *
 * Exact sizes and modes for inputs whose encoding is fully determined,
 * bit-exact round trips over many random chunks (random bit patterns,
 * decimals, small integers, mixes, specials) and timestamp shapes (regular,
 * jittered, gaps, negative, extreme), argument and buffer-size errors, and
 * truncated / bit-flipped chunks that must fail cleanly without touching
 * memory outside the buffers (guard samples here, ASan under `make check`).
 */
#include <float.h>
#include <math.h>

#include "test_helpers.h"
#include "codec.h"
#include "format.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64: deterministic, so a failure reproduces */
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n) { return rnd() % n; }

#define GUARD      4
#define GUARD_BITS UINT64_C(0x5a5a5a5a5a5a5a5a)

/* Encodes, checks the size bound, decodes, and compares every bit; returns
 * the encoded size and stores the mode byte. */
static size_t roundtrip(const tsdb_sample_t *s, size_t n, unsigned *modes)
{
    size_t cap = tsdb_chunk_max_size(n);
    uint8_t *buf = malloc(cap);
    tsdb_sample_t *out = malloc((n + GUARD) * sizeof *out);
    assert_non_null(buf);
    assert_non_null(out);
    size_t len = 0, got = 0;
    assert_ok(tsdb_chunk_encode(s, n, buf, cap, &len));
    assert_true(len <= cap);
    assert_int_equal(buf[0], TSDB_CHUNK_MAGIC);
    if (modes) *modes = buf[1];
    for (size_t i = n; i < n + GUARD; i++) {
        out[i].t = (int64_t)GUARD_BITS;
        out[i].v = test_bits_double(GUARD_BITS);
    }
    assert_ok(tsdb_chunk_decode(buf, len, out, n, &got));
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++) {
        if (out[i].t != s[i].t || test_double_bits(out[i].v) != test_double_bits(s[i].v))
            fail_msg("sample %zu of %zu: got (%lld, %016llx) want (%lld, %016llx)", i, n, (long long)out[i].t,
                     (unsigned long long)test_double_bits(out[i].v), (long long)s[i].t,
                     (unsigned long long)test_double_bits(s[i].v));
    }
    for (size_t i = n; i < n + GUARD; i++) {
        assert_int_equal((uint64_t)out[i].t, GUARD_BITS);
        assert_int_equal(test_double_bits(out[i].v), GUARD_BITS);
    }
    size_t in = 0;
    int64_t mint = 0, maxt = 0;
    assert_ok(tsdb_chunk_info(buf, len, &in, &mint, &maxt));
    assert_int_equal(in, n);
    assert_int_equal(mint, s[0].t);
    assert_int_equal(maxt, s[n - 1].t);
    free(buf);
    free(out);
    return len;
}

static unsigned vmode(unsigned modes) { return modes >> 2; }
static unsigned tmode(unsigned modes) { return modes & 3; }

static void fill_regular(tsdb_sample_t *s, size_t n, int64_t t0, int64_t step)
{
    for (size_t i = 0; i < n; i++) s[i].t = t0 + (int64_t)i * step;
}

/* ---- exact encodings ---------------------------------------------------- */

static void test_constant_regular_is_tiny(void **state)
{
    (void)state;
    tsdb_sample_t s[120];
    fill_regular(s, 120, 1700000000000, 15000);
    for (int i = 0; i < 120; i++) s[i].v = 1.0;
    unsigned modes;
    /* magic, modes, n, zigzag(t0) = 3.4e12 (6 bytes), span 1785000 (3 bytes),
     * value: e = 0, zigzag(1) = 2 */
    assert_int_equal(roundtrip(s, 120, &modes), 1 + 1 + 1 + 6 + 3 + 2);
    assert_int_equal(tmode(modes), TSDB_CHUNK_TS_REGULAR);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_CONST);

    /* a constant that is not a short decimal is stored raw once */
    for (int i = 0; i < 120; i++) s[i].v = M_PI;
    assert_int_equal(roundtrip(s, 120, &modes), 12 + 1 + 8);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_CONST);
    /* 0.5 is m=5, e=1 */
    for (int i = 0; i < 120; i++) s[i].v = 0.5;
    assert_int_equal(roundtrip(s, 120, &modes), 12 + 1 + 1);
}

static void test_small_ints_for_width(void **state)
{
    (void)state;
    tsdb_sample_t s[120];
    fill_regular(s, 120, 1700000000000, 15000);
    rng_state = 7;
    s[0].v = 50;
    for (int i = 1; i < 120; i++) s[i].v = (double)rnd_below(101);
    s[1].v = 0;
    s[2].v = 100;
    unsigned modes;
    /* header 12; e, zigzag(50) = 100 (1 byte); one block: header byte,
     * zigzag(min 0), 119 x 7 bits = 105 bytes; exception count 0 */
    assert_int_equal(roundtrip(s, 120, &modes), 12 + 1 + 1 + 1 + 1 + 105 + 1);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_DECIMAL);
    assert_int_equal(tmode(modes), TSDB_CHUNK_TS_REGULAR);
}

static void test_counter_constant_rate(void **state)
{
    (void)state;
    /* a counter growing by exactly 1.5 per scrape: e = 1, m steps of 15,
     * DELTA blocks with width 0 cost a header byte and the min delta */
    tsdb_sample_t s[1024];
    fill_regular(s, 1024, 0, 1000);
    for (int i = 0; i < 1024; i++) s[i].v = 1000.0 + 1.5 * i;
    unsigned modes;
    /* header: 1+1+2 (n=1024)+1 (t0=0)+3 (span 1023000); value: e, zz(10000)=20000 (3 bytes),
     * 8 blocks (1023 values) x (1 + zz(15)=30 1 byte), exceptions 0 */
    assert_int_equal(roundtrip(s, 1024, &modes), 8 + 1 + 3 + 8 * 2 + 1);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_DECIMAL);
}

static void test_stale_marker_is_an_exception(void **state)
{
    (void)state;
    tsdb_sample_t s[120];
    fill_regular(s, 120, 1700000000000, 15000);
    for (int i = 0; i < 120; i++) s[i].v = 42;
    s[119].v = test_bits_double(TSDB_STALE_NAN_BITS);
    unsigned modes;
    /* header 12; e, zz(42); one DELTA block of width 0 (2 bytes); one
     * exception: count, position 119 (1 byte), 8 raw bytes */
    assert_int_equal(roundtrip(s, 120, &modes), 12 + 2 + 2 + 1 + 1 + 8);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_DECIMAL);
}

static void test_sparse_bitmap_and_list(void **state)
{
    (void)state;
    tsdb_sample_t s[129];
    fill_regular(s, 129, 0, 1000);
    /* header: magic, modes, n = 129 (2 bytes), t0 = 0, span 128000 (3 bytes) = 8 */
    /* 21 spikes of 5 over zeros: SPARSE around 0 with a 16-byte bitmap (21 x 7-bit
     * positions would take 19), 21 x 4-bit zigzag(5) = 11 bytes: block = 1 + base 1 +
     * count 1 + 16 + 11 = 30; values = e + zz(m0) + block + exception count = 33 */
    for (int i = 0; i < 129; i++) s[i].v = i && i % 6 == 0 ? 5 : 0;
    unsigned modes;
    assert_int_equal(roundtrip(s, 129, &modes), 8 + 1 + 1 + 30 + 1);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_DECIMAL);
    /* 3 spikes: the positions as a list, 3 x 7 bits = 3 bytes, values 2 bytes:
     * block = 1 + 1 + 1 + 3 + 2 = 8 */
    for (int i = 0; i < 129; i++) s[i].v = i && i % 40 == 0 ? 5 : 0;
    assert_int_equal(roundtrip(s, 129, &modes), 8 + 1 + 1 + 8 + 1);
}

static void test_random_bits_fall_back_to_xor(void **state)
{
    (void)state;
    tsdb_sample_t s[200];
    fill_regular(s, 200, 1, 1);
    rng_state = 11;
    for (int i = 0; i < 200; i++) {
        uint64_t b;
        do b = rnd();
        while (isnan(test_bits_double(b)));
        s[i].v = test_bits_double(b | UINT64_C(0x8000000000000001));
    }
    unsigned modes;
    roundtrip(s, 200, &modes);
    assert_int_equal(vmode(modes), TSDB_CHUNK_VAL_XOR);
}

static void test_jittered_timestamps_are_cheap(void **state)
{
    (void)state;
    enum { N = 1024 };
    static tsdb_sample_t s[N];
    /* the trace's shape: 100 ms with an occasional 101/99 pair */
    int64_t t = 1795772954739;
    for (int i = 0; i < N; i++) {
        s[i].t = t;
        s[i].v = 0;
        t += (i % 70 == 5) ? 101 : (i % 70 == 6) ? 99 : 100;
    }
    s[1].v = 1; /* not constant, but the value section stays tiny */
    unsigned modes;
    size_t len = roundtrip(s, N, &modes);
    assert_int_equal(tmode(modes), TSDB_CHUNK_TS_PACKED);
    /* sparse blocks: a 16-byte bitmap per 128 deltas plus a few bits */
    assert_true(len < N / 8 + 8 * 8 + 40);

    /* 15 s +- 5 ms: frame of reference over deltas in [-10, 10], 5 bits each */
    rng_state = 3;
    t = 1700000000000;
    for (int i = 0; i < N; i++) {
        s[i].t = t + (int64_t)rnd_below(11) - 5;
        s[i].v = 1;
        t += 15000;
    }
    len = roundtrip(s, N, &modes);
    /* header 13, first delta 2, 8 blocks of 1 + 3 (min delta) + 5 bits each, value 2 */
    assert_true(len <= 13 + 2 + 8 * 4 + (N * 5 + 7) / 8 + 2);
}

/* ---- properties --------------------------------------------------------- */

static double gen_value(int kind, size_t i, double prev)
{
    switch (kind) {
    case 0: { /* random bit patterns, NaN payloads included */ return test_bits_double(rnd());
    }
    case 1: /* decimals with 0..4 digits */
        return (double)((int64_t)rnd_below(2000001) - 1000000) / pow(10, (double)rnd_below(5));
    case 2: /* small integers */ return (double)rnd_below(101);
    case 3: /* counters with two decimals */ return prev + (double)rnd_below(500) / 100.0;
    case 4: /* steps */ return rnd_below(20) ? prev : (double)(rnd_below(1u << 20) * 1048576);
    case 5: { /* a mix of everything */
        static const uint64_t specials[] = {
            UINT64_C(0x7ff0000000000002), UINT64_C(0x7ff8000000000000), UINT64_C(0xfff8000000000001),
            UINT64_C(0x7ff0000000000000), UINT64_C(0xfff0000000000000), UINT64_C(0x8000000000000000),
            UINT64_C(0x0000000000000001), UINT64_C(0x000fffffffffffff), UINT64_C(0x7fefffffffffffff),
            UINT64_C(0x0010000000000000), UINT64_C(0x7ff4000000000000),
        };
        int c = (int)rnd_below(5);
        if (c == 0) return test_bits_double(specials[rnd_below(sizeof specials / sizeof *specials)]);
        if (c == 1) return test_bits_double(rnd());
        return gen_value(1 + (int)rnd_below(4), i, prev);
    }
    case 8: /* idle with frequent spikes: sparse blocks with a bitmap */
        return rnd_below(4) ? 0 : (double)rnd_below(100);
    case 6: /* mostly integers with a rare long fraction */
        return rnd_below(50) ? (double)rnd_below(1000) : (double)rnd_below(1000) + 1.0 / 3.0;
    default: /* integers near 2^53 and beyond */
        return (double)((int64_t)(UINT64_C(1) << 53) + (int64_t)rnd_below(64) - 32) *
               (rnd_below(2) ? 1.0 : -1.0) * (rnd_below(8) ? 1.0 : 1024.0);
    }
}

static void gen_times(tsdb_sample_t *s, size_t n, int kind)
{
    int64_t t;
    switch (kind) {
    case 0: fill_regular(s, n, 1700000000000, 15000); break;
    case 1: /* jitter */
        t = 1700000000000;
        for (size_t i = 0; i < n; i++) {
            s[i].t = t + (int64_t)rnd_below(7);
            t += 15000;
        }
        break;
    case 2: /* irregular with gaps */
        t = 1700000000000;
        for (size_t i = 0; i < n; i++) {
            s[i].t = t;
            t += rnd_below(10) ? 1 + (int64_t)rnd_below(30000) : (int64_t)rnd_below(UINT64_C(1) << 40) + 1;
        }
        break;
    case 3: /* negative, crossing zero */
        fill_regular(s, n, -(int64_t)n * 500, 1000);
        if (n > 3) s[n / 2].t += 1;
        break;
    default: /* extremes: the whole int64 range */
        s[0].t = INT64_MIN;
        for (size_t i = 1; i < n; i++) s[i].t = INT64_MIN + (int64_t)i * 3;
        if (n > 1) s[n - 1].t = INT64_MAX;
        break;
    }
}

static void test_property_random_chunks(void **state)
{
    (void)state;
    tsdb_sample_t *s = malloc(4096 * sizeof *s);
    assert_non_null(s);
    rng_state = 12345;
    for (int iter = 0; iter < 1500; iter++) {
        size_t n = 1 + (size_t)rnd_below(iter % 10 == 0 ? 4096 : 300);
        gen_times(s, n, (int)rnd_below(5));
        int kind = (int)rnd_below(9);
        double prev = (double)rnd_below(1000);
        for (size_t i = 0; i < n; i++) prev = s[i].v = gen_value(kind, i, prev);
        roundtrip(s, n, NULL);
    }
    free(s);
}

static void test_adversarial_values(void **state)
{
    (void)state;
    static const uint64_t sp[] = {
        UINT64_C(0x7ff0000000000002), /* stale marker */
        UINT64_C(0x7ff8000000000000), UINT64_C(0x7ff8000000000001), UINT64_C(0xfff8000000000000),
        UINT64_C(0x7ff0000000000001), UINT64_C(0x7fffffffffffffff), UINT64_C(0xffffffffffffffff),
        UINT64_C(0x8000000000000000), UINT64_C(0x0000000000000000), UINT64_C(0x7ff0000000000000),
        UINT64_C(0xfff0000000000000), UINT64_C(0x0000000000000001), UINT64_C(0x8000000000000001),
        UINT64_C(0x000fffffffffffff), UINT64_C(0x7fefffffffffffff), UINT64_C(0xffefffffffffffff),
        UINT64_C(0x0010000000000000),
    };
    enum { NS = sizeof sp / sizeof *sp };
    tsdb_sample_t s[256];
    /* each special alone, as a constant chunk, and in an integer chunk */
    for (int k = 0; k < NS; k++) {
        fill_regular(s, 64, 1000, 10);
        for (int i = 0; i < 64; i++) s[i].v = test_bits_double(sp[k]);
        roundtrip(s, 64, NULL);
        roundtrip(s, 1, NULL);
        for (int i = 0; i < 64; i++) s[i].v = i % 5 ? (double)i : test_bits_double(sp[k]);
        roundtrip(s, 64, NULL);
    }
    /* alternating specials and all of them in a row */
    fill_regular(s, 256, -5000, 7);
    for (int i = 0; i < 256; i++) s[i].v = test_bits_double(sp[i % NS]);
    roundtrip(s, 256, NULL);
    for (int i = 0; i < 256; i++) s[i].v = i & 1 ? test_bits_double(sp[(i / 2) % NS]) : 0.25 * i;
    roundtrip(s, 256, NULL);
    /* integers around 2^53 and 2^63, huge and tiny decimals */
    double edge[] = { 9007199254740992.0,
                      9007199254740993.0,
                      9007199254740994.0,
                      -9007199254740992.0,
                      9223372036854774784.0,
                      -9223372036854775808.0,
                      1e22,
                      1e-22,
                      1.7976931348623157e308,
                      4.9e-324,
                      2.2250738585072014e-308,
                      0.1,
                      0.2,
                      0.30000000000000004,
                      123456.789,
                      1e15 + 0.5,
                      1e300,
                      -1e-300 };
    enum { NE = sizeof edge / sizeof *edge };
    for (int i = 0; i < 256; i++) s[i].v = edge[i % NE];
    roundtrip(s, 256, NULL);
    for (int k = 0; k < NE; k++) {
        for (int i = 0; i < 100; i++) s[i].v = i % 3 ? (double)(i % 7) : edge[k];
        roundtrip(s, 100, NULL);
    }
    /* DBL_MAX next to small integers: deltas that wrap int64 */
    for (int i = 0; i < 100; i++) s[i].v = i & 1 ? -9223372036854775808.0 : 9223372036854774784.0;
    roundtrip(s, 100, NULL);
    (void)DBL_MAX;
}

static void test_timestamp_shapes(void **state)
{
    (void)state;
    tsdb_sample_t s[300];
    for (int kind = 0; kind < 5; kind++) {
        for (size_t n = 1; n <= 300; n += (n < 5 ? 1 : 37)) {
            gen_times(s, n, kind);
            for (size_t i = 0; i < n; i++) s[i].v = (double)(i % 3);
            roundtrip(s, n, NULL);
        }
    }
    /* two samples spanning the whole int64 range, and n=3 with huge deltas */
    s[0].t = INT64_MIN;
    s[1].t = INT64_MAX;
    s[0].v = s[1].v = 1;
    roundtrip(s, 2, NULL);
    s[0].t = INT64_MIN;
    s[1].t = 0;
    s[2].t = INT64_MAX;
    s[2].v = 2;
    roundtrip(s, 3, NULL);
    s[0].t = INT64_MIN;
    s[1].t = INT64_MIN + 1;
    s[2].t = INT64_MAX;
    roundtrip(s, 3, NULL);
    /* a gap in otherwise regular data */
    fill_regular(s, 200, 0, 15000);
    for (int i = 100; i < 200; i++) s[i].t += 3600000;
    for (int i = 0; i < 200; i++) s[i].v = 1;
    unsigned modes;
    size_t len = roundtrip(s, 200, &modes);
    assert_int_equal(tmode(modes), TSDB_CHUNK_TS_PACKED);
    /* header 9 (span 6585000: 4 bytes); step 15000 (the majority delta): 2;
     * grid offsets are 0 then 3600000: block 1 (j = 1..128) SPARSE_DELTA =
     * header + count 1 + one 7-bit position + one 23-bit jump = 6; block 2
     * (71 offsets equal to the previous) FOR width 0, base 0 = 2; value 2 */
    assert_int_equal(len, 9 + 2 + 6 + 2 + 2);
}

static void test_max_samples(void **state)
{
    (void)state;
    size_t n = TSDB_CHUNK_MAX_SAMPLES;
    tsdb_sample_t *s = malloc((n + 1) * sizeof *s);
    assert_non_null(s);
    rng_state = 99;
    int64_t t = -1000000;
    for (size_t i = 0; i < n + 1; i++) {
        s[i].t = t;
        t += 1 + (int64_t)rnd_below(3);
        s[i].v = (double)rnd_below(1000) / 10;
    }
    roundtrip(s, n, NULL);
    size_t len;
    uint8_t b[16];
    assert_err(tsdb_chunk_encode(s, n + 1, b, sizeof b, &len), STRATA_EINVAL);
    for (size_t i = 0; i < n; i++) s[i].v = test_bits_double(rnd());
    roundtrip(s, n, NULL);
    free(s);
}

/* The bound holds for the most expensive inputs: timestamps with random
 * 60-bit deltas and values that defeat every mode. */
static void test_worst_case_fits_max_size(void **state)
{
    (void)state;
    static tsdb_sample_t s[1000];
    static const size_t ns[] = { 1, 2, 3, 127, 128, 129, 300, 1000 };
    rng_state = 4242;
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
        size_t n = ns[k];
        for (int kind = 0; kind < 3; kind++) {
            int64_t t = INT64_MIN;
            for (size_t i = 0; i < n; i++) {
                s[i].t = t;
                t += 1 + (int64_t)(rnd() >> 14);
                if (kind == 0)
                    s[i].v = test_bits_double(rnd());
                else if (kind == 1)
                    s[i].v = (i & 1 ? -1.0 : 1.0) * (double)(rnd() >> 11) * 1024.0;
                else
                    s[i].v = i & 1 ? test_bits_double(rnd() | UINT64_C(0x7ff0000000000001))
                                   : (double)(rnd() >> 40);
            }
            roundtrip(s, n, NULL); /* encodes into exactly tsdb_chunk_max_size(n) */
        }
    }
}

/* ---- errors ------------------------------------------------------------- */

static void test_invalid_input(void **state)
{
    (void)state;
    tsdb_sample_t s[3] = { { 10, 1 }, { 20, 2 }, { 20, 3 } };
    uint8_t buf[256];
    size_t len = 0;
    assert_err(tsdb_chunk_encode(s, 0, buf, sizeof buf, &len), STRATA_EINVAL);
    assert_err(tsdb_chunk_encode(s, 3, buf, sizeof buf, &len), STRATA_EINVAL); /* equal t */
    s[2].t = 15;
    assert_err(tsdb_chunk_encode(s, 3, buf, sizeof buf, &len), STRATA_EINVAL); /* descending */
    assert_err(tsdb_chunk_encode(NULL, 1, buf, sizeof buf, &len), STRATA_EINVAL);
    assert_err(tsdb_chunk_encode(s, 1, buf, sizeof buf, NULL), STRATA_EINVAL);
    s[2].t = 30;
    assert_ok(tsdb_chunk_encode(s, 3, buf, sizeof buf, &len));
    size_t n;
    tsdb_sample_t out[3];
    assert_err(tsdb_chunk_decode(NULL, len, out, 3, &n), STRATA_EINVAL);
    assert_err(tsdb_chunk_decode(buf, len, out, 3, NULL), STRATA_EINVAL);
    assert_err(tsdb_chunk_info(NULL, len, &n, NULL, NULL), STRATA_EINVAL);
    /* another version of the format, and no chunk at all */
    buf[0] = TSDB_CHUNK_MAGIC + 1;
    assert_err(tsdb_chunk_decode(buf, len, out, 3, &n), STRATA_EVERSION);
    buf[0] = 0x00;
    assert_err(tsdb_chunk_decode(buf, len, out, 3, &n), STRATA_ECORRUPT);
    assert_err(tsdb_chunk_info(buf, len, &n, NULL, NULL), STRATA_ECORRUPT);
    assert_err(tsdb_chunk_decode(buf, 0, out, 3, &n), STRATA_ECORRUPT);
}

static void test_buffer_too_small(void **state)
{
    (void)state;
    tsdb_sample_t s[300];
    rng_state = 5;
    gen_times(s, 300, 2);
    for (int i = 0; i < 300; i++) s[i].v = test_bits_double(rnd());
    uint8_t buf[8192];
    size_t len = 0, len2 = 0, n = 0;
    assert_ok(tsdb_chunk_encode(s, 300, buf, sizeof buf, &len));
    /* every short capacity fails and never writes past it */
    for (size_t cap = 0; cap < len; cap += (cap < 40 ? 1 : 97)) {
        memset(buf, 0xee, sizeof buf);
        assert_err(tsdb_chunk_encode(s, 300, cap ? buf : NULL, cap, &len2), STRATA_EBUFSMALL);
        for (size_t i = cap; i < sizeof buf; i++) assert_int_equal(buf[i], 0xee);
    }
    assert_err(tsdb_chunk_encode(s, 300, buf, len - 1, &len2), STRATA_EBUFSMALL);
    assert_ok(tsdb_chunk_encode(s, 300, buf, len, &len2));
    assert_int_equal(len2, len);
    tsdb_sample_t out[300];
    assert_err(tsdb_chunk_decode(buf, len, out, 299, &n), STRATA_EBUFSMALL);
    assert_err(tsdb_chunk_decode(buf, len, NULL, 0, &n), STRATA_EBUFSMALL);
    assert_ok(tsdb_chunk_decode(buf, len, out, 300, &n));
    assert_int_equal(n, 300);
}

static void test_info(void **state)
{
    (void)state;
    tsdb_sample_t s[5] = { { -7, 1 }, { 3, 2 }, { 4, 3 }, { 100, 4 }, { 1000000000000, 5 } };
    uint8_t buf[128];
    size_t len, n;
    int64_t mint, maxt;
    assert_ok(tsdb_chunk_encode(s, 5, buf, sizeof buf, &len));
    assert_ok(tsdb_chunk_info(buf, len, &n, &mint, &maxt));
    assert_int_equal(n, 5);
    assert_int_equal(mint, -7);
    assert_int_equal(maxt, 1000000000000);
    /* the header alone is enough */
    assert_ok(tsdb_chunk_info(buf, 1 + 1 + 1 + 1 + 6, &n, &mint, &maxt));
    assert_int_equal(maxt, 1000000000000);
    assert_err(tsdb_chunk_info(buf, 1 + 1 + 1 + 1 + 5, &n, &mint, &maxt), STRATA_ECORRUPT);
    assert_ok(tsdb_chunk_info(buf, len, NULL, NULL, NULL));
}

/* Every truncation and every single-bit flip of a set of chunks must decode
 * to something in bounds or fail with ECORRUPT/EVERSION. */
static void check_damaged(const uint8_t *chunk, size_t len, size_t n)
{
    uint8_t *b = malloc(len);
    tsdb_sample_t *out = malloc((n + GUARD) * sizeof *out);
    assert_non_null(b);
    assert_non_null(out);
    for (size_t i = n; i < n + GUARD; i++) out[i].t = (int64_t)GUARD_BITS;
    for (size_t cut = 0; cut < len; cut++) {
        /* a copy of exactly cut bytes, so ASan sees any read past it */
        uint8_t *c = malloc(cut ? cut : 1);
        memcpy(c, chunk, cut);
        size_t got;
        int rc = tsdb_chunk_decode(c, cut, out, n, &got);
        assert_int_not_equal(rc, 0);
        assert_true(rc == STRATA_ECORRUPT);
        free(c);
    }
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(b, chunk, len);
        b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        size_t got = 0;
        int rc = tsdb_chunk_decode(b, len, out, n, &got);
        if (rc == 0)
            assert_true(got <= n);
        else
            assert_true(rc == STRATA_ECORRUPT || rc == STRATA_EVERSION || rc == STRATA_EBUFSMALL);
        if (rc == 0) /* whatever decodes is a valid chunk: ascending timestamps */
            for (size_t i = 1; i < got; i++) assert_true(out[i].t > out[i - 1].t);
    }
    for (size_t i = n; i < n + GUARD; i++) assert_int_equal((uint64_t)out[i].t, GUARD_BITS);
    free(b);
    free(out);
}

static void test_truncated_and_flipped(void **state)
{
    (void)state;
    tsdb_sample_t s[300];
    uint8_t buf[8192];
    rng_state = 77;
    for (int kind = 0; kind < 9; kind++) {
        size_t n = kind == 7 ? 1 : 150 + (size_t)kind * 15; /* <= 270 */
        gen_times(s, n, kind % 5);
        double prev = 10;
        for (size_t i = 0; i < n; i++) prev = s[i].v = gen_value(kind, i, prev);
        size_t len;
        assert_ok(tsdb_chunk_encode(s, n, buf, sizeof buf, &len));
        check_damaged(buf, len, n);
    }
    /* constant, stale-marker exception and sparse blocks */
    fill_regular(s, 130, 0, 1000);
    for (int i = 0; i < 130; i++) s[i].v = i % 40 ? 3 : 2;
    s[129].v = test_bits_double(TSDB_STALE_NAN_BITS);
    size_t len;
    assert_ok(tsdb_chunk_encode(s, 130, buf, sizeof buf, &len));
    check_damaged(buf, len, 130);
    for (int i = 0; i < 130; i++) s[i].v = 3;
    assert_ok(tsdb_chunk_encode(s, 130, buf, sizeof buf, &len));
    check_damaged(buf, len, 130);
}

/* ---- committed chunks: seeds of fuzz_chunk and a format-compatibility check --
 * Each file in tests/fuzz/corpus/fuzz_chunk/ was written by this generator
 * (STRATA_WRITE_CORPUS=1 build/tests/test_tsdb_codec, from the repo root);
 * every later codec must still decode them to the same samples. */

#define CORPUS_DIR "tests/fuzz/corpus/fuzz_chunk/"

static const char *gen_seed(int k, tsdb_sample_t *s, size_t *n)
{
    rng_state = 1000 + (uint64_t)k;
    switch (k) {
    case 0:
        *n = 120;
        fill_regular(s, 120, 1700000000000, 15000);
        for (size_t i = 0; i < 120; i++) s[i].v = 1;
        return "const_regular";
    case 1:
        *n = 50;
        fill_regular(s, 50, -100, 3);
        for (size_t i = 0; i < 50; i++) s[i].v = M_PI;
        return "const_raw";
    case 2:
        *n = 300;
        gen_times(s, 300, 1);
        for (size_t i = 0; i < 300; i++) s[i].v = (double)rnd_below(101);
        return "dec_small_ints_jitter";
    case 3: {
        *n = 1024;
        fill_regular(s, 1024, 1795772954739, 100);
        int64_t cents = 1250;
        for (size_t i = 0; i < 1024; i++) {
            cents += (int64_t)rnd_below(300);
            s[i].v = (double)cents / 100;
            s[i].t += (i % 50 == 7);
        }
        return "dec_counter_two_decimals";
    }
    case 4:
        *n = 130;
        fill_regular(s, 130, 0, 1000);
        for (size_t i = 0; i < 130; i++) s[i].v = i % 40 ? 1738407936 : 648347648;
        s[129].v = test_bits_double(TSDB_STALE_NAN_BITS);
        return "dec_steps_stale";
    case 5:
        *n = 200;
        gen_times(s, 200, 2);
        for (size_t i = 0; i < 200; i++) s[i].v = test_bits_double(rnd());
        return "xor_random_gaps";
    case 6:
        *n = 1;
        s[0].t = 42;
        s[0].v = -0.0;
        return "single";
    case 7:
        *n = 17;
        gen_times(s, 17, 4);
        for (size_t i = 0; i < 17; i++) s[i].v = gen_value(5, i, 0);
        return "extremes_mixed";
    default: return NULL;
    }
}

static void test_committed_chunks_decode(void **state)
{
    (void)state;
    static tsdb_sample_t s[1024], out[1024];
    static uint8_t buf[32768];
    int write = getenv("STRATA_WRITE_CORPUS") != NULL;
    size_t n;
    const char *name;
    for (int k = 0; (name = gen_seed(k, s, &n)); k++) {
        char path[256];
        snprintf(path, sizeof path, CORPUS_DIR "%s", name);
        size_t len;
        if (write) {
            assert_ok(tsdb_chunk_encode(s, n, buf, sizeof buf, &len));
            FILE *f = fopen(path, "wb");
            if (!f) fail_msg("cannot write %s", path);
            assert_int_equal(fwrite(buf, 1, len, f), len);
            fclose(f);
        }
        FILE *f = fopen(path, "rb");
        if (!f) fail_msg("missing %s (run from the repo root; STRATA_WRITE_CORPUS=1 writes it)", path);
        len = fread(buf, 1, sizeof buf, f);
        fclose(f);
        size_t got = 0;
        assert_ok(tsdb_chunk_decode(buf, len, out, 1024, &got));
        assert_int_equal(got, n);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(out[i].t, s[i].t);
            assert_int_equal(test_double_bits(out[i].v), test_double_bits(s[i].v));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_constant_regular_is_tiny),
        cmocka_unit_test(test_small_ints_for_width),
        cmocka_unit_test(test_counter_constant_rate),
        cmocka_unit_test(test_stale_marker_is_an_exception),
        cmocka_unit_test(test_sparse_bitmap_and_list),
        cmocka_unit_test(test_random_bits_fall_back_to_xor),
        cmocka_unit_test(test_jittered_timestamps_are_cheap),
        cmocka_unit_test(test_property_random_chunks),
        cmocka_unit_test(test_adversarial_values),
        cmocka_unit_test(test_timestamp_shapes),
        cmocka_unit_test(test_max_samples),
        cmocka_unit_test(test_worst_case_fits_max_size),
        cmocka_unit_test(test_invalid_input),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_truncated_and_flipped),
        cmocka_unit_test(test_committed_chunks_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
