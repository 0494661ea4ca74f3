/*
 * test_ingest_cache.c: the ingest label cache (ingest/label_cache.c,
 * docs/strata-load.md "Where ingest time goes") and what it rests on:
 * tsdb_append_refs and the observer filter.  A series seen before must land
 * in exactly the series the slow path finds; label order and tenant must not
 * be confused; bad labels are refused on every sight; a series the head has
 * dropped is found or created anew; messages name the series as before.
 */
#include "test_helpers.h"

#include <snappy-c.h>

#include "ingest.h"
#include "remote_write_v1.pb-c.h"

#define NOW_MS INT64_C(1700000000000)

typedef struct {
    const char *name, *value;
} kv_t;

static ProtobufCBinaryData bin(const char *s) { return (ProtobufCBinaryData){ strlen(s), (uint8_t *)s }; }

/* A compressed RW1 request: nseries series, series i with labels kv[i]
 * (nl[i] of them, in the order given) and one sample (t[i], v[i]). */
static char *body(size_t nseries, const kv_t *const *kv, const size_t *nl, const int64_t *t, const double *v,
                  size_t *clen)
{
    Prometheus__Label labels[4][8], *lp[4][8];
    Prometheus__Sample smp[4], *sp[4];
    Prometheus__TimeSeries ts[4], *tsp[4];
    for (size_t s = 0; s < nseries; s++) {
        for (size_t i = 0; i < nl[s]; i++) {
            prometheus__label__init(&labels[s][i]);
            labels[s][i].name = bin(kv[s][i].name);
            labels[s][i].value = bin(kv[s][i].value);
            lp[s][i] = &labels[s][i];
        }
        prometheus__sample__init(&smp[s]);
        smp[s].timestamp = t[s];
        smp[s].value = v[s];
        sp[s] = &smp[s];
        prometheus__time_series__init(&ts[s]);
        ts[s].n_labels = nl[s];
        ts[s].labels = lp[s];
        ts[s].n_samples = 1;
        ts[s].samples = &sp[s];
        tsp[s] = &ts[s];
    }
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = nseries;
    req.timeseries = tsp;
    uint8_t raw[4096];
    size_t len = prometheus__write_request__pack(&req, raw);
    *clen = snappy_max_compressed_length(len);
    char *c = malloc(*clen);
    assert_int_equal(snappy_compress((const char *)raw, len, c, clen), SNAPPY_OK);
    return c;
}

typedef struct fixture {
    char *dir;
    tsdb_t *db;
    ingest_t *ing;
    strata_arena_t *arena;
    int observed, filtered; /* observer calls, filter calls */
    char last_observed[64];
    char last_labels[256]; /* the observed series' labels, name=value;... */
    uint32_t refs[8];      /* refs the ref observer got, in order */
    size_t nrefs;
} fixture_t;

static int observe(void *ctx, int32_t tenant, const tsdb_series_input_t *s)
{
    (void)tenant;
    fixture_t *f = ctx;
    f->observed++;
    size_t off = 0;
    for (size_t i = 0; i < s->nlabels && off < sizeof f->last_labels; i++)
        off += (size_t)snprintf(f->last_labels + off, sizeof f->last_labels - off, "%s=%s;",
                                s->labels[i].name, s->labels[i].value);
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, "s") == 0)
            snprintf(f->last_observed, sizeof f->last_observed, "%s", s->labels[i].value);
    return 0;
}

static int wants(void *ctx, const tsdb_series_input_t *s)
{
    fixture_t *f = ctx;
    f->filtered++;
    for (size_t i = 0; i < s->nlabels; i++)
        if (strcmp(s->labels[i].name, "__name__") == 0) return strcmp(s->labels[i].value, "wanted") == 0;
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->dir = test_tmpdir_new();
    tsdb_options_t opts;
    tsdb_options_init(&opts);
    opts.dir = f->dir;
    opts.background = 0;
    opts.fsync = TSDB_FSYNC_NEVER;
    assert_ok(tsdb_open(&opts, &f->db));
    ingest_limits_t lim;
    ingest_limits_init(&lim);
    assert_ok(ingest_new(f->db, &lim, &f->ing));
    ingest_set_observer(f->ing, observe, f);
    ingest_set_observer_filter(f->ing, wants);
    f->arena = strata_arena_new(0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    ingest_free(f->ing);
    tsdb_close(f->db);
    test_tmpdir_free(f->dir);
    strata_arena_free(f->arena);
    free(f);
    return 0;
}

/* Writes one series with one sample as tenant. */
static int put(fixture_t *f, int32_t tenant, const kv_t *kv, size_t nl, int64_t t, double v,
               ingest_result_t *res)
{
    size_t clen;
    char *c = body(1, &kv, &nl, &t, &v, &clen);
    strata_arena_reset(f->arena);
    int rc = ingest_write(f->ing, f->arena, INGEST_PROTO_V1, c, clen, tenant, NOW_MS, res);
    free(c);
    return rc;
}

/* The store's series for __name__=name and tenant: count, and the samples of
 * all of them in total. */
static void stored(fixture_t *f, const char *name, const char *tenant, size_t *nseries, size_t *nsamples)
{
    tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", name },
                           { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, tenant } };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(f->db, m, 2, INT64_MIN, INT64_MAX, &set));
    *nseries = *nsamples = 0;
    while (tsdb_series_set_next(set) == 1) {
        const tsdb_sample_t *smp;
        size_t ns;
        assert_ok(tsdb_series_set_samples(set, &smp, &ns));
        (*nseries)++;
        *nsamples += ns;
    }
    tsdb_series_set_free(set);
}

/* Samples of the tenant's series with label s=sv. */
static size_t samples_of(fixture_t *f, const char *sv, const char *tenant)
{
    tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "s", sv }, { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, tenant } };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(f->db, m, 2, INT64_MIN, INT64_MAX, &set));
    size_t total = 0;
    while (tsdb_series_set_next(set) == 1) {
        const tsdb_sample_t *smp;
        size_t ns;
        assert_ok(tsdb_series_set_samples(set, &smp, &ns));
        total += ns;
    }
    tsdb_series_set_free(set);
    return total;
}

static void test_seen_series_same_as_slow_path(void **state)
{
    fixture_t *f = *state;
    const kv_t a[] = { { "__name__", "m" }, { "job", "j" }, { "s", "a" } };
    const kv_t b[] = { { "__name__", "m" }, { "job", "j" }, { "s", "b" } };
    ingest_result_t res;
    assert_int_equal(ingest_label_cache_size(f->ing), 0);
    assert_ok(put(f, 1, a, 3, NOW_MS - 3000, 1, &res));
    assert_int_equal(res.series_created, 1);
    assert_int_equal(ingest_label_cache_size(f->ing), 1);
    assert_ok(put(f, 1, b, 3, NOW_MS - 3000, 2, &res));
    assert_int_equal(ingest_label_cache_size(f->ing), 2);
    /* second sight: from the cache, into the same series */
    for (int k = 2; k >= 0; k--) {
        assert_ok(put(f, 1, a, 3, NOW_MS - k * 1000, 10 + k, &res));
        assert_int_equal(res.series_created, 0);
        assert_int_equal(res.samples_written, 1);
    }
    assert_int_equal(ingest_label_cache_size(f->ing), 2);
    size_t ns, nsmp;
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 2);
    assert_int_equal(nsmp, 5);
    assert_int_equal(samples_of(f, "a", "1"), 4);
    assert_int_equal(samples_of(f, "b", "1"), 1);

    /* a request mixing a cached and a new series */
    const kv_t c[] = { { "__name__", "m" }, { "job", "j" }, { "s", "c" } };
    const kv_t *kv[] = { a, c };
    size_t nl[] = { 3, 3 };
    int64_t t[] = { NOW_MS + 1000, NOW_MS + 1000 };
    double v[] = { 5, 6 };
    size_t clen;
    char *body2 = body(2, kv, nl, t, v, &clen);
    strata_arena_reset(f->arena);
    assert_ok(ingest_write(f->ing, f->arena, INGEST_PROTO_V1, body2, clen, 1, NOW_MS, &res));
    free(body2);
    assert_int_equal(res.series_created, 1);
    assert_int_equal(res.samples_written, 2);
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 3);
    assert_int_equal(nsmp, 7);
    assert_int_equal(samples_of(f, "a", "1"), 5);
    assert_int_equal(samples_of(f, "c", "1"), 1);
}

static void test_order_and_tenant_not_confused(void **state)
{
    fixture_t *f = *state;
    const kv_t sorted[] = { { "__name__", "m" }, { "job", "j" }, { "s", "a" } };
    const kv_t shuffled[] = { { "s", "a" }, { "__name__", "m" }, { "job", "j" } };
    const kv_t other[] = { { "__name__", "m" }, { "job", "j" }, { "s", "A" } };
    ingest_result_t res;
    assert_ok(put(f, 1, sorted, 3, NOW_MS - 2000, 1, &res));
    /* other bytes, same labels: its own cache entry, the same series */
    assert_ok(put(f, 1, shuffled, 3, NOW_MS - 1000, 2, &res));
    assert_int_equal(res.series_created, 0);
    assert_int_equal(ingest_label_cache_size(f->ing), 2);
    assert_ok(put(f, 1, shuffled, 3, NOW_MS, 3, &res)); /* and again, from the cache */
    assert_int_equal(res.series_created, 0);
    /* one byte different: another series */
    assert_ok(put(f, 1, other, 3, NOW_MS, 4, &res));
    assert_int_equal(res.series_created, 1);
    /* the same bytes from another tenant: that tenant's own series */
    assert_ok(put(f, 2, sorted, 3, NOW_MS, 5, &res));
    assert_int_equal(res.series_created, 1);
    assert_ok(put(f, 2, sorted, 3, NOW_MS + 1000, 6, &res));
    assert_int_equal(res.series_created, 0);
    assert_int_equal(ingest_label_cache_size(f->ing), 4);
    /* a tenant id beyond what an entry holds is not cached, and still right */
    for (int k = 0; k < 2; k++) {
        assert_ok(put(f, 70000, sorted, 3, NOW_MS + k, 7, &res));
        assert_int_equal(res.series_created, k == 0);
        assert_int_equal(res.samples_written, 1);
    }
    assert_int_equal(ingest_label_cache_size(f->ing), 4);
    size_t ns, nsmp;
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 2);
    assert_int_equal(nsmp, 4); /* a: 3, A: 1 */
    stored(f, "m", "2", &ns, &nsmp);
    assert_int_equal(ns, 1);
    assert_int_equal(nsmp, 2);
    stored(f, "m", "70000", &ns, &nsmp);
    assert_int_equal(ns, 1);
    assert_int_equal(nsmp, 2);
    tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "s", "a" }, { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, "1" } };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(f->db, m, 2, INT64_MIN, INT64_MAX, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_sample_t *smp;
    assert_ok(tsdb_series_set_samples(set, &smp, &ns));
    assert_int_equal(ns, 3);
    assert_true(smp[0].v == 1 && smp[1].v == 2 && smp[2].v == 3);
    tsdb_series_set_free(set);
}

static void test_bad_labels_refused_every_time(void **state)
{
    fixture_t *f = *state;
    const kv_t bad[] = { { "__name__", "m" }, { "bad-name", "x" } };
    const kv_t dup[] = { { "__name__", "m" }, { "s", "x" }, { "s", "y" } };
    ingest_result_t res;
    for (int k = 0; k < 2; k++) {
        assert_err(put(f, 1, bad, 2, NOW_MS - k, 1, &res), STRATA_EINVAL);
        assert_int_equal(res.rejected[INGEST_R_INVALID_LABEL_NAME], 1);
        assert_string_equal(res.message,
                            "series {__name__=\"m\", bad-name=\"x\"}: invalid label name \"bad-name\"");
        assert_err(put(f, 1, dup, 3, NOW_MS - k, 1, &res), STRATA_EINVAL);
        assert_int_equal(res.rejected[INGEST_R_DUPLICATE_LABEL], 1);
    }
    assert_int_equal(ingest_label_cache_size(f->ing), 0);
    size_t ns, nsmp;
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 0);
}

static void test_cached_series_messages(void **state)
{
    fixture_t *f = *state;
    const kv_t a[] = { { "s", "a" }, { "__name__", "m" } };
    ingest_result_t res;
    assert_ok(put(f, 1, a, 2, NOW_MS, 1.5, &res));
    assert_int_equal(ingest_label_cache_size(f->ing), 1);
    /* from the cache, rejected by the store: the message names it as the slow path did */
    assert_err(put(f, 1, a, 2, NOW_MS, 2.5, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_CONFLICT], 1);
    assert_string_equal(
        res.message,
        "series {__name__=\"m\", s=\"a\"}: sample conflicts with a stored sample at the same timestamp");
    /* time checks still apply to a cached series */
    assert_err(put(f, 1, a, 2, NOW_MS + 11 * 60000, 1, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_FUTURE], 1);
    assert_string_equal(res.message,
                        "series {__name__=\"m\", s=\"a\"}: sample timestamp 1700000660000 is more "
                        "than 10m ahead of the server clock");
    assert_err(put(f, 1, a, 2, -5, 1, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_RETENTION], 1);
    size_t ns, nsmp;
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 1);
    assert_int_equal(nsmp, 1);
}

static void test_dropped_series_found_anew(void **state)
{
    fixture_t *f = *state;
    const kv_t a[] = { { "__name__", "m" }, { "s", "a" } };
    ingest_result_t res;
    assert_ok(put(f, 1, a, 2, NOW_MS - 60000, 1, &res));
    assert_int_equal(res.series_created, 1);
    /* the cut moves everything to a block and drops the series from the head */
    assert_ok(tsdb_cut_head(f->db));
    assert_ok(put(f, 1, a, 2, NOW_MS, 2, &res));
    assert_int_equal(res.series_created, 1);
    assert_int_equal(res.samples_written, 1);
    assert_ok(put(f, 1, a, 2, NOW_MS + 1000, 3, &res));
    assert_int_equal(res.series_created, 0);
    size_t ns, nsmp;
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 1);
    assert_int_equal(nsmp, 3);
}

static int observe_ref(void *ctx, int32_t tenant, uint32_t ref, const tsdb_series_input_t *s)
{
    fixture_t *f = ctx;
    f->refs[f->nrefs < 8 ? f->nrefs : 7] = ref;
    f->nrefs++;
    return observe(ctx, tenant, s);
}

/* The ref observer gets the store's ref: the same for every write of a
 * series, another for another series, a new one once the head dropped it. */
static void test_observer_ref(void **state)
{
    fixture_t *f = *state;
    ingest_set_observer(f->ing, NULL, NULL); /* the ref observer alone */
    ingest_set_observer_ref(f->ing, observe_ref, f);
    const kv_t w[] = { { "__name__", "wanted" }, { "s", "w" } };
    const kv_t w2[] = { { "__name__", "wanted" }, { "s", "w2" } };
    ingest_result_t res;
    for (int k = 0; k < 3; k++) assert_ok(put(f, 1, w, 2, NOW_MS - 60000 + k, 1, &res));
    assert_ok(put(f, 1, w2, 2, NOW_MS - 60000, 1, &res));
    assert_ok(tsdb_cut_head(f->db));
    assert_ok(put(f, 1, w, 2, NOW_MS, 1, &res));
    assert_int_equal(res.series_created, 1);
    assert_int_equal(f->nrefs, 5);
    assert_int_equal(f->observed, 5);
    assert_true(f->refs[0] != 0);
    assert_int_equal(f->refs[1], f->refs[0]);
    assert_int_equal(f->refs[2], f->refs[0]);
    assert_true(f->refs[3] != 0 && f->refs[3] != f->refs[0]);
    assert_true(f->refs[4] != 0 && f->refs[4] != f->refs[0] && f->refs[4] != f->refs[3]);
    assert_string_equal(f->last_observed, "w");
}

static void test_observer_sees_only_wanted(void **state)
{
    fixture_t *f = *state;
    const kv_t w[] = { { "__name__", "wanted" }, { "s", "w" } };
    const kv_t u[] = { { "__name__", "unwanted" }, { "s", "u" } };
    ingest_result_t res;
    for (int k = 0; k < 3; k++) {
        assert_ok(put(f, 1, w, 2, NOW_MS + k, 1, &res));
        assert_ok(put(f, 1, u, 2, NOW_MS + k, 1, &res));
    }
    assert_int_equal(f->observed, 3); /* every write of the wanted series, with its labels */
    assert_string_equal(f->last_observed, "w");
    assert_int_equal(f->filtered, 2); /* asked once per series */
}

/* An observed series seen before skips the label checks (the cache says it
 * passed them) but is handed over exactly as the first, checked, time:
 * sorted, empty values dropped, the tenant label in place. */
static void test_observed_cached_same_labels(void **state)
{
    fixture_t *f = *state;
    const kv_t w[] = {
        { "zone", "\xc3\xa9t\xc3\xa9" }, { "__name__", "wanted" }, { "empty", "" }, { "s", "w" }
    };
    const char *want = "__name__=wanted;__tenant__=4;s=w;zone=\xc3\xa9t\xc3\xa9;";
    ingest_result_t res;
    assert_ok(put(f, 4, w, 4, NOW_MS - 2000, 1, &res));
    assert_int_equal(res.series_created, 1);
    assert_string_equal(f->last_labels, want);
    assert_int_equal(ingest_label_cache_size(f->ing), 1);
    for (int k = 1; k >= 0; k--) {
        f->last_labels[0] = '\0';
        assert_ok(put(f, 4, w, 4, NOW_MS - k * 1000, 2 + k, &res));
        assert_int_equal(res.series_created, 0);
        assert_int_equal(res.samples_written, 1);
        assert_string_equal(f->last_labels, want);
    }
    assert_int_equal(f->observed, 3);
    assert_int_equal(f->filtered, 1);
    /* a sample too far ahead is still dropped on the cached path */
    assert_int_equal(put(f, 4, w, 4, NOW_MS + 3600000, 9, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_FUTURE], 1);
    assert_int_equal(samples_of(f, "w", "4"), 3);
}

/* Writes a hand-made RW1 body (uncompressed wire bytes) as tenant 1. */
static int put_wire(fixture_t *f, const uint8_t *wire, size_t len, ingest_result_t *res)
{
    size_t clen = snappy_max_compressed_length(len);
    char *c = malloc(clen);
    assert_int_equal(snappy_compress((const char *)wire, len, c, &clen), SNAPPY_OK);
    strata_arena_reset(f->arena);
    int rc = ingest_write(f->ing, f->arena, INGEST_PROTO_V1, c, clen, 1, NOW_MS, res);
    free(c);
    return rc;
}

/* A series whose sample comes before its labels on the wire: the cached path
 * steps over the label span wherever it starts, and lands in the same series. */
static void test_cached_labels_after_sample(void **state)
{
    fixture_t *f = *state;
    /* TimeSeries{ Sample{ value=1.0, timestamp=t }, Label{__name__=m}, Label{s=x} } */
    static const uint8_t labels[] = { 0x0a, 0x0d, 0x0a, 0x08, '_',  '_',  'n',  'a', 'm',  'e',  '_', '_',
                                      0x12, 0x01, 'm',  0x0a, 0x06, 0x0a, 0x01, 's', 0x12, 0x01, 'x' };
    ingest_result_t res;
    for (int k = 0; k < 3; k++) {
        uint8_t w[64];
        size_t n = 0;
        w[n++] = 0x0a;
        w[n++] = 0x29; /* 18 + 23 bytes */
        w[n++] = 0x12;
        w[n++] = 0x10; /* the sample, 16 bytes */
        w[n++] = 0x09;
        double one = 1.0;
        memcpy(w + n, &one, 8);
        n += 8;
        w[n++] = 0x10;
        uint64_t t = (uint64_t)(NOW_MS - 60000 + k * 1000);
        size_t at = n;
        do {
            w[n++] = (uint8_t)((t & 0x7f) | (t > 0x7f ? 0x80 : 0));
            t >>= 7;
        } while (t);
        assert_int_equal(n - at, 6);
        memcpy(w + n, labels, sizeof labels);
        n += sizeof labels;
        assert_int_equal(n, 43);
        assert_ok(put_wire(f, w, n, &res));
        assert_int_equal(res.samples_written, 1);
        assert_int_equal(res.series_created, k == 0 ? 1 : 0);
        assert_int_equal(ingest_label_cache_size(f->ing), 1);
    }
    assert_int_equal(samples_of(f, "x", "1"), 3);
    size_t ns, nsmp;
    stored(f, "m", "1", &ns, &nsmp);
    assert_int_equal(ns, 1);
    assert_int_equal(nsmp, 3);
}

static void test_append_refs(void **state)
{
    fixture_t *f = *state;
    tsdb_label_t la[] = { { "__name__", "r" }, { "x", "1" } }, lb[] = { { "__name__", "r" }, { "x", "2" } };
    tsdb_sample_t s1 = { 1000, 1 }, s2 = { 2000, 2 };
    tsdb_series_input_t in[2] = { { la, 2, &s1, 1 }, { lb, 2, &s1, 1 } };
    uint32_t refs[2] = { 0, 0 };
    tsdb_append_result_t ar;
    assert_ok(tsdb_append_refs(f->db, in, 2, refs, &ar));
    assert_int_equal(ar.new_series, 2);
    assert_true(refs[0] && refs[1] && refs[0] != refs[1]);
    /* by ref alone, swapped order: each sample goes to the series its ref names */
    uint32_t again[2] = { refs[1], refs[0] };
    tsdb_series_input_t byref[2] = { { NULL, 0, &s2, 1 }, { NULL, 0, &s2, 1 } };
    assert_ok(tsdb_append_refs(f->db, byref, 2, again, &ar));
    assert_int_equal(ar.appended, 2);
    assert_int_equal(ar.new_series, 0);
    assert_int_equal(again[0], refs[1]);
    /* a ref without labels to a series the head dropped: nothing stored */
    assert_ok(tsdb_cut_head(f->db));
    tsdb_sample_t s3 = { 3000, 3 };
    tsdb_series_input_t mixed[2] = { { la, 2, &s3, 1 }, { NULL, 0, &s3, 1 } };
    uint32_t stale[2] = { 0, refs[1] };
    assert_err(tsdb_append_refs(f->db, mixed, 2, stale, &ar), STRATA_ENOTFOUND);
    assert_int_equal(ar.appended, 0);
    /* with labels the dropped series is created anew under a new ref */
    mixed[1] = (tsdb_series_input_t){ lb, 2, &s3, 1 };
    assert_ok(tsdb_append_refs(f->db, mixed, 2, stale, &ar));
    assert_int_equal(ar.appended, 2);
    assert_int_equal(ar.new_series, 2);
    assert_true(stale[1] != refs[1]);
    tsdb_matcher_t m = { TSDB_MATCH_EQ, "__name__", "r" };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(f->db, &m, 1, INT64_MIN, INT64_MAX, &set));
    size_t n = 0, total = 0;
    while (tsdb_series_set_next(set) == 1) {
        const tsdb_sample_t *smp;
        size_t ns;
        assert_ok(tsdb_series_set_samples(set, &smp, &ns));
        assert_int_equal(ns, 3);
        total += ns;
        n++;
    }
    tsdb_series_set_free(set);
    assert_int_equal(n, 2);
    assert_int_equal(total, 6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seen_series_same_as_slow_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_and_tenant_not_confused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_labels_refused_every_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_series_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_series_found_anew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_sees_only_wanted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_ref, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observed_cached_same_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cached_labels_after_sample, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_refs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
