/*
 * block_reader.c: opening a block (meta and index checked against their
 * CRCs, the index loaded into memory), closing it, and reading a series'
 * samples and stored rollups through the page cache.
 */
#include "block_internal.h"
#include "codec.h"
#include "format.h"
#include "strata_fs.h"
#include "strata_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* ---- reader ------------------------------------------------------------------------ */

static int read_file(const char *path, uint8_t **out, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? STRATA_ECORRUPT : strata_io_error("cannot open block file", path);
    struct stat st;
    int rc = fstat(fd, &st) == 0 ? 0 : strata_io_error("cannot stat block file", path);
    uint8_t *p = NULL;
    if (!rc && !(p = malloc((size_t)st.st_size + 1))) rc = STRATA_ENOMEM;
    if (!rc) rc = tsdb_pread_all(fd, p, (size_t)st.st_size, 0);
    close(fd);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    *n = (size_t)st.st_size;
    return 0;
}

void tsdb_block_close(tsdb_block_t *b)
{
    if (!b) return;
    tsdb_page_cache_drop_block(b);
    tsdb_block_index_free(b);
    if (b->fd_chunks >= 0) close(b->fd_chunks);
    if (b->fd_rollups >= 0) close(b->fd_rollups);
    if (b->fd_rollups1h >= 0) close(b->fd_rollups1h);
    if (b->fd_parity >= 0) close(b->fd_parity);
    free(b->syms);
    free(b->series);
    free(b->postings);
    free(b->mem);
    free(b->bad_pages);
    free(b->path);
    free(b);
}

/* Parses a meta file's bytes into b: STRATA_ECORRUPT when it fails its
 * checks, STRATA_EVERSION for a well-formed meta of an unknown version. */
static int parse_meta(tsdb_block_t *b, const uint8_t *meta, size_t mlen)
{
    enc_rd_t r = { meta, meta + mlen, 0 };
    uint32_t crc = 0;
    if (mlen != TSDB_META_SIZE && mlen != TSDB_META_SIZE_V3) return STRATA_ECORRUPT;
    memcpy(&crc, meta + mlen - 4, 4);
    if (tsdb_crc32c(0, meta, mlen - 4) != crc || enc_rd32(&r) != TSDB_META_MAGIC) return STRATA_ECORRUPT;
    if ((b->version = enc_rd32(&r)) < 1 || b->version > TSDB_BLOCK_VERSION) return STRATA_EVERSION;
    if ((b->version >= 4) != (mlen == TSDB_META_SIZE)) return STRATA_ECORRUPT;
    b->mint = (int64_t)enc_rd64(&r);
    b->maxt = (int64_t)enc_rd64(&r);
    enc_rd64(&r);
    b->nsamples = enc_rd64(&r);
    b->nchunks = enc_rd64(&r);
    b->level = enc_rd32(&r);
    /* versions 1-3 do not record it: they were built with 5 minutes */
    b->zero_run_ms = b->version >= 4 ? (int64_t)enc_rd64(&r) : TSDB_META_V3_ZERO_RUN_MS;
    return b->zero_run_ms <= 0 ? STRATA_ECORRUPT : 0;
}

/* Parses an index into b; on failure leaves b without any index state, so
 * another copy can be parsed.  Takes ownership of p. */
static int parse_index(tsdb_block_t *b, uint8_t *p, size_t n)
{
    int rc = tsdb_block_index_parse(b, p, n);
    /* kept only by a block whose parse failed half-way (freed with it) */
    if (!b->mem || ((void **)b->mem)[0] != p) free(p);
    if (rc) {
        tsdb_block_index_free(b);
        free(b->mem);
        free(b->syms);
        free(b->series);
        free(b->postings);
        b->mem = NULL;
        b->syms = NULL;
        b->series = NULL;
        b->postings = NULL;
        b->nsyms = b->npostings = 0;
        b->nseries = 0;
    }
    return rc;
}

/* Compressed index bytes (tsdb_block_index_zip's form) at r, decompressed
 * into *index (malloc'd).  STRATA_ECORRUPT when they fail their checks. */
static int index_unzip(enc_rd_t *r, uint8_t **index, size_t *ilen)
{
    *index = NULL;
    uint32_t raw = enc_rd32(r), cl = enc_rd32(r), crc = enc_rd32(r);
    if (r->bad || cl > (size_t)(r->end - r->p) || tsdb_crc32c(0, r->p, cl) != crc ||
        ZSTD_getFrameContentSize(r->p, cl) != raw)
        return STRATA_ECORRUPT;
    if ((*index = malloc(raw ? raw : 1)) == NULL) return STRATA_ENOMEM;
    size_t got = ZSTD_decompress(*index, raw, r->p, cl);
    if (ZSTD_isError(got) || got != raw) {
        free(*index);
        *index = NULL;
        return STRATA_ECORRUPT;
    }
    *ilen = raw;
    return 0;
}

/* The index file, raw (TSDB_INDEX_MAGIC) or compressed (TSDB_INDEX_Z_MAGIC,
 * decompressed here): its index bytes in *index. */
static int read_index_file(const char *path, uint8_t **index, size_t *ilen)
{
    uint8_t *p = NULL;
    size_t n = 0;
    int rc = read_file(path, &p, &n);
    if (rc) return rc;
    uint32_t magic = 0;
    if (n >= 4) memcpy(&magic, p, 4);
    if (magic != TSDB_INDEX_Z_MAGIC) {
        *index = p;
        *ilen = n;
        return 0;
    }
    enc_rd_t r = { p + 4, p + n, 0 };
    rc = index_unzip(&r, index, ilen);
    free(p);
    return rc;
}

/* The copy file (format.h): its meta bytes and its decompressed index, each
 * NULL when that part fails its checks (or the file is missing: blocks
 * written before the copy existed).  0 or an I/O or memory error. */
static int read_copy(const char *path, uint8_t **meta, size_t *mlen, uint8_t **index, size_t *ilen)
{
    uint8_t *c = NULL;
    size_t n = 0;
    *meta = *index = NULL;
    int rc = read_file(path, &c, &n);
    if (rc) return rc == STRATA_ECORRUPT ? 0 : rc;
    enc_rd_t r = { c, c + n, 0 };
    uint32_t ml = 0;
    if (enc_rd32(&r) != TSDB_COPY_MAGIC || enc_rd32(&r) != TSDB_COPY_VERSION || (ml = enc_rd32(&r), r.bad) ||
        ml > (size_t)(r.end - r.p)) {
        free(c);
        return 0;
    }
    if ((*meta = malloc(ml ? ml : 1)) == NULL) {
        free(c);
        return STRATA_ENOMEM;
    }
    memcpy(*meta, r.p, ml);
    *mlen = ml;
    r.p += ml;
    rc = index_unzip(&r, index, ilen);
    free(c);
    return rc == STRATA_ENOMEM ? rc : 0;
}

/* Puts a primary file (meta or index) back from the copy's verified bytes:
 * the damaged file goes to <dir>/corrupt/block-<id>-<name> for forensics, the
 * good bytes are written to a temp file, fsynced and renamed over it.  Then
 * the next open reads the primary again and the block has two copies again.
 * 1 when it was put back; a failure is logged where it happens and changes
 * nothing else (0): the block is served from the copy either way. */
static int repair_from_copy(const char *blocks_dir, const tsdb_block_t *b, const char *name, const uint8_t *p,
                            size_t n)
{
    int done = 0;
    char *dst = strata_path_join(b->path, name), *tmp = NULL, *cdir = NULL, *aside = NULL;
    char tname[64], aname[96];
    snprintf(tname, sizeof tname, "%s.tmp", name);
    snprintf(aname, sizeof aname, "block-%s-%s", b->id, name);
    char *parent = strdup(blocks_dir), *slash = parent ? strrchr(parent, '/') : NULL;
    if (slash) {
        *slash = 0;
        cdir = strata_path_join(parent, "corrupt");
    }
    tmp = strata_path_join(b->path, tname);
    aside = cdir ? strata_path_join(cdir, aname) : NULL;
    if (!dst || !tmp || !aside) goto out;
    if (mkdir(cdir, 0755) != 0 && errno != EEXIST) {
        strata_io_error("cannot create corrupt dir", cdir);
        goto out;
    }
    if (rename(dst, aside) != 0 && errno != ENOENT) {
        strata_io_error("cannot move damaged block file aside", dst);
        goto out;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = fd < 0 ? strata_io_error("cannot create block file", tmp) : 0;
    if (!rc && tsdb_write_all(fd, p, n)) rc = strata_io_error("block file write failed", tmp);
    if (!rc && fsync(fd) != 0) rc = strata_io_error("block file fsync failed", tmp);
    if (fd >= 0) close(fd);
    if (!rc && rename(tmp, dst) != 0) rc = strata_io_error("cannot rename block file into place", dst);
    if (rc) {
        unlink(tmp);
        goto out;
    }
    strata_fsync_dir(b->path);
    strata_fsync_dir(cdir);
    strata_warn("block file repaired from its copy", "block=%s file=%s damaged=%s", b->id, name, aside);
    done = 1;
out:
    free(dst);
    free(tmp);
    free(cdir);
    free(aside);
    free(parent);
    return done;
}

/* Does an index's own trailing CRC check (before it is parsed and consumed)? */
static int index_crc_ok(const uint8_t *p, size_t n)
{
    uint32_t crc;
    if (n < 16) return 0;
    memcpy(&crc, p + n - 4, 4);
    return tsdb_crc32c(0, p, n - 4) == crc;
}

/* Is the copy file at path whole and the same as the primary meta and index
 * (good ones)?  Cheap: one read and a CRC over the compressed index, no
 * decompression (the frame's content size must be the index's length).  A
 * missing copy counts as damaged for version 5 blocks (always written with
 * one) and as whole for older ones (blocks written before it existed).
 * 1 whole, 0 damaged, or an I/O or memory error (< 0). */
static int copy_whole(const char *path, uint32_t version, const uint8_t *meta, size_t mlen, size_t ilen)
{
    uint8_t *c = NULL;
    size_t n = 0;
    int rc = read_file(path, &c, &n);
    if (rc) return rc == STRATA_ECORRUPT ? version < 5 : rc;
    enc_rd_t r = { c, c + n, 0 };
    int ok = enc_rd32(&r) == TSDB_COPY_MAGIC && enc_rd32(&r) == TSDB_COPY_VERSION && enc_rd32(&r) == mlen &&
             !r.bad && (size_t)(r.end - r.p) >= mlen && memcmp(r.p, meta, mlen) == 0;
    if (ok) {
        r.p += mlen;
        uint32_t raw = enc_rd32(&r), cl = enc_rd32(&r), crc = enc_rd32(&r);
        ok = !r.bad && raw == ilen && cl == (size_t)(r.end - r.p) && tsdb_crc32c(0, r.p, cl) == crc &&
             ZSTD_getFrameContentSize(r.p, cl) == raw;
    }
    free(c);
    return ok;
}

/* Writes the copy again from the primary meta and index (which passed their
 * checks): temp file, fsync, rename, directory fsync.  Logged once; a failure
 * is logged where it happens and changes nothing else. */
static int rewrite_copy(tsdb_block_t *b, const uint8_t *meta, size_t mlen, const uint8_t *ix, size_t ilen)
{
    char *tmp = strata_path_join(b->path, "copy.tmp"), *dst = strata_path_join(b->path, "copy");
    int rc = !tmp || !dst ? STRATA_ENOMEM : tsdb_block_copy_write(b->path, "copy.tmp", meta, mlen, ix, ilen);
    if (!rc && rename(tmp, dst) != 0) rc = strata_io_error("cannot rename block file into place", dst);
    if (!rc) rc = strata_fsync_dir(b->path);
    if (rc && tmp) unlink(tmp);
    if (!rc) {
        b->repaired_copy = 1;
        strata_warn("block copy damaged, rewritten from meta and index", "block=%s", b->id);
    }
    free(tmp);
    free(dst);
    return rc;
}

/* Opens the parity file (format.h) when there is one whose header checks and
 * covers the chunks file as it is; otherwise the block has none. */
static void open_parity(tsdb_block_t *b, const char *path)
{
    struct stat st;
    if (fstat(b->fd_chunks, &st) != 0) return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (b->version >= 5)
            strata_warn("block parity file missing, damaged chunk pages will be lost", "block=%s", b->id);
        return;
    }
    uint8_t h[TSDB_PARITY_HEADER_SIZE];
    uint32_t v[6];
    struct stat ps;
    if (tsdb_pread_all(fd, h, sizeof h, 0) == 0 && fstat(fd, &ps) == 0) {
        memcpy(v, h, sizeof v);
        uint64_t covered = (uint64_t)v[2] | (uint64_t)v[3] << 32;
        if (v[0] == TSDB_PARITY_MAGIC && v[1] == TSDB_PARITY_VERSION && tsdb_crc32c(0, h, 20) == v[5] &&
            covered == (uint64_t)st.st_size && v[4] >= 1 && v[4] <= TSDB_PARITY_MAX_WIDTH &&
            (uint64_t)ps.st_size == sizeof h + (uint64_t)v[4]) {
            b->fd_parity = fd;
            b->parity_width = v[4];
            b->chunks_size = covered;
            return;
        }
    }
    strata_warn("block parity file damaged, damaged chunk pages will be lost", "block=%s", b->id);
    close(fd);
}

int tsdb_block_open(const char *blocks_dir, const char *id, tsdb_block_t **out)
{
    tsdb_block_t *b = calloc(1, sizeof *b);
    if (!b) return STRATA_ENOMEM;
    b->fd_chunks = b->fd_rollups = b->fd_rollups1h = b->fd_parity = -1;
    snprintf(b->id, sizeof b->id, "%s", id);
    b->path = strata_path_join(blocks_dir, id);
    if (!b->path) {
        tsdb_block_close(b);
        return STRATA_ENOMEM;
    }
    char *mp = strata_path_join(b->path, "meta"), *ip = strata_path_join(b->path, "index");
    char *cp = strata_path_join(b->path, "chunks"), *rp = strata_path_join(b->path, "rollups");
    char *hp = strata_path_join(b->path, "rollups1h"), *kp = strata_path_join(b->path, "copy");
    char *pp = strata_path_join(b->path, "parity");
    uint8_t *meta = NULL, *index = NULL, *cmeta = NULL, *cindex = NULL;
    size_t mlen = 0, ilen = 0, cmlen = 0, cilen = 0;
    int have_copy = 0,
        rc = (!mp || !ip || !cp || !rp || !hp || !kp || !pp) ? STRATA_ENOMEM : read_file(mp, &meta, &mlen);
    if (!rc) rc = parse_meta(b, meta, mlen);
    if (rc == STRATA_ECORRUPT) {
        /* the primary meta is missing or damaged: the copy names the same block */
        if ((rc = read_copy(kp, &cmeta, &cmlen, &cindex, &cilen)) == 0) {
            have_copy = 1;
            rc = cmeta ? parse_meta(b, cmeta, cmlen) : STRATA_ECORRUPT;
            if (!rc) {
                strata_warn("block meta damaged, read its copy", "block=%s", id);
                b->repaired_meta = repair_from_copy(blocks_dir, b, "meta", cmeta, cmlen);
            }
        }
    }
    int meta_ok = !rc; /* the index is only looked at for a block whose meta reads */
    if (meta_ok) rc = read_index_file(ip, &index, &ilen);
    /* both primaries read from their files and whole: check the copy too
     * (repaired here, while the primaries are good, not found damaged the
     * day one of them is) */
    if (meta_ok && !rc && !have_copy && b->version >= 4 && index_crc_ok(index, ilen)) {
        int whole = copy_whole(kp, b->version, meta, mlen, ilen);
        if (whole < 0)
            rc = whole;
        else if (!whole)
            rewrite_copy(b, meta, mlen, index, ilen);
    }
    if (meta_ok && !rc) {
        rc = parse_index(b, index, ilen);
        index = NULL;
    }
    if (meta_ok && rc == STRATA_ECORRUPT) {
        if (!have_copy && (rc = read_copy(kp, &cmeta, &cmlen, &cindex, &cilen)) == 0) have_copy = 1;
        if (have_copy) {
            if (cindex && index_crc_ok(cindex, cilen)) {
                strata_warn("block index damaged, read its copy", "block=%s", id);
                /* put back compressed, as the writer wrote it */
                enc_buf_t z = { 0 };
                if (!enc_buf_put32(&z, TSDB_INDEX_Z_MAGIC) && !tsdb_block_index_zip(cindex, cilen, &z))
                    b->repaired_index = repair_from_copy(blocks_dir, b, "index", z.p, z.n);
                free(z.p);
            }
            rc = cindex ? parse_index(b, cindex, cilen) : STRATA_ECORRUPT;
            cindex = NULL;
        }
    }
    if (!rc) {
        b->fd_chunks = open(cp, O_RDONLY | O_CLOEXEC);
        b->fd_rollups = open(rp, O_RDONLY | O_CLOEXEC);
        if (b->version >= 2) b->fd_rollups1h = open(hp, O_RDONLY | O_CLOEXEC);
        if (b->fd_chunks < 0 || b->fd_rollups < 0 || (b->version >= 2 && b->fd_rollups1h < 0))
            rc = STRATA_ECORRUPT;
    }
    if (!rc) open_parity(b, pp);
    if (!rc) {
        const char *files[7] = { mp, ip, cp, rp, hp, kp, pp };
        for (int i = 0; i < 7; i++) {
            struct stat st;
            if (stat(files[i], &st) == 0) b->bytes += (uint64_t)st.st_size;
        }
    }
    free(meta);
    free(index);
    free(cmeta);
    free(cindex);
    free(mp);
    free(ip);
    free(cp);
    free(rp);
    free(hp);
    free(kp);
    free(pp);
    if (rc) {
        tsdb_block_close(b);
        return rc;
    }
    *out = b;
    return 0;
}

int tsdb_block_series_samples(const tsdb_block_t *b, uint32_t idx, int64_t mint, int64_t maxt,
                              tsdb_page_cache_t *pc, tsdb_sample_t **buf, size_t *n, size_t *cap)
{
    const tsdb_block_series_t *s = &b->series[idx];
    for (uint32_t c = 0; c < s->nchunks; c++) {
        const tsdb_block_chunk_t *m = &s->chunks[c];
        if (m->maxt < mint || m->mint > maxt) continue;
        const uint8_t *data;
        int rc = tsdb_page_read(b, 0, m->page, m->off, m->len, pc, &data);
        if (rc == STRATA_ECORRUPT && pc->on_damage) {
            pc->on_damage(pc->damage_ctx, b, 0, m->page);
            continue;
        }
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
        if (rc == STRATA_EBUFSMALL || (!rc && got != m->count)) rc = STRATA_ECORRUPT;
        if (rc == STRATA_ECORRUPT && pc->on_damage) {
            /* nothing of it is kept: *n has not moved */
            pc->on_damage(pc->damage_ctx, b, 0, m->page);
            continue;
        }
        if (rc) return rc;
        /* keep only [mint, maxt]; a chunk inside it (all but the two at the
         * ends of a long range) is kept whole without a pass over it */
        if (m->mint >= mint && m->maxt <= maxt) {
            *n += got;
            continue;
        }
        tsdb_sample_t *d = *buf + *n;
        size_t w = 0;
        for (size_t i = 0; i < got; i++)
            if (d[i].t >= mint && d[i].t <= maxt) d[w++] = d[i];
        *n += w;
    }
    return 0;
}

/* The points at res of a block series stored without them (format.h,
 * TSDB_ROLLUP_5M_MIN_SPAN_MS), computed from its chunks exactly as the writer
 * would have (with the block's zero-run minimum).  A damaged chunk page fails
 * the read (STRATA_ECORRUPT) instead of being skipped, so the points are never
 * computed from part of the samples; the caller then falls back to the merged
 * raw samples. */
static int series_rollups_computed(const tsdb_block_t *b, uint32_t idx, int64_t res, tsdb_page_cache_t *pc,
                                   tsdb_rollup_point_t **buf, size_t *n, size_t *cap)
{
    tsdb_sample_t *sb = NULL;
    size_t ns = 0, scap = 0;
    void (*on_damage)(void *, const tsdb_block_t *, int, uint64_t) = pc->on_damage;
    pc->on_damage = NULL;
    int rc = tsdb_block_series_samples(b, idx, INT64_MIN, INT64_MAX, pc, &sb, &ns, &scap);
    pc->on_damage = on_damage;
    if (!rc) rc = tsdb_rollups_compute(sb, ns, res, b->zero_run_ms, buf, n, cap);
    free(sb);
    return rc;
}

int tsdb_block_series_rollups(const tsdb_block_t *b, uint32_t idx, int64_t res, tsdb_page_cache_t *pc,
                              tsdb_rollup_point_t **buf, size_t *n, size_t *cap)
{
    const tsdb_block_series_t *s = &b->series[idx];
    uint64_t page = res == TSDB_ROLLUP_5M ? s->r5_page : s->r1_page;
    uint32_t off = res == TSDB_ROLLUP_5M ? s->r5_off : s->r1_off;
    uint32_t cnt = res == TSDB_ROLLUP_5M ? s->r5_n : s->r1_n;
    if (!cnt && s->nchunks) return series_rollups_computed(b, idx, res, pc, buf, n, cap);
    if (!cnt) return 0;
    const uint8_t *data;
    int hold = res == TSDB_ROLLUP_1H && b->version >= 2;
    int file = res == TSDB_ROLLUP_1H && b->version >= 2 ? 2 : 1;
    if (b->version >= 3) {
        uint32_t len;
        int rc = tsdb_page_read(b, file, page, off, 4, pc, &data);
        if (rc) return rc;
        memcpy(&len, data, 4);
        /* every point takes 2 bytes at least */
        if ((uint64_t)cnt * 2 > len || (uint64_t)off + 4 + len > UINT32_MAX) return STRATA_ECORRUPT;
        if ((rc = tsdb_page_read(b, file, page, off + 4, len, pc, &data))) return rc;
        if (*n + cnt > *cap) {
            size_t nc = *cap ? *cap : 64;
            while (nc < *n + cnt) nc *= 2;
            tsdb_rollup_point_t *nb = realloc(*buf, nc * sizeof *nb);
            if (!nb) return STRATA_ENOMEM;
            *buf = nb;
            *cap = nc;
        }
        if ((rc = tsdb_rollups_decode(data, len, cnt, res, hold, *buf + *n))) return rc;
        *n += cnt;
        return 0;
    }
    size_t rsize = hold ? TSDB_ROLLUP_RECORD_SIZE_V2 : TSDB_ROLLUP_RECORD_SIZE_V1;
    if ((uint64_t)cnt * rsize > UINT32_MAX) return STRATA_ECORRUPT;
    int rc = tsdb_page_read(b, file, page, off, cnt * (uint32_t)rsize, pc, &data);
    if (rc) return rc;
    if (*n + cnt > *cap) {
        size_t nc = *cap ? *cap : 64;
        while (nc < *n + cnt) nc *= 2;
        tsdb_rollup_point_t *nb = realloc(*buf, nc * sizeof *nb);
        if (!nb) return STRATA_ENOMEM;
        *buf = nb;
        *cap = nc;
    }
    tsdb_rollups_decode_fixed(data, cnt, hold, *buf + *n);
    *n += cnt;
    return 0;
}
