/*
 * server.c: the HTTP server: libmicrohttpd with one thread per connection
 * (4 MiB stacks, as many threads as --max-connections at most), connection
 * limit and timeout; request bodies with a size limit; the one
 * route table (the server's own routes, then the configured ones) and the
 * dispatch that does what every route shares (docs/api.md, "Routes");
 * readiness (/healthz, /readyz) and graceful shutdown.
 *
 * Readiness: the listener comes up before the store is open so /healthz
 * answers during a long WAL replay; /readyz and data endpoints say 503 until
 * api_server_set_store().  Shutdown: MHD_quiesce_daemon() and shutdown()
 * stop the listening (the socket is closed after MHD_stop_daemon, as MHD
 * requires),
 * requests that start on open connections after that get 503, and we wait
 * for the in-flight ones (counted from the first handler call to MHD's
 * completion callback) before stopping the daemon.
 *
 * Threads (docs/api.md, "Threads"): a handler runs on its connection's own
 * thread, so a slow request (a forced cut, a large write, a long query, a
 * remote engine that does not answer) holds only its own connection; with a
 * thread pool a kept-alive connection stays on its worker and every other
 * connection of that worker waited behind it (docs/metrics.md, "Under mixed
 * load").
 *
 * Slow clients (docs/api.md, "Slow clients"): MHD's connection timeout is an
 * idle timeout, so a client that sends a byte now and then keeps a connection
 * forever.  Every connection is tracked from MHD's connection notification
 * (its socket context); a reaper thread shuts down the socket of one that has
 * not sent its headers by their deadline, or whose body arrives slower than
 * the minimum rate, and MHD then closes it as a client that went away.
 */
#include "call.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <snappy-c.h>

#include "routes_export.h"
#include "routes_prom.h"
#include "routes_write.h"
#include "selfmon.h"
#include "strata_log.h"

/* healthz, readyz, /metrics, remote write, export: routes[0..NCORE) */
#define NCORE              5
/* then the Prometheus query API (routes_prom.h), then the configured ones */
#define NPROM_MAX          16

/* The stack of a connection's thread.  Only the pages a thread touches count
 * in the resident set; the size bounds the address space reserved per
 * connection (--max-connections of them).  The deepest handler, a PromQL
 * expression at the parser's nesting limit, needs under 1 MiB of it
 * (docs/api.md, "Threads"). */
#define SERVER_STACK_BYTES ((size_t)4 << 20)

/* The evaluator of /api/v1/query and query_range (routes_prom.h; { NULL }
 * would make them answer 501 "not built" after their checks). */
static const api_prom_engine_t prom_engine = { promql_eval };

/* Where a tracked connection is: waiting for a request's headers (with a
 * deadline), receiving its body (at a minimum rate), or answering it (no
 * deadline here: the reply is the handler's, the idle timeout still applies). */
enum { CONN_HEADERS, CONN_BODY, CONN_REPLY };

typedef struct conn_track {
    struct conn_track *prev, *next; /* the server's list, under reap_mu */
    MHD_socket fd;
    int reaped; /* under reap_mu: shut down once */
    atomic_int state;
    _Atomic int64_t deadline_ms; /* CONN_HEADERS: monotonic ms */
    _Atomic int64_t body_t0_ms;  /* CONN_BODY: when the headers were complete */
    _Atomic uint64_t body_bytes; /* CONN_BODY: received so far */
} conn_track_t;

struct api_server {
    struct MHD_Daemon *daemon;
    api_server_config_t cfg;
    api_route_t *routes; /* the server's own, then cfg.routes */
    size_t nroutes;
    api_selfmon_t *mon;
    api_write_route_t write;
    _Atomic(tsdb_t *) db;
    ingest_t *ing;
    const api_read_source_t *reader; /* set before db, so a non-NULL db means both */
    atomic_int stopping;
    /* slow clients: the tracked connections and the reaper */
    pthread_mutex_t reap_mu;
    pthread_cond_t reap_cv;
    conn_track_t *conns;
    pthread_t reaper;
    int reaper_started, reaper_stop; /* reaper_stop under reap_mu */
    int64_t log_sec;                 /* mhd_log's rate limit, under reap_mu */
    unsigned log_n;
    unsigned long long log_suppressed;
};

void api_server_observe_fsync(double seconds, void *srv)
{
    api_selfmon_observe_fsync(((api_server_t *)srv)->mon, seconds);
}

/* ---- slow clients ------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static conn_track_t *conn_track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void conn_set_state(struct MHD_Connection *conn, int state)
{
    conn_track_t *t = conn_track_of(conn);
    if (t) atomic_store(&t->state, state);
}

/* Connection start and end: the list the reaper walks.  MHD calls CLOSED
 * before it closes the socket, and the reaper shuts a socket down only while
 * it holds reap_mu with the connection still listed, so it never touches a
 * descriptor that was closed (and perhaps reused). */
static void notify_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode toe)
{
    api_server_t *srv = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track_t *t = ci ? calloc(1, sizeof *t) : NULL;
        if (!t) return; /* untracked: only the idle timeout applies */
        t->fd = ci->connect_fd;
        atomic_init(&t->state, CONN_HEADERS);
        atomic_init(&t->deadline_ms, mono_ms() + srv->cfg.header_timeout_ms);
        pthread_mutex_lock(&srv->reap_mu);
        t->next = srv->conns;
        if (srv->conns) srv->conns->prev = t;
        srv->conns = t;
        pthread_mutex_unlock(&srv->reap_mu);
        *socket_context = t;
        return;
    }
    conn_track_t *t = *socket_context;
    if (!t) return;
    pthread_mutex_lock(&srv->reap_mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        srv->conns = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&srv->reap_mu);
    free(t);
    *socket_context = NULL;
}

/* The request line is complete: its headers are due header_timeout_ms from now
 * at the latest (a deadline only ever gets closer). */
static void *uri_logged(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    api_server_t *srv = cls;
    conn_track_t *t = conn ? conn_track_of(conn) : NULL;
    if (t && atomic_load(&t->state) == CONN_HEADERS) {
        int64_t d = mono_ms() + srv->cfg.header_timeout_ms;
        if (d < atomic_load(&t->deadline_ms)) atomic_store(&t->deadline_ms, d);
    }
    return NULL; /* the request's context stays NULL until answer() */
}

/* Is t over its deadline at now?  0 = no, 1 = headers, 2 = body. */
static int conn_overdue(const api_server_t *srv, conn_track_t *t, int64_t now)
{
    int st = atomic_load(&t->state);
    if (st == CONN_HEADERS) return srv->cfg.header_timeout_ms && now > atomic_load(&t->deadline_ms) ? 1 : 0;
    if (st != CONN_BODY || !srv->cfg.body_min_rate) return 0;
    int64_t late = now - atomic_load(&t->body_t0_ms) - (int64_t)srv->cfg.header_timeout_ms;
    if (late <= 0) return 0;
    double due = (double)late / 1000.0 * (double)srv->cfg.body_min_rate;
    return (double)atomic_load(&t->body_bytes) < due ? 2 : 0;
}

static void *reaper_main(void *arg)
{
    api_server_t *srv = arg;
    pthread_mutex_lock(&srv->reap_mu);
    while (!srv->reaper_stop) {
        int64_t now = mono_ms();
        unsigned nh = 0, nb = 0;
        for (conn_track_t *t = srv->conns; t; t = t->next) {
            if (t->reaped) continue;
            int why = conn_overdue(srv, t, now);
            if (!why) continue;
            /* MHD sees end of input (or an error) and closes the connection */
            shutdown(t->fd, SHUT_RDWR);
            t->reaped = 1;
            if (why == 1)
                nh++;
            else
                nb++;
        }
        if (nh || nb) {
            api_selfmon_slow_closed(srv->mon, nh, nb);
            STRATA_LOG_DEBUG_("slow connections closed", "headers=%u body=%u", nh, nb);
        }
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 200 * 1000 * 1000; /* a 200ms tick */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&srv->reap_cv, &srv->reap_mu, &ts);
    }
    pthread_mutex_unlock(&srv->reap_mu);
    return NULL;
}

/* ---- the server's own routes -------------------------------------------------------- */

static int h_healthz(api_call_t *c, void *ctx)
{
    (void)ctx;
    return api_call_reply(c, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static int h_readyz(api_call_t *c, void *ctx)
{
    api_server_t *srv = ctx;
    if (atomic_load(&srv->stopping))
        return api_call_reply_strata_error(c, STRATA_ECLOSED, "not ready", "shutting down");
    if (!api_call_db(c))
        return api_call_reply_strata_error(c, STRATA_ECLOSED, "not ready", "WAL replay in progress");
    return api_call_reply(c, 200, "text/plain; charset=utf-8", "ready\n", 6);
}

#define HEALTH_FLAGS (API_ROUTE_NO_AUTH | API_ROUTE_UNREADY | API_ROUTE_ANY_BODY | API_ROUTE_PATH_LABEL)

/* ---- dispatch ----------------------------------------------------------------------- */

/* Matches url against pattern; with c, captures {} segments (URL-decoded). */
static int route_match(const char *pattern, const char *url, api_call_t *c)
{
    const char *p = pattern, *u = url;
    size_t nseg = 0;
    while (*p && *u) {
        if (p[0] == '{' && p[1] == '}') {
            const char *end = strchr(u, '/');
            size_t n = end ? (size_t)(end - u) : strlen(u);
            if (n == 0 || nseg == API_CALL_MAX_SEGMENTS) return 0;
            if (c) {
                strata_arena_t *a = api_call_arena(c);
                char *seg = a ? strata_arena_strndup(a, u, n) : NULL;
                if (!seg) return 0;
                seg[MHD_http_unescape(seg)] = '\0';
                c->seg[nseg] = seg;
            }
            nseg++;
            p += 2;
            u += n;
            continue;
        }
        if (*p != *u) return 0;
        p++;
        u++;
    }
    if (c) c->nseg = nseg;
    return *p == '\0' && *u == '\0';
}

/* The duration label of a request no route serves (yet): an API_ROUTE_PATH_LABEL
 * route's pattern, or /api/v1/other, or other. */
static const char *fallback_label(const api_server_t *srv, const char *url)
{
    for (size_t i = 0; i < srv->nroutes; i++)
        if ((srv->routes[i].flags & API_ROUTE_PATH_LABEL) && route_match(srv->routes[i].pattern, url, NULL))
            return srv->routes[i].pattern;
    return strncmp(url, "/api/v1/", 8) == 0 ? "/api/v1/other" : "other";
}

static enum MHD_Result dispatch(api_server_t *srv, struct MHD_Connection *conn, api_request_t *rq,
                                const char *url, const char *method)
{
    api_call_t c = { .conn = conn, .rq = rq, .auth = srv->cfg.auth, .now_ms = api_call_clock_ms() };
    c.db = atomic_load(&srv->db);
    c.ing = srv->ing;
    c.reader = srv->reader;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    const api_route_t *hit = NULL, *path = NULL;
    for (size_t i = 0; i < srv->nroutes && !hit; i++) {
        if (!route_match(srv->routes[i].pattern, url, &c)) continue;
        if (!path) path = &srv->routes[i];
        if (strcmp(srv->routes[i].method, m) == 0) hit = &srv->routes[i];
    }
    if (rq->late && !(path && (path->flags & API_ROUTE_STOPPING))) {
        api_call_reply_strata_error(&c, STRATA_ECLOSED, "shutting down", "the server is stopping; retry");
        return c.ret;
    }
    if (!hit) {
        if (path)
            api_call_reply_error(&c, 405, "method not allowed", method);
        else if (strncmp(url, "/api/v1/", 8) == 0)
            api_call_reply_strata_error(&c, STRATA_ENOTFOUND, "unknown API path",
                                        "see docs/api.md for the paths strata serves");
        else
            api_call_reply_strata_error(&c, STRATA_ENOTFOUND, "not found", "no such endpoint");
        return c.ret;
    }
    rq->path_label = hit->pattern;
    /* the server's own routes make the arena only if they need one (remote write does not) */
    if (hit >= srv->routes + NCORE && !api_call_arena(&c)) {
        api_call_reply_strata_error(&c, STRATA_ENOMEM, NULL, "");
        return c.ret;
    }
    if (!(hit->flags & API_ROUTE_NO_AUTH) && !api_call_authorize(&c, hit->scope)) return c.ret;
    if (!(hit->flags & API_ROUTE_UNREADY) && !c.db) {
        api_call_reply_strata_error(&c, STRATA_ECLOSED, "store not ready",
                                    "the WAL is being replayed; retry");
        return c.ret;
    }
    if (!(hit->flags & API_ROUTE_ANY_BODY) && rq->too_big) {
        char d[160];
        snprintf(d, sizeof d, "the body is over the limit of %zu bytes", srv->cfg.max_request_bytes);
        api_call_reply_strata_error(&c, STRATA_ETOOBIG, NULL, d);
        return c.ret;
    }
    int rc = hit->fn(&c, hit->ctx);
    if (c.replied) return c.ret;
    if (rc == 0) {
        strata_error("handler returned without replying", "path=%s", hit->pattern);
        rc = STRATA_EIO;
    }
    api_call_reply_strata_error(&c, rc, NULL, "");
    return c.ret;
}

/* ---- request framing ------------------------------------------------------------------ */

/* What the request's headers say about where its body ends (docs/api.md,
 * "Request framing").  libmicrohttpd 0.9.75 takes the first Content-Length and
 * lets Transfer-Encoding win over it silently; a proxy in front may pick the
 * other, so such requests are refused before the body is read. */
typedef struct framing {
    unsigned ncl, nte;
    const char *cl, *te;
    int cl_differ;
} framing_t;

static enum MHD_Result framing_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    framing_t *f = cls;
    const char *v = value ? value : "";
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->ncl++ == 0)
            f->cl = v;
        else if (strcmp(f->cl, v) != 0)
            f->cl_differ = 1;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->nte++;
        f->te = v;
    }
    return MHD_YES;
}

/* Answers a request whose framing is refused (closing the connection: where
 * the next request would start is not known, or the body is not read). */
static enum MHD_Result refuse_framing(const api_server_t *srv, struct MHD_Connection *conn, api_request_t *rq,
                                      const char *method, int err, const char *message, const char *details)
{
    /* a remote write refused as a whole is counted wherever it is refused */
    if (rq->path_label == srv->routes[3].pattern && strcmp(method, srv->routes[3].method) == 0)
        api_selfmon_write_refused(srv->mon);
    api_call_t c = { .conn = conn, .rq = rq };
    api_call_add_header(&c, MHD_HTTP_HEADER_CONNECTION, "close");
    api_call_reply_strata_error(&c, err, message, details);
    return c.ret;
}

/* On the first handler call, with every header read and no body byte: 1 and an
 * answer queued in *ret when the framing is refused, else 0. */
static int check_framing(const api_server_t *srv, struct MHD_Connection *conn, api_request_t *rq,
                         const char *method, enum MHD_Result *ret)
{
    framing_t f = { 0 };
    MHD_get_connection_values(conn, MHD_HEADER_KIND, framing_header, &f);
    if (f.nte && f.ncl) {
        *ret = refuse_framing(srv, conn, rq, method, STRATA_EINVAL, "conflicting request framing",
                              "Transfer-Encoding and Content-Length in one request; send only one of them");
        return 1;
    }
    if (f.cl_differ) {
        *ret = refuse_framing(srv, conn, rq, method, STRATA_EINVAL, "conflicting request framing",
                              "Content-Length headers with different values");
        return 1;
    }
    if (f.nte > 1 || (f.nte && strcasecmp(f.te, "chunked") != 0)) {
        char d[160];
        snprintf(d, sizeof d, "Transfer-Encoding %.80s%s: only a single chunked is supported", f.te,
                 f.nte > 1 ? " (repeated)" : "");
        *ret = refuse_framing(srv, conn, rq, method, STRATA_EUNSUPPORTED, "unsupported Transfer-Encoding", d);
        return 1;
    }
    if (f.ncl) {
        /* same limit as the body as it arrives (answer() below) */
        size_t raw_limit = snappy_max_compressed_length(srv->cfg.max_request_bytes);
        char *end;
        errno = 0;
        unsigned long long n = strtoull(f.cl, &end, 10);
        if (end != f.cl && *end == '\0' && f.cl[0] != '-' && (errno == ERANGE || n > raw_limit)) {
            char d[200];
            snprintf(d, sizeof d,
                     "Content-Length %.30s is over the limit of %zu bytes (--max-request-bytes); "
                     "the body was not read",
                     f.cl, srv->cfg.max_request_bytes);
            rq->too_big = 1;
            *ret = refuse_framing(srv, conn, rq, method, STRATA_ETOOBIG, NULL, d);
            return 1;
        }
    }
    return 0;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    api_server_t *srv = cls;
    api_request_t *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &rq->t0);
        rq->path_label = fallback_label(srv, url);
        api_selfmon_request_begin(srv->mon);
        /* requests already in flight when shutdown begins are finished, not refused */
        rq->late = atomic_load(&srv->stopping);
        *con_cls = rq;
        enum MHD_Result ret;
        if (check_framing(srv, conn, rq, method, &ret)) {
            conn_set_state(conn, CONN_REPLY);
            return ret;
        }
        /* the headers are in: from here the body's minimum rate applies */
        conn_track_t *t = conn_track_of(conn);
        if (t) {
            atomic_store(&t->body_bytes, 0);
            atomic_store(&t->body_t0_ms, mono_ms());
            atomic_store(&t->state, CONN_BODY);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        conn_track_t *t = conn_track_of(conn);
        if (t) atomic_fetch_add(&t->body_bytes, *upload_size);
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
    conn_set_state(conn, CONN_REPLY);
    return dispatch(srv, conn, rq, url, method);
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    api_server_t *srv = cls;
    /* kept alive, the next request's headers are due within the idle timeout
     * plus the header timeout (sooner once its request line is in) */
    conn_track_t *t = conn_track_of(conn);
    if (t) {
        unsigned idle_s = srv->cfg.connection_timeout_s ? srv->cfg.connection_timeout_s : 60u;
        atomic_store(&t->deadline_ms, mono_ms() + (int64_t)idle_s * 1000 + srv->cfg.header_timeout_ms);
        atomic_store(&t->state, CONN_HEADERS);
    }
    api_request_t *rq = *con_cls;
    if (!rq) return;
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - rq->t0.tv_sec) + (double)(t1.tv_nsec - rq->t0.tv_nsec) / 1e9;
    int code = rq->status ? rq->status : 0;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !rq->status) code = 499;
    api_selfmon_observe_request(srv->mon, rq->path_label, code, secs);
    STRATA_LOG_DEBUG_("request", "path=%s code=%d seconds=%.6f bytes_in=%zu", rq->path_label, code, secs,
                      rq->len);
    strata_arena_free(rq->arena);
    api_selfmon_request_end(srv->mon);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

/* MHD's messages, at most LOG_BURST a second: under a flood of connections
 * (each one over a limit is a line) the rest are counted and the count is
 * logged with the next line that gets through. */
#define LOG_BURST 5
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    api_server_t *srv = cls;
    int64_t sec = mono_ms() / 1000;
    unsigned long long suppressed = 0;
    pthread_mutex_lock(&srv->reap_mu);
    if (sec != srv->log_sec) {
        srv->log_sec = sec;
        srv->log_n = 0;
    }
    int quiet = srv->log_n++ >= LOG_BURST;
    if (quiet)
        srv->log_suppressed++;
    else {
        suppressed = srv->log_suppressed;
        srv->log_suppressed = 0;
    }
    pthread_mutex_unlock(&srv->reap_mu);
    if (quiet) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = '\0';
    char q[600];
    if (suppressed)
        strata_warn("http", "detail=%s suppressed=%llu", strata_log_quote(q, sizeof q, msg), suppressed);
    else
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
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host) return STRATA_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || end == colon + 1) return STRATA_EINVAL;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE },
                    *ai;
    if (getaddrinfo(hl ? host : NULL, NULL, &hints, &ai) != 0) return STRATA_EINVAL;
    memset(ss, 0, sizeof *ss);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    if (*v6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    return 0;
}

static void reaper_stop(api_server_t *srv)
{
    if (!srv->reaper_started) return;
    pthread_mutex_lock(&srv->reap_mu);
    srv->reaper_stop = 1;
    pthread_cond_signal(&srv->reap_cv);
    pthread_mutex_unlock(&srv->reap_mu);
    pthread_join(srv->reaper, NULL);
    srv->reaper_started = 0;
}

static void server_free(api_server_t *srv)
{
    reaper_stop(srv);
    pthread_cond_destroy(&srv->reap_cv);
    pthread_mutex_destroy(&srv->reap_mu);
    api_selfmon_free(srv->mon);
    free(srv->routes);
    free(srv);
}

int api_server_start(const api_server_config_t *cfg, api_server_t **out)
{
    api_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) return STRATA_ENOMEM;
    srv->cfg = *cfg;
    pthread_mutex_init(&srv->reap_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&srv->reap_cv, &ca);
    pthread_condattr_destroy(&ca);
    srv->routes = calloc(NCORE + NPROM_MAX + cfg->nroutes, sizeof *srv->routes);
    if (!srv->routes || api_selfmon_new(cfg->extra_metrics, cfg->extra_metrics_ctx, &srv->mon)) {
        server_free(srv);
        return STRATA_ENOMEM;
    }
    srv->write = (api_write_route_t){ srv->mon, cfg->max_request_bytes, NULL };
    srv->routes[0] = (api_route_t){ "GET", "/healthz", 0, h_healthz, srv, HEALTH_FLAGS | API_ROUTE_STOPPING };
    srv->routes[1] = (api_route_t){ "GET", "/readyz", 0, h_readyz, srv, HEALTH_FLAGS };
    srv->routes[2] = api_selfmon_route(srv->mon);
    srv->routes[3] = api_write_route(&srv->write);
    srv->routes[4] = api_export_route();
    size_t k = NCORE;
    k += api_prom_info_routes(srv->routes + k, NCORE + NPROM_MAX - k);
    k += api_prom_query_routes(&prom_engine, srv->routes + k, NCORE + NPROM_MAX - k);
    k += api_prom_routes(srv->routes + k, NCORE + NPROM_MAX - k);
    if (cfg->nroutes) memcpy(srv->routes + k, cfg->routes, cfg->nroutes * sizeof *srv->routes);
    srv->nroutes = k + cfg->nroutes;
    struct sockaddr_storage ss;
    int v6 = 0;
    if (parse_listen(cfg->listen, &ss, &v6)) {
        strata_error("bad --listen address", "listen=%s", cfg->listen);
        server_free(srv);
        return STRATA_EINVAL;
    }
    /* MHD_USE_AUTO picks poll() for thread-per-connection: no FD_SETSIZE bound */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_USE_AUTO;
    if (v6) flags |= MHD_USE_IPv6;
    if (cfg->tls_cert_pem) flags |= MHD_USE_TLS;
    unsigned max_conns = cfg->max_connections ? cfg->max_connections : 1024u;
    size_t stack = SERVER_STACK_BYTES;
    struct MHD_OptionItem tls_opts[] = {
        { MHD_OPTION_HTTPS_MEM_CERT, 0, (void *)cfg->tls_cert_pem },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, (void *)cfg->tls_key_pem },
        { MHD_OPTION_END, 0, NULL },
    };
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, answer, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_THREAD_STACK_SIZE, stack, MHD_OPTION_CONNECTION_LIMIT, max_conns,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->connection_timeout_s ? cfg->connection_timeout_s : 60u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip, MHD_OPTION_NOTIFY_COMPLETED,
        completed, srv, MHD_OPTION_NOTIFY_CONNECTION, notify_connection, srv, MHD_OPTION_URI_LOG_CALLBACK,
        uri_logged, srv, MHD_OPTION_ARRAY, cfg->tls_cert_pem ? tls_opts : &tls_opts[2], MHD_OPTION_END);
    if (!srv->daemon) {
        strata_error("cannot listen", "listen=%s err=\"%s\"", cfg->listen, strerror(errno));
        server_free(srv);
        return STRATA_EIO;
    }
    if (cfg->header_timeout_ms || cfg->body_min_rate) {
        int rc = pthread_create(&srv->reaper, NULL, reaper_main, srv);
        if (rc != 0) {
            strata_error("cannot start the slow-connection reaper", "err=\"%s\"", strerror(rc));
            MHD_stop_daemon(srv->daemon);
            server_free(srv);
            return STRATA_EIO;
        }
        srv->reaper_started = 1;
    }
    strata_info("listening",
                "listen=%s threads=per-connection max_connections=%u tls=%d header_timeout_ms=%u "
                "max_connections_per_ip=%u",
                cfg->listen, max_conns, cfg->tls_cert_pem != NULL, cfg->header_timeout_ms,
                cfg->max_connections_per_ip);
    *out = srv;
    return 0;
}

void api_server_set_store(api_server_t *srv, tsdb_t *db, ingest_t *ing, const api_read_source_t *reader)
{
    srv->ing = ing;
    srv->reader = reader;
    atomic_store(&srv->db, db);
}

void api_server_set_shipper(api_server_t *srv, remote_ship_t *ship)
{
    atomic_store(&srv->write.ship, ship);
    api_selfmon_set_shipper(srv->mon, ship);
}

void api_server_stop(api_server_t *srv)
{
    if (!srv) return;
    atomic_store(&srv->stopping, 1);
    /* MHD's threads may still touch the quiesced listen socket (its poll
     * set), so it is closed only after MHD_stop_daemon, as MHD requires
     * (closed before, MHD could abort on the descriptor number reused
     * meanwhile).  shutdown() stops the listening at once: new connections
     * are refused from here on, not left in the backlog. */
    MHD_socket listen_fd = MHD_quiesce_daemon(srv->daemon);
    if (listen_fd != MHD_INVALID_SOCKET) shutdown(listen_fd, SHUT_RDWR);
    unsigned waited_ms = 0,
             limit_ms = (srv->cfg.shutdown_timeout_s ? srv->cfg.shutdown_timeout_s : 30) * 1000;
    while (api_selfmon_inflight(srv->mon) > 0 && waited_ms < limit_ms) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
        waited_ms += 10;
    }
    if (api_selfmon_inflight(srv->mon) > 0)
        strata_warn("shutdown: requests still in flight, closing them", "inflight=%d",
                    api_selfmon_inflight(srv->mon));
    reaper_stop(srv);
    MHD_stop_daemon(srv->daemon);
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    server_free(srv);
}
