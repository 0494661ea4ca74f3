/*
 * codec.h: tsdb's chunk codec (internal to tsdb/).
 *
 * A chunk is a self-describing byte string holding n samples with strictly
 * ascending timestamps.  The codec allocates nothing: the caller provides the
 * output buffer and decides when to cut a chunk (as Prometheus' chunkenc and
 * netdata's gorilla writer).  Every float64 round-trips bit-exactly, NaN
 * payloads, -0, infinities, subnormals and the stale marker included.
 * Layout and rationale: docs/storage.md, "Chunk encoding".
 */
#ifndef TSDB_CODEC_H
#define TSDB_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb.h"

/* Most samples one chunk may hold. */
#define TSDB_CHUNK_MAX_SAMPLES 65535

/* An upper bound of tsdb_chunk_encode's output for n samples. */
size_t tsdb_chunk_max_size(size_t n);

/* Encodes samples[0..n) (1 <= n <= TSDB_CHUNK_MAX_SAMPLES, t strictly
 * ascending) into out[0..cap).  On success stores the size in *written and
 * returns 0; STRATA_EBUFSMALL if cap is short, STRATA_EINVAL on bad input. */
int tsdb_chunk_encode(const tsdb_sample_t *samples, size_t n, uint8_t *out, size_t cap, size_t *written);

/* Reads the header only: sample count and first/last timestamps. */
int tsdb_chunk_info(const uint8_t *buf, size_t len, size_t *n, int64_t *mint, int64_t *maxt);

/* Decodes into out[0..cap) and stores the count in *n.  Never reads past
 * buf[len) or writes past out[cap): STRATA_ECORRUPT on malformed input,
 * STRATA_EBUFSMALL when cap is short. */
int tsdb_chunk_decode(const uint8_t *buf, size_t len, tsdb_sample_t *out, size_t cap, size_t *n);

#endif
