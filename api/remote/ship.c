/*
 * ship.c: the remote-write shipper (ship.h; docs/scale-out.md): WAL cursor ->
 * batches per tenant -> prometheus.WriteRequest (protobuf-c, ingest's
 * generated code) -> snappy -> POST with one kept-alive libcurl handle ->
 * position file.
 *
 * One slice of WAL (about SLICE_BYTES of records) is read at a time; its
 * samples are grouped per series (in log order within a series) and per
 * tenant, cut into requests of at most max_series_per_request series and
 * about max_bytes_per_request bytes, and each request is sent until the
 * engine acknowledges it (2xx) or refuses it for good (a 4xx other than 429:
 * logged, counted as failed, never retried).  Only when every request of the
 * slice is done is the position after it written (temp file, fsync, rename,
 * fsync dir) and handed to the WAL as its floor, so a crash at any point
 * sends the slice again: delivery is at least once, and the engines store an
 * identical resent sample once.
 */
#include "ship.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ingest.h" /* INGEST_TENANT_LABEL */
#include "remote_write_v1.pb-c.h"
#include "remote_write_v2.pb-c.h"
#include "strata_fs.h"
#include "strata_log.h"

#define SLICE_BYTES     (1u << 20)  /* WAL bytes read per batch */
#define POS_MAGIC       0x50575253u /* "SRWP" as bytes on disk */
#define POS_VERSION     1
#define POS_SIZE        28
#define BACKOFF_BASE_MS 100
#define IDLE_WAIT_MS    50

/* request duration buckets, seconds */
static const double dur_le[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NDUR (sizeof dur_le / sizeof dur_le[0])

typedef struct bseries {
    uint64_t ref;
    const tsdb_label_t *labels; /* the cursor's, valid until its next read */
    size_t nlabels;
    const char *tenant;     /* value of the tenant label, or "" */
    size_t nsamples, first; /* samples of this series: sorted[first .. first + nsamples) */
    size_t fill;
} bseries_t;

typedef struct bsample {
    uint32_t series;
    int64_t t;
    double v;
} bsample_t;

struct remote_ship {
    remote_ship_options_t o;
    tsdb_t *db;
    char *pos_dir, *pos_path, *pos_tmp;
    int route_tenant; /* {tenant} in the URL or a tenant header: the label becomes the tenant */

    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* stop */
    atomic_int stop;

    tsdb_wal_cursor_t *cur;
    tsdb_wal_pos_t pos; /* acknowledged (written to the position file); mu */
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
    char resp[512];
    size_t resp_len;
    int64_t retry_after_ms; /* the last answer's Retry-After (seconds), 0 = none */

    /* the batch of one slice */
    bseries_t *ser;
    size_t nser, sercap;
    bsample_t *smp, *sorted;
    size_t nsmp, smpcap, sortcap;
    uint64_t *rmap; /* ref << 32 | series index + 1 (batch_series) */
    size_t rmapcap;
    size_t unknown; /* samples whose ref no series record named */

    /* request scratch */
    Prometheus__TimeSeries *ts;
    Prometheus__TimeSeries **tsp;
    size_t tscap;
    Prometheus__Label *lab;
    Prometheus__Label **labp;
    size_t labcap;
    Prometheus__Sample *ps;
    Prometheus__Sample **psp;
    size_t pscap;
    uint8_t *pb, *sn;
    size_t pbcap, sncap;
    /* remote-write 2.0 scratch: series, samples, the symbol table and its hash */
    Io__Prometheus__Write__V2__TimeSeries *ts2;
    Io__Prometheus__Write__V2__TimeSeries **ts2p;
    size_t ts2cap, ts2pcap;
    Io__Prometheus__Write__V2__Sample *ps2;
    Io__Prometheus__Write__V2__Sample **ps2p;
    size_t ps2cap, ps2pcap;
    ProtobufCBinaryData *sym;
    size_t nsym, symcap;
    uint32_t *symtab; /* symbol index + 1, 0 = empty */
    size_t symtabcap;
    uint32_t *refs;
    size_t refscap;

    /* metrics (mu) */
    uint64_t shipped, failed, retried, requests_ok, requests_failed, requests_retried, refused;
    uint64_t dur_count[NDUR + 1];
    double dur_sum;
    int64_t caught_up_ms; /* monotonic ms when the cursor last reached the durable end */
    uint64_t queue_bytes;
    int64_t queue_at_ms;
    pthread_mutex_t qmu; /* one recompute of queue_bytes at a time */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void remote_ship_options_init(remote_ship_options_t *o)
{
    memset(o, 0, sizeof *o);
    o->version = 1;
    o->max_series_per_request = 2000;
    o->max_bytes_per_request = 1u << 20;
    o->timeout_ms = 30000;
    o->backoff_max_ms = 30000;
}

/* ---- the position file -------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }

/* 0 and *pos; {0, 0} when there is none yet; damaged: logged, {0, 0}. */
static int pos_load(remote_ship_t *s, tsdb_wal_pos_t *pos)
{
    *pos = (tsdb_wal_pos_t){ 0, 0 };
    int fd = open(s->pos_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        return strata_io_error("remote write position unreadable", s->pos_path);
    }
    uint8_t b[POS_SIZE + 1];
    ssize_t n = read(fd, b, sizeof b);
    close(fd);
    const char *why = NULL;
    if (n != POS_SIZE)
        why = "wrong size";
    else if (get_u32(b) != POS_MAGIC)
        why = "bad magic";
    else if (tsdb_crc32c(0, b, POS_SIZE - 4) != get_u32(b + POS_SIZE - 4))
        why = "crc mismatch";
    else if (get_u32(b + 4) != POS_VERSION)
        why = "unknown version";
    if (why) {
        strata_error("remote write position damaged: shipping everything the WAL still holds again",
                     "file=%s reason=\"%s\"", s->pos_path, why);
        return 0;
    }
    pos->segment = get_u64(b + 8);
    pos->offset = get_u64(b + 16);
    return 0;
}

static int pos_save(remote_ship_t *s, tsdb_wal_pos_t pos)
{
    uint8_t b[POS_SIZE];
    put_u32(b, POS_MAGIC);
    put_u32(b + 4, POS_VERSION);
    put_u64(b + 8, pos.segment);
    put_u64(b + 16, pos.offset);
    put_u32(b + 24, tsdb_crc32c(0, b, POS_SIZE - 4));
    int fd = open(s->pos_tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = 0;
    if (fd < 0 || write(fd, b, sizeof b) != (ssize_t)sizeof b || fsync(fd) != 0) e = errno ? errno : EIO;
    if (fd >= 0 && close(fd) != 0 && !e) e = errno;
    if (!e && rename(s->pos_tmp, s->pos_path) != 0) e = errno;
    if (e) {
        strata_error("remote write position not saved (the last batch will be sent again after a restart)",
                     "file=%s err=\"%s\"", s->pos_path, strerror(e));
        return strata_errno_to_err(e);
    }
    return strata_fsync_dir(s->pos_dir);
}

/* ---- the batch ------------------------------------------------------------------ */

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np) return STRATA_ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

static void batch_reset(remote_ship_t *s)
{
    s->nser = s->nsmp = s->unknown = 0;
    if (s->rmapcap) memset(s->rmap, 0, s->rmapcap * sizeof *s->rmap);
}

/* The tenant label is not sent when the URL or a header carries the tenant;
 * nor, to one unrouted engine, for the default tenant 0, so that its data
 * looks there as any Prometheus' would.  Other tenants keep it as a label,
 * which is how the read path (api/query/read_prom.c) tells them apart. */
static int skip_label(const remote_ship_t *s, const tsdb_label_t *l)
{
    if (strcmp(l->name, INGEST_TENANT_LABEL)) return 0;
    return s->route_tenant || !strcmp(l->value, "0");
}

static const char *tenant_of(const tsdb_label_t *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i].name, INGEST_TENANT_LABEL)) return l[i].value;
    return "";
}

/* The batch's series for ref (the map: slot = ref << 32 | index + 1, keyed by
 * ref; a ref whose labels changed within the slice gets a new series). */
static int batch_series(remote_ship_t *s, uint64_t ref, uint32_t *out)
{
    size_t nl = 0;
    const tsdb_label_t *l = tsdb_wal_cursor_series(s->cur, ref, &nl);
    if (!l) return 1;
    if ((s->nser + 1) * 2 > s->rmapcap) {
        size_t ncap = s->rmapcap ? s->rmapcap * 2 : 4096;
        uint64_t *nm = calloc(ncap, sizeof *nm);
        if (!nm) return STRATA_ENOMEM;
        free(s->rmap);
        s->rmap = nm;
        s->rmapcap = ncap;
        for (size_t k = 0; k < s->nser; k++) {
            uint64_t r = s->ser[k].ref;
            size_t j = (size_t)((r * 0x9E3779B97F4A7C15ull) >> 20) & (ncap - 1);
            while (s->rmap[j]) j = (j + 1) & (ncap - 1);
            s->rmap[j] = (r & 0xffffffffu) << 32 | (uint64_t)(k + 1);
        }
    }
    size_t mask = s->rmapcap - 1, i = (size_t)((ref * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    for (; s->rmap[i]; i = (i + 1) & mask) {
        if (s->rmap[i] >> 32 != (ref & 0xffffffffu)) continue;
        uint32_t idx = (uint32_t)(s->rmap[i] & 0xffffffffu) - 1;
        if (s->ser[idx].labels == l) {
            *out = idx;
            return 0;
        }
    }
    int rc = grow((void **)&s->ser, &s->sercap, s->nser + 1, sizeof *s->ser);
    if (rc) return rc;
    s->ser[s->nser] = (bseries_t){ ref, l, nl, tenant_of(l, nl), 0, 0, 0 };
    s->rmap[i] = (ref & 0xffffffffu) << 32 | (uint64_t)(s->nser + 1);
    *out = (uint32_t)s->nser++;
    return 0;
}

static int on_samples(void *ctx, const tsdb_ref_sample_t *smp, size_t n)
{
    remote_ship_t *s = ctx;
    int rc = grow((void **)&s->smp, &s->smpcap, s->nsmp + n, sizeof *s->smp);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx;
        rc = batch_series(s, smp[i].ref, &idx);
        if (rc < 0) return rc;
        if (rc) {
            s->unknown++;
            continue;
        }
        s->ser[idx].nsamples++;
        s->smp[s->nsmp++] = (bsample_t){ idx, smp[i].t, smp[i].v };
    }
    return 0;
}

/* Samples grouped per series, in log order within each (a counting sort). */
static int batch_sort(remote_ship_t *s)
{
    int rc = grow((void **)&s->sorted, &s->sortcap, s->nsmp, sizeof *s->sorted);
    if (rc) return rc;
    size_t at = 0;
    for (size_t i = 0; i < s->nser; i++) {
        s->ser[i].first = at;
        s->ser[i].fill = 0;
        at += s->ser[i].nsamples;
    }
    for (size_t i = 0; i < s->nsmp; i++) {
        bseries_t *b = &s->ser[s->smp[i].series];
        s->sorted[b->first + b->fill++] = s->smp[i];
    }
    return 0;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static size_t on_body(char *p, size_t size, size_t nmemb, void *ctx)
{
    remote_ship_t *s = ctx;
    size_t n = size * nmemb, room = sizeof s->resp - 1 - s->resp_len;
    memcpy(s->resp + s->resp_len, p, n < room ? n : room);
    s->resp_len += n < room ? n : room;
    s->resp[s->resp_len] = 0;
    return n;
}

/* Keeps a Retry-After given in seconds (an HTTP date is ignored: the backoff applies). */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ctx)
{
    remote_ship_t *s = ctx;
    size_t n = size * nmemb;
    if (n > 12 && !strncasecmp(p, "Retry-After:", 12)) {
        char v[32];
        size_t k = n - 12 < sizeof v - 1 ? n - 12 : sizeof v - 1;
        memcpy(v, p + 12, k);
        v[k] = 0;
        char *end;
        long secs = strtol(v, &end, 10);
        if (end != v && secs > 0) s->retry_after_ms = (int64_t)secs * 1000;
    }
    return n;
}

static int on_progress(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return atomic_load(&((remote_ship_t *)ctx)->stop) ? 1 : 0; /* abort at stop */
}

/* The URL for tenant ({tenant} replaced) in buf. */
static void tenant_url(const remote_ship_t *s, const char *tenant, char *buf, size_t cap)
{
    const char *u = s->o.url, *at = strstr(u, "{tenant}");
    if (!at)
        snprintf(buf, cap, "%s", u);
    else
        snprintf(buf, cap, "%.*s%s%s", (int)(at - u), u, tenant, at + 8);
}

/* The bearer token (first line of the file), read each batch so a rotated
 * token is picked up; "" when none or unreadable (logged once). */
static void read_token(const remote_ship_t *s, char *buf, size_t cap)
{
    static atomic_int warned;
    buf[0] = 0;
    if (!s->o.bearer_token_file) return;
    FILE *f = fopen(s->o.bearer_token_file, "re");
    if (!f) {
        if (!atomic_exchange(&warned, 1))
            strata_error("remote write bearer token file unreadable, sending without it",
                         "file=%s err=\"%s\"", s->o.bearer_token_file, strerror(errno));
        return;
    }
    if (!fgets(buf, (int)cap, f)) buf[0] = 0;
    fclose(f);
    buf[strcspn(buf, "\r\n")] = 0;
}

/* POSTs body; returns the HTTP status, or 0 for a connection error (in errbuf). */
static long post(remote_ship_t *s, const char *url, const char *tenant, const char *token,
                 const uint8_t *body, size_t len)
{
    struct curl_slist *h = NULL;
    char line[4200];
    h = curl_slist_append(h, "Content-Encoding: snappy");
    if (s->o.version == 2) {
        h = curl_slist_append(h, "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request");
        h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 2.0.0");
    } else {
        h = curl_slist_append(h, "Content-Type: application/x-protobuf");
        h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    }
    h = curl_slist_append(h, "User-Agent: strata-remote-write");
    if (token[0]) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, line);
    }
    if (s->o.tenant_header) {
        snprintf(line, sizeof line, "%s: %s", s->o.tenant_header, tenant);
        h = curl_slist_append(h, line);
    }
    CURL *c = s->curl;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    s->resp_len = 0;
    s->resp[0] = 0;
    s->retry_after_ms = 0;
    s->errbuf[0] = 0;
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    else if (!s->errbuf[0])
        snprintf(s->errbuf, sizeof s->errbuf, "%s", curl_easy_strerror(rc));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(h);
    return code;
}

/* Waits ms or until stop: 1 when stopping. */
static int wait_ms(remote_ship_t *s, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ns = ts.tv_nsec + (ms % 1000) * 1000000;
    ts.tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->stop))
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&s->mu);
    return atomic_load(&s->stop);
}

static void observe(remote_ship_t *s, double secs)
{
    pthread_mutex_lock(&s->mu);
    size_t k = 0;
    while (k < NDUR && secs > dur_le[k]) k++;
    s->dur_count[k]++;
    s->dur_sum += secs;
    pthread_mutex_unlock(&s->mu);
}

#define COUNT(field, n)               \
    do {                              \
        pthread_mutex_lock(&s->mu);   \
        s->field += (n);              \
        pthread_mutex_unlock(&s->mu); \
    } while (0)

/* Sends one encoded request until it is acknowledged or refused for good.
 * 0 when done (either way), STRATA_ECLOSED when stopping. */
static int send_request(remote_ship_t *s, const char *tenant, const uint8_t *body, size_t len,
                        size_t nsamples)
{
    char url[4096], token[4096];
    tenant_url(s, tenant, url, sizeof url);
    read_token(s, token, sizeof token);
    for (int attempt = 0;; attempt++) {
        if (atomic_load(&s->stop)) return STRATA_ECLOSED;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        long code = post(s, url, tenant, token, body, len);
        clock_gettime(CLOCK_MONOTONIC, &b);
        observe(s, (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
        if (code >= 200 && code < 300) {
            COUNT(shipped, nsamples);
            COUNT(requests_ok, 1);
            if (attempt)
                strata_info("remote write engine took the batch again", "url=%s attempts=%d", url,
                            attempt + 1);
            return 0;
        }
        if (atomic_load(&s->stop)) return STRATA_ECLOSED;
        if (code == 0 || code == 429 || code >= 500) {
            COUNT(retried, nsamples);
            COUNT(requests_retried, 1);
            /* exponential backoff with jitter: half fixed, half random */
            int64_t d = BACKOFF_BASE_MS;
            for (int i = 0; i < attempt && d < s->o.backoff_max_ms; i++) d *= 2;
            if (d > s->o.backoff_max_ms) d = s->o.backoff_max_ms;
            d = d / 2 + (int64_t)((uint64_t)rand() % (uint64_t)(d / 2 + 1));
            /* an engine that says how long to wait is heeded, within the cap */
            if (s->retry_after_ms > d)
                d = s->retry_after_ms < s->o.backoff_max_ms ? s->retry_after_ms : s->o.backoff_max_ms;
            if (attempt == 0)
                strata_warn("remote write failed, retrying with backoff",
                            "url=%s status=%ld err=\"%s\" body=\"%.200s\"", url, code, code ? "" : s->errbuf,
                            s->resp);
            if (wait_ms(s, d)) return STRATA_ECLOSED;
            continue;
        }
        COUNT(failed, nsamples);
        COUNT(requests_failed, 1);
        strata_error("remote write refused by the engine, batch dropped (not retried)",
                     "url=%s status=%ld samples=%zu body=\"%.300s\"", url, code, nsamples, s->resp);
        return 0;
    }
}

/* ---- encoding ------------------------------------------------------------------ */

/* Encodes series idx[0..n) as a prometheus.WriteRequest into s->pb. */
static int encode_v1(remote_ship_t *s, const uint32_t *idx, size_t n, size_t *plen_out)
{
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        nl += s->ser[idx[i]].nlabels;
        ns += s->ser[idx[i]].nsamples;
    }
    int rc;
    if ((rc = grow((void **)&s->ts, &s->tscap, n, sizeof *s->ts)) ||
        (rc = grow((void **)&s->lab, &s->labcap, nl, sizeof *s->lab)) ||
        (rc = grow((void **)&s->ps, &s->pscap, ns, sizeof *s->ps)))
        return rc;
    /* the pointer arrays follow the struct arrays' capacities */
    size_t c1 = 0, c2 = 0, c3 = 0;
    if ((rc = grow((void **)&s->tsp, &c1, s->tscap, sizeof *s->tsp)) ||
        (rc = grow((void **)&s->labp, &c2, s->labcap, sizeof *s->labp)) ||
        (rc = grow((void **)&s->psp, &c3, s->pscap, sizeof *s->psp)))
        return rc;
    size_t li = 0, si = 0;
    for (size_t i = 0; i < n; i++) {
        const bseries_t *b = &s->ser[idx[i]];
        Prometheus__TimeSeries *t = &s->ts[i];
        prometheus__time_series__init(t);
        s->tsp[i] = t;
        t->labels = &s->labp[li];
        for (size_t k = 0; k < b->nlabels; k++) {
            if (skip_label(s, &b->labels[k])) continue;
            Prometheus__Label *l = &s->lab[li];
            prometheus__label__init(l);
            l->name.data = (uint8_t *)b->labels[k].name;
            l->name.len = strlen(b->labels[k].name);
            l->value.data = (uint8_t *)b->labels[k].value;
            l->value.len = strlen(b->labels[k].value);
            s->labp[li++] = l;
            t->n_labels++;
        }
        t->samples = &s->psp[si];
        t->n_samples = b->nsamples;
        for (size_t k = 0; k < b->nsamples; k++) {
            Prometheus__Sample *p = &s->ps[si];
            prometheus__sample__init(p);
            p->value = s->sorted[b->first + k].v;
            p->timestamp = s->sorted[b->first + k].t;
            s->psp[si++] = p;
        }
    }
    Prometheus__WriteRequest req;
    prometheus__write_request__init(&req);
    req.timeseries = s->tsp;
    req.n_timeseries = n;
    size_t plen = prometheus__write_request__get_packed_size(&req);
    if ((rc = grow((void **)&s->pb, &s->pbcap, plen ? plen : 1, 1))) return rc;
    prometheus__write_request__pack(&req, s->pb);
    *plen_out = plen;
    return 0;
}

/* The symbol id of str in the request being built (symbol 0 is ""). */
static int sym_id(remote_ship_t *s, const char *str, uint32_t *id)
{
    size_t len = strlen(str);
    if ((s->nsym + 1) * 2 > s->symtabcap) {
        size_t ncap = s->symtabcap ? s->symtabcap * 2 : 1024;
        uint32_t *nt = calloc(ncap, sizeof *nt);
        if (!nt) return STRATA_ENOMEM;
        free(s->symtab);
        s->symtab = nt;
        s->symtabcap = ncap;
        for (size_t k = 0; k < s->nsym; k++) {
            uint64_t h = 1469598103934665603ull;
            for (size_t j = 0; j < s->sym[k].len; j++) h = (h ^ s->sym[k].data[j]) * 1099511628211ull;
            size_t i = (size_t)h & (ncap - 1);
            while (s->symtab[i]) i = (i + 1) & (ncap - 1);
            s->symtab[i] = (uint32_t)k + 1;
        }
    }
    uint64_t h = 1469598103934665603ull;
    for (size_t j = 0; j < len; j++) h = (h ^ (uint8_t)str[j]) * 1099511628211ull;
    size_t i = (size_t)h & (s->symtabcap - 1);
    for (; s->symtab[i]; i = (i + 1) & (s->symtabcap - 1)) {
        const ProtobufCBinaryData *d = &s->sym[s->symtab[i] - 1];
        if (d->len == len && !memcmp(d->data, str, len)) {
            *id = s->symtab[i] - 1;
            return 0;
        }
    }
    int rc = grow((void **)&s->sym, &s->symcap, s->nsym + 1, sizeof *s->sym);
    if (rc) return rc;
    s->sym[s->nsym] = (ProtobufCBinaryData){ len, (uint8_t *)str };
    s->symtab[i] = (uint32_t)++s->nsym;
    *id = (uint32_t)s->nsym - 1;
    return 0;
}

/* Encodes series idx[0..n) as an io.prometheus.write.v2.Request into s->pb:
 * label strings once each in the symbol table, series as references. */
static int encode_v2(remote_ship_t *s, const uint32_t *idx, size_t n, size_t *plen_out)
{
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < n; i++) {
        nl += s->ser[idx[i]].nlabels;
        ns += s->ser[idx[i]].nsamples;
    }
    int rc;
    if ((rc = grow((void **)&s->ts2, &s->ts2cap, n, sizeof *s->ts2)) ||
        (rc = grow((void **)&s->ts2p, &s->ts2pcap, n, sizeof *s->ts2p)) ||
        (rc = grow((void **)&s->ps2, &s->ps2cap, ns, sizeof *s->ps2)) ||
        (rc = grow((void **)&s->ps2p, &s->ps2pcap, ns, sizeof *s->ps2p)) ||
        (rc = grow((void **)&s->refs, &s->refscap, 2 * nl + 1, sizeof *s->refs)))
        return rc;
    s->nsym = 0;
    if (s->symtabcap) memset(s->symtab, 0, s->symtabcap * sizeof *s->symtab);
    uint32_t id;
    if ((rc = sym_id(s, "", &id))) return rc; /* the spec wants "" first */
    size_t ri = 0, si = 0;
    for (size_t i = 0; i < n; i++) {
        const bseries_t *b = &s->ser[idx[i]];
        Io__Prometheus__Write__V2__TimeSeries *t = &s->ts2[i];
        io__prometheus__write__v2__time_series__init(t);
        s->ts2p[i] = t;
        t->labels_refs = &s->refs[ri];
        for (size_t k = 0; k < b->nlabels; k++) {
            if (skip_label(s, &b->labels[k])) continue;
            if ((rc = sym_id(s, b->labels[k].name, &s->refs[ri])) ||
                (rc = sym_id(s, b->labels[k].value, &s->refs[ri + 1])))
                return rc;
            ri += 2;
            t->n_labels_refs += 2;
        }
        t->samples = &s->ps2p[si];
        t->n_samples = b->nsamples;
        for (size_t k = 0; k < b->nsamples; k++) {
            Io__Prometheus__Write__V2__Sample *p = &s->ps2[si];
            io__prometheus__write__v2__sample__init(p);
            p->value = s->sorted[b->first + k].v;
            p->timestamp = s->sorted[b->first + k].t;
            s->ps2p[si++] = p;
        }
    }
    Io__Prometheus__Write__V2__Request req;
    io__prometheus__write__v2__request__init(&req);
    req.symbols = s->sym;
    req.n_symbols = s->nsym;
    req.timeseries = s->ts2p;
    req.n_timeseries = n;
    size_t plen = io__prometheus__write__v2__request__get_packed_size(&req);
    if ((rc = grow((void **)&s->pb, &s->pbcap, plen ? plen : 1, 1))) return rc;
    io__prometheus__write__v2__request__pack(&req, s->pb);
    *plen_out = plen;
    return 0;
}

/* Encodes series idx[0..n) (one tenant) per --remote-write-version and sends it. */
static int send_series(remote_ship_t *s, const uint32_t *idx, size_t n)
{
    size_t plen = 0, ns = 0;
    for (size_t i = 0; i < n; i++) ns += s->ser[idx[i]].nsamples;
    int rc = s->o.version == 2 ? encode_v2(s, idx, n, &plen) : encode_v1(s, idx, n, &plen);
    if (rc) return rc;
    size_t slen = snappy_max_compressed_length(plen);
    if ((rc = grow((void **)&s->sn, &s->sncap, slen, 1))) return rc;
    if (snappy_compress((const char *)s->pb, plen, (char *)s->sn, &slen) != SNAPPY_OK) return STRATA_ENOMEM;
    return send_request(s, s->ser[idx[0]].tenant, s->sn, slen, ns);
}

/* Sends the slice: per tenant (in order of first appearance), series in order
 * of first appearance, cut by count and size. */
static int send_batch(remote_ship_t *s)
{
    int rc = batch_sort(s);
    if (rc) return rc;
    uint32_t *idx = malloc((s->nser ? s->nser : 1) * sizeof *idx);
    uint8_t *done = calloc(s->nser ? s->nser : 1, 1);
    if (!idx || !done) {
        free(idx);
        free(done);
        return STRATA_ENOMEM;
    }
    for (size_t first = 0; !rc && first < s->nser; first++) {
        if (done[first]) continue;
        const char *tenant = s->ser[first].tenant;
        size_t n = 0, bytes = 0;
        for (size_t i = first; !rc && i < s->nser; i++) {
            if (done[i] || (s->route_tenant && strcmp(s->ser[i].tenant, tenant))) continue;
            done[i] = 1;
            if (!s->ser[i].nsamples) continue;
            size_t sb = 16 * s->ser[i].nsamples + 8;
            for (size_t k = 0; k < s->ser[i].nlabels; k++)
                sb += strlen(s->ser[i].labels[k].name) + strlen(s->ser[i].labels[k].value) + 6;
            if (n && (n >= s->o.max_series_per_request || bytes + sb > s->o.max_bytes_per_request)) {
                rc = send_series(s, idx, n);
                n = bytes = 0;
            }
            idx[n++] = (uint32_t)i;
            bytes += sb;
        }
        if (!rc && n) rc = send_series(s, idx, n);
    }
    free(idx);
    free(done);
    return rc;
}

/* ---- the thread ----------------------------------------------------------------- */

static void *ship_main(void *arg)
{
    remote_ship_t *s = arg;
    int warned = 0;
    while (!atomic_load(&s->stop) && !s->cur) {
        pthread_mutex_lock(&s->mu);
        tsdb_wal_pos_t from = s->pos;
        pthread_mutex_unlock(&s->mu);
        int rc = tsdb_wal_cursor_open(s->db, from, &s->cur);
        if (rc) {
            if (!warned++)
                strata_error("remote write cannot read the WAL, retrying", "err=\"%s\"", strata_strerror(rc));
            wait_ms(s, 1000);
        }
    }
    while (!atomic_load(&s->stop)) {
        batch_reset(s);
        int rc = tsdb_wal_cursor_read(s->cur, SLICE_BYTES, on_samples, s);
        if (rc < 0) {
            strata_error("remote write cannot read the WAL, retrying", "err=\"%s\"", strata_strerror(rc));
            wait_ms(s, 1000);
            continue;
        }
        if (rc == 0) {
            pthread_mutex_lock(&s->mu);
            s->caught_up_ms = mono_ms();
            pthread_mutex_unlock(&s->mu);
            wait_ms(s, IDLE_WAIT_MS);
            continue;
        }
        if (s->unknown) {
            COUNT(failed, s->unknown);
            strata_error(
                "remote write: samples whose series the WAL lost (damaged or deleted segment), not sent",
                "samples=%zu", s->unknown);
        }
        if (s->nsmp && (rc = send_batch(s))) {
            if (rc != STRATA_ECLOSED) {
                strata_error("remote write batch failed, reading it again", "err=\"%s\"",
                             strata_strerror(rc));
                /* reopen at the acknowledged position: the slice is read again */
                tsdb_wal_cursor_close(s->cur);
                s->cur = NULL;
                pthread_mutex_lock(&s->mu);
                tsdb_wal_pos_t from = s->pos;
                pthread_mutex_unlock(&s->mu);
                while (!atomic_load(&s->stop) && tsdb_wal_cursor_open(s->db, from, &s->cur)) wait_ms(s, 1000);
            }
            continue;
        }
        tsdb_wal_pos_t p = tsdb_wal_cursor_pos(s->cur);
        if (pos_save(s, p) == 0) {
            pthread_mutex_lock(&s->mu);
            s->pos = p;
            pthread_mutex_unlock(&s->mu);
            tsdb_wal_cursor_commit(s->cur, p);
        }
    }
    return NULL;
}

int remote_ship_start(tsdb_t *db, const remote_ship_options_t *o, remote_ship_t **out)
{
    *out = NULL;
    if (!o->url || (o->version != 1 && o->version != 2)) return STRATA_EINVAL;
    remote_ship_t *s = calloc(1, sizeof *s);
    if (!s) return STRATA_ENOMEM;
    s->o = *o;
    s->db = db;
    s->route_tenant = strstr(o->url, "{tenant}") != NULL || (o->tenant_header && *o->tenant_header);
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    s->caught_up_ms = mono_ms();
    int rc = 0;
    s->pos_dir = strata_path_join(o->data_dir, "remote");
    s->pos_path = s->pos_dir ? strata_path_join(s->pos_dir, "position") : NULL;
    s->pos_tmp = s->pos_dir ? strata_path_join(s->pos_dir, "position.tmp") : NULL;
    if (!s->pos_path || !s->pos_tmp) rc = STRATA_ENOMEM;
    if (!rc && mkdir(s->pos_dir, 0755) != 0 && errno != EEXIST)
        rc = strata_io_error("cannot create the remote write dir", s->pos_dir);
    if (!rc) rc = pos_load(s, &s->pos);
    if (!rc && !(s->curl = curl_easy_init())) rc = STRATA_ENOMEM;
    if (!rc) {
        CURL *c = s->curl;
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, s->errbuf);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, s);
        curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
        if (o->ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, o->ca_file);
    }
    if (!rc && pthread_create(&s->th, NULL, ship_main, s) != 0) rc = STRATA_ENOMEM;
    if (rc) {
        remote_ship_stop(s);
        return rc;
    }
    s->started = 1;
    strata_info("remote write shipping", "url=%s position=%08" PRIu64 ":%" PRIu64 " queue_max_bytes=%" PRIu64,
                o->url, s->pos.segment, s->pos.offset, o->queue_max_bytes);
    *out = s;
    return 0;
}

void remote_ship_stop(remote_ship_t *s)
{
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, 1);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started) pthread_join(s->th, NULL);
    tsdb_wal_cursor_close(s->cur);
    if (s->curl) curl_easy_cleanup(s->curl);
    free(s->pos_dir);
    free(s->pos_path);
    free(s->pos_tmp);
    free(s->ser);
    free(s->smp);
    free(s->sorted);
    free(s->rmap);
    free(s->ts);
    free(s->tsp);
    free(s->lab);
    free(s->labp);
    free(s->ps);
    free(s->psp);
    free(s->pb);
    free(s->sn);
    free(s->ts2);
    free(s->ts2p);
    free(s->ps2);
    free(s->ps2p);
    free(s->sym);
    free(s->symtab);
    free(s->refs);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->qmu);
    free(s);
}

/* ---- backpressure and metrics ------------------------------------------------------ */

/* Unshipped WAL bytes, recomputed at most every 100 ms (a few stat calls). */
static uint64_t queue_bytes(remote_ship_t *s)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&s->qmu);
    if (now - s->queue_at_ms >= 100) {
        pthread_mutex_lock(&s->mu);
        tsdb_wal_pos_t p = s->pos;
        pthread_mutex_unlock(&s->mu);
        s->queue_bytes = tsdb_wal_bytes_after(s->db, p);
        s->queue_at_ms = now;
    }
    uint64_t q = s->queue_bytes;
    pthread_mutex_unlock(&s->qmu);
    return q;
}

int remote_ship_admit(remote_ship_t *s, char *why, size_t cap)
{
    if (!s || !s->o.queue_max_bytes) return 0;
    uint64_t q = queue_bytes(s);
    if (q <= s->o.queue_max_bytes) return 0;
    COUNT(refused, 1);
    snprintf(why, cap,
             "the remote-write queue is full: %" PRIu64
             " bytes of WAL not yet acknowledged by the engine (--remote-queue-max-bytes=%" PRIu64
             "); the engine is down or slow, retry later",
             q, s->o.queue_max_bytes);
    return STRATA_ENOSPC;
}

size_t remote_ship_render(remote_ship_t *s, char *buf, size_t cap)
{
    if (!s) {
        if (cap) buf[0] = 0;
        return 0;
    }
    uint64_t q = queue_bytes(s);
    struct {
        uint64_t shipped, failed, retried, requests_ok, requests_failed, requests_retried, refused;
        uint64_t dur_count[NDUR + 1];
        double dur_sum;
        int64_t caught_up_ms;
    } m;
    pthread_mutex_lock(&s->mu);
    m.shipped = s->shipped;
    m.failed = s->failed;
    m.retried = s->retried;
    m.requests_ok = s->requests_ok;
    m.requests_failed = s->requests_failed;
    m.requests_retried = s->requests_retried;
    m.refused = s->refused;
    memcpy(m.dur_count, s->dur_count, sizeof m.dur_count);
    m.dur_sum = s->dur_sum;
    m.caught_up_ms = s->caught_up_ms;
    pthread_mutex_unlock(&s->mu);
    double age = q ? (double)(mono_ms() - m.caught_up_ms) / 1000.0 : 0;
    size_t off = 0;
#define OUT(...)                                                                                 \
    do {                                                                                         \
        int n_ = snprintf(off < cap ? buf + off : NULL, off < cap ? cap - off : 0, __VA_ARGS__); \
        if (n_ > 0) off += (size_t)n_;                                                           \
    } while (0)
    OUT("# HELP strata_remote_samples_shipped_total Samples the remote-write engine acknowledged.\n"
        "# TYPE strata_remote_samples_shipped_total counter\n"
        "strata_remote_samples_shipped_total %" PRIu64 "\n",
        m.shipped);
    OUT("# HELP strata_remote_samples_failed_total Samples dropped: refused by the engine with a 4xx other "
        "than 429, or whose series the WAL lost.\n"
        "# TYPE strata_remote_samples_failed_total counter\n"
        "strata_remote_samples_failed_total %" PRIu64 "\n",
        m.failed);
    OUT("# HELP strata_remote_samples_retried_total Samples of requests sent again after a 5xx, 429 or "
        "connection error.\n"
        "# TYPE strata_remote_samples_retried_total counter\n"
        "strata_remote_samples_retried_total %" PRIu64 "\n",
        m.retried);
    OUT("# HELP strata_remote_requests_total Remote-write requests by outcome.\n"
        "# TYPE strata_remote_requests_total counter\n"
        "strata_remote_requests_total{outcome=\"ok\"} %" PRIu64 "\n"
        "strata_remote_requests_total{outcome=\"retried\"} %" PRIu64 "\n"
        "strata_remote_requests_total{outcome=\"failed\"} %" PRIu64 "\n",
        m.requests_ok, m.requests_retried, m.requests_failed);
    OUT("# HELP strata_remote_queue_bytes WAL bytes not yet acknowledged by the engine.\n"
        "# TYPE strata_remote_queue_bytes gauge\n"
        "strata_remote_queue_bytes %" PRIu64 "\n"
        "# HELP strata_remote_queue_max_bytes --remote-queue-max-bytes (0 = no limit).\n"
        "# TYPE strata_remote_queue_max_bytes gauge\n"
        "strata_remote_queue_max_bytes %" PRIu64 "\n",
        q, s->o.queue_max_bytes);
    OUT("# HELP strata_remote_queue_age_seconds How long the shipper has been behind the WAL (0 when caught "
        "up).\n"
        "# TYPE strata_remote_queue_age_seconds gauge\n"
        "strata_remote_queue_age_seconds %.3f\n",
        age);
    OUT("# HELP strata_remote_writes_refused_total Write requests answered 503 because the remote-write "
        "queue was full.\n"
        "# TYPE strata_remote_writes_refused_total counter\n"
        "strata_remote_writes_refused_total %" PRIu64 "\n",
        m.refused);
    OUT("# HELP strata_remote_request_duration_seconds Remote-write request durations.\n"
        "# TYPE strata_remote_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t k = 0; k < NDUR; k++) {
        cum += m.dur_count[k];
        OUT("strata_remote_request_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", dur_le[k], cum);
    }
    cum += m.dur_count[NDUR];
    OUT("strata_remote_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
        "strata_remote_request_duration_seconds_sum %.6f\n"
        "strata_remote_request_duration_seconds_count %" PRIu64 "\n",
        cum, m.dur_sum, cum);
#undef OUT
    return off;
}
