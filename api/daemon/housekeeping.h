/*
 * housekeeping.h: the daemon's periodic chores: once a minute, forget ended
 * workloads older than the retention (docs/registry.md).
 */
#ifndef DAEMON_HOUSEKEEPING_H
#define DAEMON_HOUSEKEEPING_H

#include <pthread.h>
#include <stdint.h>

#include "registry.h"

typedef struct daemon_housekeeper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    api_registry_t *reg;
    int64_t retain_ms;
    pthread_t th;
    int started;
} daemon_housekeeper_t;

/* Starts the thread (if it cannot start, the daemon runs without it). */
void daemon_housekeeper_start(daemon_housekeeper_t *h, api_registry_t *reg, int64_t retain_ms);
/* Wakes and joins the thread. */
void daemon_housekeeper_stop(daemon_housekeeper_t *h);

#endif
