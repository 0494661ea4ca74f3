/*
 * test_tsdb_helpers.h: what the storage engine's tests share (test_tsdb.c,
 * test_block.c, test_index.c, test_rollup.c): opening a test db, appending
 * from label strings, rendering query answers as text, poking block files,
 * and brute-force references for samples and 1h rollup fields.
 */
#ifndef STRATA_TEST_TSDB_HELPERS_H
#define STRATA_TEST_TSDB_HELPERS_H

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_helpers.h"
#include "tsdb.h"

#define MIN_MS 60000LL

/* ---- helpers ---------------------------------------------------------------- */

typedef struct strbuf {
    char *s;
    size_t len, cap;
} strbuf_t;

static inline void sb_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void sb_printf(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->s && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
        if (!b->len) b->s[0] = 0;
    }
}

/* A test db: no background thread, no fsync; 0 keeps an option's default. */
static inline tsdb_t *open_db_ex(const char *dir, int64_t block_ms, int64_t retention_ms,
                                 uint64_t retention_bytes, int64_t zero_run_ms, size_t page_cache_bytes)
{
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    if (block_ms) o.block_duration_ms = block_ms;
    o.retention_ms = retention_ms;
    o.retention_bytes = retention_bytes;
    if (zero_run_ms) o.rollup_zero_run_ms = zero_run_ms;
    if (page_cache_bytes) o.page_cache_bytes = page_cache_bytes;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    return db;
}

static inline tsdb_t *open_db(const char *dir, int64_t block_ms, int64_t retention_ms,
                              uint64_t retention_bytes)
{
    return open_db_ex(dir, block_ms, retention_ms, retention_bytes, 0, 0);
}

/* Parses "a=1,b=2" (sorted by the caller) into labels stored in buf. */
static inline size_t parse_labels(const char *spec, char *buf, size_t cap, tsdb_label_t *out)
{
    snprintf(buf, cap, "%s", spec);
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        assert_non_null(eq);
        *eq = 0;
        out[n++] = (tsdb_label_t){ tok, eq + 1 };
    }
    return n;
}

static inline tsdb_append_result_t append(tsdb_t *db, const char *labels, const tsdb_sample_t *s, size_t n)
{
    char buf[512];
    tsdb_label_t l[16];
    tsdb_series_input_t in = { l, parse_labels(labels, buf, sizeof buf, l), s, n };
    tsdb_append_result_t res;
    assert_ok(tsdb_append(db, &in, 1, &res));
    return res;
}

/* Appends t = start, start+step, ... (n samples) with v = f(i). */
static inline void append_range(tsdb_t *db, const char *labels, int64_t start, int64_t step, size_t n,
                                double base)
{
    tsdb_sample_t *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++) s[i] = (tsdb_sample_t){ start + (int64_t)i * step, base + (double)i };
    tsdb_append_result_t r = append(db, labels, s, n);
    assert_int_equal(r.too_old + r.conflicting, 0);
    free(s);
}

/* Renders the selection: "{a=1,b=2}" per series, with samples when with_samples. */
static inline char *query(tsdb_t *db, const tsdb_matcher_t *m, size_t nm, int64_t mint, int64_t maxt,
                          int with_samples)
{
    tsdb_series_set_t *set = NULL;
    assert_ok(tsdb_select(db, m, nm, mint, maxt, &set));
    strbuf_t b = { 0 };
    sb_printf(&b, "%s", "");
    int rc;
    while ((rc = tsdb_series_set_next(set)) == 1) {
        size_t nl;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        sb_printf(&b, "{");
        for (size_t i = 0; i < nl; i++) sb_printf(&b, "%s%s=%s", i ? "," : "", l[i].name, l[i].value);
        sb_printf(&b, "}");
        const tsdb_sample_t *s;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &s, &n));
        assert_true(n > 0);
        if (with_samples)
            for (size_t i = 0; i < n; i++)
                sb_printf(&b, " %" PRId64 ":%" PRIx64, s[i].t, test_double_bits(s[i].v));
    }
    assert_int_equal(rc, 0);
    tsdb_series_set_free(set);
    return b.s;
}

#define M(op, n, v) ((tsdb_matcher_t){ TSDB_MATCH_##op, n, v })

static inline void check_query(tsdb_t *db, const tsdb_matcher_t *m, size_t nm, const char *want)
{
    char *got = query(db, m, nm, INT64_MIN, INT64_MAX, 0);
    assert_string_equal(got, want);
    free(got);
}

/* The expected rendering of t = start + i*step, v = base + i. */
static inline char *expect_range(const char *labels, int64_t start, int64_t step, size_t n, double base)
{
    strbuf_t b = { 0 };
    sb_printf(&b, "{%s}", labels);
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, " %" PRId64 ":%" PRIx64, start + (int64_t)i * step, test_double_bits(base + (double)i));
    return b.s;
}

static inline size_t count_dir(const char *dir, const char *sub)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Path of the only block's file `name`. */
static inline void block_file(const char *dir, const char *name, char *out, size_t cap)
{
    char p[300];
    snprintf(p, sizeof p, "%s/blocks", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(out, cap, "%s/%s/%s", p, e->d_name, name);
        found++;
    }
    closedir(d);
    assert_int_equal(found, 1);
}

static inline void flip_bit(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    if (off < 0) off += st.st_size;
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* ---- index and matchers -------------------------------------------------------- */

/* The one series named `name` holds exactly s[0..n), bit for bit. */
static inline void check_bits(tsdb_t *db, const char *name, const tsdb_sample_t *s, size_t n)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", name) };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_sample_t *got;
    size_t ng;
    assert_ok(tsdb_series_set_samples(set, &got, &ng));
    assert_int_equal(ng, n);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(got[i].t, s[i].t);
        assert_int_equal(test_double_bits(got[i].v), test_double_bits(s[i].v));
    }
    assert_int_equal(tsdb_series_set_next(set), 0);
    tsdb_series_set_free(set);
}

/* The holding-rule fields, recomputed here from the samples of each interval
 * by brute force (zero_inner_long against zero_run).  Values are small integers and halves and times whole
 * seconds, so every sum is exact whatever the order of additions. */
static inline tsdb_rollup_point_t hold_ref(const tsdb_sample_t *s, size_t n, int64_t res, int64_t end,
                                           int64_t zero_run)
{
    tsdb_rollup_point_t p = { .t = end };
    const tsdb_sample_t *v[2000];
    size_t k = 0;
    const tsdb_sample_t *base = NULL;
    for (size_t i = 0; i < n; i++) {
        int stale = test_double_bits(s[i].v) == TSDB_STALE_NAN_BITS;
        if (s[i].t <= end - res) {
            if (!stale) base = &s[i];
            continue;
        }
        if (s[i].t > end) break;
        if (stale) {
            p.stale++;
            p.stale_t = s[i].t;
        } else
            v[k++] = &s[i];
    }
    p.count = (uint32_t)k;
    if (!k) return p;
    p.first = v[0]->v;
    p.first_t = v[0]->t;
    p.last = v[k - 1]->v;
    p.last_t = v[k - 1]->t;
    p.min = p.max = v[0]->v;
    if (base) p.increase = v[0]->v >= base->v ? v[0]->v - base->v : v[0]->v;
    for (size_t i = 0; i < k; i++) {
        p.sum += v[i]->v;
        if (v[i]->v < p.min) p.min = v[i]->v;
        if (v[i]->v > p.max) p.max = v[i]->v;
        if (i + 1 < k) {
            int64_t gap = v[i + 1]->t - v[i]->t;
            if (gap > p.gap_max) p.gap_max = gap;
            p.hold_sum += v[i]->v * (double)gap;
            double rise = v[i + 1]->v >= v[i]->v ? v[i + 1]->v - v[i]->v : v[i + 1]->v;
            p.increase += rise;
            p.inner_increase += rise;
            if (i + 2 == k) p.last_rise = rise;
        }
    }
    p.zero_lead_end = p.zero_trail_start = INT64_MAX;
    if (v[0]->v != 0) p.zero_lead_end = v[0]->t;
    for (size_t i = 0; i < k;) {
        if (v[i]->v != 0) {
            i++;
            continue;
        }
        size_t j = i;
        while (j + 1 < k && v[j + 1]->v == 0) j++;
        if (i == 0) p.zero_lead_end = j + 1 < k ? v[j + 1]->t : INT64_MAX;
        if (j + 1 == k) p.zero_trail_start = v[i]->t;
        if (i > 0 && j + 1 < k) {
            int64_t len = v[j + 1]->t - v[i]->t;
            if (len > p.zero_inner_max) p.zero_inner_max = len;
            if (len > zero_run) p.zero_inner_long += len - zero_run;
        }
        i = j + 1;
    }
    return p;
}

static inline void check_hold_fields(tsdb_t *db, const tsdb_sample_t *s, size_t n, int64_t res,
                                     unsigned trial)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "h") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, 5 * 60 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t np, want_n = 0;
    assert_ok(tsdb_series_set_rollups(set, res, &p, &np));
    for (int64_t end = res; end <= 5 * 60 * MIN_MS; end += res) {
        tsdb_rollup_point_t w = hold_ref(s, n, res, end, tsdb_rollup_zero_run_ms(db));
        if (!w.count && !w.stale) continue;
        if (want_n >= np)
            fail_msg("trial %u res %lld: no point for %lld", trial, (long long)res, (long long)end);
        const tsdb_rollup_point_t *g = &p[want_n++];
#define SAME(f)                                                                                              \
    if (g->f != w.f)                                                                                         \
    fail_msg("trial %u res %lld point %lld: %s got %.17g want %.17g", trial, (long long)res, (long long)end, \
             #f, (double)g->f, (double)w.f)
        if (res == TSDB_ROLLUP_5M) { /* the holding-rule fields are 1h only */
            tsdb_rollup_point_t z = { .t = w.t,
                                      .count = w.count,
                                      .sum = w.sum,
                                      .min = w.min,
                                      .max = w.max,
                                      .last = w.last,
                                      .last_t = w.last_t,
                                      .first = w.first,
                                      .first_t = w.first_t,
                                      .increase = w.increase };
            w = z;
        }
        SAME(t);
        SAME(count);
        SAME(stale);
        SAME(stale_t);
        SAME(gap_max);
        SAME(hold_sum);
        SAME(last_rise);
        SAME(inner_increase);
        SAME(zero_lead_end);
        SAME(zero_trail_start);
        SAME(zero_inner_max);
        SAME(zero_inner_long);
        if (!w.count) continue;
        SAME(sum);
        SAME(min);
        SAME(max);
        SAME(first);
        SAME(first_t);
        SAME(last);
        SAME(last_t);
        SAME(increase);
#undef SAME
    }
    assert_int_equal(np, want_n);
    tsdb_series_set_free(set);
}

/* The samples of the fixture blocks tests/fixtures/tsdb_v1_block and
 * tsdb_v2_block (see their READMEs): 2 h of 15 s scrapes in runs of 10 min of
 * 0, 1, 2, and a stale marker; s has room for 500.  Returns the count. */
static inline size_t fixture_samples(tsdb_sample_t *s)
{
    size_t n = 0;
    for (int k = 0; k < 480; k++) {
        s[n++] = (tsdb_sample_t){ (int64_t)k * 15000, (double)((k / 40) % 3) };
        if (k == 360)
            s[n++] = (tsdb_sample_t){ (int64_t)k * 15000 + 1, test_bits_double(TSDB_STALE_NAN_BITS) };
    }
    return n;
}

/* Copies fixture block f (0: version 1, 1: version 2) into <dir>/blocks/. */
static inline void fixture_copy(const char *dir, int f)
{
    static const char *const fixtures[2][2] = {
        { "tests/fixtures/tsdb_v1_block", "000001a21d2649bc0b310000" },
        { "tests/fixtures/tsdb_v2_block", "000001a21d5f33f537c70000" },
    };
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/blocks' && cp -r %s/%s '%s/blocks/'", dir, fixtures[f][0],
             fixtures[f][1], dir);
    assert_int_equal(system(cmd), 0);
}

/* open_db with the rollup_zero_run_ms and page_cache_bytes options (no retention). */
static inline tsdb_t *open_db_with(const char *dir, int64_t zero_run_ms, size_t page_cache_bytes)
{
    return open_db_ex(dir, 0, 0, 0, zero_run_ms, page_cache_bytes);
}

#endif
