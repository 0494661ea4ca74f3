/*
 * metrics_internal.h: the metrics response as the query builds it and the
 * renderers read it.  Private to api/query (metrics_query.c writes it,
 * metrics_render.c turns it into JSON or CSV); everyone else sees the opaque
 * api_metrics_response_t of metrics_query.h.  All of it lives in the
 * request's arena.
 */
#ifndef API_METRICS_INTERNAL_H
#define API_METRICS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "downsample.h"
#include "metrics_query.h"

/* One measurement: a combined series, one GPU's series, or a failed type. */
typedef struct measurement {
    int type;               /* enum api_metric_type */
    const char *gpu, *node; /* per-GPU labels, else NULL */
    api_point_t *pts;
    size_t n;
    const char *error; /* the type failed: values null, labels {"error"} */
} measurement_t;

/* One histogram type's answer. */
typedef struct hseries {
    int type;      /* enum api_metric_type */
    api_hist_t *h; /* API_CATALOG_HIST: NULL when no data */
    int64_t *qt;   /* API_CATALOG_PCT: steps with a quantile */
    double (*qv)[API_CATALOG_NQUANTILES];
    size_t nq;
} hseries_t;

struct api_metrics_response {
    measurement_t *m; /* in request order, a per-GPU type's GPUs in a row */
    size_t nm, mcap;
    hseries_t *h; /* one per requested histogram type, in request order */
    size_t nh;
    int partial;
    uint64_t points_read;
    uint64_t damaged_pages; /* damaged block pages the reads skipped */
};

#endif
