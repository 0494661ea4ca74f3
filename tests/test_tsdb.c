/*
 * test_tsdb.c: the storage engine through its public API (tsdb.h).
 *
 * Query answers are rendered as text ("{k=v,...}" per series, "t:bits" per
 * sample, floats as raw bits) and compared with the text the input implies,
 * so any lost, duplicated, reordered or altered sample fails.  Every check
 * that holds for the head is repeated after a WAL replay, after a cut into a
 * block and after compaction.  The crash test SIGKILLs a forked writer at a
 * random moment; what it asserts does not depend on when the kill lands.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_helpers.h"
#include "strata_log.h"
#include "tsdb.h"

#define MIN_MS 60000LL

/* ---- helpers ---------------------------------------------------------------- */

typedef struct strbuf { char *s; size_t len, cap; } strbuf_t;

static void sb_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->s && (size_t)n < b->cap - b->len) { b->len += (size_t)n; return; }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        assert_non_null(b->s);
        if (!b->len) b->s[0] = 0;
    }
}

static tsdb_t *open_db(const char *dir, int64_t block_ms, int64_t retention_ms, uint64_t retention_bytes)
{
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    if (block_ms) o.block_duration_ms = block_ms;
    o.retention_ms = retention_ms;
    o.retention_bytes = retention_bytes;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    return db;
}

/* Parses "a=1,b=2" (sorted by the caller) into labels stored in buf. */
static size_t parse_labels(const char *spec, char *buf, size_t cap, tsdb_label_t *out)
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

static tsdb_append_result_t append(tsdb_t *db, const char *labels, const tsdb_sample_t *s, size_t n)
{
    char buf[512];
    tsdb_label_t l[16];
    tsdb_series_input_t in = { l, parse_labels(labels, buf, sizeof buf, l), s, n };
    tsdb_append_result_t res;
    assert_ok(tsdb_append(db, &in, 1, &res));
    return res;
}

/* Appends t = start, start+step, ... (n samples) with v = f(i). */
static void append_range(tsdb_t *db, const char *labels, int64_t start, int64_t step, size_t n, double base)
{
    tsdb_sample_t *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++) s[i] = (tsdb_sample_t){ start + (int64_t)i * step, base + (double)i };
    tsdb_append_result_t r = append(db, labels, s, n);
    assert_int_equal(r.too_old + r.conflicting, 0);
    free(s);
}

/* Renders the selection: "{a=1,b=2}" per series, with samples when with_samples. */
static char *query(tsdb_t *db, const tsdb_matcher_t *m, size_t nm, int64_t mint, int64_t maxt, int with_samples)
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
            for (size_t i = 0; i < n; i++) sb_printf(&b, " %" PRId64 ":%" PRIx64, s[i].t, test_double_bits(s[i].v));
    }
    assert_int_equal(rc, 0);
    tsdb_series_set_free(set);
    return b.s;
}

#define M(op, n, v) ((tsdb_matcher_t){ TSDB_MATCH_##op, n, v })

static void check_query(tsdb_t *db, const tsdb_matcher_t *m, size_t nm, const char *want)
{
    char *got = query(db, m, nm, INT64_MIN, INT64_MAX, 0);
    assert_string_equal(got, want);
    free(got);
}

/* The expected rendering of t = start + i*step, v = base + i. */
static char *expect_range(const char *labels, int64_t start, int64_t step, size_t n, double base)
{
    strbuf_t b = { 0 };
    sb_printf(&b, "{%s}", labels);
    for (size_t i = 0; i < n; i++)
        sb_printf(&b, " %" PRId64 ":%" PRIx64, start + (int64_t)i * step, test_double_bits(base + (double)i));
    return b.s;
}

static size_t count_dir(const char *dir, const char *sub)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, sub);
    DIR *d = opendir(p);
    if (!d) return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

/* Path of the only block's file `name`. */
static void block_file(const char *dir, const char *name, char *out, size_t cap)
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

static void flip_bit(const char *path, long off)
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

static const char *S1 = "__name__=cpu,env=prod,host=a";
static const char *S2 = "__name__=cpu,env=dev,host=b";
static const char *S3 = "__name__=cpu,host=c";
static const char *S4 = "__name__=mem,env=prod,host=a";
static const char *S5 = "__name__=mem,env=staging,host=abc";

static void check_matchers(tsdb_t *db)
{
    tsdb_matcher_t q1[] = { M(EQ, "__name__", "cpu") };
    check_query(db, q1, 1, "{__name__=cpu,env=dev,host=b}{__name__=cpu,env=prod,host=a}{__name__=cpu,host=c}");
    tsdb_matcher_t q2[] = { M(EQ, "__name__", "cpu"), M(EQ, "env", "") };
    check_query(db, q2, 2, "{__name__=cpu,host=c}");
    tsdb_matcher_t q3[] = { M(EQ, "__name__", "cpu"), M(NEQ, "env", "prod") };
    check_query(db, q3, 2, "{__name__=cpu,env=dev,host=b}{__name__=cpu,host=c}");
    tsdb_matcher_t q4[] = { M(EQ, "__name__", "cpu"), M(NEQ, "env", "") };
    check_query(db, q4, 2, "{__name__=cpu,env=dev,host=b}{__name__=cpu,env=prod,host=a}");
    tsdb_matcher_t q5[] = { M(RE, "env", "prod|staging") };  /* set fast path */
    check_query(db, q5, 1, "{__name__=cpu,env=prod,host=a}{__name__=mem,env=prod,host=a}{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q6[] = { M(RE, "host", "a.*") };  /* prefix fast path */
    check_query(db, q6, 1, "{__name__=cpu,env=prod,host=a}{__name__=mem,env=prod,host=a}{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q7[] = { M(RE, "host", "[ab]") };  /* general regex, fully anchored */
    check_query(db, q7, 1, "{__name__=cpu,env=dev,host=b}{__name__=cpu,env=prod,host=a}{__name__=mem,env=prod,host=a}");
    tsdb_matcher_t q8[] = { M(RE, "__name__", "cpu|mem"), M(NRE, "env", "prod|dev") };
    check_query(db, q8, 2, "{__name__=cpu,host=c}{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q9[] = { M(RE, "__name__", ".+"), M(RE, "host", "a.*"), M(RE, "env", "st.*") };
    check_query(db, q9, 3, "{__name__=mem,env=staging,host=abc}");
    tsdb_matcher_t q10[] = { M(RE, "host", "b|"), M(EQ, "__name__", "cpu") };  /* matches "" too */
    check_query(db, q10, 2, "{__name__=cpu,env=dev,host=b}");
    tsdb_matcher_t q11[] = { M(NRE, "host", "a.*"), M(RE, "__name__", "c.u") };
    check_query(db, q11, 2, "{__name__=cpu,env=dev,host=b}{__name__=cpu,host=c}");
    tsdb_matcher_t q12[] = { M(EQ, "__name__", "cpu"), M(EQ, "host", "zzz") };
    check_query(db, q12, 2, "");
    tsdb_matcher_t q13[] = { M(EQ, "env", "prod"), M(EQ, "host", "a"), M(NEQ, "__name__", "mem") };
    check_query(db, q13, 3, "{__name__=cpu,env=prod,host=a}");
    tsdb_matcher_t q14[] = { M(RE, "env", "pro") };  /* anchored: no partial match */
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
    assert_string_equal(v[0], "a"); assert_string_equal(v[1], "abc");
    assert_string_equal(v[2], "b"); assert_string_equal(v[3], "c");
    free(v);
    assert_ok(tsdb_label_values(db, "env", &v, &n));
    assert_int_equal(n, 3);
    assert_string_equal(v[0], "dev"); assert_string_equal(v[1], "prod"); assert_string_equal(v[2], "staging");
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
    check_matchers(db);                 /* head */
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_matchers(db);                 /* after WAL replay */
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.head_series, 0);
    check_matchers(db);                 /* block only */
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_matchers(db);                 /* block after reopen */
    /* head and block together: S1 gets more samples in the head */
    append_range(db, S1, 5000, 1000, 2, 9);
    check_matchers(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- head, blocks, merge ------------------------------------------------------- */

static void check_merged(tsdb_t *db)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "up") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    char *want = expect_range("__name__=up,job=a", 1000, 1000, 15, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    /* a sub-range */
    got = query(db, m, 1, 4000, 9500, 1);
    want = expect_range("__name__=up,job=a", 4000, 1000, 6, 4);
    assert_string_equal(got, want);
    free(got);
    free(want);
}

static void test_head_block_merge(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=up,job=a", 1000, 1000, 10, 1);   /* 1000..10000 */
    assert_ok(tsdb_cut_head(db));
    /* overlapping the block at 8000..10000 with identical values */
    append_range(db, "__name__=up,job=a", 8000, 1000, 8, 8);    /* 8000..15000 */
    check_merged(db);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_merged(db);                  /* replayed head + block */
    assert_ok(tsdb_cut_head(db));      /* two overlapping blocks */
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    check_merged(db);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_merged(db);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.min_time, 1000);
    assert_int_equal(st.max_time, 15000);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    check_merged(db);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_merged(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void test_block_range_edges(void **state)
{
    (void)state;
    /* One chunk spanning 0..1000000 with nothing in between: a range inside
     * the gap selects nothing, ranges touching a sample select the series. */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_sample_t s[] = { { 0, 1 }, { 1000000, 2 } };
    append(db, "__name__=gap", s, 2);
    append(db, "__name__=gap2", s, 1);
    assert_ok(tsdb_cut_head(db));
    tsdb_matcher_t m[] = { M(RE, "__name__", "gap.*") };
    for (int pass = 0; pass < 2; pass++) {
        char *got = query(db, m, 1, 10, 20, 1);
        assert_string_equal(got, "");
        free(got);
        got = query(db, m, 1, 0, 5, 1);
        assert_string_equal(got, "{__name__=gap} 0:3ff0000000000000{__name__=gap2} 0:3ff0000000000000");
        free(got);
        got = query(db, m, 1, 10, 1000000, 1);
        assert_string_equal(got, "{__name__=gap} 1000000:4000000000000000");
        free(got);
        /* the same series in the head too: the gap stays empty */
        append(db, "__name__=gap", (tsdb_sample_t[]){ { 2000000, 3 } }, 1);
    }
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- append classification --------------------------------------------------------- */

static void test_ooo_duplicates_conflicts(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);   /* ooo window 10m */
    const char *L = "__name__=x";
    tsdb_sample_t a[] = { { 1000000, 1 } };
    tsdb_append_result_t r = append(db, L, a, 1);
    assert_int_equal(r.appended, 1);
    assert_int_equal(r.new_series, 1);
    assert_int_equal(r.first_rejected_series, SIZE_MAX);
    /* 500 s behind: inside the window; 700 s behind: too old; same t, same
     * value: duplicate; same t, other value: conflict */
    tsdb_sample_t b[] = { { 500000, 2 }, { 300000, 3 }, { 1000000, 1 }, { 1000000, 5 }, { 1001000, 4 } };
    r = append(db, L, b, 5);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.too_old, 1);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(r.conflicting, 1);
    assert_int_equal(r.new_series, 0);
    assert_int_equal(r.first_rejected_series, 0);
    assert_int_equal(r.first_rejected_error, STRATA_ETOOOLD);  /* 300000 sorts first */
    /* an exact retry of an accepted batch is a no-op */
    tsdb_sample_t c[] = { { 500000, 2 }, { 1001000, 4 } };
    r = append(db, L, c, 2);
    assert_int_equal(r.appended, 0);
    assert_int_equal(r.duplicates, 2);
    /* duplicates and conflicts inside one batch */
    tsdb_sample_t d[] = { { 2000000, 7 }, { 2000000, 7 }, { 3000000, 8 }, { 3000000, 9 } };
    r = append(db, L, d, 4);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.duplicates, 1);
    assert_int_equal(r.conflicting, 1);
    assert_int_equal(r.first_rejected_error, STRATA_EDUPTS);
    /* a new series may start anywhere (backfill), in any order */
    tsdb_sample_t e[] = { { 5000, 1 }, { 1000, 0 } };
    r = append(db, "__name__=y", e, 2);
    assert_int_equal(r.appended, 2);
    assert_int_equal(r.new_series, 1);

    const char *want = "{__name__=x} 500000:4000000000000000 1000000:3ff0000000000000 1001000:4010000000000000"
                       " 2000000:401c000000000000 3000000:4020000000000000"
                       "{__name__=y} 1000:0 5000:3ff0000000000000";
    tsdb_matcher_t m[] = { M(RE, "__name__", "x|y") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.head_series, 2);
    assert_int_equal(st.head_samples, 7);
    assert_int_equal(st.samples_appended, 7);
    assert_int_equal(st.min_time, 1000);
    assert_int_equal(st.max_time, 3000000);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    /* the replayed head still knows the newest sample: too old stays too old */
    tsdb_sample_t f[] = { { 3000000 - 600001, 1 }, { 3000000, 9 } };
    r = append(db, L, f, 2);
    assert_int_equal(r.too_old, 1);
    assert_int_equal(r.conflicting, 1);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void test_many_samples_seal_and_ooo(void **state)
{
    (void)state;
    /* enough samples to seal several head chunks, with out-of-order ones
     * between them, read back in order from head, WAL and block */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    enum { N = 1000 };
    tsdb_sample_t *s = malloc(N * sizeof *s);
    size_t k = 0;
    for (int i = 0; i < N; i += 2) s[k++] = (tsdb_sample_t){ 10000 + i * 500, i * 0.5 };
    append(db, "__name__=seal", s, k);
    k = 0;
    for (int i = N - 1; i > 0; i -= 2) s[k++] = (tsdb_sample_t){ 10000 + i * 500, i * 0.5 };
    tsdb_append_result_t r = append(db, "__name__=seal", s, k);
    assert_int_equal(r.appended, 500);   /* all within the 10 min window: 500 s span */
    /* everything again: found in merged chunks, small chunks, the open
     * buffer and the out-of-order buffer alike */
    tsdb_sample_t *all = malloc(N * sizeof *all);
    for (int i = 0; i < N; i++) all[i] = (tsdb_sample_t){ 10000 + i * 500, i * 0.5 };
    r = append(db, "__name__=seal", all, N);
    assert_int_equal(r.duplicates, N);
    assert_int_equal(r.appended, 0);
    all[7].v = -1;
    all[500].v = -1;
    r = append(db, "__name__=seal", all, N);
    assert_int_equal(r.conflicting, 2);
    assert_int_equal(r.duplicates, N - 2);
    free(all);
    strbuf_t want = { 0 };
    sb_printf(&want, "{__name__=seal}");
    for (int i = 0; i < N; i++) sb_printf(&want, " %d:%" PRIx64, 10000 + i * 500, test_double_bits(i * 0.5));
    tsdb_matcher_t m[] = { M(EQ, "__name__", "seal") };
    for (int round = 0; round < 3; round++) {
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want.s);
        free(got);
        tsdb_close(db);
        db = open_db(dir, 0, 0, 0);
        if (round == 1) assert_ok(tsdb_cut_head(db));
    }
    free(want.s);
    free(s);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* The one series named `name` holds exactly s[0..n), bit for bit. */
static void check_bits(tsdb_t *db, const char *name, const tsdb_sample_t *s, size_t n)
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

static void test_stale_and_nan_bit_exact(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_sample_t s[] = {
        { 1000, test_bits_double(TSDB_STALE_NAN_BITS) },
        { 2000, test_bits_double(0x7ff8000000000abcULL) },   /* quiet NaN with payload */
        { 3000, test_bits_double(0xfff0000000000001ULL) },   /* negative signalling NaN */
        { 4000, -0.0 },
        { 5000, INFINITY },
        { 6000, test_bits_double(1) },                       /* smallest subnormal */
        { 7000, 0.1 },
    };
    size_t n = sizeof s / sizeof *s;
    tsdb_append_result_t r = append(db, "__name__=nan", s, n);
    assert_int_equal(r.appended, n);
    /* re-sending them is a duplicate: compared by bits, not == */
    r = append(db, "__name__=nan", s, n);
    assert_int_equal(r.duplicates, n);
    /* a different NaN payload at the same time conflicts */
    tsdb_sample_t other = { 2000, test_bits_double(0x7ff8000000000abdULL) };
    r = append(db, "__name__=nan", &other, 1);
    assert_int_equal(r.conflicting, 1);
    check_bits(db, "nan", s, n);
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_bits(db, "nan", s, n);              /* WAL replay */
    assert_ok(tsdb_cut_head(db));
    check_bits(db, "nan", s, n);              /* block */
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);
    check_bits(db, "nan", s, n);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- rollups ----------------------------------------------------------------------- */

/* k = 1..120 minutes, v = k up to 70, then a counter reset: v = k - 70;
 * a stale marker at 30.5 min (excluded from every field). */
static void rollup_input(tsdb_sample_t *s, size_t *n, int from_k, int to_k)
{
    *n = 0;
    for (int k = from_k; k <= to_k; k++) {
        s[(*n)++] = (tsdb_sample_t){ k * MIN_MS, k <= 70 ? k : k - 70 };
        if (k == 30) s[(*n)++] = (tsdb_sample_t){ 30 * MIN_MS + 30000, test_bits_double(TSDB_STALE_NAN_BITS) };
    }
}

static void check_rollups(tsdb_t *db)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "ctr") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, 120 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t n;
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
    assert_int_equal(n, 2);
    assert_int_equal(p[0].t, 60 * MIN_MS);
    assert_int_equal(p[0].count, 60);
    assert_true(p[0].sum == 1830 && p[0].min == 1 && p[0].max == 60);
    assert_true(p[0].first == 1 && p[0].first_t == MIN_MS && p[0].last == 60 && p[0].last_t == 60 * MIN_MS);
    assert_true(p[0].increase == 59);
    assert_int_equal(p[1].t, 120 * MIN_MS);
    assert_int_equal(p[1].count, 60);
    assert_true(p[1].sum == 655 + 1275 && p[1].min == 1 && p[1].max == 70);
    assert_true(p[1].first == 61 && p[1].first_t == 61 * MIN_MS && p[1].last == 50 && p[1].last_t == 120 * MIN_MS);
    assert_true(p[1].increase == 60);  /* 60->70: 10, reset to 1: +1, 1->50: +49 */

    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_5M, &p, &n));
    assert_int_equal(n, 24);
    for (size_t i = 0; i < n; i++) {
        int k0 = (int)i * 5 + 1;   /* minutes k0..k0+4 */
        double v[5], sum = 0, mn = INFINITY, mx = -INFINITY;
        for (int j = 0; j < 5; j++) {
            v[j] = k0 + j <= 70 ? k0 + j : k0 + j - 70;
            sum += v[j];
            mn = v[j] < mn ? v[j] : mn;
            mx = v[j] > mx ? v[j] : mx;
        }
        double prev = k0 - 1 <= 70 ? k0 - 1 : k0 - 1 - 70;
        double inc = i == 0 ? 4 : 0;
        if (i > 0) for (int j = 0; j < 5; j++) { inc += v[j] >= prev ? v[j] - prev : v[j]; prev = v[j]; }
        assert_int_equal(p[i].t, (int64_t)(i + 1) * 5 * MIN_MS);
        assert_int_equal(p[i].count, 5);
        assert_true(p[i].sum == sum);
        assert_true(p[i].min == mn && p[i].max == mx);
        assert_true(p[i].first == v[0] && p[i].first_t == k0 * MIN_MS);
        assert_true(p[i].last == v[4] && p[i].last_t == (k0 + 4) * MIN_MS);
        assert_true(p[i].increase == inc);
    }
    assert_true(p[14].increase == 5 && p[14].sum == 1 + 2 + 3 + 4 + 5);  /* (70, 75]: the reset */
    assert_err(tsdb_series_set_rollups(set, 1000, &p, &n), STRATA_EINVAL);
    tsdb_series_set_free(set);

    /* a narrower range keeps only the intervals that lie inside it */
    assert_ok(tsdb_select(db, m, 1, 10 * MIN_MS + 1, 30 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_5M, &p, &n));
    assert_int_equal(n, 4);
    assert_int_equal(p[0].t, 15 * MIN_MS);
    assert_int_equal(p[3].t, 30 * MIN_MS);
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
    assert_int_equal(n, 0);
    tsdb_series_set_free(set);
}

static void test_rollups(void **state)
{
    (void)state;
    tsdb_sample_t s[130];
    size_t n;
    /* head only */
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    rollup_input(s, &n, 1, 120);
    assert_int_equal(append(db, "__name__=ctr", s, n).appended, 121);
    check_rollups(db);
    /* block only (stored rollups) */
    assert_ok(tsdb_cut_head(db));
    check_rollups(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
    /* first hour in a block, second in the head: stored + computed, the
     * counter carried across the boundary */
    dir = test_tmpdir_new();
    db = open_db(dir, 0, 0, 0);
    rollup_input(s, &n, 1, 60);
    append(db, "__name__=ctr", s, n);
    assert_ok(tsdb_cut_head(db));
    rollup_input(s, &n, 61, 120);
    append(db, "__name__=ctr", s, n);
    check_rollups(db);
    /* two adjacent blocks */
    assert_ok(tsdb_cut_head(db));
    check_rollups(db);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* The holding-rule fields, recomputed here from the samples of each interval
 * by brute force.  Values are small integers and halves and times whole
 * seconds, so every sum is exact whatever the order of additions. */
static tsdb_rollup_point_t hold_ref(const tsdb_sample_t *s, size_t n, int64_t res, int64_t end)
{
    tsdb_rollup_point_t p = { .t = end };
    const tsdb_sample_t *v[2000];
    size_t k = 0;
    const tsdb_sample_t *base = NULL;
    for (size_t i = 0; i < n; i++) {
        int stale = test_double_bits(s[i].v) == TSDB_STALE_NAN_BITS;
        if (s[i].t <= end - res) { if (!stale) base = &s[i]; continue; }
        if (s[i].t > end) break;
        if (stale) { p.stale++; p.stale_t = s[i].t; }
        else v[k++] = &s[i];
    }
    p.count = (uint32_t)k;
    if (!k) return p;
    p.first = v[0]->v; p.first_t = v[0]->t;
    p.last = v[k - 1]->v; p.last_t = v[k - 1]->t;
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
        if (v[i]->v != 0) { i++; continue; }
        size_t j = i;
        while (j + 1 < k && v[j + 1]->v == 0) j++;
        if (i == 0) p.zero_lead_end = j + 1 < k ? v[j + 1]->t : INT64_MAX;
        if (j + 1 == k) p.zero_trail_start = v[i]->t;
        if (i > 0 && j + 1 < k) {
            int64_t len = v[j + 1]->t - v[i]->t;
            if (len > p.zero_inner_max) p.zero_inner_max = len;
            if (len > TSDB_ROLLUP_IDLE_AFTER) p.zero_inner_idle += len - TSDB_ROLLUP_IDLE_AFTER;
        }
        i = j + 1;
    }
    return p;
}

static void check_hold_fields(tsdb_t *db, const tsdb_sample_t *s, size_t n, int64_t res, unsigned trial)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "h") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, 5 * 60 * MIN_MS, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t np, want_n = 0;
    assert_ok(tsdb_series_set_rollups(set, res, &p, &np));
    for (int64_t end = res; end <= 5 * 60 * MIN_MS; end += res) {
        tsdb_rollup_point_t w = hold_ref(s, n, res, end);
        if (!w.count && !w.stale) continue;
        if (want_n >= np) fail_msg("trial %u res %lld: no point for %lld", trial, (long long)res, (long long)end);
        const tsdb_rollup_point_t *g = &p[want_n++];
#define SAME(f) if (g->f != w.f) fail_msg("trial %u res %lld point %lld: %s got %.17g want %.17g", \
                                          trial, (long long)res, (long long)end, #f, (double)g->f, (double)w.f)
        if (res == TSDB_ROLLUP_5M) {  /* the holding-rule fields are 1h only */
            tsdb_rollup_point_t z = { .t = w.t, .count = w.count, .sum = w.sum, .min = w.min,
                                      .max = w.max, .last = w.last, .last_t = w.last_t,
                                      .first = w.first, .first_t = w.first_t, .increase = w.increase };
            w = z;
        }
        SAME(t); SAME(count); SAME(stale); SAME(stale_t);
        SAME(gap_max); SAME(hold_sum); SAME(last_rise); SAME(inner_increase);
        SAME(zero_lead_end); SAME(zero_trail_start); SAME(zero_inner_max); SAME(zero_inner_idle);
        if (!w.count) continue;
        SAME(sum); SAME(min); SAME(max); SAME(first); SAME(first_t); SAME(last); SAME(last_t);
        SAME(increase);
#undef SAME
    }
    assert_int_equal(np, want_n);
    tsdb_series_set_free(set);
}

/* Random series (regular scrapes with gaps, runs of zeros, counter-like drops,
 * stale markers) stored as two blocks and the head, split at random points
 * (inside intervals too), then as one compacted block: every field equals
 * the brute-force summary of its interval. */
static void test_rollup_hold_fields(void **state)
{
    (void)state;
    static const double vals[] = { 0, 0, 0, 1, 2, 3, 7, 0.5 };
    static tsdb_sample_t s[2000];
    for (unsigned trial = 0; trial < 40; trial++) {
        srand(trial + 1);
        size_t n = 0;
        int64_t t = (rand() % 20) * 1000;
        double v = 0;
        while (t < 4 * 60 * MIN_MS && n < 1990) {
            int r = rand() % 100;
            if (r < 3) s[n++] = (tsdb_sample_t){ t, test_bits_double(TSDB_STALE_NAN_BITS) };
            else {
                if (rand() % 6 == 0) v = vals[rand() % 8];  /* mostly held, sometimes a new value */
                s[n++] = (tsdb_sample_t){ t, v };
            }
            t += r < 90 ? 15000 : r < 97 ? 1000 * (1 + rand() % 600) : 1000 * (rand() % 3600 + 1);
        }
        char *dir = test_tmpdir_new();
        tsdb_t *db = open_db(dir, 0, 0, 0);
        size_t a = (size_t)rand() % n, b = a + (size_t)rand() % (n - a);
        append(db, "__name__=h", s, a);
        assert_ok(tsdb_cut_head(db));
        append(db, "__name__=h", s + a, b - a);
        assert_ok(tsdb_cut_head(db));
        append(db, "__name__=h", s + b, n - b);
        check_hold_fields(db, s, n, TSDB_ROLLUP_5M, trial);
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, trial);
        assert_ok(tsdb_cut_head(db));
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, trial);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

/* Blocks of the older formats (tests/fixtures/tsdb_v1_block and
 * tsdb_v2_block, see their READMEs) open, their samples read back, and their
 * rollups have every field (version 1 lacks the holding-rule fields: its 1h
 * rollups are recomputed from the samples; version 2 stores fixed-size points). */
static void test_block_old_versions_readable(void **state)
{
    (void)state;
    static tsdb_sample_t s[500];
    size_t n = 0;
    for (int k = 0; k < 480; k++) {
        s[n++] = (tsdb_sample_t){ (int64_t)k * 15000, (double)((k / 40) % 3) };
        if (k == 360) s[n++] = (tsdb_sample_t){ (int64_t)k * 15000 + 1, test_bits_double(TSDB_STALE_NAN_BITS) };
    }
    static const char *const fixtures[2][2] = {
        { "tests/fixtures/tsdb_v1_block", "000001a21d2649bc0b310000" },
        { "tests/fixtures/tsdb_v2_block", "000001a21d5f33f537c70000" },
    };
    for (int f = 0; f < 2; f++) {
        char *dir = test_tmpdir_new();
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "mkdir -p '%s/blocks' && cp -r %s/%s '%s/blocks/'", dir, fixtures[f][0],
                 fixtures[f][1], dir);
        assert_int_equal(system(cmd), 0);
        tsdb_t *db = open_db(dir, 0, 0, 0);
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        assert_int_equal(st.blocks, 1);
        check_bits(db, "h", s, n);
        check_hold_fields(db, s, n, TSDB_ROLLUP_5M, (unsigned)f);
        check_hold_fields(db, s, n, TSDB_ROLLUP_1H, (unsigned)f);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

/* ---- compaction and retention ----------------------------------------------------------- */

static void test_compaction_overlap_and_adjacent(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    const int64_t H = 60 * MIN_MS;
    tsdb_t *db = open_db(dir, H, 0, 0);   /* compaction window 3h */
    /* window 0: [0,3h): three blocks, two of them overlapping */
    append_range(db, "__name__=a", 0, MIN_MS, 31, 0);             /* 0..30m */
    assert_ok(tsdb_cut_head(db));
    append_range(db, "__name__=a", 20 * MIN_MS, MIN_MS, 21, 20);   /* 20..40m: overlaps, same values */
    assert_ok(tsdb_cut_head(db));
    append_range(db, "__name__=a", 2 * H, MIN_MS, 10, 120);       /* 2h..2h9m */
    assert_ok(tsdb_cut_head(db));
    /* window 1: one block, left alone */
    append_range(db, "__name__=a", 3 * H, MIN_MS, 10, 180);
    assert_ok(tsdb_cut_head(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 4);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(count_dir(dir, "blocks"), 2);
    strbuf_t want = { 0 };
    sb_printf(&want, "{__name__=a}");
    for (int i = 0; i <= 40; i++) sb_printf(&want, " %lld:%" PRIx64, i * MIN_MS, test_double_bits(i));
    for (int i = 0; i < 10; i++) sb_printf(&want, " %lld:%" PRIx64, 2 * H + i * MIN_MS, test_double_bits(120 + i));
    for (int i = 0; i < 10; i++) sb_printf(&want, " %lld:%" PRIx64, 3 * H + i * MIN_MS, test_double_bits(180 + i));
    tsdb_matcher_t m[] = { M(EQ, "__name__", "a") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want.s);
    free(got);
    /* rollups of the compacted block were rebuilt from the merged samples */
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, 0, H, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_rollup_point_t *p;
    size_t n;
    assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
    assert_int_equal(n, 1);
    assert_int_equal(p[0].count, 40);    /* 1..40 min: t = 0 belongs to (-1h, 0] */
    assert_true(p[0].sum == 820 && p[0].increase == 40);  /* from the sample at t = 0 */
    tsdb_series_set_free(set);
    tsdb_close(db);
    db = open_db(dir, H, 0, 0);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want.s);
    free(got);
    assert_ok(tsdb_compact(db));        /* nothing left to do */
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    free(want.s);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* 50 hours cut hour by hour (1 h blocks, so windows of 3 h, then 1 day and
 * 7 days): a day with a block already past it becomes one block, the last
 * hours stay in 3 h windows; a retention of 2 days caps blocks at 4.8 h. */
static void test_compaction_levels(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    for (int capped = 0; capped < 2; capped++) {
        char *dir = test_tmpdir_new();
        tsdb_t *db = open_db(dir, H, capped ? 48 * H : 0, 0);
        for (int h = 0; h <= 50; h++) {
            append_range(db, "__name__=a", h * H, 10 * MIN_MS, h == 50 ? 1 : 6, h * 6);
            assert_ok(tsdb_cut_head(db));
        }
        assert_ok(tsdb_compact(db));
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        /* [0,24h) [24h,48h) [48h,51h); capped: 3 h windows only, 17 of them */
        assert_int_equal(st.blocks, capped ? 17 : 3);
        strbuf_t want = { 0 };
        sb_printf(&want, "{__name__=a}");
        for (int i = 0; i <= 300; i++) sb_printf(&want, " %lld:%" PRIx64, i * 10 * MIN_MS, test_double_bits(i));
        tsdb_matcher_t m[] = { M(EQ, "__name__", "a") };
        char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
        assert_string_equal(got, want.s);
        free(got);
        if (!capped) {
            /* rollups of a day block: 24 points, from its merged samples */
            tsdb_series_set_t *set;
            assert_ok(tsdb_select(db, m, 1, 0, 24 * H, &set));
            assert_int_equal(tsdb_series_set_next(set), 1);
            const tsdb_rollup_point_t *p;
            size_t n;
            assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
            assert_int_equal(n, 24);
            assert_true(p[23].t == 24 * H && p[23].count == 6 && p[23].last == 144);
            tsdb_series_set_free(set);
        }
        free(want.s);
        tsdb_close(db);
        test_tmpdir_free(dir);
    }
}

/* A streaming set reads a block's pages (samples and rollups, right) without
 * adding them to the shared page cache; an ordinary set adds them. */
static void test_stream_read_bypasses_cache(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=s", 0, 15000, 2000, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    db = open_db(dir, 0, 0, 0);  /* a fresh block object: none of its pages cached */
    tsdb_matcher_t m[] = { M(EQ, "__name__", "s") };
    tsdb_stats_t st;
    for (int stream = 1; stream >= 0; stream--) {
        tsdb_get_stats(db, &st);
        uint64_t before = st.page_cache_bytes;
        tsdb_series_set_t *set;
        assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
        if (stream) tsdb_series_set_stream(set);
        assert_int_equal(tsdb_series_set_next(set), 1);
        const tsdb_sample_t *smp;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &smp, &n));
        assert_int_equal(n, 2000);
        assert_true(smp[1999].v == 1999);
        const tsdb_rollup_point_t *p;
        assert_ok(tsdb_series_set_rollups(set, TSDB_ROLLUP_1H, &p, &n));
        assert_int_equal(n, 10);  /* (-1h, 0] .. (8h, 9h]: 2000 samples 15 s apart from 0 */
        tsdb_series_set_free(set);
        tsdb_get_stats(db, &st);
        if (stream) assert_true(st.page_cache_bytes == before);
        else assert_true(st.page_cache_bytes > before);
    }
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void make_three_blocks(tsdb_t *db, uint64_t sizes[3])
{
    const int64_t H = 60 * MIN_MS;
    uint64_t before = 0;
    for (int b = 0; b < 3; b++) {
        append_range(db, "__name__=r", b * 3 * H, MIN_MS, 30, b * 100);
        assert_ok(tsdb_cut_head(db));
        tsdb_stats_t st;
        tsdb_get_stats(db, &st);
        sizes[b] = st.block_bytes - before;
        before = st.block_bytes;
    }
}

static void test_retention_time_and_size(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    /* by time: blocks at 0h, 3h, 6h (30 min each); newest sample 6h29m;
     * retention 5h drops blocks ending before 1h29m: the first one */
    char *dir = test_tmpdir_new();
    uint64_t sizes[3];
    tsdb_t *db = open_db(dir, H, 5 * H, 0);
    make_three_blocks(db, sizes);
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(st.min_time, 3 * H);
    assert_int_equal(st.max_time, 6 * H + 29 * MIN_MS);
    assert_int_equal(count_dir(dir, "blocks"), 2);
    tsdb_close(db);
    test_tmpdir_free(dir);

    /* by size: room for exactly the two newest blocks */
    dir = test_tmpdir_new();
    db = open_db(dir, H, 0, 0);
    make_three_blocks(db, sizes);
    tsdb_close(db);
    db = open_db(dir, H, 0, sizes[1] + sizes[2]);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 2);
    assert_int_equal(st.block_bytes, sizes[1] + sizes[2]);
    assert_int_equal(st.min_time, 3 * H);
    tsdb_close(db);
    /* one byte less: only the newest stays */
    db = open_db(dir, H, 0, sizes[1] + sizes[2] - 1);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.min_time, 6 * H);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "r") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    char *want = expect_range("__name__=r", 6 * H, MIN_MS, 30, 200);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    test_tmpdir_free(dir);
}

static void test_dropped_block_outlives_reader(void **state)
{
    (void)state;
    /* A reader keeps a block it selected readable after retention dropped
     * it; the directory goes when the reader lets go. */
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, 0, 0);
    append_range(db, "__name__=old", 0, MIN_MS, 10, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    db = open_db(dir, H, 1, 0);               /* retention 1 ms: the block is past it */
    tsdb_matcher_t m[] = { M(EQ, "__name__", "old") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    append_range(db, "__name__=new", 10 * H, MIN_MS, 1, 0);   /* newest sample moves on */
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 0);
    assert_int_equal(count_dir(dir, "blocks"), 1);
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_sample_t *s;
    size_t n;
    assert_ok(tsdb_series_set_samples(set, &s, &n));
    assert_int_equal(n, 10);
    assert_int_equal(s[9].t, 9 * MIN_MS);
    tsdb_series_set_free(set);
    assert_int_equal(count_dir(dir, "blocks"), 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 0);
    assert_string_equal(got, "");
    free(got);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- corruption ------------------------------------------------------------------------ */

static void test_corrupt_chunks(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=c,job=1", 1000, 1000, 500, 0);
    append_range(db, "__name__=c,job=2", 1000, 1000, 500, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    char path[1024];
    block_file(dir, "chunks", path, sizeof path);
    flip_bit(path, 8 + 12 + 5);   /* inside the first page's compressed bytes */
    strata_log_set_level(STRATA_LOG_ERROR + 1);   /* the expected error is noise here */
    db = open_db(dir, 0, 0, 0);    /* chunks are checked on read, not at open */
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "c") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    assert_int_equal(tsdb_series_set_next(set), 1);
    const tsdb_sample_t *s;
    size_t n;
    assert_err(tsdb_series_set_samples(set, &s, &n), STRATA_ECORRUPT);
    const tsdb_rollup_point_t *p;
    assert_err(tsdb_series_set_rollups(set, TSDB_ROLLUP_5M, &p, &n), STRATA_ECORRUPT);
    /* set aside at once for new readers, moved once this reader is done */
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 0);
    assert_int_equal(st.blocks_corrupt, 1);
    assert_int_equal(count_dir(dir, "corrupt"), 0);
    tsdb_series_set_free(set);
    assert_int_equal(count_dir(dir, "corrupt"), 1);
    assert_int_equal(count_dir(dir, "blocks"), 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 0);
    assert_string_equal(got, "");
    free(got);
    /* the db keeps working */
    append_range(db, "__name__=c,job=1", 600000, 1000, 2, 5);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    char *want = expect_range("__name__=c,job=1", 600000, 1000, 2, 5);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    strata_log_set_level(STRATA_LOG_WARN);
    test_tmpdir_free(dir);
}

static void corrupt_at_open(const char *file, long off)
{
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=c", 1000, 1000, 10, 0);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    char path[1024];
    block_file(dir, file, path, sizeof path);
    flip_bit(path, off);
    strata_log_set_level(STRATA_LOG_ERROR + 1);
    db = open_db(dir, 0, 0, 0);
    strata_log_set_level(STRATA_LOG_WARN);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 0);
    assert_int_equal(st.blocks_corrupt, 1);
    assert_int_equal(count_dir(dir, "corrupt"), 1);
    assert_int_equal(count_dir(dir, "blocks"), 0);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "c") };
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 0);
    assert_string_equal(got, "");
    free(got);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void test_corrupt_index_and_meta(void **state)
{
    (void)state;
    corrupt_at_open("index", 20);
    corrupt_at_open("index", -2);   /* the CRC itself */
    corrupt_at_open("meta", 10);
}

/* ---- crash ------------------------------------------------------------------------------ */

#define CRASH_PER_BATCH 10

static void crash_child(const char *dir, int start, int wfd)
{
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_ALWAYS;
    o.wal_segment_bytes = 64 * 1024;    /* several segments per round */
    tsdb_t *db = NULL;
    if (tsdb_open(&o, &db) != 0) _exit(2);
    tsdb_label_t l1[] = { { "__name__", "crash" }, { "part", "a" } };
    tsdb_label_t l2[] = { { "__name__", "crash" }, { "part", "b" } };
    for (int b = start;; b++) {
        tsdb_sample_t s[CRASH_PER_BATCH];
        for (int j = 0; j < CRASH_PER_BATCH; j++) {
            int64_t t = (int64_t)b * CRASH_PER_BATCH + j;
            s[j] = (tsdb_sample_t){ t * 1000, (double)t };
        }
        tsdb_series_input_t in[] = { { l1, 2, s, CRASH_PER_BATCH }, { l2, 2, s, CRASH_PER_BATCH } };
        tsdb_append_result_t r;
        if (tsdb_append(db, in, 2, &r) != 0) _exit(3);
        if (write(wfd, &b, sizeof b) != sizeof b) _exit(4);
        if (b % 40 == 39 && tsdb_cut_head(db) != 0) _exit(5);   /* checkpoints under fire too */
    }
}

static void test_crash_recovery(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    int acked = -1;   /* highest acknowledged batch; batches are acked in order */
    srand((unsigned)time(NULL));
    for (int round = 0; round < 6; round++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            strata_log_set_level(STRATA_LOG_ERROR + 1);
            crash_child(dir, acked + 1, p[1]);
            _exit(0);
        }
        close(p[1]);
        /* Let it run a random while, then kill it mid-flight. */
        int want = 5 + rand() % 60, got = 0, b;
        while (got < want && read(p[0], &b, sizeof b) == sizeof b) { acked = b; got++; }
        usleep((useconds_t)(rand() % 3000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        while (read(p[0], &b, sizeof b) == sizeof b) acked = b;
        close(p[0]);
    }
    assert_true(acked >= 30);
    /* Every acknowledged sample is there; nothing beyond the one batch that
     * was in flight at the last kill (present wholly, partly or not at all),
     * and every present sample has exactly the value that was written. */
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "crash") };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    for (int part = 0; part < 2; part++) {
        assert_int_equal(tsdb_series_set_next(set), 1);
        const tsdb_sample_t *s;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &s, &n));
        size_t need = (size_t)(acked + 1) * CRASH_PER_BATCH;
        assert_true(n >= need);
        assert_true(n <= need + CRASH_PER_BATCH);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(s[i].t, (int64_t)i * 1000);
            assert_true(s[i].v == (double)i);
        }
    }
    assert_int_equal(tsdb_series_set_next(set), 0);
    tsdb_series_set_free(set);
    tsdb_close(db);
    test_tmpdir_free(dir);
}


/* ---- maintenance pass and concurrency ------------------------------------------------------ */

static void test_due_cut_in_compact(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, 0, 0);
    /* 0..1h30m: spans 1.5 block durations, not more: nothing is due */
    append_range(db, "__name__=d", 0, MIN_MS, 91, 0);
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 0);
    /* up to 2h: the aligned range [0, 1h) is cut, the rest stays in the head */
    append_range(db, "__name__=d", 91 * MIN_MS, MIN_MS, 30, 91);
    assert_ok(tsdb_compact(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.head_samples, 61);   /* 1h..2h */
    assert_int_equal(st.min_time, 0);
    assert_int_equal(st.max_time, 120 * MIN_MS);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "d") };
    char *want = expect_range("__name__=d", 0, MIN_MS, 121, 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_close(db);
    db = open_db(dir, H, 0, 0);        /* the checkpoint holds exactly the head */
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 61);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
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
        if (i % 100 == 0) snprintf(labels, sizeof labels, "__name__=m%d,i=%04d,t=0", i % 3, i);
        else snprintf(labels, sizeof labels, "__name__=m%d,i=%04d,t=0,w=%03d", i % 3, i, i / 10);
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
        got = query(db, set, 3, INT64_MIN, INT64_MAX, 0);  /* only the series without w */
        assert_string_equal(got, "{__name__=m0,i=0300,t=0}{__name__=m1,i=0400,t=0}");
        free(got);
        got = query(db, none, 2, INT64_MIN, INT64_MAX, 0);
        assert_string_equal(got, "");
        free(got);
        got = query(db, neq, 3, INT64_MIN, INT64_MAX, 0);  /* 0300 has no w, 0301/0302 have w=030 */
        assert_string_equal(got, "{__name__=m0,i=0300,t=0}");
        free(got);
        assert_ok(tsdb_cut_head(db));  /* second pass reads the block index */
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
        { "(((x?){0,20})+++)", "bounded repetition of a group that repeats" },
    };
    static const char *const accepted[] = {
        ".*", "a|b|c", "gpu-.*", ".*a.*b.*c.*d.*e.*f.*g.*", "(a|b|c)+(d|e)*(f?g)+", "x{1,100}",
        "[+*?]+", "a\\++", "(x?)+(x?)+(x?)+(x?)+", "(((x?)+)+)+", "[]a]*", "(a){2}(b){3}",
    };
    char why[96];
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        why[0] = '\0';
        assert_err(tsdb_regex_check(refused[i][0], why, sizeof why), STRATA_EBADREGEX);
        assert_string_equal(why, refused[i][1]);
    }
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++)
        if (tsdb_regex_check(accepted[i], why, sizeof why) != 0) fail_msg("%s refused: %s", accepted[i], why);
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    append_range(db, "__name__=r,v=x", 1000, 1000, 1, 0);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "r"), M(RE, "v", "(x?)++++++") };
    tsdb_series_set_t *set = NULL;
    assert_err(tsdb_select(db, m, 2, INT64_MIN, INT64_MAX, &set), STRATA_EBADREGEX);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* A head that fell far behind (a fast backfill of 30 h, 1 h blocks) is drained
 * in one pass, one block per aligned window and one checkpoint, down to the
 * last 1.5 block durations: 29h..30h stays in the head. */
static void test_backfill_cut_one_pass(void **state)
{
    (void)state;
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, H, 0, 0);
    append_range(db, "__name__=b", 0, MIN_MS, 30 * 60 + 1, 0);
    assert_ok(tsdb_compact(db));
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 61);   /* 29h..30h inclusive */
    assert_true(st.blocks >= 1);
    assert_int_equal(st.min_time, 0);
    assert_int_equal(st.max_time, 30 * H);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "b") };
    char *want = expect_range("__name__=b", 0, MIN_MS, 30 * 60 + 1, 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    tsdb_close(db);
    db = open_db(dir, H, 0, 0);
    tsdb_get_stats(db, &st);
    assert_int_equal(st.head_samples, 61);
    got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

#define CONC_N 1500
#define CONC_WRITERS 2

struct conc {
    tsdb_t *db;
    atomic_int acked[CONC_WRITERS];
    atomic_int writers_done;
    atomic_int failures;
};

struct conc_arg { struct conc *c; int id; };

static void *conc_writer(void *arg)
{
    struct conc *c = ((struct conc_arg *)arg)->c;
    int id = ((struct conc_arg *)arg)->id;
    char val[8];
    snprintf(val, sizeof val, "%d", id);
    tsdb_label_t l[] = { { "__name__", "conc" }, { "w", val } };
    for (int i = 0; i < CONC_N; i++) {
        tsdb_sample_t s = { (int64_t)i * 1000, (double)i };
        tsdb_series_input_t in = { l, 2, &s, 1 };
        tsdb_append_result_t r;
        if (tsdb_append(c->db, &in, 1, &r) != 0 || r.appended != 1) { atomic_fetch_add(&c->failures, 1); break; }
        atomic_store(&c->acked[id], i + 1);
    }
    atomic_fetch_add(&c->writers_done, 1);
    return NULL;
}

/* Every select sees, for each writer, at least every sample acknowledged
 * before it started, in order, each once, with its value. */
static int conc_check(tsdb_t *db, const int *before)
{
    tsdb_matcher_t m[] = { M(EQ, "__name__", "conc") };
    tsdb_series_set_t *set;
    if (tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set) != 0) return 0;
    int ok = 1, seen[CONC_WRITERS] = { 0 };
    while (ok && tsdb_series_set_next(set) == 1) {
        size_t nl, n;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        const tsdb_sample_t *s;
        int w = atoi(l[1].value);
        if (tsdb_series_set_samples(set, &s, &n) != 0 || w < 0 || w >= CONC_WRITERS) { ok = 0; break; }
        seen[w] = 1;
        if ((int)n < before[w]) ok = 0;
        for (size_t i = 0; ok && i < n; i++) ok = s[i].t == (int64_t)i * 1000 && s[i].v == (double)i;
    }
    for (int w = 0; w < CONC_WRITERS; w++) if (before[w] && !seen[w]) ok = 0;
    tsdb_series_set_free(set);
    return ok;
}

static void test_concurrent_append_select_cut(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    struct conc c = { .db = open_db(dir, 0, 0, 0) };
    pthread_t th[CONC_WRITERS];
    struct conc_arg args[CONC_WRITERS];
    for (int w = 0; w < CONC_WRITERS; w++) {
        args[w] = (struct conc_arg){ &c, w };
        assert_int_equal(pthread_create(&th[w], NULL, conc_writer, &args[w]), 0);
    }
    int checks = 0, bad = 0, cuts = 0;
    while (atomic_load(&c.writers_done) < CONC_WRITERS) {
        int before[CONC_WRITERS];
        for (int w = 0; w < CONC_WRITERS; w++) before[w] = atomic_load(&c.acked[w]);
        bad += !conc_check(c.db, before);
        checks++;
        if (checks % 4 == 0 && cuts < 8) { assert_ok(tsdb_cut_head(c.db)); cuts++; }
        if (checks % 9 == 0) assert_ok(tsdb_compact(c.db));
    }
    for (int w = 0; w < CONC_WRITERS; w++) pthread_join(th[w], NULL);
    assert_int_equal(atomic_load(&c.failures), 0);
    assert_int_equal(bad, 0);
    int all[CONC_WRITERS];
    for (int w = 0; w < CONC_WRITERS; w++) all[w] = CONC_N;
    assert_true(conc_check(c.db, all));
    assert_ok(tsdb_cut_head(c.db));
    assert_ok(tsdb_compact(c.db));
    assert_true(conc_check(c.db, all));
    tsdb_close(c.db);
    c.db = open_db(dir, 0, 0, 0);
    assert_true(conc_check(c.db, all));
    tsdb_close(c.db);
    test_tmpdir_free(dir);
}

static void test_background_cut(void **state)
{
    (void)state;
    /* The background thread's first pass finds a head spanning 2h with 1h
     * blocks and cuts [0, 1h).  Liveness only: it waits for the block (up
     * to 20 s, normally about one second), it asserts no duration. */
    const int64_t H = 60 * MIN_MS;
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.block_duration_ms = H;
    o.fsync = TSDB_FSYNC_NEVER;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    append_range(db, "__name__=bg", 0, MIN_MS, 121, 0);
    tsdb_stats_t st;
    for (int i = 0; i < 400; i++) {
        tsdb_get_stats(db, &st);
        if (st.blocks) break;
        usleep(50000);
    }
    assert_int_equal(st.blocks, 1);
    assert_int_equal(st.head_samples, 61);
    tsdb_matcher_t m[] = { M(EQ, "__name__", "bg") };
    char *want = expect_range("__name__=bg", 0, MIN_MS, 121, 0);
    char *got = query(db, m, 1, INT64_MIN, INT64_MAX, 1);
    assert_string_equal(got, want);
    free(got);
    free(want);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

static void count_fsync(double seconds, void *ctx)
{
    if (seconds >= 0) (*(int *)ctx)++;
}

static void test_fsync_always_and_observer(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_ALWAYS;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    int calls = 0;
    tsdb_set_fsync_observer(db, count_fsync, &calls);
    tsdb_stats_t before, after;
    tsdb_get_stats(db, &before);
    for (int i = 0; i < 3; i++) append_range(db, "__name__=f", i * 1000, 1, 1, i);
    tsdb_get_stats(db, &after);
    /* every acknowledged batch was fsynced, and every fsync was observed */
    assert_true(after.wal_fsyncs - before.wal_fsyncs >= 3);
    assert_int_equal(calls, (int)(after.wal_fsyncs - before.wal_fsyncs));
    assert_true(after.wal_fsync_seconds_total >= before.wal_fsync_seconds_total);
    assert_int_equal(after.samples_appended, 3);
    tsdb_set_fsync_observer(db, NULL, NULL);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

/* ---- misc --------------------------------------------------------------------------------- */

static void test_lock_and_stats(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_db(dir, 0, 0, 0);
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    pid_t pid = fork();
    if (pid == 0) {
        /* flock is per open file description: another process must fail */
        tsdb_t *db2 = NULL;
        strata_log_set_level(STRATA_LOG_ERROR + 1);
        _exit(tsdb_open(&o, &db2) == STRATA_ELOCKED ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    assert_int_equal(st.series, 0);
    assert_int_equal(st.blocks, 0);
    assert_true(st.min_time == INT64_MAX && st.max_time == INT64_MIN);
    assert_int_equal(st.replaying, 0);
    append_range(db, "__name__=a,x=1", 1000, 1000, 3, 0);
    append_range(db, "__name__=a,x=2", 2000, 1000, 2, 0);
    assert_ok(tsdb_sync(db));
    tsdb_get_stats(db, &st);
    assert_int_equal(st.series, 2);
    assert_int_equal(st.head_series, 2);
    assert_int_equal(st.head_samples, 5);
    assert_int_equal(st.min_time, 1000);
    assert_int_equal(st.max_time, 3000);
    assert_true(st.head_bytes > 0);
    assert_true(st.wal_bytes > 0);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_and_matchers),
        cmocka_unit_test(test_head_block_merge),
        cmocka_unit_test(test_block_range_edges),
        cmocka_unit_test(test_ooo_duplicates_conflicts),
        cmocka_unit_test(test_many_samples_seal_and_ooo),
        cmocka_unit_test(test_stale_and_nan_bit_exact),
        cmocka_unit_test(test_rollups),
        cmocka_unit_test(test_rollup_hold_fields),
        cmocka_unit_test(test_block_old_versions_readable),
        cmocka_unit_test(test_compaction_overlap_and_adjacent),
        cmocka_unit_test(test_compaction_levels),
        cmocka_unit_test(test_stream_read_bypasses_cache),
        cmocka_unit_test(test_retention_time_and_size),
        cmocka_unit_test(test_dropped_block_outlives_reader),
        cmocka_unit_test(test_corrupt_chunks),
        cmocka_unit_test(test_corrupt_index_and_meta),
        cmocka_unit_test(test_crash_recovery),
        cmocka_unit_test(test_lock_and_stats),
        cmocka_unit_test(test_due_cut_in_compact),
        cmocka_unit_test(test_backfill_cut_one_pass),
        cmocka_unit_test(test_regex_complexity_guard),
        cmocka_unit_test(test_selective_matchers_long_postings),
        cmocka_unit_test(test_concurrent_append_select_cut),
        cmocka_unit_test(test_background_cut),
        cmocka_unit_test(test_fsync_always_and_observer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
