/*
 * ship.h: the remote-write shipper (docs/scale-out.md, "Write path"): a
 * thread that reads the WAL in order from its last acknowledged position
 * (tsdb_wal_cursor_*), batches the samples, encodes remote-write 1.0
 * (or 2.0) (protobuf + snappy) and POSTs them to --remote-write-url with libcurl,
 * retrying 5xx, 429 and connection errors with backoff, and records its
 * position durably after each acknowledged batch, so a restart resumes
 * without loss (at least once).  Writers are refused (503) while the WAL it
 * has yet to ship is past --remote-queue-max-bytes.
 */
#ifndef REMOTE_SHIP_H
#define REMOTE_SHIP_H

#include <stddef.h>
#include <stdint.h>

#include "tsdb.h"

typedef struct remote_ship_options {
    const char *url;               /* --remote-write-url; "{tenant}" becomes the tenant's number */
    int version;                   /* --remote-write-version: 1 or 2 */
    const char *tenant_header;     /* --remote-tenant-header: the tenant in this header, or NULL */
    const char *bearer_token_file; /* --remote-bearer-token-file, read before each batch, or NULL */
    const char *ca_file;           /* --remote-ca-file, or NULL (the system's CAs) */
    uint64_t queue_max_bytes;      /* --remote-queue-max-bytes, 0 = no limit */
    const char *data_dir;          /* the position lives in <data_dir>/remote/position */
    size_t max_series_per_request; /* 2000 */
    size_t max_bytes_per_request;  /* protobuf bytes before snappy, 1 MiB */
    int64_t timeout_ms;            /* one request, 30 s */
    int64_t backoff_max_ms;        /* longest wait between retries, 30 s */
} remote_ship_options_t;

void remote_ship_options_init(remote_ship_options_t *o);

typedef struct remote_ship remote_ship_t;

/* Reads the position file and starts the thread over db (opened with
 * wal_retain).  A damaged position file is logged and shipping starts at the
 * oldest WAL record kept (everything kept is sent again, nothing lost). */
int remote_ship_start(tsdb_t *db, const remote_ship_options_t *o, remote_ship_t **out);
/* Stops the thread (a request in flight is abandoned, to be sent again at the
 * next start) and frees it.  NULL is a no-op. */
void remote_ship_stop(remote_ship_t *s);

/* For the write path: 0, or STRATA_ENOSPC with a message in why when the WAL
 * not yet shipped is past queue_max_bytes (the client retries on 503). */
int remote_ship_admit(remote_ship_t *s, char *why, size_t cap);

/* The shipper's /metrics lines; writes at most cap bytes (NUL included) and
 * returns their length (without the NUL: cap or more means cut short). */
size_t remote_ship_render(remote_ship_t *s, char *buf, size_t cap);

#endif
