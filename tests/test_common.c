/* test_common.c: the shared helpers in common/ (error table, arena, logfmt quoting). */
#include "test_helpers.h"
#include "strata_arena.h"
#include "strata_log.h"

static void test_strerror_table(void **state)
{
    (void)state;
    assert_string_equal(strata_strerror(STRATA_OK), "ok");
    assert_string_equal(strata_strerror(STRATA_ECORRUPT), "data corrupt (checksum or format mismatch)");
    assert_string_equal(strata_strerror(-9999), "unknown error");
}

static void test_arena_alignment_and_growth(void **state)
{
    (void)state;
    strata_arena_t *a = strata_arena_new(128);
    assert_non_null(a);
    char *p1 = strata_arena_alloc(a, 3);
    char *p2 = strata_arena_alloc(a, 1000); /* larger than a block: its own block */
    char *p3 = strata_arena_alloc(a, 7);
    assert_int_equal((uintptr_t)p1 % 16, 0);
    assert_int_equal((uintptr_t)p2 % 16, 0);
    assert_int_equal((uintptr_t)p3 % 16, 0);
    memset(p2, 0xab, 1000);
    assert_string_equal(strata_arena_strdup(a, "gpu"), "gpu");
    assert_string_equal(strata_arena_strndup(a, "gpu-util", 3), "gpu");
    unsigned char *z = strata_arena_calloc(a, 10, 10);
    for (int i = 0; i < 100; i++) assert_int_equal(z[i], 0);
    assert_null(strata_arena_calloc(a, SIZE_MAX / 2, 4));
    strata_arena_reset(a);
    assert_int_equal(strata_arena_used(a), 128);
    strata_arena_free(a);
}

static void test_arena_cap(void **state)
{
    (void)state;
    strata_arena_t *a = strata_arena_new(1024);
    strata_arena_set_cap(a, 4096);
    assert_non_null(strata_arena_alloc(a, 2000));
    assert_null(strata_arena_alloc(a, 4000));
    strata_arena_free(a);
}

static void test_log_quote(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(strata_log_quote(buf, sizeof buf, "plain"), "plain");
    assert_string_equal(strata_log_quote(buf, sizeof buf, "two words"), "\"two words\"");
    assert_string_equal(strata_log_quote(buf, sizeof buf, "say \"hi\""), "\"say \\\"hi\\\"\"");
    assert_string_equal(strata_log_quote(buf, sizeof buf, ""), "\"\"");
    enum strata_log_level lvl;
    assert_ok(strata_log_parse_level("warn", &lvl));
    assert_int_equal(lvl, STRATA_LOG_WARN);
    assert_err(strata_log_parse_level("loud", &lvl), STRATA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_table),
        cmocka_unit_test(test_arena_alignment_and_growth),
        cmocka_unit_test(test_arena_cap),
        cmocka_unit_test(test_log_quote),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
