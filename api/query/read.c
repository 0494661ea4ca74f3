/*
 * read.c: the read seam (read.h): the tenant-scoped select every reader goes
 * through, and its local backend over tsdb.
 */
#include "read.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"

struct api_read_source {
    const api_read_ops_t *ops;
    void *backend;
    unsigned caps;
    int64_t rollup_zero_run_ms;
    api_read_damaged_fn damaged;
};

struct api_read_set {
    const api_read_source_t *src;
    void *impl;
};

int api_read_source_new(const api_read_ops_t *ops, void *backend, unsigned caps, api_read_source_t **out)
{
    *out = NULL;
    if (!ops || !ops->select || !ops->next || !ops->labels || !ops->samples || !ops->free)
        return STRATA_EINVAL;
    if ((caps & API_READ_CAP_ROLLUPS) && !ops->rollups) return STRATA_EINVAL;
    api_read_source_t *s = malloc(sizeof *s);
    if (!s) return STRATA_ENOMEM;
    *s = (api_read_source_t){ .ops = ops, .backend = backend, .caps = caps };
    *out = s;
    return 0;
}

void api_read_source_free(api_read_source_t *src) { free(src); }

void api_read_source_set_damaged(api_read_source_t *src, api_read_damaged_fn fn) { src->damaged = fn; }

unsigned api_read_source_caps(const api_read_source_t *src) { return src->caps; }

int64_t api_read_source_rollup_zero_run_ms(const api_read_source_t *src) { return src->rollup_zero_run_ms; }

int api_read_select(const api_read_source_t *src, int32_t tenant_id, unsigned flags, const tsdb_matcher_t *m,
                    size_t n, int64_t mint, int64_t maxt, api_read_set_t **out)
{
    *out = NULL;
    if (n + 1 > API_READ_MAX_MATCHERS) return STRATA_ELIMIT;
    tsdb_matcher_t all[API_READ_MAX_MATCHERS];
    for (size_t i = 0; i < n; i++) {
        if (strcmp(m[i].name, INGEST_TENANT_LABEL) == 0) return STRATA_EINVAL;
        all[i] = m[i];
    }
    /* The one place a read is scoped to a tenant.  With API_READ_ALL_TENANTS
     * the matcher still requires the label, so only stamped series are seen. */
    char tenant[16];
    snprintf(tenant, sizeof tenant, "%" PRId32, tenant_id);
    if (flags & API_READ_ALL_TENANTS)
        all[n++] = (tsdb_matcher_t){ TSDB_MATCH_RE, INGEST_TENANT_LABEL, ".+" };
    else
        all[n++] = (tsdb_matcher_t){ TSDB_MATCH_EQ, INGEST_TENANT_LABEL, tenant };

    api_read_set_t *set = malloc(sizeof *set);
    if (!set) return STRATA_ENOMEM;
    set->src = src;
    int rc = src->ops->select(src->backend, all, n, mint, maxt, flags, &set->impl);
    if (rc) {
        free(set);
        return rc;
    }
    *out = set;
    return 0;
}

int api_read_set_next(api_read_set_t *set) { return set->src->ops->next(set->impl); }

const tsdb_label_t *api_read_set_labels(api_read_set_t *set, size_t *n)
{
    return set->src->ops->labels(set->impl, n);
}

int api_read_set_samples(api_read_set_t *set, const tsdb_sample_t **samples, size_t *n)
{
    return set->src->ops->samples(set->impl, samples, n);
}

int api_read_set_rollups(api_read_set_t *set, int64_t resolution, const tsdb_rollup_point_t **points,
                         size_t *n)
{
    if (!(set->src->caps & API_READ_CAP_ROLLUPS)) return STRATA_EUNSUPPORTED;
    return set->src->ops->rollups(set->impl, resolution, points, n);
}

uint64_t api_read_set_damaged(api_read_set_t *set, uint64_t *current)
{
    if (current) *current = 0;
    if (!set || !set->src->damaged) return 0;
    return set->src->damaged(set->impl, current);
}

void api_read_set_free(api_read_set_t *set)
{
    if (!set) return;
    set->src->ops->free(set->impl);
    free(set);
}

/* ---- the local backend ---------------------------------------------------- */

static int tsdb_backend_select(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                               unsigned flags, void **set)
{
    tsdb_series_set_t *s = NULL;
    int rc = tsdb_select(backend, m, n, mint, maxt, &s);
    if (rc) return rc;
    if (flags & API_READ_STREAM) tsdb_series_set_stream(s);
    *set = s;
    return 0;
}

static int tsdb_backend_next(void *set) { return tsdb_series_set_next(set); }

static const tsdb_label_t *tsdb_backend_labels(void *set, size_t *n)
{
    return tsdb_series_set_labels(set, n);
}

static int tsdb_backend_samples(void *set, const tsdb_sample_t **samples, size_t *n)
{
    return tsdb_series_set_samples(set, samples, n);
}

static int tsdb_backend_rollups(void *set, int64_t resolution, const tsdb_rollup_point_t **points, size_t *n)
{
    return tsdb_series_set_rollups(set, resolution, points, n);
}

static void tsdb_backend_free(void *set) { tsdb_series_set_free(set); }

static uint64_t tsdb_backend_damaged(void *set, uint64_t *current)
{
    return tsdb_series_set_damaged(set, current);
}

static const api_read_ops_t TSDB_OPS = {
    .select = tsdb_backend_select,
    .next = tsdb_backend_next,
    .labels = tsdb_backend_labels,
    .samples = tsdb_backend_samples,
    .rollups = tsdb_backend_rollups,
    .free = tsdb_backend_free,
};

int api_read_source_tsdb(tsdb_t *db, api_read_source_t **out)
{
    int rc = api_read_source_new(&TSDB_OPS, db, API_READ_CAP_ROLLUPS, out);
    if (rc == 0) {
        (*out)->rollup_zero_run_ms = tsdb_rollup_zero_run_ms(db);
        (*out)->damaged = tsdb_backend_damaged;
    }
    return rc;
}
