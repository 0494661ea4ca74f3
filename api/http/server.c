/*
 * server.c: the HTTP server: libmicrohttpd with an internal thread pool,
 * connection limit and timeout, routing, request bodies with a size limit,
 * JSON errors, remote-write, health/readiness, and /metrics.
 *
 * Readiness: the listener comes up before the store is open so /healthz
 * answers during a long WAL replay; /readyz and data endpoints say 503 until
 * api_server_set_store().  Shutdown: MHD_quiesce_daemon() closes the listen
 * socket, requests that start on open connections after that get 503, and we wait
 * for the in-flight ones (counted from the first handler call to MHD's
 * completion callback) before stopping the daemon.
 */
#include "server_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <snappy-c.h>

#include "strata_fmt.h"
#include "strata_log.h"

/* ---- routes ----------------------------------------------------------------- */

enum route { R_WRITE, R_EXPORT, R_METRICS, R_HEALTHZ, R_READYZ, R_API_OTHER, R_NOT_FOUND, R_COUNT };
static const char *const route_path[R_COUNT] = {
    "/api/v1/write", "/api/v1/export", "/metrics", "/healthz", "/readyz", "/api/v1/other", "other",
};

static enum route route_for(const char *url)
{
    for (int r = 0; r < R_API_OTHER; r++)
        if (strcmp(url, route_path[r]) == 0) return (enum route)r;
    if (strncmp(url, "/api/v1/", 8) == 0) return R_API_OTHER;
    return R_NOT_FOUND;
}

/* ---- self-monitoring ---------------------------------------------------------- */

static const double dur_bounds[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NDUR (sizeof dur_bounds / sizeof dur_bounds[0])
static const double fsync_bounds[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1 };
#define NFSYNC (sizeof fsync_bounds / sizeof fsync_bounds[0])

typedef struct hist {
    uint64_t bucket[16];  /* non-cumulative; rendered cumulative */
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
    const char *path;  /* a route_path[] entry or a route pattern: static storage */
    int code;
    hist_t h;
} req_hist_t;

struct api_server {
    struct MHD_Daemon *daemon;
    api_server_config_t cfg;
    char *listen;
    _Atomic(tsdb_t *) db;
    ingest_t *ing;
    const api_read_source_t *reader;  /* set before db, so a non-NULL db means both */
    atomic_int stopping;
    atomic_int inflight;

    pthread_mutex_t mu;  /* guards the metrics below */
    req_hist_t req[MAX_REQ_HISTS];
    size_t nreq;
    hist_t fsync;
    uint64_t samples_ingested, series_created, histograms_in, exemplars_in;
    uint64_t rejected[INGEST_R_COUNT];
    uint64_t write_requests_rejected;  /* whole requests refused before storage */
};

typedef struct request {
    enum route route;
    const char *path_label;  /* for the duration histogram */
    strata_arena_t *arena;   /* extension routes only */
    struct timespec t0;
    int status;
    int counted;         /* in srv->inflight */
    int late;            /* arrived after shutdown began: refused with 503 */
    char *body;
    size_t len, cap;
    int too_big;
} request_t;

void api_server_observe_fsync(double seconds, void *cls)
{
    api_server_t *srv = cls;
    pthread_mutex_lock(&srv->mu);
    hist_observe(&srv->fsync, fsync_bounds, NFSYNC, seconds);
    pthread_mutex_unlock(&srv->mu);
}

static void observe_request(api_server_t *srv, const char *path, int code, double secs)
{
    pthread_mutex_lock(&srv->mu);
    req_hist_t *e = NULL;
    for (size_t i = 0; i < srv->nreq; i++)
        if (srv->req[i].code == code && strcmp(srv->req[i].path, path) == 0) { e = &srv->req[i]; break; }
    if (!e && srv->nreq < MAX_REQ_HISTS) {
        e = &srv->req[srv->nreq++];
        e->path = path;
        e->code = code;
    }
    if (e) hist_observe(&e->h, dur_bounds, NDUR, secs);
    pthread_mutex_unlock(&srv->mu);
}

static void render_hist(strata_buf_t *b, const char *name, const char *labels, const hist_t *h,
                        const double *bounds, size_t nb)
{
    uint64_t cum = 0;
    for (size_t i = 0; i <= nb; i++) {
        cum += h->bucket[i];
        char le[STRATA_FMT_DOUBLE_BUFSZ];
        if (i < nb) strata_fmt_double(bounds[i], le, sizeof le);
        else snprintf(le, sizeof le, "+Inf");
        strata_buf_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels, *labels ? "," : "", le,
                       (unsigned long long)cum);
    }
    char sum[STRATA_FMT_DOUBLE_BUFSZ];
    strata_fmt_double(h->sum, sum, sizeof sum);
    strata_buf_printf(b, "%s_sum%s%s%s %s\n", name, *labels ? "{" : "", labels, *labels ? "}" : "", sum);
    strata_buf_printf(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels, *labels ? "}" : "",
                   (unsigned long long)h->count);
}

static void render_metrics(api_server_t *srv, strata_buf_t *b)
{
    tsdb_t *db = atomic_load(&srv->db);
    pthread_mutex_lock(&srv->mu);
    strata_buf_puts(b, "# HELP strata_ingested_samples_total Samples accepted by remote write (appended or idempotent duplicates).\n"
                    "# TYPE strata_ingested_samples_total counter\n");
    strata_buf_printf(b, "strata_ingested_samples_total %llu\n", (unsigned long long)srv->samples_ingested);
    strata_buf_puts(b, "# HELP strata_ingested_series_created_total Series created by remote write.\n"
                    "# TYPE strata_ingested_series_created_total counter\n");
    strata_buf_printf(b, "strata_ingested_series_created_total %llu\n", (unsigned long long)srv->series_created);
    strata_buf_puts(b, "# HELP strata_rejected_samples_total Samples (or histograms, exemplars) rejected by remote write, by reason.\n"
                    "# TYPE strata_rejected_samples_total counter\n");
    for (int r = 0; r < INGEST_R_COUNT; r++)
        strata_buf_printf(b, "strata_rejected_samples_total{reason=\"%s\"} %llu\n",
                       ingest_reason_name((enum ingest_reason)r), (unsigned long long)srv->rejected[r]);
    strata_buf_puts(b, "# HELP strata_write_requests_refused_total Remote-write requests refused as a whole (bad body, auth, size, media type, store unavailable).\n"
                    "# TYPE strata_write_requests_refused_total counter\n");
    strata_buf_printf(b, "strata_write_requests_refused_total %llu\n", (unsigned long long)srv->write_requests_rejected);
    strata_buf_puts(b, "# HELP strata_http_request_duration_seconds HTTP request latency by path and status code.\n"
                    "# TYPE strata_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i < srv->nreq; i++) {
        char labels[128];
        snprintf(labels, sizeof labels, "path=\"%s\",code=\"%d\"", srv->req[i].path, srv->req[i].code);
        render_hist(b, "strata_http_request_duration_seconds", labels, &srv->req[i].h, dur_bounds, NDUR);
    }
    strata_buf_puts(b, "# HELP strata_wal_fsync_duration_seconds WAL fsync latency.\n"
                    "# TYPE strata_wal_fsync_duration_seconds histogram\n");
    render_hist(b, "strata_wal_fsync_duration_seconds", "", &srv->fsync, fsync_bounds, NFSYNC);
    pthread_mutex_unlock(&srv->mu);

    strata_buf_printf(b, "# HELP strata_http_requests_in_flight Requests being served.\n"
                      "# TYPE strata_http_requests_in_flight gauge\nstrata_http_requests_in_flight %d\n",
                   atomic_load(&srv->inflight));
    strata_buf_printf(b, "# HELP strata_ready 1 once the store is open and the WAL replayed.\n"
                      "# TYPE strata_ready gauge\nstrata_ready %d\n", db ? 1 : 0);
    if (srv->cfg.extra_metrics) {
        /* counters may grow between two calls, so retry with room to spare */
        size_t cap = 4096;
        for (int tries = 0; tries < 4 && !b->failed; tries++) {
            char *t = malloc(cap);
            if (!t) { b->failed = 1; break; }
            size_t n = srv->cfg.extra_metrics(srv->cfg.extra_metrics_ctx, t, cap);
            if (n < cap) strata_buf_put(b, t, n);
            free(t);
            if (n < cap) break;
            cap = n + 256;
        }
    }
    if (!db) return;
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    struct { const char *name, *help; uint64_t v; } g[] = {
        { "strata_active_series", "Series with samples in the head.", st.head_series },
        { "strata_series", "Series in the index.", st.series },
        { "strata_head_samples", "Samples held in the head.", st.head_samples },
        { "strata_head_bytes", "Memory held by head chunks.", st.head_bytes },
        { "strata_blocks", "Persisted blocks.", st.blocks },
        { "strata_block_bytes", "Size of persisted blocks on disk.", st.block_bytes },
        { "strata_page_cache_bytes", "Decompressed block pages held in the shared page cache.", st.page_cache_bytes },
        { "strata_wal_bytes", "Size of the WAL on disk.", st.wal_bytes },
    };
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        strata_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", g[i].name, g[i].help, g[i].name,
                       g[i].name, (unsigned long long)g[i].v);
    strata_buf_printf(b, "# HELP strata_wal_fsyncs_total WAL fsyncs since start.\n"
                      "# TYPE strata_wal_fsyncs_total counter\nstrata_wal_fsyncs_total %llu\n",
                   (unsigned long long)st.wal_fsyncs);
    strata_buf_printf(b, "# HELP strata_wal_corruptions_total Torn or corrupt WAL records cut at open.\n"
                      "# TYPE strata_wal_corruptions_total counter\nstrata_wal_corruptions_total %llu\n",
                   (unsigned long long)st.wal_corruptions);
}

/* ---- buffers and responses ------------------------------------------------------ */

static struct MHD_Response *text_response(const char *body, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r) MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

struct MHD_Response *api_error_response(int status, const char *message, const char *details)
{
    json_t *o = json_pack("{s:i,s:s,s:s}", "code", status, "message", message ? message : "",
                          "details", details ? details : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct MHD_Response *r;
    if (s) {
        size_t n = strlen(s);
        char *body = malloc(n + 2);
        if (body) { memcpy(body, s, n); body[n] = '\n'; body[n + 1] = '\0'; }
        free(s);
        r = body ? MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE)
                 : text_response("{\"code\":503,\"message\":\"out of memory\",\"details\":\"\"}\n", "application/json");
        if (!body) return r;
    } else {
        r = text_response("{\"code\":503,\"message\":\"out of memory\",\"details\":\"\"}\n", "application/json");
    }
    if (r) MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

static enum MHD_Result reply(struct MHD_Connection *conn, request_t *rq, int status, struct MHD_Response *r)
{
    rq->status = status;
    if (!r) return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, request_t *rq, int status,
                                  const char *message, const char *details)
{
    return reply(conn, rq, status, api_error_response(status, message, details));
}

static enum MHD_Result send_strata_error(struct MHD_Connection *conn, request_t *rq, int err,
                                         const char *message, const char *details)
{
    int status = api_status_for_error(err);
    struct MHD_Response *r = api_error_response(status, message ? message : strata_strerror(err), details);
    if (r && status == 503) MHD_add_response_header(r, "Retry-After", "5");
    return reply(conn, rq, status, r);
}

/* ---- endpoints -------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Auth for a data endpoint; answers the error itself and returns 0 when it did. */
static int authorize(api_server_t *srv, struct MHD_Connection *conn, request_t *rq, unsigned scope,
                     api_principal_t *who, enum MHD_Result *ret)
{
    char msg[160] = "";
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    int rc = api_auth_check(srv->cfg.auth, h, scope, now_ms() / 1000, who, msg, sizeof msg);
    if (rc == 0) return 1;
    int status = api_status_for_error(rc);
    struct MHD_Response *r = api_error_response(status, strata_strerror(rc), msg);
    if (r && status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    *ret = reply(conn, rq, status, r);
    return 0;
}

static void write_headers(struct MHD_Response *r, const ingest_result_t *res)
{
    char n[32];
    snprintf(n, sizeof n, "%zu", res->samples_written);
    MHD_add_response_header(r, "X-Prometheus-Remote-Write-Samples-Written", n);
    snprintf(n, sizeof n, "%zu", res->histograms_written);
    MHD_add_response_header(r, "X-Prometheus-Remote-Write-Histograms-Written", n);
    snprintf(n, sizeof n, "%zu", res->exemplars_written);
    MHD_add_response_header(r, "X-Prometheus-Remote-Write-Exemplars-Written", n);
}

/* Each HTTP thread keeps one write arena and resets it between requests:
 * unpacking takes about 8x the body in small allocations, and getting that
 * memory from malloc and giving it back on every request cost more page
 * faults than the decoding itself (2.1 -> 0.9 us per series in a 2000-series
 * batch).  The first block is kept; blocks beyond it are freed at reset, so a
 * huge request does not pin its memory. */
#define WRITE_ARENA_BLOCK (4u << 20)
static pthread_key_t write_arena_key;
static pthread_once_t write_arena_once = PTHREAD_ONCE_INIT;

static void write_arena_destroy(void *a) { strata_arena_free(a); }
static void write_arena_key_init(void) { pthread_key_create(&write_arena_key, write_arena_destroy); }

static strata_arena_t *write_arena(void)
{
    pthread_once(&write_arena_once, write_arena_key_init);
    strata_arena_t *a = pthread_getspecific(write_arena_key);
    if (!a && (a = strata_arena_new(WRITE_ARENA_BLOCK)) && pthread_setspecific(write_arena_key, a) != 0) {
        strata_arena_free(a);
        a = NULL;
    }
    return a;
}

static enum MHD_Result handle_write(api_server_t *srv, struct MHD_Connection *conn, request_t *rq,
                                    tsdb_t *db)
{
    enum MHD_Result ret;
    api_principal_t who;
    if (!authorize(srv, conn, rq, API_SCOPE_METRICS_WRITE, &who, &ret)) goto refused;
    enum ingest_proto proto;
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *ce = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    int rc = ingest_parse_content_type(ct, ce, &proto);
    if (rc) {
        char d[300];
        snprintf(d, sizeof d, "Content-Type %.100s, Content-Encoding %.50s: want application/x-protobuf "
                 "(proto=prometheus.WriteRequest or io.prometheus.write.v2.Request) with snappy",
                 ct ? ct : "(none)", ce ? ce : "(none)");
        ret = send_strata_error(conn, rq, rc, "unsupported media type", d);
        goto refused;
    }
    if (!db) {
        ret = send_strata_error(conn, rq, STRATA_ECLOSED, "store not ready", "the WAL is being replayed; retry");
        goto refused;
    }
    char d[200];
    if (rq->too_big) {
        snprintf(d, sizeof d, "the body is over the limit of %zu bytes (--max-request-bytes)", srv->cfg.max_request_bytes);
        ret = send_strata_error(conn, rq, STRATA_ETOOBIG, NULL, d);
        goto refused;
    }
    if (rq->len == 0) {
        ret = send_strata_error(conn, rq, STRATA_EINVAL, "empty request body", "a remote-write body is a snappy-compressed protobuf message");
        goto refused;
    }
    strata_arena_t *arena = write_arena();
    if (!arena) { ret = send_strata_error(conn, rq, STRATA_ENOMEM, NULL, ""); goto refused; }
    /* unpacked protobuf takes a few times the wire size; past this it is a bomb */
    strata_arena_set_cap(arena, srv->cfg.max_request_bytes * 6 + (64u << 20));
    ingest_result_t res;
    rc = ingest_write(srv->ing, arena, proto, rq->body, rq->len, who.tenant_id, now_ms(), &res);
    strata_arena_reset(arena);
    switch (rc) {
    case STRATA_ETOOBIG:
        snprintf(d, sizeof d, "the decompressed body is over the limit of %zu bytes (--max-request-bytes)",
                 srv->cfg.max_request_bytes);
        ret = send_strata_error(conn, rq, rc, NULL, d);
        goto refused;
    case STRATA_EBADSNAPPY:
        ret = send_strata_error(conn, rq, rc, NULL, "the body is not a valid snappy block (remote write uses the block format, not framed)");
        goto refused;
    case STRATA_EBADPROTO:
        ret = send_strata_error(conn, rq, rc, NULL,
                                proto == INGEST_PROTO_V2 ? "cannot unpack io.prometheus.write.v2.Request"
                                                         : "cannot unpack prometheus.WriteRequest");
        goto refused;
    case 0: case STRATA_EINVAL: case STRATA_ELIMIT:
        break;
    default:
        strata_error("remote write: store refused the batch", "err=\"%s\"", strata_strerror(rc));
        ret = send_strata_error(conn, rq, rc, "store cannot take writes", strata_strerror(rc));
        goto refused;
    }
    pthread_mutex_lock(&srv->mu);
    srv->samples_ingested += res.samples_written;
    srv->series_created += res.series_created;
    for (int r = 0; r < INGEST_R_COUNT; r++) srv->rejected[r] += res.rejected[r];
    pthread_mutex_unlock(&srv->mu);
    struct MHD_Response *r;
    int status;
    if (rc == 0) {
        status = 204;
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        status = api_status_for_error(rc);
        r = api_error_response(status, res.message, res.details);
    }
    if (r && proto == INGEST_PROTO_V2) write_headers(r, &res);
    return reply(conn, rq, status, r);

refused:
    pthread_mutex_lock(&srv->mu);
    srv->write_requests_rejected++;
    pthread_mutex_unlock(&srv->mu);
    return ret;
}

/* ---- extension routes ----------------------------------------------------------------- */

#define MAX_SEGMENTS 4
#define MAX_CALL_HEADERS 8

struct api_call {
    api_server_t *srv;
    struct MHD_Connection *conn;
    request_t *rq;
    tsdb_t *db;
    const api_read_source_t *reader;
    api_principal_t who;
    int64_t now_ms;
    const char *seg[MAX_SEGMENTS];
    size_t nseg;
    const char *hname[MAX_CALL_HEADERS], *hvalue[MAX_CALL_HEADERS];
    size_t nhdr;
    int replied;
    enum MHD_Result ret;
};

/* Matches url against pattern; captures {} segments (URL-decoded) into c. */
static int route_match(const char *pattern, const char *url, api_call_t *c)
{
    const char *p = pattern, *u = url;
    c->nseg = 0;
    while (*p && *u) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(u, '/');
            size_t n = end ? (size_t)(end - u) : strlen(u);
            if (n == 0 || c->nseg == MAX_SEGMENTS) return 0;
            char *seg = strata_arena_strndup(c->rq->arena, u, n);
            if (!seg) return 0;
            seg[MHD_http_unescape(seg)] = '\0';
            c->seg[c->nseg++] = seg;
            p += 2;
            u += n;
            continue;
        }
        if (*p != *u) return 0;
        p++;
        u++;
    }
    return *p == '\0' && *u == '\0';
}

static enum MHD_Result dispatch_route(api_server_t *srv, struct MHD_Connection *conn, request_t *rq,
                                      const char *url, const char *method, tsdb_t *db)
{
    if (!rq->arena && !(rq->arena = strata_arena_new(0)))
        return send_strata_error(conn, rq, STRATA_ENOMEM, NULL, "");
    api_call_t c = { .srv = srv, .conn = conn, .rq = rq, .db = db, .reader = srv->reader, .now_ms = now_ms() };
    const api_route_t *hit = NULL;
    int other_method = 0;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    for (size_t i = 0; i < srv->cfg.nroutes && !hit; i++) {
        if (!route_match(srv->cfg.routes[i].pattern, url, &c)) continue;
        if (strcmp(srv->cfg.routes[i].method, m) == 0) hit = &srv->cfg.routes[i];
        else other_method = 1;
    }
    if (!hit) {
        if (other_method) return send_error(conn, rq, 405, "method not allowed", method);
        return send_strata_error(conn, rq, STRATA_ENOTFOUND, "unknown API path",
                                 "see docs/api.md for the paths strata serves");
    }
    rq->path_label = hit->pattern;
    enum MHD_Result ret;
    if (!authorize(srv, conn, rq, hit->scope, &c.who, &ret)) return ret;
    if (!db) return send_strata_error(conn, rq, STRATA_ECLOSED, "store not ready", "the WAL is being replayed; retry");
    if (rq->too_big) {
        char d[160];
        snprintf(d, sizeof d, "the body is over the limit of %zu bytes", srv->cfg.max_request_bytes);
        return send_strata_error(conn, rq, STRATA_ETOOBIG, NULL, d);
    }
    int rc = hit->fn(&c, hit->ctx);
    if (c.replied) return c.ret;
    if (rc == 0) {
        strata_error("handler returned without replying", "path=%s", hit->pattern);
        rc = STRATA_EIO;
    }
    return send_strata_error(conn, rq, rc, NULL, "");
}

const char *api_call_param(const api_call_t *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct param_list {
    strata_arena_t *arena;
    const char *name;
    const char **vals;
    size_t n, cap;
} param_list_t;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    param_list_t *l = cls;
    if (strcmp(key, l->name) != 0) return MHD_YES;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        const char **nv = strata_arena_alloc(l->arena, ncap * sizeof *nv);
        if (!nv) return MHD_NO;
        if (l->n) memcpy(nv, l->vals, l->n * sizeof *nv);
        l->vals = nv;
        l->cap = ncap;
    }
    l->vals[l->n++] = value ? value : "";
    return MHD_YES;
}

size_t api_call_params(api_call_t *c, const char *name, const char ***vals)
{
    param_list_t l = { .arena = c->rq->arena, .name = name };
    MHD_get_connection_values(c->conn, MHD_GET_ARGUMENT_KIND, collect_param, &l);
    *vals = l.vals;
    return l.n;
}

const char *api_call_header(const api_call_t *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

const char *api_call_segment(const api_call_t *c, size_t i) { return i < c->nseg ? c->seg[i] : NULL; }
const api_principal_t *api_call_principal(const api_call_t *c) { return &c->who; }
tsdb_t *api_call_db(const api_call_t *c) { return c->db; }
const api_read_source_t *api_call_reader(const api_call_t *c) { return c->reader; }
strata_arena_t *api_call_arena(api_call_t *c) { return c->rq->arena; }
int64_t api_call_now_ms(const api_call_t *c) { return c->now_ms; }

const char *api_call_body(const api_call_t *c, size_t *len)
{
    *len = c->rq->len;
    return c->rq->body ? c->rq->body : "";
}

int api_call_add_header(api_call_t *c, const char *name, const char *value)
{
    if (c->nhdr == MAX_CALL_HEADERS) return STRATA_ELIMIT;
    c->hname[c->nhdr] = strata_arena_strdup(c->rq->arena, name);
    c->hvalue[c->nhdr] = strata_arena_strdup(c->rq->arena, value);
    if (!c->hname[c->nhdr] || !c->hvalue[c->nhdr]) return STRATA_ENOMEM;
    c->nhdr++;
    return 0;
}

static int call_send(api_call_t *c, int status, struct MHD_Response *r)
{
    if (c->replied) {
        if (r) MHD_destroy_response(r);
        strata_error("handler replied twice", "path=%s", c->rq->path_label);
        return STRATA_EINVAL;
    }
    c->replied = 1;
    if (r)
        for (size_t i = 0; i < c->nhdr; i++) MHD_add_response_header(r, c->hname[i], c->hvalue[i]);
    c->ret = reply(c->conn, c->rq, status, r);
    return c->ret == MHD_YES ? 0 : STRATA_EIO;
}

int api_call_reply(api_call_t *c, int status, const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    if (r) MHD_add_response_header(r, "Content-Type", content_type ? content_type : "application/json");
    return call_send(c, status, r);
}

int api_call_reply_fd(api_call_t *c, int status, const char *content_type, int fd, uint64_t size)
{
    /* MHD owns fd from here and closes it with the response */
    struct MHD_Response *r = MHD_create_response_from_fd64(size, fd);
    if (!r) {
        close(fd);
        return api_call_reply_strata_error(c, STRATA_ENOMEM, NULL, "");
    }
    MHD_add_response_header(r, "Content-Type", content_type ? content_type : "application/octet-stream");
    return call_send(c, status, r);
}

int api_call_reply_error(api_call_t *c, int status, const char *message, const char *details)
{
    return call_send(c, status, api_error_response(status, message, details));
}

int api_call_reply_strata_error(api_call_t *c, int err, const char *message, const char *details)
{
    int status = api_status_for_error(err);
    struct MHD_Response *r = api_error_response(status, message ? message : strata_strerror(err), details);
    if (r && status == 503) MHD_add_response_header(r, "Retry-After", "5");
    return call_send(c, status, r);
}

int api_call_int_param(const api_call_t *c, const char *name, int64_t *out)
{
    const char *v = api_call_param(c, name);
    if (!v || !*v) return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v) return -1;
    *out = x;
    return 1;
}

int api_call_reply_bad_param(api_call_t *c, const char *name, const char *why)
{
    char msg[96];
    snprintf(msg, sizeof msg, "invalid %s parameter", name);
    return api_call_reply_strata_error(c, STRATA_EINVAL, msg, why);
}

int api_call_list_params(api_call_t *c, size_t max_filters, int64_t max_limit, api_list_params_t *p)
{
    memset(p, 0, sizeof *p);
    strata_arena_t *a = api_call_arena(c);
    const char **vals;
    size_t nv = api_call_params(c, "filterBy", &vals);
    const char **terms = strata_arena_calloc(a, max_filters + 1, sizeof *terms);
    size_t nt = 0;
    for (size_t i = 0; terms && i < nv; i++) {
        char *copy = strata_arena_strdup(a, vals[i]);
        for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t; t = strtok_r(NULL, ",", &save)) {
            if (nt == max_filters) {
                char why[48];
                snprintf(why, sizeof why, "at most %zu terms", max_filters);
                api_call_reply_bad_param(c, "filterBy", why);
                return 0;
            }
            terms[nt++] = t;
        }
    }
    p->filter_by = terms;
    p->nfilter = nt;
    p->sort_by = api_call_param(c, "sortBy");
    p->sort_order = api_call_param(c, "sortOrder");
    p->search = api_call_param(c, "search");
    int r = api_call_int_param(c, "offset", &p->offset);
    if (r < 0 || p->offset < 0) { api_call_reply_bad_param(c, "offset", "want an integer >= 0"); return 0; }
    r = api_call_int_param(c, "limit", &p->limit);
    if (r < 0 || (r == 1 && (p->limit < 1 || p->limit > max_limit))) {
        char why[48];
        snprintf(why, sizeof why, "want an integer 1..%lld", (long long)max_limit);
        api_call_reply_bad_param(c, "limit", why);
        return 0;
    }
    return 1;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static enum MHD_Result dispatch(api_server_t *srv, struct MHD_Connection *conn, request_t *rq,
                                const char *url, const char *method)
{
    int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    tsdb_t *db = atomic_load(&srv->db);
    enum MHD_Result ret;
    api_principal_t who;
    switch (rq->route) {
    case R_HEALTHZ:
        if (!is_get) break;
        return reply(conn, rq, 200, text_response("ok\n", "text/plain; charset=utf-8"));
    case R_READYZ:
        if (!is_get) break;
        if (atomic_load(&srv->stopping))
            return send_strata_error(conn, rq, STRATA_ECLOSED, "not ready", "shutting down");
        if (!db) return send_strata_error(conn, rq, STRATA_ECLOSED, "not ready", "WAL replay in progress");
        return reply(conn, rq, 200, text_response("ready\n", "text/plain; charset=utf-8"));
    case R_METRICS: {
        if (!is_get) break;
        if (!authorize(srv, conn, rq, 0, &who, &ret)) return ret;
        strata_buf_t b = { 0 };
        render_metrics(srv, &b);
        if (b.failed) { free(b.data); return send_strata_error(conn, rq, STRATA_ENOMEM, NULL, ""); }
        struct MHD_Response *r = MHD_create_response_from_buffer(b.len, b.data, MHD_RESPMEM_MUST_FREE);
        if (!r) free(b.data);
        else MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        return reply(conn, rq, 200, r);
    }
    case R_WRITE:
        if (strcmp(method, "POST") != 0) break;
        return handle_write(srv, conn, rq, db);
    case R_EXPORT: {
        if (!is_get) break;
        if (!authorize(srv, conn, rq, API_SCOPE_METRICS_READ, &who, &ret)) return ret;
        if (!db) return send_strata_error(conn, rq, STRATA_ECLOSED, "store not ready", "the WAL is being replayed; retry");
        int status = 200;
        struct MHD_Response *r = api_export_response(srv->reader, conn, who.tenant_id, &status);
        return reply(conn, rq, status, r);
    }
    case R_API_OTHER:
        return dispatch_route(srv, conn, rq, url, method, db);
    default:
        return send_strata_error(conn, rq, STRATA_ENOTFOUND, "not found", "no such endpoint");
    }
    return send_error(conn, rq, 405, "method not allowed", method);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    api_server_t *srv = cls;
    request_t *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->t0);
        rq->route = route_for(url);
        rq->path_label = route_path[rq->route];
        rq->counted = 1;
        atomic_fetch_add(&srv->inflight, 1);
        /* requests already in flight when shutdown begins are finished, not refused */
        rq->late = atomic_load(&srv->stopping);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Keep reading an oversized body (discarding it) so the client gets
         * the 413 instead of a reset connection. */
        size_t raw_limit = snappy_max_compressed_length(srv->cfg.max_request_bytes);
        if (!rq->too_big && rq->len + *upload_size > raw_limit) {
            rq->too_big = 1;
            free(rq->body);
            rq->body = NULL;
            rq->len = rq->cap = 0;
        }
        if (!rq->too_big) {
            if (rq->len + *upload_size > rq->cap) {
                size_t ncap = rq->cap ? rq->cap : 64 * 1024;
                while (ncap < rq->len + *upload_size) ncap *= 2;
                char *nb = realloc(rq->body, ncap);
                if (!nb) return MHD_NO;
                rq->body = nb;
                rq->cap = ncap;
            }
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->late && rq->route != R_HEALTHZ)
        return send_strata_error(conn, rq, STRATA_ECLOSED, "shutting down", "the server is stopping; retry");
    return dispatch(srv, conn, rq, url, method);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    api_server_t *srv = cls;
    request_t *rq = *con_cls;
    if (!rq) return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - rq->t0.tv_sec) + (double)(t1.tv_nsec - rq->t0.tv_nsec) / 1e9;
    int code = rq->status ? rq->status : 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !rq->status) code = 499;
    observe_request(srv, rq->path_label, code, secs);
    STRATA_LOG_DEBUG_("request", "path=%s code=%d seconds=%.6f bytes_in=%zu", rq->path_label, code,
                      secs, rq->len);
    strata_arena_free(rq->arena);
    if (rq->counted) atomic_fetch_sub(&srv->inflight, 1);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    char q[600];
    strata_warn("http", "detail=%s", strata_log_quote(q, sizeof q, msg));
}

/* ---- lifecycle ----------------------------------------------------------------------- */

/* host:port or [v6]:port into a sockaddr. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, int *v6)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon) return STRATA_EINVAL;
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { h++; hl -= 2; }
    if (hl >= sizeof host) return STRATA_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) return STRATA_EINVAL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *ai;
    if (getaddrinfo(hl ? host : NULL, NULL, &hints, &ai) != 0) return STRATA_EINVAL;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (*v6) ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

int api_server_start(const api_server_config_t *cfg, api_server_t **out)
{
    api_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) return STRATA_ENOMEM;
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->mu, NULL);
    struct sockaddr_storage ss;
    int v6 = 0;
    if (parse_listen(cfg->listen, &ss, &v6)) {
        strata_error("bad --listen address", "listen=%s", cfg->listen);
        free(srv);
        return STRATA_EINVAL;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    if (v6) flags |= MHD_USE_IPv6;
    if (cfg->tls_cert_pem) flags |= MHD_USE_TLS;
    unsigned threads = cfg->threads ? cfg->threads : 4;
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key_pem },
        { MHD_OPTION_END, 0, NULL },
    };
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, answer, srv,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections ? cfg->max_connections : 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s ? cfg->connection_timeout_s : 60u,
        MHD_OPTION_NOTIFY_COMPLETED, completed, srv,
        MHD_OPTION_ARRAY, cfg->tls_cert_pem ? tls_opts : &tls_opts[2],
        MHD_OPTION_END);
    if (!srv->daemon) {
        strata_error("cannot listen", "listen=%s err=\"%s\"", cfg->listen, strerror(errno));
        pthread_mutex_destroy(&srv->mu);
        free(srv);
        return STRATA_EIO;
    }
    strata_info("listening", "listen=%s threads=%u tls=%d", cfg->listen, threads, cfg->tls_cert_pem != NULL);
    *out = srv;
    return 0;
}

void api_server_set_store(api_server_t *srv, tsdb_t *db, ingest_t *ing,
                          const api_read_source_t *reader)
{
    srv->ing = ing;
    srv->reader = reader;
    atomic_store(&srv->db, db);
}

void api_server_stop(api_server_t *srv)
{
    if (!srv) return;
    atomic_store(&srv->stopping, 1);
    MHD_socket s = MHD_quiesce_daemon(srv->daemon);
    if (s != MHD_INVALID_SOCKET) close(s);
    unsigned waited_ms = 0, limit_ms = (srv->cfg.shutdown_timeout_s ? srv->cfg.shutdown_timeout_s : 30) * 1000;
    while (atomic_load(&srv->inflight) > 0 && waited_ms < limit_ms) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        waited_ms += 10;
    }
    if (atomic_load(&srv->inflight) > 0)
        strata_warn("shutdown: requests still in flight, closing them", "inflight=%d", atomic_load(&srv->inflight));
    MHD_stop_daemon(srv->daemon);
    pthread_mutex_destroy(&srv->mu);
    free(srv);
}
