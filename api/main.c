/*
 * main.c: the strata daemon's entry point: flags (api/daemon/config.c) and
 * wiring, startup and shutdown.
 *
 * Startup order matters: the HTTP listener comes up first (so /healthz works
 * and /readyz says 503), then a thread opens the store (api/daemon/store.c),
 * which replays the WAL, and flips the server to ready.  SIGTERM/SIGINT are
 * taken with sigwait() in the main thread (blocked in every other thread):
 * stop accepting, let in-flight requests finish, close the store (which syncs
 * the WAL), exit 0 (docs/api.md, "Operations").
 */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "memory.h"
#include "housekeeping.h"
#include "registry.h"
#include "routes_admin.h"
#include "routes_console.h"
#include "routes_metrics.h"
#include "routes_reports.h"
#include "routes_telemetry.h"
#include "routes_workloads.h"
#include "store.h"
#include "strata_log.h"

int main(int argc, char **argv)
{
    daemon_memory_tune();
    daemon_config_t c;
    int prc = daemon_config_parse(argc, argv, &c);
    if (prc) return prc == 1 ? 0 : 2;
    strata_log_set_level(c.log_level_value);
    if (daemon_config_check(&c)) return 2;
    char *cert = NULL, *key = NULL;
    if (c.tls_cert) {
        cert = daemon_read_file(c.tls_cert);
        key = daemon_read_file(c.tls_key);
        if (!cert || !key) {
            strata_error("cannot read the TLS certificate or key", "cert=%s key=%s", c.tls_cert, c.tls_key);
            free(cert);
            free(key);
            return 2;
        }
    }
    api_auth_t *auth;
    if (api_auth_new(!strcmp(c.auth, "jwt") ? API_AUTH_JWT : API_AUTH_NONE, c.jwt_secret_file,
                     c.jwt_public_key, &auth)) {
        free(cert);
        free(key);
        return 2;
    }
    api_auth_set_require_exp(auth, c.jwt_require_exp);

    /* Signals are taken by sigwait below; every thread created from here on
     * inherits the blocked mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    api_registry_options_t ropts;
    api_registry_options_init(&ropts);
    ropts.staleness_ms = c.staleness_ms;
    ropts.gpu_idle_after_ms = c.gpu_idle_after_ms;
    api_registry_t *reg;
    if (api_registry_new(&ropts, &reg)) {
        strata_error("cannot create the workload registry", "%s", "");
        api_auth_free(auth);
        free(cert);
        free(key);
        return 1;
    }
    api_route_t routes[32];
    size_t nroutes = 0;
    routes[nroutes++] = api_admin_cut_head_route();
    api_reports_ref_t reports = { 0 };
    api_reports_tsdb_source_t gen = { .reader = NULL,
                                      .staleness_ms = c.staleness_ms,
                                      .gpu_idle_after_ms = c.gpu_idle_after_ms,
                                      .raw_only = c.report_raw,
                                      .timeout_ms = c.report_timeout_ms };
    api_metrics_options_t mopts;
    api_metrics_options_init(&mopts);
    mopts.max_points = c.max_points;
    mopts.max_range_ms = c.max_range_ms;
    mopts.max_samples = c.query_max_samples;
    mopts.timeout_ms = c.query_timeout_ms;
    mopts.staleness_ms = c.staleness_ms;
    api_metrics_http_t metrics_http = { .reg = reg, .opts = mopts };
    routes[nroutes++] = api_telemetry_route(reg); /* before /workloads/{} */
    routes[nroutes++] = api_metrics_route(&metrics_http);
    nroutes += api_workloads_routes(reg, routes + nroutes, sizeof routes / sizeof routes[0] - nroutes);
    nroutes += api_reports_routes(&reports, routes + nroutes, sizeof routes / sizeof routes[0] - nroutes);
    nroutes += api_console_routes(routes + nroutes, sizeof routes / sizeof routes[0] - nroutes);

    api_server_config_t sc = {
        .listen = c.listen,
        .threads = c.threads,
        .max_connections = c.max_connections,
        .connection_timeout_s = c.http_timeout_s,
        .header_timeout_ms = c.header_timeout_ms,
        .body_min_rate = c.body_min_rate,
        .max_connections_per_ip = c.max_connections_per_ip,
        .shutdown_timeout_s = c.shutdown_timeout_s,
        .tls_cert_pem = cert,
        .tls_key_pem = key,
        .auth = auth,
        .max_request_bytes = c.limits.max_request_bytes,
        .routes = routes,
        .nroutes = nroutes,
        .extra_metrics = api_metrics_http_render,
        .extra_metrics_ctx = &metrics_http,
    };
    api_server_t *srv;
    if (api_server_start(&sc, &srv)) {
        api_registry_free(reg);
        api_auth_free(auth);
        free(cert);
        free(key);
        return 1;
    }

    api_reports_delay_t delay = { 0 };
    daemon_store_t o = { .cfg = &c,
                         .srv = srv,
                         .reg = reg,
                         .reports = &reports,
                         .gen = &gen,
                         .delay = &delay,
                         .main_thread = pthread_self() };
    pthread_t th;
    if (pthread_create(&th, NULL, daemon_store_open, &o) != 0) {
        strata_error("cannot start the store thread", "%s", "");
        api_server_stop(srv);
        api_registry_free(reg);
        api_auth_free(auth);
        free(cert);
        free(key);
        return 1;
    }
    daemon_housekeeper_t hk;
    daemon_housekeeper_start(&hk, reg, c.retention_ms ? c.retention_ms : 15 * 86400000LL);
    int sig = 0;
    sigwait(&sigs, &sig);
    if (!o.failed) strata_info("shutting down", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pthread_join(th, NULL);     /* a replay in progress finishes first (the server must outlive it) */
    daemon_store_unobserve(&o); /* before the server it reports to is freed */
    api_server_stop(srv);       /* no request touches the store after this */
    daemon_housekeeper_stop(&hk);
    api_reports_close(reports.st); /* a generation in progress is cancelled, left Pending */
    daemon_store_close(&o);
    api_registry_free(reg);
    api_auth_free(auth);
    free(cert);
    free(key);
    strata_info("stopped", "exit=%d", o.failed ? 1 : 0);
    return o.failed ? 1 : 0;
}
