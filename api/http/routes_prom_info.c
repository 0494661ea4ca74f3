/*
 * routes_prom_info.c: GET /api/v1/metadata and GET /api/v1/status/buildinfo
 * of the Prometheus HTTP API (docs/promql.md, "HTTP API").
 *
 * buildinfo says honestly that this is strata (revision, branch, buildUser),
 * with a Prometheus version in "version": Grafana reads that field to decide
 * which query features the data source may use, and strata answers the API
 * of Prometheus 2.42 (plus the 3.x limit parameter).
 *
 * metadata: Prometheus answers it from its scrape targets; strata answers
 * what remote write sent (RW1 MetricMetadata, kept per tenant by ingest,
 * ingest_metadata_list), in the same shape, and {} when nothing was sent.
 */
#include "routes_prom.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ingest.h"
#include "prom.h"

#define PROM_COMPAT_VERSION "2.42.0"

static int h_buildinfo(api_call_t *c, void *ctx)
{
    (void)ctx;
    static const char data[] = "{\"version\":\"" PROM_COMPAT_VERSION "\",\"revision\":\"strata\","
                               "\"branch\":\"strata\",\"buildUser\":\"strata\",\"buildDate\":\"\","
                               "\"goVersion\":\"none: strata is written in C\"}";
    return api_prom_reply_data(c, data, sizeof data - 1, NULL, 0);
}

static int h_metadata(api_call_t *c, void *ctx)
{
    (void)ctx;
    api_prom_params_t p;
    if (api_prom_params_collect(c, &p)) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    const char *limit = api_prom_param(&p, "limit");
    long long max = -1;
    if (limit && *limit) {
        /* Go's strconv.Atoi: an optional sign and decimal digits, in range */
        char *end;
        errno = 0;
        (void)strtoll(limit, &end, 10);
        int ok = *end == '\0' && errno == 0 && limit[0] != ' ' && limit[0] != '\t' && limit[0] != '\n';
        if (!ok) return api_prom_reply_error(c, STRATA_EINVAL, "limit must be a number");
        max = strtoll(limit, NULL, 10);
    }
    ingest_metadata_t *m;
    size_t n;
    int rc = ingest_metadata_list(api_call_ingest(c), api_call_principal(c)->tenant_id,
                                  api_prom_param(&p, "metric"), api_call_arena(c), &m, &n);
    if (rc) return api_prom_reply_error(c, rc, NULL);
    /* a negative limit is none, as in Prometheus */
    if (max >= 0 && (uint64_t)max < n) n = (size_t)max;
    strata_buf_t b;
    strata_buf_init(&b, api_call_arena(c), 64 + n * 96);
    strata_buf_puts(&b, "{");
    for (size_t i = 0; i < n; i++) {
        if (i) strata_buf_puts(&b, ",");
        api_prom_json_string(&b, m[i].family);
        strata_buf_puts(&b, ":[{\"type\":");
        api_prom_json_string(&b, m[i].type);
        strata_buf_puts(&b, ",\"help\":");
        api_prom_json_string(&b, m[i].help);
        strata_buf_puts(&b, ",\"unit\":");
        api_prom_json_string(&b, m[i].unit);
        strata_buf_puts(&b, "}]");
    }
    strata_buf_puts(&b, "}");
    if (b.failed) return api_prom_reply_error(c, STRATA_ENOMEM, NULL);
    return api_prom_reply_data(c, b.data, b.len, NULL, 0);
}

size_t api_prom_info_routes(api_route_t *out, size_t cap)
{
    const api_route_t routes[] = {
        { "GET", "/api/v1/metadata", API_SCOPE_METRICS_READ, h_metadata, NULL, 0 },
        { "GET", "/api/v1/status/buildinfo", API_SCOPE_METRICS_READ, h_buildinfo, NULL, 0 },
    };
    size_t n = sizeof routes / sizeof routes[0];
    if (n > cap) n = cap;
    memcpy(out, routes, n * sizeof *out);
    return n;
}
