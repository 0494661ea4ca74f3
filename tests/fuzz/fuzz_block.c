/*
 * fuzz_block.c: opens blocks whose index, chunks, rollups or rollups1h file is arbitrary
 * bytes (tsdb_block_open, then every read path of block_reader.c, block_index.c,
 * page_cache.c and rollup.c).
 *
 * A real block is written once at start; each input replaces one of its
 * files: data[0] % 4 picks index (the harness appends the right CRC32C, so
 * mutations reach the parser's bounds checks instead of dying at the CRC),
 * chunks, rollups or rollups1h (taken as they are: page CRCs and zstd frames must hold
 * up on their own).  Whatever opens is then read in full: every series'
 * samples and rollups, matchers over its postings.  Only memory safety and
 * "error, never garbage" are checked: a read either fails with a STRATA_E*
 * code or returns ascending timestamps.
 *
 * FUZZ_BLOCK_SEEDS=<dir> makes it write one seed per mode there and exit.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block_internal.h"
#include "wal.h"

static char dir[64];
static char id[40];
#define NFILES 5
#define NMODES 4 /* the files an input may replace: all but meta */
static uint8_t *orig[NFILES];
static size_t orig_len[NFILES];
static const char *files[NFILES] = { "index", "chunks", "rollups", "rollups1h", "meta" };

static void write_file(const char *name, const uint8_t *p, size_t n, const uint8_t *tail, size_t tn)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s", dir, id, name);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    if (tn && fwrite(tail, 1, tn, f) != tn) abort();
    fclose(f);
}

static void read_orig(int i)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s/%s", dir, id, files[i]);
    FILE *f = fopen(path, "rb");
    if (!f) abort();
    fseek(f, 0, SEEK_END);
    orig_len[i] = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    orig[i] = malloc(orig_len[i] + 1);
    if (fread(orig[i], 1, orig_len[i], f) != orig_len[i]) abort();
    fclose(f);
}

static void cleanup(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, id);
    tsdb_rm_tree(path);
    rmdir(dir);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/fuzz-block-XXXXXX");
    if (!mkdtemp(dir)) abort();
    tsdb_block_writer_t *w;
    if (tsdb_block_writer_new(dir, 1, TSDB_ROLLUP_ZERO_RUN_DEFAULT_MS, &w)) abort();
    static tsdb_sample_t s[1500];
    static const char *jobs[3] = { "api", "db", "gpu" };
    for (int k = 0; k < 3; k++) {
        tsdb_label_t l[3] = { { "__name__", "up" },
                              { "instance", k == 2 ? "node-7" : "node-1" },
                              { "job", jobs[k] } };
        size_t n = k == 2 ? 1500 : 40 + (size_t)k * 100;
        /* the gpu series spans 12.5 h, so its 5m and 1h points are stored
         * (format.h, TSDB_ROLLUP_5M_MIN_SPAN_MS); the short ones' are not */
        for (size_t i = 0; i < n; i++)
            s[i] = (tsdb_sample_t){ 1700000000000LL + (int64_t)i * (k == 2 ? 30000 : 15000),
                                    k == 0 ? 1.0 : (double)(i % 97) * 0.25 };
        if (tsdb_block_writer_add(w, l, 3, s, n)) abort();
    }
    if (tsdb_block_writer_finish(w, id)) abort();
    for (int i = 0; i < NFILES; i++) read_orig(i);
    atexit(cleanup);
}

static int value_cb(void *ctx, const char *value, const uint32_t *ids, size_t n)
{
    (void)value;
    size_t *acc = ctx;
    for (size_t i = 0; i < n; i++) *acc += ids[i];
    return 0;
}

static void exercise(tsdb_block_t *b)
{
    tsdb_page_cache_t pc = { 0 };
    tsdb_sample_t *buf = NULL;
    tsdb_rollup_point_t *rp = NULL;
    size_t cap = 0, rcap = 0;
    for (uint32_t i = 0; i < b->nseries; i++) {
        size_t n = 0;
        int rc = tsdb_block_series_samples(b, i, INT64_MIN, INT64_MAX, &pc, &buf, &n, &cap);
        if (rc > 0) abort();
        for (size_t k = 1; rc == 0 && k < n; k++)
            if (buf[k].t <= buf[k - 1].t) abort();
        size_t nr = 0;
        rc = tsdb_block_series_rollups(b, i, TSDB_ROLLUP_5M, &pc, &rp, &nr, &rcap);
        if (rc > 0) abort();
        nr = 0;
        rc = tsdb_block_series_rollups(b, i, TSDB_ROLLUP_1H, &pc, &rp, &nr, &rcap);
        if (rc > 0) abort();
    }
    tsdb_matcher_t m[2] = { { TSDB_MATCH_RE, "__name__", ".+" }, { TSDB_MATCH_NEQ, "job", "db" } };
    tsdb_cmatcher_t *cm;
    if (tsdb_matchers_compile(m, 2, &cm) == 0) {
        uint32_t *ids = NULL;
        size_t n = 0;
        if (tsdb_index_select(&tsdb_block_index_ops, b, cm, 2, &ids, &n) == 0)
            for (size_t i = 0; i < n; i++)
                if (ids[i] >= b->nseries) abort();
        free(ids);
        tsdb_matchers_free(cm, 2);
    }
    size_t acc = 0;
    tsdb_block_index_ops.each_value(b, "job", value_cb, &acc);
    free(buf);
    free(rp);
    tsdb_page_cache_free(&pc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        setup();
        const char *seeds = getenv("FUZZ_BLOCK_SEEDS");
        if (seeds) {
            for (int mode = 0; mode < NMODES; mode++) {
                char path[512];
                snprintf(path, sizeof path, "%s/%s", seeds, files[mode]);
                FILE *f = fopen(path, "wb");
                if (!f) abort();
                uint8_t m = (uint8_t)mode;
                fwrite(&m, 1, 1, f);
                fwrite(orig[mode], 1, orig_len[mode] - (mode == 0 ? 4 : 0), f);
                fclose(f);
            }
            exit(0);
        }
    }
    if (size < 1) return 0;
    int mode = data[0] % NMODES;
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    for (int i = 0; i < NFILES; i++) {
        if (i != mode) {
            write_file(files[i], orig[i], orig_len[i], NULL, 0);
            continue;
        }
        if (mode == 0) {
            uint32_t crc = tsdb_crc32c(0, body, n);
            write_file(files[i], body, n, (const uint8_t *)&crc, 4);
        } else {
            write_file(files[i], body, n, NULL, 0);
        }
    }
    tsdb_block_t *b = NULL;
    int rc = tsdb_block_open(dir, id, &b);
    if (rc > 0) abort();
    if (rc == 0) {
        exercise(b);
        tsdb_block_close(b);
    }
    return 0;
}
