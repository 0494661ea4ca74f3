/*
 * routes_write.c: POST /api/v1/write: checks the token, media type,
 * readiness and body size, hands the body to ingest_write() and answers 204,
 * or the partial-write 400/429 with the RW2 written-counts headers, or the
 * refusal (docs/api.md, "POST /api/v1/write").  Every request refused as a
 * whole is counted in strata_write_requests_refused_total.
 */
#include "routes_write.h"

#include <pthread.h>
#include <stdio.h>

#include "strata_log.h"

/* Write arenas are reused between requests: unpacking takes about 8x the body
 * in small allocations, and getting that memory from malloc and giving it back
 * on every request cost more page faults than the decoding itself (2.1 -> 0.9
 * us per series in a 2000-series batch).  A request takes an idle arena (or
 * makes one) and gives it back reset: the first block is kept, blocks beyond
 * it are freed, so a huge request does not pin its memory.  At most
 * WRITE_ARENA_IDLE arenas are kept idle, process-wide: the server runs a
 * thread per connection (docs/api.md, "Threads"), and an arena per thread
 * would keep up to 4 MiB for every kept-alive writer connection. */
#define WRITE_ARENA_BLOCK (4u << 20)
#define WRITE_ARENA_IDLE  8
static pthread_mutex_t write_arena_mu = PTHREAD_MUTEX_INITIALIZER;
static strata_arena_t *write_arena_idle[WRITE_ARENA_IDLE];
static unsigned write_arena_nidle;

static strata_arena_t *write_arena_take(void)
{
    strata_arena_t *a = NULL;
    pthread_mutex_lock(&write_arena_mu);
    if (write_arena_nidle) a = write_arena_idle[--write_arena_nidle];
    pthread_mutex_unlock(&write_arena_mu);
    return a ? a : strata_arena_new(WRITE_ARENA_BLOCK);
}

static void write_arena_give(strata_arena_t *a)
{
    strata_arena_reset(a);
    pthread_mutex_lock(&write_arena_mu);
    if (write_arena_nidle < WRITE_ARENA_IDLE) {
        write_arena_idle[write_arena_nidle++] = a;
        a = NULL;
    }
    pthread_mutex_unlock(&write_arena_mu);
    strata_arena_free(a);
}

static void written_headers(api_call_t *c, const ingest_result_t *res)
{
    char n[32];
    snprintf(n, sizeof n, "%zu", res->samples_written);
    api_call_add_header(c, "X-Prometheus-Remote-Write-Samples-Written", n);
    snprintf(n, sizeof n, "%zu", res->histograms_written);
    api_call_add_header(c, "X-Prometheus-Remote-Write-Histograms-Written", n);
    snprintf(n, sizeof n, "%zu", res->exemplars_written);
    api_call_add_header(c, "X-Prometheus-Remote-Write-Exemplars-Written", n);
}

/* Answers a refusal of the whole request and counts it. */
static int refuse(api_call_t *c, const api_write_route_t *w, int err, const char *message,
                  const char *details)
{
    if (err) api_call_reply_strata_error(c, err, message, details);
    api_selfmon_write_refused(w->mon);
    return 0;
}

static int h_write(api_call_t *c, void *ctx)
{
    api_write_route_t *w = ctx;
    if (!api_call_authorize(c, API_SCOPE_METRICS_WRITE)) return refuse(c, w, 0, NULL, NULL);
    enum ingest_proto proto;
    const char *ct = api_call_header(c, "Content-Type");
    const char *ce = api_call_header(c, "Content-Encoding");
    int rc = ingest_parse_content_type(ct, ce, &proto);
    if (rc) {
        char d[300];
        snprintf(d, sizeof d,
                 "Content-Type %.100s, Content-Encoding %.50s: want application/x-protobuf "
                 "(proto=prometheus.WriteRequest or io.prometheus.write.v2.Request) with snappy",
                 ct ? ct : "(none)", ce ? ce : "(none)");
        return refuse(c, w, rc, "unsupported media type", d);
    }
    if (!api_call_db(c))
        return refuse(c, w, STRATA_ECLOSED, "store not ready", "the WAL is being replayed; retry");
    char d[300];
    /* before anything is decoded: a full remote-write queue takes nothing more (never silent loss) */
    if ((rc = remote_ship_admit(atomic_load(&w->ship), d, sizeof d)))
        return refuse(c, w, rc, "remote-write queue full", d);
    if (api_call_body_too_big(c)) {
        snprintf(d, sizeof d, "the body is over the limit of %zu bytes (--max-request-bytes)",
                 w->max_request_bytes);
        return refuse(c, w, STRATA_ETOOBIG, NULL, d);
    }
    size_t len;
    const char *body = api_call_body(c, &len);
    if (len == 0)
        return refuse(c, w, STRATA_EINVAL, "empty request body",
                      "a remote-write body is a snappy-compressed protobuf message");
    strata_arena_t *arena = write_arena_take();
    if (!arena) return refuse(c, w, STRATA_ENOMEM, NULL, "");
    /* unpacked protobuf takes a few times the wire size; past this it is a bomb */
    strata_arena_set_cap(arena, w->max_request_bytes * 6 + (64u << 20));
    ingest_result_t res;
    rc = ingest_write(api_call_ingest(c), arena, proto, body, len, api_call_principal(c)->tenant_id,
                      api_call_now_ms(c), &res);
    write_arena_give(arena);
    switch (rc) {
    case STRATA_ETOOBIG:
        snprintf(d, sizeof d, "the decompressed body is over the limit of %zu bytes (--max-request-bytes)",
                 w->max_request_bytes);
        return refuse(c, w, rc, NULL, d);
    case STRATA_EBADSNAPPY:
        return refuse(
            c, w, rc, NULL,
            "the body is not a valid snappy block (remote write uses the block format, not framed)");
    case STRATA_EBADPROTO:
        return refuse(c, w, rc, NULL,
                      proto == INGEST_PROTO_V2 ? "cannot unpack io.prometheus.write.v2.Request"
                                               : "cannot unpack prometheus.WriteRequest");
    case 0:
    case STRATA_EINVAL:
    case STRATA_ELIMIT: break;
    default:
        strata_error("remote write: store refused the batch", "err=\"%s\"", strata_strerror(rc));
        return refuse(c, w, rc, "store cannot take writes", strata_strerror(rc));
    }
    api_selfmon_write_stored(w->mon, &res);
    if (proto == INGEST_PROTO_V2) written_headers(c, &res);
    if (rc == 0) return api_call_reply_empty(c, 204);
    return api_call_reply_error(c, api_status_for_error(rc), res.message, res.details);
}

api_route_t api_write_route(api_write_route_t *ctx)
{
    return (api_route_t){ "POST",
                          "/api/v1/write",
                          API_SCOPE_METRICS_WRITE,
                          h_write,
                          ctx,
                          API_ROUTE_NO_AUTH | API_ROUTE_UNREADY | API_ROUTE_ANY_BODY | API_ROUTE_PATH_LABEL };
}
