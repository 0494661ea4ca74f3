/*
 * page_cache.c: reading records out of a block's page files, through the
 * process-wide LRU of decompressed pages (its size is the page_cache_bytes
 * option) and the per-reader tsdb_page_cache_t in front of it.
 *
 * Repeated queries over the same range skip pread + CRC + zstd (most of a
 * 7-day query's CPU).  Pages are immutable and only verified pages enter the
 * cache, so the only invalidation is tsdb_block_close dropping its pages.
 */
#include "block_internal.h"
#include "format.h"
#include "strata_log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

int tsdb_pread_all(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *d = p;
    while (n) {
        ssize_t r = pread(fd, d, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            strata_error("block file read failed", "fd=%d off=%llu err=\"%s\"", fd, (unsigned long long)off,
                         strerror(errno));
            return STRATA_EIO;
        }
        if (r == 0) return STRATA_ECORRUPT; /* a ref past the end of the file */
        d += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

#define SHARED_NBUCKETS 4096

/* Pages rebuilt, kept compressed (as on disk) per open block, so a page is
 * rebuilt, logged and counted once per open block however often it is
 * evicted and read again.  Under shared_mu; dropped with the block. */
typedef struct rbpage {
    struct rbpage *next;
    const tsdb_block_t *blk;
    uint64_t page;
    uint32_t hdr[3];
    uint8_t comp[];
} rbpage_t;

static rbpage_t *rebuilt;

/* One decompressed page.  refs: 1 while it is in the cache, +1 per reader
 * whose tsdb_page_cache_t points at it, so eviction never frees a page a
 * reader is still decoding from (the last unpin does). */
typedef struct spage {
    struct spage *hnext, *prev, *next; /* hash chain; LRU list, most recent first */
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
static size_t shared_max = TSDB_PAGE_CACHE_DEFAULT_BYTES;

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
    if (e->prev)
        e->prev->next = e->next;
    else
        shared_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        shared_tail = e->prev;
    e->prev = e->next = NULL;
}

static void shared_push_front(spage_t *e)
{
    e->next = shared_head;
    e->prev = NULL;
    if (shared_head)
        shared_head->prev = e;
    else
        shared_tail = e;
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
    n->refs = 2; /* the cache's and the caller's */
    shared_bytes += sizeof *n + n->len;
    while (shared_bytes > shared_max && shared_tail != n) shared_remove(shared_tail);
    pthread_mutex_unlock(&shared_mu);
    return n;
}

/* Drops b's pages: after close its address may be reused by another block. */
void tsdb_page_cache_drop_block(const tsdb_block_t *b)
{
    pthread_mutex_lock(&shared_mu);
    for (spage_t *e = shared_head, *nx; e; e = nx) {
        nx = e->next;
        if (e->blk == b) shared_remove(e);
    }
    for (rbpage_t **pp = &rebuilt; *pp;) {
        rbpage_t *r = *pp;
        if (r->blk == b) {
            *pp = r->next;
            free(r);
        } else
            pp = &r->next;
    }
    pthread_mutex_unlock(&shared_mu);
}

void tsdb_page_cache_set_limit(size_t bytes)
{
    pthread_mutex_lock(&shared_mu);
    shared_max = bytes;
    while (shared_bytes > shared_max && shared_tail) shared_remove(shared_tail);
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

/* ---- chunk pages rebuilt from parity ------------------------------------------- */

/* The rebuilt page (b, page), copied to a new buffer *comp; STRATA_ENOTFOUND. */
static int rebuilt_get(const tsdb_block_t *b, uint64_t page, uint32_t hdr[3], uint8_t **comp)
{
    int rc = STRATA_ENOTFOUND;
    pthread_mutex_lock(&shared_mu);
    for (rbpage_t *e = rebuilt; e; e = e->next)
        if (e->blk == b && e->page == page) {
            rc = (*comp = malloc(e->hdr[1] ? e->hdr[1] : 1)) ? 0 : STRATA_ENOMEM;
            if (!rc) {
                memcpy(hdr, e->hdr, sizeof e->hdr);
                memcpy(*comp, e->comp, e->hdr[1]);
            }
            break;
        }
    pthread_mutex_unlock(&shared_mu);
    return rc;
}

/* Does cand, the len bytes of a page's extent, frame as one page (header,
 * then exactly the rest of the extent as its frame) whose CRC checks? */
static int page_bytes_ok(const uint8_t *cand, size_t len)
{
    uint32_t h[3];
    memcpy(h, cand, sizeof h);
    return h[0] <= TSDB_PAGE_MAX_RAW && h[1] == len - sizeof h &&
           tsdb_crc32c(0, cand + sizeof h, h[1]) == h[2] &&
           ZSTD_getFrameContentSize(cand + sizeof h, h[1]) == h[0];
}

#define RB_MAX_RUNS 10 /* every subset of up to this many differing runs is tried */
#define RB_RUN_GAP  1  /* a run: differing bytes back to back (a flip changes whole bytes) */

/* Rebuilds the chunk page at `page` from the parity file (format.h): its
 * extent (to the next page the index names, or the end of the file) is
 * recomputed byte by byte as the parity XOR the other stripes.  Where the
 * result differs from the bytes on disk, the page's own bytes are damaged or
 * another member of that byte's group is; so runs of differing bytes are
 * taken from the rebuild in every combination (all first) until the page
 * frames exactly and its CRC checks.  STRATA_ECORRUPT when none does (two
 * damages in a group, no parity): the page is lost, as without parity. */
static int parity_rebuild(const tsdb_block_t *b, uint64_t page, uint32_t hdr[3], uint8_t **comp)
{
    if (b->fd_parity < 0) return STRATA_ECORRUPT;
    uint64_t end = b->chunks_size, w = b->parity_width;
    for (uint32_t i = 0; i < b->nseries; i++)
        for (uint32_t c = 0; c < b->series[i].nchunks; c++) {
            uint64_t p = b->series[i].chunks[c].page;
            if (p > page && p < end) end = p;
        }
    if (page >= end || end - page <= TSDB_PAGE_HEADER_SIZE ||
        end - page - TSDB_PAGE_HEADER_SIZE > ZSTD_compressBound(TSDB_PAGE_MAX_RAW))
        return STRATA_ECORRUPT;
    size_t len = (size_t)(end - page);
    uint64_t nstripes = (b->chunks_size + w - 1) / w;
    uint8_t *cur = malloc(len), *rb = malloc(len), *cand = malloc(len), *tmp = malloc(len < w ? len : w);
    int rc = !cur || !rb || !cand || !tmp ? STRATA_ENOMEM : tsdb_pread_all(b->fd_chunks, cur, len, page);
    for (size_t i = 0; !rc && i < len;) {
        uint64_t x = page + i, pos = x % w, r0 = x / w;
        size_t seg = len - i < w - pos ? len - i : (size_t)(w - pos);
        rc = tsdb_pread_all(b->fd_parity, rb + i, seg, TSDB_PARITY_HEADER_SIZE + pos);
        for (uint64_t r = 0; !rc && r < nstripes; r++) {
            uint64_t o = r * w + pos;
            if (r == r0 || o >= b->chunks_size) continue;
            size_t k = b->chunks_size - o < seg ? (size_t)(b->chunks_size - o) : seg;
            rc = tsdb_pread_all(b->fd_chunks, tmp, k, o);
            for (size_t j = 0; !rc && j < k; j++) rb[i + j] ^= tmp[j];
        }
        i += seg;
    }
    size_t rs[RB_MAX_RUNS], re[RB_MAX_RUNS], nr = 0;
    int many = 0;
    for (size_t i = 0; !rc && i < len; i++) {
        if (cur[i] == rb[i]) continue;
        if (nr && i - re[nr - 1] < RB_RUN_GAP)
            re[nr - 1] = i + 1;
        else if (nr < RB_MAX_RUNS) {
            rs[nr] = i;
            re[nr++] = i + 1;
        } else
            many = 1;
    }
    int found = 0;
    if (!rc && many) {
        found = page_bytes_ok(rb, len); /* too many runs to combine: all or nothing */
        if (found) memcpy(cand, rb, len);
    }
    /* by number of runs taken, most first: a lone damage is usually all of them */
    for (unsigned k = (unsigned)nr; !rc && !many && !found && k >= 1; k--)
        for (unsigned m = 1; !found && m < (1u << nr); m++) {
            if ((unsigned)__builtin_popcount(m) != k) continue;
            memcpy(cand, cur, len);
            for (size_t j = 0; j < nr; j++)
                if (m & (1u << j)) memcpy(cand + rs[j], rb + rs[j], re[j] - rs[j]);
            found = page_bytes_ok(cand, len);
        }
    if (!rc && !found) rc = STRATA_ECORRUPT;
    if (!rc) {
        memcpy(hdr, cand, 3 * sizeof *hdr);
        if (!(*comp = malloc(hdr[1] ? hdr[1] : 1)))
            rc = STRATA_ENOMEM;
        else
            memcpy(*comp, cand + TSDB_PAGE_HEADER_SIZE, hdr[1]);
    }
    free(cur);
    free(rb);
    free(cand);
    free(tmp);
    return rc;
}

/* The damaged chunk page (b, page) as it was written: from the pages rebuilt
 * earlier, or rebuilt now (kept, logged once and counted in
 * b->pages_rebuilt).  STRATA_ECORRUPT when it cannot be rebuilt. */
static int page_rebuilt(const tsdb_block_t *b, uint64_t page, uint32_t hdr[3], uint8_t **comp)
{
    int rc = rebuilt_get(b, page, hdr, comp);
    if (rc != STRATA_ENOTFOUND) return rc;
    if ((rc = parity_rebuild(b, page, hdr, comp))) return rc;
    rbpage_t *e = malloc(sizeof *e + hdr[1]);
    if (!e) return 0; /* served anyway; rebuilt again next time */
    *e = (rbpage_t){ .blk = b, .page = page, .hdr = { hdr[0], hdr[1], hdr[2] } };
    memcpy(e->comp, *comp, hdr[1]);
    pthread_mutex_lock(&shared_mu);
    rbpage_t *x = rebuilt;
    while (x && !(x->blk == b && x->page == page)) x = x->next;
    if (!x) {
        e->next = rebuilt;
        rebuilt = e;
    }
    pthread_mutex_unlock(&shared_mu);
    if (x) { /* another reader rebuilt it meanwhile */
        free(e);
        return 0;
    }
    if (b->pages_rebuilt) atomic_fetch_add(b->pages_rebuilt, 1);
    strata_warn("block page damaged, rebuilt from parity", "block=%s file=chunks page=%llu", b->id,
                (unsigned long long)page);
    return 0;
}

/* Reads the page header and compressed bytes at `page` of fd: STRATA_ECORRUPT
 * when the header is implausible or the CRC fails. */
static int page_load(int fd, uint64_t page, uint32_t hdr[3], uint8_t **comp)
{
    int rc = tsdb_pread_all(fd, hdr, 3 * sizeof *hdr, page);
    if (rc) return rc;
    if (hdr[0] > TSDB_PAGE_MAX_RAW || hdr[1] > ZSTD_compressBound(TSDB_PAGE_MAX_RAW)) return STRATA_ECORRUPT;
    uint8_t *c = malloc(hdr[1] ? hdr[1] : 1);
    if (!c) return STRATA_ENOMEM;
    rc = tsdb_pread_all(fd, c, hdr[1], page + 3 * sizeof *hdr);
    if (!rc && tsdb_crc32c(0, c, hdr[1]) != hdr[2]) rc = STRATA_ECORRUPT;
    if (rc)
        free(c);
    else
        *comp = c;
    return rc;
}

/* Decompresses a verified page into a new shared entry (*np, not yet
 * inserted), a ring slot (*slotp) or pc->buf. */
static int page_decompress(tsdb_page_cache_t *pc, const tsdb_block_t *b, int file, uint64_t page,
                           const uint32_t hdr[3], const uint8_t *comp, spage_t **np, int *slotp)
{
    int rc = 0;
    uint8_t *dst = NULL;
    /* pages too big to share (never written by this code) use pc->buf */
    pthread_mutex_lock(&shared_mu);
    size_t max = shared_max;
    pthread_mutex_unlock(&shared_mu);
    int share = !pc->stream && sizeof(spage_t) + hdr[0] <= max / 4;
    spage_t *n = NULL;
    *np = NULL;
    *slotp = -1;
    if (share) {
        n = malloc(sizeof *n + hdr[0]);
        if (!n)
            rc = STRATA_ENOMEM;
        else {
            *n = (spage_t){ .blk = b, .page = page, .file = file, .len = hdr[0] };
            dst = n->data;
        }
    } else if (pc->stream) {
        struct tsdb_stream_page *r = &pc->ring[pc->ring_next];
        if (hdr[0] > r->cap) {
            uint8_t *nb = realloc(r->buf, hdr[0] ? hdr[0] : 1);
            if (!nb)
                rc = STRATA_ENOMEM;
            else {
                r->buf = nb;
                r->cap = hdr[0];
            }
        }
        if (!rc) {
            *slotp = (int)pc->ring_next;
            pc->ring_next = (pc->ring_next + 1) % TSDB_STREAM_PAGES;
            r->blk = NULL; /* valid once decompressed */
            dst = r->buf;
        }
    } else {
        if (hdr[0] > pc->cap) {
            uint8_t *nb = realloc(pc->buf, hdr[0] ? hdr[0] : 1);
            if (!nb)
                rc = STRATA_ENOMEM;
            else {
                pc->buf = nb;
                pc->cap = hdr[0];
            }
        }
        dst = pc->buf;
    }
    if (!rc) {
        size_t d = ZSTD_decompress(dst, hdr[0], comp, hdr[1]);
        if (ZSTD_isError(d) || d != hdr[0]) rc = STRATA_ECORRUPT;
    }
    if (rc) {
        free(n);
        *slotp = -1;
        return rc;
    }
    *np = n;
    return 0;
}

/* Returns the record at (page, off, len) of file 0 (chunks), 1 (rollups: 5m,
 * and 1h in version 1 blocks) or 2 (rollups1h).  A chunk page that fails its
 * checks is rebuilt from the block's parity when it can be. */
int tsdb_page_read(const tsdb_block_t *b, int file, uint64_t page, uint32_t off, uint32_t len,
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
            uint8_t *comp = NULL;
            spage_t *n = NULL;
            int rc = page_load(fd, page, hdr, &comp);
            if (!rc) rc = page_decompress(pc, b, file, page, hdr, comp, &n, &slot);
            if (rc == STRATA_ECORRUPT && file == 0) {
                free(comp);
                comp = NULL;
                rc = page_rebuilt(b, page, hdr, &comp);
                if (!rc) rc = page_decompress(pc, b, file, page, hdr, comp, &n, &slot);
            }
            free(comp);
            if (rc) return rc;
            if (n)
                e = shared_insert(n);
            else if (slot >= 0) {
                pc->ring[slot] = (struct tsdb_stream_page){ b,      file,
                                                            page,   pc->ring[slot].buf,
                                                            hdr[0], pc->ring[slot].cap };
                pc->data = pc->ring[slot].buf;
                pc->len = hdr[0];
            } else {
                pc->data = pc->buf;
                pc->len = hdr[0];
            }
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
