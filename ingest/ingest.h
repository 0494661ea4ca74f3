/*
 * ingest.h: the remote-write receiver (Prometheus remote-write 1.0 and 2.0).
 *
 * The write path is: content type -> snappy (declared length checked against
 * the limit before anything is decompressed) -> protobuf-c unpack into the
 * request's arena -> per-series validation and normalisation (empty values
 * dropped, labels sorted, tenant label stamped) -> per-tenant series limit ->
 * tsdb_append.  Invalid series and samples are rejected one by one and
 * counted by reason; the valid rest of the request is still stored.  A RW1
 * series whose raw label bytes were stored before (same tenant) skips the
 * label steps through the label cache (label_cache.h; docs/strata-load.md).
 *
 * Tenants are kept apart in the store by the reserved label INGEST_TENANT_LABEL
 * stamped on every series; readers add the matching matcher (api_read_select
 * in api/query/read.h) and never show the label to users.
 */
#ifndef INGEST_H
#define INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "strata_arena.h"
#include "strata_err.h"
#include "tsdb.h"

#define INGEST_TENANT_LABEL  "__tenant__"

/* Samples this far ahead of the server clock are rejected (docs/api.md,
 * too_far_in_future). */
#define INGEST_MAX_FUTURE_MS (10 * 60 * 1000)

typedef struct ingest_limits {
    size_t max_request_bytes;       /* decompressed body, default 32 MiB */
    size_t max_labels_per_series;   /* without the tenant label; default 64, 0 = none */
    size_t max_label_name_length;   /* bytes, default 1024, 0 = none */
    size_t max_label_value_length;  /* bytes, default 4096, 0 = none */
    uint64_t max_series_per_tenant; /* default 0 = unlimited */
    int64_t retention_ms;           /* the store's --retention: samples older than now minus it are
                                       refused (too_old_for_retention); default 0 = keep forever,
                                       which refuses only samples before the Unix epoch */
} ingest_limits_t;

void ingest_limits_init(ingest_limits_t *lim);

/* The oldest sample timestamp a write may carry at now_ms: now_ms minus the
 * retention, and never before the Unix epoch (0). */
int64_t ingest_oldest_allowed(const ingest_limits_t *lim, int64_t now_ms);

enum ingest_proto { INGEST_PROTO_V1, INGEST_PROTO_V2 };

/* Why a sample (or a series, with all its samples) was rejected. */
enum ingest_reason {
    INGEST_R_MISSING_NAME,
    INGEST_R_INVALID_LABEL_NAME,
    INGEST_R_DUPLICATE_LABEL,
    INGEST_R_INVALID_LABEL_VALUE, /* not UTF-8, or a NUL byte */
    INGEST_R_TOO_MANY_LABELS,
    INGEST_R_LABEL_NAME_TOO_LONG,
    INGEST_R_LABEL_VALUE_TOO_LONG,
    INGEST_R_RESERVED_LABEL,
    INGEST_R_INVALID_SYMBOL_REF, /* RW2 labels_refs out of range or odd */
    INGEST_R_FUTURE,
    INGEST_R_RETENTION, /* older than now - retention, or before the Unix epoch */
    INGEST_R_TOO_OLD,
    INGEST_R_CONFLICT,
    INGEST_R_HISTOGRAM, /* native histograms: not supported yet */
    INGEST_R_EXEMPLAR,  /* exemplars: not supported yet */
    INGEST_R_TENANT_LIMIT,
    INGEST_R_COUNT
};

/* Stable snake_case name, used as the /metrics reason label and in details. */
const char *ingest_reason_name(enum ingest_reason r);

/* Picks the protocol from Content-Type / Content-Encoding (either may be NULL:
 * Prometheus' own receiver treats absent headers as RW1 + snappy).
 * STRATA_EMEDIA for anything else. */
int ingest_parse_content_type(const char *content_type, const char *content_encoding, enum ingest_proto *out);

/* Decompresses a snappy block.  The declared length is checked against
 * max_out first (STRATA_ETOOBIG, nothing decompressed); a corrupt body is
 * STRATA_EBADSNAPPY.  *out lives in the arena. */
int ingest_snappy_decompress(strata_arena_t *arena, const void *in, size_t inlen, size_t max_out, char **out,
                             size_t *outlen);

/* ---- decode + validate ------------------------------------------------- */

typedef struct ingest_batch ingest_batch_t;

/* Unpacks a decompressed protobuf message and validates it.  Everything,
 * the batch included, lives in the arena.  tenant is stamped as
 * INGEST_TENANT_LABEL (NULL: no stamping).  Returns STRATA_EBADPROTO when the
 * message cannot be unpacked (STRATA_ETOOBIG when it would take more memory
 * than the arena's cap); invalid series are not an error but are counted in
 * the batch. */
int ingest_decode(strata_arena_t *arena, enum ingest_proto proto, const void *buf, size_t len,
                  const ingest_limits_t *lim, int64_t now_ms, const char *tenant, ingest_batch_t **out);

/* The valid series, ready for tsdb_append (labels sorted, tenant stamped). */
const tsdb_series_input_t *ingest_batch_series(const ingest_batch_t *b, size_t *n);
/* Samples (and histograms / exemplars) the request carried in total. */
size_t ingest_batch_samples_in(const ingest_batch_t *b);
size_t ingest_batch_histograms_in(const ingest_batch_t *b);
size_t ingest_batch_exemplars_in(const ingest_batch_t *b);
/* Samples rejected for reason r (a rejected series counts all its samples,
 * and at least 1 when it had none). */
size_t ingest_batch_rejected(const ingest_batch_t *b, enum ingest_reason r);
/* The first rejection as one human line (series + reason), or NULL. */
const char *ingest_batch_first_error(const ingest_batch_t *b);

/* A metric family's metadata as remote write sends it (1.0's MetricMetadata;
 * 2.0's per-series Metadata, the family being the series' metric name):
 * type as Prometheus names it ("counter", "gauge", "histogram",
 * "gaugehistogram", "summary", "info", "stateset", "unknown"), help, unit. */
typedef struct ingest_metadata {
    const char *family, *type, *help, *unit;
} ingest_metadata_t;

/* The request's valid metadata entries (family name non-empty, every text
 * valid UTF-8 within the label value length limit; others are dropped). */
const ingest_metadata_t *ingest_batch_metadata(const ingest_batch_t *b, size_t *n);

/* ---- the receiver ------------------------------------------------------ */

typedef struct ingest ingest_t;

/* Outcome of one write request, for the HTTP answer and /metrics. */
typedef struct ingest_result {
    size_t samples_written; /* appended + idempotent duplicates */
    size_t histograms_written;
    size_t exemplars_written;
    size_t series_created;
    size_t rejected[INGEST_R_COUNT];
    char message[512]; /* first rejection, "" when none */
    char details[512]; /* rejected counts by reason */
} ingest_result_t;

/* Builds a receiver over an open db; scans the db for the series each tenant
 * already has (for the per-tenant series limit). */
int ingest_new(tsdb_t *db, const ingest_limits_t *lim, ingest_t **out);
void ingest_free(ingest_t *ing);

/* Called after every successful append with the series just written
 * (labels sorted, tenant label included; samples as sent, which may include
 * ones the store rejected as too old or conflicting).  For the workload
 * registry; runs on the request's thread, so it must be quick and
 * thread-safe.  A negative return is logged, never fails the write. */
typedef int (*ingest_observer_fn)(void *ctx, int32_t tenant, const tsdb_series_input_t *series);
/* Set before the receiver takes traffic (not synchronised). */
void ingest_set_observer(ingest_t *ing, ingest_observer_fn fn, void *ctx);
/* The same with the series' store ref (nonzero: names this label set for the
 * store's life; 0 when not known), for an observer that keeps per-series
 * state by it.  Set instead of ingest_set_observer (replaces it). */
typedef int (*ingest_observer_ref_fn)(void *ctx, int32_t tenant, uint32_t ref,
                                      const tsdb_series_input_t *series);
void ingest_set_observer_ref(ingest_t *ing, ingest_observer_ref_fn fn, void *ctx);
/* Which series the observer wants (1 = wants it), a function of the labels
 * alone (series as the observer gets it): asked once per series, when ingest
 * first stores it, and remembered in the label cache; the observer then sees
 * only those.  Without a filter it sees all.  Set with the observer (same
 * ctx). */
typedef int (*ingest_observer_filter_fn)(void *ctx, const tsdb_series_input_t *series);
void ingest_set_observer_filter(ingest_t *ing, ingest_observer_filter_fn fn);

/* The label cache (docs/strata-load.md): a series' raw RW1 label bytes and
 * tenant -> its store ref, so a series seen before skips decoding,
 * validation and the series table.  At most this many entries (16 bytes
 * each at <= 3/4 load; it starts over empty when full).  Off when a
 * per-tenant series limit is set (that needs every series' labels). */
#define INGEST_LABEL_CACHE_MAX (4u << 20)
/* Entries held now (for tests). */
size_t ingest_label_cache_size(ingest_t *ing);

/* The whole write path for one request body (still snappy-compressed).
 * Returns 0 when everything was stored; STRATA_EINVAL when some series or
 * samples were rejected as invalid (the rest is stored); STRATA_ELIMIT when
 * some were rejected by a tenant limit; or a request-level error with nothing
 * stored: STRATA_ETOOBIG, STRATA_EBADSNAPPY, STRATA_EBADPROTO, or the store's
 * STRATA_EIO / STRATA_ENOSPC / STRATA_ECLOSED.  res is always filled. */
int ingest_write(ingest_t *ing, strata_arena_t *arena, enum ingest_proto proto, const void *body, size_t len,
                 int32_t tenant, int64_t now_ms, ingest_result_t *res);

/* The metadata remote write sent for tenant (docs/promql.md, "HTTP API"):
 * the latest entry per metric family, in memory only, at most
 * INGEST_METADATA_PER_TENANT families a tenant (later new families are
 * dropped; known ones still update).  Copies in arena, sorted by family;
 * metric (NULL or "" = all) keeps that family only.  STRATA_ENOMEM. */
#define INGEST_METADATA_PER_TENANT 10000
int ingest_metadata_list(ingest_t *ing, int32_t tenant, const char *metric, strata_arena_t *arena,
                         ingest_metadata_t **out, size_t *n);

/* ---- strings ----------------------------------------------------------- */

/* 1 when s (len bytes) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int ingest_valid_utf8(const char *s, size_t len);
/* A label name strata stores: [a-zA-Z_][a-zA-Z0-9_]* (Prometheus' legacy
 * scheme; ingest refuses others), so that what a query makes (label_replace,
 * label_join, count_values) can be written back through remote write. */
int ingest_valid_label_name(const char *s, size_t len);

#endif
