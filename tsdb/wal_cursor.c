/*
 * wal_cursor.c: reading the WAL in order from a recorded position, for the
 * remote-write shipper (docs/scale-out.md): whole records up to the durable
 * end, the series their refs name, damaged stretches skipped, and the WAL's
 * floor (with the wal_retain option no segment the cursor still needs is
 * deleted, whatever checkpoints and retention say).
 *
 * The cursor keeps its own ref -> labels map, built at open from the
 * checkpoint at or before its segment and the segments from there to its
 * position, then kept up to date by the SERIES records it reads in order.
 * Records are decoded by the replay code (tsdb_wal_replay_buffer over a slice
 * with a file header in front), so a cursor reads exactly what replay reads;
 * the samples a checkpoint logs again (SAMPLES_COPY) are skipped, they were
 * read once where they were first logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db_internal.h"
#include "format.h"
#include "strata_fs.h"
#include "strata_log.h"

typedef struct cseries {
    uint64_t key;         /* ref + 1; 0 = empty slot */
    tsdb_label_t *labels; /* one allocation: the array, then the strings */
    size_t n;
} cseries_t;

struct tsdb_wal_cursor {
    tsdb_t *db;
    tsdb_wal_t *wal;
    uint64_t seg, off;
    int fd;
    uint64_t fd_seg;
    uint8_t *buf;
    size_t cap;
    cseries_t *map;
    size_t mcap, mn;
    tsdb_label_t **garbage; /* label sets replaced during a read, freed at the next */
    size_t ngarbage, gcap;
    uint64_t skipped;
    tsdb_wal_cursor_fn fn;
    void *fctx;
};

/* ---- the series map ------------------------------------------------------- */

static size_t map_slot(const tsdb_wal_cursor_t *c, uint64_t key)
{
    size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 17) & (c->mcap - 1);
    while (c->map[i].key && c->map[i].key != key) i = (i + 1) & (c->mcap - 1);
    return i;
}

static int same_labels(const tsdb_label_t *a, size_t na, const tsdb_label_t *b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) || strcmp(a[i].value, b[i].value)) return 0;
    return 1;
}

static int on_series(void *ctx, uint64_t ref, const tsdb_label_t *labels, size_t n)
{
    tsdb_wal_cursor_t *c = ctx;
    if ((c->mn + 1) * 2 > c->mcap) {
        size_t ncap = c->mcap ? c->mcap * 2 : 1024;
        cseries_t *nm = calloc(ncap, sizeof *nm), *old = c->map;
        if (!nm) return STRATA_ENOMEM;
        size_t ocap = c->mcap;
        c->map = nm;
        c->mcap = ncap;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].key) c->map[map_slot(c, old[i].key)] = old[i];
        free(old);
    }
    cseries_t *e = &c->map[map_slot(c, ref + 1)];
    if (e->key && same_labels(e->labels, e->n, labels, n)) return 0; /* logged again */
    size_t bytes = n * sizeof(tsdb_label_t);
    for (size_t i = 0; i < n; i++) bytes += strlen(labels[i].name) + strlen(labels[i].value) + 2;
    tsdb_label_t *l = malloc(bytes ? bytes : 1);
    if (!l) return STRATA_ENOMEM;
    char *p = (char *)(l + n);
    for (size_t i = 0; i < n; i++) {
        size_t nl = strlen(labels[i].name) + 1, vl = strlen(labels[i].value) + 1;
        memcpy(p, labels[i].name, nl);
        l[i].name = p;
        p += nl;
        memcpy(p, labels[i].value, vl);
        l[i].value = p;
        p += vl;
    }
    if (e->key) {
        /* a ref named again with other labels (refs restart after a crash):
         * the old set may still be held by the reader until the next read */
        if (c->ngarbage == c->gcap) {
            size_t gc = c->gcap ? c->gcap * 2 : 16;
            tsdb_label_t **ng = realloc(c->garbage, gc * sizeof *ng);
            if (!ng) {
                free(l);
                return STRATA_ENOMEM;
            }
            c->garbage = ng;
            c->gcap = gc;
        }
        c->garbage[c->ngarbage++] = e->labels;
    } else {
        e->key = ref + 1;
        c->mn++;
    }
    e->labels = l;
    e->n = n;
    return 0;
}

const tsdb_label_t *tsdb_wal_cursor_series(const tsdb_wal_cursor_t *c, uint64_t ref, size_t *nlabels)
{
    if (!c->mcap) return NULL;
    const cseries_t *e = &c->map[map_slot(c, ref + 1)];
    if (!e->key) return NULL;
    *nlabels = e->n;
    return e->labels;
}

/* ---- files ------------------------------------------------------------------ */

static int open_file(const tsdb_wal_cursor_t *c, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", tsdb_wal_path(c->wal), name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) strata_io_error("wal cursor cannot open", path);
    return fd;
}

static uint64_t fd_size(int fd)
{
    struct stat sb;
    return fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static int grow_buf(tsdb_wal_cursor_t *c, size_t need)
{
    if (need <= c->cap) return 0;
    uint8_t *nb = realloc(c->buf, need);
    if (!nb) return STRATA_ENOMEM;
    c->buf = nb;
    c->cap = need;
    return 0;
}

/* Reads [off, off + len) of fd into c->buf after a segment header. */
static int read_at(tsdb_wal_cursor_t *c, int fd, uint64_t off, size_t len)
{
    int rc = grow_buf(c, TSDB_WAL_HEADER_SIZE + len);
    if (rc) return rc;
    enc_put_u32le(c->buf, TSDB_WAL_MAGIC);
    c->buf[4] = TSDB_WAL_VERSION;
    c->buf[5] = TSDB_WAL_KIND_SEGMENT;
    c->buf[6] = c->buf[7] = 0;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, c->buf + TSDB_WAL_HEADER_SIZE + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            strata_error("wal cursor read failed", "offset=%" PRIu64 " err=\"%s\"", off + got,
                         n < 0 ? strerror(errno) : "short read");
            return STRATA_EIO;
        }
        got += (size_t)n;
    }
    return 0;
}

/* Learns the series of file `name` up to limit bytes (UINT64_MAX: all). */
static int learn_file(tsdb_wal_cursor_t *c, const char *name, uint64_t limit)
{
    int fd = open_file(c, name);
    if (fd < 0) return 0; /* gone meanwhile: its series are lost to the cursor */
    uint64_t size = fd_size(fd);
    if (limit > size) limit = size;
    int rc = 0;
    if (limit > TSDB_WAL_HEADER_SIZE) {
        rc = read_at(c, fd, TSDB_WAL_HEADER_SIZE, (size_t)(limit - TSDB_WAL_HEADER_SIZE));
        tsdb_wal_replay_ops_t ops = { on_series, NULL, c, 1 };
        if (!rc) rc = tsdb_wal_replay_buffer(c->buf, (size_t)limit, &ops, NULL, NULL, NULL);
    }
    close(fd);
    return rc;
}

static void seg_file(char *buf, size_t cap, uint64_t seg) { snprintf(buf, cap, "%08" PRIu64, seg); }

/* ---- open / close ------------------------------------------------------------ */

int tsdb_wal_cursor_open(tsdb_t *db, tsdb_wal_pos_t from, tsdb_wal_cursor_t **out)
{
    *out = NULL;
    if (!db || !db->wal) return STRATA_EINVAL;
    tsdb_wal_cursor_t *c = calloc(1, sizeof *c);
    if (!c) return STRATA_ENOMEM;
    c->db = db;
    c->wal = db->wal;
    c->fd = -1;
    uint64_t *segs = NULL, *ckpts = NULL;
    size_t nsegs = 0, nckpts = 0;
    int rc = tsdb_wal_list(c->wal, &segs, &nsegs, &ckpts, &nckpts);
    if (!rc && !nsegs) rc = STRATA_ENOTFOUND; /* an open WAL always has a segment */
    if (rc) goto out;
    size_t i = 0;
    while (i < nsegs && segs[i] < from.segment) i++;
    if (from.segment == 0) {
        c->seg = segs[0];
        c->off = TSDB_WAL_HEADER_SIZE;
    } else if (i < nsegs && segs[i] == from.segment) {
        c->seg = from.segment;
        c->off = from.offset < TSDB_WAL_HEADER_SIZE ? TSDB_WAL_HEADER_SIZE : from.offset;
    } else {
        c->seg = i < nsegs ? segs[i] : segs[0];
        c->off = TSDB_WAL_HEADER_SIZE;
        strata_error("wal cursor position is gone (the store ran without keeping the WAL for it): "
                     "records between it and the resume point are not read",
                     "position=%08" PRIu64 ":%" PRIu64 " resume=%08" PRIu64, from.segment, from.offset,
                     c->seg);
    }
    uint64_t cur, dend;
    tsdb_wal_readable(c->wal, &cur, &dend);
    if (c->seg == cur && c->off > dend) {
        strata_warn("wal cursor position is past the durable end of the log, resuming there",
                    "position=%08" PRIu64 ":%" PRIu64 " end=%" PRIu64, c->seg, c->off, dend);
        c->off = dend;
    }
    /* the floor first, so nothing read below goes away meanwhile (nothing
     * is deleted before a floor is set) */
    tsdb_wal_set_floor(c->wal, c->seg);
    uint64_t ck = 0;
    for (size_t k = 0; k < nckpts; k++)
        if (ckpts[k] <= c->seg) ck = ckpts[k];
    char name[64];
    if (ck) {
        snprintf(name, sizeof name, "checkpoint.%08" PRIu64, ck);
        rc = learn_file(c, name, UINT64_MAX);
    }
    for (size_t k = 0; !rc && k < nsegs && segs[k] < c->seg; k++) {
        if (segs[k] < ck) continue;
        seg_file(name, sizeof name, segs[k]);
        rc = learn_file(c, name, UINT64_MAX);
    }
    if (!rc) {
        seg_file(name, sizeof name, c->seg);
        rc = learn_file(c, name, c->off);
        int fd = open_file(c, name);
        if (fd >= 0) {
            uint64_t size = fd_size(fd);
            close(fd);
            if (c->seg != cur && c->off > size) c->off = size;
        }
    }
out:
    free(segs);
    free(ckpts);
    if (rc) {
        tsdb_wal_cursor_close(c);
        return rc;
    }
    strata_info("wal cursor opened", "position=%08" PRIu64 ":%" PRIu64 " series=%zu", c->seg, c->off, c->mn);
    *out = c;
    return 0;
}

void tsdb_wal_cursor_close(tsdb_wal_cursor_t *c)
{
    if (!c) return;
    if (c->fd >= 0) close(c->fd);
    for (size_t i = 0; i < c->mcap; i++)
        if (c->map[i].key) free(c->map[i].labels);
    for (size_t i = 0; i < c->ngarbage; i++) free(c->garbage[i]);
    free(c->garbage);
    free(c->map);
    free(c->buf);
    free(c);
}

/* ---- reading ----------------------------------------------------------------- */

static int deliver(void *ctx, const tsdb_wal_sample_t *s, size_t n)
{
    tsdb_wal_cursor_t *c = ctx;
    return c->fn ? c->fn(c->fctx, s, n) : 0;
}

/* The segment after c->seg (the next one present), or 0. */
static uint64_t next_segment(tsdb_wal_cursor_t *c)
{
    uint64_t *segs = NULL, *ckpts = NULL, next = 0;
    size_t nsegs = 0, nckpts = 0;
    if (tsdb_wal_list(c->wal, &segs, &nsegs, &ckpts, &nckpts) == 0)
        for (size_t i = 0; i < nsegs && !next; i++)
            if (segs[i] > c->seg) next = segs[i];
    free(segs);
    free(ckpts);
    return next;
}

static void skip_damage(tsdb_wal_cursor_t *c, uint64_t bytes, const char *why)
{
    c->skipped += bytes;
    strata_warn("wal cursor skipped a damaged stretch",
                "segment=%08" PRIu64 " offset=%" PRIu64 " bytes=%" PRIu64 " reason=\"%s\"", c->seg, c->off,
                bytes, why);
    c->off += bytes;
}

int tsdb_wal_cursor_read(tsdb_wal_cursor_t *c, size_t max_bytes, tsdb_wal_cursor_fn on_samples, void *ctx)
{
    for (size_t i = 0; i < c->ngarbage; i++) free(c->garbage[i]);
    c->ngarbage = 0;
    if (max_bytes < 4096) max_bytes = 4096;
    for (;;) {
        uint64_t cur, dend;
        tsdb_wal_readable(c->wal, &cur, &dend);
        if (c->fd < 0 || c->fd_seg != c->seg) {
            if (c->fd >= 0) close(c->fd);
            char name[32];
            seg_file(name, sizeof name, c->seg);
            c->fd = open_file(c, name);
            c->fd_seg = c->seg;
        }
        uint64_t end = c->seg == cur ? dend : c->fd >= 0 ? fd_size(c->fd) : 0;
        if (c->off >= end) {
            if (c->seg >= cur) return 0; /* caught up */
            uint64_t next = next_segment(c);
            if (!next) return 0;
            if (next != c->seg + 1)
                strata_error("wal cursor: segments missing, reading on after the gap",
                             "missing=%08" PRIu64 "..%08" PRIu64, c->seg + 1, next - 1);
            c->seg = next;
            c->off = TSDB_WAL_HEADER_SIZE;
            continue;
        }
        size_t want = end - c->off < max_bytes ? (size_t)(end - c->off) : max_bytes;
        int rc = read_at(c, c->fd, c->off, want);
        if (rc) return rc;
        size_t len = TSDB_WAL_HEADER_SIZE + want, p = TSDB_WAL_HEADER_SIZE;
        uint32_t rlen = 0;
        const char *why = NULL;
        while (p < len && !(why = tsdb_wal_frame_check(c->buf, len, p, &rlen)))
            p += TSDB_WAL_RECORD_HEADER_SIZE + rlen;
        if (p == TSDB_WAL_HEADER_SIZE) {
            int torn = !strncmp(why, "torn", 4);
            if (torn && len - p >= TSDB_WAL_RECORD_HEADER_SIZE) {
                uint64_t need = TSDB_WAL_RECORD_HEADER_SIZE + (uint64_t)enc_get_u32le(c->buf + p);
                if (need <= end - c->off && need > want) {
                    max_bytes = (size_t)need; /* one record longer than a slice */
                    continue;
                }
            }
            if (torn && want == end - c->off) { /* a torn tail: only in a finished segment */
                skip_damage(c, want, why);
                continue;
            }
            /* damage: find the next record that frames and checks in this slice */
            size_t q = p + 1;
            while (q < len && tsdb_wal_frame_check(c->buf, len, q, &rlen)) q++;
            skip_damage(c, q - p, why);
            continue;
        }
        tsdb_wal_replay_stats_t st = { 0 };
        tsdb_wal_replay_ops_t ops = { on_series, deliver, c, 1 };
        c->fn = on_samples;
        c->fctx = ctx;
        rc = tsdb_wal_replay_buffer(c->buf, p, &ops, &st, NULL, NULL);
        c->fn = NULL;
        if (rc) return rc;
        c->off += p - TSDB_WAL_HEADER_SIZE;
        return st.records ? (int)(st.records > INT32_MAX ? INT32_MAX : st.records) : 1;
    }
}

tsdb_wal_pos_t tsdb_wal_cursor_pos(const tsdb_wal_cursor_t *c) { return (tsdb_wal_pos_t){ c->seg, c->off }; }

void tsdb_wal_cursor_commit(tsdb_wal_cursor_t *c, tsdb_wal_pos_t pos)
{
    tsdb_wal_set_floor(c->wal, pos.segment);
}

uint64_t tsdb_wal_cursor_skipped_bytes(const tsdb_wal_cursor_t *c) { return c->skipped; }

uint64_t tsdb_wal_bytes_after(tsdb_t *db, tsdb_wal_pos_t pos)
{
    if (!db || !db->wal) return 0;
    uint64_t *segs = NULL, *ckpts = NULL, total = 0, cur, dend;
    size_t nsegs = 0, nckpts = 0;
    if (tsdb_wal_list(db->wal, &segs, &nsegs, &ckpts, &nckpts) != 0) return 0;
    tsdb_wal_readable(db->wal, &cur, &dend);
    for (size_t i = 0; i < nsegs; i++) {
        if (segs[i] < pos.segment || segs[i] > cur) continue;
        uint64_t size = dend;
        if (segs[i] != cur) {
            char path[4096];
            struct stat sb;
            snprintf(path, sizeof path, "%s/%08" PRIu64, tsdb_wal_path(db->wal), segs[i]);
            size = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        }
        uint64_t from = segs[i] == pos.segment ? pos.offset : TSDB_WAL_HEADER_SIZE;
        if (size > from) total += size - from;
    }
    free(segs);
    free(ckpts);
    return total;
}
