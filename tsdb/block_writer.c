/*
 * block_writer.c: writing a block: the page files (chunks, rollups,
 * rollups1h) of zstd-compressed, CRC'd pages, then index and meta, fsynced
 * and renamed into place.  Layout in format.h.
 */
#include "block_internal.h"
#include "codec.h"
#include "format.h"
#include "strata_fs.h"
#include "strata_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

_Atomic int tsdb_fail_countdown;
_Atomic long tsdb_fail_steps;

void (*tsdb_fail_step_hook)(long step);

int tsdb_fail_step(void)
{
    long step = atomic_fetch_add(&tsdb_fail_steps, 1) + 1;
    if (tsdb_fail_step_hook) tsdb_fail_step_hook(step);
    int c = atomic_load(&tsdb_fail_countdown);
    while (c > 0 && !atomic_compare_exchange_weak(&tsdb_fail_countdown, &c, c - 1)) {}
    if (c != 1) return 0;
    strata_error("injected failure (test)", "err=\"%s\"", strerror(ENOSPC));
    errno = ENOSPC;
    return STRATA_ENOSPC;
}

int tsdb_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *s = p;
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return strata_errno_to_err(errno);
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- page files -------------------------------------------------------------- */

typedef struct pagew {
    int fd;
    uint64_t off; /* where the next page goes */
    enc_buf_t raw;
    size_t nsamples;    /* samples in the page being filled (chunks only) */
    size_t max_samples; /* a page is cut before it would pass this many */
    uint8_t *comp;
    size_t comp_cap;
    ZSTD_CCtx *cctx;
    char *path; /* for error messages */
} pagew_t;

static int pagew_open(pagew_t *pw, const char *path)
{
    memset(pw, 0, sizeof *pw);
    pw->path = strdup(path);
    if (!pw->path) return STRATA_ENOMEM;
    pw->fd = tsdb_fail_step() ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (pw->fd < 0) return strata_io_error("cannot create block file", path);
    pw->cctx = ZSTD_createCCtx();
    if (!pw->cctx) return STRATA_ENOMEM;
    uint32_t hdr[2] = { TSDB_PAGE_MAGIC, TSDB_BLOCK_VERSION };
    pw->off = sizeof hdr;
    return tsdb_write_all(pw->fd, hdr, sizeof hdr) ? strata_io_error("block file write failed", path) : 0;
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
    if (ZSTD_isError(cl)) {
        strata_error("block page compression failed", "path=%s err=\"%s\"", pw->path, ZSTD_getErrorName(cl));
        return STRATA_EIO;
    }
    uint32_t hdr[3] = { (uint32_t)pw->raw.n, (uint32_t)cl, tsdb_crc32c(0, pw->comp, cl) };
    if (tsdb_fail_step() || tsdb_write_all(pw->fd, hdr, sizeof hdr) || tsdb_write_all(pw->fd, pw->comp, cl))
        return strata_io_error("block file write failed", pw->path);
    pw->off += sizeof hdr + cl;
    pw->raw.n = 0;
    pw->nsamples = 0;
    return 0;
}

/* Adds a record of `samples` samples (0 for rollups); its address is
 * (*page, *off).  A page is cut at TSDB_PAGE_TARGET_BYTES and, for chunks, at
 * TSDB_PAGE_MAX_SAMPLES, so one damaged page loses a bounded share of a block
 * however well its series compress. */
static int pagew_add(pagew_t *pw, const void *p, size_t n, size_t samples, uint64_t *page, uint32_t *off)
{
    int rc;
    if (pw->raw.n && (pw->raw.n + n > TSDB_PAGE_TARGET_BYTES || pw->nsamples + samples > pw->max_samples) &&
        (rc = pagew_flush(pw)))
        return rc;
    *page = pw->off;
    *off = (uint32_t)pw->raw.n;
    pw->nsamples += samples;
    return enc_buf_put(&pw->raw, p, n);
}

static int pagew_close(pagew_t *pw, int keep)
{
    int rc = 0;
    if (keep) {
        rc = pagew_flush(pw);
        if (!rc && (tsdb_fail_step() || fsync(pw->fd) != 0))
            rc = strata_io_error("block file fsync failed", pw->path);
    }
    if (pw->fd >= 0) close(pw->fd);
    free(pw->path);
    free(pw->raw.p);
    free(pw->comp);
    ZSTD_freeCCtx(pw->cctx);
    memset(pw, 0, sizeof *pw);
    pw->fd = -1;
    return rc;
}

/* ---- writer ------------------------------------------------------------------- */

struct tsdb_block_writer {
    char *tmp, *final;
    char id[40];
    uint32_t level;
    int64_t zero_run_ms;
    pagew_t chunks, rollups, rollups1h;
    tsdb_block_wseries_t *series;
    size_t nseries, series_cap;
    tsdb_block_chunk_t *cm;
    size_t ncm, cm_cap;
    strata_arena_t *arena;
    uint8_t *enc;
    size_t enc_cap;
    tsdb_rollup_point_t *rp;
    size_t rp_cap;
    enc_buf_t rbuf;
    int64_t mint, maxt;
    uint64_t nsamples;
};

static atomic_uint block_seq;

void tsdb_rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char *p = strata_path_join(path, e->d_name);
            if (p) {
                unlink(p);
                free(p);
            }
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

int tsdb_block_writer_new(const char *blocks_dir, uint32_t level, int64_t zero_run_ms,
                          tsdb_block_writer_t **out)
{
    tsdb_block_writer_t *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->chunks.fd = w->rollups.fd = w->rollups1h.fd = -1;
    w->level = level;
    w->zero_run_ms = zero_run_ms;
    w->mint = INT64_MAX;
    w->maxt = INT64_MIN;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    snprintf(w->id, sizeof w->id, "%016" PRIx64 "%08x", ms,
             (unsigned)(atomic_fetch_add(&block_seq, 1) + ((unsigned)getpid() << 16)));
    char tmpname[64];
    snprintf(tmpname, sizeof tmpname, "%s.tmp", w->id);
    w->tmp = strata_path_join(blocks_dir, tmpname);
    w->final = strata_path_join(blocks_dir, w->id);
    w->arena = strata_arena_new(64 * 1024);
    if (!w->tmp || !w->final || !w->arena) {
        tsdb_block_writer_abort(w);
        return STRATA_ENOMEM;
    }
    if (tsdb_fail_step() || mkdir(w->tmp, 0755) != 0) {
        int rc = strata_io_error("cannot create block dir", w->tmp);
        free(w->tmp);
        w->tmp = NULL;
        tsdb_block_writer_abort(w);
        return rc;
    }
    char *pc = strata_path_join(w->tmp, "chunks"), *pr = strata_path_join(w->tmp, "rollups");
    char *ph = strata_path_join(w->tmp, "rollups1h");
    int rc = (!pc || !pr || !ph) ? STRATA_ENOMEM : pagew_open(&w->chunks, pc);
    if (!rc) rc = pagew_open(&w->rollups, pr);
    if (!rc) rc = pagew_open(&w->rollups1h, ph);
    w->chunks.max_samples = TSDB_PAGE_MAX_SAMPLES;
    free(pc);
    free(pr);
    free(ph);
    if (rc) {
        tsdb_block_writer_abort(w);
        return rc;
    }
    *out = w;
    return 0;
}

void tsdb_block_writer_set_page_samples(tsdb_block_writer_t *w, size_t max)
{
    w->chunks.max_samples = max > TSDB_PAGE_MAX_SAMPLES ? max : TSDB_PAGE_MAX_SAMPLES;
}

static int add_rollups(tsdb_block_writer_t *w, pagew_t *pw, const tsdb_sample_t *s, size_t n, int64_t res,
                       uint64_t *page, uint32_t *off, uint32_t *np)
{
    size_t cnt = 0;
    int rc = tsdb_rollups_compute(s, n, res, w->zero_run_ms, &w->rp, &cnt, &w->rp_cap);
    if (rc) return rc;
    w->rbuf.n = 0;
    if ((rc = tsdb_rollups_encode(&w->rbuf, w->rp, cnt, res, res == TSDB_ROLLUP_1H))) return rc;
    *np = (uint32_t)cnt;
    *page = 0;
    *off = 0;
    return cnt ? pagew_add(pw, w->rbuf.p, w->rbuf.n, 0, page, off) : 0;
}

int tsdb_block_writer_add(tsdb_block_writer_t *w, const tsdb_label_t *labels, size_t nlabels,
                          const tsdb_sample_t *s, size_t n)
{
    if (!n) return 0;
    if (w->nseries == w->series_cap) {
        size_t nc = w->series_cap ? w->series_cap * 2 : 256;
        tsdb_block_wseries_t *ns = realloc(w->series, nc * sizeof *ns);
        if (!ns) return STRATA_ENOMEM;
        w->series = ns;
        w->series_cap = nc;
    }
    tsdb_label_t *lc = strata_arena_alloc(w->arena, nlabels * sizeof *lc + 1);
    if (!lc) return STRATA_ENOMEM;
    memcpy(lc, labels, nlabels * sizeof *lc);
    tsdb_block_wseries_t *ws = &w->series[w->nseries];
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
        if ((rc = pagew_add(&w->chunks, w->enc, written, k, &c->page, &c->off))) return rc;
        w->ncm++;
        ws->nchunks++;
    }
    /* 1h points in their own file: a wide read then decompresses no 5m pages */
    /* rollups only where they pay (r5_n, r1_n stay 0: readers compute them) */
    if (tsdb_rollup_stored(s, n, TSDB_ROLLUP_5M) &&
        (rc = add_rollups(w, &w->rollups, s, n, TSDB_ROLLUP_5M, &ws->r5_page, &ws->r5_off, &ws->r5_n)))
        return rc;
    if (tsdb_rollup_stored(s, n, TSDB_ROLLUP_1H) &&
        (rc = add_rollups(w, &w->rollups1h, s, n, TSDB_ROLLUP_1H, &ws->r1_page, &ws->r1_off, &ws->r1_n)))
        return rc;
    if (s[0].t < w->mint) w->mint = s[0].t;
    if (s[n - 1].t > w->maxt) w->maxt = s[n - 1].t;
    w->nsamples += n;
    w->nseries++;
    return 0;
}

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char *path = strata_path_join(dir, name);
    if (!path) return STRATA_ENOMEM;
    int fd = tsdb_fail_step() ? -1 : open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? strata_io_error("cannot create block file", path) : 0;
    if (!rc && (tsdb_fail_step() || tsdb_write_all(fd, p, n)))
        rc = strata_io_error("block file write failed", path);
    if (!rc && (tsdb_fail_step() || fsync(fd) != 0)) rc = strata_io_error("block file fsync failed", path);
    if (fd >= 0) close(fd);
    free(path);
    return rc;
}

int tsdb_block_index_zip(const uint8_t *ix, size_t n, enc_buf_t *out)
{
    size_t bound = ZSTD_compressBound(n);
    uint8_t *z = malloc(bound);
    if (!z) return STRATA_ENOMEM;
    size_t cl = ZSTD_compress(z, bound, ix, n, 3);
    if (ZSTD_isError(cl)) {
        strata_error("block index compression failed", "err=\"%s\"", ZSTD_getErrorName(cl));
        free(z);
        return STRATA_EIO;
    }
    int rc = enc_buf_put32(out, (uint32_t)n) | enc_buf_put32(out, (uint32_t)cl) |
             enc_buf_put32(out, tsdb_crc32c(0, z, cl)) | enc_buf_put(out, z, cl);
    free(z);
    return rc ? STRATA_ENOMEM : 0;
}

/* The "copy" file (format.h): meta and index again, the index compressed
 * (zix: tsdb_block_index_zip's bytes, which the index file holds too).
 * They are the parts that name everything in the block, so a flip in either
 * set the whole block aside; with the copy it costs nothing. */
static int write_copy(const char *dir, const char *name, const uint8_t *meta, size_t mlen, const uint8_t *zix,
                      size_t zn)
{
    enc_buf_t c = { 0 };
    int rc = enc_buf_put32(&c, TSDB_COPY_MAGIC) | enc_buf_put32(&c, TSDB_COPY_VERSION) |
             enc_buf_put32(&c, (uint32_t)mlen) | enc_buf_put(&c, meta, mlen) | enc_buf_put(&c, zix, zn);
    rc = rc ? STRATA_ENOMEM : write_file(dir, name, c.p, c.n);
    free(c.p);
    return rc;
}

int tsdb_block_copy_write(const char *dir, const char *name, const uint8_t *meta, size_t mlen,
                          const uint8_t *ix, size_t ilen)
{
    enc_buf_t zix = { 0 };
    int rc = tsdb_block_index_zip(ix, ilen, &zix);
    if (!rc) rc = write_copy(dir, name, meta, mlen, zix.p, zix.n);
    free(zix.p);
    return rc;
}

/* The "parity" file (format.h): the XOR of the chunks file's stripes of
 * width W, so one damaged chunk page is rebuilt from it and the other
 * stripes (page_cache.c).  The chunks file is read back (it was just written
 * and fsynced, so from the OS cache), in 1 MiB reads. */
static int write_parity(const char *dir, uint64_t size)
{
    uint64_t w = (size + TSDB_PARITY_STRIPES - 1) / TSDB_PARITY_STRIPES;
    w = (w + 63) / 64 * 64;
    if (w < TSDB_PARITY_MIN_WIDTH) w = TSDB_PARITY_MIN_WIDTH;
    if (w > TSDB_PARITY_MAX_WIDTH) w = TSDB_PARITY_MAX_WIDTH;
    char *path = strata_path_join(dir, "chunks");
    uint8_t *out = calloc(1, TSDB_PARITY_HEADER_SIZE + w), *buf = malloc(1u << 20);
    int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    int rc = !path || !out || !buf ? STRATA_ENOMEM
             : fd < 0              ? strata_io_error("cannot open block file", path)
                                   : 0;
    uint8_t *par = out + TSDB_PARITY_HEADER_SIZE;
    for (uint64_t off = 0; !rc && off < size;) {
        size_t n = size - off < (1u << 20) ? (size_t)(size - off) : (1u << 20);
        if ((rc = tsdb_pread_all(fd, buf, n, off))) break;
        for (size_t i = 0; i < n; i++) par[(off + i) % w] ^= buf[i];
        off += n;
    }
    if (fd >= 0) close(fd);
    if (!rc) {
        uint32_t hdr[5] = { TSDB_PARITY_MAGIC, TSDB_PARITY_VERSION, (uint32_t)size, (uint32_t)(size >> 32),
                            (uint32_t)w };
        memcpy(out, hdr, sizeof hdr);
        uint32_t crc = tsdb_crc32c(0, out, sizeof hdr);
        memcpy(out + sizeof hdr, &crc, 4);
        rc = write_file(dir, "parity", out, TSDB_PARITY_HEADER_SIZE + w);
    }
    free(path);
    free(out);
    free(buf);
    return rc;
}

int tsdb_block_writer_finish(tsdb_block_writer_t *w, char id_out[40])
{
    if (!w->nseries) {
        tsdb_block_writer_abort(w);
        return STRATA_ENOTFOUND;
    }
    enc_buf_t ix = { 0 }, meta = { 0 }, zix = { 0 };
    uint64_t chunks_size = 0;
    int rc = pagew_flush(&w->chunks);
    chunks_size = w->chunks.off;
    if (!rc) rc = pagew_close(&w->chunks, 1);
    if (!rc) rc = pagew_close(&w->rollups, 1);
    if (!rc) rc = pagew_close(&w->rollups1h, 1);
    if (!rc) rc = tsdb_block_index_build(w->series, w->nseries, w->cm, &ix);
    /* the index file compressed (format.h, TSDB_INDEX_Z_MAGIC) */
    if (!rc) rc = enc_buf_put32(&zix, TSDB_INDEX_Z_MAGIC) ? STRATA_ENOMEM : 0;
    if (!rc) rc = tsdb_block_index_zip(ix.p, ix.n, &zix);
    if (!rc) rc = write_file(w->tmp, "index", zix.p, zix.n);
    if (!rc) {
        rc = enc_buf_put32(&meta, TSDB_META_MAGIC) | enc_buf_put32(&meta, TSDB_BLOCK_VERSION) |
             enc_buf_put64(&meta, (uint64_t)w->mint) | enc_buf_put64(&meta, (uint64_t)w->maxt) |
             enc_buf_put64(&meta, w->nseries) | enc_buf_put64(&meta, w->nsamples) |
             enc_buf_put64(&meta, w->ncm) | enc_buf_put32(&meta, w->level) |
             enc_buf_put64(&meta, (uint64_t)w->zero_run_ms);
        if (!rc) rc = enc_buf_put32(&meta, tsdb_crc32c(0, meta.p, meta.n));
        if (rc) rc = STRATA_ENOMEM;
    }
    if (!rc) rc = write_file(w->tmp, "meta", meta.p, meta.n);
    /* the copy holds the index file's compressed body (after its magic) */
    if (!rc) rc = write_copy(w->tmp, "copy", meta.p, meta.n, zix.p + 4, zix.n - 4);
    if (!rc) rc = write_parity(w->tmp, chunks_size);
    if (!rc)
        rc = tsdb_fail_step() ? strata_io_error("block dir fsync failed", w->tmp) : strata_fsync_dir(w->tmp);
    if (!rc && (tsdb_fail_step() || rename(w->tmp, w->final) != 0))
        rc = strata_io_error("cannot rename block into place", w->final);
    if (!rc) {
        /* Renamed: from here on the block is only kept once its name is
         * durable; otherwise it goes, so a failed finish leaves nothing a
         * retry could duplicate (and nothing a crash could resurrect). */
        char *parent = strdup(w->final), *slash = parent ? strrchr(parent, '/') : NULL;
        if (!slash)
            rc = STRATA_ENOMEM;
        else {
            *slash = 0;
            rc = tsdb_fail_step() ? strata_io_error("blocks dir fsync failed", parent)
                                  : strata_fsync_dir(parent);
        }
        if (rc) {
            tsdb_rm_tree(w->final);
            if (slash) strata_fsync_dir(parent);
        } else {
            memcpy(id_out, w->id, sizeof w->id);
        }
        free(parent);
        free(w->tmp);
        w->tmp = NULL; /* nothing to remove any more */
    }                  /* (a failed system call was logged where it failed) */
    free(ix.p);
    free(zix.p);
    free(meta.p);
    tsdb_block_writer_abort(w);
    return rc;
}
