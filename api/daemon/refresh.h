/*
 * refresh.h: with --remote-query-url, the workload registry is refreshed
 * from the engine every --registry-refresh, so gateways that each receive
 * part of the pushes answer alike (docs/scale-out.md, "Read path").
 */
#ifndef DAEMON_REFRESH_H
#define DAEMON_REFRESH_H

#include <pthread.h>
#include <stdint.h>

#include "read.h"
#include "registry.h"

typedef struct daemon_refresher {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, started;
    api_registry_t *reg;
    const api_read_source_t *reader;
    int64_t interval_ms;
    int64_t from_ms; /* the next refresh reads from here (ms since the epoch) */
    int64_t overlap_ms;
    pthread_t th;
} daemon_refresher_t;

/* Starts the thread; from_ms is where the rebuild at start ended reading,
 * overlap_ms how far back each refresh reads again (late samples: the
 * out-of-order window).  Without a thread the registry is only rebuilt at
 * start (logged). */
void daemon_refresher_start(daemon_refresher_t *r, api_registry_t *reg, const api_read_source_t *reader,
                            int64_t interval_ms, int64_t from_ms, int64_t overlap_ms);
/* Wakes and joins the thread (a refresh in progress finishes first). */
void daemon_refresher_stop(daemon_refresher_t *r);

#endif
