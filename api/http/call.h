/*
 * call.h: the state of one request and of the handler call answering it,
 * shared by server.c (which fills it from libmicrohttpd) and call.c (the
 * api_call_* helpers of api.h).  Internal to api/http.
 */
#ifndef API_CALL_H
#define API_CALL_H

#include <microhttpd.h>
#include <time.h>

#include "api.h"

/* One HTTP request, from its first byte to MHD's completion callback. */
typedef struct api_request {
    const char *path_label; /* duration histogram label: static storage */
    strata_arena_t *arena;  /* made on first use */
    struct timespec t0;
    int status;
    int late; /* arrived after shutdown began */
    char *body;
    size_t len, cap;
    int too_big; /* over the limit: dropped, len 0 */
} api_request_t;

#define API_CALL_MAX_SEGMENTS 4
#define API_CALL_MAX_HEADERS  8

struct api_call {
    struct MHD_Connection *conn;
    api_request_t *rq;
    const api_auth_t *auth;
    tsdb_t *db;
    ingest_t *ing;
    const api_read_source_t *reader;
    api_principal_t who;
    int64_t now_ms;
    const char *seg[API_CALL_MAX_SEGMENTS];
    size_t nseg;
    const char *hname[API_CALL_MAX_HEADERS], *hvalue[API_CALL_MAX_HEADERS];
    size_t nhdr;
    char hbuf[256]; /* reply header strings before the arena is needed */
    size_t hbuf_used;
    int replied;
    enum MHD_Result ret;
};

/* Wall clock in ms since the epoch. */
int64_t api_call_clock_ms(void);

#endif
