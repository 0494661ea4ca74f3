/*
 * test_read_helpers.h: what the tests of the read seam (api/query/read.h)
 * share (test_read.c, test_gateway_feed.c): a local store in a scratch
 * directory read through a source, and the parts of a backend that holds no
 * series, for sources built from hand-written ops.
 */
#ifndef STRATA_TEST_READ_HELPERS_H
#define STRATA_TEST_READ_HELPERS_H

#include "read.h"
#include "test_tsdb_helpers.h"

/* A test db (no retention) in a scratch directory and a source over it. */
typedef struct test_store {
    char *dir;
    tsdb_t *db;
    api_read_source_t *src;
} test_store_t;

static inline test_store_t *test_store_open(void)
{
    test_store_t *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->dir = test_tmpdir_new();
    s->db = open_db(s->dir, 0, 0, 0);
    assert_ok(api_read_source_tsdb(s->db, &s->src));
    return s;
}

static inline void test_store_close(test_store_t *s)
{
    api_read_source_free(s->src);
    tsdb_close(s->db);
    test_tmpdir_free(s->dir);
    free(s);
}

/* A backend with no series: its sets end at once. */
static inline int test_empty_next(void *set)
{
    (void)set;
    return 0;
}
static inline const tsdb_label_t *test_empty_labels(void *set, size_t *n)
{
    (void)set;
    *n = 0;
    return NULL;
}
static inline int test_empty_samples(void *set, const tsdb_sample_t **s, size_t *n)
{
    (void)set;
    *s = NULL;
    *n = 0;
    return 0;
}
static inline void test_empty_free(void *set) { (void)set; }

#endif
