/*
 * test_wal_cursor.c: the WAL cursor (tsdb_wal_cursor_*) and the WAL floor
 * (the wal_retain option) the remote-write shipper stands on: every sample
 * appended is read once, in log order, with its labels, across segment rolls,
 * head cuts and their checkpoints (whose re-logged copies are skipped); a
 * cursor reopened at a committed position after a restart reads exactly the
 * rest; segments at or after the floor survive checkpoints; without the
 * option the WAL deletes as before and a gone position resumes at the oldest
 * segment.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include "test_tsdb_helpers.h"

#include "strata_log.h"

typedef struct got {
    strbuf_t b;
    size_t n;
    tsdb_wal_cursor_t *c;
} got_t;

static int collect(void *ctx, const tsdb_ref_sample_t *s, size_t n)
{
    got_t *g = ctx;
    for (size_t i = 0; i < n; i++) {
        size_t nl = 0;
        const tsdb_label_t *l = tsdb_wal_cursor_series(g->c, s[i].ref, &nl);
        assert_non_null(l);
        sb_printf(&g->b, "{");
        for (size_t k = 0; k < nl; k++) sb_printf(&g->b, "%s%s=%s", k ? "," : "", l[k].name, l[k].value);
        sb_printf(&g->b, "} %" PRId64 ":%" PRIx64 "\n", s[i].t, test_double_bits(s[i].v));
        g->n++;
    }
    return 0;
}

/* Reads until caught up. */
static void drain(got_t *g)
{
    int rc;
    while ((rc = tsdb_wal_cursor_read(g->c, 4096, collect, g)) > 0) {}
    assert_int_equal(rc, 0);
}

static tsdb_t *open_retain(const char *dir, int retain)
{
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = dir;
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.wal_segment_bytes = 4096; /* many segments */
    o.retention_ms = 0;
    o.wal_retain = retain;
    tsdb_t *db = NULL;
    assert_ok(tsdb_open(&o, &db));
    return db;
}

/* Appends batch k: series s<k%5> (created on first use) and a shared one. */
static void append_batch(tsdb_t *db, strbuf_t *want, int k)
{
    char lab[64];
    snprintf(lab, sizeof lab, "__name__=m,s=%d", k % 5);
    tsdb_sample_t smp[3];
    for (int i = 0; i < 3; i++) smp[i] = (tsdb_sample_t){ 1000000 + k * 10 + i, k + i * 0.25 };
    if (k % 7 == 0) {
        uint64_t bits = TSDB_STALE_NAN_BITS;
        memcpy(&smp[2].v, &bits, 8);
    }
    append(db, lab, smp, 3);
    for (int i = 0; i < 3; i++)
        sb_printf(want, "{__name__=m,s=%d} %" PRId64 ":%" PRIx64 "\n", k % 5, smp[i].t,
                  test_double_bits(smp[i].v));
    tsdb_sample_t one = { 1000000 + k * 10, -k };
    append(db, "__name__=shared", &one, 1);
    sb_printf(want, "{__name__=shared} %" PRId64 ":%" PRIx64 "\n", one.t, test_double_bits(one.v));
}

static size_t count_files(const char *dir, const char *prefix)
{
    char p[512];
    snprintf(p, sizeof p, "%s/wal", dir);
    DIR *d = opendir(p);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (!strncmp(de->d_name, prefix, strlen(prefix))) n++;
    closedir(d);
    return n;
}

static void test_cursor_order_cuts_copies(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_retain(dir, 1);
    strbuf_t want = { 0 };
    sb_printf(&want, "%s", "");
    for (int k = 0; k < 1000; k++) {
        append_batch(db, &want, k);
        if (k % 250 == 249) assert_ok(tsdb_cut_head(db)); /* checkpoints log the head again */
    }
    got_t g = { 0 };
    sb_printf(&g.b, "%s", "");
    assert_ok(tsdb_wal_cursor_open(db, (tsdb_wal_pos_t){ 0, 0 }, &g.c));
    drain(&g);
    assert_string_equal(g.b.s, want.s); /* each sample once, in order, copies skipped */
    assert_int_equal(g.n, 4000);
    assert_int_equal(tsdb_wal_bytes_after(db, tsdb_wal_cursor_pos(g.c)), 0);
    assert_int_equal(tsdb_wal_cursor_skipped_bytes(g.c), 0);
    /* a later append is read next, and shows as bytes behind until then */
    append_batch(db, &want, 1000);
    assert_true(tsdb_wal_bytes_after(db, tsdb_wal_cursor_pos(g.c)) > 0);
    drain(&g);
    assert_string_equal(g.b.s, want.s);
    assert_true(count_files(dir, "000000") > 10); /* nothing deleted below the floor */
    tsdb_wal_cursor_close(g.c);
    tsdb_close(db);
    free(want.s);
    free(g.b.s);
    test_tmpdir_free(dir);
}

static void test_cursor_resume_after_restart(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_retain(dir, 1);
    strbuf_t want = { 0 };
    sb_printf(&want, "%s", "");
    for (int k = 0; k < 400; k++) append_batch(db, &want, k);
    got_t g = { 0 };
    sb_printf(&g.b, "%s", "");
    assert_ok(tsdb_wal_cursor_open(db, (tsdb_wal_pos_t){ 0, 0 }, &g.c));
    for (int i = 0; i < 3; i++) {
        int r = tsdb_wal_cursor_read(g.c, 4096, collect, &g);
        assert_true(r > 0);
    }
    tsdb_wal_pos_t pos = tsdb_wal_cursor_pos(g.c);
    assert_true(pos.segment > 1);
    tsdb_wal_cursor_commit(g.c, pos);
    size_t read_before = g.b.len;
    tsdb_wal_cursor_close(g.c);
    /* cuts checkpoint and delete what the floor allows; a restart replays */
    for (int k = 400; k < 450; k++) append_batch(db, &want, k);
    assert_ok(tsdb_cut_head(db));
    for (int k = 450; k < 460; k++) append_batch(db, &want, k);
    assert_ok(tsdb_cut_head(db));
    tsdb_close(db);
    db = open_retain(dir, 1);
    for (int k = 460; k < 470; k++) append_batch(db, &want, k);
    char name[64];
    snprintf(name, sizeof name, "%08llu", (unsigned long long)pos.segment);
    char path[512];
    snprintf(path, sizeof path, "%s/wal/%s", dir, name);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0); /* the floor's segment survived two checkpoints */
    assert_ok(tsdb_wal_cursor_open(db, pos, &g.c));
    drain(&g);
    assert_string_equal(g.b.s, want.s); /* the rest, exactly, labels known */
    assert_true(g.b.len > read_before);
    /* committing the end lets the next checkpoint delete the older segments */
    size_t before = count_files(dir, "000000");
    tsdb_wal_cursor_commit(g.c, tsdb_wal_cursor_pos(g.c));
    assert_ok(tsdb_cut_head(db));
    assert_ok(tsdb_cut_head(db));
    assert_true(count_files(dir, "000000") < before);
    tsdb_wal_cursor_close(g.c);
    tsdb_close(db);
    free(want.s);
    free(g.b.s);
    test_tmpdir_free(dir);
}

static void test_without_retain(void **state)
{
    (void)state;
    char *dir = test_tmpdir_new();
    tsdb_t *db = open_retain(dir, 0);
    strbuf_t want = { 0 };
    sb_printf(&want, "%s", "");
    for (int k = 0; k < 100; k++) append_batch(db, &want, k);
    assert_ok(tsdb_cut_head(db));
    assert_ok(tsdb_cut_head(db));
    assert_int_equal(count_files(dir, "00000001"), 0); /* deleted as before */
    /* a gone position resumes at the oldest segment kept */
    got_t g = { 0 };
    sb_printf(&g.b, "%s", "");
    assert_ok(tsdb_wal_cursor_open(db, (tsdb_wal_pos_t){ 1, 100 }, &g.c));
    tsdb_wal_pos_t pos = tsdb_wal_cursor_pos(g.c);
    assert_true(pos.segment > 1);
    assert_int_equal(pos.offset, 8);
    drain(&g);
    assert_int_equal(g.n, 0); /* only copies left: nothing new */
    tsdb_wal_cursor_close(g.c);
    tsdb_close(db);
    free(want.s);
    free(g.b.s);
    test_tmpdir_free(dir);
}

int main(void)
{
    strata_log_set_level(STRATA_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_order_cuts_copies),
        cmocka_unit_test(test_cursor_resume_after_restart),
        cmocka_unit_test(test_without_retain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
