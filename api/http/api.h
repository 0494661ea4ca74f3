/*
 * api.h: strata's HTTP layer, the public interface of api/http: the server
 * (libmicrohttpd, thread pool; server.c), its route table and the api_call_*
 * helpers every endpoint handler uses (call.c), error-to-status mapping
 * (status.c), bearer-token auth (auth.c).
 *
 * Time parsing and number formatting come from common/ (strata_time.h,
 * strata_fmt.h).  api_status_for_error() is THE one place a STRATA_E* code becomes an HTTP
 * status; every endpoint answers errors through it.
 */
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ship.h"
#include "ingest.h"
#include "read.h"
#include "strata_arena.h"
#include "strata_err.h"
#include "tsdb.h"

/* HTTP status for an error code (0 -> 200).  Bad input maps to 4xx only;
 * conditions the client should retry (store closed, disk full, I/O) to 503. */
int api_status_for_error(int err);
/* The same for the Prometheus query API: its errorType ("bad_data",
 * "execution", "timeout", ...) and the status it goes with in *status. */
const char *api_prom_error_type(int err, int *status);

/* ---- auth ---------------------------------------------------------------- */

enum api_auth_mode { API_AUTH_NONE, API_AUTH_JWT };

typedef struct api_auth api_auth_t;

/* Who made a request: tenant 0 and sub "anonymous" with --auth=none. */
typedef struct api_principal {
    int32_t tenant_id;
    char sub[128];
    unsigned scopes; /* API_SCOPE_* bits */
} api_principal_t;

#define API_SCOPE_METRICS_WRITE 1u
#define API_SCOPE_METRICS_READ  2u
#define API_SCOPE_REPORTS_WRITE 4u

/* mode NONE ignores the files.  JWT needs exactly one of secret_file (HS256)
 * and public_key_file (RS256, a PEM RSA public key, else STRATA_EINVAL after
 * logging why); files are read once here. */
int api_auth_new(enum api_auth_mode mode, const char *secret_file, const char *public_key_file,
                 api_auth_t **out);
/* on (the default): a JWT without an exp claim is refused (401, "token has no
 * exp claim"); off: such a token never expires. */
void api_auth_set_require_exp(api_auth_t *auth, int on);
void api_auth_free(api_auth_t *auth);

/* Checks an Authorization header value (may be NULL) for a request that needs
 * `scope` (0 = any valid token; several bits = any one of them).  Returns 0 and fills who, STRATA_EUNAUTH for
 * a missing/bad/expired token, STRATA_EFORBIDDEN for a missing scope; msg
 * gets the reason. */
int api_auth_check(const api_auth_t *auth, const char *authorization, unsigned scope, int64_t now_s,
                   api_principal_t *who, char *msg, size_t msgcap);

/* ---- routes -----------------------------------------------------------------
 *
 * Every endpoint is a route in one table: the server's own (healthz, readyz,
 * /metrics, remote write, export) first, then the ones given to
 * api_server_start() (workloads, metrics, telemetry, reports, admin).  The
 * server does everything around a handler: routing (first match wins), auth
 * (the route's scope), 503 until the store is open, 405 for a known path with
 * another method, 404 for unknown paths, the request body (same size limit as
 * remote write), a per-request arena, errors as JSON through
 * api_status_for_error(), and the duration histogram (labelled with the
 * route's pattern).  A route's flags turn parts of that off (docs/api.md,
 * "Routes").  A handler answers with exactly one api_call_reply*(); if it
 * returns a negative STRATA_E* code without replying, the server answers that
 * error. */

typedef struct api_call api_call_t;
typedef int (*api_handler_fn)(api_call_t *call, void *ctx);

/* api_route_t.flags */
#define API_ROUTE_NO_AUTH  1u /* the server checks no token (the handler may: api_call_authorize) */
#define API_ROUTE_UNREADY  2u /* served before the store is open: api_call_db() may be NULL */
#define API_ROUTE_ANY_BODY 4u /* an oversized body is not refused: see api_call_body_too_big() */
#define API_ROUTE_STOPPING 8u /* still served after shutdown began (other routes: 503) */
#define API_ROUTE_PATH_LABEL \
    16u /* requests refused before the handler (405, shutting down)
                                  * are labelled with the pattern too, not /api/v1/other */

typedef struct api_route {
    const char *method;  /* "GET", "POST", "DELETE" (HEAD is served by GET routes) */
    const char *pattern; /* "/api/v1/workloads/{}/metrics": {} matches one path segment */
    unsigned scope;      /* API_SCOPE_* the token needs; 0 = any valid token */
    api_handler_fn fn;
    void *ctx;
    unsigned flags; /* API_ROUTE_*; 0 for an ordinary data endpoint */
} api_route_t;

/* First value of query parameter name (URL-decoded), NULL when absent. */
const char *api_call_param(const api_call_t *c, const char *name);
/* Every value of a repeatable parameter (?a=1&a=2), in order; a name given
 * bare (?a) counts as "".  *vals lives in the call's arena.  Returns the count. */
size_t api_call_params(api_call_t *c, const char *name, const char ***vals);
/* The same, leaving out the name given bare, without '=' (?a&a=1 -> "1"). */
size_t api_call_param_values(api_call_t *c, const char *name, const char ***vals);
/* A request header, NULL when absent. */
const char *api_call_header(const api_call_t *c, const char *name);
/* The i-th {} segment of the route pattern (URL-decoded), NULL past the last. */
const char *api_call_segment(const api_call_t *c, size_t i);
const api_principal_t *api_call_principal(const api_call_t *c);
/* NULL until the store is open (only API_ROUTE_UNREADY handlers see that). */
tsdb_t *api_call_db(const api_call_t *c);
ingest_t *api_call_ingest(const api_call_t *c);
/* The read seam every data endpoint reads through. */
const api_read_source_t *api_call_reader(const api_call_t *c);
/* Freed when the request completes; reply bodies are copied, so they may live
 * here.  Made before a route's handler runs, except for the server's own routes
 * (made on first use there: NULL when out of memory). */
strata_arena_t *api_call_arena(api_call_t *c);
const char *api_call_body(const api_call_t *c, size_t *len);
/* 1 when the body was over the limit (and dropped); only API_ROUTE_ANY_BODY
 * handlers see such a request. */
int api_call_body_too_big(const api_call_t *c);
/* Wall clock when the request arrived (ms since the epoch). */
int64_t api_call_now_ms(const api_call_t *c);

/* For API_ROUTE_NO_AUTH routes that check a token themselves: 1 when the
 * Authorization header grants scope (api_call_principal() is then set), else
 * answers the 401 (with WWW-Authenticate: Bearer) or 403 and returns 0. */
int api_call_authorize(api_call_t *c, unsigned scope);

/* Adds a header to the reply to come (up to 8). */
int api_call_add_header(api_call_t *c, const char *name, const char *value);
/* Answers status with body (copied); content_type NULL = application/json. */
int api_call_reply(api_call_t *c, int status, const char *content_type, const char *body, size_t len);
/* Answers status with size bytes read from fd (from offset 0), closing fd
 * when done (also on failure). */
int api_call_reply_fd(api_call_t *c, int status, const char *content_type, int fd, uint64_t size);
/* Answers status with no body and no Content-Type (204). */
int api_call_reply_empty(api_call_t *c, int status);
/* Produces the next bytes of a streamed body into buf (at most max): the
 * count, 0 at the end, negative on an error (the connection is cut). */
typedef ssize_t (*api_stream_fn)(void *ctx, char *buf, size_t max);
/* Answers status with a body of unknown length (chunked) produced by next;
 * free_ctx(ctx) runs when the reply is done.  If the reply cannot be made it
 * calls free_ctx(ctx) and returns STRATA_ENOMEM without answering. */
int api_call_reply_stream(api_call_t *c, int status, const char *content_type, api_stream_fn next, void *ctx,
                          void (*free_ctx)(void *ctx));
/* Answers {"code","message","details"} with status. */
int api_call_reply_error(api_call_t *c, int status, const char *message, const char *details);
/* Same, status from api_status_for_error(err); message NULL = strata_strerror(err). */
int api_call_reply_strata_error(api_call_t *c, int err, const char *message, const char *details);
/* Optional integer query parameter: 1 = present and parsed into *out, 0 =
 * absent or empty, -1 = not an integer. */
int api_call_int_param(const api_call_t *c, const char *name, int64_t *out);
/* Answers 400 "invalid <name> parameter" with why as the details. */
int api_call_reply_bad_param(api_call_t *c, const char *name, const char *why);

/* The list parameters the workloads and reports lists share: filterBy
 * (repeated and/or comma-separated, at most max_filters terms), sortBy,
 * sortOrder, search, offset (>= 0) and limit (1..max_limit, 0 = absent).
 * Strings live in the call's arena. */
typedef struct api_list_params {
    const char *const *filter_by;
    size_t nfilter;
    const char *sort_by, *sort_order, *search;
    int64_t offset, limit;
} api_list_params_t;

/* Fills p; on a bad value answers the 400 itself and returns 0, else 1. */
int api_call_list_params(api_call_t *c, size_t max_filters, int64_t max_limit, api_list_params_t *p);

/* ---- the server ---------------------------------------------------------- */

typedef struct api_server_config {
    const char *listen; /* host:port, [v6]:port */
    unsigned threads;   /* unused: a thread per connection (docs/api.md, "Threads") */
    unsigned max_connections;
    unsigned connection_timeout_s; /* idle timeout (MHD's) */
    /* Absolute deadlines (docs/api.md, "Slow clients"): a connection has
     * header_timeout_ms from its accept (or from the request line, or, kept
     * alive, from the end of its last request plus the idle timeout) to send
     * complete headers; a body then has header_timeout_ms of grace and must
     * arrive at body_min_rate bytes a second on average after it.  0 = off. */
    unsigned header_timeout_ms;
    size_t body_min_rate;
    unsigned max_connections_per_ip; /* 0 = no limit */
    unsigned shutdown_timeout_s;     /* max wait for in-flight requests */
    const char *tls_cert_pem;        /* contents, not paths; NULL = plain HTTP */
    const char *tls_key_pem;
    const api_auth_t *auth;
    size_t max_request_bytes;  /* decompressed write body */
    const api_route_t *routes; /* endpoints after the server's own, tried in order (copied) */
    size_t nroutes;
    /* More Prometheus text for GET /metrics (NULL = none), snprintf-style:
     * writes at most cap bytes (NUL included) and returns the length it needs. */
    size_t (*extra_metrics)(void *ctx, char *buf, size_t cap);
    void *extra_metrics_ctx;
} api_server_config_t;

typedef struct api_server api_server_t;

/* Starts listening.  Until api_server_set_store() the server is alive but not
 * ready: /readyz and the data endpoints answer 503. */
int api_server_start(const api_server_config_t *cfg, api_server_t **out);
/* The store is open (WAL replayed): become ready. */
/* reader is what every data endpoint reads through (api/query/read.h); all
 * three must outlive the server. */
void api_server_set_store(api_server_t *srv, tsdb_t *db, ingest_t *ing, const api_read_source_t *reader);
/* With --remote-write-url: writes are refused (503) while its queue is full,
 * and /metrics shows its counters.  Set before api_server_set_store(); the
 * shipper must outlive api_server_stop(). */
void api_server_set_shipper(api_server_t *srv, remote_ship_t *ship);
/* Graceful stop: stop accepting, answer 503 to new requests on open
 * connections, wait up to shutdown_timeout_s for in-flight ones, close. */
void api_server_stop(api_server_t *srv);

/* Called for every WAL fsync (tsdb observer signature). */
void api_server_observe_fsync(double seconds, void *srv);

#endif
