/*
 * server_internal.h: what the endpoint files of api/ share with server.c
 * (not part of the module's public interface, api.h).
 */
#ifndef API_SERVER_INTERNAL_H
#define API_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "api.h"
#include "strata_buf.h"

/* A JSON error response {"code","message","details"}; *status gets the code. */
struct MHD_Response *api_error_response(int status, const char *message, const char *details);

/* GET /api/v1/export: a streaming response, or an error response; *status is
 * set either way.  db is open; tenant comes from the caller's principal. */
struct MHD_Response *api_export_response(const api_read_source_t *reader, struct MHD_Connection *conn,
                                         int32_t tenant, int *status);

#endif
