/*
 * test_rollup.c: 5m and 1h rollups through the public API: every field
 * against a brute-force summary of its interval, across the head, blocks,
 * source boundaries and compaction, and the rollup_zero_run_ms option.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_tsdb_helpers.h"
#include "strata_log.h"
#include "tsdb.h"

/* k = 1..120 minutes, v = k up to 70, then a counter reset: v = k - 70;
 * a stale marker at 30.5 min (excluded from every field). */
static void rollup_input(tsdb_sample_t *s, size_t *n, int from_k, int to_k)
{
    *n = 0;
    for (int k = from_k; k <= to_k; k++) {
        s[(*n)++] = (tsdb_sample_t){ k * MIN_MS, k <= 70 ? k : k - 70 };
        if (k == 30)
            s[(*n)++] = (tsdb_sample_t){ 30 * MIN_MS + 30000, test_bits_double(TSDB_STALE_NAN_BITS) };
    }
}

static void check_rollups(tsdb_t *db)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "ctr") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, 120 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t n;
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
    assert_int_equal(n, 2);
    assert_int_equal(p[0].t, 60 * MIN_MS);
    assert_int_equal(p[0].count, 60);
    assert_true(p[0].sum == 1830 && p[0].min == 1 && p[0].max == 60);
    assert_true(p[0].first == 1 && p[0].first_t == MIN_MS && p[0].last == 60 && p[0].last_t == 60 * MIN_MS);
    assert_true(p[0].increase == 59);
    assert_int_equal(p[1].t, 120 * MIN_MS);
    assert_int_equal(p[1].count, 60);
    assert_true(p[1].sum == 655 + 1275 && p[1].min == 1 && p[1].max == 70);
    assert_true(p[1].first == 61 && p[1].first_t == 61 * MIN_MS && p[1].last == 50 &&
                p[1].last_t == 120 * MIN_MS);
    assert_true(p[1].increase == 60); /* 60->70: 10, reset to 1: +1, 1->50: +49 */

    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_5M, &p, &n));
    assert_int_equal(n, 24);
    for (size_t i = 0; i < n; i++) {
        int k0 = (int)i * 5 + 1; /* minutes k0..k0+4 */
        double v[5], sum = 0, mn = INFINITY, mx = -INFINITY;
        for (int j = 0; j < 5; j++) {
            v[j] = k0 + j <= 70 ? k0 + j : k0 + j - 70;
            sum += v[j];
            mn = v[j] < mn ? v[j] : mn;
            mx = v[j] > mx ? v[j] : mx;
        }
        double prev = k0 - 1 <= 70 ? k0 - 1 : k0 - 1 - 70;
        double inc = i == 0 ? 4 : 0;
        if (i > 0)
            for (int j = 0; j < 5; j++) {
                inc += v[j] >= prev ? v[j] - prev : v[j];
                prev = v[j];
            }
        assert_int_equal(p[i].t, (int64_t)(i + 1) * 5 * MIN_MS);
        assert_int_equal(p[i].count, 5);
        assert_true(p[i].sum == sum);
        assert_true(p[i].min == mn && p[i].max == mx);
        assert_true(p[i].first == v[0] && p[i].first_t == k0 * MIN_MS);
        assert_true(p[i].last == v[4] && p[i].last_t == (k0 + 4) * MIN_MS);
        assert_true(p[i].increase == inc);
    }
    assert_true(p[14].increase == 5 && p[14].sum == 1 + 2 + 3 + 4 + 5); /* (70, 75]: the reset */
    assert_err(tsdb_series_set_rollups(set, 1000, &p, &n), STRATA_EINVAL);
    tsdb_series_set_free(set);

    /* a narrower range keeps only the intervals that lie inside it */
    assert_ok(tsdb_select(db, m, 1, 10 * MIN_MS + 1, 30 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_5M, &p, &n));
    assert_int_equal(n, 4);
    assert_int_equal(p[0].t, 15 * MIN_MS);
    assert_int_equal(p[3].t, 30 * MIN_MS);
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
    assert_int_equal(n, 0);
    tsdb_series_set_free(set);
}

static void test_rollups(void **state)
{
    (void)state;
    tsdb_sample_t s[130];
    size_t n;
    /* head only */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    rollup_input(s, &n, 1, 120);
    assert_int_equal(append(db, "__name__=ctr", s, n).appended, 121);
    check_rollups(db);
    /* block only (stored rollups) */
    assert_ok(tsdb_cut_head(db));
    check_rollups(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
    /* first hour in a block, second in the head: stored + computed, the
     * counter carried across the boundary */
    dir = test_tmpdir_new();
    db = open_db(dir, 0, 0, 0);
    rollup_input(s, &n, 1, 60);
    append(db, "__name__=ctr", s, n);
    assert_ok(tsdb_cut_head(db));
    rollup_input(s, &n, 61, 120);
    append(db, "__name__=ctr", s, n);
    check_rollups(db);
    /* two adjacent blocks */
    assert_ok(tsdb_cut_head(db));
    check_rollups(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Random series (regular scrapes with gaps, runs of zeros, counter-like drops,
 * stale markers) stored as two blocks and the head, split at random points
 * (inside intervals too), then as one compacted block: every field equals
 * the brute-force summary of its interval. */
static void test_rollup_hold_fields(void **state)
{
    (void)state;
    static const double vals[] = { 0, 0, 0, 1, 2, 3, 7, 0.5 };
    static tsdb_sample_t s[2000];
    for (unsigned trial = 0; trial < 40; trial++) {
        srand(trial + 1);
        size_t n = 0;
        int64_t t = (rand() % 20) * 1000;
        double v = 0;
        while (t < 4 * 60 * MIN_MS && n < 1990) {
            int r = rand() % 100;
            if (r < 3)
                s[n++] = (tsdb_sample_t){ t, test_bits_double(TSDB_STALE_NAN_BITS) };
            else {
                if (rand() % 6 == 0) v = vals[rand() % 8]; /* mostly held, sometimes a new value */
                s[n++] = (tsdb_sample_t){ t, v };
            }
            t += r < 90 ? 15000 : r < 97 ? 1000 * (1 + rand() % 600) : 1000 * (rand() % 3600 + 1);
        }
        char *dir = test_tmpdir_new();
        tsdb_t *db = open_db(dir, 0, 0, 0);
        size_t a = (size_t)rand() % n, b = a + (size_t)rand() % (n - a);
        append(db, "__name__=h", s, a);
        assert_ok(tsdb_cut_head(db));
        append(db, "__name__=h", s + a, b - a);
        assert_ok(tsdb_cut_head(db));
        append(db, "__name__=h", s + b, n - b);
        check_hold_fields(db, s, n, TSDB_ROLLUP_5M, trial);
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, trial);
        assert_ok(tsdb_cut_head(db));
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, trial);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

/* Every 1h point's zero_inner_long is consistent with the open store's
 * rollup_zero_run_ms, whatever the blocks were built with: old blocks
 * (versions 1 and 2: 5 minutes) and a new one written under 5 minutes, read
 * under 2 and 9 minutes; a block written under 2 minutes read under 5. */
static void test_rollup_zero_run_option(void **state)
{
    (void)state;
    static tsdb_sample_t s[500];
    size_t n = fixture_samples(s); /* inner zero runs of 10 minutes */
    for (int f = 0; f < 2; f++) {
        char *dir = test_tmpdir_new();
        fixture_copy(dir, f);
        tsdb_t *db = open_db_with(dir, 2 * MIN_MS, 0);
        assert_int_equal(tsdb_rollup_zero_run_ms(db), 2 * MIN_MS);
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, (unsigned)f);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
    const int64_t runs[3] = { 5 * MIN_MS, 2 * MIN_MS, 9 * MIN_MS };
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db_with(dir, runs[0], 0);
    append(db, "__name__=h", s, n);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    for (int k = 0; k < 3; k++) {
        db = open_db_with(dir, runs[k], 0);
        assert_int_equal(tsdb_rollup_zero_run_ms(db), runs[k]);
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, 10u + (unsigned)k);
        /* the answer differs with the option: 10-minute runs beyond 5, 2, 9 minutes */
        tsdb_matcher_t m[] = { M(EQ, "__name__", "h") };
        tsdb_series_set_t *set;
        assert_ok(tsdb_select(db, m, 1, 0, INT64_MAX, &set));
        assert_int_equal(tsdb_series_set_next(set), 1);
        const tsdb_rollup_point_t *p;
        size_t np;
        assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &np));
        assert_true(np >= 1);
        assert_int_equal(p[0].zero_inner_max, 10 * MIN_MS);
        assert_int_equal(p[0].zero_inner_long, 10 * MIN_MS - runs[k]);
        tsdb_series_set_free(set);
        tsdb_close(db);
    }
    test_tmpdir_free(dir);
    /* and the other way round: a block built under 2 minutes, read under 5 */
    dir = test_tmpdir_new();
    db = open_db_with(dir, 2 * MIN_MS, 0);
    append(db, "__name__=h", s, n);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    db = open_db_with(dir, 5 * MIN_MS, 0);
    check_hold_fields(db, s, n, TSDB_ROLLUP_1H, 20u);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* The rollup points of series "ctr" over [0, 120 min] at resolution res, copied out. */
static tsdb_rollup_point_t *rollups_of(tsdb_t *db, int64_t res, size_t *n)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "ctr") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, 120 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    assert_ok(tsdb_series_set_rollups(set, res, &p, n));
    tsdb_rollup_point_t *out = malloc((*n ? *n : 1) * sizeof *out);
    assert_non_null(out);
    memcpy(out, p, *n * sizeof *out);
    assert_int_equal(tsdb_series_set_next(set), 0);
    tsdb_series_set_free(set);
    return out;
}

#define SAME_D(a, b, f) assert_int_equal(test_double_bits((a).f), test_double_bits((b).f))
#define SAME_I(a, b, f) assert_int_equal((a).f, (b).f)

/* Every field of every point equal (doubles bit for bit). */
static void same_rollups(tsdb_t *db, tsdb_t *ref, int64_t res)
{
    size_t n, nr;
    tsdb_rollup_point_t *p = rollups_of(db, res, &n), *r = rollups_of(ref, res, &nr);
    assert_int_equal(n, nr);
    for (size_t i = 0; i < n; i++) {
        SAME_I(p[i], r[i], t);
        SAME_I(p[i], r[i], count);
        SAME_D(p[i], r[i], sum);
        SAME_D(p[i], r[i], min);
        SAME_D(p[i], r[i], max);
        SAME_D(p[i], r[i], last);
        SAME_I(p[i], r[i], last_t);
        SAME_D(p[i], r[i], first);
        SAME_I(p[i], r[i], first_t);
        SAME_D(p[i], r[i], increase);
        SAME_I(p[i], r[i], stale);
        SAME_I(p[i], r[i], stale_t);
        SAME_I(p[i], r[i], gap_max);
        SAME_D(p[i], r[i], hold_sum);
        SAME_D(p[i], r[i], last_rise);
        SAME_D(p[i], r[i], inner_increase);
        SAME_I(p[i], r[i], zero_lead_end);
        SAME_I(p[i], r[i], zero_trail_start);
        SAME_I(p[i], r[i], zero_inner_max);
        SAME_I(p[i], r[i], zero_inner_long);
    }
    free(p);
    free(r);
}

/* Overlapping blocks: the first hour is cut into a block, then a sender retries the last 10
 * minutes of it (same timestamps, same values: within the out-of-order window, so stored again
 * in the head) before the second hour, which is cut into a second block overlapping the first.
 * Rollups read across the two (and across the block and the head before the second cut, and
 * after compaction merges them) equal those of one block holding each sample once. */
static void test_rollups_overlapping_blocks(void **state)
{
    (void)state;
    tsdb_sample_t s[130];
    size_t n;
    char *rdir = test_tmpdir_new();
    tsdb_t *ref = open_db(rdir, 0, 0, 0);
    rollup_input(s, &n, 1, 120);
    append(ref, "__name__=ctr", s, n);
    assert_ok(tsdb_cut_head(ref));

    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    rollup_input(s, &n, 1, 60);
    append(db, "__name__=ctr", s, n);
    assert_ok(tsdb_cut_head(db));
    rollup_input(s, &n, 51, 60); /* the retry: minutes 51..60 again */
    tsdb_append_result_t res = append(db, "__name__=ctr", s, n);
    assert_int_equal(res.too_old + res.conflicting, 0);
    assert_int_equal(res.appended, n); /* stored again: the head no longer holds them */
    rollup_input(s, &n, 61, 120);
    append(db, "__name__=ctr", s, n);
    check_rollups(db); /* block + overlapping head */
    same_rollups(db, ref, TSDB_ROLLUP_5M);
    same_rollups(db, ref, TSDB_ROLLUP_1H);
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2); /* two blocks, overlapping in (50 min, 60 min] */
    check_rollups(db);
    same_rollups(db, ref, TSDB_ROLLUP_5M);
    same_rollups(db, ref, TSDB_ROLLUP_1H);
    /* and once compaction has merged them */
    assert_ok(tsdb_compact(db));
    check_rollups(db);
    same_rollups(db, ref, TSDB_ROLLUP_5M);
    same_rollups(db, ref, TSDB_ROLLUP_1H);
    tsdb_close(db);
    test_tmpdir_free(dir);
    tsdb_close(ref);
    test_tmpdir_free(rdir);
}

/* The 5m points of series `name` over [0, 14 h], every one against the
 * brute-force summary of its interval (doubles bit for bit). */
static void check_5m(tsdb_t *db, const char *name, const tsdb_sample_t *s, size_t n)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", name) };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, 14 * 60 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t np, k = 0;
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_5M, &p, &np));
    for (int64_t end = TSDB_ROLLUP_5M; end <= 14 * 60 * MIN_MS; end += TSDB_ROLLUP_5M) {
        tsdb_rollup_point_t w = hold_ref(s, n, TSDB_ROLLUP_5M, end, tsdb_rollup_zero_run_ms(db));
        if (!w.count && !w.stale) continue;
        assert_true(k < np);
        const tsdb_rollup_point_t *g = &p[k++];
        SAME_I(*g, w, t);
        SAME_I(*g, w, count);
        SAME_D(*g, w, sum);
        SAME_D(*g, w, min);
        SAME_D(*g, w, max);
        SAME_D(*g, w, last);
        SAME_I(*g, w, last_t);
        SAME_D(*g, w, first);
        SAME_I(*g, w, first_t);
        SAME_D(*g, w, increase);
    }
    assert_int_equal(k, np);
    tsdb_series_set_free(set);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Rollups only where they pay (format.h, TSDB_ROLLUP_5M_MIN_SPAN_MS): a
 * block stores the 5m points of a series spanning 13 h and not those of one
 * spanning 2 h (its rollups and rollups1h files are then bare page-file
 * headers; test_rollup_hold_fields checks computed 1h points field by field); read
 * back, both equal the brute-force summary, and the long series' points
 * are the same whether stored (one block) or computed (two 6.5 h blocks). */
static void test_rollup_5m_where_stored(void **state)
{
    (void)state;
    static const double vals[] = { 0, 0, 1, 2.5, 3, 7, 0.5, 4 };
    static tsdb_sample_t s[800];
    size_t n = 0, nshort = 0;
    srand(7);
    double v = 0;
    for (int64_t t = 0; t <= 13 * 60 * MIN_MS; t += 60000) {
        if (rand() % 50 == 0)
            s[n++] = (tsdb_sample_t){ t, test_bits_double(TSDB_STALE_NAN_BITS) };
        else {
            if (rand() % 5 == 0) v = vals[rand() % 8];
            s[n++] = (tsdb_sample_t){ t, v };
        }
        if (t <= 2 * 60 * MIN_MS) nshort = n;
    }
    char path[1024];
    /* only the short series: no 5m points stored at all */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 24 * 60 * MIN_MS, 0, 0);
    append(db, "__name__=g", s, nshort);
    assert_ok(tsdb_cut_head(db));
    block_file(dir, "rollups", path, sizeof path);
    assert_int_equal(file_size(path), 8);
    block_file(dir, "rollups1h", path, sizeof path); /* 2 h < TSDB_ROLLUP_1H_MIN_SPAN_MS */
    assert_int_equal(file_size(path), 8);
    /* and the index is written compressed (format.h, TSDB_INDEX_Z_MAGIC; the
     * raw form of older blocks: test_block_old_versions_readable) */
    block_file(dir, "index", path, sizeof path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char magic[4];
    assert_int_equal(fread(magic, 1, 4, f), 4);
    fclose(f);
    assert_memory_equal(magic, "STIZ", 4);
    check_5m(db, "g", s, nshort);
    tsdb_close(db);
    test_tmpdir_free(dir);
    /* both series in one block: the long one's points are stored */
    dir = test_tmpdir_new();
    db = open_db(dir, 24 * 60 * MIN_MS, 0, 0);
    append(db, "__name__=g", s, nshort);
    append(db, "__name__=h", s, n);
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    block_file(dir, "rollups", path, sizeof path);
    assert_true(file_size(path) > 8 + 12);
    check_5m(db, "g", s, nshort);
    check_5m(db, "h", s, n);
    tsdb_close(db);
    db = open_db(dir, 24 * 60 * MIN_MS, 0, 0); /* and from disk */
    check_5m(db, "h", s, n);
    /* the same series in two shorter blocks: computed, the same points */
    char *dir2 = test_tmpdir_new();
    tsdb_t *db2 = open_db(dir2, 24 * 60 * MIN_MS, 0, 0);
    append(db2, "__name__=h", s, n / 2);
    assert_ok(tsdb_cut_head(db2));
    append(db2, "__name__=h", s + n / 2, n - n / 2);
    assert_ok(tsdb_cut_head(db2));
    tsdb_get_stats(db2, &st);
    assert_int_equal(st.blocks, 2);
    check_5m(db2, "h", s, n);
    tsdb_close(db2);
    test_tmpdir_free(dir2);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rollups),
        cmocka_unit_test(test_rollup_hold_fields),
        cmocka_unit_test(test_rollup_zero_run_option),
        cmocka_unit_test(test_rollups_overlapping_blocks),
        cmocka_unit_test(test_rollup_5m_where_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
