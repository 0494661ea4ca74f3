/*
 * test_head_memory.c: what a head series' open buffer holds (tsdb/head.c,
 * docs/strata-load.md "Where the bytes per series go"): it grows 2, 4, 8,
 * 16, then 8 slots at a time up to TSDB_HEAD_OPEN_SAMPLES, where it is
 * sealed into a chunk, instead of doubling to 32.
 */
#include "test_helpers.h"

#include "format.h"
#include "strata_log.h"
#include "tsdb.h"

static void test_open_buffer_growth(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_options_t opts;
    tsdb_options_init(&opts);
    opts.dir = dir;
    opts.background = 0;
    opts.fsync = TSDB_FSYNC_NEVER;
    tsdb_t *db;
    assert_ok(tsdb_open(&opts, &db));
    tsdb_label_t l[] = { { "__name__", "m" } };
    uint64_t bytes[TSDB_HEAD_OPEN_SAMPLES + 1];
    for (int n = 1; n <= TSDB_HEAD_OPEN_SAMPLES; n++) {
        tsdb_sample_t s = { 1000 * n, n };
        tsdb_series_input_t in = { l, 1, &s, 1 };
        assert_ok(tsdb_append(db, &in, 1, NULL));
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        bytes[n] = st.head_bytes;
    }
    /* the buffer's growth, in 16-byte samples, after sample n */
    const int grows_at[] = { 3, 5, 9, 17, 25 }, by[] = { 2, 4, 8, 8, 6 };
    size_t g = 0;
    for (int n = 2; n < TSDB_HEAD_OPEN_SAMPLES; n++) {
        uint64_t want = 0;
        if (g < 5 && grows_at[g] == n) want = (uint64_t)by[g++] * sizeof(tsdb_sample_t);
        assert_int_equal(bytes[n] - bytes[n - 1], want);
    }
    assert_int_equal(g, 5);
    /* the 30th sample seals it: 30 slots (not 32) are given back */
    assert_true(bytes[TSDB_HEAD_OPEN_SAMPLES] < bytes[TSDB_HEAD_OPEN_SAMPLES - 1]);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_buffer_growth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
