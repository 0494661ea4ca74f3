/*
 * selfmon.c: strata's self-monitoring: the counters and histograms the
 * server and remote write feed, and GET /metrics, which renders them with the
 * store's statistics in the Prometheus text format (docs/api.md,
 * "Operations").
 */
#include "selfmon.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_buf.h"
#include "strata_fmt.h"

static const double dur_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NDUR (sizeof dur_bounds / sizeof dur_bounds[0])
static const double fsync_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                       0.025,  0.05,    0.1,    0.25,  0.5,    1 };
#define NFSYNC (sizeof fsync_bounds / sizeof fsync_bounds[0])

typedef struct hist {
    uint64_t bucket[16]; /* non-cumulative; rendered cumulative */
    uint64_t count;
    double sum;
} hist_t;

static void hist_observe(hist_t *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i]) i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}

#define MAX_REQ_HISTS 64

typedef struct req_hist {
    const char *path; /* a route pattern or a fallback label: static storage */
    int code;
    hist_t h;
} req_hist_t;

struct api_selfmon {
    size_t (*extra)(void *ctx, char *buf, size_t cap);
    void *extra_ctx;
    remote_ship_t *_Atomic ship;
    atomic_int inflight;

    pthread_mutex_t mu; /* guards the rest */
    req_hist_t req[MAX_REQ_HISTS];
    size_t nreq;
    hist_t fsync;
    uint64_t samples_ingested, series_created;
    uint64_t rejected[INGEST_R_COUNT];
    uint64_t write_requests_rejected; /* whole requests refused before storage */
    uint64_t slow_closed[2];          /* connections closed: headers, body too slow */
};

/* Appends what fn renders (a counter may grow between two calls, so retry
 * with room to spare). */
static void put_extra(strata_buf_t *b, size_t (*fn)(void *ctx, char *buf, size_t cap), void *ctx)
{
    size_t cap = 4096;
    for (int tries = 0; tries < 4 && !b->failed; tries++) {
        char *t = malloc(cap);
        if (!t) {
            b->failed = 1;
            break;
        }
        size_t n = fn(ctx, t, cap);
        if (n < cap) strata_buf_put(b, t, n);
        free(t);
        if (n < cap) break;
        cap = n + 256;
    }
}

static size_t ship_render(void *ctx, char *buf, size_t cap) { return remote_ship_render(ctx, buf, cap); }

void api_selfmon_set_shipper(api_selfmon_t *m, remote_ship_t *ship) { atomic_store(&m->ship, ship); }

int api_selfmon_new(size_t (*extra)(void *ctx, char *buf, size_t cap), void *extra_ctx, api_selfmon_t **out)
{
    api_selfmon_t *m = calloc(1, sizeof *m);
    if (!m) return STRATA_ENOMEM;
    m->extra = extra;
    m->extra_ctx = extra_ctx;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return 0;
}

void api_selfmon_free(api_selfmon_t *m)
{
    if (!m) return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void api_selfmon_request_begin(api_selfmon_t *m) { atomic_fetch_add(&m->inflight, 1); }
void api_selfmon_request_end(api_selfmon_t *m) { atomic_fetch_sub(&m->inflight, 1); }
int api_selfmon_inflight(api_selfmon_t *m) { return atomic_load(&m->inflight); }

void api_selfmon_observe_fsync(api_selfmon_t *m, double secs)
{
    pthread_mutex_lock(&m->mu);
    hist_observe(&m->fsync, fsync_bounds, NFSYNC, secs);
    pthread_mutex_unlock(&m->mu);
}

void api_selfmon_observe_request(api_selfmon_t *m, const char *path, int code, double secs)
{
    pthread_mutex_lock(&m->mu);
    req_hist_t *e = NULL;
    for (size_t i = 0; i < m->nreq; i++)
        if (m->req[i].code == code && strcmp(m->req[i].path, path) == 0) {
            e = &m->req[i];
            break;
        }
    if (!e && m->nreq < MAX_REQ_HISTS) {
        e = &m->req[m->nreq++];
        e->path = path;
        e->code = code;
    }
    if (e) hist_observe(&e->h, dur_bounds, NDUR, secs);
    pthread_mutex_unlock(&m->mu);
}

void api_selfmon_write_stored(api_selfmon_t *m, const ingest_result_t *res)
{
    pthread_mutex_lock(&m->mu);
    m->samples_ingested += res->samples_written;
    m->series_created += res->series_created;
    for (int r = 0; r < INGEST_R_COUNT; r++) m->rejected[r] += res->rejected[r];
    pthread_mutex_unlock(&m->mu);
}

void api_selfmon_write_refused(api_selfmon_t *m)
{
    pthread_mutex_lock(&m->mu);
    m->write_requests_rejected++;
    pthread_mutex_unlock(&m->mu);
}

void api_selfmon_slow_closed(api_selfmon_t *m, unsigned headers, unsigned body)
{
    pthread_mutex_lock(&m->mu);
    m->slow_closed[0] += headers;
    m->slow_closed[1] += body;
    pthread_mutex_unlock(&m->mu);
}

/* ---- GET /metrics ------------------------------------------------------------ */

static void render_hist(strata_buf_t *b, const char *name, const char *labels, const hist_t *h,
                        const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += h->bucket[i];
        char le[STRATA_FMT_DOUBLE_BUFSZ];
        if (i < nb)
            strata_fmt_double(bounds[i], le, sizeof le);
        else
            snprintf(le, sizeof le, "+Inf");
        strata_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "", le,
                          (unsigned long long)cum);
    }
    char sum[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(h->sum, sum, sizeof sum);
    strata_buf_printf(b, "%s_sum%s%s%s %s\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", sum);
    strata_buf_printf(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
                      (unsigned long long)h->count);
}

static void render_metrics(api_selfmon_t *m, tsdb_t *db, strata_buf_t *b)
{
    pthread_mutex_lock(&m->mu);
    strata_buf_puts(b, "# HELP strata_ingested_samples_total Samples accepted by remote write (appended or "
                       "idempotent duplicates).\n"
                       "# TYPE strata_ingested_samples_total counter\n");
    strata_buf_printf(b, "strata_ingested_samples_total %llu\n", (unsigned long long)m->samples_ingested);
    strata_buf_puts(b, "# HELP strata_ingested_series_created_total Series created by remote write.\n"
                       "# TYPE strata_ingested_series_created_total counter\n");
    strata_buf_printf(b, "strata_ingested_series_created_total %llu\n",
                      (unsigned long long)m->series_created);
    strata_buf_puts(b, "# HELP strata_rejected_samples_total Samples (or histograms, exemplars) rejected by "
                       "remote write, by reason.\n"
                       "# TYPE strata_rejected_samples_total counter\n");
    for (int r = 0; r < INGEST_R_COUNT; r++)
        strata_buf_printf(b, "strata_rejected_samples_total{reason=\"%s\"} %llu\n",
                          ingest_reason_name((enum ingest_reason)r), (unsigned long long)m->rejected[r]);
    strata_buf_puts(b, "# HELP strata_write_requests_refused_total Remote-write requests refused as a whole "
                       "(bad body, auth, size, media type, store unavailable).\n"
                       "# TYPE strata_write_requests_refused_total counter\n");
    strata_buf_printf(b, "strata_write_requests_refused_total %llu\n",
                      (unsigned long long)m->write_requests_rejected);
    strata_buf_puts(b, "# HELP strata_http_slow_connections_closed_total Connections closed for not sending "
                       "their headers in --header-timeout (phase=headers) or their body at --body-min-rate "
                       "(phase=body).\n"
                       "# TYPE strata_http_slow_connections_closed_total counter\n");
    strata_buf_printf(b, "strata_http_slow_connections_closed_total{phase=\"headers\"} %llu\n",
                      (unsigned long long)m->slow_closed[0]);
    strata_buf_printf(b, "strata_http_slow_connections_closed_total{phase=\"body\"} %llu\n",
                      (unsigned long long)m->slow_closed[1]);
    strata_buf_puts(
        b, "# HELP strata_http_request_duration_seconds HTTP request latency by path and status code.\n"
           "# TYPE strata_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < m->nreq; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "path=\"%s\",code=\"%d\"", m->req[i].path, m->req[i].code);
        render_hist(b, "strata_http_request_duration_seconds", labels, &m->req[i].h, dur_bounds, NDUR);
    }
    strata_buf_puts(b, "# HELP strata_wal_fsync_duration_seconds WAL fsync latency.\n"
                       "# TYPE strata_wal_fsync_duration_seconds histogram\n");
    render_hist(b, "strata_wal_fsync_duration_seconds", "", &m->fsync, fsync_bounds, NFSYNC);
    pthread_mutex_unlock(&m->mu);

    strata_buf_printf(b,
                      "# HELP strata_http_requests_in_flight Requests being served.\n"
                      "# TYPE strata_http_requests_in_flight gauge\nstrata_http_requests_in_flight %d\n",
                      atomic_load(&m->inflight));
    strata_buf_printf(b,
                      "# HELP strata_ready 1 once the store is open and the WAL replayed.\n"
                      "# TYPE strata_ready gauge\nstrata_ready %d\n",
                      db ? 1 : 0);
    if (m->extra) put_extra(b, m->extra, m->extra_ctx);
    remote_ship_t *ship = atomic_load(&m->ship);
    if (ship) put_extra(b, ship_render, ship);
    if (!db) return;
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    struct {
        const char *name, *help;
        uint64_t v;
    } g[] = {
        { "strata_active_series", "Series with samples in the head.", st.head_series },
        { "strata_series", "Series in the index.", st.series },
        { "strata_head_samples", "Samples held in the head.", st.head_samples },
        { "strata_head_bytes", "Memory held by head chunks.", st.head_bytes },
        { "strata_blocks", "Persisted blocks.", st.blocks },
        { "strata_block_bytes", "Size of persisted blocks on disk.", st.block_bytes },
        { "strata_page_cache_bytes", "Decompressed block pages held in the shared page cache.",
          st.page_cache_bytes },
        { "strata_wal_bytes", "Size of the WAL on disk.", st.wal_bytes },
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        strata_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", g[i].name, g[i].help, g[i].name,
                          g[i].name, (unsigned long long)g[i].v);
    strata_buf_printf(b,
                      "# HELP strata_wal_fsyncs_total WAL fsyncs since start.\n"
                      "# TYPE strata_wal_fsyncs_total counter\nstrata_wal_fsyncs_total %llu\n",
                      (unsigned long long)st.wal_fsyncs);
    strata_buf_printf(b,
                      "# HELP strata_wal_corruptions_total Torn or corrupt WAL records cut at open.\n"
                      "# TYPE strata_wal_corruptions_total counter\nstrata_wal_corruptions_total %llu\n",
                      (unsigned long long)st.wal_corruptions);
    strata_buf_printf(
        b,
        "# HELP strata_block_pages_damaged_total Block chunk and rollup pages found damaged "
        "(CRC, decompression or decoding) and not rebuilt since start; reads skip them and say so.\n"
        "# TYPE strata_block_pages_damaged_total counter\nstrata_block_pages_damaged_total %llu\n",
        (unsigned long long)st.block_pages_damaged);
    strata_buf_printf(
        b,
        "# HELP strata_block_pages_rebuilt_total Block chunk pages found damaged and rebuilt exactly from "
        "the block's parity since start (served in full).\n"
        "# TYPE strata_block_pages_rebuilt_total counter\nstrata_block_pages_rebuilt_total %llu\n",
        (unsigned long long)st.block_pages_rebuilt);
    strata_buf_printf(
        b,
        "# HELP strata_block_files_repaired_total Block files found damaged at open and rewritten: "
        "meta or index from the block's copy, the copy from meta and index.\n"
        "# TYPE strata_block_files_repaired_total counter\n"
        "strata_block_files_repaired_total{file=\"meta\"} %llu\n"
        "strata_block_files_repaired_total{file=\"index\"} %llu\n"
        "strata_block_files_repaired_total{file=\"copy\"} %llu\n",
        (unsigned long long)st.block_meta_repaired, (unsigned long long)st.block_index_repaired,
        (unsigned long long)st.block_copy_repaired);
}

static int h_metrics(api_call_t *c, void *ctx)
{
    strata_buf_t b = { 0 };
    render_metrics(ctx, api_call_db(c), &b);
    int rc = b.failed ? api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "")
                      : api_call_reply(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    free(b.data);
    return rc;
}

api_route_t api_selfmon_route(api_selfmon_t *m)
{
    return (api_route_t){
        "GET", "/metrics", 0, h_metrics, m, API_ROUTE_UNREADY | API_ROUTE_ANY_BODY | API_ROUTE_PATH_LABEL
    };
}
