/*
 * test_ingest.c: unit tests of the remote-write decode and validation path
 * (ingest/decode.c) and the receiver over a real store (ingest/write.c:
 * limits, rejections, tenants).  The selector parser's tests are
 * test_selector.c.
 *
 * Messages are built here with the generated protobuf-c code and compressed
 * with snappy, so the tests exercise exactly what a sender puts on the wire.
 */
#include "test_helpers.h"

#include <math.h>
#include <snappy-c.h>

#include "ingest.h"
#include "ingest_internal.h"
#include "remote_write_v1.pb-c.h"
#include "remote_write_v2.pb-c.h"

#define NOW_MS INT64_C(1700000000000)

/* ---- message builders --------------------------------------------------- */

typedef struct {
    const char *name, *value;
} kv_t;

static ProtobufCBinaryData bin(const char *s) { return (ProtobufCBinaryData){ strlen(s), (uint8_t *)s }; }

/* Packs one RW1 series with nl labels and ns samples (all at NOW_MS - i*1000, value i). */
static uint8_t *pack_v1(const kv_t *kv, size_t nl, const double *vals, size_t ns, size_t *len)
{
    Prometheus__Label labels[16], *lp[16];
    Prometheus__Sample samples[16], *sp[16];
    for (size_t i = 0; i < nl; i++) {
        prometheus__label__init(&labels[i]);
        labels[i].name = bin(kv[i].name);
        labels[i].value = bin(kv[i].value);
        lp[i] = &labels[i];
    }
    for (size_t i = 0; i < ns; i++) {
        prometheus__sample__init(&samples[i]);
        samples[i].value = vals[i];
        samples[i].timestamp = NOW_MS - (int64_t)i * 1000;
        sp[i] = &samples[i];
    }
    Prometheus__TimeSeries ts;
    prometheus__time_series__init(&ts);
    ts.n_labels = nl;
    ts.labels = lp;
    ts.n_samples = ns;
    ts.samples = sp;
    Prometheus__TimeSeries *tsp = &ts;
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = 1;
    req.timeseries = &tsp;
    *len = prometheus__write_request__get_packed_size(&req);
    uint8_t *buf = malloc(*len + 1);
    prometheus__write_request__pack(&req, buf);
    return buf;
}

typedef struct fixture {
    strata_arena_t *arena;
    ingest_limits_t lim;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    f->arena = strata_arena_new(0);
    ingest_limits_init(&f->lim);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    strata_arena_free(f->arena);
    free(f);
    return 0;
}

/* Decodes one RW1 series; returns the batch. */
static ingest_batch_t *decode1(fixture_t *f, const kv_t *kv, size_t nl, const double *vals, size_t ns)
{
    size_t len;
    uint8_t *buf = pack_v1(kv, nl, vals, ns, &len);
    ingest_batch_t *b = NULL;
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, buf, len, &f->lim, NOW_MS, "7", &b));
    free(buf);
    return b;
}

static void assert_label(const tsdb_series_input_t *s, size_t i, const char *name, const char *value)
{
    assert_true(i < s->nlabels);
    assert_string_equal(s->labels[i].name, name);
    assert_string_equal(s->labels[i].value, value);
}

static void assert_rejected_only(const ingest_batch_t *b, enum ingest_reason r, size_t count)
{
    for (int i = 0; i < INGEST_R_COUNT; i++)
        assert_int_equal(ingest_batch_rejected(b, (enum ingest_reason)i), i == (int)r ? count : 0);
    size_t n;
    ingest_batch_series(b, &n);
    assert_int_equal(n, 0);
    assert_non_null(ingest_batch_first_error(b));
}

/* ---- tests ---------------------------------------------------------------- */

static void test_content_type(void **state)
{
    (void)state;
    enum ingest_proto p;
    assert_ok(ingest_parse_content_type("application/x-protobuf", "snappy", &p));
    assert_int_equal(p, INGEST_PROTO_V1);
    assert_ok(ingest_parse_content_type(NULL, NULL, &p));
    assert_int_equal(p, INGEST_PROTO_V1);
    assert_ok(ingest_parse_content_type("application/x-protobuf;proto=prometheus.WriteRequest", NULL, &p));
    assert_int_equal(p, INGEST_PROTO_V1);
    assert_ok(ingest_parse_content_type("application/x-protobuf; proto=io.prometheus.write.v2.Request",
                                        "snappy", &p));
    assert_int_equal(p, INGEST_PROTO_V2);
    assert_err(ingest_parse_content_type("application/json", "snappy", &p), STRATA_EMEDIA);
    assert_err(ingest_parse_content_type("application/x-protobuf;proto=foo.Bar", "snappy", &p),
               STRATA_EMEDIA);
    assert_err(ingest_parse_content_type("application/x-protobuf", "gzip", &p), STRATA_EMEDIA);
}

static void test_rw1_decode_normalises(void **state)
{
    fixture_t *f = *state;
    /* unsorted, with an empty value to drop */
    kv_t kv[] = {
        { "job", "dcgm" }, { "__name__", "DCGM_FI_DEV_GPU_UTIL" }, { "empty", "" }, { "Gpu", "0" }
    };
    double vals[] = { 42.5, 17 };
    ingest_batch_t *b = decode1(f, kv, 4, vals, 2);
    size_t n;
    const tsdb_series_input_t *s = ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(s->nlabels, 4);
    assert_label(s, 0, "Gpu", "0");
    assert_label(s, 1, "__name__", "DCGM_FI_DEV_GPU_UTIL");
    assert_label(s, 2, "__tenant__", "7");
    assert_label(s, 3, "job", "dcgm");
    assert_int_equal(s->nsamples, 2);
    assert_int_equal(s->samples[0].t, NOW_MS);
    assert_true(s->samples[0].v == 42.5);
    assert_int_equal(s->samples[1].t, NOW_MS - 1000);
    assert_true(s->samples[1].v == 17.0);
    assert_int_equal(ingest_batch_samples_in(b), 2);
    assert_null(ingest_batch_first_error(b));
    for (int i = 0; i < INGEST_R_COUNT; i++)
        assert_int_equal(ingest_batch_rejected(b, (enum ingest_reason)i), 0);
}

static void test_nan_inf_stale_kept_bit_exact(void **state)
{
    fixture_t *f = *state;
    kv_t kv[] = { { "__name__", "x" } };
    double vals[] = { NAN, INFINITY, -INFINITY, test_bits_double(TSDB_STALE_NAN_BITS) };
    ingest_batch_t *b = decode1(f, kv, 1, vals, 4);
    size_t n;
    const tsdb_series_input_t *s = ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(s->nsamples, 4);
    assert_int_equal(test_double_bits(s->samples[0].v), test_double_bits(NAN));
    assert_true(isinf(s->samples[1].v) && s->samples[1].v > 0);
    assert_true(isinf(s->samples[2].v) && s->samples[2].v < 0);
    assert_int_equal(test_double_bits(s->samples[3].v), TSDB_STALE_NAN_BITS);
}

static void test_missing_name(void **state)
{
    fixture_t *f = *state;
    kv_t kv[] = { { "job", "a" }, { "__name__", "" } };
    double vals[] = { 1, 2, 3 };
    ingest_batch_t *b = decode1(f, kv, 2, vals, 3);
    assert_rejected_only(b, INGEST_R_MISSING_NAME, 3);
    assert_string_equal(ingest_batch_first_error(b), "series {job=\"a\"}: no metric name (__name__ label)");
}

static void test_invalid_label_name(void **state)
{
    fixture_t *f = *state;
    kv_t kv[] = { { "__name__", "x" }, { "1bad", "v" } };
    double vals[] = { 1 };
    ingest_batch_t *b = decode1(f, kv, 2, vals, 1);
    assert_rejected_only(b, INGEST_R_INVALID_LABEL_NAME, 1);
    assert_string_equal(ingest_batch_first_error(b),
                        "series {1bad=\"v\", __name__=\"x\"}: invalid label name \"1bad\"");
    kv_t kv2[] = { { "__name__", "x" }, { "a-b", "v" } };
    b = decode1(f, kv2, 2, vals, 1);
    assert_rejected_only(b, INGEST_R_INVALID_LABEL_NAME, 1);
}

static void test_duplicate_label(void **state)
{
    fixture_t *f = *state;
    kv_t kv[] = { { "__name__", "x" }, { "a", "1" }, { "a", "2" } };
    double vals[] = { 1, 2 };
    ingest_batch_t *b = decode1(f, kv, 3, vals, 2);
    assert_rejected_only(b, INGEST_R_DUPLICATE_LABEL, 2);
    assert_non_null(strstr(ingest_batch_first_error(b), "duplicate label name \"a\""));
}

static void test_invalid_utf8(void **state)
{
    fixture_t *f = *state;
    kv_t kv[] = { { "__name__", "x" }, { "a", "ok\xc3\x28" } };
    double vals[] = { 1 };
    ingest_batch_t *b = decode1(f, kv, 2, vals, 1);
    assert_rejected_only(b, INGEST_R_INVALID_LABEL_VALUE, 1);
    assert_non_null(strstr(ingest_batch_first_error(b), "label \"a\" value is not valid UTF-8"));
    assert_true(ingest_valid_utf8("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
    assert_false(ingest_valid_utf8("\xc0\x80", 2));         /* overlong NUL */
    assert_false(ingest_valid_utf8("\xed\xa0\x80", 3));     /* surrogate */
    assert_false(ingest_valid_utf8("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(ingest_valid_utf8("\xe2\x82", 2));         /* truncated */
    /* around the 8-bytes-at-a-time ASCII path */
    assert_true(ingest_valid_utf8("abcdefg\xc3\xa9xyz", 12)); /* 2-byte char straddles byte 8 */
    assert_true(ingest_valid_utf8("abcdefghijklmnop", 16));
    assert_false(ingest_valid_utf8("abcdefgh\xc3\x28", 10));    /* bad continuation after 8 ASCII */
    assert_false(ingest_valid_utf8("abcdefg\xff", 8));          /* bad byte inside the first word */
    assert_false(ingest_valid_utf8("abcdefghijklmno\x80", 16)); /* lone continuation at the end */
}

static void test_limits(void **state)
{
    fixture_t *f = *state;
    f->lim.max_labels_per_series = 3;
    f->lim.max_label_name_length = 8;
    f->lim.max_label_value_length = 5;
    double vals[] = { 1 };
    kv_t many[] = { { "__name__", "x" }, { "a", "1" }, { "b", "1" }, { "c", "1" } };
    ingest_batch_t *b = decode1(f, many, 4, vals, 1);
    assert_rejected_only(b, INGEST_R_TOO_MANY_LABELS, 1);
    assert_non_null(strstr(ingest_batch_first_error(b), "4 labels, more than the limit of 3"));
    kv_t longname[] = { { "__name__", "x" }, { "abcdefghi", "1" } };
    b = decode1(f, longname, 2, vals, 1);
    assert_rejected_only(b, INGEST_R_LABEL_NAME_TOO_LONG, 1);
    kv_t longval[] = { { "__name__", "x" }, { "a", "123456" } };
    b = decode1(f, longval, 2, vals, 1);
    assert_rejected_only(b, INGEST_R_LABEL_VALUE_TOO_LONG, 1);
    /* exactly at the limits is fine */
    kv_t edge[] = { { "__name__", "x" }, { "abcdefgh", "12345" }, { "b", "1" } };
    b = decode1(f, edge, 3, vals, 1);
    size_t n;
    ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
}

static void test_reserved_tenant_label(void **state)
{
    fixture_t *f = *state;
    kv_t kv[] = { { "__name__", "x" }, { "__tenant__", "9" } };
    double vals[] = { 1 };
    ingest_batch_t *b = decode1(f, kv, 2, vals, 1);
    assert_rejected_only(b, INGEST_R_RESERVED_LABEL, 1);
}

static void test_future_samples_dropped(void **state)
{
    fixture_t *f = *state;
    Prometheus__Label l;
    prometheus__label__init(&l);
    l.name = bin("__name__");
    l.value = bin("x");
    Prometheus__Label *lp = &l;
    Prometheus__Sample s[2], *sp[2] = { &s[0], &s[1] };
    prometheus__sample__init(&s[0]);
    s[0].timestamp = NOW_MS + INGEST_MAX_FUTURE_MS;
    s[0].value = 1;
    prometheus__sample__init(&s[1]);
    s[1].timestamp = NOW_MS + INGEST_MAX_FUTURE_MS + 1;
    s[1].value = 2;
    Prometheus__TimeSeries ts;
    prometheus__time_series__init(&ts);
    ts.n_labels = 1;
    ts.labels = &lp;
    ts.n_samples = 2;
    ts.samples = sp;
    Prometheus__TimeSeries *tsp = &ts;
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = 1;
    req.timeseries = &tsp;
    uint8_t buf[256];
    size_t len = prometheus__write_request__pack(&req, buf);
    ingest_batch_t *b;
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, buf, len, &f->lim, NOW_MS, NULL, &b));
    size_t n;
    const tsdb_series_input_t *out = ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(out->nlabels, 1); /* no tenant stamped when tenant is NULL */
    assert_int_equal(out->nsamples, 1);
    assert_int_equal(out->samples[0].t, NOW_MS + INGEST_MAX_FUTURE_MS);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_FUTURE), 1);
}

/* One RW1 series {__name__=x} with samples at ts[0..n) (value i), packed into buf. */
static size_t pack_times(const int64_t *ts, size_t n, uint8_t *buf)
{
    Prometheus__Label l;
    prometheus__label__init(&l);
    l.name = bin("__name__");
    l.value = bin("x");
    Prometheus__Label *lp = &l;
    Prometheus__Sample s[8], *sp[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        prometheus__sample__init(&s[i]);
        s[i].timestamp = ts[i];
        s[i].value = (double)i;
        sp[i] = &s[i];
    }
    Prometheus__TimeSeries t;
    prometheus__time_series__init(&t);
    t.n_labels = 1;
    t.labels = &lp;
    t.n_samples = n;
    t.samples = sp;
    Prometheus__TimeSeries *tp = &t;
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = 1;
    req.timeseries = &tp;
    return prometheus__write_request__pack(&req, buf);
}

/* Samples older than now - retention (never before the Unix epoch) are
 * refused one by one as too_old_for_retention; the rest of the series stays. */
static void test_retention_floor(void **state)
{
    fixture_t *f = *state;
    const int64_t day = INT64_C(86400000);
    assert_int_equal(ingest_oldest_allowed(&f->lim, NOW_MS), 0); /* default: keep forever */
    f->lim.retention_ms = day;
    assert_int_equal(ingest_oldest_allowed(&f->lim, NOW_MS), NOW_MS - day);
    assert_int_equal(ingest_oldest_allowed(&f->lim, day - 1), 0); /* never before the epoch */

    const int64_t ts[] = { NOW_MS - day - 1, 1, NOW_MS - day, INT64_MIN, NOW_MS };
    uint8_t buf[512];
    size_t len = pack_times(ts, 5, buf);
    ingest_batch_t *b;
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, buf, len, &f->lim, NOW_MS, NULL, &b));
    size_t n;
    const tsdb_series_input_t *out = ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(out->nsamples, 2);
    assert_int_equal(out->samples[0].t, NOW_MS - day); /* exactly at the edge: kept */
    assert_int_equal(out->samples[1].t, NOW_MS);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_RETENTION), 3);
    assert_string_equal(ingest_batch_first_error(b),
                        "series {__name__=\"x\"}: sample timestamp 1699913599999 is older than the retention "
                        "window (--retention 1d)");

    /* retention 0 keeps forever: only samples before the Unix epoch are refused */
    f->lim.retention_ms = 0;
    const int64_t ts0[] = { INT64_MIN, -1, 0, 1 };
    len = pack_times(ts0, 4, buf);
    strata_arena_reset(f->arena);
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, buf, len, &f->lim, NOW_MS, NULL, &b));
    out = ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(out->nsamples, 2);
    assert_int_equal(out->samples[0].t, 0);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_RETENTION), 2);
    assert_string_equal(ingest_batch_first_error(b), "series {__name__=\"x\"}: sample timestamp "
                                                     "-9223372036854775808 is before the Unix epoch");

    /* a series with nothing left is dropped whole */
    const int64_t tsold[] = { -5 };
    len = pack_times(tsold, 1, buf);
    strata_arena_reset(f->arena);
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, buf, len, &f->lim, NOW_MS, NULL, &b));
    ingest_batch_series(b, &n);
    assert_int_equal(n, 0);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_RETENTION), 1);
}

static void test_histograms_exemplars_rejected(void **state)
{
    fixture_t *f = *state;
    Prometheus__Label l;
    prometheus__label__init(&l);
    l.name = bin("__name__");
    l.value = bin("h");
    Prometheus__Label *lp = &l;
    Prometheus__Sample s, *sp = &s;
    prometheus__sample__init(&s);
    s.timestamp = NOW_MS;
    s.value = 3;
    Prometheus__Histogram h, *hp = &h;
    prometheus__histogram__init(&h);
    h.sum = 1;
    h.timestamp = NOW_MS;
    Prometheus__Exemplar e, *ep = &e;
    prometheus__exemplar__init(&e);
    e.value = 1;
    e.timestamp = NOW_MS;
    Prometheus__TimeSeries ts;
    prometheus__time_series__init(&ts);
    ts.n_labels = 1;
    ts.labels = &lp;
    ts.n_samples = 1;
    ts.samples = &sp;
    ts.n_histograms = 1;
    ts.histograms = &hp;
    ts.n_exemplars = 1;
    ts.exemplars = &ep;
    Prometheus__TimeSeries *tsp = &ts;
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = 1;
    req.timeseries = &tsp;
    uint8_t buf[256];
    size_t len = prometheus__write_request__pack(&req, buf);
    ingest_batch_t *b;
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, buf, len, &f->lim, NOW_MS, "0", &b));
    size_t n;
    ingest_batch_series(b, &n);
    assert_int_equal(n, 1); /* the float sample is still stored */
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_HISTOGRAM), 1);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_EXEMPLAR), 1);
    assert_int_equal(ingest_batch_histograms_in(b), 1);
    assert_int_equal(ingest_batch_exemplars_in(b), 1);
    assert_string_equal(ingest_batch_first_error(b),
                        "series {__name__=\"h\"}: native histograms are not supported yet (1 dropped)");
}

static void test_rw2_decode(void **state)
{
    fixture_t *f = *state;
    ProtobufCBinaryData sym[] = { bin(""),  bin("__name__"), bin("gpu_temp"), bin("gpu"),
                                  bin("1"), bin("node"),     bin("n1") };
    uint32_t refs1[] = { 5, 6, 1, 2, 3, 4 }; /* unsorted on purpose */
    uint32_t refs2[] = { 1, 2, 3, 9 };       /* 9 is past the table */
    Io__Prometheus__Write__V2__Sample s[2], *sp[2] = { &s[0], &s[1] };
    io__prometheus__write__v2__sample__init(&s[0]);
    s[0].timestamp = NOW_MS - 15000;
    s[0].value = 61;
    io__prometheus__write__v2__sample__init(&s[1]);
    s[1].timestamp = NOW_MS;
    s[1].value = 62;
    Io__Prometheus__Write__V2__TimeSeries ts[2], *tsp[2] = { &ts[0], &ts[1] };
    io__prometheus__write__v2__time_series__init(&ts[0]);
    ts[0].n_labels_refs = 6;
    ts[0].labels_refs = refs1;
    ts[0].n_samples = 2;
    ts[0].samples = sp;
    io__prometheus__write__v2__time_series__init(&ts[1]);
    ts[1].n_labels_refs = 4;
    ts[1].labels_refs = refs2;
    ts[1].n_samples = 1;
    ts[1].samples = sp;
    Io__Prometheus__Write__V2__Request req;
    io__prometheus__write__v2__request__init(&req);
    req.n_symbols = 7;
    req.symbols = sym;
    req.n_timeseries = 2;
    req.timeseries = tsp;
    uint8_t buf[512];
    size_t len = io__prometheus__write__v2__request__pack(&req, buf);
    ingest_batch_t *b;
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V2, buf, len, &f->lim, NOW_MS, "3", &b));
    size_t n;
    const tsdb_series_input_t *out = ingest_batch_series(b, &n);
    assert_int_equal(n, 1);
    assert_int_equal(out->nlabels, 4);
    assert_label(out, 0, "__name__", "gpu_temp");
    assert_label(out, 1, "__tenant__", "3");
    assert_label(out, 2, "gpu", "1");
    assert_label(out, 3, "node", "n1");
    assert_int_equal(out->nsamples, 2);
    assert_int_equal(out->samples[0].t, NOW_MS - 15000);
    assert_true(out->samples[1].v == 62.0);
    assert_int_equal(ingest_batch_samples_in(b), 3);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_INVALID_SYMBOL_REF), 1);

    /* symbols[0] must be "" */
    sym[0] = bin("x");
    len = io__prometheus__write__v2__request__pack(&req, buf);
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V2, buf, len, &f->lim, NOW_MS, "3", &b));
    ingest_batch_series(b, &n);
    assert_int_equal(n, 0);
    assert_int_equal(ingest_batch_rejected(b, INGEST_R_INVALID_SYMBOL_REF), 3);
}

static void test_invalid_protobuf(void **state)
{
    fixture_t *f = *state;
    ingest_batch_t *b;
    const uint8_t junk[] = { 0x0a, 0x7f, 0x01, 0x02 }; /* field 1, length 127, 2 bytes follow */
    assert_err(ingest_decode(f->arena, INGEST_PROTO_V1, junk, sizeof junk, &f->lim, NOW_MS, "0", &b),
               STRATA_EBADPROTO);
    const uint8_t wiretype7[] = { 0x0f };
    assert_err(ingest_decode(f->arena, INGEST_PROTO_V2, wiretype7, 1, &f->lim, NOW_MS, "0", &b),
               STRATA_EBADPROTO);
    /* an empty message is a valid, empty request */
    assert_ok(ingest_decode(f->arena, INGEST_PROTO_V1, "", 0, &f->lim, NOW_MS, "0", &b));
    size_t n;
    ingest_batch_series(b, &n);
    assert_int_equal(n, 0);
}

static void test_snappy(void **state)
{
    fixture_t *f = *state;
    const char *msg = "hello hello hello hello remote write";
    char comp[128];
    size_t clen = sizeof comp;
    assert_int_equal(snappy_compress(msg, strlen(msg), comp, &clen), SNAPPY_OK);
    char *out;
    size_t olen;
    assert_ok(ingest_snappy_decompress(f->arena, comp, clen, 1024, &out, &olen));
    assert_int_equal(olen, strlen(msg));
    assert_memory_equal(out, msg, olen);
    /* limit exactly the length passes, one less is too big */
    assert_ok(ingest_snappy_decompress(f->arena, comp, clen, strlen(msg), &out, &olen));
    assert_err(ingest_snappy_decompress(f->arena, comp, clen, strlen(msg) - 1, &out, &olen), STRATA_ETOOBIG);
    /* length bomb: declares 4 GiB - 1 in 5 bytes, no data behind it */
    const char bomb[] = { (char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x0f, 0x00 };
    assert_err(ingest_snappy_decompress(f->arena, bomb, sizeof bomb, 32u << 20, &out, &olen), STRATA_ETOOBIG);
    /* corrupt: truncated stream, and bytes that are not snappy at all */
    assert_err(ingest_snappy_decompress(f->arena, comp, clen - 3, 1024, &out, &olen), STRATA_EBADSNAPPY);
    const char junk[] = { (char)0x80 };
    assert_err(ingest_snappy_decompress(f->arena, junk, 1, 1024, &out, &olen), STRATA_EBADSNAPPY);
    assert_err(ingest_snappy_decompress(f->arena, "", 0, 1024, &out, &olen), STRATA_EBADSNAPPY);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(ingest_reason_name(INGEST_R_MISSING_NAME), "missing_metric_name");
    assert_string_equal(ingest_reason_name(INGEST_R_TOO_OLD), "out_of_window");
    assert_string_equal(ingest_reason_name(INGEST_R_RETENTION), "too_old_for_retention");
    assert_string_equal(ingest_reason_name(INGEST_R_TENANT_LIMIT), "tenant_series_limit");
    assert_string_equal(ingest_reason_name(INGEST_R_COUNT), "unknown");
}

/* ---- the receiver over a real store ------------------------------------ */

static char *snappy_of(const uint8_t *raw, size_t len, size_t *clen)
{
    *clen = snappy_max_compressed_length(len);
    char *c = malloc(*clen);
    assert_int_equal(snappy_compress((const char *)raw, len, c, clen), SNAPPY_OK);
    return c;
}

/* One RW1 series {__name__="m", s=<sv>} with one sample (t, v), compressed. */
static char *body1(const char *sv, int64_t t, double v, size_t *clen)
{
    kv_t kv[] = { { "__name__", "m" }, { "s", sv } };
    Prometheus__Label labels[2], *lp[2];
    for (int i = 0; i < 2; i++) {
        prometheus__label__init(&labels[i]);
        labels[i].name = bin(kv[i].name);
        labels[i].value = bin(kv[i].value);
        lp[i] = &labels[i];
    }
    Prometheus__Sample smp, *sp = &smp;
    prometheus__sample__init(&smp);
    smp.timestamp = t;
    smp.value = v;
    Prometheus__TimeSeries ts, *tsp = &ts;
    prometheus__time_series__init(&ts);
    ts.n_labels = 2;
    ts.labels = lp;
    ts.n_samples = 1;
    ts.samples = &sp;
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = 1;
    req.timeseries = &tsp;
    uint8_t buf[256];
    size_t len = prometheus__write_request__pack(&req, buf);
    return snappy_of(buf, len, clen);
}

static int write1(ingest_t *ing, strata_arena_t *a, int32_t tenant, const char *sv, int64_t t, double v,
                  ingest_result_t *res)
{
    size_t clen;
    char *c = body1(sv, t, v, &clen);
    strata_arena_reset(a);
    int rc = ingest_write(ing, a, INGEST_PROTO_V1, c, clen, tenant, NOW_MS, res);
    free(c);
    return rc;
}

static void test_write_path(void **state)
{
    fixture_t *f = *state;
    char *dir = test_tmpdir_new();
    tsdb_options_t opts;
    tsdb_options_init(&opts);
    opts.dir = dir;
    opts.background = 0;
    opts.fsync = TSDB_FSYNC_NEVER;
    tsdb_t *db;
    assert_ok(tsdb_open(&opts, &db));
    f->lim.max_series_per_tenant = 2;
    ingest_t *ing;
    assert_ok(ingest_new(db, &f->lim, &ing));
    ingest_result_t res;

    assert_ok(write1(ing, f->arena, 1, "a", NOW_MS, 1.5, &res));
    assert_int_equal(res.samples_written, 1);
    assert_int_equal(res.series_created, 1);
    assert_string_equal(res.message, "");
    assert_string_equal(res.details, "samples written: 1");
    /* an identical retry is accepted and creates nothing */
    assert_ok(write1(ing, f->arena, 1, "a", NOW_MS, 1.5, &res));
    assert_int_equal(res.samples_written, 1);
    assert_int_equal(res.series_created, 0);
    /* same timestamp, other value */
    assert_err(write1(ing, f->arena, 1, "a", NOW_MS, 2.5, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_CONFLICT], 1);
    assert_string_equal(
        res.message,
        "series {__name__=\"m\", s=\"a\"}: sample conflicts with a stored sample at the same timestamp");
    /* behind the out-of-order window (default 10m) */
    assert_err(write1(ing, f->arena, 1, "a", NOW_MS - 11 * 60000, 1, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_TOO_OLD], 1);
    assert_string_equal(res.details, "rejected: out_of_window=1; samples written: 0");
    /* inside it */
    assert_ok(write1(ing, f->arena, 1, "a", NOW_MS - 9 * 60000, 1, &res));

    /* tenant 1 reaches its 2 series; tenant 2 has its own count */
    assert_ok(write1(ing, f->arena, 1, "b", NOW_MS, 1, &res));
    assert_err(write1(ing, f->arena, 1, "c", NOW_MS, 1, &res), STRATA_ELIMIT);
    assert_int_equal(res.rejected[INGEST_R_TENANT_LIMIT], 1);
    assert_string_equal(res.message,
                        "series {__name__=\"m\", s=\"c\"}: tenant 1 is at its limit of 2 series");
    assert_ok(write1(ing, f->arena, 2, "c", NOW_MS, 1, &res));
    assert_ok(write1(ing, f->arena, 1, "b", NOW_MS + 1000, 1, &res)); /* known series still take samples */
    /* before the Unix epoch (the limits keep forever): refused, counted, nothing created */
    assert_err(write1(ing, f->arena, 3, "old", INT64_MIN, 1, &res), STRATA_EINVAL);
    assert_int_equal(res.rejected[INGEST_R_RETENTION], 1);
    assert_int_equal(res.series_created, 0);
    assert_string_equal(res.details, "rejected: too_old_for_retention=1; samples written: 0");

    /* request-level errors store nothing */
    const char bomb[] = { (char)0xff, (char)0xff, (char)0xff, (char)0xff, 0x0f, 0x00 };
    assert_err(ingest_write(ing, f->arena, INGEST_PROTO_V1, bomb, sizeof bomb, 1, NOW_MS, &res),
               STRATA_ETOOBIG);
    assert_err(ingest_write(ing, f->arena, INGEST_PROTO_V1, "\x80", 1, 1, NOW_MS, &res), STRATA_EBADSNAPPY);
    size_t clen;
    const uint8_t junk[] = { 0x0a, 0x7f, 0x01 };
    char *c = snappy_of(junk, sizeof junk, &clen);
    assert_err(ingest_write(ing, f->arena, INGEST_PROTO_V1, c, clen, 1, NOW_MS, &res), STRATA_EBADPROTO);
    free(c);

    /* what the store holds: the tenant label stamped, in sorted place */
    tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "m" }, { TSDB_MATCH_EQ, INGEST_TENANT_LABEL, "1" } };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 2, INT64_MIN, INT64_MAX, &set));
    size_t nseries = 0, total = 0;
    while (tsdb_series_set_next(set) == 1) {
        size_t nl, ns;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *smp;
        assert_ok(tsdb_series_set_samples(set, &smp, &ns));
        assert_int_equal(nl, 3);
        assert_string_equal(l[0].name, "__name__");
        assert_string_equal(l[1].name, "__tenant__");
        assert_string_equal(l[1].value, "1");
        assert_string_equal(l[2].value, nseries == 0 ? "a" : "b");
        nseries++;
        total += ns;
    }
    tsdb_series_set_free(set);
    assert_int_equal(nseries, 2);
    assert_int_equal(total, 4); /* a: 2 samples, b: 2 samples */

    /* a new receiver counts the tenant's series from the store */
    ingest_free(ing);
    assert_ok(ingest_new(db, &f->lim, &ing));
    assert_err(write1(ing, f->arena, 1, "d", NOW_MS, 1, &res), STRATA_ELIMIT);
    assert_ok(write1(ing, f->arena, 2, "d", NOW_MS, 1, &res));
    assert_err(write1(ing, f->arena, 2, "e", NOW_MS, 1, &res), STRATA_ELIMIT);
    ingest_free(ing);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* Arena bytes to decode an RW1 request of n series {__name__="m", i="00000"..}
 * with one sample each, in an arena whose every allocation is its own block
 * (block size 1), so strata_arena_used() is the sum of the allocations.
 * cached: with an (empty) label cache, as the daemon decodes, which adds the
 * label-key arrays. */
static size_t decode_bytes(size_t n, int cached)
{
    Prometheus__TimeSeries *ts = calloc(n, sizeof *ts), **tsp = calloc(n, sizeof *tsp);
    Prometheus__Label *lab = calloc(2 * n, sizeof *lab), **labp = calloc(2 * n, sizeof *labp);
    Prometheus__Sample *smp = calloc(n, sizeof *smp), **smpp = calloc(n, sizeof *smpp);
    char(*ids)[8] = calloc(n, sizeof *ids);
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%05u", (unsigned)(i % 100000u));
        prometheus__label__init(&lab[2 * i]);
        lab[2 * i].name = bin("__name__");
        lab[2 * i].value = bin("m");
        prometheus__label__init(&lab[2 * i + 1]);
        lab[2 * i + 1].name = bin("i");
        lab[2 * i + 1].value = bin(ids[i]);
        labp[2 * i] = &lab[2 * i];
        labp[2 * i + 1] = &lab[2 * i + 1];
        prometheus__sample__init(&smp[i]);
        smp[i].value = 1;
        smp[i].timestamp = NOW_MS;
        smpp[i] = &smp[i];
        prometheus__time_series__init(&ts[i]);
        ts[i].n_labels = 2;
        ts[i].labels = &labp[2 * i];
        ts[i].n_samples = 1;
        ts[i].samples = &smpp[i];
        tsp[i] = &ts[i];
    }
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.n_timeseries = n;
    req.timeseries = tsp;
    size_t len = prometheus__write_request__get_packed_size(&req);
    uint8_t *buf = malloc(len);
    prometheus__write_request__pack(&req, buf);
    ingest_limits_t lim;
    ingest_limits_init(&lim);
    strata_arena_t *a = strata_arena_new(1);
    size_t before = strata_arena_used(a);
    ingest_batch_t *b = NULL;
    ingest_lcache_t *cache = cached ? ingest_lcache_new(1000) : NULL;
    if (cache) ingest_lcache_rdlock(cache);
    assert_ok(ingest_decode_cached(a, INGEST_PROTO_V1, buf, len, &lim, NOW_MS, NULL, cache, 0, &b));
    if (cache) {
        ingest_lcache_unlock(cache);
        ingest_lcache_free(cache);
    }
    size_t got;
    ingest_batch_series(b, &got);
    assert_int_equal(got, n);
    size_t used = strata_arena_used(a) - before;
    strata_arena_free(a);
    free(buf);
    free(ids);
    free(smpp);
    free(smp);
    free(labp);
    free(lab);
    free(tsp);
    free(ts);
    return used;
}

/* The batch's arrays (and with a label cache, the label keys) are allocated
 * once at the request's series count: the
 * arena bytes per series are the same from 100 to 200 as from 200 to 300
 * series (grown by doubling, 64 -> 128 -> 256 -> 512 slots, every smaller
 * copy stayed in the arena and the second step cost 256 slots more). */
static void test_decode_batch_sized_once(void **state)
{
    (void)state;
    for (int cached = 0; cached <= 1; cached++) {
        size_t b100 = decode_bytes(100, cached), b200 = decode_bytes(200, cached),
               b300 = decode_bytes(300, cached);
        assert_true(b200 > b100);
        assert_int_equal(b200 - b100, b300 - b200);
        assert_int_equal(b300 - b100, 2 * (b200 - b100));
    }
    /* the keys: one 16-byte key and one 8-byte span pointer per series */
    assert_int_equal(decode_bytes(200, 1) - decode_bytes(200, 0), 200 * (16 + 8));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_type),
        cmocka_unit_test_setup_teardown(test_rw1_decode_normalises, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nan_inf_stale_kept_bit_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_label_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_utf8, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reserved_tenant_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_samples_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retention_floor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histograms_exemplars_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rw2_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_protobuf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snappy, setup, teardown),
        cmocka_unit_test(test_reason_names),
        cmocka_unit_test_setup_teardown(test_write_path, setup, teardown),
        cmocka_unit_test(test_decode_batch_sized_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
