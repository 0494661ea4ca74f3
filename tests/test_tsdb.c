/*
 * test_tsdb.c: the storage engine through its public API (tsdb.h): the head,
 * appends, merging, compaction, retention, crashes and concurrency.  Blocks,
 * matchers and rollups have their own files (test_block.c, test_index.c,
 * test_rollup.c); the helpers are in test_tsdb_helpers.h.
 *
 * Query answers are rendered as text ("{k=v,...}" per series, "t:bits" per
 * sample, floats as raw bits) and compared with the text the input implies,
 * so any lost, duplicated, reordered or altered sample fails.  Every check
 * that holds for the head is repeated after a WAL replay, after a cut into a
 * block and after compaction.  The crash test SIGKILLs a forked writer at a
 * random moment; what it asserts does not depend on when the kill lands.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_tsdb_helpers.h"
#include "strata_log.h"
#include "tsdb.h"

/* ---- head, blocks, merge ------------------------------------------------------- */

static void check_merged(tsdb_t *db)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "up") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    char *want = expect_range("__name__=up,job=a", 1000, 1000, 15, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    /* a sub-range */
    got = query(db, m, 1, 4000, 9500, 1);
    want = expect_range("__name__=up,job=a", 4000, 1000, 6, 4);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static void test_head_block_merge(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=up,job=a", 1000, 1000, 10, 1); /* 1000..10000 */
    assert_ok(tsdb_cut_head(db));
    /* overlapping the block at 8000..10000 with identical values */
    append_range(db, "__name__=up,job=a", 8000, 1000, 8, 8); /* 8000..15000 */
    check_merged(db);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_merged(db);             /* replayed head + block */
    assert_ok(tsdb_cut_head(db)); /* two overlapping blocks */
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    check_merged(db);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_merged(db);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.min_time, 1000);
    assert_int_equal(st.max_time, 15000);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    check_merged(db);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_merged(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- append classification --------------------------------------------------------- */

static void test_ooo_duplicates_conflicts(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0); /* ooo window 10m */
    const char *L = "__name__=x";
    tsdb_sample_t a[] = { { 1000000, 1 } };
    tsdb_append_result_t r = append(db, L, a, 1);
    assert_int_equal(r.appended, 1);
    assert_int_equal(r.new_series, 1);
    assert_int_equal(r.first_rejected_series, SIZE_MAX);
    /* 500 s behind: inside the window; 700 s behind: too old; same t, same
     * value: duplicate; same t, other value: conflict */
    tsdb_sample_t b[] = { { 500000, 2 }, { 300000, 3 }, { 1000000, 1 }, { 1000000, 5 }, { 1001000, 4 } };
    r = append(db, L, b, 5);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.too_old, 1);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(r.conflicting, 1);
    assert_int_equal(r.new_series, 0);
    assert_int_equal(r.first_rejected_series, 0);
    assert_int_equal(r.first_rejected_error, STRATA_ETOOOLD); /* 300000 sorts first */
    /* an exact retry of an accepted batch is a no-op */
    tsdb_sample_t c[] = { { 500000, 2 }, { 1001000, 4 } };
    r = append(db, L, c, 2);
    assert_int_equal(r.appended, 0);
    assert_int_equal(r.duplicates, 2);
    /* duplicates and conflicts inside one batch */
    tsdb_sample_t d[] = { { 2000000, 7 }, { 2000000, 7 }, { 3000000, 8 }, { 3000000, 9 } };
    r = append(db, L, d, 4);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(r.conflicting, 1);
    assert_int_equal(r.first_rejected_error, STRATA_EDUPTS);
    /* a new series may start anywhere (backfill), in any order */
    tsdb_sample_t e[] = { { 5000, 1 }, { 1000, 0 } };
    r = append(db, "__name__=y", e, 2);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.new_series, 1);

    const char *want =
        "{__name__=x} 500000:4000000000000000 1000000:3ff0000000000000 1001000:4010000000000000"
        " 2000000:401c000000000000 3000000:4020000000000000"
        "{__name__=y} 1000:0 5000:3ff0000000000000";
    tsdb_matcher_t m[] = { M(RE, "__name__", "x|y") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.head_series, 2);
    assert_int_equal(st.head_samples, 7);
    assert_int_equal(st.samples_appended, 7);
    assert_int_equal(st.min_time, 1000);
    assert_int_equal(st.max_time, 3000000);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    /* the replayed head still knows the newest sample: too old stays too old */
    tsdb_sample_t f[] = { { 3000000 - 600001, 1 }, { 3000000, 9 } };
    r = append(db, L, f, 2);
    assert_int_equal(r.too_old, 1);
    assert_int_equal(r.conflicting, 1);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void test_many_samples_seal_and_ooo(void **state)
{
    (void)state;
    /* enough samples to seal several head chunks, with out-of-order ones
     * between them, read back in order from head, WAL and block */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    enum { N = 1000 };
    tsdb_sample_t *s = malloc(N * sizeof *s);
    size_t k = 0;
    for (int i = 0; i < N; i += 2) s[k++] = (tsdb_sample_t){ 10000 + i * 500, i * 0.5 };
    append(db, "__name__=seal", s, k);
    k = 0;
    for (int i = N - 1; i > 0; i -= 2) s[k++] = (tsdb_sample_t){ 10000 + i * 500, i * 0.5 };
    tsdb_append_result_t r = append(db, "__name__=seal", s, k);
    assert_int_equal(r.appended, 500); /* all within the 10 min window: 500 s span */
    /* everything again: found in merged chunks, small chunks, the open
     * buffer and the out-of-order buffer alike */
    tsdb_sample_t *all = malloc(N * sizeof *all);
    for (int i = 0; i < N; i++) all[i] = (tsdb_sample_t){ 10000 + i * 500, i * 0.5 };
    r = append(db, "__name__=seal", all, N);
    assert_int_equal(r.duplicates, N);
    assert_int_equal(r.appended, 0);
    all[7].v = -1;
    all[500].v = -1;
    r = append(db, "__name__=seal", all, N);
    assert_int_equal(r.conflicting, 2);
    assert_int_equal(r.duplicates, N - 2);
    free(all);
    strbuf_t want = { 0 };
    sb_printf(&want, "{__name__=seal}");
    for (int i = 0; i < N; i++) sb_printf(&want, " %d:%" PRIx64, 10000 + i * 500, test_double_bits(i * 0.5));
    tsdb_matcher_t m[] = { M(EQ, "__name__", "seal") };
    for (int round = 0; round < 3; round++) {
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want.s);
        free(got);
        tsdb_close(db);
        db = open_db(dir, 0, 0, 0);
        if (round == 1) assert_ok(tsdb_cut_head(db));
    }
    free(want.s);
    free(s);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void test_stale_and_nan_bit_exact(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_sample_t s[] = {
        { 1000, test_bits_double(TSDB_STALE_NAN_BITS) },
        { 2000, test_bits_double(0x7ff8000000000abcULL) }, /* quiet NaN with payload */
        { 3000, test_bits_double(0xfff0000000000001ULL) }, /* negative signalling NaN */
        { 4000, -0.0 },
        { 5000, INFINITY },
        { 6000, test_bits_double(1) }, /* smallest subnormal */
        { 7000, 0.1 },
    };
    size_t n = sizeof s / sizeof *s;
    tsdb_append_result_t r = append(db, "__name__=nan", s, n);
    assert_int_equal(r.appended, n);
    /* re-sending them is a duplicate: compared by bits, not == */
    r = append(db, "__name__=nan", s, n);
    assert_int_equal(r.duplicates, n);
    /* a different NaN payload at the same time conflicts */
    tsdb_sample_t other = { 2000, test_bits_double(0x7ff8000000000abdULL) };
    r = append(db, "__name__=nan", &other, 1);
    assert_int_equal(r.conflicting, 1);
    check_bits(db, "nan", s, n);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_bits(db, "nan", s, n); /* WAL replay */
    assert_ok(tsdb_cut_head(db));
    check_bits(db, "nan", s, n); /* block */
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_bits(db, "nan", s, n);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- compaction and retention ----------------------------------------------------------- */

static void test_compaction_overlap_and_adjacent(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    const int64_t H = 60 * MIN_MS;
    tsdb_t *db = open_db(dir, H, 0, 0); /* compaction window 3h */
    /* window 0: [0,3h): three blocks, two of them overlapping */
    append_range(db, "__name__=a", 0, MIN_MS, 31, 0); /* 0..30m */
    assert_ok(tsdb_cut_head(db));
    append_range(db, "__name__=a", 20 * MIN_MS, MIN_MS, 21, 20); /* 20..40m: overlaps, same values */
    assert_ok(tsdb_cut_head(db));
    append_range(db, "__name__=a", 2 * H, MIN_MS, 10, 120); /* 2h..2h9m */
    assert_ok(tsdb_cut_head(db));
    /* window 1: one block, left alone */
    append_range(db, "__name__=a", 3 * H, MIN_MS, 10, 180);
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 4);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(count_dir(dir, "blocks"), 2);
    strbuf_t want = { 0 };
    sb_printf(&want, "{__name__=a}");
    for (int i = 0; i <= 40; i++) sb_printf(&want, " %lld:%" PRIx64, i * MIN_MS, test_double_bits(i));
    for (int i = 0; i < 10; i++)
        sb_printf(&want, " %lld:%" PRIx64, 2 * H + i * MIN_MS, test_double_bits(120 + i));
    for (int i = 0; i < 10; i++)
        sb_printf(&want, " %lld:%" PRIx64, 3 * H + i * MIN_MS, test_double_bits(180 + i));
    tsdb_matcher_t m[] = { M(EQ, "__name__", "a") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want.s);
    free(got);
    /* rollups of the compacted block were rebuilt from the merged samples */
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, H, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t n;
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].count, 40);                    /* 1..40 min: t = 0 belongs to (-1h, 0] */
    assert_true(p[0].sum == 820 && p[0].increase == 40); /* from the sample at t = 0 */
    tsdb_series_set_free(set);
    tsdb_close(db);
    db = open_db(dir, H, 0, 0);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want.s);
    free(got);
    assert_ok(tsdb_compact(db)); /* nothing left to do */
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    free(want.s);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* 50 hours cut hour by hour (1 h blocks, so windows of 3 h, then 1 day and
 * 7 days): a day with a block already past it becomes one block, the last
 * hours stay in 3 h windows; a retention of 2 days caps blocks at 4.8 h. */
static void test_compaction_levels(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    for (int capped = 0; capped < 2; capped++) {
        char *dir = test_tmpdir_new();
        tsdb_t *db = open_db(dir, H, capped ? 48 * H : 0, 0);
        for (int h = 0; h <= 50; h++) {
            append_range(db, "__name__=a", h * H, 10 * MIN_MS, h == 50 ? 1 : 6, h * 6);
            assert_ok(tsdb_cut_head(db));
        }
        assert_ok(tsdb_compact(db));
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        /* [0,24h) [24h,48h) [48h,51h); capped: 3 h windows only, 17 of them */
        assert_int_equal(st.blocks, capped ? 17 : 3);
        strbuf_t want = { 0 };
        sb_printf(&want, "{__name__=a}");
        for (int i = 0; i <= 300; i++)
            sb_printf(&want, " %lld:%" PRIx64, i * 10 * MIN_MS, test_double_bits(i));
        tsdb_matcher_t m[] = { M(EQ, "__name__", "a") };
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want.s);
        free(got);
        if (!capped) {
            /* rollups of a day block: 24 points, from its merged samples */
            tsdb_series_set_t *set;
            assert_ok(tsdb_select(db, m, 1, 0, 24 * H, &set));
            assert_int_equal(tsdb_series_set_next(set), 1);
            const tsdb_rollup_point_t *p;
            size_t n;
            assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
            assert_int_equal(n, 24);
            assert_true(p[23].t == 24 * H && p[23].count == 6 && p[23].last == 144);
            tsdb_series_set_free(set);
        }
        free(want.s);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

static void make_three_blocks(tsdb_t *db, uint64_t sizes[3])
{
    const int64_t H = 60 * MIN_MS;
    uint64_t before = 0;
    for (int b = 0; b < 3; b++) {
        append_range(db, "__name__=r", b * 3 * H, MIN_MS, 30, b * 100);
        assert_ok(tsdb_cut_head(db));
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        sizes[b] = st.block_bytes - before;
        before = st.block_bytes;
    }
}

static void test_retention_time_and_size(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    /* by time: blocks at 0h, 3h, 6h (30 min each); newest sample 6h29m;
     * retention 5h drops blocks ending before 1h29m: the first one */
    char *dir = test_tmpdir_new();
    uint64_t sizes[3];
    tsdb_t *db = open_db(dir, H, 5 * H, 0);
    make_three_blocks(db, sizes);
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(st.min_time, 3 * H);
    assert_int_equal(st.max_time, 6 * H + 29 * MIN_MS);
    assert_int_equal(count_dir(dir, "blocks"), 2);
    tsdb_close(db);
    test_tmpdir_free(dir);

    /* by size: room for exactly the two newest blocks */
    dir = test_tmpdir_new();
    db = open_db(dir, H, 0, 0);
    make_three_blocks(db, sizes);
    tsdb_close(db);
    db = open_db(dir, H, 0, sizes[1] + sizes[2]);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(st.block_bytes, sizes[1] + sizes[2]);
    assert_int_equal(st.min_time, 3 * H);
    tsdb_close(db);
    /* one byte less: only the newest stays */
    db = open_db(dir, H, 0, sizes[1] + sizes[2] - 1);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.min_time, 6 * H);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "r") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    char *want = expect_range("__name__=r", 6 * H, MIN_MS, 30, 200);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    test_tmpdir_free(dir);
}

static void test_dropped_block_outlives_reader(void **state)
{
    (void)state;
    /* A reader keeps a block it selected readable after retention dropped
     * it; the directory goes when the reader lets go. */
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, 0, 0);
    append_range(db, "__name__=old", 0, MIN_MS, 10, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    db = open_db(dir, H, 1, 0); /* retention 1 ms: the block is past it */
    tsdb_matcher_t m[] = { M(EQ, "__name__", "old") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    append_range(db, "__name__=new", 10 * H, MIN_MS, 1, 0); /* newest sample moves on */
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 0);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_sample_t *s;
    size_t n;
    assert_ok(tsdb_series_set_samples(set, &s, &n));
    assert_int_equal(n, 10);
    assert_int_equal(s[9].t, 9 * MIN_MS);
    tsdb_series_set_free(set);
    assert_int_equal(count_dir(dir, "blocks"), 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 0);
    assert_string_equal(got, "");
    free(got);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- crash ------------------------------------------------------------------------------ */

#define CRASH_PER_BATCH 10

static void crash_child(const char *dir, int start, int wfd)
{
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_ALWAYS;
    o.wal_segment_bytes = 64 * 1024; /* several segments per round */
    tsdb_t *db = NULL;
    if (tsdb_open(&o, &db) != 0) _exit(2);
    tsdb_label_t l1[] = { { "__name__", "crash" }, { "part", "a" } };
    tsdb_label_t l2[] = { { "__name__", "crash" }, { "part", "b" } };
    for (int b = start;; b++) {
        tsdb_sample_t s[CRASH_PER_BATCH];
        for (int j = 0; j < CRASH_PER_BATCH; j++) {
            int64_t t = (int64_t)b * CRASH_PER_BATCH + j;
            s[j] = (tsdb_sample_t){ t * 1000, (double)t };
        }
        tsdb_series_input_t in[] = { { l1, 2, s, CRASH_PER_BATCH }, { l2, 2, s, CRASH_PER_BATCH } };
        tsdb_append_result_t r;
        if (tsdb_append(db, in, 2, &r) != 0) _exit(3);
        if (write(wfd, &b, sizeof b) != sizeof b) _exit(4);
        if (b % 40 == 39 && tsdb_cut_head(db) != 0) _exit(5); /* checkpoints under fire too */
    }
}

/* Retention's boundary (tsdb/compact.c, compact_retention_locked; docs/storage.md): a block is
 * dropped when its maxt is older than newest - retention_ms, strictly.  A block whose maxt is
 * exactly newest - retention stays; one millisecond newer data drops it.  So `<` and `<=` cannot
 * both pass. */
static void test_retention_boundary_exact(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS, R = 5 * H;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, R, 0);
    append_range(db, "__name__=old", H - 9 * MIN_MS, MIN_MS, 10, 1); /* maxt = H */
    assert_ok(tsdb_cut_head(db));
    assert_int_equal(count_dir(dir, "blocks"), 1);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "old") };

    append_range(db, "__name__=new", H + R, MIN_MS, 1, 1); /* newest = H + R: maxt == newest - R */
    assert_ok(tsdb_compact(db));
    check_query(db, m, 1, "{__name__=old}");
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.min_time, H - 9 * MIN_MS);

    append_range(db, "__name__=new", H + R + 1, MIN_MS, 1, 2); /* newest = H + R + 1: maxt < newest - R */
    assert_ok(tsdb_compact(db));
    check_query(db, m, 1, "");
    tsdb_get_stats(db, &st);
    assert_int_equal(st.min_time, H + R);
    tsdb_close(db);
    /* and the block's directory is gone once closed, not only hidden */
    db = open_db(dir, H, R, 0);
    check_query(db, m, 1, "");
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void test_crash_recovery(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    int acked = -1; /* highest acknowledged batch; batches are acked in order */
    srand((unsigned)time(NULL));
    for (int round = 0; round < 6; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            strata_log_set_level(STRATA_LOG_ERROR + 1);
            crash_child(dir, acked + 1, p[1]);
            _exit(0);
        }
        close(p[1]);
        /* Let it run a random while, then kill it mid-flight. */
        int want = 5 + rand() % 60, got = 0, b;
        while (got < want && read(p[0], &b, sizeof b) == sizeof b) {
            acked = b;
            got++;
        }
        usleep((useconds_t)(rand() % 3000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        while (read(p[0], &b, sizeof b) == sizeof b) acked = b;
        close(p[0]);
    }
    assert_true(acked >= 30);
    /* Every acknowledged sample is there; nothing beyond the one batch that
     * was in flight at the last kill (present wholly, partly or not at all),
     * and every present sample has exactly the value that was written. */
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "crash") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    for (int part = 0; part < 2; part++) {
        assert_int_equal(tsdb_series_set_next(set), 1);
        const tsdb_sample_t *s;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &s, &n));
        size_t need = (size_t)(acked + 1) * CRASH_PER_BATCH;
        assert_true(n >= need);
        assert_true(n <= need + CRASH_PER_BATCH);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(s[i].t, (int64_t)i * 1000);
            assert_true(s[i].v == (double)i);
        }
    }
    assert_int_equal(tsdb_series_set_next(set), 0);
    tsdb_series_set_free(set);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- maintenance pass and concurrency ------------------------------------------------------ */

static void test_due_cut_in_compact(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, 0, 0);
    /* 0..1h30m: spans 1.5 block durations, not more: nothing is due */
    append_range(db, "__name__=d", 0, MIN_MS, 91, 0);
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 0);
    /* up to 2h: the aligned range [0, 1h) is cut, the rest stays in the head */
    append_range(db, "__name__=d", 91 * MIN_MS, MIN_MS, 30, 91);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.head_samples, 61); /* 1h..2h */
    assert_int_equal(st.min_time, 0);
    assert_int_equal(st.max_time, 120 * MIN_MS);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "d") };
    char *want = expect_range("__name__=d", 0, MIN_MS, 121, 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_close(db);
    db = open_db(dir, H, 0, 0); /* the checkpoint holds exactly the head */
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 61);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* A head that fell far behind (a fast backfill of 30 h, 1 h blocks) is drained
 * in one pass, one block per aligned window and one checkpoint, down to the
 * last 1.5 block durations: 29h..30h stays in the head. */
static void test_backfill_cut_one_pass(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, 0, 0);
    append_range(db, "__name__=b", 0, MIN_MS, 30 * 60 + 1, 0);
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 61); /* 29h..30h inclusive */
    assert_true(st.blocks >= 1);
    assert_int_equal(st.min_time, 0);
    assert_int_equal(st.max_time, 30 * H);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "b") };
    char *want = expect_range("__name__=b", 0, MIN_MS, 30 * 60 + 1, 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_close(db);
    db = open_db(dir, H, 0, 0);
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 61);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* One sample far outside the expected range (at 1 ms, or at INT64_MIN) used to
 * pin the cut windows to the epoch: the cut walked every empty window between
 * it and now (or none at all: the span overflowed), so an 8 h backfill made no
 * block and the head and the WAL grew without bound.  The cut now skips empty
 * ranges: the ancient sample gets its own block, the backfill its usual ones. */
static void test_ancient_sample_does_not_block_cut(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS, bd = 2 * H;
    const int64_t T0 = 1700000000000LL / (6 * H) * (6 * H); /* 2023, aligned to 3 block durations */
    const int64_t ancient[] = { 1, INT64_MIN, -5 * 86400000LL };
    for (size_t c = 0; c < sizeof ancient / sizeof *ancient; c++) {
        char *dir = test_tmpdir_new();
        tsdb_t *db = open_db(dir, bd, 0, 0);
        tsdb_sample_t old = { ancient[c], 42.0 };
        tsdb_append_result_t r = append(db, "__name__=a", &old, 1);
        assert_int_equal(r.appended, 1);
        /* 8 h of minutely samples on the same series and on another one */
        append_range(db, "__name__=a", T0, MIN_MS, 8 * 60 + 1, 0);
        append_range(db, "__name__=b", T0, MIN_MS, 8 * 60 + 1, 0);
        assert_ok(tsdb_compact(db));
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        /* cut: the ancient window, then [T0, T0+6h) in three windows, which
         * compaction merges (one 3 x block_duration window); 6h..8h stays */
        assert_int_equal(st.blocks, 2);
        assert_int_equal(st.head_samples, 2 * (2 * 60 + 1));
        assert_int_equal(st.min_time, ancient[c]);
        assert_int_equal(st.max_time, T0 + 8 * H);
        tsdb_matcher_t m[] = { M(RE, "__name__", "a|b") };
        strbuf_t want = { 0 };
        char *ra = expect_range("__name__=a", T0, MIN_MS, 8 * 60 + 1, 0);
        char *rb = expect_range("__name__=b", T0, MIN_MS, 8 * 60 + 1, 0);
        sb_printf(&want, "{__name__=a} %" PRId64 ":%" PRIx64 "%s%s", ancient[c], test_double_bits(42.0),
                  ra + strlen("{__name__=a}"), rb);
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want.s);
        free(got);
        /* the checkpoint holds the head only: replay is bounded */
        tsdb_close(db);
        db = open_db(dir, bd, 0, 0);
        tsdb_get_stats(db, &st);
        assert_int_equal(st.blocks, 2);
        assert_int_equal(st.head_samples, 2 * (2 * 60 + 1));
        got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want.s);
        free(got);
        /* a later backfill keeps being cut */
        append_range(db, "__name__=b", T0 + 8 * H + MIN_MS, MIN_MS, 4 * 60, 8 * 60 + 1);
        assert_ok(tsdb_compact(db));
        tsdb_get_stats(db, &st);
        assert_true(st.head_samples <= 2 * (3 * 60 + 1));
        assert_ok(tsdb_cut_head(db));
        tsdb_get_stats(db, &st);
        assert_int_equal(st.head_samples, 0);
        free(ra);
        free(rb);
        free(want.s);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

#define CONC_N       1500
#define CONC_WRITERS 2

struct conc {
    tsdb_t *db;
    atomic_int acked[CONC_WRITERS];
    atomic_int writers_done;
    atomic_int failures;
};

struct conc_arg {
    struct conc *c;
    int id;
};

static void *conc_writer(void *arg)
{
    struct conc *c = ((struct conc_arg *)arg)->c;
    int id = ((struct conc_arg *)arg)->id;
    char val[8];
    snprintf(val, sizeof val, "%d", id);
    tsdb_label_t l[] = { { "__name__", "conc" }, { "w", val } };
    for (int i = 0; i < CONC_N; i++) {
        tsdb_sample_t s = { (int64_t)i * 1000, (double)i };
        tsdb_series_input_t in = { l, 2, &s, 1 };
        tsdb_append_result_t r;
        if (tsdb_append(c->db, &in, 1, &r) != 0 || r.appended != 1) {
            atomic_fetch_add(&c->failures, 1);
            break;
        }
        atomic_store(&c->acked[id], i + 1);
    }
    atomic_fetch_add(&c->writers_done, 1);
    return NULL;
}

/* Every select sees, for each writer, at least every sample acknowledged
 * before it started, in order, each once, with its value. */
static int conc_check(tsdb_t *db, const int *before)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "conc") };
    tsdb_series_set_t *set;
    if (tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set) != 0) return 0;
    int ok = 1, seen[CONC_WRITERS] = { 0 };
    while (ok && tsdb_series_set_next(set) == 1) {
        size_t nl, n;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *s;
        int w = atoi(l[1].value);
        if (tsdb_series_set_samples(set, &s, &n) != 0 || w < 0 || w >= CONC_WRITERS) {
            ok = 0;
            break;
        }
        seen[w] = 1;
        if ((int)n < before[w]) ok = 0;
        for (size_t i = 0; ok && i < n; i++) ok = s[i].t == (int64_t)i * 1000 && s[i].v == (double)i;
    }
    for (int w = 0; w < CONC_WRITERS; w++)
        if (before[w] && !seen[w]) ok = 0;
    tsdb_series_set_free(set);
    return ok;
}

static void test_concurrent_append_select_cut(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    struct conc c = { .db = open_db(dir, 0, 0, 0) };
    pthread_t th[CONC_WRITERS];
    struct conc_arg args[CONC_WRITERS];
    for (int w = 0; w < CONC_WRITERS; w++) {
        args[w] = (struct conc_arg){ &c, w };
        assert_int_equal(pthread_create(&th[w], NULL, conc_writer, &args[w]), 0);
    }
    int checks = 0, bad = 0, cuts = 0;
    while (atomic_load(&c.writers_done) < CONC_WRITERS) {
        int before[CONC_WRITERS];
        for (int w = 0; w < CONC_WRITERS; w++) before[w] = atomic_load(&c.acked[w]);
        bad += !conc_check(c.db, before);
        checks++;
        if (checks % 4 == 0 && cuts < 8) {
            assert_ok(tsdb_cut_head(c.db));
            cuts++;
        }
        if (checks % 9 == 0) assert_ok(tsdb_compact(c.db));
    }
    for (int w = 0; w < CONC_WRITERS; w++) pthread_join(th[w], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    assert_int_equal(bad, 0);
    int all[CONC_WRITERS];
    for (int w = 0; w < CONC_WRITERS; w++) all[w] = CONC_N;
    assert_true(conc_check(c.db, all));
    assert_ok(tsdb_cut_head(c.db));
    assert_ok(tsdb_compact(c.db));
    assert_true(conc_check(c.db, all));
    tsdb_close(c.db);
    c.db = open_db(dir, 0, 0, 0);
    assert_true(conc_check(c.db, all));
    tsdb_close(c.db);
    test_tmpdir_free(dir);
}

static void test_background_cut(void **state)
{
    (void)state;
    /* The background thread's first pass finds a head spanning 2h with 1h
     * blocks and cuts [0, 1h).  Liveness only: it waits for the block (up
     * to 20 s, normally about one second), it asserts no duration. */
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.block_duration_ms = H;
    o.fsync = TSDB_FSYNC_NEVER;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    append_range(db, "__name__=bg", 0, MIN_MS, 121, 0);
    tsdb_stats_t st;
    for (int i = 0; i < 400; i++) {
        tsdb_get_stats(db, &st);
        if (st.blocks) break;
        usleep(50000);
    }
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.head_samples, 61);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "bg") };
    char *want = expect_range("__name__=bg", 0, MIN_MS, 121, 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void count_fsync(double seconds, void *ctx)
{
    if (seconds >= 0) (*(int *)ctx)++;
}

static void test_fsync_always_and_observer(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_ALWAYS;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    int calls = 0;
    tsdb_set_fsync_observer(db, count_fsync, &calls);
    tsdb_stats_t before, after;
    tsdb_get_stats(db, &before);
    for (int i = 0; i < 3; i++) append_range(db, "__name__=f", i * 1000, 1, 1, i);
    tsdb_get_stats(db, &after);
    /* every acknowledged batch was fsynced, and every fsync was observed */
    assert_true(after.wal_fsyncs - before.wal_fsyncs >= 3);
    assert_int_equal(calls, (int)(after.wal_fsyncs - before.wal_fsyncs));
    assert_true(after.wal_fsync_seconds_total >= before.wal_fsync_seconds_total);
    assert_int_equal(after.samples_appended, 3);
    tsdb_set_fsync_observer(db, NULL, NULL);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- misc --------------------------------------------------------------------------------- */

static void test_lock_and_stats(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    pid_t pid = fork();
    if (pid == 0) {
        /* flock is per open file description: another process must fail */
        tsdb_t *db2 = NULL;
        strata_log_set_level(STRATA_LOG_ERROR + 1);
        _exit(tsdb_open(&o, &db2) == STRATA_ELOCKED ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.series, 0);
    assert_int_equal(st.blocks, 0);
    assert_true(st.min_time == INT64_MAX && st.max_time == INT64_MIN);
    assert_int_equal(st.replaying, 0);
    append_range(db, "__name__=a,x=1", 1000, 1000, 3, 0);
    append_range(db, "__name__=a,x=2", 2000, 1000, 2, 0);
    assert_ok(tsdb_sync(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.head_series, 2);
    assert_int_equal(st.head_samples, 5);
    assert_int_equal(st.min_time, 1000);
    assert_int_equal(st.max_time, 3000);
    assert_true(st.head_bytes > 0);
    assert_true(st.wal_bytes > 0);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_block_merge),
        cmocka_unit_test(test_ooo_duplicates_conflicts),
        cmocka_unit_test(test_many_samples_seal_and_ooo),
        cmocka_unit_test(test_stale_and_nan_bit_exact),
        cmocka_unit_test(test_compaction_overlap_and_adjacent),
        cmocka_unit_test(test_compaction_levels),
        cmocka_unit_test(test_retention_time_and_size),
        cmocka_unit_test(test_dropped_block_outlives_reader),
        cmocka_unit_test(test_retention_boundary_exact),
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_lock_and_stats),
        cmocka_unit_test(test_due_cut_in_compact),
        cmocka_unit_test(test_backfill_cut_one_pass),
        cmocka_unit_test(test_ancient_sample_does_not_block_cut),
        cmocka_unit_test(test_concurrent_append_select_cut),
        cmocka_unit_test(test_background_cut),
        cmocka_unit_test(test_fsync_always_and_observer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
