/*
 * store.h: opening the daemon's store in the background (tsdb with its WAL
 * replay, ingest, the read seam, the registry rebuilt from the store, the
 * report store), then turning the server ready; and closing it at shutdown
 * (docs/api.md, "Operations").
 */
#ifndef DAEMON_STORE_H
#define DAEMON_STORE_H

#include <pthread.h>

#include "api.h"
#include "config.h"
#include "refresh.h"
#include "registry.h"
#include "report_delay.h"
#include "ship.h"
#include "routes_reports.h"

typedef struct daemon_store {
    /* given */
    const daemon_config_t *cfg;
    api_server_t *srv;
    api_registry_t *reg;
    api_reports_ref_t *reports;     /* its st is filled */
    api_reports_tsdb_source_t *gen; /* its reader is filled */
    api_reports_delay_t *delay;     /* filled with --report-worker-delay */
    pthread_t main_thread;          /* gets SIGTERM when the store cannot be opened */
    /* filled by daemon_store_open */
    tsdb_t *db;
    ingest_t *ing;
    api_read_source_t *reader;
    remote_ship_t *ship;        /* --remote-write-url: the shipper, or NULL */
    daemon_refresher_t refresh; /* with --remote-query-url */
    daemon_gateway_feed_t feed; /* with --remote-query-url: ingest -> registry */
    int failed;
} daemon_store_t;

/* A thread body (arg = a daemon_store_t): opens everything, then
 * api_server_set_store(); on failure logs, sets failed and signals the main
 * thread. */
void *daemon_store_open(void *arg);

/* Stops the WAL's fsync reports to the server (before the server is freed). */
void daemon_store_unobserve(daemon_store_t *s);

/* Stops the shipper, frees ingest and the read seam, syncs the WAL and closes the store. */
void daemon_store_close(daemon_store_t *s);

#endif
