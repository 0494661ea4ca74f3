/*
 * test_prom_http.c: unit tests of the Prometheus query API's text rules
 * (api/http/prom.h): numbers, timestamps and strings as Prometheus 2.42
 * writes them, its time and duration parameters, and the form parser.
 * The expected texts are what the real Prometheus 2.42 answered.
 */
#include "test_helpers.h"

#include <math.h>
#include <string.h>

#include "prom.h"

typedef void (*fmt_fn)(strata_buf_t *b, double v);

static void check_value(fmt_fn f, double v, const char *want)
{
    strata_buf_t b;
    strata_buf_init(&b, NULL, 0);
    f(&b, v);
    assert_false(b.failed);
    assert_string_equal(b.data, want);
    strata_buf_free(&b);
}

static void check_time(void (*f)(strata_buf_t *, int64_t), int64_t ms, const char *want)
{
    strata_buf_t b;
    strata_buf_init(&b, NULL, 0);
    f(&b, ms);
    assert_string_equal(b.data, want);
    strata_buf_free(&b);
}

static void test_point_values(void **state)
{
    (void)state;
    fmt_fn f = api_prom_json_point_value;
    check_value(f, 1.5, "\"1.5\"");
    check_value(f, 2, "\"2\"");
    check_value(f, 0.1, "\"0.1\"");
    check_value(f, 0, "\"0\"");
    check_value(f, -0.0, "\"-0\"");
    check_value(f, 1e21, "\"1e+21\"");
    check_value(f, 1e-7, "\"1e-07\"");
    check_value(f, 1.5e-7, "\"1.5e-07\"");
    check_value(f, -1.25e22, "\"-1.25e+22\"");
    check_value(f, 1e20, "\"100000000000000000000\"");
    check_value(f, 1e-6, "\"0.000001\"");
    check_value(f, 123456.789, "\"123456.789\"");
    check_value(f, 85899345920, "\"85899345920\"");
    check_value(f, 1.0 / 3, "\"0.3333333333333333\"");
    check_value(f, INFINITY, "\"+Inf\"");
    check_value(f, -INFINITY, "\"-Inf\"");
    check_value(f, NAN, "\"NaN\"");
    check_value(f, 1e300, "\"1e+300\"");
    check_value(f, 5e-324, "\"5e-324\"");
}

static void test_scalar_values(void **state)
{
    (void)state;
    fmt_fn f = api_prom_json_scalar_value;
    check_value(f, 2, "\"2\"");
    check_value(f, 1e21, "\"1000000000000000000000\"");
    check_value(f, 1e-7, "\"0.0000001\"");
    check_value(f, 1.5e-7, "\"0.00000015\"");
    check_value(f, 12.5, "\"12.5\"");
    check_value(f, -0.0, "\"-0\"");
    check_value(f, INFINITY, "\"+Inf\"");
    check_value(f, NAN, "\"NaN\"");
}

static void test_times(void **state)
{
    (void)state;
    check_time(api_prom_json_point_time, 1435781451781, "1435781451.781");
    check_time(api_prom_json_point_time, 1700000000120, "1700000000.120");
    check_time(api_prom_json_point_time, 1700000000005, "1700000000.005");
    check_time(api_prom_json_point_time, 1435781451000, "1435781451");
    check_time(api_prom_json_point_time, 0, "0");
    check_time(api_prom_json_point_time, -1500, "-1.500");
    check_time(api_prom_json_scalar_time, 1700000000120, "1700000000.12");
    check_time(api_prom_json_scalar_time, 1700000000000, "1700000000");
    check_time(api_prom_json_scalar_time, 1435781451781, "1435781451.781");
    check_time(api_prom_json_scalar_time, 0, "0");
}

static void test_strings(void **state)
{
    (void)state;
    strata_buf_t b;
    strata_buf_init(&b, NULL, 0);
    api_prom_json_string(&b, "a\"b\\c\nd\te<f>&\x01\xe2\x80\xa8x\xc3\xa9");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\nd\\te\\u003cf\\u003e\\u0026\\u0001\\u2028x\xc3\xa9\"");
    strata_buf_free(&b);
    strata_buf_init(&b, NULL, 0);
    api_prom_quote(&b, "x\"y\n");
    assert_string_equal(b.data, "\"x\\\"y\\n\"");
    strata_buf_free(&b);
    tsdb_label_t l[] = { { "__name__", "up" }, { "__tenant__", "7" }, { "job", "a" } };
    strata_buf_init(&b, NULL, 0);
    api_prom_json_labels(&b, l, 3);
    assert_string_equal(b.data, "{\"__name__\":\"up\",\"job\":\"a\"}");
    strata_buf_free(&b);
}

static void test_parse_time(void **state)
{
    (void)state;
    int64_t ms;
    assert_ok(api_prom_parse_time("1700000000", &ms));
    assert_true(ms == 1700000000000LL);
    assert_ok(api_prom_parse_time("1700000000.1234", &ms));
    assert_true(ms == 1700000000123LL);
    assert_ok(api_prom_parse_time("1700000000.1235", &ms));
    assert_true(ms == 1700000000124LL);
    assert_ok(api_prom_parse_time("-1.5", &ms));
    assert_true(ms == -1500);
    assert_ok(api_prom_parse_time("1.7e9", &ms));
    assert_true(ms == 1700000000000LL);
    assert_ok(api_prom_parse_time("2023-11-14T22:13:20.5Z", &ms));
    assert_true(ms == 1700000000500LL);
    assert_ok(api_prom_parse_time("-292273086-05-16T16:47:06Z", &ms));
    assert_true(ms == API_PROM_MIN_TIME_MS);
    assert_ok(api_prom_parse_time("292277025-08-18T07:12:54.999999999Z", &ms));
    assert_true(ms == API_PROM_MAX_TIME_MS);
    const char *bad[] = { "", "x", "1x", "0x10", "Inf", "NaN", "1e999", "2023-11-14", " 1" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(api_prom_parse_time(bad[i], &ms), STRATA_EINVAL);
}

static void test_parse_duration(void **state)
{
    (void)state;
    int64_t ns;
    int of;
    assert_ok(api_prom_parse_duration("15", &ns, &of));
    assert_true(ns == 15000000000LL);
    assert_ok(api_prom_parse_duration("0.5", &ns, &of));
    assert_true(ns == 500000000LL);
    assert_ok(api_prom_parse_duration("1m30s", &ns, &of));
    assert_true(ns == 90000000000LL);
    assert_ok(api_prom_parse_duration("-1", &ns, &of));
    assert_true(ns == -1000000000LL);
    assert_int_equal(api_prom_parse_duration("-1s", &ns, &of), STRATA_EINVAL);
    assert_int_equal(api_prom_parse_duration("", &ns, &of), STRATA_EINVAL);
    assert_int_equal(api_prom_parse_duration("1e10", &ns, &of), STRATA_EINVAL);
    assert_int_equal(of, 1);
    assert_int_equal(api_prom_parse_duration("x", &ns, &of), STRATA_EINVAL);
    assert_int_equal(of, 0);
}

static void test_form(void **state)
{
    (void)state;
    strata_arena_t *a = strata_arena_new(0);
    api_prom_params_t p = { .arena = a };
    const char *text =
        "query=sum+by+(x)+(foo%7Ba%3D%22b%22%7D)&match[]=a&&bad=%zz&semi=a;b&match%5B%5D=b&bare";
    assert_ok(api_prom_form_parse(&p, text, strlen(text)));
    assert_int_equal(p.n, 4);
    assert_string_equal(api_prom_param(&p, "query"), "sum by (x) (foo{a=\"b\"})");
    const char **v;
    assert_int_equal(api_prom_param_all(&p, "match[]", &v), 2);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "b");
    assert_string_equal(api_prom_param(&p, "bare"), "");
    assert_null(api_prom_param(&p, "bad"));
    assert_null(api_prom_param(&p, "semi"));
    /* a truncated escape at the very end */
    api_prom_params_t q = { .arena = a };
    assert_ok(api_prom_form_parse(&q, "a=%4", 4));
    assert_int_equal(q.n, 0);
    strata_arena_free(a);
}

static void test_error_types(void **state)
{
    (void)state;
    int st;
    assert_string_equal(api_prom_error_type(STRATA_EINVAL, &st), "bad_data");
    assert_int_equal(st, 400);
    assert_string_equal(api_prom_error_type(STRATA_EEXEC, &st), "execution");
    assert_int_equal(st, 422);
    assert_string_equal(api_prom_error_type(STRATA_ELIMIT, &st), "execution");
    assert_int_equal(st, 422);
    assert_string_equal(api_prom_error_type(STRATA_ETIMEOUT, &st), "timeout");
    assert_int_equal(st, 503);
    assert_string_equal(api_prom_error_type(STRATA_EIO, &st), "unavailable");
    assert_int_equal(st, 503);
    assert_string_equal(api_prom_error_type(STRATA_ECORRUPT, &st), "internal");
    assert_int_equal(st, 500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_point_values), cmocka_unit_test(test_scalar_values),
        cmocka_unit_test(test_times),        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_parse_time),   cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_form),         cmocka_unit_test(test_error_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
