/*
 * call.c: the api_call_* helpers of api.h: what a handler reads from its
 * request (parameters, headers, path segments, body, principal, store) and
 * the one way it answers (api_call_reply*: a body, a file, a stream, an
 * error as JSON {"code","message","details"}; docs/api.md, "Errors").
 */
#include "call.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "strata_log.h"

int64_t api_call_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the request ---------------------------------------------------------- */

const char *api_call_param(const api_call_t *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct param_list {
    strata_arena_t *arena;
    const char *name;
    const char **vals;
    size_t n, cap;
    int skip_bare; /* leave out "?name" given without '=' */
} param_list_t;

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    param_list_t *l = cls;
    if (strcmp(key, l->name) != 0 || (!value && l->skip_bare)) return MHD_YES;
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

static size_t params(api_call_t *c, const char *name, int skip_bare, const char ***vals)
{
    param_list_t l = { .arena = api_call_arena(c), .name = name, .skip_bare = skip_bare };
    if (l.arena) MHD_get_connection_values(c->conn, MHD_GET_ARGUMENT_KIND, collect_param, &l);
    *vals = l.vals;
    return l.n;
}

size_t api_call_params(api_call_t *c, const char *name, const char ***vals)
{
    return params(c, name, 0, vals);
}
size_t api_call_param_values(api_call_t *c, const char *name, const char ***vals)
{
    return params(c, name, 1, vals);
}

const char *api_call_header(const api_call_t *c, const char *name)
{
    return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

const char *api_call_segment(const api_call_t *c, size_t i) { return i < c->nseg ? c->seg[i] : NULL; }
const api_principal_t *api_call_principal(const api_call_t *c) { return &c->who; }
tsdb_t *api_call_db(const api_call_t *c) { return c->db; }
ingest_t *api_call_ingest(const api_call_t *c) { return c->ing; }
const api_read_source_t *api_call_reader(const api_call_t *c) { return c->reader; }
int64_t api_call_now_ms(const api_call_t *c) { return c->now_ms; }
int api_call_body_too_big(const api_call_t *c) { return c->rq->too_big; }

strata_arena_t *api_call_arena(api_call_t *c)
{
    if (!c->rq->arena) c->rq->arena = strata_arena_new(0);
    return c->rq->arena;
}

const char *api_call_body(const api_call_t *c, size_t *len)
{
    *len = c->rq->len;
    return c->rq->body ? c->rq->body : "";
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

int api_call_list_params(api_call_t *c, size_t max_filters, int64_t max_limit, api_list_params_t *p)
{
    memset(p, 0, sizeof *p);
    strata_arena_t *a = api_call_arena(c);
    const char **vals;
    size_t nv = api_call_params(c, "filterBy", &vals);
    const char **terms = a ? strata_arena_calloc(a, max_filters + 1, sizeof *terms) : NULL;
    size_t nt = 0;
    for (size_t i = 0; terms && i < nv; i++) {
        char *copy = strata_arena_strdup(a, vals[i]);
        for (char *save = NULL, *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save)) {
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
    if (r < 0 || p->offset < 0) {
        api_call_reply_bad_param(c, "offset", "want an integer >= 0");
        return 0;
    }
    r = api_call_int_param(c, "limit", &p->limit);
    if (r < 0 || (r == 1 && (p->limit < 1 || p->limit > max_limit))) {
        char why[48];
        snprintf(why, sizeof why, "want an integer 1..%lld", (long long)max_limit);
        api_call_reply_bad_param(c, "limit", why);
        return 0;
    }
    return 1;
}

/* ---- the reply ------------------------------------------------------------- */

static struct MHD_Response *text_response(const char *body, const char *ctype)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (r) MHD_add_response_header(r, "Content-Type", ctype);
    return r;
}

/* {"code","message","details"} and a newline, as application/json. */
static struct MHD_Response *error_response(int status, const char *message, const char *details)
{
    json_t *o = json_pack("{s:i,s:s,s:s}", "code", status, "message", message ? message : "", "details",
                          details ? details : "");
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    struct MHD_Response *r;
    if (s) {
        size_t n = strlen(s);
        char *body = malloc(n + 2);
        if (body) {
            memcpy(body, s, n);
            body[n] = '\n';
            body[n + 1] = '\0';
        }
        free(s);
        r = body ? MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE)
                 : text_response("{\"code\":503,\"message\":\"out of memory\",\"details\":\"\"}\n",
                                 "application/json");
        if (!body) return r;
    } else {
        r = text_response("{\"code\":503,\"message\":\"out of memory\",\"details\":\"\"}\n",
                          "application/json");
    }
    if (r) MHD_add_response_header(r, "Content-Type", "application/json");
    return r;
}

/* A copy of s for a reply header: the call's small buffer first, then the arena. */
static const char *header_copy(api_call_t *c, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n <= sizeof c->hbuf - c->hbuf_used) {
        char *d = c->hbuf + c->hbuf_used;
        memcpy(d, s, n);
        c->hbuf_used += n;
        return d;
    }
    strata_arena_t *a = api_call_arena(c);
    return a ? strata_arena_strdup(a, s) : NULL;
}

int api_call_add_header(api_call_t *c, const char *name, const char *value)
{
    if (c->nhdr == API_CALL_MAX_HEADERS) return STRATA_ELIMIT;
    c->hname[c->nhdr] = header_copy(c, name);
    c->hvalue[c->nhdr] = header_copy(c, value);
    if (!c->hname[c->nhdr] || !c->hvalue[c->nhdr]) return STRATA_ENOMEM;
    c->nhdr++;
    return 0;
}

/* Queues r (NULL = out of memory: the connection is closed) with the added headers. */
static int call_send(api_call_t *c, int status, struct MHD_Response *r)
{
    if (c->replied) {
        if (r) MHD_destroy_response(r);
        strata_error("handler replied twice", "path=%s", c->rq->path_label);
        return STRATA_EINVAL;
    }
    c->replied = 1;
    c->rq->status = status;
    if (!r) {
        c->ret = MHD_NO;
        return STRATA_EIO;
    }
    for (size_t i = 0; i < c->nhdr; i++) MHD_add_response_header(r, c->hname[i], c->hvalue[i]);
    c->ret = MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return c->ret == MHD_YES ? 0 : STRATA_EIO;
}

int api_call_reply(api_call_t *c, int status, const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
                                                             MHD_RESPMEM_MUST_COPY);
    if (r) MHD_add_response_header(r, "Content-Type", content_type ? content_type : "application/json");
    return call_send(c, status, r);
}

int api_call_reply_empty(api_call_t *c, int status)
{
    return call_send(c, status, MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT));
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

typedef struct stream {
    api_stream_fn next;
    void *ctx;
    void (*free_ctx)(void *ctx);
} stream_t;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_t *s = cls;
    ssize_t n = s->next(s->ctx, buf, max);
    if (n == 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n < 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    return n;
}

static void stream_free(void *cls)
{
    stream_t *s = cls;
    if (s->free_ctx) s->free_ctx(s->ctx);
    free(s);
}

int api_call_reply_stream(api_call_t *c, int status, const char *content_type, api_stream_fn next, void *ctx,
                          void (*free_ctx)(void *ctx))
{
    stream_t *s = malloc(sizeof *s);
    struct MHD_Response *r = NULL;
    if (s) {
        *s = (stream_t){ next, ctx, free_ctx };
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, stream_read, s, stream_free);
    }
    if (!r) {
        free(s);
        if (free_ctx) free_ctx(ctx);
        return STRATA_ENOMEM;
    }
    MHD_add_response_header(r, "Content-Type", content_type ? content_type : "application/octet-stream");
    return call_send(c, status, r);
}

int api_call_reply_error(api_call_t *c, int status, const char *message, const char *details)
{
    return call_send(c, status, error_response(status, message, details));
}

int api_call_reply_strata_error(api_call_t *c, int err, const char *message, const char *details)
{
    int status = api_status_for_error(err);
    struct MHD_Response *r = error_response(status, message ? message : strata_strerror(err), details);
    if (r && status == 503) MHD_add_response_header(r, "Retry-After", "5");
    return call_send(c, status, r);
}

int api_call_reply_bad_param(api_call_t *c, const char *name, const char *why)
{
    char msg[96];
    snprintf(msg, sizeof msg, "invalid %s parameter", name);
    return api_call_reply_strata_error(c, STRATA_EINVAL, msg, why);
}

int api_call_authorize(api_call_t *c, unsigned scope)
{
    char msg[160] = "";
    const char *h = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    int rc = api_auth_check(c->auth, h, scope, api_call_clock_ms() / 1000, &c->who, msg, sizeof msg);
    if (rc == 0) return 1;
    int status = api_status_for_error(rc);
    struct MHD_Response *r = error_response(status, strata_strerror(rc), msg);
    if (r && status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    call_send(c, status, r);
    return 0;
}
