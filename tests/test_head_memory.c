/*
 * test_head_memory.c: what a head series holds (tsdb/head.c, docs/storage.md
 * "Head", Samples): an open buffer allocated with the series and sealed every
 * TSDB_HEAD_OPEN_SAMPLES samples into a codec chunk appended to the series'
 * one chunk buffer, the newest TSDB_HEAD_MERGE_FANIN chunks of one count
 * merged into one, up to TSDB_HEAD_CHUNK_SAMPLES.  strata_head_bytes must account exactly that, and
 * every sample must read back bit-exactly across seals, merges, duplicates,
 * out-of-order samples and a WAL replay.
 */
#include "test_helpers.h"

#include <math.h>

#include "codec.h"
#include "format.h"
#include "strata_log.h"
#include "tsdb.h"

/* The chunk buffer's allocation for need bytes: glibc's 16-byte steps less
 * its 8-byte header (head.c, cbuf_cap_for). */
static uint64_t cap_for(uint64_t need) { return need ? ((need + 8 + 15) & ~(uint64_t)15) - 8 : 0; }

static size_t enc_len(const tsdb_sample_t *s, size_t n)
{
    static uint8_t buf[8192];
    size_t w = 0;
    assert_true(tsdb_chunk_max_size(n) <= sizeof buf);
    assert_ok(tsdb_chunk_encode(s, n, buf, sizeof buf, &w));
    return w;
}

/* The chunk buffer bytes a series holding s[0..n) (pushed in order)
 * accounts: each seal appends a chunk (a 2-byte length and its codec bytes),
 * the newest FANIN chunks of one count become one, and the buffer grows to
 * cap_for(what it holds) when a chunk does not fit, never shrinking. */
static uint64_t model_bytes(const tsdb_sample_t *s, size_t n)
{
    size_t m = n / TSDB_HEAD_OPEN_SAMPLES + 1;
    size_t *lo = calloc(m, sizeof *lo), *cnt = calloc(m, sizeof *cnt), *len = calloc(m, sizeof *len);
    assert_true(lo && cnt && len);
    size_t k = 0, tail = 0, done = 0, clen = 0;
    uint64_t cap = 0;
    while (done + TSDB_HEAD_OPEN_SAMPLES <= n) {
        lo[k] = done;
        cnt[k] = TSDB_HEAD_OPEN_SAMPLES;
        len[k] = enc_len(s + done, TSDB_HEAD_OPEN_SAMPLES);
        clen += 2 + len[k++];
        if (clen > cap) cap = cap_for(clen);
        done += TSDB_HEAD_OPEN_SAMPLES;
        /* the newest FANIN chunks of one count merge, then maybe the next level */
        while (k - tail >= TSDB_HEAD_MERGE_FANIN) {
            size_t first = k - TSDB_HEAD_MERGE_FANIN, same = 1;
            for (size_t j = first; j < k; j++) same &= cnt[j] == cnt[k - 1];
            if (!same || TSDB_HEAD_MERGE_FANIN * cnt[k - 1] > TSDB_HEAD_CHUNK_SAMPLES) break;
            for (size_t j = first; j < k; j++) clen -= 2 + len[j];
            cnt[first] *= TSDB_HEAD_MERGE_FANIN;
            len[first] = enc_len(s + lo[first], cnt[first]);
            clen += 2 + len[first];
            k = first + 1;
            if (clen > cap) cap = cap_for(clen);
        }
        while (tail < k && TSDB_HEAD_MERGE_FANIN * cnt[tail] > TSDB_HEAD_CHUNK_SAMPLES) tail++;
    }
    free(lo);
    free(cnt);
    free(len);
    return cap;
}

static tsdb_t *open_head(const char *dir)
{
    tsdb_options_t opts;
    tsdb_options_init(&opts);
    opts.dir = dir;
    opts.background = 0;
    opts.fsync = TSDB_FSYNC_NEVER;
    opts.ooo_window_ms = 86400000; /* duplicates far behind the newest are still classified */
    tsdb_t *db;
    assert_ok(tsdb_open(&opts, &db));
    return db;
}

static uint64_t head_bytes(tsdb_t *db)
{
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    return st.head_bytes;
}

static void test_open_buffer_growth(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_head(dir);
    tsdb_label_t l[] = { { "__name__", "m" } };
    tsdb_sample_t s[TSDB_HEAD_OPEN_SAMPLES];
    uint64_t bytes[TSDB_HEAD_OPEN_SAMPLES + 1];
    for (int n = 1; n <= TSDB_HEAD_OPEN_SAMPLES; n++) {
        s[n - 1] = (tsdb_sample_t){ 1000 * n, n };
        tsdb_series_input_t in = { l, 1, &s[n - 1], 1 };
        assert_ok(tsdb_append(db, &in, 1, NULL));
        bytes[n] = head_bytes(db);
    }
    /* the open buffer came with the series: appending allocates nothing ... */
    for (int n = 2; n < TSDB_HEAD_OPEN_SAMPLES; n++) assert_int_equal(bytes[n], bytes[1]);
    /* ... until the 8th sample seals it into the chunk buffer (length, codec bytes) */
    assert_int_equal(bytes[TSDB_HEAD_OPEN_SAMPLES] - bytes[1],
                     cap_for(2 + enc_len(s, TSDB_HEAD_OPEN_SAMPLES)));
    tsdb_close(db);
    test_tmpdir_free(dir);
}

#define NSER 48
#define MAXN 400

/* Sample k of series i: regular or jittered times; small integers, 2-digit
 * decimals, a constant, or arbitrary bit patterns (NaN payloads, -0, +-Inf,
 * subnormals) so every codec value mode meets seals and merges. */
static tsdb_sample_t sample_of(int i, int k)
{
    int64_t t = 1700000000000LL + (int64_t)k * 15000 + (i % 2 ? (int64_t)((k * 7919 + i) % 499) : 0);
    double v;
    switch (i % 4) {
    case 0: v = (double)((k * 13 + i) % 101); break;
    case 1: {
        uint64_t x = (uint64_t)(k + 1) * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)i << 40;
        static const uint64_t odd[] = { UINT64_C(0x7ff8000000000001), UINT64_C(0x8000000000000000),
                                        UINT64_C(0x7ff0000000000000), UINT64_C(0xfff0000000000000),
                                        UINT64_C(0x0000000000000003), UINT64_C(0x7ff0000000000002) };
        if (k % 5 == 0) x = odd[(size_t)(k / 5) % 6];
        memcpy(&v, &x, sizeof v);
        break;
    }
    case 2: v = 42.5; break;
    default: v = (double)((k * 37 + i * 11) % 10000) / 100.0; break;
    }
    return (tsdb_sample_t){ t, v };
}

static int nsamples_of(int i) { return (i * 37) % MAXN + 1; }

static void series_labels(int i, char *buf, tsdb_label_t *l)
{
    snprintf(buf, 16, "%d", i);
    l[0] = (tsdb_label_t){ "__name__", "m" };
    l[1] = (tsdb_label_t){ "id", buf };
}

/* Reads every series in [mint, maxt] and compares bits with the input (plus
 * the out-of-order sample of every fifth series). */
static void check_reads(tsdb_t *db, int64_t mint, int64_t maxt)
{
    tsdb_matcher_t m = { TSDB_MATCH_EQ, "__name__", "m" };
    tsdb_series_set_t *set = NULL;
    assert_ok(tsdb_select(db, &m, 1, mint, maxt, &set));
    int seen = 0;
    while (tsdb_series_set_next(set) == 1) {
        size_t nl;
        const tsdb_label_t *l = tsdb_series_set_labels(set, &nl);
        int i = atoi(l[1].value);
        const tsdb_sample_t *got;
        size_t n;
        assert_ok(tsdb_series_set_samples(set, &got, &n));
        tsdb_sample_t want[MAXN + 1];
        size_t w = 0;
        for (int k = 0; k < nsamples_of(i); k++) {
            tsdb_sample_t x = sample_of(i, k);
            if (x.t >= mint && x.t <= maxt) want[w++] = x;
            if (k == 0 && i % 5 == 0 && nsamples_of(i) > 1) {
                tsdb_sample_t o = { x.t + 7000, -1.25 };
                if (o.t >= mint && o.t <= maxt) want[w++] = o;
            }
        }
        assert_int_equal(n, w);
        for (size_t j = 0; j < n; j++) {
            assert_int_equal(got[j].t, want[j].t);
            assert_memory_equal(&got[j].v, &want[j].v, sizeof(double));
        }
        seen++;
    }
    tsdb_series_set_free(set);
    assert_true(seen > 0);
}

/* Many series pushed a few samples per batch, time-major as scrapes arrive,
 * across seal and merge boundaries. */
static void test_many_series_exact(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_head(dir);
    char names[NSER][16];
    tsdb_label_t labels[NSER][2];
    tsdb_series_input_t in[NSER];
    tsdb_sample_t buf[NSER][16];
    for (int i = 0; i < NSER; i++) series_labels(i, names[i], labels[i]);

    /* round 0: one sample each creates the series */
    for (int i = 0; i < NSER; i++) {
        buf[i][0] = sample_of(i, 0);
        in[i] = (tsdb_series_input_t){ labels[i], 2, buf[i], 1 };
    }
    assert_ok(tsdb_append(db, in, NSER, NULL));
    uint64_t b0 = head_bytes(db);

    /* then batches of 1, 3, 7, 8, 13, ... samples per series */
    static const int step[] = { 1, 3, 7, 8, 13, 2, 16, 5 };
    int pos[NSER];
    for (int i = 0; i < NSER; i++) pos[i] = 1;
    size_t appended = 0, want_appended = 0;
    for (int r = 0;; r++) {
        size_t ns = 0;
        for (int i = 0; i < NSER; i++) {
            int take = step[(r + i) % 8], left = nsamples_of(i) - pos[i];
            if (take > left) take = left;
            if (take <= 0) continue;
            for (int k = 0; k < take; k++) buf[ns][k] = sample_of(i, pos[i] + k);
            in[ns] = (tsdb_series_input_t){ labels[i], 2, buf[ns], (size_t)take };
            ns++;
            pos[i] += take;
            want_appended += (size_t)take;
        }
        if (!ns) break;
        tsdb_append_result_t res;
        assert_ok(tsdb_append(db, in, ns, &res));
        appended += res.appended;
    }
    assert_int_equal(appended, want_appended);

    /* one out-of-order sample in every fifth series (its own 4-slot buffer) */
    uint64_t mooo = 0;
    for (int i = 0; i < NSER; i += 5) {
        if (nsamples_of(i) < 2) continue;
        tsdb_sample_t o = { sample_of(i, 0).t + 7000, -1.25 };
        tsdb_series_input_t one = { labels[i], 2, &o, 1 };
        tsdb_append_result_t res;
        assert_ok(tsdb_append(db, &one, 1, &res));
        assert_int_equal(res.appended, 1);
        mooo += 4 * 16;
    }

    /* accounting: exactly the modelled chunk buffers and open buffers */
    uint64_t model = 0;
    for (int i = 0; i < NSER; i++) {
        tsdb_sample_t all[MAXN];
        for (int k = 0; k < nsamples_of(i); k++) all[k] = sample_of(i, k);
        model += model_bytes(all, (size_t)nsamples_of(i));
    }
    uint64_t b1 = head_bytes(db);
    assert_int_equal(b1 - b0, model + mooo);

    /* every sample again: the same bits are duplicates, other bits conflict
     * (head_series_find through chunks, open buffer and out-of-order buffer) */
    size_t dups = 0, conflicts = 0;
    for (int i = 0; i < NSER; i++)
        for (int k = 0; k < nsamples_of(i); k += 3) {
            tsdb_sample_t x = sample_of(i, k);
            tsdb_series_input_t one = { labels[i], 2, &x, 1 };
            tsdb_append_result_t res;
            assert_ok(tsdb_append(db, &one, 1, &res));
            dups += res.duplicates;
            uint64_t bits;
            memcpy(&bits, &x.v, 8);
            bits ^= 1;
            memcpy(&x.v, &bits, 8);
            assert_ok(tsdb_append(db, &one, 1, &res));
            conflicts += res.conflicting;
        }
    size_t want_dups = 0;
    for (int i = 0; i < NSER; i++) want_dups += (size_t)(nsamples_of(i) + 2) / 3;
    assert_int_equal(dups, want_dups);
    assert_int_equal(conflicts, want_dups);
    assert_int_equal(head_bytes(db), b1);

    int64_t t0 = sample_of(0, 0).t;
    check_reads(db, INT64_MIN, INT64_MAX);
    check_reads(db, t0 + 100 * 15000 + 1, t0 + 260 * 15000); /* inside and across merged chunks */
    check_reads(db, t0, t0 + 7000);

    /* the WAL replays into the same samples and the same bytes */
    tsdb_close(db);
    db = open_head(dir);
    check_reads(db, INT64_MIN, INT64_MAX);
    check_reads(db, t0 + 100 * 15000 + 1, t0 + 260 * 15000);
    tsdb_close(db);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_buffer_growth),
        cmocka_unit_test(test_many_series_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
