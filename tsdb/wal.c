/*
 * wal.c: tsdb's write-ahead log: segment files of CRC32C-framed records,
 * replay with torn/corrupt-tail repair, group-committed appends, rotation
 * and checkpoints.  The byte format is in tsdb/format.h and docs/storage.md.
 *
 * Concurrency: one mutex guards the current segment, its size and the sync
 * state.  An append writes its whole batch with the lock held (so batches
 * never interleave), then, under TSDB_FSYNC_ALWAYS, waits until `synced`
 * covers its end.  The first waiter that finds no fsync in flight becomes the
 * leader: it notes how far the log has been written, drops the lock, fsyncs,
 * and publishes the new `synced`; everyone whose bytes that covers returns
 * (group commit).  `written`/`synced` are logical byte counts since open, so
 * they stay comparable across segment rolls; a roll fsyncs the old segment
 * first, which is why a leader only ever needs to fsync the current one.
 *
 * Failures: a failed write is cut back off the file (ftruncate) so the log
 * never holds a torn record that later good records would follow; if that
 * cut or any fsync fails the WAL turns read-only with a sticky STRATA_EIO,
 * because after a failed fsync the kernel may have dropped the dirty pages
 * and nothing written since can be vouched for.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "encoding.h"
#include "format.h"
#include "strata_fs.h"
#include "strata_log.h"
#include "wal.h"

#define WAL_DEFAULT_SEGMENT_BYTES (64u << 20)
#define WAL_DEFAULT_INTERVAL_MS   100

struct tsdb_wal {
    char *path; /* <db>/wal */
    int dirfd;
    tsdb_wal_options_t opts;

    pthread_mutex_t mu;
    pthread_cond_t sync_cv; /* an fsync finished or a roll completed */
    pthread_cond_t bg_cv;   /* wakes the interval thread (CLOCK_MONOTONIC) */
    int fd;                 /* current segment, append position seg_size */
    uint64_t seg;
    uint64_t seg_size;
    uint64_t written; /* bytes appended since open (logical) */
    uint64_t synced;  /* prefix of `written` known to be on stable storage */
    int syncing;      /* a leader is in fsync() without the lock */
    int err;          /* sticky failure, 0 when healthy */
    int closing;
    int has_bg;
    pthread_t bg;
};

/* ---- little helpers ----------------------------------------------------- */

static double mono_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void wal_header(uint8_t h[TSDB_WAL_HEADER_SIZE], uint8_t kind)
{
    enc_put_u32le(h, TSDB_WAL_MAGIC);
    h[4] = TSDB_WAL_VERSION;
    h[5] = kind;
    h[6] = h[7] = 0;
}

static void seg_name(char *buf, size_t cap, uint64_t seg) { snprintf(buf, cap, "%08" PRIu64, seg); }

static void ckpt_name(char *buf, size_t cap, uint64_t seg)
{
    snprintf(buf, cap, "checkpoint.%08" PRIu64, seg);
}

/* Writes all of buf at off; on failure returns the errno. */
static int pwrite_all(int fd, const uint8_t *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, buf + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        if (n == 0) return EIO;
        done += (size_t)n;
    }
    return 0;
}

/* fsync(fd) timed for the observer.  Returns 0 or the errno. */
static int wal_fsync_fd(const tsdb_wal_t *w, int fd)
{
    double t0 = mono_seconds();
    int rc = fsync(fd) == 0 ? 0 : errno;
    if (w->opts.fsync_observer) w->opts.fsync_observer(mono_seconds() - t0, w->opts.fsync_observer_ctx);
    return rc;
}

/* ---- batch builders ----------------------------------------------------- */

void tsdb_wal_batch_init(tsdb_wal_batch_t *b)
{
    b->buf = NULL;
    b->len = b->cap = 0;
}
void tsdb_wal_batch_reset(tsdb_wal_batch_t *b) { b->len = 0; }

void tsdb_wal_batch_free(tsdb_wal_batch_t *b)
{
    free(b->buf);
    tsdb_wal_batch_init(b);
}

static int batch_reserve(tsdb_wal_batch_t *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len) return STRATA_ENOMEM;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *nb = realloc(b->buf, cap);
    if (!nb) return STRATA_ENOMEM;
    b->buf = nb;
    b->cap = cap;
    return 0;
}

/* The record body starts 8 bytes into rec; fills len and crc in front of it. */
static void record_seal(uint8_t *rec, uint32_t body_len)
{
    enc_put_u32le(rec, body_len);
    uint32_t crc = tsdb_crc32c(0, rec, 4);
    crc = tsdb_crc32c(crc, rec + TSDB_WAL_RECORD_HEADER_SIZE, body_len);
    enc_put_u32le(rec + 4, crc);
}

int tsdb_wal_batch_add_series(tsdb_wal_batch_t *b, uint64_t ref, const tsdb_label_t *labels, size_t nlabels)
{
    if (nlabels && !labels) return STRATA_EINVAL;
    size_t body = 1 + enc_uvarint_len(ref) + enc_uvarint_len(nlabels);
    for (size_t i = 0; i < nlabels; i++) {
        if (!labels[i].name || !labels[i].value) return STRATA_EINVAL;
        size_t nl = strlen(labels[i].name), vl = strlen(labels[i].value);
        body += enc_uvarint_len(nl) + nl + enc_uvarint_len(vl) + vl;
        if (body > TSDB_WAL_MAX_RECORD_BYTES) return STRATA_EINVAL;
    }
    int rc = batch_reserve(b, TSDB_WAL_RECORD_HEADER_SIZE + body);
    if (rc) return rc;
    uint8_t *rec = b->buf + b->len, *p = rec + TSDB_WAL_RECORD_HEADER_SIZE;
    *p++ = TSDB_WAL_REC_SERIES;
    p = enc_put_uvarint(p, ref);
    p = enc_put_uvarint(p, nlabels);
    for (size_t i = 0; i < nlabels; i++) {
        size_t nl = strlen(labels[i].name), vl = strlen(labels[i].value);
        p = enc_put_uvarint(p, nl);
        memcpy(p, labels[i].name, nl);
        p += nl;
        p = enc_put_uvarint(p, vl);
        memcpy(p, labels[i].value, vl);
        p += vl;
    }
    record_seal(rec, (uint32_t)body);
    b->len += TSDB_WAL_RECORD_HEADER_SIZE + body;
    return 0;
}

int tsdb_wal_batch_add_samples(tsdb_wal_batch_t *b, const tsdb_wal_sample_t *samples, size_t n)
{
    if (n && !samples) return STRATA_EINVAL;
    while (n) {
        size_t k = n < TSDB_WAL_MAX_SAMPLES_PER_RECORD ? n : TSDB_WAL_MAX_SAMPLES_PER_RECORD;
        /* worst case: type, count, then 10+10+8 bytes a sample */
        int rc = batch_reserve(b, TSDB_WAL_RECORD_HEADER_SIZE + 1 + 10 + k * 28);
        if (rc) return rc;
        uint8_t *rec = b->buf + b->len, *p = rec + TSDB_WAL_RECORD_HEADER_SIZE;
        *p++ = TSDB_WAL_REC_SAMPLES;
        p = enc_put_uvarint(p, k);
        uint64_t pref = 0, pt = 0;
        for (size_t i = 0; i < k; i++) {
            uint64_t ref = samples[i].ref, t = (uint64_t)samples[i].t, vb;
            memcpy(&vb, &samples[i].v, 8);
            if (i == 0) {
                p = enc_put_uvarint(p, ref);
                p = enc_put_uvarint(p, enc_zigzag_u(t));
            } else {
                p = enc_put_uvarint(p, enc_zigzag_u(ref - pref));
                p = enc_put_uvarint(p, enc_zigzag_u(t - pt));
            }
            p = enc_put_u64le(p, vb);
            pref = ref;
            pt = t;
        }
        size_t body = (size_t)(p - (rec + TSDB_WAL_RECORD_HEADER_SIZE));
        record_seal(rec, (uint32_t)body);
        b->len += TSDB_WAL_RECORD_HEADER_SIZE + body;
        samples += k;
        n -= k;
    }
    return 0;
}

/* ---- replay ------------------------------------------------------------- */

typedef struct replay_scratch {
    tsdb_label_t *labels;
    size_t labels_cap;
    char *chars;
    size_t chars_cap;
    tsdb_wal_sample_t *samples;
    size_t samples_cap;
} replay_scratch_t;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t c = need < 64 ? 64 : need;
    void *np = realloc(*p, c * elem);
    if (!np) return STRATA_ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

static void scratch_free(replay_scratch_t *s)
{
    free(s->labels);
    free(s->chars);
    free(s->samples);
}

/* Decodes one CRC-checked record body.  A malformed body sets *why (and
 * returns 0); a negative return is a callback or allocation failure. */
static int decode_record(const uint8_t *body, size_t len, const tsdb_wal_replay_ops_t *ops,
                         tsdb_wal_replay_stats_t *st, replay_scratch_t *sc, const char **why)
{
    const uint8_t *p = body + 1, *end = body + len;
    uint64_t ref, n;
    int rc;
    switch (body[0]) {
    case TSDB_WAL_REC_SERIES: {
        if (enc_get_uvarint(&p, end, &ref) || enc_get_uvarint(&p, end, &n) || n > (uint64_t)(end - p) / 2) {
            *why = "bad series record";
            return 0;
        }
        if ((rc = grow((void **)&sc->labels, &sc->labels_cap, (size_t)n, sizeof *sc->labels)) ||
            (rc = grow((void **)&sc->chars, &sc->chars_cap, len + 2 * (size_t)n, 1)))
            return rc;
        char *c = sc->chars;
        for (uint64_t i = 0; i < n; i++) {
            for (int part = 0; part < 2; part++) {
                uint64_t sl;
                if (enc_get_uvarint(&p, end, &sl) || sl > (uint64_t)(end - p) || memchr(p, 0, (size_t)sl)) {
                    *why = "bad series record";
                    return 0;
                }
                memcpy(c, p, (size_t)sl);
                c[sl] = 0;
                if (part == 0)
                    sc->labels[i].name = c;
                else
                    sc->labels[i].value = c;
                c += sl + 1;
                p += sl;
            }
        }
        if (p != end) {
            *why = "bad series record";
            return 0;
        }
        if (ops && ops->on_series && (rc = ops->on_series(ops->ctx, ref, sc->labels, (size_t)n)))
            return rc < 0 ? rc : STRATA_EINVAL;
        st->series++;
        return 0;
    }
    case TSDB_WAL_REC_SAMPLES: {
        if (enc_get_uvarint(&p, end, &n) || n == 0 || n > (uint64_t)(end - p) / 10) {
            *why = "bad samples record";
            return 0;
        }
        if ((rc = grow((void **)&sc->samples, &sc->samples_cap, (size_t)n, sizeof *sc->samples))) return rc;
        uint64_t r = 0, t = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t a, b;
            if (enc_get_uvarint(&p, end, &a) || enc_get_uvarint(&p, end, &b) || end - p < 8) {
                *why = "bad samples record";
                return 0;
            }
            r = i == 0 ? a : r + enc_unzigzag_u(a);
            t = i == 0 ? enc_unzigzag_u(b) : t + enc_unzigzag_u(b);
            uint64_t vb = enc_get_u64le(p);
            p += 8;
            sc->samples[i].ref = r;
            sc->samples[i].t = (int64_t)t;
            memcpy(&sc->samples[i].v, &vb, 8);
        }
        if (p != end) {
            *why = "bad samples record";
            return 0;
        }
        if (ops && ops->on_samples && (rc = ops->on_samples(ops->ctx, sc->samples, (size_t)n)))
            return rc < 0 ? rc : STRATA_EINVAL;
        st->samples += n;
        return 0;
    }
    default: *why = "unknown record type"; return 0;
    }
}

int tsdb_wal_replay_buffer(const uint8_t *buf, size_t len, const tsdb_wal_replay_ops_t *ops,
                           tsdb_wal_replay_stats_t *stats, size_t *valid_len, const char **why)
{
    tsdb_wal_replay_stats_t local = { 0 };
    tsdb_wal_replay_stats_t *st = stats ? stats : &local;
    replay_scratch_t sc = { 0 };
    const char *bad = NULL;
    size_t off = 0;
    int rc = 0;

    if (len == 0) goto out; /* a segment created just before a crash */
    if (len < TSDB_WAL_HEADER_SIZE) {
        bad = "torn file header";
        goto out;
    }
    if (enc_get_u32le(buf) != TSDB_WAL_MAGIC || buf[5] > TSDB_WAL_KIND_CHECKPOINT || buf[6] || buf[7]) {
        bad = "bad file header";
        goto out;
    }
    if (buf[4] != TSDB_WAL_VERSION) {
        /* A well-formed header from another version is not damage: cutting it
         * would destroy a newer strata's log.  Refuse instead. */
        strata_error("unsupported wal version", "version=%u want=%u", buf[4], TSDB_WAL_VERSION);
        rc = STRATA_EVERSION;
        goto out;
    }
    off = TSDB_WAL_HEADER_SIZE;
    while (off < len) {
        if (len - off < TSDB_WAL_RECORD_HEADER_SIZE) {
            bad = "torn record header";
            break;
        }
        uint32_t rlen = enc_get_u32le(buf + off), crc = enc_get_u32le(buf + off + 4);
        if (rlen == 0 || rlen > TSDB_WAL_MAX_RECORD_BYTES) {
            bad = "bad record length";
            break;
        }
        if (rlen > len - off - TSDB_WAL_RECORD_HEADER_SIZE) {
            bad = "torn record";
            break;
        }
        const uint8_t *body = buf + off + TSDB_WAL_RECORD_HEADER_SIZE;
        if (tsdb_crc32c(tsdb_crc32c(0, buf + off, 4), body, rlen) != crc) {
            bad = "crc mismatch";
            break;
        }
        if ((rc = decode_record(body, rlen, ops, st, &sc, &bad)) || bad) break;
        st->records++;
        off += TSDB_WAL_RECORD_HEADER_SIZE + rlen;
    }
out:
    scratch_free(&sc);
    if (bad && !rc) {
        st->corrupt_records++;
        st->truncated_bytes += len - off;
    }
    if (valid_len) *valid_len = rc ? off : (bad ? off : len);
    if (why) *why = rc ? NULL : bad;
    return rc;
}

/* Replays one file.  *valid_len < *file_len means it is damaged from there on. */
static int replay_file(const tsdb_wal_t *w, const char *name, const tsdb_wal_replay_ops_t *ops,
                       tsdb_wal_replay_stats_t *st, size_t *valid_len, size_t *file_len, const char **why)
{
    int fd = openat(w->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        strata_error("wal open failed", "file=%s/%s err=\"%s\"", w->path, name, strerror(e));
        return strata_errno_to_err(e);
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        strata_error("wal stat failed", "file=%s/%s err=\"%s\"", w->path, name, strerror(e));
        return strata_errno_to_err(e);
    }
    /* Read, not mmap: a media error must come back as EIO, not SIGBUS. */
    size_t len = (size_t)sb.st_size, got = 0;
    *file_len = len;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return STRATA_ENOMEM;
    }
    while (got < len) {
        ssize_t n = pread(fd, buf + got, len - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            strata_error("wal read failed", "file=%s/%s offset=%zu err=\"%s\"", w->path, name, got,
                         strerror(e));
            free(buf);
            close(fd);
            return STRATA_EIO;
        }
        got += (size_t)n;
    }
    close(fd);
    int rc = tsdb_wal_replay_buffer(buf, len, ops, st, valid_len, why);
    free(buf);
    return rc;
}

/* ---- directory scan ----------------------------------------------------- */

typedef struct wal_files {
    uint64_t *segs;
    size_t nsegs;
    uint64_t *ckpts;
    size_t nckpts;
} wal_files_t;

static int parse_num(const char *s, uint64_t *out)
{
    if (!*s || strlen(s) > 19) return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int push_u64(uint64_t **arr, size_t *n, uint64_t v)
{
    uint64_t *na = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!na) return STRATA_ENOMEM;
    na[(*n)++] = v;
    *arr = na;
    return 0;
}

/* Lists segments and checkpoints (sorted); removes leftover temp files when
 * remove_tmp is set (only at open: a concurrent checkpoint owns its own). */
static int scan_dir(const tsdb_wal_t *w, wal_files_t *f, int remove_tmp)
{
    memset(f, 0, sizeof *f);
    /* A fresh open file description: a dup() would share its read position
     * with any other scan running at the same time. */
    int dfd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return strata_io_error("wal directory list failed", w->path);
    DIR *d = fdopendir(dfd);
    if (!d) {
        int rc = strata_io_error("wal directory list failed", w->path);
        close(dfd);
        return rc;
    }
    struct dirent *de;
    int rc = 0;
    while (!rc && (de = readdir(d))) {
        const char *n = de->d_name;
        uint64_t v;
        size_t nl = strlen(n);
        if (nl > 4 && !strcmp(n + nl - 4, ".tmp")) {
            if (remove_tmp && unlinkat(w->dirfd, n, 0) == 0)
                strata_info("wal removed leftover temp file", "file=%s/%s", w->path, n);
        } else if (!parse_num(n, &v)) {
            char canon[32];
            seg_name(canon, sizeof canon, v);
            if (!strcmp(canon, n)) rc = push_u64(&f->segs, &f->nsegs, v);
        } else if (!strncmp(n, "checkpoint.", 11) && !parse_num(n + 11, &v)) {
            char canon[64];
            ckpt_name(canon, sizeof canon, v);
            if (!strcmp(canon, n)) rc = push_u64(&f->ckpts, &f->nckpts, v);
        }
    }
    closedir(d);
    if (f->nsegs) qsort(f->segs, f->nsegs, sizeof *f->segs, cmp_u64);
    if (f->nckpts) qsort(f->ckpts, f->nckpts, sizeof *f->ckpts, cmp_u64);
    return rc;
}

static void files_free(wal_files_t *f)
{
    free(f->segs);
    free(f->ckpts);
}

static uint64_t file_size_at(const tsdb_wal_t *w, const char *name)
{
    struct stat sb;
    return fstatat(w->dirfd, name, &sb, 0) == 0 ? (uint64_t)sb.st_size : 0;
}

static void remove_file(const tsdb_wal_t *w, const char *name)
{
    if (unlinkat(w->dirfd, name, 0) != 0 && errno != ENOENT)
        strata_warn("wal could not remove file", "file=%s/%s err=\"%s\"", w->path, name, strerror(errno));
}

/* Deletes checkpoints and segments older than seg. */
static void remove_older_than(const tsdb_wal_t *w, const wal_files_t *f, uint64_t seg)
{
    char name[64];
    for (size_t i = 0; i < f->nckpts && f->ckpts[i] < seg; i++) {
        ckpt_name(name, sizeof name, f->ckpts[i]);
        remove_file(w, name);
    }
    for (size_t i = 0; i < f->nsegs && f->segs[i] < seg; i++) {
        seg_name(name, sizeof name, f->segs[i]);
        remove_file(w, name);
    }
}

/* ---- writing ------------------------------------------------------------ */

/* Creates segment seg with its header; returns the fd or a negative code. */
static int create_segment(tsdb_wal_t *w, uint64_t seg)
{
    char name[32];
    uint8_t h[TSDB_WAL_HEADER_SIZE];
    seg_name(name, sizeof name, seg);
    wal_header(h, TSDB_WAL_KIND_SEGMENT);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : pwrite_all(fd, h, sizeof h, 0);
    if (e) {
        strata_error("wal segment create failed", "file=%s/%s err=\"%s\"", w->path, name, strerror(e));
        if (fd >= 0) {
            close(fd);
            unlinkat(w->dirfd, name, 0);
        }
        return strata_errno_to_err(e);
    }
    /* The new name must be durable before anything acknowledged lands in it. */
    int rc = strata_fsync_dir(w->path);
    if (rc) {
        close(fd);
        unlinkat(w->dirfd, name, 0);
        return rc;
    }
    return fd;
}

/* With the lock held: fsync up to `target` (group commit, see top). */
static int sync_to_locked(tsdb_wal_t *w, uint64_t target)
{
    while (w->synced < target) {
        if (w->err) return w->err;
        if (w->syncing) {
            pthread_cond_wait(&w->sync_cv, &w->mu);
            continue;
        }
        w->syncing = 1;
        uint64_t upto = w->written;
        int fd = w->fd;
        pthread_mutex_unlock(&w->mu);
        int e = wal_fsync_fd(w, fd);
        pthread_mutex_lock(&w->mu);
        w->syncing = 0;
        if (e) {
            strata_error("wal fsync failed", "segment=%08" PRIu64 " err=\"%s\"", w->seg, strerror(e));
            w->err = STRATA_EIO;
        } else if (upto > w->synced) {
            w->synced = upto;
        }
        pthread_cond_broadcast(&w->sync_cv);
    }
    return 0;
}

/* With the lock held: fsync and close the current segment, start seg+1. */
static int roll_locked(tsdb_wal_t *w)
{
    while (w->syncing) pthread_cond_wait(&w->sync_cv, &w->mu);
    if (w->err) return w->err;
    int e = wal_fsync_fd(w, w->fd);
    if (e) {
        strata_error("wal fsync failed", "segment=%08" PRIu64 " err=\"%s\"", w->seg, strerror(e));
        w->err = STRATA_EIO;
        pthread_cond_broadcast(&w->sync_cv);
        return w->err;
    }
    w->synced = w->written;
    pthread_cond_broadcast(&w->sync_cv);
    int fd = create_segment(w, w->seg + 1);
    if (fd < 0) return fd; /* keep appending to the old segment */
    close(w->fd);
    w->fd = fd;
    w->seg++;
    w->seg_size = TSDB_WAL_HEADER_SIZE;
    return 0;
}

/* With the lock held: appends buf to the current segment, all or nothing. */
static int write_locked(tsdb_wal_t *w, const uint8_t *buf, size_t len)
{
    int e = pwrite_all(w->fd, buf, len, w->seg_size);
    if (!e) {
        w->seg_size += len;
        w->written += len;
        return 0;
    }
    int rc = strata_errno_to_err(e);
    strata_error("wal write failed", "segment=%08" PRIu64 " offset=%" PRIu64 " bytes=%zu err=\"%s\"", w->seg,
                 w->seg_size, len, strerror(e));
    /* Cut off whatever part of the batch did land: a torn record followed by
     * later good ones would make replay drop those good ones. */
    if (ftruncate(w->fd, (off_t)w->seg_size) != 0) {
        strata_error("wal cannot cut a failed write, log is now read-only",
                     "segment=%08" PRIu64 " err=\"%s\"", w->seg, strerror(errno));
        w->err = STRATA_EIO;
    }
    return rc;
}

int tsdb_wal_append(tsdb_wal_t *w, const tsdb_wal_batch_t *b)
{
    if (!b->len) return 0;
    pthread_mutex_lock(&w->mu);
    int rc = w->closing ? STRATA_ECLOSED : w->err;
    if (!rc && w->seg_size > TSDB_WAL_HEADER_SIZE && w->seg_size + b->len > w->opts.segment_bytes)
        rc = roll_locked(w);
    if (!rc) rc = write_locked(w, b->buf, b->len);
    if (!rc && w->opts.fsync == TSDB_FSYNC_ALWAYS) rc = sync_to_locked(w, w->written);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int tsdb_wal_sync(tsdb_wal_t *w)
{
    pthread_mutex_lock(&w->mu);
    int rc = w->err ? w->err : sync_to_locked(w, w->written);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int tsdb_wal_rotate(tsdb_wal_t *w, uint64_t *seg)
{
    pthread_mutex_lock(&w->mu);
    int rc = w->err ? w->err : roll_locked(w);
    if (!rc && seg) *seg = w->seg;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int tsdb_wal_checkpoint(tsdb_wal_t *w, uint64_t seg, const tsdb_wal_batch_t *state)
{
    pthread_mutex_lock(&w->mu);
    uint64_t cur = w->seg;
    pthread_mutex_unlock(&w->mu);
    if (seg == 0 || seg > cur) return STRATA_EINVAL;

    char tmp[80], final[64];
    ckpt_name(final, sizeof final, seg);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    uint8_t h[TSDB_WAL_HEADER_SIZE];
    wal_header(h, TSDB_WAL_KIND_CHECKPOINT);

    int fd = openat(w->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : pwrite_all(fd, h, sizeof h, 0);
    if (!e && state && state->len) e = pwrite_all(fd, state->buf, state->len, sizeof h);
    if (!e) e = wal_fsync_fd(w, fd);
    if (fd >= 0 && close(fd) != 0 && !e) e = errno;
    if (!e && renameat(w->dirfd, tmp, w->dirfd, final) != 0) e = errno;
    if (e) {
        strata_error("wal checkpoint failed", "file=%s/%s err=\"%s\"", w->path, tmp, strerror(e));
        unlinkat(w->dirfd, tmp, 0);
        return strata_errno_to_err(e);
    }
    /* The rename must be durable before the files it replaces disappear. */
    int rc = strata_fsync_dir(w->path);
    if (rc) return rc;

    wal_files_t f;
    if ((rc = scan_dir(w, &f, 0)) == 0) {
        remove_older_than(w, &f, seg);
        strata_fsync_dir(w->path);
    }
    files_free(&f);
    strata_info("wal checkpoint written", "file=%s/%s bytes=%zu", w->path, final,
                (state ? state->len : 0) + sizeof h);
    return 0;
}

uint64_t tsdb_wal_disk_bytes(tsdb_wal_t *w)
{
    wal_files_t f;
    uint64_t total = 0;
    char name[64];
    if (scan_dir(w, &f, 0) == 0) {
        for (size_t i = 0; i < f.nsegs; i++) {
            seg_name(name, sizeof name, f.segs[i]);
            total += file_size_at(w, name);
        }
        for (size_t i = 0; i < f.nckpts; i++) {
            ckpt_name(name, sizeof name, f.ckpts[i]);
            total += file_size_at(w, name);
        }
    }
    files_free(&f);
    return total;
}

/* ---- open / close ------------------------------------------------------- */

static void *interval_thread(void *arg)
{
    tsdb_wal_t *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->closing) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (int64_t)w->opts.fsync_interval_ms * 1000000;
        ts.tv_sec += (time_t)(ns / 1000000000);
        ts.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&w->bg_cv, &w->mu, &ts);
        if (w->closing) break;
        /* If a sync is already in flight, it covers most of it; the rest waits a tick. */
        if (!w->err && !w->syncing && w->written > w->synced) sync_to_locked(w, w->written);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void wal_free(tsdb_wal_t *w)
{
    if (w->fd >= 0) close(w->fd);
    if (w->dirfd >= 0) close(w->dirfd);
    pthread_cond_destroy(&w->bg_cv);
    pthread_cond_destroy(&w->sync_cv);
    pthread_mutex_destroy(&w->mu);
    free(w->path);
    free(w);
}

/* Cuts the log at segment index i (of f->segs), byte offset keep: truncates
 * that segment and deletes every later one. */
static int cut_log(tsdb_wal_t *w, const wal_files_t *f, size_t i, size_t keep, tsdb_wal_replay_stats_t *st)
{
    char name[32];
    seg_name(name, sizeof name, f->segs[i]);
    int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)keep) != 0 || fsync(fd) != 0) {
        int e = errno;
        strata_error("wal cannot truncate damaged segment", "file=%s/%s err=\"%s\"", w->path, name,
                     strerror(e));
        if (fd >= 0) close(fd);
        return strata_errno_to_err(e);
    }
    close(fd);
    for (size_t j = i + 1; j < f->nsegs; j++) {
        seg_name(name, sizeof name, f->segs[j]);
        st->truncated_bytes += file_size_at(w, name);
        remove_file(w, name);
    }
    return strata_fsync_dir(w->path);
}

/* Replays checkpoint and segments, repairing a damaged tail; on return
 * *last is the segment to continue writing (0 = none left) and *last_len
 * its valid length. */
static int replay_all(tsdb_wal_t *w, const tsdb_wal_replay_ops_t *ops, tsdb_wal_replay_stats_t *st,
                      uint64_t *first_seg, uint64_t *last, size_t *last_len)
{
    wal_files_t f;
    char name[64];
    const char *why = NULL;
    size_t valid = 0, flen = 0;
    int rc = scan_dir(w, &f, 1);
    if (rc) goto out;
    *last = 0;
    *first_seg = 1;

    uint64_t ck = f.nckpts ? f.ckpts[f.nckpts - 1] : 0;
    if (ck) {
        /* A crash between a checkpoint's rename and the removal of what it
         * replaces leaves older files behind; they are covered by it. */
        remove_older_than(w, &f, ck);
        *first_seg = ck;
        ckpt_name(name, sizeof name, ck);
        if ((rc = replay_file(w, name, ops, st, &valid, &flen, &why))) goto out;
        if (why) /* media damage: the checkpoint was renamed into place whole */
            strata_error("wal checkpoint corrupt, replaying what precedes the damage",
                         "file=%s/%s offset=%zu reason=\"%s\" lost_bytes=%zu", w->path, name, valid, why,
                         flen - valid);
    }
    size_t i = 0;
    while (i < f.nsegs && f.segs[i] < ck) i++;
    uint64_t expect = ck ? ck : (i < f.nsegs ? f.segs[i] : 1);
    for (; i < f.nsegs; i++) {
        seg_name(name, sizeof name, f.segs[i]);
        if (f.segs[i] != expect) {
            /* A missing segment: what follows may refer to series it defined. */
            uint64_t lost = 0;
            for (size_t j = i; j < f.nsegs; j++) {
                char n2[32];
                seg_name(n2, sizeof n2, f.segs[j]);
                lost += file_size_at(w, n2);
                remove_file(w, n2);
            }
            st->corrupt_records++;
            st->truncated_bytes += lost;
            strata_error("wal segment missing, dropping the segments after it",
                         "dir=%s missing=%08" PRIu64 " dropped_bytes=%" PRIu64, w->path, expect, lost);
            rc = strata_fsync_dir(w->path);
            goto out;
        }
        if ((rc = replay_file(w, name, ops, st, &valid, &flen, &why))) goto out;
        *last = f.segs[i];
        *last_len = valid;
        if (why) {
            uint64_t before = st->truncated_bytes;
            rc = cut_log(w, &f, i, valid, st);
            strata_warn(
                "wal damaged, cut off at the first bad record",
                "file=%s/%s offset=%zu reason=\"%s\" truncated_bytes=%" PRIu64 " later_segments_dropped=%zu",
                w->path, name, valid, why, st->truncated_bytes - before + (flen - valid), f.nsegs - i - 1);
            goto out;
        }
        expect++;
    }
out:
    files_free(&f);
    return rc;
}

int tsdb_wal_open(const char *dir, const tsdb_wal_options_t *opts, const tsdb_wal_replay_ops_t *ops,
                  tsdb_wal_replay_stats_t *stats, tsdb_wal_t **out)
{
    tsdb_wal_replay_stats_t local;
    tsdb_wal_replay_stats_t *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    *out = NULL;
    if (!dir || !opts) return STRATA_EINVAL;

    tsdb_wal_t *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->fd = w->dirfd = -1;
    w->opts = *opts;
    if (!w->opts.segment_bytes) w->opts.segment_bytes = WAL_DEFAULT_SEGMENT_BYTES;
    if (w->opts.fsync_interval_ms <= 0) w->opts.fsync_interval_ms = WAL_DEFAULT_INTERVAL_MS;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->sync_cv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->bg_cv, &ca);
    pthread_condattr_destroy(&ca);

    int rc = 0;
    size_t plen = strlen(dir) + 5;
    if (!(w->path = malloc(plen))) {
        rc = STRATA_ENOMEM;
        goto fail;
    }
    snprintf(w->path, plen, "%s/wal", dir);
    int created = 0;
    if ((mkdir(dir, 0755) != 0 && errno != EEXIST) ||
        (!(created = mkdir(w->path, 0755) == 0) && errno != EEXIST) ||
        (w->dirfd = open(w->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        int e = errno;
        strata_error("wal directory unusable", "dir=%s err=\"%s\"", w->path, strerror(e));
        rc = strata_errno_to_err(e);
        goto fail;
    }

    if (created) { /* make the new wal/ entry itself durable */
        int pfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd >= 0) {
            fsync(pfd);
            close(pfd);
        }
    }

    uint64_t first = 1, last = 0;
    size_t last_len = 0;
    if ((rc = replay_all(w, ops, st, &first, &last, &last_len))) goto fail;

    if (last) {
        char name[32];
        seg_name(name, sizeof name, last);
        w->fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
        if (w->fd < 0) {
            int e = errno;
            strata_error("wal segment open failed", "file=%s/%s err=\"%s\"", w->path, name, strerror(e));
            rc = strata_errno_to_err(e);
            goto fail;
        }
        w->seg = last;
        w->seg_size = last_len;
        if (last_len < TSDB_WAL_HEADER_SIZE) { /* empty or cut at 0: give it its header back */
            uint8_t h[TSDB_WAL_HEADER_SIZE];
            wal_header(h, TSDB_WAL_KIND_SEGMENT);
            int e = ftruncate(w->fd, 0) != 0 ? errno : pwrite_all(w->fd, h, sizeof h, 0);
            if (e) {
                strata_error("wal segment header write failed", "file=%s/%s err=\"%s\"", w->path, name,
                             strerror(e));
                rc = strata_errno_to_err(e);
                goto fail;
            }
            w->seg_size = TSDB_WAL_HEADER_SIZE;
        }
    } else {
        int fd = create_segment(w, first);
        if (fd < 0) {
            rc = fd;
            goto fail;
        }
        w->fd = fd;
        w->seg = first;
        w->seg_size = TSDB_WAL_HEADER_SIZE;
    }

    if (w->opts.fsync == TSDB_FSYNC_INTERVAL) {
        if (pthread_create(&w->bg, NULL, interval_thread, w) != 0) {
            rc = STRATA_ENOMEM;
            goto fail;
        }
        w->has_bg = 1;
    }
    if (st->records || st->corrupt_records)
        strata_info("wal replayed",
                    "dir=%s records=%" PRIu64 " series=%" PRIu64 " samples=%" PRIu64 " corrupt=%" PRIu64
                    " truncated_bytes=%" PRIu64 " segment=%08" PRIu64,
                    w->path, st->records, st->series, st->samples, st->corrupt_records, st->truncated_bytes,
                    w->seg);
    *out = w;
    return 0;
fail:
    wal_free(w);
    return rc;
}

void tsdb_wal_close(tsdb_wal_t *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_broadcast(&w->bg_cv);
    pthread_mutex_unlock(&w->mu);
    if (w->has_bg) pthread_join(w->bg, NULL);

    pthread_mutex_lock(&w->mu);
    while (w->syncing) pthread_cond_wait(&w->sync_cv, &w->mu);
    if (!w->err && w->written > w->synced) {
        int e = wal_fsync_fd(w, w->fd);
        if (e)
            strata_error("wal fsync at close failed", "segment=%08" PRIu64 " err=\"%s\"", w->seg,
                         strerror(e));
    }
    pthread_mutex_unlock(&w->mu);
    wal_free(w);
}
