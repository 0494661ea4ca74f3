/*
 * test_block.c: blocks through the public API: range edges, the older
 * on-disk versions (fixtures), the meta's zero-run field, the page cache and
 * its option, streaming reads, a failed write (logged once), a damaged
 * chunk page (skipped and reported, the block kept), corrupt index and meta.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_tsdb_helpers.h"
#include "db_internal.h"
#include "format.h"
#include "strata_log.h"
#include "tsdb.h"

static void test_block_range_edges(void **state)
{
    (void)state;
    /* One chunk spanning 0..1000000 with nothing in between: a range inside
     * the gap selects nothing, ranges touching a sample select the series. */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_sample_t s[] = { { 0, 1 }, { 1000000, 2 } };
    append(db, "__name__=gap", s, 2);
    append(db, "__name__=gap2", s, 1);
    assert_ok(tsdb_cut_head(db));
    tsdb_matcher_t m[] = { M(RE, "__name__", "gap.*") };
    for (int pass = 0; pass < 2; pass++) {
        char *got = query(db, m, 1, 10, 20, 1);
        assert_string_equal(got, "");
        free(got);
        got = query(db, m, 1, 0, 5, 1);
        assert_string_equal(got, "{__name__=gap} 0:3ff0000000000000{__name__=gap2} 0:3ff0000000000000");
        free(got);
        got = query(db, m, 1, 10, 1000000, 1);
        assert_string_equal(got, "{__name__=gap} 1000000:4000000000000000");
        free(got);
        /* the same series in the head too: the gap stays empty */
        append(db, "__name__=gap", (tsdb_sample_t[]){ { 2000000, 3 } }, 1);
    }
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Blocks of the older formats (tests/fixtures/tsdb_v1_block and
 * tsdb_v2_block, see their READMEs) open, their samples read back, and their
 * rollups have every field (version 1 lacks the holding-rule fields: its 1h
 * rollups are recomputed from the samples; version 2 stores fixed-size points). */
static void test_block_old_versions_readable(void **state)
{
    (void)state;
    static tsdb_sample_t s[500];
    size_t n = fixture_samples(s);
    for (int f = 0; f < 2; f++) {
        char *dir = test_tmpdir_new();
        fixture_copy(dir, f);
        tsdb_t *db = open_db(dir, 0, 0, 0);
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        assert_int_equal(st.blocks, 1);
        check_bits(db, "h", s, n);
        check_hold_fields(db, s, n, TSDB_ROLLUP_5M, (unsigned)f);
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, (unsigned)f);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

/* A streaming set reads a block's pages (samples and rollups, right) without
 * adding them to the shared page cache; an ordinary set adds them. */
static void test_stream_read_bypasses_cache(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=s", 0, 15000, 2000, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0); /* a fresh block object: none of its pages cached */
    tsdb_matcher_t m[] = { M(EQ, "__name__", "s") };
    tsdb_stats_t st;
    for (int stream = 1; stream >= 0; stream--) {
        tsdb_get_stats(db, &st);
        uint64_t before = st.page_cache_bytes;
        tsdb_series_set_t *set;
        assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
        if (stream) tsdb_series_set_stream(set);
        assert_int_equal(tsdb_series_set_next(set), 1);
        const tsdb_sample_t *smp;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &smp, &n));
        assert_int_equal(n, 2000);
        assert_true(smp[1999].v == 1999);
        const tsdb_rollup_point_t *p;
        assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
        assert_int_equal(n, 10); /* (-1h, 0] .. (8h, 9h]: 2000 samples 15 s apart from 0 */
        tsdb_series_set_free(set);
        tsdb_get_stats(db, &st);
        if (stream)
            assert_true(st.page_cache_bytes == before);
        else
            assert_true(st.page_cache_bytes > before);
    }
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Offsets of the pages of a page file (u32 magic, u32 version, then pages of
 * u32 raw length | u32 compressed length | u32 CRC32C | compressed bytes). */
static size_t page_offsets(const char *path, long *off, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    size_t n = 0;
    for (long o = 8; o + 12 <= st.st_size && n < cap;) {
        uint32_t hdr[3];
        assert_int_equal(pread(fd, hdr, sizeof hdr, o), (ssize_t)sizeof hdr);
        off[n++] = o;
        o += 12 + (long)hdr[1];
    }
    close(fd);
    return n;
}

/* Flips, in the block's parity file, the bit flip_bit flips at chunks offset
 * `off`: that byte's group (format.h, "parity") then holds two damaged
 * members, so the page holding it cannot be rebuilt, as with no parity. */
static void flip_parity_of(const char *dir, long off)
{
    char path[1024];
    block_file(dir, "parity", path, sizeof path);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    uint32_t w;
    assert_int_equal(pread(fd, &w, 4, 16), 4);
    close(fd);
    assert_true(w >= 64);
    flip_bit(path, 24 + off % (long)w);
}

#define DMG_SERIES  48
#define DMG_SAMPLES 3000

static void dmg_samples(int k, tsdb_sample_t *s)
{
    uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(k + 1);
    for (int i = 0; i < DMG_SAMPLES; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* 15 s apart: 12.5 h, long enough for both rollups to be stored
         * (format.h, TSDB_ROLLUP_5M_MIN_SPAN_MS) */
        s[i] = (tsdb_sample_t){ 1000000 + (int64_t)i * 15000, (double)(x % 1000000) / 7.0 };
    }
}

/* A store in a fresh directory holding one block of DMG_SERIES series "d"
 * (dmg_samples); path gets the block's chunks file, off[] the offsets of its
 * pages (at most cap), *np how many.  Returns the directory. */
static char *dmg_block(char *path, size_t path_cap, long *off, size_t cap, size_t *np)
{
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    static tsdb_sample_t s[DMG_SAMPLES];
    char lb[64];
    for (int k = 0; k < DMG_SERIES; k++) {
        dmg_samples(k, s);
        snprintf(lb, sizeof lb, "__name__=d,job=%03d", k);
        append(db, lb, s, DMG_SAMPLES);
    }
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    block_file(dir, "chunks", path, path_cap);
    *np = page_offsets(path, off, cap);
    return dir;
}

/* Reads every series of dmg_block's block through one select.  A series the
 * set does not call damaged reads exactly; one it does reads a strict subset
 * of its own samples, in order (never a wrong one).  The stored rollups of
 * every series are complete (no damaged page holds them).  Returns how many
 * series read damaged; *pages gets the set's count of damaged pages. */
static int dmg_read(tsdb_t *db, uint64_t *pages)
{
    static tsdb_sample_t s[DMG_SAMPLES];
    tsdb_matcher_t m[] = { M(EQ, "__name__", "d") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    int k = 0, damaged = 0;
    uint64_t cur;
    for (; tsdb_series_set_next(set) == 1; k++) {
        dmg_samples(k, s);
        const tsdb_sample_t *got;
        size_t n;
        assert_int_equal(tsdb_series_set_damaged(set, &cur), (uint64_t)(damaged ? 1 : 0));
        assert_int_equal(cur, 0); /* not read yet */
        assert_ok(tsdb_series_set_samples(set, &got, &n));
        tsdb_series_set_damaged(set, &cur);
        if (cur == 0) {
            assert_int_equal(n, DMG_SAMPLES);
            assert_memory_equal(got, s, n * sizeof *s);
        } else {
            assert_int_equal(cur, 1);
            assert_true(n < DMG_SAMPLES);
            size_t j = 0;
            for (size_t i = 0; i < n; i++) {
                while (j < DMG_SAMPLES && s[j].t != got[i].t) j++;
                assert_true(j < DMG_SAMPLES);
                assert_memory_equal(&got[i], &s[j], sizeof *s);
            }
            damaged++;
        }
        const tsdb_rollup_point_t *p;
        size_t nr;
        for (int r = 0; r < 2; r++) {
            assert_ok(tsdb_series_set_rollups(set, r ? TSDB_ROLLUP_1H : TSDB_ROLLUP_5M, &p, &nr));
            uint32_t total = 0;
            for (size_t i = 0; i < nr; i++) total += p[i].count;
            assert_int_equal(total, DMG_SAMPLES);
        }
    }
    assert_int_equal(k, DMG_SERIES);
    *pages = tsdb_series_set_damaged(set, NULL);
    tsdb_series_set_free(set);
    return damaged;
}

/* One damaged chunk page that parity cannot rebuild (its group is damaged
 * twice): it is lost exactly as without parity.  The block stays listed (nothing moves to
 * corrupt/), every series without a chunk there reads exactly, the ones with
 * a chunk there read the rest of their samples (never a wrong one) and say
 * so through tsdb_series_set_damaged, the stored rollups still answer, and
 * compaction leaves the block alone. */
static void test_damaged_chunk_page(void **state)
{
    (void)state;
    char path[1024];
    long off[256];
    size_t np;
    char *dir = dmg_block(path, sizeof path, off, 256, &np);
    assert_true(np >= 4);
    flip_bit(path, off[np / 2] + 12 + 40);      /* inside one middle page's compressed bytes */
    flip_parity_of(dir, off[np / 2] + 12 + 40); /* and its group's parity: not rebuilt */
    strata_log_set_level(STRATA_LOG_ERROR + 1); /* the expected error is noise here */
    for (int pass = 0; pass < 2; pass++) {
        tsdb_t *db = open_db(dir, 0, 0, 0);
        uint64_t pages;
        int damaged = dmg_read(db, &pages);
        assert_true(damaged >= 1 && damaged <= 4);
        assert_int_equal(pages, 1); /* one page, however many series */
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        assert_int_equal(st.blocks, pass ? 2 : 1);
        assert_int_equal(st.blocks_corrupt, 0);
        assert_int_equal(st.block_pages_damaged, 1);
        assert_int_equal(st.block_pages_rebuilt, 0);
        /* compaction leaves a damaged block as it is (merging it would lose
         * the page's samples for good): an overlapping block stays beside it */
        if (pass == 0) {
            append(db, "__name__=e", (tsdb_sample_t[]){ { 1500000, 1 } }, 1);
            assert_ok(tsdb_cut_head(db));
            assert_ok(tsdb_compact(db));
            tsdb_get_stats(db, &st);
            assert_int_equal(st.blocks, 2);
        }
        tsdb_close(db);
        assert_int_equal(count_dir(dir, "corrupt"), 0);
        assert_int_equal(count_dir(dir, "blocks"), 2);
    }
    strata_log_set_level(STRATA_LOG_WARN);
    test_tmpdir_free(dir);
}

/* A merge reads each source page once, in order: through the series set's
 * own ring, never into the shared page cache (which a merge of a day of
 * blocks filled to its cap at bench-peers' day scale, docs/storage.md,
 * "Memory during ingest").  Two adjacent blocks inside one compaction
 * window become one block holding every sample exactly once. */
static tsdb_t *merge_db;
static uint64_t merge_cache_max;

/* Runs at every step of the merge's block writer: the cache while it reads. */
static void merge_cache_probe(long step)
{
    (void)step;
    tsdb_stats_t st;
    tsdb_get_stats(merge_db, &st);
    if (st.page_cache_bytes > merge_cache_max) merge_cache_max = st.page_cache_bytes;
}

static void test_merge_streams_pages(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 1000, 0, 0); /* compaction window: 3000 ms */
    append_range(db, "__name__=m,job=1", 0, 10, 100, 0);
    append_range(db, "__name__=m,job=2", 0, 10, 100, 500);
    assert_ok(tsdb_cut_head(db));
    append_range(db, "__name__=m,job=1", 1000, 10, 100, 100);
    append_range(db, "__name__=m,job=2", 1000, 10, 100, 600);
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    uint64_t cached = st.page_cache_bytes; /* process-wide: whatever earlier tests left */
    merge_db = db;
    merge_cache_max = cached;
    tsdb_fail_step_hook = merge_cache_probe;
    assert_ok(tsdb_compact(db));
    tsdb_fail_step_hook = NULL;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(merge_cache_max, cached);
    for (int j = 1; j <= 2; j++) {
        char lab[64];
        snprintf(lab, sizeof lab, "__name__=m,job=%d", j);
        tsdb_matcher_t m[] = { M(EQ, "job", j == 1 ? "1" : "2") };
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        char *want = expect_range(lab, 0, 10, 200, j == 1 ? 0 : 500);
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
    tsdb_close(db);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    test_tmpdir_free(dir);
}

/* A compaction that meets the damaged page first (not known yet) gives up
 * the merge and leaves both blocks; the next plans leave the damaged one out. */
static void test_damaged_page_compaction(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=c,job=1", 1000, 1000, 500, 0);
    append_range(db, "__name__=c,job=2", 1000, 1000, 500, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    char path[1024];
    block_file(dir, "chunks", path, sizeof path);
    flip_bit(path, 8 + 12 + 5);      /* inside the first page's compressed bytes */
    flip_parity_of(dir, 8 + 12 + 5); /* not rebuilt */
    strata_log_set_level(STRATA_LOG_ERROR + 1);
    db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=c,job=3", 2000, 1000, 10, 0); /* overlaps the block */
    assert_ok(tsdb_cut_head(db));
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(st.block_pages_damaged, 1);
    assert_int_equal(count_dir(dir, "corrupt"), 0);
    tsdb_matcher_t m[] = { M(EQ, "job", "3") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    char *want = expect_range("__name__=c,job=3", 2000, 1000, 10, 0);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    strata_log_set_level(STRATA_LOG_WARN);
    test_tmpdir_free(dir);
}

/* Damaged chunk pages whose parity groups are otherwise whole are rebuilt
 * exactly (format.h, "parity"): a bit in a middle page's frame, a 2-byte
 * burst across the boundary of two pages (the last frame byte of one, the
 * first header byte of the next), and the compressed-length field of a page
 * header (which moves where the CRC'd bytes would be).  Every series reads
 * bit-exact, nothing is reported damaged, the four pages are counted as
 * rebuilt once each per open store (the second read is served from what was
 * rebuilt), and compaction may merge the block. */
static void test_parity_rebuilds_pages(void **state)
{
    (void)state;
    char path[1024];
    long off[256];
    size_t np;
    char *dir = dmg_block(path, sizeof path, off, 256, &np);
    assert_true(np >= 8);
    flip_bit(path, off[1] + 12 + 40);
    flip_bit(path, off[4] - 1);
    flip_bit(path, off[4]);
    flip_bit(path, off[6] + 5); /* comp_len's second byte */
    strata_log_set_level(STRATA_LOG_ERROR + 1);
    for (int pass = 0; pass < 2; pass++) {
        tsdb_t *db = open_db(dir, 0, 0, 0);
        for (int read = 0; read < 2; read++) {
            uint64_t pages;
            assert_int_equal(dmg_read(db, &pages), 0);
            assert_int_equal(pages, 0);
        }
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        assert_int_equal(st.block_pages_rebuilt, 4);
        assert_int_equal(st.block_pages_damaged, 0);
        assert_int_equal(st.blocks_corrupt, 0);
        tsdb_close(db);
    }
    strata_log_set_level(STRATA_LOG_WARN);
    assert_int_equal(count_dir(dir, "corrupt"), 0);
    test_tmpdir_free(dir);
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct stat st;
    assert_int_equal(fstat(fileno(f), &st), 0);
    *n = (size_t)st.st_size;
    char *p = malloc(*n + 1);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* A block of one series "c" whose files are then damaged: flip[] names the
 * files and offsets flipped, `unlink_copy` removes the copy first (a block
 * written before the copy existed).  Returns whether the block was served
 * whole (1) or set aside (0); nothing else is allowed. */
static int corrupt_at_open(const char *const *files, const long *offs, size_t nflips, int unlink_copy)
{
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=c", 1000, 1000, 10, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    char path[1024];
    static const char *prim[] = { "meta", "index", "copy" };
    char *orig[3];
    size_t olen[3], damaged = 0, fm = 0, fi = 0, fc = 0;
    for (int i = 0; i < 3; i++) {
        block_file(dir, prim[i], path, sizeof path);
        orig[i] = slurp(path, &olen[i]);
    }
    for (size_t i = 0; i < nflips; i++) {
        block_file(dir, files[i], path, sizeof path);
        flip_bit(path, offs[i]);
        damaged += strcmp(files[i], "copy") != 0;
        fm |= !strcmp(files[i], "meta");
        fi |= !strcmp(files[i], "index");
        fc |= !strcmp(files[i], "copy");
    }
    if (unlink_copy) {
        block_file(dir, "copy", path, sizeof path);
        assert_int_equal(unlink(path), 0);
    }
    /* the log of both opens (the second one below) */
    char logpath[1024];
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    fflush(stderr);
    int saved = dup(2), lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && lfd >= 0);
    dup2(lfd, 2);
    db = open_db(dir, 0, 0, 0);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "c") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    int whole = st.blocks == 1;
    if (whole) {
        char *want = expect_range("__name__=c", 1000, 1000, 10, 0);
        assert_string_equal(got, want);
        free(want);
        assert_int_equal(st.blocks_corrupt, 0);
        /* a damaged primary was put back from the copy, the damaged bytes
         * kept under corrupt/ */
        assert_int_equal(count_dir(dir, "corrupt"), unlink_copy ? 0 : damaged);
        /* and a damaged or missing copy (primaries whole: a version 5 block
         * always has one) was written again: meta, index and copy are each
         * as written */
        for (int i = 0; i < 3; i++) {
            size_t n;
            block_file(dir, prim[i], path, sizeof path);
            char *now = slurp(path, &n);
            assert_int_equal(n, olen[i]);
            assert_memory_equal(now, orig[i], n);
            free(now);
        }
        assert_int_equal(st.block_meta_repaired, fm);
        assert_int_equal(st.block_index_repaired, fi);
        assert_int_equal(st.block_copy_repaired, (fc || unlink_copy) && !fm && !fi);
        /* repaired once: the next open finds every file whole */
        tsdb_close(db);
        db = open_db(dir, 0, 0, 0);
        tsdb_get_stats(db, &st);
        assert_int_equal(st.blocks, 1);
        assert_int_equal(st.block_meta_repaired + st.block_index_repaired + st.block_copy_repaired, 0);
        fflush(stderr);
        FILE *lf = fopen(logpath, "r");
        assert_non_null(lf);
        char line[2048];
        int rewrites = 0;
        while (fgets(line, sizeof line, lf))
            rewrites += strstr(line, "block copy damaged, rewritten") != NULL;
        fclose(lf);
        assert_int_equal(rewrites, (fc || unlink_copy) && !fm && !fi); /* logged once, at the first open */
    } else {
        assert_int_equal(st.blocks, 0);
        assert_int_equal(st.blocks_corrupt, 1);
        assert_int_equal(count_dir(dir, "corrupt"), 1);
        assert_int_equal(count_dir(dir, "blocks"), 0);
        assert_string_equal(got, "");
    }
    free(got);
    tsdb_close(db);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(lfd);
    for (int i = 0; i < 3; i++) free(orig[i]);
    test_tmpdir_free(dir);
    return whole;
}

/* A damaged index or meta is read from the block's copy: the block is served
 * whole.  Only when the copy is damaged too, or absent (blocks written before
 * it existed), is the block set aside. */
static void test_corrupt_index_and_meta(void **state)
{
    (void)state;
    const char *ix[] = { "index" }, *mt[] = { "meta" }, *both[] = { "index", "meta" };
    assert_true(corrupt_at_open(ix, (long[]){ 20 }, 1, 0));
    assert_true(corrupt_at_open(ix, (long[]){ -2 }, 1, 0)); /* the CRC itself */
    assert_true(corrupt_at_open(mt, (long[]){ 10 }, 1, 0));
    assert_true(corrupt_at_open(both, (long[]){ 20, 10 }, 2, 0));
    /* the copy's meta (offset 12 + 10), its compressed index (the last byte) */
    const char *ixc[] = { "index", "copy" }, *mtc[] = { "meta", "copy" };
    assert_false(corrupt_at_open(ixc, (long[]){ 20, -1 }, 2, 0));
    assert_false(corrupt_at_open(mtc, (long[]){ 10, 22 }, 2, 0));
    /* the copy damaged alone costs nothing, and is rewritten at open: its
     * magic, its meta, its index's length, its compressed index */
    const char *c[] = { "copy" };
    assert_true(corrupt_at_open(c, (long[]){ 0 }, 1, 0));
    assert_true(corrupt_at_open(c, (long[]){ 22 }, 1, 0));
    assert_true(corrupt_at_open(c, (long[]){ 12 + 64 + 1 }, 1, 0));
    assert_true(corrupt_at_open(c, (long[]){ -1 }, 1, 0));
    /* without a copy: set aside, as before */
    assert_false(corrupt_at_open(ix, (long[]){ 20 }, 1, 1));
    assert_false(corrupt_at_open(mt, (long[]){ 10 }, 1, 1));
    assert_true(corrupt_at_open(NULL, NULL, 0, 1));
}

/* ---- random flips: what a few flipped bytes cost --------------------------- */

/* The soak's block: 391 series of 720 samples at 10 s, shaped like the GPU
 * series strata-load sends (constants, integer gauges, counters, steps), so
 * they compress as well as real ones do: with 64 KiB pages alone, 3 pages
 * held the whole block. */
#define RF_MAX_SAMPLES 7200

/* The shape of a trial's block: series x samples, step ms apart. */
static int rf_nseries = 391, rf_nsamples = 720;
static int64_t rf_step = 10000;

static void rf_samples(int k, tsdb_sample_t *s)
{
    uint64_t x = 0x2545F4914F6CDD1Dull * (uint64_t)(k + 7);
    double v = (double)(k % 97);
    for (int i = 0; i < rf_nsamples; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        switch (k % 4) {
        case 0: v = 80; break;
        case 1: /* a utilisation in 0..100 that moves a little */
            v += (double)(x % 5) - 2;
            v = v < 0 ? 0 : v > 100 ? 100 : v;
            break;
        case 2: v += (double)(x % 3); break;
        default:
            if (i % 60 == 0) v = (double)(x % 81920);
            break;
        }
        s[i] = (tsdb_sample_t){ 1700000000000LL + (int64_t)i * rf_step, v };
    }
}

static uint64_t rf_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Reads every series back and counts the samples that are missing; a sample
 * that is not its series' own, bit for bit, fails the test. */
static uint64_t rf_lost(tsdb_t *db)
{
    static tsdb_sample_t want[RF_MAX_SAMPLES];
    tsdb_matcher_t m[] = { M(EQ, "__name__", "rf") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    uint64_t found = 0;
    while (tsdb_series_set_next(set) == 1) {
        size_t nl;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        assert_int_equal(nl, 2);
        int k = atoi(l[1].value);
        rf_samples(k, want);
        const tsdb_sample_t *got;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &got, &n));
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            while (j < (size_t)rf_nsamples && want[j].t != got[i].t) j++;
            assert_true(j < (size_t)rf_nsamples);
            assert_memory_equal(&got[i], &want[j], sizeof *got);
        }
        found += n;
    }
    tsdb_series_set_free(set);
    return (uint64_t)rf_nseries * (uint64_t)rf_nsamples - found;
}

typedef struct rf_file {
    char name[16];
    uint8_t *p;
    size_t n;
} rf_file_t;

/* Rewrites the block as written (a set-aside block is moved back). */
static void rf_restore(const char *dir, const char *id, const rf_file_t *f, size_t nf)
{
    char p[1024];
    snprintf(p, sizeof p, "rm -rf '%s/corrupt' '%s/blocks'; mkdir -p '%s/blocks/%s'", dir, dir, dir, id);
    assert_int_equal(system(p), 0);
    for (size_t i = 0; i < nf; i++) {
        snprintf(p, sizeof p, "%s/blocks/%s/%s", dir, id, f[i].name);
        FILE *o = fopen(p, "wb");
        assert_non_null(o);
        assert_int_equal(fwrite(f[i].p, 1, f[i].n, o), f[i].n);
        fclose(o);
    }
}

/* Over seeded random trials, flips bytes in one file of a block (a burst of 4
 * bytes at one random offset, or 3 single bytes anywhere in the file), opens
 * the store and reads everything back: never a wrong sample, and the share
 * lost is printed per file; a burst must cost under burst_max, 3 bytes under
 * mean_max on average.  The goal is < 1% of the store per damage; before
 * the copy, a flip in index or meta lost the whole block, and before the
 * per-page sample cap a chunk page held a third of this one. */
static void rf_run(double burst_max, double mean_max)
{
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    static tsdb_sample_t s[RF_MAX_SAMPLES];
    char lb[64];
    for (int k = 0; k < rf_nseries; k++) {
        rf_samples(k, s);
        snprintf(lb, sizeof lb, "__name__=rf,job=%03d", k);
        append(db, lb, s, (size_t)rf_nsamples);
    }
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    char path[1024], id[64];
    block_file(dir, "meta", path, sizeof path);
    char *slash = strrchr(path, '/');
    *slash = 0;
    snprintf(id, sizeof id, "%s", strrchr(path, '/') + 1);
    *slash = '/';
    static const char *names[] = { "meta", "index", "chunks", "rollups", "rollups1h", "copy", "parity" };
    rf_file_t f[7];
    size_t nf = 0, total = 0;
    for (size_t i = 0; i < 7; i++) {
        snprintf(path, sizeof path, "%s/blocks/%s/%s", dir, id, names[i]);
        FILE *in = fopen(path, "rb");
        if (!in) continue; /* the copy or the parity, on code without them */
        struct stat st;
        assert_int_equal(fstat(fileno(in), &st), 0);
        snprintf(f[nf].name, sizeof f[nf].name, "%s", names[i]);
        f[nf].n = (size_t)st.st_size;
        f[nf].p = malloc(f[nf].n + 1);
        assert_int_equal(fread(f[nf].p, 1, f[nf].n, in), f[nf].n);
        fclose(in);
        total += f[nf++].n;
    }
    const double samples = (double)rf_nseries * rf_nsamples;
    printf("# block: %d series, %.0f samples, %zu bytes (%.3f bytes/sample)", rf_nseries, samples, total,
           (double)total / samples);
    for (size_t i = 0; i < nf; i++) printf(", %s %zu", f[i].name, f[i].n);
    printf("\n");
    strata_log_set_level(STRATA_LOG_ERROR + 1);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < nf; i++) {
        for (int mode = 0; mode < 2; mode++) {
            int trials = !strcmp(f[i].name, "chunks") ? 60 : 15;
            double sum = 0, worst = 0;
            for (int t = 0; t < trials; t++) {
                rf_restore(dir, id, f, nf);
                snprintf(path, sizeof path, "%s/blocks/%s/%s", dir, id, f[i].name);
                int fd = open(path, O_RDWR);
                assert_true(fd >= 0);
                size_t at = (size_t)(rf_next(&x) % f[i].n);
                for (int b = 0; b < (mode ? 3 : 4); b++) {
                    size_t o = mode ? (size_t)(rf_next(&x) % f[i].n) : at + (size_t)b;
                    if (o >= f[i].n) break;
                    unsigned char c = f[i].p[o] ^ (unsigned char)(1 + rf_next(&x) % 255);
                    assert_int_equal(pwrite(fd, &c, 1, (off_t)o), 1);
                }
                close(fd);
                db = open_db(dir, 0, 0, 0);
                double lost = (double)rf_lost(db) / samples;
                tsdb_close(db);
                sum += lost;
                if (lost > worst) worst = lost;
            }
            printf("# flips in %-9s %-18s %2d trials: lost %.3f%% on average, worst %.3f%%\n", f[i].name,
                   mode ? "3 bytes anywhere" : "a 4-byte burst", trials, 100 * sum / trials, 100 * worst);
            /* a burst is one damage (two pages at most, across a boundary) */
            if (!mode) assert_true(worst < burst_max);
            assert_true(sum / trials < mean_max);
        }
    }
    strata_log_set_level(STRATA_LOG_WARN);
    for (size_t i = 0; i < nf; i++) free(f[i].p);
    test_tmpdir_free(dir);
}

/* The soak's block: 391 GPU-like series x 720 samples at 10 s. */
static void test_random_block_flips(void **state)
{
    (void)state;
    rf_nseries = 391;
    rf_nsamples = 720;
    rf_step = 10000;
    rf_run(0.01, 0.01); /* the goal: < 1% of the store */
}

/* Few long series: 24 x 7200 samples at 1 s (2 h), so a series has chunks
 * of 4096 samples, each bigger than the page cap and alone in its page: a
 * page never splits a chunk, so a damage costs up to two chunks (4.7% of this
 * small block; 2,048-sample chunks would halve it at +32% bytes/sample). */
static void test_random_block_flips_long(void **state)
{
    (void)state;
    rf_nseries = 24;
    rf_nsamples = 7200;
    rf_step = 1000;
    rf_run(0.01, 0.01); /* the goal, with parity rebuilding a damaged page */
}

/* Pages of each block in dir: *small gets the count of the block holding
 * `small_n` samples, *big that of the other. */
static void pages_per_block(const char *dir, uint64_t small_n, size_t *small, size_t *big)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/blocks", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *e;
    int seen = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        uint8_t meta[64];
        snprintf(p, sizeof p, "%s/blocks/%s/meta", dir, e->d_name);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        assert_int_equal(fread(meta, 1, sizeof meta, f), sizeof meta);
        fclose(f);
        uint64_t ns;
        memcpy(&ns, meta + 32, 8);
        static long off[8192];
        snprintf(p, sizeof p, "%s/blocks/%s/chunks", dir, e->d_name);
        size_t np = page_offsets(p, off, 8192);
        *(ns == small_n ? small : big) = np;
        seen++;
    }
    closedir(d);
    assert_int_equal(seen, 2);
}

/* A chunk page holds at most 1024 samples while the store is small, and
 * up to 1/400 of the store once that is more: 400 constant series x 1000
 * samples (a store of 400k: one series a page), then x 8000 more samples
 * (a store of 3.6M: pages of up to 9000 samples, one series each, where a
 * fixed 1024 would cut each of its two chunks into a page of its own). */
static void test_page_cap_follows_store(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    char lb[64];
    for (int k = 0; k < 400; k++) {
        snprintf(lb, sizeof lb, "__name__=pc,job=%03d", k);
        append_range(db, lb, 1000000, 10000, 1000, 0);
    }
    assert_ok(tsdb_cut_head(db));
    static tsdb_sample_t s[8000];
    for (int k = 0; k < 400; k++) {
        snprintf(lb, sizeof lb, "__name__=pc,job=%03d", k);
        for (int i = 0; i < 8000; i++) s[i] = (tsdb_sample_t){ 1000000 + (int64_t)(1000 + i) * 10000, 80 };
        append(db, lb, s, 8000);
    }
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    size_t small = 0, big = 0;
    pages_per_block(dir, 400 * 1000, &small, &big);
    assert_int_equal(small, 400);
    assert_int_equal(big, 400);
    test_tmpdir_free(dir);
}

/* A block (version 4 on; 5 now) records the zero-run minimum it was built
 * with in its meta (64 bytes: the i64 before the CRC). */
static void test_meta_records_zero_run(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db_with(dir, 2 * MIN_MS, 0);
    append_range(db, "__name__=m", 1000, 15000, 100, 1);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    char path[1024];
    block_file(dir, "meta", path, sizeof path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t meta[128];
    size_t len = fread(meta, 1, sizeof meta, f);
    fclose(f);
    assert_int_equal(len, 64);
    uint32_t version;
    int64_t zero_run;
    memcpy(&version, meta + 4, 4);
    memcpy(&zero_run, meta + 52, 8);
    assert_int_equal(version, TSDB_BLOCK_VERSION);
    assert_int_equal(version, 5);
    assert_int_equal(zero_run, 2 * MIN_MS);
    test_tmpdir_free(dir);
}

/* The page_cache_bytes option sizes the process-wide page cache: pages larger
 * than a quarter of it are not kept, so a 1-byte cache holds nothing after a
 * read that fills the default one. */
static void test_page_cache_option(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db_with(dir, 0, 1);
    append_range(db, "__name__=m", 1000, 15000, 5000, 1);
    assert_ok(tsdb_cut_head(db));
    free(query(db, (tsdb_matcher_t[]){ M(EQ, "__name__", "m") }, 1, 0, INT64_MAX, 1));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.page_cache_bytes, 0);
    tsdb_close(db);
    db = open_db_with(dir, 0, 0); /* the default, 64 MiB */
    free(query(db, (tsdb_matcher_t[]){ M(EQ, "__name__", "m") }, 1, 0, INT64_MAX, 1));
    tsdb_get_stats(db, &st);
    assert_true(st.page_cache_bytes > 0);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* A block write that fails (here: the blocks directory replaced by a file, so
 * the block's directory cannot be made) is logged once, with the errno text,
 * and the cut returns STRATA_EIO. */
static void test_failed_block_write_logged_once(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=m", 1000, 15000, 10, 1);
    char blocks[1024], logpath[1024];
    snprintf(blocks, sizeof blocks, "%s/blocks", dir);
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    assert_int_equal(rmdir(blocks), 0);
    FILE *f = fopen(blocks, "w");
    assert_non_null(f);
    fclose(f);
    fflush(stderr);
    int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    int rc = tsdb_cut_head(db);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    assert_int_equal(rc, STRATA_EIO);
    f = fopen(logpath, "r");
    assert_non_null(f);
    char line[2048];
    int errors = 0, with_errno = 0;
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "level=error")) continue;
        errors++;
        with_errno += strstr(line, strerror(ENOTDIR)) != NULL;
    }
    fclose(f);
    assert_int_equal(errors, 1);
    assert_int_equal(with_errno, 1);
    unlink(blocks);
    assert_int_equal(mkdir(blocks, 0755), 0);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- a cut failing at each step (disk full) -------------------------------------- */

#define CUT_H (60 * MIN_MS)

/* Data in the windows [0,1h), [3h,4h), [6h,7h) (one series each, 60 samples)
 * and 9h..10h (61): a due cut writes three blocks, none merged by the
 * compaction rules, and keeps 9h..10h in the head. */
static const int64_t cut_starts[4] = { 0, 3 * CUT_H, 6 * CUT_H, 9 * CUT_H };
#define CUT_TOTAL (3 * 60 + 61)

static void cut_fill(tsdb_t *db)
{
    for (int i = 0; i < 4; i++) {
        char l[64];
        snprintf(l, sizeof l, "__name__=c,w=%d", i);
        append_range(db, l, cut_starts[i], MIN_MS, i == 3 ? 61 : 60, i * 100);
    }
}

static int cut_due(tsdb_t *db)
{
    pthread_mutex_lock(&db->maint_mu);
    int rc = compact_cut_if_due_locked(db);
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

static size_t count_suffix(const char *dir, const char *suffix)
{
    char p[600];
    snprintf(p, sizeof p, "%s/blocks", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    size_t n = 0, ls = strlen(suffix);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] != '.' && l >= ls && !strcmp(e->d_name + l - ls, suffix)) n++;
    }
    closedir(d);
    return n;
}

/* Every sample reads back, and head plus blocks hold each exactly once (a
 * duplicate would be merged away on read, so the counts are checked too);
 * every block dir on disk is a listed block, no temp dir is left. */
static void cut_check(tsdb_t *db, const char *dir)
{
    for (int i = 0; i < 4; i++) {
        char l[64], v[16];
        snprintf(l, sizeof l, "__name__=c,w=%d", i);
        snprintf(v, sizeof v, "%d", i);
        tsdb_matcher_t m[] = { M(EQ, "w", v) };
        char *want = expect_range(l, cut_starts[i], MIN_MS, i == 3 ? 61 : 60, i * 100);
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want);
        free(got);
        free(want);
    }
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    uint64_t in_blocks = 0;
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < db->nblocks; i++) in_blocks += db->blocks[i]->nsamples;
    size_t listed = db->nblocks;
    pthread_mutex_unlock(&db->blocks_mu);
    if (st.head_samples + in_blocks != CUT_TOTAL)
        print_message("head %llu blocks %llu listed %zu\n", (unsigned long long)st.head_samples,
                      (unsigned long long)in_blocks, listed);
    assert_int_equal(st.head_samples + in_blocks, CUT_TOTAL);
    assert_int_equal(count_suffix(dir, ".tmp"), 0);
    assert_int_equal(count_dir(dir, "blocks"), listed);
}

/* The disk filled during a head cut; once space was freed every retry wrote
 * the windows already cut again (the head was only trimmed when all windows
 * succeeded), filling the disk again.  For each step of a cut (every
 * create, write, fsync and rename of each block, opening it, the WAL
 * rotation and the checkpoint) the step fails with ENOSPC: the failed cut
 * leaves no temp dir and no block it did not list, the head still holds
 * every sample no block holds, the retry writes exactly the missing blocks
 * (three in all), and a reopen finds exactly them and the head. */
static void test_cut_fails_at_each_step(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, CUT_H, 0, 0);
    cut_fill(db);
    long before = atomic_load(&tsdb_fail_steps);
    assert_ok(cut_due(db));
    long steps = atomic_load(&tsdb_fail_steps) - before;
    cut_check(db, dir);
    assert_int_equal(count_dir(dir, "blocks"), 3);
    tsdb_close(db);
    test_tmpdir_free(dir);
    assert_true(steps > 20);
    for (long k = 1; k <= steps; k++) {
        dir = test_tmpdir_new();
        db = open_db(dir, CUT_H, 0, 0);
        cut_fill(db);
        atomic_store(&tsdb_fail_countdown, (int)k);
        int rc = cut_due(db);
        assert_int_equal(atomic_load(&tsdb_fail_countdown), 0);
        assert_int_equal(rc, STRATA_ENOSPC);
        cut_check(db, dir);
        assert_ok(cut_due(db)); /* space freed: the retry */
        cut_check(db, dir);
        assert_int_equal(count_dir(dir, "blocks"), 3);
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        assert_int_equal(st.head_samples, 61);
        assert_ok(cut_due(db)); /* nothing due: nothing written */
        assert_int_equal(count_dir(dir, "blocks"), 3);
        tsdb_close(db);
        /* a temp dir left by a crash is removed at open */
        char p[600];
        snprintf(p, sizeof p, "%s/blocks/01crashed.tmp", dir);
        assert_int_equal(mkdir(p, 0755), 0);
        db = open_db(dir, CUT_H, 0, 0);
        cut_check(db, dir);
        assert_int_equal(count_dir(dir, "blocks"), 3);
        tsdb_get_stats(db, &st);
        assert_int_equal(st.head_samples, 61); /* the WAL was checkpointed */
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

/* Samples below the boundary that arrive while a cut writes its blocks (a
 * client's backlog after an outage) made the series keep *all* its samples
 * below the boundary, so the next pass wrote them all again, and again at
 * every pass while the backlog lasted: each a full copy of the window.  Now
 * the head drops what the blocks hold and keeps only the late samples,
 * which the same pass then cuts into a (small, overlapping) block. */
static tsdb_t *late_db;
static long late_at;

static void late_append(long step)
{
    if (step != late_at) return;
    tsdb_sample_t s = { 58 * MIN_MS + 30000, 7.5 }; /* inside [0,1h), already written */
    tsdb_append_result_t res = append(late_db, "__name__=c,w=0", &s, 1);
    assert_int_equal(res.appended, 1);
}

static void test_cut_late_samples_not_rewritten(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, CUT_H, 0, 0);
    cut_fill(db);
    long before = atomic_load(&tsdb_fail_steps);
    late_db = db;
    late_at = before + 40; /* while the second or third window is written */
    tsdb_fail_step_hook = late_append;
    assert_ok(cut_due(db));
    tsdb_fail_step_hook = NULL;
    assert_true(atomic_load(&tsdb_fail_steps) - before > 40);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    /* the same pass goes on and cuts the late sample into a block of its own */
    assert_int_equal(st.head_samples, 61);
    assert_int_equal(count_dir(dir, "blocks"), 4);
    assert_ok(cut_due(db)); /* nothing more */
    uint64_t in_blocks = 0;
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < db->nblocks; i++) in_blocks += db->blocks[i]->nsamples;
    pthread_mutex_unlock(&db->blocks_mu);
    assert_int_equal(st.head_samples + in_blocks, CUT_TOTAL + 1);
    assert_int_equal(count_dir(dir, "blocks"), 4);
    tsdb_matcher_t m[] = { M(EQ, "w", "0") };
    char *got = query(db, m, 1, 58 * MIN_MS, 59 * MIN_MS, 1);
    char want[256];
    snprintf(want, sizeof want, "{__name__=c,w=0} %lld:%" PRIx64 " %lld:%" PRIx64 " %lld:%" PRIx64,
             (long long)(58 * MIN_MS), test_double_bits(58), (long long)(58 * MIN_MS + 30000),
             test_double_bits(7.5), (long long)(59 * MIN_MS), test_double_bits(59));
    assert_string_equal(got, want);
    free(got);
    tsdb_close(db);
    test_tmpdir_free(dir);

    /* the same through tsdb_cut_head (one window, no boundary) */
    dir = test_tmpdir_new();
    db = late_db = open_db(dir, CUT_H, 0, 0);
    append_range(db, "__name__=c,w=0", 0, MIN_MS, 60, 0);
    late_at = atomic_load(&tsdb_fail_steps) + 15; /* in the block's finish: after the copy */
    tsdb_fail_step_hook = late_append;
    assert_ok(tsdb_cut_head(db));
    tsdb_fail_step_hook = NULL;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 1);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    assert_ok(tsdb_cut_head(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 0);
    in_blocks = 0;
    pthread_mutex_lock(&db->blocks_mu);
    for (size_t i = 0; i < db->nblocks; i++) in_blocks += db->blocks[i]->nsamples;
    pthread_mutex_unlock(&db->blocks_mu);
    assert_int_equal(in_blocks, 61);
    got = query(db, m, 1, 58 * MIN_MS, 59 * MIN_MS, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_range_edges),
        cmocka_unit_test(test_block_old_versions_readable),
        cmocka_unit_test(test_meta_records_zero_run),
        cmocka_unit_test(test_page_cache_option),
        cmocka_unit_test(test_failed_block_write_logged_once),
        cmocka_unit_test(test_cut_fails_at_each_step),
        cmocka_unit_test(test_cut_late_samples_not_rewritten),
        cmocka_unit_test(test_stream_read_bypasses_cache),
        cmocka_unit_test(test_damaged_chunk_page),
        cmocka_unit_test(test_damaged_page_compaction),
        cmocka_unit_test(test_merge_streams_pages),
        cmocka_unit_test(test_parity_rebuilds_pages),
        cmocka_unit_test(test_corrupt_index_and_meta),
        cmocka_unit_test(test_random_block_flips),
        cmocka_unit_test(test_random_block_flips_long),
        cmocka_unit_test(test_page_cap_follows_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
