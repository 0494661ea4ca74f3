/*
 * tsdb_block.c: immutable blocks (writer and reader) and rollup computation.
 *
 * A block is a directory of four files (layout in format.h): chunks and
 * rollups are "page files" whose zstd-compressed pages each carry a CRC32C,
 * index holds symbols, series, chunk refs and postings under one CRC, meta
 * the time range and counts.  The whole index is loaded at open (it is
 * small next to the chunks) so matchers run in memory; chunk pages are read
 * with pread on demand and checked on every read, so a flipped bit is
 * reported as STRATA_ECORRUPT instead of being served.
 *
 * Decompressed pages are also kept in one process-wide LRU (shared_*, 64 MiB
 * by default) so repeated queries over the same range skip pread + CRC + zstd
 * (most of a 7-day query's CPU).  Pages are immutable and only verified pages
 * enter it, so the only invalidation is tsdb_block_close dropping its pages.
 */
#include "block_internal.h"
#include "codec.h"
#include "format.h"
#include "strata_log.h"
#include "wal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

/* ---- little-endian helpers (the host is assumed little-endian, checked below) */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "strata's on-disk format assumes a little-endian host");

typedef struct buf { uint8_t *p; size_t n, cap; } buf_t;

static int buf_reserve(buf_t *b, size_t more)
{
    if (b->n + more <= b->cap) return 0;
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->n + more) nc *= 2;
    uint8_t *np = realloc(b->p, nc);
    if (!np) return STRATA_ENOMEM;
    b->p = np;
    b->cap = nc;
    return 0;
}
static int buf_put(buf_t *b, const void *p, size_t n)
{
    if (buf_reserve(b, n)) return STRATA_ENOMEM;
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}
static int put32(buf_t *b, uint32_t v) { return buf_put(b, &v, 4); }
static int put64(buf_t *b, uint64_t v) { return buf_put(b, &v, 8); }

/* Bounds-checked reader over a loaded file. */
typedef struct rd { const uint8_t *p, *end; int bad; } rd_t;
static uint32_t get32(rd_t *r) { uint32_t v = 0; if (r->end - r->p < 4) { r->bad = 1; return 0; } memcpy(&v, r->p, 4); r->p += 4; return v; }
static uint64_t get64(rd_t *r) { uint64_t v = 0; if (r->end - r->p < 8) { r->bad = 1; return 0; } memcpy(&v, r->p, 8); r->p += 8; return v; }
static double getd(rd_t *r) { uint64_t u = get64(r); double d; memcpy(&d, &u, 8); return d; }

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) { if (errno == EINTR) continue; return errno == ENOSPC ? STRATA_ENOSPC : STRATA_EIO; }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all_at(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *d = p;
    while (n) {
        ssize_t r = pread(fd, d, n, (off_t)off);
        if (r < 0) { if (errno == EINTR) continue; return STRATA_EIO; }
        if (r == 0) return STRATA_ECORRUPT;  /* a ref past the end of the file */
        d += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int tsdb_fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return STRATA_EIO;
    int rc = fsync(fd) == 0 ? 0 : STRATA_EIO;
    close(fd);
    return rc;
}

/* ---- rollup records (version 3): compact -------------------------------------- */
/* A series' points are written relative to the previous point: the time as
 * intervals since it, sample times as offsets inside the interval, counts as
 * varints, each double as its XOR with the previous point's (one header byte:
 * zero bytes leading << 4 | zero bytes trailing, then the bytes between), so
 * steady series cost a few bytes a point before zstd instead of 76 or 152. */

static int put_uvarint(buf_t *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) { t[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    t[n++] = (uint8_t)v;
    return buf_put(b, t, n);
}

static uint64_t get_uvarint(rd_t *r)
{
    uint64_t v = 0;
    for (int sh = 0; sh < 70; sh += 7) {
        if (r->p >= r->end) break;
        uint8_t c = *r->p++;
        if (sh == 63 && c > 1) break;
        v |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

static uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static int64_t unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }

static int put_xor(buf_t *b, double v, double prev)
{
    uint64_t x = tsdb_dbits(v) ^ tsdb_dbits(prev);
    if (!x) { uint8_t h = 0x80; return buf_put(b, &h, 1); }
    int lead = 0, trail = 0;
    while (!(x >> (56 - 8 * lead) & 0xff)) lead++;
    while (!(x >> (8 * trail) & 0xff)) trail++;
    uint8_t t[9];
    size_t n = 0;
    t[n++] = (uint8_t)(lead << 4 | trail);
    for (int i = 7 - lead; i >= trail; i--) t[n++] = (uint8_t)(x >> (8 * i));
    return buf_put(b, t, n);
}

static double get_xor(rd_t *r, double prev)
{
    if (r->p >= r->end) { r->bad = 1; return 0; }
    uint8_t h = *r->p++;
    int lead = h >> 4, trail = h & 15;
    if (lead + trail > 8 || (lead == 8 && trail)) { r->bad = 1; return 0; }
    uint64_t x = 0;
    for (int i = 7 - lead; i >= trail; i--) {
        if (r->p >= r->end) { r->bad = 1; return 0; }
        x |= (uint64_t)*r->p++ << (8 * i);
    }
    uint64_t u = tsdb_dbits(prev) ^ x;
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* An in-interval time: 0 for INT64_MAX ("none"), else 1 + its offset. */
static uint64_t enc_opt_time(int64_t v, int64_t base) { return v == INT64_MAX ? 0 : zigzag(v - base) + 1; }
static int64_t dec_opt_time(uint64_t u, int64_t base) { return u ? base + unzigzag(u - 1) : INT64_MAX; }

static int put_rollup_compact(buf_t *b, const tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q,
                              int64_t res, int hold)
{
    int64_t base = p->t - res;  /* the interval is (base, t] */
    int rc = put_uvarint(b, zigzag((p->t - q->t) / res)) | put_uvarint(b, p->count);
    if (hold) rc |= put_uvarint(b, p->stale) | put_uvarint(b, p->stale ? zigzag(p->stale_t - base) : 0);
    if (!p->count) return rc ? STRATA_ENOMEM : 0;
    rc |= put_uvarint(b, zigzag(p->first_t - base)) | put_uvarint(b, zigzag(p->t - p->last_t)) |
          put_xor(b, p->sum, q->sum) | put_xor(b, p->min, q->min) | put_xor(b, p->max, q->max) |
          put_xor(b, p->last, q->last) | put_xor(b, p->first, q->first) |
          put_xor(b, p->increase, q->increase);
    if (hold)
        rc |= put_uvarint(b, zigzag(p->gap_max)) | put_xor(b, p->hold_sum, q->hold_sum) |
              put_xor(b, p->last_rise, q->last_rise) | put_xor(b, p->inner_increase, q->inner_increase) |
              put_uvarint(b, enc_opt_time(p->zero_lead_end, base)) |
              put_uvarint(b, enc_opt_time(p->zero_trail_start, base)) |
              put_uvarint(b, zigzag(p->zero_inner_max)) | put_uvarint(b, zigzag(p->zero_inner_idle));
    return rc ? STRATA_ENOMEM : 0;
}

/* first: q is the zero point (any time may follow); later points ascend. */
static void get_rollup_compact(rd_t *r, tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q,
                               int64_t res, int hold, int first)
{
    memset(p, 0, sizeof *p);
    int64_t k = unzigzag(get_uvarint(r)), lim = INT64_MAX / res / 4;
    if ((!first && k <= 0) || k > lim || k < -lim || (q->t > 0 && k > (INT64_MAX / 2 - q->t) / res)) {
        r->bad = 1;
        return;
    }
    p->t = q->t + k * res;
    int64_t base = p->t - res;
    uint64_t count = get_uvarint(r);
    if (count > UINT32_MAX) { r->bad = 1; return; }
    p->count = (uint32_t)count;
    if (hold) {
        uint64_t stale = get_uvarint(r), st = get_uvarint(r);
        if (stale > UINT32_MAX) { r->bad = 1; return; }
        p->stale = (uint32_t)stale;
        p->stale_t = stale ? base + unzigzag(st) : 0;
    }
    if (!p->count) return;
    p->first_t = base + unzigzag(get_uvarint(r));
    p->last_t = p->t - unzigzag(get_uvarint(r));
    p->sum = get_xor(r, q->sum);
    p->min = get_xor(r, q->min);
    p->max = get_xor(r, q->max);
    p->last = get_xor(r, q->last);
    p->first = get_xor(r, q->first);
    p->increase = get_xor(r, q->increase);
    if (!hold) return;
    p->gap_max = unzigzag(get_uvarint(r));
    p->hold_sum = get_xor(r, q->hold_sum);
    p->last_rise = get_xor(r, q->last_rise);
    p->inner_increase = get_xor(r, q->inner_increase);
    p->zero_lead_end = dec_opt_time(get_uvarint(r), base);
    p->zero_trail_start = dec_opt_time(get_uvarint(r), base);
    p->zero_inner_max = unzigzag(get_uvarint(r));
    p->zero_inner_idle = unzigzag(get_uvarint(r));
}

/* ---- rollups ------------------------------------------------------------------- */

static void rollup_inner_zero_run(tsdb_rollup_point_t *p, int64_t len)
{
    if (len > p->zero_inner_max) p->zero_inner_max = len;
    if (len > TSDB_ROLLUP_IDLE_AFTER) p->zero_inner_idle += len - TSDB_ROLLUP_IDLE_AFTER;
}

/* Adds one non-stale sample to the point of its interval. */
static void rollup_add(tsdb_rollup_point_t *p, int64_t t, double v, int have_prev, double prev)
{
    if (p->count == 0) {
        p->min = p->max = p->first = v;
        p->first_t = t;
        p->zero_lead_end = v != 0 ? t : INT64_MAX;
        p->zero_trail_start = v == 0 ? t : INT64_MAX;
        if (have_prev) p->increase += tsdb_counter_delta(prev, v);
    } else {
        int64_t gap = t - p->last_t;
        if (gap > p->gap_max) p->gap_max = gap;
        p->hold_sum += p->last * (double)gap;
        p->last_rise = tsdb_counter_delta(p->last, v);
        p->increase += p->last_rise;
        p->inner_increase += p->last_rise;
        if (v < p->min) p->min = v;
        if (v > p->max) p->max = v;
        if (v != 0 && p->zero_trail_start != INT64_MAX) {
            /* a run of zeros ends here: the leading one, or one inside */
            if (p->zero_lead_end == INT64_MAX) p->zero_lead_end = t;
            else rollup_inner_zero_run(p, t - p->zero_trail_start);
            p->zero_trail_start = INT64_MAX;
        } else if (v == 0 && p->zero_trail_start == INT64_MAX) {
            p->zero_trail_start = t;
        }
    }
    p->count++;
    p->sum += v;
    p->last = v;
    p->last_t = t;
}

int tsdb_rollups_compute(const tsdb_sample_t *s, size_t n, int64_t res,
                         tsdb_rollup_point_t **out, size_t *nout, size_t *cap)
{
    int have_prev = 0;
    double prev = 0;
    tsdb_rollup_point_t *cur = NULL;
    for (size_t i = 0; i < n; i++) {
        /* interval (t - res, t]: a sample on a multiple of res ends its interval */
        int64_t end = (tsdb_floor_div(s[i].t - 1, res) + 1) * res;
        if (!cur || cur->t != end) {
            if (*nout == *cap) {
                size_t nc = *cap ? *cap * 2 : 16;
                tsdb_rollup_point_t *np = realloc(*out, nc * sizeof *np);
                if (!np) return STRATA_ENOMEM;
                *out = np;
                *cap = nc;
            }
            cur = &(*out)[(*nout)++];
            *cur = (tsdb_rollup_point_t){ .t = end };
        }
        if (tsdb_dbits(s[i].v) == TSDB_STALE_NAN_BITS) {
            cur->stale++;
            cur->stale_t = s[i].t;
            continue;
        }
        rollup_add(cur, s[i].t, s[i].v, have_prev, prev);
        prev = s[i].v;
        have_prev = 1;
    }
    return 0;
}

void tsdb_rollup_join(tsdb_rollup_point_t *p, const tsdb_rollup_point_t *q)
{
    p->stale += q->stale;
    if (q->stale) p->stale_t = q->stale_t;
    if (!q->count) return;
    if (!p->count) {
        uint32_t stale = p->stale;
        int64_t stale_t = p->stale_t;
        *p = *q;
        p->stale = stale;
        p->stale_t = stale_t;
        return;
    }
    int64_t gap = q->first_t - p->last_t;
    if (gap > p->gap_max) p->gap_max = gap;
    if (q->gap_max > p->gap_max) p->gap_max = q->gap_max;
    p->hold_sum += p->last * (double)gap + q->hold_sum;
    p->last_rise = q->count > 1 ? q->last_rise : tsdb_counter_delta(p->last, q->last);
    p->inner_increase += tsdb_counter_delta(p->last, q->first) + q->inner_increase;
    /* runs of zeros that cross the join */
    int p_all_zero = p->zero_lead_end == INT64_MAX, q_all_zero = q->zero_lead_end == INT64_MAX;
    if (q->zero_inner_max > p->zero_inner_max) p->zero_inner_max = q->zero_inner_max;
    p->zero_inner_idle += q->zero_inner_idle;
    if (p_all_zero) {
        p->zero_lead_end = q->zero_lead_end;
        p->zero_trail_start = q_all_zero ? p->first_t : q->zero_trail_start;
    } else {
        /* the run of zeros at the join: p's trailing one, or one q starts with */
        int64_t run = p->zero_trail_start != INT64_MAX ? p->zero_trail_start
                    : q->first == 0 ? q->first_t : INT64_MAX;
        if (run != INT64_MAX && !q_all_zero) rollup_inner_zero_run(p, q->zero_lead_end - run);
        p->zero_trail_start = q_all_zero ? run : q->zero_trail_start;
    }
    p->count += q->count;
    p->sum += q->sum;
    if (q->min < p->min) p->min = q->min;
    if (q->max > p->max) p->max = q->max;
    p->last = q->last;
    p->last_t = q->last_t;
    p->increase += q->increase;
}


/* ---- page files -------------------------------------------------------------- */

typedef struct pagew {
    int fd;
    uint64_t off;        /* where the next page goes */
    buf_t raw;
    uint8_t *comp;
    size_t comp_cap;
    ZSTD_CCtx *cctx;
} pagew_t;

static int pagew_open(pagew_t *pw, const char *path)
{
    memset(pw, 0, sizeof *pw);
    pw->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (pw->fd < 0) return STRATA_EIO;
    pw->cctx = ZSTD_createCCtx();
    if (!pw->cctx) return STRATA_ENOMEM;
    uint32_t hdr[2] = { TSDB_PAGE_MAGIC, TSDB_BLOCK_VERSION };
    pw->off = sizeof hdr;
    return write_all(pw->fd, hdr, sizeof hdr);
}

static int pagew_flush(pagew_t *pw)
{
    if (!pw->raw.n) return 0;
    size_t bound = ZSTD_compressBound(pw->raw.n);
    if (bound > pw->comp_cap) {
        uint8_t *nc = realloc(pw->comp, bound);
        if (!nc) return STRATA_ENOMEM;
        pw->comp = nc;
        pw->comp_cap = bound;
    }
    size_t cl = ZSTD_compressCCtx(pw->cctx, pw->comp, bound, pw->raw.p, pw->raw.n, 3);
    if (ZSTD_isError(cl)) return STRATA_EIO;
    uint32_t hdr[3] = { (uint32_t)pw->raw.n, (uint32_t)cl, tsdb_crc32c(0, pw->comp, cl) };
    int rc = write_all(pw->fd, hdr, sizeof hdr);
    if (!rc) rc = write_all(pw->fd, pw->comp, cl);
    if (rc) return rc;
    pw->off += sizeof hdr + cl;
    pw->raw.n = 0;
    return 0;
}

/* Adds a record; its address is (*page, *off). */
static int pagew_add(pagew_t *pw, const void *p, size_t n, uint64_t *page, uint32_t *off)
{
    int rc;
    if (pw->raw.n && pw->raw.n + n > TSDB_PAGE_TARGET_BYTES && (rc = pagew_flush(pw))) return rc;
    *page = pw->off;
    *off = (uint32_t)pw->raw.n;
    return buf_put(&pw->raw, p, n);
}

static int pagew_close(pagew_t *pw, int keep)
{
    int rc = 0;
    if (keep) {
        rc = pagew_flush(pw);
        if (!rc && fsync(pw->fd) != 0) rc = STRATA_EIO;
    }
    if (pw->fd >= 0) close(pw->fd);
    free(pw->raw.p);
    free(pw->comp);
    ZSTD_freeCCtx(pw->cctx);
    memset(pw, 0, sizeof *pw);
    pw->fd = -1;
    return rc;
}

/* ---- the shared page cache ------------------------------------------------------- */

#define SHARED_MAX_BYTES ((size_t)64 << 20)
#define SHARED_NBUCKETS 4096

/* One decompressed page.  refs: 1 while it is in the cache, +1 per reader
 * whose tsdb_page_cache_t points at it, so eviction never frees a page a
 * reader is still decoding from (the last unpin does). */
typedef struct spage {
    struct spage *hnext, *prev, *next;  /* hash chain; LRU list, most recent first */
    const tsdb_block_t *blk;
    uint64_t page;
    int file, refs;
    size_t len;
    uint8_t data[];
} spage_t;

static pthread_mutex_t shared_mu = PTHREAD_MUTEX_INITIALIZER;
static spage_t *shared_bucket[SHARED_NBUCKETS];
static spage_t *shared_head, *shared_tail;
static size_t shared_bytes;

size_t tsdb_page_cache_bytes(void)
{
    pthread_mutex_lock(&shared_mu);
    size_t n = shared_bytes;
    pthread_mutex_unlock(&shared_mu);
    return n;
}

static size_t shared_slot(const tsdb_block_t *b, int file, uint64_t page)
{
    uint64_t h = ((uint64_t)(uintptr_t)b * UINT64_C(0x9E3779B97F4A7C15)) ^ (page * 2 + (uint64_t)file);
    h ^= h >> 29;
    h *= UINT64_C(0xBF58476D1CE4E5B9);
    return (size_t)(h >> 32) % SHARED_NBUCKETS;
}

static void shared_unlink_lru(spage_t *e)
{
    if (e->prev) e->prev->next = e->next; else shared_head = e->next;
    if (e->next) e->next->prev = e->prev; else shared_tail = e->prev;
    e->prev = e->next = NULL;
}

static void shared_push_front(spage_t *e)
{
    e->next = shared_head;
    e->prev = NULL;
    if (shared_head) shared_head->prev = e; else shared_tail = e;
    shared_head = e;
}

static spage_t *shared_find(const tsdb_block_t *b, int file, uint64_t page)
{
    spage_t *e = shared_bucket[shared_slot(b, file, page)];
    while (e && !(e->blk == b && e->file == file && e->page == page)) e = e->hnext;
    return e;
}

/* Takes e out of the cache (caller holds shared_mu); freed now unless pinned. */
static void shared_remove(spage_t *e)
{
    spage_t **pp = &shared_bucket[shared_slot(e->blk, e->file, e->page)];
    while (*pp != e) pp = &(*pp)->hnext;
    *pp = e->hnext;
    shared_unlink_lru(e);
    shared_bytes -= sizeof *e + e->len;
    if (--e->refs == 0) free(e);
}

/* Drops pc's pin on a shared page. */
static void shared_unpin(tsdb_page_cache_t *pc)
{
    spage_t *e = pc->pin;
    if (!e) return;
    pc->pin = NULL;
    pc->data = NULL;
    pthread_mutex_lock(&shared_mu);
    int last = --e->refs == 0;
    pthread_mutex_unlock(&shared_mu);
    if (last) free(e);
}

/* The cached page, pinned, or NULL. */
static spage_t *shared_get(const tsdb_block_t *b, int file, uint64_t page)
{
    pthread_mutex_lock(&shared_mu);
    spage_t *e = shared_find(b, file, page);
    if (e) {
        e->refs++;
        shared_unlink_lru(e);
        shared_push_front(e);
    }
    pthread_mutex_unlock(&shared_mu);
    return e;
}

/* Inserts n (a verified page, refs 0) and returns it pinned; when another
 * reader inserted the same page meanwhile, frees n and returns that one. */
static spage_t *shared_insert(spage_t *n)
{
    pthread_mutex_lock(&shared_mu);
    spage_t *e = shared_find(n->blk, n->file, n->page);
    if (e) {
        e->refs++;
        pthread_mutex_unlock(&shared_mu);
        free(n);
        return e;
    }
    size_t slot = shared_slot(n->blk, n->file, n->page);
    n->hnext = shared_bucket[slot];
    shared_bucket[slot] = n;
    shared_push_front(n);
    n->refs = 2;  /* the cache's and the caller's */
    shared_bytes += sizeof *n + n->len;
    while (shared_bytes > SHARED_MAX_BYTES && shared_tail != n) shared_remove(shared_tail);
    pthread_mutex_unlock(&shared_mu);
    return n;
}

/* Drops b's pages: after close its address may be reused by another block. */
static void shared_drop_block(const tsdb_block_t *b)
{
    pthread_mutex_lock(&shared_mu);
    for (spage_t *e = shared_head, *nx; e; e = nx) {
        nx = e->next;
        if (e->blk == b) shared_remove(e);
    }
    pthread_mutex_unlock(&shared_mu);
}

void tsdb_page_cache_free(tsdb_page_cache_t *pc)
{
    shared_unpin(pc);
    free(pc->buf);
    for (int i = 0; i < TSDB_STREAM_PAGES; i++) free(pc->ring[i].buf);
    memset(pc, 0, sizeof *pc);
}

/* Stream mode: the ring slot holding (b, file, page), or -1. */
static int ring_find(const tsdb_page_cache_t *pc, const tsdb_block_t *b, int file, uint64_t page)
{
    for (int i = 0; i < TSDB_STREAM_PAGES; i++)
        if (pc->ring[i].buf && pc->ring[i].blk == b && pc->ring[i].file == file && pc->ring[i].page == page)
            return i;
    return -1;
}

/* Returns the record at (page, off, len) of file 0 (chunks), 1 (rollups: 5m,
 * and 1h in version 1 blocks) or 2 (rollups1h). */
static int page_read(const tsdb_block_t *b, int file, uint64_t page, uint32_t off, uint32_t len,
                     tsdb_page_cache_t *pc, const uint8_t **out)
{
    if (!(pc->blk == b && pc->file == file && pc->page == page && pc->data)) {
        pc->blk = NULL;
        shared_unpin(pc);
        int slot = pc->stream ? ring_find(pc, b, file, page) : -1;
        spage_t *e = slot < 0 ? shared_get(b, file, page) : NULL;
        if (slot >= 0) {
            pc->data = pc->ring[slot].buf;
            pc->len = pc->ring[slot].len;
        } else if (!e) {
            int fd = file == 2 ? b->fd_rollups1h : file ? b->fd_rollups : b->fd_chunks;
            uint32_t hdr[3];
            int rc = read_all_at(fd, hdr, sizeof hdr, page);
            if (rc) return rc;
            if (hdr[0] > TSDB_PAGE_MAX_RAW || hdr[1] > ZSTD_compressBound(TSDB_PAGE_MAX_RAW))
                return STRATA_ECORRUPT;
            uint8_t *comp = malloc(hdr[1] ? hdr[1] : 1), *dst = NULL;
            if (!comp) return STRATA_ENOMEM;
            rc = read_all_at(fd, comp, hdr[1], page + sizeof hdr);
            if (!rc && tsdb_crc32c(0, comp, hdr[1]) != hdr[2]) rc = STRATA_ECORRUPT;
            /* pages too big to share (never written by this code) use pc->buf */
            int share = !pc->stream && sizeof(spage_t) + hdr[0] <= SHARED_MAX_BYTES / 4;
            spage_t *n = NULL;
            if (!rc && share) {
                n = malloc(sizeof *n + hdr[0]);
                if (!n) rc = STRATA_ENOMEM;
                else {
                    *n = (spage_t){ .blk = b, .page = page, .file = file, .len = hdr[0] };
                    dst = n->data;
                }
            } else if (!rc && pc->stream) {
                struct tsdb_stream_page *r = &pc->ring[pc->ring_next];
                if (hdr[0] > r->cap) {
                    uint8_t *nb = realloc(r->buf, hdr[0] ? hdr[0] : 1);
                    if (!nb) rc = STRATA_ENOMEM;
                    else { r->buf = nb; r->cap = hdr[0]; }
                }
                if (!rc) {
                    slot = (int)pc->ring_next;
                    pc->ring_next = (pc->ring_next + 1) % TSDB_STREAM_PAGES;
                    r->blk = NULL;  /* valid once decompressed */
                    dst = r->buf;
                }
            } else if (!rc) {
                if (hdr[0] > pc->cap) {
                    uint8_t *nb = realloc(pc->buf, hdr[0] ? hdr[0] : 1);
                    if (!nb) rc = STRATA_ENOMEM;
                    else { pc->buf = nb; pc->cap = hdr[0]; }
                }
                dst = pc->buf;
            }
            if (!rc) {
                size_t d = ZSTD_decompress(dst, hdr[0], comp, hdr[1]);
                if (ZSTD_isError(d) || d != hdr[0]) rc = STRATA_ECORRUPT;
            }
            free(comp);
            if (rc) { free(n); return rc; }
            if (n) e = shared_insert(n);
            else if (slot >= 0) {
                pc->ring[slot] = (struct tsdb_stream_page){ b, file, page, pc->ring[slot].buf, hdr[0],
                                                            pc->ring[slot].cap };
                pc->data = pc->ring[slot].buf;
                pc->len = hdr[0];
            } else { pc->data = pc->buf; pc->len = hdr[0]; }
        }
        if (e) {
            pc->pin = e;
            pc->data = e->data;
            pc->len = e->len;
        }
        pc->blk = b;
        pc->file = file;
        pc->page = page;
    }
    if ((uint64_t)off + len > pc->len) return STRATA_ECORRUPT;
    *out = pc->data + off;
    return 0;
}

/* ---- writer ------------------------------------------------------------------- */

struct wseries {
    const tsdb_label_t *labels;
    uint32_t nlabels, nchunks;
    size_t chunk0;                 /* index into w->chunks */
    uint64_t r5_page, r1_page;
    uint32_t r5_off, r5_n, r1_off, r1_n;
};

struct tsdb_block_writer {
    char *tmp, *final;
    char id[40];
    uint32_t level;
    pagew_t chunks, rollups, rollups1h;
    struct wseries *series;
    size_t nseries, series_cap;
    tsdb_block_chunk_t *cm;
    size_t ncm, cm_cap;
    strata_arena_t *arena;
    uint8_t *enc;
    size_t enc_cap;
    tsdb_rollup_point_t *rp;
    size_t rp_cap;
    buf_t rbuf;
    int64_t mint, maxt;
    uint64_t nsamples;
};

static atomic_uint block_seq;

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", a, b);
    return p;
}

void tsdb_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = path_join(path, e->d_name);
            if (p) { unlink(p); free(p); }
        }
        closedir(d);
    }
    rmdir(path);
}

void tsdb_block_writer_abort(tsdb_block_writer_t *w)
{
    if (!w) return;
    pagew_close(&w->chunks, 0);
    pagew_close(&w->rollups, 0);
    pagew_close(&w->rollups1h, 0);
    if (w->tmp) tsdb_rm_tree(w->tmp);
    free(w->tmp);
    free(w->final);
    free(w->series);
    free(w->cm);
    free(w->enc);
    free(w->rp);
    free(w->rbuf.p);
    strata_arena_free(w->arena);
    free(w);
}

int tsdb_block_writer_new(const char *blocks_dir, uint32_t level, tsdb_block_writer_t **out)
{
    tsdb_block_writer_t *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->chunks.fd = w->rollups.fd = w->rollups1h.fd = -1;
    w->level = level;
    w->mint = INT64_MAX;
    w->maxt = INT64_MIN;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    snprintf(w->id, sizeof w->id, "%016" PRIx64 "%08x", ms,
             (unsigned)(atomic_fetch_add(&block_seq, 1) + ((unsigned)getpid() << 16)));
    char tmpname[64];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", w->id);
    w->tmp = path_join(blocks_dir, tmpname);
    w->final = path_join(blocks_dir, w->id);
    w->arena = strata_arena_new(64 * 1024);
    if (!w->tmp || !w->final || !w->arena) { tsdb_block_writer_abort(w); return STRATA_ENOMEM; }
    if (mkdir(w->tmp, 0755) != 0) {
        strata_error("cannot create block dir", "path=%s errno=%d", w->tmp, errno);
        free(w->tmp); w->tmp = NULL;
        tsdb_block_writer_abort(w);
        return STRATA_EIO;
    }
    char *pc = path_join(w->tmp, "chunks"), *pr = path_join(w->tmp, "rollups");
    char *ph = path_join(w->tmp, "rollups1h");
    int rc = (!pc || !pr || !ph) ? STRATA_ENOMEM : pagew_open(&w->chunks, pc);
    if (!rc) rc = pagew_open(&w->rollups, pr);
    if (!rc) rc = pagew_open(&w->rollups1h, ph);
    free(pc);
    free(pr);
    free(ph);
    if (rc) { tsdb_block_writer_abort(w); return rc; }
    *out = w;
    return 0;
}

static int add_rollups(tsdb_block_writer_t *w, pagew_t *pw, const tsdb_sample_t *s, size_t n, int64_t res,
                       uint64_t *page, uint32_t *off, uint32_t *np)
{
    size_t cnt = 0;
    int rc = tsdb_rollups_compute(s, n, res, &w->rp, &cnt, &w->rp_cap);
    if (rc) return rc;
    w->rbuf.n = 0;
    /* u32 length, then the points, each against the one before (the first
     * against a zero point at time 0) */
    if ((rc = put32(&w->rbuf, 0))) return rc;
    tsdb_rollup_point_t zero = { 0 };
    for (size_t i = 0; i < cnt; i++)
        if ((rc = put_rollup_compact(&w->rbuf, &w->rp[i], i ? &w->rp[i - 1] : &zero, res,
                                     res == TSDB_ROLLUP_1H)))
            return rc;
    if (w->rbuf.n - 4 > UINT32_MAX) return STRATA_ELIMIT;
    uint32_t len = (uint32_t)(w->rbuf.n - 4);
    memcpy(w->rbuf.p, &len, 4);
    *np = (uint32_t)cnt;
    *page = 0;
    *off = 0;
    return cnt ? pagew_add(pw, w->rbuf.p, w->rbuf.n, page, off) : 0;
}

int tsdb_block_writer_add(tsdb_block_writer_t *w, const tsdb_label_t *labels, size_t nlabels,
                          const tsdb_sample_t *s, size_t n)
{
    if (!n) return 0;
    if (w->nseries == w->series_cap) {
        size_t nc = w->series_cap ? w->series_cap * 2 : 256;
        struct wseries *ns = realloc(w->series, nc * sizeof *ns);
        if (!ns) return STRATA_ENOMEM;
        w->series = ns;
        w->series_cap = nc;
    }
    tsdb_label_t *lc = strata_arena_alloc(w->arena, nlabels * sizeof *lc + 1);
    if (!lc) return STRATA_ENOMEM;
    memcpy(lc, labels, nlabels * sizeof *lc);
    struct wseries *ws = &w->series[w->nseries];
    memset(ws, 0, sizeof *ws);
    ws->labels = lc;
    ws->nlabels = (uint32_t)nlabels;
    ws->chunk0 = w->ncm;
    int rc;
    for (size_t i = 0; i < n; i += TSDB_BLOCK_CHUNK_SAMPLES) {
        size_t k = n - i < TSDB_BLOCK_CHUNK_SAMPLES ? n - i : TSDB_BLOCK_CHUNK_SAMPLES;
        size_t need = tsdb_chunk_max_size(k), written = 0;
        if (need > w->enc_cap) {
            uint8_t *ne = realloc(w->enc, need);
            if (!ne) return STRATA_ENOMEM;
            w->enc = ne;
            w->enc_cap = need;
        }
        if ((rc = tsdb_chunk_encode(s + i, k, w->enc, w->enc_cap, &written))) return rc;
        if (w->ncm == w->cm_cap) {
            size_t nc = w->cm_cap ? w->cm_cap * 2 : 256;
            tsdb_block_chunk_t *nm = realloc(w->cm, nc * sizeof *nm);
            if (!nm) return STRATA_ENOMEM;
            w->cm = nm;
            w->cm_cap = nc;
        }
        tsdb_block_chunk_t *c = &w->cm[w->ncm];
        c->mint = s[i].t;
        c->maxt = s[i + k - 1].t;
        c->len = (uint32_t)written;
        c->count = (uint32_t)k;
        if ((rc = pagew_add(&w->chunks, w->enc, written, &c->page, &c->off))) return rc;
        w->ncm++;
        ws->nchunks++;
    }
    /* 1h points in their own file: a wide read then decompresses no 5m pages */
    if ((rc = add_rollups(w, &w->rollups, s, n, TSDB_ROLLUP_5M, &ws->r5_page, &ws->r5_off, &ws->r5_n))) return rc;
    if ((rc = add_rollups(w, &w->rollups1h, s, n, TSDB_ROLLUP_1H, &ws->r1_page, &ws->r1_off, &ws->r1_n))) return rc;
    if (s[0].t < w->mint) w->mint = s[0].t;
    if (s[n - 1].t > w->maxt) w->maxt = s[n - 1].t;
    w->nsamples += n;
    w->nseries++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static uint32_t sym_id(const char **syms, uint32_t n, const char *s)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(syms[mid], s);
        if (c == 0) return mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return UINT32_MAX;  /* unreachable: every label string was added */
}

struct triple { uint32_t name, value, series; };
static int cmp_triple(const void *a, const void *b)
{
    const struct triple *x = a, *y = b;
    if (x->name != y->name) return x->name < y->name ? -1 : 1;
    if (x->value != y->value) return x->value < y->value ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = path_join(dir, name);
    if (!path) return STRATA_ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    free(path);
    if (fd < 0) return STRATA_EIO;
    int rc = write_all(fd, p, n);
    if (!rc && fsync(fd) != 0) rc = STRATA_EIO;
    close(fd);
    return rc;
}

/* Pointer -> symbol id.  Label strings come from interned tables (the head's
 * symbols, a block's symbols), so the same string is nearly always the same
 * pointer: deduplicating by address first leaves only the few distinct
 * strings to sort with strcmp, instead of every label of every series. */
typedef struct ptrmap { const char **keys; uint32_t *ids; size_t slots, n; } ptrmap_t;

static size_t ptr_slot(const ptrmap_t *m, const char *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL;
    size_t mask = m->slots - 1, i = (size_t)(h >> 20) & mask;
    while (m->keys[i] && m->keys[i] != p) i = (i + 1) & mask;
    return i;
}

static int ptrmap_add(ptrmap_t *m, const char *p)
{
    if ((m->n + 1) * 2 > m->slots) {
        ptrmap_t nm = { NULL, NULL, m->slots ? m->slots * 2 : 1024, 0 };
        nm.keys = calloc(nm.slots, sizeof *nm.keys);
        nm.ids = calloc(nm.slots, sizeof *nm.ids);
        if (!nm.keys || !nm.ids) { free(nm.keys); free(nm.ids); return STRATA_ENOMEM; }
        for (size_t i = 0; i < m->slots; i++)
            if (m->keys[i]) { nm.keys[ptr_slot(&nm, m->keys[i])] = m->keys[i]; nm.n++; }
        free(m->keys);
        free(m->ids);
        *m = nm;
    }
    size_t i = ptr_slot(m, p);
    if (!m->keys[i]) { m->keys[i] = p; m->n++; }
    return 0;
}

static int build_index(tsdb_block_writer_t *w, buf_t *ix)
{
    size_t nl = 0;
    for (size_t i = 0; i < w->nseries; i++) nl += w->series[i].nlabels;
    ptrmap_t pm = { 0 };
    int rc = 0;
    for (size_t i = 0; !rc && i < w->nseries; i++)
        for (uint32_t j = 0; !rc && j < w->series[i].nlabels; j++) {
            rc = ptrmap_add(&pm, w->series[i].labels[j].name);
            if (!rc) rc = ptrmap_add(&pm, w->series[i].labels[j].value);
        }
    const char **strs = rc ? NULL : malloc((pm.n + 1) * sizeof *strs);
    struct triple *tr = rc ? NULL : malloc((nl + 1) * sizeof *tr);
    if (!rc && (!strs || !tr)) rc = STRATA_ENOMEM;
    uint32_t nsyms = 0;
    if (!rc) {
        size_t k = 0;
        for (size_t i = 0; i < pm.slots; i++) if (pm.keys[i]) strs[k++] = pm.keys[i];
        qsort(strs, k, sizeof *strs, cmp_str);
        for (size_t i = 0; i < k; i++)
            if (!nsyms || strcmp(strs[nsyms - 1], strs[i]) != 0) strs[nsyms++] = strs[i];
        for (size_t i = 0; i < pm.slots; i++)
            if (pm.keys[i]) pm.ids[i] = sym_id(strs, nsyms, pm.keys[i]);
        rc |= put32(ix, TSDB_INDEX_MAGIC) | put32(ix, TSDB_BLOCK_VERSION) | put32(ix, nsyms);
        for (uint32_t i = 0; i < nsyms; i++) {
            size_t l = strlen(strs[i]);
            rc |= put32(ix, (uint32_t)l) | buf_put(ix, strs[i], l + 1);
        }
        rc |= put32(ix, (uint32_t)w->nseries);
        size_t t = 0;
        for (size_t i = 0; i < w->nseries; i++) {
            const struct wseries *s = &w->series[i];
            rc |= put32(ix, s->nlabels);
            for (uint32_t j = 0; j < s->nlabels; j++) {
                uint32_t n = pm.ids[ptr_slot(&pm, s->labels[j].name)];
                uint32_t v = pm.ids[ptr_slot(&pm, s->labels[j].value)];
                rc |= put32(ix, n) | put32(ix, v);
                tr[t++] = (struct triple){ n, v, (uint32_t)i };
            }
            rc |= put32(ix, s->nchunks);
            for (uint32_t c = 0; c < s->nchunks; c++) {
                const tsdb_block_chunk_t *m = &w->cm[s->chunk0 + c];
                rc |= put64(ix, (uint64_t)m->mint) | put64(ix, (uint64_t)m->maxt) |
                      put64(ix, m->page) | put32(ix, m->off) | put32(ix, m->len) | put32(ix, m->count);
            }
            rc |= put64(ix, s->r5_page) | put32(ix, s->r5_off) | put32(ix, s->r5_n) |
                  put64(ix, s->r1_page) | put32(ix, s->r1_off) | put32(ix, s->r1_n);
        }
        /* postings: by (name, value), series ascending within each */
        qsort(tr, t, sizeof *tr, cmp_triple);
        uint32_t np = 0;
        for (size_t i = 0; i < t; i++) np += (i == 0 || tr[i].name != tr[i - 1].name || tr[i].value != tr[i - 1].value);
        rc |= put32(ix, np);
        for (size_t i = 0; i < t;) {
            size_t j = i;
            while (j < t && tr[j].name == tr[i].name && tr[j].value == tr[i].value) j++;
            rc |= put32(ix, tr[i].name) | put32(ix, tr[i].value) | put32(ix, (uint32_t)(j - i));
            for (size_t k2 = i; k2 < j; k2++) rc |= put32(ix, tr[k2].series);
            i = j;
        }
        rc |= put32(ix, tsdb_crc32c(0, ix->p, ix->n));
        if (rc) rc = STRATA_ENOMEM;
    }
    free(pm.keys);
    free(pm.ids);
    free(strs);
    free(tr);
    return rc;
}

int tsdb_block_writer_finish(tsdb_block_writer_t *w, char id_out[40])
{
    if (!w->nseries) { tsdb_block_writer_abort(w); return STRATA_ENOTFOUND; }
    buf_t ix = { 0 }, meta = { 0 };
    int rc = pagew_close(&w->chunks, 1);
    if (!rc) rc = pagew_close(&w->rollups, 1);
    if (!rc) rc = pagew_close(&w->rollups1h, 1);
    if (!rc) rc = build_index(w, &ix);
    if (!rc) rc = write_file(w->tmp, "index", ix.p, ix.n);
    if (!rc) {
        rc = put32(&meta, TSDB_META_MAGIC) | put32(&meta, TSDB_BLOCK_VERSION) |
             put64(&meta, (uint64_t)w->mint) | put64(&meta, (uint64_t)w->maxt) |
             put64(&meta, w->nseries) | put64(&meta, w->nsamples) | put64(&meta, w->ncm) |
             put32(&meta, w->level);
        if (!rc) rc = put32(&meta, tsdb_crc32c(0, meta.p, meta.n));
        if (rc) rc = STRATA_ENOMEM;
    }
    if (!rc) rc = write_file(w->tmp, "meta", meta.p, meta.n);
    if (!rc) rc = tsdb_fsync_dir(w->tmp);
    if (!rc && rename(w->tmp, w->final) != 0) rc = STRATA_EIO;
    if (!rc) {
        char *parent = strdup(w->final), *slash = parent ? strrchr(parent, '/') : NULL;
        if (slash) { *slash = 0; rc = tsdb_fsync_dir(parent); }
        free(parent);
        memcpy(id_out, w->id, sizeof w->id);
        free(w->tmp);
        w->tmp = NULL;  /* nothing to remove any more */
    } else {
        strata_error("block write failed", "path=%s err=\"%s\"", w->tmp, strata_strerror(rc));
    }
    free(ix.p);
    free(meta.p);
    tsdb_block_writer_abort(w);
    return rc;
}

/* ---- reader ------------------------------------------------------------------------ */

static int read_file(const char *path, uint8_t **out, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? STRATA_ECORRUPT : STRATA_EIO;
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : STRATA_EIO;
    uint8_t *p = NULL;
    if (!rc && !(p = malloc((size_t)st.st_size + 1))) rc = STRATA_ENOMEM;
    if (!rc) rc = read_all_at(fd, p, (size_t)st.st_size, 0);
    close(fd);
    if (rc) { free(p); return rc; }
    *out = p;
    *n = (size_t)st.st_size;
    return 0;
}

static void free_mem(tsdb_block_t *b);

void tsdb_block_close(tsdb_block_t *b)
{
    if (!b) return;
    shared_drop_block(b);
    free_mem(b);
    if (b->fd_chunks >= 0) close(b->fd_chunks);
    if (b->fd_rollups >= 0) close(b->fd_rollups);
    if (b->fd_rollups1h >= 0) close(b->fd_rollups1h);
    free(b->syms);
    free(b->series);
    free(b->postings);
    free(b->mem);
    free(b->path);
    free(b);
}

static int parse_index(tsdb_block_t *b, uint8_t *p, size_t n)
{
    if (n < 16) return STRATA_ECORRUPT;
    uint32_t crc;
    memcpy(&crc, p + n - 4, 4);
    if (tsdb_crc32c(0, p, n - 4) != crc) return STRATA_ECORRUPT;
    rd_t r = { p, p + n - 4, 0 };
    if (get32(&r) != TSDB_INDEX_MAGIC) return STRATA_ECORRUPT;
    uint32_t version = get32(&r);
    if (version != b->version) return version < 1 || version > TSDB_BLOCK_VERSION ? STRATA_EVERSION : STRATA_ECORRUPT;
    uint32_t nsyms = get32(&r);
    if (r.bad || nsyms > (size_t)(r.end - r.p) / 5) return STRATA_ECORRUPT;
    b->syms = malloc(((size_t)nsyms + 1) * sizeof *b->syms);
    if (!b->syms) return STRATA_ENOMEM;
    b->nsyms = nsyms;
    for (uint32_t i = 0; i < nsyms; i++) {
        uint32_t l = get32(&r);
        if (r.bad || (size_t)(r.end - r.p) < (size_t)l + 1 || r.p[l] != 0) return STRATA_ECORRUPT;
        b->syms[i] = (const char *)r.p;
        r.p += l + 1;
    }
    uint32_t ns = get32(&r);
    if (r.bad || ns > (size_t)(r.end - r.p) / 40) return STRATA_ECORRUPT;
    /* Labels, chunk metas and postings are copied into aligned arrays sized by
     * a first pass, so the rest of the engine reads plain structs. */
    const uint8_t *series_start = r.p;
    size_t nlab = 0, nch = 0;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t nl = get32(&r);
        if (r.bad || nl > (size_t)(r.end - r.p) / 8) return STRATA_ECORRUPT;
        r.p += (size_t)nl * 8;
        nlab += nl;
        uint32_t nc = get32(&r);
        if (r.bad || nc > (size_t)(r.end - r.p) / 36) return STRATA_ECORRUPT;
        r.p += (size_t)nc * 36;
        nch += nc;
        if ((size_t)(r.end - r.p) < 32) return STRATA_ECORRUPT;  /* rollup refs */
        r.p += 32;
    }
    uint32_t npost = get32(&r);
    if (r.bad || npost > (size_t)(r.end - r.p) / 12) return STRATA_ECORRUPT;
    size_t nids = ((size_t)(r.end - r.p) - (size_t)npost * 12) / 4;
    uint32_t *lab = malloc((nlab * 2 + nids + 1) * sizeof *lab);
    tsdb_block_chunk_t *ch = malloc((nch + 1) * sizeof *ch);
    b->series = malloc(((size_t)ns + 1) * sizeof *b->series);
    b->postings = malloc(((size_t)npost + 1) * sizeof *b->postings);
    if (!lab || !ch || !b->series || !b->postings) { free(lab); free(ch); return STRATA_ENOMEM; }
    /* the arrays are freed with the block: keep them in one allocation list */
    void **keep = malloc(3 * sizeof *keep);
    if (!keep) { free(lab); free(ch); return STRATA_ENOMEM; }
    keep[0] = p; keep[1] = lab; keep[2] = ch;
    b->mem = keep;
    r.p = series_start;
    size_t li = 0, ci = 0;
    for (uint32_t i = 0; i < ns; i++) {
        tsdb_block_series_t *s = &b->series[i];
        s->nlabels = get32(&r);
        s->labels = lab + li;
        for (uint32_t j = 0; j < 2 * s->nlabels; j++) {
            uint32_t id = get32(&r);
            if (id >= nsyms) return STRATA_ECORRUPT;
            lab[li++] = id;
        }
        s->nchunks = get32(&r);
        s->chunks = ch + ci;
        for (uint32_t c = 0; c < s->nchunks; c++, ci++) {
            ch[ci].mint = (int64_t)get64(&r);
            ch[ci].maxt = (int64_t)get64(&r);
            ch[ci].page = get64(&r);
            ch[ci].off = get32(&r);
            ch[ci].len = get32(&r);
            ch[ci].count = get32(&r);
            if (ch[ci].count == 0 || ch[ci].count > TSDB_CHUNK_MAX_SAMPLES) return STRATA_ECORRUPT;
        }
        s->r5_page = get64(&r); s->r5_off = get32(&r); s->r5_n = get32(&r);
        s->r1_page = get64(&r); s->r1_off = get32(&r); s->r1_n = get32(&r);
    }
    get32(&r);  /* npostings, read above */
    uint32_t *ids = lab + li;
    size_t idi = 0;
    for (uint32_t i = 0; i < npost; i++) {
        struct tsdb_bpost *pp = &b->postings[i];
        pp->name = get32(&r);
        pp->value = get32(&r);
        pp->n = get32(&r);
        if (r.bad || pp->name >= nsyms || pp->value >= nsyms || pp->n > nids - idi) return STRATA_ECORRUPT;
        pp->ids = ids + idi;
        for (uint32_t k = 0; k < pp->n; k++) {
            uint32_t id = get32(&r);
            if (id >= ns) return STRATA_ECORRUPT;
            ids[idi++] = id;
        }
    }
    if (r.bad || r.p != r.end) return STRATA_ECORRUPT;
    /* The symbols move out of the raw index, which is then freed: the arrays
     * above hold everything else, and keeping the raw bytes doubled a block's
     * memory (30 days of 19,634 series in 120 blocks: 1.28 GiB resident). */
    size_t symbytes = 0;
    for (uint32_t i = 0; i < nsyms; i++) symbytes += strlen(b->syms[i]) + 1;
    char *packed = malloc(symbytes ? symbytes : 1);
    if (!packed) return STRATA_ENOMEM;
    size_t o = 0;
    for (uint32_t i = 0; i < nsyms; i++) {
        size_t l = strlen(b->syms[i]) + 1;
        memcpy(packed + o, b->syms[i], l);
        b->syms[i] = packed + o;
        o += l;
    }
    keep[0] = packed;  /* the caller frees p */
    b->nseries = ns;
    b->npostings = npost;
    return 0;
}

static void free_mem(tsdb_block_t *b)
{
    if (!b->mem) return;
    void **keep = b->mem;
    free(keep[0]); free(keep[1]); free(keep[2]);
}

int tsdb_block_open(const char *blocks_dir, const char *id, tsdb_block_t **out)
{
    tsdb_block_t *b = calloc(1, sizeof *b);
    if (!b) return STRATA_ENOMEM;
    b->fd_chunks = b->fd_rollups = b->fd_rollups1h = -1;
    snprintf(b->id, sizeof b->id, "%s", id);
    b->path = path_join(blocks_dir, id);
    if (!b->path) { tsdb_block_close(b); return STRATA_ENOMEM; }
    char *mp = path_join(b->path, "meta"), *ip = path_join(b->path, "index");
    char *cp = path_join(b->path, "chunks"), *rp = path_join(b->path, "rollups");
    char *hp = path_join(b->path, "rollups1h");
    uint8_t *meta = NULL, *index = NULL;
    size_t mlen = 0, ilen = 0;
    int rc = (!mp || !ip || !cp || !rp || !hp) ? STRATA_ENOMEM : read_file(mp, &meta, &mlen);
    if (!rc) {
        rd_t r = { meta, meta + mlen, 0 };
        uint32_t crc = 0;
        if (mlen != TSDB_META_SIZE) rc = STRATA_ECORRUPT;
        else {
            memcpy(&crc, meta + mlen - 4, 4);
            if (tsdb_crc32c(0, meta, mlen - 4) != crc || get32(&r) != TSDB_META_MAGIC) rc = STRATA_ECORRUPT;
            else if ((b->version = get32(&r)) < 1 || b->version > TSDB_BLOCK_VERSION) rc = STRATA_EVERSION;
            else {
                b->mint = (int64_t)get64(&r);
                b->maxt = (int64_t)get64(&r);
                get64(&r);
                b->nsamples = get64(&r);
                b->nchunks = get64(&r);
                b->level = get32(&r);
            }
        }
    }
    if (!rc) rc = read_file(ip, &index, &ilen);
    if (!rc) {
        rc = parse_index(b, index, ilen);
        /* kept only by a block whose parse failed half-way (freed with it) */
        if (!b->mem || ((void **)b->mem)[0] != index) free(index);
    }
    if (!rc) {
        b->fd_chunks = open(cp, O_RDONLY | O_CLOEXEC);
        b->fd_rollups = open(rp, O_RDONLY | O_CLOEXEC);
        if (b->version >= 2) b->fd_rollups1h = open(hp, O_RDONLY | O_CLOEXEC);
        if (b->fd_chunks < 0 || b->fd_rollups < 0 || (b->version >= 2 && b->fd_rollups1h < 0))
            rc = STRATA_ECORRUPT;
    }
    if (!rc) {
        const char *files[5] = { mp, ip, cp, rp, hp };
        for (int i = 0; i < 5; i++) {
            struct stat st;
            if (stat(files[i], &st) == 0) b->bytes += (uint64_t)st.st_size;
        }
    }
    free(meta);
    free(mp); free(ip); free(cp); free(rp); free(hp);
    if (rc) { tsdb_block_close(b); return rc; }
    *out = b;
    return 0;
}

/* ---- index ops over a block ----------------------------------------------------------- */

static uint32_t block_sym(const tsdb_block_t *b, const char *s)
{
    return sym_id(b->syms, b->nsyms, s);
}

/* First posting index whose name is >= name (postings sorted by (name, value) ids). */
static uint32_t post_lower(const tsdb_block_t *b, uint32_t name, uint32_t value)
{
    uint32_t lo = 0, hi = b->npostings;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct tsdb_bpost *p = &b->postings[mid];
        if (p->name < name || (p->name == name && p->value < value)) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static int block_each_value(const void *idx, const char *name, tsdb_value_cb cb, void *ctx)
{
    const tsdb_block_t *b = idx;
    uint32_t n = block_sym(b, name);
    if (n == UINT32_MAX) return 0;
    for (uint32_t i = post_lower(b, n, 0); i < b->npostings && b->postings[i].name == n; i++) {
        int rc = cb(ctx, b->syms[b->postings[i].value], b->postings[i].ids, b->postings[i].n);
        if (rc) return rc;
    }
    return 0;
}

static void block_lookup(const void *idx, const char *name, const char *value,
                         const uint32_t **ids, size_t *n)
{
    const tsdb_block_t *b = idx;
    *ids = NULL;
    *n = 0;
    uint32_t ns = block_sym(b, name), vs = block_sym(b, value);
    if (ns == UINT32_MAX || vs == UINT32_MAX) return;
    uint32_t i = post_lower(b, ns, vs);
    if (i < b->npostings && b->postings[i].name == ns && b->postings[i].value == vs) {
        *ids = b->postings[i].ids;
        *n = b->postings[i].n;
    }
}

const tsdb_index_ops_t tsdb_block_index_ops = { block_each_value, block_lookup };

int tsdb_block_series_samples(const tsdb_block_t *b, uint32_t idx, int64_t mint, int64_t maxt,
                              tsdb_page_cache_t *pc, tsdb_sample_t **buf, size_t *n, size_t *cap)
{
    const tsdb_block_series_t *s = &b->series[idx];
    for (uint32_t c = 0; c < s->nchunks; c++) {
        const tsdb_block_chunk_t *m = &s->chunks[c];
        if (m->maxt < mint || m->mint > maxt) continue;
        const uint8_t *data;
        int rc = page_read(b, 0, m->page, m->off, m->len, pc, &data);
        if (rc) return rc;
        if (*n + m->count > *cap) {
            size_t nc = *cap ? *cap : 256;
            while (nc < *n + m->count) nc *= 2;
            tsdb_sample_t *nb = realloc(*buf, nc * sizeof *nb);
            if (!nb) return STRATA_ENOMEM;
            *buf = nb;
            *cap = nc;
        }
        size_t got = 0;
        rc = tsdb_chunk_decode(data, m->len, *buf + *n, m->count, &got);
        if (rc == STRATA_EBUFSMALL) rc = STRATA_ECORRUPT;
        if (rc) return rc;
        if (got != m->count) return STRATA_ECORRUPT;
        /* keep only [mint, maxt] */
        tsdb_sample_t *d = *buf + *n;
        size_t w = 0;
        for (size_t i = 0; i < got; i++) if (d[i].t >= mint && d[i].t <= maxt) d[w++] = d[i];
        *n += w;
    }
    return 0;
}

int tsdb_block_series_rollups(const tsdb_block_t *b, uint32_t idx, int64_t res,
                              tsdb_page_cache_t *pc, tsdb_rollup_point_t **buf, size_t *n,
                              size_t *cap)
{
    const tsdb_block_series_t *s = &b->series[idx];
    uint64_t page = res == TSDB_ROLLUP_5M ? s->r5_page : s->r1_page;
    uint32_t off = res == TSDB_ROLLUP_5M ? s->r5_off : s->r1_off;
    uint32_t cnt = res == TSDB_ROLLUP_5M ? s->r5_n : s->r1_n;
    if (!cnt) return 0;
    const uint8_t *data;
    int hold = res == TSDB_ROLLUP_1H && b->version >= 2;
    int file = res == TSDB_ROLLUP_1H && b->version >= 2 ? 2 : 1;
    if (b->version >= 3) {
        uint32_t len;
        int rc = page_read(b, file, page, off, 4, pc, &data);
        if (rc) return rc;
        memcpy(&len, data, 4);
        /* every point takes 2 bytes at least */
        if ((uint64_t)cnt * 2 > len || (uint64_t)off + 4 + len > UINT32_MAX) return STRATA_ECORRUPT;
        if ((rc = page_read(b, file, page, off + 4, len, pc, &data))) return rc;
        if (*n + cnt > *cap) {
            size_t nc = *cap ? *cap : 64;
            while (nc < *n + cnt) nc *= 2;
            tsdb_rollup_point_t *nb = realloc(*buf, nc * sizeof *nb);
            if (!nb) return STRATA_ENOMEM;
            *buf = nb;
            *cap = nc;
        }
        rd_t r = { data, data + len, 0 };
        tsdb_rollup_point_t zero = { 0 };
        const tsdb_rollup_point_t *prev = &zero;
        for (uint32_t i = 0; i < cnt && !r.bad; i++) {
            tsdb_rollup_point_t *p = &(*buf)[*n + i];
            get_rollup_compact(&r, p, prev, res, hold, i == 0);
            prev = p;
        }
        if (r.bad || r.p != r.end) return STRATA_ECORRUPT;
        *n += cnt;
        return 0;
    }
    size_t rsize = hold ? TSDB_ROLLUP_RECORD_SIZE_V2 : TSDB_ROLLUP_RECORD_SIZE_V1;
    if ((uint64_t)cnt * rsize > UINT32_MAX) return STRATA_ECORRUPT;
    int rc = page_read(b, file, page, off, cnt * (uint32_t)rsize, pc, &data);
    if (rc) return rc;
    if (*n + cnt > *cap) {
        size_t nc = *cap ? *cap : 64;
        while (nc < *n + cnt) nc *= 2;
        tsdb_rollup_point_t *nb = realloc(*buf, nc * sizeof *nb);
        if (!nb) return STRATA_ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    rd_t r = { data, data + (size_t)cnt * rsize, 0 };
    for (uint32_t i = 0; i < cnt; i++) {
        tsdb_rollup_point_t *p = &(*buf)[(*n)++];
        memset(p, 0, sizeof *p);
        p->t = (int64_t)get64(&r);
        p->count = get32(&r);
        p->sum = getd(&r); p->min = getd(&r); p->max = getd(&r); p->last = getd(&r);
        p->last_t = (int64_t)get64(&r);
        p->first = getd(&r);
        p->first_t = (int64_t)get64(&r);
        p->increase = getd(&r);
        if (!hold) continue;  /* (callers recompute v1 blocks' 1h rollups: tsdb.c) */
        p->stale = get32(&r);
        p->stale_t = (int64_t)get64(&r);
        p->gap_max = (int64_t)get64(&r);
        p->hold_sum = getd(&r);
        p->last_rise = getd(&r);
        p->inner_increase = getd(&r);
        p->zero_lead_end = (int64_t)get64(&r);
        p->zero_trail_start = (int64_t)get64(&r);
        p->zero_inner_max = (int64_t)get64(&r);
        p->zero_inner_idle = (int64_t)get64(&r);
    }
    return 0;
}
