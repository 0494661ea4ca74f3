/*
 * format.h: every on-disk constant of tsdb in one place: magics, versions,
 * record and file layouts.  docs/storage.md describes the same format in
 * prose; change both together.  All integers on disk are little-endian.
 */
#ifndef TSDB_FORMAT_H
#define TSDB_FORMAT_H

#include <stdint.h>

/* ---- data directory ------------------------------------------------------
 * <dir>/LOCK            flock'd while open
 * <dir>/wal/            segments and checkpoint (WAL section below)
 * <dir>/blocks/<ulid>/  immutable blocks (block section below)
 * <dir>/corrupt/        blocks set aside because a CRC failed (in a part and its copy),
 *                       damaged meta/index files replaced from the copy, damaged WAL bytes
 */

/* ---- chunk encoding (tsdb/codec.c) ----
 * byte 0   TSDB_CHUNK_MAGIC: high nibble 0xC marks a chunk, low nibble is the version
 * byte 1   modes: bits 0-1 timestamp mode, bits 2-3 value mode, bits 4-7 zero
 * varint   n (1..65535)
 * varint   zigzag(first timestamp)
 * varint   last timestamp - first timestamp (uint64)
 * timestamp section, value section (docs/storage.md, "Chunk encoding");
 * a chunk is exactly its bytes, nothing may follow.
 */
#define TSDB_CHUNK_MAGIC       0xC1
#define TSDB_CHUNK_TS_REGULAR  0 /* n == 1 or all deltas equal: span / (n-1) */
#define TSDB_CHUNK_TS_PACKED   1 /* varint step, then blocks of t[j] - j*step, j = 1..n-1 */
#define TSDB_CHUNK_VAL_CONST   0 /* one scalar: byte e + varint zigzag(m), or 0xFF + 8 raw bytes */
#define TSDB_CHUNK_VAL_DECIMAL 1 /* byte e, varint zigzag(m0), blocks of m, exceptions */
#define TSDB_CHUNK_VAL_XOR     2 /* Gorilla XOR bit stream */
#define TSDB_CHUNK_CONST_RAW   0xFF
#define TSDB_CHUNK_DEC_MAX_EXP 22  /* 10^22 is the largest exact power of ten */
#define TSDB_CHUNK_BLOCK_LEN   128 /* integers per packed block */
/* block header byte: mode << 6 | width code (0..62 = width, 63 = 64 bits) */
/* bases (min, base) are stored as zigzag(base - prev), prev = the value before the block */
#define TSDB_CHUNK_BLOCK_FOR   0 /* varint zigzag(min), len x w bits of (x - min) */
#define TSDB_CHUNK_BLOCK_DELTA 1 /* varint zigzag(min delta), len x w bits of (delta - min) */
#define TSDB_CHUNK_BLOCK_SPARSE \
    2 /* varint zigzag(base), positions of x != base, w bits zigzag(x - base) each */
#define TSDB_CHUNK_BLOCK_SPARSE_DELTA   3 /* positions of delta != 0, w bits zigzag(delta) each */
/* sparse positions: varint k, then a bitmap of len bits, or, when
 * ceil(k * pw / 8) < ceil(len / 8), k ascending indexes of pw = bitwidth(len - 1) bits */

/* ---- WAL (tsdb/wal.c) ----
 * <dir>/wal/00000001 ...      segments, numbered from 1, %08llu (more digits past 99999999)
 * <dir>/wal/checkpoint.<seg>  head state as of the start of segment <seg>
 * <dir>/wal/<name>.tmp        checkpoint being written; deleted at open
 *
 * Segment and checkpoint files start with an 8-byte header:
 *   u32 magic TSDB_WAL_MAGIC | u8 version | u8 kind (0 segment, 1 checkpoint) | u16 zero
 *   (a header that fails these checks in front of a record that frames as
 *   version 1 is damage, not another format: a new version must change the
 *   record framing or the magic)
 * followed by records, back to back:
 *   u32 len | u32 crc | body[len]     body[0] = record type, body[1..] = payload
 *   len >= 1 and <= TSDB_WAL_MAX_RECORD_BYTES; crc = CRC32C over the 4 len bytes and the body.
 * Payloads (uvarint = LEB128, zvarint = zigzag LEB128):
 *   SERIES:  uvarint ref | uvarint nlabels | nlabels x (uvarint len, name, uvarint len, value)
 *   SAMPLES: uvarint n (>= 1) | first: uvarint ref, zvarint t, f64 v
 *            | then n-1 x (zvarint ref delta, zvarint t delta, f64 v)
 *            deltas are to the previous sample of the record, mod 2^64; v is the raw
 *            IEEE-754 bit pattern, little-endian, so every NaN payload round-trips.
 *   SAMPLES_COPY: the SAMPLES payload; samples a checkpoint logs again (the head's
 *            samples at a cut), already logged once: replay reads them as SAMPLES,
 *            a WAL cursor (the remote-write shipper) skips them.
 */
#define TSDB_WAL_MAGIC                  0x4C415753u /* "SWAL" as bytes on disk */
#define TSDB_WAL_VERSION                1
#define TSDB_WAL_KIND_SEGMENT           0
#define TSDB_WAL_KIND_CHECKPOINT        1
#define TSDB_WAL_HEADER_SIZE            8
#define TSDB_WAL_RECORD_HEADER_SIZE     8
#define TSDB_WAL_MAX_RECORD_BYTES       (64u << 20)
#define TSDB_WAL_REC_SERIES             1
#define TSDB_WAL_REC_SAMPLES            2
#define TSDB_WAL_REC_SAMPLES_COPY       3
/* Samples per SAMPLES record at most (a larger batch is split), so a record stays < 32 MiB. */
#define TSDB_WAL_MAX_SAMPLES_PER_RECORD (1u << 20)

/* ---- blocks, index, rollups (tsdb/block_writer.c, block_reader.c, block_index.c,
 *      page_cache.c, rollup.c) ----------------------------------------------
 * <dir>/blocks/<id>/ with id = 16 hex digits of the creation time in ms and
 * 8 hex digits of a per-process sequence; written as <id>.tmp/ and renamed.
 *   chunks, rollups, rollups1h: "page files": u32 magic | u32 version, then pages
 *       u32 raw_len | u32 comp_len | u32 crc32c(compressed bytes) | zstd frame
 *     a page holds the records of several series back to back (~64 KiB raw;
 *     a chunks page at most max(TSDB_PAGE_MAX_SAMPLES, store samples / 400)
 *     samples unless one chunk has more: compact.c);
 *     a record is addressed by (file offset of its page, offset in the raw
 *     page, length).  chunks records are codec chunks of <= 4096 samples;
 *     rollups records are a series' rollup points (below): 5m ones in
 *     rollups, 1h ones in rollups1h (version 1 blocks: both in rollups, and no
 *     rollups1h file), so a wide read decompresses no 5m pages.
 *   index: u32 magic | u32 version
 *     | u32 nsyms, nsyms x (u32 len, bytes, NUL)     sorted, unique
 *     | u32 nseries, per series (ascending label-set order):
 *         u32 nlabels, nlabels x (u32 name sym, u32 value sym),
 *         u32 nchunks, nchunks x (i64 mint, i64 maxt, u64 page, u32 off, u32 len, u32 count),
 *         u64 page5m, u32 off5m, u32 n5m, u64 page1h, u32 off1h, u32 n1h
 *     | u32 npostings, per (name, value) ascending: u32 name, u32 value, u32 n, n x u32 series
 *     | u32 crc32c of everything before it
 *   meta: u32 magic | u32 version | i64 mint | i64 maxt | u64 nseries | u64 nsamples
 *     | u64 nchunks | u32 level | i64 rollup_zero_run_ms | u32 crc32c of the preceding bytes
 *     (64 bytes; versions 1 to 3 have no rollup_zero_run_ms, 56 bytes, and mean
 *     5 minutes: the zero-run minimum the 1h points' zero_inner_long counts beyond)
 *   copy (written since block version 4; absent in older blocks, which read as
 *       before): a second copy of meta and index, read when the primary is
 *       missing or fails its checks, so a flip there costs nothing:
 *       u32 magic TSDB_COPY_MAGIC | u32 TSDB_COPY_VERSION
 *       | u32 meta_len | the meta file's bytes (its own CRC inside)
 *       | u32 raw_len | u32 comp_len | u32 crc32c(compressed) | zstd frame of the index file's bytes
 *     The primary files' layout is unchanged (the copy came with version 4).
 *   parity (version 5; absent in older blocks, which read as before): XOR
 *       parity of the chunks file, so a damaged chunk page is rebuilt exactly:
 *       u32 magic TSDB_PARITY_MAGIC | u32 TSDB_PARITY_VERSION | u64 covered
 *       (the chunks file's size) | u32 width W | u32 crc32c of the preceding 20
 *       bytes | W bytes: byte i = XOR of the chunks file's bytes at i, W + i,
 *       2W + i, ... (bytes past the end count as 0).
 *       W = max(TSDB_PARITY_MIN_WIDTH, covered / TSDB_PARITY_STRIPES rounded up
 *       to 64), at most TSDB_PARITY_MAX_WIDTH.  A page's bytes (its 12-byte
 *       header and frame; its extent is from its offset to the next page
 *       offset the index names, or the end of the file) are recomputed from
 *       the parity and the other stripes; a candidate is accepted only when
 *       its header frames the extent exactly and its CRC checks.
 *     Version 5 changes nothing else: meta, index, pages and copy are as in 4.
 * Rollup records, versions 3 to 5: u32 byte length, then the points, each written
 *   against the previous one (the first against an all-zero point at t = 0),
 *   res = the file's resolution, base = t - res (the interval is (base, t]):
 *     zigzag varint (t - prev.t) / res | varint count
 *     [1h only: varint stale | varint (stale ? zigzag(stale_t - base) : 0)]
 *     when count > 0: zigzag varint first_t - base | zigzag varint t - last_t
 *       | xor sum, min, max, last, first, increase
 *       [1h only: zigzag varint gap_max | xor hold_sum, last_rise, inner_increase
 *        | varint zero_lead_end, zero_trail_start as 0 (INT64_MAX) or 1 + zigzag(x - base)
 *        | zigzag varint zero_inner_max, zero_inner_long]
 *   where "xor v" is v's bits XOR prev's same field: one byte
 *   (zero bytes leading << 4 | zero bytes trailing; 0x80 for 0), then the bytes
 *   between, most significant first.  Points of count 0 hold only stale markers.
 * Older versions stay readable (fixed-size points, little-endian):
 *   version 1 and 2, 5m (and version 1 1h): i64 t | u32 count | f64 sum, min, max,
 *   last | i64 last_t | f64 first | i64 first_t | f64 increase (76 bytes);
 *   version 2, 1h (rollups1h): the same, then u32 stale | i64 stale_t | i64 gap_max
 *   | f64 hold_sum | f64 last_rise | f64 inner_increase | i64 zero_lead_end
 *   | i64 zero_trail_start | i64 zero_inner_max | i64 zero_inner_long (152 bytes).
 *   Version 1 blocks lack the holding-rule fields; their 1h rollups are
 *   recomputed from their samples when read, and so are the 1h rollups of a
 *   block whose rollup_zero_run_ms differs from the open store's option.
 */
#define TSDB_PAGE_MAGIC                 0x47505453u /* "STPG" */
#define TSDB_COPY_MAGIC                 0x50435453u /* "STCP" */
#define TSDB_COPY_VERSION               1
#define TSDB_INDEX_MAGIC                0x58495453u /* "STIX" */
/* A compressed index file (docs/storage.md, "Compressed index"): u32 this
 * magic | u32 raw_len | u32 comp_len | u32 crc32c(compressed) | zstd frame
 * of the index bytes above (which keep their own magic and CRC).  Written
 * since this magic exists; readers take either form, so older blocks (and a
 * file put back from the copy by an older strata) read as before. */
#define TSDB_INDEX_Z_MAGIC              0x5a495453u /* "STIZ" */
#define TSDB_META_MAGIC                 0x544d5453u /* "STMT" */
#define TSDB_BLOCK_VERSION              5
#define TSDB_PARITY_MAGIC               0x59505453u /* "STPY" */
#define TSDB_PARITY_VERSION             1
#define TSDB_PARITY_HEADER_SIZE         24
#define TSDB_PARITY_STRIPES             64
#define TSDB_PARITY_MIN_WIDTH           512u
#define TSDB_PARITY_MAX_WIDTH           (1u << 20)
#define TSDB_PAGE_HEADER_SIZE           12
#define TSDB_PAGE_TARGET_BYTES          (64u << 10)
#define TSDB_PAGE_MAX_RAW               (64u << 20)
/* The floor of the samples-per-chunk-page cap (compact.c raises it to 1/400 of
 * the store): a damaged page loses its samples, and with compressible series
 * 64 KiB of chunks can hold a whole small block (2 h of 391 GPU series fit in
 * 3 pages), so pages are also cut by sample count.  Readers do not care. */
#define TSDB_PAGE_MAX_SAMPLES           1024
#define TSDB_BLOCK_CHUNK_SAMPLES        4096
#define TSDB_META_SIZE                  64              /* versions 4 and 5 */
#define TSDB_META_SIZE_V3               56              /* versions 1 to 3: no rollup_zero_run_ms */
#define TSDB_META_V3_ZERO_RUN_MS        (5 * 60 * 1000) /* what versions 1 to 3 were built with */
/* Rollups only where they pay (docs/storage.md): a block stores a series'
 * 5m (1h) points only when its samples there span at least this; otherwise
 * its index entry has n5m (n1h) = 0 (a series with samples always has >= 1
 * point, so 0 is unambiguous) and readers compute them from its chunks.
 * A head cut (2 h) stores neither, a 6 h merge 1h points, a 1-day merge both. */
#define TSDB_ROLLUP_5M_MIN_SPAN_MS      (12 * 3600 * 1000LL)
#define TSDB_ROLLUP_1H_MIN_SPAN_MS      (4 * 3600 * 1000LL)
#define TSDB_ROLLUP_RECORD_SIZE_V2      152
#define TSDB_ROLLUP_RECORD_SIZE_V1      76

/* ---- head (tsdb/head.c) ---- */
/* A head series' open buffer of raw samples is sealed into a small codec
 * chunk every TSDB_HEAD_OPEN_SAMPLES samples; the newest
 * TSDB_HEAD_MERGE_FANIN chunks of equal count are merged into one, up to
 * TSDB_HEAD_CHUNK_SAMPLES (docs/storage.md, "Head"). */
#define TSDB_HEAD_OPEN_SAMPLES          8
#define TSDB_HEAD_MERGE_FANIN           4
#define TSDB_HEAD_CHUNK_SAMPLES         128
/* Most samples a head chunk can hold. */
#define TSDB_HEAD_MAX_CHUNK             TSDB_HEAD_CHUNK_SAMPLES

#endif
