/*
 * fuzz_promql_eval.c: libFuzzer target for the PromQL evaluator
 * (api/promql/eval*.c, aggregate.c, binop.c) behind the parser, over a small
 * real store opened once in a temp dir: gauges, a counter with a reset, a
 * stale marker, classic histogram buckets and a second tenant.
 *
 * The input is a query (NUL-terminated here).  Each query that parses is
 * evaluated as an instant query and as a range query under a read budget and
 * an arena cap.  What must hold:
 *   - the answer is 0 or one of the errors promql.h names, with a message;
 *   - an instant answer has the expression's type; a range answer is a
 *     matrix whose series are sorted by labels, unique, non-empty, with
 *     ascending points on the step grid;
 *   - no label set holds the tenant label, and tenant 2's values (1000 and
 *     up) never appear in a selector's answer.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "promql_internal.h"
#include "read.h"
#include "strata_log.h"
#include "tsdb.h"

#define T0 ((int64_t)300 * 3600 * 1000)

static tsdb_t *db;
static api_read_source_t *src;
static char *store_dir;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* The store goes with the process (libFuzzer exits through exit()). */
static void close_store(void)
{
    api_read_source_free(src);
    tsdb_close(db);
    if (store_dir) nftw(store_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put(const char *tenant, const char *name, const char *k, const char *v, const tsdb_sample_t *s,
                size_t n)
{
    tsdb_label_t l[3] = { { "__name__", name }, { INGEST_TENANT_LABEL, tenant }, { k, v } };
    tsdb_series_input_t in = { l, 3, s, n };
    tsdb_append_result_t res;
    if (tsdb_append(db, &in, 1, &res)) abort();
}

static void open_store(void)
{
    strata_log_set_level(STRATA_LOG_ERROR);
    char tmpl[] = "/tmp/fuzz-promql-eval-XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!dir) abort();
    tsdb_options_t o;
    tsdb_options_init(&o);
    o.dir = store_dir = strdup(dir);
    o.background = 0;
    o.fsync = TSDB_FSYNC_NEVER;
    o.retention_ms = 0;
    if (tsdb_open(&o, &db) || api_read_source_tsdb(db, &src)) abort();
    atexit(close_store);
    tsdb_sample_t s[61];
    for (int i = 0; i <= 60; i++) s[i] = (tsdb_sample_t){ T0 + i * 10000, i % 7 };
    put("1", "gauge", "job", "a", s, 61);
    for (int i = 0; i <= 60; i++) s[i].v = i < 30 ? i : i - 30;
    put("1", "cnt_total", "job", "a", s, 61);
    for (int i = 0; i <= 60; i++) s[i].v = 5;
    union {
        uint64_t u;
        double d;
    } stale = { .u = TSDB_STALE_NAN_BITS };
    s[20].v = stale.d;
    put("1", "gauge", "job", "b", s, 40);
    const char *le[] = { "0.1", "1", "+Inf" };
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i <= 60; i++) s[i].v = (double)(i * (b + 1));
        put("1", "lat_bucket", "le", le[b], s, 61);
    }
    for (int i = 0; i <= 60; i++) s[i].v = 1000 + i;
    put("2", "gauge", "job", "a", s, 61);
}

static void check_labels(const promql_series_t *s)
{
    for (size_t j = 0; j < s->nlabels; j++) {
        if (strcmp(s->labels[j].name, INGEST_TENANT_LABEL) == 0) abort();
        if (j && strcmp(s->labels[j - 1].name, s->labels[j].name) >= 0) abort();
    }
}

static int cmp_labels(const promql_series_t *a, const promql_series_t *b)
{
    for (size_t i = 0; i < a->nlabels && i < b->nlabels; i++) {
        int c = strcmp(a->labels[i].name, b->labels[i].name);
        if (!c) c = strcmp(a->labels[i].value, b->labels[i].value);
        if (c) return c;
    }
    return a->nlabels < b->nlabels ? -1 : a->nlabels > b->nlabels;
}

static void run(const promql_node_t *n, const char *q, int range)
{
    strata_arena_t *a = strata_arena_new(0);
    if (!a) abort();
    strata_arena_set_cap(a, 64u << 20);
    api_read_budget_t b;
    api_read_budget_init(&b, 2000, 200000);
    promql_engine_opts_t o = { .src = src, .tenant = 1, .budget = &b };
    promql_result_t r;
    char msg[512];
    int64_t start = T0 + (range ? 0 : 300000), end = T0 + 300000, step = range ? 30000 : 0;
    int rc = promql_eval(&o, n, start, end, step, a, &r, msg, sizeof msg);
    if (rc) {
        if (rc != STRATA_EINVAL && rc != STRATA_EEXEC && rc != STRATA_ELIMIT && rc != STRATA_ETIMEOUT &&
            rc != STRATA_ENOMEM) {
            fprintf(stderr, "%s: unexpected error %d %s\n", q, rc, msg);
            abort();
        }
        if (!msg[0]) {
            fprintf(stderr, "%s: error %d without a message\n", q, rc);
            abort();
        }
        goto out;
    }
    if (!range && r.type != n->type) abort();
    if (range && r.type != PROMQL_TYPE_MATRIX) abort();
    if (r.type == PROMQL_TYPE_VECTOR || r.type == PROMQL_TYPE_MATRIX) {
        for (size_t i = 0; i < r.nseries; i++) {
            const promql_series_t *s = &r.series[i];
            check_labels(s);
            if (!s->npoints) abort();
            for (size_t j = 0; j < s->npoints; j++) {
                if (j && s->points[j].t <= s->points[j - 1].t) abort();
                if (range &&
                    (s->points[j].t < start || s->points[j].t > end || (s->points[j].t - start) % step))
                    abort();
                if (r.type == PROMQL_TYPE_VECTOR && s->points[j].t != start) abort();
            }
            if (range && i && cmp_labels(&r.series[i - 1], s) >= 0) {
                fprintf(stderr, "%s: series not sorted or not unique\n", q);
                abort();
            }
        }
    }
    /* a bare selector never shows tenant 2's values */
    if (n->kind == PROMQL_VECTOR_SEL)
        for (size_t i = 0; i < r.nseries; i++)
            for (size_t j = 0; j < r.series[i].npoints; j++)
                if (r.series[i].points[j].v >= 1000) abort();
out:
    strata_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!db) open_store();
    if (size > 2048) return 0;
    char *q = malloc(size + 1);
    if (!q) return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    strata_arena_t *pa = strata_arena_new(0);
    if (!pa) abort();
    strata_arena_set_cap(pa, 16u << 20);
    promql_node_t *n = NULL;
    promql_error_t err;
    if (promql_parse(q, pa, &n, &err) == 0) {
        run(n, q, 0);
        if (n->type == PROMQL_TYPE_SCALAR || n->type == PROMQL_TYPE_VECTOR) run(n, q, 1);
    }
    strata_arena_free(pa);
    free(q);
    return 0;
}
