/*
 * refresh.c: the registry refresh thread of a gateway (refresh.h).  Each
 * round replays the engine's workload series since the last round, less an
 * overlap for samples that arrive late; api_registry_observe ignores what
 * the registry has already seen, so reading a window twice is harmless.
 * Also the gateway's feed of its own pushes into the registry, which leaves
 * out the stale markers an engine's reads do not return.
 */
#include "refresh.h"

#include <time.h>

#include <stdlib.h>

#include "ingest.h"
#include "registry_feed.h"
#include "strata_log.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *refresh(void *arg)
{
    daemon_refresher_t *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t wake = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + r->interval_ms;
        ts.tv_sec = wake / 1000;
        ts.tv_nsec = (long)(wake % 1000) * 1000000L;
        pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        if (r->stop) break;
        pthread_mutex_unlock(&r->mu);
        int64_t now = now_ms();
        size_t n = 0;
        int64_t from = r->from_ms < INT64_MIN + r->overlap_ms ? INT64_MIN : r->from_ms - r->overlap_ms;
        int rc = api_registry_replay(r->reg, r->reader, from, now + INGEST_MAX_FUTURE_MS, &n);
        if (rc == 0)
            r->from_ms = now; /* a failed round is read again next time */
        else
            strata_warn("registry refresh from the engine failed; next round retries", "err=\"%s\"",
                        strata_strerror(rc));
        strata_log(STRATA_LOG_DEBUG, "registry refreshed", "series=%zu", n);
        pthread_mutex_lock(&r->mu);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

void daemon_refresher_start(daemon_refresher_t *r, api_registry_t *reg, const api_read_source_t *reader,
                            int64_t interval_ms, int64_t from_ms, int64_t overlap_ms)
{
    r->stop = 0;
    r->reg = reg;
    r->reader = reader;
    r->interval_ms = interval_ms;
    r->from_ms = from_ms;
    r->overlap_ms = overlap_ms;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->started = pthread_create(&r->th, NULL, refresh, r) == 0;
    if (!r->started) strata_error("cannot start the registry refresh thread", "%s", "");
}

void daemon_refresher_stop(daemon_refresher_t *r)
{
    if (!r->started) return;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->th, NULL);
    r->started = 0;
}

int daemon_gateway_observe(void *ctx, int32_t tenant, const tsdb_series_input_t *series)
{
    daemon_gateway_feed_t *f = ctx;
    size_t keep = 0;
    for (size_t i = 0; i < series->nsamples; i++) keep += !tsdb_is_stale(series->samples[i].v);
    if (keep == series->nsamples || api_read_source_stale_markers(f->reader))
        return api_workloads_observe(f->reg, tenant, series);
    if (keep == 0) return 0;
    tsdb_sample_t *s = malloc(keep * sizeof *s);
    if (!s) return STRATA_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < series->nsamples; i++)
        if (!tsdb_is_stale(series->samples[i].v)) s[k++] = series->samples[i];
    tsdb_series_input_t in = { series->labels, series->nlabels, s, k };
    int rc = api_workloads_observe(f->reg, tenant, &in);
    free(s);
    return rc;
}
