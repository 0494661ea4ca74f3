/* test_common_time.c: common/strata_time (RFC 3339, unix seconds, durations)
 * and common/strata_fmt (shortest round-trip float formatting). */
#include "test_helpers.h"
#include "strata_fmt.h"
#include "strata_time.h"

#include <float.h>
#include <math.h>

/* 2024-12-20T14:30:00Z: 20077 days after the epoch (checked with Python's
 * datetime) x 86400 + 14.5 h = 1734705000 s. */
#define T_DEC20 INT64_C(1734705000000)

static int64_t parse_ok(const char *s)
{
    int64_t ms = 0;
    int rc = strata_time_parse_rfc3339(s, &ms);
    if (rc != 0) fail_msg("parse(%s) = %d", s, rc);
    return ms;
}

static void test_rfc3339_parse(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2024-12-20T14:30:00Z"), T_DEC20);
    assert_int_equal(parse_ok("1970-01-01T00:00:00Z"), 0);
    /* fractions: any number of digits, truncated to ms */
    assert_int_equal(parse_ok("2024-12-20T14:30:00.25Z"), T_DEC20 + 250);
    assert_int_equal(parse_ok("2024-12-20T14:30:00.250Z"), T_DEC20 + 250);
    assert_int_equal(parse_ok("2024-12-20T14:30:00.2Z"), T_DEC20 + 200);
    assert_int_equal(parse_ok("2024-12-20T14:30:00.123999999Z"), T_DEC20 + 123);
    /* offsets: local time minus the offset */
    assert_int_equal(parse_ok("2024-12-20T16:30:00+02:00"), T_DEC20);
    assert_int_equal(parse_ok("2024-12-20T09:00:00-05:30"), T_DEC20);
    assert_int_equal(parse_ok("2024-12-21T00:15:00.5+09:45"), T_DEC20 + 500);
    assert_int_equal(parse_ok("2024-12-20T14:30:00+00:00"), T_DEC20);
    assert_int_equal(parse_ok("2024-12-20t14:30:00z"), T_DEC20);
    /* before the epoch: -1 ms is 23:59:59.999 of the previous day; a 4th
     * fraction digit is floored, not rounded */
    assert_int_equal(parse_ok("1969-12-31T23:59:59.999Z"), -1);
    assert_int_equal(parse_ok("1969-12-31T23:59:59.9999Z"), -1);
    assert_int_equal(parse_ok("1969-07-20T20:17:40Z"), INT64_C(-14182940000));
    /* calendar edges (values from Python's datetime) */
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), INT64_C(1709164800000));
    assert_int_equal(parse_ok("2000-02-29T12:00:00Z"), INT64_C(951825600000));
    assert_int_equal(parse_ok("0001-01-01T00:00:00Z"), INT64_C(-62135596800000));
    assert_int_equal(parse_ok("9999-12-31T23:59:59Z"), INT64_C(253402300799000));
}

static void test_rfc3339_rejects(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "2024",
        "2024-12-20",
        "2024-12-20T14:30Z",
        "2024-12-20T14:30:00",
        "2024-12-20 14:30:00Z",
        "2024-12-20T14:30:00.Z",
        "2024-12-20T14:30:00,5Z",
        "2024-12-20T14:30:00+0200",
        "2024-12-20T14:30:00+02",
        "2024-12-20T14:30:00+2:00",
        "2024-12-20T14:30:00Zjunk",
        "2024-12-20T14:30:00Z ",
        " 2024-12-20T14:30:00Z",
        "+2024-12-20T14:30:00Z",
        "24-12-20T14:30:00Z",
        "2024-1-20T14:30:00Z",
        "2024-00-20T14:30:00Z",
        "2024-13-20T14:30:00Z",
        "2024-12-00T14:30:00Z",
        "2024-12-32T14:30:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-12-20T24:00:00Z",
        "2024-12-20T14:60:00Z",
        "2024-12-20T14:30:60Z",
        "2024-12-20T14:30:00+24:00",
        "2024-12-20T14:30:00+02:60",
        "2024-12-20T14:30:00.5.5Z",
        "1734705000",
        "now",
        "2024-12-20T14:30:0aZ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms = 42;
        int rc = strata_time_parse_rfc3339(bad[i], &ms);
        if (rc != STRATA_EINVAL) fail_msg("'%s' accepted (rc %d, %lld)", bad[i], rc, (long long)ms);
    }
    int64_t ms;
    assert_err(strata_time_parse_rfc3339(NULL, &ms), STRATA_EINVAL);
}

static void test_rfc3339_format(void **state)
{
    (void)state;
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    assert_int_equal(strata_time_format_rfc3339(T_DEC20, buf, sizeof buf), 20);
    assert_string_equal(buf, "2024-12-20T14:30:00Z");
    assert_int_equal(strata_time_format_rfc3339(T_DEC20 + 250, buf, sizeof buf), 24);
    assert_string_equal(buf, "2024-12-20T14:30:00.250Z");
    strata_time_format_rfc3339(T_DEC20 + 5, buf, sizeof buf);
    assert_string_equal(buf, "2024-12-20T14:30:00.005Z");
    strata_time_format_rfc3339(0, buf, sizeof buf);
    assert_string_equal(buf, "1970-01-01T00:00:00Z");
    strata_time_format_rfc3339(-1, buf, sizeof buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    strata_time_format_rfc3339(INT64_C(951825600000), buf, sizeof buf);
    assert_string_equal(buf, "2000-02-29T12:00:00Z");
    strata_time_format_rfc3339(INT64_C(253402300799999), buf, sizeof buf);
    assert_string_equal(buf, "9999-12-31T23:59:59.999Z");
    strata_time_format_rfc3339(INT64_C(-62167219200000), buf, sizeof buf);
    assert_string_equal(buf, "0000-01-01T00:00:00Z");
    /* outside years 0000..9999, and too small a buffer */
    assert_err(strata_time_format_rfc3339(INT64_C(253402300800000), buf, sizeof buf), STRATA_EINVAL);
    assert_err(strata_time_format_rfc3339(INT64_C(-62167219200001), buf, sizeof buf), STRATA_EINVAL);
    assert_err(strata_time_format_rfc3339(T_DEC20, buf, 20), STRATA_EBUFSMALL);
    assert_string_equal(buf, "");
    assert_int_equal(strata_time_format_rfc3339(T_DEC20, buf, 21), 20);
}

static void test_rfc3339_round_trip(void **state)
{
    (void)state;
    /* format(parse) and parse(format) are inverses over years 0000..9999 */
    const int64_t lo = INT64_C(-62167219200000), hi = INT64_C(253402300799999);
    uint64_t x = 0x9e3779b97f4a7c15u;
    char buf[STRATA_TIME_RFC3339_BUFSZ];
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int64_t ms = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        if (i % 3 == 0) ms -= ms % 1000; /* whole seconds take the short form */
        if (ms < lo) ms += 1000;
        int n = strata_time_format_rfc3339(ms, buf, sizeof buf);
        assert_true(n == 20 || n == 24);
        assert_int_equal(n == 20, ms % 1000 == 0);
        int64_t back;
        assert_ok(strata_time_parse_rfc3339(buf, &back));
        if (back != ms) fail_msg("%lld -> %s -> %lld", (long long)ms, buf, (long long)back);
    }
}

static void test_unix_seconds(void **state)
{
    (void)state;
    int64_t ms;
    assert_ok(strata_time_parse_unix("1734705000", &ms));
    assert_int_equal(ms, T_DEC20);
    assert_ok(strata_time_parse_unix("1734705000.25", &ms));
    assert_int_equal(ms, T_DEC20 + 250);
    assert_ok(strata_time_parse_unix("1734705000.", &ms));
    assert_int_equal(ms, T_DEC20);
    /* rounded to the nearest ms, halves away from zero */
    assert_ok(strata_time_parse_unix("1734705000.2504", &ms));
    assert_int_equal(ms, T_DEC20 + 250);
    assert_ok(strata_time_parse_unix("1734705000.2505", &ms));
    assert_int_equal(ms, T_DEC20 + 251);
    assert_ok(strata_time_parse_unix(".0005", &ms));
    assert_int_equal(ms, 1);
    assert_ok(strata_time_parse_unix("-1.5", &ms));
    assert_int_equal(ms, -1500);
    assert_ok(strata_time_parse_unix("-0.0005", &ms));
    assert_int_equal(ms, -1);
    assert_ok(strata_time_parse_unix("+7", &ms));
    assert_int_equal(ms, 7000);
    static const char *bad[] = { "",    ".",  "-",    "1e9", "1.2.3",
                                 " 1",  "1 ", "0x10", "12a", "9223372036854776",
                                 "inf", "nan" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (strata_time_parse_unix(bad[i], &ms) != STRATA_EINVAL) fail_msg("'%s' accepted", bad[i]);
    /* either form */
    assert_ok(strata_time_parse_any("1734705000.25", &ms));
    assert_int_equal(ms, T_DEC20 + 250);
    assert_ok(strata_time_parse_any("2024-12-20T16:30:00.25+02:00", &ms));
    assert_int_equal(ms, T_DEC20 + 250);
    assert_err(strata_time_parse_any("yesterday", &ms), STRATA_EINVAL);
}

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        { "10m", 600000 },
        { "2h", 7200000 },
        { "15d", INT64_C(1296000000) },
        { "1h30m", 5400000 },
        { "500ms", 500 },
        { "5m", 300000 },
        { "0", 0 },
        { "0s", 0 },
        { "1w", INT64_C(604800000) },
        { "1y", INT64_C(31536000000) },
        { "1d2h3m4s5ms", INT64_C(93784005) },
        { "90s", 90000 },
        { "1m1ms", 60001 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        assert_ok(strata_duration_parse(ok[i].s, &ms));
        if (ms != ok[i].ms) fail_msg("%s -> %lld, want %lld", ok[i].s, (long long)ms, (long long)ok[i].ms);
    }
    static const char *bad[] = { "",
                                 "h",
                                 "10",
                                 "1.5h",
                                 "30m1h",
                                 "1h1h",
                                 "10x",
                                 "-1h",
                                 "1 h",
                                 "1h ",
                                 "ms",
                                 "5mm",
                                 "99999999999999999999s",
                                 "300000000y" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        if (strata_duration_parse(bad[i], &ms) != STRATA_EINVAL) fail_msg("'%s' accepted", bad[i]);
    }
}

/* ---- shortest float formatting ---- */

static void check_fmt(double v, const char *want)
{
    char buf[STRATA_FMT_DOUBLE_BUFSZ];
    int n = strata_fmt_double(v, buf, sizeof buf);
    if (n < 0 || strcmp(buf, want) != 0 || (size_t)n != strlen(want))
        fail_msg("fmt(%.17g) = '%s' (%d), want '%s'", v, buf, n, want);
}

static void test_fmt_known_values(void **state)
{
    (void)state;
    check_fmt(0.0, "0");
    check_fmt(-0.0, "-0");
    check_fmt(100, "100");
    check_fmt(0.1, "0.1");
    check_fmt(12.5, "12.5");
    check_fmt(-12.5, "-12.5");
    check_fmt(1e21, "1e+21");
    check_fmt(1e20, "100000000000000000000");
    check_fmt(123456789012345680000.0, "123456789012345680000");
    check_fmt(1e-6, "0.000001");
    check_fmt(1.234e-6, "0.000001234");
    check_fmt(1e-7, "1e-7");
    check_fmt(1.5e-7, "1.5e-7");
    check_fmt(1.23e-18, "1.23e-18");
    check_fmt(1e100, "1e+100");
    check_fmt(0.3, "0.3");
    check_fmt(0.1 + 0.2, "0.30000000000000004");
    check_fmt(1.0 / 3.0, "0.3333333333333333");
    check_fmt(2.0 / 3.0, "0.6666666666666666");
    check_fmt(85899345920.0, "85899345920"); /* 80 GiB in bytes */
    check_fmt(9007199254740992.0, "9007199254740992");
    check_fmt(9007199254740994.0, "9007199254740994");
    check_fmt(299792458, "299792458");
    check_fmt(DBL_MAX, "1.7976931348623157e+308");
    check_fmt(DBL_MIN, "2.2250738585072014e-308");
    check_fmt(4.9406564584124654e-324, "5e-324"); /* smallest subnormal */
    check_fmt(5e-324 * 3, "1.5e-323");
    check_fmt(NAN, "NaN");
    check_fmt(test_bits_double(0x7ff0000000000002u), "NaN"); /* the stale marker */
    check_fmt(INFINITY, "+Inf");
    check_fmt(-INFINITY, "-Inf");
    /* powers of two, where the rounding interval is lopsided */
    check_fmt(0x1p-1022, "2.2250738585072014e-308");
    check_fmt(0x1p60, "1152921504606847000"); /* as JavaScript prints 2**60 */
    check_fmt(0x1p70, "1.1805916207174113e+21");
    check_fmt(0x1p-20, "9.5367431640625e-7");

    char small[5];
    assert_err(strata_fmt_double(12.5, small, 4), STRATA_EBUFSMALL); /* "12.5" + NUL needs 5 */
    assert_string_equal(small, "");
    assert_int_equal(strata_fmt_double(12.5, small, sizeof small), 4);
    assert_string_equal(small, "12.5");
}

/* Digits of a formatted number (mantissa only, no sign, dot or leading zeros). */
static int significant_digits(const char *s)
{
    int n = 0, started = 0, trailing_zeros = 0;
    for (; *s && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (*s != '0') started = 1;
        if (!started) continue;
        n++;
        trailing_zeros = (*s == '0') ? trailing_zeros + 1 : 0;
    }
    /* "100" has one significant digit: trailing zeros of an integer are padding */
    return n - trailing_zeros;
}

static void test_fmt_round_trip_random_bits(void **state)
{
    (void)state;
    /* Every finite bit pattern parses back to itself, and no shorter
     * (correctly rounded) digit string would have. */
    uint64_t x = 0x243f6a8885a308d3u;
    char buf[STRATA_FMT_DOUBLE_BUFSZ], shorter[48];
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t bits = x;
        if (i % 4 == 1) bits &= 0xfff0000000000000u | (x >> 40); /* few mantissa bits */
        if (i % 4 == 2) bits = (bits & 0x800fffffffffffffu) | ((uint64_t)(1023 + (int)(x % 80) - 40) << 52);
        double v = test_bits_double(bits);
        int n = strata_fmt_double(v, buf, sizeof buf);
        assert_true(n > 0 && n < STRATA_FMT_DOUBLE_BUFSZ);
        if (isnan(v)) {
            assert_string_equal(buf, "NaN");
            continue;
        }
        if (isinf(v)) continue;
        double back = strtod(buf, NULL);
        if (test_double_bits(back) != bits)
            fail_msg("%016llx -> %s -> %016llx", (unsigned long long)bits, buf,
                     (unsigned long long)test_double_bits(back));
        int k = significant_digits(buf);
        if (k > 1) {
            snprintf(shorter, sizeof shorter, "%.*e", k - 2, v);
            if (strtod(shorter, NULL) == v) fail_msg("%s is not shortest: %s also round-trips", buf, shorter);
        }
    }
}

static void test_fmt_shortest_is_printf_nearest(void **state)
{
    (void)state;
    /* strata_fmt_shortest (bisection over the digit count, prom_json's
     * writer) gives printf's correctly rounded digits at its length: the
     * closest of the shortest, as the earlier walk over every length did.
     * Rate-like values (16-17 digits) and short decimals, across exponents. */
    uint64_t x = 0x9e3779b97f4a7c15u;
    char d[20], want[48];
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v = i % 3 == 0   ? (double)(x % 100000000) / (double)(1 + (x >> 40) % 100000)
                   : i % 3 == 1 ? ldexp((double)(x >> 11), -(int)(x % 100))
                                : (double)(x % 1000000) / 1000.0 + 0.5 * (double)((x >> 32) & 1);
        if (!(v > 0)) continue;
        int e, k = strata_fmt_shortest(v, d, &e);
        assert_true(k >= 1 && k <= 17);
        snprintf(want, sizeof want, "%.*e", k - 1, v);
        char got[48];
        snprintf(got, sizeof got, "%c%s%.*se%+03d", d[0], k > 1 ? "." : "", k - 1, d + 1, e);
        if (strtod(got, NULL) != v || strcmp(got, want) != 0) fail_msg("%.17g: %s, printf %s", v, got, want);
    }
}

static void test_fmt_short_binary_fractions(void **state)
{
    (void)state;
    /* Values n / 2^k (averages over a power-of-two count: 37.25, 39.875)
     * take their own fast path (their exact digits); they match printf's
     * shortest round-trip form, the slow path's answer, for every n and k
     * below, across the N < 2^53 boundary of that path. */
    check_fmt(37.25, "37.25");
    check_fmt(39.875, "39.875");
    check_fmt(0.875, "0.875");
    check_fmt(0.5, "0.5");
    check_fmt(0x1p-20, "9.5367431640625e-7");
    check_fmt(-70.625, "-70.625");
    check_fmt(4503599627370495.5, "4503599627370495.5");
    check_fmt(0.1 + 0.2, "0.30000000000000004");
    char buf[STRATA_FMT_DOUBLE_BUFSZ], want[48], shorter[48];
    uint64_t x = 0x51ed270b27e9a3c1u;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int k = 1 + (int)(x % 24);
        uint64_t n = ((x >> 8) >> (int)((x >> 5) % 56)) | 1;
        if (n == 1) continue; /* powers of two: test_fmt_known_values */
        double v = ldexp((double)n, -k);
        int len = strata_fmt_double(v, buf, sizeof buf);
        assert_true(len > 0);
        /* the shortest that reads back, and printf's correctly rounded
         * digits at that length (the slow path's answer) */
        char d[20];
        int e, nd = strata_fmt_shortest(v, d, &e);
        char got[48];
        snprintf(got, sizeof got, "%c%s%.*se%+03d", d[0], nd > 1 ? "." : "", nd - 1, d + 1, e);
        snprintf(want, sizeof want, "%.*e", nd - 1, v);
        if (strcmp(got, want) != 0 || strtod(got, NULL) != v || strtod(buf, NULL) != v)
            fail_msg("%.17g: %s (%s), printf %s", v, got, buf, want);
        if (nd > 1) {
            snprintf(shorter, sizeof shorter, "%.*e", nd - 2, v);
            if (strtod(shorter, NULL) == v) fail_msg("%s is not shortest: %s also reads back", got, shorter);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_rfc3339_rejects),
        cmocka_unit_test(test_rfc3339_format),
        cmocka_unit_test(test_rfc3339_round_trip),
        cmocka_unit_test(test_unix_seconds),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_fmt_known_values),
        cmocka_unit_test(test_fmt_round_trip_random_bits),
        cmocka_unit_test(test_fmt_shortest_is_printf_nearest),
        cmocka_unit_test(test_fmt_short_binary_fractions),
    };
    return cmocka_run_group_tests_name("common_time", tests, NULL, NULL);
}
