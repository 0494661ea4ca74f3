/*
 * fuzz_wal.c: replays arbitrary bytes as a WAL segment image
 * (tsdb_wal_replay_buffer, the parser tsdb_wal_open runs on every file).
 *
 * Replay skips damaged stretches and resynchronises on the next record whose
 * length is plausible and whose CRC checks.  Besides memory safety it checks:
 * the stats agree with the reported damage; the prefix up to the end of the
 * last good record replays on its own to the same records (resync decisions
 * depend only on the bytes before that point); and everything it delivered,
 * re-encoded with the batch builders, replays cleanly to the same counts (so
 * decode and encode agree on every accepted record).
 * Each input is tried twice: as given, and with every record's CRC made
 * right, so mutations reach the record decoder instead of dying at the CRC.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "wal.h"

typedef struct fuzz_ctx {
    tsdb_wal_batch_t again;
    size_t label_bytes;
} fuzz_ctx_t;

static int on_series(void *p, uint64_t ref, const tsdb_label_t *l, size_t n)
{
    fuzz_ctx_t *c = p;
    for (size_t i = 0; i < n; i++) c->label_bytes += strlen(l[i].name) + strlen(l[i].value);
    return tsdb_wal_batch_add_series(&c->again, ref, l, n);
}

static int on_samples(void *p, const tsdb_wal_sample_t *s, size_t n)
{
    fuzz_ctx_t *c = p;
    return tsdb_wal_batch_add_samples(&c->again, s, n);
}

static void check_one(const uint8_t *data, size_t size)
{
    fuzz_ctx_t c;
    memset(&c, 0, sizeof c);
    tsdb_wal_batch_init(&c.again);
    tsdb_wal_replay_ops_t ops = { on_series, on_samples, &c, 0 };
    tsdb_wal_replay_stats_t st = { 0 }, st2 = { 0 };
    size_t valid = 0;
    const char *why = NULL;
    int rc = tsdb_wal_replay_buffer(data, size, &ops, &st, &valid, &why);
    if (rc == 0) {
        if (valid > size || (why == NULL && valid != size)) abort();
        if ((why == NULL) != (st.corrupt_records == 0) || (why == NULL) != (st.skipped_bytes == 0)) abort();
        if (st.skipped_bytes < size - valid || st.skipped_bytes > size || st.truncated_bytes) abort();

        /* A garbled header before a good record is passed over as damage;
         * the checks below are about the records after a well-formed one. */
        if (size < TSDB_WAL_HEADER_SIZE || memcmp(data, "SWAL\x01\0\0\0", TSDB_WAL_HEADER_SIZE)) {
            tsdb_wal_batch_free(&c.again);
            return;
        }
        /* the prefix up to the last good record replays to the same records */
        size_t valid2 = 0;
        const char *why2 = NULL;
        if (tsdb_wal_replay_buffer(data, valid, NULL, &st2, &valid2, &why2) != 0) abort();
        if (valid2 != valid || st2.records != st.records || st2.samples != st.samples ||
            st2.series != st.series || st2.orphan_samples != st.orphan_samples)
            abort();

        /* re-encoded, the delivered records replay to the same counts */
        size_t len = TSDB_WAL_HEADER_SIZE + c.again.len;
        uint8_t *img = malloc(len ? len : 1);
        if (!img) abort();
        /* a well-formed header: replay now passes over a garbled one whose
         * next record is good (counting it as damage), which is not what
         * this check is about */
        memcpy(img, "SWAL\x01\0\0\0", TSDB_WAL_HEADER_SIZE);
        if (c.again.len) memcpy(img + TSDB_WAL_HEADER_SIZE, c.again.buf, c.again.len);
        tsdb_wal_replay_stats_t st3 = { 0 };
        size_t valid3 = 0;
        if (tsdb_wal_replay_buffer(img, len, NULL, &st3, &valid3, NULL) != 0) abort();
        if (valid3 != len || st3.corrupt_records || st3.series != st.series || st3.samples != st.samples ||
            st3.orphan_samples != st.orphan_samples)
            abort();
        free(img);
    }
    tsdb_wal_batch_free(&c.again);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed) abort();
    if (size) memcpy(fixed, data, size);
    size_t off = TSDB_WAL_HEADER_SIZE;
    while (size >= off && size - off >= TSDB_WAL_RECORD_HEADER_SIZE) {
        uint32_t rlen = le32(fixed + off);
        if (rlen == 0 || rlen > size - off - TSDB_WAL_RECORD_HEADER_SIZE) break;
        uint32_t crc = tsdb_crc32c(tsdb_crc32c(0, fixed + off, 4), fixed + off + 8, rlen);
        for (int i = 0; i < 4; i++) fixed[off + 4 + i] = (uint8_t)(crc >> (8 * i));
        off += TSDB_WAL_RECORD_HEADER_SIZE + rlen;
    }
    check_one(fixed, size);
    free(fixed);
    return 0;
}
