/*
 * test_index.c: label matching through the public API: every matcher kind
 * on the head and on blocks, label values, long postings lists, and the
 * guard against regexes that make regcomp explode.
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
#include "tsdb_internal.h"

static const char *S1 = "__name__=cpu,env=prod,host=a";
static const char *S2 = "__name__=cpu,env=dev,host=b";
static const char *S3 = "__name__=cpu,host=c";
static const char *S4 = "__name__=mem,env=prod,host=a";
static const char *S5 = "__name__=mem,env=staging,host=abc";

static void check_matchers(tsdb_t *db)
{
    tsdb_matcher_t q1[] = { M(EQ, "__name__", "cpu") };
    check_query(db, q1, 1,
                "{__name__=cpu,env=dev,host=b}{__name__=cpu,env=prod,host=a}{__name__=cpu,host=c}");
    tsdb_matcher_t q2[] = { M(EQ, "__name__", "cpu"), M(EQ, "env", "") };
    check_query(db, q2, 2, "{__name__=cpu,host=c}");
    tsdb_matcher_t q3[] = { M(EQ, "__name__", "cpu"), M(NEQ, "env", "prod") };
    check_query(db, q3, 2, "{__name__=cpu,env=dev,host=b}{__name__=cpu,host=c}");
    tsdb_matcher_t q4[] = { M(EQ, "__name__", "cpu"), M(NEQ, "env", "") };
    check_query(db, q4, 2, "{__name__=cpu,env=dev,host=b}{__name__=cpu,env=prod,host=a}");
    tsdb_matcher_t q5[] = { M(RE, "env", "prod|staging") }; /* set fast path */
    check_query(
        db, q5, 1,
        "{__name__=cpu,env=prod,host=a}{__name__=mem,env=prod,host=a}{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q6[] = { M(RE, "host", "a.*") }; /* prefix fast path */
    check_query(
        db, q6, 1,
        "{__name__=cpu,env=prod,host=a}{__name__=mem,env=prod,host=a}{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q7[] = { M(RE, "host", "[ab]") }; /* general regex, fully anchored */
    check_query(db, q7, 1,
                "{__name__=cpu,env=dev,host=b}{__name__=cpu,env=prod,host=a}{__name__=mem,env=prod,host=a}");
    tsdb_matcher_t q8[] = { M(RE, "__name__", "cpu|mem"), M(NRE, "env", "prod|dev") };
    check_query(db, q8, 2, "{__name__=cpu,host=c}{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q9[] = { M(RE, "__name__", ".+"), M(RE, "host", "a.*"), M(RE, "env", "st.*") };
    check_query(db, q9, 3, "{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q10[] = { M(RE, "host", "b|"), M(EQ, "__name__", "cpu") }; /* matches "" too */
    check_query(db, q10, 2, "{__name__=cpu,env=dev,host=b}");
    tsdb_matcher_t q11[] = { M(NRE, "host", "a.*"), M(RE, "__name__", "c.u") };
    check_query(db, q11, 2, "{__name__=cpu,env=dev,host=b}{__name__=cpu,host=c}");
    tsdb_matcher_t q12[] = { M(EQ, "__name__", "cpu"), M(EQ, "host", "zzz") };
    check_query(db, q12, 2, "");
    tsdb_matcher_t q13[] = { M(EQ, "env", "prod"), M(EQ, "host", "a"), M(NEQ, "__name__", "mem") };
    check_query(db, q13, 3, "{__name__=cpu,env=prod,host=a}");
    tsdb_matcher_t q14[] = { M(RE, "env", "pro") }; /* anchored: no partial match */
    check_query(db, q14, 1, "");

    tsdb_series_set_t *set = NULL;
    tsdb_matcher_t bad1[] = { M(EQ, "env", "") };
    assert_err(tsdb_select(db, bad1, 1, 0, 1, &set), STRATA_EINVAL);
    tsdb_matcher_t bad2[] = { M(RE, "host", ".*"), M(NEQ, "env", "x") };
    assert_err(tsdb_select(db, bad2, 2, 0, 1, &set), STRATA_EINVAL);
    tsdb_matcher_t bad3[] = { M(RE, "host", "(a") };
    assert_err(tsdb_select(db, bad3, 1, 0, 1, &set), STRATA_EBADREGEX);
    assert_null(set);

    const char **v;
    size_t n;
    assert_ok(tsdb_label_values(db, "host", &v, &n));
    assert_int_equal(n, 4);
    assert_string_equal(v[0], "a");
    assert_string_equal(v[1], "abc");
    assert_string_equal(v[2], "b");
    assert_string_equal(v[3], "c");
    free(v);
    assert_ok(tsdb_label_values(db, "env", &v, &n));
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "dev");
    assert_string_equal(v[1], "prod");
    assert_string_equal(v[2], "staging");
    free(v);
    assert_ok(tsdb_label_values(db, "nope", &v, &n));
    assert_int_equal(n, 0);
    free(v);
}

static void test_index_and_matchers(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    const char *all[] = { S1, S2, S3, S4, S5 };
    for (int i = 0; i < 5; i++) append_range(db, all[i], 1000, 1000, 3, i);
    check_matchers(db); /* head */
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_matchers(db); /* after WAL replay */
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.head_series, 0);
    check_matchers(db); /* block only */
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_matchers(db); /* block after reopen */
    /* head and block together: S1 gets more samples in the head */
    append_range(db, S1, 5000, 1000, 2, 9);
    check_matchers(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Few candidates against long postings lists (a tenant label on every
 * series, a label most series carry): the search-instead-of-intersect paths
 * give exactly what the plain intersection gives, on the head and on a block. */
static void test_selective_matchers_long_postings(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    char labels[128];
    for (int i = 0; i < 1200; i++) {
        /* every series has t=0; all but every 100th carry w=<i/10>; i%3 picks the name */
        if (i % 100 == 0)
            snprintf(labels, sizeof labels, "__name__=m%d,i=%04d,t=0", i % 3, i);
        else
            snprintf(labels, sizeof labels, "__name__=m%d,i=%04d,t=0,w=%03d", i % 3, i, i / 10);
        append_range(db, labels, 1000, 1000, 1, i);
    }
    tsdb_matcher_t one[] = { M(EQ, "i", "0501"), M(EQ, "t", "0"), M(EQ, "__name__", "m0") };
    tsdb_matcher_t set[] = { M(RE, "i", "0300|0301|0302|0400"), M(EQ, "t", "0"), M(EQ, "w", "") };
    tsdb_matcher_t none[] = { M(EQ, "i", "0501"), M(EQ, "t", "1") };
    tsdb_matcher_t neq[] = { M(RE, "i", "0300|0301|0302"), M(NEQ, "w", "030"), M(EQ, "t", "0") };
    for (int pass = 0; pass < 2; pass++) {
        char *got = query(db, one, 3, INT64_MIN, INT64_MAX, 0);
        assert_string_equal(got, "{__name__=m0,i=0501,t=0,w=050}");
        free(got);
        got = query(db, set, 3, INT64_MIN, INT64_MAX, 0); /* only the series without w */
        assert_string_equal(got, "{__name__=m0,i=0300,t=0}{__name__=m1,i=0400,t=0}");
        free(got);
        got = query(db, none, 2, INT64_MIN, INT64_MAX, 0);
        assert_string_equal(got, "");
        free(got);
        got = query(db, neq, 3, INT64_MIN, INT64_MAX, 0); /* 0300 has no w, 0301/0302 have w=030 */
        assert_string_equal(got, "{__name__=m0,i=0300,t=0}");
        free(got);
        assert_ok(tsdb_cut_head(db)); /* second pass reads the block index */
    }
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Patterns that make glibc's regcomp explode are refused before it runs, with
 * the reason; ordinary Prometheus-style patterns pass; select refuses them too. */
static void test_regex_complexity_guard(void **state)
{
    (void)state;
    static const char *const refused[][2] = {
        { "(x?)++++++", "stacked repetition operators" },
        { "(x?)+++++", "stacked repetition operators" },
        { "x{1,32767}", "repetition bound over 100" },
        { "((x{1,1000}){1,1000})", "repetition bound over 100" },
        { "((a{1,20}){1,20})", "bounded repetition of a group that repeats" },
        { "(((((x?)+)+)+)+)+", "repetition nested more than 4 deep" },
        { "(x?)+(x?)+(x?)+(x?)+(x?)+", "more than 4 repeated groups that repeat inside" },
        { "(((x?){0,20})+++)", "stacked repetition operators" },
        { "((x?)+){2}", "bounded repetition of a group that repeats" },
        { "((x{2})y){2}", "bounded repetition of a group that repeats" },
    };
    static const char *const accepted[] = {
        ".*",
        "a|b|c",
        "gpu-.*",
        ".*a.*b.*c.*d.*e.*f.*g.*",
        "(a|b|c)+(d|e)*(f?g)+",
        "x{1,100}",
        "[+*?]+",
        "a\\++",
        "(x?)+(x?)+(x?)+(x?)+",
        "(((x?)+)+)+",
        "[]a]*",
        "(a){2}(b){3}",
        "([0-9a-f]+-){4}0*([0-9]+)",
    };
    char why[96];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        why[0] = '\0';
        assert_err(tsdb_regex_check(refused[i][0], why, sizeof why), STRATA_EBADREGEX);
        assert_string_equal(why, refused[i][1]);
    }
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        if (tsdb_regex_check(accepted[i], why, sizeof why) != 0) fail_msg("%s refused: %s", accepted[i], why);
    /* bounded repetitions add up: ".{0,100}" 120 times took seconds and ~60 MiB
     * in regcomp; 400 repeated atoms in all are the cap, a group counting its width */
    char big[1024] = "";
    for (int i = 0; i < 120; i++) strcat(big, ".{0,100}");
    assert_err(tsdb_regex_check(big, why, sizeof why), STRATA_EBADREGEX);
    assert_string_equal(why, "bounded repetitions add up to more than 400");
    big[0] = '\0';
    for (int i = 0; i < 20; i++) strcat(big, "x{1,20}");
    assert_ok(tsdb_regex_check(big, why, sizeof why));
    strcat(big, "y{1}");
    assert_err(tsdb_regex_check(big, why, sizeof why), STRATA_EBADREGEX);
    assert_ok(tsdb_regex_check("(abc){1,100}", why, sizeof why));
    assert_err(tsdb_regex_check("(abcd){1,100}", why, sizeof why), STRATA_EBADREGEX);
    /* a bracket expression is one atom however long: `.` as one UTF-8
     * character is 10 atoms and its group, 11 */
    assert_ok(tsdb_regex_check("(.|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]|"
                               "[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf]){36}",
                               why, sizeof why));
    assert_err(tsdb_regex_check("(.|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf][\x80-\xbf]|"
                                "[\xf0-\xf4][\x80-\xbf][\x80-\xbf][\x80-\xbf]){37}",
                                why, sizeof why),
               STRATA_EBADREGEX);
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=r,v=x", 1000, 1000, 1, 0);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "r"), M(RE, "v", "(x?)++++++") };
    tsdb_series_set_t *set = NULL;
    assert_err(tsdb_select(db, m, 2, INT64_MIN, INT64_MAX, &set), STRATA_EBADREGEX);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* A label with 64 values v0..v63, series i carrying vi; counts the values walked. */
static size_t walked_values;
static int walk_each_value(const void *idx, const char *name, tsdb_value_cb cb, void *ctx)
{
    (void)idx;
    (void)name;
    for (uint32_t i = 0; i < 64; i++) {
        char v[8];
        snprintf(v, sizeof v, "v%u", i);
        walked_values++;
        int rc = cb(ctx, v, &i, 1);
        if (rc) return rc;
    }
    return 0;
}
static void walk_lookup(const void *idx, const char *name, const char *value, const uint32_t **ids, size_t *n)
{
    (void)idx;
    (void)name;
    (void)value;
    *ids = NULL;
    *n = 0;
}

/* Walking a label's values for a regex stops at the matcher's deadline
 * (checked between values): STRATA_ETIMEOUT after the first value, not the
 * whole walk; accepting and rejecting walks alike. */
static void test_regex_walk_deadline(void **state)
{
    (void)state;
    static const tsdb_index_ops_t ops = { walk_each_value, walk_lookup };
    const tsdb_matcher_t in[] = { M(RE, "k", "v.*1") };
    tsdb_cmatcher_t *cm;
    assert_ok(tsdb_matchers_compile(in, 1, &cm));
    uint32_t *ids = NULL;
    size_t n = 0;
    walked_values = 0;
    assert_ok(tsdb_index_select(&ops, NULL, cm, 1, &ids, &n));
    assert_int_equal(walked_values, 64);
    assert_int_equal(n, 7); /* v1 v11 v21 v31 v41 v51 v61 */
    free(ids);
    cm[0].deadline_ms = tsdb_mono_ms() - 1;
    walked_values = 0;
    assert_err(tsdb_index_select(&ops, NULL, cm, 1, &ids, &n), STRATA_ETIMEOUT);
    assert_int_equal(walked_values, 1);
    tsdb_matchers_free(cm, 1);
    /* a matcher accepting "" walks to reject candidates: it stops as well */
    const tsdb_matcher_t in2[] = { M(RE, "k", "v.*1"), M(NRE, "k", "v.*2") };
    assert_ok(tsdb_matchers_compile(in2, 2, &cm));
    cm[1].deadline_ms = tsdb_mono_ms() - 1;
    walked_values = 0;
    assert_err(tsdb_index_select(&ops, NULL, cm, 2, &ids, &n), STRATA_ETIMEOUT);
    assert_int_equal(walked_values, 64 + 1);
    tsdb_matchers_free(cm, 2);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_and_matchers),
        cmocka_unit_test(test_regex_complexity_guard),
        cmocka_unit_test(test_regex_walk_deadline),
        cmocka_unit_test(test_selective_matchers_long_postings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
