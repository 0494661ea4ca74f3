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

/* Returns the record at (page, off, len) of file 0 (chunks), 1 (rollups: 5m,
 * and 1h in version 1 blocks) or 2 (rollups1h). */
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
            int rc = tsdb_pread_all(fd, hdr, sizeof hdr, page);
            if (rc) return rc;
            if (hdr[0] > TSDB_PAGE_MAX_RAW || hdr[1] > ZSTD_compressBound(TSDB_PAGE_MAX_RAW))
                return STRATA_ECORRUPT;
            uint8_t *comp = malloc(hdr[1] ? hdr[1] : 1), *dst = NULL;
            if (!comp) return STRATA_ENOMEM;
            rc = tsdb_pread_all(fd, comp, hdr[1], page + sizeof hdr);
            if (!rc && tsdb_crc32c(0, comp, hdr[1]) != hdr[2]) rc = STRATA_ECORRUPT;
            /* pages too big to share (never written by this code) use pc->buf */
            pthread_mutex_lock(&shared_mu);
            size_t max = shared_max;
            pthread_mutex_unlock(&shared_mu);
            int share = !pc->stream && sizeof(spage_t) + hdr[0] <= max / 4;
            spage_t *n = NULL;
            if (!rc && share) {
                n = malloc(sizeof *n + hdr[0]);
                if (!n)
                    rc = STRATA_ENOMEM;
                else {
                    *n = (spage_t){ .blk = b, .page = page, .file = file, .len = hdr[0] };
                    dst = n->data;
                }
            } else if (!rc && pc->stream) {
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
                    slot = (int)pc->ring_next;
                    pc->ring_next = (pc->ring_next + 1) % TSDB_STREAM_PAGES;
                    r->blk = NULL; /* valid once decompressed */
                    dst = r->buf;
                }
            } else if (!rc) {
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
            free(comp);
            if (rc) {
                free(n);
                return rc;
            }
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
