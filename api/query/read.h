/*
 * read.h: the read seam.  Every reader of stored series in api/ (the workload
 * registry, the metrics query, reports, export, and the engines to come)
 * selects through this interface and nothing else; docs/architecture.md
 * draws where it sits.
 *
 * A source is one backend: today the local tsdb (api_read_source_tsdb), later
 * a remote Prometheus-compatible engine.  A backend implements the small
 * api_read_ops_t table; api_read_select() is the one function in strata that
 * adds the tenant matcher, so no reader can forget it.
 *
 * The shape is the one a PromQL engine wants as well: select by label
 * matchers over a closed time range, walk the series in label order, and for
 * each take either its raw samples or, where the backend keeps them and a
 * step is wide enough, its 5m / 1h rollup points.
 *
 * Lifetimes: labels, samples and rollup points returned for the current
 * series stay valid until the next api_read_set_next() or api_read_set_free().
 * A set is used by one thread at a time; a source is shared by every thread.
 */
#ifndef API_READ_H
#define API_READ_H

#include <stddef.h>
#include <stdint.h>

#include "strata_err.h"
#include "tsdb.h"

typedef struct api_read_source api_read_source_t;
typedef struct api_read_set api_read_set_t;
typedef struct api_read_budget api_read_budget_t;

/* Flags of api_read_select(). */
enum api_read_flags {
    /* One pass over a long range (a report): the backend should not let the
     * scan push out what interactive queries keep reading. */
    API_READ_STREAM = 1u << 0,
    /* Every tenant's series, with the tenant label in each label set.  Only
     * for rebuilding tenant-keyed state (the workload registry at start); the
     * tenant argument is then ignored. */
    API_READ_ALL_TENANTS = 1u << 1,
};

/* Capabilities of a source (api_read_source_caps). */
enum api_read_caps {
    API_READ_CAP_ROLLUPS = 1u << 0, /* api_read_set_rollups answers from kept rollups */
};

/* A request's read budget: what every read of one request (an export, one
 * metric type of a metrics query, one report read) may spend.  The caller
 * owns it, fills the limits (api_read_budget_init) and passes it to every
 * api_read_select of the request; the seam counts into it and checks it in
 * api_read_select, _next, _samples and _rollups, whatever the backend:
 *   - past deadline_ms (api_read_mono_ms clock) a read fails STRATA_ETIMEOUT
 *     (the backend's select gets the deadline too, for its regex walk);
 *   - once more than max_samples raw samples + rollup points were handed out
 *     a read fails STRATA_ELIMIT.
 * After either, every further read of the budget fails the same way, and
 * api_read_budget_why() says which limit, naming its flag. */
struct api_read_budget {
    int64_t deadline_ms;      /* 0 = none */
    uint64_t max_samples;     /* 0 = none */
    uint64_t samples;         /* handed out so far */
    int exceeded;             /* 0, STRATA_ETIMEOUT or STRATA_ELIMIT */
    int64_t timeout_ms;       /* the timeout the deadline came from, for the message */
    const char *timeout_flag; /* the flag that set it, for the message ("--query-timeout") */
    /* a remote backend's own words when it failed (the engine named), for
     * api_read_budget_why; "" when the failure was the budget's own */
    char backend_why[200];
};

/* CLOCK_MONOTONIC in ms (the deadline's clock). */
int64_t api_read_mono_ms(void);
/* A budget whose deadline is timeout_ms from now (0 = none) and whose sample
 * limit is max_samples (0 = none). */
void api_read_budget_init(api_read_budget_t *b, int64_t timeout_ms, uint64_t max_samples);
/* STRATA_ETIMEOUT once the deadline passed (remembered in b), else what b
 * exceeded before, else 0.  b may be NULL (0). */
int api_read_budget_check(api_read_budget_t *b);
/* The reason b was exceeded, naming the limit and its flag:
 *   "query timeout: the read ran past --query-timeout (120000 ms)"
 *   "query over budget: more than N samples read (--query-max-samples)"
 * or "" when it was not. */
const char *api_read_budget_why(const api_read_budget_t *b, char *buf, size_t cap);

/* What a backend implements.  `set` is the backend's own series set.
 * deadline_ms (api_read_mono_ms clock, 0 = none): select should give up
 * with STRATA_ETIMEOUT past it rather than run on (the seam checks the rest). */
typedef struct api_read_ops {
    int (*select)(void *backend, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                  unsigned flags, int64_t deadline_ms, void **set);
    int (*next)(void *set);
    const tsdb_label_t *(*labels)(void *set, size_t *n);
    int (*samples)(void *set, const tsdb_sample_t **samples, size_t *n);
    /* NULL when the backend keeps no rollups. */
    int (*rollups)(void *set, int64_t resolution, const tsdb_rollup_point_t **points, size_t *n);
    void (*free)(void *set);
    /* Optional.  Why the calling thread's last select failed, naming the
     * engine (a remote backend); the seam copies it into the budget so the
     * route's message says it (docs/scale-out.md, "Read path"). */
    const char *(*why)(void *backend);
    /* Optional: frees the backend with its source (api_read_source_free). */
    void (*close)(void *backend);
    /* Optional: 0 when the samples the backend returns cannot include stale
     * markers (a Prometheus-flavoured engine, or one whose flavour is not
     * known yet), 1 when they do; NULL = they do. */
    int (*stale_markers)(void *backend);
} api_read_ops_t;

/* A source over ops/backend (both borrowed; they must outlive the source).
 * STRATA_ENOMEM. */
int api_read_source_new(const api_read_ops_t *ops, void *backend, unsigned caps, api_read_source_t **out);
/* A source over the local store (db borrowed, must outlive the source). */
int api_read_source_tsdb(tsdb_t *db, api_read_source_t **out);
void api_read_source_free(api_read_source_t *src);
/* What api_read_set_damaged asks of a backend that may skip damaged stored
 * pages (the local store does; a backend without one never skips any). */
typedef uint64_t (*api_read_damaged_fn)(void *set, uint64_t *current);
void api_read_source_set_damaged(api_read_source_t *src, api_read_damaged_fn fn);
unsigned api_read_source_caps(const api_read_source_t *src);
/* 1 when the source's samples include the stale markers stored (the local
 * store, VictoriaMetrics), 0 when it drops them (docs/scale-out.md, "What
 * differs from the local store"). */
int api_read_source_stale_markers(const api_read_source_t *src);
/* The daemon's per-request read limits (--query-timeout, --query-max-samples;
 * 0 = none, the default), kept on the source so every route that reads can
 * start its request's budget from them: api_read_source_budget(). */
void api_read_source_set_limits(api_read_source_t *src, int64_t timeout_ms, uint64_t max_samples);
/* api_read_budget_init(b, ...) with the source's limits, the deadline from now. */
void api_read_source_budget(const api_read_source_t *src, api_read_budget_t *b);
/* The shortest run of zeros whose length past it the source's 1h rollups
 * count (tsdb_rollup_point_t.zero_inner_long; tsdb_rollup_zero_run_ms() for
 * the local store); 0 when its rollups carry no such field. */
int64_t api_read_source_rollup_zero_run_ms(const api_read_source_t *src);

/* A source over a remote Prometheus-compatible engine (read_prom.c,
 * docs/scale-out.md "Read path").  url is the HTTP API prefix; "{tenant}" in
 * it becomes the tenant's number, else tenant_header (when set) carries it;
 * with neither the engine holds one tenant, tenants[0].  Every select fetches
 * raw samples: /api/v1/export (victoriametrics) or a range-selector instant
 * query (prometheus, stale markers not returned); flavor "auto" probes the
 * engine once.  tenants: the tenants an API_READ_ALL_TENANTS read (the
 * registry rebuild) walks.  No rollups.  Strings are copied. */
typedef struct api_read_remote_opts {
    const char *url;
    const char *flavor; /* "auto" (NULL), "prometheus", "victoriametrics" */
    const char *tenant_header;
    const char *bearer_token_file;
    const char *ca_file;
    const int32_t *tenants;
    size_t ntenants;
    int64_t timeout_ms; /* per call when the read has no deadline (0 = 5 min) */
} api_read_remote_opts_t;

/* STRATA_EINVAL (bad url, unreadable token file: logged), STRATA_ENOMEM. */
int api_read_source_prom(const api_read_remote_opts_t *opts, api_read_source_t **out);

/* The most matchers a select takes (the tenant matcher included). */
#define API_READ_MAX_MATCHERS 32

/* Selects the series of tenant_id matching every matcher, with samples in
 * [mint, maxt] (inclusive).  The tenant matcher is added here and nowhere
 * else.  A matcher on the tenant label itself is STRATA_EINVAL: the tenant
 * comes from the token, never from a selector.  More than
 * API_READ_MAX_MATCHERS - 1 matchers is STRATA_ELIMIT.  budget (borrowed,
 * must outlive the set; NULL = unlimited, only for the registry replay at
 * start and tests) bounds this and every read of the set, see above. */
int api_read_select(const api_read_source_t *src, int32_t tenant_id, unsigned flags,
                    api_read_budget_t *budget, const tsdb_matcher_t *m, size_t n, int64_t mint, int64_t maxt,
                    api_read_set_t **out);

/* 1 = at the next series (label order), 0 = end, < 0 = error. */
int api_read_set_next(api_read_set_t *set);
/* The current series' labels, sorted by name (the tenant label included). */
const tsdb_label_t *api_read_set_labels(api_read_set_t *set, size_t *n);
/* Its samples in [mint, maxt], ascending, stale markers included. */
int api_read_set_samples(api_read_set_t *set, const tsdb_sample_t **samples, size_t *n);
/* Its rollup points at TSDB_ROLLUP_5M or TSDB_ROLLUP_1H (tsdb.h has their
 * meaning); STRATA_EUNSUPPORTED when the source has no API_READ_CAP_ROLLUPS. */
int api_read_set_rollups(api_read_set_t *set, int64_t resolution, const tsdb_rollup_point_t **points,
                         size_t *n);
/* How many damaged stored pages (tsdb: chunk pages failing their CRC) the
 * set's reads skipped so far; *current (may be NULL) gets those the current
 * series' samples skipped, once they were read.  A nonzero count means some
 * series were answered without the samples of those pages: a reader passes
 * that on as a warning (docs/api.md), never as complete data. */
uint64_t api_read_set_damaged(api_read_set_t *set, uint64_t *current);
void api_read_set_free(api_read_set_t *set);

#endif
