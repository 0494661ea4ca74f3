/*
 * bench_tsdb_codec.c: compression and speed of tsdb's chunk codec against a
 * plain Gorilla XOR baseline (Prometheus chunkenc: delta-of-delta timestamps
 * in its 1/14/17/20/64-bit buckets, XOR values, 120 samples per chunk),
 * implemented here so the comparison needs nothing else.
 *
 * Datasets: (a) every numeric column of the H200 NVML trace at its real
 * 100 ms timestamps; (b) a synthetic GPU cluster day (64 GPUs, DCGM /
 * cAdvisor / kube-state shaped series, 15 s scrapes with a few ms of jitter,
 * 5760 samples each, fixed seed); (c) constant series.  For each: bytes per
 * sample of strata chunks alone (120 = head, 1024 = block), of 1024-sample
 * chunks + zstd(3) per series (what the block writer stores), of Gorilla, the
 * ratio, and encode/decode speed.  Figures are printed, never asserted.
 *
 *   build/bench-tsdb-codec [-v] [path/to/h200-nvml-trace.csv]   (-v: per-metric sizes)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "codec.h"

/* ---- datasets ----------------------------------------------------------- */

#define TRACE_GROUPS 16

typedef struct series {
    tsdb_sample_t *s;
    size_t n;
} series_t;

typedef struct dataset {
    const char *name;
    series_t *ser;
    size_t nser, cap;
    /* series i belongs to group i % ngroups (for the per-metric breakdown) */
    const char *group[TRACE_GROUPS];
    size_t ngroups;
} dataset_t;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static series_t *ds_add(dataset_t *d, size_t n)
{
    if (d->nser == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->ser = realloc(d->ser, d->cap * sizeof *d->ser);
        if (!d->ser) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    series_t *s = &d->ser[d->nser++];
    s->s = xmalloc(n * sizeof *s->s);
    s->n = n;
    return s;
}

static size_t ds_samples(const dataset_t *d)
{
    size_t t = 0;
    for (size_t i = 0; i < d->nser; i++) t += d->ser[i].n;
    return t;
}

static uint64_t rng = 0x5eed;

static uint64_t rnd(void)
{
    uint64_t z = (rng += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double urand(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }
static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1)); }

/* The trace: one series per numeric column; gpu_util per phase kept for (b). */
#define TRACE_MAXCOL 16
static double *trace_util;
static char (*trace_phase)[32];
static size_t trace_rows;

static int load_trace(const char *path, dataset_t *d)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[4096];
    char names[TRACE_MAXCOL][64];
    int ncol = 0;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return -1;
    }
    for (char *tok = strtok(line, ",\r\n"); tok && ncol < TRACE_MAXCOL; tok = strtok(NULL, ",\r\n"))
        snprintf(names[ncol++], sizeof names[0], "%s", tok);
    size_t cap = 4096, rows = 0;
    double(*vals)[TRACE_MAXCOL] = xmalloc(cap * sizeof *vals);
    char(*ph)[32] = xmalloc(cap * sizeof *ph);
    while (fgets(line, sizeof line, f)) {
        if (rows == cap) {
            cap *= 2;
            vals = realloc(vals, cap * sizeof *vals);
            ph = realloc(ph, cap * sizeof *ph);
            if (!vals || !ph) {
                fprintf(stderr, "out of memory\n");
                exit(1);
            }
        }
        int c = 0;
        for (char *tok = strtok(line, ",\r\n"); tok && c < ncol; tok = strtok(NULL, ",\r\n"), c++) {
            if (!strcmp(names[c], "phase")) snprintf(ph[rows], 32, "%s", tok);
            vals[rows][c] = strtod(tok, NULL);
        }
        if (c == ncol) rows++;
    }
    fclose(f);
    int tcol = -1, ucol = -1;
    for (int c = 0; c < ncol; c++) {
        if (!strcmp(names[c], "timestamp_ms")) tcol = c;
        if (!strcmp(names[c], "gpu_util_pct")) ucol = c;
    }
    if (tcol < 0 || rows < 2) {
        free(vals);
        free(ph);
        return -1;
    }
    static char gnames[TRACE_MAXCOL][64];
    for (int c = 0; c < ncol; c++) {
        if (c == tcol || !strcmp(names[c], "phase")) continue;
        memcpy(gnames[d->ngroups], names[c], sizeof gnames[0]);
        d->group[d->ngroups] = gnames[d->ngroups];
        d->ngroups++;
        series_t *s = ds_add(d, rows);
        for (size_t r = 0; r < rows; r++) {
            s->s[r].t = (int64_t)vals[r][tcol];
            s->s[r].v = vals[r][c];
        }
    }
    if (ucol >= 0) {
        trace_util = xmalloc(rows * sizeof *trace_util);
        for (size_t r = 0; r < rows; r++) trace_util[r] = vals[r][ucol];
        trace_phase = ph;
        trace_rows = rows;
    } else {
        free(ph);
    }
    free(vals);
    return 0;
}

/* A utilization value drawn from the trace rows of one busy level. */
static double util_sample(int busy)
{
    if (!trace_rows) return busy ? (double)irand(85, 100) : 0;
    for (int tries = 0; tries < 64; tries++) {
        size_t r = (size_t)(rnd() % trace_rows);
        int idle = !strncmp(trace_phase[r], "idle", 4) || !strcmp(trace_phase[r], "init");
        if (idle != !busy) return trace_util[r];
    }
    return trace_util[rnd() % trace_rows];
}

#define DAY_N    5760 /* 24 h at 15 s */
#define DAY_GPUS 64

/* (b): per GPU, workloads come and go (busy or idle segments of 20 min to
 * 4 h); DCGM gauges follow the segment, counters integrate, kube-state series
 * are constant.  Every target's scrapes share one jittered timeline. */
static void gen_cluster_day(dataset_t *d)
{
    static const char *names[12] = {
        "DCGM_FI_DEV_GPU_UTIL",
        "DCGM_FI_DEV_FB_USED",
        "DCGM_FI_DEV_POWER_USAGE",
        "DCGM_FI_DEV_GPU_TEMP",
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "DCGM_FI_DEV_SM_CLOCK",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        "runai_workload_gpu_allocation",
        "kube_pod_status_phase",
    };
    for (int k = 0; k < 12; k++) d->group[k] = names[k];
    d->ngroups = 12;
    int64_t day0 = 1795737600000; /* a UTC midnight */
    int64_t *ts = xmalloc(DAY_N * sizeof *ts);
    int *busy = xmalloc(DAY_N * sizeof *busy);
    int *fb = xmalloc(DAY_N * sizeof *fb);
    for (int g = 0; g < DAY_GPUS; g++) {
        int64_t off = irand(0, 14999);
        for (int i = 0; i < DAY_N; i++) ts[i] = day0 + off + (int64_t)i * 15000 + irand(-3, 3);
        int i = 0, mib = 0;
        while (i < DAY_N) {
            int len = (int)irand(80, 960), b = (int)(rnd() % 3 != 0);
            mib = b ? (int)irand(8, 140) * 1024 : (rnd() % 2 ? 0 : 512);
            for (int k = 0; k < len && i < DAY_N; k++, i++) {
                busy[i] = b;
                /* frameworks grow their pools in steps now and then */
                if (b && rnd() % 200 == 0) mib += (int)irand(1, 8) * 256;
                fb[i] = mib;
            }
        }
        /* twelve consecutive series; pointers taken after the last ds_add (it reallocs) */
        size_t first = d->nser;
        for (int k = 0; k < 12; k++) ds_add(d, DAY_N);
        series_t *util = &d->ser[first], *fbu = util + 1, *pw = util + 2, *tmp = util + 3, *en = util + 4,
                 *clk = util + 5, *cpu = util + 6, *mem = util + 7, *req = util + 8, *lim = util + 9,
                 *alloc = util + 10, *phase = util + 11;
        double temp = 30, energy = (double)irand(1, 1000000) * 1000, cpus = (double)irand(100, 100000);
        double memb = (double)irand(1, 64) * 1073741824.0;
        for (int k = 0; k < DAY_N; k++) {
            for (series_t *s = util; s <= phase; s++) s->s[k].t = ts[k];
            int b = busy[k];
            double u = util_sample(b);
            util->s[k].v = u;
            fbu->s[k].v = fb[k];
            /* DCGM reports watts with three decimals */
            double w = 75 + 6 * u + (double)irand(-4000, 4000) / 1000.0;
            pw->s[k].v = round(w * 1000) / 1000;
            double target = 30 + u * 0.45;
            temp += (target - temp) * 0.05;
            tmp->s[k].v = round(temp);
            energy += round(w * 15000);
            en->s[k].v = energy;
            clk->s[k].v = b ? (rnd() % 10 ? 1980 : 1755) : 345;
            /* cAdvisor: cumulative CPU seconds with nanosecond resolution */
            cpus += b ? 15 * (1.5 + urand()) : 15 * 0.02 * urand();
            cpu->s[k].v = round(cpus * 1e9) / 1e9;
            if (rnd() % 10 == 0) memb += (double)irand(-256, 256) * 4096;
            mem->s[k].v = memb;
            req->s[k].v = 8;
            lim->s[k].v = 16;
            alloc->s[k].v = 1;
            phase->s[k].v = 1;
        }
    }
    free(ts);
    free(busy);
    free(fb);
}

static void gen_constant(dataset_t *d)
{
    d->group[0] = "const 1";
    d->group[1] = "const 0";
    d->group[2] = "const 64 GiB";
    d->group[3] = "const 0.5";
    d->ngroups = 4;
    for (int s = 0; s < 256; s++) {
        series_t *se = ds_add(d, DAY_N);
        double v = s % 4 == 0 ? 1 : s % 4 == 1 ? 0 : s % 4 == 2 ? 68719476736.0 : 0.5;
        for (int i = 0; i < DAY_N; i++) {
            se->s[i].t = 1795737600000 + (int64_t)i * 15000;
            se->s[i].v = v;
        }
    }
}

/* ---- Gorilla baseline (Prometheus chunkenc XOR) -------------------------- */

/* MSB-first bit stream with a 64-bit accumulator, as Prometheus' bstream. */
typedef struct gbw {
    uint8_t *p;
    size_t nbits;
    uint64_t acc;
    unsigned n; /* bits pending in acc (< 8 after each put) */
} gbw_t;

static inline void g_put(gbw_t *b, uint64_t v, unsigned w)
{
    if (w > 32) {
        g_put(b, v >> 32, w - 32);
        w = 32;
    }
    v &= w == 64 ? ~UINT64_C(0) : (UINT64_C(1) << w) - 1;
    b->acc = (b->acc << w) | v;
    b->n += w;
    b->nbits += w;
    while (b->n >= 8) {
        b->n -= 8;
        b->p[(b->nbits - b->n) / 8 - 1] = (uint8_t)(b->acc >> b->n);
    }
}

static void g_flush(gbw_t *b)
{
    if (b->n) b->p[b->nbits / 8] = (uint8_t)(b->acc << (8 - b->n));
}

typedef struct gbr {
    const uint8_t *p;
    size_t len, byte; /* next byte to load */
    uint64_t acc;
    unsigned n; /* valid low bits in acc */
} gbr_t;

static inline uint64_t g_get(gbr_t *r, unsigned w)
{
    if (w > 32) {
        uint64_t hi = g_get(r, w - 32);
        return hi << 32 | g_get(r, 32);
    }
    while (r->n < w) {
        r->acc = (r->acc << 8) | (r->byte < r->len ? r->p[r->byte] : 0);
        r->byte++;
        r->n += 8;
    }
    r->n -= w;
    return (r->acc >> r->n) & ((UINT64_C(1) << w) - 1);
}

static void g_varint(gbw_t *b, uint64_t v)
{
    while (v >= 0x80) {
        g_put(b, (v & 0x7f) | 0x80, 8);
        v >>= 7;
    }
    g_put(b, v, 8);
}

static uint64_t g_getvarint(gbr_t *r)
{
    uint64_t v = 0;
    for (unsigned s = 0; s < 64; s += 7) {
        uint64_t b = g_get(r, 8);
        v |= (b & 0x7f) << s;
        if (!(b & 0x80)) break;
    }
    return v;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

static size_t gorilla_encode(const tsdb_sample_t *s, size_t n, uint8_t *out)
{
    gbw_t b = { .p = out };
    g_put(&b, n, 16);
    g_varint(&b, ((uint64_t)s[0].t << 1) ^ (uint64_t)(s[0].t >> 63));
    g_put(&b, dbits(s[0].v), 64);
    int64_t pdelta = 0;
    unsigned plead = 0xff, ptrail = 0;
    for (size_t i = 1; i < n; i++) {
        int64_t delta = s[i].t - s[i - 1].t;
        if (i == 1) {
            g_varint(&b, (uint64_t)delta);
        } else {
            int64_t dod = delta - pdelta;
            if (dod == 0)
                g_put(&b, 0, 1);
            else if (dod >= -8191 && dod <= 8192) {
                g_put(&b, 2, 2);
                g_put(&b, (uint64_t)dod, 14);
            } else if (dod >= -65535 && dod <= 65536) {
                g_put(&b, 6, 3);
                g_put(&b, (uint64_t)dod, 17);
            } else if (dod >= -524287 && dod <= 524288) {
                g_put(&b, 14, 4);
                g_put(&b, (uint64_t)dod, 20);
            } else {
                g_put(&b, 15, 4);
                g_put(&b, (uint64_t)dod, 64);
            }
        }
        pdelta = delta;
        uint64_t x = dbits(s[i].v) ^ dbits(s[i - 1].v);
        if (!x) {
            g_put(&b, 0, 1);
            continue;
        }
        g_put(&b, 1, 1);
        unsigned lead = (unsigned)__builtin_clzll(x), trail = (unsigned)__builtin_ctzll(x);
        if (lead >= 32) lead = 31;
        if (plead != 0xff && lead >= plead && trail >= ptrail) {
            g_put(&b, 0, 1);
            g_put(&b, x >> ptrail, 64 - plead - ptrail);
        } else {
            plead = lead;
            ptrail = trail;
            unsigned sig = 64 - lead - trail;
            g_put(&b, 1, 1);
            g_put(&b, lead, 5);
            g_put(&b, sig & 63, 6);
            g_put(&b, x >> trail, sig);
        }
    }
    g_flush(&b);
    return (b.nbits + 7) / 8;
}

static int64_t sext(uint64_t v, unsigned w) { return (int64_t)(v << (64 - w)) >> (64 - w); }

static size_t gorilla_decode(const uint8_t *buf, size_t len, tsdb_sample_t *out)
{
    gbr_t r = { .p = buf, .len = len };
    size_t n = g_get(&r, 16);
    uint64_t zt = g_getvarint(&r);
    int64_t t = (int64_t)(zt >> 1) ^ -(int64_t)(zt & 1), delta = 0;
    uint64_t v = g_get(&r, 64);
    out[0].t = t;
    out[0].v = bitsd(v);
    unsigned lead = 0, trail = 0;
    for (size_t i = 1; i < n; i++) {
        if (i == 1) {
            delta = (int64_t)g_getvarint(&r);
        } else if (g_get(&r, 1)) {
            int64_t dod;
            if (!g_get(&r, 1))
                dod = sext(g_get(&r, 14), 14);
            else if (!g_get(&r, 1))
                dod = sext(g_get(&r, 17), 17);
            else if (!g_get(&r, 1))
                dod = sext(g_get(&r, 20), 20);
            else
                dod = (int64_t)g_get(&r, 64);
            delta += dod;
        }
        t += delta;
        if (g_get(&r, 1)) {
            if (g_get(&r, 1)) {
                lead = (unsigned)g_get(&r, 5);
                unsigned sig = (unsigned)g_get(&r, 6);
                if (!sig) sig = 64;
                trail = 64 - lead - sig;
            }
            v ^= g_get(&r, 64 - lead - trail) << trail;
        }
        out[i].t = t;
        out[i].v = bitsd(v);
    }
    return n;
}

/* ---- measuring ---------------------------------------------------------- */

/* results fed here so the timed loops cannot be optimised away */
static volatile size_t sink_sz;
static volatile double sink_v;

/* CPU time of this thread: other work on a shared machine inflates it far
 * less than wall time (cache contention still shows). */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Chunks of a dataset, concatenated per codec; offsets kept for decoding. */
typedef struct chunked {
    uint8_t *bytes;
    size_t len;
    size_t *off, *cnt; /* per chunk: start and sample count */
    size_t nchunks;
} chunked_t;

enum { C_STRATA, C_GORILLA };

static void chunk_all(const dataset_t *d, size_t per, int codec, chunked_t *c)
{
    size_t total = ds_samples(d), maxch = total / per + d->nser + 1;
    c->bytes = xmalloc(total * 20 + maxch * 64);
    c->off = xmalloc(maxch * sizeof *c->off);
    c->cnt = xmalloc(maxch * sizeof *c->cnt);
    c->len = 0;
    c->nchunks = 0;
    for (size_t s = 0; s < d->nser; s++) {
        for (size_t i = 0; i < d->ser[s].n; i += per) {
            size_t n = d->ser[s].n - i < per ? d->ser[s].n - i : per, w = 0;
            if (codec == C_STRATA) {
                if (tsdb_chunk_encode(d->ser[s].s + i, n, c->bytes + c->len, tsdb_chunk_max_size(n), &w)) {
                    fprintf(stderr, "encode failed\n");
                    exit(1);
                }
            } else {
                w = gorilla_encode(d->ser[s].s + i, n, c->bytes + c->len);
            }
            c->off[c->nchunks] = c->len;
            c->cnt[c->nchunks++] = n;
            c->len += w;
        }
    }
}

static void chunked_free(chunked_t *c)
{
    free(c->bytes);
    free(c->off);
    free(c->cnt);
}

static size_t chunk_len(const chunked_t *c, size_t i)
{
    return (i + 1 < c->nchunks ? c->off[i + 1] : c->len) - c->off[i];
}

/* zstd(3) over each series' chunk bytes, as the block writer stores them. */
static size_t zstd_per_series(const dataset_t *d, const chunked_t *c, size_t per)
{
    size_t total = 0, ci = 0, bound = ZSTD_compressBound(c->len);
    uint8_t *dst = xmalloc(bound);
    for (size_t s = 0; s < d->nser; s++) {
        size_t nch = (d->ser[s].n + per - 1) / per;
        size_t start = c->off[ci], end = ci + nch < c->nchunks ? c->off[ci + nch] : c->len;
        size_t z = ZSTD_compress(dst, bound, c->bytes + start, end - start, 3);
        if (ZSTD_isError(z)) {
            fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(z));
            exit(1);
        }
        total += z;
        ci += nch;
    }
    free(dst);
    return total;
}

/* ns per sample for encoding/decoding the whole dataset, repeated >= ~0.15 s. */
static double time_encode(const dataset_t *d, size_t per, int codec)
{
    uint8_t *buf = xmalloc(tsdb_chunk_max_size(per) + 64);
    size_t total = ds_samples(d), reps = 0;
    double t0 = now(), el;
    do {
        for (size_t s = 0; s < d->nser; s++)
            for (size_t i = 0; i < d->ser[s].n; i += per) {
                size_t n = d->ser[s].n - i < per ? d->ser[s].n - i : per, w = 0;
                if (codec == C_STRATA)
                    tsdb_chunk_encode(d->ser[s].s + i, n, buf, tsdb_chunk_max_size(per), &w);
                else
                    w = gorilla_encode(d->ser[s].s + i, n, buf);
                sink_sz += w;
            }
        reps++;
        el = now() - t0;
    } while (el < 0.15);
    free(buf);
    return el * 1e9 / (double)(total * reps);
}

static double time_decode(const chunked_t *c, size_t per, int codec, size_t total)
{
    tsdb_sample_t *out = xmalloc(per * sizeof *out);
    size_t reps = 0;
    double t0 = now(), el;
    do {
        for (size_t i = 0; i < c->nchunks; i++) {
            size_t n = 0;
            if (codec == C_STRATA) {
                if (tsdb_chunk_decode(c->bytes + c->off[i], chunk_len(c, i), out, per, &n)) {
                    fprintf(stderr, "decode failed\n");
                    exit(1);
                }
            } else {
                n = gorilla_decode(c->bytes + c->off[i], chunk_len(c, i), out);
            }
            sink_v += out[n - 1].v;
        }
        reps++;
        el = now() - t0;
    } while (el < 0.15);
    free(out);
    return el * 1e9 / (double)(total * reps);
}

/* Checks every chunk decodes to the input bit for bit (the bench must not
 * report figures of a broken codec). */
static void verify(const dataset_t *d, const chunked_t *c, size_t per, int codec)
{
    tsdb_sample_t *out = xmalloc(per * sizeof *out);
    size_t ci = 0;
    for (size_t s = 0; s < d->nser; s++)
        for (size_t i = 0; i < d->ser[s].n; i += per, ci++) {
            size_t n = 0;
            if (codec == C_STRATA)
                tsdb_chunk_decode(c->bytes + c->off[ci], chunk_len(c, ci), out, per, &n);
            else
                n = gorilla_decode(c->bytes + c->off[ci], chunk_len(c, ci), out);
            for (size_t k = 0; k < n; k++)
                if (n != c->cnt[ci] || out[k].t != d->ser[s].s[i + k].t ||
                    dbits(out[k].v) != dbits(d->ser[s].s[i + k].v)) {
                    fprintf(stderr, "%s round trip mismatch in series %zu\n",
                            codec == C_STRATA ? "strata" : "gorilla", s);
                    exit(1);
                }
        }
    free(out);
}

static int verbose;

/* Bytes per sample of each group: strata@1024, +zstd3, gorilla@120. */
static void breakdown(const dataset_t *d, const chunked_t *s1024, const chunked_t *g120)
{
    size_t ng = d->ngroups;
    double sb[TRACE_GROUPS] = { 0 }, zb[TRACE_GROUPS] = { 0 }, gb[TRACE_GROUPS] = { 0 },
           ns[TRACE_GROUPS] = { 0 };
    size_t c1 = 0, c2 = 0, bound = ZSTD_compressBound(s1024->len);
    uint8_t *dst = xmalloc(bound);
    for (size_t s = 0; s < d->nser; s++) {
        size_t g = s % ng, n1 = (d->ser[s].n + 1023) / 1024, n2 = (d->ser[s].n + 119) / 120;
        size_t a = s1024->off[c1], e = c1 + n1 < s1024->nchunks ? s1024->off[c1 + n1] : s1024->len;
        sb[g] += (double)(e - a);
        zb[g] += (double)ZSTD_compress(dst, bound, s1024->bytes + a, e - a, 3);
        a = g120->off[c2];
        e = c2 + n2 < g120->nchunks ? g120->off[c2 + n2] : g120->len;
        gb[g] += (double)(e - a);
        ns[g] += (double)d->ser[s].n;
        c1 += n1;
        c2 += n2;
    }
    free(dst);
    printf("  %-40s %10s %10s %10s %7s\n", "per metric (bytes/sample)", "strata1024", "+zstd3", "gorilla",
           "ratio");
    for (size_t g = 0; g < ng; g++)
        printf("  %-40s %10.3f %10.3f %10.3f %7.3f\n", d->group[g], sb[g] / ns[g], zb[g] / ns[g],
               gb[g] / ns[g], zb[g] / gb[g]);
}

static void bench_dataset(const dataset_t *d, double target_ratio)
{
    size_t total = ds_samples(d);
    chunked_t s120, s1024, g120;
    chunk_all(d, 120, C_STRATA, &s120);
    chunk_all(d, 1024, C_STRATA, &s1024);
    chunk_all(d, 120, C_GORILLA, &g120);
    verify(d, &s120, 120, C_STRATA);
    verify(d, &s1024, 1024, C_STRATA);
    verify(d, &g120, 120, C_GORILLA);
    size_t z = zstd_per_series(d, &s1024, 1024);
    double bs120 = (double)s120.len / total, bs1024 = (double)s1024.len / total;
    double bz = (double)z / total, bg = (double)g120.len / total;
    printf("\n[%s] %zu series, %zu samples\n", d->name, d->nser, total);
    printf("  bytes/sample  strata@120 %.3f  strata@1024 %.3f  strata@1024+zstd3 %.3f  gorilla@120 %.3f\n",
           bs120, bs1024, bz, bg);
    printf("  ratio         on-disk/gorilla %.3f  head(120)/gorilla %.3f", bz / bg, bs120 / bg);
    if (target_ratio > 0)
        printf("  (target <= %.2f: %s)", target_ratio, bz / bg <= target_ratio ? "met" : "MISSED");
    if (target_ratio > 0 && bz / bg > target_ratio) printf(" by %.0f%%", (bz / bg / target_ratio - 1) * 100);
    printf("\n");
    if (verbose && d->ngroups) breakdown(d, &s1024, &g120);
    double es = time_encode(d, 120, C_STRATA), eg = time_encode(d, 120, C_GORILLA);
    double ds = time_decode(&s120, 120, C_STRATA, total), dg = time_decode(&g120, 120, C_GORILLA, total);
    double ds1k = time_decode(&s1024, 1024, C_STRATA, total);
    printf("  encode@120    strata %.1f ns/sample (%.0f M/s)  gorilla %.1f ns/sample (%.0f M/s)\n", es,
           1e3 / es, eg, 1e3 / eg);
    printf("  decode@120    strata %.2f ns/sample (%.0f M/s)  gorilla %.2f ns/sample (%.0f M/s)\n", ds,
           1e3 / ds, dg, 1e3 / dg);
    printf("  decode@1024   strata %.2f ns/sample (%.0f M/s)\n", ds1k, 1e3 / ds1k);
    chunked_free(&s120);
    chunked_free(&s1024);
    chunked_free(&g120);
}

static void ds_free(dataset_t *d)
{
    for (size_t i = 0; i < d->nser; i++) free(d->ser[i].s);
    free(d->ser);
}

/* Decode throughput of a regular, integer-valued series in 1024-sample chunks. */
static void bench_regular_int(void)
{
    enum { N = 1024, CH = 64 };
    static tsdb_sample_t in[N], out[N];
    static uint8_t buf[CH][8192];
    size_t len[CH];
    for (int c = 0; c < CH; c++) {
        for (int i = 0; i < N; i++) {
            in[i].t = 1795737600000 + ((int64_t)c * N + i) * 15000;
            in[i].v = (double)irand(0, 100);
        }
        if (tsdb_chunk_encode(in, N, buf[c], sizeof buf[c], &len[c])) exit(1);
    }
    size_t reps = 0, n;
    double t0 = now(), el;
    do {
        for (int c = 0; c < CH; c++) {
            tsdb_chunk_decode(buf[c], len[c], out, N, &n);
            sink_v += out[N - 1].v;
        }
        reps++;
        el = now() - t0;
    } while (el < 0.3);
    double ms = (double)(reps * CH * N) / el / 1e6;
    printf("\n[regular integer series, 1024-sample chunks, values 0..100] decode %.0f M samples/s "
           "(%.2f ns/sample, %.2f bytes/sample)",
           ms, 1e3 / ms, (double)len[0] / N);
    if (ms >= 200)
        printf("  target >= 200 M/s: met\n");
    else
        printf("  target >= 200 M/s: MISSED by %.0f%%\n", (200 - ms) / 2);
}

int main(int argc, char **argv)
{
    const char *trace = "../shared/data/h200-nvml-trace.csv";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v"))
            verbose = 1;
        else
            trace = argv[i];
    }
    dataset_t a = { .name = "(a) H200 NVML trace, every numeric column at 100 ms" };
    if (load_trace(trace, &a)) {
        fprintf(stderr, "cannot read %s (pass the trace's path as the argument)\n", trace);
        return 1;
    }
    bench_dataset(&a, 0.6);
    dataset_t b = { .name = "(b) synthetic GPU cluster day: 64 GPUs x 12 series, 15 s +-3 ms" };
    gen_cluster_day(&b);
    bench_dataset(&b, 0.6);
    dataset_t c = { .name = "(c) constant series, 15 s" };
    gen_constant(&c);
    bench_dataset(&c, 0);
    bench_regular_int();
    ds_free(&a);
    ds_free(&b);
    ds_free(&c);
    free(trace_util);
    free(trace_phase);
    return 0;
}
