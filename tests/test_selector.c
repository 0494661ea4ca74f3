/*
 * test_selector.c: the series selector parser (api/query/selector.c):
 * every matcher operator, quoting and escapes, and the errors export's
 * match[] answers with 400.
 */
#include "test_helpers.h"

#include "selector.h"
#include "strata_arena.h"

static int setup(void **state)
{
    *state = strata_arena_new(0);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    strata_arena_free(*state);
    return 0;
}

static void test_selector_parse(void **state)
{
    strata_arena_t *arena = *state;
    tsdb_matcher_t *m;
    size_t n;
    char err[200];
    assert_ok(api_selector_parse(arena, "up", &m, &n, err, sizeof err));
    assert_int_equal(n, 1);
    assert_int_equal(m[0].op, TSDB_MATCH_EQ);
    assert_string_equal(m[0].name, "__name__");
    assert_string_equal(m[0].value, "up");

    assert_ok(api_selector_parse(
        arena, " node:cpu:rate{a=\"v\", b!=\"w\",c=~\"x|y\" , d!~'.*z', e=`r\\aw`, f=\"q\\\"\\n\\u00e9\",} ",
        &m, &n, err, sizeof err));
    assert_int_equal(n, 7);
    assert_string_equal(m[0].value, "node:cpu:rate");
    assert_int_equal(m[1].op, TSDB_MATCH_EQ);
    assert_string_equal(m[1].name, "a");
    assert_string_equal(m[1].value, "v");
    assert_int_equal(m[2].op, TSDB_MATCH_NEQ);
    assert_string_equal(m[2].name, "b");
    assert_string_equal(m[2].value, "w");
    assert_int_equal(m[3].op, TSDB_MATCH_RE);
    assert_string_equal(m[3].value, "x|y");
    assert_int_equal(m[4].op, TSDB_MATCH_NRE);
    assert_string_equal(m[4].value, ".*z");
    assert_string_equal(m[5].value, "r\\aw");
    assert_string_equal(m[6].value, "q\"\n\xc3\xa9");

    assert_ok(api_selector_parse(arena, "{job=~\"dcgm.+\"}", &m, &n, err, sizeof err));
    assert_int_equal(n, 1);
    assert_string_equal(m[0].name, "job");

    assert_err(api_selector_parse(arena, "", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "{}", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "{a=\"\"}", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_string_equal(err,
                        "selector must contain at least one matcher that does not match the empty string");
    assert_err(api_selector_parse(arena, "{a=~\".*\"}", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "up{a=\"v\"", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "up{a=\"v}", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_string_equal(err, "unterminated string");
    assert_err(api_selector_parse(arena, "up{a==\"v\"}", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "up{1a=\"v\"}", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "up x", &m, &n, err, sizeof err), STRATA_EINVAL);
    assert_err(api_selector_parse(arena, "up{a=~\"(\"}", &m, &n, err, sizeof err), STRATA_EBADREGEX);
    assert_string_equal(err, "invalid regular expression \"(\" for label \"a\"");
    assert_err(api_selector_parse(arena, "up{a=\"\\q\"}", &m, &n, err, sizeof err), STRATA_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_selector_parse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
