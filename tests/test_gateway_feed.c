/*
 * test_gateway_feed.c: a gateway's ingest -> registry feed (api/daemon/refresh.h,
 * daemon_gateway_observe; docs/scale-out.md, "Registry refresh").  Against an
 * engine whose reads drop stale markers (Prometheus flavour, or a flavour not
 * probed yet) the feed leaves a pushed series' markers out, so the gateway that
 * took the push holds what its peers learn from the engine: the workload runs
 * on to its last sample + --staleness.  Against one whose reads keep them
 * (VictoriaMetrics, the local store) the marker ends the workload, as locally.
 * Found by tests/integration/test_gateway_e2e.py: gateway A (took the push)
 * answered the workload deleted at its marker, gateway B (the engine) live.
 */
#include "test_read_helpers.h"

#include <jansson.h>

#include "ingest.h"
#include "refresh.h"
#include "registry.h"
#include "strata_arena.h"
#include "strata_log.h"

#define T0  INT64_C(1734705000000) /* 2024-12-20T14:30:00Z */
#define SEC INT64_C(1000)
#define WL  "aaaaaaaa-0000-4000-8000-000000000001"

/* A source whose stale_markers op answers *backend. */
static int nr_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                     unsigned flags, int64_t deadline_ms, void **set)
{
    (void)backend, (void)m, (void)n, (void)mint, (void)maxt, (void)flags, (void)deadline_ms;
    *set = NULL;
    return 0;
}
static int flag_stale(void *backend) { return *(int *)backend; }

static const api_read_ops_t FLAG_OPS = { .select = nr_select,
                                         .next = test_empty_next,
                                         .labels = test_empty_labels,
                                         .samples = test_empty_samples,
                                         .free = test_empty_free,
                                         .stale_markers = flag_stale };

/* runai_workload_info of WL: 1 at T0, T0+30s, T0+60s, then a stale marker at T0+90s. */
static void push(daemon_gateway_feed_t *f)
{
    tsdb_label_t l[] = { { "__name__", "runai_workload_info" },
                         { "workload_id", WL },
                         { "workload_name", "w" } };
    tsdb_sample_t s[] = { { T0, 1 },
                          { T0 + 30 * SEC, 1 },
                          { T0 + 60 * SEC, 1 },
                          { T0 + 90 * SEC, test_bits_double(TSDB_STALE_NAN_BITS) } };
    tsdb_series_input_t in = { l, 3, s, 4 };
    assert_ok(daemon_gateway_observe(f, 0, &in));
    /* the input is left as it was (ingest stores it as sent) */
    assert_true(tsdb_is_stale(s[3].v));
    assert_int_equal(in.nsamples, 4);
}

/* A feed into a new registry, over a source whose engine keeps markers or
 * not, that has taken push(). */
static daemon_gateway_feed_t pushed_feed(int *keeps, api_read_source_t **src)
{
    assert_ok(api_read_source_new(&FLAG_OPS, keeps, 0, src));
    assert_int_equal(api_read_source_stale_markers(*src), *keeps);
    daemon_gateway_feed_t f = { NULL, *src };
    assert_ok(api_registry_new(NULL, &f.reg));
    push(&f);
    return f;
}

/* The workload's deletedAt at now, or "" when null. */
static void deleted_at(api_registry_t *r, int64_t now, char *out, size_t cap)
{
    strata_arena_t *a = strata_arena_new(0);
    api_registry_result_t res;
    assert_ok(api_registry_get(r, 0, WL, now, a, &res));
    json_error_t err;
    json_t *j = json_loads(res.json, 0, &err);
    assert_non_null(j);
    json_t *d = json_object_get(j, "deletedAt");
    snprintf(out, cap, "%s", json_is_string(d) ? json_string_value(d) : "");
    json_decref(j);
    strata_arena_free(a);
}

static void test_markers_dropped_when_the_engine_drops_them(void **state)
{
    (void)state;
    int keeps = 0;
    api_read_source_t *src;
    daemon_gateway_feed_t f = pushed_feed(&keeps, &src);
    char d[64];
    /* past the marker: still live, as a gateway reading the engine sees it */
    deleted_at(f.reg, T0 + 100 * SEC, d, sizeof d);
    assert_string_equal(d, "");
    /* the last sample at T0+60s holds for --staleness (5m) */
    deleted_at(f.reg, T0 + 360 * SEC - 1, d, sizeof d);
    assert_string_equal(d, "");
    deleted_at(f.reg, T0 + 360 * SEC, d, sizeof d);
    assert_string_equal(d, "2024-12-20T14:36:00Z");
    /* a series of markers only changes nothing */
    tsdb_label_t l[] = { { "__name__", "runai_workload_info" },
                         { "workload_id", WL },
                         { "workload_name", "w" } };
    tsdb_sample_t s[] = { { T0 + 120 * SEC, test_bits_double(TSDB_STALE_NAN_BITS) } };
    tsdb_series_input_t in = { l, 3, s, 1 };
    assert_ok(daemon_gateway_observe(&f, 0, &in));
    deleted_at(f.reg, T0 + 200 * SEC, d, sizeof d);
    assert_string_equal(d, "");
    api_registry_free(f.reg);
    api_read_source_free(src);
}

static void test_markers_kept_when_the_engine_keeps_them(void **state)
{
    (void)state;
    int keeps = 1;
    api_read_source_t *src;
    daemon_gateway_feed_t f = pushed_feed(&keeps, &src);
    char d[64];
    deleted_at(f.reg, T0 + 100 * SEC, d, sizeof d);
    assert_string_equal(d, "2024-12-20T14:31:30Z");
    api_registry_free(f.reg);
    api_read_source_free(src);
}

/* What each source says: the local store and VictoriaMetrics keep markers; a
 * Prometheus-flavoured engine, or one not probed yet ("auto"), does not. */
static void test_sources(void **state)
{
    (void)state;
    test_store_t *st = test_store_open();
    assert_int_equal(api_read_source_stale_markers(st->src), 1);
    test_store_close(st);
    api_read_source_t *src;
    const char *flavors[] = { "victoriametrics", "prometheus", "auto", NULL };
    const int want[] = { 1, 0, 0, 0 };
    for (int i = 0; i < 4; i++) {
        api_read_remote_opts_t ro = { .url = "http://127.0.0.1:1", .flavor = flavors[i] };
        assert_ok(api_read_source_prom(&ro, &src));
        assert_int_equal(api_read_source_stale_markers(src), want[i]);
        api_read_source_free(src);
    }
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markers_dropped_when_the_engine_drops_them),
        cmocka_unit_test(test_markers_kept_when_the_engine_keeps_them),
        cmocka_unit_test(test_sources),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
