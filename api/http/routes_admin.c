/*
 * routes_admin.c: POST /api/v1/admin/cut-head: cuts the whole head into a
 * block now (WAL checkpointed), so a benchmark can measure compressed block
 * bytes right after ingest instead of waiting for --block-duration
 * (docs/benchmarks.md); answers the store's block and WAL sizes.
 */
#include "routes_admin.h"

#include <stdio.h>

static int h_cut_head(api_call_t *c, void *ctx)
{
    (void)ctx;
    tsdb_t *db = api_call_db(c);
    int rc = tsdb_cut_head(db);
    if (rc) return rc; /* logged by tsdb */
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    char body[160];
    int n = snprintf(body, sizeof body, "{\"blocks\":%llu,\"block_bytes\":%llu,\"wal_bytes\":%llu}",
                     (unsigned long long)st.blocks, (unsigned long long)st.block_bytes,
                     (unsigned long long)st.wal_bytes);
    return api_call_reply(c, 200, NULL, body, (size_t)n);
}

api_route_t api_admin_cut_head_route(void)
{
    return (api_route_t){ "POST", "/api/v1/admin/cut-head", API_SCOPE_METRICS_WRITE, h_cut_head, NULL, 0 };
}
