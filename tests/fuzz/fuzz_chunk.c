/*
 * fuzz_chunk.c: libFuzzer target for the chunk codec (tsdb/codec.c).
 *
 * 1. The input as a chunk: decoding must stay in bounds and either fail or
 *    produce a valid chunk's samples; those must re-encode and decode again
 *    to the same bits.
 * 2. The input as samples (timestamp deltas and raw value bits): encoding
 *    must succeed within tsdb_chunk_max_size and round-trip bit-exactly, so
 *    the fuzzer also drives the encoder's mode choices with odd values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

static tsdb_sample_t samples[TSDB_CHUNK_MAX_SAMPLES], again[TSDB_CHUNK_MAX_SAMPLES];
static uint8_t chunk[1 << 21];

static void check_same(const tsdb_sample_t *a, const tsdb_sample_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].t != b[i].t || memcmp(&a[i].v, &b[i].v, 8)) abort();
}

static void roundtrip(const tsdb_sample_t *s, size_t n)
{
    size_t len = 0, m = 0, cap = tsdb_chunk_max_size(n);
    if (cap > sizeof chunk) abort();
    if (tsdb_chunk_encode(s, n, chunk, cap, &len) != 0) abort();
    if (tsdb_chunk_decode(chunk, len, again, n, &m) != 0 || m != n) abort();
    check_same(s, again, n);
    size_t in;
    int64_t mint, maxt;
    if (tsdb_chunk_info(chunk, len, &in, &mint, &maxt) || in != n || mint != s[0].t || maxt != s[n - 1].t)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = 0;
    if (tsdb_chunk_decode(data, size, samples, TSDB_CHUNK_MAX_SAMPLES, &n) == 0) {
        if (n < 1 || n > TSDB_CHUNK_MAX_SAMPLES) abort();
        for (size_t i = 1; i < n; i++)
            if (samples[i].t <= samples[i - 1].t) abort();
        roundtrip(samples, n);
    }

    /* 10 bytes per sample: 2-byte timestamp step (0 means a huge gap), 8 value bytes */
    n = size / 10;
    if (n > 4096) n = 4096;
    if (n == 0) return 0;
    int64_t t = -1000;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = data + i * 10;
        uint16_t step;
        memcpy(&step, p, 2);
        uint64_t bits;
        memcpy(&bits, p + 2, 8);
        t += step ? step : (int64_t)1 << 40;
        samples[i].t = t;
        /* low step bits pick a value shape: raw bits or a small decimal */
        if (step & 1)
            memcpy(&samples[i].v, &bits, 8);
        else
            samples[i].v = (double)(int32_t)bits / (double)(1 + (step >> 1 & 3) * 9);
    }
    roundtrip(samples, n);
    return 0;
}
