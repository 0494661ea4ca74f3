/*
 * housekeeping.c: the daemon's housekeeping thread: every minute it drops
 * ended workloads older than the retention from the registry
 * (api_registry_gc, docs/registry.md), until stopped.
 */
#include "housekeeping.h"

#include <time.h>

#include "strata_log.h"

/* Forgets ended workloads once they are older than the retention, every minute. */
static void *housekeep(void *arg)
{
    daemon_housekeeper_t *h = arg;
    pthread_mutex_lock(&h->mu);
    while (!h->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 60;
        pthread_cond_timedwait(&h->cv, &h->mu, &ts);
        if (h->stop) break;
        pthread_mutex_unlock(&h->mu);
        clock_gettime(CLOCK_REALTIME, &ts);
        size_t dropped = 0;
        int rc = api_registry_gc(h->reg, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, h->retain_ms,
                                 &dropped);
        if (rc)
            strata_warn("registry gc failed", "err=\"%s\"", strata_strerror(rc));
        else if (dropped)
            strata_info("registry gc", "workloads_dropped=%zu", dropped);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

void daemon_housekeeper_start(daemon_housekeeper_t *h, api_registry_t *reg, int64_t retain_ms)
{
    h->stop = 0;
    h->reg = reg;
    h->retain_ms = retain_ms;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->started = pthread_create(&h->th, NULL, housekeep, h) == 0;
}

void daemon_housekeeper_stop(daemon_housekeeper_t *h)
{
    if (!h->started) return;
    pthread_mutex_lock(&h->mu);
    h->stop = 1;
    pthread_cond_signal(&h->cv);
    pthread_mutex_unlock(&h->mu);
    pthread_join(h->th, NULL);
}
