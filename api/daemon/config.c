/*
 * config.c: the strata daemon's flags (getopt_long), --help, the checks on
 * their combination, and reading the files they name.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strata_time.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: strata [flags]\n"
        "\n"
        "strata: Prometheus remote-write ingest, time-series store and Run:ai-compatible API.\n"
        "\n"
        "  --listen=HOST:PORT             listen address ([v6]:port too)       (127.0.0.1:9201)\n"
        "  --data-dir=DIR                 data directory                        (data)\n"
        "  --retention=DURATION           drop data older than this, 0 = never  (15d)\n"
        "  --retention-size=BYTES         drop oldest blocks beyond this, 0 = no limit (0)\n"
        "  --wal-fsync=always|interval|never  when the WAL is fsynced           (interval)\n"
        "  --wal-fsync-interval=DURATION  group-commit interval for =interval   (100ms)\n"
        "  --block-duration=DURATION      head cut interval                     (2h)\n"
        "  --ooo-window=DURATION          accept samples this far behind a series' newest (10m)\n"
        "  --auth=none|jwt                request authentication                (none)\n"
        "  --jwt-secret-file=FILE         HS256 secret for --auth=jwt\n"
        "  --jwt-public-key=FILE          RS256 public key for --auth=jwt: PEM (-----BEGIN PUBLIC "
        "KEY-----),\n"
        "                                 checked at start\n"
        "  --jwt-require-exp[=true|false] refuse tokens without an exp claim; --no-jwt-require-exp\n"
        "                                 lets them never expire                (true)\n"
        "  --insecure                     allow --auth=none on a non-loopback address\n"
        "  --tls-cert=FILE --tls-key=FILE serve HTTPS with this PEM certificate and key\n"
        "  --max-request-bytes=BYTES      decompressed remote-write body limit  (32MiB)\n"
        "  --max-series-per-tenant=N      series a tenant may have, 0 = no limit (0)\n"
        "  --max-labels-per-series=N      labels a series may carry, 0 = no limit (64)\n"
        "  --max-label-name-length=N      bytes, 0 = no limit                   (1024)\n"
        "  --max-label-value-length=N     bytes, 0 = no limit                   (4096)\n"
        "  --threads=N                    no effect: every connection has its own thread, up to\n"
        "                                 --max-connections (accepted for old command lines)\n"
        "  --max-connections=N            concurrent HTTP connections           (1024)\n"
        "  --http-timeout=DURATION        idle connection timeout               (60s)\n"
        "  --header-timeout=DURATION      a connection's request headers must be complete this long\n"
        "                                 after it opens (kept alive: after its request line);\n"
        "                                 also a body's grace before --body-min-rate, 0 = off (10s)\n"
        "  --body-min-rate=BYTES          a request body must then arrive at this many bytes a\n"
        "                                 second on average, 0 = off           (64KiB)\n"
        "  --max-connections-per-ip=N     concurrent connections from one client address (loopback\n"
        "                                 too), 0 = no limit                   (64)\n"
        "  --shutdown-timeout=DURATION    wait for in-flight requests at stop   (30s)\n"
        "  --staleness=DURATION           a sample holds this long at most (workloads) (5m)\n"
        "  --gpu-idle-after=DURATION      a GPU at 0%% this long is idle        (5m)\n"
        "  --max-points=N                 numberOfSamples=0 points per series   (11000)\n"
        "  --query-max-samples=N          points one metric type (or export) may read, 0 = no limit "
        "(50000000)\n"
        "  --query-timeout=DURATION       deadline of an export or metrics query, 0 = none (2m)\n"
        "  --max-range=DURATION           longest metrics query range, 0 = none (31d)\n"
        "  --report-retention=DURATION    keep reports this long, 0 = forever   (30d)\n"
        "  --report-workers=N             report generator threads              (1)\n"
        "  --report-timeout=DURATION      deadline of one report's reads, 0 = none (1h)\n"
        "  --report-source=rollups|raw    whole-hour report days from 1h rollups, or always from raw\n"
        "                                 samples (slower; the reference, to cross-check) (rollups)\n"
        "  --report-worker-delay=DURATION test only: wait this long before generating each report (0)\n"
        "  --remote-write-url=URL         forward every accepted sample there (remote-write 1.0);\n"
        "                                 {tenant} in it becomes the tenant's number (off)\n"
        "  --remote-write-version=1|2     remote-write protocol: 1.0, or 2.0 for receivers that take it (1)\n"
        "  --remote-tenant-header=NAME    send the tenant in this header (X-Scope-OrgID, THANOS-TENANT)\n"
        "  --remote-bearer-token-file=FILE  Authorization: Bearer token for the engine (re-read per batch)\n"
        "  --remote-ca-file=FILE          CA certificates to verify an https engine\n"
        "  --remote-queue-max-bytes=BYTES WAL not yet shipped past which writes get 503 (1GiB)\n"
        "  --remote-query-url=URL         read from this Prometheus HTTP API prefix instead of the\n"
        "                                 local store; {tenant} becomes the tenant (docs/scale-out.md)\n"
        "  --remote-query-flavor=auto|prometheus|victoriametrics  how raw samples are fetched (auto)\n"
        "  --remote-tenants=N,N,...       tenants the registry is rebuilt for from the engine (0)\n"
        "  --registry-refresh=DURATION    rebuild the registry from the engine this often (15s)\n"
        "  --log-level=debug|info|warn|error                                    (info)\n"
        "  --help                         this text\n"
        "\n"
        "DURATION: 100ms, 30s, 10m, 1h30m, 15d, 1w.  BYTES: 1048576, 512KiB, 32MiB, 1GiB, 1GB.\n");
}

/* Prometheus durations (strata_time.h): "100ms", "30s", "10m", "1h30m", "15d", "0". */
static int parse_duration_ms(const char *s, int64_t *out) { return strata_duration_parse(s, out) ? -1 : 0; }

static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    static const struct {
        const char *suf;
        double mul;
    } u[] = {
        { "", 1 },
        { "B", 1 },
        { "KiB", 1024.0 },
        { "MiB", 1048576.0 },
        { "GiB", 1073741824.0 },
        { "TiB", 1099511627776.0 },
        { "KB", 1e3 },
        { "MB", 1e6 },
        { "GB", 1e9 },
        { "TB", 1e12 },
        { "k", 1e3 },
        { "K", 1024.0 },
        { "M", 1048576.0 },
        { "G", 1073741824.0 },
    };
    for (size_t i = 0; i < sizeof u / sizeof u[0]; i++)
        if (!strcmp(end, u[i].suf)) {
            if (v * u[i].mul > 1.8e19) return -1;
            *out = (uint64_t)(v * u[i].mul);
            return 0;
        }
    return -1;
}

static int parse_uint(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

enum {
    O_LISTEN = 256,
    O_DATA_DIR,
    O_RETENTION,
    O_RETENTION_SIZE,
    O_WAL_FSYNC,
    O_WAL_FSYNC_INTERVAL,
    O_BLOCK_DURATION,
    O_OOO_WINDOW,
    O_AUTH,
    O_JWT_SECRET,
    O_JWT_PUBKEY,
    O_INSECURE,
    O_TLS_CERT,
    O_TLS_KEY,
    O_MAX_REQUEST,
    O_MAX_SERIES,
    O_MAX_LABELS,
    O_MAX_NAME,
    O_MAX_VALUE,
    O_THREADS,
    O_MAX_CONN,
    O_HTTP_TIMEOUT,
    O_SHUTDOWN_TIMEOUT,
    O_LOG_LEVEL,
    O_HELP,
    O_STALENESS,
    O_GPU_IDLE,
    O_REPORT_RETENTION,
    O_REPORT_WORKERS,
    O_MAX_POINTS,
    O_MAX_RANGE,
    O_REPORT_WORKER_DELAY,
    O_REPORT_TIMEOUT,
    O_QUERY_MAX_SAMPLES,
    O_QUERY_TIMEOUT,
    O_REPORT_SOURCE,
    O_JWT_REQUIRE_EXP,
    O_NO_JWT_REQUIRE_EXP,
    O_HEADER_TIMEOUT,
    O_BODY_MIN_RATE,
    O_MAX_CONN_PER_IP,
    O_REMOTE_WRITE_URL,
    O_REMOTE_WRITE_VERSION,
    O_REMOTE_TENANT_HEADER,
    O_REMOTE_BEARER,
    O_REMOTE_CA,
    O_REMOTE_QUEUE_MAX,
    O_REMOTE_QUERY_URL,
    O_REMOTE_QUERY_FLAVOR,
    O_REMOTE_TENANTS,
    O_REGISTRY_REFRESH,
};

static const struct option options[] = {
    { "listen", required_argument, NULL, O_LISTEN },
    { "data-dir", required_argument, NULL, O_DATA_DIR },
    { "retention", required_argument, NULL, O_RETENTION },
    { "retention-size", required_argument, NULL, O_RETENTION_SIZE },
    { "wal-fsync", required_argument, NULL, O_WAL_FSYNC },
    { "wal-fsync-interval", required_argument, NULL, O_WAL_FSYNC_INTERVAL },
    { "block-duration", required_argument, NULL, O_BLOCK_DURATION },
    { "ooo-window", required_argument, NULL, O_OOO_WINDOW },
    { "auth", required_argument, NULL, O_AUTH },
    { "jwt-secret-file", required_argument, NULL, O_JWT_SECRET },
    { "jwt-public-key", required_argument, NULL, O_JWT_PUBKEY },
    { "jwt-require-exp", optional_argument, NULL, O_JWT_REQUIRE_EXP },
    { "no-jwt-require-exp", no_argument, NULL, O_NO_JWT_REQUIRE_EXP },
    { "insecure", no_argument, NULL, O_INSECURE },
    { "tls-cert", required_argument, NULL, O_TLS_CERT },
    { "tls-key", required_argument, NULL, O_TLS_KEY },
    { "max-request-bytes", required_argument, NULL, O_MAX_REQUEST },
    { "max-series-per-tenant", required_argument, NULL, O_MAX_SERIES },
    { "max-labels-per-series", required_argument, NULL, O_MAX_LABELS },
    { "max-label-name-length", required_argument, NULL, O_MAX_NAME },
    { "max-label-value-length", required_argument, NULL, O_MAX_VALUE },
    { "threads", required_argument, NULL, O_THREADS },
    { "max-connections", required_argument, NULL, O_MAX_CONN },
    { "http-timeout", required_argument, NULL, O_HTTP_TIMEOUT },
    { "header-timeout", required_argument, NULL, O_HEADER_TIMEOUT },
    { "body-min-rate", required_argument, NULL, O_BODY_MIN_RATE },
    { "max-connections-per-ip", required_argument, NULL, O_MAX_CONN_PER_IP },
    { "shutdown-timeout", required_argument, NULL, O_SHUTDOWN_TIMEOUT },
    { "log-level", required_argument, NULL, O_LOG_LEVEL },
    { "staleness", required_argument, NULL, O_STALENESS },
    { "gpu-idle-after", required_argument, NULL, O_GPU_IDLE },
    { "report-retention", required_argument, NULL, O_REPORT_RETENTION },
    { "max-points", required_argument, NULL, O_MAX_POINTS },
    { "max-range", required_argument, NULL, O_MAX_RANGE },
    { "query-max-samples", required_argument, NULL, O_QUERY_MAX_SAMPLES },
    { "query-timeout", required_argument, NULL, O_QUERY_TIMEOUT },
    { "report-workers", required_argument, NULL, O_REPORT_WORKERS },
    { "report-worker-delay", required_argument, NULL, O_REPORT_WORKER_DELAY },
    { "report-timeout", required_argument, NULL, O_REPORT_TIMEOUT },
    { "report-source", required_argument, NULL, O_REPORT_SOURCE },
    { "remote-write-url", required_argument, NULL, O_REMOTE_WRITE_URL },
    { "remote-write-version", required_argument, NULL, O_REMOTE_WRITE_VERSION },
    { "remote-tenant-header", required_argument, NULL, O_REMOTE_TENANT_HEADER },
    { "remote-bearer-token-file", required_argument, NULL, O_REMOTE_BEARER },
    { "remote-ca-file", required_argument, NULL, O_REMOTE_CA },
    { "remote-queue-max-bytes", required_argument, NULL, O_REMOTE_QUEUE_MAX },
    { "remote-query-url", required_argument, NULL, O_REMOTE_QUERY_URL },
    { "remote-query-flavor", required_argument, NULL, O_REMOTE_QUERY_FLAVOR },
    { "remote-tenants", required_argument, NULL, O_REMOTE_TENANTS },
    { "registry-refresh", required_argument, NULL, O_REGISTRY_REFRESH },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
};

static int bad_flag(const char *flag, const char *value)
{
    fprintf(stderr, "strata: invalid value for --%s: %s (see --help)\n", flag, value);
    return 2;
}

int daemon_config_parse(int argc, char **argv, daemon_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:9201";
    c->data_dir = "data";
    c->auth = "none";
    c->jwt_require_exp = 1;
    c->log_level = "info";
    c->wal_fsync = "interval";
    c->retention_ms = 15 * 86400000LL;
    c->ooo_window_ms = 10 * 60000LL;
    c->block_duration_ms = 2 * 3600000LL;
    c->fsync_interval_ms = 100;
    ingest_limits_init(&c->limits);
    c->threads = 4;
    c->max_connections = 1024;
    c->http_timeout_s = 60;
    c->header_timeout_ms = 10000;
    c->body_min_rate = 64 * 1024;
    c->max_connections_per_ip = 64;
    c->shutdown_timeout_s = 30;
    c->staleness_ms = 5 * 60000LL;
    c->gpu_idle_after_ms = 5 * 60000LL;
    c->report_retention_ms = 30 * 86400000LL;
    c->report_timeout_ms = 3600000;
    c->report_workers = 1;
    c->max_points = 11000;
    c->query_max_samples = 50000000;
    c->query_timeout_ms = 120000;
    c->max_range_ms = 31 * 86400000LL;
    c->remote_write_version = 1;
    c->remote_queue_max_bytes = 1ull << 30;
    c->remote_query_flavor = "auto";
    c->nremote_tenants = 1; /* tenant 0 */
    c->registry_refresh_ms = 15000;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = options; o->name; o++)
            if (o->val == opt) name = o->name;
        int64_t d;
        uint64_t u;
        switch (opt) {
        case O_LISTEN: c->listen = optarg; break;
        case O_DATA_DIR: c->data_dir = optarg; break;
        case O_RETENTION:
            if (parse_duration_ms(optarg, &c->retention_ms)) return bad_flag(name, optarg);
            break;
        case O_RETENTION_SIZE:
            if (parse_bytes(optarg, &c->retention_bytes)) return bad_flag(name, optarg);
            break;
        case O_WAL_FSYNC:
            if (strcmp(optarg, "always") && strcmp(optarg, "interval") && strcmp(optarg, "never"))
                return bad_flag(name, optarg);
            c->wal_fsync = optarg;
            break;
        case O_WAL_FSYNC_INTERVAL:
            if (parse_duration_ms(optarg, &c->fsync_interval_ms) || c->fsync_interval_ms < 1 ||
                c->fsync_interval_ms > 60000)
                return bad_flag(name, optarg);
            break;
        case O_BLOCK_DURATION:
            if (parse_duration_ms(optarg, &c->block_duration_ms) || c->block_duration_ms < 60000)
                return bad_flag(name, optarg);
            break;
        case O_OOO_WINDOW:
            if (parse_duration_ms(optarg, &c->ooo_window_ms)) return bad_flag(name, optarg);
            break;
        case O_AUTH:
            if (strcmp(optarg, "none") && strcmp(optarg, "jwt")) return bad_flag(name, optarg);
            c->auth = optarg;
            break;
        case O_JWT_SECRET: c->jwt_secret_file = optarg; break;
        case O_JWT_PUBKEY: c->jwt_public_key = optarg; break;
        case O_JWT_REQUIRE_EXP:
            if (!optarg || !strcmp(optarg, "true"))
                c->jwt_require_exp = 1;
            else if (!strcmp(optarg, "false"))
                c->jwt_require_exp = 0;
            else
                return bad_flag(name, optarg);
            break;
        case O_NO_JWT_REQUIRE_EXP: c->jwt_require_exp = 0; break;
        case O_INSECURE: c->insecure = 1; break;
        case O_TLS_CERT: c->tls_cert = optarg; break;
        case O_TLS_KEY: c->tls_key = optarg; break;
        case O_MAX_REQUEST:
            if (parse_bytes(optarg, &u) || u < 1024 || u > (UINT64_C(1) << 32)) return bad_flag(name, optarg);
            c->limits.max_request_bytes = (size_t)u;
            break;
        case O_MAX_SERIES:
            if (parse_uint(optarg, &c->limits.max_series_per_tenant)) return bad_flag(name, optarg);
            break;
        case O_MAX_LABELS:
            if (parse_uint(optarg, &u)) return bad_flag(name, optarg);
            c->limits.max_labels_per_series = (size_t)u;
            break;
        case O_MAX_NAME:
            if (parse_uint(optarg, &u)) return bad_flag(name, optarg);
            c->limits.max_label_name_length = (size_t)u;
            break;
        case O_MAX_VALUE:
            if (parse_uint(optarg, &u)) return bad_flag(name, optarg);
            c->limits.max_label_value_length = (size_t)u;
            break;
        case O_THREADS:
            if (parse_uint(optarg, &u) || u < 1 || u > 256) return bad_flag(name, optarg);
            c->threads = (unsigned)u;
            break;
        case O_MAX_CONN:
            if (parse_uint(optarg, &u) || u < 1 || u > 1000000) return bad_flag(name, optarg);
            c->max_connections = (unsigned)u;
            break;
        case O_HTTP_TIMEOUT:
            if (parse_duration_ms(optarg, &d) || d < 1000) return bad_flag(name, optarg);
            c->http_timeout_s = (unsigned)(d / 1000);
            break;
        case O_HEADER_TIMEOUT:
            if (parse_duration_ms(optarg, &d) || (d != 0 && d < 100) || d > 3600000)
                return bad_flag(name, optarg);
            c->header_timeout_ms = (unsigned)d;
            break;
        case O_BODY_MIN_RATE:
            if (parse_bytes(optarg, &u) || u > (UINT64_C(1) << 40)) return bad_flag(name, optarg);
            c->body_min_rate = (size_t)u;
            break;
        case O_MAX_CONN_PER_IP:
            if (parse_uint(optarg, &u) || u > 1000000) return bad_flag(name, optarg);
            c->max_connections_per_ip = (unsigned)u;
            break;
        case O_SHUTDOWN_TIMEOUT:
            if (parse_duration_ms(optarg, &d) || d < 1000) return bad_flag(name, optarg);
            c->shutdown_timeout_s = (unsigned)(d / 1000);
            break;
        case O_LOG_LEVEL: c->log_level = optarg; break;
        case O_STALENESS:
            if (parse_duration_ms(optarg, &c->staleness_ms) || c->staleness_ms < 1000)
                return bad_flag(name, optarg);
            break;
        case O_MAX_POINTS:
            if (parse_uint(optarg, &u) || u < 1 || u > 100000000) return bad_flag(name, optarg);
            c->max_points = (size_t)u;
            break;
        case O_QUERY_MAX_SAMPLES:
            if (parse_uint(optarg, &c->query_max_samples)) return bad_flag(name, optarg);
            break;
        case O_QUERY_TIMEOUT:
            if (parse_duration_ms(optarg, &c->query_timeout_ms) || c->query_timeout_ms < 0)
                return bad_flag(name, optarg);
            break;
        case O_MAX_RANGE:
            if (parse_duration_ms(optarg, &c->max_range_ms)) return bad_flag(name, optarg);
            break;
        case O_REPORT_RETENTION:
            if (parse_duration_ms(optarg, &c->report_retention_ms)) return bad_flag(name, optarg);
            break;
        case O_REPORT_WORKERS:
            if (parse_uint(optarg, &u) || u < 1 || u > 64) return bad_flag(name, optarg);
            c->report_workers = (unsigned)u;
            break;
        case O_REPORT_WORKER_DELAY:
            if (parse_duration_ms(optarg, &c->report_worker_delay_ms)) return bad_flag(name, optarg);
            break;
        case O_REPORT_TIMEOUT:
            if (parse_duration_ms(optarg, &c->report_timeout_ms)) return bad_flag(name, optarg);
            break;
        case O_REPORT_SOURCE:
            if (strcmp(optarg, "rollups") == 0)
                c->report_raw = 0;
            else if (strcmp(optarg, "raw") == 0)
                c->report_raw = 1;
            else
                return bad_flag(name, optarg);
            break;
        case O_GPU_IDLE:
            if (parse_duration_ms(optarg, &c->gpu_idle_after_ms) || c->gpu_idle_after_ms < 1000)
                return bad_flag(name, optarg);
            break;
        case O_REMOTE_WRITE_URL: c->remote_write_url = optarg; break;
        case O_REMOTE_WRITE_VERSION:
            if (parse_uint(optarg, &u) || u < 1 || u > 2) return bad_flag(name, optarg);
            c->remote_write_version = (int)u;
            break;
        case O_REMOTE_TENANT_HEADER: c->remote_tenant_header = optarg; break;
        case O_REMOTE_BEARER: c->remote_bearer_token_file = optarg; break;
        case O_REMOTE_CA: c->remote_ca_file = optarg; break;
        case O_REMOTE_QUEUE_MAX:
            if (parse_bytes(optarg, &c->remote_queue_max_bytes)) return bad_flag(name, optarg);
            break;
        case O_REMOTE_QUERY_URL:
            if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
                return bad_flag(name, optarg);
            c->remote_query_url = optarg;
            break;
        case O_REMOTE_QUERY_FLAVOR:
            if (strcmp(optarg, "auto") && strcmp(optarg, "prometheus") && strcmp(optarg, "victoriametrics"))
                return bad_flag(name, optarg);
            c->remote_query_flavor = optarg;
            break;
        case O_REMOTE_TENANTS: {
            c->nremote_tenants = 0;
            for (const char *p = optarg; *p;) {
                char *end;
                errno = 0;
                long long t = strtoll(p, &end, 10);
                if (errno || end == p || t < INT32_MIN || t > INT32_MAX || (*end && *end != ',') ||
                    c->nremote_tenants == sizeof c->remote_tenants / sizeof c->remote_tenants[0])
                    return bad_flag(name, optarg);
                c->remote_tenants[c->nremote_tenants++] = (int32_t)t;
                p = *end ? end + 1 : end;
            }
            if (!c->nremote_tenants) return bad_flag(name, optarg);
            break;
        }
        case O_REGISTRY_REFRESH:
            if (parse_duration_ms(optarg, &c->registry_refresh_ms) || c->registry_refresh_ms < 1000)
                return bad_flag(name, optarg);
            break;
        case O_HELP: usage(stdout); return 1;
        default:
            fprintf(stderr, "strata: unknown or incomplete flag %s (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    c->limits.retention_ms = c->retention_ms; /* ingest refuses samples older than the retention */
    if (c->max_connections < c->threads) {
        /* from the thread-pool days, when libmicrohttpd split the limit between the
         * pool's threads; old command lines are still checked the same way */
        fprintf(stderr, "strata: --max-connections (%u) must be at least --threads (%u)\n",
                c->max_connections, c->threads);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "strata: unexpected argument %s (see --help)\n", argv[optind]);
        return 2;
    }
    if (strata_log_parse_level(c->log_level, &c->log_level_value)) return bad_flag("log-level", c->log_level);
    return 0;
}

/* Is the listen host a loopback address (or localhost)? */
static int is_loopback(const char *listen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : strlen(listen);
    const char *h = listen;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof host) return 0; /* "" = all interfaces */
    memcpy(host, h, hl);
    host[hl] = '\0';
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *p;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0) return 0;
    int loop = 1;
    for (p = ai; p; p = p->ai_next) {
        if (p->ai_family == AF_INET) {
            uint32_t a = ntohl(((struct sockaddr_in *)p->ai_addr)->sin_addr.s_addr);
            if ((a >> 24) != 127) loop = 0;
        } else if (p->ai_family == AF_INET6) {
            static const struct in6_addr lo = IN6ADDR_LOOPBACK_INIT;
            if (memcmp(&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr, &lo, sizeof lo)) loop = 0;
        } else
            loop = 0;
    }
    freeaddrinfo(ai);
    return loop;
}

int daemon_config_check(const daemon_config_t *c)
{
    int jwt = !strcmp(c->auth, "jwt");
    if (!jwt && !c->insecure && !is_loopback(c->listen)) {
        strata_error("refusing to serve without auth on a non-loopback address; use --auth=jwt or --insecure",
                     "listen=%s", c->listen);
        return 2;
    }
    if (!!c->tls_cert != !!c->tls_key) {
        strata_error("--tls-cert and --tls-key go together", "%s", "");
        return 2;
    }
    if (c->remote_write_url && strncmp(c->remote_write_url, "http://", 7) &&
        strncmp(c->remote_write_url, "https://", 8)) {
        strata_error("--remote-write-url must be an http:// or https:// URL", "url=%s", c->remote_write_url);
        return 2;
    }
    return 0;
}

char *daemon_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    char tmp[4096];
    size_t n;
    while (m && (n = fread(tmp, 1, sizeof tmp, f)) > 0) fwrite(tmp, 1, n, m);
    if (m) fclose(m);
    fclose(f);
    return buf;
}
