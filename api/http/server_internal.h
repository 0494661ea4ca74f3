/*
 * server_internal.h: what the endpoint files of api/ share with server.c
 * (not part of the module's public interface, api.h).
 */
#ifndef API_SERVER_INTERNAL_H
#define API_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <stdatomic.h>

#include "api.h"

/* A growable byte buffer (malloc'd); on ENOMEM it sets failed and stops growing. */
typedef struct api_buf {
    char *data;
    size_t len, cap;
    int failed;
} api_buf_t;

void api_buf_put(api_buf_t *b, const char *s, size_t n);
void api_buf_puts(api_buf_t *b, const char *s);
void api_buf_printf(api_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string literal, quotes included. */
void api_buf_json_string(api_buf_t *b, const char *s);

/* A JSON error response {"code","message","details"}; *status gets the code. */
struct MHD_Response *api_error_response(int status, const char *message, const char *details);

/* GET /api/v1/export: a streaming response, or an error response; *status is
 * set either way.  db is open; tenant comes from the caller's principal. */
struct MHD_Response *api_export_response(const api_read_source_t *reader, struct MHD_Connection *conn,
                                         int32_t tenant, int *status);

#endif
