/*
 * registry_feed.c: the ingest -> registry feed: every series remote write
 * stores is handed to api_registry_observe(), samples in ascending time
 * order (docs/registry.md).
 */
#include "registry_feed.h"

#include <stdlib.h>
#include <string.h>

static int feed(void *ctx, int32_t tenant, uint32_t ref, const tsdb_series_input_t *s)
{
    const tsdb_sample_t *samples = s->samples;
    tsdb_sample_t *sorted = NULL;
    for (size_t i = 1; i < s->nsamples; i++)
        if (samples[i].t < samples[i - 1].t) {
            /* rare (senders write in order); the registry wants ascending */
            sorted = malloc(s->nsamples * sizeof *sorted);
            if (!sorted) return STRATA_ENOMEM;
            memcpy(sorted, samples, s->nsamples * sizeof *sorted);
            for (size_t a = 1; a < s->nsamples; a++) {
                tsdb_sample_t x = sorted[a];
                size_t b = a;
                while (b > 0 && sorted[b - 1].t > x.t) {
                    sorted[b] = sorted[b - 1];
                    b--;
                }
                sorted[b] = x;
            }
            samples = sorted;
            break;
        }
    int rc = api_registry_observe_ref(ctx, tenant, ref, s->labels, s->nlabels, samples, s->nsamples);
    free(sorted);
    return rc;
}

int api_workloads_observe(void *ctx, int32_t tenant, const tsdb_series_input_t *s)
{
    return feed(ctx, tenant, 0, s);
}

int api_workloads_observe_ref(void *ctx, int32_t tenant, uint32_t ref, const tsdb_series_input_t *s)
{
    return feed(ctx, tenant, ref, s);
}

int api_workloads_wants(void *ctx, const tsdb_series_input_t *series)
{
    (void)ctx;
    return api_registry_uses_series(series->labels, series->nlabels);
}
