/*
 * main.c: the strata daemon's entry point: flags, startup and shutdown.
 *
 * Startup order matters: the HTTP listener comes up first (so /healthz works
 * and /readyz says 503), then a thread opens the store, which replays the
 * WAL, and flips the server to ready.  SIGTERM/SIGINT are taken with
 * sigwait() in the main thread (blocked in every other thread): stop
 * accepting, let in-flight requests finish, close the store (which syncs the
 * WAL), exit 0.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "api.h"
#include "routes_reports.h"
#include "routes_telemetry.h"
#include "routes_metrics.h"
#include "routes_workloads.h"
#include "registry.h"
#include "ingest.h"
#include "strata_log.h"
#include "strata_time.h"
#include "tsdb.h"

typedef struct config {
    const char *listen, *data_dir, *auth, *jwt_secret_file, *jwt_public_key;
    const char *tls_cert, *tls_key, *log_level, *wal_fsync;
    int insecure;
    int64_t retention_ms, ooo_window_ms, block_duration_ms, fsync_interval_ms;
    int64_t staleness_ms, gpu_idle_after_ms, report_retention_ms, max_range_ms;
    int64_t report_worker_delay_ms;  /* test-only */
    size_t max_points;
    uint64_t query_max_samples;
    unsigned report_workers;
    int report_raw;                  /* --report-source=raw */
    uint64_t retention_bytes;
    ingest_limits_t limits;
    unsigned threads, max_connections, http_timeout_s, shutdown_timeout_s;
} config_t;

static void usage(FILE *f)
{
    fprintf(f,
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
"  --jwt-public-key=FILE          RS256 public key (PEM) for --auth=jwt\n"
"  --insecure                     allow --auth=none on a non-loopback address\n"
"  --tls-cert=FILE --tls-key=FILE serve HTTPS with this PEM certificate and key\n"
"  --max-request-bytes=BYTES      decompressed remote-write body limit  (32MiB)\n"
"  --max-series-per-tenant=N      series a tenant may have, 0 = no limit (0)\n"
"  --max-labels-per-series=N      labels a series may carry, 0 = no limit (64)\n"
"  --max-label-name-length=N      bytes, 0 = no limit                   (1024)\n"
"  --max-label-value-length=N     bytes, 0 = no limit                   (4096)\n"
"  --threads=N                    HTTP worker threads                   (4)\n"
"  --max-connections=N            concurrent HTTP connections           (1024)\n"
"  --http-timeout=DURATION        idle connection timeout               (60s)\n"
"  --shutdown-timeout=DURATION    wait for in-flight requests at stop   (30s)\n"
"  --staleness=DURATION           a sample holds this long at most (workloads) (5m)\n"
"  --gpu-idle-after=DURATION      a GPU at 0%% this long is idle        (5m)\n"
"  --max-points=N                 numberOfSamples=0 points per series   (11000)\n"
"  --query-max-samples=N          points one metric type may read, 0 = no limit (50000000)\n"
"  --max-range=DURATION           longest metrics query range, 0 = none (31d)\n"
"  --report-retention=DURATION    keep reports this long, 0 = forever   (30d)\n"
"  --report-workers=N             report generator threads              (1)\n"
"  --report-source=rollups|raw    whole-hour report days from 1h rollups, or always from raw\n"
"                                 samples (slower; the reference, to cross-check) (rollups)\n"
"  --report-worker-delay=DURATION test only: wait this long before generating each report (0)\n"
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
    static const struct { const char *suf; double mul; } u[] = {
        { "", 1 }, { "B", 1 }, { "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
        { "TiB", 1099511627776.0 }, { "KB", 1e3 }, { "MB", 1e6 }, { "GB", 1e9 }, { "TB", 1e12 },
        { "k", 1e3 }, { "K", 1024.0 }, { "M", 1048576.0 }, { "G", 1073741824.0 },
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

/* POST /api/v1/admin/cut-head: cuts the whole head into a block now (WAL
 * checkpointed), so a benchmark can measure compressed block bytes right after
 * ingest instead of waiting for --block-duration.  Same scope as writing. */
static int admin_cut_head(api_call_t *c, void *ctx)
{
    (void)ctx;
    tsdb_t *db = api_call_db(c);
    int rc = tsdb_cut_head(db);
    if (rc) {
        strata_error("head cut failed", "err=\"%s\"", strata_strerror(rc));
        return rc;
    }
    tsdb_stats_t st;
    tsdb_get_stats(db, &st);
    char body[160];
    int n = snprintf(body, sizeof body, "{\"blocks\":%llu,\"block_bytes\":%llu,\"wal_bytes\":%llu}",
                     (unsigned long long)st.blocks, (unsigned long long)st.block_bytes,
                     (unsigned long long)st.wal_bytes);
    return api_call_reply(c, 200, NULL, body, (size_t)n);
}

enum {
    O_LISTEN = 256, O_DATA_DIR, O_RETENTION, O_RETENTION_SIZE, O_WAL_FSYNC, O_WAL_FSYNC_INTERVAL,
    O_BLOCK_DURATION, O_OOO_WINDOW, O_AUTH, O_JWT_SECRET, O_JWT_PUBKEY, O_INSECURE, O_TLS_CERT,
    O_TLS_KEY, O_MAX_REQUEST, O_MAX_SERIES, O_MAX_LABELS, O_MAX_NAME, O_MAX_VALUE, O_THREADS,
    O_MAX_CONN, O_HTTP_TIMEOUT, O_SHUTDOWN_TIMEOUT, O_LOG_LEVEL, O_HELP, O_STALENESS, O_GPU_IDLE,
    O_REPORT_RETENTION, O_REPORT_WORKERS, O_MAX_POINTS, O_MAX_RANGE, O_REPORT_WORKER_DELAY,
    O_QUERY_MAX_SAMPLES, O_REPORT_SOURCE,
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
    { "shutdown-timeout", required_argument, NULL, O_SHUTDOWN_TIMEOUT },
    { "log-level", required_argument, NULL, O_LOG_LEVEL },
    { "staleness", required_argument, NULL, O_STALENESS },
    { "gpu-idle-after", required_argument, NULL, O_GPU_IDLE },
    { "report-retention", required_argument, NULL, O_REPORT_RETENTION },
    { "max-points", required_argument, NULL, O_MAX_POINTS },
    { "max-range", required_argument, NULL, O_MAX_RANGE },
    { "query-max-samples", required_argument, NULL, O_QUERY_MAX_SAMPLES },
    { "report-workers", required_argument, NULL, O_REPORT_WORKERS },
    { "report-worker-delay", required_argument, NULL, O_REPORT_WORKER_DELAY },
    { "report-source", required_argument, NULL, O_REPORT_SOURCE },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
};

static int bad_flag(const char *flag, const char *value)
{
    fprintf(stderr, "strata: invalid value for --%s: %s (see --help)\n", flag, value);
    return 2;
}

/* 0 = run, 1 = --help printed (exit 0), 2 = usage error. */
static int parse_flags(int argc, char **argv, config_t *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:9201";
    c->data_dir = "data";
    c->auth = "none";
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
    c->shutdown_timeout_s = 30;
    c->staleness_ms = 5 * 60000LL;
    c->gpu_idle_after_ms = 5 * 60000LL;
    c->report_retention_ms = 30 * 86400000LL;
    c->report_workers = 1;
    c->max_points = 11000;
    c->query_max_samples = 50000000;
    c->max_range_ms = 31 * 86400000LL;
    int opt;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        const char *name = NULL;
        for (const struct option *o = options; o->name; o++) if (o->val == opt) name = o->name;
        int64_t d;
        uint64_t u;
        switch (opt) {
        case O_LISTEN: c->listen = optarg; break;
        case O_DATA_DIR: c->data_dir = optarg; break;
        case O_RETENTION: if (parse_duration_ms(optarg, &c->retention_ms)) return bad_flag(name, optarg); break;
        case O_RETENTION_SIZE: if (parse_bytes(optarg, &c->retention_bytes)) return bad_flag(name, optarg); break;
        case O_WAL_FSYNC:
            if (strcmp(optarg, "always") && strcmp(optarg, "interval") && strcmp(optarg, "never"))
                return bad_flag(name, optarg);
            c->wal_fsync = optarg;
            break;
        case O_WAL_FSYNC_INTERVAL:
            if (parse_duration_ms(optarg, &c->fsync_interval_ms) || c->fsync_interval_ms < 1 ||
                c->fsync_interval_ms > 60000) return bad_flag(name, optarg);
            break;
        case O_BLOCK_DURATION:
            if (parse_duration_ms(optarg, &c->block_duration_ms) || c->block_duration_ms < 60000)
                return bad_flag(name, optarg);
            break;
        case O_OOO_WINDOW: if (parse_duration_ms(optarg, &c->ooo_window_ms)) return bad_flag(name, optarg); break;
        case O_AUTH:
            if (strcmp(optarg, "none") && strcmp(optarg, "jwt")) return bad_flag(name, optarg);
            c->auth = optarg;
            break;
        case O_JWT_SECRET: c->jwt_secret_file = optarg; break;
        case O_JWT_PUBKEY: c->jwt_public_key = optarg; break;
        case O_INSECURE: c->insecure = 1; break;
        case O_TLS_CERT: c->tls_cert = optarg; break;
        case O_TLS_KEY: c->tls_key = optarg; break;
        case O_MAX_REQUEST:
            if (parse_bytes(optarg, &u) || u < 1024 || u > (UINT64_C(1) << 32)) return bad_flag(name, optarg);
            c->limits.max_request_bytes = (size_t)u;
            break;
        case O_MAX_SERIES: if (parse_uint(optarg, &c->limits.max_series_per_tenant)) return bad_flag(name, optarg); break;
        case O_MAX_LABELS: if (parse_uint(optarg, &u)) return bad_flag(name, optarg); c->limits.max_labels_per_series = (size_t)u; break;
        case O_MAX_NAME: if (parse_uint(optarg, &u)) return bad_flag(name, optarg); c->limits.max_label_name_length = (size_t)u; break;
        case O_MAX_VALUE: if (parse_uint(optarg, &u)) return bad_flag(name, optarg); c->limits.max_label_value_length = (size_t)u; break;
        case O_THREADS: if (parse_uint(optarg, &u) || u < 1 || u > 256) return bad_flag(name, optarg); c->threads = (unsigned)u; break;
        case O_MAX_CONN: if (parse_uint(optarg, &u) || u < 1 || u > 1000000) return bad_flag(name, optarg); c->max_connections = (unsigned)u; break;
        case O_HTTP_TIMEOUT:
            if (parse_duration_ms(optarg, &d) || d < 1000) return bad_flag(name, optarg);
            c->http_timeout_s = (unsigned)(d / 1000);
            break;
        case O_SHUTDOWN_TIMEOUT:
            if (parse_duration_ms(optarg, &d) || d < 1000) return bad_flag(name, optarg);
            c->shutdown_timeout_s = (unsigned)(d / 1000);
            break;
        case O_LOG_LEVEL: c->log_level = optarg; break;
        case O_STALENESS:
            if (parse_duration_ms(optarg, &c->staleness_ms) || c->staleness_ms < 1000) return bad_flag(name, optarg);
            break;
        case O_MAX_POINTS:
            if (parse_uint(optarg, &u) || u < 1 || u > 100000000) return bad_flag(name, optarg);
            c->max_points = (size_t)u;
            break;
        case O_QUERY_MAX_SAMPLES:
            if (parse_uint(optarg, &c->query_max_samples)) return bad_flag(name, optarg);
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
        case O_REPORT_SOURCE:
            if (strcmp(optarg, "rollups") == 0) c->report_raw = 0;
            else if (strcmp(optarg, "raw") == 0) c->report_raw = 1;
            else return bad_flag(name, optarg);
            break;
        case O_GPU_IDLE:
            if (parse_duration_ms(optarg, &c->gpu_idle_after_ms) || c->gpu_idle_after_ms < 1000)
                return bad_flag(name, optarg);
            break;
        case O_HELP: usage(stdout); return 1;
        default:
            fprintf(stderr, "strata: unknown or incomplete flag %s (see --help)\n", argv[optind - 1]);
            return 2;
        }
    }
    if (c->max_connections < c->threads) {
        /* libmicrohttpd splits the limit between the pool's threads */
        fprintf(stderr, "strata: --max-connections (%u) must be at least --threads (%u)\n",
                c->max_connections, c->threads);
        return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "strata: unexpected argument %s (see --help)\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* Is the listen host a loopback address (or localhost)? */
static int is_loopback(const char *listen)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    size_t hl = colon ? (size_t)(colon - listen) : strlen(listen);
    const char *h = listen;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { h++; hl -= 2; }
    if (hl == 0 || hl >= sizeof host) return 0;  /* "" = all interfaces */
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
        } else loop = 0;
    }
    freeaddrinfo(ai);
    return loop;
}

static char *slurp(const char *path)
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

/* ---- store opening in the background ------------------------------------ */

typedef struct opener {
    const config_t *cfg;
    api_server_t *srv;
    api_registry_t *reg;
    api_reports_ref_t *reports;
    api_reports_tsdb_source_t *gen;
    api_reports_delay_t *delay;
    pthread_t main_thread;
    tsdb_t *db;
    ingest_t *ing;
    api_read_source_t *reader;
    int failed;
} opener_t;

static void *open_store(void *arg)
{
    opener_t *o = arg;
    const config_t *c = o->cfg;
    tsdb_options_t opts;
    tsdb_options_init(&opts);
    opts.dir = c->data_dir;
    opts.block_duration_ms = c->block_duration_ms;
    opts.retention_ms = c->retention_ms;
    opts.retention_bytes = c->retention_bytes;
    opts.ooo_window_ms = c->ooo_window_ms;
    opts.fsync = !strcmp(c->wal_fsync, "always") ? TSDB_FSYNC_ALWAYS
               : !strcmp(c->wal_fsync, "never") ? TSDB_FSYNC_NEVER : TSDB_FSYNC_INTERVAL;
    opts.fsync_interval_ms = (int)c->fsync_interval_ms;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = tsdb_open(&opts, &o->db);
    if (rc == 0) {
        tsdb_set_fsync_observer(o->db, api_server_observe_fsync, o->srv);
        rc = ingest_new(o->db, &c->limits, &o->ing);
    }
    if (rc == 0) rc = api_read_source_tsdb(o->db, &o->reader);
    if (rc == 0) {
        /* the registry lives in memory: rebuild it from the store before taking traffic */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        size_t nser = 0;
        rc = api_registry_replay(o->reg, o->reader, c->retention_ms ? now_ms - c->retention_ms : INT64_MIN,
                                 now_ms + INGEST_MAX_FUTURE_MS, &nser);
        if (rc == 0) strata_info("registry replayed", "series=%zu", nser);
    }
    if (rc == 0) ingest_set_observer(o->ing, api_workloads_observe, o->reg);
    if (rc == 0) {
        /* report workers start inside api_reports_open and read the store at once */
        o->gen->reader = o->reader;
        api_reports_options_t ro;
        api_reports_options_init(&ro);
        ro.workers = (int)c->report_workers;
        ro.retention_ms = c->report_retention_ms;
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

/* ---- housekeeping --------------------------------------------------------- */

typedef struct housekeeper {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    api_registry_t *reg;
    int64_t retain_ms;
} housekeeper_t;

/* Forgets ended workloads once they are older than the retention, every minute. */
static void *housekeep(void *arg)
{
    housekeeper_t *h = arg;
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
        int rc = api_registry_gc(h->reg, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, h->retain_ms, &dropped);
        if (rc) strata_warn("registry gc failed", "err=\"%s\"", strata_strerror(rc));
        else if (dropped) strata_info("registry gc", "workloads_dropped=%zu", dropped);
        pthread_mutex_lock(&h->mu);
    }
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

int main(int argc, char **argv)
{
    config_t c;
    int prc = parse_flags(argc, argv, &c);
    if (prc) return prc == 1 ? 0 : 2;
    enum strata_log_level lvl;
    if (strata_log_parse_level(c.log_level, &lvl)) return bad_flag("log-level", c.log_level);
    strata_log_set_level(lvl);

    int jwt = !strcmp(c.auth, "jwt");
    if (!jwt && !c.insecure && !is_loopback(c.listen)) {
        strata_error("refusing to serve without auth on a non-loopback address; use --auth=jwt or --insecure",
                     "listen=%s", c.listen);
        return 2;
    }
    if (!!c.tls_cert != !!c.tls_key) {
        strata_error("--tls-cert and --tls-key go together", "%s", "");
        return 2;
    }
    char *cert = NULL, *key = NULL;
    if (c.tls_cert) {
        cert = slurp(c.tls_cert);
        key = slurp(c.tls_key);
        if (!cert || !key) {
            strata_error("cannot read the TLS certificate or key", "cert=%s key=%s", c.tls_cert, c.tls_key);
            free(cert);
            free(key);
            return 2;
        }
    }
    api_auth_t *auth;
    if (api_auth_new(jwt ? API_AUTH_JWT : API_AUTH_NONE, c.jwt_secret_file, c.jwt_public_key, &auth)) {
        free(cert);
        free(key);
        return 2;
    }

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
    routes[nroutes++] = (api_route_t){ "POST", "/api/v1/admin/cut-head", API_SCOPE_METRICS_WRITE, admin_cut_head, NULL, 0 };
    api_reports_ref_t reports = { 0 };
    api_reports_tsdb_source_t gen = { .reader = NULL, .staleness_ms = c.staleness_ms,
                                      .gpu_idle_after_ms = c.gpu_idle_after_ms,
                                      .raw_only = c.report_raw };
    api_metrics_options_t mopts;
    api_metrics_options_init(&mopts);
    mopts.max_points = c.max_points;
    mopts.max_range_ms = c.max_range_ms;
    mopts.max_samples = c.query_max_samples;
    mopts.staleness_ms = c.staleness_ms;
    api_metrics_http_t metrics_http = { .reg = reg, .opts = mopts };
    routes[nroutes++] = api_telemetry_route(reg);  /* before /workloads/{} */
    routes[nroutes++] = api_metrics_route(&metrics_http);
    nroutes += api_workloads_routes(reg, routes + nroutes, sizeof routes / sizeof routes[0] - nroutes);
    nroutes += api_reports_routes(&reports, routes + nroutes, sizeof routes / sizeof routes[0] - nroutes);

    api_server_config_t sc = {
        .listen = c.listen, .threads = c.threads, .max_connections = c.max_connections,
        .connection_timeout_s = c.http_timeout_s, .shutdown_timeout_s = c.shutdown_timeout_s,
        .tls_cert_pem = cert, .tls_key_pem = key, .auth = auth,
        .max_request_bytes = c.limits.max_request_bytes,
        .routes = routes, .nroutes = nroutes,
        .extra_metrics = api_metrics_http_render, .extra_metrics_ctx = &metrics_http,
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
    opener_t o = { .cfg = &c, .srv = srv, .reg = reg, .reports = &reports, .gen = &gen,
                   .delay = &delay, .main_thread = pthread_self() };
    pthread_t th;
    if (pthread_create(&th, NULL, open_store, &o) != 0) {
        strata_error("cannot start the store thread", "%s", "");
        api_server_stop(srv);
        api_registry_free(reg);
        api_auth_free(auth);
        free(cert);
        free(key);
        return 1;
    }
    housekeeper_t hk = { .reg = reg, .retain_ms = c.retention_ms ? c.retention_ms : 15 * 86400000LL };
    pthread_mutex_init(&hk.mu, NULL);
    pthread_cond_init(&hk.cv, NULL);
    pthread_t hk_th;
    int hk_started = pthread_create(&hk_th, NULL, housekeep, &hk) == 0;
    int sig = 0;
    sigwait(&sigs, &sig);
    if (!o.failed)
        strata_info("shutting down", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    pthread_join(th, NULL); /* a replay in progress finishes first (the server must outlive it) */
    /* the WAL's fsync observer points into the server, which stop frees;
     * the final sync below would otherwise report to freed memory */
    if (o.db) tsdb_set_fsync_observer(o.db, NULL, NULL);
    api_server_stop(srv);   /* no request touches the store after this */
    if (hk_started) {
        pthread_mutex_lock(&hk.mu);
        hk.stop = 1;
        pthread_cond_signal(&hk.cv);
        pthread_mutex_unlock(&hk.mu);
        pthread_join(hk_th, NULL);
    }
    api_reports_close(reports.st);  /* a generation in progress is cancelled, left Pending */
    ingest_free(o.ing);
    api_read_source_free(o.reader);
    if (o.db) {
        int rc = tsdb_sync(o.db);
        if (rc) strata_error("final WAL sync failed", "err=\"%s\"", strata_strerror(rc));
        tsdb_close(o.db);
    }
    api_registry_free(reg);
    api_auth_free(auth);
    free(cert);
    free(key);
    strata_info("stopped", "exit=%d", o.failed ? 1 : 0);
    return o.failed ? 1 : 0;
}
