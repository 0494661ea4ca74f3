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
    int64_t timeout_ms;
    uint64_t max_samples;
};

struct api_read_set {
    const api_read_source_t *src;
    void *impl;
    api_read_budget_t *budget;
};

int64_t api_read_mono_ms(void) { return tsdb_mono_ms(); }

void api_read_budget_init(api_read_budget_t *b, int64_t timeout_ms, uint64_t max_samples)
{
    *b = (api_read_budget_t){ .max_samples = max_samples,
                              .timeout_ms = timeout_ms,
                              .timeout_flag = "--query-timeout" };
    if (timeout_ms > 0) b->deadline_ms = api_read_mono_ms() + timeout_ms;
}

int api_read_budget_check(api_read_budget_t *b)
{
    if (!b) return 0;
    if (b->exceeded) return b->exceeded;
    if (b->deadline_ms && api_read_mono_ms() > b->deadline_ms) b->exceeded = STRATA_ETIMEOUT;
    return b->exceeded;
}

/* Counts n samples or points handed out; STRATA_ELIMIT past the limit. */
static int budget_take(api_read_budget_t *b, size_t n)
{
    if (!b) return 0;
    b->samples += n;
    if (b->max_samples && b->samples > b->max_samples && !b->exceeded) b->exceeded = STRATA_ELIMIT;
    return b->exceeded;
}

const char *api_read_budget_why(const api_read_budget_t *b, char *buf, size_t cap)
{
    if (!cap) return buf;
    buf[0] = '\0';
    if (!b || !b->exceeded) return buf;
    if (b->backend_why[0]) {
        snprintf(buf, cap, "%s", b->backend_why);
        return buf;
    }
    if (b->exceeded == STRATA_ETIMEOUT)
        snprintf(buf, cap, "query timeout: the read ran past %s (%" PRId64 " ms)", b->timeout_flag,
                 b->timeout_ms);
    else
        snprintf(buf, cap, "query over budget: more than %" PRIu64 " samples read (--query-max-samples)",
                 b->max_samples);
    return buf;
}

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

void api_read_source_free(api_read_source_t *src)
{
    if (src && src->ops->close) src->ops->close(src->backend);
    free(src);
}

void api_read_source_set_damaged(api_read_source_t *src, api_read_damaged_fn fn) { src->damaged = fn; }

unsigned api_read_source_caps(const api_read_source_t *src) { return src->caps; }

int api_read_source_stale_markers(const api_read_source_t *src)
{
    return src->ops->stale_markers ? src->ops->stale_markers(src->backend) : 1;
}

void api_read_source_set_limits(api_read_source_t *src, int64_t timeout_ms, uint64_t max_samples)
{
    src->timeout_ms = timeout_ms;
    src->max_samples = max_samples;
}

void api_read_source_budget(const api_read_source_t *src, api_read_budget_t *b)
{
    api_read_budget_init(b, src->timeout_ms, src->max_samples);
}

int64_t api_read_source_rollup_zero_run_ms(const api_read_source_t *src) { return src->rollup_zero_run_ms; }

int api_read_select(const api_read_source_t *src, int32_t tenant_id, unsigned flags,
                    api_read_budget_t *budget, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                    api_read_set_t **out)
{
    *out = NULL;
    int brc = api_read_budget_check(budget);
    if (brc) return brc;
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
    set->budget = budget;
    int rc = src->ops->select(src->backend, all, n, mint, maxt, flags, budget ? budget->deadline_ms : 0,
                              &set->impl);
    if (rc == STRATA_ETIMEOUT && budget) budget->exceeded = rc;
    if ((rc == STRATA_ETIMEOUT || rc == STRATA_EIO) && src->ops->why) {
        /* an engine that failed: every further read of the request fails the
         * same way (never a partial answer), with the engine's own words */
        const char *why = src->ops->why(src->backend);
        if (budget && why && why[0]) {
            snprintf(budget->backend_why, sizeof budget->backend_why, "%s", why);
            budget->exceeded = rc;
        }
    }
    if (rc) {
        free(set);
        return rc;
    }
    *out = set;
    return 0;
}

int api_read_set_next(api_read_set_t *set)
{
    int rc = api_read_budget_check(set->budget);
    return rc ? rc : set->src->ops->next(set->impl);
}

const tsdb_label_t *api_read_set_labels(api_read_set_t *set, size_t *n)
{
    return set->src->ops->labels(set->impl, n);
}

int api_read_set_samples(api_read_set_t *set, const tsdb_sample_t **samples, size_t *n)
{
    int rc = api_read_budget_check(set->budget);
    if (!rc) rc = set->src->ops->samples(set->impl, samples, n);
    if (!rc) rc = budget_take(set->budget, *n);
    if (rc) {
        *samples = NULL;
        *n = 0;
    }
    return rc;
}

int api_read_set_rollups(api_read_set_t *set, int64_t resolution, const tsdb_rollup_point_t **points,
                         size_t *n)
{
    if (!(set->src->caps & API_READ_CAP_ROLLUPS)) return STRATA_EUNSUPPORTED;
    int rc = api_read_budget_check(set->budget);
    if (!rc) rc = set->src->ops->rollups(set->impl, resolution, points, n);
    if (!rc) rc = budget_take(set->budget, *n);
    if (rc) {
        *points = NULL;
        *n = 0;
    }
    return rc;
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
                               unsigned flags, int64_t deadline_ms, void **set)
{
    tsdb_series_set_t *s = NULL;
    int rc = tsdb_select_until(backend, m, n, mint, maxt, deadline_ms, &s);
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
