/*
 * wal.c: tsdb's write-ahead log: segment files of CRC32C-framed records,
 * replay that skips damaged stretches and resynchronises, group-committed
 * appends, rotation and checkpoints.  The byte format is in tsdb/format.h and docs/storage.md.
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
    uint64_t floor; /* oldest segment a cursor needs (retain); UINT64_MAX: none */
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

static int batch_add_samples(tsdb_wal_batch_t *b, uint8_t type, const tsdb_wal_sample_t *samples, size_t n)
{
    if (n && !samples) return STRATA_EINVAL;
    while (n) {
        size_t k = n < TSDB_WAL_MAX_SAMPLES_PER_RECORD ? n : TSDB_WAL_MAX_SAMPLES_PER_RECORD;
        /* worst case: type, count, then 10+10+8 bytes a sample */
        int rc = batch_reserve(b, TSDB_WAL_RECORD_HEADER_SIZE + 1 + 10 + k * 28);
        if (rc) return rc;
        uint8_t *rec = b->buf + b->len, *p = rec + TSDB_WAL_RECORD_HEADER_SIZE;
        *p++ = type;
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

int tsdb_wal_batch_add_samples(tsdb_wal_batch_t *b, const tsdb_wal_sample_t *samples, size_t n)
{
    return batch_add_samples(b, TSDB_WAL_REC_SAMPLES, samples, n);
}

int tsdb_wal_batch_add_copies(tsdb_wal_batch_t *b, const tsdb_wal_sample_t *samples, size_t n)
{
    return batch_add_samples(b, TSDB_WAL_REC_SAMPLES_COPY, samples, n);
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

/* An open-addressing map from series ref to a span of `bytes` (a stored
 * SERIES record body, used by the checkpoint fallback; unused by the set of
 * refs seen).  Slots hold ref + 1 with `used` marking occupancy. */
typedef struct refmap {
    uint64_t *keys;
    size_t *off, *len;
    uint8_t *used;
    size_t cap, n;
    int with_vals; /* off/len kept (the fallback); the set of seen refs has none */
    uint8_t *bytes;
    size_t bytes_len, bytes_cap;
} refmap_t;

static void refmap_free(refmap_t *m)
{
    int with_vals = m->with_vals;
    free(m->keys);
    free(m->off);
    free(m->len);
    free(m->used);
    free(m->bytes);
    memset(m, 0, sizeof *m);
    m->with_vals = with_vals;
}

static size_t refmap_slot(const refmap_t *m, uint64_t ref)
{
    uint64_t h = ref * 0x9E3779B97F4A7C15ull;
    size_t i = (size_t)(h >> 17) & (m->cap - 1);
    while (m->used[i] && m->keys[i] != ref) i = (i + 1) & (m->cap - 1);
    return i;
}

static int refmap_find(const refmap_t *m, uint64_t ref, size_t *slot)
{
    if (!m->cap) return 0;
    size_t i = refmap_slot(m, ref);
    if (slot) *slot = i;
    return m->used[i];
}

/* Inserts or overwrites ref; the value is body[0..len) (copied) when body is set. */
static int refmap_put(refmap_t *m, uint64_t ref, const uint8_t *body, size_t len)
{
    if ((m->n + 1) * 2 > m->cap) {
        refmap_t nm = *m;
        nm.cap = m->cap ? m->cap * 2 : 256;
        nm.n = 0;
        nm.keys = malloc(nm.cap * sizeof *nm.keys);
        nm.off = m->with_vals ? malloc(nm.cap * sizeof *nm.off) : NULL;
        nm.len = m->with_vals ? malloc(nm.cap * sizeof *nm.len) : NULL;
        nm.used = calloc(nm.cap, 1);
        if (!nm.keys || !nm.used || (m->with_vals && (!nm.off || !nm.len))) {
            free(nm.keys);
            free(nm.off);
            free(nm.len);
            free(nm.used);
            return STRATA_ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->used[i]) continue;
            size_t j = refmap_slot(&nm, m->keys[i]);
            nm.used[j] = 1;
            nm.keys[j] = m->keys[i];
            if (m->with_vals) {
                nm.off[j] = m->off[i];
                nm.len[j] = m->len[i];
            }
            nm.n++;
        }
        free(m->keys);
        free(m->off);
        free(m->len);
        free(m->used);
        *m = nm;
    }
    size_t i = refmap_slot(m, ref);
    if (!m->used[i]) {
        m->used[i] = 1;
        m->keys[i] = ref;
        m->n++;
    }
    if (!m->with_vals) return 0;
    m->off[i] = m->len[i] = 0;
    if (body) {
        int rc = grow((void **)&m->bytes, &m->bytes_cap, m->bytes_len + len, 1);
        if (rc) return rc;
        memcpy(m->bytes + m->bytes_len, body, len);
        m->off[i] = m->bytes_len;
        m->len[i] = len;
        m->bytes_len += len;
    }
    return 0;
}

/* One replay across files: the refs whose SERIES record has been delivered
 * (a sample is delivered only after its series), and, when a checkpoint was
 * damaged, the series records of the files it was made from. */
typedef struct replay_ctx {
    const tsdb_wal_replay_ops_t *ops;
    tsdb_wal_replay_stats_t *st;
    replay_scratch_t sc;
    refmap_t seen;
    refmap_t fallback;
    int collect; /* reading fallback sources: keep SERIES bodies, deliver nothing */
    /* each damaged region [off, end) of the current file, in order */
    int (*on_damage)(void *dctx, size_t off, size_t end, const char *why);
    void *dctx;
} replay_ctx_t;

static void ctx_free(replay_ctx_t *c)
{
    scratch_free(&c->sc);
    refmap_free(&c->seen);
    refmap_free(&c->fallback);
}

/* Decodes one CRC-checked record body.  A malformed body sets *why (and
 * returns 0); a negative return is a callback or allocation failure. */
static int decode_record(const uint8_t *body, size_t len, replay_ctx_t *c, const char **why)
{
    const tsdb_wal_replay_ops_t *ops = c->ops;
    tsdb_wal_replay_stats_t *st = c->st;
    replay_scratch_t *sc = &c->sc;
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
        char *ch = sc->chars;
        for (uint64_t i = 0; i < n; i++) {
            for (int part = 0; part < 2; part++) {
                uint64_t sl;
                if (enc_get_uvarint(&p, end, &sl) || sl > (uint64_t)(end - p) || memchr(p, 0, (size_t)sl)) {
                    *why = "bad series record";
                    return 0;
                }
                memcpy(ch, p, (size_t)sl);
                ch[sl] = 0;
                if (part == 0)
                    sc->labels[i].name = ch;
                else
                    sc->labels[i].value = ch;
                ch += sl + 1;
                p += sl;
            }
        }
        if (p != end) {
            *why = "bad series record";
            return 0;
        }
        if (c->collect) return refmap_put(&c->fallback, ref, body, len); /* a later record wins */
        if ((rc = refmap_put(&c->seen, ref, NULL, 0))) return rc;
        if (ops && ops->on_series && (rc = ops->on_series(ops->ctx, ref, sc->labels, (size_t)n)))
            return rc < 0 ? rc : STRATA_EINVAL;
        st->series++;
        return 0;
    }
    case TSDB_WAL_REC_SAMPLES:
    case TSDB_WAL_REC_SAMPLES_COPY: {
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
        if (c->collect) return 0;
        if (body[0] == TSDB_WAL_REC_SAMPLES_COPY && ops && ops->skip_copies) return 0;
        /* A sample whose ref no SERIES record has defined yet is counted (the
         * head drops it); a damaged checkpoint's source files may still
         * define it, and then that series is delivered first. */
        for (size_t i = 0; i < (size_t)n; i++) {
            uint64_t sref = sc->samples[i].ref;
            size_t slot;
            if (refmap_find(&c->seen, sref, NULL)) continue;
            if (refmap_find(&c->fallback, sref, &slot) && c->fallback.len[slot]) {
                const char *bad = NULL;
                size_t fo = c->fallback.off[slot], fl = c->fallback.len[slot];
                c->fallback.len[slot] = 0; /* delivered once */
                if ((rc = decode_record(c->fallback.bytes + fo, fl, c, &bad))) return rc;
                if (!bad) {
                    st->fallback_series++;
                    continue;
                }
            }
            st->orphan_samples++;
        }
        if (ops && ops->on_samples && (rc = ops->on_samples(ops->ctx, sc->samples, (size_t)n)))
            return rc < 0 ? rc : STRATA_EINVAL;
        st->samples += n;
        return 0;
    }
    default: *why = "unknown record type"; return 0;
    }
}

/* A quick test, implied by a successful decode, of whether body[0..len) can
 * be a record: a samples record's length must fit its count (10 to 28 bytes a
 * sample), a series record's label strings must end exactly at its end.  It
 * costs a few varints, so resynchronising over garbage rarely runs a CRC over
 * a long bogus length. */
static int body_plausible(const uint8_t *body, size_t len)
{
    const uint8_t *p = body + 1, *end = body + len;
    uint64_t n, v;
    if (body[0] == TSDB_WAL_REC_SAMPLES || body[0] == TSDB_WAL_REC_SAMPLES_COPY) {
        if (enc_get_uvarint(&p, end, &n) || n == 0) return 0;
        size_t rest = (size_t)(end - p);
        return n <= rest / 10 && rest <= n * 28;
    }
    if (enc_get_uvarint(&p, end, &v) || enc_get_uvarint(&p, end, &n) || n > (uint64_t)(end - p) / 2) return 0;
    for (uint64_t i = 0; i < 2 * n; i++) {
        if (enc_get_uvarint(&p, end, &v) || v > (uint64_t)(end - p)) return 0;
        p += v;
    }
    return p == end;
}

/* Is there a whole record at off whose length is plausible and whose CRC
 * checks?  Returns NULL and its body length, or why not. */
static const char *frame_at(const uint8_t *buf, size_t len, size_t off, uint32_t *rlen_out)
{
    if (len - off < TSDB_WAL_RECORD_HEADER_SIZE) return "torn record header";
    uint32_t rlen = enc_get_u32le(buf + off), crc = enc_get_u32le(buf + off + 4);
    if (rlen == 0 || rlen > TSDB_WAL_MAX_RECORD_BYTES) return "bad record length";
    if (rlen > len - off - TSDB_WAL_RECORD_HEADER_SIZE) return "torn record";
    const uint8_t *body = buf + off + TSDB_WAL_RECORD_HEADER_SIZE;
    /* cheap test first: most garbage offsets end here during a resync */
    if (body[0] != TSDB_WAL_REC_SERIES && body[0] != TSDB_WAL_REC_SAMPLES &&
        body[0] != TSDB_WAL_REC_SAMPLES_COPY)
        return "unknown record type";
    if (!body_plausible(body, rlen))
        return body[0] == TSDB_WAL_REC_SERIES ? "bad series record" : "bad samples record";
    if (tsdb_crc32c(tsdb_crc32c(0, buf + off, 4), body, rlen) != crc) return "crc mismatch";
    *rlen_out = rlen;
    return NULL;
}

static int report_damage(replay_ctx_t *c, size_t off, size_t end, const char *why)
{
    c->st->corrupt_records++;
    c->st->skipped_bytes += end - off;
    return c->on_damage ? c->on_damage(c->dctx, off, end, why) : 0;
}

/* Replays one image with resynchronisation: a damaged stretch is skipped up to
 * the next offset holding a record that frames and checks, and reported once
 * through on_damage.  *good_end is the end of the last good record. */
static int replay_image(const uint8_t *buf, size_t len, replay_ctx_t *c, size_t *good_end,
                        const char **first_why)
{
    const char *bad = NULL;
    size_t off = 0, dstart = SIZE_MAX;
    const char *dwhy = NULL;
    int rc = 0;
    *good_end = 0;
    *first_why = NULL;

    if (len == 0) return 0; /* a segment created just before a crash */
    if (len < TSDB_WAL_HEADER_SIZE) {
        *first_why = "torn file header";
        return report_damage(c, 0, len, *first_why);
    }
    /* A header that fails its checks, in front of a record that frames and
     * passes its CRC as ours, is a flip in those 8 bytes: they
     * alone are the damage, and the file's records replay.  Otherwise a
     * garbled header leaves the file untrusted as a whole, and a well-formed
     * one of another version is a newer strata's log (cutting it would
     * destroy it): refused. */
    uint32_t rlen0 = 0;
    int framed = !frame_at(buf, len, TSDB_WAL_HEADER_SIZE, &rlen0);
    int hdr_ok = enc_get_u32le(buf) == TSDB_WAL_MAGIC && buf[5] <= TSDB_WAL_KIND_CHECKPOINT && !buf[6] &&
                 !buf[7];
    if (!hdr_ok && !framed) {
        *first_why = "bad file header";
        return report_damage(c, 0, len, *first_why);
    }
    if (hdr_ok && buf[4] != TSDB_WAL_VERSION && !framed) {
        strata_error("unsupported wal version", "version=%u want=%u", buf[4], TSDB_WAL_VERSION);
        return STRATA_EVERSION;
    }
    if (!hdr_ok || buf[4] != TSDB_WAL_VERSION) {
        *first_why = "bad file header";
        if ((rc = report_damage(c, 0, TSDB_WAL_HEADER_SIZE, *first_why))) return rc;
    }
    off = *good_end = TSDB_WAL_HEADER_SIZE;
    while (off < len) {
        uint32_t rlen = 0;
        const char *why = frame_at(buf, len, off, &rlen);
        if (why) {
            if (dstart == SIZE_MAX) {
                dstart = off;
                dwhy = why;
            }
            off++; /* resynchronise: try the next byte */
            continue;
        }
        if (dstart != SIZE_MAX) {
            if (!*first_why) *first_why = dwhy;
            if ((rc = report_damage(c, dstart, off, dwhy))) return rc;
            dstart = SIZE_MAX;
        }
        bad = NULL;
        if ((rc = decode_record(buf + off + TSDB_WAL_RECORD_HEADER_SIZE, rlen, c, &bad))) return rc;
        size_t next = off + TSDB_WAL_RECORD_HEADER_SIZE + rlen;
        if (bad) { /* framed and checked, yet malformed: skip exactly this record */
            if (!*first_why) *first_why = bad;
            if ((rc = report_damage(c, off, next, bad))) return rc;
        } else {
            c->st->records++;
            *good_end = next;
        }
        off = next;
    }
    if (dstart != SIZE_MAX) {
        if (!*first_why) *first_why = dwhy;
        rc = report_damage(c, dstart, len, dwhy);
    }
    return rc;
}

int tsdb_wal_replay_buffer(const uint8_t *buf, size_t len, const tsdb_wal_replay_ops_t *ops,
                           tsdb_wal_replay_stats_t *stats, size_t *valid_len, const char **why)
{
    tsdb_wal_replay_stats_t local = { 0 };
    replay_ctx_t c = { 0 };
    c.ops = ops;
    c.st = stats ? stats : &local;
    c.fallback.with_vals = 1;
    size_t good = 0;
    const char *w = NULL;
    int rc = replay_image(buf, len, &c, &good, &w);
    ctx_free(&c);
    if (valid_len) *valid_len = w ? good : len;
    if (why) *why = rc ? NULL : w;
    return rc;
}

/* Reads a whole file (pread, not mmap: a media error must come back as EIO,
 * not SIGBUS).  *out is malloc'd. */
static int read_whole(const tsdb_wal_t *w, const char *name, uint8_t **out, size_t *out_len)
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
    size_t len = (size_t)sb.st_size, got = 0;
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
    *out = buf;
    *out_len = len;
    return 0;
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

/* Deletes checkpoints and segments older than seg, and none a cursor still
 * needs: with retain, the newest checkpoint at or before the floor and
 * everything after it stay (nothing at all before a floor is set). */
static void remove_older_than(tsdb_wal_t *w, const wal_files_t *f, uint64_t seg)
{
    pthread_mutex_lock(&w->mu);
    uint64_t floor = w->floor;
    pthread_mutex_unlock(&w->mu);
    if (floor != UINT64_MAX) {
        uint64_t keep = 0;
        for (size_t i = 0; i < f->nckpts; i++)
            if (f->ckpts[i] <= floor) keep = f->ckpts[i];
        if (keep < seg) seg = keep;
    }
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
     * later good ones would be met as damage (skipped, copied, counted) at
     * every replay. */
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
        /* Keep the previous checkpoint and the segments since it: if this
         * checkpoint turns out damaged, they still define its series.  An
         * empty checkpoint defines none (the head held nothing at the cut),
         * so damage to it loses nothing and everything before seg goes now:
         * those files hold only samples the blocks have. */
        uint64_t prev = 0;
        for (size_t i = 0; i < f.nckpts; i++)
            if (f.ckpts[i] < seg) prev = f.ckpts[i];
        remove_older_than(w, &f, state && state->len ? prev : seg);
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

/* ---- replay at open ------------------------------------------------------ */

/* Copies bytes of a damaged file to <db>/corrupt/<cname> (temp file, fsync,
 * rename, fsync dir) before anything of it is cut.  An existing copy (from an
 * earlier open that met the same damage) is kept. */
static int save_corrupt(const tsdb_wal_t *w, const char *cname, const uint8_t *bytes, size_t n)
{
    size_t pl = strlen(w->path);
    char *cdir = malloc(pl + 16);
    if (!cdir) return STRATA_ENOMEM;
    memcpy(cdir, w->path, pl - 3); /* "<db>/wal" -> "<db>/" */
    strcpy(cdir + pl - 3, "corrupt");
    int rc = 0, dfd = -1, fd = -1;
    if ((mkdir(cdir, 0755) != 0 && errno != EEXIST) ||
        (dfd = open(cdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = strata_io_error("wal cannot create the corrupt dir", cdir);
        goto out;
    }
    struct stat sb;
    if (fstatat(dfd, cname, &sb, 0) == 0 && (size_t)sb.st_size == n) goto out;
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp", cname);
    fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int e = fd < 0 ? errno : pwrite_all(fd, bytes, n, 0);
    if (!e && fsync(fd) != 0) e = errno;
    if (fd >= 0 && close(fd) != 0 && !e) e = errno;
    if (!e && renameat(dfd, tmp, dfd, cname) != 0) e = errno;
    if (e) {
        strata_error("wal cannot keep a copy of damaged bytes", "dir=%s file=%s err=\"%s\"", cdir, cname,
                     strerror(e));
        unlinkat(dfd, tmp, 0);
        rc = strata_errno_to_err(e);
        goto out;
    }
    rc = strata_fsync_dir(cdir);
out:
    if (dfd >= 0) close(dfd);
    free(cdir);
    return rc;
}

typedef struct damage_ctx {
    const tsdb_wal_t *w;
    const char *name;
    const uint8_t *buf;
    int copy_failed;
} damage_ctx_t;

/* One warning and one copy under corrupt/ per damaged region. */
static int on_damage_at_open(void *p, size_t off, size_t end, const char *why)
{
    damage_ctx_t *d = p;
    char cname[128];
    snprintf(cname, sizeof cname, "wal-%s.%zu-%zu", d->name, off, end);
    if (save_corrupt(d->w, cname, d->buf + off, end - off)) d->copy_failed = 1;
    strata_warn("wal damaged region skipped", "file=%s/%s offset=%zu bytes=%zu reason=\"%s\" copy=corrupt/%s",
                d->w->path, d->name, off, end - off, why, d->copy_failed ? "(failed)" : cname);
    return 0;
}

/* Replays one file through c; *good_end is the end of its last good record,
 * *file_len its size, *why the first damage (NULL when clean). */
static int replay_one(const tsdb_wal_t *w, replay_ctx_t *c, const char *name, size_t *good_end,
                      size_t *file_len, const char **why, int *copy_failed)
{
    uint8_t *buf = NULL;
    int rc = read_whole(w, name, &buf, file_len);
    if (rc) return rc;
    damage_ctx_t d = { w, name, buf, 0 };
    c->on_damage = on_damage_at_open;
    c->dctx = &d;
    rc = replay_image(buf, *file_len, c, good_end, why);
    c->on_damage = NULL;
    c->dctx = NULL;
    if (copy_failed) *copy_failed = d.copy_failed;
    free(buf);
    return rc;
}

/* checkpoint.<ck> is damaged: collect the SERIES records of the files it was
 * made from (checkpoint.<prev> and segments prev .. ck-1, kept on disk until
 * the next checkpoint succeeds), so that samples of intact segments whose
 * series sat in the damaged part still find it.  Their samples are not
 * needed: the head logs every sample it holds into segment ck at the cut. */
static int build_fallback(const tsdb_wal_t *w, replay_ctx_t *c, const wal_files_t *f, uint64_t prev,
                          uint64_t ck)
{
    tsdb_wal_replay_stats_t junk = { 0 }, *saved = c->st;
    char name[64];
    size_t good, flen;
    const char *why;
    uint64_t expect = prev ? prev : 1, nfiles = 0;
    int complete = 1, rc = 0;
    c->collect = 1;
    c->st = &junk;
    if (prev) {
        ckpt_name(name, sizeof name, prev);
        if ((rc = replay_one(w, c, name, &good, &flen, &why, NULL))) goto out;
        nfiles++;
        if (why) complete = 0;
    }
    for (size_t i = 0; i < f->nsegs && f->segs[i] < ck; i++) {
        if (f->segs[i] < expect) continue;
        if (f->segs[i] != expect) complete = 0;
        expect = f->segs[i] + 1;
        seg_name(name, sizeof name, f->segs[i]);
        if ((rc = replay_one(w, c, name, &good, &flen, &why, NULL))) goto out;
        nfiles++;
        if (why) complete = 0;
    }
    if (expect != ck) complete = 0;
    if (!nfiles)
        strata_error("wal checkpoint damaged and the files it was made from are gone: series defined only "
                     "in its damaged part are lost, and their samples are dropped (orphan_samples)",
                     "dir=%s checkpoint=%08" PRIu64, w->path, ck);
    else
        strata_warn(complete
                        ? "wal checkpoint damaged, taking the series it lost from the files it was made from"
                        : "wal checkpoint damaged, its source files are incomplete: series found in none "
                          "of them are lost, and their samples are dropped (orphan_samples)",
                    "dir=%s checkpoint=%08" PRIu64 " previous_checkpoint=%08" PRIu64 " files=%" PRIu64
                    " series_known=%zu",
                    w->path, ck, prev, nfiles, c->fallback.n);
out:
    c->collect = 0;
    c->st = saved;
    return rc;
}

/* Replays checkpoint and segments, skipping damaged stretches (logged, copied
 * to corrupt/, counted) and cutting a damaged tail off the last segment.  On
 * return *last is the segment to continue writing (0 = none left; with
 * *fresh set, a new segment after it) and *last_len its valid length. */
static int replay_all(tsdb_wal_t *w, replay_ctx_t *c, uint64_t *first_seg, uint64_t *last, size_t *last_len,
                      int *fresh)
{
    tsdb_wal_replay_stats_t *st = c->st;
    wal_files_t f;
    char name[64];
    const char *why = NULL;
    size_t good = 0, flen = 0;
    int rc = scan_dir(w, &f, 1);
    if (rc) goto out;
    *last = 0;
    *first_seg = 1;
    *fresh = 0;

    uint64_t ck = f.nckpts ? f.ckpts[f.nckpts - 1] : 0;
    uint64_t prev = f.nckpts > 1 ? f.ckpts[f.nckpts - 2] : 0;
    if (ck) {
        /* The newest checkpoint, the one before it and the segments since
         * that one are kept (the fallback if the newest is damaged); older
         * files are covered by them. */
        remove_older_than(w, &f, prev);
        *first_seg = ck;
        ckpt_name(name, sizeof name, ck);
        if ((rc = replay_one(w, c, name, &good, &flen, &why, NULL))) goto out;
        if (why && (rc = build_fallback(w, c, &f, prev, ck))) goto out;
        /* An intact empty checkpoint needs no fallback (a crash came between
         * its rename and the deletions tsdb_wal_checkpoint makes for it). */
        if (!why && flen == TSDB_WAL_HEADER_SIZE) remove_older_than(w, &f, ck);
    }
    size_t i = 0;
    while (i < f.nsegs && f.segs[i] < ck) i++;
    uint64_t expect = ck ? ck : (i < f.nsegs ? f.segs[i] : 1);
    for (; i < f.nsegs; i++) {
        if (f.segs[i] != expect) {
            /* Records of later segments still replay; samples whose series
             * was defined in the missing ones are dropped (orphan_samples). */
            st->corrupt_records++;
            strata_error("wal segments missing, replaying the ones after the gap",
                         "dir=%s missing=%08" PRIu64 "..%08" PRIu64, w->path, expect, f.segs[i] - 1);
        }
        expect = f.segs[i] + 1;
        seg_name(name, sizeof name, f.segs[i]);
        int copy_failed = 0;
        if ((rc = replay_one(w, c, name, &good, &flen, &why, &copy_failed))) goto out;
        if (i + 1 < f.nsegs) continue; /* damage in an older segment stays there (and in corrupt/) */
        *last = f.segs[i];
        *last_len = flen;
        if (good >= flen) continue;
        if (copy_failed) { /* no copy: leave the bytes and write on in a new segment */
            *fresh = 1;
            continue;
        }
        /* The damaged tail of the last segment (a torn write, the normal crash
         * case) is cut, so appends continue right after the last good record. */
        int fd = openat(w->dirfd, name, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ftruncate(fd, (off_t)good) != 0 || fsync(fd) != 0) {
            int e = errno;
            strata_error("wal cannot truncate damaged segment", "file=%s/%s err=\"%s\"", w->path, name,
                         strerror(e));
            if (fd >= 0) close(fd);
            rc = strata_errno_to_err(e);
            goto out;
        }
        close(fd);
        st->truncated_bytes += flen - good;
        *last_len = good;
        strata_warn("wal damaged tail cut off the last segment", "file=%s/%s offset=%zu truncated_bytes=%zu",
                    w->path, name, good, flen - good);
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
    w->floor = opts->retain ? 0 : UINT64_MAX;
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
    int fresh = 0;
    replay_ctx_t c = { 0 };
    c.ops = ops;
    c.st = st;
    c.fallback.with_vals = 1;
    rc = replay_all(w, &c, &first, &last, &last_len, &fresh);
    ctx_free(&c);
    if (rc) goto fail;
    if (st->orphan_samples)
        strata_warn("wal samples dropped: their series record was lost", "dir=%s samples=%" PRIu64, w->path,
                    st->orphan_samples);
    if (fresh) {
        first = last + 1;
        last = 0;
    }

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
                    " skipped_bytes=%" PRIu64 " truncated_bytes=%" PRIu64 " orphan_samples=%" PRIu64
                    " fallback_series=%" PRIu64 " segment=%08" PRIu64,
                    w->path, st->records, st->series, st->samples, st->corrupt_records, st->skipped_bytes,
                    st->truncated_bytes, st->orphan_samples, st->fallback_series, w->seg);
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

/* ---- what a cursor needs -------------------------------------------------- */

const char *tsdb_wal_path(const tsdb_wal_t *w) { return w->path; }

int tsdb_wal_list(tsdb_wal_t *w, uint64_t **segs, size_t *nsegs, uint64_t **ckpts, size_t *nckpts)
{
    wal_files_t f;
    int rc = scan_dir(w, &f, 0);
    if (rc) {
        files_free(&f);
        return rc;
    }
    *segs = f.segs;
    *nsegs = f.nsegs;
    *ckpts = f.ckpts;
    *nckpts = f.nckpts;
    return 0;
}

void tsdb_wal_readable(tsdb_wal_t *w, uint64_t *seg, uint64_t *end)
{
    pthread_mutex_lock(&w->mu);
    *seg = w->seg;
    /* a roll fsyncs the old segment first, so unsynced bytes are all in this one */
    uint64_t unsynced = w->opts.fsync == TSDB_FSYNC_NEVER ? 0 : w->written - w->synced;
    *end = unsynced > w->seg_size ? 0 : w->seg_size - unsynced;
    pthread_mutex_unlock(&w->mu);
}

void tsdb_wal_set_floor(tsdb_wal_t *w, uint64_t seg)
{
    pthread_mutex_lock(&w->mu);
    if (w->opts.retain) w->floor = seg;
    pthread_mutex_unlock(&w->mu);
}

const char *tsdb_wal_frame_check(const uint8_t *buf, size_t len, size_t off, uint32_t *body_len)
{
    return frame_at(buf, len, off, body_len);
}
