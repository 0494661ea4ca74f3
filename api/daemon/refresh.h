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

/* A gateway's ingest -> registry feed (an ingest_observer_fn, ctx = a
 * daemon_gateway_feed_t): api_workloads_observe() of each written series,
 * less its stale markers when the engine's reads do not return them
 * (api_read_source_stale_markers).  The registry then holds what a refresh
 * from the engine gives it, whichever gateway took the push: without this
 * the gateway that received a marker ended the series there and the others,
 * reading the engine, at the staleness (docs/scale-out.md, "Registry
 * refresh"). */
typedef struct daemon_gateway_feed {
    api_registry_t *reg;
    const api_read_source_t *reader;
} daemon_gateway_feed_t;
int daemon_gateway_observe(void *ctx, int32_t tenant, const tsdb_series_input_t *series);

#endif
