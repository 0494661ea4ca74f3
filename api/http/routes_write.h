/*
 * routes_write.h: POST /api/v1/write, Prometheus remote write 1.0 and 2.0
 * into ingest (docs/api.md, "POST /api/v1/write").
 */
#ifndef API_ROUTES_WRITE_H
#define API_ROUTES_WRITE_H

#include <stdatomic.h>
#include <stddef.h>

#include "api.h"
#include "selfmon.h"
#include "ship.h"

typedef struct api_write_route {
    api_selfmon_t *mon;          /* counts stored and refused batches */
    size_t max_request_bytes;    /* decompressed body limit (--max-request-bytes) */
    remote_ship_t *_Atomic ship; /* --remote-write-url: refuses writes while its queue is full */
} api_write_route_t;

/* The route (scope metrics:write, checked by the handler so that refusals are
 * counted); ctx must outlive the server. */
api_route_t api_write_route(api_write_route_t *ctx);

#endif
