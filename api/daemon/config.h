/*
 * config.h: the strata daemon's configuration: its flags, --help, and the
 * checks and files that come with them (docs/api.md, "Tenants and auth",
 * "Operations").
 */
#ifndef DAEMON_CONFIG_H
#define DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "strata_log.h"

typedef struct daemon_config {
    const char *listen, *data_dir, *auth, *jwt_secret_file, *jwt_public_key;
    const char *tls_cert, *tls_key, *log_level, *wal_fsync;
    enum strata_log_level log_level_value; /* --log-level, parsed */
    int insecure;
    int jwt_require_exp; /* --jwt-require-exp (default 1) */
    int64_t retention_ms, ooo_window_ms, block_duration_ms, fsync_interval_ms;
    int64_t staleness_ms, gpu_idle_after_ms, report_retention_ms, max_range_ms;
    int64_t report_worker_delay_ms; /* test-only */
    int64_t report_timeout_ms;      /* --report-timeout: deadline of one report's reads */
    size_t max_points;
    uint64_t query_max_samples;
    int64_t query_timeout_ms; /* --query-timeout: deadline of an export or metrics request's reads */
    unsigned report_workers;
    int report_raw; /* --report-source=raw */
    uint64_t retention_bytes;
    ingest_limits_t limits;
    unsigned threads, max_connections, http_timeout_s, shutdown_timeout_s;
    unsigned header_timeout_ms, max_connections_per_ip; /* docs/api.md, "Slow clients" */
    size_t body_min_rate;                               /* bytes a second, 0 = off */
    /* scale-out write path (docs/scale-out.md): NULL url = no shipping */
    const char *remote_write_url, *remote_tenant_header, *remote_bearer_token_file, *remote_ca_file;
    int remote_write_version;
    uint64_t remote_queue_max_bytes; /* 0 = no limit */
    /* the read path of a gateway (docs/scale-out.md, "Read path") */
    const char *remote_query_url;    /* --remote-query-url: read from this engine, not the store */
    const char *remote_query_flavor; /* --remote-query-flavor=auto|prometheus|victoriametrics */
    int32_t remote_tenants[64];      /* --remote-tenants: whom the registry rebuild walks */
    size_t nremote_tenants;
    int64_t registry_refresh_ms; /* --registry-refresh (15s) */
} daemon_config_t;

/* Parses argv into c (defaults for what is not given; strings point into
 * argv).  0 = run, 1 = --help printed (exit 0), 2 = usage error (printed). */
int daemon_config_parse(int argc, char **argv, daemon_config_t *c);

/* The checks that need the log (--auth=none off loopback, --tls-cert without
 * --tls-key): 0, or 2 after logging why. */
int daemon_config_check(const daemon_config_t *c);

/* A file's whole contents, NUL-terminated (malloc'd); NULL when unreadable. */
char *daemon_read_file(const char *path);

#endif
