/*
 * test_read.c: the read seam (api/query/read.h): the tenant-scoped select
 * over the local store, the all-tenants rebuild read, streaming and rollups
 * through the seam, a backend without rollups, and the per-request read
 * budget (deadline, sample limit) with deliberately tiny limits.
 */
#include "test_read_helpers.h"

#include "ingest.h"
#include "strata_log.h"

static void put(tsdb_t *db, const char *tenant, const char *name, double base)
{
    tsdb_label_t l[] = { { "__name__", name }, { INGEST_TENANT_LABEL, tenant }, { "gpu", "0" } };
    tsdb_sample_t s[3];
    for (int i = 0; i < 3; i++) s[i] = (tsdb_sample_t){ 1000 * (i + 1), base + i };
    tsdb_series_input_t in = { l, 3, s, 3 };
    tsdb_append_result_t res;
    assert_ok(tsdb_append(db, &in, 1, &res));
    assert_int_equal(res.appended, 3);
}

static int setup(void **state)
{
    strata_log_set_level(STRATA_LOG_ERROR);
    test_store_t *f = test_store_open();
    put(f->db, "1", "up", 10);
    put(f->db, "2", "up", 20);
    put(f->db, "2", "down", 30);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    test_store_close(*state);
    return 0;
}

static const char *label(const tsdb_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

/* Every series of one select as "tenant/name/first-value" lines. */
static void collect(api_read_set_t *set, char *out, size_t cap)
{
    out[0] = 0;
    int rc;
    while ((rc = api_read_set_next(set)) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = api_read_set_labels(set, &nl);
        const tsdb_sample_t *s;
        assert_ok(api_read_set_samples(set, &s, &ns));
        assert_int_equal(ns, 3);
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s/%s/%g;", label(l, nl, INGEST_TENANT_LABEL),
                 label(l, nl, "__name__"), s[0].v);
    }
    assert_int_equal(rc, 0);
}

static void test_select_sees_only_its_tenant(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t m[] = { { TSDB_MATCH_RE, "__name__", "up|down" } };
    char got[256];
    api_read_set_t *set;
    assert_ok(api_read_select(f->src, 1, 0, NULL, m, 1, 0, 10000, &set));
    collect(set, got, sizeof got);
    api_read_set_free(set);
    assert_string_equal(got, "1/up/10;");
    assert_ok(api_read_select(f->src, 2, 0, NULL, m, 1, 0, 10000, &set));
    collect(set, got, sizeof got);
    api_read_set_free(set);
    assert_string_equal(got, "2/down/30;2/up/20;");
    /* a tenant with no series sees nothing, not everyone's */
    assert_ok(api_read_select(f->src, 3, 0, NULL, m, 1, 0, 10000, &set));
    collect(set, got, sizeof got);
    api_read_set_free(set);
    assert_string_equal(got, "");
}

static void test_all_tenants_for_rebuilds(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "up" } };
    char got[256];
    api_read_set_t *set;
    assert_ok(api_read_select(f->src, 0, API_READ_ALL_TENANTS | API_READ_STREAM, NULL, m, 1, 0, 10000, &set));
    collect(set, got, sizeof got);
    api_read_set_free(set);
    assert_string_equal(got, "1/up/10;2/up/20;");
}

static void test_tenant_label_in_a_selector_is_refused(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "up" },
                                 { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, "2" } };
    api_read_set_t *set = (api_read_set_t *)1;
    assert_err(api_read_select(f->src, 1, 0, NULL, m, 2, 0, 10000, &set), STRATA_EINVAL);
    assert_null(set);
    tsdb_matcher_t many[API_READ_MAX_MATCHERS];
    for (size_t i = 0; i < API_READ_MAX_MATCHERS; i++) many[i] = m[0];
    assert_err(api_read_select(f->src, 1, 0, NULL, many, API_READ_MAX_MATCHERS, 0, 10000, &set),
               STRATA_ELIMIT);
}

static void test_rollups_through_the_seam(void **state)
{
    test_store_t *f = *state;
    assert_true(api_read_source_caps(f->src) & API_READ_CAP_ROLLUPS);
    const tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "up" } };
    api_read_set_t *set;
    assert_ok(api_read_select(f->src, 2, 0, NULL, m, 1, 0, TSDB_ROLLUP_5M, &set));
    assert_int_equal(api_read_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t n;
    assert_ok(api_read_set_rollups(set, TSDB_ROLLUP_5M, &p, &n));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].t, TSDB_ROLLUP_5M);
    assert_int_equal(p[0].count, 3);
    assert_true(p[0].sum == 20 + 21 + 22);
    assert_true(p[0].max == 22);
    api_read_set_free(set);
}

/* A backend that keeps no rollups: the seam answers STRATA_EUNSUPPORTED
 * without calling into it, and still adds the tenant matcher. */
static const tsdb_matcher_t *seen_m;
static size_t seen_n;
static int nr_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                     unsigned flags, int64_t deadline_ms, void **set)
{
    (void)deadline_ms;
    (void)mint;
    (void)maxt;
    (void)flags;
    seen_m = m;
    seen_n = n;
    *set = backend;
    return 0;
}

static int64_t seen_deadline;
static int dl_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                     unsigned flags, int64_t deadline_ms, void **set)
{
    seen_deadline = deadline_ms;
    return nr_select(backend, m, n, mint, maxt, flags, deadline_ms, set);
}

/* A deadline already past: the select fails STRATA_ETIMEOUT before the
 * backend runs, and the reason names --query-timeout. */
static void test_budget_deadline_at_select(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t m[] = { { TSDB_MATCH_RE, "__name__", "up|down" } };
    api_read_budget_t b;
    api_read_budget_init(&b, 5, 0);
    b.deadline_ms = api_read_mono_ms() - 1;
    api_read_set_t *set = NULL;
    assert_err(api_read_select(f->src, 2, 0, &b, m, 1, 0, 10000, &set), STRATA_ETIMEOUT);
    assert_null(set);
    assert_int_equal(b.exceeded, STRATA_ETIMEOUT);
    char why[160];
    assert_string_equal(api_read_budget_why(&b, why, sizeof why),
                        "query timeout: the read ran past --query-timeout (5 ms)");
}

/* The deadline passing while a set is walked: next, samples and rollups
 * fail STRATA_ETIMEOUT from then on. */
static void test_budget_deadline_mid_walk(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t m[] = { { TSDB_MATCH_RE, "__name__", "up|down" } };
    api_read_budget_t b;
    api_read_budget_init(&b, 3600 * 1000, 0);
    api_read_set_t *set;
    assert_ok(api_read_select(f->src, 2, 0, &b, m, 1, 0, 10000, &set));
    assert_int_equal(api_read_set_next(set), 1);
    const tsdb_sample_t *s;
    size_t ns;
    assert_ok(api_read_set_samples(set, &s, &ns));
    assert_int_equal(ns, 3);
    b.deadline_ms = api_read_mono_ms() - 1; /* the hour is up */
    assert_err(api_read_set_samples(set, &s, &ns), STRATA_ETIMEOUT);
    assert_int_equal(ns, 0);
    const tsdb_rollup_point_t *p;
    assert_err(api_read_set_rollups(set, TSDB_ROLLUP_5M, &p, &ns), STRATA_ETIMEOUT);
    assert_err(api_read_set_next(set), STRATA_ETIMEOUT);
    api_read_set_free(set);
}

/* More samples than the budget allows across the sets of one request:
 * STRATA_ELIMIT naming --query-max-samples, and every later read of the
 * budget fails too. */
static void test_budget_sample_limit(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t up[] = { { TSDB_MATCH_EQ, "__name__", "up" } };
    const tsdb_matcher_t down[] = { { TSDB_MATCH_EQ, "__name__", "down" } };
    api_read_budget_t b;
    api_read_budget_init(&b, 0, 4);
    api_read_set_t *set;
    const tsdb_sample_t *s;
    size_t ns;
    assert_ok(api_read_select(f->src, 2, 0, &b, up, 1, 0, 10000, &set));
    assert_int_equal(api_read_set_next(set), 1);
    assert_ok(api_read_set_samples(set, &s, &ns)); /* 3 of 4 */
    api_read_set_free(set);
    assert_ok(api_read_select(f->src, 2, 0, &b, down, 1, 0, 10000, &set));
    assert_int_equal(api_read_set_next(set), 1);
    assert_err(api_read_set_samples(set, &s, &ns), STRATA_ELIMIT); /* 6 > 4 */
    assert_null(s);
    assert_err(api_read_set_next(set), STRATA_ELIMIT);
    api_read_set_free(set);
    char why[160];
    assert_string_equal(api_read_budget_why(&b, why, sizeof why),
                        "query over budget: more than 4 samples read (--query-max-samples)");
    assert_err(api_read_select(f->src, 2, 0, &b, up, 1, 0, 10000, &set), STRATA_ELIMIT);
    /* rollup points count as well */
    api_read_budget_init(&b, 0, 1);
    assert_ok(api_read_select(f->src, 2, 0, &b, up, 1, 0, TSDB_ROLLUP_5M, &set));
    assert_int_equal(api_read_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t np;
    assert_ok(api_read_set_rollups(set, TSDB_ROLLUP_5M, &p, &np));
    assert_int_equal(np, 1);
    assert_int_equal(b.samples, 1);
    api_read_set_free(set);
    /* no budget, no limit; a budget with none set, none either */
    assert_ok(api_read_select(f->src, 2, 0, NULL, up, 1, 0, 10000, &set));
    api_read_set_free(set);
    api_read_budget_init(&b, 0, 0);
    assert_int_equal(b.deadline_ms, 0);
    assert_ok(api_read_select(f->src, 2, 0, &b, up, 1, 0, 10000, &set));
    assert_int_equal(api_read_set_next(set), 1);
    assert_ok(api_read_set_samples(set, &s, &ns));
    api_read_set_free(set);
    assert_string_equal(api_read_budget_why(&b, why, sizeof why), "");
}

/* The local backend's select stops walking label values at the deadline:
 * a regex over every value of a label is STRATA_ETIMEOUT, not a scan to the
 * end, and the source's limits start a request's budget. */
static void test_budget_deadline_in_the_regex_walk(void **state)
{
    test_store_t *f = *state;
    const tsdb_matcher_t m[] = { { TSDB_MATCH_RE, "__name__", ".*o.*" } };
    tsdb_series_set_t *ts = NULL;
    assert_err(tsdb_select_until(f->db, m, 1, 0, 10000, tsdb_mono_ms() - 1, &ts), STRATA_ETIMEOUT);
    assert_null(ts);
    assert_ok(tsdb_select_until(f->db, m, 1, 0, 10000, tsdb_mono_ms() + 3600 * 1000, &ts));
    tsdb_series_set_free(ts);
    /* the budget's deadline reaches the backend */
    static const api_read_ops_t ops = {
        dl_select, test_empty_next, test_empty_labels, test_empty_samples, NULL, test_empty_free, NULL, NULL,
        NULL
    };
    int backend;
    api_read_source_t *src;
    assert_ok(api_read_source_new(&ops, &backend, 0, &src));
    api_read_source_set_limits(src, 60000, 7);
    api_read_budget_t b;
    api_read_source_budget(src, &b);
    assert_int_equal(b.max_samples, 7);
    assert_true(b.deadline_ms > api_read_mono_ms() + 50000);
    api_read_set_t *set;
    const tsdb_matcher_t up[] = { { TSDB_MATCH_EQ, "__name__", "up" } };
    assert_ok(api_read_select(src, 1, 0, &b, up, 1, 0, 1, &set));
    assert_int_equal(seen_deadline, b.deadline_ms);
    api_read_set_free(set);
    api_read_source_free(src);
}

static void test_backend_without_rollups(void **state)
{
    (void)state;
    static const api_read_ops_t ops = {
        nr_select, test_empty_next, test_empty_labels, test_empty_samples, NULL, test_empty_free, NULL, NULL,
        NULL
    };
    api_read_source_t *src;
    assert_err(api_read_source_new(&ops, NULL, API_READ_CAP_ROLLUPS, &src), STRATA_EINVAL);
    int backend;
    assert_ok(api_read_source_new(&ops, &backend, 0, &src));
    const tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "up" } };
    api_read_set_t *set;
    assert_ok(api_read_select(src, 42, 0, NULL, m, 1, 0, 1, &set));
    assert_int_equal(seen_n, 2);
    assert_string_equal(seen_m[1].name, INGEST_TENANT_LABEL);
    assert_int_equal(seen_m[1].op, TSDB_MATCH_EQ);
    assert_string_equal(seen_m[1].value, "42");
    const tsdb_rollup_point_t *p;
    size_t n;
    assert_err(api_read_set_rollups(set, TSDB_ROLLUP_5M, &p, &n), STRATA_EUNSUPPORTED);
    api_read_set_free(set);
    api_read_source_free(src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_select_sees_only_its_tenant, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_tenants_for_rebuilds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tenant_label_in_a_selector_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollups_through_the_seam, setup, teardown),
        cmocka_unit_test(test_backend_without_rollups),
        cmocka_unit_test_setup_teardown(test_budget_deadline_at_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_deadline_mid_walk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_sample_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_deadline_in_the_regex_walk, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
