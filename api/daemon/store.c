/*
 * store.c: the daemon's store, opened in a thread of its own so the HTTP
 * listener answers /healthz (and /readyz 503) during a long WAL replay, then
 * flips the server ready; closed at shutdown after the server has stopped
 * (docs/api.md, "Operations").
 */
#include "store.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include "registry_feed.h"
#include "strata_log.h"

void *daemon_store_open(void *arg)
{
    daemon_store_t *o = arg;
    const daemon_config_t *c = o->cfg;
    tsdb_options_t opts;
    tsdb_options_init(&opts);
    opts.dir = c->data_dir;
    opts.block_duration_ms = c->block_duration_ms;
    opts.retention_ms = c->retention_ms;
    opts.retention_bytes = c->retention_bytes;
    opts.ooo_window_ms = c->ooo_window_ms;
    opts.fsync = !strcmp(c->wal_fsync, "always")  ? TSDB_FSYNC_ALWAYS
                 : !strcmp(c->wal_fsync, "never") ? TSDB_FSYNC_NEVER
                                                  : TSDB_FSYNC_INTERVAL;
    opts.fsync_interval_ms = (int)c->fsync_interval_ms;
    opts.rollup_zero_run_ms = c->gpu_idle_after_ms;
    opts.wal_retain = c->remote_write_url != NULL; /* WAL segments stay until shipped */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = tsdb_open(&opts, &o->db);
    if (rc == 0) {
        tsdb_set_fsync_observer(o->db, api_server_observe_fsync, o->srv);
        rc = ingest_new(o->db, &c->limits, &o->ing);
    }
    if (rc == 0 && c->remote_write_url) {
        remote_ship_options_t so;
        remote_ship_options_init(&so);
        so.url = c->remote_write_url;
        so.version = c->remote_write_version;
        so.tenant_header = c->remote_tenant_header;
        so.bearer_token_file = c->remote_bearer_token_file;
        so.ca_file = c->remote_ca_file;
        so.queue_max_bytes = c->remote_queue_max_bytes;
        so.data_dir = c->data_dir;
        rc = remote_ship_start(o->db, &so, &o->ship);
        if (rc == 0) api_server_set_shipper(o->srv, o->ship);
    }
    if (rc == 0 && c->remote_query_url) {
        /* a gateway: every reader answers from the engine (docs/scale-out.md) */
        api_read_remote_opts_t ro = { .url = c->remote_query_url,
                                      .flavor = c->remote_query_flavor,
                                      .tenant_header = c->remote_tenant_header,
                                      .bearer_token_file = c->remote_bearer_token_file,
                                      .ca_file = c->remote_ca_file,
                                      .tenants = c->remote_tenants,
                                      .ntenants = c->nremote_tenants,
                                      .timeout_ms = c->query_timeout_ms };
        rc = api_read_source_prom(&ro, &o->reader);
    } else if (rc == 0)
        rc = api_read_source_tsdb(o->db, &o->reader);
    if (rc == 0) api_read_source_set_limits(o->reader, c->query_timeout_ms, c->query_max_samples);
    if (rc == 0) {
        /* the registry lives in memory: rebuild it from the store before taking traffic */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        size_t nser = 0;
        int64_t mint = c->retention_ms ? now_ms - c->retention_ms : INT64_MIN;
        rc = api_registry_replay(o->reg, o->reader, mint, now_ms + INGEST_MAX_FUTURE_MS, &nser);
        if (rc == 0) strata_info("registry replayed", "series=%zu", nser);
        if (c->remote_query_url && (rc == 0 || rc == STRATA_EIO || rc == STRATA_ETIMEOUT)) {
            /* an engine down at start does not keep the gateway down: the
             * first refresh that reaches it reads the whole window */
            if (rc)
                strata_warn("registry not rebuilt: the engine did not answer; the refresh retries", "url=%s",
                            c->remote_query_url);
            daemon_refresher_start(&o->refresh, o->reg, o->reader, c->registry_refresh_ms, rc ? mint : now_ms,
                                   c->ooo_window_ms + c->registry_refresh_ms);
            rc = 0;
        }
    }
    if (rc == 0 && c->remote_query_url) {
        o->feed = (daemon_gateway_feed_t){ o->reg, o->reader };
        ingest_set_observer(o->ing, daemon_gateway_observe, &o->feed);
    } else if (rc == 0)
        ingest_set_observer_ref(o->ing, api_workloads_observe_ref, o->reg);
    /* the registry's series are decided once per series (ctx unused) */
    if (rc == 0) ingest_set_observer_filter(o->ing, api_workloads_wants);
    if (rc == 0) {
        /* report workers start inside api_reports_open and read the store at once */
        o->gen->reader = o->reader;
        api_reports_options_t ro;
        api_reports_options_init(&ro);
        ro.workers = (int)c->report_workers;
        ro.retention_ms = c->report_retention_ms;
        ro.data_retention_ms = c->retention_ms; /* a report may not start before the data */
        ro.generate = api_reports_tsdb_generate;
        ro.generate_ctx = o->gen;
        if (c->report_worker_delay_ms > 0) {
            *o->delay = (api_reports_delay_t){ c->report_worker_delay_ms, api_reports_tsdb_generate, o->gen };
            ro.generate = api_reports_delayed_generate;
            ro.generate_ctx = o->delay;
        }
        rc = api_reports_open(c->data_dir, &ro, &o->reports->st);
    }
    if (rc) {
        char q[512];
        strata_error("cannot open the store", "dir=%s err=%s", strata_log_quote(q, sizeof q, c->data_dir),
                     strata_strerror(rc));
        o->failed = 1;
        pthread_kill(o->main_thread, SIGTERM);
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    tsdb_stats_t st;
    tsdb_get_stats(o->db, &st);
    strata_info("store ready", "dir=%s series=%llu head_samples=%llu blocks=%llu open_seconds=%.3f",
                c->data_dir, (unsigned long long)st.series, (unsigned long long)st.head_samples,
                (unsigned long long)st.blocks,
                (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    api_server_set_store(o->srv, o->db, o->ing, o->reader);
    return NULL;
}

void daemon_store_unobserve(daemon_store_t *s)
{
    /* the WAL's fsync observer points into the server, which stop frees;
     * the final sync would otherwise report to freed memory */
    if (s->db) tsdb_set_fsync_observer(s->db, NULL, NULL);
}

void daemon_store_close(daemon_store_t *s)
{
    remote_ship_stop(s->ship);          /* the server has stopped: no write asks it any more */
    daemon_refresher_stop(&s->refresh); /* it reads through the source freed below */
    ingest_free(s->ing);
    api_read_source_free(s->reader);
    if (s->db) {
        int rc = tsdb_sync(s->db);
        if (rc) strata_error("final WAL sync failed", "err=\"%s\"", strata_strerror(rc));
        tsdb_close(s->db);
    }
}
