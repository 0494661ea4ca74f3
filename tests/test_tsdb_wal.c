/*
 * test_tsdb_wal.c: the write-ahead log (tsdb/wal.c) and CRC32C (tsdb/crc32c.c).
 *
 * Replayed records are rendered into one text log ("S ref name=value,..." and
 * "P ref t vbits" lines, floats as raw bits) and compared byte for byte with
 * the log the inputs imply, so any loss, duplicate, reordering or bit change
 * fails.  Damage is made by editing segment files directly.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_helpers.h"
#include "format.h"
#include "wal.h"
#include "strata_log.h"
#include "tsdb.h"

/* ---- a growing text log of replayed records ----------------------------- */

typedef struct textlog {
    char *s;
    size_t len, cap;
} textlog_t;

static void tl_printf(textlog_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tl_printf(textlog_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (t->s && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
        if (t->len == 0) t->s[0] = 0;
    }
}

static void tl_reset(textlog_t *t)
{
    t->len = 0;
    if (t->s) t->s[0] = 0;
}
static void tl_free(textlog_t *t)
{
    free(t->s);
    memset(t, 0, sizeof *t);
}
static const char *tl_str(textlog_t *t) { return t->s ? t->s : ""; }

static void render_series(textlog_t *t, uint64_t ref, const tsdb_label_t *l, size_t n)
{
    tl_printf(t, "S %" PRIu64, ref);
    for (size_t i = 0; i < n; i++) tl_printf(t, "%s%s=%s", i ? "," : " ", l[i].name, l[i].value);
    tl_printf(t, "\n");
}

static void render_samples(textlog_t *t, const tsdb_wal_sample_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tl_printf(t, "P %" PRIu64 " %" PRId64 " %016" PRIx64 "\n", s[i].ref, s[i].t,
                  test_double_bits(s[i].v));
}

static int rec_series(void *ctx, uint64_t ref, const tsdb_label_t *l, size_t n)
{
    render_series(ctx, ref, l, n);
    return 0;
}

static int rec_samples(void *ctx, const tsdb_wal_sample_t *s, size_t n)
{
    render_samples(ctx, s, n);
    return 0;
}

static tsdb_wal_replay_ops_t rec_ops(textlog_t *t)
{
    tsdb_wal_replay_ops_t ops = { rec_series, rec_samples, t, 0 };
    return ops;
}

/* ---- helpers ------------------------------------------------------------ */

static tsdb_wal_options_t opts_of(enum tsdb_fsync_policy p, uint64_t seg_bytes)
{
    tsdb_wal_options_t o;
    memset(&o, 0, sizeof o);
    o.fsync = p;
    o.fsync_interval_ms = 10;
    o.segment_bytes = seg_bytes;
    return o;
}

static char *path_in(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    char *p = malloc(n);
    snprintf(p, n, "%s/wal/%s", dir, name);
    return p;
}

static long file_size(const char *dir, const char *name)
{
    char *p = path_in(dir, name);
    struct stat sb;
    long r = stat(p, &sb) == 0 ? (long)sb.st_size : -1;
    free(p);
    return r;
}

static uint8_t *read_file(const char *dir, const char *name, size_t *len)
{
    char *p = path_in(dir, name);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    free(p);
    return buf;
}

static void write_file(const char *dir, const char *name, const uint8_t *buf, size_t len)
{
    char *p = path_in(dir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(p);
}

/* Number of plain segment files in <dir>/wal. */
static int count_segments(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/wal", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strlen(de->d_name) == 8 && strspn(de->d_name, "0123456789") == 8) n++;
    closedir(d);
    return n;
}

/* Opens dir, replays into log, closes. */
static tsdb_wal_replay_stats_t replay_dir(const char *dir, textlog_t *log)
{
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_replay_ops_t ops = rec_ops(log);
    tsdb_wal_replay_stats_t st;
    tsdb_wal_t *w = NULL;
    tl_reset(log);
    assert_ok(tsdb_wal_open(dir, &o, &ops, &st, &w));
    tsdb_wal_close(w);
    return st;
}

/* A batch with one samples record: n samples of series ref starting at t0. */
static void batch_samples(tsdb_wal_batch_t *b, textlog_t *expect, uint64_t ref, int64_t t0, size_t n)
{
    tsdb_wal_sample_t s[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        s[i].ref = ref;
        s[i].t = t0 + (int64_t)i * 15000;
        s[i].v = (double)(t0 % 1000) + (double)i * 0.25;
    }
    assert_ok(tsdb_wal_batch_add_samples(b, s, n));
    if (expect) render_samples(expect, s, n);
}

/* ---- CRC32C ------------------------------------------------------------- */

static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(tsdb_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(tsdb_crc32c(0, "", 0), 0);
    uint8_t z[32] = { 0 }, ff[32];
    memset(ff, 0xff, sizeof ff);
    assert_int_equal(tsdb_crc32c(0, z, 32), 0x8A9136AAu); /* RFC 3720 B.4 */
    assert_int_equal(tsdb_crc32c(0, ff, 32), 0x62A8AB43u);
    uint8_t buf[300];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
    for (size_t off = 0; off < 8; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 13)
            assert_int_equal(tsdb_crc32c(0, buf + off, n), crc_ref(0, buf + off, n));
    /* continuation */
    assert_int_equal(tsdb_crc32c(tsdb_crc32c(0, buf, 100), buf + 100, 200), tsdb_crc32c(0, buf, 300));
}

/* ---- round trip --------------------------------------------------------- */

static void test_round_trip_special_values(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t expect = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_ALWAYS, 0);
    tsdb_wal_replay_stats_t st;
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, &st, &w));
    assert_int_equal(st.records, 0);
    assert_int_equal(count_segments(dir), 1);

    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    tsdb_label_t l1[] = {
        { "__name__", "DCGM_FI_DEV_GPU_UTIL" }, { "gpu", "0" }, { "node", "nœud-ü" }, { "x", "" }
    };
    assert_ok(tsdb_wal_batch_add_series(&b, 0, l1, 4));
    render_series(&expect, 0, l1, 4);
    assert_ok(tsdb_wal_batch_add_series(&b, UINT64_MAX, l1, 1));
    render_series(&expect, UINT64_MAX, l1, 1);
    assert_ok(tsdb_wal_batch_add_series(&b, 77, NULL, 0));
    render_series(&expect, 77, NULL, 0);

    const uint64_t bits[] = {
        TSDB_STALE_NAN_BITS,
        UINT64_C(0x7ff8000000000001),
        UINT64_C(0xfff8000000000000),
        UINT64_C(0x7ff0000000000000) /* +Inf */,
        UINT64_C(0xfff0000000000000) /* -Inf */,
        UINT64_C(0x8000000000000000) /* -0.0 */,
        1 /* smallest denormal */,
        UINT64_C(0x7fefffffffffffff) /* DBL_MAX */,
        UINT64_C(0x4059000000000000) /* 100 */,
    };
    const int64_t ts[] = { INT64_MIN, INT64_MAX, -1, 0, 1732700000000, INT64_MIN, 5, 4, 1732700015000 };
    const uint64_t refs[] = { 0, UINT64_MAX, 1, UINT64_MAX, 0, 12345678901234, 3, 2, 0 };
    tsdb_wal_sample_t s[9];
    for (int i = 0; i < 9; i++) {
        s[i].ref = refs[i];
        s[i].t = ts[i];
        s[i].v = test_bits_double(bits[i]);
    }
    assert_ok(tsdb_wal_batch_add_samples(&b, s, 9));
    render_samples(&expect, s, 9);
    assert_ok(tsdb_wal_batch_add_samples(&b, s, 0)); /* adds nothing */
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);

    st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&expect));
    assert_int_equal(st.records, 4);
    assert_int_equal(st.series, 3);
    assert_int_equal(st.samples, 9);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(file_size(dir, "00000001"), (long)(TSDB_WAL_HEADER_SIZE + b.len));

    tsdb_wal_batch_free(&b);
    tl_free(&expect);
    tl_free(&got);
    test_tmpdir_free(dir);
}

static void test_batch_rejects_bad_input(void **state)
{
    (void)state;
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    tsdb_label_t bad[] = { { "a", NULL } };
    assert_err(tsdb_wal_batch_add_series(&b, 1, NULL, 2), STRATA_EINVAL);
    assert_err(tsdb_wal_batch_add_series(&b, 1, bad, 1), STRATA_EINVAL);
    assert_err(tsdb_wal_batch_add_samples(&b, NULL, 3), STRATA_EINVAL);
    assert_int_equal(b.len, 0);
    tsdb_wal_batch_free(&b);
}

/* ---- segments and reopening -------------------------------------------- */

static void test_many_segments(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t expect = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 256);
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    size_t blen = 0;
    for (int i = 0; i < 200; i++) {
        tsdb_wal_batch_reset(&b);
        batch_samples(&b, &expect, (uint64_t)i % 7, 10000000 + i * 60000, 3);
        if (i == 0) blen = b.len;
        assert_int_equal(b.len, blen); /* same shape each time: sizes are predictable */
        assert_ok(tsdb_wal_append(w, &b));
    }
    tsdb_wal_close(w);
    size_t per_seg = (256 - TSDB_WAL_HEADER_SIZE) / blen;
    assert_true(per_seg >= 1);
    assert_int_equal(count_segments(dir), (int)((200 + per_seg - 1) / per_seg));
    assert_int_equal(file_size(dir, "00000001"), (long)(TSDB_WAL_HEADER_SIZE + per_seg * blen));

    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&expect));
    assert_int_equal(st.records, 200);
    assert_int_equal(st.samples, 600);
    assert_int_equal(st.corrupt_records, 0);
    tsdb_wal_batch_free(&b);
    tl_free(&expect);
    tl_free(&got);
    test_tmpdir_free(dir);
}

static void test_reopen_and_append_continues(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t expect = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_ALWAYS, 0);
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    for (int round = 0; round < 3; round++) {
        tsdb_wal_t *w;
        tsdb_wal_replay_ops_t ops = rec_ops(&got);
        tsdb_wal_replay_stats_t st;
        tl_reset(&got);
        assert_ok(tsdb_wal_open(dir, &o, &ops, &st, &w));
        assert_string_equal(tl_str(&got), tl_str(&expect));
        assert_int_equal(st.records, (uint64_t)round * 2);
        tsdb_wal_batch_reset(&b);
        tsdb_label_t l[] = { { "__name__", "up" }, { "round", round == 0 ? "0" : round == 1 ? "1" : "2" } };
        assert_ok(tsdb_wal_batch_add_series(&b, (uint64_t)round + 1, l, 2));
        render_series(&expect, (uint64_t)round + 1, l, 2);
        batch_samples(&b, &expect, (uint64_t)round + 1, 5000 * round, 4);
        assert_ok(tsdb_wal_append(w, &b));
        tsdb_wal_close(w);
    }
    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&expect));
    assert_int_equal(st.records, 6);
    assert_int_equal(count_segments(dir), 1); /* writing resumed at the end of segment 1 */
    tsdb_wal_batch_free(&b);
    tl_free(&expect);
    tl_free(&got);
    test_tmpdir_free(dir);
}

/* ---- damage ------------------------------------------------------------- */

static void test_torn_tail_every_offset(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t prefix = { 0 }, all = { 0 }, got = { 0 }, tail = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    tsdb_label_t l[] = { { "__name__", "gpu_temp" }, { "gpu", "3" } };
    assert_ok(tsdb_wal_batch_add_series(&b, 9, l, 2));
    render_series(&prefix, 9, l, 2);
    assert_ok(tsdb_wal_append(w, &b));
    for (int i = 0; i < 3; i++) {
        tsdb_wal_batch_reset(&b);
        batch_samples(&b, &prefix, 9, 100000 * i, 2);
        assert_ok(tsdb_wal_append(w, &b));
    }
    tsdb_wal_batch_reset(&b);
    batch_samples(&b, NULL, 9, 999000, 5); /* the last record, to be torn */
    size_t last_len = b.len;
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);

    size_t flen;
    uint8_t *img = read_file(dir, "00000001", &flen);
    size_t start = flen - last_len;

    tsdb_wal_batch_t extra;
    tsdb_wal_batch_init(&extra);
    batch_samples(&extra, &tail, 10, 2000000, 2);
    tl_printf(&all, "%s%s", tl_str(&prefix), tl_str(&tail));

    for (size_t cut = start + 1; cut < flen; cut++) {
        write_file(dir, "00000001", img, cut);
        tsdb_wal_replay_ops_t ops = rec_ops(&got);
        tsdb_wal_replay_stats_t st;
        tl_reset(&got);
        assert_ok(tsdb_wal_open(dir, &o, &ops, &st, &w));
        assert_string_equal(tl_str(&got), tl_str(&prefix));
        assert_int_equal(st.records, 4);
        assert_int_equal(st.corrupt_records, 1);
        assert_int_equal(st.truncated_bytes, cut - start);
        assert_int_equal(file_size(dir, "00000001"), (long)start);
        assert_ok(tsdb_wal_append(w, &extra));
        tsdb_wal_close(w);

        st = replay_dir(dir, &got);
        assert_string_equal(tl_str(&got), tl_str(&all));
        assert_int_equal(st.corrupt_records, 0);
        assert_int_equal(st.records, 5);
    }
    free(img);
    tsdb_wal_batch_free(&b);
    tsdb_wal_batch_free(&extra);
    tl_free(&prefix);
    tl_free(&all);
    tl_free(&got);
    tl_free(&tail);
    test_tmpdir_free(dir);
}

/* A flipped bit in record B of A B C | D: B is skipped, C and D replay, the
 * files stay as they are (B is copied to corrupt/). */
static void test_flipped_bit_skips_record(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t first = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    size_t len[3];
    for (int i = 0; i < 3; i++) { /* records A, B, C in segment 1 */
        tsdb_wal_batch_reset(&b);
        batch_samples(&b, i != 1 ? &first : NULL, (uint64_t)i, 1000 * i, 4);
        len[i] = b.len;
        assert_ok(tsdb_wal_append(w, &b));
    }
    uint64_t seg;
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, 2);
    tsdb_wal_batch_reset(&b);
    batch_samples(&b, &first, 5, 7000, 4); /* record D in segment 2 */
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);
    long seg2 = file_size(dir, "00000002");
    assert_int_equal(seg2, (long)(TSDB_WAL_HEADER_SIZE + b.len));

    size_t flen;
    uint8_t *img = read_file(dir, "00000001", &flen);
    size_t b_off = TSDB_WAL_HEADER_SIZE + len[0];
    img[b_off + len[1] / 2] ^= 0x10;
    write_file(dir, "00000001", img, flen);

    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&first));
    assert_int_equal(st.records, 3);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.skipped_bytes, len[1]);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(file_size(dir, "00000001"), (long)flen);
    assert_int_equal(file_size(dir, "00000002"), seg2);
    /* the same on a second open: the damage is still there, and still skipped */
    st = replay_dir(dir, &got);
    assert_int_equal(st.corrupt_records, 1);
    assert_string_equal(tl_str(&got), tl_str(&first));
    free(img);
    tsdb_wal_batch_free(&b);
    tl_free(&first);
    tl_free(&got);
    test_tmpdir_free(dir);
}

static void test_garbled_header_and_gap(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t expect = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    batch_samples(&b, &expect, 1, 0, 3);
    char *seg1 = strdup(tl_str(&expect)); /* segment 1, then 3: the same records again */
    tl_printf(&expect, "%s", seg1);
    free(seg1);
    assert_ok(tsdb_wal_append(w, &b));
    uint64_t seg;
    assert_ok(tsdb_wal_rotate(w, &seg)); /* 2 */
    assert_ok(tsdb_wal_append(w, &b));
    assert_ok(tsdb_wal_rotate(w, &seg)); /* 3 */
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);
    long s3 = file_size(dir, "00000003");

    /* segment 2's magic damaged, its records intact: only the 8 header
     * bytes are damage, and all three segments replay */
    size_t flen;
    uint8_t *img = read_file(dir, "00000002", &flen);
    img[0] ^= 0xff;
    write_file(dir, "00000002", img, flen);
    textlog_t all3 = { 0 };
    batch_samples(&b, &all3, 1, 0, 3);
    tl_printf(&all3, "%s", tl_str(&expect));
    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&all3));
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.skipped_bytes, TSDB_WAL_HEADER_SIZE);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(file_size(dir, "00000002"), (long)flen);

    /* its first record damaged too: nothing says it is a WAL, so 2 is
     * skipped whole and kept, 3 replays */
    img[TSDB_WAL_HEADER_SIZE + TSDB_WAL_RECORD_HEADER_SIZE] ^= 0xff;
    write_file(dir, "00000002", img, flen);
    st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&expect));
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.skipped_bytes, flen);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(file_size(dir, "00000002"), (long)flen);
    assert_int_equal(file_size(dir, "00000003"), s3);

    /* segment 2 mended; the last segment's header damaged: its records
     * replay and nothing is cut */
    img[0] ^= 0xff;
    img[TSDB_WAL_HEADER_SIZE + TSDB_WAL_RECORD_HEADER_SIZE] ^= 0xff;
    write_file(dir, "00000002", img, flen);
    uint8_t *img3 = read_file(dir, "00000003", &flen);
    img3[1] ^= 0xff;
    write_file(dir, "00000003", img3, flen);
    st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&all3));
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(file_size(dir, "00000003"), s3);
    /* a flipped version byte is a damaged header too, not a newer log */
    img3[1] ^= 0xff;
    img3[4] ^= 0x02;
    write_file(dir, "00000003", img3, flen);
    st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&all3));
    assert_int_equal(st.corrupt_records, 1);
    img3[4] ^= 0x02;
    tl_free(&all3);

    /* header and first record damaged: cut to nothing, header rewritten */
    img3[1] ^= 0xff;
    img3[TSDB_WAL_HEADER_SIZE + TSDB_WAL_RECORD_HEADER_SIZE] ^= 0xff;
    write_file(dir, "00000003", img3, flen);
    st = replay_dir(dir, &got);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.truncated_bytes, flen);
    assert_int_equal(file_size(dir, "00000003"), TSDB_WAL_HEADER_SIZE);
    img3[1] ^= 0xff;
    img3[TSDB_WAL_HEADER_SIZE + TSDB_WAL_RECORD_HEADER_SIZE] ^= 0xff;

    /* a missing segment in the middle: 4 exists, 3 does not; 4 still replays */
    char *p3 = path_in(dir, "00000003");
    assert_int_equal(unlink(p3), 0);
    free(p3);
    write_file(dir, "00000004", img3, flen);
    st = replay_dir(dir, &got);
    assert_int_equal(st.corrupt_records, 1); /* the gap (segment 2 was mended above) */
    assert_int_equal(file_size(dir, "00000004"), (long)flen);
    textlog_t three = { 0 };
    batch_samples(&b, &three, 1, 0, 3); /* segments 1, 2 and 4 */
    tl_printf(&three, "%s", tl_str(&expect));
    assert_string_equal(tl_str(&got), tl_str(&three));
    tl_free(&three);
    free(img3);

    free(img);
    tsdb_wal_batch_free(&b);
    tl_free(&expect);
    tl_free(&got);
    test_tmpdir_free(dir);
}

static void test_replay_buffer_edge_cases(void **state)
{
    (void)state;
    uint8_t buf[64] = { 0 };
    size_t valid = 99;
    const char *why = "x";
    tsdb_wal_replay_stats_t st = { 0 };
    /* empty image: a clean empty segment */
    assert_ok(tsdb_wal_replay_buffer(buf, 0, NULL, &st, &valid, &why));
    assert_int_equal(valid, 0);
    assert_null(why);
    assert_int_equal(st.corrupt_records, 0);

    /* a valid header from another version is refused, not cut */
    buf[0] = 'S';
    buf[1] = 'W';
    buf[2] = 'A';
    buf[3] = 'L';
    buf[4] = TSDB_WAL_VERSION + 1;
    assert_err(tsdb_wal_replay_buffer(buf, 8, NULL, &st, &valid, &why), STRATA_EVERSION);

    /* a record whose CRC matches but whose type is unknown is corrupt */
    buf[4] = TSDB_WAL_VERSION;
    uint8_t *r = buf + 8;
    r[0] = 2;
    r[1] = r[2] = r[3] = 0; /* len 2 */
    r[8] = 9;
    r[9] = 0; /* type 9 */
    uint32_t crc = tsdb_crc32c(tsdb_crc32c(0, r, 4), r + 8, 2);
    r[4] = (uint8_t)crc;
    r[5] = (uint8_t)(crc >> 8);
    r[6] = (uint8_t)(crc >> 16);
    r[7] = (uint8_t)(crc >> 24);
    memset(&st, 0, sizeof st);
    assert_ok(tsdb_wal_replay_buffer(buf, 18, NULL, &st, &valid, &why));
    assert_int_equal(valid, 8);
    assert_string_equal(why, "unknown record type");
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.skipped_bytes, 10);

    /* zero-filled tail after a good header: bad length */
    memset(r, 0, 20);
    memset(&st, 0, sizeof st);
    assert_ok(tsdb_wal_replay_buffer(buf, 28, NULL, &st, &valid, &why));
    assert_int_equal(valid, 8);
    assert_string_equal(why, "bad record length");
}

static int fail_series(void *ctx, uint64_t ref, const tsdb_label_t *l, size_t n)
{
    (void)ctx;
    (void)ref;
    (void)l;
    (void)n;
    return STRATA_ENOMEM;
}

static void test_callback_error_fails_open(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_label_t l[] = { { "__name__", "up" } };
    assert_ok(tsdb_wal_batch_add_series(&b, 1, l, 1));
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);
    tsdb_wal_replay_ops_t ops = { fail_series, NULL, NULL, 0 };
    assert_err(tsdb_wal_open(dir, &o, &ops, NULL, &w), STRATA_ENOMEM);
    assert_null(w);
    /* the log was not touched */
    assert_int_equal(file_size(dir, "00000001"), (long)(TSDB_WAL_HEADER_SIZE + b.len));
    tsdb_wal_batch_free(&b);
    test_tmpdir_free(dir);
}

/* ---- checkpoint --------------------------------------------------------- */

static void test_checkpoint(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t ck = { 0 }, after = { 0 }, got = { 0 }, want = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b, cp;
    tsdb_wal_batch_init(&b);
    tsdb_wal_batch_init(&cp);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_label_t l1[] = { { "__name__", "a" } }, l2[] = { { "__name__", "b" } };
    assert_ok(tsdb_wal_batch_add_series(&b, 1, l1, 1));
    batch_samples(&b, NULL, 1, 0, 5);
    assert_ok(tsdb_wal_append(w, &b));

    uint64_t seg;
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, 2);
    /* appends after the rotation, before the checkpoint is written */
    tsdb_wal_batch_reset(&b);
    assert_ok(tsdb_wal_batch_add_series(&b, 2, l2, 1));
    render_series(&after, 2, l2, 1);
    batch_samples(&b, &after, 2, 50, 2);
    assert_ok(tsdb_wal_append(w, &b));

    /* the head's state as of the rotation: series 1 only, its samples condensed */
    assert_ok(tsdb_wal_batch_add_series(&cp, 1, l1, 1));
    render_series(&ck, 1, l1, 1);
    batch_samples(&cp, &ck, 1, 0, 5);
    assert_err(tsdb_wal_checkpoint(w, 3, &cp), STRATA_EINVAL); /* not started yet */
    assert_ok(tsdb_wal_checkpoint(w, seg, &cp));
    /* the first checkpoint's source segment stays until the next checkpoint */
    assert_true(file_size(dir, "00000001") > TSDB_WAL_HEADER_SIZE);
    assert_int_equal(file_size(dir, "checkpoint.00000002"), (long)(TSDB_WAL_HEADER_SIZE + cp.len));

    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, 3);
    tsdb_wal_batch_reset(&b);
    batch_samples(&b, &after, 2, 90000, 3);
    assert_ok(tsdb_wal_append(w, &b));
    assert_int_equal(tsdb_wal_disk_bytes(w),
                     (uint64_t)(file_size(dir, "checkpoint.00000002") + file_size(dir, "00000001") +
                                file_size(dir, "00000002") + file_size(dir, "00000003")));
    tsdb_wal_close(w);

    tl_printf(&want, "%s%s", tl_str(&ck), tl_str(&after));
    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&want));
    assert_int_equal(st.records, 5);
    assert_int_equal(st.corrupt_records, 0);

    /* crash leftovers: older checkpoints, an old segment and a half-written
     * temp checkpoint.  Open replays the same, keeps the previous checkpoint
     * (1) and the segments since it, and removes the rest. */
    size_t n;
    uint8_t *img = read_file(dir, "checkpoint.00000002", &n);
    write_file(dir, "checkpoint.00000000", img, n);
    write_file(dir, "checkpoint.00000001", img, n);
    write_file(dir, "00000000", img, n);
    write_file(dir, "checkpoint.00000003.tmp", img, n / 2);
    st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&want));
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(file_size(dir, "checkpoint.00000000"), -1);
    assert_int_equal(file_size(dir, "00000000"), -1);
    assert_int_equal(file_size(dir, "checkpoint.00000001"), (long)n);
    assert_true(file_size(dir, "00000001") > 0);
    assert_int_equal(file_size(dir, "checkpoint.00000003.tmp"), -1);

    free(img);
    tsdb_wal_batch_free(&b);
    tsdb_wal_batch_free(&cp);
    tl_free(&ck);
    tl_free(&after);
    tl_free(&got);
    tl_free(&want);
    test_tmpdir_free(dir);
}

/* An empty checkpoint (the head held nothing at the cut) defines no series,
 * so no fallback is kept for it: the files before it go at once, and at open
 * when a crash left them behind (docs/storage.md, "Checkpoints"). */
static void test_empty_checkpoint_keeps_no_fallback(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t got = { 0 }, want = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b, cp;
    tsdb_wal_batch_init(&b);
    tsdb_wal_batch_init(&cp);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_label_t l1[] = { { "__name__", "a" } }, l2[] = { { "__name__", "b" } };
    assert_ok(tsdb_wal_batch_add_series(&b, 1, l1, 1));
    batch_samples(&b, NULL, 1, 0, 5);
    assert_ok(tsdb_wal_append(w, &b));
    uint64_t seg;

    /* a first, non-empty checkpoint keeps its sources (segment 1) */
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, 2);
    assert_ok(tsdb_wal_batch_add_series(&cp, 1, l1, 1));
    assert_ok(tsdb_wal_checkpoint(w, seg, &cp));
    assert_int_equal(count_segments(dir), 2);
    tsdb_wal_batch_reset(&b);
    batch_samples(&b, NULL, 1, 90000, 4);
    assert_ok(tsdb_wal_append(w, &b));

    /* everything went into blocks: the next checkpoint is empty and leaves
     * exactly its own header and the new segment's */
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, 3);
    tsdb_wal_batch_reset(&cp);
    assert_ok(tsdb_wal_checkpoint(w, seg, &cp));
    assert_int_equal(count_segments(dir), 1);
    assert_int_equal(file_size(dir, "00000001"), -1);
    assert_int_equal(file_size(dir, "00000002"), -1);
    assert_int_equal(file_size(dir, "checkpoint.00000002"), -1);
    assert_int_equal(file_size(dir, "checkpoint.00000003"), TSDB_WAL_HEADER_SIZE);
    assert_int_equal(file_size(dir, "00000003"), TSDB_WAL_HEADER_SIZE);
    assert_int_equal(tsdb_wal_disk_bytes(w), 2 * TSDB_WAL_HEADER_SIZE);

    /* appends go on in segment 3; a later non-empty checkpoint keeps the
     * empty one and segment 3 as its fallback, as usual */
    tsdb_wal_batch_reset(&b);
    assert_ok(tsdb_wal_batch_add_series(&b, 2, l2, 1));
    render_series(&want, 2, l2, 1);
    batch_samples(&b, &want, 2, 200000, 3);
    assert_ok(tsdb_wal_append(w, &b));
    size_t seg3_len = TSDB_WAL_HEADER_SIZE + b.len;
    tsdb_wal_close(w);
    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&want));
    assert_int_equal(st.records, 2);
    assert_int_equal(st.corrupt_records, 0);

    /* a crash between the empty checkpoint's rename and its deletions: open
     * replays the same and removes the leftovers (an older checkpoint and
     * segments before 3), not the checkpoint it replays from */
    size_t n;
    uint8_t *img = read_file(dir, "00000003", &n);
    assert_int_equal(n, seg3_len);
    write_file(dir, "00000002", img, n);
    write_file(dir, "checkpoint.00000002", img, TSDB_WAL_HEADER_SIZE);
    st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&want));
    assert_int_equal(st.records, 2);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(file_size(dir, "00000002"), -1);
    assert_int_equal(file_size(dir, "checkpoint.00000002"), -1);
    assert_int_equal(file_size(dir, "checkpoint.00000003"), TSDB_WAL_HEADER_SIZE);
    assert_int_equal(file_size(dir, "00000003"), (long)seg3_len);

    /* a non-empty newest checkpoint still keeps the previous one (the
     * fallback) at open */
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, 4);
    tsdb_wal_batch_reset(&cp);
    assert_ok(tsdb_wal_batch_add_series(&cp, 2, l2, 1));
    assert_ok(tsdb_wal_checkpoint(w, seg, &cp));
    tsdb_wal_close(w);
    st = replay_dir(dir, &got);
    assert_int_equal(st.corrupt_records, 0);
    assert_int_equal(file_size(dir, "checkpoint.00000003"), TSDB_WAL_HEADER_SIZE);
    assert_int_equal(file_size(dir, "00000003"), (long)seg3_len);
    assert_int_equal(file_size(dir, "checkpoint.00000004"), (long)(TSDB_WAL_HEADER_SIZE + cp.len));

    free(img);
    tsdb_wal_batch_free(&b);
    tsdb_wal_batch_free(&cp);
    tl_free(&got);
    tl_free(&want);
    test_tmpdir_free(dir);
}

/* ---- concurrency and fsync policies ------------------------------------ */

#define CONC_THREADS 4
#define CONC_BATCHES 150

typedef struct conc_arg {
    tsdb_wal_t *w;
    int id;
    int rc;
} conc_arg_t;

static void *conc_writer(void *p)
{
    conc_arg_t *a = p;
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    for (int i = 0; i < CONC_BATCHES && !a->rc; i++) {
        tsdb_wal_batch_reset(&b);
        tsdb_wal_sample_t s[3];
        for (int k = 0; k < 3; k++) {
            s[k].ref = (uint64_t)a->id;
            s[k].t = i;
            s[k].v = (double)(a->id * 100000 + i * 10 + k);
        }
        if ((a->rc = tsdb_wal_batch_add_samples(&b, s, 3))) break;
        a->rc = tsdb_wal_append(a->w, &b);
    }
    tsdb_wal_batch_free(&b);
    return NULL;
}

typedef struct fsync_count {
    pthread_mutex_t mu;
    int n;
} fsync_count_t;

static void count_fsync(double secs, void *ctx)
{
    fsync_count_t *c = ctx;
    (void)secs;
    pthread_mutex_lock(&c->mu);
    c->n++;
    pthread_mutex_unlock(&c->mu);
}

typedef struct conc_seen {
    int batches[CONC_THREADS][CONC_BATCHES];
    int next[CONC_THREADS];
    int bad;
} conc_seen_t;

static int conc_check(void *ctx, const tsdb_wal_sample_t *s, size_t n)
{
    conc_seen_t *c = ctx;
    if (n != 3 || s[0].ref >= CONC_THREADS) {
        c->bad++;
        return 0;
    }
    int id = (int)s[0].ref, i = (int)s[0].t;
    for (int k = 0; k < 3; k++)
        if (s[k].ref != (uint64_t)id || s[k].t != i || s[k].v != (double)(id * 100000 + i * 10 + k)) c->bad++;
    if (i < 0 || i >= CONC_BATCHES) {
        c->bad++;
        return 0;
    }
    if (i != c->next[id]) c->bad++; /* one thread's batches stay in its order */
    c->next[id] = i + 1;
    c->batches[id][i]++;
    return 0;
}

static void test_concurrent_always(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    fsync_count_t fc = { PTHREAD_MUTEX_INITIALIZER, 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_ALWAYS, 4096);
    o.fsync_observer = count_fsync;
    o.fsync_observer_ctx = &fc;
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    pthread_t th[CONC_THREADS];
    conc_arg_t args[CONC_THREADS];
    for (int i = 0; i < CONC_THREADS; i++) {
        args[i] = (conc_arg_t){ w, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, conc_writer, &args[i]), 0);
    }
    for (int i = 0; i < CONC_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_ok(args[i].rc);
    }
    tsdb_wal_close(w);
    /* every append waited for an fsync; sharing means at most one per batch */
    assert_true(fc.n >= 1);
    assert_true(fc.n <= CONC_THREADS * CONC_BATCHES + count_segments(dir));
    assert_true(count_segments(dir) > 1);

    conc_seen_t *seen = calloc(1, sizeof *seen);
    tsdb_wal_replay_ops_t ops = { NULL, conc_check, seen, 0 };
    tsdb_wal_replay_stats_t st;
    o.fsync_observer = NULL;
    assert_ok(tsdb_wal_open(dir, &o, &ops, &st, &w));
    tsdb_wal_close(w);
    assert_int_equal(seen->bad, 0);
    assert_int_equal(st.records, CONC_THREADS * CONC_BATCHES);
    assert_int_equal(st.corrupt_records, 0);
    for (int t = 0; t < CONC_THREADS; t++)
        for (int i = 0; i < CONC_BATCHES; i++) assert_int_equal(seen->batches[t][i], 1);
    free(seen);
    test_tmpdir_free(dir);
}

static void test_interval_policy_fsyncs(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    fsync_count_t fc = { PTHREAD_MUTEX_INITIALIZER, 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_INTERVAL, 0);
    o.fsync_interval_ms = 5;
    o.fsync_observer = count_fsync;
    o.fsync_observer_ctx = &fc;
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    batch_samples(&b, NULL, 1, 0, 2);
    assert_ok(tsdb_wal_append(w, &b));
    /* Wait for the background fsync; the bound only guards against a hang. */
    int n = 0;
    for (int i = 0; i < 2000 && n == 0; i++) {
        usleep(5000);
        pthread_mutex_lock(&fc.mu);
        n = fc.n;
        pthread_mutex_unlock(&fc.mu);
    }
    assert_true(n >= 1);
    /* nothing unsynced left: close adds no fsync */
    tsdb_wal_close(w);
    assert_int_equal(fc.n, n);
    tsdb_wal_batch_free(&b);
    test_tmpdir_free(dir);
}

static void test_never_policy_fsyncs_only_on_close_and_rotate(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    fsync_count_t fc = { PTHREAD_MUTEX_INITIALIZER, 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    o.fsync_observer = count_fsync;
    o.fsync_observer_ctx = &fc;
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    batch_samples(&b, NULL, 1, 0, 2);
    for (int i = 0; i < 10; i++) assert_ok(tsdb_wal_append(w, &b));
    assert_int_equal(fc.n, 0);
    uint64_t seg;
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(fc.n, 1);
    assert_ok(tsdb_wal_append(w, &b));
    assert_ok(tsdb_wal_sync(w));
    assert_int_equal(fc.n, 2);
    assert_ok(tsdb_wal_sync(w)); /* nothing new: no fsync */
    assert_int_equal(fc.n, 2);
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);
    assert_int_equal(fc.n, 3);
    tsdb_wal_batch_free(&b);
    test_tmpdir_free(dir);
}

/* A write that fails part-way (file size limit: EFBIG) is reported and cut
 * back off the file, and the log keeps working once the limit is lifted. */
static void test_failed_write_is_not_acknowledged(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t expect = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_ALWAYS, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b, big;
    tsdb_wal_batch_init(&b);
    tsdb_wal_batch_init(&big);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    batch_samples(&b, &expect, 1, 0, 4);
    assert_ok(tsdb_wal_append(w, &b));
    long before = file_size(dir, "00000001");
    batch_samples(&big, NULL, 2, 0, 60);

    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)before + big.len / 2; /* half the batch fits */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc = tsdb_wal_append(w, &big);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, STRATA_EIO);
    assert_int_equal(file_size(dir, "00000001"), before);

    tsdb_wal_batch_reset(&b);
    batch_samples(&b, &expect, 3, 0, 2);
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);
    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&expect));
    assert_int_equal(st.corrupt_records, 0);
    tsdb_wal_batch_free(&b);
    tsdb_wal_batch_free(&big);
    tl_free(&expect);
    tl_free(&got);
    test_tmpdir_free(dir);
}

/* A damaged checkpoint: its good prefix and every later segment replay; the
 * damage is counted; the checkpoint file itself is left alone. */
static void test_corrupt_checkpoint_keeps_segments(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t want = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b, cp;
    tsdb_wal_batch_init(&b);
    tsdb_wal_batch_init(&cp);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    uint64_t seg;
    assert_ok(tsdb_wal_rotate(w, &seg));
    tsdb_label_t l[] = { { "__name__", "a" } };
    assert_ok(tsdb_wal_batch_add_series(&cp, 1, l, 1));
    render_series(&want, 1, l, 1);
    size_t first_len = cp.len;
    batch_samples(&cp, NULL, 1, 0, 5); /* this record gets damaged */
    assert_ok(tsdb_wal_checkpoint(w, seg, &cp));
    batch_samples(&b, &want, 1, 100000, 2);
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);

    size_t n;
    uint8_t *img = read_file(dir, "checkpoint.00000002", &n);
    img[n - 3] ^= 0x01;
    write_file(dir, "checkpoint.00000002", img, n);
    tsdb_wal_replay_stats_t st = replay_dir(dir, &got);
    assert_string_equal(tl_str(&got), tl_str(&want));
    assert_int_equal(st.records, 2);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.skipped_bytes, n - TSDB_WAL_HEADER_SIZE - first_len);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(file_size(dir, "checkpoint.00000002"), (long)n);
    assert_int_equal(file_size(dir, "00000002"), (long)(TSDB_WAL_HEADER_SIZE + b.len));
    free(img);
    tsdb_wal_batch_free(&b);
    tsdb_wal_batch_free(&cp);
    tl_free(&want);
    tl_free(&got);
    test_tmpdir_free(dir);
}

/* ---- damage in the middle: skip, resynchronise, fall back --------------- */

/* A model log: DM_SERIES series "dm{id=<ref>}", each with DM_BATCHES records
 * of DM_PER samples at t = k * 15 s, value dm_value(ref, t).  The checker
 * verifies every replayed record against it, so a wrong, shifted or doubled
 * sample, or a sample delivered under the wrong series, is caught. */
#define DM_SERIES  24
#define DM_BATCHES 60
#define DM_PER     8
#define DM_TOTAL   (DM_SERIES * DM_BATCHES * DM_PER)

static double dm_value(uint64_t ref, int64_t t) { return (double)ref * 1000.0 + (double)t / 1000.0 + 0.5; }

typedef struct dm_check {
    uint8_t known[DM_SERIES];
    uint8_t got[DM_SERIES][DM_BATCHES * DM_PER];
    size_t good, wrong, dup, orphan;
} dm_check_t;

static int dm_on_series(void *ctx, uint64_t ref, const tsdb_label_t *l, size_t n)
{
    dm_check_t *c = ctx;
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, ref);
    if (ref >= DM_SERIES || n != 2 || strcmp(l[0].name, "__name__") || strcmp(l[0].value, "dm") ||
        strcmp(l[1].name, "id") || strcmp(l[1].value, id))
        c->wrong++;
    else
        c->known[ref] = 1;
    return 0;
}

static int dm_on_samples(void *ctx, const tsdb_wal_sample_t *s, size_t n)
{
    dm_check_t *c = ctx;
    for (size_t i = 0; i < n; i++) {
        if (s[i].ref >= DM_SERIES) {
            c->wrong++;
            continue;
        }
        if (!c->known[s[i].ref]) { /* the head drops these */
            c->orphan++;
            continue;
        }
        int64_t k = s[i].t / 15000;
        if (s[i].t < 0 || s[i].t % 15000 || k >= DM_BATCHES * DM_PER ||
            test_double_bits(s[i].v) != test_double_bits(dm_value(s[i].ref, s[i].t))) {
            c->wrong++;
            continue;
        }
        if (c->got[s[i].ref][k]++)
            c->dup++;
        else
            c->good++;
    }
    return 0;
}

static tsdb_wal_replay_stats_t dm_replay(const char *dir, dm_check_t *c)
{
    memset(c, 0, sizeof *c);
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 4096);
    tsdb_wal_replay_ops_t ops = { dm_on_series, dm_on_samples, c, 0 };
    tsdb_wal_replay_stats_t st;
    tsdb_wal_t *w = NULL;
    assert_ok(tsdb_wal_open(dir, &o, &ops, &st, &w));
    tsdb_wal_close(w);
    return st;
}

static void dm_add_series(tsdb_wal_batch_t *b, uint64_t ref)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, ref);
    tsdb_label_t l[] = { { "__name__", "dm" }, { "id", id } };
    assert_ok(tsdb_wal_batch_add_series(b, ref, l, 2));
}

/* Samples of batches [from, to) of series ref, as one record. */
static void dm_add_samples(tsdb_wal_batch_t *b, uint64_t ref, int from, int to)
{
    size_t n = (size_t)(to - from) * DM_PER;
    tsdb_wal_sample_t *s = calloc(n, sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++) {
        s[i].ref = ref;
        s[i].t = ((int64_t)from * DM_PER + (int64_t)i) * 15000;
        s[i].v = dm_value(ref, s[i].t);
    }
    assert_ok(tsdb_wal_batch_add_samples(b, s, n));
    free(s);
}

/* Batches [from, to) of series [s0, s1), one append per record, with each
 * series record before its first samples. */
static void dm_write(tsdb_wal_t *w, int s0, int s1, int from, int to)
{
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    for (int i = from; i < to; i++)
        for (int r = s0; r < s1; r++) {
            tsdb_wal_batch_reset(&b);
            if (i == 0) dm_add_series(&b, (uint64_t)r);
            dm_add_samples(&b, (uint64_t)r, i, i + 1);
            assert_ok(tsdb_wal_append(w, &b));
        }
    tsdb_wal_batch_free(&b);
}

/* What the head does at a cut: rotate, log every sample it holds into the new
 * segment, then checkpoint its series. */
static void dm_checkpoint(tsdb_wal_t *w, int nseries, int upto, uint64_t want_seg)
{
    uint64_t seg;
    tsdb_wal_batch_t b, cp;
    tsdb_wal_batch_init(&b);
    tsdb_wal_batch_init(&cp);
    assert_ok(tsdb_wal_rotate(w, &seg));
    assert_int_equal(seg, want_seg);
    for (int r = 0; r < nseries; r++) {
        tsdb_wal_batch_reset(&b);
        dm_add_samples(&b, (uint64_t)r, 0, upto);
        assert_ok(tsdb_wal_append(w, &b));
        dm_add_series(&cp, (uint64_t)r);
    }
    assert_ok(tsdb_wal_sync(w));
    assert_ok(tsdb_wal_checkpoint(w, seg, &cp));
    tsdb_wal_batch_free(&b);
    tsdb_wal_batch_free(&cp);
}

static int corrupt_files(const char *dir)
{
    char p[600];
    snprintf(p, sizeof p, "%s/corrupt", dir);
    DIR *d = opendir(p);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            char f[900];
            snprintf(f, sizeof f, "%s/%s", p, de->d_name);
            unlink(f);
            n++;
        }
    closedir(d);
    return n;
}

/* 3 bytes flipped in the middle of one record in the middle of a 40-segment
 * log: exactly that record's DM_PER samples are lost, every later record and
 * segment replays, and the damaged bytes are kept under corrupt/. */
static void test_three_flipped_bytes_lose_one_record(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 4096);
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    dm_write(w, 0, DM_SERIES, 0, DM_BATCHES);
    tsdb_wal_close(w);
    int nseg = count_segments(dir);
    assert_true(nseg > 20);

    /* the middle record of the middle segment */
    char name[16];
    snprintf(name, sizeof name, "%08d", nseg / 2);
    size_t flen, off = TSDB_WAL_HEADER_SIZE, nrec = 0;
    uint8_t *img = read_file(dir, name, &flen);
    while (off < flen) {
        off += TSDB_WAL_RECORD_HEADER_SIZE + (img[off] | (size_t)img[off + 1] << 8);
        nrec++;
    }
    assert_int_equal(off, flen);
    off = TSDB_WAL_HEADER_SIZE;
    for (size_t i = 0; i < nrec / 2; i++)
        off += TSDB_WAL_RECORD_HEADER_SIZE + (img[off] | (size_t)img[off + 1] << 8);
    size_t rlen = TSDB_WAL_RECORD_HEADER_SIZE + (img[off] | (size_t)img[off + 1] << 8);
    assert_int_equal(img[off + TSDB_WAL_RECORD_HEADER_SIZE], TSDB_WAL_REC_SAMPLES);
    for (int k = 0; k < 3; k++) img[off + rlen / 2 + (size_t)k] ^= 0x5a;
    write_file(dir, name, img, flen);

    dm_check_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    tsdb_wal_replay_stats_t st = dm_replay(dir, c);
    assert_int_equal(c->wrong, 0);
    assert_int_equal(c->dup, 0);
    assert_int_equal(c->orphan, 0);
    assert_int_equal(c->good, DM_TOTAL - DM_PER); /* exactly the damaged record */
    assert_int_equal(st.samples, DM_TOTAL - DM_PER);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.skipped_bytes, rlen);
    assert_int_equal(st.truncated_bytes, 0);
    assert_int_equal(count_segments(dir), nseg); /* later segments kept */
    assert_int_equal(file_size(dir, name), (long)flen);

    /* the damaged bytes, as found, under <dir>/corrupt/ */
    char cp[700];
    snprintf(cp, sizeof cp, "%s/corrupt/wal-%s.%zu-%zu", dir, name, off, off + rlen);
    FILE *f = fopen(cp, "rb");
    assert_non_null(f);
    uint8_t *saved = malloc(rlen + 1);
    assert_int_equal(fread(saved, 1, rlen + 1, f), rlen);
    fclose(f);
    assert_memory_equal(saved, img + off, rlen);

    /* appends continue at the end of the last segment, and replay */
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    dm_add_samples(&b, 0, 0, 1); /* a duplicate of good samples: counted as dup */
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);
    st = dm_replay(dir, c);
    assert_int_equal(c->good, DM_TOTAL - DM_PER);
    assert_int_equal(c->dup, DM_PER);
    assert_int_equal(c->wrong, 0);
    tsdb_wal_batch_free(&b);
    free(saved);
    free(img);
    free(c);
    test_tmpdir_free(dir);
}

/* A damaged checkpoint whose source files are still there loses nothing:
 * the series it lost come from the previous checkpoint and the segments
 * since.  Without those files the loss is counted. */
static void test_damaged_checkpoint_falls_back(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 1 << 20);
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    dm_write(w, 0, DM_SERIES / 2, 0, 20);         /* segment 1: half the series */
    dm_checkpoint(w, DM_SERIES / 2, 20, 2);       /* checkpoint.2 */
    dm_write(w, DM_SERIES / 2, DM_SERIES, 0, 20); /* segment 2: the other half */
    dm_write(w, 0, DM_SERIES / 2, 20, 40);
    dm_checkpoint(w, DM_SERIES, 40, 3);        /* checkpoint.3 */
    dm_write(w, 0, DM_SERIES, 40, DM_BATCHES); /* segment 3 */
    tsdb_wal_close(w);
    /* the previous checkpoint and the segments since it are kept */
    assert_int_equal(file_size(dir, "00000001"), -1);
    assert_true(file_size(dir, "checkpoint.00000002") > 0);
    assert_true(file_size(dir, "00000002") > 0);

    dm_check_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    tsdb_wal_replay_stats_t st = dm_replay(dir, c);
    assert_int_equal(c->good, DM_TOTAL);
    assert_int_equal(st.corrupt_records, 0);

    /* 3 bytes flipped in a series record in the middle of checkpoint.3 */
    size_t n;
    uint8_t *img = read_file(dir, "checkpoint.00000003", &n);
    for (int k = 0; k < 3; k++) img[n / 2 + (size_t)k] ^= 0xa5;
    write_file(dir, "checkpoint.00000003", img, n);
    st = dm_replay(dir, c);
    assert_int_equal(st.corrupt_records, 1);
    assert_true(st.fallback_series >= 1);
    assert_int_equal(st.orphan_samples, 0);
    assert_int_equal(c->orphan, 0);
    assert_int_equal(c->wrong, 0);
    assert_int_equal(c->dup, 0);
    assert_int_equal(c->good, DM_TOTAL); /* nothing lost */

    /* without the source files (checkpoint.2, segment 2), the series in the
     * damaged part are lost: their samples are counted, never misattributed */
    char *p2 = path_in(dir, "checkpoint.00000002");
    assert_int_equal(unlink(p2), 0);
    free(p2);
    p2 = path_in(dir, "00000002");
    assert_int_equal(unlink(p2), 0);
    free(p2);
    st = dm_replay(dir, c);
    assert_int_equal(c->wrong, 0);
    assert_true(c->orphan > 0);
    assert_int_equal(st.orphan_samples, c->orphan);
    assert_int_equal(c->good + c->orphan, DM_TOTAL);
    free(img);
    free(c);
    test_tmpdir_free(dir);
}

/* 200 trials of 3 random bytes flipped anywhere in a 40-segment log: never a
 * wrong or doubled sample, and on average under 1% of the samples lost. */
static void test_random_flips_lose_little(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 4096);
    tsdb_wal_t *w;
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    dm_write(w, 0, DM_SERIES, 0, DM_BATCHES);
    tsdb_wal_close(w);
    int nseg = count_segments(dir);
    uint8_t *orig[64];
    size_t olen[64], total = 0;
    char name[16];
    assert_true(nseg <= 64);
    for (int i = 0; i < nseg; i++) {
        snprintf(name, sizeof name, "%08d", i + 1);
        orig[i] = read_file(dir, name, &olen[i]);
        total += olen[i];
    }
    dm_check_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    uint64_t rng = 0x5eed1234abcdull, lost = 0, worst = 0;
    const int trials = 200;
    for (int t = 0; t < trials; t++) {
        uint8_t *img[64];
        for (int i = 0; i < nseg; i++) {
            img[i] = malloc(olen[i]);
            memcpy(img[i], orig[i], olen[i]);
        }
        for (int k = 0; k < 3; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 20) % total;
            int i = 0;
            while (at >= olen[i]) at -= olen[i++];
            img[i][at] ^= (uint8_t)(1 + (rng >> 8) % 255);
        }
        for (int i = 0; i < nseg; i++) {
            snprintf(name, sizeof name, "%08d", i + 1);
            write_file(dir, name, img[i], olen[i]);
            free(img[i]);
        }
        tsdb_wal_replay_stats_t st = dm_replay(dir, c);
        assert_int_equal(c->wrong, 0);
        assert_int_equal(c->dup, 0);
        assert_int_equal(count_segments(dir), nseg);
        assert_int_equal(st.orphan_samples, c->orphan);
        assert_true(st.corrupt_records >= 1 || c->good == DM_TOTAL);
        uint64_t l = DM_TOTAL - c->good;
        lost += l;
        if (l > worst) worst = l;
        corrupt_files(dir);
    }
    double avg = (double)lost / trials / DM_TOTAL;
    print_message("random flips: %d trials, 3 bytes each, average loss %.3f%% of %d samples, worst %.2f%%\n",
                  trials, 100.0 * avg, DM_TOTAL, 100.0 * (double)worst / DM_TOTAL);
    assert_true(avg < 0.01);
    for (int i = 0; i < nseg; i++) free(orig[i]);
    free(c);
    test_tmpdir_free(dir);
}

/* ---- the head's WAL (through tsdb_append) ---------------------------------- */

/* HF_SERIES series appended HF_BATCHES times HF_PER samples, one series per
 * append, into 4 KiB segments (40 of them), as tsdb_append logs them. */
#define HF_SERIES  24
#define HF_BATCHES 60
#define HF_PER     8
#define HF_TOTAL   (HF_SERIES * HF_BATCHES * HF_PER)

static tsdb_t *hf_open(const char *dir)
{
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    o.wal_segment_bytes = 4096;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    return db;
}

static double hf_value(int k, int64_t t) { return (double)k * 1000.0 + (double)t / 1000.0 + 0.5; }

static void hf_write(const char *dir)
{
    tsdb_t *db = hf_open(dir);
    tsdb_sample_t s[HF_PER];
    for (int i = 0; i < HF_BATCHES; i++)
        for (int k = 0; k < HF_SERIES; k++) {
            char id[16];
            snprintf(id, sizeof id, "%02d", k);
            tsdb_label_t l[] = { { "__name__", "hf" }, { "id", id } };
            for (int j = 0; j < HF_PER; j++) {
                s[j].t = (int64_t)(i * HF_PER + j + 1) * 15000;
                s[j].v = hf_value(k, s[j].t);
            }
            tsdb_series_input_t in = { l, 2, s, HF_PER };
            tsdb_append_result_t res;
            assert_ok(tsdb_append(db, &in, 1, &res));
            assert_int_equal(res.appended, HF_PER);
        }
    tsdb_close(db);
}

/* Opens the store and counts the samples missing from its head; a sample
 * that is not its series' own, bit for bit, or a repeated one, fails. */
static size_t hf_lost(const char *dir)
{
    tsdb_t *db = hf_open(dir);
    tsdb_matcher_t m[] = { { TSDB_MATCH_EQ, "__name__", "hf" } };
    tsdb_series_set_t *set;
    assert_ok(tsdb_select(db, m, 1, INT64_MIN, INT64_MAX, &set));
    size_t found = 0;
    while (tsdb_series_set_next(set) == 1) {
        size_t nl, n;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        assert_int_equal(nl, 2);
        int k = atoi(l[1].value);
        const tsdb_sample_t *got;
        assert_ok(tsdb_series_set_samples(set, &got, &n));
        for (size_t i = 0; i < n; i++) {
            assert_true(got[i].t > 0 && got[i].t % 15000 == 0 && got[i].t <= 15000LL * HF_BATCHES * HF_PER);
            assert_true(i == 0 || got[i].t > got[i - 1].t);
            assert_int_equal(test_double_bits(got[i].v), test_double_bits(hf_value(k, got[i].t)));
        }
        found += n;
    }
    tsdb_series_set_free(set);
    tsdb_close(db);
    return (size_t)HF_TOTAL - found;
}

/* The head's WAL files, to restore before each trial. */
typedef struct hf_files {
    char name[64][16];
    uint8_t *p[64];
    size_t n[64], count, total;
} hf_files_t;

static void hf_save(const char *dir, hf_files_t *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 1;; i++) {
        char name[16];
        snprintf(name, sizeof name, "%08d", i);
        if (file_size(dir, name) < 0) break;
        assert_true(f->count < 64);
        snprintf(f->name[f->count], sizeof f->name[0], "%s", name);
        f->p[f->count] = read_file(dir, name, &f->n[f->count]);
        f->total += f->n[f->count++];
    }
}

static void hf_restore(const char *dir, const hf_files_t *f)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/wal' '%s/corrupt' '%s/blocks'; mkdir -p '%s/wal'", dir, dir, dir,
             dir);
    assert_int_equal(system(cmd), 0);
    for (size_t i = 0; i < f->count; i++) write_file(dir, f->name[i], f->p[i], f->n[i]);
}

/* A flip inside the SERIES record of a series the head logged: its samples
 * all replay (the head writes every SERIES record twice).  Before, they were
 * orphans until the next checkpoint: 1/24 of this log. */
static void test_head_series_record_flip(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    hf_write(dir);
    hf_files_t f;
    hf_save(dir, &f);
    assert_true(f.count > 1 && f.count < 64);
    strata_log_set_level(STRATA_LOG_ERROR + 1);
    /* every SERIES record of the first segment in turn */
    size_t flipped = 0;
    for (size_t off = TSDB_WAL_HEADER_SIZE; off + TSDB_WAL_RECORD_HEADER_SIZE < f.n[0];) {
        uint32_t len;
        memcpy(&len, f.p[0] + off, 4);
        if (f.p[0][off + TSDB_WAL_RECORD_HEADER_SIZE] == TSDB_WAL_REC_SERIES) {
            hf_restore(dir, &f);
            uint8_t *img = malloc(f.n[0]);
            memcpy(img, f.p[0], f.n[0]);
            img[off + TSDB_WAL_RECORD_HEADER_SIZE + len / 2] ^= 0x5a;
            write_file(dir, f.name[0], img, f.n[0]);
            free(img);
            assert_int_equal(hf_lost(dir), 0);
            flipped++;
        }
        off += TSDB_WAL_RECORD_HEADER_SIZE + len;
    }
    assert_true(flipped >= 2);
    strata_log_set_level(STRATA_LOG_WARN);
    for (size_t i = 0; i < f.count; i++) free(f.p[i]);
    test_tmpdir_free(dir);
}

/* 3 random bytes flipped anywhere in the head's 40-segment WAL, over seeded
 * trials: never a wrong sample; the average and worst share lost are
 * printed (before the doubled SERIES record, a flip there lost a series). */
static void test_head_wal_random_flips(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    hf_write(dir);
    hf_files_t f;
    hf_save(dir, &f);
    strata_log_set_level(STRATA_LOG_ERROR + 1);
    uint64_t rng = 0x5eed1234abcdull;
    size_t lost = 0, worst = 0, hdr = 0;
    const int trials = 200;
    for (int t = 0; t < trials; t++) {
        hf_restore(dir, &f);
        uint8_t *img[64];
        for (size_t i = 0; i < f.count; i++) {
            img[i] = malloc(f.n[i]);
            memcpy(img[i], f.p[i], f.n[i]);
        }
        int in_header = 0;
        for (int k = 0; k < 3; k++) {
            rng = rng * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(rng >> 20) % f.total, i = 0;
            while (at >= f.n[i]) at -= f.n[i++];
            img[i][at] ^= (uint8_t)(1 + (rng >> 8) % 255);
            in_header |= at < TSDB_WAL_HEADER_SIZE;
        }
        for (size_t i = 0; i < f.count; i++) {
            write_file(dir, f.name[i], img[i], f.n[i]);
            free(img[i]);
        }
        size_t l = hf_lost(dir);
        lost += l;
        hdr += in_header;
        if (l > worst) worst = l;
    }
    strata_log_set_level(STRATA_LOG_WARN);
    double avg = (double)lost / trials / HF_TOTAL;
    print_message("head WAL random flips: %d trials, 3 bytes each, %zu segments, average loss %.3f%% of %d "
                  "samples, worst %.2f%% (%zu trials hit a segment header)\n",
                  trials, f.count, 100.0 * avg, HF_TOTAL, 100.0 * (double)worst / HF_TOTAL, hdr);
    assert_true(avg < 0.01);
    assert_true(worst < HF_TOTAL / 100); /* 4.3% before: a flipped SERIES record lost its series */
    for (size_t i = 0; i < f.count; i++) free(f.p[i]);
    test_tmpdir_free(dir);
}

/* The last segment as a crash can leave it right after creation: empty
 * (clean) or with part of its header (torn). Both open and take appends. */
static void test_empty_and_torn_header_segment(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    textlog_t want = { 0 }, got = { 0 };
    tsdb_wal_options_t o = opts_of(TSDB_FSYNC_NEVER, 0);
    tsdb_wal_t *w;
    tsdb_wal_batch_t b;
    tsdb_wal_batch_init(&b);
    assert_ok(tsdb_wal_open(dir, &o, NULL, NULL, &w));
    batch_samples(&b, &want, 4, 0, 3);
    assert_ok(tsdb_wal_append(w, &b));
    tsdb_wal_close(w);

    for (size_t hl = 0; hl < TSDB_WAL_HEADER_SIZE; hl++) {
        uint8_t h[TSDB_WAL_HEADER_SIZE] = { 'S', 'W', 'A', 'L', TSDB_WAL_VERSION, 0, 0, 0 };
        write_file(dir, "00000002", h, hl);
        tsdb_wal_replay_stats_t st;
        tsdb_wal_replay_ops_t ops = rec_ops(&got);
        tl_reset(&got);
        assert_ok(tsdb_wal_open(dir, &o, &ops, &st, &w));
        assert_string_equal(tl_str(&got), tl_str(&want));
        assert_int_equal(st.corrupt_records, hl == 0 ? 0 : 1);
        assert_int_equal(st.truncated_bytes, hl);
        assert_int_equal(file_size(dir, "00000002"), TSDB_WAL_HEADER_SIZE);
        tsdb_wal_close(w);
        st = replay_dir(dir, &got);
        assert_int_equal(st.corrupt_records, 0);
        assert_int_equal(st.records, 1);
        char *p = path_in(dir, "00000002");
        unlink(p);
        free(p);
    }
    tsdb_wal_batch_free(&b);
    tl_free(&want);
    tl_free(&got);
    test_tmpdir_free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_round_trip_special_values),
        cmocka_unit_test(test_batch_rejects_bad_input),
        cmocka_unit_test(test_many_segments),
        cmocka_unit_test(test_reopen_and_append_continues),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_flipped_bit_skips_record),
        cmocka_unit_test(test_garbled_header_and_gap),
        cmocka_unit_test(test_replay_buffer_edge_cases),
        cmocka_unit_test(test_three_flipped_bytes_lose_one_record),
        cmocka_unit_test(test_damaged_checkpoint_falls_back),
        cmocka_unit_test(test_random_flips_lose_little),
        cmocka_unit_test(test_head_series_record_flip),
        cmocka_unit_test(test_head_wal_random_flips),
        cmocka_unit_test(test_callback_error_fails_open),
        cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_empty_checkpoint_keeps_no_fallback),
        cmocka_unit_test(test_corrupt_checkpoint_keeps_segments),
        cmocka_unit_test(test_empty_and_torn_header_segment),
        cmocka_unit_test(test_concurrent_always),
        cmocka_unit_test(test_interval_policy_fsyncs),
        cmocka_unit_test(test_never_policy_fsyncs_only_on_close_and_rotate),
        cmocka_unit_test(test_failed_write_is_not_acknowledged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
